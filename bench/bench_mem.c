/* VM creation cost through mock KVM: the VMM's resident-set growth for a created
 * (not yet running) VM with 256 MiB of guest RAM and 2 vCPUs, how much of the
 * guest RAM mapping is resident (kernel, initrd and DTB loaded; the rest is
 * MAP_NORESERVE and untouched), and the time vmm_create takes (everything up to
 * the first KVM_RUN: memslots, vCPUs, vGIC, image loading, FDT). */
#include "bench.h"
#include "core/vmm_internal.h"
#include "mock_kvm.h"
#include "vmm/vmm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define GUEST_MIB 256
#define KERNEL_SIZE (4u << 20) /* synthetic arm64 Image: header + pattern */
#define INITRD_SIZE (2u << 20)
#define MAX_REPS 101

static char dir[64], kernel[96], initrd[96];

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		bench_die("writing %s", path);
}

static void make_inputs(void)
{
	snprintf(dir, sizeof(dir), "/tmp/bench_mem.XXXXXX");
	if (!mkdtemp(dir))
		bench_die("mkdtemp");
	snprintf(kernel, sizeof(kernel), "%s/Image", dir);
	snprintf(initrd, sizeof(initrd), "%s/initrd", dir);
	uint8_t *k = malloc(KERNEL_SIZE);
	if (!k)
		bench_die("malloc");
	for (size_t i = 0; i < KERNEL_SIZE; i++)
		k[i] = (uint8_t)(i * 7 + 3);
	memset(k, 0, 64);
	put_le64(k + 8, 0x80000);                  /* text_offset */
	put_le64(k + 16, (uint64_t)KERNEL_SIZE * 2); /* image_size, BSS included */
	put_le64(k + 24, 2);                       /* flags: 4 KiB pages */
	memcpy(k + 56, "ARM\x64", 4);
	write_file(kernel, k, KERNEL_SIZE);
	for (size_t i = 0; i < INITRD_SIZE; i++)
		k[i] = (uint8_t)(i * 13 + 1);
	write_file(initrd, k, INITRD_SIZE);
	free(k);
}

static void remove_inputs(void)
{
	unlink(kernel);
	unlink(initrd);
	rmdir(dir);
}

/* VmRSS of this process in KiB */
static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	if (!f)
		bench_die("/proc/self/status");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	if (v < 0)
		bench_die("no VmRSS in /proc/self/status");
	return v;
}

/* resident KiB of [p, p+len) (page aligned) */
static long resident_kib(void *p, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t n = (len + (size_t)page - 1) / (size_t)page;
	unsigned char *vec = malloc(n);
	if (!vec || mincore(p, len, vec))
		bench_die("mincore");
	long r = 0;
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	free(vec);
	return r * page / 1024;
}

struct one {
	double rss_before_kib, rss_after_kib, ram_resident_kib, create_ms;
};

/* One cold vmm_create in a fresh child process (the parent never creates a VM, so
 * every repetition sees what a starting VMM sees: nothing cached in the heap). */
static struct one create_cold(void)
{
	int pfd[2];
	struct one o;
	if (pipe(pfd))
		bench_die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		bench_die("fork");
	if (pid == 0) {
		struct vmm_config cfg;
		struct vmm *vmm = NULL;
		char err[512] = "";

		close(pfd[0]);
		vmm_config_init(&cfg);
		cfg.mem_mib = GUEST_MIB;
		cfg.nr_vcpus = 2;
		cfg.kernel_path = strdup(kernel);
		cfg.initrd_path = strdup(initrd);
		cfg.cmdline = strdup("console=ttyAMA0 quiet");
		cfg.log_level = LOG_ERROR;
		struct mock_kvm *mock = mock_kvm_new();
		if (!mock)
			bench_die("mock_kvm_new");
		mock_kvm_set_quiet(mock, true);
		struct sys sys = mock_kvm_sys(mock);

		o.rss_before_kib = (double)rss_kib();
		uint64_t t0 = bench_now_ns();
		int r = vmm_create(&vmm, &cfg, &sys, err, sizeof(err));
		uint64_t t1 = bench_now_ns();
		if (r)
			bench_die("vmm_create: %d: %s", r, err);
		o.rss_after_kib = (double)rss_kib();
		o.ram_resident_kib = (double)resident_kib(vmm->ram, vmm->ram_size);
		o.create_ms = (double)(t1 - t0) / 1e6;
		vmm_destroy(vmm);
		if (mock_kvm_violations(mock))
			bench_die("mock KVM saw an ABI violation: %s", mock_kvm_violation(mock, 0));
		mock_kvm_free(mock);
		vmm_config_free(&cfg);
		if (write(pfd[1], &o, sizeof(o)) != (ssize_t)sizeof(o))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	ssize_t n = read(pfd[0], &o, sizeof(o));
	close(pfd[0]);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    n != (ssize_t)sizeof(o))
		bench_die("the measuring child failed");
	return o;
}

int main(int argc, char **argv)
{
	bench_init(argc, argv);
	unsigned int reps = bench_reps() < 5 ? 5 : bench_reps();
	if (reps > MAX_REPS)
		reps = MAX_REPS;
	double before[MAX_REPS], after[MAX_REPS], delta[MAX_REPS], ram[MAX_REPS], own[MAX_REPS],
		ms[MAX_REPS];

	make_inputs();
	create_cold(); /* warm-up: page cache for the input files, binary paged in */
	for (unsigned int i = 0; i < reps; i++) {
		struct one o = create_cold();
		before[i] = o.rss_before_kib;
		after[i] = o.rss_after_kib;
		delta[i] = o.rss_after_kib - o.rss_before_kib;
		ram[i] = o.ram_resident_kib;
		own[i] = delta[i] - o.ram_resident_kib;
		ms[i] = o.create_ms;
	}
	remove_inputs();

	bench_value("vm_rss_before_kib", "KiB",
		    "VmRSS of a fresh VMM process (this benchmark, mock KVM ready) before vmm_create",
		    before, reps);
	bench_value("vm_rss_after_kib", "KiB",
		    "VmRSS after vmm_create: 256 MiB guest, 2 vCPUs, 4 MiB kernel + 2 MiB initrd "
		    "loaded (mock KVM)",
		    after, reps);
	bench_value("vm_create_rss_delta_kib", "KiB", "VmRSS growth across the first vmm_create",
		    delta, reps);
	bench_value("vm_guest_ram_resident_kib", "KiB",
		    "resident part of the 256 MiB MAP_NORESERVE guest RAM after vmm_create (mincore)",
		    ram, reps);
	bench_value("vm_vmm_overhead_kib", "KiB",
		    "RSS growth minus resident guest RAM: the VMM's own memory for a VM (heap, "
		    "vCPU run pages, mock KVM state)",
		    own, reps);
	bench_value("vm_create_ms", "ms",
		    "first vmm_create in a fresh process, through mock KVM (setup up to the first "
		    "KVM_RUN)",
		    ms, reps);
	return 0;
}
