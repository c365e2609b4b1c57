/* libFuzzer target: virtio-blk (reference-vmm/src/virtio/blk.c) behind the real
 * virtio-mmio transport, on a memfd backing file (no disk I/O, fresh per input).
 * The driver (tests/support/vq_builder + fuzz/support/vq_mutate) sends requests
 * built from the input: mostly well-formed, with every framing the spec allows
 * (split headers, merged status, indirect tables, zero-length descriptors), and
 * malformed ones (wrong direction, short header, no status byte, bad sectors,
 * lengths, segments, flags) plus raw queue/register mutations.
 *
 * Oracle: while no raw mutation has happened since the last driver restart,
 * every completed request is checked against a model of blk.h's policy
 * (status, used length, NEEDS_RESET for unanswerable chains) and a shadow copy
 * of the disk (IN returns the shadow's bytes, OUT/DISCARD/WRITE_ZEROES update
 * it, the memfd must equal it), and status bytes are OK/IOERR/UNSUPP.
 * Always: a read-only image never changes.
 *
 * Input format (little-endian, zero-padded):
 *   byte 0  mode  bits 0-1: 0..2 TEMPLATE (device up, k = bits 2-4 raw ops
 *                 allowed), 3 RAW (from reset, every op)
 *   byte 1  disk  bits 0-5 capacity in sectors (0..63); bit 6 read-only;
 *                 bit 7 size not a multiple of 512 (creation must fail)
 *   byte 2  serial: 0 NULL (file name), 1 "", 2 20 bytes, 3 21 bytes (fails), else
 *           up to 20 input bytes
 *   byte    creation: 0-2 normal, 3 empty path, 4 no path, 5 missing file, 6 a
 *           directory, 7 image locked by another device (all must fail)
 *   u64     features the driver accepts (template: & offered)
 *   byte    ring size index {16, 64, 256, 8, 4, 2, 1, 128}
 *   ops     opcode byte + arguments: TEMPLATE % 8 (0-3 request, 4 batch of
 *           requests then one notify, 5 interrupt + reap, 6 raw op while the
 *           budget lasts, 7 restart); RAW % 12 (see raw_op).
 */
#include "harness_env.h"
#include "fuzz_input.h"
#include "vq_mutate.h"

#include "virtio/blk.h"
#include "virtio/mmio.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (256ull << 10)
#define MAX_SECTORS 63
#define MAX_OPS 256
#define ST_NONE 0xff /* no push expected (NEEDS_RESET) */
#define MAX_BUFS 260

struct req {
	bool live;
	bool check;           /* built while the driver was clean (no raw op) */
	uint32_t type;
	uint64_t sector;
	uint8_t expect;       /* expected status, ST_NONE: no push, NEEDS_RESET */
	uint32_t expect_used; /* expected used length */
	uint64_t status_gpa;  /* the last writable byte, 0 if none */
	unsigned int n;       /* the chain as built */
	struct vqb_buf bufs[MAX_BUFS];
	/* DISCARD / WRITE_ZEROES segments */
	unsigned int nseg;
	uint64_t seg_sector[34];
	uint32_t seg_num[34];
};

struct h {
	int memfd;
	char path[64];
	struct virtio_blk *blk;
	struct virtio_transport *t;
	struct fuzz_irq irq;
	struct vqb b;
	struct vqm m;
	bool read_only;
	uint64_t cap;  /* sectors */
	uint8_t *shadow;
	uint64_t features; /* driver's choice */
	uint16_t ring_size;
	bool tainted;      /* a raw op happened since the last restart */
	uint64_t alloc;    /* next free offset in the data window (template requests) */
	struct req *reqs;  /* by head */
	uint8_t serial[VIRTIO_BLK_ID_BYTES];
	size_t serial_len;
	unsigned int budget;
};

static uint64_t offered(const struct h *h)
{
	uint64_t f = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
		     1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_DISCARD |
		     1ull << VIRTIO_BLK_F_WRITE_ZEROES | 1ull << VIRTIO_F_VERSION_1 |
		     1ull << VIRTIO_F_RING_EVENT_IDX | 1ull << VIRTIO_F_RING_INDIRECT_DESC;
	return h->read_only ? f | 1ull << VIRTIO_BLK_F_RO : f;
}

static bool negotiated(const struct h *h, unsigned int bit)
{
	return (h->features & offered(h)) & (1ull << bit);
}

/* ---- driver plumbing ---- */

static void mmio_w(struct h *h, uint64_t off, uint32_t v)
{
	vqb_mmio_write(h->t, off, v);
}

static bool driver_init(struct h *h)
{
	vqb_destroy(&h->b);
	if (vqb_init(&h->b, RAM_GPA, RAM_SIZE, h->ring_size))
		return false;
	vqm_init(&h->m, &h->b);
	memset(h->reqs, 0, sizeof(*h->reqs) * (h->ring_size ? h->ring_size : 1));
	h->alloc = 0;
	if (h->tainted && h->cap) /* unchecked requests may have written: resync the model */
		FUZZ_CHECK(pread(h->memfd, h->shadow, h->cap * 512, 0) == (ssize_t)(h->cap * 512),
			   "pread of the image");
	h->tainted = false;
	return true;
}

/* The transport's guest memory is the builder's; a new builder means a new
 * transport (only ever done with no queue ready). */
static void bring_up(struct h *h)
{
	vqb_mmio_negotiate(h->t, h->features);
	vqb_mmio_setup_queue(h->t, 0, &h->b);
	vqb_mmio_driver_ok(h->t);
}

static bool new_transport(struct h *h)
{
	virtio_mmio_free(h->t);
	h->t = NULL;
	if (!driver_init(h))
		return false;
	h->t = virtio_mmio_new(&virtio_blk_ops, h->blk, &h->b.mem, fuzz_irq_line(&h->irq, 5),
			       fuzz_log());
	return h->t != NULL;
}

static void restart(struct h *h)
{
	mmio_w(h, VIRTIO_MMIO_STATUS, 0);
	FUZZ_CHECK(new_transport(h), "transport re-creation");
	bring_up(h);
}

/* ---- disk model ---- */

static void shadow_check_file(struct h *h)
{
	uint8_t buf[MAX_SECTORS * 512 + 512];
	uint64_t bytes = h->cap * 512;
	ssize_t n = pread(h->memfd, buf, bytes, 0);
	FUZZ_CHECK(n == (ssize_t)bytes, "pread of the image");
	FUZZ_CHECK(memcmp(buf, h->shadow, bytes) == 0, "image differs from the model");
}

static bool range_ok(const struct h *h, uint64_t sector, uint64_t nsec)
{
	return sector <= h->cap && nsec <= h->cap - sector;
}

/* blk.h's policy for a well-formed chain of rl readable / wl writable bytes. */
/* data pieces blk_build_iov would need: buffers overlapping the data range */
static unsigned int pieces(const struct req *r, bool writable, uint64_t start, uint64_t len)
{
	uint64_t pos = 0;
	unsigned int n = 0;
	for (unsigned int i = 0; i < r->n; i++) {
		const struct vqb_buf *b = &r->bufs[i];
		if (b->writable != writable || !b->len)
			continue;
		uint64_t lo = pos, hi = pos + b->len;
		pos = hi;
		if (hi > start && lo < start + len)
			n++;
	}
	return n;
}

static uint8_t model(const struct h *h, const struct req *r, uint32_t rl, uint32_t wl,
		     uint32_t *used)
{
	*used = 1;
	if (rl < VIRTIO_BLK_REQ_HDR_SIZE || wl < 1)
		return ST_NONE;
	switch (r->type) {
	case VIRTIO_BLK_T_IN: {
		uint32_t len = wl - 1;
		if (rl != 16 || len % 512 || !range_ok(h, r->sector, len / 512) ||
		    pieces(r, true, 0, len) > VIRTIO_BLK_SEG_MAX)
			return VIRTIO_BLK_S_IOERR;
		*used = len + 1;
		return VIRTIO_BLK_S_OK;
	}
	case VIRTIO_BLK_T_OUT: {
		uint32_t len = rl - 16;
		if (h->read_only || wl != 1 || len % 512 || !range_ok(h, r->sector, len / 512) ||
		    pieces(r, false, 16, len) > VIRTIO_BLK_SEG_MAX)
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	}
	case VIRTIO_BLK_T_FLUSH:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		if (rl != 16)
			return VIRTIO_BLK_S_IOERR;
		*used = (wl - 1 < VIRTIO_BLK_ID_BYTES ? wl - 1 : VIRTIO_BLK_ID_BYTES) + 1;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		bool wz = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
		uint32_t len = rl - 16;
		if (!negotiated(h, wz ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD))
			return VIRTIO_BLK_S_UNSUPP;
		if (h->read_only || wl != 1 || !len || len % 16)
			return VIRTIO_BLK_S_IOERR;
		if (len / 16 > (wz ? VIRTIO_BLK_MAX_WRITE_ZEROES_SEG : VIRTIO_BLK_MAX_DISCARD_SEG))
			return VIRTIO_BLK_S_IOERR;
		return 0xfe; /* per segment: decided by the caller (needs the flags) */
	}
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* ---- requests ---- */

static uint64_t take(struct h *h, uint32_t len)
{
	uint64_t need = (len + 15) & ~15ull;
	if (h->alloc + need > h->m.data_size) {
		h->alloc = 0;
		if (h->b.avail_idx != h->b.last_used) /* would overlap requests in flight */
			h->tainted = true;
	}
	uint64_t gpa = h->m.data_gpa + h->alloc;
	h->alloc += need;
	return gpa;
}

static void fill(struct h *h, uint64_t gpa, uint32_t len, const void *src)
{
	uint8_t *p = vqb_host(&h->b, gpa, len);
	if (p && len)
		memcpy(p, src, len);
}

static uint32_t pick_type(struct fin *f)
{
	static const uint32_t t[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_IN,
				      VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_OUT,
				      VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID,
				      VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_DISCARD,
				      VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_T_WRITE_ZEROES,
				      2, 0xffffffff, 3, 0x80000000u };
	uint8_t s = fin_u8(f);
	return (s & 0xf0) == 0xf0 ? fin_u32(f) : t[s & 15];
}

static uint64_t pick_sector(const struct h *h, struct fin *f)
{
	uint8_t s = fin_u8(f);
	switch (s >> 5) {
	case 0: case 1: case 2: case 3:
		return (s & 31) % (h->cap + 1);
	case 4:
		return h->cap - (s & 3);
	case 5: {
		static const uint64_t v[] = { UINT64_MAX, UINT64_MAX / 512, UINT64_MAX / 512 + 1,
					      1ull << 55, 0x8000000000000000ull, 1ull << 32,
					      UINT32_MAX, 64 };
		return v[s & 7];
	}
	default:
		return fin_u64(f);
	}
}

static uint32_t pick_num(struct fin *f)
{
	uint8_t s = fin_u8(f);
	switch (s >> 6) {
	case 0: case 1:
		return s & 15;
	case 2: {
		static const uint32_t v[] = { 65536, 65537, UINT32_MAX, 0x80000000u };
		return v[s & 3];
	}
	default:
		return fin_u32(f);
	}
}

/* Split len bytes at gpa into up to `max` buffers by input-chosen cuts. */
static unsigned int split(struct fin *f, uint64_t gpa, uint32_t len, bool writable,
			  struct vqb_buf *out, unsigned int max)
{
	unsigned int n = 0;
	while (len && n < max) {
		uint32_t piece = len;
		if (n + 1 < max) {
			uint8_t c = fin_u8(f);
			if (c & 0x80) /* cut somewhere: at 512 multiples mostly */
				piece = (c & 0x40) ? 512u * (1u + (c & 7u)) : 1u + (c & 0x3fu);
			if (piece > len)
				piece = len;
		}
		out[n++] = (struct vqb_buf){ gpa, piece, writable };
		gpa += piece;
		len -= piece;
	}
	return n;
}

/* Copy `len` bytes at offset `off` of the chain's readable (or writable) byte
 * stream out of guest memory. */
static void stream(struct h *h, const struct req *r, bool writable, uint64_t off, uint8_t *dst,
		   uint64_t len)
{
	for (unsigned int i = 0; i < r->n && len; i++) {
		const struct vqb_buf *b = &r->bufs[i];
		if (b->writable != writable || !b->len)
			continue;
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		uint64_t k = b->len - off < len ? b->len - off : len;
		FUZZ_CHECK(guest_mem_read(&h->b.mem, b->gpa + off, dst, k) == 0, "stream");
		dst += k;
		len -= k;
		off = 0;
	}
	FUZZ_CHECK(len == 0, "stream too short");
}

/* A request from the input; published (not notified). */
static void build_request(struct h *h, struct fin *f)
{
	static struct req r;
	static struct vqb_buf bufs[MAX_BUFS];
	memset(&r, 0, sizeof(r));
	r.check = !h->tainted;
	unsigned int n = 0;
	uint8_t shape = fin_u8(f);
	uint8_t extra = fin_u8(f);
	bool indirect = shape & 1;
	bool split_hdr = shape & 2;
	bool merge_status = shape & 4;   /* status byte at the end of the last data buffer */
	bool no_status = (extra & 0x1f) == 1;   /* unanswerable */
	bool short_hdr = (extra & 0x1f) == 2;   /* unanswerable */
	bool wrong_dir = (extra & 0x1f) == 3;   /* data in the wrong direction */
	bool zero_desc = (extra & 0x1f) == 4;   /* zero-length descriptor in the middle */
	bool odd_len = (extra & 0x1f) == 5;     /* data length not a multiple of 512 */
	bool many = (extra & 0x1f) == 6;        /* one descriptor per few bytes of data */

	r.type = pick_type(f);
	r.sector = pick_sector(h, f);
	uint8_t hdr[16];
	uint32_t t = htole32(r.type);
	uint64_t s = htole64(r.sector);
	memcpy(hdr, &t, 4);
	memset(hdr + 4, 0, 4);
	memcpy(hdr + 8, &s, 8);

	/* payload */
	bool out_dir = r.type == VIRTIO_BLK_T_OUT || r.type == VIRTIO_BLK_T_DISCARD ||
		       r.type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint32_t dlen = 0;
	uint8_t payload[34 * 16];
	if (r.type == VIRTIO_BLK_T_DISCARD || r.type == VIRTIO_BLK_T_WRITE_ZEROES) {
		uint8_t ns = fin_u8(f);
		unsigned int nseg = ns < 0xde ? 1u + ns % 4u : ns - 0xdeu; /* 0..33 */
		for (unsigned int i = 0; i < nseg; i++) {
			uint64_t sec = htole64(pick_sector(h, f));
			uint32_t num = pick_num(f);
			uint8_t fl = fin_u8(f);
			uint32_t flags = fl < 0xc0 ? (fl & 1) : fin_u32(f);
			num = htole32(num);
			flags = htole32(flags);
			memcpy(payload + 16 * i, &sec, 8);
			memcpy(payload + 16 * i + 8, &num, 4);
			memcpy(payload + 16 * i + 12, &flags, 4);
		}
		dlen = 16 * nseg;
		if (odd_len && dlen)
			dlen -= 1 + (extra >> 5) % 15;
	} else if (r.type == VIRTIO_BLK_T_IN || r.type == VIRTIO_BLK_T_OUT) {
		dlen = 512u * (fin_u8(f) % 9);
		if (many && !dlen)
			dlen = 512;
		if (odd_len)
			dlen += 1 + (extra >> 5) * 37;
	} else if (r.type == VIRTIO_BLK_T_GET_ID) {
		static const uint32_t idl[] = { 20, 20, 20, 0, 1, 19, 21, 512 };
		dlen = idl[fin_u8(f) & 7];
	} else if (fin_u8(f) & 1) {
		dlen = 512; /* FLUSH / unknown with a data buffer */
	}
	if (wrong_dir)
		out_dir = !out_dir;

	/* header (+ data in the same buffers now and then, for OUT-like requests) */
	uint32_t hlen = short_hdr ? (extra >> 5) * 2 : 16;
	bool merge_hd = (shape & 8) && out_dir && dlen && hlen == 16;
	uint64_t hgpa = take(h, (merge_hd ? hlen + dlen : hlen) + 1);
	fill(h, hgpa, hlen, hdr);
	uint64_t dgpa = merge_hd ? hgpa + hlen : dlen ? take(h, dlen + 1) : 0;
	if (dlen && out_dir) {
		uint8_t chunk[64];
		size_t k = fin_bytes(f, chunk, sizeof(chunk));
		uint8_t *p = vqb_host(&h->b, dgpa, dlen);
		if (r.type == VIRTIO_BLK_T_DISCARD || r.type == VIRTIO_BLK_T_WRITE_ZEROES)
			memcpy(p, payload, dlen < sizeof(payload) ? dlen : sizeof(payload));
		else
			for (uint32_t i = 0; p && i < dlen; i++)
				p[i] = chunk[i % sizeof(chunk)] ^ (uint8_t)(i >> 6) ^ (uint8_t)k;
	}
	if (merge_hd) {
		n += split(f, hgpa, hlen + dlen, false, bufs + n, 6);
	} else {
		n += split(f, hgpa, hlen, false, bufs + n, split_hdr ? 3 : 1);
		if (zero_desc)
			bufs[n++] = (struct vqb_buf){ 0, 0, false };
		if (dlen && many) { /* as many pieces as the queue allows */
			unsigned int k = h->ring_size > 2 ? h->ring_size - 1 - n + 1 : 1;
			if (k > dlen)
				k = dlen;
			if (k > MAX_BUFS - n - 1)
				k = MAX_BUFS - n - 1;
			uint32_t piece = dlen / k;
			for (unsigned int i = 0; i < k; i++)
				bufs[n + i] = (struct vqb_buf){ dgpa + i * piece,
								 i + 1 < k ? piece : dlen - i * piece,
								 !out_dir };
			n += k;
			merge_status = true;
		} else if (dlen) {
			n += split(f, dgpa, dlen, !out_dir, bufs + n, 4);
		}
	}
	/* status: its own buffer, or the byte after IN data in the last buffer */
	if (!no_status) {
		if (merge_status && dlen && !out_dir) {
			bufs[n - 1].len += 1;
		} else {
			uint64_t sg = take(h, 1);
			bufs[n++] = (struct vqb_buf){ sg, 1, true };
		}
	}

	uint32_t rl = 0, wl = 0;
	for (unsigned int i = 0; i < n; i++) {
		*(bufs[i].writable ? &wl : &rl) += bufs[i].len;
		if (bufs[i].writable && bufs[i].len)
			r.status_gpa = bufs[i].gpa + bufs[i].len - 1;
	}
	if (r.status_gpa)
		fill(h, r.status_gpa, 1, "\xee");
	r.n = n;
	memcpy(r.bufs, bufs, n * sizeof(*bufs));
	/* the model reads what the device will read: the first 16 readable bytes are
	 * the header, whatever the framing (a short header shifts everything) */
	if (rl >= 16) {
		uint8_t hb[16];
		stream(h, &r, false, 0, hb, 16);
		memcpy(&t, hb, 4);
		memcpy(&s, hb + 8, 8);
		r.type = le32toh(t);
		r.sector = le64toh(s);
	}
	r.expect = model(h, &r, rl, wl, &r.expect_used);
	if (r.expect == 0xfe) { /* segments, in order: flags first, then limits */
		bool wz = r.type == VIRTIO_BLK_T_WRITE_ZEROES;
		r.expect = VIRTIO_BLK_S_OK;
		r.nseg = (rl - 16) / 16;
		for (unsigned int i = 0; i < r.nseg; i++) {
			uint8_t sb[16];
			uint32_t flags;
			stream(h, &r, false, 16 + 16 * i, sb, 16);
			memcpy(&r.seg_sector[i], sb, 8);
			memcpy(&r.seg_num[i], sb + 8, 4);
			memcpy(&flags, sb + 12, 4);
			r.seg_sector[i] = le64toh(r.seg_sector[i]);
			r.seg_num[i] = le32toh(r.seg_num[i]);
			flags = le32toh(flags);
			if (flags & ~(wz ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0u)) {
				r.expect = VIRTIO_BLK_S_UNSUPP;
				break;
			}
			if (r.seg_num[i] > (wz ? VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS
					       : VIRTIO_BLK_MAX_DISCARD_SECTORS) ||
			    !range_ok(h, r.seg_sector[i], r.seg_num[i])) {
				r.expect = VIRTIO_BLK_S_IOERR;
				break;
			}
		}
	}
	/* an indirect table longer than the queue is a queue error: NEEDS_RESET */
	if (indirect && n > h->ring_size)
		r.expect = ST_NONE;
	uint16_t head;
	if (vqm_add(&h->m, bufs, n, indirect, &head))
		return;
	if (h->ring_size) {
		r.live = true;
		h->reqs[head] = r;
	}
	vqb_publish(&h->b, head);
	FUZZ_TRACE("req type %u sector %llu rl %u wl %u -> expect %u\n", r.type,
		   (unsigned long long)r.sector, rl, wl, r.expect);
}

static void complete(struct h *h, struct req *r, uint32_t used)
{
	static uint8_t buf[MAX_SECTORS * 512 + 512];
	uint8_t st = 0xee;
	if (!r->check || h->tainted)
		return; /* raw ops may have rewritten this chain: nothing to compare */
	if (r->status_gpa) {
		guest_mem_read(&h->b.mem, r->status_gpa, &st, 1);
		FUZZ_CHECK(st <= VIRTIO_BLK_S_UNSUPP, "status byte %#x", st);
	}
	FUZZ_CHECK(r->expect != ST_NONE, "an unanswerable request was answered");
	FUZZ_CHECK(st == r->expect, "type %u sector %llu: status %u, model %u", r->type,
		   (unsigned long long)r->sector, st, r->expect);
	if (st != VIRTIO_BLK_S_OK) {
		FUZZ_CHECK(used == 1, "used length %u for an error", used);
		return;
	}
	FUZZ_CHECK(used == r->expect_used, "type %u: used length %u, model %u", r->type, used,
		   r->expect_used);
	uint64_t off = r->sector * 512;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		stream(h, r, true, 0, buf, used - 1);
		FUZZ_CHECK(memcmp(buf, h->shadow + off, used - 1) == 0,
			   "IN data differs from the disk (sector %llu, %u bytes)",
			   (unsigned long long)r->sector, used - 1);
		break;
	case VIRTIO_BLK_T_OUT: {
		uint32_t rl = 0;
		for (unsigned int i = 0; i < r->n; i++)
			rl += r->bufs[i].writable ? 0 : r->bufs[i].len;
		stream(h, r, false, 16, h->shadow + off, rl - 16);
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		for (unsigned int i = 0; i < r->nseg; i++)
			memset(h->shadow + r->seg_sector[i] * 512, 0, r->seg_num[i] * 512ull);
		break;
	case VIRTIO_BLK_T_GET_ID: {
		uint8_t id[VIRTIO_BLK_ID_BYTES] = { 0 };
		memcpy(id, h->serial, h->serial_len);
		stream(h, r, true, 0, buf, used - 1);
		FUZZ_CHECK(memcmp(buf, id, used - 1) == 0, "GET_ID bytes");
		break;
	}
	}
}

static void reap(struct h *h)
{
	uint32_t id, len;
	for (uint32_t i = 0; i <= h->ring_size; i++) {
		if (vqb_get_used(&h->b, &id, &len) != 1)
			break;
		if (id < h->ring_size && h->reqs[id].live) {
			complete(h, &h->reqs[id], len);
			h->reqs[id].live = false;
		} else {
			FUZZ_CHECK(h->tainted || h->ring_size == 0, "used id %u unknown", id);
		}
	}
	if (!h->tainted && !h->read_only)
		shadow_check_file(h);
}

static void notify(struct h *h, struct fin *f)
{
	if (fin_u8(f) & 1)
		virtio_mmio_queue_notify(h->t, 0);
	else
		mmio_w(h, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* After a notify in a clean state: every published request is answered unless
 * one was unanswerable, then the device must be in NEEDS_RESET. */
static void after_notify(struct h *h)
{
	bool unanswerable = false;
	for (uint32_t i = 0; i < h->ring_size; i++)
		if (h->reqs[i].live && h->reqs[i].check && h->reqs[i].expect == ST_NONE)
			unanswerable = true;
	reap(h);
	uint32_t st = vqb_mmio_read(h->t, VIRTIO_MMIO_STATUS);
	if (!h->tainted && (st & VIRTIO_STATUS_DRIVER_OK))
		FUZZ_CHECK(!!(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET) == unanswerable,
			   "NEEDS_RESET %d, unanswerable request %d",
			   !!(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET), unanswerable);
	if (st & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		restart(h);
}

static void raw_op(struct h *h, struct fin *f)
{
	uint8_t op = fin_u8(f) % 12;
	FUZZ_TRACE("R op %u\n", op);
	h->tainted = true;
	switch (op) {
	case 0:
	case 1:
		build_request(h, f);
		break;
	case 2:
		notify(h, f);
		break;
	case 3: case 4: case 5:
		vqm_mutate(&h->m, f);
		break;
	case 6:
		reap(h);
		break;
	case 7: {
		static const uint16_t regs[] = { VIRTIO_MMIO_STATUS, VIRTIO_MMIO_QUEUE_READY,
						 VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MMIO_QUEUE_NUM,
						 VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_MMIO_INTERRUPT_ACK,
						 VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_DRIVER_FEATURES_SEL };
		uint8_t s = fin_u8(f);
		if (s & 0x80) { /* config space, any width (writes are ignored) */
			uint8_t d[8] = { 0 };
			uint8_t w = fin_u8(f);
			virtio_mmio_bus_ops.read(h->t, VIRTIO_MMIO_CONFIG + (s & 0x3f), d, 1u << (w & 3));
			if (w & 4)
				virtio_mmio_bus_ops.write(h->t, VIRTIO_MMIO_CONFIG + (s & 0x3f), d,
							  1u << (w & 3));
		} else {
			mmio_w(h, regs[s & 7], fin_u32(f));
		}
		break;
	}
	case 8:
		vqb_mmio_negotiate(h->t, fin_u64(f));
		break;
	case 9:
		vqb_mmio_setup_queue(h->t, 0, &h->b);
		vqb_mmio_driver_ok(h->t);
		break;
	case 10:
		mmio_w(h, VIRTIO_MMIO_STATUS, 0);
		FUZZ_CHECK(new_transport(h), "transport re-creation");
		h->tainted = true;
		break;
	default:
		restart(h);
		h->tainted = true;
		break;
	}
}

static void template_op(struct h *h, struct fin *f)
{
	uint8_t op = fin_u8(f) % 8;
	FUZZ_TRACE("T op %u\n", op);
	switch (op) {
	case 4: {
		unsigned int n = 1 + fin_u8(f) % 6;
		for (unsigned int i = 0; i < n; i++)
			build_request(h, f);
		notify(h, f);
		after_notify(h);
		break;
	}
	case 5: {
		uint32_t st = vqb_mmio_read(h->t, VIRTIO_MMIO_INTERRUPT_STATUS);
		vqb_mmio_write(h->t, VIRTIO_MMIO_INTERRUPT_ACK, st);
		reap(h);
		break;
	}
	case 6:
		if (h->budget) {
			h->budget--;
			raw_op(h, f);
		} else {
			restart(h);
		}
		break;
	case 7:
		restart(h);
		break;
	default:
		build_request(h, f);
		notify(h, f);
		after_notify(h);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t rsizes[] = { 16, 64, 256, 8, 4, 2, 1, 128 };
	struct fin f;
	struct h h;
	char err[256];

	memset(&h, 0, sizeof(h));
	h.memfd = -1;
	fin_init(&f, data, size);
	uint8_t mode = fin_u8(&f);
	bool raw = (mode & 3) == 3;
	h.budget = (mode >> 2) & 7;
	uint8_t disk = fin_u8(&f);
	h.cap = disk & 63;
	h.read_only = disk & 64;
	bool odd_size = disk & 128;
	uint8_t ser = fin_u8(&f);
	char serial[32] = { 0 };
	struct virtio_blk_config cfg = { .path = h.path, .read_only = h.read_only };
	switch (ser) {
	case 0:
		cfg.serial = NULL;
		break;
	case 1:
		cfg.serial = "";
		break;
	case 2:
		memset(serial, 'a', 20);
		cfg.serial = serial;
		break;
	case 3:
		memset(serial, 'b', 21);
		cfg.serial = serial;
		break;
	default:
		for (unsigned int i = 0; i < (unsigned int)ser % 21; i++)
			serial[i] = (char)(fin_u8(&f) | 1); /* no NUL inside */
		cfg.serial = serial;
		break;
	}
	uint8_t create = fin_u8(&f) & 7;
	h.features = fin_u64(&f);
	if (!raw)
		h.features |= 1ull << VIRTIO_F_VERSION_1;
	h.ring_size = rsizes[fin_u8(&f) & 7];

	h.memfd = memfd_create("fuzz-blk", MFD_CLOEXEC);
	if (h.memfd < 0)
		return 0;
	uint64_t bytes = h.cap * 512 + (odd_size ? 1 + h.cap : 0);
	/* reused between inputs (cleared here): fresh allocations cost page faults */
	static uint8_t shadow[MAX_SECTORS * 512 + 512];
	static struct req reqs[256];
	h.shadow = shadow;
	h.reqs = reqs;
	memset(shadow, 0, sizeof(shadow));
	memset(reqs, 0, sizeof(*reqs) * h.ring_size);
	if (ftruncate(h.memfd, (off_t)bytes) < 0)
		goto out;
	for (uint64_t i = 0; i < h.cap * 512; i++) /* recognisable, deterministic content */
		h.shadow[i] = (uint8_t)(i * 131 + i / 512);
	if (pwrite(h.memfd, h.shadow, h.cap * 512, 0) != (ssize_t)(h.cap * 512))
		goto out;
	snprintf(h.path, sizeof(h.path), "/proc/self/fd/%d", h.memfd);

	struct virtio_blk *holder = NULL; /* create 7: someone else has the image */
	switch (create) {
	case 3:
		cfg.path = "";
		break;
	case 4:
		cfg.path = NULL;
		break;
	case 5:
		cfg.path = "/proc/self/fd/-1/missing";
		break;
	case 6:
		cfg.path = "/";
		break;
	case 7: {
		struct virtio_blk_config other = { .path = h.path };
		FUZZ_CHECK(odd_size || virtio_blk_new(&holder, &other, fuzz_log(), err,
						      sizeof(err)) == 0,
			   "first device on the image: %s", err);
		break;
	}
	}
	int r = virtio_blk_new(&h.blk, &cfg, fuzz_log(), err, sizeof(err));
	virtio_blk_free(holder);
	bool should = !odd_size && (!cfg.serial || strlen(cfg.serial) <= VIRTIO_BLK_ID_BYTES) &&
		      create < 3;
	FUZZ_CHECK((r == 0) == should, "virtio_blk_new: %d (%s)", r, err);
	if (r)
		goto out;
	FUZZ_CHECK(virtio_blk_capacity(h.blk) == h.cap, "capacity");
	if (cfg.serial) {
		h.serial_len = strlen(cfg.serial);
		memcpy(h.serial, cfg.serial, h.serial_len);
	} else {
		/* the file name: the last path component, at most 20 bytes */
		const char *base = strrchr(h.path, '/') + 1;
		h.serial_len = strnlen(base, VIRTIO_BLK_ID_BYTES);
		memcpy(h.serial, base, h.serial_len);
	}
	if (!new_transport(&h))
		goto out;
	if (!raw)
		bring_up(&h);
	for (int i = 0; i < MAX_OPS && !fin_done(&f); i++) {
		if (raw)
			raw_op(&h, &f);
		else
			template_op(&h, &f);
	}
	if (!h.tainted && !h.read_only)
		shadow_check_file(&h);
	if (h.read_only) { /* never modified, whatever happened */
		uint8_t buf[MAX_SECTORS * 512];
		uint8_t want[MAX_SECTORS * 512];
		for (uint64_t i = 0; i < h.cap * 512; i++)
			want[i] = (uint8_t)(i * 131 + i / 512);
		FUZZ_CHECK(pread(h.memfd, buf, h.cap * 512, 0) == (ssize_t)(h.cap * 512) &&
				   memcmp(buf, want, h.cap * 512) == 0,
			   "read-only image modified");
	}
out:
	virtio_mmio_free(h.t);
	virtio_blk_free(h.blk);
	vqb_destroy(&h.b);
	if (h.memfd >= 0)
		close(h.memfd);
	return 0;
}
