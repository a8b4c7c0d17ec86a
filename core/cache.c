/*
 * cache.c - record-set cache: SipHash-keyed chained hash table with an intrusive LRU list.
 */
#include "cache.h"

#include "addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* One allocation: header, then name '\0', [target '\0'], [why '\0'], then records.
 * MX records are packed as pref (2 octets, big-endian), flag octet, host '\0'. */
struct rrset {
	struct rrset *lprev, *lnext; /* eviction list: newest (or spared) first */
	uint64_t expires;            /* monotonic ms */
	uint64_t hash;               /* of (name, type), while cached */
	uint64_t memo;               /* MX sets: the engine's memo (rrset_mx_memo), 0: none */
	uint32_t refs;
	uint8_t qtype; /* A, AAAA or MX: all below 256 */
	uint8_t used;  /* looked up since the eviction hand last passed (second chance) */
	uint16_t n;
	uint16_t target_off, why_off, rec_off; /* offsets into data; 0 = absent */
	uint8_t status;
	uint8_t flags;
	bool cut; /* the reply held more records than DNS_MAX_RECORDS: the rest were dropped */
	uint32_t size;
	char data[];
};

#define RF_ALIAS        0x01
#define RF_CACHED       0x02
#define RF_JUDGED       0x04 /* RF_USABLE holds the engine's judgment of the addresses */
#define RF_USABLE       0x08
#define RF_CNAMES_SHIFT 4 /* bits 4..7: CNAME hops in the reply */

/* The table: open addressing with linear probing, the hash next to each pointer so that a
 * lookup reads the one entry it finds (with many domains cached, each entry read is a cache
 * miss: chaining read every entry along its chain). */
struct slot {
	uint64_t hash;
	struct rrset *s; /* NULL: empty */
};

struct cache {
	struct slot *tab;
	size_t cap; /* power of two; at most half full */
	size_t count, bytes;
	uint32_t max;
	struct rrset *head, *tail;
	uint64_t k0, k1;
	uint64_t evictions; /* entries dropped to stay within max (not expiry, not clears) */
};

/* ---- SipHash-1-3 (Aumasson, Bernstein), 64-bit output ---- */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

static uint64_t siphash13(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, left = len & 7, end = len - left;

	for (i = 0; i < end; i += 8) {
		memcpy(&m, in + i, 8);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; j < left; j++)
		b |= (uint64_t)in[end + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t key_hash(const struct cache *c, const char *name, uint16_t qtype)
{
	uint8_t buf[DOMAIN_MAX + 8];
	size_t l = strnlen(name, DOMAIN_MAX + 1);
	memcpy(buf, name, l);
	buf[l] = (uint8_t)(qtype >> 8);
	buf[l + 1] = (uint8_t)qtype;
	return siphash13(c->k0, c->k1, buf, l + 2);
}

/* ---- record sets ---- */

/*
 * MX records are stored in preference order (stable: equal preferences keep the order of
 * the answer), each as preference (2 octets, big-endian), flags (1 octet, MXF_*) and the
 * exchange with its NUL.  What the engine asks of every exchange at every check - is it
 * valid, an IP literal, a repeat of a more preferred one - is answered here, once.
 * false on out of memory.
 */
static bool pack_mx(char *p, const struct dns_mx *mx, size_t n)
{
	size_t *order = n ? malloc(n * sizeof(*order)) : NULL;
	if (n && !order)
		return false;
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		for (; j > 0 && mx[order[j - 1]].pref > mx[i].pref; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (size_t k = 0; k < n; k++) {
		const struct dns_mx *m = &mx[order[k]];
		size_t hl = strlen(m->host) + 1;
		uint8_t flags = m->host_invalid ? MXF_INVALID : 0;
		if (m->host[0] && !m->host_invalid && domain_is_ip_literal(m->host))
			flags |= MXF_IPLIT;
		for (size_t e = 0; e < k; e++)
			if (strcmp(mx[order[e]].host, m->host) == 0) {
				flags |= MXF_DUP;
				break;
			}
		*p++ = (char)(m->pref >> 8);
		*p++ = (char)(m->pref & 0xff);
		*p++ = (char)flags;
		memcpy(p, m->host, hl);
		p += hl;
	}
	free(order);
	return true;
}

struct rrset *rrset_new(const char *name, uint16_t qtype, const struct dns_reply *r,
                        const char *why, uint32_t ttl, uint64_t now)
{
	size_t nlen = strlen(name) + 1, size = nlen, tlen = 0, wlen = 0, rlen = 0;
	enum dns_status st = r ? r->status : DNSR_TEMPFAIL;
	bool alias = r && r->cnames > 0;
	const char *target = alias ? r->canon : NULL;
	const char *reason = r ? (r->why[0] ? r->why : NULL) : why;
	size_t n = (r && st == DNSR_OK) ? r->n : 0;

	if (n > UINT16_MAX)
		n = UINT16_MAX;
	if (qtype > UINT8_MAX)
		return NULL; /* only A, AAAA and MX sets are kept */
	if (target)
		tlen = strlen(target) + 1;
	if (reason)
		wlen = strlen(reason) + 1;
	if (qtype == DNS_T_MX)
		for (size_t i = 0; i < n; i++)
			rlen += 3 + strlen(r->mx[i].host) + 1;
	else
		rlen = n * (qtype == DNS_T_A ? 4 : 16);
	if (size + tlen + wlen > UINT16_MAX)
		return NULL;        /* names and a reason: far below, but keep the offsets honest */
	size += tlen + wlen + rlen; /* records need no offsets: up to 256 full-length names */

	struct rrset *s = calloc(1, sizeof(*s) + size);
	if (!s)
		return NULL;
	s->refs = 1;
	s->qtype = (uint8_t)qtype;
	s->status = (uint8_t)st;
	unsigned hops = r ? (r->cnames > 15 ? 15 : r->cnames) : 0;
	s->flags = (uint8_t)((alias ? RF_ALIAS : 0) | (hops << RF_CNAMES_SHIFT));
	s->n = (uint16_t)n;
	s->cut = r && st == DNSR_OK && r->total > r->n;
	s->size = (uint32_t)(sizeof(*s) + size);
	s->expires = now + (uint64_t)ttl * 1000;
	char *p = s->data;
	memcpy(p, name, nlen);
	p += nlen;
	if (target) {
		s->target_off = (uint16_t)(p - s->data);
		memcpy(p, target, tlen);
		p += tlen;
	}
	if (reason) {
		s->why_off = (uint16_t)(p - s->data);
		memcpy(p, reason, wlen);
		p += wlen;
	}
	s->rec_off = (uint16_t)(p - s->data);
	if (qtype == DNS_T_MX) {
		if (n && !pack_mx(p, r->mx, n)) {
			free(s);
			return NULL;
		}
		return s;
	}
	for (size_t i = 0; i < n; i++) {
		size_t al = qtype == DNS_T_A ? 4 : 16;
		memcpy(p, r->addr[i], al);
		p += al;
	}
	return s;
}

struct rrset *rrset_ref(struct rrset *s)
{
	if (s)
		s->refs++;
	return s;
}

void rrset_unref(struct rrset *s)
{
	if (s && --s->refs == 0)
		free(s);
}

const char *rrset_name(const struct rrset *s)
{
	return s->data;
}
uint16_t rrset_type(const struct rrset *s)
{
	return s->qtype;
}
enum dns_status rrset_status(const struct rrset *s)
{
	return (enum dns_status)s->status;
}
const char *rrset_target(const struct rrset *s)
{
	return s->target_off ? s->data + s->target_off : NULL;
}
bool rrset_is_alias(const struct rrset *s)
{
	return s->flags & RF_ALIAS;
}
unsigned rrset_cnames(const struct rrset *s)
{
	return s->flags >> RF_CNAMES_SHIFT;
}
bool rrset_cut(const struct rrset *s)
{
	return s->cut;
}
const char *rrset_why(const struct rrset *s)
{
	return s->why_off ? s->data + s->why_off : "";
}
bool rrset_judgment(const struct rrset *s, bool *usable)
{
	if (!(s->flags & RF_JUDGED))
		return false;
	*usable = s->flags & RF_USABLE;
	return true;
}
void rrset_set_judgment(struct rrset *s, bool usable)
{
	s->flags = (uint8_t)((s->flags & ~RF_USABLE) | RF_JUDGED | (usable ? RF_USABLE : 0));
}
uint64_t rrset_mx_memo(const struct rrset *s)
{
	return s->memo;
}
void rrset_set_mx_memo(struct rrset *s, uint64_t until)
{
	s->memo = until;
}
uint64_t rrset_expires(const struct rrset *s)
{
	return s->expires;
}
size_t rrset_count(const struct rrset *s)
{
	return s->n;
}
size_t rrset_size(const struct rrset *s)
{
	return s->size;
}

bool rrset_mx_next(const struct rrset *s, const char **cursor, struct mx_rec *rec)
{
	const char *p;
	if (s->qtype != DNS_T_MX || s->n == 0)
		return false;
	if (!*cursor) {
		p = s->data + s->rec_off;
	} else {
		p = *cursor;
		if (p == rec->host - 3 && rec->hostlen) /* the usual call: rec is the last one */
			p += 3 + rec->hostlen + 1;
		else
			p += 3 + strlen(p + 3) + 1;
		if (p >= s->data + (s->size - sizeof(*s)))
			return false;
	}
	*cursor = p;
	rec->pref = (uint16_t)(((uint8_t)p[0] << 8) | (uint8_t)p[1]);
	rec->flags = (uint8_t)p[2];
	rec->host = p + 3;
	rec->hostlen = strlen(rec->host);
	return true;
}

const uint8_t *rrset_addr(const struct rrset *s, size_t i)
{
	if ((s->qtype != DNS_T_A && s->qtype != DNS_T_AAAA) || i >= s->n)
		return NULL;
	return (const uint8_t *)s->data + s->rec_off + i * (s->qtype == DNS_T_A ? 4 : 16);
}

uint32_t cache_ttl_left(uint64_t expires, uint64_t now)
{
	if (expires <= now)
		return 0;
	return (uint32_t)((expires - now + 999) / 1000);
}
uint32_t rrset_ttl_left(const struct rrset *s, uint64_t now)
{
	return cache_ttl_left(s->expires, now);
}

/* ---- the cache ---- */

struct cache *cache_new(uint32_t max_entries)
{
	struct cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->max = max_entries;
	c->cap = 64;
	c->tab = calloc(c->cap, sizeof(*c->tab));
	if (!c->tab) {
		free(c);
		return NULL;
	}
	if (getrandom(&c->k0, sizeof(c->k0), GRND_NONBLOCK) != sizeof(c->k0) ||
	    getrandom(&c->k1, sizeof(c->k1), GRND_NONBLOCK) != sizeof(c->k1)) {
		/* Not fatal: fall back to weaker but still per-process keys. */
		c->k0 = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)c;
		c->k1 = (uint64_t)clock() ^ (uint64_t)(uintptr_t)&c;
	}
	return c;
}

static void lru_unlink(struct cache *c, struct rrset *s)
{
	if (s->lprev)
		s->lprev->lnext = s->lnext;
	else
		c->head = s->lnext;
	if (s->lnext)
		s->lnext->lprev = s->lprev;
	else
		c->tail = s->lprev;
	s->lprev = s->lnext = NULL;
}

static void lru_push_front(struct cache *c, struct rrset *s)
{
	s->lprev = NULL;
	s->lnext = c->head;
	if (c->head)
		c->head->lprev = s;
	c->head = s;
	if (!c->tail)
		c->tail = s;
}

/* Empty slot i and move later entries of its run back where they belong (deletion without
 * tombstones, for linear probing). */
static void slot_clear(struct cache *c, size_t i)
{
	size_t mask = c->cap - 1, j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!c->tab[j].s)
			break;
		size_t home = c->tab[j].hash & mask;
		/* can the entry at j move to i?  yes unless its home lies cyclically in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			c->tab[i] = c->tab[j];
			i = j;
		}
	}
	c->tab[i].s = NULL;
	c->tab[i].hash = 0;
}

/* Remove s from table and list and drop the cache's reference. */
static void drop(struct cache *c, struct rrset *s)
{
	size_t mask = c->cap - 1;
	for (size_t i = s->hash & mask; c->tab[i].s; i = (i + 1) & mask)
		if (c->tab[i].s == s) {
			slot_clear(c, i);
			break;
		}
	lru_unlink(c, s);
	s->flags &= (uint8_t)~RF_CACHED;
	c->count--;
	c->bytes -= s->size;
	rrset_unref(s);
}

void cache_clear(struct cache *c)
{
	if (!c)
		return;
	while (c->head)
		drop(c, c->head);
}

void cache_forget_judgments(struct cache *c)
{
	for (struct rrset *s = c ? c->head : NULL; s; s = s->lnext) {
		s->flags &= (uint8_t) ~(RF_JUDGED | RF_USABLE);
		s->memo = 0;
	}
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	cache_clear(c);
	free(c->tab);
	free(c);
}

/*
 * Evict down to limit entries, oldest first, but an entry looked up since it was last
 * considered gets a second chance (moved to the front, mark cleared): least recently used,
 * approximately, without touching the list on every hit (cache_get writes only the entry
 * itself - with a large cache every list update was a cache miss or two).
 */
static void evict_to(struct cache *c, size_t limit)
{
	while (c->count > limit && c->tail) {
		struct rrset *s = c->tail;
		if (s->used) {
			s->used = 0;
			lru_unlink(c, s);
			lru_push_front(c, s);
			continue;
		}
		drop(c, s);
		c->evictions++;
	}
}

void cache_set_limit(struct cache *c, uint32_t max_entries)
{
	c->max = max_entries;
	evict_to(c, max_entries);
}

/* The slot holding (name, qtype), or the empty slot where it would go. */
static size_t find(const struct cache *c, const char *name, uint16_t qtype, uint64_t h)
{
	size_t mask = c->cap - 1, i = h & mask;
	for (; c->tab[i].s; i = (i + 1) & mask) {
		const struct rrset *s = c->tab[i].s;
		if (c->tab[i].hash == h && s->qtype == qtype && strcmp(s->data, name) == 0)
			break;
	}
	return i;
}

struct rrset *cache_get(struct cache *c, const char *name, uint16_t qtype, uint64_t now)
{
	uint64_t h = key_hash(c, name, qtype);
	struct rrset *s = c->tab[find(c, name, qtype, h)].s;
	if (!s)
		return NULL;
	if (s->expires <= now) {
		drop(c, s);
		return NULL;
	}
	s->used = 1;
	return rrset_ref(s);
}

/* Double the table.  false on out of memory (the table stays as it is). */
static bool grow(struct cache *c)
{
	size_t ncap = c->cap * 2, mask = ncap - 1;
	struct slot *t = calloc(ncap, sizeof(*t));
	if (!t)
		return false;
	for (size_t i = 0; i < c->cap; i++) {
		if (!c->tab[i].s)
			continue;
		size_t j = c->tab[i].hash & mask;
		while (t[j].s)
			j = (j + 1) & mask;
		t[j] = c->tab[i];
	}
	free(c->tab);
	c->tab = t;
	c->cap = ncap;
	return true;
}

void cache_put(struct cache *c, struct rrset *s, uint64_t now)
{
	if (!c->max || s->expires <= now || (s->flags & RF_CACHED))
		return;
	uint64_t h = key_hash(c, s->data, s->qtype);
	struct rrset *old = c->tab[find(c, s->data, s->qtype, h)].s;
	if (old)
		drop(c, old);
	evict_to(c, c->max - 1);
	/* at most half full: probes stay short.  Out of memory: not stored. */
	if (2 * (c->count + 1) > c->cap && !grow(c))
		return;
	size_t i = find(c, s->data, s->qtype, h);
	c->tab[i].hash = h;
	c->tab[i].s = s;
	s->hash = h;
	s->flags |= RF_CACHED;
	rrset_ref(s);
	lru_push_front(c, s);
	c->count++;
	c->bytes += s->size;
}

size_t cache_entries(const struct cache *c)
{
	return c->count;
}

uint64_t cache_evictions(const struct cache *c)
{
	return c->evictions;
}

size_t cache_bytes(const struct cache *c)
{
	return c->bytes;
}
