/*
 * fuzz_addr.c - the RFC 5321 address parser and domain normaliser on arbitrary bytes
 * (embedded NULs included: the parser is bounded by len).  Checks that a parsed domain is
 * itself a fixed point of domain_normalize.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr_parsed a;
	bool ok = addr_parse((const char *)data, size, &a);
	if (ok != (a.kind != ADDR_INVALID))
		abort();
	if (a.kind == ADDR_DOMAIN) {
		char again[DOMAIN_MAX + 1], why[128];
		size_t l = strlen(a.domain);
		if (l == 0 || l > DOMAIN_MAX)
			abort();
		if (!domain_normalize(a.domain, l, again, why, sizeof(why)) ||
		    strcmp(again, a.domain) != 0)
			abort();
	}
	if (a.kind == ADDR_INVALID && a.reason[0] == '\0')
		abort();
	char out[DOMAIN_MAX + 1], why[128];
	(void)domain_normalize((const char *)data, size, out, why, sizeof(why));
	if (memchr(data, 0, size) == NULL && size < 300) {
		char *z = malloc(size + 1);
		if (z) {
			memcpy(z, data, size);
			z[size] = '\0';
			(void)domain_is_ip_literal(z);
			free(z);
		}
	}
	return 0;
}
