/* Unit tests for core/vmm.c: input validation before KVM is touched, KVM
 * capability checks, every setup error path (injected) leaving nothing behind,
 * reboot on reset, and --dump-dtb without KVM. */
#include "vmm_fixture.h"

#include <errno.h>
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void create_and_destroy_leaves_nothing(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 2);
	assert_int_equal(fixture_create(&f), 0);
	assert_true(mock_kvm_open_fds(f.mock) > 0);
	fixture_teardown(&f); /* asserts no fds, mappings or violations remain */
}

static void bad_kernel_never_opens_kvm(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	free(f.cfg.kernel_path);
	f.cfg.kernel_path = strdup(f.initrd); /* not an Image */
	assert_int_equal(fixture_create(&f), -EINVAL);
	assert_non_null(strstr(f.err, f.initrd));
	assert_non_null(strstr(f.err, "not an arm64 Image"));
	assert_int_equal(mock_kvm_count_calls(f.mock, MOCK_KVM_OP_OPEN), 0);
	fixture_teardown(&f);
}

static void missing_initrd_is_named(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	free(f.cfg.initrd_path);
	f.cfg.initrd_path = strdup("/nonexistent/initrd.cpio");
	assert_int_equal(fixture_create(&f), -EINVAL);
	assert_non_null(strstr(f.err, "/nonexistent/initrd.cpio"));
	assert_int_equal(mock_kvm_count_calls(f.mock, MOCK_KVM_OP_OPEN), 0);
	fixture_teardown(&f);
}

static void memory_too_small_is_named(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	/* a kernel that claims 40 MiB of image_size cannot fit in 16 MiB */
	FILE *fp = fopen(f.kernel, "r+b");
	assert_non_null(fp);
	uint8_t sz[8] = { 0, 0, 0x80, 0x02, 0, 0, 0, 0 }; /* 0x02800000 = 40 MiB */
	assert_int_equal(fseek(fp, 16, SEEK_SET), 0);
	assert_int_equal(fwrite(sz, 1, 8, fp), 8);
	fclose(fp);
	f.cfg.mem_mib = 16;
	assert_int_equal(fixture_create(&f), -EINVAL);
	assert_non_null(strstr(f.err, "too small"));
	assert_non_null(strstr(f.err, "size_mib=16"));
	assert_non_null(strstr(f.err, "needs at least"));
	assert_int_equal(mock_kvm_count_calls(f.mock, MOCK_KVM_OP_OPEN), 0);
	/* the same kernel fits in 64 MiB */
	f.cfg.mem_mib = 64;
	assert_int_equal(fixture_create(&f), 0);
	fixture_teardown(&f);
}

static void no_kvm_device_is_explained(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	mock_kvm_fail_next(f.mock, MOCK_KVM_OP_OPEN, -ENOENT);
	int r = fixture_create(&f);
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(f.err, "/dev/kvm"));
	fixture_teardown(&f);
}

static void too_many_vcpus_for_kvm(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 8);
	mock_kvm_set_max_vcpus(f.mock, 4);
	assert_true(fixture_create(&f) < 0);
	assert_non_null(strstr(f.err, "at most 4 vCPUs"));
	fixture_teardown(&f);
}

static void missing_capability_is_named(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	mock_kvm_set_cap(f.mock, KVM_CAP_IMMEDIATE_EXIT, 0);
	assert_true(fixture_create(&f) < 0);
	assert_non_null(strstr(f.err, "KVM_CAP_IMMEDIATE_EXIT"));
	fixture_teardown(&f);
}

/* Every KVM call of VM setup can fail: the error is reported, nothing leaks. */
static void every_setup_failure_cleans_up(void **state)
{
	(void)state;
	static const struct {
		unsigned long req;
		unsigned int nth;
		const char *what;
	} cases[] = {
		{ KVM_GET_API_VERSION, 1, "API version" },
		{ KVM_GET_VCPU_MMAP_SIZE, 1, "MMAP_SIZE" },
		{ KVM_CREATE_VM, 1, "KVM_CREATE_VM" },
		{ MOCK_KVM_OP_MMAP, 1, "guest memory" },
		{ KVM_SET_USER_MEMORY_REGION, 1, "KVM_SET_USER_MEMORY_REGION" },
		{ A64_KVM_ARM_PREFERRED_TARGET, 1, "PREFERRED_TARGET" },
		{ KVM_CREATE_DEVICE, 1, "GICv3" },
		{ KVM_SET_DEVICE_ATTR, 1, "GICv3" },
		{ KVM_SET_DEVICE_ATTR, 2, "GICv3" },
		{ KVM_CREATE_VCPU, 1, "KVM_CREATE_VCPU" },
		{ KVM_CREATE_VCPU, 2, "KVM_CREATE_VCPU" },
		{ MOCK_KVM_OP_MMAP, 2, "kvm_run" },
		{ MOCK_KVM_OP_MMAP, 3, "kvm_run" },
		{ A64_KVM_ARM_VCPU_INIT, 1, "VCPU_INIT" },
		{ A64_KVM_ARM_VCPU_INIT, 2, "VCPU_INIT" },
		{ KVM_SET_ONE_REG, 1, "boot register" },
		{ KVM_SET_ONE_REG, 6, "boot register" },
		{ KVM_SET_DEVICE_ATTR, 3, "initialise the GICv3" },
		{ KVM_SET_DEVICE_ATTR, 4, "initialise the GICv3" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmm_fixture f;
		fixture_setup(&f, 2);
		assert_int_equal(mock_kvm_fail_nth(f.mock, cases[i].req, cases[i].nth, -EIO), 0);
		int r = fixture_create(&f);
		if (r == 0 || !strstr(f.err, cases[i].what))
			fail_msg("case %zu (%s #%u): r=%d err='%s'", i, cases[i].what, cases[i].nth,
				 r, f.err);
		assert_null(f.vmm);
		fixture_teardown(&f);
	}
}

static void reboot_on_reset_builds_a_new_vm(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 2);
	f.cfg.on_reset = VMM_RESET_REBOOT;
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_RESET);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(vmm_run(f.vmm), VMM_EXIT_POWEROFF);
	assert_int_equal(mock_kvm_count_calls(f.mock, KVM_CREATE_VM), 2);
	assert_int_equal(f.vmm->reboots, 1);
	/* the second VM got the kernel again */
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(f.mock, 0, &v), 0);
	uint8_t b;
	assert_int_equal(mock_kvm_guest_read(f.mock, v.pc + 100, &b, 1), 0);
	assert_int_equal(b, fixture_kernel_byte(100));
	fixture_teardown(&f);
}

static void reboot_limit_gives_up(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	f.cfg.on_reset = VMM_RESET_REBOOT;
	f.cfg.max_reboots = 2;
	assert_int_equal(fixture_create(&f), 0);
	for (int i = 0; i < 3; i++)
		mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_RESET);
	assert_int_equal(vmm_run(f.vmm), VMM_EXIT_FAILURE);
	assert_int_equal(mock_kvm_count_calls(f.mock, KVM_CREATE_VM), 3);
	fixture_teardown(&f);
}

static void dump_dtb_needs_no_kvm(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 3);
	char path[128];
	snprintf(path, sizeof(path), "%s/out.dtb", f.dir);
	char err[256];
	assert_int_equal(vmm_dump_dtb(&f.cfg, path, err, sizeof(err)), 0);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	static uint8_t buf[65536];
	size_t n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	unlink(path);
	assert_true(n > 0);
	assert_int_equal(fdt_check_header(buf), 0);
	assert_int_equal(fdt_totalsize(buf), n);
	int cpus = fdt_path_offset(buf, "/cpus"), node, count = 0;
	fdt_for_each_subnode(node, buf, cpus)
		count++;
	assert_int_equal(count, 3);
	/* unwritable destination: a clear error naming it */
	assert_int_equal(vmm_dump_dtb(&f.cfg, "/nonexistent/dir/x.dtb", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "/nonexistent/dir/x.dtb"));
	fixture_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_and_destroy_leaves_nothing),
		cmocka_unit_test(bad_kernel_never_opens_kvm),
		cmocka_unit_test(missing_initrd_is_named),
		cmocka_unit_test(memory_too_small_is_named),
		cmocka_unit_test(no_kvm_device_is_explained),
		cmocka_unit_test(too_many_vcpus_for_kvm),
		cmocka_unit_test(missing_capability_is_named),
		cmocka_unit_test(every_setup_failure_cleans_up),
		cmocka_unit_test(reboot_on_reset_builds_a_new_vm),
		cmocka_unit_test(reboot_limit_gives_up),
		cmocka_unit_test(dump_dtb_needs_no_kvm),
	};
	return cmocka_run_group_tests_name("vmm", tests, NULL, NULL);
}
