/* Virtio device slots: per-boot virtio-mmio transports on the MMIO bus, level
 * IRQs through the arch irq line, queue kicks through KVM ioeventfds serviced
 * by the event loop (trapped MMIO writes when KVM has no ioeventfd). */
#include "core/virtio_slots.h"
#include "core/arch.h"
#include "core/vmm_internal.h"
#include "virtio/mmio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

int virtio_slots_add(struct vmm *vmm, const struct virtio_dev_ops *ops, void *dev,
		     void (*free_dev)(void *dev))
{
	if (vmm->nr_virtio >= VMM_MAX_VIRTIO)
		return -ENOSPC;
	struct virtio_slot *s = &vmm->virtio[vmm->nr_virtio++];
	memset(s, 0, sizeof(*s));
	s->vmm = vmm;
	s->ops = ops;
	s->dev = dev;
	s->free_dev = free_dev;
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		s->kicks[q].fd = -1;
	s->irqfd.trigger_fd = s->irqfd.resample_fd = -1;
	return 0;
}

static void on_kick(void *ctx, int fd, uint32_t events)
{
	struct virtio_kick *k = ctx;
	(void)events;
	uint64_t v;
	if (sys_read(&k->slot->vmm->sys, fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		virtio_mmio_queue_notify(k->slot->t, k->queue);
}

/* Register (assign=true) or remove a KVM ioeventfd for one queue's notify. */
static int ioeventfd(struct vmm *vmm, struct virtio_slot *s, struct virtio_kick *k, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = k->queue,
		.addr = s->base + VIRTIO_MMIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = k->fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	return sys_ioctl_ptr(&vmm->sys, vmm->vm_fd, KVM_IOEVENTFD, &io);
}

static void kicks_teardown(struct vmm *vmm, struct virtio_slot *s)
{
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		struct virtio_kick *k = &s->kicks[q];
		if (k->fd < 0)
			continue;
		event_loop_del(&vmm->loop, k->fd);
		if (vmm->vm_fd >= 0)
			ioeventfd(vmm, s, k, false);
		sys_close(&vmm->sys, k->fd);
		k->fd = -1;
	}
}

static int irqfd_ioctl(struct vmm *vmm, struct virtio_slot *s, bool assign)
{
	struct kvm_irqfd f = {
		.fd = (uint32_t)s->irqfd.trigger_fd,
		.gsi = s->irq,
		.flags = assign ? KVM_IRQFD_FLAG_RESAMPLE : KVM_IRQFD_FLAG_DEASSIGN,
		.resamplefd = assign ? (uint32_t)s->irqfd.resample_fd : 0,
	};
	return sys_ioctl_ptr(&vmm->sys, vmm->vm_fd, KVM_IRQFD, &f);
}

static void irqfd_signal(struct virtio_slot *s)
{
	uint64_t one = 1;
	if (sys_write(&s->vmm->sys, s->irqfd.trigger_fd, &one, sizeof(one)) < 0)
		log_warn(&s->vmm->log, "%s: cannot signal its irqfd", s->ops->name);
}

/* The transport's irq line: with an irqfd, assert = signal it (KVM deasserts at
 * EOI); without one, drive the level with KVM_IRQ_LINE. */
static int slot_set_irq(void *ctx, unsigned int irq, int level)
{
	struct virtio_slot *s = ctx;
	if (s->irqfd.trigger_fd < 0)
		return vmm_set_irq(s->vmm, irq, level);
	if (level)
		irqfd_signal(s);
	return 0;
}

/* Guest EOI'd the SPI: re-assert while the device still has something pending. */
static void on_resample(void *ctx, int fd, uint32_t events)
{
	struct virtio_slot *s = ctx;
	(void)events;
	uint64_t v;
	if (sys_read(&s->vmm->sys, fd, &v, sizeof(v)) == (ssize_t)sizeof(v) && s->t &&
	    virtio_mmio_irq_pending(s->t))
		irqfd_signal(s);
}

static void irqfd_teardown(struct vmm *vmm, struct virtio_slot *s)
{
	if (s->irqfd.resample_fd >= 0)
		event_loop_del(&vmm->loop, s->irqfd.resample_fd);
	if (s->irqfd.trigger_fd >= 0 && s->irqfd.resample_fd >= 0 && vmm->vm_fd >= 0)
		irqfd_ioctl(vmm, s, false);
	if (s->irqfd.trigger_fd >= 0)
		sys_close(&vmm->sys, s->irqfd.trigger_fd);
	if (s->irqfd.resample_fd >= 0)
		sys_close(&vmm->sys, s->irqfd.resample_fd);
	s->irqfd.trigger_fd = s->irqfd.resample_fd = -1;
}

/* irqfd + resamplefd where KVM offers them; on any failure the KVM_IRQ_LINE
 * path is used (logged). */
static void irqfd_setup(struct vmm *vmm, struct virtio_slot *s)
{
	s->irqfd.trigger_fd = s->irqfd.resample_fd = -1;
	if (sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) <= 0 ||
	    sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD_RESAMPLE) <= 0)
		return;
	s->irqfd.trigger_fd = sys_eventfd(&vmm->sys, 0, EFD_NONBLOCK);
	s->irqfd.resample_fd = sys_eventfd(&vmm->sys, 0, EFD_NONBLOCK);
	int r = (s->irqfd.trigger_fd < 0) ? s->irqfd.trigger_fd : s->irqfd.resample_fd;
	if (r >= 0) {
		r = irqfd_ioctl(vmm, s, true);
		if (r >= 0) {
			r = event_loop_add(&vmm->loop, s->irqfd.resample_fd, EPOLLIN, on_resample, s);
			if (r < 0)
				irqfd_ioctl(vmm, s, false);
		}
	}
	if (r < 0) {
		int fds[2] = { s->irqfd.trigger_fd, s->irqfd.resample_fd };
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				sys_close(&vmm->sys, fds[i]);
		s->irqfd.trigger_fd = s->irqfd.resample_fd = -1;
		log_warn(&vmm->log, "%s: interrupt through KVM_IRQ_LINE (irqfd: %s)", s->ops->name,
			 strerror(-r));
	}
}

/* Fast path for queue kicks; on any failure the trapped MMIO path still works. */
static void kicks_setup(struct vmm *vmm, struct virtio_slot *s)
{
	if (sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) <= 0)
		return;
	for (uint16_t q = 0; q < s->ops->num_queues && q < VIRTIO_MAX_QUEUES; q++) {
		struct virtio_kick *k = &s->kicks[q];
		k->slot = s;
		k->queue = q;
		k->fd = sys_eventfd(&vmm->sys, 0, EFD_NONBLOCK);
		int r = k->fd < 0 ? k->fd : ioeventfd(vmm, s, k, true);
		if (r >= 0) {
			r = event_loop_add(&vmm->loop, k->fd, EPOLLIN, on_kick, k);
			if (r < 0)
				ioeventfd(vmm, s, k, false);
		}
		if (r < 0) {
			if (k->fd >= 0)
				sys_close(&vmm->sys, k->fd);
			k->fd = -1;
			log_warn(&vmm->log, "%s: queue %u kicks are trapped (ioeventfd: %s)",
				 s->ops->name, q, strerror(-r));
		}
	}
}

int virtio_slots_boot(struct vmm *vmm, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < vmm->nr_virtio; i++) {
		struct virtio_slot *s = &vmm->virtio[i];
		arch_virtio_slot(i, &s->base, &s->irq);
		irqfd_setup(vmm, s);
		struct irq_line line = { .set_level = slot_set_irq, .ctx = s, .irq = s->irq };
		s->t = virtio_mmio_new(s->ops, s->dev, &vmm->mem, line, &vmm->log);
		if (!s->t) {
			snprintf(err, errlen, "cannot create the virtio-mmio transport of %s",
				 s->ops->name);
			return -ENOMEM;
		}
		int r = bus_register(&vmm->mmio, s->base, VIRTIO_MMIO_SIZE, &virtio_mmio_bus_ops,
				     s->t, s->ops->name);
		if (r < 0) {
			snprintf(err, errlen, "cannot place %s at 0x%llx: %s", s->ops->name,
				 (unsigned long long)s->base, strerror(-r));
			return r;
		}
		s->on_bus = true;
		kicks_setup(vmm, s);
	}
	return 0;
}

void virtio_slots_teardown(struct vmm *vmm)
{
	for (unsigned int i = 0; i < vmm->nr_virtio; i++) {
		struct virtio_slot *s = &vmm->virtio[i];
		kicks_teardown(vmm, s);
		irqfd_teardown(vmm, s);
		if (!s->t)
			continue;
		/* the device forgets buffers of the guest memory that goes away */
		virtio_transport_lock(s->t);
		if (s->ops->reset)
			s->ops->reset(s->dev);
		virtio_transport_unlock(s->t);
		virtio_mmio_free(s->t); /* unbinds the device */
		s->t = NULL;
		s->on_bus = false; /* the bus itself is reset by the VM teardown */
	}
}

void virtio_slots_free(struct vmm *vmm)
{
	for (unsigned int i = 0; i < vmm->nr_virtio; i++) {
		struct virtio_slot *s = &vmm->virtio[i];
		if (s->free_dev)
			s->free_dev(s->dev);
		s->dev = NULL;
	}
	vmm->nr_virtio = 0;
}
