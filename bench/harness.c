/* Host micro-benchmark harness (bench.h): option parsing, calibration, warm-up,
 * repetitions, median, and the BENCH output lines. */
#include "bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define BENCH_MAX_REPS 101

static unsigned int reps = 7;
static double rep_ms = 100.0;
static double warmup_ms = 100.0;

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--reps N] [--rep-ms MS] [--warmup-ms MS] [--quick]\n", prog);
	exit(2);
}

static double parse_pos(const char *prog, const char *s, double max)
{
	char *end;
	double v = strtod(s, &end);
	if (!s[0] || *end || !(v > 0) || v > max)
		usage(prog);
	return v;
}

void bench_init(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--quick")) {
			reps = 3;
			rep_ms = 20;
			warmup_ms = 20;
		} else if (i + 1 < argc && !strcmp(a, "--reps")) {
			reps = (unsigned int)parse_pos(argv[0], argv[++i], BENCH_MAX_REPS);
		} else if (i + 1 < argc && !strcmp(a, "--rep-ms")) {
			rep_ms = parse_pos(argv[0], argv[++i], 60000);
		} else if (i + 1 < argc && !strcmp(a, "--warmup-ms")) {
			warmup_ms = parse_pos(argv[0], argv[++i], 60000);
		} else {
			usage(argv[0]);
		}
	}
}

unsigned int bench_reps(void)
{
	return reps;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_median(double *v, unsigned int n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static double report(const char *metric, const char *unit, const char *what, double *s,
		     unsigned int n, uint64_t iters)
{
	double sorted[BENCH_MAX_REPS];
	memcpy(sorted, s, n * sizeof(*s));
	double med = bench_median(sorted, n);
	double lo = sorted[0], hi = sorted[n - 1];

	fprintf(stderr, "%-34s %14.6g %-10s (min %.6g, max %.6g, %u reps) %s\n", metric, med, unit,
		lo, hi, n, what);
	printf("BENCH {\"metric\": ");
	json_str(metric);
	printf(", \"value\": %.6g, \"unit\": ", med);
	json_str(unit);
	printf(", \"min\": %.6g, \"max\": %.6g, \"reps\": %u", lo, hi, n);
	if (iters)
		printf(", \"iters_per_rep\": %llu", (unsigned long long)iters);
	printf(", \"samples\": [");
	for (unsigned int i = 0; i < n; i++)
		printf("%s%.6g", i ? ", " : "", s[i]);
	printf("], \"what\": ");
	json_str(what);
	printf("}\n");
	fflush(stdout);
	return med;
}

double bench_rate(const char *metric, const char *unit, const char *what, bench_fn fn, void *ctx,
		  uint64_t ops_per_iter)
{
	/* warm-up doubling the iteration count; it also calibrates */
	uint64_t iters = 1, t = 0, warm_start = bench_now_ns();
	for (;;) {
		uint64_t t0 = bench_now_ns();
		fn(ctx, iters);
		t = bench_now_ns() - t0;
		if (bench_now_ns() - warm_start >= (uint64_t)(warmup_ms * 1e6) &&
		    t >= (uint64_t)(rep_ms * 1e6) / 4)
			break;
		if (t < (uint64_t)(rep_ms * 1e6) / 2)
			iters *= 2;
	}
	double per_iter_ns = (double)t / (double)iters;
	uint64_t n = (uint64_t)(rep_ms * 1e6 / (per_iter_ns > 0 ? per_iter_ns : 1));
	iters = n ? n : 1;

	double samples[BENCH_MAX_REPS];
	for (unsigned int r = 0; r < reps; r++) {
		uint64_t t0 = bench_now_ns();
		fn(ctx, iters);
		uint64_t dt = bench_now_ns() - t0;
		samples[r] = (double)(iters * ops_per_iter) / ((double)(dt ? dt : 1) / 1e9);
	}
	return report(metric, unit, what, samples, reps, iters);
}

double bench_value(const char *metric, const char *unit, const char *what, const double *samples,
		   unsigned int n)
{
	double s[BENCH_MAX_REPS];
	if (n == 0 || n > BENCH_MAX_REPS)
		bench_die("%s: %u samples", metric, n);
	memcpy(s, samples, n * sizeof(*s));
	return report(metric, unit, what, s, n, 0);
}

const char *bench_mem_disk(uint64_t size)
{
	static char path[64];
	int fd = memfd_create("bench-disk", MFD_CLOEXEC);
	if (fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	} else {
		snprintf(path, sizeof(path), "/dev/shm/bench-disk.XXXXXX");
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			bench_die("no memfd and no /dev/shm for the disk image");
		unlink(path); /* keep it alive through /proc/self/fd */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	static uint8_t buf[1 << 16];
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)((off + i) * 7 + ((off + i) >> 12));
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
			bench_die("writing the disk image");
	}
	return path;
}
