"""Harness self-tests: the board layer really runs commands and really times out, so the
integration suite cannot pass vacuously."""
import time
import uuid

import pytest

from boards import BoardTimeout


@pytest.mark.board_feature("console")
def test_expect_times_out_on_missing_string(board):
    never = "REFVMM-NEVER-" + uuid.uuid4().hex  # never typed on the console, so never echoed
    t0 = time.monotonic()
    with pytest.raises(BoardTimeout):
        board.expect(never, timeout=3)
    elapsed = time.monotonic() - t0
    assert 2.9 <= elapsed <= 15, f"expect() gave up after {elapsed:.1f} s, wanted ~3 s"


@pytest.mark.board_feature("shell")
def test_command_timeout_is_raised_and_board_recovers(board):
    t0 = time.monotonic()
    with pytest.raises(BoardTimeout):
        board.run("sleep 30", timeout=3)
    elapsed = time.monotonic() - t0
    assert 2.9 <= elapsed <= 20, f"run() gave up after {elapsed:.1f} s, wanted ~3 s"
    res = board.run("echo still-alive")
    assert res.status == 0 and res.stdout.strip() == "still-alive"


@pytest.mark.board_feature("shell")
def test_board_runs_commands(board):
    res = board.run("uname -m")
    assert res.status == 0
    assert res.stdout.strip() == board.arch


@pytest.mark.board_feature("shell")
def test_exit_status_propagates(board):
    assert board.run("exit 7").status == 7
    assert board.run("echo out; echo err >&2; exit 0").status == 0


@pytest.mark.board_feature("shell")
def test_dev_kvm_present(board):
    if board.name == "host-kvm":
        reason = board.missing_reason("kvm")
        if reason:
            pytest.skip(reason)
    res = board.run("test -c /dev/kvm && ls -l /dev/kvm")
    assert res.status == 0, f"/dev/kvm missing on board {board.name}: {res.stdout}"


@pytest.mark.board_feature("qemu-monitor")
def test_qemu_monitor_answers(board):
    status = board.monitor("query-status")
    assert status.get("status") == "running", status
