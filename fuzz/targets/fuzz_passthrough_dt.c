/* libFuzzer target: the passthrough device-tree code
 * (reference-vmm/src/passthrough/dt_node.c): host DT parsing (bus ranges, GIC
 * SPIs, clocks), guest placement, guest node generation into the DTB that
 * a64_fdt_build makes, user DT fragments, and sysfs of_node link parsing.
 *
 * Input format (little-endian, zero-padded):
 *   byte 0  mode  bits 0-1: 0..2 TEMPLATE (host DT and fragment are built with
 *                 libfdt from the description below, then k = bits 2-4 byte
 *                 mutations of the packed blobs), 3 RAW (the host DTB is the next
 *                 u16-length-prefixed bytes, the fragment the ones after)
 *   TEMPLATE host DT: root cells, GIC and clock shapes, 0-2 bus levels with
 *            cells and ranges, the device node (reg entries, interrupts or
 *            interrupts-extended, clocks, properties from an allow/deny/unknown
 *            list, a subnode), the node path (right, missing, relative)
 *   map      identity or a window (base, size, align), guest SPIs, GIC/clock/node
 *            phandles, clock rate, extra properties, guest buffer size
 *   fragment root cells, 1-3 nodes (reg inside/outside the mapped regions, SPIs
 *            in/out of the wired list, interrupt-parent, clocks, own phandles,
 *            subnodes), mutations
 *   link     an of_node link target (components from a list or raw) and a size
 * Checks: documented return codes and a non-empty error on failure; failed
 * generate/add_fragment leave the guest DTB byte-identical (transactional); a
 * successful one leaves a valid packed DTB (fdt_check_full) containing the node
 * with reg/interrupts as mapped and no dropped (phandle-carrying) or status
 * property; window placements stay in the window, keep page offsets, ascend;
 * parsed host nodes respect the DT_NODE_MAX_* limits and normalised triggers;
 * of_node paths are absolute and free of "//", "/./", "/../".
 */
#include "harness_env.h"
#include "fuzz_input.h"

#include "arch/aarch64/fdt.h"
#include "arch/aarch64/layout.h"
#include "passthrough/dt_node.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOB 0x4000
#define PH_CLK 0x8000
#define PH_GIC 0x8001
#define PH_DEV 0x8003
#define PH_OTHER 0x8004 /* a non-GIC interrupt controller */

static void *scratch; /* BLOB bytes, for building */

static void cells(void *f, int node, const char *prop, const uint32_t *v, int n)
{
	fdt32_t c[64];
	for (int i = 0; i < n && i < 64; i++)
		c[i] = cpu_to_fdt32(v[i]);
	fdt_setprop(f, node, prop, c, 4 * (n < 64 ? n : 64));
}

static void u32p(void *f, int node, const char *prop, uint32_t v)
{
	fdt_setprop_u32(f, node, prop, v);
}

/* put an address/size value into `n` cells (n = 0..3) */
static int put_val(uint32_t *out, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		out[i] = n - i > 2 ? 0 : (uint32_t)(v >> (32 * (n - 1 - i)));
	return (int)n;
}

static const char *const allow[] = { "compatible", "model", "reg-names", "clock-names",
				     "reg-io-width", "gpio-controller", "#gpio-cells",
				     "label", "dma-coherent", "interrupt-names" };
static const char *const deny[] = { "resets", "pinctrl-0", "iommus", "vdd-supply",
				    "reset-gpios", "power-domains", "dmas", "phys" };
static const char *const unknown[] = { "vendor,magic", "status", "linux,phandle",
					"interrupt-controller", "#interrupt-cells" };

/* Build the host DT; returns its packed size and writes the device path. */
static size_t build_host(struct fin *f, void *out, char *path, size_t pathlen)
{
	void *h = scratch;
	fdt_create_empty_tree(h, BLOB);
	uint8_t rc = fin_u8(f);
	static const uint32_t acs[4] = { 2, 1, 3, 0 }, scs[4] = { 2, 1, 0, 3 };
	uint32_t root_ac = acs[(rc >> 4) & 3 & ((rc & 0x80) ? 3 : 0)];
	uint32_t root_sc = scs[(rc >> 6) & 1 & ((rc & 0x80) ? 1 : 0)];
	if (!(rc & 1)) {
		u32p(h, 0, "#address-cells", root_ac);
		u32p(h, 0, "#size-cells", root_sc);
	}
	/* GIC */
	static const char *const gics[] = { "arm,gic-v3", "arm,gic-400", "arm,cortex-a15-gic",
					    "foo,irqchip" };
	uint8_t g = fin_u8(f);
	int gic = fdt_add_subnode(h, 0, "intc@8000000");
	fdt_setprop_string(h, gic, "compatible", gics[g & 3]);
	u32p(h, gic, "#interrupt-cells", (g & 4) ? 2 : 3);
	fdt_setprop(h, gic, "interrupt-controller", NULL, 0);
	u32p(h, gic, "phandle", PH_GIC);
	int other = fdt_add_subnode(h, 0, "gpio-intc");
	fdt_setprop(h, other, "interrupt-controller", NULL, 0);
	u32p(h, other, "#interrupt-cells", 2);
	u32p(h, other, "phandle", PH_OTHER);
	if (!(g & 8))
		u32p(h, 0, "interrupt-parent", PH_GIC);
	/* clock provider */
	uint8_t c = fin_u8(f);
	int clk = fdt_add_subnode(h, 0, "apb-pclk");
	fdt_setprop_string(h, clk, "compatible", "fixed-clock");
	u32p(h, clk, "#clock-cells", c & 3);
	if (c & 4)
		u32p(h, clk, "clock-frequency", fin_u32(f));
	u32p(h, clk, "phandle", PH_CLK);

	/* bus levels */
	int parent = 0;
	uint32_t pac = root_ac, psc = root_sc;
	size_t plen = 0;
	path[0] = 0;
	unsigned int levels = fin_u8(f) % 3;
	for (unsigned int l = 0; l < levels; l++) {
		uint8_t b = fin_u8(f);
		char name[32];
		if (l)
			snprintf(name, sizeof(name), "bus@%x", (unsigned int)(b >> 4) << 24);
		else
			snprintf(name, sizeof(name), "soc");
		int bus = fdt_add_subnode(h, parent, name);
		if (bus < 0)
			break;
		uint32_t ac = (b & 1) ? 1 : 2, sc = (b & 2) ? 1 : 2;
		u32p(h, bus, "#address-cells", ac);
		u32p(h, bus, "#size-cells", sc);
		uint32_t r[12];
		int n = 0;
		switch ((b >> 2) & 3) {
		case 0: /* empty: identity */
			fdt_setprop(h, bus, "ranges", NULL, 0);
			break;
		case 1: { /* child 0 → parent base, size */
			uint64_t base = (uint64_t)fin_u16(f) << 20;
			n += put_val(r + n, 0, ac);
			n += put_val(r + n, base, pac);
			n += put_val(r + n, 0x40000000, sc);
			cells(h, bus, "ranges", r, n);
			break;
		}
		case 2: /* missing */
			break;
		default: /* malformed length */
			r[0] = fin_u32(f);
			cells(h, bus, "ranges", r, 1 + (b >> 5));
			break;
		}
		plen += (size_t)snprintf(path + plen, pathlen - plen, "/%s", name);
		parent = bus;
		pac = ac;
		psc = sc;
	}

	/* the device */
	uint8_t d = fin_u8(f);
	uint64_t addr0 = ((uint64_t)fin_u16(f) << 12) | ((d & 0x80) ? fin_u8(f) : 0);
	char dname[48];
	snprintf(dname, sizeof(dname), "pl061@%llx", (unsigned long long)addr0);
	int dev = fdt_add_subnode(h, parent, dname);
	plen += (size_t)snprintf(path + plen, pathlen - plen, "/%s", dname);
	if (dev >= 0) {
		uint32_t r[64];
		int n = 0;
		unsigned int nreg = d & 3;
		if (d & 0x40)
			nreg += fin_u8(f) % 16; /* up to 18: past DT_NODE_MAX_REGS */
		for (unsigned int i = 0; i < nreg && n + 8 <= 64; i++) {
			n += put_val(r + n, addr0 + i * 0x1000ull, pac);
			n += put_val(r + n, (d & 0x20) ? fin_u32(f) : 0x1000, psc);
		}
		if (nreg)
			cells(h, dev, "reg", r, n + ((d & 0x10) ? 1 : 0)); /* maybe one cell too many */
		/* interrupts */
		uint8_t ir = fin_u8(f);
		unsigned int nirq = ir & 7;
		n = 0;
		for (unsigned int i = 0; i < nirq && n + 4 <= 64; i++) {
			uint8_t s = fin_u8(f);
			if (ir & 0x80) { /* interrupts-extended */
				r[n++] = (s & 0x80) ? PH_OTHER : PH_GIC;
			}
			r[n++] = (s & 0x40) ? 1 : 0;     /* PPI / SPI */
			r[n++] = (s & 0x20) ? fin_u16(f) : s & 31;
			r[n++] = (s & 0x10) ? 1 : (s & 8) ? 8 : 4;
		}
		if (nirq)
			cells(h, dev, (ir & 0x80) ? "interrupts-extended" : "interrupts", r,
			      n - ((ir & 0x40) ? 1 : 0));
		if (ir & 0x08)
			u32p(h, dev, "interrupt-parent", (ir & 0x10) ? PH_OTHER : PH_GIC);
		/* clocks */
		unsigned int ncl = (ir >> 5) & 3;
		n = 0;
		for (unsigned int i = 0; i < ncl; i++) {
			r[n++] = PH_CLK;
			for (unsigned int k = 0; k < (c & 3); k++)
				r[n++] = k;
		}
		if (ncl)
			cells(h, dev, "clocks", r, n);
		/* properties */
		uint8_t np = fin_u8(f) % 8;
		for (unsigned int i = 0; i < np; i++) {
			uint8_t s = fin_u8(f);
			const char *name = (s & 0xc0) == 0    ? allow[s % 10]
					   : (s & 0xc0) == 0x40 ? deny[s % 8]
								: unknown[s % 5];
			uint8_t val[16];
			size_t k = fin_bytes(f, val, s & 0x0f);
			fdt_setprop(h, dev, name, val, (int)k);
		}
		if (d & 0x08)
			u32p(h, dev, "phandle", PH_DEV);
		if (d & 0x04)
			fdt_add_subnode(h, dev, "child");
	}
	uint8_t p = fin_u8(f);
	if ((p & 0xf0) == 0xf0)
		snprintf(path, pathlen, (p & 1) ? "/nonexistent" : "pl061");
	fdt_pack(h);
	size_t size = fdt_totalsize(h);
	if (size > BLOB)
		size = BLOB;
	memcpy(out, h, size);
	return size;
}

/* k byte mutations of a packed blob (offset u16 % size, value) */
static void mutate(struct fin *f, uint8_t *b, size_t size, unsigned int k)
{
	for (unsigned int i = 0; i < k && size; i++) {
		uint16_t off = fin_u16(f);
		b[off % size] = fin_u8(f);
	}
}

static void check_fail(int r, const struct dt_node_diag *d, const char *what)
{
	FUZZ_CHECK(r == -EINVAL || r == -EEXIST || r == -ENOSPC || r == -ENOMEM,
		   "%s returned %d", what, r);
	FUZZ_CHECK(d->error[0], "%s failed (%d) without an error message", what, r);
}

static uint32_t be32(const void *p)
{
	return fdt32_to_cpu(*(const fdt32_t *)p);
}

static void check_generated(const uint8_t *guest, size_t bufsize, const struct dt_node_host *host,
			    const struct dt_node_map *map, const struct dt_node_result *res)
{
	FUZZ_CHECK(fdt_check_full(guest, bufsize) == 0, "guest DTB invalid after generate");
	FUZZ_CHECK(fdt_totalsize(guest) <= bufsize, "guest DTB larger than its buffer");
	char p[DT_NODE_NAME_MAX + 2];
	snprintf(p, sizeof(p), "/%s", res->name);
	int node = fdt_path_offset(guest, p);
	FUZZ_CHECK(node >= 0, "generated node %s not found", p);
	int len;
	const uint8_t *reg = fdt_getprop(guest, node, "reg", &len);
	FUZZ_CHECK(reg && len == (int)(16 * host->nr_regs), "reg of %s: %d bytes", p, len);
	for (unsigned int i = 0; i < host->nr_regs; i++) {
		uint64_t a = (uint64_t)be32(reg + 16 * i) << 32 | be32(reg + 16 * i + 4);
		uint64_t s = (uint64_t)be32(reg + 16 * i + 8) << 32 | be32(reg + 16 * i + 12);
		FUZZ_CHECK(a == map->reg_guest[i] && s == host->regs[i].size, "reg %u of %s", i, p);
	}
	const uint8_t *irq = fdt_getprop(guest, node, "interrupts", &len);
	if (host->nr_irqs) {
		FUZZ_CHECK(irq && len == (int)(12 * host->nr_irqs), "interrupts of %s", p);
		for (unsigned int i = 0; i < host->nr_irqs; i++)
			FUZZ_CHECK(be32(irq + 12 * i) == 0 &&
					   be32(irq + 12 * i + 4) == map->irq_guest_spi[i] &&
					   be32(irq + 12 * i + 8) == host->irqs[i].trigger,
				   "interrupt %u of %s", i, p);
	}
	/* dropped unless the caller asked for them by name (map->extra_props) */
	for (unsigned int i = 0; i < sizeof(deny) / sizeof(deny[0]) + 1; i++) {
		const char *name = i < sizeof(deny) / sizeof(deny[0]) ? deny[i] : "status";
		bool asked = false;
		for (const char *const *e = map->extra_props; e && *e; e++)
			asked |= strcmp(*e, name) == 0;
		if (!asked)
			FUZZ_CHECK(!fdt_getprop(guest, node, name, NULL), "%s copied into %s", name, p);
	}
}

static void link_op(struct fin *f)
{
	static const char *const comp[] = { "..", "firmware", "devicetree", "base", "bus@0",
					    "serial@31d0000", ".", "", "sys", "a@b" };
	char target[256], path[128];
	size_t n = 0;
	uint8_t k = fin_u8(f);
	if (k & 0x80) { /* raw */
		size_t got;
		const uint8_t *p = fin_take(f, k & 0x7f, &got);
		got = strnlen((const char *)p, got);
		memcpy(target, p, got);
		n = got;
	} else {
		if (k & 1)
			n += (size_t)snprintf(target + n, sizeof(target) - n, "/sys");
		for (unsigned int i = 0; i < (k >> 1) % 12 && n < sizeof(target) - 32; i++)
			n += (size_t)snprintf(target + n, sizeof(target) - n, "%s%s",
					      (n || (k & 1)) ? "/" : "", comp[fin_u8(f) % 10]);
	}
	target[n] = 0;
	size_t size = 1 + fin_u8(f) % sizeof(path);
	struct dt_node_diag d;
	dt_node_diag_init(&d);
	int r = dt_node_path_from_link(target, path, size, &d);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENAMETOOLONG, "path_from_link: %d", r);
	if (r)
		return;
	FUZZ_CHECK(path[0] == '/' && strlen(path) < size, "of_node path '%s'", path);
	FUZZ_CHECK(!strstr(path, "//") && !strstr(path, "/./") && !strstr(path, "/../"),
		   "of_node path '%s' not normalised", path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t host_blob[BLOB], frag_blob[BLOB];
	static uint8_t guest[A64_FDT_BUF_SIZE], copy[A64_FDT_BUF_SIZE];
	static char path[512];
	struct fin f;
	struct dt_node_diag d;
	struct dt_node_host host;
	struct dt_node_map map;
	struct dt_node_result res;

	if (!scratch && !(scratch = malloc(BLOB)))
		return 0;
	fin_init(&f, data, size);
	uint8_t mode = fin_u8(&f);
	bool raw = (mode & 3) == 3;
	unsigned int muts = (mode >> 2) & 7;

	link_op(&f);

	size_t host_size;
	if (raw) {
		host_size = fin_u16(&f) % BLOB;
		host_size = fin_bytes(&f, host_blob, host_size);
		snprintf(path, sizeof(path), "/soc/pl061@9030000");
	} else {
		host_size = build_host(&f, host_blob, path, sizeof(path));
		mutate(&f, host_blob, host_size, muts);
	}
	/* an exact-size copy: ASan sees any read past the blob */
	uint8_t *hb = malloc(host_size ? host_size : 1);
	if (!hb)
		return 0;
	memcpy(hb, host_blob, host_size);

	dt_node_diag_init(&d); /* fresh per call: check_fail looks at d.error */
	memset(&host, 0, sizeof(host));
	int r = dt_node_parse_host(hb, host_size, path, &host, &d);
	FUZZ_TRACE("parse_host %s (%zu bytes) -> %d %s\n", path, host_size, r, d.error);
	if (r) {
		check_fail(r, &d, "parse_host");
	} else {
		FUZZ_CHECK(host.nr_regs >= 1 && host.nr_regs <= DT_NODE_MAX_REGS &&
				   host.nr_irqs <= DT_NODE_MAX_IRQS &&
				   host.nr_clocks <= DT_NODE_MAX_CLOCKS,
			   "host node counts %u/%u/%u", host.nr_regs, host.nr_irqs, host.nr_clocks);
		for (unsigned int i = 0; i < host.nr_irqs; i++)
			FUZZ_CHECK(host.irqs[i].trigger == DT_NODE_IRQ_EDGE_RISING ||
					   host.irqs[i].trigger == DT_NODE_IRQ_LEVEL_HIGH,
				   "trigger %u", host.irqs[i].trigger);
	}

	/* placement */
	memset(&map, 0, sizeof(map));
	uint8_t m = fin_u8(&f);
	if (!r) {
		if (m & 1) {
			dt_node_map_identity(&host, &map);
			FUZZ_CHECK(map.nr_regs == host.nr_regs, "identity map");
		} else {
			uint64_t base = (m & 2) ? 0x0c000000ull : fin_u64(&f);
			uint64_t wsize = (m & 4) ? 0x02000000ull : fin_u64(&f);
			uint64_t align = (m & 8) ? 4096 : 1ull << (fin_u8(&f) % 40);
			dt_node_diag_init(&d);
			int w = dt_node_map_window(&host, base, wsize, align, &map, &d);
			FUZZ_CHECK(w == 0 || w == -EINVAL || w == -ENOSPC, "map_window: %d", w);
			if (w == 0) {
				FUZZ_CHECK(map.nr_regs == host.nr_regs, "window map count");
				for (unsigned int i = 0; i < map.nr_regs; i++) {
					uint64_t g = map.reg_guest[i], s = host.regs[i].size;
					FUZZ_CHECK(g >= base && g - base <= wsize && s <= wsize - (g - base),
						   "region %u outside the window", i);
					FUZZ_CHECK(g % align == host.regs[i].addr % align,
						   "region %u lost its offset", i);
					FUZZ_CHECK(!i || g >= map.reg_guest[i - 1] + host.regs[i - 1].size,
						   "regions %u/%u overlap or descend", i - 1, i);
				}
			} else {
				map.nr_regs = host.nr_regs;
				for (unsigned int i = 0; i < map.nr_regs; i++)
					map.reg_guest[i] = 0x0c000000ull + 0x10000ull * i;
			}
		}
		map.nr_irqs = (m & 0x10) ? fin_u8(&f) % 20 : host.nr_irqs;
		for (unsigned int i = 0; i < map.nr_irqs && i < DT_NODE_MAX_IRQS; i++) {
			uint8_t s = fin_u8(&f);
			map.irq_guest_spi[i] = (s == 0xff) ? DT_NODE_MAX_SPI + 1 : 40u + s + 16 * i;
		}
		uint8_t ph = fin_u8(&f);
		map.gic_phandle = (ph & 1) ? 7 : A64_FDT_PHANDLE_GIC;
		map.clock_phandle = (ph & 2) ? 0 : (ph & 4) ? 9 : A64_FDT_PHANDLE_APB_CLK;
		map.clock_hz = (ph & 8) ? fin_u32(&f) : 0;
		map.node_phandle = (ph & 0x10) ? ((ph & 0x20) ? A64_FDT_PHANDLE_GIC : 0x77) : 0;
		static const char *const extra[] = { "vendor,magic", "resets", "status", NULL };
		map.extra_props = (ph & 0x40) ? extra + ((ph >> 7) & 1) : NULL;
	}

	/* the guest DTB and the generated node */
	struct a64_fdt_params fp = { .nr_vcpus = 1, .ram_base = A64_RAM_BASE,
				     .ram_size = 256ull << 20 };
	FUZZ_CHECK(a64_fdt_build(guest, sizeof(guest), &fp) == 0, "a64_fdt_build");
	uint8_t bs = fin_u8(&f);
	size_t bufsize = (bs & 0x80) ? fdt_totalsize(guest) + (bs & 0x7f) * 8 : sizeof(guest);
	memcpy(copy, guest, sizeof(guest));
	if (!r) {
		memset(&res, 0, sizeof(res));
		dt_node_diag_init(&d);
		int g = dt_node_generate(guest, bufsize, hb, host_size, path, &map, &res, &d);
		FUZZ_TRACE("generate -> %d %s %s\n", g, res.name, d.error);
		if (g) {
			check_fail(g, &d, "generate");
			FUZZ_CHECK(memcmp(guest, copy, sizeof(guest)) == 0,
				   "failed generate (%d) changed the guest DTB", g);
		} else {
			check_generated(guest, bufsize, &host, &map, &res);
		}
	}

	/* a user fragment, on a fresh guest */
	memcpy(guest, copy, sizeof(guest));
	size_t frag_size;
	struct dt_node_frag_check chk = { .nr_regions = 1,
					  .regions = { { 0x09030000, 0x1000 } },
					  .nr_spis = 2,
					  .spis = { 7, 8 } };
	if (raw) {
		frag_size = fin_bytes(&f, frag_blob, fin_u16(&f) % BLOB);
	} else {
		void *fr = scratch;
		fdt_create_empty_tree(fr, BLOB);
		uint8_t rc = fin_u8(&f);
		if (!(rc & 1)) {
			u32p(fr, 0, "#address-cells", (rc & 2) ? 1 : 2);
			u32p(fr, 0, "#size-cells", 2);
		}
		unsigned int nodes = 1 + (rc >> 2) % 3;
		for (unsigned int i = 0; i < nodes; i++) {
			uint8_t s = fin_u8(&f);
			char name[32];
			if (s & 0x80)
				snprintf(name, sizeof(name), "pl011@9000000");
			else
				snprintf(name, sizeof(name), "dev%u@9030000", i);
			int n = fdt_add_subnode(fr, 0, name);
			if (n < 0)
				continue;
			if (!(s & 1)) {
				uint64_t a = (s & 2) ? 0x09030000 + ((uint64_t)fin_u8(&f) << 8) : 0x09030000;
				uint32_t reg[4] = { (uint32_t)(a >> 32), (uint32_t)a, 0,
						    (s & 4) ? 0x2000 : 0x1000 };
				cells(fr, n, "reg", reg, (s & 0x40) ? 3 : 4);
			}
			if (s & 8)
				u32p(fr, n, "interrupt-parent", (s & 0x10) ? 5 : DT_NODE_FRAG_PHANDLE_GIC);
			if (s & 0x20) {
				uint32_t irq[3] = { 0, (fin_u8(&f) & 1) ? 9 : 7, 4 };
				cells(fr, n, "interrupts", irq, 3);
			}
			uint8_t t = fin_u8(&f);
			if (t & 1)
				u32p(fr, n, "clocks", (t & 2) ? 3 : DT_NODE_FRAG_PHANDLE_CLOCK);
			if (t & 4)
				u32p(fr, n, "phandle", (t & 8) ? DT_NODE_FRAG_PHANDLE_GIC : 0x40 + i);
			if (t & 0x10) {
				uint32_t ext[4] = { DT_NODE_FRAG_PHANDLE_GIC, 0, 8, 4 };
				cells(fr, n, "interrupts-extended", ext, (t & 0x20) ? 4 : 3);
			}
			if (t & 0x40)
				fdt_add_subnode(fr, n, "sub");
			fdt_setprop_string(fr, n, "compatible", "arm,pl061");
		}
		fdt_pack(fr);
		frag_size = fdt_totalsize(fr);
		memcpy(frag_blob, fr, frag_size);
		mutate(&f, frag_blob, frag_size, muts);
	}
	uint8_t *fb = malloc(frag_size ? frag_size : 1);
	if (fb) {
		memcpy(fb, frag_blob, frag_size);
		memset(&res, 0, sizeof(res));
		dt_node_diag_init(&d);
		int a = dt_node_add_fragment(guest, bufsize, fb, frag_size, &chk, &res, &d);
		FUZZ_TRACE("add_fragment -> %d %s %s\n", a, res.name, d.error);
		if (a) {
			check_fail(a, &d, "add_fragment");
			FUZZ_CHECK(memcmp(guest, copy, sizeof(guest)) == 0,
				   "failed add_fragment (%d) changed the guest DTB", a);
		} else {
			FUZZ_CHECK(fdt_check_full(guest, bufsize) == 0, "guest invalid after fragment");
			char p[DT_NODE_NAME_MAX + 2];
			snprintf(p, sizeof(p), "/%s", res.name);
			FUZZ_CHECK(fdt_path_offset(guest, p) >= 0, "fragment node %s missing", p);
		}
		free(fb);
	}
	dt_node_diag_log(&d, fuzz_log(), "fuzz");
	free(hb);
	return 0;
}
