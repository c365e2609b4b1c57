/* virtio-blk on a raw image: opening and locking the image, config space, and
 * synchronous execution of requests popped from the single request queue.
 * Every header, segment and length comes from the guest and is validated. */
#include "virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/falloc.h>

#define ZERO_BUF_SIZE (64u * 1024u)

struct virtio_blk {
	const struct log *log;
	struct virtio_transport *t;
	char *path;
	int fd;
	bool read_only;
	uint64_t capacity; /* sectors */
	char id[VIRTIO_BLK_ID_BYTES]; /* NUL-padded */
	uint8_t config[VIRTIO_BLK_CFG_SIZE];

	/* negotiated at activate */
	bool discard_ok, write_zeroes_ok;
	bool write_through; /* FLUSH not negotiated: sync after every write */

	/* what the backing file system turned out not to support */
	bool no_punch_hole, no_zero_range;

	struct iovec iov[VIRTIO_BLK_SEG_MAX];
	uint8_t *zeros; /* ZERO_BUF_SIZE bytes, for the write-zeros fallback */
	struct virtio_blk_stats stats;
};

struct blk_seg {
	uint64_t sector;
	uint32_t num;
	uint32_t flags;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static void blk_build_config(struct virtio_blk *b)
{
	uint8_t *c = b->config;

	memset(c, 0, sizeof(b->config));
	put_le64(c + VIRTIO_BLK_CFG_CAPACITY, b->capacity);
	put_le32(c + VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX);
	put_le32(c + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR_SIZE);
	put_le16(c + VIRTIO_BLK_CFG_NUM_QUEUES, 1);
	put_le32(c + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, VIRTIO_BLK_MAX_DISCARD_SECTORS);
	put_le32(c + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_DISCARD_SEG);
	put_le32(c + VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT, VIRTIO_BLK_DISCARD_ALIGN);
	put_le32(c + VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS,
		 VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS);
	put_le32(c + VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG, VIRTIO_BLK_MAX_WRITE_ZEROES_SEG);
	c[VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP] = 1;
}

/* Lock the whole image: exclusive for writers, shared for readers. */
static int blk_lock(int fd, bool read_only)
{
	struct flock fl = {
		.l_type = read_only ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,
	};

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return -errno;
}

int virtio_blk_new(struct virtio_blk **out, const struct virtio_blk_config *cfg,
		   const struct log *log, char *err, size_t errlen)
{
	struct virtio_blk *b;
	struct stat st;
	size_t idlen;
	off_t size;
	int fd, r;

	*out = NULL;
	if (!cfg || !cfg->path || !cfg->path[0]) {
		set_err(err, errlen, "virtio-blk: no disk image path given");
		return -EINVAL;
	}
	idlen = cfg->serial ? strlen(cfg->serial) : 0;
	if (idlen > VIRTIO_BLK_ID_BYTES) {
		set_err(err, errlen, "disk %s: serial '%s' is longer than %u bytes", cfg->path,
			cfg->serial, VIRTIO_BLK_ID_BYTES);
		return -EINVAL;
	}

	fd = open(cfg->path, (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		set_err(err, errlen, "cannot open disk image %s%s: %s", cfg->path,
			cfg->read_only ? " read-only" : " read-write", strerror(errno));
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		set_err(err, errlen, "disk image %s is not a regular file or block device",
			cfg->path);
		r = -EINVAL;
		goto fail_fd;
	}
	size = lseek(fd, 0, SEEK_END);
	if (size < 0) {
		set_err(err, errlen, "cannot get the size of disk image %s: %s", cfg->path,
			strerror(errno));
		r = -EINVAL;
		goto fail_fd;
	}
	if (size % VIRTIO_BLK_SECTOR_SIZE) {
		set_err(err, errlen,
			"disk image %s: size %lld is not a multiple of %u bytes", cfg->path,
			(long long)size, VIRTIO_BLK_SECTOR_SIZE);
		r = -EINVAL;
		goto fail_fd;
	}
	r = blk_lock(fd, cfg->read_only);
	if (r == -EAGAIN || r == -EACCES) {
		set_err(err, errlen, "disk image %s is in use (locked by another disk or process)",
			cfg->path);
		r = -EBUSY;
		goto fail_fd;
	}
	if (r < 0)
		log_warn(log, "virtio-blk: cannot lock %s (%s), continuing unlocked", cfg->path,
			 strerror(-r));

	b = calloc(1, sizeof(*b));
	if (!b) {
		r = -ENOMEM;
		goto fail_nomem;
	}
	b->path = strdup(cfg->path);
	b->zeros = calloc(1, ZERO_BUF_SIZE);
	if (!b->path || !b->zeros) {
		free(b->path);
		free(b->zeros);
		free(b);
		r = -ENOMEM;
		goto fail_nomem;
	}
	b->log = log;
	b->fd = fd;
	b->read_only = cfg->read_only;
	b->capacity = (uint64_t)size / VIRTIO_BLK_SECTOR_SIZE;
	if (cfg->serial) {
		memcpy(b->id, cfg->serial, idlen);
	} else {
		const char *base = strrchr(cfg->path, '/');

		base = base ? base + 1 : cfg->path;
		idlen = strnlen(base, VIRTIO_BLK_ID_BYTES);
		memcpy(b->id, base, idlen);
	}
	blk_build_config(b);
	if (!b->capacity)
		log_warn(log, "virtio-blk: disk image %s is empty (0 sectors)", cfg->path);
	*out = b;
	return 0;

fail_nomem:
	set_err(err, errlen, "disk image %s: out of memory", cfg->path);
fail_fd:
	close(fd);
	return r;
}

void virtio_blk_free(struct virtio_blk *b)
{
	if (!b)
		return;
	close(b->fd);
	free(b->zeros);
	free(b->path);
	free(b);
}

uint64_t virtio_blk_capacity(const struct virtio_blk *b)
{
	return b->capacity;
}

bool virtio_blk_read_only(const struct virtio_blk *b)
{
	return b->read_only;
}

void virtio_blk_get_stats(const struct virtio_blk *b, struct virtio_blk_stats *st)
{
	*st = b->stats;
}

/* ---- host I/O ------------------------------------------------------------------------ */

/* Is this fallocate error "the file system cannot do that" (try another way)? */
static bool falloc_unsupported(int e)
{
	return e == EOPNOTSUPP || e == ENOSYS || e == ENODEV || e == EINVAL;
}

static int blk_fallocate(struct virtio_blk *b, int mode, uint64_t off, uint64_t len)
{
	int r;

	do
		r = fallocate(b->fd, mode, (off_t)off, (off_t)len);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static int blk_sync(struct virtio_blk *b)
{
	int r;

	do
		r = fdatasync(b->fd);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	b->stats.fdatasyncs++;
	return 0;
}

/* preadv/pwritev the whole iovec at off, resuming after short transfers. *done
 * counts bytes moved. An EOF (the image shrank behind our back) is -EIO. */
static int blk_rw(struct virtio_blk *b, bool write, struct iovec *iov, int cnt, uint64_t off,
		  uint64_t *done)
{
	while (cnt > 0) {
		ssize_t n;

		if (write)
			n = pwritev(b->fd, iov, cnt, (off_t)off);
		else
			n = preadv(b->fd, iov, cnt, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		*done += (uint64_t)n;
		off += (uint64_t)n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int blk_write_zeros(struct virtio_blk *b, uint64_t off, uint64_t len)
{
	while (len) {
		struct iovec v = {
			.iov_base = b->zeros,
			.iov_len = len < ZERO_BUF_SIZE ? (size_t)len : ZERO_BUF_SIZE,
		};
		uint64_t done = 0;
		int r = blk_rw(b, true, &v, 1, off, &done);

		if (r < 0)
			return r;
		off += done;
		len -= done;
	}
	return 0;
}

/* Make [off, off+len) read back as zeros, deallocating it if unmap. */
static int blk_zero_range(struct virtio_blk *b, uint64_t off, uint64_t len, bool unmap)
{
	const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	int r;

	if (!len)
		return 0;
	if (unmap && !b->no_punch_hole) {
		r = blk_fallocate(b, punch, off, len);
		if (r == 0 || !falloc_unsupported(-r))
			return r;
		b->no_punch_hole = true;
	}
	if (!b->no_zero_range) {
		r = blk_fallocate(b, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
		if (r == 0 || !falloc_unsupported(-r))
			return r;
		b->no_zero_range = true;
	}
	if (!unmap && !b->no_punch_hole) {
		/* e.g. tmpfs: punch, then allocate again so the range stays backed */
		r = blk_fallocate(b, punch, off, len);
		if (r == 0) {
			r = blk_fallocate(b, FALLOC_FL_KEEP_SIZE, off, len);
			if (r < 0 && falloc_unsupported(-r))
				r = 0; /* the zeros are there; only the reservation failed */
			return r;
		}
		if (!falloc_unsupported(-r))
			return r;
		b->no_punch_hole = true;
	}
	return blk_write_zeros(b, off, len);
}

/* ---- request handling ---------------------------------------------------------------- */

/* [sector, sector + nsec) inside the disk, without overflow. */
static bool blk_range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t nsec)
{
	return sector <= b->capacity && nsec <= b->capacity - sector;
}

/*
 * Fill b->iov with the parts of the chain's buffers [first, end) that lie in
 * the byte range [start, start + len) of that side (readable or writable).
 * Zero-length pieces are skipped. Returns the number of entries, or -1 if more
 * than VIRTIO_BLK_SEG_MAX would be needed.
 */
static int blk_build_iov(struct virtio_blk *b, const struct virtq_chain *c, uint16_t first,
			 uint16_t end, uint64_t start, uint64_t len)
{
	uint64_t pos = 0, stop = start + len;
	int n = 0;

	for (uint16_t i = first; i < end && pos < stop; i++) {
		const struct virtq_buf *buf = &c->bufs[i];
		uint64_t lo = pos, hi = pos + buf->len;

		pos = hi;
		if (hi <= start)
			continue;
		if (lo < start)
			lo = start;
		if (hi > stop)
			hi = stop;
		if (hi == lo)
			continue;
		if (n == VIRTIO_BLK_SEG_MAX)
			return -1;
		b->iov[n].iov_base = buf->host + (lo - (pos - buf->len));
		b->iov[n].iov_len = (size_t)(hi - lo);
		n++;
	}
	return n;
}

static uint8_t blk_io_error(struct virtio_blk *b, const char *what, uint64_t sector, int e)
{
	log_warn(b->log, "virtio-blk %s: %s at sector %llu failed: %s", b->path, what,
		 (unsigned long long)sector, strerror(-e));
	return VIRTIO_BLK_S_IOERR;
}

static uint8_t blk_after_write(struct virtio_blk *b, const char *what, uint64_t sector)
{
	int r;

	if (!b->write_through)
		return VIRTIO_BLK_S_OK;
	r = blk_sync(b);
	return r < 0 ? blk_io_error(b, what, sector, r) : VIRTIO_BLK_S_OK;
}

static uint8_t blk_do_in(struct virtio_blk *b, const struct virtq_chain *c, uint64_t sector,
			 uint32_t *data_written)
{
	uint64_t len = c->writable_len - 1u, done = 0;
	int n, r;

	if (c->readable_len != VIRTIO_BLK_REQ_HDR_SIZE || len % VIRTIO_BLK_SECTOR_SIZE ||
	    !blk_range_ok(b, sector, len / VIRTIO_BLK_SECTOR_SIZE))
		return VIRTIO_BLK_S_IOERR;
	n = blk_build_iov(b, c, c->nr_readable, c->nr_bufs, 0, len);
	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	b->stats.reads++;
	r = blk_rw(b, false, b->iov, n, sector * VIRTIO_BLK_SECTOR_SIZE, &done);
	*data_written = (uint32_t)done;
	b->stats.bytes_read += done;
	return r < 0 ? blk_io_error(b, "read", sector, r) : VIRTIO_BLK_S_OK;
}

static uint8_t blk_do_out(struct virtio_blk *b, const struct virtq_chain *c, uint64_t sector)
{
	uint64_t len = c->readable_len - VIRTIO_BLK_REQ_HDR_SIZE, done = 0;
	int n, r;

	if (b->read_only || c->writable_len != 1 || len % VIRTIO_BLK_SECTOR_SIZE ||
	    !blk_range_ok(b, sector, len / VIRTIO_BLK_SECTOR_SIZE))
		return VIRTIO_BLK_S_IOERR;
	n = blk_build_iov(b, c, 0, c->nr_readable, VIRTIO_BLK_REQ_HDR_SIZE, len);
	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	b->stats.writes++;
	r = blk_rw(b, true, b->iov, n, sector * VIRTIO_BLK_SECTOR_SIZE, &done);
	b->stats.bytes_written += done;
	if (r < 0)
		return blk_io_error(b, "write", sector, r);
	return blk_after_write(b, "write", sector);
}

static uint8_t blk_do_flush(struct virtio_blk *b)
{
	int r;

	b->stats.flushes++;
	r = blk_sync(b);
	return r < 0 ? blk_io_error(b, "flush", 0, r) : VIRTIO_BLK_S_OK;
}

static uint8_t blk_do_get_id(struct virtio_blk *b, const struct virtq_chain *c,
			     uint32_t *data_written)
{
	uint32_t len = c->writable_len - 1u;

	if (c->readable_len != VIRTIO_BLK_REQ_HDR_SIZE)
		return VIRTIO_BLK_S_IOERR;
	if (len > VIRTIO_BLK_ID_BYTES)
		len = VIRTIO_BLK_ID_BYTES;
	b->stats.get_ids++;
	*data_written = virtq_chain_write(c, 0, b->id, len);
	return VIRTIO_BLK_S_OK;
}

/* DISCARD (zeroes = false) and WRITE_ZEROES (zeroes = true). */
static uint8_t blk_do_ranges(struct virtio_blk *b, const struct virtq_chain *c, bool zeroes)
{
	const uint32_t max_seg = zeroes ? VIRTIO_BLK_MAX_WRITE_ZEROES_SEG
					: VIRTIO_BLK_MAX_DISCARD_SEG;
	const uint32_t max_sec = zeroes ? VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS
					: VIRTIO_BLK_MAX_DISCARD_SECTORS;
	const uint32_t ok_flags = zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
	struct blk_seg seg[VIRTIO_BLK_MAX_DISCARD_SEG > VIRTIO_BLK_MAX_WRITE_ZEROES_SEG
				   ? VIRTIO_BLK_MAX_DISCARD_SEG
				   : VIRTIO_BLK_MAX_WRITE_ZEROES_SEG];
	uint32_t len = c->readable_len - VIRTIO_BLK_REQ_HDR_SIZE, nseg, i;
	const char *what = zeroes ? "write-zeroes" : "discard";

	if (!(zeroes ? b->write_zeroes_ok : b->discard_ok))
		return VIRTIO_BLK_S_UNSUPP;
	if (b->read_only || c->writable_len != 1 || !len || len % VIRTIO_BLK_SEG_SIZE)
		return VIRTIO_BLK_S_IOERR;
	nseg = len / VIRTIO_BLK_SEG_SIZE;
	if (nseg > max_seg)
		return VIRTIO_BLK_S_IOERR;

	/* copy every segment out of guest memory once, then validate them all */
	for (i = 0; i < nseg; i++) {
		uint8_t raw[VIRTIO_BLK_SEG_SIZE];

		virtq_chain_read(c, VIRTIO_BLK_REQ_HDR_SIZE + i * VIRTIO_BLK_SEG_SIZE, raw,
				 sizeof(raw));
		seg[i].sector = get_le64(raw);
		seg[i].num = get_le32(raw + 8);
		seg[i].flags = get_le32(raw + 12);
		if (seg[i].flags & ~ok_flags)
			return VIRTIO_BLK_S_UNSUPP;
		if (seg[i].num > max_sec || !blk_range_ok(b, seg[i].sector, seg[i].num))
			return VIRTIO_BLK_S_IOERR;
	}

	if (zeroes)
		b->stats.write_zeroes++;
	else
		b->stats.discards++;
	for (i = 0; i < nseg; i++) {
		uint64_t off = seg[i].sector * VIRTIO_BLK_SECTOR_SIZE;
		uint64_t n = (uint64_t)seg[i].num * VIRTIO_BLK_SECTOR_SIZE;
		bool unmap = !zeroes || (seg[i].flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
		int r = blk_zero_range(b, off, n, unmap);

		if (r < 0)
			return blk_io_error(b, what, seg[i].sector, r);
	}
	return blk_after_write(b, what, seg[0].sector);
}

/*
 * Execute one request. Returns the status to report, with *data_written the
 * bytes written before the status byte, or -1 with *why set when the chain
 * cannot be answered at all (see the policy in blk.h).
 */
static int blk_handle(struct virtio_blk *b, const struct virtq_chain *c, uint32_t *data_written,
		      const char **why)
{
	uint8_t hdr[VIRTIO_BLK_REQ_HDR_SIZE];
	uint64_t sector;
	uint32_t type;

	*data_written = 0;
	if (c->readable_len < VIRTIO_BLK_REQ_HDR_SIZE) {
		*why = "virtio-blk request header shorter than 16 bytes";
		return -1;
	}
	if (c->writable_len < 1) {
		*why = "virtio-blk request without a writable status byte";
		return -1;
	}
	virtq_chain_read(c, 0, hdr, sizeof(hdr));
	type = get_le32(hdr);
	sector = get_le64(hdr + 8);

	switch (type) {
	case VIRTIO_BLK_T_IN:
		return blk_do_in(b, c, sector, data_written);
	case VIRTIO_BLK_T_OUT:
		return blk_do_out(b, c, sector);
	case VIRTIO_BLK_T_FLUSH:
		return blk_do_flush(b);
	case VIRTIO_BLK_T_GET_ID:
		return blk_do_get_id(b, c, data_written);
	case VIRTIO_BLK_T_DISCARD:
		return blk_do_ranges(b, c, false);
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return blk_do_ranges(b, c, true);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* ---- virtio_dev_ops ------------------------------------------------------------------ */

static uint64_t blk_features(void *dev)
{
	struct virtio_blk *b = dev;
	uint64_t f = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
		     1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_DISCARD |
		     1ull << VIRTIO_BLK_F_WRITE_ZEROES | 1ull << VIRTIO_F_VERSION_1 |
		     1ull << VIRTIO_F_RING_EVENT_IDX | 1ull << VIRTIO_F_RING_INDIRECT_DESC;

	if (b->read_only)
		f |= 1ull << VIRTIO_BLK_F_RO;
	return f;
}

static void blk_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = dev;

	/* the transport checked off/len; stay safe regardless */
	if (off > sizeof(b->config) || len > sizeof(b->config) - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, b->config + off, len);
}

static void blk_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	/* every field is read-only (CONFIG_WCE is not offered): ignore */
	(void)dev;
	(void)off;
	(void)data;
	(void)len;
}

static void blk_bind(void *dev, struct virtio_transport *t)
{
	struct virtio_blk *b = dev;

	b->t = t;
}

static int blk_activate(void *dev, uint64_t features)
{
	struct virtio_blk *b = dev;

	if (!b->t)
		return -EINVAL;
	b->discard_ok = features & (1ull << VIRTIO_BLK_F_DISCARD);
	b->write_zeroes_ok = features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	b->write_through = !(features & (1ull << VIRTIO_BLK_F_FLUSH));
	return 0;
}

static void blk_reset(void *dev)
{
	struct virtio_blk *b = dev;

	/* requests complete synchronously: nothing is in flight */
	b->discard_ok = false;
	b->write_zeroes_ok = false;
	b->write_through = false;
}

static void blk_queue_notify(void *dev, uint16_t qi)
{
	struct virtio_blk *b = dev;
	struct virtq *q;
	bool pushed = false, rechecked = false;
	const char *why = NULL;

	if (qi != 0 || !b->t)
		return;
	q = virtio_transport_queue(b->t, 0);
	if (!q || !q->ready)
		return;

	for (;;) {
		struct virtq_chain c;
		uint32_t data_written;
		uint8_t status;
		int r = virtq_pop(q, &c);

		if (r == 0) {
			/* ask for a kick at the current index (EVENT_IDX), then re-check
			 * so that a request added meanwhile is not left behind; never
			 * spin if the two disagree */
			if (rechecked || !virtq_enable_notify(q))
				break;
			rechecked = true;
			continue;
		}
		rechecked = false;
		if (r < 0) {
			why = virtq_strerror(r);
			break;
		}
		r = blk_handle(b, &c, &data_written, &why);
		if (r < 0)
			break;
		status = (uint8_t)r;
		if (status == VIRTIO_BLK_S_IOERR)
			b->stats.ioerr++;
		else if (status == VIRTIO_BLK_S_UNSUPP)
			b->stats.unsupp++;
		/* status goes in the last writable byte (writable_len >= 1 checked) */
		virtq_chain_write(&c, c.writable_len - 1u, &status, 1);
		r = virtq_push(q, c.head, data_written + 1u);
		if (r < 0) {
			why = virtq_strerror(r);
			break;
		}
		b->stats.requests++;
		pushed = true;
	}
	if (pushed)
		virtio_transport_notify_used(b->t, 0);
	if (why)
		virtio_transport_needs_reset(b->t, why);
}

const struct virtio_dev_ops virtio_blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = 1,
	.queue_max_size = VIRTIO_BLK_QUEUE_SIZE,
	.features = blk_features,
	.config_size = VIRTIO_BLK_CFG_SIZE,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.bind = blk_bind,
};
