/* Test fixture for VM-level tests: a synthetic arm64 Image and initrd in temp
 * files, a config pointing at them, a mock KVM, and helpers to create a VM. */
#ifndef VMM_FIXTURE_H
#define VMM_FIXTURE_H

#include "core/vmm_internal.h"
#include "mock_kvm.h"
#include "vmm/vmm.h"

#include <stddef.h>
#include <stdint.h>

#define FIX_TEXT_OFFSET 0x80000ULL
#define FIX_KERNEL_FILE_SIZE (64 * 1024)
#define FIX_INITRD_SIZE 5000

struct vmm_fixture {
	char dir[64];
	char kernel[96];
	char initrd[96];
	struct vmm_config cfg;
	struct mock_kvm *mock;
	struct sys sys;
	struct vmm *vmm;
	char err[512];
	int out_pipe[2]; /* guest console output: read end [0] */
	int in_pipe[2];  /* guest console input: write end [1] */
};

/* Files + config (mem 64 MiB, nr_vcpus) + mock; no VM yet. Asserts on failure. */
void fixture_setup(struct vmm_fixture *f, unsigned int nr_vcpus);
/* vmm_create through the mock; returns its result (VM in f->vmm on success)
 * and wires the console to the fixture's pipes. */
int fixture_create(struct vmm_fixture *f);
/* Destroy the VM (if any), check the mock saw no ABI violations and nothing
 * leaked (fds, mappings), free everything. */
void fixture_teardown(struct vmm_fixture *f);

/* Read what the guest wrote to the console (non-blocking drain, NUL-terminated). */
size_t fixture_console_output(struct vmm_fixture *f, char *buf, size_t len);

/* The byte the synthetic kernel has at offset i (so tests can check loading). */
uint8_t fixture_kernel_byte(size_t i);
uint8_t fixture_initrd_byte(size_t i);

#endif
