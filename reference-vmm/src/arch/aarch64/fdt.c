/* Builds the guest DTB: memory, cpus, psci, arch timer, GICv3, PL011 with its
 * clock, and /chosen (bootargs, initrd, stdout-path). */
#include "arch/aarch64/fdt.h"
#include "arch/aarch64/layout.h"
#include "vmm/config.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>

#define PHANDLE_GIC A64_FDT_PHANDLE_GIC
#define PHANDLE_APB_CLK A64_FDT_PHANDLE_APB_CLK

/* GIC interrupt specifier cells */
#define GIC_SPI 0
#define GIC_PPI 1
#define IRQ_LEVEL_HIGH 4

uint64_t a64_vcpu_mpidr(unsigned int index)
{
	return (uint64_t)(index & 0xf) | (uint64_t)((index >> 4) & 0xff) << 8;
}

static int fdt_err(int r)
{
	if (r == -FDT_ERR_NOSPACE)
		return -ENOSPC;
	return r < 0 ? -EINVAL : r;
}

/* Append a <u64 u64> address/size pair (2 cells each). */
static int prop_reg(void *fdt, int node, uint64_t addr, uint64_t size)
{
	int r = fdt_appendprop_u64(fdt, node, "reg", addr);
	return r ? r : fdt_appendprop_u64(fdt, node, "reg", size);
}

static int prop_irq(void *fdt, int node, uint32_t type, uint32_t num, uint32_t flags)
{
	int r = fdt_appendprop_u32(fdt, node, "interrupts", type);
	if (!r)
		r = fdt_appendprop_u32(fdt, node, "interrupts", num);
	if (!r)
		r = fdt_appendprop_u32(fdt, node, "interrupts", flags);
	return r;
}

static int add_node(void *fdt, int parent, const char *name)
{
	return fdt_add_subnode(fdt, parent, name);
}

static int add_cpus(void *fdt, const struct a64_fdt_params *p)
{
	int cpus = add_node(fdt, 0, "cpus");
	if (cpus < 0)
		return cpus;
	int r = fdt_setprop_u32(fdt, cpus, "#address-cells", 2);
	r = r ? r : fdt_setprop_u32(fdt, cpus, "#size-cells", 0);
	if (r)
		return r;
	/* add in reverse: fdt_add_subnode inserts at the front */
	for (int i = (int)p->nr_vcpus - 1; i >= 0; i--) {
		char name[32];
		uint64_t mpidr = a64_vcpu_mpidr((unsigned int)i);
		snprintf(name, sizeof(name), "cpu@%llx", (unsigned long long)mpidr);
		int cpu = add_node(fdt, cpus, name);
		if (cpu < 0)
			return cpu;
		r = fdt_setprop_string(fdt, cpu, "device_type", "cpu");
		r = r ? r : fdt_setprop_string(fdt, cpu, "compatible", "arm,arm-v8");
		r = r ? r : fdt_setprop_u64(fdt, cpu, "reg", mpidr);
		r = r ? r : fdt_setprop_string(fdt, cpu, "enable-method", "psci");
		if (r)
			return r;
	}
	return 0;
}

static int add_gic(void *fdt, const struct a64_fdt_params *p)
{
	char name[32];
	snprintf(name, sizeof(name), "intc@%llx", (unsigned long long)A64_GICD_BASE);
	int gic = add_node(fdt, 0, name);
	if (gic < 0)
		return gic;
	int r = fdt_setprop_string(fdt, gic, "compatible", "arm,gic-v3");
	r = r ? r : fdt_setprop_u32(fdt, gic, "#interrupt-cells", 3);
	r = r ? r : fdt_setprop(fdt, gic, "interrupt-controller", NULL, 0);
	r = r ? r : fdt_setprop_u32(fdt, gic, "#address-cells", 2);
	r = r ? r : fdt_setprop_u32(fdt, gic, "#size-cells", 2);
	r = r ? r : fdt_setprop(fdt, gic, "ranges", NULL, 0);
	r = r ? r : fdt_setprop_u32(fdt, gic, "#redistributor-regions", 1);
	r = r ? r : prop_reg(fdt, gic, A64_GICD_BASE, A64_GICD_SIZE);
	r = r ? r : prop_reg(fdt, gic, A64_GICR_BASE, A64_GICR_STRIDE * p->nr_vcpus);
	r = r ? r : fdt_setprop_u32(fdt, gic, "phandle", PHANDLE_GIC);
	return r;
}

static int add_timer(void *fdt)
{
	int t = add_node(fdt, 0, "timer");
	if (t < 0)
		return t;
	int r = fdt_setprop_string(fdt, t, "compatible", "arm,armv8-timer");
	r = r ? r : prop_irq(fdt, t, GIC_PPI, A64_TIMER_PPI_SEC, IRQ_LEVEL_HIGH);
	r = r ? r : prop_irq(fdt, t, GIC_PPI, A64_TIMER_PPI_NS, IRQ_LEVEL_HIGH);
	r = r ? r : prop_irq(fdt, t, GIC_PPI, A64_TIMER_PPI_VIRT, IRQ_LEVEL_HIGH);
	r = r ? r : prop_irq(fdt, t, GIC_PPI, A64_TIMER_PPI_HYP, IRQ_LEVEL_HIGH);
	r = r ? r : fdt_setprop(fdt, t, "always-on", NULL, 0);
	return r;
}

static int add_uart(void *fdt, char *path, size_t pathlen)
{
	int clk = add_node(fdt, 0, "apb-pclk");
	if (clk < 0)
		return clk;
	int r = fdt_setprop_string(fdt, clk, "compatible", "fixed-clock");
	r = r ? r : fdt_setprop_u32(fdt, clk, "#clock-cells", 0);
	r = r ? r : fdt_setprop_u32(fdt, clk, "clock-frequency", 24000000);
	r = r ? r : fdt_setprop_string(fdt, clk, "clock-output-names", "clk24mhz");
	r = r ? r : fdt_setprop_u32(fdt, clk, "phandle", PHANDLE_APB_CLK);
	if (r)
		return r;

	snprintf(path, pathlen, "/pl011@%llx", (unsigned long long)A64_UART_BASE);
	int u = add_node(fdt, 0, path + 1);
	if (u < 0)
		return u;
	r = fdt_setprop_string(fdt, u, "compatible", "arm,pl011");
	r = r ? r : fdt_appendprop_string(fdt, u, "compatible", "arm,primecell");
	r = r ? r : prop_reg(fdt, u, A64_UART_BASE, A64_UART_SIZE);
	r = r ? r : prop_irq(fdt, u, GIC_SPI, A64_UART_SPI, IRQ_LEVEL_HIGH);
	r = r ? r : fdt_appendprop_u32(fdt, u, "clocks", PHANDLE_APB_CLK);
	r = r ? r : fdt_appendprop_u32(fdt, u, "clocks", PHANDLE_APB_CLK);
	r = r ? r : fdt_setprop_string(fdt, u, "clock-names", "uartclk");
	r = r ? r : fdt_appendprop_string(fdt, u, "clock-names", "apb_pclk");
	return r;
}

/* virtio-mmio transports; added last-first so the blob lists them in order
 * (fdt_add_subnode prepends) and the guest enumerates vda, vdb, ... in order */
static int add_virtio(void *fdt, const struct a64_fdt_params *p)
{
	for (int i = (int)p->nr_virtio - 1; i >= 0; i--) {
		char name[40];
		snprintf(name, sizeof(name), "virtio_mmio@%llx",
			 (unsigned long long)p->virtio[i].base);
		int n = add_node(fdt, 0, name);
		if (n < 0)
			return n;
		int r = fdt_setprop_string(fdt, n, "compatible", "virtio,mmio");
		r = r ? r : prop_reg(fdt, n, p->virtio[i].base, 0x200);
		r = r ? r : prop_irq(fdt, n, GIC_SPI, p->virtio[i].spi, IRQ_LEVEL_HIGH);
		r = r ? r : fdt_setprop(fdt, n, "dma-coherent", NULL, 0);
		if (r)
			return r;
	}
	return 0;
}

static int add_chosen(void *fdt, const struct a64_fdt_params *p, const char *stdout_path)
{
	int c = add_node(fdt, 0, "chosen");
	if (c < 0)
		return c;
	int r = fdt_setprop_string(fdt, c, "bootargs", p->cmdline ? p->cmdline : "");
	r = r ? r : fdt_setprop_string(fdt, c, "stdout-path", stdout_path);
	if (!r && p->initrd_end) {
		r = fdt_setprop_u64(fdt, c, "linux,initrd-start", p->initrd_start);
		r = r ? r : fdt_setprop_u64(fdt, c, "linux,initrd-end", p->initrd_end);
	}
	return r;
}

int a64_fdt_build(void *buf, size_t bufsize, const struct a64_fdt_params *p)
{
	if (!p->nr_vcpus || p->nr_vcpus > VMM_MAX_VCPUS || !p->ram_size ||
	    (p->initrd_end && p->initrd_end < p->initrd_start) || bufsize > INT32_MAX ||
	    p->nr_virtio > A64_MAX_VIRTIO)
		return -EINVAL;
	int r = fdt_create_empty_tree(buf, (int)bufsize);
	if (r)
		return fdt_err(r);

	r = fdt_setprop_string(buf, 0, "compatible", "linux,dummy-virt");
	r = r ? r : fdt_setprop_string(buf, 0, "model", "reference-vmm aarch64");
	r = r ? r : fdt_setprop_u32(buf, 0, "#address-cells", 2);
	r = r ? r : fdt_setprop_u32(buf, 0, "#size-cells", 2);
	r = r ? r : fdt_setprop_u32(buf, 0, "interrupt-parent", PHANDLE_GIC);
	if (r)
		return fdt_err(r);

	char stdout_path[64];
	char memname[32];
	snprintf(memname, sizeof(memname), "memory@%llx", (unsigned long long)p->ram_base);
	int mem = add_node(buf, 0, memname);
	r = mem < 0 ? mem : fdt_setprop_string(buf, mem, "device_type", "memory");
	r = r ? r : prop_reg(buf, mem, p->ram_base, p->ram_size);
	if (r)
		return fdt_err(r);

	int psci = add_node(buf, 0, "psci");
	r = psci < 0 ? psci : fdt_setprop_string(buf, psci, "compatible", "arm,psci-0.2");
	r = r ? r : fdt_setprop_string(buf, psci, "method", "hvc");

	r = r ? r : add_cpus(buf, p);
	r = r ? r : add_gic(buf, p);
	r = r ? r : add_timer(buf);
	r = r ? r : add_virtio(buf, p);
	r = r ? r : add_uart(buf, stdout_path, sizeof(stdout_path));
	r = r ? r : add_chosen(buf, p, stdout_path);
	r = r ? r : fdt_pack(buf);
	return fdt_err(r);
}
