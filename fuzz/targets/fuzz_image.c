/* libFuzzer target: the arm64 boot path without KVM: Image header parsing
 * (a64_image_parse, incl. the EFI/PE section check), the load plan
 * (a64_plan_boot) and the guest device tree built from it (a64_fdt_build,
 * re-read with libfdt). reference-vmm/src/arch/aarch64/{image,fdt}.c.
 *
 * Input format (little-endian, zero-padded):
 *   byte 0  mode  bits 0-1: 0..2 TEMPLATE (a valid header, optionally with a
 *                 PE/COFF header, then k = bits 2-4 byte mutations), 3 RAW (the
 *                 header bytes come straight from the input)
 *   byte 1  file size: 0 head length, 1 head + u32, 2 4096 + u32, 3 u64 raw,
 *           4 head - 1, 5 exactly 64, else head length
 *   u64 x2  picks for text_offset / image_size (TEMPLATE; see pick_*)
 *   byte    PE: bit 0 present, bits 1-3 sections, bit 4 truncated
 *   RAM     byte base pick, byte size pick, byte initrd pick (+ u64 raws)
 *   FDT     byte vcpus, byte nr_virtio, u16 buffer size pick, byte cmdline length,
 *           then the cmdline bytes
 *   TEMPLATE: k mutations (u16 offset, byte value); RAW: the rest is the head.
 * Checks: accepted headers satisfy the documented rules (magic, LE, text_offset
 * 4 KiB aligned < 2 MiB, file <= image_size <= 64 GiB); a plan lies inside RAM
 * with kernel at base + text_offset, the initrd above the kernel, the DTB in its
 * own 2 MiB at the top, nothing overlapping; a built DTB is valid (fdt_check_full),
 * fits the buffer, and its /chosen bootargs and initrd match the inputs.
 */
#include "fuzz_input.h"

#include "arch/aarch64/fdt.h"
#include "arch/aarch64/image.h"
#include "arch/aarch64/layout.h"
#include "vmm/config.h"

#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>

#define SZ_2M 0x200000ull
#define SZ_4K 0x1000ull

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t pick_text(uint64_t raw)
{
	switch (raw & 7) {
	case 0: case 1: case 2:
		return 0;
	case 3:
		return 0x80000;
	case 4:
		return ((raw >> 8) % 512) * SZ_4K; /* aligned, < 2 MiB */
	case 5:
		return SZ_2M;
	case 6:
		return 0x80001;
	default:
		return raw >> 3;
	}
}

static uint64_t pick_size(uint64_t raw, uint64_t file)
{
	switch (raw & 7) {
	case 0: case 1: case 2:
		return file + ((raw >> 8) & 0xffffff);
	case 3:
		return 0; /* old kernels */
	case 4:
		return file ? file - 1 : 0;
	case 5:
		return 1ull << 36;
	case 6:
		return (1ull << 36) + 1;
	default:
		return raw >> 3;
	}
}

static void check_plan(uint64_t base, uint64_t size, const struct a64_image_info *img,
		       uint64_t initrd, const struct a64_boot_plan *p)
{
	uint64_t end = base + size;
	FUZZ_CHECK(p->kernel_gpa == base + img->text_offset, "kernel address");
	FUZZ_CHECK(p->kernel_end == p->kernel_gpa + img->image_size, "kernel end");
	FUZZ_CHECK(p->kernel_gpa >= base && p->kernel_end <= end, "kernel outside RAM");
	FUZZ_CHECK(p->dtb_gpa % SZ_2M == 0 && p->dtb_gpa >= base &&
			   p->dtb_gpa + A64_DTB_MAX_SIZE <= end,
		   "dtb %#llx outside RAM or misaligned", (unsigned long long)p->dtb_gpa);
	FUZZ_CHECK(p->kernel_end <= p->dtb_gpa, "kernel overlaps the dtb");
	if (initrd) {
		FUZZ_CHECK(p->initrd_size == initrd, "initrd size");
		FUZZ_CHECK(p->initrd_gpa % SZ_4K == 0, "initrd alignment");
		FUZZ_CHECK(p->initrd_gpa >= p->kernel_end, "initrd overlaps the kernel");
		FUZZ_CHECK(p->initrd_gpa + initrd <= p->dtb_gpa, "initrd overlaps the dtb");
	} else {
		FUZZ_CHECK(p->initrd_gpa == 0 && p->initrd_size == 0, "initrd without one");
	}
}

static void build_fdt(struct fin *f, uint64_t base, uint64_t size, const struct a64_boot_plan *p)
{
	static const size_t bufs[] = { A64_FDT_BUF_SIZE, A64_FDT_BUF_SIZE, 4096, 1024, 64,
				       A64_FDT_BUF_SIZE, 8192, 0 };
	static uint8_t buf[A64_FDT_BUF_SIZE];
	static char cmdline[15 * 160 + 1];
	struct a64_fdt_params fp = { 0 };

	uint8_t v = fin_u8(f);
	fp.nr_vcpus = (v & 0x80) ? v & 0x0f : 1 + v % VMM_MAX_VCPUS;
	uint8_t nv = fin_u8(f);
	fp.nr_virtio = (nv & 0x80) ? nv & 0x1f : nv % (A64_MAX_VIRTIO + 1);
	size_t bufsize = bufs[fin_u16(f) & 7];
	fp.ram_base = base;
	fp.ram_size = size;
	fp.initrd_start = p->initrd_gpa;
	fp.initrd_end = p->initrd_gpa + p->initrd_size;
	uint8_t cl = fin_u8(f);
	size_t clen = cl < 0xf0 ? cl : (size_t)(cl & 15) * 160; /* up to 2400 */
	size_t got;
	const uint8_t *src = fin_take(f, clen, &got);
	for (size_t i = 0; i < got; i++)
		cmdline[i] = src[i] ? (char)src[i] : ' ';
	cmdline[got] = 0;
	fp.cmdline = (cl & 1) && !got ? NULL : cmdline;
	for (unsigned int i = 0; i < A64_MAX_VIRTIO; i++) {
		fp.virtio[i].base = A64_VIRTIO_MMIO_BASE + i * A64_VIRTIO_MMIO_STRIDE;
		fp.virtio[i].spi = A64_VIRTIO_SPI_BASE + i;
	}

	int r = a64_fdt_build(buf, bufsize, &fp);
	bool valid = fp.nr_vcpus >= 1 && fp.nr_vcpus <= VMM_MAX_VCPUS &&
		     fp.nr_virtio <= A64_MAX_VIRTIO;
	if (!valid)
		FUZZ_CHECK(r == -EINVAL, "fdt with bad params: %d", r);
	if (r)
		return;
	FUZZ_CHECK(valid, "fdt accepted bad params");
	FUZZ_CHECK(fdt_check_full(buf, bufsize) == 0, "built DTB does not check");
	FUZZ_CHECK(fdt_totalsize(buf) <= bufsize, "DTB larger than its buffer");
	int chosen = fdt_path_offset(buf, "/chosen");
	FUZZ_CHECK(chosen >= 0, "no /chosen");
	const char *args = fdt_getprop(buf, chosen, "bootargs", NULL);
	FUZZ_CHECK(args && strcmp(args, fp.cmdline ? fp.cmdline : "") == 0, "bootargs differ");
	const fdt64_t *is = fdt_getprop(buf, chosen, "linux,initrd-start", NULL);
	FUZZ_CHECK(!p->initrd_size || (is && fdt64_to_cpu(*is) == p->initrd_gpa), "initrd-start");
	int cpus = fdt_path_offset(buf, "/cpus");
	int n = 0, node;
	fdt_for_each_subnode(node, buf, cpus)
		n++;
	FUZZ_CHECK(n == (int)fp.nr_vcpus, "%d cpu nodes for %u vcpus", n, fp.nr_vcpus);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t head[A64_IMAGE_PROBE_SIZE];
	struct fin f;
	struct a64_image_info img;
	char err[256];

	fin_init(&f, data, size);
	uint8_t mode = fin_u8(&f);
	bool raw = (mode & 3) == 3;
	unsigned int muts = (mode >> 2) & 7;
	uint8_t fs = fin_u8(&f);
	uint64_t text_raw = fin_u64(&f), size_raw = fin_u64(&f);
	uint8_t pe = fin_u8(&f);
	uint8_t rb = fin_u8(&f), rs = fin_u8(&f), ri = fin_u8(&f);
	uint64_t rraw = fin_u64(&f);

	size_t head_len;
	memset(head, 0, sizeof(head));
	if (raw) {
		head_len = fin_bytes(&f, head, sizeof(head));
	} else {
		head_len = 64 + (size_t)(text_raw >> 40) % (sizeof(head) - 64);
		uint64_t file = head_len;
		put32(head, 0x14000010); /* b +64: what a real Image starts with */
		put64(head + 8, pick_text(text_raw));
		put64(head + 16, pick_size(size_raw, file));
		put64(head + 24, (size_raw >> 60) & 0xe); /* flags: page size bits, LE */
		put32(head + 56, A64_IMAGE_MAGIC);
		if (pe & 1) { /* an EFI stub: "MZ", PE header at 0x40 */
			unsigned int nsec = 1 + ((pe >> 1) & 7);
			head[0] = 'M';
			head[1] = 'Z';
			put32(head + 0x3c, 0x40);
			memcpy(head + 0x40, "PE\0\0", 4);
			head[0x40 + 6] = (uint8_t)nsec;
			head[0x40 + 20] = 0xa0; /* optional header size */
			uint64_t sec = 0x40 + 24 + 0xa0;
			if (head_len < sec + 40 * nsec)
				head_len = sec + 40 * nsec;
			for (unsigned int i = 0; i < nsec; i++) {
				uint32_t raw_size = 0x200 * (i + 1);
				uint32_t raw_ptr = 0x400 * (i + 1);
				put32(head + sec + 40 * i + 16, raw_size);
				put32(head + sec + 40 * i + 20, raw_ptr);
			}
			if (!(pe & 0x10)) { /* make the file long enough */
				uint32_t need = 0x400 * nsec + 0x200 * nsec;
				if (head_len < need && need <= sizeof(head))
					head_len = need;
			}
			put64(head + 16, pick_size(size_raw, head_len));
		}
		for (unsigned int i = 0; i < muts; i++) {
			uint16_t off = fin_u16(&f) % A64_IMAGE_HDR_SIZE * ((i & 1) ? 64 : 1);
			head[off % sizeof(head)] = fin_u8(&f);
		}
	}
	uint64_t file_size;
	switch (fs & 7) {
	case 1:
		file_size = head_len + fin_u32(&f);
		break;
	case 2:
		file_size = sizeof(head) + fin_u32(&f);
		break;
	case 3:
		file_size = fin_u64(&f);
		break;
	case 4:
		file_size = head_len ? head_len - 1 : 0;
		break;
	case 5:
		file_size = 64;
		break;
	default:
		file_size = head_len;
		break;
	}
	/* the loader passes min(file size, probe size) bytes */
	size_t pass = file_size < head_len ? (size_t)file_size : head_len;

	int r = a64_image_parse(head, pass, file_size, &img, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL, "parse returned %d", r);
	if (r) {
		FUZZ_CHECK(err[0], "rejection without a reason");
		return 0;
	}
	FUZZ_CHECK(pass >= A64_IMAGE_HDR_SIZE && file_size >= A64_IMAGE_HDR_SIZE, "short image");
	FUZZ_CHECK(head[56] == 0x41 && head[57] == 0x52 && head[58] == 0x4d && head[59] == 0x64,
		   "magic");
	FUZZ_CHECK(!(head[24] & 1), "big-endian accepted");
	FUZZ_CHECK(img.text_offset % SZ_4K == 0 && img.text_offset < SZ_2M, "text_offset %#llx",
		   (unsigned long long)img.text_offset);
	FUZZ_CHECK(img.image_size >= file_size && img.image_size <= (1ull << 36), "image_size");
	FUZZ_CHECK(img.file_size == file_size, "file_size");

	/* RAM as the VMM lays it out: 2 MiB aligned base, 16 MiB .. 64 GiB */
	uint64_t base;
	switch (rb & 3) {
	case 0: case 1:
		base = A64_RAM_BASE;
		break;
	case 2:
		base = (rraw & 0xffffff) * SZ_2M; /* below 2^45 */
		break;
	default:
		base = (rb >> 2) * SZ_2M + ((rb & 0x80) ? 0x1000 : 0); /* maybe unaligned */
		break;
	}
	uint64_t ram;
	switch (rs & 3) {
	case 0: case 1:
		ram = (uint64_t)(VMM_MIN_MEM_MIB + (rs >> 2) * 37) << 20;
		break;
	case 2:
		ram = (uint64_t)VMM_MAX_MEM_MIB << 20;
		break;
	default:
		ram = ((rraw >> 24) % ((uint64_t)VMM_MAX_MEM_MIB << 20)) + 1;
		break;
	}
	uint64_t initrd;
	switch (ri & 3) {
	case 0:
		initrd = 0;
		break;
	case 1:
		initrd = (uint64_t)(ri >> 2) << 20;
		break;
	case 2:
		initrd = 1 + (rraw >> 8) % ram;
		break;
	default:
		initrd = ri & 0x80 ? UINT64_MAX - (ri & 0x7f) : ram - (ri >> 2);
		break;
	}
	struct a64_boot_plan plan;
	r = a64_plan_boot(base, ram, &img, initrd, &plan, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL, "plan returned %d", r);
	if (r) {
		FUZZ_CHECK(err[0], "plan rejected without a reason");
		return 0;
	}
	FUZZ_CHECK(base % SZ_2M == 0, "unaligned RAM base accepted");
	check_plan(base, ram, &img, initrd, &plan);
	build_fdt(&f, base, ram, &plan);
	return 0;
}
