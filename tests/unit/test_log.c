/*
 * test_log.c - decision log lines cannot be forged: CR, LF, control characters, quotes,
 * backslashes, '=' and non-ASCII octets in network-supplied values are escaped, in both the
 * key=value and the JSON format; every record is exactly one line that parses back to the
 * original fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "decision.h"
#include "log.h"

/* Parse one key=value line back (values: bare or "quoted" with \xHH escapes). Returns the
 * number of fields, fills keys/vals (decoded). */
static int parse_kv(const char *line, char keys[32][32], char vals[32][2048])
{
	int n = 0;
	const char *p = line;
	while (*p && n < 32) {
		size_t k = 0;
		while (*p && *p != '=') {
			if (*p == ' ' || *p == '"')
				return -1;
			keys[n][k++] = *p++;
		}
		keys[n][k] = '\0';
		if (*p != '=')
			return -1;
		p++;
		size_t v = 0;
		bool quoted = *p == '"';
		if (quoted)
			p++;
		while (*p && (quoted ? *p != '"' : *p != ' ')) {
			if (*p == '\\') {
				unsigned x;
				if (p[1] != 'x' || sscanf(p + 2, "%2x", &x) != 1)
					return -1;
				vals[n][v++] = (char)x;
				p += 4;
			} else {
				vals[n][v++] = *p++;
			}
		}
		vals[n][v] = '\0';
		if (quoted) {
			if (*p != '"')
				return -1;
			p++;
		}
		n++;
		if (*p == ' ')
			p++;
		else if (*p)
			return -1;
	}
	return n;
}

static const char *find(int n, char keys[32][32], char vals[32][2048], const char *k)
{
	for (int i = 0; i < n; i++)
		if (strcmp(keys[i], k) == 0)
			return vals[i];
	return NULL;
}

static struct check_result sample(void)
{
	static const struct mx_info mx[1] = {
	        {.pref = 10, .host = "mx.example.net", .usable = true}};
	struct check_result r;
	memset(&r, 0, sizeof(r));
	r.role = ROLE_RECIPIENT;
	r.verdict = V_NULL_MX;
	r.action = r.configured_action = ACT_REJECT;
	r.reply.code = 556;
	r.reply.dsn = "5.1.10";
	r.domain = "example.net";
	r.reason = "example.net does not accept mail (null MX)";
	r.mx = mx;
	r.nmx = 1;
	r.ttl = 3600;
	return r;
}

static void test_kv_escapes_hostile_values(void **state)
{
	(void)state;
	static char keys[32][32], vals[32][2048];
	char line[4096];
	const char *evil_sender = "a@b\r\nverdict=ok action=accept\x01\x7f\"q\\=\xc3\xa9";
	const char *evil_helo = "helo\nJan  1 00:00:00 host mxsane[1]: verdict=ok";
	struct log_ctx ctx = {.queue_id = "4ABC",
	                      .client_addr = "192.0.2.1",
	                      .helo = evil_helo,
	                      .sender = evil_sender,
	                      .recipient = "x y@z"};
	struct check_result r = sample();

	size_t len = log_format_decision(line, sizeof(line), LOG_FORMAT_KV, &ctx, &r);
	assert_int_equal(len, strlen(line));
	for (const char *p = line; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	int n = parse_kv(line, keys, vals);
	assert_true(n > 5);
	assert_string_equal(find(n, keys, vals, "sender"), evil_sender);
	assert_string_equal(find(n, keys, vals, "helo"), evil_helo);
	assert_string_equal(find(n, keys, vals, "recipient"), "x y@z");
	assert_string_equal(find(n, keys, vals, "verdict"), "null_mx");
	assert_string_equal(find(n, keys, vals, "action"), "reject");
	assert_string_equal(find(n, keys, vals, "reply"), "556 5.1.10");
	assert_string_equal(find(n, keys, vals, "queue_id"), "4ABC");
	/* exactly one verdict= field: the injected one stayed inside the sender value */
	int verdicts = 0;
	for (int i = 0; i < n; i++)
		verdicts += strcmp(keys[i], "verdict") == 0;
	assert_int_equal(verdicts, 1);
}

static void test_json_is_one_valid_line(void **state)
{
	(void)state;
	char line[4096];
	struct log_ctx ctx = {.sender = "a\"b\\c\r\n\x02@d",
	                      .helo = "\xff\xfe",
	                      .recipient = "b\xc3\xbc"
	                                   "cher@x"};
	struct check_result r = sample();
	log_format_decision(line, sizeof(line), LOG_FORMAT_JSON, &ctx, &r);
	assert_null(strchr(line, '\n'));
	assert_null(strchr(line, '\r'));
	assert_non_null(strstr(line, "\"sender\":\"a\\\"b\\\\c\\u000d\\u000a\\u0002@d\""));
	assert_non_null(strstr(line, "\"helo\":\"\\ufffd\\ufffd\"")); /* invalid UTF-8 */
	assert_non_null(strstr(line, "\"recipient\":\"b\xc3\xbc"
	                             "cher@x\"")); /* valid UTF-8 kept */
	assert_int_equal(line[0], '{');
	assert_int_equal(line[strlen(line) - 1], '}');
}

static void test_truncation_stays_terminated(void **state)
{
	(void)state;
	char small[64];
	char big[3000];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct log_ctx ctx = {.sender = big};
	struct check_result r = sample();
	size_t n = log_format_decision(small, sizeof(small), LOG_FORMAT_KV, &ctx, &r);
	assert_true(n < sizeof(small));
	assert_int_equal(strlen(small), n);
	char esc[16];
	log_escape_kv(esc, sizeof(esc), "\n\n\n\n\n\n\n\n");
	assert_true(strlen(esc) < sizeof(esc));
	assert_null(strchr(esc, '\n'));
}

static void test_empty_and_plain_values(void **state)
{
	(void)state;
	char out[64];
	log_escape_kv(out, sizeof(out), "");
	assert_string_equal(out, "\"\"");
	log_escape_kv(out, sizeof(out), "plain.value-1@x");
	assert_string_equal(out, "plain.value-1@x");
	log_escape_kv(out, sizeof(out), "has space");
	assert_string_equal(out, "\"has space\"");
}

/* Batching (mxsane-policyd): lines stay in the thread's buffer until log_flush(), then go
 * out together, complete and in order; log_batch_end() flushes what is left. */
static ssize_t drain(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* The escaping rule, one octet at a time: the reference log_escape_kv must agree with
 * (its fast paths judge 16 octets at once). */
static void ref_escape_kv(char *out, const char *s)
{
	size_t o = 0;
	bool plain = s[0] != '\0';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '=')
			plain = false;
	if (plain) {
		strcpy(out, s);
		return;
	}
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
			out[o++] = (char)*p;
		else
			o += (size_t)sprintf(out + o, "\\x%02x", *p);
	}
	out[o++] = '"';
	out[o] = '\0';
}

static void test_kv_escape_matches_reference(void **state)
{
	/* octets that matter at every position of values from 0 to 99 octets: each class of
	 * the rule, both ends of each range, and plain ones */
	static const unsigned char pick[] = {'a',  'Z',  '0',  '.',  '-',  '@',  '~',  '!',
	                                     0x21, 0x7e, 0x20, 0x1f, 0x01, 0x7f, 0x80, 0xff,
	                                     '"',  '\\', '=',  '\r', '\n', '\t'};
	char in[128], got[1024], want[1024];
	unsigned seed = 12345;
	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(round % 100);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			/* mostly plain, so long plain runs with one odd octet somewhere occur */
			unsigned r = (seed >> 16) % 64;
			in[i] = (char)(r < 42 ? 'a' + (char)(r % 26)
			                      : (char)pick[r % sizeof(pick)]);
		}
		in[len] = '\0';
		ref_escape_kv(want, in);
		size_t n = log_escape_kv(got, sizeof(got), in);
		if (strcmp(got, want) != 0 || n != strlen(want))
			fail_msg("value of %zu octets (round %d): got [%s], want [%s]", len, round,
			         got, want);
	}
}

/* A context rendered once (log_render_ctx) gives the very line the fields give, in both
 * formats, hostile values included; one rendered for the other format is not used; one
 * that does not fit is refused. */
static void test_rendered_context_same_line(void **state)
{
	(void)state;
	char a[4096], b[4096], pre[2048];
	struct log_ctx ctx = {.queue_id = "4ABC",
	                      .instance = "1f.2.0",
	                      .client_addr = "192.0.2.1",
	                      .client_name = "mail \"x\".example",
	                      .helo = "h\r\nverdict=ok",
	                      .sender = "a=b@\xc3\xa9.example",
	                      .recipient = "r@z.example"};
	struct check_result r = sample();
	enum log_format fmts[] = {LOG_FORMAT_KV, LOG_FORMAT_JSON};
	for (int i = 0; i < 2; i++) {
		size_t want = log_format_decision(a, sizeof(a), fmts[i], &ctx, &r);
		struct log_ctx pc = ctx;
		pc.rendered_len = log_render_ctx(pre, sizeof(pre), fmts[i], &ctx);
		assert_true(pc.rendered_len > 0);
		pc.rendered = pre;
		pc.rendered_fmt = fmts[i];
		pc.client_addr = "203.0.113.99"; /* must not be looked at */
		size_t got = log_format_decision(b, sizeof(b), fmts[i], &pc, &r);
		assert_int_equal(got, want);
		assert_string_equal(b, a);
		/* rendered for the other format: the fields are used */
		pc.rendered_fmt = fmts[1 - i];
		log_format_decision(b, sizeof(b), fmts[i], &pc, &r);
		assert_non_null(strstr(b, "203.0.113.99"));
	}
	assert_int_equal(log_render_ctx(pre, 40, LOG_FORMAT_KV, &ctx), 0);
}

static void test_batch_until_flush(void **state)
{
	(void)state;
	int p[2], saved = dup(STDERR_FILENO);
	char buf[4096];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	log_open("t", true, LOG_MAIL);
	assert_true(log_batch_begin());
	log_msg(LOG_INFO, "one");
	log_msg(LOG_INFO, "two");
	assert_int_equal(drain(p[0], buf, sizeof(buf)), -1); /* nothing written yet */
	log_flush();
	drain(p[0], buf, sizeof(buf));
	assert_non_null(strstr(buf, "]: one\n"));
	assert_non_null(strstr(buf, "]: two\n"));
	assert_true(strstr(buf, "one") < strstr(buf, "two"));
	log_msg(LOG_INFO, "three");
	log_batch_end();
	drain(p[0], buf, sizeof(buf));
	assert_non_null(strstr(buf, "]: three\n"));
	log_msg(LOG_INFO, "four"); /* not batching any more: written at once */
	drain(p[0], buf, sizeof(buf));
	assert_non_null(strstr(buf, "]: four\n"));
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[0]);
	close(p[1]);
}

/* JSON records start with their time, RFC 3339 in UTC to the millisecond; key=value lines
 * leave the time to syslog.  A repeated sender verdict says repeat=yes in both formats. */
static void test_time_and_repeat(void **state)
{
	(void)state;
	char line[4096];
	struct check_result r = sample();
	struct log_ctx ctx = {.sender = "<a@b.example>",
	                      .repeat = true,
	                      .time_ms = 1796411221007LL}; /* 2026-12-04T19:07:01.007Z */
	log_format_decision(line, sizeof(line), LOG_FORMAT_JSON, &ctx, &r);
	assert_memory_equal(line, "{\"time\":\"2026-12-04T19:07:01.007Z\",\"verdict\":", 42);
	assert_non_null(strstr(line, ",\"repeat\":\"yes\","));
	log_format_decision(line, sizeof(line), LOG_FORMAT_KV, &ctx, &r);
	assert_null(strstr(line, "time"));
	assert_non_null(strstr(line, " repeat=yes "));
	/* the next second, and one in another year: the per-second cache must not stick */
	ctx.time_ms = 1796411222999LL;
	log_format_decision(line, sizeof(line), LOG_FORMAT_JSON, &ctx, &r);
	assert_memory_equal(line, "{\"time\":\"2026-12-04T19:07:02.999Z\"", 33);
	ctx.time_ms = 946684800000LL;
	ctx.repeat = false;
	log_format_decision(line, sizeof(line), LOG_FORMAT_JSON, &ctx, &r);
	assert_memory_equal(line, "{\"time\":\"2000-01-01T00:00:00.000Z\"", 33);
	assert_null(strstr(line, "repeat"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kv_escapes_hostile_values),
	        cmocka_unit_test(test_json_is_one_valid_line),
	        cmocka_unit_test(test_truncation_stays_terminated),
	        cmocka_unit_test(test_empty_and_plain_values),
	        cmocka_unit_test(test_kv_escape_matches_reference),
	        cmocka_unit_test(test_rendered_context_same_line),
	        cmocka_unit_test(test_batch_until_flush),
	        cmocka_unit_test(test_time_and_repeat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
