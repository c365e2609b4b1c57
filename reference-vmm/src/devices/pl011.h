/* ARM PL011 UART model (the guest's ttyAMA0): registers, 32-byte RX FIFO,
 * level interrupt, PrimeCell ID registers. TX bytes go to a callback. */
#ifndef VMM_PL011_H
#define VMM_PL011_H

#include "core/bus.h"
#include "core/irq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL011_FIFO_DEPTH 32

/* Register offsets */
#define PL011_DR 0x000
#define PL011_RSR 0x004
#define PL011_FR 0x018
#define PL011_ILPR 0x020
#define PL011_IBRD 0x024
#define PL011_FBRD 0x028
#define PL011_LCR_H 0x02c
#define PL011_CR 0x030
#define PL011_IFLS 0x034
#define PL011_IMSC 0x038
#define PL011_RIS 0x03c
#define PL011_MIS 0x040
#define PL011_ICR 0x044
#define PL011_DMACR 0x048
#define PL011_PERIPH_ID0 0xfe0

/* FR bits */
#define PL011_FR_RXFE (1u << 4)
#define PL011_FR_TXFF (1u << 5)
#define PL011_FR_RXFF (1u << 6)
#define PL011_FR_TXFE (1u << 7)
/* interrupt bits (RIS/MIS/IMSC/ICR) */
#define PL011_INT_RX (1u << 4)
#define PL011_INT_TX (1u << 5)
#define PL011_INT_RT (1u << 6)
#define PL011_INT_ALL 0x7ffu
/* LCR_H.FEN */
#define PL011_LCRH_FEN (1u << 4)

/* Called with each byte the guest transmits; must not call back into the UART. */
typedef void (*pl011_tx_fn)(void *ctx, uint8_t byte);

struct pl011 {
	pthread_mutex_t lock;
	struct irq_line irq;
	pl011_tx_fn tx;
	void *tx_ctx;
	uint8_t rx_fifo[PL011_FIFO_DEPTH];
	unsigned int rx_head, rx_count;
	uint32_t ris, imsc, lcr_h, cr, ibrd, fbrd, ifls, ilpr, dmacr, rsr;
	int irq_level; /* last level driven on the line */
};

void pl011_init(struct pl011 *u, struct irq_line irq, pl011_tx_fn tx, void *tx_ctx);
void pl011_destroy(struct pl011 *u);

/* Reset registers to power-on values (FIFO emptied, interrupts masked). */
void pl011_reset(struct pl011 *u);

/*
 * Host → guest bytes. Accepts as many as fit in the RX FIFO (1 if the guest
 * disabled the FIFO) and returns that count; the caller retries the rest later.
 */
size_t pl011_receive(struct pl011 *u, const uint8_t *buf, size_t len);

/* Free space in the RX FIFO. */
size_t pl011_rx_room(struct pl011 *u);

extern const struct bus_device_ops pl011_bus_ops;

#endif
