"""The board interface every test tier talks to (emulated board, real Orin, host KVM).

A board is a Linux machine with /dev/kvm on which the VMM runs. Tests only use this interface,
so the same test runs on QEMU TCG boards, on real hardware driven by labgrid, or on the host.
"""
import abc
import base64
import dataclasses
import re
import shlex
import time


class BoardError(Exception):
    """The board failed in a way that is not a test verdict (boot failure, lost console)."""


class BoardTimeout(BoardError):
    """A command or a console expectation did not complete within its timeout."""


class NotSupported(BoardError):
    """The board lacks this facility (e.g. no QEMU monitor on real hardware)."""


# Feature names a test can require with @pytest.mark.board_feature(...)
FEATURE_SHELL = "shell"              # run shell commands
FEATURE_CONSOLE = "console"          # expect regexes on the board's serial console
FEATURE_MONITOR = "qemu-monitor"     # QEMU monitor (QMP) commands
FEATURE_KVM = "kvm"                  # /dev/kvm usable by the VMM
FEATURE_GUEST_BOOT = "guest-boot"    # can boot the Linux guest (L2) images with the VMM


@dataclasses.dataclass
class CommandResult:
    stdout: str          # stdout (and, on console-based boards, stderr) of the command
    status: int          # exit status
    elapsed: float       # seconds

    @property
    def lines(self):
        return self.stdout.splitlines()


class Board(abc.ABC):
    """One board. Subclasses fill in the transport; paths describe where things live on it."""

    name = "abstract"
    arch = "aarch64"
    vmm_path = "/usr/bin/vmm"        # the VMM binary on the board
    guest_kernel = None              # L2 kernel Image on the board (None: not available)
    guest_initrd = None              # L2 initramfs on the board (None: not available)
    scratch_dir = "/tmp"             # writable directory on the board

    def __init__(self):
        self.boot_seconds = None     # board power-on to shell, when the board measured it

    # --- lifecycle
    @abc.abstractmethod
    def start(self):
        """Power the board on (or connect to it) and wait until commands can run."""

    @abc.abstractmethod
    def power_off(self):
        """Power the board off / disconnect; safe to call twice."""

    # --- capabilities
    @abc.abstractmethod
    def features(self):
        """Set of FEATURE_* names this board supports."""

    def missing_reason(self, feature):
        """Why this board lacks `feature` (for pytest.skip), or None if it has it."""
        if feature in self.features():
            return None
        return f"board '{self.name}' does not provide '{feature}'"

    # --- commands
    @abc.abstractmethod
    def run(self, cmd, timeout=30.0):
        """Run a shell command on the board; return a CommandResult. Raises BoardTimeout
        (after trying to interrupt the command) if it does not finish within `timeout` s."""

    def run_check(self, cmd, timeout=30.0):
        res = self.run(cmd, timeout=timeout)
        if res.status != 0:
            raise BoardError(f"command failed on {self.name} (exit {res.status}): {cmd}\n{res.stdout}")
        return res.stdout

    PUT_CHUNK = 600  # base64 characters per command: busybox's line editor hangs on lines over ~1000

    def put_file(self, path, data, mode=0o644):
        """Write bytes `data` to `path` on the board (generic: base64 chunks through run();
        boards with a faster channel override this)."""
        if isinstance(data, str):
            data = data.encode()
        q = shlex.quote(path)
        blob = base64.b64encode(data).decode()
        self.run_check(f": > {q}")
        for i in range(0, len(blob), self.PUT_CHUNK):
            self.run_check(f"echo {blob[i:i + self.PUT_CHUNK]} | base64 -d >> {q}")
        self.run_check(f"chmod {mode:o} {q} && test $(wc -c < {q}) -eq {len(data)}")

    # --- console
    def expect(self, pattern, timeout=30.0):
        """Wait for regex `pattern` on the board's console; return the matched text.
        Raises BoardTimeout when it does not appear within `timeout` s."""
        raise NotSupported(f"board '{self.name}' has no console access")

    def send(self, text):
        """Type `text` on the board's console (no newline added)."""
        raise NotSupported(f"board '{self.name}' has no console access")

    # --- QEMU monitor
    def monitor(self, command, arguments=None):
        """Run a QMP command (e.g. 'query-status', 'system_powerdown') and return its result."""
        raise NotSupported(f"board '{self.name}' has no QEMU monitor")

    def describe(self):
        return f"{self.name} ({self.arch})"


def wait_until(predicate, timeout, interval=0.2):
    """Poll `predicate` until it is truthy; raise BoardTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise BoardTimeout(f"condition not met within {timeout} s")
        time.sleep(interval)


def strip_vt100(text):
    return re.sub(r"(\x1b\[|\x9b)[^@-_a-z]*[@-_a-z]|\x1b[@-_a-z]", "", text)
