/* Creates the device backends a config asks for (virtio-blk disks, virtio-
 * console, virtio-vsock) and hands them to the virtio slots, in slot order. */
#include "core/vmm_internal.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/vsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void free_blk(void *dev)
{
	virtio_blk_free(dev);
}

static void free_console(void *dev)
{
	virtio_console_free(dev);
}

static void free_vsock(void *dev)
{
	virtio_vsock_free(dev);
}

/* Device errors about user input (missing file, path in use) are usage errors. */
static int usage_error(int r)
{
	return (r == -EINVAL || r == -EBUSY || r == -EEXIST || r == -EADDRINUSE ||
		r == -ENOENT || r == -EACCES)
		       ? -EINVAL
		       : r;
}

static int add(struct vmm *vmm, const struct virtio_dev_ops *ops, void *dev,
	       void (*free_dev)(void *), char *err, size_t errlen)
{
	int r = virtio_slots_add(vmm, ops, dev, free_dev);
	if (r < 0) {
		free_dev(dev);
		snprintf(err, errlen, "too many virtio devices (at most %d)", VMM_MAX_VIRTIO);
	}
	return r;
}

int vmm_devices_create(struct vmm *vmm, char *err, size_t errlen)
{
	const struct vmm_config *cfg = vmm->cfg;
	for (unsigned int i = 0; i < cfg->nr_blocks; i++) {
		const struct vmm_block_config *bc = &cfg->blocks[i];
		struct virtio_blk_config c = {
			.path = bc->path,
			.read_only = bc->read_only,
			.serial = bc->serial,
		};
		struct virtio_blk *b;
		int r = virtio_blk_new(&b, &c, &vmm->log, err, errlen);
		if (r < 0)
			return usage_error(r);
		r = add(vmm, &virtio_blk_ops, b, free_blk, err, errlen);
		if (r < 0)
			return r;
	}
	if (cfg->console.backend != VMM_CONSOLE_NONE) {
		struct virtio_console_config c = { .in_fd = -1, .out_fd = -1 };
		switch (cfg->console.backend) {
		case VMM_CONSOLE_STDIO:
			c.backend = VIRTIO_CONSOLE_BACKEND_STDIO;
			c.in_fd = STDIN_FILENO;
			c.out_fd = STDOUT_FILENO;
			c.raw_tty = true;
			/* stdin belongs to the virtio console now: the PL011 only prints */
			vmm->console.in_fd = -1;
			break;
		case VMM_CONSOLE_PTY:
			c.backend = VIRTIO_CONSOLE_BACKEND_PTY;
			break;
		default:
			c.backend = VIRTIO_CONSOLE_BACKEND_UNIX;
			c.path = cfg->console.path;
			break;
		}
		struct virtio_console *con;
		int r = virtio_console_new(&con, &c, &vmm->loop, &vmm->log, err, errlen);
		if (r < 0)
			return usage_error(r);
		r = add(vmm, &virtio_console_ops, con, free_console, err, errlen);
		if (r < 0)
			return r;
	}
	if (cfg->vsock.enabled) {
		struct virtio_vsock_config c = {
			.guest_cid = cfg->vsock.guest_cid,
			.uds_path = cfg->vsock.uds_path,
		};
		struct virtio_vsock *vs;
		int r = virtio_vsock_new(&vs, &c, &vmm->loop, &vmm->log, err, errlen);
		if (r < 0)
			return usage_error(r);
		r = add(vmm, &virtio_vsock_ops, vs, free_vsock, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}
