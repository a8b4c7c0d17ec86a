/*
 * engine_thread.c - the milter's engine thread (engine_thread.h): a mutex-protected job queue
 * into it, and one condition variable per job back to the thread that waits for it.
 *
 * Ownership of a job: two references, one for the waiting thread and one for the engine
 * side (from the queue through the result callback).  Both drop theirs under b->mu; the last
 * one frees the job, so a waiter that gave up at its deadline leaves the job to the engine
 * side, and an engine side that finishes first leaves it to the waiter.
 */
#include "engine_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "engine.h"
#include "evloop.h"
#include "httpd.h"
#include "metrics.h"
#include "text.h"

struct job {
	struct job *next;          /* queue link, under b->mu */
	struct job *iprev, *inext; /* jobs inside the engine: engine thread only */
	struct engine_thread *b;
	unsigned refs; /* under b->mu */
	bool done;     /* under b->mu: ans is final */
	pthread_cond_t cv;

	struct milter_check mc;           /* the request, prepared; its strings point into blob */
	enum engine_thread_status status; /* with ans */
	struct milter_reply ans;          /* written by the engine side before done is set */
	char blob[];
};

struct engine_thread {
	/* The engine's lock: held by the engine thread except while its loop waits (the
	 * loop's wait hooks), and by a caller trying the cache (engine_thread_check's fast path).
	 * Order: emu before mu, never the other way round. */
	pthread_mutex_t emu;
	pthread_mutex_t mu;
	pthread_cond_t idle;     /* signalled when users drops to 0 while closing */
	struct job *head, *tail; /* queued, not yet taken by the engine thread */
	struct config *pending;  /* configuration waiting for the engine thread */
	unsigned budget_ms;      /* timeout_ms of the configuration in use */
	bool sender_at_rcpt;     /* the configuration in use has recipient policies */
	unsigned users;          /* threads inside engine_thread_check */
	bool started, closing, dead;
	pthread_t thread;

	/* engine thread only (or the controlling thread before start / after join) */
	struct evloop *loop;
	struct engine *engine;
	struct job *inengine;
	struct httpd *httpd; /* GET /metrics on this loop, or NULL */
	void (*metrics_extra)(void *arg, struct expo *x);
	void *metrics_arg;

	struct metrics_reloads reloads; /* any thread */
};

/* ---------------------------------------------------------------- answers */

/* Fill out with this module's own tempfail (reply_timeout or reply_internal_failure) and
 * log it as a decision record. */
static void answer_failure(struct milter_reply *out, enum engine_thread_status st,
                           const struct milter_check *mc, const char *reason)
{
	struct arena ar = {0};
	const struct check_request *rq = &mc->req;
	const char *address = rq->address ? rq->address : "";
	size_t alen = rq->address ? rq->address_len : 0;
	char addr[TEXT_ADDRESS_MAX + 4];
	struct check_result r;

	text_address(addr, sizeof(addr), address, alen);
	memset(&r, 0, sizeof(r));
	r.role = rq->role;
	r.verdict = V_DNS_ERROR;
	r.action = r.configured_action = ACT_TEMPFAIL;
	r.reply = st == ET_TIMEOUT ? reply_timeout() : reply_internal_failure();
	r.address = addr;
	r.domain = "";
	r.reason = reason;
	r.text = addr[0] ? arena_concat(&ar, "<", addr, ">: ", reason, NULL) : reason;
	milter_reply_from_result(&r, out);
	log_decision(&mc->log, &r);
	arena_free(&ar);
}

/* ---------------------------------------------------------------- jobs */

static size_t slen(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *put(char **p, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *d = *p;
	memcpy(d, s, n);
	*p += n;
	return d;
}

/* A job holding a copy of mc (prepared by engine_check_cached: not parsed again). */
static struct job *job_new(struct engine_thread *b, const struct milter_check *mc)
{
	const struct log_ctx *l = &mc->log;
	const struct check_request *rq = &mc->req;
	size_t alen = rq->address ? rq->address_len : 0;
	size_t plen = rq->policy_recipient ? rq->policy_recipient_len : 0;
	size_t n = alen + 1 + plen + 1 + slen(rq->client_addr) + slen(rq->prepared_domain) +
	           slen(l->instance) + slen(l->queue_id) + slen(l->client_addr) +
	           slen(l->client_name) + slen(l->helo) + slen(l->sender) + slen(l->recipient);
	struct job *j = calloc(1, sizeof(*j) + n);
	pthread_condattr_t ca;

	if (!j)
		return NULL;
	if (pthread_condattr_init(&ca) != 0)
		goto fail;
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		goto fail;
	j->b = b;
	j->refs = 2;
	j->mc = *mc;
	char *p = j->blob;
	if (alen)
		memcpy(p, rq->address, alen);
	p[alen] = '\0';
	j->mc.req.address = p;
	j->mc.req.address_len = alen;
	p += alen + 1;
	if (rq->policy_recipient) {
		memcpy(p, rq->policy_recipient, plen);
		p[plen] = '\0';
		j->mc.req.policy_recipient = p;
	}
	p += plen + 1;
	j->mc.req.client_addr = put(&p, rq->client_addr);
	j->mc.req.prepared_domain = put(&p, rq->prepared_domain);
	j->mc.log.instance = put(&p, l->instance);
	j->mc.log.queue_id = put(&p, l->queue_id);
	j->mc.log.client_addr = put(&p, l->client_addr);
	j->mc.log.client_name = put(&p, l->client_name);
	j->mc.log.helo = put(&p, l->helo);
	j->mc.log.sender = put(&p, l->sender);
	j->mc.log.recipient = put(&p, l->recipient);
	j->mc.log.rendered = NULL; /* (a rendering would point into the caller's memory) */
	return j;
fail:
	free(j);
	return NULL;
}

static void job_free(struct job *j)
{
	pthread_cond_destroy(&j->cv);
	free(j);
}

/* Engine side is done with j (ans filled): wake the waiter, drop the engine's reference. */
static void job_complete(struct job *j)
{
	struct engine_thread *b = j->b;
	pthread_mutex_lock(&b->mu);
	j->done = true;
	pthread_cond_signal(&j->cv);
	bool last = --j->refs == 0;
	pthread_mutex_unlock(&b->mu);
	if (last)
		job_free(j);
}

static void job_fail(struct job *j, const char *reason)
{
	answer_failure(&j->ans, ET_FAILED, &j->mc, reason);
	j->status = ET_FAILED;
	job_complete(j);
}

/* ---------------------------------------------------------------- engine thread */

static void inengine_unlink(struct engine_thread *b, struct job *j)
{
	if (j->iprev)
		j->iprev->inext = j->inext;
	else
		b->inengine = j->inext;
	if (j->inext)
		j->inext->iprev = j->iprev;
	j->iprev = j->inext = NULL;
}

/* The decision line, marked repeat=yes when it repeats this message's sender line. */
static void log_check(const struct milter_check *mc, const struct check_result *r)
{
	if (mc->logged_verdict && mc->logged_verdict == (int)r->verdict + 1) {
		struct log_ctx ctx = mc->log;
		ctx.repeat = true;
		log_decision(&ctx, r);
		return;
	}
	log_decision(&mc->log, r);
}

static void on_result(void *arg, const struct check_result *r)
{
	struct job *j = arg;

	inengine_unlink(j->b, j);
	milter_reply_from_result(r, &j->ans);
	j->status = ET_ANSWERED;
	log_check(&j->mc, r);
	job_complete(j);
}

static void start_job(struct engine_thread *b, struct job *j)
{
	j->inext = b->inengine;
	if (b->inengine)
		b->inengine->iprev = j;
	b->inengine = j;
	/* The callback may run before this returns; the handle is not kept (an abandoned
	 * check still finishes within its own deadline and fills the cache). */
	engine_check(b->engine, &j->mc.req, on_result, j);
}

static void apply_config(struct engine_thread *b, struct config *cfg)
{
	char err[512];
	if (engine_reconfigure(b->engine, cfg, err, sizeof(err)) < 0) {
		log_msg(LOG_ERR, "reload of %s failed, keeping the old configuration: %s",
		        cfg->path ? cfg->path : "(built-in defaults)", err);
		metrics_reload_record(&b->reloads, false, (int64_t)time(NULL));
	} else {
		metrics_reload_record(&b->reloads, true, (int64_t)time(NULL));
		log_set_format(cfg->log_format);
		pthread_mutex_lock(&b->mu);
		b->budget_ms = cfg->timeout_ms;
		b->sender_at_rcpt = cfg->rpolicies != NULL;
		pthread_mutex_unlock(&b->mu);
		log_msg(LOG_INFO, "configuration reloaded from %s",
		        cfg->path ? cfg->path : "(built-in defaults)");
	}
	config_unref(cfg);
}

static void on_wakeup(struct evloop *loop, void *arg)
{
	struct engine_thread *b = arg;

	pthread_mutex_lock(&b->mu);
	struct config *cfg = b->pending;
	struct job *q = b->head;
	bool closing = b->closing;
	b->pending = NULL;
	b->head = b->tail = NULL;
	pthread_mutex_unlock(&b->mu);

	if (cfg)
		apply_config(b, cfg);
	while (q) {
		struct job *next = q->next;
		q->next = NULL;
		start_job(b, q);
		q = next;
	}
	if (closing)
		evloop_stop(loop);
}

/* Runs in the engine thread when its loop ends: nothing may be left waiting. */
static void engine_shutdown(struct engine_thread *b)
{
	pthread_mutex_lock(&b->mu);
	b->dead = true;
	struct job *q = b->head;
	struct config *cfg = b->pending;
	b->head = b->tail = NULL;
	b->pending = NULL;
	pthread_mutex_unlock(&b->mu);

	config_unref(cfg);
	for (struct job *next; q; q = next) {
		next = q->next;
		job_fail(q, "temporary local problem (shutting down), try again later");
	}
	httpd_free(b->httpd);
	b->httpd = NULL;
	/* Completes every pending check (dns_error) through on_result. */
	engine_free(b->engine);
	b->engine = NULL;
	/* Should be none; never leave a waiter without an answer. */
	while (b->inengine) {
		struct job *j = b->inengine;
		inengine_unlink(b, j);
		job_fail(j, "temporary local problem (shutting down), try again later");
	}
}

static void *engine_main(void *arg)
{
	struct engine_thread *b = arg;
	pthread_setname_np(pthread_self(), "mxs-engine");
	pthread_mutex_lock(&b->emu); /* released only while the loop waits */
	if (evloop_run(b->loop) < 0)
		log_msg(LOG_ERR, "engine thread: event loop failed: %s", strerror(errno));
	engine_shutdown(b);
	pthread_mutex_unlock(&b->emu);
	return NULL;
}

/* ---------------------------------------------------------------- fast path */

static void loop_unlock(void *arg)
{
	pthread_mutex_unlock(&((struct engine_thread *)arg)->emu);
}

static void loop_lock(void *arg)
{
	pthread_mutex_lock(&((struct engine_thread *)arg)->emu);
}

struct direct {
	const struct milter_check *rq;
	struct milter_reply *out;
};

static void on_direct_result(void *arg, const struct check_result *r)
{
	struct direct *d = arg;
	milter_reply_from_result(r, d->out);
	log_check(d->rq, r);
}

enum direct_status { DIRECT_DONE, DIRECT_NEEDS_DNS, DIRECT_TIMEOUT };

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MXS_TSAN 1
#endif
#endif

/* Lock m, giving up at deadline (CLOCK_MONOTONIC).  ThreadSanitizer does not know
 * pthread_mutex_clocklock (it would report every access under the lock as a race): its
 * builds wait by the wall clock instead. */
static int lock_until(pthread_mutex_t *m, const struct timespec *deadline)
{
#ifdef MXS_TSAN
	struct timespec mono, real;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	long long ns = (long long)(deadline->tv_sec - mono.tv_sec) * 1000000000LL +
	               (deadline->tv_nsec - mono.tv_nsec);
	if (ns < 0)
		ns = 0;
	ns += real.tv_nsec;
	real.tv_sec += (time_t)(ns / 1000000000LL);
	real.tv_nsec = (long)(ns % 1000000000LL);
	return pthread_mutex_timedlock(m, &real);
#else
	return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, deadline);
#endif
}

/*
 * Answer in the calling thread when the cache holds everything the check needs (the usual
 * case for a busy server): under the engine's lock, no job, no hand-over to the engine
 * thread and back.  DIRECT_NEEDS_DNS: the check needs DNS (nothing was done) or the engine
 * is gone; DIRECT_TIMEOUT: the engine thread held its lock until the deadline (stuck).
 */
static enum direct_status try_cached(struct engine_thread *b, const struct milter_check *mc,
                                     const struct timespec *deadline, struct milter_reply *out,
                                     char *prepared)
{
	struct direct d = {.rq = mc, .out = out};
	bool done = false;

	if (lock_until(&b->emu, deadline) != 0)
		return DIRECT_TIMEOUT;
	if (b->engine) {
		evloop_update_time(b->loop); /* the loop may have slept: take the time now */
		done = engine_check_cached(b->engine, &mc->req, on_direct_result, &d, prepared);
	}
	pthread_mutex_unlock(&b->emu);
	return done ? DIRECT_DONE : DIRECT_NEEDS_DNS;
}

/* ---------------------------------------------------------------- public */

struct engine_thread *engine_thread_new(struct config *cfg, char *err, size_t errlen)
{
	struct engine_thread *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&b->mu, NULL) != 0) {
		snprintf(err, errlen, "cannot create a mutex");
		free(b);
		return NULL;
	}
	if (pthread_mutex_init(&b->emu, NULL) != 0) {
		snprintf(err, errlen, "cannot create a mutex");
		pthread_mutex_destroy(&b->mu);
		free(b);
		return NULL;
	}
	if (pthread_cond_init(&b->idle, NULL) != 0) {
		snprintf(err, errlen, "cannot create a condition variable");
		pthread_mutex_destroy(&b->emu);
		pthread_mutex_destroy(&b->mu);
		free(b);
		return NULL;
	}
	b->budget_ms = cfg->timeout_ms;
	b->sender_at_rcpt = cfg->rpolicies != NULL;
	atomic_store(&b->reloads.last_ok_unix, (int64_t)time(NULL)); /* loaded for this engine */
	b->loop = evloop_new();
	if (!b->loop) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		goto fail;
	}
	b->engine = engine_new(b->loop, cfg, err, errlen);
	if (!b->engine)
		goto fail;
	evloop_set_wakeup(b->loop, on_wakeup, b);
	evloop_set_before_wait(b->loop, loop_unlock, b);
	evloop_set_after_wait(b->loop, loop_lock, b);
	return b;
fail:
	engine_thread_free(b);
	return NULL;
}

int engine_thread_start(struct engine_thread *b, char *err, size_t errlen)
{
	int rc = pthread_create(&b->thread, NULL, engine_main, b);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the engine thread: %s", strerror(rc));
		return -1;
	}
	pthread_mutex_lock(&b->mu);
	b->started = true;
	pthread_mutex_unlock(&b->mu);
	return 0;
}

/* GET /metrics, in the engine thread with the engine's lock held (as every callback of its
 * loop): the engine's counters are read as the fast path writes them, under that lock. */
static void render_metrics(void *arg, struct expo *x)
{
	struct engine_thread *b = arg;
	engine_write_metrics(b->engine, x);
	if (b->metrics_extra)
		b->metrics_extra(b->metrics_arg, x);
	metrics_write_reloads(x, &b->reloads);
	httpd_write_metrics(b->httpd, x);
	metrics_write_build_info(x, "mxsane-milter");
}

int engine_thread_serve_metrics(struct engine_thread *b, int lfd,
                                void (*extra)(void *arg, struct expo *x), void *arg)
{
	b->metrics_extra = extra;
	b->metrics_arg = arg;
	b->httpd = httpd_new(b->loop, lfd, render_metrics, b);
	return b->httpd ? 0 : -1;
}

struct metrics_reloads *engine_thread_reloads(struct engine_thread *b)
{
	return &b->reloads;
}

unsigned engine_thread_budget_ms(struct engine_thread *b)
{
	pthread_mutex_lock(&b->mu);
	unsigned ms = b->budget_ms;
	pthread_mutex_unlock(&b->mu);
	return ms;
}

bool engine_thread_sender_at_rcpt(struct engine_thread *b)
{
	pthread_mutex_lock(&b->mu);
	bool on = b->sender_at_rcpt;
	pthread_mutex_unlock(&b->mu);
	return on;
}

/* A caller of engine_thread_check() is done with the engine thread (b->mu held): the last one lets
 * a closing engine_thread_free() go on. */
static void user_done_locked(struct engine_thread *b)
{
	if (--b->users == 0 && b->closing)
		pthread_cond_broadcast(&b->idle);
}

/* The deadline passed before an answer: 451 4.4.3, never a rejection. */
static enum engine_thread_status answer_timeout(struct milter_reply *out,
                                                const struct milter_check *mc)
{
	answer_failure(out, ET_TIMEOUT, mc, "the MX check did not finish in time, try again later");
	return ET_TIMEOUT;
}

enum engine_thread_status engine_thread_check(struct engine_thread *b,
                                              const struct milter_check *mc,
                                              const struct timespec *deadline,
                                              struct milter_reply *out)
{
	const char *why = "temporary local problem (shutting down), try again later";
	struct milter_check m = *mc; /* prepared by the cache try for the engine thread */
	struct job *j = NULL;

	if (!m.req.address)
		m.req.address = "";
	m.req.address_len = strlen(m.req.address);
	m.req.prepared_domain = NULL;
	pthread_mutex_lock(&b->mu);
	if (!b->started || b->closing || b->dead) {
		pthread_mutex_unlock(&b->mu);
		answer_failure(out, ET_FAILED, &m, why);
		return ET_FAILED;
	}
	b->users++;
	pthread_mutex_unlock(&b->mu);

	char prepared[DOMAIN_MAX + 1];
	enum direct_status ds = try_cached(b, &m, deadline, out, prepared);
	if (ds != DIRECT_NEEDS_DNS) {
		pthread_mutex_lock(&b->mu);
		user_done_locked(b);
		pthread_mutex_unlock(&b->mu);
		if (ds == DIRECT_TIMEOUT)
			return answer_timeout(out, &m);
		return ET_ANSWERED;
	}
	m.req.prepared_domain = prepared;
	j = job_new(b, &m);
	pthread_mutex_lock(&b->mu);
	if (!j || b->closing || b->dead) {
		if (j)
			j->refs = 0;
		else
			why = "temporary local problem (out of memory), try again later";
		goto fail_locked;
	}
	if (b->tail)
		b->tail->next = j;
	else
		b->head = j;
	b->tail = j;
	pthread_mutex_unlock(&b->mu);

	evloop_wakeup(b->loop);

	pthread_mutex_lock(&b->mu);
	while (!j->done)
		if (pthread_cond_timedwait(&j->cv, &b->mu, deadline) == ETIMEDOUT)
			break;
	bool answered = j->done;
	enum engine_thread_status st = j->status;
	if (answered)
		*out = j->ans;
	bool last = --j->refs == 0;
	user_done_locked(b);
	pthread_mutex_unlock(&b->mu);

	if (!answered)
		/* j belongs to the engine side now; it frees it when the check ends */
		st = answer_timeout(out, &m);
	if (last)
		job_free(j);
	return st;

fail_locked:
	user_done_locked(b);
	pthread_mutex_unlock(&b->mu);
	if (j)
		job_free(j);
	answer_failure(out, ET_FAILED, &m, why);
	return ET_FAILED;
}

void engine_thread_reconfigure(struct engine_thread *b, struct config *cfg)
{
	pthread_mutex_lock(&b->mu);
	struct config *old = b->pending;
	bool gone = b->closing || b->dead;
	if (!gone) {
		b->pending = cfg;
		cfg = NULL;
	}
	pthread_mutex_unlock(&b->mu);
	/* only this caller ever held old/cfg: unreferencing them here is safe */
	config_unref(old);
	config_unref(cfg);
	if (!gone)
		evloop_wakeup(b->loop);
}

void engine_thread_stop(struct engine_thread *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	bool started = b->started;
	b->closing = true;
	pthread_mutex_unlock(&b->mu);
	if (started) {
		evloop_wakeup(b->loop);
		pthread_join(b->thread, NULL);
		pthread_mutex_lock(&b->mu);
		b->started = false;
		pthread_mutex_unlock(&b->mu);
	} else {
		engine_shutdown(b);
	}
}

void engine_thread_free(struct engine_thread *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	bool started = b->started;
	pthread_mutex_unlock(&b->mu);
	if (started)
		engine_thread_stop(b);
	pthread_mutex_lock(&b->mu);
	b->closing = true;
	while (b->users > 0)
		pthread_cond_wait(&b->idle, &b->mu);
	pthread_mutex_unlock(&b->mu);
	if (b->engine) /* engine_thread_stop was not called */
		engine_shutdown(b);
	evloop_free(b->loop);
	pthread_cond_destroy(&b->idle);
	pthread_mutex_destroy(&b->emu);
	pthread_mutex_destroy(&b->mu);
	free(b);
}
