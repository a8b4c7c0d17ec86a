/*
 * confsyntax.c - the syntax check every configuration file passes before libconfig reads it
 * (confsyntax.h).
 */
#include "confsyntax.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

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
	unsigned err_line; /* the error, once one is found */
	char *err;
	size_t errlen;
	char val[80]; /* a piece of the text for a message */
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

/* Record the error "message" at line; always returns false. */
__attribute__((format(printf, 3, 4))) static bool fail_line(struct lexer *lx, unsigned line,
                                                            const char *fmt, ...)
{
	va_list ap;
	lx->err_line = line;
	va_start(ap, fmt);
	vsnprintf(lx->err, lx->errlen, fmt, ap);
	va_end(ap);
	return false;
}

static const char *sanitize(struct lexer *lx, const char *t, size_t n)
{
	text_printable(lx->val, sizeof(lx->val), t, n, 0);
	return lx->val;
}

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
		return fail_line(lx, lx->tline, "integer %s does not fit in %u bits",
		                 sanitize(lx, t + p, n), bits);
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
		return fail_line(lx, lx->tline, "syntax error: unterminated string");
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
				return fail_line(lx, start, "syntax error: unterminated comment");
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
		return fail_line(lx, lx->tline,
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
		return fail_line(lx, lx->tline, "syntax error: unexpected character '%s'",
		                 sanitize(lx, t + p, 1));
	lx->pos = p + n;
	return true;
}

static bool unexpected(struct lexer *lx)
{
	if (lx->kind == T_EOF)
		return fail_line(lx, lx->tline, "syntax error: unexpected end of file");
	return fail_line(lx, lx->tline, "syntax error: unexpected '%s'",
	                 sanitize(lx, lx->t + lx->start, lx->pos - lx->start));
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
		return fail_line(lx, lx->tline, "syntax error: nested more than %u levels deep",
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

bool confsyntax_check(const char *text, size_t len, unsigned *line, char *err, size_t errlen)
{
	struct lexer lx = {
	        .t = text, .len = len, .line = 1, .bol = true, .err = err, .errlen = errlen};
	const char *nul = memchr(text, '\0', len);
	bool ok;

	if (nul) {
		for (size_t i = 0; text + i < nul; i++)
			lx.line += text[i] == '\n';
		ok = fail_line(&lx, lx.line, "NUL byte in the file");
	} else {
		ok = lex_next(&lx) && parse_settings(&lx, 0) &&
		     (lx.kind == T_EOF || unexpected(&lx));
	}
	*line = lx.err_line;
	return ok;
}
