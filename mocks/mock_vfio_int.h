/* Internal state of mock VFIO shared by mock_vfio.c (seam, fds, mappings, injection,
 * log, configuration) and mock_vfio_model.c (container, group, device and IRQ model). */
#ifndef MOCK_VFIO_INT_H
#define MOCK_VFIO_INT_H

#include <pthread.h>

#include "mock_vfio.h"

struct mv_container;
struct mv_group;

struct mv_region {
	uint64_t size;
	uint32_t flags;
	int memfd;
	uint8_t *mem; /* the mock's own shared mapping of memfd */
	size_t mem_len;
};

struct mv_irq {
	uint32_t count, flags;
	int trigger, unmask;           /* the mock's dups of the registered eventfds, -1 */
	int trigger_user, unmask_user; /* the numbers the VMM passed */
	bool masked, line;
	unsigned int signals, automasks, masks, unmask_requests, unmasks, lost;
};

struct mv_device {
	char *name;
	struct mv_group *group;
	uint32_t flags;
	struct mv_region *regions;
	size_t nr_regions, cap_regions;
	struct mv_irq *irqs;
	size_t nr_irqs, cap_irqs;
	unsigned int open_files, opens, resets, implicit_resets, reads, writes;
};

struct mv_group {
	unsigned int id;
	bool noiommu, viable;
	bool fd_open;
	struct mv_container *c;
	unsigned int dev_files;
};

struct mv_container {
	bool fd_open;
	bool dead;           /* released: fd closed and no group attached */
	unsigned long iommu; /* 0 or VFIO_TYPE1_IOMMU / TYPE1v2 / NOIOMMU */
	bool noiommu;        /* kind of the attached groups */
	unsigned int nr_groups;
	struct mock_vfio_dma *dma;
	size_t nr_dma, cap_dma;
};

/* An open device file: the fd and every mapping of it hold a reference. */
struct mv_dfile {
	struct mv_device *dev;
	unsigned int refs;
};

struct mv_fd {
	int fd;
	enum mock_vfio_fd_kind kind;
	struct mv_container *c;
	struct mv_group *g;
	struct mv_dfile *df;
};

struct mv_map {
	void *addr;
	size_t len;
	struct mv_dfile *df;
};

struct mv_rule {
	unsigned long req;
	unsigned int skip, times;
	int err;
};

struct mock_vfio {
	pthread_mutex_t lock;
	bool quiet;
	bool type1, noiommu, rawio, container_node;
	int api_version;

	struct mv_group **groups;
	size_t nr_groups, cap_groups;
	struct mv_device **devs;
	size_t nr_devs, cap_devs;
	struct mv_container **containers; /* every container ever opened (dead ones too) */
	size_t nr_containers, cap_containers;

	struct mv_fd *fds;
	size_t nr_fds, cap_fds;
	struct mv_map *maps;
	size_t nr_maps, cap_maps;
	struct mv_rule *rules;
	size_t nr_rules, cap_rules;
	struct mock_vfio_call *calls;
	size_t nr_calls, cap_calls;
	char **violations;
	size_t nr_violations, cap_violations;
};

/* mock_vfio.c */
int mv_grow(void **arr, size_t *cap, size_t need, size_t elem);
#define MV_GROW(arr, capv, need) mv_grow((void **)&(arr), &(capv), (need), sizeof(*(arr)))
void mv_violation(struct mock_vfio *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mv_fd_alloc(struct mock_vfio *m, enum mock_vfio_fd_kind kind, struct mv_container *c,
		struct mv_group *g, struct mv_dfile *df);
struct mv_fd *mv_fd_find(struct mock_vfio *m, int fd);
struct mv_device *mv_dev_find(struct mock_vfio *m, const char *name);
struct mv_group *mv_group_find(struct mock_vfio *m, unsigned int id);

/* mock_vfio_model.c */
/* The ioctl on a mock fd; call (the log entry being built) gets decoded args. */
int mv_container_ioctl(struct mock_vfio *m, struct mv_container *c, unsigned long req,
		       unsigned long arg, struct mock_vfio_call *call);
int mv_group_ioctl(struct mock_vfio *m, struct mv_group *g, unsigned long req, unsigned long arg,
		   struct mock_vfio_call *call);
int mv_device_ioctl(struct mock_vfio *m, struct mv_device *d, unsigned long req, unsigned long arg,
		    struct mock_vfio_call *call);
/* Open path handling: returns a new fd, or -errno. */
int mv_open_container(struct mock_vfio *m);
int mv_open_group(struct mock_vfio *m, struct mv_group *g);
/* fd/mapping release hooks */
void mv_container_closed(struct mock_vfio *m, struct mv_container *c);
void mv_group_closed(struct mock_vfio *m, struct mv_group *g);
void mv_dfile_put(struct mock_vfio *m, struct mv_dfile *df);
/* pread/pwrite on a device */
ssize_t mv_device_rw(struct mock_vfio *m, struct mv_device *d, bool write, void *buf, size_t len,
		     off_t off);
/* mmap of a device region: the mapping or NULL with *err */
void *mv_device_mmap(struct mock_vfio *m, struct mv_device *d, size_t len, int prot, int flags,
		     off_t off, int *err);
/* IRQ model */
void mv_irq_fire(struct mock_vfio *m, struct mv_irq *q);
void mv_irq_eval(struct mock_vfio *m, struct mv_irq *q);
int mv_poll(struct mock_vfio *m);
void mv_irq_release(struct mv_irq *q);
/* 0 if fd is an eventfd, -EBADF if not open, -EINVAL otherwise */
int mv_eventfd_check(struct mock_vfio *m, int fd);

#endif
