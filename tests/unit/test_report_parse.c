/*
 * test_report_parse.c - mxsane-report's line parser (report/parse.c): every form a decision
 * line reaches a disk in gives the same fields and the right UTC time; other programs' lines
 * are "other"; binary, cut or malformed lines are "bad", at every length they can be cut to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../report/parse.h"

/* 2026-12-04T19:07:01Z */
#define T0  ((int64_t)1796411221 * 1000)
#define NOW (T0 + 3600 * 1000)

static enum rline parse(const char *line, struct rdec *d)
{
	static char scratch[PARSE_SCRATCH(8192)];
	assert_true(strlen(line) <= 8192);
	return parse_line(line, strlen(line), d, scratch, NOW);
}

static void assert_rstr(struct rstr s, const char *want)
{
	char buf[512];
	assert_true(s.n < sizeof(buf));
	memcpy(buf, s.p ? s.p : "", s.n);
	buf[s.n] = '\0';
	assert_string_equal(buf, want);
}

static const char KV[] =
        "verdict=null_mx action=reject role=sender domain=null-mx.example reply=\"550 5.7.27\" "
        "mx=\"0 .\" ttl=3600 cache=hit ms=0.0 client_addr=192.0.2.7 client_name=[192.0.2.7] "
        "helo=h.example sender=<a@null-mx.example> reason=\"null-mx.example does not accept "
        "mail (null MX)\"";

static void check_kv_fields(const struct rdec *d)
{
	assert_int_equal(d->verdict, V_NULL_MX);
	assert_int_equal(d->action, ACT_REJECT);
	assert_int_equal(d->would, -1);
	assert_int_equal(d->role, ROLE_SENDER);
	assert_false(d->repeat);
	assert_rstr(d->domain, "null-mx.example");
	assert_rstr(d->client, "192.0.2.7");
	assert_rstr(d->sender, "<a@null-mx.example>");
}

static void test_every_prefix_form(void **state)
{
	(void)state;
	char line[2048];
	struct rdec d;
	/* Debian 12 rsyslog: RFC 3339 with microseconds and an offset */
	snprintf(line, sizeof(line), "2026-12-04T20:07:01.250000+01:00 mx1 mxsane-milter[4711]: %s",
	         KV);
	assert_int_equal(parse(line, &d), RL_DECISION);
	check_kv_fields(&d);
	assert_true(d.has_time);
	assert_int_equal(d.t_ms, T0 + 250);
	assert_rstr(d.prog, "mxsane-milter");
	/* journalctl -o short-iso: offset without a colon */
	snprintf(line, sizeof(line), "2026-12-04T14:07:01-0500 mx1 mxsane-policyd[9]: %s", KV);
	assert_int_equal(parse(line, &d), RL_DECISION);
	check_kv_fields(&d);
	assert_int_equal(d.t_ms, T0);
	/* traditional syslog: local time (TZ), the year from now */
	setenv("TZ", "UTC", 1);
	tzset();
	snprintf(line, sizeof(line), "Dec  4 19:07:01 mx1 mxsane-policyd[9]: %s", KV);
	assert_int_equal(parse(line, &d), RL_DECISION);
	check_kv_fields(&d);
	assert_int_equal(d.t_ms, T0);
	/* a day ahead of now: last year's December */
	snprintf(line, sizeof(line), "Dec  6 19:07:01 mx1 mxsane-policyd[9]: %s", KV);
	assert_int_equal(parse(line, &d), RL_DECISION);
	assert_int_equal(d.t_ms, T0 + (2 - 365) * 86400000LL);
	/* -f on stderr: the tag only, no time */
	snprintf(line, sizeof(line), "mxsane-milter[4711]: %s", KV);
	assert_int_equal(parse(line, &d), RL_DECISION);
	check_kv_fields(&d);
	assert_false(d.has_time);
	/* the bare record */
	assert_int_equal(parse(KV, &d), RL_DECISION);
	check_kv_fields(&d);
}

static void test_json_forms(void **state)
{
	(void)state;
	struct rdec d;
	const char *j = "{\"time\":\"2026-12-04T19:07:01.500Z\",\"verdict\":\"nxdomain\","
	                "\"action\":\"warn\",\"would\":\"reject\",\"mode\":\"monitor\","
	                "\"role\":\"sender\",\"domain\":\"nx.example\",\"ttl\":300,"
	                "\"client_addr\":\"2001:db8::1\",\"sender\":\"<\\\"q\\\\\\u00e9\"}";
	assert_int_equal(parse(j, &d), RL_DECISION);
	assert_int_equal(d.verdict, V_NXDOMAIN);
	assert_int_equal(d.action, ACT_WARN);
	assert_int_equal(d.would, ACT_REJECT);
	assert_true(d.monitor);
	assert_int_equal(d.t_ms, T0 + 500);
	assert_rstr(d.client, "2001:db8::1");
	assert_rstr(d.sender, "<\"q\\\xc3\xa9");
	/* behind rsyslog's prefix: the record's own time wins (it is UTC to the ms) */
	char line[2048];
	snprintf(line, sizeof(line), "2026-12-04T19:07:03.000000+00:00 mx1 mxsane-milter[1]: %s",
	         j);
	assert_int_equal(parse(line, &d), RL_DECISION);
	assert_int_equal(d.t_ms, T0 + 500);
	/* journalctl -o json: the record (kv) is the MESSAGE, the time __REALTIME_TIMESTAMP */
	const char *jj =
	        "{\"__CURSOR\":\"s=1;i=2\",\"__REALTIME_TIMESTAMP\":\"1796411221750000\","
	        "\"PRIORITY\":\"4\",\"SYSLOG_IDENTIFIER\":\"mxsane-milter\",\"_PID\":\"4711\","
	        "\"MESSAGE\":\"verdict=broken_mx action=tempfail role=recipient "
	        "domain=b.example reason=\\\"x y\\\"\",\"_BOOT_ID\":[1,2,3]}";
	assert_int_equal(parse(jj, &d), RL_DECISION);
	assert_int_equal(d.verdict, V_BROKEN_MX);
	assert_int_equal(d.role, ROLE_RECIPIENT);
	assert_int_equal(d.t_ms, T0 + 750);
	assert_rstr(d.prog, "mxsane-milter");
	assert_rstr(d.domain, "b.example");
	/* another unit's journal record */
	assert_int_equal(
	        parse("{\"__REALTIME_TIMESTAMP\":\"1\",\"MESSAGE\":\"connect from x\"}", &d),
	        RL_OTHER);
}

static void test_values_and_marks(void **state)
{
	(void)state;
	struct rdec d;
	assert_int_equal(parse("mxsane-policyd[1]: verdict=ok action=accept role=sender "
	                       "domain=\"a\\x22b c\" repeat=yes instance=1.2 reason=x",
	                       &d),
	                 RL_DECISION);
	assert_rstr(d.domain, "a\"b c");
	assert_true(d.repeat);
	assert_int_equal(
	        parse("queue_id=4ABC verdict=mx_cname action=warn role=recipient reason=\"\"", &d),
	        RL_DECISION);
	assert_rstr(d.queue_id, "4ABC");
}

static void test_other_and_bad(void **state)
{
	(void)state;
	struct rdec d;
	assert_int_equal(
	        parse("2026-12-04T19:07:01.1+00:00 mx1 postfix/smtpd[12]: connect from x", &d),
	        RL_OTHER);
	assert_int_equal(parse("Dec  4 19:07:01 mx1 mxsane-milter[1]: starting (enforce)", &d),
	                 RL_OTHER);
	assert_int_equal(parse("", &d), RL_OTHER);
	assert_int_equal(parse("just some text", &d), RL_BAD);
	assert_int_equal(parse("verdict=perfect action=accept role=sender", &d), RL_BAD);
	assert_int_equal(parse("verdict=ok action=accept role=sender reason=\"open", &d), RL_BAD);
	assert_int_equal(parse("verdict=ok action=accept role=sender x\\x", &d), RL_BAD);
	assert_int_equal(parse("verdict=ok action=accept role=sender\x01", &d), RL_BAD);
	assert_int_equal(parse("{\"verdict\":\"ok\",\"action\":\"accept\",\"role\":\"sender\"", &d),
	                 RL_BAD);
	char nul[] = "verdict=ok action=accept role=sender";
	nul[10] = '\0';
	static char scratch[PARSE_SCRATCH(64)];
	assert_int_equal(parse_line(nul, sizeof(nul) - 1, &d, scratch, NOW), RL_BAD);
}

/* Every prefix of a good line: never out of bounds (the line and the scratch are heap
 * blocks of the exact size, for ASan), and once the record is cut inside its mandatory part
 * it is bad, not a decision with invented fields. */
static void test_every_cut(void **state)
{
	(void)state;
	char line[2048];
	const char *forms[] = {
	        "2026-12-04T20:07:01.250000+01:00 mx1 mxsane-milter[4711]: ",
	        "Dec  4 19:07:01 mx1 mxsane-policyd[9]: ",
	        "",
	};
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		snprintf(line, sizeof(line), "%s%s", forms[f], KV);
		size_t n = strlen(line),
		       mandatory = strlen(forms[f]) +
		                   strlen("verdict=null_mx action=reject role=sender");
		for (size_t k = 0; k <= n; k++) {
			char *cut = malloc(k ? k : 1);
			char *sc = malloc(PARSE_SCRATCH(k));
			assert_non_null(cut);
			assert_non_null(sc);
			memcpy(cut, line, k);
			struct rdec d;
			enum rline r = parse_line(cut, k, &d, sc, NOW);
			if (k < mandatory && k > 0)
				assert_int_not_equal(r, RL_DECISION);
			if (r == RL_DECISION)
				assert_int_equal(d.verdict, V_NULL_MX);
			free(cut);
			free(sc);
		}
	}
}

static void test_time_arguments(void **state)
{
	(void)state;
	int64_t t;
	assert_true(parse_time_arg("2026-12-04", &t));
	assert_int_equal(t, T0 - (19 * 3600 + 7 * 60 + 1) * 1000LL);
	assert_true(parse_time_arg("2026-12-04T19:07:01Z", &t));
	assert_int_equal(t, T0);
	assert_true(parse_time_arg("2026-12-04 20:07:01+01:00", &t));
	assert_int_equal(t, T0);
	assert_true(parse_time_arg("2026-12-04T19:07", &t));
	assert_int_equal(t, T0 - 1000);
	assert_false(parse_time_arg("2026-13-04", &t));
	assert_false(parse_time_arg("yesterday", &t));
	assert_false(parse_time_arg("2026-12-04T19:07:01Zjunk", &t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_prefix_form), cmocka_unit_test(test_json_forms),
	        cmocka_unit_test(test_values_and_marks),  cmocka_unit_test(test_other_and_bad),
	        cmocka_unit_test(test_every_cut),         cmocka_unit_test(test_time_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
