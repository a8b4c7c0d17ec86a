/*
 * domtab.c - domain tables (see domtab.h): open addressing with linear probing over a pool
 * of entry strings, with a small filter in front.
 *
 * Memory is what bounds a table of a million entries: a slot is 12 bytes (pool offset, hash,
 * value) and an entry's text lives once in one pool as a length octet and its octets, with no
 * per-entry allocation.  The table is kept at most 70 % full, so a probe sequence is short.
 * A suffix entry is stored with its leading dot, so the suffix probes of a name are just the
 * name's own tails starting at each dot ("a.b.example" probes ".b.example" and ".example").
 *
 * A lookup must stay as cheap with a million entries as with none, and most lookups find
 * nothing.  Two things keep it so: the hash runs over a name from its last octet to its first,
 * so one pass gives the hash of the name and of every tail; and a blocked Bloom filter (one
 * 64-bit word per key, 3 bits set, a word per 16 slots: about 1 MiB for a million entries,
 * which stays in the CPU's caches) answers "not here" for nearly every absent key without
 * touching the 24 MiB of slots.
 */
#include "domtab.h"

#include <stdlib.h>
#include <string.h>

#define ENTRY_MAX 254 /* DOMAIN_MAX plus the leading dot of a suffix entry */

struct slot {
	uint32_t off1; /* pool offset + 1; 0: empty */
	uint32_t hash;
	uint32_t value;
};

struct domtab {
	struct slot *slots;
	size_t cap; /* a power of two */
	uint64_t *bloom;
	size_t bmask; /* bloom words - 1; cap / 16 words */
	size_t n;
	size_t nsuffix; /* entries with a leading dot: none, and a lookup is one probe */
	unsigned char *pool;
	size_t poollen, poolcap;
};

static inline unsigned char lower(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

#define FNV_BASIS 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

static inline uint32_t fold(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

/* FNV-1a (64 bits, folded) over the lower-cased octets, last octet first: the state after
 * the octets of a tail is the hash of that tail (see domtab_lookup). */
static uint32_t hash_of(const char *s, size_t len)
{
	uint64_t h = FNV_BASIS;

	for (size_t i = len; i-- > 0;) {
		h ^= lower((unsigned char)s[i]);
		h *= FNV_PRIME;
	}
	return fold(h);
}

/* The filter word of a hash and the 3 bits it sets there. */
static inline size_t bloom_word(const struct domtab *t, uint32_t h)
{
	return (size_t)((h * 0x9e3779b1u) >> 7) & t->bmask;
}

static inline uint64_t bloom_bits(uint32_t h)
{
	uint32_t y = (h ^ (h >> 15)) * 0x85ebca6bu;
	y ^= y >> 13;
	return 1ull << (y & 63) | 1ull << ((y >> 6) & 63) | 1ull << ((y >> 12) & 63);
}

static inline bool bloom_maybe(const struct domtab *t, uint32_t h)
{
	uint64_t b = bloom_bits(h);
	return (t->bloom[bloom_word(t, h)] & b) == b;
}

static void bloom_set(struct domtab *t, uint32_t h)
{
	t->bloom[bloom_word(t, h)] |= bloom_bits(h);
}

static bool same(const struct domtab *t, const struct slot *sl, const char *s, size_t len)
{
	const unsigned char *e = t->pool + sl->off1 - 1;

	if (e[0] != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (e[1 + i] != lower((unsigned char)s[i]))
			return false;
	return true;
}

/* The slot holding s, or the empty slot where it would go. */
static struct slot *find(const struct domtab *t, const char *s, size_t len, uint32_t h)
{
	size_t mask = t->cap - 1, i = h & mask;

	for (;;) {
		struct slot *sl = &t->slots[i];
		if (sl->off1 == 0 || (sl->hash == h && same(t, sl, s, len)))
			return sl;
		i = (i + 1) & mask;
	}
}

struct domtab *domtab_new(void)
{
	struct domtab *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cap = 64;
	t->bmask = t->cap / 16 - 1;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	t->bloom = calloc(t->bmask + 1, sizeof(*t->bloom));
	if (!t->slots || !t->bloom) {
		domtab_free(t);
		return NULL;
	}
	return t;
}

void domtab_free(struct domtab *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t->bloom);
	free(t->pool);
	free(t);
}

static bool grow_slots(struct domtab *t)
{
	size_t ncap = t->cap * 2, mask = ncap - 1;
	struct slot *ns = calloc(ncap, sizeof(*ns));
	uint64_t *nb = calloc(ncap / 16, sizeof(*nb));

	if (!ns || !nb) {
		free(ns);
		free(nb);
		return false;
	}
	free(t->bloom);
	t->bloom = nb;
	t->bmask = ncap / 16 - 1;
	for (size_t i = 0; i < t->cap; i++) {
		const struct slot *sl = &t->slots[i];
		size_t j;
		if (sl->off1 == 0)
			continue;
		for (j = sl->hash & mask; ns[j].off1 != 0; j = (j + 1) & mask)
			;
		ns[j] = *sl;
		bloom_set(t, sl->hash);
	}
	free(t->slots);
	t->slots = ns;
	t->cap = ncap;
	return true;
}

static bool grow_pool(struct domtab *t, size_t need)
{
	size_t ncap = t->poolcap ? t->poolcap : 4096;
	unsigned char *np;

	while (ncap - t->poollen < need)
		ncap *= 2;
	/* offsets are 32 bits: 16 M entries of at most 255 octets stay well below */
	if (ncap > UINT32_MAX - 1)
		ncap = UINT32_MAX - 1;
	if (ncap - t->poollen < need)
		return false;
	np = realloc(t->pool, ncap);
	if (!np)
		return false;
	t->pool = np;
	t->poolcap = ncap;
	return true;
}

enum domtab_status domtab_add(struct domtab *t, const char *entry, uint32_t value, uint32_t *old)
{
	size_t len;
	uint32_t h;
	struct slot *sl;

	if (!t || !entry)
		return DOMTAB_INVALID;
	len = strnlen(entry, ENTRY_MAX + 1);
	if (len == 0 || len > ENTRY_MAX || (len == 1 && entry[0] == '.'))
		return DOMTAB_INVALID;
	h = hash_of(entry, len);
	sl = find(t, entry, len, h);
	if (sl->off1 != 0) {
		if (old)
			*old = sl->value;
		return DOMTAB_EXISTS;
	}
	if (t->n >= DOMTAB_MAX_ENTRIES)
		return DOMTAB_FULL;
	if (t->poolcap - t->poollen < len + 1 && !grow_pool(t, len + 1))
		return DOMTAB_NOMEM;
	/* at most 70 % full */
	if ((t->n + 1) * 10 > t->cap * 7) {
		if (!grow_slots(t))
			return DOMTAB_NOMEM;
		sl = find(t, entry, len, h);
	}
	t->pool[t->poollen] = (unsigned char)len;
	for (size_t i = 0; i < len; i++)
		t->pool[t->poollen + 1 + i] = lower((unsigned char)entry[i]);
	sl->off1 = (uint32_t)t->poollen + 1;
	sl->hash = h;
	sl->value = value;
	bloom_set(t, h);
	t->poollen += len + 1;
	t->n++;
	if (entry[0] == '.')
		t->nsuffix++;
	return DOMTAB_ADDED;
}

static bool probe(const struct domtab *t, const char *s, size_t len, uint32_t h, uint32_t *value)
{
	const struct slot *sl;

	if (!bloom_maybe(t, h))
		return false;
	sl = find(t, s, len, h);
	if (sl->off1 == 0)
		return false;
	if (value)
		*value = sl->value;
	return true;
}

bool domtab_lookup(const struct domtab *t, const char *domain, uint32_t *value)
{
	/* where each tail starts (at a dot) and its hash; a name of at most 254 octets has at
	 * most 127 dots */
	uint8_t at[ENTRY_MAX / 2 + 1];
	uint32_t hs[ENTRY_MAX / 2 + 1];
	size_t len, n = 0;
	uint64_t h = FNV_BASIS;

	if (!t || !domain || t->n == 0)
		return false;
	len = strnlen(domain, ENTRY_MAX + 1);
	if (len == 0 || len > ENTRY_MAX)
		return false;
	for (size_t i = len; i-- > 0;) {
		h ^= lower((unsigned char)domain[i]);
		h *= FNV_PRIME;
		if (domain[i] == '.' && i > 0 && n < sizeof(at)) {
			at[n] = (uint8_t)i;
			hs[n++] = fold(h);
		}
	}
	if (probe(t, domain, len, fold(h), value))
		return true;
	if (t->nsuffix == 0)
		return false;
	/* the longest (most specific) tail first: the one found last in the pass above */
	while (n-- > 0)
		if (probe(t, domain + at[n], len - at[n], hs[n], value))
			return true;
	return false;
}

size_t domtab_count(const struct domtab *t)
{
	return t ? t->n : 0;
}

size_t domtab_bytes(const struct domtab *t)
{
	return t ? sizeof(*t) + t->cap * sizeof(*t->slots) + (t->bmask + 1) * sizeof(*t->bloom) +
	                       t->poolcap
	         : 0;
}

bool domlist_add(struct domlist *l, const char *normalized_entry)
{
	if (!l)
		return false;
	if (!l->t && !(l->t = domtab_new()))
		return false;
	switch (domtab_add(l->t, normalized_entry, 0, NULL)) {
	case DOMTAB_ADDED:
	case DOMTAB_EXISTS: return true;
	default: return false;
	}
}

bool domlist_match(const struct domlist *l, const char *domain)
{
	return l && domtab_lookup(l->t, domain, NULL);
}

size_t domlist_count(const struct domlist *l)
{
	return l ? domtab_count(l->t) : 0;
}

void domlist_free(struct domlist *l)
{
	if (!l)
		return;
	domtab_free(l->t);
	l->t = NULL;
}
