/*
 * log.c - syslog/stderr logging and the structured decision record.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool g_stderr;
static bool g_journal; /* stderr is systemd's journal stream: "<N>" priority prefixes */
static bool g_debug;
static _Atomic int g_fmt = LOG_FORMAT_KV; /* set on reload, read by every thread */
static char g_ident[64] = "mxsane";
static size_t g_ident_len = 6;
static int g_pid; /* taken once: getpid() per line was a system call per decision */

/* Decimal digits of v into out (at least 21 bytes); returns the length. */
static size_t utoa(char *out, unsigned long long v)
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

static void log_forget_pid(void)
{
	g_pid = 0; /* the child of a fork (daemon_detach) has another pid */
}

void log_open(const char *ident, bool to_stderr, int facility)
{
	snprintf(g_ident, sizeof(g_ident), "%s", ident);
	g_ident_len = strlen(g_ident);
	g_stderr = to_stderr;
	g_pid = (int)getpid();
	static bool atfork;
	if (!atfork)
		atfork = pthread_atfork(NULL, NULL, log_forget_pid) == 0;
	/* Under systemd the journal already records the program and pid; it reads a "<N>"
	 * prefix as the priority (sd-daemon(3)). */
	g_journal = to_stderr && getenv("JOURNAL_STREAM") != NULL;
	if (!to_stderr)
		openlog(g_ident, LOG_PID | LOG_NDELAY, facility);
}

void log_set_format(enum log_format fmt)
{
	g_fmt = fmt;
}

void log_set_debug(bool on)
{
	g_debug = on;
}

bool log_debug_enabled(void)
{
	return g_debug;
}

/*
 * Batching (log_batch_begin): a thread running an event loop keeps its stderr lines here
 * and writes them with one write(2) per loop iteration (log_flush, called before the loop
 * waits) instead of one per line.  Other threads, and syslog output, write at once.
 */
#define BATCH_SIZE   (64u * 1024u)
#define LINE_MAX_OUT 8192u
static _Thread_local char *t_batch;
static _Thread_local size_t t_batch_len;

static void write_all(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere to report it: the line is lost, not the service */
		p += w;
		n -= (size_t)w;
	}
}

bool log_batch_begin(void)
{
	if (!g_stderr)
		return false;
	if (!t_batch)
		t_batch = malloc(BATCH_SIZE);
	t_batch_len = 0;
	return t_batch != NULL;
}

void log_flush(void)
{
	if (t_batch && t_batch_len) {
		write_all(t_batch, t_batch_len);
		t_batch_len = 0;
	}
}

void log_batch_end(void)
{
	log_flush();
	free(t_batch);
	t_batch = NULL;
}

static void emit_line(int prio, const char *line, size_t ll)
{
	if (prio == LOG_DEBUG && !g_debug)
		return;
	if (!g_stderr) {
		syslog(prio, "%s", line);
		return;
	}
	char local[LINE_MAX_OUT];
	char *buf = local;
	if (t_batch) {
		if (BATCH_SIZE - t_batch_len < LINE_MAX_OUT)
			log_flush();
		buf = t_batch + t_batch_len;
	}
	/* "<prio>line\n" for the journal, else "ident[pid]: line\n"; cut to LINE_MAX_OUT */
	size_t n = 0;
	if (g_journal) {
		buf[n++] = '<';
		n += utoa(buf + n, (unsigned)prio);
		buf[n++] = '>';
	} else {
		size_t il = g_ident_len;
		memcpy(buf, g_ident, il);
		n = il;
		buf[n++] = '[';
		n += utoa(buf + n, (unsigned)(g_pid ? g_pid : (int)getpid()));
		buf[n++] = ']';
		buf[n++] = ':';
		buf[n++] = ' ';
	}
	if (ll > LINE_MAX_OUT - 1 - n)
		ll = LINE_MAX_OUT - 1 - n;
	memcpy(buf + n, line, ll);
	n += ll;
	buf[n++] = '\n';
	if (t_batch)
		t_batch_len += n;
	else
		write_all(buf, n);
}

void log_msg(int prio, const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* messages can carry network data too: neutralise line breaks */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	emit_line(prio, line, strlen(line));
}

/* Octets a key=value value may hold as they are: printable ASCII except space, '"', '\\' and
 * '=' (one table lookup per octet on the hot path; 16 rows of 16). */
/* clang-format off */
static const unsigned char kv_plain[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

/* Octets that go as they are inside a quoted value: printable ASCII and space, except '"'
 * and '\\'. */
/* clang-format off */
static const unsigned char kv_quoted_plain[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

size_t log_escape_kv(char *out, size_t outlen, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *q = (const unsigned char *)s;
	size_t o = 0;

	if (outlen == 0)
		return 0;
	while (kv_plain[*q]) /* stops at the NUL */
		q++;
	if (*q == '\0' && q != (const unsigned char *)s) {
		/* the usual case, nothing to quote or escape: one copy */
		size_t l = (size_t)(q - (const unsigned char *)s);
		if (l > outlen - 1)
			l = outlen - 1;
		memcpy(out, s, l);
		out[l] = '\0';
		return l;
	}
	/* empty, or an octet that needs it: quoted, runs of plain octets copied whole,
	 * the others as \xHH; cut (still quoted) when out is full */
	if (outlen < 3) {
		out[0] = '\0';
		return 0;
	}
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		const unsigned char *r = p;
		while (kv_quoted_plain[*r])
			r++;
		size_t run = (size_t)(r - p), room = outlen - 2 - o; /* closing quote, NUL */
		if (run > room) {
			memcpy(out + o, p, room);
			o += room;
			break;
		}
		memcpy(out + o, p, run);
		o += run;
		if (*r == '\0')
			break;
		if (room - run < 4)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[*r >> 4];
		out[o++] = hex[*r & 15];
		p = r + 1;
	}
	out[o++] = '"';
	out[o] = '\0';
	return o;
}

/* Length of the valid UTF-8 sequence at p (2..4), or 0. */
static size_t utf8_seq(const unsigned char *p)
{
	size_t n;
	unsigned cp;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range or surrogate */
	return n;
}

size_t log_escape_json(char *out, size_t outlen, const char *s)
{
	size_t o = 0;
	if (outlen == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		size_t u;
		if (*p == '"' || *p == '\\') {
			if (o + 3 >= outlen)
				break;
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p >= 0x80 && (u = utf8_seq(p)) > 0) {
			/* valid UTF-8 passes through; JSON is UTF-8 */
			if (o + u + 1 >= outlen)
				break;
			memcpy(out + o, p, u);
			o += u;
			p += u - 1;
		} else if (*p < 0x20 || *p >= 0x7f) {
			/* control characters, DEL and invalid UTF-8 octets (as U+FFFD) */
			if (o + 7 >= outlen)
				break;
			o += (size_t)snprintf(out + o, outlen - o, "\\u%04x",
			                      *p >= 0x80 ? 0xfffdu : *p);
		} else {
			if (o + 1 >= outlen)
				break;
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
	return o;
}

/* strlcpy: s cut to fit size bytes with its NUL */
static void copy_cut(char *dst, size_t size, const char *s)
{
	size_t l = strnlen(s, size - 1);
	memcpy(dst, s, l);
	dst[l] = '\0';
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

enum log_format log_get_format(void)
{
	return (enum log_format)g_fmt;
}

size_t log_format_decision(char *buf, size_t len, enum log_format fmt, const struct log_ctx *ctx,
                           const struct check_result *r)
{
	struct sb b = {.buf = buf, .len = len, .o = 0, .fmt = fmt, .first = true};
	char tmp[64], mx[1024];

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (fmt == LOG_FORMAT_JSON)
		sb_raw(&b, "{");
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
	sb_str(&b, "reason", r->reason);
	if (fmt == LOG_FORMAT_JSON)
		sb_raw(&b, "}");
	b.buf[b.o] = '\0';
	return b.o;
}

void log_decision(const struct log_ctx *ctx, const struct check_result *r)
{
	char line[4096];
	size_t n = log_format_decision(line, sizeof(line), (enum log_format)g_fmt, ctx, r);
	emit_line(r->action == ACT_ACCEPT ? LOG_INFO : LOG_WARNING, line, n);
}
