/* Unit tests for devices/pl011.c: ID registers, TX callback, FR flags with the
 * FIFO on and off, RX back-pressure, interrupt levels (recorded), reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/bus.h"
#include "devices/pl011.h"
#include "unit_helpers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define UART_IRQ 1

struct ctx {
	struct pl011 u;
	struct unit_irq_rec irq;
	uint8_t tx[256];
	unsigned int tx_len;
};

static void tx_cb(void *p, uint8_t byte)
{
	struct ctx *c = p;
	if (c->tx_len < sizeof(c->tx))
		c->tx[c->tx_len] = byte;
	c->tx_len++;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	unit_irq_rec_init(&c->irq);
	pl011_init(&c->u, unit_irq_rec_line(&c->irq, UART_IRQ), tx_cb, c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	pl011_destroy(&c->u);
	free(c);
	return 0;
}

static uint32_t rd(struct ctx *c, uint64_t off)
{
	uint8_t d[4];
	pl011_bus_ops.read(&c->u, off, d, 4);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static void wr(struct ctx *c, uint64_t off, uint32_t v)
{
	uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	pl011_bus_ops.write(&c->u, off, d, 4);
}

static void fifo_on(struct ctx *c)
{
	wr(c, PL011_LCR_H, PL011_LCRH_FEN | 0x60 /* 8 bits */);
}

static void test_id_registers(void **state)
{
	struct ctx *c = *state;
	static const uint8_t want[8] = { 0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };
	for (unsigned int i = 0; i < 8; i++)
		assert_int_equal(rd(c, 0xfe0 + 4 * i), want[i]);
	/* through a bus, the way the guest sees it */
	struct bus bus;
	bus_init(&bus);
	assert_int_equal(bus_register(&bus, 0x09000000, 0x1000, &pl011_bus_ops, &c->u, "pl011"),
			 0);
	for (unsigned int i = 0; i < 8; i++) {
		uint8_t d[4];
		assert_int_equal(bus_read(&bus, 0x09000fe0 + 4 * i, d, 4), 0);
		assert_int_equal(d[0], want[i]);
		assert_int_equal(d[1] | d[2] | d[3], 0);
		uint8_t b;
		assert_int_equal(bus_read(&bus, 0x09000fe0 + 4 * i, &b, 1), 0);
		assert_int_equal(b, want[i]);
	}
	/* writes to ID registers are ignored */
	wr(c, 0xfe0, 0xff);
	assert_int_equal(rd(c, 0xfe0), 0x11);
	/* just below the ID block and unknown registers read 0 */
	assert_int_equal(rd(c, 0xfdc), 0);
	assert_int_equal(rd(c, 0x04c), 0);
	assert_int_equal(rd(c, 0x800), 0);
}

static void test_reset_values(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(rd(c, PL011_CR), 0x300);
	assert_int_equal(rd(c, PL011_IFLS), 0x12);
	assert_int_equal(rd(c, PL011_IMSC), 0);
	assert_int_equal(rd(c, PL011_RIS), 0);
	assert_int_equal(rd(c, PL011_MIS), 0);
	assert_int_equal(rd(c, PL011_LCR_H), 0);
	assert_int_equal(rd(c, PL011_FR), PL011_FR_TXFE | PL011_FR_RXFE);
	assert_int_equal(pl011_rx_room(&c->u), 1); /* FIFO off after reset */
	assert_int_equal(c->irq.calls, 0);
	assert_int_equal(c->tx_len, 0);
}

static void test_register_file(void **state)
{
	struct ctx *c = *state;
	wr(c, PL011_IBRD, 0x12345);
	assert_int_equal(rd(c, PL011_IBRD), 0x2345);
	wr(c, PL011_FBRD, 0xff);
	assert_int_equal(rd(c, PL011_FBRD), 0x3f);
	wr(c, PL011_LCR_H, 0x1f70);
	assert_int_equal(rd(c, PL011_LCR_H), 0x70);
	wr(c, PL011_CR, 0x10301);
	assert_int_equal(rd(c, PL011_CR), 0x301);
	wr(c, PL011_IFLS, 0xff);
	assert_int_equal(rd(c, PL011_IFLS), 0x3f);
	wr(c, PL011_IMSC, 0xffffffff);
	assert_int_equal(rd(c, PL011_IMSC), PL011_INT_ALL);
	wr(c, PL011_DMACR, 0xff);
	assert_int_equal(rd(c, PL011_DMACR), 0x7);
	wr(c, PL011_ILPR, 0x1ff);
	assert_int_equal(rd(c, PL011_ILPR), 0xff);
	wr(c, PL011_RSR, 0xf);
	assert_int_equal(rd(c, PL011_RSR), 0);
	/* read-only registers ignore writes */
	wr(c, PL011_FR, 0);
	assert_int_equal(rd(c, PL011_FR), PL011_FR_TXFE | PL011_FR_RXFE);
	wr(c, PL011_RIS, 0xffff);
	wr(c, PL011_MIS, 0xffff);
	assert_int_equal(rd(c, PL011_RIS), 0);
}

static void test_tx_callback(void **state)
{
	struct ctx *c = *state;
	const char *msg = "hello\n";
	for (const char *p = msg; *p; p++)
		wr(c, PL011_DR, (uint8_t)*p);
	assert_int_equal(c->tx_len, strlen(msg));
	assert_memory_equal(c->tx, msg, strlen(msg));
	/* only the low 8 bits are data; a 1-byte write works too */
	wr(c, PL011_DR, 0xf41);
	uint8_t b = 'z';
	pl011_bus_ops.write(&c->u, PL011_DR, &b, 1);
	assert_int_equal(c->tx_len, strlen(msg) + 2);
	assert_int_equal(c->tx[strlen(msg)], 0x41);
	assert_int_equal(c->tx[strlen(msg) + 1], 'z');
	/* TX never fills: FR always says TX FIFO empty and not full */
	uint32_t fr = rd(c, PL011_FR);
	assert_true(fr & PL011_FR_TXFE);
	assert_false(fr & PL011_FR_TXFF);
}

static void test_tx_no_callback(void **state)
{
	(void)state;
	struct pl011 u;
	pl011_init(&u, (struct irq_line){ 0 }, NULL, NULL);
	uint8_t d[4] = { 'x', 0, 0, 0 };
	pl011_bus_ops.write(&u, PL011_DR, d, 4); /* no callback, no irq line: no crash */
	uint8_t imsc[4] = { PL011_INT_TX, 0, 0, 0 };
	pl011_bus_ops.write(&u, PL011_IMSC, imsc, 4);
	assert_int_equal(pl011_receive(&u, d, 1), 1);
	pl011_destroy(&u);
}

static void test_fifo_off(void **state)
{
	struct ctx *c = *state;
	assert_int_equal(pl011_rx_room(&c->u), 1);
	const uint8_t in[] = "ab";
	assert_int_equal(pl011_receive(&c->u, in, 2), 1);
	assert_int_equal(pl011_rx_room(&c->u), 0);
	uint32_t fr = rd(c, PL011_FR);
	assert_false(fr & PL011_FR_RXFE);
	assert_true(fr & PL011_FR_RXFF);
	assert_true(fr & PL011_FR_TXFE);
	assert_int_equal(pl011_receive(&c->u, in + 1, 1), 0); /* full */
	assert_int_equal(rd(c, PL011_DR), 'a');
	fr = rd(c, PL011_FR);
	assert_true(fr & PL011_FR_RXFE);
	assert_false(fr & PL011_FR_RXFF);
	assert_int_equal(pl011_receive(&c->u, in + 1, 1), 1);
	assert_int_equal(rd(c, PL011_DR), 'b');
	/* empty: DR reads 0 and changes nothing */
	assert_int_equal(rd(c, PL011_DR), 0);
	assert_true(rd(c, PL011_FR) & PL011_FR_RXFE);
	assert_int_equal(pl011_receive(&c->u, in, 0), 0);
}

static void test_fifo_on(void **state)
{
	struct ctx *c = *state;
	fifo_on(c);
	assert_int_equal(pl011_rx_room(&c->u), PL011_FIFO_DEPTH);
	uint8_t in[40];
	for (unsigned int i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)('A' + i);
	assert_int_equal(pl011_receive(&c->u, in, 10), 10);
	uint32_t fr = rd(c, PL011_FR);
	assert_false(fr & PL011_FR_RXFE);
	assert_false(fr & PL011_FR_RXFF);
	assert_int_equal(pl011_rx_room(&c->u), PL011_FIFO_DEPTH - 10);
	/* only what fits is accepted, the count says how much */
	assert_int_equal(pl011_receive(&c->u, in + 10, 30), PL011_FIFO_DEPTH - 10);
	fr = rd(c, PL011_FR);
	assert_true(fr & PL011_FR_RXFF);
	assert_false(fr & PL011_FR_RXFE);
	assert_int_equal(pl011_rx_room(&c->u), 0);
	assert_int_equal(pl011_receive(&c->u, in, 5), 0);
	/* drain in order, interleaving with refills so the ring wraps */
	for (unsigned int i = 0; i < 5; i++)
		assert_int_equal(rd(c, PL011_DR), 'A' + i);
	assert_false(rd(c, PL011_FR) & PL011_FR_RXFF);
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"12345678", 8), 5);
	for (unsigned int i = 5; i < PL011_FIFO_DEPTH; i++)
		assert_int_equal(rd(c, PL011_DR), 'A' + i);
	for (unsigned int i = 0; i < 5; i++)
		assert_int_equal(rd(c, PL011_DR), '1' + i);
	assert_true(rd(c, PL011_FR) & PL011_FR_RXFE);
	assert_int_equal(pl011_rx_room(&c->u), PL011_FIFO_DEPTH);
}

static void test_fifo_disable_keeps_one(void **state)
{
	struct ctx *c = *state;
	fifo_on(c);
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"xyz", 3), 3);
	wr(c, PL011_LCR_H, 0x60); /* FEN off */
	uint32_t fr = rd(c, PL011_FR);
	assert_true(fr & PL011_FR_RXFF); /* 1-deep holding register is full */
	assert_int_equal(rd(c, PL011_DR), 'x');
	assert_true(rd(c, PL011_FR) & PL011_FR_RXFE);
	assert_int_equal(rd(c, PL011_DR), 0);
}

static void test_rx_irq_levels(void **state)
{
	struct ctx *c = *state;
	fifo_on(c);
	wr(c, PL011_IMSC, PL011_INT_RX);
	assert_int_equal(c->irq.calls, 0); /* nothing pending yet */

	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(c->irq.calls, 1);
	assert_int_equal(c->irq.level, 1);
	assert_int_equal(c->irq.last_irq, UART_IRQ);
	assert_true(rd(c, PL011_RIS) & PL011_INT_RX);
	assert_int_equal(rd(c, PL011_MIS), PL011_INT_RX);
	/* more data, a DR read that leaves data, register reads: no redundant toggles */
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"c", 1), 1);
	assert_int_equal(rd(c, PL011_DR), 'a');
	(void)rd(c, PL011_FR);
	wr(c, PL011_ICR, PL011_INT_RX); /* data still there: stays asserted */
	assert_int_equal(c->irq.calls, 1);
	assert_int_equal(c->irq.level, 1);
	/* drained → lowered once */
	assert_int_equal(rd(c, PL011_DR), 'b');
	assert_int_equal(rd(c, PL011_DR), 'c');
	assert_int_equal(c->irq.calls, 2);
	assert_int_equal(c->irq.level, 0);
	assert_false(rd(c, PL011_RIS) & PL011_INT_RX);
	(void)rd(c, PL011_DR); /* empty read: no call */
	assert_int_equal(c->irq.calls, 2);

	/* masked: data arrives, line stays low; unmask raises, mask lowers */
	wr(c, PL011_IMSC, 0);
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"d", 1), 1);
	assert_int_equal(c->irq.calls, 2);
	assert_true(rd(c, PL011_RIS) & PL011_INT_RX);
	assert_int_equal(rd(c, PL011_MIS), 0);
	wr(c, PL011_IMSC, PL011_INT_RX);
	assert_int_equal(c->irq.calls, 3);
	assert_int_equal(c->irq.level, 1);
	wr(c, PL011_IMSC, PL011_INT_RX); /* same mask again: no call */
	assert_int_equal(c->irq.calls, 3);
	wr(c, PL011_IMSC, 0);
	assert_int_equal(c->irq.calls, 4);
	assert_int_equal(c->irq.level, 0);
	/* the receive-timeout interrupt alone also signals pending data */
	wr(c, PL011_IMSC, PL011_INT_RT);
	assert_int_equal(c->irq.calls, 5);
	assert_int_equal(c->irq.level, 1);
	assert_int_equal(rd(c, PL011_DR), 'd');
	assert_int_equal(c->irq.calls, 6);
	assert_int_equal(c->irq.level, 0);
	/* the recorded history alternates: never the same level twice in a row */
	for (unsigned int i = 1; i < c->irq.calls; i++)
		assert_int_not_equal(c->irq.history[i], c->irq.history[i - 1]);
	assert_int_equal(c->irq.history[0], 1);
}

static void test_tx_irq(void **state)
{
	struct ctx *c = *state;
	wr(c, PL011_IMSC, PL011_INT_TX);
	assert_int_equal(c->irq.calls, 0);
	wr(c, PL011_DR, 'x');
	assert_int_equal(c->irq.calls, 1);
	assert_int_equal(c->irq.level, 1);
	assert_true(rd(c, PL011_RIS) & PL011_INT_TX);
	assert_int_equal(rd(c, PL011_MIS), PL011_INT_TX);
	wr(c, PL011_DR, 'y'); /* already asserted */
	assert_int_equal(c->irq.calls, 1);
	wr(c, PL011_ICR, PL011_INT_TX);
	assert_int_equal(c->irq.calls, 2);
	assert_int_equal(c->irq.level, 0);
	assert_false(rd(c, PL011_RIS) & PL011_INT_TX);
	assert_int_equal(rd(c, PL011_MIS), 0);
	/* TX raw status is set even when masked; unmasking then raises the line */
	wr(c, PL011_IMSC, 0);
	wr(c, PL011_DR, 'z');
	assert_int_equal(c->irq.calls, 2);
	assert_true(rd(c, PL011_RIS) & PL011_INT_TX);
	wr(c, PL011_IMSC, PL011_INT_TX);
	assert_int_equal(c->irq.calls, 3);
	assert_int_equal(c->irq.level, 1);
	wr(c, PL011_ICR, PL011_INT_ALL);
	assert_int_equal(c->irq.calls, 4);
	assert_int_equal(c->irq.level, 0);
}

static void test_mis_is_ris_and_imsc(void **state)
{
	struct ctx *c = *state;
	fifo_on(c);
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"q", 1), 1);
	wr(c, PL011_DR, 'x');
	uint32_t ris = rd(c, PL011_RIS);
	assert_int_equal(ris & (PL011_INT_RX | PL011_INT_TX), PL011_INT_RX | PL011_INT_TX);
	static const uint32_t masks[] = { 0, PL011_INT_RX, PL011_INT_TX, PL011_INT_RT,
					  PL011_INT_RX | PL011_INT_TX, PL011_INT_ALL, 0x1 };
	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		wr(c, PL011_IMSC, masks[i]);
		assert_int_equal(rd(c, PL011_RIS), ris);
		assert_int_equal(rd(c, PL011_MIS), ris & masks[i]);
		assert_int_equal(c->irq.level, (ris & masks[i]) ? 1 : 0);
	}
}

static void test_odd_accesses(void **state)
{
	struct ctx *c = *state;
	fifo_on(c);
	wr(c, PL011_IMSC, PL011_INT_RX);
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"AB", 2), 2);
	uint8_t d[8];
	/* unaligned reads return zeros and do not pop the FIFO */
	static const unsigned int lens[] = { 1, 2, 4, 8 };
	for (unsigned int off = 1; off < 4; off++) {
		for (unsigned int k = 0; k < 4; k++) {
			memset(d, 0xee, sizeof(d));
			pl011_bus_ops.read(&c->u, PL011_DR + off, d, lens[k]);
			for (unsigned int i = 0; i < lens[k]; i++)
				assert_int_equal(d[i], 0);
			memset(d, 0xee, sizeof(d));
			pl011_bus_ops.read(&c->u, 0xffc + off, d, lens[k]);
			for (unsigned int i = 0; i < lens[k]; i++)
				assert_int_equal(d[i], 0);
		}
	}
	/* unaligned writes are ignored (DR+1 does not transmit) */
	d[0] = 'Z';
	pl011_bus_ops.write(&c->u, PL011_DR + 1, d, 1);
	pl011_bus_ops.write(&c->u, PL011_IMSC + 2, d, 2);
	assert_int_equal(c->tx_len, 0);
	assert_int_equal(rd(c, PL011_IMSC), PL011_INT_RX);
	/* an 8-byte read of DR pops one byte; the upper bytes are zero */
	memset(d, 0xee, sizeof(d));
	pl011_bus_ops.read(&c->u, PL011_DR, d, 8);
	assert_int_equal(d[0], 'A');
	for (int i = 1; i < 8; i++)
		assert_int_equal(d[i], 0);
	/* 1- and 2-byte reads of a register see its low bytes */
	pl011_bus_ops.read(&c->u, PL011_CR, d, 2);
	assert_int_equal(d[0], 0x00);
	assert_int_equal(d[1], 0x03);
	pl011_bus_ops.read(&c->u, PL011_CR, d, 1);
	assert_int_equal(d[0], 0x00);
	/* 8-byte and 2-byte writes use the low 32 / 16 bits */
	const uint8_t w8[8] = { PL011_INT_TX, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };
	pl011_bus_ops.write(&c->u, PL011_IMSC, w8, 8);
	assert_int_equal(rd(c, PL011_IMSC), PL011_INT_TX);
	const uint8_t w2[2] = { 0x34, 0x12 };
	pl011_bus_ops.write(&c->u, PL011_IBRD, w2, 2);
	assert_int_equal(rd(c, PL011_IBRD), 0x1234);
	/* far out of range offsets (the bus would never send them, but no crash) */
	pl011_bus_ops.read(&c->u, 0x1000, d, 4);
	pl011_bus_ops.read(&c->u, UINT64_MAX - 3, d, 4);
	pl011_bus_ops.write(&c->u, 0x1000, d, 4);
	pl011_bus_ops.write(&c->u, UINT64_MAX & ~3ULL, d, 4);
	assert_int_equal(rd(c, PL011_DR), 'B');
}

static void test_reset_registers(void **state)
{
	struct ctx *c = *state;
	fifo_on(c);
	wr(c, PL011_IBRD, 13);
	wr(c, PL011_FBRD, 1);
	wr(c, PL011_CR, 0x301);
	wr(c, PL011_IFLS, 0x9);
	wr(c, PL011_DMACR, 1);
	wr(c, PL011_ILPR, 7);
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"abc", 3), 3);
	wr(c, PL011_DR, 'x');
	pl011_reset(&c->u);
	assert_int_equal(rd(c, PL011_CR), 0x300);
	assert_int_equal(rd(c, PL011_IFLS), 0x12);
	assert_int_equal(rd(c, PL011_IBRD), 0);
	assert_int_equal(rd(c, PL011_FBRD), 0);
	assert_int_equal(rd(c, PL011_LCR_H), 0);
	assert_int_equal(rd(c, PL011_DMACR), 0);
	assert_int_equal(rd(c, PL011_ILPR), 0);
	assert_int_equal(rd(c, PL011_IMSC), 0);
	assert_int_equal(rd(c, PL011_RIS), 0);
	assert_int_equal(rd(c, PL011_FR), PL011_FR_TXFE | PL011_FR_RXFE);
	assert_int_equal(rd(c, PL011_DR), 0);
	assert_int_equal(pl011_rx_room(&c->u), 1);
	/* still works after reset */
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"k", 1), 1);
	assert_int_equal(rd(c, PL011_DR), 'k');
}

static void test_reset_lowers_irq(void **state)
{
	struct ctx *c = *state;
	/* line asserted by pending RX data */
	wr(c, PL011_IMSC, PL011_INT_RX);
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"a", 1), 1);
	assert_int_equal(c->irq.level, 1);
	unsigned int before = c->irq.calls;
	/* reset masks everything and empties the FIFO: the line must go low */
	pl011_reset(&c->u);
	assert_int_equal(rd(c, PL011_MIS), 0);
	if (c->irq.level != 0)
		fail_msg("pl011_reset left the interrupt line asserted: no set_level(0) "
			 "call (%u calls before reset, %u after)",
			 before, c->irq.calls);
	/* and the next interrupt after reset is delivered */
	unsigned int calls = c->irq.calls;
	wr(c, PL011_IMSC, PL011_INT_RX);
	assert_int_equal(pl011_receive(&c->u, (const uint8_t *)"b", 1), 1);
	assert_int_equal(c->irq.calls, calls + 1);
	assert_int_equal(c->irq.level, 1);
}

/* Host input thread and guest reads race on the FIFO: the lock keeps it sane. */
struct race {
	struct ctx *c;
	unsigned int total;
};

static void *feeder(void *arg)
{
	struct race *r = arg;
	unsigned int sent = 0;
	while (sent < r->total) {
		uint8_t b = (uint8_t)sent;
		sent += (unsigned int)pl011_receive(&r->c->u, &b, 1);
	}
	return NULL;
}

static void test_concurrent_rx(void **state)
{
	struct ctx *c = *state;
	fifo_on(c);
	struct race r = { c, 3000 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, feeder, &r), 0);
	unsigned int got = 0;
	while (got < r.total) {
		if (rd(c, PL011_FR) & PL011_FR_RXFE)
			continue;
		assert_int_equal(rd(c, PL011_DR), (uint8_t)got);
		got++;
	}
	pthread_join(t, NULL);
	assert_true(rd(c, PL011_FR) & PL011_FR_RXFE);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_id_registers),
		T(test_reset_values),
		T(test_register_file),
		T(test_tx_callback),
		cmocka_unit_test(test_tx_no_callback),
		T(test_fifo_off),
		T(test_fifo_on),
		T(test_fifo_disable_keeps_one),
		T(test_rx_irq_levels),
		T(test_tx_irq),
		T(test_mis_is_ris_and_imsc),
		T(test_odd_accesses),
		T(test_reset_registers),
		T(test_reset_lowers_irq),
		T(test_concurrent_rx),
	};
	return cmocka_run_group_tests_name("pl011", tests, NULL, NULL);
}
