/* aarch64 machine state hung off struct vmm: boot plan, vGIC, devices. */
#ifndef VMM_A64_MACHINE_H
#define VMM_A64_MACHINE_H

#include "arch/aarch64/image.h"
#include "arch/aarch64/kvm_arm64.h"
#include "arch/aarch64/layout.h"
#include "devices/boot_timer.h"
#include "devices/pl011.h"

#include <stdbool.h>

struct arch_boot {
	struct a64_image_info img;
	struct a64_boot_plan plan;
	uint64_t initrd_size;
	const char *kernel_path; /* borrowed from the config */
	const char *initrd_path;
	uint8_t dtb[A64_FDT_BUF_SIZE];
	size_t dtb_len;
};

struct arch_vm {
	int gic_fd;
	struct a64_kvm_vcpu_init init; /* preferred target */
	struct pl011 uart;
	bool uart_ready;
	struct boot_timer btimer;
};

#endif
