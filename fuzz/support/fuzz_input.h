/* Fuzz-input reader shared by the harnesses: consumes the libFuzzer byte string
 * as little-endian fields, pads with zeros once it runs out (never fails), and
 * offers "pickers" that map a byte to interesting values (edges, small, raw).
 * Header-only, no globals; test code only. */
#ifndef FUZZ_INPUT_H
#define FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fin {
	const uint8_t *p;
	size_t n, off;
};

static inline void fin_init(struct fin *f, const uint8_t *p, size_t n)
{
	f->p = p;
	f->n = n;
	f->off = 0;
}

static inline size_t fin_left(const struct fin *f)
{
	return f->n - f->off;
}

static inline bool fin_done(const struct fin *f)
{
	return f->off >= f->n;
}

static inline uint8_t fin_u8(struct fin *f)
{
	return f->off < f->n ? f->p[f->off++] : 0;
}

static inline uint16_t fin_u16(struct fin *f)
{
	uint16_t v = fin_u8(f);
	return (uint16_t)(v | (uint16_t)fin_u8(f) << 8);
}

static inline uint32_t fin_u32(struct fin *f)
{
	uint32_t v = fin_u16(f);
	return v | (uint32_t)fin_u16(f) << 16;
}

static inline uint64_t fin_u64(struct fin *f)
{
	uint64_t v = fin_u32(f);
	return v | (uint64_t)fin_u32(f) << 32;
}

static inline bool fin_bool(struct fin *f)
{
	return fin_u8(f) & 1;
}

/* Up to len bytes into dst (zero-padded); returns how many came from the input. */
static inline size_t fin_bytes(struct fin *f, void *dst, size_t len)
{
	size_t k = fin_left(f) < len ? fin_left(f) : len;
	memcpy(dst, f->p + f->off, k);
	memset((uint8_t *)dst + k, 0, len - k);
	f->off += k;
	return k;
}

/* A view of the next len input bytes (fewer at the end), consumed. */
static inline const uint8_t *fin_take(struct fin *f, size_t len, size_t *got)
{
	const uint8_t *p = f->p + f->off;
	*got = fin_left(f) < len ? fin_left(f) : len;
	f->off += *got;
	return p;
}

/* A value in [0, n) from one byte (n <= 256) or two (n > 256). n > 0. */
static inline uint32_t fin_below(struct fin *f, uint32_t n)
{
	if (n <= 256)
		return fin_u8(f) % n;
	if (n <= 65536)
		return fin_u16(f) % n;
	return fin_u32(f) % n;
}

/*
 * Interesting 32-bit lengths: mostly small, then edges. `typical` is the
 * harness's notion of a normal size (e.g. a buffer size).
 */
static inline uint32_t fin_len32(struct fin *f, uint32_t typical)
{
	uint8_t s = fin_u8(f);
	switch (s >> 5) {
	case 0:
	case 1:
	case 2:
		return typical ? (uint32_t)((s & 31) % ((uint64_t)typical + 1)) : 0; /* small */
	case 3:
		return typical; /* exactly typical */
	case 4:
		return (uint32_t)(fin_u16(f) % (2 * (uint64_t)typical + 1)); /* up to twice typical */
	case 5: {
		static const uint32_t edge[] = { 0, 1, 15, 16, 17, 511, 512, 513, 4095, 4096,
						 0x7fffffff, 0x80000000u, 0xfffffff0u, 0xffffffffu,
						 65536, 65535 };
		return edge[s & 15];
	}
	case 6:
		return typical + (s & 31) - 16; /* around typical (may wrap: intended) */
	default:
		return fin_u32(f); /* raw */
	}
}

/* Debug tracing (FUZZ_VERBOSE=1 in the environment): off by default, cheap. */
static inline bool fuzz_verbose(void)
{
	static int v = -1;
	if (v < 0) {
		const char *e = getenv("FUZZ_VERBOSE");
		v = e && *e && *e != '0';
	}
	return v;
}

#define FUZZ_TRACE(...)                                 \
	do {                                            \
		if (fuzz_verbose())                     \
			fprintf(stderr, __VA_ARGS__);   \
	} while (0)

/* An invariant of the code under test is broken: report and abort (a crash for
 * libFuzzer, a failure for the replay driver). */
#define FUZZ_CHECK(cond, ...)                                                       \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: ", __FILE__, \
				__LINE__, #cond);                                   \
			fprintf(stderr, __VA_ARGS__);                               \
			fputc('\n', stderr);                                        \
			abort();                                                    \
		}                                                                   \
	} while (0)

#endif
