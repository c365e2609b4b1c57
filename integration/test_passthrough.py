"""Platform device passthrough end to end on the emulated aarch64 board.

In the board, QEMU virt's PL061 GPIO (AMBA, 9030000.pl061) and fw-cfg (platform,
9020000.fw-cfg) are handed to VFIO in no-IOMMU mode by refvmm-vfio-bind (modules from
images/vfio), then passed 1:1 (addr=identity) to one L2 guest:
  - the L2's pl061 driver binds to the real device and reads its ID registers through the
    mmapped region (4 KiB, page-aligned);
  - `system_powerdown` on the OUTER QEMU's monitor raises pl061 line 3 (QEMU virt's power
    button): host IRQ → VFIO eventfd → KVM irqfd → L2 pl061 → L2 gpio-keys → KEY_POWER on
    the L2's /dev/input/event*; the latency is measured and reported;
  - the fw-cfg signature reads "QEMU" through the trapped region (0x18 bytes: not
    page-sized, so every access is an MMIO exit forwarded with pread/pwrite).
The L2 gets its gpio-keys node from a DT fragment this test compiles with dtc (`dtb=` key):
the pl061 node plus a gpio-keys node using it, like QEMU virt's own (the generated node
cannot know about consumers of the controller). fw-cfg uses the VMM's generated node.
Negative cases: devices not bound to VFIO and bad placements fail with exit status 2 and
one line naming the input, before anything starts.
"""
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

import pytest

from boards import VmmResult, guest_args
from boards.base import BoardTimeout

pytestmark = pytest.mark.board_feature("guest-boot", "qemu-monitor")

PL061 = "/sys/bus/amba/devices/9030000.pl061"
FWCFG = "/sys/bus/platform/devices/9020000.fw-cfg"
PL031 = "/sys/bus/amba/devices/9010000.pl031"          # RTC, left on rtc-pl031
UNBOUND = "/sys/bus/platform/devices/a003e00.virtio_mmio"  # virtio_mmio is a module: no driver
PL061_SPI = 7            # QEMU virt's GPIO interrupt (host SPI, used 1:1 in the guest)
POWER_LINE = 3           # QEMU virt wires its power button to pl061 line 3
KEY_POWER = 116
EV_KEY = 1
FRAG_PHANDLE = 0x8061    # the pl061's phandle inside the fragment (1 = GIC, 2 = clock)

# DT fragment (docs: reference-vmm/src/passthrough/dt_node.h, dt_node_add_fragment)
FRAGMENT_DTS = f"""/dts-v1/;
/ {{
	#address-cells = <2>;
	#size-cells = <2>;
	pl061@9030000 {{
		compatible = "arm,pl061", "arm,primecell";
		reg = <0x0 0x09030000 0x0 0x1000>;
		interrupt-parent = <1>;
		interrupts = <0 {PL061_SPI} 4>;
		clocks = <2>;
		clock-names = "apb_pclk";
		gpio-controller;
		#gpio-cells = <2>;
		phandle = <{FRAG_PHANDLE:#x}>;
	}};
	gpio-keys {{
		compatible = "gpio-keys";
		poweroff {{
			label = "GPIO Key Poweroff";
			linux,code = <{KEY_POWER}>;
			gpios = <{FRAG_PHANDLE:#x} {POWER_LINE} 0>;
		}};
	}};
}};
"""

# L2 /payload: report what the guest sees, then wait for one key event (fd opened before
# REFVMM-PT-ARMED so no event can slip between the marker and the read).
PAYLOAD = r"""#!/bin/sh
for m in evdev gpio_keys; do modprobe $m || echo "REFVMM-PT-MODPROBE-FAILED $m"; done
a=/sys/bus/amba/devices/9030000.pl061
drv=none; [ -e $a/driver ] && drv=$(basename "$(readlink $a/driver)")
echo "REFVMM-PT-AMBA id=$(cat $a/id 2>/dev/null || echo none) driver=$drv"
for c in /sys/class/gpio/gpiochip*; do
	[ -e "$c/label" ] && echo "REFVMM-PT-GPIOCHIP label=$(cat $c/label) ngpio=$(cat $c/ngpio)"
done
# fw-cfg (MMIO layout, QEMU docs/specs/fw_cfg.txt): data 0x0, selector 0x8 (16-bit,
# big-endian), DMA 0x10. Selector 0x0000 = FW_CFG_SIGNATURE; each 1-byte data read returns
# the next byte.
devmem 0x09020008 16 0x0000
sig=
for i in 1 2 3 4; do b=$(devmem 0x09020000 8); sig="$sig$(printf %02x $((b)))"; done
echo "REFVMM-PT-FWCFG sig=$sig"
ev=
for d in /sys/class/input/event*; do
	[ "$(cat $d/device/name 2>/dev/null)" = gpio-keys ] && ev=/dev/input/$(basename $d)
done
echo "REFVMM-PT-INPUT dev=${ev:-none}"
grep -e pl061 -e 'Key' /proc/interrupts | tr -s ' ' | sed 's/^/REFVMM-PT-IRQ-BEFORE /'
[ -n "$ev" ] || exit 4
exec 3<"$ev"
# console round trips (shell builtins only) so the test can estimate the one-way console
# delay that its latency figures include
echo "REFVMM-PT-SYNC-READY"
i=0
while [ $i -lt 5 ] && read -r l; do echo "REFVMM-PT-PONG $l"; i=$((i+1)); done
# dd waits in read(); when the event comes it exits and the builtin echo tells the test at
# once (the hex dump, which forks, comes after the marker)
echo "REFVMM-PT-ARMED"
timeout 60 dd bs=24 count=1 of=/tmp/ev <&3 2>/dev/null
echo "REFVMM-PT-KEY-SEEN"
echo "REFVMM-PT-KEY ev=$(hexdump -v -e '1/1 "%02x"' /tmp/ev)"
rest=$(timeout 5 dd bs=24 count=3 <&3 2>/dev/null | hexdump -v -e '1/1 "%02x"')
echo "REFVMM-PT-KEY-REST ev=$rest"
grep -e pl061 -e 'Key' /proc/interrupts | tr -s ' ' | sed 's/^/REFVMM-PT-IRQ-AFTER /'
exit 0
"""


def parse_events(hexstr):
    """struct input_event on arm64 (24 bytes: tv_sec, tv_usec, type, code, value), LE."""
    out = []
    raw = bytes.fromhex(hexstr or "")
    for i in range(0, len(raw) - len(raw) % 24, 24):
        e = raw[i:i + 24]
        out.append({"time": int.from_bytes(e[0:8], "little") + int.from_bytes(e[8:16], "little") / 1e6,
                    "type": int.from_bytes(e[16:18], "little"), "code": int.from_bytes(e[18:20], "little"),
                    "value": int.from_bytes(e[20:24], "little", signed=True)})
    return out


def put_file(board, path, data):
    """Small files onto the board (base64 through the shell)."""
    if hasattr(board, "put_file"):
        board.put_file(path, data)
        return
    import base64
    blob = base64.b64encode(data).decode()
    board.run_check(f": > {path}")
    for i in range(0, len(blob), 600):
        board.run_check(f"echo {blob[i:i + 600]} | base64 -d >> {path}")


def compile_dts(text):
    dtc = shutil.which("dtc")
    if not dtc:
        pytest.fail("dtc not found (install device-tree-compiler: ci/install-deps.sh)", pytrace=False)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "frag.dts"), os.path.join(tmp, "frag.dtb")
        with open(src, "w", encoding="utf-8") as f:
            f.write(text)
        subprocess.run([dtc, "-q", "-I", "dts", "-O", "dtb", "-o", out, src], check=True)
        with open(out, "rb") as f:
            return f.read()


def markers(console, name):
    """Values of `REFVMM-PT-<name> key=value ...` lines, as dicts, in order."""
    out = []
    for m in re.finditer(rf"^REFVMM-PT-{name} (.*)$", console, re.M):
        out.append(dict(kv.split("=", 1) for kv in m.group(1).strip().split() if "=" in kv))
    return out


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def vfio_bound(board):
    """Load the VFIO modules in the board and bind pl061 + fw-cfg to vfio-amba/-platform;
    give them back to their usual drivers afterwards."""
    if board.run("command -v refvmm-vfio-bind").status != 0:
        pytest.fail("refvmm-vfio-bind is not on the board: run `make images` "
                    "(images/vfio/build-modules.sh)", pytrace=False)
    st = board.run_check(f"refvmm-vfio-bind --status {PL061}").strip()
    if "driver=pl061_gpio" in st:
        pytest.fail("the board's pl061 is bound to pl061_gpio: its IRQ cannot be passed through "
                    "after unbinding it (Linux 6.1 leaves the chained parent IRQ unrequestable); "
                    "boot the board with initcall_blacklist=pl061_gpio_driver_init "
                    "(boards/qemu_aarch64.py does)", pytrace=False)
    res = board.run(f"refvmm-vfio-bind {PL061} {FWCFG}", timeout=60)
    yield res
    for dev in (PL061, FWCFG):
        board.run(f"refvmm-vfio-bind --restore {dev}", timeout=60)


@pytest.fixture(scope="module")
def frag_dtb(board):
    path = f"{board.scratch_dir}/pt-pl061-keys.dtb"
    put_file(board, path, compile_dts(FRAGMENT_DTS))
    return path


class PassthroughRun:
    """One L2 boot with both devices, driven on the board console (the guest's output is
    tee'd to a file and fetched afterwards): markers, timings, the VMM's result."""

    def __init__(self):
        self.result = None          # VmmResult
        self.armed = False
        self.key_seen = False
        self.powerdown_error = None
        self.t_armed = self.t_powerdown = self.t_key = None
        self.notes = []
        self.rtts = []              # console round trips host → L2 shell → host (s)

    def summary(self):
        text = self.result.summary() if self.result else "(no VMM result)"
        return "\n".join(self.notes + [text])


@pytest.fixture(scope="module")
def pt_run(board, vmm, vfio_bound, frag_dtb):
    assert vfio_bound.status == 0, f"refvmm-vfio-bind failed:\n{vfio_bound.stdout}"
    vmm.check_binary()
    initrd = vmm.initramfs_with_payload(PAYLOAD, name="passthrough")
    args = guest_args(board, vcpus=1, memory_mib=256, cmdline="quiet", log="info", initrd=initrd,
                      extra=["--passthrough", f"sysfs={PL061},addr=identity,irq=0:{PL061_SPI},dtb={frag_dtb}",
                             "--passthrough", f"sysfs={FWCFG},addr=identity"])
    d = board.scratch_dir
    out, err, rcf, script = f"{d}/pt.out", f"{d}/pt.err", f"{d}/pt.rc", f"{d}/pt-run.sh"
    argv = [board.vmm_path] + args
    put_file(board, script, (
        "#!/bin/sh\n"
        f"rm -f {out} {err} {rcf}\n"
        f"( timeout -s KILL 300 {shlex.join(argv)} 2>{err}; echo $? >{rcf} ) | tee {out}\n"
        f"echo REFVMM-PT-VMM-EXIT=$(cat {rcf})\n").encode())
    run = PassthroughRun()
    t_start = time.monotonic()
    board.send(f"sh {script}\n")
    exit_re = r"REFVMM-PT-VMM-EXIT=\d+"
    try:
        first = board.expect(rf"REFVMM-PT-SYNC-READY|{exit_re}", timeout=240)
        if first == "REFVMM-PT-SYNC-READY":
            # the VMM's stdin is the board console: typed lines reach the guest's shell
            for k in range(5):
                t1 = time.monotonic()
                board.send(f"p{k}\n")
                board.expect(rf"REFVMM-PT-PONG p{k}[\r\n]", timeout=30)
                run.rtts.append(time.monotonic() - t1)
            first = board.expect(rf"REFVMM-PT-ARMED[\r\n]|{exit_re}", timeout=60)
        if first.startswith("REFVMM-PT-ARMED"):
            run.armed = True
            run.t_armed = time.monotonic()
            run.t_powerdown = time.monotonic()
            try:
                board.monitor("system_powerdown")
            except Exception as exc:  # pylint: disable=broad-except
                run.powerdown_error = repr(exc)
            try:
                board.expect(r"REFVMM-PT-KEY-SEEN", timeout=90)
                run.t_key = time.monotonic()
                run.key_seen = True
            except BoardTimeout:
                run.notes.append("no REFVMM-PT-KEY-SEEN line within 90 s of system_powerdown")
            board.expect(exit_re, timeout=120)
    except BoardTimeout as exc:
        run.notes.append(f"console: {exc}")
        board.send("\x03\n")          # give the board shell back to the other tests
        time.sleep(2)
    elapsed = time.monotonic() - t_start
    status = board.run(f"cat {rcf} 2>/dev/null || echo 137").stdout.strip()
    from boards.vmm import _fetch  # pylint: disable=import-outside-toplevel
    run.result = VmmResult(argv=argv, status=int(status) if status.isdigit() else -1,
                           console=_fetch(board, out, 120), stderr=_fetch(board, err, 60),
                           elapsed=elapsed)
    base = os.path.join(vmm.log_dir, "passthrough-guest")
    with open(base + ".console.log", "w", encoding="utf-8") as f:
        f.write(run.result.console)
    with open(base + ".stderr.log", "w", encoding="utf-8") as f:
        f.write(f"# {shlex.join(argv)}\n# exit status {run.result.status}\n{run.result.stderr}")
    return run


def _require_boot(run):
    if "REFVMM-L2-READY" not in run.result.console:
        pytest.fail("the L2 guest with passed-through devices did not boot\n" + run.summary(), pytrace=False)


# ------------------------------------------------------------------ binding in the board

def test_bind_script_binds_pl061_and_fwcfg(vfio_bound, board):
    out = vfio_bound.stdout
    assert vfio_bound.status == 0, out
    assert re.search(r"9030000\.pl061 bound to vfio-amba \(/dev/vfio/noiommu-\d+\)", out), out
    assert re.search(r"9020000\.fw-cfg bound to vfio-platform \(/dev/vfio/noiommu-\d+\)", out), out
    status = board.run_check(f"refvmm-vfio-bind --status {PL061}; refvmm-vfio-bind --status {FWCFG}")
    assert "9030000.pl061 driver=vfio-amba" in status and "9020000.fw-cfg driver=vfio-platform" in status, status


# ------------------------------------------------------------------ positive cases (one L2 boot)

def test_guest_boots_and_powers_off(pt_run):
    _require_boot(pt_run)
    pt_run.result.check(expect_status=0)
    assert pt_run.result.done_rc == 0, pt_run.summary()


def test_l2_pl061_driver_reads_real_id(pt_run):
    _require_boot(pt_run)
    amba = markers(pt_run.result.console, "AMBA")
    assert amba, pt_run.summary()
    assert amba[0].get("id") == "00041061", f"L2 AMBA id of 9030000.pl061: {amba[0]}\n" + pt_run.summary()
    assert amba[0].get("driver") == "pl061_gpio", f"L2 driver of 9030000.pl061: {amba[0]}"
    chips = markers(pt_run.result.console, "GPIOCHIP")
    assert any(c.get("label") == "9030000.pl061" and c.get("ngpio") == "8" for c in chips), \
        f"no 8-line gpiochip for 9030000.pl061 in L2: {chips}\n" + pt_run.summary()


def test_powerdown_raises_key_power_in_l2(pt_run, record_testsuite_property):
    _require_boot(pt_run)
    r = pt_run
    inp = markers(r.result.console, "INPUT")
    assert inp and inp[0].get("dev", "none") != "none", "no gpio-keys input device in L2\n" + r.summary()
    assert r.armed, "the L2 never armed its key reader\n" + r.summary()
    assert r.powerdown_error is None, f"system_powerdown on the board's QMP failed: {r.powerdown_error}"
    assert r.key_seen, "system_powerdown did not reach the L2 as a key event\n" + r.summary()
    key = markers(r.result.console, "KEY")
    events = parse_events(key[0].get("ev", "")) if key else []
    assert events and events[0]["type"] == EV_KEY and events[0]["code"] == KEY_POWER \
        and events[0]["value"] == 1, f"first L2 input event: {events}\n" + r.summary()
    rest = parse_events((markers(r.result.console, "KEY-REST") or [{}])[0].get("ev", ""))
    released = any(e["type"] == EV_KEY and e["code"] == KEY_POWER and e["value"] == 0 for e in rest)
    # latency: QMP command → the guest's marker on the console (upper bound), minus the
    # console's one-way delay (half the shortest host → L2 shell → host round trip)
    total_ms = (r.t_key - r.t_powerdown) * 1000
    one_way_ms = min(r.rtts) * 500 if r.rtts else None
    est_ms = total_ms - one_way_ms if one_way_ms is not None else None
    record_testsuite_property("pt_irq_to_console_ms", round(total_ms, 1))
    if one_way_ms is not None:
        record_testsuite_property("pt_console_one_way_ms", round(one_way_ms, 1))
        record_testsuite_property("pt_irq_latency_est_ms", round(est_ms, 1))
    est = "n/a" if est_ms is None else f"~{est_ms:.1f} ms"
    print(f"system_powerdown → KEY_POWER read in L2: {total_ms:.1f} ms to the guest's marker on the "
          f"host; console one way ~{one_way_ms or 0:.1f} ms (half the shortest of {len(r.rtts)} "
          f"round trips) → interrupt path {est}; key release seen: {released}")
    before = [l for l in re.findall(r"^REFVMM-PT-IRQ-BEFORE (.*)$", r.result.console, re.M)]
    after = [l for l in re.findall(r"^REFVMM-PT-IRQ-AFTER (.*)$", r.result.console, re.M)]
    print("L2 /proc/interrupts before:", before, "after:", after)


def test_fwcfg_signature_through_trapped_region(pt_run):
    _require_boot(pt_run)
    fw = markers(pt_run.result.console, "FWCFG")
    assert fw, pt_run.summary()
    sig = bytes.fromhex(fw[0].get("sig", "")).decode("latin-1")
    assert sig == "QEMU", f"fw-cfg signature read in L2: {sig!r}\n" + pt_run.summary()


# ------------------------------------------------------------------ negative cases (exit 2)

def _usage_error(vmm, board, label, *passthrough):
    extra = []
    for p in passthrough:
        extra += ["--passthrough", p]
    r = vmm.run(guest_args(board, vcpus=1, memory_mib=256, cmdline="quiet", log="info", extra=extra),
                timeout=60, label=label)
    errors = [l for l in r.stderr.splitlines()
              if l.strip() and not re.match(r"vmm: (info|debug|warn(ing)?): ", l)]
    assert r.status == 2, f"exit status {r.status}, expected 2\n" + r.summary()
    assert len(errors) == 1, f"expected one error line, got {errors}\n" + r.summary()
    assert "REFVMM-L2-READY" not in r.console, "the guest booted\n" + r.summary()
    return errors[0]


def test_unbound_device_is_refused(vmm, board, vfio_bound):
    st = board.run_check(f"refvmm-vfio-bind --status {UNBOUND}").strip()
    if "driver=-" not in st:
        board.run_check(f"refvmm-vfio-bind --release {UNBOUND}")
    line = _usage_error(vmm, board, "pt-unbound", f"sysfs={UNBOUND}")
    assert "a003e00.virtio_mmio" in line and "not bound" in line, line


def test_device_on_its_own_driver_is_refused(vmm, board, vfio_bound):
    st = board.run_check(f"refvmm-vfio-bind --status {PL031}").strip()
    assert "driver=rtc-pl031" in st, f"precondition: pl031 on rtc-pl031 ({st})"
    line = _usage_error(vmm, board, "pt-wrong-driver", f"sysfs={PL031}")
    assert "9010000.pl031" in line and "rtc-pl031" in line, line


def test_address_inside_guest_ram_is_refused(vmm, board, vfio_bound):
    line = _usage_error(vmm, board, "pt-addr-in-ram", f"sysfs={PL061},addr=0x40000000")
    assert "9030000.pl061" in line and "0x40000000" in line and "RAM" in line, line


def test_two_devices_at_one_address_are_refused(vmm, board, vfio_bound):
    line = _usage_error(vmm, board, "pt-same-addr", f"sysfs={PL061},addr=0x9030000",
                        f"sysfs={FWCFG},addr=0x9030000")
    assert "9020000.fw-cfg" in line and "overlaps 9030000.pl061" in line, line


def test_address_on_a_vmm_device_is_refused(vmm, board, vfio_bound):
    # the guest's own PL011 lives at 0x09000000
    line = _usage_error(vmm, board, "pt-addr-on-uart", f"sysfs={PL061},addr=0x9000000")
    assert "9030000.pl061" in line and "0x9000000" in line and "overlaps" in line, line


def test_irq_index_the_device_lacks_is_refused(vmm, board, vfio_bound):
    line = _usage_error(vmm, board, "pt-bad-irq-index", f"sysfs={PL061},addr=identity,irq=5:40")
    assert "9030000.pl061" in line and "irq index 5" in line, line


def test_irq_on_the_uarts_spi_is_refused(vmm, board, vfio_bound):
    # guest SPI 1 is the VMM's own PL011
    line = _usage_error(vmm, board, "pt-irq-on-uart", f"sysfs={PL061},addr=identity,irq=0:1")
    assert "9030000.pl061" in line and "1" in line, line


@pytest.mark.parametrize("spi", [300, 5000])
def test_irq_beyond_the_gic_is_refused(vmm, board, vfio_bound, spi):
    # the VMM's GICv3 has 256 interrupt IDs (SPIs 0..223); 987 is the architectural limit
    line = _usage_error(vmm, board, f"pt-irq-spi-{spi}", f"sysfs={PL061},addr=identity,irq=0:{spi}")
    assert str(spi) in line, line


# ------------------------------------------------------------------ what the VMM set up

def test_pl061_mapped_directly_fwcfg_trapped(pt_run):
    """pl061: one 4 KiB region, page-aligned → mmapped into the guest; one level IRQ on the
    requested SPI. fw-cfg: 0x18 bytes → trapped and forwarded."""
    _require_boot(pt_run)
    err = pt_run.result.stderr
    assert re.search(r"9030000\.pl061: region 0 at guest 0x9030000 \(0x1000 bytes, direct\)", err), err
    assert re.search(rf"9030000\.pl061: IRQ 0 → guest SPI {PL061_SPI} \(level\)", err), err
    assert re.search(r"9020000\.fw-cfg: region 0 at guest 0x9020000 \(0x18 bytes, trapped\)", err), err
