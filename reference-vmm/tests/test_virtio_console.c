/* Unit tests for virtio/console.c through the virtio-mmio transport with the
 * vq_builder as the guest driver: stdio pipes, pty, unix socket backends, TX
 * dropping, RX back-pressure without loss, config space, resets, fd leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/event_loop.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "unit_helpers.h"
#include "vq_builder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define RXQ_GPA 0x40000000ull
#define TXQ_GPA 0x50000000ull
#define QRAM (8ull << 20)
#define QSZ 64

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ---- harness: console + transport + two driver-side queues ---------------------------- */

struct h {
	struct vqb rx, tx;
	struct guest_mem gm;
	struct unit_irq_rec irq;
	struct unit_log_capture logc;
	struct virtio_transport *t;
	struct virtio_console *c;
	uint64_t rx_gpa[QSZ];
	char tmpdir[64];
	int fds_before;
};

static int h_create(struct h *h, struct virtio_console_config *cfg, struct event_loop *loop)
{
	char err[256];
	int r = virtio_console_new(&h->c, cfg, loop, &h->logc.log, err, sizeof(err));
	if (r)
		return r;
	h->t = virtio_mmio_new(&virtio_console_ops, h->c, &h->gm, unit_irq_rec_line(&h->irq, 3),
			       &h->logc.log);
	assert_non_null(h->t);
	return 0;
}

/* Driver: negotiate, set up both queues, DRIVER_OK. */
static void h_driver_up(struct h *h, uint64_t features)
{
	assert_true(vqb_mmio_negotiate(h->t, features) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqb_mmio_setup_queue(h->t, VIRTIO_CONSOLE_QUEUE_RX, &h->rx), 1);
	assert_int_equal(vqb_mmio_setup_queue(h->t, VIRTIO_CONSOLE_QUEUE_TX, &h->tx), 1);
	assert_true(vqb_mmio_driver_ok(h->t) & VIRTIO_STATUS_DRIVER_OK);
}

static int setup(void **state)
{
	struct h *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->fds_before = count_fds();
	assert_int_equal(unit_log_capture_open(&h->logc, LOG_DEBUG), 0);
	assert_int_equal(vqb_init(&h->rx, RXQ_GPA, QRAM, QSZ), 0);
	assert_int_equal(vqb_init(&h->tx, TXQ_GPA, QRAM, QSZ), 0);
	guest_mem_init(&h->gm);
	assert_int_equal(guest_mem_add(&h->gm, h->rx.ram_gpa, h->rx.ram_size, h->rx.ram), 0);
	assert_int_equal(guest_mem_add(&h->gm, h->tx.ram_gpa, h->tx.ram_size, h->tx.ram), 0);
	unit_irq_rec_init(&h->irq);
	snprintf(h->tmpdir, sizeof(h->tmpdir), "/tmp/vcons.XXXXXX");
	assert_non_null(mkdtemp(h->tmpdir));
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct h *h = *state;
	virtio_mmio_free(h->t);
	virtio_console_free(h->c);
	vqb_destroy(&h->rx);
	vqb_destroy(&h->tx);
	unit_log_capture_close(&h->logc);
	rmdir(h->tmpdir); /* fails if a test left a file: that is a bug too */
	int before = h->fds_before, after = count_fds();
	free(h);
	assert_int_equal(after, before); /* no fd leaks */
	return 0;
}

/* Guest posts n receive buffers of len bytes and notifies. */
static void post_rx(struct h *h, unsigned int n, uint32_t len)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t gpa = vqb_alloc(&h->rx, len, 8);
		assert_true(gpa != VQB_BAD_GPA);
		struct vqb_buf b = { gpa, len, true };
		uint16_t head;
		assert_int_equal(vqb_send(&h->rx, &b, 1, &head), 0);
		h->rx_gpa[head] = gpa;
	}
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_QUEUE_RX);
}

/* Everything the device returned in receive buffers, appended to out. */
static size_t collect_rx(struct h *h, uint8_t *out, size_t cap)
{
	size_t n = 0;
	uint32_t id, len;
	while (vqb_get_used(&h->rx, &id, &len) == 1) {
		assert_true(id < QSZ);
		assert_true(n + len <= cap);
		memcpy(out + n, vqb_host(&h->rx, h->rx_gpa[id], len), len);
		n += len;
	}
	return n;
}

/* Guest transmits data in one chain of nbufs descriptors and notifies. */
static void guest_tx(struct h *h, const void *data, uint32_t n, unsigned int nbufs)
{
	struct vqb_buf b[8];
	uint32_t per = n / nbufs;
	for (unsigned int i = 0; i < nbufs; i++) {
		uint32_t len = i == nbufs - 1 ? n - per * i : per;
		b[i] = (struct vqb_buf){ vqb_alloc_copy(&h->tx, (const uint8_t *)data + per * i, len),
					 len, false };
		assert_true(b[i].gpa != VQB_BAD_GPA);
	}
	uint16_t head;
	assert_int_equal(vqb_send(&h->tx, b, nbufs, &head), 0);
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_QUEUE_TX);
}

static unsigned int drain_used(struct vqb *b)
{
	uint32_t id, len;
	unsigned int n = 0;
	while (vqb_get_used(b, &id, &len) == 1)
		n++;
	return n;
}

static bool fd_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) == 1;
}

/* Call virtio_console_poll while its fd says there is work (bounded). */
static void pump(struct h *h)
{
	for (int i = 0; i < 1000 && fd_readable(virtio_console_fd(h->c), 0); i++)
		virtio_console_poll(h->c);
}

static ssize_t read_all(int fd, uint8_t *buf, size_t cap, int ms)
{
	size_t n = 0;
	while (n < cap && fd_readable(fd, ms)) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

static struct virtio_console_config stdio_cfg(int in, int out)
{
	return (struct virtio_console_config){ .backend = VIRTIO_CONSOLE_BACKEND_STDIO,
					       .in_fd = in,
					       .out_fd = out };
}

/* ---- device identity and config ------------------------------------------------------- */

static void test_identity_and_config(void **state)
{
	struct h *h = *state;
	struct virtio_console_config cfg = stdio_cfg(-1, -1);
	cfg.cols = 132;
	cfg.rows = 43;
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_CONSOLE);
	vqb_mmio_write(h->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t f = vqb_mmio_read(h->t, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_true(f & (1u << VIRTIO_CONSOLE_F_SIZE));
	assert_true(f & (1u << VIRTIO_CONSOLE_F_EMERG_WRITE));
	assert_false(f & (1u << VIRTIO_CONSOLE_F_MULTIPORT));
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_CONFIG), (43u << 16) | 132u);
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_CONFIG + 4), 1);
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_CONFIG + 8), 0);
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_CONSOLE_QUEUE_SIZE);
}

static void test_no_size_feature_without_geometry(void **state)
{
	struct h *h = *state;
	struct virtio_console_config cfg = stdio_cfg(-1, -1);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	vqb_mmio_write(h->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_false(vqb_mmio_read(h->t, VIRTIO_MMIO_DEVICE_FEATURES) &
		     (1u << VIRTIO_CONSOLE_F_SIZE));
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_CONFIG), 0);
}

static void test_bad_config_rejected(void **state)
{
	struct h *h = *state;
	char err[256];
	struct virtio_console_config cfg = stdio_cfg(-1, -1);
	cfg.rx_buf_size = VIRTIO_CONSOLE_BUF_MAX + 1;
	assert_int_equal(virtio_console_new(&h->c, &cfg, NULL, &h->logc.log, err, sizeof(err)),
			 -EINVAL);
	assert_null(h->c);
	assert_non_null(strstr(err, "buffer size"));
	cfg = (struct virtio_console_config){ .backend = VIRTIO_CONSOLE_BACKEND_UNIX };
	assert_int_equal(virtio_console_new(&h->c, &cfg, NULL, &h->logc.log, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "path"));
}

/* ---- stdio ---------------------------------------------------------------------------- */

static void test_stdio_tx(void **state)
{
	struct h *h = *state;
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(-1, out[1]);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	guest_tx(h, "hello, ", 7, 1);
	guest_tx(h, "virtio world\n", 13, 3); /* one chain, three descriptors */
	assert_int_equal(drain_used(&h->tx), 2);
	uint8_t buf[64];
	assert_int_equal(read_all(out[0], buf, sizeof(buf), 50), 20);
	assert_memory_equal(buf, "hello, virtio world\n", 20);
	struct virtio_console_stats st;
	virtio_console_get_stats(h->c, &st);
	assert_int_equal(st.tx_bytes, 20);
	assert_int_equal(st.dropped_bytes, 0);
	/* the caller's fd keeps its flags (we write through our own description) */
	assert_false(fcntl(out[1], F_GETFL) & O_NONBLOCK);
	assert_true(h->irq.calls > 0); /* used buffers interrupt the driver */
	close(out[0]);
	close(out[1]);
}

static void test_stdio_tx_indirect(void **state)
{
	struct h *h = *state;
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(-1, out[1]);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	uint64_t a = vqb_alloc_copy(&h->tx, "indi", 4), b = vqb_alloc_copy(&h->tx, "rect", 4);
	struct vqb_buf bufs[] = { { a, 4, false }, { b, 4, false } };
	uint16_t head;
	assert_int_equal(vqb_add_indirect(&h->tx, bufs, 2, &head, NULL), 0);
	assert_int_equal(vqb_publish(&h->tx, head), 0);
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_QUEUE_TX);
	uint8_t buf[16];
	assert_int_equal(read_all(out[0], buf, sizeof(buf), 50), 8);
	assert_memory_equal(buf, "indirect", 8);
	close(out[0]);
	close(out[1]);
}

static void test_stdio_rx(void **state)
{
	struct h *h = *state;
	int in[2];
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(in[0], -1);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	post_rx(h, 4, 16);
	assert_int_equal(write(in[1], "abcdefghijklmnopqrstuvwxyz", 26), 26);
	pump(h);
	uint8_t buf[64];
	size_t n = collect_rx(h, buf, sizeof(buf));
	assert_int_equal(n, 26);
	assert_memory_equal(buf, "abcdefghijklmnopqrstuvwxyz", 26);
	struct virtio_console_stats st;
	virtio_console_get_stats(h->c, &st);
	assert_int_equal(st.rx_bytes, 26);
	close(in[0]);
	close(in[1]);
}

/* Host input that arrives before the driver is up is kept for it. */
static void test_stdio_rx_before_driver(void **state)
{
	struct h *h = *state;
	int in[2];
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(in[0], -1);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	assert_int_equal(write(in[1], "early", 5), 5);
	pump(h); /* buffered: no transport activity yet */
	h_driver_up(h, ~0ull);
	post_rx(h, 2, 64);
	uint8_t buf[64];
	assert_int_equal(collect_rx(h, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "early", 5);
	close(in[0]);
	close(in[1]);
}

/* No receive buffers: at most rx_buf_size bytes are read from the backend,
 * then it is not watched any more; the rest stays in the pipe; nothing is lost. */
static void test_rx_backpressure_no_loss(void **state)
{
	struct h *h = *state;
	int in[2];
	assert_int_equal(pipe2(in, O_CLOEXEC | O_NONBLOCK), 0);
	struct virtio_console_config cfg = stdio_cfg(in[0], -1);
	cfg.rx_buf_size = 4096;
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	enum { TOTAL = 40000 };
	static uint8_t src[TOTAL], dst[TOTAL];
	uint32_t x = 12345;
	for (size_t i = 0; i < TOTAL; i++) {
		x = x * 1103515245u + 12345u;
		src[i] = (uint8_t)(x >> 16);
	}
	assert_int_equal(write(in[1], src, TOTAL), TOTAL);
	pump(h);
	/* the ring is full, the pipe keeps the rest, the device is idle */
	int left = 0;
	assert_int_equal(ioctl(in[0], FIONREAD, &left), 0);
	assert_int_equal(left, TOTAL - 4096);
	assert_false(fd_readable(virtio_console_fd(h->c), 0));
	/* the guest drains it in small buffers */
	size_t got = 0;
	for (int round = 0; round < 200 && got < TOTAL; round++) {
		post_rx(h, 8, 700);
		pump(h);
		got += collect_rx(h, dst + got, TOTAL - got);
	}
	assert_int_equal(got, TOTAL);
	assert_memory_equal(src, dst, TOTAL);
	close(in[0]);
	close(in[1]);
}

/* Output to a pipe nobody reads: the vCPU never blocks; tx_buf_size bytes are
 * held, beyond that output is dropped and counted, with one warning. */
static void test_tx_blocked_backend_drops(void **state)
{
	struct h *h = *state;
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	int pipe_cap = fcntl(out[1], F_GETPIPE_SZ);
	assert_true(pipe_cap > 0);
	struct virtio_console_config cfg = stdio_cfg(-1, out[1]);
	cfg.tx_buf_size = 4096;
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	static uint8_t chunk[4096];
	memset(chunk, 'z', sizeof(chunk));
	uint32_t sent = 0;
	uint64_t t0 = unit_now_ms();
	for (int i = 0; i < (pipe_cap / 4096) + 8; i++) {
		guest_tx(h, chunk, sizeof(chunk), 1);
		sent += sizeof(chunk);
		drain_used(&h->tx);
	}
	assert_true(unit_now_ms() - t0 < 5000);
	struct virtio_console_stats st;
	virtio_console_get_stats(h->c, &st);
	assert_true(st.dropped_bytes > 0);
	assert_int_equal(st.tx_bytes + st.dropped_bytes + 4096, sent); /* 4096 still held */
	const char *log = unit_log_capture_text(&h->logc);
	const char *w = strstr(log, "dropping guest output");
	assert_non_null(w);
	assert_null(strstr(w + 1, "dropping guest output")); /* one warning per episode */
	/* the reader wakes up: the held bytes follow */
	static uint8_t buf[1 << 20];
	ssize_t n = read_all(out[0], buf, sizeof(buf), 0);
	assert_int_equal(n, (ssize_t)st.tx_bytes);
	pump(h);
	assert_int_equal(read_all(out[0], buf, sizeof(buf), 50), 4096);
	close(out[0]);
	close(out[1]);
}

static void test_tx_no_backend_counts_drops(void **state)
{
	struct h *h = *state;
	struct virtio_console_config cfg = stdio_cfg(-1, -1);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	guest_tx(h, "lost", 4, 1);
	assert_int_equal(drain_used(&h->tx), 1); /* the buffer still comes back */
	struct virtio_console_stats st;
	virtio_console_get_stats(h->c, &st);
	assert_int_equal(st.dropped_bytes, 4);
}

static void test_tx_reader_gone(void **state)
{
	struct h *h = *state;
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(-1, out[1]);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	close(out[0]); /* EPIPE, not SIGPIPE: the reopened fd is written with SIGPIPE ignored */
	h_driver_up(h, ~0ull);
	guest_tx(h, "gone", 4, 1);
	assert_int_equal(drain_used(&h->tx), 1);
	struct virtio_console_stats st;
	virtio_console_get_stats(h->c, &st);
	assert_int_equal(st.dropped_bytes, 4);
	close(out[1]);
}

static void test_emergency_write(void **state)
{
	struct h *h = *state;
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(-1, out[1]);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	assert_true(vqb_mmio_negotiate(h->t, 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE) &
		    VIRTIO_STATUS_FEATURES_OK);
	vqb_mmio_write(h->t, VIRTIO_MMIO_CONFIG + 8, 'E');
	vqb_mmio_write(h->t, VIRTIO_MMIO_CONFIG + 8, 0x100 | '!');
	uint8_t buf[4];
	assert_int_equal(read_all(out[0], buf, sizeof(buf), 50), 2);
	assert_memory_equal(buf, "E!", 2);
	close(out[0]);
	close(out[1]);
}

/* A socketpair as both input and output (one fd, one epoll registration). */
static void test_stdio_same_fd_both_ways(void **state)
{
	struct h *h = *state;
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	struct virtio_console_config cfg = stdio_cfg(sp[0], sp[0]);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	guest_tx(h, "out", 3, 1);
	uint8_t buf[16];
	assert_int_equal(read_all(sp[1], buf, sizeof(buf), 50), 3);
	assert_memory_equal(buf, "out", 3);
	post_rx(h, 1, 16);
	assert_int_equal(write(sp[1], "in", 2), 2);
	pump(h);
	assert_int_equal(collect_rx(h, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "in", 2);
	/* peer gone: no busy loop, output dropped */
	close(sp[1]);
	pump(h);
	assert_false(fd_readable(virtio_console_fd(h->c), 0));
	guest_tx(h, "x", 1, 1);
	struct virtio_console_stats st;
	virtio_console_get_stats(h->c, &st);
	assert_int_equal(st.dropped_bytes, 1);
	close(sp[0]);
}

/* Input EOF: the fd is no longer watched (no busy loop). */
static void test_stdio_input_eof(void **state)
{
	struct h *h = *state;
	int in[2];
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(in[0], -1);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	assert_int_equal(write(in[1], "bye", 3), 3);
	close(in[1]);
	pump(h);
	assert_false(fd_readable(virtio_console_fd(h->c), 0));
	post_rx(h, 1, 16);
	uint8_t buf[16];
	assert_int_equal(collect_rx(h, buf, sizeof(buf)), 3);
	close(in[0]);
}

/* ---- hostile driver, reset ------------------------------------------------------------ */

static void test_bad_chain_needs_reset_then_recovers(void **state)
{
	struct h *h = *state;
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(-1, out[1]);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	/* a head index beyond the queue size */
	assert_int_equal(vqb_set_avail_entry(&h->tx, 0, QSZ + 5), 0);
	assert_int_equal(vqb_set_avail_idx(&h->tx, 1), 0);
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_QUEUE_TX);
	assert_true(vqb_mmio_read(h->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* the driver resets and starts over with fresh rings */
	vqb_destroy(&h->tx);
	assert_int_equal(vqb_init(&h->tx, TXQ_GPA, QRAM, QSZ), 0);
	h->gm.regions[1].host = h->tx.ram;
	h_driver_up(h, ~0ull);
	guest_tx(h, "again", 5, 1);
	uint8_t buf[8];
	assert_int_equal(read_all(out[0], buf, sizeof(buf), 50), 5);
	assert_memory_equal(buf, "again", 5);
	close(out[0]);
	close(out[1]);
}

/* A receive chain with readable descriptors only is returned empty. */
static void test_rx_chain_without_writable_part(void **state)
{
	struct h *h = *state;
	int in[2];
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(in[0], -1);
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	uint64_t g = vqb_alloc(&h->rx, 16, 8);
	struct vqb_buf b = { g, 16, false };
	uint16_t head;
	assert_int_equal(vqb_send(&h->rx, &b, 1, &head), 0);
	h->rx_gpa[head] = g;
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_QUEUE_RX);
	assert_int_equal(write(in[1], "q", 1), 1);
	pump(h);
	uint32_t id, len;
	assert_int_equal(vqb_get_used(&h->rx, &id, &len), 1);
	assert_int_equal(len, 0);
	post_rx(h, 1, 4); /* the byte is not lost */
	uint8_t buf[4];
	assert_int_equal(collect_rx(h, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'q');
	close(in[0]);
	close(in[1]);
}

/* ---- pty ------------------------------------------------------------------------------ */

static void test_pty(void **state)
{
	struct h *h = *state;
	struct virtio_console_config cfg = { .backend = VIRTIO_CONSOLE_BACKEND_PTY };
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	const char *path = virtio_console_pty_path(h->c);
	assert_true(strncmp(path, "/dev/pts/", 9) == 0);
	char line[128];
	snprintf(line, sizeof(line), "vmm: info: virtio-console: pty %s\n", path);
	assert_non_null(strstr(unit_log_capture_text(&h->logc), line));
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISCHR(sb.st_mode));

	int s = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(s >= 0);
	h_driver_up(h, ~0ull);
	guest_tx(h, "login: ", 7, 1);
	uint8_t buf[64];
	assert_int_equal(read_all(s, buf, 7, 500), 7);
	assert_memory_equal(buf, "login: ", 7);
	post_rx(h, 2, 32);
	assert_int_equal(write(s, "root\n", 5), 5);
	uint64_t end = unit_now_ms() + 2000;
	size_t n = 0;
	while (n < 5 && unit_now_ms() < end) {
		fd_readable(virtio_console_fd(h->c), 20);
		pump(h);
		n += collect_rx(h, buf + n, sizeof(buf) - n);
	}
	assert_int_equal(n, 5); /* raw: no echo, no CR/LF translation */
	assert_memory_equal(buf, "root\n", 5);
	/* nothing echoed back to the pty side either */
	assert_false(fd_readable(s, 50));
	close(s);
	/* client gone: output is kept or dropped, never an error spin */
	guest_tx(h, "more", 4, 1);
	pump(h);
	assert_false(fd_readable(virtio_console_fd(h->c), 0));
}

/* ---- unix socket ---------------------------------------------------------------------- */

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_unix_clients(void **state)
{
	struct h *h = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/console.sock", h->tmpdir);
	struct virtio_console_config cfg = { .backend = VIRTIO_CONSOLE_BACKEND_UNIX,
					     .path = path };
	assert_int_equal(h_create(h, &cfg, NULL), 0);
	h_driver_up(h, ~0ull);
	/* no client yet: output dropped and counted */
	guest_tx(h, "nobody", 6, 1);
	struct virtio_console_stats st;
	virtio_console_get_stats(h->c, &st);
	assert_int_equal(st.dropped_bytes, 6);

	int a = unix_connect(path);
	pump(h);
	int b = unix_connect(path); /* waits in the backlog: one client at a time */
	pump(h);
	guest_tx(h, "to-a", 4, 1);
	uint8_t buf[64];
	assert_int_equal(read_all(a, buf, 4, 500), 4);
	assert_memory_equal(buf, "to-a", 4);
	assert_false(fd_readable(b, 20));
	post_rx(h, 4, 16);
	assert_int_equal(write(a, "from-a", 6), 6);
	assert_true(fd_readable(virtio_console_fd(h->c), 500));
	pump(h);
	assert_int_equal(collect_rx(h, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "from-a", 6);

	/* a leaves (its last bytes still arrive); b is taken next */
	assert_int_equal(write(a, "bye", 3), 3);
	close(a);
	for (int i = 0; i < 10; i++) {
		fd_readable(virtio_console_fd(h->c), 20);
		pump(h);
	}
	assert_int_equal(collect_rx(h, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "bye", 3);
	guest_tx(h, "to-b", 4, 1);
	assert_int_equal(read_all(b, buf, 4, 500), 4);
	assert_memory_equal(buf, "to-b", 4);
	assert_int_equal(write(b, "from-b", 6), 6);
	assert_true(fd_readable(virtio_console_fd(h->c), 500));
	pump(h);
	assert_int_equal(collect_rx(h, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "from-b", 6);
	close(b);
	for (int i = 0; i < 5; i++) {
		fd_readable(virtio_console_fd(h->c), 20);
		pump(h);
	}
	/* reconnect after everyone left */
	int c = unix_connect(path);
	fd_readable(virtio_console_fd(h->c), 200);
	pump(h);
	guest_tx(h, "to-c", 4, 1);
	assert_int_equal(read_all(c, buf, 4, 500), 4);
	assert_memory_equal(buf, "to-c", 4);
	close(c);
	virtio_console_get_stats(h->c, &st);
	assert_int_equal(st.clients, 3);

	/* free removes the socket file */
	virtio_mmio_free(h->t);
	h->t = NULL;
	virtio_console_free(h->c);
	h->c = NULL;
	assert_int_equal(access(path, F_OK), -1);
}

static void test_unix_stale_socket_and_non_socket_path(void **state)
{
	struct h *h = *state;
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/stale.sock", h->tmpdir);
	/* a socket file left behind by a dead process */
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	struct virtio_console_config cfg = { .backend = VIRTIO_CONSOLE_BACKEND_UNIX,
					     .path = path };
	assert_int_equal(virtio_console_new(&h->c, &cfg, NULL, NULL, err, sizeof(err)), 0);
	virtio_console_free(h->c);
	h->c = NULL;
	/* a regular file is never removed */
	char file[128];
	snprintf(file, sizeof(file), "%s/file", h->tmpdir);
	int fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	cfg.path = file;
	assert_int_equal(virtio_console_new(&h->c, &cfg, NULL, NULL, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, file));
	assert_int_equal(access(file, F_OK), 0);
	unlink(file);
}

/* ---- with the real event loop thread -------------------------------------------------- */

static void test_event_loop_end_to_end(void **state)
{
	struct h *h = *state;
	struct event_loop loop;
	assert_int_equal(event_loop_init(&loop), 0);
	int in[2];
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	struct virtio_console_config cfg = stdio_cfg(in[0], -1);
	assert_int_equal(h_create(h, &cfg, &loop), 0);
	assert_int_equal(event_loop_start(&loop), 0);
	h_driver_up(h, ~0ull);
	post_rx(h, 8, 64);
	static uint8_t buf[512];
	size_t n = 0;
	for (int i = 0; i < 20; i++) {
		char line[16];
		int len = snprintf(line, sizeof(line), "line %02d\n", i);
		assert_int_equal(write(in[1], line, (size_t)len), len);
	}
	uint64_t end = unit_now_ms() + 3000;
	while (n < 160 && unit_now_ms() < end) {
		virtio_transport_lock(h->t);
		uint16_t used = vqb_used_idx(&h->rx);
		virtio_transport_unlock(h->t);
		if (used != h->rx.last_used) {
			virtio_transport_lock(h->t);
			n += collect_rx(h, buf + n, sizeof(buf) - n);
			virtio_transport_unlock(h->t);
			post_rx(h, 2, 64);
		} else {
			unit_sleep_ms(2);
		}
	}
	assert_int_equal(n, 160);
	assert_memory_equal(buf, "line 00\nline 01\n", 16);
	assert_memory_equal(buf + 152, "line 19\n", 8);
	event_loop_stop(&loop);
	virtio_mmio_free(h->t);
	h->t = NULL;
	virtio_console_free(h->c);
	h->c = NULL;
	event_loop_destroy(&loop);
	close(in[0]);
	close(in[1]);
}

/* Create and free every backend; teardown checks the fd count. */
static void test_create_free_no_leaks(void **state)
{
	struct h *h = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/leak.sock", h->tmpdir);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	for (int i = 0; i < 3; i++) {
		struct virtio_console_config cfg = { .backend = (enum virtio_console_backend)i,
						     .in_fd = p[0],
						     .out_fd = p[1],
						     .path = path };
		struct virtio_console *c;
		char err[256];
		assert_int_equal(virtio_console_new(&c, &cfg, NULL, &h->logc.log, err, sizeof(err)),
				 0);
		virtio_console_free(c);
	}
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the VMM's main() does */
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_identity_and_config),
		T(test_no_size_feature_without_geometry),
		T(test_bad_config_rejected),
		T(test_stdio_tx),
		T(test_stdio_tx_indirect),
		T(test_stdio_rx),
		T(test_stdio_rx_before_driver),
		T(test_rx_backpressure_no_loss),
		T(test_tx_blocked_backend_drops),
		T(test_tx_no_backend_counts_drops),
		T(test_tx_reader_gone),
		T(test_emergency_write),
		T(test_stdio_same_fd_both_ways),
		T(test_stdio_input_eof),
		T(test_bad_chain_needs_reset_then_recovers),
		T(test_rx_chain_without_writable_part),
		T(test_pty),
		T(test_unix_clients),
		T(test_unix_stale_socket_and_non_socket_path),
		T(test_event_loop_end_to_end),
		T(test_create_free_no_leaks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
