/* VM lifecycle: validate inputs, open KVM, create the VM, guest RAM and vCPUs,
 * hand over to the arch backend, run until the guest stops, tear down. */
#include "core/arch.h"
#include "core/errbuf.h"
#include "devices/boot_timer.h"
#include "core/passthrough.h"
#include "core/vmm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define KVM_API_VERSION_EXPECTED 12



void vmm_report_exit(struct vmm *vmm, int code, const char *why)
{
	pthread_mutex_lock(&vmm->lock);
	bool first = !vmm->exited;
	if (first) {
		vmm->exited = true;
		vmm->exit_code = code;
		atomic_store(&vmm->stop, true);
		pthread_cond_broadcast(&vmm->cond);
	}
	pthread_mutex_unlock(&vmm->lock);
	if (!first)
		return;
	if (code == VMM_EXIT_FAILURE)
		log_err(&vmm->log, "%s", why);
	else
		log_info(&vmm->log, "%s", why);
	for (unsigned int i = 0; i < vmm->nr_vcpus; i++)
		vcpu_kick(&vmm->vcpus[i]);
}

void vmm_request_stop(struct vmm *vmm)
{
	/* async-signal-safe subset: only atomics, the waiter polls `stop` */
	atomic_store(&vmm->stop, true);
}

/* Everything that exists per boot: KVM VM, RAM, vCPUs, devices. */
static void vm_teardown(struct vmm *vmm)
{
	virtio_slots_teardown(vmm); /* event loop is stopped: no backend callback runs */
	pt_teardown(vmm);           /* before the VM fd and guest RAM go away */
	arch_vm_teardown(vmm);
	for (unsigned int i = 0; i < vmm->nr_vcpus; i++) {
		struct vcpu *v = &vmm->vcpus[i];
		if (v->run)
			sys_munmap(&vmm->sys, v->run, vmm->run_size);
		if (v->fd >= 0)
			sys_close(&vmm->sys, v->fd);
		v->run = NULL;
		v->fd = -1;
	}
	vmm->nr_vcpus = 0;
	if (vmm->vm_fd >= 0)
		sys_close(&vmm->sys, vmm->vm_fd);
	vmm->vm_fd = -1;
	if (vmm->ram)
		sys_munmap(&vmm->sys, vmm->ram, vmm->ram_size);
	vmm->ram = NULL;
	guest_mem_init(&vmm->mem);
	bus_init(&vmm->mmio);
}

static int check_kvm(struct vmm *vmm, char *err, size_t errlen)
{
	int r = sys_open(&vmm->sys, "/dev/kvm", O_RDWR);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "cannot open /dev/kvm: %s", strerror(-r));
	vmm->kvm_fd = r;
	r = sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION_EXPECTED)
		return errbuf_fail(err, errlen, -ENOTSUP, "/dev/kvm speaks API version %d, expected %d", r,
			    KVM_API_VERSION_EXPECTED);
	static const struct {
		long cap;
		const char *name;
	} caps[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_ONE_REG, "KVM_CAP_ONE_REG" },
		{ KVM_CAP_DEVICE_CTRL, "KVM_CAP_DEVICE_CTRL" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_CHECK_EXTENSION,
			      (unsigned long)caps[i].cap) <= 0)
			return errbuf_fail(err, errlen, -ENOTSUP, "KVM lacks %s", caps[i].name);
	}
	int max = sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && vmm->cfg->nr_vcpus > (unsigned int)max)
		return errbuf_fail(err, errlen, -EINVAL, "KVM supports at most %d vCPUs, %u requested", max,
			    vmm->cfg->nr_vcpus);
	r = sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run))
		return errbuf_fail(err, errlen, r < 0 ? r : -EINVAL, "KVM_GET_VCPU_MMAP_SIZE failed (%d)", r);
	vmm->run_size = (size_t)r;
	return 0;
}

static int setup_ram(struct vmm *vmm, char *err, size_t errlen)
{
	int r = 0;
	vmm->ram_size = vmm->cfg->mem_mib << 20;
	vmm->ram = sys_mmap(&vmm->sys, vmm->ram_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &r);
	if (!vmm->ram)
		return errbuf_fail(err, errlen, r ? r : -ENOMEM, "cannot allocate %llu MiB of guest memory: %s",
			    (unsigned long long)vmm->cfg->mem_mib, strerror(r ? -r : ENOMEM));
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = arch_ram_base(),
		.memory_size = vmm->ram_size,
		.userspace_addr = (uint64_t)(uintptr_t)vmm->ram,
	};
	r = sys_ioctl_ptr(&vmm->sys, vmm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "KVM_SET_USER_MEMORY_REGION failed: %s", strerror(-r));
	r = guest_mem_add(&vmm->mem, arch_ram_base(), vmm->ram_size, vmm->ram);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "guest memory layout is invalid");
	return 0;
}

static int setup_vcpus(struct vmm *vmm, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < vmm->cfg->nr_vcpus; i++) {
		struct vcpu *v = &vmm->vcpus[i];
		memset(v, 0, sizeof(*v));
		v->vmm = vmm;
		v->index = i;
		v->fd = sys_ioctl(&vmm->sys, vmm->vm_fd, KVM_CREATE_VCPU, i);
		if (v->fd < 0) {
			int r = v->fd;
			v->fd = -1;
			return errbuf_fail(err, errlen, r, "KVM_CREATE_VCPU %u failed: %s", i, strerror(-r));
		}
		vmm->nr_vcpus = i + 1;
		int r = 0;
		v->run = sys_mmap(&vmm->sys, vmm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
				  0, &r);
		if (!v->run)
			return errbuf_fail(err, errlen, r ? r : -ENOMEM, "cannot map kvm_run of vcpu %u: %s", i,
				    strerror(r ? -r : ENOMEM));
		r = arch_vcpu_init(vmm, v, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Build everything for one boot of the guest. */
static int vm_setup(struct vmm *vmm, char *err, size_t errlen)
{
	int r = sys_ioctl(&vmm->sys, vmm->kvm_fd, KVM_CREATE_VM, 0);
	if (r < 0)
		return errbuf_fail(err, errlen, r, "KVM_CREATE_VM failed: %s", strerror(-r));
	vmm->vm_fd = r;
	r = setup_ram(vmm, err, errlen);
	if (!r)
		r = arch_vm_init(vmm, err, errlen);
	if (!r)
		r = setup_vcpus(vmm, err, errlen);
	if (!r)
		r = arch_vm_finalize(vmm, err, errlen);
	return r;
}

static struct vmm *vmm_alloc(const struct vmm_config *cfg, const struct sys *sys)
{
	struct vmm *vmm = calloc(1, sizeof(*vmm));
	if (!vmm)
		return NULL;
	vmm->cfg = cfg;
	vmm->sys = *sys;
	vmm->log.level = (enum log_level)cfg->log_level;
	vmm->start_ns = boot_timer_monotonic_ns(); /* the boot timer measures from it */
	vmm->kvm_fd = vmm->vm_fd = -1;
	for (unsigned int i = 0; i < VMM_MAX_VCPUS; i++)
		vmm->vcpus[i].fd = -1;
	guest_mem_init(&vmm->mem);
	bus_init(&vmm->mmio);
	pthread_mutex_init(&vmm->lock, NULL);
	pthread_cond_init(&vmm->cond, NULL);
	console_init(&vmm->console, STDIN_FILENO, STDOUT_FILENO, &vmm->log);
	if (event_loop_init(&vmm->loop) < 0) {
		console_destroy(&vmm->console);
		pthread_cond_destroy(&vmm->cond);
		pthread_mutex_destroy(&vmm->lock);
		free(vmm);
		return NULL;
	}
	vmm->loop_ready = true;
	return vmm;
}

int vmm_create(struct vmm **out, const struct vmm_config *cfg, const struct sys *sys, char *err,
	       size_t errlen)
{
	*out = NULL;
	struct vmm *vmm = vmm_alloc(cfg, sys);
	if (!vmm)
		return errbuf_fail(err, errlen, -ENOMEM, "out of memory");
	vmm->boot = arch_boot_new();
	if (!vmm->boot) {
		vmm_destroy(vmm);
		return errbuf_fail(err, errlen, -ENOMEM, "out of memory");
	}
	/* input validation first: a bad file never opens /dev/kvm */
	int r = arch_prepare_boot(cfg, vmm->boot, err, errlen);
	if (!r)
		r = vmm_devices_create(vmm, err, errlen);
	if (!r)
		r = pt_prepare(vmm, err, errlen);
	if (!r)
		r = check_kvm(vmm, err, errlen);
	if (!r) {
		r = vm_setup(vmm, err, errlen);
		/* inputs were validated above: a kernel's EINVAL now is a runtime
		 * failure, not bad usage (callers map -EINVAL to exit status 2) */
		if (r == -EINVAL)
			r = -EIO;
	}
	if (r < 0) {
		vmm_destroy(vmm);
		return r;
	}
	*out = vmm;
	return 0;
}

void vmm_set_console_fds(struct vmm *vmm, int in_fd, int out_fd)
{
	vmm->console.in_fd = in_fd;
	vmm->console.out_fd = out_fd;
}

static size_t console_rx(void *ctx, const uint8_t *buf, size_t len)
{
	return arch_console_rx(ctx, buf, len);
}

static size_t console_room(void *ctx)
{
	return arch_console_room(ctx);
}

static void sigusr1_noop(int sig)
{
	(void)sig;
}

/* Start the vCPUs, wait for an exit (or a stop signal), stop and join everything. */
static int run_once(struct vmm *vmm, const sigset_t *stop_signals)
{
	pthread_mutex_lock(&vmm->lock);
	vmm->exited = false;
	vmm->exit_code = VMM_EXIT_FAILURE;
	pthread_mutex_unlock(&vmm->lock);
	atomic_store(&vmm->stop, false);

	for (unsigned int i = 0; i < vmm->nr_vcpus; i++) {
		int r = vcpu_start(&vmm->vcpus[i]);
		if (r < 0) {
			vmm_report_exit(vmm, VMM_EXIT_FAILURE, "cannot start a vCPU thread");
			break;
		}
	}
	pthread_mutex_lock(&vmm->lock);
	while (!vmm->exited) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&vmm->cond, &vmm->lock, &ts);
		if (vmm->exited)
			break;
		pthread_mutex_unlock(&vmm->lock);
		const char *why = NULL;
		int sig = sigtimedwait(stop_signals, NULL, &(struct timespec){ 0, 0 });
		if (sig == SIGINT)
			why = "stopped by SIGINT";
		else if (sig == SIGTERM)
			why = "stopped by SIGTERM";
		else if (atomic_load(&vmm->stop))
			why = "stopped by request"; /* vmm_request_stop() */
		if (why)
			vmm_report_exit(vmm, VMM_EXIT_FAILURE, why);
		pthread_mutex_lock(&vmm->lock);
	}
	int code = vmm->exit_code;
	pthread_mutex_unlock(&vmm->lock);
	for (unsigned int i = 0; i < vmm->nr_vcpus; i++)
		vcpu_kick(&vmm->vcpus[i]);
	for (unsigned int i = 0; i < vmm->nr_vcpus; i++)
		vcpu_join(&vmm->vcpus[i]);
	return code;
}

int vmm_run(struct vmm *vmm)
{
	struct sigaction sa = { .sa_handler = sigusr1_noop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	/* SIGINT/SIGTERM become orderly stops: blocked here (threads inherit the
	 * mask) and collected by the waiting thread with sigtimedwait() */
	sigset_t stop_signals, old_mask;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);

	struct console_sink sink = { console_rx, console_room, vmm };
	int r = console_start(&vmm->console, sink);
	if (r < 0)
		log_warn(&vmm->log, "console input disabled: %s", strerror(-r));

	int code;
	for (;;) {
		r = event_loop_start(&vmm->loop);
		if (r < 0) {
			log_err(&vmm->log, "cannot start the event loop: %s", strerror(-r));
			code = VMM_EXIT_FAILURE;
			break;
		}
		code = run_once(vmm, &stop_signals);
		event_loop_stop(&vmm->loop);
		if (code != VMM_EXIT_RESET || vmm->cfg->on_reset != VMM_RESET_REBOOT)
			break;
		if (vmm->cfg->max_reboots && vmm->reboots >= vmm->cfg->max_reboots) {
			log_err(&vmm->log, "guest reset %u times: giving up", vmm->reboots);
			code = VMM_EXIT_FAILURE;
			break;
		}
		vmm->reboots++;
		log_info(&vmm->log, "rebooting the guest (reboot %u)", vmm->reboots);
		/* the input thread feeds the UART that is about to be rebuilt */
		console_stop(&vmm->console);
		vm_teardown(vmm);
		char err[256];
		if (vm_setup(vmm, err, sizeof(err)) < 0) {
			log_err(&vmm->log, "reboot failed: %s", err);
			code = VMM_EXIT_FAILURE;
			break;
		}
		r = console_start(&vmm->console, sink);
		if (r < 0)
			log_warn(&vmm->log, "console input disabled: %s", strerror(-r));
	}
	console_stop(&vmm->console);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	return code;
}

void vmm_destroy(struct vmm *vmm)
{
	if (!vmm)
		return;
	console_destroy(&vmm->console);
	if (vmm->loop_ready)
		event_loop_stop(&vmm->loop);
	vm_teardown(vmm);
	pt_free(vmm);
	virtio_slots_free(vmm);
	if (vmm->loop_ready)
		event_loop_destroy(&vmm->loop);
	if (vmm->kvm_fd >= 0)
		sys_close(&vmm->sys, vmm->kvm_fd);
	arch_boot_free(vmm->boot);
	pthread_cond_destroy(&vmm->cond);
	pthread_mutex_destroy(&vmm->lock);
	free(vmm);
}

int vmm_dump_dtb(const struct vmm_config *cfg, const char *path, char *err, size_t errlen)
{
	/* the same preparation as vmm_create (files, layout, passthrough nodes), no KVM */
	struct sys sys = sys_linux();
	struct vmm *vmm = vmm_alloc(cfg, &sys);
	if (!vmm)
		return errbuf_fail(err, errlen, -ENOMEM, "out of memory");
	vmm->boot = arch_boot_new();
	int r = vmm->boot ? arch_prepare_boot(cfg, vmm->boot, err, errlen)
			  : errbuf_fail(err, errlen, -ENOMEM, "out of memory");
	if (!r)
		r = pt_prepare(vmm, err, errlen);
	if (r < 0) {
		vmm_destroy(vmm);
		return r;
	}
	size_t len;
	const void *dtb = arch_boot_dtb(vmm->boot, &len);
	FILE *f = fopen(path, "wb");
	if (!f) {
		r = errbuf_fail(err, errlen, -EINVAL, "cannot write the DTB to '%s': %s", path,
			 strerror(errno));
	} else {
		size_t w = fwrite(dtb, 1, len, f);
		if (fclose(f) != 0 || w != len)
			r = errbuf_fail(err, errlen, -EIO, "writing the DTB to '%s' failed", path);
	}
	vmm_destroy(vmm);
	return r;
}
