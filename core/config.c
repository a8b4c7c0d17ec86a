/*
 * config.c - load and validate the mxsane configuration file (libconfig 1.5 syntax).
 *
 * The file is read into memory once (at most CONFIG_MAX_BYTES) and syntax-checked by a small
 * tokeniser and parser of our own that mirror libconfig 1.5, because libconfig 1.5 silently
 * truncates integer literals to 32 bits, leaks memory on some syntax errors and would follow
 * @include.  Only a file that passes is parsed by libconfig, and the tree is then walked
 * against the schema of config.h: unknown keys, wrong types, values out of range and
 * inconsistent settings are errors "FILE:LINE: message".  The result starts from
 * config_defaults(), so an absent key keeps its default; every string is copied before the
 * libconfig tree is destroyed.  config_load is reentrant: it keeps no global state.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>

#include "addr.h"
#include "listfile.h"

/* Bound on the size of a configuration file, enforced while reading it. */
#define CONFIG_MAX_BYTES (16u * 1024 * 1024)

/* What one config_load() carries around: where to write the error, and scratch buffers for
 * the name of a setting and a (sanitised) value quoted in a message. */
struct loader {
	const char *path;
	char *err;
	size_t errlen;
	char name[256];
	char val[80];
};

/* A name accepted by a string-valued setting and the value it stands for. */
struct choice {
	const char *name;
	int value;
};

static const struct choice mixed_choices[] = {
        {"ignore", MIXED_NULL_IGNORE},
        {"null_mx", MIXED_NULL_IS_NULL},
        {NULL, 0},
};

static const struct choice mode_choices[] = {
        {"enforce", MODE_ENFORCE},
        {"monitor", MODE_MONITOR},
        {NULL, 0},
};

static const struct choice format_choices[] = {
        {"kv", LOG_FORMAT_KV},
        {"json", LOG_FORMAT_JSON},
        {NULL, 0},
};

static const struct choice facility_choices[] = {
        {"mail", LOG_MAIL},
        {"daemon", LOG_DAEMON},
        {"local0", LOG_LOCAL0},
        {"local1", LOG_LOCAL1},
        {"local2", LOG_LOCAL2},
        {"local3", LOG_LOCAL3},
        {"local4", LOG_LOCAL4},
        {"local5", LOG_LOCAL5},
        {"local6", LOG_LOCAL6},
        {"local7", LOG_LOCAL7},
        {NULL, 0},
};

static const struct choice outage_choices[] = {
        {"tempfail", OUTAGE_TEMPFAIL},
        {"accept", OUTAGE_ACCEPT},
        {NULL, 0},
};

/* The keys of the actions group, in the order of enum verdict. */
static const struct choice action_keys[] = {
        {"null_mx", V_NULL_MX},
        {"nxdomain", V_NXDOMAIN},
        {"no_mail_host", V_NO_MAIL_HOST},
        {"broken_mx", V_BROKEN_MX},
        {"mx_cname", V_MX_CNAME},
        {"dns_error", V_DNS_ERROR},
        {NULL, 0},
};

/* ------------------------------------------------------------------------------------------ */
/* Error messages */

/* "FILE: message"; always returns false so callers can `return fail_file(...)`. */
__attribute__((format(printf, 2, 3))) static bool fail_file(struct loader *ld, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ld->err && ld->errlen)
		snprintf(ld->err, ld->errlen, "%s: %s", ld->path, msg);
	return false;
}

/* "FILE:LINE: message". */
__attribute__((format(printf, 3, 4))) static bool fail_line(struct loader *ld, unsigned line,
                                                            const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ld->err && ld->errlen)
		snprintf(ld->err, ld->errlen, "%s:%u: %s", ld->path, line, msg);
	return false;
}

/* "FILE:LINE: message" with the line of a setting (one file: @include is refused). */
__attribute__((format(printf, 3, 4))) static bool
fail_at(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ld->err && ld->errlen)
		snprintf(ld->err, ld->errlen, "%s:%u: %s", ld->path, config_setting_source_line(s),
		         msg);
	return false;
}

static bool fail_oom(struct loader *ld)
{
	return fail_file(ld, "out of memory");
}

static size_t name_append(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *parent = config_setting_parent(s);
	size_t n;
	int r;

	if (!parent)
		return 0; /* the root has no name */
	n = name_append(parent, buf, len);
	if (n >= len)
		return n;
	if (config_setting_name(s))
		r = snprintf(buf + n, len - n, "%s%s", n ? "." : "", config_setting_name(s));
	else
		r = snprintf(buf + n, len - n, "[%d]", config_setting_index(s));
	return r < 0 ? n : n + (size_t)r;
}

/* The full name of a setting as written in messages: "cache.max_ttl", "skip.domains[2]". */
static const char *sname(struct loader *ld, const config_setting_t *s)
{
	ld->name[0] = '\0';
	name_append(s, ld->name, sizeof(ld->name));
	return ld->name;
}

/* Text from the file, safe to put in a message: printable ASCII only, shortened. */
static const char *sanitize(struct loader *ld, const char *t, size_t n)
{
	size_t i, max = sizeof(ld->val) - 4;

	for (i = 0; i < n && i < max; i++)
		ld->val[i] = (t[i] >= 0x20 && t[i] < 0x7f) ? t[i] : '?';
	ld->val[i] = '\0';
	if (i < n)
		strcat(ld->val, "...");
	return ld->val;
}

/* A string value, for a message. */
static const char *sval(struct loader *ld, const char *v)
{
	return sanitize(ld, v, strlen(v));
}

/* ------------------------------------------------------------------------------------------ */
/* Reading the file */

/* On success *out holds the text, NUL-terminated, with room for one more byte (len + 2). */
static bool read_file(struct loader *ld, char **out, size_t *outlen)
{
	struct stat st;
	FILE *fp = NULL;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, n;
	bool ok = false;

	fp = fopen(ld->path, "r");
	if (!fp) {
		fail_file(ld, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (fstat(fileno(fp), &st) != 0) {
		fail_file(ld, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		fail_file(ld, "cannot open: %s", strerror(EISDIR));
		goto fail;
	}
	for (;;) {
		/* keeps cap - len >= 4096 before each read, so the end always has spare room */
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			nbuf = realloc(buf, cap + 1);
			if (!nbuf) {
				fail_oom(ld);
				goto fail;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (len > CONFIG_MAX_BYTES) {
			fail_file(ld, "too large (more than %u bytes)", CONFIG_MAX_BYTES);
			goto fail;
		}
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		fail_file(ld, "cannot read: %s", strerror(errno));
		goto fail;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	ok = true;
fail:
	free(buf);
	if (fp)
		fclose(fp);
	return ok;
}

/* ------------------------------------------------------------------------------------------ */
/*
 * Syntax check.  libconfig 1.5 is not fit to see a malformed or hostile file by itself:
 *  - it reads integer literals with atoi(): 4294967396 becomes 100 without an error, so no
 *    range check after parsing can catch it;
 *  - its parser leaks the string it holds when a syntax error follows a string token;
 *  - @include would make it read a file nobody validated;
 *  - a NUL byte ends its input silently, and a comment on the last line without a newline is
 *    a syntax error.
 * So the text is first tokenised and parsed here, mirroring libconfig 1.5's scanner (flex,
 * longest match, ties to the earlier rule) and grammar, and only a file that passes is handed
 * to libconfig.  Anything libconfig itself still refuses (duplicate names, mixed types in an
 * array) is reported from its own error.
 */

#define SYNTAX_MAX_DEPTH 16 /* nesting of groups and lists; mxsane's schema needs 2 */

enum tok_kind {
	T_EOF,
	T_NAME,
	T_EQUALS, /* '=' or ':' */
	T_COMMA,
	T_SEMI,
	T_LBRACE,
	T_RBRACE,
	T_LBRACK,
	T_RBRACK,
	T_LPAREN,
	T_RPAREN,
	T_SCALAR, /* boolean, integer or float */
	T_STRING,
};

struct lexer {
	struct loader *ld;
	const char *t;
	size_t len;
	size_t pos;
	unsigned line;
	bool bol; /* only blanks since the start of the line (where @include is recognised) */
	/* the current token */
	enum tok_kind kind;
	size_t start;
	unsigned tline;
};

static size_t span(const char *t, size_t len, size_t p, int (*is)(int))
{
	size_t q = p;

	while (q < len && is((unsigned char)t[q]))
		q++;
	return q - p;
}

static size_t m_bool(const char *t, size_t len, size_t p)
{
	if (len - p >= 4 && strncasecmp(t + p, "true", 4) == 0)
		return 4;
	if (len - p >= 5 && strncasecmp(t + p, "false", 5) == 0)
		return 5;
	return 0;
}

static bool is_name_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '*';
}

static size_t m_name(const char *t, size_t len, size_t p)
{
	size_t q = p + 1;

	if (!isalpha((unsigned char)t[p]) && t[p] != '*')
		return 0;
	while (q < len && is_name_char(t[q]))
		q++;
	return q - p;
}

/* [eE][-+]?[0-9]+ */
static size_t m_exp(const char *t, size_t len, size_t p)
{
	size_t q = p + 1, d;

	if (p >= len || (t[p] != 'e' && t[p] != 'E'))
		return 0;
	if (q < len && (t[q] == '+' || t[q] == '-'))
		q++;
	d = span(t, len, q, isdigit);
	return d ? q + d - p : 0;
}

/* ([-+]?[0-9]*\.[0-9]*([eE][-+]?[0-9]+)?) | ([-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+) */
static size_t m_float(const char *t, size_t len, size_t p)
{
	size_t q = p, d, r, e, best = 0;

	if (t[q] == '+' || t[q] == '-')
		q++;
	d = span(t, len, q, isdigit);
	if (q + d < len && t[q + d] == '.') {
		r = q + d + 1;
		r += span(t, len, r, isdigit);
		r += m_exp(t, len, r);
		best = r - p;
	}
	if (d) {
		r = q + d;
		if (r < len && t[r] == '.')
			r += 1 + span(t, len, r + 1, isdigit);
		e = m_exp(t, len, r);
		if (e && r + e - p > best)
			best = r + e - p;
	}
	return best;
}

/* [-+]?[0-9]+(L(L)?)?  and  0[Xx][0-9A-Fa-f]+(L(L)?)? */
static size_t m_int(const char *t, size_t len, size_t p, bool hex)
{
	size_t q = p, d;

	if (hex) {
		if (len - p < 3 || t[p] != '0' || (t[p + 1] != 'x' && t[p + 1] != 'X'))
			return 0;
		q += 2;
		d = span(t, len, q, isxdigit);
	} else {
		if (t[q] == '+' || t[q] == '-')
			q++;
		d = span(t, len, q, isdigit);
	}
	if (!d)
		return 0;
	q += d;
	if (q < len && t[q] == 'L')
		q += (q + 1 < len && t[q + 1] == 'L') ? 2 : 1;
	return q - p;
}

/*
 * An integer token: libconfig 1.5 keeps a literal without L in an int (atoi / strtoul) and
 * one with L in a long long.  Refuse any whose value would not survive that.
 */
static bool check_int(struct lexer *lx, size_t p, size_t n)
{
	const char *t = lx->t;
	unsigned long long v = 0, max;
	unsigned base = 10, d, bits;
	bool neg = false, ovf = false;
	size_t i = p, end = p + n;

	if (t[i] == '+' || t[i] == '-')
		neg = t[i++] == '-';
	if (end - i > 2 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'X')) {
		base = 16;
		i += 2;
	}
	bits = t[end - 1] == 'L' ? 64 : 32;
	for (; i < end && t[i] != 'L'; i++) {
		d = isdigit((unsigned char)t[i])
		            ? (unsigned)(t[i] - '0')
		            : (unsigned)(tolower((unsigned char)t[i]) - 'a' + 10);
		if (v > (~0ULL - d) / base)
			ovf = true;
		else
			v = v * base + d;
	}
	max = (1ULL << (bits - 1)) - (neg ? 0 : 1);
	if (ovf || v > max)
		return fail_line(lx->ld, lx->tline, "integer %s does not fit in %u bits",
		                 sanitize(lx->ld, t + p, n), bits);
	return true;
}

/* Skip a string starting at the opening quote; false if it does not end. */
static bool skip_string(struct lexer *lx)
{
	const char *t = lx->t;

	for (lx->pos++; lx->pos < lx->len; lx->pos++) {
		if (t[lx->pos] == '"')
			break;
		/* escapes of two characters; any other backslash stands for itself */
		if (t[lx->pos] == '\\' && lx->pos + 1 < lx->len &&
		    strchr("\\\"nrtf", t[lx->pos + 1]))
			lx->pos++;
		else if (t[lx->pos] == '\n')
			lx->line++;
	}
	if (lx->pos >= lx->len)
		return fail_line(lx->ld, lx->tline, "syntax error: unterminated string");
	lx->pos++;
	return true;
}

/* Blanks and comments; false on an unterminated comment. */
static bool skip_blanks(struct lexer *lx)
{
	const char *t = lx->t;
	unsigned start;

	while (lx->pos < lx->len) {
		char ch = t[lx->pos];

		if (ch == '\n') {
			lx->line++;
			lx->pos++;
			lx->bol = true;
		} else if (ch == ' ' || ch == '\t') {
			lx->pos++;
		} else if (ch == '\r' || ch == '\f') {
			lx->pos++;
			lx->bol = false;
		} else if (ch == '#' ||
		           (ch == '/' && lx->pos + 1 < lx->len && t[lx->pos + 1] == '/')) {
			while (lx->pos < lx->len && t[lx->pos] != '\n')
				lx->pos++;
		} else if (ch == '/' && lx->pos + 1 < lx->len && t[lx->pos + 1] == '*') {
			start = lx->line;
			for (lx->pos += 2; lx->pos < lx->len; lx->pos++) {
				if (t[lx->pos] == '*' && lx->pos + 1 < lx->len &&
				    t[lx->pos + 1] == '/')
					break;
				if (t[lx->pos] == '\n')
					lx->line++;
			}
			if (lx->pos >= lx->len)
				return fail_line(lx->ld, start,
				                 "syntax error: unterminated comment");
			lx->pos += 2;
			lx->bol = false;
		} else {
			break;
		}
	}
	return true;
}

static bool lex_next(struct lexer *lx)
{
	static const char punct[] = "=:,;{}[]()";
	static const enum tok_kind punct_kind[] = {T_EQUALS, T_EQUALS, T_COMMA,  T_SEMI,
	                                           T_LBRACE, T_RBRACE, T_LBRACK, T_RBRACK,
	                                           T_LPAREN, T_RPAREN};
	const char *t = lx->t, *pc;
	size_t p, nb, nn, nf, ni, nh, n;
	char ch;

	if (!skip_blanks(lx))
		return false;
	lx->start = p = lx->pos;
	lx->tline = lx->line;
	if (p >= lx->len) {
		lx->kind = T_EOF;
		return true;
	}
	ch = t[p];
	if (ch == '@' && lx->bol && lx->len - p > 8 && memcmp(t + p, "@include", 8) == 0 &&
	    (t[p + 8] == ' ' || t[p + 8] == '\t'))
		return fail_line(lx->ld, lx->tline,
		                 "@include is not supported: keep the configuration in one file");
	lx->bol = false;
	if (ch == '"') {
		lx->kind = T_STRING;
		return skip_string(lx);
	}
	pc = ch ? strchr(punct, ch) : NULL;
	if (pc) {
		lx->kind = punct_kind[pc - punct];
		lx->pos++;
		return true;
	}
	nb = m_bool(t, lx->len, p);
	nn = m_name(t, lx->len, p);
	nf = m_float(t, lx->len, p);
	ni = m_int(t, lx->len, p, false);
	nh = m_int(t, lx->len, p, true);
	/* longest match; on a tie the earlier rule: boolean, name, float, integer, hex */
	n = nb;
	lx->kind = T_SCALAR;
	if (nn > n) {
		n = nn;
		lx->kind = T_NAME;
	}
	if (nf > n) {
		n = nf;
		lx->kind = T_SCALAR;
	}
	if (ni > n || nh > n) {
		n = ni > nh ? ni : nh;
		lx->kind = T_SCALAR;
		if (!check_int(lx, p, n))
			return false;
	}
	if (!n)
		return fail_line(lx->ld, lx->tline, "syntax error: unexpected character '%s'",
		                 sanitize(lx->ld, t + p, 1));
	lx->pos = p + n;
	return true;
}

static bool unexpected(struct lexer *lx)
{
	if (lx->kind == T_EOF)
		return fail_line(lx->ld, lx->tline, "syntax error: unexpected end of file");
	return fail_line(lx->ld, lx->tline, "syntax error: unexpected '%s'",
	                 sanitize(lx->ld, lx->t + lx->start, lx->pos - lx->start));
}

static bool expect(struct lexer *lx, enum tok_kind k)
{
	return lx->kind == k ? lex_next(lx) : unexpected(lx);
}

static bool parse_settings(struct lexer *lx, unsigned depth);
static bool parse_value(struct lexer *lx, unsigned depth, bool scalar_only);

/* '[' scalars ']' or '(' values ')', separated by commas; the opening bracket is current. */
static bool parse_seq(struct lexer *lx, unsigned depth)
{
	enum tok_kind close = lx->kind == T_LBRACK ? T_RBRACK : T_RPAREN;

	if (!lex_next(lx))
		return false;
	if (lx->kind == close)
		return lex_next(lx);
	for (;;) {
		if (!parse_value(lx, depth + 1, close == T_RBRACK))
			return false;
		if (lx->kind != T_COMMA)
			return expect(lx, close);
		if (!lex_next(lx))
			return false;
	}
}

/* value: scalar | string+ | '[' scalars ']' | '(' values ')' | '{' settings '}' */
static bool parse_value(struct lexer *lx, unsigned depth, bool scalar_only)
{
	if (depth > SYNTAX_MAX_DEPTH)
		return fail_line(lx->ld, lx->tline, "syntax error: nested more than %u levels deep",
		                 SYNTAX_MAX_DEPTH);
	switch (lx->kind) {
	case T_SCALAR: return lex_next(lx);
	case T_STRING:
		do {
			if (!lex_next(lx))
				return false;
		} while (lx->kind == T_STRING); /* adjacent strings are concatenated */
		return true;
	case T_LBRACK:
	case T_LPAREN: return scalar_only ? unexpected(lx) : parse_seq(lx, depth);
	case T_LBRACE:
		if (scalar_only)
			return unexpected(lx);
		return lex_next(lx) && parse_settings(lx, depth + 1) && expect(lx, T_RBRACE);
	default: return unexpected(lx);
	}
}

/* settings: (NAME ('=' | ':') value (';' | ',')?)* */
static bool parse_settings(struct lexer *lx, unsigned depth)
{
	while (lx->kind == T_NAME) {
		if (!lex_next(lx) || !expect(lx, T_EQUALS) || !parse_value(lx, depth, false))
			return false;
		if ((lx->kind == T_SEMI || lx->kind == T_COMMA) && !lex_next(lx))
			return false;
	}
	return true;
}

static bool syntax_check(struct loader *ld, const char *text, size_t len)
{
	struct lexer lx = {.ld = ld, .t = text, .len = len, .line = 1, .bol = true};
	const char *nul = memchr(text, '\0', len);
	size_t i;

	if (nul) {
		for (i = 0; text + i < nul; i++)
			lx.line += text[i] == '\n';
		return fail_line(ld, lx.line, "NUL byte in the file");
	}
	if (!lex_next(&lx) || !parse_settings(&lx, 0))
		return false;
	return lx.kind == T_EOF || unexpected(&lx);
}

/* ------------------------------------------------------------------------------------------ */
/* Typed access to settings.  Each getter leaves *out alone when the key is absent. */

/* Every member of group g must be one of known[] (NULL-terminated). */
static bool check_members(struct loader *ld, const config_setting_t *g, const char *const *known)
{
	const config_setting_t *m;
	size_t k;
	int i, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		m = config_setting_get_elem(g, (unsigned)i);
		for (k = 0; known[k]; k++)
			if (strcmp(known[k], config_setting_name(m)) == 0)
				break;
		if (!known[k])
			return fail_at(ld, m, "unknown setting '%s'", sname(ld, m));
	}
	return true;
}

/* A sub-group of g, checked against its known member names; *out NULL if absent. */
static bool get_group(struct loader *ld, const config_setting_t *g, const char *key,
                      const char *const *known, const config_setting_t **out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	*out = NULL;
	if (!s)
		return true;
	if (!config_setting_is_group(s))
		return fail_at(ld, s, "'%s': expected a group { ... }", sname(ld, s));
	*out = s;
	return check_members(ld, s, known);
}

static bool get_int(struct loader *ld, const config_setting_t *g, const char *key, long long min,
                    long long max, long long *out, const config_setting_t **where)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	long long v;

	if (where)
		*where = s;
	if (!s)
		return true;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return fail_at(ld, s, "'%s': expected an integer", sname(ld, s));
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return fail_at(ld, s, "'%s': %lld is out of range (%lld..%lld)", sname(ld, s), v,
		               min, max);
	*out = v;
	return true;
}

static bool get_u32(struct loader *ld, const config_setting_t *g, const char *key, uint32_t min,
                    uint32_t max, uint32_t *out, const config_setting_t **where)
{
	long long v = *out;

	if (!get_int(ld, g, key, min, max, &v, where))
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool get_uns(struct loader *ld, const config_setting_t *g, const char *key, unsigned min,
                    unsigned max, unsigned *out)
{
	long long v = *out;

	if (!get_int(ld, g, key, min, max, &v, NULL))
		return false;
	*out = (unsigned)v;
	return true;
}

static bool get_bool(struct loader *ld, const config_setting_t *g, const char *key, bool *out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (!s)
		return true;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail_at(ld, s, "'%s': expected true or false", sname(ld, s));
	*out = config_setting_get_bool(s) != 0;
	return true;
}

/* The string value of setting s itself (a member or a list element). */
static bool str_of(struct loader *ld, const config_setting_t *s, const char **out)
{
	*out = "";
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_at(ld, s, "'%s': expected a string", sname(ld, s));
	*out = config_setting_get_string(s);
	return true;
}

/* A non-empty string, copied; replaces (and frees) *out. */
static bool get_string(struct loader *ld, const config_setting_t *g, const char *key, char **out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v;
	char *copy;

	if (!s)
		return true;
	if (!str_of(ld, s, &v))
		return false;
	if (!*v)
		return fail_at(ld, s, "'%s': must not be empty", sname(ld, s));
	copy = strdup(v);
	if (!copy)
		return fail_oom(ld);
	free(*out);
	*out = copy;
	return true;
}

static void choices_text(const struct choice *ch, char *buf, size_t len)
{
	size_t n = 0, i;

	buf[0] = '\0';
	for (i = 0; ch[i].name && n < len; i++) {
		const char *sep = !i ? "" : ch[i + 1].name ? ", " : " or ";
		int r = snprintf(buf + n, len - n, "%s\"%s\"", sep, ch[i].name);

		if (r < 0)
			break;
		n += (size_t)r;
	}
}

/* A string that must be one of the names in ch; *out gets its value. */
static bool get_choice(struct loader *ld, const config_setting_t *g, const char *key,
                       const struct choice *ch, int *out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v;
	char names[256];
	size_t i;

	if (!s)
		return true;
	if (!str_of(ld, s, &v))
		return false;
	for (i = 0; ch[i].name; i++) {
		if (strcmp(ch[i].name, v) == 0) {
			*out = ch[i].value;
			return true;
		}
	}
	choices_text(ch, names, sizeof(names));
	return fail_at(ld, s, "'%s': invalid value \"%s\" (expected %s)", sname(ld, s), sval(ld, v),
	               names);
}

/* A list ( ... ) or array [ ... ]; *out NULL if absent.  Elements are checked by the caller. */
static bool get_list(struct loader *ld, const config_setting_t *g, const char *key,
                     const config_setting_t **out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	*out = NULL;
	if (!s)
		return true;
	if (!config_setting_is_list(s) && !config_setting_is_array(s))
		return fail_at(ld, s, "'%s': expected a list of strings [ \"...\", ... ]",
		               sname(ld, s));
	*out = s;
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Value checks */

static bool port_valid(const char *p)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; p[i]; i++) {
		if (i >= 5 || !isdigit((unsigned char)p[i]))
			return false;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	return i > 0 && v >= 1 && v <= 65535;
}

/* "192.0.2.1", "192.0.2.1:5300", "2001:db8::1", "[2001:db8::1]:53". */
static bool server_valid(const char *s)
{
	unsigned char bin[16];
	char host[64];
	const char *end, *port = NULL;
	size_t n;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return false;
		n = (size_t)(end - s - 1);
		port = end + 2;
	} else {
		if (inet_pton(AF_INET6, s, bin) == 1)
			return true;
		end = strchr(s, ':');
		n = end ? (size_t)(end - s) : strlen(s);
		port = end ? end + 1 : NULL;
	}
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, s[0] == '[' ? s + 1 : s, n);
	host[n] = '\0';
	if (inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, host, bin) != 1)
		return false;
	return !port || port_valid(port);
}

/* A host in a socket specification: an IP address or a host name (LDH labels). */
static bool sock_host_valid(const char *h, size_t n, bool allow_name)
{
	char buf[256];
	unsigned char bin[16];

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, h, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1)
		return true;
	if (!allow_name)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)buf[i]) && buf[i] != '-' && buf[i] != '.')
			return false;
	return true;
}

static bool sock_path_valid(const char *p)
{
	return p[0] == '/' && strlen(p) < 108; /* sizeof(sun_path) */
}

/* libmilter syntax: unix:/path, local:/path, inet:PORT[@HOST], inet6:PORT[@HOST]. */
static bool milter_socket_valid(const char *s)
{
	const char *rest, *at;
	char port[8];

	if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0)
		return sock_path_valid(strchr(s, ':') + 1);
	if (strncmp(s, "inet:", 5) == 0)
		rest = s + 5;
	else if (strncmp(s, "inet6:", 6) == 0)
		rest = s + 6;
	else
		return false;
	at = strchr(rest, '@');
	size_t pl = at ? (size_t)(at - rest) : strlen(rest);
	if (pl == 0 || pl >= sizeof(port))
		return false;
	memcpy(port, rest, pl);
	port[pl] = '\0';
	return port_valid(port) && (!at || sock_host_valid(at + 1, strlen(at + 1), true));
}

/* Postfix syntax: unix:/path, [inet:]HOST:PORT, [inet:][IPv6]:PORT (HOST an IP address). */
static bool policy_listen_valid(const char *s)
{
	const char *rest, *colon;

	if (strncmp(s, "unix:", 5) == 0)
		return sock_path_valid(s + 5);
	rest = strncmp(s, "inet:", 5) == 0 ? s + 5 : s; /* "inet:" may be left out */
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		return close && close[1] == ':' && port_valid(close + 2) &&
		       sock_host_valid(rest + 1, (size_t)(close - rest - 1), false);
	}
	colon = strrchr(rest, ':');
	return colon && port_valid(colon + 1) &&
	       sock_host_valid(rest, (size_t)(colon - rest), false);
}

/* A string setting checked by valid(); `expect` describes the accepted forms. */
static bool get_socket(struct loader *ld, const config_setting_t *g, const char *key, char **out,
                       bool (*valid)(const char *), const char *expect)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (!get_string(ld, g, key, out))
		return false;
	if (s && !valid(*out))
		return fail_at(ld, s, "'%s': invalid socket \"%s\" (expected %s)", sname(ld, s),
		               sval(ld, *out), expect);
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Sections */

static bool load_resolver(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"servers", "timeout_ms", NULL};
	const config_setting_t *g, *list, *e;
	const char *v;
	unsigned i, n;

	if (!get_group(ld, root, "resolver", known, &g))
		return false;
	if (!g)
		return true;
	if (!get_uns(ld, g, "timeout_ms", 100, 60000, &c->timeout_ms))
		return false;
	if (!get_list(ld, g, "servers", &list))
		return false;
	if (!list)
		return true;
	n = (unsigned)config_setting_length(list);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, i);
		if (!str_of(ld, e, &v))
			return false;
		if (!server_valid(v))
			return fail_at(ld, e,
			               "'%s': invalid server \"%s\" (expected IPv4[:port], "
			               "[IPv6]:port or IPv6; port 1..65535)",
			               sname(ld, e), sval(ld, v));
	}
	if (n == 0)
		return true;
	c->servers = calloc(n, sizeof(*c->servers));
	if (!c->servers)
		return fail_oom(ld);
	for (i = 0; i < n; i++) {
		c->servers[i] = strdup(config_setting_get_string_elem(list, (int)i));
		if (!c->servers[i])
			return fail_oom(ld);
		c->nservers++;
	}
	return true;
}

static bool load_cache(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"max_entries", "min_ttl", "max_ttl", "error_ttl", NULL};
	const config_setting_t *g, *smin = NULL, *smax = NULL;

	if (!get_group(ld, root, "cache", known, &g))
		return false;
	if (!g)
		return true;
	/* TTLs are at most 2^31-1 (RFC 2181 section 8) */
	if (!get_u32(ld, g, "max_entries", 0, 10000000, &c->cache_max_entries, NULL) ||
	    !get_u32(ld, g, "min_ttl", 0, INT32_MAX, &c->cache_min_ttl, &smin) ||
	    !get_u32(ld, g, "max_ttl", 0, INT32_MAX, &c->cache_max_ttl, &smax) ||
	    !get_u32(ld, g, "error_ttl", 0, 300, &c->cache_error_ttl, NULL))
		return false;
	if (c->cache_min_ttl > c->cache_max_ttl)
		return fail_at(ld, smin ? smin : smax,
		               "'cache.min_ttl' (%u) is greater than 'cache.max_ttl' (%u)",
		               (unsigned)c->cache_min_ttl, (unsigned)c->cache_max_ttl);
	return true;
}

static bool load_checks(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"sender", "recipient", "local_sender", "mixed_null_mx",
	                                    NULL};
	const config_setting_t *g;
	int mixed = c->mixed_null_mx;

	if (!get_group(ld, root, "checks", known, &g))
		return false;
	if (!g)
		return true;
	if (!get_bool(ld, g, "sender", &c->check_sender) ||
	    !get_bool(ld, g, "recipient", &c->check_recipient) ||
	    !get_bool(ld, g, "local_sender", &c->check_local_sender) ||
	    !get_choice(ld, g, "mixed_null_mx", mixed_choices, &mixed))
		return false;
	c->mixed_null_mx = (enum mixed_null_mx)mixed;
	return true;
}

static bool load_actions(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {
	        "null_mx", "nxdomain", "no_mail_host", "broken_mx", "mx_cname", "dns_error", NULL};
	const config_setting_t *g, *s;
	const char *v;
	enum action a;
	size_t i;

	if (!get_group(ld, root, "actions", known, &g))
		return false;
	if (!g)
		return true;
	for (i = 0; action_keys[i].name; i++) {
		s = config_setting_get_member(g, action_keys[i].name);
		if (!s)
			continue;
		if (!str_of(ld, s, &v))
			return false;
		if (!action_from_name(v, &a))
			return fail_at(ld, s,
			               "'%s': invalid value \"%s\" (expected \"reject\", "
			               "\"tempfail\", \"warn\" or \"accept\")",
			               sname(ld, s), sval(ld, v));
		if (action_keys[i].value == V_DNS_ERROR && a == ACT_REJECT)
			return fail_at(ld, s,
			               "'%s': a temporary DNS failure must never bounce mail; "
			               "use tempfail, warn or accept",
			               sname(ld, s));
		c->actions[action_keys[i].value] = a;
	}
	return true;
}

/* Append every CIDR string of list to l. */
static bool load_cidrs(struct loader *ld, const config_setting_t *list, struct netlist *l)
{
	const config_setting_t *e;
	struct cidr net;
	const char *v;
	char reason[128];
	unsigned i, n = (unsigned)config_setting_length(list);

	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, i);
		if (!str_of(ld, e, &v))
			return false;
		reason[0] = '\0';
		if (!cidr_parse(v, &net, reason, sizeof(reason)))
			return fail_at(ld, e, "'%s': invalid network \"%s\": %s", sname(ld, e),
			               sval(ld, v), reason[0] ? reason : "not a CIDR");
		if (!netlist_add(l, &net))
			return fail_oom(ld);
	}
	return true;
}

static bool load_bogus(struct loader *ld, const config_setting_t *root, struct config *c)
{
	const config_setting_t *list;

	if (!get_list(ld, root, "bogus_networks", &list))
		return false;
	if (!list)
		return true;
	/* present: replaces the built-in list, even when empty */
	netlist_free(&c->bogus_networks);
	memset(&c->bogus_networks, 0, sizeof(c->bogus_networks));
	return load_cidrs(ld, list, &c->bogus_networks);
}

/* A list file setting: an absolute path (what a relative one means would depend on the
 * directory a daemon was started in), read with load(); its errors name the list file. */
static bool get_list_file(struct loader *ld, const config_setting_t *g, const char *key,
                          char **path, void *list,
                          bool (*load)(const char *, void *, char *, size_t))
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (!get_string(ld, g, key, path))
		return false;
	if (!s)
		return true;
	if ((*path)[0] != '/')
		return fail_at(ld, s, "'%s': expected an absolute path, not \"%s\"", sname(ld, s),
		               sval(ld, *path));
	return load(*path, list, ld->err, ld->errlen);
}

static bool load_domain_file(const char *path, void *l, char *err, size_t errlen)
{
	return listfile_load_domains(path, l, err, errlen);
}

static bool load_network_file(const char *path, void *l, char *err, size_t errlen)
{
	return listfile_load_networks(path, l, err, errlen);
}

static bool load_skip(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"domains", "clients", "domains_file", "clients_file",
	                                    NULL};
	const config_setting_t *g, *list, *e;
	char norm[DOMAIN_MAX + 2], reason[128];
	const char *v;
	unsigned i, n;
	bool sub;

	if (!get_group(ld, root, "skip", known, &g))
		return false;
	if (!g)
		return true;
	if (!get_list(ld, g, "domains", &list))
		return false;
	n = list ? (unsigned)config_setting_length(list) : 0;
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, i);
		if (!str_of(ld, e, &v))
			return false;
		/* ".example.com": every subdomain; the dot is kept as the marker */
		sub = v[0] == '.';
		norm[0] = '.';
		reason[0] = '\0';
		if (!domain_normalize(v + sub, strlen(v + sub), norm + sub, reason, sizeof(reason)))
			return fail_at(ld, e, "'%s': invalid domain \"%s\": %s", sname(ld, e),
			               sval(ld, v), reason[0] ? reason : "not a domain name");
		if (!domlist_add(&c->skip_domains, norm))
			return fail_oom(ld);
	}
	if (!get_list(ld, g, "clients", &list))
		return false;
	if (list && !load_cidrs(ld, list, &c->skip_clients))
		return false;
	if (!get_list_file(ld, g, "domains_file", &c->skip_domains_file, &c->skip_domains,
	                   load_domain_file) ||
	    !get_list_file(ld, g, "clients_file", &c->skip_clients_file, &c->skip_clients,
	                   load_network_file))
		return false;
	return netlist_index(&c->skip_clients) || fail_oom(ld);
}

static bool load_log(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"format", "facility", NULL};
	const config_setting_t *g;
	int format = c->log_format;

	if (!get_group(ld, root, "log", known, &g))
		return false;
	if (!g)
		return true;
	if (!get_choice(ld, g, "format", format_choices, &format) ||
	    !get_choice(ld, g, "facility", facility_choices, &c->log_facility))
		return false;
	c->log_format = (enum log_format)format;
	return true;
}

static bool load_milter(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"socket", "timeout", NULL};
	const config_setting_t *g;

	if (!get_group(ld, root, "milter", known, &g))
		return false;
	return !g || (get_socket(ld, g, "socket", &c->milter_socket, milter_socket_valid,
	                         "unix:/path, inet:PORT@HOST or inet6:PORT@HOST") &&
	              get_uns(ld, g, "timeout", 1, 86400, &c->milter_timeout));
}

static bool load_policy(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {
	        "listen",        "idle_timeout",       "max_connections",
	        "allow_clients", "allow_clients_file", NULL};
	const config_setting_t *g, *list;

	if (!get_group(ld, root, "policy", known, &g))
		return false;
	if (!g)
		return true;
	if (!get_socket(ld, g, "listen", &c->policy_listen, policy_listen_valid,
	                "inet:IP:PORT, inet:[IPv6]:PORT or unix:/path") ||
	    !get_uns(ld, g, "idle_timeout", 1, 86400, &c->policy_idle_timeout) ||
	    !get_uns(ld, g, "max_connections", 1, 1000000, &c->policy_max_connections) ||
	    !get_list(ld, g, "allow_clients", &list))
		return false;
	if (list && !load_cidrs(ld, list, &c->policy_allow_clients))
		return false;
	if (!get_list_file(ld, g, "allow_clients_file", &c->policy_allow_clients_file,
	                   &c->policy_allow_clients, load_network_file))
		return false;
	c->policy_allow_set = list || c->policy_allow_clients_file;
	return netlist_index(&c->policy_allow_clients) || fail_oom(ld);
}

static bool load_resilience(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"on_dns_outage", "outage_ratio", "outage_window", NULL};
	const config_setting_t *g, *s;
	int outage = c->on_dns_outage;
	double r;

	if (!get_group(ld, root, "resilience", known, &g))
		return false;
	if (!g)
		return true;
	if (!get_choice(ld, g, "on_dns_outage", outage_choices, &outage) ||
	    !get_uns(ld, g, "outage_window", 10, 100000, &c->outage_window))
		return false;
	c->on_dns_outage = (enum outage_action)outage;
	s = config_setting_get_member(g, "outage_ratio");
	if (!s)
		return true;
	if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		r = config_setting_get_float(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT ||
	         config_setting_type(s) == CONFIG_TYPE_INT64)
		r = (double)config_setting_get_int64(s);
	else
		return fail_at(ld, s, "'%s': expected a number", sname(ld, s));
	if (!(r > 0 && r <= 1)) /* also refuses NaN */
		return fail_at(ld, s, "'%s': %g is out of range (0 < ratio <= 1)", sname(ld, s), r);
	c->outage_ratio = r;
	return true;
}

static bool load_root(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"resolver",       "cache",  "checks",     "actions",
	                                    "bogus_networks", "skip",   "mode",       "log",
	                                    "milter",         "policy", "resilience", NULL};
	int mode = c->mode;

	if (!check_members(ld, root, known))
		return false;
	if (!load_resolver(ld, root, c) || !load_cache(ld, root, c) || !load_checks(ld, root, c) ||
	    !load_actions(ld, root, c) || !load_bogus(ld, root, c) || !load_skip(ld, root, c) ||
	    !get_choice(ld, root, "mode", mode_choices, &mode) || !load_log(ld, root, c) ||
	    !load_milter(ld, root, c) || !load_policy(ld, root, c) || !load_resilience(ld, root, c))
		return false;
	c->mode = (enum mode)mode;
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Public API */

static void config_free(struct config *c)
{
	size_t i;

	if (!c)
		return;
	free(c->path);
	for (i = 0; i < c->nservers; i++)
		free(c->servers[i]);
	free(c->servers);
	netlist_free(&c->bogus_networks);
	domlist_free(&c->skip_domains);
	netlist_free(&c->skip_clients);
	free(c->skip_domains_file);
	free(c->skip_clients_file);
	netlist_free(&c->policy_allow_clients);
	free(c->policy_allow_clients_file);
	free(c->milter_socket);
	free(c->policy_listen);
	free(c);
}

int config_set_servers(struct config *c, const char *const *servers, size_t n, char *err,
                       size_t errlen)
{
	char **v = n ? calloc(n, sizeof(*v)) : NULL;
	size_t i;
	if (n && !v)
		goto oom;
	for (i = 0; i < n; i++) {
		if (!server_valid(servers[i])) {
			snprintf(err, errlen,
			         "invalid server \"%.100s\" (expected IPv4[:port], [IPv6]:port or "
			         "IPv6; "
			         "port 1..65535)",
			         servers[i]);
			goto fail;
		}
		if (!(v[i] = strdup(servers[i])))
			goto oom;
	}
	for (size_t k = 0; k < c->nservers; k++)
		free(c->servers[k]);
	free(c->servers);
	c->servers = v;
	c->nservers = n;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	for (size_t k = 0; v && k < n; k++)
		free(v[k]);
	free(v);
	return -1;
}

struct config *config_load_chosen(const char *given, bool *defaults, char *err, size_t errlen)
{
	struct stat sb;
	*defaults = false;
	if (given)
		return config_load(given, err, errlen);
	if (stat(CONFIG_DEFAULT_PATH, &sb) == 0 || errno != ENOENT)
		return config_load(CONFIG_DEFAULT_PATH, err, errlen);
	*defaults = true;
	struct config *c = config_defaults();
	if (!c)
		snprintf(err, errlen, "out of memory");
	return c;
}

struct config *config_defaults(void)
{
	struct config *c = calloc(1, sizeof(*c));
	size_t v;

	if (!c)
		goto fail;
	c->refs = 1;
	c->timeout_ms = 3000;
	c->cache_max_entries = 100000;
	c->cache_min_ttl = 0;
	c->cache_max_ttl = 86400;
	c->cache_error_ttl = 30;
	c->check_sender = true;
	c->check_recipient = true;
	c->check_local_sender = false;
	c->mixed_null_mx = MIXED_NULL_IGNORE;
	for (v = 0; v < V__COUNT; v++)
		c->actions[v] = ACT_ACCEPT;
	c->actions[V_NULL_MX] = ACT_REJECT;
	c->actions[V_NXDOMAIN] = ACT_REJECT;
	c->actions[V_NO_MAIL_HOST] = ACT_REJECT;
	c->actions[V_BROKEN_MX] = ACT_TEMPFAIL;
	c->actions[V_MX_CNAME] = ACT_WARN;
	c->actions[V_DNS_ERROR] = ACT_TEMPFAIL;
	c->mode = MODE_ENFORCE;
	c->log_format = LOG_FORMAT_KV;
	c->log_facility = LOG_MAIL;
	c->policy_idle_timeout = 300;
	c->policy_max_connections = 20000;
	c->on_dns_outage = OUTAGE_TEMPFAIL;
	c->outage_ratio = 0.5;
	c->outage_window = 100;
	c->milter_timeout = 600;
	/* a unix socket (created mode 0660): only the MTA's group can speak to libmilter,
	 * which trusts its peer (docs/robustness.md); the path is inside Debian's Postfix chroot */
	c->milter_socket = strdup("unix:/var/spool/postfix/mxsane/milter.sock");
	c->policy_listen = strdup("inet:127.0.0.1:10045");
	if (!c->milter_socket || !c->policy_listen)
		goto fail;
	if (!netlist_add_builtin_bogus(&c->bogus_networks))
		goto fail;
	return c;
fail:
	config_free(c);
	return NULL;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
	struct loader ld = {.path = path, .err = err, .errlen = errlen};
	struct config *c = NULL;
	config_t cf;
	bool cf_init = false;
	char *text = NULL;
	size_t len = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!read_file(&ld, &text, &len))
		goto fail;
	if (!syntax_check(&ld, text, len))
		goto fail;
	/* libconfig 1.5 refuses a "# comment" on a last line without a newline */
	if (len && text[len - 1] != '\n') {
		text[len] = '\n';
		text[len + 1] = '\0';
	}
	config_init(&cf);
	cf_init = true;
	if (!config_read_string(&cf, text)) {
		/* only what the check above leaves to libconfig: "duplicate setting name",
		 * "mismatched element type in array" */
		fail_line(&ld, (unsigned)config_error_line(&cf), "syntax error: %s",
		          config_error_text(&cf) ? config_error_text(&cf) : "unknown");
		goto fail;
	}
	c = config_defaults();
	if (!c) {
		fail_oom(&ld);
		goto fail;
	}
	c->path = strdup(path);
	if (!c->path) {
		fail_oom(&ld);
		goto fail;
	}
	if (!load_root(&ld, config_root_setting(&cf), c))
		goto fail;
	config_destroy(&cf);
	free(text);
	return c;
fail:
	if (cf_init)
		config_destroy(&cf);
	free(text);
	config_unref(c);
	return NULL;
}

struct config *config_ref(struct config *c)
{
	if (c)
		c->refs++;
	return c;
}

void config_unref(struct config *c)
{
	if (!c || !c->refs)
		return;
	if (--c->refs == 0)
		config_free(c);
}
