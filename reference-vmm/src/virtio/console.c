/* virtio-console device model and its host backends (stdio fds, pty, unix
 * socket): guest output to the backend without ever blocking, host input into
 * receive buffers with bounded buffering and back-pressure on the backend. */
#include "virtio/console.h"
#include "core/errbuf.h"

#include "core/event_loop.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

/* A byte ring: head is the oldest byte, len bytes follow (wrapping). */
struct cons_ring {
	uint8_t *buf;
	uint32_t cap, head, len;
};

enum { W_IN, W_OUT, W_LISTEN, W_NR };

struct cons_watch {
	int fd;
	uint32_t events;
	bool added;
};

enum out_mode {
	OUT_WRITE,      /* write(2): regular file, or our own non-blocking fd */
	OUT_SEND,       /* send(2) with MSG_DONTWAIT | MSG_NOSIGNAL: a socket */
	OUT_POLL_WRITE, /* a blocking fd we may not change: poll first, PIPE_BUF chunks */
};

struct virtio_console {
	struct virtio_transport *t;
	struct event_loop *loop;
	const struct log *log;
	pthread_mutex_t solo_lock; /* backend side; see cons_lock */
	enum virtio_console_backend backend;
	int epfd;
	struct cons_watch w[W_NR];

	/* current data fds (-1: none); pty and unix use one fd for both */
	int in_fd, out_fd;
	enum out_mode out_mode;
	bool out_pollable;
	bool in_eof;   /* input ended: stop reading */
	bool out_dead; /* output failed for good: drop guest output */
	int out_own_fd; /* stdio: our non-blocking reopen of out_fd, or -1 */

	/* pty */
	int pty_master, pty_slave;
	char pty_path[64];
	/* unix */
	int listen_fd, client_fd;
	char *sock_path;
	/* stdio TTY */
	bool tty_raw;
	struct termios saved_tio;

	struct cons_ring rx, tx;
	bool dropping; /* inside a drop episode (warned once) */
	struct virtio_console_stats st;

	uint16_t cols, rows;
	uint64_t features;
	bool activated;  /* DRIVER_OK seen, no reset since */
	bool activating; /* inside the activate callback */
};

/* ---- byte ring ------------------------------------------------------------------------ */

static int ring_init(struct cons_ring *r, uint32_t cap)
{
	r->buf = malloc(cap);
	r->cap = cap;
	r->head = r->len = 0;
	return r->buf ? 0 : -ENOMEM;
}

/* contiguous readable span at the head */
static const uint8_t *ring_peek(const struct cons_ring *r, uint32_t *n)
{
	uint32_t span = r->cap - r->head;
	*n = r->len < span ? r->len : span;
	return r->buf + r->head;
}

static void ring_consume(struct cons_ring *r, uint32_t n)
{
	r->head = (r->head + n) % r->cap;
	r->len -= n;
	if (!r->len)
		r->head = 0;
}

/* contiguous writable span at the tail */
static uint8_t *ring_space(struct cons_ring *r, uint32_t *n)
{
	uint32_t tail = (r->head + r->len) % r->cap;
	uint32_t room = r->cap - r->len;
	uint32_t span = r->cap - tail;
	*n = room < span ? room : span;
	return r->buf + tail;
}

/* ---- locking -------------------------------------------------------------------------- */

/* Backend work (loop thread, tests) takes solo_lock, then the transport lock if
 * bound; transport callbacks hold only the transport lock. bind changes t under
 * solo_lock, so the backend side never sees it change mid-work. */
static void cons_lock(struct virtio_console *c)
{
	pthread_mutex_lock(&c->solo_lock);
	if (c->t)
		virtio_transport_lock(c->t);
}

static void cons_unlock(struct virtio_console *c)
{
	if (c->t)
		virtio_transport_unlock(c->t);
	pthread_mutex_unlock(&c->solo_lock);
}

/* ---- epoll interest ------------------------------------------------------------------- */

/* Make watch idx follow (fd, want). want == 0 removes the fd from the epoll set
 * (so an unrequested EPOLLHUP cannot spin the loop). */
static void watch_set(struct virtio_console *c, int idx, int fd, uint32_t want)
{
	struct cons_watch *w = &c->w[idx];
	if (w->added && (w->fd != fd || !want || fd < 0)) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		w->added = false;
	}
	if (!want || fd < 0)
		return;
	struct epoll_event ev = { .events = want, .data.u32 = (uint32_t)idx };
	if (!w->added) {
		if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
			w->added = true;
			w->fd = fd;
			w->events = want;
		}
	} else if (w->events != want) {
		if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
			w->events = want;
	}
}

/* Before closing fd: drop every watch on it. */
static void watch_forget(struct virtio_console *c, int fd)
{
	for (int i = 0; i < W_NR; i++)
		if (c->w[i].added && c->w[i].fd == fd)
			watch_set(c, i, -1, 0);
}

static void sync_interest(struct virtio_console *c)
{
	uint32_t win = (c->in_fd >= 0 && !c->in_eof && c->rx.len < c->rx.cap) ? EPOLLIN : 0;
	uint32_t wout = (c->out_fd >= 0 && c->out_pollable && !c->out_dead && c->tx.len) ? EPOLLOUT
											   : 0;
	if (c->in_fd >= 0 && c->in_fd == c->out_fd) {
		watch_set(c, W_IN, c->in_fd, win | wout);
		watch_set(c, W_OUT, -1, 0);
	} else {
		watch_set(c, W_IN, c->in_fd, win);
		watch_set(c, W_OUT, c->out_fd, wout);
	}
	watch_set(c, W_LISTEN, c->listen_fd,
		  (c->listen_fd >= 0 && c->client_fd < 0) ? EPOLLIN : 0);
}

/* May the queues be used? (The transport may report DRIVER_OK only after
 * activate returns.) */
static bool queues_live(struct virtio_console *c)
{
	return c->t && c->activated && (c->activating || virtio_transport_active(c->t));
}

/* ---- guest output → backend ----------------------------------------------------------- */

static void drop_bytes(struct virtio_console *c, uint64_t n)
{
	if (!n)
		return;
	c->st.dropped_bytes += n;
	if (!c->dropping) {
		c->dropping = true;
		log_warn(c->log,
			 "virtio-console: backend not writable, dropping guest output (%llu bytes dropped so far)",
			 (unsigned long long)c->st.dropped_bytes);
	}
}

static ssize_t out_write(struct virtio_console *c, const uint8_t *p, uint32_t n)
{
	switch (c->out_mode) {
	case OUT_SEND:
		return send(c->out_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	case OUT_POLL_WRITE: {
		struct pollfd pf = { .fd = c->out_fd, .events = POLLOUT };
		if (poll(&pf, 1, 0) <= 0 || !(pf.revents & POLLOUT)) {
			if (pf.revents & (POLLERR | POLLHUP)) {
				errno = EPIPE;
				return -1;
			}
			errno = EAGAIN;
			return -1;
		}
		return write(c->out_fd, p, n < PIPE_BUF ? n : PIPE_BUF);
	}
	case OUT_WRITE:
	default:
		return write(c->out_fd, p, n);
	}
}

/* Write buffered guest output; never blocks. Drops it all if the backend is
 * absent or broken. */
static void flush_out(struct virtio_console *c)
{
	while (c->tx.len && c->out_fd >= 0 && !c->out_dead) {
		uint32_t n;
		const uint8_t *p = ring_peek(&c->tx, &n);
		ssize_t w = out_write(c, p, n);
		if (w > 0) {
			ring_consume(&c->tx, (uint32_t)w);
			c->st.tx_bytes += (uint64_t)w;
			c->dropping = false;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && c->out_pollable)
			return;
		log_warn(c->log, "virtio-console: backend output failed (%s)",
			 w < 0 ? strerror(errno) : "no progress");
		c->out_dead = true;
	}
	if (c->tx.len && (c->out_fd < 0 || c->out_dead)) {
		drop_bytes(c, c->tx.len);
		ring_consume(&c->tx, c->tx.len);
	}
}

/* Append guest bytes; make room by writing; drop what does not fit. */
static void tx_append(struct virtio_console *c, const struct virtq_chain *ch, uint32_t off,
		      uint32_t len)
{
	while (len) {
		uint32_t span;
		uint8_t *dst = ring_space(&c->tx, &span);
		if (!span) {
			flush_out(c);
			dst = ring_space(&c->tx, &span);
			if (!span) {
				drop_bytes(c, len);
				return;
			}
		}
		uint32_t k = len < span ? len : span;
		uint32_t got = ch ? virtq_chain_read(ch, off, dst, k) : 0;
		if (got != k) { /* cannot happen: len is within readable_len */
			drop_bytes(c, len);
			return;
		}
		c->tx.len += k;
		off += k;
		len -= k;
	}
}

static void process_tx(struct virtio_console *c)
{
	struct virtq *q = c->t ? virtio_transport_queue(c->t, VIRTIO_CONSOLE_QUEUE_TX) : NULL;
	if (!queues_live(c) || !q || !q->ready)
		return;
	bool pushed = false;
	for (;;) {
		struct virtq_chain ch;
		int r = virtq_pop(q, &ch);
		if (r < 0) {
			virtio_transport_needs_reset(c->t, virtq_strerror(r));
			break;
		}
		if (r == 0) {
			if (virtq_enable_notify(q))
				continue;
			break;
		}
		tx_append(c, &ch, 0, ch.readable_len);
		if (virtq_push(q, ch.head, 0) < 0) {
			virtio_transport_needs_reset(c->t, "virtio-console: transmit push failed");
			break;
		}
		pushed = true;
	}
	flush_out(c);
	if (pushed)
		virtio_transport_notify_used(c->t, VIRTIO_CONSOLE_QUEUE_TX);
}

/* ---- backend input → guest ------------------------------------------------------------ */

static void deliver_rx(struct virtio_console *c)
{
	if (!c->rx.len || !queues_live(c))
		return;
	struct virtq *q = virtio_transport_queue(c->t, VIRTIO_CONSOLE_QUEUE_RX);
	if (!q || !q->ready)
		return;
	bool pushed = false;
	while (c->rx.len) {
		struct virtq_chain ch;
		int r = virtq_pop(q, &ch);
		if (r < 0) {
			virtio_transport_needs_reset(c->t, virtq_strerror(r));
			break;
		}
		if (r == 0) {
			if (virtq_enable_notify(q))
				continue;
			break; /* wait for the driver's notify */
		}
		uint32_t n = 0;
		while (n < ch.writable_len && c->rx.len) {
			uint32_t span;
			const uint8_t *p = ring_peek(&c->rx, &span);
			uint32_t k = ch.writable_len - n < span ? ch.writable_len - n : span;
			virtq_chain_write(&ch, n, p, k);
			ring_consume(&c->rx, k);
			n += k;
		}
		if (virtq_push(q, ch.head, n) < 0) {
			virtio_transport_needs_reset(c->t, "virtio-console: receive push failed");
			break;
		}
		c->st.rx_bytes += n;
		pushed = true;
	}
	if (pushed)
		virtio_transport_notify_used(c->t, VIRTIO_CONSOLE_QUEUE_RX);
}

static void client_disconnect(struct virtio_console *c)
{
	if (c->client_fd < 0)
		return;
	watch_forget(c, c->client_fd);
	close(c->client_fd);
	log_dbg(c->log, "virtio-console: unix client disconnected");
	c->client_fd = c->in_fd = c->out_fd = -1;
	c->in_eof = c->out_dead = false;
	if (c->tx.len) { /* output meant for the departed client */
		drop_bytes(c, c->tx.len);
		ring_consume(&c->tx, c->tx.len);
	}
}

/* Input fd readable (or hung up): read as much as the ring holds. */
static void read_in(struct virtio_console *c)
{
	while (c->in_fd >= 0 && !c->in_eof && c->rx.len < c->rx.cap) {
		uint32_t span;
		uint8_t *dst = ring_space(&c->rx, &span);
		ssize_t n = read(c->in_fd, dst, span);
		if (n > 0) {
			/* one read per event: a stdio fd may be blocking */
			c->rx.len += (uint32_t)n;
			return;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EOF or error */
		if (c->backend == VIRTIO_CONSOLE_BACKEND_UNIX) {
			client_disconnect(c);
		} else {
			if (n < 0)
				log_warn(c->log, "virtio-console: input failed (%s)", strerror(errno));
			c->in_eof = true;
		}
		return;
	}
}

static void accept_client(struct virtio_console *c)
{
	if (c->client_fd >= 0)
		return;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return; /* EAGAIN, or the client went away already */
	c->client_fd = c->in_fd = c->out_fd = fd;
	c->in_eof = c->out_dead = false;
	c->out_mode = OUT_SEND;
	c->out_pollable = true;
	c->st.clients++;
	log_dbg(c->log, "virtio-console: unix client connected");
}

static void handle_events(struct virtio_console *c)
{
	struct epoll_event evs[W_NR];
	int n = epoll_wait(c->epfd, evs, W_NR, 0);
	for (int i = 0; i < n; i++) {
		uint32_t e = evs[i].events;
		switch (evs[i].data.u32) {
		case W_LISTEN:
			accept_client(c);
			break;
		case W_IN:
			if ((e & EPOLLOUT) && c->out_fd == c->in_fd)
				flush_out(c);
			if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->in_fd >= 0) {
				if ((e & (EPOLLHUP | EPOLLERR)) && c->in_fd == c->out_fd) {
					c->out_dead = true; /* peer gone: keep reading to EOF */
					flush_out(c);
				}
				read_in(c);
			}
			break;
		case W_OUT:
			if (e & (EPOLLHUP | EPOLLERR))
				c->out_dead = true;
			flush_out(c);
			break;
		default:
			break;
		}
	}
	deliver_rx(c);
	sync_interest(c);
}

void virtio_console_poll(struct virtio_console *c)
{
	cons_lock(c);
	handle_events(c);
	cons_unlock(c);
}

static void loop_cb(void *ctx, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	virtio_console_poll(ctx);
}

/* ---- transport callbacks -------------------------------------------------------------- */

static uint64_t cons_features(void *dev)
{
	struct virtio_console *c = dev;
	uint64_t f = 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE;
	f |= 1ull << VIRTIO_F_RING_INDIRECT_DESC;
	f |= 1ull << VIRTIO_F_RING_EVENT_IDX;
	if (c->cols && c->rows)
		f |= 1ull << VIRTIO_CONSOLE_F_SIZE;
	return f;
}

static void cons_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_console *c = dev;
	uint8_t cfg[VIRTIO_CONSOLE_CONFIG_SIZE] = { 0 };
	cfg[0] = (uint8_t)c->cols;
	cfg[1] = (uint8_t)(c->cols >> 8);
	cfg[2] = (uint8_t)c->rows;
	cfg[3] = (uint8_t)(c->rows >> 8);
	cfg[4] = 1; /* max_nr_ports (meaningful with MULTIPORT only) */
	if (off > sizeof(cfg) || len > sizeof(cfg) - off) /* the transport checked; be sure */
		return;
	memcpy(data, cfg + off, len);
}

static void cons_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_console *c = dev;
	/* emerg_wr (offset 8): the low byte is one character of output */
	if (off == 8 && len >= 1) {
		uint32_t span;
		uint8_t *dst = ring_space(&c->tx, &span);
		if (!span) {
			flush_out(c);
			dst = ring_space(&c->tx, &span);
		}
		if (span) {
			*dst = data[0];
			c->tx.len++;
		} else {
			drop_bytes(c, 1);
		}
		flush_out(c);
		sync_interest(c);
	}
}

static int cons_activate(void *dev, uint64_t features)
{
	struct virtio_console *c = dev;
	c->features = features;
	c->activated = c->activating = true;
	deliver_rx(c);
	process_tx(c);
	sync_interest(c);
	c->activating = false;
	return 0;
}

static void cons_queue_notify(void *dev, uint16_t q)
{
	struct virtio_console *c = dev;
	if (q == VIRTIO_CONSOLE_QUEUE_TX)
		process_tx(c);
	else if (q == VIRTIO_CONSOLE_QUEUE_RX)
		deliver_rx(c);
	sync_interest(c);
}

static void cons_reset(void *dev)
{
	struct virtio_console *c = dev;
	/* Queues belong to the transport, which resets them. Host input already
	 * buffered is kept for the next driver; nothing else is in flight. */
	c->features = 0;
	c->activated = false;
}

static void cons_bind(void *dev, struct virtio_transport *t)
{
	struct virtio_console *c = dev;
	pthread_mutex_lock(&c->solo_lock);
	c->t = t;
	if (!t)
		c->activated = false;
	pthread_mutex_unlock(&c->solo_lock);
}

const struct virtio_dev_ops virtio_console_ops = {
	.name = "virtio-console",
	.device_id = VIRTIO_ID_CONSOLE,
	.num_queues = 2,
	.queue_max_size = VIRTIO_CONSOLE_QUEUE_SIZE,
	.features = cons_features,
	.config_size = VIRTIO_CONSOLE_CONFIG_SIZE,
	.config_read = cons_config_read,
	.config_write = cons_config_write,
	.activate = cons_activate,
	.queue_notify = cons_queue_notify,
	.reset = cons_reset,
	.bind = cons_bind,
};

/* ---- creation ------------------------------------------------------------------------- */

/* e is a positive errno here; the shared helper returns -e */
#define fail(err, errlen, e, ...) errbuf_fail((err), (errlen), -(e), __VA_ARGS__)

/* Guest output to a stdio fd we do not own, without changing its flags. */
static void setup_stdio_out(struct virtio_console *c, int fd)
{
	struct stat sb;
	c->out_fd = fd;
	c->out_pollable = true;
	c->out_mode = OUT_WRITE;
	if (fd < 0)
		return;
	if (fstat(fd, &sb) < 0) {
		c->out_mode = OUT_POLL_WRITE;
		return;
	}
	if (S_ISSOCK(sb.st_mode)) {
		c->out_mode = OUT_SEND;
	} else if (S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode)) {
		/* a separate open file description that we may make non-blocking */
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		int nfd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (nfd >= 0) {
			c->out_own_fd = c->out_fd = nfd;
		} else {
			c->out_mode = OUT_POLL_WRITE;
		}
	} else {
		c->out_pollable = false; /* regular file: writes do not block */
	}
}

static int setup_stdio(struct virtio_console *c, const struct virtio_console_config *cfg,
		       char *err, size_t errlen)
{
	c->in_fd = cfg->in_fd;
	setup_stdio_out(c, cfg->out_fd);
	if (c->in_fd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN };
		if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->in_fd, &ev) < 0) {
			if (errno != EPERM)
				return fail(err, errlen, errno,
					    "virtio-console: cannot watch input fd %d: %s", c->in_fd,
					    strerror(errno));
			log_warn(c->log, "virtio-console: input fd %d cannot be polled; no input",
				 c->in_fd);
			c->in_fd = -1;
		} else {
			epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->in_fd, NULL);
		}
	}
	if (c->in_fd >= 0 && cfg->raw_tty && isatty(c->in_fd) &&
	    tcgetattr(c->in_fd, &c->saved_tio) == 0) {
		struct termios raw = c->saved_tio;
		cfmakeraw(&raw);
		raw.c_lflag |= ISIG; /* keep Ctrl-C: it stops the VMM */
		raw.c_oflag |= OPOST | ONLCR;
		if (tcsetattr(c->in_fd, TCSANOW, &raw) == 0)
			c->tty_raw = true;
	}
	return 0;
}

static int setup_pty(struct virtio_console *c, char *err, size_t errlen)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (m < 0)
		return fail(err, errlen, errno, "virtio-console: cannot open a pty: %s",
			    strerror(errno));
	c->pty_master = m;
	if (grantpt(m) < 0 || unlockpt(m) < 0 ||
	    ptsname_r(m, c->pty_path, sizeof(c->pty_path)) != 0)
		return fail(err, errlen, errno ? errno : EIO,
			    "virtio-console: cannot set up the pty: %s", strerror(errno));
	/* Raw line discipline: no echo of host input back to the guest, no
	 * newline translation either way. */
	struct termios tio;
	if (tcgetattr(m, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(m, TCSANOW, &tio);
	}
	/* Keep the slave open ourselves: without it the master reports EPOLLHUP
	 * (and EIO) while no client has the pty open. */
	c->pty_slave = open(c->pty_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (c->pty_slave < 0)
		return fail(err, errlen, errno, "virtio-console: cannot open %s: %s", c->pty_path,
			    strerror(errno));
	c->in_fd = c->out_fd = m;
	c->out_mode = OUT_WRITE;
	c->out_pollable = true;
	struct log always = { LOG_INFO, NULL };
	if (c->log)
		always.out = c->log->out;
	log_info(&always, "virtio-console: pty %s", c->pty_path);
	return 0;
}

/* A path for a listening unix socket: a stale socket file is removed, anything
 * else there is an error. */
static int setup_unix(struct virtio_console *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!path || !*path)
		return fail(err, errlen, EINVAL, "virtio-console: the unix backend needs a path");
	if (strlen(path) >= sizeof(sa.sun_path))
		return fail(err, errlen, ENAMETOOLONG,
			    "virtio-console: socket path %s is longer than %zu bytes", path,
			    sizeof(sa.sun_path) - 1);
	struct stat sb;
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode))
			return fail(err, errlen, EEXIST,
				    "virtio-console: %s exists and is not a socket", path);
		if (unlink(path) < 0)
			return fail(err, errlen, errno,
				    "virtio-console: cannot remove stale socket %s: %s", path,
				    strerror(errno));
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, errno, "virtio-console: socket: %s", strerror(errno));
	c->listen_fd = fd;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail(err, errlen, errno, "virtio-console: cannot bind %s: %s", path,
			    strerror(errno));
	c->sock_path = strdup(path);
	if (!c->sock_path) {
		unlink(path);
		return fail(err, errlen, ENOMEM, "virtio-console: out of memory");
	}
	if (listen(fd, 4) < 0)
		return fail(err, errlen, errno, "virtio-console: cannot listen on %s: %s", path,
			    strerror(errno));
	return 0;
}

int virtio_console_new(struct virtio_console **out, const struct virtio_console_config *cfg,
		       struct event_loop *loop, const struct log *log, char *err, size_t errlen)
{
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	uint32_t rxs = cfg->rx_buf_size ? cfg->rx_buf_size : VIRTIO_CONSOLE_BUF_DEFAULT;
	uint32_t txs = cfg->tx_buf_size ? cfg->tx_buf_size : VIRTIO_CONSOLE_BUF_DEFAULT;
	if (rxs > VIRTIO_CONSOLE_BUF_MAX || txs > VIRTIO_CONSOLE_BUF_MAX)
		return fail(err, errlen, EINVAL, "virtio-console: buffer size above %u bytes",
			    VIRTIO_CONSOLE_BUF_MAX);
	if (cfg->backend > VIRTIO_CONSOLE_BACKEND_UNIX)
		return fail(err, errlen, EINVAL, "virtio-console: unknown backend %d",
			    (int)cfg->backend);
	struct virtio_console *c = calloc(1, sizeof(*c));
	if (!c)
		return fail(err, errlen, ENOMEM, "virtio-console: out of memory");
	pthread_mutex_init(&c->solo_lock, NULL);
	c->log = log;
	c->backend = cfg->backend;
	c->cols = cfg->cols;
	c->rows = cfg->rows;
	c->in_fd = c->out_fd = c->out_own_fd = -1;
	c->pty_master = c->pty_slave = c->listen_fd = c->client_fd = -1;
	for (int i = 0; i < W_NR; i++)
		c->w[i].fd = -1;
	int r;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0) {
		r = fail(err, errlen, errno, "virtio-console: epoll_create1: %s", strerror(errno));
		goto fail;
	}
	if (ring_init(&c->rx, rxs) || ring_init(&c->tx, txs)) {
		r = fail(err, errlen, ENOMEM, "virtio-console: out of memory");
		goto fail;
	}
	switch (cfg->backend) {
	case VIRTIO_CONSOLE_BACKEND_STDIO:
		r = setup_stdio(c, cfg, err, errlen);
		break;
	case VIRTIO_CONSOLE_BACKEND_PTY:
		r = setup_pty(c, err, errlen);
		break;
	default:
		r = setup_unix(c, cfg->path, err, errlen);
		break;
	}
	if (r)
		goto fail;
	sync_interest(c);
	if (loop) {
		r = event_loop_add(loop, c->epfd, EPOLLIN, loop_cb, c);
		if (r) {
			fail(err, errlen, -r, "virtio-console: cannot register with the event loop: %s",
			     strerror(-r));
			goto fail;
		}
		c->loop = loop;
	}
	*out = c;
	return 0;
fail:
	virtio_console_free(c);
	return r;
}

void virtio_console_free(struct virtio_console *c)
{
	if (!c)
		return;
	if (c->loop)
		event_loop_del(c->loop, c->epfd);
	if (c->tty_raw)
		tcsetattr(c->in_fd, TCSANOW, &c->saved_tio);
	int fds[] = { c->epfd, c->out_own_fd, c->pty_master, c->pty_slave, c->listen_fd,
		      c->client_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (c->sock_path) {
		unlink(c->sock_path);
		free(c->sock_path);
	}
	free(c->rx.buf);
	free(c->tx.buf);
	pthread_mutex_destroy(&c->solo_lock);
	free(c);
}

const char *virtio_console_pty_path(const struct virtio_console *c)
{
	return c->pty_path;
}

int virtio_console_fd(const struct virtio_console *c)
{
	return c->epfd;
}

void virtio_console_get_stats(struct virtio_console *c, struct virtio_console_stats *st)
{
	cons_lock(c);
	*st = c->st;
	cons_unlock(c);
}
