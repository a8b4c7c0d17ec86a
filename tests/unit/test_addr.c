/*
 * test_addr.c - unit tests for core/addr.c: RFC 5321 address forms, hostile input, domain
 * normalisation (length limits, IDN) and the IP-literal detector used for MX targets.
 *
 * Every input is parsed from an exactly-sized heap copy without a terminating NUL, so a read
 * past len shows up under ASan and valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"

static const char *kind_name(enum addr_kind k)
{
	switch (k) {
	case ADDR_DOMAIN: return "DOMAIN";
	case ADDR_NULL: return "NULL";
	case ADDR_LITERAL: return "LITERAL";
	case ADDR_NODOMAIN: return "NODOMAIN";
	case ADDR_INVALID: return "INVALID";
	}
	return "?";
}

/* Parse s[0..len-1] from an exact-size, unterminated heap copy. */
static bool parse_n(const char *s, size_t len, struct addr_parsed *out)
{
	char *copy = malloc(len > 0 ? len : 1);
	bool ok;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, s, len);
	ok = addr_parse(copy, len, out);
	free(copy);
	return ok;
}

static void check_kind_n(const char *s, size_t len, enum addr_kind want, struct addr_parsed *out)
{
	bool ok = parse_n(s, len, out);

	if (out->kind != want)
		fail_msg("\"%.*s\": got %s (%s), want %s", (int)len, s, kind_name(out->kind),
		         out->reason, kind_name(want));
	if (ok != (want != ADDR_INVALID))
		fail_msg("\"%.*s\": return value %d does not match kind", (int)len, s, ok);
	if (want != ADDR_INVALID && out->reason[0] != '\0')
		fail_msg("\"%.*s\": reason set for a valid address: %s", (int)len, s, out->reason);
}

static void expect_domain(const char *s, const char *domain)
{
	struct addr_parsed a;

	check_kind_n(s, strlen(s), ADDR_DOMAIN, &a);
	if (strcmp(a.domain, domain) != 0)
		fail_msg("\"%s\": domain \"%s\", want \"%s\"", s, a.domain, domain);
	assert_string_equal(a.literal, "");
}

static void expect_kind(const char *s, enum addr_kind kind)
{
	struct addr_parsed a;

	check_kind_n(s, strlen(s), kind, &a);
	if (kind != ADDR_DOMAIN)
		assert_string_equal(a.domain, "");
}

static void expect_literal(const char *s, const char *literal)
{
	struct addr_parsed a;

	check_kind_n(s, strlen(s), ADDR_LITERAL, &a);
	if (strcmp(a.literal, literal) != 0)
		fail_msg("\"%s\": literal \"%s\", want \"%s\"", s, a.literal, literal);
	assert_string_equal(a.domain, "");
}

/* reason == NULL: any reason, but there must be one. */
static void expect_invalid_n(const char *s, size_t len, const char *reason)
{
	struct addr_parsed a;

	check_kind_n(s, len, ADDR_INVALID, &a);
	if (a.reason[0] == '\0')
		fail_msg("\"%.*s\": invalid without a reason", (int)len, s);
	if (reason != NULL && strcmp(a.reason, reason) != 0)
		fail_msg("\"%.*s\": reason \"%s\", want \"%s\"", (int)len, s, a.reason, reason);
	assert_string_equal(a.domain, "");
	assert_string_equal(a.literal, "");
}

static void expect_invalid(const char *s, const char *reason)
{
	expect_invalid_n(s, strlen(s), reason);
}

/* A string of n copies of c. */
static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A domain of exactly total octets made of 63-octet labels ("aaa...a.bbb...b..."). */
static char *long_domain(size_t total)
{
	char *s = malloc(total + 1);

	assert_non_null(s);
	for (size_t i = 0; i < total; i++)
		s[i] = (i % 64 == 63) ? '.' : (char)('a' + (i / 64) % 26);
	if (total > 0 && s[total - 1] == '.')
		s[total - 1] = 'z';
	s[total] = '\0';
	return s;
}

/* ---- the address forms ---- */

static void test_null_path(void **state)
{
	struct addr_parsed a;

	(void)state;
	expect_kind("", ADDR_NULL);
	expect_kind("<>", ADDR_NULL);
	assert_true(addr_parse(NULL, 0, &a));
	assert_int_equal(a.kind, ADDR_NULL);
	assert_false(addr_parse(NULL, 3, &a));
	assert_int_equal(a.kind, ADDR_INVALID);
	assert_false(addr_parse("a@b", 3, NULL));
}

static void test_nodomain(void **state)
{
	(void)state;
	expect_kind("postmaster", ADDR_NODOMAIN);
	expect_kind("<postmaster>", ADDR_NODOMAIN);
	expect_kind("<Postmaster>", ADDR_NODOMAIN);
	expect_kind("\"a@b\"", ADDR_NODOMAIN); /* the only @ is quoted */
	expect_kind("<@a,@b:postmaster>", ADDR_NODOMAIN);
}

static void test_plain(void **state)
{
	(void)state;
	expect_domain("user@example.com", "example.com");
	expect_domain("<user@example.com>", "example.com");
	expect_domain("u@x.y", "x.y");
	expect_domain("user+tag@sub.example.org", "sub.example.org");
	expect_domain("!#$%&'*+-/=?^_`{|}~@example.com", "example.com");
	expect_domain("1@2.example", "2.example");
}

static void test_case_and_trailing_dot(void **state)
{
	(void)state;
	expect_domain("User@EXAMPLE.Com", "example.com");
	expect_domain("user@example.com.", "example.com");
	expect_domain("<USER@Example.COM.>", "example.com");
	expect_invalid("user@example.com..", "empty label in domain");
	expect_invalid("user@.", "empty domain");
}

static void test_source_route(void **state)
{
	(void)state;
	expect_domain("<@a,@b:user@dom.example>", "dom.example");
	expect_domain("<@relay.example:user@dom.example>", "dom.example");
	expect_domain("@a:user@dom.example", "dom.example"); /* without brackets too */
	expect_domain("<@[192.0.2.1]:user@dom.example>", "dom.example");
	expect_domain("<@[IPv6:2001:db8::1],@b.example:user@dom.example>", "dom.example");
	expect_domain("<@a:\"x@y\"@dom.example>", "dom.example");
	expect_literal("<@a:user@[192.0.2.7]>", "[192.0.2.7]");
	expect_invalid("<@a,b:user@dom.example>", "bad source route");
	expect_invalid("<@:user@dom.example>", "bad source route");
	expect_invalid("<@a,@:user@dom.example>", "bad source route");
	expect_invalid("<@a,,@b:user@dom.example>", "bad source route");
	expect_invalid("<@[192.0.2.1]x:user@dom.example>", "bad source route");
	expect_invalid("<@a@b:user@dom.example>", "bad source route");
	expect_invalid("@a\"b:c\"@dom.example", "bad source route");
	expect_invalid("<@a:>", "empty mailbox after source route");
	expect_invalid("<@a,@b:>", "empty mailbox after source route");
	/* White space hidden in a hop is still white space. */
	expect_invalid("<@a b:user@dom.example>", "white space in address");
}

static void test_quoted_local_part(void **state)
{
	(void)state;
	expect_domain("\"a b\"@example.com", "example.com");
	expect_domain("\"a@b\"@example.com", "example.com");
	expect_domain("<\"a@b\"@Example.com>", "example.com");
	expect_domain("\"a\\\"@b\"@example.com", "example.com"); /* escaped quote */
	expect_domain("\"a\\\\\"@example.com", "example.com");   /* escaped backslash */
	expect_domain("\"\"@example.com", "example.com");
	expect_domain("\"<>\"@example.com", "example.com");
	expect_domain("\"a@b@c\"@d.example", "d.example");
	expect_domain("a.\"b c\".d@example.com", "example.com"); /* RFC 822 obs-local-part */
	expect_invalid("\"abc@example.com", "unbalanced quote");
	expect_invalid("\"abc\\\"@example.com", "unbalanced quote");
	expect_invalid("\"abc\\", "unbalanced quote");
	expect_invalid("abc\"@example.com", "unbalanced quote");
	expect_invalid("\"a\tb\"@example.com", "control character in address");
	expect_invalid("\"a\\\rb\"@example.com", "control character in address");
}

static void test_lenient_local_part(void **state)
{
	char buf[600];
	char *local = repeat('x', 500);

	(void)state;
	expect_domain("a..b@example.com", "example.com");
	expect_domain(".a@example.com", "example.com");
	expect_domain("a.@example.com", "example.com");
	expect_domain("j\xc3\xb6ran@example.com", "example.com"); /* SMTPUTF8 local part */
	expect_domain("a@b@example.com", "example.com");          /* last unquoted @ */
	/* Local part over 64 octets: accepted. */
	snprintf(buf, sizeof(buf), "%s@example.com", local);
	expect_domain(buf, "example.com");
	free(local);
}

static void test_literal(void **state)
{
	(void)state;
	expect_literal("user@[192.0.2.1]", "[192.0.2.1]");
	expect_literal("<user@[192.0.2.1]>", "[192.0.2.1]");
	expect_literal("user@[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]");
	expect_literal("user@[ipv6:2001:DB8::1]", "[ipv6:2001:DB8::1]");
	expect_literal("user@[IPv6:::ffff:192.0.2.1]", "[IPv6:::ffff:192.0.2.1]");
	expect_literal("user@[IPv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]",
	               "[IPv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]");
	expect_literal("\"a@[1.2.3.4]\"@[192.0.2.1]", "[192.0.2.1]");
}

static void test_literal_bad(void **state)
{
	(void)state;
	expect_invalid("user@[192.0.2.256]", "bad address literal");
	expect_invalid("user@[192.0.2]", "bad address literal");
	expect_invalid("user@[01.2.3.4]", "bad address literal");
	expect_invalid("user@[2001:db8::1]", "bad address literal"); /* needs the IPv6: tag */
	expect_invalid("user@[IPv6:192.0.2.1]", "bad address literal");
	expect_invalid("user@[IPv6:zz::1]", "bad address literal");
	expect_invalid("user@[IPv6:]", "bad address literal");
	expect_invalid("user@[x-tag:stuff]", "bad address literal");
	expect_invalid("user@[]", "bad address literal");
	expect_invalid("user@[ 192.0.2.1]", "white space in address");
	expect_invalid("user@[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:1]",
	               "bad address literal");
	expect_invalid("user@[192.0.2.1", "unbalanced square bracket");
	expect_invalid("user@[192.0.2.1]]", "unbalanced square bracket");
	expect_invalid("user@[[192.0.2.1]", "unbalanced square bracket");
	expect_invalid("user@[192.0.2.1].", "unbalanced square bracket");
	expect_invalid("user@192.0.2.1]", "invalid character in domain");
}

/* ---- hostile input ---- */

static void test_nul_bytes(void **state)
{
	(void)state;
	expect_invalid_n("a\0b@example.com", 15, "NUL byte in address");
	expect_invalid_n("user@example.com\0", 17, "NUL byte in address");
	expect_invalid_n("\0", 1, "NUL byte in address");
	expect_invalid_n("<\0>", 3, "NUL byte in address");
	expect_invalid_n("\"\0\"@example.com", 15, "NUL byte in address");
}

static void test_length_bounds(void **state)
{
	char *big = repeat('a', 2000);
	char *s = malloc(ADDR_MAX + 2);
	struct addr_parsed a;

	(void)state;
	big[1000] = '@';
	expect_invalid_n(big, 2000, "address too long");

	/* ADDR_MAX octets exactly is fine (the local part carries the bulk), one more is not. */
	assert_non_null(s);
	memset(s, 'l', ADDR_MAX + 1);
	memcpy(s + ADDR_MAX - 12, "@example.com", 12);
	check_kind_n(s, ADDR_MAX, ADDR_DOMAIN, &a);
	assert_string_equal(a.domain, "example.com");
	memset(s, 'l', ADDR_MAX + 1);
	memcpy(s + ADDR_MAX + 1 - 12, "@example.com", 12);
	expect_invalid_n(s, ADDR_MAX + 1, "address too long");
	free(s);
	free(big);
}

static void test_angle_brackets(void **state)
{
	(void)state;
	expect_invalid("<", "unbalanced angle bracket");
	expect_invalid(">", "unbalanced angle bracket");
	expect_invalid("<a@example.com", "unbalanced angle bracket");
	expect_invalid("a@example.com>", "unbalanced angle bracket");
	expect_invalid("<<a@example.com>>", "unbalanced angle bracket");
	expect_invalid("<a@exa<mple.com>", "unbalanced angle bracket");
	expect_invalid("a<b@example.com", "unbalanced angle bracket");
	expect_invalid("<>>", "unbalanced angle bracket");
}

static void test_missing_parts(void **state)
{
	(void)state;
	expect_invalid("@", "empty local part");
	expect_invalid("<@>", "empty local part");
	expect_invalid("a@", "empty domain");
	expect_invalid("<a@>", "empty domain");
	expect_invalid("@b", "empty local part");
	expect_invalid("@b.example", "empty local part");
	expect_invalid("@[IPv6:2001:db8::1]", "empty local part");
	expect_invalid("\"a\"@", "empty domain");
}

static void test_whitespace_and_controls(void **state)
{
	(void)state;
	expect_invalid("a b@example.com", "white space in address");
	expect_invalid(" a@example.com", "white space in address");
	expect_invalid("a@example.com ", "white space in address");
	expect_invalid("< a@example.com>", "white space in address");
	expect_invalid("a@example.com SIZE=100", "white space in address");
	expect_invalid("a@exa mple.com", "white space in address");
	expect_invalid("a\t@example.com", "control character in address");
	expect_invalid("a@example.com\r\n", "control character in address");
	expect_invalid("a@exam\x7fple.com", "control character in address");
	expect_invalid("a@\x1b[31mexample.com", "control character in address");
}

/* The parser looks at s[0..len-1] only: text beyond len does not matter. */
static void test_len_is_respected(void **state)
{
	struct addr_parsed a;
	const char *s = "user@example.comXYZ garbage \"<";

	(void)state;
	assert_true(addr_parse(s, 16, &a));
	assert_int_equal(a.kind, ADDR_DOMAIN);
	assert_string_equal(a.domain, "example.com");
	assert_true(addr_parse(s, 4, &a));
	assert_int_equal(a.kind, ADDR_NODOMAIN);
	assert_true(addr_parse(s, 0, &a));
	assert_int_equal(a.kind, ADDR_NULL);
}

/* ---- domain rules ---- */

static void test_domain_labels(void **state)
{
	char buf[400];
	char *l63 = repeat('a', 63), *l64 = repeat('a', 64);

	(void)state;
	snprintf(buf, sizeof(buf), "u@%s.example", l63);
	expect_domain(buf, buf + 2);
	snprintf(buf, sizeof(buf), "u@%s.example", l64);
	expect_invalid(buf, "label longer than 63 octets");
	snprintf(buf, sizeof(buf), "u@example.%s", l64);
	expect_invalid(buf, "label longer than 63 octets");
	free(l63);
	free(l64);

	expect_domain("u@_dmarc.example.com", "_dmarc.example.com");
	expect_domain("u@a_b.example", "a_b.example");
	expect_domain("u@_.example", "_.example");
	expect_domain("u@a-b.example", "a-b.example");
	expect_domain("u@xn--bcher-kva.example", "xn--bcher-kva.example");
	expect_domain("u@localhost", "localhost"); /* single label: DNS decides */
	expect_domain("u@192.0.2.1", "192.0.2.1"); /* no brackets: a (silly) host name */
	expect_invalid("u@-a.example", "label starts or ends with a hyphen");
	expect_invalid("u@a-.example", "label starts or ends with a hyphen");
	expect_invalid("u@example.-", "label starts or ends with a hyphen");
	expect_invalid("u@a..example", "empty label in domain");
	expect_invalid("u@.example", "empty label in domain");
	expect_invalid("u@exa!mple.com", "invalid character in domain");
	expect_invalid("u@exa/mple.com", "invalid character in domain");
	expect_invalid("u@exa\\mple.com", "invalid character in domain");
	expect_invalid("u@exa:mple.com", "invalid character in domain");
	expect_invalid("u@exa,mple.com", "invalid character in domain");
	expect_invalid("u@\"example.com\"", "invalid character in domain");
}

static void test_domain_length(void **state)
{
	char buf[600];
	char *d253 = long_domain(253), *d254 = long_domain(254);

	(void)state;
	assert_int_equal(strlen(d253), 253);
	snprintf(buf, sizeof(buf), "u@%s", d253);
	expect_domain(buf, d253);
	snprintf(buf, sizeof(buf), "u@%s.", d253); /* the trailing dot does not count */
	expect_domain(buf, d253);
	snprintf(buf, sizeof(buf), "u@%s", d254);
	expect_invalid(buf, "domain name too long");
	free(d253);
	free(d254);
}

static void test_idn(void **state)
{
	char buf[600];

	(void)state;
	expect_domain("user@b\xc3\xbc"
	              "cher.example",
	              "xn--bcher-kva.example");
	expect_domain("user@B\xc3\x9c"
	              "CHER.EXAMPLE",
	              "xn--bcher-kva.example");
	expect_domain("user@b\xc3\xbc"
	              "cher.example.",
	              "xn--bcher-kva.example");
	expect_domain("<user@_dmarc.b\xc3\xbc"
	              "cher.example>",
	              "_dmarc.xn--bcher-kva.example");
	/* Ideographic full stop U+3002 is a label separator (UTS #46 mapping)... */
	expect_domain("u@b\xc3\xbc"
	              "cher\xe3\x80\x82"
	              "example",
	              "xn--bcher-kva.example");
	/* ...also at the end, where it is a trailing dot. */
	expect_domain("u@b\xc3\xbc"
	              "cher.example\xe3\x80\x82",
	              "xn--bcher-kva.example");
	/* Non-transitional first: sharp s is kept, not mapped to "ss". */
	expect_domain("u@fa\xc3\x9f.de", "xn--fa-hia.de");
	/* Transitional fallback: an emoji label is disallowed by IDNA2008. */
	expect_domain("u@\xf0\x9f\x92\xa9.la", "xn--ls8h.la");

	expect_invalid("u@\xff.example", "invalid UTF-8 in domain");
	expect_invalid("u@b\xc3", "invalid UTF-8 in domain");
	expect_invalid("u@\xc3\x28.example", "invalid UTF-8 in domain");
	expect_invalid("u@\xed\xa0\x80.example", "invalid UTF-8 in domain"); /* surrogate */
	expect_invalid("u@-b\xc3\xbc"
	               "cher.example",
	               NULL);
	expect_invalid("u@b\xc3\xbc"
	               "cher..example",
	               "empty label in domain");
	expect_invalid("u@b\xc3\xbc"
	               "cher!.example",
	               NULL);
	/* ZWJ: refused by IDNA2008, and transitional processing maps it to nothing. */
	expect_invalid("u@\xe2\x80\x8d.example", "empty label in domain");

	/* 20 CJK ideographs far apart encode to a 64-octet A-label. */
	memcpy(buf, "u@", 2);
	for (int i = 0; i < 20; i++) {
		unsigned cp = 0x4e00 + (unsigned)i * 1013;

		buf[2 + 3 * i] = (char)(0xe0 | (cp >> 12));
		buf[3 + 3 * i] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[4 + 3 * i] = (char)(0x80 | (cp & 0x3f));
	}
	memcpy(buf + 62, ".example", 9);
	expect_invalid(buf, NULL);
}

static void test_domain_normalize_direct(void **state)
{
	char out[DOMAIN_MAX + 1];
	char reason[128];
	char small[6];
	char *big = repeat('a', ADDR_MAX + 10);

	(void)state;
	assert_true(domain_normalize("Example.COM.", 12, out, reason, sizeof(reason)));
	assert_string_equal(out, "example.com");
	/* len bounds the input. */
	assert_true(domain_normalize("example.comXYZ", 11, out, reason, sizeof(reason)));
	assert_string_equal(out, "example.com");

	assert_false(domain_normalize("", 0, out, reason, sizeof(reason)));
	assert_string_equal(reason, "empty domain");
	assert_string_equal(out, "");
	assert_false(domain_normalize(".", 1, out, reason, sizeof(reason)));
	assert_string_equal(reason, "empty domain");
	assert_false(domain_normalize("..", 2, out, reason, sizeof(reason)));
	assert_string_equal(reason, "empty label in domain");
	assert_false(domain_normalize("a\0b", 3, out, reason, sizeof(reason)));
	assert_string_equal(reason, "NUL byte in domain");
	assert_false(domain_normalize("a\nb", 3, out, reason, sizeof(reason)));
	assert_string_equal(reason, "control character in domain");
	assert_false(domain_normalize(big, ADDR_MAX + 10, out, reason, sizeof(reason)));
	assert_string_equal(reason, "domain name too long");
	assert_false(domain_normalize(big, 300, out, reason, sizeof(reason)));
	assert_string_equal(reason, "domain name too long");
	assert_false(domain_normalize(big, 100, out, reason, sizeof(reason)));
	assert_string_equal(reason, "label longer than 63 octets");
	assert_false(domain_normalize("a b", 3, out, reason, sizeof(reason)));
	assert_string_equal(reason, "invalid character in domain");
	free(big);

	/* The reason is optional and truncated to fit. */
	assert_false(domain_normalize("-a", 2, out, NULL, 0));
	assert_false(domain_normalize("-a", 2, out, small, sizeof(small)));
	assert_string_equal(small, "label");
	assert_false(domain_normalize(NULL, 3, out, reason, sizeof(reason)));
	assert_false(domain_normalize("a", 1, NULL, reason, sizeof(reason)));
}

/* ---- domain_is_ip_literal ---- */

static void test_ip_literal_detection(void **state)
{
	static const char *const yes[] = {
	        "192.0.2.1",
	        "192.0.2.1.",
	        "[192.0.2.1]",
	        "0.0.0.0",
	        "255.255.255.255",
	        "010.000.000.001",
	        "2001:db8::1",
	        "::1",
	        "::",
	        "[2001:db8::1]",
	        "[IPv6:2001:db8::1]",
	        "IPv6:2001:db8::1",
	        "::ffff:192.0.2.1",
	        "[ipv6:::1]",
	        "FE80::1",
	        "2001:db8::1.",
	};
	static const char *const no[] = {
	        "1.example.com",
	        "123abc",
	        "example.com",
	        "",
	        "1.2.3",
	        "1.2.3.4.5",
	        "256.1.1.1",
	        "1.2.3.4a",
	        "[foo]",
	        "[192.0.2.1",
	        "192.0.2.1]",
	        "[]",
	        "[",
	        "mx1.example",
	        "1234",
	        "1..2.3",
	        "192.0.2.1..",
	        "fe80::1%eth0",
	        "2001:db8::1..",
	        "IPv6:",
	        "[IPv6:192.0.2.1]",
	        "[192.0.2.1.]",
	        ".1.2.3.4",
	        "0x7f.0.0.1",
	        "1.2.3.-4",
	        "xn--bcher-kva.example",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!domain_is_ip_literal(yes[i]))
			fail_msg("\"%s\" should look like an IP address", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (domain_is_ip_literal(no[i]))
			fail_msg("\"%s\" should not look like an IP address", no[i]);
	assert_false(domain_is_ip_literal(NULL));
}

/* ---- robustness: random bytes and random mutations of valid addresses ---- */

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* ---- the rules for ASCII domains, written out plainly: domain_normalize (whose common case
 * takes a one-pass fast path) must agree on every input ---- */

static bool ref_normalize(const char *in, size_t len, char *out)
{
	if (len && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DOMAIN_MAX)
		return false;
	size_t lstart = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && in[i] != '.') {
			char ch = in[i];
			if (ch >= 'A' && ch <= 'Z')
				ch = (char)(ch - 'A' + 'a');
			if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			      ch == '_'))
				return false;
			out[i] = ch;
			continue;
		}
		size_t ll = i - lstart;
		if (ll == 0 || ll > 63 || in[lstart] == '-' || in[i - 1] == '-')
			return false;
		if (i < len)
			out[i] = '.';
		lstart = i + 1;
	}
	out[len] = '\0';
	return true;
}

static void test_ascii_domains_match_rules(void **state)
{
	static const char alphabet[] = "abcXYZ09-_..";
	char in[300], want[300], got[DOMAIN_MAX + 1];
	(void)state;
	rng_state = 777;
	for (int round = 0; round < 200000; round++) {
		size_t len = rng() % (round < 100000 ? 12 : 270);
		for (size_t i = 0; i < len; i++)
			in[i] = (rng() % 8 == 0) ? alphabet[rng() % (sizeof(alphabet) - 1)]
			                         : (char)('a' + rng() % 3);
		/* now and then a label of exactly 63 or 64 octets */
		if (round % 97 == 0 && len > 70)
			in[rng() % 2 ? 63 : 64] = '.';
		bool w = ref_normalize(in, len, want);
		bool g = domain_normalize(in, len, got, NULL, 0);
		if (w != g || (w && strcmp(want, got) != 0))
			fail_msg("\"%.*s\": rules say %d \"%s\", domain_normalize %d \"%s\"",
			         (int)len, in, w, w ? want : "", g, g ? got : "");
	}
}

/* Whatever the input, the result is one of the kinds and its fields are consistent. */
static void check_consistent(const char *s, size_t len)
{
	struct addr_parsed a;
	bool ok = parse_n(s, len, &a);
	char again[DOMAIN_MAX + 1];

	switch (a.kind) {
	case ADDR_DOMAIN:
		assert_true(ok);
		assert_true(strlen(a.domain) >= 1 && strlen(a.domain) <= DOMAIN_MAX);
		/* Normalising is idempotent. */
		assert_true(domain_normalize(a.domain, strlen(a.domain), again, NULL, 0));
		assert_string_equal(again, a.domain);
		break;
	case ADDR_LITERAL:
		assert_true(ok);
		assert_int_equal(a.literal[0], '[');
		break;
	case ADDR_NULL:
	case ADDR_NODOMAIN: assert_true(ok); break;
	case ADDR_INVALID:
		assert_false(ok);
		assert_true(a.reason[0] != '\0');
		break;
	default: fail_msg("bad kind %d", (int)a.kind);
	}
}

static void test_random_input(void **state)
{
	static const char alphabet[] = "ab.@<>\"\\[]:,- \x01\xc3\xbc\xff_0IPv6";
	static const char *const seeds[] = {
	        "<@a,@b:\"x y\"@B\303\274cher.example.>", /* octal: "\xbcc" would eat the c */
	        "user@[IPv6:2001:db8::1]",
	        "\"a\\\"b\"@example.com",
	};
	char buf[80];

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = rng() % sizeof(buf);

		for (size_t i = 0; i < len; i++)
			buf[i] = (iter & 1) ? (char)(rng() & 0xff)
			                    : alphabet[rng() % (sizeof(alphabet) - 1)];
		check_consistent(buf, len);
	}
	for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
		size_t slen = strlen(seeds[k]);

		for (int iter = 0; iter < 5000; iter++) {
			memcpy(buf, seeds[k], slen);
			for (int m = 0; m < 3; m++)
				buf[rng() % slen] = alphabet[rng() % (sizeof(alphabet) - 1)];
			check_consistent(buf, rng() % (slen + 1));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_null_path),
	        cmocka_unit_test(test_nodomain),
	        cmocka_unit_test(test_plain),
	        cmocka_unit_test(test_case_and_trailing_dot),
	        cmocka_unit_test(test_source_route),
	        cmocka_unit_test(test_quoted_local_part),
	        cmocka_unit_test(test_lenient_local_part),
	        cmocka_unit_test(test_literal),
	        cmocka_unit_test(test_literal_bad),
	        cmocka_unit_test(test_nul_bytes),
	        cmocka_unit_test(test_length_bounds),
	        cmocka_unit_test(test_angle_brackets),
	        cmocka_unit_test(test_missing_parts),
	        cmocka_unit_test(test_whitespace_and_controls),
	        cmocka_unit_test(test_len_is_respected),
	        cmocka_unit_test(test_domain_labels),
	        cmocka_unit_test(test_domain_length),
	        cmocka_unit_test(test_idn),
	        cmocka_unit_test(test_domain_normalize_direct),
	        cmocka_unit_test(test_ip_literal_detection),
	        cmocka_unit_test(test_ascii_domains_match_rules),
	        cmocka_unit_test(test_random_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
