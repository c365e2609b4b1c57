"""Running the VMM on a board and reading what happened.

run_vmm() starts the VMM on the board with stdin from /dev/null, guest console (VMM stdout)
and VMM log (stderr) redirected to files on the board, then fetches both base64-encoded so
the bytes arrive exactly. VmmResult parses the guest markers printed by images/l2/init.
"""
import base64
import dataclasses
import re
import shlex

from .base import BoardError

PANIC_RE = re.compile(r"Kernel panic[^\n]*")
BOOT_TIMER_RE = re.compile(r"boot-timer: guest signalled after ([0-9]+(?:\.[0-9]+)?) ms")
INFO_RE = re.compile(r"^REFVMM-INFO (\w+)=(.*)$", re.M)
DONE_RE = re.compile(r"^REFVMM-L2-DONE rc=(\d+)", re.M)
READY_MARKER = "REFVMM-L2-READY"

# exit statuses of the VMM (docs/cli.md)
EXIT_POWEROFF, EXIT_FAILURE, EXIT_USAGE, EXIT_RESET = 0, 1, 2, 3


class GuestFailure(AssertionError):
    """The guest or the VMM did not behave (panic, unexpected exit status, missing marker)."""


@dataclasses.dataclass
class VmmResult:
    argv: list
    status: int
    console: str            # guest console output (the VMM's stdout)
    stderr: str             # the VMM's log output
    elapsed: float          # wall-clock seconds on the host for the whole run
    timed_out: bool = False
    board_dmesg: str = ""   # tail of the board's kernel log when the run failed

    @property
    def panic_lines(self):
        return PANIC_RE.findall(self.console)

    @property
    def panicked(self):
        return bool(self.panic_lines)

    @property
    def l2_ready(self):
        return READY_MARKER in self.console

    @property
    def done_rc(self):
        m = DONE_RE.search(self.console)
        return int(m.group(1)) if m else None

    @property
    def info(self):
        return {k: v.rstrip("\r") for k, v in INFO_RE.findall(self.console)}

    @property
    def boot_timer_ms(self):
        m = BOOT_TIMER_RE.search(self.stderr)
        return float(m.group(1)) if m else None

    def problems(self, expect_status=EXIT_POWEROFF):
        """Everything wrong with this run, as sentences (empty list: all fine)."""
        out = []
        if self.timed_out:
            out.append(f"the VMM did not exit within its timeout ({self.elapsed:.1f} s)")
        for line in self.panic_lines:
            out.append(f"guest kernel panic: {line.strip()}")
        if expect_status is not None and self.status != expect_status:
            out.append(f"VMM exit status {self.status}, expected {expect_status}")
        return out

    def check(self, expect_status=EXIT_POWEROFF):
        """Raise GuestFailure (an AssertionError, so pytest reports a failure) with a readable
        summary if anything is wrong."""
        problems = self.problems(expect_status)
        if problems:
            raise GuestFailure("; ".join(problems) + "\n" + self.summary())

    def summary(self, tail=40):
        console = "\n".join(self.console.splitlines()[-tail:])
        parts = [f"command: {shlex.join(self.argv)}", f"exit status: {self.status}",
                 f"--- VMM stderr ---\n{self.stderr.rstrip()}",
                 f"--- guest console (last {tail} lines) ---\n{console}"]
        if self.board_dmesg:
            parts.append(f"--- board dmesg (tail) ---\n{self.board_dmesg}")
        return "\n".join(parts)


MAX_FETCH = 256 * 1024  # bytes of console / log fetched from the board (the end is kept)


def _fetch(board, path, timeout):
    res = board.run(f"tail -c {MAX_FETCH} {shlex.quote(path)} | base64", timeout=timeout)
    if res.status != 0:
        raise BoardError(f"cannot read {path} on {board.name}: {res.stdout}")
    data = "".join(res.stdout.split())
    raw = base64.b64decode(data)
    return raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "")


def run_vmm(board, args, timeout=180):
    """Run `board.vmm_path args...` on the board; return a VmmResult. The VMM is killed after
    `timeout` seconds (board side), the board command itself gets some slack on top."""
    argv = [board.vmm_path] + [str(a) for a in args]
    out = f"{board.scratch_dir}/vmm.out"
    err = f"{board.scratch_dir}/vmm.err"
    cmd = (f"rm -f {out} {err}; timeout -s KILL {int(timeout)} {shlex.join(argv)} "
           f"</dev/null >{out} 2>{err}")
    res = board.run(cmd, timeout=timeout + 60)
    # SIGKILL from timeout shows as 137 (128 + 9)
    timed_out = res.status == 137 and res.elapsed >= timeout - 1
    result = VmmResult(argv=argv, status=res.status, console=_fetch(board, out, 120),
                       stderr=_fetch(board, err, 60), elapsed=res.elapsed, timed_out=timed_out)
    if res.status not in (EXIT_POWEROFF, EXIT_USAGE, EXIT_RESET) or result.panicked:
        dm = board.run("dmesg 2>/dev/null | tail -n 30", timeout=30)
        result.board_dmesg = dm.stdout
    return result


def guest_args(board, *, vcpus=2, memory_mib=256, cmdline="", log="info", initrd=None,
               kernel=None, extra=(), console="ttyAMA0"):
    """VMM arguments booting the board's L2 kernel + initramfs with the standard cmdline
    (`console=` names the guest's kernel console, e.g. hvc0 for virtio-console tests)."""
    kernel = kernel or board.guest_kernel
    initrd = initrd or board.guest_initrd
    full = f"console={console} panic=-1 {cmdline}".strip()
    args = ["--kernel", f'path={kernel},initrd={initrd},cmdline="{full}"',
            "--memory", f"size_mib={int(memory_mib)}", "--vcpu", f"num={int(vcpus)}"]
    if log:
        args += ["--log", f"level={log}"]
    return args + list(extra)
