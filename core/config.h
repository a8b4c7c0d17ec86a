/*
 * config.h - the mxsane configuration (libconfig syntax), shared by every program.
 *
 * A configuration is loaded and validated completely, then used read-only: it is immutable
 * after config_load() returns, so any number of threads may read it.  Reload = load a new one,
 * and if that succeeds swap it in (config_ref/config_unref keep the old one alive for checks
 * still using it).  Every program accepts every key, so one file serves all of them.
 */
#ifndef MXSANE_CONFIG_H
#define MXSANE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netlist.h"
#include "rpolicy.h"
#include "verdict.h"

#define CONFIG_DEFAULT_PATH MXSANE_SYSCONFDIR "/mxsane/mxsane.conf"

enum mixed_null_mx { MIXED_NULL_IGNORE = 0, MIXED_NULL_IS_NULL };
enum log_format { LOG_FORMAT_KV = 0, LOG_FORMAT_JSON };
enum outage_action { OUTAGE_TEMPFAIL = 0, OUTAGE_ACCEPT };

struct config {
	char *path; /* file it came from, or NULL for built-in defaults */

	/* resolver = { servers = [...]; timeout_ms = 3000; }; */
	char **servers;      /* "127.0.0.1:5300", "[::1]:53", "192.0.2.1" (port 53); n may be 0 */
	size_t nservers;     /* 0: the nameservers of /etc/resolv.conf */
	unsigned timeout_ms; /* total budget for one verdict; 100..60000, default 3000 */

	/* cache = { max_entries; min_ttl; max_ttl; error_ttl; }; */
	uint32_t cache_max_entries; /* 0..10000000, default 100000 (0 = no cache) */
	uint32_t cache_min_ttl;     /* seconds, default 0 */
	uint32_t cache_max_ttl;     /* seconds, default 86400; >= min_ttl */
	uint32_t cache_error_ttl;   /* seconds, 0..300 (RFC 2308), default 30 */

	/* checks = { sender; recipient; local_sender; mixed_null_mx; }; */
	bool check_sender;                /* default true */
	bool check_recipient;             /* default true */
	bool check_local_sender;          /* senders of locally submitted mail; default false */
	enum mixed_null_mx mixed_null_mx; /* "ignore" (default) | "null_mx" */

	/* actions = { null_mx = "reject"; ... }; indexed by enum verdict.
	 * actions[V_OK] is always ACT_ACCEPT, actions[V_SKIPPED] ACT_ACCEPT.
	 * dns_error may not be "reject" (refused at load). */
	enum action actions[V__COUNT];

	struct netlist bogus_networks; /* built-in list unless the key is present */
	/* skip = { domains = [...]; clients = [...]; domains_file = "/path"; clients_file; };
	 * the files' entries are added to the inline ones (listfile.h) */
	struct domlist skip_domains;
	struct netlist skip_clients;                 /* indexed (netlist_index) */
	char *skip_domains_file, *skip_clients_file; /* NULL when not set */

	enum mode mode; /* mode = "enforce" | "monitor" */

	/* recipient_policies_file = "/path": settings per recipient domain (rpolicy.h), each
	 * entry complete (the keys a line leaves out are the values above).  NULL when not set:
	 * then a check costs nothing more than this pointer's test. */
	char *recipient_policies_file;
	struct rpolicies *rpolicies;

	/* log = { format = "kv" | "json"; facility = "mail"; }; */
	enum log_format log_format;
	int log_facility; /* LOG_MAIL, LOG_LOCAL0.. */

	/* milter = { socket = "unix:/var/spool/postfix/mxsane/milter.sock"; timeout = 600; }; */
	char *milter_socket;
	unsigned milter_timeout; /* seconds, 1..86400, default 600: smfi_settimeout */
	/* policy = { listen = "inet:127.0.0.1:10045"; idle_timeout = 300; max_connections; }; */
	char *policy_listen;
	unsigned policy_idle_timeout;    /* seconds, 1..86400, default 300 */
	unsigned policy_max_connections; /* 1..1000000, default 20000 */
	/* policy.allow_clients = [...] and/or policy.allow_clients_file: when either is set
	 * (even empty), TCP clients outside the list are closed at accept */
	bool policy_allow_set;
	struct netlist policy_allow_clients; /* indexed */
	char *policy_allow_clients_file;
	/* metrics = { listen = "inet:127.0.0.1:9325"; }; NULL (the default): no metrics */
	char *metrics_listen;

	/* resilience = { on_dns_outage = "tempfail" | "accept"; outage_ratio = 0.5;
	 *                outage_window = 100; } ; */
	enum outage_action on_dns_outage;
	double outage_ratio;    /* 0 < r <= 1, default 0.5 */
	unsigned outage_window; /* recent checks considered, 10..100000, default 100 */

	unsigned refs; /* see config_ref */
};

/*
 * Load and validate a file.  On success returns a new configuration with refs=1.  On failure
 * returns NULL and writes "FILE:LINE: message" (or "FILE: message") to err: syntax errors,
 * unknown keys (at any level), wrong types, out-of-range values and inconsistent settings
 * are all errors.  A missing file is an error naming the path.
 */
struct config *config_load(const char *path, char *err, size_t errlen);

/*
 * Which configuration a program runs with, the same rule for all three: the file given (-c)
 * when there is one; else CONFIG_DEFAULT_PATH when it exists, and an existing file that cannot
 * be read is an error like any other; else, when the default file does not exist, built-in
 * defaults, and *defaults is set so that the program can warn.  NULL with err (FILE:LINE where
 * it applies) on failure.
 */
struct config *config_load_chosen(const char *given, bool *defaults, char *err, size_t errlen);

/* Replace the resolver servers (mxsane-check -s) after checking each as the file's
 * resolver.servers is checked.  0, or -1 with err (the configuration is unchanged).  Only on
 * a configuration nobody else holds yet. */
int config_set_servers(struct config *c, const char *const *servers, size_t n, char *err,
                       size_t errlen);

/* Built-in defaults (what an empty file gives).  NULL only on out of memory. */
struct config *config_defaults(void);

/* Reference counting: a config is freed when the last reference is dropped.  Not
 * thread-safe by itself: callers that share a config across threads take their own lock. */
struct config *config_ref(struct config *c);
void config_unref(struct config *c); /* accepts NULL */

#endif
