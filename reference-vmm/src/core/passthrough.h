/* Passed-through platform devices of a VM: opened and placed (guest addresses,
 * SPIs, guest DT node) before KVM is touched; per boot their regions become
 * memslots or trapped bus ranges and their IRQs KVM irqfds. */
#ifndef VMM_PASSTHROUGH_H
#define VMM_PASSTHROUGH_H

#include "passthrough/dt_node.h"
#include "passthrough/vfio.h"
#include "vmm/config.h"

#include <stddef.h>
#include <stdint.h>

struct vmm;

struct pt_irq {
	unsigned int index; /* VFIO irq index */
	unsigned int spi;   /* guest SPI */
	int trigger_fd;     /* per boot */
	int resample_fd;    /* per boot, level irqs */
	bool irqfd;         /* KVM_IRQFD registered */
};

struct pt_region {
	unsigned int index;
	uint64_t guest;
	uint64_t size;
	int slot;     /* KVM memslot (mmapped regions) or -1 */
	bool trapped; /* on the MMIO bus */
};

struct pt_device {
	const struct vmm_passthrough_config *cfg;
	struct vfio_dev *dev;
	unsigned int nr_regions;
	struct pt_region regions[DT_NODE_MAX_REGS];
	unsigned int nr_irqs;
	struct pt_irq irqs[DT_NODE_MAX_IRQS];
};

struct pt_state {
	struct vfio_container *container;
	unsigned int nr;
	struct pt_device devs[VMM_MAX_PASSTHROUGH];
	int next_slot; /* per boot */
};

/* Open, validate and place every --passthrough device; add their guest DT nodes
 * to the prepared boot. Bad input → -EINVAL with err naming it. */
int pt_prepare(struct vmm *vmm, char *err, size_t errlen);
/* Per boot (after the irqchip is initialised). */
int pt_boot(struct vmm *vmm, char *err, size_t errlen);
/* Per boot teardown, before the VM fd and guest RAM go away. */
void pt_teardown(struct vmm *vmm);
/* At exit. */
void pt_free(struct vmm *vmm);

#endif
