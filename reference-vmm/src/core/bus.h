/* The MMIO bus: maps guest-physical ranges to devices and dispatches trapped
 * accesses. Devices see only (offset, data, len), never KVM. */
#ifndef VMM_BUS_H
#define VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_DEVICES 64

/*
 * A device's MMIO handlers. `off` is relative to the device base. Accesses are
 * 1, 2, 4 or 8 bytes, little-endian in `data`. Handlers must tolerate any offset
 * and length the guest chooses (unknown registers read as 0, writes ignored).
 */
struct bus_device_ops {
	void (*read)(void *dev, uint64_t off, uint8_t *data, unsigned int len);
	void (*write)(void *dev, uint64_t off, const uint8_t *data, unsigned int len);
};

struct bus_range {
	uint64_t base;
	uint64_t size;
	const struct bus_device_ops *ops;
	void *dev;
	const char *name;
};

struct bus {
	struct bus_range ranges[BUS_MAX_DEVICES];
	unsigned int nr;
};

void bus_init(struct bus *bus);

/* -EINVAL (size 0 / wraps / no ops), -EEXIST (overlap), -ENOSPC (full). */
int bus_register(struct bus *bus, uint64_t base, uint64_t size, const struct bus_device_ops *ops,
		 void *dev, const char *name);

/* The range covering [addr, addr+len) or NULL. */
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned int len);

/*
 * Dispatch an access. Returns 0 if a device handled it, -ENODEV if nothing is
 * mapped there (reads then return all-zero data), -EINVAL for a bad length.
 */
int bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, unsigned int len);
int bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, unsigned int len);

#endif
