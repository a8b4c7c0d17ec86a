/*
 * netindex.c - per-prefix-length sorted tables of networks (see netindex.h).
 *
 * An IPv4 network is a 32-bit number, an IPv6 network two 64-bit halves, host bits cleared.
 * For each prefix length in use the table of that length is sorted and free of duplicates,
 * and a lookup clears the host bits of the address for that length and bisects.
 */
#include "netindex.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netlist.h"

struct key6 {
	uint64_t hi, lo;
};

struct netindex {
	uint32_t *v4[33];
	size_t n4[33];
	struct key6 *v6[129];
	size_t n6[129];
	uint8_t len4[33], len6[129]; /* the lengths in use, longest first */
	unsigned nlen4, nlen6;
};

static uint32_t load32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t load64(const uint8_t *p)
{
	return (uint64_t)load32(p) << 32 | load32(p + 4);
}

static uint32_t mask32(unsigned plen)
{
	return plen == 0 ? 0 : ~(uint32_t)0 << (32 - plen);
}

static struct key6 key6_of(const uint8_t *a, unsigned plen)
{
	struct key6 k = {load64(a), load64(a + 8)};

	if (plen <= 64) {
		k.hi &= plen == 0 ? 0 : ~(uint64_t)0 << (64 - plen);
		k.lo = 0;
	} else {
		k.lo &= plen == 128 ? ~(uint64_t)0 : ~(uint64_t)0 << (128 - plen);
	}
	return k;
}

static int cmp32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp6(const void *a, const void *b)
{
	const struct key6 *x = a, *y = b;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort and drop duplicates; returns the new count. */
static size_t sort_unique(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	char *p = v;
	size_t out = 0;

	if (n == 0)
		return 0;
	qsort(v, n, size, cmp);
	for (size_t i = 1; i < n; i++)
		if (cmp(p + out * size, p + i * size) != 0)
			memcpy(p + ++out * size, p + i * size, size);
	return out + 1;
}

void netindex_free(struct netindex *x)
{
	if (!x)
		return;
	for (unsigned i = 0; i <= 32; i++)
		free(x->v4[i]);
	for (unsigned i = 0; i <= 128; i++)
		free(x->v6[i]);
	free(x);
}

struct netindex *netindex_build(const struct cidr *v, size_t n)
{
	struct netindex *x = calloc(1, sizeof(*x));
	size_t fill4[33] = {0}, fill6[129] = {0};

	if (!x)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (v[i].family == AF_INET && v[i].plen <= 32)
			x->n4[v[i].plen]++;
		else if (v[i].family == AF_INET6 && v[i].plen <= 128)
			x->n6[v[i].plen]++;
	}
	for (unsigned l = 0; l <= 32; l++)
		if (x->n4[l] && !(x->v4[l] = malloc(x->n4[l] * sizeof(uint32_t))))
			goto fail;
	for (unsigned l = 0; l <= 128; l++)
		if (x->n6[l] && !(x->v6[l] = malloc(x->n6[l] * sizeof(struct key6))))
			goto fail;
	for (size_t i = 0; i < n; i++) {
		unsigned l = v[i].plen;
		if (v[i].family == AF_INET && l <= 32)
			x->v4[l][fill4[l]++] = load32(v[i].addr) & mask32(l);
		else if (v[i].family == AF_INET6 && l <= 128)
			x->v6[l][fill6[l]++] = key6_of(v[i].addr, l);
	}
	for (int l = 32; l >= 0; l--) {
		if (!x->n4[l])
			continue;
		x->n4[l] = sort_unique(x->v4[l], x->n4[l], sizeof(uint32_t), cmp32);
		x->len4[x->nlen4++] = (uint8_t)l;
	}
	for (int l = 128; l >= 0; l--) {
		if (!x->n6[l])
			continue;
		x->n6[l] = sort_unique(x->v6[l], x->n6[l], sizeof(struct key6), cmp6);
		x->len6[x->nlen6++] = (uint8_t)l;
	}
	return x;
fail:
	netindex_free(x);
	return NULL;
}

static bool find32(const uint32_t *v, size_t n, uint32_t k)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < k)
			lo = mid + 1;
		else if (v[mid] > k)
			hi = mid;
		else
			return true;
	}
	return false;
}

static bool find6(const struct key6 *v, size_t n, struct key6 k)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp6(&v[mid], &k);
		if (c < 0)
			lo = mid + 1;
		else if (c > 0)
			hi = mid;
		else
			return true;
	}
	return false;
}

bool netindex_match(const struct netindex *x, int family, const void *addr)
{
	if (!x || !addr)
		return false;
	if (family == AF_INET) {
		uint32_t a = load32(addr);
		for (unsigned i = 0; i < x->nlen4; i++) {
			unsigned l = x->len4[i];
			if (find32(x->v4[l], x->n4[l], a & mask32(l)))
				return true;
		}
	} else if (family == AF_INET6) {
		for (unsigned i = 0; i < x->nlen6; i++) {
			unsigned l = x->len6[i];
			if (find6(x->v6[l], x->n6[l], key6_of(addr, l)))
				return true;
		}
	}
	return false;
}
