/*
 * test_cache.c - record-set cache with a controlled clock: expiry, LRU eviction, replacement,
 * reference counting across eviction, record packing, and the engine's judgment memo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"

static struct rrset *mk_a(const char *name, uint8_t last, uint32_t ttl, uint64_t now)
{
	struct dns_reply r;
	uint8_t addr[1][16] = {{10, 0, 0, last}};
	memset(&r, 0, sizeof(r));
	r.status = DNSR_OK;
	r.n = 1;
	r.addr = addr;
	struct rrset *s = rrset_new(name, DNS_T_A, &r, NULL, ttl, now);
	assert_non_null(s);
	return s;
}

static void test_expiry_with_controlled_clock(void **state)
{
	(void)state;
	struct cache *c = cache_new(10);
	struct rrset *s = mk_a("h.example", 1, 2, 1000);
	cache_put(c, s, 1000);
	rrset_unref(s);

	struct rrset *g = cache_get(c, "h.example", DNS_T_A, 2999);
	assert_non_null(g);
	assert_int_equal(rrset_ttl_left(g, 2999), 1);
	rrset_unref(g);
	assert_null(cache_get(c, "h.example", DNS_T_A, 3000)); /* expired at exactly 2 s */
	assert_int_equal(cache_entries(c), 0);
	assert_null(cache_get(c, "h.example", DNS_T_AAAA, 1000)); /* other type */
	cache_free(c);
}

static void test_zero_ttl_not_stored(void **state)
{
	(void)state;
	struct cache *c = cache_new(10);
	struct rrset *s = mk_a("h.example", 1, 0, 1000);
	cache_put(c, s, 1000);
	assert_int_equal(cache_entries(c), 0);
	rrset_unref(s);
	cache_free(c);

	c = cache_new(0); /* caching disabled */
	s = mk_a("h.example", 1, 60, 1000);
	cache_put(c, s, 1000);
	assert_int_equal(cache_entries(c), 0);
	rrset_unref(s);
	cache_free(c);
}

static void test_lru_eviction(void **state)
{
	(void)state;
	struct cache *c = cache_new(3);
	const char *names[] = {"a.x", "b.x", "c.x", "d.x"};
	for (int i = 0; i < 3; i++) {
		struct rrset *s = mk_a(names[i], (uint8_t)i, 60, 0);
		cache_put(c, s, 0);
		rrset_unref(s);
	}
	/* touch a.x so b.x is the least recently used */
	rrset_unref(cache_get(c, "a.x", DNS_T_A, 1));
	struct rrset *s = mk_a("d.x", 4, 60, 1);
	cache_put(c, s, 1);
	rrset_unref(s);
	assert_int_equal(cache_entries(c), 3);
	assert_null(cache_get(c, "b.x", DNS_T_A, 2));
	struct rrset *g;
	assert_non_null(g = cache_get(c, "a.x", DNS_T_A, 2));
	rrset_unref(g);
	assert_non_null(g = cache_get(c, "c.x", DNS_T_A, 2));
	rrset_unref(g);
	assert_non_null(g = cache_get(c, "d.x", DNS_T_A, 2));
	rrset_unref(g);

	/* a spared entry is spared once: a.x, looked up once and not since, outlives b.x and
	 * c.x but goes next; the entries added meanwhile stay */
	c = (cache_free(c), cache_new(3));
	for (int i = 0; i < 3; i++) {
		s = mk_a(names[i], (uint8_t)i, 60, 0);
		cache_put(c, s, 0);
		rrset_unref(s);
	}
	rrset_unref(cache_get(c, "a.x", DNS_T_A, 1)); /* a.x spared at the next eviction */
	const char *more[] = {"d.x", "e.x", "f.x"};
	const char *gone[] = {"b.x", "c.x", "a.x"};
	for (int i = 0; i < 3; i++) {
		s = mk_a(more[i], 9, 60, 1);
		cache_put(c, s, 1);
		rrset_unref(s);
		assert_int_equal(cache_entries(c), 3);
		assert_null(g = cache_get(c, gone[i], DNS_T_A, 1));
	}
	for (int i = 0; i < 3; i++) {
		assert_non_null(g = cache_get(c, more[i], DNS_T_A, 2));
		rrset_unref(g);
	}

	cache_set_limit(c, 1);
	assert_int_equal(cache_entries(c), 1);
	cache_free(c);
}

static void test_replace_and_refcount(void **state)
{
	(void)state;
	struct cache *c = cache_new(2);
	struct rrset *old = mk_a("h.x", 1, 60, 0);
	cache_put(c, old, 0);
	/* a check still holds `old` while it is replaced and evicted */
	struct rrset *nu = mk_a("h.x", 2, 60, 0);
	cache_put(c, nu, 0);
	rrset_unref(nu);
	assert_int_equal(cache_entries(c), 1);
	assert_int_equal(rrset_addr(old, 0)[3], 1); /* still valid */
	rrset_unref(old);
	struct rrset *g = cache_get(c, "h.x", DNS_T_A, 1);
	assert_int_equal(rrset_addr(g, 0)[3], 2);
	cache_clear(c);
	assert_int_equal(rrset_addr(g, 0)[3], 2); /* outlives the cache entry */
	rrset_unref(g);
	assert_int_equal(cache_bytes(c), 0);
	cache_free(c);
}

static void test_mx_packing(void **state)
{
	(void)state;
	struct dns_mx mx[3] = {{10, "mx1.example", false}, {0, "", false}, {65535, "odd", true}};
	struct dns_reply r;
	memset(&r, 0, sizeof(r));
	r.status = DNSR_OK;
	r.n = 3;
	r.mx = mx;
	r.cnames = 1;
	strcpy(r.canon, "canon.example");
	struct rrset *s = rrset_new("alias.example", DNS_T_MX, &r, NULL, 60, 0);
	const char *cur = NULL;
	struct mx_rec m = {0};
	assert_int_equal(rrset_count(s), 3);
	/* in preference order */
	assert_true(rrset_mx_next(s, &cur, &m));
	assert_string_equal(m.host, "");
	assert_int_equal(m.pref, 0);
	assert_true(rrset_mx_next(s, &cur, &m));
	assert_string_equal(m.host, "mx1.example");
	assert_int_equal(m.pref, 10);
	assert_false(m.flags & MXF_INVALID);
	assert_true(rrset_mx_next(s, &cur, &m));
	assert_string_equal(m.host, "odd");
	assert_int_equal(m.pref, 65535);
	assert_true(m.flags & MXF_INVALID);
	assert_false(rrset_mx_next(s, &cur, &m));
	assert_true(rrset_is_alias(s));
	assert_string_equal(rrset_target(s), "canon.example");
	assert_string_equal(rrset_name(s), "alias.example");
	rrset_unref(s);

	s = rrset_new("fail.example", DNS_T_MX, NULL, "server failure", 30, 0);
	assert_int_equal(rrset_status(s), DNSR_TEMPFAIL);
	assert_string_equal(rrset_why(s), "server failure");
	assert_int_equal(rrset_count(s), 0);
	rrset_unref(s);
}

/* The largest set a reply can give: 256 MX records with 255-octet names, over 64 KiB in all.
 * It is kept whole (and says whether the reply held more), not refused as out of memory. */
static void test_mx_set_over_64k(void **state)
{
	(void)state;
	static struct dns_mx mx[DNS_MAX_RECORDS];
	struct dns_reply r;
	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i < DNS_MAX_RECORDS; i++) {
		char *h = mx[i].host;
		mx[i].pref = (uint16_t)i;
		/* labels of 63, 63, 63 and 61 octets: 253 characters, unique by the first */
		for (size_t o = 0; o < 253; o++)
			h[o] = (o % 64 == 63) ? '.' : 'a';
		h[253] = '\0';
		snprintf(h, 4, "%03zu", i);
		h[3] = 'a';
	}
	r.status = DNSR_OK;
	r.n = DNS_MAX_RECORDS;
	r.total = 300;
	r.mx = mx;
	struct rrset *s = rrset_new("big.example", DNS_T_MX, &r, NULL, 60, 0);
	assert_non_null(s);
	assert_true(rrset_size(s) > 65535);
	assert_int_equal(rrset_count(s), DNS_MAX_RECORDS);
	assert_true(rrset_cut(s));
	const char *cur = NULL;
	struct mx_rec m = {0};
	size_t n = 0;
	while (rrset_mx_next(s, &cur, &m)) {
		assert_int_equal(m.pref, n);
		assert_int_equal(m.hostlen, 253);
		n++;
	}
	assert_int_equal(n, DNS_MAX_RECORDS);
	rrset_unref(s);
	r.total = DNS_MAX_RECORDS;
	s = rrset_new("big.example", DNS_T_MX, &r, NULL, 60, 0);
	assert_false(rrset_cut(s));
	rrset_unref(s);
}

/* MX sets come sorted by preference, stable, with each exchange judged once: a repeat of a
 * more preferred exchange, an IP literal, odd octets. */
static void test_mx_order_and_flags(void **state)
{
	(void)state;
	struct dns_mx mx[] = {
	        {20, "b.example", false}, {10, "a.example", false}, {20, "c.example", false},
	        {30, "a.example", false}, {10, "192.0.2.1", false}, {5, "[2001:db8::1]", false},
	        {40, "we\\032ird", true}, {10, "a.example", false},
	};
	static const struct {
		uint16_t pref;
		const char *host;
		uint8_t flags;
	} want[] = {
	        {5, "[2001:db8::1]", MXF_IPLIT},
	        {10, "a.example", 0},
	        {10, "192.0.2.1", MXF_IPLIT},
	        {10, "a.example", MXF_DUP},
	        {20, "b.example", 0},
	        {20, "c.example", 0},
	        {30, "a.example", MXF_DUP},
	        {40, "we\\032ird", MXF_INVALID},
	};
	struct dns_reply r;
	memset(&r, 0, sizeof(r));
	r.status = DNSR_OK;
	r.n = sizeof(mx) / sizeof(mx[0]);
	r.mx = mx;
	struct rrset *s = rrset_new("d.example", DNS_T_MX, &r, NULL, 60, 0);
	assert_non_null(s);
	const char *cur = NULL;
	struct mx_rec m;
	size_t k = 0;
	while (rrset_mx_next(s, &cur, &m)) {
		assert_true(k < sizeof(want) / sizeof(want[0]));
		assert_int_equal(m.pref, want[k].pref);
		assert_string_equal(m.host, want[k].host);
		assert_int_equal(m.hostlen, strlen(want[k].host));
		assert_int_equal(m.flags, want[k].flags);
		k++;
	}
	assert_int_equal(k, sizeof(want) / sizeof(want[0]));
	assert_false(rrset_mx_next(s, &cur, &m)); /* stays at the end */
	rrset_unref(s);

	/* no records, and not an MX set: nothing to walk */
	r.n = 0;
	s = rrset_new("e.example", DNS_T_MX, &r, NULL, 60, 0);
	cur = NULL;
	assert_false(rrset_mx_next(s, &cur, &m));
	rrset_unref(s);
}

/* The judgment memo travels with the cached set, and cache_forget_judgments drops it from
 * every entry (a reload changed the bogus networks); the DNS data stays. */
static void test_judgment_memo(void **state)
{
	(void)state;
	struct cache *c = cache_new(10);
	struct rrset *a = mk_a("a.example", 1, 60, 0), *b = mk_a("b.example", 2, 60, 0);
	bool usable = true;
	cache_put(c, a, 0);
	cache_put(c, b, 0);
	assert_false(rrset_judgment(a, &usable)); /* not judged yet */
	rrset_set_judgment(a, false);
	rrset_set_judgment(b, true);
	struct rrset *g = cache_get(c, "a.example", DNS_T_A, 1);
	assert_true(rrset_judgment(g, &usable));
	assert_false(usable);
	rrset_unref(g);
	rrset_set_judgment(a, true); /* judged again: replaced */
	assert_true(rrset_judgment(a, &usable));
	assert_true(usable);
	assert_true(rrset_is_alias(a) == false && rrset_count(a) == 1); /* other flags intact */
	assert_int_equal(rrset_mx_memo(b), 0);
	rrset_set_mx_memo(b, 12345);
	assert_int_equal(rrset_mx_memo(b), 12345);
	assert_int_equal(rrset_expires(b), 60000);
	cache_forget_judgments(c);
	assert_int_equal(rrset_mx_memo(b), 0); /* the MX memo goes with the judgments */
	assert_false(rrset_judgment(a, &usable));
	assert_false(rrset_judgment(b, &usable));
	assert_int_equal(cache_entries(c), 2);
	assert_int_equal(rrset_addr(b, 0)[3], 2);
	cache_forget_judgments(NULL);
	rrset_unref(a);
	rrset_unref(b);
	cache_free(c);
}

/* The table against a plain model: random puts (new and replacing), lookups before and after
 * expiry (which drop), and two types per name, over 3,000 names with no eviction - every
 * insertion and removal of the open-addressing table, with its runs wrapping around. */
static void test_table_against_model(void **state)
{
	(void)state;
	enum { NAMES = 3000, OPS = 200000 };
	static uint64_t expires[NAMES][2]; /* 0: absent */
	static uint8_t value[NAMES][2];
	struct cache *c = cache_new(1000000);
	uint32_t r = 99;
	uint64_t now = 0;
	char name[64];
	for (int op = 0; op < OPS; op++) {
		r ^= r << 13, r ^= r >> 17, r ^= r << 5;
		int i = (int)(r % NAMES), t = (int)((r >> 12) & 1);
		uint16_t qtype = t ? DNS_T_AAAA : DNS_T_A;
		snprintf(name, sizeof(name), "n%d.example", i);
		if (op % 1000 == 0)
			now += 1000; /* one second */
		if ((r >> 20) % 3 == 0) {
			struct dns_reply rep;
			uint8_t addr[1][16] = {{(uint8_t)op}};
			memset(&rep, 0, sizeof(rep));
			rep.status = DNSR_OK;
			rep.n = 1;
			rep.addr = addr;
			uint32_t ttl = 1 + (r >> 24) % 60;
			struct rrset *sx = rrset_new(name, qtype, &rep, NULL, ttl, now);
			cache_put(c, sx, now);
			rrset_unref(sx);
			expires[i][t] = now + ttl * 1000;
			value[i][t] = (uint8_t)op;
		} else {
			struct rrset *g = cache_get(c, name, qtype, now);
			bool live = expires[i][t] > now;
			if (live != (g != NULL))
				fail_msg("op %d: %s type %u: cache says %d, model %d", op, name,
				         qtype, g != NULL, live);
			if (g) {
				assert_int_equal(rrset_addr(g, 0)[0], value[i][t]);
				assert_string_equal(rrset_name(g), name);
				rrset_unref(g);
			}
			if (!live)
				expires[i][t] = 0;
		}
	}
	cache_free(c);
}

static void test_many_entries(void **state)
{
	(void)state;
	struct cache *c = cache_new(5000);
	char name[64];
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "host%d.example", i);
		struct rrset *s = mk_a(name, (uint8_t)i, 60, 0);
		cache_put(c, s, 0);
		rrset_unref(s);
	}
	assert_int_equal(cache_entries(c), 5000);
	for (int i = 15000; i < 20000; i++) {
		snprintf(name, sizeof(name), "host%d.example", i);
		struct rrset *g = cache_get(c, name, DNS_T_A, 1);
		assert_non_null(g);
		assert_int_equal(rrset_addr(g, 0)[3], (uint8_t)i);
		rrset_unref(g);
	}
	snprintf(name, sizeof(name), "host%d.example", 14999);
	assert_null(cache_get(c, name, DNS_T_A, 1));
	cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_expiry_with_controlled_clock),
	        cmocka_unit_test(test_zero_ttl_not_stored),
	        cmocka_unit_test(test_lru_eviction),
	        cmocka_unit_test(test_replace_and_refcount),
	        cmocka_unit_test(test_mx_packing),
	        cmocka_unit_test(test_mx_order_and_flags),
	        cmocka_unit_test(test_mx_set_over_64k),
	        cmocka_unit_test(test_judgment_memo),
	        cmocka_unit_test(test_table_against_model),
	        cmocka_unit_test(test_many_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
