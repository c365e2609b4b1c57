/* What the machine-independent core asks of an architecture backend. Exactly
 * one backend is linked (aarch64 today); each implements every function here. */
#ifndef VMM_ARCH_H
#define VMM_ARCH_H

#include "vmm/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmm;
struct vcpu;
struct arch_boot;

/* Guest RAM base address for this machine. */
uint64_t arch_ram_base(void);

/*
 * Validate the input files against cfg and plan the boot (no KVM involved):
 * kernel format, initrd, memory size, device tree. -EINVAL + one sentence in
 * err for bad input. The result lives in vmm->arch (or a caller's arch_boot
 * for --dump-dtb) and is reused by arch_load_guest.
 */
int arch_prepare_boot(const struct vmm_config *cfg, struct arch_boot *boot, char *err,
		      size_t errlen);
struct arch_boot *arch_boot_new(void);
void arch_boot_free(struct arch_boot *boot);
/* The prepared device tree (or other firmware blob): pointer + length. */
const void *arch_boot_dtb(const struct arch_boot *boot, size_t *len);

/* After KVM_CREATE_VM + RAM: check capabilities, create the irqchip. */
int arch_vm_init(struct vmm *vmm, char *err, size_t errlen);
/* Per vCPU after KVM_CREATE_VCPU: init it, boot registers on vCPU 0. */
int arch_vcpu_init(struct vmm *vmm, struct vcpu *vcpu, char *err, size_t errlen);
/* After all vCPUs exist: finalize the irqchip, register devices on the bus,
 * copy kernel/initrd/DTB into guest RAM. */
int arch_vm_finalize(struct vmm *vmm, char *err, size_t errlen);
/* Release what arch_vm_init/finalize created (safe on partial init). */
void arch_vm_teardown(struct vmm *vmm);

/* Where virtio device i lives: MMIO base and the irq number for vmm_set_irq. */
void arch_virtio_slot(unsigned int i, uint64_t *base, unsigned int *irq);

/* ---- platform-device passthrough support (device-tree machines) ---- */
/* The prepared guest DTB, writable, and its buffer size; -ENOTSUP without a DT. */
int arch_boot_fdt(struct arch_boot *boot, void **fdt, size_t *bufsize);
/* The DTB was edited in place (and packed): record its new length. */
void arch_boot_fdt_changed(struct arch_boot *boot);
/* phandles of the guest GIC and of the fixed clock passthrough nodes may use */
uint32_t arch_fdt_gic_phandle(void);
uint32_t arch_fdt_clock_phandle(void);
/* Guest window where passthrough regions are allocated, and the SPIs they may use. */
void arch_pt_window(uint64_t *base, uint64_t *size);
void arch_pt_spi_range(unsigned int *first, unsigned int *limit);
/* Does [base, base+size) collide with RAM or a device of the machine? Names it. */
bool arch_range_in_use(const struct vmm_config *cfg, uint64_t base, uint64_t size,
		       const char **what);
/* Is this SPI used by a device of the machine (UART, virtio)? */
bool arch_spi_in_use(const struct vmm_config *cfg, unsigned int spi);

/* Host → guest console bytes (returns bytes accepted) and free room. */
size_t arch_console_rx(struct vmm *vmm, const uint8_t *buf, size_t len);
size_t arch_console_room(struct vmm *vmm);

#endif
