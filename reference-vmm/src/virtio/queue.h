/* Split virtqueue (virtio 1.x), device side: validated descriptor-chain walking
 * (direct and indirect), used-ring publication with barriers, EVENT_IDX and
 * NO_INTERRUPT notification suppression. Knows guest memory, never KVM. */
#ifndef VMM_VIRTQ_H
#define VMM_VIRTQ_H

#include "core/guest_mem.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTQ_MAX_SIZE 32768

/* descriptor flags */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
/* avail ring flags */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
/* used ring flags */
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Typed errors: every rule a driver can break. Returned negated from virtq_*. */
enum virtq_err {
	VIRTQ_OK = 0,
	VIRTQ_ERR_NOT_READY = 1,    /* queue used before it was enabled/validated */
	VIRTQ_ERR_SIZE,             /* size 0, > 32768 or not a power of two */
	VIRTQ_ERR_ALIGN,            /* desc 16, avail 2, used 4 byte alignment broken */
	VIRTQ_ERR_RING_ADDR,        /* a ring is outside guest memory / wraps */
	VIRTQ_ERR_AVAIL_IDX,        /* avail idx ran more than size ahead */
	VIRTQ_ERR_HEAD,             /* head (or next) index >= size */
	VIRTQ_ERR_LOOP,             /* chain longer than the queue (a loop) */
	VIRTQ_ERR_DESC_ADDR,        /* buffer outside guest memory or gpa+len wraps */
	VIRTQ_ERR_NESTED_INDIRECT,  /* indirect descriptor inside an indirect table */
	VIRTQ_ERR_INDIRECT_LEN,     /* indirect table length 0 or not a multiple of 16 */
	VIRTQ_ERR_INDIRECT_NEXT,    /* INDIRECT combined with NEXT */
	VIRTQ_ERR_CHAIN_LEN,        /* total bytes of a chain > 2^32 - 1 */
	VIRTQ_ERR_WRITE_ORDER,      /* device-readable descriptor after a writable one */
	VIRTQ_ERR_USED_ID,          /* device pushed an id it does not own */
	VIRTQ_ERR_MAX
};

const char *virtq_strerror(int err); /* err may be negative */

/* One buffer of a chain, already translated and bounds checked. */
struct virtq_buf {
	uint8_t *host;
	uint32_t len;
	bool writable; /* device writes (VIRTQ_DESC_F_WRITE) */
};

/* A popped chain. `bufs` points into the queue's scratch array: valid until the
 * next virtq_pop on the same queue. Readable buffers come first. */
struct virtq_chain {
	uint16_t head;
	uint16_t nr_bufs;
	uint16_t nr_readable; /* bufs[0..nr_readable) readable, the rest writable */
	uint32_t readable_len;
	uint32_t writable_len;
	struct virtq_buf *bufs;
};

struct virtq {
	/* set by the transport from the driver's registers */
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_F_RING_EVENT_IDX negotiated */

	/* device state */
	const struct guest_mem *mem;
	bool ready;
	uint16_t last_avail_idx;
	uint16_t used_idx;
	uint16_t signalled_used;
	bool signalled_used_valid;
	uint32_t in_flight;      /* chains popped and not yet pushed */
	struct virtq_buf *scratch; /* size entries, allocated by virtq_enable */
	/* host pointers to the rings, valid while ready */
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t *used_event;  /* in the avail ring, after ring[size] */
	uint16_t *avail_event; /* in the used ring, after ring[size] */
};

/* Reset to "not ready" and forget everything (frees scratch). */
void virtq_init(struct virtq *q, const struct guest_mem *mem);
void virtq_reset(struct virtq *q);

/*
 * Validate size, alignment and ring placement (every ring fully inside guest
 * memory) and make the queue ready. Returns 0 or -VIRTQ_ERR_*.
 */
int virtq_enable(struct virtq *q);

/*
 * Next available chain. Returns 1 with *chain filled, 0 if the ring is empty,
 * or -VIRTQ_ERR_* when the driver broke a rule (the caller then puts the device
 * into NEEDS_RESET). Never reads outside guest memory; bounded work.
 */
int virtq_pop(struct virtq *q, struct virtq_chain *chain);

/* Return a chain with `written` bytes written into its writable buffers.
 * Publishes the used element then the used idx (release ordering). */
int virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/* After pushes: must the driver be interrupted? (EVENT_IDX / NO_INTERRUPT) */
bool virtq_needs_interrupt(struct virtq *q);

/* With EVENT_IDX: tell the driver which avail idx to notify at (the current
 * one), before re-checking for work. No-op without EVENT_IDX. */
void virtq_enable_notify(struct virtq *q);

/* Copy helpers over a chain's readable / writable buffers. Return bytes copied. */
uint32_t virtq_chain_read(const struct virtq_chain *c, uint32_t off, void *dst, uint32_t len);
uint32_t virtq_chain_write(const struct virtq_chain *c, uint32_t off, const void *src,
			   uint32_t len);

#endif
