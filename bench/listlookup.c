/*
 * listlookup.c - the cost of one skip-list lookup, in nanoseconds, with the lists of the
 * lists scenario loaded and with empty lists: a figure the machine's load barely moves, next
 * to the throughput comparison of bench/run (which it does).
 *
 *   listlookup DOMAIN_FILE CLIENT_FILE CORPUS_DOMAINS
 *
 * Looks up every corpus domain (none listed: each lookup walks all of a name's labels) in the
 * domain list, and 198.18.x.y, loadgen's client addresses, in the client list, many times
 * over; prints "LISTLOOKUP domain_ns=.. domain_empty_ns=.. client_ns=.. client_empty_ns=..
 * hits=0".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "listfile.h"

#define NAMES  4096
#define ROUNDS 500

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char names[NAMES][256];
static char ips[NAMES][32];

static double domains_ns(const struct domlist *d, size_t n, unsigned *hits)
{
	double t0 = now();
	for (int r = 0; r < ROUNDS; r++)
		for (size_t i = 0; i < n; i++)
			*hits += domlist_match(d, names[i]);
	return (now() - t0) / ((double)ROUNDS * (double)n) * 1e9;
}

static double clients_ns(const struct netlist *l, unsigned *hits)
{
	double t0 = now();
	for (int r = 0; r < ROUNDS; r++)
		for (size_t i = 0; i < NAMES; i++)
			*hits += netlist_match_str(l, ips[i]);
	return (now() - t0) / ((double)ROUNDS * NAMES) * 1e9;
}

int main(int argc, char **argv)
{
	struct domlist d = {0}, de = {0};
	struct netlist c = {0}, ce = {0};
	char err[1024];
	unsigned hits = 0;
	size_t n = 0;
	FILE *fp;

	if (argc != 4) {
		fprintf(stderr, "usage: listlookup DOMAIN_FILE CLIENT_FILE CORPUS_DOMAINS\n");
		return 2;
	}
	if (!listfile_load_domains(argv[1], &d, err, sizeof(err)) ||
	    !listfile_load_networks(argv[2], &c, err, sizeof(err)) || !netlist_index(&c) ||
	    !netlist_index(&ce)) {
		fprintf(stderr, "listlookup: %s\n", err);
		return 1;
	}
	fp = fopen(argv[3], "r");
	if (!fp) {
		perror(argv[3]);
		return 1;
	}
	/* every 7th name of the corpus, spread over all of it */
	for (size_t k = 0; n < NAMES && fgets(names[n], sizeof(names[n]), fp); k++) {
		names[n][strcspn(names[n], "\n")] = '\0';
		if (k % 7 == 0 && names[n][0])
			n++;
	}
	fclose(fp);
	for (size_t i = 0; i < NAMES; i++)
		snprintf(ips[i], sizeof(ips[i]), "198.18.%zu.%zu", (i * 37) / 256 % 256, (i * 37) % 256);
	double dn = domains_ns(&d, n, &hits), dne = domains_ns(&de, n, &hits);
	double cn = clients_ns(&c, &hits), cne = clients_ns(&ce, &hits);
	printf("LISTLOOKUP domain_ns=%.1f domain_empty_ns=%.1f client_ns=%.1f client_empty_ns=%.1f "
	       "entries=%zu networks=%zu names=%zu hits=%u\n",
	       dn, dne, cn, cne, domlist_count(&d), c.n, n, hits);
	domlist_free(&d);
	netlist_free(&c);
	netlist_free(&ce);
	return 0;
}
