/* Leveled logging: one line per message, prefixed "vmm: <level>: ". */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

static const char *const names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned int i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_msg(const struct log *lg, enum log_level lvl, const char *fmt, ...)
{
	enum log_level max = lg ? lg->level : LOG_INFO;
	if (lvl > max)
		return;
	FILE *out = (lg && lg->out) ? lg->out : stderr;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(out, "vmm: %s: %s\n", names[lvl], line);
	fflush(out);
}
