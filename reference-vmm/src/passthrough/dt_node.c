/* Host DT → guest DT node of a passed-through device: host node parsing (reg through
 * bus ranges, GIC SPIs, clocks), the property allow/drop tables, node generation, and
 * user fragments. Every DT read is a libfdt accessor followed by a length check. */
#include "passthrough/dt_node.h"
#include "core/log.h"

#include <errno.h>
#include <libfdt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEPTH 64     /* ancestor walks and interrupt-parent chains */
#define MAX_NODE_PROPS 128 /* properties one generated or copied node may carry */

/* ---- diagnostics ---------------------------------------------------------------- */

void dt_node_diag_init(struct dt_node_diag *d)
{
	if (d)
		memset(d, 0, sizeof(*d));
}

static void diag_start(struct dt_node_diag *d)
{
	if (d)
		d->error[0] = '\0';
}

/* Record the first error of a call (inner errors are the precise ones) and return err. */
__attribute__((format(printf, 3, 4))) static int fail(struct dt_node_diag *d, int err,
						     const char *fmt, ...)
{
	if (d && !d->error[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->error, sizeof(d->error), fmt, ap);
		va_end(ap);
	}
	return err;
}

__attribute__((format(printf, 3, 4))) static void note(struct dt_node_diag *d,
						      enum dt_node_note_level lvl,
						      const char *fmt, ...)
{
	if (!d)
		return;
	if (d->nr_notes >= DT_NODE_MAX_NOTES) {
		d->nr_lost++;
		return;
	}
	struct dt_node_note *n = &d->notes[d->nr_notes++];
	n->level = lvl;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(n->text, sizeof(n->text), fmt, ap);
	va_end(ap);
}

void dt_node_diag_log(const struct dt_node_diag *d, const struct log *lg, const char *prefix)
{
	if (!d)
		return;
	const char *pre = prefix ? prefix : "";
	for (unsigned int i = 0; i < d->nr_notes && i < DT_NODE_MAX_NOTES; i++)
		log_msg(lg, d->notes[i].level == DT_NODE_NOTE_WARN ? LOG_WARN : LOG_DEBUG, "%s%s",
			pre, d->notes[i].text);
	if (d->nr_lost)
		log_warn(lg, "%s%u more device-tree notes were not recorded", pre, d->nr_lost);
}

/* libfdt error while editing the guest blob → errno, with a sentence. */
static int guest_err(struct dt_node_diag *d, int r, const char *what)
{
	if (r == -FDT_ERR_NOSPACE)
		return fail(d, -ENOSPC, "The guest DT buffer is too small to add %s.", what);
	if (r == -FDT_ERR_EXISTS)
		return fail(d, -EEXIST, "The guest DT already has a node named %s.", what);
	return fail(d, -EINVAL, "Adding %s to the guest DT failed: %s.", what, fdt_strerror(r));
}

/* ---- small readers ---------------------------------------------------------------- */

static void path_of(const void *fdt, int off, char *buf, size_t len)
{
	if (fdt_get_path(fdt, off, buf, (int)len) < 0)
		snprintf(buf, len, "<node at offset %d>", off);
}

/* 1 or 2 big-endian cells → value (n was validated to be 1..2). */
static uint64_t cells_val(const fdt32_t *p, uint32_t n)
{
	uint64_t v = fdt32_ld(p);
	if (n == 2)
		v = v << 32 | fdt32_ld(p + 1);
	return v;
}

/*
 * A one-cell property of node `off` (e.g. #address-cells): absent → *present = false
 * and *out = dflt; present → exactly 4 bytes. `who` prefixes the error ("host DT").
 */
static int read_u32(const void *fdt, int off, const char *name, uint32_t dflt, uint32_t *out,
		    bool *present, const char *who, struct dt_node_diag *d)
{
	int len;
	const fdt32_t *v = fdt_getprop(fdt, off, name, &len);
	char p[DT_NODE_PATH_MAX];
	if (!v) {
		if (len != -FDT_ERR_NOTFOUND) {
			path_of(fdt, off, p, sizeof(p));
			return fail(d, -EINVAL, "%s node %s: property %s cannot be read (%s).", who,
				    p, name, fdt_strerror(len));
		}
		*out = dflt;
		if (present)
			*present = false;
		return 0;
	}
	if (len != 4) {
		path_of(fdt, off, p, sizeof(p));
		return fail(d, -EINVAL, "%s node %s: property %s has %d bytes, not 4.", who, p,
			    name, len);
	}
	*out = fdt32_ld(v);
	if (present)
		*present = true;
	return 0;
}

/* #address-cells / #size-cells of a bus, in lo..hi (DT spec defaults when absent). */
static int bus_cells(const void *fdt, int bus, const char *name, uint32_t dflt, uint32_t lo,
		     uint32_t hi, uint32_t *out, const char *who, struct dt_node_diag *d)
{
	int r = read_u32(fdt, bus, name, dflt, out, NULL, who, d);
	if (r)
		return r;
	if (*out < lo || *out > hi) {
		char p[DT_NODE_PATH_MAX];
		path_of(fdt, bus, p, sizeof(p));
		return fail(d, -EINVAL, "%s node %s: %s = %u is not supported (must be %u..%u).",
			    who, p, name, *out, lo, hi);
	}
	return 0;
}

/* Optional property that may be absent; present but unreadable is an error. */
static const void *get_opt(const void *fdt, int off, const char *name, int *len, int *err,
			   const char *who, struct dt_node_diag *d)
{
	const void *v = fdt_getprop(fdt, off, name, len);
	*err = 0;
	if (!v && *len != -FDT_ERR_NOTFOUND) {
		char p[DT_NODE_PATH_MAX];
		path_of(fdt, off, p, sizeof(p));
		*err = fail(d, -EINVAL, "%s node %s: property %s cannot be read (%s).", who, p,
			    name, fdt_strerror(*len));
	}
	if (!v)
		*len = 0;
	return v;
}

/* ---- sysfs of_node link → DT path --------------------------------------------------- */

int dt_node_path_from_link(const char *target, char *path, size_t size, struct dt_node_diag *d)
{
	static const char key[] = "firmware/devicetree/base";
	diag_start(d);
	if (!target || !path || !size)
		return fail(d, -EINVAL, "dt_node_path_from_link: missing argument.");
	const char *rest = NULL;
	for (const char *p = target; (p = strstr(p, key)) != NULL; p++) {
		char after = p[sizeof(key) - 1];
		if ((p == target || p[-1] == '/') && (after == '\0' || after == '/')) {
			rest = p + sizeof(key) - 1;
			break;
		}
	}
	if (!rest)
		return fail(d, -EINVAL,
			    "The of_node link target \"%s\" does not point into "
			    "/sys/firmware/devicetree/base.",
			    target);
	size_t n = 0;
	const char *s = rest;
	while (*s) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
			return fail(d, -EINVAL,
				    "The of_node link target \"%s\" has a \".\" or \"..\" component "
				    "inside the device tree.",
				    target);
		if (len + 2 > size - n)
			return fail(d, -ENAMETOOLONG,
				    "The DT path of of_node link target \"%s\" is longer than %zu "
				    "bytes.",
				    target, size);
		path[n++] = '/';
		memcpy(path + n, s, len);
		n += len;
		s += len;
	}
	if (n == 0) {
		if (size < 2)
			return fail(d, -ENAMETOOLONG, "No room for the DT path \"/\".");
		path[n++] = '/';
	}
	path[n] = '\0';
	return 0;
}

int dt_node_path_from_sysfs(const char *dev_dir, char *path, size_t size, struct dt_node_diag *d)
{
	diag_start(d);
	if (!dev_dir || !path || !size)
		return fail(d, -EINVAL, "dt_node_path_from_sysfs: missing argument.");
	char link[PATH_MAX];
	char target[PATH_MAX];
	if ((size_t)snprintf(link, sizeof(link), "%s/of_node", dev_dir) >= sizeof(link))
		return fail(d, -ENAMETOOLONG, "The sysfs device path %s is too long.", dev_dir);
	ssize_t r = readlink(link, target, sizeof(target) - 1);
	if (r < 0) {
		int e = errno;
		return fail(d, -e,
			    "Cannot read %s: %s (a device without it has no device-tree node).",
			    link, strerror(e));
	}
	if ((size_t)r >= sizeof(target) - 1)
		return fail(d, -ENAMETOOLONG, "The of_node link %s is too long.", link);
	target[r] = '\0';
	return dt_node_path_from_link(target, path, size, d);
}

/* ---- host node parsing --------------------------------------------------------------- */

static const char *const gic_compat[] = {
	"arm,gic-v3", "arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a9-gic", "arm,cortex-a7-gic",
};

static bool is_gic(const void *fdt, int off)
{
	if (!fdt_getprop(fdt, off, "interrupt-controller", NULL))
		return false;
	for (size_t i = 0; i < sizeof(gic_compat) / sizeof(gic_compat[0]); i++)
		if (fdt_node_check_compatible(fdt, off, gic_compat[i]) == 0)
			return true;
	return false;
}

/* The GIC at `ctl` must say #interrupt-cells = 3. */
static int gic_cells_ok(const void *fdt, int ctl, struct dt_node_diag *d)
{
	uint32_t n;
	bool present;
	int r = read_u32(fdt, ctl, "#interrupt-cells", 0, &n, &present, "host DT", d);
	if (r)
		return r;
	if (!present || n != 3) {
		char p[DT_NODE_PATH_MAX];
		path_of(fdt, ctl, p, sizeof(p));
		return fail(d, -EINVAL, "host DT node %s: the GIC's #interrupt-cells is not 3.", p);
	}
	return 0;
}

/*
 * Translate [*addr, +size) of a device whose parent bus is `bus` to a CPU physical
 * address: through every ancestor's `ranges` up to the root.
 */
static int translate(const void *fdt, int bus, uint64_t *addr, uint64_t size, const char *npath,
		     unsigned int idx, struct dt_node_diag *d)
{
	char bp[DT_NODE_PATH_MAX];
	for (int depth = 0; bus != 0; depth++) {
		if (depth > MAX_DEPTH)
			return fail(d, -EINVAL, "host DT node %s is nested too deeply.", npath);
		int up = fdt_parent_offset(fdt, bus);
		if (up < 0)
			return fail(d, -EINVAL, "host DT node %s: cannot find the parent of a bus.",
				    npath);
		int len;
		const fdt32_t *rg = fdt_getprop(fdt, bus, "ranges", &len);
		if (!rg) {
			path_of(fdt, bus, bp, sizeof(bp));
			return fail(d, -EINVAL,
				    "host DT node %s (an ancestor of %s) has no ranges property, so "
				    "its addresses are not CPU addresses.",
				    bp, npath);
		}
		if (len > 0) {
			uint32_t cac, csc, pac;
			int r = bus_cells(fdt, bus, "#address-cells", 2, 1, 2, &cac, "host DT", d);
			r = r ? r : bus_cells(fdt, bus, "#size-cells", 1, 1, 2, &csc, "host DT", d);
			r = r ? r : bus_cells(fdt, up, "#address-cells", 2, 1, 2, &pac, "host DT", d);
			if (r)
				return r;
			uint32_t ent = cac + pac + csc;
			if (len % (int)(ent * 4)) {
				path_of(fdt, bus, bp, sizeof(bp));
				return fail(d, -EINVAL,
					    "host DT node %s: property ranges has %d bytes, not a "
					    "multiple of %u.",
					    bp, len, ent * 4);
			}
			bool found = false;
			for (int i = 0; i < len / (int)(ent * 4); i++) {
				const fdt32_t *e = rg + (size_t)i * ent;
				uint64_t cb = cells_val(e, cac);
				uint64_t pb = cells_val(e + cac, pac);
				uint64_t rs = cells_val(e + cac + pac, csc);
				if (*addr < cb || *addr - cb > rs || size > rs - (*addr - cb))
					continue;
				uint64_t na = pb + (*addr - cb);
				if (na < pb)
					break;
				*addr = na;
				found = true;
				break;
			}
			if (!found) {
				path_of(fdt, bus, bp, sizeof(bp));
				return fail(d, -EINVAL,
					    "host DT node %s: reg entry %u (0x%llx, 0x%llx bytes) lies "
					    "outside every ranges entry of bus %s.",
					    npath, idx, (unsigned long long)*addr,
					    (unsigned long long)size, bp);
			}
		}
		bus = up;
	}
	return 0;
}

/* Normalise one 3-cell GIC specifier into o. */
static int host_irq(const fdt32_t *c, const char *npath, unsigned int idx,
		    struct dt_node_host_irq *o, struct dt_node_diag *d)
{
	uint32_t type = fdt32_ld(c), num = fdt32_ld(c + 1), fl = fdt32_ld(c + 2);
	if (type == 1)
		return fail(d, -EINVAL,
			    "host DT node %s: interrupt %u is a PPI (per-CPU), which cannot be "
			    "passed through.",
			    npath, idx);
	if (type != 0)
		return fail(d, -EINVAL,
			    "host DT node %s: interrupt %u has GIC type %u; only SPIs (type 0) can "
			    "be passed through.",
			    npath, idx, type);
	if (num > DT_NODE_MAX_SPI)
		return fail(d, -EINVAL, "host DT node %s: interrupt %u is SPI %u, beyond the GIC's %u.",
			    npath, idx, num, DT_NODE_MAX_SPI);
	uint32_t sense = fl & 0xf;
	bool edge = sense & 0x3, level = sense & 0xc;
	if (edge && level)
		return fail(d, -EINVAL,
			    "host DT node %s: interrupt %u has trigger flags 0x%x mixing edge and "
			    "level.",
			    npath, idx, fl);
	o->spi = num;
	o->flags = fl;
	o->trigger = edge ? DT_NODE_IRQ_EDGE_RISING : DT_NODE_IRQ_LEVEL_HIGH;
	if (!sense)
		note(d, DT_NODE_NOTE_WARN,
		     "host DT node %s: interrupt %u (SPI %u) has no trigger type; level-high "
		     "assumed",
		     npath, idx, num);
	else if (sense == 0x2 || sense == 0x8)
		note(d, DT_NODE_NOTE_DEBUG,
		     "host DT node %s: interrupt %u (SPI %u) is active-low/falling on the host; "
		     "the guest sees it active-high/rising (VFIO signals the event)",
		     npath, idx, num);
	return 0;
}

/* Walk up like Linux's of_irq_find_parent: interrupt-parent or the parent node, until a
 * node with #interrupt-cells. */
static int host_irq_parent(const void *fdt, int node, const char *npath, int *out,
			   struct dt_node_diag *d)
{
	int child = node;
	for (int hops = 0; hops < MAX_DEPTH; hops++) {
		int len, p;
		const fdt32_t *v = fdt_getprop(fdt, child, "interrupt-parent", &len);
		if (v) {
			char cp[DT_NODE_PATH_MAX];
			if (len != 4) {
				path_of(fdt, child, cp, sizeof(cp));
				return fail(d, -EINVAL,
					    "host DT node %s: property interrupt-parent has %d bytes, "
					    "not 4.",
					    cp, len);
			}
			p = fdt_node_offset_by_phandle(fdt, fdt32_ld(v));
			if (p < 0) {
				path_of(fdt, child, cp, sizeof(cp));
				return fail(d, -EINVAL,
					    "host DT node %s: interrupt-parent refers to phandle "
					    "0x%x, which no node has.",
					    cp, fdt32_ld(v));
			}
		} else {
			p = fdt_parent_offset(fdt, child);
			if (p < 0)
				return fail(d, -EINVAL,
					    "host DT node %s has interrupts but no interrupt parent.",
					    npath);
		}
		if (fdt_getprop(fdt, p, "#interrupt-cells", NULL)) {
			*out = p;
			return 0;
		}
		child = p;
	}
	return fail(d, -EINVAL, "host DT node %s: the interrupt-parent chain loops.", npath);
}

static int host_not_gic(const void *fdt, int ctl, const char *npath, const char *prop,
			struct dt_node_diag *d)
{
	char cp[DT_NODE_PATH_MAX];
	path_of(fdt, ctl, cp, sizeof(cp));
	return fail(d, -EINVAL,
		    "host DT node %s: %s go to %s, which is not the GIC; only GIC interrupts can "
		    "be passed through.",
		    npath, prop, cp);
}

static int parse_irqs(const void *fdt, int node, const char *npath, struct dt_node_host *out,
		      struct dt_node_diag *d)
{
	int elen, len, r;
	const fdt32_t *ext = get_opt(fdt, node, "interrupts-extended", &elen, &r, "host DT", d);
	if (r)
		return r;
	const fdt32_t *v = get_opt(fdt, node, "interrupts", &len, &r, "host DT", d);
	if (r)
		return r;
	if (ext) {
		if (elen == 0 || elen % 4)
			return fail(d, -EINVAL,
				    "host DT node %s: property interrupts-extended has %d bytes, not "
				    "a positive multiple of 4.",
				    npath, elen);
		unsigned int n = (unsigned int)elen / 4;
		for (unsigned int i = 0; i < n; i += 4) {
			uint32_t ph = fdt32_ld(ext + i);
			int ctl = fdt_node_offset_by_phandle(fdt, ph);
			if (ctl < 0)
				return fail(d, -EINVAL,
					    "host DT node %s: interrupts-extended entry %u refers to "
					    "phandle 0x%x, which no node has.",
					    npath, out->nr_irqs, ph);
			if (!is_gic(fdt, ctl))
				return host_not_gic(fdt, ctl, npath, "interrupts-extended", d);
			if ((r = gic_cells_ok(fdt, ctl, d)))
				return r;
			if (n - i - 1 < 3)
				return fail(d, -EINVAL,
					    "host DT node %s: property interrupts-extended is "
					    "truncated (entry %u has fewer than 3 cells).",
					    npath, out->nr_irqs);
			if (out->nr_irqs >= DT_NODE_MAX_IRQS)
				return fail(d, -EINVAL,
					    "host DT node %s has more than %u interrupts.", npath,
					    DT_NODE_MAX_IRQS);
			r = host_irq(ext + i + 1, npath, out->nr_irqs, &out->irqs[out->nr_irqs], d);
			if (r)
				return r;
			out->nr_irqs++;
		}
		if (v)
			note(d, DT_NODE_NOTE_DEBUG,
			     "host DT node %s: interrupts ignored, interrupts-extended takes "
			     "precedence",
			     npath);
		return 0;
	}
	if (!v)
		return 0;
	int ctl = 0;
	if ((r = host_irq_parent(fdt, node, npath, &ctl, d)))
		return r;
	if (!is_gic(fdt, ctl))
		return host_not_gic(fdt, ctl, npath, "interrupts", d);
	if ((r = gic_cells_ok(fdt, ctl, d)))
		return r;
	if (len == 0 || len % 12)
		return fail(d, -EINVAL,
			    "host DT node %s: property interrupts has %d bytes, not a positive "
			    "multiple of 12 (3-cell GIC specifiers).",
			    npath, len);
	if (len / 12 > DT_NODE_MAX_IRQS)
		return fail(d, -EINVAL, "host DT node %s has more than %u interrupts.", npath,
			    DT_NODE_MAX_IRQS);
	for (int i = 0; i < len / 12; i++) {
		r = host_irq(v + 3 * i, npath, (unsigned int)i, &out->irqs[i], d);
		if (r)
			return r;
		out->nr_irqs++;
	}
	return 0;
}

/* Count `clocks` entries (each provider's #clock-cells) and find a known rate. */
static int parse_clocks(const void *fdt, int node, const char *npath, struct dt_node_host *out,
			struct dt_node_diag *d)
{
	int len, r;
	const fdt32_t *v = get_opt(fdt, node, "clocks", &len, &r, "host DT", d);
	if (r || !v)
		return r;
	if (len == 0 || len % 4)
		return fail(d, -EINVAL,
			    "host DT node %s: property clocks has %d bytes, not a positive multiple "
			    "of 4.",
			    npath, len);
	unsigned int n = (unsigned int)len / 4;
	for (unsigned int i = 0; i < n;) {
		uint32_t ph = fdt32_ld(v + i++);
		if (out->nr_clocks >= DT_NODE_MAX_CLOCKS)
			return fail(d, -EINVAL, "host DT node %s has more than %u clocks.", npath,
				    DT_NODE_MAX_CLOCKS);
		out->nr_clocks++;
		if (ph == 0) /* an empty entry */
			continue;
		int prov = fdt_node_offset_by_phandle(fdt, ph);
		if (prov < 0)
			return fail(d, -EINVAL,
				    "host DT node %s: clocks entry %u refers to phandle 0x%x, which "
				    "no node has.",
				    npath, out->nr_clocks - 1, ph);
		uint32_t cc;
		bool present;
		if ((r = read_u32(fdt, prov, "#clock-cells", 0, &cc, &present, "host DT", d)))
			return r;
		if (!present || cc > 8) {
			char pp[DT_NODE_PATH_MAX];
			path_of(fdt, prov, pp, sizeof(pp));
			return fail(d, -EINVAL,
				    "host DT node %s: clock provider %s has no usable #clock-cells.",
				    npath, pp);
		}
		if (cc > n - i)
			return fail(d, -EINVAL,
				    "host DT node %s: property clocks is truncated (entry %u needs "
				    "%u cells).",
				    npath, out->nr_clocks - 1, cc);
		i += cc;
		if (!out->clock_hz && cc == 0) {
			int fl;
			const fdt32_t *f = fdt_getprop(fdt, prov, "clock-frequency", &fl);
			if (f && fl == 4)
				out->clock_hz = fdt32_ld(f);
			else if (f && fl == 8 && fdt32_ld(f) == 0)
				out->clock_hz = fdt32_ld(f + 1);
		}
	}
	return 0;
}

/*
 * Every node name must end inside the structure block. libfdt 1.6.1's
 * fdt_check_full() dereferences the NULL that fdt_get_name() returns for an
 * unterminated name (found by fuzz_passthrough_dt), so walk the tags first.
 * The walk is bounded: each fdt_next_tag() moves strictly forward or fails.
 */
static int check_node_names(const void *blob)
{
	int off = 0;
	for (;;) {
		int next = 0;
		uint32_t tag = fdt_next_tag(blob, off, &next);
		if (tag == FDT_END)
			return next < 0 ? next : 0;
		if (next <= off)
			return -FDT_ERR_BADSTRUCTURE;
		if (tag == FDT_BEGIN_NODE && !fdt_get_name(blob, off, NULL))
			return -FDT_ERR_BADSTRUCTURE;
		off = next;
	}
}

static int check_blob(const void *blob, size_t size, const char *who, struct dt_node_diag *d)
{
	if (!blob)
		return fail(d, -EINVAL, "No %s blob was given.", who);
	int r = size < FDT_V1_SIZE ? -FDT_ERR_TRUNCATED : fdt_check_header(blob);
	if (!r && fdt_totalsize(blob) > size)
		r = -FDT_ERR_TRUNCATED;
	if (!r)
		r = check_node_names(blob);
	if (!r)
		r = fdt_check_full(blob, size);
	if (r)
		return fail(d, -EINVAL, "The %s blob is not a valid flattened device tree (%s).",
			    who, fdt_strerror(r));
	return 0;
}

static int parse_host(const void *fdt, size_t size, const char *path, struct dt_node_host *out,
		      int *node_out, struct dt_node_diag *d)
{
	memset(out, 0, sizeof(*out));
	int r = check_blob(fdt, size, "host DT", d);
	if (r)
		return r;
	if (!path || path[0] != '/')
		return fail(d, -EINVAL, "The host DT path \"%s\" is not absolute.",
			    path ? path : "(null)");
	int node = fdt_path_offset(fdt, path);
	if (node < 0)
		return fail(d, -EINVAL, "The host DT has no node %s.", path);
	if (node == 0)
		return fail(d, -EINVAL, "The host DT path %s is the root, not a device.", path);
	char npath[DT_NODE_PATH_MAX];
	path_of(fdt, node, npath, sizeof(npath));
	int nlen;
	const char *name = fdt_get_name(fdt, node, &nlen);
	if (!name || nlen <= 0 || nlen >= DT_NODE_NAME_MAX)
		return fail(d, -EINVAL, "host DT node %s: the node name is empty or too long.", npath);
	memcpy(out->name, name, (size_t)nlen);
	out->name[nlen] = '\0';

	int bus = fdt_parent_offset(fdt, node);
	if (bus < 0)
		return fail(d, -EINVAL, "host DT node %s: cannot find its parent.", npath);
	uint32_t ac, sc;
	r = bus_cells(fdt, bus, "#address-cells", 2, 1, 2, &ac, "host DT", d);
	r = r ? r : bus_cells(fdt, bus, "#size-cells", 1, 1, 2, &sc, "host DT", d);
	if (r)
		return r;
	int len;
	const fdt32_t *reg = get_opt(fdt, node, "reg", &len, &r, "host DT", d);
	if (r)
		return r;
	if (!reg)
		return fail(d, -EINVAL, "host DT node %s has no reg property.", npath);
	uint32_t ent = (ac + sc) * 4;
	if (len == 0 || len % (int)ent) {
		char bp[DT_NODE_PATH_MAX];
		path_of(fdt, bus, bp, sizeof(bp));
		return fail(d, -EINVAL,
			    "host DT node %s: property reg has %d bytes, not a positive multiple "
			    "of %u (#address-cells %u + #size-cells %u of %s).",
			    npath, len, ent, ac, sc, bp);
	}
	if (len / (int)ent > DT_NODE_MAX_REGS)
		return fail(d, -EINVAL, "host DT node %s has more than %u reg entries.", npath,
			    DT_NODE_MAX_REGS);
	for (int i = 0; i < len / (int)ent; i++) {
		const fdt32_t *e = reg + (size_t)i * (ac + sc);
		uint64_t a = cells_val(e, ac), s = cells_val(e + ac, sc);
		if (s == 0)
			return fail(d, -EINVAL, "host DT node %s: reg entry %d has size 0.", npath, i);
		r = translate(fdt, bus, &a, s, npath, (unsigned int)i, d);
		if (r)
			return r;
		if (a + (s - 1) < a)
			return fail(d, -EINVAL,
				    "host DT node %s: reg entry %d wraps around the address space.",
				    npath, i);
		out->regs[i] = (struct dt_node_region){ .addr = a, .size = s };
		out->nr_regs++;
	}
	r = parse_irqs(fdt, node, npath, out, d);
	r = r ? r : parse_clocks(fdt, node, npath, out, d);
	if (!r && node_out)
		*node_out = node;
	return r;
}

int dt_node_parse_host(const void *host, size_t host_size, const char *path,
		       struct dt_node_host *out, struct dt_node_diag *d)
{
	diag_start(d);
	if (!out)
		return fail(d, -EINVAL, "dt_node_parse_host: missing output.");
	return parse_host(host, host_size, path, out, NULL, d);
}

/* ---- placement helpers ---------------------------------------------------------------- */

void dt_node_map_identity(const struct dt_node_host *host, struct dt_node_map *map)
{
	for (unsigned int i = 0; i < host->nr_regs && i < DT_NODE_MAX_REGS; i++)
		map->reg_guest[i] = host->regs[i].addr;
	map->nr_regs = host->nr_regs;
}

int dt_node_map_window(const struct dt_node_host *host, uint64_t base, uint64_t size,
		       uint64_t align, struct dt_node_map *map, struct dt_node_diag *d)
{
	diag_start(d);
	if (!host || !map || host->nr_regs > DT_NODE_MAX_REGS)
		return fail(d, -EINVAL, "dt_node_map_window: bad arguments.");
	if (align < 4096 || (align & (align - 1)))
		return fail(d, -EINVAL, "The placement alignment 0x%llx is not a power of two >= 4096.",
			    (unsigned long long)align);
	if (size > UINT64_MAX - base)
		return fail(d, -EINVAL, "The guest window 0x%llx+0x%llx wraps around.",
			    (unsigned long long)base, (unsigned long long)size);
	uint64_t end = base + size, cur = base;
	for (unsigned int i = 0; i < host->nr_regs; i++) {
		const struct dt_node_region *hr = &host->regs[i];
		uint64_t g = 0;
		bool ok = cur <= UINT64_MAX - (align - 1);
		if (ok) {
			g = ((cur + align - 1) & ~(align - 1)) + (hr->addr & (align - 1));
			ok = g >= cur && g <= end && hr->size <= end - g;
		}
		if (!ok)
			return fail(d, -ENOSPC,
				    "Region %u of %s (0x%llx bytes) does not fit in the guest window "
				    "0x%llx+0x%llx.",
				    i, host->name, (unsigned long long)hr->size,
				    (unsigned long long)base, (unsigned long long)size);
		map->reg_guest[i] = g;
		cur = g + hr->size;
	}
	map->nr_regs = host->nr_regs;
	return 0;
}

/* ---- property tables ---------------------------------------------------------------- */

enum prop_kind {
	PK_STRINGS,    /* NUL-terminated string list */
	PK_FLAG,       /* empty */
	PK_U32,        /* one cell */
	PK_U32_OR_U64, /* one or two cells */
};

/*
 * Copied verbatim (after the format check): properties that describe the device
 * itself and carry no phandle.
 *   compatible, model, label      identity: what the guest driver binds to
 *   reg-names, interrupt-names,   name the reg/interrupts/clocks entries, which keep
 *   clock-names                   their order and count in the guest node
 *   clock-frequency               input clock rate some drivers read directly (8250)
 *   arm,primecell-periphid        AMBA peripheral ID override
 *   reg-io-width, reg-shift,      register access width/stride and serial settings
 *   current-speed, fifo-size
 *   big-/little-/native-endian    register endianness
 *   dma-coherent                  the device snoops caches (true in the guest as well)
 *   gpio-controller, #gpio-cells, a GPIO block; a GPIO block is often the interrupt
 *   ngpios, gpio-line-names,      controller of its lines too (pl061 + gpio-keys), so
 *   interrupt-controller,         its own controller properties come along
 *   #interrupt-cells
 *   wakeup-source                 the device may wake the system
 */
static const struct {
	const char *name;
	enum prop_kind kind;
} allow_table[] = {
	{ "compatible", PK_STRINGS },
	{ "model", PK_STRINGS },
	{ "label", PK_STRINGS },
	{ "reg-names", PK_STRINGS },
	{ "interrupt-names", PK_STRINGS },
	{ "clock-names", PK_STRINGS },
	{ "clock-frequency", PK_U32_OR_U64 },
	{ "arm,primecell-periphid", PK_U32 },
	{ "reg-io-width", PK_U32 },
	{ "reg-shift", PK_U32 },
	{ "current-speed", PK_U32 },
	{ "fifo-size", PK_U32 },
	{ "big-endian", PK_FLAG },
	{ "little-endian", PK_FLAG },
	{ "native-endian", PK_FLAG },
	{ "dma-coherent", PK_FLAG },
	{ "gpio-controller", PK_FLAG },
	{ "#gpio-cells", PK_U32 },
	{ "ngpios", PK_U32 },
	{ "gpio-line-names", PK_STRINGS },
	{ "interrupt-controller", PK_FLAG },
	{ "#interrupt-cells", PK_U32 },
	{ "wakeup-source", PK_FLAG },
};

enum match { M_EXACT, M_PREFIX, M_SUFFIX };

/*
 * Dropped with a WARN note: properties that reference (or name references to) host
 * providers the guest does not have. The device keeps working only if the host keeps
 * those providers in the right state (docs/passthrough.md).
 */
static const struct {
	const char *pat;
	enum match m;
	const char *what;
} drop_table[] = {
	{ "resets", M_EXACT, "reset controller" },
	{ "reset-names", M_EXACT, "reset controller" },
	{ "power-domains", M_EXACT, "power domain" },
	{ "power-domain-names", M_EXACT, "power domain" },
	{ "iommus", M_EXACT, "IOMMU (DMA is mapped by the VMM through VFIO)" },
	{ "iommu-map", M_EXACT, "IOMMU" },
	{ "iommu-map-mask", M_EXACT, "IOMMU" },
	{ "pinctrl-", M_PREFIX, "pin controller" },
	{ "dmas", M_EXACT, "DMA controller" },
	{ "dma-names", M_EXACT, "DMA controller" },
	{ "dma-ranges", M_EXACT, "bus DMA translation" },
	{ "interconnects", M_EXACT, "interconnect" },
	{ "interconnect-names", M_EXACT, "interconnect" },
	{ "assigned-clocks", M_EXACT, "clock controller" },
	{ "assigned-clock-parents", M_EXACT, "clock controller" },
	{ "assigned-clock-rates", M_EXACT, "clock controller" },
	{ "memory-region", M_EXACT, "reserved memory" },
	{ "memory-region-names", M_EXACT, "reserved memory" },
	{ "msi-parent", M_EXACT, "MSI controller" },
	{ "msi-map", M_EXACT, "MSI controller" },
	{ "msi-map-mask", M_EXACT, "MSI controller" },
	{ "phys", M_EXACT, "PHY" },
	{ "phy-names", M_EXACT, "PHY" },
	{ "mboxes", M_EXACT, "mailbox" },
	{ "mbox-names", M_EXACT, "mailbox" },
	{ "nvmem-cells", M_EXACT, "NVMEM" },
	{ "nvmem-cell-names", M_EXACT, "NVMEM" },
	{ "operating-points-v2", M_EXACT, "OPP table" },
	{ "wakeup-parent", M_EXACT, "wake-up interrupt controller" },
	{ "gpio-ranges", M_EXACT, "pin controller" },
	{ "interrupt-map", M_EXACT, "interrupt nexus" },
	{ "interrupt-map-mask", M_EXACT, "interrupt nexus" },
	{ "gpios", M_EXACT, "GPIO" },
	{ "-gpios", M_SUFFIX, "GPIO" },
	{ "-gpio", M_SUFFIX, "GPIO" },
	{ "-supply", M_SUFFIX, "regulator" },
};

static bool matches(const char *name, const char *pat, enum match m)
{
	size_t nl = strlen(name), pl = strlen(pat);
	switch (m) {
	case M_EXACT:
		return strcmp(name, pat) == 0;
	case M_PREFIX:
		return nl > pl && strncmp(name, pat, pl) == 0;
	case M_SUFFIX:
		return nl > pl && strcmp(name + nl - pl, pat) == 0;
	}
	return false;
}

static int check_kind(const char *val, int len, enum prop_kind k, const char *npath,
		      const char *pname, struct dt_node_diag *d)
{
	bool ok = false;
	const char *want = "";
	switch (k) {
	case PK_STRINGS:
		ok = len > 0 && val[len - 1] == '\0';
		want = "a NUL-terminated string list";
		break;
	case PK_FLAG:
		ok = len == 0;
		want = "empty";
		break;
	case PK_U32:
		ok = len == 4;
		want = "4 bytes";
		break;
	case PK_U32_OR_U64:
		ok = len == 4 || len == 8;
		want = "4 or 8 bytes";
		break;
	}
	if (!ok)
		return fail(d, -EINVAL, "host DT node %s: property %s has %d bytes; expected %s.",
			    npath, pname, len, want);
	return 0;
}

/* ---- guest blob editing --------------------------------------------------------------- */

/* Properties are prepended by libfdt: collect them, then set them last to first. */
struct pending {
	unsigned int n;
	struct {
		const char *name;
		const void *val;
		int len;
	} p[MAX_NODE_PROPS];
};

static int pend(struct pending *pp, const char *name, const void *val, int len,
		const char *node, struct dt_node_diag *d)
{
	if (pp->n >= MAX_NODE_PROPS)
		return fail(d, -EINVAL, "Node %s would have more than %d properties.", node,
			    MAX_NODE_PROPS);
	pp->p[pp->n].name = name;
	pp->p[pp->n].val = val;
	pp->p[pp->n].len = len;
	pp->n++;
	return 0;
}

static int flush(void *g, int node, const struct pending *pp, const char *what,
		 struct dt_node_diag *d)
{
	for (unsigned int i = pp->n; i-- > 0;) {
		int r = fdt_setprop(g, node, pp->p[i].name, pp->p[i].val, pp->p[i].len);
		if (r)
			return guest_err(d, r, what);
	}
	return 0;
}

/* Copy the guest blob into a scratch buffer we may edit; the caller frees *out. */
static int open_scratch(const void *guest, size_t bufsize, void **out, struct dt_node_diag *d)
{
	*out = NULL;
	int r = check_blob(guest, bufsize, "guest DT", d);
	if (r)
		return r;
	if (bufsize > INT32_MAX)
		return fail(d, -EINVAL, "The guest DT buffer is larger than 2 GiB.");
	void *s = malloc(bufsize);
	if (!s)
		return fail(d, -ENOMEM, "Out of memory copying the guest DT.");
	r = fdt_open_into(guest, s, (int)bufsize);
	if (r) {
		free(s);
		return guest_err(d, r, "anything");
	}
	uint32_t ac, sc;
	r = read_u32(s, 0, "#address-cells", 2, &ac, NULL, "guest DT", d);
	r = r ? r : read_u32(s, 0, "#size-cells", 1, &sc, NULL, "guest DT", d);
	if (!r && (ac != 2 || sc != 2))
		r = fail(d, -EINVAL, "The guest DT root has #address-cells %u / #size-cells %u, not 2/2.",
			 ac, sc);
	if (r) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

static int commit_scratch(void *guest, void *s, struct dt_node_diag *d)
{
	int r = fdt_pack(s);
	if (r)
		return guest_err(d, r, "anything");
	memcpy(guest, s, fdt_totalsize(s));
	return 0;
}

/* Guest phandle `ph` must be an interrupt controller with #interrupt-cells = 3. */
static int guest_gic_ok(const void *g, uint32_t ph, struct dt_node_diag *d)
{
	int off = ph ? fdt_node_offset_by_phandle(g, ph) : -1;
	uint32_t n = 0;
	bool present = false;
	if (off >= 0 && read_u32(g, off, "#interrupt-cells", 0, &n, &present, "guest DT", d))
		return -EINVAL;
	if (off < 0 || !fdt_getprop(g, off, "interrupt-controller", NULL) || !present || n != 3)
		return fail(d, -EINVAL,
			    "The guest DT has no GIC (interrupt controller with 3 interrupt cells) "
			    "with phandle %u.",
			    ph);
	return 0;
}

/* Guest phandle `ph` must be a clock with #clock-cells = 0. */
static int guest_clock_ok(const void *g, uint32_t ph, struct dt_node_diag *d)
{
	int off = ph ? fdt_node_offset_by_phandle(g, ph) : -1;
	uint32_t n = 1;
	bool present = false;
	if (off >= 0 && read_u32(g, off, "#clock-cells", 0, &n, &present, "guest DT", d))
		return -EINVAL;
	if (off < 0 || !present || n != 0)
		return fail(d, -EINVAL,
			    "The guest DT has no fixed clock (#clock-cells = 0) with phandle %u.", ph);
	return 0;
}

/* ---- generation ------------------------------------------------------------------------- */

struct gen {
	const void *host;
	int hnode;
	const struct dt_node_host *h;
	const struct dt_node_map *map;
	char npath[DT_NODE_PATH_MAX];
	uint32_t clock_ph;
	fdt32_t reg[DT_NODE_MAX_REGS * 4];
	fdt32_t irq[DT_NODE_MAX_IRQS * 3];
	fdt32_t clk[DT_NODE_MAX_CLOCKS];
	fdt32_t gic_ph, node_ph;
	bool irq_done, ip_done;
	struct pending pp;
};

static bool in_extra(const struct dt_node_map *map, const char *name)
{
	if (!map->extra_props)
		return false;
	for (const char *const *e = map->extra_props; *e; e++)
		if (strcmp(*e, name) == 0)
			return true;
	return false;
}

/* Decide what one host property becomes in the guest node. */
static int gen_prop(struct gen *g, const char *pname, const void *val, int len, const char *gname,
		    struct dt_node_diag *d)
{
	const char *np = g->npath;
	if (!strcmp(pname, "reg"))
		return pend(&g->pp, "reg", g->reg, (int)(g->h->nr_regs * 16), gname, d);
	if (!strcmp(pname, "interrupts") || !strcmp(pname, "interrupts-extended")) {
		if (g->irq_done)
			return 0;
		g->irq_done = true;
		int r = pend(&g->pp, "interrupts", g->irq, (int)(g->h->nr_irqs * 12), gname, d);
		if (r || g->ip_done)
			return r;
		g->ip_done = true;
		return pend(&g->pp, "interrupt-parent", &g->gic_ph, 4, gname, d);
	}
	if (!strcmp(pname, "interrupt-parent")) {
		if (g->ip_done)
			return 0;
		g->ip_done = true;
		return pend(&g->pp, "interrupt-parent", &g->gic_ph, 4, gname, d);
	}
	if (!strcmp(pname, "clocks")) {
		note(d, DT_NODE_NOTE_DEBUG,
		     "host DT node %s: clocks replaced by %u reference(s) to guest fixed clock %u",
		     np, g->h->nr_clocks, g->clock_ph);
		return pend(&g->pp, "clocks", g->clk, (int)(g->h->nr_clocks * 4), gname, d);
	}
	if (!strcmp(pname, "status")) {
		bool okay = len > 0 && ((const char *)val)[len - 1] == '\0' &&
			    (!strcmp(val, "okay") || !strcmp(val, "ok"));
		if (!okay)
			note(d, DT_NODE_NOTE_WARN,
			     "host DT node %s: status is not \"okay\" on the host; the guest node "
			     "is enabled",
			     np);
		return 0;
	}
	if (!strcmp(pname, "phandle") || !strcmp(pname, "linux,phandle") || !strcmp(pname, "name"))
		return 0;
	for (size_t i = 0; i < sizeof(allow_table) / sizeof(allow_table[0]); i++) {
		if (strcmp(pname, allow_table[i].name))
			continue;
		int r = check_kind(val, len, allow_table[i].kind, np, pname, d);
		return r ? r : pend(&g->pp, pname, val, len, gname, d);
	}
	if (in_extra(g->map, pname)) {
		note(d, DT_NODE_NOTE_DEBUG, "host DT node %s: %s copied verbatim as asked", np, pname);
		return pend(&g->pp, pname, val, len, gname, d);
	}
	for (size_t i = 0; i < sizeof(drop_table) / sizeof(drop_table[0]); i++) {
		if (!matches(pname, drop_table[i].pat, drop_table[i].m))
			continue;
		note(d, DT_NODE_NOTE_WARN,
		     "host DT node %s: %s dropped (refers to a host %s the guest does not have)",
		     np, pname, drop_table[i].what);
		return 0;
	}
	if (!strcmp(pname, "#address-cells") || !strcmp(pname, "#size-cells") ||
	    !strcmp(pname, "ranges")) {
		note(d, DT_NODE_NOTE_DEBUG,
		     "host DT node %s: %s dropped (subnodes are not copied)", np, pname);
		return 0;
	}
	note(d, DT_NODE_NOTE_DEBUG, "host DT node %s: unknown property %s dropped", np, pname);
	return 0;
}

static int check_map(const struct dt_node_host *h, const struct dt_node_map *map,
		     const char *npath, struct dt_node_diag *d)
{
	if (map->nr_regs != h->nr_regs)
		return fail(d, -EINVAL,
			    "The placement gives %u guest addresses but host DT node %s has %u reg "
			    "entries.",
			    map->nr_regs, npath, h->nr_regs);
	if (map->nr_irqs != h->nr_irqs)
		return fail(d, -EINVAL,
			    "The placement gives %u guest SPIs but host DT node %s has %u "
			    "interrupts.",
			    map->nr_irqs, npath, h->nr_irqs);
	for (unsigned int i = 0; i < h->nr_regs; i++)
		if (map->reg_guest[i] + (h->regs[i].size - 1) < map->reg_guest[i])
			return fail(d, -EINVAL,
				    "Guest address 0x%llx of reg entry %u of %s wraps around.",
				    (unsigned long long)map->reg_guest[i], i, npath);
	for (unsigned int i = 0; i < h->nr_irqs; i++)
		if (map->irq_guest_spi[i] > DT_NODE_MAX_SPI)
			return fail(d, -EINVAL,
				    "Guest SPI %u for interrupt %u of %s is beyond the GIC's %u.",
				    map->irq_guest_spi[i], i, npath, DT_NODE_MAX_SPI);
	if (map->node_phandle == 0xffffffffu)
		return fail(d, -EINVAL, "Phandle 0xffffffff is not a valid node phandle.");
	return 0;
}

/* Create "<base>-clk-<addr>" (fixed-clock) and return its phandle in g->clock_ph. */
static int gen_clock(void *s, struct gen *g, const char *base, int baselen, uint64_t addr,
		     char *cname, size_t cnlen, struct dt_node_diag *d)
{
	const struct dt_node_map *map = g->map;
	uint32_t hz = map->clock_hz ? map->clock_hz : g->h->clock_hz;
	if (!hz) {
		hz = DT_NODE_DEFAULT_CLOCK_HZ;
		note(d, DT_NODE_NOTE_WARN,
		     "host DT node %s: clock rate unknown (no clock-frequency in the host DT); "
		     "the guest fixed clock runs at %u Hz",
		     g->npath, hz);
	}
	uint32_t max = 0;
	int r = fdt_find_max_phandle(s, &max);
	if (r)
		return guest_err(d, r, "a clock");
	if (map->node_phandle > max)
		max = map->node_phandle;
	if (max >= 0xfffffffeu)
		return fail(d, -EINVAL, "The guest DT has no free phandle for a clock.");
	g->clock_ph = max + 1;
	snprintf(cname, cnlen, "%.*s-clk-%llx", baselen, base, (unsigned long long)addr);
	int c = fdt_add_subnode(s, 0, cname);
	if (c < 0)
		return guest_err(d, c, cname);
	r = fdt_setprop_string(s, c, "compatible", "fixed-clock");
	r = r ? r : fdt_setprop_u32(s, c, "#clock-cells", 0);
	r = r ? r : fdt_setprop_u32(s, c, "clock-frequency", hz);
	r = r ? r : fdt_setprop_u32(s, c, "phandle", g->clock_ph);
	return r ? guest_err(d, r, cname) : 0;
}

static int generate(void *s, struct gen *g, struct dt_node_result *res, struct dt_node_diag *d)
{
	const struct dt_node_map *map = g->map;
	const struct dt_node_host *h = g->h;
	int r = guest_gic_ok(s, map->gic_phandle, d);
	if (r)
		return r;
	if (map->node_phandle && fdt_node_offset_by_phandle(s, map->node_phandle) >= 0)
		return fail(d, -EEXIST, "Phandle %u for %s is already used in the guest DT.",
			    map->node_phandle, g->npath);

	const char *at = strchr(h->name, '@');
	int baselen = at ? (int)(at - h->name) : (int)strlen(h->name);
	char name[DT_NODE_NAME_MAX], cname[DT_NODE_NAME_MAX] = "";
	if ((size_t)snprintf(name, sizeof(name), "%.*s@%llx", baselen, h->name,
			     (unsigned long long)map->reg_guest[0]) >= sizeof(name))
		return fail(d, -EINVAL, "host DT node %s: the guest node name is too long.", g->npath);
	if (fdt_subnode_offset(s, 0, name) >= 0)
		return fail(d, -EEXIST, "The guest DT already has a node named %s.", name);

	if (h->nr_clocks) {
		if (map->clock_phandle) {
			if ((r = guest_clock_ok(s, map->clock_phandle, d)))
				return r;
			g->clock_ph = map->clock_phandle;
		} else {
			r = gen_clock(s, g, h->name, baselen, map->reg_guest[0], cname,
				      sizeof(cname), d);
			if (r)
				return r;
		}
	}

	for (unsigned int i = 0; i < h->nr_regs; i++) {
		g->reg[4 * i] = cpu_to_fdt32((uint32_t)(map->reg_guest[i] >> 32));
		g->reg[4 * i + 1] = cpu_to_fdt32((uint32_t)map->reg_guest[i]);
		g->reg[4 * i + 2] = cpu_to_fdt32((uint32_t)(h->regs[i].size >> 32));
		g->reg[4 * i + 3] = cpu_to_fdt32((uint32_t)h->regs[i].size);
	}
	for (unsigned int i = 0; i < h->nr_irqs; i++) {
		g->irq[3 * i] = cpu_to_fdt32(0); /* GIC_SPI */
		g->irq[3 * i + 1] = cpu_to_fdt32(map->irq_guest_spi[i]);
		g->irq[3 * i + 2] = cpu_to_fdt32(h->irqs[i].trigger);
	}
	for (unsigned int i = 0; i < h->nr_clocks; i++)
		g->clk[i] = cpu_to_fdt32(g->clock_ph);
	g->gic_ph = cpu_to_fdt32(map->gic_phandle);
	g->node_ph = cpu_to_fdt32(map->node_phandle);

	int poff;
	fdt_for_each_property_offset(poff, g->host, g->hnode)
	{
		const char *pname;
		int len;
		const void *val = fdt_getprop_by_offset(g->host, poff, &pname, &len);
		if (!val || !pname)
			return fail(d, -EINVAL, "host DT node %s: a property cannot be read.", g->npath);
		if ((r = gen_prop(g, pname, val, len, name, d)))
			return r;
	}
	if (poff != -FDT_ERR_NOTFOUND)
		return fail(d, -EINVAL, "host DT node %s: its properties cannot be walked (%s).",
			    g->npath, fdt_strerror(poff));
	if (map->node_phandle && (r = pend(&g->pp, "phandle", &g->node_ph, 4, name, d)))
		return r;

	int sub;
	fdt_for_each_subnode(sub, g->host, g->hnode)
	{
		const char *sn = fdt_get_name(g->host, sub, NULL);
		note(d, DT_NODE_NOTE_WARN, "host DT node %s: subnode %s not copied", g->npath,
		     sn ? sn : "?");
	}

	int node = fdt_add_subnode(s, 0, name);
	if (node < 0)
		return guest_err(d, node, name);
	if ((r = flush(s, node, &g->pp, name, d)))
		return r;
	if (res) {
		snprintf(res->name, sizeof(res->name), "%s", name);
		snprintf(res->clock_name, sizeof(res->clock_name), "%s", cname);
		res->clock_phandle = h->nr_clocks ? g->clock_ph : 0;
	}
	return 0;
}

int dt_node_generate(void *guest, size_t guest_bufsize, const void *host, size_t host_size,
		     const char *host_path, const struct dt_node_map *map,
		     struct dt_node_result *res, struct dt_node_diag *d)
{
	diag_start(d);
	if (res)
		memset(res, 0, sizeof(*res));
	if (!guest || !map)
		return fail(d, -EINVAL, "dt_node_generate: missing argument.");
	struct dt_node_host h;
	struct gen *g = calloc(1, sizeof(*g));
	if (!g)
		return fail(d, -ENOMEM, "Out of memory generating a guest DT node.");
	int r = parse_host(host, host_size, host_path, &h, &g->hnode, d);
	void *s = NULL;
	if (!r) {
		path_of(host, g->hnode, g->npath, sizeof(g->npath));
		g->host = host;
		g->h = &h;
		g->map = map;
		r = check_map(&h, map, g->npath, d);
	}
	r = r ? r : open_scratch(guest, guest_bufsize, &s, d);
	r = r ? r : generate(s, g, res, d);
	r = r ? r : commit_scratch(guest, s, d);
	if (r && res)
		memset(res, 0, sizeof(*res));
	free(s);
	free(g);
	return r;
}

/* ---- user fragments ---------------------------------------------------------------------- */

struct frag {
	const void *f;
	const void *g; /* scratch guest blob (for phandle checks) */
	const struct dt_node_frag_check *check;
	uint32_t root_ip; /* the guest root's interrupt-parent, 0 if none */
	bool clock_checked;
};

static int frag_fail_node(const struct frag *fr, int off, struct dt_node_diag *d, int err,
			  const char *fmt, const char *prop)
{
	char p[DT_NODE_PATH_MAX];
	path_of(fr->f, off, p, sizeof(p));
	return fail(d, err, "DT fragment node %s: property %s %s.", p, prop, fmt);
}

/* #interrupt-cells / #clock-cells of a fragment node (an in-fragment provider). */
static int frag_cells(const struct frag *fr, int prov, const char *name, uint32_t *out,
		      struct dt_node_diag *d)
{
	bool present;
	int r = read_u32(fr->f, prov, name, 0, out, &present, "DT fragment", d);
	if (r)
		return r;
	if (!present || *out > 8)
		return frag_fail_node(fr, prov, d, -EINVAL, "is missing or larger than 8", name);
	return 0;
}

/* Effective interrupt parent of a fragment node: *ctl = -1 for the GIC, or a fragment
 * node offset (Linux's walk: interrupt-parent or parent, until #interrupt-cells). */
static int frag_irq_parent(const struct frag *fr, int node, int *ctl, struct dt_node_diag *d)
{
	int child = node;
	for (int hops = 0; hops < MAX_DEPTH; hops++) {
		int len, p;
		const fdt32_t *v = fdt_getprop(fr->f, child, "interrupt-parent", &len);
		if (v) {
			if (len != 4)
				return frag_fail_node(fr, child, d, -EINVAL, "is not 4 bytes",
						      "interrupt-parent");
			uint32_t ph = fdt32_ld(v);
			if (ph == DT_NODE_FRAG_PHANDLE_GIC) {
				*ctl = -1;
				return 0;
			}
			p = ph ? fdt_node_offset_by_phandle(fr->f, ph) : -1;
			if (p < 0)
				return frag_fail_node(fr, child, d, -EINVAL,
						      "is neither the GIC (phandle 1) nor a node of "
						      "the fragment",
						      "interrupt-parent");
		} else {
			p = fdt_parent_offset(fr->f, child);
			if (p <= 0) { /* the fragment root: the guest root's applies */
				if (fr->root_ip == DT_NODE_FRAG_PHANDLE_GIC) {
					*ctl = -1;
					return 0;
				}
				return frag_fail_node(fr, node, d, -EINVAL,
						      "needs an interrupt-parent (the guest root's "
						      "is not the GIC)",
						      "interrupts");
			}
		}
		if (fdt_getprop(fr->f, p, "#interrupt-cells", NULL)) {
			*ctl = p;
			return 0;
		}
		child = p;
	}
	return frag_fail_node(fr, node, d, -EINVAL, "leads to an interrupt-parent loop",
			      "interrupt-parent");
}

static int frag_gic_spec(const struct frag *fr, int node, const fdt32_t *c, const char *prop,
			 struct dt_node_diag *d)
{
	char p[DT_NODE_PATH_MAX];
	uint32_t type = fdt32_ld(c), spi = fdt32_ld(c + 1);
	if (type != 0) {
		path_of(fr->f, node, p, sizeof(p));
		return fail(d, -EINVAL,
			    "DT fragment node %s: %s has GIC type %u; only SPIs (type 0) are "
			    "wired to passed-through devices.",
			    p, prop, type);
	}
	for (unsigned int i = 0; i < fr->check->nr_spis && i < DT_NODE_MAX_IRQS; i++)
		if (fr->check->spis[i] == spi)
			return 0;
	path_of(fr->f, node, p, sizeof(p));
	return fail(d, -EINVAL, "DT fragment node %s: %s uses SPI %u, which the VMM does not wire "
			"to this device.",
		    p, prop, spi);
}

static int frag_irqs(struct frag *fr, int node, struct dt_node_diag *d)
{
	int len, r;
	const fdt32_t *v = get_opt(fr->f, node, "interrupts", &len, &r, "DT fragment", d);
	if (r)
		return r;
	if (v) {
		int ctl = -1;
		if ((r = frag_irq_parent(fr, node, &ctl, d)))
			return r;
		uint32_t cells = 3;
		if (ctl >= 0 && (r = frag_cells(fr, ctl, "#interrupt-cells", &cells, d)))
			return r;
		if (len == 0 || (cells && len % (int)(cells * 4)))
			return frag_fail_node(fr, node, d, -EINVAL,
					      "has a length that is not a multiple of its "
					      "controller's #interrupt-cells",
					      "interrupts");
		for (int i = 0; ctl < 0 && i < len / 12; i++)
			if ((r = frag_gic_spec(fr, node, v + 3 * i, "interrupts", d)))
				return r;
	}
	v = get_opt(fr->f, node, "interrupts-extended", &len, &r, "DT fragment", d);
	if (r || !v)
		return r;
	if (len == 0 || len % 4)
		return frag_fail_node(fr, node, d, -EINVAL, "is not a positive multiple of 4 bytes",
				      "interrupts-extended");
	unsigned int n = (unsigned int)len / 4;
	for (unsigned int i = 0; i < n;) {
		uint32_t ph = fdt32_ld(v + i++), cells;
		int ctl = -1;
		if (ph == DT_NODE_FRAG_PHANDLE_GIC) {
			cells = 3;
		} else {
			ctl = ph ? fdt_node_offset_by_phandle(fr->f, ph) : -1;
			if (ctl < 0)
				return frag_fail_node(fr, node, d, -EINVAL,
						      "refers to a phandle that is neither the GIC "
						      "(1) nor a node of the fragment",
						      "interrupts-extended");
			if ((r = frag_cells(fr, ctl, "#interrupt-cells", &cells, d)))
				return r;
		}
		if (cells > n - i)
			return frag_fail_node(fr, node, d, -EINVAL, "is truncated",
					      "interrupts-extended");
		if (ctl < 0 && (r = frag_gic_spec(fr, node, v + i, "interrupts-extended", d)))
			return r;
		i += cells;
	}
	return 0;
}

static int frag_clocks(struct frag *fr, int node, struct dt_node_diag *d)
{
	int len, r;
	const fdt32_t *v = get_opt(fr->f, node, "clocks", &len, &r, "DT fragment", d);
	if (r || !v)
		return r;
	if (len == 0 || len % 4)
		return frag_fail_node(fr, node, d, -EINVAL, "is not a positive multiple of 4 bytes",
				      "clocks");
	unsigned int n = (unsigned int)len / 4;
	for (unsigned int i = 0; i < n;) {
		uint32_t ph = fdt32_ld(v + i++), cells = 0;
		if (ph == DT_NODE_FRAG_PHANDLE_CLOCK) {
			if (!fr->clock_checked && (r = guest_clock_ok(fr->g, ph, d)))
				return r;
			fr->clock_checked = true;
		} else if (ph != 0) {
			int prov = ph == DT_NODE_FRAG_PHANDLE_GIC ? -1
								  : fdt_node_offset_by_phandle(fr->f, ph);
			if (prov < 0)
				return frag_fail_node(fr, node, d, -EINVAL,
						      "refers to a phandle that is neither the guest "
						      "clock (2) nor a node of the fragment",
						      "clocks");
			if ((r = frag_cells(fr, prov, "#clock-cells", &cells, d)))
				return r;
		}
		if (cells > n - i)
			return frag_fail_node(fr, node, d, -EINVAL, "is truncated", "clocks");
		i += cells;
	}
	return 0;
}

/* Phandles the fragment defines: valid, not reserved, not in the guest. */
static int frag_phandles(struct frag *fr, int node, struct dt_node_diag *d)
{
	static const char *const names[] = { "phandle", "linux,phandle" };
	for (int k = 0; k < 2; k++) {
		int len, r;
		const fdt32_t *v = get_opt(fr->f, node, names[k], &len, &r, "DT fragment", d);
		if (r)
			return r;
		if (!v)
			continue;
		if (len != 4)
			return frag_fail_node(fr, node, d, -EINVAL, "is not 4 bytes", names[k]);
		uint32_t ph = fdt32_ld(v);
		char p[DT_NODE_PATH_MAX];
		if (ph == 0 || ph == 0xffffffffu || ph == DT_NODE_FRAG_PHANDLE_GIC ||
		    ph == DT_NODE_FRAG_PHANDLE_CLOCK) {
			path_of(fr->f, node, p, sizeof(p));
			return fail(d, -EINVAL,
				    "DT fragment node %s: phandle %u is invalid or reserved (1 is the "
				    "guest GIC, 2 the guest clock).",
				    p, ph);
		}
		if (fdt_node_offset_by_phandle(fr->f, ph) != node) {
			path_of(fr->f, node, p, sizeof(p));
			return fail(d, -EINVAL, "DT fragment node %s: phandle %u is defined twice.",
				    p, ph);
		}
		if (fdt_node_offset_by_phandle(fr->g, ph) >= 0) {
			path_of(fr->f, node, p, sizeof(p));
			return fail(d, -EEXIST,
				    "DT fragment node %s: phandle %u is already used in the guest DT.",
				    p, ph);
		}
	}
	return 0;
}

/* A top-level node's reg: 2+2 cells, every entry inside a mapped region. */
static int frag_reg(struct frag *fr, int node, bool *has_reg, bool *covered,
		    struct dt_node_diag *d)
{
	int len, r;
	const fdt32_t *v = get_opt(fr->f, node, "reg", &len, &r, "DT fragment", d);
	if (r || !v)
		return r;
	char p[DT_NODE_PATH_MAX];
	if (len == 0 || len % 16) {
		path_of(fr->f, node, p, sizeof(p));
		return fail(d, -EINVAL,
			    "DT fragment node %s: property reg has %d bytes, not a positive multiple "
			    "of 16 (2 address + 2 size cells).",
			    p, len);
	}
	*has_reg = true;
	const struct dt_node_frag_check *c = fr->check;
	for (int i = 0; i < len / 16; i++) {
		uint64_t a = cells_val(v + 4 * i, 2), s = cells_val(v + 4 * i + 2, 2);
		bool inside = false;
		for (unsigned int k = 0; k < c->nr_regions && k < DT_NODE_MAX_REGS; k++) {
			const struct dt_node_region *m = &c->regions[k];
			if (s && a >= m->addr && a - m->addr <= m->size && s <= m->size - (a - m->addr))
				inside = true;
			if (a < m->addr + m->size && m->addr < a + s)
				covered[k] = true;
		}
		if (!inside) {
			path_of(fr->f, node, p, sizeof(p));
			return fail(d, -EINVAL,
				    "DT fragment node %s: reg entry %d (0x%llx, 0x%llx bytes) is not "
				    "inside a region the VMM maps for the device.",
				    p, i, (unsigned long long)a, (unsigned long long)s);
		}
	}
	return 0;
}

static int nth_prop(const void *f, int node, int n)
{
	int p, i = 0;
	fdt_for_each_property_offset(p, f, node)
	{
		if (i++ == n)
			return p;
	}
	return -FDT_ERR_NOTFOUND;
}

static int nth_subnode(const void *f, int node, int n)
{
	int c, i = 0;
	fdt_for_each_subnode(c, f, node)
	{
		if (i++ == n)
			return c;
	}
	return -FDT_ERR_NOTFOUND;
}

/* Copy fragment node foff (properties and subnodes, in order) under guest node gparent. */
static int copy_node(const void *f, int foff, void *s, int gparent, int depth,
		     struct dt_node_diag *d)
{
	const char *name = fdt_get_name(f, foff, NULL);
	if (!name || depth > MAX_DEPTH)
		return fail(d, -EINVAL, "DT fragment: a node cannot be copied (bad name or too deep).");
	/* a '/' would make the guest node unreachable by path (found by fuzzing) */
	if (!name[0] || strchr(name, '/'))
		return fail(d, -EINVAL, "DT fragment: node name '%s' is not a valid node name.", name);
	int gn = fdt_add_subnode(s, gparent, name);
	if (gn < 0)
		return guest_err(d, gn, name);
	int np = 0, p;
	fdt_for_each_property_offset(p, f, foff) np++;
	if (np > MAX_NODE_PROPS)
		return fail(d, -EINVAL, "DT fragment node %s has more than %d properties.", name,
			    MAX_NODE_PROPS);
	for (int i = np - 1; i >= 0; i--) {
		const char *pn;
		int len;
		const void *val = fdt_getprop_by_offset(f, nth_prop(f, foff, i), &pn, &len);
		if (!val || !pn)
			return fail(d, -EINVAL, "DT fragment node %s: a property cannot be read.",
				    name);
		int r = fdt_setprop(s, gn, pn, val, len);
		if (r)
			return guest_err(d, r, name);
	}
	int nc = 0, c;
	fdt_for_each_subnode(c, f, foff) nc++;
	for (int i = nc - 1; i >= 0; i--) {
		int r = copy_node(f, nth_subnode(f, foff, i), s, gn, depth + 1, d);
		if (r)
			return r;
	}
	return 0;
}

static int fragment(void *s, struct frag *fr, struct dt_node_result *res, struct dt_node_diag *d)
{
	const void *f = fr->f;
	int r, len;
	uint32_t ac, sc;
	bool ap, sp;
	r = read_u32(f, 0, "#address-cells", 2, &ac, &ap, "DT fragment", d);
	r = r ? r : read_u32(f, 0, "#size-cells", 2, &sc, &sp, "DT fragment", d);
	if (r)
		return r;
	if (ac != 2 || sc != 2)
		return fail(d, -EINVAL,
			    "The DT fragment root has #address-cells %u / #size-cells %u; it must be "
			    "2/2 like the guest root.",
			    ac, sc);
	int p;
	fdt_for_each_property_offset(p, f, 0)
	{
		const char *pn;
		if (!fdt_getprop_by_offset(f, p, &pn, &len) || !pn)
			return fail(d, -EINVAL, "DT fragment root: a property cannot be read.");
		if (strcmp(pn, "#address-cells") && strcmp(pn, "#size-cells"))
			note(d, DT_NODE_NOTE_DEBUG, "DT fragment: root property %s ignored", pn);
	}

	if ((r = guest_gic_ok(s, DT_NODE_FRAG_PHANDLE_GIC, d)))
		return r;
	const fdt32_t *ip = fdt_getprop(s, 0, "interrupt-parent", &len);
	fr->root_ip = ip && len == 4 ? fdt32_ld(ip) : 0;

	/* every node below the root: phandles, interrupts, clocks */
	int depth = 0;
	for (int off = fdt_next_node(f, 0, &depth); off >= 0 && depth > 0;
	     off = fdt_next_node(f, off, &depth)) {
		r = frag_phandles(fr, off, d);
		r = r ? r : frag_irqs(fr, off, d);
		r = r ? r : frag_clocks(fr, off, d);
		if (r)
			return r;
	}

	/* top-level nodes: names free in the guest, reg inside mapped regions */
	bool has_reg = false, covered[DT_NODE_MAX_REGS] = { false };
	int top = 0, n;
	fdt_for_each_subnode(n, f, 0)
	{
		const char *name = fdt_get_name(f, n, NULL);
		if (!name)
			return fail(d, -EINVAL, "DT fragment: a top-level node has no name.");
		if (fdt_subnode_offset(s, 0, name) >= 0)
			return fail(d, -EEXIST, "The guest DT already has a node named %s (from the "
					"DT fragment).",
				    name);
		if ((r = frag_reg(fr, n, &has_reg, covered, d)))
			return r;
		top++;
	}
	if (!top)
		return fail(d, -EINVAL, "The DT fragment has no node under its root.");
	if (!has_reg)
		return fail(d, -EINVAL, "No top-level node of the DT fragment has a reg property.");
	for (unsigned int k = 0; k < fr->check->nr_regions && k < DT_NODE_MAX_REGS; k++)
		if (!covered[k])
			note(d, DT_NODE_NOTE_DEBUG,
			     "DT fragment: mapped region 0x%llx (0x%llx bytes) is not in any reg",
			     (unsigned long long)fr->check->regions[k].addr,
			     (unsigned long long)fr->check->regions[k].size);

	for (int i = top - 1; i >= 0; i--)
		if ((r = copy_node(f, nth_subnode(f, 0, i), s, 0, 1, d)))
			return r;
	if (res) {
		const char *first = fdt_get_name(f, nth_subnode(f, 0, 0), NULL);
		snprintf(res->name, sizeof(res->name), "%s", first ? first : "");
		res->clock_phandle = fr->clock_checked ? DT_NODE_FRAG_PHANDLE_CLOCK : 0;
	}
	return 0;
}

int dt_node_add_fragment(void *guest, size_t guest_bufsize, const void *frag, size_t frag_size,
			 const struct dt_node_frag_check *check, struct dt_node_result *res,
			 struct dt_node_diag *d)
{
	diag_start(d);
	if (res)
		memset(res, 0, sizeof(*res));
	if (!guest || !check)
		return fail(d, -EINVAL, "dt_node_add_fragment: missing argument.");
	int r = check_blob(frag, frag_size, "DT fragment", d);
	void *s = NULL;
	r = r ? r : open_scratch(guest, guest_bufsize, &s, d);
	if (!r) {
		struct frag fr = { .f = frag, .g = s, .check = check };
		r = fragment(s, &fr, res, d);
	}
	r = r ? r : commit_scratch(guest, s, d);
	if (r && res)
		memset(res, 0, sizeof(*res));
	free(s);
	return r;
}
