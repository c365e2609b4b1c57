/* Public API of the reference VMM library. A front end (the CLI is one) builds a
 * vmm_config, creates a VM from it, runs it to completion and destroys it. */
#ifndef VMM_VMM_H
#define VMM_VMM_H

#include "vmm/config.h"

struct sys;
struct vmm;

/* Exit statuses of the CLI, and what vmm_run() reports. */
enum vmm_exit {
	VMM_EXIT_POWEROFF = 0, /* guest powered off (PSCI SYSTEM_OFF) */
	VMM_EXIT_FAILURE = 1,  /* runtime failure of the VMM or the guest (crash event, KVM error) */
	VMM_EXIT_USAGE = 2,    /* bad command line or bad input file: no VM was started */
	VMM_EXIT_RESET = 3,    /* guest asked for a reset and on_reset is exit */
};

/*
 * Create a VM from cfg using the given OS seam (sys_linux() in production).
 * Input files and devices are validated first; on a bad input the return is
 * -EINVAL and `err` holds one sentence naming it (caller exits VMM_EXIT_USAGE).
 * Other negative errnos are runtime failures (a kernel refusing a valid request
 * during VM setup is reported as -EIO), also described in `err`.
 */
int vmm_create(struct vmm **out, const struct vmm_config *cfg, const struct sys *sys, char *err,
	       size_t errlen);

/* Run until the guest powers off / resets / fails. Returns an enum vmm_exit.
 * While it runs, SIGINT and SIGTERM are blocked in the calling thread (and the
 * threads it starts) and turn into an orderly stop (VMM_EXIT_FAILURE). */
int vmm_run(struct vmm *vmm);

/* Ask a running VM to stop from another thread or a signal handler context
 * (async-signal-safe). vmm_run() then returns VMM_EXIT_FAILURE. */
void vmm_request_stop(struct vmm *vmm);

void vmm_destroy(struct vmm *vmm);

/* Guest console fds (default stdin/stdout). in_fd -1: no input. Call before
 * vmm_run(). A TTY on in_fd is switched to raw mode while the VM runs. */
void vmm_set_console_fds(struct vmm *vmm, int in_fd, int out_fd);

/* Build the DTB that vmm_create would give the guest and write it to `path`,
 * without KVM. Same validation and errors as vmm_create. */
int vmm_dump_dtb(const struct vmm_config *cfg, const char *path, char *err, size_t errlen);

#endif
