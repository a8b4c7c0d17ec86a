/*
 * test_netindex.c - unit tests for core/netindex.c through netlist_index: an indexed list
 * answers every address as the plain scan over the same list does (random networks of many
 * prefix lengths, both families, IPv4-mapped addresses), and adding to a list drops its
 * index instead of leaving it stale.
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

#include "netindex.h"
#include "netlist.h"

static unsigned seed = 4242;

static unsigned rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

/* A random network near 10.0.0.0/8 or 2001:db8::/32 with host bits cleared. */
static struct cidr random_net(bool v6)
{
	struct cidr c;

	memset(&c, 0, sizeof(c));
	c.family = v6 ? AF_INET6 : AF_INET;
	if (v6) {
		static const uint8_t lens[] = {0, 48, 56, 63, 64, 65, 96, 127, 128};
		c.addr[0] = 0x20;
		c.addr[1] = 0x01;
		c.addr[2] = 0x0d;
		c.addr[3] = 0xb8;
		for (int i = 4; i < 16; i++)
			c.addr[i] = (uint8_t)(i < 6 || i > 13 ? rnd() % 4 : 0);
		c.plen = lens[rnd() % sizeof(lens)];
		if (c.plen == 0)
			c.plen = 128; /* ::/0 would cover every query */
	} else {
		static const uint8_t lens[] = {8, 20, 22, 24, 25, 30, 31, 32, 32, 32};
		c.addr[0] = 10;
		c.addr[1] = (uint8_t)(rnd() % 4);
		c.addr[2] = (uint8_t)(rnd() % 8);
		c.addr[3] = (uint8_t)(rnd() % 256);
		c.plen = lens[rnd() % sizeof(lens)];
		if (c.plen == 8)
			c.plen = 32; /* 10.0.0.0/8 would cover every query */
	}
	unsigned max = v6 ? 128 : 32;
	for (unsigned bit = c.plen; bit < max; bit++)
		c.addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	return c;
}

static void test_index_agrees_with_scan(void **state)
{
	struct netlist scan = {0}, idx = {0};
	size_t hits = 0;

	(void)state;
	for (int i = 0; i < 3000; i++) {
		struct cidr c = random_net(rnd() % 3 == 0);
		assert_true(netlist_add(&scan, &c));
		assert_true(netlist_add(&idx, &c));
	}
	assert_true(netlist_index(&idx));
	assert_non_null(idx.idx);
	assert_null(scan.idx);
	for (int q = 0; q < 50000; q++) {
		uint8_t a[16];
		int fam;
		memset(a, 0, sizeof(a));
		switch (rnd() % 3) {
		case 0:
			fam = AF_INET;
			a[0] = 10;
			a[1] = (uint8_t)(rnd() % 5);
			a[2] = (uint8_t)(rnd() % 64);
			a[3] = (uint8_t)rnd();
			break;
		case 1: /* IPv4-mapped */
			fam = AF_INET6;
			a[10] = a[11] = 0xff;
			a[12] = 10;
			a[13] = (uint8_t)(rnd() % 5);
			a[14] = (uint8_t)(rnd() % 64);
			a[15] = (uint8_t)rnd();
			break;
		default:
			fam = AF_INET6;
			a[0] = 0x20;
			a[1] = 0x01;
			a[2] = 0x0d;
			a[3] = (uint8_t)(rnd() % 8 ? 0xb8 : 0xb9);
			for (int i = 4; i < 16; i++)
				a[i] = (uint8_t)(i < 6 || i > 13 ? rnd() % 6 : 0);
		}
		bool want = netlist_match(&scan, fam, a);
		assert_int_equal(netlist_match(&idx, fam, a), want);
		hits += want;
	}
	assert_true(hits > 1000 && hits < 49000); /* both answers were exercised */
	netlist_free(&scan);
	netlist_free(&idx);
	assert_null(idx.idx);
}

static void test_index_edges(void **state)
{
	struct netlist l = {0};
	struct cidr c;

	(void)state;
	assert_true(cidr_parse("192.0.2.0/24", &c, NULL, 0));
	assert_true(netlist_add(&l, &c));
	assert_true(cidr_parse("2001:db8::/127", &c, NULL, 0));
	assert_true(netlist_add(&l, &c));
	assert_true(cidr_parse("198.51.100.7", &c, NULL, 0));
	assert_true(netlist_add(&l, &c));
	assert_true(netlist_add(&l, &c)); /* duplicates are harmless */
	assert_true(netlist_index(&l));
	assert_true(netlist_match_str(&l, "192.0.2.0"));
	assert_true(netlist_match_str(&l, "192.0.2.255"));
	assert_false(netlist_match_str(&l, "192.0.3.0"));
	assert_false(netlist_match_str(&l, "192.0.1.255"));
	assert_true(netlist_match_str(&l, "::ffff:192.0.2.9"));
	assert_true(netlist_match_str(&l, "[IPv6:2001:db8::1]"));
	assert_false(netlist_match_str(&l, "2001:db8::2"));
	assert_true(netlist_match_str(&l, "198.51.100.7"));
	assert_false(netlist_match_str(&l, "198.51.100.8"));

	/* adding drops the index: the new entry is seen at once, by a scan */
	assert_true(cidr_parse("203.0.113.0/24", &c, NULL, 0));
	assert_true(netlist_add(&l, &c));
	assert_null(l.idx);
	assert_true(netlist_match_str(&l, "203.0.113.1"));
	assert_true(netlist_index(&l));
	assert_true(netlist_match_str(&l, "203.0.113.1"));
	netlist_free(&l);

	/* /0 covers the family, and only that family */
	assert_true(cidr_parse("0.0.0.0/0", &c, NULL, 0));
	assert_true(netlist_add(&l, &c));
	assert_true(netlist_index(&l));
	assert_true(netlist_match_str(&l, "8.8.8.8"));
	assert_false(netlist_match_str(&l, "2001:db8::1"));
	netlist_free(&l);

	/* an empty index matches nothing */
	assert_true(netlist_index(&l));
	assert_false(netlist_match_str(&l, "8.8.8.8"));
	netlist_free(&l);
	assert_false(netindex_match(NULL, AF_INET, "\x7f\0\0\1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_index_agrees_with_scan),
	        cmocka_unit_test(test_index_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
