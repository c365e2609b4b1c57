/* The VMM context shared by the core and the arch backend. Not part of the
 * public API: front ends only see struct vmm as an opaque handle. */
#ifndef VMM_INTERNAL_H
#define VMM_INTERNAL_H

#include "core/bus.h"
#include "core/console.h"
#include "core/event_loop.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "core/virtio_slots.h"
#include "sys/sys.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct vcpu {
	struct vmm *vmm;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	uint64_t exits; /* count of KVM_RUN returns, for diagnostics */
};

struct vmm {
	const struct vmm_config *cfg; /* borrowed: must outlive the vmm */
	struct sys sys;
	struct log log;
	uint64_t start_ns;

	int kvm_fd;
	int vm_fd;
	size_t run_size;
	void *ram;
	uint64_t ram_size;
	struct guest_mem mem;
	struct bus mmio;

	struct vcpu vcpus[VMM_MAX_VCPUS];
	unsigned int nr_vcpus;

	struct console console;
	struct event_loop loop; /* backends and ioeventfd kicks */
	bool loop_ready;
	struct virtio_slot virtio[VMM_MAX_VIRTIO];
	unsigned int nr_virtio;
	struct pt_state *pt; /* passthrough devices, NULL without --passthrough */
	struct arch_boot *boot; /* prepared once, reused across reboots */
	struct arch_vm *arch;   /* arch backend state */

	/* run state: first reported exit wins */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool stop;
	bool exited;
	int exit_code;
	unsigned int reboots;
};

/* Record why the VM stops (first caller wins) and kick every vCPU out of KVM_RUN. */
void vmm_report_exit(struct vmm *vmm, int code, const char *why);

/* Create the device backends the config asks for (core/devices.c); bad input
 * (missing disk, socket path in use) → -EINVAL with err naming it. */
int vmm_devices_create(struct vmm *vmm, char *err, size_t errlen);

/* Interrupt line helper for devices: the arch maps `irq` onto its irqchip. */
int vmm_set_irq(void *vmm_ptr, unsigned int irq, int level);

/* vCPU threads (core/vcpu.c) */
int vcpu_start(struct vcpu *vcpu);
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
/* One KVM_RUN and the handling of its exit; returns false when the thread should stop.
 * Exposed so unit tests can drive the loop step by step on the calling thread. */
bool vcpu_run_once(struct vcpu *vcpu);

#endif
