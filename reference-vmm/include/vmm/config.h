/* VMM configuration: what a front end fills in (the CLI does it from argv) and
 * the library validates before anything touches KVM. */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMM_MAX_VCPUS 8
#define VMM_MIN_MEM_MIB 16
#define VMM_MAX_MEM_MIB (64 * 1024)
#define VMM_CMDLINE_MAX 2048

#define VMM_MAX_BLOCKS 8
#define VMM_BLOCK_ID_MAX 20 /* virtio-blk GET_ID length */

struct vmm_block_config {
	char *path; /* owned */
	bool read_only;
	char *serial; /* owned, may be NULL: GET_ID answers with the file name */
};

enum vmm_console_backend {
	VMM_CONSOLE_NONE = 0, /* no virtio-console device */
	VMM_CONSOLE_STDIO,    /* stdin/stdout (the PL011 then gets no input) */
	VMM_CONSOLE_PTY,      /* a new pseudo terminal; its path is logged */
	VMM_CONSOLE_UNIX,     /* a listening unix socket at path */
};

struct vmm_console_config {
	enum vmm_console_backend backend;
	char *path; /* owned; VMM_CONSOLE_UNIX only */
};

struct vmm_vsock_config {
	bool enabled;
	uint64_t guest_cid; /* >= 3 */
	char *uds_path;     /* owned */
};

#define VMM_MAX_PASSTHROUGH 4
#define VMM_PT_MAX_IRQS 8

enum vmm_pt_placement {
	VMM_PT_ALLOC = 0,  /* guest address allocated from the platform-bus window */
	VMM_PT_IDENTITY,   /* guest address = host physical address (Orin DTs expect it) */
	VMM_PT_FIXED,      /* guest address given by the user */
};

struct vmm_passthrough_config {
	char *sysfs; /* owned: /sys/bus/{platform,amba}/devices/NAME */
	enum vmm_pt_placement placement;
	uint64_t addr; /* VMM_PT_FIXED: guest address of the first region */
	char *dtb;     /* owned, may be NULL: DT fragment used instead of the generated node */
	unsigned int nr_irq_map;
	struct {
		uint32_t index; /* VFIO IRQ index of the device */
		uint32_t spi;   /* guest SPI (0-based, INTID - 32) */
	} irq_map[VMM_PT_MAX_IRQS];
};

enum vmm_reset_action {
	VMM_RESET_EXIT = 0, /* guest reset → VMM exits with VMM_EXIT_RESET */
	VMM_RESET_REBOOT,   /* guest reset → VMM rebuilds the guest and boots it again */
};

struct vmm_config {
	uint64_t mem_mib;
	unsigned int nr_vcpus;
	char *kernel_path; /* owned (strdup'd) */
	char *initrd_path; /* owned, may be NULL */
	char *cmdline;     /* owned, may be NULL (empty command line) */
	char *dump_dtb_path; /* owned, may be NULL: write the DTB there and exit */
	int log_level;     /* enum log_level */
	enum vmm_reset_action on_reset;
	unsigned int max_reboots; /* with VMM_RESET_REBOOT; 0 = unlimited */
	struct vmm_block_config blocks[VMM_MAX_BLOCKS];
	unsigned int nr_blocks;
	struct vmm_console_config console;
	struct vmm_vsock_config vsock;
	struct vmm_passthrough_config passthrough[VMM_MAX_PASSTHROUGH];
	unsigned int nr_passthrough;
	/* where sysfs is (NULL: /sys); not a CLI option: tests point it at a fake tree.
	 * Borrowed, never freed by vmm_config_free. */
	const char *sysfs_root;
};

/* Defaults: 256 MiB, 1 vCPU, log level info, on-reset exit. */
void vmm_config_init(struct vmm_config *cfg);
void vmm_config_free(struct vmm_config *cfg);

/*
 * Result of parsing a command line. On CONFIG_PARSE_ERROR, `err` holds one
 * sentence naming the offending input (no trailing newline).
 */
enum config_parse_result {
	CONFIG_PARSE_OK = 0,
	CONFIG_PARSE_HELP,    /* --help given: caller prints usage, exits 0 */
	CONFIG_PARSE_VERSION, /* --version given */
	CONFIG_PARSE_ERROR,
};

enum config_parse_result vmm_config_parse_args(struct vmm_config *cfg, int argc, char *const argv[],
					       char *err, size_t errlen);

/* How many virtio devices cfg asks for; they are numbered in this order:
 * blocks (in order given), console, vsock. */
unsigned int vmm_config_nr_virtio(const struct vmm_config *cfg);

/* The --help text, and the version string. */
const char *vmm_config_usage(void);
const char *vmm_version(void);

#endif
