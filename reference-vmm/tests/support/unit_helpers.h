/* Small helpers shared by the module unit tests (test_pl011, test_console,
 * test_boot_timer, ...): a recording interrupt line, log capture, clocks. */
#ifndef UNIT_HELPERS_H
#define UNIT_HELPERS_H

#include "core/irq.h"
#include "core/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* An irq_line whose set_level records every call. */
struct unit_irq_rec {
	unsigned int calls;    /* number of set_level calls */
	int level;             /* last level driven (0 before any call) */
	unsigned int last_irq; /* irq number of the last call */
	int history[64];       /* levels of the first 64 calls */
};

void unit_irq_rec_init(struct unit_irq_rec *rec);
struct irq_line unit_irq_rec_line(struct unit_irq_rec *rec, unsigned int irq);

/* A struct log whose output goes to an in-memory buffer (open_memstream). */
struct unit_log_capture {
	struct log log;
	FILE *f;
	char *buf;
	size_t len;
};

/* Returns 0 or -1; level is the log level to record at. */
int unit_log_capture_open(struct unit_log_capture *c, enum log_level level);
/* Everything logged so far, NUL-terminated (valid until the next log call). */
const char *unit_log_capture_text(struct unit_log_capture *c);
void unit_log_capture_close(struct unit_log_capture *c);

/* CLOCK_MONOTONIC in milliseconds / nanoseconds. */
uint64_t unit_now_ms(void);
uint64_t unit_now_ns(void);
/* Sleep for ms milliseconds (restarts on EINTR). */
void unit_sleep_ms(unsigned int ms);
/* CPU time consumed by the whole process (all threads), in milliseconds. */
uint64_t unit_process_cpu_ms(void);

#endif
