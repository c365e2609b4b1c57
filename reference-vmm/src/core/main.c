/* The CLI front end: parse argv, validate inputs, run the VM, map the outcome to
 * an exit status (0 poweroff, 1 failure, 2 usage/bad input, 3 guest reset). */
#include "sys/sys.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct vmm_config cfg;
	char err[512];
	vmm_config_init(&cfg);

	switch (vmm_config_parse_args(&cfg, argc, argv, err, sizeof(err))) {
	case CONFIG_PARSE_HELP:
		fputs(vmm_config_usage(), stdout);
		vmm_config_free(&cfg);
		return 0;
	case CONFIG_PARSE_VERSION:
		printf("reference-vmm %s\n", vmm_version());
		vmm_config_free(&cfg);
		return 0;
	case CONFIG_PARSE_ERROR:
		fprintf(stderr, "vmm: %s\n", err);
		vmm_config_free(&cfg);
		return VMM_EXIT_USAGE;
	case CONFIG_PARSE_OK:
		break;
	}

	/* a vanished reader of the console must not kill the VMM */
	signal(SIGPIPE, SIG_IGN);

	int status;
	if (cfg.dump_dtb_path) {
		int r = vmm_dump_dtb(&cfg, cfg.dump_dtb_path, err, sizeof(err));
		if (r < 0)
			fprintf(stderr, "vmm: %s\n", err);
		status = r == -EINVAL ? VMM_EXIT_USAGE : r < 0 ? VMM_EXIT_FAILURE : 0;
		vmm_config_free(&cfg);
		return status;
	}

	struct sys sys = sys_linux();
	struct vmm *vmm;
	int r = vmm_create(&vmm, &cfg, &sys, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "vmm: %s\n", err);
		vmm_config_free(&cfg);
		return r == -EINVAL ? VMM_EXIT_USAGE : VMM_EXIT_FAILURE;
	}
	status = vmm_run(vmm);
	vmm_destroy(vmm);
	vmm_config_free(&cfg);
	return status;
}
