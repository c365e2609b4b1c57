/* Driver-side queue actions decoded from fuzz input (see vq_mutate.h). */
#include "vq_mutate.h"

#include <errno.h>

void vqm_init(struct vqm *m, struct vqb *b)
{
	uint64_t free = b->ram_gpa + b->ram_size - b->brk;
	uint64_t tab = free / 4 < 64 * 1024 ? (free / 4) & ~15ull : 64 * 1024;

	m->b = b;
	m->data_gpa = b->brk;
	m->data_size = free - tab;
	m->tab_gpa = b->brk + m->data_size;
	m->tab_size = tab;
	m->tab_next = 0;
}

/* 16-aligned room for an indirect table of len bytes, or VQB_BAD_GPA */
static uint64_t tab_alloc(struct vqm *m, uint64_t len)
{
	len = (len + 15) & ~15ull;
	if (len > m->tab_size)
		return VQB_BAD_GPA;
	if (m->tab_next + len > m->tab_size)
		m->tab_next = 0;
	uint64_t gpa = m->tab_gpa + m->tab_next;
	m->tab_next += len;
	return gpa;
}

uint64_t vqm_data_buf(struct vqm *m, struct fin *f, uint32_t len)
{
	if (!m->data_size)
		return m->b->ram_gpa;
	if (len > m->data_size)
		len = (uint32_t)m->data_size;
	uint64_t room = m->data_size - len;
	uint8_t how = fin_u8(f);
	uint64_t off;
	switch (how & 3) {
	case 0: /* start of the window */
		off = (how >> 2) * 64ull;
		break;
	case 1: /* flush with the end of RAM */
		off = room;
		break;
	default:
		off = fin_u16(f) * 8ull;
		break;
	}
	if (off > room)
		off = room ? off % (room + 1) : 0;
	if ((how & 0xe0) == 0xe0 && off < room) /* odd address now and then */
		off += 1;
	return m->data_gpa + off;
}

uint64_t vqm_addr(struct vqm *m, struct fin *f, uint32_t len)
{
	struct vqb *b = m->b;
	uint64_t end = b->ram_gpa + b->ram_size;
	uint8_t s = fin_u8(f);

	switch (s >> 4) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
		return vqm_data_buf(m, f, len);
	case 8:
		return b->ram_gpa + fin_u16(f);
	case 9:
		return end - (s & 15) - (len & 0xff);
	case 10:
		return b->ram_gpa - 1 - (s & 15);
	case 11:
		return (s & 1) ? end : end + 4096;
	case 12: {
		static const uint64_t v[] = { 0, 0x1000, 1ull << 48, UINT64_MAX, UINT64_MAX - 15,
					      UINT64_MAX - 2, 0x8000000000000000ull, 0xfffffffcull };
		return v[s & 7];
	}
	case 13: { /* the rings themselves */
		uint64_t r[] = { b->desc_gpa, b->avail_gpa, b->used_gpa, b->ram_gpa };
		return r[s & 3];
	}
	default:
		return fin_u64(f);
	}
}

uint16_t vqm_index(struct vqm *m, struct fin *f)
{
	uint16_t size = m->b->size;
	uint8_t s = fin_u8(f);
	switch (s >> 4) {
	case 12:
		return size;
	case 13:
		return (uint16_t)(size - 1);
	case 14:
		return 0xffff;
	case 15:
		return fin_u16(f);
	default:
		return size ? (uint16_t)(fin_u8(f) % size) : 0;
	}
}

int vqm_add(struct vqm *m, const struct vqb_buf *bufs, unsigned int n, bool indirect,
	    uint16_t *head)
{
	if (!indirect)
		return vqb_add_chain(m->b, bufs, n, head);
	if (n == 0)
		return -EINVAL;
	uint64_t table = tab_alloc(m, 16ull * n);
	if (table == VQB_BAD_GPA)
		return -ENOSPC;
	for (unsigned int k = 0; k < n; k++) {
		uint16_t flags = (bufs[k].writable ? VIRTQ_DESC_F_WRITE : 0) |
				 (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		vqb_write_desc_at(m->b, table + 16ull * k, bufs[k].gpa, bufs[k].len, flags,
				  k + 1 < n ? (uint16_t)(k + 1) : 0);
	}
	uint16_t idx;
	int r = vqb_alloc_desc(m->b, &idx);
	if (r)
		return r;
	r = vqb_write_desc(m->b, idx, table, (uint32_t)(16ull * n), VIRTQ_DESC_F_INDIRECT, 0);
	if (r) {
		vqb_free_chain(m->b, idx);
		return r;
	}
	*head = idx;
	return 0;
}

int vqm_build_chain(struct vqm *m, struct fin *f, uint32_t typical, uint32_t maxlen,
		    uint16_t *head, struct vqm_chain *out)
{
	uint8_t shape = fin_u8(f);
	unsigned int r = shape & 3, w = (shape >> 2) & 3;
	bool indirect = shape & 0x10, zero = shape & 0x20;
	struct vqm_chain c = { 0 };

	if (r + w == 0)
		r = 1;
	for (unsigned int i = 0; i < r + w; i++) {
		uint32_t len = fin_len32(f, typical);
		if (len > maxlen)
			len = maxlen;
		if (len == 0)
			len = 1;
		uint64_t gpa = vqm_data_buf(m, f, len);
		bool writable = i >= r;
		if (!writable) {
			uint8_t tmp[64];
			size_t k = fin_bytes(f, tmp, len < 64 ? len : 64);
			void *h = vqb_host(m->b, gpa, len < 64 ? len : 64);
			if (h && k)
				memcpy(h, tmp, k);
		}
		c.bufs[c.n++] = (struct vqb_buf){ gpa, len, writable };
		if (zero && i == 0 && c.n < 8) /* a zero-length descriptor in the middle */
			c.bufs[c.n++] = (struct vqb_buf){ 0, 0, writable };
	}
	if (out)
		*out = c;
	return vqm_add(m, c.bufs, c.n, indirect, head);
}

static void mutate_desc_field(struct vqm *m, struct fin *f)
{
	uint16_t idx = vqm_index(m, f);
	struct vqb_desc d;
	if (vqb_read_desc(m->b, idx, &d))
		return;
	uint8_t what = fin_u8(f);
	switch (what & 7) {
	case 0:
		d.flags ^= (uint16_t)(1u << ((what >> 3) & 3)); /* NEXT/WRITE/INDIRECT/bit3 */
		break;
	case 1:
		d.next = vqm_index(m, f);
		break;
	case 2:
		d.len = fin_len32(f, d.len ? d.len : 64);
		break;
	case 3:
		d.addr = vqm_addr(m, f, d.len);
		break;
	case 4:
		d.addr += (int8_t)fin_u8(f);
		break;
	case 5:
		d.flags = fin_u16(f);
		break;
	case 6: /* loop onto itself */
		d.flags |= VIRTQ_DESC_F_NEXT;
		d.next = idx;
		break;
	default:
		d.flags &= (uint16_t)~VIRTQ_DESC_F_NEXT;
		break;
	}
	vqb_write_desc(m->b, idx, d.addr, d.len, d.flags, d.next);
}

static void raw_indirect(struct vqm *m, struct fin *f)
{
	struct vqb *b = m->b;
	uint32_t n = fin_u8(f) % 20; /* entries written */
	uint64_t table = tab_alloc(m, 16 * (n ? n : 1));
	if (table == VQB_BAD_GPA)
		table = vqm_data_buf(m, f, 16 * (n ? n : 1));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t kind = fin_u8(f);
		uint32_t len = fin_len32(f, 64);
		uint64_t addr = (kind & 0x80) ? vqm_addr(m, f, len) : vqm_data_buf(m, f, len);
		uint16_t flags = kind & 0x0f;
		uint16_t next = (kind & 0x40) ? fin_u16(f) : (uint16_t)(i + 1);
		vqb_write_desc_at(b, table + 16ull * i, addr, len, flags, next);
	}
	uint8_t how = fin_u8(f);
	uint32_t tlen = (how & 0x80) ? fin_len32(f, 16 * n) : 16 * n;
	uint16_t flags = VIRTQ_DESC_F_INDIRECT | (how & 3); /* maybe NEXT/WRITE too */
	uint16_t idx = vqm_index(m, f);
	vqb_write_desc(b, idx, table, tlen, flags, vqm_index(m, f));
	if (how & 0x40)
		vqb_publish(b, idx);
}

void vqm_mutate(struct vqm *m, struct fin *f)
{
	struct vqb *b = m->b;
	uint8_t kind = fin_u8(f);

	switch (kind % 10) {
	case 0: { /* raw descriptor */
		uint16_t idx = vqm_index(m, f);
		uint32_t len = fin_len32(f, 64);
		uint64_t addr = vqm_addr(m, f, len);
		uint16_t flags = (kind & 0x80) ? fin_u16(f) : (uint16_t)(fin_u8(f) & 7);
		vqb_write_desc(b, idx, addr, len, flags, vqm_index(m, f));
		if (kind & 0x40)
			vqb_publish(b, idx);
		break;
	}
	case 1:
		mutate_desc_field(m, f);
		break;
	case 2: { /* avail ring entry */
		uint32_t slot = (kind & 0x80) ? fin_u16(f) : (b->size ? b->avail_idx % b->size : 0);
		vqb_set_avail_entry(b, slot, vqm_index(m, f));
		break;
	}
	case 3: { /* avail idx: relative to the driver's shadow, or raw */
		uint16_t v = (kind & 0x80) ? fin_u16(f) : (uint16_t)(b->avail_idx + (int8_t)fin_u8(f));
		vqb_set_avail_idx(b, v);
		break;
	}
	case 4:
		vqb_set_avail_flags(b, fin_u16(f));
		break;
	case 5:
		vqb_set_used_event(b, (kind & 0x80) ? fin_u16(f)
						    : (uint16_t)(b->last_used + (int8_t)fin_u8(f)));
		break;
	case 6:
		raw_indirect(m, f);
		break;
	case 7:
		vqb_publish(b, vqm_index(m, f));
		break;
	case 8: { /* raw bytes somewhere in RAM (rings included) */
		uint8_t tmp[32];
		uint8_t where = fin_u8(f);
		uint64_t base[] = { b->desc_gpa, b->avail_gpa, b->used_gpa, m->data_gpa };
		uint64_t gpa = base[where & 3] + fin_u16(f) % 4096;
		size_t k = fin_bytes(f, tmp, 1 + (where >> 3) % 32);
		void *h = vqb_host(b, gpa, k);
		if (h)
			memcpy(h, tmp, k);
		break;
	}
	default: { /* a valid chain, published: keeps the queue busy */
		uint16_t head;
		if (vqm_build_chain(m, f, 64, 4096, &head, NULL) == 0)
			vqb_publish(b, head);
		break;
	}
	}
}
