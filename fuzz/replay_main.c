/* Standalone replay driver for the libFuzzer targets: runs
 * LLVMFuzzerTestOneInput once per file, for every file or directory argument
 * (directories: their regular files in name order, not recursive; README* and
 * dot files skipped). Built with gcc + ASan/UBSan for `make test` (no clang or
 * libFuzzer needed) and with clang for coverage reports.
 *
 * usage: REPLAY [-v] [-q] [-n] PATH...
 *   -v  print each file before running it      -q  no summary line
 *   -n  a missing PATH is not an error (default: exit 2, a missing corpus is a bug)
 * Exit status: 0 all inputs ran; 1 an input could not be read; 2 usage or a
 * missing path. A crashing input kills the process (sanitizer report / abort)
 * after "replay: crashed on FILE" is printed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
/* sanitizer runtime hook, when linked with one */
__attribute__((weak)) void __sanitizer_set_death_callback(void (*cb)(void));

static const char *current;

static void say_current(void)
{
	if (current) {
		static const char pre[] = "replay: crashed on ";
		/* async-signal-safe: write(2) only */
		if (write(2, pre, sizeof(pre) - 1) < 0 || write(2, current, strlen(current)) < 0 ||
		    write(2, "\n", 1) < 0) {
			/* nothing more to do */
		}
	}
}

static void on_fatal_signal(int sig)
{
	say_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int run_file(const char *path, int verbose, unsigned long *count)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int err = ferror(f);
	fclose(f);
	if (!buf || err) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		free(buf);
		return -1;
	}
	/* an exact-size copy, so that ASan sees any read past the input */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	if (verbose)
		fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	current = path;
	LLVMFuzzerTestOneInput(exact, len);
	current = NULL;
	free(exact);
	(*count)++;
	return 0;
}

static int skip_name(const char *name)
{
	return name[0] == '.' || strncmp(name, "README", 6) == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, int verbose, unsigned long *count)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t nn = 0, cap = 0;
	struct dirent *e;
	int ret = 0;
	while ((e = readdir(d))) {
		if (skip_name(e->d_name))
			continue;
		if (nn == cap) {
			cap = cap ? cap * 2 : 64;
			char **nb = realloc(names, cap * sizeof(*names));
			if (!nb) {
				ret = -1;
				break;
			}
			names = nb;
		}
		if (!(names[nn] = strdup(e->d_name))) {
			ret = -1;
			break;
		}
		nn++;
	}
	closedir(d);
	if (nn)
		qsort(names, nn, sizeof(*names), cmp_str);
	for (size_t i = 0; i < nn; i++) {
		char *p = NULL;
		struct stat st;
		if (!ret && asprintf(&p, "%s/%s", dir, names[i]) < 0)
			ret = -1;
		if (!ret && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
		    run_file(p, verbose, count) < 0)
			ret = -1;
		free(p);
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	int verbose = 0, quiet = 0, allow_missing = 0, first = 1, status = 0;

	while (first < argc && argv[first][0] == '-' && argv[first][1]) {
		if (strcmp(argv[first], "-v") == 0)
			verbose = 1;
		else if (strcmp(argv[first], "-q") == 0)
			quiet = 1;
		else if (strcmp(argv[first], "-n") == 0)
			allow_missing = 1;
		else if (strcmp(argv[first], "--") == 0) {
			first++;
			break;
		} else {
			fprintf(stderr, "usage: %s [-v] [-q] [-n] PATH...\n", argv[0]);
			return 2;
		}
		first++;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: %s [-v] [-q] [-n] PATH...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(say_current);
	signal(SIGABRT, on_fatal_signal);
	signal(SIGSEGV, on_fatal_signal);
	signal(SIGBUS, on_fatal_signal);
	signal(SIGFPE, on_fatal_signal);
	signal(SIGILL, on_fatal_signal);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned long count = 0;
	for (int i = first; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			if (allow_missing)
				continue;
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			status = 2;
			continue;
		}
		int r = S_ISDIR(st.st_mode) ? run_dir(argv[i], verbose, &count)
					    : run_file(argv[i], verbose, &count);
		if (r < 0 && status == 0)
			status = 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!quiet)
		fprintf(stderr, "replay: %s: %lu inputs in %.2f s%s\n", argv[0], count,
			(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
			status ? " (with errors)" : "");
	return status;
}
