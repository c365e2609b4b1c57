/* The host side of the guest console: guest output to an fd (stdout), buffered
 * and flushed at each newline or within CONSOLE_FLUSH_MS; host input from an fd
 * (stdin) pumped into the guest UART by a thread. A TTY on stdin is put in raw
 * mode (signals kept) and restored on stop. */
#ifndef VMM_CONSOLE_H
#define VMM_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

struct log;

struct console_sink {
	size_t (*rx)(void *ctx, const uint8_t *buf, size_t len); /* returns accepted */
	size_t (*room)(void *ctx);
	void *ctx;
};

#define CONSOLE_OUT_BUF 1024
#define CONSOLE_FLUSH_MS 10

struct console {
	int in_fd;  /* -1: no input */
	int out_fd;
	int stop_fd; /* eventfd that stops the console thread */
	int wake_fd; /* eventfd: output became pending, start the flush timer */
	const struct log *log;
	struct console_sink sink;
	pthread_t thread;
	bool running;
	bool tty_raw;
	bool out_broken; /* output fd failed once: stop writing */
	pthread_mutex_t out_lock;
	uint8_t out_buf[CONSOLE_OUT_BUF];
	size_t out_len;
	struct termios saved;
};

/* Does not start anything. console_destroy() releases what init set up. */
void console_init(struct console *c, int in_fd, int out_fd, const struct log *log);
void console_destroy(struct console *c);
/* Start pumping in_fd into sink. Returns 0 or -errno. */
int console_start(struct console *c, struct console_sink sink);
/* Stop the thread, flush output and restore the TTY. Idempotent. */
void console_stop(struct console *c);
/* Guest output byte: buffered; written at '\n', when the buffer fills, or by
 * the console thread within CONSOLE_FLUSH_MS. */
void console_putc(struct console *c, uint8_t byte);
/* Write out buffered output now. */
void console_flush(struct console *c);

#endif
