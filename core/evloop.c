/*
 * evloop.c - epoll event loop with a binary min-heap of timers and an eventfd for wake-ups
 * from other threads and signal handlers.
 */
#include "evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct watch {
	ev_fd_cb cb;
	void *arg;
	unsigned events;
	bool active;   /* registered with evloop_watch */
	bool in_epoll; /* in the epoll set: not while events == 0, so a hang-up on an idle
	                * descriptor cannot make epoll_wait return over and over */
};

struct ev_timer {
	uint64_t when;
	uint64_t seq; /* FIFO among equal times */
	size_t idx;   /* position in the heap */
	ev_timer_cb cb;
	void *arg;
};

struct evloop {
	int epfd, wakefd;
	struct watch *w;
	size_t nw;
	struct ev_timer **heap;
	size_t nheap, capheap;
	uint64_t seq, now;
	bool stop;
	ev_timer_cb wake_cb;
	void *wake_arg;
	void (*before_wait)(void *);
	void *before_wait_arg;
	void (*after_wait)(void *);
	void *after_wait_arg;
	uint64_t (*clock)(void *); /* a test's clock, or NULL: CLOCK_MONOTONIC */
	void *clock_arg;
};

void evloop_set_clock(struct evloop *loop, uint64_t (*clock)(void *arg), void *arg)
{
	loop->clock = clock;
	loop->clock_arg = arg;
	evloop_update_time(loop);
}

uint64_t evloop_update_time(struct evloop *loop)
{
	struct timespec ts;
	if (loop->clock)
		return loop->now = loop->clock(loop->clock_arg);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	loop->now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return loop->now;
}

uint64_t evloop_now(const struct evloop *loop)
{
	return loop->now;
}

struct evloop *evloop_new(void)
{
	struct evloop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epfd < 0 || loop->wakefd < 0)
		goto fail;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = loop->wakefd};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0)
		goto fail;
	evloop_update_time(loop);
	return loop;
fail : {
	int e = errno;
	evloop_free(loop);
	errno = e;
	return NULL;
}
}

void evloop_free(struct evloop *loop)
{
	if (!loop)
		return;
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->wakefd >= 0)
		close(loop->wakefd);
	for (size_t i = 0; i < loop->nheap; i++)
		free(loop->heap[i]);
	free(loop->heap);
	free(loop->w);
	free(loop);
}

static uint32_t to_epoll(unsigned ev)
{
	return (ev & EV_READ ? EPOLLIN : 0) | (ev & EV_WRITE ? EPOLLOUT : 0);
}

int evloop_watch(struct evloop *loop, int fd, unsigned events, ev_fd_cb cb, void *arg)
{
	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if ((size_t)fd >= loop->nw) {
		size_t n = loop->nw ? loop->nw : 64;
		while (n <= (size_t)fd)
			n *= 2;
		struct watch *w = realloc(loop->w, n * sizeof(*w));
		if (!w)
			return -1;
		memset(w + loop->nw, 0, (n - loop->nw) * sizeof(*w));
		loop->w = w;
		loop->nw = n;
	}
	struct watch *w = &loop->w[fd];
	struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};
	if (events == 0) {
		if (w->in_epoll && epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
			return -1;
		w->in_epoll = false;
	} else {
		if (epoll_ctl(loop->epfd, w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
			return -1;
		w->in_epoll = true;
	}
	w->active = true;
	w->cb = cb;
	w->arg = arg;
	w->events = events;
	return 0;
}

void evloop_unwatch(struct evloop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nw || !loop->w[fd].active)
		return;
	if (loop->w[fd].in_epoll)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&loop->w[fd], 0, sizeof(loop->w[fd]));
}

/* ---- timer heap ---- */

static bool before(const struct ev_timer *a, const struct ev_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_set(struct evloop *loop, size_t i, struct ev_timer *t)
{
	loop->heap[i] = t;
	t->idx = i;
}

static void sift_up(struct evloop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!before(t, loop->heap[p]))
			break;
		heap_set(loop, i, loop->heap[p]);
		i = p;
	}
	heap_set(loop, i, t);
}

static void sift_down(struct evloop *loop, size_t i)
{
	struct ev_timer *t = loop->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct ev_timer *best = t;
		if (l < loop->nheap && before(loop->heap[l], best)) {
			m = l;
			best = loop->heap[l];
		}
		if (r < loop->nheap && before(loop->heap[r], best))
			m = r;
		if (m == i)
			break;
		heap_set(loop, i, loop->heap[m]);
		i = m;
	}
	heap_set(loop, i, t);
}

static void heap_remove(struct evloop *loop, struct ev_timer *t)
{
	size_t i = t->idx;
	struct ev_timer *last = loop->heap[--loop->nheap];
	if (last != t) {
		heap_set(loop, i, last);
		sift_down(loop, i);
		sift_up(loop, last->idx);
	}
}

struct ev_timer *evloop_timer(struct evloop *loop, uint64_t when, ev_timer_cb cb, void *arg)
{
	if (loop->nheap == loop->capheap) {
		size_t n = loop->capheap ? loop->capheap * 2 : 64;
		struct ev_timer **h = realloc(loop->heap, n * sizeof(*h));
		if (!h)
			return NULL;
		loop->heap = h;
		loop->capheap = n;
	}
	struct ev_timer *t = malloc(sizeof(*t));
	if (!t)
		return NULL;
	t->when = when;
	t->seq = loop->seq++;
	t->cb = cb;
	t->arg = arg;
	loop->heap[loop->nheap] = t;
	t->idx = loop->nheap++;
	sift_up(loop, t->idx);
	return t;
}

void evloop_cancel(struct evloop *loop, struct ev_timer *t)
{
	if (!t)
		return;
	heap_remove(loop, t);
	free(t);
}

/* ---- running ---- */

void evloop_set_wakeup(struct evloop *loop, ev_timer_cb cb, void *arg)
{
	loop->wake_cb = cb;
	loop->wake_arg = arg;
}

void evloop_set_before_wait(struct evloop *loop, void (*fn)(void *), void *arg)
{
	loop->before_wait = fn;
	loop->before_wait_arg = arg;
}

void evloop_set_after_wait(struct evloop *loop, void (*fn)(void *), void *arg)
{
	loop->after_wait = fn;
	loop->after_wait_arg = arg;
}

void evloop_wakeup(struct evloop *loop)
{
	uint64_t one = 1;
	ssize_t r = write(loop->wakefd, &one, sizeof(one));
	(void)r; /* EAGAIN: counter saturated, a wake-up is pending anyway */
}

static void run_timers(struct evloop *loop)
{
	/* Only timers due at this iteration's time: a callback that re-arms at `now` runs in
	 * the next iteration, so I/O is never starved. */
	uint64_t now = loop->now;
	while (loop->nheap && loop->heap[0]->when <= now && !loop->stop) {
		struct ev_timer *t = loop->heap[0];
		heap_remove(loop, t);
		ev_timer_cb cb = t->cb;
		void *arg = t->arg;
		free(t);
		cb(loop, arg);
	}
}

int evloop_run_once(struct evloop *loop, int max_wait)
{
	struct epoll_event evs[256];
	int timeout = max_wait;

	evloop_update_time(loop);
	if (loop->nheap) {
		uint64_t w = loop->heap[0]->when;
		uint64_t d = w > loop->now ? w - loop->now : 0;
		if (timeout < 0 || d < (uint64_t)timeout)
			timeout = d > 60000 ? 60000 : (int)d;
	}
	if (loop->before_wait)
		loop->before_wait(loop->before_wait_arg);
	int n = epoll_wait(loop->epfd, evs, 256, timeout);
	int wait_errno = errno;
	if (loop->after_wait)
		loop->after_wait(loop->after_wait_arg);
	if (n < 0) {
		if (wait_errno == EINTR)
			n = 0;
		else
			return -1;
	}
	evloop_update_time(loop);
	for (int i = 0; i < n && !loop->stop; i++) {
		int fd = evs[i].data.fd;
		if (fd == loop->wakefd) {
			uint64_t v;
			ssize_t r = read(loop->wakefd, &v, sizeof(v));
			(void)r;
			if (loop->wake_cb)
				loop->wake_cb(loop, loop->wake_arg);
			continue;
		}
		if ((size_t)fd >= loop->nw || !loop->w[fd].active)
			continue; /* unwatched by an earlier callback in this batch */
		unsigned ev = 0;
		if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
			ev |= EV_READ;
		if (evs[i].events & EPOLLOUT)
			ev |= EV_WRITE;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			ev |= EV_ERROR | (loop->w[fd].events & (EV_READ | EV_WRITE));
		loop->w[fd].cb(loop, fd, ev, loop->w[fd].arg);
	}
	run_timers(loop);
	return 0;
}

int evloop_run(struct evloop *loop)
{
	loop->stop = false;
	while (!loop->stop)
		if (evloop_run_once(loop, -1) < 0)
			return -1;
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	loop->stop = true;
}
