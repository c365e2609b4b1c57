/* Unit tests of mock KVM itself (mocks/mock_kvm*.c): the ABI rules it models, scripted
 * exits, thread blocking and kicks, error injection, call log and fd accounting. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/aarch64/kvm_arm64.h"
#include "mock_kvm.h"

#define PAGE 4096ULL
#define RAM_GPA 0x40000000ULL
#define DIST 0x08000000ULL
#define REDIST 0x080a0000ULL

struct env {
	struct mock_kvm *m;
	struct sys s;
	int kvm, vm;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->m = mock_kvm_new();
	assert_non_null(e->m);
	mock_kvm_set_quiet(e->m, true);
	e->s = mock_kvm_sys(e->m);
	e->kvm = sys_open(&e->s, "/dev/kvm", O_RDWR);
	assert_true(e->kvm >= 0);
	e->vm = sys_ioctl(&e->s, e->kvm, KVM_CREATE_VM, 0);
	assert_true(e->vm >= 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	mock_kvm_free(e->m);
	free(e);
	return 0;
}

static void *map_ram(struct env *e, size_t size)
{
	int err = 0;
	void *p = sys_mmap(&e->s, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0,
			   &err);
	assert_non_null(p);
	return p;
}

static int set_region(struct env *e, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size,
		      const void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	return sys_ioctl_ptr(&e->s, e->vm, KVM_SET_USER_MEMORY_REGION, &r);
}

static int vcpu_init(struct env *e, int fd, uint32_t features)
{
	struct a64_kvm_vcpu_init init;
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, A64_KVM_ARM_PREFERRED_TARGET, &init), 0);
	init.features[0] = features;
	return sys_ioctl_ptr(&e->s, fd, A64_KVM_ARM_VCPU_INIT, &init);
}

/* Create, init (PSCI 0.2) and map a vCPU. */
static int vcpu_ready(struct env *e, unsigned int id, struct kvm_run **run)
{
	int fd = sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, id);
	assert_true(fd >= 0);
	assert_int_equal(vcpu_init(e, fd, 1U << A64_KVM_ARM_VCPU_PSCI_0_2), 0);
	int err = 0;
	*run = sys_mmap(&e->s, MOCK_KVM_VCPU_MMAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0,
			&err);
	assert_non_null(*run);
	return fd;
}

static int get_reg(struct env *e, int fd, uint64_t id, uint64_t *val)
{
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)val };
	return sys_ioctl_ptr(&e->s, fd, KVM_GET_ONE_REG, &r);
}

static int set_reg(struct env *e, int fd, uint64_t id, uint64_t val)
{
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)&val };
	return sys_ioctl_ptr(&e->s, fd, KVM_SET_ONE_REG, &r);
}

static int run(struct env *e, int fd)
{
	return sys_ioctl(&e->s, fd, KVM_RUN, 0);
}

static int create_gic(struct env *e)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	int r = sys_ioctl_ptr(&e->s, e->vm, KVM_CREATE_DEVICE, &cd);
	return r ? r : (int)cd.fd;
}

static int gic_attr(struct env *e, int dev, unsigned long req, uint32_t group, uint64_t attr,
		    void *val)
{
	struct kvm_device_attr a = {
		.group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)val
	};
	return sys_ioctl_ptr(&e->s, dev, req, &a);
}

static int gic_addr(struct env *e, int dev, uint64_t type, uint64_t addr)
{
	return gic_attr(e, dev, KVM_SET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_ADDR, type, &addr);
}

static int gic_init(struct env *e, int dev)
{
	return gic_attr(e, dev, KVM_SET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_CTRL,
			A64_KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
}

/* A full vGIC: addresses, 128 IRQs, initialised. Returns the device fd. */
static int gic_ready(struct env *e)
{
	int dev = create_gic(e);
	assert_true(dev >= 0);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_DIST, DIST), 0);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_REDIST, REDIST), 0);
	uint32_t n = 128;
	assert_int_equal(gic_attr(e, dev, KVM_SET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0,
				  &n),
			 0);
	assert_int_equal(gic_init(e, dev), 0);
	return dev;
}

static int irq_line(struct env *e, uint32_t irq, uint32_t level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };
	return sys_ioctl_ptr(&e->s, e->vm, KVM_IRQ_LINE, &l);
}

/* ---- /dev/kvm and VM creation ---- */

static void test_system_fd(void **state)
{
	struct env *e = *state;

	assert_int_equal(sys_open(&e->s, "/dev/vfio/vfio", O_RDWR), -ENOENT);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_GET_API_VERSION, 0), 12);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_GET_API_VERSION, 1), -EINVAL);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_GET_VCPU_MMAP_SIZE, 0),
			 (int)MOCK_KVM_VCPU_MMAP_SIZE);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY), 1);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS), 8);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2), 1);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD), 1);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE), 40);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_SVE), 0);
	assert_int_equal(mock_kvm_set_cap(e->m, KVM_CAP_ARM_SVE, 1), 0);
	assert_int_equal(sys_ioctl(&e->s, e->vm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_SVE), 1);
	assert_int_equal(mock_kvm_set_max_vcpus(e->m, 3), 0);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS), 3);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, 0xdead, 0), -EINVAL);
	/* KVM fds have no read/write/mmap */
	char b;
	assert_int_equal(sys_read(&e->s, e->kvm, &b, 1), -EINVAL);
	int err = 0;
	assert_null(sys_mmap(&e->s, PAGE, PROT_READ, MAP_SHARED, e->vm, 0, &err));
	assert_int_equal(err, -ENODEV);
}

static void test_create_vm_types(void **state)
{
	struct env *e = *state;
	struct mock_kvm_vm_info vi;

	assert_int_equal(mock_kvm_vm(e->m, &vi), 0);
	assert_true(vi.alive);
	assert_int_equal(vi.ipa_bits, 40);
	/* mock: one live VM */
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CREATE_VM, 0), -EBUSY);
	assert_int_equal(sys_close(&e->s, e->vm), 0);
	assert_int_equal(mock_kvm_vm(e->m, &vi), 0);
	assert_false(vi.alive);

	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CREATE_VM, 0x100), -EINVAL);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CREATE_VM, 31), -EINVAL);
	assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CREATE_VM, 41), -EINVAL);
	e->vm = sys_ioctl(&e->s, e->kvm, KVM_CREATE_VM, 36);
	assert_true(e->vm >= 0);
	assert_int_equal(mock_kvm_vm(e->m, &vi), 0);
	assert_int_equal(vi.ipa_bits, 36);
	assert_int_equal(vi.type, 36);
	/* a 36-bit IPA space ends at 64 GiB */
	void *ram = map_ram(e, 2 * PAGE);
	assert_int_equal(set_region(e, 0, 0, (1ULL << 36) - PAGE, 2 * PAGE, ram), -EFAULT);
	assert_int_equal(set_region(e, 0, 0, (1ULL << 36) - 2 * PAGE, 2 * PAGE, ram), 0);
}

/* ---- memslots ---- */

static void test_memslot_rules(void **state)
{
	struct env *e = *state;
	uint8_t *ram = map_ram(e, 16 * PAGE);

	assert_int_equal(set_region(e, 0, 0, RAM_GPA + 1, PAGE, ram), -EINVAL);
	assert_int_equal(set_region(e, 0, 0, RAM_GPA, PAGE + 8, ram), -EINVAL);
	assert_int_equal(set_region(e, 0, 0, RAM_GPA, PAGE, ram + 8), -EINVAL);
	assert_int_equal(set_region(e, 0, 1U << 2, RAM_GPA, PAGE, ram), -EINVAL);
	assert_int_equal(set_region(e, 512, 0, RAM_GPA, PAGE, ram), -EINVAL);
	assert_int_equal(set_region(e, 1U << 16, 0, RAM_GPA, PAGE, ram), -EINVAL);
	assert_int_equal(set_region(e, 0, 0, ~0ULL & ~(PAGE - 1), 2 * PAGE, ram), -EINVAL);
	assert_int_equal(set_region(e, 3, 0, RAM_GPA, 0, NULL), -EINVAL); /* delete missing */

	assert_int_equal(set_region(e, 0, 0, RAM_GPA, 8 * PAGE, ram), 0);
	/* overlaps: inside, straddling the start, straddling the end */
	assert_int_equal(set_region(e, 1, 0, RAM_GPA + PAGE, PAGE, ram + 8 * PAGE), -EEXIST);
	assert_int_equal(set_region(e, 1, 0, RAM_GPA - PAGE, 2 * PAGE, ram + 8 * PAGE), -EEXIST);
	assert_int_equal(set_region(e, 1, 0, RAM_GPA + 7 * PAGE, 2 * PAGE, ram + 8 * PAGE),
			 -EEXIST);
	/* adjacent is fine, read-only too */
	assert_int_equal(set_region(e, 1, KVM_MEM_READONLY, RAM_GPA + 8 * PAGE, 2 * PAGE,
				    ram + 8 * PAGE),
			 0);
	assert_int_equal(mock_kvm_nr_slots(e->m), 2);

	/* changing a slot: size/hva/READONLY -> EINVAL; dirty-log flag ok; gpa moves it */
	assert_int_equal(set_region(e, 0, 0, RAM_GPA, 4 * PAGE, ram), -EINVAL);
	assert_int_equal(set_region(e, 0, KVM_MEM_READONLY, RAM_GPA, 8 * PAGE, ram), -EINVAL);
	assert_int_equal(set_region(e, 0, KVM_MEM_LOG_DIRTY_PAGES, RAM_GPA, 8 * PAGE, ram), 0);
	struct kvm_userspace_memory_region s;
	assert_int_equal(mock_kvm_slot(e->m, 0, &s), 0);
	assert_int_equal(s.flags, KVM_MEM_LOG_DIRTY_PAGES);
	assert_int_equal(set_region(e, 0, 0, RAM_GPA + 4 * PAGE, 8 * PAGE, ram), -EEXIST);
	assert_int_equal(set_region(e, 0, 0, 0x80000000ULL, 8 * PAGE, ram), 0);
	assert_int_equal(mock_kvm_slot(e->m, 0, &s), 0);
	assert_int_equal(s.guest_phys_addr, 0x80000000ULL);

	/* guest memory through the slots */
	ram[5] = 0xab;
	uint8_t b = 0;
	assert_int_equal(mock_kvm_guest_read(e->m, 0x80000000ULL + 5, &b, 1), 0);
	assert_int_equal(b, 0xab);
	b = 0xcd;
	assert_int_equal(mock_kvm_guest_write(e->m, RAM_GPA + 8 * PAGE, &b, 1), 0);
	assert_int_equal(ram[8 * PAGE], 0xcd);
	assert_int_equal(mock_kvm_guest_read(e->m, 0x80000000ULL + 8 * PAGE - 1, &b, 2), -EFAULT);
	assert_int_equal(mock_kvm_guest_read(e->m, 0x1000, &b, 1), -EFAULT);

	/* delete */
	assert_int_equal(set_region(e, 1, 0, 0, 0, NULL), 0);
	assert_int_equal(mock_kvm_nr_slots(e->m), 1);
	assert_int_equal(mock_kvm_slot(e->m, 1, &s), -ENOENT);

	/* mock: host memory not mapped through the seam */
	static uint8_t stray[2 * 4096] __attribute__((aligned(4096)));
	assert_int_equal(set_region(e, 5, 0, 0x100000000ULL, PAGE, stray), -EFAULT);
	assert_int_equal(mock_kvm_violations(e->m), 1);
	assert_int_equal(mock_kvm_nr_slots(e->m), 1);
}

static void test_slot_limit_configurable(void **state)
{
	struct env *e = *state;
	uint8_t *ram = map_ram(e, 2 * PAGE);

	assert_int_equal(mock_kvm_set_cap(e->m, KVM_CAP_NR_MEMSLOTS, 1), 0);
	assert_int_equal(set_region(e, 1, 0, RAM_GPA, PAGE, ram), -EINVAL);
	assert_int_equal(set_region(e, 0, 0, RAM_GPA, PAGE, ram), 0);
}

static void test_mappings(void **state)
{
	struct env *e = *state;
	uint8_t *ram = map_ram(e, 4 * PAGE);
	int x;

	assert_int_equal(mock_kvm_live_mappings(e->m), 1);
	assert_int_equal(sys_munmap(&e->s, &x, PAGE), -EINVAL);
	assert_int_equal(sys_munmap(&e->s, ram, PAGE), -EINVAL); /* partial */
	assert_int_equal(set_region(e, 0, 0, RAM_GPA, 4 * PAGE, ram), 0);
	assert_int_equal(sys_munmap(&e->s, ram, 4 * PAGE), 0);
	assert_int_equal(mock_kvm_violations(e->m), 1); /* RAM still in a memslot */
	assert_int_equal(mock_kvm_live_mappings(e->m), 0);
	/* the mock never touches memory that is gone */
	uint8_t b;
	assert_int_equal(mock_kvm_guest_read(e->m, RAM_GPA, &b, 1), -EFAULT);
}

/* ---- vCPUs ---- */

static void test_vcpu_create_rules(void **state)
{
	struct env *e = *state;

	assert_int_equal(mock_kvm_set_max_vcpus(e->m, 4), 0);
	assert_int_equal(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 4), -EINVAL);
	assert_true(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 3) >= 0);
	assert_int_equal(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 3), -EEXIST);
	assert_true(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 0) >= 0);
	assert_true(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 1) >= 0);
	assert_true(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 2) >= 0);
	assert_int_equal(mock_kvm_nr_vcpus(e->m), 4);
	/* count limit separate from the id limit */
	assert_int_equal(mock_kvm_set_cap(e->m, KVM_CAP_MAX_VCPU_ID, 16), 0);
	assert_int_equal(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 9), -EINVAL);

	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(e->m, 3, &v), 0);
	assert_int_equal(v.index, 0);
	assert_false(v.initialised);
	assert_int_equal(mock_kvm_vcpu(e->m, 7, &v), -ENOENT);
}

static void test_vcpu_init(void **state)
{
	struct env *e = *state;
	struct a64_kvm_vcpu_init init;
	int fd = sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 0);
	uint64_t val;

	assert_int_equal(get_reg(e, fd, A64_REG_PC, &val), -ENOEXEC);
	assert_int_equal(set_reg(e, fd, A64_REG_PC, 0), -ENOEXEC);
	assert_int_equal(run(e, fd), -ENOEXEC);

	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, A64_KVM_ARM_PREFERRED_TARGET, &init), 0);
	assert_int_equal(init.target, MOCK_KVM_TARGET_GENERIC_V8);
	init.target = 0;
	assert_int_equal(sys_ioctl_ptr(&e->s, fd, A64_KVM_ARM_VCPU_INIT, &init), -EINVAL);
	assert_int_equal(vcpu_init(e, fd, 1U << 7), -ENOENT);	/* unknown feature */
	assert_int_equal(vcpu_init(e, fd, 1U << 3), -EINVAL);	/* PMU: host lacks it */
	assert_int_equal(vcpu_init(e, fd, 1U << 5), -EINVAL);	/* ptrauth needs both bits */
	mock_kvm_set_cap(e->m, KVM_CAP_ARM_PSCI_0_2, 0);
	assert_int_equal(vcpu_init(e, fd, 1U << A64_KVM_ARM_VCPU_PSCI_0_2), -EINVAL);
	mock_kvm_set_cap(e->m, KVM_CAP_ARM_PSCI_0_2, 1);
	sys_ioctl_ptr(&e->s, e->vm, A64_KVM_ARM_PREFERRED_TARGET, &init);
	init.features[3] = 1;
	assert_int_equal(sys_ioctl_ptr(&e->s, fd, A64_KVM_ARM_VCPU_INIT, &init), -ENOENT);

	uint32_t feat = (1U << A64_KVM_ARM_VCPU_PSCI_0_2) | (1U << A64_KVM_ARM_VCPU_POWER_OFF);
	assert_int_equal(vcpu_init(e, fd, feat), 0);
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(e->m, 0, &v), 0);
	assert_true(v.initialised);
	assert_int_equal(v.features, feat);
	assert_int_equal(v.pstate, A64_PSTATE_EL1H_DAIF);
	/* a second init must repeat the same features; it resets registers */
	assert_int_equal(vcpu_init(e, fd, 1U << A64_KVM_ARM_VCPU_PSCI_0_2), -EINVAL);
	assert_int_equal(set_reg(e, fd, A64_REG_X(3), 77), 0);
	assert_int_equal(vcpu_init(e, fd, feat), 0);
	assert_int_equal(get_reg(e, fd, A64_REG_X(3), &val), 0);
	assert_int_equal(val, 0);
}

static void test_one_reg(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	assert_int_equal(mock_kvm_set_max_vcpus(e->m, 32), 0);
	int fd0 = vcpu_ready(e, 0, &r);
	int fd = vcpu_ready(e, 17, &r);
	uint64_t val;

	for (unsigned int i = 0; i < 31; i++)
		assert_int_equal(set_reg(e, fd, A64_REG_X(i), 0x1000 + i), 0);
	assert_int_equal(set_reg(e, fd, A64_REG_PC, 0x40080000), 0);
	assert_int_equal(set_reg(e, fd, MOCK_KVM_REG_SP, 0x1234), 0);
	assert_int_equal(get_reg(e, fd, A64_REG_X(30), &val), 0);
	assert_int_equal(val, 0x1000 + 30);
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(e->m, 17, &v), 0);
	assert_int_equal(v.x[0], 0x1000);
	assert_int_equal(v.pc, 0x40080000);
	assert_int_equal(v.sp, 0x1234);

	/* PSTATE modes: EL1h ok, EL2h / AArch32 SVC without 32-bit EL1 rejected */
	assert_int_equal(set_reg(e, fd, A64_REG_PSTATE, A64_PSTATE_EL1H_DAIF), 0);
	assert_int_equal(set_reg(e, fd, A64_REG_PSTATE, 0x3c9), -EINVAL);
	assert_int_equal(set_reg(e, fd, A64_REG_PSTATE, 0x13), -EINVAL);

	/* MPIDR: KVM's default mapping, Aff0 = id % 16, Aff1 = id / 16 */
	assert_int_equal(get_reg(e, fd, MOCK_KVM_REG_MPIDR_EL1, &val), 0);
	assert_int_equal(val, 0x80000101ULL);
	assert_int_equal(val, mock_kvm_default_mpidr(17));
	assert_int_equal(get_reg(e, fd0, MOCK_KVM_REG_MPIDR_EL1, &val), 0);
	assert_int_equal(val, 0x80000000ULL);

	/* PSCI firmware version */
	assert_int_equal(get_reg(e, fd, MOCK_KVM_REG_PSCI_VERSION, &val), 0);
	assert_int_equal(val, MOCK_KVM_PSCI_VERSION_1_1);
	assert_int_equal(set_reg(e, fd, MOCK_KVM_REG_PSCI_VERSION, 0x10000), 0);
	assert_int_equal(set_reg(e, fd, MOCK_KVM_REG_PSCI_VERSION, 0x3), -EINVAL);

	/* bad ids */
	uint64_t u32_pc = (A64_REG_PC & ~0x00f0000000000000ULL) | 0x0020000000000000ULL;
	assert_int_equal(get_reg(e, fd, u32_pc, &val), -EINVAL);	      /* wrong size */
	assert_int_equal(get_reg(e, fd, A64_REG_X(0) + 1, &val), -EINVAL);   /* misaligned */
	assert_int_equal(get_reg(e, fd, 0x4030000000100000ULL, &val), -EINVAL); /* not arm64 */
	assert_int_equal(get_reg(e, fd, MOCK_KVM_REG_ARM64_SYSREG(3, 0, 1, 0, 0), &val), -ENOENT);
	assert_int_equal(get_reg(e, fd, A64_CORE_REG(0x400), &val), -ENOENT);
	struct kvm_one_reg nul = { .id = A64_REG_PC, .addr = 0 };
	assert_int_equal(sys_ioctl_ptr(&e->s, fd, KVM_GET_ONE_REG, &nul), -EFAULT);
	assert_int_equal(sys_ioctl(&e->s, fd, KVM_GET_ONE_REG, 0), -EFAULT);
	assert_int_equal(sys_ioctl(&e->s, fd, 0xbeef, 0), -EINVAL);
}

static void test_vcpu_mmap(void **state)
{
	struct env *e = *state;
	int fd = sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 0);
	int err = 0;

	assert_null(sys_mmap(&e->s, MOCK_KVM_VCPU_MMAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			     fd, 0, &err));
	assert_int_equal(err, -EINVAL);
	assert_int_equal(mock_kvm_violations(e->m), 1);
	assert_null(sys_mmap(&e->s, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0, &err));
	assert_int_equal(err, -EINVAL);
	assert_null(sys_mmap(&e->s, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE, &err));
	assert_int_equal(err, -EINVAL);
	struct kvm_run *r = sys_mmap(&e->s, MOCK_KVM_VCPU_MMAP_SIZE, PROT_READ | PROT_WRITE,
				     MAP_SHARED, fd, 0, &err);
	assert_non_null(r);
	r->immediate_exit = 0;
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(e->m, 0, &v), 0);
	assert_true(v.mapped);
	assert_int_equal(mock_kvm_live_mappings(e->m), 1);
	assert_int_equal(sys_munmap(&e->s, r, MOCK_KVM_VCPU_MMAP_SIZE), 0);
	assert_int_equal(mock_kvm_vcpu(e->m, 0, &v), 0);
	assert_false(v.mapped);
	assert_int_equal(mock_kvm_live_mappings(e->m), 0);
	/* mapping again gives the same page back */
	struct kvm_run *r2 = sys_mmap(&e->s, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0, &err);
	assert_ptr_equal(r, r2);
	assert_int_equal(sys_munmap(&e->s, r2, PAGE), 0);
}

/* ---- scripted exits ---- */

static void test_scripted_exits(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 1, &r);

	assert_int_equal(mock_kvm_script_mmio_read(e->m, 1, 0x9000000, 3), -EINVAL);
	assert_int_equal(mock_kvm_script_errno(e->m, 1, 5), -EINVAL);
	assert_int_equal(mock_kvm_script_mmio_write(e->m, 1, 0x9000000, 0x11223344, 4), 0);
	assert_int_equal(mock_kvm_script_errno(e->m, 1, -EFAULT), 0);
	assert_int_equal(mock_kvm_script_errno(e->m, 1, -EINTR), 0);
	assert_int_equal(mock_kvm_script_exit_reason(e->m, 1, KVM_EXIT_INTERNAL_ERROR), 0);
	uint64_t fail = 0x42;
	assert_int_equal(mock_kvm_script_exit(e->m, 1, KVM_EXIT_FAIL_ENTRY, &fail, sizeof(fail)), 0);
	assert_int_equal(mock_kvm_script_system_event(e->m, 1, KVM_SYSTEM_EVENT_SHUTDOWN), 0);
	assert_int_equal(mock_kvm_script_pending(e->m, 1), 6);
	assert_int_equal(sys_ioctl(&e->s, fd, KVM_RUN, 1), -EINVAL);

	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->exit_reason, KVM_EXIT_MMIO);
	assert_int_equal(r->mmio.phys_addr, 0x9000000);
	assert_int_equal(r->mmio.len, 4);
	assert_int_equal(r->mmio.is_write, 1);
	assert_memory_equal(r->mmio.data, "\x44\x33\x22\x11", 4);
	assert_int_equal(run(e, fd), -EFAULT);
	assert_int_equal(run(e, fd), -EINTR);
	assert_int_equal(r->exit_reason, KVM_EXIT_INTR);
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->exit_reason, KVM_EXIT_INTERNAL_ERROR);
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->exit_reason, KVM_EXIT_FAIL_ENTRY);
	assert_int_equal(r->fail_entry.hardware_entry_failure_reason, 0x42);
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->exit_reason, KVM_EXIT_SYSTEM_EVENT);
	assert_int_equal(r->system_event.type, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(mock_kvm_script_pending(e->m, 1), 0);

	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(e->m, 1, &v), 0);
	assert_int_equal(v.exits, 4);
	assert_int_equal(v.runs, 6);
	assert_true(v.ran);
}

static void test_mmio_read_capture(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);
	struct mock_kvm_mmio_result res;

	mock_kvm_script_mmio_read(e->m, 0, 0x9000fe0, 4);
	mock_kvm_script_mmio_read(e->m, 0, 0x9000018, 2);
	mock_kvm_script_mmio_read(e->m, 0, 0x9000000, 8);
	mock_kvm_script_system_event(e->m, 0, KVM_SYSTEM_EVENT_RESET);

	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->exit_reason, KVM_EXIT_MMIO);
	assert_int_equal(r->mmio.is_write, 0);
	assert_int_equal(r->mmio.len, 4);
	assert_int_equal(mock_kvm_nr_mmio_reads(e->m, 0), 0);
	memcpy(r->mmio.data, "\x11\x10\x14\x00", 4);
	assert_int_equal(run(e, fd), 0); /* completes the first read */
	assert_int_equal(mock_kvm_nr_mmio_reads(e->m, 0), 1);
	assert_int_equal(mock_kvm_mmio_read_result(e->m, 0, 0, &res), 0);
	assert_int_equal(res.addr, 0x9000fe0);
	assert_int_equal(res.value, 0x141011);
	assert_false(res.at_close);

	/* completes even when the re-entry is refused by immediate_exit */
	r->mmio.data[0] = 0x90;
	r->mmio.data[1] = 0x00;
	r->immediate_exit = 1;
	assert_int_equal(run(e, fd), -EINTR);
	assert_int_equal(mock_kvm_mmio_read_result(e->m, 0, 1, &res), 0);
	assert_int_equal(res.value, 0x90);
	assert_int_equal(mock_kvm_script_pending(e->m, 0), 2);
	r->immediate_exit = 0;

	assert_int_equal(run(e, fd), 0);
	memcpy(r->mmio.data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	/* the last read completes when the fd closes */
	assert_int_equal(sys_close(&e->s, fd), 0);
	assert_int_equal(mock_kvm_mmio_read_result(e->m, 0, 2, &res), 0);
	assert_int_equal(res.value, 0x0807060504030201ULL);
	assert_true(res.at_close);
	assert_int_equal(mock_kvm_mmio_read_result(e->m, 0, 3, &res), -ENOENT);
	assert_int_equal(mock_kvm_mmio_read_result(e->m, 1, 0, &res), -ENOENT);
}

static void test_immediate_exit(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);

	mock_kvm_script_system_event(e->m, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	r->exit_reason = 1234;
	r->immediate_exit = 1;
	assert_int_equal(run(e, fd), -EINTR);
	assert_int_equal(r->exit_reason, 1234); /* untouched, as in Linux */
	assert_int_equal(mock_kvm_script_pending(e->m, 0), 1);
	r->immediate_exit = 0;
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->system_event.type, KVM_SYSTEM_EVENT_SHUTDOWN);
}

static void test_idle_modes(void **state)
{
	struct env *e = *state;
	struct kvm_run *r0, *r1;
	int fd0 = vcpu_ready(e, 0, &r0);
	int fd1 = vcpu_ready(e, 1, &r1);

	assert_int_equal(mock_kvm_set_idle(e->m, -1, MOCK_KVM_IDLE_EINTR), 0);
	assert_int_equal(mock_kvm_set_idle(e->m, 1, MOCK_KVM_IDLE_SHUTDOWN), 0);
	assert_int_equal(run(e, fd0), -EINTR);
	assert_int_equal(r0->exit_reason, KVM_EXIT_INTR);
	assert_int_equal(run(e, fd1), 0);
	assert_int_equal(r1->exit_reason, KVM_EXIT_SYSTEM_EVENT);
	assert_int_equal(r1->system_event.type, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run(e, fd1), 0); /* again and again */
}

/* a call step: runs inside KVM_RUN and may use the mock's public API */
static void call_step(struct mock_kvm *m, unsigned int id, void *arg)
{
	uint8_t b[4];

	(void)id;
	assert_int_equal(mock_kvm_guest_read(m, RAM_GPA + 16, b, 4), 0);
	assert_memory_equal(b, "ring", 4);
	(*(int *)arg)++;
}

static void test_guest_write_and_call_steps(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);
	uint8_t *ram = map_ram(e, PAGE);
	int called = 0;

	assert_int_equal(set_region(e, 0, 0, RAM_GPA, PAGE, ram), 0);
	assert_int_equal(mock_kvm_script_guest_write(e->m, 0, RAM_GPA + 16, "ring", 4), 0);
	assert_int_equal(mock_kvm_script_guest_write(e->m, 0, RAM_GPA + PAGE - 1, "xx", 2), 0);
	void (*fn)(struct mock_kvm *, unsigned int, void *) = NULL;
	assert_int_equal(mock_kvm_script_call(e->m, 0, fn, NULL), -EINVAL);
	assert_int_equal(mock_kvm_script_call(e->m, 0, call_step, &called), 0);
	mock_kvm_script_mmio_write(e->m, 0, 0x0a000050, 0, 4);
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->exit_reason, KVM_EXIT_MMIO);
	assert_int_equal(called, 1);
	assert_memory_equal(ram + 16, "ring", 4);
	assert_int_equal(mock_kvm_violations(e->m), 1); /* the write past RAM */
}

/* ---- threads: blocking, kick, immediate_exit, release, close ---- */

struct runner {
	struct env *e;
	int fd;
	int ret;
	pthread_t thread;
};

static void *runner_main(void *arg)
{
	struct runner *rn = arg;
	rn->ret = run(rn->e, rn->fd);
	return NULL;
}

static void runner_start(struct runner *rn, struct env *e, int fd)
{
	rn->e = e;
	rn->fd = fd;
	rn->ret = 1;
	assert_int_equal(pthread_create(&rn->thread, NULL, runner_main, rn), 0);
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

static void test_block_and_kick(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);
	struct runner rn;

	assert_int_equal(mock_kvm_kick(e->m, 0), 0); /* not running: lost */
	runner_start(&rn, e, fd);
	assert_int_equal(mock_kvm_wait_blocked(e->m, 0, 5000), 0);
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(e->m, 0, &v), 0);
	assert_true(v.in_run && v.blocked);
	assert_int_equal(mock_kvm_kick(e->m, 0), 1);
	pthread_join(rn.thread, NULL);
	assert_int_equal(rn.ret, -EINTR);
	assert_int_equal(r->exit_reason, KVM_EXIT_INTR);
	assert_int_equal(mock_kvm_wait_blocked(e->m, 0, 10), -ETIMEDOUT);
}

static void test_block_immediate_exit_signal(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);
	struct runner rn;
	struct sigaction sa = { .sa_handler = on_sigusr1 }, old;

	sigaction(SIGUSR1, &sa, &old);
	runner_start(&rn, e, fd);
	assert_int_equal(mock_kvm_wait_blocked(e->m, 0, 5000), 0);
	/* what the VMM does to stop a vCPU thread */
	__atomic_store_n(&r->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(rn.thread, SIGUSR1);
	pthread_join(rn.thread, NULL);
	sigaction(SIGUSR1, &old, NULL);
	assert_int_equal(rn.ret, -EINTR);
	assert_int_equal(r->exit_reason, KVM_EXIT_INTR);
}

static void test_block_wakes_on_script(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 2, &r);
	struct runner rn;

	runner_start(&rn, e, fd);
	assert_int_equal(mock_kvm_wait_blocked(e->m, 2, 5000), 0);
	mock_kvm_script_system_event(e->m, 2, KVM_SYSTEM_EVENT_CRASH);
	pthread_join(rn.thread, NULL);
	assert_int_equal(rn.ret, 0);
	assert_int_equal(r->system_event.type, KVM_SYSTEM_EVENT_CRASH);

	/* switching the idle policy wakes it too */
	runner_start(&rn, e, fd);
	assert_int_equal(mock_kvm_wait_blocked(e->m, 2, 5000), 0);
	mock_kvm_set_idle(e->m, 2, MOCK_KVM_IDLE_SHUTDOWN);
	pthread_join(rn.thread, NULL);
	assert_int_equal(rn.ret, 0);
	assert_int_equal(r->system_event.type, KVM_SYSTEM_EVENT_SHUTDOWN);
}

static void test_block_step_release(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);
	struct runner rn;

	mock_kvm_script_block(e->m, 0);
	mock_kvm_script_mmio_write(e->m, 0, 0x1000, 1, 1);
	mock_kvm_script_block(e->m, 0);
	mock_kvm_script_system_event(e->m, 0, KVM_SYSTEM_EVENT_SHUTDOWN);

	runner_start(&rn, e, fd);
	assert_int_equal(mock_kvm_wait_blocked(e->m, 0, 5000), 0);
	assert_int_equal(rn.ret, 1);
	mock_kvm_release(e->m, 0);
	pthread_join(rn.thread, NULL);
	assert_int_equal(rn.ret, 0);
	assert_int_equal(r->exit_reason, KVM_EXIT_MMIO);

	/* an early release is not lost */
	mock_kvm_release(e->m, 0);
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->exit_reason, KVM_EXIT_SYSTEM_EVENT);

	/* a kicked block step stays queued */
	mock_kvm_script_block(e->m, 0);
	runner_start(&rn, e, fd);
	assert_int_equal(mock_kvm_wait_blocked(e->m, 0, 5000), 0);
	mock_kvm_kick(e->m, 0);
	pthread_join(rn.thread, NULL);
	assert_int_equal(rn.ret, -EINTR);
	assert_int_equal(mock_kvm_script_pending(e->m, 0), 1);
}

static void test_misuse_during_run(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);
	struct runner rn;
	uint64_t val;

	runner_start(&rn, e, fd);
	assert_int_equal(mock_kvm_wait_blocked(e->m, 0, 5000), 0);
	/* the kernel would block on the vCPU mutex: the mock refuses and records it */
	assert_int_equal(get_reg(e, fd, A64_REG_PC, &val), -EBUSY);
	assert_int_equal(run(e, fd), -EBUSY);
	assert_int_equal(mock_kvm_violations(e->m), 2);
	/* closing the fd under a running vCPU wakes it (mock) and is a violation */
	assert_int_equal(sys_close(&e->s, fd), 0);
	pthread_join(rn.thread, NULL);
	assert_int_equal(rn.ret, -EBADF);
	assert_int_equal(mock_kvm_violations(e->m), 3);
	assert_non_null(mock_kvm_violation(e->m, 2));
	assert_null(mock_kvm_violation(e->m, 3));
}

/* ---- vGIC ---- */

static void test_vgic_device(void **state)
{
	struct env *e = *state;
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_ARM_VGIC_V2 };
	uint64_t addr;
	uint32_t n;

	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_CREATE_DEVICE, &cd), -ENODEV);
	cd.type = KVM_DEV_TYPE_ARM_VGIC_V3;
	cd.flags = KVM_CREATE_DEVICE_TEST;
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_CREATE_DEVICE, &cd), 0);
	assert_int_equal(mock_kvm_open_fds_kind(e->m, MOCK_KVM_FD_DEVICE), 0);
	int dev = create_gic(e);
	assert_true(dev >= 0);
	assert_int_equal(create_gic(e), -EEXIST);
	cd.flags = KVM_CREATE_DEVICE_TEST;
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_CREATE_DEVICE, &cd), 0);

	int vfd = sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 0);
	assert_true(vfd >= 0);

	/* addresses */
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_DIST, DIST + 0x1000), -EINVAL);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_DIST, 1ULL << 40), -E2BIG);
	assert_int_equal(gic_addr(e, dev, 9, DIST), -ENXIO);
	assert_int_equal(gic_attr(e, dev, KVM_SET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_ADDR,
				  A64_KVM_VGIC_V3_ADDR_TYPE_DIST, NULL),
			 -EFAULT);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_DIST, DIST), 0);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_DIST, DIST), -EEXIST);
	/* redistributors of the existing vCPU would overlap the distributor */
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_REDIST, DIST), -EINVAL);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_REDIST, REDIST), 0);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_REDIST, REDIST), -EEXIST);
	assert_int_equal(gic_attr(e, dev, KVM_GET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_ADDR,
				  A64_KVM_VGIC_V3_ADDR_TYPE_REDIST, &addr),
			 0);
	assert_int_equal(addr, REDIST);
	assert_int_equal(gic_attr(e, dev, KVM_HAS_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_ADDR,
				  A64_KVM_VGIC_V3_ADDR_TYPE_DIST, NULL),
			 0);

	/* nr_irqs */
	uint32_t bad[] = { 32, 48, 1024, 100, 2048 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(gic_attr(e, dev, KVM_SET_DEVICE_ATTR,
					  A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &bad[i]),
				 -EINVAL);
	n = 992;
	assert_int_equal(gic_attr(e, dev, KVM_SET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0,
				  &n),
			 0);
	n = 64;
	assert_int_equal(gic_attr(e, dev, KVM_SET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0,
				  &n),
			 -EBUSY);
	assert_int_equal(gic_attr(e, dev, KVM_GET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0,
				  &n),
			 0);
	assert_int_equal(n, 992);

	/* misc */
	assert_int_equal(gic_attr(e, dev, KVM_SET_DEVICE_ATTR, 1, 0, &n), -ENXIO);
	assert_int_equal(gic_attr(e, dev, KVM_HAS_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_CTRL, 7,
				  NULL),
			 -ENXIO);
	assert_int_equal(sys_ioctl(&e->s, dev, KVM_RUN, 0), -ENOTTY);

	/* init; vCPUs can no longer be created; nr_irqs is frozen */
	assert_int_equal(gic_init(e, dev), 0);
	assert_int_equal(gic_init(e, dev), 0);
	assert_int_equal(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 1), -EBUSY);

	struct mock_kvm_vgic_info g;
	assert_int_equal(mock_kvm_vgic(e->m, &g), 0);
	assert_true(g.created && g.initialised && g.dist_set && g.redist_set && g.nr_irqs_set);
	assert_int_equal(g.dist, DIST);
	assert_int_equal(g.redist, REDIST);
	assert_int_equal(g.nr_irqs, 992);
	assert_int_equal(g.fd, dev);
	assert_false(g.ready);
}

static void test_vgic_first_run(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);
	int dev = create_gic(e);
	mock_kvm_set_idle(e->m, -1, MOCK_KVM_IDLE_SHUTDOWN);

	/* Linux checks the vGIC at the first KVM_RUN, in this order */
	assert_int_equal(run(e, fd), -ENXIO); /* no redistributor */
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_REDIST, REDIST), 0);
	assert_int_equal(run(e, fd), -ENXIO); /* no distributor */
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_DIST, DIST), 0);
	assert_int_equal(run(e, fd), -EBUSY); /* not initialised */
	assert_int_equal(gic_init(e, dev), 0);
	struct mock_kvm_vgic_info g;
	assert_int_equal(mock_kvm_vgic(e->m, &g), 0);
	assert_int_equal(g.nr_irqs, MOCK_KVM_DEFAULT_NR_IRQS);
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(mock_kvm_vgic(e->m, &g), 0);
	assert_true(g.ready);
	uint32_t n = 128;
	assert_int_equal(gic_attr(e, dev, KVM_SET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0,
				  &n),
			 -EBUSY);
}

static void test_vgic_after_run_and_vcpu_overlap(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);

	/* addresses first, then a vCPU whose redistributor would hit the distributor */
	int dev = create_gic(e);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_DIST, REDIST + 0x20000), 0);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_REDIST, REDIST), 0);
	assert_int_equal(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 1), -EINVAL);
	assert_int_equal(sys_close(&e->s, dev), 0);
	assert_int_equal(sys_close(&e->s, fd), 0);
	assert_int_equal(sys_close(&e->s, e->vm), 0);

	/* a vGIC cannot be created once a vCPU has run */
	e->vm = sys_ioctl(&e->s, e->kvm, KVM_CREATE_VM, 0);
	assert_true(e->vm >= 0);
	fd = vcpu_ready(e, 0, &r);
	mock_kvm_script_system_event(e->m, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(create_gic(e), -EBUSY);
	mock_kvm_set_cap(e->m, KVM_CAP_IRQCHIP, 0);
	assert_int_equal(create_gic(e), -ENODEV);
}

/* ---- interrupts ---- */

static void test_irq_line(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	vcpu_ready(e, 0, &r);
	vcpu_ready(e, 5, &r);
	const uint32_t ppi = ((uint32_t)A64_KVM_ARM_IRQ_TYPE_PPI << 24);

	/* userspace irqchip: CPU lines only */
	assert_int_equal(irq_line(e, a64_irq_line_spi(3), 1), -ENXIO);
	assert_int_equal(irq_line(e, (1U << 16) | 0, 1), 0);
	assert_int_equal(irq_line(e, (2U << 16) | 0, 1), -EINVAL);
	assert_int_equal(irq_line(e, 2, 1), -EINVAL);

	int dev = create_gic(e);
	assert_int_equal(irq_line(e, (1U << 16) | 0, 1), -ENXIO);
	assert_int_equal(irq_line(e, a64_irq_line_spi(3), 1), -EBUSY);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_DIST, DIST), 0);
	assert_int_equal(gic_addr(e, dev, A64_KVM_VGIC_V3_ADDR_TYPE_REDIST, REDIST), 0);
	uint32_t n = 96;
	gic_attr(e, dev, KVM_SET_DEVICE_ATTR, A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &n);
	assert_int_equal(gic_init(e, dev), 0);

	assert_int_equal(irq_line(e, a64_irq_line_spi(3), 1), 0);
	assert_int_equal(mock_kvm_irq_level(e->m, 35), 1);
	assert_int_equal(irq_line(e, a64_irq_line_spi(3), 0), 0);
	assert_int_equal(mock_kvm_irq_level(e->m, 35), 0);
	assert_int_equal(irq_line(e, a64_irq_line_spi(63), 7), 0); /* any non-zero level is 1 */
	assert_int_equal(mock_kvm_irq_level(e->m, 95), 1);
	assert_int_equal(irq_line(e, a64_irq_line_spi(64), 1), -EINVAL); /* INTID 96 >= 96 */
	assert_int_equal(irq_line(e, ((uint32_t)A64_KVM_ARM_IRQ_TYPE_SPI << 24) | 31, 1), -EINVAL);
	assert_int_equal(irq_line(e, 7U << 24, 1), -EINVAL);
	/* PPI by vCPU index (creation order), not id */
	assert_int_equal(irq_line(e, ppi | (1U << 16) | 27, 1), 0);
	assert_int_equal(mock_kvm_ppi_level(e->m, 1, 27), 1);
	assert_int_equal(mock_kvm_ppi_level(e->m, 0, 27), 0);
	assert_int_equal(irq_line(e, ppi | (2U << 16) | 27, 1), -EINVAL);
	assert_int_equal(irq_line(e, ppi | 15, 1), -EINVAL);
	assert_int_equal(mock_kvm_irq_level(e->m, 20), -EINVAL);

	assert_int_equal(mock_kvm_nr_irq_events(e->m), 5);
	struct mock_kvm_irq_event ev;
	assert_int_equal(mock_kvm_irq_event(e->m, 1, &ev), 0);
	assert_int_equal(ev.type, A64_KVM_ARM_IRQ_TYPE_SPI);
	assert_int_equal(ev.intid, 35);
	assert_int_equal(ev.level, 1);
	assert_false(ev.from_irqfd);
	assert_int_equal(mock_kvm_count_irq(e->m, 35, -1), 2);
	assert_int_equal(mock_kvm_count_irq(e->m, 35, 0), 1);
	assert_int_equal(mock_kvm_irq_event(e->m, 9, &ev), -ENOENT);
}

static void test_irqfd(void **state)
{
	struct env *e = *state;
	int efd = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	int rfd = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	struct kvm_irqfd a = { .fd = (uint32_t)efd, .gsi = 4 };
	struct mock_kvm_irqfd info;
	uint64_t one = 1, cnt;

	assert_true(efd >= 0 && rfd >= 0);
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &a), -EAGAIN); /* no vGIC yet */
	struct kvm_run *r;
	vcpu_ready(e, 0, &r);
	gic_ready(e);
	a.flags = 1U << 5;
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &a), -EINVAL);
	a.flags = 0;
	a.fd = 999;
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &a), -EBADF);
	a.fd = (uint32_t)e->vm;
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &a), -EINVAL);
	a.fd = (uint32_t)efd;
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &a), 0);
	a.gsi = 5;
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &a), -EBUSY); /* fd in use */

	/* a resample irqfd */
	int efd2 = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	struct kvm_irqfd b = { .fd = (uint32_t)efd2, .gsi = 6, .flags = KVM_IRQFD_FLAG_RESAMPLE,
			       .resamplefd = (uint32_t)rfd };
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &b), 0);
	assert_int_equal(mock_kvm_nr_irqfds(e->m), 2);
	assert_int_equal(mock_kvm_irqfd_by_gsi(e->m, 6, &info), 0);
	assert_int_equal(info.resamplefd, rfd);
	assert_int_equal(mock_kvm_irqfd(e->m, 0, &info), 0);
	assert_int_equal(info.fd, efd);
	assert_int_equal(info.resamplefd, -1);

	/* injection */
	assert_int_equal(mock_kvm_irqfd_poll(e->m), 0);
	assert_int_equal(sys_write(&e->s, efd, &one, 8), 8);
	assert_int_equal(sys_write(&e->s, efd2, &one, 8), 8);
	assert_int_equal(mock_kvm_irqfd_poll(e->m), 2);
	assert_int_equal(mock_kvm_count_irq(e->m, 36, 1), 1); /* pulse */
	assert_int_equal(mock_kvm_irq_level(e->m, 36), 0);
	assert_int_equal(mock_kvm_irq_level(e->m, 38), 1); /* held until resample */
	assert_int_equal(mock_kvm_irqfd_resample(e->m, 6), 0);
	assert_int_equal(mock_kvm_irq_level(e->m, 38), 0);
	assert_int_equal(sys_read(&e->s, rfd, &cnt, 8), 8);
	assert_int_equal(cnt, 1);
	assert_int_equal(mock_kvm_irqfd_resample(e->m, 4), -ENOENT);

	/* deassign (a missing one is fine, as in Linux) */
	a.gsi = 4;
	a.flags = KVM_IRQFD_FLAG_DEASSIGN;
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &a), 0);
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &a), 0);
	assert_int_equal(mock_kvm_nr_irqfds(e->m), 1);
	assert_int_equal(mock_kvm_irqfd_by_gsi(e->m, 4, &info), -ENOENT);

	mock_kvm_set_cap(e->m, KVM_CAP_IRQFD, 0);
	assert_int_equal(sys_ioctl_ptr(&e->s, e->vm, KVM_IRQFD, &b), -EINVAL);
}

static int ioeventfd(struct env *e, uint64_t addr, uint32_t len, int fd, uint32_t flags,
		     uint64_t dm)
{
	struct kvm_ioeventfd a = { .datamatch = dm, .addr = addr, .len = len, .fd = fd,
				   .flags = flags };
	return sys_ioctl_ptr(&e->s, e->vm, KVM_IOEVENTFD, &a);
}

static void test_ioeventfd(void **state)
{
	struct env *e = *state;
	int efd = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	int efd2 = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	const uint32_t DM = KVM_IOEVENTFD_FLAG_DATAMATCH;
	const uint64_t Q = 0x0a000050;
	uint64_t cnt;

	assert_int_equal(ioeventfd(e, Q, 3, efd, 0, 0), -EINVAL);
	assert_int_equal(ioeventfd(e, Q, 0, efd, DM, 0), -EINVAL);
	assert_int_equal(ioeventfd(e, ~0ULL - 1, 4, efd, 0, 0), -EINVAL);
	assert_int_equal(ioeventfd(e, Q, 4, efd, 1U << 7, 0), -EINVAL);
	assert_int_equal(ioeventfd(e, Q, 4, e->kvm, 0, 0), -EINVAL);
	assert_int_equal(ioeventfd(e, Q, 4, -1, 0, 0), -EBADF);

	assert_int_equal(ioeventfd(e, Q, 4, efd, DM, 0), 0);
	assert_int_equal(ioeventfd(e, Q, 4, efd2, DM, 0), -EEXIST); /* same match */
	assert_int_equal(ioeventfd(e, Q, 4, efd2, 0, 0), -EEXIST);  /* wildcard collides */
	assert_int_equal(ioeventfd(e, Q, 4, efd2, DM, 1), 0);	     /* other datamatch */
	assert_int_equal(ioeventfd(e, Q, 0, efd2, 0, 0), -EEXIST);  /* len 0 collides */
	assert_int_equal(ioeventfd(e, Q, 4, efd2, DM | KVM_IOEVENTFD_FLAG_PIO, 1), 0); /* PIO bus */
	assert_int_equal(mock_kvm_nr_ioeventfds(e->m), 3);

	/* a scripted guest write that matches is absorbed by the ioeventfd */
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);
	mock_kvm_script_mmio_write(e->m, 0, Q, 1, 4);  /* -> efd2 */
	mock_kvm_script_mmio_write(e->m, 0, Q, 0, 4);  /* -> efd */
	mock_kvm_script_mmio_write(e->m, 0, Q, 2, 4);  /* no match: exit */
	mock_kvm_script_mmio_write(e->m, 0, Q, 0, 2);  /* other length: exit */
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->exit_reason, KVM_EXIT_MMIO);
	assert_int_equal(r->mmio.data[0], 2);
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(r->mmio.len, 2);
	assert_int_equal(sys_read(&e->s, efd, &cnt, 8), 8);
	assert_int_equal(sys_read(&e->s, efd2, &cnt, 8), 8);
	struct mock_kvm_ioeventfd info;
	assert_int_equal(mock_kvm_ioeventfd(e->m, 0, &info), 0);
	assert_int_equal(info.addr, Q);
	assert_int_equal(info.hits, 1);

	/* deassign must match exactly */
	assert_int_equal(ioeventfd(e, Q, 4, efd, DM | KVM_IOEVENTFD_FLAG_DEASSIGN, 5), -ENOENT);
	assert_int_equal(ioeventfd(e, Q, 4, efd, KVM_IOEVENTFD_FLAG_DEASSIGN, 0), -ENOENT);
	assert_int_equal(ioeventfd(e, Q, 4, efd, DM | KVM_IOEVENTFD_FLAG_DEASSIGN, 0), 0);
	assert_int_equal(mock_kvm_nr_ioeventfds(e->m), 2);
	assert_int_equal(ioeventfd(e, Q, 4, efd, 0, 0), -EEXIST); /* wildcard vs efd2 (dm 1) */
}

/* ---- error injection, call log, fds ---- */

static void test_error_injection(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);

	assert_int_equal(mock_kvm_fail_next(e->m, KVM_CHECK_EXTENSION, 5), -EINVAL);
	assert_int_equal(mock_kvm_fail_nth(e->m, KVM_CHECK_EXTENSION, 0, -EIO), -EINVAL);
	assert_int_equal(mock_kvm_fail_nth(e->m, KVM_CHECK_EXTENSION, 3, -EIO), 0);
	for (int i = 1; i <= 4; i++)
		assert_int_equal(sys_ioctl(&e->s, e->kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD),
				 i == 3 ? -EIO : 1);

	/* an injected KVM_RUN failure consumes nothing */
	mock_kvm_script_system_event(e->m, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(mock_kvm_fail_next(e->m, KVM_RUN, -EFAULT), 0);
	assert_int_equal(run(e, fd), -EFAULT);
	assert_int_equal(mock_kvm_script_pending(e->m, 0), 1);
	assert_int_equal(run(e, fd), 0);

	/* sticky until cleared */
	assert_int_equal(mock_kvm_fail_always(e->m, KVM_CREATE_VCPU, -ENOMEM), 0);
	assert_int_equal(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 1), -ENOMEM);
	assert_int_equal(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 1), -ENOMEM);
	mock_kvm_fail_clear(e->m);
	assert_true(sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 1) >= 0);

	/* non-ioctl ops */
	int err = 0;
	mock_kvm_fail_next(e->m, MOCK_KVM_OP_MMAP, -ENOMEM);
	assert_null(sys_mmap(&e->s, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &err));
	assert_int_equal(err, -ENOMEM);
	mock_kvm_fail_next(e->m, MOCK_KVM_OP_EVENTFD, -EMFILE);
	assert_int_equal(sys_eventfd(&e->s, 0, 0), -EMFILE);
	mock_kvm_fail_next(e->m, MOCK_KVM_OP_OPEN, -EACCES);
	assert_int_equal(sys_open(&e->s, "/dev/kvm", O_RDWR), -EACCES);
	mock_kvm_fail_next(e->m, MOCK_KVM_OP_CLOSE, -EINTR);
	assert_int_equal(sys_close(&e->s, fd), -EINTR);
	assert_int_equal(mock_kvm_open_fds_kind(e->m, MOCK_KVM_FD_VCPU), 2); /* still open */

	assert_int_equal(mock_kvm_count_calls_ret(e->m, KVM_CREATE_VCPU, -ENOMEM), 2);
	size_t n = mock_kvm_nr_calls(e->m);
	struct mock_kvm_call c;
	assert_int_equal(mock_kvm_call_at(e->m, n - 1, &c), 0);
	assert_int_equal(c.req, MOCK_KVM_OP_CLOSE);
	assert_true(c.injected);
	assert_int_equal(c.kind, MOCK_KVM_FD_VCPU);
	assert_int_equal(c.vcpu_id, 0);
}

static void test_call_log(void **state)
{
	struct env *e = *state;
	struct mock_kvm_call c;

	assert_int_equal(mock_kvm_count_calls(e->m, MOCK_KVM_OP_OPEN), 1);
	assert_int_equal(mock_kvm_count_calls(e->m, KVM_CREATE_VM), 1);
	assert_int_equal(mock_kvm_call_at(e->m, 1, &c), 0);
	assert_int_equal(c.req, KVM_CREATE_VM);
	assert_int_equal(c.kind, MOCK_KVM_FD_SYSTEM);
	assert_int_equal(c.fd, e->kvm);
	assert_int_equal(c.result, e->vm);
	assert_int_equal(c.vcpu_id, -1);
	assert_false(c.injected);
	assert_int_equal(mock_kvm_call_at(e->m, 2, &c), -ENOENT);

	int fd = sys_ioctl(&e->s, e->vm, KVM_CREATE_VCPU, 2);
	sys_ioctl(&e->s, fd, KVM_RUN, 0);
	assert_int_equal(mock_kvm_count_calls(e->m, KVM_RUN), 1);
	assert_int_equal(mock_kvm_count_calls_ret(e->m, KVM_RUN, -ENOEXEC), 1);
	assert_int_equal(mock_kvm_call_at(e->m, 3, &c), 0);
	assert_int_equal(c.vcpu_id, 2);
	assert_int_equal(c.kind, MOCK_KVM_FD_VCPU);
	/* calls on unknown fds are logged too */
	assert_int_equal(sys_ioctl(&e->s, 12345, KVM_RUN, 0), -EBADF);
	assert_int_equal(mock_kvm_count_calls_ret(e->m, KVM_RUN, -EBADF), 1);
	mock_kvm_clear_calls(e->m);
	assert_int_equal(mock_kvm_nr_calls(e->m), 0);
}

static void test_fd_accounting(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;

	assert_int_equal(mock_kvm_open_fds(e->m), 2);
	int fd = vcpu_ready(e, 0, &r);
	int dev = gic_ready(e);
	int efd = sys_eventfd(&e->s, 0, 0);
	assert_int_equal(mock_kvm_open_fds(e->m), 5);
	assert_int_equal(mock_kvm_open_fds_kind(e->m, MOCK_KVM_FD_EVENTFD), 1);
	assert_int_equal(mock_kvm_open_fds_kind(e->m, MOCK_KVM_FD_SYSTEM), 1);

	/* the VM outlives its fd while vCPU/device fds are open */
	assert_int_equal(sys_close(&e->s, e->vm), 0);
	struct mock_kvm_vm_info vi;
	mock_kvm_vm(e->m, &vi);
	assert_true(vi.alive);
	assert_int_equal(sys_close(&e->s, e->vm), -EBADF);
	assert_int_equal(sys_close(&e->s, fd), 0);
	assert_int_equal(sys_close(&e->s, dev), 0);
	mock_kvm_vm(e->m, &vi);
	assert_false(vi.alive);
	/* state stays inspectable after the VM is gone */
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(e->m, 0, &v), 0);
	assert_int_equal(v.fd, -1);
	assert_int_equal(sys_close(&e->s, efd), 0);
	assert_int_equal(sys_munmap(&e->s, r, MOCK_KVM_VCPU_MMAP_SIZE), 0);
	assert_int_equal(sys_close(&e->s, e->kvm), 0);
	assert_int_equal(mock_kvm_open_fds(e->m), 0);
	assert_int_equal(mock_kvm_live_mappings(e->m), 0);
	assert_int_equal(mock_kvm_violations(e->m), 0);
}

static void test_files_and_fallback(void **state)
{
	struct env *e = *state;
	char path[] = "/tmp/test_mock_kvm_XXXXXX";
	int tfd = mkstemp(path);
	char buf[8] = { 0 };

	assert_true(tfd >= 0);
	close(tfd);
	assert_int_equal(sys_open(&e->s, path, O_RDWR), -ENOENT);
	assert_int_equal(mock_kvm_add_path(e->m, path), 0);
	int fd = sys_open(&e->s, path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(sys_pwrite(&e->s, fd, "abcd", 4, 10), 4);
	assert_int_equal(sys_pread(&e->s, fd, buf, 4, 10), 4);
	assert_string_equal(buf, "abcd");
	assert_int_equal(mock_kvm_open_fds_kind(e->m, MOCK_KVM_FD_FILE), 1);
	assert_int_equal(sys_close(&e->s, fd), 0);
	unlink(path);

	/* an adopted real fd */
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(mock_kvm_adopt_fd(e->m, p[1]), 0);
	assert_int_equal(mock_kvm_adopt_fd(e->m, p[1]), -EEXIST);
	assert_int_equal(sys_write(&e->s, p[1], "hi", 2), 2);
	assert_int_equal(read(p[0], buf, 2), 2);
	assert_int_equal(sys_close(&e->s, p[1]), 0);
	close(p[0]);

	/* unknown fds / paths go to the fallback seam when there is one */
	assert_int_equal(sys_read(&e->s, 999, buf, 1), -EBADF);
	struct sys real = sys_linux();
	mock_kvm_set_fallback(e->m, &real);
	int nfd = sys_open(&e->s, "/dev/null", O_RDONLY);
	assert_true(nfd >= 0);
	assert_int_equal(sys_read(&e->s, nfd, buf, 1), 0);
	assert_int_equal(sys_close(&e->s, nfd), 0);
	mock_kvm_set_fallback(e->m, NULL);
	assert_int_equal(sys_open(&e->s, "/dev/null", O_RDONLY), -ENOENT);
	assert_int_equal(mock_kvm_count_calls(e->m, MOCK_KVM_OP_READ), 1); /* only the -EBADF */
}

static void test_free_releases_everything(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;

	/* leave everything open: mock_kvm_free (teardown) must close/unmap it (ASan, fds) */
	vcpu_ready(e, 0, &r);
	gic_ready(e);
	uint8_t *ram = map_ram(e, PAGE);
	assert_int_equal(set_region(e, 0, 0, RAM_GPA, PAGE, ram), 0);
	sys_eventfd(&e->s, 0, 0);
	mock_kvm_script_guest_write(e->m, 0, RAM_GPA, "x", 1);
	mock_kvm_script_exit(e->m, 0, KVM_EXIT_HYPERCALL, "abc", 3);
	assert_int_equal(mock_kvm_open_fds(e->m), 5);
}

static int count_real_fds(void)
{
	int n = 0;
	char path[64];

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static void test_free_closes_real_fds(void **state)
{
	(void)state;
	int before = count_real_fds();
	struct env e = { 0 };
	e.m = mock_kvm_new();
	e.s = mock_kvm_sys(e.m);
	e.kvm = sys_open(&e.s, "/dev/kvm", O_RDWR);
	e.vm = sys_ioctl(&e.s, e.kvm, KVM_CREATE_VM, 0);
	struct kvm_run *r;
	vcpu_ready(&e, 0, &r);
	sys_eventfd(&e.s, 0, 0);
	assert_int_equal(count_real_fds(), before + 4);
	mock_kvm_free(e.m);
	assert_int_equal(count_real_fds(), before);
}

static void test_run_page_faults_after_munmap(void **state)
{
	struct env *e = *state;
	struct kvm_run *r;
	int fd = vcpu_ready(e, 0, &r);

	assert_int_equal(sys_munmap(&e->s, r, MOCK_KVM_VCPU_MMAP_SIZE), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		r->immediate_exit = 1; /* use after munmap: must fault */
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the mock itself still works with the page unmapped */
	mock_kvm_script_mmio_read(e->m, 0, 0x1000, 4);
	assert_int_equal(run(e, fd), 0);
	assert_int_equal(sys_close(&e->s, fd), 0);
	assert_int_equal(mock_kvm_nr_mmio_reads(e->m, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_system_fd),
		T(test_create_vm_types),
		T(test_memslot_rules),
		T(test_slot_limit_configurable),
		T(test_mappings),
		T(test_vcpu_create_rules),
		T(test_vcpu_init),
		T(test_one_reg),
		T(test_vcpu_mmap),
		T(test_scripted_exits),
		T(test_mmio_read_capture),
		T(test_immediate_exit),
		T(test_idle_modes),
		T(test_guest_write_and_call_steps),
		T(test_block_and_kick),
		T(test_block_immediate_exit_signal),
		T(test_block_wakes_on_script),
		T(test_block_step_release),
		T(test_misuse_during_run),
		T(test_vgic_device),
		T(test_vgic_first_run),
		T(test_vgic_after_run_and_vcpu_overlap),
		T(test_irq_line),
		T(test_irqfd),
		T(test_ioeventfd),
		T(test_error_injection),
		T(test_call_log),
		T(test_fd_accounting),
		T(test_files_and_fallback),
		T(test_free_releases_everything),
		T(test_run_page_faults_after_munmap),
		cmocka_unit_test(test_free_closes_real_fds),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
