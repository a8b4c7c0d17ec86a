/*
 * test_policy_request.c - unit tests for policy/request.c, the Postfix policy request parser:
 * values, absent vs empty attributes, pipelining, every way of splitting the input, CRLF,
 * each limit at its bound and one past it, malformed input, sticky errors, and random bytes.
 *
 * The parser lives in policy/ and the Makefile links unit tests with the core library only,
 * so it is compiled into this test directly.  Every feed uses an exactly-sized heap copy,
 * so a read past the end shows up under ASan and valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../policy/request.c"

/* Feed s[0..len-1] from an exact heap copy. */
static enum preq_status feed(struct preq *p, const char *s, size_t len, size_t *used,
                             struct policy_request *out, const char **why)
{
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, s, len);
	enum preq_status st = preq_feed(p, copy, len, used, out, why);
	free(copy);
	return st;
}

static const char REQ[] = "request=smtpd_access_policy\n"
                          "protocol_state=RCPT\n"
                          "protocol_name=ESMTP\n"
                          "client_address=192.0.2.1\n"
                          "client_name=mail.example.org\n"
                          "helo_name=mail.example.org\n"
                          "sender=\n"
                          "recipient=bob@example.net\n"
                          "queue_id=\n"
                          "instance=123.456.7\n"
                          "sasl_username=\n"
                          "size=12345\n"
                          "ccert_subject=x=y\n"
                          "\n";

static void check_req(const struct policy_request *r)
{
	assert_string_equal(r->v[PA_REQUEST], "smtpd_access_policy");
	assert_string_equal(r->v[PA_PROTOCOL_STATE], "RCPT");
	assert_string_equal(r->v[PA_CLIENT_ADDRESS], "192.0.2.1");
	assert_string_equal(r->v[PA_CLIENT_NAME], "mail.example.org");
	assert_string_equal(r->v[PA_HELO_NAME], "mail.example.org");
	assert_non_null(r->v[PA_SENDER]);
	assert_string_equal(r->v[PA_SENDER], ""); /* present and empty: the null sender */
	assert_int_equal(r->len[PA_SENDER], 0);
	assert_string_equal(r->v[PA_RECIPIENT], "bob@example.net");
	assert_int_equal(r->len[PA_RECIPIENT], strlen("bob@example.net"));
	assert_string_equal(r->v[PA_QUEUE_ID], "");
	assert_string_equal(r->v[PA_INSTANCE], "123.456.7");
	assert_string_equal(r->v[PA_SASL_USERNAME], "");
	assert_int_equal(r->nattrs, 13);
	assert_int_equal(r->bytes, sizeof(REQ) - 1);
}

static void test_whole(void **state)
{
	(void)state;
	struct preq *p = preq_new();
	struct policy_request r;
	size_t used;
	const char *why = NULL;
	assert_true(preq_idle(p));
	assert_int_equal(feed(p, REQ, sizeof(REQ) - 1, &used, &r, &why), PREQ_DONE);
	assert_int_equal(used, sizeof(REQ) - 1);
	check_req(&r);
	assert_true(preq_idle(p));
	preq_free(p);
}

static void test_absent(void **state)
{
	(void)state;
	static const char s[] = "recipient=a@b\nrequest=smtpd_access_policy\n\n";
	struct preq *p = preq_new();
	struct policy_request r;
	size_t used;
	assert_int_equal(feed(p, s, sizeof(s) - 1, &used, &r, NULL), PREQ_DONE);
	assert_null(r.v[PA_SENDER]);
	assert_null(r.v[PA_PROTOCOL_STATE]);
	assert_null(r.v[PA_SASL_USERNAME]);
	assert_string_equal(r.v[PA_RECIPIENT], "a@b");
	assert_int_equal(r.nattrs, 2);
	preq_free(p);
}

/* Two requests in one buffer: the parser stops after the first and takes the second next. */
static void test_pipelined(void **state)
{
	(void)state;
	char buf[2 * sizeof(REQ)];
	size_t n = sizeof(REQ) - 1, used;
	memcpy(buf, REQ, n);
	memcpy(buf + n, REQ, n);
	struct preq *p = preq_new();
	struct policy_request r;
	assert_int_equal(feed(p, buf, 2 * n, &used, &r, NULL), PREQ_DONE);
	assert_int_equal(used, n);
	check_req(&r);
	assert_int_equal(feed(p, buf + used, 2 * n - used, &used, &r, NULL), PREQ_DONE);
	assert_int_equal(used, n);
	check_req(&r);
	preq_free(p);
}

/* Every split of the request into two feeds, and one byte at a time. */
static void test_splits(void **state)
{
	(void)state;
	size_t n = sizeof(REQ) - 1;
	for (size_t cut = 0; cut <= n; cut++) {
		struct preq *p = preq_new();
		struct policy_request r;
		size_t used;
		enum preq_status st = feed(p, REQ, cut, &used, &r, NULL);
		if (cut < n) {
			assert_int_equal(st, PREQ_MORE);
			assert_int_equal(used, cut);
			assert_int_equal(preq_idle(p), cut == 0);
			assert_int_equal(feed(p, REQ + cut, n - cut, &used, &r, NULL), PREQ_DONE);
			assert_int_equal(used, n - cut);
		} else {
			assert_int_equal(st, PREQ_DONE);
		}
		check_req(&r);
		preq_free(p);
	}
	struct preq *p = preq_new();
	struct policy_request r;
	size_t used;
	for (size_t i = 0; i < n; i++) {
		enum preq_status st = feed(p, REQ + i, 1, &used, &r, NULL);
		assert_int_equal(used, 1);
		assert_int_equal(st, i + 1 == n ? PREQ_DONE : PREQ_MORE);
	}
	check_req(&r);
	preq_free(p);
}

static void test_crlf(void **state)
{
	(void)state;
	static const char s[] = "request=smtpd_access_policy\r\nrecipient=a@b\r\n\r\n";
	struct preq *p = preq_new();
	struct policy_request r;
	size_t used;
	assert_int_equal(feed(p, s, sizeof(s) - 1, &used, &r, NULL), PREQ_DONE);
	assert_string_equal(r.v[PA_REQUEST], "smtpd_access_policy");
	assert_string_equal(r.v[PA_RECIPIENT], "a@b");
	preq_free(p);
}

/* A request with one unknown attribute line of exactly n bytes (before "\n"). */
static char *with_line(size_t n, bool crlf, size_t *len)
{
	const char *head = "request=smtpd_access_policy\n";
	size_t hl = strlen(head);
	char *s = malloc(hl + n + 4);
	assert_non_null(s);
	memcpy(s, head, hl);
	memcpy(s + hl, "x_pad=", 6);
	memset(s + hl + 6, 'a', n - 6);
	size_t o = hl + n;
	if (crlf)
		s[o++] = '\r';
	s[o++] = '\n';
	s[o++] = '\n';
	*len = o;
	return s;
}

static enum preq_status feed_all(const char *s, size_t len, const char **why, char *whybuf,
                                 size_t chunk)
{
	struct preq *p = preq_new();
	struct policy_request r;
	size_t used, off = 0;
	enum preq_status st = PREQ_MORE;
	while (off < len && st == PREQ_MORE) {
		size_t n = len - off < chunk ? len - off : chunk;
		st = feed(p, s + off, n, &used, &r, why);
		off += used;
	}
	if (st == PREQ_ERROR)
		snprintf(whybuf, 128, "%s", *why);
	preq_free(p);
	return st;
}

static void test_line_limit(void **state)
{
	(void)state;
	char why[128];
	const char *w;
	size_t chunks[] = {1, 7, 2048, 100000};
	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		size_t len;
		char *s = with_line(PREQ_MAX_LINE, false, &len);
		assert_int_equal(feed_all(s, len, &w, why, chunks[k]), PREQ_DONE);
		free(s);
		s = with_line(PREQ_MAX_LINE, true, &len); /* the CR is not counted */
		assert_int_equal(feed_all(s, len, &w, why, chunks[k]), PREQ_DONE);
		free(s);
		s = with_line(PREQ_MAX_LINE + 1, false, &len);
		assert_int_equal(feed_all(s, len, &w, why, chunks[k]), PREQ_ERROR);
		assert_string_equal(why, "a line longer than 2048 bytes");
		free(s);
		s = with_line(PREQ_MAX_LINE + 1, true, &len);
		assert_int_equal(feed_all(s, len, &w, why, chunks[k]), PREQ_ERROR);
		free(s);
	}
}

/* A long line is refused as soon as it is too long, without waiting for its end. */
static void test_line_limit_early(void **state)
{
	(void)state;
	struct preq *p = preq_new();
	struct policy_request r;
	size_t used;
	const char *why;
	char a[1000];
	memset(a, 'a', sizeof(a));
	assert_int_equal(feed(p, "request=", 8, &used, &r, &why), PREQ_MORE);
	assert_int_equal(feed(p, a, sizeof(a), &used, &r, &why), PREQ_MORE);
	assert_int_equal(feed(p, a, sizeof(a), &used, &r, &why), PREQ_MORE);
	assert_int_equal(feed(p, a, sizeof(a), &used, &r, &why), PREQ_ERROR);
	assert_string_equal(why, "a line longer than 2048 bytes");
	/* sticky until reset */
	assert_int_equal(feed(p, "\n\n", 2, &used, &r, &why), PREQ_ERROR);
	assert_int_equal(used, 0);
	assert_false(preq_idle(p));
	preq_reset(p);
	assert_true(preq_idle(p));
	static const char ok[] = "request=smtpd_access_policy\n\n";
	assert_int_equal(feed(p, ok, sizeof(ok) - 1, &used, &r, &why), PREQ_DONE);
	preq_free(p);
}

/* A request of exactly total bytes: lines of at most 2048 bytes. */
static char *sized_request(size_t total)
{
	const char *head = "request=smtpd_access_policy\n";
	char *s = malloc(total);
	assert_non_null(s);
	size_t o = strlen(head);
	memcpy(s, head, o);
	while (o < total - 1) {
		size_t rest = total - 1 - o; /* bytes left for lines, each with its "\n" */
		size_t n = rest - 1 > 2048 ? 2048 : rest - 1;
		if (rest - (n + 1) > 0 && rest - (n + 1) < 8)
			n -= 8;
		memcpy(s + o, "x_pad=", 6);
		memset(s + o + 6, 'b', n - 6);
		s[o + n] = '\n';
		o += n + 1;
	}
	s[o++] = '\n';
	assert_int_equal(o, total);
	return s;
}

static void test_request_limit(void **state)
{
	(void)state;
	char why[128];
	const char *w;
	char *s = sized_request(PREQ_MAX_REQUEST);
	assert_int_equal(feed_all(s, PREQ_MAX_REQUEST, &w, why, 4096), PREQ_DONE);
	free(s);
	s = sized_request(PREQ_MAX_REQUEST + 1);
	assert_int_equal(feed_all(s, PREQ_MAX_REQUEST + 1, &w, why, 4096), PREQ_ERROR);
	assert_string_equal(why, "request longer than 65536 bytes");
	assert_int_equal(feed_all(s, PREQ_MAX_REQUEST + 1, &w, why, 1), PREQ_ERROR);
	free(s);
}

static void test_attr_limit(void **state)
{
	(void)state;
	char why[128], *s = malloc(256 * 16 + 64);
	const char *w;
	assert_non_null(s);
	for (unsigned n = 255; n <= 257; n++) {
		size_t o = (size_t)sprintf(s, "request=smtpd_access_policy\n");
		for (unsigned i = 1; i < n; i++)
			o += (size_t)sprintf(s + o, "x%u=%u\n", i, i);
		s[o++] = '\n';
		enum preq_status st = feed_all(s, o, &w, why, 100000);
		assert_int_equal(st, n <= PREQ_MAX_ATTRS ? PREQ_DONE : PREQ_ERROR);
		if (st == PREQ_ERROR)
			assert_string_equal(why, "more than 256 attributes in one request");
	}
	free(s);
}

static void expect_error(const char *s, size_t len, const char *want)
{
	char why[128];
	const char *w;
	size_t chunks[] = {1, 3, 100000};
	for (size_t k = 0; k < 3; k++) {
		enum preq_status st = feed_all(s, len, &w, why, chunks[k]);
		if (st != PREQ_ERROR)
			fail_msg("\"%.*s\": status %d, want an error", (int)len, s, st);
		if (strcmp(why, want) != 0)
			fail_msg("\"%.*s\": \"%s\", want \"%s\"", (int)len, s, why, want);
	}
}

static void test_malformed(void **state)
{
	(void)state;
#define E(s, want) expect_error(s, sizeof(s) - 1, want)
	E("request=smtpd_access_policy\nno equals sign\n\n", "a line without '='");
	E("request=smtpd_access_policy\n=value\n\n", "an attribute with an empty name");
	E("request=smtpd_access_policy\nsender=a@b\nsender=c@d\n\n",
	  "attribute sender given twice");
	E("request=smtpd_access_policy\nrequest=smtpd_access_policy\n\n",
	  "attribute request given twice");
	E("sender=a@b\n\n", "request ended without a request= attribute");
	E("\n", "request ended without a request= attribute");
	E("\r\n", "request ended without a request= attribute");
	E("request=junk\n\n", "unsupported request type (not request=smtpd_access_policy)");
	E("request=smtpd_access_policy \n\n",
	  "unsupported request type (not request=smtpd_access_policy)");
	E("request=smtpd_access_policy\nsender=a\0b\n\n", "a NUL byte");
	E("request=smtpd_access_policy\n\0\n", "a NUL byte");
	E("\0", "a NUL byte");
#undef E
}

/* Names are case-sensitive as in Postfix; unknown ones (even near misses) are ignored. */
static void test_unknown_ignored(void **state)
{
	(void)state;
	static const char s[] = "Sender=x@y\nrecipients=z@w\nrequest=smtpd_access_policy\n"
	                        "recipient=a=b@c\nfoo=\n\n";
	struct preq *p = preq_new();
	struct policy_request r;
	size_t used;
	assert_int_equal(feed(p, s, sizeof(s) - 1, &used, &r, NULL), PREQ_DONE);
	assert_null(r.v[PA_SENDER]);
	assert_string_equal(r.v[PA_RECIPIENT], "a=b@c");
	assert_int_equal(r.nattrs, 5);
	preq_free(p);
}

/* Random bytes, random chunking: never a crash, used never beyond len, results consistent. */
static void test_random(void **state)
{
	(void)state;
	uint32_t x = 12345;
#define RND() (x ^= x << 13, x ^= x >> 17, x ^= x << 5, x)
	static const char alphabet[] = "request=smtpd_access_policy\nsender=a@b\n\n\r=\0xyz";
	char *buf = malloc(70000);
	assert_non_null(buf);
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = RND() % (iter % 50 == 0 ? 70000 : 400);
		for (size_t i = 0; i < len; i++)
			buf[i] = (RND() % 4) ? alphabet[RND() % (sizeof(alphabet) - 1)]
			                     : (char)(RND() & 0xff);
		struct preq *p = preq_new();
		struct policy_request r;
		size_t off = 0, used;
		const char *why;
		int dones = 0;
		while (off < len) {
			size_t n = 1 + RND() % 300;
			if (n > len - off)
				n = len - off;
			enum preq_status st = feed(p, buf + off, n, &used, &r, &why);
			assert_true(used <= n);
			if (st == PREQ_ERROR) {
				assert_non_null(why);
				break;
			}
			if (st == PREQ_DONE) {
				dones++;
				assert_string_equal(r.v[PA_REQUEST], "smtpd_access_policy");
				assert_true(r.bytes <= PREQ_MAX_REQUEST);
				assert_true(r.nattrs <= PREQ_MAX_ATTRS);
				for (int a = 0; a < PA__COUNT; a++)
					if (r.v[a])
						assert_int_equal(strlen(r.v[a]), r.len[a]);
			} else {
				assert_int_equal(used, n);
			}
			off += used;
		}
		(void)dones;
		preq_free(p);
	}
	free(buf);
#undef RND
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(preq_attr_name(PA_PROTOCOL_STATE), "protocol_state");
	assert_string_equal(preq_attr_name(PA_INSTANCE), "instance");
	assert_string_equal(preq_attr_name(PA__COUNT), "?");
	preq_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_whole),
	        cmocka_unit_test(test_absent),
	        cmocka_unit_test(test_pipelined),
	        cmocka_unit_test(test_splits),
	        cmocka_unit_test(test_crlf),
	        cmocka_unit_test(test_line_limit),
	        cmocka_unit_test(test_line_limit_early),
	        cmocka_unit_test(test_request_limit),
	        cmocka_unit_test(test_attr_limit),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_unknown_ignored),
	        cmocka_unit_test(test_random),
	        cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
