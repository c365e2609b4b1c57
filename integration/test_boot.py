"""Booting the L2 guest with our VMM inside the board: markers, exit status, vCPUs, memory,
command line, kernel panic detection and the boot-timer measurement. Guest boots are shared
between assertions through module-scoped fixtures; each assertion is its own test case."""
import shlex

import pytest

from boards import BoardTimeout, GuestFailure, guest_args
from conftest import record_boot_time

pytestmark = pytest.mark.board_feature("guest-boot")

TOKEN = "refvmm.test_token=c0ffee42"
DEFAULT_MEM, ONE_CPU_MEM = 256, 384
# modules the guest initramfs ships for the virtio work (dependencies load with them)
GUEST_MODULES = ["virtio_mmio", "virtio_blk", "virtio_console", "vmw_vsock_virtio_transport", "ext4"]


# Guest boots pass `quiet`: every console byte costs MMIO exits in the nested guest (the full
# kernel log, ~14 KB, adds 5-10 s), which would drown the boot time in console time. Panic
# messages print even with quiet; `make run` shows a full boot log.
@pytest.fixture(scope="module")
def two_cpu_boot(vmm):
    return vmm.boot_guest(payload="info", vcpus=2, memory_mib=DEFAULT_MEM, cmdline_extra="quiet " + TOKEN,
                          label="boot-2cpu-info")


@pytest.fixture(scope="module")
def one_cpu_boot(vmm):
    return vmm.boot_guest(payload="info", vcpus=1, memory_mib=ONE_CPU_MEM,
                          cmdline_extra="quiet refvmm.modules=" + ",".join(GUEST_MODULES),
                          label="boot-1cpu-info")


@pytest.fixture(scope="module")
def panic_boot(vmm):
    return vmm.boot_guest(payload="panic", vcpus=1, memory_mib=DEFAULT_MEM, cmdline_extra="quiet",
                          label="boot-panic",
                          allow_panic=True)


def test_l2_ready_marker(two_cpu_boot):
    assert two_cpu_boot.l2_ready, "REFVMM-L2-READY not on the guest console\n" + two_cpu_boot.summary()


def test_exit_status_zero_on_guest_poweroff(two_cpu_boot):
    two_cpu_boot.check(expect_status=0)
    assert two_cpu_boot.done_rc == 0, two_cpu_boot.summary()


def test_two_vcpus(two_cpu_boot):
    assert two_cpu_boot.info.get("cpus") == "2", two_cpu_boot.summary()


def test_one_vcpu(one_cpu_boot):
    one_cpu_boot.check(expect_status=0)
    assert one_cpu_boot.info.get("cpus") == "1", one_cpu_boot.summary()


def test_guest_modules_load(one_cpu_boot):
    """The guest initramfs's modules and modules.dep work with busybox modprobe."""
    assert "REFVMM-L2-MODPROBE-FAILED" not in one_cpu_boot.console, one_cpu_boot.summary()
    loaded = set(one_cpu_boot.info.get("modules", "").split(","))
    want = set(GUEST_MODULES) | {"vsock", "vmw_vsock_virtio_transport_common", "jbd2", "mbcache", "crc16"}
    assert want <= loaded, f"not loaded in the guest: {sorted(want - loaded)}"


@pytest.mark.parametrize("boot,mib", [("two_cpu_boot", DEFAULT_MEM), ("one_cpu_boot", ONE_CPU_MEM)],
                         ids=[f"{DEFAULT_MEM}MiB", f"{ONE_CPU_MEM}MiB"])
def test_memory_size(request, boot, mib):
    result = request.getfixturevalue(boot)
    assert "ram_bytes" in result.info, result.summary()
    seen, want = int(result.info["ram_bytes"]), mib << 20
    assert abs(seen - want) <= want // 100, f"guest sees {seen} bytes of RAM, --memory gave {want}"


def test_cmdline_token_reaches_guest(two_cpu_boot):
    cmdline = two_cpu_boot.info.get("cmdline", "")
    assert TOKEN in cmdline.split(), f"/proc/cmdline in the guest: {cmdline!r}"


def test_guest_panic_is_reported_as_failure(panic_boot):
    assert panic_boot.panicked, "no 'Kernel panic' on the console\n" + panic_boot.summary()
    assert panic_boot.status == 3, f"VMM exit status {panic_boot.status} after a guest panic " \
                                   "with panic=-1 (expected 3: guest requested reset)"
    with pytest.raises(GuestFailure, match="Kernel panic"):
        panic_boot.check(expect_status=3)


def test_boot_timer_reports_l2_boot_time(two_cpu_boot, board, record_testsuite_property):
    ms = two_cpu_boot.boot_timer_ms
    assert ms is not None, "no 'boot-timer: guest signalled after N ms' line in the VMM log\n" \
                           + two_cpu_boot.summary()
    assert 0 < ms < two_cpu_boot.elapsed * 1000, f"implausible boot time {ms} ms"
    record_testsuite_property("l2_boot_ms", ms)
    path = record_boot_time(board, two_cpu_boot, vcpus=2, memory_mib=DEFAULT_MEM,
                            cmdline=two_cpu_boot.info.get("cmdline", ""))
    print(f"L2 boot to init (boot-timer) on {board.name}: {ms:.1f} ms; VMM run {two_cpu_boot.elapsed:.2f} s "
          f"(recorded in {path})")


@pytest.fixture(scope="module")
def appended_payload_boot(vmm):
    script = "#!/bin/sh\necho REFVMM-APPENDED-PAYLOAD-RAN\nexit 5\n"
    initrd = vmm.initramfs_with_payload(script, name="appended")
    return vmm.boot_guest(vcpus=1, memory_mib=DEFAULT_MEM, cmdline_extra="quiet", initrd=initrd,
                          label="boot-appended-payload")


def test_appended_payload_runs(appended_payload_boot):
    """A test can append its own cpio with /payload to the guest initramfs; its exit status
    is reported by the guest's init and does not change the VMM's (guest powered off: 0)."""
    r = appended_payload_boot
    assert "REFVMM-APPENDED-PAYLOAD-RAN" in r.console, r.summary()
    assert r.done_rc == 5, r.summary()
    r.check(expect_status=0)


@pytest.mark.board_feature("console")
def test_interactive_guest_shell(board, vmm):
    """The VMM in the foreground of the board's console: keystrokes reach the guest (stdin →
    PL011 receive) and its answers come back; the guest's exit powers it off (status 0)."""
    vmm.check_binary()
    args = guest_args(board, vcpus=1, cmdline="quiet refvmm.payload=shell", log="warn")
    board.send(shlex.join([board.vmm_path] + args) + f" 2>{board.scratch_dir}/vmm-interactive.err;"
               " echo REFVMM-VMM-EXIT=$?\n")
    finished = False
    try:
        board.expect(r"refvmm-l2# ", timeout=180)
        board.send("echo typed-$((40+2))\n")           # the echo of this line shows no "42"
        board.expect(r"typed-42", timeout=30)
        board.send("exit 3\n")
        done = board.expect(r"REFVMM-L2-DONE rc=\d+", timeout=60)
        status = board.expect(r"REFVMM-VMM-EXIT=\d+", timeout=60)
        finished = True
    finally:
        if not finished:   # leave the guest shell so the board stays usable for other tests
            board.send("\nexit\n")
            try:
                board.expect(r"REFVMM-VMM-EXIT=\d+", timeout=60)
            except BoardTimeout:
                pass
    assert done.endswith("rc=3"), done
    assert status.endswith("=0"), f"VMM exit status after guest poweroff: {status}"
