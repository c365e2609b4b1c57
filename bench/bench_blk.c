/* virtio-blk micro-benchmark: 4 KiB read requests per second through the whole
 * device path (QueueNotify write via virtio_mmio_bus_ops -> virtio-blk pops,
 * preadv from an in-memory image, pushes, interrupt decision), at queue depth 1
 * and 32. vq_builder is the driver. */
#include "bench.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "vq_builder.h"

#include <endian.h>
#include <string.h>

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (8ull << 20)
#define DISK_SIZE (32ull << 20)
#define MAX_QD 32
#define SECTORS_PER_REQ (4096 / VIRTIO_BLK_SECTOR_SIZE)
#define ST_NONE 0xa5

struct blk_bench {
	struct vqb vq;
	struct virtio_blk *blk;
	struct virtio_transport *t;
	struct log log;
	unsigned int qd;
	uint16_t heads[MAX_QD];
	uint8_t *hdr[MAX_QD]; /* host views of the request headers and status bytes */
	uint8_t *status[MAX_QD];
	uint64_t next_sector;
	uint64_t capacity;
};

static void kick(struct blk_bench *b)
{
	uint8_t d[4] = { 0, 0, 0, 0 }; /* queue 0 */
	virtio_mmio_bus_ops.write(b->t, VIRTIO_MMIO_QUEUE_NOTIFY, d, 4);
}

static void requests(void *ctx, uint64_t iters)
{
	struct blk_bench *b = ctx;
	for (uint64_t it = 0; it < iters; it++) {
		for (unsigned int i = 0; i < b->qd; i++) {
			uint64_t s = htole64(b->next_sector);
			memcpy(b->hdr[i] + 8, &s, 8);
			b->next_sector = (b->next_sector + SECTORS_PER_REQ) % b->capacity;
			*b->status[i] = ST_NONE;
			vqb_publish(&b->vq, b->heads[i]);
		}
		kick(b);
		uint32_t id, len;
		for (unsigned int i = 0; i < b->qd; i++) {
			/* the device completes in order; the chains stay built */
			if (vqb_used_elem(&b->vq, b->vq.last_used, &id, &len) || id != b->heads[i] ||
			    len != 4097 || *b->status[i] != VIRTIO_BLK_S_OK)
				bench_die("request %u: id %u len %u status %u", i, id, len,
					  *b->status[i]);
			b->vq.last_used++;
		}
		if (vqb_used_idx(&b->vq) != b->vq.last_used)
			bench_die("used idx %u, expected %u", vqb_used_idx(&b->vq), b->vq.last_used);
	}
}

static void setup(struct blk_bench *b, const char *path, unsigned int qd)
{
	char err[256] = "";
	memset(b, 0, sizeof(*b));
	b->log.level = LOG_ERROR;
	b->qd = qd;
	struct virtio_blk_config cfg = { .path = path, .serial = "bench" };
	if (virtio_blk_new(&b->blk, &cfg, &b->log, err, sizeof(err)))
		bench_die("virtio_blk_new: %s", err);
	b->capacity = virtio_blk_capacity(b->blk);
	if (vqb_init(&b->vq, RAM_GPA, RAM_SIZE, VIRTIO_BLK_QUEUE_SIZE))
		bench_die("vqb_init");
	b->t = virtio_mmio_new(&virtio_blk_ops, b->blk, &b->vq.mem, (struct irq_line){ 0 }, &b->log);
	if (!b->t)
		bench_die("virtio_mmio_new");
	/* what Linux negotiates: EVENT_IDX and INDIRECT included */
	if (!(vqb_mmio_negotiate(b->t, ~0ull) & VIRTIO_STATUS_FEATURES_OK) ||
	    vqb_mmio_setup_queue(b->t, 0, &b->vq) != 1 ||
	    !(vqb_mmio_driver_ok(b->t) & VIRTIO_STATUS_DRIVER_OK))
		bench_die("driver initialisation failed");
	for (unsigned int i = 0; i < qd; i++) {
		uint8_t h[16] = { 0 }; /* type VIRTIO_BLK_T_IN (0), sector set per request */
		uint64_t hdr = vqb_alloc_copy(&b->vq, h, sizeof(h));
		uint64_t data = vqb_alloc(&b->vq, 4096, 4096);
		uint64_t st = vqb_alloc(&b->vq, 1, 1);
		if (hdr == VQB_BAD_GPA || data == VQB_BAD_GPA || st == VQB_BAD_GPA)
			bench_die("guest RAM for the requests");
		struct vqb_buf bufs[] = { { hdr, 16, false }, { data, 4096, true }, { st, 1, true } };
		if (vqb_add_chain(&b->vq, bufs, 3, &b->heads[i]))
			bench_die("vqb_add_chain");
		b->hdr[i] = vqb_host(&b->vq, hdr, 16);
		b->status[i] = vqb_host(&b->vq, st, 1);
	}
}

static void teardown(struct blk_bench *b)
{
	struct virtio_blk_stats st;
	virtio_blk_get_stats(b->blk, &st);
	if (st.ioerr || st.unsupp)
		bench_die("%llu I/O errors, %llu unsupported", (unsigned long long)st.ioerr,
			  (unsigned long long)st.unsupp);
	virtio_mmio_free(b->t);
	virtio_blk_free(b->blk);
	vqb_destroy(&b->vq);
}

int main(int argc, char **argv)
{
	static struct blk_bench b;
	bench_init(argc, argv);
	const char *path = bench_mem_disk(DISK_SIZE);

	setup(&b, path, 1);
	bench_rate("blk_4k_read_qd1_req_per_s", "req/s",
		   "virtio-blk 4 KiB sequential reads, 1 request per QueueNotify, 32 MiB memfd image",
		   requests, &b, 1);
	teardown(&b);

	setup(&b, path, 32);
	bench_rate("blk_4k_read_qd32_req_per_s", "req/s",
		   "virtio-blk 4 KiB sequential reads, 32 requests per QueueNotify, 32 MiB memfd image",
		   requests, &b, 32);
	teardown(&b);
	return 0;
}
