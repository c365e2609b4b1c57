/* libFuzzer target: virtio-vsock (reference-vmm/src/virtio/vsock.c and
 * vsock_host.c) behind the real virtio-mmio transport. The guest is
 * tests/support/vq_builder with a small connection model; the host side is real
 * AF_UNIX sockets in a private directory (listeners at <uds>_<port>, CONNECT
 * clients on <uds>), all created and closed within one input.
 *
 * Determinism: no event loop (the harness calls virtio_vsock_poll until its
 * epoll fd is quiet), every socket is non-blocking and AF_UNIX delivery is
 * synchronous (a send is readable at the peer when it returns), the connect
 * timeout is ~24 days so the timer never expires inside an input. Socket
 * buffer sizes are the host's (the same for every run on a machine).
 *
 * Oracles while no raw op happened: every packet the device delivers is well
 * formed (cids, type, op, len == used length - 44, our buf_alloc); it never
 * sends more RW bytes than the guest's advertised credit; RW payloads follow the
 * host peer's pattern stream for that connection (host → guest integrity and
 * order); bytes arriving at host sockets follow the guest's pattern stream for
 * one of the guest ports (guest → host integrity); "OK <port>" lines name a
 * host port >= 2^30; no fd leaks across inputs.
 *
 * Input format (little-endian, zero-padded):
 *   byte 0  mode  bits 0-1: 0..2 TEMPLATE (device up, rx buffers posted, k = bits
 *                 2-4 raw ops), 3 RAW (from reset)
 *   byte 1  config: bits 0-1 buf_alloc {default 256K, 4096, 8192, 3000: invalid};
 *           bits 2-3 max_conns {default, 1, 2, 4}; bit 4 guest cid 3 (else 42);
 *           bit 5 the guest advertises a 4 KiB buffer (else 64 KiB); bit 6 the
 *           guest cid is a raw u64 (creation may fail)
 *   byte 2  ring sizes index
 *   ops     opcode byte + args: TEMPLATE % 16 (t_op), RAW % 20 (r_op)
 */
#include "harness_env.h"
#include "fuzz_input.h"
#include "vq_mutate.h"

#include "virtio/mmio.h"
#include "virtio/vsock.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RXQ VIRTIO_VSOCK_QUEUE_RX
#define TXQ VIRTIO_VSOCK_QUEUE_TX
#define EVQ VIRTIO_VSOCK_QUEUE_EVT
#define QGPA(i) (0x40000000ull + (uint64_t)(i) * 0x01000000ull)
#define QRAM (256 * 1024)
#define HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define MAX_OPS 300
#define NPEER 8
#define NCONN 32
#define HOST_INIT 0x80000000u
#define G2H 1
#define H2G 2

static const uint32_t gports[4] = { 5000, 5001, 5002, 5003 };
static const uint32_t lports[5] = { 1000, 1001, 2000, 2001, 3000 }; /* 3000: never listened */

/* guest's view of one connection */
struct gconn {
	bool used, closed;
	uint32_t hp, gp;
	uint64_t rx_total;   /* RW bytes received (and consumed: fwd_cnt) */
	uint64_t fwd_sent;   /* fwd_cnt in our last packet */
	uint64_t tx_cnt;     /* RW bytes sent */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	bool have_credit;
	bool shut_send;
};

struct peer {
	int fd;               /* -1: free */
	bool client;          /* connected to <uds> with CONNECT (host → guest) */
	uint32_t lport;       /* accepted from the listener of this port */
	uint32_t target;      /* client: the guest port in its CONNECT line */
	uint32_t hp;          /* client: host port from "OK <port>" (0 until then) */
	char line[32];
	unsigned int line_len;
	uint8_t cand;         /* listener peer: guest ports still consistent (bits) */
	uint64_t rx_off;      /* guest → host bytes seen */
	uint64_t tx_off;      /* host → guest pattern bytes sent */
};

struct rxchain {
	bool live;
	unsigned int n;
	struct vqb_buf bufs[4];
};

struct h {
	struct virtio_vsock *vs;
	struct virtio_transport *t;
	struct fuzz_irq irq;
	struct guest_mem mem;
	struct vqb b[3];
	struct vqm m[3];
	uint16_t qsize[3];
	uint64_t cid;
	uint32_t dev_buf_alloc;
	uint32_t guest_buf;
	char uds[80];
	int lfd[4];
	struct peer peers[NPEER];
	struct gconn conns[NCONN];
	struct rxchain *rx; /* by head */
	uint64_t rx_alloc;
	bool tainted;
	bool host_paused; /* host peers do not read (back-pressure on the device) */
	unsigned int budget;
};

static uint8_t pat(unsigned int dir_, uint32_t a, uint32_t b, uint64_t o)
{
	uint64_t x = ((uint64_t)dir_ << 62) ^ ((uint64_t)a << 32) ^ ((uint64_t)b << 16) ^ o;
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	return (uint8_t)(x >> 24);
}

static uint32_t h2g_key(uint32_t hp, uint32_t gp)
{
	return hp < VSOCK_HOST_PORT_BASE ? hp : (HOST_INIT | gp);
}

static uint32_t g2h_key(uint32_t hp)
{
	return hp < VSOCK_HOST_PORT_BASE ? hp : HOST_INIT;
}

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

static void port_path(struct h *h, uint32_t port, char *out, size_t n)
{
	snprintf(out, n, "%s_%u", h->uds, port);
}

/* ---- guest model ---- */

static struct gconn *gc_find(struct h *h, uint32_t hp, uint32_t gp, bool create)
{
	struct gconn *free_slot = NULL;
	for (int i = 0; i < NCONN; i++) {
		struct gconn *c = &h->conns[i];
		if (c->used && c->hp == hp && c->gp == gp)
			return c;
		if (!c->used && !free_slot)
			free_slot = c;
	}
	if (!create || !free_slot)
		return NULL;
	*free_slot = (struct gconn){ .used = true, .hp = hp, .gp = gp };
	return free_slot;
}

static void mmio_w(struct h *h, uint64_t off, uint32_t v)
{
	vqb_mmio_write(h->t, off, v);
}

static void notify(struct h *h, struct fin *f, uint16_t q)
{
	if (fin_u8(f) & 1)
		virtio_mmio_queue_notify(h->t, q);
	else
		mmio_w(h, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static uint64_t rx_take(struct h *h, uint32_t len)
{
	struct vqm *m = &h->m[RXQ];
	len = (len + 7) & ~7u;
	if (h->rx_alloc + len > m->data_size)
		h->rx_alloc = 0; /* posted buffers are far fewer than the window holds */
	uint64_t gpa = m->data_gpa + h->rx_alloc;
	h->rx_alloc += len;
	return gpa;
}

static void post_rx(struct h *h, struct fin *f, unsigned int n)
{
	static const uint32_t sizes[8] = { 4096, 4096, 512, 64, 0, 1024, 16384, 13 };
	for (unsigned int i = 0; i < n; i++) {
		uint8_t s = fin_u8(f);
		uint32_t dl = sizes[s & 7];
		struct vqb_buf bufs[2];
		unsigned int nb;
		bool ind = s & 0x40;
		if (dl == 13) { /* shorter than a header */
			bufs[0] = (struct vqb_buf){ rx_take(h, 13), 13, true };
			nb = 1;
		} else if (s & 8) { /* header and data in one buffer */
			bufs[0] = (struct vqb_buf){ rx_take(h, HDR + dl), HDR + dl, true };
			nb = 1;
		} else {
			bufs[0] = (struct vqb_buf){ rx_take(h, HDR), HDR, true };
			nb = 1;
			if (dl)
				bufs[nb++] = (struct vqb_buf){ rx_take(h, dl), dl, true };
		}
		uint16_t head;
		if (vqm_add(&h->m[RXQ], bufs, nb, ind, &head) == 0) {
			h->rx[head] = (struct rxchain){ true, nb, { bufs[0], bufs[1] } };
			vqb_publish(&h->b[RXQ], head);
		}
	}
}

/* A packet on the TX queue: header + payload, framed as the input says. */
static bool tx_packet(struct h *h, struct fin *f, const struct virtio_vsock_hdr *hd,
		      const uint8_t *payload, uint32_t plen)
{
	uint8_t frame = fin_u8(f);
	struct vqb *b = &h->b[TXQ];
	struct vqm *m = &h->m[TXQ];
	struct vqb_buf bufs[4];
	unsigned int n = 0;
	uint32_t hlen = HDR;
	if ((frame & 0x70) == 0x70 && h->tainted)
		hlen = fin_u8(f) % HDR; /* short header (raw only) */
	uint64_t gpa = vqm_data_buf(m, f, hlen + plen);
	uint8_t *p = vqb_host(b, gpa, hlen + plen);
	if (!p)
		return false;
	memcpy(p, hd, hlen);
	if (plen)
		memcpy(p + hlen, payload, plen);
	uint32_t total = hlen + plen;
	if (frame & 1) {
		bufs[n++] = (struct vqb_buf){ gpa, total, false };
	} else if (frame & 2) { /* header split in two */
		uint32_t cut = 1 + frame % (hlen > 1 ? hlen - 1 : 1);
		if (cut >= total)
			cut = total - 1;
		bufs[n++] = (struct vqb_buf){ gpa, cut ? cut : total, false };
		if (cut && total > cut)
			bufs[n++] = (struct vqb_buf){ gpa + cut, total - cut, false };
	} else {
		bufs[n++] = (struct vqb_buf){ gpa, hlen, false };
		if (plen)
			bufs[n++] = (struct vqb_buf){ gpa + hlen, plen, false };
	}
	if (frame & 4) /* a writable tail the device must ignore */
		bufs[n++] = (struct vqb_buf){ vqm_data_buf(m, f, 16), 16, true };
	uint16_t head;
	if (vqm_add(m, bufs, n, frame & 8, &head))
		return false; /* no free descriptors: the guest did not send it */
	return vqb_publish(b, head) == 0;
}

static void put_hdr(struct h *h, struct virtio_vsock_hdr *hd, uint32_t gp, uint32_t hp,
		    uint16_t op, uint32_t len, uint32_t flags, uint32_t fwd)
{
	hd->src_cid = htole64(h->cid);
	hd->dst_cid = htole64(VSOCK_CID_HOST);
	hd->src_port = htole32(gp);
	hd->dst_port = htole32(hp);
	hd->len = htole32(len);
	hd->type = htole16(VSOCK_TYPE_STREAM);
	hd->op = htole16(op);
	hd->flags = htole32(flags);
	hd->buf_alloc = htole32(h->guest_buf);
	hd->fwd_cnt = htole32(fwd);
}

/* A well-behaved guest packet on connection c (or a new REQUEST). */
static void g_send(struct h *h, struct fin *f, struct gconn *c, uint16_t op)
{
	static uint8_t payload[VSOCK_MAX_PKT_PAYLOAD];
	struct virtio_vsock_hdr hd;
	uint32_t len = 0, flags = 0;
	bool shut = false;
	if (op == VSOCK_OP_RW) {
		uint64_t credit = 0;
		if (c->have_credit) {
			uint32_t in_flight = (uint32_t)c->tx_cnt - c->peer_fwd_cnt;
			credit = in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
		}
		uint16_t want = fin_u16(f); /* >= 0xf000: a full 64 KiB packet (host back-pressure) */
		len = want >= 0xf000 ? VSOCK_MAX_PKT_PAYLOAD : 1u + want % 3000u;
		if (len > credit)
			len = (uint32_t)credit;
		if (!len || c->shut_send || c->closed)
			return;
		uint32_t key = g2h_key(c->hp);
		for (uint32_t i = 0; i < len; i++)
			payload[i] = pat(G2H, key, c->gp, c->tx_cnt + i);
	} else if (op == VSOCK_OP_SHUTDOWN) {
		flags = 1 + fin_u8(f) % 3;
		shut = flags & VSOCK_SHUTDOWN_SEND;
	}
	put_hdr(h, &hd, c->gp, c->hp, op, len, flags, (uint32_t)c->rx_total);
	if (!tx_packet(h, f, &hd, payload, len))
		return;
	/* sent: the model moves on */
	c->tx_cnt += len;
	c->fwd_sent = c->rx_total;
	if (shut)
		c->shut_send = true;
	if (op == VSOCK_OP_RST)
		c->closed = true;
	FUZZ_TRACE("g_send op %u %u->%u len %u\n", op, c->gp, c->hp, len);
}

static void g_connect(struct h *h, struct fin *f)
{
	uint32_t gp = gports[fin_u8(f) & 3];
	uint32_t hp = lports[fin_u8(f) % 5];
	struct gconn *c = gc_find(h, hp, gp, false);
	if (c && !c->closed)
		return; /* a guest does not reconnect a live port pair */
	c = gc_find(h, hp, gp, true);
	if (!c)
		return;
	*c = (struct gconn){ .used = true, .hp = hp, .gp = gp };
	g_send(h, f, c, VSOCK_OP_REQUEST);
}

static struct gconn *pick_conn(struct h *h, struct fin *f)
{
	uint8_t s = fin_u8(f);
	for (int k = 0; k < NCONN; k++) {
		struct gconn *c = &h->conns[(s + k) % NCONN];
		if (c->used)
			return c;
	}
	return NULL;
}

static void g_reply(struct h *h, struct fin *f)
{
	static const uint16_t ops[8] = { VSOCK_OP_RW, VSOCK_OP_RW, VSOCK_OP_RW,
					 VSOCK_OP_CREDIT_UPDATE, VSOCK_OP_CREDIT_REQUEST,
					 VSOCK_OP_SHUTDOWN, VSOCK_OP_RST, VSOCK_OP_RESPONSE };
	struct gconn *c = pick_conn(h, f);
	if (c)
		g_send(h, f, c, ops[fin_u8(f) & 7]);
}

/* Any header at all (raw mode). */
static void g_raw_packet(struct h *h, struct fin *f)
{
	uint8_t payload[256];
	struct virtio_vsock_hdr hd;
	uint8_t s = fin_u8(f);
	uint32_t gp = (s & 1) ? fin_u32(f) : gports[(s >> 1) & 3];
	uint32_t hp = (s & 8) ? fin_u32(f) : lports[(s >> 4) % 5];
	struct gconn *c = pick_conn(h, f);
	if (c && (s & 0x80)) {
		gp = c->gp;
		hp = c->hp;
	}
	uint16_t op = (uint16_t)(fin_u8(f) % 9);
	uint32_t plen = fin_u8(f) % sizeof(payload);
	fin_bytes(f, payload, plen);
	uint32_t flags = fin_u8(f); /* one statement each: argument order is unspecified */
	put_hdr(h, &hd, gp, hp, op, plen, flags, fin_u32(f));
	uint8_t m = fin_u8(f);
	if (m & 1)
		hd.src_cid = htole64(fin_u64(f));
	if (m & 2)
		hd.dst_cid = htole64(fin_u64(f));
	if (m & 4)
		hd.type = htole16(fin_u16(f));
	if (m & 8)
		hd.len = htole32(fin_len32(f, plen));
	if (m & 16)
		hd.buf_alloc = htole32(fin_u32(f));
	tx_packet(h, f, &hd, payload, plen);
}

/* ---- device → guest: parse and check the rx ring ---- */

static void check_rx_packet(struct h *h, const struct virtio_vsock_hdr *hd,
			    const struct rxchain *rc, uint32_t used)
{
	uint16_t op = le16toh(hd->op);
	uint32_t len = le32toh(hd->len), hp = le32toh(hd->src_port), gp = le32toh(hd->dst_port);
	FUZZ_CHECK(le64toh(hd->src_cid) == VSOCK_CID_HOST && le64toh(hd->dst_cid) == h->cid,
		   "packet cids %llu -> %llu", (unsigned long long)le64toh(hd->src_cid),
		   (unsigned long long)le64toh(hd->dst_cid));
	FUZZ_CHECK(le16toh(hd->type) == VSOCK_TYPE_STREAM, "packet type");
	FUZZ_CHECK(op >= VSOCK_OP_REQUEST && op <= VSOCK_OP_CREDIT_REQUEST, "packet op %u", op);
	FUZZ_CHECK(le32toh(hd->buf_alloc) == h->dev_buf_alloc, "packet buf_alloc %u",
		   le32toh(hd->buf_alloc));
	FUZZ_CHECK(used == HDR + len, "used length %u, header len %u", used, len);
	FUZZ_CHECK(op == VSOCK_OP_RW ? len > 0 && len <= VSOCK_MAX_PKT_PAYLOAD : len == 0,
		   "op %u with len %u", op, len);
	FUZZ_TRACE("rx op %u %u->%u len %u fwd %u\n", op, hp, gp, len, le32toh(hd->fwd_cnt));

	struct gconn *c = gc_find(h, hp, gp, op == VSOCK_OP_REQUEST);
	if (op == VSOCK_OP_REQUEST) {
		FUZZ_CHECK(hp >= VSOCK_HOST_PORT_BASE, "host-initiated REQUEST from port %u", hp);
		if (c)
			*c = (struct gconn){ .used = true, .hp = hp, .gp = gp };
	}
	if (!c)
		return;
	c->peer_buf_alloc = le32toh(hd->buf_alloc);
	c->peer_fwd_cnt = le32toh(hd->fwd_cnt);
	c->have_credit = true;
	if (op == VSOCK_OP_RST) {
		c->used = false;
		return;
	}
	if (op != VSOCK_OP_RW)
		return;
	uint8_t data[VSOCK_MAX_PKT_PAYLOAD];
	uint32_t got = 0, skip = HDR;
	for (unsigned int i = 0; i < rc->n && got < len; i++) {
		uint32_t bl = rc->bufs[i].len;
		if (skip >= bl) {
			skip -= bl;
			continue;
		}
		uint32_t k = bl - skip < len - got ? bl - skip : len - got;
		FUZZ_CHECK(guest_mem_read(&h->mem, rc->bufs[i].gpa + skip, data + got, k) == 0,
			   "rx data");
		got += k;
		skip = 0;
	}
	FUZZ_CHECK(got == len, "rx chain shorter than the packet");
	uint32_t key = h2g_key(hp, gp);
	for (uint32_t i = 0; i < len; i++)
		FUZZ_CHECK(data[i] == pat(H2G, key, 0, c->rx_total + i),
			   "host -> guest byte %llu of %u->%u corrupted or out of order",
			   (unsigned long long)(c->rx_total + i), hp, gp);
	c->rx_total += len;
	FUZZ_CHECK(c->rx_total - c->fwd_sent <= h->guest_buf,
		   "device overran the guest's credit: %llu bytes unacknowledged, buf_alloc %u",
		   (unsigned long long)(c->rx_total - c->fwd_sent), h->guest_buf);
}

static void reap_rx(struct h *h)
{
	uint32_t id, len;
	struct vqb *b = &h->b[RXQ];
	for (uint32_t i = 0; i <= b->size; i++) {
		if (vqb_get_used(b, &id, &len) != 1)
			break;
		struct rxchain *rc = id < 256 ? &h->rx[id] : NULL;
		if (h->tainted || !rc || !rc->live) {
			FUZZ_CHECK(h->tainted, "rx used id %u unknown", id);
			continue;
		}
		rc->live = false;
		uint32_t wl = 0;
		for (unsigned int k = 0; k < rc->n; k++)
			wl += rc->bufs[k].len;
		FUZZ_CHECK(len <= wl, "rx used length %u > %u", len, wl);
		if (wl < HDR) {
			FUZZ_CHECK(len == 0, "packet in a buffer shorter than a header");
			continue;
		}
		struct virtio_vsock_hdr hd;
		uint8_t raw[HDR];
		uint32_t got = 0;
		for (unsigned int k = 0; k < rc->n && got < HDR; k++) {
			uint32_t n = rc->bufs[k].len < HDR - got ? rc->bufs[k].len : HDR - got;
			guest_mem_read(&h->mem, rc->bufs[k].gpa, raw + got, n);
			got += n;
		}
		memcpy(&hd, raw, HDR);
		check_rx_packet(h, &hd, rc, len);
	}
}

static void reap_tx(struct h *h)
{
	uint32_t id, len;
	for (int q = TXQ; q <= EVQ; q++)
		for (uint32_t i = 0; i <= h->b[q].size; i++)
			if (vqb_get_used(&h->b[q], &id, &len) != 1)
				break;
}

/* ---- host side ---- */

static struct peer *peer_slot(struct h *h)
{
	for (int i = 0; i < NPEER; i++)
		if (h->peers[i].fd < 0)
			return &h->peers[i];
	return NULL;
}

static struct peer *pick_peer(struct h *h, struct fin *f)
{
	uint8_t s = fin_u8(f);
	for (int k = 0; k < NPEER; k++) {
		struct peer *p = &h->peers[(s + k) % NPEER];
		if (p->fd >= 0)
			return p;
	}
	return NULL;
}

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static void h_listen(struct h *h, unsigned int i)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (h->lfd[i] >= 0)
		return;
	port_path(h, lports[i], sa.sun_path, sizeof(sa.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		close(fd);
		return;
	}
	h->lfd[i] = fd;
}

static void h_accept(struct h *h, unsigned int i)
{
	while (h->lfd[i] >= 0) {
		struct peer *p = peer_slot(h);
		if (!p)
			return;
		int fd = accept4(h->lfd[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		*p = (struct peer){ .fd = fd, .lport = lports[i], .cand = 0x0f };
	}
}

static void h_connect(struct h *h, struct fin *f)
{
	struct peer *p = peer_slot(h);
	if (!p)
		return;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->uds);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return;
	}
	*p = (struct peer){ .fd = fd, .client = true, .target = gports[fin_u8(f) & 3] };
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", p->target);
	uint8_t how = fin_u8(f);
	if (how < 0xf0) {
		if (send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
			peer_close(p);
	} else if (h->tainted) { /* raw only: a malformed or partial line */
		size_t got;
		const uint8_t *raw = fin_take(f, how & 15, &got);
		if (send(fd, raw, got, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			peer_close(p);
	}
}

static void h_send(struct h *h, struct fin *f)
{
	struct peer *p = pick_peer(h, f);
	if (!p)
		return;
	static uint8_t buf[64 * 1024];
	uint8_t s = fin_u8(f);
	size_t n = (s & 0x80) ? 4096u * (1u + (s & 15u)) : 1u + (s & 0x7fu) * 8u;
	uint32_t key = p->client ? (HOST_INIT | p->target) : p->lport;
	for (size_t i = 0; i < n; i++)
		buf[i] = pat(H2G, key, 0, p->tx_off + i);
	ssize_t w = send(p->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w > 0)
		p->tx_off += (uint64_t)w;
}

static void h_recv(struct h *h, struct peer *p)
{
	uint8_t buf[4096];
	for (int guard = 0; guard < 64 && p->fd >= 0; guard++) {
		ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			return;
		for (ssize_t i = 0; i < n; i++) {
			uint8_t c = buf[i];
			if (p->client && !p->hp) { /* "OK <port>\n" first */
				if (c != '\n') {
					FUZZ_CHECK(p->line_len < sizeof(p->line) - 1,
						   "OK line too long");
					p->line[p->line_len++] = (char)c;
					continue;
				}
				p->line[p->line_len] = 0;
				unsigned long port = 0;
				char tail = 0;
				FUZZ_CHECK(sscanf(p->line, "OK %lu%c", &port, &tail) == 1 &&
						   port >= VSOCK_HOST_PORT_BASE && port < UINT32_MAX,
					   "bad OK line '%s'", p->line);
				p->hp = (uint32_t)port;
				continue;
			}
			if (h->tainted)
				continue;
			if (p->client) {
				FUZZ_CHECK(c == pat(G2H, HOST_INIT, p->target, p->rx_off),
					   "guest -> host byte %llu to client of port %u corrupted",
					   (unsigned long long)p->rx_off, p->target);
			} else {
				uint8_t keep = 0;
				for (int g = 0; g < 4; g++)
					if ((p->cand & (1u << g)) &&
					    c == pat(G2H, p->lport, gports[g], p->rx_off))
						keep |= (uint8_t)(1u << g);
				FUZZ_CHECK(keep, "guest -> host byte %llu on port %u matches no guest stream",
					   (unsigned long long)p->rx_off, p->lport);
				p->cand = keep;
			}
			p->rx_off++;
		}
	}
}

static void h_recv_all(struct h *h)
{
	for (int i = 0; i < NPEER; i++)
		h_recv(h, &h->peers[i]);
}

static void poll_device(struct h *h)
{
	for (int i = 0; i < 32; i++) {
		struct pollfd p = { .fd = virtio_vsock_fd(h->vs), .events = POLLIN };
		if (poll(&p, 1, 0) != 1)
			break;
		virtio_vsock_poll(h->vs);
	}
}

/* ---- driver bring-up ---- */

static bool driver_init(struct h *h)
{
	guest_mem_init(&h->mem);
	for (int q = 0; q < 3; q++) {
		vqb_destroy(&h->b[q]);
		if (vqb_init(&h->b[q], QGPA(q), QRAM, h->qsize[q]) ||
		    guest_mem_add(&h->mem, h->b[q].ram_gpa, h->b[q].ram_size, h->b[q].ram))
			return false;
		vqm_init(&h->m[q], &h->b[q]);
	}
	memset(h->rx, 0, sizeof(*h->rx) * 256);
	memset(h->conns, 0, sizeof(h->conns));
	h->rx_alloc = 0;
	return true;
}

static void bring_up(struct h *h, struct fin *f)
{
	vqb_mmio_negotiate(h->t, ~0ull);
	for (uint16_t q = 0; q < 3; q++)
		vqb_mmio_setup_queue(h->t, q, &h->b[q]);
	vqb_mmio_driver_ok(h->t);
	post_rx(h, f, h->qsize[RXQ] < 8 ? h->qsize[RXQ] : 8);
	mmio_w(h, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
}

static void restart(struct h *h, struct fin *f)
{
	mmio_w(h, VIRTIO_MMIO_STATUS, 0);
	FUZZ_CHECK(driver_init(h), "driver re-init");
	bring_up(h, f);
}

/* after every template op: the device catches up, the guest and host look */
static void settle(struct h *h)
{
	poll_device(h);
	reap_rx(h);
	reap_tx(h);
	if (!h->host_paused)
		h_recv_all(h);
}

static void t_op(struct h *h, struct fin *f);

static void r_op(struct h *h, struct fin *f)
{
	uint8_t op = fin_u8(f) % 20;
	FUZZ_TRACE("R op %u\n", op);
	h->tainted = true;
	switch (op) {
	case 0: case 1: case 2:
		g_raw_packet(h, f);
		notify(h, f, TXQ);
		break;
	case 3: {
		uint8_t q = fin_u8(f) % 3;
		vqm_mutate(&h->m[q], f);
		break;
	}
	case 4: {
		static const uint16_t regs[] = { VIRTIO_MMIO_STATUS, VIRTIO_MMIO_QUEUE_READY,
						 VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MMIO_QUEUE_NOTIFY,
						 VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_QUEUE_NUM };
		uint8_t s = fin_u8(f);
		mmio_w(h, regs[s % 6], (s & 0x80) ? fin_u32(f) : fin_u8(f) % 4);
		break;
	}
	case 5: { /* config space */
		uint8_t d[8];
		uint8_t s = fin_u8(f);
		virtio_mmio_bus_ops.read(h->t, VIRTIO_MMIO_CONFIG + (s & 15), d, 1u << (s >> 6));
		virtio_mmio_bus_ops.write(h->t, VIRTIO_MMIO_CONFIG + (s & 7), d, 1);
		break;
	}
	case 6:
		poll_device(h);
		break;
	case 7:
		reap_rx(h);
		reap_tx(h);
		break;
	case 8:
		h_recv_all(h);
		break;
	case 9: {
		struct peer *p = pick_peer(h, f);
		if (p)
			shutdown(p->fd, (fin_u8(f) & 1) ? SHUT_WR : SHUT_RDWR);
		break;
	}
	case 10: { /* host sends raw bytes */
		struct peer *p = pick_peer(h, f);
		size_t got;
		const uint8_t *raw = fin_take(f, fin_u8(f) % 64, &got);
		if (p && got)
			(void)!send(p->fd, raw, got, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	}
	case 11:
		restart(h, f);
		break;
	case 12:
		vqb_mmio_negotiate(h->t, fin_u64(f));
		for (uint16_t q = 0; q < 3; q++)
			vqb_mmio_setup_queue(h->t, q, &h->b[q]);
		break;
	case 13:
		vqb_mmio_driver_ok(h->t);
		break;
	case 14:
		post_rx(h, f, 1 + fin_u8(f) % 8);
		notify(h, f, RXQ);
		break;
	case 15:
		notify(h, f, (uint16_t)(fin_u8(f) % 4));
		break;
	default:
		t_op(h, f); /* the template's actions, unchecked */
		break;
	}
}

static void t_op(struct h *h, struct fin *f)
{
	uint8_t op = fin_u8(f) % 16;
	FUZZ_TRACE("T op %u\n", op);
	switch (op) {
	case 0: case 1:
		g_connect(h, f);
		notify(h, f, TXQ);
		break;
	case 2: case 3: case 4:
		g_reply(h, f);
		notify(h, f, TXQ);
		break;
	case 5:
		post_rx(h, f, 1 + fin_u8(f) % 8);
		notify(h, f, RXQ);
		break;
	case 6:
		h_listen(h, fin_u8(f) % 4);
		break;
	case 7: /* accept, and stop or resume reading the host sockets */
		h->host_paused = fin_u8(f) & 1;
		for (unsigned int i = 0; i < 4; i++)
			h_accept(h, i);
		break;
	case 8:
		h_connect(h, f);
		break;
	case 9: case 10:
		h_send(h, f);
		break;
	case 11: {
		struct peer *p = pick_peer(h, f);
		if (p) {
			h_recv(h, p);
			if (fin_u8(f) & 1)
				shutdown(p->fd, SHUT_WR);
			else
				peer_close(p);
		}
		break;
	}
	case 12: { /* interrupt handler */
		uint32_t st = vqb_mmio_read(h->t, VIRTIO_MMIO_INTERRUPT_STATUS);
		mmio_w(h, VIRTIO_MMIO_INTERRUPT_ACK, st);
		if (vqb_mmio_read(h->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
			restart(h, f);
		break;
	}
	case 13:
		if (h->budget) {
			h->budget--;
			r_op(h, f);
		} else {
			restart(h, f);
		}
		break;
	case 14: { /* guest sends a credit update on every connection */
		for (int i = 0; i < NCONN; i++)
			if (h->conns[i].used && !h->conns[i].closed &&
			    h->conns[i].rx_total != h->conns[i].fwd_sent)
				g_send(h, f, &h->conns[i], VSOCK_OP_CREDIT_UPDATE);
		notify(h, f, TXQ);
		break;
	}
	default: { /* keep the rx queue stocked */
		uint32_t pending = (uint16_t)(h->b[RXQ].avail_idx - vqb_used_idx(&h->b[RXQ]));
		if (pending < 4)
			post_rx(h, f, 4);
		notify(h, f, RXQ);
		break;
	}
	}
	settle(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t bufs[4] = { 0, 4096, 8192, 3000 };
	static const uint32_t maxc[4] = { 0, 1, 2, 4 };
	static const uint16_t qs[8][3] = { { 32, 32, 4 }, { 16, 16, 4 }, { 8, 4, 2 },
					   { 64, 64, 4 }, { 4, 8, 1 },   { 256, 256, 4 },
					   { 2, 2, 1 },   { 32, 16, 0 } };
	static struct rxchain rxchains[256];
	struct fin f;
	struct h *h;
	char err[256];

	const char *dir = fuzz_private_dir();
	int fds_before = count_fds();
	h = calloc(1, sizeof(*h));
	if (!h)
		return 0;
	h->rx = rxchains;
	for (int i = 0; i < 4; i++)
		h->lfd[i] = -1;
	for (int i = 0; i < NPEER; i++)
		h->peers[i].fd = -1;
	snprintf(h->uds, sizeof(h->uds), "%s/v", dir);

	fin_init(&f, data, size);
	uint8_t mode = fin_u8(&f);
	bool raw = (mode & 3) == 3;
	h->budget = (mode >> 2) & 7;
	uint8_t cfgb = fin_u8(&f);
	uint8_t qi = fin_u8(&f) & 7;
	for (int q = 0; q < 3; q++)
		h->qsize[q] = qs[qi][q];
	h->cid = (cfgb & 16) ? 3 : 42;
	if (cfgb & 64)
		h->cid = fin_u64(&f);
	h->guest_buf = (cfgb & 32) ? 4096 : 65536;
	struct virtio_vsock_config cfg = {
		.guest_cid = h->cid,
		.uds_path = h->uds,
		.buf_alloc = bufs[cfgb & 3],
		.max_conns = maxc[(cfgb >> 2) & 3],
		.connect_timeout_ms = 0x7fffffff, /* never expires within an input */
	};
	h->dev_buf_alloc = cfg.buf_alloc ? cfg.buf_alloc : VSOCK_DEFAULT_BUF_ALLOC;
	h->tainted = raw;

	int r = virtio_vsock_new(&h->vs, &cfg, NULL, fuzz_log(), err, sizeof(err));
	bool should = h->cid >= 3 && h->cid <= 0xfffffffeull && cfg.buf_alloc != 3000;
	FUZZ_CHECK((r == 0) == should, "virtio_vsock_new: %d (%s)", r, err);
	if (r)
		goto out;
	if (!driver_init(h))
		goto out;
	h->t = virtio_mmio_new(&virtio_vsock_ops, h->vs, &h->mem, fuzz_irq_line(&h->irq, 8),
			       fuzz_log());
	FUZZ_CHECK(h->t, "virtio_mmio_new");
	if (!raw) {
		bring_up(h, &f);
		settle(h);
	}
	for (int i = 0; i < MAX_OPS && !fin_done(&f); i++) {
		if (raw)
			r_op(h, &f);
		else
			t_op(h, &f);
	}
	h->host_paused = false;
	settle(h);
	settle(h); /* what the host read may let held guest data flow */
out:
	virtio_mmio_free(h->t);
	virtio_vsock_free(h->vs);
	for (int q = 0; q < 3; q++)
		vqb_destroy(&h->b[q]);
	for (int i = 0; i < NPEER; i++)
		peer_close(&h->peers[i]);
	for (int i = 0; i < 4; i++) {
		char path[128];
		if (h->lfd[i] >= 0) {
			close(h->lfd[i]);
			port_path(h, lports[i], path, sizeof(path));
			unlink(path);
		}
	}
	free(h);
	FUZZ_CHECK(count_fds() == fds_before, "fd leak: %d fds before, %d after", fds_before,
		   count_fds());
	return 0;
}
