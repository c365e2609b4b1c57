/* Internal state of mock KVM shared by mock_kvm.c (seam, fds, log, injection),
 * mock_kvm_vm.c (VM and vGIC model) and mock_kvm_vcpu.c (vCPUs, scripts, KVM_RUN). */
#ifndef MOCK_KVM_INT_H
#define MOCK_KVM_INT_H

#include <pthread.h>

#include "mock_kvm.h"

#define MK_NR_CORE_REGS 36 /* x0..x30, sp, pc, pstate, sp_el1, elr_el1 */
#define MK_MAX_INTID 1024U
#define MK_POLL_NS 2000000L /* blocked KVM_RUN re-checks immediate_exit every 2 ms */

struct mk_vm;
struct mk_vcpu;

struct mk_fd {
	int fd;
	enum mock_kvm_fd_kind kind;
	struct mk_vm *vm;     /* VM, vCPU, device fds */
	struct mk_vcpu *vcpu; /* vCPU fds */
};

/* MK_MAP_FOREIGN: made by the fallback seam (e.g. a mock VFIO region); tracked so a
 * memslot may use it, unmapped only by the fallback */
enum mk_map_kind { MK_MAP_ANON, MK_MAP_FILE, MK_MAP_RUN, MK_MAP_FOREIGN };

struct mk_map {
	void *addr;
	size_t len;
	enum mk_map_kind kind;
	struct mk_vcpu *vcpu; /* MK_MAP_RUN */
};

struct mk_rule {
	unsigned long req;
	unsigned int skip;  /* matching calls to let through first */
	unsigned int times; /* failures left; 0 = forever */
	int err;
};

struct mk_cap {
	long cap;
	int value;
};

enum mk_step_kind {
	MK_STEP_MMIO_READ,
	MK_STEP_MMIO_WRITE,
	MK_STEP_SYSTEM_EVENT,
	MK_STEP_ERRNO,
	MK_STEP_EXIT,
	MK_STEP_BLOCK,
	MK_STEP_GUEST_WRITE,
	MK_STEP_CALL,
};

struct mk_step {
	enum mk_step_kind kind;
	uint64_t addr;
	uint32_t len;
	uint8_t data[8];
	uint32_t code; /* system event type / exit reason */
	int err;
	void *buf; /* guest write data / exit payload (owned) */
	size_t buflen;
	mock_kvm_step_fn fn;
	void *arg;
};

struct mk_script {
	unsigned int vcpu_id;
	struct mk_step *steps;
	size_t head, n, cap;
	int idle;                   /* enum mock_kvm_idle, or -1 = mock default */
	unsigned int release_tokens; /* mock_kvm_release() calls not yet used */
};

struct mk_vcpu {
	struct mk_vm *vm;
	unsigned int id;
	unsigned int idx;
	int fd; /* -1 once closed */
	struct kvm_run *run; /* MOCK_KVM_VCPU_MMAP_SIZE real mapping owned by the mock */
	unsigned int map_count;
	bool run_locked; /* PROT_NONE while unmapped by the VMM */
	bool initialised;
	uint32_t target;
	uint32_t features;
	uint64_t core[MK_NR_CORE_REGS];
	uint64_t mpidr;
	uint32_t psci_version;
	bool ran, in_run, blocked, kicked;
	bool mmio_pending;
	uint64_t mmio_addr;
	uint32_t mmio_len;
	unsigned int runs, exits;
	uint32_t ppi_level; /* bit n = INTID n (16..31) */
};

struct mk_vgic {
	bool created;
	int fd;
	bool dist_set, redist_set;
	uint64_t dist, redist;
	bool nr_irqs_set;
	uint32_t nr_irqs;
	bool initialised, ready;
};

struct mk_irqfd {
	int fd, resamplefd;
	uint32_t gsi, flags;
};

struct mk_ioeventfd {
	uint64_t addr, datamatch;
	uint32_t len, flags;
	int fd;
	unsigned int hits;
};

struct mk_vm {
	bool alive;
	int refs; /* open VM, vCPU and device fds */
	unsigned long type;
	unsigned int ipa_bits;
	struct kvm_userspace_memory_region *slots;
	size_t nr_slots, cap_slots;
	struct mk_vcpu **vcpus;
	size_t nr_vcpus, cap_vcpus;
	struct mk_vgic vgic;
	uint8_t spi_level[MK_MAX_INTID];
	struct mk_irqfd *irqfds;
	size_t nr_irqfds, cap_irqfds;
	struct mk_ioeventfd *ioeventfds;
	size_t nr_ioeventfds, cap_ioeventfds;
};

struct mock_kvm {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast on any state change a waiter may care about */

	struct mk_fd *fds;
	size_t nr_fds, cap_fds;
	struct mk_map *maps;
	size_t nr_maps, cap_maps;
	struct mk_cap *caps;
	size_t nr_caps, cap_caps;
	struct mk_rule *rules;
	size_t nr_rules, cap_rules;
	struct mock_kvm_call *calls;
	size_t nr_calls, cap_calls;
	char **violations;
	size_t nr_violations, cap_violations;
	bool quiet;
	char **paths;
	size_t nr_paths, cap_paths;
	bool has_fallback;
	struct sys fallback;

	uint32_t target;
	int idle; /* default enum mock_kvm_idle */
	struct mk_script *scripts;
	size_t nr_scripts, cap_scripts;
	struct mock_kvm_irq_event *irq_events;
	size_t nr_irq_events, cap_irq_events;
	struct mock_kvm_mmio_result *mmio;
	size_t nr_mmio, cap_mmio;

	struct mk_vm *vm; /* current or last VM */
	struct mk_vm **old_vms; /* destroyed VMs, kept until free (mappings may point in) */
	size_t nr_old_vms, cap_old_vms;
};

/* mock_kvm.c */
int mk_grow(void **arr, size_t *cap, size_t need, size_t elem);
#define MK_GROW(arr, capv, need) mk_grow((void **)&(arr), &(capv), (need), sizeof(*(arr)))
void mk_violation(struct mock_kvm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mk_get_cap(struct mock_kvm *m, long cap);
int mk_fd_alloc(struct mock_kvm *m, enum mock_kvm_fd_kind kind, struct mk_vm *vm,
		struct mk_vcpu *vcpu);
struct mk_fd *mk_fd_find(struct mock_kvm *m, int fd);
struct mk_map *mk_map_find_range(struct mock_kvm *m, uint64_t addr, uint64_t len);
int mk_eventfd_check(struct mock_kvm *m, int fd);

/* mock_kvm_vm.c */
int mk_system_ioctl(struct mock_kvm *m, unsigned long req, unsigned long arg);
int mk_vm_ioctl(struct mock_kvm *m, struct mk_vm *vm, unsigned long req, unsigned long arg);
int mk_device_ioctl(struct mock_kvm *m, struct mk_vm *vm, unsigned long req,
		    unsigned long arg);
void mk_vm_put(struct mock_kvm *m, struct mk_vm *vm);
void mk_vm_free(struct mk_vm *vm);
int mk_vm_first_run(struct mock_kvm *m, struct mk_vm *vm);
void *mk_gpa_ptr(struct mock_kvm *m, struct mk_vm *vm, uint64_t gpa, uint64_t len);
void mk_irq_record(struct mock_kvm *m, uint32_t raw, uint32_t type, uint32_t vcpu_idx,
		   uint32_t intid, int level, bool irqfd);
struct mk_ioeventfd *mk_ioeventfd_match(struct mk_vm *vm, uint64_t addr, uint32_t len,
					const uint8_t *data);
bool mk_slot_uses(struct mk_vm *vm, const void *addr, size_t len);
bool mk_vgic_check_base(struct mk_vm *vm, size_t nr_vcpus);

/* mock_kvm_vcpu.c */
int mk_vcpu_create(struct mock_kvm *m, struct mk_vm *vm, unsigned long id);
int mk_vcpu_ioctl(struct mock_kvm *m, struct mk_vcpu *vcpu, unsigned long req,
		  unsigned long arg);
void mk_vcpu_closed(struct mock_kvm *m, struct mk_vcpu *vcpu);
void mk_vcpu_free(struct mk_vcpu *vcpu);
void *mk_vcpu_mmap(struct mock_kvm *m, struct mk_vcpu *vcpu, size_t len, int flags, off_t off,
		   int *err);
void mk_vcpu_munmapped(struct mock_kvm *m, struct mk_vcpu *vcpu);
void mk_scripts_free(struct mock_kvm *m);

#endif
