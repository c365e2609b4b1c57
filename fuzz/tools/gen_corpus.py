#!/usr/bin/python3
"""Seed corpus generator for the libFuzzer targets (fuzz/targets/fuzz_*.c).

Writes fuzz/corpus/<target>/seed-<name>: valid sessions through each harness's
TEMPLATE mode, and malformed cases through its RAW mode, encoded in the input
formats documented at the top of every target (and in docs/fuzzing.md). The
fuzz_virtq seeds reproduce the malformed-queue catalogue of
reference-vmm/tests/test_queue.c (malformed_* cases) one by one.

  /usr/bin/python3 fuzz/tools/gen_corpus.py            # (re)write the seed-* files
  /usr/bin/python3 fuzz/tools/gen_corpus.py --verify   # and check that the catalogue
      seeds reach their queue error (runs build/host/fuzz/fuzz_virtq with FUZZ_VERBOSE=1)

Files not named seed-* (units found by fuzzing and merged by fuzz/nightly.sh) are
left alone; stale seed-* files are removed. Stdlib only.
"""

import argparse
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def u8(v):
    return struct.pack("<B", v & 0xFF)


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def sel(mod, case, **bits):
    """First byte b with b % mod == case and the given bit values (bit7=1, ...)."""
    for b in range(256):
        if b % mod != case:
            continue
        if all(((b >> int(k[3:])) & 1) == v for k, v in bits.items()):
            return b
    raise ValueError("no selector byte for %d mod %d %r" % (case, mod, bits))


# ---------------------------------------------------------------------------
# shared pickers (fuzz/support/fuzz_input.h, vq_mutate.c)
# ---------------------------------------------------------------------------

def len32(v):
    """fin_len32: raw 32-bit value (selector class 7)."""
    return b"\xe0" + u32(v)


def vindex(v):
    """vqm_index: raw 16-bit index."""
    return b"\xf0" + u16(v)


def vaddr(v):
    """vqm_addr: raw 64-bit address."""
    return b"\xe0" + u64(v)


def databuf(off8):
    """vqm_data_buf: the data window + 8 * off8 (clamped by the harness)."""
    return b"\x02" + u16(off8)


# ---------------------------------------------------------------------------
# fuzz_virtq
# ---------------------------------------------------------------------------

RAM_GPA = 0x40000000
F_NEXT, F_WRITE, F_IND = 1, 2, 4


class VQ:
    """Mirror of the builder layout for a queue of `size` (vq_builder.c)."""

    def __init__(self, size, big=False):
        self.size = size
        n = size if size else 1
        self.ram = (0x80200000 if big else
                    (4 << 20) if size > 4096 else (1 << 20) if size > 256 else (256 << 10))
        self.end = RAM_GPA + self.ram
        self.desc = RAM_GPA
        self.avail = self.desc + 16 * n
        self.used = (self.avail + 4 + 2 * n + 2 + 3) & ~3
        self.brk = (self.used + 4 + 8 * n + 2 + 4095) & ~4095
        self.data = self.brk  # data window start
        self.next = 0

    def buf(self, length=64):
        gpa = self.data + self.next
        self.next += (length + 63) & ~63
        return gpa


def vq_cfg(size_idx=4, evidx=False, extra=False, big=False, override=0):
    return u8(size_idx | (8 if evidx else 0) | (16 if extra else 0) | (32 if big else 0) |
              (override << 6))


def vq_raw_desc(idx, addr, length, flags, nxt, publish=False):
    kind = sel(10, 0, bit7=1, bit6=1 if publish else 0)
    return (u8(sel(16, 8)) + u8(kind) + vindex(idx) + len32(length) + vaddr(addr) +
            u16(flags) + vindex(nxt))


def vq_publish(head):
    return u8(sel(16, 8)) + u8(sel(10, 7)) + vindex(head)


def vq_avail_idx(v):
    return u8(sel(16, 8)) + u8(sel(10, 3, bit7=1)) + u16(v)


def vq_avail_entry(slot, head):
    return u8(sel(16, 8)) + u8(sel(10, 2, bit7=1)) + u16(slot) + vindex(head)


def vq_used_event(v):
    return u8(sel(16, 8)) + u8(sel(10, 5, bit7=1)) + u16(v)


def vq_indirect(entries, idx, tlen=None, how_flags=0, publish=True, nxt=0):
    """Raw indirect table: entries = [(addr, len, flags, next)], referenced by
    descriptor idx with INDIRECT | how_flags and table length tlen (16 * n)."""
    out = u8(sel(16, 8)) + u8(sel(10, 6)) + u8(len(entries))
    for addr, length, flags, n in entries:
        kind = 0x80 | 0x40 | (flags & 0x0F)  # raw address, raw next
        out += u8(kind) + len32(length) + vaddr(addr) + u16(n)
    how = (how_flags & 3) | (0x40 if publish else 0) | (0x80 if tlen is not None else 0)
    out += u8(how)
    if tlen is not None:
        out += len32(tlen)
    out += vindex(idx) + vindex(nxt)
    return out


POP = u8(1)
SERVICE = u8(14)
REAP = u8(7)


def vq_push(pick=0, written=0):
    return u8(2) + u16(pick) + len32(written)


def vq_push_head(head, written=0):
    return u8(15) + vindex(head) + len32(written)


def vq_replace(d=None, a=None, u=None, d_off=0, a_off=0, u_off=0, nomem=False):
    """Raw op 13: reset, re-place the rings (exact GPA, or +offset), enable."""
    out = u8(13)
    for gpa, off in ((d, d_off), (a, a_off), (u, u_off)):
        if gpa is not None:
            out += u8(200) + vaddr(gpa)
        elif off:
            out += u8(160 + off)
        else:
            out += u8(0)
    return out + u8(0xFF if nomem else 0)


def vq_send(shape, lens, data=b""):
    """Raw op 0: a valid chain (vqm_build_chain), lens = one per buffer."""
    out = u8(0) + u8(shape)
    for i, ln in enumerate(lens):
        out += len32(ln) + databuf(64 * i)
        nr = shape & 3 or (0 if shape & 0xC else 1)
        if i < nr:
            out += (data + b"\0" * 64)[: min(ln, 64)]
    return out


VIRTQ_ERR = {
    "SIZE": 2, "ALIGN": 3, "RING_ADDR": 4, "AVAIL_IDX": 5, "HEAD": 6, "LOOP": 7,
    "DESC_ADDR": 8, "NESTED_INDIRECT": 9, "INDIRECT_LEN": 10, "INDIRECT_NEXT": 11,
    "CHAIN_LEN": 12, "WRITE_ORDER": 13, "USED_ID": 14, "HEAD_BUSY": 15, "NOT_READY": 1,
}


def virtq_seeds():
    """(name, bytes, expected trace fragment or None)."""
    seeds = []
    RAW = u8(3)

    def raw(name, ops, err, size_idx=4, where="pop", **cfg):
        expect = None
        if err:
            expect = "%s -> -%d" % (where, VIRTQ_ERR[err])
        seeds.append(("malformed_" + name, RAW + vq_cfg(size_idx, **cfg) + ops, expect))

    q = VQ(16)
    end = q.end
    b = q.buf()

    # device misuse
    raw("push_unpopped_id", vq_push_head(0), "USED_ID", where="push 0")
    raw("push_twice", vq_raw_desc(0, b, 4, F_WRITE, 0, publish=True) + POP +
        vq_push_head(0, 1) + vq_push_head(0, 1), "USED_ID", where="push 0")
    raw("push_id_out_of_range", vq_push_head(16) + vq_push_head(0xFFFF), "USED_ID",
        where="push 16")
    raw("push_not_ready", vq_replace(d_off=8) + vq_push_head(0), "NOT_READY", where="push 0")
    raw("pop_not_ready", vq_replace(d_off=8) + POP, "NOT_READY")
    # size (the initial enable of the builder's sane layout fails)
    seeds.append(("malformed_size_zero", RAW + vq_cfg(0, override=3) + POP,
                  "enable -> -2"))
    for name, size in (("size_three", 3), ("size_six", 6), ("size_max_u16", 65535)):
        seeds.append(("malformed_" + name, RAW + vq_cfg(0, override=1) + u16(size) + POP,
                      "enable -> -2"))
    # ring placement (re-placed, then enabled)
    place = [
        ("desc_misaligned_8", dict(d_off=8), "ALIGN", {}),
        ("desc_misaligned_1", dict(d_off=1), "ALIGN", {}),
        ("avail_misaligned", dict(a_off=1), "ALIGN", {}),
        ("used_misaligned", dict(u_off=2), "ALIGN", {}),
        ("desc_outside_ram", dict(d=0x1000), "RING_ADDR", {}),
        ("desc_straddles_ram_end", dict(d=end - 16 * 16 + 16), "RING_ADDR", {}),
        ("desc_straddles_ram_start", dict(d=RAM_GPA - 16 * 4), "RING_ADDR", {}),
        ("desc_gpa_wraps", dict(d=0xFFFFFFFFFFFFFFF0), "RING_ADDR", {}),
        ("avail_outside_ram", dict(a=end), "RING_ADDR", {}),
        ("avail_straddles_ram_end", dict(a=end - (4 + 2 * 16) + 2), "RING_ADDR", {}),
        ("avail_gpa_wraps", dict(a=0xFFFFFFFFFFFFFFFE), "RING_ADDR", {}),
        ("used_outside_ram", dict(u=0), "RING_ADDR", {}),
        ("used_straddles_ram_end", dict(u=end - (4 + 8 * 16) + 4), "RING_ADDR", {}),
        ("used_gpa_wraps", dict(u=0xFFFFFFFFFFFFFFFC), "RING_ADDR", {}),
        ("used_event_outside_ram", dict(a=end - (4 + 2 * 16)), "RING_ADDR", {"evidx": True}),
        ("avail_event_outside_ram", dict(u=end - (4 + 8 * 16)), "RING_ADDR", {"evidx": True}),
        ("no_guest_memory", dict(nomem=True), "RING_ADDR", {}),
    ]
    for name, kw, err, cfg in place:
        seeds.append(("malformed_" + name, RAW + vq_cfg(4, **cfg) + vq_replace(**kw) + POP,
                      "-> -%d" % VIRTQ_ERR[err]))
    # avail ring
    raw("avail_idx_size_plus_one",
        vq_raw_desc(0, b, 8, 0, 0) + b"".join(vq_avail_entry(i, 0) for i in range(16)) +
        vq_avail_idx(17) + POP, "AVAIL_IDX")
    raw("avail_idx_max", vq_avail_idx(0xFFFF) + POP, "AVAIL_IDX")
    raw("avail_idx_half_range", vq_avail_idx(0x8000) + POP, "AVAIL_IDX")
    raw("head_eq_size", vq_raw_desc(0, b, 8, 0, 0) + vq_publish(16) + POP, "HEAD")
    raw("head_max", vq_publish(0xFFFF) + POP, "HEAD")
    raw("head_out_of_range_after_valid", vq_raw_desc(0, b, 8, 0, 0) + vq_publish(0) +
        vq_publish(1000) + POP + POP, "HEAD")
    raw("head_still_in_use", vq_raw_desc(3, b, 8, 0, 0) + vq_publish(3) + vq_publish(3) +
        POP + POP, "HEAD_BUSY")
    # next links and loops
    raw("next_eq_size", vq_raw_desc(0, b, 8, F_NEXT, 16, True) + POP, "HEAD")
    raw("next_max", vq_raw_desc(0, b, 8, F_NEXT, 0xFFFF, True) + POP, "HEAD")
    raw("next_out_of_range_late", vq_raw_desc(0, b, 8, F_NEXT, 1) +
        vq_raw_desc(1, b, 8, F_NEXT, 2) + vq_raw_desc(2, b, 8, F_NEXT, 99) +
        vq_publish(0) + POP, "HEAD")
    raw("self_loop", vq_raw_desc(0, b, 8, F_NEXT, 0, True) + POP, "LOOP")
    raw("self_loop_last_desc", vq_raw_desc(15, b, 8, F_NEXT | F_WRITE, 15, True) + POP, "LOOP")
    raw("two_cycle", vq_raw_desc(0, b, 8, F_NEXT, 1) + vq_raw_desc(1, b, 8, F_NEXT, 0) +
        vq_publish(0) + POP, "LOOP")
    raw("long_cycle_whole_table",
        b"".join(vq_raw_desc(i, b, 8, F_NEXT, (i + 1) % 16) for i in range(16)) +
        vq_publish(5) + POP, "LOOP")
    raw("cycle_back_to_middle",
        b"".join(vq_raw_desc(i, b, 8, F_NEXT, i + 1 if i < 8 else 4) for i in range(9)) +
        vq_publish(0) + POP, "LOOP")
    raw("loop_of_zero_length_descs", vq_raw_desc(0, 0, 0, F_NEXT, 1) +
        vq_raw_desc(1, 0, 0, F_NEXT, 0) + vq_publish(0) + POP, "LOOP")
    # a cycle in a 32768-entry queue (the catalogue's whole-table cycle, as a
    # 2-cycle: the walk still visits 32768 descriptors before giving up)
    raw("cycle_in_max_size_queue", vq_raw_desc(0, VQ(32768).data, 1, F_NEXT, 1) +
        vq_raw_desc(1, VQ(32768).data, 1, F_NEXT, 0) + vq_publish(0) + POP, "LOOP",
        size_idx=0, override=2)
    # buffer addresses
    for name, addr, ln, fl in (("buf_outside_ram", 0x1000, 8, 0),
                               ("buf_straddles_ram_end", end - 4, 8, 0),
                               ("buf_straddles_ram_start", RAM_GPA - 1, 2, 0),
                               ("buf_just_after_ram", end, 1, 0),
                               ("buf_gpa_len_wraps", 0xFFFFFFFFFFFFFFFC, 8, 0),
                               ("buf_addr_max", 0xFFFFFFFFFFFFFFFF, 1, 0),
                               ("buf_len_max", RAM_GPA, 0xFFFFFFFF, 0),
                               ("writable_buf_outside_ram", 1 << 48, 8, F_WRITE)):
        raw(name, vq_raw_desc(0, addr, ln, fl, 0, True) + POP, "DESC_ADDR")
    raw("second_buf_outside_ram", vq_raw_desc(0, b, 8, F_NEXT, 1) +
        vq_raw_desc(1, end + 4096, 8, F_WRITE, 0) + vq_publish(0) + POP, "DESC_ADDR")
    raw("buf_straddles_two_regions", vq_raw_desc(0, end - 8, 16, 0, 0, True) + POP,
        "DESC_ADDR", extra=True)
    # total length (2 GiB of lazily backed RAM)
    big = VQ(16, big=True)
    bb = big.data
    raw("chain_len_over_4g", vq_raw_desc(0, bb, 0x80000000, F_NEXT, 1) +
        vq_raw_desc(1, bb, 0x80000000, 0, 0) + vq_publish(0) + POP, "CHAIN_LEN", big=True)
    raw("chain_len_over_4g_by_one", vq_raw_desc(0, bb, 0x7FFFFFFF, F_NEXT, 1) +
        vq_raw_desc(1, bb, 0x7FFFFFFF, F_NEXT | F_WRITE, 2) + vq_raw_desc(2, bb, 2, F_WRITE, 0) +
        vq_publish(0) + POP, "CHAIN_LEN", big=True)
    raw("chain_len_over_4g_indirect",
        vq_indirect([(bb, 0x80000000, F_NEXT, 1), (bb, 0x60000000, F_NEXT | F_WRITE, 2),
                     (bb, 0x60000000, F_WRITE, 0)], 0) + POP, "CHAIN_LEN", big=True)
    seeds.append(("valid_chain_len_4g_minus_1", RAW + vq_cfg(4, big=True) +
                  vq_raw_desc(0, bb, 0x80000000, F_NEXT, 1) +
                  vq_raw_desc(1, bb, 0x7FFFFFFF, F_WRITE, 0, True) + POP +
                  u8(6) + u8(1) + len32(0x7FFFFFF0) + u16(64) + b"\xaa" * 64 +
                  vq_push(0, 0x10), "pop -> 1"))
    # direction
    raw("readable_after_writable", vq_raw_desc(0, b, 8, F_NEXT | F_WRITE, 1) +
        vq_raw_desc(1, b, 8, 0, 0) + vq_publish(0) + POP, "WRITE_ORDER")
    raw("zero_len_readable_after_writable", vq_raw_desc(0, b, 8, F_NEXT | F_WRITE, 1) +
        vq_raw_desc(1, 0, 0, 0, 0) + vq_publish(0) + POP, "WRITE_ORDER")
    raw("readable_after_two_writable", vq_raw_desc(0, b, 8, F_NEXT, 1) +
        vq_raw_desc(1, b, 8, F_NEXT | F_WRITE, 2) + vq_raw_desc(2, b, 8, F_NEXT | F_WRITE, 3) +
        vq_raw_desc(3, b, 8, 0, 0) + vq_publish(0) + POP, "WRITE_ORDER")
    raw("indirect_readable_after_direct_writable",
        vq_raw_desc(0, b, 8, F_NEXT | F_WRITE, 1) + vq_indirect([(b, 8, 0, 0)], 1, publish=False) +
        vq_publish(0) + POP, "WRITE_ORDER")
    raw("indirect_readable_after_writable",
        vq_indirect([(b, 8, F_NEXT | F_WRITE, 1), (b, 8, 0, 0)], 0) + POP, "WRITE_ORDER")
    # indirect tables
    two = [(b, 8, F_NEXT, 1), (b, 8, 0, 2)]
    raw("indirect_with_next", vq_indirect(two, 0, how_flags=F_NEXT, publish=False, nxt=1) +
        vq_raw_desc(1, b, 8, 0, 0) + vq_publish(0) + POP, "INDIRECT_NEXT")
    raw("indirect_len_zero", vq_indirect(two, 0, tlen=0) + POP, "INDIRECT_LEN")
    raw("indirect_len_not_multiple_of_16", vq_indirect(two, 0, tlen=24) + POP, "INDIRECT_LEN")
    raw("indirect_len_15", vq_indirect(two[:1], 0, tlen=15) + POP, "INDIRECT_LEN")
    raw("indirect_table_longer_than_queue",
        vq_indirect([(b, 8, F_NEXT, i + 1) for i in range(16)] + [(b, 8, 0, 0)], 0) + POP,
        "INDIRECT_LEN")
    raw("indirect_len_huge", vq_indirect(two, 0, tlen=0xFFFFFFF0) + POP, "INDIRECT_LEN")
    raw("indirect_table_outside_ram", vq_raw_desc(0, 0x2000, 32, F_IND, 0, True) + POP,
        "DESC_ADDR")
    raw("indirect_table_straddles_ram_end", vq_raw_desc(0, end - 16, 32, F_IND, 0, True) + POP,
        "DESC_ADDR")
    raw("indirect_table_gpa_wraps",
        vq_raw_desc(0, 0xFFFFFFFFFFFFFFFF - 15, 32, F_IND, 0, True) + POP, "DESC_ADDR")
    raw("nested_indirect", vq_indirect([(b, 16, F_IND, 0)], 0) + POP, "NESTED_INDIRECT")
    raw("nested_indirect_in_later_entry",
        vq_indirect([(b, 8, F_NEXT, 1), (b, 8, F_NEXT, 2), (b, 16, F_IND, 0)], 0) + POP,
        "NESTED_INDIRECT")
    raw("indirect_next_past_table", vq_indirect([(b, 8, F_NEXT, 2), (b, 8, 0, 0)], 0) + POP,
        "HEAD")
    raw("indirect_self_loop",
        vq_indirect([(b, 8, F_NEXT, 0), (b, 8, F_NEXT, 2), (b, 8, F_NEXT, 3), (b, 8, 0, 0)], 0) +
        POP, "LOOP")
    raw("indirect_cycle", vq_indirect([(b, 8, F_NEXT, 1), (b, 8, F_NEXT, 2), (b, 8, F_NEXT, 0)],
                                      0) + POP, "LOOP")
    raw("indirect_buf_outside_ram", vq_indirect([(b, 8, F_NEXT, 1), (end - 1, 2, F_WRITE, 0)], 0) +
        POP, "DESC_ADDR")
    raw("indirect_buf_gpa_len_wraps", vq_indirect([(0xFFFFFFFFFFFFFFFD, 8, 0, 0)], 0) + POP,
        "DESC_ADDR")
    raw("direct_plus_indirect_longer_than_queue",
        b"".join(vq_raw_desc(i, b, 8, F_NEXT, i + 1) for i in range(10)) +
        vq_indirect([(b, 8, F_NEXT, i + 1) for i in range(7)] + [(b, 8, 0, 0)], 10,
                    publish=False) + vq_publish(0) + POP, "LOOP")
    raw("loop_before_indirect", vq_raw_desc(0, b, 8, F_NEXT, 1) + vq_raw_desc(1, b, 8, F_NEXT, 0) +
        vq_indirect([(b, 8, 0, 0)], 2, publish=False) + vq_publish(0) + POP, "LOOP")
    raw("loop_after_valid_chain", vq_raw_desc(0, b, 8, 0, 0) + vq_raw_desc(1, b, 8, F_NEXT, 1) +
        vq_publish(0) + vq_publish(1) + POP + POP, "LOOP")
    raw("self_loop_with_event_idx", vq_raw_desc(0, b, 8, F_NEXT, 0, True) + vq_used_event(0) +
        POP, "LOOP", evidx=True)

    # valid paths (TEMPLATE mode: mode 0, no mutation budget; RAW for device order)
    def send(shape, n, ln=64):
        return u8(0) + u8(shape) + b"".join(len32(ln) + databuf(64 * i) for i in range(n)) + \
            b"hello, device!" * 0
    seeds.append(("valid_direct_chains", u8(0) + vq_cfg(4) +
                  b"".join(u8(0) + u8(0x05) + len32(32) + databuf(8) + b"ping" * 8 +
                           len32(64) + databuf(16) for _ in range(4)), None))
    seeds.append(("valid_indirect_and_zero_len", u8(0) + vq_cfg(4) +
                  u8(1) + u8(0x15) + len32(16) + databuf(0) + b"x" * 16 + len32(16) + databuf(8) +
                  u8(2) + u8(0x26) + len32(8) + databuf(32) + b"y" * 8 + len32(8) + databuf(40) +
                  b"z" * 8 + len32(8) + databuf(48), None))
    seeds.append(("valid_batch_event_idx", u8(0) + vq_cfg(3, evidx=True) +
                  u8(3) + u8(3) + (u8(0x05) + len32(8) + databuf(0) + b"a" * 8 + len32(8) +
                                   databuf(4)) * 4 + u8(5) + u8(0x15) + u8(4), None))
    seeds.append(("valid_no_interrupt_then_reset", u8(0) + vq_cfg(2) + u8(5) + u8(0x03) +
                  u8(0) + u8(0x01) + len32(4) + databuf(0) + b"abcd" + u8(7) +
                  u8(0) + u8(0x04) + len32(4) + databuf(0), None))
    seeds.append(("valid_size_1_ring_reuse", u8(0) + vq_cfg(0) +
                  (u8(0) + u8(0x01) + len32(4) + databuf(0) + b"wrap") * 20, None))
    seeds.append(("template_with_mutations", u8(0x1C) + vq_cfg(4) + u8(0) + u8(0x05) + len32(8) +
                  databuf(0) + b"z" * 8 + len32(8) + databuf(2) + u8(6) + u8(sel(10, 1)) +
                  vindex(0) + u8(6) + u8(0), None))
    seeds.append(("raw_device_order", RAW + vq_cfg(4, evidx=True) +
                  vq_send(0x05, [16, 32], b"out of order") + vq_send(0x06, [8, 8, 8], b"two") +
                  POP + POP + u8(6) + u8(0) + len32(0) + u16(100) + u8(6) + u8(1) + len32(4) +
                  u16(8) + b"WXYZWXYZ" + vq_push(1, 8) + vq_push(0, 4) + u8(3) + u8(4) + u8(5) +
                  u8(0) + REAP + u8(12) + SERVICE, None))
    return seeds


# ---------------------------------------------------------------------------
# fuzz_virtio_mmio
# ---------------------------------------------------------------------------

MMIO = dict(MAGIC=0x000, VERSION=0x004, DEVICE_ID=0x008, VENDOR_ID=0x00C, DEV_FEAT=0x010,
            DEV_FEAT_SEL=0x014, DRV_FEAT=0x020, DRV_FEAT_SEL=0x024, QUEUE_SEL=0x030,
            QUEUE_NUM_MAX=0x034, QUEUE_NUM=0x038, QUEUE_READY=0x044, QUEUE_NOTIFY=0x050,
            INT_STATUS=0x060, INT_ACK=0x064, STATUS=0x070, DESC_LO=0x080, DESC_HI=0x084,
            DRV_LO=0x090, DRV_HI=0x094, DEV_LO=0x0A0, DEV_HI=0x0A4, SHM_SEL=0x0AC,
            CONFIG_GEN=0x0FC, CONFIG=0x100)
WIDX = {4: 0, 1: 4, 2: 5, 8: 6, 3: 7}


def m_w(reg, val, width=4):
    off = MMIO[reg] if isinstance(reg, str) else reg
    return u8(0) + u8((WIDX[width] << 5) | 0x10) + u16(off) + b"\x80" + u32(val)


def m_r(reg, width=4):
    off = MMIO[reg] if isinstance(reg, str) else reg
    return u8(1) + u8((WIDX[width] << 5) | 0x10) + u16(off)


def m_dev(nq=2, qmax_log2=6, cfg_idx=4, features=(1 << 3) | (1 << 29) | (1 << 28), mask=0,
          beh=0, ring_idx=0, bad=None):
    """Device description; bad = (num_queues, queue_max, config_size, nulls) for the
    creation checks (beh bit 3), which come before the ring size byte."""
    out = u8(nq) + u8(qmax_log2) + u8(cfg_idx) + u64(features) + u8(mask) + u8(beh)
    if bad is not None:
        out += u8(bad[0]) + u16(bad[1]) + u16(bad[2]) + u8(bad[3])
    return out + u8(ring_idx)


def mmio_seeds():
    RAW = u8(3)
    S_ACK, S_DRV, S_OK, S_FOK, S_NR, S_FAIL = 1, 2, 4, 8, 64, 128
    V1 = 1 << 32
    qgpa = 0x40000000
    layout = VQ(16)
    desc, avail, used = qgpa, qgpa + (layout.avail - RAM_GPA), qgpa + (layout.used - RAM_GPA)

    def negotiate(feat=V1 | (1 << 29)):
        return (m_w("STATUS", 0) + m_w("STATUS", S_ACK) + m_w("STATUS", S_ACK | S_DRV) +
                m_w("DRV_FEAT_SEL", 0) + m_w("DRV_FEAT", feat) + m_w("DRV_FEAT_SEL", 1) +
                m_w("DRV_FEAT", feat >> 32) + m_w("STATUS", S_ACK | S_DRV | S_FOK))

    def queue(qi=0, num=16, d=desc, a=avail, u=used, ready=1):
        return (m_w("QUEUE_SEL", qi) + m_w("QUEUE_NUM", num) + m_w("DESC_LO", d) +
                m_w("DESC_HI", d >> 32) + m_w("DRV_LO", a) + m_w("DRV_HI", a >> 32) +
                m_w("DEV_LO", u) + m_w("DEV_HI", u >> 32) + m_w("QUEUE_READY", ready))

    ok = negotiate() + queue(0) + queue(1, d=desc + 0x1000000, a=avail + 0x1000000,
                                         u=used + 0x1000000) + \
        m_w("STATUS", S_ACK | S_DRV | S_FOK | S_OK)
    send = u8(7) + u8(0) + u8(0x05) + len32(8) + databuf(0) + b"mmio" * 2 + len32(8) + \
        databuf(2) + u8(2)
    s = [
        ("valid_bring_up_and_traffic", u8(0) + m_dev() + b"".join(
            u8(x) for x in (0, 0, 0x05)) + len32(8) + databuf(0) + b"hello!!!" + len32(8) +
         databuf(2) + u8(1) + u8(5) + u8(4) + u8(0)),
        ("valid_registers_raw", RAW + m_dev() + ok + send + m_r("INT_STATUS") + m_w("INT_ACK", 1) +
         b"".join(m_r(r) for r in ("MAGIC", "VERSION", "DEVICE_ID", "VENDOR_ID", "DEV_FEAT",
                                   "QUEUE_NUM_MAX", "QUEUE_READY", "STATUS", "CONFIG_GEN",
                                   0x0B0, 0x0B4))),
        ("valid_deferred_device", u8(0) + m_dev(beh=3) + u8(0) + u8(0) + u8(0x05) + len32(8) +
         databuf(0) + b"deferred" + len32(8) + databuf(2) + u8(1) + u8(6) + u8(3)),
        ("valid_eight_queues", u8(0) + m_dev(nq=8, qmax_log2=4, ring_idx=3) +
         b"".join(u8(0) + u8(q) + u8(0x05) + len32(4) + databuf(0) + b"qqqq" + len32(4) +
                  databuf(1) + u8(1) for q in range(8))),
        ("config_space_widths", RAW + m_dev(cfg_idx=5) + b"".join(
            u8(2) + u8(w) + u8(o) for w in range(8) for o in (0, 1, 7, 56, 59, 60, 255)) +
         u8(3) + u8(3) + u8(0) + u64(0x1122334455667788) + u8(3) + u8(0) + u8(60) + u64(1)),
        ("malformed_queue_sel_out_of_range", RAW + m_dev() + negotiate() +
         queue(2) + m_r("QUEUE_NUM_MAX") + m_r("QUEUE_READY")),
        ("malformed_queue_sel_huge", RAW + m_dev() + negotiate() + queue(0xFFFFFFFF)),
        ("malformed_queue_num_zero", RAW + m_dev() + negotiate() + queue(0, num=0)),
        ("malformed_queue_num_above_max", RAW + m_dev() + negotiate() + queue(0, num=128)),
        ("malformed_queue_num_65536", RAW + m_dev() + negotiate() + queue(0, num=65536)),
        ("malformed_queue_num_not_power_of_two", RAW + m_dev() + negotiate() + queue(0, num=12)),
        ("malformed_queue_desc_misaligned", RAW + m_dev() + negotiate() + queue(0, d=desc + 8)),
        ("malformed_queue_used_misaligned", RAW + m_dev() + negotiate() + queue(0, u=used + 2)),
        ("malformed_queue_ring_outside_ram", RAW + m_dev() + negotiate() + queue(0, d=0x1000)),
        ("malformed_queue_ring_high_half_garbage", RAW + m_dev() + negotiate() +
         queue(0, d=desc | (0xDEAD << 32))),
        ("malformed_notify_before_driver_ok", RAW + m_dev() + negotiate() + queue(0) +
         m_w("QUEUE_NOTIFY", 0) + m_w("QUEUE_NOTIFY", 0)),
        ("malformed_notify_queue_out_of_range", RAW + m_dev() + ok + m_w("QUEUE_NOTIFY", 7) +
         m_w("QUEUE_NOTIFY", 0xFFFF)),
        ("malformed_notify_queue_not_ready", RAW + m_dev() + negotiate() + queue(0) +
         m_w("STATUS", S_ACK | S_DRV | S_FOK | S_OK) + m_w("QUEUE_NOTIFY", 1)),
        ("malformed_features_ok_without_version_1", RAW + m_dev() + negotiate(1 << 29) +
         m_r("STATUS")),
        ("malformed_features_ok_with_unoffered_low", RAW + m_dev() + negotiate(V1 | 1) +
         m_r("STATUS")),
        ("malformed_features_ok_with_unoffered_high", RAW + m_dev() + negotiate(V1 | (1 << 40))),
        ("malformed_features_ok_with_packed_ring", RAW + m_dev() + negotiate(V1 | (1 << 34))),
        ("malformed_features_sel_2_nonzero", RAW + m_dev() + m_w("STATUS", S_ACK | S_DRV) +
         m_w("DRV_FEAT_SEL", 0) + m_w("DRV_FEAT", 0) + m_w("DRV_FEAT_SEL", 1) +
         m_w("DRV_FEAT", 1) + m_w("DRV_FEAT_SEL", 2) + m_w("DRV_FEAT", 1) +
         m_w("STATUS", S_ACK | S_DRV | S_FOK)),
        ("malformed_driver_features_after_features_ok", RAW + m_dev() + negotiate() +
         m_w("DRV_FEAT_SEL", 0) + m_w("DRV_FEAT", 0xFFFFFFFF)),
        ("malformed_queue_regs_written_while_ready", RAW + m_dev() + negotiate() + queue(0) +
         m_w("QUEUE_NUM", 4) + m_w("DESC_LO", 0) + m_r("QUEUE_READY") + queue(0)),
        ("malformed_queue_ready_garbage_value", RAW + m_dev() + negotiate() +
         queue(0, ready=2) + queue(0, ready=0xFFFFFFFF)),
        ("malformed_queue_ready_before_features_ok", RAW + m_dev() + m_w("STATUS", S_ACK) +
         queue(0)),
        ("malformed_driver_ok_without_features_ok", RAW + m_dev() + m_w("STATUS", S_ACK | S_DRV) +
         m_w("STATUS", S_ACK | S_DRV | S_OK) + m_r("STATUS")),
        ("malformed_status_clears_bits", RAW + m_dev() + ok + m_w("STATUS", S_ACK)),
        ("malformed_status_sets_needs_reset", RAW + m_dev() + ok + m_w("STATUS", 0xFF) +
         m_w("STATUS", S_NR | S_FAIL)),
        ("malformed_config_out_of_bounds", RAW + m_dev(cfg_idx=4) + m_r(0x100 + 24) +
         m_r(0x100 + 22) + m_w(0x100 + 21, 0x1234, 4) + u8(2) + u8(3) + u8(20)),
        ("malformed_register_narrow_access", RAW + m_dev() + m_r("MAGIC", 1) + m_r("MAGIC", 2) +
         m_w("STATUS", 1, 1) + m_w("STATUS", 1, 2) + m_r(0x71, 4) + m_w(0x72, 1, 4) +
         m_r("MAGIC", 8) + m_w("STATUS", 1, 8) + m_r(0x1FF, 1) + m_r(0x3FF, 4)),
        ("malformed_write_read_only_registers", RAW + m_dev() + b"".join(
            m_w(r, 0xFFFFFFFF) for r in ("MAGIC", "VERSION", "DEVICE_ID", "VENDOR_ID",
                                         "DEV_FEAT", "QUEUE_NUM_MAX", "INT_STATUS",
                                         "CONFIG_GEN", 0x0B0, 0x0B8)) + m_r("MAGIC")),
        ("malformed_interrupt_ack_unknown_bits", RAW + m_dev() + ok + send +
         m_w("INT_ACK", 0xFFFFFFFC) + m_w("INT_ACK", 0xFFFFFFFF)),
        ("malformed_activate_fails", RAW + m_dev(mask=0x80) + ok + m_r("STATUS") +
         m_r("INT_STATUS")),
        ("malformed_needs_reset_then_driver_ok", RAW + m_dev() + negotiate() + queue(0, num=0) +
         m_w("STATUS", S_ACK | S_DRV | S_FOK | S_OK) + m_w("QUEUE_NOTIFY", 0) + u8(15)),
        ("device_events_and_irq_errors", RAW + m_dev(beh=4) + ok + send + u8(11) + u8(0) +
         u8(11) + u8(1) + u8(11) + u8(2) + u8(0) + u8(9) + u8(1) + u8(15)),
        ("callbacks_missing", RAW + m_dev(mask=0x7F) + ok + send + u8(2) + u8(2) + u8(0)),
        ("no_queues", RAW + m_dev(nq=0) + negotiate() + queue(0) +
         m_w("STATUS", S_ACK | S_DRV | S_FOK | S_OK) + m_w("QUEUE_NOTIFY", 0)),
        ("invalid_device_ops", u8(0) + m_dev(beh=8, bad=(9, 64, 0, 0))),
        ("invalid_device_queue_size", u8(0) + m_dev(beh=8, bad=(2, 48, 0, 0))),
        ("invalid_device_config_size", u8(0) + m_dev(beh=8, bad=(1, 64, 257, 0))),
        ("invalid_device_null_memory", u8(0) + m_dev(beh=8, bad=(1, 64, 8, 2))),
        ("valid_device_ops_checked", u8(0) + m_dev(beh=8, bad=(8, 32768, 256, 0))),
        ("chain_loop_via_transport", RAW + m_dev() + ok + u8(12) + u8(0) +
         u8(sel(10, 0)) + vindex(0) + len32(8) + vaddr(VQ(16).data) + u8(F_NEXT) + vindex(0) +
         u8(12) + u8(0) + u8(sel(10, 7)) + vindex(0) + m_w("QUEUE_NOTIFY", 0) + m_r("STATUS")),
    ]
    return [(n, d, None) for n, d in s]


# ---------------------------------------------------------------------------
# fuzz_virtio_blk
# ---------------------------------------------------------------------------

T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 4, 8, 11, 13
TYPE_SEL = {T_IN: 0, T_OUT: 3, T_FLUSH: 6, T_GET_ID: 7, T_DISCARD: 8, T_WZ: 10}
BLK_ALL = (1 << 9) | (1 << 13) | (1 << 14) | (1 << 29) | (1 << 28) | (1 << 2) | (1 << 6) | (1 << 32)


def blk_hdr(mode=0, cap=16, ro=False, odd=False, serial=0, create=0, features=BLK_ALL, ring=0):
    return (u8(mode) + u8(cap | (64 if ro else 0) | (128 if odd else 0)) + u8(serial) +
            u8(create) + u64(features) + u8(ring))


def blk_sector(v):
    return b"\xe0" + u64(v)


def blk_req(rtype, sector=0, shape=0, extra=0, dsec=1, segs=(), gid_idx=0, data=b"D" * 64,
            raw_type=None, cuts=None):
    """One request (build_request): shape, extra, type, sector, payload picks, the 64
    data bytes of a device-readable payload, then the split ("cut") bytes."""
    out = u8(shape) + u8(extra)
    kind = extra & 0x1F
    out_dir = rtype in (T_OUT, T_DISCARD, T_WZ) and raw_type is None
    if kind == 3:
        out_dir = not out_dir
    if rtype in (T_IN, T_OUT) and raw_type is None:
        dlen = 512 * (dsec % 9) or (512 if kind == 6 else 0)
    elif rtype in (T_DISCARD, T_WZ) and raw_type is None:
        dlen = 16 * len(segs)
    elif rtype == T_GET_ID and raw_type is None:
        dlen = (20, 20, 20, 0, 1, 19, 21, 512)[gid_idx & 7]
    else:
        dlen = 512
    hlen = (extra >> 5) * 2 if kind == 2 else 16
    merge_hd = (shape & 8) and out_dir and dlen and hlen == 16
    if cuts is None:  # whole pieces: one cut byte per split that reads one
        if merge_hd:
            cuts = b"\0"
        else:
            cuts = (b"\0" if shape & 2 and hlen else b"") + (b"\0" if dlen and kind != 6 else b"")
    if raw_type is not None:
        out += b"\xf0" + u32(raw_type)
    else:
        out += u8(TYPE_SEL[rtype])
    out += blk_sector(sector)
    if rtype in (T_DISCARD, T_WZ) and raw_type is None:
        out += u8(len(segs) - 1) if 1 <= len(segs) <= 4 else u8(0xDE + len(segs))
        for sec, num, flags in segs:
            out += blk_sector(sec) + b"\xc0" + u32(num) + b"\xc0" + u32(flags)
    elif rtype in (T_IN, T_OUT) and raw_type is None:
        out += u8(dsec)
    elif rtype == T_GET_ID and raw_type is None:
        out += u8(gid_idx)
    else:
        out += u8(1)
    return out + (data[:64].ljust(64, b"D") if out_dir and dlen else b"") + cuts


def blk_seeds():
    s = []
    T = lambda ops: blk_hdr() + ops  # noqa: E731
    one = lambda req: u8(0) + req  # noqa: E731  (template op 0: request + notify)
    s.append(("valid_read_write_flush_id", T(
        one(blk_req(T_OUT, 2, dsec=2) + u8(0)) + one(blk_req(T_IN, 2, dsec=2) + u8(1)) +
        one(blk_req(T_FLUSH) + u8(0)) + one(blk_req(T_GET_ID) + u8(0)))))
    s.append(("valid_discard_write_zeroes", T(
        one(blk_req(T_DISCARD, segs=[(1, 2, 0), (8, 1, 0)]) + u8(0)) +
        one(blk_req(T_WZ, segs=[(3, 4, 1)]) + u8(0)) +
        one(blk_req(T_WZ, segs=[(0, 16, 0)]) + u8(1)) + one(blk_req(T_IN, 0, dsec=8) + u8(0)))))
    s.append(("valid_framings", T(
        one(blk_req(T_OUT, 1, shape=0x0A, dsec=3, cuts=b"\xc1\x85\x81\x00") + u8(0)) +
        one(blk_req(T_IN, 1, shape=0x07, dsec=3, cuts=b"\x81\xc1\x83\x00") + u8(0)) +
        one(blk_req(T_IN, 0, shape=0x01, extra=4, dsec=1) + u8(0)))))
    s.append(("valid_batch", blk_hdr() + u8(4) + u8(5) + b"".join(
        blk_req(t, 3, dsec=1) for t in (T_OUT, T_IN, T_FLUSH, T_GET_ID, T_OUT, T_IN)) + u8(1) +
        u8(5)))
    s.append(("valid_write_through_no_flush", blk_hdr(features=BLK_ALL & ~(1 << 9)) +
              one(blk_req(T_OUT, 0, dsec=1) + u8(0)) +
              one(blk_req(T_DISCARD, segs=[(0, 1, 0)]) + u8(0))))
    s.append(("valid_read_only", blk_hdr(ro=True) + one(blk_req(T_OUT, 0, dsec=1) + u8(0)) +
              one(blk_req(T_WZ, segs=[(0, 1, 0)]) + u8(0)) + one(blk_req(T_IN, 0) + u8(0))))
    s.append(("valid_serials", blk_hdr(serial=2) + one(blk_req(T_GET_ID, gid_idx=5) + u8(0)) +
              one(blk_req(T_GET_ID, gid_idx=3) + u8(0))))
    s.append(("valid_ring_256_many_segments", blk_hdr(ring=2) +
              one(blk_req(T_IN, 0, extra=6, dsec=1) + u8(0)) +
              one(blk_req(T_OUT, 0, extra=6, dsec=1) + u8(0))))
    s.append(("malformed_requests", T(
        one(blk_req(T_IN, 16, dsec=1) + u8(0)) +            # past the end
        one(blk_req(T_IN, 0xFFFFFFFFFFFFFFFF, dsec=1) + u8(0)) +
        one(blk_req(T_IN, 0, extra=5, dsec=1) + u8(0)) +    # odd length
        one(blk_req(T_OUT, 0, extra=3, dsec=1) + u8(0)) +   # wrong direction
        one(blk_req(None, 0, raw_type=2) + u8(0)) +          # unknown type
        one(blk_req(T_DISCARD, segs=[(0, 1, 2)]) + u8(0)) +  # unknown flag
        one(blk_req(T_DISCARD, segs=[(0, 1, 1)]) + u8(0)) +  # UNMAP on discard
        one(blk_req(T_WZ, segs=[(15, 2, 0)]) + u8(0)) +      # past the end
        one(blk_req(T_WZ, segs=[(0, 65537, 0)]) + u8(0)) +   # too big
        one(blk_req(T_DISCARD, segs=[(0, 1, 0)] * 33) + u8(0)))))
    s.append(("malformed_unanswerable", T(
        one(blk_req(T_IN, 0, extra=2 | (3 << 5), dsec=1) + u8(0)) + u8(7) +   # short header
        one(blk_req(T_OUT, 0, extra=1, dsec=0) + u8(0)) + u8(5))))          # no status byte
    s.append(("malformed_not_negotiated", blk_hdr(features=1 << 32) +
              one(blk_req(T_DISCARD, segs=[(0, 1, 0)]) + u8(0)) +
              one(blk_req(T_WZ, segs=[(0, 1, 0)]) + u8(0))))
    s.append(("malformed_raw_queue", blk_hdr(mode=3) + u8(8) + u64(BLK_ALL) + u8(9) + u8(0) +
              blk_req(T_IN, 0) + u8(3) + u8(sel(10, 1)) + vindex(0) + u8(6) + u8(2) + u8(0) +
              u8(6) + u8(7) + u8(0x85) + u8(4) + u8(7) + u8(0) + u32(0) + u8(10) + u8(11)))
    for name, kw in (("create_odd_size", dict(odd=True)), ("create_serial_21", dict(serial=3)),
                     ("create_empty_path", dict(create=3)), ("create_no_path", dict(create=4)),
                     ("create_missing_file", dict(create=5)), ("create_directory", dict(create=6)),
                     ("create_locked", dict(create=7)), ("create_locked_ro", dict(create=7, ro=True)),
                     ("create_empty_disk", dict(cap=0))):
        s.append((name, blk_hdr(**kw) + one(blk_req(T_IN, 0) + u8(0))))
    return [(n, d, None) for n, d in s]


# ---------------------------------------------------------------------------
# fuzz_virtio_console
# ---------------------------------------------------------------------------

def con_hdr(mode=0, inp=0, out=0, size=False, bufs=0, features=(1 << 32) | (1 << 29) | 7,
            rings=0, create=0):
    return (u8(mode) + u8(inp | (out << 2) | (16 if size else 0) | (bufs << 5)) + u64(features) +
            u8(rings) + u8(create))


def con_tx(text, ind=0):
    n = len(text)
    return u8(0) + u8(0x01 | ind) + len32(n) + databuf(0) + text[:64] + u8(0)


def con_rx(nchains=2, nbufs=1, ln=32):
    out = u8(2) + u8(nchains - 1)
    for _ in range(nchains):
        out += u8(nbufs - 1) + b"".join(u8(ln - 1) for _ in range(nbufs)) + u8(0)
    return out + u8(0)


def con_in(text):
    return u8(4) + u8(len(text) - 1) + text


def con_seeds():
    s = [
        ("valid_echo_session", con_hdr(size=True) + con_tx(b"hello from the guest\n") +
         con_rx(2) + con_in(b"hello from the host\n") + u8(5) + u16(4095) + u8(6) + b"!" +
         u8(0) + u8(7)),
        ("valid_backpressure_small_buffers", con_hdr(bufs=0) + con_in(b"x" * 60) + u8(4) +
         u8(0x87) + con_rx(4, 3, 8) + con_tx(b"y" * 60) * 3 + u8(5) + u16(100) + u8(4) +
         u8(0x83) + con_rx(4, 1, 64) + con_rx(4, 3, 64)),
        ("valid_pipe_full_drops", con_hdr(bufs=1) + con_tx(b"z" * 64) * 20 + u8(6) + b"e" +
         u8(1) + u8(5) + u16(10)),
        ("valid_reset_keeps_input", con_hdr() + con_in(b"before reset") + u8(9) + con_rx(1) +
         u8(7)),
        ("stdio_no_input_no_output", con_hdr(inp=2, out=1) + con_tx(b"nowhere") + con_rx(1) +
         u8(6) + b"n" + u8(0)),
        ("stdio_input_only", con_hdr(inp=0, out=2) + con_tx(b"dropped") + con_in(b"in") +
         con_rx(1)),
        ("stdio_regular_files", con_hdr(inp=3, out=3) + con_tx(b"to a file") + con_rx(1)),
        ("input_eof_output_epipe", con_hdr(mode=0x1C) + con_in(b"last words") + u8(8) + u8(8) +
         u8(8) + u8(9) + con_tx(b"into the void") + u8(6) + b"v" + u8(0)),
        ("unix_backend_clients", con_hdr(inp=2, out=2, bufs=2) + u8(8) + con_tx(b"to client 1") +
         con_in(b"from client 1") + con_rx(2) + u8(8) + u8(1) + u8(8) + con_in(b"client 2") +
         con_tx(b"to client 2") + u8(5) + u16(200)),
        ("stdout_is_a_socket", con_hdr(create=8, bufs=1) + con_tx(b"s" * 64) * 8 + u8(5) +
         u16(100) + u8(4) + u8(0x81) + con_rx(2)),
        ("create_buffer_too_big", con_hdr(create=4)),
        ("create_unknown_backend", con_hdr(create=5)),
        ("create_path_too_long", con_hdr(create=6)),
        ("create_path_taken", con_hdr(create=7)),
        ("raw_queue_mutations", u8(3) + con_hdr()[1:] + u8(13) + u64(1 << 32) + u8(14) +
         u8(1) + u8(0) + u8(0) + u8(31) + u8(0) + u8(0) + u8(4) + u8(0) + u8(sel(10, 7)) +
         vindex(0xFFFF) + u8(0) + u8(0x01) + len32(4) + databuf(0) + b"boom" + u8(0) + u8(12) +
         u8(7) + u8(0x4F) + u8(15)),
    ]
    return [(n, d, None) for n, d in s]


# ---------------------------------------------------------------------------
# fuzz_virtio_vsock
# ---------------------------------------------------------------------------

def vs_hdr(mode=0, buf=0, maxc=0, cid3=False, small=False, rings=0, raw_cid=None):
    b = buf | (maxc << 2) | (16 if cid3 else 0) | (32 if small else 0) | \
        (64 if raw_cid is not None else 0)
    out = u8(mode) + u8(b) + u8(rings)
    if raw_cid is not None:
        out += u64(raw_cid)
    if mode & 3 == 3:
        return out
    # bring_up posts min(rx ring, 8) buffers: shape bytes (4 KiB data, own header)
    nrx = (32, 16, 8, 64, 4, 256, 2, 32)[rings & 7]
    return out + b"\x00" * min(nrx, 8)


def vs_seeds():
    LISTEN = lambda i: u8(6) + u8(i)  # noqa: E731
    ACCEPT = u8(7) + u8(0)
    ACCEPT_PAUSED = u8(7) + u8(1)  # host sockets stop reading
    # a guest packet ends with: frame byte, data-buffer pick, notify byte
    CONNECT = lambda g, l: u8(0) + u8(g) + u8(l) + u8(0) + u8(0) + u8(0)  # noqa: E731
    REPLY = lambda c, op, extra=b"", frame=0: (u8(2) + u8(c) + u8(op) + extra + u8(frame) +  # noqa
                                               u8(0) + u8(0))
    RW = lambda c, n, frame=0: REPLY(c, 0, u16(n - 1), frame)  # noqa: E731
    HSEND = lambda p, n: u8(9) + u8(p) + u8(n)  # noqa: E731
    HCONN = lambda g: u8(8) + u8(g) + u8(0)  # noqa: E731
    CREDIT = u8(14) + u8(0)
    s = [
        ("valid_guest_to_host", vs_hdr() + LISTEN(0) + CONNECT(0, 0) + ACCEPT +
         RW(0, 1000, 1) + HSEND(0, 40) + RW(0, 51, 2) + CREDIT +
         u8(11) + u8(0) + u8(1) + REPLY(0, 5, u8(1)) + REPLY(0, 6)),
        ("valid_host_to_guest", vs_hdr() + HCONN(1) + u8(15) + REPLY(0, 7) +
         HSEND(0, 20) + RW(0, 300, 8) + u8(11) + u8(0) + u8(0)),
        ("valid_credit_exhaustion", vs_hdr(small=True, buf=1) + LISTEN(1) + CONNECT(1, 1) +
         ACCEPT + HSEND(0, 0x8F) + HSEND(0, 0x8F) + CREDIT + HSEND(0, 0x83) + REPLY(0, 4) +
         RW(0, 3000) * 4),
        ("no_listener_rst", vs_hdr() + CONNECT(2, 4) + RW(0, 10)),
        ("host_backpressure", vs_hdr() + LISTEN(0) + CONNECT(0, 0) + ACCEPT_PAUSED +
         REPLY(0, 0, u16(0xF000)) * 5 + HSEND(0, 10) + ACCEPT + u8(15) + u8(0) * 5 +
         REPLY(0, 5, u8(1)) + CREDIT),
        ("connection_limit", vs_hdr(maxc=1) + LISTEN(0) + LISTEN(1) + CONNECT(0, 0) +
         CONNECT(1, 1) + HCONN(2) + ACCEPT),
        ("host_close_and_shutdowns", vs_hdr() + LISTEN(2) + CONNECT(3, 2) + ACCEPT +
         HSEND(0, 5) + u8(11) + u8(0) + u8(1) + REPLY(0, 5, u8(0)) + HCONN(0) + u8(15) + u8(0) +
         REPLY(1, 6) + u8(11) + u8(1) + u8(0)),
        ("small_rings_and_buffers", vs_hdr(rings=6) + LISTEN(0) + CONNECT(0, 0) + ACCEPT +
         HSEND(0, 100) + u8(5) + u8(3) + u8(0x07) + u8(0x0B) + u8(0x03) + u8(0x4C) + u8(0)),
        ("device_reset", vs_hdr() + LISTEN(0) + CONNECT(0, 0) + ACCEPT + HCONN(1) + u8(13)),
        ("bad_config", vs_hdr(buf=3) + u8(0)),
        ("bad_cid", vs_hdr(raw_cid=2) + u8(0)),
        ("raw_malformed_packets", vs_hdr(mode=3) + u8(12) + u64(1 << 32) + u8(13) + u8(14) +
         u8(3) + b"\0" * 4 + u8(0) +
         # op 0: raw packet: s, op, plen, payload, flags, fwd, m-bits ...
         u8(0) + u8(0x10) + u8(0) + u8(5) + u8(4) + b"data" + u8(0) + u32(0) + u8(0x08) +
         len32(0x10000) + u8(0) + u8(0) +
         u8(0) + u8(0x10) + u8(0) + u8(1) + u8(0) + u8(0) + u32(0) + u8(0x01) + u64(7) +
         u8(0) + u8(0) +
         u8(0) + u8(0x10) + u8(0) + u8(1) + u8(0) + u8(0) + u32(0) + u8(0x04) + u16(2) +
         u8(0) + u8(0) +
         u8(0) + u8(0x10) + u8(0) + u8(8) + u8(0) + u8(0) + u32(0) + u8(0) + u8(0x70) +
         u8(20) + u8(0) + u8(6) + u8(7)),
    ]
    return [(n, d, None) for n, d in s]


# ---------------------------------------------------------------------------
# fuzz_cli
# ---------------------------------------------------------------------------

def cli_seeds():
    cases = {
        "minimal": ["--kernel", "path=Image"],
        "full": ["--kernel=path=Image,initrd=rd.cpio,cmdline=\"console=ttyAMA0 quiet\"",
                 "--memory", "size_mib=512", "--vcpu", "num=2", "--log", "level=debug",
                 "--on-reset", "reboot", "--block", "path=a.img,ro=on,id=disk0",
                 "--block=path=b.img", "--console", "backend=unix,path=/tmp/c.sock",
                 "--vsock", "cid=3,uds=/tmp/v.sock", "--dump-dtb", "out.dtb"],
        "hex_numbers": ["--kernel", "path=K", "--memory", "size_mib=0x100", "--vcpu", "num=0x8"],
        "help": ["--memory", "size_mib=64", "--help"],
        "version": ["--kernel", "path=K", "--version"],
        "no_kernel": ["--memory", "size_mib=64"],
        "unknown_option": ["--bogus"],
        "positional": ["Image"],
        "missing_value": ["--kernel"],
        "twice": ["--kernel", "path=a", "--kernel", "path=b"],
        "memory_bounds": ["--kernel", "path=K", "--memory", "size_mib=15"],
        "memory_huge": ["--kernel", "path=K", "--memory", "size_mib=18446744073709551616"],
        "vcpu_zero": ["--kernel", "path=K", "--vcpu", "num=0"],
        "not_a_number": ["--kernel", "path=K", "--vcpu", "num=1e3"],
        "bad_log": ["--kernel", "path=K", "--log", "level=loud"],
        "bad_on_reset": ["--kernel", "path=K", "--on-reset", "restart"],
        "empty_path": ["--kernel", "path="],
        "unterminated_quote": ["--kernel", "path=K,cmdline=\"abc"],
        "text_after_quote": ["--kernel", "path=K,cmdline=\"a\"b"],
        "duplicate_key": ["--kernel", "path=a,path=b"],
        "not_key_value": ["--kernel", "Image"],
        "empty_key": ["--kernel", "=x"],
        "too_many_pairs": ["--kernel", ",".join("k%d=v" % i for i in range(17))],
        "long_cmdline": ["--kernel", "path=K,cmdline=" + "x" * 2048],
        "nine_disks": ["--kernel", "path=K"] + sum((["--block", "path=d%d" % i]
                                                   for i in range(9)), []),
        "same_disk_twice": ["--kernel", "path=K", "--block", "path=d", "--block", "path=d"],
        "disk_id_21": ["--kernel", "path=K", "--block", "path=d,id=" + "i" * 21],
        "disk_ro_bad": ["--kernel", "path=K", "--block", "path=d,ro=maybe"],
        "disk_no_path": ["--kernel", "path=K", "--block", "ro=on"],
        "console_pty": ["--kernel", "path=K", "--console", "backend=pty"],
        "console_unix_no_path": ["--kernel", "path=K", "--console", "backend=unix"],
        "console_path_not_unix": ["--kernel", "path=K", "--console", "backend=stdio,path=x"],
        "console_bad_backend": ["--kernel", "path=K", "--console", "backend=serial"],
        "vsock_cid_2": ["--kernel", "path=K", "--vsock", "cid=2,uds=v"],
        "vsock_cid_max": ["--kernel", "path=K", "--vsock", "cid=4294967295,uds=v"],
        "vsock_no_uds": ["--kernel", "path=K", "--vsock", "cid=3"],
        "empty_argument": ["--kernel", "path=K", ""],
        "passthrough": ["--kernel", "path=K", "--passthrough",
                        "sysfs=/sys/bus/amba/devices/9030000.pl061,addr=identity,irq=0:3/1:4",
                        "--passthrough=sysfs=/sys/bus/platform/devices/9020000.fw-cfg,"
                        "addr=0x9020000,dtb=frag.dtb"],
        "passthrough_bad_irq": ["--kernel", "path=K", "--passthrough", "sysfs=a,irq=0:1/0:2"],
        "passthrough_spi_range": ["--kernel", "path=K", "--passthrough", "sysfs=a,irq=1:988"],
        "passthrough_unaligned": ["--kernel", "path=K", "--passthrough", "sysfs=a,addr=0x9030001"],
        "passthrough_five": ["--kernel", "path=K"] + sum((["--passthrough", "sysfs=s%d" % i]
                                                        for i in range(5)), []),
    }
    out = []
    for i, (name, args) in enumerate(sorted(cases.items())):
        errsel = i % 8
        out.append((name, u8(3) + u8(errsel) + b"\0".join(a.encode() for a in args), None))
    # TEMPLATE mode examples (option/form/pairs/values from the tables in fuzz_cli.c)
    out.append(("template_groups", u8(0) + u8(0) + u8(0) + u8((2 << 5) | 1) + u8(0) + u8(3) +
                u8(2) + u8(46) + u8(6) + u8((3 << 5)) + u8(0) + u8(0) + u8(1) + u8(28) + u8(2) +
                u8(30), None))
    return out


# ---------------------------------------------------------------------------
# fuzz_image
# ---------------------------------------------------------------------------

def img_seed(mode=0, fs=0, text=0, size=0, pe=0, rb=0, rs=8 << 2, ri=0, rraw=0, fdt=b"",
             muts=b"", tail=b""):
    return (u8(mode) + u8(fs) + u64(text) + u64(size) + u8(pe) + u8(rb) + u8(rs) + u8(ri) +
            u64(rraw) + muts + tail + fdt)


def fdt_args(vcpus=1, nvirtio=3, bufsel=0, cmdline=b"console=ttyAMA0"):
    return u8(vcpus - 1) + u8(nvirtio) + u16(bufsel) + u8(len(cmdline)) + cmdline


def raw_image(text=0x80000, size=0x1000000, flags=0, magic=0x644D5241, length=64):
    h = bytearray(length)
    h[0:4] = u32(0x14000010)
    h[8:16] = u64(text)
    h[16:24] = u64(size)
    h[24:32] = u64(flags)
    h[56:60] = u32(magic)
    return bytes(h)


def image_seeds():
    s = [
        ("valid_template", img_seed(text=3 | (1000 << 40), size=0 | (0x100000 << 8),
                                    fdt=fdt_args())),
        ("valid_old_kernel", img_seed(text=0, size=3, ri=1 | (8 << 2), fdt=fdt_args(4, 16))),
        ("valid_efi_stub", img_seed(text=4 | (16 << 8), size=0, pe=1 | (3 << 1),
                                    fdt=fdt_args(8, 0, 0, b"root=/dev/vda rw"))),
        ("efi_truncated", img_seed(pe=1 | (7 << 1) | 0x10)),
        ("pe_corrupt", img_seed(pe=1 | (2 << 1), mode=(3 << 2), muts=u16(6) + u8(0xff) + u16(1) +
                                 u8(0xff) + u16(56) + u8(0x41))),
        ("big_endian", img_seed(size=(1 << 63) | 2)),
        ("text_offset_unaligned", img_seed(text=6)),
        ("text_offset_2m", img_seed(text=5)),
        ("image_smaller_than_file", img_seed(size=4)),
        ("image_size_huge", img_seed(size=6)),
        ("image_size_max", img_seed(size=5, rs=2, fdt=fdt_args())),
        ("ram_too_small", img_seed(size=0 | (0xFFFFFF << 8), rs=0)),
        ("ram_odd_size", img_seed(rs=3, rraw=0x123456789AB << 24, fdt=fdt_args())),
        ("initrd_huge", img_seed(ri=3 | 0x80)),
        ("initrd_fills_ram", img_seed(ri=3 | (4 << 2))),
        ("ram_base_unaligned", img_seed(rb=3 | 0x80 | (5 << 2))),
        ("ram_base_high", img_seed(rb=2, rraw=0xFFFFFF, rs=3, fdt=fdt_args(2, 1, 2))),
        ("fdt_bad_params", img_seed(fdt=u8(0x80) + u8(0) + u16(0) + u8(0))),
        ("fdt_too_many_virtio", img_seed(fdt=u8(0) + u8(0x80 | 17) + u16(0) + u8(0))),
        ("fdt_small_buffers", img_seed(fdt=fdt_args(8, 16, 3, b"x" * 200))),
        ("fdt_long_cmdline", img_seed(fdt=u8(0) + u8(1) + u16(0) + u8(0xFF) + b"c" * 2400)),
        ("fdt_null_cmdline", img_seed(fdt=u8(0) + u8(1) + u16(0) + u8(0))),
        ("file_size_variants", img_seed(fs=1, tail=u32(0x1000000), fdt=fdt_args())),
        ("raw_valid_header", img_seed(mode=3, fs=0) + raw_image()),
        ("raw_short", img_seed(mode=3) + b"ARM\x64" * 8),
        ("raw_bad_magic", img_seed(mode=3) + raw_image(magic=0x12345678)),
        ("raw_pe_header", img_seed(mode=3) + b"MZ" + b"\0" * 0x3A + u32(0x40) + b"PE\0\0" +
         u16(0xAA64) + u16(2) + b"\0" * 12 + u16(0) + u16(0) + b"\0" * 80),
    ]
    return [(n, d, None) for n, d in s]


# ---------------------------------------------------------------------------
# fuzz_passthrough_dt
# ---------------------------------------------------------------------------

def pt_seed(mode=0, link=b"\x08\x00\x01\x02\x03\x7f", rc=0, g=0, clk=b"\x04" + u32(24000000),
            levels=b"\x01\x00", d=0x01, addr=0x9030, regs=b"", ir=0x21, irqs=b"\x07",
            props=b"\x02\x0aarm,pl061\x00\x48resetsXX", path=0, muts=b"", m=0x01, mapx=b"",
            ph=0, bs=0, frag=b"\x00\x28\x00\x01", fmuts=b""):
    return (u8(mode) + link + u8(rc) + u8(g) + clk + levels + u8(d) + u16(addr) + regs +
            u8(ir) + irqs + props + u8(path) + muts + u8(m) + mapx + u8(ph) + u8(bs) + frag +
            fmuts)


def pt_seeds():
    s = [
        ("valid_identity", pt_seed()),
        ("valid_window", pt_seed(m=0x0e, mapx=b"")),
        ("valid_window_raw", pt_seed(m=0x00, mapx=u64(0x0C000000) + u64(0x100000) + u8(16))),
        ("bus_translation", pt_seed(levels=b"\x02\x04" + u16(0x10) + b"\x05" + u16(0x20),
                                    d=0x02)),
        ("bus_missing_ranges", pt_seed(levels=b"\x01\x08")),
        ("bus_bad_ranges", pt_seed(levels=b"\x01\x6c" + u32(7))),
        ("interrupts_extended_and_ppi", pt_seed(ir=0x83, irqs=b"\x07\x47\x87")),
        ("interrupt_to_non_gic", pt_seed(ir=0x19, irqs=b"\x07")),
        ("gic_two_cells", pt_seed(g=0x04)),
        ("no_interrupt_parent", pt_seed(g=0x08)),
        ("clock_cells_2", pt_seed(clk=b"\x02", ir=0x61)),
        ("many_regs", pt_seed(d=0x43, regs=u8(15))),
        ("reg_sizes", pt_seed(d=0x22, regs=u32(0x1000) + u32(0xFFFFFFFF))),
        ("reg_extra_cell", pt_seed(d=0x11)),
        ("denied_and_unknown_props", pt_seed(props=b"\x06\x48\x00\x49\x00\x4a\x00\x81okay\x82"
                                                   b"\x00\x0aarm,pl061\x00")),
        ("subnode_and_phandle", pt_seed(d=0x0d)),
        ("wrong_path", pt_seed(path=0xF1)),
        ("relative_path", pt_seed(path=0xF0)),
        ("map_errors", pt_seed(m=0x11, mapx=u8(3) + b"\xff\x01\x02", ph=0x3F)),
        ("map_extra_props", pt_seed(ph=0x40)),
        ("guest_buffer_small", pt_seed(bs=0x81)),
        ("fragment_outside", pt_seed(frag=b"\x00\x02\x40\x00")),
        ("fragment_bad_refs", pt_seed(frag=b"\x04\x38\x00\x03\x00\x0f")),
        ("fragment_cells", pt_seed(frag=b"\x03\x00\x70")),
        ("host_mutated", pt_seed(mode=0x08, muts=u16(0x40) + u8(0xff) + u16(8) + u8(0x10))),
        ("link_paths", pt_seed(link=b"\x9a/sys/firmware/devicetree/base/a/../b\x00\x20")),
        ("raw_blobs", u8(3) + b"\x00\x10" + u16(40) + b"\xd0\x0d\xfe\xed" + b"\x00" * 36 +
         u8(1) + u8(0) + u8(0) + u16(8) + b"\xd0\x0d\xfe\xed\x00\x00\x00\x08"),
    ]
    return [(n, d, None) for n, d in s]


TARGETS = {
    "fuzz_virtq": virtq_seeds,
    "fuzz_virtio_mmio": mmio_seeds,
    "fuzz_virtio_blk": blk_seeds,
    "fuzz_virtio_console": con_seeds,
    "fuzz_virtio_vsock": vs_seeds,
    "fuzz_cli": cli_seeds,
    "fuzz_image": image_seeds,
    "fuzz_passthrough_dt": pt_seeds,
}


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    names = set()
    for name, data, _ in seeds:
        fn = "seed-" + name
        if fn in names:
            raise SystemExit("duplicate seed %s/%s" % (target, fn))
        names.add(fn)
        path = os.path.join(d, fn)
        old = open(path, "rb").read() if os.path.exists(path) else None
        if old != data:
            with open(path, "wb") as f:
                f.write(data)
    for fn in os.listdir(d):
        if fn.startswith("seed-") and fn not in names:
            os.unlink(os.path.join(d, fn))
    return len(names)


def verify(seeds):
    """Replay each virtq seed with FUZZ_VERBOSE=1 and look for its expected result."""
    binary = os.path.join(ROOT, "build", "host", "fuzz", "fuzz_virtq")
    if not os.access(binary, os.X_OK):
        raise SystemExit("verify: %s is not built (make fuzz-replay-build)" % binary)
    bad = 0
    for name, _, expect in seeds:
        if not expect:
            continue
        path = os.path.join(CORPUS, "fuzz_virtq", "seed-" + name)
        env = dict(os.environ, FUZZ_VERBOSE="1")
        p = subprocess.run([binary, "-q", path], env=env, capture_output=True, text=True)
        if p.returncode != 0 or expect not in p.stderr:
            bad += 1
            print("verify: %s: expected '%s' (exit %d)\n%s" %
                  (name, expect, p.returncode, "\n".join(p.stderr.splitlines()[-6:])))
    print("verify: %d catalogue seeds checked, %d wrong" %
          (sum(1 for s in seeds if s[2]), bad))
    return bad == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verify", action="store_true",
                    help="check that the fuzz_virtq catalogue seeds reach their error")
    ap.add_argument("targets", nargs="*", help="only these targets")
    args = ap.parse_args()
    ok = True
    for t, fn in TARGETS.items():
        if args.targets and t not in args.targets:
            continue
        seeds = fn()
        n = write(t, seeds)
        print("gen_corpus: %s: %d seeds" % (t, n))
        if args.verify and t == "fuzz_virtq":
            ok = verify(seeds) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
