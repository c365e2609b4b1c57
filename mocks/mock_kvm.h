/* Mock KVM: a model of the arm64 KVM ioctl ABI behind the sys seam (sys/sys.h). It keeps
 * VM state the way the kernel does, scripts what KVM_RUN returns, injects errors and
 * records calls so unit tests can drive and check the VMM without /dev/kvm. */
#ifndef MOCK_KVM_H
#define MOCK_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/aarch64/kvm_arm64.h"
#include "sys/sys.h"

/*
 * Overview
 * --------
 * mock_kvm_new() creates a fake kernel; mock_kvm_sys() gives the struct sys the VMM uses.
 * Every fd the mock hands out (/dev/kvm, VM, vCPU, device) is backed by a real open of
 * /dev/null, so mock fd numbers never collide with real fds or with another mock's fds.
 * eventfd() creates real eventfds; anonymous mmap() creates real mappings (guest RAM).
 *
 * Model (what is validated, mirroring Linux 6.1 arm64 unless marked "mock:"):
 *  system fd  KVM_GET_API_VERSION (arg 0) -> 12; KVM_CHECK_EXTENSION -> cap table
 *             (unknown caps 0); KVM_GET_VCPU_MMAP_SIZE -> MOCK_KVM_VCPU_MMAP_SIZE;
 *             KVM_CREATE_VM(type): type bits above 0xff -> EINVAL; IPA bits (type & 0xff) 0
 *             (= 40) or 32..KVM_CAP_ARM_VM_IPA_SIZE else EINVAL. mock: one live VM at a
 *             time (a second KVM_CREATE_VM while the first is alive -> EBUSY).
 *  VM fd      KVM_SET_USER_MEMORY_REGION: flags other than LOG_DIRTY_PAGES|READONLY,
 *             slot >= KVM_CAP_NR_MEMSLOTS or address space != 0, unaligned gpa/size/hva,
 *             gpa+size wrap, > 2^31-1 pages -> EINVAL; beyond the IPA size -> EFAULT;
 *             overlap -> EEXIST; size 0 deletes (missing slot -> EINVAL); changing an
 *             existing slot's hva/size/READONLY -> EINVAL, its gpa moves it, its dirty-log
 *             flag is updated. mock: hva range must lie inside one mapping made through
 *             this mock's mmap, else EFAULT + a violation (so guest memory is readable).
 *             KVM_CREATE_VCPU(id): id >= KVM_CAP_MAX_VCPU_ID or count >= KVM_CAP_MAX_VCPUS
 *             -> EINVAL; after vGIC init -> EBUSY; duplicate -> EEXIST.
 *             A64_KVM_ARM_PREFERRED_TARGET fills {target, features 0}.
 *             KVM_CREATE_DEVICE: only KVM_DEV_TYPE_ARM_VGIC_V3 (else ENODEV, also when
 *             KVM_CAP_IRQCHIP is 0); KVM_CREATE_DEVICE_TEST -> 0 without creating; second
 *             vGIC -> EEXIST; after any vCPU ran -> EBUSY.
 *             KVM_IRQ_LINE: arm64 layout (type<<24 | vcpu_idx<<16 | num). SPI/PPI without
 *             vGIC -> ENXIO, before CTRL_INIT -> EBUSY, intid out of range -> EINVAL;
 *             TYPE_CPU with a vGIC -> ENXIO. Levels and a history are recorded.
 *             KVM_IRQFD: unknown flags -> EINVAL; before vGIC init -> EAGAIN; fd not
 *             open -> EBADF, not an eventfd -> EINVAL; eventfd already used -> EBUSY;
 *             deassign of a missing irqfd -> 0 (as Linux).
 *             KVM_IOEVENTFD: unknown flags, len not 0/1/2/4/8, addr+len wrap, len 0 with
 *             DATAMATCH -> EINVAL; colliding registration -> EEXIST; deassign of a
 *             missing one -> ENOENT.
 *             Unknown VM ioctls -> EINVAL.
 *  vCPU fd    mmap(len <= MOCK_KVM_VCPU_MMAP_SIZE, off 0, MAP_SHARED) -> struct kvm_run owned
 *             by the mock (mock: private map / off != 0 / too long -> EINVAL). After the
 *             last munmap the page is made PROT_NONE so a VMM touching it faults.
 *             A64_KVM_ARM_VCPU_INIT: target != preferred -> EINVAL; feature bit >= 7 ->
 *             ENOENT; a known feature the host lacks (see caps below) -> EINVAL; a second
 *             init with other target/features -> EINVAL; init resets registers.
 *             Features tied to caps: PSCI_0_2 <- KVM_CAP_ARM_PSCI_0_2, EL1_32BIT(1) <-
 *             KVM_CAP_ARM_EL1_32BIT, PMU_V3(3) <- KVM_CAP_ARM_PMU_V3, SVE(4) <-
 *             KVM_CAP_ARM_SVE, PTRAUTH(5,6) <- KVM_CAP_ARM_PTRAUTH_*; POWER_OFF always.
 *             KVM_GET/SET_ONE_REG before init -> ENOEXEC; NULL addr -> EFAULT; id not in
 *             the arm64 space -> EINVAL; core regs X0..X30, SP, PC, PSTATE, SP_EL1,
 *             ELR_EL1 (64-bit only, other sizes -> EINVAL; PSTATE mode must be EL0t, EL1t,
 *             EL1h or AArch32 USR, or an AArch32 EL1 mode with the EL1_32BIT feature, else
 *             EINVAL); MPIDR_EL1 (reset value = KVM's mapping of the vCPU id); the PSCI
 *             firmware version register (1.1 with PSCI_0_2, else 0.1); others -> ENOENT.
 *             KVM_RUN (arg must be 0): before init -> ENOEXEC; first run of a VM with a
 *             vGIC: redist unset -> ENXIO, dist unset -> ENXIO, dist/redist overlap ->
 *             EINVAL, not initialised -> EBUSY (exactly the kernel's order); a pending
 *             MMIO read completes (data captured); immediate_exit -> EINTR without
 *             consuming the script; then the next scripted step (see below).
 *             Any other vCPU ioctl while that vCPU is inside KVM_RUN -> EBUSY + violation
 *             (the kernel would block on the vCPU mutex). Unknown ioctls -> EINVAL.
 *  device fd  KVM_SET/GET/HAS_DEVICE_ATTR on the vGIC: GRP_ADDR DIST/REDIST (u64 at
 *             attr.addr; NULL -> EFAULT; not 64 KiB aligned -> EINVAL; beyond IPA ->
 *             E2BIG; set twice -> EEXIST; other types -> ENXIO), GRP_NR_IRQS (u32; < 64,
 *             > 1023, not a multiple of 32 -> EINVAL; after init or set twice -> EBUSY),
 *             GRP_CTRL/CTRL_INIT (idempotent; does NOT need addresses: Linux checks them
 *             at the first KVM_RUN; default nr_irqs 256). Other groups -> ENXIO; other
 *             ioctls -> ENOTTY.
 *  other fds  read/write on KVM fds -> EINVAL; eventfds and test-registered files pass
 *             through to the real syscalls. munmap must match a tracked mapping exactly
 *             (else EINVAL); unmapping RAM still in a memslot is a violation.
 *
 * "Violations" are ABI misuses the kernel would tolerate or that would hang/crash
 * there (closing a vCPU fd during KVM_RUN, unmapping RAM still in a memslot, ...). They
 * are printed to stderr (unless quiet) and counted; tests assert mock_kvm_violations()==0.
 *
 * Threading: every entry point is thread-safe (one mutex). KVM_RUN may block (see
 * enum mock_kvm_idle); a blocked KVM_RUN polls run->immediate_exit every 2 ms, so a VMM
 * that sets immediate_exit and signals the thread is stopped without any signal
 * reaching the mock. mock_kvm_free() must not race with any other call.
 */

struct mock_kvm;

/* arm64 constants of the model */
#define MOCK_KVM_PAGE_SIZE 4096ULL
#define MOCK_KVM_VCPU_MMAP_SIZE (2 * MOCK_KVM_PAGE_SIZE) /* kvm_run + coalesced MMIO page */
#define MOCK_KVM_TARGET_GENERIC_V8 5U
#define MOCK_KVM_DEFAULT_IPA_BITS 40U
#define MOCK_KVM_DEFAULT_MAX_VCPUS 8
#define MOCK_KVM_DEFAULT_NR_IRQS 256U
#define MOCK_KVM_VGIC_DIST_SIZE 0x10000ULL
#define MOCK_KVM_VGIC_REDIST_SIZE 0x20000ULL /* per vCPU: RD + SGI frames */
#define MOCK_KVM_PSCI_VERSION_0_1 0x1U
#define MOCK_KVM_PSCI_VERSION_1_1 0x10001U

/* ONE_REG ids for system registers: op0, op1, CRn, CRm, op2 */
#define MOCK_KVM_REG_ARM64_SYSREG(op0, op1, crn, crm, op2)                                  \
	(0x6000000000000000ULL | 0x0030000000000000ULL | (0x0013ULL << 16) |                \
	 ((uint64_t)(op0) << 14) | ((uint64_t)(op1) << 11) | ((uint64_t)(crn) << 7) |      \
	 ((uint64_t)(crm) << 3) | (uint64_t)(op2))
#define MOCK_KVM_REG_MPIDR_EL1 MOCK_KVM_REG_ARM64_SYSREG(3, 0, 0, 0, 5)
#define MOCK_KVM_REG_SP A64_CORE_REG(31 * 8)
#define MOCK_KVM_REG_PSCI_VERSION \
	(0x6000000000000000ULL | 0x0030000000000000ULL | (0x0014ULL << 16))

/* KVM's default MPIDR_EL1 for a vCPU id: bit 31 | Aff2 | Aff1 | Aff0 (16 per cluster) */
static inline uint64_t mock_kvm_default_mpidr(unsigned int vcpu_id)
{
	return (1ULL << 31) | ((uint64_t)(vcpu_id & 0x0f)) |
	       ((uint64_t)((vcpu_id >> 4) & 0xff) << 8) | ((uint64_t)((vcpu_id >> 12) & 0xff) << 16);
}

/* Pseudo request numbers naming the non-ioctl ops, for error injection and the log. */
#define MOCK_KVM_OP_OPEN (~0UL)
#define MOCK_KVM_OP_CLOSE (~0UL - 1)
#define MOCK_KVM_OP_MMAP (~0UL - 2)
#define MOCK_KVM_OP_MUNMAP (~0UL - 3)
#define MOCK_KVM_OP_EVENTFD (~0UL - 4)
#define MOCK_KVM_OP_READ (~0UL - 5)
#define MOCK_KVM_OP_WRITE (~0UL - 6)
#define MOCK_KVM_OP_PREAD (~0UL - 7)
#define MOCK_KVM_OP_PWRITE (~0UL - 8)

enum mock_kvm_fd_kind {
	MOCK_KVM_FD_NONE = 0, /* not a mock fd (call failed before resolving it) */
	MOCK_KVM_FD_SYSTEM,   /* /dev/kvm */
	MOCK_KVM_FD_VM,
	MOCK_KVM_FD_VCPU,
	MOCK_KVM_FD_DEVICE,
	MOCK_KVM_FD_EVENTFD, /* real eventfd made through the mock */
	MOCK_KVM_FD_FILE,    /* real file: registered path or adopted fd */
};

/* ---- lifecycle and configuration ---- */

/* NULL on allocation failure. Caps start at the defaults listed in mock_kvm.c. */
struct mock_kvm *mock_kvm_new(void);
/* Closes every fd still open, unmaps every mapping, frees everything. */
void mock_kvm_free(struct mock_kvm *m);
/* The seam to hand to the VMM; valid until mock_kvm_free(). */
struct sys mock_kvm_sys(struct mock_kvm *m);

/* KVM_CHECK_EXTENSION value for cap (also drives the model: max vCPUs, IPA size,
 * memslots, vCPU features, KVM_CAP_IRQCHIP/IRQFD/IOEVENTFD = 0 disable those ioctls
 * with EINVAL / ENODEV). Returns 0 or -ENOMEM. */
int mock_kvm_set_cap(struct mock_kvm *m, long cap, int value);
int mock_kvm_get_cap(struct mock_kvm *m, long cap);
/* Sets KVM_CAP_NR_VCPUS, KVM_CAP_MAX_VCPUS and KVM_CAP_MAX_VCPU_ID together. */
int mock_kvm_set_max_vcpus(struct mock_kvm *m, int n);
/* Target reported by A64_KVM_ARM_PREFERRED_TARGET and required by VCPU_INIT. */
void mock_kvm_set_preferred_target(struct mock_kvm *m, uint32_t target);
/* Let open(path) reach the real file (e.g. a disk image). 0 or -ENOMEM. */
int mock_kvm_add_path(struct mock_kvm *m, const char *path);
/* Track a real fd the test owns as a FILE fd: the VMM's read/write/pread/pwrite/mmap/
 * ioctl/close on it reach the real syscalls (close closes it). 0, -EEXIST or -ENOMEM. */
int mock_kvm_adopt_fd(struct mock_kvm *m, int fd);
/* Forward opens of unknown paths, ops on fds and munmaps of addresses the mock does
 * not know to another seam (e.g. mock VFIO). NULL removes it. Default: ENOENT/EBADF/EINVAL. */
void mock_kvm_set_fallback(struct mock_kvm *m, const struct sys *fallback);
/* Do not print violations to stderr (they are still recorded). */
void mock_kvm_set_quiet(struct mock_kvm *m, bool quiet);

/* ---- scripted KVM_RUN exits (per vCPU id; may be queued before the vCPU exists) ---- */

/*
 * What KVM_RUN does when a vCPU's script is empty:
 *  BLOCK    (default) wait, as a vCPU in WFI or powered off would, until a step is
 *           queued (then run it), immediate_exit is seen, mock_kvm_kick(), or the vCPU
 *           fd is closed (-EBADF + violation). Interrupted waits return -EINTR with
 *           exit_reason KVM_EXIT_INTR.
 *  EINTR    return -EINTR (exit_reason KVM_EXIT_INTR) at once.
 *  SHUTDOWN exit with KVM_EXIT_SYSTEM_EVENT / KVM_SYSTEM_EVENT_SHUTDOWN (PSCI SYSTEM_OFF).
 */
enum mock_kvm_idle {
	MOCK_KVM_IDLE_BLOCK = 0,
	MOCK_KVM_IDLE_EINTR,
	MOCK_KVM_IDLE_SHUTDOWN,
};
/* vcpu_id < 0 sets the default for every vCPU without its own setting. 0 or -ENOMEM. */
int mock_kvm_set_idle(struct mock_kvm *m, int vcpu_id, enum mock_kvm_idle idle);

/* Called from inside KVM_RUN (mock lock not held) by a CALL step. */
typedef void (*mock_kvm_step_fn)(struct mock_kvm *m, unsigned int vcpu_id, void *arg);

/*
 * Append one step to a vCPU's script; each exit step is one KVM_RUN return. All return
 * 0, -EINVAL (bad len/payload) or -ENOMEM, and wake a vCPU blocked on an empty script.
 *  mmio_read     exit KVM_EXIT_MMIO, is_write 0, len 1/2/4/8, data zeroed. The VMM fills
 *                run->mmio.data; the mock captures it at the next KVM_RUN on that vCPU
 *                (even one that returns EINTR for immediate_exit) or when the fd closes.
 *  mmio_write    exit KVM_EXIT_MMIO, is_write 1, data = value little-endian. If a
 *                registered ioeventfd matches, the mock signals it instead of exiting and
 *                goes on with the next step (as KVM does).
 *  system_event  exit KVM_EXIT_SYSTEM_EVENT with that type (KVM_SYSTEM_EVENT_SHUTDOWN
 *                for PSCI SYSTEM_OFF, _RESET for SYSTEM_RESET, _CRASH), ndata 0.
 *  errno         KVM_RUN returns err (negative); -EINTR also sets KVM_EXIT_INTR.
 *  exit          exit_reason = reason, payload (<= 256 bytes) copied to the exit union
 *                (the rest zeroed). exit_reason() is exit() with no payload.
 *  block         wait for mock_kvm_release() (counted, not lost if early) then continue
 *                with the next step in the same KVM_RUN; interrupted like idle BLOCK
 *                (the block step stays queued).
 *  guest_write   write len bytes at gpa through the memslots as the guest would, then
 *                continue (no exit). A write outside RAM is recorded as a violation.
 *  call          call fn(m, vcpu_id, arg) without the mock lock, then continue (or return
 *                -EINTR if immediate_exit got set / a kick arrived meanwhile).
 */
int mock_kvm_script_mmio_read(struct mock_kvm *m, unsigned int vcpu_id, uint64_t addr,
			      uint32_t len);
int mock_kvm_script_mmio_write(struct mock_kvm *m, unsigned int vcpu_id, uint64_t addr,
			       uint64_t value, uint32_t len);
int mock_kvm_script_system_event(struct mock_kvm *m, unsigned int vcpu_id, uint32_t type);
int mock_kvm_script_errno(struct mock_kvm *m, unsigned int vcpu_id, int err);
int mock_kvm_script_exit(struct mock_kvm *m, unsigned int vcpu_id, uint32_t reason,
			 const void *payload, size_t len);
int mock_kvm_script_exit_reason(struct mock_kvm *m, unsigned int vcpu_id, uint32_t reason);
int mock_kvm_script_block(struct mock_kvm *m, unsigned int vcpu_id);
int mock_kvm_script_guest_write(struct mock_kvm *m, unsigned int vcpu_id, uint64_t gpa,
				const void *buf, size_t len);
int mock_kvm_script_call(struct mock_kvm *m, unsigned int vcpu_id, mock_kvm_step_fn fn,
			 void *arg);
/* Steps not yet consumed. */
size_t mock_kvm_script_pending(struct mock_kvm *m, unsigned int vcpu_id);

/* Interrupt a KVM_RUN of that vCPU that is in progress (as a signal would: -EINTR,
 * KVM_EXIT_INTR). A kick while the vCPU is outside KVM_RUN is lost, like a signal
 * without immediate_exit. Returns 1 if a KVM_RUN was interrupted, else 0. */
int mock_kvm_kick(struct mock_kvm *m, unsigned int vcpu_id);
/* Let one block step of that vCPU pass (now or when it is reached). */
void mock_kvm_release(struct mock_kvm *m, unsigned int vcpu_id);
/* Wait until that vCPU is waiting inside KVM_RUN (idle BLOCK or a block step).
 * 0 or -ETIMEDOUT. */
int mock_kvm_wait_blocked(struct mock_kvm *m, unsigned int vcpu_id, unsigned int timeout_ms);

/* ---- state inspection (snapshots copied under the lock) ---- */

/* Mock fds still open (all kinds), or of one kind. */
int mock_kvm_open_fds(struct mock_kvm *m);
int mock_kvm_open_fds_kind(struct mock_kvm *m, enum mock_kvm_fd_kind kind);
/* Mappings made through the mock (anonymous, file, vCPU) not yet unmapped. */
int mock_kvm_live_mappings(struct mock_kvm *m);

struct mock_kvm_vm_info {
	bool created;  /* a VM was created (it may be destroyed since) */
	bool alive;    /* some VM/vCPU/device fd still open */
	unsigned long type;
	unsigned int ipa_bits;
};
/* The current (or last) VM. Returns 0, or -ENOENT if none was ever created. */
int mock_kvm_vm(struct mock_kvm *m, struct mock_kvm_vm_info *out);

/* Memslots of the current/last VM. nr_slots returns the count (0 without VM). */
int mock_kvm_nr_slots(struct mock_kvm *m);
int mock_kvm_slot(struct mock_kvm *m, uint32_t slot, struct kvm_userspace_memory_region *out);
/* Guest physical memory through the memslots; the range must lie in one slot.
 * 0 or -EFAULT. */
int mock_kvm_guest_read(struct mock_kvm *m, uint64_t gpa, void *buf, size_t len);
int mock_kvm_guest_write(struct mock_kvm *m, uint64_t gpa, const void *buf, size_t len);

struct mock_kvm_vcpu_info {
	unsigned int id;
	unsigned int index; /* creation order (the vcpu_idx of KVM_IRQ_LINE) */
	int fd;             /* -1 once closed */
	bool initialised;
	uint32_t target;
	uint32_t features; /* features[0] bits */
	uint64_t x[31];
	uint64_t sp, pc, pstate, sp_el1, elr_el1;
	uint64_t mpidr;
	uint32_t psci_version;
	bool ran;          /* first KVM_RUN succeeded */
	bool in_run;
	bool blocked;
	bool mapped;       /* kvm_run currently mmapped */
	unsigned int runs; /* KVM_RUN calls that reached the script stage */
	unsigned int exits; /* exits delivered (returns 0) */
};
int mock_kvm_nr_vcpus(struct mock_kvm *m);
/* 0 or -ENOENT (no such vCPU in the current/last VM). */
int mock_kvm_vcpu(struct mock_kvm *m, unsigned int vcpu_id, struct mock_kvm_vcpu_info *out);

struct mock_kvm_vgic_info {
	bool created;
	int fd; /* -1 once closed */
	bool dist_set, redist_set;
	uint64_t dist, redist;
	bool nr_irqs_set;
	uint32_t nr_irqs; /* total INTIDs incl. 32 private; 0 until set or init */
	bool initialised;  /* CTRL_INIT done */
	bool ready;        /* resources mapped at the first KVM_RUN */
};
/* 0 or -ENOENT (no VM). */
int mock_kvm_vgic(struct mock_kvm *m, struct mock_kvm_vgic_info *out);

/* Current level of an SPI INTID (32..1023): 0/1, or -EINVAL. */
int mock_kvm_irq_level(struct mock_kvm *m, uint32_t intid);
/* Current level of a PPI (16..31) of the vCPU with creation index vcpu_idx. */
int mock_kvm_ppi_level(struct mock_kvm *m, unsigned int vcpu_idx, uint32_t intid);

struct mock_kvm_irq_event {
	uint32_t raw;      /* kvm_irq_level.irq as passed (0 for irqfd) */
	uint32_t type;     /* A64_KVM_ARM_IRQ_TYPE_* (0 = CPU line) */
	uint32_t vcpu_idx;
	uint32_t intid;    /* for CPU lines: 0 IRQ, 1 FIQ */
	int level;
	bool from_irqfd;
};
size_t mock_kvm_nr_irq_events(struct mock_kvm *m);
int mock_kvm_irq_event(struct mock_kvm *m, size_t i, struct mock_kvm_irq_event *out);
/* Events for an INTID with that level (level < 0: any). */
unsigned int mock_kvm_count_irq(struct mock_kvm *m, uint32_t intid, int level);

struct mock_kvm_irqfd {
	int fd;
	int resamplefd; /* -1 without KVM_IRQFD_FLAG_RESAMPLE */
	uint32_t gsi;   /* SPI index: INTID = gsi + 32 */
	uint32_t flags;
};
size_t mock_kvm_nr_irqfds(struct mock_kvm *m);
int mock_kvm_irqfd(struct mock_kvm *m, size_t i, struct mock_kvm_irqfd *out);
int mock_kvm_irqfd_by_gsi(struct mock_kvm *m, uint32_t gsi, struct mock_kvm_irqfd *out);
/* Act as KVM's irqfd wakeup: read every registered irqfd eventfd that is signalled and
 * inject SPI gsi+32 (a 1-then-0 pulse; held at 1 for resample irqfds). Signals for a gsi
 * beyond nr_irqs are dropped. Returns the number of injections. */
int mock_kvm_irqfd_poll(struct mock_kvm *m);
/* As the guest's EOI of a resample irqfd's level IRQ would: lower the line and signal
 * the resamplefd. 0, or -ENOENT if no resample irqfd has that gsi. */
int mock_kvm_irqfd_resample(struct mock_kvm *m, uint32_t gsi);

struct mock_kvm_ioeventfd {
	uint64_t addr;
	uint32_t len;
	int fd;
	uint32_t flags; /* DATAMATCH / PIO */
	uint64_t datamatch;
	unsigned int hits; /* scripted guest writes that signalled it */
};
size_t mock_kvm_nr_ioeventfds(struct mock_kvm *m);
int mock_kvm_ioeventfd(struct mock_kvm *m, size_t i, struct mock_kvm_ioeventfd *out);

struct mock_kvm_mmio_result {
	unsigned int vcpu_id;
	uint64_t addr;
	uint32_t len;
	uint8_t data[8];  /* run->mmio.data as the VMM left it */
	uint64_t value;   /* data[0..len) as a little-endian number */
	bool at_close;    /* captured when the vCPU fd closed, not at a re-entry */
};
/* Completed MMIO reads of one vCPU, oldest first. */
size_t mock_kvm_nr_mmio_reads(struct mock_kvm *m, unsigned int vcpu_id);
int mock_kvm_mmio_read_result(struct mock_kvm *m, unsigned int vcpu_id, size_t n,
			      struct mock_kvm_mmio_result *out);

/* ---- error injection ----
 * A matching call fails with err before having any effect (nothing consumed or changed,
 * the call is logged with injected = true). req is an ioctl number or MOCK_KVM_OP_*.
 * fail_nth: n = 1 is the next matching call. fail_always: until mock_kvm_fail_clear().
 * Return 0 or -ENOMEM/-EINVAL. */
int mock_kvm_fail_next(struct mock_kvm *m, unsigned long req, int err);
int mock_kvm_fail_nth(struct mock_kvm *m, unsigned long req, unsigned int n, int err);
int mock_kvm_fail_always(struct mock_kvm *m, unsigned long req, int err);
void mock_kvm_fail_clear(struct mock_kvm *m);

/* ---- call log (every op on a mock-owned fd or path, in completion order) ---- */
struct mock_kvm_call {
	unsigned long req; /* ioctl request or MOCK_KVM_OP_* */
	enum mock_kvm_fd_kind kind;
	int fd;
	unsigned long arg; /* integer ioctl arg (pointer value for pointer args) */
	long result;
	int vcpu_id; /* for vCPU fds, else -1 */
	bool injected;
};
size_t mock_kvm_nr_calls(struct mock_kvm *m);
int mock_kvm_call_at(struct mock_kvm *m, size_t i, struct mock_kvm_call *out);
unsigned int mock_kvm_count_calls(struct mock_kvm *m, unsigned long req);
unsigned int mock_kvm_count_calls_ret(struct mock_kvm *m, unsigned long req, long result);
void mock_kvm_clear_calls(struct mock_kvm *m);

/* ---- ABI misuse ---- */
unsigned int mock_kvm_violations(struct mock_kvm *m);
/* Message of violation i (owned by the mock, valid until free), or NULL. */
const char *mock_kvm_violation(struct mock_kvm *m, unsigned int i);

#endif
