/* A single epoll event loop thread for backends: eventfds (queue kicks),
 * sockets, ptys. Callbacks run on the loop thread, one at a time. */
#ifndef VMM_EVENT_LOOP_H
#define VMM_EVENT_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define EVENT_LOOP_MAX 1024

typedef void (*event_fn)(void *ctx, int fd, uint32_t events);
typedef void (*event_defer_fn)(void *ctx);

struct event_loop_slot {
	int fd;
	event_fn fn;
	void *ctx;
	bool used;
};

struct event_defer;

/*
 * Locking rules (read before using from device code):
 *  - Callbacks are dispatched with the loop's lock held, one at a time.
 *  - add/mod/del/defer called ON the loop thread (i.e. from a callback) never block.
 *  - add/mod/del called from ANOTHER thread take the loop's lock, so they wait for
 *    a running callback; after del returns, that fd's callback is not running and
 *    will not run again: its ctx may be freed.
 *  - Therefore: from another thread, never call add/mod/del while holding a lock a
 *    callback may take (e.g. a virtio transport lock) — that is an ABBA deadlock.
 *    Use event_loop_defer() instead: it only queues fn to run on the loop thread
 *    (in order, soon) and never blocks on the loop.
 */
struct event_loop {
	int epfd;
	int stop_fd;
	int defer_fd;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_mutex_t defer_lock;
	struct event_defer *defer_head, *defer_tail;
	struct event_loop_slot slots[EVENT_LOOP_MAX];
};

int event_loop_init(struct event_loop *l);
/* Stops the thread, runs still-queued deferred calls, closes the loop's own fds
 * (not the registered ones). */
void event_loop_destroy(struct event_loop *l);
/* events: EPOLLIN/EPOLLOUT/... Returns 0 or -errno (-EEXIST, -ENOSPC, -ENOENT). */
int event_loop_add(struct event_loop *l, int fd, uint32_t events, event_fn fn, void *ctx);
int event_loop_mod(struct event_loop *l, int fd, uint32_t events);
int event_loop_del(struct event_loop *l, int fd);
/* Run fn(ctx) on the loop thread (or at destroy if the loop never runs again).
 * Safe from any thread with any locks held. 0 or -ENOMEM. */
int event_loop_defer(struct event_loop *l, event_defer_fn fn, void *ctx);
int event_loop_start(struct event_loop *l);
void event_loop_stop(struct event_loop *l);

#endif
