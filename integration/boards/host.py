"""The host itself as a board ('host-kvm'): commands run locally, the VMM is build/host/vmm.

There is no console or monitor. Guests boot only if the host has /dev/kvm, its architecture
matches the guest images and its KVM can run Linux (on this project's CI machines /dev/kvm is
PVM, which cannot boot Linux guests: see DESIGN.md §4), so FEATURE_GUEST_BOOT is only claimed
when REFVMM_HOST_BOOTS_LINUX=1 says the host was verified to boot them.
"""
import os
import platform
import subprocess
import tempfile
import time

from .base import (FEATURE_GUEST_BOOT, FEATURE_KVM, FEATURE_SHELL, Board, BoardTimeout,
                   CommandResult)


class HostBoard(Board):
    name = "host-kvm"

    def __init__(self, vmm_path, images_root):
        super().__init__()
        self.arch = platform.machine()
        self.vmm_path = os.path.abspath(vmm_path)
        images = os.path.join(images_root, self.arch)
        kernel = os.path.join(images, "Image" if self.arch == "aarch64" else "bzImage")
        initrd = os.path.join(images, "l2-initramfs.cpio")
        self.guest_kernel = kernel if os.path.isfile(kernel) else None
        self.guest_initrd = initrd if os.path.isfile(initrd) else None
        self._tmp = None

    def start(self):
        self._tmp = tempfile.mkdtemp(prefix="refvmm-host-")
        self.scratch_dir = self._tmp
        self.boot_seconds = 0.0

    def power_off(self):
        if self._tmp:
            subprocess.run(["rm", "-rf", self._tmp], check=False)
            self._tmp = None

    def features(self):
        f = {FEATURE_SHELL}
        if os.access("/dev/kvm", os.R_OK | os.W_OK):
            f.add(FEATURE_KVM)
            if self.guest_kernel and self.guest_initrd and os.environ.get("REFVMM_HOST_BOOTS_LINUX") == "1":
                f.add(FEATURE_GUEST_BOOT)
        return f

    def missing_reason(self, feature):
        if feature in self.features():
            return None
        if feature == FEATURE_KVM:
            return "the host has no usable /dev/kvm"
        if feature == FEATURE_GUEST_BOOT:
            if FEATURE_KVM not in self.features():
                return "the host has no usable /dev/kvm"
            if not self.guest_kernel:
                return f"no guest images for {self.arch} under build/images/{self.arch} (make images builds aarch64)"
            return ("host KVM is not known to boot Linux guests (PVM on CI cannot, DESIGN.md §4); "
                    "set REFVMM_HOST_BOOTS_LINUX=1 on a host whose KVM can")
        return super().missing_reason(feature)

    def run(self, cmd, timeout=30.0):
        t0 = time.monotonic()
        try:
            p = subprocess.run(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout, cwd=self.scratch_dir, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BoardTimeout(f"command did not finish within {timeout} s on the host: {cmd}") from exc
        return CommandResult(stdout=p.stdout.decode("utf-8", "replace").rstrip("\n"),
                             status=p.returncode, elapsed=time.monotonic() - t0)
