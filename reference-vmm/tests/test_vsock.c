/* Unit tests for virtio/vsock.c + vsock_host.c through the virtio-mmio
 * transport, the vq_builder playing the guest driver and real unix sockets in
 * a temporary directory: Firecracker-style handshakes both ways, data with
 * credit flow control, shutdown/RST paths, many connections, hostile packets,
 * device reset, the event loop thread, and fd accounting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/event_loop.h"
#include "virtio/mmio.h"
#include "virtio/vsock.h"
#include "unit_helpers.h"
#include "vq_builder.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define GUEST_CID 42
#define RXQ_GPA 0x40000000ull
#define TXQ_GPA 0x50000000ull
#define EVQ_GPA 0x60000000ull
#define QRAM (16ull << 20)
#define QSZ 256
#define RXBUF 4096
#define GBUF (256 * 1024) /* the test guest's receive buffer (its buf_alloc) */
#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))

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

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* ---- harness -------------------------------------------------------------------------- */

struct rxslot {
	uint64_t hdr_gpa, data_gpa;
};

struct h {
	struct vqb rx, tx, ev;
	struct guest_mem gm;
	struct unit_irq_rec irq;
	struct unit_log_capture logc;
	struct virtio_transport *t;
	struct virtio_vsock *vs;
	struct rxslot slot[QSZ]; /* by head */
	uint64_t tx_hdr_gpa, tx_data_gpa;
	bool lock_reads; /* the event loop runs: read the used ring under the lock */
	char dir[64];
	char uds[128];
	int fds_before;
};

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len, flags, buf_alloc, fwd_cnt;
	uint16_t type, op;
	uint8_t data[VSOCK_MAX_PKT_PAYLOAD];
};

static struct virtio_vsock_config base_cfg(struct h *h)
{
	return (struct virtio_vsock_config){ .guest_cid = GUEST_CID, .uds_path = h->uds };
}

static void h_create(struct h *h, const struct virtio_vsock_config *cfg, struct event_loop *loop)
{
	char err[256];
	int r = virtio_vsock_new(&h->vs, cfg, loop, &h->logc.log, err, sizeof(err));
	if (r)
		fail_msg("virtio_vsock_new: %d %s", r, err);
	h->t = virtio_mmio_new(&virtio_vsock_ops, h->vs, &h->gm, unit_irq_rec_line(&h->irq, 4),
			       &h->logc.log);
	assert_non_null(h->t);
}

static void post_slot(struct h *h, uint64_t hdr_gpa, uint64_t data_gpa, uint32_t hdr_len)
{
	struct vqb_buf b[2] = { { hdr_gpa, hdr_len, true }, { data_gpa, RXBUF, true } };
	uint16_t head;
	assert_int_equal(vqb_send(&h->rx, b, 2, &head), 0);
	h->slot[head] = (struct rxslot){ hdr_gpa, data_gpa };
}

/* Guest posts n receive chains (44-byte header + 4 KiB, as Linux does). */
static void g_post_rx(struct h *h, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t hg = vqb_alloc(&h->rx, HDR, 8), dg = vqb_alloc(&h->rx, RXBUF, 8);
		assert_true(hg != VQB_BAD_GPA && dg != VQB_BAD_GPA);
		post_slot(h, hg, dg, HDR);
	}
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_VSOCK_QUEUE_RX);
}

static void h_driver_up(struct h *h, unsigned int rx_bufs)
{
	assert_true(vqb_mmio_negotiate(h->t, ~0ull) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vqb_mmio_setup_queue(h->t, VIRTIO_VSOCK_QUEUE_RX, &h->rx), 1);
	assert_int_equal(vqb_mmio_setup_queue(h->t, VIRTIO_VSOCK_QUEUE_TX, &h->tx), 1);
	assert_int_equal(vqb_mmio_setup_queue(h->t, VIRTIO_VSOCK_QUEUE_EVT, &h->ev), 1);
	assert_true(vqb_mmio_driver_ok(h->t) & VIRTIO_STATUS_DRIVER_OK);
	if (rx_bufs)
		g_post_rx(h, rx_bufs);
}

static int setup(void **state)
{
	struct h *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->fds_before = count_fds();
	assert_int_equal(unit_log_capture_open(&h->logc, LOG_DEBUG), 0);
	assert_int_equal(vqb_init(&h->rx, RXQ_GPA, QRAM, QSZ), 0);
	assert_int_equal(vqb_init(&h->tx, TXQ_GPA, QRAM, QSZ), 0);
	assert_int_equal(vqb_init(&h->ev, EVQ_GPA, 1 << 20, 4), 0);
	guest_mem_init(&h->gm);
	assert_int_equal(guest_mem_add(&h->gm, h->rx.ram_gpa, h->rx.ram_size, h->rx.ram), 0);
	assert_int_equal(guest_mem_add(&h->gm, h->tx.ram_gpa, h->tx.ram_size, h->tx.ram), 0);
	assert_int_equal(guest_mem_add(&h->gm, h->ev.ram_gpa, h->ev.ram_size, h->ev.ram), 0);
	h->tx_hdr_gpa = vqb_alloc(&h->tx, HDR, 8);
	h->tx_data_gpa = vqb_alloc(&h->tx, 2 * VSOCK_MAX_PKT_PAYLOAD, 8);
	unit_irq_rec_init(&h->irq);
	snprintf(h->dir, sizeof(h->dir), "/tmp/vsock.XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->uds, sizeof(h->uds), "%s/v.sock", h->dir);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct h *h = *state;
	virtio_mmio_free(h->t);
	virtio_vsock_free(h->vs);
	vqb_destroy(&h->rx);
	vqb_destroy(&h->tx);
	vqb_destroy(&h->ev);
	unit_log_capture_close(&h->logc);
	/* free unlinked the socket; tests remove what else they created */
	int rm = rmdir(h->dir);
	int before = h->fds_before, after = count_fds();
	free(h);
	assert_int_equal(rm, 0);
	assert_int_equal(after, before); /* no fd leaks */
	return 0;
}

static bool fd_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) == 1;
}

/* Handle host-side events until none are pending (bounded). */
static void pump(struct h *h)
{
	for (int i = 0; i < 10000 && fd_readable(virtio_vsock_fd(h->vs), 0); i++)
		virtio_vsock_poll(h->vs);
}

static void pump_wait(struct h *h, int ms)
{
	fd_readable(virtio_vsock_fd(h->vs), ms);
	pump(h);
}

/* ---- the guest driver ----------------------------------------------------------------- */

static void put_hdr(struct virtio_vsock_hdr *hd, uint64_t src_cid, uint64_t dst_cid,
		    uint32_t sport, uint32_t dport, uint32_t len, uint16_t type, uint16_t op,
		    uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	hd->src_cid = htole64(src_cid);
	hd->dst_cid = htole64(dst_cid);
	hd->src_port = htole32(sport);
	hd->dst_port = htole32(dport);
	hd->len = htole32(len);
	hd->type = htole16(type);
	hd->op = htole16(op);
	hd->flags = htole32(flags);
	hd->buf_alloc = htole32(buf_alloc);
	hd->fwd_cnt = htole32(fwd_cnt);
}

/* Send a raw header (already little-endian) and dlen payload bytes, in a
 * chain of [header][payload] (hdr_len bytes of header readable). */
static void g_send_raw(struct h *h, const struct virtio_vsock_hdr *hd, uint32_t hdr_len,
		       const void *data, uint32_t dlen)
{
	assert_true(dlen <= 2 * VSOCK_MAX_PKT_PAYLOAD);
	memcpy(vqb_host(&h->tx, h->tx_hdr_gpa, HDR), hd, HDR);
	if (dlen)
		memcpy(vqb_host(&h->tx, h->tx_data_gpa, dlen), data, dlen);
	struct vqb_buf b[2] = { { h->tx_hdr_gpa, hdr_len, false }, { h->tx_data_gpa, dlen, false } };
	uint16_t head;
	assert_int_equal(vqb_send(&h->tx, b, dlen ? 2 : 1, &head), 0);
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_VSOCK_QUEUE_TX);
	/* the device handles tx in the notify: its buffers come straight back */
	uint32_t id, len;
	if (h->lock_reads)
		virtio_transport_lock(h->t);
	int r = vqb_get_used(&h->tx, &id, &len);
	if (h->lock_reads)
		virtio_transport_unlock(h->t);
	assert_int_equal(r, 1);
	assert_int_equal(id, head);
}

static void g_send(struct h *h, uint16_t op, uint32_t gport, uint32_t hport, uint32_t flags,
		   uint32_t fwd_cnt, const void *data, uint32_t len)
{
	struct virtio_vsock_hdr hd;
	put_hdr(&hd, GUEST_CID, VSOCK_CID_HOST, gport, hport, len, VSOCK_TYPE_STREAM, op, flags,
		GBUF, fwd_cnt);
	g_send_raw(h, &hd, HDR, data, len);
}

/* Next packet the device delivered (its buffers are posted again). */
static int g_recv(struct h *h, struct pkt *p)
{
	uint32_t id, len;
	if (h->lock_reads)
		virtio_transport_lock(h->t);
	int r = vqb_get_used(&h->rx, &id, &len);
	if (r == 1) {
		assert_true(id < QSZ);
		struct rxslot s = h->slot[id];
		assert_true(len >= HDR && len <= HDR + RXBUF);
		struct virtio_vsock_hdr hd;
		memcpy(&hd, vqb_host(&h->rx, s.hdr_gpa, HDR), HDR);
		p->src_cid = le64toh(hd.src_cid);
		p->dst_cid = le64toh(hd.dst_cid);
		p->src_port = le32toh(hd.src_port);
		p->dst_port = le32toh(hd.dst_port);
		p->len = le32toh(hd.len);
		p->type = le16toh(hd.type);
		p->op = le16toh(hd.op);
		p->flags = le32toh(hd.flags);
		p->buf_alloc = le32toh(hd.buf_alloc);
		p->fwd_cnt = le32toh(hd.fwd_cnt);
		assert_int_equal(p->len, len - HDR);
		memcpy(p->data, vqb_host(&h->rx, s.data_gpa, p->len), p->len);
		/* every packet comes from the host to us, as a stream */
		assert_int_equal(p->src_cid, VSOCK_CID_HOST);
		assert_int_equal(p->dst_cid, GUEST_CID);
		assert_int_equal(p->type, VSOCK_TYPE_STREAM);
		post_slot(h, s.hdr_gpa, s.data_gpa, HDR);
	}
	if (h->lock_reads)
		virtio_transport_unlock(h->t);
	if (r == 1)
		vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_VSOCK_QUEUE_RX);
	return r;
}

/* Pump until a packet arrives (or ms pass). */
static int g_recv_wait(struct h *h, struct pkt *p, int ms)
{
	uint64_t end = unit_now_ms() + (uint64_t)ms;
	for (;;) {
		if (g_recv(h, p) == 1)
			return 1;
		if (unit_now_ms() >= end)
			return 0;
		pump_wait(h, 5);
	}
}

static int no_more_packets(struct h *h)
{
	static struct pkt p;
	pump(h);
	return g_recv(h, &p) == 0;
}

/* ---- host side helpers ---------------------------------------------------------------- */

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

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 512), 0);
	return fd;
}

static void port_path(struct h *h, uint32_t port, char *out, size_t n)
{
	snprintf(out, n, "%s_%u", h->uds, port);
}

static void write_all(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read exactly n bytes from a host socket, pumping the device meanwhile. */
static void host_read(struct h *h, int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	uint64_t end = unit_now_ms() + 3000;
	while (got < n && unit_now_ms() < end) {
		if (fd_readable(fd, 5)) {
			ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
			assert_true(r > 0);
			got += (size_t)r;
		}
		pump(h);
	}
	assert_int_equal(got, n);
}

/* The host socket reaches EOF (after any bytes still queued) within ms. */
static bool host_sees_eof(struct h *h, int fd, int ms)
{
	uint64_t end = unit_now_ms() + (uint64_t)ms;
	while (unit_now_ms() < end) {
		pump(h);
		if (fd_readable(fd, 5)) {
			uint8_t b[4096];
			ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno == ECONNRESET))
				return true;
		}
	}
	return false;
}

/* Host→guest handshake: returns the client fd; *hport the host port. */
static int host_connect(struct h *h, uint32_t gport, uint32_t *hport)
{
	static struct pkt p;
	int fd = unix_connect(h->uds);
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", gport);
	write_all(fd, line, (size_t)n);
	assert_int_equal(g_recv_wait(h, &p, 2000), 1);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, gport);
	assert_true(p.src_port >= VSOCK_HOST_PORT_BASE);
	assert_int_equal(p.len, 0);
	assert_true(p.buf_alloc > 0);
	g_send(h, VSOCK_OP_RESPONSE, gport, p.src_port, 0, 0, NULL, 0);
	char ok[32];
	n = snprintf(ok, sizeof(ok), "OK %u\n", p.src_port);
	char got[32] = { 0 };
	host_read(h, fd, (uint8_t *)got, (size_t)n);
	assert_string_equal(got, ok);
	*hport = p.src_port;
	return fd;
}

/* Guest→host handshake to a listener at <uds>_<hport>: returns the accepted
 * host-side fd. */
static int guest_connect(struct h *h, int lfd, uint32_t gport, uint32_t hport)
{
	static struct pkt p;
	g_send(h, VSOCK_OP_REQUEST, gport, hport, 0, 0, NULL, 0);
	assert_int_equal(g_recv_wait(h, &p, 2000), 1);
	assert_int_equal(p.op, VSOCK_OP_RESPONSE);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, gport);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* Guest side of one connection, for data checks. */
struct gconn {
	uint32_t gport, hport;
	uint32_t fwd_cnt;      /* bytes the guest consumed (advertised back) */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt; /* the device's credit */
	uint8_t *in;
	size_t in_len, in_cap;
	bool got_rst, got_shutdown;
	uint32_t shutdown_flags;
};

static struct gconn *gc_find(struct gconn *cs, unsigned int n, const struct pkt *p)
{
	for (unsigned int i = 0; i < n; i++)
		if (cs[i].gport == p->dst_port && cs[i].hport == p->src_port)
			return &cs[i];
	return NULL;
}

/* Apply one received packet to the guest model. */
static void gc_apply(struct gconn *c, const struct pkt *p)
{
	c->peer_buf_alloc = p->buf_alloc;
	c->peer_fwd_cnt = p->fwd_cnt;
	switch (p->op) {
	case VSOCK_OP_RW:
		assert_true(c->in_len + p->len <= c->in_cap);
		memcpy(c->in + c->in_len, p->data, p->len);
		c->in_len += p->len;
		break;
	case VSOCK_OP_RST:
		c->got_rst = true;
		break;
	case VSOCK_OP_SHUTDOWN:
		c->got_shutdown = true;
		c->shutdown_flags |= p->flags;
		break;
	default:
		break;
	}
}

static uint32_t gc_credit(const struct gconn *c)
{
	return c->peer_buf_alloc - (c->tx_cnt - c->peer_fwd_cnt);
}

static uint64_t malformed_count(struct h *h);

/* ---- identity, creation --------------------------------------------------------------- */

static void test_identity_and_config(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	cfg.guest_cid = 0x1234567ull;
	h_create(h, &cfg, NULL);
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_CONFIG), 0x1234567u);
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_CONFIG + 4), 0);
	vqb_mmio_write(h->t, VIRTIO_MMIO_CONFIG, 99); /* read-only */
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_CONFIG), 0x1234567u);
	for (uint32_t q = 0; q < 3; q++) {
		vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_SEL, q);
		assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_QUEUE_NUM_MAX),
				 VIRTIO_VSOCK_QUEUE_SIZE);
	}
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_SEL, 3);
	assert_int_equal(vqb_mmio_read(h->t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	struct stat sb;
	assert_int_equal(stat(h->uds, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
}

static void test_new_rejects_bad_config(void **state)
{
	struct h *h = *state;
	char err[256];
	struct virtio_vsock_config cfg = base_cfg(h);
	cfg.guest_cid = 2;
	assert_int_equal(virtio_vsock_new(&h->vs, &cfg, NULL, NULL, err, sizeof(err)), -EINVAL);
	assert_null(h->vs);
	assert_non_null(strstr(err, "cid 2"));
	cfg.guest_cid = 1ull << 32;
	assert_int_equal(virtio_vsock_new(&h->vs, &cfg, NULL, NULL, err, sizeof(err)), -EINVAL);
	cfg = base_cfg(h);
	cfg.uds_path = NULL;
	assert_int_equal(virtio_vsock_new(&h->vs, &cfg, NULL, NULL, err, sizeof(err)), -EINVAL);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	cfg.uds_path = longp;
	assert_int_equal(virtio_vsock_new(&h->vs, &cfg, NULL, NULL, err, sizeof(err)),
			 -ENAMETOOLONG);
	/* an existing regular file is an error naming it, and is left alone */
	char file[128];
	snprintf(file, sizeof(file), "%s/file", h->dir);
	close(open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	cfg.uds_path = file;
	assert_int_equal(virtio_vsock_new(&h->vs, &cfg, NULL, NULL, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, file));
	assert_int_equal(access(file, F_OK), 0);
	unlink(file);
	/* a missing directory */
	char nodir[128];
	snprintf(nodir, sizeof(nodir), "%s/nodir/v.sock", h->dir);
	cfg.uds_path = nodir;
	assert_int_equal(virtio_vsock_new(&h->vs, &cfg, NULL, NULL, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, nodir));
}

static void test_stale_socket_replaced_and_unlinked_on_free(void **state)
{
	struct h *h = *state;
	close(unix_listen(h->uds)); /* a socket file left by a dead VMM */
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	int fd = unix_connect(h->uds); /* ours now */
	close(fd);
	virtio_mmio_free(h->t);
	h->t = NULL;
	virtio_vsock_free(h->vs);
	h->vs = NULL;
	assert_int_equal(access(h->uds, F_OK), -1);
}

/* ---- host → guest --------------------------------------------------------------------- */

static void test_host_to_guest_handshake_and_data(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 64);
	uint32_t hport;
	int fd = host_connect(h, 1234, &hport);
	assert_int_equal(hport, VSOCK_HOST_PORT_BASE);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 1);

	/* host → guest, 200 KiB (less than the guest's credit) */
	enum { N = 200 * 1024 };
	static uint8_t src[N], back[N];
	fill_pattern(src, N, 7);
	struct gconn g = { .gport = 1234, .hport = hport, .in = malloc(N), .in_cap = N };
	size_t off = 0;
	uint64_t end = unit_now_ms() + 5000;
	static struct pkt p;
	while (g.in_len < N && unit_now_ms() < end) {
		if (off < N) {
			ssize_t w = send(fd, src + off, N - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0)
				off += (size_t)w;
		}
		pump(h);
		while (g_recv(h, &p) == 1) {
			assert_non_null(gc_find(&g, 1, &p));
			assert_int_equal(p.op, VSOCK_OP_RW);
			gc_apply(&g, &p);
		}
	}
	assert_int_equal(g.in_len, N);
	assert_true(fnv(g.in, N) == fnv(src, N));

	/* guest → host, same amount back in 4 KiB packets within the credit */
	size_t sent = 0, got = 0;
	end = unit_now_ms() + 5000;
	while (got < N && unit_now_ms() < end) {
		while (sent < N && gc_credit(&g) >= 4096) {
			uint32_t n = N - sent < 4096 ? (uint32_t)(N - sent) : 4096;
			g_send(h, VSOCK_OP_RW, 1234, hport, 0, (uint32_t)g.in_len, g.in + sent, n);
			g.tx_cnt += n;
			sent += n;
		}
		if (fd_readable(fd, 2)) {
			ssize_t r = recv(fd, back + got, N - got, MSG_DONTWAIT);
			assert_true(r > 0);
			got += (size_t)r;
		}
		pump(h);
		while (g_recv(h, &p) == 1)
			gc_apply(&g, &p);
	}
	assert_int_equal(got, N);
	assert_true(fnv(back, N) == fnv(src, N));
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.rx_bytes, N);
	assert_int_equal(st.tx_bytes, N);
	assert_int_equal(st.malformed, 0);
	free(g.in);
	close(fd);
}

/* Bytes the client sends right after its CONNECT line reach the guest after
 * the handshake (they are not eaten by the line reader). */
static void test_connect_line_with_trailing_data(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	int fd = unix_connect(h->uds);
	write_all(fd, "CONNECT 7\nhello", 15);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 2000), 1);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	assert_true(no_more_packets(h)); /* no data before the RESPONSE */
	g_send(h, VSOCK_OP_RESPONSE, 7, p.src_port, 0, 0, NULL, 0);
	char ok[32] = { 0 };
	int n = snprintf(ok, sizeof(ok), "OK %u\n", p.src_port);
	char got[32] = { 0 };
	host_read(h, fd, (uint8_t *)got, (size_t)n);
	assert_string_equal(got, ok);
	assert_int_equal(g_recv_wait(h, &p, 2000), 1);
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.data, "hello", 5);
	close(fd);
}

static void test_host_ports_are_distinct(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	uint32_t a, b;
	int fa = host_connect(h, 80, &a), fb = host_connect(h, 80, &b);
	assert_int_not_equal(a, b);
	close(fa);
	close(fb);
}

static void test_request_before_driver_ok(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	int fd = unix_connect(h->uds);
	write_all(fd, "CONNECT 9\n", 10);
	pump_wait(h, 50);
	h_driver_up(h, 8); /* the queued REQUEST goes out now */
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, 9);
	close(fd);
}

static void test_malformed_connect_lines_close_client(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	const char *bad[] = { "CONNEC 5\n",  "CONNECT\n",	  "CONNECT \n", "CONNECT x\n",
			      "CONNECT 5x\n", "CONNECT 4294967296\n", "connect 5\n", "CONNECT  5\n",
			      "CONNECT -1\n", "CONNECT 99999999999\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = unix_connect(h->uds);
		write_all(fd, bad[i], strlen(bad[i]));
		assert_true(host_sees_eof(h, fd, 1000));
		close(fd);
	}
	/* oversized: no newline within the line limit */
	int fd = unix_connect(h->uds);
	char big[100];
	memset(big, '1', sizeof(big));
	memcpy(big, "CONNECT ", 8);
	write_all(fd, big, sizeof(big));
	assert_true(host_sees_eof(h, fd, 1000));
	close(fd);
	/* a client that leaves mid-line */
	fd = unix_connect(h->uds);
	write_all(fd, "CONN", 4);
	pump_wait(h, 20);
	close(fd);
	pump_wait(h, 20);
	assert_true(no_more_packets(h)); /* the guest never heard of any of them */
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	assert_int_equal(st.clients, 0);
	/* the largest port is fine */
	uint32_t hp;
	fd = host_connect(h, 4294967295u, &hp);
	close(fd);
}

static void test_guest_refuses_host_connect(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 8);
	int fd = unix_connect(h->uds);
	write_all(fd, "CONNECT 5\n", 10);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 2000), 1);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	g_send(h, VSOCK_OP_RST, 5, p.src_port, 0, 0, NULL, 0); /* nothing listens */
	assert_true(host_sees_eof(h, fd, 1000));
	assert_true(no_more_packets(h)); /* no RST for an RST */
	close(fd);
}

static void test_connect_timeout(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	cfg.connect_timeout_ms = 40;
	h_create(h, &cfg, NULL);
	h_driver_up(h, 8);
	int fd = unix_connect(h->uds);
	write_all(fd, "CONNECT 5\n", 10);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	uint32_t hport = p.src_port;
	/* the guest never answers */
	assert_int_equal(g_recv_wait(h, &p, 2000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, 5);
	assert_true(host_sees_eof(h, fd, 1000));
	close(fd);
	/* a late RESPONSE gets an RST */
	g_send(h, VSOCK_OP_RESPONSE, 5, hport, 0, 0, NULL, 0);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
}

static void test_client_gone_before_response(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 8);
	int fd = unix_connect(h->uds);
	write_all(fd, "CONNECT 5\n", 10);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	uint32_t hport = p.src_port;
	close(fd);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.src_port, hport);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
}

/* ---- guest → host --------------------------------------------------------------------- */

static void test_guest_to_host_connect_and_data(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 32);
	char lp[160];
	port_path(h, 5000, lp, sizeof(lp));
	int lfd = unix_listen(lp);
	int sfd = guest_connect(h, lfd, 40000, 5000);
	g_send(h, VSOCK_OP_RW, 40000, 5000, 0, 0, "ping", 4);
	uint8_t buf[8];
	host_read(h, sfd, buf, 4);
	assert_memory_equal(buf, "ping", 4);
	write_all(sfd, "pong!", 5);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_int_equal(p.src_port, 5000);
	assert_int_equal(p.dst_port, 40000);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.data, "pong!", 5);
	assert_int_equal(p.fwd_cnt, 4); /* the 4 bytes went to the socket */
	close(sfd);
	close(lfd);
	unlink(lp);
}

static void test_guest_to_host_no_listener_rst(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 8);
	static struct pkt p;
	g_send(h, VSOCK_OP_REQUEST, 40001, 5001, 0, 0, NULL, 0); /* no file */
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.src_port, 5001);
	assert_int_equal(p.dst_port, 40001);
	/* a socket file with nobody listening */
	char lp[160];
	port_path(h, 5002, lp, sizeof(lp));
	close(unix_listen(lp));
	g_send(h, VSOCK_OP_REQUEST, 40002, 5002, 0, 0, NULL, 0);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.dst_port, 40002);
	unlink(lp);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	assert_int_equal(st.rst_sent, 2);
}

/* ---- credit --------------------------------------------------------------------------- */

/* The guest advertises 4 KiB: the device sends exactly that much, stops reading
 * the socket (no spinning), and resumes on CREDIT_UPDATE. */
static void test_guest_credit_exhaustion_and_update(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 64);
	int fd = unix_connect(h->uds);
	write_all(fd, "CONNECT 77\n", 11);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	uint32_t hport = p.src_port;
	struct virtio_vsock_hdr hd;
	put_hdr(&hd, GUEST_CID, VSOCK_CID_HOST, 77, hport, 0, VSOCK_TYPE_STREAM, VSOCK_OP_RESPONSE,
		0, 4096, 0);
	g_send_raw(h, &hd, HDR, NULL, 0);
	char ok[32];
	host_read(h, fd, (uint8_t *)ok, (size_t)snprintf(ok, sizeof(ok), "OK %u\n", hport));

	enum { N = 10000 };
	static uint8_t src[N], in[N];
	fill_pattern(src, N, 3);
	write_all(fd, src, N);
	size_t got = 0;
	for (int i = 0; i < 50; i++) {
		pump_wait(h, 2);
		while (g_recv(h, &p) == 1) {
			assert_int_equal(p.op, VSOCK_OP_RW);
			memcpy(in + got, p.data, p.len);
			got += p.len;
		}
	}
	assert_int_equal(got, 4096);
	assert_false(fd_readable(virtio_vsock_fd(h->vs), 0)); /* idle, not spinning */
	/* the guest consumed 4096 bytes */
	put_hdr(&hd, GUEST_CID, VSOCK_CID_HOST, 77, hport, 0, VSOCK_TYPE_STREAM,
		VSOCK_OP_CREDIT_UPDATE, 0, 4096, 4096);
	g_send_raw(h, &hd, HDR, NULL, 0);
	for (int i = 0; i < 50 && got < 8192; i++) {
		pump_wait(h, 2);
		while (g_recv(h, &p) == 1) {
			memcpy(in + got, p.data, p.len);
			got += p.len;
		}
	}
	assert_int_equal(got, 8192);
	/* a bigger buffer and everything consumed: the rest flows */
	put_hdr(&hd, GUEST_CID, VSOCK_CID_HOST, 77, hport, 0, VSOCK_TYPE_STREAM,
		VSOCK_OP_CREDIT_UPDATE, 0, 65536, 8192);
	g_send_raw(h, &hd, HDR, NULL, 0);
	for (int i = 0; i < 50 && got < N; i++) {
		pump_wait(h, 2);
		while (g_recv(h, &p) == 1) {
			memcpy(in + got, p.data, p.len);
			got += p.len;
		}
	}
	assert_int_equal(got, N);
	assert_memory_equal(in, src, N);
	close(fd);
}

static void test_credit_request_answered(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	cfg.buf_alloc = 32768;
	h_create(h, &cfg, NULL);
	h_driver_up(h, 8);
	uint32_t hport;
	int fd = host_connect(h, 11, &hport);
	g_send(h, VSOCK_OP_RW, 11, hport, 0, 0, "abc", 3);
	g_send(h, VSOCK_OP_CREDIT_REQUEST, 11, hport, 0, 0, NULL, 0);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(p.buf_alloc, 32768);
	assert_int_equal(p.fwd_cnt, 3);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, 11);
	close(fd);
}

/* The host reads slowly: the device holds at most buf_alloc bytes, the guest
 * (following the advertised credit) waits, CREDIT_UPDATEs resume it; 1 MiB
 * arrives intact. */
static void test_host_backpressure_with_credit_updates(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	cfg.buf_alloc = 16384;
	h_create(h, &cfg, NULL);
	h_driver_up(h, 64);
	uint32_t hport;
	int fd = host_connect(h, 12, &hport);
	struct gconn g = { .gport = 12, .hport = hport, .peer_buf_alloc = 16384 };
	enum { N = 1 << 20 };
	uint8_t *src = malloc(N), *dst = malloc(N);
	fill_pattern(src, N, 99);
	size_t sent = 0, got = 0;
	unsigned int stalls = 0;
	static struct pkt p;
	uint64_t end = unit_now_ms() + 10000;
	while (got < N && unit_now_ms() < end) {
		bool stalled = sent < N;
		while (sent < N && gc_credit(&g) > 0) {
			uint32_t n = gc_credit(&g);
			if (n > 3000)
				n = 3000;
			if (n > N - sent)
				n = (uint32_t)(N - sent);
			g_send(h, VSOCK_OP_RW, 12, hport, 0, 0, src + sent, n);
			g.tx_cnt += n;
			sent += n;
			stalled = false;
		}
		/* the host reads only when the guest is stuck (or done), a little */
		if (stalled || sent == N) {
			stalls += stalled;
			if (fd_readable(fd, 1)) {
				ssize_t r = recv(fd, dst + got, N - got < 50000 ? N - got : 50000, MSG_DONTWAIT);
				if (r > 0)
					got += (size_t)r;
			}
		}
		pump_wait(h, stalled ? 1 : 0);
		while (g_recv(h, &p) == 1) {
			assert_int_equal(p.op, VSOCK_OP_CREDIT_UPDATE);
			gc_apply(&g, &p);
		}
		assert_int_equal(malformed_count(h), 0);
	}
	assert_int_equal(got, N);
	assert_true(fnv(dst, N) == fnv(src, N));
	assert_true(stalls > 0); /* the guest did run out of credit */
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_true(st.credit_updates > 0);
	free(src);
	free(dst);
	close(fd);
}

/* A guest that ignores our credit while the host does not read is reset. */
static void test_credit_violation_rst(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	cfg.buf_alloc = 4096;
	h_create(h, &cfg, NULL);
	h_driver_up(h, 64);
	uint32_t hport;
	int fd = host_connect(h, 13, &hport);
	static uint8_t chunk[4096];
	static struct pkt p;
	bool rst = false;
	for (int i = 0; i < 2000 && !rst; i++) {
		g_send(h, VSOCK_OP_RW, 13, hport, 0, 0, chunk, sizeof(chunk));
		while (g_recv(h, &p) == 1)
			if (p.op == VSOCK_OP_RST)
				rst = true;
	}
	assert_true(rst);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.malformed, 1);
	assert_int_equal(st.conns, 0);
	assert_true(host_sees_eof(h, fd, 2000));
	close(fd);
}

/* ---- many connections ----------------------------------------------------------------- */

static void test_many_concurrent_connections(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 120);
	enum { NH = 40, NG = 40, NC = NH + NG, LEN = 3000 };
	static struct gconn g[NC];
	static int fds[NC];
	char lp[160];
	port_path(h, 6000, lp, sizeof(lp));
	int lfd = unix_listen(lp);
	memset(g, 0, sizeof(g));
	for (int i = 0; i < NH; i++) {
		g[i].gport = 2000 + (uint32_t)i;
		fds[i] = host_connect(h, g[i].gport, &g[i].hport);
	}
	for (int i = NH; i < NC; i++) {
		g[i].gport = 50000 + (uint32_t)i;
		g[i].hport = 6000;
		fds[i] = guest_connect(h, lfd, g[i].gport, 6000);
	}
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, NC);
	/* every host socket sends its own pattern, interleaved */
	static uint8_t src[NC][LEN];
	for (int i = 0; i < NC; i++) {
		fill_pattern(src[i], LEN, (uint32_t)i + 1);
		g[i].in = malloc(LEN);
		g[i].in_cap = LEN;
		write_all(fds[i], src[i], LEN);
	}
	static struct pkt p;
	size_t total = 0;
	uint64_t end = unit_now_ms() + 10000;
	while (total < (size_t)NC * LEN && unit_now_ms() < end) {
		pump_wait(h, 2);
		while (g_recv(h, &p) == 1) {
			struct gconn *c = gc_find(g, NC, &p);
			assert_non_null(c);
			assert_int_equal(p.op, VSOCK_OP_RW);
			gc_apply(c, &p);
			total += p.len;
		}
	}
	assert_int_equal(total, (size_t)NC * LEN);
	for (int i = 0; i < NC; i++)
		assert_memory_equal(g[i].in, src[i], LEN);
	/* and back: the guest echoes to every host socket */
	for (int i = 0; i < NC; i++)
		g_send(h, VSOCK_OP_RW, g[i].gport, g[i].hport, 0, LEN, g[i].in, LEN);
	for (int i = 0; i < NC; i++) {
		uint8_t buf[LEN];
		host_read(h, fds[i], buf, LEN);
		assert_memory_equal(buf, src[i], LEN);
	}
	/* the guest resets all of them: every socket closes */
	for (int i = 0; i < NC; i++)
		g_send(h, VSOCK_OP_RST, g[i].gport, g[i].hport, 0, 0, NULL, 0);
	for (int i = 0; i < NC; i++) {
		assert_true(host_sees_eof(h, fds[i], 1000));
		close(fds[i]);
		free(g[i].in);
	}
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	close(lfd);
	unlink(lp);
}

/* Several hundred live connections at once (hash table, no O(n²)). */
static void test_several_hundred_connections(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 120);
	enum { NC = 400 };
	static int fds[NC];
	static uint32_t hp[NC];
	uint64_t t0 = unit_now_ms();
	for (int i = 0; i < NC; i++)
		fds[i] = host_connect(h, 3000 + (uint32_t)(i % 7), &hp[i]);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, NC);
	/* one byte each way on every connection */
	for (int i = 0; i < NC; i++)
		g_send(h, VSOCK_OP_RW, 3000 + (uint32_t)(i % 7), hp[i], 0, 0, "x", 1);
	for (int i = 0; i < NC; i++) {
		uint8_t b;
		host_read(h, fds[i], &b, 1);
		assert_int_equal(b, 'x');
		close(fds[i]); /* host side goes away: RST to the guest */
	}
	static struct pkt p;
	unsigned int rsts = 0;
	uint64_t end = unit_now_ms() + 10000;
	while (rsts < NC && unit_now_ms() < end) {
		pump_wait(h, 2);
		while (g_recv(h, &p) == 1)
			if (p.op == VSOCK_OP_RST)
				rsts++;
	}
	assert_int_equal(rsts, NC);
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	assert_true(unit_now_ms() - t0 < 30000);
}

static void test_connection_limit(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	cfg.max_conns = 4;
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	int fds[4];
	uint32_t hp[4];
	for (int i = 0; i < 4; i++)
		fds[i] = host_connect(h, 100, &hp[i]);
	/* a 5th client waits in the backlog; a guest REQUEST is refused */
	int extra = unix_connect(h->uds);
	write_all(extra, "CONNECT 100\n", 12);
	static struct pkt p;
	pump_wait(h, 20);
	assert_int_equal(g_recv(h, &p), 0);
	char lp[160];
	port_path(h, 7000, lp, sizeof(lp));
	int lfd = unix_listen(lp);
	g_send(h, VSOCK_OP_REQUEST, 9, 7000, 0, 0, NULL, 0);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	/* one leaves: the waiting client gets its turn */
	g_send(h, VSOCK_OP_RST, 100, hp[0], 0, 0, NULL, 0);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	close(extra);
	close(lfd);
	unlink(lp);
}

/* ---- peers going away, shutdown ------------------------------------------------------- */

static void test_host_close_mid_transfer_rst(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	uint32_t hport;
	int fd = host_connect(h, 20, &hport);
	write_all(fd, "last words", 10);
	close(fd);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RW); /* what was sent still arrives */
	assert_memory_equal(p.data, "last words", 10);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.src_port, hport);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	/* the guest keeps talking: RST again, no crash */
	g_send(h, VSOCK_OP_RW, 20, hport, 0, 0, "?", 1);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
}

/* The host peer vanishes while the guest is sending, with no RX credit left to
 * drain: the guest gets an RST, the connection is freed. */
static void test_host_close_while_guest_sends(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	char lp[160];
	port_path(h, 5100, lp, sizeof(lp));
	int lfd = unix_listen(lp);
	int sfd = guest_connect(h, lfd, 41000, 5100);
	close(sfd);
	g_send(h, VSOCK_OP_RW, 41000, 5100, 0, 0, "data", 4);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.src_port, 5100);
	assert_int_equal(p.dst_port, 41000);
	assert_true(no_more_packets(h));
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	close(lfd);
	unlink(lp);
}

static void test_guest_rst_closes_socket(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	uint32_t hport;
	int fd = host_connect(h, 21, &hport);
	g_send(h, VSOCK_OP_RST, 21, hport, 0, 0, NULL, 0);
	assert_true(host_sees_eof(h, fd, 1000));
	assert_true(no_more_packets(h));
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	close(fd);
}

/* Guest SHUTDOWN(SEND): the host reads EOF but may still answer. */
static void test_guest_half_close(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	uint32_t hport;
	int fd = host_connect(h, 22, &hport);
	g_send(h, VSOCK_OP_RW, 22, hport, 0, 0, "request", 7);
	g_send(h, VSOCK_OP_SHUTDOWN, 22, hport, VSOCK_SHUTDOWN_SEND, 0, NULL, 0);
	uint8_t buf[8];
	host_read(h, fd, buf, 7);
	assert_memory_equal(buf, "request", 7);
	assert_true(host_sees_eof(h, fd, 1000));
	write_all(fd, "reply", 5);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_memory_equal(p.data, "reply", 5);
	/* data after its own SHUTDOWN(SEND) is a protocol error */
	g_send(h, VSOCK_OP_RW, 22, hport, 0, 0, "late", 4);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	close(fd);
}

/* Host shutdown(SHUT_WR): the guest gets SHUTDOWN(SEND) after the data and may
 * still send; its own SHUTDOWN(SEND) then ends the connection (RST). */
static void test_host_half_close(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	uint32_t hport;
	int fd = host_connect(h, 23, &hport);
	write_all(fd, "query", 5);
	shutdown(fd, SHUT_WR);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_memory_equal(p.data, "query", 5);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(p.flags, VSOCK_SHUTDOWN_SEND);
	g_send(h, VSOCK_OP_RW, 23, hport, 0, 5, "answer", 6);
	uint8_t buf[8];
	host_read(h, fd, buf, 6);
	assert_memory_equal(buf, "answer", 6);
	g_send(h, VSOCK_OP_SHUTDOWN, 23, hport, VSOCK_SHUTDOWN_SEND, 5, NULL, 0);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_true(host_sees_eof(h, fd, 1000));
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	close(fd);
}

/* Linux's close(): SHUTDOWN(RCV|SEND), the device answers RST and closes. */
static void test_guest_close_handshake(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	char lp[160];
	port_path(h, 5200, lp, sizeof(lp));
	int lfd = unix_listen(lp);
	int sfd = guest_connect(h, lfd, 42000, 5200);
	g_send(h, VSOCK_OP_RW, 42000, 5200, 0, 0, "bye", 3);
	g_send(h, VSOCK_OP_SHUTDOWN, 42000, 5200, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND, 0,
	       NULL, 0);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	uint8_t buf[4];
	host_read(h, sfd, buf, 3);
	assert_memory_equal(buf, "bye", 3);
	assert_true(host_sees_eof(h, sfd, 1000));
	close(sfd);
	close(lfd);
	unlink(lp);
}

/* ---- hostile guest: one malformed packet per test ------------------------------------- */

static void malformed_setup(struct h *h, int *fd, uint32_t *hport)
{
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	*fd = host_connect(h, 30, hport);
}

static uint64_t malformed_count(struct h *h)
{
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	return st.malformed;
}

/* The connection still works after a dropped packet. */
static void assert_conn_alive(struct h *h, int fd, uint32_t hport)
{
	g_send(h, VSOCK_OP_RW, 30, hport, 0, 0, "ok?", 3);
	uint8_t buf[4];
	host_read(h, fd, buf, 3);
	assert_memory_equal(buf, "ok?", 3);
}

static void test_bad_short_header(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	struct virtio_vsock_hdr hd;
	put_hdr(&hd, GUEST_CID, 2, 30, hport, 0, 1, VSOCK_OP_RW, 0, GBUF, 0);
	g_send_raw(h, &hd, HDR - 1, NULL, 0);
	assert_int_equal(malformed_count(h), 1);
	assert_true(no_more_packets(h));
	assert_conn_alive(h, fd, hport);
	close(fd);
}

/* The header split over descriptors at odd places is fine. */
static void test_split_header_accepted(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	struct virtio_vsock_hdr hd;
	put_hdr(&hd, GUEST_CID, 2, 30, hport, 5, 1, VSOCK_OP_RW, 0, GBUF, 0);
	uint8_t raw[HDR + 5];
	memcpy(raw, &hd, HDR);
	memcpy(raw + HDR, "split", 5);
	uint64_t a = vqb_alloc_copy(&h->tx, raw, 10), b = vqb_alloc_copy(&h->tx, raw + 10, 37),
		 c = vqb_alloc_copy(&h->tx, raw + 47, 2);
	struct vqb_buf bufs[] = { { a, 10, false }, { b, 37, false }, { c, 2, false } };
	uint16_t head;
	assert_int_equal(vqb_send(&h->tx, bufs, 3, &head), 0);
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_VSOCK_QUEUE_TX);
	uint8_t buf[8];
	host_read(h, fd, buf, 5);
	assert_memory_equal(buf, "split", 5);
	assert_int_equal(malformed_count(h), 0);
	close(fd);
}

static void test_bad_src_cid(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	struct virtio_vsock_hdr hd;
	put_hdr(&hd, GUEST_CID + 1, 2, 30, hport, 4, 1, VSOCK_OP_RW, 0, GBUF, 0);
	g_send_raw(h, &hd, HDR, "evil", 4);
	assert_int_equal(malformed_count(h), 1);
	assert_true(no_more_packets(h)); /* dropped: no reply to a spoofed source */
	assert_false(fd_readable(fd, 10));
	assert_conn_alive(h, fd, hport);
	close(fd);
}

static void test_bad_dst_cid(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	struct virtio_vsock_hdr hd;
	put_hdr(&hd, GUEST_CID, 7, 30, hport, 4, 1, VSOCK_OP_RW, 0, GBUF, 0);
	g_send_raw(h, &hd, HDR, "evil", 4);
	put_hdr(&hd, GUEST_CID, GUEST_CID, 30, hport, 0, 1, VSOCK_OP_REQUEST, 0, GBUF, 0);
	g_send_raw(h, &hd, HDR, NULL, 0);
	assert_int_equal(malformed_count(h), 2);
	assert_true(no_more_packets(h));
	assert_false(fd_readable(fd, 10));
	assert_conn_alive(h, fd, hport);
	close(fd);
}

static void test_bad_type(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	struct virtio_vsock_hdr hd;
	put_hdr(&hd, GUEST_CID, 2, 31, 5555, 0, 2 /* SEQPACKET */, VSOCK_OP_REQUEST, 0, GBUF, 0);
	g_send_raw(h, &hd, HDR, NULL, 0);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.dst_port, 31);
	assert_int_equal(p.src_port, 5555);
	/* an RST of a bad type gets no answer */
	put_hdr(&hd, GUEST_CID, 2, 31, 5555, 0, 9, VSOCK_OP_RST, 0, GBUF, 0);
	g_send_raw(h, &hd, HDR, NULL, 0);
	assert_true(no_more_packets(h));
	assert_int_equal(malformed_count(h), 2);
	assert_conn_alive(h, fd, hport);
	close(fd);
}

static void test_bad_len_beyond_chain(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	struct virtio_vsock_hdr hd;
	put_hdr(&hd, GUEST_CID, 2, 30, hport, 1000, 1, VSOCK_OP_RW, 0, GBUF, 0);
	g_send_raw(h, &hd, HDR, "only ten b", 10);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	/* nothing of the lying packet reached the host: just EOF */
	assert_true(fd_readable(fd, 1000));
	uint8_t b;
	assert_int_equal(recv(fd, &b, 1, MSG_DONTWAIT), 0);
	assert_int_equal(malformed_count(h), 1);
	close(fd);
}

static void test_bad_len_too_large(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	static uint8_t big[VSOCK_MAX_PKT_PAYLOAD + 1];
	struct virtio_vsock_hdr hd;
	put_hdr(&hd, GUEST_CID, 2, 30, hport, sizeof(big), 1, VSOCK_OP_RW, 0, GBUF, 0);
	g_send_raw(h, &hd, HDR, big, sizeof(big));
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_true(host_sees_eof(h, fd, 1000));
	/* and for no connection at all: an RST reply */
	put_hdr(&hd, GUEST_CID, 2, 77, 88, 0xffffffffu, 1, VSOCK_OP_RW, 0, GBUF, 0);
	g_send_raw(h, &hd, HDR, "x", 1);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(malformed_count(h), 2);
	close(fd);
}

static void test_bad_unknown_op(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	static struct pkt p;
	g_send(h, 99, 31, 4444, 0, 0, NULL, 0); /* no connection */
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	g_send(h, VSOCK_OP_INVALID, 30, hport, 0, 0, NULL, 0); /* on the connection */
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.src_port, hport);
	assert_true(host_sees_eof(h, fd, 1000));
	close(fd);
}

static void test_bad_rw_unknown_connection(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	static struct pkt p;
	g_send(h, VSOCK_OP_RW, 31, hport, 0, 0, "who?", 4); /* right host port, other guest port */
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.dst_port, 31);
	g_send(h, VSOCK_OP_SHUTDOWN, 31, hport, 3, 0, NULL, 0);
	g_send(h, VSOCK_OP_CREDIT_REQUEST, 31, hport, 0, 0, NULL, 0);
	g_send(h, VSOCK_OP_RST, 31, hport, 0, 0, NULL, 0); /* no answer to this one */
	unsigned int rsts = 0;
	while (g_recv_wait(h, &p, 50) == 1)
		rsts += p.op == VSOCK_OP_RST;
	assert_int_equal(rsts, 2);
	assert_conn_alive(h, fd, hport);
	close(fd);
}

static void test_bad_response_when_established(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	g_send(h, VSOCK_OP_RESPONSE, 30, hport, 0, 0, NULL, 0);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_true(host_sees_eof(h, fd, 1000));
	assert_int_equal(malformed_count(h), 1);
	close(fd);
}

static void test_bad_request_when_established(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	g_send(h, VSOCK_OP_REQUEST, 30, hport, 0, 0, NULL, 0);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_true(host_sees_eof(h, fd, 1000));
	close(fd);
}

static void test_bad_rw_while_connecting(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	int fd = unix_connect(h->uds);
	write_all(fd, "CONNECT 33\n", 11);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	g_send(h, VSOCK_OP_RW, 33, p.src_port, 0, 0, "early", 5);
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_true(host_sees_eof(h, fd, 1000));
	close(fd);
}

static void test_bad_rx_buffer_too_small(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 0);
	/* a receive chain of 20 bytes: returned unused */
	uint64_t g = vqb_alloc(&h->rx, 20, 8);
	struct vqb_buf b = { g, 20, true };
	uint16_t head;
	assert_int_equal(vqb_send(&h->rx, &b, 1, &head), 0);
	g_send(h, VSOCK_OP_RW, 1, 2, 0, 0, NULL, 0); /* an RST is owed */
	uint32_t id, len;
	assert_int_equal(vqb_get_used(&h->rx, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_int_equal(malformed_count(h), 1);
	/* the RST waits for a proper buffer */
	g_post_rx(h, 1);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_RST);
}

/* Guest sends thousands of REQUESTs and RWs to nowhere without posting receive
 * buffers: the owed RSTs are bounded, nothing grows without limit. */
static void test_bad_flood_without_rx_buffers(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 0);
	for (uint32_t i = 0; i < 3000; i++)
		g_send(h, i & 1 ? VSOCK_OP_REQUEST : VSOCK_OP_RW, 10000 + i, 9, 0, 0, NULL, 0);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	g_post_rx(h, 120);
	static struct pkt p;
	unsigned int n = 0;
	while (g_recv_wait(h, &p, 50) == 1) {
		assert_int_equal(p.op, VSOCK_OP_RST);
		n++;
	}
	assert_true(n > 0 && n <= 256);
}

/* Random headers and payloads: never a crash, no connection appears from
 * garbage aimed at ports with no listener. */
static void test_bad_random_packets(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	uint32_t x = 0xdeadbeef;
	static uint8_t junk[512];
	for (int i = 0; i < 5000; i++) {
		struct virtio_vsock_hdr hd;
		uint8_t *r = (uint8_t *)&hd;
		for (size_t k = 0; k < sizeof(hd); k++) {
			x = x * 1664525u + 1013904223u;
			r[k] = (uint8_t)(x >> 24);
		}
		/* half of them look plausible enough to reach the op dispatch */
		if (i & 1) {
			hd.src_cid = htole64(GUEST_CID);
			hd.dst_cid = htole64(2);
			hd.type = htole16(1);
			hd.op = htole16((uint16_t)(le16toh(hd.op) % 9));
			hd.len = htole32(le32toh(hd.len) % 600);
			hd.dst_port = htole32(le32toh(hd.dst_port) % 3 == 0 ? hport
									     : le32toh(hd.dst_port));
		}
		uint32_t dlen = (x >> 8) % sizeof(junk);
		g_send_raw(h, &hd, HDR, junk, dlen);
		if (i % 64 == 0) {
			static struct pkt p;
			pump(h);
			while (g_recv(h, &p) == 1) {
			}
		}
	}
	pump(h);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_true(st.malformed > 0);
	assert_true(st.conns <= 1);
	assert_false(vqb_mmio_read(h->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	close(fd);
}

/* A broken queue rule puts the device in NEEDS_RESET; the reset then closes
 * every socket. */
static void test_bad_queue_needs_reset(void **state)
{
	struct h *h = *state;
	int fd;
	uint32_t hport;
	malformed_setup(h, &fd, &hport);
	assert_int_equal(vqb_set_avail_entry(&h->tx, h->tx.avail_idx, QSZ + 1), 0);
	assert_int_equal(vqb_set_avail_idx(&h->tx, (uint16_t)(h->tx.avail_idx + 1)), 0);
	vqb_mmio_write(h->t, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_VSOCK_QUEUE_TX);
	assert_true(vqb_mmio_read(h->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* host data does not reach a device in NEEDS_RESET */
	write_all(fd, "x", 1);
	pump_wait(h, 20);
	vqb_mmio_write(h->t, VIRTIO_MMIO_STATUS, 0);
	assert_true(host_sees_eof(h, fd, 1000));
	close(fd);
}

/* ---- device reset, event loop, teardown ----------------------------------------------- */

static void test_device_reset_closes_everything(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 32);
	char lp[160];
	port_path(h, 5300, lp, sizeof(lp));
	int lfd = unix_listen(lp);
	uint32_t hp;
	int a = host_connect(h, 40, &hp);
	int b = guest_connect(h, lfd, 43000, 5300);
	int pending = unix_connect(h->uds); /* no CONNECT line yet */
	pump_wait(h, 10);
	int connecting = unix_connect(h->uds);
	write_all(connecting, "CONNECT 41\n", 11);
	pump_wait(h, 10);
	struct virtio_vsock_stats st;
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 3);
	assert_int_equal(st.clients, 1);
	vqb_mmio_write(h->t, VIRTIO_MMIO_STATUS, 0); /* the guest driver goes away */
	int fds[] = { a, b, connecting };
	for (int i = 0; i < 3; i++) {
		assert_true(host_sees_eof(h, fds[i], 1000));
		close(fds[i]);
	}
	virtio_vsock_get_stats(h->vs, &st);
	assert_int_equal(st.conns, 0);
	/* a client that has not asked for anything yet is not the guest's: it stays */
	assert_int_equal(st.clients, 1);
	assert_false(fd_readable(pending, 0));
	/* a new driver: everything works again */
	vqb_destroy(&h->rx);
	vqb_destroy(&h->tx);
	assert_int_equal(vqb_init(&h->rx, RXQ_GPA, QRAM, QSZ), 0);
	assert_int_equal(vqb_init(&h->tx, TXQ_GPA, QRAM, QSZ), 0);
	h->gm.regions[0].host = h->rx.ram;
	h->gm.regions[1].host = h->tx.ram;
	h->tx_hdr_gpa = vqb_alloc(&h->tx, HDR, 8);
	h->tx_data_gpa = vqb_alloc(&h->tx, 2 * VSOCK_MAX_PKT_PAYLOAD, 8);
	h_driver_up(h, 8);
	a = host_connect(h, 40, &hp);
	g_send(h, VSOCK_OP_RW, 40, hp, 0, 0, "new", 3);
	uint8_t buf[4];
	host_read(h, a, buf, 3);
	assert_memory_equal(buf, "new", 3);
	/* the waiting client speaks now and is served by the new driver */
	write_all(pending, "CONNECT 41\n", 11);
	static struct pkt p;
	assert_int_equal(g_recv_wait(h, &p, 1000), 1);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	assert_int_equal(p.dst_port, 41);
	close(pending);
	close(a);
	close(lfd);
	unlink(lp);
}

static void test_event_loop_end_to_end(void **state)
{
	struct h *h = *state;
	struct event_loop loop;
	assert_int_equal(event_loop_init(&loop), 0);
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, &loop);
	assert_int_equal(event_loop_start(&loop), 0);
	h->lock_reads = true;
	h_driver_up(h, 32);
	int fd = unix_connect(h->uds);
	write_all(fd, "CONNECT 50\n", 11);
	static struct pkt p;
	uint64_t end = unit_now_ms() + 3000;
	int r = 0;
	while (!(r = g_recv(h, &p)) && unit_now_ms() < end)
		unit_sleep_ms(1);
	assert_int_equal(r, 1);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	uint32_t hport = p.src_port;
	g_send(h, VSOCK_OP_RESPONSE, 50, hport, 0, 0, NULL, 0);
	char line[32] = { 0 };
	int n = snprintf(line, sizeof(line), "OK %u\n", hport);
	char got[32] = { 0 };
	size_t gl = 0;
	while (gl < (size_t)n && fd_readable(fd, 2000)) {
		ssize_t k = recv(fd, got + gl, (size_t)n - gl, 0);
		assert_true(k > 0);
		gl += (size_t)k;
	}
	assert_string_equal(got, line);
	write_all(fd, "via the loop", 12);
	end = unit_now_ms() + 3000;
	r = 0;
	while (!(r = g_recv(h, &p)) && unit_now_ms() < end)
		unit_sleep_ms(1);
	assert_int_equal(r, 1);
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_memory_equal(p.data, "via the loop", 12);
	g_send(h, VSOCK_OP_RW, 50, hport, 0, 12, "and back", 8);
	uint8_t buf[8];
	assert_true(fd_readable(fd, 2000));
	assert_int_equal(recv(fd, buf, 8, MSG_WAITALL), 8);
	assert_memory_equal(buf, "and back", 8);
	close(fd);
	event_loop_stop(&loop);
	h->lock_reads = false;
	virtio_mmio_free(h->t);
	h->t = NULL;
	virtio_vsock_free(h->vs);
	h->vs = NULL;
	event_loop_destroy(&loop);
}

/* free with live connections closes every socket and unlinks the path. */
static void test_free_closes_everything(void **state)
{
	struct h *h = *state;
	struct virtio_vsock_config cfg = base_cfg(h);
	h_create(h, &cfg, NULL);
	h_driver_up(h, 16);
	uint32_t hp;
	int a = host_connect(h, 60, &hp);
	int b = unix_connect(h->uds);
	pump_wait(h, 10);
	virtio_mmio_free(h->t);
	h->t = NULL;
	virtio_vsock_free(h->vs);
	h->vs = NULL;
	assert_true(fd_readable(a, 100));
	assert_int_equal(recv(a, &hp, 1, MSG_DONTWAIT), 0);
	assert_true(fd_readable(b, 100));
	assert_int_equal(recv(b, &hp, 1, MSG_DONTWAIT), 0);
	assert_int_equal(access(h->uds, F_OK), -1);
	close(a);
	close(b);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the VMM's main() does */
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_identity_and_config),
		T(test_new_rejects_bad_config),
		T(test_stale_socket_replaced_and_unlinked_on_free),
		T(test_host_to_guest_handshake_and_data),
		T(test_connect_line_with_trailing_data),
		T(test_host_ports_are_distinct),
		T(test_request_before_driver_ok),
		T(test_malformed_connect_lines_close_client),
		T(test_guest_refuses_host_connect),
		T(test_connect_timeout),
		T(test_client_gone_before_response),
		T(test_guest_to_host_connect_and_data),
		T(test_guest_to_host_no_listener_rst),
		T(test_guest_credit_exhaustion_and_update),
		T(test_credit_request_answered),
		T(test_host_backpressure_with_credit_updates),
		T(test_credit_violation_rst),
		T(test_many_concurrent_connections),
		T(test_several_hundred_connections),
		T(test_connection_limit),
		T(test_host_close_mid_transfer_rst),
		T(test_host_close_while_guest_sends),
		T(test_guest_rst_closes_socket),
		T(test_guest_half_close),
		T(test_host_half_close),
		T(test_guest_close_handshake),
		T(test_bad_short_header),
		T(test_split_header_accepted),
		T(test_bad_src_cid),
		T(test_bad_dst_cid),
		T(test_bad_type),
		T(test_bad_len_beyond_chain),
		T(test_bad_len_too_large),
		T(test_bad_unknown_op),
		T(test_bad_rw_unknown_connection),
		T(test_bad_response_when_established),
		T(test_bad_request_when_established),
		T(test_bad_rw_while_connecting),
		T(test_bad_rx_buffer_too_small),
		T(test_bad_flood_without_rx_buffers),
		T(test_bad_random_packets),
		T(test_bad_queue_needs_reset),
		T(test_device_reset_closes_everything),
		T(test_event_loop_end_to_end),
		T(test_free_closes_everything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
