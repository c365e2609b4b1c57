/* The subset of the arm64 KVM ABI this VMM uses, defined here so the aarch64
 * machine code also compiles (and is unit tested against mock KVM) on non-arm64
 * hosts. On arm64 builds, static asserts in vcpu.c pin these to <asm/kvm.h>. */
#ifndef VMM_KVM_ARM64_H
#define VMM_KVM_ARM64_H

#include <linux/kvm.h>
#include <stdint.h>

struct a64_kvm_vcpu_init {
	uint32_t target;
	uint32_t features[7];
};

#define A64_KVM_ARM_VCPU_INIT _IOW(KVMIO, 0xae, struct a64_kvm_vcpu_init)
#define A64_KVM_ARM_PREFERRED_TARGET _IOR(KVMIO, 0xaf, struct a64_kvm_vcpu_init)

#define A64_KVM_ARM_VCPU_POWER_OFF 0
#define A64_KVM_ARM_VCPU_PSCI_0_2 2

/* ONE_REG ids */
#define A64_KVM_REG_ARM64 0x6000000000000000ULL
#define A64_KVM_REG_SIZE_U64 0x0030000000000000ULL
#define A64_KVM_REG_ARM_COPROC_SHIFT 16
#define A64_KVM_REG_ARM_CORE (0x0010ULL << A64_KVM_REG_ARM_COPROC_SHIFT)
/* struct kvm_regs starts with user_pt_regs { u64 regs[31]; sp; pc; pstate; } and
 * core register ids are the byte offset / 4 */
#define A64_CORE_REG(byte_off) \
	(A64_KVM_REG_ARM64 | A64_KVM_REG_SIZE_U64 | A64_KVM_REG_ARM_CORE | ((byte_off) / 4))
#define A64_REG_X(n) A64_CORE_REG((n) * 8)
#define A64_REG_PC A64_CORE_REG(32 * 8)
#define A64_REG_PSTATE A64_CORE_REG(33 * 8)

/* PSTATE for kernel entry: EL1h, D A I F masked */
#define A64_PSTATE_EL1H_DAIF 0x3c5ULL

/* vGIC device attributes */
#define A64_KVM_DEV_ARM_VGIC_GRP_ADDR 0
#define A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS 3
#define A64_KVM_DEV_ARM_VGIC_GRP_CTRL 4
#define A64_KVM_DEV_ARM_VGIC_CTRL_INIT 0
#define A64_KVM_VGIC_V3_ADDR_TYPE_DIST 2
#define A64_KVM_VGIC_V3_ADDR_TYPE_REDIST 3

/* KVM_IRQ_LINE irq field */
#define A64_KVM_ARM_IRQ_TYPE_SHIFT 24
#define A64_KVM_ARM_IRQ_TYPE_SPI 1
#define A64_KVM_ARM_IRQ_TYPE_PPI 2
#define A64_SPI_INTID_BASE 32

static inline uint32_t a64_irq_line_spi(unsigned int spi)
{
	return ((uint32_t)A64_KVM_ARM_IRQ_TYPE_SPI << A64_KVM_ARM_IRQ_TYPE_SHIFT) |
	       (A64_SPI_INTID_BASE + spi);
}

#endif
