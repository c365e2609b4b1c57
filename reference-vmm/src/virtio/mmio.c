/* virtio-mmio transport (version 2): registers, status state machine, feature
 * negotiation, queue setup and validation, interrupt status and level line,
 * NEEDS_RESET handling; implements the transport side of virtio_dev.h. */
#include "virtio/mmio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Policy choices (the virtio spec leaves these to the device):
 *  - Registers below 0x100 accept 32-bit aligned accesses only; anything else
 *    reads 0 and is ignored on write. Write-only registers read 0, writes to
 *    read-only registers are ignored. Unknown offsets likewise.
 *  - Config space (0x100 + off) accepts widths 1/2/4/8 at any offset as long
 *    as the access lies inside ops->config_size; out of bounds reads 0.
 *  - Status: writing 0 resets the device (ops->reset) and every queue. Bits
 *    can only be added: a write that clears a latched bit is ignored, and the
 *    driver cannot set NEEDS_RESET itself. FEATURES_OK is refused (not latched)
 *    if the driver accepted a feature not offered or not VERSION_1. DRIVER_OK
 *    without FEATURES_OK is not latched. DRIVER_OK calls ops->activate (not
 *    while NEEDS_RESET is set: the bit is latched, the device stays inactive);
 *    an error there → NEEDS_RESET. After a successful activate, every ready queue
 *    that already has available buffers gets one ops->queue_notify (the
 *    driver may have kicked it before DRIVER_OK; such kicks are ignored).
 *  - DriverFeatures writes after FEATURES_OK are ignored.
 *  - Queue registers (QueueNum, addresses, QueueReady=1) are writable only
 *    while the selected queue is not ready and QueueSel < num_queues; other
 *    writes are ignored. QueueReady bit 0 is what counts (2 reads as 0).
 *    QueueReady=1 before FEATURES_OK is ignored (the ring
 *    format depends on EVENT_IDX). QueueReady=1 validates the queue: QueueNum
 *    0 or > QueueNumMax, or any virtq_enable error → NEEDS_RESET. QueueReady=0
 *    stops the queue (its registers are kept).
 *  - QueueNotify is ignored (logged at debug level) unless the index is in
 *    range, DRIVER_OK is set, the device is not in NEEDS_RESET and the queue
 *    is ready.
 *  - NEEDS_RESET is sticky until the driver writes status 0; the reason is
 *    logged once (warning), a config interrupt is raised and notifications stop.
 *  - Config-change interrupts are raised only after DRIVER_OK (the generation
 *    counter is bumped regardless); the NEEDS_RESET one always.
 *  - Guest mistakes are logged at debug level only (a guest cannot flood the
 *    host log), except the one NEEDS_RESET reason.
 */

static const char *dev_name(const struct virtio_transport *t)
{
	return t->ops->name ? t->ops->name : "device";
}

static void update_irq(struct virtio_transport *t)
{
	int level = t->int_status != 0;

	if (level == t->irq_level)
		return;
	t->irq_level = level;
	int ret = irq_line_set(&t->irq, level);
	if (ret)
		log_warn(t->log, "virtio-mmio %s: cannot set irq level %d: %d", dev_name(t), level,
			 ret);
}

static void raise_int(struct virtio_transport *t, uint32_t bits)
{
	t->int_status |= bits;
	update_irq(t);
}

static uint64_t offered_features(struct virtio_transport *t)
{
	uint64_t f = t->ops->features ? t->ops->features(t->dev) : 0;

	f &= ~VIRTIO_MMIO_RESERVED_FEATURES | VIRTIO_MMIO_TRANSPORT_FEATURES;
	return f | (1ull << VIRTIO_F_VERSION_1);
}

static struct virtio_mmio_queue *sel_queue(struct virtio_transport *t)
{
	if (t->queue_sel >= t->ops->num_queues)
		return NULL;
	return &t->queues[t->queue_sel];
}

static void set_needs_reset(struct virtio_transport *t, const char *why)
{
	if (t->needs_reset)
		return;
	t->needs_reset = true;
	log_warn(t->log, "virtio-mmio %s: device needs reset: %s", dev_name(t),
		 why ? why : "unspecified");
	raise_int(t, VIRTIO_MMIO_INT_CONFIG);
}

static void device_reset(struct virtio_transport *t)
{
	if (t->ops->reset)
		t->ops->reset(t->dev);
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct virtio_mmio_queue *mq = &t->queues[i];
		virtq_reset(&mq->vq);
		mq->num = 0;
		mq->desc = mq->driver = mq->device = 0;
	}
	t->status = 0;
	t->needs_reset = false;
	t->dev_features_sel = 0;
	t->drv_features_sel = 0;
	t->driver_features = 0;
	t->driver_features_bad = false;
	t->queue_sel = 0;
	t->shm_sel = 0;
	t->early_notify_logged = false;
	t->int_status = 0;
	update_irq(t);
}

static void do_notify(struct virtio_transport *t, uint32_t q)
{
	if (q >= t->ops->num_queues) {
		log_dbg(t->log, "virtio-mmio %s: notify of queue %u ignored: no such queue",
			dev_name(t), q);
		return;
	}
	if (!(t->status & VIRTIO_STATUS_DRIVER_OK)) {
		if (!t->early_notify_logged)
			log_dbg(t->log, "virtio-mmio %s: notify before DRIVER_OK ignored",
				dev_name(t));
		t->early_notify_logged = true;
		return;
	}
	if (t->needs_reset || !t->queues[q].vq.ready)
		return;
	if (t->ops->queue_notify)
		t->ops->queue_notify(t->dev, (uint16_t)q);
}

static void activate(struct virtio_transport *t)
{
	int ret = t->ops->activate ? t->ops->activate(t->dev, t->driver_features) : 0;

	if (ret) {
		char why[64];
		snprintf(why, sizeof(why), "activation failed (%d)", ret);
		set_needs_reset(t, why);
		return;
	}
	for (uint16_t i = 0; i < t->ops->num_queues && !t->needs_reset; i++) {
		struct virtq *vq = &t->queues[i].vq;
		if (vq->ready && virtq_avail_pending(vq) && t->ops->queue_notify)
			t->ops->queue_notify(t->dev, i);
	}
}

static bool features_ok(struct virtio_transport *t)
{
	uint64_t offered = offered_features(t);

	if (t->driver_features_bad || (t->driver_features & ~offered)) {
		log_dbg(t->log, "virtio-mmio %s: FEATURES_OK refused: features %#llx not offered",
			dev_name(t), (unsigned long long)(t->driver_features & ~offered));
		return false;
	}
	if (!(t->driver_features & (1ull << VIRTIO_F_VERSION_1))) {
		log_dbg(t->log, "virtio-mmio %s: FEATURES_OK refused: no VERSION_1 (legacy driver)",
			dev_name(t));
		return false;
	}
	return true;
}

static void status_write(struct virtio_transport *t, uint32_t v)
{
	if (v == 0) {
		device_reset(t);
		return;
	}
	v &= ~(uint32_t)VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if ((v & t->status) != t->status) {
		log_dbg(t->log, "virtio-mmio %s: status %#x clears bits of %#x: ignored",
			dev_name(t), v, t->status);
		return;
	}
	uint32_t added = v & ~t->status;
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_ok(t))
		added &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
	if ((added & VIRTIO_STATUS_DRIVER_OK) &&
	    !((t->status | added) & VIRTIO_STATUS_FEATURES_OK)) {
		log_dbg(t->log, "virtio-mmio %s: DRIVER_OK without FEATURES_OK ignored",
			dev_name(t));
		added &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
	}
	t->status |= added;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !t->needs_reset)
		activate(t);
}

static void queue_ready_write(struct virtio_transport *t, struct virtio_mmio_queue *mq,
			      uint32_t v)
{
	struct virtq *vq = &mq->vq;

	if (!(v & 1)) {
		virtq_reset(vq);
		return;
	}
	if (vq->ready)
		return;
	if (!(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		log_dbg(t->log, "virtio-mmio %s: QueueReady before FEATURES_OK ignored",
			dev_name(t));
		return;
	}
	if (t->needs_reset)
		return;

	char why[96];
	int err;
	if (mq->num == 0 || mq->num > t->ops->queue_max_size) {
		err = -VIRTQ_ERR_SIZE;
	} else {
		virtq_reset(vq);
		vq->size = (uint16_t)mq->num;
		vq->desc_gpa = mq->desc;
		vq->avail_gpa = mq->driver;
		vq->used_gpa = mq->device;
		vq->event_idx = t->driver_features & (1ull << VIRTIO_F_RING_EVENT_IDX);
		err = virtq_enable(vq);
	}
	if (err) {
		snprintf(why, sizeof(why), "queue %u (size %u): %s", t->queue_sel, mq->num,
			 virtq_strerror(err));
		set_needs_reset(t, why);
	}
}

static uint32_t reg_read(struct virtio_transport *t, uint64_t off)
{
	struct virtio_mmio_queue *mq = sel_queue(t);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->dev_features_sel > 1)
			return 0;
		return (uint32_t)(offered_features(t) >> (32 * t->dev_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return mq ? t->ops->queue_max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return mq ? mq->vq.ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return t->int_status;
	case VIRTIO_MMIO_STATUS:
		return t->status | (t->needs_reset ? VIRTIO_STATUS_DEVICE_NEEDS_RESET : 0);
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffff; /* no shared memory regions: length -1 */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_generation;
	default:
		return 0;
	}
}

static void set_low(uint64_t *r, uint32_t v)
{
	*r = (*r & ~0xffffffffull) | v;
}

static void set_high(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffffull) | (uint64_t)v << 32;
}

static void queue_reg_write(struct virtio_transport *t, uint64_t off, uint32_t v)
{
	struct virtio_mmio_queue *mq = sel_queue(t);

	if (!mq) {
		log_dbg(t->log, "virtio-mmio %s: write %#llx to queue register of queue %u ignored",
			dev_name(t), (unsigned long long)off, t->queue_sel);
		return;
	}
	if (off == VIRTIO_MMIO_QUEUE_READY) {
		queue_ready_write(t, mq, v);
		return;
	}
	if (mq->vq.ready) {
		log_dbg(t->log, "virtio-mmio %s: queue %u register %#llx written while ready: ignored",
			dev_name(t), t->queue_sel, (unsigned long long)off);
		return;
	}
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		mq->num = v;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		set_low(&mq->desc, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_high(&mq->desc, v);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
		set_low(&mq->driver, v);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		set_high(&mq->driver, v);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
		set_low(&mq->device, v);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		set_high(&mq->device, v);
		break;
	}
}

static void reg_write(struct virtio_transport *t, uint64_t off, uint32_t v)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (t->status & VIRTIO_STATUS_FEATURES_OK) {
			log_dbg(t->log, "virtio-mmio %s: DriverFeatures after FEATURES_OK ignored",
				dev_name(t));
			break;
		}
		if (t->drv_features_sel == 0)
			set_low(&t->driver_features, v);
		else if (t->drv_features_sel == 1)
			set_high(&t->driver_features, v);
		else if (v)
			t->driver_features_bad = true;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_features_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		queue_reg_write(t, off, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		do_notify(t, v);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t->int_status &= ~v;
		update_irq(t);
		break;
	case VIRTIO_MMIO_STATUS:
		status_write(t, v);
		break;
	case VIRTIO_MMIO_SHM_SEL:
		t->shm_sel = v;
		break;
	default:
		log_dbg(t->log, "virtio-mmio %s: write to %#llx ignored", dev_name(t),
			(unsigned long long)off);
		break;
	}
}

/* [off, off+len) inside the config space? off is relative to VIRTIO_MMIO_CONFIG */
static bool config_range_ok(const struct virtio_transport *t, uint64_t off, unsigned int len)
{
	if (len != 1 && len != 2 && len != 4 && len != 8)
		return false;
	return off < t->ops->config_size && len <= t->ops->config_size - off;
}

static void mmio_read(void *opaque, uint64_t off, uint8_t *data, unsigned int len)
{
	struct virtio_transport *t = opaque;

	memset(data, 0, len);
	pthread_mutex_lock(&t->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t coff = off - VIRTIO_MMIO_CONFIG;
		if (config_range_ok(t, coff, len) && t->ops->config_read)
			t->ops->config_read(t->dev, (uint32_t)coff, data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v = reg_read(t, off);
		data[0] = (uint8_t)v;
		data[1] = (uint8_t)(v >> 8);
		data[2] = (uint8_t)(v >> 16);
		data[3] = (uint8_t)(v >> 24);
	} else {
		log_dbg(t->log, "virtio-mmio %s: %u-byte read at %#llx ignored", dev_name(t), len,
			(unsigned long long)off);
	}
	pthread_mutex_unlock(&t->lock);
}

static void mmio_write(void *opaque, uint64_t off, const uint8_t *data, unsigned int len)
{
	struct virtio_transport *t = opaque;

	pthread_mutex_lock(&t->lock);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t coff = off - VIRTIO_MMIO_CONFIG;
		if (config_range_ok(t, coff, len) && t->ops->config_write)
			t->ops->config_write(t->dev, (uint32_t)coff, data, len);
		else
			log_dbg(t->log, "virtio-mmio %s: config write %u@%#llx ignored",
				dev_name(t), len, (unsigned long long)coff);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
			     (uint32_t)data[3] << 24;
		reg_write(t, off, v);
	} else {
		log_dbg(t->log, "virtio-mmio %s: %u-byte write at %#llx ignored", dev_name(t), len,
			(unsigned long long)off);
	}
	pthread_mutex_unlock(&t->lock);
}

const struct bus_device_ops virtio_mmio_bus_ops = {
	.read = mmio_read,
	.write = mmio_write,
};

void virtio_mmio_queue_notify(struct virtio_transport *t, uint16_t q)
{
	pthread_mutex_lock(&t->lock);
	do_notify(t, q);
	pthread_mutex_unlock(&t->lock);
}

struct virtio_transport *virtio_mmio_new(const struct virtio_dev_ops *ops, void *dev,
					 const struct guest_mem *mem, struct irq_line irq,
					 const struct log *log)
{
	if (!ops || !mem) {
		log_err(log, "virtio-mmio: no device ops or guest memory");
		return NULL;
	}
	const char *name = ops->name ? ops->name : "device";
	if (ops->num_queues > VIRTIO_MAX_QUEUES) {
		log_err(log, "virtio-mmio %s: %u queues, at most %u supported", name,
			ops->num_queues, VIRTIO_MAX_QUEUES);
		return NULL;
	}
	uint32_t max = ops->queue_max_size;
	if (ops->num_queues && (max == 0 || max > VIRTQ_MAX_SIZE || (max & (max - 1)))) {
		log_err(log, "virtio-mmio %s: queue size %u is not a power of two <= %u", name, max,
			VIRTQ_MAX_SIZE);
		return NULL;
	}
	if (ops->config_size > VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG) {
		log_err(log, "virtio-mmio %s: config space of %u bytes does not fit", name,
			ops->config_size);
		return NULL;
	}

	struct virtio_transport *t = calloc(1, sizeof(*t));
	if (!t) {
		log_err(log, "virtio-mmio %s: out of memory", name);
		return NULL;
	}
	if (pthread_mutex_init(&t->lock, NULL)) {
		free(t);
		log_err(log, "virtio-mmio %s: cannot create its lock", name);
		return NULL;
	}
	t->ops = ops;
	t->dev = dev;
	t->mem = mem;
	t->irq = irq;
	t->log = log;
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		virtq_init(&t->queues[i].vq, mem);
	if (ops->bind)
		ops->bind(dev, t);
	return t;
}

void virtio_mmio_free(struct virtio_transport *t)
{
	if (!t)
		return;
	if (t->ops->bind)
		t->ops->bind(t->dev, NULL);
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		virtq_reset(&t->queues[i].vq);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* --- the device-facing side (virtio_dev.h); callers hold the lock --- */

struct virtq *virtio_transport_queue(struct virtio_transport *t, uint16_t q)
{
	if (!t || q >= t->ops->num_queues)
		return NULL;
	return &t->queues[q].vq;
}

void virtio_transport_notify_used(struct virtio_transport *t, uint16_t q)
{
	if (!t || q >= t->ops->num_queues)
		return;
	if (virtq_needs_interrupt(&t->queues[q].vq))
		raise_int(t, VIRTIO_MMIO_INT_VRING);
}

void virtio_transport_config_changed(struct virtio_transport *t)
{
	if (!t)
		return;
	t->config_generation++;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		raise_int(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_transport_needs_reset(struct virtio_transport *t, const char *why)
{
	if (t)
		set_needs_reset(t, why);
}

void virtio_transport_lock(struct virtio_transport *t)
{
	pthread_mutex_lock(&t->lock);
}

void virtio_transport_unlock(struct virtio_transport *t)
{
	pthread_mutex_unlock(&t->lock);
}

bool virtio_transport_active(struct virtio_transport *t)
{
	return t && (t->status & VIRTIO_STATUS_DRIVER_OK) && !t->needs_reset;
}

bool virtio_mmio_irq_pending(struct virtio_transport *t)
{
	pthread_mutex_lock(&t->lock);
	bool pending = t->int_status != 0;
	pthread_mutex_unlock(&t->lock);
	return pending;
}
