/*
 * fuzz_policy.c - the Postfix policy request parser (policy/request.c) on arbitrary bytes.
 *
 * Input: byte 0 seeds how the rest is cut into feeds (a small LCG picks chunk sizes of 1 to
 * 64 bytes, or the whole stream when it is 0), the rest is the byte stream of one connection.
 * The stream is parsed twice, once in a single buffer and once in those chunks, the way
 * mxsane-policyd feeds what read() returns.  Checked (abort() on failure):
 *   - *used never exceeds the bytes given, and PREQ_MORE consumes everything;
 *   - a complete request has request=smtpd_access_policy, at most PREQ_MAX_ATTRS attributes,
 *     at most PREQ_MAX_REQUEST bytes, and every value is NUL-terminated, of the stated length,
 *     without NUL or LF (request.h also promises no CR, but a CR inside a line is passed
 *     through: `sender=a\rb` gives "a\rb", tests/policy/ok-cr-in-value.req relies on it;
 *     only the one CR before the LF is dropped);
 *   - an error has a reason, and the parser stays failed until preq_reset;
 *   - how the bytes are cut does not change the outcome: the same requests with the same
 *     values, then the same final state (error, partial or idle).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../policy/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A digest of the requests seen, to compare the two parses. */
struct trace {
	uint64_t hash;
	unsigned done;
	enum preq_status last;
	size_t consumed;
};

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

static void check_request(const struct policy_request *r, struct trace *t)
{
	if (!r->v[PA_REQUEST] || strcmp(r->v[PA_REQUEST], "smtpd_access_policy") != 0)
		abort();
	if (r->nattrs > PREQ_MAX_ATTRS || r->bytes > PREQ_MAX_REQUEST || r->bytes == 0)
		abort();
	for (int a = 0; a < PA__COUNT; a++) {
		const char *v = r->v[a];
		if (!v) {
			t->hash = mix(t->hash, "-", 1);
			continue;
		}
		if (strlen(v) != r->len[a] || r->len[a] > PREQ_MAX_LINE)
			abort();
		if (memchr(v, '\n', r->len[a]))
			abort();
		t->hash = mix(t->hash, &a, sizeof(a));
		t->hash = mix(t->hash, v, r->len[a] + 1);
	}
	t->hash = mix(t->hash, &r->nattrs, sizeof(r->nattrs));
	t->hash = mix(t->hash, &r->bytes, sizeof(r->bytes));
}

/* Feed buf[0..len) as one read; returns false once the parser failed. */
static bool feed(struct preq *p, const char *buf, size_t len, struct trace *t)
{
	while (len > 0) {
		struct policy_request r;
		const char *why = NULL;
		size_t used = 0;
		enum preq_status st = preq_feed(p, buf, len, &used, &r, &why);
		if (used > len)
			abort();
		t->last = st;
		t->consumed += used;
		if (st == PREQ_ERROR) {
			if (!why || !why[0])
				abort();
			/* stays failed */
			const char *why2 = NULL;
			if (preq_feed(p, "x", 1, &used, &r, &why2) != PREQ_ERROR || used != 0 ||
			    !why2)
				abort();
			if (preq_idle(p))
				abort();
			return false;
		}
		if (st == PREQ_MORE) {
			if (used != len)
				abort();
			return true;
		}
		check_request(&r, t);
		if (!preq_idle(p))
			abort();
		t->done++;
		buf += used;
		len -= used;
	}
	return true;
}

static void parse(const char *s, size_t n, unsigned seed, struct trace *t)
{
	struct preq *p = preq_new();
	if (!p)
		return;
	memset(t, 0, sizeof(*t));
	t->hash = 1469598103934665603ULL;
	size_t off = 0;
	uint32_t x = seed;
	while (off < n) {
		size_t chunk = n - off;
		if (seed) {
			x = x * 1103515245u + 12345u;
			size_t c = 1 + ((x >> 16) % 64);
			if (c < chunk)
				chunk = c;
		}
		if (!feed(p, s + off, chunk, t))
			break;
		off += chunk;
	}
	/* reset makes it usable again */
	preq_reset(p);
	if (!preq_idle(p))
		abort();
	preq_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	struct trace whole, cut;
	parse(s, n, 0, &whole);
	if (data[0] == 0)
		return 0;
	parse(s, n, data[0], &cut);
	if (whole.done != cut.done || whole.hash != cut.hash || whole.last != cut.last)
		abort();
	if (whole.last == PREQ_MORE && whole.consumed != cut.consumed)
		abort();
	return 0;
}
