/* Passthrough wiring: VFIO devices opened and checked against the host DT,
 * guest placement (identity / fixed / platform-bus window) with overlap checks,
 * SPI assignment, guest DT node (generated or user fragment); per boot DMA map,
 * reset, memslots or trapped regions, irqfds with resample for level IRQs. */
#include "core/passthrough.h"
#include "core/arch.h"
#include "core/errbuf.h"
#include "core/vmm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#define PAGE 4096ULL
#define HOST_FDT_MAX (4U << 20)
#define FRAG_MAX (1U << 20)


/* Whole file into a malloc'd buffer (at most max bytes). */
static int read_file(const char *path, size_t max, void **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	uint8_t *b = malloc(max);
	if (!b) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(b, 1, max, f);
	int e = ferror(f) ? -EIO : 0;
	if (!e && fgetc(f) != EOF)
		e = -EFBIG;
	fclose(f);
	if (e) {
		free(b);
		return e;
	}
	*buf = b;
	*len = n;
	return 0;
}

static const char *sysfs_root(const struct vmm *vmm)
{
	return vmm->cfg->sysfs_root ? vmm->cfg->sysfs_root : "/sys";
}

static const char *short_name(const struct pt_device *d)
{
	return d->dev ? d->dev->name : d->cfg->sysfs;
}

/* Does [g, g+size) collide with the machine or with devices placed before? */
static int check_range(struct vmm *vmm, struct pt_device *d, uint64_t g, uint64_t size, char *err,
		       size_t errlen)
{
	const char *what = NULL;
	if (arch_range_in_use(vmm->cfg, g, size, &what))
		return errbuf_fail(err, errlen, -EINVAL,
			    "--passthrough %s: guest range 0x%llx+0x%llx overlaps %s", short_name(d),
			    (unsigned long long)g, (unsigned long long)size, what);
	struct pt_state *pt = vmm->pt;
	for (unsigned int i = 0; i <= pt->nr && i < VMM_MAX_PASSTHROUGH; i++) {
		struct pt_device *o = &pt->devs[i];
		for (unsigned int r = 0; r < o->nr_regions; r++) {
			if (o == d && o->regions[r].guest == g)
				continue;
			if (g < o->regions[r].guest + o->regions[r].size &&
			    o->regions[r].guest < g + size)
				return errbuf_fail(err, errlen, -EINVAL,
					    "--passthrough %s: guest range 0x%llx+0x%llx overlaps %s",
					    short_name(d), (unsigned long long)g,
					    (unsigned long long)size, short_name(o));
		}
	}
	return 0;
}

static bool spi_taken(struct vmm *vmm, unsigned int spi)
{
	if (arch_spi_in_use(vmm->cfg, spi))
		return true;
	struct pt_state *pt = vmm->pt;
	for (unsigned int i = 0; i <= pt->nr && i < VMM_MAX_PASSTHROUGH; i++)
		for (unsigned int k = 0; k < pt->devs[i].nr_irqs; k++)
			if (pt->devs[i].irqs[k].spi == spi)
				return true;
	return false;
}

static int assign_irqs(struct vmm *vmm, struct pt_device *d, const struct dt_node_host *host,
		       char *err, size_t errlen)
{
	const struct vmm_passthrough_config *c = d->cfg;
	unsigned int first, limit;
	arch_pt_spi_range(&first, &limit);
	if (d->dev->nr_irqs != host->nr_irqs)
		return errbuf_fail(err, errlen, -EINVAL,
			    "--passthrough %s: VFIO reports %u IRQs but the host DT node has %u",
			    short_name(d), d->dev->nr_irqs, host->nr_irqs);
	for (unsigned int m = 0; m < c->nr_irq_map; m++)
		if (c->irq_map[m].index >= d->dev->nr_irqs)
			return errbuf_fail(err, errlen, -EINVAL,
				    "--passthrough %s: irq index %u does not exist (the device has %u)",
				    short_name(d), c->irq_map[m].index, d->dev->nr_irqs);
	for (unsigned int i = 0; i < d->dev->nr_irqs; i++) {
		const struct vfio_irq *vi = &d->dev->irqs[i];
		if (!(vi->flags & VFIO_IRQ_INFO_EVENTFD) || vi->count == 0)
			return errbuf_fail(err, errlen, -EINVAL,
				    "--passthrough %s: IRQ %u cannot be mapped (no eventfd support)",
				    short_name(d), vi->index);
		int spi = -1;
		for (unsigned int m = 0; m < c->nr_irq_map; m++)
			if (c->irq_map[m].index == vi->index)
				spi = (int)c->irq_map[m].spi;
		if (spi >= 0) {
			if ((unsigned int)spi >= limit)
				return errbuf_fail(err, errlen, -EINVAL,
					    "--passthrough %s: IRQ %u cannot be mapped to SPI %d (the guest GIC has SPIs 0..%u)",
					    short_name(d), vi->index, spi, limit - 1);
			if (spi_taken(vmm, (unsigned int)spi))
				return errbuf_fail(err, errlen, -EINVAL,
					    "--passthrough %s: IRQ %u cannot be mapped to SPI %d: it is in use",
					    short_name(d), vi->index, spi);
		} else {
			for (unsigned int s = first; s < limit && spi < 0; s++)
				if (!spi_taken(vmm, s))
					spi = (int)s;
			if (spi < 0)
				return errbuf_fail(err, errlen, -EINVAL,
					    "--passthrough %s: no free SPI for IRQ %u", short_name(d),
					    vi->index);
		}
		d->irqs[d->nr_irqs++] = (struct pt_irq){ .index = vi->index,
							 .spi = (unsigned int)spi,
							 .trigger_fd = -1,
							 .resample_fd = -1 };
	}
	return 0;
}

static int place_regions(struct vmm *vmm, struct pt_device *d, const struct dt_node_host *host,
			 struct dt_node_map *map, char *err, size_t errlen)
{
	struct dt_node_diag diag;
	dt_node_diag_init(&diag);
	if (d->dev->nr_regions != host->nr_regs)
		return errbuf_fail(err, errlen, -EINVAL,
			    "--passthrough %s: VFIO reports %u regions but the host DT node has %u",
			    short_name(d), d->dev->nr_regions, host->nr_regs);
	switch (d->cfg->placement) {
	case VMM_PT_IDENTITY:
		dt_node_map_identity(host, map);
		break;
	case VMM_PT_FIXED:
		if (dt_node_map_window(host, d->cfg->addr, 1ULL << 32, PAGE, map, &diag) < 0)
			return errbuf_fail(err, errlen, -EINVAL, "--passthrough %s: cannot place it at 0x%llx: %s",
				    short_name(d), (unsigned long long)d->cfg->addr, diag.error);
		break;
	default: {
		uint64_t base, size;
		arch_pt_window(&base, &size);
		/* after what earlier devices took from the window */
		uint64_t used = base;
		for (unsigned int i = 0; i < vmm->pt->nr; i++)
			for (unsigned int r = 0; r < vmm->pt->devs[i].nr_regions; r++) {
				const struct pt_region *o = &vmm->pt->devs[i].regions[r];
				if (o->guest >= base && o->guest < base + size &&
				    o->guest + o->size > used)
					used = (o->guest + o->size + PAGE - 1) & ~(PAGE - 1);
			}
		if (dt_node_map_window(host, used, base + size - used, PAGE, map, &diag) < 0)
			return errbuf_fail(err, errlen, -EINVAL,
				    "--passthrough %s: no room in the platform-bus window: %s",
				    short_name(d), diag.error);
		break;
	}
	}
	for (unsigned int i = 0; i < d->dev->nr_regions; i++) {
		const struct vfio_region *vr = &d->dev->regions[i];
		if (vr->size > host->regs[i].size)
			return errbuf_fail(err, errlen, -EINVAL,
				    "--passthrough %s: VFIO region %u (0x%llx bytes) is larger than its DT reg (0x%llx)",
				    short_name(d), i, (unsigned long long)vr->size,
				    (unsigned long long)host->regs[i].size);
		struct pt_region *pr = &d->regions[i];
		*pr = (struct pt_region){ .index = vr->index,
					  .guest = map->reg_guest[i],
					  .size = vr->size,
					  .slot = -1 };
		if (vr->map && (pr->guest % PAGE))
			return errbuf_fail(err, errlen, -EINVAL,
				    "--passthrough %s: guest address 0x%llx of an mmappable region is not page aligned",
				    short_name(d), (unsigned long long)pr->guest);
		d->nr_regions = i + 1;
		int r = check_range(vmm, d, pr->guest, pr->size, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

static int add_dt_node(struct vmm *vmm, struct pt_device *d, const void *host_fdt,
		       size_t host_len, const char *path, struct dt_node_map *map, char *err,
		       size_t errlen)
{
	void *fdt;
	size_t bufsize;
	int r = arch_boot_fdt(vmm->boot, &fdt, &bufsize);
	if (r < 0)
		return errbuf_fail(err, errlen, -EINVAL,
			    "--passthrough %s: this machine has no device tree", short_name(d));
	struct dt_node_diag diag;
	dt_node_diag_init(&diag);
	char prefix[96];
	snprintf(prefix, sizeof(prefix), "passthrough %s", short_name(d));
	if (d->cfg->dtb) {
		void *frag;
		size_t flen;
		r = read_file(d->cfg->dtb, FRAG_MAX, &frag, &flen);
		if (r < 0)
			return errbuf_fail(err, errlen, -EINVAL, "--passthrough %s: cannot read dtb '%s': %s",
				    short_name(d), d->cfg->dtb, strerror(-r));
		struct dt_node_frag_check check = { .nr_regions = d->nr_regions, .nr_spis = d->nr_irqs };
		for (unsigned int i = 0; i < d->nr_regions; i++)
			check.regions[i] = (struct dt_node_region){ d->regions[i].guest,
								     d->regions[i].size };
		for (unsigned int i = 0; i < d->nr_irqs; i++)
			check.spis[i] = d->irqs[i].spi;
		r = dt_node_add_fragment(fdt, bufsize, frag, flen, &check, NULL, &diag);
		free(frag);
	} else {
		map->nr_irqs = d->nr_irqs;
		for (unsigned int i = 0; i < d->nr_irqs; i++)
			map->irq_guest_spi[i] = d->irqs[i].spi;
		map->gic_phandle = arch_fdt_gic_phandle();
		map->clock_phandle = 0; /* a fixed clock at the host's rate */
		r = dt_node_generate(fdt, bufsize, host_fdt, host_len, path, map, NULL, &diag);
	}
	dt_node_diag_log(&diag, &vmm->log, prefix);
	if (r < 0)
		return errbuf_fail(err, errlen, r == -ENOSPC ? -ENOSPC : -EINVAL, "--passthrough %s: %s",
			    short_name(d), diag.error);
	arch_boot_fdt_changed(vmm->boot);
	return 0;
}

static int prepare_one(struct vmm *vmm, struct pt_device *d, const void *host_fdt,
		       size_t host_len, char *err, size_t errlen)
{
	int r = vfio_dev_open(vmm->pt->container, d->cfg->sysfs, &d->dev, err, errlen);
	if (r < 0)
		return r == -EINVAL ? -EINVAL : r;
	char path[DT_NODE_PATH_MAX];
	struct dt_node_diag diag;
	dt_node_diag_init(&diag);
	if (dt_node_path_from_sysfs(d->dev->sysfs_path, path, sizeof(path), &diag) < 0)
		return errbuf_fail(err, errlen, -EINVAL, "--passthrough %s: %s", short_name(d), diag.error);
	struct dt_node_host host;
	if (dt_node_parse_host(host_fdt, host_len, path, &host, &diag) < 0)
		return errbuf_fail(err, errlen, -EINVAL, "--passthrough %s: %s", short_name(d), diag.error);
	for (unsigned int i = 0; i < d->dev->nr_regions && i < host.nr_regs; i++)
		d->dev->regions[i].host_phys = host.regs[i].addr;
	struct dt_node_map map;
	memset(&map, 0, sizeof(map));
	r = place_regions(vmm, d, &host, &map, err, errlen);
	if (!r)
		r = assign_irqs(vmm, d, &host, err, errlen);
	if (!r)
		r = add_dt_node(vmm, d, host_fdt, host_len, path, &map, err, errlen);
	if (!r) {
		for (unsigned int i = 0; i < d->nr_regions; i++)
			log_info(&vmm->log, "passthrough %s: region %u at guest 0x%llx (0x%llx bytes, %s)",
				 short_name(d), d->regions[i].index,
				 (unsigned long long)d->regions[i].guest,
				 (unsigned long long)d->regions[i].size,
				 d->dev->regions[i].map ? "direct" : "trapped");
		for (unsigned int i = 0; i < d->nr_irqs; i++)
			log_info(&vmm->log, "passthrough %s: IRQ %u → guest SPI %u (%s)", short_name(d),
				 d->irqs[i].index, d->irqs[i].spi,
				 vfio_irq_is_level(&d->dev->irqs[i]) ? "level" : "edge");
	}
	return r;
}

int pt_prepare(struct vmm *vmm, char *err, size_t errlen)
{
	const struct vmm_config *cfg = vmm->cfg;
	if (!cfg->nr_passthrough)
		return 0;
	struct pt_state *pt = calloc(1, sizeof(*pt));
	if (!pt)
		return errbuf_fail(err, errlen, -ENOMEM, "out of memory");
	vmm->pt = pt;
	pt->container = vfio_container_new(&vmm->sys, &vmm->log, cfg->sysfs_root);
	if (!pt->container)
		return errbuf_fail(err, errlen, -ENOMEM, "out of memory");

	char fdt_path[512];
	snprintf(fdt_path, sizeof(fdt_path), "%s/firmware/fdt", sysfs_root(vmm));
	void *host_fdt;
	size_t host_len;
	int r = read_file(fdt_path, HOST_FDT_MAX, &host_fdt, &host_len);
	if (r < 0)
		return errbuf_fail(err, errlen, -EINVAL,
			    "--passthrough needs the host device tree, but %s cannot be read: %s",
			    fdt_path, strerror(-r));
	for (unsigned int i = 0; i < cfg->nr_passthrough && !r; i++) {
		struct pt_device *d = &pt->devs[i];
		d->cfg = &cfg->passthrough[i];
		r = prepare_one(vmm, d, host_fdt, host_len, err, errlen);
		pt->nr = i + 1;
	}
	free(host_fdt);
	return r;
}

static int irqfd(struct vmm *vmm, struct pt_irq *pi, bool level, bool assign)
{
	struct kvm_irqfd f = {
		.fd = (uint32_t)pi->trigger_fd,
		.gsi = pi->spi,
		.flags = assign ? (level ? KVM_IRQFD_FLAG_RESAMPLE : 0) : KVM_IRQFD_FLAG_DEASSIGN,
		.resamplefd = level && assign ? (uint32_t)pi->resample_fd : 0,
	};
	return sys_ioctl_ptr(&vmm->sys, vmm->vm_fd, KVM_IRQFD, &f);
}

static int boot_irq(struct vmm *vmm, struct pt_device *d, struct pt_irq *pi, char *err,
		    size_t errlen)
{
	const struct vfio_irq *vi = vfio_dev_irq(d->dev, pi->index);
	bool level = vfio_irq_is_level(vi);
	pi->trigger_fd = sys_eventfd(&vmm->sys, 0, EFD_NONBLOCK);
	if (pi->trigger_fd < 0)
		return errbuf_fail(err, errlen, pi->trigger_fd, "eventfd failed: %s", strerror(-pi->trigger_fd));
	if (level) {
		pi->resample_fd = sys_eventfd(&vmm->sys, 0, EFD_NONBLOCK);
		if (pi->resample_fd < 0)
			return errbuf_fail(err, errlen, pi->resample_fd, "eventfd failed: %s",
				    strerror(-pi->resample_fd));
	}
	int r = irqfd(vmm, pi, level, true);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "passthrough %s: KVM_IRQFD for SPI %u failed: %s",
			    short_name(d), pi->spi, strerror(-r));
	pi->irqfd = true;
	return vfio_dev_irq_enable(d->dev, pi->index, pi->trigger_fd, level ? pi->resample_fd : -1,
				   err, errlen);
}

static int boot_region(struct vmm *vmm, struct pt_device *d, struct pt_region *pr, char *err,
		       size_t errlen)
{
	struct vfio_region *vr = vfio_dev_region(d->dev, pr->index);
	if (!vr->map) {
		int r = bus_register(&vmm->mmio, pr->guest, pr->size, &vfio_region_bus_ops, vr,
				     d->dev->name);
		if (r < 0)
			return errbuf_fail(err, errlen, r, "passthrough %s: cannot trap 0x%llx: %s",
				    short_name(d), (unsigned long long)pr->guest, strerror(-r));
		pr->trapped = true;
		return 0;
	}
	struct kvm_userspace_memory_region m = {
		.slot = (uint32_t)vmm->pt->next_slot,
		.flags = (vr->flags & VFIO_REGION_INFO_FLAG_WRITE) ? 0 : KVM_MEM_READONLY,
		.guest_phys_addr = pr->guest,
		.memory_size = pr->size,
		.userspace_addr = (uint64_t)(uintptr_t)vr->map,
	};
	int r = sys_ioctl_ptr(&vmm->sys, vmm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "passthrough %s: memslot at 0x%llx failed: %s",
			    short_name(d), (unsigned long long)pr->guest, strerror(-r));
	pr->slot = vmm->pt->next_slot++;
	return 0;
}

int pt_boot(struct vmm *vmm, char *err, size_t errlen)
{
	struct pt_state *pt = vmm->pt;
	if (!pt)
		return 0;
	pt->next_slot = 1; /* slot 0 is RAM */
	int r = vfio_container_map_guest_mem(pt->container, &vmm->mem, err, errlen);
	for (unsigned int i = 0; i < pt->nr && !r; i++) {
		struct pt_device *d = &pt->devs[i];
		r = vfio_dev_reset(d->dev);
		if (r < 0) {
			errbuf_fail(err, errlen, r, "passthrough %s: reset failed: %s", short_name(d),
			     strerror(-r));
			break;
		}
		for (unsigned int k = 0; k < d->nr_regions && !r; k++)
			r = boot_region(vmm, d, &d->regions[k], err, errlen);
		for (unsigned int k = 0; k < d->nr_irqs && !r; k++)
			r = boot_irq(vmm, d, &d->irqs[k], err, errlen);
	}
	return r;
}

void pt_teardown(struct vmm *vmm)
{
	struct pt_state *pt = vmm->pt;
	if (!pt)
		return;
	for (unsigned int i = 0; i < pt->nr; i++) {
		struct pt_device *d = &pt->devs[i];
		for (unsigned int k = 0; k < d->nr_irqs; k++) {
			struct pt_irq *pi = &d->irqs[k];
			if (d->dev)
				vfio_dev_irq_disable(d->dev, pi->index);
			if (pi->irqfd && vmm->vm_fd >= 0)
				irqfd(vmm, pi, false, false);
			pi->irqfd = false;
			if (pi->trigger_fd >= 0)
				sys_close(&vmm->sys, pi->trigger_fd);
			if (pi->resample_fd >= 0)
				sys_close(&vmm->sys, pi->resample_fd);
			pi->trigger_fd = pi->resample_fd = -1;
		}
		for (unsigned int k = 0; k < d->nr_regions; k++) {
			struct pt_region *pr = &d->regions[k];
			if (pr->slot >= 0 && vmm->vm_fd >= 0) {
				struct kvm_userspace_memory_region m = { .slot = (uint32_t)pr->slot };
				sys_ioctl_ptr(&vmm->sys, vmm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m);
			}
			pr->slot = -1;
			pr->trapped = false;
		}
		if (d->dev)
			vfio_dev_reset(d->dev);
	}
	vfio_container_unmap_all(pt->container);
}

void pt_free(struct vmm *vmm)
{
	struct pt_state *pt = vmm->pt;
	if (!pt)
		return;
	for (unsigned int i = 0; i < pt->nr; i++)
		vfio_dev_close(pt->devs[i].dev);
	vfio_container_free(pt->container);
	free(pt);
	vmm->pt = NULL;
}
