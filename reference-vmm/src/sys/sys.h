/* The seam between the VMM and the OS: every open/ioctl/mmap/eventfd on /dev/kvm,
 * VFIO and friends goes through one table of function pointers. Production uses
 * sys_linux(); mocks/ provides fake kernels with the same table. */
#ifndef VMM_SYS_H
#define VMM_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Contract for every op: return >= 0 on success, a negative errno on failure
 * (never -1 + errno). mmap returns the mapping or NULL and stores -errno in *err.
 */
struct sys_ops {
	int (*open)(void *ctx, const char *path, int flags);
	int (*close)(void *ctx, int fd);
	/* arg is either an integer or a pointer cast to unsigned long, as the ioctl wants */
	int (*ioctl)(void *ctx, int fd, unsigned long req, unsigned long arg);
	void *(*mmap)(void *ctx, size_t len, int prot, int flags, int fd, off_t off, int *err);
	int (*munmap)(void *ctx, void *addr, size_t len);
	int (*eventfd)(void *ctx, unsigned int initval, int flags);
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t len);
	ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len);
	ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, off_t off);
};

struct sys {
	const struct sys_ops *ops;
	void *ctx;
};

/* The real OS. ctx is unused. */
struct sys sys_linux(void);

static inline int sys_open(const struct sys *s, const char *path, int flags)
{
	return s->ops->open(s->ctx, path, flags);
}

static inline int sys_close(const struct sys *s, int fd)
{
	return s->ops->close(s->ctx, fd);
}

static inline int sys_ioctl(const struct sys *s, int fd, unsigned long req, unsigned long arg)
{
	return s->ops->ioctl(s->ctx, fd, req, arg);
}

static inline int sys_ioctl_ptr(const struct sys *s, int fd, unsigned long req, const void *arg)
{
	return s->ops->ioctl(s->ctx, fd, req, (unsigned long)(uintptr_t)arg);
}

static inline void *sys_mmap(const struct sys *s, size_t len, int prot, int flags, int fd,
			     off_t off, int *err)
{
	return s->ops->mmap(s->ctx, len, prot, flags, fd, off, err);
}

static inline int sys_munmap(const struct sys *s, void *addr, size_t len)
{
	return s->ops->munmap(s->ctx, addr, len);
}

static inline int sys_eventfd(const struct sys *s, unsigned int initval, int flags)
{
	return s->ops->eventfd(s->ctx, initval, flags);
}

static inline ssize_t sys_read(const struct sys *s, int fd, void *buf, size_t len)
{
	return s->ops->read(s->ctx, fd, buf, len);
}

static inline ssize_t sys_write(const struct sys *s, int fd, const void *buf, size_t len)
{
	return s->ops->write(s->ctx, fd, buf, len);
}

static inline ssize_t sys_pread(const struct sys *s, int fd, void *buf, size_t len, off_t off)
{
	return s->ops->pread(s->ctx, fd, buf, len, off);
}

static inline ssize_t sys_pwrite(const struct sys *s, int fd, const void *buf, size_t len,
				 off_t off)
{
	return s->ops->pwrite(s->ctx, fd, buf, len, off);
}

#endif
