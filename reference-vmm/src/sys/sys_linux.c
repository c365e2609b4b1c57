/* Production implementation of the sys seam: thin wrappers over the real syscalls
 * that convert -1/errno into negative errno return values. */
#include "sys/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int lx_open(void *ctx, const char *path, int flags)
{
	(void)ctx;
	int fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int lx_close(void *ctx, int fd)
{
	(void)ctx;
	return close(fd) < 0 ? -errno : 0;
}

static int lx_ioctl(void *ctx, int fd, unsigned long req, unsigned long arg)
{
	(void)ctx;
	int r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

static void *lx_mmap(void *ctx, size_t len, int prot, int flags, int fd, off_t off, int *err)
{
	(void)ctx;
	void *p = mmap(NULL, len, prot, flags, fd, off);
	if (p == MAP_FAILED) {
		if (err)
			*err = -errno;
		return NULL;
	}
	return p;
}

static int lx_munmap(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	return munmap(addr, len) < 0 ? -errno : 0;
}

static int lx_eventfd(void *ctx, unsigned int initval, int flags)
{
	(void)ctx;
	int fd = eventfd(initval, flags | EFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static ssize_t lx_read(void *ctx, int fd, void *buf, size_t len)
{
	(void)ctx;
	ssize_t r = read(fd, buf, len);
	return r < 0 ? -errno : r;
}

static ssize_t lx_write(void *ctx, int fd, const void *buf, size_t len)
{
	(void)ctx;
	ssize_t r = write(fd, buf, len);
	return r < 0 ? -errno : r;
}

static ssize_t lx_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
	(void)ctx;
	ssize_t r = pread(fd, buf, len, off);
	return r < 0 ? -errno : r;
}

static ssize_t lx_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	(void)ctx;
	ssize_t r = pwrite(fd, buf, len, off);
	return r < 0 ? -errno : r;
}

static const struct sys_ops linux_ops = {
	.open = lx_open,
	.close = lx_close,
	.ioctl = lx_ioctl,
	.mmap = lx_mmap,
	.munmap = lx_munmap,
	.eventfd = lx_eventfd,
	.read = lx_read,
	.write = lx_write,
	.pread = lx_pread,
	.pwrite = lx_pwrite,
};

struct sys sys_linux(void)
{
	struct sys s = { .ops = &linux_ops, .ctx = NULL };
	return s;
}
