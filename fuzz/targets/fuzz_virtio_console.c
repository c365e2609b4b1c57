/* libFuzzer target: virtio-console (reference-vmm/src/virtio/console.c) behind
 * the real virtio-mmio transport, stdio backend on pipes (input and output pipes
 * owned by the harness; no event loop: the harness calls virtio_console_poll).
 * Small rx/tx buffers and a 4 KiB output pipe reach back-pressure, drops, EOF
 * and EPIPE quickly. Deterministic: pipes are synchronous, nothing sleeps.
 *
 * Oracles, while no raw op has touched the queues: host input reaches the
 * guest's receive buffers in order and without loss (the delivered stream is a
 * prefix of what the host wrote), the output pipe carries a subsequence of the
 * guest's transmitted bytes and emergency writes (drops allowed, never
 * reordering or corruption); rx_bytes matches what the guest received, and
 * after a full drain tx_bytes matches what came out of the pipe.
 *
 * Input format (little-endian, zero-padded):
 *   byte 0  mode  bits 0-1: 0..2 TEMPLATE (device up first; k = bits 2-4 raw
 *                 ops), 3 RAW (from reset)
 *   byte 1  backend: bits 0-1 input (0,1 pipe, 2 none, 3 regular file),
 *           bits 2-3 output (0,1 pipe, 2 none, 3 regular file; with input 2 and
 *           output 2: the unix-socket backend, one client at a time, in a
 *           private directory), bit 4 size (cols/rows 80x25), bits 5-7 buffer
 *           sizes index
 *   u64     features the driver accepts
 *   byte    ring sizes index
 *   byte    creation: bits 0-2 4..7 = an invalid configuration (buffer too big,
 *           unknown backend, socket path too long, path taken): must fail; bit 3
 *           the stdio output is a socket (socketpair, send(2) mode) not a pipe
 *   ops     opcode byte + args: TEMPLATE % 10, RAW % 16 (see the op functions)
 */
#include "harness_env.h"
#include "fuzz_input.h"
#include "vq_mutate.h"

#include "virtio/console.h"
#include "virtio/mmio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RXQ 0
#define TXQ 1
#define QGPA(i) (0x40000000ull + (uint64_t)(i) * 0x01000000ull)
#define QRAM (128 * 1024)
#define MAX_OPS 300
#define STREAM_MAX (256 * 1024)

struct chain {
	bool live;
	unsigned int n;
	struct vqb_buf bufs[8];
};

struct h {
	struct virtio_console *con;
	struct virtio_transport *t;
	struct fuzz_irq irq;
	struct guest_mem mem;
	struct vqb b[2];
	struct vqm m[2];
	uint16_t qsize[2];
	uint64_t features;
	int in_w, in_r, out_r, out_w, in_file, out_file; /* harness-side fds, -1 if none */
	bool in_pipe, out_pipe;
	bool unix_be;       /* unix backend: in_w == out_r == the client socket */
	bool client_gone;   /* a client left with output unread: tx_bytes unknown */
	char sock[96];
	bool tainted;
	bool rx_check, tx_check;
	/* host → guest */
	uint8_t *host_in;  /* bytes the host wrote (STREAM_MAX) */
	size_t host_in_len, delivered;
	/* guest → host */
	uint8_t *guest_out; /* processed guest bytes, in order (STREAM_MAX) */
	size_t guest_out_len, matched; /* greedy subsequence position */
	size_t pipe_read;               /* bytes read from the output pipe */
	struct chain *ch[2];            /* by head, per queue */
	uint64_t rx_alloc;
	unsigned int budget;
};

static void mmio_w(struct h *h, uint64_t off, uint32_t v)
{
	vqb_mmio_write(h->t, off, v);
}

static bool driver_init(struct h *h)
{
	guest_mem_init(&h->mem);
	for (int q = 0; q < 2; q++) {
		vqb_destroy(&h->b[q]);
		if (vqb_init(&h->b[q], QGPA(q), QRAM, h->qsize[q]) ||
		    guest_mem_add(&h->mem, h->b[q].ram_gpa, h->b[q].ram_size, h->b[q].ram))
			return false;
		vqm_init(&h->m[q], &h->b[q]);
		memset(h->ch[q], 0, sizeof(struct chain) * 256);
	}
	h->rx_alloc = 0;
	h->tainted = false;
	return true;
}

static void bring_up(struct h *h)
{
	vqb_mmio_negotiate(h->t, h->features);
	vqb_mmio_setup_queue(h->t, RXQ, &h->b[RXQ]);
	vqb_mmio_setup_queue(h->t, TXQ, &h->b[TXQ]);
	vqb_mmio_driver_ok(h->t);
}

/* ---- streams ---- */

static void expect_out(struct h *h, const uint8_t *p, size_t n)
{
	if (h->guest_out_len + n > STREAM_MAX) {
		h->tx_check = false;
		return;
	}
	memcpy(h->guest_out + h->guest_out_len, p, n);
	h->guest_out_len += n;
}

static void drain_out(struct h *h, size_t max)
{
	uint8_t buf[4096];
	while (h->out_r >= 0 && max) {
		ssize_t n = read(h->out_r, buf, sizeof(buf) < max ? sizeof(buf) : max);
		if (n <= 0)
			break;
		max -= (size_t)n;
		h->pipe_read += (size_t)n;
		for (ssize_t i = 0; i < n && h->tx_check; i++) {
			while (h->matched < h->guest_out_len && h->guest_out[h->matched] != buf[i])
				h->matched++; /* dropped bytes */
			FUZZ_CHECK(h->matched < h->guest_out_len,
				   "output byte %#x (#%zu) was never sent by the guest", buf[i],
				   h->pipe_read - (size_t)n + (size_t)i);
			h->matched++;
		}
	}
}

static void host_write(struct h *h, const uint8_t *p, size_t n)
{
	if (h->in_w < 0 || !n)
		return;
	if (h->host_in_len + n > STREAM_MAX)
		n = STREAM_MAX - h->host_in_len;
	ssize_t w = write(h->in_w, p, n);
	if (w > 0) {
		memcpy(h->host_in + h->host_in_len, p, (size_t)w);
		h->host_in_len += (size_t)w;
	}
}

/* bytes of a chain's writable (or readable) stream */
static size_t chain_bytes(struct h *h, const struct chain *c, bool writable, uint8_t *dst,
			  size_t len)
{
	size_t done = 0;
	for (unsigned int i = 0; i < c->n && done < len; i++) {
		const struct vqb_buf *b = &c->bufs[i];
		if (b->writable != writable || !b->len)
			continue;
		size_t k = b->len < len - done ? b->len : len - done;
		if (guest_mem_read(&h->mem, b->gpa, dst + done, k))
			break;
		done += k;
	}
	return done;
}

static void reap(struct h *h, int q)
{
	uint32_t id, len;
	struct vqb *b = &h->b[q];
	for (uint32_t i = 0; i <= b->size; i++) {
		if (vqb_get_used(b, &id, &len) != 1)
			break;
		struct chain *c = id < 256 ? &h->ch[q][id] : NULL;
		if (h->tainted || !c || !c->live) {
			FUZZ_CHECK(h->tainted, "queue %d: used id %u unknown", q, id);
			h->rx_check = h->tx_check = false;
			continue;
		}
		c->live = false;
		FUZZ_TRACE("reap q%d id %u len %u (%u bufs)\n", q, id, len, c->n);
		static uint8_t tmp[64 * 1024];
		if (q == RXQ) {
			uint32_t wl = 0;
			for (unsigned int k = 0; k < c->n; k++)
				wl += c->bufs[k].writable ? c->bufs[k].len : 0;
			FUZZ_CHECK(len <= wl, "rx used length %u > buffer %u", len, wl);
			if (!h->rx_check)
				continue;
			size_t got = chain_bytes(h, c, true, tmp, len);
			FUZZ_CHECK(got == len, "rx chain bytes");
			FUZZ_CHECK(h->delivered + len <= h->host_in_len &&
					   memcmp(tmp, h->host_in + h->delivered, len) == 0,
				   "guest received bytes the host did not send, or out of order "
				   "(at %zu, %u bytes)", h->delivered, len);
			h->delivered += len;
		} else {
			FUZZ_CHECK(len == 0, "tx used length %u", len);
			uint32_t rl = 0;
			for (unsigned int k = 0; k < c->n; k++)
				rl += c->bufs[k].writable ? 0 : c->bufs[k].len;
			if (rl > sizeof(tmp))
				rl = sizeof(tmp);
			size_t got = chain_bytes(h, c, false, tmp, rl);
			expect_out(h, tmp, got);
		}
	}
}

static void reap_all(struct h *h)
{
	reap(h, TXQ); /* processed output first: emergency writes come after */
	reap(h, RXQ);
}

/* ---- driver ops ---- */

static void notify(struct h *h, struct fin *f, uint16_t q)
{
	if (fin_u8(f) & 1)
		virtio_mmio_queue_notify(h->t, q);
	else
		mmio_w(h, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static void send_tx(struct h *h, struct fin *f)
{
	uint16_t head;
	struct vqm_chain c;
	if (vqm_build_chain(&h->m[TXQ], f, 48, 2048, &head, &c) == 0) {
		/* the device only reads the readable part of a transmit chain */
		h->ch[TXQ][head] = (struct chain){ true, c.n, { { 0 } } };
		memcpy(h->ch[TXQ][head].bufs, c.bufs, sizeof(c.bufs));
		vqb_publish(&h->b[TXQ], head);
	}
	notify(h, f, TXQ);
}

/* Receive buffers never overlap while posted (the device fills several before
 * the driver looks): a ring allocator over the data window. */
static uint64_t rx_take(struct h *h, uint32_t len)
{
	struct vqm *m = &h->m[RXQ];
	if (h->rx_alloc + len > m->data_size) {
		h->rx_alloc = 0;
		for (unsigned int i = 0; i < 256; i++)
			if (h->ch[RXQ][i].live)
				h->rx_check = false; /* could overlap: stop comparing */
	}
	uint64_t gpa = m->data_gpa + h->rx_alloc;
	h->rx_alloc += len;
	return gpa;
}

static void post_rx(struct h *h, struct fin *f)
{
	unsigned int n = 1 + fin_u8(f) % 4;
	for (unsigned int i = 0; i < n; i++) {
		struct vqb_buf bufs[3];
		unsigned int nb = 1 + fin_u8(f) % 3;
		for (unsigned int k = 0; k < nb; k++) {
			uint32_t len = 1 + fin_u8(f) % 64;
			bufs[k] = (struct vqb_buf){ rx_take(h, len), len, true };
		}
		uint16_t head;
		if (vqm_add(&h->m[RXQ], bufs, nb, fin_u8(f) & 1, &head) == 0) {
			h->ch[RXQ][head] = (struct chain){ true, nb, { { 0 } } };
			memcpy(h->ch[RXQ][head].bufs, bufs, nb * sizeof(bufs[0]));
			vqb_publish(&h->b[RXQ], head);
		}
	}
	notify(h, f, RXQ);
}

static void emergency(struct h *h, struct fin *f)
{
	uint8_t ch = fin_u8(f);
	uint8_t d[4] = { ch, 0, 0, 0 };
	virtio_mmio_bus_ops.write(h->t, VIRTIO_MMIO_CONFIG + 8, d, (fin_u8(f) & 1) ? 4 : 1);
	expect_out(h, &ch, 1);
}

static void host_input(struct h *h, struct fin *f)
{
	uint8_t buf[256];
	size_t got;
	uint8_t s = fin_u8(f);
	if (s & 0x80) { /* a burst: more than the buffers hold */
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)(i * 31 + h->host_in_len);
		for (int k = 0; k < 1 + (s & 7); k++)
			host_write(h, buf, sizeof(buf));
	} else {
		const uint8_t *p = fin_take(f, 1 + (s & 63), &got);
		host_write(h, p, got);
	}
	virtio_console_poll(h->con);
}

/* unix backend: a client connects (the console accepts it on its next poll) */
static void client_connect(struct h *h)
{
	if (!h->unix_be || h->in_w >= 0)
		return;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->sock);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return;
	}
	h->in_w = h->out_r = fd;
	virtio_console_poll(h->con);
}

static void client_close(struct h *h, bool drain_first)
{
	if (!h->unix_be || h->in_w < 0)
		return;
	virtio_console_poll(h->con);
	if (drain_first)
		drain_out(h, SIZE_MAX);
	uint8_t b;
	if (recv(h->in_w, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
		h->client_gone = true; /* output the console counted as sent is lost */
	close(h->in_w);
	h->in_w = h->out_r = -1;
	virtio_console_poll(h->con); /* reads to EOF, forgets the client */
}

static void restart(struct h *h)
{
	reap_all(h);
	mmio_w(h, VIRTIO_MMIO_STATUS, 0);
	/* the queues are reset: chains not yet used are gone */
	FUZZ_CHECK(driver_init(h), "driver re-init");
	bring_up(h);
}

static void check_stats(struct h *h, bool drained)
{
	struct virtio_console_stats st;
	virtio_console_get_stats(h->con, &st);
	FUZZ_TRACE("stats rx %llu tx %llu drop %llu; delivered %zu host_in %zu\n",
		   (unsigned long long)st.rx_bytes, (unsigned long long)st.tx_bytes,
		   (unsigned long long)st.dropped_bytes, h->delivered, h->host_in_len);
	if (h->rx_check)
		FUZZ_CHECK(st.rx_bytes == h->delivered, "rx_bytes %llu, guest got %zu",
			   (unsigned long long)st.rx_bytes, h->delivered);
	if (drained && (h->out_pipe || (h->unix_be && !h->client_gone)))
		FUZZ_CHECK(st.tx_bytes == h->pipe_read, "tx_bytes %llu, pipe gave %zu",
			   (unsigned long long)st.tx_bytes, h->pipe_read);
}

static void raw_op(struct h *h, struct fin *f)
{
	uint8_t op = fin_u8(f) % 16;
	FUZZ_TRACE("R op %u\n", op);
	switch (op) {
	case 0:
		send_tx(h, f);
		break;
	case 1:
		post_rx(h, f);
		break;
	case 2:
		host_input(h, f);
		break;
	case 3:
		drain_out(h, 1 + fin_u16(f));
		break;
	case 4: case 5: {
		int q = fin_u8(f) & 1;
		h->tainted = true;
		h->rx_check = h->tx_check = false;
		vqm_mutate(&h->m[q], f);
		break;
	}
	case 6:
		emergency(h, f);
		break;
	case 7: { /* config space reads of any width */
		uint8_t d[8];
		uint8_t s = fin_u8(f);
		virtio_mmio_bus_ops.read(h->t, VIRTIO_MMIO_CONFIG + (s & 15), d, 1u << (s >> 6));
		break;
	}
	case 8:
		if (h->unix_be) {
			client_close(h, fin_u8(f) & 1);
		} else if (h->in_w >= 0) { /* host input ends */
			close(h->in_w);
			h->in_w = -1;
		}
		virtio_console_poll(h->con);
		break;
	case 9:
		if (h->unix_be) {
			client_connect(h);
		} else if (h->out_r >= 0) { /* the output's reader goes away: EPIPE */
			close(h->out_r);
			h->out_r = -1;
			h->tx_check = false;
		}
		virtio_console_poll(h->con);
		break;
	case 10:
		virtio_console_poll(h->con);
		break;
	case 11: {
		static const uint16_t regs[] = { VIRTIO_MMIO_STATUS, VIRTIO_MMIO_QUEUE_READY,
						 VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MMIO_QUEUE_NUM,
						 VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_QUEUE_NOTIFY };
		h->tainted = true;
		h->rx_check = h->tx_check = false;
		uint8_t s = fin_u8(f);
		mmio_w(h, regs[s % 6], (s & 0x80) ? fin_u32(f) : fin_u8(f) % 4);
		break;
	}
	case 12:
		reap_all(h);
		break;
	case 13: /* resets the device under the driver's feet: rings reused as they are */
		h->tainted = true;
		h->rx_check = h->tx_check = false;
		vqb_mmio_negotiate(h->t, fin_u64(f));
		vqb_mmio_setup_queue(h->t, RXQ, &h->b[RXQ]);
		vqb_mmio_setup_queue(h->t, TXQ, &h->b[TXQ]);
		break;
	case 14:
		vqb_mmio_driver_ok(h->t);
		break;
	default:
		restart(h);
		break;
	}
	reap(h, TXQ);
}

static void template_op(struct h *h, struct fin *f)
{
	uint8_t op = fin_u8(f) % 10;
	FUZZ_TRACE("T op %u\n", op);
	switch (op) {
	case 0: case 1:
		send_tx(h, f);
		break;
	case 2: case 3:
		post_rx(h, f);
		break;
	case 4:
		host_input(h, f);
		break;
	case 5:
		drain_out(h, 1 + fin_u16(f));
		break;
	case 6:
		emergency(h, f);
		break;
	case 7: { /* interrupt handler */
		uint32_t st = vqb_mmio_read(h->t, VIRTIO_MMIO_INTERRUPT_STATUS);
		mmio_w(h, VIRTIO_MMIO_INTERRUPT_ACK, st);
		reap_all(h);
		if (vqb_mmio_read(h->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
			restart(h);
		break;
	}
	case 8:
		if (h->budget) {
			h->budget--;
			raw_op(h, f);
		} else if (h->unix_be) {
			if (h->in_w < 0)
				client_connect(h);
			else
				client_close(h, fin_u8(f) & 1);
		} else {
			virtio_console_poll(h->con);
		}
		break;
	default:
		restart(h);
		break;
	}
	reap_all(h);
	check_stats(h, false);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t bufsz[8][2] = { { 16, 16 },   { 64, 32 },   { 256, 256 },
					      { 4096, 64 }, { 32, 4096 }, { 0, 0 },
					      { 1, 1 },     { 128, 1024 } };
	static const uint16_t qs[8][2] = { { 16, 16 }, { 4, 8 },   { 64, 64 }, { 1, 2 },
					   { 256, 256 }, { 16, 4 }, { 8, 1 },  { 32, 32 } };
	static bool sigpipe_ignored;
	struct fin f;
	struct h h;
	char err[256];

	if (!sigpipe_ignored) { /* the VMM's main does the same */
		signal(SIGPIPE, SIG_IGN);
		sigpipe_ignored = true;
	}
	memset(&h, 0, sizeof(h));
	h.in_w = h.in_r = h.out_r = h.out_w = h.in_file = h.out_file = -1;
	fin_init(&f, data, size);
	uint8_t mode = fin_u8(&f);
	bool raw = (mode & 3) == 3;
	h.budget = (mode >> 2) & 7;
	uint8_t be = fin_u8(&f);
	h.features = fin_u64(&f);
	if (!raw)
		h.features |= 1ull << VIRTIO_F_VERSION_1;
	uint8_t qi = fin_u8(&f) & 7;
	uint8_t create = fin_u8(&f);
	h.qsize[RXQ] = qs[qi][0];
	h.qsize[TXQ] = qs[qi][1];
	h.rx_check = h.tx_check = true;

	static uint8_t host_in[STREAM_MAX], guest_out[STREAM_MAX];
	static struct chain chains[2][256];
	h.host_in = host_in;
	h.guest_out = guest_out;
	h.ch[0] = chains[0];
	h.ch[1] = chains[1];

	struct virtio_console_config cfg = { .backend = VIRTIO_CONSOLE_BACKEND_STDIO,
					     .in_fd = -1, .out_fd = -1 };
	int p[2];
	switch (be & 3) {
	case 0: case 1:
		if (pipe2(p, O_CLOEXEC) < 0)
			goto out;
		h.in_r = p[0];
		h.in_w = p[1];
		set_nonblock(h.in_w);
		cfg.in_fd = h.in_r;
		h.in_pipe = true;
		break;
	case 3:
		h.in_file = memfd_create("fuzz-con-in", MFD_CLOEXEC);
		cfg.in_fd = h.in_file;
		break;
	}
	switch ((be >> 2) & 3) {
	case 0: case 1:
		if (create & 8) { /* a socket as stdout: send(2) mode */
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
				goto out;
			int sz = 4096;
			setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		} else if (pipe2(p, O_CLOEXEC) < 0) {
			goto out;
		} else {
			fcntl(p[1], F_SETPIPE_SZ, 4096);
		}
		h.out_r = p[0];
		h.out_w = p[1];
		set_nonblock(h.out_r);
		cfg.out_fd = h.out_w;
		h.out_pipe = true;
		break;
	case 3:
		h.out_file = memfd_create("fuzz-con-out", MFD_CLOEXEC);
		cfg.out_fd = h.out_file;
		h.tx_check = false;
		break;
	}
	if ((be & 15) == 10) { /* unix backend */
		cfg.backend = VIRTIO_CONSOLE_BACKEND_UNIX;
		snprintf(h.sock, sizeof(h.sock), "%s/c", fuzz_private_dir());
		cfg.path = h.sock;
		h.unix_be = true;
		h.tx_check = true;
	} else if (!h.out_pipe) {
		h.tx_check = false;
	}
	if (be & 0x10) {
		cfg.cols = 80;
		cfg.rows = 25;
	}
	cfg.rx_buf_size = bufsz[be >> 5][0];
	cfg.tx_buf_size = bufsz[be >> 5][1];

	/* creation errors (create & 7): 4 buffer too big, 5 unknown backend, 6 socket
	 * path too long, 7 socket path taken by a directory */
	char longpath[200];
	switch (create & 7) {
	case 4:
		cfg.tx_buf_size = VIRTIO_CONSOLE_BUF_MAX + 1;
		break;
	case 5:
		cfg.backend = (enum virtio_console_backend)7;
		break;
	case 6:
		memset(longpath, 'p', sizeof(longpath) - 1);
		longpath[sizeof(longpath) - 1] = 0;
		cfg.backend = VIRTIO_CONSOLE_BACKEND_UNIX;
		cfg.path = longpath;
		break;
	case 7:
		cfg.backend = VIRTIO_CONSOLE_BACKEND_UNIX;
		cfg.path = fuzz_private_dir();
		break;
	}
	int r = virtio_console_new(&h.con, &cfg, NULL, fuzz_log(), err, sizeof(err));
	FUZZ_CHECK((r == 0) == ((create & 7) < 4), "virtio_console_new: %d %s", r, err);
	if (r) {
		FUZZ_CHECK(err[0], "creation failed without a message");
		goto out;
	}
	if (!driver_init(&h))
		goto out;
	h.t = virtio_mmio_new(&virtio_console_ops, h.con, &h.mem, fuzz_irq_line(&h.irq, 6),
			      fuzz_log());
	FUZZ_CHECK(h.t, "virtio_mmio_new");
	if (!raw)
		bring_up(&h);
	for (int i = 0; i < MAX_OPS && !fin_done(&f); i++) {
		if (raw)
			raw_op(&h, &f);
		else
			template_op(&h, &f);
	}
	/* the end: everything that reached the backend comes out of the pipe */
	virtio_console_poll(h.con);
	reap_all(&h);
	drain_out(&h, SIZE_MAX);
	check_stats(&h, h.out_r >= 0 || h.unix_be);
out:
	virtio_mmio_free(h.t);
	virtio_console_free(h.con);
	for (int q = 0; q < 2; q++)
		vqb_destroy(&h.b[q]);
	if (h.unix_be)
		h.out_r = -1; /* the same socket as in_w */
	int fds[] = { h.in_w, h.in_r, h.out_r, h.out_w, h.in_file, h.out_file };
	for (unsigned int i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return 0;
}
