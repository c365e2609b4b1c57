/* VM-level test fixture: synthetic Image/initrd files, config and mock KVM. */
#include "vmm_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

uint8_t fixture_kernel_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

uint8_t fixture_initrd_byte(size_t i)
{
	return (uint8_t)(i * 13 + 1);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

void fixture_setup(struct vmm_fixture *f, unsigned int nr_vcpus)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/vmmfix.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->kernel, sizeof(f->kernel), "%s/Image", f->dir);
	snprintf(f->initrd, sizeof(f->initrd), "%s/initrd", f->dir);

	static uint8_t k[FIX_KERNEL_FILE_SIZE];
	for (size_t i = 0; i < sizeof(k); i++)
		k[i] = fixture_kernel_byte(i);
	memset(k, 0, 64);
	put_le64(k + 8, FIX_TEXT_OFFSET);
	put_le64(k + 16, 2 * FIX_KERNEL_FILE_SIZE); /* image_size incl. "BSS" */
	memcpy(k + 56, "ARM\x64", 4);
	for (size_t i = 0; i < 64; i++) /* keep the header part of the pattern check */
		if (i < 8 || (i >= 32 && i < 56) || i >= 60)
			k[i] = fixture_kernel_byte(i);
	write_file(f->kernel, k, sizeof(k));

	uint8_t rd[FIX_INITRD_SIZE];
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = fixture_initrd_byte(i);
	write_file(f->initrd, rd, sizeof(rd));

	vmm_config_init(&f->cfg);
	f->cfg.mem_mib = 64;
	f->cfg.nr_vcpus = nr_vcpus;
	f->cfg.kernel_path = strdup(f->kernel);
	f->cfg.initrd_path = strdup(f->initrd);
	f->cfg.cmdline = strdup("console=ttyAMA0 fixture=1");
	f->cfg.log_level = LOG_ERROR;

	f->mock = mock_kvm_new();
	assert_non_null(f->mock);
	mock_kvm_set_quiet(f->mock, true);
	f->sys = mock_kvm_sys(f->mock);
	assert_int_equal(pipe2(f->out_pipe, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(pipe2(f->in_pipe, O_CLOEXEC), 0);
}

int fixture_create(struct vmm_fixture *f)
{
	int r = vmm_create(&f->vmm, &f->cfg, &f->sys, f->err, sizeof(f->err));
	if (r == 0)
		vmm_set_console_fds(f->vmm, f->in_pipe[0], f->out_pipe[1]);
	return r;
}

size_t fixture_console_output(struct vmm_fixture *f, char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len) {
		ssize_t r = read(f->out_pipe[0], buf + n, len - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

void fixture_teardown(struct vmm_fixture *f)
{
	vmm_destroy(f->vmm);
	f->vmm = NULL;
	unsigned int violations = mock_kvm_violations(f->mock);
	for (unsigned int i = 0; i < violations; i++)
		fprintf(stderr, "mock violation: %s\n", mock_kvm_violation(f->mock, i));
	int fds = mock_kvm_open_fds(f->mock);
	int maps = mock_kvm_live_mappings(f->mock);
	mock_kvm_free(f->mock);
	vmm_config_free(&f->cfg);
	for (int i = 0; i < 2; i++) {
		close(f->out_pipe[i]);
		close(f->in_pipe[i]);
	}
	unlink(f->kernel);
	unlink(f->initrd);
	rmdir(f->dir);
	assert_int_equal(violations, 0);
	assert_int_equal(fds, 0);
	assert_int_equal(maps, 0);
}
