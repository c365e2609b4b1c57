/* virtio-console (device id 3): one port, receiveq 0 / transmitq 1, with a host
 * backend of stdio fds, a new pseudo terminal, or a listening unix socket. */
#ifndef VMM_VIRTIO_CONSOLE_H
#define VMM_VIRTIO_CONSOLE_H

#include "virtio/virtio_dev.h"

#include <stddef.h>
#include <stdint.h>

struct event_loop;
struct log;
struct virtio_console;

/* feature bits */
#define VIRTIO_CONSOLE_F_SIZE 0
#define VIRTIO_CONSOLE_F_MULTIPORT 1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2

#define VIRTIO_CONSOLE_QUEUE_RX 0 /* receiveq: host → guest */
#define VIRTIO_CONSOLE_QUEUE_TX 1 /* transmitq: guest → host */
#define VIRTIO_CONSOLE_QUEUE_SIZE 256
#define VIRTIO_CONSOLE_CONFIG_SIZE 12 /* cols, rows, max_nr_ports, emerg_wr */

#define VIRTIO_CONSOLE_BUF_DEFAULT (64 * 1024)
#define VIRTIO_CONSOLE_BUF_MAX (16 * 1024 * 1024)

enum virtio_console_backend {
	VIRTIO_CONSOLE_BACKEND_STDIO = 0, /* in_fd / out_fd (not owned) */
	VIRTIO_CONSOLE_BACKEND_PTY,       /* a new pty master; slave path logged */
	VIRTIO_CONSOLE_BACKEND_UNIX,      /* listening unix socket at path, one client */
};

struct virtio_console_config {
	enum virtio_console_backend backend;
	/* stdio: host input (-1: none) and output (-1: discard). Not owned: never
	 * closed and their flags are never changed (output to a pipe or tty goes
	 * through a separate non-blocking open file description). Output to a
	 * pipe whose reader left raises SIGPIPE: the front end ignores it. */
	int in_fd;
	int out_fd;
	bool raw_tty; /* stdio: a TTY in_fd is put into raw mode (ISIG kept) until free */
	const char *path; /* unix: socket path (a stale socket file there is replaced) */
	uint16_t cols, rows; /* both nonzero: offered with VIRTIO_CONSOLE_F_SIZE */
	/* 0 → VIRTIO_CONSOLE_BUF_DEFAULT; at most VIRTIO_CONSOLE_BUF_MAX.
	 * rx_buf: host input held while the guest has posted no receive buffers;
	 *         when full the backend is not read any more (back-pressure).
	 * tx_buf: guest output held while the backend is not writable; beyond it
	 *         guest output is dropped and counted. */
	uint32_t rx_buf_size;
	uint32_t tx_buf_size;
};

struct virtio_console_stats {
	uint64_t rx_bytes;      /* host → guest, delivered into receive buffers */
	uint64_t tx_bytes;      /* guest → host, written to the backend */
	uint64_t dropped_bytes; /* guest output dropped (backend absent, full or broken) */
	uint32_t clients;       /* unix backend: clients accepted so far */
};

/*
 * Create the console and its backend. The pty backend logs
 * "virtio-console: pty <path>" at info level (always shown). With a non-NULL
 * loop, backend fds are watched from the loop thread (through one private epoll
 * fd registered there); with loop == NULL the caller drives
 * virtio_console_poll(). Returns 0 or -errno with one sentence in err.
 */
int virtio_console_new(struct virtio_console **out, const struct virtio_console_config *cfg,
		       struct event_loop *loop, const struct log *log, char *err, size_t errlen);
/* Unregister from the loop (do not hold the transport lock), close what the
 * console owns, unlink the unix socket path, restore a raw TTY. NULL is fine. */
void virtio_console_free(struct virtio_console *c);

/* The transport's view of the device: pass the console as the dev pointer
 * (virtio_mmio_new(&virtio_console_ops, console, ...)); ops.bind attaches it. */
extern const struct virtio_dev_ops virtio_console_ops;

/* The pty slave path ("" for other backends). */
const char *virtio_console_pty_path(const struct virtio_console *c);
/* The private epoll fd: readable when backend work is pending. */
int virtio_console_fd(const struct virtio_console *c);
/* Handle pending backend events now (what the loop callback does). Takes the
 * transport lock; do not hold it. */
void virtio_console_poll(struct virtio_console *c);
/* Takes the transport lock like poll: do not hold it. */
void virtio_console_get_stats(struct virtio_console *c, struct virtio_console_stats *st);

#endif
