/* The aarch64 machine: boot preparation (Image, initrd, DTB), vCPU init with
 * PSCI 0.2, the in-kernel GICv3, devices (PL011, boot timer) and guest loading. */
#include "arch/aarch64/machine.h"
#include "arch/aarch64/fdt.h"
#include "core/arch.h"
#include "core/errbuf.h"
#include "core/passthrough.h"
#include "core/vmm_internal.h"

#include <errno.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__aarch64__)
#include <asm/kvm.h>
/* our ABI subset must match the kernel's headers bit for bit */
_Static_assert(sizeof(struct a64_kvm_vcpu_init) == sizeof(struct kvm_vcpu_init), "vcpu_init");
_Static_assert(A64_KVM_ARM_VCPU_INIT == KVM_ARM_VCPU_INIT, "VCPU_INIT");
_Static_assert(A64_KVM_ARM_PREFERRED_TARGET == KVM_ARM_PREFERRED_TARGET, "PREFERRED_TARGET");
_Static_assert(A64_KVM_ARM_VCPU_POWER_OFF == KVM_ARM_VCPU_POWER_OFF, "POWER_OFF");
_Static_assert(A64_KVM_ARM_VCPU_PSCI_0_2 == KVM_ARM_VCPU_PSCI_0_2, "PSCI_0_2");
_Static_assert(A64_KVM_REG_ARM_CORE == KVM_REG_ARM_CORE, "REG_ARM_CORE");
_Static_assert(A64_REG_PC == (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
			      KVM_REG_ARM_CORE_REG(regs.pc)),
	       "PC");
_Static_assert(A64_REG_PSTATE == (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
				  KVM_REG_ARM_CORE_REG(regs.pstate)),
	       "PSTATE");
_Static_assert(A64_REG_X(0) == (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
				KVM_REG_ARM_CORE_REG(regs.regs[0])),
	       "X0");
_Static_assert(A64_KVM_DEV_ARM_VGIC_GRP_ADDR == KVM_DEV_ARM_VGIC_GRP_ADDR, "GRP_ADDR");
_Static_assert(A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS == KVM_DEV_ARM_VGIC_GRP_NR_IRQS, "NR_IRQS");
_Static_assert(A64_KVM_DEV_ARM_VGIC_GRP_CTRL == KVM_DEV_ARM_VGIC_GRP_CTRL, "GRP_CTRL");
_Static_assert(A64_KVM_VGIC_V3_ADDR_TYPE_DIST == KVM_VGIC_V3_ADDR_TYPE_DIST, "DIST");
_Static_assert(A64_KVM_VGIC_V3_ADDR_TYPE_REDIST == KVM_VGIC_V3_ADDR_TYPE_REDIST, "REDIST");
_Static_assert(A64_KVM_ARM_IRQ_TYPE_SPI == KVM_ARM_IRQ_TYPE_SPI, "IRQ_TYPE_SPI");
_Static_assert(A64_KVM_ARM_IRQ_TYPE_SHIFT == KVM_ARM_IRQ_TYPE_SHIFT, "IRQ_TYPE_SHIFT");
#endif


uint64_t arch_ram_base(void)
{
	return A64_RAM_BASE;
}

int arch_boot_fdt(struct arch_boot *boot, void **fdt, size_t *bufsize)
{
	*fdt = boot->dtb;
	*bufsize = sizeof(boot->dtb);
	return 0;
}

void arch_boot_fdt_changed(struct arch_boot *boot)
{
	boot->dtb_len = fdt_totalsize(boot->dtb);
}

uint32_t arch_fdt_gic_phandle(void)
{
	return A64_FDT_PHANDLE_GIC;
}

uint32_t arch_fdt_clock_phandle(void)
{
	return A64_FDT_PHANDLE_APB_CLK;
}

void arch_pt_window(uint64_t *base, uint64_t *size)
{
	*base = A64_PT_WINDOW_BASE;
	*size = A64_PT_WINDOW_SIZE;
}

void arch_pt_spi_range(unsigned int *first, unsigned int *limit)
{
	*first = A64_PT_SPI_BASE;
	*limit = A64_GIC_NR_IRQS - A64_SPI_INTID_BASE;
}

static bool overlaps(uint64_t a, uint64_t asz, uint64_t b, uint64_t bsz)
{
	return a < b + bsz && b < a + asz;
}

bool arch_range_in_use(const struct vmm_config *cfg, uint64_t base, uint64_t size,
		       const char **what)
{
	const struct {
		uint64_t base, size;
		const char *name;
	} used[] = {
		{ A64_RAM_BASE, cfg->mem_mib << 20, "guest RAM" },
		{ A64_GICD_BASE, A64_GICD_SIZE, "the GIC distributor" },
		{ A64_GICR_BASE, A64_GICR_STRIDE * VMM_MAX_VCPUS, "the GIC redistributors" },
		{ A64_UART_BASE, A64_UART_SIZE, "the PL011 UART" },
		{ A64_VIRTIO_MMIO_BASE, A64_VIRTIO_MMIO_STRIDE * A64_MAX_VIRTIO, "the virtio devices" },
		{ A64_BOOT_TIMER_BASE, A64_BOOT_TIMER_SIZE, "the boot timer" },
	};
	if (base + size < base) {
		*what = "the end of the address space";
		return true;
	}
	for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++) {
		if (overlaps(base, size, used[i].base, used[i].size)) {
			*what = used[i].name;
			return true;
		}
	}
	return false;
}

bool arch_spi_in_use(const struct vmm_config *cfg, unsigned int spi)
{
	return spi == A64_UART_SPI ||
	       (spi >= A64_VIRTIO_SPI_BASE && spi < A64_VIRTIO_SPI_BASE + vmm_config_nr_virtio(cfg));
}

void arch_virtio_slot(unsigned int i, uint64_t *base, unsigned int *irq)
{
	*base = A64_VIRTIO_MMIO_BASE + i * A64_VIRTIO_MMIO_STRIDE;
	*irq = A64_VIRTIO_SPI_BASE + i;
}

struct arch_boot *arch_boot_new(void)
{
	return calloc(1, sizeof(struct arch_boot));
}

void arch_boot_free(struct arch_boot *boot)
{
	free(boot);
}

const void *arch_boot_dtb(const struct arch_boot *boot, size_t *len)
{
	*len = boot->dtb_len;
	return boot->dtb;
}

/* Size of a regular, readable file; -EINVAL + message otherwise. */
static int input_file_size(const char *what, const char *path, uint64_t *size, char *err,
			   size_t errlen)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return errbuf_fail(err, errlen, -EINVAL, "cannot open %s '%s': %s", what, path,
			    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return errbuf_fail(err, errlen, -EINVAL, "%s '%s' is not a regular file", what, path);
	*size = (uint64_t)st.st_size;
	return 0;
}

int arch_prepare_boot(const struct vmm_config *cfg, struct arch_boot *boot, char *err,
		      size_t errlen)
{
	memset(boot, 0, sizeof(*boot));
	if (!cfg->kernel_path)
		return errbuf_fail(err, errlen, -EINVAL, "no guest kernel: give --kernel path=FILE");
	boot->kernel_path = cfg->kernel_path;
	boot->initrd_path = cfg->initrd_path;

	uint64_t ksize;
	int r = input_file_size("kernel", cfg->kernel_path, &ksize, err, errlen);
	if (r)
		return r;
	FILE *f = fopen(cfg->kernel_path, "rb");
	if (!f)
		return errbuf_fail(err, errlen, -EINVAL, "cannot open kernel '%s': %s", cfg->kernel_path,
			    strerror(errno));
	uint8_t head[A64_IMAGE_PROBE_SIZE];
	size_t got = fread(head, 1, sizeof(head), f);
	fclose(f);
	char why[160];
	if (a64_image_parse(head, got, ksize, &boot->img, why, sizeof(why)) < 0)
		return errbuf_fail(err, errlen, -EINVAL, "kernel '%s' is not usable: %s", cfg->kernel_path,
			    why);

	if (cfg->initrd_path) {
		r = input_file_size("initrd", cfg->initrd_path, &boot->initrd_size, err, errlen);
		if (r)
			return r;
		if (boot->initrd_size == 0)
			return errbuf_fail(err, errlen, -EINVAL, "initrd '%s' is empty", cfg->initrd_path);
	}
	if (a64_plan_boot(A64_RAM_BASE, cfg->mem_mib << 20, &boot->img, boot->initrd_size,
			  &boot->plan, why, sizeof(why)) < 0)
		return errbuf_fail(err, errlen, -EINVAL, "--memory size_mib=%llu: %s",
			    (unsigned long long)cfg->mem_mib, why);

	struct a64_fdt_params fp = {
		.nr_vcpus = cfg->nr_vcpus,
		.ram_base = A64_RAM_BASE,
		.ram_size = cfg->mem_mib << 20,
		.cmdline = cfg->cmdline,
		.initrd_start = boot->plan.initrd_gpa,
		.initrd_end = boot->initrd_size ? boot->plan.initrd_gpa + boot->initrd_size : 0,
		.nr_virtio = vmm_config_nr_virtio(cfg),
	};
	for (unsigned int i = 0; i < fp.nr_virtio && i < A64_MAX_VIRTIO; i++) {
		unsigned int spi;
		arch_virtio_slot(i, &fp.virtio[i].base, &spi);
		fp.virtio[i].spi = spi;
	}
	r = a64_fdt_build(boot->dtb, sizeof(boot->dtb), &fp);
	if (r < 0)
		return errbuf_fail(err, errlen, -EINVAL, "cannot build the device tree: %s", strerror(-r));
	boot->dtb_len = fdt_totalsize(boot->dtb);
	return 0;
}

int vmm_set_irq(void *vmm_ptr, unsigned int irq, int level)
{
	struct vmm *vmm = vmm_ptr;
	struct kvm_irq_level il = { .irq = a64_irq_line_spi(irq), .level = (uint32_t)level };
	int r = sys_ioctl_ptr(&vmm->sys, vmm->vm_fd, KVM_IRQ_LINE, &il);
	if (r < 0)
		log_warn(&vmm->log, "KVM_IRQ_LINE spi %u level %d failed: %s", irq, level,
			 strerror(-r));
	return r;
}

static int gic_attr(struct vmm *vmm, uint32_t group, uint64_t attr, const void *val)
{
	struct kvm_device_attr a = {
		.group = group,
		.attr = attr,
		.addr = (uint64_t)(uintptr_t)val,
	};
	return sys_ioctl_ptr(&vmm->sys, vmm->arch->gic_fd, KVM_SET_DEVICE_ATTR, &a);
}

int arch_vm_init(struct vmm *vmm, char *err, size_t errlen)
{
	struct arch_vm *a = calloc(1, sizeof(*a));
	if (!a)
		return errbuf_fail(err, errlen, -ENOMEM, "out of memory");
	a->gic_fd = -1;
	vmm->arch = a;

	if (sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2) <= 0)
		return errbuf_fail(err, errlen, -ENOTSUP, "KVM lacks PSCI 0.2 (KVM_CAP_ARM_PSCI_0_2)");
	int r = sys_ioctl_ptr(&vmm->sys, vmm->vm_fd, A64_KVM_ARM_PREFERRED_TARGET, &a->init);
	if (r < 0)
		return errbuf_fail(err, errlen, r,
			    "KVM_ARM_PREFERRED_TARGET failed (%s): is this an arm64 KVM host?",
			    strerror(-r));

	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	r = sys_ioctl_ptr(&vmm->sys, vmm->vm_fd, KVM_CREATE_DEVICE, &cd);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "cannot create the in-kernel GICv3: %s", strerror(-r));
	a->gic_fd = (int)cd.fd;

	uint64_t dist = A64_GICD_BASE, redist = A64_GICR_BASE;
	r = gic_attr(vmm, A64_KVM_DEV_ARM_VGIC_GRP_ADDR, A64_KVM_VGIC_V3_ADDR_TYPE_DIST, &dist);
	if (!r)
		r = gic_attr(vmm, A64_KVM_DEV_ARM_VGIC_GRP_ADDR, A64_KVM_VGIC_V3_ADDR_TYPE_REDIST,
			     &redist);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "cannot place the GICv3: %s", strerror(-r));
	return 0;
}

int arch_vcpu_init(struct vmm *vmm, struct vcpu *vcpu, char *err, size_t errlen)
{
	struct a64_kvm_vcpu_init init = vmm->arch->init;
	memset(init.features, 0, sizeof(init.features));
	init.features[0] |= 1u << A64_KVM_ARM_VCPU_PSCI_0_2;
	if (vcpu->index > 0)
		init.features[0] |= 1u << A64_KVM_ARM_VCPU_POWER_OFF; /* started by PSCI CPU_ON */
	int r = sys_ioctl_ptr(&vmm->sys, vcpu->fd, A64_KVM_ARM_VCPU_INIT, &init);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "KVM_ARM_VCPU_INIT of vcpu %u failed: %s", vcpu->index,
			    strerror(-r));
	if (vcpu->index != 0)
		return 0;

	/* boot protocol: x0 = DTB, x1..x3 = 0, PC = kernel entry, EL1h, DAIF masked */
	const struct a64_boot_plan *plan = &vmm->boot->plan;
	const struct {
		uint64_t id, val;
	} regs[] = {
		{ A64_REG_PSTATE, A64_PSTATE_EL1H_DAIF },
		{ A64_REG_X(0), plan->dtb_gpa },
		{ A64_REG_X(1), 0 },
		{ A64_REG_X(2), 0 },
		{ A64_REG_X(3), 0 },
		{ A64_REG_PC, plan->kernel_gpa },
	};
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		uint64_t v = regs[i].val;
		struct kvm_one_reg reg = { .id = regs[i].id, .addr = (uint64_t)(uintptr_t)&v };
		r = sys_ioctl_ptr(&vmm->sys, vcpu->fd, KVM_SET_ONE_REG, &reg);
		if (r < 0)
			return errbuf_fail(err, errlen, r, "setting boot register 0x%llx failed: %s",
				    (unsigned long long)regs[i].id, strerror(-r));
	}
	return 0;
}

/* Copy a whole file into guest RAM at gpa; its size must still be `size`. */
static int load_file(struct vmm *vmm, const char *what, const char *path, uint64_t gpa,
		     uint64_t size, char *err, size_t errlen)
{
	uint8_t *dst = guest_mem_ptr(&vmm->mem, gpa, size);
	if (!dst)
		return errbuf_fail(err, errlen, -EINVAL, "%s does not fit in guest memory", what);
	FILE *f = fopen(path, "rb");
	if (!f)
		return errbuf_fail(err, errlen, -EINVAL, "cannot open %s '%s': %s", what, path,
			    strerror(errno));
	size_t got = fread(dst, 1, size, f);
	int extra = fgetc(f);
	fclose(f);
	if (got != size || extra != EOF)
		return errbuf_fail(err, errlen, -EINVAL, "%s '%s' changed size while loading", what, path);
	return 0;
}

static void uart_tx(void *ctx, uint8_t byte)
{
	struct vmm *vmm = ctx;
	console_putc(&vmm->console, byte);
}

int arch_vm_finalize(struct vmm *vmm, char *err, size_t errlen)
{
	struct arch_vm *a = vmm->arch;
	uint32_t nr_irqs = A64_GIC_NR_IRQS;
	int r = gic_attr(vmm, A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs);
	if (!r)
		r = gic_attr(vmm, A64_KVM_DEV_ARM_VGIC_GRP_CTRL, A64_KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "cannot initialise the GICv3: %s", strerror(-r));

	struct irq_line uart_irq = { .set_level = vmm_set_irq, .ctx = vmm, .irq = A64_UART_SPI };
	pl011_init(&a->uart, uart_irq, uart_tx, vmm);
	a->uart_ready = true;
	boot_timer_init(&a->btimer, &vmm->log, vmm->start_ns, NULL);
	r = bus_register(&vmm->mmio, A64_UART_BASE, A64_UART_SIZE, &pl011_bus_ops, &a->uart,
			 "pl011");
	if (!r)
		r = bus_register(&vmm->mmio, A64_BOOT_TIMER_BASE, A64_BOOT_TIMER_SIZE,
				 &boot_timer_bus_ops, &a->btimer, "boot-timer");
	if (r < 0)
		return errbuf_fail(err, errlen, r, "cannot register devices: %s", strerror(-r));
	r = virtio_slots_boot(vmm, err, errlen);
	if (!r)
		r = pt_boot(vmm, err, errlen);
	if (r < 0)
		return r;

	const struct arch_boot *b = vmm->boot;
	r = load_file(vmm, "kernel", b->kernel_path, b->plan.kernel_gpa, b->img.file_size, err,
		      errlen);
	if (!r && b->initrd_size)
		r = load_file(vmm, "initrd", b->initrd_path, b->plan.initrd_gpa, b->initrd_size, err,
			      errlen);
	if (!r && guest_mem_write(&vmm->mem, b->plan.dtb_gpa, b->dtb, b->dtb_len) < 0)
		r = errbuf_fail(err, errlen, -EINVAL, "the device tree does not fit in guest memory");
	if (r < 0)
		return r;
	log_dbg(&vmm->log, "kernel at 0x%llx, initrd at 0x%llx (%llu bytes), dtb at 0x%llx",
		(unsigned long long)b->plan.kernel_gpa, (unsigned long long)b->plan.initrd_gpa,
		(unsigned long long)b->initrd_size, (unsigned long long)b->plan.dtb_gpa);
	return 0;
}

void arch_vm_teardown(struct vmm *vmm)
{
	struct arch_vm *a = vmm->arch;
	if (!a)
		return;
	if (a->uart_ready)
		pl011_destroy(&a->uart);
	if (a->gic_fd >= 0)
		sys_close(&vmm->sys, a->gic_fd);
	free(a);
	vmm->arch = NULL;
}

size_t arch_console_rx(struct vmm *vmm, const uint8_t *buf, size_t len)
{
	return vmm->arch ? pl011_receive(&vmm->arch->uart, buf, len) : 0;
}

size_t arch_console_room(struct vmm *vmm)
{
	return vmm->arch ? pl011_rx_room(&vmm->arch->uart) : 0;
}
