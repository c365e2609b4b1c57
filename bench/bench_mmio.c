/* virtio-mmio transport micro-benchmark: register reads and writes per second
 * through virtio_mmio_bus_ops (the handlers a trapped MMIO access reaches), on a
 * live virtio-blk device (DRIVER_OK, queue 0 ready). */
#include "bench.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "vq_builder.h"

#include <string.h>

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (4ull << 20)

struct mmio_bench {
	struct vqb vq;
	struct virtio_blk *blk;
	struct virtio_transport *t;
	struct log log;
};

static const uint64_t read_regs[] = {
	VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_STATUS,        VIRTIO_MMIO_QUEUE_READY,
	VIRTIO_MMIO_CONFIG_GENERATION, VIRTIO_MMIO_CONFIG + 0,   VIRTIO_MMIO_CONFIG + 12,
	VIRTIO_MMIO_DEVICE_FEATURES,  VIRTIO_MMIO_QUEUE_NUM_MAX,
};
#define NR_READS (sizeof(read_regs) / sizeof(read_regs[0]))

static const struct {
	uint64_t off;
	uint32_t val;
} write_regs[] = {
	{ VIRTIO_MMIO_INTERRUPT_ACK, 0 },
	{ VIRTIO_MMIO_QUEUE_SEL, 0 },
	{ VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1 },
	{ VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0 },
};
#define NR_WRITES (sizeof(write_regs) / sizeof(write_regs[0]))

static void reads(void *ctx, uint64_t iters)
{
	struct mmio_bench *m = ctx;
	uint8_t d[4];
	uint64_t acc = 0;
	for (uint64_t it = 0; it < iters; it++)
		for (unsigned int i = 0; i < NR_READS; i++) {
			virtio_mmio_bus_ops.read(m->t, read_regs[i], d, 4);
			acc += d[0];
		}
	bench_keep(acc);
}

static void writes(void *ctx, uint64_t iters)
{
	struct mmio_bench *m = ctx;
	for (uint64_t it = 0; it < iters; it++)
		for (unsigned int i = 0; i < NR_WRITES; i++) {
			uint32_t v = write_regs[i].val;
			uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
					 (uint8_t)(v >> 24) };
			virtio_mmio_bus_ops.write(m->t, write_regs[i].off, d, 4);
		}
}

int main(int argc, char **argv)
{
	static struct mmio_bench m;
	char err[256] = "";

	bench_init(argc, argv);
	m.log.level = LOG_ERROR;
	struct virtio_blk_config cfg = { .path = bench_mem_disk(1 << 20), .serial = "bench" };
	if (virtio_blk_new(&m.blk, &cfg, &m.log, err, sizeof(err)))
		bench_die("virtio_blk_new: %s", err);
	if (vqb_init(&m.vq, RAM_GPA, RAM_SIZE, VIRTIO_BLK_QUEUE_SIZE))
		bench_die("vqb_init");
	m.t = virtio_mmio_new(&virtio_blk_ops, m.blk, &m.vq.mem, (struct irq_line){ 0 }, &m.log);
	if (!m.t)
		bench_die("virtio_mmio_new");
	if (!(vqb_mmio_negotiate(m.t, ~0ull) & VIRTIO_STATUS_FEATURES_OK) ||
	    vqb_mmio_setup_queue(m.t, 0, &m.vq) != 1 ||
	    !(vqb_mmio_driver_ok(m.t) & VIRTIO_STATUS_DRIVER_OK))
		bench_die("driver initialisation failed");
	if (vqb_mmio_read(m.t, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC)
		bench_die("bad magic");

	bench_rate("mmio_reg_reads_per_s", "accesses/s",
		   "32-bit reads via virtio_mmio_bus_ops (status, interrupt, queue, config space)",
		   reads, &m, NR_READS);
	bench_rate("mmio_reg_writes_per_s", "accesses/s",
		   "32-bit writes via virtio_mmio_bus_ops (InterruptACK, QueueSel, DeviceFeaturesSel)",
		   writes, &m, NR_WRITES);
	if (vqb_mmio_read(m.t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		bench_die("the device went to NEEDS_RESET during the benchmark");

	virtio_mmio_free(m.t);
	virtio_blk_free(m.blk);
	vqb_destroy(&m.vq);
	return 0;
}
