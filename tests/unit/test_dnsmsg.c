/*
 * test_dnsmsg.c - the DNS reply walker against hand-built replies: records and TTLs, CNAME
 * chains, negative TTLs (RFC 2308), rcodes, and hostile encodings (pointer loops, forward
 * pointers, overlong names, truncated records, wrong question).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dnsmsg.h"
#include "dnswire.h"

static void test_mx_records_and_ttl(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	header(&m, 0, 3, 0);
	question(&m, "Example.NET", DNS_T_MX);
	rr_mx(&m, "example.net", 3600, 10, "MX1.example.net");
	rr_mx(&m, "example.net", 600, 20, "mx2.example.net");
	rr_mx(&m, "other.net", 1, 5, "ignored.other.net"); /* not our owner */
	assert_int_equal(dns_parse_reply(m.b, m.n, "example.net.", DNS_T_MX, &r), DNSR_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.mx[0].host, "mx1.example.net");
	assert_int_equal(r.mx[0].pref, 10);
	assert_int_equal(r.mx[1].pref, 20);
	assert_true(r.has_ttl);
	assert_int_equal(r.ttl, 600);
	assert_int_equal(r.cnames, 0);
	dns_reply_clear(&r);
}

static void test_null_mx(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	header(&m, 0, 1, 0);
	question(&m, "example.net", DNS_T_MX);
	rr_mx(&m, "example.net", 300, 0, "");
	assert_int_equal(dns_parse_reply(m.b, m.n, "example.net", DNS_T_MX, &r), DNSR_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.mx[0].host, "");
	assert_int_equal(r.mx[0].pref, 0);
	dns_reply_clear(&r);
}

static void test_cname_chain_then_data(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	uint8_t ip[4] = {1, 2, 3, 4};
	header(&m, 0, 3, 0);
	question(&m, "a.example", DNS_T_A);
	/* out of order on purpose */
	rr_a(&m, "c.example", 900, ip);
	rr_cname(&m, "b.example", 100, "c.example");
	rr_cname(&m, "a.example", 500, "b.example");
	assert_int_equal(dns_parse_reply(m.b, m.n, "a.example", DNS_T_A, &r), DNSR_OK);
	assert_int_equal(r.cnames, 2);
	assert_string_equal(r.canon, "c.example");
	assert_int_equal(r.n, 1);
	assert_memory_equal(r.addr[0], ip, 4);
	assert_int_equal(r.ttl, 100);
	dns_reply_clear(&r);
}

static void test_cname_only_is_followed_by_caller(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	header(&m, 0, 1, 0);
	question(&m, "a.example", DNS_T_MX);
	rr_cname(&m, "a.example", 77, "elsewhere.test");
	assert_int_equal(dns_parse_reply(m.b, m.n, "a.example", DNS_T_MX, &r), DNSR_CNAME);
	assert_string_equal(r.canon, "elsewhere.test");
	assert_int_equal(r.ttl, 77);
	dns_reply_clear(&r);
}

static void test_cname_then_nodata_with_soa(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	header(&m, 0, 1, 1);
	question(&m, "a.example", DNS_T_MX);
	rr_cname(&m, "a.example", 500, "b.example");
	rr_soa(&m, "example", 600, 300);
	assert_int_equal(dns_parse_reply(m.b, m.n, "a.example", DNS_T_MX, &r), DNSR_NODATA);
	assert_int_equal(r.ttl, 300);
	dns_reply_clear(&r);
}

static void test_cname_loop_in_reply(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	header(&m, 0, 2, 0);
	question(&m, "a.example", DNS_T_A);
	rr_cname(&m, "a.example", 5, "b.example");
	rr_cname(&m, "b.example", 5, "a.example");
	assert_int_equal(dns_parse_reply(m.b, m.n, "a.example", DNS_T_A, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);
}

static void test_negative_ttl_rfc2308(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	/* NXDOMAIN: min(SOA TTL 120, MINIMUM 3600) = 120 */
	header(&m, 3, 0, 1);
	question(&m, "gone.example", DNS_T_MX);
	rr_soa(&m, "example", 120, 3600);
	assert_int_equal(dns_parse_reply(m.b, m.n, "gone.example", DNS_T_MX, &r), DNSR_NXDOMAIN);
	assert_true(r.has_ttl);
	assert_int_equal(r.ttl, 120);
	dns_reply_clear(&r);
	/* NODATA: min(600, 300) = 300 */
	header(&m, 0, 0, 1);
	question(&m, "there.example", DNS_T_AAAA);
	rr_soa(&m, "example", 600, 300);
	assert_int_equal(dns_parse_reply(m.b, m.n, "there.example", DNS_T_AAAA, &r), DNSR_NODATA);
	assert_int_equal(r.ttl, 300);
	dns_reply_clear(&r);
	/* no SOA, from an authoritative server: NODATA, not cacheable */
	header_flags(&m, 0, 0, 0, F_AA);
	question(&m, "there.example", DNS_T_AAAA);
	assert_int_equal(dns_parse_reply(m.b, m.n, "there.example", DNS_T_AAAA, &r), DNSR_NODATA);
	assert_false(r.has_ttl);
	dns_reply_clear(&r);
}

/* RFC 2308 2.2: an empty NOERROR answer proves NODATA only with the SOA (or from the
 * authoritative server itself); NS records without SOA are a referral, which proves nothing */
static void test_referral_is_no_negative_answer(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	unsigned flags[] = {0, F_RA};
	for (size_t i = 0; i < 2; i++) {
		/* a referral to the zone's servers from a server that does not recurse */
		header_flags(&m, 0, 0, 2, flags[i]);
		question(&m, "x.example", DNS_T_MX);
		rr_ns(&m, "example", "ns1.example");
		rr_ns(&m, "example", "ns2.example");
		assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r),
		                 DNSR_TEMPFAIL);
		assert_non_null(strstr(r.why, "referral"));
		dns_reply_clear(&r);
		/* an upward referral to the root */
		header_flags(&m, 0, 0, 1, flags[i]);
		question(&m, "x.example", DNS_T_A);
		rr_ns(&m, "", "a.root-servers.net");
		assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_A, &r),
		                 DNSR_TEMPFAIL);
		dns_reply_clear(&r);
	}
	/* an empty answer without SOA from a resolver: no proof */
	header(&m, 0, 0, 0);
	question(&m, "x.example", DNS_T_MX);
	assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r), DNSR_TEMPFAIL);
	dns_reply_clear(&r);
	/* NS and SOA (RFC 2308 NODATA type 1) from a resolver: NODATA */
	header(&m, 0, 0, 2);
	question(&m, "x.example", DNS_T_MX);
	rr_soa(&m, "example", 600, 300);
	rr_ns(&m, "example", "ns1.example");
	assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r), DNSR_NODATA);
	assert_int_equal(r.ttl, 300);
	dns_reply_clear(&r);
	/* an authoritative server without RA: its answers stand, positive and negative */
	header_flags(&m, 0, 0, 1, F_AA);
	question(&m, "x.example", DNS_T_MX);
	rr_soa(&m, "example", 600, 300);
	assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r), DNSR_NODATA);
	dns_reply_clear(&r);
	header_flags(&m, 3, 0, 1, F_AA);
	question(&m, "x.example", DNS_T_MX);
	rr_soa(&m, "example", 600, 300);
	assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r), DNSR_NXDOMAIN);
	dns_reply_clear(&r);
	header_flags(&m, 0, 1, 0, 0);
	question(&m, "x.example", DNS_T_MX);
	rr_mx(&m, "x.example", 300, 10, "mail.example");
	assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r), DNSR_OK);
	dns_reply_clear(&r);
	/* NXDOMAIN or NODATA from a server that neither recurses nor is authoritative */
	for (unsigned rc = 0; rc <= 3; rc += 3) {
		header_flags(&m, rc, 0, 1, 0);
		question(&m, "x.example", DNS_T_MX);
		rr_soa(&m, "example", 600, 300);
		assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r),
		                 DNSR_TEMPFAIL);
		dns_reply_clear(&r);
	}
}

/* RFC 2181 5.4.1: records for a name outside the question's CNAME chain answer nothing */
static void test_answer_for_another_name(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	const uint8_t ip[4] = {192, 0, 2, 1};
	header(&m, 0, 1, 1);
	question(&m, "victim.example", DNS_T_MX);
	rr_mx(&m, "other.example", 300, 10, "mail.other.example");
	rr_soa(&m, "example", 600, 300);
	assert_int_equal(dns_parse_reply(m.b, m.n, "victim.example", DNS_T_MX, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);
	header_flags(&m, 0, 1, 0, F_AA);
	question(&m, "h.example", DNS_T_A);
	rr_a(&m, "elsewhere.example", 300, ip);
	assert_int_equal(dns_parse_reply(m.b, m.n, "h.example", DNS_T_A, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);
	/* a record of another type at the asked name is related: NODATA with the SOA */
	header(&m, 0, 1, 1);
	question(&m, "h.example", DNS_T_MX);
	rr_a(&m, "h.example", 300, ip);
	rr_soa(&m, "example", 600, 300);
	assert_int_equal(dns_parse_reply(m.b, m.n, "h.example", DNS_T_MX, &r), DNSR_NODATA);
	dns_reply_clear(&r);
	/* extra unrelated records beside the answer are ignored */
	header(&m, 0, 2, 0);
	question(&m, "h.example", DNS_T_A);
	rr_a(&m, "junk.example", 300, ip);
	rr_a(&m, "h.example", 300, ip);
	assert_int_equal(dns_parse_reply(m.b, m.n, "h.example", DNS_T_A, &r), DNSR_OK);
	assert_int_equal(r.n, 1);
	dns_reply_clear(&r);
	/* the SOA of a zone that does not hold the name proves nothing about it */
	header(&m, 3, 0, 1);
	question(&m, "victim.example", DNS_T_MX);
	rr_soa(&m, "attacker.test", 600, 300);
	assert_int_equal(dns_parse_reply(m.b, m.n, "victim.example", DNS_T_MX, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);
	/* the root's SOA holds every name (NXDOMAIN for a TLD that does not exist) */
	header(&m, 3, 0, 1);
	question(&m, "x.invalid", DNS_T_MX);
	rr_soa(&m, "", 600, 300);
	assert_int_equal(dns_parse_reply(m.b, m.n, "x.invalid", DNS_T_MX, &r), DNSR_NXDOMAIN);
	dns_reply_clear(&r);
}

static void test_name_within(void **state)
{
	(void)state;
	assert_true(dns_name_within("a.example", "example"));
	assert_true(dns_name_within("example", "example"));
	assert_true(dns_name_within("example", ""));
	assert_false(dns_name_within("aexample", "example"));
	assert_false(dns_name_within("example", "a.example"));
	assert_false(dns_name_within("example.net", "example"));
}

static void test_rcodes_are_temporary(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	unsigned codes[] = {1, 2, 4, 5, 9};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		header(&m, codes[i], 0, 0);
		question(&m, "x.example", DNS_T_MX);
		assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r),
		                 DNSR_TEMPFAIL);
		assert_true(strlen(r.why) > 0);
		dns_reply_clear(&r);
	}
}

static void test_wrong_question(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	header(&m, 0, 0, 0);
	question(&m, "other.example", DNS_T_MX);
	assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);
	header(&m, 0, 0, 0);
	question(&m, "x.example", DNS_T_A);
	assert_int_equal(dns_parse_reply(m.b, m.n, "x.example", DNS_T_MX, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);
}

static void test_hostile_encodings(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;

	/* pointer to itself in the question */
	header(&m, 0, 0, 0);
	put8(&m, 0xc0);
	put8(&m, 12);
	put16(&m, DNS_T_MX);
	put16(&m, 1);
	assert_int_equal(dns_parse_reply(m.b, m.n, "x", DNS_T_MX, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);

	/* forward pointer */
	header(&m, 0, 0, 0);
	put8(&m, 0xc0);
	put8(&m, 200);
	assert_int_equal(dns_parse_reply(m.b, m.n, "x", DNS_T_MX, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);

	/* every truncation of a valid reply is rejected or parsed, never read past */
	header(&m, 0, 2, 1);
	question(&m, "example.net", DNS_T_MX);
	rr_mx(&m, "example.net", 3600, 10, "mx1.example.net");
	rr_mx(&m, "example.net", 600, 20, "mx2.example.net");
	rr_soa(&m, "example.net", 1, 1);
	for (size_t len = 0; len < m.n; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, m.b, len);
		enum dns_status st = dns_parse_reply(copy, len, "example.net", DNS_T_MX, &r);
		assert_int_equal(st, DNSR_MALFORMED);
		dns_reply_clear(&r);
		free(copy);
	}

	/* label with odd octets in an MX target: flagged, not fatal */
	header(&m, 0, 1, 0);
	question(&m, "example.net", DNS_T_MX);
	rr_mx(&m, "example.net", 60, 10, "bad\x01\xff.example.net");
	assert_int_equal(dns_parse_reply(m.b, m.n, "example.net", DNS_T_MX, &r), DNSR_OK);
	assert_true(r.mx[0].host_invalid);
	dns_reply_clear(&r);

	/* not a reply */
	header(&m, 0, 0, 0);
	m.b[2] = 0x01;
	question(&m, "x", DNS_T_MX);
	assert_int_equal(dns_parse_reply(m.b, m.n, "x", DNS_T_MX, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);

	/* address record with a wrong length */
	header(&m, 0, 1, 0);
	question(&m, "h.example", DNS_T_A);
	rr_head(&m, "h.example", DNS_T_A, 60);
	put16(&m, 3);
	put8(&m, 1);
	put8(&m, 2);
	put8(&m, 3);
	assert_int_equal(dns_parse_reply(m.b, m.n, "h.example", DNS_T_A, &r), DNSR_MALFORMED);
	dns_reply_clear(&r);

	/* TTL with the high bit set counts as 0 (RFC 2181 8) */
	uint8_t ip[4] = {5, 6, 7, 8};
	header(&m, 0, 1, 0);
	question(&m, "h.example", DNS_T_A);
	rr_a(&m, "h.example", 0x80000000u, ip);
	assert_int_equal(dns_parse_reply(m.b, m.n, "h.example", DNS_T_A, &r), DNSR_OK);
	assert_int_equal(r.ttl, 0);
	dns_reply_clear(&r);
}

static void test_many_records_bounded(void **state)
{
	(void)state;
	struct msg m;
	struct dns_reply r;
	uint8_t ip[4] = {9, 9, 9, 9};
	header(&m, 0, 300, 0);
	question(&m, "h.example", DNS_T_A);
	for (int i = 0; i < 300; i++)
		rr_a(&m, "h.example", 60, ip);
	assert_int_equal(dns_parse_reply(m.b, m.n, "h.example", DNS_T_A, &r), DNSR_OK);
	assert_int_equal(r.n, DNS_MAX_RECORDS);
	assert_int_equal(r.total, 300); /* the caller knows the set was cut */
	dns_reply_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mx_records_and_ttl),
	        cmocka_unit_test(test_null_mx),
	        cmocka_unit_test(test_cname_chain_then_data),
	        cmocka_unit_test(test_cname_only_is_followed_by_caller),
	        cmocka_unit_test(test_cname_then_nodata_with_soa),
	        cmocka_unit_test(test_cname_loop_in_reply),
	        cmocka_unit_test(test_negative_ttl_rfc2308),
	        cmocka_unit_test(test_referral_is_no_negative_answer),
	        cmocka_unit_test(test_answer_for_another_name),
	        cmocka_unit_test(test_name_within),
	        cmocka_unit_test(test_rcodes_are_temporary),
	        cmocka_unit_test(test_wrong_question),
	        cmocka_unit_test(test_hostile_encodings),
	        cmocka_unit_test(test_many_records_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
