/*
 * log.c - syslog/stderr logging and the escaping of logged values.
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

enum log_format log_get_format(void)
{
	return (enum log_format)g_fmt;
}

void log_line(int prio, const char *line, size_t len)
{
	emit_line(prio, line, len);
}
