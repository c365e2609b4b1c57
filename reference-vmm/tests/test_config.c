/* Unit tests for core/config.c: the CLI parser (every option and key, defaults,
 * quoting, both --opt forms, --help/--version) and its one-sentence errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/log.h"
#include "vmm/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRLEN 512

struct ctx {
	struct vmm_config cfg;
	char err[ERRLEN];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	vmm_config_init(&c->cfg);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	vmm_config_free(&c->cfg);
	free(c);
	return 0;
}

#define ARGV(...) ((char *const[]){ "vmm", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((const char *const[]){ "vmm", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(c, ...) vmm_config_parse_args(&(c)->cfg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), \
					    (c)->err, sizeof((c)->err))

/* The parse failed with one sentence (no newline) that contains `needle`. */
static void check_error(struct ctx *c, enum config_parse_result r, const char *needle)
{
	if (r != CONFIG_PARSE_ERROR)
		fail_msg("expected CONFIG_PARSE_ERROR, got %d (err \"%s\")", (int)r, c->err);
	assert_true(c->err[0] != '\0');
	assert_null(strchr(c->err, '\n'));
	if (!strstr(c->err, needle))
		fail_msg("error \"%s\" does not name \"%s\"", c->err, needle);
}

#define ASSERT_PARSE_ERROR(c, needle, ...)                                     \
	do {                                                                   \
		vmm_config_free(&(c)->cfg);                                    \
		memset((c)->err, 0, sizeof((c)->err));                         \
		check_error((c), PARSE((c), __VA_ARGS__), (needle));           \
	} while (0)

#define ASSERT_PARSE_OK(c, ...)                                                \
	do {                                                                   \
		vmm_config_free(&(c)->cfg);                                    \
		enum config_parse_result r_ = PARSE((c), __VA_ARGS__);         \
		if (r_ != CONFIG_PARSE_OK)                                     \
			fail_msg("parse failed (%d): %s", (int)r_, (c)->err);  \
	} while (0)

/* ---- defaults, every option and key ---------------------------------------------------- */

static void test_init_defaults(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(c->cfg.mem_mib, 256);
	assert_int_equal(c->cfg.nr_vcpus, 1);
	assert_int_equal(c->cfg.log_level, LOG_INFO);
	assert_int_equal(c->cfg.on_reset, VMM_RESET_EXIT);
	assert_int_equal(c->cfg.max_reboots, 0);
	assert_null(c->cfg.kernel_path);
	assert_null(c->cfg.initrd_path);
	assert_null(c->cfg.cmdline);
	assert_null(c->cfg.dump_dtb_path);
}

static void test_minimal_defaults(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(PARSE(c, "--kernel", "path=Image"), CONFIG_PARSE_OK);
	assert_string_equal(c->err, "");
	assert_string_equal(c->cfg.kernel_path, "Image");
	assert_null(c->cfg.initrd_path);
	assert_string_equal(c->cfg.cmdline, "console=ttyAMA0");
	assert_null(c->cfg.dump_dtb_path);
	assert_int_equal(c->cfg.mem_mib, 256);
	assert_int_equal(c->cfg.nr_vcpus, 1);
	assert_int_equal(c->cfg.log_level, LOG_INFO);
	assert_int_equal(c->cfg.on_reset, VMM_RESET_EXIT);
	assert_int_equal(c->cfg.max_reboots, 0);
}

static void test_all_options(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--kernel",
			"path=/boot/Image,initrd=/boot/initrd.img,cmdline=\"console=ttyAMA0 quiet\"",
			"--memory", "size_mib=1024", "--vcpu", "num=4", "--log", "level=debug",
			"--on-reset", "reboot", "--dump-dtb", "/tmp/out.dtb");
	assert_string_equal(c->cfg.kernel_path, "/boot/Image");
	assert_string_equal(c->cfg.initrd_path, "/boot/initrd.img");
	assert_string_equal(c->cfg.cmdline, "console=ttyAMA0 quiet");
	assert_int_equal(c->cfg.mem_mib, 1024);
	assert_int_equal(c->cfg.nr_vcpus, 4);
	assert_int_equal(c->cfg.log_level, LOG_DEBUG);
	assert_int_equal(c->cfg.on_reset, VMM_RESET_REBOOT);
	assert_string_equal(c->cfg.dump_dtb_path, "/tmp/out.dtb");
}

static void test_key_order_free(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--vcpu", "num=2", "--kernel", "cmdline=root=/dev/vda,initrd=I,path=K");
	assert_string_equal(c->cfg.kernel_path, "K");
	assert_string_equal(c->cfg.initrd_path, "I");
	assert_string_equal(c->cfg.cmdline, "root=/dev/vda"); /* '=' inside a value is fine */
	assert_int_equal(c->cfg.nr_vcpus, 2);
}

static void test_log_levels(void **state)
{
	struct ctx *c = *state;
	static const struct {
		char *arg;
		int level;
	} levels[] = { { "level=error", LOG_ERROR },
		       { "level=warn", LOG_WARN },
		       { "level=info", LOG_INFO },
		       { "level=debug", LOG_DEBUG } };
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		ASSERT_PARSE_OK(c, "--kernel", "path=K", "--log", levels[i].arg);
		assert_int_equal(c->cfg.log_level, levels[i].level);
	}
}

static void test_on_reset(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--on-reset", "exit", "--kernel", "path=K");
	assert_int_equal(c->cfg.on_reset, VMM_RESET_EXIT);
	ASSERT_PARSE_OK(c, "--on-reset", "reboot", "--kernel", "path=K");
	assert_int_equal(c->cfg.on_reset, VMM_RESET_REBOOT);
	ASSERT_PARSE_OK(c, "--on-reset=reboot", "--kernel", "path=K");
	assert_int_equal(c->cfg.on_reset, VMM_RESET_REBOOT);
}

static void test_bounds_accepted(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--memory", "size_mib=16", "--vcpu", "num=1");
	assert_int_equal(c->cfg.mem_mib, VMM_MIN_MEM_MIB);
	assert_int_equal(c->cfg.nr_vcpus, 1);
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--memory", "size_mib=65536", "--vcpu", "num=8");
	assert_int_equal(c->cfg.mem_mib, VMM_MAX_MEM_MIB);
	assert_int_equal(c->cfg.nr_vcpus, VMM_MAX_VCPUS);
}

/* ---- quoting and the two option forms ------------------------------------------------- */

static void test_quoting(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--kernel", "path=K,cmdline=\"console=ttyAMA0,115200 root=/dev/vda rw\"");
	assert_string_equal(c->cfg.cmdline, "console=ttyAMA0,115200 root=/dev/vda rw");
	/* a quoted value in the middle of the group, then more keys */
	ASSERT_PARSE_OK(c, "--kernel", "cmdline=\"a,b=c, d\",path=\"/dir with space/Im,age\",initrd=R");
	assert_string_equal(c->cfg.cmdline, "a,b=c, d");
	assert_string_equal(c->cfg.kernel_path, "/dir with space/Im,age");
	assert_string_equal(c->cfg.initrd_path, "R");
	/* unquoted spaces are part of the value (the shell already split argv) */
	ASSERT_PARSE_OK(c, "--kernel", "path=K,cmdline=console=ttyAMA0 quiet loglevel=3");
	assert_string_equal(c->cfg.cmdline, "console=ttyAMA0 quiet loglevel=3");
	/* an explicitly empty command line is kept empty (no default) */
	ASSERT_PARSE_OK(c, "--kernel", "path=K,cmdline=\"\"");
	assert_string_equal(c->cfg.cmdline, "");
	ASSERT_PARSE_OK(c, "--kernel", "path=K,cmdline=");
	assert_string_equal(c->cfg.cmdline, "");
}

static void test_equals_form(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--kernel=path=K,cmdline=\"x,y\"", "--memory=size_mib=512",
			"--vcpu=num=3", "--log=level=warn", "--on-reset=exit", "--dump-dtb=d.dtb");
	assert_string_equal(c->cfg.kernel_path, "K");
	assert_string_equal(c->cfg.cmdline, "x,y");
	assert_int_equal(c->cfg.mem_mib, 512);
	assert_int_equal(c->cfg.nr_vcpus, 3);
	assert_int_equal(c->cfg.log_level, LOG_WARN);
	assert_int_equal(c->cfg.on_reset, VMM_RESET_EXIT);
	assert_string_equal(c->cfg.dump_dtb_path, "d.dtb");
	/* mixing both forms */
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--memory=size_mib=64", "--vcpu", "num=2");
	assert_int_equal(c->cfg.mem_mib, 64);
	assert_int_equal(c->cfg.nr_vcpus, 2);
}

static void test_help_version(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(PARSE(c, "--help"), CONFIG_PARSE_HELP);
	assert_int_equal(PARSE(c, "-h"), CONFIG_PARSE_HELP);
	assert_int_equal(PARSE(c, "--version"), CONFIG_PARSE_VERSION);
	/* no --kernel needed, anywhere on the line */
	vmm_config_free(&c->cfg);
	assert_int_equal(PARSE(c, "--memory", "size_mib=64", "--help"), CONFIG_PARSE_HELP);
	vmm_config_free(&c->cfg);
	assert_int_equal(PARSE(c, "--kernel", "path=K", "--version"), CONFIG_PARSE_VERSION);
	const char *u = vmm_config_usage();
	assert_non_null(u);
	static const char *const mentioned[] = {
		"--kernel", "--memory", "--vcpu",  "--log", "--on-reset", "--dump-dtb",
		"--help",   "--version", "size_mib", "num=", "initrd",    "cmdline",
	};
	for (size_t i = 0; i < sizeof(mentioned) / sizeof(mentioned[0]); i++)
		if (!strstr(u, mentioned[i]))
			fail_msg("usage text does not mention %s", mentioned[i]);
	assert_non_null(vmm_version());
	assert_true(strlen(vmm_version()) > 0);
}

/* ---- errors ----------------------------------------------------------------------------- */

static void test_err_unknown_option(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "'--bogus'", "--kernel", "path=K", "--bogus", "x=1");
	ASSERT_PARSE_ERROR(c, "'--bogus'", "--bogus=1", "--kernel", "path=K");
	ASSERT_PARSE_ERROR(c, "'--kern'", "--kern", "path=K");
	ASSERT_PARSE_ERROR(c, "'--kernelx'", "--kernelx=path=K");
	ASSERT_PARSE_ERROR(c, "'-k'", "-k", "path=K");
	ASSERT_PARSE_ERROR(c, "'Image'", "--kernel", "path=K", "Image");
	ASSERT_PARSE_ERROR(c, "'--'", "--", "--kernel", "path=K");
}

static void test_err_unknown_key(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "'foo'", "--kernel", "path=K,foo=1");
	ASSERT_PARSE_ERROR(c, "'size'", "--kernel", "path=K", "--memory", "size=64");
	ASSERT_PARSE_ERROR(c, "'count'", "--kernel", "path=K", "--vcpu", "count=2");
	ASSERT_PARSE_ERROR(c, "'lvl'", "--kernel", "path=K", "--log", "lvl=debug");
	ASSERT_PARSE_ERROR(c, "'num'", "--kernel", "path=K", "--memory", "size_mib=64,num=2");
}

static void test_err_not_a_number(void **state)
{
	struct ctx *c = *state;
	static char *const bad[] = {
		"abc", "12k", "1.5", "-1", "+4", "0x", "99999999999999999999999", "4 ",
	};
	char arg[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char needle[64];
		snprintf(needle, sizeof(needle), "'%s'", bad[i]);
		snprintf(arg, sizeof(arg), "size_mib=%s", bad[i]);
		ASSERT_PARSE_ERROR(c, needle, "--kernel", "path=K", "--memory", arg);
		snprintf(arg, sizeof(arg), "num=%s", bad[i]);
		ASSERT_PARSE_ERROR(c, needle, "--kernel", "path=K", "--vcpu", arg);
	}
	/* an empty number names its key */
	ASSERT_PARSE_ERROR(c, "num", "--kernel", "path=K", "--vcpu", "num=");
	ASSERT_PARSE_ERROR(c, "size_mib", "--kernel", "path=K", "--memory", "size_mib=");
}

static void test_err_vcpu_range(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "got 0", "--kernel", "path=K", "--vcpu", "num=0");
	assert_non_null(strstr(c->err, "--vcpu"));
	assert_non_null(strstr(c->err, "between 1 and 8"));
	ASSERT_PARSE_ERROR(c, "got 9", "--kernel", "path=K", "--vcpu", "num=9");
	assert_non_null(strstr(c->err, "between 1 and 8"));
	ASSERT_PARSE_ERROR(c, "got 4294967297", "--kernel", "path=K", "--vcpu", "num=4294967297");
}

static void test_err_memory_range(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "got 15", "--kernel", "path=K", "--memory", "size_mib=15");
	assert_non_null(strstr(c->err, "--memory"));
	assert_non_null(strstr(c->err, "between 16 and 65536"));
	ASSERT_PARSE_ERROR(c, "got 0", "--kernel", "path=K", "--memory", "size_mib=0");
	ASSERT_PARSE_ERROR(c, "got 65537", "--kernel", "path=K", "--memory", "size_mib=65537");
	ASSERT_PARSE_ERROR(c, "got 18446744073709551615", "--kernel", "path=K", "--memory",
			   "size_mib=18446744073709551615");
}

static void test_err_duplicate_option(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "--memory given twice", "--kernel", "path=K", "--memory",
			   "size_mib=64", "--memory", "size_mib=128");
	ASSERT_PARSE_ERROR(c, "--kernel given twice", "--kernel", "path=K", "--kernel=path=L");
	ASSERT_PARSE_ERROR(c, "--on-reset given twice", "--kernel", "path=K", "--on-reset",
			   "exit", "--on-reset", "exit");
	ASSERT_PARSE_ERROR(c, "--dump-dtb given twice", "--kernel", "path=K", "--dump-dtb", "a",
			   "--dump-dtb=b");
	ASSERT_PARSE_ERROR(c, "--vcpu given twice", "--vcpu", "num=1", "--vcpu", "num=1",
			   "--kernel", "path=K");
	ASSERT_PARSE_ERROR(c, "--log given twice", "--log", "level=info", "--log=level=info",
			   "--kernel", "path=K");
}

static void test_err_duplicate_key(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "'path'", "--kernel", "path=K,path=L");
	assert_non_null(strstr(c->err, "twice"));
	ASSERT_PARSE_ERROR(c, "'cmdline'", "--kernel", "path=K,cmdline=\"a\",cmdline=b");
	ASSERT_PARSE_ERROR(c, "'size_mib'", "--kernel", "path=K", "--memory",
			   "size_mib=64,size_mib=64");
	ASSERT_PARSE_ERROR(c, "'num'", "--kernel", "path=K", "--vcpu", "num=1,num=2");
}

static void test_err_missing_value(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "--memory needs a value", "--kernel", "path=K", "--memory");
	ASSERT_PARSE_ERROR(c, "--kernel needs a value", "--kernel");
	ASSERT_PARSE_ERROR(c, "--vcpu needs a value", "--kernel", "path=K", "--vcpu");
	ASSERT_PARSE_ERROR(c, "--log needs a value", "--kernel", "path=K", "--log");
	ASSERT_PARSE_ERROR(c, "--on-reset needs a value", "--kernel", "path=K", "--on-reset");
	ASSERT_PARSE_ERROR(c, "--dump-dtb needs a value", "--kernel", "path=K", "--dump-dtb");
}

static void test_err_missing_kernel(void **state)
{
	struct ctx *c = *state;
	char *const argv[] = { "vmm", NULL };
	memset(c->err, 0, sizeof(c->err));
	check_error(c, vmm_config_parse_args(&c->cfg, 1, argv, c->err, sizeof(c->err)),
		    "--kernel");
	ASSERT_PARSE_ERROR(c, "--kernel", "--memory", "size_mib=64");
	ASSERT_PARSE_ERROR(c, "--kernel path=FILE", "--kernel", "initrd=I,cmdline=x");
}

static void test_err_quotes(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "unterminated quote", "--kernel", "path=K,cmdline=\"console=ttyAMA0");
	assert_non_null(strstr(c->err, "'cmdline'"));
	ASSERT_PARSE_ERROR(c, "'path'", "--kernel", "path=\"K");
	assert_non_null(strstr(c->err, "unterminated"));
	ASSERT_PARSE_ERROR(c, "'cmdline'", "--kernel", "path=K,cmdline=\"a\"b");
}

static void test_err_empty_value(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "path", "--kernel", "path=");
	assert_non_null(strstr(c->err, "empty"));
	ASSERT_PARSE_ERROR(c, "path", "--kernel", "path=\"\"");
	ASSERT_PARSE_ERROR(c, "initrd", "--kernel", "path=K,initrd=");
	assert_non_null(strstr(c->err, "empty"));
	ASSERT_PARSE_ERROR(c, "--dump-dtb", "--kernel", "path=K", "--dump-dtb", "");
	ASSERT_PARSE_ERROR(c, "--dump-dtb", "--kernel", "path=K", "--dump-dtb=");
	ASSERT_PARSE_ERROR(c, "--kernel", "--kernel", "");
	ASSERT_PARSE_ERROR(c, "--kernel", "--kernel=");
	ASSERT_PARSE_ERROR(c, "--memory", "--kernel", "path=K", "--memory", "");
	ASSERT_PARSE_ERROR(c, "--on-reset", "--kernel", "path=K", "--on-reset", "");
	ASSERT_PARSE_ERROR(c, "level ''", "--kernel", "path=K", "--log", "level=");
}

static void test_err_bad_values(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "'verbose'", "--kernel", "path=K", "--log", "level=verbose");
	ASSERT_PARSE_ERROR(c, "'INFO'", "--kernel", "path=K", "--log", "level=INFO");
	ASSERT_PARSE_ERROR(c, "'halt'", "--kernel", "path=K", "--on-reset", "halt");
	ASSERT_PARSE_ERROR(c, "'Image'", "--kernel", "Image"); /* forgot path= */
	ASSERT_PARSE_ERROR(c, "empty key", "--kernel", "=K");
	ASSERT_PARSE_ERROR(c, "--kernel", "--kernel", "path=K,,initrd=I");
}

static void test_err_cmdline_too_long(void **state)
{
	struct ctx *c = *state;
	char arg[VMM_CMDLINE_MAX + 32];
	strcpy(arg, "path=K,cmdline=");
	size_t pre = strlen(arg);
	memset(arg + pre, 'a', VMM_CMDLINE_MAX - 1);
	arg[pre + VMM_CMDLINE_MAX - 1] = '\0';
	ASSERT_PARSE_OK(c, "--kernel", arg);
	assert_int_equal(strlen(c->cfg.cmdline), VMM_CMDLINE_MAX - 1);
	arg[pre + VMM_CMDLINE_MAX - 1] = 'a';
	arg[pre + VMM_CMDLINE_MAX] = '\0';
	ASSERT_PARSE_ERROR(c, "cmdline", "--kernel", arg);
	assert_non_null(strstr(c->err, "2047"));
}

static void test_err_too_many_pairs(void **state)
{
	struct ctx *c = *state;
	char arg[256] = "path=K";
	for (char k = 'a'; k < 'a' + 16; k++) {
		size_t n = strlen(arg);
		snprintf(arg + n, sizeof(arg) - n, ",%c=1", k);
	}
	ASSERT_PARSE_ERROR(c, "--kernel", "--kernel", arg);
}

static void test_err_buffer_handling(void **state)
{
	struct ctx *c = *state;
	/* NULL / zero-length / tiny error buffers are safe */
	char *const argv[] = { "vmm", "--bogus", NULL };
	assert_int_equal(vmm_config_parse_args(&c->cfg, 2, argv, NULL, 0), CONFIG_PARSE_ERROR);
	char small[8];
	memset(small, 'x', sizeof(small));
	assert_int_equal(vmm_config_parse_args(&c->cfg, 2, argv, small, 0), CONFIG_PARSE_ERROR);
	assert_int_equal(small[0], 'x');
	assert_int_equal(vmm_config_parse_args(&c->cfg, 2, argv, small, sizeof(small)),
			 CONFIG_PARSE_ERROR);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	/* success clears a stale message */
	strcpy(c->err, "stale");
	char *const ok[] = { "vmm", "--kernel", "path=K", NULL };
	vmm_config_free(&c->cfg);
	assert_int_equal(vmm_config_parse_args(&c->cfg, 3, ok, c->err, sizeof(c->err)),
			 CONFIG_PARSE_OK);
	assert_string_equal(c->err, "");
}

/* ---- ownership ------------------------------------------------------------------------- */

static void test_free_after_error_no_leak(void **state)
{
	struct ctx *c = *state;
	/* strings allocated before the error are freed by vmm_config_free (LSan checks) */
	ASSERT_PARSE_ERROR(c, "'x'", "--kernel", "path=K,initrd=I,cmdline=C", "--dump-dtb", "D",
			   "--memory", "size_mib=x");
	ASSERT_PARSE_ERROR(c, "'bogus'", "--dump-dtb", "D", "--kernel", "path=K,bogus=1");
	ASSERT_PARSE_ERROR(c, "'cmdline'", "--kernel", "path=K,initrd=I,cmdline=\"oops");
	vmm_config_free(&c->cfg);
	/* free resets to the defaults and is idempotent */
	assert_null(c->cfg.kernel_path);
	assert_null(c->cfg.initrd_path);
	assert_null(c->cfg.cmdline);
	assert_null(c->cfg.dump_dtb_path);
	assert_int_equal(c->cfg.mem_mib, 256);
	assert_int_equal(c->cfg.nr_vcpus, 1);
	vmm_config_free(&c->cfg);
}

static void test_free_after_success(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--kernel", "path=K,initrd=I", "--dump-dtb", "D", "--memory",
			"size_mib=32", "--on-reset", "reboot");
	vmm_config_free(&c->cfg);
	assert_null(c->cfg.kernel_path);
	assert_null(c->cfg.cmdline);
	assert_int_equal(c->cfg.mem_mib, 256);
	assert_int_equal(c->cfg.on_reset, VMM_RESET_EXIT);
	/* the strings are owned copies: argv may go away */
	char path[] = "Kern";
	char *const argv[] = { "vmm", "--kernel", NULL, NULL };
	char group[32];
	snprintf(group, sizeof(group), "path=%s", path);
	((char **)argv)[2] = group;
	assert_int_equal(vmm_config_parse_args(&c->cfg, 3, argv, c->err, sizeof(c->err)),
			 CONFIG_PARSE_OK);
	memset(group, 0, sizeof(group));
	assert_string_equal(c->cfg.kernel_path, "Kern");
}

/* ---- virtio device options ------------------------------------------------------------ */

static void test_block_repeatable(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--block", "path=/d/a.img,ro=on,id=disk-a",
			"--block=path=/d/b.img");
	assert_int_equal(c->cfg.nr_blocks, 2);
	assert_string_equal(c->cfg.blocks[0].path, "/d/a.img");
	assert_true(c->cfg.blocks[0].read_only);
	assert_string_equal(c->cfg.blocks[0].serial, "disk-a");
	assert_string_equal(c->cfg.blocks[1].path, "/d/b.img");
	assert_false(c->cfg.blocks[1].read_only);
	assert_null(c->cfg.blocks[1].serial);
}

static void test_block_errors(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "path=FILE is required", "--kernel", "path=K", "--block", "ro=on");
	ASSERT_PARSE_ERROR(c, "'maybe' is not on or off", "--kernel", "path=K", "--block",
			   "path=a,ro=maybe");
	ASSERT_PARSE_ERROR(c, "longer than 20", "--kernel", "path=K", "--block",
			   "path=a,id=123456789012345678901");
	ASSERT_PARSE_ERROR(c, "'a' is given twice", "--kernel", "path=K", "--block", "path=a",
			   "--block", "path=a");
	ASSERT_PARSE_ERROR(c, "unknown key 'size'", "--kernel", "path=K", "--block",
			   "path=a,size=1");
	ASSERT_PARSE_ERROR(c, "at most 8", "--kernel", "path=K", "--block", "path=1", "--block",
			   "path=2", "--block", "path=3", "--block", "path=4", "--block", "path=5",
			   "--block", "path=6", "--block", "path=7", "--block", "path=8", "--block",
			   "path=9");
}

static void test_console_backends(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--console", "backend=pty");
	assert_int_equal(c->cfg.console.backend, VMM_CONSOLE_PTY);
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--console", "backend=unix,path=/run/c.sock");
	assert_int_equal(c->cfg.console.backend, VMM_CONSOLE_UNIX);
	assert_string_equal(c->cfg.console.path, "/run/c.sock");
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--console", "backend=stdio");
	assert_int_equal(c->cfg.console.backend, VMM_CONSOLE_STDIO);
	ASSERT_PARSE_ERROR(c, "needs path=SOCKET", "--kernel", "path=K", "--console",
			   "backend=unix");
	ASSERT_PARSE_ERROR(c, "'tcp' is not stdio, pty or unix", "--kernel", "path=K",
			   "--console", "backend=tcp");
	ASSERT_PARSE_ERROR(c, "only for backend=unix", "--kernel", "path=K", "--console",
			   "backend=pty,path=x");
	ASSERT_PARSE_ERROR(c, "backend=stdio|pty|unix is required", "--kernel", "path=K",
			   "--console", "path=x");
}

static void test_vsock_options(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--vsock", "cid=42,uds=/tmp/v.sock");
	assert_true(c->cfg.vsock.enabled);
	assert_int_equal(c->cfg.vsock.guest_cid, 42);
	assert_string_equal(c->cfg.vsock.uds_path, "/tmp/v.sock");
	ASSERT_PARSE_ERROR(c, "between 3 and", "--kernel", "path=K", "--vsock", "cid=2,uds=x");
	ASSERT_PARSE_ERROR(c, "'abc' is not a number", "--kernel", "path=K", "--vsock",
			   "cid=abc,uds=x");
	ASSERT_PARSE_ERROR(c, "both cid=N and uds=PATH", "--kernel", "path=K", "--vsock",
			   "cid=3");
	ASSERT_PARSE_ERROR(c, "--vsock given twice", "--kernel", "path=K", "--vsock",
			   "cid=3,uds=a", "--vsock", "cid=4,uds=b");
}

static void test_passthrough_options(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--passthrough",
			"sysfs=/sys/bus/amba/devices/9030000.pl061,addr=identity,irq=0:7",
			"--passthrough", "sysfs=/sys/bus/platform/devices/x,addr=0x0c000000,dtb=f.dtb");
	assert_int_equal(c->cfg.nr_passthrough, 2);
	assert_string_equal(c->cfg.passthrough[0].sysfs, "/sys/bus/amba/devices/9030000.pl061");
	assert_int_equal(c->cfg.passthrough[0].placement, VMM_PT_IDENTITY);
	assert_int_equal(c->cfg.passthrough[0].nr_irq_map, 1);
	assert_int_equal(c->cfg.passthrough[0].irq_map[0].index, 0);
	assert_int_equal(c->cfg.passthrough[0].irq_map[0].spi, 7);
	assert_int_equal(c->cfg.passthrough[1].placement, VMM_PT_FIXED);
	assert_int_equal(c->cfg.passthrough[1].addr, 0x0c000000);
	assert_string_equal(c->cfg.passthrough[1].dtb, "f.dtb");
	ASSERT_PARSE_OK(c, "--kernel", "path=K", "--passthrough", "sysfs=a,irq=0:40/1:41");
	assert_int_equal(c->cfg.passthrough[0].nr_irq_map, 2);
	assert_int_equal(c->cfg.passthrough[0].irq_map[1].spi, 41);
	assert_int_equal(c->cfg.passthrough[0].placement, VMM_PT_ALLOC);
}

static void test_passthrough_errors(void **state)
{
	struct ctx *c = *state;
	ASSERT_PARSE_ERROR(c, "sysfs=PATH is required", "--kernel", "path=K", "--passthrough",
			   "addr=identity");
	ASSERT_PARSE_ERROR(c, "not 4 KiB aligned", "--kernel", "path=K", "--passthrough",
			   "sysfs=a,addr=0x1001");
	ASSERT_PARSE_ERROR(c, "'nowhere' is not identity or a number", "--kernel", "path=K",
			   "--passthrough", "sysfs=a,addr=nowhere");
	ASSERT_PARSE_ERROR(c, "is not IDX:SPI", "--kernel", "path=K", "--passthrough",
			   "sysfs=a,irq=7");
	ASSERT_PARSE_ERROR(c, "mapped twice", "--kernel", "path=K", "--passthrough",
			   "sysfs=a,irq=0:1/0:2");
	ASSERT_PARSE_ERROR(c, "out of range", "--kernel", "path=K", "--passthrough",
			   "sysfs=a,irq=0:5000");
	ASSERT_PARSE_ERROR(c, "'a' is given twice", "--kernel", "path=K", "--passthrough",
			   "sysfs=a", "--passthrough", "sysfs=a");
	ASSERT_PARSE_ERROR(c, "unknown key 'iommu'", "--kernel", "path=K", "--passthrough",
			   "sysfs=a,iommu=on");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_init_defaults),
		T(test_minimal_defaults),
		T(test_all_options),
		T(test_key_order_free),
		T(test_log_levels),
		T(test_on_reset),
		T(test_bounds_accepted),
		T(test_quoting),
		T(test_equals_form),
		T(test_help_version),
		T(test_err_unknown_option),
		T(test_err_unknown_key),
		T(test_err_not_a_number),
		T(test_err_vcpu_range),
		T(test_err_memory_range),
		T(test_err_duplicate_option),
		T(test_err_duplicate_key),
		T(test_err_missing_value),
		T(test_err_missing_kernel),
		T(test_err_quotes),
		T(test_err_empty_value),
		T(test_err_bad_values),
		T(test_err_cmdline_too_long),
		T(test_err_too_many_pairs),
		T(test_err_buffer_handling),
		T(test_free_after_error_no_leak),
		T(test_free_after_success),
		T(test_block_repeatable),
		T(test_block_errors),
		T(test_console_backends),
		T(test_vsock_options),
		T(test_passthrough_options),
		T(test_passthrough_errors),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
