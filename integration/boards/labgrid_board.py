"""Boards driven by labgrid: any labgrid target with a CommandProtocol driver (ShellDriver over a
serial console, or SSHDriver), optionally a ConsoleProtocol, PowerProtocol and a Strategy.

LabgridBoard is the generic part (used as-is for a real Orin described by a user-supplied
labgrid environment file); boards/qemu_aarch64.py specialises it for the emulated board.
"""
import hashlib
import os
import subprocess
import time

import pexpect
from labgrid.exceptions import NoDriverFoundError
from labgrid.protocol import CommandProtocol, ConsoleProtocol, FileTransferProtocol, PowerProtocol
from labgrid.strategy import Strategy

from .base import (FEATURE_CONSOLE, FEATURE_GUEST_BOOT, FEATURE_KVM, FEATURE_SHELL, Board,
                   BoardError, BoardTimeout, CommandResult, NotSupported)

_TIMEOUTS = (pexpect.TIMEOUT, subprocess.TimeoutExpired)


class LabgridBoard(Board):
    """A board behind a labgrid target (role `role` of `env`)."""

    name = "labgrid"

    def __init__(self, env, role="main"):
        super().__init__()
        self.env = env
        self.target = env.get_target(role)
        if self.target is None:
            raise BoardError(f"labgrid environment has no target '{role}'")
        self.cmd = None
        self.console = None
        self._features = None
        self._started = False

    def _optional(self, protocol):
        try:
            return self.target.get_driver(protocol, activate=False)
        except NoDriverFoundError:
            return None

    # --- lifecycle
    def start(self):
        t0 = time.monotonic()
        strategy = self._optional(Strategy)
        if strategy is not None:
            # the labgrid way for real hardware: the strategy powers on, boots and logs in
            strategy.transition("shell")
        else:
            power = self._optional(PowerProtocol)
            if power is not None:
                self.target.activate(power)
                power.on()
        # prefer SSH for commands when the environment has both SSH and a serial shell
        ssh = self._optional("SSHDriver")
        self.cmd = ssh if ssh is not None else self._optional(CommandProtocol)
        if self.cmd is None:
            raise BoardError(f"labgrid target of board '{self.name}' has no CommandProtocol "
                             "driver (ShellDriver or SSHDriver)")
        self.target.activate(self.cmd)
        console = self._optional(ConsoleProtocol)
        if console is not None:
            self.target.activate(console)
            self.console = console
        self._started = True
        self.boot_seconds = time.monotonic() - t0

    def power_off(self):
        if not self._started:
            return
        self._started = False
        power = self._optional(PowerProtocol)
        try:
            if power is not None:
                self.target.activate(power)
                power.off()
        finally:
            self.target.deactivate_all_drivers()

    # --- capabilities
    def features(self):
        if self._features is None:
            f = {FEATURE_SHELL}
            if self.console is not None:
                f.add(FEATURE_CONSOLE)
            if self.run("test -c /dev/kvm", timeout=30).status == 0:
                f.add(FEATURE_KVM)
                if self.guest_kernel and self.guest_initrd:
                    f.add(FEATURE_GUEST_BOOT)
            self._features = f
        return self._features

    def missing_reason(self, feature):
        if feature in self.features():
            return None
        if feature == FEATURE_KVM or (feature == FEATURE_GUEST_BOOT and FEATURE_KVM not in self.features()):
            return f"board '{self.name}' has no /dev/kvm"
        if feature == FEATURE_GUEST_BOOT:
            return f"board '{self.name}' has no guest images deployed"
        return super().missing_reason(feature)

    # --- commands
    def run(self, cmd, timeout=30.0):
        t0 = time.monotonic()
        try:
            out, err, status = self.cmd.run(cmd, timeout=timeout, decodeerrors="replace")
        except _TIMEOUTS as exc:
            self._recover()
            raise BoardTimeout(f"command did not finish within {timeout} s on {self.name}: {cmd}") from exc
        text = "\n".join(line.rstrip("\r") for line in list(out) + list(err or []))
        return CommandResult(stdout=text, status=status, elapsed=time.monotonic() - t0)

    def _recover(self):
        """After a command timeout on a console shell: interrupt it and resync the prompt."""
        if self.console is None or not hasattr(self.cmd, "_check_prompt"):
            return
        for _ in range(3):
            try:
                self.console.write(b"\x03")
                time.sleep(0.5)
                self.cmd._check_prompt()  # pylint: disable=protected-access
                return
            except pexpect.TIMEOUT:
                continue
        raise BoardError(f"board '{self.name}' console is unresponsive after a command timeout")

    # --- console
    def expect(self, pattern, timeout=30.0):
        if self.console is None:
            raise NotSupported(f"board '{self.name}' has no console driver")
        try:
            _, _, match, _ = self.console.expect(pattern, timeout=timeout)
        except pexpect.TIMEOUT as exc:
            raise BoardTimeout(f"'{pattern}' did not appear on the console of {self.name} "
                               f"within {timeout} s") from exc
        return match.group(0).decode("utf-8", "replace") if match is not None else ""

    def send(self, text):
        if self.console is None:
            raise NotSupported(f"board '{self.name}' has no console driver")
        self.console.write(text.encode())

    # --- deployment (boards that do not carry the VMM and images in their initramfs)
    def deploy(self, files):
        """Copy local files to the board unless an identical copy is there already.
        `files` maps a path on the board to a local path. Needs a FileTransferProtocol
        driver (SSHDriver preferred; ShellDriver's xmodem is far too slow for a kernel)."""
        transfer = self._optional("SSHDriver") or self._optional(FileTransferProtocol)
        if transfer is None:
            raise NotSupported(f"board '{self.name}' has no FileTransferProtocol driver "
                               "(add an SSHDriver to the labgrid environment)")
        self.target.activate(transfer)
        for remote, local in files.items():
            self.run_check(f"mkdir -p $(dirname {remote})")
            want = _sha256(local)
            have = self.run(f"sha256sum {remote} 2>/dev/null").stdout.split()
            if have and have[0] == want:
                continue
            transfer.put(local, remote)
            self.run_check(f"chmod {'0755' if os.access(local, os.X_OK) else '0644'} {remote}")


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class OrinBoard(LabgridBoard):
    """A real NVIDIA Jetson Orin (or any aarch64 board with KVM) described by a labgrid
    environment file supplied by the user (--lg-env / LG_ENV). Hardware-independent part:
    the target needs a CommandProtocol driver (SSHDriver recommended: it also copies files);
    a ShellDriver on the serial console, a power driver and a Strategy with a "shell" state
    are optional. Environment `options:` (all optional):
      refvmm_workdir       directory on the board for the VMM and images (default /tmp/refvmm)
      refvmm_deploy        "false": do not copy anything, the files are already on the board
      refvmm_vmm, refvmm_guest_kernel, refvmm_guest_initrd
                           paths on the board (default WORKDIR/vmm, WORKDIR/Image,
                           WORKDIR/initramfs.cpio)
    """

    name = "orin"

    def __init__(self, env, vmm_local, images_dir, role="main"):
        super().__init__(env, role)
        opt = env.config.get_option
        self.workdir = str(opt("refvmm_workdir", "/tmp/refvmm"))
        self.deploy_files = str(opt("refvmm_deploy", "true")).lower() not in ("false", "0", "no")
        self.vmm_local = vmm_local
        self.images_dir = images_dir
        self.vmm_path = str(opt("refvmm_vmm", f"{self.workdir}/vmm"))
        self.guest_kernel = str(opt("refvmm_guest_kernel", f"{self.workdir}/Image"))
        self.guest_initrd = str(opt("refvmm_guest_initrd", f"{self.workdir}/initramfs.cpio"))
        self.scratch_dir = f"{self.workdir}/tmp"

    def start(self):
        super().start()
        arch = self.run_check("uname -m").strip()
        if arch != "aarch64":
            raise BoardError(f"board '{self.name}' is {arch}, expected aarch64")
        self.run_check(f"mkdir -p {self.scratch_dir}")
        if not self.deploy_files:
            return
        files = {self.vmm_path: self.vmm_local,
                 self.guest_kernel: os.path.join(self.images_dir, "Image"),
                 self.guest_initrd: os.path.join(self.images_dir, "l2-initramfs.cpio")}
        missing = [p for p in files.values() if not os.path.isfile(p)]
        if missing:
            raise BoardError(f"missing local build outputs {missing}: run `make aarch64 images`")
        self.deploy(files)
