/* The guest device tree for the aarch64 machine, built with libfdt. */
#ifndef VMM_A64_FDT_H
#define VMM_A64_FDT_H

#include <stddef.h>
#include <stdint.h>

#define A64_MAX_VIRTIO 16
#define A64_FDT_PHANDLE_GIC 1
#define A64_FDT_PHANDLE_APB_CLK 2

struct a64_fdt_virtio {
	uint64_t base; /* VIRTIO_MMIO window of 0x200 bytes */
	unsigned int spi;
};

struct a64_fdt_params {
	unsigned int nr_vcpus; /* 1..VMM_MAX_VCPUS */
	uint64_t ram_base;
	uint64_t ram_size;
	const char *cmdline; /* may be NULL */
	uint64_t initrd_start; /* initrd_end == 0: no initrd */
	uint64_t initrd_end;
	unsigned int nr_virtio;
	struct a64_fdt_virtio virtio[A64_MAX_VIRTIO];
};

/* MPIDR KVM gives vCPU `index` (Aff0 = low 4 bits, Aff1 = next 8, as GICv3 wants). */
uint64_t a64_vcpu_mpidr(unsigned int index);

/*
 * Build the DTB into buf (at most bufsize bytes; A64_FDT_BUF_SIZE is plenty).
 * The result is packed: fdt_totalsize(buf) is its length.
 * Returns 0 or a negative errno (-ENOSPC buffer too small, -EINVAL bad params).
 */
int a64_fdt_build(void *buf, size_t bufsize, const struct a64_fdt_params *p);

#endif
