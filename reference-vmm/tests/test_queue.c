/* Unit tests for virtio/queue.c (split virtqueue, device side), driven by the
 * driver-side builder in tests/support/vq_builder.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/queue.h"
#include "vq_builder.h"

#include <stdlib.h>
#include <string.h>

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (1ull << 20)
#define QSIZE 16

struct ctx {
	struct vqb b;
	struct virtq q;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c || vqb_init(&c->b, RAM_GPA, RAM_SIZE, QSIZE))
		return -1;
	if (vqb_attach(&c->b, &c->q, false))
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	virtq_reset(&c->q);
	vqb_destroy(&c->b);
	free(c);
	return 0;
}

static void test_direct_chain(void **state)
{
	struct ctx *c = *state;
	static const char msg[] = "hello, device";
	uint64_t in = vqb_alloc_copy(&c->b, msg, sizeof(msg));
	uint64_t out = vqb_alloc(&c->b, 64, 1);
	struct vqb_buf bufs[] = { { in, sizeof(msg), false }, { out, 64, true } };
	struct virtq_chain ch;
	uint16_t head;
	uint32_t id, len;
	char got[sizeof(msg)];

	assert_int_equal(vqb_send(&c->b, bufs, 2, &head), 0);
	assert_int_equal(virtq_pop(&c->q, &ch), 1);
	assert_int_equal(ch.head, head);
	assert_int_equal(ch.nr_bufs, 2);
	assert_int_equal(ch.nr_readable, 1);
	assert_int_equal(ch.readable_len, sizeof(msg));
	assert_int_equal(ch.writable_len, 64);
	assert_int_equal(virtq_chain_read(&ch, 0, got, sizeof(got)), sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	assert_int_equal(virtq_chain_write(&ch, 0, "ok", 2), 2);
	assert_int_equal(virtq_pop(&c->q, &ch), 0);
	assert_int_equal(virtq_push(&c->q, head, 2), 0);
	assert_true(virtq_needs_interrupt(&c->q));
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 2);
	assert_memory_equal(vqb_host(&c->b, out, 2), "ok", 2);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_direct_chain, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
