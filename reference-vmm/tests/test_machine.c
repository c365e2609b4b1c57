/* Unit tests for arch/aarch64/machine.c against mock KVM: vCPU init features and
 * boot registers, vGIC placement and init, RAM memslot, loaded kernel/initrd/DTB. */
#include "arch/aarch64/fdt.h"
#include "arch/aarch64/layout.h"
#include "vmm_fixture.h"

#include <errno.h>
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void check_vm(unsigned int nr_vcpus)
{
	struct vmm_fixture f;
	fixture_setup(&f, nr_vcpus);
	assert_int_equal(fixture_create(&f), 0);

	/* one RAM slot at the RAM base, the configured size */
	assert_int_equal(mock_kvm_nr_slots(f.mock), 1);
	struct kvm_userspace_memory_region slot;
	assert_int_equal(mock_kvm_slot(f.mock, 0, &slot), 0);
	assert_int_equal(slot.guest_phys_addr, A64_RAM_BASE);
	assert_int_equal(slot.memory_size, 64ULL << 20);

	/* vGIC: addresses, nr_irqs, initialised */
	struct mock_kvm_vgic_info gic;
	assert_int_equal(mock_kvm_vgic(f.mock, &gic), 0);
	assert_true(gic.created);
	assert_int_equal(gic.dist, A64_GICD_BASE);
	assert_int_equal(gic.redist, A64_GICR_BASE);
	assert_int_equal(gic.nr_irqs, A64_GIC_NR_IRQS);
	assert_true(gic.initialised);

	/* vCPUs: all PSCI 0.2, secondaries powered off, vCPU 0 boot registers */
	assert_int_equal(mock_kvm_nr_vcpus(f.mock), (int)nr_vcpus);
	uint64_t dtb = 0;
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		struct mock_kvm_vcpu_info v;
		assert_int_equal(mock_kvm_vcpu(f.mock, i, &v), 0);
		assert_true(v.initialised);
		assert_true(v.features & (1u << A64_KVM_ARM_VCPU_PSCI_0_2));
		if (i == 0) {
			assert_false(v.features & (1u << A64_KVM_ARM_VCPU_POWER_OFF));
			assert_int_equal(v.pc, A64_RAM_BASE + FIX_TEXT_OFFSET);
			assert_int_equal(v.pstate, A64_PSTATE_EL1H_DAIF);
			assert_int_equal(v.x[1], 0);
			dtb = v.x[0];
		} else {
			assert_true(v.features & (1u << A64_KVM_ARM_VCPU_POWER_OFF));
		}
	}

	/* kernel bytes at the entry point */
	uint8_t buf[256];
	assert_int_equal(mock_kvm_guest_read(f.mock, A64_RAM_BASE + FIX_TEXT_OFFSET + 4096, buf,
					     sizeof(buf)),
			 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], fixture_kernel_byte(4096 + i));

	/* the DTB at x0 is valid and describes this VM */
	assert_true(dtb >= A64_RAM_BASE && dtb < A64_RAM_BASE + (64ULL << 20));
	static uint8_t fdt[A64_FDT_BUF_SIZE];
	assert_int_equal(mock_kvm_guest_read(f.mock, dtb, fdt, sizeof(fdt)), 0);
	assert_int_equal(fdt_check_header(fdt), 0);
	int chosen = fdt_path_offset(fdt, "/chosen");
	assert_true(chosen >= 0);
	const char *args = fdt_getprop(fdt, chosen, "bootargs", NULL);
	assert_string_equal(args, "console=ttyAMA0 fixture=1");
	/* FDT properties are only 4-byte aligned: copy before converting */
	const void *start = fdt_getprop(fdt, chosen, "linux,initrd-start", NULL);
	const void *end = fdt_getprop(fdt, chosen, "linux,initrd-end", NULL);
	assert_non_null(start);
	assert_non_null(end);
	fdt64_t be_start, be_end;
	memcpy(&be_start, start, 8);
	memcpy(&be_end, end, 8);
	uint64_t rd = fdt64_to_cpu(be_start);
	assert_int_equal(fdt64_to_cpu(be_end) - rd, FIX_INITRD_SIZE);
	assert_int_equal(mock_kvm_guest_read(f.mock, rd, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], fixture_initrd_byte(i));
	int cpus = fdt_path_offset(fdt, "/cpus");
	int n = 0, node;
	fdt_for_each_subnode(node, fdt, cpus)
		n++;
	assert_int_equal(n, (int)nr_vcpus);

	fixture_teardown(&f);
}

static void vm_setup_one_vcpu(void **state)
{
	(void)state;
	check_vm(1);
}

static void vm_setup_eight_vcpus(void **state)
{
	(void)state;
	check_vm(8);
}

/* the DT's MPIDRs must be the ones KVM gives the vCPUs */
static void dt_mpidr_matches_kvm(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 8);
	assert_int_equal(fixture_create(&f), 0);
	for (unsigned int i = 0; i < 8; i++) {
		struct mock_kvm_vcpu_info v;
		assert_int_equal(mock_kvm_vcpu(f.mock, i, &v), 0);
		assert_int_equal(v.mpidr & 0xffffffULL, a64_vcpu_mpidr(i));
	}
	fixture_teardown(&f);
}

static void no_psci_cap_is_an_error(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	mock_kvm_set_cap(f.mock, KVM_CAP_ARM_PSCI_0_2, 0);
	assert_true(fixture_create(&f) < 0);
	assert_non_null(strstr(f.err, "PSCI"));
	fixture_teardown(&f);
}

static void non_arm_host_is_explained(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	mock_kvm_fail_always(f.mock, A64_KVM_ARM_PREFERRED_TARGET, -EINVAL);
	assert_true(fixture_create(&f) < 0);
	assert_non_null(strstr(f.err, "arm64"));
	fixture_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vm_setup_one_vcpu),
		cmocka_unit_test(vm_setup_eight_vcpus),
		cmocka_unit_test(dt_mpidr_matches_kvm),
		cmocka_unit_test(no_psci_cap_is_an_error),
		cmocka_unit_test(non_arm_host_is_explained),
	};
	return cmocka_run_group_tests_name("machine", tests, NULL, NULL);
}
