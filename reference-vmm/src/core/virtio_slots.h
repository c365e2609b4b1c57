/* Virtio devices of a VM: their backends live as long as the VMM; each boot
 * puts them on fresh virtio-mmio transports (bus range, IRQ, ioeventfd kicks). */
#ifndef VMM_VIRTIO_SLOTS_H
#define VMM_VIRTIO_SLOTS_H

#include "virtio/virtio_dev.h"

#include <stddef.h>
#include <stdint.h>

#define VMM_MAX_VIRTIO 16

struct vmm;
struct virtio_slot;

struct virtio_kick {
	struct virtio_slot *slot;
	uint16_t queue;
	int fd; /* eventfd registered with KVM_IOEVENTFD, -1 if trapped */
};

/* The device's interrupt as a KVM irqfd with a resamplefd (level semantics:
 * KVM lowers the line at the guest's EOI and signals the resamplefd; the slot
 * re-asserts while the transport still has an interrupt pending). */
struct virtio_irqfd {
	int trigger_fd; /* -1: no irqfd, the line is driven with KVM_IRQ_LINE */
	int resample_fd;
};

struct virtio_slot {
	struct vmm *vmm;
	const struct virtio_dev_ops *ops;
	void *dev;
	void (*free_dev)(void *dev);
	/* per boot */
	struct virtio_transport *t;
	uint64_t base;
	unsigned int irq;
	struct virtio_kick kicks[VIRTIO_MAX_QUEUES];
	struct virtio_irqfd irqfd;
	bool on_bus;
};

/* Add a device backend (ownership passes: free_dev is called at the end). */
int virtio_slots_add(struct vmm *vmm, const struct virtio_dev_ops *ops, void *dev,
		     void (*free_dev)(void *dev));
/* Per boot: transports, bus ranges, ioeventfds. 0 or -errno with err set. */
int virtio_slots_boot(struct vmm *vmm, char *err, size_t errlen);
/* Per boot teardown: devices reset and unbound, transports freed, kicks removed. */
void virtio_slots_teardown(struct vmm *vmm);
/* Free every backend (after the event loop stopped). */
void virtio_slots_free(struct vmm *vmm);

#endif
