/* Unit tests for core/console.c with pipes: output buffering and flushing (newline,
 * explicit, full buffer, idle timer), input pumping with back-pressure, EOF, stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/console.h"
#include "unit_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a fake sink standing in for the guest UART ---------------------------------------- */

struct fake_sink {
	pthread_mutex_t m;
	uint8_t buf[8192];
	size_t len;
	size_t per_call;     /* most bytes accepted per rx call */
	bool closed;         /* accepts nothing while set */
	unsigned int calls;  /* rx calls */
	unsigned int refused; /* rx calls that accepted nothing */
};

static size_t sink_rx(void *ctx, const uint8_t *buf, size_t len)
{
	struct fake_sink *s = ctx;
	pthread_mutex_lock(&s->m);
	s->calls++;
	size_t n = 0;
	if (!s->closed) {
		n = len < s->per_call ? len : s->per_call;
		if (n > sizeof(s->buf) - s->len)
			n = sizeof(s->buf) - s->len;
		memcpy(s->buf + s->len, buf, n);
		s->len += n;
	}
	if (!n)
		s->refused++;
	pthread_mutex_unlock(&s->m);
	return n;
}

static size_t sink_room(void *ctx)
{
	struct fake_sink *s = ctx;
	pthread_mutex_lock(&s->m);
	size_t r = s->closed ? 0 : s->per_call;
	pthread_mutex_unlock(&s->m);
	return r;
}

static size_t sink_len(struct fake_sink *s)
{
	pthread_mutex_lock(&s->m);
	size_t n = s->len;
	pthread_mutex_unlock(&s->m);
	return n;
}

static unsigned int sink_calls(struct fake_sink *s)
{
	pthread_mutex_lock(&s->m);
	unsigned int n = s->calls;
	pthread_mutex_unlock(&s->m);
	return n;
}

/* Wait until the sink holds at least `want` bytes; returns what it holds. */
static size_t sink_wait(struct fake_sink *s, size_t want, unsigned int timeout_ms)
{
	uint64_t end = unit_now_ms() + timeout_ms;
	size_t n;
	while ((n = sink_len(s)) < want && unit_now_ms() < end)
		unit_sleep_ms(1);
	return n;
}

/* ---- fixture ------------------------------------------------------------------------------ */

struct ctx {
	int in[2];  /* [1] is what the "user" types into */
	int out[2]; /* [0] is what the "terminal" shows */
	struct console con;
	struct unit_log_capture cap;
	struct fake_sink sink;
};

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN); /* as the VMM does: a closed stdout is an error, not a death */
	return 0;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	if (pipe2(c->in, O_CLOEXEC) < 0 || pipe2(c->out, O_CLOEXEC) < 0)
		return -1;
	if (fcntl(c->out[0], F_SETFL, O_NONBLOCK) < 0)
		return -1;
	if (unit_log_capture_open(&c->cap, LOG_DEBUG) < 0)
		return -1;
	pthread_mutex_init(&c->sink.m, NULL);
	c->sink.per_call = SIZE_MAX;
	console_init(&c->con, c->in[0], c->out[1], &c->cap.log);
	*state = c;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	console_destroy(&c->con); /* stops the thread if a test failed mid-way */
	close_fd(&c->in[0]);
	close_fd(&c->in[1]);
	close_fd(&c->out[0]);
	close_fd(&c->out[1]);
	unit_log_capture_close(&c->cap);
	pthread_mutex_destroy(&c->sink.m);
	free(c);
	return 0;
}

static void start(struct ctx *c)
{
	struct console_sink s = { sink_rx, sink_room, &c->sink };
	assert_int_equal(console_start(&c->con, s), 0);
}

static void putstr(struct ctx *c, const char *s)
{
	for (; *s; s++)
		console_putc(&c->con, (uint8_t)*s);
}

/* Read what is on the output pipe right now (no waiting). */
static size_t out_now(struct ctx *c, char *buf, size_t cap)
{
	size_t n = 0;
	while (n < cap) {
		ssize_t r = read(c->out[0], buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n < cap ? n : cap - 1] = '\0';
	return n;
}

/* Read until `want` bytes arrived or timeout_ms passed. */
static size_t out_wait(struct ctx *c, char *buf, size_t want, unsigned int timeout_ms)
{
	uint64_t end = unit_now_ms() + timeout_ms;
	size_t n = 0;
	while (n < want) {
		ssize_t r = read(c->out[0], buf + n, want - n);
		if (r > 0) {
			n += (size_t)r;
			continue;
		}
		uint64_t now = unit_now_ms();
		if (now >= end)
			break;
		struct pollfd p = { .fd = c->out[0], .events = POLLIN };
		poll(&p, 1, (int)(end - now));
	}
	buf[n] = '\0';
	return n;
}

/* ---- output ------------------------------------------------------------------------------ */

static void test_output_without_thread(void **state)
{
	struct ctx *c = *state;
	char buf[64];
	/* nobody would flush later: each byte goes out at once */
	console_putc(&c->con, 'a');
	assert_int_equal(out_now(c, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "a");
	putstr(c, "bc");
	assert_int_equal(out_now(c, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "bc");
}

static void test_output_newline_flush(void **state)
{
	struct ctx *c = *state;
	start(c);
	putstr(c, "hello, world\n");
	/* the newline wrote synchronously: it is on the pipe already */
	char buf[64];
	assert_int_equal(out_now(c, buf, sizeof(buf)), 13);
	assert_string_equal(buf, "hello, world\n");
	putstr(c, "line 2\nline 3\n");
	assert_int_equal(out_now(c, buf, sizeof(buf)), 14);
	assert_string_equal(buf, "line 2\nline 3\n");
	console_stop(&c->con);
}

static void test_output_explicit_flush(void **state)
{
	struct ctx *c = *state;
	start(c);
	putstr(c, "login: ");
	console_flush(&c->con);
	char buf[64];
	assert_int_equal(out_now(c, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "login: ");
	console_flush(&c->con); /* nothing pending: harmless */
	assert_int_equal(out_now(c, buf, sizeof(buf)), 0);
	console_stop(&c->con);
}

static void test_output_full_buffer(void **state)
{
	struct ctx *c = *state;
	start(c);
	static char buf[CONSOLE_OUT_BUF * 2 + 1];
	for (unsigned int i = 0; i < CONSOLE_OUT_BUF; i++)
		console_putc(&c->con, (uint8_t)('a' + i % 26));
	/* the byte that filled the buffer wrote it synchronously */
	assert_int_equal(out_now(c, buf, sizeof(buf)), CONSOLE_OUT_BUF);
	for (unsigned int i = 0; i < CONSOLE_OUT_BUF; i++)
		assert_int_equal(buf[i], 'a' + i % 26);
	console_stop(&c->con);
}

static void test_output_idle_flush_by_thread(void **state)
{
	struct ctx *c = *state;
	start(c);
	/* let the console thread settle into waiting for input */
	unit_sleep_ms(30);
	putstr(c, "Password: ");
	/* no newline, no flush: the thread must write it within CONSOLE_FLUSH_MS (generously
	 * ~100 ms on a loaded machine) */
	char buf[64];
	uint64_t t0 = unit_now_ms();
	size_t n = out_wait(c, buf, 10, 150);
	if (n != 10)
		fail_msg("a partial line stayed buffered: %zu of 10 bytes on the output after "
			 "%llu ms (CONSOLE_FLUSH_MS is %d)",
			 n, (unsigned long long)(unit_now_ms() - t0), CONSOLE_FLUSH_MS);
	assert_string_equal(buf, "Password: ");
	/* and again, after output went idle once */
	unit_sleep_ms(30);
	putstr(c, "$ ");
	n = out_wait(c, buf, 2, 150);
	assert_int_equal(n, 2);
	assert_string_equal(buf, "$ ");
	console_stop(&c->con);
}

static void test_output_stop_flushes(void **state)
{
	struct ctx *c = *state;
	start(c);
	putstr(c, "tail without newline");
	console_stop(&c->con);
	char buf[64];
	assert_int_equal(out_now(c, buf, sizeof(buf)), 20);
	assert_string_equal(buf, "tail without newline");
}

static void test_output_broken_pipe(void **state)
{
	struct ctx *c = *state;
	start(c);
	close_fd(&c->out[0]); /* the terminal went away */
	putstr(c, "boom\n");  /* EPIPE (SIGPIPE ignored): no crash */
	assert_true(c->con.out_broken);
	const char *log = unit_log_capture_text(&c->cap);
	if (!strstr(log, "console output failed"))
		fail_msg("no warning logged for the broken output: \"%s\"", log);
	size_t loglen = strlen(log);
	/* further output is dropped quietly: no crash, no growing buffer, one warning */
	for (int i = 0; i < 3 * CONSOLE_OUT_BUF; i++)
		console_putc(&c->con, 'x');
	console_putc(&c->con, '\n');
	console_flush(&c->con);
	assert_true(c->con.out_len <= CONSOLE_OUT_BUF);
	assert_int_equal(strlen(unit_log_capture_text(&c->cap)), loglen);
	/* input still works */
	assert_int_equal(write(c->in[1], "k", 1), 1);
	assert_int_equal(sink_wait(&c->sink, 1, 1000), 1);
	console_stop(&c->con);
}

static void test_output_broken_pipe_without_thread(void **state)
{
	struct ctx *c = *state;
	close_fd(&c->out[0]);
	console_putc(&c->con, 'a');
	assert_true(c->con.out_broken);
	console_putc(&c->con, 'b');
	console_flush(&c->con);
}

/* ---- input ------------------------------------------------------------------------------- */

static void test_input_reaches_sink(void **state)
{
	struct ctx *c = *state;
	start(c);
	assert_int_equal(write(c->in[1], "hello", 5), 5);
	assert_int_equal(sink_wait(&c->sink, 5, 1000), 5);
	assert_memory_equal(c->sink.buf, "hello", 5);
	assert_int_equal(write(c->in[1], "\x03world", 6), 6);
	assert_int_equal(sink_wait(&c->sink, 11, 1000), 11);
	assert_memory_equal(c->sink.buf, "hello\x03world", 11);
	console_stop(&c->con);
}

static void test_input_backpressure(void **state)
{
	struct ctx *c = *state;
	/* the guest's FIFO is full at first: nothing is accepted */
	c->sink.closed = true;
	c->sink.per_call = 7;
	start(c);
	static uint8_t data[600];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	/* the pipe holds it all; the console reads some and has to wait */
	assert_int_equal(write(c->in[1], data, sizeof(data)), (ssize_t)sizeof(data));
	unit_sleep_ms(60);
	assert_int_equal(sink_len(&c->sink), 0);
	unsigned int calls = sink_calls(&c->sink);
	assert_true(calls >= 1); /* it offered the bytes ... */
	assert_true(calls < 200); /* ... and retries at a sane rate, it does not spin */
	/* the FIFO drains: every byte arrives, in order, 7 at a time */
	pthread_mutex_lock(&c->sink.m);
	c->sink.closed = false;
	pthread_mutex_unlock(&c->sink.m);
	size_t n = sink_wait(&c->sink, sizeof(data), 5000);
	assert_int_equal(n, sizeof(data));
	assert_memory_equal(c->sink.buf, data, sizeof(data));
	/* nothing more than was sent */
	unit_sleep_ms(20);
	assert_int_equal(sink_len(&c->sink), sizeof(data));
	console_stop(&c->con);
}

static void test_input_eof(void **state)
{
	struct ctx *c = *state;
	start(c);
	assert_int_equal(write(c->in[1], "bye", 3), 3);
	close_fd(&c->in[1]); /* end of input (stdin was a file or /dev/null) */
	assert_int_equal(sink_wait(&c->sink, 3, 1000), 3);
	unit_sleep_ms(20);
	/* the thread must not spin on the dead fd */
	unsigned int calls = sink_calls(&c->sink);
	uint64_t cpu0 = unit_process_cpu_ms();
	unit_sleep_ms(200);
	uint64_t cpu = unit_process_cpu_ms() - cpu0;
	if (cpu > 60)
		fail_msg("the console thread used %llu ms of CPU in 200 ms after input EOF",
			 (unsigned long long)cpu);
	assert_int_equal(sink_calls(&c->sink), calls);
	assert_int_equal(sink_len(&c->sink), 3);
	/* output keeps working */
	putstr(c, "still here\n");
	char buf[64];
	assert_int_equal(out_now(c, buf, sizeof(buf)), 11);
	assert_string_equal(buf, "still here\n");
	/* and stop is still prompt */
	uint64_t t0 = unit_now_ms();
	console_stop(&c->con);
	assert_true(unit_now_ms() - t0 < 500);
}

static void test_no_input_fd(void **state)
{
	struct ctx *c = *state;
	console_destroy(&c->con);
	console_init(&c->con, -1, c->out[1], &c->cap.log);
	start(c);
	putstr(c, "out only\n");
	char buf[64];
	assert_int_equal(out_now(c, buf, sizeof(buf)), 9);
	uint64_t cpu0 = unit_process_cpu_ms();
	unit_sleep_ms(100);
	assert_true(unit_process_cpu_ms() - cpu0 < 40);
	uint64_t t0 = unit_now_ms();
	console_stop(&c->con);
	assert_true(unit_now_ms() - t0 < 500);
	assert_int_equal(sink_calls(&c->sink), 0);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void test_stop_prompt_and_idempotent(void **state)
{
	struct ctx *c = *state;
	/* stop before start is a no-op */
	console_stop(&c->con);
	start(c);
	unit_sleep_ms(20); /* the thread is blocked in poll() */
	uint64_t t0 = unit_now_ms();
	console_stop(&c->con);
	uint64_t took = unit_now_ms() - t0;
	if (took > 500)
		fail_msg("console_stop took %llu ms", (unsigned long long)took);
	assert_false(c->con.running);
	console_stop(&c->con);
	/* after stop, output is written directly again */
	console_putc(&c->con, 'z');
	char buf[8];
	assert_int_equal(out_now(c, buf, sizeof(buf)), 1);
}

static void test_restart(void **state)
{
	struct ctx *c = *state;
	/* what a guest reboot does: stop, start again, input still flows */
	for (int round = 0; round < 3; round++) {
		start(c);
		char ch = (char)('0' + round);
		assert_int_equal(write(c->in[1], &ch, 1), 1);
		assert_int_equal(sink_wait(&c->sink, (size_t)round + 1, 1000), (size_t)round + 1);
		putstr(c, "r\n");
		console_stop(&c->con);
	}
	assert_memory_equal(c->sink.buf, "012", 3);
	char buf[16];
	assert_int_equal(out_now(c, buf, sizeof(buf)), 6);
	assert_string_equal(buf, "r\nr\nr\n");
}

static void test_stop_while_sink_refuses(void **state)
{
	struct ctx *c = *state;
	c->sink.closed = true;
	start(c);
	assert_int_equal(write(c->in[1], "pending", 7), 7);
	unit_sleep_ms(30);
	uint64_t t0 = unit_now_ms();
	console_stop(&c->con);
	assert_true(unit_now_ms() - t0 < 500);
	assert_int_equal(sink_len(&c->sink), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_output_without_thread),
		T(test_output_newline_flush),
		T(test_output_explicit_flush),
		T(test_output_full_buffer),
		T(test_output_idle_flush_by_thread),
		T(test_output_stop_flushes),
		T(test_output_broken_pipe),
		T(test_output_broken_pipe_without_thread),
		T(test_input_reaches_sink),
		T(test_input_backpressure),
		T(test_input_eof),
		T(test_no_input_fd),
		T(test_stop_prompt_and_idempotent),
		T(test_restart),
		T(test_stop_while_sink_refuses),
	};
	return cmocka_run_group_tests_name("console", tests, group_setup, NULL);
}
