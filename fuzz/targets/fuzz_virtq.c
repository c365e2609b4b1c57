/* libFuzzer target: the split virtqueue (reference-vmm/src/virtio/queue.c),
 * device side, driven directly; the driver is tests/support/vq_builder with
 * fuzz/support/vq_mutate. Checks the queue's documented contract on every step.
 *
 * Input format (all fields little-endian, missing bytes read as 0):
 *   byte 0  mode   bits 0-1: 0..2 TEMPLATE, 3 RAW;
 *                  bits 2-4: TEMPLATE mutation budget k (0..7)
 *   byte 1  cfg    bits 0-2: queue size {1,2,4,8,16,32,64,256}[v]; bit 3 EVENT_IDX;
 *                  bit 4: a second RAM region right after the first (buffers that
 *                  straddle two regions must be refused); RAW only: bit 5 2 GiB
 *                  lazily backed RAM (4 GiB chains), bits 6-7 size override
 *                  (1: u16 size follows, 2: 32768, 3: 0)
 *   [u16]   size   when the override is 1
 *   ops...  one opcode byte each, then its arguments:
 *     TEMPLATE (opcode % 8): 0-2 send a valid chain (vqm_build_chain), 3 send a
 *       batch of 1-4 chains, 4 driver reaps the used ring, 5 notification
 *       suppression knobs, 6 one raw mutation (vqm_mutate) while the budget
 *       lasts (else a send), 7 device reset + driver re-init. After every op
 *       the device services the queue (pop all, echo, push, interrupt check,
 *       enable_notify) and a broken queue is reset and re-initialised.
 *     RAW (opcode % 16): 0 send, 1 pop, 2 push a chain in flight, 3
 *       needs_interrupt, 4 enable_notify, 5 avail_pending, 6 chain_read /
 *       chain_write on the last popped chain, 7 driver reaps used, 8-11 raw
 *       mutation, 12 virtq_enable again, 13 reset + re-place the rings (any
 *       GPA: misaligned, outside, wrapping; 3 placement bytes, then 0xff = no
 *       guest memory) + enable, 14 device service, 15 push of an arbitrary head.
 */
#include "harness_env.h"
#include "fuzz_input.h"
#include "vq_mutate.h"

#include "virtio/queue.h"

#include <stdlib.h>
#include <string.h>

#define RAM_GPA 0x40000000ull
#define EXTRA_SIZE (64 * 1024)
#define MAX_OPS 512

struct h {
	struct vqb b;
	struct vqm m;
	struct virtq q;
	uint16_t size;
	bool event_idx;
	uint64_t ram;
	uint8_t *extra;          /* second region, or NULL */
	uint8_t *mirror;         /* size entries: heads popped and not pushed */
	struct virtq_chain last; /* last successful pop; bufs valid until the next pop */
	bool last_valid;
	unsigned int budget;     /* TEMPLATE mutations left */
};

static bool size_valid(uint32_t s)
{
	return s && s <= VIRTQ_MAX_SIZE && !(s & (s - 1));
}

static void check_pop(struct h *h, int r, const struct virtq_chain *c, uint16_t last_before,
		      uint32_t inflight_before)
{
	struct virtq *q = &h->q;

	FUZZ_CHECK(r <= 1 && r > -VIRTQ_ERR_MAX, "virtq_pop returned %d", r);
	if (!q->ready) {
		FUZZ_CHECK(r == -VIRTQ_ERR_NOT_READY, "pop on a queue not ready: %d", r);
		return;
	}
	FUZZ_CHECK(r != -VIRTQ_ERR_USED_ID && r != -VIRTQ_ERR_NOMEM && r != -VIRTQ_ERR_SIZE &&
			   r != -VIRTQ_ERR_ALIGN && r != -VIRTQ_ERR_RING_ADDR,
		   "virtq_pop returned an error it cannot return: %d", r);
	if (r <= 0) {
		FUZZ_CHECK(q->last_avail_idx == last_before && q->in_flight == inflight_before,
			   "failed/empty pop changed the queue state");
		if (r == 0)
			FUZZ_CHECK(virtq_avail_pending(q) == 0, "pop said empty with %u pending",
				   virtq_avail_pending(q));
		return;
	}
	FUZZ_CHECK(q->last_avail_idx == (uint16_t)(last_before + 1), "pop did not consume");
	FUZZ_CHECK(q->in_flight == inflight_before + 1 && q->in_flight <= q->size,
		   "in_flight %u", q->in_flight);
	FUZZ_CHECK(c->head < q->size, "head %u >= size %u", c->head, q->size);
	FUZZ_CHECK(!h->mirror[c->head], "head %u handed out twice", c->head);
	FUZZ_CHECK(c->nr_bufs <= q->size && c->nr_readable <= c->nr_bufs, "bufs %u/%u",
		   c->nr_readable, c->nr_bufs);
	uint64_t rl = 0, wl = 0;
	for (uint16_t i = 0; i < c->nr_bufs; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		FUZZ_CHECK(b->len > 0, "zero-length buffer listed");
		FUZZ_CHECK(b->host && b->host == guest_mem_ptr(&h->b.mem, b->gpa, b->len),
			   "buffer %u (gpa %#llx len %u) is not guest memory", i,
			   (unsigned long long)b->gpa, b->len);
		FUZZ_CHECK(b->writable == (i >= c->nr_readable), "direction order broken at %u",
			   i);
		if (b->writable)
			wl += b->len;
		else
			rl += b->len;
	}
	FUZZ_CHECK(rl == c->readable_len && wl == c->writable_len && rl + wl <= UINT32_MAX,
		   "chain lengths %llu/%llu vs %u/%u", (unsigned long long)rl,
		   (unsigned long long)wl, c->readable_len, c->writable_len);
	h->mirror[c->head] = 1;
}

static int do_pop(struct h *h, struct virtq_chain *c)
{
	uint16_t last = h->q.last_avail_idx;
	uint32_t inflight = h->q.in_flight;
	int r = virtq_pop(&h->q, c);
	h->last_valid = false;
	check_pop(h, r, c, last, inflight);
	if (r == 1) {
		h->last = *c;
		h->last_valid = true;
	}
	FUZZ_TRACE("pop -> %d%s%s\n", r, r < 0 ? " " : "", r < 0 ? virtq_strerror(r) : "");
	return r;
}

static void do_push(struct h *h, uint16_t head, uint32_t written)
{
	struct virtq *q = &h->q;
	bool expect = q->ready && head < q->size && h->mirror[head];
	int r = virtq_push(q, head, written);
	FUZZ_TRACE("push %u -> %d\n", head, r);
	FUZZ_CHECK((r == 0) == expect, "push of head %u returned %d (owned %d)", head, r,
		   (int)expect);
	if (r) {
		FUZZ_CHECK(r == -VIRTQ_ERR_USED_ID || r == -VIRTQ_ERR_NOT_READY, "push error %d", r);
		return;
	}
	h->mirror[head] = 0;
	uint32_t id, len;
	FUZZ_CHECK(vqb_used_idx(&h->b) == q->used_idx, "used idx not published");
	if (vqb_used_elem(&h->b, (uint16_t)(q->used_idx - 1), &id, &len) == 0)
		FUZZ_CHECK(id == head && len == written, "used element %u/%u, pushed %u/%u", id,
			   len, head, written);
}

/* push the oldest chain in flight (by head order: any order is legal) */
static bool push_some(struct h *h, uint32_t pick, uint32_t written)
{
	if (!h->q.ready || !h->q.in_flight)
		return false;
	for (uint32_t k = 0; k < h->size; k++) {
		uint16_t head = (uint16_t)((pick + k) % h->size);
		if (h->mirror[head]) {
			do_push(h, head, written);
			return true;
		}
	}
	FUZZ_CHECK(0, "in_flight %u but no head owned", h->q.in_flight);
	return false;
}

static void check_enable_notify(struct h *h)
{
	bool again = virtq_enable_notify(&h->q);
	if (!h->q.ready) {
		FUZZ_CHECK(!again, "enable_notify on a queue not ready");
		return;
	}
	if (h->q.event_idx)
		FUZZ_CHECK(vqb_avail_event(&h->b) == h->q.last_avail_idx,
			   "avail_event %u, last_avail_idx %u", vqb_avail_event(&h->b),
			   h->q.last_avail_idx);
}

static void chain_io(struct h *h, struct fin *f)
{
	uint8_t tmp[512];
	const struct virtq_chain *c = &h->last;
	bool write = fin_bool(f);
	uint32_t total = write ? c->writable_len : c->readable_len;
	uint32_t off = fin_len32(f, total);
	uint32_t len = fin_u16(f) % sizeof(tmp);
	uint32_t want = off >= total ? 0 : (total - off < len ? total - off : len);
	uint32_t got;
	if (write) {
		fin_bytes(f, tmp, len);
		got = virtq_chain_write(c, off, tmp, len);
	} else {
		got = virtq_chain_read(c, off, tmp, len);
	}
	FUZZ_CHECK(got == want, "chain %s off %u len %u of %u: %u bytes", write ? "write" : "read",
		   off, len, total, got);
}

/* The queue after virtq_enable/virtq_reset: nothing in flight. */
static void forget_device_state(struct h *h)
{
	memset(h->mirror, 0, h->size ? h->size : 1);
	h->last_valid = false;
}

static void teardown_queue(struct h *h)
{
	virtq_reset(&h->q);
	vqb_destroy(&h->b);
	forget_device_state(h);
}

/* driver init: RAM, rings, device-side queue enabled. Returns virtq_enable's result. */
static int setup_queue(struct h *h)
{
	int r = vqb_init(&h->b, RAM_GPA, h->ram, h->size);
	if (r) {
		FUZZ_TRACE("vqb_init: %d\n", r);
		virtq_init(&h->q, NULL);
		return r;
	}
	if (h->extra)
		FUZZ_CHECK(guest_mem_add(&h->b.mem, RAM_GPA + h->ram, EXTRA_SIZE, h->extra) == 0,
			   "extra region");
	vqm_init(&h->m, &h->b);
	r = vqb_attach(&h->b, &h->q, h->event_idx);
	FUZZ_TRACE("enable -> %d\n", r);
	FUZZ_CHECK((r == 0) == size_valid(h->size), "enable of size %u with sane rings: %d",
		   h->size, r);
	FUZZ_CHECK(h->q.ready == (r == 0), "ready %d after enable %d", h->q.ready, r);
	forget_device_state(h);
	return r;
}

static void driver_reap(struct h *h)
{
	uint32_t id, len;
	for (uint32_t i = 0; i <= h->size; i++)
		if (vqb_get_used(&h->b, &id, &len) != 1)
			break;
}

/* What a device does on a notification; returns false if the queue is broken. */
static bool service(struct h *h)
{
	struct virtq_chain c;
	int r = 0;

	for (int round = 0; round < 2; round++) {
		for (uint32_t i = 0; i <= h->size; i++) {
			r = do_pop(h, &c);
			if (r != 1)
				break;
			uint8_t tmp[64];
			uint32_t n = virtq_chain_read(&c, 0, tmp, sizeof(tmp));
			n = virtq_chain_write(&c, 0, tmp, n);
			do_push(h, c.head, n);
		}
		if (r < 0)
			return false;
		virtq_needs_interrupt(&h->q);
		uint16_t last = h->q.last_avail_idx;
		bool again = virtq_enable_notify(&h->q);
		FUZZ_CHECK(again == (virtq_avail_pending(&h->q) != 0) || h->q.last_avail_idx != last,
			   "enable_notify disagrees with avail_pending");
		if (!again)
			break;
	}
	return true;
}

static void send(struct h *h, struct fin *f)
{
	uint16_t head;
	if (vqm_build_chain(&h->m, f, 64, 4096, &head, NULL) == 0)
		vqb_publish(&h->b, head);
}

static void notify_knobs(struct h *h, struct fin *f)
{
	uint8_t k = fin_u8(f);
	if (k & 1)
		vqb_set_avail_flags(&h->b, (k & 2) ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0);
	if (k & 4)
		vqb_set_used_event(&h->b, (uint16_t)(h->b.last_used + (k >> 4)));
}

static void reset_reinit(struct h *h)
{
	teardown_queue(h);
	setup_queue(h);
}

static void template_op(struct h *h, struct fin *f)
{
	uint8_t op = fin_u8(f) % 8;
	FUZZ_TRACE("T op %u\n", op);
	switch (op) {
	case 3: {
		unsigned int n = 1 + fin_u8(f) % 4;
		for (unsigned int i = 0; i < n; i++)
			send(h, f);
		break;
	}
	case 4:
		driver_reap(h);
		break;
	case 5:
		notify_knobs(h, f);
		break;
	case 6:
		if (h->budget) {
			h->budget--;
			vqm_mutate(&h->m, f);
		} else {
			send(h, f);
		}
		break;
	case 7:
		reset_reinit(h);
		return;
	default:
		send(h, f);
		break;
	}
	if (!service(h))
		reset_reinit(h); /* NEEDS_RESET, then the driver starts over */
	driver_reap(h);
}

static uint64_t place(struct h *h, struct fin *f, uint64_t cur, uint64_t len)
{
	uint8_t s = fin_u8(f);
	if (s < 160)
		return cur;
	if (s < 200)
		return cur + (s & 15); /* misaligned or shifted */
	return vqm_addr(&h->m, f, (uint32_t)len);
}

static void raw_op(struct h *h, struct fin *f)
{
	struct virtq_chain c;
	uint8_t op = fin_u8(f) % 16;
	FUZZ_TRACE("R op %u\n", op);
	switch (op) {
	case 0:
		send(h, f);
		break;
	case 1:
		do_pop(h, &c);
		break;
	case 2: {
		uint32_t pick = fin_u16(f);
		push_some(h, pick, fin_len32(f, 64));
		break;
	}
	case 3:
		virtq_needs_interrupt(&h->q);
		break;
	case 4:
		check_enable_notify(h);
		break;
	case 5:
		virtq_avail_pending(&h->q);
		FUZZ_CHECK(virtq_strerror((int)(int8_t)fin_u8(f))[0], "virtq_strerror");
		break;
	case 6:
		if (h->last_valid)
			chain_io(h, f);
		break;
	case 7:
		driver_reap(h);
		break;
	case 12: {
		int r = virtq_enable(&h->q);
		forget_device_state(h);
		FUZZ_CHECK(h->q.ready == (r == 0), "enable %d ready %d", r, h->q.ready);
		break;
	}
	case 13: {
		virtq_reset(&h->q);
		forget_device_state(h);
		uint64_t d = place(h, f, h->b.desc_gpa, virtq_desc_bytes(h->size));
		uint64_t a = place(h, f, h->b.avail_gpa, virtq_avail_bytes(h->size, h->event_idx));
		uint64_t u = place(h, f, h->b.used_gpa, virtq_used_bytes(h->size, h->event_idx));
		vqb_place_rings(&h->b, d, a, u);
		vqb_fill_virtq(&h->b, &h->q, h->event_idx);
		if (fin_u8(f) == 0xff)
			h->q.mem = NULL; /* a transport that forgot the memory */
		int r = virtq_enable(&h->q);
		if (!h->q.mem) {
			FUZZ_CHECK(r < 0, "enable without guest memory");
			h->q.mem = &h->b.mem;
		}
		FUZZ_TRACE("re-place %#llx %#llx %#llx -> %d\n", (unsigned long long)d,
			   (unsigned long long)a, (unsigned long long)u, r);
		FUZZ_CHECK(h->q.ready == (r == 0), "enable %d ready %d", r, h->q.ready);
		if (r == 0) { /* what enable promised: the rings are guest memory */
			FUZZ_CHECK(!(d & 15) && !(a & 1) && !(u & 3), "misaligned ring accepted");
			FUZZ_CHECK(guest_mem_ptr(&h->b.mem, d, virtq_desc_bytes(h->size)) &&
					   guest_mem_ptr(&h->b.mem, a,
							 virtq_avail_bytes(h->size, h->event_idx)) &&
					   guest_mem_ptr(&h->b.mem, u,
							 virtq_used_bytes(h->size, h->event_idx)),
				   "ring outside guest memory accepted");
		}
		/* the driver restarts its indices too */
		h->b.avail_idx = 0;
		h->b.last_used = 0;
		break;
	}
	case 14:
		service(h);
		break;
	case 15: { /* arguments in input order (C leaves argument order open) */
		uint16_t head = vqm_index(&h->m, f);
		do_push(h, head, fin_len32(f, 64));
		break;
	}
	default:
		vqm_mutate(&h->m, f);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t sizes[] = { 1, 2, 4, 8, 16, 32, 64, 256 };
	struct fin f;
	struct h h;

	fin_init(&f, data, size);
	memset(&h, 0, sizeof(h));
	uint8_t mode = fin_u8(&f);
	uint8_t cfg = fin_u8(&f);
	bool raw = (mode & 3) == 3;
	h.budget = (mode >> 2) & 7;
	h.size = sizes[cfg & 7];
	h.event_idx = cfg & 8;
	if (raw) {
		switch (cfg >> 6) {
		case 1:
			h.size = fin_u16(&f);
			break;
		case 2:
			h.size = VIRTQ_MAX_SIZE;
			break;
		case 3:
			h.size = 0;
			break;
		}
	}
	h.ram = h.size > 4096 ? (4ull << 20) : h.size > 256 ? (1ull << 20) : (256ull << 10);
	if (raw && (cfg & 0x20))
		h.ram = 0x80200000ull;
	h.mirror = calloc(1, h.size ? h.size : 1);
	if (cfg & 0x10)
		h.extra = calloc(1, EXTRA_SIZE);
	if (!h.mirror || (cfg & 0x10 && !h.extra))
		goto out;
	FUZZ_TRACE("mode %s size %u evidx %d ram %#llx extra %d\n", raw ? "raw" : "template",
		   h.size, h.event_idx, (unsigned long long)h.ram, h.extra != NULL);

	if (setup_queue(&h) != 0 && !raw) {
		teardown_queue(&h);
		goto out;
	}
	for (int i = 0; i < MAX_OPS && !fin_done(&f); i++) {
		if (!h.b.map)
			break; /* builder could not lay out this size */
		if (raw)
			raw_op(&h, &f);
		else
			template_op(&h, &f);
	}
	teardown_queue(&h);
out:
	free(h.extra);
	free(h.mirror);
	return 0;
}
