/* Guest device-tree node of a passed-through platform/AMBA device: parsed from the
 * host's flattened DT (reg through bus ranges, GIC SPIs, clocks), generated into the
 * guest DTB with an allowlist of properties, or taken from a user DT fragment. */
#ifndef VMM_PT_DT_NODE_H
#define VMM_PT_DT_NODE_H

#include <stddef.h>
#include <stdint.h>

#define DT_NODE_MAX_REGS 16
#define DT_NODE_MAX_IRQS 16
#define DT_NODE_MAX_CLOCKS 16
#define DT_NODE_MAX_NOTES 48
#define DT_NODE_TEXT_MAX 224 /* one error or note, NUL included */
#define DT_NODE_NAME_MAX 96  /* node name incl. unit address, NUL included */
#define DT_NODE_PATH_MAX 512 /* DT path, NUL included */

/* Largest SPI number (the DT cell, INTID - 32) a GICv3 has: INTID 1019. */
#define DT_NODE_MAX_SPI 987u
/* Rate of a generated fixed clock when neither the caller nor the host DT knows it
 * (QEMU virt's apb-pclk, and our own guest's apb-pclk, run at 24 MHz). */
#define DT_NODE_DEFAULT_CLOCK_HZ 24000000u

/* Trigger cell values in a GIC interrupt specifier <GIC_SPI num trigger>. */
#define DT_NODE_IRQ_EDGE_RISING 1u
#define DT_NODE_IRQ_LEVEL_HIGH 4u

/*
 * Diagnostics. Every call takes an optional struct dt_node_diag (NULL: nothing is
 * recorded). On failure `error` holds one sentence naming the node/property/input at
 * fault. `notes` collects what the caller should log: WARN for properties dropped
 * because they reference host providers the guest does not have (resets, power
 * domains, IOMMUs, pinctrl, ...) or for guesses (clock rate), DEBUG for unknown
 * properties that were dropped and other details. Notes past DT_NODE_MAX_NOTES are
 * counted in nr_lost. Callers zero the struct (or use dt_node_diag_init) before a call;
 * notes accumulate over several calls.
 */
enum dt_node_note_level { DT_NODE_NOTE_WARN, DT_NODE_NOTE_DEBUG };

struct dt_node_note {
	enum dt_node_note_level level;
	char text[DT_NODE_TEXT_MAX];
};

struct dt_node_diag {
	char error[DT_NODE_TEXT_MAX]; /* "" until a call fails */
	unsigned int nr_notes;
	unsigned int nr_lost;
	struct dt_node_note notes[DT_NODE_MAX_NOTES];
};

void dt_node_diag_init(struct dt_node_diag *d);

struct log;
/* Log the notes (WARN → log_warn, DEBUG → log_dbg, each prefixed with `prefix`, which
 * may be NULL) and how many were lost. Does not log `error`. lg may be NULL (log.h). */
void dt_node_diag_log(const struct dt_node_diag *d, const struct log *lg, const char *prefix);

/*
 * Host DT path of a device from its sysfs of_node link.
 * dt_node_path_from_link: `target` is what readlink() returns for
 * /sys/bus/{platform,amba}/devices/X/of_node, e.g.
 * "../../../../firmware/devicetree/base/bus@0/serial@31d0000" → "/bus@0/serial@31d0000".
 * Absolute targets ("/sys/firmware/devicetree/base/...") work too; "base" alone gives
 * "/". Repeated slashes collapse; "." or ".." after "base" is rejected.
 * dt_node_path_from_sysfs: readlink(<dev_dir>/of_node) then the above.
 * Returns 0, -EINVAL (no "firmware/devicetree/base" component, "."/"..", bad args),
 * -ENAMETOOLONG (path does not fit in size bytes), or readlink's -errno (-ENOENT: the
 * device has no DT node, e.g. it came from ACPI).
 */
int dt_node_path_from_link(const char *target, char *path, size_t size, struct dt_node_diag *d);
int dt_node_path_from_sysfs(const char *dev_dir, char *path, size_t size, struct dt_node_diag *d);

/* A physical region: CPU (host) or guest physical address and size in bytes. */
struct dt_node_region {
	uint64_t addr;
	uint64_t size;
};

struct dt_node_host_irq {
	uint32_t spi;     /* SPI number as in the DT cell (INTID - 32) */
	uint32_t flags;   /* the host's third cell, verbatim */
	uint32_t trigger; /* normalised: DT_NODE_IRQ_EDGE_RISING or DT_NODE_IRQ_LEVEL_HIGH */
};

/* What the host DT says about a device node. */
struct dt_node_host {
	char name[DT_NODE_NAME_MAX]; /* e.g. "serial@31d0000" */
	unsigned int nr_regs;
	/* reg entries in order, translated through every ancestor bus's `ranges` to CPU
	 * physical addresses (what VFIO region i maps on the host) */
	struct dt_node_region regs[DT_NODE_MAX_REGS];
	unsigned int nr_irqs;
	/* interrupts / interrupts-extended in order: all must go to the (primary) GIC */
	struct dt_node_host_irq irqs[DT_NODE_MAX_IRQS];
	unsigned int nr_clocks; /* entries in `clocks` (0 if absent) */
	uint32_t clock_hz;      /* first `clock-frequency` of a clock provider, 0 unknown */
};

/*
 * Parse the host node at `path` (absolute, e.g. "/soc/pl061@9030000") of the host DTB
 * `host` (host_size bytes, e.g. the contents of /sys/firmware/fdt). The blob is fully
 * validated (fdt_check_full) before use and every property is length-checked.
 * Rules: the parent bus's #address-cells must be 1..2 and #size-cells 1..2 (defaults
 * 2/1 when absent, as the DT spec says); every ancestor bus up to the root needs a
 * `ranges` (empty = identity) covering the region; `interrupts` is decoded with the
 * node's interrupt parent (nearest `interrupt-parent` up the tree), which must be a
 * GIC (arm,gic-v3 / gic-400 / cortex-a15/a9/a7-gic) with #interrupt-cells = 3;
 * `interrupts-extended` (which wins when both are present) likewise, entry by entry;
 * only SPIs (type cell 0) are accepted; `clocks` is walked with each provider's
 * #clock-cells to count its entries.
 * Returns 0 or -EINVAL with d->error naming the node and property (bad blob, missing
 * node, no reg, bad cell counts, #address-cells > 2, truncated property, specifier of
 * the wrong length, interrupt to a non-GIC controller, PPI, more entries than the
 * DT_NODE_MAX_* limits).
 */
int dt_node_parse_host(const void *host, size_t host_size, const char *path,
		       struct dt_node_host *out, struct dt_node_diag *d);

/* Where the caller puts the device in the guest. */
struct dt_node_map {
	unsigned int nr_regs;                 /* must equal the host node's nr_regs */
	uint64_t reg_guest[DT_NODE_MAX_REGS]; /* guest physical base of host reg entry i */
	unsigned int nr_irqs;                 /* must equal the host node's nr_irqs */
	uint32_t irq_guest_spi[DT_NODE_MAX_IRQS]; /* guest SPI (DT cell) of host interrupt i */
	uint32_t gic_phandle;   /* the guest GIC's phandle: must exist in the guest DT */
	/* guest fixed clock that replaces every `clocks` entry (it must exist and have
	 * #clock-cells = 0); 0 → a fixed-clock node is generated (see dt_node_generate) */
	uint32_t clock_phandle;
	uint32_t clock_hz;      /* rate of a generated clock; 0 → host's, else the default */
	uint32_t node_phandle;  /* 0, or a phandle to give the new node (must be unused) */
	/* NULL-terminated names of extra properties to copy verbatim (user's choice, e.g. a
	 * vendor property the guest driver needs); may be NULL. */
	const char *const *extra_props;
};

/* map->reg_guest[i] = host->regs[i].addr (1:1 placement), nr_regs set. Irqs untouched. */
void dt_node_map_identity(const struct dt_node_host *host, struct dt_node_map *map);

/*
 * Place the host regions one after the other in the guest window [base, base+size):
 * each at the next `align`-aligned address plus the host address modulo `align` (so a
 * region keeps its offset inside its page and stays mmappable when the host's is).
 * align: power of two >= 4096. Fills map->reg_guest and nr_regs.
 * Returns 0, -EINVAL (bad align, window wraps) or -ENOSPC (does not fit).
 */
int dt_node_map_window(const struct dt_node_host *host, uint64_t base, uint64_t size,
		       uint64_t align, struct dt_node_map *map, struct dt_node_diag *d);

struct dt_node_result {
	char name[DT_NODE_NAME_MAX]; /* node added under the guest root, e.g. "pl061@9030000" */
	uint32_t clock_phandle;      /* clock the node's `clocks` use (0: node has none) */
	char clock_name[DT_NODE_NAME_MAX]; /* generated fixed-clock node, "" if none made */
};

/*
 * Add the guest node of host node `host_path` under the root of the guest DTB `guest`
 * (a valid blob in a buffer of guest_bufsize bytes, packed or not, e.g. what
 * a64_fdt_build made). The edit is transactional: it is done on a copy, and `guest`
 * changes only on success, when it is left packed (fdt_totalsize = its length).
 *
 * The node is "<host name before '@'>@<guest address of reg 0, hex>" and holds:
 *   reg        host reg entries, re-encoded with the guest root's #address-cells and
 *              #size-cells (which must be 2/2) at map->reg_guest[i], host sizes;
 *   interrupts <0 map->irq_guest_spi[i] trigger> with the normalised host trigger
 *              (edge → 1, level → 4; VFIO hands the VMM "asserted", so the pin's
 *              polarity stays on the host), plus interrupt-parent = map->gic_phandle;
 *   clocks     as many entries as the host has, each the guest fixed clock
 *              (map->clock_phandle, or a generated "<base>-clk-<addr>" fixed-clock node
 *              at map->clock_hz / the host provider's clock-frequency / the default
 *              24 MHz with a WARN note), so clock-names still matches;
 *   phandle    map->node_phandle when nonzero;
 *   and the allowlisted host properties, verbatim after a format check (see the table
 *   in dt_node.c: compatible, model, reg-names, interrupt-names, clock-names,
 *   clock-frequency, arm,primecell-periphid, reg-io-width, reg-shift, current-speed,
 *   fifo-size, dma-coherent, endianness flags, gpio-controller, #gpio-cells, ngpios,
 *   gpio-line-names, interrupt-controller, #interrupt-cells, wakeup-source, label) and
 *   map->extra_props.
 * `status` is omitted (the node is "okay"); host phandle/linux,phandle are not copied.
 * Dropped with a WARN note each: every property that carries a phandle or names one
 * (resets, reset-names, power-domains, iommus, pinctrl-*, dmas, interconnects,
 * assigned-clocks, *-supply, *-gpios, phys, mboxes, ...; table in dt_node.c), and
 * subnodes. Dropped with a DEBUG note: every other property.
 *
 * Returns 0; -EINVAL (host DT malformed as in dt_node_parse_host, map does not match
 * the host node, guest blob invalid or its root not 2/2, GIC or clock phandle not in
 * the guest, SPI > DT_NODE_MAX_SPI); -EEXIST (node name or node_phandle already in the
 * guest); -ENOSPC (guest_bufsize too small); -ENOMEM. d->error says which.
 * res may be NULL.
 */
int dt_node_generate(void *guest, size_t guest_bufsize, const void *host, size_t host_size,
		     const char *host_path, const struct dt_node_map *map,
		     struct dt_node_result *res, struct dt_node_diag *d);

/*
 * User DT fragment instead of a generated node.
 *
 * Convention: the fragment is a DTB compiled by dtc from a .dts whose root holds the
 * device node (optionally further nodes, e.g. a gpio-keys using the device), e.g.
 *   /dts-v1/;
 *   / {
 *       #address-cells = <2>; #size-cells = <2>;
 *       pl061@9030000 {
 *           compatible = "arm,pl061", "arm,primecell";
 *           reg = <0x0 0x9030000 0x0 0x1000>;
 *           interrupt-parent = <1>;            // phandle 1 = the guest GIC
 *           interrupts = <0 7 4>;              // <GIC_SPI guest-spi trigger>
 *           clocks = <2>;                      // phandle 2 = the guest's 24 MHz clock
 *           clock-names = "apb_pclk";
 *           gpio-controller; #gpio-cells = <2>;
 *       };
 *   };
 * - The fragment root's #address-cells/#size-cells must be 2/2 (the guest root's);
 *   absent counts as 2/2. Other root properties are ignored (DEBUG note).
 * - Every node under the fragment root is copied verbatim, subnodes included, in order.
 * - Phandle DT_NODE_FRAG_PHANDLE_GIC (1) is the guest GIC and
 *   DT_NODE_FRAG_PHANDLE_CLOCK (2) the guest fixed clock (#clock-cells = 0); both match
 *   the guest DT a64_fdt_build makes and are checked in `guest`. A fragment node may
 *   define its own phandle (to be referenced by another fragment node); it must not be
 *   1, 2 or a phandle the guest already has.
 * - Validation: at least one top-level node has `reg`; every top-level `reg` entry
 *   (2+2 cells) must lie inside one of check->regions (what the VMM maps for the
 *   device; a mapped region no node covers gets a DEBUG note); `interrupt-parent`,
 *   `interrupts-extended` and `clocks` may reference only phandle 1 (GIC), 2 (clock,
 *   in clocks) or phandles the fragment defines; interrupts going to the GIC must be
 *   3-cell SPIs among check->spis. Other properties are not interpreted.
 * Returns 0 (guest packed, res->name = the first top-level node); -EINVAL (bad blob,
 * rule broken; d->error names node and property); -EEXIST (a top-level node name or a
 * fragment phandle already in the guest); -ENOSPC; -ENOMEM. Transactional as above.
 */
#define DT_NODE_FRAG_PHANDLE_GIC 1u
#define DT_NODE_FRAG_PHANDLE_CLOCK 2u

struct dt_node_frag_check {
	unsigned int nr_regions;
	struct dt_node_region regions[DT_NODE_MAX_REGS]; /* guest ranges mapped for the device */
	unsigned int nr_spis;
	uint32_t spis[DT_NODE_MAX_IRQS]; /* guest SPIs wired to the device */
};

int dt_node_add_fragment(void *guest, size_t guest_bufsize, const void *frag, size_t frag_size,
			 const struct dt_node_frag_check *check, struct dt_node_result *res,
			 struct dt_node_diag *d);

#endif
