/* Process-wide helpers for the harnesses: a debug-level log that discards its
 * output (printed with FUZZ_VERBOSE=1, so log formatting of hostile values is
 * exercised either way), and an interrupt line that checks the transport's
 * contract (it only drives level changes). Test code only. */
#ifndef HARNESS_ENV_H
#define HARNESS_ENV_H

#include "core/irq.h"
#include "core/log.h"

#include <stdbool.h>

const struct log *fuzz_log(void);

struct fuzz_irq {
	int level;
	unsigned int calls;
	int fail; /* set_level returns this (0 or a negative errno) */
};

/* A private directory for unix sockets, created on first use ($TMPDIR, else
 * /tmp; short enough for sun_path with room for a file name of 20 bytes) and
 * removed at exit if empty. Never NULL (aborts if it cannot be created). */
const char *fuzz_private_dir(void);

/* rec starts at level 0; every set_level must change the level. */
struct irq_line fuzz_irq_line(struct fuzz_irq *rec, unsigned int irq);

#endif
