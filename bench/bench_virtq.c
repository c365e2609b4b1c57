/* Virtqueue micro-benchmarks: device-side virtq_pop + virtq_push throughput for
 * 1-descriptor, 3-descriptor and indirect chains (vq_builder as the driver), and
 * the guest_mem_ptr translation rate. */
#include "bench.h"
#include "core/guest_mem.h"
#include "virtio/queue.h"
#include "vq_builder.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (8ull << 20)
#define QSIZE 256
#define BATCH 64 /* chains published per driver round (one notification's worth) */

enum chain_kind { CHAIN_1DESC, CHAIN_3DESC, CHAIN_INDIRECT };

struct vq_bench {
	struct vqb b;
	struct virtq q;
	uint16_t heads[BATCH];
	uint32_t expect_written; /* bytes each chain can take (pushed as written) */
};

/*
 * The chains are built once (descriptors stay allocated in the builder) and the
 * same heads are made available again every round, so the driver's per-chain
 * cost is one avail-ring store: the device side (validation, translation, used
 * publication) dominates.
 */
static void vq_setup(struct vq_bench *v, enum chain_kind kind, bool event_idx)
{
	memset(v, 0, sizeof(*v));
	if (vqb_init(&v->b, RAM_GPA, RAM_SIZE, QSIZE))
		bench_die("vqb_init failed");
	int r = vqb_attach(&v->b, &v->q, event_idx);
	if (r)
		bench_die("vqb_attach: %s", virtq_strerror(r));
	for (unsigned int i = 0; i < BATCH; i++) {
		uint64_t hdr = vqb_alloc(&v->b, 16, 16);
		uint64_t data = vqb_alloc(&v->b, 4096, 4096);
		uint64_t st = vqb_alloc(&v->b, 1, 1);
		if (hdr == VQB_BAD_GPA || data == VQB_BAD_GPA || st == VQB_BAD_GPA)
			bench_die("guest RAM for the buffers");
		struct vqb_buf three[] = { { hdr, 16, false }, { data, 4096, true }, { st, 1, true } };
		struct vqb_buf one[] = { { data, 4096, true } };
		switch (kind) {
		case CHAIN_1DESC:
			r = vqb_add_chain(&v->b, one, 1, &v->heads[i]);
			v->expect_written = 4096;
			break;
		case CHAIN_3DESC:
			r = vqb_add_chain(&v->b, three, 3, &v->heads[i]);
			v->expect_written = 4097;
			break;
		case CHAIN_INDIRECT:
			r = vqb_add_indirect(&v->b, three, 3, &v->heads[i], NULL);
			v->expect_written = 4097;
			break;
		}
		if (r)
			bench_die("building chain %u: %d", i, r);
	}
}

static void vq_teardown(struct vq_bench *v)
{
	virtq_reset(&v->q);
	vqb_destroy(&v->b);
}

static void vq_round(void *ctx, uint64_t iters)
{
	struct vq_bench *v = ctx;
	struct virtq_chain c;
	uint64_t sum = 0;

	for (uint64_t it = 0; it < iters; it++) {
		for (unsigned int i = 0; i < BATCH; i++)
			vqb_publish(&v->b, v->heads[i]);
		unsigned int n = 0;
		int r;
		while ((r = virtq_pop(&v->q, &c)) == 1) {
			sum += c.writable_len + c.nr_bufs;
			r = virtq_push(&v->q, c.head, c.writable_len);
			if (r)
				bench_die("virtq_push: %s", virtq_strerror(r));
			n++;
		}
		if (r < 0)
			bench_die("virtq_pop: %s", virtq_strerror(r));
		if (n != BATCH)
			bench_die("popped %u chains, published %u", n, BATCH);
		sum += virtq_needs_interrupt(&v->q);
		/* the driver sees every chain completed */
		if (vqb_used_idx(&v->b) != v->q.used_idx)
			bench_die("used idx %u, device says %u", vqb_used_idx(&v->b), v->q.used_idx);
	}
	bench_keep(sum);
}

static void bench_chains(const char *metric, const char *what, enum chain_kind kind)
{
	struct vq_bench v;
	vq_setup(&v, kind, false);
	/* check the chain shape once before timing */
	struct virtq_chain c;
	vqb_publish(&v.b, v.heads[0]);
	if (virtq_pop(&v.q, &c) != 1)
		bench_die("%s: first pop failed", metric);
	unsigned int want_bufs = kind == CHAIN_1DESC ? 1 : 3;
	uint32_t want_readable = kind == CHAIN_1DESC ? 0 : 16;
	if (c.nr_bufs != want_bufs || c.readable_len != want_readable ||
	    c.writable_len != v.expect_written)
		bench_die("%s: chain of %u buffers, %u+%u bytes", metric, c.nr_bufs, c.readable_len,
			  c.writable_len);
	if (virtq_push(&v.q, c.head, c.writable_len))
		bench_die("%s: first push", metric);
	bench_rate(metric, "chains/s", what, vq_round, &v, BATCH);
	vq_teardown(&v);
}

/* ---- guest_mem_ptr ------------------------------------------------------------------ */

#define NR_LOOKUPS 4096

struct gm_bench {
	struct guest_mem gm;
	uint64_t gpa[NR_LOOKUPS];
	uint32_t len[NR_LOOKUPS];
	void *maps[GUEST_MEM_MAX_REGIONS];
	uint64_t map_len;
};

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* nregions regions of 64 MiB each, 1 GiB apart from RAM_GPA (reserved address space
 * only: the lookups never touch memory); lookups spread over all regions. */
static void gm_setup(struct gm_bench *g, unsigned int nregions)
{
	memset(g, 0, sizeof(*g));
	guest_mem_init(&g->gm);
	g->map_len = 64ull << 20;
	for (unsigned int i = 0; i < nregions; i++) {
		g->maps[i] = mmap(NULL, g->map_len, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (g->maps[i] == MAP_FAILED)
			bench_die("mmap");
		if (guest_mem_add(&g->gm, RAM_GPA + ((uint64_t)i << 30), g->map_len, g->maps[i]))
			bench_die("guest_mem_add");
	}
	uint64_t s = 0x9e3779b97f4a7c15ull;
	for (unsigned int i = 0; i < NR_LOOKUPS; i++) {
		unsigned int reg = (unsigned int)(rng(&s) % nregions);
		g->len[i] = 16u << (rng(&s) % 9); /* 16 B .. 4 KiB */
		g->gpa[i] = RAM_GPA + ((uint64_t)reg << 30) + rng(&s) % (g->map_len - g->len[i]);
	}
}

static void gm_teardown(struct gm_bench *g, unsigned int nregions)
{
	for (unsigned int i = 0; i < nregions; i++)
		munmap(g->maps[i], g->map_len);
}

static void gm_round(void *ctx, uint64_t iters)
{
	struct gm_bench *g = ctx;
	uintptr_t acc = 0;
	for (uint64_t it = 0; it < iters; it++)
		for (unsigned int i = 0; i < NR_LOOKUPS; i++) {
			void *p = guest_mem_ptr(&g->gm, g->gpa[i], g->len[i]);
			if (!p)
				bench_die("lookup %u failed", i);
			acc += (uintptr_t)p;
		}
	bench_keep(acc);
}

static void bench_gm(const char *metric, const char *what, unsigned int nregions)
{
	static struct gm_bench g;
	gm_setup(&g, nregions);
	bench_rate(metric, "lookups/s", what, gm_round, &g, NR_LOOKUPS);
	gm_teardown(&g, nregions);
}

int main(int argc, char **argv)
{
	bench_init(argc, argv);
	bench_chains("virtq_1desc_chains_per_s",
		     "pop+push of 1-descriptor chains (4 KiB writable), batches of 64, queue size 256",
		     CHAIN_1DESC);
	bench_chains("virtq_3desc_chains_per_s",
		     "pop+push of 3-descriptor chains (16 B hdr, 4 KiB data, 1 B status), batches of 64",
		     CHAIN_3DESC);
	bench_chains("virtq_indirect_chains_per_s",
		     "pop+push of 1 INDIRECT descriptor -> 3-entry table, batches of 64",
		     CHAIN_INDIRECT);
	bench_gm("guest_mem_ptr_1region_per_s",
		 "guest_mem_ptr on 1 region (the VM layout), 16 B..4 KiB ranges", 1);
	bench_gm("guest_mem_ptr_8regions_per_s",
		 "guest_mem_ptr on a full table of 8 regions, random region", GUEST_MEM_MAX_REGIONS);
	return 0;
}
