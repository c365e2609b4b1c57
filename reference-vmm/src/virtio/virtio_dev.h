/* The contract between a virtio device model (blk, console, vsock) and its
 * transport (virtio-mmio today). Devices see guest memory, their queues and
 * this interface; never KVM. */
#ifndef VMM_VIRTIO_DEV_H
#define VMM_VIRTIO_DEV_H

#include "virtio/queue.h"

#include <stdint.h>

#define VIRTIO_MAX_QUEUES 8

/* device status bits */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* transport-independent feature bits */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* device ids */
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_VSOCK 19

struct virtio_transport;

/*
 * What the transport asks of a device. All callbacks run with the transport's
 * lock held (one lock per device), from a vCPU thread or the event loop.
 */
struct virtio_dev_ops {
	const char *name;
	uint32_t device_id;
	uint16_t num_queues;
	uint16_t queue_max_size; /* power of two */
	/* feature bits offered (VERSION_1 is added by the transport) */
	uint64_t (*features)(void *dev);
	/* config space access; off/len already bounds-checked against config_size */
	uint32_t config_size;
	void (*config_read)(void *dev, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(void *dev, uint32_t off, const uint8_t *data, uint32_t len);
	/* DRIVER_OK was set: queues that are ready may be used. Return 0 or -errno
	 * (the transport then sets NEEDS_RESET). */
	int (*activate)(void *dev, uint64_t features);
	/* the driver notified queue q (trapped write or ioeventfd) */
	void (*queue_notify)(void *dev, uint16_t q);
	/* device reset by the driver (status 0): drop all in-flight state */
	void (*reset)(void *dev);
	/* the transport the device now lives on (NULL: unbound, e.g. at VM
	 * teardown before the transport is freed). Called without the lock. */
	void (*bind)(void *dev, struct virtio_transport *t);
};

/*
 * What a device may call on its transport (with the lock held, i.e. from
 * within a callback, or after virtio_transport_lock()).
 */
struct virtq *virtio_transport_queue(struct virtio_transport *t, uint16_t q);
/* pushes done on q: interrupt the driver if the queue's suppression allows */
void virtio_transport_notify_used(struct virtio_transport *t, uint16_t q);
/* config space changed: bump ConfigGeneration, raise a config interrupt */
void virtio_transport_config_changed(struct virtio_transport *t);
/* the driver broke a rule: status |= NEEDS_RESET, config interrupt, queues stop */
void virtio_transport_needs_reset(struct virtio_transport *t, const char *why);
/* for backends on other threads (socket readable, ...) */
void virtio_transport_lock(struct virtio_transport *t);
void virtio_transport_unlock(struct virtio_transport *t);
/* is the device live (DRIVER_OK and not NEEDS_RESET)? */
bool virtio_transport_active(struct virtio_transport *t);

#endif
