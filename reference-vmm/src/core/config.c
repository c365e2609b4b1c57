/* Command-line parsing into struct vmm_config: vmm-reference style option groups
 * (--kernel path=FILE,cmdline="...") with one-sentence errors naming the input. */
#include "vmm/config.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VMM_VERSION "0.1.0"

static const char usage_text[] =
	"usage: vmm --kernel path=FILE[,initrd=FILE][,cmdline=\"ARGS\"] [options]\n"
	"\n"
	"Boots a Linux guest (arm64 Image) under KVM. The guest console (PL011) is\n"
	"this process's stdin/stdout; VMM messages go to stderr.\n"
	"\n"
	"options (groups take comma-separated key=value pairs; quote a value with\n"
	"double quotes to include commas or spaces):\n"
	"  --kernel path=FILE,initrd=FILE,cmdline=\"ARGS\"\n"
	"                      guest kernel (arm64 Image, required), optional initrd,\n"
	"                      kernel command line (default: \"console=ttyAMA0\")\n"
	"  --memory size_mib=N guest RAM in MiB, 16..65536 (default 256)\n"
	"  --vcpu num=N        number of vCPUs, 1..8 (default 1)\n"
	"  --log level=L       error | warn | info | debug (default info)\n"
	"  --on-reset ACTION   what a guest reset does: exit (default; exit status 3)\n"
	"                      or reboot (boot the guest again)\n"
	"  --block path=FILE,ro=on|off,id=STR\n"
	"                      a virtio-blk disk on a raw image (repeatable, up to 8);\n"
	"                      ro=on refuses guest writes; id is what the guest reads\n"
	"                      as the serial (<= 20 bytes, default: the file name)\n"
	"  --console backend=stdio|pty|unix,path=SOCKET\n"
	"                      a virtio-console (guest hvc0): on stdio (takes stdin\n"
	"                      from the PL011), a new pty (path logged), or a unix\n"
	"                      socket the VMM listens on\n"
	"  --vsock cid=N,uds=PATH\n"
	"                      a virtio-vsock device with guest CID N (>= 3); host\n"
	"                      side on unix sockets: connect to PATH and send\n"
	"                      \"CONNECT <port>\\n\"; guest connections to host port P\n"
	"                      go to PATH_P\n"
	"  --passthrough sysfs=PATH,addr=identity|ADDR,irq=IDX:SPI[/IDX:SPI...],dtb=FILE\n"
	"                      pass a platform/AMBA device bound to vfio-platform or\n"
	"                      vfio-amba to the guest (repeatable, up to 4). addr:\n"
	"                      identity = host physical address; default: allocated.\n"
	"                      irq: VFIO IRQ index to guest SPI; default: allocated.\n"
	"                      dtb: a DT fragment to use instead of the node generated\n"
	"                      from the host DT (see docs/passthrough.md)\n"
	"  --dump-dtb FILE     write the guest device tree blob to FILE and exit\n"
	"  --help              show this text\n"
	"  --version           show the version\n"
	"\n"
	"exit status: 0 guest powered off, 1 runtime failure, 2 bad command line or\n"
	"input file (no VM started), 3 guest reset with --on-reset exit.\n";

const char *vmm_config_usage(void)
{
	return usage_text;
}

void vmm_config_init(struct vmm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_mib = 256;
	cfg->nr_vcpus = 1;
	cfg->log_level = LOG_INFO;
	cfg->on_reset = VMM_RESET_EXIT;
}

void vmm_config_free(struct vmm_config *cfg)
{
	free(cfg->kernel_path);
	free(cfg->initrd_path);
	free(cfg->cmdline);
	free(cfg->dump_dtb_path);
	for (unsigned int i = 0; i < cfg->nr_blocks; i++) {
		free(cfg->blocks[i].path);
		free(cfg->blocks[i].serial);
	}
	free(cfg->console.path);
	free(cfg->vsock.uds_path);
	for (unsigned int i = 0; i < cfg->nr_passthrough; i++) {
		free(cfg->passthrough[i].sysfs);
		free(cfg->passthrough[i].dtb);
	}
	vmm_config_init(cfg);
}

struct perr {
	char *buf;
	size_t len;
};

__attribute__((format(printf, 2, 3))) static enum config_parse_result fail(struct perr *e,
									    const char *fmt, ...)
{
	if (e->buf && e->len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->buf, e->len, fmt, ap);
		va_end(ap);
	}
	return CONFIG_PARSE_ERROR;
}

static int parse_u64(const char *s, uint64_t *out)
{
	/* decimal, or hex with 0x; no sign, no spaces, no octal surprises */
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!isxdigit((unsigned char)*s) || (base == 10 && !isdigit((unsigned char)*s)))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* One key=value item of a group, with the value unquoted (points into a copy). */
struct kv {
	char *key;
	char *val;
};

#define MAX_KV 16

/*
 * Split "a=1,b=\"x,y\"" in place into key/value pairs. Returns the count, or a
 * negative value on a syntax error (message written to e).
 */
static int split_group(char *s, const char *opt, struct kv *kv, struct perr *e)
{
	int n = 0;
	while (*s) {
		if (n == MAX_KV) {
			fail(e, "%s: too many key=value pairs", opt);
			return -1;
		}
		char *key = s;
		char *eq = NULL;
		while (*s && *s != ',' && *s != '=')
			s++;
		if (*s != '=') {
			*s = '\0';
			fail(e, "%s: '%s' is not of the form key=value", opt, key);
			return -1;
		}
		eq = s;
		*eq = '\0';
		s++;
		char *val = s;
		if (*s == '"') {
			val = ++s;
			while (*s && *s != '"')
				s++;
			if (*s != '"') {
				fail(e, "%s: unterminated quote in value of '%s'", opt, key);
				return -1;
			}
			*s++ = '\0';
			if (*s && *s != ',') {
				fail(e, "%s: unexpected text after the quoted value of '%s'", opt, key);
				return -1;
			}
		} else {
			while (*s && *s != ',')
				s++;
		}
		if (*s == ',')
			*s++ = '\0';
		if (!*key) {
			fail(e, "%s: empty key", opt);
			return -1;
		}
		for (int i = 0; i < n; i++) {
			if (strcmp(kv[i].key, key) == 0) {
				fail(e, "%s: key '%s' given twice", opt, key);
				return -1;
			}
		}
		kv[n].key = key;
		kv[n].val = val;
		n++;
	}
	if (n == 0) {
		fail(e, "%s: expects key=value pairs", opt);
		return -1;
	}
	return n;
}

static enum config_parse_result set_str(char **dst, const char *v, const char *opt,
					const char *key, struct perr *e)
{
	if (!*v)
		return fail(e, "%s: %s must not be empty", opt, key);
	free(*dst);
	*dst = strdup(v);
	if (!*dst)
		return fail(e, "out of memory");
	return CONFIG_PARSE_OK;
}

static enum config_parse_result parse_kernel(struct vmm_config *cfg, struct kv *kv, int n,
					     struct perr *e)
{
	for (int i = 0; i < n; i++) {
		enum config_parse_result r;
		if (strcmp(kv[i].key, "path") == 0) {
			r = set_str(&cfg->kernel_path, kv[i].val, "--kernel", "path", e);
		} else if (strcmp(kv[i].key, "initrd") == 0) {
			r = set_str(&cfg->initrd_path, kv[i].val, "--kernel", "initrd", e);
		} else if (strcmp(kv[i].key, "cmdline") == 0) {
			if (strlen(kv[i].val) >= VMM_CMDLINE_MAX)
				return fail(e, "--kernel: cmdline is longer than %d bytes",
					    VMM_CMDLINE_MAX - 1);
			free(cfg->cmdline);
			cfg->cmdline = strdup(kv[i].val);
			r = cfg->cmdline ? CONFIG_PARSE_OK : fail(e, "out of memory");
		} else {
			return fail(e, "--kernel: unknown key '%s' (expected path, initrd, cmdline)",
				    kv[i].key);
		}
		if (r != CONFIG_PARSE_OK)
			return r;
	}
	return CONFIG_PARSE_OK;
}

static enum config_parse_result parse_number_key(struct kv *kv, int n, const char *opt,
						 const char *key, uint64_t min, uint64_t max,
						 uint64_t *out, struct perr *e)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(kv[i].key, key) != 0)
			return fail(e, "%s: unknown key '%s' (expected %s)", opt, kv[i].key, key);
		uint64_t v;
		if (parse_u64(kv[i].val, &v) < 0)
			return fail(e, "%s: %s '%s' is not a number", opt, key, kv[i].val);
		if (v < min || v > max)
			return fail(e, "%s: %s must be between %llu and %llu (got %llu)", opt, key,
				    (unsigned long long)min, (unsigned long long)max,
				    (unsigned long long)v);
		*out = v;
	}
	return CONFIG_PARSE_OK;
}

static enum config_parse_result parse_log(struct vmm_config *cfg, struct kv *kv, int n,
					  struct perr *e)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(kv[i].key, "level") != 0)
			return fail(e, "--log: unknown key '%s' (expected level)", kv[i].key);
		enum log_level lvl;
		if (log_level_parse(kv[i].val, &lvl) < 0)
			return fail(e, "--log: level '%s' is not one of error, warn, info, debug",
				    kv[i].val);
		cfg->log_level = lvl;
	}
	return CONFIG_PARSE_OK;
}

static enum config_parse_result parse_onoff(const char *opt, const char *key, const char *v,
					   bool *out, struct perr *e)
{
	if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = true;
	else if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*out = false;
	else
		return fail(e, "%s: %s '%s' is not on or off", opt, key, v);
	return CONFIG_PARSE_OK;
}

static enum config_parse_result parse_block(struct vmm_config *cfg, struct kv *kv, int n,
					    struct perr *e)
{
	if (cfg->nr_blocks >= VMM_MAX_BLOCKS)
		return fail(e, "--block: at most %d disks", VMM_MAX_BLOCKS);
	struct vmm_block_config *b = &cfg->blocks[cfg->nr_blocks++];
	for (int i = 0; i < n; i++) {
		enum config_parse_result r;
		if (strcmp(kv[i].key, "path") == 0) {
			r = set_str(&b->path, kv[i].val, "--block", "path", e);
		} else if (strcmp(kv[i].key, "ro") == 0) {
			r = parse_onoff("--block", "ro", kv[i].val, &b->read_only, e);
		} else if (strcmp(kv[i].key, "id") == 0) {
			if (strlen(kv[i].val) > VMM_BLOCK_ID_MAX)
				return fail(e, "--block: id '%s' is longer than %d bytes", kv[i].val,
					    VMM_BLOCK_ID_MAX);
			r = set_str(&b->serial, kv[i].val, "--block", "id", e);
		} else {
			return fail(e, "--block: unknown key '%s' (expected path, ro, id)", kv[i].key);
		}
		if (r != CONFIG_PARSE_OK)
			return r;
	}
	if (!b->path)
		return fail(e, "--block: path=FILE is required");
	for (unsigned int i = 0; i + 1 < cfg->nr_blocks; i++)
		if (strcmp(cfg->blocks[i].path, b->path) == 0)
			return fail(e, "--block: '%s' is given twice", b->path);
	return CONFIG_PARSE_OK;
}

static enum config_parse_result parse_console(struct vmm_config *cfg, struct kv *kv, int n,
					      struct perr *e)
{
	struct vmm_console_config *c = &cfg->console;
	for (int i = 0; i < n; i++) {
		enum config_parse_result r = CONFIG_PARSE_OK;
		if (strcmp(kv[i].key, "backend") == 0) {
			if (strcmp(kv[i].val, "stdio") == 0)
				c->backend = VMM_CONSOLE_STDIO;
			else if (strcmp(kv[i].val, "pty") == 0)
				c->backend = VMM_CONSOLE_PTY;
			else if (strcmp(kv[i].val, "unix") == 0)
				c->backend = VMM_CONSOLE_UNIX;
			else
				return fail(e, "--console: backend '%s' is not stdio, pty or unix",
					    kv[i].val);
		} else if (strcmp(kv[i].key, "path") == 0) {
			r = set_str(&c->path, kv[i].val, "--console", "path", e);
		} else {
			return fail(e, "--console: unknown key '%s' (expected backend, path)",
				    kv[i].key);
		}
		if (r != CONFIG_PARSE_OK)
			return r;
	}
	if (c->backend == VMM_CONSOLE_NONE)
		return fail(e, "--console: backend=stdio|pty|unix is required");
	if (c->backend == VMM_CONSOLE_UNIX && !c->path)
		return fail(e, "--console: backend=unix needs path=SOCKET");
	if (c->backend != VMM_CONSOLE_UNIX && c->path)
		return fail(e, "--console: path is only for backend=unix");
	return CONFIG_PARSE_OK;
}

static enum config_parse_result parse_vsock(struct vmm_config *cfg, struct kv *kv, int n,
					    struct perr *e)
{
	struct vmm_vsock_config *v = &cfg->vsock;
	bool have_cid = false;
	for (int i = 0; i < n; i++) {
		enum config_parse_result r = CONFIG_PARSE_OK;
		if (strcmp(kv[i].key, "cid") == 0) {
			uint64_t cid;
			if (parse_u64(kv[i].val, &cid) < 0)
				return fail(e, "--vsock: cid '%s' is not a number", kv[i].val);
			if (cid < 3 || cid > 0xffffffffULL - 1)
				return fail(e, "--vsock: cid must be between 3 and 4294967294 (got %s)",
					    kv[i].val);
			v->guest_cid = cid;
			have_cid = true;
		} else if (strcmp(kv[i].key, "uds") == 0) {
			r = set_str(&v->uds_path, kv[i].val, "--vsock", "uds", e);
		} else {
			return fail(e, "--vsock: unknown key '%s' (expected cid, uds)", kv[i].key);
		}
		if (r != CONFIG_PARSE_OK)
			return r;
	}
	if (!have_cid || !v->uds_path)
		return fail(e, "--vsock: both cid=N and uds=PATH are required");
	v->enabled = true;
	return CONFIG_PARSE_OK;
}

/* "0:40/1:41" → irq map entries */
static enum config_parse_result parse_irq_map(struct vmm_passthrough_config *p, const char *v,
					      struct perr *e)
{
	const char *s = v;
	while (*s) {
		if (p->nr_irq_map >= VMM_PT_MAX_IRQS)
			return fail(e, "--passthrough: at most %d irq mappings", VMM_PT_MAX_IRQS);
		char *end;
		if (!isdigit((unsigned char)*s))
			return fail(e, "--passthrough: irq '%s' is not IDX:SPI[/IDX:SPI...]", v);
		unsigned long idx = strtoul(s, &end, 10);
		if (*end != ':' || !isdigit((unsigned char)end[1]))
			return fail(e, "--passthrough: irq '%s' is not IDX:SPI[/IDX:SPI...]", v);
		unsigned long spi = strtoul(end + 1, &end, 10);
		if (*end && *end != '/')
			return fail(e, "--passthrough: irq '%s' is not IDX:SPI[/IDX:SPI...]", v);
		if (idx > 255 || spi > 987)
			return fail(e, "--passthrough: irq mapping %lu:%lu is out of range (SPI 0..987)",
				    idx, spi);
		for (unsigned int i = 0; i < p->nr_irq_map; i++)
			if (p->irq_map[i].index == idx)
				return fail(e, "--passthrough: irq index %lu is mapped twice", idx);
		p->irq_map[p->nr_irq_map].index = (uint32_t)idx;
		p->irq_map[p->nr_irq_map].spi = (uint32_t)spi;
		p->nr_irq_map++;
		s = *end ? end + 1 : end;
	}
	return CONFIG_PARSE_OK;
}

static enum config_parse_result parse_passthrough(struct vmm_config *cfg, struct kv *kv, int n,
						  struct perr *e)
{
	if (cfg->nr_passthrough >= VMM_MAX_PASSTHROUGH)
		return fail(e, "--passthrough: at most %d devices", VMM_MAX_PASSTHROUGH);
	struct vmm_passthrough_config *p = &cfg->passthrough[cfg->nr_passthrough++];
	for (int i = 0; i < n; i++) {
		enum config_parse_result r = CONFIG_PARSE_OK;
		const char *v = kv[i].val;
		if (strcmp(kv[i].key, "sysfs") == 0) {
			r = set_str(&p->sysfs, v, "--passthrough", "sysfs", e);
		} else if (strcmp(kv[i].key, "addr") == 0) {
			if (strcmp(v, "identity") == 0) {
				p->placement = VMM_PT_IDENTITY;
			} else {
				uint64_t a;
				if (parse_u64(v, &a) < 0)
					return fail(e,
						    "--passthrough: addr '%s' is not identity or a number",
						    v);
				if (a & 0xfff)
					return fail(e,
						    "--passthrough: addr 0x%llx is not 4 KiB aligned",
						    (unsigned long long)a);
				p->placement = VMM_PT_FIXED;
				p->addr = a;
			}
		} else if (strcmp(kv[i].key, "irq") == 0) {
			r = parse_irq_map(p, v, e);
		} else if (strcmp(kv[i].key, "dtb") == 0) {
			r = set_str(&p->dtb, v, "--passthrough", "dtb", e);
		} else {
			return fail(e, "--passthrough: unknown key '%s' (expected sysfs, addr, irq, dtb)",
				    kv[i].key);
		}
		if (r != CONFIG_PARSE_OK)
			return r;
	}
	if (!p->sysfs)
		return fail(e, "--passthrough: sysfs=PATH is required");
	for (unsigned int i = 0; i + 1 < cfg->nr_passthrough; i++)
		if (strcmp(cfg->passthrough[i].sysfs, p->sysfs) == 0)
			return fail(e, "--passthrough: '%s' is given twice", p->sysfs);
	return CONFIG_PARSE_OK;
}

enum opt_id {
	OPT_KERNEL,
	OPT_MEMORY,
	OPT_VCPU,
	OPT_LOG,
	OPT_ON_RESET,
	OPT_DUMP_DTB,
	OPT_BLOCK,
	OPT_CONSOLE,
	OPT_VSOCK,
	OPT_PASSTHROUGH,
	OPT_NR
};

static const char *const opt_names[OPT_NR] = {
	"--kernel", "--memory", "--vcpu", "--log", "--on-reset", "--dump-dtb",
	"--block", "--console", "--vsock", "--passthrough",
};

static enum config_parse_result apply(struct vmm_config *cfg, enum opt_id id, const char *value,
				      struct perr *e)
{
	const char *opt = opt_names[id];
	if (id == OPT_DUMP_DTB)
		return set_str(&cfg->dump_dtb_path, value, opt, "FILE", e);
	if (id == OPT_ON_RESET) {
		if (strcmp(value, "exit") == 0)
			cfg->on_reset = VMM_RESET_EXIT;
		else if (strcmp(value, "reboot") == 0)
			cfg->on_reset = VMM_RESET_REBOOT;
		else
			return fail(e, "--on-reset: '%s' is not exit or reboot", value);
		return CONFIG_PARSE_OK;
	}

	char *copy = strdup(value);
	if (!copy)
		return fail(e, "out of memory");
	struct kv kv[MAX_KV];
	enum config_parse_result r = CONFIG_PARSE_ERROR;
	int n = split_group(copy, opt, kv, e);
	if (n > 0) {
		uint64_t v;
		switch (id) {
		case OPT_KERNEL:
			r = parse_kernel(cfg, kv, n, e);
			break;
		case OPT_MEMORY:
			r = parse_number_key(kv, n, opt, "size_mib", VMM_MIN_MEM_MIB,
					     VMM_MAX_MEM_MIB, &v, e);
			if (r == CONFIG_PARSE_OK)
				cfg->mem_mib = v;
			break;
		case OPT_VCPU:
			r = parse_number_key(kv, n, opt, "num", 1, VMM_MAX_VCPUS, &v, e);
			if (r == CONFIG_PARSE_OK)
				cfg->nr_vcpus = (unsigned int)v;
			break;
		case OPT_LOG:
			r = parse_log(cfg, kv, n, e);
			break;
		case OPT_BLOCK:
			r = parse_block(cfg, kv, n, e);
			break;
		case OPT_CONSOLE:
			r = parse_console(cfg, kv, n, e);
			break;
		case OPT_VSOCK:
			r = parse_vsock(cfg, kv, n, e);
			break;
		case OPT_PASSTHROUGH:
			r = parse_passthrough(cfg, kv, n, e);
			break;
		default:
			r = fail(e, "internal error: unhandled option %s", opt);
			break;
		}
	}
	free(copy);
	return r;
}

enum config_parse_result vmm_config_parse_args(struct vmm_config *cfg, int argc, char *const argv[],
					       char *err, size_t errlen)
{
	struct perr e = { err, errlen };
	bool seen[OPT_NR] = { false };
	if (err && errlen)
		err[0] = '\0';

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
			return CONFIG_PARSE_HELP;
		if (strcmp(arg, "--version") == 0)
			return CONFIG_PARSE_VERSION;
		if (strncmp(arg, "--", 2) != 0)
			return fail(&e, "unexpected argument '%s' (options start with --)", arg);

		const char *eq = strchr(arg, '=');
		size_t namelen = eq ? (size_t)(eq - arg) : strlen(arg);
		int id = -1;
		for (int k = 0; k < OPT_NR; k++) {
			if (strlen(opt_names[k]) == namelen && strncmp(arg, opt_names[k], namelen) == 0)
				id = k;
		}
		if (id < 0)
			return fail(&e, "unknown option '%.*s' (see --help)", (int)namelen, arg);
		if (seen[id] && id != OPT_BLOCK && id != OPT_PASSTHROUGH) /* repeatable */
			return fail(&e, "%s given twice", opt_names[id]);
		seen[id] = true;

		const char *value;
		if (eq) {
			value = eq + 1;
		} else {
			if (i + 1 >= argc)
				return fail(&e, "%s needs a value", opt_names[id]);
			value = argv[++i];
		}
		enum config_parse_result r = apply(cfg, (enum opt_id)id, value, &e);
		if (r != CONFIG_PARSE_OK)
			return r;
	}
	if (!cfg->kernel_path)
		return fail(&e, "no guest kernel: give --kernel path=FILE");
	if (!cfg->cmdline) {
		cfg->cmdline = strdup("console=ttyAMA0");
		if (!cfg->cmdline)
			return fail(&e, "out of memory");
	}
	return CONFIG_PARSE_OK;
}

unsigned int vmm_config_nr_virtio(const struct vmm_config *cfg)
{
	return cfg->nr_blocks + (cfg->console.backend != VMM_CONSOLE_NONE) + cfg->vsock.enabled;
}

const char *vmm_version(void)
{
	return VMM_VERSION;
}
