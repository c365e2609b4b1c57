"""Integration-test fixtures: the board (booted once per session) and a VMM runner on it.

Options: --board qemu-aarch64|orin|host-kvm (default qemu-aarch64, or $REFVMM_BOARD),
--images-dir, --vmm-binary, --board-boot-timeout; labgrid's own --lg-env / LG_ENV describes
the hardware for --board orin. Tests declare what they need with
@pytest.mark.board_feature("guest-boot", ...): a board without it skips them with the reason.
"""
import datetime
import hashlib
import importlib.util
import io
import json
import os
import re
import subprocess

import pytest

import boards
from boards import BoardUnavailable, guest_args, run_vmm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "build", "results")


def pytest_addoption(parser):
    g = parser.getgroup("refvmm", "reference VMM integration tests")
    g.addoption("--board", choices=boards.BOARD_NAMES,
                default=os.environ.get("REFVMM_BOARD", "qemu-aarch64"),
                help="board tier to run on (default qemu-aarch64, or $REFVMM_BOARD)")
    g.addoption("--images-dir", default=os.path.join(ROOT, "build", "images", "aarch64"),
                help="output directory of images/build.sh")
    g.addoption("--vmm-binary", default=None,
                help="local VMM binary (orin: copied to the board; host-kvm: run directly)")
    g.addoption("--board-boot-timeout", type=int, default=300,
                help="seconds to wait for the board to reach its shell")


def pytest_configure(config):
    config.addinivalue_line("markers", "board_feature(*names): the test needs these board "
                            "features (shell, console, qemu-monitor, kvm, guest-boot); "
                            "boards without them skip the test")
    config._refvmm_boards = BoardManager(config)


class BoardManager:
    """Creates and boots the board lazily, once per session, and remembers a failure so a
    broken board is reported once per test instead of being rebooted for each."""

    def __init__(self, config):
        self.config = config
        self.board = None
        self.outcome = None  # ("skip"|"fail", message)

    def get(self):
        if self.outcome:
            kind, msg = self.outcome
            if kind == "skip":
                pytest.skip(msg)
            pytest.fail(msg, pytrace=False)
        if self.board is None:
            opt = self.config.getoption
            name = opt("--board")
            try:
                board = boards.make_board(name, root=ROOT, images_dir=opt("--images-dir"),
                                          vmm_local=opt("--vmm-binary"),
                                          lg_env=getattr(self.config, "_labgrid_env", None),
                                          boot_timeout=opt("--board-boot-timeout"))
            except BoardUnavailable as exc:
                self.outcome = ("skip", str(exc))
                return self.get()
            except Exception as exc:  # pylint: disable=broad-except
                # FileNotFoundError: images missing ("run `make images`"); others: setup errors
                self.outcome = ("fail", f"board '{name}' cannot start: {exc}")
                return self.get()
            try:
                board.start()
            except Exception as exc:  # pylint: disable=broad-except
                try:
                    board.power_off()
                except Exception:  # pylint: disable=broad-except
                    pass
                self.outcome = ("fail", f"board '{name}' failed to start: {exc}")
                return self.get()
            self.board = board
            ready = getattr(board, "ready_seconds", None)
            msg = f"[board] {board.describe()} ready in {board.boot_seconds:.1f} s"
            if ready is not None:
                msg += f" (init marker after {ready:.1f} s)"
            _report(self.config, msg)
        return self.board

    def close(self):
        if self.board is not None:
            board, self.board = self.board, None
            try:
                board.power_off()
            except Exception as exc:  # pylint: disable=broad-except
                _report(self.config, f"[board] warning: powering off {board.name} failed: {exc!r}")


def _report(config, msg):
    tr = config.pluginmanager.getplugin("terminalreporter")
    cap = config.pluginmanager.getplugin("capturemanager")
    if tr is None:
        print(msg)
        return
    if cap is not None:
        with cap.global_and_fixture_disabled():
            tr.write_line(msg)
    else:
        tr.write_line(msg)


def pytest_sessionfinish(session):
    mgr = getattr(session.config, "_refvmm_boards", None)
    if mgr is not None:
        mgr.close()


def pytest_runtest_setup(item):
    """Skip tests whose board_feature needs are not met, before any fixture runs (module
    fixtures that boot guests must not run on a board that cannot boot them)."""
    needed = []
    for m in item.iter_markers("board_feature"):
        needed.extend(m.args)
    if not needed:
        return
    board = item.config._refvmm_boards.get()
    for feature in needed:
        reason = board.missing_reason(feature)
        if reason:
            pytest.skip(reason)


@pytest.fixture(scope="session")
def board(request):
    """The started board (boards.base.Board). Fails with a clear message if images are missing."""
    return request.config._refvmm_boards.get()


class VmmRunner:
    """Runs the VMM on the board; saves each run's console and stderr under
    build/results/integration/ and raises on a guest kernel panic unless allowed."""

    def __init__(self, board, config):
        self.board = board
        self.config = config
        self.count = 0
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        top = os.path.join(RESULTS, "integration")
        self.log_dir = os.path.join(top, f"{board.name}-{stamp}-{os.getpid()}")
        os.makedirs(self.log_dir, exist_ok=True)
        latest = os.path.join(top, f"{board.name}-latest")
        try:
            if os.path.islink(latest):
                os.unlink(latest)
            os.symlink(os.path.basename(self.log_dir), latest)
        except OSError:
            pass
        self._checked = False

    def check_binary(self):
        """Fail the test (clearly) if the VMM binary is not on the board."""
        if self._checked:
            return
        if self.board.name == "qemu-aarch64":
            # a board.cpio older than the VMM would test yesterday's binary: refuse
            stale = _board_cpio_stale(self.config.getoption("--images-dir"))
            if stale:
                pytest.fail(stale, pytrace=False)
        if self.board.run(f"test -x {self.board.vmm_path}").status != 0:
            pytest.fail(f"the VMM is not on board '{self.board.name}' at {self.board.vmm_path}: "
                        "run `make aarch64 images` (board.cpio was built without it)", pytrace=False)
        self._checked = True

    def run(self, args, *, timeout=180, label="run", allow_panic=False):
        """Run the VMM with `args`; return a boards.VmmResult (console, stderr, status apart).
        A guest kernel panic fails the calling test unless allow_panic=True."""
        self.check_binary()
        result = run_vmm(self.board, args, timeout=timeout)
        self.count += 1
        base = os.path.join(self.log_dir, f"{self.count:03d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', label)}")
        with open(base + ".console.log", "w", encoding="utf-8") as f:
            f.write(result.console)
        with open(base + ".stderr.log", "w", encoding="utf-8") as f:
            f.write(f"# {' '.join(result.argv)}\n# exit status {result.status}, "
                    f"{result.elapsed:.2f} s\n{result.stderr}")
        if result.panicked and not allow_panic:
            pytest.fail("guest kernel panic: " + "; ".join(result.panic_lines) + "\n" + result.summary(),
                        pytrace=False)
        return result

    def initramfs_with_payload(self, script, name="payload"):
        """Make, on the board, the guest initramfs plus an appended cpio holding `script` as an
        executable /payload (run by the L2 /init when no refvmm.payload= is given). Returns
        the initramfs path on the board."""
        cpio = _payload_cpio(script)
        part = f"{self.board.scratch_dir}/{name}.cpio"
        out = f"{self.board.scratch_dir}/initramfs-{name}.cpio"
        self.board.put_file(part, cpio)
        self.board.run_check(f"cat {self.board.guest_initrd} {part} > {out}")
        return out

    def boot_guest(self, *, payload=None, vcpus=2, memory_mib=256, cmdline_extra="",
                   boottimer=True, log="info", initrd=None, extra=(), timeout=240, label=None,
                   allow_panic=False):
        """Boot the board's L2 guest with the standard cmdline plus refvmm.* tokens."""
        tokens = []
        if boottimer:
            tokens.append("refvmm.boottimer=0x0b000000")
        if payload:
            tokens.append(f"refvmm.payload={payload}")
        if cmdline_extra:
            tokens.append(cmdline_extra)
        args = guest_args(self.board, vcpus=vcpus, memory_mib=memory_mib, cmdline=" ".join(tokens),
                          log=log, initrd=initrd, extra=extra)
        return self.run(args, timeout=timeout, label=label or f"guest-{payload or 'none'}",
                        allow_panic=allow_panic)


def _payload_cpio(script):
    """A newc cpio with `script` as /payload (mode 0755), built by images/mkcpio.py."""
    spec = importlib.util.spec_from_file_location("mkcpio", os.path.join(ROOT, "images", "mkcpio.py"))
    mkcpio = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mkcpio)
    buf = io.BytesIO()
    w = mkcpio.Writer(buf)
    w.entry("payload", 0o100755, script.encode())
    w.close()
    return buf.getvalue()


def _board_cpio_stale(images_dir):
    """Message if board.cpio does not hold the current build/aarch64/vmm, else None."""
    vmm = os.path.join(ROOT, "build", "aarch64", "vmm")
    inputs = os.path.join(images_dir, "board.cpio.inputs")
    if not os.path.isfile(vmm) or not os.path.isfile(inputs):
        return None
    with open(inputs, encoding="utf-8") as f:
        m = re.search(r"\bvmm (\S+)", f.read())
    with open(vmm, "rb") as f:
        have = hashlib.sha256(f.read()).hexdigest()
    if m and m.group(1) != have:
        return (f"{images_dir}/board.cpio holds an older VMM than {vmm}: run `make images` "
                "(cheap: only board.cpio is rebuilt)")
    return None


@pytest.fixture(scope="session")
def vmm(board, request):
    """A VmmRunner for the session's board."""
    return VmmRunner(board, request.config)


def git_revision():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record_boot_time(board, result, **extra):
    """Append one L2 boot measurement to build/results/boot-times.json (a JSON list)."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "boot-times.json")
    entries = []
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                entries = json.load(f)
        except (OSError, ValueError):
            entries = []
    entries.append({"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "board": board.name, "git": git_revision(),
                    "boot_timer_ms": result.boot_timer_ms, "vmm_wall_s": round(result.elapsed, 3),
                    **extra})
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1)
    os.replace(tmp, path)
    return path
