/* Mock VFIO: a model of the Linux VFIO ioctl ABI (container, groups, platform/AMBA
 * devices with regions and IRQs, type1v2 DMA) behind the sys seam (sys/sys.h), with
 * error injection, a call log and fd/mapping leak accounting, for unit tests. */
#ifndef MOCK_VFIO_H
#define MOCK_VFIO_H

#include <linux/vfio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sys/sys.h"

/*
 * Overview
 * --------
 * mock_vfio_new() creates a fake host; the test declares IOMMU groups, devices,
 * regions and IRQs, then hands mock_vfio_sys() to the code under test, or chains it
 * behind mock KVM (mock_kvm_set_fallback(kvm, &vfio_sys)) so one struct sys serves
 * both: mock KVM forwards opens of paths it does not know, ops on fds it does not own
 * and munmaps of addresses it did not map. Container, group and device fds are real
 * fds on /dev/null (numbers never collide); eventfd() makes real eventfds; region
 * memory is a memfd per region, so a device mmap is real shared memory the test sees
 * through mock_vfio_region_mem().
 *
 * Model (Linux 6.1 vfio, vfio_iommu_type1, vfio-platform; "mock:" marks simplifications)
 *  paths      /dev/vfio/vfio opens a new container (ENOENT when the node is removed
 *             with mock_vfio_set_container_node()). /dev/vfio/N opens IOMMU group N,
 *             /dev/vfio/noiommu-N a no-IOMMU group N; a group open twice -> EBUSY;
 *             anything else -> ENOENT.
 *  container  VFIO_GET_API_VERSION -> 0 (settable). VFIO_CHECK_EXTENSION: with an IOMMU
 *             set, that driver answers (type1: TYPE1, TYPE1v2, UNMAP_ALL; noiommu:
 *             NOIOMMU); without, any supported driver allowed for the attached groups
 *             (no-IOMMU groups only allow noiommu and vice versa) -> 1, else 0.
 *             VFIO_SET_IOMMU: no group attached or IOMMU already set -> EINVAL; type not
 *             supported/allowed -> ENODEV. VFIO_IOMMU_MAP_DMA (type1 only; no IOMMU ->
 *             EINVAL, noiommu -> ENOTTY): argsz < minsz, unknown flags, VADDR (mock: not
 *             modelled), no READ/WRITE, size 0, iova/vaddr/size not 4 KiB aligned,
 *             wrap-around -> EINVAL; overlap with a mapping -> EEXIST; vaddr range not
 *             mapped in this process -> EFAULT (the kernel fails to pin). UNMAP_DMA:
 *             argsz/flags/alignment/size 0/wrap -> EINVAL; a range that splits a
 *             mapping -> EINVAL (v2 rule); removes the mappings inside the range and
 *             returns their total in .size; as Linux, a range with no mapping returns 0
 *             with .size 0 (mock: also recorded as a violation). UNMAP_FLAG_ALL with
 *             iova/size != 0 -> EINVAL. Other ioctls: no IOMMU -> EINVAL, type1 ->
 *             ENOTTY. The container lives while its fd is open or groups are attached;
 *             when its last group leaves, the IOMMU is unset and its DMA map is dropped.
 *  group      VFIO_GROUP_GET_STATUS (argsz < 8 -> EINVAL): VIABLE|CONTAINER_SET when
 *             attached, VIABLE when viable. VFIO_GROUP_SET_CONTAINER (pointer to s32):
 *             already attached -> EINVAL; no-IOMMU group without CAP_SYS_RAWIO
 *             (mock_vfio_set_rawio) -> EPERM; fd not open -> EBADF, not a container ->
 *             EINVAL; IOMMU and no-IOMMU groups mixed in one container -> EPERM; group
 *             not viable -> EBUSY (DMA ownership claim). VFIO_GROUP_UNSET_CONTAINER: not
 *             attached -> EINVAL, device files open -> EBUSY. VFIO_GROUP_GET_DEVICE_FD
 *             (NUL-terminated name): NULL -> EFAULT; not attached or container has no
 *             IOMMU -> EINVAL; no such device in the group -> ENODEV. Closing the group
 *             fd detaches it once no device file of it is open.
 *  device     VFIO_DEVICE_GET_INFO / GET_REGION_INFO / GET_IRQ_INFO: argsz < minsz or
 *             index out of range -> EINVAL; region offsets are index << 40 (vfio-platform).
 *             VFIO_DEVICE_SET_IRQS (vfio_set_irqs_validate_and_prepare + vfio-platform):
 *             argsz < minsz, index >= num_irqs, unknown flag bits, start/count outside the
 *             index, not exactly one DATA type, data shorter than count -> EINVAL; no or
 *             several ACTION bits, MASK/UNMASK on a non-MASKABLE irq, TRIGGER on an irq
 *             without EVENTFD -> ENOTTY; start != 0 or count != 1 -> EINVAL (except
 *             TRIGGER|DATA_NONE with count 0 = disable); MASK with DATA_EVENTFD -> EINVAL;
 *             eventfd not open -> EBADF, not an eventfd -> EINVAL; fd -1 unregisters.
 *             The mock holds its own reference to registered eventfds (a dup), as the
 *             kernel holds the eventfd context.
 *             VFIO_DEVICE_RESET: device without VFIO_DEVICE_FLAGS_RESET -> EINVAL; else
 *             counted, deasserts the device's level lines; masks are kept (as Linux).
 *             Other ioctls -> ENOTTY. pread/pwrite at region offset: index out of range,
 *             region lacks READ/WRITE, access beyond the region -> EINVAL. read/write
 *             (file position) -> EINVAL (mock: not modelled). mmap(MAP_SHARED) at a
 *             region offset: region without MMAP, PROT_READ/PROT_WRITE without READ/WRITE,
 *             offset not page aligned, region < 1 page, beyond the region -> EINVAL;
 *             mock: MAP_PRIVATE or MAP_FIXED -> EINVAL. A mapping keeps the device file
 *             open after its fd is closed (as the kernel's vma file reference).
 *             First open of a device: IRQs start unmasked (vfio_platform_irq_init); last
 *             close: registered eventfds are dropped (counted as an implicit reset).
 *  IRQs       Per IRQ index (sub-IRQ 0): trigger eventfd, unmask eventfd, masked flag,
 *             line level. Edge (no AUTOMASKED): mock_vfio_irq_raise() signals the
 *             trigger, or is lost without one. Level (AUTOMASKED): raise asserts the
 *             line; while asserted, unmasked and a trigger is set the kernel handler runs
 *             once: mask + signal (so a line raised before a trigger or while masked
 *             fires when that changes). UNMASK (DATA_NONE, DATA_BOOL true, or a signal on
 *             the unmask eventfd) clears the mask and re-fires if the line is still
 *             high. Unmask eventfds are polled at every mock entry point and by
 *             mock_vfio_poll() (the kernel's virqfd; signalled before registration ->
 *             unmasks at registration).
 *  other fds  eventfds made through mock_vfio_sys() pass through to the real syscalls.
 *             munmap must match a mock mapping exactly (else EINVAL).
 *
 * Threading: every entry point takes one mutex; mock_vfio_free() must not race with
 * any other call.
 */

struct mock_vfio;

#define MOCK_VFIO_PAGE_SIZE 4096ULL
#define MOCK_VFIO_OFFSET_SHIFT 40 /* VFIO_PLATFORM_OFFSET_SHIFT */
#define MOCK_VFIO_REGION_OFFSET(index) ((uint64_t)(index) << MOCK_VFIO_OFFSET_SHIFT)

/* Pseudo request numbers naming the non-ioctl ops, for error injection and the log. */
#define MOCK_VFIO_OP_OPEN (~0UL)
#define MOCK_VFIO_OP_CLOSE (~0UL - 1)
#define MOCK_VFIO_OP_MMAP (~0UL - 2)
#define MOCK_VFIO_OP_MUNMAP (~0UL - 3)
#define MOCK_VFIO_OP_EVENTFD (~0UL - 4)
#define MOCK_VFIO_OP_READ (~0UL - 5)
#define MOCK_VFIO_OP_WRITE (~0UL - 6)
#define MOCK_VFIO_OP_PREAD (~0UL - 7)
#define MOCK_VFIO_OP_PWRITE (~0UL - 8)

enum mock_vfio_fd_kind {
	MOCK_VFIO_FD_NONE = 0,
	MOCK_VFIO_FD_CONTAINER,
	MOCK_VFIO_FD_GROUP,
	MOCK_VFIO_FD_DEVICE,
	MOCK_VFIO_FD_EVENTFD,
};

/* ---- lifecycle and host configuration ---- */

/* NULL on allocation failure. Both IOMMU drivers supported, CAP_SYS_RAWIO held. */
struct mock_vfio *mock_vfio_new(void);
/* Closes every fd and mapping still open, frees everything. NULL is a no-op. */
void mock_vfio_free(struct mock_vfio *m);
/* The seam; valid until mock_vfio_free(). */
struct sys mock_vfio_sys(struct mock_vfio *m);
/* Do not print violations to stderr (still recorded). */
void mock_vfio_set_quiet(struct mock_vfio *m, bool quiet);

/* Which IOMMU drivers the host has (CHECK_EXTENSION / SET_IOMMU). */
void mock_vfio_set_iommu_support(struct mock_vfio *m, bool type1, bool noiommu);
/* Whether the process holds CAP_SYS_RAWIO (needed for no-IOMMU groups). */
void mock_vfio_set_rawio(struct mock_vfio *m, bool rawio);
void mock_vfio_set_api_version(struct mock_vfio *m, int version);
/* Whether /dev/vfio/vfio exists (vfio module loaded). Default true. */
void mock_vfio_set_container_node(struct mock_vfio *m, bool present);

/* Declare IOMMU group id (viable). 0, -EEXIST or -ENOMEM. */
int mock_vfio_add_group(struct mock_vfio *m, unsigned int id, bool noiommu);
/* 0 or -ENOENT. */
int mock_vfio_set_group_viable(struct mock_vfio *m, unsigned int id, bool viable);
/* Declare a device (name unique in the mock) in group; flags VFIO_DEVICE_FLAGS_*.
 * 0, -ENOENT (no group), -EEXIST, -ENOMEM. */
int mock_vfio_add_device(struct mock_vfio *m, unsigned int group, const char *name, uint32_t flags);
/* Append a region (flags VFIO_REGION_INFO_FLAG_READ/WRITE/MMAP), zero-filled. The kernel
 * sets MMAP only for page-aligned regions; tests may set it on others to exercise the
 * VMM's own checks (a device mmap then fails). Returns its index or -ENOENT/-ENOMEM. */
int mock_vfio_add_region(struct mock_vfio *m, const char *dev, uint64_t size, uint32_t flags);
/* Append an IRQ index (count 0 or 1; flags VFIO_IRQ_INFO_*). Returns its index or
 * -ENOENT/-EINVAL/-ENOMEM. */
int mock_vfio_add_irq(struct mock_vfio *m, const char *dev, uint32_t count, uint32_t flags);

/* ---- device side (what the hardware does) ---- */

/* The region's backing memory (what pread/pwrite/mmap see), or NULL; *size if non-NULL. */
uint8_t *mock_vfio_region_mem(struct mock_vfio *m, const char *dev, unsigned int index,
			      uint64_t *size);
/* Assert the device's interrupt (edge: one event; level: line high). 0 or -ENOENT. */
int mock_vfio_irq_raise(struct mock_vfio *m, const char *dev, unsigned int index);
/* Deassert a level line (no-op for edge). 0 or -ENOENT. */
int mock_vfio_irq_lower(struct mock_vfio *m, const char *dev, unsigned int index);
/* Consume signalled unmask eventfds now. Returns how many were consumed. */
int mock_vfio_poll(struct mock_vfio *m);

/* ---- inspection ---- */

struct mock_vfio_irq_state {
	bool trigger_set, unmask_set;
	int trigger_fd, unmask_fd; /* the fd numbers the VMM registered, -1 */
	bool masked;
	bool line;                    /* level line asserted */
	unsigned int signals;         /* trigger eventfd writes */
	unsigned int automasks;       /* masks done by the level handler */
	unsigned int masks;           /* masks requested with ACTION_MASK */
	unsigned int unmask_requests; /* ACTION_UNMASK or unmask eventfd signals */
	unsigned int unmasks;         /* of those, the ones that cleared a mask */
	unsigned int lost;            /* edge events without a trigger or while masked */
};
int mock_vfio_irq_state(struct mock_vfio *m, const char *dev, unsigned int index,
			struct mock_vfio_irq_state *out);

struct mock_vfio_dev_state {
	unsigned int open_files;      /* device files (fds + mappings keep them) */
	unsigned int opens;           /* successful GET_DEVICE_FD calls */
	unsigned int resets;          /* VFIO_DEVICE_RESET that reset */
	unsigned int implicit_resets; /* last-close cleanups */
	unsigned int reads, writes;   /* pread/pwrite that succeeded */
};
int mock_vfio_dev_state(struct mock_vfio *m, const char *dev, struct mock_vfio_dev_state *out);

struct mock_vfio_group_state {
	bool open;     /* group fd open */
	bool attached; /* to a container */
	int iommu;     /* the container's IOMMU type (0 none) */
	unsigned int dev_files;
};
int mock_vfio_group_state(struct mock_vfio *m, unsigned int id, struct mock_vfio_group_state *out);

/* Containers alive (fd open or groups attached). */
int mock_vfio_nr_containers(struct mock_vfio *m);

struct mock_vfio_dma {
	uint64_t iova, vaddr, size;
	uint32_t flags;
};
/* DMA mappings across live containers. */
size_t mock_vfio_nr_dma(struct mock_vfio *m);
int mock_vfio_dma_at(struct mock_vfio *m, size_t i, struct mock_vfio_dma *out);

/* Leak accounting: fds the mock handed out and that are still open (container, group,
 * device, eventfd), and live device mappings. */
int mock_vfio_open_fds(struct mock_vfio *m);
int mock_vfio_open_fds_kind(struct mock_vfio *m, enum mock_vfio_fd_kind kind);
int mock_vfio_live_mappings(struct mock_vfio *m);

/* ---- error injection ----
 * A matching call fails with err before having any effect (logged with injected =
 * true). req is an ioctl number or MOCK_VFIO_OP_*. fail_nth: n = 1 is the next
 * matching call. Return 0 or -ENOMEM/-EINVAL. */
int mock_vfio_fail_next(struct mock_vfio *m, unsigned long req, int err);
int mock_vfio_fail_nth(struct mock_vfio *m, unsigned long req, unsigned int n, int err);
int mock_vfio_fail_always(struct mock_vfio *m, unsigned long req, int err);
void mock_vfio_fail_clear(struct mock_vfio *m);

/* ---- call log: every op on a mock fd, path or mapping, in completion order ---- */
struct mock_vfio_call {
	unsigned long req; /* ioctl request or MOCK_VFIO_OP_* */
	enum mock_vfio_fd_kind kind;
	int fd;
	unsigned long arg;
	long result;
	bool injected;
	/* decoded arguments where they apply */
	uint32_t index;        /* GET_REGION_INFO/GET_IRQ_INFO/SET_IRQS */
	uint32_t flags;        /* SET_IRQS, MAP/UNMAP_DMA */
	uint32_t start, count; /* SET_IRQS */
	int32_t data_fd;       /* SET_IRQS with DATA_EVENTFD: first fd, else -1 */
	uint64_t iova, size;   /* MAP/UNMAP_DMA */
	char path[64];         /* open */
};
size_t mock_vfio_nr_calls(struct mock_vfio *m);
int mock_vfio_call_at(struct mock_vfio *m, size_t i, struct mock_vfio_call *out);
unsigned int mock_vfio_count_calls(struct mock_vfio *m, unsigned long req);
/* Successful VFIO_DEVICE_SET_IRQS calls on index with exactly these flags. */
unsigned int mock_vfio_count_set_irqs(struct mock_vfio *m, unsigned int index, uint32_t flags);
void mock_vfio_clear_calls(struct mock_vfio *m);

/* ---- ABI misuse the kernel would tolerate (see Model) ---- */
unsigned int mock_vfio_violations(struct mock_vfio *m);
const char *mock_vfio_violation(struct mock_vfio *m, unsigned int i);

#endif
