/* Mock VFIO core: the sys_ops table, fd and mapping tables, host configuration,
 * error injection, the call log, violations and inspection. The container, group,
 * device and IRQ model lives in mock_vfio_model.c. */
#include "mock_vfio_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- helpers ---- */

int mv_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 8;
	while (n < need)
		n *= 2;
	void *p = realloc(*arr, n * elem);
	if (!p)
		return -ENOMEM;
	memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
	*arr = p;
	*cap = n;
	return 0;
}

void mv_violation(struct mock_vfio *m, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!m->quiet)
		fprintf(stderr, "mock_vfio: ABI violation: %s\n", buf);
	if (MV_GROW(m->violations, m->cap_violations, m->nr_violations + 1))
		return;
	char *s = strdup(buf);
	if (s)
		m->violations[m->nr_violations++] = s;
}

static void mv_log(struct mock_vfio *m, const struct mock_vfio_call *c)
{
	if (MV_GROW(m->calls, m->cap_calls, m->nr_calls + 1))
		return;
	m->calls[m->nr_calls++] = *c;
}

static struct mock_vfio_call mv_call(unsigned long req, enum mock_vfio_fd_kind kind, int fd,
				     unsigned long arg)
{
	struct mock_vfio_call c = {
		.req = req,
		.kind = kind,
		.fd = fd,
		.arg = arg,
		.data_fd = -1,
	};
	return c;
}

/* Does an injection rule fire for this call? 0 or the error to fail with. */
static int mv_rule_hit(struct mock_vfio *m, unsigned long req)
{
	int err = 0;

	for (size_t i = 0; i < m->nr_rules; i++) {
		struct mv_rule *r = &m->rules[i];
		if (r->req != req)
			continue;
		if (r->skip) {
			r->skip--;
			continue;
		}
		if (err)
			continue;
		err = r->err;
		if (r->times && --r->times == 0) {
			memmove(r, r + 1, (m->nr_rules - i - 1) * sizeof(*r));
			m->nr_rules--;
			i--;
		}
	}
	return err;
}

/* ---- fd table ---- */

struct mv_fd *mv_fd_find(struct mock_vfio *m, int fd)
{
	if (fd < 0)
		return NULL;
	for (size_t i = 0; i < m->nr_fds; i++)
		if (m->fds[i].fd == fd)
			return &m->fds[i];
	return NULL;
}

static int mv_fd_track(struct mock_vfio *m, int fd, enum mock_vfio_fd_kind kind,
		       struct mv_container *c, struct mv_group *g, struct mv_dfile *df)
{
	if (MV_GROW(m->fds, m->cap_fds, m->nr_fds + 1))
		return -ENOMEM;
	m->fds[m->nr_fds++] = (struct mv_fd){ .fd = fd, .kind = kind, .c = c, .g = g, .df = df };
	return 0;
}

int mv_fd_alloc(struct mock_vfio *m, enum mock_vfio_fd_kind kind, struct mv_container *c,
		struct mv_group *g, struct mv_dfile *df)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = mv_fd_track(m, fd, kind, c, g, df);
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

struct mv_device *mv_dev_find(struct mock_vfio *m, const char *name)
{
	for (size_t i = 0; name && i < m->nr_devs; i++)
		if (strcmp(m->devs[i]->name, name) == 0)
			return m->devs[i];
	return NULL;
}

struct mv_group *mv_group_find(struct mock_vfio *m, unsigned int id)
{
	for (size_t i = 0; i < m->nr_groups; i++)
		if (m->groups[i]->id == id)
			return m->groups[i];
	return NULL;
}

int mv_eventfd_check(struct mock_vfio *m, int fd)
{
	if (fd < 0)
		return -EBADF;
	struct mv_fd *f = mv_fd_find(m, fd);
	if (f)
		return f->kind == MOCK_VFIO_FD_EVENTFD ? 0 : -EINVAL;
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -EBADF;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") == 0 ? 0 : -EINVAL;
}

static size_t page_round(size_t len)
{
	return (len + MOCK_VFIO_PAGE_SIZE - 1) & ~(size_t)(MOCK_VFIO_PAGE_SIZE - 1);
}

/* ---- the sys_ops table ---- */

/* "/dev/vfio/N" or "/dev/vfio/noiommu-N" -> group, else NULL */
static struct mv_group *mv_group_path(struct mock_vfio *m, const char *path)
{
	static const char dir[] = "/dev/vfio/", ni[] = "noiommu-";
	if (strncmp(path, dir, sizeof(dir) - 1) != 0)
		return NULL;
	const char *p = path + sizeof(dir) - 1;
	bool noiommu = strncmp(p, ni, sizeof(ni) - 1) == 0;
	if (noiommu)
		p += sizeof(ni) - 1;
	if (*p < '0' || *p > '9')
		return NULL;
	char *end;
	unsigned long id = strtoul(p, &end, 10);
	if (*end || id > 0xffffffffUL)
		return NULL;
	struct mv_group *g = mv_group_find(m, (unsigned int)id);
	return g && g->noiommu == noiommu ? g : NULL;
}

static int mv_open(void *ctx, const char *path, int flags)
{
	struct mock_vfio *m = ctx;
	struct mock_vfio_call call =
		mv_call(MOCK_VFIO_OP_OPEN, MOCK_VFIO_FD_NONE, -1, (unsigned long)flags);
	int r;

	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	snprintf(call.path, sizeof(call.path), "%s", path ? path : "(null)");
	r = mv_rule_hit(m, MOCK_VFIO_OP_OPEN);
	if (r) {
		call.injected = true;
	} else if (!path) {
		r = -EFAULT;
	} else if (strcmp(path, "/dev/vfio/vfio") == 0) {
		call.kind = MOCK_VFIO_FD_CONTAINER;
		r = m->container_node ? mv_open_container(m) : -ENOENT;
	} else {
		struct mv_group *g = mv_group_path(m, path);
		call.kind = MOCK_VFIO_FD_GROUP;
		r = g ? mv_open_group(m, g) : -ENOENT;
	}
	call.fd = r >= 0 ? r : -1;
	call.result = r;
	mv_log(m, &call);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int mv_close(void *ctx, int fd)
{
	struct mock_vfio *m = ctx;
	struct mock_vfio_call call = mv_call(MOCK_VFIO_OP_CLOSE, MOCK_VFIO_FD_NONE, fd, 0);
	int r;

	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	struct mv_fd *fp = mv_fd_find(m, fd);
	if (!fp) {
		r = -EBADF;
		goto out;
	}
	struct mv_fd f = *fp;
	call.kind = f.kind;
	r = mv_rule_hit(m, MOCK_VFIO_OP_CLOSE);
	if (r) {
		call.injected = true;
		goto out;
	}
	size_t i = (size_t)(fp - m->fds);
	memmove(fp, fp + 1, (m->nr_fds - i - 1) * sizeof(*fp));
	m->nr_fds--;
	r = close(fd) < 0 ? -errno : 0;
	switch (f.kind) {
	case MOCK_VFIO_FD_CONTAINER:
		mv_container_closed(m, f.c);
		break;
	case MOCK_VFIO_FD_GROUP:
		mv_group_closed(m, f.g);
		break;
	case MOCK_VFIO_FD_DEVICE:
		mv_dfile_put(m, f.df);
		break;
	default:
		break;
	}
out:
	call.result = r;
	mv_log(m, &call);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int mv_ioctl(void *ctx, int fd, unsigned long req, unsigned long arg)
{
	struct mock_vfio *m = ctx;
	struct mock_vfio_call call = mv_call(req, MOCK_VFIO_FD_NONE, fd, arg);
	int r;

	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	struct mv_fd *fp = mv_fd_find(m, fd);
	if (!fp) {
		r = -EBADF;
		goto out;
	}
	struct mv_fd f = *fp;
	call.kind = f.kind;
	r = mv_rule_hit(m, req);
	if (r) {
		call.injected = true;
		goto out;
	}
	switch (f.kind) {
	case MOCK_VFIO_FD_CONTAINER:
		r = mv_container_ioctl(m, f.c, req, arg, &call);
		break;
	case MOCK_VFIO_FD_GROUP:
		r = mv_group_ioctl(m, f.g, req, arg, &call);
		break;
	case MOCK_VFIO_FD_DEVICE:
		r = mv_device_ioctl(m, f.df->dev, req, arg, &call);
		break;
	default:
		r = -ENOTTY; /* eventfds have no ioctls */
		break;
	}
out:
	call.result = r;
	mv_log(m, &call);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static void *mv_mmap(void *ctx, size_t len, int prot, int flags, int fd, off_t off, int *err)
{
	struct mock_vfio *m = ctx;
	struct mock_vfio_call call = mv_call(MOCK_VFIO_OP_MMAP, MOCK_VFIO_FD_NONE, fd, len);
	void *p = NULL;
	int r = 0;

	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	bool anon = (flags & MAP_ANONYMOUS) != 0;
	struct mv_fd *f = anon ? NULL : mv_fd_find(m, fd);
	if (!anon && !f) {
		r = -EBADF;
		goto out;
	}
	call.kind = f ? f->kind : MOCK_VFIO_FD_NONE;
	call.size = len;
	r = mv_rule_hit(m, MOCK_VFIO_OP_MMAP);
	if (r) {
		call.injected = true;
		goto out;
	}
	if (!len) {
		r = -EINVAL;
		goto out;
	}
	if (MV_GROW(m->maps, m->cap_maps, m->nr_maps + 1)) {
		r = -ENOMEM;
		goto out;
	}
	struct mv_dfile *df = NULL;
	if (anon) {
		p = mmap(NULL, len, prot, flags, -1, 0);
		if (p == MAP_FAILED) {
			p = NULL;
			r = -errno;
		}
	} else if (f->kind == MOCK_VFIO_FD_DEVICE) {
		df = f->df;
		p = mv_device_mmap(m, df->dev, len, prot, flags, off, &r);
	} else {
		r = -ENODEV; /* containers, groups and eventfds have no mmap */
	}
	if (p) {
		m->maps[m->nr_maps++] =
			(struct mv_map){ .addr = p, .len = page_round(len), .df = df };
		if (df)
			df->refs++;
	}
out:
	call.result = p ? 0 : r;
	mv_log(m, &call);
	pthread_mutex_unlock(&m->lock);
	if (!p && err)
		*err = r;
	return p;
}

static int mv_munmap(void *ctx, void *addr, size_t len)
{
	struct mock_vfio *m = ctx;
	struct mock_vfio_call call = mv_call(MOCK_VFIO_OP_MUNMAP, MOCK_VFIO_FD_NONE, -1, len);
	struct mv_map *mp = NULL;
	int r;

	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	call.size = len;
	for (size_t i = 0; i < m->nr_maps; i++) {
		if (m->maps[i].addr == addr) {
			mp = &m->maps[i];
			break;
		}
	}
	if (!mp) {
		r = -EINVAL;
		goto out;
	}
	call.kind = mp->df ? MOCK_VFIO_FD_DEVICE : MOCK_VFIO_FD_NONE;
	r = mv_rule_hit(m, MOCK_VFIO_OP_MUNMAP);
	if (r) {
		call.injected = true;
		goto out;
	}
	if (!len || page_round(len) != mp->len) {
		r = -EINVAL; /* mock: partial unmaps are not modelled */
		goto out;
	}
	r = munmap(addr, mp->len) < 0 ? -errno : 0;
	struct mv_dfile *df = mp->df;
	size_t i = (size_t)(mp - m->maps);
	memmove(mp, mp + 1, (m->nr_maps - i - 1) * sizeof(*mp));
	m->nr_maps--;
	if (df)
		mv_dfile_put(m, df);
out:
	call.result = r;
	mv_log(m, &call);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int mv_eventfd(void *ctx, unsigned int initval, int flags)
{
	struct mock_vfio *m = ctx;
	struct mock_vfio_call call =
		mv_call(MOCK_VFIO_OP_EVENTFD, MOCK_VFIO_FD_EVENTFD, -1, initval);
	int r;

	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	r = mv_rule_hit(m, MOCK_VFIO_OP_EVENTFD);
	if (r) {
		call.injected = true;
	} else {
		r = eventfd(initval, flags | EFD_CLOEXEC);
		if (r < 0) {
			r = -errno;
		} else {
			int t = mv_fd_track(m, r, MOCK_VFIO_FD_EVENTFD, NULL, NULL, NULL);
			if (t) {
				close(r);
				r = t;
			}
		}
	}
	call.fd = r >= 0 ? r : -1;
	call.result = r;
	mv_log(m, &call);
	pthread_mutex_unlock(&m->lock);
	return r;
}

enum mv_io { MV_IO_READ, MV_IO_WRITE, MV_IO_PREAD, MV_IO_PWRITE };

static ssize_t mv_io(struct mock_vfio *m, enum mv_io op, int fd, void *buf, size_t len, off_t off)
{
	static const unsigned long reqs[] = { MOCK_VFIO_OP_READ, MOCK_VFIO_OP_WRITE,
					      MOCK_VFIO_OP_PREAD, MOCK_VFIO_OP_PWRITE };
	struct mock_vfio_call call = mv_call(reqs[op], MOCK_VFIO_FD_NONE, fd, len);
	ssize_t r;

	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	call.iova = (uint64_t)off;
	call.size = len;
	struct mv_fd *fp = mv_fd_find(m, fd);
	if (!fp) {
		r = -EBADF;
		goto out;
	}
	struct mv_fd f = *fp;
	call.kind = f.kind;
	r = mv_rule_hit(m, reqs[op]);
	if (r) {
		call.injected = true;
		goto out;
	}
	if (f.kind == MOCK_VFIO_FD_EVENTFD) {
		/* real eventfds may block: never hold the mock lock across the syscall */
		pthread_mutex_unlock(&m->lock);
		switch (op) {
		case MV_IO_READ:
			r = read(fd, buf, len);
			break;
		case MV_IO_WRITE:
			r = write(fd, buf, len);
			break;
		case MV_IO_PREAD:
			r = pread(fd, buf, len, off);
			break;
		default:
			r = pwrite(fd, buf, len, off);
			break;
		}
		r = r < 0 ? -errno : r;
		pthread_mutex_lock(&m->lock);
	} else if (f.kind == MOCK_VFIO_FD_DEVICE && (op == MV_IO_PREAD || op == MV_IO_PWRITE)) {
		r = mv_device_rw(m, f.df->dev, op == MV_IO_PWRITE, buf, len, off);
	} else {
		r = -EINVAL;
	}
out:
	call.result = r;
	mv_log(m, &call);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static ssize_t mv_read(void *ctx, int fd, void *buf, size_t len)
{
	return mv_io(ctx, MV_IO_READ, fd, buf, len, 0);
}

static ssize_t mv_write(void *ctx, int fd, const void *buf, size_t len)
{
	return mv_io(ctx, MV_IO_WRITE, fd, (void *)buf, len, 0);
}

static ssize_t mv_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
	return mv_io(ctx, MV_IO_PREAD, fd, buf, len, off);
}

static ssize_t mv_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	return mv_io(ctx, MV_IO_PWRITE, fd, (void *)buf, len, off);
}

static const struct sys_ops mock_vfio_ops = {
	.open = mv_open,
	.close = mv_close,
	.ioctl = mv_ioctl,
	.mmap = mv_mmap,
	.munmap = mv_munmap,
	.eventfd = mv_eventfd,
	.read = mv_read,
	.write = mv_write,
	.pread = mv_pread,
	.pwrite = mv_pwrite,
};

/* ---- lifecycle and configuration ---- */

struct mock_vfio *mock_vfio_new(void)
{
	struct mock_vfio *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->type1 = m->noiommu = m->rawio = m->container_node = true;
	m->api_version = VFIO_API_VERSION;
	return m;
}

static void mv_device_free(struct mv_device *d)
{
	for (size_t i = 0; i < d->nr_regions; i++) {
		struct mv_region *r = &d->regions[i];
		if (r->mem)
			munmap(r->mem, r->mem_len);
		if (r->memfd >= 0)
			close(r->memfd);
	}
	for (size_t i = 0; i < d->nr_irqs; i++)
		mv_irq_release(&d->irqs[i]);
	free(d->regions);
	free(d->irqs);
	free(d->name);
	free(d);
}

void mock_vfio_free(struct mock_vfio *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nr_maps; i++)
		munmap(m->maps[i].addr, m->maps[i].len);
	/* a device file is referenced by its fd and its mappings: free each one once */
	for (size_t i = 0; i < m->nr_fds; i++) {
		struct mv_fd *f = &m->fds[i];
		close(f->fd);
		if (f->kind == MOCK_VFIO_FD_DEVICE && f->df && --f->df->refs == 0)
			free(f->df);
	}
	for (size_t i = 0; i < m->nr_maps; i++) {
		struct mv_dfile *df = m->maps[i].df;
		if (df && --df->refs == 0)
			free(df);
	}
	for (size_t i = 0; i < m->nr_devs; i++)
		mv_device_free(m->devs[i]);
	for (size_t i = 0; i < m->nr_groups; i++)
		free(m->groups[i]);
	for (size_t i = 0; i < m->nr_containers; i++) {
		free(m->containers[i]->dma);
		free(m->containers[i]);
	}
	for (size_t i = 0; i < m->nr_violations; i++)
		free(m->violations[i]);
	free(m->devs);
	free(m->groups);
	free(m->containers);
	free(m->fds);
	free(m->maps);
	free(m->rules);
	free(m->calls);
	free(m->violations);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

struct sys mock_vfio_sys(struct mock_vfio *m)
{
	struct sys s = { .ops = &mock_vfio_ops, .ctx = m };
	return s;
}

void mock_vfio_set_quiet(struct mock_vfio *m, bool quiet)
{
	pthread_mutex_lock(&m->lock);
	m->quiet = quiet;
	pthread_mutex_unlock(&m->lock);
}

void mock_vfio_set_iommu_support(struct mock_vfio *m, bool type1, bool noiommu)
{
	pthread_mutex_lock(&m->lock);
	m->type1 = type1;
	m->noiommu = noiommu;
	pthread_mutex_unlock(&m->lock);
}

void mock_vfio_set_rawio(struct mock_vfio *m, bool rawio)
{
	pthread_mutex_lock(&m->lock);
	m->rawio = rawio;
	pthread_mutex_unlock(&m->lock);
}

void mock_vfio_set_api_version(struct mock_vfio *m, int version)
{
	pthread_mutex_lock(&m->lock);
	m->api_version = version;
	pthread_mutex_unlock(&m->lock);
}

void mock_vfio_set_container_node(struct mock_vfio *m, bool present)
{
	pthread_mutex_lock(&m->lock);
	m->container_node = present;
	pthread_mutex_unlock(&m->lock);
}

int mock_vfio_add_group(struct mock_vfio *m, unsigned int id, bool noiommu)
{
	int r = 0;

	pthread_mutex_lock(&m->lock);
	if (mv_group_find(m, id)) {
		r = -EEXIST;
	} else if (MV_GROW(m->groups, m->cap_groups, m->nr_groups + 1)) {
		r = -ENOMEM;
	} else {
		struct mv_group *g = calloc(1, sizeof(*g));
		if (!g) {
			r = -ENOMEM;
		} else {
			g->id = id;
			g->noiommu = noiommu;
			g->viable = true;
			m->groups[m->nr_groups++] = g;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_vfio_set_group_viable(struct mock_vfio *m, unsigned int id, bool viable)
{
	pthread_mutex_lock(&m->lock);
	struct mv_group *g = mv_group_find(m, id);
	if (g)
		g->viable = viable;
	pthread_mutex_unlock(&m->lock);
	return g ? 0 : -ENOENT;
}

int mock_vfio_add_device(struct mock_vfio *m, unsigned int group, const char *name, uint32_t flags)
{
	int r = 0;

	pthread_mutex_lock(&m->lock);
	struct mv_group *g = mv_group_find(m, group);
	if (!g || !name) {
		r = -ENOENT;
	} else if (mv_dev_find(m, name)) {
		r = -EEXIST;
	} else if (MV_GROW(m->devs, m->cap_devs, m->nr_devs + 1)) {
		r = -ENOMEM;
	} else {
		struct mv_device *d = calloc(1, sizeof(*d));
		char *s = strdup(name);
		if (!d || !s) {
			free(d);
			free(s);
			r = -ENOMEM;
		} else {
			d->name = s;
			d->group = g;
			d->flags = flags;
			m->devs[m->nr_devs++] = d;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_vfio_add_region(struct mock_vfio *m, const char *dev, uint64_t size, uint32_t flags)
{
	int r;

	pthread_mutex_lock(&m->lock);
	struct mv_device *d = mv_dev_find(m, dev);
	if (!d) {
		r = -ENOENT;
		goto out;
	}
	if (size > (1ULL << MOCK_VFIO_OFFSET_SHIFT)) {
		r = -EINVAL;
		goto out;
	}
	if (MV_GROW(d->regions, d->cap_regions, d->nr_regions + 1)) {
		r = -ENOMEM;
		goto out;
	}
	struct mv_region *g = &d->regions[d->nr_regions];
	memset(g, 0, sizeof(*g));
	g->size = size;
	g->flags = flags;
	g->mem_len = size ? page_round((size_t)size) : MOCK_VFIO_PAGE_SIZE;
	g->memfd = memfd_create("mock_vfio_region", MFD_CLOEXEC);
	if (g->memfd < 0) {
		r = -errno;
		goto out;
	}
	if (ftruncate(g->memfd, (off_t)g->mem_len) < 0) {
		r = -errno;
		close(g->memfd);
		goto out;
	}
	g->mem = mmap(NULL, g->mem_len, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (g->mem == MAP_FAILED) {
		r = -errno;
		g->mem = NULL;
		close(g->memfd);
		goto out;
	}
	r = (int)d->nr_regions++;
out:
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_vfio_add_irq(struct mock_vfio *m, const char *dev, uint32_t count, uint32_t flags)
{
	int r;

	pthread_mutex_lock(&m->lock);
	struct mv_device *d = mv_dev_find(m, dev);
	if (!d) {
		r = -ENOENT;
	} else if (count > 1) {
		r = -EINVAL; /* vfio-platform: one interrupt per index */
	} else if (MV_GROW(d->irqs, d->cap_irqs, d->nr_irqs + 1)) {
		r = -ENOMEM;
	} else {
		struct mv_irq *q = &d->irqs[d->nr_irqs];
		memset(q, 0, sizeof(*q));
		q->count = count;
		q->flags = flags;
		q->trigger = q->unmask = q->trigger_user = q->unmask_user = -1;
		r = (int)d->nr_irqs++;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- device side ---- */

uint8_t *mock_vfio_region_mem(struct mock_vfio *m, const char *dev, unsigned int index,
			      uint64_t *size)
{
	uint8_t *p = NULL;

	pthread_mutex_lock(&m->lock);
	struct mv_device *d = mv_dev_find(m, dev);
	if (d && index < d->nr_regions) {
		p = d->regions[index].mem;
		if (size)
			*size = d->regions[index].size;
	}
	pthread_mutex_unlock(&m->lock);
	return p;
}

static struct mv_irq *irq_find(struct mock_vfio *m, const char *dev, unsigned int index)
{
	struct mv_device *d = mv_dev_find(m, dev);
	return d && index < d->nr_irqs ? &d->irqs[index] : NULL;
}

int mock_vfio_irq_raise(struct mock_vfio *m, const char *dev, unsigned int index)
{
	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	struct mv_irq *q = irq_find(m, dev, index);
	if (q) {
		if (q->flags & VFIO_IRQ_INFO_AUTOMASKED) {
			q->line = true;
			mv_irq_eval(m, q);
		} else if (q->trigger >= 0 && !q->masked) {
			mv_irq_fire(m, q);
		} else {
			q->lost++;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return q ? 0 : -ENOENT;
}

int mock_vfio_irq_lower(struct mock_vfio *m, const char *dev, unsigned int index)
{
	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	struct mv_irq *q = irq_find(m, dev, index);
	if (q)
		q->line = false;
	pthread_mutex_unlock(&m->lock);
	return q ? 0 : -ENOENT;
}

int mock_vfio_poll(struct mock_vfio *m)
{
	pthread_mutex_lock(&m->lock);
	int n = mv_poll(m);
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* ---- inspection ---- */

int mock_vfio_irq_state(struct mock_vfio *m, const char *dev, unsigned int index,
			struct mock_vfio_irq_state *out)
{
	pthread_mutex_lock(&m->lock);
	mv_poll(m);
	struct mv_irq *q = irq_find(m, dev, index);
	if (q) {
		*out = (struct mock_vfio_irq_state){
			.trigger_set = q->trigger >= 0,
			.unmask_set = q->unmask >= 0,
			.trigger_fd = q->trigger_user,
			.unmask_fd = q->unmask_user,
			.masked = q->masked,
			.line = q->line,
			.signals = q->signals,
			.automasks = q->automasks,
			.masks = q->masks,
			.unmask_requests = q->unmask_requests,
			.unmasks = q->unmasks,
			.lost = q->lost,
		};
	}
	pthread_mutex_unlock(&m->lock);
	return q ? 0 : -ENOENT;
}

int mock_vfio_dev_state(struct mock_vfio *m, const char *dev, struct mock_vfio_dev_state *out)
{
	pthread_mutex_lock(&m->lock);
	struct mv_device *d = mv_dev_find(m, dev);
	if (d) {
		*out = (struct mock_vfio_dev_state){
			.open_files = d->open_files,
			.opens = d->opens,
			.resets = d->resets,
			.implicit_resets = d->implicit_resets,
			.reads = d->reads,
			.writes = d->writes,
		};
	}
	pthread_mutex_unlock(&m->lock);
	return d ? 0 : -ENOENT;
}

int mock_vfio_group_state(struct mock_vfio *m, unsigned int id, struct mock_vfio_group_state *out)
{
	pthread_mutex_lock(&m->lock);
	struct mv_group *g = mv_group_find(m, id);
	if (g) {
		*out = (struct mock_vfio_group_state){
			.open = g->fd_open,
			.attached = g->c != NULL,
			.iommu = g->c ? (int)g->c->iommu : 0,
			.dev_files = g->dev_files,
		};
	}
	pthread_mutex_unlock(&m->lock);
	return g ? 0 : -ENOENT;
}

int mock_vfio_nr_containers(struct mock_vfio *m)
{
	int n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_containers; i++)
		n += !m->containers[i]->dead;
	pthread_mutex_unlock(&m->lock);
	return n;
}

size_t mock_vfio_nr_dma(struct mock_vfio *m)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_containers; i++)
		if (!m->containers[i]->dead)
			n += m->containers[i]->nr_dma;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_vfio_dma_at(struct mock_vfio *m, size_t i, struct mock_vfio_dma *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	for (size_t c = 0; c < m->nr_containers && r; c++) {
		struct mv_container *ct = m->containers[c];
		if (ct->dead)
			continue;
		if (i < ct->nr_dma) {
			*out = ct->dma[i];
			r = 0;
		} else {
			i -= ct->nr_dma;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_vfio_open_fds(struct mock_vfio *m)
{
	pthread_mutex_lock(&m->lock);
	int n = (int)m->nr_fds;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_vfio_open_fds_kind(struct mock_vfio *m, enum mock_vfio_fd_kind kind)
{
	int n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_fds; i++)
		n += m->fds[i].kind == kind;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_vfio_live_mappings(struct mock_vfio *m)
{
	pthread_mutex_lock(&m->lock);
	int n = (int)m->nr_maps;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* ---- error injection ---- */

static int mv_add_rule(struct mock_vfio *m, unsigned long req, unsigned int skip,
		       unsigned int times, int err)
{
	if (err >= 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	int r = MV_GROW(m->rules, m->cap_rules, m->nr_rules + 1);
	if (!r)
		m->rules[m->nr_rules++] =
			(struct mv_rule){ .req = req, .skip = skip, .times = times, .err = err };
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_vfio_fail_next(struct mock_vfio *m, unsigned long req, int err)
{
	return mv_add_rule(m, req, 0, 1, err);
}

int mock_vfio_fail_nth(struct mock_vfio *m, unsigned long req, unsigned int n, int err)
{
	if (n == 0)
		return -EINVAL;
	return mv_add_rule(m, req, n - 1, 1, err);
}

int mock_vfio_fail_always(struct mock_vfio *m, unsigned long req, int err)
{
	return mv_add_rule(m, req, 0, 0, err);
}

void mock_vfio_fail_clear(struct mock_vfio *m)
{
	pthread_mutex_lock(&m->lock);
	m->nr_rules = 0;
	pthread_mutex_unlock(&m->lock);
}

/* ---- call log and violations ---- */

size_t mock_vfio_nr_calls(struct mock_vfio *m)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->nr_calls;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_vfio_call_at(struct mock_vfio *m, size_t i, struct mock_vfio_call *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	if (i < m->nr_calls) {
		*out = m->calls[i];
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

unsigned int mock_vfio_count_calls(struct mock_vfio *m, unsigned long req)
{
	unsigned int n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_calls; i++)
		n += m->calls[i].req == req;
	pthread_mutex_unlock(&m->lock);
	return n;
}

unsigned int mock_vfio_count_set_irqs(struct mock_vfio *m, unsigned int index, uint32_t flags)
{
	unsigned int n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_calls; i++) {
		const struct mock_vfio_call *c = &m->calls[i];
		n += c->req == VFIO_DEVICE_SET_IRQS && c->result == 0 && c->index == index &&
		     c->flags == flags;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

void mock_vfio_clear_calls(struct mock_vfio *m)
{
	pthread_mutex_lock(&m->lock);
	m->nr_calls = 0;
	pthread_mutex_unlock(&m->lock);
}

unsigned int mock_vfio_violations(struct mock_vfio *m)
{
	pthread_mutex_lock(&m->lock);
	unsigned int n = (unsigned int)m->nr_violations;
	pthread_mutex_unlock(&m->lock);
	return n;
}

const char *mock_vfio_violation(struct mock_vfio *m, unsigned int i)
{
	pthread_mutex_lock(&m->lock);
	const char *s = i < m->nr_violations ? m->violations[i] : NULL;
	pthread_mutex_unlock(&m->lock);
	return s;
}
