"""virtio devices driven by a real client: the L2 guest's own Debian drivers (virtio_blk,
virtio_console, vsock) against our VMM inside the board.

Helpers on both sides: `refvmm-tool` (integration/tools/refvmm-tool.c, in the guest and the
board initramfs) prints `REFVMM-RESULT op=... ok=0|1 key=value ...` lines; guest payloads
tag them with `step=NAME`. The ext4 test disk and its sha256 manifest come from
integration/tools/make-disk.py (board: /usr/share/refvmm/); each guest boot gets fresh
copies in the board's tmpfs. Guest boots are shared between assertions (module fixtures):

  blk         4 disks: vda ext4 (rw), vdb raw scratch (20-byte id), vdc ext4 ro=on, vdd
              throughput; manifest check, raw writes at offsets, write-zeroes, discard,
              read-only refusal, throughput, then files written + sync + power off
  blk_reboot  the written ext4 again: what the first boot wrote is there
  console     virtio-console unix backend, guest console=hvc0: boot log and echo on hvc0
  vsock       50+50 concurrent echo connections with hash checks, a refused port,
              100+100 abrupt closes, then 2 MiB connections both ways and a clean power-off

Throughput (L2 O_DIRECT on /dev/vdd vs the same file read/written on the board) goes to
build/results/virtio-throughput.json and the JUnit testsuite properties (record_property's
per-test properties are not valid xunit2, the family pytest.ini asks for); only sanity
is asserted.
"""
import base64
import datetime
import hashlib
import json
import os
import re
import secrets

import pytest

from boards import guest_args
from conftest import RESULTS, git_revision

pytestmark = pytest.mark.board_feature("guest-boot")

TOOL = "/usr/bin/refvmm-tool"
ASSETS = "/usr/share/refvmm"
WORK = "/tmp/virtio"
MIB = 1 << 20

BLK_MODULES = "crc32c_generic,virtio_mmio,virtio_blk,jbd2,mbcache,crc16,ext4"
VSOCK_MODULES = "virtio_mmio,vsock,vmw_vsock_virtio_transport_common,vmw_vsock_virtio_transport"
CONSOLE_MODULES = "virtio_mmio,virtio_console"

SERIAL_20 = "refvmm-serial-20byte"      # the longest id virtio-blk carries (20 bytes)
SCRATCH_SIZE, SCRATCH_SEED = 16 * MIB, 99
RAW_WRITES = {"raw-a": (1 * MIB, 256 * 1024, 11), "raw-b": (12345 * 512, 64 * 1024, 12)}
ZEROOUT = (4 * MIB, 1 * MIB)
DISCARD = (8 * MIB, 2 * MIB)
NEIGHBOURS_MIB = (3, 5, 7, 10)         # 1 MiB blocks next to the zeroed ranges: untouched
TPUT_SIZE, TPUT_BS = 64 * MIB, MIB
NEW_PATTERN = ("./new/pattern-2m.bin", 2 * MIB, 7)
NOTE_TEXT = b"written by the L2 guest\n"
APPEND_TEXT = b"appended by the L2 guest\n"

VSOCK_BYTES = 64 * 1024                # per connection, each direction
VSOCK_AFTER_BYTES = 2 * MIB            # the connections after the aborts: well past the credit window
GUEST_CID = 3

# shell prelude of every guest payload: R = a result line of the script itself, T = a tagged
# refvmm-tool result
PRELUDE = r"""#!/bin/sh
R() { s=$1; shift; echo "REFVMM-RESULT step=$s op=sh $*"; }
T() { s=$1; shift; refvmm-tool "$@" 2>&1 | sed "s/^REFVMM-RESULT /REFVMM-RESULT step=$s /"; }
"""
BOARD_PRELUDE = r"""T() { s=$1; shift; refvmm-tool "$@" 2>&1 | sed "s/^REFVMM-RESULT /REFVMM-RESULT step=$s /"; }
"""

RESULT_RE = re.compile(r"^REFVMM-RESULT (.*?)\s*$", re.M)
SHA_RE = re.compile(r"^REFVMM-SHA (\S+) ([0-9a-f]{64})  (.*?)\r?$", re.M)
KV_RE = re.compile(r"^([\w-]+)=(.*?)\s*$", re.M)


# ----------------------------------------------------------------------------- helpers

def stream(seed, n):
    """The splitmix64 byte stream refvmm-tool writes for --seed (8 little-endian bytes/step)."""
    mask = (1 << 64) - 1
    out = bytearray()
    x = seed & mask
    while len(out) < n:
        x = (x + 0x9E3779B97F4A7C15) & mask
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out += (z ^ (z >> 31)).to_bytes(8, "little")
    return bytes(out[:n])


def sha(data):
    return hashlib.sha256(data).hexdigest()


def results(text):
    """{step: {key: value}} from REFVMM-RESULT lines (the last line of a step wins)."""
    out = {}
    for m in RESULT_RE.finditer(text):
        kv = dict(tok.split("=", 1) for tok in m.group(1).split() if "=" in tok)
        out[kv.get("step", kv.get("op", "?"))] = kv
    return out


def shas(text, tag):
    return {path: digest for t, digest, path in SHA_RE.findall(text) if t == tag}


def board_script(board, name, text, timeout=120):
    """Run `text` with sh on the board; return its output (raises if it fails)."""
    board.run_check(f"mkdir -p {WORK}")
    path = f"{WORK}/{name}.sh"
    board.put_file(path, text)
    return board.run_check(f"sh {path}", timeout=timeout)


def kv_lines(text):
    return dict(KV_RE.findall(text))


def step(run_results, name, where):
    got = run_results.get(name)
    assert got is not None, f"no result line for step '{name}' ({where})"
    return got


class Run:
    """One guest boot plus what the board saw around it."""

    def __init__(self, result, board_out="", **extra):
        self.vmm = result
        self.guest = results(result.console)
        self.board_out = board_out
        self.board = results(board_out)
        self.__dict__.update(extra)

    def g(self, name):
        return step(self.guest, name, "guest console:\n" + self.vmm.summary())

    def b(self, name):
        return step(self.board, name, "board side:\n" + self.board_out + "\n" + self.vmm.summary())


def boot(vmm, board, *, name, payload, modules, disks=(), extra=(), console="ttyAMA0", quiet=True,
         timeout=240, memory_mib=256):
    initrd = vmm.initramfs_with_payload(PRELUDE + payload, name=f"virtio-{name}")
    cmdline = ["refvmm.boottimer=0x0b000000", f"refvmm.modules={modules}"]
    if quiet:
        cmdline.insert(0, "quiet")
    args = guest_args(board, vcpus=2, memory_mib=memory_mib, cmdline=" ".join(cmdline), initrd=initrd,
                      console=console, extra=list(extra))
    for d in disks:
        args += ["--block", d]
    return vmm.run(args, timeout=timeout, label=f"virtio-{name}")


@pytest.fixture(scope="module")
def assets(board):
    """The manifest of the ext4 test disk ({./path: sha256}) and its text."""
    if board.run(f"test -x {TOOL} && test -f {ASSETS}/virtio-disk.ext4.gz").status != 0:
        pytest.skip(f"board '{board.name}' lacks {TOOL} and {ASSETS}/virtio-disk.ext4.gz "
                    "(images/build.sh puts them into the emulated board)")
    text = board.run_check(f"cat {ASSETS}/virtio-disk.sha256").replace("\r", "")
    text = "\n".join(line for line in text.splitlines() if line.strip()) + "\n"
    manifest = {}
    for line in text.splitlines():
        digest, path = line.split("  ", 1)
        manifest[path] = digest
    assert len(manifest) > 10, f"implausible manifest:\n{text}"
    yield {"files": manifest, "text": text}
    try:  # the board may be powered off already (last module of the session)
        board.run(f"rm -rf {WORK}", timeout=60)
    except Exception:  # pylint: disable=broad-except
        pass


# ----------------------------------------------------------------------------- blk

BLK_PAYLOAD = r"""
for d in vda vdb vdc vdd; do
	if [ -b /dev/$d ]; then
		ser=$(cat /sys/block/$d/serial 2>/dev/null); ser=$(printf %s "$ser" | tr -c 'A-Za-z0-9._-' '_')
		R disk-$d ok=1 size=$(cat /sys/block/$d/size) ro=$(cat /sys/block/$d/ro) serial=$ser \
			discard_max=$(cat /sys/block/$d/queue/discard_max_bytes) \
			write_zeroes_max=$(cat /sys/block/$d/queue/write_zeroes_max_bytes)
	else
		R disk-$d ok=0 missing=1
	fi
done
mkdir -p /mnt/rw /mnt/ro
# vda read-only: every file against the manifest
if mount -t ext4 -o ro /dev/vda /mnt/rw; then
	R mount-vda-ro ok=1 opts=$(grep ' /mnt/rw ' /proc/mounts | cut -d' ' -f4)
	(cd /mnt/rw && find . -type f | sort | while IFS= read -r f; do sha256sum "$f"; done) | sed 's/^/REFVMM-SHA vda-ro /'
	umount /mnt/rw
else
	R mount-vda-ro ok=0
fi
# vdb raw: patterns at known offsets, write-zeroes, discard
T raw-a pattern-write /dev/vdb {raw_a_off} {raw_a_len} --seed {raw_a_seed}
T raw-b pattern-write /dev/vdb {raw_b_off} {raw_b_len} --seed {raw_b_seed}
T raw-a-back pattern-check /dev/vdb {raw_a_off} {raw_a_len} --seed {raw_a_seed}
T zeroout zeroout /dev/vdb {zo_off} {zo_len}
T discard discard /dev/vdb {dc_off} {dc_len}
T zeroout-back zero-check /dev/vdb {zo_off} {zo_len}
T discard-back zero-check /dev/vdb {dc_off} {dc_len}
# vdc read-only (ro=on): writes must fail
T ro-raw-write pattern-write /dev/vdc 1048576 65536 --seed 5
mount -t ext4 -o rw /dev/vdc /mnt/ro 2>/dev/null; rc=$?
opts=$(grep ' /mnt/ro ' /proc/mounts | cut -d' ' -f4)
if [ -n "$opts" ] && touch /mnt/ro/written-on-ro 2>/dev/null; then touched=1; else touched=0; fi
sync
[ -n "$opts" ] || mount -t ext4 -o ro /dev/vdc /mnt/ro 2>/dev/null
all=$(cd /mnt/ro 2>/dev/null && find . -type f | sort | while IFS= read -r f; do sha256sum "$f"; done | sha256sum | cut -d' ' -f1)
R ro-mount ok=1 mount_rc=$rc opts=$opts touched=$touched all_sha256=$all
umount /mnt/ro 2>/dev/null
# vdd: sequential throughput, O_DIRECT
T tput-write bench write /dev/vdd {tput_size} {tput_bs}
T tput-read bench read /dev/vdd {tput_size} {tput_bs}
# vda read-write last: write, sync, power off (no umount)
if mount -t ext4 /dev/vda /mnt/rw; then
	ok=1
	mkdir -p /mnt/rw/new/dir || ok=0
	T new-pattern pattern-write /mnt/rw/new/pattern-2m.bin 0 {np_len} --seed {np_seed}
	printf 'written by the L2 guest\n' > /mnt/rw/new/dir/note.txt || ok=0
	printf 'appended by the L2 guest\n' >> /mnt/rw/to-append.txt || ok=0
	rm /mnt/rw/to-delete.txt || ok=0
	sync || ok=0
	R rw-write ok=$ok opts=$(grep ' /mnt/rw ' /proc/mounts | cut -d' ' -f4)
else
	R rw-write ok=0 stage=mount
fi
"""


@pytest.fixture(scope="module")
def blk(board, vmm, assets):
    d = f"{WORK}/blk"
    neighbours = "\n".join(
        f'echo "n{m}=$(dd if=scratch.img bs=1048576 skip={m} count=1 2>/dev/null | sha256sum | cut -d" " -f1)"'
        for m in NEIGHBOURS_MIB)
    prep = board_script(board, "blk-prep", f"""set -e
rm -rf {d}; mkdir -p {d}; cd {d}
zcat {ASSETS}/virtio-disk.ext4.gz > rw.ext4
cp rw.ext4 ro.ext4
{TOOL} pattern-write scratch.img 0 {SCRATCH_SIZE} --seed {SCRATCH_SEED} >/dev/null
truncate -s {TPUT_SIZE} tput.img
echo "ro_sha=$(sha256sum ro.ext4 | cut -d' ' -f1)"
echo "blocks=$(stat -c %b scratch.img)"
{neighbours}
""")
    before = kv_lines(prep)
    (a_off, a_len, a_seed), (b_off, b_len, b_seed) = RAW_WRITES["raw-a"], RAW_WRITES["raw-b"]
    payload = BLK_PAYLOAD
    for k, v in dict(raw_a_off=a_off, raw_a_len=a_len, raw_a_seed=a_seed, raw_b_off=b_off, raw_b_len=b_len,
                     raw_b_seed=b_seed, zo_off=ZEROOUT[0], zo_len=ZEROOUT[1], dc_off=DISCARD[0],
                     dc_len=DISCARD[1], tput_size=TPUT_SIZE, tput_bs=TPUT_BS, np_len=NEW_PATTERN[1],
                     np_seed=NEW_PATTERN[2]).items():
        payload = payload.replace("{" + k + "}", str(v))
    res = boot(vmm, board, name="blk", payload=payload, modules=BLK_MODULES, timeout=300, disks=[
        f"path={d}/rw.ext4,id=refvmm-rw",
        f"path={d}/scratch.img,id={SERIAL_20}",
        f"path={d}/ro.ext4,ro=on,id=refvmm-ro",
        f"path={d}/tput.img,id=refvmm-tput"])
    after = board_script(board, "blk-after", BOARD_PRELUDE + f"""cd {d}
echo "raw-a=$(dd if=scratch.img bs=512 skip={a_off // 512} count={a_len // 512} 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "raw-b=$(dd if=scratch.img bs=512 skip={b_off // 512} count={b_len // 512} 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "zeroout=$(dd if=scratch.img bs=512 skip={ZEROOUT[0] // 512} count={ZEROOUT[1] // 512} 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "discard=$(dd if=scratch.img bs=512 skip={DISCARD[0] // 512} count={DISCARD[1] // 512} 2>/dev/null | sha256sum | cut -d' ' -f1)"
echo "blocks=$(stat -c %b scratch.img)"
echo "size=$(stat -c %s scratch.img)"
echo "ro_sha=$(sha256sum ro.ext4 | cut -d' ' -f1)"
{neighbours}
T board-read bench read tput.img {TPUT_SIZE} {TPUT_BS}
T board-write bench write tput-board.img {TPUT_SIZE} {TPUT_BS}
rm -f tput.img tput-board.img
""", timeout=300)
    run = Run(res, after, before=before, after=kv_lines(after))
    _record_throughput(board, run)
    return run


def _record_throughput(board, run):
    """Append the four MB/s numbers to build/results/virtio-throughput.json (a JSON list)."""
    def num(where, name):
        r = where.get(name) or {}
        return float(r["mbps"]) if r.get("ok") == "1" and "mbps" in r else None
    entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "board": board.name, "git": git_revision(), "size_mib": TPUT_SIZE // MIB, "bs": TPUT_BS,
             "l2_write_mbps": num(run.guest, "tput-write"), "l2_read_mbps": num(run.guest, "tput-read"),
             "board_write_mbps": num(run.board, "board-write"), "board_read_mbps": num(run.board, "board-read"),
             "l2_direct": (run.guest.get("tput-read") or {}).get("direct"),
             "board_direct": (run.board.get("board-read") or {}).get("direct")}
    run.throughput = entry
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "virtio-throughput.json")
    entries = []
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                entries = json.load(f)
        except (OSError, ValueError):
            entries = []
    entries.append(entry)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1)
    os.replace(path + ".tmp", path)


def test_blk_guest_powers_off_cleanly(blk):
    blk.vmm.check(expect_status=0)
    assert blk.vmm.done_rc == 0, blk.vmm.summary()


def test_blk_several_disks_in_order(blk):
    """Four --block options: /dev/vda..vdd in command-line order (sizes tell them apart)."""
    want = {"vda": 32 * MIB, "vdb": SCRATCH_SIZE, "vdc": 32 * MIB, "vdd": TPUT_SIZE}
    for dev, size in want.items():
        r = blk.g(f"disk-{dev}")
        assert r["ok"] == "1", f"/dev/{dev} missing in the guest\n{blk.vmm.summary()}"
        assert int(r["size"]) * 512 == size, f"/dev/{dev}: {int(r['size']) * 512} bytes, expected {size}"


def test_blk_serial_ids(blk):
    """id= is the disk's serial: /sys/block/vdX/serial (the 20-byte maximum kept whole)."""
    got = {dev: blk.g(f"disk-{dev}").get("serial") for dev in ("vda", "vdb", "vdc", "vdd")}
    assert got == {"vda": "refvmm-rw", "vdb": SERIAL_20, "vdc": "refvmm-ro", "vdd": "refvmm-tput"}, got


def test_blk_ext4_files_match_manifest(blk, assets):
    """vda mounted read-only in L2: every file's sha256 equals the manifest's."""
    assert blk.g("mount-vda-ro")["ok"] == "1", "mount -o ro /dev/vda failed\n" + blk.vmm.summary()
    seen = shas(blk.vmm.console, "vda-ro")
    want = assets["files"]
    missing = sorted(set(want) - set(seen))
    extra = sorted(set(seen) - set(want))
    wrong = sorted(p for p in set(want) & set(seen) if want[p] != seen[p])
    assert not (missing or extra or wrong), f"missing {missing}, unexpected {extra}, different {wrong}"


def test_blk_raw_writes_reach_backing_file(blk):
    """Patterns the guest wrote to /dev/vdb at two offsets (one not 4K-aligned) are in the
    backing file byte for byte (dd + sha256sum on the board vs the stream computed here)."""
    for name, (off, length, seed) in RAW_WRITES.items():
        g = blk.g(name)
        assert g["ok"] == "1", f"guest write {name} failed: {g}"
        want = sha(stream(seed, length))
        assert g["sha256"] == want, f"{name}: guest wrote {g['sha256']}, expected stream {want}"
        assert blk.after[name] == want, f"{name}: backing file at {off} has {blk.after[name]}, expected {want}"
    assert blk.g("raw-a-back")["ok"] == "1", f"guest read-back: {blk.g('raw-a-back')}"


def test_blk_write_zeroes(blk):
    """BLKZEROOUT (WRITE_ZEROES) in L2: the range reads as zeros in the guest and in the
    backing file; the neighbouring blocks are untouched."""
    g = blk.g("zeroout")
    assert g["ok"] == "1", f"BLKZEROOUT failed in the guest: {g} (write_zeroes_max_bytes=" \
                           f"{blk.g('disk-vdb').get('write_zeroes_max')})"
    assert blk.g("zeroout-back")["ok"] == "1", f"guest reads non-zero: {blk.g('zeroout-back')}"
    assert blk.after["zeroout"] == sha(bytes(ZEROOUT[1])), "the write-zeroes range is not zero in the backing file"
    for m in NEIGHBOURS_MIB:
        assert blk.after[f"n{m}"] == blk.before[f"n{m}"], f"block at {m} MiB changed (outside every write)"


def test_blk_discard_punches_hole(blk):
    """BLKDISCARD in L2: the range is zero in the backing file and the file (board tmpfs)
    has fewer allocated blocks."""
    g = blk.g("discard")
    assert g["ok"] == "1", f"BLKDISCARD failed in the guest: {g} (discard_max_bytes=" \
                           f"{blk.g('disk-vdb').get('discard_max')})"
    assert blk.after["discard"] == sha(bytes(DISCARD[1])), "the discarded range is not zero in the backing file"
    before, after = int(blk.before["blocks"]), int(blk.after["blocks"])
    assert after <= before - DISCARD[1] // 512, \
        f"st_blocks {before} → {after}: a {DISCARD[1]}-byte discard freed {(before - after) * 512} bytes"
    assert int(blk.after["size"]) == SCRATCH_SIZE, "discard changed the file size"


def test_blk_read_only_disk_refuses_writes(blk):
    """ro=on: the guest sees a read-only disk, raw writes fail, a rw mount is refused or
    read-only, no file can be created, and the backing file is byte-identical."""
    assert blk.g("disk-vdc")["ro"] == "1", f"/sys/block/vdc/ro: {blk.g('disk-vdc')}"
    w = blk.g("ro-raw-write")
    assert w["ok"] == "0" and w.get("errno") in ("EPERM", "EACCES", "EROFS", "EIO"), \
        f"raw write to the ro disk: {w}"
    m = blk.g("ro-mount")
    assert m["touched"] == "0", f"a file was created on the ro disk: {m}"
    assert m["mount_rc"] != "0" or m["opts"].split(",")[0] == "ro", f"rw mount of the ro disk: {m}"
    assert blk.after["ro_sha"] == blk.before["ro_sha"], "the ro=on backing file changed"


def test_blk_read_only_disk_content(blk, assets):
    """The ro=on disk mounts (read-only) and its files match the manifest (one combined hash)."""
    m = blk.g("ro-mount")
    assert m.get("all_sha256") == sha(assets["text"].encode()), \
        f"files on the ro disk differ from the manifest (or it did not mount): {m}"


def _tput_check(blk, record_testsuite_property, mode):
    g, b = blk.g(f"tput-{mode}"), blk.b(f"board-{mode}")
    for who, r in (("L2", g), ("board", b)):
        assert r["ok"] == "1", f"{who} {mode} did not complete: {r}"
        assert int(r["bytes"]) == TPUT_SIZE and float(r["mbps"]) > 0, f"{who} {mode}: {r}"
    record_testsuite_property(f"l2_{mode}_mbps", g["mbps"])
    record_testsuite_property(f"board_{mode}_mbps", b["mbps"])
    record_testsuite_property(f"l2_{mode}_direct", g["direct"])
    print(f"virtio-blk sequential {mode}, {TPUT_SIZE // MIB} MiB bs={TPUT_BS}: L2 {g['mbps']} MB/s "
          f"(O_DIRECT={g['direct']}), board tmpfs file {b['mbps']} MB/s (O_DIRECT={b['direct']})")


def test_blk_throughput_write(blk, record_testsuite_property):
    _tput_check(blk, record_testsuite_property, "write")


def test_blk_throughput_read(blk, record_testsuite_property):
    _tput_check(blk, record_testsuite_property, "read")


BLK_REBOOT_PAYLOAD = r"""
mkdir -p /mnt/rw
if mount -t ext4 /dev/vda /mnt/rw; then
	R mount ok=1
	(cd /mnt/rw && find . -type f | sort | while IFS= read -r f; do sha256sum "$f"; done) | sed 's/^/REFVMM-SHA vda-again /'
	umount /mnt/rw && R umount ok=1 || R umount ok=0
else
	R mount ok=0
fi
"""


@pytest.fixture(scope="module")
def blk_reboot(board, vmm, blk):
    blk.vmm.check(expect_status=0)
    res = boot(vmm, board, name="blk-reboot", payload=BLK_REBOOT_PAYLOAD, modules=BLK_MODULES,
               disks=[f"path={WORK}/blk/rw.ext4"])
    return Run(res)


def test_blk_written_files_persist_across_boots(blk, blk_reboot, assets):
    """Files written (then sync, power off) in one boot are there in the next: new files,
    an append, a deletion; everything else still matches the manifest."""
    assert blk.g("rw-write")["ok"] == "1", f"writing in the first boot failed: {blk.g('rw-write')}"
    assert blk.g("new-pattern")["ok"] == "1", f"{blk.g('new-pattern')}"
    blk_reboot.vmm.check(expect_status=0)
    assert blk_reboot.g("mount")["ok"] == "1", "the written image no longer mounts\n" + blk_reboot.vmm.summary()
    want = dict(assets["files"])
    del want["./to-delete.txt"]
    want["./to-append.txt"] = sha(b"the read-write test appends to this file\n" + APPEND_TEXT)
    want["./new/dir/note.txt"] = sha(NOTE_TEXT)
    want[NEW_PATTERN[0]] = sha(stream(NEW_PATTERN[2], NEW_PATTERN[1]))
    seen = shas(blk_reboot.vmm.console, "vda-again")
    missing = sorted(set(want) - set(seen))
    extra = sorted(set(seen) - set(want))
    wrong = sorted(p for p in set(want) & set(seen) if want[p] != seen[p])
    assert not (missing or extra or wrong), f"missing {missing}, unexpected {extra}, different {wrong}"
    assert blk_reboot.g("umount")["ok"] == "1"


# ----------------------------------------------------------------------------- console

CONSOLE_PAYLOAD = r"""
if exec 3<>/dev/hvc0; then
	stty raw -echo <&3
	# a kernel message after hvc0 exists goes out on it (console=hvc0); then the whole
	# boot log, written by userspace (bulk output through the virtio-console)
	echo "<2>REFVMM-KMSG-HVC0 from the kernel console" >/dev/kmsg
	sleep 1
	dmesg >/tmp/dmesg.txt
	R hvc-dmesg ok=1 lines=$(wc -l </tmp/dmesg.txt) bytes=$(wc -c </tmp/dmesg.txt) sha256=$(sha256sum </tmp/dmesg.txt | cut -d' ' -f1)
	echo REFVMM-HVC-DMESG-BEGIN >&3
	cat /tmp/dmesg.txt >&3
	echo REFVMM-HVC-DMESG-END >&3
	echo REFVMM-HVC-READY >&3
	if read -r -t 60 line <&3; then
		echo "REFVMM-HVC-ECHO $line" >&3
		R hvc-echo ok=1 got=$line
	else
		R hvc-echo ok=0 stage=read
	fi
	exec 3>&-
else
	R hvc-echo ok=0 stage=open
fi
"""


@pytest.fixture(scope="module")
def console_run(board, vmm, assets):
    d = f"{WORK}/console"
    token = secrets.token_hex(4)
    board_script(board, "console-prep", f"""rm -rf {d}; mkdir -p {d}
{TOOL} uds-console {d}/hvc.sock {d}/hvc.log REFVMM-HVC-READY ping-{token} "REFVMM-HVC-ECHO ping-{token}" \\
	--retry 60 --timeout 200 >{d}/client.log 2>&1 </dev/null &
echo $! >{d}/client.pid
""")
    # console=hvc0 only: the kernel log goes to the virtio console (replayed when the module
    # registers hvc0); the guest's /init falls back to the PL011 for its markers
    res = boot(vmm, board, name="console", payload=CONSOLE_PAYLOAD, modules=CONSOLE_MODULES, console="hvc0",
               quiet=False, extra=["--console", f"backend=unix,path={d}/hvc.sock"])
    out = board.run(f"sleep 0.5; kill $(cat {d}/client.pid) 2>/dev/null; cat {d}/client.log", timeout=30).stdout
    log = board.run(f"tail -c 200000 {d}/hvc.log | base64", timeout=60)
    raw = base64.b64decode("".join(log.stdout.split())) if log.status == 0 else b""
    return Run(res, out, token=token, hvc_raw=raw, hvc=raw.decode("utf-8", "replace").replace("\r", ""))


def test_console_guest_powers_off_cleanly(console_run):
    console_run.vmm.check(expect_status=0)
    assert "Kernel panic" not in console_run.hvc, console_run.hvc[-3000:]
    assert console_run.vmm.done_rc == 0, console_run.vmm.summary()


def test_console_kernel_messages_on_hvc0(console_run):
    """console=hvc0: a kernel message printed once hvc0 exists reaches the unix socket
    client through the kernel's console path. (Messages from before virtio_console loaded
    are not replayed: Linux registers the hvc console before the port can take output.)"""
    hvc = console_run.hvc
    pos = hvc.find("REFVMM-KMSG-HVC0")
    assert 0 <= pos < hvc.find("REFVMM-HVC-DMESG-BEGIN"), \
        f"the kernel message did not come out on hvc0; client: {console_run.board_out!r}; " \
        f"hvc0 transcript ({len(hvc)} bytes):\n{hvc[:2000]}\n{console_run.vmm.summary()}"


def test_console_boot_log_through_hvc0(console_run):
    """The guest's whole boot log (dmesg, ~20 KB) written to /dev/hvc0 arrives complete:
    same bytes (sha256) as the guest wrote."""
    hvc = console_run.hvc_raw
    begin, end = hvc.find(b"REFVMM-HVC-DMESG-BEGIN\n"), hvc.find(b"REFVMM-HVC-DMESG-END")
    assert 0 <= begin < end, f"dmesg dump incomplete on hvc0 ({len(hvc)} bytes):\n{hvc[-2000:]!r}"
    log = hvc[begin + len(b"REFVMM-HVC-DMESG-BEGIN\n"):end]
    g = console_run.g("hvc-dmesg")
    text = log.decode("utf-8", "replace")
    for want in ("Linux version", "Kernel command line: console=hvc0", "printk: console [hvc0] enabled"):
        assert want in text, f"'{want}' missing from the boot log on hvc0:\n{text[:3000]}"
    lines = log.count(b"\n")
    assert (len(log), lines) == (int(g["bytes"]), int(g["lines"])) and sha(log) == g["sha256"], \
        f"hvc0 delivered {len(log)} bytes / {lines} lines, the guest wrote {g}"


def test_console_echo_through_hvc0(console_run):
    """A line written by the host-side client reaches the guest's /dev/hvc0 and the guest's
    answer comes back on the socket."""
    c = console_run.b("uds-console")
    g = console_run.g("hvc-echo")
    assert g["ok"] == "1" and g.get("got") == f"ping-{console_run.token}", \
        f"guest side: {g}\n{console_run.vmm.summary()}"
    assert c["ok"] == "1", f"host client: {c}; hvc0 transcript tail:\n{console_run.hvc[-1500:]}"


# ----------------------------------------------------------------------------- vsock

VSOCK_PAYLOAD = r"""
refvmm-tool vsock-listen 5000 >/tmp/listen.log 2>&1 &
LP=$!
refvmm-tool vsock-wait 5999 --timeout 150 >/tmp/wait.log 2>&1 &
WP=$!
T g2h vsock-connect 2 6000 50 {bytes} --seed 6 --timeout 120
T refused vsock-refused 2 6999 --timeout 30
T g-abort vsock-abort 2 6000 100 {bytes} --seed 7 --timeout 60
T g-after vsock-connect 2 6000 1 {after} --seed 8 --timeout 60
wait $WP
sed "s/^REFVMM-RESULT /REFVMM-RESULT step=host-done /" /tmp/wait.log
kill $LP; wait $LP
sed "s/^REFVMM-RESULT /REFVMM-RESULT step=listener /" /tmp/listen.log
"""


@pytest.fixture(scope="module")
def vsock_run(board, vmm, assets):
    d = f"{WORK}/vsock"
    board_script(board, "vsock-prep", f"""rm -rf {d}; mkdir -p {d}
{TOOL} uds-echo-server {d}/v.sock_6000 >{d}/echo.log 2>&1 </dev/null &
echo $! >{d}/echo.pid
""")
    board.put_file(f"{d}/host.sh", BOARD_PRELUDE + f"""
T h2g uds-connect {d}/v.sock 5000 50 {VSOCK_BYTES} --retry 150 --seed 3 --timeout 120
T h-abort uds-abort {d}/v.sock 5000 100 {VSOCK_BYTES} --seed 4 --timeout 60
T h-after uds-connect {d}/v.sock 5000 1 {VSOCK_AFTER_BYTES} --seed 5 --timeout 60
T h-done uds-send {d}/v.sock 5999 host-done --retry 60 --timeout 30
""")
    board.run_check(f"sh {d}/host.sh >{d}/host.log 2>&1 </dev/null & echo $! >{d}/host.pid")
    res = boot(vmm, board, name="vsock", payload=VSOCK_PAYLOAD.replace("{bytes}", str(VSOCK_BYTES)).replace("{after}", str(VSOCK_AFTER_BYTES)),
               modules=VSOCK_MODULES, timeout=300, extra=["--vsock", f"cid={GUEST_CID},uds={d}/v.sock"])
    out = board.run(f"kill $(cat {d}/host.pid) 2>/dev/null; kill $(cat {d}/echo.pid); sleep 1; "
                    f"cat {d}/host.log; sed 's/^REFVMM-RESULT /REFVMM-RESULT step=echo-server /' {d}/echo.log",
                    timeout=30).stdout
    return Run(res, out)


def _conns_ok(r, n, what):
    assert r.get("ok") == "1" and r.get("good") == str(n) and r.get("connected") == str(n), \
        f"{what}: {r}"


def test_vsock_host_to_guest_50_concurrent(vsock_run):
    """50 concurrent host→guest connections (CONNECT/OK through the VMM's socket), each
    echoing 64 KiB through the guest; sha256 of what came back equals what was sent."""
    _conns_ok(vsock_run.b("h2g"), 50, "host→guest (board client)")


def test_vsock_guest_to_host_50_concurrent(vsock_run):
    """50 concurrent guest→host connections to CID 2 port 6000 (the VMM connects to
    uds_6000, a board echo server); hash-checked echo."""
    _conns_ok(vsock_run.g("g2h"), 50, "guest→host (guest client)")


def test_vsock_unserved_host_port_resets(vsock_run):
    """Guest connect to a host port nobody listens on fails promptly with a reset."""
    r = vsock_run.g("refused")
    assert r["ok"] == "1", f"connect to CID 2 port 6999 (no listener): {r}"
    assert float(r["seconds"]) < 5, f"refusal took {r['seconds']} s"


def test_vsock_host_side_aborts_leave_vmm_serving(vsock_run):
    """100 host connections closed abruptly mid-transfer (before OK, after sending, while
    the echo flows); afterwards a normal host→guest connection still works (2 MiB echoed,
    beyond the guest's 256 KiB credit window)."""
    r = vsock_run.b("h-abort")
    assert r.get("connected") == "100", f"host aborts: {r}"
    _conns_ok(vsock_run.b("h-after"), 1, "host→guest connection after the aborts")


def test_vsock_guest_side_aborts_leave_vmm_serving(vsock_run):
    """100 guest connections to the host closed abruptly mid-transfer; afterwards a normal
    guest→host connection still works (2 MiB echoed)."""
    r = vsock_run.g("g-abort")
    assert r.get("connected") == "100", f"guest aborts: {r}"
    _conns_ok(vsock_run.g("g-after"), 1, "guest→host connection after the aborts")


def test_vsock_guest_powers_off_cleanly_after_aborts(vsock_run):
    """After all that the guest still talks to the host (the final message arrives) and
    powers off; the VMM exits 0."""
    done = vsock_run.g("host-done")
    assert done.get("ok") == "1" and done.get("text") == "host-done", f"final host message: {done}"
    vsock_run.vmm.check(expect_status=0)
    assert vsock_run.vmm.done_rc == 0, vsock_run.vmm.summary()
