/*
 * test_verdict.c - unit tests for core/verdict.c: names and their round trip, the reply
 * table, and the invariant that SMTP code class and enhanced status class always agree
 * (4xx with 4.x.x for tempfail, 5xx with 5.x.x for reject, dns_error never 5xx), and the
 * one builder of reply lines (bounded, printable, '%' doubled for libmilter).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "text.h"
#include "verdict.h"

static const char *const vnames[V__COUNT] = {
        "ok",        "null_mx",  "nxdomain",  "no_mail_host",
        "broken_mx", "mx_cname", "dns_error", "skipped",
};
static const char *const anames[ACT__COUNT] = {"accept", "warn", "tempfail", "reject"};

static void test_verdict_names(void **state)
{
	(void)state;
	for (int v = 0; v < V__COUNT; v++) {
		enum verdict back = V__COUNT;

		assert_string_equal(verdict_name((enum verdict)v), vnames[v]);
		assert_true(verdict_from_name(vnames[v], &back));
		assert_int_equal(back, v);
	}
	/* The order is part of the configuration ABI. */
	assert_int_equal(V_OK, 0);
	assert_int_equal(V_SKIPPED, 7);
	assert_int_equal(V__COUNT, 8);
}

static void test_action_names(void **state)
{
	(void)state;
	for (int a = 0; a < ACT__COUNT; a++) {
		enum action back = ACT__COUNT;

		assert_string_equal(action_name((enum action)a), anames[a]);
		assert_true(action_from_name(anames[a], &back));
		assert_int_equal(back, a);
	}
	assert_true(ACT_ACCEPT < ACT_WARN && ACT_WARN < ACT_TEMPFAIL && ACT_TEMPFAIL < ACT_REJECT);
}

static void test_role_names(void **state)
{
	(void)state;
	assert_string_equal(role_name(ROLE_SENDER), "sender");
	assert_string_equal(role_name(ROLE_RECIPIENT), "recipient");
}

static void test_unknown_names(void **state)
{
	static const char *const bad[] = {
	        "",        "OK",      "Reject", "null-mx", "nullmx",     "reject ",
	        " reject", "rejectx", "sender", "unknown", "dns_errors", "tempfail\n",
	};
	enum verdict v = V_OK;
	enum action a = ACT_ACCEPT;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (verdict_from_name(bad[i], &v))
			fail_msg("verdict_from_name(\"%s\") accepted", bad[i]);
		if (action_from_name(bad[i], &a))
			fail_msg("action_from_name(\"%s\") accepted", bad[i]);
	}
	/* Untouched on failure. */
	assert_int_equal(v, V_OK);
	assert_int_equal(a, ACT_ACCEPT);
	assert_false(verdict_from_name(NULL, &v));
	assert_false(action_from_name(NULL, &a));

	/* Out-of-range values still give a printable name. */
	assert_non_null(verdict_name(V__COUNT));
	assert_non_null(verdict_name((enum verdict) - 1));
	assert_non_null(action_name(ACT__COUNT));
	assert_non_null(action_name((enum action)99));
	assert_non_null(role_name((enum role)2));
	assert_non_null(role_name((enum role) - 1));
}

static void expect_reply(enum verdict v, enum action a, enum role r, int code, const char *dsn)
{
	struct reply rep = reply_for(v, a, r);

	if (rep.code != code || rep.dsn == NULL || strcmp(rep.dsn, dsn) != 0)
		fail_msg("%s/%s/%s: got %d %s, want %d %s", verdict_name(v), action_name(a),
		         role_name(r), rep.code, rep.dsn ? rep.dsn : "(null)", code, dsn);
}

static void test_reply_table(void **state)
{
	static const struct {
		enum verdict v;
		int rej_code[2];
		const char *rej_dsn[2];
		int tf_code[2];
		const char *tf_dsn[2];
	} want[] = {
	        {V_NULL_MX, {550, 556}, {"5.7.27", "5.1.10"}, {450, 450}, {"4.7.27", "4.1.10"}},
	        {V_NXDOMAIN, {550, 550}, {"5.1.8", "5.1.2"}, {450, 450}, {"4.1.8", "4.1.2"}},
	        {V_NO_MAIL_HOST, {550, 550}, {"5.1.8", "5.1.2"}, {450, 450}, {"4.1.8", "4.1.2"}},
	        {V_BROKEN_MX, {550, 550}, {"5.1.8", "5.4.4"}, {450, 450}, {"4.1.8", "4.4.4"}},
	        {V_MX_CNAME, {550, 550}, {"5.1.8", "5.4.4"}, {450, 450}, {"4.1.8", "4.4.4"}},
	        {V_DNS_ERROR, {451, 451}, {"4.4.3", "4.4.3"}, {451, 451}, {"4.4.3", "4.4.3"}},
	        {V_OK, {550, 550}, {"5.7.1", "5.7.1"}, {451, 451}, {"4.3.0", "4.3.0"}},
	        {V_SKIPPED, {550, 550}, {"5.7.1", "5.7.1"}, {451, 451}, {"4.3.0", "4.3.0"}},
	};

	(void)state;
	assert_int_equal(sizeof(want) / sizeof(want[0]), V__COUNT);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		for (int r = ROLE_SENDER; r <= ROLE_RECIPIENT; r++) {
			expect_reply(want[i].v, ACT_REJECT, (enum role)r, want[i].rej_code[r],
			             want[i].rej_dsn[r]);
			expect_reply(want[i].v, ACT_TEMPFAIL, (enum role)r, want[i].tf_code[r],
			             want[i].tf_dsn[r]);
		}
	}
}

/* RFC 3463 enhanced status: class "." subject(1-3 digits) "." detail(1-3 digits), the form
 * smfi_setreply accepts. */
static bool dsn_well_formed(const char *d)
{
	size_t i = 2, n;

	if (d == NULL || (d[0] != '2' && d[0] != '4' && d[0] != '5') || d[1] != '.')
		return false;
	for (int part = 0; part < 2; part++) {
		n = 0;
		while (d[i] >= '0' && d[i] <= '9') {
			i++;
			n++;
		}
		if (n < 1 || n > 3)
			return false;
		if (part == 0 && d[i++] != '.')
			return false;
	}
	return d[i] == '\0';
}

static void test_reply_invariant(void **state)
{
	(void)state;
	for (int v = 0; v < V__COUNT; v++) {
		for (int r = ROLE_SENDER; r <= ROLE_RECIPIENT; r++) {
			struct reply tf = reply_for((enum verdict)v, ACT_TEMPFAIL, (enum role)r);
			struct reply rej = reply_for((enum verdict)v, ACT_REJECT, (enum role)r);
			struct reply acc = reply_for((enum verdict)v, ACT_ACCEPT, (enum role)r);
			struct reply warn = reply_for((enum verdict)v, ACT_WARN, (enum role)r);
			int rej_class = v == V_DNS_ERROR ? 4 : 5;

			assert_true(tf.code >= 400 && tf.code <= 499);
			assert_true(dsn_well_formed(tf.dsn));
			assert_int_equal(tf.dsn[0], '4');

			if (rej.code / 100 != rej_class || !dsn_well_formed(rej.dsn) ||
			    rej.dsn[0] != '0' + rej_class)
				fail_msg("%s/%s reject: %d %s", vnames[v], role_name((enum role)r),
				         rej.code, rej.dsn);

			assert_int_equal(acc.code, 0);
			assert_null(acc.dsn);
			assert_int_equal(warn.code, 0);
			assert_null(warn.dsn);
		}
	}
}

/* A temporary DNS failure must never become a 5xx, whatever the action says. */
static void test_dns_error_never_permanent(void **state)
{
	(void)state;
	for (int a = 0; a < ACT__COUNT; a++) {
		for (int r = ROLE_SENDER; r <= ROLE_RECIPIENT; r++) {
			struct reply rep = reply_for(V_DNS_ERROR, (enum action)a, (enum role)r);

			assert_true(rep.code == 0 || rep.code / 100 == 4);
		}
	}
}

/* Values outside the enums give class-consistent generic replies, never a crash. */
static void test_reply_out_of_range(void **state)
{
	struct reply rep;

	(void)state;
	rep = reply_for(V__COUNT, ACT_REJECT, ROLE_SENDER);
	assert_int_equal(rep.code, 550);
	assert_string_equal(rep.dsn, "5.7.1");
	rep = reply_for((enum verdict) - 1, ACT_TEMPFAIL, ROLE_RECIPIENT);
	assert_int_equal(rep.code, 451);
	assert_string_equal(rep.dsn, "4.3.0");
	rep = reply_for(V_NULL_MX, ACT_REJECT, (enum role)2);
	assert_int_equal(rep.code, 550);
	assert_string_equal(rep.dsn, "5.7.1");
	rep = reply_for(V_NULL_MX, ACT_TEMPFAIL, (enum role) - 1);
	assert_int_equal(rep.code, 451);
	assert_string_equal(rep.dsn, "4.3.0");
	rep = reply_for(V_NULL_MX, ACT__COUNT, ROLE_SENDER);
	assert_int_equal(rep.code, 0);
	assert_null(rep.dsn);
	rep = reply_for(V_NULL_MX, (enum action) - 1, ROLE_SENDER);
	assert_int_equal(rep.code, 0);
	assert_null(rep.dsn);
}

/* mxsane's own failures: 451 with 4.3.0 (internal) and 4.4.3 (timeout), from the table. */
static void test_internal_replies(void **state)
{
	(void)state;
	struct reply a = reply_internal_failure(), b = reply_timeout();
	assert_int_equal(a.code, 451);
	assert_string_equal(a.dsn, "4.3.0");
	assert_int_equal(b.code, 451);
	assert_string_equal(b.dsn, "4.4.3");
	struct reply d = reply_for(V_DNS_ERROR, ACT_TEMPFAIL, ROLE_SENDER);
	assert_int_equal(d.code, b.code);
	assert_string_equal(d.dsn, b.dsn);
}

/* The reply line: "CODE DSN TEXT", printable, never longer than REPLY_LINE_MAX. */
static void test_reply_line_bounded_and_clean(void **state)
{
	(void)state;
	struct reply r = reply_for(V_NULL_MX, ACT_REJECT, ROLE_RECIPIENT);
	char line[2048], big[3000];
	size_t n =
	        reply_line(line, sizeof(line), r, "<a@b.example>: b.example does not accept mail");
	assert_string_equal(line, "556 5.1.10 <a@b.example>: b.example does not accept mail");
	assert_int_equal(n, strlen(line));

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[10] = '\r';
	big[11] = '\n';
	big[12] = (char)0xc3;
	n = reply_line(line, sizeof(line), r, big);
	assert_int_equal(n, REPLY_LINE_MAX);
	assert_int_equal(strlen(line), REPLY_LINE_MAX);
	assert_memory_equal(line + n - 3, "...", 3);
	for (size_t i = 0; i < n; i++)
		assert_true(line[i] >= 0x20 && line[i] < 0x7f);
	assert_memory_equal(line + 11 + 10, "???", 3);

	/* a small buffer bounds it too, NUL-terminated */
	n = reply_line(line, 20, r, big);
	assert_true(n < 20);
	assert_int_equal(strlen(line), n);
}

/* For libmilter: every '%' doubled, a "%%" pair never split by the cut, and the doubled text
 * still within the line. */
static void test_reply_text_percent(void **state)
{
	(void)state;
	struct reply r = reply_for(V_BROKEN_MX, ACT_TEMPFAIL, ROLE_RECIPIENT); /* 450 4.4.4 */
	char out[1024], pct[800];
	reply_text(out, sizeof(out), r, "100% sure", TEXT_PERCENT);
	assert_string_equal(out, "100%% sure");
	memset(pct, '%', sizeof(pct) - 1);
	pct[sizeof(pct) - 1] = '\0';
	size_t n = reply_text(out, sizeof(out), r, pct, TEXT_PERCENT);
	assert_true(n + strlen("450 4.4.4 ") <= REPLY_LINE_MAX);
	assert_memory_equal(out + n - 3, "...", 3);
	assert_int_equal((n - 3) % 2, 0); /* whole pairs only */
	for (size_t i = 0; i + 3 < n; i++)
		assert_int_equal(out[i], '%');
}

/* An address as a reply shows it: brackets and blanks off, at most TEXT_ADDRESS_MAX. */
static void test_text_address(void **state)
{
	(void)state;
	char out[TEXT_ADDRESS_MAX + 8], big[1000];
	text_address(out, sizeof(out), " <bob@x.example> ", 17);
	assert_string_equal(out, "bob@x.example");
	text_address(out, sizeof(out), "<a\001b@x>", 7);
	assert_string_equal(out, "a?b@x");
	memset(big, 'a', sizeof(big));
	size_t n = text_address(out, sizeof(out), big, sizeof(big));
	assert_int_equal(n, TEXT_ADDRESS_MAX + 3);
	assert_memory_equal(out + TEXT_ADDRESS_MAX, "...", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_verdict_names),
	        cmocka_unit_test(test_action_names),
	        cmocka_unit_test(test_role_names),
	        cmocka_unit_test(test_unknown_names),
	        cmocka_unit_test(test_reply_table),
	        cmocka_unit_test(test_reply_invariant),
	        cmocka_unit_test(test_dns_error_never_permanent),
	        cmocka_unit_test(test_reply_out_of_range),
	        cmocka_unit_test(test_internal_replies),
	        cmocka_unit_test(test_reply_line_bounded_and_clean),
	        cmocka_unit_test(test_reply_text_percent),
	        cmocka_unit_test(test_text_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
