/* The host side of the guest console: guest output to an fd (stdout), host
 * input from an fd (stdin) pumped into the guest UART by a thread. A TTY on
 * stdin is put in raw mode (signals kept) and restored on stop. */
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

struct console {
	int in_fd;  /* -1: no input */
	int out_fd;
	int stop_fd; /* eventfd that wakes the input thread */
	const struct log *log;
	struct console_sink sink;
	pthread_t thread;
	bool running;
	bool tty_raw;
	bool out_broken; /* output fd failed once: stop writing */
	struct termios saved;
};

/* Does not start anything. */
void console_init(struct console *c, int in_fd, int out_fd, const struct log *log);
/* Start pumping in_fd into sink. Returns 0 or -errno. */
int console_start(struct console *c, struct console_sink sink);
/* Stop the thread and restore the TTY. Idempotent. */
void console_stop(struct console *c);
/* Guest output byte. */
void console_putc(struct console *c, uint8_t byte);

#endif
