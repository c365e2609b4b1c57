"""Board benchmarks (`make bench`, tests.json entry bench_board): measured on the board, checked
against bench/targets.json (part "board") by bench/bench.py, which writes
build/results/bench/board.json and the merged build/results/bench.json / bench.md.

  l2_boot_{1,2}vcpu_ms       L2 boot to init by the boot-timer line, `quiet`, 256 MiB, median of 5
  vmm_setup_to_guest_ms      VMM setup (vmm_create start) to the guest's first instruction: a
                             7-instruction Image that writes the boot timer, then PSCI SYSTEM_OFF
  l2_blk_seq_{read,write}_mbps  O_DIRECT sequential I/O on a virtio-blk disk in L2 (refvmm-tool
                             bench, 64 MiB, 1 MiB blocks, median of 3); the same file read and
                             written on the board itself is reported alongside (no target)

Each metric is one test case (fails when it misses its target); the table is printed at the
end of the module. Only runs with REFVMM_BENCH=1 (the tests.json entry sets it), so the
ordinary `pytest integration` sweep does not spend minutes on benchmarks.
"""
import importlib.util
import os
import statistics
import struct

import pytest

from conftest import ROOT, _report, record_boot_time
# the virtio suite's payload runner and result parsing (one implementation of both)
from test_virtio import BOARD_PRELUDE, MIB, TOOL, WORK, board_script, boot, results

pytestmark = [
    pytest.mark.skipif(os.environ.get("REFVMM_BENCH") != "1",
                       reason="benchmarks run through `make bench` (set REFVMM_BENCH=1 to run them here)"),
    pytest.mark.board_feature("guest-boot"),
]

BOOTS = 5
MEMORY_MIB = 256
TPUT_SIZE, TPUT_BS, TPUT_REPS = 64 * MIB, MIB, 3


def _load_bench():
    spec = importlib.util.spec_from_file_location("refvmm_bench", os.path.join(ROOT, "bench", "bench.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench = _load_bench()
TARGETS = bench.load_targets()
MEASURED = {}


@pytest.fixture(scope="module", autouse=True)
def bench_report(request):
    """After the module: check every board metric (missing ones included), write the results
    and print the table."""
    load_start = bench.loadavg()
    yield
    rows = bench.evaluate("board", MEASURED, TARGETS)
    board = request.config._refvmm_boards.board
    bench.write_part("board", rows, load_start=load_start,
                     extra={"board": board.describe() if board else None})
    out = bench.results_dir()
    _report(request.config, f"\nboard benchmarks (load average {load_start} at start, "
                            f"{bench.loadavg()} at end; {os.cpu_count()} host CPUs):\n"
                            + bench.table(rows) + f"\n(written to {out}/bench.json, {out}/bench.md)")


def check(name, samples, unit, what):
    """Record the median of `samples` as metric `name` and fail if it misses its target."""
    value = statistics.median(samples)
    m = {"value": value, "unit": unit, "min": min(samples), "max": max(samples),
         "reps": len(samples), "samples": samples, "what": what}
    MEASURED[name] = m
    row = bench.evaluate("board", {name: m}, {name: TARGETS[name]} if name in TARGETS else {})[0]
    print(f"{name}: {bench.fmt(value)} {unit} (samples {samples}), target {row['target_text']}")
    assert row["ok"] is not False, (f"{name} = {bench.fmt(value)} {unit} misses its target "
                                    f"{row['target_text']} (samples {samples})")


# ----------------------------------------------------------------------------- L2 boot

@pytest.mark.parametrize("vcpus", [1, 2])
def test_l2_boot_time(vmm, board, vcpus):
    """L2 boot to init (boot-timer), `quiet`, median of 5 boots."""
    samples, walls = [], []
    for i in range(BOOTS):
        r = vmm.boot_guest(vcpus=vcpus, memory_mib=MEMORY_MIB, cmdline_extra="quiet",
                           label=f"bench-boot-{vcpus}cpu-{i}")
        r.check(expect_status=0)
        assert r.boot_timer_ms is not None, "no boot-timer line in the VMM log\n" + r.summary()
        samples.append(r.boot_timer_ms)
        walls.append(round(r.elapsed * 1000, 1))
        record_boot_time(board, r, vcpus=vcpus, memory_mib=MEMORY_MIB, source="bench")
    MEASURED[f"l2_run_wall_{vcpus}vcpu_ms"] = {
        "value": statistics.median(walls), "unit": "ms", "samples": walls, "reps": len(walls),
        "what": "whole VMM run as seen by the test (boot, power-off, board shell round trip)"}
    check(f"l2_boot_{vcpus}vcpu_ms", samples, "ms",
          f"L2 boot to init (boot-timer), quiet, {vcpus} vCPU(s), {MEMORY_MIB} MiB, median of {BOOTS}")


# ----------------------------------------------------------------------------- VMM setup

# arm64 Image: branch over the 64-byte header to code that writes the boot timer at
# 0x0b000000 (one MMIO exit, logged by the VMM) and calls PSCI SYSTEM_OFF through HVC.
TINY_CODE = (0xD2A16001,   # mov  x1, #0x0b000000
             0x52800022,   # mov  w2, #1
             0x39000022,   # strb w2, [x1]
             0xD2800100,   # mov  x0, #0x8
             0xF2B08000,   # movk x0, #0x8400, lsl #16   (PSCI 0.2 SYSTEM_OFF)
             0xD4000002,   # hvc  #0
             0x14000000)   # b    .


def tiny_image():
    header = struct.pack("<II6Q4sI",
                         0x14000010,       # code0: b +64
                         0,                # code1
                         0,                # text_offset
                         4096,             # image_size
                         0xA,              # flags: little-endian, 4 KiB pages, anywhere
                         0, 0, 0,          # res2..res4
                         b"ARM\x64",       # magic
                         0)                # res5 (no PE header)
    assert len(header) == 64
    return header + struct.pack(f"<{len(TINY_CODE)}I", *TINY_CODE)


def test_vmm_setup_to_guest_entry(vmm, board):
    """From the start of vmm_create to the guest's first instruction (its boot-timer write),
    2 vCPUs, 256 MiB: KVM VM and vCPU creation, vGIC, memory, image and FDT, thread start."""
    path = f"{board.scratch_dir}/bench-tiny.Image"
    board.put_file(path, tiny_image())
    samples = []
    for i in range(BOOTS):
        r = vmm.run(["--kernel", f"path={path}", "--memory", f"size_mib={MEMORY_MIB}",
                     "--vcpu", "num=2", "--log", "level=info"], timeout=60, label=f"bench-tiny-{i}")
        r.check(expect_status=0)
        assert r.boot_timer_ms is not None, "no boot-timer line in the VMM log\n" + r.summary()
        samples.append(r.boot_timer_ms)
    check("vmm_setup_to_guest_ms", samples, "ms",
          "vmm_create start to the guest's first MMIO write (tiny Image), 2 vCPUs, median of 5")


# ----------------------------------------------------------------------------- virtio-blk

TPUT_PAYLOAD = "".join(
    f"T tput-write-{i} bench write /dev/vda {TPUT_SIZE} {TPUT_BS}\n"
    f"T tput-read-{i} bench read /dev/vda {TPUT_SIZE} {TPUT_BS}\n" for i in range(TPUT_REPS))


@pytest.fixture(scope="module")
def blk_tput(vmm, board):
    if board.run(f"test -x {TOOL}").status != 0:
        pytest.skip(f"board '{board.name}' lacks {TOOL} (images/build.sh puts it into the emulated board)")
    d = f"{WORK}/bench"
    board_script(board, "bench-prep", f"set -e\nrm -rf {d}; mkdir -p {d}\ntruncate -s {TPUT_SIZE} {d}/tput.img\n")
    res = boot(vmm, board, name="bench-blk", payload=TPUT_PAYLOAD, modules="virtio_mmio,virtio_blk",
               disks=[f"path={d}/tput.img,id=refvmm-bench"], timeout=600)
    res.check(expect_status=0)
    after = board_script(board, "bench-board", BOARD_PRELUDE + "".join(
        f"T board-read-{i} bench read {d}/tput.img {TPUT_SIZE} {TPUT_BS}\n"
        f"T board-write-{i} bench write {d}/tput-board.img {TPUT_SIZE} {TPUT_BS}\n"
        for i in range(TPUT_REPS)) + f"rm -rf {d}\n",
        timeout=300)
    return results(res.console), results(after), res


@pytest.mark.parametrize("mode", ["read", "write"])
def test_l2_blk_sequential(blk_tput, mode):
    guest, brd, res = blk_tput
    samples, board_samples = [], []
    for i in range(TPUT_REPS):
        g = guest.get(f"tput-{mode}-{i}") or {}
        assert g.get("ok") == "1" and int(g.get("bytes", 0)) == TPUT_SIZE, \
            f"L2 {mode} #{i} did not complete: {g}\n{res.summary()}"
        samples.append(float(g["mbps"]))
        b = brd.get(f"board-{mode}-{i}") or {}
        if b.get("ok") == "1":
            board_samples.append(float(b["mbps"]))
    direct = (guest.get(f"tput-{mode}-0") or {}).get("direct")
    if board_samples:
        MEASURED[f"board_file_{mode}_mbps"] = {
            "value": statistics.median(board_samples), "unit": "MB/s", "samples": board_samples,
            "reps": len(board_samples),
            "what": f"the same sequential {mode} on a board tmpfs file (no VMM), for comparison"}
    check(f"l2_blk_seq_{mode}_mbps", samples, "MB/s",
          f"L2 sequential {mode} of /dev/vda, {TPUT_SIZE // MIB} MiB, bs {TPUT_BS // 1024} KiB, "
          f"O_DIRECT={direct}, tmpfs backing file, median of {TPUT_REPS}")
