/* virtio-blk device model backed by a raw image file (or a block device): config
 * space, feature set and synchronous request processing (read, write, flush,
 * get-id, discard, write-zeroes). Hypervisor-agnostic: sees only its virtqueue. */
#ifndef VMM_VIRTIO_BLK_H
#define VMM_VIRTIO_BLK_H

#include "core/log.h"
#include "virtio/virtio_dev.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* feature bits (virtio 1.x, 5.2.3) */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* request types */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

/* request status (the last writable byte of a request) */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

/* discard / write-zeroes segment flags */
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

#define VIRTIO_BLK_SECTOR_SIZE 512u
#define VIRTIO_BLK_ID_BYTES 20u
#define VIRTIO_BLK_REQ_HDR_SIZE 16u /* le32 type, le32 reserved, le64 sector */
#define VIRTIO_BLK_SEG_SIZE 16u     /* le64 sector, le32 num_sectors, le32 flags */

/* What this device offers and advertises in config space. */
#define VIRTIO_BLK_QUEUE_SIZE 256u
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2u) /* header + status take 2 */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS 65536u           /* per segment: 32 MiB */
#define VIRTIO_BLK_MAX_DISCARD_SEG 32u
#define VIRTIO_BLK_DISCARD_ALIGN 8u /* sectors: a hint (4 KiB), not enforced */
#define VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS 65536u
#define VIRTIO_BLK_MAX_WRITE_ZEROES_SEG 8u

/* Config space layout (struct virtio_blk_config of the spec, little-endian). */
#define VIRTIO_BLK_CFG_CAPACITY 0                  /* le64, 512-byte sectors */
#define VIRTIO_BLK_CFG_SIZE_MAX 8                  /* le32 (not offered: 0) */
#define VIRTIO_BLK_CFG_SEG_MAX 12                  /* le32 */
#define VIRTIO_BLK_CFG_GEOMETRY 16                 /* le16 cyl, u8 heads, u8 sectors (0) */
#define VIRTIO_BLK_CFG_BLK_SIZE 20                 /* le32 */
#define VIRTIO_BLK_CFG_TOPOLOGY 24                 /* 8 bytes (not offered: 0) */
#define VIRTIO_BLK_CFG_WRITEBACK 32                /* u8 (not offered: 0) */
#define VIRTIO_BLK_CFG_NUM_QUEUES 34               /* le16 (MQ not offered; reads 1) */
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36      /* le32 */
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG 40          /* le32 */
#define VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT 44 /* le32 */
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS 48 /* le32 */
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG 52     /* le32 */
#define VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP 56   /* u8 */
#define VIRTIO_BLK_CFG_SIZE 60                     /* up to and including unused1[3] */

struct virtio_blk_config {
	const char *path; /* raw image file or block device; required */
	bool read_only;   /* open O_RDONLY, offer VIRTIO_BLK_F_RO, refuse writes */
	/* GET_ID string, at most 20 bytes; "" → empty id; NULL → the image's file
	 * name (its last path component), truncated to 20 bytes */
	const char *serial;
};

/* Counters, for tests and diagnostics (read them under the transport lock or
 * while the device is quiescent). */
struct virtio_blk_stats {
	uint64_t requests;  /* chains completed (pushed) */
	uint64_t reads, writes, flushes, get_ids, discards, write_zeroes;
	uint64_t ioerr;     /* requests answered VIRTIO_BLK_S_IOERR */
	uint64_t unsupp;    /* requests answered VIRTIO_BLK_S_UNSUPP */
	uint64_t fdatasyncs; /* fdatasync() calls that succeeded (FLUSH, write-through) */
	uint64_t bytes_read, bytes_written;
};

struct virtio_blk;
struct virtio_transport;

/*
 * Open the image and build a device. The file is opened O_RDWR, or O_RDONLY
 * when cfg->read_only, with O_CLOEXEC, and locked with an open-file-description
 * lock (exclusive for read-write, shared for read-only) so that two devices or
 * two VMMs cannot write the same image at once.
 *
 * Errors (a one-sentence message naming the input goes into err):
 *   -EINVAL  cfg/path missing; the file is missing or cannot be opened; it is
 *            neither a regular file nor a block device; its size is not a
 *            multiple of 512 bytes (rejected, never rounded: a rounded-down disk
 *            would silently hide the tail of the image); serial > 20 bytes.
 *   -EBUSY   the image is locked by another device or process.
 *   -ENOMEM
 * On success *out owns the fd; free with virtio_blk_free().
 */
int virtio_blk_new(struct virtio_blk **out, const struct virtio_blk_config *cfg,
		   const struct log *log, char *err, size_t errlen);

/* Close the image and free. The transport using the device must be gone (or
 * never be called again) first. NULL is a no-op. */
void virtio_blk_free(struct virtio_blk *b);

uint64_t virtio_blk_capacity(const struct virtio_blk *b); /* in 512-byte sectors */
bool virtio_blk_read_only(const struct virtio_blk *b);
void virtio_blk_get_stats(const struct virtio_blk *b, struct virtio_blk_stats *st);

/*
 * The device ops: device id 2, one request queue of at most 256 entries,
 * config_size VIRTIO_BLK_CFG_SIZE (read-only: config writes are ignored).
 * The transport hands itself over through ops->bind (virtio_mmio_new does);
 * activate fails with -EINVAL while the device is unbound.
 * Features offered: SEG_MAX, BLK_SIZE, FLUSH, DISCARD, WRITE_ZEROES, RO (when
 * read-only), VERSION_1, RING_EVENT_IDX, RING_INDIRECT_DESC.
 *
 * Request processing (queue_notify, under the transport lock) is synchronous:
 * every available chain is executed with pread/pwrite/fallocate/fdatasync on
 * the image fd, pushed, and the driver is notified once per batch.
 *
 * Framing: per the spec the device makes no assumption about how a request is
 * split into descriptors. The readable bytes are the 16-byte header followed
 * by the data of OUT / DISCARD / WRITE_ZEROES; the writable bytes are the data
 * of IN / GET_ID followed by the status byte (the last writable byte).
 *
 * Policy for bad requests (guest input is hostile, never trusted):
 *  - A chain the device cannot even answer (fewer than 16 readable bytes, so no
 *    complete header, or no writable byte for the status, including a status
 *    buffer that is not device-writable) is a driver bug with no in-band way to
 *    report it: the device calls virtio_transport_needs_reset(), does not push
 *    the chain and stops processing the queue. Same for a queue error from
 *    virtq_pop/virtq_push.
 *  - Everything else is answered in-band and the device carries on:
 *      IOERR  sector range beyond capacity (overflow-checked); IN/OUT data
 *             length not a multiple of 512; more than seg_max data segments;
 *             data in the wrong direction (readable data after the header of
 *             IN/GET_ID, writable bytes before the status of OUT/DISCARD/
 *             WRITE_ZEROES); OUT/DISCARD/WRITE_ZEROES on a read-only device
 *             (the image is never modified); a DISCARD/WRITE_ZEROES payload
 *             that is empty, not a multiple of 16 bytes, has too many segments,
 *             or a segment larger than the advertised maximum; a host I/O error.
 *      UNSUPP unknown request type; DISCARD/WRITE_ZEROES when that feature was
 *             not negotiated; unknown segment flags; UNMAP on a DISCARD.
 *    FLUSH ignores its sector field and any data (the spec only says SHOULD
 *    NOT); it is always executed.
 *  - Segments of DISCARD/WRITE_ZEROES are all validated before any is executed.
 *  - Used length = bytes written into the driver's buffers: data really read
 *    for IN, the id bytes for GET_ID, plus the status byte.
 *
 * Durability: FLUSH is fdatasync() on the image. If the driver did not accept
 * VIRTIO_BLK_F_FLUSH the device behaves write-through (fdatasync after every
 * OUT / DISCARD / WRITE_ZEROES), as drivers then assume no volatile cache.
 *
 * Host I/O is preadv/pwritev/fallocate/fdatasync straight on the image fd
 * (guest buffers are used in place, no bounce copy). It does not go through the
 * sys/ seam: that seam models /dev/kvm and VFIO, a backing file is ordinary file
 * I/O, and the unit tests use real temporary files (ext4, tmpfs), which checks
 * more than a fake would (holes, st_blocks, fallocate support).
 *
 * Discard punches a hole (FALLOC_FL_PUNCH_HOLE | KEEP_SIZE). Write-zeroes uses
 * PUNCH_HOLE when UNMAP is set, else FALLOC_FL_ZERO_RANGE; where the file
 * system lacks one, it falls back (zero-range → punch + re-allocate → writing
 * zeros). Discarded and write-zeroed ranges always read back as zeros.
 */
extern const struct virtio_dev_ops virtio_blk_ops;

#endif
