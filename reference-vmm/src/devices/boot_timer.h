/* Boot timer: a 4 KiB MMIO device the guest's init writes to when it is up; the
 * VMM logs the time since its own start (Firecracker-style boot timing). */
#ifndef VMM_BOOT_TIMER_H
#define VMM_BOOT_TIMER_H

#include "core/bus.h"
#include "core/log.h"

#include <stdint.h>

struct boot_timer {
	const struct log *log;
	uint64_t start_ns;
	uint64_t (*now_ns)(void); /* clock, injectable for tests */
	uint64_t last_ms_x1000;   /* last reported time in µs (0 = never) */
	unsigned int hits;
};

/* now_ns NULL → CLOCK_MONOTONIC. start_ns is the VMM's start time on that clock. */
void boot_timer_init(struct boot_timer *bt, const struct log *log, uint64_t start_ns,
		     uint64_t (*now_ns)(void));

uint64_t boot_timer_monotonic_ns(void);

extern const struct bus_device_ops boot_timer_bus_ops;

#endif
