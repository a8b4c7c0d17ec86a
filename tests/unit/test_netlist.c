/*
 * test_netlist.c - unit tests for core/netlist.c: cidr_parse, the built-in bogus network list
 * (every network's edges), IPv4-mapped addresses, textual address forms and domain lists.
 *
 * The expected bogus list is written out again here, independently of the table in
 * netlist.c, so that a change to either shows up as a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "netlist.h"

static const char *const expected_bogus[] = {
        "0.0.0.0/8",     "10.0.0.0/8",      "100.64.0.0/10",  "127.0.0.0/8",    "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24",    "192.0.2.0/24",   "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",    "240.0.0.0/4",

        "::/128",        "::1/128",         "64:ff9b:1::/48", "100::/64",       "2001::/32",
        "2001:2::/48",   "2001:10::/28",    "2001:20::/28",   "2001:db8::/32",  "3fff::/20",
        "5f00::/16",     "fc00::/7",        "fe80::/10",      "fec0::/10",      "ff00::/8",
};
#define N_EXPECTED (sizeof(expected_bogus) / sizeof(expected_bogus[0]))

static struct cidr parse_ok(const char *s)
{
	struct cidr c;
	char err[128] = "";

	if (!cidr_parse(s, &c, err, sizeof(err)))
		fail_msg("cidr_parse(\"%s\") failed: %s", s, err);
	return c;
}

static void expect_parse_error(const char *s, const char *reason)
{
	struct cidr c;
	char err[128] = "";

	if (cidr_parse(s, &c, err, sizeof(err)))
		fail_msg("cidr_parse(\"%s\") should fail", s);
	if (strcmp(err, reason) != 0)
		fail_msg("cidr_parse(\"%s\"): reason \"%s\", want \"%s\"", s, err, reason);
}

static unsigned addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static const char *fmt(int family, const uint8_t *a, char *buf)
{
	return inet_ntop(family, a, buf, INET6_ADDRSTRLEN);
}

/* a +/- 1 as a big-endian number; false on wrap-around. */
static bool addr_step(uint8_t *a, unsigned len, int dir)
{
	for (unsigned i = len; i-- > 0;) {
		if (dir > 0 && a[i]++ != 0xff)
			return true;
		if (dir < 0 && a[i]-- != 0x00)
			return true;
	}
	return false;
}

static bool in_cidr(const struct cidr *c, const uint8_t *a)
{
	for (unsigned bit = 0; bit < c->plen; bit++) {
		uint8_t m = (uint8_t)(0x80u >> (bit % 8));

		if ((c->addr[bit / 8] & m) != (a[bit / 8] & m))
			return false;
	}
	return true;
}

/* Is the address in any network of the expected list (computed without netlist.c)? */
static bool expected_contains(int family, const uint8_t *a)
{
	for (size_t i = 0; i < N_EXPECTED; i++) {
		struct cidr c = parse_ok(expected_bogus[i]);

		if (c.family == family && in_cidr(&c, a))
			return true;
	}
	return false;
}

static void expect_match(const struct netlist *l, int family, const uint8_t *a, bool want)
{
	char buf[INET6_ADDRSTRLEN];

	if (netlist_match(l, family, a) != want)
		fail_msg("%s: match %d, want %d", fmt(family, a, buf), !want, want);
}

static void expect_match_str(const struct netlist *l, const char *s, bool want)
{
	if (netlist_match_str(l, s) != want)
		fail_msg("\"%s\": match %d, want %d", s, !want, want);
}

/* ---- cidr_parse ---- */

static void test_cidr_parse_ok(void **state)
{
	struct cidr c;
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
	static const uint8_t one[16] = {[15] = 1};

	(void)state;
	c = parse_ok("192.0.2.0/24");
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.plen, 24);
	assert_memory_equal(c.addr, "\xc0\x00\x02\x00", 4);

	c = parse_ok("2001:db8::/32");
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.plen, 32);
	assert_memory_equal(c.addr, v6, 16);

	c = parse_ok("192.0.2.1");
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.plen, 32);
	c = parse_ok("::1");
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.plen, 128);
	assert_memory_equal(c.addr, one, 16);

	c = parse_ok("0.0.0.0/0");
	assert_int_equal(c.plen, 0);
	c = parse_ok("::/0");
	assert_int_equal(c.plen, 0);
	c = parse_ok("192.0.2.1/32");
	assert_int_equal(c.plen, 32);
	c = parse_ok("10.0.0.0/08");
	assert_int_equal(c.plen, 8);
	c = parse_ok("::ffff:10.0.0.0/104");
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.plen, 104);
	c = parse_ok("FE80::/10");
	assert_int_equal(c.plen, 10);
}

static void test_cidr_parse_errors(void **state)
{
	struct cidr c;
	char small[8];

	(void)state;
	expect_parse_error("192.0.2.1/24", "host bits set beyond /24");
	expect_parse_error("10.0.0.1/8", "host bits set beyond /8");
	expect_parse_error("192.0.2.128/24", "host bits set beyond /24");
	expect_parse_error("0.0.0.1/0", "host bits set beyond /0");
	expect_parse_error("2001:db8::1/32", "host bits set beyond /32");
	expect_parse_error("fe80::/8", "host bits set beyond /8");
	expect_parse_error("2001:db8::1/127", "host bits set beyond /127");
	expect_parse_error("10.0.0.0/33", "prefix too long");
	expect_parse_error("::/129", "prefix too long");
	expect_parse_error("10.0.0.0/999", "prefix too long");
	expect_parse_error("10.0.0.0/0008", "prefix too long");
	expect_parse_error("10.0.0.0/", "bad prefix length");
	expect_parse_error("10.0.0.0/abc", "bad prefix length");
	expect_parse_error("10.0.0.0/-1", "bad prefix length");
	expect_parse_error("10.0.0.0/+8", "bad prefix length");
	expect_parse_error("10.0.0.0/ 8", "bad prefix length");
	expect_parse_error("10.0.0.0/8 ", "bad prefix length");
	expect_parse_error("10.0.0.0/8/8", "bad prefix length");
	expect_parse_error("10.0.0.0/8x", "bad prefix length");
	expect_parse_error("/8", "bad address");
	expect_parse_error("garbage", "bad address");
	expect_parse_error("300.0.0.0/8", "bad address");
	expect_parse_error("10.0.0/8", "bad address");
	expect_parse_error(" 10.0.0.0/8", "bad address");
	expect_parse_error("10.0.0.0.0/8", "bad address");
	expect_parse_error("2001:db8:::/32", "bad address");
	expect_parse_error("fe80::1%eth0", "bad address");
	expect_parse_error("[2001:db8::]/32", "bad address");
	expect_parse_error("example.com/24", "bad address");
	expect_parse_error("0000:0000:0000:0000:0000:0000:0000:0000:0000/8", "bad address");
	expect_parse_error("", "empty network");

	assert_false(cidr_parse(NULL, &c, NULL, 0));
	assert_false(cidr_parse("10.0.0.0/8", NULL, NULL, 0));
	assert_false(cidr_parse("10.0.0.1/8", &c, NULL, 0));
	assert_false(cidr_parse("10.0.0.1/8", &c, small, sizeof(small)));
	assert_string_equal(small, "host bi"); /* truncated, terminated */
}

/* ---- the built-in list ---- */

/* The built-in list is exactly the expected one (same networks, same count). */
static void test_builtin_is_documented_list(void **state)
{
	struct netlist l = {0};

	(void)state;
	assert_true(netlist_add_builtin_bogus(&l));
	assert_int_equal(l.n, N_EXPECTED);
	for (size_t i = 0; i < N_EXPECTED; i++) {
		struct cidr c = parse_ok(expected_bogus[i]);
		bool found = false;

		for (size_t j = 0; j < l.n && !found; j++)
			found = l.v[j].family == c.family && l.v[j].plen == c.plen &&
			        memcmp(l.v[j].addr, c.addr, addr_len(c.family)) == 0;
		if (!found)
			fail_msg("%s missing from the built-in list", expected_bogus[i]);
	}
	netlist_free(&l);
}

/* First and last address of every network are in; the addresses just outside are out,
 * unless they belong to another listed network. */
static void test_builtin_edges(void **state)
{
	struct netlist l = {0};

	(void)state;
	assert_true(netlist_add_builtin_bogus(&l));
	for (size_t i = 0; i < N_EXPECTED; i++) {
		struct cidr c = parse_ok(expected_bogus[i]);
		unsigned len = addr_len(c.family);
		uint8_t first[16], last[16], out[16];

		memcpy(first, c.addr, 16);
		memcpy(last, c.addr, 16);
		for (unsigned bit = c.plen; bit < len * 8; bit++)
			last[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
		expect_match(&l, c.family, first, true);
		expect_match(&l, c.family, last, true);

		memcpy(out, first, 16);
		if (addr_step(out, len, -1))
			expect_match(&l, c.family, out, expected_contains(c.family, out));
		memcpy(out, last, 16);
		if (addr_step(out, len, +1))
			expect_match(&l, c.family, out, expected_contains(c.family, out));
	}
	netlist_free(&l);
}

/* Spot checks, including the ones the edge test cannot see. */
static void test_builtin_spot(void **state)
{
	struct netlist l = {0};
	static const char *const bogus[] = {
	        "255.255.255.255",
	        "127.0.0.1",
	        "0.0.0.0",
	        "10.1.2.3",
	        "172.31.255.255",
	        "192.168.1.1",
	        "100.127.0.1",
	        "169.254.169.254",
	        "198.19.255.255",
	        "224.0.0.251",
	        "::",
	        "::1",
	        "fe80::1",
	        "febf::1",
	        "fec0::1",
	        "fd00::1",
	        "fc00::1",
	        "ff02::1",
	        "2001:db8:1::1",
	        "2001::1",
	        "2001:2::1",
	        "2001:10::1",
	        "2001:2f:ffff::",
	        "3fff:fff::1",
	        "100::1",
	        "64:ff9b:1::1",
	        "5f00::1",
	};
	static const char *const good[] = {
	        "8.8.8.8",
	        "1.1.1.1",
	        "9.255.255.255",
	        "11.0.0.0",
	        "172.15.255.255",
	        "172.32.0.0",
	        "192.0.1.0",
	        "192.0.3.0",
	        "192.169.0.0",
	        "100.63.255.255",
	        "100.128.0.0",
	        "223.255.255.255",
	        "198.17.255.255",
	        "198.20.0.0",
	        "2001:4860:4860::8888",
	        "2a00:1450::1",
	        "2001:1::1",
	        "2001:1::2",
	        "2001:3::1",
	        "2001:4:112::1",
	        "2001:100::1",
	        "2001:1ff::1",
	        "2001:30::1",
	        "2002:c000:201::",
	        "64:ff9b::808:808",
	        "::2",
	        "3fff:1000::",
	        "fe00::1",
	        "2001:db9::1",
	        "2001:db7:ffff::",
	};

	(void)state;
	assert_true(netlist_add_builtin_bogus(&l));
	for (size_t i = 0; i < sizeof(bogus) / sizeof(bogus[0]); i++)
		expect_match_str(&l, bogus[i], true);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		expect_match_str(&l, good[i], false);
	netlist_free(&l);
}

static void test_ipv4_mapped(void **state)
{
	struct netlist l = {0}, v4 = {0}, any6 = {0}, mapped6 = {0};
	struct cidr c;
	uint8_t a[16];

	(void)state;
	assert_true(netlist_add_builtin_bogus(&l));
	expect_match_str(&l, "::ffff:127.0.0.1", true);
	expect_match_str(&l, "::ffff:10.9.8.7", true);
	expect_match_str(&l, "[::ffff:192.168.1.1]", true);
	expect_match_str(&l, "IPv6:::ffff:255.255.255.255", true);
	expect_match_str(&l, "::ffff:1.2.3.4", false);
	expect_match_str(&l, "::ffff:8.8.8.8", false);
	/* ::ffff:0:0/96 itself is not listed: ::ffff:0.0.0.1 is bogus through 0.0.0.0/8. */
	expect_match_str(&l, "::ffff:0.0.0.1", true);
	/* IPv4-compatible and NAT64 addresses are not IPv4-mapped. */
	expect_match_str(&l, "::127.0.0.1", false);
	expect_match_str(&l, "64:ff9b::127.0.0.1", false);
	assert_true(inet_pton(AF_INET6, "::ffff:127.0.0.1", a) == 1);
	expect_match(&l, AF_INET6, a, true);

	/* A list with only IPv4 entries judges mapped addresses by the IPv4 part. */
	c = parse_ok("198.51.100.0/24");
	assert_true(netlist_add(&v4, &c));
	expect_match_str(&v4, "::ffff:198.51.100.9", true);
	expect_match_str(&v4, "::ffff:198.51.101.9", false);
	expect_match_str(&v4, "::c633:6409", false); /* ::198.51.100.9, not mapped */
	expect_match_str(&v4, "2001:db8::c633:6409", false);

	/* IPv6 entries still see the whole address. */
	c = parse_ok("::/0");
	assert_true(netlist_add(&any6, &c));
	expect_match_str(&any6, "::ffff:1.2.3.4", true);
	expect_match_str(&any6, "1.2.3.4", false);
	c = parse_ok("::ffff:10.0.0.0/104");
	assert_true(netlist_add(&mapped6, &c));
	expect_match_str(&mapped6, "::ffff:10.1.1.1", true);
	expect_match_str(&mapped6, "::ffff:11.1.1.1", false);

	netlist_free(&l);
	netlist_free(&v4);
	netlist_free(&any6);
	netlist_free(&mapped6);
}

static void test_match_str_forms(void **state)
{
	struct netlist l = {0};
	char *huge = malloc(4000);

	(void)state;
	assert_non_null(huge);
	assert_true(netlist_add_builtin_bogus(&l));
	expect_match_str(&l, "192.0.2.1", true);
	expect_match_str(&l, "[192.0.2.1]", true);
	expect_match_str(&l, "2001:db8::1", true);
	expect_match_str(&l, "[2001:db8::1]", true);
	expect_match_str(&l, "IPv6:2001:db8::1", true);
	expect_match_str(&l, "[IPv6:2001:db8::1]", true);
	expect_match_str(&l, "ipv6:2001:DB8::1", true);
	expect_match_str(&l, "2001:0db8:0000:0000:0000:0000:0000:0001", true);
	/* dotted quads: the fast path and inet_pton agree at the edges */
	expect_match_str(&l, "0.0.0.0", true);
	expect_match_str(&l, "255.255.255.255", true);
	expect_match_str(&l, "10.255.0.9", true);
	expect_match_str(&l, "9.255.255.255", false);
	expect_match_str(&l, "11.0.0.0", false);
	expect_match_str(&l, "100.63.255.255", false);
	expect_match_str(&l, "100.64.0.0", true);

	/* Anything that does not parse never matches. */
	static const char *const junk[] = {
	        "",
	        "[",
	        "]",
	        "[]",
	        "[192.0.2.1",
	        "192.0.2.1]",
	        "IPv6:",
	        "[IPv6:]",
	        "IPv6:192.0.2.1",
	        "example.com",
	        "192.0.2.1/24",
	        "2001:db8::1%eth0",
	        " 192.0.2.1",
	        "192.0.2.1 ",
	        "192.0.2",
	        "192.0.2.1.",
	        "[[192.0.2.1]]",
	        "IPv6:[::1]",
	        "0xc0.0.2.1",
	        "::1::",
	        "010.0.0.1",
	        "10.0.0.01",
	        "256.0.0.1",
	        "10.0.0.256",
	        "10..0.1",
	        ".10.0.0.1",
	        "10.0.0.1.2",
	        "1000.0.0.1",
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		expect_match_str(&l, junk[i], false);
	memset(huge, '1', 3999);
	huge[3999] = '\0';
	expect_match_str(&l, huge, false);
	assert_false(netlist_match_str(&l, NULL));
	assert_false(netlist_match_str(NULL, "127.0.0.1"));
	assert_false(netlist_match(&l, AF_UNIX, "\x7f\0\0\1"));
	assert_false(netlist_match(NULL, AF_INET, "\x7f\0\0\1"));
	free(huge);
	netlist_free(&l);
}

static void test_netlist_build_and_free(void **state)
{
	struct netlist l = {0}, empty = {0};
	struct cidr c;
	char buf[32];

	(void)state;
	/* Empty lists match nothing; freeing is safe on empty lists, NULL and twice. */
	expect_match_str(&empty, "127.0.0.1", false);
	netlist_free(&empty);
	netlist_free(NULL);

	/* Many entries (grows past any initial size); the builtin list appends. */
	for (unsigned i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "11.%u.0.0/16", i);
		c = parse_ok(buf);
		assert_true(netlist_add(&l, &c));
	}
	assert_int_equal(l.n, 100);
	expect_match_str(&l, "11.99.255.255", true);
	expect_match_str(&l, "11.100.0.0", false);
	expect_match_str(&l, "127.0.0.1", false);
	assert_true(netlist_add_builtin_bogus(&l));
	assert_int_equal(l.n, 100 + N_EXPECTED);
	expect_match_str(&l, "11.0.0.1", true);
	expect_match_str(&l, "127.0.0.1", true);
	assert_false(netlist_add(&l, NULL));
	assert_false(netlist_add(NULL, &c));
	netlist_free(&l);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
	netlist_free(&l);

	/* 0.0.0.0/0 matches every IPv4 address and no IPv6 one. */
	c = parse_ok("0.0.0.0/0");
	assert_true(netlist_add(&l, &c));
	expect_match_str(&l, "203.0.114.1", true);
	expect_match_str(&l, "2a00::1", false);
	netlist_free(&l);

	/* Odd prefix lengths. */
	c = parse_ok("192.0.2.64/27");
	assert_true(netlist_add(&l, &c));
	expect_match_str(&l, "192.0.2.63", false);
	expect_match_str(&l, "192.0.2.64", true);
	expect_match_str(&l, "192.0.2.95", true);
	expect_match_str(&l, "192.0.2.96", false);
	c = parse_ok("2001:db8:8000::/33");
	assert_true(netlist_add(&l, &c));
	expect_match_str(&l, "2001:db8:7fff:ffff::", false);
	expect_match_str(&l, "2001:db8:8000::", true);
	expect_match_str(&l, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true);
	netlist_free(&l);
}

/* ---- domain lists ---- */

static void test_domlist(void **state)
{
	struct domlist l = {0}, empty = {0};

	(void)state;
	assert_false(domlist_match(&empty, "example.com"));
	domlist_free(&empty);
	domlist_free(NULL);

	assert_true(domlist_add(&l, "example.com"));
	assert_true(domlist_add(&l, ".example.net"));
	assert_int_equal(domlist_count(&l), 2);

	/* Exact entry: that name only. */
	assert_true(domlist_match(&l, "example.com"));
	assert_false(domlist_match(&l, "a.example.com"));
	assert_false(domlist_match(&l, "xexample.com"));
	assert_false(domlist_match(&l, "example.com.au"));
	assert_false(domlist_match(&l, "com"));

	/* Leading dot: every subdomain, not the name itself. */
	assert_false(domlist_match(&l, "example.net"));
	assert_true(domlist_match(&l, "a.example.net"));
	assert_true(domlist_match(&l, "a.b.c.example.net"));
	assert_false(domlist_match(&l, "badexample.net"));
	assert_false(domlist_match(&l, ".example.net.x"));
	assert_false(domlist_match(&l, "net"));

	assert_false(domlist_match(&l, ""));
	assert_false(domlist_match(&l, NULL));
	assert_false(domlist_match(NULL, "example.com"));

	/* Refused entries: empty, NULL, longer than a domain name. */
	char *longname = malloc(300);

	assert_non_null(longname);
	memset(longname, 'a', 299);
	longname[299] = '\0';
	assert_false(domlist_add(&l, ""));
	assert_false(domlist_add(&l, NULL));
	assert_false(domlist_add(&l, longname));
	assert_false(domlist_add(NULL, "x.example"));
	assert_int_equal(domlist_count(&l), 2);
	free(longname);

	/* The list copies its entries. */
	char entry[] = "copy.example";

	assert_true(domlist_add(&l, entry));
	entry[0] = 'X';
	assert_true(domlist_match(&l, "copy.example"));

	for (unsigned i = 0; i < 50; i++) {
		char buf[32];

		snprintf(buf, sizeof(buf), "d%u.example", i);
		assert_true(domlist_add(&l, buf));
	}
	assert_true(domlist_match(&l, "d49.example"));
	assert_false(domlist_match(&l, "d50.example"));
	domlist_free(&l);
	assert_null(l.t);
	assert_int_equal(domlist_count(&l), 0);
	domlist_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cidr_parse_ok),
	        cmocka_unit_test(test_cidr_parse_errors),
	        cmocka_unit_test(test_builtin_is_documented_list),
	        cmocka_unit_test(test_builtin_edges),
	        cmocka_unit_test(test_builtin_spot),
	        cmocka_unit_test(test_ipv4_mapped),
	        cmocka_unit_test(test_match_str_forms),
	        cmocka_unit_test(test_netlist_build_and_free),
	        cmocka_unit_test(test_domlist),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
