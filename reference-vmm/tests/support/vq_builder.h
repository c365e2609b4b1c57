/* Driver-side split virtqueue builder for unit tests and fuzz targets: a fake
 * guest RAM, ring layout, descriptor chains (valid or deliberately malformed),
 * avail publication and used-ring read-back. Test code only. */
#ifndef VQ_BUILDER_H
#define VQ_BUILDER_H

#include "core/guest_mem.h"
#include "virtio/queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Usage (a device test):
 *
 *	struct vqb b;
 *	struct virtq q;
 *	vqb_init(&b, 0x40000000, 1 << 20, 256);    // RAM at GPA 1 GiB, 1 MiB, size 256
 *	vqb_attach(&b, &q, false);                 // device-side queue, enabled
 *	uint64_t req = vqb_alloc_copy(&b, &hdr, sizeof(hdr));
 *	uint64_t st = vqb_alloc(&b, 1, 1);
 *	struct vqb_buf bufs[] = { { req, sizeof(hdr), false }, { st, 1, true } };
 *	uint16_t head;
 *	vqb_send(&b, bufs, 2, &head);              // chain + publish
 *	... device pops / pushes ...
 *	uint32_t id, len;
 *	assert_int_equal(vqb_get_used(&b, &id, &len), 1);
 *	vqb_destroy(&b); virtq_reset(&q);
 *
 * Conventions: every function returning int returns 0 (or 1 where noted) on
 * success and a negative errno on failure: -EFAULT when the GPA it must touch
 * is outside the fake RAM (writes are then skipped, nothing is written
 * partially), -ENOSPC when the RAM or the descriptor table is full, -EINVAL
 * for bad arguments. GPAs are returned as uint64_t, VQB_BAD_GPA on failure.
 * Nothing here validates like the device does: malformed queues are the point.
 * Ring writes use the driver's ordering (entry, release fence, idx).
 */

#define VQB_BAD_GPA UINT64_MAX

/* Descriptor contents, CPU byte order. */
struct vqb_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* One buffer of a chain to build. */
struct vqb_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable; /* VIRTQ_DESC_F_WRITE: the device writes it */
};

struct vqb {
	struct guest_mem mem; /* one region: the fake RAM; give &b->mem to devices */
	uint8_t *ram;         /* host view: ram[0] is GPA ram_gpa */
	uint64_t ram_gpa;
	uint64_t ram_size;
	uint16_t size;        /* queue size the rings were laid out for (any value) */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx;       /* set by vqb_attach / vqb_fill_virtq */
	uint16_t avail_idx;   /* driver's shadow of avail->idx (next value to publish) */
	uint16_t last_used;   /* next used entry vqb_get_used reads */
	uint64_t brk;         /* bump allocator: next free GPA for data */
	/* private: descriptor allocator for vqb_add_chain / vqb_add_indirect */
	uint32_t ndesc;       /* max(size, 1) */
	uint8_t *desc_busy;   /* ndesc entries */
	uint16_t *chain_next; /* ndesc: next allocated descriptor of a chain */
	uint16_t *chain_len;  /* ndesc: descriptors of the chain starting here (0 = none) */
	uint32_t cursor;
	void *map;
	size_t map_len;
};

/*
 * Map a zeroed fake RAM of ram_size bytes at GPA ram_gpa (any base; the host
 * mapping has the same alignment modulo 4096 as the GPA, lazily backed so GiB
 * sizes are cheap) and lay out the rings for qsize entries: desc at the first
 * 16-aligned GPA, then avail, then used (4-aligned), room for
 * used_event/avail_event always reserved. Data allocations start at the next
 * 4096-aligned GPA. qsize may be anything, even 0 or not a power of two (for
 * malformed tests; the layout then uses qsize entries, at least 1).
 * -EINVAL (ram_size 0 or gpa+size wraps), -ENOSPC (rings do not fit), -ENOMEM.
 */
int vqb_init(struct vqb *b, uint64_t ram_gpa, uint64_t ram_size, uint16_t qsize);
void vqb_destroy(struct vqb *b);

/* Move the rings to arbitrary GPAs (misaligned, outside RAM, overlapping...).
 * Does not touch memory. Ring writes outside RAM then fail with -EFAULT. */
void vqb_place_rings(struct vqb *b, uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa);

/* Host pointer for [gpa, gpa+len) in the fake RAM, or NULL. */
void *vqb_host(struct vqb *b, uint64_t gpa, uint64_t len);

/* Allocate len bytes (zeroed, align a power of two, 0 means 1) from RAM. */
uint64_t vqb_alloc(struct vqb *b, uint64_t len, uint64_t align);
/* Allocate and fill with data. */
uint64_t vqb_alloc_copy(struct vqb *b, const void *data, uint64_t len);

/* Raw descriptor writes: table entry idx (any idx, even >= size) or any GPA
 * (e.g. an indirect table entry: gpa = table + 16 * i). */
int vqb_write_desc(struct vqb *b, uint16_t idx, uint64_t addr, uint32_t len, uint16_t flags,
		   uint16_t next);
int vqb_write_desc_at(struct vqb *b, uint64_t gpa, uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next);
int vqb_read_desc(struct vqb *b, uint16_t idx, struct vqb_desc *d);

/*
 * Build a direct chain of n buffers in free descriptors (allocated by the
 * builder, NEXT links, WRITE as asked) and return its head; not published.
 * The descriptors stay allocated until vqb_get_used returns that head or
 * vqb_free_chain. -ENOSPC if fewer than n descriptors are free, -EINVAL n == 0.
 * Raw writes (vqb_write_desc) do not go through this allocator: do not mix both
 * on the same descriptor indices.
 */
int vqb_add_chain(struct vqb *b, const struct vqb_buf *bufs, unsigned int n, uint16_t *head);
/* An indirect table of n entries (entries i -> i+1 via NEXT) allocated in RAM,
 * referenced by one allocated descriptor with VIRTQ_DESC_F_INDIRECT. The table
 * GPA is returned in *table_gpa if not NULL (to corrupt it afterwards). */
int vqb_add_indirect(struct vqb *b, const struct vqb_buf *bufs, unsigned int n, uint16_t *head,
		     uint64_t *table_gpa);
/* Allocate one raw descriptor slot (contents up to the caller) for a chain
 * that vqb_get_used will free; *idx receives it. */
int vqb_alloc_desc(struct vqb *b, uint16_t *idx);
void vqb_free_chain(struct vqb *b, uint16_t head);

/* Publish head: ring[avail_idx % size] = head, release fence, avail->idx++. */
int vqb_publish(struct vqb *b, uint16_t head);
/* vqb_add_chain + vqb_publish */
int vqb_send(struct vqb *b, const struct vqb_buf *bufs, unsigned int n, uint16_t *head);
/* Raw avail ring access: entry at ring slot (not reduced modulo size), and
 * avail->idx itself (also updates the shadow b->avail_idx). */
int vqb_set_avail_entry(struct vqb *b, uint32_t slot, uint16_t head);
int vqb_set_avail_idx(struct vqb *b, uint16_t idx);
int vqb_set_avail_flags(struct vqb *b, uint16_t flags);
/* used_event (after avail->ring[size]), meaningful with EVENT_IDX */
int vqb_set_used_event(struct vqb *b, uint16_t v);

/* Device-written fields, read back (0 if outside RAM). */
uint16_t vqb_used_idx(struct vqb *b);
uint16_t vqb_used_flags(struct vqb *b);
uint16_t vqb_avail_event(struct vqb *b); /* after used->ring[size] */
/* Raw used ring element at slot (reduced modulo size). */
int vqb_used_elem(struct vqb *b, uint16_t slot, uint32_t *id, uint32_t *len);
/* Next used element (acquire after reading used->idx): returns 1 and frees the
 * chain's descriptors if it was built here, 0 if none is pending. */
int vqb_get_used(struct vqb *b, uint32_t *id, uint32_t *len);

/* Device side: virtq_init(q, &b->mem) and copy size, ring GPAs and event_idx
 * (also recorded in b->event_idx). vqb_attach then returns virtq_enable(q).
 * Undo with virtq_reset(q). */
void vqb_fill_virtq(struct vqb *b, struct virtq *q, bool event_idx);
int vqb_attach(struct vqb *b, struct virtq *q, bool event_idx);

/*
 * Driver side of a virtio-mmio transport (virtio/mmio.h), for device tests
 * that go through the transport. Accesses are 32-bit through
 * virtio_mmio_bus_ops (so they take the transport lock: do not call them from
 * a device callback).
 */
struct virtio_transport;
uint32_t vqb_mmio_read(struct virtio_transport *t, uint64_t off);
void vqb_mmio_write(struct virtio_transport *t, uint64_t off, uint32_t v);
/* Status 0 (reset), ACKNOWLEDGE, DRIVER, read DeviceFeatures, write
 * DriverFeatures = (features & offered) | VERSION_1, set FEATURES_OK.
 * Returns the status read back (FEATURES_OK set if accepted). */
uint32_t vqb_mmio_negotiate(struct virtio_transport *t, uint64_t features);
/* QueueSel = qi, QueueNum = b->size, desc/driver/device = b's ring GPAs,
 * QueueReady = 1; b->event_idx follows the negotiated features. Returns the
 * QueueReady value read back (1 if the queue was accepted). */
uint32_t vqb_mmio_setup_queue(struct virtio_transport *t, uint16_t qi, struct vqb *b);
/* Status |= DRIVER_OK; returns the status read back. */
uint32_t vqb_mmio_driver_ok(struct virtio_transport *t);

#endif
