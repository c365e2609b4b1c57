/* epoll event loop thread for backend fds. A callback never runs concurrently
 * with itself or others; event_loop_del() from another thread waits for a
 * running callback to finish, so the caller may free the callback's context. */
#include "core/event_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define STOP_TOKEN UINT64_MAX
#define DEFER_TOKEN (UINT64_MAX - 1)

struct event_defer {
	event_defer_fn fn;
	void *ctx;
	struct event_defer *next;
};

/*
 * Dispatch is serialised by `lock`: the loop thread holds it while a callback
 * runs, so add/mod/del from other threads wait for the callback to return.
 * A callback may itself call add/mod/del: the loop records its own thread id
 * and those calls skip taking the (already held, recursive-by-ownership) lock.
 */
static bool on_loop_thread(struct event_loop *l)
{
	return l->running && pthread_equal(pthread_self(), l->thread);
}

static void lock(struct event_loop *l)
{
	if (!on_loop_thread(l))
		pthread_mutex_lock(&l->lock);
}

static void unlock(struct event_loop *l)
{
	if (!on_loop_thread(l))
		pthread_mutex_unlock(&l->lock);
}

int event_loop_init(struct event_loop *l)
{
	memset(l, 0, sizeof(*l));
	l->stop_fd = l->defer_fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->defer_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int e = 0;
	if (l->epfd < 0 || l->stop_fd < 0 || l->defer_fd < 0)
		e = errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = STOP_TOKEN };
	if (!e && epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stop_fd, &ev) < 0)
		e = errno;
	ev.data.u64 = DEFER_TOKEN;
	if (!e && epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->defer_fd, &ev) < 0)
		e = errno;
	if (e) {
		int fds[3] = { l->epfd, l->stop_fd, l->defer_fd };
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		l->epfd = l->stop_fd = l->defer_fd = -1;
		return -e;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->defer_lock, NULL);
	return 0;
}

int event_loop_defer(struct event_loop *l, event_defer_fn fn, void *ctx)
{
	struct event_defer *d = malloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	*d = (struct event_defer){ fn, ctx, NULL };
	pthread_mutex_lock(&l->defer_lock);
	if (l->defer_tail)
		l->defer_tail->next = d;
	else
		l->defer_head = d;
	l->defer_tail = d;
	pthread_mutex_unlock(&l->defer_lock);
	uint64_t one = 1;
	if (write(l->defer_fd, &one, sizeof(one)) < 0) {
		/* counter saturated: a wakeup is pending anyway */
	}
	return 0;
}

/* Run queued deferred calls (loop lock held, or the loop is stopped). */
static void run_deferred(struct event_loop *l)
{
	uint64_t v;
	if (read(l->defer_fd, &v, sizeof(v)) < 0) {
		/* nothing signalled: the list decides */
	}
	for (;;) {
		pthread_mutex_lock(&l->defer_lock);
		struct event_defer *d = l->defer_head;
		if (d) {
			l->defer_head = d->next;
			if (!l->defer_head)
				l->defer_tail = NULL;
		}
		pthread_mutex_unlock(&l->defer_lock);
		if (!d)
			return;
		d->fn(d->ctx);
		free(d);
	}
}

static int find_slot(struct event_loop *l, int fd)
{
	for (int i = 0; i < EVENT_LOOP_MAX; i++)
		if (l->slots[i].used && l->slots[i].fd == fd)
			return i;
	return -1;
}

int event_loop_add(struct event_loop *l, int fd, uint32_t events, event_fn fn, void *ctx)
{
	if (fd < 0 || !fn)
		return -EINVAL;
	lock(l);
	int r = 0;
	int free_slot = -1;
	if (find_slot(l, fd) >= 0) {
		r = -EEXIST;
		goto out;
	}
	for (int i = 0; i < EVENT_LOOP_MAX && free_slot < 0; i++)
		if (!l->slots[i].used)
			free_slot = i;
	if (free_slot < 0) {
		r = -ENOSPC;
		goto out;
	}
	struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)free_slot };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		goto out;
	}
	l->slots[free_slot] = (struct event_loop_slot){ fd, fn, ctx, true };
out:
	unlock(l);
	return r;
}

int event_loop_mod(struct event_loop *l, int fd, uint32_t events)
{
	lock(l);
	int r = 0;
	int i = find_slot(l, fd);
	if (i < 0) {
		r = -ENOENT;
	} else {
		struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)i };
		if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
			r = -errno;
	}
	unlock(l);
	return r;
}

int event_loop_del(struct event_loop *l, int fd)
{
	lock(l);
	int r = 0;
	int i = find_slot(l, fd);
	if (i < 0) {
		r = -ENOENT;
	} else {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		l->slots[i].used = false;
	}
	unlock(l);
	return r;
}

static void *loop_thread(void *arg)
{
	struct event_loop *l = arg;
	struct epoll_event evs[32];
	for (;;) {
		int n = epoll_wait(l->epfd, evs, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		bool stop = false;
		pthread_mutex_lock(&l->lock);
		for (int k = 0; k < n; k++) {
			if (evs[k].data.u64 == STOP_TOKEN) {
				stop = true;
				continue;
			}
			if (evs[k].data.u64 == DEFER_TOKEN) {
				run_deferred(l);
				continue;
			}
			uint64_t i = evs[k].data.u64;
			/* a callback earlier in this batch may have deleted/reused it */
			if (i >= EVENT_LOOP_MAX || !l->slots[i].used)
				continue;
			struct event_loop_slot s = l->slots[i];
			s.fn(s.ctx, s.fd, evs[k].events);
		}
		pthread_mutex_unlock(&l->lock);
		if (stop)
			break;
	}
	return NULL;
}

int event_loop_start(struct event_loop *l)
{
	if (l->running)
		return 0;
	/* running must be true before the thread can call back into add/del */
	pthread_mutex_lock(&l->lock);
	int r = pthread_create(&l->thread, NULL, loop_thread, l);
	if (r == 0)
		l->running = true;
	pthread_mutex_unlock(&l->lock);
	return -r;
}

void event_loop_stop(struct event_loop *l)
{
	if (!l->running)
		return;
	uint64_t one = 1;
	if (write(l->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(l->thread, NULL);
	l->running = false;
	uint64_t v;
	if (read(l->stop_fd, &v, sizeof(v)) < 0) {
		/* nothing pending: fine */
	}
}

void event_loop_destroy(struct event_loop *l)
{
	event_loop_stop(l);
	if (l->epfd < 0)
		return; /* never initialised, or destroyed already */
	run_deferred(l); /* the thread is gone: nothing runs concurrently */
	close(l->defer_fd);
	close(l->stop_fd);
	close(l->epfd);
	l->defer_fd = l->stop_fd = l->epfd = -1;
	pthread_mutex_destroy(&l->defer_lock);
	pthread_mutex_destroy(&l->lock);
}
