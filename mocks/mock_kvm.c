/* Mock KVM core: the sys_ops table, the fd and mapping tables, capabilities, error
 * injection, the call log and violation records. The VM model lives in mock_kvm_vm.c,
 * vCPUs and KVM_RUN in mock_kvm_vcpu.c. */
#include "mock_kvm_int.h"

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

static const struct mk_cap default_caps[] = {
	{ KVM_CAP_USER_MEMORY, 1 },
	{ KVM_CAP_NR_VCPUS, MOCK_KVM_DEFAULT_MAX_VCPUS },
	{ KVM_CAP_MAX_VCPUS, MOCK_KVM_DEFAULT_MAX_VCPUS },
	{ KVM_CAP_MAX_VCPU_ID, MOCK_KVM_DEFAULT_MAX_VCPUS },
	{ KVM_CAP_NR_MEMSLOTS, 512 },
	{ KVM_CAP_ONE_REG, 1 },
	{ KVM_CAP_DEVICE_CTRL, 1 },
	{ KVM_CAP_IRQCHIP, 1 },
	{ KVM_CAP_IRQFD, 1 },
	{ KVM_CAP_IRQFD_RESAMPLE, 1 },
	{ KVM_CAP_IOEVENTFD, 1 },
	{ KVM_CAP_IOEVENTFD_NO_LENGTH, 1 },
	{ KVM_CAP_IOEVENTFD_ANY_LENGTH, 1 },
	{ KVM_CAP_ARM_PSCI, 1 },
	{ KVM_CAP_ARM_PSCI_0_2, 1 },
	{ KVM_CAP_IMMEDIATE_EXIT, 1 },
	{ KVM_CAP_READONLY_MEM, 1 },
	{ KVM_CAP_SYNC_MMU, 1 },
	{ KVM_CAP_MP_STATE, 1 },
	{ KVM_CAP_ARM_IRQ_LINE_LAYOUT_2, 1 },
	{ KVM_CAP_ARM_VM_IPA_SIZE, MOCK_KVM_DEFAULT_IPA_BITS },
};

/* ---- small helpers ---- */

int mk_grow(void **arr, size_t *cap, size_t need, size_t elem)
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

void mk_violation(struct mock_kvm *m, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!m->quiet)
		fprintf(stderr, "mock_kvm: ABI violation: %s\n", buf);
	if (MK_GROW(m->violations, m->cap_violations, m->nr_violations + 1))
		return;
	char *s = strdup(buf);
	if (s)
		m->violations[m->nr_violations++] = s;
}

int mk_get_cap(struct mock_kvm *m, long cap)
{
	for (size_t i = 0; i < m->nr_caps; i++)
		if (m->caps[i].cap == cap)
			return m->caps[i].value;
	return 0;
}

static int mk_set_cap(struct mock_kvm *m, long cap, int value)
{
	for (size_t i = 0; i < m->nr_caps; i++) {
		if (m->caps[i].cap == cap) {
			m->caps[i].value = value;
			return 0;
		}
	}
	if (MK_GROW(m->caps, m->cap_caps, m->nr_caps + 1))
		return -ENOMEM;
	m->caps[m->nr_caps].cap = cap;
	m->caps[m->nr_caps].value = value;
	m->nr_caps++;
	return 0;
}

static void mk_log(struct mock_kvm *m, unsigned long req, enum mock_kvm_fd_kind kind, int fd,
		   unsigned long arg, long result, int vcpu_id, bool injected)
{
	if (MK_GROW(m->calls, m->cap_calls, m->nr_calls + 1))
		return;
	struct mock_kvm_call *c = &m->calls[m->nr_calls++];
	c->req = req;
	c->kind = kind;
	c->fd = fd;
	c->arg = arg;
	c->result = result;
	c->vcpu_id = vcpu_id;
	c->injected = injected;
}

/* Does an injection rule fire for this call? Returns 0 or the error to fail with. */
static int mk_rule_hit(struct mock_kvm *m, unsigned long req)
{
	int err = 0;

	for (size_t i = 0; i < m->nr_rules; i++) {
		struct mk_rule *r = &m->rules[i];
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

struct mk_fd *mk_fd_find(struct mock_kvm *m, int fd)
{
	if (fd < 0)
		return NULL;
	for (size_t i = 0; i < m->nr_fds; i++)
		if (m->fds[i].fd == fd)
			return &m->fds[i];
	return NULL;
}

static int mk_fd_track(struct mock_kvm *m, int fd, enum mock_kvm_fd_kind kind, struct mk_vm *vm,
		       struct mk_vcpu *vcpu)
{
	if (MK_GROW(m->fds, m->cap_fds, m->nr_fds + 1))
		return -ENOMEM;
	struct mk_fd *f = &m->fds[m->nr_fds++];
	f->fd = fd;
	f->kind = kind;
	f->vm = vm;
	f->vcpu = vcpu;
	return 0;
}

/* A new KVM fd, backed by /dev/null so its number is really reserved. */
int mk_fd_alloc(struct mock_kvm *m, enum mock_kvm_fd_kind kind, struct mk_vm *vm,
		struct mk_vcpu *vcpu)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = mk_fd_track(m, fd, kind, vm, vcpu);
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

static void mk_fd_remove(struct mock_kvm *m, struct mk_fd *f)
{
	size_t i = (size_t)(f - m->fds);
	memmove(f, f + 1, (m->nr_fds - i - 1) * sizeof(*f));
	m->nr_fds--;
}

static bool mk_fd_is_kvm(enum mock_kvm_fd_kind k)
{
	return k == MOCK_KVM_FD_SYSTEM || k == MOCK_KVM_FD_VM || k == MOCK_KVM_FD_VCPU ||
	       k == MOCK_KVM_FD_DEVICE;
}

/* 0 if fd is an eventfd, -EBADF if not open, -EINVAL if open but something else. */
int mk_eventfd_check(struct mock_kvm *m, int fd)
{
	if (fd < 0)
		return -EBADF;
	struct mk_fd *f = mk_fd_find(m, fd);
	if (f && f->kind == MOCK_KVM_FD_EVENTFD)
		return 0;
	if (f && mk_fd_is_kvm(f->kind))
		return -EINVAL;
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -EBADF;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") == 0 ? 0 : -EINVAL;
}

/* ---- mapping table ---- */

static size_t mk_page_round(size_t len)
{
	return (len + MOCK_KVM_PAGE_SIZE - 1) & ~(size_t)(MOCK_KVM_PAGE_SIZE - 1);
}

static int mk_map_track(struct mock_kvm *m, void *addr, size_t len, enum mk_map_kind kind,
			struct mk_vcpu *vcpu)
{
	if (MK_GROW(m->maps, m->cap_maps, m->nr_maps + 1))
		return -ENOMEM;
	struct mk_map *mp = &m->maps[m->nr_maps++];
	mp->addr = addr;
	mp->len = mk_page_round(len);
	mp->kind = kind;
	mp->vcpu = vcpu;
	return 0;
}

/* The RAM-capable mapping (anonymous or file) holding [addr, addr+len), or NULL. */
struct mk_map *mk_map_find_range(struct mock_kvm *m, uint64_t addr, uint64_t len)
{
	if (addr + len < addr)
		return NULL;
	for (size_t i = 0; i < m->nr_maps; i++) {
		struct mk_map *mp = &m->maps[i];
		uint64_t a = (uint64_t)(uintptr_t)mp->addr;
		if (mp->kind == MK_MAP_RUN)
			continue;
		if (addr >= a && addr + len <= a + mp->len)
			return mp;
	}
	return NULL;
}

/* ---- the sys_ops table ---- */

static bool mk_path_known(struct mock_kvm *m, const char *path)
{
	for (size_t i = 0; i < m->nr_paths; i++)
		if (strcmp(m->paths[i], path) == 0)
			return true;
	return false;
}

static int mk_open(void *ctx, const char *path, int flags)
{
	struct mock_kvm *m = ctx;
	int r;

	pthread_mutex_lock(&m->lock);
	bool kvm = path && strcmp(path, "/dev/kvm") == 0;
	bool file = path && !kvm && mk_path_known(m, path);
	if (!kvm && !file) {
		struct sys fb = m->fallback;
		bool has_fb = m->has_fallback;
		if (!has_fb)
			mk_log(m, MOCK_KVM_OP_OPEN, MOCK_KVM_FD_NONE, -1, (unsigned long)flags,
			       -ENOENT, -1, false);
		pthread_mutex_unlock(&m->lock);
		return has_fb ? sys_open(&fb, path, flags) : -ENOENT;
	}
	r = mk_rule_hit(m, MOCK_KVM_OP_OPEN);
	if (r) {
		mk_log(m, MOCK_KVM_OP_OPEN, kvm ? MOCK_KVM_FD_SYSTEM : MOCK_KVM_FD_FILE, -1,
		       (unsigned long)flags, r, -1, true);
		pthread_mutex_unlock(&m->lock);
		return r;
	}
	if (kvm) {
		r = mk_fd_alloc(m, MOCK_KVM_FD_SYSTEM, NULL, NULL);
	} else {
		r = open(path, flags | O_CLOEXEC, 0600);
		if (r < 0) {
			r = -errno;
		} else {
			int t = mk_fd_track(m, r, MOCK_KVM_FD_FILE, NULL, NULL);
			if (t) {
				close(r);
				r = t;
			}
		}
	}
	mk_log(m, MOCK_KVM_OP_OPEN, kvm ? MOCK_KVM_FD_SYSTEM : MOCK_KVM_FD_FILE, r >= 0 ? r : -1,
	       (unsigned long)flags, r, -1, false);
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* Looks fd up; if the mock does not own it, returns false and sets *fb (when a fallback
 * exists) or logs -EBADF. Called with the lock held. */
static bool mk_resolve(struct mock_kvm *m, int fd, unsigned long req, struct mk_fd *out,
		       bool *use_fb, struct sys *fb)
{
	struct mk_fd *f = mk_fd_find(m, fd);
	*use_fb = false;
	if (f) {
		*out = *f;
		return true;
	}
	if (m->has_fallback) {
		*use_fb = true;
		*fb = m->fallback;
	} else {
		mk_log(m, req, MOCK_KVM_FD_NONE, fd, 0, -EBADF, -1, false);
	}
	return false;
}

static int mk_close(void *ctx, int fd)
{
	struct mock_kvm *m = ctx;
	struct mk_fd f;
	struct sys fb;
	bool use_fb;
	int r;

	pthread_mutex_lock(&m->lock);
	if (!mk_resolve(m, fd, MOCK_KVM_OP_CLOSE, &f, &use_fb, &fb)) {
		pthread_mutex_unlock(&m->lock);
		return use_fb ? sys_close(&fb, fd) : -EBADF;
	}
	int vcpu_id = f.vcpu ? (int)f.vcpu->id : -1;
	r = mk_rule_hit(m, MOCK_KVM_OP_CLOSE);
	if (r) {
		mk_log(m, MOCK_KVM_OP_CLOSE, f.kind, fd, 0, r, vcpu_id, true);
		pthread_mutex_unlock(&m->lock);
		return r;
	}
	mk_fd_remove(m, mk_fd_find(m, fd));
	r = close(fd) < 0 ? -errno : 0;
	switch (f.kind) {
	case MOCK_KVM_FD_VM:
		mk_vm_put(m, f.vm);
		break;
	case MOCK_KVM_FD_VCPU:
		mk_vcpu_closed(m, f.vcpu);
		mk_vm_put(m, f.vm);
		break;
	case MOCK_KVM_FD_DEVICE:
		f.vm->vgic.fd = -1;
		mk_vm_put(m, f.vm);
		break;
	default:
		break;
	}
	mk_log(m, MOCK_KVM_OP_CLOSE, f.kind, fd, 0, r, vcpu_id, false);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int mk_ioctl(void *ctx, int fd, unsigned long req, unsigned long arg)
{
	struct mock_kvm *m = ctx;
	struct mk_fd f;
	struct sys fb;
	bool use_fb;
	int r;

	pthread_mutex_lock(&m->lock);
	if (!mk_resolve(m, fd, req, &f, &use_fb, &fb)) {
		pthread_mutex_unlock(&m->lock);
		return use_fb ? sys_ioctl(&fb, fd, req, arg) : -EBADF;
	}
	int vcpu_id = f.vcpu ? (int)f.vcpu->id : -1;
	r = mk_rule_hit(m, req);
	if (r) {
		mk_log(m, req, f.kind, fd, arg, r, vcpu_id, true);
		pthread_mutex_unlock(&m->lock);
		return r;
	}
	switch (f.kind) {
	case MOCK_KVM_FD_SYSTEM:
		r = mk_system_ioctl(m, req, arg);
		break;
	case MOCK_KVM_FD_VM:
		r = mk_vm_ioctl(m, f.vm, req, arg);
		break;
	case MOCK_KVM_FD_VCPU:
		r = mk_vcpu_ioctl(m, f.vcpu, req, arg);
		break;
	case MOCK_KVM_FD_DEVICE:
		r = mk_device_ioctl(m, f.vm, req, arg);
		break;
	default:
		pthread_mutex_unlock(&m->lock);
		r = ioctl(fd, req, arg);
		r = r < 0 ? -errno : r;
		pthread_mutex_lock(&m->lock);
		break;
	}
	mk_log(m, req, f.kind, fd, arg, r, vcpu_id, false);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static void *mk_mmap(void *ctx, size_t len, int prot, int flags, int fd, off_t off, int *err)
{
	struct mock_kvm *m = ctx;
	struct mk_fd f = { .fd = -1, .kind = MOCK_KVM_FD_NONE };
	struct sys fb;
	bool use_fb;
	void *p = NULL;
	int r = 0;

	pthread_mutex_lock(&m->lock);
	bool anon = (flags & MAP_ANONYMOUS) != 0;
	if (!anon) {
		if (fd < 0) {
			r = -EBADF;
			goto out;
		}
		if (!mk_resolve(m, fd, MOCK_KVM_OP_MMAP, &f, &use_fb, &fb)) {
			pthread_mutex_unlock(&m->lock);
			if (!use_fb) {
				if (err)
					*err = -EBADF;
				return NULL;
			}
			p = sys_mmap(&fb, len, prot, flags, fd, off, err);
			if (p) {
				/* the kernel would accept a memslot on it: remember it */
				pthread_mutex_lock(&m->lock);
				r = mk_map_track(m, p, len, MK_MAP_FOREIGN, NULL);
				pthread_mutex_unlock(&m->lock);
				if (r) {
					sys_munmap(&fb, p, len);
					if (err)
						*err = r;
					return NULL;
				}
			}
			return p;
		}
	}
	r = mk_rule_hit(m, MOCK_KVM_OP_MMAP);
	if (r) {
		mk_log(m, MOCK_KVM_OP_MMAP, f.kind, fd, len, r, f.vcpu ? (int)f.vcpu->id : -1, true);
		pthread_mutex_unlock(&m->lock);
		if (err)
			*err = r;
		return NULL;
	}
	if (len == 0) {
		r = -EINVAL;
		goto out;
	}
	if (anon || f.kind == MOCK_KVM_FD_FILE) {
		p = mmap(NULL, len, prot, flags, anon ? -1 : fd, off);
		if (p == MAP_FAILED) {
			p = NULL;
			r = -errno;
		} else if ((r = mk_map_track(m, p, len, anon ? MK_MAP_ANON : MK_MAP_FILE, NULL))) {
			munmap(p, len);
			p = NULL;
		}
	} else if (f.kind == MOCK_KVM_FD_VCPU) {
		p = mk_vcpu_mmap(m, f.vcpu, len, flags, off, &r);
		if (p && (r = mk_map_track(m, p, len, MK_MAP_RUN, f.vcpu))) {
			mk_vcpu_munmapped(m, f.vcpu);
			p = NULL;
		}
	} else {
		r = -ENODEV; /* /dev/kvm, VM, device fds and eventfds have no mmap */
	}
out:
	mk_log(m, MOCK_KVM_OP_MMAP, f.kind, fd, len, r, f.vcpu ? (int)f.vcpu->id : -1, false);
	pthread_mutex_unlock(&m->lock);
	if (!p && err)
		*err = r;
	return p;
}

static int mk_munmap(void *ctx, void *addr, size_t len)
{
	struct mock_kvm *m = ctx;
	struct mk_map *mp = NULL;
	int r;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_maps; i++) {
		if (m->maps[i].addr == addr) {
			mp = &m->maps[i];
			break;
		}
	}
	if (mp && mp->kind == MK_MAP_FOREIGN) {
		if (m->vm && m->vm->alive && mk_slot_uses(m->vm, addr, mp->len))
			mk_violation(m, "munmap(%p, %zu) of memory still in a memslot", addr, len);
		size_t i = (size_t)(mp - m->maps);
		memmove(mp, mp + 1, (m->nr_maps - i - 1) * sizeof(*mp));
		m->nr_maps--;
		mp = NULL; /* forwarded below */
	}
	if (!mp) {
		struct sys fb = m->fallback;
		bool has_fb = m->has_fallback;
		if (!has_fb)
			mk_log(m, MOCK_KVM_OP_MUNMAP, MOCK_KVM_FD_NONE, -1, len, -EINVAL, -1, false);
		pthread_mutex_unlock(&m->lock);
		return has_fb ? sys_munmap(&fb, addr, len) : -EINVAL;
	}
	enum mock_kvm_fd_kind kind = mp->kind == MK_MAP_RUN ? MOCK_KVM_FD_VCPU :
				     mp->kind == MK_MAP_FILE ? MOCK_KVM_FD_FILE :
							       MOCK_KVM_FD_NONE;
	int vcpu_id = mp->vcpu ? (int)mp->vcpu->id : -1;
	r = mk_rule_hit(m, MOCK_KVM_OP_MUNMAP);
	if (r) {
		mk_log(m, MOCK_KVM_OP_MUNMAP, kind, -1, len, r, vcpu_id, true);
		pthread_mutex_unlock(&m->lock);
		return r;
	}
	if (len == 0 || mk_page_round(len) != mp->len) {
		r = -EINVAL; /* mock: partial unmaps are not modelled */
	} else if (mp->kind == MK_MAP_RUN) {
		mk_vcpu_munmapped(m, mp->vcpu);
		r = 0;
	} else {
		if (m->vm && m->vm->alive && mk_slot_uses(m->vm, addr, mp->len))
			mk_violation(m, "munmap(%p, %zu) of memory still in a memslot", addr, len);
		r = munmap(addr, len) < 0 ? -errno : 0;
	}
	if (!r) {
		size_t i = (size_t)(mp - m->maps);
		memmove(mp, mp + 1, (m->nr_maps - i - 1) * sizeof(*mp));
		m->nr_maps--;
	}
	mk_log(m, MOCK_KVM_OP_MUNMAP, kind, -1, len, r, vcpu_id, false);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int mk_eventfd(void *ctx, unsigned int initval, int flags)
{
	struct mock_kvm *m = ctx;
	int r;

	pthread_mutex_lock(&m->lock);
	r = mk_rule_hit(m, MOCK_KVM_OP_EVENTFD);
	if (r) {
		mk_log(m, MOCK_KVM_OP_EVENTFD, MOCK_KVM_FD_EVENTFD, -1, initval, r, -1, true);
		pthread_mutex_unlock(&m->lock);
		return r;
	}
	r = eventfd(initval, flags | EFD_CLOEXEC);
	if (r < 0) {
		r = -errno;
	} else {
		int t = mk_fd_track(m, r, MOCK_KVM_FD_EVENTFD, NULL, NULL);
		if (t) {
			close(r);
			r = t;
		}
	}
	mk_log(m, MOCK_KVM_OP_EVENTFD, MOCK_KVM_FD_EVENTFD, r >= 0 ? r : -1, initval, r, -1, false);
	pthread_mutex_unlock(&m->lock);
	return r;
}

enum mk_io { MK_IO_READ, MK_IO_WRITE, MK_IO_PREAD, MK_IO_PWRITE };

static ssize_t mk_io(struct mock_kvm *m, enum mk_io op, int fd, void *buf, size_t len, off_t off)
{
	static const unsigned long reqs[] = { MOCK_KVM_OP_READ, MOCK_KVM_OP_WRITE,
					      MOCK_KVM_OP_PREAD, MOCK_KVM_OP_PWRITE };
	unsigned long req = reqs[op];
	struct mk_fd f;
	struct sys fb;
	bool use_fb;
	ssize_t r;

	pthread_mutex_lock(&m->lock);
	if (!mk_resolve(m, fd, req, &f, &use_fb, &fb)) {
		pthread_mutex_unlock(&m->lock);
		if (!use_fb)
			return -EBADF;
		switch (op) {
		case MK_IO_READ:
			return sys_read(&fb, fd, buf, len);
		case MK_IO_WRITE:
			return sys_write(&fb, fd, buf, len);
		case MK_IO_PREAD:
			return sys_pread(&fb, fd, buf, len, off);
		default:
			return sys_pwrite(&fb, fd, buf, len, off);
		}
	}
	int vcpu_id = f.vcpu ? (int)f.vcpu->id : -1;
	r = mk_rule_hit(m, req);
	if (r) {
		mk_log(m, req, f.kind, fd, len, r, vcpu_id, true);
		pthread_mutex_unlock(&m->lock);
		return r;
	}
	if (mk_fd_is_kvm(f.kind)) {
		r = -EINVAL; /* KVM fds have no read/write */
	} else {
		/* real fds may block: never hold the mock lock across the syscall */
		pthread_mutex_unlock(&m->lock);
		switch (op) {
		case MK_IO_READ:
			r = read(fd, buf, len);
			break;
		case MK_IO_WRITE:
			r = write(fd, buf, len);
			break;
		case MK_IO_PREAD:
			r = pread(fd, buf, len, off);
			break;
		default:
			r = pwrite(fd, buf, len, off);
			break;
		}
		r = r < 0 ? -errno : r;
		pthread_mutex_lock(&m->lock);
	}
	mk_log(m, req, f.kind, fd, len, r, vcpu_id, false);
	pthread_mutex_unlock(&m->lock);
	return r;
}

static ssize_t mk_read(void *ctx, int fd, void *buf, size_t len)
{
	return mk_io(ctx, MK_IO_READ, fd, buf, len, 0);
}

static ssize_t mk_write(void *ctx, int fd, const void *buf, size_t len)
{
	return mk_io(ctx, MK_IO_WRITE, fd, (void *)buf, len, 0);
}

static ssize_t mk_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
	return mk_io(ctx, MK_IO_PREAD, fd, buf, len, off);
}

static ssize_t mk_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	return mk_io(ctx, MK_IO_PWRITE, fd, (void *)buf, len, off);
}

static const struct sys_ops mock_kvm_ops = {
	.open = mk_open,
	.close = mk_close,
	.ioctl = mk_ioctl,
	.mmap = mk_mmap,
	.munmap = mk_munmap,
	.eventfd = mk_eventfd,
	.read = mk_read,
	.write = mk_write,
	.pread = mk_pread,
	.pwrite = mk_pwrite,
};

/* ---- lifecycle and configuration ---- */

struct mock_kvm *mock_kvm_new(void)
{
	struct mock_kvm *m = calloc(1, sizeof(*m));
	pthread_condattr_t ca;

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	m->target = MOCK_KVM_TARGET_GENERIC_V8;
	m->idle = MOCK_KVM_IDLE_BLOCK;
	for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++) {
		if (mk_set_cap(m, default_caps[i].cap, default_caps[i].value)) {
			mock_kvm_free(m);
			return NULL;
		}
	}
	return m;
}

void mock_kvm_free(struct mock_kvm *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nr_fds; i++)
		close(m->fds[i].fd);
	for (size_t i = 0; i < m->nr_maps; i++)
		if (m->maps[i].kind != MK_MAP_RUN && m->maps[i].kind != MK_MAP_FOREIGN)
			munmap(m->maps[i].addr, m->maps[i].len);
	if (m->vm)
		mk_vm_free(m->vm);
	for (size_t i = 0; i < m->nr_old_vms; i++)
		mk_vm_free(m->old_vms[i]);
	mk_scripts_free(m);
	for (size_t i = 0; i < m->nr_violations; i++)
		free(m->violations[i]);
	for (size_t i = 0; i < m->nr_paths; i++)
		free(m->paths[i]);
	free(m->fds);
	free(m->maps);
	free(m->caps);
	free(m->rules);
	free(m->calls);
	free(m->violations);
	free(m->paths);
	free(m->old_vms);
	free(m->irq_events);
	free(m->mmio);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

struct sys mock_kvm_sys(struct mock_kvm *m)
{
	struct sys s = { .ops = &mock_kvm_ops, .ctx = m };
	return s;
}

int mock_kvm_set_cap(struct mock_kvm *m, long cap, int value)
{
	pthread_mutex_lock(&m->lock);
	int r = mk_set_cap(m, cap, value);
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_get_cap(struct mock_kvm *m, long cap)
{
	pthread_mutex_lock(&m->lock);
	int r = mk_get_cap(m, cap);
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_set_max_vcpus(struct mock_kvm *m, int n)
{
	pthread_mutex_lock(&m->lock);
	int r = mk_set_cap(m, KVM_CAP_NR_VCPUS, n);
	if (!r)
		r = mk_set_cap(m, KVM_CAP_MAX_VCPUS, n);
	if (!r)
		r = mk_set_cap(m, KVM_CAP_MAX_VCPU_ID, n);
	pthread_mutex_unlock(&m->lock);
	return r;
}

void mock_kvm_set_preferred_target(struct mock_kvm *m, uint32_t target)
{
	pthread_mutex_lock(&m->lock);
	m->target = target;
	pthread_mutex_unlock(&m->lock);
}

int mock_kvm_add_path(struct mock_kvm *m, const char *path)
{
	int r = -ENOMEM;

	pthread_mutex_lock(&m->lock);
	if (!MK_GROW(m->paths, m->cap_paths, m->nr_paths + 1)) {
		char *s = strdup(path);
		if (s) {
			m->paths[m->nr_paths++] = s;
			r = 0;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_adopt_fd(struct mock_kvm *m, int fd)
{
	int r;

	pthread_mutex_lock(&m->lock);
	if (fd < 0)
		r = -EBADF;
	else if (mk_fd_find(m, fd))
		r = -EEXIST;
	else
		r = mk_fd_track(m, fd, MOCK_KVM_FD_FILE, NULL, NULL);
	pthread_mutex_unlock(&m->lock);
	return r;
}

void mock_kvm_set_fallback(struct mock_kvm *m, const struct sys *fallback)
{
	pthread_mutex_lock(&m->lock);
	m->has_fallback = fallback != NULL;
	if (fallback)
		m->fallback = *fallback;
	pthread_mutex_unlock(&m->lock);
}

void mock_kvm_set_quiet(struct mock_kvm *m, bool quiet)
{
	pthread_mutex_lock(&m->lock);
	m->quiet = quiet;
	pthread_mutex_unlock(&m->lock);
}

/* ---- error injection ---- */

static int mk_add_rule(struct mock_kvm *m, unsigned long req, unsigned int skip,
		       unsigned int times, int err)
{
	int r;

	if (err >= 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	r = MK_GROW(m->rules, m->cap_rules, m->nr_rules + 1);
	if (!r) {
		struct mk_rule *rule = &m->rules[m->nr_rules++];
		rule->req = req;
		rule->skip = skip;
		rule->times = times;
		rule->err = err;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_fail_next(struct mock_kvm *m, unsigned long req, int err)
{
	return mk_add_rule(m, req, 0, 1, err);
}

int mock_kvm_fail_nth(struct mock_kvm *m, unsigned long req, unsigned int n, int err)
{
	if (n == 0)
		return -EINVAL;
	return mk_add_rule(m, req, n - 1, 1, err);
}

int mock_kvm_fail_always(struct mock_kvm *m, unsigned long req, int err)
{
	return mk_add_rule(m, req, 0, 0, err);
}

void mock_kvm_fail_clear(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	m->nr_rules = 0;
	pthread_mutex_unlock(&m->lock);
}

/* ---- inspection: fds, mappings, log, violations ---- */

int mock_kvm_open_fds(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	int n = (int)m->nr_fds;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_open_fds_kind(struct mock_kvm *m, enum mock_kvm_fd_kind kind)
{
	int n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_fds; i++)
		n += m->fds[i].kind == kind;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_live_mappings(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	int n = (int)m->nr_maps;
	pthread_mutex_unlock(&m->lock);
	return n;
}

size_t mock_kvm_nr_calls(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->nr_calls;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_call_at(struct mock_kvm *m, size_t i, struct mock_kvm_call *out)
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

unsigned int mock_kvm_count_calls(struct mock_kvm *m, unsigned long req)
{
	unsigned int n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_calls; i++)
		n += m->calls[i].req == req;
	pthread_mutex_unlock(&m->lock);
	return n;
}

unsigned int mock_kvm_count_calls_ret(struct mock_kvm *m, unsigned long req, long result)
{
	unsigned int n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_calls; i++)
		n += m->calls[i].req == req && m->calls[i].result == result;
	pthread_mutex_unlock(&m->lock);
	return n;
}

void mock_kvm_clear_calls(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	m->nr_calls = 0;
	pthread_mutex_unlock(&m->lock);
}

unsigned int mock_kvm_violations(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	unsigned int n = (unsigned int)m->nr_violations;
	pthread_mutex_unlock(&m->lock);
	return n;
}

const char *mock_kvm_violation(struct mock_kvm *m, unsigned int i)
{
	pthread_mutex_lock(&m->lock);
	const char *s = i < m->nr_violations ? m->violations[i] : NULL;
	pthread_mutex_unlock(&m->lock);
	return s;
}
