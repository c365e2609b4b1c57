/* Unit tests for virtio/mmio.c (virtio-mmio v2 transport) with a fake echo
 * device: registers, status machine, features, queue setup, interrupts, config
 * space, NEEDS_RESET and recovery, and malformed driver behaviour (malformed_*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/bus.h"
#include "virtio/mmio.h"
#include "unit_helpers.h"
#include "vq_builder.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RAM_GPA 0x80000000ull
#define RAM_SIZE (1ull << 20)
#define RAM_END (RAM_GPA + RAM_SIZE)
#define QMAX 64
#define NQ 2
#define IRQ_NR 7
#define CFG_SIZE 24
#define DEV_FEATURES ((1ull << 3) | (1ull << VIRTIO_F_RING_EVENT_IDX) | \
		      (1ull << VIRTIO_F_RING_INDIRECT_DESC))

/* a fake device: echoes the readable bytes of each chain into its writable part */
struct fdev {
	struct virtio_transport *t;
	uint64_t features;
	uint8_t config[CFG_SIZE];
	int activate_ret;
	bool defer; /* record notifies, process later (backend thread test) */
	unsigned int activations, resets, binds, unbinds;
	unsigned int notifies[NQ];
	uint64_t activated_features;
	int last_err; /* last virtq error seen while processing */
};

static uint64_t fdev_features(void *p)
{
	return ((struct fdev *)p)->features;
}

static void fdev_config_read(void *p, uint32_t off, uint8_t *data, uint32_t len)
{
	struct fdev *d = p;
	assert_true(off + len <= CFG_SIZE);
	memcpy(data, d->config + off, len);
}

static void fdev_config_write(void *p, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct fdev *d = p;
	assert_true(off + len <= CFG_SIZE);
	memcpy(d->config + off, data, len);
}

static int fdev_activate(void *p, uint64_t features)
{
	struct fdev *d = p;
	d->activations++;
	d->activated_features = features;
	return d->activate_ret;
}

/* caller holds the transport lock */
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
	if (!d->defer)
		fdev_process(d, q);
}

static void fdev_reset(void *p)
{
	((struct fdev *)p)->resets++;
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
	.config_size = CFG_SIZE,
	.config_read = fdev_config_read,
	.config_write = fdev_config_write,
	.activate = fdev_activate,
	.queue_notify = fdev_notify,
	.reset = fdev_reset,
	.bind = fdev_bind,
};

struct ctx {
	struct vqb b; /* queue 0 rings; its mem is the transport's guest memory */
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
	c->dev.features = DEV_FEATURES;
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
	assert_int_equal(c->dev.unbinds, 1);
	assert_null(c->dev.t);
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

static void bus_rd(struct ctx *c, uint64_t off, void *data, unsigned int len)
{
	virtio_mmio_bus_ops.read(c->t, off, data, len);
}

static void bus_wr(struct ctx *c, uint64_t off, const void *data, unsigned int len)
{
	virtio_mmio_bus_ops.write(c->t, off, data, len);
}

static uint32_t status(struct ctx *c)
{
	return rd(c, VIRTIO_MMIO_STATUS);
}

/* full driver init with queue 0 on the builder's rings */
static void bring_up(struct ctx *c, uint64_t features)
{
	uint32_t st = vqb_mmio_negotiate(c->t, features);
	assert_true(st & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	assert_true(vqb_mmio_driver_ok(c->t) & VIRTIO_STATUS_DRIVER_OK);
}

/* one echo request through queue 0, interrupt acknowledged afterwards */
static void echo_ok(struct ctx *c)
{
	static const char msg[] = "ping";
	uint64_t in = vqb_alloc_copy(&c->b, msg, sizeof(msg));
	uint64_t out = vqb_alloc(&c->b, 16, 1);
	struct vqb_buf bufs[] = { { in, sizeof(msg), false }, { out, 16, true } };
	uint16_t head;
	uint32_t id, len;

	if (c->b.event_idx)
		vqb_set_used_event(&c->b, c->b.last_used);
	assert_int_equal(vqb_send(&c->b, bufs, 2, &head), 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, sizeof(msg));
	assert_memory_equal(vqb_host(&c->b, out, sizeof(msg)), msg, sizeof(msg));
	assert_true(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	assert_int_equal(c->irq.level, 1);
	wr(c, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(c->irq.level, 0);
}

/* The transport shows NEEDS_RESET with a config interrupt and the line high;
 * notifications stop; a driver reset and a fresh init make it work again. */
static void expect_needs_reset_then_recover(struct ctx *c)
{
	assert_true(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(c->irq.level, 1);
	assert_false(virtio_transport_active(c->t));
	assert_non_null(strstr(unit_log_capture_text(&c->log), "needs reset"));
	unsigned int n = c->dev.notifies[0];
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	virtio_mmio_queue_notify(c->t, 0);
	assert_int_equal(c->dev.notifies[0], n);

	unsigned int resets = c->dev.resets;
	wr(c, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(c->dev.resets, resets + 1);
	assert_int_equal(status(c), 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(c->irq.level, 0);
	vqb_destroy(&c->b);
	assert_int_equal(vqb_init(&c->b, RAM_GPA, RAM_SIZE, 16), 0);
	c->dev.last_err = 0;
	bring_up(c, DEV_FEATURES);
	assert_true(virtio_transport_active(c->t));
	echo_ok(c);
	echo_ok(c);
	assert_int_equal(c->dev.last_err, 0);
}

/* ------------------------------------------------------------------ */

static void test_identity(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(rd(c, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(c, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(c, VIRTIO_MMIO_DEVICE_ID), 42);
	assert_int_equal(rd(c, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	assert_int_equal(rd(c, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_CONFIG_GENERATION), 0);
	assert_int_equal(c->dev.binds, 1);
	assert_ptr_equal(c->dev.t, c->t);
	assert_int_equal(VIRTIO_MMIO_SIZE, 0x200);
	assert_int_equal(VIRTIO_MMIO_QUEUE_NOTIFY, 0x50);
	/* write-only registers read 0 */
	wr(c, VIRTIO_MMIO_QUEUE_NUM, 8);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_NUM), 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_SEL), 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_DRIVER_FEATURES), 0);
}

static void test_through_bus(void **state)
{
	struct ctx *c = *state;
	struct bus bus;
	uint8_t d[4];

	bus_init(&bus);
	assert_int_equal(bus_register(&bus, 0x0a000000, VIRTIO_MMIO_SIZE, &virtio_mmio_bus_ops,
				      c->t, "virtio-mmio"),
			 0);
	assert_int_equal(bus_read(&bus, 0x0a000000, d, 4), 0);
	assert_memory_equal(d, "virt", 4);
	assert_int_equal(bus_read(&bus, 0x0a000008, d, 4), 0);
	assert_int_equal(d[0], 42);
}

static void test_echo(void **state)
{
	struct ctx *c = *state;
	bring_up(c, DEV_FEATURES);
	assert_int_equal(c->dev.activations, 1);
	assert_true(virtio_transport_active(c->t));
	for (int i = 0; i < 40; i++)
		echo_ok(c);
	assert_int_equal(c->dev.notifies[0], 40);
}

static void test_device_features_64bit(void **state)
{
	struct ctx *c = *state;
	wr(c, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)DEV_FEATURES);
	wr(c, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(c, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 = bit 32 */
	wr(c, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd(c, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	wr(c, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0xffffffff);
	assert_int_equal(rd(c, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

/* transport/ring bits the transport does not implement are never offered */
static void test_transport_feature_mask(void **state)
{
	struct ctx *c = *state;
	c->dev.features = (1ull << 34) /* RING_PACKED */ | (1ull << 35) /* IN_ORDER */ |
			  (1ull << 39) /* NOTIFICATION_DATA */ | (1ull << 41) | (1ull << 24) |
			  (1ull << 33) /* ACCESS_PLATFORM */ | (1ull << 50) | (1ull << 0);
	wr(c, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_DEVICE_FEATURES), 1);
	wr(c, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(c, VIRTIO_MMIO_DEVICE_FEATURES), (1u << 0) | (1u << 1) | (1u << 18));
	/* a driver accepting a masked bit is refused */
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES, 1 | (1u << 2));
	wr(c, VIRTIO_MMIO_STATUS, status(c) | VIRTIO_STATUS_FEATURES_OK);
	assert_false(status(c) & VIRTIO_STATUS_FEATURES_OK);
}

static void test_negotiation_subset_and_event_idx(void **state)
{
	struct ctx *c = *state;
	/* without EVENT_IDX */
	assert_true(vqb_mmio_negotiate(c->t, 1ull << 3) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	vqb_mmio_driver_ok(c->t);
	assert_int_equal(c->dev.activated_features, (1ull << 3) | (1ull << VIRTIO_F_VERSION_1));
	assert_false(virtio_transport_queue(c->t, 0)->event_idx);
	echo_ok(c);
	/* with EVENT_IDX: used_event decides */
	vqb_destroy(&c->b);
	assert_int_equal(vqb_init(&c->b, RAM_GPA, RAM_SIZE, 16), 0);
	bring_up(c, DEV_FEATURES);
	assert_int_equal(c->dev.activated_features, DEV_FEATURES | (1ull << VIRTIO_F_VERSION_1));
	assert_true(virtio_transport_queue(c->t, 0)->event_idx);
	assert_true(c->b.event_idx);
	echo_ok(c);
	echo_ok(c);
	/* used_event left behind: no interrupt for the next request */
	vqb_set_used_event(&c->b, (uint16_t)(c->b.last_used - 1));
	struct vqb_buf bb = { vqb_alloc(&c->b, 4, 1), 4, true };
	uint16_t head;
	uint32_t id, len;
	assert_int_equal(vqb_send(&c->b, &bb, 1, &head), 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(c->irq.level, 0);
}

static void test_no_interrupt_suppression(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	echo_ok(c);
	vqb_set_avail_flags(&c->b, VIRTQ_AVAIL_F_NO_INTERRUPT);
	struct vqb_buf bb = { vqb_alloc(&c->b, 4, 1), 4, true };
	uint16_t head;
	uint32_t id, len;
	assert_int_equal(vqb_send(&c->b, &bb, 1, &head), 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	vqb_set_avail_flags(&c->b, 0);
	echo_ok(c);
}

static void test_status_sequence(void **state)
{
	struct ctx *c = *state;
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(c), VIRTIO_STATUS_ACKNOWLEDGE);
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(status(c), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(c, VIRTIO_MMIO_STATUS, 0xb);
	assert_int_equal(status(c), 0xb);
	assert_int_equal(c->dev.activations, 0);
	wr(c, VIRTIO_MMIO_STATUS, 0xf);
	assert_int_equal(status(c), 0xf);
	assert_int_equal(c->dev.activations, 1);
	/* FAILED can be added */
	wr(c, VIRTIO_MMIO_STATUS, 0x8f);
	assert_int_equal(status(c), 0x8f);
	/* rewriting the same value is harmless, no second activation */
	wr(c, VIRTIO_MMIO_STATUS, 0x8f);
	assert_int_equal(c->dev.activations, 1);
	wr(c, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(status(c), 0);
	assert_int_equal(c->dev.resets, 1);
}

static void test_queue_registers(void **state)
{
	struct ctx *c = *state;
	vqb_mmio_negotiate(c->t, 0);
	for (uint32_t q = 0; q < NQ; q++) {
		wr(c, VIRTIO_MMIO_QUEUE_SEL, q);
		assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_NUM_MAX), QMAX);
		assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	}
	wr(c, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(c, VIRTIO_MMIO_QUEUE_NUM, 32);
	wr(c, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x11111110);
	wr(c, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0x2);
	wr(c, VIRTIO_MMIO_QUEUE_DRIVER_LOW, 0x33333332);
	wr(c, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0x4);
	wr(c, VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x55555554);
	wr(c, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0x6);
	assert_int_equal(c->t->queues[1].num, 32);
	assert_int_equal(c->t->queues[1].desc, 0x211111110ull);
	assert_int_equal(c->t->queues[1].driver, 0x433333332ull);
	assert_int_equal(c->t->queues[1].device, 0x655555554ull);
	assert_int_equal(c->t->queues[0].num, 0);
	/* the high halves can be rewritten independently */
	wr(c, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	assert_int_equal(c->t->queues[1].desc, 0x11111110ull);
	/* two queues on disjoint rings in the same RAM */
	struct vqb b1 = c->b; /* copy of the layout, rings moved */
	vqb_place_rings(&b1, RAM_GPA + 0x10000, RAM_GPA + 0x11000, RAM_GPA + 0x12000);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 1, &b1), 1);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	vqb_mmio_driver_ok(c->t);
	struct virtq *q1 = virtio_transport_queue(c->t, 1);
	assert_non_null(q1);
	assert_true(q1->ready);
	assert_int_equal(q1->desc_gpa, RAM_GPA + 0x10000);
	assert_int_equal(q1->size, 16);
	assert_null(virtio_transport_queue(c->t, NQ));
	assert_null(virtio_transport_queue(c->t, 0xffff));
	echo_ok(c);
	assert_int_equal(c->dev.notifies[1], 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(c->dev.notifies[1], 1);
}

static void test_queue_ready_zero_stops_queue(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	echo_ok(c);
	wr(c, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(virtio_transport_queue(c->t, 0)->ready);
	unsigned int n = c->dev.notifies[0];
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(c->dev.notifies[0], n);
	/* registers writable again; the driver sets the queue up afresh */
	vqb_destroy(&c->b);
	assert_int_equal(vqb_init(&c->b, RAM_GPA, RAM_SIZE, 8), 0);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	assert_int_equal(virtio_transport_queue(c->t, 0)->size, 8);
	echo_ok(c);
}

static void test_interrupt_ack_and_level(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	unsigned int calls = c->irq.calls;
	struct vqb_buf bb = { vqb_alloc(&c->b, 4, 1), 4, true };
	uint16_t head;
	uint32_t id, len;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vqb_send(&c->b, &bb, 1, &head), 0);
		wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	}
	/* raised once, then only status changes */
	assert_int_equal(c->irq.calls, calls + 1);
	assert_int_equal(c->irq.level, 1);
	assert_int_equal(c->irq.last_irq, IRQ_NR);
	virtio_transport_lock(c->t);
	virtio_transport_config_changed(c->t);
	virtio_transport_unlock(c->t);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), 3);
	assert_int_equal(c->irq.calls, calls + 1);
	wr(c, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(c->irq.level, 1);
	wr(c, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(c->irq.calls, calls + 2);
	/* ack of nothing pending: no line change */
	wr(c, VIRTIO_MMIO_INTERRUPT_ACK, 3);
	assert_int_equal(c->irq.calls, calls + 2);
}

static void test_config_space(void **state)
{
	struct ctx *c = *state;
	for (unsigned int i = 0; i < CFG_SIZE; i++)
		c->dev.config[i] = (uint8_t)(0x10 + i);
	uint8_t d[8];
	bus_rd(c, VIRTIO_MMIO_CONFIG + 0, d, 1);
	assert_int_equal(d[0], 0x10);
	bus_rd(c, VIRTIO_MMIO_CONFIG + 3, d, 2);
	assert_memory_equal(d, "\x13\x14", 2);
	bus_rd(c, VIRTIO_MMIO_CONFIG + 4, d, 4);
	assert_memory_equal(d, "\x14\x15\x16\x17", 4);
	bus_rd(c, VIRTIO_MMIO_CONFIG + 16, d, 8);
	assert_memory_equal(d, "\x20\x21\x22\x23\x24\x25\x26\x27", 8);
	bus_wr(c, VIRTIO_MMIO_CONFIG + 8, "\xaa\xbb\xcc\xdd\xee\xff\x01\x02", 8);
	assert_memory_equal(c->dev.config + 8, "\xaa\xbb\xcc\xdd\xee\xff\x01\x02", 8);
	bus_wr(c, VIRTIO_MMIO_CONFIG + 23, "\x77", 1);
	assert_int_equal(c->dev.config[23], 0x77);
	bus_wr(c, VIRTIO_MMIO_CONFIG + 1, "\x55\x66", 2);
	assert_memory_equal(c->dev.config + 1, "\x55\x66", 2);
}

static void test_config_generation(void **state)
{
	struct ctx *c = *state;
	virtio_transport_lock(c->t);
	virtio_transport_config_changed(c->t);
	virtio_transport_unlock(c->t);
	assert_int_equal(rd(c, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	/* before DRIVER_OK: no config interrupt */
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	bring_up(c, 0);
	virtio_transport_lock(c->t);
	virtio_transport_config_changed(c->t);
	virtio_transport_unlock(c->t);
	assert_int_equal(rd(c, VIRTIO_MMIO_CONFIG_GENERATION), 2);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(c->irq.level, 1);
}

static void test_shm_regions_none(void **state)
{
	struct ctx *c = *state;
	for (uint32_t sel = 0; sel < 3; sel++) {
		wr(c, VIRTIO_MMIO_SHM_SEL, sel == 2 ? 0xffffffff : sel);
		assert_int_equal(rd(c, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
		assert_int_equal(rd(c, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);
		assert_int_equal(rd(c, VIRTIO_MMIO_SHM_BASE_LOW), 0);
		assert_int_equal(rd(c, VIRTIO_MMIO_SHM_BASE_HIGH), 0);
	}
}

static void test_reset_clears_everything(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	echo_ok(c);
	unsigned int resets = c->dev.resets;
	wr(c, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(c, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(c, VIRTIO_MMIO_QUEUE_SEL, 0);
	struct vqb_buf bb = { vqb_alloc(&c->b, 4, 1), 4, true };
	uint16_t head;
	vqb_send(&c->b, &bb, 1, &head);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(c->irq.level, 1);
	wr(c, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(c->dev.resets, resets + 1);
	assert_int_equal(status(c), 0);
	assert_int_equal(c->irq.level, 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(virtio_transport_queue(c->t, 0)->ready);
	assert_int_equal(c->t->queues[0].desc, 0);
	assert_int_equal(c->t->queues[1].num, 0);
	assert_int_equal(c->t->driver_features, 0);
	assert_int_equal(c->t->queue_sel, 0);
	assert_null(virtio_transport_queue(c->t, 0)->scratch);
	assert_false(virtio_transport_active(c->t));
	/* queue ready right after reset is refused (no FEATURES_OK yet) */
	wr(c, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
}

static void test_ioeventfd_notify_path(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	struct vqb_buf bb = { vqb_alloc(&c->b, 4, 1), 4, true };
	uint16_t head;
	uint32_t id, len;
	assert_int_equal(vqb_send(&c->b, &bb, 1, &head), 0);
	virtio_mmio_queue_notify(c->t, 0);
	assert_int_equal(c->dev.notifies[0], 1);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	virtio_mmio_queue_notify(c->t, NQ);
	virtio_mmio_queue_notify(c->t, 0xffff);
	virtio_mmio_queue_notify(c->t, 1); /* not ready */
	assert_int_equal(c->dev.notifies[1], 0);
	assert_false(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* buffers made available (and kicked) before DRIVER_OK are processed at DRIVER_OK */
static void test_activate_kicks_pending_queues(void **state)
{
	struct ctx *c = *state;
	assert_true(vqb_mmio_negotiate(c->t, 0) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	struct vqb_buf bb = { vqb_alloc(&c->b, 4, 1), 4, true };
	uint16_t head;
	uint32_t id, len;
	assert_int_equal(vqb_send(&c->b, &bb, 1, &head), 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(c->dev.notifies[0], 0);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 0);
	vqb_mmio_driver_ok(c->t);
	assert_int_equal(c->dev.notifies[0], 1);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	assert_int_equal(c->dev.notifies[1], 0); /* queue 1 not ready: not kicked */
}

struct backend {
	struct ctx *c;
	unsigned int rounds;
};

static void *backend_thread(void *p)
{
	struct backend *be = p;
	for (unsigned int i = 0; i < be->rounds; i++) {
		virtio_transport_lock(be->c->t);
		fdev_process(&be->c->dev, 0);
		virtio_transport_unlock(be->c->t);
	}
	return NULL;
}

/* a backend thread processes the queue under the lock while vCPU-side
 * register accesses run concurrently */
static void test_backend_thread_lock(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	c->dev.defer = true;
	struct vqb_buf bb = { vqb_alloc(&c->b, 4, 1), 4, true };
	uint16_t head;
	uint32_t id, len;
	unsigned int done = 0;

	for (int i = 0; i < 200; i++) {
		struct backend be = { c, 5 };
		pthread_t th;
		vqb_send(&c->b, &bb, 1, &head);
		wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		assert_int_equal(pthread_create(&th, NULL, backend_thread, &be), 0);
		for (int k = 0; k < 20; k++) {
			assert_int_equal(rd(c, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
			wr(c, VIRTIO_MMIO_INTERRUPT_ACK, 0);
		}
		pthread_join(th, NULL);
		done += vqb_get_used(&c->b, &id, &len);
		wr(c, VIRTIO_MMIO_INTERRUPT_ACK, 1);
	}
	assert_int_equal(done, 200);
	assert_int_equal(c->dev.notifies[0], 200);
	assert_int_equal(c->irq.level, 0);
}

static void test_new_rejects_bad_ops(void **state)
{
	struct ctx *c = *state;
	struct irq_line irq = { 0 };
	struct virtio_dev_ops ops = fdev_ops;
	struct fdev d = { 0 };

	ops.bind = NULL;
	assert_null(virtio_mmio_new(NULL, &d, &c->b.mem, irq, &c->log.log));
	assert_null(virtio_mmio_new(&ops, &d, NULL, irq, &c->log.log));
	ops.num_queues = VIRTIO_MAX_QUEUES + 1;
	assert_null(virtio_mmio_new(&ops, &d, &c->b.mem, irq, &c->log.log));
	ops.num_queues = 1;
	ops.queue_max_size = 0;
	assert_null(virtio_mmio_new(&ops, &d, &c->b.mem, irq, &c->log.log));
	ops.queue_max_size = 48;
	assert_null(virtio_mmio_new(&ops, &d, &c->b.mem, irq, &c->log.log));
	ops.queue_max_size = 65535;
	assert_null(virtio_mmio_new(&ops, &d, &c->b.mem, irq, &c->log.log));
	ops.queue_max_size = 32768;
	ops.config_size = VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG + 1;
	assert_null(virtio_mmio_new(&ops, &d, &c->b.mem, irq, &c->log.log));
	ops.config_size = VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG;
	struct virtio_transport *t = virtio_mmio_new(&ops, &d, &c->b.mem, irq, NULL);
	assert_non_null(t);
	virtio_mmio_free(t);
	virtio_mmio_free(NULL);
	/* a device with no optional callbacks at all */
	static const struct virtio_dev_ops bare = { .device_id = 1 };
	t = virtio_mmio_new(&bare, NULL, &c->b.mem, irq, NULL);
	assert_non_null(t);
	vqb_mmio_write(t, VIRTIO_MMIO_STATUS, 0);
	assert_true(vqb_mmio_negotiate(t, 0) & VIRTIO_STATUS_FEATURES_OK);
	assert_true(vqb_mmio_driver_ok(t) & VIRTIO_STATUS_DRIVER_OK);
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	uint8_t b[4] = { 1, 2, 3, 4 };
	virtio_mmio_bus_ops.read(t, VIRTIO_MMIO_CONFIG, b, 4);
	assert_memory_equal(b, "\0\0\0\0", 4);
	vqb_mmio_write(t, VIRTIO_MMIO_STATUS, 0);
	virtio_mmio_free(t);
}

static void test_needs_reset_logged_once(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	unsigned int calls = c->irq.calls;
	virtio_transport_lock(c->t);
	virtio_transport_needs_reset(c->t, "first reason");
	virtio_transport_needs_reset(c->t, "second reason");
	virtio_transport_needs_reset(c->t, NULL);
	virtio_transport_unlock(c->t);
	const char *log = unit_log_capture_text(&c->log);
	assert_non_null(strstr(log, "first reason"));
	assert_null(strstr(log, "second reason"));
	assert_int_equal(c->irq.calls, calls + 1);
	/* the driver acks the config interrupt: NEEDS_RESET stays */
	wr(c, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(c->irq.level, 0);
	assert_true(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* already set: no second interrupt, no second log line */
	virtio_transport_lock(c->t);
	virtio_transport_needs_reset(c->t, "third reason");
	virtio_transport_unlock(c->t);
	assert_int_equal(c->irq.level, 0);
	assert_null(strstr(unit_log_capture_text(&c->log), "third reason"));
	wr(c, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(status(c), 0);
	vqb_destroy(&c->b);
	assert_int_equal(vqb_init(&c->b, RAM_GPA, RAM_SIZE, 16), 0);
	bring_up(c, 0);
	echo_ok(c);
}

/* ------------------------------------------------------------------ */
/* malformed driver behaviour                                          */

static void malformed_queue_sel_out_of_range(void **state)
{
	struct ctx *c = *state;
	vqb_mmio_negotiate(c->t, 0);
	wr(c, VIRTIO_MMIO_QUEUE_SEL, NQ);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	wr(c, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(c, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)c->b.desc_gpa);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	for (int q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		assert_int_equal(c->t->queues[q].num, 0);
		assert_false(c->t->queues[q].vq.ready);
	}
	assert_false(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	vqb_mmio_driver_ok(c->t);
	echo_ok(c);
}

static void malformed_queue_sel_huge(void **state)
{
	struct ctx *c = *state;
	vqb_mmio_negotiate(c->t, 0);
	for (uint32_t sel = VIRTIO_MAX_QUEUES; sel != 0; sel = sel < 0x10000 ? sel << 4 : 0) {
		wr(c, VIRTIO_MMIO_QUEUE_SEL, sel);
		assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
		wr(c, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(c, VIRTIO_MMIO_QUEUE_SEL, 0xffffffff);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(c, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_false(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	vqb_mmio_driver_ok(c->t);
	echo_ok(c);
}

/* QueueReady=1 with a bad QueueNum (the builder's layout otherwise sane) */
static void queue_num_case(struct ctx *c, uint32_t num)
{
	vqb_mmio_negotiate(c->t, 0);
	wr(c, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(c, VIRTIO_MMIO_QUEUE_NUM, num);
	wr(c, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)c->b.desc_gpa);
	wr(c, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)c->b.avail_gpa);
	wr(c, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)c->b.used_gpa);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_non_null(strstr(unit_log_capture_text(&c->log), virtq_strerror(-VIRTQ_ERR_SIZE)));
	expect_needs_reset_then_recover(c);
}

static void malformed_queue_num_zero(void **state)
{
	queue_num_case(*state, 0);
}

static void malformed_queue_num_above_max(void **state)
{
	queue_num_case(*state, QMAX * 2);
}

static void malformed_queue_num_65536(void **state)
{
	queue_num_case(*state, 65536);
}

static void malformed_queue_num_huge(void **state)
{
	queue_num_case(*state, 0xffffffff);
}

static void malformed_queue_num_not_power_of_two(void **state)
{
	queue_num_case(*state, 48);
}

static void ring_case(struct ctx *c, uint64_t desc, uint64_t avail, uint64_t used, int err)
{
	vqb_mmio_negotiate(c->t, 0);
	vqb_place_rings(&c->b, desc, avail, used);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 0);
	assert_non_null(strstr(unit_log_capture_text(&c->log), virtq_strerror(err)));
	/* the driver then sets DRIVER_OK anyway: not activated */
	vqb_mmio_driver_ok(c->t);
	assert_int_equal(c->dev.activations, 0);
	expect_needs_reset_then_recover(c);
}

static void malformed_queue_desc_misaligned(void **state)
{
	struct ctx *c = *state;
	ring_case(c, c->b.desc_gpa + 4, c->b.avail_gpa, c->b.used_gpa, -VIRTQ_ERR_ALIGN);
}

static void malformed_queue_used_misaligned(void **state)
{
	struct ctx *c = *state;
	ring_case(c, c->b.desc_gpa, c->b.avail_gpa, c->b.used_gpa + 1, -VIRTQ_ERR_ALIGN);
}

static void malformed_queue_ring_outside_ram(void **state)
{
	struct ctx *c = *state;
	ring_case(c, c->b.desc_gpa, RAM_END + 0x1000, c->b.used_gpa, -VIRTQ_ERR_RING_ADDR);
}

static void malformed_queue_ring_high_half_garbage(void **state)
{
	struct ctx *c = *state;
	ring_case(c, c->b.desc_gpa | 0xffffffff00000000ull, c->b.avail_gpa, c->b.used_gpa,
		  -VIRTQ_ERR_RING_ADDR);
}

static void malformed_notify_before_driver_ok(void **state)
{
	struct ctx *c = *state;
	struct vqb_buf bb = { vqb_alloc(&c->b, 4, 1), 4, true };
	uint16_t head;
	uint32_t id, len;

	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* nothing set up at all */
	assert_true(vqb_mmio_negotiate(c->t, 0) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	assert_int_equal(vqb_send(&c->b, &bb, 1, &head), 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	virtio_mmio_queue_notify(c->t, 0);
	assert_int_equal(c->dev.notifies[0], 0);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 0);
	assert_false(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_non_null(strstr(unit_log_capture_text(&c->log), "before DRIVER_OK"));
	vqb_mmio_driver_ok(c->t);
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	echo_ok(c);
}

static void malformed_notify_queue_out_of_range(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, NQ);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffff);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0x10000); /* low 16 bits 0: still not queue 0 */
	virtio_mmio_queue_notify(c->t, 7);
	assert_int_equal(c->dev.notifies[0] + c->dev.notifies[1], 0);
	assert_false(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	echo_ok(c);
}

static void malformed_notify_queue_not_ready(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(c->dev.notifies[1], 0);
	echo_ok(c);
}

static void refused_features(struct ctx *c, uint32_t lo, uint32_t hi, uint32_t sel2)
{
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES, lo);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES, hi);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES, sel2);
	wr(c, VIRTIO_MMIO_STATUS, 0xb);
	/* FEATURES_OK not latched, the rest is */
	assert_int_equal(status(c), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* queues cannot be enabled, DRIVER_OK is not accepted, no activation */
	wr(c, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(c, VIRTIO_MMIO_STATUS, 0x7);
	assert_false(status(c) & VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(c->dev.activations, 0);
	assert_false(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* a correct driver after a reset */
	bring_up(c, DEV_FEATURES);
	echo_ok(c);
}

static void malformed_features_ok_without_version_1(void **state)
{
	refused_features(*state, (uint32_t)DEV_FEATURES, 0, 0);
}

static void malformed_features_ok_with_unoffered_low(void **state)
{
	refused_features(*state, 1u << 5, 1, 0);
}

static void malformed_features_ok_with_unoffered_high(void **state)
{
	refused_features(*state, 0, 1u | (1u << 31), 0);
}

static void malformed_features_ok_with_packed_ring(void **state)
{
	refused_features(*state, 0, 1u | (1u << 2), 0);
}

static void malformed_features_sel_2_nonzero(void **state)
{
	refused_features(*state, 0, 1, 1);
}

static void malformed_driver_features_after_features_ok(void **state)
{
	struct ctx *c = *state;
	assert_true(vqb_mmio_negotiate(c->t, 0) & VIRTIO_STATUS_FEATURES_OK);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(c, VIRTIO_MMIO_DRIVER_FEATURES, 1u << VIRTIO_F_RING_EVENT_IDX);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	vqb_mmio_driver_ok(c->t);
	assert_int_equal(c->dev.activated_features, 1ull << VIRTIO_F_VERSION_1);
	assert_false(virtio_transport_queue(c->t, 0)->event_idx);
	echo_ok(c);
}

static void malformed_queue_regs_written_while_ready(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	wr(c, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(c, VIRTIO_MMIO_QUEUE_NUM, 4);
	wr(c, VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
	wr(c, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0xdead);
	wr(c, VIRTIO_MMIO_QUEUE_DRIVER_LOW, 1);
	wr(c, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 1);
	wr(c, VIRTIO_MMIO_QUEUE_DEVICE_LOW, 3);
	wr(c, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 3);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 1); /* again: no restart */
	struct virtq *q = virtio_transport_queue(c->t, 0);
	assert_int_equal(c->t->queues[0].num, 16);
	assert_int_equal(c->t->queues[0].desc, c->b.desc_gpa);
	assert_int_equal(c->t->queues[0].driver, c->b.avail_gpa);
	assert_int_equal(c->t->queues[0].device, c->b.used_gpa);
	assert_int_equal(q->size, 16);
	assert_int_equal(q->desc_gpa, c->b.desc_gpa);
	assert_false(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	echo_ok(c);
	echo_ok(c);
}

static void malformed_double_queue_ready_keeps_state(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	c->dev.defer = true;
	struct vqb_buf bb = { vqb_alloc(&c->b, 4, 1), 4, true };
	uint16_t head;
	vqb_send(&c->b, &bb, 1, &head);
	struct virtq_chain ch;
	virtio_transport_lock(c->t);
	assert_int_equal(virtq_pop(virtio_transport_queue(c->t, 0), &ch), 1);
	virtio_transport_unlock(c->t);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 1);
	struct virtq *q = virtio_transport_queue(c->t, 0);
	assert_int_equal(q->in_flight, 1);
	assert_int_equal(q->last_avail_idx, 1);
	virtio_transport_lock(c->t);
	assert_int_equal(virtq_push(q, head, 0), 0);
	virtio_transport_unlock(c->t);
	c->dev.defer = false;
	uint32_t id, len;
	assert_int_equal(vqb_get_used(&c->b, &id, &len), 1);
	echo_ok(c);
}

static void malformed_queue_ready_garbage_value(void **state)
{
	struct ctx *c = *state;
	vqb_mmio_negotiate(c->t, 0);
	vqb_mmio_setup_queue(c->t, 0, &c->b);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 0xfffffffe); /* bit 0 clear: stops the queue */
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 3);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 1);
	vqb_mmio_driver_ok(c->t);
	echo_ok(c);
}

static void malformed_queue_ready_before_features_ok(void **state)
{
	struct ctx *c = *state;
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vqb_mmio_setup_queue(c->t, 0, &c->b);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_non_null(strstr(unit_log_capture_text(&c->log), "before FEATURES_OK"));
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_driver_ok_without_features_ok(void **state)
{
	struct ctx *c = *state;
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(c, VIRTIO_MMIO_STATUS, 0x7);
	assert_int_equal(status(c), 0x3);
	assert_int_equal(c->dev.activations, 0);
	assert_false(virtio_transport_active(c->t));
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_status_clears_bits(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	unsigned int resets = c->dev.resets;
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(c), 0xf);
	wr(c, VIRTIO_MMIO_STATUS, 0x80 | 0x3);
	assert_int_equal(status(c), 0xf);
	assert_int_equal(c->dev.resets, resets);
	assert_int_equal(c->dev.activations, 1);
	echo_ok(c);
}

static void malformed_status_sets_needs_reset(void **state)
{
	struct ctx *c = *state;
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(status(c), VIRTIO_STATUS_ACKNOWLEDGE);
	wr(c, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(status(c), VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_config_read_out_of_bounds(void **state)
{
	struct ctx *c = *state;
	memset(c->dev.config, 0xab, CFG_SIZE);
	uint8_t d[8];
	static const struct {
		uint64_t off;
		unsigned int len;
	} bad[] = {
		{ CFG_SIZE, 1 },      { CFG_SIZE, 4 },     { CFG_SIZE - 3, 4 }, { CFG_SIZE - 7, 8 },
		{ CFG_SIZE - 1, 2 },  { 0xff - 0x100 + VIRTIO_MMIO_SIZE, 1 }, { 0x1000, 4 },
		{ UINT64_MAX - VIRTIO_MMIO_CONFIG - 3, 4 },
	};
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(d, 0x5a, sizeof(d));
		bus_rd(c, VIRTIO_MMIO_CONFIG + bad[i].off, d, bad[i].len);
		for (unsigned int k = 0; k < bad[i].len; k++)
			assert_int_equal(d[k], 0);
	}
	bus_rd(c, VIRTIO_MMIO_CONFIG + CFG_SIZE - 8, d, 8); /* the last 8 bytes: fine */
	assert_memory_equal(d, "\xab\xab\xab\xab\xab\xab\xab\xab", 8);
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_config_write_out_of_bounds(void **state)
{
	struct ctx *c = *state;
	uint8_t before[CFG_SIZE];
	memset(c->dev.config, 0x11, CFG_SIZE);
	memcpy(before, c->dev.config, CFG_SIZE);
	bus_wr(c, VIRTIO_MMIO_CONFIG + CFG_SIZE, "\xff\xff\xff\xff", 4);
	bus_wr(c, VIRTIO_MMIO_CONFIG + CFG_SIZE - 2, "\xff\xff\xff\xff", 4);
	bus_wr(c, VIRTIO_MMIO_CONFIG + CFG_SIZE - 4, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	bus_wr(c, VIRTIO_MMIO_CONFIG + 0xf0, "\xff", 1);
	bus_wr(c, UINT64_MAX, "\xff", 1);
	assert_memory_equal(c->dev.config, before, CFG_SIZE);
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_config_bad_width(void **state)
{
	struct ctx *c = *state;
	memset(c->dev.config, 0x22, CFG_SIZE);
	uint8_t d[8] = { 0x5a, 0x5a, 0x5a };
	bus_rd(c, VIRTIO_MMIO_CONFIG, d, 3);
	assert_memory_equal(d, "\0\0\0", 3);
	bus_wr(c, VIRTIO_MMIO_CONFIG, "\x01\x02\x03\x04\x05\x06", 6);
	bus_wr(c, VIRTIO_MMIO_CONFIG, "", 0);
	assert_int_equal(c->dev.config[0], 0x22);
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_register_narrow_access(void **state)
{
	struct ctx *c = *state;
	uint8_t d[4] = { 1, 1, 1, 1 };
	bus_rd(c, VIRTIO_MMIO_MAGIC_VALUE, d, 1);
	assert_int_equal(d[0], 0);
	bus_rd(c, VIRTIO_MMIO_MAGIC_VALUE, d, 2);
	assert_memory_equal(d, "\0\0", 2);
	bus_wr(c, VIRTIO_MMIO_STATUS, "\x01", 1);
	bus_wr(c, VIRTIO_MMIO_STATUS, "\x01\x00", 2);
	assert_int_equal(status(c), 0);
	bring_up(c, 0);
	bus_wr(c, VIRTIO_MMIO_STATUS, "\x00", 1); /* a narrow "reset" is ignored too */
	assert_int_equal(status(c), 0xf);
	echo_ok(c);
}

static void malformed_register_unaligned_access(void **state)
{
	struct ctx *c = *state;
	uint8_t d[4] = { 1, 1, 1, 1 };
	bus_rd(c, VIRTIO_MMIO_MAGIC_VALUE + 2, d, 4);
	assert_memory_equal(d, "\0\0\0\0", 4);
	bus_wr(c, VIRTIO_MMIO_STATUS + 1, "\x01\x00\x00\x00", 4);
	bus_wr(c, VIRTIO_MMIO_QUEUE_SEL + 3, "\x01\x00\x00\x00", 4);
	assert_int_equal(status(c), 0);
	assert_int_equal(c->t->queue_sel, 0);
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_register_8byte_access(void **state)
{
	struct ctx *c = *state;
	uint8_t d[8];
	memset(d, 1, sizeof(d));
	bus_rd(c, VIRTIO_MMIO_MAGIC_VALUE, d, 8);
	assert_memory_equal(d, "\0\0\0\0\0\0\0\0", 8);
	bus_wr(c, VIRTIO_MMIO_STATUS, "\x01\0\0\0\0\0\0\0", 8);
	assert_int_equal(status(c), 0);
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_write_read_only_registers(void **state)
{
	struct ctx *c = *state;
	static const uint64_t ro[] = {
		VIRTIO_MMIO_MAGIC_VALUE,   VIRTIO_MMIO_VERSION,          VIRTIO_MMIO_DEVICE_ID,
		VIRTIO_MMIO_VENDOR_ID,     VIRTIO_MMIO_DEVICE_FEATURES,  VIRTIO_MMIO_QUEUE_NUM_MAX,
		VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_SHM_LEN_LOW,   VIRTIO_MMIO_SHM_BASE_HIGH,
		VIRTIO_MMIO_CONFIG_GENERATION, 0x0c0 /* QueueReset: not offered */, 0x0f8,
	};
	for (unsigned int i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		wr(c, ro[i], 0xffffffff);
	assert_int_equal(rd(c, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	assert_int_equal(rd(c, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(c, VIRTIO_MMIO_DEVICE_ID), 42);
	assert_int_equal(rd(c, VIRTIO_MMIO_QUEUE_NUM_MAX), QMAX);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(rd(c, VIRTIO_MMIO_CONFIG_GENERATION), 0);
	assert_int_equal(rd(c, 0x0c0), 0);
	assert_int_equal(c->irq.calls, 0);
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_every_register_offset_fuzz(void **state)
{
	struct ctx *c = *state;
	/* every 32-bit slot below the config space, read and written with junk,
	 * before and after bring-up: no crash, and a reset recovers */
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t off = 0; off < VIRTIO_MMIO_CONFIG; off += 4) {
			(void)rd(c, off);
			if (off != VIRTIO_MMIO_STATUS)
				wr(c, off, 0xa5a5a5a5u ^ (uint32_t)off);
		}
		bring_up(c, DEV_FEATURES);
	}
	wr(c, VIRTIO_MMIO_STATUS, 0);
	vqb_destroy(&c->b);
	assert_int_equal(vqb_init(&c->b, RAM_GPA, RAM_SIZE, 16), 0);
	bring_up(c, 0);
	echo_ok(c);
}

static void malformed_interrupt_ack_unknown_bits(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	virtio_transport_lock(c->t);
	virtio_transport_config_changed(c->t);
	virtio_transport_unlock(c->t);
	wr(c, VIRTIO_MMIO_INTERRUPT_ACK, 0xfffffffc);
	assert_int_equal(rd(c, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(c->irq.level, 1);
	wr(c, VIRTIO_MMIO_INTERRUPT_ACK, 0xffffffff);
	assert_int_equal(c->irq.level, 0);
	echo_ok(c);
}

static void malformed_activate_fails(void **state)
{
	struct ctx *c = *state;
	c->dev.activate_ret = -EIO;
	assert_true(vqb_mmio_negotiate(c->t, 0) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqb_mmio_setup_queue(c->t, 0, &c->b), 1);
	vqb_mmio_driver_ok(c->t);
	assert_int_equal(c->dev.activations, 1);
	assert_non_null(strstr(unit_log_capture_text(&c->log), "activation failed"));
	c->dev.activate_ret = 0;
	expect_needs_reset_then_recover(c);
}

/* a broken queue seen by the device stops the whole device, both queues */
static void malformed_chain_loop_via_transport(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	uint64_t d = vqb_alloc(&c->b, 8, 1);
	vqb_write_desc(&c->b, 0, d, 8, VIRTQ_DESC_F_NEXT, 1);
	vqb_write_desc(&c->b, 1, d, 8, VIRTQ_DESC_F_NEXT, 0);
	vqb_publish(&c->b, 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(c->dev.last_err, -VIRTQ_ERR_LOOP);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(c->dev.notifies[1], 0);
	expect_needs_reset_then_recover(c);
}

static void malformed_buffer_outside_ram_via_transport(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	vqb_write_desc(&c->b, 0, RAM_END - 2, 4, VIRTQ_DESC_F_WRITE, 0);
	vqb_publish(&c->b, 0);
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(c->dev.last_err, -VIRTQ_ERR_DESC_ADDR);
	assert_int_equal(vqb_used_idx(&c->b), 0);
	expect_needs_reset_then_recover(c);
}

static void malformed_avail_idx_jump_via_transport(void **state)
{
	struct ctx *c = *state;
	bring_up(c, 0);
	echo_ok(c);
	vqb_set_avail_idx(&c->b, (uint16_t)(c->b.avail_idx + 17));
	wr(c, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(c->dev.last_err, -VIRTQ_ERR_AVAIL_IDX);
	expect_needs_reset_then_recover(c);
}

static void malformed_needs_reset_then_driver_ok(void **state)
{
	struct ctx *c = *state;
	vqb_mmio_negotiate(c->t, 0);
	wr(c, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(c, VIRTIO_MMIO_QUEUE_NUM, 0);
	wr(c, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_true(status(c) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* further queue setup is ignored until reset */
	assert_int_equal(vqb_mmio_setup_queue(c->t, 1, &c->b), 0);
	vqb_mmio_driver_ok(c->t);
	assert_int_equal(c->dev.activations, 0);
	expect_needs_reset_then_recover(c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_identity),
		T(test_through_bus),
		T(test_echo),
		T(test_device_features_64bit),
		T(test_transport_feature_mask),
		T(test_negotiation_subset_and_event_idx),
		T(test_no_interrupt_suppression),
		T(test_status_sequence),
		T(test_queue_registers),
		T(test_queue_ready_zero_stops_queue),
		T(test_interrupt_ack_and_level),
		T(test_config_space),
		T(test_config_generation),
		T(test_shm_regions_none),
		T(test_reset_clears_everything),
		T(test_ioeventfd_notify_path),
		T(test_activate_kicks_pending_queues),
		T(test_backend_thread_lock),
		T(test_new_rejects_bad_ops),
		T(test_needs_reset_logged_once),
		T(malformed_queue_sel_out_of_range),
		T(malformed_queue_sel_huge),
		T(malformed_queue_num_zero),
		T(malformed_queue_num_above_max),
		T(malformed_queue_num_65536),
		T(malformed_queue_num_huge),
		T(malformed_queue_num_not_power_of_two),
		T(malformed_queue_desc_misaligned),
		T(malformed_queue_used_misaligned),
		T(malformed_queue_ring_outside_ram),
		T(malformed_queue_ring_high_half_garbage),
		T(malformed_notify_before_driver_ok),
		T(malformed_notify_queue_out_of_range),
		T(malformed_notify_queue_not_ready),
		T(malformed_features_ok_without_version_1),
		T(malformed_features_ok_with_unoffered_low),
		T(malformed_features_ok_with_unoffered_high),
		T(malformed_features_ok_with_packed_ring),
		T(malformed_features_sel_2_nonzero),
		T(malformed_driver_features_after_features_ok),
		T(malformed_queue_regs_written_while_ready),
		T(malformed_double_queue_ready_keeps_state),
		T(malformed_queue_ready_garbage_value),
		T(malformed_queue_ready_before_features_ok),
		T(malformed_driver_ok_without_features_ok),
		T(malformed_status_clears_bits),
		T(malformed_status_sets_needs_reset),
		T(malformed_config_read_out_of_bounds),
		T(malformed_config_write_out_of_bounds),
		T(malformed_config_bad_width),
		T(malformed_register_narrow_access),
		T(malformed_register_unaligned_access),
		T(malformed_register_8byte_access),
		T(malformed_write_read_only_registers),
		T(malformed_every_register_offset_fuzz),
		T(malformed_interrupt_ack_unknown_bits),
		T(malformed_activate_fails),
		T(malformed_chain_loop_via_transport),
		T(malformed_buffer_outside_ram_via_transport),
		T(malformed_avail_idx_jump_via_transport),
		T(malformed_needs_reset_then_driver_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
