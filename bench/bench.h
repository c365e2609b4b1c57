/* Host micro-benchmark harness: calibrated, warmed-up, repeated measurements on
 * CLOCK_MONOTONIC; each metric is printed for humans (stderr) and as one
 * machine-readable "BENCH {json}" line (stdout) that bench/bench.py collects. */
#ifndef BENCH_H
#define BENCH_H

#include <stdint.h>

/*
 * One unit of work: run `iters` iterations of the measured operation. Each
 * iteration performs `ops_per_iter` operations (as counted by the metric).
 */
typedef void (*bench_fn)(void *ctx, uint64_t iters);

/* Parse the common options: --reps N (default 7), --rep-ms MS (default 100),
 * --warmup-ms MS (default 100), --quick (3 reps of 20 ms). Exits 2 on misuse. */
void bench_init(int argc, char **argv);

/*
 * Measure a rate: warm up and calibrate the iteration count so that one
 * repetition takes about rep-ms, then time `reps` repetitions and report the
 * median of ops/s (min and max alongside). Returns the median.
 */
double bench_rate(const char *metric, const char *unit, const char *what, bench_fn fn, void *ctx,
		  uint64_t ops_per_iter);

/* Report a value measured by the caller (samples: the repetitions; the median
 * is reported). Returns the median. */
double bench_value(const char *metric, const char *unit, const char *what, const double *samples,
		   unsigned int n);

/* The configured number of repetitions. */
unsigned int bench_reps(void);

uint64_t bench_now_ns(void);
double bench_median(double *v, unsigned int n); /* sorts v */

/* Print a message to stderr and exit 1: a benchmark whose workload fails
 * (queue error, bad status) measures nothing. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * A disk image of `size` bytes (a multiple of 4096) in memory: a memfd filled with
 * a byte pattern (so reads copy real data), reachable at the returned path
 * (/proc/self/fd/N, valid while the process lives). Falls back to a deleted-on-
 * exit file in /dev/shm. Dies on failure.
 */
const char *bench_mem_disk(uint64_t size);

/* Keep a value alive so the compiler cannot drop the work producing it. */
static inline void bench_keep(uint64_t v)
{
	__asm__ __volatile__("" : : "r"(v) : "memory");
}

#endif
