/* virtio-vsock host side: the connection table (hash on ports), the listening
 * unix socket and its CONNECT clients, per-connection unix sockets with
 * credit-driven epoll interest, connect timeouts, creation and teardown. */
#include "virtio/vsock.h"
#include "core/errbuf.h"

#include "core/event_loop.h"
#include "core/log.h"
#include "virtio/vsock_int.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#define conn_of(w) ((struct vs_conn *)((char *)(w) - offsetof(struct vs_conn, w)))
#define client_of(w) ((struct vs_client *)((char *)(w) - offsetof(struct vs_client, w)))

/* ---- locking -------------------------------------------------------------------------- */

/* Backend work takes solo_lock then the transport lock (if bound); transport
 * callbacks hold only the transport lock; bind swaps t under solo_lock. */
static void vs_lock(struct virtio_vsock *vs)
{
	pthread_mutex_lock(&vs->solo_lock);
	if (vs->t)
		virtio_transport_lock(vs->t);
}

static void vs_unlock(struct virtio_vsock *vs)
{
	if (vs->t)
		virtio_transport_unlock(vs->t);
	pthread_mutex_unlock(&vs->solo_lock);
}

/* ---- connection table ----------------------------------------------------------------- */

static uint32_t hash_ports(const struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
	uint64_t k = ((uint64_t)local << 32) | peer;
	k *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(k >> (64 - vs->hash_bits));
}

struct vs_conn *vs_conn_lookup(struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
	for (struct vs_conn *c = vs->buckets[hash_ports(vs, local, peer)]; c; c = c->hnext)
		if (c->local_port == local && c->peer_port == peer)
			return c;
	return NULL;
}

struct vs_conn *vs_conn_new(struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
	struct vs_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->w.tag = VS_TAG_CONN;
	c->fd = -1;
	c->state = VS_ESTABLISHED;
	c->local_port = local;
	c->peer_port = peer;
	uint32_t b = hash_ports(vs, local, peer);
	c->hnext = vs->buckets[b];
	vs->buckets[b] = c;
	c->next = vs->conns;
	if (vs->conns)
		vs->conns->prev = c;
	vs->conns = c;
	vs->nconns++;
	return c;
}

static void timer_arm(struct virtio_vsock *vs, bool on)
{
	if (on == vs->timer_armed || vs->timer_fd < 0)
		return;
	uint32_t period = vs->connect_timeout_ms / 4;
	if (period < 10)
		period = 10;
	if (period > 250)
		period = 250;
	struct itimerspec its = { 0 };
	if (on) {
		its.it_value.tv_sec = its.it_interval.tv_sec = period / 1000;
		its.it_value.tv_nsec = its.it_interval.tv_nsec = (long)(period % 1000) * 1000000L;
	}
	if (timerfd_settime(vs->timer_fd, 0, &its, NULL) == 0)
		vs->timer_armed = on;
}

void vs_conn_set_state(struct virtio_vsock *vs, struct vs_conn *c, enum vs_state s)
{
	if (c->state == VS_CONNECTING && s != VS_CONNECTING)
		vs->nconnecting--;
	if (c->state != VS_CONNECTING && s == VS_CONNECTING) {
		vs->nconnecting++;
		c->deadline_ms = vs_now_ms() + vs->connect_timeout_ms;
		timer_arm(vs, true);
	}
	c->state = s;
}

static void listen_update(struct virtio_vsock *vs);

static void conn_close_fd(struct virtio_vsock *vs, struct vs_conn *c)
{
	if (c->fd >= 0) {
		if (c->in_epoll)
			epoll_ctl(vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->in_epoll = false;
	free(c->pbuf);
	c->pbuf = NULL;
	c->plen = c->phead = 0;
	c->data_ready = false;
}

void vs_conn_free(struct virtio_vsock *vs, struct vs_conn *c)
{
	if (c->dead)
		return;
	conn_close_fd(vs, c);
	vs_conn_set_state(vs, c, VS_CLOSING);
	vs_rxq_del(vs, c);
	struct vs_conn **pp = &vs->buckets[hash_ports(vs, c->local_port, c->peer_port)];
	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	if (c->prev)
		c->prev->next = c->next;
	else
		vs->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	vs->nconns--;
	c->dead = true;
	c->zombie_next = vs->zombie_conns;
	vs->zombie_conns = c;
	listen_update(vs);
}

void vs_conn_reset(struct virtio_vsock *vs, struct vs_conn *c, bool send_rst)
{
	if (c->dead)
		return;
	conn_close_fd(vs, c);
	/* the guest never saw a REQUEST that is still queued: nothing to reset */
	if (!send_rst || (c->pend & VS_P_REQUEST)) {
		vs_conn_free(vs, c);
		return;
	}
	vs_conn_set_state(vs, c, VS_CLOSING);
	c->pend = VS_P_RST;
	vs_rxq_add(vs, c);
}

uint32_t vs_conn_credit(const struct vs_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

void vs_conn_update_interest(struct virtio_vsock *vs, struct vs_conn *c)
{
	if (c->dead || c->fd < 0 || c->host_hup)
		return;
	uint32_t want = 0;
	if (c->state == VS_ESTABLISHED) {
		if (!c->data_ready && !c->host_eof && !c->guest_shut_rcv && vs_conn_credit(c) > 0)
			want |= EPOLLIN;
		if (c->plen)
			want |= EPOLLOUT;
	}
	/* Registered even with no events: EPOLLHUP/ERR tell us the peer left. */
	struct epoll_event ev = { .events = want, .data.ptr = &c->w };
	if (!c->in_epoll) {
		if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0) {
			c->in_epoll = true;
			c->ep_events = want;
		}
	} else if (c->ep_events != want) {
		if (epoll_ctl(vs->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
			c->ep_events = want;
	}
}

int vs_conn_peek(struct vs_conn *c)
{
	uint8_t b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return 1;
	if (n == 0)
		return 0;
	return (errno == EAGAIN || errno == EWOULDBLOCK) ? -EAGAIN : -errno;
}

static bool socket_hung_up(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLOUT };
	return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLHUP | POLLERR));
}

void vs_conn_host_eof(struct virtio_vsock *vs, struct vs_conn *c)
{
	c->host_eof = true;
	c->data_ready = false;
	if (c->host_hup || socket_hung_up(c->fd)) {
		/* the peer closed its socket: everything it sent is delivered */
		vs_conn_reset(vs, c, true);
		return;
	}
	if (c->guest_shut_send && !c->plen) { /* both directions are done */
		vs_conn_reset(vs, c, true);
		return;
	}
	c->shut_flags |= VSOCK_SHUTDOWN_SEND; /* half close: the host sends no more */
	c->pend |= VS_P_SHUTDOWN;
	vs_rxq_add(vs, c);
	vs_conn_update_interest(vs, c);
}

static void maybe_credit_update(struct virtio_vsock *vs, struct vs_conn *c)
{
	if (c->fwd_cnt - c->last_fwd_sent >= vs->buf_alloc / 2 && c->state == VS_ESTABLISHED) {
		c->pend |= VS_P_CREDIT;
		vs_rxq_add(vs, c);
	}
}

/* Write held guest bytes to the socket. false: the connection was reset. */
static bool conn_flush(struct virtio_vsock *vs, struct vs_conn *c)
{
	while (c->plen) {
		uint32_t span = vs->buf_alloc - c->phead;
		if (span > c->plen)
			span = c->plen;
		ssize_t n = send(c->fd, c->pbuf + c->phead, span, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			c->phead = (c->phead + (uint32_t)n) % vs->buf_alloc;
			c->plen -= (uint32_t)n;
			c->fwd_cnt += (uint32_t)n;
			vs->st.tx_bytes += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		vs_conn_reset(vs, c, true); /* the host peer vanished */
		return false;
	}
	if (!c->plen) {
		free(c->pbuf);
		c->pbuf = NULL;
		c->phead = 0;
		if (c->guest_shut_send && !c->wr_shut) {
			shutdown(c->fd, SHUT_WR);
			c->wr_shut = true;
		}
		if (c->close_after_flush) {
			vs_conn_reset(vs, c, true);
			return false;
		}
	}
	maybe_credit_update(vs, c);
	vs_conn_update_interest(vs, c);
	return true;
}

int vs_conn_guest_data(struct virtio_vsock *vs, struct vs_conn *c, const uint8_t *data,
		       uint32_t len)
{
	if (c->guest_shut_send || c->wr_shut || c->host_hup || c->fd < 0)
		return -EPIPE;
	if (len > vs->buf_alloc - c->plen)
		return -ENOBUFS; /* the guest ignored our buf_alloc/fwd_cnt */
	if (!len)
		return 0;
	c->rx_cnt += len;
	uint32_t off = 0;
	if (!c->plen) {
		ssize_t n;
		do
			n = send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (n > 0) {
			off = (uint32_t)n;
			c->fwd_cnt += (uint32_t)n;
			vs->st.tx_bytes += (uint64_t)n;
		}
	}
	if (off < len) {
		if (!c->pbuf) {
			c->pbuf = malloc(vs->buf_alloc);
			if (!c->pbuf)
				return -ENOMEM;
			c->phead = 0;
		}
		uint32_t rest = len - off;
		uint32_t tail = (c->phead + c->plen) % vs->buf_alloc;
		uint32_t first = vs->buf_alloc - tail < rest ? vs->buf_alloc - tail : rest;
		memcpy(c->pbuf + tail, data + off, first);
		memcpy(c->pbuf, data + off + first, rest - first);
		c->plen += rest;
	}
	maybe_credit_update(vs, c);
	vs_conn_update_interest(vs, c);
	return 0;
}

void vs_conn_guest_shutdown(struct virtio_vsock *vs, struct vs_conn *c, uint32_t flags)
{
	if ((flags & VSOCK_SHUTDOWN_RCV) && !c->guest_shut_rcv) {
		c->guest_shut_rcv = true;
		shutdown(c->fd, SHUT_RD);
	}
	if ((flags & VSOCK_SHUTDOWN_SEND) && !c->guest_shut_send) {
		c->guest_shut_send = true;
		if (!c->plen && !c->wr_shut) {
			shutdown(c->fd, SHUT_WR);
			c->wr_shut = true;
		}
	}
	if ((c->guest_shut_rcv && c->guest_shut_send) || (c->guest_shut_send && c->host_eof)) {
		/* nothing more either way: flush what we hold, then RST (the guest's
		 * close() waits for it) */
		if (!c->plen) {
			vs_conn_reset(vs, c, true);
			return;
		}
		c->close_after_flush = true;
	}
	vs_conn_update_interest(vs, c);
}

void vs_conn_established(struct virtio_vsock *vs, struct vs_conn *c)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "OK %u\n", c->local_port);
	/* the client has read nothing from us yet: its buffer takes 16 bytes */
	ssize_t w = send(c->fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w != n) {
		vs_conn_reset(vs, c, true);
		return;
	}
	vs_conn_set_state(vs, c, VS_ESTABLISHED);
	log_dbg(vs->log, "virtio-vsock: host port %u ↔ guest port %u established", c->local_port,
		c->peer_port);
	vs_conn_update_interest(vs, c);
}

static int connect_host(struct virtio_vsock *vs, uint32_t port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", vs->uds_path, port);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* AF_UNIX connect completes at once or fails (EAGAIN: backlog full) */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

void vs_guest_connect(struct virtio_vsock *vs, uint32_t host_port, uint32_t guest_port,
		      uint32_t buf_alloc, uint32_t fwd_cnt)
{
	if (vs->nconns + vs->nclients >= vs->max_conns) {
		log_dbg(vs->log, "virtio-vsock: connection limit reached, refusing port %u",
			host_port);
		vs_queue_rst(vs, host_port, guest_port);
		return;
	}
	int fd = connect_host(vs, host_port);
	if (fd < 0) {
		log_dbg(vs->log, "virtio-vsock: guest connect to %s_%u: %s", vs->uds_path,
			host_port, strerror(-fd));
		vs_queue_rst(vs, host_port, guest_port);
		return;
	}
	struct vs_conn *c = vs_conn_new(vs, host_port, guest_port);
	if (!c) {
		close(fd);
		vs_queue_rst(vs, host_port, guest_port);
		return;
	}
	c->fd = fd;
	c->peer_buf_alloc = buf_alloc;
	c->peer_fwd_cnt = fwd_cnt;
	c->pend = VS_P_RESPONSE;
	vs_rxq_add(vs, c);
	vs_conn_update_interest(vs, c);
}

/* ---- host clients and the listener ---------------------------------------------------- */

static void client_free(struct virtio_vsock *vs, struct vs_client *cl, bool close_fd)
{
	if (cl->dead)
		return;
	if (close_fd) {
		epoll_ctl(vs->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
		close(cl->fd);
	}
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		vs->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	vs->nclients--;
	cl->dead = true;
	cl->zombie_next = vs->zombie_clients;
	vs->zombie_clients = cl;
	listen_update(vs);
}

/* "CONNECT <port>" (the newline already stripped; a trailing CR tolerated). */
static bool parse_connect(const char *s, uint32_t *port)
{
	if (strncmp(s, "CONNECT ", 8) != 0)
		return false;
	s += 8;
	uint64_t v = 0;
	int digits = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (++digits > 10 || v > UINT32_MAX)
			return false;
	}
	if (*s == '\r')
		s++;
	if (!digits || *s)
		return false;
	*port = (uint32_t)v;
	return true;
}

static uint32_t alloc_host_port(struct virtio_vsock *vs, uint32_t guest_port)
{
	for (uint32_t i = 0; i <= vs->max_conns; i++) {
		uint32_t p = vs->next_port++;
		if (vs->next_port < VSOCK_HOST_PORT_BASE || vs->next_port == UINT32_MAX)
			vs->next_port = VSOCK_HOST_PORT_BASE;
		if (!vs_conn_lookup(vs, p, guest_port))
			return p;
	}
	return 0;
}

static void client_line(struct virtio_vsock *vs, struct vs_client *cl)
{
	uint32_t port;
	cl->line[cl->len] = '\0';
	if (!parse_connect(cl->line, &port)) {
		log_dbg(vs->log, "virtio-vsock: malformed CONNECT line from a host client");
		client_free(vs, cl, true);
		return;
	}
	uint32_t local = alloc_host_port(vs, port);
	struct vs_conn *c = local ? vs_conn_new(vs, local, port) : NULL;
	if (!c) {
		client_free(vs, cl, true);
		return;
	}
	/* the socket now belongs to the connection: same fd, new epoll owner */
	c->fd = cl->fd;
	struct epoll_event ev = { .events = 0, .data.ptr = &c->w };
	if (epoll_ctl(vs->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
		c->in_epoll = true;
		c->ep_events = 0;
	} else {
		epoll_ctl(vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	}
	client_free(vs, cl, false);
	vs_conn_set_state(vs, c, VS_CONNECTING);
	c->pend = VS_P_REQUEST;
	vs_rxq_add(vs, c);
	log_dbg(vs->log, "virtio-vsock: host client → guest port %u (host port %u)", port, local);
}

static void client_event(struct virtio_vsock *vs, struct vs_client *cl)
{
	/* byte by byte: whatever follows the newline is payload for the guest */
	for (;;) {
		char ch;
		ssize_t n = recv(cl->fd, &ch, 1, MSG_DONTWAIT);
		if (n == 1) {
			if (ch == '\n') {
				client_line(vs, cl);
				return;
			}
			if (cl->len >= VS_LINE_MAX - 1) {
				log_dbg(vs->log, "virtio-vsock: oversized CONNECT line");
				client_free(vs, cl, true);
				return;
			}
			cl->line[cl->len++] = ch;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		client_free(vs, cl, true); /* EOF or error before the line ended */
		return;
	}
}

/* Watch the listener only while below the connection limit. */
static void listen_update(struct virtio_vsock *vs)
{
	bool want = vs->listen_fd >= 0 && vs->nconns + vs->nclients < vs->max_conns;
	if (want == vs->listen_in_epoll)
		return;
	if (want) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &vs->listen_w };
		if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, vs->listen_fd, &ev) == 0)
			vs->listen_in_epoll = true;
	} else {
		epoll_ctl(vs->epfd, EPOLL_CTL_DEL, vs->listen_fd, NULL);
		vs->listen_in_epoll = false;
	}
}

static void accept_clients(struct virtio_vsock *vs)
{
	for (int i = 0; i < VS_EVENT_BATCH && vs->nconns + vs->nclients < vs->max_conns; i++) {
		int fd = accept4(vs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct vs_client *cl = calloc(1, sizeof(*cl));
		struct epoll_event ev = { .events = EPOLLIN };
		if (cl) {
			cl->w.tag = VS_TAG_CLIENT;
			cl->fd = fd;
			ev.data.ptr = &cl->w;
		}
		if (!cl || epoll_ctl(vs->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			free(cl);
			close(fd);
			continue;
		}
		cl->next = vs->clients;
		if (vs->clients)
			vs->clients->prev = cl;
		vs->clients = cl;
		vs->nclients++;
	}
	listen_update(vs);
}

/* ---- connection events ---------------------------------------------------------------- */

static void conn_event(struct virtio_vsock *vs, struct vs_conn *c, uint32_t e)
{
	if (c->fd < 0 || c->state == VS_CLOSING)
		return;
	if (e & EPOLLERR) {
		vs_conn_reset(vs, c, true);
		return;
	}
	if (c->state == VS_CONNECTING) {
		if (e & EPOLLHUP) /* the host client gave up before the guest answered */
			vs_conn_reset(vs, c, true);
		return;
	}
	if (e & EPOLLHUP) {
		/* the peer closed: out of the epoll set (HUP cannot be masked);
		 * drain what it sent, then RST */
		epoll_ctl(vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		c->in_epoll = false;
		c->host_hup = true;
		if (c->plen) { /* guest data it will never read */
			vs_conn_reset(vs, c, true);
			return;
		}
		c->data_ready = true;
		vs_rxq_add(vs, c);
		return;
	}
	if (e & EPOLLIN) {
		c->data_ready = true;
		vs_rxq_add(vs, c);
	}
	if ((e & EPOLLOUT) && !conn_flush(vs, c))
		return;
	vs_conn_update_interest(vs, c);
}

static void timer_event(struct virtio_vsock *vs)
{
	uint64_t ticks;
	if (read(vs->timer_fd, &ticks, sizeof(ticks)) < 0) {
		/* spurious: fine */
	}
	uint64_t now = vs_now_ms();
	for (struct vs_conn *c = vs->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == VS_CONNECTING && now >= c->deadline_ms) {
			log_dbg(vs->log, "virtio-vsock: guest port %u did not answer; closing",
				c->peer_port);
			vs_conn_reset(vs, c, true);
		}
	}
	if (!vs->nconnecting)
		timer_arm(vs, false);
}

void vs_handle_events(struct virtio_vsock *vs)
{
	struct epoll_event evs[VS_EVENT_BATCH];
	int n = epoll_wait(vs->epfd, evs, VS_EVENT_BATCH, 0);
	bool timer = false;
	for (int i = 0; i < n; i++) {
		struct vs_watch *w = evs[i].data.ptr;
		switch (w->tag) {
		case VS_TAG_LISTEN:
			accept_clients(vs);
			break;
		case VS_TAG_TIMER:
			timer = true; /* after the batch: it may reset connections */
			break;
		case VS_TAG_CLIENT:
			if (!client_of(w)->dead)
				client_event(vs, client_of(w));
			break;
		case VS_TAG_CONN:
			if (!conn_of(w)->dead)
				conn_event(vs, conn_of(w), evs[i].events);
			break;
		default:
			break;
		}
	}
	if (timer)
		timer_event(vs);
	vs_rx_process(vs);
	vs_reap(vs);
}

void vs_reset_guest_state(struct virtio_vsock *vs)
{
	/* Kept: host clients still typing their CONNECT line, and host→guest
	 * connections whose REQUEST never reached the guest (the next driver
	 * gets it; the connect timeout still runs). */
	for (struct vs_conn *c = vs->conns, *next; c; c = next) {
		next = c->next;
		if (!(c->state == VS_CONNECTING && (c->pend & VS_P_REQUEST))) {
			c->pend = 0;
			vs_conn_free(vs, c);
		}
	}
	vs->rst_len = vs->rst_head = 0;
	if (!vs->nconnecting)
		timer_arm(vs, false);
}

void vs_close_all(struct virtio_vsock *vs)
{
	while (vs->conns) {
		vs->conns->pend = 0;
		vs_conn_free(vs, vs->conns);
	}
	while (vs->clients)
		client_free(vs, vs->clients, true);
	vs->rst_len = vs->rst_head = 0;
	timer_arm(vs, false);
}

void vs_reap(struct virtio_vsock *vs)
{
	while (vs->zombie_conns) {
		struct vs_conn *c = vs->zombie_conns;
		vs->zombie_conns = c->zombie_next;
		free(c);
	}
	while (vs->zombie_clients) {
		struct vs_client *cl = vs->zombie_clients;
		vs->zombie_clients = cl->zombie_next;
		free(cl);
	}
}

/* ---- public entry points -------------------------------------------------------------- */

void virtio_vsock_poll(struct virtio_vsock *vs)
{
	vs_lock(vs);
	vs_handle_events(vs);
	vs_unlock(vs);
}

static void loop_cb(void *ctx, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	virtio_vsock_poll(ctx);
}

int virtio_vsock_fd(const struct virtio_vsock *vs)
{
	return vs->epfd;
}

void virtio_vsock_get_stats(struct virtio_vsock *vs, struct virtio_vsock_stats *st)
{
	vs_lock(vs);
	*st = vs->st;
	st->conns = vs->nconns;
	st->clients = vs->nclients;
	vs_unlock(vs);
}

/* e is a positive errno here; the shared helper returns -e */
#define fail(err, errlen, e, ...) errbuf_fail((err), (errlen), -(e), __VA_ARGS__)

static int setup_listener(struct virtio_vsock *vs, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* room for "_<port>" too, or guest→host connections could never work */
	if (strlen(path) + 11 >= sizeof(sa.sun_path))
		return fail(err, errlen, ENAMETOOLONG,
			    "virtio-vsock: uds path %s is too long (at most %zu bytes)", path,
			    sizeof(sa.sun_path) - 12);
	struct stat sb;
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode))
			return fail(err, errlen, EEXIST,
				    "virtio-vsock: uds path %s exists and is not a socket", path);
		if (unlink(path) < 0)
			return fail(err, errlen, errno,
				    "virtio-vsock: cannot remove stale socket %s: %s", path,
				    strerror(errno));
	}
	strcpy(sa.sun_path, path);
	vs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (vs->listen_fd < 0)
		return fail(err, errlen, errno, "virtio-vsock: socket: %s", strerror(errno));
	if (bind(vs->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail(err, errlen, errno, "virtio-vsock: cannot bind %s: %s", path,
			    strerror(errno));
	vs->uds_path = strdup(path);
	if (!vs->uds_path) {
		unlink(path);
		return fail(err, errlen, ENOMEM, "virtio-vsock: out of memory");
	}
	if (listen(vs->listen_fd, 128) < 0)
		return fail(err, errlen, errno, "virtio-vsock: cannot listen on %s: %s", path,
			    strerror(errno));
	return 0;
}

int virtio_vsock_new(struct virtio_vsock **out, const struct virtio_vsock_config *cfg,
		     struct event_loop *loop, const struct log *log, char *err, size_t errlen)
{
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (cfg->guest_cid < 3 || cfg->guest_cid > 0xfffffffeull)
		return fail(err, errlen, EINVAL,
			    "virtio-vsock: guest cid %llu is out of range (3 to 4294967294)",
			    (unsigned long long)cfg->guest_cid);
	if (!cfg->uds_path || !*cfg->uds_path)
		return fail(err, errlen, EINVAL, "virtio-vsock: a uds path is required");
	uint32_t buf_alloc = cfg->buf_alloc ? cfg->buf_alloc : VSOCK_DEFAULT_BUF_ALLOC;
	if (buf_alloc < 4096 || buf_alloc > 64u * 1024 * 1024)
		return fail(err, errlen, EINVAL,
			    "virtio-vsock: buffer size %u is out of range (4 KiB to 64 MiB)",
			    buf_alloc);
	uint32_t max_conns = cfg->max_conns ? cfg->max_conns : VSOCK_DEFAULT_MAX_CONNS;
	if (max_conns > 65536)
		return fail(err, errlen, EINVAL,
			    "virtio-vsock: connection limit %u is above 65536", max_conns);

	struct virtio_vsock *vs = calloc(1, sizeof(*vs));
	if (!vs)
		return fail(err, errlen, ENOMEM, "virtio-vsock: out of memory");
	pthread_mutex_init(&vs->solo_lock, NULL);
	vs->log = log;
	vs->guest_cid = cfg->guest_cid;
	vs->buf_alloc = buf_alloc;
	vs->max_conns = max_conns;
	vs->connect_timeout_ms =
		cfg->connect_timeout_ms ? cfg->connect_timeout_ms : VSOCK_DEFAULT_CONNECT_TIMEOUT_MS;
	vs->next_port = VSOCK_HOST_PORT_BASE;
	vs->listen_w.tag = VS_TAG_LISTEN;
	vs->timer_w.tag = VS_TAG_TIMER;
	vs->epfd = vs->listen_fd = vs->timer_fd = -1;
	vs->hash_bits = 4;
	while ((1u << vs->hash_bits) < 2 * max_conns)
		vs->hash_bits++;
	int r;
	vs->buckets = calloc(1u << vs->hash_bits, sizeof(*vs->buckets));
	vs->scratch = malloc(VSOCK_MAX_PKT_PAYLOAD);
	if (!vs->buckets || !vs->scratch) {
		r = fail(err, errlen, ENOMEM, "virtio-vsock: out of memory");
		goto fail;
	}
	vs->epfd = epoll_create1(EPOLL_CLOEXEC);
	vs->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (vs->epfd < 0 || vs->timer_fd < 0) {
		r = fail(err, errlen, errno, "virtio-vsock: %s", strerror(errno));
		goto fail;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &vs->timer_w };
	if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, vs->timer_fd, &ev) < 0) {
		r = fail(err, errlen, errno, "virtio-vsock: epoll: %s", strerror(errno));
		goto fail;
	}
	r = setup_listener(vs, cfg->uds_path, err, errlen);
	if (r)
		goto fail;
	listen_update(vs);
	if (loop) {
		r = event_loop_add(loop, vs->epfd, EPOLLIN, loop_cb, vs);
		if (r) {
			fail(err, errlen, -r, "virtio-vsock: cannot register with the event loop: %s",
			     strerror(-r));
			goto fail;
		}
		vs->loop = loop;
	}
	*out = vs;
	return 0;
fail:
	virtio_vsock_free(vs);
	return r;
}

void virtio_vsock_free(struct virtio_vsock *vs)
{
	if (!vs)
		return;
	if (vs->loop)
		event_loop_del(vs->loop, vs->epfd);
	if (vs->buckets)
		vs_close_all(vs);
	vs_reap(vs);
	if (vs->listen_fd >= 0)
		close(vs->listen_fd);
	if (vs->uds_path) {
		unlink(vs->uds_path);
		free(vs->uds_path);
	}
	if (vs->timer_fd >= 0)
		close(vs->timer_fd);
	if (vs->epfd >= 0)
		close(vs->epfd);
	free(vs->buckets);
	free(vs->scratch);
	pthread_mutex_destroy(&vs->solo_lock);
	free(vs);
}
