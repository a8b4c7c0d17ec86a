/*
 * rpolicy.c - the recipient policies file (see rpolicy.h): parsing a line, loading the file
 * into a domain table whose values index an array of complete entries.
 */
#include "rpolicy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domtab.h"
#include "listfile.h"

struct rpolicies {
	struct domtab *t;
	struct rpolicy *v; /* indexed by the table's values */
	size_t n, cap;
	char *pool; /* the entries' names, NUL-terminated, one after the other */
	size_t poollen, poolcap;
};

/* The keys that name a verdict class, as in the main file's actions group. */
static const struct {
	const char *name;
	enum verdict v;
} class_keys[] = {
        {"null_mx", V_NULL_MX},     {"nxdomain", V_NXDOMAIN}, {"no_mail_host", V_NO_MAIL_HOST},
        {"broken_mx", V_BROKEN_MX}, {"mx_cname", V_MX_CNAME}, {"dns_error", V_DNS_ERROR},
};
#define NCLASS (sizeof(class_keys) / sizeof(class_keys[0]))

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Text from the file, safe to quote in a message: printable ASCII, at most 60 octets. */
static const char *quoted(char *out, size_t outlen, const char *t, size_t n)
{
	size_t i, max = outlen > 4 ? outlen - 4 : 0;

	for (i = 0; i < n && i < max && i < 60; i++)
		out[i] = (t[i] >= 0x20 && t[i] < 0x7f) ? t[i] : '?';
	out[i] = '\0';
	if (i < n)
		strcat(out, "...");
	return out;
}

static bool is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* One "key=value" word.  seen has a bit per key (0: check_sender, 1: mode, 2..: classes). */
static bool parse_setting(const char *w, size_t n, struct rpolicy *p, unsigned *seen, char *why,
                          size_t whylen)
{
	char q[80], q2[80];
	const char *eq = memchr(w, '=', n);
	size_t kl, vl;
	const char *val;
	unsigned bit;
	enum action a;

	if (!eq) {
		snprintf(why, whylen, "'%s': expected key=value", quoted(q, sizeof(q), w, n));
		return false;
	}
	kl = (size_t)(eq - w);
	val = eq + 1;
	vl = n - kl - 1;
	if (is(w, kl, "check_sender")) {
		bit = 0;
		if (is(val, vl, "true"))
			p->check_sender = 1;
		else if (is(val, vl, "false"))
			p->check_sender = 0;
		else
			goto bad_value;
	} else if (is(w, kl, "mode")) {
		bit = 1;
		if (is(val, vl, "enforce"))
			p->mode = MODE_ENFORCE;
		else if (is(val, vl, "monitor"))
			p->mode = MODE_MONITOR;
		else
			goto bad_value;
	} else {
		size_t k;
		for (k = 0; k < NCLASS && !is(w, kl, class_keys[k].name); k++)
			;
		if (k == NCLASS) {
			snprintf(
			        why, whylen,
			        "unknown key '%s' (expected check_sender, mode, null_mx, nxdomain, "
			        "no_mail_host, broken_mx, mx_cname or dns_error)",
			        quoted(q, sizeof(q), w, kl));
			return false;
		}
		bit = 2 + (unsigned)k;
		char v[16];
		if (vl >= sizeof(v))
			goto bad_value;
		memcpy(v, val, vl);
		v[vl] = '\0';
		if (!action_from_name(v, &a))
			goto bad_value;
		if (class_keys[k].v == V_DNS_ERROR && a == ACT_REJECT) {
			snprintf(why, whylen,
			         "dns_error=reject: a temporary DNS failure must never bounce "
			         "mail; use "
			         "tempfail, warn or accept");
			return false;
		}
		p->actions[class_keys[k].v] = (uint8_t)a;
	}
	if (*seen & (1u << bit)) {
		snprintf(why, whylen, "'%s' is given twice", quoted(q, sizeof(q), w, kl));
		return false;
	}
	*seen |= 1u << bit;
	return true;
bad_value:
	snprintf(why, whylen, "'%s': invalid value '%s' (expected %s)", quoted(q, sizeof(q), w, kl),
	         quoted(q2, sizeof(q2), val, vl),
	         bit == 0   ? "true or false"
	         : bit == 1 ? "enforce or monitor"
	                    : "reject, tempfail, warn or accept");
	return false;
}

bool rpolicy_parse(const char *text, size_t len, const struct rpolicy *base, struct rpolicy *out,
                   char *entry, char *why, size_t whylen)
{
	size_t i = 0, dl;
	unsigned seen = 0;

	*out = *base;
	while (i < len && !is_blank(text[i]))
		i++;
	dl = i;
	if (!listfile_domain_entry(text, dl, entry, why, whylen))
		return false;
	while (i < len) {
		while (i < len && is_blank(text[i]))
			i++;
		size_t s = i;
		while (i < len && !is_blank(text[i]))
			i++;
		if (i > s && !parse_setting(text + s, i - s, out, &seen, why, whylen))
			return false;
	}
	return true;
}

struct load {
	struct rpolicies *t;
	const struct rpolicy *base;
};

static bool add_line(void *arg, char *text, size_t len, char *why, size_t whylen)
{
	struct load *ld = arg;
	struct rpolicies *t = ld->t;
	char entry[DOMAIN_MAX + 2], q[80];
	struct rpolicy p;
	uint32_t old;

	if (!rpolicy_parse(text, len, ld->base, &p, entry, why, whylen))
		return false;
	if (t->n >= DOMTAB_MAX_ENTRIES) {
		snprintf(why, whylen, "more than %u entries", DOMTAB_MAX_ENTRIES);
		return false;
	}
	size_t el = strlen(entry) + 1;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct rpolicy *nv = realloc(t->v, cap * sizeof(*nv));
		if (!nv)
			goto oom;
		t->v = nv;
		t->cap = cap;
	}
	if (t->poollen + el > t->poolcap) {
		size_t cap = t->poolcap ? t->poolcap * 2 : 4096;
		while (cap < t->poollen + el)
			cap *= 2;
		char *np = realloc(t->pool, cap);
		if (!np)
			goto oom;
		t->pool = np;
		t->poolcap = cap;
	}
	switch (domtab_add(t->t, entry, (uint32_t)t->n, &old)) {
	case DOMTAB_ADDED: break;
	case DOMTAB_EXISTS:
		snprintf(why, whylen, "'%s' is given twice (each domain entry once)",
		         quoted(q, sizeof(q), entry, strlen(entry)));
		return false;
	case DOMTAB_INVALID:
		snprintf(why, whylen, "invalid domain entry '%s'",
		         quoted(q, sizeof(q), entry, strlen(entry)));
		return false;
	case DOMTAB_FULL:
		snprintf(why, whylen, "more than %u entries", DOMTAB_MAX_ENTRIES);
		return false;
	case DOMTAB_NOMEM: goto oom;
	}
	memcpy(t->pool + t->poollen, entry, el);
	p.name_off = (uint32_t)t->poollen;
	t->poollen += el;
	t->v[t->n++] = p;
	return true;
oom:
	snprintf(why, whylen, "out of memory");
	return false;
}

struct rpolicies *rpolicies_load(const char *path, const struct rpolicy *base, char *err,
                                 size_t errlen)
{
	struct rpolicies *t = calloc(1, sizeof(*t));
	struct load ld = {t, base};

	if (!t || !(t->t = domtab_new())) {
		snprintf(err, errlen, "%s: out of memory", path);
		rpolicies_free(t);
		return NULL;
	}
	if (!listfile_each(path, add_line, &ld, err, errlen)) {
		rpolicies_free(t);
		return NULL;
	}
	return t;
}

void rpolicies_free(struct rpolicies *t)
{
	if (!t)
		return;
	domtab_free(t->t);
	free(t->v);
	free(t->pool);
	free(t);
}

const struct rpolicy *rpolicies_lookup(const struct rpolicies *t, const char *domain)
{
	uint32_t i;

	if (!t || !domtab_lookup(t->t, domain, &i) || i >= t->n)
		return NULL;
	return &t->v[i];
}

const char *rpolicies_name(const struct rpolicies *t, const struct rpolicy *p)
{
	return t->pool + p->name_off;
}

size_t rpolicies_count(const struct rpolicies *t)
{
	return t ? t->n : 0;
}
