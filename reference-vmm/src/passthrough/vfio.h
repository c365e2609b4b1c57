/* VFIO platform/AMBA passthrough: the per-VM container (IOMMU groups, type1v2 DMA
 * maps or no-IOMMU mode) and passed-through devices (sysfs checks, regions mmapped or
 * trapped, eventfd IRQs with level resampling, reset). Every syscall goes via sys/. */
#ifndef VMM_VFIO_H
#define VMM_VFIO_H

#include "core/bus.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "sys/sys.h"

#include <linux/vfio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Lifecycle (what the machine does)
 * ---------------------------------
 *   vfio_container_new()          once per VM, no syscalls yet
 *   vfio_dev_open() per device    at VMM creation: bad user input fails before boot
 *   per boot:
 *     vfio_container_map_guest_mem()  type1v2: MAP_DMA all guest RAM (iova = GPA)
 *     vfio_dev_reset()                device reset + re-arm of level IRQs
 *     regions: r->map ? KVM memslot at the guest address (KVM_MEM_READONLY when the
 *              region lacks VFIO_REGION_INFO_FLAG_WRITE) : bus_register(..,
 *              &vfio_region_bus_ops, r, ..)
 *     irqs:    eventfds + KVM_IRQFD (level irqs: KVM_IRQFD_FLAG_RESAMPLE), then
 *              vfio_dev_irq_enable(dev, index, trigger_fd, resample_fd)
 *   at the end of a boot: vfio_dev_irq_disable(), KVM_IRQFD deassign, close the
 *     eventfds, destroy the VM (memslots), vfio_dev_reset(), then
 *     vfio_container_unmap_all() BEFORE unmapping guest RAM.
 *   at exit: vfio_dev_close() each device, vfio_container_free().
 *
 * Errors: functions return 0 or a negative errno and, where they take err/errlen,
 * write one sentence naming the device. Bad user input (no such device, not bound
 * to vfio-platform/vfio-amba, no IOMMU group, group not viable, same device twice,
 * mixing IOMMU and no-IOMMU groups) returns -EINVAL so the CLI exits 2; host or
 * kernel failures return their errno. A failed call leaves no fd, mapping or group
 * behind that it created.
 *
 * Threading: container and device calls come from one thread (the VMM's main
 * thread). vfio_region_bus_ops may run on any vCPU thread concurrently with each
 * other (they only pread/pwrite), but not concurrently with vfio_dev_close().
 *
 * No-IOMMU mode (hosts without an IOMMU, e.g. QEMU virt): the kernel gives the
 * device no DMA translation and no isolation. A DMA-capable device would write to
 * raw host physical addresses chosen by the guest: it can corrupt the host. This
 * layer maps no DMA in that mode and logs a warning once; only pass through
 * devices that do not do DMA (GPIO, RTC, UART without DMA, fw-cfg...).
 *
 * Level interrupts (AUTOMASKED): the kernel masks the line each time it signals
 * the trigger eventfd. vfio_dev_irq_enable() registers the caller's resample
 * eventfd as the IRQ's unmask eventfd (VFIO_IRQ_SET_DATA_EVENTFD |
 * VFIO_IRQ_SET_ACTION_UNMASK): at the guest's EOI KVM signals it and the kernel
 * unmasks the line with no userspace hop. A line masked when no guest can EOI it
 * (it fired during the previous boot, or between irq disable and reset) would stay
 * masked forever, because the kernel keeps the mask across trigger changes and
 * device resets. So the line is explicitly unmasked (DATA_NONE | ACTION_UNMASK, a
 * no-op when not masked) after every enable and by every vfio_dev_reset() of a
 * device whose level irq is enabled. An IRQ that fires before the guest driver is
 * ready is not lost either: KVM holds the resampled SPI pending in the vGIC until
 * the guest enables it, handles it and EOIs, which unmasks it.
 */

#define VFIO_CONTAINER_PATH "/dev/vfio/vfio"
#define VFIO_DEFAULT_SYSFS_ROOT "/sys"
#define VFIO_ADDR_UNKNOWN UINT64_MAX
#define VFIO_MAX_REGIONS 64
#define VFIO_MAX_IRQS 64

struct vfio_container;
struct vfio_group;
struct vfio_dev;

enum vfio_iommu_mode {
	VFIO_MODE_NONE = 0, /* no group attached yet */
	VFIO_MODE_TYPE1V2,  /* real IOMMU: guest RAM is DMA-mapped */
	VFIO_MODE_NOIOMMU,  /* unsafe no-IOMMU mode: no DMA mapping (see above) */
};

struct vfio_region {
	struct vfio_dev *dev;
	unsigned int index;
	uint64_t size;
	uint64_t offset;    /* of the region in the device fd (pread/pwrite/mmap) */
	uint32_t flags;     /* VFIO_REGION_INFO_FLAG_READ/WRITE/MMAP */
	uint64_t host_phys; /* VFIO_ADDR_UNKNOWN; the machine may fill it from the host DT */
	/* Direct access: the whole region mmapped (size bytes, PROT from READ/WRITE),
	 * owned by the device, valid until vfio_dev_close(). NULL: trap it with
	 * vfio_region_bus_ops. Mapped only when the kernel reports MMAP (it does so only
	 * for regions page-aligned in address and size), size and offset are page
	 * aligned, and the mmap succeeds (a failed mmap falls back to trapping, logged). */
	void *map;
	atomic_bool warned; /* a trapped access failed and was logged */
};

struct vfio_irq {
	unsigned int index;
	uint32_t count; /* sub-IRQs in the index; platform devices have 1 */
	uint32_t flags; /* VFIO_IRQ_INFO_EVENTFD/MASKABLE/AUTOMASKED */
	bool enabled;
	int trigger_fd; /* borrowed from the caller while enabled, else -1 */
	int unmask_fd;  /* borrowed while enabled (level irqs only), else -1 */
};

/* Read-only for callers: filled by vfio_dev_open(), freed by vfio_dev_close(). */
struct vfio_dev {
	struct vfio_container *c;
	struct vfio_group *group;
	char *name;       /* device name = basename of the sysfs path, e.g. 9030000.pl061 */
	char *sysfs_path; /* resolved path of the device directory (under the sysfs root) */
	char *of_node;    /* resolved path of its of_node directory, or NULL */
	char *driver;     /* "vfio-platform" or "vfio-amba" */
	int fd;           /* VFIO device fd */
	uint32_t flags;   /* VFIO_DEVICE_FLAGS_* */
	unsigned int nr_regions;
	struct vfio_region *regions;
	unsigned int nr_irqs;
	struct vfio_irq *irqs;
	bool reset_warned;
};

/* ---- container (one per VM) ---- */

/*
 * A container that opens /dev/vfio/vfio at the first vfio_dev_open(). sys and log
 * are borrowed (must outlive it); sysfs_root NULL means "/sys" and is copied: sysfs
 * paths starting with "/sys/" are looked up under it (tests use a fake tree).
 * Returns NULL on allocation failure.
 */
struct vfio_container *vfio_container_new(const struct sys *sys, const struct log *log,
					  const char *sysfs_root);
/* Unmaps DMA, closes every group and the container fd, frees. Devices must be
 * closed first (a still-open device is closed here, with a warning). NULL is a no-op. */
void vfio_container_free(struct vfio_container *c);
enum vfio_iommu_mode vfio_container_mode(const struct vfio_container *c);
/* The container fd, or -1 before the first device is opened. */
int vfio_container_fd(const struct vfio_container *c);

/*
 * Make [iova, iova+size) DMA-able at host address host (READ|WRITE). type1v2: the
 * range is mapped now, or at the first vfio_dev_open() if no group is attached yet.
 * no-IOMMU: the range is only recorded, nothing is mapped (the unsafety warning is
 * logged when the first device attaches), returns 0. iova, host and
 * size must be page-aligned, size > 0, no overlap with a range already added
 * (-EINVAL / -EEXIST); kernel failures are returned with err set.
 */
int vfio_container_map_dma(struct vfio_container *c, uint64_t iova, void *host, uint64_t size,
			   char *err, size_t errlen);
/* vfio_container_map_dma() for every region of gm; on failure the regions mapped by
 * this call are unmapped again. */
int vfio_container_map_guest_mem(struct vfio_container *c, const struct guest_mem *gm, char *err,
				 size_t errlen);
/* Unmap one range added by map_dma (exact iova and size): 0, -ENOENT, or the kernel's
 * error (the range is forgotten anyway, logged). */
int vfio_container_unmap_dma(struct vfio_container *c, uint64_t iova, uint64_t size);
/* Unmap every range; must run before the host memory goes away. Returns 0 or the
 * first error (all ranges are forgotten). */
int vfio_container_unmap_all(struct vfio_container *c);
/* Number of ranges currently known (mapped or waiting for an IOMMU). */
unsigned int vfio_container_nr_dma(const struct vfio_container *c);

/* ---- devices ---- */

/*
 * Open the platform/AMBA device at sysfs_path (e.g. /sys/bus/amba/devices/9030000.pl061)
 * in container c: checks the driver binding, finds and attaches its IOMMU group
 * (shared with other devices of the same group), gets the device fd and its regions
 * and IRQs, mmaps the mappable regions. On success *out is the device (free with
 * vfio_dev_close()); on failure *out is NULL and err says why.
 */
int vfio_dev_open(struct vfio_container *c, const char *sysfs_path, struct vfio_dev **out,
		  char *err, size_t errlen);
/* Disables enabled irqs, unmaps regions, closes the device fd. The group stays
 * attached to the container until vfio_container_free(). NULL is a no-op. */
void vfio_dev_close(struct vfio_dev *dev);

/*
 * VFIO_DEVICE_RESET if the device supports it (else logged once, returns 0), then
 * unmask every enabled maskable irq (see "Level interrupts" above). Call at VM start
 * and stop. Returns 0 or the reset's/unmask's negative errno (logged).
 */
int vfio_dev_reset(struct vfio_dev *dev);

/* ---- regions ---- */

/* Trap handlers: dev argument is the struct vfio_region *. Accesses of 1/2/4/8 bytes
 * inside the region are forwarded with pread/pwrite at region offset + off; an
 * access outside it, to a region lacking READ/WRITE, or failing in the kernel
 * reads all-ones / is dropped, and is logged once per region. */
extern const struct bus_device_ops vfio_region_bus_ops;

/* The region with VFIO index `index`, or NULL. */
struct vfio_region *vfio_dev_region(struct vfio_dev *dev, unsigned int index);

/* ---- irqs ---- */

/* The IRQ with VFIO index `index`, or NULL. */
struct vfio_irq *vfio_dev_irq(struct vfio_dev *dev, unsigned int index);

static inline bool vfio_irq_is_level(const struct vfio_irq *irq)
{
	return (irq->flags & VFIO_IRQ_INFO_AUTOMASKED) != 0;
}

/*
 * Route IRQ `index` (sub-IRQ 0) to the eventfd trigger_fd. For a level (AUTOMASKED)
 * irq, unmask_fd is registered as its unmask eventfd (pass KVM's resamplefd) and the
 * line is unmasked; unmask_fd < 0 means the caller unmasks with vfio_dev_irq_unmask()
 * itself. For edge irqs unmask_fd is ignored. The fds stay owned by the caller and
 * must stay open until vfio_dev_irq_disable(); use fresh (or drained) eventfds per
 * boot, as KVM injects a count left from the previous boot at KVM_IRQFD time (harmless
 * for a level irq: the guest sees nothing pending and EOIs). Re-enabling replaces
 * its fds. Errors: -EINVAL (no such irq, count 0, no EVENTFD support, trigger_fd < 0),
 * kernel errors; on failure the irq is left disabled.
 */
int vfio_dev_irq_enable(struct vfio_dev *dev, unsigned int index, int trigger_fd, int unmask_fd,
			char *err, size_t errlen);
/* Stop signalling (trigger and unmask eventfds unregistered). 0, -EINVAL (no such
 * irq) or the first kernel error; the irq is marked disabled in any case. Idempotent. */
int vfio_dev_irq_disable(struct vfio_dev *dev, unsigned int index);
/* VFIO_IRQ_SET_DATA_NONE | ACTION_UNMASK on sub-IRQ 0. -EINVAL if not maskable. */
int vfio_dev_irq_unmask(struct vfio_dev *dev, unsigned int index);

#endif
