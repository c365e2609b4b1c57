/* Split virtqueue, device side: ring validation, descriptor-chain walking with
 * every virtio 1.x rule enforced on hostile input, used-ring publication and
 * notification suppression (NO_INTERRUPT, EVENT_IDX). */
#include "virtio/queue.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

/*
 * Rules and policy choices (all violations are reported as -VIRTQ_ERR_*):
 *  - size: power of two, 1..32768 (SIZE). desc 16-, avail 2-, used 4-byte
 *    aligned, as GPAs and as host addresses (ALIGN). Each ring, including
 *    used_event / avail_event with EVENT_IDX, lies inside one guest memory
 *    region without wrapping (RING_ADDR). Overlapping rings are not rejected:
 *    that cannot make the device access memory outside the guest.
 *  - avail idx - last_avail_idx (mod 2^16) > size (AVAIL_IDX).
 *  - head >= size (HEAD); a head the device still owns (HEAD_BUSY): only
 *    heads are tracked, chains sharing descriptors are not detected.
 *  - next >= size, or >= table length inside an indirect table (HEAD).
 *  - more than `size` direct descriptors visited, more than the table length
 *    visited inside an indirect table, or more than `size` non-empty buffers
 *    in the whole chain (LOOP). Work per pop is therefore O(size).
 *  - INDIRECT with NEXT (INDIRECT_NEXT); INDIRECT inside a table
 *    (NESTED_INDIRECT); table len 0, not a multiple of 16 or more than `size`
 *    entries (INDIRECT_LEN); table outside guest memory (DESC_ADDR). An
 *    INDIRECT descriptor may end a direct chain; its WRITE flag is ignored.
 *    INDIRECT is accepted whether or not VIRTIO_F_INDIRECT_DESC was negotiated
 *    (the queue does not know the features; this cannot hurt the host).
 *  - a buffer not inside one guest memory region or with addr+len wrapping
 *    (DESC_ADDR). Zero-length descriptors are allowed: address unchecked, not
 *    listed in the chain's bufs, but they count for the loop and order rules.
 *  - total chain bytes > 2^32 - 1 (CHAIN_LEN).
 *  - a readable descriptor after a writable one, across an indirect boundary
 *    too (WRITE_ORDER).
 * Checks run in walk order, so the first broken rule along the chain is the
 * one reported. Every descriptor is copied to a local exactly once (a racing
 * guest cannot change a field between its check and its use).
 */

static const char *const virtq_errstr[VIRTQ_ERR_MAX] = {
	[VIRTQ_OK] = "ok",
	[VIRTQ_ERR_NOT_READY] = "queue is not ready",
	[VIRTQ_ERR_SIZE] = "queue size is 0, not a power of two or too large",
	[VIRTQ_ERR_ALIGN] = "ring address is misaligned",
	[VIRTQ_ERR_RING_ADDR] = "ring is outside guest memory",
	[VIRTQ_ERR_AVAIL_IDX] = "avail idx is more than the queue size ahead",
	[VIRTQ_ERR_HEAD] = "descriptor index out of range",
	[VIRTQ_ERR_LOOP] = "descriptor chain longer than the queue (loop)",
	[VIRTQ_ERR_DESC_ADDR] = "buffer is outside guest memory",
	[VIRTQ_ERR_NESTED_INDIRECT] = "indirect descriptor inside an indirect table",
	[VIRTQ_ERR_INDIRECT_LEN] = "bad indirect table length",
	[VIRTQ_ERR_INDIRECT_NEXT] = "indirect descriptor with NEXT",
	[VIRTQ_ERR_CHAIN_LEN] = "descriptor chain longer than 4 GiB - 1 bytes",
	[VIRTQ_ERR_WRITE_ORDER] = "device-readable descriptor after a writable one",
	[VIRTQ_ERR_USED_ID] = "used id not owned by the device",
	[VIRTQ_ERR_HEAD_BUSY] = "head made available while still in use",
	[VIRTQ_ERR_NOMEM] = "out of memory",
};

const char *virtq_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= VIRTQ_ERR_MAX)
		return "unknown virtqueue error";
	return virtq_errstr[err];
}

void virtq_init(struct virtq *q, const struct guest_mem *mem)
{
	memset(q, 0, sizeof(*q));
	q->mem = mem;
}

void virtq_reset(struct virtq *q)
{
	const struct guest_mem *mem = q->mem;

	free(q->scratch);
	free(q->owned);
	virtq_init(q, mem);
}

static void *ring_ptr(const struct virtq *q, uint64_t gpa, uint64_t len, unsigned int align,
		      int *err)
{
	void *p = guest_mem_ptr(q->mem, gpa, len);

	if (!p) {
		*err = -VIRTQ_ERR_RING_ADDR;
		return NULL;
	}
	/* only differs from the GPA check if a region's host mapping is not
	 * aligned like its GPA; atomics below need natural alignment */
	if ((uintptr_t)p & (align - 1)) {
		*err = -VIRTQ_ERR_ALIGN;
		return NULL;
	}
	return p;
}

int virtq_enable(struct virtq *q)
{
	uint32_t size = q->size;
	int err = 0;

	free(q->scratch);
	free(q->owned);
	q->scratch = NULL;
	q->owned = NULL;
	q->ready = false;
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	q->used_event = NULL;
	q->avail_event = NULL;

	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -VIRTQ_ERR_SIZE;
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return -VIRTQ_ERR_ALIGN;
	if (!q->mem)
		return -VIRTQ_ERR_RING_ADDR;

	struct virtq_desc *desc = ring_ptr(q, q->desc_gpa, virtq_desc_bytes(size), 16, &err);
	if (!desc)
		return err;
	struct virtq_avail *avail =
		ring_ptr(q, q->avail_gpa, virtq_avail_bytes(size, q->event_idx), 2, &err);
	if (!avail)
		return err;
	struct virtq_used *used =
		ring_ptr(q, q->used_gpa, virtq_used_bytes(size, q->event_idx), 4, &err);
	if (!used)
		return err;

	q->scratch = calloc(size, sizeof(*q->scratch));
	q->owned = calloc(size, 1);
	if (!q->scratch || !q->owned) {
		free(q->scratch);
		free(q->owned);
		q->scratch = NULL;
		q->owned = NULL;
		return -VIRTQ_ERR_NOMEM;
	}

	q->desc = desc;
	q->avail = avail;
	q->used = used;
	if (q->event_idx) {
		q->used_event = &avail->ring[size];
		q->avail_event = (uint16_t *)&used->ring[size];
	}
	q->last_avail_idx = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->signalled_used_valid = false;
	q->in_flight = 0;
	q->ready = true;
	return 0;
}

/* single reads of driver-owned ring fields */
static uint16_t load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static void store32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, htole32(v), __ATOMIC_RELAXED);
}

/*
 * Copy one descriptor out of guest memory exactly once. `src` may be unaligned
 * (indirect tables have no alignment rule). The compiler barrier keeps the
 * compiler from re-reading guest memory instead of using the local copy.
 */
static void read_desc_once(const void *src, struct virtq_desc *d)
{
	struct virtq_desc raw;

	memcpy(&raw, src, sizeof(raw));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(raw.flags);
	d->next = le16toh(raw.next);
}

struct walk {
	struct virtq *q;
	struct virtq_chain *c;
	uint64_t total;
	bool seen_writable;
};

static int walk_add(struct walk *w, const struct virtq_desc *d)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	struct virtq_chain *c = w->c;

	if (!writable && w->seen_writable)
		return -VIRTQ_ERR_WRITE_ORDER;
	if (writable)
		w->seen_writable = true;
	if (d->len == 0)
		return 0;
	void *host = guest_mem_ptr(w->q->mem, d->addr, d->len);
	if (!host)
		return -VIRTQ_ERR_DESC_ADDR;
	w->total += d->len;
	if (w->total > UINT32_MAX)
		return -VIRTQ_ERR_CHAIN_LEN;
	if (c->nr_bufs >= w->q->size)
		return -VIRTQ_ERR_LOOP;
	c->bufs[c->nr_bufs++] = (struct virtq_buf){
		.host = host, .gpa = d->addr, .len = d->len, .writable = writable
	};
	if (writable) {
		c->writable_len += d->len;
	} else {
		c->readable_len += d->len;
		c->nr_readable++;
	}
	return 0;
}

static int walk_indirect(struct walk *w, const struct virtq_desc *ind)
{
	if (ind->flags & VIRTQ_DESC_F_NEXT)
		return -VIRTQ_ERR_INDIRECT_NEXT;
	if (ind->len == 0 || (ind->len % sizeof(struct virtq_desc)))
		return -VIRTQ_ERR_INDIRECT_LEN;
	uint32_t n = ind->len / sizeof(struct virtq_desc);
	if (n > w->q->size)
		return -VIRTQ_ERR_INDIRECT_LEN;
	const uint8_t *table = guest_mem_ptr(w->q->mem, ind->addr, ind->len);
	if (!table)
		return -VIRTQ_ERR_DESC_ADDR;

	uint32_t i = 0;
	for (uint32_t visited = 1;; visited++) {
		struct virtq_desc d;
		int ret;

		if (visited > n)
			return -VIRTQ_ERR_LOOP;
		read_desc_once(table + (uint64_t)i * sizeof(d), &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return -VIRTQ_ERR_NESTED_INDIRECT;
		ret = walk_add(w, &d);
		if (ret)
			return ret;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= n)
			return -VIRTQ_ERR_HEAD;
		i = d.next;
	}
}

static int walk_chain(struct walk *w, uint16_t head)
{
	uint32_t size = w->q->size;
	uint16_t idx = head;

	for (uint32_t visited = 1;; visited++) {
		struct virtq_desc d;
		int ret;

		if (visited > size)
			return -VIRTQ_ERR_LOOP;
		read_desc_once(&w->q->desc[idx], &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return walk_indirect(w, &d);
		ret = walk_add(w, &d);
		if (ret)
			return ret;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= size)
			return -VIRTQ_ERR_HEAD;
		idx = d.next;
	}
}

uint16_t virtq_avail_pending(struct virtq *q)
{
	if (!q->ready)
		return 0;
	return (uint16_t)(load16(&q->avail->idx) - q->last_avail_idx);
}

int virtq_pop(struct virtq *q, struct virtq_chain *chain)
{
	if (!q->ready)
		return -VIRTQ_ERR_NOT_READY;

	uint16_t avail_idx = load16(&q->avail->idx);
	uint16_t pending = (uint16_t)(avail_idx - q->last_avail_idx);
	if (pending > q->size)
		return -VIRTQ_ERR_AVAIL_IDX;
	if (pending == 0)
		return 0;
	/* ring entries and descriptors are read after the idx that covers them */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);

	uint16_t head = load16(&q->avail->ring[q->last_avail_idx & (q->size - 1)]);
	if (head >= q->size)
		return -VIRTQ_ERR_HEAD;
	if (q->owned[head])
		return -VIRTQ_ERR_HEAD_BUSY;

	*chain = (struct virtq_chain){ .head = head, .bufs = q->scratch };
	struct walk w = { .q = q, .c = chain };
	int ret = walk_chain(&w, head);
	if (ret) {
		*chain = (struct virtq_chain){ .head = head, .bufs = q->scratch };
		return ret;
	}

	q->owned[head] = 1;
	q->in_flight++;
	q->last_avail_idx++;
	return 1;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	if (!q->ready)
		return -VIRTQ_ERR_NOT_READY;
	if (head >= q->size || !q->owned[head])
		return -VIRTQ_ERR_USED_ID;
	q->owned[head] = 0;
	q->in_flight--;

	struct virtq_used_elem *e = &q->used->ring[q->used_idx & (q->size - 1)];
	store32(&e->id, head);
	store32(&e->len, written);
	/* the element is visible before the idx that publishes it */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->used_idx++;
	store16(&q->used->idx, q->used_idx);
	/* 2^16 pushes without a signal: old == new would suppress forever */
	if (q->used_idx == q->signalled_used)
		q->signalled_used_valid = false;
	return 0;
}

/* virtio spec: interrupt if new_idx passed event_idx since old_idx */
static bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

bool virtq_needs_interrupt(struct virtq *q)
{
	if (!q->ready)
		return false;
	/* our used idx store is ordered before reading the driver's suppression */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(load16(&q->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);

	uint16_t old_idx = q->signalled_used;
	bool valid = q->signalled_used_valid;
	uint16_t new_idx = q->used_idx;
	q->signalled_used = new_idx;
	q->signalled_used_valid = true;
	if (!valid)
		return true;
	return need_event(load16(q->used_event), new_idx, old_idx);
}

bool virtq_enable_notify(struct virtq *q)
{
	if (!q->ready)
		return false;
	if (q->event_idx)
		store16(q->avail_event, q->last_avail_idx);
	/* publish avail_event before re-reading avail idx (pairs with the
	 * driver's fence between its avail idx store and avail_event load) */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16(&q->avail->idx) != q->last_avail_idx;
}

uint32_t virtq_chain_read(const struct virtq_chain *c, uint32_t off, void *dst, uint32_t len)
{
	uint8_t *out = dst;
	uint32_t done = 0;

	for (uint16_t i = 0; i < c->nr_readable && done < len; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		uint32_t n = b->len - off;
		if (n > len - done)
			n = len - done;
		memcpy(out + done, b->host + off, n);
		done += n;
		off = 0;
	}
	return done;
}

uint32_t virtq_chain_write(const struct virtq_chain *c, uint32_t off, const void *src,
			   uint32_t len)
{
	const uint8_t *in = src;
	uint32_t done = 0;

	for (uint16_t i = c->nr_readable; i < c->nr_bufs && done < len; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		uint32_t n = b->len - off;
		if (n > len - done)
			n = len - done;
		memcpy(b->host + off, in + done, n);
		done += n;
		off = 0;
	}
	return done;
}
