/* MMIO bus: range registration, overlap checks and access dispatch. */
#include "core/bus.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *bus)
{
	memset(bus, 0, sizeof(*bus));
}

int bus_register(struct bus *bus, uint64_t base, uint64_t size, const struct bus_device_ops *ops,
		 void *dev, const char *name)
{
	if (size == 0 || base + size < base || !ops || !ops->read || !ops->write)
		return -EINVAL;
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (base < r->base + r->size && r->base < base + size)
			return -EEXIST;
	}
	if (bus->nr >= BUS_MAX_DEVICES)
		return -ENOSPC;
	bus->ranges[bus->nr++] = (struct bus_range){ base, size, ops, dev, name };
	return 0;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned int len)
{
	if (addr + len < addr)
		return NULL;
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (addr >= r->base && addr - r->base < r->size && len <= r->size - (addr - r->base))
			return r;
	}
	return NULL;
}

static bool valid_len(unsigned int len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

int bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, unsigned int len)
{
	if (!valid_len(len))
		return -EINVAL;
	memset(data, 0, len);
	const struct bus_range *r = bus_find(bus, addr, len);
	if (!r)
		return -ENODEV;
	r->ops->read(r->dev, addr - r->base, data, len);
	return 0;
}

int bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, unsigned int len)
{
	if (!valid_len(len))
		return -EINVAL;
	const struct bus_range *r = bus_find(bus, addr, len);
	if (!r)
		return -ENODEV;
	r->ops->write(r->dev, addr - r->base, data, len);
	return 0;
}
