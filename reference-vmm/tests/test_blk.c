/* Unit tests for virtio/blk.c through the real virtio-mmio transport and the
 * driver-side queue builder: I/O round trips, flush, get-id, discard, write-zeroes,
 * read-only, bounds, malformed requests (policy in blk.h), config and features. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_helpers.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "vq_builder.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define RAM_GPA 0x40000000ull
#define RAM_SIZE (16ull << 20)
#define QSIZE 256
#define SECT VIRTIO_BLK_SECTOR_SIZE
#define ALL_FEATURES (~0ull)
#define ST_NONE 0xa5 /* what a status byte holds before the device answers */

/* ---- fixture: one disk image, one device, one transport, one queue ------------------- */

struct disk {
	char path[256];
	struct vqb vq;
	struct virtio_blk *blk;
	struct virtio_transport *t;
	struct unit_irq_rec irq;
	struct unit_log_capture lc;
	uint64_t acked; /* features the driver accepted */
};

struct fx {
	char dir[256];
	struct disk d;
};

static void make_dir(char *dir, size_t len, const char *base)
{
	snprintf(dir, len, "%s/test_blk.XXXXXX", base);
	assert_non_null(mkdtemp(dir));
}

static const char *tmp_base(void)
{
	const char *t = getenv("TMPDIR");
	return t && t[0] ? t : "/tmp";
}

static uint8_t pattern(unsigned int seed, uint64_t off)
{
	return (uint8_t)(seed * 31u + off * 7u + (off >> 9) + 1u);
}

static void fill_pattern(uint8_t *p, size_t len, unsigned int seed, uint64_t off0)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(seed, off0 + i);
}

/* Create an image of `size` bytes filled with pattern(seed) (seed 0: zeros, sparse). */
static void make_image(const char *path, uint64_t size, unsigned int seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (seed) {
		uint8_t buf[8192];
		for (uint64_t off = 0; off < size; off += sizeof(buf)) {
			size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
			fill_pattern(buf, n, seed, off);
			assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
		}
		assert_int_equal(fsync(fd), 0);
	}
	close(fd);
}

static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static uint8_t *file_slurp(const char *path, size_t *len)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	uint8_t *p = malloc((size_t)st.st_size + 1);
	assert_non_null(p);
	if (st.st_size)
		file_read(path, 0, p, (size_t)st.st_size);
	*len = (size_t)st.st_size;
	return p;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static uint64_t blocks_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks;
}

/* Bring the driver up on an open device: negotiate `features`, set up the queue. */
static void disk_driver_init(struct disk *d, uint64_t features)
{
	uint32_t st = vqb_mmio_negotiate(d->t, features);
	assert_true(st & VIRTIO_STATUS_FEATURES_OK);
	d->acked = d->t->driver_features;
	assert_int_equal(vqb_mmio_read(d->t, VIRTIO_MMIO_QUEUE_NUM_MAX), QSIZE);
	assert_int_equal(vqb_mmio_setup_queue(d->t, 0, &d->vq), 1);
	st = vqb_mmio_driver_ok(d->t);
	assert_int_equal(st, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* Open path as a device on a fresh queue; returns virtio_blk_new's result. */
static int disk_open(struct disk *d, const char *path, bool ro, const char *serial,
		     uint64_t features)
{
	struct virtio_blk_config cfg = { .path = path, .read_only = ro, .serial = serial };
	char err[256] = "";

	snprintf(d->path, sizeof(d->path), "%s", path);
	assert_int_equal(unit_log_capture_open(&d->lc, LOG_DEBUG), 0);
	int r = virtio_blk_new(&d->blk, &cfg, &d->lc.log, err, sizeof(err));
	if (r)
		return r;
	assert_int_equal(vqb_init(&d->vq, RAM_GPA, RAM_SIZE, QSIZE), 0);
	unit_irq_rec_init(&d->irq);
	d->t = virtio_mmio_new(&virtio_blk_ops, d->blk, &d->vq.mem,
			       unit_irq_rec_line(&d->irq, 7), &d->lc.log);
	assert_non_null(d->t);
	disk_driver_init(d, features);
	return 0;
}

static void disk_close(struct disk *d)
{
	virtio_mmio_free(d->t);
	virtio_blk_free(d->blk);
	if (d->vq.map)
		vqb_destroy(&d->vq);
	unit_log_capture_close(&d->lc);
	memset(d, 0, sizeof(*d));
}

/* Re-initialise the driver side after a device reset: fresh rings, new negotiation. */
static void disk_reinit(struct disk *d, uint64_t features)
{
	vqb_mmio_write(d->t, VIRTIO_MMIO_STATUS, 0);
	vqb_destroy(&d->vq);
	assert_int_equal(vqb_init(&d->vq, RAM_GPA, RAM_SIZE, QSIZE), 0);
	disk_driver_init(d, features);
}

static uint32_t dev_status(struct disk *d)
{
	return vqb_mmio_read(d->t, VIRTIO_MMIO_STATUS);
}

static bool needs_reset(struct disk *d)
{
	return dev_status(d) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

static void kick(struct disk *d)
{
	vqb_mmio_write(d->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static struct virtio_blk_stats stats(struct disk *d)
{
	struct virtio_blk_stats s;
	virtio_blk_get_stats(d->blk, &s);
	return s;
}

static uint64_t hdr_gpa(struct disk *d, uint32_t type, uint64_t sector)
{
	uint8_t h[16];
	uint32_t t = htole32(type);
	uint64_t s = htole64(sector);
	memset(h, 0, sizeof(h));
	memcpy(h, &t, 4);
	memcpy(h + 8, &s, 8);
	uint64_t g = vqb_alloc_copy(&d->vq, h, sizeof(h));
	assert_true(g != VQB_BAD_GPA);
	return g;
}

static uint64_t status_gpa(struct disk *d)
{
	uint64_t g = vqb_alloc(&d->vq, 1, 1);
	assert_true(g != VQB_BAD_GPA);
	*(uint8_t *)vqb_host(&d->vq, g, 1) = ST_NONE;
	return g;
}

static uint8_t peek8(struct disk *d, uint64_t gpa)
{
	return *(uint8_t *)vqb_host(&d->vq, gpa, 1);
}

/* Wait-free completion: the next used element must be head. */
static uint32_t expect_used(struct disk *d, uint16_t head)
{
	uint32_t id = 0xffff, len = 0;
	assert_int_equal(vqb_get_used(&d->vq, &id, &len), 1);
	assert_int_equal(id, head);
	return len;
}

static bool is_write_type(uint32_t type)
{
	return type != VIRTIO_BLK_T_IN && type != VIRTIO_BLK_T_GET_ID;
}

/*
 * One request: header, `len` bytes of data split over nseg buffers (readable
 * for OUT-like types, writable for IN / GET_ID), then a status byte. Kick, and
 * return the status; *used gets the used length. Data read by the device is
 * copied back into buf. Guest RAM used for the request is given back.
 */
static uint8_t xfer(struct disk *d, uint32_t type, uint64_t sector, void *buf, uint32_t len,
		    unsigned int nseg, uint32_t *used)
{
	uint64_t brk = d->vq.brk;
	struct vqb_buf bufs[QSIZE];
	uint64_t data = VQB_BAD_GPA;
	unsigned int n = 0;
	bool wr = !is_write_type(type);

	bufs[n++] = (struct vqb_buf){ hdr_gpa(d, type, sector), 16, false };
	if (len) {
		assert_true(nseg >= 1 && nseg <= QSIZE - 2);
		data = buf ? vqb_alloc_copy(&d->vq, buf, len) : vqb_alloc(&d->vq, len, 8);
		assert_true(data != VQB_BAD_GPA);
		uint32_t piece = len / nseg, off = 0;
		for (unsigned int i = 0; i < nseg; i++) {
			uint32_t l = i == nseg - 1 ? len - off : piece;
			bufs[n++] = (struct vqb_buf){ data + off, l, wr };
			off += l;
		}
	}
	uint64_t st = status_gpa(d);
	bufs[n++] = (struct vqb_buf){ st, 1, true };

	uint16_t head;
	assert_int_equal(vqb_send(&d->vq, bufs, n, &head), 0);
	kick(d);
	uint32_t u = expect_used(d, head);
	if (used)
		*used = u;
	if (wr && len)
		memcpy(buf, vqb_host(&d->vq, data, len), len);
	uint8_t s = peek8(d, st);
	d->vq.brk = brk;
	return s;
}

static uint8_t rd(struct disk *d, uint64_t sector, void *buf, uint32_t len, unsigned int nseg)
{
	uint32_t used;
	uint8_t s = xfer(d, VIRTIO_BLK_T_IN, sector, buf, len, nseg, &used);
	if (s == VIRTIO_BLK_S_OK)
		assert_int_equal(used, len + 1);
	return s;
}

static uint8_t wr(struct disk *d, uint64_t sector, const void *buf, uint32_t len,
		  unsigned int nseg)
{
	uint32_t used;
	uint8_t s = xfer(d, VIRTIO_BLK_T_OUT, sector, (void *)buf, len, nseg, &used);
	assert_int_equal(used, 1);
	return s;
}

struct seg {
	uint64_t sector;
	uint32_t num;
	uint32_t flags;
};

static uint8_t ranges(struct disk *d, uint32_t type, const struct seg *segs, unsigned int n)
{
	uint8_t raw[64 * 16];
	uint32_t used;
	assert_true(n <= 64);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t s = htole64(segs[i].sector);
		uint32_t num = htole32(segs[i].num), fl = htole32(segs[i].flags);
		memcpy(raw + 16 * i, &s, 8);
		memcpy(raw + 16 * i + 8, &num, 4);
		memcpy(raw + 16 * i + 12, &fl, 4);
	}
	uint8_t st = xfer(d, type, 0, raw, 16 * n, 1, &used);
	assert_int_equal(used, 1);
	return st;
}

static int fx_setup_size(void **state, uint64_t size, bool ro, const char *serial,
			 uint64_t features)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	make_dir(f->dir, sizeof(f->dir), tmp_base());
	char path[300];
	snprintf(path, sizeof(path), "%s/disk.img", f->dir);
	make_image(path, size, 1);
	assert_int_equal(disk_open(&f->d, path, ro, serial, features), 0);
	*state = f;
	return 0;
}

static int fx_setup(void **state)
{
	return fx_setup_size(state, 1 << 20, false, "serial-0001", ALL_FEATURES);
}

static int fx_setup_ro(void **state)
{
	return fx_setup_size(state, 1 << 20, true, "ro-disk", ALL_FEATURES);
}

static void rm_dir(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	disk_close(&f->d);
	rm_dir(f->dir);
	free(f);
	return 0;
}

/* ---- creation ------------------------------------------------------------------------ */

static void test_new_errors(void **state)
{
	(void)state;
	char dir[256], path[300], err[256];
	struct virtio_blk *b = (void *)1;
	struct virtio_blk_config cfg = { 0 };

	make_dir(dir, sizeof(dir), tmp_base());

	assert_int_equal(virtio_blk_new(&b, NULL, NULL, err, sizeof(err)), -EINVAL);
	assert_null(b);
	assert_int_equal(virtio_blk_new(&b, &cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "path"));

	snprintf(path, sizeof(path), "%s/missing.img", dir);
	cfg.path = path;
	assert_int_equal(virtio_blk_new(&b, &cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	cfg.read_only = true;
	assert_int_equal(virtio_blk_new(&b, &cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));

	/* a directory, a character device */
	cfg.path = dir;
	assert_int_equal(virtio_blk_new(&b, &cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, dir));
	cfg.path = "/dev/null";
	assert_int_equal(virtio_blk_new(&b, &cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/dev/null"));
	assert_non_null(strstr(err, "not a regular file"));

	/* size not a multiple of 512: rejected, never rounded */
	snprintf(path, sizeof(path), "%s/odd.img", dir);
	make_image(path, 1000, 1);
	cfg.path = path;
	cfg.read_only = false;
	assert_int_equal(virtio_blk_new(&b, &cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "1000"));
	assert_null(b);

	/* serial longer than 20 bytes */
	snprintf(path, sizeof(path), "%s/ok.img", dir);
	make_image(path, 4096, 1);
	cfg.serial = "123456789012345678901";
	assert_int_equal(virtio_blk_new(&b, &cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "serial"));
	assert_null(b);

	/* exactly 20 bytes is fine; a NULL err buffer is fine */
	cfg.serial = "12345678901234567890";
	assert_int_equal(virtio_blk_new(&b, &cfg, NULL, NULL, 0), 0);
	assert_non_null(b);
	assert_int_equal(virtio_blk_capacity(b), 8);
	assert_false(virtio_blk_read_only(b));
	virtio_blk_free(b);
	virtio_blk_free(NULL);
	rm_dir(dir);
}

static void test_image_lock(void **state)
{
	(void)state;
	char dir[256], path[300], err[256];
	struct virtio_blk *a, *b, *c;
	struct virtio_blk_config rw = { 0 }, ro = { 0 };

	make_dir(dir, sizeof(dir), tmp_base());
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	make_image(path, 8192, 1);
	rw.path = ro.path = path;
	ro.read_only = true;

	/* a writer excludes everyone else */
	assert_int_equal(virtio_blk_new(&a, &rw, NULL, err, sizeof(err)), 0);
	assert_int_equal(virtio_blk_new(&b, &rw, NULL, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, path));
	assert_int_equal(virtio_blk_new(&b, &ro, NULL, err, sizeof(err)), -EBUSY);
	virtio_blk_free(a);

	/* readers share */
	assert_int_equal(virtio_blk_new(&a, &ro, NULL, err, sizeof(err)), 0);
	assert_int_equal(virtio_blk_new(&b, &ro, NULL, err, sizeof(err)), 0);
	assert_true(virtio_blk_read_only(b));
	assert_int_equal(virtio_blk_new(&c, &rw, NULL, err, sizeof(err)), -EBUSY);
	virtio_blk_free(a);
	virtio_blk_free(b);

	/* released on free */
	assert_int_equal(virtio_blk_new(&c, &rw, NULL, err, sizeof(err)), 0);
	virtio_blk_free(c);
	rm_dir(dir);
}

static void test_empty_image(void **state)
{
	(void)state;
	char dir[256], path[300];
	struct disk d = { 0 };
	uint8_t buf[SECT];

	make_dir(dir, sizeof(dir), tmp_base());
	snprintf(path, sizeof(path), "%s/empty.img", dir);
	make_image(path, 0, 0);
	assert_int_equal(disk_open(&d, path, false, NULL, ALL_FEATURES), 0);
	assert_int_equal(virtio_blk_capacity(d.blk), 0);
	assert_non_null(strstr(unit_log_capture_text(&d.lc), "empty"));
	assert_int_equal(rd(&d, 0, buf, SECT, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(wr(&d, 0, buf, SECT, 1), VIRTIO_BLK_S_IOERR);
	/* zero-length transfer at sector 0 of an empty disk is in range */
	assert_int_equal(rd(&d, 0, buf, 0, 1), VIRTIO_BLK_S_OK);
	disk_close(&d);
	rm_dir(dir);
}

/* ---- features and config space ------------------------------------------------------- */

static uint64_t dev_features(struct disk *d)
{
	vqb_mmio_write(d->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t f = vqb_mmio_read(d->t, VIRTIO_MMIO_DEVICE_FEATURES);
	vqb_mmio_write(d->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)vqb_mmio_read(d->t, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

static const uint64_t rw_features =
	1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH |
	1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES |
	1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_RING_EVENT_IDX |
	1ull << VIRTIO_F_RING_INDIRECT_DESC;

static void test_features_rw(void **state)
{
	struct fx *f = *state;
	assert_int_equal(dev_features(&f->d), rw_features);
	assert_int_equal(virtio_blk_ops.features(f->d.blk), rw_features);
	assert_int_equal(f->d.acked, rw_features);
	assert_int_equal(vqb_mmio_read(f->d.t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	assert_int_equal(virtio_blk_ops.num_queues, 1);
	assert_int_equal(virtio_blk_ops.queue_max_size, 256);
}

static void test_features_ro(void **state)
{
	struct fx *f = *state;
	assert_int_equal(dev_features(&f->d), rw_features | 1ull << VIRTIO_BLK_F_RO);
	assert_true(virtio_blk_read_only(f->d.blk));
}

static uint64_t cfg_read(struct disk *d, uint32_t off, unsigned int len)
{
	uint8_t b[8] = { 0 };
	uint64_t v = 0;
	virtio_mmio_bus_ops.read(d->t, VIRTIO_MMIO_CONFIG + off, b, len);
	for (unsigned int i = 0; i < len; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void test_config_space(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;

	assert_int_equal(virtio_blk_ops.config_size, 60);
	assert_int_equal(virtio_blk_capacity(d->blk), 2048);
	assert_int_equal(cfg_read(d, 0, 8), 2048);
	assert_int_equal(cfg_read(d, 0, 4), 2048);
	assert_int_equal(cfg_read(d, 4, 4), 0);
	assert_int_equal(cfg_read(d, 8, 4), 0);     /* size_max: not offered */
	assert_int_equal(cfg_read(d, 12, 4), 254);  /* seg_max */
	assert_int_equal(cfg_read(d, 16, 4), 0);    /* geometry: not offered */
	assert_int_equal(cfg_read(d, 20, 4), 512);  /* blk_size */
	assert_int_equal(cfg_read(d, 24, 8), 0);    /* topology: not offered */
	assert_int_equal(cfg_read(d, 32, 1), 0);    /* writeback */
	assert_int_equal(cfg_read(d, 34, 2), 1);    /* num_queues */
	assert_int_equal(cfg_read(d, 36, 4), 65536); /* max_discard_sectors */
	assert_int_equal(cfg_read(d, 40, 4), 32);   /* max_discard_seg */
	assert_int_equal(cfg_read(d, 44, 4), 8);    /* discard_sector_alignment */
	assert_int_equal(cfg_read(d, 48, 4), 65536); /* max_write_zeroes_sectors */
	assert_int_equal(cfg_read(d, 52, 4), 8);    /* max_write_zeroes_seg */
	assert_int_equal(cfg_read(d, 56, 1), 1);    /* write_zeroes_may_unmap */
	assert_int_equal(cfg_read(d, 57, 1), 0);
	/* byte-wise reads agree with the wide one */
	uint64_t cap = 0;
	for (unsigned int i = 0; i < 8; i++)
		cap |= cfg_read(d, i, 1) << (8 * i);
	assert_int_equal(cap, 2048);

	/* config is read-only: writes change nothing */
	uint8_t junk[4] = { 0xff, 0xff, 0xff, 0xff };
	virtio_mmio_bus_ops.write(d->t, VIRTIO_MMIO_CONFIG + 0, junk, 4);
	virtio_mmio_bus_ops.write(d->t, VIRTIO_MMIO_CONFIG + 32, junk, 1);
	virtio_mmio_bus_ops.write(d->t, VIRTIO_MMIO_CONFIG + 56, junk, 4);
	assert_int_equal(cfg_read(d, 0, 8), 2048);
	assert_int_equal(cfg_read(d, 32, 1), 0);
	assert_int_equal(cfg_read(d, 56, 1), 1);
	assert_false(needs_reset(d));

	/* beyond config_size: the transport refuses, reads as 0 */
	assert_int_equal(cfg_read(d, 58, 4), 0);

	/* direct callback with an out-of-range request stays safe */
	uint8_t out[8];
	memset(out, 0xee, sizeof(out));
	virtio_blk_ops.config_read(d->blk, 60, out, 4);
	assert_true(all_zero(out, 4));
}

/* ---- data path ----------------------------------------------------------------------- */

static void test_read_initial_content(void **state)
{
	struct fx *f = *state;
	uint8_t buf[4096], want[4096];

	for (uint64_t sector = 0; sector < 2048; sector += 311) {
		uint32_t len = SECT * (uint32_t)(sector % 8 + 1);
		assert_int_equal(rd(&f->d, sector, buf, len, 1), VIRTIO_BLK_S_OK);
		fill_pattern(want, len, 1, sector * SECT);
		assert_memory_equal(buf, want, len);
	}
}

static void test_write_read_round_trips(void **state)
{
	struct fx *f = *state;
	static const uint64_t sectors[] = { 0, 1, 7, 8, 100, 1023, 2040, 2047 };
	uint8_t out[4096], in[4096], host[4096];

	for (unsigned int i = 0; i < sizeof(sectors) / sizeof(sectors[0]); i++) {
		uint64_t s = sectors[i];
		uint32_t len = (uint32_t)(2048 - s < 8 ? (2048 - s) * SECT : sizeof(out));
		fill_pattern(out, len, 100 + i, 0);
		assert_int_equal(wr(&f->d, s, out, len, 1), VIRTIO_BLK_S_OK);
		memset(in, 0, sizeof(in));
		assert_int_equal(rd(&f->d, s, in, len, 1), VIRTIO_BLK_S_OK);
		assert_memory_equal(in, out, len);
		file_read(f->d.path, s * SECT, host, len);
		assert_memory_equal(host, out, len);
	}
	/* neighbours of a one-sector write are untouched */
	uint8_t one[SECT];
	fill_pattern(one, SECT, 77, 0);
	assert_int_equal(wr(&f->d, 500, one, SECT, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(rd(&f->d, 499, in, 3 * SECT, 1), VIRTIO_BLK_S_OK);
	fill_pattern(host, SECT, 1, 499 * SECT);
	assert_memory_equal(in, host, SECT);
	assert_memory_equal(in + SECT, one, SECT);
	fill_pattern(host, SECT, 1, 501 * SECT);
	assert_memory_equal(in + 2 * SECT, host, SECT);

	struct virtio_blk_stats s = stats(&f->d);
	assert_int_equal(s.ioerr, 0);
	assert_true(s.writes >= 9 && s.reads >= 9);
	assert_false(needs_reset(&f->d));
}

static void test_multi_segment(void **state)
{
	struct fx *f = *state;
	uint8_t out[8 * SECT], in[8 * SECT];

	/* uneven splits that do not follow sector boundaries */
	for (unsigned int nseg = 1; nseg <= 13; nseg += 3) {
		fill_pattern(out, sizeof(out), 200 + nseg, 0);
		assert_int_equal(wr(&f->d, 64 + nseg, out, sizeof(out), nseg), VIRTIO_BLK_S_OK);
		for (unsigned int rseg = 1; rseg <= 7; rseg += 2) {
			memset(in, 0, sizeof(in));
			assert_int_equal(rd(&f->d, 64 + nseg, in, sizeof(in), rseg),
					 VIRTIO_BLK_S_OK);
			assert_memory_equal(in, out, sizeof(in));
		}
	}
	/* many small segments */
	assert_int_equal(rd(&f->d, 0, in, 2 * SECT, 254), VIRTIO_BLK_S_OK);
	fill_pattern(out, 2 * SECT, 1, 0);
	assert_memory_equal(in, out, 2 * SECT);
}

/* Any framing: header and data in one buffer, data and status in one buffer,
 * header split, everything behind an indirect descriptor. */
static void test_framing(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint8_t data[2 * SECT], in[2 * SECT];
	uint16_t head;
	uint64_t brk = d->vq.brk;

	/* OUT: header + data in one readable buffer */
	uint8_t req[16 + sizeof(data)];
	uint32_t t = htole32(VIRTIO_BLK_T_OUT);
	uint64_t s = htole64(10);
	memset(req, 0, 16);
	memcpy(req, &t, 4);
	memcpy(req + 8, &s, 8);
	fill_pattern(data, sizeof(data), 55, 0);
	memcpy(req + 16, data, sizeof(data));
	uint64_t g = vqb_alloc_copy(&d->vq, req, sizeof(req));
	uint64_t st = status_gpa(d);
	struct vqb_buf b1[] = { { g, sizeof(req), false }, { st, 1, true } };
	assert_int_equal(vqb_send(&d->vq, b1, 2, &head), 0);
	kick(d);
	assert_int_equal(expect_used(d, head), 1);
	assert_int_equal(peek8(d, st), VIRTIO_BLK_S_OK);

	/* IN: header split 4 + 12, data + status in one writable buffer */
	t = htole32(VIRTIO_BLK_T_IN);
	memcpy(req, &t, 4);
	uint64_t h1 = vqb_alloc_copy(&d->vq, req, 4);
	uint64_t h2 = vqb_alloc_copy(&d->vq, req + 4, 12);
	uint64_t ds = vqb_alloc(&d->vq, sizeof(data) + 1, 1);
	*(uint8_t *)vqb_host(&d->vq, ds + sizeof(data), 1) = ST_NONE;
	struct vqb_buf b2[] = { { h1, 4, false },
				{ h2, 12, false },
				{ ds, sizeof(data) + 1, true } };
	assert_int_equal(vqb_send(&d->vq, b2, 3, &head), 0);
	kick(d);
	assert_int_equal(expect_used(d, head), sizeof(data) + 1);
	assert_int_equal(peek8(d, ds + sizeof(data)), VIRTIO_BLK_S_OK);
	assert_memory_equal(vqb_host(&d->vq, ds, sizeof(data)), data, sizeof(data));

	/* indirect: header, 3 data pieces, status in an indirect table */
	uint64_t hd = hdr_gpa(d, VIRTIO_BLK_T_IN, 10);
	uint64_t dd = vqb_alloc(&d->vq, sizeof(in), 1);
	st = status_gpa(d);
	struct vqb_buf b3[] = { { hd, 16, false },
				{ dd, 100, true },
				{ dd + 100, 700, true },
				{ dd + 800, sizeof(in) - 800, true },
				{ st, 1, true } };
	assert_int_equal(vqb_add_indirect(&d->vq, b3, 5, &head, NULL), 0);
	assert_int_equal(vqb_publish(&d->vq, head), 0);
	kick(d);
	assert_int_equal(expect_used(d, head), sizeof(in) + 1);
	assert_int_equal(peek8(d, st), VIRTIO_BLK_S_OK);
	assert_memory_equal(vqb_host(&d->vq, dd, sizeof(in)), data, sizeof(in));

	/* a status byte sharing a readable-then-writable split: status alone in a
	 * two-byte writable buffer means one data byte → not a multiple of 512 */
	hd = hdr_gpa(d, VIRTIO_BLK_T_IN, 10);
	st = vqb_alloc(&d->vq, 2, 1);
	memset(vqb_host(&d->vq, st, 2), ST_NONE, 2);
	struct vqb_buf b4[] = { { hd, 16, false }, { st, 2, true } };
	assert_int_equal(vqb_send(&d->vq, b4, 2, &head), 0);
	kick(d);
	assert_int_equal(expect_used(d, head), 1);
	assert_int_equal(peek8(d, st + 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(peek8(d, st), ST_NONE);
	assert_false(needs_reset(d));
	d->vq.brk = brk;
}

static void test_seg_max(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	static struct vqb_buf bufs[QSIZE];
	uint16_t head;
	uint64_t brk = d->vq.brk;

	/* 254 data segments (the advertised seg_max) + header + status: accepted */
	uint8_t *in = malloc(254 * SECT);
	assert_non_null(in);
	assert_int_equal(rd(d, 0, in, 254 * SECT, 254), VIRTIO_BLK_S_OK);
	uint8_t *want = malloc(254 * SECT);
	assert_non_null(want);
	fill_pattern(want, 254 * SECT, 1, 0);
	assert_memory_equal(in, want, 254 * SECT);

	/* 255 data segments fit in 256 descriptors when the header shares the first
	 * buffer: one more than seg_max → IOERR, nothing written */
	uint32_t len = 16 + 255 * SECT;
	uint64_t g = vqb_alloc(&d->vq, len, 8);
	uint8_t *h = vqb_host(&d->vq, g, len);
	uint32_t t = htole32(VIRTIO_BLK_T_OUT);
	memcpy(h, &t, 4);
	memset(h + 16, 0x5a, 255 * SECT);
	bufs[0] = (struct vqb_buf){ g, 16 + SECT, false };
	for (unsigned int i = 1; i < 255; i++)
		bufs[i] = (struct vqb_buf){ g + 16 + (uint64_t)i * SECT, SECT, false };
	uint64_t st = status_gpa(d);
	bufs[255] = (struct vqb_buf){ st, 1, true };
	assert_int_equal(vqb_send(&d->vq, bufs, 256, &head), 0);
	kick(d);
	assert_int_equal(expect_used(d, head), 1);
	assert_int_equal(peek8(d, st), VIRTIO_BLK_S_IOERR);
	file_read(d->path, 0, in, 254 * SECT);
	assert_memory_equal(in, want, 254 * SECT);
	assert_false(needs_reset(d));

	/* the same 255 KiB in 254 segments is fine */
	bufs[0] = (struct vqb_buf){ g, 16 + 2 * SECT, false };
	for (unsigned int i = 1; i < 254; i++)
		bufs[i] = (struct vqb_buf){ g + 16 + (uint64_t)(i + 1) * SECT, SECT, false };
	st = status_gpa(d);
	bufs[254] = (struct vqb_buf){ st, 1, true };
	assert_int_equal(vqb_send(&d->vq, bufs, 255, &head), 0);
	kick(d);
	assert_int_equal(expect_used(d, head), 1);
	assert_int_equal(peek8(d, st), VIRTIO_BLK_S_OK);
	file_read(d->path, 0, in, SECT);
	memset(want, 0x5a, SECT);
	assert_memory_equal(in, want, SECT);

	free(in);
	free(want);
	d->vq.brk = brk;
}

static void test_flush(void **state)
{
	struct fx *f = *state;
	uint32_t used;
	uint8_t data[SECT];

	struct virtio_blk_stats s0 = stats(&f->d);
	assert_int_equal(xfer(&f->d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 1, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	struct virtio_blk_stats s1 = stats(&f->d);
	assert_int_equal(s1.flushes, s0.flushes + 1);
	assert_int_equal(s1.fdatasyncs, s0.fdatasyncs + 1);

	/* writes are not synced one by one when FLUSH was negotiated (write-back) */
	fill_pattern(data, sizeof(data), 3, 0);
	assert_int_equal(wr(&f->d, 5, data, SECT, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(stats(&f->d).fdatasyncs, s1.fdatasyncs);

	/* a nonzero sector and a stray data buffer are tolerated */
	assert_int_equal(xfer(&f->d, VIRTIO_BLK_T_FLUSH, 99, data, SECT, 1, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(stats(&f->d).fdatasyncs, s1.fdatasyncs + 1);
}

static void test_write_through_without_flush(void **state)
{
	struct fx *f = *state;
	uint8_t data[SECT];

	disk_reinit(&f->d, ALL_FEATURES & ~(1ull << VIRTIO_BLK_F_FLUSH));
	assert_false(f->d.acked & (1ull << VIRTIO_BLK_F_FLUSH));
	uint64_t n0 = stats(&f->d).fdatasyncs;
	fill_pattern(data, sizeof(data), 4, 0);
	assert_int_equal(wr(&f->d, 1, data, SECT, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(wr(&f->d, 2, data, SECT, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(stats(&f->d).fdatasyncs, n0 + 2);
	struct seg z = { 10, 4, 0 };
	assert_int_equal(ranges(&f->d, VIRTIO_BLK_T_WRITE_ZEROES, &z, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(stats(&f->d).fdatasyncs, n0 + 3);
	/* reads do not sync */
	assert_int_equal(rd(&f->d, 1, data, SECT, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(stats(&f->d).fdatasyncs, n0 + 3);

	/* and back to write-back after a reset with FLUSH */
	disk_reinit(&f->d, ALL_FEATURES);
	assert_int_equal(wr(&f->d, 1, data, SECT, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(stats(&f->d).fdatasyncs, n0 + 3);
}

static void get_id(struct disk *d, uint32_t buflen, uint8_t *out, uint32_t *used)
{
	memset(out, 0xcc, buflen);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_GET_ID, 0, out, buflen, 1, used), VIRTIO_BLK_S_OK);
}

static void test_get_id(void **state)
{
	(void)state;
	char dir[256], path[300];
	struct disk d = { 0 };
	uint8_t id[32];
	uint32_t used;

	make_dir(dir, sizeof(dir), tmp_base());
	snprintf(path, sizeof(path), "%s/a-rather-long-image-name.raw", dir);
	make_image(path, 4096, 1);

	/* short serial: NUL-padded to 20 bytes */
	assert_int_equal(disk_open(&d, path, false, "abc", ALL_FEATURES), 0);
	get_id(&d, 20, id, &used);
	assert_int_equal(used, 21);
	assert_memory_equal(id, "abc\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	/* a larger buffer: still 20 bytes, the rest untouched */
	get_id(&d, 32, id, &used);
	assert_int_equal(used, 21);
	assert_memory_equal(id, "abc", 4);
	assert_int_equal(id[20], 0xcc);
	/* a smaller one: truncated */
	get_id(&d, 2, id, &used);
	assert_int_equal(used, 3);
	assert_memory_equal(id, "ab", 2);
	/* no room for any id byte */
	get_id(&d, 0, id, &used);
	assert_int_equal(used, 1);
	assert_int_equal(stats(&d).get_ids, 4);
	disk_close(&d);

	/* 20-byte serial: all 20 bytes, no terminator */
	assert_int_equal(disk_open(&d, path, false, "ABCDEFGHIJKLMNOPQRST", ALL_FEATURES), 0);
	get_id(&d, 20, id, &used);
	assert_int_equal(used, 21);
	assert_memory_equal(id, "ABCDEFGHIJKLMNOPQRST", 20);
	disk_close(&d);

	/* no serial: the file name, truncated to 20 bytes */
	assert_int_equal(disk_open(&d, path, false, NULL, ALL_FEATURES), 0);
	get_id(&d, 20, id, &used);
	assert_memory_equal(id, "a-rather-long-image-", 20);
	disk_close(&d);

	/* empty serial: an empty id */
	assert_int_equal(disk_open(&d, path, true, "", ALL_FEATURES), 0);
	get_id(&d, 20, id, &used);
	assert_int_equal(used, 21);
	assert_true(all_zero(id, 20));

	/* GET_ID with readable data after the header: wrong direction → IOERR */
	assert_int_equal(xfer(&d, VIRTIO_BLK_T_GET_ID, 0, id, 0, 1, &used), VIRTIO_BLK_S_OK);
	uint64_t brk = d.vq.brk;
	uint64_t h = hdr_gpa(&d, VIRTIO_BLK_T_GET_ID, 0);
	uint64_t extra = vqb_alloc(&d.vq, 20, 1);
	uint64_t st = status_gpa(&d);
	struct vqb_buf b[] = { { h, 16, false }, { extra, 20, false }, { st, 1, true } };
	uint16_t head;
	assert_int_equal(vqb_send(&d.vq, b, 3, &head), 0);
	kick(&d);
	assert_int_equal(expect_used(&d, head), 1);
	assert_int_equal(peek8(&d, st), VIRTIO_BLK_S_IOERR);
	d.vq.brk = brk;
	disk_close(&d);
	rm_dir(dir);
}

/* ---- discard / write-zeroes ---------------------------------------------------------- */

static bool fs_frees_blocks(const char *path)
{
	struct statfs sf;
	if (statfs(path, &sf))
		return false;
	return sf.f_type == EXT4_SUPER_MAGIC || sf.f_type == TMPFS_MAGIC ||
	       sf.f_type == XFS_SUPER_MAGIC || sf.f_type == BTRFS_SUPER_MAGIC;
}

static void check_zero_and_neighbours(struct disk *d, uint64_t sector, uint32_t num,
				      unsigned int seed)
{
	uint8_t *buf = malloc((size_t)(num + 2) * SECT), *want = malloc(SECT);
	assert_non_null(buf);
	assert_non_null(want);
	assert_int_equal(rd(d, sector - 1, buf, (num + 2) * SECT, 3), VIRTIO_BLK_S_OK);
	fill_pattern(want, SECT, seed, (sector - 1) * SECT);
	assert_memory_equal(buf, want, SECT);
	assert_true(all_zero(buf + SECT, (size_t)num * SECT));
	fill_pattern(want, SECT, seed, (sector + num) * SECT);
	assert_memory_equal(buf + (size_t)(num + 1) * SECT, want, SECT);
	free(buf);
	free(want);
}

static void test_discard(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;

	uint64_t before = blocks_of(d->path);
	struct seg s = { 512, 1024, 0 }; /* 512 KiB at 256 KiB */
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_OK);
	check_zero_and_neighbours(d, 512, 1024, 1);
	uint64_t after = blocks_of(d->path);
	if (fs_frees_blocks(d->path))
		assert_true(after + 512 <= before);
	else
		print_message("[  NOTE    ] st_blocks not checked: unknown file system\n");

	/* several segments, unaligned, in one request */
	struct seg m[] = { { 3, 1, 0 }, { 20, 5, 0 }, { 2000, 47, 0 } };
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, m, 3), VIRTIO_BLK_S_OK);
	for (unsigned int i = 0; i < 3; i++)
		check_zero_and_neighbours(d, m[i].sector, m[i].num, 1);
	/* a zero-length segment is a no-op */
	struct seg z = { 7, 0, 0 };
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, &z, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(stats(d).discards, 3);
	assert_int_equal(stats(d).ioerr + stats(d).unsupp, 0);
}

static void test_discard_errors(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	size_t len0, len1;
	uint8_t *img0 = file_slurp(d->path, &len0);
	struct seg seg[40];

	/* UNMAP on a discard, unknown flags → UNSUPP */
	struct seg s = { 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP };
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_UNSUPP);
	s.flags = 2;
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_UNSUPP);
	s.flags = 0x80000000u;
	assert_int_equal(ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_UNSUPP);
	/* out of range, overflowing, too large */
	struct seg bad[] = { { 2048, 1, 0 },     { 2047, 2, 0 }, { UINT64_MAX, 1, 0 },
			     { UINT64_MAX - 1, 4, 0 }, { 1ull << 55, 1, 0 }, { 0, 65537, 0 } };
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, &bad[i], 1), VIRTIO_BLK_S_IOERR);
		assert_int_equal(ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, &bad[i], 1),
				 VIRTIO_BLK_S_IOERR);
	}
	/* the last sector exactly is fine, but validation covers every segment
	 * before any is executed: a bad second segment leaves the first undone */
	struct seg two[] = { { 100, 8, 0 }, { 5000, 1, 0 } };
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, two, 2), VIRTIO_BLK_S_IOERR);
	two[1].sector = 0;
	two[1].flags = 4;
	assert_int_equal(ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, two, 2), VIRTIO_BLK_S_UNSUPP);

	/* too many segments: 33 discard (max 32), 9 write-zeroes (max 8) */
	for (unsigned int i = 0; i < 40; i++)
		seg[i] = (struct seg){ 10 * i, 1, 0 };
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, seg, 33), VIRTIO_BLK_S_IOERR);
	assert_int_equal(ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, seg, 9), VIRTIO_BLK_S_IOERR);

	/* empty payload, payload not a multiple of 16 */
	uint8_t raw[17] = { 0 };
	uint32_t used;
	assert_int_equal(xfer(d, VIRTIO_BLK_T_DISCARD, 0, raw, 0, 1, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_DISCARD, 0, raw, 17, 1, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_WRITE_ZEROES, 0, raw, 8, 1, &used),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);

	/* none of that touched the image */
	uint8_t *img1 = file_slurp(d->path, &len1);
	assert_int_equal(len0, len1);
	assert_memory_equal(img0, img1, len0);
	free(img0);
	free(img1);

	/* the limits themselves are fine */
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, seg, 32), VIRTIO_BLK_S_OK);
	assert_int_equal(ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, seg, 8), VIRTIO_BLK_S_OK);
	struct seg last = { 2047, 1, 0 };
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, &last, 1), VIRTIO_BLK_S_OK);
	assert_false(needs_reset(d));
}

static void test_discard_not_negotiated(void **state)
{
	struct fx *f = *state;
	struct seg s = { 0, 8, 0 };

	disk_reinit(&f->d, ALL_FEATURES & ~(1ull << VIRTIO_BLK_F_DISCARD |
					    1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_int_equal(ranges(&f->d, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(ranges(&f->d, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_UNSUPP);
	uint8_t buf[8 * SECT], want[8 * SECT];
	assert_int_equal(rd(&f->d, 0, buf, sizeof(buf), 1), VIRTIO_BLK_S_OK);
	fill_pattern(want, sizeof(want), 1, 0);
	assert_memory_equal(buf, want, sizeof(buf));
	assert_int_equal(stats(&f->d).unsupp, 2);
}

static void write_zeroes_on(const char *base)
{
	char dir[256], path[300];
	struct disk d = { 0 };

	make_dir(dir, sizeof(dir), base);
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	make_image(path, 1 << 20, 1);
	assert_int_equal(disk_open(&d, path, false, NULL, ALL_FEATURES), 0);
	bool frees = fs_frees_blocks(path);

	/* without UNMAP: zeros, storage stays allocated */
	uint64_t b0 = blocks_of(path);
	struct seg s = { 256, 512, 0 };
	assert_int_equal(ranges(&d, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_OK);
	check_zero_and_neighbours(&d, 256, 512, 1);
	uint64_t b1 = blocks_of(path);
	if (frees)
		assert_true(b1 + 64 >= b0);

	/* with UNMAP: zeros, storage released */
	s = (struct seg){ 1024, 512, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP };
	assert_int_equal(ranges(&d, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_OK);
	check_zero_and_neighbours(&d, 1024, 512, 1);
	if (frees)
		assert_true(blocks_of(path) + 256 <= b1);

	/* several segments, unaligned */
	struct seg m[] = { { 1, 1, 0 }, { 33, 3, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP },
			   { 2040, 7, 0 } };
	assert_int_equal(ranges(&d, VIRTIO_BLK_T_WRITE_ZEROES, m, 3), VIRTIO_BLK_S_OK);
	for (unsigned int i = 0; i < 3; i++)
		check_zero_and_neighbours(&d, m[i].sector, m[i].num, 1);
	assert_int_equal(stats(&d).write_zeroes, 3);
	assert_int_equal(stats(&d).ioerr, 0);
	disk_close(&d);
	rm_dir(dir);
}

static void test_write_zeroes(void **state)
{
	(void)state;
	write_zeroes_on(tmp_base());
}

/* tmpfs has no FALLOC_FL_ZERO_RANGE: the fallback path */
static void test_write_zeroes_tmpfs(void **state)
{
	(void)state;
	struct statfs sf;
	if (statfs("/dev/shm", &sf) || sf.f_type != TMPFS_MAGIC || access("/dev/shm", W_OK)) {
		print_message("[  SKIPPED ] no writable tmpfs at /dev/shm\n");
		return;
	}
	write_zeroes_on("/dev/shm");
}

/* ---- read-only ----------------------------------------------------------------------- */

static void test_read_only(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	size_t len0, len1;
	uint8_t *img0 = file_slurp(d->path, &len0);
	uint8_t buf[4 * SECT], want[4 * SECT];
	uint32_t used;

	assert_true(d->acked & (1ull << VIRTIO_BLK_F_RO));
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(wr(d, 0, buf, sizeof(buf), 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(wr(d, 100, buf, SECT, 2), VIRTIO_BLK_S_IOERR);
	struct seg s = { 0, 16, 0 };
	assert_int_equal(ranges(d, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_IOERR);
	s.flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	assert_int_equal(ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(stats(d).ioerr, 5);
	assert_int_equal(stats(d).writes + stats(d).bytes_written, 0);

	/* reads, flush, get-id work */
	assert_int_equal(rd(d, 4, buf, sizeof(buf), 2), VIRTIO_BLK_S_OK);
	fill_pattern(want, sizeof(want), 1, 4 * SECT);
	assert_memory_equal(buf, want, sizeof(buf));
	assert_int_equal(xfer(d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 1, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_GET_ID, 0, buf, 20, 1, &used), VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, "ro-disk", 8);

	uint8_t *img1 = file_slurp(d->path, &len1);
	assert_int_equal(len0, len1);
	assert_memory_equal(img0, img1, len0);
	free(img0);
	free(img1);
	assert_false(needs_reset(d));
}

/* ---- bounds and bad requests answered in-band ---------------------------------------- */

static void test_out_of_range(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint8_t buf[2 * SECT];
	uint32_t used;

	memset(buf, 0x11, sizeof(buf));
	static const uint64_t bad[] = { 2048, 2049, 1ull << 40, 1ull << 55, (1ull << 63) / 256,
					UINT64_MAX, UINT64_MAX - 1 };
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(xfer(d, VIRTIO_BLK_T_IN, bad[i], buf, SECT, 1, &used),
				 VIRTIO_BLK_S_IOERR);
		assert_int_equal(used, 1);
		assert_int_equal(wr(d, bad[i], buf, SECT, 1), VIRTIO_BLK_S_IOERR);
	}
	/* straddling the end */
	assert_int_equal(rd(d, 2047, buf, 2 * SECT, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(wr(d, 2047, buf, 2 * SECT, 1), VIRTIO_BLK_S_IOERR);
	/* the last sector is fine */
	assert_int_equal(wr(d, 2047, buf, SECT, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(rd(d, 2047, buf + SECT, SECT, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, buf + SECT, SECT);
	/* the file did not grow */
	struct stat st;
	assert_int_equal(stat(d->path, &st), 0);
	assert_int_equal(st.st_size, 1 << 20);
	assert_false(needs_reset(d));
}

static void test_bad_lengths(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint8_t buf[2 * SECT];
	static const uint32_t lens[] = { 1, 511, 513, 1000, 1023 };

	fill_pattern(buf, sizeof(buf), 9, 0);
	for (unsigned int i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t used;
		assert_int_equal(xfer(d, VIRTIO_BLK_T_IN, 0, buf, lens[i], 1, &used),
				 VIRTIO_BLK_S_IOERR);
		assert_int_equal(used, 1);
		assert_int_equal(wr(d, 0, buf, lens[i], 2), VIRTIO_BLK_S_IOERR);
	}
	uint8_t first[SECT], want[SECT];
	file_read(d->path, 0, first, SECT);
	fill_pattern(want, SECT, 1, 0);
	assert_memory_equal(first, want, SECT);
	assert_int_equal(stats(d).ioerr, 10);
}

static void test_unsupported_types(void **state)
{
	struct fx *f = *state;
	static const uint32_t types[] = { 2, 3, 5, 10, 12, 14, 15, 16, 0x80000000u, UINT32_MAX };
	uint8_t buf[SECT] = { 0 };

	for (unsigned int i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		uint32_t used;
		assert_int_equal(xfer(&f->d, types[i], 0, buf, SECT, 1, &used),
				 VIRTIO_BLK_S_UNSUPP);
		assert_int_equal(used, 1);
		assert_int_equal(xfer(&f->d, types[i], 0, NULL, 0, 1, &used), VIRTIO_BLK_S_UNSUPP);
	}
	assert_int_equal(stats(&f->d).unsupp, 20);
	assert_false(needs_reset(&f->d));
}

/* Data in the wrong direction is answered IOERR (the device carries on). */
static void test_wrong_direction(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint64_t brk = d->vq.brk;
	uint16_t head;
	size_t len0, len1;
	uint8_t *img0 = file_slurp(d->path, &len0);

	/* IN whose data buffer is device-readable */
	uint64_t h = hdr_gpa(d, VIRTIO_BLK_T_IN, 0);
	uint64_t data = vqb_alloc(&d->vq, SECT, 1);
	memset(vqb_host(&d->vq, data, SECT), 0x42, SECT);
	uint64_t st = status_gpa(d);
	struct vqb_buf b1[] = { { h, 16, false }, { data, SECT, false }, { st, 1, true } };
	assert_int_equal(vqb_send(&d->vq, b1, 3, &head), 0);
	kick(d);
	assert_int_equal(expect_used(d, head), 1);
	assert_int_equal(peek8(d, st), VIRTIO_BLK_S_IOERR);
	assert_int_equal(*(uint8_t *)vqb_host(&d->vq, data, 1), 0x42);

	/* OUT whose data buffer is device-writable */
	h = hdr_gpa(d, VIRTIO_BLK_T_OUT, 0);
	st = status_gpa(d);
	struct vqb_buf b2[] = { { h, 16, false }, { data, SECT, true }, { st, 1, true } };
	assert_int_equal(vqb_send(&d->vq, b2, 3, &head), 0);
	kick(d);
	assert_int_equal(expect_used(d, head), 1);
	/* the status is the last writable byte: the stray buffer stays as it was */
	assert_int_equal(peek8(d, st), VIRTIO_BLK_S_IOERR);
	assert_int_equal(*(uint8_t *)vqb_host(&d->vq, data, 1), 0x42);

	/* DISCARD with writable bytes before the status */
	h = hdr_gpa(d, VIRTIO_BLK_T_DISCARD, 0);
	uint8_t segraw[16] = { 0 };
	segraw[8] = 8;
	uint64_t sg = vqb_alloc_copy(&d->vq, segraw, 16);
	st = status_gpa(d);
	struct vqb_buf b3[] = { { h, 16, false }, { sg, 16, false }, { data, 4, true },
				{ st, 1, true } };
	assert_int_equal(vqb_send(&d->vq, b3, 4, &head), 0);
	kick(d);
	assert_int_equal(expect_used(d, head), 1);
	assert_int_equal(peek8(d, st), VIRTIO_BLK_S_IOERR);

	uint8_t *img1 = file_slurp(d->path, &len1);
	assert_memory_equal(img0, img1, len0);
	free(img0);
	free(img1);
	assert_false(needs_reset(d));
	d->vq.brk = brk;

	/* still working */
	uint8_t buf[SECT];
	assert_int_equal(rd(d, 0, buf, SECT, 1), VIRTIO_BLK_S_OK);
}

/* ---- malformed chains: NEEDS_RESET --------------------------------------------------- */

/* Send a raw chain, kick, and check the device went to NEEDS_RESET without
 * pushing it or writing its status byte; then reset and check the device works
 * again. */
static void expect_needs_reset(struct disk *d, const struct vqb_buf *bufs, unsigned int n,
			       uint64_t status, const char *why)
{
	uint16_t head, used0 = vqb_used_idx(&d->vq);

	vqb_mmio_write(d->t, VIRTIO_MMIO_INTERRUPT_ACK,
		       VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(d->irq.level, 0);
	unsigned int calls0 = d->irq.calls;

	assert_int_equal(vqb_send(&d->vq, bufs, n, &head), 0);
	kick(d);
	assert_true(needs_reset(d));
	assert_int_equal(vqb_used_idx(&d->vq), used0);
	assert_int_equal(peek8(d, status), ST_NONE);
	assert_true(vqb_mmio_read(d->t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_true(d->irq.calls > calls0);
	assert_int_equal(d->irq.level, 1);
	assert_non_null(strstr(unit_log_capture_text(&d->lc), why));

	/* further kicks do nothing */
	kick(d);
	assert_int_equal(vqb_used_idx(&d->vq), used0);

	disk_reinit(d, ALL_FEATURES);
	assert_false(needs_reset(d));
	uint8_t buf[SECT], want[SECT];
	assert_int_equal(rd(d, 0, buf, SECT, 1), VIRTIO_BLK_S_OK);
	file_read(d->path, 0, want, SECT);
	assert_memory_equal(buf, want, SECT);
}

static void test_malformed_short_header(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint8_t h[16] = { 0 };

	/* 15 readable bytes */
	uint64_t g = vqb_alloc_copy(&d->vq, h, 15);
	uint64_t st = status_gpa(d);
	struct vqb_buf b[] = { { g, 15, false }, { st, 1, true } };
	expect_needs_reset(d, b, 2, st, "header shorter");

	/* header entirely missing: only writable buffers */
	g = vqb_alloc(&d->vq, SECT, 1);
	st = status_gpa(d);
	struct vqb_buf b2[] = { { g, SECT, true }, { st, 1, true } };
	expect_needs_reset(d, b2, 2, st, "header shorter");
}

static void test_malformed_no_status(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;

	/* header only */
	uint64_t h = hdr_gpa(d, VIRTIO_BLK_T_FLUSH, 0);
	uint64_t st = status_gpa(d); /* not part of the chain */
	struct vqb_buf b[] = { { h, 16, false } };
	expect_needs_reset(d, b, 1, st, "status byte");

	/* "status" buffer is device-readable */
	h = hdr_gpa(d, VIRTIO_BLK_T_OUT, 0);
	uint64_t data = vqb_alloc(&d->vq, SECT, 1);
	st = status_gpa(d);
	struct vqb_buf b2[] = { { h, 16, false }, { data, SECT, false }, { st, 1, false } };
	expect_needs_reset(d, b2, 3, st, "status byte");
}

/* A queue-level error from virtq_pop is also a NEEDS_RESET. */
static void test_malformed_queue(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint16_t used0 = vqb_used_idx(&d->vq);

	assert_int_equal(vqb_set_avail_entry(&d->vq, d->vq.avail_idx % QSIZE, QSIZE + 5), 0);
	assert_int_equal(vqb_set_avail_idx(&d->vq, (uint16_t)(d->vq.avail_idx + 1)), 0);
	kick(d);
	assert_true(needs_reset(d));
	assert_int_equal(vqb_used_idx(&d->vq), used0);

	disk_reinit(d, ALL_FEATURES);
	uint8_t buf[SECT];
	assert_int_equal(rd(d, 0, buf, SECT, 1), VIRTIO_BLK_S_OK);
}

/* A good request before a malformed one in the same batch completes. */
static void test_malformed_after_good(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint16_t h1, h2;

	uint64_t hd = hdr_gpa(d, VIRTIO_BLK_T_FLUSH, 0);
	uint64_t st = status_gpa(d);
	struct vqb_buf good[] = { { hd, 16, false }, { st, 1, true } };
	assert_int_equal(vqb_send(&d->vq, good, 2, &h1), 0);
	uint64_t hb = vqb_alloc(&d->vq, 8, 1);
	uint64_t st2 = status_gpa(d);
	struct vqb_buf bad[] = { { hb, 8, false }, { st2, 1, true } };
	assert_int_equal(vqb_send(&d->vq, bad, 2, &h2), 0);
	kick(d);
	assert_int_equal(expect_used(d, h1), 1);
	assert_int_equal(peek8(d, st), VIRTIO_BLK_S_OK);
	assert_int_equal(peek8(d, st2), ST_NONE);
	assert_true(needs_reset(d));
	uint32_t is = vqb_mmio_read(d->t, VIRTIO_MMIO_INTERRUPT_STATUS);
	assert_int_equal(is, VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
}

/* ---- batches, interrupts, used lengths ----------------------------------------------- */

/* n requests (alternating write / read-back of 8 sectors) published before one
 * kick; direct chains take 3 descriptors each, indirect ones 1. */
static void batch(struct disk *d, unsigned int n, bool indirect)
{
	uint16_t heads[QSIZE];
	uint64_t sts[QSIZE], data[QSIZE];
	uint64_t brk = d->vq.brk;
	assert_true(n <= QSIZE);

	vqb_mmio_write(d->t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	unsigned int calls0 = d->irq.calls;
	for (unsigned int i = 0; i < n; i++) {
		uint32_t type = i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
		uint64_t h = hdr_gpa(d, type, 8 * (i / 2));
		data[i] = vqb_alloc(&d->vq, 4096, 8);
		if (type == VIRTIO_BLK_T_OUT)
			fill_pattern(vqb_host(&d->vq, data[i], 4096), 4096, 300 + i, 0);
		sts[i] = status_gpa(d);
		struct vqb_buf b[] = { { h, 16, false },
				       { data[i], 4096, type == VIRTIO_BLK_T_IN },
				       { sts[i], 1, true } };
		if (indirect) {
			assert_int_equal(vqb_add_indirect(&d->vq, b, 3, &heads[i], NULL), 0);
			assert_int_equal(vqb_publish(&d->vq, heads[i]), 0);
		} else {
			assert_int_equal(vqb_send(&d->vq, b, 3, &heads[i]), 0);
		}
	}
	/* like a driver with EVENT_IDX: interrupt me at the next used entry */
	assert_int_equal(vqb_set_used_event(&d->vq, d->vq.last_used), 0);
	kick(d);
	assert_int_equal(vqb_used_idx(&d->vq), (uint16_t)(d->vq.last_used + n));
	for (unsigned int i = 0; i < n; i++) {
		uint32_t len = expect_used(d, heads[i]);
		assert_int_equal(peek8(d, sts[i]), VIRTIO_BLK_S_OK);
		if (i % 2) {
			assert_int_equal(len, 4097);
			/* requests run in order: the read sees the write just before it */
			assert_memory_equal(vqb_host(&d->vq, data[i], 4096),
					    vqb_host(&d->vq, data[i - 1], 4096), 4096);
		} else {
			assert_int_equal(len, 1);
		}
	}
	/* one interrupt for the whole batch */
	assert_int_equal(d->irq.calls, calls0 + 1);
	assert_int_equal(d->irq.level, 1);
	assert_int_equal(vqb_mmio_read(d->t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	vqb_mmio_write(d->t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(d->irq.level, 0);
	d->vq.brk = brk;
}

static void test_many_requests_one_notify(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;

	assert_true(d->acked & (1ull << VIRTIO_F_RING_EVENT_IDX));
	uint64_t r0 = stats(d).requests;
	batch(d, 85, false);
	assert_int_equal(stats(d).requests, r0 + 85);
	/* EVENT_IDX: the device asked to be kicked at the next available index */
	assert_int_equal(vqb_avail_event(&d->vq), d->vq.avail_idx);
	batch(d, 256, true);
	assert_int_equal(stats(d).requests, r0 + 85 + 256);
	assert_int_equal(vqb_avail_event(&d->vq), d->vq.avail_idx);
	batch(d, 200, true); /* the rings wrap */
	assert_int_equal(vqb_avail_event(&d->vq), d->vq.avail_idx);

	/* without EVENT_IDX */
	disk_reinit(d, ALL_FEATURES & ~(1ull << VIRTIO_F_RING_EVENT_IDX));
	batch(d, 64, false);
	assert_false(needs_reset(d));
}

static void test_used_lengths(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint8_t buf[8 * SECT];
	uint32_t used;

	assert_int_equal(xfer(d, VIRTIO_BLK_T_IN, 0, buf, 8 * SECT, 3, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 8 * SECT + 1);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_IN, 0, buf, 0, 1, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_OUT, 0, buf, 8 * SECT, 3, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 1, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_GET_ID, 0, buf, 20, 1, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_IN, 4096, buf, SECT, 1, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_int_equal(xfer(d, 77, 0, buf, SECT, 1, &used), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(used, 1);
}

/* The image shrinks behind the device's back: a host I/O error → IOERR, logged. */
static void test_host_io_error(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint8_t buf[2 * SECT];
	uint32_t used;

	assert_int_equal(truncate(d->path, 64 * SECT), 0);
	assert_int_equal(xfer(d, VIRTIO_BLK_T_IN, 100, buf, SECT, 1, &used), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_non_null(strstr(unit_log_capture_text(&d->lc), "read at sector 100 failed"));
	/* partly there: the bytes read are counted in the used length */
	assert_int_equal(xfer(d, VIRTIO_BLK_T_IN, 63, buf, 2 * SECT, 1, &used),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, SECT + 1);
	/* still inside: fine */
	assert_int_equal(rd(d, 10, buf, SECT, 1), VIRTIO_BLK_S_OK);
	assert_false(needs_reset(d));
}

/* ---- several disks ------------------------------------------------------------------- */

static void test_two_disks(void **state)
{
	(void)state;
	char dir[256], p1[300], p2[300];
	struct disk a = { 0 }, b = { 0 };
	uint8_t wa[4 * SECT], wb[4 * SECT], buf[4 * SECT];

	make_dir(dir, sizeof(dir), tmp_base());
	snprintf(p1, sizeof(p1), "%s/a.img", dir);
	snprintf(p2, sizeof(p2), "%s/b.img", dir);
	make_image(p1, 1 << 20, 1);
	make_image(p2, 2 << 20, 2);
	assert_int_equal(disk_open(&a, p1, false, "disk-a", ALL_FEATURES), 0);
	assert_int_equal(disk_open(&b, p2, true, "disk-b", ALL_FEATURES), 0);
	assert_int_equal(virtio_blk_capacity(a.blk), 2048);
	assert_int_equal(virtio_blk_capacity(b.blk), 4096);
	assert_int_equal(cfg_read(&b, 0, 8), 4096);

	fill_pattern(wa, sizeof(wa), 11, 0);
	assert_int_equal(wr(&a, 16, wa, sizeof(wa), 2), VIRTIO_BLK_S_OK);
	assert_int_equal(wr(&b, 16, wa, sizeof(wa), 2), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rd(&b, 16, buf, sizeof(buf), 1), VIRTIO_BLK_S_OK);
	fill_pattern(wb, sizeof(wb), 2, 16 * SECT);
	assert_memory_equal(buf, wb, sizeof(buf));
	assert_int_equal(rd(&a, 16, buf, sizeof(buf), 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, wa, sizeof(buf));
	/* beyond a's end, inside b */
	assert_int_equal(rd(&a, 3000, buf, SECT, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rd(&b, 3000, buf, SECT, 1), VIRTIO_BLK_S_OK);

	assert_int_equal(xfer(&b, VIRTIO_BLK_T_GET_ID, 0, buf, 20, 1, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, "disk-b", 7);
	assert_int_equal(xfer(&a, VIRTIO_BLK_T_GET_ID, 0, buf, 20, 1, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, "disk-a", 7);

	/* separate stats, separate interrupt lines */
	assert_int_equal(stats(&a).ioerr, 1);
	assert_int_equal(stats(&b).ioerr, 1);
	assert_int_equal(stats(&a).writes, 1);
	assert_int_equal(stats(&b).writes, 0);

	/* one disk's NEEDS_RESET leaves the other alone */
	uint64_t g = vqb_alloc(&a.vq, 4, 1);
	uint64_t st = status_gpa(&a);
	struct vqb_buf bad[] = { { g, 4, false }, { st, 1, true } };
	uint16_t head;
	assert_int_equal(vqb_send(&a.vq, bad, 2, &head), 0);
	kick(&a);
	assert_true(needs_reset(&a));
	assert_false(needs_reset(&b));
	assert_int_equal(rd(&b, 0, buf, SECT, 1), VIRTIO_BLK_S_OK);

	/* freeing one leaves the other working */
	disk_close(&a);
	assert_int_equal(rd(&b, 4095, buf, SECT, 1), VIRTIO_BLK_S_OK);
	fill_pattern(wb, SECT, 2, 4095 * SECT);
	assert_memory_equal(buf, wb, SECT);
	disk_close(&b);

	/* the file of a holds a's write only */
	file_read(p1, 16 * SECT, buf, sizeof(buf));
	assert_memory_equal(buf, wa, sizeof(buf));
	rm_dir(dir);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static void test_reset_unbind(void **state)
{
	struct fx *f = *state;
	struct disk *d = &f->d;
	uint8_t buf[SECT];

	/* activate needs a transport */
	assert_int_equal(virtio_blk_ops.activate(d->blk, rw_features), 0);
	virtio_blk_ops.bind(d->blk, NULL);
	assert_int_equal(virtio_blk_ops.activate(d->blk, rw_features), -EINVAL);
	virtio_blk_ops.queue_notify(d->blk, 0); /* unbound: ignored */
	virtio_blk_ops.bind(d->blk, d->t);
	virtio_blk_ops.queue_notify(d->blk, 3); /* no such queue: ignored */
	assert_false(needs_reset(d));

	/* a driver reset drops negotiated state: write-zeroes now unsupported
	 * until renegotiated */
	struct seg s = { 0, 1, 0 };
	disk_reinit(d, 1ull << VIRTIO_F_VERSION_1);
	assert_int_equal(ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(rd(d, 0, buf, SECT, 1), VIRTIO_BLK_S_OK);
	disk_reinit(d, ALL_FEATURES);
	assert_int_equal(ranges(d, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_OK);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
#define T_RO(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_ro, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_errors),
		cmocka_unit_test(test_image_lock),
		cmocka_unit_test(test_empty_image),
		T(test_features_rw),
		T_RO(test_features_ro),
		T(test_config_space),
		T(test_read_initial_content),
		T(test_write_read_round_trips),
		T(test_multi_segment),
		T(test_framing),
		T(test_seg_max),
		T(test_flush),
		T(test_write_through_without_flush),
		cmocka_unit_test(test_get_id),
		T(test_discard),
		T(test_discard_errors),
		T(test_discard_not_negotiated),
		cmocka_unit_test(test_write_zeroes),
		cmocka_unit_test(test_write_zeroes_tmpfs),
		T_RO(test_read_only),
		T(test_out_of_range),
		T(test_bad_lengths),
		T(test_unsupported_types),
		T(test_wrong_direction),
		T(test_malformed_short_header),
		T(test_malformed_no_status),
		T(test_malformed_queue),
		T(test_malformed_after_good),
		T(test_many_requests_one_notify),
		T(test_used_lengths),
		T(test_host_io_error),
		cmocka_unit_test(test_two_disks),
		T(test_reset_unbind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
