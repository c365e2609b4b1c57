/* Shared unit-test helpers: recording irq line, in-memory log capture, clocks
 * (see unit_helpers.h). */
#include "unit_helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int unit_irq_rec_set_level(void *ctx, unsigned int irq, int level)
{
	struct unit_irq_rec *rec = ctx;
	if (rec->calls < sizeof(rec->history) / sizeof(rec->history[0]))
		rec->history[rec->calls] = level;
	rec->calls++;
	rec->level = level;
	rec->last_irq = irq;
	return 0;
}

void unit_irq_rec_init(struct unit_irq_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
}

struct irq_line unit_irq_rec_line(struct unit_irq_rec *rec, unsigned int irq)
{
	return (struct irq_line){ .set_level = unit_irq_rec_set_level, .ctx = rec, .irq = irq };
}

int unit_log_capture_open(struct unit_log_capture *c, enum log_level level)
{
	memset(c, 0, sizeof(*c));
	c->f = open_memstream(&c->buf, &c->len);
	if (!c->f)
		return -1;
	c->log.level = level;
	c->log.out = c->f;
	return 0;
}

const char *unit_log_capture_text(struct unit_log_capture *c)
{
	if (!c->f)
		return "";
	fflush(c->f);
	return c->buf ? c->buf : "";
}

void unit_log_capture_close(struct unit_log_capture *c)
{
	if (c->f)
		fclose(c->f);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

uint64_t unit_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t unit_now_ms(void)
{
	return unit_now_ns() / 1000000ULL;
}

void unit_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

uint64_t unit_process_cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000ULL + (uint64_t)ts.tv_nsec / 1000000ULL;
}
