/*
 * decision.c - the one-line structured record of every decision (key=value or JSON), written
 * through log.h.  It sits above the engine: it formats a check result.
 */
#include "decision.h"

#include <string.h>
#include <time.h>

/* Decimal digits of v into out (at least 21 bytes); returns the length. */
static inline __attribute__((always_inline)) size_t utoa(char *out, unsigned long long v)
{
	char t[24];
	size_t n = 0, i = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		out[i++] = t[--n];
	out[i] = '\0';
	return i;
}

/* strlcpy: s cut to fit size bytes with its NUL */
static void copy_cut(char *dst, size_t size, const char *s)
{
	size_t l = strnlen(s, size - 1);
	memcpy(dst, s, l);
	dst[l] = '\0';
}

/* "2026-12-04T19:07:01.123Z" (24 bytes, NUL-terminated, out holds 64) from milliseconds
 * since the epoch.  The date and time of the last second are kept per thread: the JSON
 * records of one busy second cost one gmtime_r. */
static size_t fmt_rfc3339(char *out, long long ms)
{
	static _Thread_local long long t_sec = -1;
	static _Thread_local char t_text[24];
	long long sec = ms / 1000;
	if (sec != t_sec) {
		time_t tt = (time_t)sec;
		struct tm tm;
		if (!gmtime_r(&tt, &tm) ||
		    strftime(t_text, sizeof(t_text), "%Y-%m-%dT%H:%M:%S", &tm) != 19)
			memcpy(t_text, "1970-01-01T00:00:00", 20);
		t_sec = sec;
	}
	unsigned msec = (unsigned)(ms % 1000);
	memcpy(out, t_text, 19);
	out[19] = '.';
	out[20] = (char)('0' + msec / 100);
	out[21] = (char)('0' + msec / 10 % 10);
	out[22] = (char)('0' + msec % 10);
	out[23] = 'Z';
	out[24] = '\0';
	return 24;
}

struct sb {
	char *buf;
	size_t len, o;
	enum log_format fmt;
	bool first;
};

/* The line so far is b->buf[0..o); it is NUL-terminated once, at the end. */
static void sb_cut(struct sb *b, const char *s, size_t l)
{
	if (b->o + l >= b->len)
		l = b->len - b->o - 1;
	memcpy(b->buf + b->o, s, l);
	b->o += l;
}

/* Inlined with a constant length (keys, separators) the copy is a few moves. */
static inline __attribute__((always_inline)) void sb_mem(struct sb *b, const char *s, size_t l)
{
	if (__builtin_expect(b->o + l < b->len, 1)) {
		memcpy(b->buf + b->o, s, l);
		b->o += l;
	} else {
		sb_cut(b, s, l);
	}
}

static inline __attribute__((always_inline)) void sb_raw(struct sb *b, const char *s)
{
	sb_mem(b, s, strlen(s));
}

static inline __attribute__((always_inline)) void sb_key(struct sb *b, const char *k)
{
	size_t kl = strlen(k); /* a literal: folded by the compiler once inlined */
	if (b->fmt == LOG_FORMAT_JSON) {
		sb_mem(b, b->first ? "\"" : ",\"", b->first ? 1 : 2);
		sb_mem(b, k, kl);
		sb_mem(b, "\":", 2);
	} else {
		if (!b->first)
			sb_mem(b, " ", 1);
		sb_mem(b, k, kl);
		sb_mem(b, "=", 1);
	}
	b->first = false;
}

/* Escaped values are written straight into the line, each cut at 2 KiB as before. */
#define SB_VALUE_MAX 2048u
static inline __attribute__((always_inline)) void sb_str(struct sb *b, const char *k, const char *v)
{
	if (!v)
		return;
	sb_key(b, k);
	if (b->fmt == LOG_FORMAT_JSON)
		sb_raw(b, "\"");
	size_t room = b->len - b->o;
	if (room > SB_VALUE_MAX)
		room = SB_VALUE_MAX;
	/* the JSON closing quote needs a byte: keep one back */
	if (b->fmt == LOG_FORMAT_JSON && room > 1)
		room--;
	b->o += b->fmt == LOG_FORMAT_JSON ? log_escape_json(b->buf + b->o, room, v)
	                                  : log_escape_kv(b->buf + b->o, room, v);
	if (b->fmt == LOG_FORMAT_JSON)
		sb_raw(b, "\"");
}

/* A value that never needs escaping (a number, or a name from mxsane's own tables: lower
 * case letters and '_'); JSON still quotes the names. */
static void sb_num(struct sb *b, const char *k, const char *v, size_t vl)
{
	sb_key(b, k);
	sb_mem(b, v, vl);
}

static inline __attribute__((always_inline)) void sb_word(struct sb *b, const char *k,
                                                          const char *v)
{
	sb_key(b, k);
	if (b->fmt == LOG_FORMAT_JSON)
		sb_mem(b, "\"", 1);
	sb_raw(b, v);
	if (b->fmt == LOG_FORMAT_JSON)
		sb_mem(b, "\"", 1);
}

/* The front-end's context fields (never the first of a line). */
static void sb_ctx(struct sb *b, const struct log_ctx *ctx)
{
	sb_str(b, "peer", ctx->peer);
	sb_str(b, "instance", ctx->instance);
	sb_str(b, "client_addr", ctx->client_addr);
	sb_str(b, "client_name", ctx->client_name);
	sb_str(b, "helo", ctx->helo);
	sb_str(b, "sender", ctx->sender);
	sb_str(b, "recipient", ctx->recipient);
}

size_t log_render_ctx(char *buf, size_t len, enum log_format fmt, const struct log_ctx *ctx)
{
	struct sb b = {.buf = buf, .len = len, .o = 0, .fmt = fmt, .first = false};
	if (len < 2)
		return 0;
	sb_ctx(&b, ctx);
	/* sb stops one byte short of len: a rendering that reached it may be cut */
	return b.o + 1 < len ? b.o : 0;
}

size_t log_format_decision(char *buf, size_t len, enum log_format fmt, const struct log_ctx *ctx,
                           const struct check_result *r)
{
	struct sb b = {.buf = buf, .len = len, .o = 0, .fmt = fmt, .first = true};
	char tmp[64], mx[1024];

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (fmt == LOG_FORMAT_JSON) {
		sb_raw(&b, "{");
		if (ctx && ctx->time_ms > 0) {
			size_t tl = fmt_rfc3339(tmp, ctx->time_ms);
			sb_key(&b, "time");
			sb_mem(&b, "\"", 1);
			sb_mem(&b, tmp, tl);
			sb_mem(&b, "\"", 1);
		}
	}
	if (ctx && ctx->queue_id)
		sb_str(&b, "queue_id", ctx->queue_id);
	sb_word(&b, "verdict", verdict_name(r->verdict));
	sb_word(&b, "action", action_name(r->action));
	if (r->action != r->configured_action)
		sb_word(&b, "would", action_name(r->configured_action));
	if (r->monitor)
		sb_word(&b, "mode", "monitor");
	if (r->outage)
		sb_word(&b, "outage", "accept");
	sb_word(&b, "role", role_name(r->role));
	if (ctx && ctx->repeat)
		sb_word(&b, "repeat", "yes");
	/* a normalised domain entry (letters, digits, '-', '_', '.'): nothing to escape */
	if (r->policy)
		sb_word(&b, "policy", r->policy);
	sb_str(&b, "domain", r->domain && r->domain[0] ? r->domain : NULL);
	if (r->reply.code) {
		/* "550 5.1.8": from verdict.h's table, quoted for the space */
		size_t tl = utoa(tmp, (unsigned)r->reply.code);
		tmp[tl++] = ' ';
		copy_cut(tmp + tl, sizeof(tmp) - tl, r->reply.dsn ? r->reply.dsn : "");
		sb_str(&b, "reply", tmp);
	}
	if (r->nmx || r->implicit_mx) {
		/* "10 mx1.example,20 mx2.example!" (! = unusable), without printf */
		struct sb m = {.buf = mx, .len = sizeof(mx), .o = 0};
		mx[0] = '\0';
		if (r->implicit_mx)
			sb_raw(&m, "implicit");
		for (size_t i = 0; i < r->nmx && !r->implicit_mx && m.o + 1 < m.len; i++) {
			if (i)
				sb_raw(&m, ",");
			utoa(tmp, r->mx[i].pref);
			sb_raw(&m, tmp);
			sb_raw(&m, " ");
			sb_raw(&m, r->mx[i].host[0] ? r->mx[i].host : ".");
			if (r->mx[i].problem && !r->mx[i].usable)
				sb_raw(&m, "!");
		}
		mx[m.o] = '\0';
		sb_str(&b, "mx", mx);
	}
	sb_num(&b, "ttl", tmp, utoa(tmp, r->ttl));
	sb_word(&b, "cache", r->cached ? "hit" : "miss");
	/* milliseconds with one decimal, rounded as printf's "%.1f" would */
	double tenths = r->ms > 0 ? r->ms * 10.0 + 0.5 : 0.0;
	unsigned long long t10 = tenths < 1e15 ? (unsigned long long)tenths : 999999999999999ull;
	size_t tl = utoa(tmp, t10 / 10);
	tmp[tl++] = '.';
	tmp[tl++] = (char)('0' + t10 % 10);
	tmp[tl] = '\0';
	sb_num(&b, "ms", tmp, tl);
	if (ctx && ctx->rendered && ctx->rendered_len && ctx->rendered_fmt == fmt)
		sb_mem(&b, ctx->rendered, ctx->rendered_len);
	else if (ctx)
		sb_ctx(&b, ctx);
	/* always present: mxsane-report takes a key=value line without it as cut short */
	sb_str(&b, "reason", r->reason ? r->reason : "");
	if (fmt == LOG_FORMAT_JSON)
		sb_raw(&b, "}");
	b.buf[b.o] = '\0';
	return b.o;
}

void log_decision(const struct log_ctx *ctx, const struct check_result *r)
{
	char line[4096];
	enum log_format fmt = log_get_format();
	struct log_ctx timed;
	if (fmt == LOG_FORMAT_JSON) {
		/* JSON records carry their own time: a jq query or a file written from stderr
		 * has no syslog prefix to take it from */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		if (ctx)
			timed = *ctx;
		else
			memset(&timed, 0, sizeof(timed));
		timed.time_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		ctx = &timed;
	}
	size_t n = log_format_decision(line, sizeof(line), fmt, ctx, r);
	log_line(r->action == ACT_ACCEPT ? LOG_INFO : LOG_WARNING, line, n);
}
