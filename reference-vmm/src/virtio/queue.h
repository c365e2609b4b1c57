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

/* Guest-visible layouts (little-endian, as in the virtio 1.x spec). */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [size], then uint16_t used_event with EVENT_IDX */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* [size], then uint16_t avail_event */
};

/* Bytes each ring occupies for a queue of `size` entries. */
static inline uint64_t virtq_desc_bytes(uint32_t size)
{
	return 16ull * size;
}
static inline uint64_t virtq_avail_bytes(uint32_t size, bool event_idx)
{
	return 4ull + 2ull * size + (event_idx ? 2 : 0);
}
static inline uint64_t virtq_used_bytes(uint32_t size, bool event_idx)
{
	return 4ull + 8ull * size + (event_idx ? 2 : 0);
}

/* Typed errors: every rule a driver can break. Returned negated from virtq_*. */
enum virtq_err {
	VIRTQ_OK = 0,
	VIRTQ_ERR_NOT_READY = 1,    /* queue used before it was enabled/validated */
	VIRTQ_ERR_SIZE,             /* size 0, > 32768 or not a power of two */
	VIRTQ_ERR_ALIGN,            /* desc 16, avail 2, used 4 byte alignment broken */
	VIRTQ_ERR_RING_ADDR,        /* a ring is outside guest memory / wraps */
	VIRTQ_ERR_AVAIL_IDX,        /* avail idx ran more than size ahead */
	VIRTQ_ERR_HEAD,             /* head (or next) index >= size (>= table len if indirect) */
	VIRTQ_ERR_LOOP,             /* chain longer than the queue size (a loop) */
	VIRTQ_ERR_DESC_ADDR,        /* buffer / indirect table outside guest memory or wraps */
	VIRTQ_ERR_NESTED_INDIRECT,  /* indirect descriptor inside an indirect table */
	VIRTQ_ERR_INDIRECT_LEN,     /* indirect table len 0, not a multiple of 16, > size entries */
	VIRTQ_ERR_INDIRECT_NEXT,    /* INDIRECT combined with NEXT */
	VIRTQ_ERR_CHAIN_LEN,        /* total bytes of a chain > 2^32 - 1 */
	VIRTQ_ERR_WRITE_ORDER,      /* device-readable descriptor after a writable one */
	VIRTQ_ERR_USED_ID,          /* device pushed an id it does not own */
	VIRTQ_ERR_HEAD_BUSY,        /* driver made a head available that the device still owns */
	VIRTQ_ERR_NOMEM,            /* host allocation failed in virtq_enable */
	VIRTQ_ERR_MAX
};

const char *virtq_strerror(int err); /* err may be negative */

/* One buffer of a chain, already translated and bounds checked. */
struct virtq_buf {
	uint8_t *host; /* never NULL: zero-length descriptors are not listed */
	uint64_t gpa;
	uint32_t len;  /* > 0 */
	bool writable; /* device writes (VIRTQ_DESC_F_WRITE) */
};

/* A popped chain. `bufs` points into the queue's scratch array: valid until the
 * next virtq_pop on the same queue (or reset). Readable buffers come first. */
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
	uint32_t in_flight;        /* chains popped and not yet pushed */
	struct virtq_buf *scratch; /* size entries, allocated by virtq_enable */
	uint8_t *owned;            /* size entries: 1 = head popped, not yet pushed */
	/* host pointers to the rings, valid while ready */
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t *used_event;  /* in the avail ring, after ring[size] (EVENT_IDX only) */
	uint16_t *avail_event; /* in the used ring, after ring[size] (EVENT_IDX only) */
};

/* Reset to "not ready" and forget everything. virtq_init is for a fresh
 * (uninitialised) struct; virtq_reset frees the scratch arrays, keeps `mem` and
 * zeroes the rest (size and ring addresses included). */
void virtq_init(struct virtq *q, const struct guest_mem *mem);
void virtq_reset(struct virtq *q);

/*
 * Validate size, alignment and ring placement (every ring fully inside one
 * guest memory region, used_event/avail_event included with EVENT_IDX) and make
 * the queue ready: indices start at 0, nothing in flight. May be called again
 * on a ready queue (starts over). Returns 0 or -VIRTQ_ERR_* (queue not ready).
 * The device maximum queue size is checked by the transport, not here.
 */
int virtq_enable(struct virtq *q);

/*
 * Next available chain. Returns 1 with *chain filled, 0 if the ring is empty,
 * or -VIRTQ_ERR_* when the driver broke a rule (the caller then puts the device
 * into NEEDS_RESET; the queue state is unchanged, the chain is not consumed).
 * Never reads outside guest memory; O(chain length) work, at most `size`
 * descriptors per table. Each descriptor is read from guest memory exactly once.
 *
 * Policy (see queue.c for the full list): a chain is at most `size`
 * descriptors; an indirect table holds at most `size` entries and the whole
 * chain (direct descriptors + table entries) yields at most `size` buffers; an
 * INDIRECT descriptor may end a direct chain (it cannot have NEXT); its WRITE
 * flag is ignored. Zero-length descriptors are allowed, their address is not
 * checked and they are left out of chain->bufs (they still count for the loop
 * and direction rules).
 */
int virtq_pop(struct virtq *q, struct virtq_chain *chain);

/* Return a chain with `written` bytes written into its writable buffers
 * (not checked against the chain: keep it <= chain.writable_len). Chains may be
 * pushed in any order. Publishes the used element then the used idx (release
 * ordering).
 * -VIRTQ_ERR_USED_ID if head was not popped or was already pushed;
 * -VIRTQ_ERR_NOT_READY if the queue is not ready. */
int virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/* After pushes: must the driver be interrupted? (EVENT_IDX / NO_INTERRUPT).
 * With EVENT_IDX this records the used idx as signalled: call it once per
 * batch of pushes and send the interrupt when it returns true. */
bool virtq_needs_interrupt(struct virtq *q);

/* Before going idle: with EVENT_IDX publish avail_event = last_avail_idx (ask
 * for a notification at the next buffer), then a full fence, then re-check the
 * avail idx. Returns true if buffers are already available again (the caller
 * should pop again instead of sleeping). Without EVENT_IDX only the re-check. */
bool virtq_enable_notify(struct virtq *q);

/* Chains available and not yet popped (the avail idx as read now, not
 * validated: a value > size means virtq_pop will report AVAIL_IDX). */
uint16_t virtq_avail_pending(struct virtq *q);

/* Copy helpers over a chain's readable / writable buffers. `off` is a byte
 * offset into the concatenation of the readable (resp. writable) buffers.
 * Return bytes copied (short at the end of the chain, 0 if off is past it). */
uint32_t virtq_chain_read(const struct virtq_chain *c, uint32_t off, void *dst, uint32_t len);
uint32_t virtq_chain_write(const struct virtq_chain *c, uint32_t off, const void *src,
			   uint32_t len);

#endif
