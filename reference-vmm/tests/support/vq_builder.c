/* Driver-side split virtqueue builder (see vq_builder.h): fake RAM, ring layout,
 * descriptor allocation, raw/malformed writes, avail publication, used read-back. */
#include "vq_builder.h"
#include "virtio/mmio.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define VQB_PAGE 4096ull

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

int vqb_init(struct vqb *b, uint64_t ram_gpa, uint64_t ram_size, uint16_t qsize)
{
	memset(b, 0, sizeof(*b));
	if (ram_size == 0 || ram_gpa + ram_size <= ram_gpa)
		return -EINVAL;

	uint64_t skew = ram_gpa & (VQB_PAGE - 1);
	uint64_t map_len = align_up(ram_size + skew, VQB_PAGE);
	void *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return -ENOMEM;
	b->map = map;
	b->map_len = map_len;
	b->ram = (uint8_t *)map + skew;
	b->ram_gpa = ram_gpa;
	b->ram_size = ram_size;
	guest_mem_init(&b->mem);
	if (guest_mem_add(&b->mem, ram_gpa, ram_size, b->ram)) {
		vqb_destroy(b);
		return -EINVAL;
	}

	b->size = qsize;
	b->ndesc = qsize ? qsize : 1;
	uint64_t end = ram_gpa + ram_size;
	uint64_t desc = align_up(ram_gpa, 16);
	uint64_t avail = desc + virtq_desc_bytes(b->ndesc);
	uint64_t used = align_up(avail + virtq_avail_bytes(b->ndesc, true), 4);
	uint64_t brk = align_up(used + virtq_used_bytes(b->ndesc, true), VQB_PAGE);
	if (desc < ram_gpa || brk < used || brk > end) {
		vqb_destroy(b);
		return -ENOSPC;
	}
	b->desc_gpa = desc;
	b->avail_gpa = avail;
	b->used_gpa = used;
	b->brk = brk;

	b->desc_busy = calloc(b->ndesc, 1);
	b->chain_next = calloc(b->ndesc, sizeof(*b->chain_next));
	b->chain_len = calloc(b->ndesc, sizeof(*b->chain_len));
	if (!b->desc_busy || !b->chain_next || !b->chain_len) {
		vqb_destroy(b);
		return -ENOMEM;
	}
	return 0;
}

void vqb_destroy(struct vqb *b)
{
	if (b->map)
		munmap(b->map, b->map_len);
	free(b->desc_busy);
	free(b->chain_next);
	free(b->chain_len);
	memset(b, 0, sizeof(*b));
}

void vqb_place_rings(struct vqb *b, uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa)
{
	b->desc_gpa = desc_gpa;
	b->avail_gpa = avail_gpa;
	b->used_gpa = used_gpa;
}

void *vqb_host(struct vqb *b, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(&b->mem, gpa, len);
}

uint64_t vqb_alloc(struct vqb *b, uint64_t len, uint64_t align)
{
	if (align == 0)
		align = 1;
	if (align & (align - 1))
		return VQB_BAD_GPA;
	uint64_t a = align_up(b->brk, align);
	uint64_t end = b->ram_gpa + b->ram_size;
	if (a < b->brk || a > end || len > end - a)
		return VQB_BAD_GPA;
	b->brk = a + len;
	return a;
}

uint64_t vqb_alloc_copy(struct vqb *b, const void *data, uint64_t len)
{
	uint64_t gpa = vqb_alloc(b, len, 1);
	if (gpa != VQB_BAD_GPA && len)
		memcpy(vqb_host(b, gpa, len), data, len);
	return gpa;
}

/* driver-side stores/loads of ring fields (atomic when naturally aligned) */
static int put16(struct vqb *b, uint64_t gpa, uint16_t v)
{
	uint16_t *p = vqb_host(b, gpa, 2);
	if (!p)
		return -EFAULT;
	v = htole16(v);
	if ((uintptr_t)p & 1)
		memcpy(p, &v, 2);
	else
		__atomic_store_n(p, v, __ATOMIC_RELAXED);
	return 0;
}

static uint16_t get16(struct vqb *b, uint64_t gpa)
{
	uint16_t *p = vqb_host(b, gpa, 2);
	uint16_t v = 0;
	if (!p)
		return 0;
	if ((uintptr_t)p & 1)
		memcpy(&v, p, 2);
	else
		v = __atomic_load_n(p, __ATOMIC_RELAXED);
	return le16toh(v);
}

int vqb_write_desc_at(struct vqb *b, uint64_t gpa, uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next)
{
	struct virtq_desc d = {
		.addr = htole64(addr), .len = htole32(len), .flags = htole16(flags),
		.next = htole16(next),
	};
	void *p = vqb_host(b, gpa, sizeof(d));
	if (!p)
		return -EFAULT;
	memcpy(p, &d, sizeof(d));
	return 0;
}

int vqb_write_desc(struct vqb *b, uint16_t idx, uint64_t addr, uint32_t len, uint16_t flags,
		   uint16_t next)
{
	return vqb_write_desc_at(b, b->desc_gpa + 16ull * idx, addr, len, flags, next);
}

int vqb_read_desc(struct vqb *b, uint16_t idx, struct vqb_desc *out)
{
	struct virtq_desc d;
	void *p = vqb_host(b, b->desc_gpa + 16ull * idx, sizeof(d));
	if (!p)
		return -EFAULT;
	memcpy(&d, p, sizeof(d));
	*out = (struct vqb_desc){ le64toh(d.addr), le32toh(d.len), le16toh(d.flags),
				  le16toh(d.next) };
	return 0;
}

static int alloc_descs(struct vqb *b, unsigned int n, uint16_t *out)
{
	unsigned int got = 0;

	for (uint32_t scanned = 0; scanned < b->ndesc && got < n; scanned++) {
		uint32_t i = (b->cursor + scanned) % b->ndesc;
		if (!b->desc_busy[i])
			out[got++] = (uint16_t)i;
	}
	if (got < n)
		return -ENOSPC;
	for (unsigned int k = 0; k < n; k++) {
		b->desc_busy[out[k]] = 1;
		b->chain_next[out[k]] = k + 1 < n ? out[k + 1] : out[k];
	}
	b->chain_len[out[0]] = (uint16_t)n;
	b->cursor = (out[n - 1] + 1u) % b->ndesc;
	return 0;
}

void vqb_free_chain(struct vqb *b, uint16_t head)
{
	if (head >= b->ndesc)
		return;
	uint32_t n = b->chain_len[head];
	uint16_t i = head;
	b->chain_len[head] = 0;
	for (uint32_t k = 0; k < n; k++) {
		b->desc_busy[i] = 0;
		i = b->chain_next[i];
	}
}

int vqb_alloc_desc(struct vqb *b, uint16_t *idx)
{
	return alloc_descs(b, 1, idx);
}

int vqb_add_chain(struct vqb *b, const struct vqb_buf *bufs, unsigned int n, uint16_t *head)
{
	if (n == 0 || n > b->ndesc)
		return n ? -ENOSPC : -EINVAL;
	uint16_t *ids = calloc(n, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	int ret = alloc_descs(b, n, ids);
	for (unsigned int k = 0; !ret && k < n; k++) {
		uint16_t flags = (bufs[k].writable ? VIRTQ_DESC_F_WRITE : 0) |
				 (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		ret = vqb_write_desc(b, ids[k], bufs[k].gpa, bufs[k].len, flags,
				     k + 1 < n ? ids[k + 1] : 0);
		if (ret)
			vqb_free_chain(b, ids[0]);
	}
	if (!ret)
		*head = ids[0];
	free(ids);
	return ret;
}

int vqb_add_indirect(struct vqb *b, const struct vqb_buf *bufs, unsigned int n, uint16_t *head,
		     uint64_t *table_gpa)
{
	if (n == 0)
		return -EINVAL;
	uint64_t table = vqb_alloc(b, 16ull * n, 16);
	if (table == VQB_BAD_GPA)
		return -ENOSPC;
	for (unsigned int k = 0; k < n; k++) {
		uint16_t flags = (bufs[k].writable ? VIRTQ_DESC_F_WRITE : 0) |
				 (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		vqb_write_desc_at(b, table + 16ull * k, bufs[k].gpa, bufs[k].len, flags,
				  k + 1 < n ? (uint16_t)(k + 1) : 0);
	}
	uint16_t idx;
	int ret = alloc_descs(b, 1, &idx);
	if (ret)
		return ret;
	ret = vqb_write_desc(b, idx, table, (uint32_t)(16ull * n), VIRTQ_DESC_F_INDIRECT, 0);
	if (ret) {
		vqb_free_chain(b, idx);
		return ret;
	}
	*head = idx;
	if (table_gpa)
		*table_gpa = table;
	return 0;
}

int vqb_set_avail_entry(struct vqb *b, uint32_t slot, uint16_t head)
{
	return put16(b, b->avail_gpa + 4 + 2ull * slot, head);
}

int vqb_set_avail_idx(struct vqb *b, uint16_t idx)
{
	/* ring entries written before are visible before the idx */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	int ret = put16(b, b->avail_gpa + 2, idx);
	if (!ret)
		b->avail_idx = idx;
	return ret;
}

int vqb_publish(struct vqb *b, uint16_t head)
{
	if (b->size == 0)
		return -EINVAL;
	int ret = vqb_set_avail_entry(b, b->avail_idx % b->size, head);
	if (ret)
		return ret;
	return vqb_set_avail_idx(b, (uint16_t)(b->avail_idx + 1));
}

int vqb_send(struct vqb *b, const struct vqb_buf *bufs, unsigned int n, uint16_t *head)
{
	int ret = vqb_add_chain(b, bufs, n, head);
	if (ret)
		return ret;
	ret = vqb_publish(b, *head);
	if (ret)
		vqb_free_chain(b, *head);
	return ret;
}

int vqb_set_avail_flags(struct vqb *b, uint16_t flags)
{
	return put16(b, b->avail_gpa, flags);
}

int vqb_set_used_event(struct vqb *b, uint16_t v)
{
	return put16(b, b->avail_gpa + 4 + 2ull * b->size, v);
}

uint16_t vqb_used_idx(struct vqb *b)
{
	return get16(b, b->used_gpa + 2);
}

uint16_t vqb_used_flags(struct vqb *b)
{
	return get16(b, b->used_gpa);
}

uint16_t vqb_avail_event(struct vqb *b)
{
	return get16(b, b->used_gpa + 4 + 8ull * b->size);
}

int vqb_used_elem(struct vqb *b, uint16_t slot, uint32_t *id, uint32_t *len)
{
	struct virtq_used_elem e;
	if (b->size == 0)
		return -EINVAL;
	void *p = vqb_host(b, b->used_gpa + 4 + 8ull * (slot % b->size), sizeof(e));
	if (!p)
		return -EFAULT;
	memcpy(&e, p, sizeof(e));
	*id = le32toh(e.id);
	*len = le32toh(e.len);
	return 0;
}

int vqb_get_used(struct vqb *b, uint32_t *id, uint32_t *len)
{
	if (b->size == 0)
		return -EINVAL;
	if (vqb_used_idx(b) == b->last_used)
		return 0;
	/* the element is read after the idx that published it */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	int ret = vqb_used_elem(b, b->last_used, id, len);
	if (ret)
		return ret;
	b->last_used++;
	if (*id < b->ndesc && b->chain_len[*id])
		vqb_free_chain(b, (uint16_t)*id);
	return 1;
}

void vqb_fill_virtq(struct vqb *b, struct virtq *q, bool event_idx)
{
	virtq_init(q, &b->mem);
	q->size = b->size;
	q->desc_gpa = b->desc_gpa;
	q->avail_gpa = b->avail_gpa;
	q->used_gpa = b->used_gpa;
	q->event_idx = event_idx;
	b->event_idx = event_idx;
}

int vqb_attach(struct vqb *b, struct virtq *q, bool event_idx)
{
	vqb_fill_virtq(b, q, event_idx);
	return virtq_enable(q);
}

/* --- virtio-mmio driver side --- */

uint32_t vqb_mmio_read(struct virtio_transport *t, uint64_t off)
{
	uint8_t d[4];
	virtio_mmio_bus_ops.read(t, off, d, 4);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

void vqb_mmio_write(struct virtio_transport *t, uint64_t off, uint32_t v)
{
	uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	virtio_mmio_bus_ops.write(t, off, d, 4);
}

uint32_t vqb_mmio_negotiate(struct virtio_transport *t, uint64_t features)
{
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE;

	vqb_mmio_write(t, VIRTIO_MMIO_STATUS, 0);
	vqb_mmio_write(t, VIRTIO_MMIO_STATUS, st);
	st |= VIRTIO_STATUS_DRIVER;
	vqb_mmio_write(t, VIRTIO_MMIO_STATUS, st);
	vqb_mmio_write(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t offered = vqb_mmio_read(t, VIRTIO_MMIO_DEVICE_FEATURES);
	vqb_mmio_write(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)vqb_mmio_read(t, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	uint64_t acc = (features & offered) | (1ull << VIRTIO_F_VERSION_1);
	vqb_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vqb_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)acc);
	vqb_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vqb_mmio_write(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(acc >> 32));
	vqb_mmio_write(t, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_FEATURES_OK);
	return vqb_mmio_read(t, VIRTIO_MMIO_STATUS);
}

uint32_t vqb_mmio_setup_queue(struct virtio_transport *t, uint16_t qi, struct vqb *b)
{
	b->event_idx = t->driver_features & (1ull << VIRTIO_F_RING_EVENT_IDX);
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_SEL, qi);
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_NUM, b->size);
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)b->desc_gpa);
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(b->desc_gpa >> 32));
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)b->avail_gpa);
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(b->avail_gpa >> 32));
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)b->used_gpa);
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(b->used_gpa >> 32));
	vqb_mmio_write(t, VIRTIO_MMIO_QUEUE_READY, 1);
	return vqb_mmio_read(t, VIRTIO_MMIO_QUEUE_READY);
}

uint32_t vqb_mmio_driver_ok(struct virtio_transport *t)
{
	uint32_t st = vqb_mmio_read(t, VIRTIO_MMIO_STATUS) & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	vqb_mmio_write(t, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	return vqb_mmio_read(t, VIRTIO_MMIO_STATUS);
}
