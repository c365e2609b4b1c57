/* PL011 UART model: register file, RX FIFO, interrupt level computation and the
 * PrimeCell identification registers Linux's AMBA bus probes. */
#include "devices/pl011.h"

#include <string.h>

/* PL011 r1p5 peripheral ID and the PrimeCell cell ID, as read at 0xfe0..0xffc */
static const uint8_t pl011_id[8] = { 0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

static void update_irq(struct pl011 *u);

void pl011_reset(struct pl011 *u)
{
	pthread_mutex_lock(&u->lock);
	u->rx_head = u->rx_count = 0;
	u->ris = u->imsc = u->lcr_h = u->ibrd = u->fbrd = u->ilpr = u->dmacr = u->rsr = 0;
	u->cr = 0x300; /* TXE | RXE */
	u->ifls = 0x12;
	update_irq(u); /* lowers a line left asserted */
	pthread_mutex_unlock(&u->lock);
}

void pl011_init(struct pl011 *u, struct irq_line irq, pl011_tx_fn tx, void *tx_ctx)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->irq = irq;
	u->tx = tx;
	u->tx_ctx = tx_ctx;
	pl011_reset(u);
}

void pl011_destroy(struct pl011 *u)
{
	pthread_mutex_destroy(&u->lock);
}

static unsigned int fifo_depth(const struct pl011 *u)
{
	return (u->lcr_h & PL011_LCRH_FEN) ? PL011_FIFO_DEPTH : 1;
}

/* Recompute RX interrupt state and drive the line; lock held. */
static void update_irq(struct pl011 *u)
{
	if (u->rx_count)
		u->ris |= PL011_INT_RX | PL011_INT_RT;
	else
		u->ris &= ~(PL011_INT_RX | PL011_INT_RT);
	int level = (u->ris & u->imsc) ? 1 : 0;
	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

static uint32_t read_reg(struct pl011 *u, uint64_t off)
{
	uint32_t v = 0;
	switch (off) {
	case PL011_DR:
		if (u->rx_count) {
			v = u->rx_fifo[u->rx_head];
			u->rx_head = (u->rx_head + 1) % PL011_FIFO_DEPTH;
			u->rx_count--;
			update_irq(u);
		}
		break;
	case PL011_RSR:
		v = u->rsr;
		break;
	case PL011_FR:
		v = PL011_FR_TXFE; /* TX is instantaneous: FIFO always empty, never busy */
		v |= u->rx_count ? 0 : PL011_FR_RXFE;
		v |= u->rx_count >= fifo_depth(u) ? PL011_FR_RXFF : 0;
		break;
	case PL011_ILPR:
		v = u->ilpr;
		break;
	case PL011_IBRD:
		v = u->ibrd;
		break;
	case PL011_FBRD:
		v = u->fbrd;
		break;
	case PL011_LCR_H:
		v = u->lcr_h;
		break;
	case PL011_CR:
		v = u->cr;
		break;
	case PL011_IFLS:
		v = u->ifls;
		break;
	case PL011_IMSC:
		v = u->imsc;
		break;
	case PL011_RIS:
		v = u->ris;
		break;
	case PL011_MIS:
		v = u->ris & u->imsc;
		break;
	case PL011_DMACR:
		v = u->dmacr;
		break;
	default:
		if (off >= PL011_PERIPH_ID0 && off < 0x1000 && (off & 3) == 0)
			v = pl011_id[(off - PL011_PERIPH_ID0) / 4];
		break;
	}
	return v;
}

static void write_reg(struct pl011 *u, uint64_t off, uint32_t v)
{
	switch (off) {
	case PL011_DR:
		if (u->tx)
			u->tx(u->tx_ctx, (uint8_t)v);
		u->ris |= PL011_INT_TX; /* the byte left at once: TX FIFO below trigger */
		break;
	case PL011_RSR:
		u->rsr = 0; /* write clears errors */
		break;
	case PL011_ILPR:
		u->ilpr = v & 0xff;
		break;
	case PL011_IBRD:
		u->ibrd = v & 0xffff;
		break;
	case PL011_FBRD:
		u->fbrd = v & 0x3f;
		break;
	case PL011_LCR_H:
		/* turning the FIFO off keeps at most one byte */
		if ((u->lcr_h & PL011_LCRH_FEN) && !(v & PL011_LCRH_FEN) && u->rx_count > 1)
			u->rx_count = 1;
		u->lcr_h = v & 0xff;
		break;
	case PL011_CR:
		u->cr = v & 0xffff;
		break;
	case PL011_IFLS:
		u->ifls = v & 0x3f;
		break;
	case PL011_IMSC:
		u->imsc = v & PL011_INT_ALL;
		break;
	case PL011_ICR:
		u->ris &= ~v;
		break;
	case PL011_DMACR:
		u->dmacr = v & 0x7;
		break;
	default:
		break; /* read-only or unimplemented: ignored */
	}
	update_irq(u);
}

static uint32_t le_val(const uint8_t *d, unsigned int len)
{
	uint32_t v = 0;
	for (unsigned int i = 0; i < len && i < 4; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void pl011_mmio_read(void *dev, uint64_t off, uint8_t *data, unsigned int len)
{
	struct pl011 *u = dev;
	memset(data, 0, len);
	/* registers are 32-bit: sub-word reads see the containing word's low bytes */
	if (off & 3)
		return;
	pthread_mutex_lock(&u->lock);
	uint32_t v = read_reg(u, off);
	pthread_mutex_unlock(&u->lock);
	for (unsigned int i = 0; i < len && i < 4; i++)
		data[i] = (uint8_t)(v >> (8 * i));
}

static void pl011_mmio_write(void *dev, uint64_t off, const uint8_t *data, unsigned int len)
{
	struct pl011 *u = dev;
	if (off & 3)
		return;
	pthread_mutex_lock(&u->lock);
	write_reg(u, off, le_val(data, len));
	pthread_mutex_unlock(&u->lock);
}

const struct bus_device_ops pl011_bus_ops = {
	.read = pl011_mmio_read,
	.write = pl011_mmio_write,
};

size_t pl011_rx_room(struct pl011 *u)
{
	pthread_mutex_lock(&u->lock);
	unsigned int depth = fifo_depth(u);
	size_t room = u->rx_count >= depth ? 0 : depth - u->rx_count;
	pthread_mutex_unlock(&u->lock);
	return room;
}

size_t pl011_receive(struct pl011 *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&u->lock);
	unsigned int depth = fifo_depth(u);
	while (n < len && u->rx_count < depth) {
		u->rx_fifo[(u->rx_head + u->rx_count) % PL011_FIFO_DEPTH] = buf[n++];
		u->rx_count++;
	}
	if (n)
		update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}
