/* libFuzzer target: the virtio-mmio transport (reference-vmm/src/virtio/mmio.c)
 * with a fake device whose shape (queues, sizes, config space, features, which
 * callbacks exist, activation failure) comes from the input. Register reads and
 * writes of any offset/width across the status state machine, the ioeventfd
 * notify fast path, device-side events; the driver is tests/support/vq_builder.
 *
 * Input format (little-endian, zero-padded):
 *   byte 0  mode  bits 0-1: 0..2 TEMPLATE (device brought up by the book first,
 *                 then mostly valid traffic and at most k = bits 2-4 raw ops),
 *                 3 RAW (every op, from reset)
 *   device  u8 num_queues % 9, u8 log2 queue_max % 9, u8 config size index,
 *           u64 features, u8 callback mask (bit i clear: callback i is NULL;
 *           bit 7: activate fails), u8 device behaviour (bit 0 defer queue
 *           processing, bit 1 config_changed on notify, bit 2 the irq line
 *           reports errors, bit 3 invalid device: u8 num_queues, u16 queue max,
 *           u16 config size, u8 NULL ops/memory, raw, creation must fail
 *           exactly when they break the contract), u8 ring size index
 *   ops     opcode byte (% 16) + arguments; see raw_op() / template_op().
 * Invariants checked after every op: the irq line follows InterruptStatus, the
 * status never shows DRIVER_OK without FEATURES_OK, latched features were
 * offered and include VERSION_1, ready queues have legal sizes, callbacks only
 * see in-bounds config accesses and notifications of live, ready queues.
 */
#include "harness_env.h"
#include "fuzz_input.h"
#include "vq_mutate.h"

#include "virtio/mmio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QRAM (64 * 1024)
#define QGPA(i) (0x40000000ull + (uint64_t)(i) * 0x01000000ull)
#define MAX_OPS 400
#define CFG_MAX (VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG)

struct h {
	struct virtio_dev_ops ops;
	struct virtio_transport *t;
	struct guest_mem mem;
	struct fuzz_irq irq;
	unsigned int nq;
	uint16_t ring_size; /* what the driver lays out */
	struct vqb b[VIRTIO_MAX_QUEUES];
	struct vqm m[VIRTIO_MAX_QUEUES];
	bool have_b;
	/* fake device */
	uint64_t features;
	uint8_t config[CFG_MAX];
	int activate_ret;
	bool defer, cfg_on_notify;
	uint32_t pending; /* deferred notifications, bit per queue */
	unsigned int budget;
};

/* ---- the fake device (callbacks run with the transport lock held) ---- */

static struct h *H(void *p)
{
	return p;
}

static uint64_t dev_features(void *p)
{
	return H(p)->features;
}

static void dev_config_read(void *p, uint32_t off, uint8_t *data, uint32_t len)
{
	struct h *h = p;
	FUZZ_CHECK(len && off < h->ops.config_size && len <= h->ops.config_size - off,
		   "config read %u@%u outside %u bytes", len, off, h->ops.config_size);
	memcpy(data, h->config + off, len);
}

static void dev_config_write(void *p, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct h *h = p;
	FUZZ_CHECK(len && off < h->ops.config_size && len <= h->ops.config_size - off,
		   "config write %u@%u outside %u bytes", len, off, h->ops.config_size);
	memcpy(h->config + off, data, len);
}

static int dev_activate(void *p, uint64_t features)
{
	struct h *h = p;
	FUZZ_CHECK(!h->t->needs_reset, "activate while NEEDS_RESET");
	FUZZ_CHECK(h->t->status & VIRTIO_STATUS_FEATURES_OK, "activate without FEATURES_OK");
	FUZZ_CHECK(features == h->t->driver_features, "activate features");
	return h->activate_ret;
}

static void dev_process(struct h *h, uint16_t qi)
{
	struct virtq *q = virtio_transport_queue(h->t, qi);
	struct virtq_chain c;
	int r = 0;
	bool pushed = false;

	if (!q || !q->ready || !virtio_transport_active(h->t))
		return;
	for (uint32_t i = 0; i <= q->size; i++) {
		r = virtq_pop(q, &c);
		if (r != 1)
			break;
		uint8_t buf[64];
		uint32_t n = virtq_chain_read(&c, 0, buf, sizeof(buf));
		n = virtq_chain_write(&c, 0, buf, n);
		FUZZ_CHECK(virtq_push(q, c.head, n) == 0, "push of a popped head");
		pushed = true;
	}
	if (pushed)
		virtio_transport_notify_used(h->t, qi);
	if (r < 0)
		virtio_transport_needs_reset(h->t, virtq_strerror(r));
	else if (r == 1)
		FUZZ_CHECK(0, "more chains than the queue size");
}

static void dev_notify(void *p, uint16_t qi)
{
	struct h *h = p;
	struct virtio_transport *t = h->t;
	FUZZ_CHECK(qi < h->ops.num_queues, "notify of queue %u", qi);
	FUZZ_CHECK((t->status & VIRTIO_STATUS_DRIVER_OK) && !t->needs_reset &&
			   t->queues[qi].vq.ready,
		   "notify of queue %u while not live (status %#x reset %d ready %d)", qi,
		   t->status, t->needs_reset, t->queues[qi].vq.ready);
	if (h->cfg_on_notify)
		virtio_transport_config_changed(t);
	if (h->defer)
		h->pending |= 1u << qi;
	else
		dev_process(h, qi);
}

static void dev_reset(void *p)
{
	H(p)->pending = 0;
}

static void dev_bind(void *p, struct virtio_transport *t)
{
	H(p)->t = t;
}

/* ---- driver side ---- */

static void check_invariants(struct h *h)
{
	struct virtio_transport *t = h->t;
	FUZZ_CHECK(h->irq.level == (t->int_status != 0), "irq level %d, InterruptStatus %#x",
		   h->irq.level, t->int_status);
	FUZZ_CHECK(!(t->int_status & ~3u), "InterruptStatus %#x", t->int_status);
	FUZZ_CHECK(!(t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET), "NEEDS_RESET latched");
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		FUZZ_CHECK(t->status & VIRTIO_STATUS_FEATURES_OK, "DRIVER_OK without FEATURES_OK");
	if (t->status & VIRTIO_STATUS_FEATURES_OK) {
		uint64_t offered = (h->ops.features ? h->features : 0);
		offered &= ~VIRTIO_MMIO_RESERVED_FEATURES | VIRTIO_MMIO_TRANSPORT_FEATURES;
		offered |= 1ull << VIRTIO_F_VERSION_1;
		FUZZ_CHECK(!(t->driver_features & ~offered), "unoffered features %#llx latched",
			   (unsigned long long)(t->driver_features & ~offered));
		FUZZ_CHECK(t->driver_features & (1ull << VIRTIO_F_VERSION_1), "no VERSION_1");
	}
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		const struct virtq *q = &t->queues[i].vq;
		if (!q->ready)
			continue;
		FUZZ_CHECK(i < h->ops.num_queues, "queue %u ready beyond num_queues", i);
		FUZZ_CHECK(q->size && q->size <= h->ops.queue_max_size && !(q->size & (q->size - 1)),
			   "queue %u ready with size %u", i, q->size);
	}
}

static uint32_t mmio_read(struct h *h, uint64_t off, unsigned int len)
{
	uint8_t d[8];
	memset(d, 0xa5, sizeof(d));
	virtio_mmio_bus_ops.read(h->t, off, d, len);
	uint64_t v = 0;
	for (unsigned int i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	bool cfg = off >= VIRTIO_MMIO_CONFIG;
	bool reg_ok = len == 4 && !(off & 3);
	if (!cfg && !reg_ok)
		FUZZ_CHECK(v == 0, "%u-byte read at %#llx gave %#llx", len, (unsigned long long)off,
			   (unsigned long long)v);
	if (cfg && !(off - VIRTIO_MMIO_CONFIG < h->ops.config_size &&
		     len <= h->ops.config_size - (off - VIRTIO_MMIO_CONFIG)))
		FUZZ_CHECK(v == 0, "config read outside gave %#llx", (unsigned long long)v);
	if (reg_ok) {
		switch (off) {
		case VIRTIO_MMIO_MAGIC_VALUE:
			FUZZ_CHECK(v == VIRTIO_MMIO_MAGIC, "magic");
			break;
		case VIRTIO_MMIO_VERSION:
			FUZZ_CHECK(v == 2, "version");
			break;
		case VIRTIO_MMIO_QUEUE_READY:
			FUZZ_CHECK(v <= 1, "QueueReady %#llx", (unsigned long long)v);
			break;
		case VIRTIO_MMIO_STATUS:
			if (v & VIRTIO_STATUS_DRIVER_OK)
				FUZZ_CHECK(v & VIRTIO_STATUS_FEATURES_OK, "status %#llx",
					   (unsigned long long)v);
			break;
		}
	}
	return (uint32_t)v;
}

static void mmio_write(struct h *h, uint64_t off, unsigned int len, uint64_t v)
{
	uint8_t d[8];
	for (unsigned int i = 0; i < 8; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	virtio_mmio_bus_ops.write(h->t, off, d, len);
}

static const uint16_t regs[] = {
	VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_VERSION, VIRTIO_MMIO_DEVICE_ID,
	VIRTIO_MMIO_VENDOR_ID, VIRTIO_MMIO_DEVICE_FEATURES, VIRTIO_MMIO_DEVICE_FEATURES_SEL,
	VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_MMIO_DRIVER_FEATURES_SEL, VIRTIO_MMIO_QUEUE_SEL,
	VIRTIO_MMIO_QUEUE_NUM_MAX, VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_READY,
	VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_INTERRUPT_ACK,
	VIRTIO_MMIO_STATUS, VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_DESC_HIGH,
	VIRTIO_MMIO_QUEUE_DRIVER_LOW, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, VIRTIO_MMIO_QUEUE_DEVICE_LOW,
	VIRTIO_MMIO_QUEUE_DEVICE_HIGH, VIRTIO_MMIO_SHM_SEL, VIRTIO_MMIO_SHM_LEN_LOW,
	VIRTIO_MMIO_SHM_LEN_HIGH, VIRTIO_MMIO_SHM_BASE_LOW, VIRTIO_MMIO_SHM_BASE_HIGH,
	VIRTIO_MMIO_CONFIG_GENERATION, VIRTIO_MMIO_CONFIG, VIRTIO_MMIO_CONFIG + 8,
	0x1fc, 0x200,
};

/* offset + width: mostly a known register with 32 bits, else anything */
static uint64_t pick_off(struct fin *f, unsigned int *len)
{
	static const unsigned int widths[] = { 4, 4, 4, 4, 1, 2, 8, 3 };
	uint8_t s = fin_u8(f);
	*len = widths[(s >> 5) & 7];
	if (s & 0x10)
		return fin_u16(f) & 0x3ff;
	return regs[fin_u8(f) % (sizeof(regs) / sizeof(regs[0]))];
}

static uint64_t pick_val(struct h *h, struct fin *f)
{
	uint8_t s = fin_u8(f);
	switch (s >> 5) {
	case 0:
		return s & 0x1f; /* small: selectors, queue indices, status bits */
	case 1: {
		static const uint32_t st[] = { 0, 1, 3, 11, 15, 0x4f, 0x80, 0x8b, 7, 0xffffffff };
		return st[(s & 0x1f) % 10];
	}
	case 2:
		return (uint32_t)QGPA((s & 7) % (h->nq ? h->nq : 1)) + (fin_u16(f) & ~15u);
	case 3:
		return 1u << (s & 31);
	default:
		return fin_u32(f);
	}
}

static uint16_t pick_queue(struct h *h, struct fin *f)
{
	uint8_t s = fin_u8(f);
	if (s >= 0xf0)
		return (uint16_t)(h->nq + (s & 3)); /* beyond the device's queues */
	return h->nq ? (uint16_t)(s % h->nq) : 0;
}

static struct vqb *qb(struct h *h, uint16_t qi)
{
	return qi < h->nq ? &h->b[qi] : NULL;
}

static void driver_reap(struct h *h, uint16_t qi)
{
	struct vqb *b = qb(h, qi);
	uint32_t id, len;
	if (!b)
		return;
	for (uint32_t i = 0; i <= b->size; i++)
		if (vqb_get_used(b, &id, &len) != 1)
			break;
}

static void notify(struct h *h, struct fin *f, uint16_t qi)
{
	uint8_t how = fin_u8(f) % 4;
	if (how == 0)
		return; /* published only */
	if (how == 1)
		virtio_mmio_queue_notify(h->t, qi);
	else
		mmio_write(h, VIRTIO_MMIO_QUEUE_NOTIFY, 4, qi);
}

static void send(struct h *h, struct fin *f)
{
	uint16_t qi = pick_queue(h, f);
	struct vqb *b = qb(h, qi);
	uint16_t head;
	if (b && vqm_build_chain(&h->m[qi], f, 32, 256, &head, NULL) == 0)
		vqb_publish(b, head);
	notify(h, f, qi);
}

static void process_deferred(struct h *h)
{
	virtio_transport_lock(h->t);
	for (uint16_t q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (h->pending & (1u << q))
			dev_process(h, q);
	h->pending = 0;
	virtio_transport_unlock(h->t);
}

static void device_event(struct h *h, struct fin *f)
{
	uint8_t e = fin_u8(f) % 4;
	if (e == 3) {
		process_deferred(h);
		return;
	}
	virtio_transport_lock(h->t);
	if (e == 0)
		virtio_transport_config_changed(h->t);
	else if (e == 1)
		virtio_transport_needs_reset(h->t, "device says so");
	else
		virtio_transport_notify_used(h->t, pick_queue(h, f));
	virtio_transport_unlock(h->t);
}

static void free_driver(struct h *h)
{
	for (unsigned int i = 0; i < h->nq; i++)
		vqb_destroy(&h->b[i]);
	h->have_b = false;
}

/* (Re)create the driver's rings; only while no queue is ready (they hold host
 * pointers into the old mappings). */
static bool init_driver(struct h *h)
{
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		FUZZ_CHECK(!h->t || !h->t->queues[i].vq.ready, "driver re-init with queue %u ready",
			   i);
	free_driver(h);
	guest_mem_init(&h->mem);
	for (unsigned int i = 0; i < h->nq; i++) {
		if (vqb_init(&h->b[i], QGPA(i), QRAM, h->ring_size) ||
		    guest_mem_add(&h->mem, h->b[i].ram_gpa, h->b[i].ram_size, h->b[i].ram)) {
			for (unsigned int k = 0; k <= i; k++)
				vqb_destroy(&h->b[k]);
			return false;
		}
		vqm_init(&h->m[i], &h->b[i]);
	}
	h->have_b = true;
	return true;
}

static void bring_up(struct h *h, uint64_t features)
{
	vqb_mmio_negotiate(h->t, features);
	for (uint16_t i = 0; i < h->nq; i++)
		vqb_mmio_setup_queue(h->t, i, &h->b[i]);
	vqb_mmio_driver_ok(h->t);
}

/* driver resets the device and starts from scratch */
static void restart(struct h *h)
{
	mmio_write(h, VIRTIO_MMIO_STATUS, 4, 0);
	FUZZ_CHECK(init_driver(h), "driver re-init (out of memory?)");
}

static void raw_op(struct h *h, struct fin *f)
{
	unsigned int len;
	uint64_t off;
	uint8_t op = fin_u8(f) % 16;
	FUZZ_TRACE("R op %u\n", op);
	switch (op) {
	case 0:
		off = pick_off(f, &len);
		mmio_write(h, off, len, pick_val(h, f));
		break;
	case 1:
		off = pick_off(f, &len);
		mmio_read(h, off, len);
		break;
	case 2: {
		static const unsigned int w[] = { 1, 2, 4, 8, 3, 4, 1, 2 };
		uint8_t s = fin_u8(f);
		mmio_read(h, VIRTIO_MMIO_CONFIG + fin_u8(f), w[s & 7]);
		break;
	}
	case 3: {
		static const unsigned int w[] = { 1, 2, 4, 8, 3, 4, 1, 2 };
		uint8_t s = fin_u8(f);
		off = VIRTIO_MMIO_CONFIG + fin_u8(f);
		mmio_write(h, off, w[s & 7], fin_u64(f));
		break;
	}
	case 4:
		vqb_mmio_negotiate(h->t, (fin_u8(f) & 1) ? ~0ull : fin_u64(f));
		break;
	case 5: {
		uint16_t qi = pick_queue(h, f);
		struct vqb *b = qb(h, qi);
		if (b)
			vqb_mmio_setup_queue(h->t, qi, b);
		else if (h->nq)
			vqb_mmio_setup_queue(h->t, qi, &h->b[0]);
		break;
	}
	case 6:
		vqb_mmio_driver_ok(h->t);
		break;
	case 7:
		send(h, f);
		break;
	case 8:
		mmio_write(h, VIRTIO_MMIO_QUEUE_NOTIFY, 4, pick_val(h, f));
		break;
	case 9: {
		uint32_t st = mmio_read(h, VIRTIO_MMIO_INTERRUPT_STATUS, 4);
		mmio_write(h, VIRTIO_MMIO_INTERRUPT_ACK, 4, (fin_u8(f) & 1) ? st : pick_val(h, f));
		break;
	}
	case 10:
		mmio_write(h, VIRTIO_MMIO_STATUS, 4, pick_val(h, f));
		break;
	case 11:
		device_event(h, f);
		break;
	case 12: {
		uint16_t qi = pick_queue(h, f);
		if (qb(h, qi))
			vqm_mutate(&h->m[qi], f);
		break;
	}
	case 13:
		driver_reap(h, pick_queue(h, f));
		break;
	case 14:
		restart(h);
		bring_up(h, (fin_u8(f) & 1) ? ~0ull : fin_u64(f));
		break;
	default:
		restart(h);
		break;
	}
}

static void template_op(struct h *h, struct fin *f)
{
	uint8_t op = fin_u8(f) % 8;
	FUZZ_TRACE("T op %u\n", op);
	switch (op) {
	case 4:
		driver_reap(h, pick_queue(h, f));
		break;
	case 5: { /* interrupt handler: read, ack, reap every queue */
		uint32_t st = mmio_read(h, VIRTIO_MMIO_INTERRUPT_STATUS, 4);
		mmio_write(h, VIRTIO_MMIO_INTERRUPT_ACK, 4, st);
		if (st & VIRTIO_MMIO_INT_CONFIG) {
			mmio_read(h, VIRTIO_MMIO_CONFIG_GENERATION, 4);
			if (mmio_read(h, VIRTIO_MMIO_STATUS, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET) {
				restart(h);
				bring_up(h, ~0ull);
			}
		}
		for (uint16_t q = 0; q < h->nq; q++)
			driver_reap(h, q);
		break;
	}
	case 6:
		if (h->budget) {
			h->budget--;
			raw_op(h, f);
		} else {
			device_event(h, f);
		}
		break;
	case 7: {
		uint8_t s = fin_u8(f);
		mmio_read(h, VIRTIO_MMIO_CONFIG + s % (h->ops.config_size + 1), (s & 1) ? 1 : 4);
		break;
	}
	default:
		send(h, f);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t cfg_sizes[] = { 0, 1, 4, 8, 24, 60, 255, 256 };
	static const uint16_t ring_sizes[] = { 16, 16, 16, 8, 4, 1, 0, 3 };
	struct fin f;
	struct h *h = calloc(1, sizeof(*h));
	if (!h)
		return 0;
	fin_init(&f, data, size);

	uint8_t mode = fin_u8(&f);
	bool raw = (mode & 3) == 3;
	h->budget = (mode >> 2) & 7;
	h->nq = fin_u8(&f) % 9;
	uint16_t qmax = (uint16_t)(1u << (fin_u8(&f) % 9));
	h->ops.name = "fuzz";
	h->ops.device_id = 0x4242;
	h->ops.num_queues = (uint16_t)h->nq;
	h->ops.queue_max_size = qmax;
	h->ops.config_size = cfg_sizes[fin_u8(&f) & 7];
	h->features = fin_u64(&f);
	uint8_t mask = fin_u8(&f);
	h->ops.features = (mask & 1) ? NULL : dev_features;
	h->ops.config_read = (mask & 2) ? NULL : dev_config_read;
	h->ops.config_write = (mask & 4) ? NULL : dev_config_write;
	h->ops.activate = (mask & 8) ? NULL : dev_activate;
	h->ops.queue_notify = (mask & 16) ? NULL : dev_notify;
	h->ops.reset = (mask & 32) ? NULL : dev_reset;
	h->ops.bind = dev_bind; /* the device needs its transport */
	if (mask & 64)
		h->ops.name = NULL;
	h->activate_ret = (mask & 128) ? -EINVAL : 0;
	uint8_t beh = fin_u8(&f);
	h->defer = beh & 1;
	h->cfg_on_notify = beh & 2;
	if (beh & 8) { /* virtio_mmio_new's own checks */
		struct virtio_dev_ops bad = h->ops;
		bad.num_queues = fin_u8(&f);
		bad.queue_max_size = fin_u16(&f);
		bad.config_size = fin_u16(&f);
		uint8_t nulls = fin_u8(&f);
		uint32_t mx = bad.queue_max_size;
		bool ok = !(nulls & 3) && bad.num_queues <= VIRTIO_MAX_QUEUES &&
			  (!bad.num_queues || (mx && mx <= VIRTQ_MAX_SIZE && !(mx & (mx - 1)))) &&
			  bad.config_size <= CFG_MAX;
		guest_mem_init(&h->mem);
		struct virtio_transport *t =
			virtio_mmio_new((nulls & 1) ? NULL : &bad, h, (nulls & 2) ? NULL : &h->mem,
					fuzz_irq_line(&h->irq, 3), fuzz_log());
		FUZZ_CHECK((t != NULL) == ok, "virtio_mmio_new accepted/refused wrongly");
		virtio_mmio_free(t);
		free(h);
		return 0;
	}
	uint16_t rs = ring_sizes[fin_u8(&f) & 7];
	h->ring_size = rs > qmax ? qmax : rs;
	if (!raw && !h->ring_size)
		h->ring_size = 1;
	for (unsigned int i = 0; i < sizeof(h->config); i++)
		h->config[i] = (uint8_t)(i * 7 + 1);

	if (!init_driver(h))
		goto out;
	h->t = virtio_mmio_new(&h->ops, h, &h->mem, fuzz_irq_line(&h->irq, 3), fuzz_log());
	if (beh & 4)
		h->irq.fail = -EIO;
	FUZZ_CHECK(h->t, "virtio_mmio_new failed on valid ops");
	if (!raw)
		bring_up(h, ~0ull);
	check_invariants(h);
	for (int i = 0; i < MAX_OPS && !fin_done(&f); i++) {
		if (raw)
			raw_op(h, &f);
		else
			template_op(h, &f);
		check_invariants(h);
	}
	virtio_mmio_free(h->t);
	FUZZ_CHECK(h->t == NULL, "unbind on free");
out:
	free_driver(h);
	free(h);
	return 0;
}
