/* Boot timer device: a guest write logs the elapsed time since VMM start; reads
 * return the elapsed time in microseconds (low 32 bits at 0, high at 4). */
#include "devices/boot_timer.h"

#include <string.h>
#include <time.h>

uint64_t boot_timer_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void boot_timer_init(struct boot_timer *bt, const struct log *log, uint64_t start_ns,
		     uint64_t (*now_ns)(void))
{
	memset(bt, 0, sizeof(*bt));
	bt->log = log;
	bt->start_ns = start_ns;
	bt->now_ns = now_ns ? now_ns : boot_timer_monotonic_ns;
}

static uint64_t elapsed_us(const struct boot_timer *bt)
{
	uint64_t now = bt->now_ns();
	return now > bt->start_ns ? (now - bt->start_ns) / 1000 : 0;
}

static void bt_read(void *dev, uint64_t off, uint8_t *data, unsigned int len)
{
	struct boot_timer *bt = dev;
	uint64_t us = elapsed_us(bt);
	memset(data, 0, len);
	if (off >= 8)
		return;
	for (unsigned int i = 0; i < len && off + i < 8; i++)
		data[i] = (uint8_t)(us >> (8 * (off + i)));
}

static void bt_write(void *dev, uint64_t off, const uint8_t *data, unsigned int len)
{
	struct boot_timer *bt = dev;
	(void)off;
	(void)data;
	(void)len;
	uint64_t us = elapsed_us(bt);
	bt->hits++;
	bt->last_ms_x1000 = us ? us : 1;
	log_info(bt->log, "boot-timer: guest signalled after %llu.%03llu ms",
		 (unsigned long long)(us / 1000), (unsigned long long)(us % 1000));
}

const struct bus_device_ops boot_timer_bus_ops = {
	.read = bt_read,
	.write = bt_write,
};
