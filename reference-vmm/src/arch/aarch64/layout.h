/* The aarch64 guest's physical address map (QEMU-virt-like, so Linux and users
 * find things where they expect them). */
#ifndef VMM_A64_LAYOUT_H
#define VMM_A64_LAYOUT_H

#define A64_GICD_BASE 0x08000000ULL
#define A64_GICD_SIZE 0x00010000ULL
#define A64_GICR_BASE 0x080A0000ULL
#define A64_GICR_STRIDE 0x00020000ULL /* RD_base + SGI_base frames per vCPU */

#define A64_UART_BASE 0x09000000ULL
#define A64_UART_SIZE 0x00001000ULL
#define A64_UART_SPI 1

#define A64_VIRTIO_MMIO_BASE 0x0a000000ULL
#define A64_VIRTIO_MMIO_STRIDE 0x200ULL
#define A64_VIRTIO_SPI_BASE 16 /* virtio device i uses SPI 16 + i */

#define A64_BOOT_TIMER_BASE 0x0b000000ULL
#define A64_BOOT_TIMER_SIZE 0x00001000ULL

/* platform-bus window for passthrough regions (QEMU virt's, unused by us) */
#define A64_PT_WINDOW_BASE 0x0c000000ULL
#define A64_PT_WINDOW_SIZE 0x02000000ULL
/* SPIs for passthrough IRQs allocated by the VMM (a user map may use any free SPI) */
#define A64_PT_SPI_BASE 48

#define A64_RAM_BASE 0x40000000ULL

/* number of interrupt IDs the vGIC implements (SGIs+PPIs+SPIs), multiple of 32 */
#define A64_GIC_NR_IRQS 256

/* arch timer PPIs (INTID - 16): secure phys, non-secure phys, virtual, hyp */
#define A64_TIMER_PPI_SEC 13
#define A64_TIMER_PPI_NS 14
#define A64_TIMER_PPI_VIRT 11
#define A64_TIMER_PPI_HYP 10

#define A64_DTB_MAX_SIZE 0x200000ULL /* the boot protocol's limit, 2 MiB */
#define A64_FDT_BUF_SIZE 0x10000ULL  /* what we actually build in */

#endif
