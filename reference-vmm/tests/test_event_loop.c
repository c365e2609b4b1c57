/* Unit tests for core/event_loop.c: dispatch, add/mod/del rules, del waiting
 * for a running callback, deferred calls on the loop thread and at destroy. */
#include "core/event_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

struct rec {
	atomic_int calls;
	atomic_int bytes;
	pthread_t thread;
	int sleep_ms;
	atomic_int inside;
};

static void on_read(void *ctx, int fd, uint32_t events)
{
	struct rec *r = ctx;
	(void)events;
	atomic_store(&r->inside, 1);
	r->thread = pthread_self();
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n > 0)
		atomic_fetch_add(&r->bytes, (int)n);
	if (r->sleep_ms)
		usleep((useconds_t)r->sleep_ms * 1000);
	atomic_fetch_add(&r->calls, 1);
	atomic_store(&r->inside, 0);
}

static void wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 2000 && atomic_load(v) < want; i++)
		usleep(1000);
}

static void dispatches_on_loop_thread(void **state)
{
	(void)state;
	struct event_loop l;
	assert_int_equal(event_loop_init(&l), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct rec r = { 0 };
	assert_int_equal(event_loop_add(&l, p[0], EPOLLIN, on_read, &r), 0);
	assert_int_equal(event_loop_add(&l, p[0], EPOLLIN, on_read, &r), -EEXIST);
	assert_int_equal(event_loop_start(&l), 0);
	assert_int_equal(write(p[1], "abc", 3), 3);
	wait_for(&r.bytes, 3);
	assert_int_equal(atomic_load(&r.bytes), 3);
	assert_true(pthread_equal(r.thread, l.thread));
	assert_false(pthread_equal(r.thread, pthread_self()));
	event_loop_destroy(&l);
	close(p[0]);
	close(p[1]);
}

static void mod_and_del(void **state)
{
	(void)state;
	struct event_loop l;
	assert_int_equal(event_loop_init(&l), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct rec r = { 0 };
	assert_int_equal(event_loop_mod(&l, p[0], EPOLLIN), -ENOENT);
	assert_int_equal(event_loop_add(&l, p[0], 0, on_read, &r), 0); /* no events yet */
	assert_int_equal(event_loop_start(&l), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	usleep(30 * 1000);
	assert_int_equal(atomic_load(&r.calls), 0);
	assert_int_equal(event_loop_mod(&l, p[0], EPOLLIN), 0);
	wait_for(&r.calls, 1);
	assert_int_equal(atomic_load(&r.calls), 1);
	assert_int_equal(event_loop_del(&l, p[0]), 0);
	assert_int_equal(event_loop_del(&l, p[0]), -ENOENT);
	assert_int_equal(write(p[1], "y", 1), 1);
	usleep(30 * 1000);
	assert_int_equal(atomic_load(&r.calls), 1);
	event_loop_destroy(&l);
	close(p[0]);
	close(p[1]);
}

static void del_waits_for_running_callback(void **state)
{
	(void)state;
	struct event_loop l;
	assert_int_equal(event_loop_init(&l), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct rec r = { .sleep_ms = 100 };
	assert_int_equal(event_loop_add(&l, p[0], EPOLLIN, on_read, &r), 0);
	assert_int_equal(event_loop_start(&l), 0);
	assert_int_equal(write(p[1], "z", 1), 1);
	wait_for(&r.inside, 1);
	assert_int_equal(event_loop_del(&l, p[0]), 0);
	/* del returned: the callback has finished */
	assert_int_equal(atomic_load(&r.inside), 0);
	assert_int_equal(atomic_load(&r.calls), 1);
	event_loop_destroy(&l);
	close(p[0]);
	close(p[1]);
}

struct deferred {
	struct event_loop *l;
	atomic_int ran;
	pthread_t thread;
	int fd; /* deleted from within the deferred call */
};

static void deferred_fn(void *ctx)
{
	struct deferred *d = ctx;
	d->thread = pthread_self();
	if (d->fd >= 0)
		assert_int_equal(event_loop_del(d->l, d->fd), 0);
	atomic_fetch_add(&d->ran, 1);
}

static void defer_runs_on_loop_thread(void **state)
{
	(void)state;
	struct event_loop l;
	assert_int_equal(event_loop_init(&l), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct rec r = { 0 };
	assert_int_equal(event_loop_add(&l, p[0], EPOLLIN, on_read, &r), 0);
	assert_int_equal(event_loop_start(&l), 0);
	struct deferred d = { .l = &l, .fd = p[0] };
	assert_int_equal(event_loop_defer(&l, deferred_fn, &d), 0);
	wait_for(&d.ran, 1);
	assert_int_equal(atomic_load(&d.ran), 1);
	assert_true(pthread_equal(d.thread, l.thread));
	assert_int_equal(event_loop_del(&l, p[0]), -ENOENT); /* the deferred call did it */
	event_loop_destroy(&l);
	close(p[0]);
	close(p[1]);
}

static void defer_without_thread_runs_at_destroy(void **state)
{
	(void)state;
	struct event_loop l;
	assert_int_equal(event_loop_init(&l), 0);
	struct deferred d = { .l = &l, .fd = -1 };
	assert_int_equal(event_loop_defer(&l, deferred_fn, &d), 0);
	assert_int_equal(event_loop_defer(&l, deferred_fn, &d), 0);
	event_loop_destroy(&l);
	assert_int_equal(atomic_load(&d.ran), 2);
}

static void stop_and_restart(void **state)
{
	(void)state;
	struct event_loop l;
	assert_int_equal(event_loop_init(&l), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct rec r = { 0 };
	assert_int_equal(event_loop_add(&l, p[0], EPOLLIN, on_read, &r), 0);
	assert_int_equal(event_loop_start(&l), 0);
	event_loop_stop(&l);
	assert_int_equal(write(p[1], "q", 1), 1);
	usleep(20 * 1000);
	assert_int_equal(atomic_load(&r.calls), 0);
	assert_int_equal(event_loop_start(&l), 0);
	wait_for(&r.calls, 1);
	assert_int_equal(atomic_load(&r.calls), 1);
	event_loop_destroy(&l);
	event_loop_destroy(&l); /* idempotent */
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dispatches_on_loop_thread),
		cmocka_unit_test(mod_and_del),
		cmocka_unit_test(del_waits_for_running_callback),
		cmocka_unit_test(defer_runs_on_loop_thread),
		cmocka_unit_test(defer_without_thread_runs_at_destroy),
		cmocka_unit_test(stop_and_restart),
	};
	return cmocka_run_group_tests_name("event_loop", tests, NULL, NULL);
}
