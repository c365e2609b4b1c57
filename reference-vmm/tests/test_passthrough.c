/* Unit tests for core/passthrough.c with mock KVM and mock VFIO chained behind
 * one seam and a fake sysfs + host DT: identity/window placement, memslots for
 * mmappable regions, trapped regions, irqfd + resample for level IRQs (end to
 * end through both mocks), guest DT nodes, and every user-facing error. */
#include "arch/aarch64/layout.h"
#include "mock_vfio.h"
#include "vmm_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libfdt.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define PL061 "/sys/bus/amba/devices/9030000.pl061"
#define FWCFG "/sys/bus/platform/devices/9020000.fw-cfg"
#define RTC "/sys/bus/amba/devices/9010000.pl031"
#define PAGE 4096
/* snprintf that must not truncate */
#define SNP(buf, ...) assert_true(snprintf((buf), sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

struct ptfx {
	struct vmm_fixture f;
	char root[PATH_MAX];
	struct mock_vfio *vfio;
	struct sys vfio_sys;
};

static void mkdirs(const char *path)
{
	char buf[PATH_MAX];
	SNP(buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

static void link_to(const char *target, const char *linkpath)
{
	assert_int_equal(symlink(target, linkpath), 0);
}

/* /sys/devices/platform/NAME, bus link, driver link, iommu group, of_node */
static void sysfs_dev(struct ptfx *x, const char *bus, const char *name, const char *driver,
		      const char *group)
{
	char dev[PATH_MAX], p[PATH_MAX], t[PATH_MAX];
	SNP(dev, "%s/devices/platform/%s", x->root, name);
	mkdirs(dev);
	SNP(p, "%s/bus/%s/devices", x->root, bus);
	mkdirs(p);
	SNP(p, "%s/bus/%s/devices/%s", x->root, bus, name);
	link_to(dev, p);
	if (driver) {
		SNP(t, "%s/bus/%s/drivers/%s", x->root, bus, driver);
		mkdirs(t);
		SNP(p, "%s/driver", dev);
		link_to(t, p);
	}
	if (group) {
		SNP(t, "%s/kernel/iommu_groups/%s", x->root, group);
		mkdirs(t);
		SNP(p, "%s/name", t);
		FILE *fp = fopen(p, "w");
		assert_non_null(fp);
		fputs("vfio-noiommu\n", fp);
		fclose(fp);
		SNP(p, "%s/iommu_group", dev);
		link_to(t, p);
	}
	/* of_node → firmware/devicetree/base/<node> where node is "<kind>@<addr>" */
	char node[64];
	SNP(node, "%s", name);
	char *dot = strchr(node, '.');
	assert_non_null(dot);
	*dot = '\0';
	char nodename[96];
	SNP(nodename, "%s@%s", dot + 1, node);
	SNP(t, "%s/firmware/devicetree/base/%s", x->root, nodename);
	mkdirs(t);
	SNP(p, "%s/of_node", dev);
	link_to(t, p);
}

static void prop_reg(void *fdt, int n, uint64_t a, uint64_t s)
{
	assert_int_equal(fdt_appendprop_u64(fdt, n, "reg", a), 0);
	assert_int_equal(fdt_appendprop_u64(fdt, n, "reg", s), 0);
}

static void prop_irq(void *fdt, int n, uint32_t spi)
{
	assert_int_equal(fdt_appendprop_u32(fdt, n, "interrupts", 0), 0);
	assert_int_equal(fdt_appendprop_u32(fdt, n, "interrupts", spi), 0);
	assert_int_equal(fdt_appendprop_u32(fdt, n, "interrupts", 4), 0);
}

/* The host DT of a QEMU-virt-like board at <root>/firmware/fdt */
static void host_fdt(struct ptfx *x)
{
	static uint8_t fdt[8192];
	assert_int_equal(fdt_create_empty_tree(fdt, sizeof(fdt)), 0);
	assert_int_equal(fdt_setprop_u32(fdt, 0, "#address-cells", 2), 0);
	assert_int_equal(fdt_setprop_u32(fdt, 0, "#size-cells", 2), 0);
	assert_int_equal(fdt_setprop_u32(fdt, 0, "interrupt-parent", 0x8001), 0);
	int gic = fdt_add_subnode(fdt, 0, "intc@8000000");
	assert_true(gic >= 0);
	assert_int_equal(fdt_setprop_string(fdt, gic, "compatible", "arm,gic-v3"), 0);
	assert_int_equal(fdt_setprop_u32(fdt, gic, "#interrupt-cells", 3), 0);
	assert_int_equal(fdt_setprop(fdt, gic, "interrupt-controller", NULL, 0), 0);
	assert_int_equal(fdt_setprop_u32(fdt, gic, "phandle", 0x8001), 0);
	prop_reg(fdt, gic, 0x8000000, 0x10000);
	int clk = fdt_add_subnode(fdt, 0, "apb-pclk");
	assert_int_equal(fdt_setprop_string(fdt, clk, "compatible", "fixed-clock"), 0);
	assert_int_equal(fdt_setprop_u32(fdt, clk, "#clock-cells", 0), 0);
	assert_int_equal(fdt_setprop_u32(fdt, clk, "clock-frequency", 24000000), 0);
	assert_int_equal(fdt_setprop_u32(fdt, clk, "phandle", 0x8000), 0);
	int gpio = fdt_add_subnode(fdt, 0, "pl061@9030000");
	assert_int_equal(fdt_setprop_string(fdt, gpio, "compatible", "arm,pl061"), 0);
	assert_int_equal(fdt_appendprop_string(fdt, gpio, "compatible", "arm,primecell"), 0);
	prop_reg(fdt, gpio, 0x9030000, 0x1000);
	prop_irq(fdt, gpio, 7);
	assert_int_equal(fdt_setprop_u32(fdt, gpio, "clocks", 0x8000), 0);
	assert_int_equal(fdt_setprop_string(fdt, gpio, "clock-names", "apb_pclk"), 0);
	assert_int_equal(fdt_setprop(fdt, gpio, "gpio-controller", NULL, 0), 0);
	assert_int_equal(fdt_setprop_u32(fdt, gpio, "#gpio-cells", 2), 0);
	int fw = fdt_add_subnode(fdt, 0, "fw-cfg@9020000");
	assert_int_equal(fdt_setprop_string(fdt, fw, "compatible", "qemu,fw-cfg-mmio"), 0);
	prop_reg(fdt, fw, 0x9020000, 0x18);
	assert_int_equal(fdt_setprop(fdt, fw, "dma-coherent", NULL, 0), 0);
	int rtc = fdt_add_subnode(fdt, 0, "pl031@9010000");
	assert_int_equal(fdt_setprop_string(fdt, rtc, "compatible", "arm,pl031"), 0);
	prop_reg(fdt, rtc, 0x9010000, 0x1000);
	prop_irq(fdt, rtc, 2);
	assert_int_equal(fdt_pack(fdt), 0);
	char p[PATH_MAX];
	SNP(p, "%s/firmware", x->root);
	mkdirs(p);
	SNP(p, "%s/firmware/fdt", x->root);
	FILE *fp = fopen(p, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(fdt, 1, fdt_totalsize(fdt), fp), fdt_totalsize(fdt));
	fclose(fp);
}

static void setup(struct ptfx *x)
{
	fixture_setup(&x->f, 1);
	SNP(x->root, "%s/sys", x->f.dir);
	mkdirs(x->root);
	sysfs_dev(x, "amba", "9030000.pl061", "vfio-amba", "0");
	sysfs_dev(x, "platform", "9020000.fw-cfg", "vfio-platform", "1");
	sysfs_dev(x, "amba", "9010000.pl031", "rtc-pl031", NULL);
	host_fdt(x);
	x->vfio = mock_vfio_new();
	assert_non_null(x->vfio);
	mock_vfio_set_quiet(x->vfio, true);
	assert_int_equal(mock_vfio_add_group(x->vfio, 0, true), 0);
	assert_int_equal(mock_vfio_add_device(x->vfio, 0, "9030000.pl061", VFIO_DEVICE_FLAGS_AMBA |
								      VFIO_DEVICE_FLAGS_RESET),
			 0);
	assert_int_equal(mock_vfio_add_region(x->vfio, "9030000.pl061", PAGE,
					      VFIO_REGION_INFO_FLAG_READ |
						      VFIO_REGION_INFO_FLAG_WRITE |
						      VFIO_REGION_INFO_FLAG_MMAP),
			 0);
	assert_int_equal(mock_vfio_add_irq(x->vfio, "9030000.pl061", 1,
					   VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
						   VFIO_IRQ_INFO_AUTOMASKED),
			 0);
	assert_int_equal(mock_vfio_add_group(x->vfio, 1, true), 0);
	assert_int_equal(mock_vfio_add_device(x->vfio, 1, "9020000.fw-cfg", VFIO_DEVICE_FLAGS_PLATFORM),
			 0);
	assert_int_equal(mock_vfio_add_region(x->vfio, "9020000.fw-cfg", 0x18,
					      VFIO_REGION_INFO_FLAG_READ |
						      VFIO_REGION_INFO_FLAG_WRITE),
			 0);
	x->vfio_sys = mock_vfio_sys(x->vfio);
	mock_kvm_set_fallback(x->f.mock, &x->vfio_sys);
	x->f.cfg.sysfs_root = x->root;
}

static void add_pt(struct ptfx *x, const char *sysfs, enum vmm_pt_placement pl, uint64_t addr)
{
	struct vmm_passthrough_config *p = &x->f.cfg.passthrough[x->f.cfg.nr_passthrough++];
	p->sysfs = strdup(sysfs);
	p->placement = pl;
	p->addr = addr;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void teardown(struct ptfx *x)
{
	struct mock_vfio *v = x->vfio;
	char root[PATH_MAX];
	SNP(root, "%s", x->root);
	fixture_teardown(&x->f); /* destroys the VM: mock KVM leak checks */
	assert_int_equal(mock_vfio_open_fds(v), 0);
	assert_int_equal(mock_vfio_live_mappings(v), 0);
	assert_int_equal(mock_vfio_violations(v), 0);
	mock_vfio_free(v);
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int dt_node(struct ptfx *x, const char *path, uint8_t *fdt, size_t len)
{
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(x->f.mock, 0, &v), 0);
	assert_int_equal(mock_kvm_guest_read(x->f.mock, v.x[0], fdt, len), 0);
	return fdt_path_offset(fdt, path);
}

static void identity_placement_and_regions(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, PL061, VMM_PT_IDENTITY, 0);
	add_pt(&x, FWCFG, VMM_PT_IDENTITY, 0);
	if (fixture_create(&x.f) != 0)
		fail_msg("create failed: %s", x.f.err);
	/* the mmappable pl061 page is a memslot at its host address */
	assert_int_equal(mock_kvm_nr_slots(x.f.mock), 2);
	struct kvm_userspace_memory_region slot;
	assert_int_equal(mock_kvm_slot(x.f.mock, 1, &slot), 0);
	assert_int_equal(slot.guest_phys_addr, 0x9030000);
	assert_int_equal(slot.memory_size, PAGE);
	/* the guest DT has both nodes, pl061 on an allocated SPI with the host trigger */
	static uint8_t fdt[A64_FDT_BUF_SIZE];
	int n = dt_node(&x, "/pl061@9030000", fdt, sizeof(fdt));
	assert_true(n >= 0);
	int len;
	const fdt32_t *irq = fdt_getprop(fdt, n, "interrupts", &len);
	assert_int_equal(len, 12);
	assert_int_equal(fdt32_to_cpu(irq[1]), A64_PT_SPI_BASE);
	assert_int_equal(fdt32_to_cpu(irq[2]), 4);
	assert_true(dt_node(&x, "/fw-cfg@9020000", fdt, sizeof(fdt)) >= 0);
	/* reset at VM start */
	struct mock_vfio_dev_state ds;
	assert_int_equal(mock_vfio_dev_state(x.vfio, "9030000.pl061", &ds), 0);
	assert_true(ds.resets >= 1);
	teardown(&x);
}

/* fw-cfg (0x18 bytes) is not mmappable: guest accesses are forwarded */
static void trapped_region_forwards(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, FWCFG, VMM_PT_IDENTITY, 0);
	if (fixture_create(&x.f) != 0)
		fail_msg("create failed: %s", x.f.err);
	uint8_t *mem = mock_vfio_region_mem(x.vfio, "9020000.fw-cfg", 0, NULL);
	assert_non_null(mem);
	memcpy(mem, "QEMU", 4);
	mock_kvm_script_mmio_read(x.f.mock, 0, 0x9020000, 4);
	mock_kvm_script_mmio_write(x.f.mock, 0, 0x9020008, 0x1234, 2);
	mock_kvm_script_system_event(x.f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(vmm_run(x.f.vmm), VMM_EXIT_POWEROFF);
	struct mock_kvm_mmio_result r;
	assert_int_equal(mock_kvm_mmio_read_result(x.f.mock, 0, 0, &r), 0);
	assert_memory_equal(r.data, "QEMU", 4);
	assert_int_equal(mem[8], 0x34);
	assert_int_equal(mem[9], 0x12);
	teardown(&x);
}

/* device IRQ → VFIO trigger eventfd → KVM irqfd → SPI; guest EOI → resamplefd →
 * VFIO unmask: the whole level path through both mocks */
static void level_irq_end_to_end(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, PL061, VMM_PT_IDENTITY, 0);
	x.f.cfg.passthrough[0].nr_irq_map = 1;
	x.f.cfg.passthrough[0].irq_map[0].index = 0;
	x.f.cfg.passthrough[0].irq_map[0].spi = 7; /* same as the host: 1:1 */
	if (fixture_create(&x.f) != 0)
		fail_msg("create failed: %s", x.f.err);
	struct mock_kvm_irqfd kf;
	assert_int_equal(mock_kvm_irqfd_by_gsi(x.f.mock, 7, &kf), 0);
	assert_true(kf.resamplefd >= 0);
	assert_int_equal(mock_vfio_irq_raise(x.vfio, "9030000.pl061", 0), 0);
	assert_int_equal(mock_kvm_irqfd_poll(x.f.mock), 1);
	assert_int_equal(mock_kvm_irq_level(x.f.mock, 32 + 7), 1);
	struct mock_vfio_irq_state is;
	assert_int_equal(mock_vfio_irq_state(x.vfio, "9030000.pl061", 0, &is), 0);
	assert_true(is.masked); /* automasked until the guest EOIs */
	assert_int_equal(mock_vfio_irq_lower(x.vfio, "9030000.pl061", 0), 0);
	assert_int_equal(mock_kvm_irqfd_resample(x.f.mock, 7), 0); /* guest EOI */
	mock_vfio_poll(x.vfio);
	assert_int_equal(mock_vfio_irq_state(x.vfio, "9030000.pl061", 0, &is), 0);
	assert_false(is.masked);
	teardown(&x);
}

static void window_placement(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, PL061, VMM_PT_ALLOC, 0);
	add_pt(&x, FWCFG, VMM_PT_ALLOC, 0);
	if (fixture_create(&x.f) != 0)
		fail_msg("create failed: %s", x.f.err);
	struct kvm_userspace_memory_region slot;
	assert_int_equal(mock_kvm_slot(x.f.mock, 1, &slot), 0);
	assert_int_equal(slot.guest_phys_addr, A64_PT_WINDOW_BASE);
	static uint8_t fdt[A64_FDT_BUF_SIZE];
	assert_true(dt_node(&x, "/pl061@c000000", fdt, sizeof(fdt)) >= 0);
	assert_true(dt_node(&x, "/fw-cfg@c001000", fdt, sizeof(fdt)) >= 0);
	teardown(&x);
}

static void expect_error(struct ptfx *x, const char *needle)
{
	int r = fixture_create(&x->f);
	if (r != -EINVAL || !strstr(x->f.err, needle))
		fail_msg("expected -EINVAL with '%s', got %d: '%s'", needle, r, x->f.err);
	assert_int_equal(mock_kvm_count_calls(x->f.mock, KVM_CREATE_VM), 0);
}

static void wrong_driver_is_refused(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, RTC, VMM_PT_IDENTITY, 0);
	expect_error(&x, "9010000.pl031");
	teardown(&x);
}

static void missing_device_is_refused(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, "/sys/bus/amba/devices/9999000.nothing", VMM_PT_IDENTITY, 0);
	expect_error(&x, "9999000.nothing");
	teardown(&x);
}

static void overlap_with_ram_is_refused(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, PL061, VMM_PT_FIXED, A64_RAM_BASE);
	expect_error(&x, "overlaps guest RAM");
	teardown(&x);
}

static void overlap_between_devices_is_refused(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, PL061, VMM_PT_FIXED, 0x0c000000);
	add_pt(&x, FWCFG, VMM_PT_FIXED, 0x0c000000);
	expect_error(&x, "overlaps 9030000.pl061");
	teardown(&x);
}

static void irq_on_used_spi_is_refused(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, PL061, VMM_PT_IDENTITY, 0);
	x.f.cfg.passthrough[0].nr_irq_map = 1;
	x.f.cfg.passthrough[0].irq_map[0].spi = A64_UART_SPI;
	expect_error(&x, "in use");
	teardown(&x);
}

static void irq_beyond_gic_is_refused(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, PL061, VMM_PT_IDENTITY, 0);
	x.f.cfg.passthrough[0].nr_irq_map = 1;
	x.f.cfg.passthrough[0].irq_map[0].spi = 900;
	expect_error(&x, "cannot be mapped");
	teardown(&x);
}

static void no_host_dt_is_explained(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	char p[PATH_MAX];
	SNP(p, "%s/firmware/fdt", x.root);
	unlink(p);
	add_pt(&x, PL061, VMM_PT_IDENTITY, 0);
	expect_error(&x, "host device tree");
	teardown(&x);
}

static void reboot_rewires_everything(void **state)
{
	(void)state;
	struct ptfx x;
	setup(&x);
	add_pt(&x, PL061, VMM_PT_IDENTITY, 0);
	x.f.cfg.on_reset = VMM_RESET_REBOOT;
	if (fixture_create(&x.f) != 0)
		fail_msg("create failed: %s", x.f.err);
	mock_kvm_script_system_event(x.f.mock, 0, KVM_SYSTEM_EVENT_RESET);
	mock_kvm_script_system_event(x.f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(vmm_run(x.f.vmm), VMM_EXIT_POWEROFF);
	assert_int_equal(mock_kvm_nr_slots(x.f.mock), 2);
	assert_int_equal(mock_kvm_nr_irqfds(x.f.mock), 1);
	teardown(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(identity_placement_and_regions),
		cmocka_unit_test(trapped_region_forwards),
		cmocka_unit_test(level_irq_end_to_end),
		cmocka_unit_test(window_placement),
		cmocka_unit_test(wrong_driver_is_refused),
		cmocka_unit_test(missing_device_is_refused),
		cmocka_unit_test(overlap_with_ram_is_refused),
		cmocka_unit_test(overlap_between_devices_is_refused),
		cmocka_unit_test(irq_on_used_spi_is_refused),
		cmocka_unit_test(irq_beyond_gic_is_refused),
		cmocka_unit_test(no_host_dt_is_explained),
		cmocka_unit_test(reboot_rewires_everything),
	};
	return cmocka_run_group_tests_name("passthrough", tests, NULL, NULL);
}
