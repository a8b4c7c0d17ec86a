/*
 * check.h - what the files of mxsane-check share: the options, a check result copied out of
 * the engine (the engine's result lives only during its callback, while SMTP probes and the
 * propagation check run later), and the rendering of one NAME's report.
 *
 * Everything here runs in the one thread of mxsane-check, on its one evloop.
 */
#ifndef MXSANE_CLI_CHECK_H
#define MXSANE_CLI_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "allns.h"
#include "arena.h"
#include "engine.h"
#include "smtp.h"

/* Exit statuses.  3 is not a verdict: DNS says the domain can take mail, but its servers do
 * not (no target answers on port 25, a target refuses the domain's mail while another takes
 * it) or its name servers disagree. */
#define EX_OK_     0
#define EX_REJECT  1
#define EX_TEMP    2
#define EX_SERVERS 3
#define EX_USAGE_  64
#define EX_INPUT   65 /* a NAME that is no domain and no address (EX_DATAERR) */
#define EX_NOINPUT 66 /* -f FILE cannot be read */
#define EX_CONFIG_ 78

struct opts {
	bool json;
	bool batch; /* -f: one line (or one JSON object) per NAME */
	bool smtp, rcpt, all_ns;
	const char *rcpt_addr; /* --rcpt=ADDRESS, or NULL: postmaster@DOMAIN */
	char helo[256];        /* the name sent in EHLO */
	int smtp_port;
	int smtp_timeout_ms; /* one budget for all the probes of one NAME */
	int dns_port;        /* --all-ns: port asked on each name server (53) */
	unsigned concurrency;
	enum role role;
	uint32_t cache_min_ttl, cache_max_ttl; /* the configuration's bounds, for "cached for" */
	unsigned timeout_ms;                   /* resolver.timeout_ms */
};

/* One MX target as the engine reported it (strings in the job's arena). */
struct cmx {
	uint16_t pref;
	const char *host;
	bool usable, alias, temp;
	const char *problem;
	uint32_t ttl; /* MX set TTL (0 for the implicit MX) */
	size_t naddr;
	const char **addrs;
	const bool *bogus;
	const uint32_t *attl;
	size_t group; /* hosts sharing this preference, this one included */
};

struct cres {
	enum role role;
	enum verdict verdict;
	enum action action, configured_action;
	int code;
	const char *dsn, *domain, *reason, *text, *header, *canonical;
	uint32_t ttl;
	bool cached, implicit_mx;
	double ms;
	size_t nmx;
	struct cmx *mx;
	size_t nnotes;
	const char **notes;
};

/* Copy r into a (everything the report needs).  NULL on out of memory. */
struct cres *cres_copy(struct arena *a, const struct check_result *r);

/* One NAME and everything found about it; rendered by report_write. */
struct report {
	const struct opts *o;
	const char *name;        /* as given */
	const char *input_error; /* set: NAME is no domain and no address; nothing else is */
	const struct cres *r;
	size_t nprobes; /* --smtp */
	const struct smtp_result *probes;
	const size_t *probe_mx;          /* per probe: index of its MX target */
	const struct allns_report *prop; /* --all-ns, or NULL */
	/* filled by report_judge */
	const char *smtp_problem; /* exit 3: plain words, or NULL */
	const char *advice[32];   /* advisory notes (never change the verdict) */
	size_t nadvice;
	int status; /* exit status for this NAME */
};

/* Decide the exit status, the SMTP problem and the advisory notes (strings in a). */
void report_judge(struct report *rp, struct arena *a);
/* Write the report: the checklist, one line (opts.batch) or one JSON object (opts.json). */
void report_write(FILE *f, const struct report *rp);

/* Which exit status is worse: 65 > 1 (reject) > 2 (tempfail) > 3 (servers) > 0. */
int status_worst(int a, int b);

#endif
