/* Mock KVM vCPUs: creation, VCPU_INIT, ONE_REG, the mmapped kvm_run, and KVM_RUN driven
 * by per-vCPU scripts (exits, errors, blocking, guest actions) with kick/release. */
#include "mock_kvm_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MK_FEAT_POWER_OFF 0
#define MK_FEAT_EL1_32BIT 1
#define MK_FEAT_PSCI_0_2 2
#define MK_FEAT_PMU_V3 3
#define MK_FEAT_SVE 4
#define MK_FEAT_PTRAUTH_ADDRESS 5
#define MK_FEAT_PTRAUTH_GENERIC 6
#define MK_VCPU_MAX_FEATURES 7

#define MK_REG_ARM64 0x6000000000000000ULL
#define MK_REG_SIZE_MASK 0x00f0000000000000ULL
#define MK_REG_SIZE_SHIFT 52
#define MK_REG_COPROC_MASK 0x000000000fff0000ULL
#define MK_REG_CORE (0x0010ULL << 16)
#define MK_REG_SYSREG (0x0013ULL << 16)
#define MK_REG_FW (0x0014ULL << 16)

#define MK_CORE_PSTATE 33
#define MK_PSTATE_RESET 0x3c5ULL /* EL1h, DAIF masked */
#define MK_PSCI_0_2 0x2U
#define MK_PSCI_1_0 0x10000U

#define MK_RUN_UNION_SIZE 256

static struct mk_vcpu *mk_vcpu_by_id(struct mk_vm *vm, unsigned int id)
{
	for (size_t i = 0; vm && i < vm->nr_vcpus; i++)
		if (vm->vcpus[i]->id == id)
			return vm->vcpus[i];
	return NULL;
}

/* ---- the kvm_run page: PROT_NONE while the VMM has it unmapped ---- */

static void mk_run_open(struct mk_vcpu *v)
{
	if (v->run_locked)
		mprotect(v->run, MOCK_KVM_VCPU_MMAP_SIZE, PROT_READ | PROT_WRITE);
}

static void mk_run_close(struct mk_vcpu *v)
{
	if (v->run_locked)
		mprotect(v->run, MOCK_KVM_VCPU_MMAP_SIZE, PROT_NONE);
}

static bool mk_immediate_exit(struct mk_vcpu *v)
{
	if (v->run_locked)
		return false; /* nobody can have set it */
	return __atomic_load_n(&v->run->immediate_exit, __ATOMIC_ACQUIRE) != 0;
}

static void mk_set_exit_reason(struct mk_vcpu *v, uint32_t reason)
{
	mk_run_open(v);
	v->run->exit_reason = reason;
	mk_run_close(v);
}

void *mk_vcpu_mmap(struct mock_kvm *m, struct mk_vcpu *v, size_t len, int flags, off_t off,
		   int *err)
{
	int type = flags & MAP_TYPE;

	if (len > MOCK_KVM_VCPU_MMAP_SIZE || off != 0) {
		*err = -EINVAL;
		return NULL;
	}
	if (type != MAP_SHARED && type != MAP_SHARED_VALIDATE) {
		mk_violation(m, "vCPU %u: kvm_run mapped without MAP_SHARED", v->id);
		*err = -EINVAL;
		return NULL;
	}
	if (v->run_locked) {
		mprotect(v->run, MOCK_KVM_VCPU_MMAP_SIZE, PROT_READ | PROT_WRITE);
		v->run_locked = false;
	}
	v->map_count++;
	return v->run;
}

void mk_vcpu_munmapped(struct mock_kvm *m, struct mk_vcpu *v)
{
	(void)m;
	if (v->map_count && --v->map_count == 0) {
		mprotect(v->run, MOCK_KVM_VCPU_MMAP_SIZE, PROT_NONE);
		v->run_locked = true;
	}
}

/* ---- creation and teardown ---- */

int mk_vcpu_create(struct mock_kvm *m, struct mk_vm *vm, unsigned long id)
{
	int max = mk_get_cap(m, KVM_CAP_MAX_VCPUS);
	unsigned long max_id = (unsigned long)mk_get_cap(m, KVM_CAP_MAX_VCPU_ID);

	if (!max_id)
		max_id = (unsigned long)max;
	if (id >= max_id)
		return -EINVAL;
	if (max < 0 || vm->nr_vcpus >= (size_t)max)
		return -EINVAL;
	if (vm->vgic.initialised)
		return -EBUSY; /* kvm_arch_vcpu_precreate() */
	if (vm->vgic.created && vm->vgic.redist_set && !mk_vgic_check_base(vm, vm->nr_vcpus + 1))
		return -EINVAL; /* vgic_register_redist_iodev() */
	if (mk_vcpu_by_id(vm, (unsigned int)id))
		return -EEXIST;
	if (MK_GROW(vm->vcpus, vm->cap_vcpus, vm->nr_vcpus + 1))
		return -ENOMEM;
	struct mk_vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->run = mmap(NULL, MOCK_KVM_VCPU_MMAP_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->run == MAP_FAILED) {
		free(v);
		return -ENOMEM;
	}
	v->run_locked = true;
	int fd = mk_fd_alloc(m, MOCK_KVM_FD_VCPU, vm, v);
	if (fd < 0) {
		munmap(v->run, MOCK_KVM_VCPU_MMAP_SIZE);
		free(v);
		return fd;
	}
	v->vm = vm;
	v->id = (unsigned int)id;
	v->idx = (unsigned int)vm->nr_vcpus;
	v->fd = fd;
	v->mpidr = mock_kvm_default_mpidr(v->id);
	vm->vcpus[vm->nr_vcpus++] = v;
	vm->refs++;
	return fd;
}

void mk_vcpu_free(struct mk_vcpu *v)
{
	munmap(v->run, MOCK_KVM_VCPU_MMAP_SIZE);
	free(v);
}

static void mk_mmio_capture(struct mock_kvm *m, struct mk_vcpu *v, bool at_close)
{
	v->mmio_pending = false;
	if (MK_GROW(m->mmio, m->cap_mmio, m->nr_mmio + 1))
		return;
	struct mock_kvm_mmio_result *r = &m->mmio[m->nr_mmio++];
	r->vcpu_id = v->id;
	r->addr = v->mmio_addr;
	r->len = v->mmio_len;
	mk_run_open(v);
	memcpy(r->data, v->run->mmio.data, sizeof(r->data));
	mk_run_close(v);
	r->value = 0;
	for (uint32_t i = 0; i < r->len && i < 8; i++)
		r->value |= (uint64_t)r->data[i] << (8 * i);
	r->at_close = at_close;
}

void mk_vcpu_closed(struct mock_kvm *m, struct mk_vcpu *v)
{
	if (v->mmio_pending)
		mk_mmio_capture(m, v, true);
	if (v->in_run)
		mk_violation(m, "vCPU %u fd closed while KVM_RUN is in progress", v->id);
	v->fd = -1;
	pthread_cond_broadcast(&m->cond);
}

/* ---- KVM_ARM_VCPU_INIT ---- */

static uint32_t mk_supported_features(struct mock_kvm *m)
{
	uint32_t f = 1U << MK_FEAT_POWER_OFF;

	if (mk_get_cap(m, KVM_CAP_ARM_PSCI_0_2))
		f |= 1U << MK_FEAT_PSCI_0_2;
	if (mk_get_cap(m, KVM_CAP_ARM_EL1_32BIT))
		f |= 1U << MK_FEAT_EL1_32BIT;
	if (mk_get_cap(m, KVM_CAP_ARM_PMU_V3))
		f |= 1U << MK_FEAT_PMU_V3;
	if (mk_get_cap(m, KVM_CAP_ARM_SVE))
		f |= 1U << MK_FEAT_SVE;
	if (mk_get_cap(m, KVM_CAP_ARM_PTRAUTH_ADDRESS))
		f |= 1U << MK_FEAT_PTRAUTH_ADDRESS;
	if (mk_get_cap(m, KVM_CAP_ARM_PTRAUTH_GENERIC))
		f |= 1U << MK_FEAT_PTRAUTH_GENERIC;
	return f;
}

static int mk_vcpu_init(struct mock_kvm *m, struct mk_vcpu *v, const struct a64_kvm_vcpu_init *init)
{
	if (!init)
		return -EFAULT;
	if (init->target != m->target)
		return -EINVAL;
	if (v->initialised && v->target != init->target)
		return -EINVAL;
	for (unsigned int i = 0; i < 32 * 7; i++) {
		bool set = (init->features[i / 32] >> (i % 32)) & 1;
		if (set && i >= MK_VCPU_MAX_FEATURES)
			return -ENOENT;
		if (v->initialised && i < MK_VCPU_MAX_FEATURES && ((v->features >> i) & 1) != set)
			return -EINVAL;
	}
	uint32_t f = init->features[0];
	if (f & ~mk_supported_features(m))
		return -EINVAL;
	if (((f >> MK_FEAT_PTRAUTH_ADDRESS) & 1) != ((f >> MK_FEAT_PTRAUTH_GENERIC) & 1))
		return -EINVAL;

	v->initialised = true;
	v->target = init->target;
	v->features = f;
	memset(v->core, 0, sizeof(v->core));
	v->core[MK_CORE_PSTATE] = MK_PSTATE_RESET;
	v->mpidr = mock_kvm_default_mpidr(v->id);
	v->psci_version = (f & (1U << MK_FEAT_PSCI_0_2)) ? MOCK_KVM_PSCI_VERSION_1_1 :
							    MOCK_KVM_PSCI_VERSION_0_1;
	return 0;
}

/* ---- ONE_REG ---- */

static int mk_pstate_check(const struct mk_vcpu *v, uint64_t val)
{
	bool el1_32 = (v->features >> MK_FEAT_EL1_32BIT) & 1;

	switch (val & 0x1f) {
	case 0x10: /* AArch32 USR: host supports 32-bit EL0 */
		return 0;
	case 0x11: /* FIQ, IRQ, SVC, ABT, UND, SYS */
	case 0x12:
	case 0x13:
	case 0x17:
	case 0x1b:
	case 0x1f:
		return el1_32 ? 0 : -EINVAL;
	case 0x0: /* EL0t, EL1t, EL1h */
	case 0x4:
	case 0x5:
		return el1_32 ? -EINVAL : 0;
	default:
		return -EINVAL;
	}
}

static int mk_one_reg(struct mk_vcpu *v, unsigned long req, const struct kvm_one_reg *reg)
{
	bool set = req == KVM_SET_ONE_REG;
	uint64_t id, *uaddr, *slot;
	uint64_t size;

	if (!v->initialised)
		return -ENOEXEC;
	if (!reg || !reg->addr)
		return -EFAULT;
	id = reg->id;
	uaddr = (uint64_t *)(uintptr_t)reg->addr;
	if (((id & ~MK_REG_SIZE_MASK) >> 32) != (MK_REG_ARM64 >> 32))
		return -EINVAL;
	size = 1ULL << ((id & MK_REG_SIZE_MASK) >> MK_REG_SIZE_SHIFT);

	switch (id & MK_REG_COPROC_MASK) {
	case MK_REG_CORE: {
		uint64_t off = id & ~(MK_REG_ARM64 | MK_REG_SIZE_MASK | MK_REG_COPROC_MASK);
		if (off >= MK_NR_CORE_REGS * 2)
			return -ENOENT; /* spsr[]/fp_regs: not modelled */
		if ((off & 1) || size != 8)
			return -EINVAL;
		slot = &v->core[off / 2];
		if (!set) {
			*uaddr = *slot;
			return 0;
		}
		if (off / 2 == MK_CORE_PSTATE && mk_pstate_check(v, *uaddr))
			return -EINVAL;
		*slot = *uaddr;
		return 0;
	}
	case MK_REG_SYSREG:
		if (size != 8 || id != MOCK_KVM_REG_MPIDR_EL1)
			return -ENOENT;
		if (set)
			v->mpidr = *uaddr;
		else
			*uaddr = v->mpidr;
		return 0;
	case MK_REG_FW:
		if (id != MOCK_KVM_REG_PSCI_VERSION)
			return -ENOENT;
		if (!set) {
			*uaddr = v->psci_version;
			return 0;
		}
		if ((v->features >> MK_FEAT_PSCI_0_2) & 1) {
			if (*uaddr != MK_PSCI_0_2 && *uaddr != MK_PSCI_1_0 &&
			    *uaddr != MOCK_KVM_PSCI_VERSION_1_1)
				return -EINVAL;
		} else if (*uaddr != MOCK_KVM_PSCI_VERSION_0_1) {
			return -EINVAL;
		}
		v->psci_version = (uint32_t)*uaddr;
		return 0;
	default:
		return -ENOENT;
	}
}

/* ---- scripts ---- */

static struct mk_script *mk_script_get(struct mock_kvm *m, unsigned int id, bool create)
{
	for (size_t i = 0; i < m->nr_scripts; i++)
		if (m->scripts[i].vcpu_id == id)
			return &m->scripts[i];
	if (!create || MK_GROW(m->scripts, m->cap_scripts, m->nr_scripts + 1))
		return NULL;
	struct mk_script *s = &m->scripts[m->nr_scripts++];
	memset(s, 0, sizeof(*s));
	s->vcpu_id = id;
	s->idle = -1;
	return s;
}

static struct mk_step *mk_script_head(struct mock_kvm *m, unsigned int id)
{
	struct mk_script *s = mk_script_get(m, id, false);
	return s && s->head < s->n ? &s->steps[s->head] : NULL;
}

static void mk_script_pop(struct mock_kvm *m, unsigned int id)
{
	struct mk_script *s = mk_script_get(m, id, false);

	free(s->steps[s->head].buf);
	s->steps[s->head].buf = NULL;
	if (++s->head == s->n)
		s->head = s->n = 0;
}

void mk_scripts_free(struct mock_kvm *m)
{
	for (size_t i = 0; i < m->nr_scripts; i++) {
		struct mk_script *s = &m->scripts[i];
		for (size_t j = s->head; j < s->n; j++)
			free(s->steps[j].buf);
		free(s->steps);
	}
	free(m->scripts);
	m->scripts = NULL;
	m->nr_scripts = 0;
}

/* Takes ownership of st->buf (freed on failure). */
static int mk_script_push(struct mock_kvm *m, unsigned int id, struct mk_step *st)
{
	int r = -ENOMEM;

	pthread_mutex_lock(&m->lock);
	struct mk_script *s = mk_script_get(m, id, true);
	if (s && !MK_GROW(s->steps, s->cap, s->n + 1)) {
		s->steps[s->n++] = *st;
		r = 0;
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->lock);
	if (r)
		free(st->buf);
	return r;
}

static bool mk_len_ok(uint32_t len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

int mock_kvm_script_mmio_read(struct mock_kvm *m, unsigned int vcpu_id, uint64_t addr,
			      uint32_t len)
{
	struct mk_step st = { .kind = MK_STEP_MMIO_READ, .addr = addr, .len = len };

	return mk_len_ok(len) ? mk_script_push(m, vcpu_id, &st) : -EINVAL;
}

int mock_kvm_script_mmio_write(struct mock_kvm *m, unsigned int vcpu_id, uint64_t addr,
			       uint64_t value, uint32_t len)
{
	struct mk_step st = { .kind = MK_STEP_MMIO_WRITE, .addr = addr, .len = len };

	if (!mk_len_ok(len))
		return -EINVAL;
	for (uint32_t i = 0; i < len; i++)
		st.data[i] = (uint8_t)(value >> (8 * i));
	return mk_script_push(m, vcpu_id, &st);
}

int mock_kvm_script_system_event(struct mock_kvm *m, unsigned int vcpu_id, uint32_t type)
{
	struct mk_step st = { .kind = MK_STEP_SYSTEM_EVENT, .code = type };

	return mk_script_push(m, vcpu_id, &st);
}

int mock_kvm_script_errno(struct mock_kvm *m, unsigned int vcpu_id, int err)
{
	struct mk_step st = { .kind = MK_STEP_ERRNO, .err = err };

	return err < 0 ? mk_script_push(m, vcpu_id, &st) : -EINVAL;
}

int mock_kvm_script_exit(struct mock_kvm *m, unsigned int vcpu_id, uint32_t reason,
			 const void *payload, size_t len)
{
	struct mk_step st = { .kind = MK_STEP_EXIT, .code = reason };

	if (len > MK_RUN_UNION_SIZE || (len && !payload))
		return -EINVAL;
	if (len) {
		st.buf = malloc(len);
		if (!st.buf)
			return -ENOMEM;
		memcpy(st.buf, payload, len);
		st.buflen = len;
	}
	return mk_script_push(m, vcpu_id, &st);
}

int mock_kvm_script_exit_reason(struct mock_kvm *m, unsigned int vcpu_id, uint32_t reason)
{
	return mock_kvm_script_exit(m, vcpu_id, reason, NULL, 0);
}

int mock_kvm_script_block(struct mock_kvm *m, unsigned int vcpu_id)
{
	struct mk_step st = { .kind = MK_STEP_BLOCK };

	return mk_script_push(m, vcpu_id, &st);
}

int mock_kvm_script_guest_write(struct mock_kvm *m, unsigned int vcpu_id, uint64_t gpa,
				const void *buf, size_t len)
{
	struct mk_step st = { .kind = MK_STEP_GUEST_WRITE, .addr = gpa };

	if (!len || !buf)
		return -EINVAL;
	st.buf = malloc(len);
	if (!st.buf)
		return -ENOMEM;
	memcpy(st.buf, buf, len);
	st.buflen = len;
	return mk_script_push(m, vcpu_id, &st);
}

int mock_kvm_script_call(struct mock_kvm *m, unsigned int vcpu_id, mock_kvm_step_fn fn, void *arg)
{
	struct mk_step st = { .kind = MK_STEP_CALL, .fn = fn, .arg = arg };

	return fn ? mk_script_push(m, vcpu_id, &st) : -EINVAL;
}

size_t mock_kvm_script_pending(struct mock_kvm *m, unsigned int vcpu_id)
{
	pthread_mutex_lock(&m->lock);
	struct mk_script *s = mk_script_get(m, vcpu_id, false);
	size_t n = s ? s->n - s->head : 0;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_set_idle(struct mock_kvm *m, int vcpu_id, enum mock_kvm_idle idle)
{
	int r = 0;

	pthread_mutex_lock(&m->lock);
	if (vcpu_id < 0) {
		m->idle = idle;
	} else {
		struct mk_script *s = mk_script_get(m, (unsigned int)vcpu_id, true);
		if (s)
			s->idle = idle;
		else
			r = -ENOMEM;
	}
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- KVM_RUN ---- */

static void mk_timedwait(struct mock_kvm *m, long ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += ns;
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_nsec -= 1000000000L;
		ts.tv_sec++;
	}
	pthread_cond_timedwait(&m->cond, &m->lock, &ts);
}

static int mk_idle(struct mock_kvm *m, unsigned int id)
{
	struct mk_script *s = mk_script_get(m, id, false);
	return s && s->idle >= 0 ? s->idle : m->idle;
}

enum mk_wait_for { MK_WAIT_STEP, MK_WAIT_RELEASE };

/* Sleep inside KVM_RUN until what we wait for, or an interruption: -EINTR (immediate_exit
 * or kick, exit_reason KVM_EXIT_INTR) or -EBADF (fd closed). */
static int mk_wait(struct mock_kvm *m, struct mk_vcpu *v, enum mk_wait_for what)
{
	int r;

	v->blocked = true;
	pthread_cond_broadcast(&m->cond);
	for (;;) {
		struct mk_script *s = mk_script_get(m, v->id, false);
		if (v->fd < 0) {
			r = -EBADF;
			break;
		}
		if (mk_immediate_exit(v) || v->kicked) {
			v->kicked = false;
			mk_set_exit_reason(v, KVM_EXIT_INTR);
			r = -EINTR;
			break;
		}
		if (what == MK_WAIT_STEP && s && s->head < s->n) {
			r = 0;
			break;
		}
		if (what == MK_WAIT_RELEASE && s && s->release_tokens) {
			r = 0;
			break;
		}
		if (what == MK_WAIT_STEP && mk_idle(m, v->id) != MOCK_KVM_IDLE_BLOCK) {
			r = 0; /* the test changed the idle policy: re-evaluate */
			break;
		}
		mk_timedwait(m, MK_POLL_NS);
	}
	v->blocked = false;
	pthread_cond_broadcast(&m->cond);
	return r;
}

static void mk_exit_mmio(struct mk_vcpu *v, const struct mk_step *st, bool is_write)
{
	mk_run_open(v);
	memset(v->run->padding, 0, sizeof(v->run->padding));
	v->run->exit_reason = KVM_EXIT_MMIO;
	v->run->mmio.phys_addr = st->addr;
	v->run->mmio.len = st->len;
	v->run->mmio.is_write = is_write;
	if (is_write)
		memcpy(v->run->mmio.data, st->data, sizeof(st->data));
	mk_run_close(v);
}

static void mk_exit_system_event(struct mk_vcpu *v, uint32_t type)
{
	mk_run_open(v);
	memset(v->run->padding, 0, sizeof(v->run->padding));
	v->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	v->run->system_event.type = type;
	mk_run_close(v);
}

static void mk_exit_raw(struct mk_vcpu *v, const struct mk_step *st)
{
	mk_run_open(v);
	memset(v->run->padding, 0, sizeof(v->run->padding));
	v->run->exit_reason = st->code;
	if (st->buflen)
		memcpy(v->run->padding, st->buf, st->buflen);
	mk_run_close(v);
}

static int mk_run_steps(struct mock_kvm *m, struct mk_vcpu *v)
{
	int r;

	for (;;) {
		struct mk_step *st = mk_script_head(m, v->id);
		if (v->fd < 0)
			return -EBADF;
		if (!st) {
			switch (mk_idle(m, v->id)) {
			case MOCK_KVM_IDLE_EINTR:
				mk_set_exit_reason(v, KVM_EXIT_INTR);
				return -EINTR;
			case MOCK_KVM_IDLE_SHUTDOWN:
				mk_exit_system_event(v, KVM_SYSTEM_EVENT_SHUTDOWN);
				v->exits++;
				return 0;
			default:
				r = mk_wait(m, v, MK_WAIT_STEP);
				if (r)
					return r;
				continue;
			}
		}
		switch (st->kind) {
		case MK_STEP_MMIO_READ:
			mk_exit_mmio(v, st, false);
			v->mmio_pending = true;
			v->mmio_addr = st->addr;
			v->mmio_len = st->len;
			mk_script_pop(m, v->id);
			v->exits++;
			return 0;
		case MK_STEP_MMIO_WRITE: {
			struct mk_ioeventfd *ioe = mk_ioeventfd_match(v->vm, st->addr, st->len, st->data);
			if (ioe) {
				uint64_t one = 1;
				if (write(ioe->fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
					mk_violation(m, "ioeventfd %d for 0x%llx could not be signalled",
						     ioe->fd, (unsigned long long)st->addr);
				ioe->hits++;
				mk_script_pop(m, v->id);
				continue;
			}
			mk_exit_mmio(v, st, true);
			mk_script_pop(m, v->id);
			v->exits++;
			return 0;
		}
		case MK_STEP_SYSTEM_EVENT:
			mk_exit_system_event(v, st->code);
			mk_script_pop(m, v->id);
			v->exits++;
			return 0;
		case MK_STEP_ERRNO:
			r = st->err;
			mk_script_pop(m, v->id);
			if (r == -EINTR)
				mk_set_exit_reason(v, KVM_EXIT_INTR);
			return r;
		case MK_STEP_EXIT:
			mk_exit_raw(v, st);
			mk_script_pop(m, v->id);
			v->exits++;
			return 0;
		case MK_STEP_GUEST_WRITE: {
			void *p = mk_gpa_ptr(m, v->vm, st->addr, st->buflen);
			if (p)
				memcpy(p, st->buf, st->buflen);
			else
				mk_violation(m, "scripted guest write to 0x%llx+%zu is outside RAM",
					     (unsigned long long)st->addr, st->buflen);
			mk_script_pop(m, v->id);
			continue;
		}
		case MK_STEP_CALL: {
			mock_kvm_step_fn fn = st->fn;
			void *arg = st->arg;
			mk_script_pop(m, v->id);
			pthread_mutex_unlock(&m->lock);
			fn(m, v->id, arg);
			pthread_mutex_lock(&m->lock);
			if (mk_immediate_exit(v) || v->kicked) {
				v->kicked = false;
				mk_set_exit_reason(v, KVM_EXIT_INTR);
				return -EINTR;
			}
			continue;
		}
		case MK_STEP_BLOCK: {
			struct mk_script *s = mk_script_get(m, v->id, false);
			if (s->release_tokens) {
				s->release_tokens--;
				mk_script_pop(m, v->id);
				continue;
			}
			r = mk_wait(m, v, MK_WAIT_RELEASE);
			if (r)
				return r;
			continue;
		}
		}
	}
}

static int mk_vcpu_run(struct mock_kvm *m, struct mk_vcpu *v)
{
	int r;

	if (!v->initialised)
		return -ENOEXEC;
	if (v->in_run) {
		mk_violation(m, "vCPU %u: concurrent KVM_RUN from two threads", v->id);
		return -EBUSY;
	}
	if (!v->ran) {
		r = mk_vm_first_run(m, v->vm);
		if (r)
			return r;
		v->ran = true;
	}
	if (v->mmio_pending)
		mk_mmio_capture(m, v, false);
	if (mk_immediate_exit(v))
		return -EINTR;
	mk_run_open(v);
	v->run->exit_reason = KVM_EXIT_UNKNOWN;
	v->run->flags = 0;
	mk_run_close(v);

	v->in_run = true;
	v->kicked = false;
	v->runs++;
	r = mk_run_steps(m, v);
	v->in_run = false;
	v->blocked = false;
	pthread_cond_broadcast(&m->cond);
	return r;
}

int mk_vcpu_ioctl(struct mock_kvm *m, struct mk_vcpu *v, unsigned long req, unsigned long arg)
{
	if (req != KVM_RUN && v->in_run) {
		mk_violation(m, "vCPU %u: ioctl 0x%lx while another thread is in its KVM_RUN "
				"(the kernel would block on the vCPU mutex)",
			     v->id, req);
		return -EBUSY;
	}
	switch (req) {
	case KVM_RUN:
		return arg ? -EINVAL : mk_vcpu_run(m, v);
	case A64_KVM_ARM_VCPU_INIT:
		return mk_vcpu_init(m, v, (const struct a64_kvm_vcpu_init *)(uintptr_t)arg);
	case KVM_GET_ONE_REG:
	case KVM_SET_ONE_REG:
		return mk_one_reg(v, req, (const struct kvm_one_reg *)(uintptr_t)arg);
	default:
		return -EINVAL;
	}
}

/* ---- thread control ---- */

int mock_kvm_kick(struct mock_kvm *m, unsigned int vcpu_id)
{
	int r = 0;

	pthread_mutex_lock(&m->lock);
	struct mk_vcpu *v = mk_vcpu_by_id(m->vm, vcpu_id);
	if (v && v->in_run) {
		v->kicked = true;
		r = 1;
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

void mock_kvm_release(struct mock_kvm *m, unsigned int vcpu_id)
{
	pthread_mutex_lock(&m->lock);
	struct mk_script *s = mk_script_get(m, vcpu_id, true);
	if (s)
		s->release_tokens++;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

int mock_kvm_wait_blocked(struct mock_kvm *m, unsigned int vcpu_id, unsigned int timeout_ms)
{
	struct timespec dl;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_nsec -= 1000000000L;
		dl.tv_sec++;
	}
	pthread_mutex_lock(&m->lock);
	for (;;) {
		struct mk_vcpu *v = mk_vcpu_by_id(m->vm, vcpu_id);
		if (v && v->blocked)
			break;
		if (pthread_cond_timedwait(&m->cond, &m->lock, &dl) == ETIMEDOUT) {
			v = mk_vcpu_by_id(m->vm, vcpu_id);
			r = v && v->blocked ? 0 : -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- queries ---- */

int mock_kvm_nr_vcpus(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	int n = m->vm ? (int)m->vm->nr_vcpus : 0;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_vcpu(struct mock_kvm *m, unsigned int vcpu_id, struct mock_kvm_vcpu_info *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	struct mk_vcpu *v = mk_vcpu_by_id(m->vm, vcpu_id);
	if (v) {
		memset(out, 0, sizeof(*out));
		out->id = v->id;
		out->index = v->idx;
		out->fd = v->fd;
		out->initialised = v->initialised;
		out->target = v->target;
		out->features = v->features;
		memcpy(out->x, v->core, sizeof(out->x));
		out->sp = v->core[31];
		out->pc = v->core[32];
		out->pstate = v->core[33];
		out->sp_el1 = v->core[34];
		out->elr_el1 = v->core[35];
		out->mpidr = v->mpidr;
		out->psci_version = v->psci_version;
		out->ran = v->ran;
		out->in_run = v->in_run;
		out->blocked = v->blocked;
		out->mapped = v->map_count > 0;
		out->runs = v->runs;
		out->exits = v->exits;
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

size_t mock_kvm_nr_mmio_reads(struct mock_kvm *m, unsigned int vcpu_id)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_mmio; i++)
		n += m->mmio[i].vcpu_id == vcpu_id;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_mmio_read_result(struct mock_kvm *m, unsigned int vcpu_id, size_t n,
			      struct mock_kvm_mmio_result *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_mmio; i++) {
		if (m->mmio[i].vcpu_id != vcpu_id)
			continue;
		if (n-- == 0) {
			*out = m->mmio[i];
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}
