/* vCPU threads: the KVM_RUN loop, MMIO exit dispatch to the bus, system events
 * (power off / reset / crash) and kicking threads out of KVM_RUN to stop. */
#include "core/vmm_internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static const char *system_event_name(uint32_t type)
{
	switch (type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		return "power off";
	case KVM_SYSTEM_EVENT_RESET:
		return "reset";
	case KVM_SYSTEM_EVENT_CRASH:
		return "crash";
	default:
		return "unknown system event";
	}
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct vmm *vmm = vcpu->vmm;
	struct kvm_run *run = vcpu->run;
	uint64_t addr = run->mmio.phys_addr;
	unsigned int len = run->mmio.len;
	int r;

	if (len > sizeof(run->mmio.data)) {
		vmm_report_exit(vmm, VMM_EXIT_FAILURE, "KVM reported an MMIO access longer than 8 bytes");
		return;
	}
	if (run->mmio.is_write)
		r = bus_write(&vmm->mmio, addr, run->mmio.data, len);
	else
		r = bus_read(&vmm->mmio, addr, run->mmio.data, len);
	if (r == -ENODEV)
		log_dbg(&vmm->log, "vcpu%u: unhandled MMIO %s at 0x%llx (%u bytes)", vcpu->index,
			run->mmio.is_write ? "write" : "read", (unsigned long long)addr, len);
	else if (r < 0)
		log_warn(&vmm->log, "vcpu%u: bad MMIO access at 0x%llx (%u bytes)", vcpu->index,
			 (unsigned long long)addr, len);
}

static void handle_system_event(struct vcpu *vcpu)
{
	struct vmm *vmm = vcpu->vmm;
	uint32_t type = vcpu->run->system_event.type;
	char why[96];
	snprintf(why, sizeof(why), "guest %s (vcpu%u)", system_event_name(type), vcpu->index);
	switch (type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vmm_report_exit(vmm, VMM_EXIT_POWEROFF, why);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vmm_report_exit(vmm, VMM_EXIT_RESET, why);
		break;
	default:
		vmm_report_exit(vmm, VMM_EXIT_FAILURE, why);
		break;
	}
}

bool vcpu_run_once(struct vcpu *vcpu)
{
	struct vmm *vmm = vcpu->vmm;
	if (atomic_load(&vmm->stop))
		return false;
	int r = sys_ioctl(&vmm->sys, vcpu->fd, KVM_RUN, 0);
	vcpu->exits++;
	if (r < 0) {
		if (r == -EINTR || r == -EAGAIN) {
			vcpu->run->immediate_exit = 0;
			return !atomic_load(&vmm->stop);
		}
		char why[96];
		snprintf(why, sizeof(why), "KVM_RUN failed on vcpu%u: %s", vcpu->index, strerror(-r));
		vmm_report_exit(vmm, VMM_EXIT_FAILURE, why);
		return false;
	}
	switch (vcpu->run->exit_reason) {
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		return true;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(vcpu);
		return false;
	case KVM_EXIT_INTR:
		return !atomic_load(&vmm->stop);
	default: {
		char why[128];
		snprintf(why, sizeof(why), "vcpu%u stopped: unexpected KVM exit reason %u",
			 vcpu->index, vcpu->run->exit_reason);
		if (vcpu->run->exit_reason == KVM_EXIT_FAIL_ENTRY)
			snprintf(why, sizeof(why), "vcpu%u failed to enter the guest (reason 0x%llx)",
				 vcpu->index,
				 (unsigned long long)vcpu->run->fail_entry.hardware_entry_failure_reason);
		vmm_report_exit(vmm, VMM_EXIT_FAILURE, why);
		return false;
	}
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	while (vcpu_run_once(vcpu))
		;
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	int r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	if (r)
		return -r;
	vcpu->thread_started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (vcpu->run)
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, SIGUSR1);
}

void vcpu_join(struct vcpu *vcpu)
{
	if (vcpu->thread_started) {
		pthread_join(vcpu->thread, NULL);
		vcpu->thread_started = false;
	}
}
