/* Unit tests for arch/aarch64/fdt.c: build the guest DTB and read it back with
 * libfdt (nodes, reg/interrupts/phandles, /chosen), error paths, and dtc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/aarch64/fdt.h"
#include "arch/aarch64/layout.h"
#include "vmm/config.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RAM_SIZE (512ULL << 20)
#define INITRD_START (A64_RAM_BASE + 0x1f000000ULL)
#define INITRD_END (INITRD_START + 0x123456ULL)
#define CMDLINE "console=ttyAMA0 earlycon root=/dev/vda rw"

static struct a64_fdt_params params(unsigned int nr_vcpus, bool initrd)
{
	return (struct a64_fdt_params){
		.nr_vcpus = nr_vcpus,
		.ram_base = A64_RAM_BASE,
		.ram_size = RAM_SIZE,
		.cmdline = CMDLINE,
		.initrd_start = initrd ? INITRD_START : 0,
		.initrd_end = initrd ? INITRD_END : 0,
	};
}

/* Build into a heap buffer of exactly A64_FDT_BUF_SIZE (ASan sees overruns). */
static void *build(const struct a64_fdt_params *p)
{
	void *buf = malloc(A64_FDT_BUF_SIZE);
	assert_non_null(buf);
	memset(buf, 0xa5, A64_FDT_BUF_SIZE);
	int r = a64_fdt_build(buf, A64_FDT_BUF_SIZE, p);
	if (r)
		fail_msg("a64_fdt_build failed: %d", r);
	assert_int_equal(fdt_check_header(buf), 0);
	assert_true(fdt_totalsize(buf) <= A64_FDT_BUF_SIZE);
	return buf;
}

static int node(const void *fdt, const char *path)
{
	int off = fdt_path_offset(fdt, path);
	if (off < 0)
		fail_msg("node %s not found: %s", path, fdt_strerror(off));
	return off;
}

static const void *prop(const void *fdt, int off, const char *name, int *len)
{
	const void *v = fdt_getprop(fdt, off, name, len);
	if (!v)
		fail_msg("property %s missing in %s", name, fdt_get_name(fdt, off, NULL));
	return v;
}

static void assert_prop_str(const void *fdt, int off, const char *name, const char *want)
{
	int len;
	const char *v = prop(fdt, off, name, &len);
	assert_int_equal(len, (int)strlen(want) + 1);
	assert_string_equal(v, want);
}

static uint32_t prop_u32(const void *fdt, int off, const char *name)
{
	int len;
	const fdt32_t *v = prop(fdt, off, name, &len);
	assert_int_equal(len, 4);
	return fdt32_to_cpu(*v);
}

/* Compare a property against a list of 32-bit cells. */
static void assert_prop_cells(const void *fdt, int off, const char *name, const uint32_t *cells,
			      int n)
{
	int len;
	const fdt32_t *v = prop(fdt, off, name, &len);
	if (len != n * 4)
		fail_msg("%s: %d bytes, want %d", name, len, n * 4);
	for (int i = 0; i < n; i++)
		if (fdt32_to_cpu(v[i]) != cells[i])
			fail_msg("%s cell %d: 0x%x, want 0x%x", name, i, fdt32_to_cpu(v[i]),
				 cells[i]);
}

static uint64_t cells_u64(const fdt32_t *v)
{
	return (uint64_t)fdt32_to_cpu(v[0]) << 32 | fdt32_to_cpu(v[1]);
}

#define HI(x) ((uint32_t)((uint64_t)(x) >> 32))
#define LO(x) ((uint32_t)(x))

static void check_root_and_memory(const void *fdt)
{
	assert_int_equal(fdt_check_header(fdt), 0);
	int len;
	const char *compat = prop(fdt, 0, "compatible", &len);
	assert_string_equal(compat, "linux,dummy-virt");
	assert_int_equal(prop_u32(fdt, 0, "#address-cells"), 2);
	assert_int_equal(prop_u32(fdt, 0, "#size-cells"), 2);

	int mem = node(fdt, "/memory@40000000");
	assert_prop_str(fdt, mem, "device_type", "memory");
	const uint32_t reg[] = { HI(A64_RAM_BASE), LO(A64_RAM_BASE), HI(RAM_SIZE), LO(RAM_SIZE) };
	assert_prop_cells(fdt, mem, "reg", reg, 4);
}

static void check_cpus(const void *fdt, unsigned int n)
{
	int cpus = node(fdt, "/cpus");
	assert_int_equal(prop_u32(fdt, cpus, "#address-cells"), 2);
	assert_int_equal(prop_u32(fdt, cpus, "#size-cells"), 0);
	unsigned int count = 0;
	int child;
	fdt_for_each_subnode(child, fdt, cpus) {
		/* in index order: the i-th node is vCPU i */
		uint64_t mpidr = a64_vcpu_mpidr(count);
		char name[32];
		snprintf(name, sizeof(name), "cpu@%llx", (unsigned long long)mpidr);
		assert_string_equal(fdt_get_name(fdt, child, NULL), name);
		int len;
		const fdt32_t *reg = prop(fdt, child, "reg", &len);
		assert_int_equal(len, 8);
		assert_int_equal(cells_u64(reg), mpidr);
		assert_prop_str(fdt, child, "device_type", "cpu");
		assert_prop_str(fdt, child, "enable-method", "psci");
		assert_non_null(fdt_getprop(fdt, child, "compatible", NULL));
		count++;
	}
	assert_int_equal(count, n);
	/* and each one by its path */
	for (unsigned int i = 0; i < n; i++) {
		char path[48];
		snprintf(path, sizeof(path), "/cpus/cpu@%llx",
			 (unsigned long long)a64_vcpu_mpidr(i));
		node(fdt, path);
	}
}

static void check_psci(const void *fdt)
{
	int psci = node(fdt, "/psci");
	assert_int_equal(fdt_node_check_compatible(fdt, psci, "arm,psci-0.2"), 0);
	assert_prop_str(fdt, psci, "method", "hvc");
}

static int find_compatible(const void *fdt, const char *compat)
{
	int off = fdt_node_offset_by_compatible(fdt, -1, compat);
	if (off < 0)
		fail_msg("no node compatible with %s", compat);
	/* exactly one */
	assert_true(fdt_node_offset_by_compatible(fdt, off, compat) < 0);
	return off;
}

static void check_gic(const void *fdt, unsigned int n)
{
	int gic = find_compatible(fdt, "arm,gic-v3");
	assert_string_equal(fdt_get_name(fdt, gic, NULL), "intc@8000000");
	assert_non_null(fdt_getprop(fdt, gic, "interrupt-controller", NULL));
	assert_int_equal(prop_u32(fdt, gic, "#interrupt-cells"), 3);
	uint64_t redist = A64_GICR_STRIDE * n;
	const uint32_t reg[] = {
		HI(A64_GICD_BASE), LO(A64_GICD_BASE), HI(A64_GICD_SIZE), LO(A64_GICD_SIZE),
		HI(A64_GICR_BASE), LO(A64_GICR_BASE), HI(redist),        LO(redist),
	};
	assert_prop_cells(fdt, gic, "reg", reg, 8);
	/* the redistributor region does not run into the UART */
	assert_true(A64_GICR_BASE + redist <= A64_UART_BASE);
	/* root interrupt-parent points at it */
	uint32_t ph = fdt_get_phandle(fdt, gic);
	assert_true(ph != 0);
	assert_int_equal(prop_u32(fdt, 0, "interrupt-parent"), ph);
	assert_int_equal(fdt_node_offset_by_phandle(fdt, ph), gic);
}

static void check_timer(const void *fdt)
{
	int t = find_compatible(fdt, "arm,armv8-timer");
	const uint32_t irqs[] = {
		1, A64_TIMER_PPI_SEC,  4, /* GIC_PPI, number, level high */
		1, A64_TIMER_PPI_NS,   4,
		1, A64_TIMER_PPI_VIRT, 4,
		1, A64_TIMER_PPI_HYP,  4,
	};
	assert_prop_cells(fdt, t, "interrupts", irqs, 12);
	/* the architected PPI numbers (INTIDs 29, 30, 27, 26) */
	assert_int_equal(A64_TIMER_PPI_SEC + 16, 29);
	assert_int_equal(A64_TIMER_PPI_NS + 16, 30);
	assert_int_equal(A64_TIMER_PPI_VIRT + 16, 27);
	assert_int_equal(A64_TIMER_PPI_HYP + 16, 26);
}

static int check_uart(const void *fdt)
{
	int u = find_compatible(fdt, "arm,pl011");
	assert_string_equal(fdt_get_name(fdt, u, NULL), "pl011@9000000");
	assert_int_equal(fdt_node_check_compatible(fdt, u, "arm,primecell"), 0);
	const uint32_t reg[] = { HI(A64_UART_BASE), LO(A64_UART_BASE), HI(A64_UART_SIZE),
				 LO(A64_UART_SIZE) };
	assert_prop_cells(fdt, u, "reg", reg, 4);
	const uint32_t irq[] = { 0 /* SPI */, A64_UART_SPI, 4 /* level high */ };
	assert_prop_cells(fdt, u, "interrupts", irq, 3);

	int len;
	const fdt32_t *clocks = prop(fdt, u, "clocks", &len);
	assert_int_equal(len, 8);
	for (int i = 0; i < 2; i++) {
		int clk = fdt_node_offset_by_phandle(fdt, fdt32_to_cpu(clocks[i]));
		if (clk < 0)
			fail_msg("clocks[%d] phandle %u resolves to no node", i,
				 fdt32_to_cpu(clocks[i]));
		assert_int_equal(fdt_node_check_compatible(fdt, clk, "fixed-clock"), 0);
		assert_int_equal(prop_u32(fdt, clk, "#clock-cells"), 0);
		assert_true(prop_u32(fdt, clk, "clock-frequency") > 0);
	}
	assert_int_equal(fdt_stringlist_count(fdt, u, "clock-names"), 2);
	assert_int_equal(fdt_stringlist_search(fdt, u, "clock-names", "uartclk"), 0);
	assert_int_equal(fdt_stringlist_search(fdt, u, "clock-names", "apb_pclk"), 1);
	/* phandles are unique: the clock's is not the GIC's */
	int gic = fdt_node_offset_by_compatible(fdt, -1, "arm,gic-v3");
	assert_true(fdt_get_phandle(fdt, gic) != fdt32_to_cpu(clocks[0]));
	return u;
}

static void check_chosen(const void *fdt, const char *cmdline, bool initrd, int uart)
{
	int c = node(fdt, "/chosen");
	assert_prop_str(fdt, c, "bootargs", cmdline);
	int len;
	const char *sp = prop(fdt, c, "stdout-path", &len);
	assert_int_equal(fdt_path_offset(fdt, sp), uart);
	const fdt32_t *s = fdt_getprop(fdt, c, "linux,initrd-start", &len);
	if (initrd) {
		assert_non_null(s);
		assert_int_equal(len, 8);
		assert_int_equal(cells_u64(s), INITRD_START);
		const fdt32_t *e = prop(fdt, c, "linux,initrd-end", &len);
		assert_int_equal(len, 8);
		assert_int_equal(cells_u64(e), INITRD_END);
	} else {
		assert_null(s);
		assert_null(fdt_getprop(fdt, c, "linux,initrd-end", NULL));
	}
}

static void check_all(const void *fdt, unsigned int n, bool initrd)
{
	check_root_and_memory(fdt);
	check_cpus(fdt, n);
	check_psci(fdt);
	check_gic(fdt, n);
	check_timer(fdt);
	int uart = check_uart(fdt);
	check_chosen(fdt, CMDLINE, initrd, uart);
}

static void test_mpidr(void **state)
{
	(void)state;
	assert_int_equal(a64_vcpu_mpidr(0), 0);
	assert_int_equal(a64_vcpu_mpidr(7), 7);
	assert_int_equal(a64_vcpu_mpidr(15), 0xf);
	assert_int_equal(a64_vcpu_mpidr(16), 0x100);
	assert_int_equal(a64_vcpu_mpidr(17), 0x101);
	assert_int_equal(a64_vcpu_mpidr(0x123), 0x1203);
}

static void test_build_1_vcpu(void **state)
{
	(void)state;
	struct a64_fdt_params p = params(1, true);
	void *fdt = build(&p);
	check_all(fdt, 1, true);
	free(fdt);
}

static void test_build_8_vcpus(void **state)
{
	(void)state;
	struct a64_fdt_params p = params(VMM_MAX_VCPUS, true);
	void *fdt = build(&p);
	check_all(fdt, VMM_MAX_VCPUS, true);
	free(fdt);
}

static void test_every_vcpu_count(void **state)
{
	(void)state;
	for (unsigned int n = 1; n <= VMM_MAX_VCPUS; n++) {
		struct a64_fdt_params p = params(n, n & 1);
		void *fdt = build(&p);
		check_all(fdt, n, n & 1);
		free(fdt);
	}
}

static void test_no_initrd(void **state)
{
	(void)state;
	struct a64_fdt_params p = params(2, false);
	void *fdt = build(&p);
	check_all(fdt, 2, false);
	free(fdt);
}

static void test_cmdline(void **state)
{
	(void)state;
	struct a64_fdt_params p = params(1, false);
	p.cmdline = NULL;
	void *fdt = build(&p);
	assert_prop_str(fdt, node(fdt, "/chosen"), "bootargs", "");
	free(fdt);
	/* the longest command line the CLI accepts */
	char *lng = malloc(VMM_CMDLINE_MAX);
	assert_non_null(lng);
	memset(lng, 'x', VMM_CMDLINE_MAX - 1);
	lng[VMM_CMDLINE_MAX - 1] = '\0';
	p.cmdline = lng;
	fdt = build(&p);
	assert_prop_str(fdt, node(fdt, "/chosen"), "bootargs", lng);
	free(fdt);
	free(lng);
}

static void test_packed(void **state)
{
	(void)state;
	struct a64_fdt_params p = params(VMM_MAX_VCPUS, true);
	void *fdt = build(&p);
	/* packed: the strings block ends the blob, no free space left over */
	assert_int_equal(fdt_off_dt_strings(fdt) + fdt_size_dt_strings(fdt), fdt_totalsize(fdt));
	assert_true(fdt_totalsize(fdt) < A64_FDT_BUF_SIZE / 4);
	free(fdt);
}

static void test_too_small_enospc(void **state)
{
	(void)state;
	struct a64_fdt_params p = params(VMM_MAX_VCPUS, true);
	void *ref = build(&p);
	uint32_t size = fdt_totalsize(ref);
	/* every size below what the build needs fails cleanly with -ENOSPC (heap buffers
	 * of exactly that size: ASan sees any overrun); the first size that works gives
	 * the same blob */
	uint32_t s;
	for (s = 0; s < A64_FDT_BUF_SIZE; s++) {
		void *buf = malloc(s ? s : 1);
		assert_non_null(buf);
		int r = a64_fdt_build(buf, s, &p);
		if (r == 0) {
			assert_int_equal(fdt_totalsize(buf), size);
			assert_memory_equal(buf, ref, size);
			free(buf);
			break;
		}
		free(buf);
		if (r != -ENOSPC)
			fail_msg("bufsize %u: got %d, want -ENOSPC", s, r);
	}
	assert_true(s >= size);
	assert_true(s < A64_FDT_BUF_SIZE);
	free(ref);
}

static void test_invalid_params(void **state)
{
	(void)state;
	void *buf = malloc(A64_FDT_BUF_SIZE);
	assert_non_null(buf);
	struct a64_fdt_params p = params(0, false);
	assert_int_equal(a64_fdt_build(buf, A64_FDT_BUF_SIZE, &p), -EINVAL);
	p = params(VMM_MAX_VCPUS + 1, false);
	assert_int_equal(a64_fdt_build(buf, A64_FDT_BUF_SIZE, &p), -EINVAL);
	p = params(UINT32_MAX, false);
	assert_int_equal(a64_fdt_build(buf, A64_FDT_BUF_SIZE, &p), -EINVAL);
	p = params(1, false);
	p.ram_size = 0;
	assert_int_equal(a64_fdt_build(buf, A64_FDT_BUF_SIZE, &p), -EINVAL);
	p = params(1, true);
	p.initrd_end = p.initrd_start - 1;
	assert_int_equal(a64_fdt_build(buf, A64_FDT_BUF_SIZE, &p), -EINVAL);
	p = params(1, false);
	assert_int_equal(a64_fdt_build(buf, (size_t)INT32_MAX + 1, &p), -EINVAL);
	free(buf);
}

static int have_dtc(void)
{
	return system("command -v dtc >/dev/null 2>&1") == 0;
}

static void run_dtc_on(unsigned int nr_vcpus, bool initrd)
{
	if (!have_dtc())
		fail_msg("dtc not found on PATH: install the device-tree-compiler package "
			 "(ci/install-deps.sh does it); this test does not skip");
	struct a64_fdt_params p = params(nr_vcpus, initrd);
	void *fdt = build(&p);
	char path[] = "/tmp/test_fdt_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	uint32_t size = fdt_totalsize(fdt);
	assert_int_equal(write(fd, fdt, size), (ssize_t)size);
	close(fd);
	free(fdt);
	char errpath[sizeof(path) + 8];
	snprintf(errpath, sizeof(errpath), "%s.err", path);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts -o /dev/null %s 2>%s", path, errpath);
	int st = system(cmd);
	char msg[2048] = "";
	FILE *f = fopen(errpath, "r");
	if (f) {
		size_t n = fread(msg, 1, sizeof(msg) - 1, f);
		msg[n] = '\0';
		fclose(f);
	}
	if (msg[0])
		print_message("dtc (%u vCPUs) said:\n%s", nr_vcpus, msg);
	unlink(errpath);
	unlink(path);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("dtc rejected the blob (status 0x%x): %s", st, msg);
}

static void test_dtc_accepts_blob(void **state)
{
	(void)state;
	run_dtc_on(1, true);
	run_dtc_on(VMM_MAX_VCPUS, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mpidr),
		cmocka_unit_test(test_build_1_vcpu),
		cmocka_unit_test(test_build_8_vcpus),
		cmocka_unit_test(test_every_vcpu_count),
		cmocka_unit_test(test_no_initrd),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_packed),
		cmocka_unit_test(test_too_small_enospc),
		cmocka_unit_test(test_invalid_params),
		cmocka_unit_test(test_dtc_accepts_blob),
	};
	return cmocka_run_group_tests_name("fdt", tests, NULL, NULL);
}
