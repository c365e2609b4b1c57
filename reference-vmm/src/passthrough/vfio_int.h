/* Internals shared by the VFIO passthrough files: the container and group objects
 * (vfio_container.c), sysfs helpers (vfio_sysfs.c), device code (vfio_dev.c) and
 * IRQ code (vfio_irq.c). Not for the machine: it uses vfio.h. */
#ifndef VMM_VFIO_INT_H
#define VMM_VFIO_INT_H

#include "passthrough/vfio.h"

#include <stdarg.h>

struct vfio_group {
	struct vfio_container *c;
	struct vfio_group *next;
	unsigned int id;
	bool noiommu;
	int fd;
	unsigned int nr_devs; /* open devices of this group */
};

struct vfio_dma {
	uint64_t iova;
	uint64_t size;
	void *host;
	bool mapped; /* in the kernel's IOMMU (type1v2 with an IOMMU set) */
};

struct vfio_container {
	struct sys sys;
	const struct log *log;
	char *sysfs_root;
	int fd;                    /* /dev/vfio/vfio, -1 until the first group */
	enum vfio_iommu_mode mode; /* of the attached groups; NONE while there are none */
	bool iommu_set;            /* VFIO_SET_IOMMU done */
	struct vfio_group *groups;
	struct vfio_dev **devs;
	unsigned int nr_devs, cap_devs;
	struct vfio_dma *dma;
	unsigned int nr_dma, cap_dma;
	bool noiommu_warned;
};

/* printf into err (if any) and return code. */
int vfio_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

size_t vfio_page_size(void);

/* vfio_container.c */
/*
 * The container's group `id` (mode noiommu) with the container attached and its
 * IOMMU set: an existing one, or a new one opened and attached now (*created =
 * true). dev_name names the device in errors.
 */
int vfio_group_get(struct vfio_container *c, unsigned int id, bool noiommu, const char *dev_name,
		   struct vfio_group **out, bool *created, char *err, size_t errlen);
/* Undo a vfio_group_get() that created g, when no device of g is open. */
void vfio_group_release(struct vfio_group *g);
int vfio_container_add_dev(struct vfio_container *c, struct vfio_dev *dev);
void vfio_container_del_dev(struct vfio_container *c, struct vfio_dev *dev);
struct vfio_dev *vfio_container_find_dev(struct vfio_container *c, const char *name);

/* vfio_sysfs.c */
/* path rebased on root when it starts with "/sys/" (root NULL or "/sys": unchanged).
 * Returns a malloc'd string or NULL. */
char *vfio_sysfs_resolve(const char *root, const char *path);
/* Basename of the target of the symlink dir/link into out. 0 or -errno (-ENOENT: no
 * link, -ENAMETOOLONG: does not fit). */
int vfio_sysfs_link_name(const char *dir, const char *link, char *out, size_t outlen);
/* realpath() of dir/entry, malloc'd, or NULL (errno set). */
char *vfio_sysfs_realpath(const char *dir, const char *entry);
/* First line of the file dir/entry without the newline. 0 or -errno. */
int vfio_sysfs_read_line(const char *dir, const char *entry, char *out, size_t outlen);
/* The IOMMU group of the device directory dev_dir: its number and whether sysfs
 * says it is a no-IOMMU group (link target "noiommu-N", or name "vfio-noiommu").
 * 0, -ENOENT (no iommu_group link) or -EINVAL (unparsable). */
int vfio_sysfs_iommu_group(const char *dev_dir, unsigned int *id, bool *noiommu);

/* vfio_irq.c */
/* Disable every enabled irq of dev (at close). */
void vfio_irqs_disable_all(struct vfio_dev *dev);
/* Unmask every enabled maskable irq (at reset). Returns 0 or the first error. */
int vfio_irqs_rearm(struct vfio_dev *dev);

#endif
