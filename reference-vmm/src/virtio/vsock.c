/* virtio-vsock guest side: the device ops, validation and dispatch of every
 * packet the driver sends (tx queue), and the scheduler that fills the driver's
 * rx buffers with control packets and credit-limited data. */
#include "virtio/vsock.h"

#include "core/log.h"
#include "virtio/vsock_int.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

uint64_t vs_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void vs_malformed(struct virtio_vsock *vs, const char *why)
{
	vs->st.malformed++;
	if (!vs->warned_malformed) {
		vs->warned_malformed = true;
		log_warn(vs->log, "virtio-vsock: guest packet rejected: %s (further ones counted)",
			 why);
	} else {
		log_dbg(vs->log, "virtio-vsock: guest packet rejected: %s", why);
	}
}

/* May the queues be used? (The transport may report DRIVER_OK only after
 * activate returns.) */
static bool vs_live(struct virtio_vsock *vs)
{
	return vs->t && vs->activated && (vs->activating || virtio_transport_active(vs->t));
}

/* ---- rx work list --------------------------------------------------------------------- */

void vs_rxq_add(struct virtio_vsock *vs, struct vs_conn *c)
{
	if (c->on_rxq || c->dead)
		return;
	c->on_rxq = true;
	c->rxq_next = NULL;
	c->rxq_prev = vs->rxq_tail;
	if (vs->rxq_tail)
		vs->rxq_tail->rxq_next = c;
	else
		vs->rxq_head = c;
	vs->rxq_tail = c;
}

void vs_rxq_del(struct virtio_vsock *vs, struct vs_conn *c)
{
	if (!c->on_rxq)
		return;
	if (c->rxq_prev)
		c->rxq_prev->rxq_next = c->rxq_next;
	else
		vs->rxq_head = c->rxq_next;
	if (c->rxq_next)
		c->rxq_next->rxq_prev = c->rxq_prev;
	else
		vs->rxq_tail = c->rxq_prev;
	c->rxq_prev = c->rxq_next = NULL;
	c->on_rxq = false;
}

/* An RST for a packet that matches no connection. Bounded: when the ring is
 * full the reply is dropped (it answers garbage). */
void vs_queue_rst(struct virtio_vsock *vs, uint32_t host_port, uint32_t guest_port)
{
	if (vs->rst_len == VS_RST_RING)
		return;
	vs->rst[(vs->rst_head + vs->rst_len) % VS_RST_RING] = (struct vs_rst){ host_port,
									   guest_port };
	vs->rst_len++;
}

/* ---- device → driver ------------------------------------------------------------------ */

enum pkt_kind { PK_NONE = 0, PK_RST, PK_REQUEST, PK_RESPONSE, PK_RW, PK_SHUTDOWN, PK_CREDIT };

/* The next packet c owes the guest. May change c (EOF found, socket error →
 * RST pending); never needs an rx buffer to decide. */
static enum pkt_kind conn_next(struct virtio_vsock *vs, struct vs_conn *c)
{
	for (int guard = 0; guard < 4; guard++) {
		if (c->pend & VS_P_RST)
			return PK_RST;
		if (c->state == VS_CLOSING)
			return PK_NONE;
		if (c->pend & VS_P_REQUEST)
			return PK_REQUEST;
		if (c->state == VS_CONNECTING)
			return PK_NONE;
		if (c->pend & VS_P_RESPONSE)
			return PK_RESPONSE;
		if (c->data_ready) {
			if (c->guest_shut_rcv) {
				c->data_ready = false; /* nothing more goes to the guest */
				if (c->host_hup) {
					vs_conn_reset(vs, c, true);
					continue;
				}
			} else if (vs_conn_credit(c) > 0) {
				int r = vs_conn_peek(c);
				if (r > 0)
					return PK_RW;
				c->data_ready = false;
				if (r == 0) {
					vs_conn_host_eof(vs, c);
					continue;
				}
				if (r != -EAGAIN) {
					vs_conn_reset(vs, c, true);
					continue;
				}
				vs_conn_update_interest(vs, c);
			}
			/* else: no credit; EPOLLIN stays off until the guest grants some */
		}
		if (c->pend & VS_P_SHUTDOWN)
			return PK_SHUTDOWN;
		if (c->pend & VS_P_CREDIT)
			return PK_CREDIT;
		return PK_NONE;
	}
	return PK_NONE;
}

static void fill_hdr(struct virtio_vsock *vs, struct virtio_vsock_hdr *h, uint32_t src_port,
		     uint32_t dst_port, uint16_t op, uint32_t flags, uint32_t len, uint32_t fwd_cnt)
{
	h->src_cid = htole64(VSOCK_CID_HOST);
	h->dst_cid = htole64(vs->guest_cid);
	h->src_port = htole32(src_port);
	h->dst_port = htole32(dst_port);
	h->len = htole32(len);
	h->type = htole16(VSOCK_TYPE_STREAM);
	h->op = htole16(op);
	h->flags = htole32(flags);
	h->buf_alloc = htole32(vs->buf_alloc);
	h->fwd_cnt = htole32(fwd_cnt);
}

/* Build the packet of kind k for c into chain ch; returns bytes written. */
static uint32_t conn_emit(struct virtio_vsock *vs, struct vs_conn *c, enum pkt_kind k,
			  const struct virtq_chain *ch)
{
	struct virtio_vsock_hdr h;
	uint16_t op = VSOCK_OP_CREDIT_UPDATE;
	uint32_t flags = 0, n = 0;
	switch (k) {
	case PK_RST:
		op = VSOCK_OP_RST;
		break;
	case PK_REQUEST:
		op = VSOCK_OP_REQUEST;
		c->pend &= (uint8_t)~VS_P_REQUEST;
		break;
	case PK_RESPONSE:
		op = VSOCK_OP_RESPONSE;
		c->pend &= (uint8_t)~VS_P_RESPONSE;
		break;
	case PK_SHUTDOWN:
		op = VSOCK_OP_SHUTDOWN;
		flags = c->shut_flags;
		c->pend &= (uint8_t)~VS_P_SHUTDOWN;
		break;
	case PK_RW: {
		uint32_t room = ch->writable_len - (uint32_t)sizeof(h);
		uint32_t want = vs_conn_credit(c);
		if (want > room)
			want = room;
		if (want > VSOCK_MAX_PKT_PAYLOAD)
			want = VSOCK_MAX_PKT_PAYLOAD;
		ssize_t got = want ? recv(c->fd, vs->scratch, want, MSG_DONTWAIT) : 0;
		if (got > 0) {
			op = VSOCK_OP_RW;
			n = (uint32_t)got;
			virtq_chain_write(ch, sizeof(h), vs->scratch, n);
			c->tx_cnt += n;
			vs->st.rx_bytes += n;
		} else if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->data_ready = false; /* a credit update instead; EPOLLIN re-armed */
		}
		/* else EOF/error: the next conn_next peek finds it */
		break;
	}
	case PK_CREDIT:
	default:
		break;
	}
	if (op == VSOCK_OP_CREDIT_UPDATE)
		vs->st.credit_updates++;
	fill_hdr(vs, &h, c->local_port, c->peer_port, op, flags, n, c->fwd_cnt);
	virtq_chain_write(ch, 0, &h, sizeof(h));
	c->last_fwd_sent = c->fwd_cnt;
	c->pend &= (uint8_t)~VS_P_CREDIT; /* every header carries our credit */
	return (uint32_t)sizeof(h) + n;
}

void vs_rx_process(struct virtio_vsock *vs)
{
	if (!vs_live(vs))
		return;
	struct virtq *q = virtio_transport_queue(vs->t, VIRTIO_VSOCK_QUEUE_RX);
	if (!q || !q->ready)
		return;
	bool pushed = false;
	for (;;) {
		struct vs_conn *c = NULL;
		enum pkt_kind k = PK_RST;
		if (!vs->rst_len) {
			c = vs->rxq_head;
			if (!c)
				break;
			k = conn_next(vs, c);
			if (k == PK_NONE) {
				vs_rxq_del(vs, c);
				continue;
			}
		}
		struct virtq_chain ch;
		int r = virtq_pop(q, &ch);
		if (r < 0) {
			virtio_transport_needs_reset(vs->t, virtq_strerror(r));
			break;
		}
		if (r == 0) {
			if (virtq_enable_notify(q))
				continue;
			break; /* the driver notifies when it posts buffers */
		}
		uint32_t len = 0;
		if (ch.writable_len < sizeof(struct virtio_vsock_hdr)) {
			vs_malformed(vs, "rx buffer shorter than a packet header");
		} else if (!c) {
			struct vs_rst *rs = &vs->rst[vs->rst_head];
			struct virtio_vsock_hdr h;
			fill_hdr(vs, &h, rs->host_port, rs->guest_port, VSOCK_OP_RST, 0, 0, 0);
			len = virtq_chain_write(&ch, 0, &h, sizeof(h));
			vs->rst_head = (vs->rst_head + 1) % VS_RST_RING;
			vs->rst_len--;
			vs->st.rst_sent++;
		} else {
			len = conn_emit(vs, c, k, &ch);
			if (k == PK_RST) {
				vs->st.rst_sent++;
				c->pend = 0;
				vs_conn_free(vs, c);
			} else {
				/* round robin: more work goes to the back of the list */
				vs_rxq_del(vs, c);
				if (c->pend || c->data_ready)
					vs_rxq_add(vs, c);
				vs_conn_update_interest(vs, c);
			}
		}
		if (virtq_push(q, ch.head, len) < 0) {
			virtio_transport_needs_reset(vs->t, "virtio-vsock: rx push failed");
			break;
		}
		if (len)
			vs->st.rx_pkts++;
		pushed = true;
	}
	if (pushed)
		virtio_transport_notify_used(vs->t, VIRTIO_VSOCK_QUEUE_RX);
}

/* ---- driver → device ------------------------------------------------------------------ */

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len, flags, buf_alloc, fwd_cnt;
	uint16_t type, op;
};

static void decode_hdr(const struct virtio_vsock_hdr *h, struct pkt *p)
{
	p->src_cid = le64toh(h->src_cid);
	p->dst_cid = le64toh(h->dst_cid);
	p->src_port = le32toh(h->src_port);
	p->dst_port = le32toh(h->dst_port);
	p->len = le32toh(h->len);
	p->type = le16toh(h->type);
	p->op = le16toh(h->op);
	p->flags = le32toh(h->flags);
	p->buf_alloc = le32toh(h->buf_alloc);
	p->fwd_cnt = le32toh(h->fwd_cnt);
}

static void handle_established(struct virtio_vsock *vs, struct vs_conn *c, const struct pkt *p,
			       const struct virtq_chain *ch)
{
	switch (p->op) {
	case VSOCK_OP_RW: {
		uint32_t got = virtq_chain_read(ch, sizeof(struct virtio_vsock_hdr), vs->scratch,
						p->len);
		int r = got == p->len ? vs_conn_guest_data(vs, c, vs->scratch, p->len) : -EINVAL;
		if (r == -ENOBUFS)
			vs_malformed(vs, "data beyond the credit we granted");
		else if (r == -EPIPE && c->guest_shut_send)
			vs_malformed(vs, "data after the guest's SHUTDOWN(SEND)");
		if (r) {
			vs_conn_reset(vs, c, true);
			return;
		}
		break;
	}
	case VSOCK_OP_CREDIT_UPDATE:
		break; /* credit already taken from the header */
	case VSOCK_OP_CREDIT_REQUEST:
		c->pend |= VS_P_CREDIT;
		vs_rxq_add(vs, c);
		break;
	case VSOCK_OP_SHUTDOWN:
		vs_conn_guest_shutdown(vs, c, p->flags);
		if (c->dead || c->state != VS_ESTABLISHED)
			return;
		break;
	case VSOCK_OP_RST:
		vs_conn_reset(vs, c, false);
		return;
	default: /* REQUEST/RESPONSE on a connected socket, INVALID, unknown */
		vs_malformed(vs, "unexpected op on an established connection");
		vs_conn_reset(vs, c, true);
		return;
	}
	/* the header may have granted credit */
	if (c->data_ready && vs_conn_credit(c) > 0)
		vs_rxq_add(vs, c);
	vs_conn_update_interest(vs, c);
}

static void handle_pkt(struct virtio_vsock *vs, const struct virtq_chain *ch)
{
	struct virtio_vsock_hdr h;
	struct pkt p;
	vs->st.tx_pkts++;
	if (ch->readable_len < sizeof(h) || virtq_chain_read(ch, 0, &h, sizeof(h)) != sizeof(h)) {
		vs_malformed(vs, "tx buffer shorter than a packet header");
		return;
	}
	decode_hdr(&h, &p);
	if (p.src_cid != vs->guest_cid) {
		vs_malformed(vs, "source cid is not the guest's");
		return;
	}
	if (p.dst_cid != VSOCK_CID_HOST) {
		vs_malformed(vs, "destination cid is not the host");
		return;
	}
	if (p.type != VSOCK_TYPE_STREAM) {
		vs_malformed(vs, "socket type is not stream");
		if (p.op != VSOCK_OP_RST)
			vs_queue_rst(vs, p.dst_port, p.src_port);
		return;
	}
	struct vs_conn *c = vs_conn_lookup(vs, p.dst_port, p.src_port);
	if (p.op == VSOCK_OP_RW &&
	    (p.len > VSOCK_MAX_PKT_PAYLOAD || p.len > ch->readable_len - sizeof(h))) {
		vs_malformed(vs, "payload length larger than the buffer");
		if (c)
			vs_conn_reset(vs, c, true);
		else
			vs_queue_rst(vs, p.dst_port, p.src_port);
		return;
	}
	if (!c) {
		if (p.op == VSOCK_OP_REQUEST)
			vs_guest_connect(vs, p.dst_port, p.src_port, p.buf_alloc, p.fwd_cnt);
		else if (p.op != VSOCK_OP_RST)
			vs_queue_rst(vs, p.dst_port, p.src_port);
		return;
	}
	if (c->state == VS_CLOSING) {
		if (p.op == VSOCK_OP_RST) { /* both sides agree: no RST owed */
			c->pend = 0;
			vs_conn_free(vs, c);
		}
		return;
	}
	c->peer_buf_alloc = p.buf_alloc;
	c->peer_fwd_cnt = p.fwd_cnt;
	if (c->state == VS_CONNECTING) {
		if (p.op == VSOCK_OP_RESPONSE && !(c->pend & VS_P_REQUEST)) {
			vs_conn_established(vs, c);
		} else if (p.op == VSOCK_OP_RST) {
			vs_conn_reset(vs, c, false);
		} else {
			vs_malformed(vs, "unexpected op on a connecting connection");
			vs_conn_reset(vs, c, true);
		}
		return;
	}
	handle_established(vs, c, &p, ch);
}

static void process_tx(struct virtio_vsock *vs)
{
	if (!vs_live(vs))
		return;
	struct virtq *q = virtio_transport_queue(vs->t, VIRTIO_VSOCK_QUEUE_TX);
	if (!q || !q->ready)
		return;
	bool pushed = false;
	for (;;) {
		struct virtq_chain ch;
		int r = virtq_pop(q, &ch);
		if (r < 0) {
			virtio_transport_needs_reset(vs->t, virtq_strerror(r));
			break;
		}
		if (r == 0) {
			if (virtq_enable_notify(q))
				continue;
			break;
		}
		handle_pkt(vs, &ch);
		if (virtq_push(q, ch.head, 0) < 0) {
			virtio_transport_needs_reset(vs->t, "virtio-vsock: tx push failed");
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_transport_notify_used(vs->t, VIRTIO_VSOCK_QUEUE_TX);
}

/* ---- transport callbacks -------------------------------------------------------------- */

static uint64_t vs_features(void *dev)
{
	(void)dev;
	return (1ull << VIRTIO_F_RING_INDIRECT_DESC) | (1ull << VIRTIO_F_RING_EVENT_IDX);
}

static void vs_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_vsock *vs = dev;
	uint8_t cfg[VIRTIO_VSOCK_CONFIG_SIZE];
	for (int i = 0; i < 8; i++)
		cfg[i] = (uint8_t)(vs->guest_cid >> (8 * i));
	if (off > sizeof(cfg) || len > sizeof(cfg) - off)
		return;
	memcpy(data, cfg + off, len);
}

static void vs_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	(void)dev; /* guest_cid is read-only */
	(void)off;
	(void)data;
	(void)len;
}

static int vs_activate(void *dev, uint64_t features)
{
	struct virtio_vsock *vs = dev;
	vs->features = features;
	vs->activated = vs->activating = true;
	process_tx(vs);
	vs_rx_process(vs);
	vs->activating = false;
	vs_reap(vs);
	return 0;
}

static void vs_queue_notify(void *dev, uint16_t q)
{
	struct virtio_vsock *vs = dev;
	if (q == VIRTIO_VSOCK_QUEUE_TX)
		process_tx(vs);
	if (q == VIRTIO_VSOCK_QUEUE_TX || q == VIRTIO_VSOCK_QUEUE_RX)
		vs_rx_process(vs);
	/* the event queue only holds buffers for events we never send */
	vs_reap(vs);
}

static void vs_reset(void *dev)
{
	struct virtio_vsock *vs = dev;
	vs->activated = false;
	vs->features = 0;
	vs_reset_guest_state(vs);
	vs_reap(vs);
}

static void vs_bind(void *dev, struct virtio_transport *t)
{
	struct virtio_vsock *vs = dev;
	pthread_mutex_lock(&vs->solo_lock);
	vs->t = t;
	if (!t)
		vs->activated = false;
	pthread_mutex_unlock(&vs->solo_lock);
}

const struct virtio_dev_ops virtio_vsock_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.num_queues = 3,
	.queue_max_size = VIRTIO_VSOCK_QUEUE_SIZE,
	.features = vs_features,
	.config_size = VIRTIO_VSOCK_CONFIG_SIZE,
	.config_read = vs_config_read,
	.config_write = vs_config_write,
	.activate = vs_activate,
	.queue_notify = vs_queue_notify,
	.reset = vs_reset,
	.bind = vs_bind,
};
