/*
 * fuzz_dnsmsg.c - the DNS reply walker on arbitrary bytes.  Input layout: one byte choosing
 * the question type, one byte L, L bytes of question name, then the reply; so real replies
 * (fuzz/corpus/dnsmsg, captured from the test zones) match their question and reach the
 * record walking code.  Checks invariants on what comes back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = {DNS_T_MX, DNS_T_A, DNS_T_AAAA, DNS_T_CNAME};
	struct dns_reply r;
	char qname[256];

	if (size < 2 || (size_t)data[1] + 2 > size)
		return 0;
	uint16_t qtype = types[data[0] % 4];
	size_t ql = data[1];
	memcpy(qname, data + 2, ql);
	qname[ql] = '\0';
	data += 2 + ql;
	size -= 2 + ql;
	enum dns_status st = dns_parse_reply(data, size, qname, qtype, &r);
	if (st != r.status)
		abort();
	if (st == DNSR_OK) {
		if (r.n == 0 || r.n > DNS_MAX_RECORDS)
			abort();
		if (qtype == DNS_T_MX && !r.mx)
			abort();
		if ((qtype == DNS_T_A || qtype == DNS_T_AAAA) && !r.addr)
			abort();
		for (size_t i = 0; qtype == DNS_T_MX && i < r.n; i++)
			if (strlen(r.mx[i].host) > DOMAIN_MAX + 1)
				abort();
	} else if (r.n != 0) {
		abort();
	}
	if ((st != DNSR_MALFORMED && r.cnames > DNS_MAX_CNAME) || strlen(r.canon) > DOMAIN_MAX + 1)
		abort();
	/* what the engine does next: pack it into a record set */
	struct rrset *s = rrset_new(qname, qtype, &r, NULL, r.ttl, 0);
	if (s) {
		if (qtype == DNS_T_MX) {
			const char *cur = NULL;
			struct mx_rec m = {0};
			size_t k = 0;
			while (rrset_mx_next(s, &cur, &m))
				k++;
			if (k != rrset_count(s))
				abort();
		} else {
			for (size_t i = 0; i < rrset_count(s); i++)
				if (!rrset_addr(s, i))
					abort();
		}
		rrset_unref(s);
	}
	dns_reply_clear(&r);
	return 0;
}
