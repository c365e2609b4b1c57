/* Guest console host side: output writes, input thread with poll() on the input
 * fd and a stop eventfd, raw-mode TTY handling. Plain stdio fds, not KVM, so
 * these are direct syscalls; tests pass pipes. */
#include "core/console.h"
#include "core/log.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void console_init(struct console *c, int in_fd, int out_fd, const struct log *log)
{
	memset(c, 0, sizeof(*c));
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->stop_fd = -1;
	c->wake_fd = -1;
	c->log = log;
	pthread_mutex_init(&c->out_lock, NULL);
}

void console_destroy(struct console *c)
{
	console_stop(c);
	pthread_mutex_destroy(&c->out_lock);
}

/* out_lock held */
static void flush_locked(struct console *c)
{
	size_t off = 0;
	while (off < c->out_len && !c->out_broken) {
		ssize_t r = write(c->out_fd, c->out_buf + off, c->out_len - off);
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		c->out_broken = true;
		log_warn(c->log, "console output failed (%s): guest output is discarded from now on",
			 r < 0 ? strerror(errno) : "short write");
	}
	c->out_len = 0;
}

void console_flush(struct console *c)
{
	pthread_mutex_lock(&c->out_lock);
	flush_locked(c);
	pthread_mutex_unlock(&c->out_lock);
}

void console_putc(struct console *c, uint8_t byte)
{
	pthread_mutex_lock(&c->out_lock);
	if (!c->out_broken) {
		bool was_empty = c->out_len == 0;
		c->out_buf[c->out_len++] = byte;
		/* without a console thread nobody flushes later: write at once */
		if (byte == '\n' || c->out_len == sizeof(c->out_buf) || !c->running) {
			flush_locked(c);
		} else if (was_empty) {
			uint64_t one = 1; /* the thread flushes within CONSOLE_FLUSH_MS */
			if (write(c->wake_fd, &one, sizeof(one)) < 0)
				flush_locked(c);
		}
	}
	pthread_mutex_unlock(&c->out_lock);
}

static bool output_pending(struct console *c)
{
	pthread_mutex_lock(&c->out_lock);
	bool p = c->out_len != 0;
	pthread_mutex_unlock(&c->out_lock);
	return p;
}

static void *input_thread(void *arg)
{
	struct console *c = arg;
	uint8_t buf[64];
	size_t have = 0, off = 0;
	bool eof = c->in_fd < 0;

	for (;;) {
		struct pollfd p[3] = { { .fd = c->stop_fd, .events = POLLIN },
				       { .fd = c->wake_fd, .events = POLLIN } };
		int n = 2;
		/* read more only when everything read so far reached the guest */
		if (!eof && have == off) {
			p[2] = (struct pollfd){ .fd = c->in_fd, .events = POLLIN };
			n = 3;
		}
		int timeout = -1;
		if (have != off)
			timeout = 5; /* retry when the guest's RX FIFO drains */
		else if (output_pending(c))
			timeout = CONSOLE_FLUSH_MS;
		int r = poll(p, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		if (p[1].revents & POLLIN) {
			uint64_t v;
			if (read(c->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
			continue; /* next round polls with the flush timeout */
		}
		if (r == 0)
			console_flush(c);
		if (n == 3 && (p[2].revents & POLLNVAL)) {
			eof = true; /* input fd is not open: stop reading it */
			continue;
		}
		if (n == 3 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t got = read(c->in_fd, buf, sizeof(buf));
			if (got <= 0) {
				if (got < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				eof = true; /* end of input: keep running, stop reading */
				continue;
			}
			have = (size_t)got;
			off = 0;
		}
		if (off < have) {
			off += c->sink.rx(c->sink.ctx, buf + off, have - off);
			if (off == have)
				have = off = 0;
		}
	}
	return NULL;
}

int console_start(struct console *c, struct console_sink sink)
{
	c->sink = sink;
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_fd < 0 || c->wake_fd < 0) {
		int e = errno;
		console_stop(c);
		return -e;
	}
	if (c->in_fd >= 0 && isatty(c->in_fd) && tcgetattr(c->in_fd, &c->saved) == 0) {
		struct termios raw = c->saved;
		cfmakeraw(&raw);
		raw.c_lflag |= ISIG; /* keep Ctrl-C: it stops the VMM */
		raw.c_oflag |= OPOST | ONLCR;
		if (tcsetattr(c->in_fd, TCSANOW, &raw) == 0)
			c->tty_raw = true;
	}
	c->running = true;
	int r = pthread_create(&c->thread, NULL, input_thread, c);
	if (r) {
		c->running = false;
		console_stop(c);
		return -r;
	}
	return 0;
}

void console_stop(struct console *c)
{
	if (c->running) {
		uint64_t one = 1;
		if (write(c->stop_fd, &one, sizeof(one)) != sizeof(one))
			log_warn(c->log, "console: cannot wake the input thread");
		pthread_join(c->thread, NULL);
		c->running = false;
	}
	console_flush(c);
	if (c->tty_raw) {
		tcsetattr(c->in_fd, TCSANOW, &c->saved);
		c->tty_raw = false;
	}
	if (c->stop_fd >= 0) {
		close(c->stop_fd);
		c->stop_fd = -1;
	}
	if (c->wake_fd >= 0) {
		close(c->wake_fd);
		c->wake_fd = -1;
	}
}
