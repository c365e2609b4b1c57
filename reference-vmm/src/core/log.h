/* Leveled logging to stderr. The level lives in a struct log owned by the VMM
 * (no globals); code without a VMM handle passes NULL and gets LOG_INFO. */
#ifndef VMM_LOG_H
#define VMM_LOG_H

#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct log {
	enum log_level level;
	FILE *out; /* NULL → stderr */
};

/* "error" | "warn" | "info" | "debug" → level; -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(const struct log *lg, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(lg, ...) log_msg((lg), LOG_ERROR, __VA_ARGS__)
#define log_warn(lg, ...) log_msg((lg), LOG_WARN, __VA_ARGS__)
#define log_info(lg, ...) log_msg((lg), LOG_INFO, __VA_ARGS__)
#define log_dbg(lg, ...) log_msg((lg), LOG_DEBUG, __VA_ARGS__)

#endif
