"""Board layer of the integration tests: one interface (boards.base.Board), several tiers.

  qemu-aarch64  emulated aarch64 board (QEMU TCG, nested KVM), labgrid QEMUDriver+ShellDriver
  orin          real Jetson Orin (or any aarch64 KVM board) from a user labgrid environment
  host-kvm      the host itself, running build/host/vmm
"""
from .base import (FEATURE_CONSOLE, FEATURE_GUEST_BOOT, FEATURE_KVM, FEATURE_MONITOR,
                   FEATURE_SHELL, Board, BoardError, BoardTimeout, CommandResult, NotSupported)
from .vmm import GuestFailure, VmmResult, guest_args, run_vmm

BOARD_NAMES = ("qemu-aarch64", "orin", "host-kvm")


class BoardUnavailable(Exception):
    """This machine cannot provide the requested board (tests needing it are skipped)."""


def make_board(name, *, root, images_dir, vmm_local=None, lg_env=None, boot_timeout=300):
    """Create (not start) the board `name`. Raises BoardUnavailable when this machine lacks it,
    FileNotFoundError when build outputs are missing."""
    import os
    if name == "qemu-aarch64":
        from .qemu_aarch64 import QemuAarch64Board
        return QemuAarch64Board(images_dir, boot_timeout=boot_timeout)
    if name == "orin":
        if lg_env is None:
            raise BoardUnavailable("board 'orin' needs a labgrid environment file describing the "
                                   "hardware: pass --lg-env FILE or set LG_ENV (see docs/testing-boards.md)")
        from .labgrid_board import OrinBoard
        return OrinBoard(lg_env, vmm_local or os.path.join(root, "build/aarch64/vmm"), images_dir)
    if name == "host-kvm":
        from .host import HostBoard
        vmm = vmm_local or os.path.join(root, "build/host/vmm")
        if not os.path.isfile(vmm):
            raise FileNotFoundError(f"{vmm} is missing: run `make host`")
        return HostBoard(vmm, os.path.dirname(os.path.abspath(images_dir)))
    raise ValueError(f"unknown board '{name}' (one of {', '.join(BOARD_NAMES)})")


__all__ = ["Board", "BoardError", "BoardTimeout", "BoardUnavailable", "CommandResult",
           "GuestFailure", "NotSupported", "VmmResult", "guest_args", "make_board", "run_vmm",
           "BOARD_NAMES", "FEATURE_CONSOLE", "FEATURE_GUEST_BOOT", "FEATURE_KVM",
           "FEATURE_MONITOR", "FEATURE_SHELL"]
