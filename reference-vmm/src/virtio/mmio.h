/* virtio-mmio transport, version 2 (virtio 1.x) only: the register file, the
 * device status state machine, feature negotiation, queue setup, interrupt
 * status and the level interrupt line, for one device model (virtio_dev.h). */
#ifndef VMM_VIRTIO_MMIO_H
#define VMM_VIRTIO_MMIO_H

#include "core/bus.h"
#include "core/guest_mem.h"
#include "core/irq.h"
#include "core/log.h"
#include "virtio/queue.h"
#include "virtio/virtio_dev.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_MMIO_SIZE 0x200

/* registers (32-bit, aligned accesses only) */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_SHM_SEL 0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW 0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH 0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW 0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH 0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100 /* device config space, up to VIRTIO_MMIO_SIZE */

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x4d4d5652 /* "RVMM" */

/* InterruptStatus / InterruptACK bits */
#define VIRTIO_MMIO_INT_VRING 1
#define VIRTIO_MMIO_INT_CONFIG 2

/* Feature bits 24..41 belong to the transport/ring: only these are offered,
 * whatever the device asks for (VERSION_1 always). */
#define VIRTIO_MMIO_TRANSPORT_FEATURES                                                        \
	((1ull << VIRTIO_F_RING_INDIRECT_DESC) | (1ull << VIRTIO_F_RING_EVENT_IDX) |         \
	 (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_ACCESS_PLATFORM))
#define VIRTIO_MMIO_RESERVED_FEATURES (((1ull << 42) - 1) & ~((1ull << 24) - 1))

/* per-queue registers as the driver wrote them; vq is built from them at QueueReady=1 */
struct virtio_mmio_queue {
	uint32_t num;
	uint64_t desc, driver, device;
	struct virtq vq;
};

/* One virtio-mmio device. Fields are private to mmio.c (tests may read them). */
struct virtio_transport {
	pthread_mutex_t lock;
	const struct virtio_dev_ops *ops;
	void *dev;
	const struct guest_mem *mem;
	struct irq_line irq;
	const struct log *log;

	uint32_t status; /* as latched from the driver, NEEDS_RESET kept apart */
	bool needs_reset;
	uint32_t dev_features_sel;
	uint32_t drv_features_sel;
	uint64_t driver_features;
	bool driver_features_bad; /* non-zero bits written with DriverFeaturesSel >= 2 */
	uint32_t queue_sel;
	uint32_t shm_sel;
	uint32_t int_status;
	int irq_level; /* level last driven on the line */
	uint32_t config_generation;
	bool early_notify_logged;
	struct virtio_mmio_queue queues[VIRTIO_MAX_QUEUES];
};

/*
 * Create a transport for device `dev` driven by `ops` (which must outlive it).
 * Checks the ops: num_queues <= VIRTIO_MAX_QUEUES, queue_max_size a power of
 * two <= 32768 (when there are queues), config_size <= VIRTIO_MMIO_SIZE -
 * VIRTIO_MMIO_CONFIG. Calls ops->bind(dev, t) (without the lock). Returns NULL
 * (logged) on bad ops or out of memory. `log` may be NULL.
 */
struct virtio_transport *virtio_mmio_new(const struct virtio_dev_ops *ops, void *dev,
					 const struct guest_mem *mem, struct irq_line irq,
					 const struct log *log);
/* Calls ops->bind(dev, NULL), frees the queues and the transport. NULL is a
 * no-op. Nobody may use t afterwards (stop the vCPUs and the event loop first). */
void virtio_mmio_free(struct virtio_transport *t);

/* Bus handlers; dev pointer = the transport. They take the lock. */
extern const struct bus_device_ops virtio_mmio_bus_ops;

/* QueueNotify fast path (ioeventfd on VIRTIO_MMIO_QUEUE_NOTIFY with datamatch
 * = q, from the event-loop thread): takes the lock, same checks as a trapped
 * write (q in range, DRIVER_OK, not NEEDS_RESET, queue ready). */
void virtio_mmio_queue_notify(struct virtio_transport *t, uint16_t q);

/* Is an interrupt pending (InterruptStatus != 0)? Takes the lock. For level
 * emulation over an irqfd: at the guest's EOI (resample) the caller re-asserts
 * the line while this is true. */
bool virtio_mmio_irq_pending(struct virtio_transport *t);

#endif
