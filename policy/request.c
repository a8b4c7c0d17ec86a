/*
 * request.c - incremental parser for Postfix policy delegation requests (see request.h).
 *
 * A line that arrives whole in one buffer is parsed in place; only a line split across two
 * feeds is copied (into a buffer of at most PREQ_MAX_LINE + 1 bytes).  Values of the known
 * attributes are copied into one store (at most PA__COUNT lines, duplicates are refused).
 */
#include "request.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const attr_names[PA__COUNT] = {
        [PA_REQUEST] = "request",
        [PA_PROTOCOL_STATE] = "protocol_state",
        [PA_SENDER] = "sender",
        [PA_RECIPIENT] = "recipient",
        [PA_CLIENT_ADDRESS] = "client_address",
        [PA_CLIENT_NAME] = "client_name",
        [PA_HELO_NAME] = "helo_name",
        [PA_SASL_USERNAME] = "sasl_username",
        [PA_QUEUE_ID] = "queue_id",
        [PA_INSTANCE] = "instance",
};
#define L(s) (sizeof(s) - 1)
static const uint8_t attr_lens[PA__COUNT] = {
        [PA_REQUEST] = L("request"),
        [PA_PROTOCOL_STATE] = L("protocol_state"),
        [PA_SENDER] = L("sender"),
        [PA_RECIPIENT] = L("recipient"),
        [PA_CLIENT_ADDRESS] = L("client_address"),
        [PA_CLIENT_NAME] = L("client_name"),
        [PA_HELO_NAME] = L("helo_name"),
        [PA_SASL_USERNAME] = L("sasl_username"),
        [PA_QUEUE_ID] = L("queue_id"),
        [PA_INSTANCE] = L("instance"),
};
#undef L

struct preq {
	bool failed;
	bool complete; /* the last feed returned PREQ_DONE: drop that request at the next feed */
	const char *why;
	char whybuf[96];

	size_t bytes;    /* of the current request so far */
	unsigned nattrs; /* attribute lines so far */

	char *line; /* partial line carried over between feeds; capacity PREQ_MAX_LINE + 1 */
	size_t linelen;

	char *store; /* known values, each NUL-terminated */
	size_t storelen, storecap;
	bool have[PA__COUNT];
	size_t off[PA__COUNT], vlen[PA__COUNT];
};

const char *preq_attr_name(enum preq_attr a)
{
	return (unsigned)a < PA__COUNT ? attr_names[a] : "?";
}

struct preq *preq_new(void)
{
	return calloc(1, sizeof(struct preq));
}

/* Drop the current request (complete or partial) and release its buffers. */
static void clear_request(struct preq *p)
{
	free(p->line);
	free(p->store);
	p->line = p->store = NULL;
	p->linelen = p->storelen = p->storecap = 0;
	p->bytes = 0;
	p->nattrs = 0;
	p->complete = false;
	memset(p->have, 0, sizeof(p->have));
}

void preq_reset(struct preq *p)
{
	clear_request(p);
	p->failed = false;
	p->why = NULL;
}

void preq_free(struct preq *p)
{
	if (!p)
		return;
	clear_request(p);
	free(p);
}

bool preq_idle(const struct preq *p)
{
	return p->complete || (p->bytes == 0 && !p->failed);
}

static enum preq_status preq_fail(struct preq *p, const char *why, const char **whyp)
{
	p->failed = true;
	p->why = why;
	if (whyp)
		*whyp = why;
	return PREQ_ERROR;
}

/* Append len bytes to the store, NUL-terminated; returns the offset or SIZE_MAX. */
static size_t store_add(struct preq *p, const char *s, size_t len)
{
	if (p->storelen + len + 1 > p->storecap) {
		size_t cap = p->storecap ? p->storecap : 256;
		while (cap < p->storelen + len + 1)
			cap *= 2;
		char *n = realloc(p->store, cap);
		if (!n)
			return SIZE_MAX;
		p->store = n;
		p->storecap = cap;
	}
	size_t off = p->storelen;
	memcpy(p->store + off, s, len);
	p->store[off + len] = '\0';
	p->storelen += len + 1;
	return off;
}

/* Which known attribute a name is, or -1: by length and first octet, then one comparison
 * (Postfix sends about 30 attributes per request, we keep 10). */
static int known_attr(const char *n, size_t nl)
{
	int a = -1;
	switch (nl) {
	case 6: a = PA_SENDER; break;
	case 7: a = PA_REQUEST; break;
	case 8: a = n[0] == 'q' ? PA_QUEUE_ID : PA_INSTANCE; break;
	case 9: a = n[0] == 'r' ? PA_RECIPIENT : PA_HELO_NAME; break;
	case 11: a = PA_CLIENT_NAME; break;
	case 13: a = PA_SASL_USERNAME; break;
	case 14: a = n[0] == 'p' ? PA_PROTOCOL_STATE : PA_CLIENT_ADDRESS; break;
	default: return -1;
	}
	/* first and last octets first: most of the others share a length with one of ours */
	return attr_lens[a] == nl && attr_names[a][0] == n[0] &&
	                       attr_names[a][nl - 1] == n[nl - 1] &&
	                       memcmp(attr_names[a], n, nl) == 0
	               ? a
	               : -1;
}

/* One complete, non-empty attribute line (without its line end). */
static enum preq_status attribute(struct preq *p, const char *l, size_t ll, const char **why)
{
	if (++p->nattrs > PREQ_MAX_ATTRS)
		return preq_fail(p, "more than 256 attributes in one request", why);
	const char *eq = memchr(l, '=', ll);
	if (!eq)
		return preq_fail(p, "a line without '='", why);
	size_t nl = (size_t)(eq - l);
	if (nl == 0)
		return preq_fail(p, "an attribute with an empty name", why);
	int a = known_attr(l, nl);
	if (a < 0)
		return PREQ_MORE; /* one of the other 20 or so that Postfix sends */
	if (p->have[a]) {
		snprintf(p->whybuf, sizeof(p->whybuf), "attribute %s given twice", attr_names[a]);
		return preq_fail(p, p->whybuf, why);
	}
	size_t off = store_add(p, eq + 1, ll - nl - 1);
	if (off == SIZE_MAX)
		return preq_fail(p, "out of memory", why);
	p->have[a] = true;
	p->off[a] = off;
	p->vlen[a] = ll - nl - 1;
	return PREQ_MORE;
}

/* The empty line: the request is complete if it says what it is. */
static enum preq_status end_of_request(struct preq *p, struct policy_request *out, const char **why)
{
	if (!p->have[PA_REQUEST])
		return preq_fail(p, "request ended without a request= attribute", why);
	if (strcmp(p->store + p->off[PA_REQUEST], "smtpd_access_policy") != 0)
		return preq_fail(p, "unsupported request type (not request=smtpd_access_policy)",
		                 why);
	memset(out, 0, sizeof(*out));
	for (int a = 0; a < PA__COUNT; a++)
		if (p->have[a]) {
			out->v[a] = p->store + p->off[a];
			out->len[a] = p->vlen[a];
		}
	out->nattrs = p->nattrs;
	out->bytes = p->bytes;
	p->complete = true;
	return PREQ_DONE;
}

enum preq_status preq_feed(struct preq *p, const char *buf, size_t len, size_t *used,
                           struct policy_request *out, const char **why)
{
	size_t i = 0;
	enum preq_status st = PREQ_MORE;

	*used = 0;
	if (p->failed) {
		if (why)
			*why = p->why;
		return PREQ_ERROR;
	}
	if (p->complete)
		clear_request(p);
	/* the first NUL of this buffer, if any: refused when a line reaches it */
	const char *nul = len ? memchr(buf, '\0', len) : NULL;
	while (i < len) {
		const char *nlp = memchr(buf + i, '\n', len - i);
		size_t seglen = (nlp ? (size_t)(nlp - buf) : len) - i;

		if (nul && nul < buf + i + seglen)
			return preq_fail(p, "a NUL byte", why);
		p->bytes += seglen + (nlp ? 1 : 0);
		if (p->bytes > PREQ_MAX_REQUEST)
			return preq_fail(p, "request longer than 65536 bytes", why);
		/* + 1: room for a "\r" before the "\n", checked once the line is complete */
		if (p->linelen + seglen > PREQ_MAX_LINE + 1)
			return preq_fail(p, "a line longer than 2048 bytes", why);
		if (!nlp || p->linelen) {
			if (!p->line && !(p->line = malloc(PREQ_MAX_LINE + 1)))
				return preq_fail(p, "out of memory", why);
			memcpy(p->line + p->linelen, buf + i, seglen);
			p->linelen += seglen;
		}
		if (!nlp) {
			i = len;
			break;
		}
		const char *l = p->linelen ? p->line : buf + i;
		size_t ll = p->linelen ? p->linelen : seglen;
		i += seglen + 1;
		p->linelen = 0;
		if (ll && l[ll - 1] == '\r')
			ll--;
		if (ll > PREQ_MAX_LINE)
			return preq_fail(p, "a line longer than 2048 bytes", why);
		if (ll == 0) {
			st = end_of_request(p, out, why);
			break;
		}
		st = attribute(p, l, ll, why);
		if (st != PREQ_MORE)
			break;
	}
	*used = i;
	if (st == PREQ_DONE) {
		/* the line buffer is not needed until the next request starts */
		free(p->line);
		p->line = NULL;
	}
	return st;
}
