/*
 * test_domtab.c - unit tests for core/domtab.c: exact and suffix entries, the most specific
 * entry wins, values, duplicates, case, the longest names, and a large table checked against
 * a plain scan written out here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "domtab.h"

static void test_exact_and_suffix(void **state)
{
	struct domtab *t = domtab_new();
	uint32_t v = 99, old = 0;

	(void)state;
	assert_non_null(t);
	assert_false(domtab_lookup(t, "example.com", &v));
	assert_int_equal(domtab_add(t, "example.com", 1, NULL), DOMTAB_ADDED);
	assert_int_equal(domtab_add(t, ".example.com", 2, NULL), DOMTAB_ADDED);
	assert_int_equal(domtab_add(t, ".b.example.com", 3, NULL), DOMTAB_ADDED);
	assert_int_equal(domtab_add(t, "x.b.example.com", 4, NULL), DOMTAB_ADDED);
	assert_int_equal(domtab_count(t), 4);

	assert_true(domtab_lookup(t, "example.com", &v));
	assert_int_equal(v, 1);
	assert_true(domtab_lookup(t, "a.example.com", &v));
	assert_int_equal(v, 2);
	/* b.example.com is not below .b.example.com: the parent's suffix entry covers it */
	assert_true(domtab_lookup(t, "b.example.com", &v));
	assert_int_equal(v, 2);
	assert_true(domtab_lookup(t, "y.b.example.com", &v));
	assert_int_equal(v, 3);
	assert_true(domtab_lookup(t, "z.y.b.example.com", &v));
	assert_int_equal(v, 3);
	/* the exact entry beats every suffix entry */
	assert_true(domtab_lookup(t, "x.b.example.com", &v));
	assert_int_equal(v, 4);
	/* but does not cover its subdomains */
	assert_true(domtab_lookup(t, "w.x.b.example.com", &v));
	assert_int_equal(v, 3);

	assert_false(domtab_lookup(t, "com", &v));
	assert_false(domtab_lookup(t, "badexample.com", &v));
	assert_false(domtab_lookup(t, "example.com.au", &v));
	assert_false(domtab_lookup(t, "", &v));
	assert_false(domtab_lookup(t, NULL, &v));
	assert_false(domtab_lookup(NULL, "example.com", &v));
	assert_true(domtab_lookup(t, "a.example.com", NULL));

	/* case does not matter, on either side */
	assert_int_equal(domtab_add(t, "Mixed.Example", 5, NULL), DOMTAB_ADDED);
	assert_true(domtab_lookup(t, "MIXED.example", &v));
	assert_int_equal(v, 5);
	assert_true(domtab_lookup(t, "A.EXAMPLE.COM", &v));
	assert_int_equal(v, 2);

	/* a repeated entry keeps the first value and says which */
	assert_int_equal(domtab_add(t, "EXAMPLE.com", 7, &old), DOMTAB_EXISTS);
	assert_int_equal(old, 1);
	assert_true(domtab_lookup(t, "example.com", &v));
	assert_int_equal(v, 1);
	assert_int_equal(domtab_count(t), 5);

	assert_int_equal(domtab_add(t, "", 0, NULL), DOMTAB_INVALID);
	assert_int_equal(domtab_add(t, ".", 0, NULL), DOMTAB_INVALID);
	assert_int_equal(domtab_add(t, NULL, 0, NULL), DOMTAB_INVALID);
	assert_int_equal(domtab_add(NULL, "a.example", 0, NULL), DOMTAB_INVALID);
	assert_true(domtab_bytes(t) > 0);
	domtab_free(t);
	domtab_free(NULL);
}

/* 127 one-octet labels: the deepest name there is; a suffix entry at the top still found. */
static void test_deep_names(void **state)
{
	struct domtab *t = domtab_new();
	char name[300], toolong[300];
	uint32_t v = 0;
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 126; i++) {
		name[n++] = 'a';
		name[n++] = '.';
	}
	name[n++] = 'z';
	name[n] = '\0';
	assert_int_equal(strlen(name), 253);
	assert_int_equal(domtab_add(t, ".z", 8, NULL), DOMTAB_ADDED);
	assert_true(domtab_lookup(t, name, &v));
	assert_int_equal(v, 8);
	assert_int_equal(domtab_add(t, name + 2, 9, NULL), DOMTAB_ADDED); /* a.a....z */
	assert_true(domtab_lookup(t, name + 2, &v));
	assert_int_equal(v, 9);
	assert_true(domtab_lookup(t, name, &v));
	assert_int_equal(v, 8);

	memset(toolong, 'a', 255);
	toolong[255] = '\0';
	assert_int_equal(domtab_add(t, toolong, 0, NULL), DOMTAB_INVALID);
	assert_false(domtab_lookup(t, toolong, &v));
	toolong[254] = '\0';
	assert_int_equal(domtab_add(t, toolong, 0, NULL), DOMTAB_ADDED);
	domtab_free(t);
}

/* The most specific covering entry by a plain scan over the entries. */
static bool scan(char **entries, uint32_t *values, size_t n, const char *d, uint32_t *out)
{
	size_t dl = strlen(d), best = 0;
	bool found = false;

	for (size_t i = 0; i < n; i++) {
		const char *e = entries[i];
		size_t el = strlen(e);
		if (e[0] != '.' && strcmp(e, d) == 0) {
			*out = values[i];
			return true;
		}
		if (e[0] == '.' && dl > el && strcmp(d + dl - el, e) == 0 && el > best) {
			best = el;
			*out = values[i];
			found = true;
		}
	}
	return found;
}

static void test_against_scan(void **state)
{
	enum { N = 8000, Q = 8000 };
	struct domtab *t = domtab_new();
	char **e = calloc(N, sizeof(*e));
	uint32_t *val = calloc(N, sizeof(*val));
	unsigned seed = 12345;
	size_t hits = 0;

	(void)state;
	assert_non_null(e);
	for (size_t i = 0; i < N; i++) {
		char buf[64];
		seed = seed * 1103515245u + 12345u;
		/* few distinct names, so that entries nest and collide */
		snprintf(buf, sizeof(buf), "%s%u.%u.example", (seed >> 16) % 3 == 0 ? "." : "",
		         (seed >> 4) % 50, (seed >> 10) % 40);
		e[i] = strdup(buf);
		val[i] = (uint32_t)i;
		if (domtab_add(t, buf, (uint32_t)i, NULL) == DOMTAB_EXISTS)
			e[i][0] = '\0'; /* the first one is the one kept */
	}
	for (size_t q = 0; q < Q; q++) {
		char d[64];
		uint32_t got = 0, want = 0;
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 20) % 2)
			snprintf(d, sizeof(d), "h%u.%u.%u.example", (seed >> 3) % 4,
			         (seed >> 4) % 50, (seed >> 10) % 40);
		else
			snprintf(d, sizeof(d), "%u.%u.example", (seed >> 4) % 60,
			         (seed >> 10) % 40);
		bool a = domtab_lookup(t, d, &got), b = scan(e, val, N, d, &want);
		assert_int_equal(a, b);
		if (a) {
			assert_int_equal(got, want);
			hits++;
		}
	}
	assert_true(hits > Q / 20); /* the queries did meet the entries */
	for (size_t i = 0; i < N; i++)
		free(e[i]);
	free(e);
	free(val);
	domtab_free(t);
}

static void test_domlist(void **state)
{
	struct domlist l = {0};

	(void)state;
	assert_false(domlist_match(&l, "example.com"));
	assert_int_equal(domlist_count(&l), 0);
	assert_true(domlist_add(&l, ".example.com"));
	assert_true(domlist_add(&l, ".example.com")); /* twice: not an error */
	assert_int_equal(domlist_count(&l), 1);
	assert_true(domlist_match(&l, "mx.example.com"));
	assert_false(domlist_add(&l, ""));
	domlist_free(&l);
	assert_false(domlist_match(&l, "mx.example.com"));
	domlist_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_exact_and_suffix),
	        cmocka_unit_test(test_deep_names),
	        cmocka_unit_test(test_against_scan),
	        cmocka_unit_test(test_domlist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
