"""The emulated aarch64 board: QEMU TCG `virt` with virtualization=on (nested KVM inside),
driven by labgrid's QEMUDriver (power, console, QMP) and ShellDriver (commands).

The board boots the stock Debian kernel (build/images/aarch64/Image) with board.cpio as its
initramfs; that carries /usr/bin/vmm, /guest/Image and /guest/initramfs.cpio (images/build.sh).
labgrid 0.4.1's QEMUDriver has no initrd attribute, so -initrd goes into extra_args; the
environment YAML is generated at run time with absolute paths.
"""
import base64
import json
import os
import select
import shlex
import shutil
import tempfile
import time

import pexpect
import yaml
from labgrid import Environment

from .base import (FEATURE_GUEST_BOOT, FEATURE_KVM, FEATURE_MONITOR, BoardError, BoardTimeout,
                   NotSupported)
from .labgrid_board import LabgridBoard

PROMPT = "refvmm-board# "            # fixed by images/board/init
READY_MARKER = "REFVMM-BOARD-READY"  # printed by images/board/init before the shell starts
# The board's pl061 GPIO is kept for passthrough tests (test_passthrough.py): its built-in
# driver must never bind, because unbinding a gpiochip with a chained parent IRQ leaves that
# IRQ marked IRQ_NOREQUEST in Linux 6.1, and vfio-amba's request_irq then fails (every
# VFIO_DEVICE_SET_IRQS returns EINVAL). Nothing in the board uses its GPIO lines.
BOARD_BOOT_ARGS = "console=ttyAMA0 panic=-1 initcall_blacklist=pl061_gpio_driver_init"


class QemuAarch64Board(LabgridBoard):
    name = "qemu-aarch64"
    arch = "aarch64"
    vmm_path = "/usr/bin/vmm"
    guest_kernel = "/guest/Image"
    guest_initrd = "/guest/initramfs.cpio"
    scratch_dir = "/tmp"

    def __init__(self, images_dir, qemu_bin=None, smp=2, memory_mib=2048, boot_args="",
                 boot_timeout=300):
        self.images_dir = os.path.abspath(images_dir)
        self.kernel = os.path.join(self.images_dir, "Image")
        self.initrd = os.path.join(self.images_dir, "board.cpio")
        for path in (self.kernel, self.initrd):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path} is missing: run `make images`")
        qemu_bin = qemu_bin or shutil.which("qemu-system-aarch64")
        if not qemu_bin:
            raise BoardError("qemu-system-aarch64 not found (install qemu-system-arm)")
        self.boot_timeout = int(boot_timeout)
        self.ready_seconds = None
        self._tmp = tempfile.mkdtemp(prefix="refvmm-board-")
        config = {
            "targets": {"main": {"drivers": {
                "QEMUDriver": {
                    "qemu_bin": "qemu",
                    "machine": "virt,virtualization=on,gic-version=3",
                    "cpu": "max,pauth=off",
                    "memory": f"{int(memory_mib)}M",
                    "kernel": "kernel",
                    "extra_args": f"-smp {int(smp)} -no-reboot -initrd {self.initrd}",
                    "boot_args": f"{BOARD_BOOT_ARGS} {boot_args}".strip(),
                },
                "ShellDriver": {
                    "prompt": PROMPT,
                    # the board has no login; ShellDriver requires these but never sees a login
                    "login_prompt": "refvmm-board login: ",
                    "username": "root",
                    "login_timeout": self.boot_timeout,
                },
            }}},
            "tools": {"qemu": os.path.abspath(qemu_bin)},
            "images": {"kernel": self.kernel},
        }
        self.env_file = os.path.join(self._tmp, "qemu-aarch64.yaml")
        with open(self.env_file, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f)
        super().__init__(Environment(config_file=self.env_file))
        self.qemu = self.target.get_driver("QEMUDriver", activate=False)

    def start(self):
        t0 = time.monotonic()
        self.target.activate(self.qemu)
        self.qemu.on()
        self._started = True
        self.console = self.qemu
        try:
            self.expect(READY_MARKER, timeout=self.boot_timeout)
        except BoardTimeout as exc:
            raise BoardError(f"board did not print {READY_MARKER}: {exc}\nconsole tail:\n"
                             f"{self._console_tail()}") from exc
        self.ready_seconds = time.monotonic() - t0
        self.cmd = self.target.get_driver("ShellDriver")
        self.boot_seconds = time.monotonic() - t0

    def _qemu_status(self):
        """QEMU's exit status, or None while it runs."""
        child = getattr(self.qemu, "_child", None)
        return child.poll() if child is not None else None

    def _console_tail(self, size=3000):
        exp = getattr(self.qemu, "_expect", None)
        data = (getattr(exp, "before", b"") or b"") + (getattr(exp, "buffer", b"") or b"")
        sock = getattr(self.qemu, "_clientsocket", None)
        if sock is not None and self._qemu_status() is not None:
            # QEMU is gone: whatever it wrote last is still in the socket, unread
            try:
                while select.select([sock], [], [], 0.2)[0]:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
        return data[-size:].decode("utf-8", "replace")

    def _died(self):
        return BoardError(f"the board's QEMU exited (status {self._qemu_status()}); console tail:\n"
                          f"{self._console_tail()}")

    def expect(self, pattern, timeout=30.0):
        # wait in short slices so a QEMU that exited (board panic, -no-reboot) is noticed at once
        deadline = time.monotonic() + timeout
        while True:
            if self._qemu_status() is not None:
                raise self._died()
            remaining = deadline - time.monotonic()
            try:
                return super().expect(pattern, timeout=max(0.01, min(1.0, remaining)))
            except BoardTimeout:
                if time.monotonic() >= deadline:
                    raise BoardTimeout(f"'{pattern}' did not appear on the console of {self.name} "
                                       f"within {timeout} s") from None

    def run(self, cmd, timeout=30.0):
        if self._qemu_status() is not None:
            raise self._died()
        try:
            return super().run(cmd, timeout=timeout)
        except BoardError:
            if self._qemu_status() is not None:
                raise self._died() from None
            raise

    def put_file(self, path, data, mode=0o644):
        """Type base64 text into `base64 -d` on the console with the tty's echo off (~10 KB/s)
        instead of command lines through the shell's line editor (~0.3 KB/s, and lines
        over ~1000 characters hang it)."""
        if isinstance(data, str):
            data = data.encode()
        self._puts = getattr(self, "_puts", 0) + 1
        n = 1000 + 2 * self._puts
        q = shlex.quote(path)
        self.send(f"stty -echo; echo REFVMM-PUT-$(({n}+1))-READY; base64 -d >{q}; "
                  f"echo REFVMM-PUT-$(({n}+2))-rc=$?; stty echo\n")
        try:
            self.expect(f"REFVMM-PUT-{n + 1}-READY", timeout=30)
            # base64 reads the console now (cooked mode, not the line editor): data, then EOF
            blob = base64.encodebytes(data).decode()
            self.send(blob + "\x04")
            done = self.expect(rf"REFVMM-PUT-{n + 2}-rc=\d+", timeout=30 + len(blob) / 2000)
        except BoardTimeout:
            self.send("\x04\x03\nstty echo\n")
            raise
        if not done.endswith("rc=0"):
            raise BoardError(f"writing {path} on {self.name} failed ({done})")
        self.run_check(f"chmod {mode:o} {q} && test $(wc -c < {q}) -eq {len(data)}")

    def power_off(self):
        if not self._started:
            return
        self._started = False
        child = getattr(self.qemu, "_child", None)
        if child is not None and child.poll() is not None:
            # QEMU already exited (board powered itself off): nothing to quit
            self.qemu.status = 0
            self.qemu._child = None  # pylint: disable=protected-access
        try:
            self.target.deactivate_all_drivers()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def features(self):
        return super().features() | {FEATURE_MONITOR}

    def missing_reason(self, feature):
        if feature in (FEATURE_KVM, FEATURE_GUEST_BOOT) and feature not in self.features():
            return ("the emulated board has no /dev/kvm: QEMU must run with "
                    "virtualization=on and a kernel with KVM")
        return super().missing_reason(feature)

    def monitor(self, command, arguments=None):
        if not self.qemu.status:
            raise NotSupported("the board's QEMU is not running")
        if arguments is None:
            return self.qemu.monitor_command(command)
        # labgrid 0.4.1's QMPMonitor.execute() takes no arguments: speak QMP on its streams
        qmp = self.qemu.qmp
        qmp.monitor_in.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        qmp.monitor_in.flush()
        answer = qmp._read_parse_json()  # pylint: disable=protected-access
        while answer.get("event"):
            answer = qmp._read_parse_json()  # pylint: disable=protected-access
        if "error" in answer:
            raise BoardError(f"QMP {command}: {answer['error']}")
        return answer["return"]
