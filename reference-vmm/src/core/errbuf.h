/* One-sentence error messages for callers: format into a caller's buffer and
 * hand back an error code, so a failing path is `return errbuf_fail(...)`. */
#ifndef VMM_ERRBUF_H
#define VMM_ERRBUF_H

#include <stddef.h>

/* Writes the message into err (if err && errlen) and returns code unchanged. */
int errbuf_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
