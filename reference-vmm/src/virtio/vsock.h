/* virtio-vsock (device id 19) with a userspace host side over unix sockets,
 * speaking the Firecracker-compatible protocol: host→guest through
 * "CONNECT <port>\n" on uds_path, guest→host by connecting to uds_path_<port>. */
#ifndef VMM_VIRTIO_VSOCK_H
#define VMM_VIRTIO_VSOCK_H

#include "virtio/virtio_dev.h"

#include <stddef.h>
#include <stdint.h>

struct event_loop;
struct log;
struct virtio_vsock;

#define VIRTIO_VSOCK_QUEUE_RX 0  /* device → driver packets */
#define VIRTIO_VSOCK_QUEUE_TX 1  /* driver → device packets */
#define VIRTIO_VSOCK_QUEUE_EVT 2 /* events (never used by this device) */
#define VIRTIO_VSOCK_QUEUE_SIZE 256
#define VIRTIO_VSOCK_CONFIG_SIZE 8 /* le64 guest_cid */

#define VSOCK_CID_HOST 2
#define VSOCK_TYPE_STREAM 1

enum virtio_vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

/* SHUTDOWN flags */
#define VSOCK_SHUTDOWN_RCV 1  /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2 /* the sender will send no more */

/* Packet header, little-endian on the wire; 44 bytes, payload follows. */
struct virtio_vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes");

#define VSOCK_MAX_PKT_PAYLOAD (64 * 1024) /* larger RW payloads are malformed */
#define VSOCK_HOST_PORT_BASE (1u << 30)   /* first local port for host→guest connections */

#define VSOCK_DEFAULT_BUF_ALLOC (256 * 1024)
#define VSOCK_DEFAULT_MAX_CONNS 1024
#define VSOCK_DEFAULT_CONNECT_TIMEOUT_MS 2000

struct virtio_vsock_config {
	uint64_t guest_cid;   /* 3 .. 0xfffffffe */
	const char *uds_path; /* host listening socket; guest→host uses <uds_path>_<port> */
	/* optional, 0 → default */
	uint32_t buf_alloc;          /* our receive buffer per connection (advertised credit);
				      * also the cap of guest→host bytes held per connection */
	uint32_t max_conns;          /* connections + host clients awaiting their CONNECT line */
	uint32_t connect_timeout_ms; /* host→guest: REQUEST without RESPONSE → RST, client closed */
};

struct virtio_vsock_stats {
	uint32_t conns;         /* live connections (any state) */
	uint32_t clients;       /* host clients that have not sent their CONNECT line yet */
	uint64_t rx_pkts;       /* packets delivered to the guest */
	uint64_t tx_pkts;       /* packets taken from the guest */
	uint64_t rst_sent;      /* RST packets delivered to the guest */
	uint64_t malformed;     /* guest packets dropped or reset for breaking the protocol */
	uint64_t rx_bytes;      /* RW payload bytes delivered to the guest */
	uint64_t tx_bytes;      /* RW payload bytes written to host sockets */
	uint64_t credit_updates;/* CREDIT_UPDATE packets delivered to the guest */
};

/*
 * Create the device and its listening socket at cfg->uds_path (an existing
 * socket file there is removed as stale; anything else is an error naming the
 * path). With a non-NULL loop, all host fds are watched from the loop thread
 * through one private epoll fd registered there; with loop == NULL the caller
 * drives virtio_vsock_poll(). Returns 0 or -errno with one sentence in err.
 */
int virtio_vsock_new(struct virtio_vsock **out, const struct virtio_vsock_config *cfg,
		     struct event_loop *loop, const struct log *log, char *err, size_t errlen);
/* Unregister from the loop (do not hold the transport lock), close every
 * socket, unlink uds_path. NULL is fine. */
void virtio_vsock_free(struct virtio_vsock *vs);

/* The transport's view: virtio_mmio_new(&virtio_vsock_ops, vsock, ...);
 * ops.bind attaches the transport. */
extern const struct virtio_dev_ops virtio_vsock_ops;

/* The private epoll fd: readable when host-side work is pending. */
int virtio_vsock_fd(const struct virtio_vsock *vs);
/* Handle pending host-side events now (what the loop callback does). Takes
 * the transport lock; do not hold it. */
void virtio_vsock_poll(struct virtio_vsock *vs);
/* Takes the transport lock like poll: do not hold it. */
void virtio_vsock_get_stats(struct virtio_vsock *vs, struct virtio_vsock_stats *st);

#endif
