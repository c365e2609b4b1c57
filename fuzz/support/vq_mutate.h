/* Driver-side queue actions decoded from fuzz input, shared by the virtio
 * harnesses: value pickers (descriptor indices, guest addresses) and "raw"
 * mutations of a vq_builder queue (descriptors, avail ring, indirect tables,
 * arbitrary RAM bytes) that reach every malformed-queue case, plus valid chain
 * construction in a data window that never runs out. Test code only. */
#ifndef FUZZ_VQ_MUTATE_H
#define FUZZ_VQ_MUTATE_H

#include "fuzz_input.h"
#include "vq_builder.h"

#include <stdbool.h>
#include <stdint.h>

/* Where valid data buffers live: [data_gpa, data_gpa + data_size) of b's RAM;
 * indirect tables of valid chains are taken round-robin from a separate area at
 * the end of RAM so that data writes do not clobber them. */
struct vqm {
	struct vqb *b;
	uint64_t data_gpa;
	uint64_t data_size;
	uint64_t tab_gpa, tab_size, tab_next;
};

/* Data window = what follows the rings (b->brk), minus the table area. */
void vqm_init(struct vqm *m, struct vqb *b);

/* A buffer GPA of len bytes inside the data window (len clamped to the window;
 * 8-byte aligned unless the input asks otherwise). Overlaps are allowed. */
uint64_t vqm_data_buf(struct vqm *m, struct fin *f, uint32_t len);
/* Any guest address for a buffer of len bytes: mostly valid, else RAM edges,
 * just outside, the rings themselves, wrapping values, raw 64-bit. */
uint64_t vqm_addr(struct vqm *m, struct fin *f, uint32_t len);
/* A descriptor / head index: mostly < size, else size, size-1, 0xffff, raw. */
uint16_t vqm_index(struct vqm *m, struct fin *f);

/*
 * A valid chain shape from the input: `shape` byte = readable count (bits 0-1),
 * writable count (bits 2-3; at least one buffer overall), indirect (bit 4),
 * zero-length extra descriptor (bit 5). Buffer lengths come from fin_len32
 * with `typical`, capped at `maxlen`. Readable buffers are filled with input
 * bytes (at most 64 each). Returns 0 and the head (not published) or -errno.
 * When `out` is not NULL it receives the buffers (up to 8) for the caller.
 */
struct vqm_chain {
	unsigned int n;
	struct vqb_buf bufs[8];
};
int vqm_build_chain(struct vqm *m, struct fin *f, uint32_t typical, uint32_t maxlen,
		    uint16_t *head, struct vqm_chain *out);

/* Build a chain from explicit buffers, direct or indirect (not published). */
int vqm_add(struct vqm *m, const struct vqb_buf *bufs, unsigned int n, bool indirect,
	    uint16_t *head);

/*
 * One raw mutation (kind from the input): raw descriptor write, one field of a
 * descriptor changed, avail entry / idx / flags, used_event, an indirect table
 * with raw entries, publish of a raw head, raw bytes anywhere in RAM (rings
 * included). Never touches memory outside the fake RAM.
 */
void vqm_mutate(struct vqm *m, struct fin *f);

#endif
