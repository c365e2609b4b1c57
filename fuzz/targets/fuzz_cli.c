/* libFuzzer target: command-line parsing (reference-vmm/src/core/config.c,
 * vmm_config_parse_args) on argv vectors built from the input, with the error
 * buffer sized by the input (exact-size heap buffer: ASan sees any overflow).
 *
 * Input format:
 *   byte 0  mode  bits 0-1: 0..2 TEMPLATE, 3 RAW
 *   byte 1  error buffer: {512, 0 (NULL), 1, 16, 64, 200, 1024, 2}[v & 7]
 *   RAW      the rest split at NUL bytes into argv[1..] (argv[0] = "vmm"), at
 *            most 64 arguments
 *   TEMPLATE a sequence of options: byte option (table below, incl. unknown and
 *            positional ones), byte form (--opt=value | --opt value | --opt),
 *            then for key=value groups: byte count, per pair byte key (the
 *            option's keys plus unknown/empty ones) and a value picker (paths,
 *            numbers and number edge cases, levels, on/off, backends, quoted
 *            values with commas, raw input bytes); keys and options may repeat.
 * Checks: the result is one of the four enum values; an error writes a
 * non-empty, NUL-terminated message when given a buffer; a successful parse
 * yields a configuration inside every documented limit (kernel path set,
 * memory 16..65536 MiB, 1..8 vCPUs, cmdline < 2048, <= 8 disks with paths,
 * unique, ids <= 20 bytes, console backend/path consistent, vsock cid 3..2^32-2
 * with a uds path, <= 4 unique passthrough devices with 4 KiB aligned fixed
 * addresses and <= 8 unique irq mappings in range); vmm_config_free resets to
 * the defaults.
 */
#include "fuzz_input.h"

#include "core/log.h"
#include "vmm/config.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 64
#define ARG_MAX_LEN 4096

struct argv_buf {
	char *v[MAX_ARGS + 2];
	int n;
};

static void add_arg(struct argv_buf *a, const char *s, size_t len)
{
	if (a->n >= MAX_ARGS + 1)
		return;
	char *p = malloc(len + 1);
	if (!p)
		return;
	memcpy(p, s, len);
	p[len] = 0;
	a->v[a->n++] = p;
}

static const char *const opts[] = {
	"--kernel", "--memory",  "--vcpu",  "--log",    "--on-reset", "--dump-dtb",
	"--block",  "--console", "--vsock", "--passthrough", "--kernel", "--block",
	"--block",  "--passthrough", "--help", "-h",    "--version",  "--bogus",
	"-x",       "kernel",    "--",      "--memory=", "--kernel=path=a", "",
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))
#define NGROUPS 10 /* opts[0..9] take key=value groups (keys below) */

/* keys per option (opts[0..9]) */
static const char *const keys[NGROUPS][5] = {
	{ "path", "initrd", "cmdline", "path", "cmdline" }, /* kernel */
	{ "size_mib", "size_mib", "size", "size_mib", "mib" },
	{ "num", "num", "n", "num", "count" },
	{ "level", "level", "lvl", "level", "level" },
	{ NULL },                                   /* on-reset: plain value */
	{ NULL },                                   /* dump-dtb: plain value */
	{ "path", "ro", "id", "path", "readonly" }, /* block */
	{ "backend", "path", "backend", "socket", "path" },
	{ "cid", "uds", "cid", "uds", "port" },
	{ "sysfs", "addr", "irq", "dtb", "irq" }, /* passthrough */
};

static void value(struct fin *f, char *out, size_t cap)
{
	static const char *const v[] = {
		"disk.img", "/tmp/k", "", "Image", "256", "0x100", "16", "65536", "65537", "15",
		"0", "1", "8", "9", "-1", "1e3", "18446744073709551615", "18446744073709551616",
		"0x", "0X10", " 1", "2 ", "007", "error", "warn", "info", "debug", "DEBUG",
		"on", "off", "true", "false", "yes", "stdio", "pty", "unix", "exit", "reboot",
		"3", "4294967294", "4294967295", "2", "\"a,b=c\"", "\"\"", "\"unterminated",
		"\"x\"y", "console=ttyAMA0 quiet", "a=b", "=", ",", "12345678901234567890x",
		"abcdefghijklmnopqrstu", "abcdefghijklmnopqrst",
		"identity", "0x9000000", "0x9030001", "0:1", "0:1/1:2", "0:1/0:2", "256:1", "1:988",
		"0:987/1:0/2:1/3:2/4:3/5:4/6:5/7:6/8:7", "0:", ":1", "0:1/", "/sys/bus/amba/devices/x",
	};
	uint8_t s = fin_u8(f);
	if (s < 0xe0) {
		snprintf(out, cap, "%s", v[s % (sizeof(v) / sizeof(v[0]))]);
		return;
	}
	if (s < 0xf0) { /* a long value */
		size_t n = (size_t)fin_u16(f) % (cap - 1);
		memset(out, 'x', n);
		out[n] = 0;
		return;
	}
	size_t got; /* raw input bytes, up to a NUL */
	const uint8_t *p = fin_take(f, (s & 15) * 4 + 1, &got);
	size_t n = strnlen((const char *)p, got);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

static void template_args(struct fin *f, struct argv_buf *a)
{
	static char buf[ARG_MAX_LEN + 256];
	static char val[ARG_MAX_LEN];
	while (!fin_done(f) && a->n < MAX_ARGS) {
		unsigned int o = fin_u8(f) % NOPTS;
		const char *name = opts[o];
		uint8_t form = fin_u8(f);
		size_t len = 0;
		buf[0] = 0;
		if (o < NGROUPS && keys[o][0]) {
			unsigned int npairs = form >> 5; /* 0..7 */
			for (unsigned int i = 0; i < npairs && len < sizeof(buf) - 16; i++) {
				uint8_t k = fin_u8(f);
				const char *key = (k & 0x80) ? ((k & 0x40) ? "" : "zzz") : keys[o][k % 5];
				value(f, val, sizeof(val));
				int w = snprintf(buf + len, sizeof(buf) - len, "%s%s%s%s", i ? "," : "",
						 key, (k & 0x20) && i ? "" : "=", val);
				if (w < 0)
					break;
				len += (size_t)w < sizeof(buf) - len ? (size_t)w : sizeof(buf) - len - 1;
			}
		} else {
			value(f, buf, sizeof(buf));
			len = strlen(buf);
		}
		switch (form & 3) {
		case 0: { /* --opt=value */
			char *joined = malloc(strlen(name) + len + 2);
			if (!joined)
				return;
			sprintf(joined, "%s=%s", name, buf);
			add_arg(a, joined, strlen(joined));
			free(joined);
			break;
		}
		case 1:
		case 2: /* --opt value */
			add_arg(a, name, strlen(name));
			add_arg(a, buf, len);
			break;
		default: /* --opt alone (a value may be missing) */
			add_arg(a, name, strlen(name));
			break;
		}
	}
}

static void raw_args(struct fin *f, struct argv_buf *a)
{
	size_t got;
	const uint8_t *p = fin_take(f, fin_left(f), &got);
	size_t start = 0;
	for (size_t i = 0; i <= got && a->n < MAX_ARGS + 1; i++) {
		if (i == got || p[i] == 0) {
			if (i == got && i == start && a->n > 1)
				break;
			add_arg(a, (const char *)p + start, i - start);
			start = i + 1;
		}
	}
}

static void check_config(const struct vmm_config *c)
{
	FUZZ_CHECK(c->kernel_path && c->kernel_path[0], "no kernel path");
	FUZZ_CHECK(c->mem_mib >= VMM_MIN_MEM_MIB && c->mem_mib <= VMM_MAX_MEM_MIB, "memory %llu",
		   (unsigned long long)c->mem_mib);
	FUZZ_CHECK(c->nr_vcpus >= 1 && c->nr_vcpus <= VMM_MAX_VCPUS, "vcpus %u", c->nr_vcpus);
	FUZZ_CHECK(c->cmdline && strlen(c->cmdline) < VMM_CMDLINE_MAX, "cmdline");
	FUZZ_CHECK(!c->initrd_path || c->initrd_path[0], "empty initrd path");
	FUZZ_CHECK(!c->dump_dtb_path || c->dump_dtb_path[0], "empty dtb path");
	FUZZ_CHECK(c->log_level >= LOG_ERROR && c->log_level <= LOG_DEBUG, "log level %d",
		   c->log_level);
	FUZZ_CHECK(c->on_reset == VMM_RESET_EXIT || c->on_reset == VMM_RESET_REBOOT, "on_reset");
	FUZZ_CHECK(c->nr_blocks <= VMM_MAX_BLOCKS, "%u disks", c->nr_blocks);
	for (unsigned int i = 0; i < c->nr_blocks; i++) {
		const struct vmm_block_config *b = &c->blocks[i];
		FUZZ_CHECK(b->path && b->path[0], "disk %u without a path", i);
		FUZZ_CHECK(!b->serial || (b->serial[0] && strlen(b->serial) <= VMM_BLOCK_ID_MAX),
			   "disk %u id", i);
		for (unsigned int k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(c->blocks[k].path, b->path) != 0, "disk %s twice", b->path);
	}
	const struct vmm_console_config *con = &c->console;
	FUZZ_CHECK(con->backend <= VMM_CONSOLE_UNIX, "console backend %d", con->backend);
	FUZZ_CHECK((con->backend == VMM_CONSOLE_UNIX) == (con->path != NULL),
		   "console path/backend mismatch");
	FUZZ_CHECK(!con->path || con->path[0], "empty console path");
	if (c->vsock.enabled) {
		FUZZ_CHECK(c->vsock.guest_cid >= 3 && c->vsock.guest_cid <= 0xfffffffeull,
			   "vsock cid %llu", (unsigned long long)c->vsock.guest_cid);
		FUZZ_CHECK(c->vsock.uds_path && c->vsock.uds_path[0], "vsock without uds");
	}
	FUZZ_CHECK(c->nr_passthrough <= VMM_MAX_PASSTHROUGH, "%u passthrough devices",
		   c->nr_passthrough);
	for (unsigned int i = 0; i < c->nr_passthrough; i++) {
		const struct vmm_passthrough_config *p = &c->passthrough[i];
		FUZZ_CHECK(p->sysfs && p->sysfs[0], "passthrough %u without sysfs", i);
		FUZZ_CHECK(!p->dtb || p->dtb[0], "empty dtb path");
		FUZZ_CHECK(p->placement <= VMM_PT_FIXED, "placement %d", p->placement);
		FUZZ_CHECK(p->placement != VMM_PT_FIXED || !(p->addr & 0xfff), "unaligned addr");
		FUZZ_CHECK(p->nr_irq_map <= VMM_PT_MAX_IRQS, "%u irq mappings", p->nr_irq_map);
		for (unsigned int k = 0; k < p->nr_irq_map; k++) {
			FUZZ_CHECK(p->irq_map[k].index <= 255 && p->irq_map[k].spi <= 987,
				   "irq mapping %u:%u", p->irq_map[k].index, p->irq_map[k].spi);
			for (unsigned int j = 0; j < k; j++)
				FUZZ_CHECK(p->irq_map[j].index != p->irq_map[k].index,
					   "irq index mapped twice");
		}
		for (unsigned int k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(c->passthrough[k].sysfs, p->sysfs) != 0, "sysfs twice");
	}
	FUZZ_CHECK(vmm_config_nr_virtio(c) ==
			   c->nr_blocks + (con->backend != VMM_CONSOLE_NONE) + c->vsock.enabled,
		   "nr_virtio");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t errlens[8] = { 512, 0, 1, 16, 64, 200, 1024, 2 };
	struct fin f;
	struct argv_buf a = { .n = 0 };
	struct vmm_config cfg;

	fin_init(&f, data, size);
	uint8_t mode = fin_u8(&f);
	size_t errlen = errlens[fin_u8(&f) & 7];
	add_arg(&a, "vmm", 3);
	if ((mode & 3) == 3)
		raw_args(&f, &a);
	else
		template_args(&f, &a);
	a.v[a.n] = NULL;

	char *err = errlen ? malloc(errlen) : NULL;
	if (err)
		memset(err, 0x5a, errlen); /* not NUL-terminated before the call */
	vmm_config_init(&cfg);
	enum config_parse_result r = vmm_config_parse_args(&cfg, a.n, a.v, err, errlen);
	FUZZ_CHECK(r == CONFIG_PARSE_OK || r == CONFIG_PARSE_HELP || r == CONFIG_PARSE_VERSION ||
			   r == CONFIG_PARSE_ERROR,
		   "result %d", (int)r);
	if (err) {
		FUZZ_CHECK(memchr(err, 0, errlen) != NULL, "error buffer not NUL-terminated");
		if (r == CONFIG_PARSE_ERROR && errlen > 1)
			FUZZ_CHECK(err[0] != 0, "an error without a message");
		if (r != CONFIG_PARSE_ERROR)
			FUZZ_CHECK(err[0] == 0, "a message without an error: %s", err);
	}
	if (r == CONFIG_PARSE_OK)
		check_config(&cfg);
	vmm_config_free(&cfg);
	FUZZ_CHECK(cfg.mem_mib == 256 && cfg.nr_vcpus == 1 && !cfg.kernel_path && !cfg.nr_blocks,
		   "vmm_config_free did not reset");
	FUZZ_CHECK(vmm_config_usage()[0] && vmm_version()[0], "usage/version");

	free(err);
	for (int i = 0; i < a.n; i++)
		free(a.v[i]);
	return 0;
}
