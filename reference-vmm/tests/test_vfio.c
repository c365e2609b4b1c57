/* Unit tests of the VFIO passthrough layer (passthrough/vfio*.c) against mock VFIO and
 * fake sysfs trees in temp dirs: open paths and every error path, DMA, mmapped and
 * trapped regions, IRQ trigger/unmask/resample, reset, teardown without leaks. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/aarch64/kvm_arm64.h"
#include "mock_kvm.h"
#include "mock_vfio.h"
#include "passthrough/vfio.h"
#include "passthrough/vfio_int.h"
#include "unit_helpers.h"

#define PAGE 4096ULL
#define LEVEL (VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED)
#define EDGE VFIO_IRQ_INFO_EVENTFD
#define RW (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)
#define RWM (RW | VFIO_REGION_INFO_FLAG_MMAP)
#define SET_E (VFIO_IRQ_SET_DATA_EVENTFD)
#define SET_N (VFIO_IRQ_SET_DATA_NONE)
#define ACT_T (VFIO_IRQ_SET_ACTION_TRIGGER)
#define ACT_U (VFIO_IRQ_SET_ACTION_UNMASK)

#define PL061 "/sys/bus/amba/devices/9030000.pl061"
#define FWCFG "/sys/bus/platform/devices/9020000.fw-cfg"
#define ROM "/sys/bus/platform/devices/9040000.rom"
#define ODD "/sys/bus/platform/devices/9050000.odd"
#define UARTA "/sys/bus/platform/devices/3100000.serial"
#define UARTB "/sys/bus/platform/devices/3110000.serial"
#define I2C "/sys/bus/platform/devices/c240000.i2c"
#define PCI "/sys/bus/platform/devices/pci-thing"

struct fx {
	char tmp[PATH_MAX];
	char root[PATH_MAX]; /* the fake /sys */
	struct mock_vfio *m;
	struct sys s;
	struct unit_log_capture cap;
	struct vfio_container *c;
	char err[256];
};

/* ---- fake sysfs ---- */

/* snprintf into an array that must not truncate */
#define SNP(buf, ...) assert_true(snprintf((buf), sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

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

static void fpath(struct fx *f, char *out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fpath(struct fx *f, char *out, const char *fmt, ...)
{
	char rel[PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	assert_true(snprintf(out, PATH_MAX, "%s/%s", f->root, rel) < PATH_MAX);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/*
 * A device NAME on BUS: /sys/devices/platform/NAME with bus/BUS/devices/NAME -> it;
 * driver -> bus/BUS/drivers/DRIVER (NULL: unbound); iommu_group -> kernel/iommu_groups/
 * GROUP (NULL: none), whose name file says "vfio-noiommu" when noiommu_name; of_node.
 */
static void sysfs_dev(struct fx *f, const char *bus, const char *name, const char *driver,
		      const char *group, bool noiommu_name)
{
	char dev[PATH_MAX], p[PATH_MAX], t[PATH_MAX];
	fpath(f, dev, "devices/platform/%s", name);
	mkdirs(dev);
	fpath(f, p, "bus/%s/devices", bus);
	mkdirs(p);
	fpath(f, p, "bus/%s/devices/%s", bus, name);
	assert_int_equal(symlink(dev, p), 0);
	if (driver) {
		fpath(f, t, "bus/%s/drivers/%s", bus, driver);
		mkdirs(t);
		SNP(p, "%s/driver", dev);
		assert_int_equal(symlink(t, p), 0);
	}
	if (group) {
		fpath(f, t, "kernel/iommu_groups/%s", group);
		mkdirs(t);
		if (noiommu_name) {
			char n[PATH_MAX + 8];
			SNP(n, "%s/name", t);
			write_file(n, "vfio-noiommu\n");
		}
		SNP(p, "%s/iommu_group", dev);
		assert_int_equal(symlink(t, p), 0);
	}
	fpath(f, t, "firmware/devicetree/base/node@%s", name);
	mkdirs(t);
	SNP(p, "%s/of_node", dev);
	assert_int_equal(symlink(t, p), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* ---- mock host ---- */

static void host_setup(struct fx *f)
{
	struct mock_vfio *m = f->m;
	/* QEMU virt (no IOMMU): pl061 and fw-cfg in no-IOMMU groups */
	assert_int_equal(mock_vfio_add_group(m, 0, true), 0);
	assert_int_equal(mock_vfio_add_device(m, 0, "9030000.pl061", VFIO_DEVICE_FLAGS_AMBA), 0);
	assert_int_equal(mock_vfio_add_region(m, "9030000.pl061", PAGE, RWM), 0);
	assert_int_equal(mock_vfio_add_irq(m, "9030000.pl061", 1, LEVEL), 0);
	sysfs_dev(f, "amba", "9030000.pl061", "vfio-amba", "0", true);

	assert_int_equal(mock_vfio_add_group(m, 1, true), 0);
	assert_int_equal(mock_vfio_add_device(m, 1, "9020000.fw-cfg", VFIO_DEVICE_FLAGS_PLATFORM),
			 0);
	assert_int_equal(mock_vfio_add_region(m, "9020000.fw-cfg", 0x18, RW), 0);
	sysfs_dev(f, "platform", "9020000.fw-cfg", "vfio-platform", "1", true);

	/* read-only mappable region, write-only trapped region, MMAP flag on 0x18 bytes */
	assert_int_equal(mock_vfio_add_group(m, 2, true), 0);
	assert_int_equal(mock_vfio_add_device(m, 2, "9040000.rom", VFIO_DEVICE_FLAGS_PLATFORM), 0);
	assert_int_equal(
		mock_vfio_add_region(m, "9040000.rom", PAGE,
				     VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP),
		0);
	assert_int_equal(mock_vfio_add_region(m, "9040000.rom", 0x100, VFIO_REGION_INFO_FLAG_WRITE),
			 1);
	assert_int_equal(mock_vfio_add_region(m, "9040000.rom", 0x18, RWM), 2);
	sysfs_dev(f, "platform", "9040000.rom", "vfio-platform", "2", true);

	/* odd IRQs: count 0, no eventfd, automasked but not maskable */
	assert_int_equal(mock_vfio_add_group(m, 3, true), 0);
	assert_int_equal(mock_vfio_add_device(m, 3, "9050000.odd", VFIO_DEVICE_FLAGS_PLATFORM), 0);
	assert_int_equal(mock_vfio_add_irq(m, "9050000.odd", 0, EDGE), 0);
	assert_int_equal(mock_vfio_add_irq(m, "9050000.odd", 1, 0), 1);
	assert_int_equal(mock_vfio_add_irq(m, "9050000.odd", 1,
					   VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_AUTOMASKED),
			 2);
	sysfs_dev(f, "platform", "9050000.odd", "vfio-platform", "3", true);

	/* Orin-like (SMMU): two UARTs sharing group 12, an I2C in group 13 */
	assert_int_equal(mock_vfio_add_group(m, 12, false), 0);
	assert_int_equal(mock_vfio_add_group(m, 13, false), 0);
	const char *uarts[] = { "3100000.serial", "3110000.serial" };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(
			mock_vfio_add_device(m, 12, uarts[i],
					     VFIO_DEVICE_FLAGS_PLATFORM | VFIO_DEVICE_FLAGS_RESET),
			0);
		assert_int_equal(mock_vfio_add_region(m, uarts[i], 0x10000, RWM), 0);
		assert_int_equal(mock_vfio_add_region(m, uarts[i], 0x18, RW), 1);
		assert_int_equal(mock_vfio_add_irq(m, uarts[i], 1, LEVEL), 0);
		assert_int_equal(mock_vfio_add_irq(m, uarts[i], 1, EDGE), 1);
		sysfs_dev(f, "platform", uarts[i], "vfio-platform", "12", false);
	}
	assert_int_equal(mock_vfio_add_device(m, 13, "c240000.i2c", VFIO_DEVICE_FLAGS_PLATFORM), 0);
	assert_int_equal(mock_vfio_add_region(m, "c240000.i2c", 0x10000, RWM), 0);
	sysfs_dev(f, "platform", "c240000.i2c", "vfio-platform", "13", false);

	/* a PCI device somehow bound to vfio-platform in sysfs */
	assert_int_equal(mock_vfio_add_group(m, 14, false), 0);
	assert_int_equal(mock_vfio_add_device(m, 14, "pci-thing", VFIO_DEVICE_FLAGS_PCI), 0);
	sysfs_dev(f, "platform", "pci-thing", "vfio-platform", "14", false);

	/* sysfs-only trouble */
	sysfs_dev(f, "platform", "9060000.unbound", NULL, "20", false);
	sysfs_dev(f, "amba", "9070000.other", "pl061_gpio", "21", false);
	sysfs_dev(f, "platform", "9080000.nogroup", "vfio-platform", NULL, false);
	sysfs_dev(f, "platform", "9090000.badgroup", "vfio-platform", "abc", false);
	sysfs_dev(f, "platform", "90a0000.nodev", "vfio-platform", "30", false);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	SNP(f->tmp, "/tmp/test_vfio.XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	SNP(f->root, "%s/sys", f->tmp);
	mkdirs(f->root);
	f->m = mock_vfio_new();
	assert_non_null(f->m);
	mock_vfio_set_quiet(f->m, true);
	f->s = mock_vfio_sys(f->m);
	assert_int_equal(unit_log_capture_open(&f->cap, LOG_DEBUG), 0);
	host_setup(f);
	f->c = vfio_container_new(&f->s, &f->cap.log, f->root);
	assert_non_null(f->c);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vfio_container_free(f->c);
	assert_int_equal(mock_vfio_open_fds(f->m), 0);
	assert_int_equal(mock_vfio_live_mappings(f->m), 0);
	assert_int_equal(mock_vfio_nr_containers(f->m), 0);
	assert_int_equal(mock_vfio_violations(f->m), 0);
	mock_vfio_free(f->m);
	unit_log_capture_close(&f->cap);
	nftw(f->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static struct vfio_dev *open_ok(struct fx *f, const char *path)
{
	struct vfio_dev *d = NULL;
	f->err[0] = '\0';
	int r = vfio_dev_open(f->c, path, &d, f->err, sizeof(f->err));
	if (r)
		fail_msg("open %s: %d %s", path, r, f->err);
	assert_non_null(d);
	return d;
}

static int open_fail(struct fx *f, const char *path)
{
	struct vfio_dev *d = (struct vfio_dev *)1;
	f->err[0] = '\0';
	int r = vfio_dev_open(f->c, path, &d, f->err, sizeof(f->err));
	assert_true(r < 0);
	assert_null(d);
	assert_true(strlen(f->err) > 0);
	assert_null(strchr(f->err, '\n'));
	return r;
}

static void assert_err(struct fx *f, const char *needle)
{
	if (!strstr(f->err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", f->err, needle);
}

static void assert_log(struct fx *f, const char *needle)
{
	const char *t = unit_log_capture_text(&f->cap);
	if (!strstr(t, needle))
		fail_msg("log lacks \"%s\":\n%s", needle, t);
}

static unsigned int log_count(struct fx *f, const char *needle)
{
	unsigned int n = 0;
	for (const char *t = unit_log_capture_text(&f->cap); (t = strstr(t, needle)); t++)
		n++;
	return n;
}

/* Nothing of the VFIO ABI is left open. */
static void assert_nothing_open(struct fx *f)
{
	assert_int_equal(mock_vfio_open_fds_kind(f->m, MOCK_VFIO_FD_CONTAINER), 0);
	assert_int_equal(mock_vfio_open_fds_kind(f->m, MOCK_VFIO_FD_GROUP), 0);
	assert_int_equal(mock_vfio_open_fds_kind(f->m, MOCK_VFIO_FD_DEVICE), 0);
	assert_int_equal(mock_vfio_live_mappings(f->m), 0);
	assert_int_equal(mock_vfio_nr_containers(f->m), 0);
	assert_int_equal(vfio_container_fd(f->c), -1);
	assert_int_equal(vfio_container_mode(f->c), VFIO_MODE_NONE);
}

static struct mock_vfio_irq_state irq_state(struct fx *f, const char *dev, unsigned int idx)
{
	struct mock_vfio_irq_state st;
	assert_int_equal(mock_vfio_irq_state(f->m, dev, idx, &st), 0);
	return st;
}

static int efd(struct fx *f)
{
	int fd = sys_eventfd(&f->s, 0, EFD_NONBLOCK);
	assert_true(fd >= 0);
	return fd;
}

static uint64_t drain(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;
	assert_int_equal(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

static void *ram_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static uint64_t trap_read(struct vfio_region *r, uint64_t off, unsigned int len)
{
	uint8_t b[8] = { 0 };
	uint64_t v = 0;
	vfio_region_bus_ops.read(r, off, b, len);
	memcpy(&v, b, len);
	return v;
}

static void trap_write(struct vfio_region *r, uint64_t off, uint64_t v, unsigned int len)
{
	uint8_t b[8];
	memcpy(b, &v, 8);
	vfio_region_bus_ops.write(r, off, b, len);
}

/* ---- opening devices ---- */

static void test_open_amba_noiommu(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *d = open_ok(f, PL061);

	assert_string_equal(d->name, "9030000.pl061");
	assert_string_equal(d->driver, "vfio-amba");
	assert_true(d->flags & VFIO_DEVICE_FLAGS_AMBA);
	assert_non_null(d->of_node);
	assert_non_null(strstr(d->of_node, "firmware/devicetree/base/node@9030000.pl061"));
	assert_non_null(strstr(d->sysfs_path, f->root));
	assert_int_equal(vfio_container_mode(f->c), VFIO_MODE_NOIOMMU);
	assert_true(vfio_container_fd(f->c) >= 0);

	assert_int_equal(d->nr_regions, 1);
	struct vfio_region *r = vfio_dev_region(d, 0);
	assert_ptr_equal(r, &d->regions[0]);
	assert_null(vfio_dev_region(d, 1));
	assert_int_equal(r->size, PAGE);
	assert_int_equal(r->offset, 0);
	assert_int_equal(r->flags, RWM);
	assert_int_equal(r->host_phys, VFIO_ADDR_UNKNOWN);
	assert_ptr_equal(r->dev, d);
	assert_non_null(r->map);
	/* direct access reaches the device */
	uint8_t *mem = mock_vfio_region_mem(f->m, "9030000.pl061", 0, NULL);
	((volatile uint8_t *)r->map)[0x400] = 0xa5;
	assert_int_equal(mem[0x400], 0xa5);
	/* the trap ops work on a mapped region too */
	assert_int_equal(trap_read(r, 0x400, 1), 0xa5);

	assert_int_equal(d->nr_irqs, 1);
	struct vfio_irq *q = vfio_dev_irq(d, 0);
	assert_non_null(q);
	assert_null(vfio_dev_irq(d, 1));
	assert_true(vfio_irq_is_level(q));
	assert_int_equal(q->count, 1);
	assert_false(q->enabled);
	assert_int_equal(q->trigger_fd, -1);

	/* no DMA in no-IOMMU mode, and the user is told */
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_IOMMU_MAP_DMA), 0);
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_SET_IOMMU), 1);
	assert_log(f, "no-IOMMU mode");
	struct mock_vfio_group_state gs;
	assert_int_equal(mock_vfio_group_state(f->m, 0, &gs), 0);
	assert_true(gs.attached);
	assert_int_equal(gs.iommu, VFIO_NOIOMMU_IOMMU);
	struct mock_vfio_call call;
	assert_int_equal(mock_vfio_call_at(f->m, 0, &call), 0);
	assert_string_equal(call.path, "/dev/vfio/noiommu-0");

	vfio_dev_close(d);
	assert_int_equal(mock_vfio_live_mappings(f->m), 0);
	assert_int_equal(mock_vfio_open_fds_kind(f->m, MOCK_VFIO_FD_DEVICE), 0);
	/* the group stays with the container until it is freed */
	assert_int_equal(mock_vfio_open_fds_kind(f->m, MOCK_VFIO_FD_GROUP), 1);
}

static void test_open_platform_type1_dma(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = ram_alloc(32 * PAGE);

	/* a range added before any device waits for the IOMMU */
	assert_int_equal(
		vfio_container_map_dma(f->c, 0x40000000, ram, 16 * PAGE, f->err, sizeof(f->err)),
		0);
	assert_int_equal(mock_vfio_nr_dma(f->m), 0);
	assert_int_equal(vfio_container_nr_dma(f->c), 1);
	struct vfio_dev *d = open_ok(f, UARTA);
	assert_int_equal(vfio_container_mode(f->c), VFIO_MODE_TYPE1V2);
	assert_string_equal(d->driver, "vfio-platform");
	assert_true(d->flags & VFIO_DEVICE_FLAGS_RESET);
	assert_int_equal(mock_vfio_nr_dma(f->m), 1);
	struct mock_vfio_dma dm;
	assert_int_equal(mock_vfio_dma_at(f->m, 0, &dm), 0);
	assert_int_equal(dm.iova, 0x40000000);
	assert_int_equal(dm.vaddr, (uint64_t)(uintptr_t)ram);
	assert_int_equal(dm.size, 16 * PAGE);
	assert_int_equal(dm.flags, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
	struct mock_vfio_call call;
	assert_int_equal(mock_vfio_call_at(f->m, 0, &call), 0);
	assert_string_equal(call.path, "/dev/vfio/12");

	/* regions: 64 KiB mapped, 0x18 bytes trapped at index << 40 */
	assert_int_equal(d->nr_regions, 2);
	assert_non_null(d->regions[0].map);
	assert_null(d->regions[1].map);
	assert_int_equal(d->regions[1].offset, 1ULL << 40);

	/* guest memory: one map per region, immediately */
	struct guest_mem gm;
	guest_mem_init(&gm);
	assert_int_equal(guest_mem_add(&gm, 0x80000000, 8 * PAGE, ram + 16 * PAGE), 0);
	assert_int_equal(guest_mem_add(&gm, 0x90000000, 8 * PAGE, ram + 24 * PAGE), 0);
	assert_int_equal(vfio_container_map_guest_mem(f->c, &gm, f->err, sizeof(f->err)), 0);
	assert_int_equal(mock_vfio_nr_dma(f->m), 3);
	assert_int_equal(vfio_container_unmap_dma(f->c, 0x80000000, 8 * PAGE), 0);
	assert_int_equal(mock_vfio_nr_dma(f->m), 2);
	assert_int_equal(vfio_container_unmap_all(f->c), 0);
	assert_int_equal(mock_vfio_nr_dma(f->m), 0);
	assert_int_equal(vfio_container_nr_dma(f->c), 0);
	vfio_dev_close(d);
	munmap(ram, 32 * PAGE);
}

static void test_map_dma_errors(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = ram_alloc(16 * PAGE);
	struct vfio_dev *d = open_ok(f, UARTA);

	assert_int_equal(vfio_container_map_dma(f->c, 0x1001, ram, PAGE, f->err, sizeof(f->err)),
			 -EINVAL);
	assert_int_equal(
		vfio_container_map_dma(f->c, 0x1000, ram + 1, PAGE, f->err, sizeof(f->err)),
		-EINVAL);
	assert_int_equal(vfio_container_map_dma(f->c, 0x1000, ram, 0, f->err, sizeof(f->err)),
			 -EINVAL);
	assert_int_equal(vfio_container_map_dma(f->c, ~0ULL - PAGE + 1, ram, 2 * PAGE, f->err,
						sizeof(f->err)),
			 -EINVAL);
	assert_int_equal(
		vfio_container_map_dma(f->c, 0x10000, ram, 4 * PAGE, f->err, sizeof(f->err)), 0);
	assert_int_equal(
		vfio_container_map_dma(f->c, 0x12000, ram, 4 * PAGE, f->err, sizeof(f->err)),
		-EEXIST);
	assert_err(f, "overlaps");
	assert_int_equal(vfio_container_unmap_dma(f->c, 0x10000, PAGE), -ENOENT);
	/* the kernel refuses: nothing is kept */
	assert_int_equal(mock_vfio_fail_next(f->m, VFIO_IOMMU_MAP_DMA, -ENOMEM), 0);
	assert_int_equal(vfio_container_map_dma(f->c, 0x20000, ram + 4 * PAGE, 4 * PAGE, f->err,
						sizeof(f->err)),
			 -ENOMEM);
	assert_err(f, "cannot map guest memory 0x20000");
	assert_int_equal(vfio_container_nr_dma(f->c), 1);
	/* guest memory: failure on the second region undoes the first */
	struct guest_mem gm;
	guest_mem_init(&gm);
	assert_int_equal(guest_mem_add(&gm, 0x80000000, 4 * PAGE, ram + 8 * PAGE), 0);
	assert_int_equal(guest_mem_add(&gm, 0x90000000, 4 * PAGE, ram + 12 * PAGE), 0);
	assert_int_equal(mock_vfio_fail_nth(f->m, VFIO_IOMMU_MAP_DMA, 2, -EFAULT), 0);
	assert_int_equal(vfio_container_map_guest_mem(f->c, &gm, f->err, sizeof(f->err)), -EFAULT);
	assert_int_equal(vfio_container_nr_dma(f->c), 1);
	assert_int_equal(mock_vfio_nr_dma(f->m), 1);
	/* a failing unmap is reported, the range forgotten anyway */
	assert_int_equal(mock_vfio_fail_next(f->m, VFIO_IOMMU_UNMAP_DMA, -EIO), 0);
	assert_int_equal(vfio_container_unmap_all(f->c), -EIO);
	assert_int_equal(vfio_container_nr_dma(f->c), 0);
	assert_log(f, "cannot unmap DMA range 0x10000");
	vfio_dev_close(d);
	vfio_container_free(f->c);
	f->c = NULL;
	munmap(ram, 16 * PAGE);
}

static void test_noiommu_map_dma_is_noop(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = ram_alloc(4 * PAGE);
	struct vfio_dev *d = open_ok(f, PL061);
	assert_int_equal(
		vfio_container_map_dma(f->c, 0x40000000, ram, 4 * PAGE, f->err, sizeof(f->err)), 0);
	assert_int_equal(vfio_container_nr_dma(f->c), 1);
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_IOMMU_MAP_DMA), 0);
	assert_int_equal(vfio_container_unmap_all(f->c), 0);
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_IOMMU_UNMAP_DMA), 0);
	vfio_dev_close(d);
	munmap(ram, 4 * PAGE);
}

static void test_dma_replay_failure(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = ram_alloc(8 * PAGE);
	assert_int_equal(
		vfio_container_map_dma(f->c, 0x40000000, ram, 4 * PAGE, f->err, sizeof(f->err)), 0);
	assert_int_equal(vfio_container_map_dma(f->c, 0x50000000, ram + 4 * PAGE, 4 * PAGE, f->err,
						sizeof(f->err)),
			 0);
	assert_int_equal(mock_vfio_fail_nth(f->m, VFIO_IOMMU_MAP_DMA, 2, -ENOMEM), 0);
	assert_int_equal(open_fail(f, UARTA), -ENOMEM);
	assert_err(f, "cannot map guest memory 0x50000000");
	assert_nothing_open(f);
	assert_int_equal(mock_vfio_nr_dma(f->m), 0);
	assert_int_equal(vfio_container_nr_dma(f->c), 2); /* still wanted */
	/* the next device maps both */
	struct vfio_dev *d = open_ok(f, UARTA);
	assert_int_equal(mock_vfio_nr_dma(f->m), 2);
	vfio_dev_close(d);
	vfio_container_free(f->c);
	f->c = NULL;
	munmap(ram, 8 * PAGE);
}

/* ---- regions ---- */

static void test_trapped_region(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *d = open_ok(f, FWCFG);
	struct vfio_region *r = &d->regions[0];
	uint8_t *mem = mock_vfio_region_mem(f->m, "9020000.fw-cfg", 0, NULL);

	assert_null(r->map);
	assert_int_equal(r->size, 0x18);
	assert_int_equal(d->nr_irqs, 0);
	for (unsigned int i = 0; i < 0x18; i++)
		mem[i] = (uint8_t)(0x10 + i);
	assert_int_equal(trap_read(r, 0, 1), 0x10);
	assert_int_equal(trap_read(r, 2, 2), 0x1312);
	assert_int_equal(trap_read(r, 4, 4), 0x17161514);
	assert_int_equal(trap_read(r, 8, 8), 0x1f1e1d1c1b1a1918ULL);
	assert_int_equal(trap_read(r, 0x10, 8), 0x2726252423222120ULL);
	trap_write(r, 0x8, 0x0123456789abcdefULL, 8);
	assert_int_equal(mem[8], 0xef);
	assert_int_equal(mem[15], 0x01);
	trap_write(r, 0x0, 0xbeef, 2);
	assert_int_equal(mem[0], 0xef);
	assert_int_equal(mem[1], 0xbe);
	assert_int_equal(mem[2], 0x12);
	trap_write(r, 0x17, 0x99, 1);
	assert_int_equal(mem[0x17], 0x99);
	struct mock_vfio_dev_state ds;
	assert_int_equal(mock_vfio_dev_state(f->m, "9020000.fw-cfg", &ds), 0);
	assert_int_equal(ds.reads, 5);
	assert_int_equal(ds.writes, 3);
	assert_false(atomic_load(&r->warned));

	/* outside the region: all-ones, dropped, logged once */
	assert_int_equal(trap_read(r, 0x14, 8), ~0ULL);
	assert_int_equal(trap_read(r, 0x18, 1), 0xff);
	assert_int_equal(trap_read(r, ~0ULL, 4), 0xffffffffULL);
	trap_write(r, 0x16, 0xffff, 4);
	assert_int_equal(trap_read(r, 0, 3), 0xffffff); /* bad length */
	assert_true(atomic_load(&r->warned));
	assert_int_equal(log_count(f, "9020000.fw-cfg region 0"), 1);
	assert_int_equal(mock_vfio_dev_state(f->m, "9020000.fw-cfg", &ds), 0);
	assert_int_equal(ds.reads, 5);
	assert_int_equal(ds.writes, 3);
	vfio_dev_close(d);
}

static void test_trapped_region_kernel_errors(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *d = open_ok(f, FWCFG);
	struct vfio_region *r = &d->regions[0];
	uint8_t *mem = mock_vfio_region_mem(f->m, "9020000.fw-cfg", 0, NULL);
	mem[0] = 0x42;

	assert_int_equal(mock_vfio_fail_next(f->m, MOCK_VFIO_OP_PREAD, -EIO), 0);
	assert_int_equal(trap_read(r, 0, 4), 0xffffffffULL);
	assert_log(f, "guest read of 4 bytes at 0x0 failed (Input/output error)");
	assert_int_equal(trap_read(r, 0, 1), 0x42); /* the next access works */
	assert_int_equal(mock_vfio_fail_next(f->m, MOCK_VFIO_OP_PWRITE, -EIO), 0);
	trap_write(r, 0, 0x11, 1);
	assert_int_equal(mem[0], 0x42);
	assert_int_equal(log_count(f, "9020000.fw-cfg region 0"), 1); /* once */
	vfio_dev_close(d);
}

static void test_region_permissions_and_alignment(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *d = open_ok(f, ROM);
	assert_int_equal(d->nr_regions, 3);
	/* read-only mappable: mapped PROT_READ (the machine makes the memslot read-only) */
	struct vfio_region *ro = &d->regions[0];
	assert_non_null(ro->map);
	uint8_t *mem = mock_vfio_region_mem(f->m, "9040000.rom", 0, NULL);
	mem[5] = 0x33;
	assert_int_equal(((volatile uint8_t *)ro->map)[5], 0x33);
	trap_write(ro, 5, 0x44, 1); /* a write the guest makes to it is dropped */
	assert_int_equal(mem[5], 0x33);
	assert_true(atomic_load(&ro->warned));
	/* write-only trapped: reads are all-ones without reaching the kernel */
	struct vfio_region *wo = &d->regions[1];
	assert_null(wo->map);
	trap_write(wo, 0x10, 0x5a5a, 2);
	uint8_t *wmem = mock_vfio_region_mem(f->m, "9040000.rom", 1, NULL);
	assert_int_equal(wmem[0x10], 0x5a);
	assert_int_equal(trap_read(wo, 0x10, 2), 0xffff);
	/* MMAP reported on a region that is not page-sized: trapped, no mmap attempted */
	assert_null(d->regions[2].map);
	assert_int_equal(mock_vfio_count_calls(f->m, MOCK_VFIO_OP_MMAP), 1);
	assert_log(f, "9040000.rom region 2 (0x18 bytes) is not page-aligned");
	vfio_dev_close(d);
}

static void test_mmap_failure_traps(void **state)
{
	struct fx *f = *state;
	assert_int_equal(mock_vfio_fail_next(f->m, MOCK_VFIO_OP_MMAP, -ENOMEM), 0);
	struct vfio_dev *d = open_ok(f, PL061);
	assert_null(d->regions[0].map);
	assert_log(f, "cannot mmap 9030000.pl061 region 0");
	uint8_t *mem = mock_vfio_region_mem(f->m, "9030000.pl061", 0, NULL);
	mem[0xfe0] = 0x61;
	assert_int_equal(trap_read(&d->regions[0], 0xfe0, 4), 0x61);
	vfio_dev_close(d);
	assert_int_equal(mock_vfio_live_mappings(f->m), 0);
}

/* ---- error paths ---- */

static void test_errors_sysfs(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_fail(f, "/sys/bus/platform/devices/9999999.missing"), -EINVAL);
	assert_err(f,
		   "passthrough device /sys/bus/platform/devices/9999999.missing does not exist");
	assert_int_equal(open_fail(f, "/sys/bus/platform/devices/9060000.unbound"), -EINVAL);
	assert_err(f, "9060000.unbound is not bound to any driver");
	assert_int_equal(open_fail(f, "/sys/bus/amba/devices/9070000.other"), -EINVAL);
	assert_err(f, "9070000.other is bound to driver pl061_gpio");
	assert_int_equal(open_fail(f, "/sys/bus/platform/devices/9080000.nogroup"), -EINVAL);
	assert_err(f, "9080000.nogroup has no IOMMU group");
	assert_err(f, "enable_unsafe_noiommu_mode");
	assert_int_equal(open_fail(f, "/sys/bus/platform/devices/9090000.badgroup"), -EINVAL);
	assert_err(f, "unrecognised iommu_group");
	assert_int_equal(open_fail(f, ""), -EINVAL);
	/* a file, not a device directory */
	char p[PATH_MAX];
	fpath(f, p, "devices/platform/9030000.pl061/uevent");
	write_file(p, "x\n");
	assert_int_equal(open_fail(f, "/sys/devices/platform/9030000.pl061/uevent"), -EINVAL);
	/* none of this touched VFIO */
	assert_int_equal(mock_vfio_nr_calls(f->m), 0);
	assert_nothing_open(f);
}

static void test_error_group_not_viable(void **state)
{
	struct fx *f = *state;
	assert_int_equal(mock_vfio_set_group_viable(f->m, 12, false), 0);
	assert_int_equal(open_fail(f, UARTA), -EINVAL);
	assert_err(f, "IOMMU group 12 of 3100000.serial is not viable: unbind the other devices");
	assert_nothing_open(f);
}

static void test_error_group_node(void **state)
{
	struct fx *f = *state;
	/* sysfs names group 30, /dev/vfio has no such node */
	assert_int_equal(open_fail(f, "/sys/bus/platform/devices/90a0000.nodev"), -ENOENT);
	assert_err(f, "/dev/vfio/30");
	assert_nothing_open(f);
	/* the group is held by someone else */
	int g = sys_open(&f->s, "/dev/vfio/12", O_RDWR);
	assert_true(g >= 0);
	assert_int_equal(open_fail(f, UARTA), -EBUSY);
	assert_err(f, "in use by another process");
	sys_close(&f->s, g);
	assert_nothing_open(f);
}

static void test_error_host_support(void **state)
{
	struct fx *f = *state;
	mock_vfio_set_iommu_support(f->m, false, true);
	assert_int_equal(open_fail(f, UARTA), -ENOTSUP);
	assert_err(f, "does not offer the type1v2 IOMMU");
	assert_nothing_open(f);
	mock_vfio_set_iommu_support(f->m, true, false);
	assert_int_equal(open_fail(f, PL061), -ENOTSUP);
	assert_err(f, "enable_unsafe_noiommu_mode=1");
	assert_nothing_open(f);
	mock_vfio_set_iommu_support(f->m, true, true);
	mock_vfio_set_container_node(f->m, false);
	assert_int_equal(open_fail(f, PL061), -ENOENT);
	assert_err(f, "cannot open the VFIO container /dev/vfio/vfio");
	assert_nothing_open(f);
	mock_vfio_set_container_node(f->m, true);
	mock_vfio_set_api_version(f->m, 1);
	assert_int_equal(open_fail(f, PL061), -ENOTSUP);
	assert_err(f, "API version 1");
	assert_nothing_open(f);
	mock_vfio_set_api_version(f->m, 0);
	mock_vfio_set_rawio(f->m, false);
	assert_int_equal(open_fail(f, PL061), -EPERM);
	assert_err(f, "CAP_SYS_RAWIO");
	assert_nothing_open(f);
	mock_vfio_set_rawio(f->m, true);
	assert_int_equal(open_fail(f, PCI), -EINVAL);
	assert_err(f, "pci-thing is not a VFIO platform or AMBA device");
	assert_nothing_open(f);
	vfio_dev_close(open_ok(f, PL061));
}

/* Each kernel call of the open sequence failing leaves nothing behind. */
static void test_error_each_ioctl(void **state)
{
	struct fx *f = *state;
	static const unsigned long reqs[] = {
		VFIO_GROUP_GET_STATUS,    VFIO_GET_API_VERSION,
		VFIO_CHECK_EXTENSION,     VFIO_GROUP_SET_CONTAINER,
		VFIO_SET_IOMMU,           VFIO_GROUP_GET_DEVICE_FD,
		VFIO_DEVICE_GET_INFO,     VFIO_DEVICE_GET_REGION_INFO,
		VFIO_DEVICE_GET_IRQ_INFO, MOCK_VFIO_OP_OPEN,
	};
	const char *paths[] = { PL061, UARTA };
	uint8_t *ram = ram_alloc(4 * PAGE);

	for (size_t p = 0; p < 2; p++) {
		for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
			if (p == 1)
				assert_int_equal(vfio_container_map_dma(f->c, 0x40000000, ram,
									4 * PAGE, f->err,
									sizeof(f->err)),
						 0);
			/* second GET_REGION_INFO (after region 0 was mmapped) for the UART */
			unsigned int nth = reqs[i] == VFIO_DEVICE_GET_REGION_INFO && p == 1 ? 2 : 1;
			assert_int_equal(mock_vfio_fail_nth(f->m, reqs[i], nth, -EIO), 0);
			int r = open_fail(f, paths[p]);
			if (r != -EIO)
				fail_msg("%s, failing req %#lx: %d %s", paths[p], reqs[i], r,
					 f->err);
			assert_nothing_open(f);
			assert_int_equal(mock_vfio_nr_dma(f->m), 0);
			mock_vfio_fail_clear(f->m);
			if (p == 1)
				assert_int_equal(vfio_container_unmap_all(f->c), 0);
		}
	}
	/* and afterwards everything works */
	struct vfio_dev *d = open_ok(f, UARTA);
	vfio_dev_close(d);
	munmap(ram, 4 * PAGE);
}

static void test_error_second_device_keeps_first(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *a = open_ok(f, PL061);
	assert_int_equal(mock_vfio_fail_next(f->m, VFIO_GROUP_GET_DEVICE_FD, -ENODEV), 0);
	assert_int_equal(open_fail(f, FWCFG), -ENODEV);
	assert_err(f, "cannot get the VFIO device 9020000.fw-cfg from IOMMU group 1");
	struct mock_vfio_group_state gs;
	assert_int_equal(mock_vfio_group_state(f->m, 1, &gs), 0);
	assert_false(gs.open);
	assert_false(gs.attached);
	assert_int_equal(mock_vfio_group_state(f->m, 0, &gs), 0);
	assert_true(gs.attached);
	assert_int_equal(vfio_container_mode(f->c), VFIO_MODE_NOIOMMU);
	assert_int_equal(mock_vfio_nr_containers(f->m), 1);
	/* the first device still works */
	int t = efd(f), u = efd(f);
	assert_int_equal(vfio_dev_irq_enable(a, 0, t, u, f->err, sizeof(f->err)), 0);
	assert_int_equal(mock_vfio_irq_raise(f->m, "9030000.pl061", 0), 0);
	assert_int_equal(drain(t), 1);
	/* and the second opens once the kernel agrees */
	struct vfio_dev *b = open_ok(f, FWCFG);
	vfio_dev_close(b);
	vfio_dev_close(a);
	sys_close(&f->s, t);
	sys_close(&f->s, u);
}

static void test_error_mixed_modes_and_twice(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *a = open_ok(f, PL061);
	assert_int_equal(open_fail(f, UARTA), -EINVAL);
	assert_err(f, "cannot share a VM");
	struct mock_vfio_group_state gs;
	assert_int_equal(mock_vfio_group_state(f->m, 12, &gs), 0);
	assert_false(gs.open);
	assert_int_equal(open_fail(f, PL061), -EINVAL);
	assert_err(f, "9030000.pl061 is passed through more than once");
	/* the same device through another sysfs path is the same device */
	assert_int_equal(open_fail(f, "/sys/devices/platform/9030000.pl061/"), -EINVAL);
	vfio_dev_close(a);
}

/* ---- sharing ---- */

static void test_shared_group_and_container(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = ram_alloc(4 * PAGE);
	assert_int_equal(
		vfio_container_map_dma(f->c, 0x40000000, ram, 4 * PAGE, f->err, sizeof(f->err)), 0);
	struct vfio_dev *a = open_ok(f, UARTA);
	struct vfio_dev *b = open_ok(f, UARTB);
	struct vfio_dev *c = open_ok(f, I2C);
	assert_ptr_equal(a->group, b->group);
	assert_ptr_not_equal(a->group, c->group);
	assert_int_equal(mock_vfio_open_fds_kind(f->m, MOCK_VFIO_FD_CONTAINER), 1);
	assert_int_equal(mock_vfio_open_fds_kind(f->m, MOCK_VFIO_FD_GROUP), 2);
	assert_int_equal(mock_vfio_open_fds_kind(f->m, MOCK_VFIO_FD_DEVICE), 3);
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_SET_IOMMU), 1);
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_GROUP_SET_CONTAINER), 2);
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_IOMMU_MAP_DMA), 1);
	assert_int_equal(mock_vfio_nr_dma(f->m), 1);
	struct mock_vfio_group_state gs;
	assert_int_equal(mock_vfio_group_state(f->m, 13, &gs), 0);
	assert_int_equal(gs.iommu, VFIO_TYPE1v2_IOMMU);
	/* closing one device of the group leaves the other working */
	vfio_dev_close(a);
	int t = efd(f), u = efd(f);
	assert_int_equal(vfio_dev_irq_enable(b, 0, t, u, f->err, sizeof(f->err)), 0);
	assert_int_equal(mock_vfio_irq_raise(f->m, "3110000.serial", 0), 0);
	assert_int_equal(drain(t), 1);
	vfio_dev_close(b);
	vfio_dev_close(c);
	sys_close(&f->s, t);
	sys_close(&f->s, u);
	vfio_container_free(f->c);
	f->c = NULL;
	munmap(ram, 4 * PAGE);
}

/* ---- IRQs ---- */

static void test_irq_level_resample(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *d = open_ok(f, PL061);
	int t = efd(f), u = efd(f);
	mock_vfio_clear_calls(f->m);
	assert_int_equal(vfio_dev_irq_enable(d, 0, t, u, f->err, sizeof(f->err)), 0);
	/* unmask eventfd, then trigger, then an explicit unmask */
	struct mock_vfio_call c0, c1, c2;
	assert_int_equal(mock_vfio_nr_calls(f->m), 3);
	assert_int_equal(mock_vfio_call_at(f->m, 0, &c0), 0);
	assert_int_equal(mock_vfio_call_at(f->m, 1, &c1), 0);
	assert_int_equal(mock_vfio_call_at(f->m, 2, &c2), 0);
	assert_int_equal(c0.flags, SET_E | ACT_U);
	assert_int_equal(c0.data_fd, u);
	assert_int_equal(c1.flags, SET_E | ACT_T);
	assert_int_equal(c1.data_fd, t);
	assert_int_equal(c2.flags, SET_N | ACT_U);
	assert_int_equal(c2.start, 0);
	assert_int_equal(c2.count, 1);
	struct vfio_irq *q = &d->irqs[0];
	assert_true(q->enabled);
	assert_int_equal(q->trigger_fd, t);
	assert_int_equal(q->unmask_fd, u);

	/* fire: trigger signalled, line masked until the resample */
	assert_int_equal(mock_vfio_irq_raise(f->m, "9030000.pl061", 0), 0);
	assert_int_equal(drain(t), 1);
	assert_true(irq_state(f, "9030000.pl061", 0).masked);
	assert_int_equal(mock_vfio_irq_raise(f->m, "9030000.pl061", 0), 0);
	assert_int_equal(drain(t), 0);
	/* the guest clears the device, EOIs; KVM signals the resamplefd */
	assert_int_equal(mock_vfio_irq_lower(f->m, "9030000.pl061", 0), 0);
	signal_fd(u);
	struct mock_vfio_irq_state st = irq_state(f, "9030000.pl061", 0);
	assert_false(st.masked);
	assert_int_equal(st.signals, 1);
	/* the next interrupt goes through */
	assert_int_equal(mock_vfio_irq_raise(f->m, "9030000.pl061", 0), 0);
	assert_int_equal(drain(t), 1);
	/* disable unregisters both eventfds; idempotent */
	assert_int_equal(vfio_dev_irq_disable(d, 0), 0);
	assert_int_equal(vfio_dev_irq_disable(d, 0), 0);
	st = irq_state(f, "9030000.pl061", 0);
	assert_false(st.trigger_set);
	assert_false(st.unmask_set);
	assert_false(q->enabled);
	assert_int_equal(q->trigger_fd, -1);
	vfio_dev_close(d);
	sys_close(&f->s, t);
	sys_close(&f->s, u);
}

static void test_irq_edge(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *d = open_ok(f, UARTA);
	int t = efd(f), u = efd(f);
	assert_false(vfio_irq_is_level(&d->irqs[1]));
	mock_vfio_clear_calls(f->m);
	assert_int_equal(vfio_dev_irq_enable(d, 1, t, u, f->err, sizeof(f->err)), 0);
	assert_int_equal(mock_vfio_nr_calls(f->m), 1); /* just the trigger */
	assert_int_equal(d->irqs[1].unmask_fd, -1);
	assert_false(irq_state(f, "3100000.serial", 1).unmask_set);
	assert_int_equal(mock_vfio_irq_raise(f->m, "3100000.serial", 1), 0);
	assert_int_equal(mock_vfio_irq_raise(f->m, "3100000.serial", 1), 0);
	assert_int_equal(drain(t), 2);
	/* edge irqs are not maskable: no unmask at reset */
	assert_int_equal(vfio_dev_irq_unmask(d, 1), -EINVAL);
	mock_vfio_clear_calls(f->m);
	assert_int_equal(vfio_dev_reset(d), 0);
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_DEVICE_SET_IRQS), 0);
	vfio_dev_close(d);
	assert_false(irq_state(f, "3100000.serial", 1).trigger_set);
	sys_close(&f->s, t);
	sys_close(&f->s, u);
}

/* A level IRQ left masked by a boot whose guest never EOIed it is unmasked for the next. */
static void test_irq_early_fire_not_stuck(void **state)
{
	struct fx *f = *state;
	const char *dev = "3100000.serial";
	struct vfio_dev *d = open_ok(f, UARTA);

	/* boot 1: the device fires before the guest driver exists; nobody EOIs */
	int t = efd(f), u = efd(f);
	assert_int_equal(vfio_dev_reset(d), 0);
	assert_int_equal(vfio_dev_irq_enable(d, 0, t, u, f->err, sizeof(f->err)), 0);
	assert_int_equal(mock_vfio_irq_raise(f->m, dev, 0), 0);
	assert_int_equal(drain(t), 1);
	assert_true(irq_state(f, dev, 0).masked);
	/* VM start/stop re-arms an enabled level irq (the new vGIC never saw it) */
	assert_int_equal(mock_vfio_irq_lower(f->m, dev, 0), 0);
	assert_int_equal(vfio_dev_reset(d), 0);
	assert_false(irq_state(f, dev, 0).masked);
	assert_int_equal(mock_vfio_irq_raise(f->m, dev, 0), 0);
	assert_int_equal(drain(t), 1);
	assert_true(irq_state(f, dev, 0).masked);
	/* stop: disable, reset (the kernel keeps the mask across both) */
	assert_int_equal(vfio_dev_irq_disable(d, 0), 0);
	assert_int_equal(vfio_dev_reset(d), 0);
	struct mock_vfio_irq_state st = irq_state(f, dev, 0);
	assert_true(st.masked);
	assert_false(st.line);
	sys_close(&f->s, t);
	sys_close(&f->s, u);

	/* boot 2: fresh eventfds; enabling unmasks, so the next interrupt arrives */
	t = efd(f);
	u = efd(f);
	assert_int_equal(vfio_dev_irq_enable(d, 0, t, u, f->err, sizeof(f->err)), 0);
	assert_false(irq_state(f, dev, 0).masked);
	assert_int_equal(drain(t), 0);
	assert_int_equal(mock_vfio_irq_raise(f->m, dev, 0), 0);
	assert_int_equal(drain(t), 1);
	vfio_dev_close(d);
	sys_close(&f->s, t);
	sys_close(&f->s, u);
}

/* Without device reset (QEMU virt's pl061) a line still asserted at the next enable fires
 * at once into the new VM: the interrupt is not lost either. */
static void test_irq_asserted_line_refires_on_enable(void **state)
{
	struct fx *f = *state;
	const char *dev = "9030000.pl061";
	struct vfio_dev *d = open_ok(f, PL061);
	int t = efd(f), u = efd(f);
	assert_int_equal(vfio_dev_irq_enable(d, 0, t, u, f->err, sizeof(f->err)), 0);
	assert_int_equal(mock_vfio_irq_raise(f->m, dev, 0), 0);
	assert_int_equal(drain(t), 1);
	assert_int_equal(vfio_dev_irq_disable(d, 0), 0);
	assert_int_equal(vfio_dev_reset(d), 0); /* no reset support: line stays up */
	assert_true(irq_state(f, dev, 0).masked);
	assert_int_equal(vfio_dev_irq_enable(d, 0, t, u, f->err, sizeof(f->err)), 0);
	assert_int_equal(drain(t), 1);
	assert_true(irq_state(f, dev, 0).masked); /* waiting for this guest's EOI */
	vfio_dev_close(d);
	sys_close(&f->s, t);
	sys_close(&f->s, u);
}

static void test_irq_enable_errors(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *d = open_ok(f, ODD);
	int t = efd(f);
	assert_int_equal(vfio_dev_irq_enable(d, 3, t, -1, f->err, sizeof(f->err)), -EINVAL);
	assert_err(f, "9050000.odd has no IRQ 3");
	assert_int_equal(vfio_dev_irq_enable(d, 0, t, -1, f->err, sizeof(f->err)), -EINVAL);
	assert_err(f, "cannot signal an eventfd");
	assert_int_equal(vfio_dev_irq_enable(d, 1, t, -1, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(vfio_dev_irq_enable(d, 2, t, -1, f->err, sizeof(f->err)), -EINVAL);
	assert_err(f, "cannot be unmasked");
	assert_int_equal(vfio_dev_irq_disable(d, 3), -EINVAL);
	assert_int_equal(vfio_dev_irq_disable(d, 0), 0);
	assert_int_equal(vfio_dev_irq_unmask(d, 2), -EINVAL);
	assert_int_equal(vfio_dev_irq_unmask(d, 9), -EINVAL);
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_DEVICE_SET_IRQS), 0);
	vfio_dev_close(d);

	d = open_ok(f, PL061);
	assert_int_equal(vfio_dev_irq_enable(d, 0, -1, -1, f->err, sizeof(f->err)), -EINVAL);
	assert_err(f, "needs a trigger eventfd");
	/* a kernel refusal of the eventfd */
	assert_int_equal(vfio_dev_irq_enable(d, 0, d->fd, -1, f->err, sizeof(f->err)), -EINVAL);
	assert_err(f, "cannot route IRQ 0 of 9030000.pl061");
	assert_false(d->irqs[0].enabled);
	/* level without an unmask eventfd: enabled, the caller unmasks */
	assert_int_equal(vfio_dev_irq_enable(d, 0, t, -1, f->err, sizeof(f->err)), 0);
	assert_false(irq_state(f, "9030000.pl061", 0).unmask_set);
	assert_int_equal(mock_vfio_irq_raise(f->m, "9030000.pl061", 0), 0);
	assert_int_equal(mock_vfio_irq_lower(f->m, "9030000.pl061", 0), 0);
	assert_true(irq_state(f, "9030000.pl061", 0).masked);
	assert_int_equal(vfio_dev_irq_unmask(d, 0), 0);
	assert_false(irq_state(f, "9030000.pl061", 0).masked);
	vfio_dev_close(d);
	sys_close(&f->s, t);
}

static void test_irq_setup_failures(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *d = open_ok(f, PL061);
	int t = efd(f), u = efd(f);
	const char *msgs[] = { "cannot register the unmask eventfd", "cannot route IRQ 0",
			       "cannot unmask IRQ 0" };
	for (unsigned int n = 1; n <= 3; n++) {
		assert_int_equal(mock_vfio_fail_nth(f->m, VFIO_DEVICE_SET_IRQS, n, -EIO), 0);
		assert_int_equal(vfio_dev_irq_enable(d, 0, t, u, f->err, sizeof(f->err)), -EIO);
		assert_err(f, msgs[n - 1]);
		struct mock_vfio_irq_state st = irq_state(f, "9030000.pl061", 0);
		assert_false(st.trigger_set);
		assert_false(st.unmask_set);
		assert_false(d->irqs[0].enabled);
		assert_int_equal(d->irqs[0].trigger_fd, -1);
	}
	/* re-enabling replaces the eventfds */
	int t2 = efd(f), u2 = efd(f);
	assert_int_equal(vfio_dev_irq_enable(d, 0, t, u, f->err, sizeof(f->err)), 0);
	assert_int_equal(vfio_dev_irq_enable(d, 0, t2, u2, f->err, sizeof(f->err)), 0);
	struct mock_vfio_irq_state st = irq_state(f, "9030000.pl061", 0);
	assert_int_equal(st.trigger_fd, t2);
	assert_int_equal(st.unmask_fd, u2);
	/* a failing disable still marks the irq disabled and reports */
	assert_int_equal(mock_vfio_fail_next(f->m, VFIO_DEVICE_SET_IRQS, -EIO), 0);
	assert_int_equal(vfio_dev_irq_disable(d, 0), -EIO);
	assert_false(d->irqs[0].enabled);
	assert_log(f, "cannot disable IRQ 0 of 9030000.pl061");
	vfio_dev_close(d);
	sys_close(&f->s, t);
	sys_close(&f->s, u);
	sys_close(&f->s, t2);
	sys_close(&f->s, u2);
}

/* ---- reset and teardown ---- */

static void test_reset(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *a = open_ok(f, UARTA);
	struct mock_vfio_dev_state ds;
	assert_int_equal(vfio_dev_reset(a), 0);
	assert_int_equal(mock_vfio_dev_state(f->m, "3100000.serial", &ds), 0);
	assert_int_equal(ds.resets, 1);
	/* kernel failure: reported, logged, irqs still re-armed */
	int t = efd(f), u = efd(f);
	assert_int_equal(vfio_dev_irq_enable(a, 0, t, u, f->err, sizeof(f->err)), 0);
	assert_int_equal(mock_vfio_irq_raise(f->m, "3100000.serial", 0), 0);
	assert_true(irq_state(f, "3100000.serial", 0).masked);
	assert_int_equal(mock_vfio_fail_next(f->m, VFIO_DEVICE_RESET, -EIO), 0);
	assert_int_equal(vfio_dev_reset(a), -EIO);
	assert_log(f, "VFIO_DEVICE_RESET of 3100000.serial failed");
	/* the line is still up: the unmask re-fires it */
	assert_int_equal(drain(t), 2);
	/* an unmask failure at reset is returned */
	assert_int_equal(mock_vfio_fail_next(f->m, VFIO_DEVICE_SET_IRQS, -EIO), 0);
	assert_int_equal(vfio_dev_reset(a), -EIO);
	assert_log(f, "cannot unmask IRQ 0 of 3100000.serial");
	vfio_dev_close(a);
	sys_close(&f->s, t);
	sys_close(&f->s, u);

	/* no reset support: 0, said once, no ioctl */
	vfio_container_free(f->c);
	f->c = vfio_container_new(&f->s, &f->cap.log, f->root);
	struct vfio_dev *n = open_ok(f, PL061);
	assert_int_equal(vfio_dev_reset(n), 0);
	assert_int_equal(vfio_dev_reset(n), 0);
	assert_int_equal(log_count(f, "9030000.pl061 does not support reset"), 1);
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_DEVICE_RESET), 3);
	vfio_dev_close(n);
}

static void test_teardown(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = ram_alloc(4 * PAGE);
	struct vfio_dev *d = open_ok(f, UARTA);
	int t0 = efd(f), u0 = efd(f), t1 = efd(f);
	assert_int_equal(
		vfio_container_map_dma(f->c, 0x40000000, ram, 4 * PAGE, f->err, sizeof(f->err)), 0);
	assert_int_equal(vfio_dev_irq_enable(d, 0, t0, u0, f->err, sizeof(f->err)), 0);
	assert_int_equal(vfio_dev_irq_enable(d, 1, t1, -1, f->err, sizeof(f->err)), 0);
	assert_int_equal(mock_vfio_live_mappings(f->m), 1);
	/* close: irqs unregistered before the fd goes, mapping gone */
	mock_vfio_clear_calls(f->m);
	vfio_dev_close(d);
	assert_int_equal(mock_vfio_count_set_irqs(f->m, 0, SET_E | ACT_T), 1);
	assert_int_equal(mock_vfio_count_set_irqs(f->m, 0, SET_E | ACT_U), 1);
	assert_int_equal(mock_vfio_count_set_irqs(f->m, 1, SET_E | ACT_T), 1);
	assert_int_equal(mock_vfio_live_mappings(f->m), 0);
	assert_int_equal(mock_vfio_open_fds_kind(f->m, MOCK_VFIO_FD_DEVICE), 0);
	assert_int_equal(mock_vfio_nr_dma(f->m), 1);
	/* container: DMA unmapped, groups and container closed */
	vfio_container_free(f->c);
	f->c = NULL;
	assert_int_equal(mock_vfio_count_calls(f->m, VFIO_IOMMU_UNMAP_DMA), 1);
	assert_int_equal(mock_vfio_open_fds(f->m), 3); /* only the test's eventfds */
	assert_int_equal(mock_vfio_nr_containers(f->m), 0);
	sys_close(&f->s, t0);
	sys_close(&f->s, u0);
	sys_close(&f->s, t1);
	munmap(ram, 4 * PAGE);
	vfio_container_free(NULL);
	vfio_dev_close(NULL);
}

static void test_container_free_closes_devices(void **state)
{
	struct fx *f = *state;
	struct vfio_dev *a = open_ok(f, PL061);
	struct vfio_dev *b = open_ok(f, FWCFG);
	int t = efd(f), u = efd(f);
	assert_int_equal(vfio_dev_irq_enable(a, 0, t, u, f->err, sizeof(f->err)), 0);
	(void)b;
	vfio_container_free(f->c);
	f->c = NULL;
	assert_log(f, "9030000.pl061 still open at container teardown");
	assert_log(f, "9020000.fw-cfg still open at container teardown");
	assert_int_equal(mock_vfio_open_fds(f->m), 2);
	assert_false(irq_state(f, "9030000.pl061", 0).trigger_set);
	sys_close(&f->s, t);
	sys_close(&f->s, u);
}

/* ---- sysfs details ---- */

static void test_sysfs_resolve(void **state)
{
	(void)state;
	char *s;
	s = vfio_sysfs_resolve(NULL, "/sys/bus/x");
	assert_string_equal(s, "/sys/bus/x");
	free(s);
	s = vfio_sysfs_resolve("/sys", "/sys/bus/x");
	assert_string_equal(s, "/sys/bus/x");
	free(s);
	s = vfio_sysfs_resolve("/tmp/r", "/sys/bus/x");
	assert_string_equal(s, "/tmp/r/bus/x");
	free(s);
	s = vfio_sysfs_resolve("/tmp/r", "/sys");
	assert_string_equal(s, "/tmp/r");
	free(s);
	s = vfio_sysfs_resolve("/tmp/r", "/sysfoo/x");
	assert_string_equal(s, "/sysfoo/x");
	free(s);
	s = vfio_sysfs_resolve("/tmp/r", "/other/dev");
	assert_string_equal(s, "/other/dev");
	free(s);
}

static void test_paths_and_noiommu_detection(void **state)
{
	struct fx *f = *state;
	/* an absolute path outside /sys is used as given; trailing slashes are fine */
	char p[PATH_MAX];
	fpath(f, p, "bus/platform/devices/9020000.fw-cfg/");
	struct vfio_dev *d = open_ok(f, p);
	assert_string_equal(d->name, "9020000.fw-cfg");
	vfio_dev_close(d);
	vfio_container_free(f->c);
	f->c = vfio_container_new(&f->s, &f->cap.log, f->root);

	/* group link "40" without a name file, only /dev/vfio/noiommu-40 exists */
	assert_int_equal(mock_vfio_add_group(f->m, 40, true), 0);
	assert_int_equal(mock_vfio_add_device(f->m, 40, "9100000.gpio", VFIO_DEVICE_FLAGS_AMBA), 0);
	sysfs_dev(f, "amba", "9100000.gpio", "vfio-amba", "40", false);
	mock_vfio_clear_calls(f->m);
	d = open_ok(f, "/sys/bus/amba/devices/9100000.gpio");
	assert_int_equal(vfio_container_mode(f->c), VFIO_MODE_NOIOMMU);
	struct mock_vfio_call c0, c1;
	assert_int_equal(mock_vfio_call_at(f->m, 0, &c0), 0);
	assert_int_equal(mock_vfio_call_at(f->m, 1, &c1), 0);
	assert_string_equal(c0.path, "/dev/vfio/40");
	assert_int_equal(c0.result, -ENOENT);
	assert_string_equal(c1.path, "/dev/vfio/noiommu-40");
	assert_true(d->of_node != NULL);
	vfio_dev_close(d);

	/* group link named "noiommu-41" */
	assert_int_equal(mock_vfio_add_group(f->m, 41, true), 0);
	assert_int_equal(mock_vfio_add_device(f->m, 41, "9110000.gpio", VFIO_DEVICE_FLAGS_AMBA), 0);
	sysfs_dev(f, "amba", "9110000.gpio", "vfio-amba", "noiommu-41", false);
	mock_vfio_clear_calls(f->m);
	d = open_ok(f, "/sys/bus/amba/devices/9110000.gpio");
	assert_int_equal(mock_vfio_call_at(f->m, 0, &c0), 0);
	assert_string_equal(c0.path, "/dev/vfio/noiommu-41");
	vfio_dev_close(d);

	/* no of_node: NULL */
	fpath(f, p, "devices/platform/9110000.gpio/of_node");
	assert_int_equal(unlink(p), 0);
	vfio_container_free(f->c);
	f->c = vfio_container_new(&f->s, &f->cap.log, f->root);
	d = open_ok(f, "/sys/bus/amba/devices/9110000.gpio");
	assert_null(d->of_node);
	vfio_dev_close(d);
}

/* ---- the machine's view: chained behind mock KVM with a resample irqfd ---- */

static void test_with_mock_kvm(void **state)
{
	struct fx *f = *state;
	struct mock_kvm *k = mock_kvm_new();
	assert_non_null(k);
	mock_kvm_set_quiet(k, true);
	mock_kvm_set_fallback(k, &f->s);
	struct sys s = mock_kvm_sys(k);
	vfio_container_free(f->c);
	f->c = vfio_container_new(&s, &f->cap.log, f->root);

	int kvm = sys_open(&s, "/dev/kvm", O_RDWR);
	int vm = sys_ioctl(&s, kvm, KVM_CREATE_VM, 0);
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	assert_int_equal(sys_ioctl_ptr(&s, vm, KVM_CREATE_DEVICE, &cd), 0);
	uint64_t dist = 0x08000000, redist = 0x080a0000;
	struct kvm_device_attr a = { .group = A64_KVM_DEV_ARM_VGIC_GRP_ADDR,
				     .attr = A64_KVM_VGIC_V3_ADDR_TYPE_DIST,
				     .addr = (uint64_t)(uintptr_t)&dist };
	assert_int_equal(sys_ioctl_ptr(&s, (int)cd.fd, KVM_SET_DEVICE_ATTR, &a), 0);
	a.attr = A64_KVM_VGIC_V3_ADDR_TYPE_REDIST;
	a.addr = (uint64_t)(uintptr_t)&redist;
	assert_int_equal(sys_ioctl_ptr(&s, (int)cd.fd, KVM_SET_DEVICE_ATTR, &a), 0);
	struct kvm_device_attr init = { .group = A64_KVM_DEV_ARM_VGIC_GRP_CTRL,
					.attr = A64_KVM_DEV_ARM_VGIC_CTRL_INIT };
	assert_int_equal(sys_ioctl_ptr(&s, (int)cd.fd, KVM_SET_DEVICE_ATTR, &init), 0);

	struct vfio_dev *d = open_ok(f, PL061);
	assert_non_null(d->regions[0].map);
	int t = sys_eventfd(&s, 0, EFD_NONBLOCK), r = sys_eventfd(&s, 0, EFD_NONBLOCK);
	struct kvm_irqfd irqfd = { .fd = (uint32_t)t,
				   .gsi = 3,
				   .flags = KVM_IRQFD_FLAG_RESAMPLE,
				   .resamplefd = (uint32_t)r };
	assert_int_equal(sys_ioctl_ptr(&s, vm, KVM_IRQFD, &irqfd), 0);
	assert_int_equal(vfio_dev_reset(d), 0);
	assert_int_equal(vfio_dev_irq_enable(d, 0, t, r, f->err, sizeof(f->err)), 0);

	for (int round = 0; round < 3; round++) {
		assert_int_equal(mock_vfio_irq_raise(f->m, "9030000.pl061", 0), 0);
		assert_int_equal(mock_kvm_irqfd_poll(k), 1);
		assert_int_equal(mock_kvm_irq_level(k, 35), 1);
		assert_true(irq_state(f, "9030000.pl061", 0).masked);
		assert_int_equal(mock_vfio_irq_lower(f->m, "9030000.pl061", 0), 0);
		assert_int_equal(mock_kvm_irqfd_resample(k, 3), 0); /* guest EOI */
		assert_false(irq_state(f, "9030000.pl061", 0).masked);
		assert_int_equal(mock_kvm_irq_level(k, 35), 0);
	}

	/* the machine's teardown order */
	assert_int_equal(vfio_dev_irq_disable(d, 0), 0);
	irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
	assert_int_equal(sys_ioctl_ptr(&s, vm, KVM_IRQFD, &irqfd), 0);
	sys_close(&s, t);
	sys_close(&s, r);
	vfio_dev_close(d);
	vfio_container_free(f->c);
	f->c = NULL;
	assert_int_equal(mock_kvm_violations(k), 0);
	mock_kvm_free(k);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_open_amba_noiommu),
		T(test_open_platform_type1_dma),
		T(test_map_dma_errors),
		T(test_noiommu_map_dma_is_noop),
		T(test_dma_replay_failure),
		T(test_trapped_region),
		T(test_trapped_region_kernel_errors),
		T(test_region_permissions_and_alignment),
		T(test_mmap_failure_traps),
		T(test_errors_sysfs),
		T(test_error_group_not_viable),
		T(test_error_group_node),
		T(test_error_host_support),
		T(test_error_each_ioctl),
		T(test_error_second_device_keeps_first),
		T(test_error_mixed_modes_and_twice),
		T(test_shared_group_and_container),
		T(test_irq_level_resample),
		T(test_irq_edge),
		T(test_irq_early_fire_not_stuck),
		T(test_irq_asserted_line_refires_on_enable),
		T(test_irq_enable_errors),
		T(test_irq_setup_failures),
		T(test_reset),
		T(test_teardown),
		T(test_container_free_closes_devices),
		cmocka_unit_test(test_sysfs_resolve),
		T(test_paths_and_noiommu_detection),
		T(test_with_mock_kvm),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
