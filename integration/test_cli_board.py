"""The VMM on the board rejects bad input with exit status 2 and one line naming the input,
before any VM is started (nothing on the guest console)."""
import pytest

from boards import guest_args

pytestmark = pytest.mark.board_feature("shell")


def _rejected(result, *names):
    assert result.status == 2, f"exit status {result.status}, expected 2\n{result.summary()}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{result.stderr}"
    low = lines[0].lower()
    assert any(n.lower() in low for n in names), f"error line names none of {names}: {lines[0]!r}"
    assert result.console.strip() == "", f"guest console output although no VM should start:\n{result.console}"


def _need(board, attr):
    if not getattr(board, attr):
        pytest.skip(f"board '{board.name}' has no {attr.replace('_', ' ')}")


def test_missing_kernel_file(board, vmm):
    path = f"{board.scratch_dir}/no-such-dir/Image"
    res = vmm.run(["--kernel", f"path={path}"], timeout=60, label="cli-missing-kernel")
    _rejected(res, path)


def test_non_image_kernel(board, vmm):
    _need(board, "guest_initrd")
    res = vmm.run(["--kernel", f"path={board.guest_initrd}"], timeout=60, label="cli-non-image")
    _rejected(res, board.guest_initrd)


def test_zero_vcpus(board, vmm):
    _need(board, "guest_kernel")
    res = vmm.run(guest_args(board, vcpus=0, log=None), timeout=60, label="cli-zero-vcpus")
    _rejected(res, "vcpu", "num")


def test_memory_too_small_for_kernel(board, vmm):
    _need(board, "guest_kernel")
    res = vmm.run(guest_args(board, memory_mib=16, log=None), timeout=60, label="cli-small-memory")
    _rejected(res, "memory", "size_mib")
