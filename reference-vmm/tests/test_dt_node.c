/* Unit tests for passthrough/dt_node.c: synthetic host DTs (QEMU-virt-like and
 * Orin-like) built with libfdt, guest nodes generated and read back, placements,
 * user fragments compiled with dtc, every error path, and dtc on the results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/aarch64/fdt.h"
#include "arch/aarch64/layout.h"
#include "passthrough/dt_node.h"
#include "unit_helpers.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUILD_SIZE 0x10000
#define GUEST_SIZE A64_FDT_BUF_SIZE
#define HI(x) ((uint32_t)((uint64_t)(x) >> 32))
#define LO(x) ((uint32_t)(x))

/* host phandles */
#define PH_APB 0x8000
#define PH_GIC 0x8001
#define PH_PL061 0x8003
#define PH_BPMP 0x10
#define PH_SMMU 0x11
#define PH_PINMUX 0x12
#define PH_OGIC 0x13 /* Orin GIC */
#define PH_AGIC 0x14 /* audio GIC: not the primary one */
#define PH_REG 0x15
#define PH_GPIO 0x16

/* ---- building blobs ------------------------------------------------------------- */

static int at(const void *fdt, const char *path)
{
	int off = fdt_path_offset(fdt, path);
	if (off < 0)
		fail_msg("node %s not found: %s", path, fdt_strerror(off));
	return off;
}

static void *hb_new(void)
{
	void *f = malloc(BUILD_SIZE);
	assert_non_null(f);
	assert_int_equal(fdt_create_empty_tree(f, BUILD_SIZE), 0);
	return f;
}

static void add(void *f, const char *parent, const char *name)
{
	int r = fdt_add_subnode(f, at(f, parent), name);
	if (r < 0)
		fail_msg("add %s/%s: %s", parent, name, fdt_strerror(r));
}

static void setp(void *f, const char *path, const char *prop, const void *val, int len)
{
	int r = fdt_setprop(f, at(f, path), prop, val, len);
	if (r)
		fail_msg("setprop %s %s: %s", path, prop, fdt_strerror(r));
}

/* n big-endian cells */
static void cells(void *f, const char *path, const char *prop, int n, ...)
{
	fdt32_t v[32];
	assert_true(n <= 32);
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		v[i] = cpu_to_fdt32(va_arg(ap, uint32_t));
	va_end(ap);
	setp(f, path, prop, v, n * 4);
}

static void str(void *f, const char *path, const char *prop, const char *s)
{
	setp(f, path, prop, s, (int)strlen(s) + 1);
}

/* string list given as one literal with embedded NULs, e.g. "a\0b" (sizeof) */
#define STRS(f, path, prop, lit) setp((f), (path), (prop), (lit), (int)sizeof(lit))

static void flag(void *f, const char *path, const char *prop)
{
	setp(f, path, prop, NULL, 0);
}

static void delp(void *f, const char *path, const char *prop)
{
	assert_int_equal(fdt_delprop(f, at(f, path), prop), 0);
}

/* Pack into a heap buffer of exactly the blob's size (ASan sees any overrun). */
static void *finish(void *f, size_t *size)
{
	assert_int_equal(fdt_pack(f), 0);
	size_t n = fdt_totalsize(f);
	void *b = malloc(n);
	assert_non_null(b);
	memcpy(b, f, n);
	free(f);
	if (size)
		*size = n;
	return b;
}

/* QEMU virt-like host tree (unpacked, for tweaking). */
static void *virt_open(void)
{
	void *f = hb_new();
	str(f, "/", "compatible", "linux,dummy-virt");
	cells(f, "/", "#address-cells", 1, 2);
	cells(f, "/", "#size-cells", 1, 2);
	cells(f, "/", "interrupt-parent", 1, PH_GIC);

	add(f, "/", "gpio-keys");
	str(f, "/gpio-keys", "compatible", "gpio-keys");
	add(f, "/gpio-keys", "poweroff");
	str(f, "/gpio-keys/poweroff", "label", "GPIO Key Poweroff");
	cells(f, "/gpio-keys/poweroff", "linux,code", 1, 116);
	cells(f, "/gpio-keys/poweroff", "gpios", 3, PH_PL061, 3, 0);

	add(f, "/", "fw-cfg@9020000");
	str(f, "/fw-cfg@9020000", "compatible", "qemu,fw-cfg-mmio");
	cells(f, "/fw-cfg@9020000", "reg", 4, 0, 0x9020000, 0, 0x18);
	flag(f, "/fw-cfg@9020000", "dma-coherent");

	add(f, "/", "pl061@9030000");
	const char *p = "/pl061@9030000";
	cells(f, p, "phandle", 1, PH_PL061);
	cells(f, p, "#gpio-cells", 1, 2);
	flag(f, p, "gpio-controller");
	STRS(f, p, "clock-names", "apb_pclk");
	cells(f, p, "clocks", 1, PH_APB);
	cells(f, p, "interrupts", 3, 0, 7, 4);
	cells(f, p, "reg", 4, 0, 0x9030000, 0, 0x1000);
	STRS(f, p, "compatible", "arm,pl061\0arm,primecell");

	add(f, "/", "apb-pclk");
	str(f, "/apb-pclk", "compatible", "fixed-clock");
	cells(f, "/apb-pclk", "#clock-cells", 1, 0);
	cells(f, "/apb-pclk", "clock-frequency", 1, 24000000);
	str(f, "/apb-pclk", "clock-output-names", "clk24mhz");
	cells(f, "/apb-pclk", "phandle", 1, PH_APB);

	add(f, "/", "intc@8000000");
	const char *g = "/intc@8000000";
	str(f, g, "compatible", "arm,gic-v3");
	flag(f, g, "interrupt-controller");
	cells(f, g, "#interrupt-cells", 1, 3);
	cells(f, g, "reg", 8, 0, 0x8000000, 0, 0x10000, 0, 0x80a0000, 0, 0xf60000);
	cells(f, g, "interrupts", 3, 1, 9, 4);
	cells(f, g, "phandle", 1, PH_GIC);
	return f;
}

static void *virt_host(size_t *size)
{
	return finish(virt_open(), size);
}

/* Orin-like host tree: 1-cell bus@0, BPMP clocks/resets/power domains, SMMU,
 * pinctrl, a nested translated bus, an audio GIC and a GPIO interrupt controller. */
static void *orin_open(void)
{
	void *f = hb_new();
	STRS(f, "/", "compatible", "nvidia,p3737-0000+p3701-0000\0nvidia,tegra234");
	cells(f, "/", "#address-cells", 1, 2);
	cells(f, "/", "#size-cells", 1, 2);
	cells(f, "/", "interrupt-parent", 1, PH_OGIC);

	add(f, "/", "regulator-vdd");
	str(f, "/regulator-vdd", "compatible", "regulator-fixed");
	cells(f, "/regulator-vdd", "phandle", 1, PH_REG);

	add(f, "/", "iommu@12000000");
	str(f, "/iommu@12000000", "compatible", "nvidia,tegra234-smmu");
	cells(f, "/iommu@12000000", "reg", 4, 0, 0x12000000, 0, 0x1000000);
	cells(f, "/iommu@12000000", "#iommu-cells", 1, 1);
	cells(f, "/iommu@12000000", "phandle", 1, PH_SMMU);

	add(f, "/", "bpmp");
	str(f, "/bpmp", "compatible", "nvidia,tegra234-bpmp");
	cells(f, "/bpmp", "#clock-cells", 1, 1);
	cells(f, "/bpmp", "#reset-cells", 1, 1);
	cells(f, "/bpmp", "#power-domain-cells", 1, 1);
	cells(f, "/bpmp", "phandle", 1, PH_BPMP);

	add(f, "/", "bus@0");
	str(f, "/bus@0", "compatible", "simple-bus");
	cells(f, "/bus@0", "#address-cells", 1, 1);
	cells(f, "/bus@0", "#size-cells", 1, 1);
	cells(f, "/bus@0", "ranges", 4, 0x0, 0x0, 0x0, 0x40000000);

	/* nested bus: child 0 is CPU 0x20000000 (through both ranges) */
	add(f, "/bus@0", "bus@20000000");
#define NB "/bus@0/bus@20000000"
	const char *nb = NB;
	str(f, nb, "compatible", "simple-bus");
	cells(f, nb, "#address-cells", 1, 1);
	cells(f, nb, "#size-cells", 1, 1);
	cells(f, nb, "ranges", 3, 0x0, 0x20000000, 0x100000);
	add(f, nb, "uart@1000");
	str(f, NB "/uart@1000", "compatible", "ns16550a");
	cells(f, NB "/uart@1000", "reg", 2, 0x1000, 0x100);
	cells(f, NB "/uart@1000", "interrupts", 3, 0, 0x30, 4);

	add(f, "/bus@0", "gpio@2200000");
	const char *gp = "/bus@0/gpio@2200000";
	str(f, gp, "compatible", "nvidia,tegra234-gpio");
	cells(f, gp, "reg", 2, 0x2200000, 0x10000);
	cells(f, gp, "interrupts", 3, 0, 0x20, 4);
	flag(f, gp, "gpio-controller");
	cells(f, gp, "#gpio-cells", 1, 2);
	flag(f, gp, "interrupt-controller");
	cells(f, gp, "#interrupt-cells", 1, 2);
	cells(f, gp, "phandle", 1, PH_GPIO);

	add(f, "/bus@0", "agic@2a41000");
	const char *ag = "/bus@0/agic@2a41000";
	str(f, ag, "compatible", "nvidia,tegra210-agic");
	flag(f, ag, "interrupt-controller");
	cells(f, ag, "#interrupt-cells", 1, 3);
	cells(f, ag, "reg", 2, 0x2a41000, 0x1000);
	cells(f, ag, "phandle", 1, PH_AGIC);

	add(f, "/bus@0", "pinmux@2430000");
	cells(f, "/bus@0/pinmux@2430000", "reg", 2, 0x2430000, 0x19100);
	add(f, "/bus@0/pinmux@2430000", "uarti");
	cells(f, "/bus@0/pinmux@2430000/uarti", "phandle", 1, PH_PINMUX);

	add(f, "/bus@0", "serial@31d0000");
	const char *s = "/bus@0/serial@31d0000";
	str(f, s, "status", "okay");
	cells(f, s, "vdd-supply", 1, PH_REG);
	cells(f, s, "nvidia,adjust-baud-rates", 3, 0, 9600, 100);
	cells(f, s, "pinctrl-0", 1, PH_PINMUX);
	STRS(f, s, "pinctrl-names", "default");
	cells(f, s, "iommus", 2, PH_SMMU, 0x4);
	cells(f, s, "power-domains", 2, PH_BPMP, 3);
	STRS(f, s, "reset-names", "serial");
	cells(f, s, "resets", 2, PH_BPMP, 100);
	STRS(f, s, "clock-names", "serial\0parent");
	cells(f, s, "clocks", 4, PH_BPMP, 155, PH_BPMP, 156);
	cells(f, s, "interrupts", 3, 0, 0x75, 4);
	cells(f, s, "reg-shift", 1, 2);
	cells(f, s, "reg", 2, 0x31d0000, 0x10000);
	str(f, s, "compatible", "nvidia,tegra194-hsuart");

	add(f, "/bus@0", "interrupt-controller@f400000");
	const char *g = "/bus@0/interrupt-controller@f400000";
	str(f, g, "compatible", "arm,gic-v3");
	flag(f, g, "interrupt-controller");
	cells(f, g, "#interrupt-cells", 1, 3);
	cells(f, g, "reg", 4, 0xf400000, 0x10000, 0xf440000, 0x200000);
	cells(f, g, "phandle", 1, PH_OGIC);
	return f;
}

static void *orin_host(size_t *size)
{
	return finish(orin_open(), size);
}

#define ORIN_UART "/bus@0/serial@31d0000"

static void *guest_new(void)
{
	struct a64_fdt_params p = {
		.nr_vcpus = 1,
		.ram_base = A64_RAM_BASE,
		.ram_size = 256ULL << 20,
		.cmdline = "console=ttyAMA0",
	};
	void *g = malloc(GUEST_SIZE);
	assert_non_null(g);
	assert_int_equal(a64_fdt_build(g, GUEST_SIZE, &p), 0);
	return g;
}

/* ---- reading back ---------------------------------------------------------------- */

static const void *getp(const void *fdt, const char *path, const char *name, int *len)
{
	const void *v = fdt_getprop(fdt, at(fdt, path), name, len);
	if (!v)
		fail_msg("property %s missing in %s", name, path);
	return v;
}

static void assert_cells(const void *fdt, const char *path, const char *name, int n, ...)
{
	int len;
	const fdt32_t *v = getp(fdt, path, name, &len);
	if (len != n * 4)
		fail_msg("%s %s: %d bytes, want %d", path, name, len, n * 4);
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		uint32_t want = va_arg(ap, uint32_t);
		if (fdt32_to_cpu(v[i]) != want)
			fail_msg("%s %s cell %d: 0x%x, want 0x%x", path, name, i,
				 fdt32_to_cpu(v[i]), want);
	}
	va_end(ap);
}

static void assert_bytes(const void *fdt, const char *path, const char *name, const void *want,
			 int wlen)
{
	int len;
	const void *v = getp(fdt, path, name, &len);
	if (len != wlen || (wlen && memcmp(v, want, (size_t)wlen)))
		fail_msg("%s %s: differs (len %d, want %d)", path, name, len, wlen);
}
#define ASSERT_STRS(fdt, path, prop, lit) assert_bytes((fdt), (path), (prop), (lit), (int)sizeof(lit))

static void assert_flag(const void *fdt, const char *path, const char *name)
{
	int len;
	getp(fdt, path, name, &len);
	assert_int_equal(len, 0);
}

static void assert_absent(const void *fdt, const char *path, const char *name)
{
	if (fdt_getprop(fdt, at(fdt, path), name, NULL))
		fail_msg("%s has property %s, which should have been dropped", path, name);
}

static int nprops(const void *fdt, const char *path)
{
	int n = 0, p;
	fdt_for_each_property_offset(p, fdt, at(fdt, path)) n++;
	return n;
}

static bool has_note(const struct dt_node_diag *d, enum dt_node_note_level lvl, const char *sub)
{
	for (unsigned int i = 0; i < d->nr_notes; i++)
		if (d->notes[i].level == lvl && strstr(d->notes[i].text, sub))
			return true;
	return false;
}

#define ASSERT_NOTE(d, lvl, sub)                                                         \
	do {                                                                             \
		if (!has_note((d), (lvl), (sub)))                                        \
			fail_msg("no %s note containing \"%s\"",                        \
				 (lvl) == DT_NODE_NOTE_WARN ? "WARN" : "DEBUG", (sub));  \
	} while (0)

/* The call failed with err and an error sentence containing sub. */
#define ASSERT_ERR(call, d, err, sub)                                                    \
	do {                                                                             \
		int r_ = (call);                                                         \
		if (r_ != (err))                                                         \
			fail_msg("%s returned %d, want %d (error: \"%s\", expected one " \
				 "with \"%s\")",                                         \
				 #call, r_, (err), (d)->error, (sub));                   \
		if (!strstr((d)->error, (sub)))                                          \
			fail_msg("error \"%s\" does not mention \"%s\"", (d)->error, (sub)); \
		size_t l_ = strlen((d)->error);                                          \
		assert_true(l_ > 0 && (d)->error[l_ - 1] == '.');                        \
	} while (0)

static int run_cmd(const char *cmd, const char *what)
{
	char errpath[] = "/tmp/test_dt_node_err_XXXXXX";
	int fd = mkstemp(errpath);
	assert_true(fd >= 0);
	close(fd);
	char full[1024];
	snprintf(full, sizeof(full), "%s 2>%s", cmd, errpath);
	int st = system(full);
	char msg[4096] = "";
	FILE *f = fopen(errpath, "r");
	if (f) {
		size_t n = fread(msg, 1, sizeof(msg) - 1, f);
		msg[n] = '\0';
		fclose(f);
	}
	unlink(errpath);
	if (msg[0] && what)
		print_message("dtc (%s) said:\n%s", what, msg);
	return st;
}

static void require_dtc(void)
{
	if (system("command -v dtc >/dev/null 2>&1") != 0)
		fail_msg("dtc not found on PATH: install the device-tree-compiler package "
			 "(ci/install-deps.sh does it); this test does not skip");
}

/* dtc must decompile the blob without error. */
static void assert_dtc_ok(const void *fdt, const char *what)
{
	require_dtc();
	char path[] = "/tmp/test_dt_node_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	uint32_t n = fdt_totalsize(fdt);
	assert_int_equal(write(fd, fdt, n), (ssize_t)n);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts -o /dev/null %s", path);
	int st = run_cmd(cmd, what);
	unlink(path);
	assert_int_equal(st, 0);
}

/* Compile .dts source with dtc into an exactly-sized heap blob. */
static void *compile_dts_opt(const char *src, size_t *size, bool force)
{
	require_dtc();
	char in[] = "/tmp/test_dt_node_dts_XXXXXX";
	char out[] = "/tmp/test_dt_node_dtb_XXXXXX";
	int fd = mkstemp(in);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
	close(fd);
	fd = mkstemp(out);
	assert_true(fd >= 0);
	close(fd);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "dtc -q %s -I dts -O dtb -o %s %s", force ? "-f" : "", out, in);
	/* forced compiles are of fragments broken on purpose: dtc's complaints are expected */
	assert_int_equal(run_cmd(cmd, force ? NULL : "compile"), 0);
	FILE *f = fopen(out, "rb");
	assert_non_null(f);
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	unlink(in);
	unlink(out);
	assert_true(n > 0 && n < sizeof(buf));
	void *b = malloc(n);
	assert_non_null(b);
	memcpy(b, buf, n);
	*size = n;
	return b;
}

static void *compile_dts(const char *src, size_t *size)
{
	return compile_dts_opt(src, size, false);
}

/* ---- sysfs link → path ----------------------------------------------------------------- */

static void test_path_from_link(void **state)
{
	(void)state;
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	char p[64];
	assert_int_equal(dt_node_path_from_link("../../../firmware/devicetree/base/pl061@9030000",
						p, sizeof(p), &d),
			 0);
	assert_string_equal(p, "/pl061@9030000");
	assert_int_equal(dt_node_path_from_link(
				 "../../../../firmware/devicetree/base/bus@0/serial@31d0000", p,
				 sizeof(p), &d),
			 0);
	assert_string_equal(p, "/bus@0/serial@31d0000");
	assert_int_equal(dt_node_path_from_link("/sys/firmware/devicetree/base//soc//x@1/", p,
						sizeof(p), &d),
			 0);
	assert_string_equal(p, "/soc/x@1");
	assert_int_equal(dt_node_path_from_link("../firmware/devicetree/base", p, sizeof(p), &d), 0);
	assert_string_equal(p, "/");
	assert_int_equal(dt_node_path_from_link("../firmware/devicetree/base/", p, 2, &d), 0);
	assert_string_equal(p, "/");
	/* exactly fits: "/ab" + NUL = 4 */
	assert_int_equal(dt_node_path_from_link("firmware/devicetree/base/ab", p, 4, &d), 0);
	assert_string_equal(p, "/ab");
	assert_string_equal(d.error, "");

	ASSERT_ERR(dt_node_path_from_link("firmware/devicetree/base/abc", p, 4, &d), &d,
		   -ENAMETOOLONG, "longer than 4 bytes");
	ASSERT_ERR(dt_node_path_from_link("../../devices/platform/foo", p, sizeof(p), &d), &d,
		   -EINVAL, "does not point into");
	ASSERT_ERR(dt_node_path_from_link("../firmware/devicetree/baseX/a", p, sizeof(p), &d), &d,
		   -EINVAL, "does not point into");
	ASSERT_ERR(dt_node_path_from_link("../xfirmware/devicetree/base/a", p, sizeof(p), &d), &d,
		   -EINVAL, "does not point into");
	ASSERT_ERR(dt_node_path_from_link("../firmware/devicetree/base/a/../b", p, sizeof(p), &d),
		   &d, -EINVAL, "\"..\"");
	ASSERT_ERR(dt_node_path_from_link("../firmware/devicetree/base/./b", p, sizeof(p), &d), &d,
		   -EINVAL, "\".\"");
	ASSERT_ERR(dt_node_path_from_link(NULL, p, sizeof(p), &d), &d, -EINVAL, "missing");
	ASSERT_ERR(dt_node_path_from_link("firmware/devicetree/base", p, 0, &d), &d, -EINVAL,
		   "missing");
	ASSERT_ERR(dt_node_path_from_link("firmware/devicetree/base", p, 1, &d), &d,
		   -ENAMETOOLONG, "\"/\"");
	/* NULL diag is fine */
	assert_int_equal(dt_node_path_from_link("nothing", p, sizeof(p), NULL), -EINVAL);
}

static void test_path_from_sysfs(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_dt_node_sysfs_XXXXXX";
	assert_non_null(mkdtemp(dir));
	char dev[128], link[160];
	snprintf(dev, sizeof(dev), "%s/9030000.pl061", dir);
	assert_int_equal(mkdir(dev, 0700), 0);
	snprintf(link, sizeof(link), "%s/of_node", dev);
	/* dangling on purpose: only the link text matters */
	assert_int_equal(symlink("../../../firmware/devicetree/base/pl061@9030000", link), 0);

	struct dt_node_diag d;
	dt_node_diag_init(&d);
	char p[64];
	assert_int_equal(dt_node_path_from_sysfs(dev, p, sizeof(p), &d), 0);
	assert_string_equal(p, "/pl061@9030000");

	ASSERT_ERR(dt_node_path_from_sysfs(dir, p, sizeof(p), &d), &d, -ENOENT, "of_node");
	ASSERT_ERR(dt_node_path_from_sysfs(NULL, p, sizeof(p), &d), &d, -EINVAL, "missing");

	unlink(link);
	rmdir(dev);
	rmdir(dir);
}

/* ---- host parsing ------------------------------------------------------------------------ */

static void test_parse_virt(void **state)
{
	(void)state;
	size_t n;
	void *h = virt_host(&n);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;

	assert_int_equal(dt_node_parse_host(h, n, "/pl061@9030000", &hn, &d), 0);
	assert_string_equal(hn.name, "pl061@9030000");
	assert_int_equal(hn.nr_regs, 1);
	assert_int_equal(hn.regs[0].addr, 0x9030000);
	assert_int_equal(hn.regs[0].size, 0x1000);
	assert_int_equal(hn.nr_irqs, 1);
	assert_int_equal(hn.irqs[0].spi, 7);
	assert_int_equal(hn.irqs[0].flags, 4);
	assert_int_equal(hn.irqs[0].trigger, DT_NODE_IRQ_LEVEL_HIGH);
	assert_int_equal(hn.nr_clocks, 1);
	assert_int_equal(hn.clock_hz, 24000000);

	assert_int_equal(dt_node_parse_host(h, n, "/fw-cfg@9020000", &hn, &d), 0);
	assert_string_equal(hn.name, "fw-cfg@9020000");
	assert_int_equal(hn.nr_regs, 1);
	assert_int_equal(hn.regs[0].addr, 0x9020000);
	assert_int_equal(hn.regs[0].size, 0x18);
	assert_int_equal(hn.nr_irqs, 0);
	assert_int_equal(hn.nr_clocks, 0);
	assert_int_equal(hn.clock_hz, 0);
	assert_int_equal(d.nr_notes, 0);
	free(h);
}

static void test_parse_orin(void **state)
{
	(void)state;
	size_t n;
	void *h = orin_host(&n);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;

	assert_int_equal(dt_node_parse_host(h, n, ORIN_UART, &hn, &d), 0);
	assert_string_equal(hn.name, "serial@31d0000");
	assert_int_equal(hn.nr_regs, 1);
	assert_int_equal(hn.regs[0].addr, 0x31d0000);
	assert_int_equal(hn.regs[0].size, 0x10000);
	assert_int_equal(hn.nr_irqs, 1);
	assert_int_equal(hn.irqs[0].spi, 0x75);
	assert_int_equal(hn.irqs[0].trigger, DT_NODE_IRQ_LEVEL_HIGH);
	assert_int_equal(hn.nr_clocks, 2);
	assert_int_equal(hn.clock_hz, 0); /* BPMP clocks have no fixed rate */

	/* two levels of ranges: child 0x1000 of a bus at 0x20000000 */
	assert_int_equal(dt_node_parse_host(h, n, "/bus@0/bus@20000000/uart@1000", &hn, &d), 0);
	assert_int_equal(hn.regs[0].addr, 0x20001000);
	assert_int_equal(hn.regs[0].size, 0x100);
	assert_int_equal(hn.irqs[0].spi, 0x30);
	free(h);
}

/* trigger flags: falling → rising, low → high, none → level (WARN), both → error */
static void test_parse_trigger_flags(void **state)
{
	(void)state;
	static const struct {
		uint32_t flags, trigger;
	} cases[] = { { 1, 1 }, { 2, 1 }, { 3, 1 }, { 4, 4 }, { 8, 4 }, { 0xff04, 4 }, { 0, 4 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *f = virt_open();
		cells(f, "/pl061@9030000", "interrupts", 6, 0, 7, cases[i].flags, 0, 8, 4);
		size_t n;
		void *h = finish(f, &n);
		struct dt_node_diag d;
		dt_node_diag_init(&d);
		struct dt_node_host hn;
		assert_int_equal(dt_node_parse_host(h, n, "/pl061@9030000", &hn, &d), 0);
		assert_int_equal(hn.nr_irqs, 2);
		assert_int_equal(hn.irqs[0].flags, cases[i].flags);
		assert_int_equal(hn.irqs[0].trigger, cases[i].trigger);
		assert_int_equal(hn.irqs[1].spi, 8);
		if (cases[i].flags == 0)
			ASSERT_NOTE(&d, DT_NODE_NOTE_WARN, "no trigger type");
		if (cases[i].flags == 2 || cases[i].flags == 8)
			ASSERT_NOTE(&d, DT_NODE_NOTE_DEBUG, "active-low/falling");
		free(h);
	}
}

static void test_parse_interrupts_extended(void **state)
{
	(void)state;
	void *f = virt_open();
	cells(f, "/fw-cfg@9020000", "interrupts-extended", 8, PH_GIC, 0, 12, 1, PH_GIC, 0, 13, 4);
	cells(f, "/fw-cfg@9020000", "interrupts", 3, 0, 99, 4); /* ignored */
	size_t n;
	void *h = finish(f, &n);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, "/fw-cfg@9020000", &hn, &d), 0);
	assert_int_equal(hn.nr_irqs, 2);
	assert_int_equal(hn.irqs[0].spi, 12);
	assert_int_equal(hn.irqs[0].trigger, DT_NODE_IRQ_EDGE_RISING);
	assert_int_equal(hn.irqs[1].spi, 13);
	ASSERT_NOTE(&d, DT_NODE_NOTE_DEBUG, "interrupts-extended takes precedence");
	free(h);
}

/* interrupt parent found through an ancestor, Linux style */
static void test_parse_inherited_interrupt_parent(void **state)
{
	(void)state;
	void *f = orin_open();
	delp(f, "/", "interrupt-parent");
	cells(f, "/bus@0", "interrupt-parent", 1, PH_OGIC);
	size_t n;
	void *h = finish(f, &n);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, ORIN_UART, &hn, &d), 0);
	assert_int_equal(hn.irqs[0].spi, 0x75);
	free(h);
}

/* an empty clocks entry (phandle 0) counts; a 64-bit provider rate is read */
static void test_parse_clock_details(void **state)
{
	(void)state;
	void *f = virt_open();
	cells(f, "/pl061@9030000", "clocks", 3, 0, PH_APB, 0);
	cells(f, "/apb-pclk", "clock-frequency", 2, 0, 12000000);
	size_t n;
	void *h = finish(f, &n);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, "/pl061@9030000", &hn, &d), 0);
	assert_int_equal(hn.nr_clocks, 3);
	assert_int_equal(hn.clock_hz, 12000000);
	free(h);
	/* a rate beyond 32 bits is not taken */
	f = virt_open();
	cells(f, "/apb-pclk", "clock-frequency", 2, 1, 0);
	h = finish(f, &n);
	assert_int_equal(dt_node_parse_host(h, n, "/pl061@9030000", &hn, &d), 0);
	assert_int_equal(hn.clock_hz, 0);
	free(h);
}

/* ---- generation ------------------------------------------------------------------------ */

static void test_generate_pl061_identity(void **state)
{
	(void)state;
	size_t n;
	void *h = virt_host(&n);
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, "/pl061@9030000", &hn, &d), 0);
	struct dt_node_map m = { .gic_phandle = 1, .clock_phandle = 2, .nr_irqs = 1 };
	m.irq_guest_spi[0] = 5;
	dt_node_map_identity(&hn, &m);
	assert_int_equal(m.nr_regs, 1);
	assert_int_equal(m.reg_guest[0], 0x9030000);

	struct dt_node_result res;
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, "/pl061@9030000", &m, &res, &d), 0);
	assert_string_equal(d.error, "");
	assert_string_equal(res.name, "pl061@9030000");
	assert_int_equal(res.clock_phandle, 2);
	assert_string_equal(res.clock_name, "");
	assert_int_equal(fdt_check_full(g, fdt_totalsize(g)), 0);
	assert_true(fdt_totalsize(g) < GUEST_SIZE); /* packed */

	const char *p = "/pl061@9030000";
	ASSERT_STRS(g, p, "compatible", "arm,pl061\0arm,primecell");
	assert_cells(g, p, "reg", 4, 0, 0x9030000, 0, 0x1000);
	assert_cells(g, p, "interrupts", 3, 0, 5, 4);
	assert_cells(g, p, "interrupt-parent", 1, 1);
	assert_cells(g, p, "clocks", 1, 2);
	ASSERT_STRS(g, p, "clock-names", "apb_pclk");
	assert_flag(g, p, "gpio-controller");
	assert_cells(g, p, "#gpio-cells", 1, 2);
	assert_absent(g, p, "phandle");
	assert_absent(g, p, "status");
	assert_int_equal(nprops(g, p), 8);
	/* the host's property order is kept */
	static const char *const order[] = { "compatible", "reg",         "interrupts",
					     "interrupt-parent", "clocks", "clock-names",
					     "gpio-controller", "#gpio-cells" };
	int i = 0, off;
	fdt_for_each_property_offset(off, g, at(g, p))
	{
		const char *pn;
		fdt_getprop_by_offset(g, off, &pn, NULL);
		assert_string_equal(pn, order[i++]);
	}
	/* the rest of the guest is intact */
	at(g, "/pl011@9000000");
	at(g, "/apb-pclk");
	assert_dtc_ok(g, "pl061 identity");
	free(g);
	free(h);
}

static void test_generate_creates_fixed_clock(void **state)
{
	(void)state;
	size_t n;
	void *h = virt_host(&n);
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, "/pl061@9030000", &hn, &d), 0);
	struct dt_node_map m = { .gic_phandle = 1, .nr_irqs = 1 };
	m.irq_guest_spi[0] = 7;
	dt_node_map_identity(&hn, &m);
	struct dt_node_result res;
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, "/pl061@9030000", &m, &res, &d), 0);
	assert_string_equal(res.clock_name, "pl061-clk-9030000");
	assert_int_equal(res.clock_phandle, 3); /* guest had 1 (GIC) and 2 (apb-pclk) */
	const char *c = "/pl061-clk-9030000";
	assert_bytes(g, c, "compatible", "fixed-clock", 12);
	assert_cells(g, c, "#clock-cells", 1, 0);
	assert_cells(g, c, "clock-frequency", 1, 24000000); /* from the host's apb-pclk */
	assert_cells(g, c, "phandle", 1, 3);
	assert_cells(g, "/pl061@9030000", "clocks", 1, 3);
	assert_false(has_note(&d, DT_NODE_NOTE_WARN, "clock rate unknown"));
	assert_dtc_ok(g, "pl061 with generated clock");
	free(g);
	free(h);
}

static void test_generate_fwcfg_window(void **state)
{
	(void)state;
	size_t n;
	void *h = virt_host(&n);
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, "/fw-cfg@9020000", &hn, &d), 0);
	struct dt_node_map m = { .gic_phandle = 1, .clock_phandle = 2 };
	assert_int_equal(dt_node_map_window(&hn, 0x0c000000, 0x200000, 0x1000, &m, &d), 0);
	assert_int_equal(m.reg_guest[0], 0x0c000000);
	struct dt_node_result res;
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, "/fw-cfg@9020000", &m, &res, &d), 0);
	assert_string_equal(res.name, "fw-cfg@c000000");
	assert_int_equal(res.clock_phandle, 0);
	const char *p = "/fw-cfg@c000000";
	assert_bytes(g, p, "compatible", "qemu,fw-cfg-mmio", 17);
	assert_cells(g, p, "reg", 4, 0, 0x0c000000, 0, 0x18);
	assert_flag(g, p, "dma-coherent");
	assert_absent(g, p, "interrupts");
	assert_absent(g, p, "interrupt-parent");
	assert_absent(g, p, "clocks");
	assert_int_equal(nprops(g, p), 3);
	assert_dtc_ok(g, "fw-cfg window");
	free(g);
	free(h);
}

static void test_map_window_placement(void **state)
{
	(void)state;
	struct dt_node_host hn = { .name = "x@1234", .nr_regs = 3 };
	hn.regs[0] = (struct dt_node_region){ 0x31d0000, 0x10000 };
	hn.regs[1] = (struct dt_node_region){ 0x2000100, 0x100 };  /* offset 0x100 in its page */
	hn.regs[2] = (struct dt_node_region){ 0x5000000, 0x1000 };
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_map m = { 0 };
	assert_int_equal(dt_node_map_window(&hn, 0x10000000, 0x100000, 0x10000, &m, &d), 0);
	assert_int_equal(m.nr_regs, 3);
	assert_int_equal(m.reg_guest[0], 0x10000000);
	assert_int_equal(m.reg_guest[1], 0x10010100);
	assert_int_equal(m.reg_guest[2], 0x10020000);
	/* 4 KiB alignment packs tighter */
	assert_int_equal(dt_node_map_window(&hn, 0x10000000, 0x100000, 0x1000, &m, &d), 0);
	assert_int_equal(m.reg_guest[1], 0x10010100);
	assert_int_equal(m.reg_guest[2], 0x10011000);
	/* exactly fits: 0x10000 + (0x100 at 0x100) + page-aligned 0x1000 */
	assert_int_equal(dt_node_map_window(&hn, 0x10000000, 0x12000, 0x1000, &m, &d), 0);
	ASSERT_ERR(dt_node_map_window(&hn, 0x10000000, 0x11fff, 0x1000, &m, &d), &d, -ENOSPC,
		   "Region 2 of x@1234");
	ASSERT_ERR(dt_node_map_window(&hn, 0x10000000, 0x100000, 0x800, &m, &d), &d, -EINVAL,
		   "alignment");
	ASSERT_ERR(dt_node_map_window(&hn, 0x10000000, 0x100000, 0x3000, &m, &d), &d, -EINVAL,
		   "alignment");
	ASSERT_ERR(dt_node_map_window(&hn, UINT64_MAX - 0xfff, 0x2000, 0x1000, &m, &d), &d,
		   -EINVAL, "wraps");
	ASSERT_ERR(dt_node_map_window(&hn, UINT64_MAX - 0x2fff, 0x2000, 0x1000, &m, &d), &d,
		   -ENOSPC, "does not fit");
}

static void test_generate_orin_uart(void **state)
{
	(void)state;
	size_t n;
	void *h = orin_host(&n);
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, ORIN_UART, &hn, &d), 0);
	struct dt_node_map m = { .gic_phandle = 1, .clock_phandle = 2, .nr_irqs = 1 };
	m.irq_guest_spi[0] = 20;
	assert_int_equal(dt_node_map_window(&hn, 0x0c000000, 0x1000000, 0x10000, &m, &d), 0);
	struct dt_node_result res;
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, ORIN_UART, &m, &res, &d), 0);
	assert_string_equal(res.name, "serial@c000000");
	const char *p = "/serial@c000000";
	assert_bytes(g, p, "compatible", "nvidia,tegra194-hsuart", 23);
	assert_cells(g, p, "reg", 4, 0, 0x0c000000, 0, 0x10000); /* 1/1 cells → 2/2 */
	assert_cells(g, p, "reg-shift", 1, 2);
	assert_cells(g, p, "interrupts", 3, 0, 20, 4);
	assert_cells(g, p, "interrupt-parent", 1, 1);
	assert_cells(g, p, "clocks", 2, 2, 2); /* two entries, so clock-names still matches */
	ASSERT_STRS(g, p, "clock-names", "serial\0parent");
	static const char *const dropped[] = { "resets",    "reset-names",   "power-domains",
					       "iommus",    "pinctrl-0",     "pinctrl-names",
					       "vdd-supply", "nvidia,adjust-baud-rates", "status" };
	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
		assert_absent(g, p, dropped[i]);
	assert_int_equal(nprops(g, p), 7);
	for (size_t i = 0; i < 7; i++) {
		char want[96];
		snprintf(want, sizeof(want), "%s dropped (refers to a host", dropped[i]);
		ASSERT_NOTE(&d, DT_NODE_NOTE_WARN, want);
	}
	ASSERT_NOTE(&d, DT_NODE_NOTE_WARN, "resets dropped (refers to a host reset controller");
	ASSERT_NOTE(&d, DT_NODE_NOTE_WARN, "power-domains dropped (refers to a host power domain");
	ASSERT_NOTE(&d, DT_NODE_NOTE_WARN, "iommus dropped (refers to a host IOMMU");
	ASSERT_NOTE(&d, DT_NODE_NOTE_WARN, "vdd-supply dropped (refers to a host regulator");
	ASSERT_NOTE(&d, DT_NODE_NOTE_DEBUG, "unknown property nvidia,adjust-baud-rates dropped");
	ASSERT_NOTE(&d, DT_NODE_NOTE_DEBUG, "clocks replaced by 2 reference(s)");
	assert_false(has_note(&d, DT_NODE_NOTE_WARN, "status"));
	assert_int_equal(d.nr_lost, 0);

	/* the notes go to the log at the right levels */
	struct unit_log_capture cap;
	assert_int_equal(unit_log_capture_open(&cap, LOG_DEBUG), 0);
	dt_node_diag_log(&d, &cap.log, "passthrough: ");
	const char *text = unit_log_capture_text(&cap);
	assert_non_null(strstr(text, "passthrough: host DT node /bus@0/serial@31d0000: resets dropped"));
	assert_non_null(strstr(text, "unknown property nvidia,adjust-baud-rates"));
	unit_log_capture_close(&cap);
	assert_int_equal(unit_log_capture_open(&cap, LOG_WARN), 0);
	dt_node_diag_log(&d, &cap.log, NULL);
	text = unit_log_capture_text(&cap);
	assert_non_null(strstr(text, "iommus dropped"));
	assert_null(strstr(text, "unknown property"));
	unit_log_capture_close(&cap);
	dt_node_diag_log(NULL, NULL, NULL);

	assert_dtc_ok(g, "orin uart");
	free(g);
	free(h);
}

static void test_generate_orin_identity_extra_phandle(void **state)
{
	(void)state;
	size_t n;
	void *h = orin_host(&n);
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, ORIN_UART, &hn, &d), 0);
	static const char *const extra[] = { "nvidia,adjust-baud-rates", NULL };
	struct dt_node_map m = { .gic_phandle = 1, .nr_irqs = 1, .node_phandle = 0x40,
				 .clock_hz = 408000000, .extra_props = extra };
	m.irq_guest_spi[0] = 0x75;
	dt_node_map_identity(&hn, &m);
	struct dt_node_result res;
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, ORIN_UART, &m, &res, &d), 0);
	const char *p = "/serial@31d0000";
	assert_cells(g, p, "reg", 4, 0, 0x31d0000, 0, 0x10000);
	assert_cells(g, p, "interrupts", 3, 0, 0x75, 4);
	assert_cells(g, p, "nvidia,adjust-baud-rates", 3, 0, 9600, 100);
	assert_cells(g, p, "phandle", 1, 0x40);
	/* generated clock skips the caller's node phandle */
	assert_string_equal(res.clock_name, "serial-clk-31d0000");
	assert_int_equal(res.clock_phandle, 0x41);
	assert_cells(g, p, "clocks", 2, 0x41, 0x41);
	assert_cells(g, "/serial-clk-31d0000", "clock-frequency", 1, 408000000);
	ASSERT_NOTE(&d, DT_NODE_NOTE_DEBUG, "nvidia,adjust-baud-rates copied verbatim");

	/* and without a rate anywhere: default + WARN */
	struct dt_node_map m2 = { .gic_phandle = 1, .nr_irqs = 1 };
	m2.irq_guest_spi[0] = 21;
	assert_int_equal(dt_node_map_window(&hn, 0x0c000000, 0x100000, 0x10000, &m2, &d), 0);
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, ORIN_UART, &m2, &res, &d), 0);
	assert_cells(g, "/serial-clk-c000000", "clock-frequency", 1, DT_NODE_DEFAULT_CLOCK_HZ);
	assert_int_equal(res.clock_phandle, 0x42);
	ASSERT_NOTE(&d, DT_NODE_NOTE_WARN, "clock rate unknown");
	assert_dtc_ok(g, "orin identity + window");
	free(g);
	free(h);
}

static void test_generate_subnodes_status_intc(void **state)
{
	(void)state;
	void *f = orin_open();
	const char *gp = "/bus@0/gpio@2200000";
	str(f, gp, "status", "disabled");
	add(f, gp, "hog");
	STRS(f, gp, "gpio-line-names", "a\0b");
	cells(f, gp, "ngpios", 1, 2);
	cells(f, gp, "#address-cells", 1, 1);
	cells(f, gp, "clock-frequency", 2, 0, 19200000); /* 64-bit form */
	cells(f, gp, "interrupt-parent", 1, PH_OGIC);    /* on the node itself, first */
	size_t n;
	void *h = finish(f, &n);
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, gp, &hn, &d), 0);
	struct dt_node_map m = { .gic_phandle = 1, .nr_irqs = 1 };
	m.irq_guest_spi[0] = 9;
	dt_node_map_identity(&hn, &m);
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, gp, &m, NULL, &d), 0);
	const char *p = "/gpio@2200000";
	assert_flag(g, p, "gpio-controller");
	assert_flag(g, p, "interrupt-controller");
	assert_cells(g, p, "#interrupt-cells", 1, 2);
	assert_cells(g, p, "ngpios", 1, 2);
	ASSERT_STRS(g, p, "gpio-line-names", "a\0b");
	assert_cells(g, p, "clock-frequency", 2, 0, 19200000);
	assert_cells(g, p, "interrupt-parent", 1, 1);
	assert_cells(g, p, "interrupts", 3, 0, 9, 4);
	assert_absent(g, p, "status");
	assert_absent(g, p, "#address-cells");
	assert_int_equal(fdt_first_subnode(g, at(g, p)), -FDT_ERR_NOTFOUND);
	ASSERT_NOTE(&d, DT_NODE_NOTE_WARN, "status is not \"okay\"");
	ASSERT_NOTE(&d, DT_NODE_NOTE_WARN, "subnode hog not copied");
	ASSERT_NOTE(&d, DT_NODE_NOTE_DEBUG, "#address-cells dropped (subnodes are not copied)");
	free(g);
	free(h);
}

static void test_notes_overflow(void **state)
{
	(void)state;
	void *f = virt_open();
	char name[32];
	for (int i = 0; i < DT_NODE_MAX_NOTES + 5; i++) {
		snprintf(name, sizeof(name), "vendor,prop%d", i);
		flag(f, "/fw-cfg@9020000", name);
	}
	size_t n;
	void *h = finish(f, &n);
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	assert_int_equal(dt_node_parse_host(h, n, "/fw-cfg@9020000", &hn, &d), 0);
	struct dt_node_map m = { .gic_phandle = 1 };
	dt_node_map_identity(&hn, &m);
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, "/fw-cfg@9020000", &m, NULL, &d), 0);
	assert_int_equal(d.nr_notes, DT_NODE_MAX_NOTES);
	assert_int_equal(d.nr_lost, 5);
	struct unit_log_capture cap;
	assert_int_equal(unit_log_capture_open(&cap, LOG_DEBUG), 0);
	dt_node_diag_log(&d, &cap.log, NULL);
	assert_non_null(strstr(unit_log_capture_text(&cap), "5 more device-tree notes"));
	unit_log_capture_close(&cap);
	free(g);
	free(h);
}

/* ---- host DT errors -------------------------------------------------------------------- */

typedef void (*tweak_fn)(void *f);

/* Parse `path` of a tweaked tree; expect -EINVAL and an error containing sub (unless
 * only generation looks at the property: gen_only). Then the same through
 * dt_node_generate, with the guest left untouched. */
static void expect_host_error_opt(void *(*open)(void), tweak_fn tweak, const char *path,
				  const char *sub, bool gen_only)
{
	void *f = open();
	if (tweak)
		tweak(f);
	size_t n;
	void *h = finish(f, &n);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	if (gen_only)
		assert_int_equal(dt_node_parse_host(h, n, path, &hn, &d), 0);
	else
		ASSERT_ERR(dt_node_parse_host(h, n, path, &hn, &d), &d, -EINVAL, sub);

	void *g = guest_new();
	uint32_t gsz = fdt_totalsize(g);
	void *copy = malloc(gsz);
	assert_non_null(copy);
	memcpy(copy, g, gsz);
	struct dt_node_map m = { .gic_phandle = 1, .clock_phandle = 2, .nr_regs = 1, .nr_irqs = 1 };
	struct dt_node_result res;
	dt_node_diag_init(&d);
	ASSERT_ERR(dt_node_generate(g, GUEST_SIZE, h, n, path, &m, &res, &d), &d, -EINVAL, sub);
	assert_memory_equal(g, copy, gsz);
	assert_string_equal(res.name, "");
	free(copy);
	free(g);
	free(h);
}

static void expect_host_error(void *(*open)(void), tweak_fn tweak, const char *path,
			      const char *sub)
{
	expect_host_error_opt(open, tweak, path, sub, false);
}

static void tw_reg_len(void *f) { cells(f, "/pl061@9030000", "reg", 3, 0, 0x9030000, 0x1000); }
static void tw_ac3(void *f) { cells(f, "/", "#address-cells", 1, 3); }
static void tw_ac0(void *f) { cells(f, "/", "#address-cells", 1, 0); }
static void tw_sc0(void *f) { cells(f, "/", "#size-cells", 1, 0); }
static void tw_ac_trunc(void *f) { setp(f, "/", "#address-cells", "\0\0", 2); }
static void tw_no_reg(void *f) { delp(f, "/pl061@9030000", "reg"); }
static void tw_empty_reg(void *f) { setp(f, "/pl061@9030000", "reg", NULL, 0); }
static void tw_reg_size0(void *f) { cells(f, "/pl061@9030000", "reg", 4, 0, 0x9030000, 0, 0); }
static void tw_reg_wrap(void *f)
{
	cells(f, "/pl061@9030000", "reg", 4, 0xffffffff, 0xfffff000, 0, 0x2000);
}
static void tw_too_many_regs(void *f)
{
	fdt32_t v[(DT_NODE_MAX_REGS + 1) * 4];
	for (int i = 0; i < (DT_NODE_MAX_REGS + 1) * 4; i++)
		v[i] = cpu_to_fdt32(i % 4 == 3 ? 0x1000 : i % 4 == 1 ? 0x9030000u + (uint32_t)i * 0x1000 : 0);
	setp(f, "/pl061@9030000", "reg", v, (int)sizeof(v));
}
static void tw_too_many_irqs(void *f)
{
	fdt32_t v[(DT_NODE_MAX_IRQS + 1) * 3];
	for (int i = 0; i < (DT_NODE_MAX_IRQS + 1) * 3; i++)
		v[i] = cpu_to_fdt32(i % 3 == 0 ? 0 : i % 3 == 1 ? (uint32_t)i : 4);
	setp(f, "/pl061@9030000", "interrupts", v, (int)sizeof(v));
}
static void tw_irq_len(void *f) { cells(f, "/pl061@9030000", "interrupts", 2, 0, 7); }
static void tw_irq_len4(void *f) { cells(f, "/pl061@9030000", "interrupts", 4, 0, 7, 4, 0); }
static void tw_irq_empty(void *f) { setp(f, "/pl061@9030000", "interrupts", NULL, 0); }
static void tw_ppi(void *f) { cells(f, "/pl061@9030000", "interrupts", 3, 1, 7, 4); }
static void tw_espi(void *f) { cells(f, "/pl061@9030000", "interrupts", 3, 2, 7, 4); }
static void tw_spi_big(void *f) { cells(f, "/pl061@9030000", "interrupts", 3, 0, 988, 4); }
static void tw_mixed(void *f) { cells(f, "/pl061@9030000", "interrupts", 3, 0, 7, 5); }
static void tw_ip_missing(void *f) { cells(f, "/", "interrupt-parent", 1, 0x4242); }
static void tw_ip_none(void *f) { delp(f, "/", "interrupt-parent"); }
static void tw_ip_len(void *f) { cells(f, "/pl061@9030000", "interrupt-parent", 2, PH_GIC, 0); }
static void tw_gic_cells(void *f) { cells(f, "/intc@8000000", "#interrupt-cells", 1, 2); }
static void tw_gic_cells_len(void *f) { cells(f, "/intc@8000000", "#interrupt-cells", 2, 0, 3); }
static void tw_ip_loop(void *f)
{
	/* two non-controllers pointing at each other */
	cells(f, "/fw-cfg@9020000", "phandle", 1, 0x77);
	cells(f, "/fw-cfg@9020000", "interrupt-parent", 1, PH_PL061);
	cells(f, "/pl061@9030000", "interrupt-parent", 1, 0x77);
}
static void tw_ext_trunc(void *f)
{
	cells(f, "/pl061@9030000", "interrupts-extended", 3, PH_GIC, 0, 7);
}
static void tw_ext_len(void *f) { setp(f, "/pl061@9030000", "interrupts-extended", "abc", 3); }
static void tw_ext_missing(void *f)
{
	cells(f, "/pl061@9030000", "interrupts-extended", 4, 0x4242, 0, 7, 4);
}
static void tw_ext_not_gic(void *f)
{
	cells(f, "/pl061@9030000", "interrupts-extended", 4, PH_APB, 0, 7, 4);
}
static void tw_clk_missing(void *f) { cells(f, "/pl061@9030000", "clocks", 1, 0x4242); }
static void tw_clk_trunc(void *f)
{
	cells(f, "/apb-pclk", "#clock-cells", 1, 1);
	cells(f, "/pl061@9030000", "clocks", 1, PH_APB);
}
static void tw_clk_nocells(void *f) { delp(f, "/apb-pclk", "#clock-cells"); }
static void tw_clk_len(void *f) { setp(f, "/pl061@9030000", "clocks", "ab", 2); }
static void tw_compat_bad(void *f) { setp(f, "/pl061@9030000", "compatible", "arm,pl061", 9); }
static void tw_flag_bad(void *f) { cells(f, "/pl061@9030000", "gpio-controller", 1, 1); }
static void tw_u32_bad(void *f) { setp(f, "/pl061@9030000", "#gpio-cells", "\0\0\0\0\0\0\0\2", 8); }

static void test_host_errors_virt(void **state)
{
	(void)state;
	const char *p = "/pl061@9030000";
	expect_host_error(virt_open, tw_reg_len, p,
			  "/pl061@9030000: property reg has 12 bytes, not a positive multiple of 16");
	expect_host_error(virt_open, tw_ac3, p, "#address-cells = 3 is not supported");
	expect_host_error(virt_open, tw_ac0, p, "#address-cells = 0 is not supported");
	expect_host_error(virt_open, tw_sc0, p, "#size-cells = 0 is not supported");
	expect_host_error(virt_open, tw_ac_trunc, p, "property #address-cells has 2 bytes, not 4");
	expect_host_error(virt_open, tw_no_reg, p, "/pl061@9030000 has no reg property");
	expect_host_error(virt_open, tw_empty_reg, p, "reg has 0 bytes");
	expect_host_error(virt_open, tw_reg_size0, p, "reg entry 0 has size 0");
	expect_host_error(virt_open, tw_reg_wrap, p, "wraps around");
	expect_host_error(virt_open, tw_too_many_regs, p, "more than 16 reg entries");
	expect_host_error(virt_open, tw_too_many_irqs, p, "more than 16 interrupts");
	expect_host_error(virt_open, tw_irq_len, p,
			  "/pl061@9030000: property interrupts has 8 bytes, not a positive "
			  "multiple of 12");
	expect_host_error(virt_open, tw_irq_len4, p, "interrupts has 16 bytes");
	expect_host_error(virt_open, tw_irq_empty, p, "interrupts has 0 bytes");
	expect_host_error(virt_open, tw_ppi, p, "interrupt 0 is a PPI");
	expect_host_error(virt_open, tw_espi, p, "GIC type 2; only SPIs");
	expect_host_error(virt_open, tw_spi_big, p, "SPI 988");
	expect_host_error(virt_open, tw_mixed, p, "mixing edge and level");
	expect_host_error(virt_open, tw_ip_missing, p, "phandle 0x4242, which no node has");
	expect_host_error(virt_open, tw_ip_none, p, "no interrupt parent");
	expect_host_error(virt_open, tw_ip_len, p, "interrupt-parent has 8 bytes");
	expect_host_error(virt_open, tw_gic_cells, p, "#interrupt-cells is not 3");
	expect_host_error(virt_open, tw_gic_cells_len, p, "#interrupt-cells has 8 bytes");
	expect_host_error(virt_open, tw_ip_loop, p, "chain loops");
	expect_host_error(virt_open, tw_ext_trunc, p, "interrupts-extended is truncated");
	expect_host_error(virt_open, tw_ext_len, p, "interrupts-extended has 3 bytes");
	expect_host_error(virt_open, tw_ext_missing, p,
			  "interrupts-extended entry 0 refers to phandle 0x4242");
	expect_host_error(virt_open, tw_ext_not_gic, p,
			  "interrupts-extended go to /apb-pclk, which is not the GIC");
	expect_host_error(virt_open, tw_clk_missing, p, "clocks entry 0 refers to phandle 0x4242");
	expect_host_error(virt_open, tw_clk_trunc, p, "clocks is truncated");
	expect_host_error(virt_open, tw_clk_nocells, p, "clock provider /apb-pclk has no usable");
	expect_host_error(virt_open, tw_clk_len, p, "clocks has 2 bytes");
	expect_host_error_opt(virt_open, tw_compat_bad, p,
			      "property compatible has 9 bytes; expected a NUL-terminated string "
			      "list",
			      true);
	expect_host_error_opt(virt_open, tw_flag_bad, p,
			      "gpio-controller has 4 bytes; expected empty", true);
	expect_host_error_opt(virt_open, tw_u32_bad, p, "#gpio-cells has 8 bytes; expected 4 bytes",
			      true);
	expect_host_error(virt_open, NULL, "/nope@0", "The host DT has no node /nope@0");
	expect_host_error(virt_open, NULL, "pl061@9030000", "is not absolute");
	expect_host_error(virt_open, NULL, "/", "is the root, not a device");
	expect_host_error(virt_open, NULL, "/gpio-keys", "/gpio-keys has no reg property");
}

static void tw_orin_agic(void *f)
{
	cells(f, ORIN_UART, "interrupt-parent", 1, PH_AGIC);
}
static void tw_orin_gpio_parent(void *f)
{
	cells(f, ORIN_UART, "interrupt-parent", 1, PH_GPIO);
	cells(f, ORIN_UART, "interrupts", 2, 5, 4);
}
static void tw_orin_ext_gpio(void *f)
{
	cells(f, ORIN_UART, "interrupts-extended", 7, PH_OGIC, 0, 0x75, 4, PH_GPIO, 5, 4);
}
static void tw_orin_no_ranges(void *f) { delp(f, "/bus@0", "ranges"); }
static void tw_orin_outside(void *f) { cells(f, "/bus@0", "ranges", 4, 0, 0, 0, 0x1000000); }
static void tw_orin_straddle(void *f)
{
	cells(f, "/bus@0", "ranges", 4, 0, 0, 0, 0x31d8000); /* covers only half of the uart */
}
static void tw_orin_ranges_len(void *f) { cells(f, "/bus@0", "ranges", 3, 0, 0, 0); }
static void tw_orin_bus_ac3(void *f) { cells(f, "/bus@0", "#address-cells", 1, 3); }

static void test_host_errors_orin(void **state)
{
	(void)state;
	expect_host_error(orin_open, tw_orin_agic, ORIN_UART,
			  "interrupts go to /bus@0/agic@2a41000, which is not the GIC");
	expect_host_error(orin_open, tw_orin_gpio_parent, ORIN_UART,
			  "interrupts go to /bus@0/gpio@2200000, which is not the GIC");
	expect_host_error(orin_open, tw_orin_ext_gpio, ORIN_UART,
			  "interrupts-extended go to /bus@0/gpio@2200000, which is not the GIC");
	expect_host_error(orin_open, tw_orin_no_ranges, ORIN_UART,
			  "/bus@0 (an ancestor of /bus@0/serial@31d0000) has no ranges");
	expect_host_error(orin_open, tw_orin_outside, ORIN_UART,
			  "reg entry 0 (0x31d0000, 0x10000 bytes) lies outside every ranges entry "
			  "of bus /bus@0");
	expect_host_error(orin_open, tw_orin_straddle, ORIN_UART, "lies outside every ranges");
	expect_host_error(orin_open, tw_orin_ranges_len, ORIN_UART,
			  "/bus@0: property ranges has 12 bytes, not a multiple of 16");
	expect_host_error(orin_open, tw_orin_bus_ac3, ORIN_UART,
			  "/bus@0: #address-cells = 3 is not supported");
	/* a child of a device that is not a bus: pinmux has no #address-cells → 2/1 but
	 * also no ranges */
	expect_host_error(orin_open, NULL, "/bus@0/pinmux@2430000/uarti", "has no reg property");
}

static void test_host_bad_blobs(void **state)
{
	(void)state;
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;
	size_t n;
	void *h = virt_host(&n);
	/* truncated: the buffer is shorter than the header says */
	ASSERT_ERR(dt_node_parse_host(h, n - 8, "/pl061@9030000", &hn, &d), &d, -EINVAL,
		   "The host DT blob is not a valid flattened device tree");
	ASSERT_ERR(dt_node_parse_host(h, 20, "/pl061@9030000", &hn, &d), &d, -EINVAL,
		   "not a valid flattened device tree");
	/* garbage */
	unsigned char junk[256];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 37 + 11);
	ASSERT_ERR(dt_node_parse_host(junk, sizeof(junk), "/x", &hn, &d), &d, -EINVAL,
		   "not a valid flattened device tree");
	/* corrupt structure block: a bad tag inside the first property */
	void *c = malloc(n);
	memcpy(c, h, n);
	uint32_t off = fdt_off_dt_struct(c);
	fdt32_t bad = cpu_to_fdt32(0x77);
	memcpy((char *)c + off + 8, &bad, 4);
	ASSERT_ERR(dt_node_parse_host(c, n, "/pl061@9030000", &hn, &d), &d, -EINVAL,
		   "not a valid flattened device tree");
	free(c);
	ASSERT_ERR(dt_node_parse_host(NULL, 0, "/x", &hn, &d), &d, -EINVAL, "No host DT blob");
	ASSERT_ERR(dt_node_parse_host(h, n, NULL, &hn, &d), &d, -EINVAL, "not absolute");
	ASSERT_ERR(dt_node_parse_host(h, n, "/x", NULL, &d), &d, -EINVAL, "missing output");
	free(h);
}

/* ---- mapping / guest errors -------------------------------------------------------------- */

static void expect_gen_error(void *g, size_t gsize, const void *h, size_t n, const char *path,
			     const struct dt_node_map *m, int err, const char *sub)
{
	uint32_t gsz = fdt_totalsize(g);
	void *copy = malloc(gsz);
	assert_non_null(copy);
	memcpy(copy, g, gsz);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_result res;
	ASSERT_ERR(dt_node_generate(g, gsize, h, n, path, m, &res, &d), &d, err, sub);
	assert_memory_equal(g, copy, gsz);
	assert_string_equal(res.name, "");
	free(copy);
}

static void test_generate_errors(void **state)
{
	(void)state;
	size_t n;
	void *h = virt_host(&n);
	void *g = guest_new();
	const char *p = "/pl061@9030000";
	struct dt_node_map ok = { .gic_phandle = 1, .clock_phandle = 2, .nr_regs = 1,
				  .nr_irqs = 1 };
	ok.reg_guest[0] = 0x9030000;
	ok.irq_guest_spi[0] = 7;
	struct dt_node_map m;

	m = ok;
	m.nr_regs = 2;
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EINVAL,
			 "gives 2 guest addresses but host DT node /pl061@9030000 has 1 reg");
	m = ok;
	m.nr_irqs = 0;
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EINVAL, "gives 0 guest SPIs but host DT node");
	m = ok;
	m.irq_guest_spi[0] = DT_NODE_MAX_SPI + 1;
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EINVAL, "Guest SPI 988");
	m = ok;
	m.reg_guest[0] = UINT64_MAX - 0x800;
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EINVAL, "wraps around");
	m = ok;
	m.gic_phandle = 7;
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EINVAL, "no GIC (interrupt controller with 3 "
			 "interrupt cells) with phandle 7");
	m = ok;
	m.gic_phandle = 2; /* the clock */
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EINVAL, "with phandle 2");
	m = ok;
	m.clock_phandle = 1; /* the GIC is no clock */
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EINVAL,
			 "no fixed clock (#clock-cells = 0) with phandle 1");
	m = ok;
	m.clock_phandle = 9;
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EINVAL, "with phandle 9");
	m = ok;
	m.node_phandle = 1;
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EEXIST, "Phandle 1 for /pl061@9030000");
	m = ok;
	m.node_phandle = 0xffffffffu;
	expect_gen_error(g, GUEST_SIZE, h, n, p, &m, -EINVAL, "0xffffffff");
	/* node name already taken */
	struct dt_node_map fw = { .gic_phandle = 1, .nr_regs = 1, .reg_guest = { 0x9030000 } };
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, "/fw-cfg@9020000", &fw, NULL, NULL),
			 0);
	expect_gen_error(g, GUEST_SIZE, h, n, "/fw-cfg@9020000", &fw, -EEXIST,
			 "already has a node named fw-cfg@9030000");

	/* the guest buffer has no room */
	uint32_t used = fdt_totalsize(g);
	expect_gen_error(g, used + 16, h, n, p, &ok, -ENOSPC, "too small");
	expect_gen_error(g, used - 1, h, n, p, &ok, -EINVAL, "guest DT blob is not a valid");
	/* a guest that is not 2/2 */
	void *g1 = guest_new();
	assert_int_equal(fdt_open_into(g1, g1, GUEST_SIZE), 0);
	assert_int_equal(fdt_setprop_u32(g1, 0, "#size-cells", 1), 0);
	expect_gen_error(g1, GUEST_SIZE, h, n, p, &ok, -EINVAL,
			 "guest DT root has #address-cells 2 / #size-cells 1, not 2/2");
	free(g1);

	struct dt_node_diag d;
	dt_node_diag_init(&d);
	ASSERT_ERR(dt_node_generate(NULL, GUEST_SIZE, h, n, p, &ok, NULL, &d), &d, -EINVAL,
		   "missing argument");
	ASSERT_ERR(dt_node_generate(g, GUEST_SIZE, h, n, p, NULL, NULL, &d), &d, -EINVAL,
		   "missing argument");
	/* NULL diag and NULL result are fine */
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, p, &ok, NULL, NULL), 0);
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, p, &ok, NULL, NULL), -EEXIST);
	free(g);
	free(h);
}

/* the same node twice: EEXIST, and so is a generated clock name */
static void test_generate_twice(void **state)
{
	(void)state;
	size_t n;
	void *h = virt_host(&n);
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_map m = { .gic_phandle = 1, .nr_regs = 1, .nr_irqs = 1 };
	m.reg_guest[0] = 0x9030000;
	m.irq_guest_spi[0] = 7;
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, "/pl061@9030000", &m, NULL, &d), 0);
	expect_gen_error(g, GUEST_SIZE, h, n, "/pl061@9030000", &m, -EEXIST,
			 "already has a node named pl061@9030000");
	free(g);
	/* the name of the clock to generate is taken */
	g = guest_new();
	assert_int_equal(fdt_open_into(g, g, GUEST_SIZE), 0);
	assert_true(fdt_add_subnode(g, 0, "pl061-clk-9030000") >= 0);
	expect_gen_error(g, GUEST_SIZE, h, n, "/pl061@9030000", &m, -EEXIST,
			 "already has a node named pl061-clk-9030000");
	free(g);
	free(h);
}

/* ---- fragments ---------------------------------------------------------------------------- */

static const char frag_pl061[] =
	"/dts-v1/;\n"
	"/ {\n"
	"	#address-cells = <2>;\n"
	"	#size-cells = <2>;\n"
	"	pl061@9030000 {\n"
	"		compatible = \"arm,pl061\", \"arm,primecell\";\n"
	"		reg = <0x0 0x9030000 0x0 0x1000>;\n"
	"		interrupt-parent = <1>;\n"
	"		interrupts = <0 7 4>;\n"
	"		clocks = <2>;\n"
	"		clock-names = \"apb_pclk\";\n"
	"		gpio-controller;\n"
	"		#gpio-cells = <2>;\n"
	"		interrupt-controller;\n"
	"		#interrupt-cells = <2>;\n"
	"		#address-cells = <0>;\n"
	"		phandle = <0x100>;\n"
	"		vendor,anything = [de ad be ef];\n"
	"		line-a { reg-free-child = \"first\"; };\n"
	"		line-b { reg-free-child = \"second\"; };\n"
	"	};\n"
	"	gpio-keys {\n"
	"		compatible = \"gpio-keys\";\n"
	"		poweroff {\n"
	"			label = \"GPIO Key Poweroff\";\n"
	"			linux,code = <116>;\n"
	"			gpios = <0x100 3 0>;\n"
	"			interrupt-parent = <0x100>;\n"
	"			interrupts = <3 1>;\n"
	"		};\n"
	"	};\n"
	"};\n";

static struct dt_node_frag_check pl061_check(void)
{
	struct dt_node_frag_check c = { .nr_regions = 1, .nr_spis = 1 };
	c.regions[0] = (struct dt_node_region){ 0x9030000, 0x1000 };
	c.spis[0] = 7;
	return c;
}

/* every property and subnode of fragment node fpath equals guest node gpath, in order */
static void assert_same_node(const void *f, int fo, const void *g, int go)
{
	assert_string_equal(fdt_get_name(f, fo, NULL), fdt_get_name(g, go, NULL));
	int pf = fdt_first_property_offset(f, fo), pg = fdt_first_property_offset(g, go);
	while (pf >= 0 || pg >= 0) {
		assert_true(pf >= 0 && pg >= 0);
		const char *nf, *ng;
		int lf, lg;
		const void *vf = fdt_getprop_by_offset(f, pf, &nf, &lf);
		const void *vg = fdt_getprop_by_offset(g, pg, &ng, &lg);
		assert_string_equal(nf, ng);
		assert_int_equal(lf, lg);
		if (lf)
			assert_memory_equal(vf, vg, (size_t)lf);
		pf = fdt_next_property_offset(f, pf);
		pg = fdt_next_property_offset(g, pg);
	}
	int cf = fdt_first_subnode(f, fo), cg = fdt_first_subnode(g, go);
	while (cf >= 0 || cg >= 0) {
		assert_true(cf >= 0 && cg >= 0);
		assert_same_node(f, cf, g, cg);
		cf = fdt_next_subnode(f, cf);
		cg = fdt_next_subnode(g, cg);
	}
}

/* A fragment whose second node name runs past the end of the structure block:
 * libfdt 1.6.1's fdt_check_full() would dereference NULL on it (fuzz find). */
static void test_fragment_unterminated_name(void **state)
{
	(void)state;
	static uint8_t b[1024];
	assert_int_equal(fdt_create(b, sizeof(b)), 0);
	assert_int_equal(fdt_finish_reservemap(b), 0);
	assert_int_equal(fdt_begin_node(b, ""), 0);
	assert_int_equal(fdt_begin_node(b, "abcdefg"), 0);
	assert_int_equal(fdt_end_node(b), 0);
	assert_int_equal(fdt_end_node(b), 0);
	assert_int_equal(fdt_finish(b), 0);
	/* cut the structure block inside "abcdefg" (root: tag + 4 bytes name;
	 * child: tag at 8, name at 12) */
	fdt_set_size_dt_struct(b, 12 + 5);
	void *g = guest_new();
	struct dt_node_frag_check c = pl061_check();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	assert_int_equal(dt_node_add_fragment(g, GUEST_SIZE, b, fdt_totalsize(b), &c, NULL, &d),
			 -EINVAL);
	assert_non_null(strstr(d.error, "not a valid flattened device tree"));
	free(g);
}

/* A node name with '/' would be unreachable by path in the guest (fuzz find). */
static void test_fragment_slash_in_name(void **state)
{
	(void)state;
	static uint8_t b[1024];
	assert_int_equal(fdt_create(b, sizeof(b)), 0);
	assert_int_equal(fdt_finish_reservemap(b), 0);
	assert_int_equal(fdt_begin_node(b, ""), 0);
	assert_int_equal(fdt_property_u32(b, "#address-cells", 2), 0);
	assert_int_equal(fdt_property_u32(b, "#size-cells", 2), 0);
	assert_int_equal(fdt_begin_node(b, "dev0/9030000"), 0);
	fdt64_t reg[2] = { cpu_to_fdt64(0x9030000), cpu_to_fdt64(0x1000) };
	assert_int_equal(fdt_property(b, "reg", reg, sizeof(reg)), 0);
	assert_int_equal(fdt_end_node(b), 0);
	assert_int_equal(fdt_end_node(b), 0);
	assert_int_equal(fdt_finish(b), 0);
	void *g = guest_new();
	struct dt_node_frag_check c = pl061_check();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	assert_int_equal(dt_node_add_fragment(g, GUEST_SIZE, b, fdt_totalsize(b), &c, NULL, &d),
			 -EINVAL);
	assert_non_null(strstr(d.error, "not a valid node name"));
	free(g);
}

static void test_fragment_verbatim(void **state)
{
	(void)state;
	size_t fn;
	void *fr = compile_dts(frag_pl061, &fn);
	void *g = guest_new();
	struct dt_node_frag_check c = pl061_check();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_result res;
	assert_int_equal(dt_node_add_fragment(g, GUEST_SIZE, fr, fn, &c, &res, &d), 0);
	assert_string_equal(d.error, "");
	assert_string_equal(res.name, "pl061@9030000");
	assert_int_equal(res.clock_phandle, 2);
	assert_true(fdt_totalsize(g) < GUEST_SIZE);
	assert_same_node(fr, at(fr, "/pl061@9030000"), g, at(g, "/pl061@9030000"));
	assert_same_node(fr, at(fr, "/gpio-keys"), g, at(g, "/gpio-keys"));
	/* top-level order kept: pl061 before gpio-keys */
	assert_true(at(g, "/pl061@9030000") < at(g, "/gpio-keys"));
	assert_cells(g, "/pl061@9030000", "phandle", 1, 0x100);
	at(g, "/pl011@9000000");
	assert_dtc_ok(g, "fragment");
	free(g);
	free(fr);
}

/* interrupts-extended to the GIC and to a fragment-defined controller */
static void test_fragment_interrupts_extended(void **state)
{
	(void)state;
	size_t fn;
	void *fr = compile_dts("/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>;\n"
			       "pl061@9030000 { compatible = \"arm,pl061\";\n"
			       "  reg = <0 0x9030000 0 0x1000>; interrupt-controller;\n"
			       "  #interrupt-cells = <2>; #address-cells = <0>; phandle = <0x100>;\n"
			       "  interrupts-extended = <1 0 7 4>; };\n"
			       "keys { compatible = \"gpio-keys\";\n"
			       "  k { interrupts-extended = <0x100 3 1>, <1 0 7 4>; }; }; };\n",
			       &fn);
	void *g = guest_new();
	struct dt_node_frag_check c = pl061_check();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	assert_int_equal(dt_node_add_fragment(g, GUEST_SIZE, fr, fn, &c, NULL, &d), 0);
	assert_cells(g, "/keys/k", "interrupts-extended", 7, 0x100, 3, 1, 1, 0, 7, 4);
	assert_dtc_ok(g, "interrupts-extended fragment");
	free(g);
	free(fr);
}

/* root without #address-cells/#size-cells counts as 2/2; extra root props ignored */
static void test_fragment_minimal(void **state)
{
	(void)state;
	size_t fn;
	void *fr = compile_dts("/dts-v1/;\n/ { model = \"x\";\n"
			       "fw-cfg@c000000 { compatible = \"qemu,fw-cfg-mmio\";\n"
			       "  reg = <0 0xc000000 0 0x18>; dma-coherent; }; };\n",
			       &fn);
	void *g = guest_new();
	struct dt_node_frag_check c = { .nr_regions = 2 };
	c.regions[0] = (struct dt_node_region){ 0xc000000, 0x1000 };
	c.regions[1] = (struct dt_node_region){ 0xd000000, 0x1000 };
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_result res;
	assert_int_equal(dt_node_add_fragment(g, GUEST_SIZE, fr, fn, &c, &res, &d), 0);
	assert_string_equal(res.name, "fw-cfg@c000000");
	assert_int_equal(res.clock_phandle, 0);
	assert_cells(g, "/fw-cfg@c000000", "reg", 4, 0, 0xc000000, 0, 0x18);
	ASSERT_NOTE(&d, DT_NODE_NOTE_DEBUG, "root property model ignored");
	ASSERT_NOTE(&d, DT_NODE_NOTE_DEBUG, "mapped region 0xd000000");
	assert_dtc_ok(g, "minimal fragment");
	free(g);
	free(fr);
}

static void expect_frag_error(const char *body, const struct dt_node_frag_check *c, void *guest,
			      int err, const char *sub)
{
	char src[4096];
	snprintf(src, sizeof(src), "/dts-v1/;\n/ {\n%s\n};\n", body);
	size_t fn;
	void *fr = compile_dts_opt(src, &fn, true); /* some are broken on purpose */
	void *g = guest ? guest : guest_new();
	uint32_t gsz = fdt_totalsize(g);
	void *copy = malloc(gsz);
	assert_non_null(copy);
	memcpy(copy, g, gsz);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_result res;
	ASSERT_ERR(dt_node_add_fragment(g, GUEST_SIZE, fr, fn, c, &res, &d), &d, err, sub);
	assert_memory_equal(g, copy, gsz);
	assert_string_equal(res.name, "");
	free(copy);
	if (!guest)
		free(g);
	free(fr);
}

#define PL061_HEAD "pl061@9030000 { compatible = \"arm,pl061\"; "
#define PL061_REG "reg = <0 0x9030000 0 0x1000>; "

static void test_fragment_errors(void **state)
{
	(void)state;
	struct dt_node_frag_check c = pl061_check();
	expect_frag_error(PL061_HEAD "reg = <0 0x9030000 0 0x2000>; };", &c, NULL, -EINVAL,
			  "DT fragment node /pl061@9030000: reg entry 0 (0x9030000, 0x2000 bytes) is "
			  "not inside a region the VMM maps");
	expect_frag_error(PL061_HEAD "reg = <0 0x9031000 0 0x1000>; };", &c, NULL, -EINVAL,
			  "is not inside a region");
	expect_frag_error(PL061_HEAD "reg = <0 0x9030000 0 0>; };", &c, NULL, -EINVAL,
			  "is not inside a region");
	expect_frag_error(PL061_HEAD "reg = <0x9030000 0x1000>; };", &c, NULL, -EINVAL,
			  "reg has 8 bytes, not a positive multiple of 16");
	expect_frag_error(PL061_HEAD "}; ", &c, NULL, -EINVAL,
			  "No top-level node of the DT fragment has a reg property");
	expect_frag_error("", &c, NULL, -EINVAL, "The DT fragment has no node under its root");
	expect_frag_error("#address-cells = <1>; #size-cells = <1>; " PL061_HEAD
			  "reg = <0x9030000 0x1000>; };",
			  &c, NULL, -EINVAL, "#address-cells 1 / #size-cells 1; it must be 2/2");
	expect_frag_error("#size-cells = <1>; " PL061_HEAD PL061_REG "};", &c, NULL, -EINVAL,
			  "must be 2/2");
	expect_frag_error(PL061_HEAD PL061_REG "interrupts = <0 8 4>; };", &c, NULL, -EINVAL,
			  "interrupts uses SPI 8, which the VMM does not wire");
	expect_frag_error(PL061_HEAD PL061_REG "interrupts = <1 7 4>; };", &c, NULL, -EINVAL,
			  "interrupts has GIC type 1; only SPIs");
	expect_frag_error(PL061_HEAD PL061_REG "interrupts = <0 7>; };", &c, NULL, -EINVAL,
			  "property interrupts has a length that is not a multiple");
	expect_frag_error(PL061_HEAD PL061_REG "interrupt-parent = <5>; interrupts = <0 7 4>; };",
			  &c, NULL, -EINVAL,
			  "property interrupt-parent is neither the GIC (phandle 1) nor a node of "
			  "the fragment");
	expect_frag_error(PL061_HEAD PL061_REG "interrupts-extended = <1 0 9 4>; };", &c, NULL,
			  -EINVAL, "interrupts-extended uses SPI 9");
	expect_frag_error(PL061_HEAD PL061_REG "interrupts-extended = <1 0 7>; };", &c, NULL,
			  -EINVAL, "interrupts-extended is truncated");
	expect_frag_error(PL061_HEAD PL061_REG "interrupts-extended = <6 0 7 4>; };", &c, NULL,
			  -EINVAL, "interrupts-extended refers to a phandle that is neither");
	expect_frag_error(PL061_HEAD PL061_REG "interrupts-extended = [00 00 01]; };", &c, NULL,
			  -EINVAL, "interrupts-extended is not a positive multiple of 4 bytes");
	expect_frag_error(PL061_HEAD PL061_REG "clocks = [00 00 02]; };", &c, NULL, -EINVAL,
			  "property clocks is not a positive multiple of 4 bytes");
	expect_frag_error(PL061_HEAD PL061_REG "linux,phandle = [00 00 02 00 00]; };", &c, NULL,
			  -EINVAL, "property linux,phandle is not 4 bytes");
	expect_frag_error(PL061_HEAD PL061_REG "interrupts-extended = <0x100 3>; }; x { "
			  "phandle = <0x100>; interrupt-controller; };",
			  &c, NULL, -EINVAL, "property #interrupt-cells is missing");
	expect_frag_error(PL061_HEAD PL061_REG "clocks = <7>; };", &c, NULL, -EINVAL,
			  "clocks refers to a phandle that is neither the guest clock (2)");
	expect_frag_error(PL061_HEAD PL061_REG "clocks = <1>; };", &c, NULL, -EINVAL,
			  "clocks refers to a phandle");
	expect_frag_error(PL061_HEAD PL061_REG "phandle = <1>; };", &c, NULL, -EINVAL,
			  "phandle 1 is invalid or reserved");
	expect_frag_error(PL061_HEAD PL061_REG "phandle = <2>; };", &c, NULL, -EINVAL,
			  "phandle 2 is invalid or reserved");
	expect_frag_error(PL061_HEAD PL061_REG "phandle = <0x100>; }; x { phandle = <0x100>; };",
			  &c, NULL, -EINVAL, "phandle 256 is defined twice");
	expect_frag_error("pl011@9000000 { " PL061_REG "};", &c, NULL, -EEXIST,
			  "already has a node named pl011@9000000");
	/* a fragment provider with #clock-cells = <1> but no cell given */
	expect_frag_error(PL061_HEAD PL061_REG "clocks = <0x100>; }; c { #clock-cells = <1>; "
			  "phandle = <0x100>; };",
			  &c, NULL, -EINVAL, "clocks is truncated");
	expect_frag_error(PL061_HEAD PL061_REG "clocks = <0x100>; }; c { phandle = <0x100>; };", &c,
			  NULL, -EINVAL, "property #clock-cells is missing");

	/* a 2-byte interrupt-parent (dtc itself asserts on it, so built with libfdt) */
	void *bf = hb_new();
	cells(bf, "/", "#address-cells", 1, 2);
	cells(bf, "/", "#size-cells", 1, 2);
	add(bf, "/", "pl061@9030000");
	cells(bf, "/pl061@9030000", "reg", 4, 0, 0x9030000, 0, 0x1000);
	cells(bf, "/pl061@9030000", "interrupts", 3, 0, 7, 4);
	setp(bf, "/pl061@9030000", "interrupt-parent", "\0\1", 2);
	size_t bn;
	bf = finish(bf, &bn);
	void *bg = guest_new();
	struct dt_node_diag bd;
	dt_node_diag_init(&bd);
	ASSERT_ERR(dt_node_add_fragment(bg, GUEST_SIZE, bf, bn, &c, NULL, &bd), &bd, -EINVAL,
		   "DT fragment node /pl061@9030000: property interrupt-parent is not 4 bytes");
	free(bg);
	free(bf);

	/* phandle already in the guest: make one with a generated node */
	size_t n;
	void *h = virt_host(&n);
	void *g = guest_new();
	struct dt_node_map m = { .gic_phandle = 1, .clock_phandle = 2, .nr_regs = 1,
				 .node_phandle = 0x300 };
	m.reg_guest[0] = 0xc000000;
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, h, n, "/fw-cfg@9020000", &m, NULL, &d), 0);
	expect_frag_error(PL061_HEAD PL061_REG "phandle = <0x300>; };", &c, g, -EEXIST,
			  "phandle 768 is already used in the guest DT");
	free(g);
	free(h);
}

/* fragment checks against a guest lacking the conventional phandles */
static void test_fragment_guest_conventions(void **state)
{
	(void)state;
	struct dt_node_frag_check c = pl061_check();
	/* guest with a GIC (phandle 1) but no clock 2, and no root interrupt-parent */
	void *g = malloc(GUEST_SIZE);
	assert_int_equal(fdt_create_empty_tree(g, GUEST_SIZE), 0);
	cells(g, "/", "#address-cells", 1, 2);
	cells(g, "/", "#size-cells", 1, 2);
	add(g, "/", "intc");
	flag(g, "/intc", "interrupt-controller");
	cells(g, "/intc", "#interrupt-cells", 1, 3);
	cells(g, "/intc", "phandle", 1, 1);
	expect_frag_error(PL061_HEAD PL061_REG "clocks = <2>; };", &c, g, -EINVAL,
			  "The guest DT has no fixed clock (#clock-cells = 0) with phandle 2");
	expect_frag_error(PL061_HEAD PL061_REG "interrupts = <0 7 4>; };", &c, g, -EINVAL,
			  "property interrupts needs an interrupt-parent");
	/* explicit interrupt-parent works there */
	size_t fn;
	void *fr = compile_dts("/dts-v1/;\n/ { " PL061_HEAD PL061_REG
			       "interrupt-parent = <1>; interrupts = <0 7 4>; }; };\n",
			       &fn);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	assert_int_equal(dt_node_add_fragment(g, GUEST_SIZE, fr, fn, &c, NULL, &d), 0);
	free(fr);
	/* no GIC at all */
	void *g2 = malloc(GUEST_SIZE);
	assert_int_equal(fdt_create_empty_tree(g2, GUEST_SIZE), 0);
	cells(g2, "/", "#address-cells", 1, 2);
	cells(g2, "/", "#size-cells", 1, 2);
	expect_frag_error(PL061_HEAD PL061_REG "};", &c, g2, -EINVAL,
			  "The guest DT has no GIC (interrupt controller with 3 interrupt cells) "
			  "with phandle 1");
	free(g2);
	free(g);
}

static void test_fragment_bad_blobs(void **state)
{
	(void)state;
	struct dt_node_frag_check c = pl061_check();
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	size_t fn;
	void *fr = compile_dts(frag_pl061, &fn);
	ASSERT_ERR(dt_node_add_fragment(g, GUEST_SIZE, fr, fn - 4, &c, NULL, &d), &d, -EINVAL,
		   "The DT fragment blob is not a valid flattened device tree");
	ASSERT_ERR(dt_node_add_fragment(g, GUEST_SIZE, "hello", 6, &c, NULL, &d), &d, -EINVAL,
		   "DT fragment blob is not a valid");
	ASSERT_ERR(dt_node_add_fragment(g, GUEST_SIZE, NULL, 0, &c, NULL, &d), &d, -EINVAL,
		   "No DT fragment blob");
	ASSERT_ERR(dt_node_add_fragment(g, GUEST_SIZE, fr, fn, NULL, NULL, &d), &d, -EINVAL,
		   "missing argument");
	/* no room in the guest */
	ASSERT_ERR(dt_node_add_fragment(g, fdt_totalsize(g) + 64, fr, fn, &c, NULL, &d), &d,
		   -ENOSPC, "too small");
	free(fr);
	free(g);
}

/* everything together into one guest blob, then dtc */
static void test_dtc_combined(void **state)
{
	(void)state;
	size_t vn, on, fn;
	void *v = virt_host(&vn);
	void *o = orin_host(&on);
	void *g = guest_new();
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	struct dt_node_host hn;

	assert_int_equal(dt_node_parse_host(o, on, ORIN_UART, &hn, &d), 0);
	struct dt_node_map m = { .gic_phandle = 1, .nr_irqs = 1 };
	m.irq_guest_spi[0] = 40;
	dt_node_map_identity(&hn, &m);
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, o, on, ORIN_UART, &m, NULL, &d), 0);

	struct dt_node_map f = { .gic_phandle = 1, .nr_regs = 1 };
	f.reg_guest[0] = 0x9020000;
	assert_int_equal(dt_node_generate(g, GUEST_SIZE, v, vn, "/fw-cfg@9020000", &f, NULL, &d),
			 0);

	void *fr = compile_dts(frag_pl061, &fn);
	struct dt_node_frag_check c = pl061_check();
	assert_int_equal(dt_node_add_fragment(g, GUEST_SIZE, fr, fn, &c, NULL, &d), 0);
	at(g, "/serial@31d0000");
	at(g, "/serial-clk-31d0000");
	at(g, "/fw-cfg@9020000");
	at(g, "/pl061@9030000");
	at(g, "/gpio-keys/poweroff");
	assert_dtc_ok(g, "combined");
	free(fr);
	free(g);
	free(o);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_from_link),
		cmocka_unit_test(test_path_from_sysfs),
		cmocka_unit_test(test_parse_virt),
		cmocka_unit_test(test_parse_orin),
		cmocka_unit_test(test_parse_trigger_flags),
		cmocka_unit_test(test_parse_interrupts_extended),
		cmocka_unit_test(test_parse_inherited_interrupt_parent),
		cmocka_unit_test(test_parse_clock_details),
		cmocka_unit_test(test_generate_pl061_identity),
		cmocka_unit_test(test_generate_creates_fixed_clock),
		cmocka_unit_test(test_generate_fwcfg_window),
		cmocka_unit_test(test_map_window_placement),
		cmocka_unit_test(test_generate_orin_uart),
		cmocka_unit_test(test_generate_orin_identity_extra_phandle),
		cmocka_unit_test(test_generate_subnodes_status_intc),
		cmocka_unit_test(test_notes_overflow),
		cmocka_unit_test(test_host_errors_virt),
		cmocka_unit_test(test_host_errors_orin),
		cmocka_unit_test(test_host_bad_blobs),
		cmocka_unit_test(test_generate_errors),
		cmocka_unit_test(test_generate_twice),
		cmocka_unit_test(test_fragment_verbatim),
		cmocka_unit_test(test_fragment_interrupts_extended),
		cmocka_unit_test(test_fragment_minimal),
		cmocka_unit_test(test_fragment_errors),
		cmocka_unit_test(test_fragment_guest_conventions),
		cmocka_unit_test(test_fragment_bad_blobs),
		cmocka_unit_test(test_fragment_unterminated_name),
		cmocka_unit_test(test_fragment_slash_in_name),
		cmocka_unit_test(test_dtc_combined),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
