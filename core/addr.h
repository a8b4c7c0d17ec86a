/*
 * addr.h - RFC 5321 mailbox parsing and domain normalisation.
 *
 * Input comes from the network (MAIL FROM / RCPT TO arguments, policy attributes) and is
 * hostile: every function is bounded by its len argument, never reads past it, never
 * allocates, and is safe from any thread.
 */
#ifndef MXSANE_ADDR_H
#define MXSANE_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define DOMAIN_MAX 253  /* RFC 1035 presentation length without trailing dot */
#define ADDR_MAX   1024 /* longer input is refused ("address too long") */

enum addr_kind {
	ADDR_DOMAIN = 0, /* a mailbox with a domain: domain[] is filled */
	ADDR_NULL,       /* the null reverse-path "<>" or "" */
	ADDR_LITERAL,  /* user@[192.0.2.1] or user@[IPv6:...]: literal[] holds the bracketed text */
	ADDR_NODOMAIN, /* local part only ("postmaster", "<postmaster>") */
	ADDR_INVALID,  /* unparseable: reason[] says why */
};

struct addr_parsed {
	enum addr_kind kind;
	char domain[DOMAIN_MAX + 1]; /* lower-case A-label, no trailing dot (ADDR_DOMAIN) */
	char literal[64];            /* "[192.0.2.1]" (ADDR_LITERAL) */
	char reason[128];            /* for ADDR_INVALID, a plain-words reason */
};

/*
 * Parse a mail address as it appears in MAIL FROM/RCPT TO or a policy request: with or
 * without angle brackets, with an optional source route "<@a,@b:user@dom>" (ignored, RFC 5321
 * 4.1.2), a quoted local part ("\"a b\"@dom", with backslash escapes), a trailing dot on the
 * domain, a UTF-8 domain (converted to its A-label with libidn2) and case-insensitive domain.
 * Trailing ESMTP parameters are NOT accepted here: callers pass the address only.
 * Always fills out->kind; returns true unless kind is ADDR_INVALID.
 */
bool addr_parse(const char *s, size_t len, struct addr_parsed *out);

/*
 * Normalise a domain name: strip one trailing dot, convert UTF-8 labels to A-labels
 * (IDNA2008 via libidn2, with transitional fallback), lower-case, and validate: 1..63-octet
 * labels, total <= DOMAIN_MAX, letters/digits/hyphen/underscore only, no leading/trailing
 * hyphen on a label, at least one label.  out must hold DOMAIN_MAX+1 bytes.  On error returns
 * false and writes a plain-words reason.
 */
bool domain_normalize(const char *in, size_t len, char *out, char *reason, size_t reasonlen);

/* Does the name look like an IP address written where a host name belongs
 * ("192.0.2.1", "[192.0.2.1]", "2001:db8::1")?  Used for MX targets. */
bool domain_is_ip_literal(const char *name);

#endif
