/*
 * addr.c - RFC 5321 mailbox parsing and domain normalisation (see addr.h).
 *
 * Everything here reads only s[0..len-1]: the input may be unterminated and may contain NUL
 * bytes.  Bounds: the whole address is at most ADDR_MAX octets (refused before anything else
 * is looked at), a domain at most DOMAIN_MAX octets after conversion to A-labels, a label at
 * most 63 octets.  The local part is deliberately judged leniently (Postfix passes oddities
 * such as "a..b" or over-long local parts and they are not ours to refuse); only what would
 * make the domain ambiguous is an error: control characters, unquoted white space,
 * unbalanced quotes or brackets.
 *
 * Only the UTF-8 (non-ASCII) path allocates, inside libidn2; the result is freed before
 * returning.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define LABEL_MAX 63

static void set_reason(char *reason, size_t reasonlen, const char *msg)
{
	if (reason != NULL && reasonlen > 0)
		snprintf(reason, reasonlen, "%s", msg);
}

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_ldh_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Case-insensitive "does s[0..len-1] start with the ASCII prefix p". */
static bool has_prefix_ci(const char *s, size_t len, const char *p)
{
	size_t n = strlen(p);

	if (len < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(s[i]) != ascii_lower(p[i]))
			return false;
	return true;
}

/*
 * Parse s[0..len-1] as an IPv4 address, or (v6) an IPv6 address, with inet_pton.  Copies into
 * a bounded NUL-terminated buffer first; anything longer than the longest textual address is
 * simply not an address.
 */
static bool parse_ip(const char *s, size_t len, int family, void *dst)
{
	char buf[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(family, buf, dst) == 1;
}

/*
 * Validate a bracketed address literal "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321
 * 4.1.3).  s includes both brackets.  General address literals ("[tag:...]") other than
 * IPv6 are not supported.
 */
static bool literal_valid(const char *s, size_t len)
{
	unsigned char bin[16];

	if (len < 2 || s[0] != '[' || s[len - 1] != ']')
		return false;
	s++;
	len -= 2;
	if (has_prefix_ci(s, len, "IPv6:"))
		return parse_ip(s + 5, len - 5, AF_INET6, bin);
	return parse_ip(s, len, AF_INET, bin);
}

/*
 * Check an ASCII domain in place (already lower-cased, no trailing dot) against the rules of
 * addr.h.  Returns NULL if valid, else the reason.
 */
static const char *domain_check_ascii(const char *d, size_t len)
{
	size_t lstart = 0;

	if (len == 0)
		return "empty domain";
	if (len > DOMAIN_MAX)
		return "domain name too long";
	for (size_t i = 0; i <= len; i++) {
		if (i < len && d[i] != '.') {
			if (!is_ldh_(d[i]))
				return "invalid character in domain";
			continue;
		}
		/* end of the label d[lstart..i-1] */
		size_t llen = i - lstart;

		if (llen == 0)
			return "empty label in domain";
		if (llen > LABEL_MAX)
			return "label longer than 63 octets";
		if (d[lstart] == '-' || d[i - 1] == '-')
			return "label starts or ends with a hyphen";
		lstart = i + 1;
	}
	return NULL;
}

/*
 * The usual domain - ASCII letters, digits, '-', '_' and dots, well formed - in one pass:
 * lower-cased into out, true.  false for anything else (nothing is decided: the general
 * path below judges it and says why).
 */
static bool domain_fast(const char *in, size_t len, char *out)
{
	size_t n = len, lstart = 0;
	if (n && in[n - 1] == '.')
		n--;
	if (n == 0 || n > DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = in[i];
		if (ch == '.') {
			if (i == lstart || i - lstart > LABEL_MAX || in[i - 1] == '-')
				return false;
			lstart = i + 1;
			out[i] = '.';
		} else if (ch >= 'a' && ch <= 'z') {
			out[i] = ch;
		} else if ((ch >= '0' && ch <= '9') || ch == '_' || (ch == '-' && i != lstart)) {
			out[i] = ch;
		} else if (ch >= 'A' && ch <= 'Z') {
			out[i] = (char)(ch - 'A' + 'a');
		} else {
			return false;
		}
	}
	if (n == lstart || n - lstart > LABEL_MAX || in[n - 1] == '-')
		return false; /* the last label: empty ("a..", after one dot was taken), too long */
	out[n] = '\0';
	return true;
}

bool domain_normalize(const char *in, size_t len, char *out, char *reason, size_t reasonlen)
{
	char buf[ADDR_MAX + 1];
	char *ace = NULL;
	const char *why = NULL;
	const char *src;
	size_t srclen;
	bool stripped = false, ascii = true;

	if (out != NULL && in != NULL && domain_fast(in, len, out))
		return true;
	if (out != NULL)
		out[0] = '\0';
	if (out == NULL || (in == NULL && len > 0)) {
		why = "no domain";
		goto fail;
	}
	/* Bound first: nothing longer than an address can become a valid domain. */
	if (len > ADDR_MAX) {
		why = "domain name too long";
		goto fail;
	}
	if (len > 0 && memchr(in, '\0', len) != NULL) {
		why = "NUL byte in domain";
		goto fail;
	}
	if (len > 0 && in[len - 1] == '.') {
		len--;
		stripped = true;
	}
	if (len == 0) {
		why = "empty domain";
		goto fail;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c == 0x7f) {
			why = "control character in domain";
			goto fail;
		}
		if (c >= 0x80)
			ascii = false;
	}

	src = in;
	srclen = len;
	if (!ascii) {
		int rc;

		memcpy(buf, in, len);
		buf[len] = '\0';
		/* IDNA2008 / UTS #46 non-transitional first ("faß.de" -> "xn--fa-hia.de"); some
		 * names seen in the wild only convert with transitional processing. */
		rc = idn2_to_ascii_8z(buf, &ace, IDN2_NONTRANSITIONAL);
		if (rc != IDN2_OK) {
			ace = NULL;
			rc = idn2_to_ascii_8z(buf, &ace, IDN2_TRANSITIONAL);
		}
		if (rc != IDN2_OK) {
			ace = NULL;
			why = rc == IDN2_ENCODING_ERROR ? "invalid UTF-8 in domain"
			                                : "invalid international domain name";
			goto fail;
		}
		src = ace;
		srclen = strlen(ace);
		/* A mapped full stop (U+3002 ...) at the end is a trailing dot too. */
		if (!stripped && srclen > 0 && src[srclen - 1] == '.')
			srclen--;
	}
	if (srclen > DOMAIN_MAX) {
		why = "domain name too long";
		goto fail;
	}
	for (size_t i = 0; i < srclen; i++)
		out[i] = ascii_lower(src[i]);
	out[srclen] = '\0';
	why = domain_check_ascii(out, srclen);
	if (why != NULL)
		goto fail;
	idn2_free(ace);
	return true;

fail:
	idn2_free(ace);
	if (out != NULL)
		out[0] = '\0';
	set_reason(reason, reasonlen, why);
	return false;
}

/* Dotted quad with four decimal parts 0..255 (leading zeros tolerated: this asks whether a
 * name *looks* like an address, and resolvers accept "010.0.0.1"). */
static bool looks_like_ipv4(const char *s, size_t len)
{
	unsigned parts = 0, digits = 0, val = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] >= '0' && s[i] <= '9') {
			val = val * 10 + (unsigned)(s[i] - '0');
			if (++digits > 3 || val > 255)
				return false;
			continue;
		}
		if (i < len && s[i] != '.')
			return false;
		if (digits == 0)
			return false;
		parts++;
		digits = 0;
		val = 0;
	}
	return parts == 4;
}

bool domain_is_ip_literal(const char *name)
{
	unsigned char bin[16];
	size_t len;

	if (name == NULL)
		return false;
	len = strnlen(name, ADDR_MAX + 1);
	if (len == 0 || len > ADDR_MAX)
		return false;
	if (name[0] == '[') {
		if (name[len - 1] != ']')
			return false;
		name++;
		len -= 2;
	} else if (name[len - 1] == '.') {
		len--; /* "192.0.2.1." */
	}
	if (memchr(name, ':', len) == NULL) /* every IPv6 text has one; host names never */
		return looks_like_ipv4(name, len);
	if (has_prefix_ci(name, len, "IPv6:"))
		return parse_ip(name + 5, len - 5, AF_INET6, bin);
	return parse_ip(name, len, AF_INET6, bin);
}

/* Can c appear in a source-route hop?  Anything odd makes the caller treat the text as a
 * mailbox, whose scan then names the real problem (white space, quote, ...). */
static bool route_char(char c)
{
	unsigned char u = (unsigned char)c;

	return u > 0x20 && u != 0x7f && c != '@' && c != '"' && c != '\\' && c != '<' && c != '>' &&
	       c != ']';
}

/* Result of looking for a source route "@a,@b:" at the start of a path. */
enum route { ROUTE_NONE, ROUTE_OK, ROUTE_BAD };

/*
 * RFC 5321 4.1.2: A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain, followed by
 * ":".  On ROUTE_OK *skip is the length of the route including the colon.  Reaching the end
 * without a colon means it was not a route at all ("@example.com").  The hops are only
 * checked for shape: they are ignored (RFC 5321 says so, and Postfix strips them).
 */
static enum route route_skip(const char *s, size_t len, size_t *skip)
{
	size_t i = 0;

	if (len == 0 || s[0] != '@')
		return ROUTE_NONE;
	for (;;) {
		size_t start;

		if (i >= len)
			return ROUTE_NONE;
		if (s[i] != '@')
			return ROUTE_BAD;
		start = ++i;
		if (i < len && s[i] == '[') {
			while (++i < len && s[i] != ']')
				if (!route_char(s[i]))
					return ROUTE_NONE;
			if (i >= len)
				return ROUTE_NONE;
			i++;
		} else {
			for (; i < len && s[i] != ',' && s[i] != ':'; i++)
				if (!route_char(s[i]) || s[i] == '[')
					return ROUTE_NONE;
		}
		if (i >= len)
			return ROUTE_NONE;
		if (i == start)
			return ROUTE_BAD;
		if (s[i] == ':') {
			*skip = i + 1;
			return ROUTE_OK;
		}
		if (s[i] != ',')
			return ROUTE_BAD;
		i++;
	}
}

static bool invalid(struct addr_parsed *out, const char *why)
{
	out->kind = ADDR_INVALID;
	out->domain[0] = '\0';
	out->literal[0] = '\0';
	set_reason(out->reason, sizeof(out->reason), why);
	return false;
}

bool addr_parse(const char *s, size_t len, struct addr_parsed *out)
{
	const char *p, *dom;
	size_t plen, dlen, at = 0, skip = 0;
	bool in_quote = false, have_at = false;
	char why[sizeof(out->reason)];

	if (out == NULL)
		return false;
	memset(out, 0, sizeof(*out));
	if (s == NULL && len > 0)
		return invalid(out, "no address");
	if (len > ADDR_MAX)
		return invalid(out, "address too long");
	if (len > 0 && memchr(s, '\0', len) != NULL)
		return invalid(out, "NUL byte in address");

	/* Optional angle brackets, which must come as a pair around everything. */
	p = s;
	plen = len;
	if (plen > 0 && p[0] == '<') {
		if (plen < 2 || p[plen - 1] != '>')
			return invalid(out, "unbalanced angle bracket");
		p++;
		plen -= 2;
	} else if (plen > 0 && p[plen - 1] == '>') {
		return invalid(out, "unbalanced angle bracket");
	}
	if (plen == 0) {
		out->kind = ADDR_NULL;
		return true;
	}

	switch (route_skip(p, plen, &skip)) {
	case ROUTE_NONE: break;
	case ROUTE_BAD: return invalid(out, "bad source route");
	case ROUTE_OK:
		p += skip;
		plen -= skip;
		if (plen == 0)
			return invalid(out, "empty mailbox after source route");
		break;
	}

	/*
	 * One pass over the mailbox: quotes (with backslash escapes inside them) hide '@', white
	 * space and angle brackets; the domain starts after the last unquoted '@'.
	 */
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f)
			return invalid(out, "control character in address");
		if (in_quote) {
			if (c == '\\') {
				if (++i >= plen)
					return invalid(out, "unbalanced quote");
				c = (unsigned char)p[i];
				if (c < 0x20 || c == 0x7f)
					return invalid(out, "control character in address");
			} else if (c == '"') {
				in_quote = false;
			}
			continue;
		}
		switch (c) {
		case '"': in_quote = true; break;
		case ' ': return invalid(out, "white space in address");
		case '<':
		case '>': return invalid(out, "unbalanced angle bracket");
		case '@':
			have_at = true;
			at = i;
			break;
		default: break;
		}
	}
	if (in_quote)
		return invalid(out, "unbalanced quote");

	if (!have_at) {
		out->kind = ADDR_NODOMAIN; /* "postmaster" */
		return true;
	}
	if (at == 0)
		return invalid(out, "empty local part");
	if (p[0] == '@') /* "@a@b:c@d": not a route, and no local part starts with '@' */
		return invalid(out, "bad source route");
	dom = p + at + 1;
	dlen = plen - at - 1;
	if (dlen == 0)
		return invalid(out, "empty domain");

	if (dom[0] == '[') {
		if (dom[dlen - 1] != ']' || memchr(dom + 1, '[', dlen - 1) != NULL ||
		    memchr(dom, ']', dlen - 1) != NULL)
			return invalid(out, "unbalanced square bracket");
		if (dlen >= sizeof(out->literal) || !literal_valid(dom, dlen))
			return invalid(out, "bad address literal");
		memcpy(out->literal, dom, dlen);
		out->literal[dlen] = '\0';
		out->kind = ADDR_LITERAL;
		return true;
	}
	if (!domain_normalize(dom, dlen, out->domain, why, sizeof(why)))
		return invalid(out, why);
	out->kind = ADDR_DOMAIN;
	return true;
}
