/* Unit tests for virtio/queue.c (split virtqueue, device side), driven by the
 * driver-side builder (tests/support/vq_builder.c): valid paths, notification
 * suppression, and a catalogue of malformed queues (malformed_*), each checked
 * on the bare queue and through the virtio-mmio transport (NEEDS_RESET, then a
 * driver reset and re-initialisation must bring a working queue back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/mmio.h"
#include "virtio/queue.h"
#include "unit_helpers.h"
#include "vq_builder.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (1ull << 20)
#define RAM_END (RAM_GPA + RAM_SIZE)
#define BIG_RAM 0x80200000ull /* > 2 GiB, lazily backed */
#define QSIZE 16

#define F_NEXT VIRTQ_DESC_F_NEXT
#define F_WRITE VIRTQ_DESC_F_WRITE
#define F_IND VIRTQ_DESC_F_INDIRECT

/* ------------------------------------------------------------------ */
/* fixture for the valid-path tests                                    */

struct ctx {
	struct vqb b;
	struct virtq q;
};

static int setup_common(void **state, uint16_t qsize, uint64_t ram, bool event_idx)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c || vqb_init(&c->b, RAM_GPA, ram, qsize))
		return -1;
	if (vqb_attach(&c->b, &c->q, event_idx))
		return -1;
	*state = c;
	return 0;
}

static int setup(void **state)
{
	return setup_common(state, QSIZE, RAM_SIZE, false);
}

static int setup_evidx(void **state)
{
	return setup_common(state, QSIZE, RAM_SIZE, true);
}

static int setup_small(void **state)
{
	return setup_common(state, 4, RAM_SIZE, false);
}

static int setup_big(void **state)
{
	return setup_common(state, QSIZE, BIG_RAM, false);
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	virtq_reset(&c->q);
	vqb_destroy(&c->b);
	free(c);
	return 0;
}

static uint64_t data(struct vqb *b, uint64_t len)
{
	uint64_t gpa = vqb_alloc(b, len, 8);
	assert_true(gpa != VQB_BAD_GPA);
	return gpa;
}

/* A request through a bare queue: readable "ping", writable 16 bytes; the
 * "device" echoes and pushes; the driver sees the used element. */
static void roundtrip(struct vqb *b, struct virtq *q)
{
	static const char msg[] = "ping";
	uint64_t in = vqb_alloc_copy(b, msg, sizeof(msg));
	uint64_t out = data(b, 16);
	struct vqb_buf bufs[] = { { in, sizeof(msg), false }, { out, 16, true } };
	struct virtq_chain ch;
	uint16_t head;
	uint32_t id, len;
	char tmp[16];

	assert_int_equal(vqb_send(b, bufs, 2, &head), 0);
	assert_int_equal(virtq_pop(q, &ch), 1);
	assert_int_equal(ch.head, head);
	uint32_t n = virtq_chain_read(&ch, 0, tmp, sizeof(tmp));
	assert_int_equal(n, sizeof(msg));
	assert_int_equal(virtq_chain_write(&ch, 0, tmp, n), n);
	assert_int_equal(virtq_push(q, head, n), 0);
	assert_int_equal(vqb_get_used(b, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, sizeof(msg));
	assert_memory_equal(vqb_host(b, out, sizeof(msg)), msg, sizeof(msg));
}

/* ------------------------------------------------------------------ */
/* valid paths                                                         */

static void test_direct_chain(void **state)
{
	struct ctx *c = *state;
	static const char msg[] = "hello, device";
	uint64_t in = vqb_alloc_copy(&c->b, msg, sizeof(msg));
	uint64_t out = data(&c->b, 64);
	struct vqb_buf bufs[] = { { in, sizeof(msg), false }, { out, 64, true } };
	struct virtq_chain ch;
	uint16_t head;
	uint32_t id, len;
	char got[sizeof(msg)];

	assert_int_equal(virtq_pop(&c->q, &ch), 0);
	assert_int_equal(vqb_send(&c->b, bufs, 2, &head), 0);
	assert_int_equal(virtq_avail_pending(&c->q), 1);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.head, head);
	assert_int_equal(ch.nr_bufs, 2);
	assert_int_equal(ch.nr_readable, 1);
	assert_int_equal(ch.readable_len, sizeof(msg));
	assert_int_equal(ch.writable_len, 64);
	assert_false(ch.bufs[0].writable);
	assert_true(ch.bufs[1].writable);
	assert_int_equal(ch.bufs[0].gpa, in);
	assert_ptr_equal(ch.bufs[1].host, vqb_host(&c->b, out, 64));
	assert_int_equal(c->q.in_flight, 1);
	assert_int_equal(virtq_chain_read(&ch, 0, got, sizeof(got)), sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	assert_int_equal(virtq_chain_write(&ch, 0, "ok", 2), 2);
	assert_int_equal(virtq_pop(&c->q, &ch), 0);
	assert_int_equal(virtq_push(&c->q, head, 2), 0);
	assert_int_equal(c->q.in_flight, 0);
	assert_true(virtq_needs_interrupt(&c->q));
	assert_int_equal(vqb_used_idx(&c->b), 1);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 2);
	assert_memory_equal(vqb_host(&c->b, out, 2), "ok", 2);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 0);
}

static void test_readable_only_and_writable_only(void **state)
{
	struct ctx *c = *state;
	struct virtq_chain ch;
	uint16_t h1, h2;
	struct vqb_buf r[] = { { data(&c->b, 10), 10, false }, { data(&c->b, 20), 20, false } };
	struct vqb_buf w[] = { { data(&c->b, 30), 30, true } };

	assert_int_equal(vqb_send(&c->b, r, 2, &h1), 0);
	assert_int_equal(vqb_send(&c->b, w, 1, &h2), 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.nr_bufs, 2);
	assert_int_equal(ch.nr_readable, 2);
	assert_int_equal(ch.readable_len, 30);
	assert_int_equal(ch.writable_len, 0);
	assert_int_equal(virtq_chain_write(&ch, 0, "x", 1), 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.head, h2);
	assert_int_equal(ch.nr_readable, 0);
	assert_int_equal(ch.writable_len, 30);
	char x;
	assert_int_equal(virtq_chain_read(&ch, 0, &x, 1), 0);
	assert_int_equal(virtq_push(&c->q, h2, 30), 0);
	assert_int_equal(virtq_push(&c->q, h1, 0), 0);
}

static void test_indirect_chain(void **state)
{
	struct ctx *c = *state;
	uint8_t pat[12];
	for (unsigned int i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(0xa0 + i);
	struct vqb_buf bufs[] = {
		{ vqb_alloc_copy(&c->b, pat, 4), 4, false },
		{ vqb_alloc_copy(&c->b, pat + 4, 8), 8, false },
		{ data(&c->b, 6), 6, true },
		{ data(&c->b, 6), 6, true },
	};
	struct virtq_chain ch;
	uint16_t head;
	uint64_t table;
	uint8_t got[12];

	assert_int_equal(vqb_add_indirect(&c->b, bufs, 4, &head, &table), 0);
	assert_int_equal(vqb_publish(&c->b, head), 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.head, head);
	assert_int_equal(ch.nr_bufs, 4);
	assert_int_equal(ch.nr_readable, 2);
	assert_int_equal(ch.readable_len, 12);
	assert_int_equal(ch.writable_len, 12);
	assert_int_equal(virtq_chain_read(&ch, 0, got, 12), 12);
	assert_memory_equal(got, pat, 12);
	assert_int_equal(virtq_chain_write(&ch, 0, pat, 12), 12);
	assert_memory_equal(vqb_host(&c->b, bufs[2].gpa, 6), pat, 6);
	assert_memory_equal(vqb_host(&c->b, bufs[3].gpa, 6), pat + 6, 6);
	assert_int_equal(virtq_push(&c->q, head, 12), 0);
	uint32_t id, len;
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 12);
}

/* a direct readable prefix ending in an INDIRECT descriptor (spec allows it) */
static void test_direct_then_indirect(void **state)
{
	struct ctx *c = *state;
	uint64_t table = vqb_alloc(&c->b, 32, 16);
	uint64_t b0 = data(&c->b, 8), b1 = data(&c->b, 8), b2 = data(&c->b, 8);
	struct virtq_chain ch;

	vqb_write_desc_at(&c->b, table, b1, 8, F_NEXT, 1);
	vqb_write_desc_at(&c->b, table + 16, b2, 8, F_WRITE, 0);
	vqb_write_desc(&c->b, 3, b0, 8, F_NEXT, 9);
	vqb_write_desc(&c->b, 9, table, 32, F_IND, 0);
	assert_int_equal(vqb_publish(&c->b, 3), 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.nr_bufs, 3);
	assert_int_equal(ch.nr_readable, 2);
	assert_int_equal(ch.bufs[0].gpa, b0);
	assert_int_equal(ch.bufs[1].gpa, b1);
	assert_int_equal(ch.bufs[2].gpa, b2);
	assert_int_equal(virtq_push(&c->q, 3, 8), 0);
}

/* the WRITE flag on the descriptor that points at a table is ignored */
static void test_indirect_write_flag_ignored(void **state)
{
	struct ctx *c = *state;
	uint64_t table = vqb_alloc(&c->b, 32, 16);
	struct virtq_chain ch;

	vqb_write_desc_at(&c->b, table, data(&c->b, 4), 4, F_NEXT, 1);
	vqb_write_desc_at(&c->b, table + 16, data(&c->b, 4), 4, F_WRITE, 0);
	vqb_write_desc(&c->b, 0, table, 32, F_IND | F_WRITE, 0);
	vqb_publish(&c->b, 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.nr_readable, 1);
	assert_int_equal(ch.nr_bufs, 2);
}

/* indirect tables need no alignment; entries are followed through next */
static void test_indirect_unaligned_table_and_order(void **state)
{
	struct ctx *c = *state;
	uint64_t table = vqb_alloc(&c->b, 3 * 16 + 1, 16) + 1;
	uint64_t b[3] = { data(&c->b, 1), data(&c->b, 2), data(&c->b, 3) };
	struct virtq_chain ch;

	/* walk order 2 -> ... no: always starts at entry 0; 0 -> 2 -> 1 */
	vqb_write_desc_at(&c->b, table, b[0], 1, F_NEXT, 2);
	vqb_write_desc_at(&c->b, table + 32, b[2], 3, F_NEXT, 1);
	vqb_write_desc_at(&c->b, table + 16, b[1], 2, 0, 0);
	vqb_write_desc(&c->b, 5, table, 48, F_IND, 0);
	vqb_publish(&c->b, 5);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.nr_bufs, 3);
	assert_int_equal(ch.bufs[0].len, 1);
	assert_int_equal(ch.bufs[1].len, 3);
	assert_int_equal(ch.bufs[2].len, 2);
	assert_int_equal(ch.readable_len, 6);
}

static void test_chain_read_write_across_buffers(void **state)
{
	struct ctx *c = *state;
	uint8_t src[15];
	for (unsigned int i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)i;
	struct vqb_buf bufs[] = {
		{ vqb_alloc_copy(&c->b, src, 3), 3, false },
		{ vqb_alloc_copy(&c->b, src + 3, 5), 5, false },
		{ vqb_alloc_copy(&c->b, src + 8, 7), 7, false },
		{ data(&c->b, 4), 4, true },
		{ data(&c->b, 4), 4, true },
	};
	struct virtq_chain ch;
	uint16_t head;
	uint8_t got[32];

	assert_int_equal(vqb_send(&c->b, bufs, 5, &head), 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.readable_len, 15);
	/* spans all three readable buffers */
	assert_int_equal(virtq_chain_read(&ch, 2, got, 10), 10);
	assert_memory_equal(got, src + 2, 10);
	/* short at the end, nothing past it */
	assert_int_equal(virtq_chain_read(&ch, 12, got, 10), 3);
	assert_memory_equal(got, src + 12, 3);
	assert_int_equal(virtq_chain_read(&ch, 15, got, 1), 0);
	assert_int_equal(virtq_chain_read(&ch, UINT32_MAX, got, 1), 0);
	assert_int_equal(virtq_chain_read(&ch, 0, got, 0), 0);
	/* writable side: 6 bytes at offset 1 cross the boundary */
	assert_int_equal(virtq_chain_write(&ch, 1, "abcdef", 6), 6);
	assert_memory_equal(vqb_host(&c->b, bufs[3].gpa, 4), "\0abc", 4);
	assert_memory_equal(vqb_host(&c->b, bufs[4].gpa, 4), "def\0", 4);
	assert_int_equal(virtq_chain_write(&ch, 6, "XYZ", 3), 2);
	assert_int_equal(virtq_chain_write(&ch, 8, "X", 1), 0);
	/* readable buffers are never written */
	assert_memory_equal(vqb_host(&c->b, bufs[0].gpa, 3), src, 3);
}

static void test_zero_length_descriptors(void **state)
{
	struct ctx *c = *state;
	struct virtq_chain ch;
	uint64_t r = data(&c->b, 4), w = data(&c->b, 4);

	/* zero-length descriptors: address not checked (here 0, outside RAM) */
	vqb_write_desc(&c->b, 0, 0, 0, F_NEXT, 1);
	vqb_write_desc(&c->b, 1, r, 4, F_NEXT, 2);
	vqb_write_desc(&c->b, 2, UINT64_MAX, 0, F_NEXT | F_WRITE, 3);
	vqb_write_desc(&c->b, 3, w, 4, F_WRITE, 0);
	vqb_publish(&c->b, 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.nr_bufs, 2);
	assert_int_equal(ch.nr_readable, 1);
	assert_int_equal(ch.bufs[0].gpa, r);
	assert_int_equal(ch.bufs[1].gpa, w);
	assert_int_equal(virtq_push(&c->q, 0, 0), 0);
	/* a chain of one zero-length descriptor has no buffers at all */
	vqb_write_desc(&c->b, 4, 0, 0, 0, 0);
	vqb_publish(&c->b, 4);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.nr_bufs, 0);
	assert_int_equal(ch.readable_len + ch.writable_len, 0);
	assert_int_equal(virtq_chain_read(&ch, 0, &r, 1), 0);
	assert_int_equal(virtq_push(&c->q, 4, 0), 0);
}

static void test_used_ring_contents_out_of_order(void **state)
{
	struct ctx *c = *state;
	struct virtq_chain ch;
	uint16_t h[3];
	uint32_t id, len;

	for (int i = 0; i < 3; i++) {
		struct vqb_buf b = { data(&c->b, 8), 8, true };
		assert_int_equal(vqb_send(&c->b, &b, 1, &h[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(virtq_pop(&c->q, &ch), 1);
		assert_int_equal(ch.head, h[i]);
	}
	assert_int_equal(c->q.in_flight, 3);
	assert_int_equal(virtq_push(&c->q, h[2], 7), 0);
	assert_int_equal(virtq_push(&c->q, h[0], 5), 0);
	assert_int_equal(virtq_push(&c->q, h[1], 6), 0);
	assert_int_equal(vqb_used_idx(&c->b), 3);
	assert_int_equal(vqb_used_elem(&c->b, 0, &id, &len), 0);
	assert_int_equal(id, h[2]);
	assert_int_equal(len, 7);
	assert_int_equal(vqb_used_elem(&c->b, 1, &id, &len), 0);
	assert_int_equal(id, h[0]);
	assert_int_equal(len, 5);
	assert_int_equal(vqb_used_elem(&c->b, 2, &id, &len), 0);
	assert_int_equal(id, h[1]);
	assert_int_equal(len, 6);
	assert_int_equal(vqb_used_flags(&c->b), 0);
}

/* 16-bit avail/used indices wrap: 70000 requests through a queue of 4 */
static void test_index_wraparound(void **state)
{
	struct ctx *c = *state;
	uint64_t in = data(&c->b, 4), out = data(&c->b, 4);
	struct vqb_buf bufs[] = { { in, 4, false }, { out, 4, true } };

	for (uint32_t i = 0; i < 70000; i++) {
		struct virtq_chain ch;
		uint16_t head;
		uint32_t id, len, v;

		memcpy(vqb_host(&c->b, in, 4), &i, 4);
		assert_int_equal(vqb_send(&c->b, bufs, 2, &head), 0);
		assert_int_equal(virtq_pop(&c->q, &ch), 1);
		assert_int_equal(virtq_chain_read(&ch, 0, &v, 4), 4);
		assert_int_equal(v, i);
		v = ~i;
		assert_int_equal(virtq_chain_write(&ch, 0, &v, 4), 4);
		assert_int_equal(virtq_push(&c->q, head, 4), 0);
		assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
		assert_int_equal(id, head);
		memcpy(&v, vqb_host(&c->b, out, 4), 4);
		assert_int_equal(v, ~i);
	}
	assert_int_equal(c->q.last_avail_idx, (uint16_t)70000);
	assert_int_equal(vqb_used_idx(&c->b), (uint16_t)70000);
}

/* exactly `size` chains in flight, all heads distinct; the ring is full */
static void test_full_queue(void **state)
{
	struct ctx *c = *state;
	struct virtq_chain ch;
	uint16_t heads[QSIZE];
	uint32_t id, len;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < QSIZE; i++) {
			struct vqb_buf b = { data(&c->b, 1), 1, false };
			assert_int_equal(vqb_send(&c->b, &b, 1, &heads[i]), 0);
		}
		assert_int_equal(virtq_avail_pending(&c->q), QSIZE);
		for (int i = 0; i < QSIZE; i++)
			assert_int_equal(virtq_pop(&c->q, &ch), 1);
		assert_int_equal(virtq_pop(&c->q, &ch), 0);
		assert_int_equal(c->q.in_flight, QSIZE);
		for (int i = QSIZE - 1; i >= 0; i--)
			assert_int_equal(virtq_push(&c->q, heads[i], 0), 0);
		for (int i = 0; i < QSIZE; i++)
			assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	}
}

/* the longest legal chains: size direct descriptors, size indirect entries,
 * direct + indirect totalling size buffers */
static void test_max_length_chains(void **state)
{
	struct ctx *c = *state;
	struct vqb_buf bufs[QSIZE];
	struct virtq_chain ch;
	uint16_t head;

	for (int i = 0; i < QSIZE; i++)
		bufs[i] = (struct vqb_buf){ data(&c->b, 2), 2, i >= QSIZE / 2 };
	assert_int_equal(vqb_send(&c->b, bufs, QSIZE, &head), 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.nr_bufs, QSIZE);
	assert_int_equal(ch.nr_readable, QSIZE / 2);
	assert_int_equal(virtq_push(&c->q, head, 0), 0);
	uint32_t id, len;
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);

	assert_int_equal(vqb_add_indirect(&c->b, bufs, QSIZE, &head, NULL), 0);
	vqb_publish(&c->b, head);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.nr_bufs, QSIZE);
	assert_int_equal(virtq_push(&c->q, head, 0), 0);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);

	/* 8 direct (readable) + table of 8 (writable): 16 buffers */
	uint64_t table = vqb_alloc(&c->b, 8 * 16, 16);
	for (int i = 0; i < 8; i++) {
		vqb_write_desc(&c->b, (uint16_t)i, bufs[i].gpa, 2, F_NEXT, (uint16_t)(i + 1));
		vqb_write_desc_at(&c->b, table + 16 * i, bufs[8 + i].gpa, 2,
				  F_WRITE | (i < 7 ? F_NEXT : 0), (uint16_t)(i + 1));
	}
	vqb_write_desc(&c->b, 8, table, 8 * 16, F_IND, 0);
	vqb_publish(&c->b, 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.nr_bufs, 16);
	assert_int_equal(ch.nr_readable, 8);
}

/* total chain length of exactly 2^32 - 1 bytes is legal */
static void test_chain_len_4g_minus_1(void **state)
{
	struct ctx *c = *state;
	uint64_t big = vqb_alloc(&c->b, 0x80000000ull, 4096);
	struct virtq_chain ch;

	assert_true(big != VQB_BAD_GPA);
	vqb_write_desc(&c->b, 0, big, 0x80000000u, F_NEXT, 1);
	vqb_write_desc(&c->b, 1, big, 0x7fffffffu, F_WRITE, 0);
	vqb_publish(&c->b, 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.readable_len, 0x80000000u);
	assert_int_equal(ch.writable_len, 0x7fffffffu);
}

static void test_buffer_at_ram_edges(void **state)
{
	struct ctx *c = *state;
	struct virtq_chain ch;

	vqb_write_desc(&c->b, 0, RAM_END - 8, 8, F_NEXT, 1); /* last bytes of RAM */
	vqb_write_desc(&c->b, 1, RAM_GPA, 1, 0, 0);          /* first byte */
	vqb_publish(&c->b, 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_ptr_equal(ch.bufs[0].host, c->b.ram + RAM_SIZE - 8);
	assert_ptr_equal(ch.bufs[1].host, c->b.ram);
}

/* rings exactly at the end of RAM are fine (without EVENT_IDX the trailing
 * used_event / avail_event fields do not exist) */
static void test_rings_at_ram_end(void **state)
{
	struct ctx *c = *state;
	struct virtq q;

	vqb_place_rings(&c->b, RAM_END - 16 * QSIZE - 4096, RAM_END - 4 - 2 * QSIZE - 2048,
			RAM_END - 4 - 8 * QSIZE);
	assert_int_equal(vqb_attach(&c->b, &q, false), 0);
	assert_true(q.ready);
	roundtrip(&c->b, &q);
	virtq_reset(&q);
	assert_int_equal(vqb_attach(&c->b, &q, true), -VIRTQ_ERR_RING_ADDR);
	virtq_reset(&q);
}

/* NO_INTERRUPT (without EVENT_IDX) */
static void test_no_interrupt_flag(void **state)
{
	struct ctx *c = *state;
	roundtrip(&c->b, &c->q);
	assert_true(virtq_needs_interrupt(&c->q));
	vqb_set_avail_flags(&c->b, VIRTQ_AVAIL_F_NO_INTERRUPT);
	roundtrip(&c->b, &c->q);
	assert_false(virtq_needs_interrupt(&c->q));
	vqb_set_avail_flags(&c->b, 0);
	roundtrip(&c->b, &c->q);
	assert_true(virtq_needs_interrupt(&c->q));
	/* used_event is ignored without EVENT_IDX */
	vqb_set_used_event(&c->b, 1000);
	roundtrip(&c->b, &c->q);
	assert_true(virtq_needs_interrupt(&c->q));
	/* enable_notify without EVENT_IDX: nothing written, re-check only */
	assert_false(virtq_enable_notify(&c->q));
	assert_int_equal(vqb_avail_event(&c->b), 0);
}

/* EVENT_IDX: interrupt only when used idx passes used_event */
static void test_event_idx_used_event(void **state)
{
	struct ctx *c = *state;

	/* the first check always signals */
	roundtrip(&c->b, &c->q); /* used idx 1 */
	assert_true(virtq_needs_interrupt(&c->q));
	/* nothing pushed since: no interrupt */
	assert_false(virtq_needs_interrupt(&c->q));
	vqb_set_used_event(&c->b, 1); /* driver: interrupt once idx moves past 1 */
	roundtrip(&c->b, &c->q);      /* used idx 2 */
	assert_true(virtq_needs_interrupt(&c->q));
	vqb_set_used_event(&c->b, 5);
	roundtrip(&c->b, &c->q); /* 3 */
	assert_false(virtq_needs_interrupt(&c->q));
	roundtrip(&c->b, &c->q); /* 4 */
	roundtrip(&c->b, &c->q); /* 5 */
	assert_false(virtq_needs_interrupt(&c->q));
	roundtrip(&c->b, &c->q); /* 6: passes 5 */
	assert_true(virtq_needs_interrupt(&c->q));
	/* several pushes in one batch crossing used_event */
	vqb_set_used_event(&c->b, 7);
	roundtrip(&c->b, &c->q); /* 7 */
	roundtrip(&c->b, &c->q); /* 8 */
	roundtrip(&c->b, &c->q); /* 9 */
	assert_true(virtq_needs_interrupt(&c->q));
	/* NO_INTERRUPT is ignored with EVENT_IDX */
	vqb_set_avail_flags(&c->b, VIRTQ_AVAIL_F_NO_INTERRUPT);
	vqb_set_used_event(&c->b, 9);
	roundtrip(&c->b, &c->q); /* 10 */
	assert_true(virtq_needs_interrupt(&c->q));
}

/* EVENT_IDX: virtq_enable_notify publishes avail_event and re-checks */
static void test_event_idx_avail_event(void **state)
{
	struct ctx *c = *state;
	struct virtq_chain ch;
	uint16_t head;
	struct vqb_buf b = { data(&c->b, 4), 4, false };

	assert_false(virtq_enable_notify(&c->q));
	assert_int_equal(vqb_avail_event(&c->b), 0);
	for (int i = 0; i < 3; i++)
		roundtrip(&c->b, &c->q);
	assert_false(virtq_enable_notify(&c->q));
	assert_int_equal(vqb_avail_event(&c->b), 3);
	/* a buffer arriving before going idle is seen by the re-check */
	assert_int_equal(vqb_send(&c->b, &b, 1, &head), 0);
	assert_true(virtq_enable_notify(&c->q));
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_false(virtq_enable_notify(&c->q));
	assert_int_equal(vqb_avail_event(&c->b), 4);
}

/* 2^16 pushes without checking: the old signalled value is stale, signal */
static void test_event_idx_signalled_wrap(void **state)
{
	struct ctx *c = *state;
	struct vqb_buf b = { data(&c->b, 1), 1, true };

	roundtrip(&c->b, &c->q);
	assert_true(virtq_needs_interrupt(&c->q)); /* signalled at 1 */
	vqb_set_used_event(&c->b, 0);
	for (uint32_t i = 0; i < 65536; i++) {
		struct virtq_chain ch;
		uint16_t head;
		uint32_t id, len;
		assert_int_equal(vqb_send(&c->b, &b, 1, &head), 0);
		assert_int_equal(virtq_pop(&c->q, &ch), 1);
		assert_int_equal(virtq_push(&c->q, head, 1), 0);
		assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	}
	assert_int_equal(c->q.used_idx, 1);
	assert_true(virtq_needs_interrupt(&c->q));
}

static void test_reset_and_reenable(void **state)
{
	struct ctx *c = *state;
	struct virtq_chain ch;

	roundtrip(&c->b, &c->q);
	struct vqb_buf b = { data(&c->b, 1), 1, false };
	uint16_t head;
	assert_int_equal(vqb_send(&c->b, &b, 1, &head), 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	virtq_reset(&c->q);
	assert_false(c->q.ready);
	assert_int_equal(c->q.size, 0);
	assert_ptr_equal(c->q.mem, &c->b.mem);
	assert_int_equal(virtq_pop(&c->q, &ch), -VIRTQ_ERR_NOT_READY);
	assert_false(virtq_needs_interrupt(&c->q));
	assert_false(virtq_enable_notify(&c->q));
	assert_int_equal(virtq_avail_pending(&c->q), 0);
	/* driver re-initialises its rings */
	vqb_destroy(&c->b);
	assert_int_equal(vqb_init(&c->b, RAM_GPA, RAM_SIZE, QSIZE), 0);
	assert_int_equal(vqb_attach(&c->b, &c->q, false), 0);
	assert_int_equal(c->q.last_avail_idx, 0);
	assert_int_equal(c->q.in_flight, 0);
	roundtrip(&c->b, &c->q);
	/* enabling a ready queue again starts over */
	assert_int_equal(virtq_enable(&c->q), 0);
	assert_int_equal(c->q.last_avail_idx, 0);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = 0; e < VIRTQ_ERR_MAX; e++) {
		const char *s = virtq_strerror(-e);
		assert_non_null(s);
		assert_string_equal(s, virtq_strerror(e));
		for (int f = 0; f < e; f++)
			assert_string_not_equal(s, virtq_strerror(f));
	}
	assert_string_equal(virtq_strerror(VIRTQ_ERR_MAX), "unknown virtqueue error");
	assert_string_equal(virtq_strerror(-1000), "unknown virtqueue error");
}

static void test_layout_helpers(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct virtq_desc), 16);
	assert_int_equal(sizeof(struct virtq_used_elem), 8);
	assert_int_equal(virtq_desc_bytes(256), 4096);
	assert_int_equal(virtq_avail_bytes(256, false), 516);
	assert_int_equal(virtq_avail_bytes(256, true), 518);
	assert_int_equal(virtq_used_bytes(256, false), 2052);
	assert_int_equal(virtq_used_bytes(256, true), 2054);
	assert_int_equal(virtq_desc_bytes(32768), 512 * 1024);
}

/* builder self-checks that other tests rely on */
static void test_builder(void **state)
{
	(void)state;
	struct vqb b;
	struct vqb_desc d;

	/* any GPA base; host alignment follows the GPA */
	assert_int_equal(vqb_init(&b, 0x12345, 1 << 16, 8), 0);
	assert_int_equal(b.desc_gpa & 15, 0);
	assert_int_equal((uintptr_t)vqb_host(&b, b.desc_gpa, 16) & 15, 0);
	assert_int_equal(b.avail_gpa, b.desc_gpa + 128);
	assert_int_equal(b.used_gpa & 3, 0);
	assert_null(vqb_host(&b, 0x12344, 1));
	assert_non_null(vqb_host(&b, 0x12345, 1 << 16));
	assert_int_equal(vqb_write_desc(&b, 3, 1, 2, 3, 4), 0);
	assert_int_equal(vqb_read_desc(&b, 3, &d), 0);
	assert_int_equal(d.addr, 1);
	assert_int_equal(d.len, 2);
	assert_int_equal(d.flags, 3);
	assert_int_equal(d.next, 4);
	assert_int_equal(vqb_alloc(&b, 1ull << 20, 1), VQB_BAD_GPA);
	assert_int_equal(vqb_alloc(&b, 8, 3), VQB_BAD_GPA);
	uint16_t head, h2;
	struct vqb_buf bufs[8];
	for (int i = 0; i < 8; i++)
		bufs[i] = (struct vqb_buf){ vqb_alloc(&b, 1, 1), 1, false };
	assert_int_equal(vqb_add_chain(&b, bufs, 8, &head), 0);
	assert_int_equal(vqb_add_chain(&b, bufs, 1, &h2), -ENOSPC);
	vqb_free_chain(&b, head);
	assert_int_equal(vqb_add_chain(&b, bufs, 1, &h2), 0);
	assert_int_equal(vqb_add_chain(&b, bufs, 0, &h2), -EINVAL);
	vqb_place_rings(&b, 0, 0, 0);
	assert_int_equal(vqb_write_desc(&b, 0, 0, 0, 0, 0), -EFAULT);
	assert_int_equal(vqb_publish(&b, 0), -EFAULT);
	vqb_destroy(&b);
	assert_int_equal(vqb_init(&b, 0, 0, 8), -EINVAL);
	assert_int_equal(vqb_init(&b, UINT64_MAX - 10, 100, 8), -EINVAL);
	assert_int_equal(vqb_init(&b, 0, 256, 64), -ENOSPC);
}

/* ------------------------------------------------------------------ */
/* a hostile guest rewriting a descriptor while the device walks it     */

struct flipper {
	struct vqb *b;
	uint64_t good;
	volatile int stop;
	unsigned long flips;
};

static void *flip_thread(void *p)
{
	struct flipper *f = p;
	struct virtq_desc *d = vqb_host(f->b, f->b->desc_gpa, 16);
	static const struct {
		uint64_t addr_delta; /* added to good */
		uint32_t len;
		uint16_t flags;
		uint16_t next;
	} variants[] = {
		{ 0, 64, 0, 0 },                       /* valid */
		{ 0, 0xffffffffu, 0, 0 },              /* huge */
		{ 1ull << 40, 64, 0, 0 },              /* outside RAM */
		{ 0, 64, F_NEXT, 0 },                  /* self loop */
		{ 0, 64, F_NEXT, 0xffff },             /* next out of range */
		{ 0, 24, F_IND, 0 },                   /* bad indirect */
		{ 0, 64, F_IND | F_NEXT, 1 },          /* indirect + next */
		{ (uint64_t)-RAM_GPA - 32, 64, 0, 0 }, /* wraps */
	};
	unsigned int i = 0;

	while (!f->stop) {
		unsigned int v = i++ % (sizeof(variants) / sizeof(variants[0]));
		__atomic_store_n(&d->addr, f->good + variants[v].addr_delta, __ATOMIC_RELAXED);
		__atomic_store_n(&d->len, variants[v].len, __ATOMIC_RELAXED);
		__atomic_store_n(&d->flags, variants[v].flags, __ATOMIC_RELAXED);
		__atomic_store_n(&d->next, variants[v].next, __ATOMIC_RELAXED);
		f->flips++;
	}
	return NULL;
}

static void test_hostile_concurrent_rewrite(void **state)
{
	struct ctx *c = *state;
	struct flipper f = { .b = &c->b, .good = data(&c->b, 64) };
	pthread_t th;
	unsigned int ok = 0, bad = 0;
	uint8_t *ram_lo = c->b.ram, *ram_hi = c->b.ram + RAM_SIZE;
	uint64_t t0 = unit_now_ms();

	assert_int_equal(pthread_create(&th, NULL, flip_thread, &f), 0);
	for (unsigned int i = 0; i < 200000 && unit_now_ms() - t0 < 1500; i++) {
		struct virtq_chain ch;
		vqb_publish(&c->b, 0);
		int r = virtq_pop(&c->q, &ch);
		if (r == 1) {
			/* whatever was read, it was validated as read */
			for (unsigned int k = 0; k < ch.nr_bufs; k++) {
				assert_true(ch.bufs[k].host >= ram_lo);
				assert_true(ch.bufs[k].host + ch.bufs[k].len <= ram_hi);
			}
			uint8_t tmp[64];
			virtq_chain_read(&ch, 0, tmp, sizeof(tmp));
			assert_int_equal(virtq_push(&c->q, 0, 0), 0);
			ok++;
		} else {
			assert_true(r < 0 && r > -VIRTQ_ERR_MAX);
			assert_true(r != -VIRTQ_ERR_NOT_READY);
			bad++;
			/* device reset + driver re-init of the indices */
			assert_int_equal(virtq_enable(&c->q), 0);
			vqb_set_avail_idx(&c->b, 0);
		}
		c->b.last_used = c->q.used_idx;
	}
	f.stop = 1;
	pthread_join(th, NULL);
	print_message("hostile rewrite: %u accepted, %u rejected, %lu rewrites\n", ok, bad,
		      f.flips);
	assert_true(ok + bad > 0);
}

/* ------------------------------------------------------------------ */
/* device misuse of the queue API (device bugs, typed errors, queue usable) */

static void malformed_push_unpopped_id(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(virtq_push(&c->q, 0, 0), -VIRTQ_ERR_USED_ID);
	assert_int_equal(vqb_used_idx(&c->b), 0);
	roundtrip(&c->b, &c->q);
}

static void malformed_push_twice(void **state)
{
	struct ctx *c = *state;
	struct virtq_chain ch;
	struct vqb_buf b = { data(&c->b, 4), 4, true };
	uint16_t head;

	assert_int_equal(vqb_send(&c->b, &b, 1, &head), 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(virtq_push(&c->q, head, 1), 0);
	assert_int_equal(virtq_push(&c->q, head, 1), -VIRTQ_ERR_USED_ID);
	assert_int_equal(vqb_used_idx(&c->b), 1);
	assert_int_equal(c->q.in_flight, 0);
	uint32_t id, len;
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	roundtrip(&c->b, &c->q);
}

static void malformed_push_id_out_of_range(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(virtq_push(&c->q, QSIZE, 0), -VIRTQ_ERR_USED_ID);
	assert_int_equal(virtq_push(&c->q, 0xffff, 0), -VIRTQ_ERR_USED_ID);
	roundtrip(&c->b, &c->q);
}

static void malformed_push_not_ready(void **state)
{
	struct ctx *c = *state;
	struct virtq q;
	virtq_init(&q, &c->b.mem);
	assert_int_equal(virtq_push(&q, 0, 0), -VIRTQ_ERR_NOT_READY);
	roundtrip(&c->b, &c->q);
}

static void malformed_pop_not_ready(void **state)
{
	struct ctx *c = *state;
	struct virtq q;
	struct virtq_chain ch;
	virtq_init(&q, &c->b.mem);
	assert_int_equal(virtq_pop(&q, &ch), -VIRTQ_ERR_NOT_READY);
	assert_int_equal(virtq_enable(&q), -VIRTQ_ERR_SIZE); /* nothing configured */
	q.size = QSIZE;
	q.desc_gpa = c->b.desc_gpa;
	q.avail_gpa = c->b.avail_gpa;
	q.used_gpa = c->b.used_gpa;
	assert_int_equal(virtq_enable(&q), 0);
	roundtrip(&c->b, &q);
	virtq_reset(&q);
}

/* ------------------------------------------------------------------ */
/* malformed-queue catalogue: each case on the bare queue and through   */
/* virtio-mmio with an echo device, then recovery                       */

struct mcase {
	uint16_t qsize;   /* 0 → QSIZE (use size0 for a real 0) */
	bool size0;
	uint64_t ram;     /* 0 → RAM_SIZE */
	bool event_idx;
	void (*build)(struct vqb *b);
	int err;          /* expected -VIRTQ_ERR_* */
	bool at_enable;   /* detected when the queue is enabled */
	bool direct_only; /* no transport pass (needs the device to hold chains) */
	unsigned int ok_first; /* valid pops before the bad one (direct pass) */
};

struct echo {
	struct virtio_transport *t;
	int last_err;
	unsigned int notifies;
};

static uint64_t echo_features(void *p)
{
	(void)p;
	return (1ull << VIRTIO_F_RING_EVENT_IDX) | (1ull << VIRTIO_F_RING_INDIRECT_DESC);
}

static int echo_activate(void *p, uint64_t f)
{
	(void)p;
	(void)f;
	return 0;
}

static void echo_notify(void *p, uint16_t qi)
{
	struct echo *e = p;
	struct virtq *q = virtio_transport_queue(e->t, qi);
	struct virtq_chain ch;
	int r;

	e->notifies++;
	while ((r = virtq_pop(q, &ch)) == 1) {
		uint8_t buf[64];
		uint32_t n = virtq_chain_read(&ch, 0, buf, sizeof(buf));
		n = virtq_chain_write(&ch, 0, buf, n);
		assert_int_equal(virtq_push(q, ch.head, n), 0);
	}
	if (r < 0) {
		e->last_err = r;
		virtio_transport_needs_reset(e->t, virtq_strerror(r));
	} else {
		virtio_transport_notify_used(e->t, qi);
	}
}

static void echo_bind(void *p, struct virtio_transport *t)
{
	((struct echo *)p)->t = t;
}

static const struct virtio_dev_ops echo_ops = {
	.name = "echo",
	.device_id = 0x1234,
	.num_queues = 1,
	.queue_max_size = VIRTQ_MAX_SIZE,
	.features = echo_features,
	.activate = echo_activate,
	.queue_notify = echo_notify,
	.bind = echo_bind,
};

static void mmio_roundtrip(struct vqb *b, struct virtio_transport *t)
{
	static const char msg[] = "pong";
	uint64_t in = vqb_alloc_copy(b, msg, sizeof(msg));
	uint64_t out = data(b, 8);
	struct vqb_buf bufs[] = { { in, sizeof(msg), false }, { out, 8, true } };
	uint16_t head;
	uint32_t id, len;

	if (b->event_idx) /* interrupt me after this one */
		vqb_set_used_event(b, b->last_used);
	assert_int_equal(vqb_send(b, bufs, 2, &head), 0);
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(vqb_get_used(b, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, sizeof(msg));
	assert_memory_equal(vqb_host(b, out, sizeof(msg)), msg, sizeof(msg));
	assert_true(vqb_mmio_read(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	vqb_mmio_write(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
}

static void case_builder(const struct mcase *m, struct vqb *b)
{
	uint16_t qsize = m->size0 ? 0 : m->qsize ? m->qsize : QSIZE;
	assert_int_equal(vqb_init(b, RAM_GPA, m->ram ? m->ram : RAM_SIZE, qsize), 0);
	b->event_idx = m->event_idx;
	if (m->build)
		m->build(b);
}

static void run_direct(const struct mcase *m)
{
	struct vqb b;
	struct virtq q;
	struct virtq_chain ch;

	case_builder(m, &b);
	int r = vqb_attach(&b, &q, m->event_idx);
	if (m->at_enable) {
		assert_int_equal(r, m->err);
		assert_false(q.ready);
		assert_int_equal(virtq_pop(&q, &ch), -VIRTQ_ERR_NOT_READY);
	} else {
		assert_int_equal(r, 0);
		for (unsigned int i = 0; i < m->ok_first; i++)
			assert_int_equal(virtq_pop(&q, &ch), 1);
		uint32_t in_flight = q.in_flight;
		assert_int_equal(virtq_pop(&q, &ch), m->err);
		/* nothing consumed, deterministic: the same error again */
		assert_int_equal(q.last_avail_idx, m->ok_first);
		assert_int_equal(q.in_flight, in_flight);
		assert_int_equal(virtq_pop(&q, &ch), m->err);
	}
	/* device reset, driver re-initialises: a valid request works */
	virtq_reset(&q);
	vqb_destroy(&b);
	assert_int_equal(vqb_init(&b, RAM_GPA, RAM_SIZE, QSIZE), 0);
	assert_int_equal(vqb_attach(&b, &q, m->event_idx), 0);
	roundtrip(&b, &q);
	virtq_reset(&q);
	vqb_destroy(&b);
}

static void run_transport(const struct mcase *m)
{
	struct vqb b;
	struct echo e = { 0 };
	struct unit_irq_rec irq;
	struct unit_log_capture log;
	uint64_t feat = m->event_idx ? 1ull << VIRTIO_F_RING_EVENT_IDX : 0;

	unit_irq_rec_init(&irq);
	assert_int_equal(unit_log_capture_open(&log, LOG_WARN), 0);
	case_builder(m, &b);
	struct virtio_transport *t =
		virtio_mmio_new(&echo_ops, &e, &b.mem, unit_irq_rec_line(&irq, 5), &log.log);
	assert_non_null(t);

	assert_true(vqb_mmio_negotiate(t, feat) & VIRTIO_STATUS_FEATURES_OK);
	uint32_t ready = vqb_mmio_setup_queue(t, 0, &b);
	if (m->at_enable) {
		assert_int_equal(ready, 0);
	} else {
		assert_int_equal(ready, 1);
		vqb_mmio_driver_ok(t);
		vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		assert_int_equal(e.last_err, m->err);
	}
	/* NEEDS_RESET shown, config interrupt raised, line high, reason logged */
	uint32_t st = vqb_mmio_read(t, VIRTIO_MMIO_STATUS);
	assert_true(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(vqb_mmio_read(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(irq.level, 1);
	assert_non_null(strstr(unit_log_capture_text(&log), virtq_strerror(m->err)));
	/* processing stopped: notifications no longer reach the device */
	unsigned int n = e.notifies;
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(e.notifies, n);
	assert_false(virtio_transport_active(t));

	/* driver reset clears everything and lowers the line */
	vqb_mmio_write(t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(vqb_mmio_read(t, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(vqb_mmio_read(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(irq.level, 0);
	/* re-initialisation with sane rings: requests work again */
	vqb_destroy(&b);
	assert_int_equal(vqb_init(&b, RAM_GPA, RAM_SIZE, QSIZE), 0);
	assert_true(vqb_mmio_negotiate(t, feat) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqb_mmio_setup_queue(t, 0, &b), 1);
	assert_true(vqb_mmio_driver_ok(t) & VIRTIO_STATUS_DRIVER_OK);
	e.last_err = 0;
	mmio_roundtrip(&b, t);
	mmio_roundtrip(&b, t);
	assert_int_equal(e.last_err, 0);

	virtio_mmio_free(t);
	vqb_destroy(&b);
	unit_log_capture_close(&log);
}

static void run_case(const struct mcase *m)
{
	run_direct(m);
	if (!m->direct_only)
		run_transport(m);
}

#define MCASE(what, ...)                                   \
	static void malformed_##what(void **state)         \
	{                                                  \
		static const struct mcase m = { __VA_ARGS__ }; \
		(void)state;                               \
		run_case(&m);                              \
	}

/* helpers for the build callbacks (queue size QSIZE unless stated) */
static void pub(struct vqb *b, uint16_t head)
{
	assert_int_equal(vqb_publish(b, head), 0);
}

static uint64_t buf(struct vqb *b)
{
	return data(b, 64);
}

/* --- ring placement and size (detected at enable / QueueReady) --- */
MCASE(size_zero, .size0 = true, .err = -VIRTQ_ERR_SIZE, .at_enable = true)
MCASE(size_three, .qsize = 3, .err = -VIRTQ_ERR_SIZE, .at_enable = true)
MCASE(size_six, .qsize = 6, .err = -VIRTQ_ERR_SIZE, .at_enable = true)
MCASE(size_max_u16, .qsize = 65535, .ram = 4 << 20, .err = -VIRTQ_ERR_SIZE, .at_enable = true)

static void b_desc_mis8(struct vqb *b)
{
	b->desc_gpa += 8;
}
MCASE(desc_misaligned_8, .build = b_desc_mis8, .err = -VIRTQ_ERR_ALIGN, .at_enable = true)

static void b_desc_mis1(struct vqb *b)
{
	b->desc_gpa += 1;
}
MCASE(desc_misaligned_1, .build = b_desc_mis1, .err = -VIRTQ_ERR_ALIGN, .at_enable = true)

static void b_avail_mis(struct vqb *b)
{
	b->avail_gpa += 1;
}
MCASE(avail_misaligned, .build = b_avail_mis, .err = -VIRTQ_ERR_ALIGN, .at_enable = true)

static void b_used_mis(struct vqb *b)
{
	b->used_gpa += 2;
}
MCASE(used_misaligned, .build = b_used_mis, .err = -VIRTQ_ERR_ALIGN, .at_enable = true)

static void b_desc_out(struct vqb *b)
{
	b->desc_gpa = 0x1000;
}
MCASE(desc_outside_ram, .build = b_desc_out, .err = -VIRTQ_ERR_RING_ADDR, .at_enable = true)

static void b_desc_end(struct vqb *b)
{
	b->desc_gpa = RAM_END - 16 * QSIZE + 16;
}
MCASE(desc_straddles_ram_end, .build = b_desc_end, .err = -VIRTQ_ERR_RING_ADDR,
      .at_enable = true)

static void b_desc_start(struct vqb *b)
{
	b->desc_gpa = RAM_GPA - 16 * 4;
}
MCASE(desc_straddles_ram_start, .build = b_desc_start, .err = -VIRTQ_ERR_RING_ADDR,
      .at_enable = true)

static void b_desc_wrap(struct vqb *b)
{
	b->desc_gpa = 0xfffffffffffffff0ull;
}
MCASE(desc_gpa_wraps, .build = b_desc_wrap, .err = -VIRTQ_ERR_RING_ADDR, .at_enable = true)

static void b_avail_out(struct vqb *b)
{
	b->avail_gpa = RAM_END;
}
MCASE(avail_outside_ram, .build = b_avail_out, .err = -VIRTQ_ERR_RING_ADDR, .at_enable = true)

static void b_avail_end(struct vqb *b)
{
	b->avail_gpa = RAM_END - (4 + 2 * QSIZE) + 2;
}
MCASE(avail_straddles_ram_end, .build = b_avail_end, .err = -VIRTQ_ERR_RING_ADDR,
      .at_enable = true)

static void b_avail_wrap(struct vqb *b)
{
	b->avail_gpa = 0xfffffffffffffffeull;
}
MCASE(avail_gpa_wraps, .build = b_avail_wrap, .err = -VIRTQ_ERR_RING_ADDR, .at_enable = true)

static void b_used_out(struct vqb *b)
{
	b->used_gpa = 0;
}
MCASE(used_outside_ram, .build = b_used_out, .err = -VIRTQ_ERR_RING_ADDR, .at_enable = true)

static void b_used_end(struct vqb *b)
{
	b->used_gpa = RAM_END - (4 + 8 * QSIZE) + 4;
}
MCASE(used_straddles_ram_end, .build = b_used_end, .err = -VIRTQ_ERR_RING_ADDR,
      .at_enable = true)

static void b_used_wrap(struct vqb *b)
{
	b->used_gpa = 0xfffffffffffffffcull;
}
MCASE(used_gpa_wraps, .build = b_used_wrap, .err = -VIRTQ_ERR_RING_ADDR, .at_enable = true)

static void b_used_event_out(struct vqb *b)
{
	b->avail_gpa = RAM_END - (4 + 2 * QSIZE); /* fits without used_event */
}
MCASE(used_event_outside_ram, .event_idx = true, .build = b_used_event_out,
      .err = -VIRTQ_ERR_RING_ADDR, .at_enable = true)

static void b_avail_event_out(struct vqb *b)
{
	b->used_gpa = RAM_END - (4 + 8 * QSIZE); /* fits without avail_event */
}
MCASE(avail_event_outside_ram, .event_idx = true, .build = b_avail_event_out,
      .err = -VIRTQ_ERR_RING_ADDR, .at_enable = true)

/* --- avail ring --- */
static void b_avail_idx_ahead(struct vqb *b)
{
	uint16_t h;
	struct vqb_buf v = { buf(b), 8, false };
	assert_int_equal(vqb_add_chain(b, &v, 1, &h), 0);
	for (int i = 0; i < QSIZE; i++)
		vqb_set_avail_entry(b, i, h);
	vqb_set_avail_idx(b, QSIZE + 1);
}
MCASE(avail_idx_size_plus_one, .build = b_avail_idx_ahead, .err = -VIRTQ_ERR_AVAIL_IDX)

static void b_avail_idx_max(struct vqb *b)
{
	vqb_set_avail_idx(b, 0xffff);
}
MCASE(avail_idx_max, .build = b_avail_idx_max, .err = -VIRTQ_ERR_AVAIL_IDX)

static void b_avail_idx_half(struct vqb *b)
{
	vqb_set_avail_idx(b, 0x8000);
}
MCASE(avail_idx_half_range, .build = b_avail_idx_half, .err = -VIRTQ_ERR_AVAIL_IDX)

static void b_head_size(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, 0, 0);
	pub(b, QSIZE);
}
MCASE(head_eq_size, .build = b_head_size, .err = -VIRTQ_ERR_HEAD)

static void b_head_max(struct vqb *b)
{
	pub(b, 0xffff);
}
MCASE(head_max, .build = b_head_max, .err = -VIRTQ_ERR_HEAD)

static void b_head_second(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, 0, 0);
	pub(b, 0);
	pub(b, 1000);
}
MCASE(head_out_of_range_after_valid, .build = b_head_second, .err = -VIRTQ_ERR_HEAD,
      .ok_first = 1, .direct_only = true)

static void b_head_busy(struct vqb *b)
{
	vqb_write_desc(b, 3, buf(b), 8, 0, 0);
	pub(b, 3);
	pub(b, 3);
}
MCASE(head_still_in_use, .build = b_head_busy, .err = -VIRTQ_ERR_HEAD_BUSY, .ok_first = 1,
      .direct_only = true)

/* --- next links and loops --- */
static void b_next_size(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, F_NEXT, QSIZE);
	pub(b, 0);
}
MCASE(next_eq_size, .build = b_next_size, .err = -VIRTQ_ERR_HEAD)

static void b_next_max(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, F_NEXT, 0xffff);
	pub(b, 0);
}
MCASE(next_max, .build = b_next_max, .err = -VIRTQ_ERR_HEAD)

static void b_next_late(struct vqb *b)
{
	uint64_t d = buf(b);
	vqb_write_desc(b, 0, d, 8, F_NEXT, 1);
	vqb_write_desc(b, 1, d, 8, F_NEXT, 2);
	vqb_write_desc(b, 2, d, 8, F_NEXT, 99);
	pub(b, 0);
}
MCASE(next_out_of_range_late, .build = b_next_late, .err = -VIRTQ_ERR_HEAD)

static void b_self_loop(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, F_NEXT, 0);
	pub(b, 0);
}
MCASE(self_loop, .build = b_self_loop, .err = -VIRTQ_ERR_LOOP)

static void b_self_loop_last(struct vqb *b)
{
	vqb_write_desc(b, QSIZE - 1, buf(b), 8, F_NEXT | F_WRITE, QSIZE - 1);
	pub(b, QSIZE - 1);
}
MCASE(self_loop_last_desc, .build = b_self_loop_last, .err = -VIRTQ_ERR_LOOP)

static void b_two_cycle(struct vqb *b)
{
	uint64_t d = buf(b);
	vqb_write_desc(b, 0, d, 8, F_NEXT, 1);
	vqb_write_desc(b, 1, d, 8, F_NEXT, 0);
	pub(b, 0);
}
MCASE(two_cycle, .build = b_two_cycle, .err = -VIRTQ_ERR_LOOP)

static void b_long_cycle(struct vqb *b)
{
	uint64_t d = buf(b);
	for (int i = 0; i < QSIZE; i++)
		vqb_write_desc(b, (uint16_t)i, d, 8, F_NEXT, (uint16_t)((i + 1) % QSIZE));
	pub(b, 5);
}
MCASE(long_cycle_whole_table, .build = b_long_cycle, .err = -VIRTQ_ERR_LOOP)

static void b_cycle_mid(struct vqb *b)
{
	uint64_t d = buf(b);
	for (int i = 0; i < 9; i++)
		vqb_write_desc(b, (uint16_t)i, d, 8, F_NEXT, (uint16_t)(i < 8 ? i + 1 : 4));
	pub(b, 0);
}
MCASE(cycle_back_to_middle, .build = b_cycle_mid, .err = -VIRTQ_ERR_LOOP)

static void b_zero_len_loop(struct vqb *b)
{
	vqb_write_desc(b, 0, 0, 0, F_NEXT, 1);
	vqb_write_desc(b, 1, 0, 0, F_NEXT, 0);
	pub(b, 0);
}
MCASE(loop_of_zero_length_descs, .build = b_zero_len_loop, .err = -VIRTQ_ERR_LOOP)

static void b_max_size_cycle(struct vqb *b)
{
	uint64_t d = buf(b);
	for (uint32_t i = 0; i < VIRTQ_MAX_SIZE; i++)
		vqb_write_desc(b, (uint16_t)i, d, 1, F_NEXT,
			       (uint16_t)((i + 1) % VIRTQ_MAX_SIZE));
	pub(b, 0);
}
MCASE(cycle_in_max_size_queue, .qsize = VIRTQ_MAX_SIZE, .ram = 4 << 20,
      .build = b_max_size_cycle, .err = -VIRTQ_ERR_LOOP)

/* --- buffer addresses --- */
static void one_desc(struct vqb *b, uint64_t addr, uint32_t len, uint16_t flags)
{
	vqb_write_desc(b, 0, addr, len, flags, 0);
	pub(b, 0);
}

static void b_buf_out(struct vqb *b)
{
	one_desc(b, 0x1000, 8, 0);
}
MCASE(buf_outside_ram, .build = b_buf_out, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_buf_end(struct vqb *b)
{
	one_desc(b, RAM_END - 4, 8, 0);
}
MCASE(buf_straddles_ram_end, .build = b_buf_end, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_buf_start(struct vqb *b)
{
	one_desc(b, RAM_GPA - 1, 2, 0);
}
MCASE(buf_straddles_ram_start, .build = b_buf_start, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_buf_after(struct vqb *b)
{
	one_desc(b, RAM_END, 1, 0);
}
MCASE(buf_just_after_ram, .build = b_buf_after, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_buf_wrap(struct vqb *b)
{
	one_desc(b, 0xfffffffffffffffcull, 8, 0);
}
MCASE(buf_gpa_len_wraps, .build = b_buf_wrap, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_buf_addr_max(struct vqb *b)
{
	one_desc(b, UINT64_MAX, 1, 0);
}
MCASE(buf_addr_max, .build = b_buf_addr_max, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_buf_len_max(struct vqb *b)
{
	one_desc(b, RAM_GPA, UINT32_MAX, 0);
}
MCASE(buf_len_max, .build = b_buf_len_max, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_wbuf_out(struct vqb *b)
{
	one_desc(b, 1ull << 48, 8, F_WRITE);
}
MCASE(writable_buf_outside_ram, .build = b_wbuf_out, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_second_out(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, F_NEXT, 1);
	vqb_write_desc(b, 1, RAM_END + 4096, 8, F_WRITE, 0);
	pub(b, 0);
}
MCASE(second_buf_outside_ram, .build = b_second_out, .err = -VIRTQ_ERR_DESC_ADDR)

/* --- total length --- */
static void b_over_4g(struct vqb *b)
{
	uint64_t big = vqb_alloc(b, 0x80000000ull, 4096);
	assert_true(big != VQB_BAD_GPA);
	vqb_write_desc(b, 0, big, 0x80000000u, F_NEXT, 1);
	vqb_write_desc(b, 1, big, 0x80000000u, 0, 0);
	pub(b, 0);
}
MCASE(chain_len_over_4g, .ram = BIG_RAM, .build = b_over_4g, .err = -VIRTQ_ERR_CHAIN_LEN)

static void b_over_4g_mixed(struct vqb *b)
{
	uint64_t big = vqb_alloc(b, 0x80000000ull, 4096);
	vqb_write_desc(b, 0, big, 0x7fffffffu, F_NEXT, 1);
	vqb_write_desc(b, 1, big, 0x7fffffffu, F_NEXT | F_WRITE, 2);
	vqb_write_desc(b, 2, big, 2, F_WRITE, 0);
	pub(b, 0);
}
MCASE(chain_len_over_4g_by_one, .ram = BIG_RAM, .build = b_over_4g_mixed,
      .err = -VIRTQ_ERR_CHAIN_LEN)

static void b_over_4g_indirect(struct vqb *b)
{
	uint64_t big = vqb_alloc(b, 0x80000000ull, 4096);
	uint64_t table = vqb_alloc(b, 48, 16);
	vqb_write_desc_at(b, table, big, 0x80000000u, F_NEXT, 1);
	vqb_write_desc_at(b, table + 16, big, 0x60000000u, F_NEXT | F_WRITE, 2);
	vqb_write_desc_at(b, table + 32, big, 0x60000000u, F_WRITE, 0);
	one_desc(b, table, 48, F_IND);
}
MCASE(chain_len_over_4g_indirect, .ram = BIG_RAM, .build = b_over_4g_indirect,
      .err = -VIRTQ_ERR_CHAIN_LEN)

/* --- direction --- */
static void b_r_after_w(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, F_NEXT | F_WRITE, 1);
	vqb_write_desc(b, 1, buf(b), 8, 0, 0);
	pub(b, 0);
}
MCASE(readable_after_writable, .build = b_r_after_w, .err = -VIRTQ_ERR_WRITE_ORDER)

static void b_r0_after_w(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, F_NEXT | F_WRITE, 1);
	vqb_write_desc(b, 1, 0, 0, 0, 0);
	pub(b, 0);
}
MCASE(zero_len_readable_after_writable, .build = b_r0_after_w, .err = -VIRTQ_ERR_WRITE_ORDER)

static void b_rwr(struct vqb *b)
{
	uint64_t d = buf(b);
	vqb_write_desc(b, 0, d, 8, F_NEXT, 1);
	vqb_write_desc(b, 1, d, 8, F_NEXT | F_WRITE, 2);
	vqb_write_desc(b, 2, d, 8, F_NEXT | F_WRITE, 3);
	vqb_write_desc(b, 3, d, 8, 0, 0);
	pub(b, 0);
}
MCASE(readable_after_two_writable, .build = b_rwr, .err = -VIRTQ_ERR_WRITE_ORDER)

static void b_ind_r_after_direct_w(struct vqb *b)
{
	uint64_t table = vqb_alloc(b, 16, 16);
	vqb_write_desc_at(b, table, buf(b), 8, 0, 0);
	vqb_write_desc(b, 0, buf(b), 8, F_NEXT | F_WRITE, 1);
	vqb_write_desc(b, 1, table, 16, F_IND, 0);
	pub(b, 0);
}
MCASE(indirect_readable_after_direct_writable, .build = b_ind_r_after_direct_w,
      .err = -VIRTQ_ERR_WRITE_ORDER)

static void b_ind_r_after_w(struct vqb *b)
{
	uint64_t table = vqb_alloc(b, 32, 16);
	vqb_write_desc_at(b, table, buf(b), 8, F_NEXT | F_WRITE, 1);
	vqb_write_desc_at(b, table + 16, buf(b), 8, 0, 0);
	one_desc(b, table, 32, F_IND);
}
MCASE(indirect_readable_after_writable, .build = b_ind_r_after_w,
      .err = -VIRTQ_ERR_WRITE_ORDER)

/* --- indirect tables --- */
static uint64_t table_of(struct vqb *b, unsigned int n)
{
	uint64_t table = vqb_alloc(b, 16ull * n, 16);
	uint64_t d = buf(b);
	for (unsigned int i = 0; i < n; i++)
		vqb_write_desc_at(b, table + 16ull * i, d, 8, i + 1 < n ? F_NEXT : 0,
				  (uint16_t)(i + 1));
	return table;
}

static void b_ind_next(struct vqb *b)
{
	uint64_t table = table_of(b, 2);
	vqb_write_desc(b, 0, table, 32, F_IND | F_NEXT, 1);
	vqb_write_desc(b, 1, buf(b), 8, 0, 0);
	pub(b, 0);
}
MCASE(indirect_with_next, .build = b_ind_next, .err = -VIRTQ_ERR_INDIRECT_NEXT)

static void b_ind_len0(struct vqb *b)
{
	one_desc(b, table_of(b, 2), 0, F_IND);
}
MCASE(indirect_len_zero, .build = b_ind_len0, .err = -VIRTQ_ERR_INDIRECT_LEN)

static void b_ind_len24(struct vqb *b)
{
	one_desc(b, table_of(b, 2), 24, F_IND);
}
MCASE(indirect_len_not_multiple_of_16, .build = b_ind_len24, .err = -VIRTQ_ERR_INDIRECT_LEN)

static void b_ind_len15(struct vqb *b)
{
	one_desc(b, table_of(b, 1), 15, F_IND);
}
MCASE(indirect_len_15, .build = b_ind_len15, .err = -VIRTQ_ERR_INDIRECT_LEN)

static void b_ind_too_many(struct vqb *b)
{
	one_desc(b, table_of(b, QSIZE + 1), 16 * (QSIZE + 1), F_IND);
}
MCASE(indirect_table_longer_than_queue, .build = b_ind_too_many,
      .err = -VIRTQ_ERR_INDIRECT_LEN)

static void b_ind_huge(struct vqb *b)
{
	one_desc(b, table_of(b, 2), 0xfffffff0u, F_IND);
}
MCASE(indirect_len_huge, .build = b_ind_huge, .err = -VIRTQ_ERR_INDIRECT_LEN)

static void b_ind_out(struct vqb *b)
{
	one_desc(b, 0x2000, 32, F_IND);
}
MCASE(indirect_table_outside_ram, .build = b_ind_out, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_ind_end(struct vqb *b)
{
	one_desc(b, RAM_END - 16, 32, F_IND);
}
MCASE(indirect_table_straddles_ram_end, .build = b_ind_end, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_ind_wrap(struct vqb *b)
{
	one_desc(b, UINT64_MAX - 15, 32, F_IND);
}
MCASE(indirect_table_gpa_wraps, .build = b_ind_wrap, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_nested(struct vqb *b)
{
	uint64_t inner = table_of(b, 1);
	uint64_t table = vqb_alloc(b, 16, 16);
	vqb_write_desc_at(b, table, inner, 16, F_IND, 0);
	one_desc(b, table, 16, F_IND);
}
MCASE(nested_indirect, .build = b_nested, .err = -VIRTQ_ERR_NESTED_INDIRECT)

static void b_nested_late(struct vqb *b)
{
	uint64_t inner = table_of(b, 1);
	uint64_t table = table_of(b, 3);
	vqb_write_desc_at(b, table + 32, inner, 16, F_IND, 0);
	one_desc(b, table, 48, F_IND);
}
MCASE(nested_indirect_in_later_entry, .build = b_nested_late,
      .err = -VIRTQ_ERR_NESTED_INDIRECT)

static void b_ind_next_out(struct vqb *b)
{
	uint64_t table = table_of(b, 2);
	vqb_write_desc_at(b, table, buf(b), 8, F_NEXT, 2);
	one_desc(b, table, 32, F_IND);
}
MCASE(indirect_next_past_table, .build = b_ind_next_out, .err = -VIRTQ_ERR_HEAD)

static void b_ind_self_loop(struct vqb *b)
{
	uint64_t table = table_of(b, 4);
	vqb_write_desc_at(b, table, buf(b), 8, F_NEXT, 0);
	one_desc(b, table, 64, F_IND);
}
MCASE(indirect_self_loop, .build = b_ind_self_loop, .err = -VIRTQ_ERR_LOOP)

static void b_ind_cycle(struct vqb *b)
{
	uint64_t table = table_of(b, 3);
	vqb_write_desc_at(b, table + 32, buf(b), 8, F_NEXT, 0);
	one_desc(b, table, 48, F_IND);
}
MCASE(indirect_cycle, .build = b_ind_cycle, .err = -VIRTQ_ERR_LOOP)

static void b_ind_buf_out(struct vqb *b)
{
	uint64_t table = table_of(b, 2);
	vqb_write_desc_at(b, table + 16, RAM_END - 1, 2, F_WRITE, 0);
	one_desc(b, table, 32, F_IND);
}
MCASE(indirect_buf_outside_ram, .build = b_ind_buf_out, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_ind_buf_wrap(struct vqb *b)
{
	uint64_t table = table_of(b, 1);
	vqb_write_desc_at(b, table, UINT64_MAX - 2, 8, 0, 0);
	one_desc(b, table, 16, F_IND);
}
MCASE(indirect_buf_gpa_len_wraps, .build = b_ind_buf_wrap, .err = -VIRTQ_ERR_DESC_ADDR)

static void b_too_many_bufs(struct vqb *b)
{
	/* 10 direct + a table of 8: 18 buffers in a queue of 16 */
	uint64_t d = buf(b);
	for (int i = 0; i < 10; i++)
		vqb_write_desc(b, (uint16_t)i, d, 8, F_NEXT, (uint16_t)(i + 1));
	vqb_write_desc(b, 10, table_of(b, 8), 128, F_IND, 0);
	pub(b, 0);
}
MCASE(direct_plus_indirect_longer_than_queue, .build = b_too_many_bufs,
      .err = -VIRTQ_ERR_LOOP)

static void b_ind_in_ind_direct(struct vqb *b)
{
	/* the indirect descriptor ends a chain that is itself a loop */
	uint64_t d = buf(b);
	vqb_write_desc(b, 0, d, 8, F_NEXT, 1);
	vqb_write_desc(b, 1, d, 8, F_NEXT, 0);
	vqb_write_desc(b, 2, table_of(b, 1), 16, F_IND, 0);
	pub(b, 0);
}
MCASE(loop_before_indirect, .build = b_ind_in_ind_direct, .err = -VIRTQ_ERR_LOOP)

/* an error in a later chain: earlier chains are still processed */
static void b_good_then_bad(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, 0, 0);
	vqb_write_desc(b, 1, buf(b), 8, F_NEXT, 1);
	pub(b, 0);
	pub(b, 1);
}
MCASE(loop_after_valid_chain, .build = b_good_then_bad, .err = -VIRTQ_ERR_LOOP, .ok_first = 1)

static void b_evidx_loop(struct vqb *b)
{
	vqb_write_desc(b, 0, buf(b), 8, F_NEXT, 0);
	pub(b, 0);
	vqb_set_used_event(b, 0);
}
MCASE(self_loop_with_event_idx, .event_idx = true, .build = b_evidx_loop, .err = -VIRTQ_ERR_LOOP)

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TE(f) cmocka_unit_test_setup_teardown(f, setup_evidx, teardown)
#define M(what) cmocka_unit_test(malformed_##what)
	const struct CMUnitTest tests[] = {
		T(test_direct_chain),
		T(test_readable_only_and_writable_only),
		T(test_indirect_chain),
		T(test_direct_then_indirect),
		T(test_indirect_write_flag_ignored),
		T(test_indirect_unaligned_table_and_order),
		T(test_chain_read_write_across_buffers),
		T(test_zero_length_descriptors),
		T(test_used_ring_contents_out_of_order),
		cmocka_unit_test_setup_teardown(test_index_wraparound, setup_small, teardown),
		T(test_full_queue),
		T(test_max_length_chains),
		cmocka_unit_test_setup_teardown(test_chain_len_4g_minus_1, setup_big, teardown),
		T(test_buffer_at_ram_edges),
		T(test_rings_at_ram_end),
		T(test_no_interrupt_flag),
		TE(test_event_idx_used_event),
		TE(test_event_idx_avail_event),
		TE(test_event_idx_signalled_wrap),
		T(test_reset_and_reenable),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_layout_helpers),
		cmocka_unit_test(test_builder),
		T(test_hostile_concurrent_rewrite),
		T(malformed_push_unpopped_id),
		T(malformed_push_twice),
		T(malformed_push_id_out_of_range),
		T(malformed_push_not_ready),
		T(malformed_pop_not_ready),
		M(size_zero),
		M(size_three),
		M(size_six),
		M(size_max_u16),
		M(desc_misaligned_8),
		M(desc_misaligned_1),
		M(avail_misaligned),
		M(used_misaligned),
		M(desc_outside_ram),
		M(desc_straddles_ram_end),
		M(desc_straddles_ram_start),
		M(desc_gpa_wraps),
		M(avail_outside_ram),
		M(avail_straddles_ram_end),
		M(avail_gpa_wraps),
		M(used_outside_ram),
		M(used_straddles_ram_end),
		M(used_gpa_wraps),
		M(used_event_outside_ram),
		M(avail_event_outside_ram),
		M(avail_idx_size_plus_one),
		M(avail_idx_max),
		M(avail_idx_half_range),
		M(head_eq_size),
		M(head_max),
		M(head_out_of_range_after_valid),
		M(head_still_in_use),
		M(next_eq_size),
		M(next_max),
		M(next_out_of_range_late),
		M(self_loop),
		M(self_loop_last_desc),
		M(two_cycle),
		M(long_cycle_whole_table),
		M(cycle_back_to_middle),
		M(loop_of_zero_length_descs),
		M(cycle_in_max_size_queue),
		M(buf_outside_ram),
		M(buf_straddles_ram_end),
		M(buf_straddles_ram_start),
		M(buf_just_after_ram),
		M(buf_gpa_len_wraps),
		M(buf_addr_max),
		M(buf_len_max),
		M(writable_buf_outside_ram),
		M(second_buf_outside_ram),
		M(chain_len_over_4g),
		M(chain_len_over_4g_by_one),
		M(chain_len_over_4g_indirect),
		M(readable_after_writable),
		M(zero_len_readable_after_writable),
		M(readable_after_two_writable),
		M(indirect_readable_after_direct_writable),
		M(indirect_readable_after_writable),
		M(indirect_with_next),
		M(indirect_len_zero),
		M(indirect_len_not_multiple_of_16),
		M(indirect_len_15),
		M(indirect_table_longer_than_queue),
		M(indirect_len_huge),
		M(indirect_table_outside_ram),
		M(indirect_table_straddles_ram_end),
		M(indirect_table_gpa_wraps),
		M(nested_indirect),
		M(nested_indirect_in_later_entry),
		M(indirect_next_past_table),
		M(indirect_self_loop),
		M(indirect_cycle),
		M(indirect_buf_outside_ram),
		M(indirect_buf_gpa_len_wraps),
		M(direct_plus_indirect_longer_than_queue),
		M(loop_before_indirect),
		M(loop_after_valid_chain),
		M(self_loop_with_event_idx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
