/* VFIO device IRQs: eventfd triggers, unmask (resample) eventfds for automasked level
 * IRQs, explicit unmasking at enable and reset (see "Level interrupts" in vfio.h). */
#include "passthrough/vfio_int.h"

#include <errno.h>
#include <string.h>

/* VFIO_DEVICE_SET_IRQS on sub-IRQ 0 of `index`: count 1, with one eventfd (fd != NULL)
 * or no data. */
static int set_irqs(struct vfio_dev *dev, unsigned int index, uint32_t flags, const int32_t *fd)
{
	union {
		struct vfio_irq_set set;
		uint8_t raw[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	} u;

	memset(&u, 0, sizeof(u));
	u.set.argsz = sizeof(struct vfio_irq_set) + (fd ? sizeof(int32_t) : 0);
	u.set.flags = flags;
	u.set.index = index;
	u.set.start = 0;
	u.set.count = 1;
	if (fd)
		memcpy(u.raw + sizeof(struct vfio_irq_set), fd, sizeof(*fd));
	int r = sys_ioctl_ptr(&dev->c->sys, dev->fd, VFIO_DEVICE_SET_IRQS, &u);
	return r < 0 ? r : 0;
}

static int set_eventfd(struct vfio_dev *dev, unsigned int index, uint32_t action, int fd)
{
	int32_t v = fd;
	return set_irqs(dev, index, VFIO_IRQ_SET_DATA_EVENTFD | action, &v);
}

static int unmask(struct vfio_dev *dev, unsigned int index)
{
	return set_irqs(dev, index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, NULL);
}

int vfio_dev_irq_unmask(struct vfio_dev *dev, unsigned int index)
{
	struct vfio_irq *q = vfio_dev_irq(dev, index);
	if (!q || !q->count || !(q->flags & VFIO_IRQ_INFO_MASKABLE))
		return -EINVAL;
	return unmask(dev, index);
}

int vfio_dev_irq_disable(struct vfio_dev *dev, unsigned int index)
{
	struct vfio_irq *q = vfio_dev_irq(dev, index);
	int r = 0;

	if (!q)
		return -EINVAL;
	if (!q->enabled)
		return 0;
	/* trigger first: nothing is signalled once this returns */
	int e = set_eventfd(dev, index, VFIO_IRQ_SET_ACTION_TRIGGER, -1);
	if (e < 0) {
		log_warn(dev->c->log, "cannot disable IRQ %u of %s: %s", index, dev->name,
			 strerror(-e));
		r = e;
	}
	if (q->unmask_fd >= 0) {
		e = set_eventfd(dev, index, VFIO_IRQ_SET_ACTION_UNMASK, -1);
		if (e < 0) {
			log_warn(dev->c->log,
				 "cannot remove the unmask eventfd of IRQ %u of %s: %s", index,
				 dev->name, strerror(-e));
			if (!r)
				r = e;
		}
	}
	q->enabled = false;
	q->trigger_fd = q->unmask_fd = -1;
	return r;
}

int vfio_dev_irq_enable(struct vfio_dev *dev, unsigned int index, int trigger_fd, int unmask_fd,
			char *err, size_t errlen)
{
	struct vfio_irq *q = vfio_dev_irq(dev, index);
	int r;

	if (!q)
		return vfio_fail(err, errlen, -EINVAL, "%s has no IRQ %u", dev->name, index);
	if (!q->count || !(q->flags & VFIO_IRQ_INFO_EVENTFD))
		return vfio_fail(err, errlen, -EINVAL, "IRQ %u of %s cannot signal an eventfd",
				 index, dev->name);
	if (trigger_fd < 0)
		return vfio_fail(err, errlen, -EINVAL, "IRQ %u of %s needs a trigger eventfd",
				 index, dev->name);
	bool level = vfio_irq_is_level(q);
	if (level && !(q->flags & VFIO_IRQ_INFO_MASKABLE))
		return vfio_fail(err, errlen, -EINVAL,
				 "level IRQ %u of %s is automasked but cannot be unmasked", index,
				 dev->name);
	if (q->enabled)
		vfio_dev_irq_disable(dev, index);
	if (!level)
		unmask_fd = -1;

	/* unmask eventfd before the trigger: a resample that happens between the two
	 * is then not lost (the kernel also unmasks at once if it is already signalled) */
	if (unmask_fd >= 0) {
		r = set_eventfd(dev, index, VFIO_IRQ_SET_ACTION_UNMASK, unmask_fd);
		if (r < 0)
			return vfio_fail(err, errlen, r,
					 "cannot register the unmask eventfd of IRQ %u of %s: %s",
					 index, dev->name, strerror(-r));
	}
	r = set_eventfd(dev, index, VFIO_IRQ_SET_ACTION_TRIGGER, trigger_fd);
	if (r < 0) {
		vfio_fail(err, errlen, r, "cannot route IRQ %u of %s to an eventfd: %s", index,
			  dev->name, strerror(-r));
		goto undo_unmask;
	}
	/* a line masked before this VM could EOI it stays masked otherwise */
	if (level) {
		r = unmask(dev, index);
		if (r < 0) {
			vfio_fail(err, errlen, r, "cannot unmask IRQ %u of %s: %s", index,
				  dev->name, strerror(-r));
			set_eventfd(dev, index, VFIO_IRQ_SET_ACTION_TRIGGER, -1);
			goto undo_unmask;
		}
	}
	q->enabled = true;
	q->trigger_fd = trigger_fd;
	q->unmask_fd = unmask_fd;
	return 0;

undo_unmask:
	if (unmask_fd >= 0)
		set_eventfd(dev, index, VFIO_IRQ_SET_ACTION_UNMASK, -1);
	return r;
}

void vfio_irqs_disable_all(struct vfio_dev *dev)
{
	for (unsigned int i = 0; dev->irqs && i < dev->nr_irqs; i++)
		vfio_dev_irq_disable(dev, i);
}

int vfio_irqs_rearm(struct vfio_dev *dev)
{
	int first = 0;
	for (unsigned int i = 0; dev->irqs && i < dev->nr_irqs; i++) {
		struct vfio_irq *q = &dev->irqs[i];
		if (!q->enabled || !(q->flags & VFIO_IRQ_INFO_MASKABLE))
			continue;
		int r = unmask(dev, i);
		if (r < 0) {
			log_warn(dev->c->log, "cannot unmask IRQ %u of %s: %s", i, dev->name,
				 strerror(-r));
			if (!first)
				first = r;
		}
	}
	return first;
}
