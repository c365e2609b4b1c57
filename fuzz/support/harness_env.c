/* Harness helpers: discarding debug log, contract-checking irq line (harness_env.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness_env.h"
#include "fuzz_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static ssize_t discard_write(void *cookie, const char *buf, size_t len)
{
	(void)cookie;
	(void)buf;
	return (ssize_t)len;
}

const struct log *fuzz_log(void)
{
	static struct log lg;
	static bool init;
	if (!init) {
		cookie_io_functions_t io = { .write = discard_write };
		lg.level = LOG_DEBUG;
		lg.out = fuzz_verbose() ? stderr : fopencookie(NULL, "w", io);
		if (!lg.out)
			lg.level = LOG_ERROR; /* stderr, errors only */
		init = true;
	}
	return &lg;
}

static int irq_set(void *ctx, unsigned int irq, int level)
{
	struct fuzz_irq *rec = ctx;
	(void)irq;
	FUZZ_CHECK(level == 0 || level == 1, "irq level %d", level);
	FUZZ_CHECK(level != rec->level, "irq line driven to its current level %d", level);
	rec->level = level;
	rec->calls++;
	return rec->fail;
}

struct irq_line fuzz_irq_line(struct fuzz_irq *rec, unsigned int irq)
{
	rec->level = 0;
	rec->calls = 0;
	rec->fail = 0;
	return (struct irq_line){ .set_level = irq_set, .ctx = rec, .irq = irq };
}

static char private_dir[80];

static void remove_private_dir(void)
{
	if (private_dir[0])
		rmdir(private_dir);
}

const char *fuzz_private_dir(void)
{
	if (!private_dir[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(private_dir, sizeof(private_dir), "%s/fuzz-sock.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (strlen(private_dir) > 60 || !mkdtemp(private_dir)) {
			snprintf(private_dir, sizeof(private_dir), "/tmp/fuzz-sock.XXXXXX");
			FUZZ_CHECK(mkdtemp(private_dir), "cannot create a private directory");
		}
		atexit(remove_private_dir);
	}
	return private_dir;
}
