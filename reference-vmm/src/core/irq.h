/* An interrupt line as a device sees it: a level it can raise or lower. The
 * machine (KVM irq line, irqfd, a test's recorder) decides what that means. */
#ifndef VMM_IRQ_H
#define VMM_IRQ_H

struct irq_line {
	/* level: 1 asserted, 0 deasserted. Returns 0 or -errno. */
	int (*set_level)(void *ctx, unsigned int irq, int level);
	void *ctx;
	unsigned int irq; /* machine-specific number (aarch64: SPI index from 0) */
};

static inline int irq_line_set(const struct irq_line *l, int level)
{
	return l->set_level ? l->set_level(l->ctx, l->irq, level) : 0;
}

#endif
