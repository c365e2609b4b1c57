/* Unit tests for virtio/mmio.c (virtio-mmio v2 transport) with a fake echo
 * device: registers, status machine, features, queue setup, interrupts,
 * NEEDS_RESET and recovery, malformed driver behaviour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/mmio.h"
#include "unit_helpers.h"
#include "vq_builder.h"

#include <stdlib.h>
#include <string.h>

#define RAM_GPA 0x80000000ull
#define RAM_SIZE (1ull << 20)
#define QMAX 64
#define NQ 2
#define IRQ_NR 7
#define DEV_FEATURES ((1ull << 3) | (1ull << VIRTIO_F_RING_EVENT_IDX) | \
		      (1ull << VIRTIO_F_RING_INDIRECT_DESC))

/* a fake device: echoes readable bytes of each chain into its writable part */
struct fdev {
	struct virtio_transport *t;
	uint8_t config[24];
	int activate_ret;
	unsigned int activations, resets, binds, unbinds;
	unsigned int notifies[NQ];
	uint64_t activated_features;
	int last_err; /* last virtq error seen while processing */
};

static uint64_t fdev_features(void *p)
{
	(void)p;
	return DEV_FEATURES;
}

static void fdev_config_read(void *p, uint32_t off, uint8_t *data, uint32_t len)
{
	struct fdev *d = p;
	memcpy(data, d->config + off, len);
}

static void fdev_config_write(void *p, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct fdev *d = p;
	memcpy(d->config + off, data, len);
}

static int fdev_activate(void *p, uint64_t features)
{
	struct fdev *d = p;
	d->activations++;
	d->activated_features = features;
	return d->activate_ret;
}

static void fdev_process(struct fdev *d, uint16_t qi)
{
	struct virtq *q = virtio_transport_queue(d->t, qi);
	struct virtq_chain ch;
	int r;

	if (!q || !virtio_transport_active(d->t))
		return;
	while ((r = virtq_pop(q, &ch)) == 1) {
		uint8_t buf[256];
		uint32_t n = virtq_chain_read(&ch, 0, buf, sizeof(buf));
		n = virtq_chain_write(&ch, 0, buf, n);
		assert_int_equal(virtq_push(q, ch.head, n), 0);
	}
	if (r < 0) {
		d->last_err = r;
		virtio_transport_needs_reset(d->t, virtq_strerror(r));
		return;
	}
	virtio_transport_notify_used(d->t, qi);
}

static void fdev_notify(void *p, uint16_t q)
{
	struct fdev *d = p;
	assert_true(q < NQ);
	d->notifies[q]++;
	fdev_process(d, q);
}

static void fdev_reset(void *p)
{
	struct fdev *d = p;
	d->resets++;
}

static void fdev_bind(void *p, struct virtio_transport *t)
{
	struct fdev *d = p;
	d->t = t;
	if (t)
		d->binds++;
	else
		d->unbinds++;
}

static const struct virtio_dev_ops fdev_ops = {
	.name = "fake",
	.device_id = 42,
	.num_queues = NQ,
	.queue_max_size = QMAX,
	.features = fdev_features,
	.config_size = sizeof(((struct fdev *)0)->config),
	.config_read = fdev_config_read,
	.config_write = fdev_config_write,
	.activate = fdev_activate,
	.queue_notify = fdev_notify,
	.reset = fdev_reset,
	.bind = fdev_bind,
};

struct ctx {
	struct vqb b;
	struct fdev dev;
	struct unit_irq_rec irq;
	struct unit_log_capture log;
	struct virtio_transport *t;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c || vqb_init(&c->b, RAM_GPA, RAM_SIZE, 16))
		return -1;
	unit_irq_rec_init(&c->irq);
	if (unit_log_capture_open(&c->log, LOG_DEBUG))
		return -1;
	c->t = virtio_mmio_new(&fdev_ops, &c->dev, &c->b.mem, unit_irq_rec_line(&c->irq, IRQ_NR),
			       &c->log.log);
	if (!c->t)
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	virtio_mmio_free(c->t);
	unit_log_capture_close(&c->log);
	vqb_destroy(&c->b);
	free(c);
	return 0;
}

static uint32_t rd(struct ctx *c, uint64_t off)
{
	return vqb_mmio_read(c->t, off);
}

static void wr(struct ctx *c, uint64_t off, uint32_t v)
{
	vqb_mmio_write(c->t, off, v);
}

/* full driver init with queue 0 on the builder's rings */
static void bring_up(struct ctx *c, uint64_t features)
{
	uint32_t st = vqb_mmio_negotiate(c->t, features);
	assert_true(st & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	assert_true(vqb_mmio_driver_ok(c->t) & VIRTIO_STATUS_DRIVER_OK);
}

/* one echo request through queue 0 */
static void echo_ok(struct ctx *c)
{
	static const char msg[] = "ping";
	uint64_t in = vqb_alloc_copy(&c->b, msg, sizeof(msg));
	uint64_t out = vqb_alloc(&c->b, 16, 1);
	struct vqb_buf bufs[] = { { in, sizeof(msg), false }, { out, 16, true } };
	uint16_t head;
	uint32_t id, len;

	assert_int_equal(vqb_send(&c->b, bufs, 2, &head), 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, sizeof(msg));
	assert_memory_equal(vqb_host(&c->b, out, sizeof(msg)), msg, sizeof(msg));
	assert_true(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	assert_int_equal(c->irq.level, 1);
	wr(c, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
}

static void test_identity(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(rd(c, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(c, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(c, VIRTIO_MMIO_DEVICE_ID), 42);
	assert_int_equal(rd(c, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	assert_int_equal(c->dev.binds, 1);
	assert_ptr_equal(c->dev.t, c->t);
}

static void test_echo(void **state)
{
	struct ctx *c = *state;
	bring_up(c, DEV_FEATURES);
	assert_int_equal(c->dev.activations, 1);
	echo_ok(c);
	assert_int_equal(c->irq.level, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_identity),
		T(test_echo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
