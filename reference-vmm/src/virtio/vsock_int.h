/* Internal state of the virtio-vsock device, shared by vsock.c (guest side:
 * packets, queues, credit) and vsock_host.c (host side: connection table, unix
 * sockets, private epoll). Not a public header. */
#ifndef VMM_VSOCK_INT_H
#define VMM_VSOCK_INT_H

#include "virtio/vsock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VS_LINE_MAX 32     /* "CONNECT 4294967295\n" is 19 bytes */
#define VS_RST_RING 256    /* stateless RST replies waiting for an RX buffer */
#define VS_EVENT_BATCH 64

/* epoll data.ptr points at one of these, the first member of its object */
enum vs_tag { VS_TAG_LISTEN = 1, VS_TAG_TIMER, VS_TAG_CLIENT, VS_TAG_CONN };
struct vs_watch {
	uint8_t tag;
};

enum vs_state {
	VS_CONNECTING,  /* host→guest: REQUEST queued or sent, awaiting RESPONSE */
	VS_ESTABLISHED,
	VS_CLOSING,     /* host socket closed; an RST to the guest is pending */
};

/* control packets owed to the guest */
#define VS_P_REQUEST 0x01
#define VS_P_RESPONSE 0x02
#define VS_P_RST 0x04
#define VS_P_SHUTDOWN 0x08
#define VS_P_CREDIT 0x10

struct vs_conn {
	struct vs_watch w; /* first */
	bool dead;         /* freed, waiting for the end of the batch */
	enum vs_state state;
	uint32_t local_port; /* host side */
	uint32_t peer_port;  /* guest side */
	int fd;              /* unix socket, -1 once closed */
	uint32_t ep_events;
	bool in_epoll;
	uint8_t pend;        /* VS_P_* */
	uint8_t shut_flags;  /* flags of the SHUTDOWN we owe */
	bool on_rxq;
	bool data_ready;     /* the socket may have bytes (or EOF) for the guest */
	bool host_eof;       /* read returned 0 */
	bool host_hup;       /* EPOLLHUP/ERR seen: out of the epoll set */
	bool guest_shut_rcv, guest_shut_send;
	bool wr_shut;        /* shutdown(SHUT_WR) done */
	bool close_after_flush;
	uint64_t deadline_ms; /* VS_CONNECTING */

	/* host → guest credit (the guest's receive buffer) */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	/* guest → host: our buffer (vs->buf_alloc) */
	uint32_t rx_cnt, fwd_cnt, last_fwd_sent;
	uint8_t *pbuf; /* ring of vs->buf_alloc bytes, allocated while non-empty */
	uint32_t phead, plen;

	struct vs_conn *hnext;              /* hash bucket */
	struct vs_conn *prev, *next;        /* all connections */
	struct vs_conn *rxq_prev, *rxq_next;
	struct vs_conn *zombie_next;
};

/* a host client that has not sent its CONNECT line yet */
struct vs_client {
	struct vs_watch w; /* first */
	bool dead;
	int fd;
	uint8_t len;
	char line[VS_LINE_MAX];
	struct vs_client *prev, *next, *zombie_next;
};

struct vs_rst {
	uint32_t host_port, guest_port;
};

struct virtio_vsock {
	pthread_mutex_t solo_lock; /* backend side, before the transport lock */
	struct virtio_transport *t;
	struct event_loop *loop;
	const struct log *log;
	uint64_t guest_cid;
	char *uds_path;
	uint32_t buf_alloc, max_conns, connect_timeout_ms;

	int epfd, listen_fd, timer_fd;
	struct vs_watch listen_w, timer_w;
	bool listen_in_epoll;
	bool timer_armed;
	bool activated, activating;
	bool warned_malformed;
	uint64_t features;

	struct vs_conn **buckets;
	uint32_t hash_bits;
	struct vs_conn *conns; /* list of all */
	uint32_t nconns, nconnecting;
	struct vs_conn *rxq_head, *rxq_tail;
	struct vs_client *clients;
	uint32_t nclients;
	struct vs_rst rst[VS_RST_RING];
	uint32_t rst_head, rst_len;
	uint32_t next_port;
	struct vs_conn *zombie_conns;
	struct vs_client *zombie_clients;
	uint8_t *scratch; /* VSOCK_MAX_PKT_PAYLOAD bytes */
	struct virtio_vsock_stats st;
};

/* ---- vsock_host.c: connection table and host sockets (lock held) ---- */
struct vs_conn *vs_conn_lookup(struct virtio_vsock *vs, uint32_t local, uint32_t peer);
/* A new connection in the table (fd -1, VS_ESTABLISHED), NULL if out of memory. */
struct vs_conn *vs_conn_new(struct virtio_vsock *vs, uint32_t local, uint32_t peer);
void vs_conn_set_state(struct virtio_vsock *vs, struct vs_conn *c, enum vs_state s);
/* Close the host socket; with send_rst (and if the guest knows the connection)
 * keep it as VS_CLOSING until the RST is delivered, else free it. */
void vs_conn_reset(struct virtio_vsock *vs, struct vs_conn *c, bool send_rst);
void vs_conn_free(struct virtio_vsock *vs, struct vs_conn *c);
void vs_conn_update_interest(struct virtio_vsock *vs, struct vs_conn *c);
uint32_t vs_conn_credit(const struct vs_conn *c);
/* 1: bytes to read, 0: EOF, -EAGAIN, -errno */
int vs_conn_peek(struct vs_conn *c);
/* The host side reached EOF: SHUTDOWN or RST to the guest. */
void vs_conn_host_eof(struct virtio_vsock *vs, struct vs_conn *c);
/* Guest RW payload for the host socket. 0, or -errno (the caller resets). */
int vs_conn_guest_data(struct virtio_vsock *vs, struct vs_conn *c, const uint8_t *data,
		       uint32_t len);
void vs_conn_guest_shutdown(struct virtio_vsock *vs, struct vs_conn *c, uint32_t flags);
/* RESPONSE from the guest to a host→guest connection: "OK <port>\n". */
void vs_conn_established(struct virtio_vsock *vs, struct vs_conn *c);
/* REQUEST from the guest to host port: connect to <uds>_<port>. */
void vs_guest_connect(struct virtio_vsock *vs, uint32_t host_port, uint32_t guest_port,
		      uint32_t buf_alloc, uint32_t fwd_cnt);
void vs_handle_events(struct virtio_vsock *vs);
/* Device reset: close every connection the guest knows about. */
void vs_reset_guest_state(struct virtio_vsock *vs);
/* Close every connection and pending client (free). */
void vs_close_all(struct virtio_vsock *vs);
/* Free objects retired during this entry point. */
void vs_reap(struct virtio_vsock *vs);

/* ---- vsock.c: guest side (lock held) ---- */
void vs_rxq_add(struct virtio_vsock *vs, struct vs_conn *c);
void vs_rxq_del(struct virtio_vsock *vs, struct vs_conn *c);
void vs_queue_rst(struct virtio_vsock *vs, uint32_t host_port, uint32_t guest_port);
void vs_rx_process(struct virtio_vsock *vs);
void vs_malformed(struct virtio_vsock *vs, const char *why);
uint64_t vs_now_ms(void);

#endif
