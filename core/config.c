/*
 * config.c - load and validate the mxsane configuration file (libconfig 1.5 syntax).
 *
 * The file is read into memory once (at most CONFIG_MAX_BYTES, confread.c) and syntax-checked
 * by a small tokeniser and parser of our own that mirror libconfig 1.5 (confsyntax.c), because
 * libconfig 1.5 silently truncates integer literals to 32 bits, leaks memory on some syntax
 * errors and would follow @include.  Only a file that passes is parsed by libconfig, and the
 * tree is then walked
 * against the schema of config.h: unknown keys, wrong types, values out of range and
 * inconsistent settings are errors "FILE:LINE: message".  The result starts from
 * config_defaults(), so an absent key keeps its default; every string is copied before the
 * libconfig tree is destroyed.  config_load is reentrant: it keeps no global state.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>

#include "addr.h"
#include "confread.h"
#include "confsyntax.h"
#include "listfile.h"
#include "text.h"

static const struct choice mixed_choices[] = {
        {"ignore", MIXED_NULL_IGNORE},
        {"null_mx", MIXED_NULL_IS_NULL},
        {NULL, 0},
};

static const struct choice mode_choices[] = {
        {"enforce", MODE_ENFORCE},
        {"monitor", MODE_MONITOR},
        {NULL, 0},
};

static const struct choice format_choices[] = {
        {"kv", LOG_FORMAT_KV},
        {"json", LOG_FORMAT_JSON},
        {NULL, 0},
};

static const struct choice facility_choices[] = {
        {"mail", LOG_MAIL},
        {"daemon", LOG_DAEMON},
        {"local0", LOG_LOCAL0},
        {"local1", LOG_LOCAL1},
        {"local2", LOG_LOCAL2},
        {"local3", LOG_LOCAL3},
        {"local4", LOG_LOCAL4},
        {"local5", LOG_LOCAL5},
        {"local6", LOG_LOCAL6},
        {"local7", LOG_LOCAL7},
        {NULL, 0},
};

static const struct choice outage_choices[] = {
        {"tempfail", OUTAGE_TEMPFAIL},
        {"accept", OUTAGE_ACCEPT},
        {NULL, 0},
};

/* The keys of the actions group, in the order of enum verdict. */
static const struct choice action_keys[] = {
        {"null_mx", V_NULL_MX},
        {"nxdomain", V_NXDOMAIN},
        {"no_mail_host", V_NO_MAIL_HOST},
        {"broken_mx", V_BROKEN_MX},
        {"mx_cname", V_MX_CNAME},
        {"dns_error", V_DNS_ERROR},
        {NULL, 0},
};

/* ------------------------------------------------------------------------------------------ */
/* Sections */

static bool load_resolver(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"servers", "timeout_ms", NULL};
	const config_setting_t *g, *list, *e;
	const char *v;
	unsigned i, n;

	if (!conf_get_group(ld, root, "resolver", known, &g))
		return false;
	if (!g)
		return true;
	if (!conf_get_uns(ld, g, "timeout_ms", 100, 60000, &c->timeout_ms))
		return false;
	if (!conf_get_list(ld, g, "servers", &list))
		return false;
	if (!list)
		return true;
	n = (unsigned)config_setting_length(list);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, i);
		if (!conf_str_of(ld, e, &v))
			return false;
		if (!conf_server_valid(v))
			return conf_fail_at(ld, e,
			                    "'%s': invalid server \"%s\" (expected IPv4[:port], "
			                    "[IPv6]:port or IPv6; port 1..65535)",
			                    conf_sname(ld, e), conf_sval(ld, v));
	}
	if (n == 0)
		return true;
	c->servers = calloc(n, sizeof(*c->servers));
	if (!c->servers)
		return conf_fail_oom(ld);
	for (i = 0; i < n; i++) {
		c->servers[i] = strdup(config_setting_get_string_elem(list, (int)i));
		if (!c->servers[i])
			return conf_fail_oom(ld);
		c->nservers++;
	}
	return true;
}

static bool load_cache(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"max_entries", "min_ttl", "max_ttl", "error_ttl", NULL};
	const config_setting_t *g, *smin = NULL, *smax = NULL;

	if (!conf_get_group(ld, root, "cache", known, &g))
		return false;
	if (!g)
		return true;
	/* TTLs are at most 2^31-1 (RFC 2181 section 8) */
	if (!conf_get_u32(ld, g, "max_entries", 0, 10000000, &c->cache_max_entries, NULL) ||
	    !conf_get_u32(ld, g, "min_ttl", 0, INT32_MAX, &c->cache_min_ttl, &smin) ||
	    !conf_get_u32(ld, g, "max_ttl", 0, INT32_MAX, &c->cache_max_ttl, &smax) ||
	    !conf_get_u32(ld, g, "error_ttl", 0, 300, &c->cache_error_ttl, NULL))
		return false;
	if (c->cache_min_ttl > c->cache_max_ttl)
		return conf_fail_at(ld, smin ? smin : smax,
		                    "'cache.min_ttl' (%u) is greater than 'cache.max_ttl' (%u)",
		                    (unsigned)c->cache_min_ttl, (unsigned)c->cache_max_ttl);
	return true;
}

static bool load_checks(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"sender", "recipient", "local_sender", "mixed_null_mx",
	                                    NULL};
	const config_setting_t *g;
	int mixed = c->mixed_null_mx;

	if (!conf_get_group(ld, root, "checks", known, &g))
		return false;
	if (!g)
		return true;
	if (!conf_get_bool(ld, g, "sender", &c->check_sender) ||
	    !conf_get_bool(ld, g, "recipient", &c->check_recipient) ||
	    !conf_get_bool(ld, g, "local_sender", &c->check_local_sender) ||
	    !conf_get_choice(ld, g, "mixed_null_mx", mixed_choices, &mixed))
		return false;
	c->mixed_null_mx = (enum mixed_null_mx)mixed;
	return true;
}

static bool load_actions(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {
	        "null_mx", "nxdomain", "no_mail_host", "broken_mx", "mx_cname", "dns_error", NULL};
	const config_setting_t *g, *s;
	const char *v;
	enum action a;
	size_t i;

	if (!conf_get_group(ld, root, "actions", known, &g))
		return false;
	if (!g)
		return true;
	for (i = 0; action_keys[i].name; i++) {
		s = config_setting_get_member(g, action_keys[i].name);
		if (!s)
			continue;
		if (!conf_str_of(ld, s, &v))
			return false;
		if (!action_from_name(v, &a))
			return conf_fail_at(ld, s,
			                    "'%s': invalid value \"%s\" (expected \"reject\", "
			                    "\"tempfail\", \"warn\" or \"accept\")",
			                    conf_sname(ld, s), conf_sval(ld, v));
		if (action_keys[i].value == V_DNS_ERROR && a == ACT_REJECT)
			return conf_fail_at(ld, s,
			                    "'%s': a temporary DNS failure must never bounce mail; "
			                    "use tempfail, warn or accept",
			                    conf_sname(ld, s));
		c->actions[action_keys[i].value] = a;
	}
	return true;
}

/* Append every CIDR string of list to l. */
static bool load_cidrs(struct loader *ld, const config_setting_t *list, struct netlist *l)
{
	const config_setting_t *e;
	struct cidr net;
	const char *v;
	char reason[128];
	unsigned i, n = (unsigned)config_setting_length(list);

	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, i);
		if (!conf_str_of(ld, e, &v))
			return false;
		reason[0] = '\0';
		if (!cidr_parse(v, &net, reason, sizeof(reason)))
			return conf_fail_at(ld, e, "'%s': invalid network \"%s\": %s",
			                    conf_sname(ld, e), conf_sval(ld, v),
			                    reason[0] ? reason : "not a CIDR");
		if (!netlist_add(l, &net))
			return conf_fail_oom(ld);
	}
	return true;
}

static bool load_bogus(struct loader *ld, const config_setting_t *root, struct config *c)
{
	const config_setting_t *list;

	if (!conf_get_list(ld, root, "bogus_networks", &list))
		return false;
	if (!list)
		return true;
	/* present: replaces the built-in list, even when empty */
	netlist_free(&c->bogus_networks);
	memset(&c->bogus_networks, 0, sizeof(c->bogus_networks));
	return load_cidrs(ld, list, &c->bogus_networks);
}

/* A list file setting: an absolute path (what a relative one means would depend on the
 * directory a daemon was started in), read with load(); its errors name the list file. */
static bool get_list_file(struct loader *ld, const config_setting_t *g, const char *key,
                          char **path, void *list,
                          bool (*load)(const char *, void *, char *, size_t))
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (!conf_get_string(ld, g, key, path))
		return false;
	if (!s)
		return true;
	if ((*path)[0] != '/')
		return conf_fail_at(ld, s, "'%s': expected an absolute path, not \"%s\"",
		                    conf_sname(ld, s), conf_sval(ld, *path));
	return load(*path, list, ld->err, ld->errlen);
}

static bool load_domain_file(const char *path, void *l, char *err, size_t errlen)
{
	return listfile_load_domains(path, l, err, errlen);
}

static bool load_network_file(const char *path, void *l, char *err, size_t errlen)
{
	return listfile_load_networks(path, l, err, errlen);
}

static bool load_skip(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"domains", "clients", "domains_file", "clients_file",
	                                    NULL};
	const config_setting_t *g, *list, *e;
	char norm[DOMAIN_MAX + 2], reason[128];
	const char *v;
	unsigned i, n;
	bool sub;

	if (!conf_get_group(ld, root, "skip", known, &g))
		return false;
	if (!g)
		return true;
	if (!conf_get_list(ld, g, "domains", &list))
		return false;
	n = list ? (unsigned)config_setting_length(list) : 0;
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, i);
		if (!conf_str_of(ld, e, &v))
			return false;
		/* ".example.com": every subdomain; the dot is kept as the marker */
		sub = v[0] == '.';
		norm[0] = '.';
		reason[0] = '\0';
		if (!domain_normalize(v + sub, strlen(v + sub), norm + sub, reason, sizeof(reason)))
			return conf_fail_at(ld, e, "'%s': invalid domain \"%s\": %s",
			                    conf_sname(ld, e), conf_sval(ld, v),
			                    reason[0] ? reason : "not a domain name");
		if (!domlist_add(&c->skip_domains, norm))
			return conf_fail_oom(ld);
	}
	if (!conf_get_list(ld, g, "clients", &list))
		return false;
	if (list && !load_cidrs(ld, list, &c->skip_clients))
		return false;
	if (!get_list_file(ld, g, "domains_file", &c->skip_domains_file, &c->skip_domains,
	                   load_domain_file) ||
	    !get_list_file(ld, g, "clients_file", &c->skip_clients_file, &c->skip_clients,
	                   load_network_file))
		return false;
	return netlist_index(&c->skip_clients) || conf_fail_oom(ld);
}

static bool load_log(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"format", "facility", NULL};
	const config_setting_t *g;
	int format = c->log_format;

	if (!conf_get_group(ld, root, "log", known, &g))
		return false;
	if (!g)
		return true;
	if (!conf_get_choice(ld, g, "format", format_choices, &format) ||
	    !conf_get_choice(ld, g, "facility", facility_choices, &c->log_facility))
		return false;
	c->log_format = (enum log_format)format;
	return true;
}

static bool load_milter(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"socket", "timeout", NULL};
	const config_setting_t *g;

	if (!conf_get_group(ld, root, "milter", known, &g))
		return false;
	return !g || (conf_get_socket(ld, g, "socket", &c->milter_socket, conf_milter_socket_valid,
	                              "unix:/path, inet:PORT@HOST or inet6:PORT@HOST") &&
	              conf_get_uns(ld, g, "timeout", 1, 86400, &c->milter_timeout));
}

static bool load_policy(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {
	        "listen",        "idle_timeout",       "max_connections",
	        "allow_clients", "allow_clients_file", NULL};
	const config_setting_t *g, *list;

	if (!conf_get_group(ld, root, "policy", known, &g))
		return false;
	if (!g)
		return true;
	if (!conf_get_socket(ld, g, "listen", &c->policy_listen, conf_policy_listen_valid,
	                     "inet:IP:PORT, inet:[IPv6]:PORT or unix:/path") ||
	    !conf_get_uns(ld, g, "idle_timeout", 1, 86400, &c->policy_idle_timeout) ||
	    !conf_get_uns(ld, g, "max_connections", 1, 1000000, &c->policy_max_connections) ||
	    !conf_get_list(ld, g, "allow_clients", &list))
		return false;
	if (list && !load_cidrs(ld, list, &c->policy_allow_clients))
		return false;
	if (!get_list_file(ld, g, "allow_clients_file", &c->policy_allow_clients_file,
	                   &c->policy_allow_clients, load_network_file))
		return false;
	c->policy_allow_set = list || c->policy_allow_clients_file;
	return netlist_index(&c->policy_allow_clients) || conf_fail_oom(ld);
}

static bool load_metrics(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"listen", NULL};
	const config_setting_t *g;

	if (!conf_get_group(ld, root, "metrics", known, &g))
		return false;
	return !g || conf_get_socket(ld, g, "listen", &c->metrics_listen, conf_metrics_listen_valid,
	                             "inet:IP:PORT, inet:[IPv6]:PORT or unix:/path");
}

static bool load_resilience(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {"on_dns_outage", "outage_ratio", "outage_window", NULL};
	const config_setting_t *g, *s;
	int outage = c->on_dns_outage;
	double r;

	if (!conf_get_group(ld, root, "resilience", known, &g))
		return false;
	if (!g)
		return true;
	if (!conf_get_choice(ld, g, "on_dns_outage", outage_choices, &outage) ||
	    !conf_get_uns(ld, g, "outage_window", 10, 100000, &c->outage_window))
		return false;
	c->on_dns_outage = (enum outage_action)outage;
	s = config_setting_get_member(g, "outage_ratio");
	if (!s)
		return true;
	if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		r = config_setting_get_float(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT ||
	         config_setting_type(s) == CONFIG_TYPE_INT64)
		r = (double)config_setting_get_int64(s);
	else
		return conf_fail_at(ld, s, "'%s': expected a number", conf_sname(ld, s));
	if (!(r > 0 && r <= 1)) /* also refuses NaN */
		return conf_fail_at(ld, s, "'%s': %g is out of range (0 < ratio <= 1)",
		                    conf_sname(ld, s), r);
	c->outage_ratio = r;
	return true;
}

/* recipient_policies_file: read after every other setting, whose values complete the
 * entries (what a line does not give is the main configuration's). */
static bool load_rpolicies(struct loader *ld, const config_setting_t *root, struct config *c)
{
	const config_setting_t *s = config_setting_get_member(root, "recipient_policies_file");
	struct rpolicy base;

	if (!conf_get_string(ld, root, "recipient_policies_file", &c->recipient_policies_file))
		return false;
	if (!s)
		return true;
	if (c->recipient_policies_file[0] != '/')
		return conf_fail_at(ld, s, "'%s': expected an absolute path, not \"%s\"",
		                    conf_sname(ld, s), conf_sval(ld, c->recipient_policies_file));
	memset(&base, 0, sizeof(base));
	base.check_sender = c->check_sender;
	base.mode = (uint8_t)c->mode;
	for (size_t v = 0; v < V__COUNT; v++)
		base.actions[v] = (uint8_t)c->actions[v];
	c->rpolicies = rpolicies_load(c->recipient_policies_file, &base, ld->err, ld->errlen);
	return c->rpolicies != NULL;
}

static bool load_root(struct loader *ld, const config_setting_t *root, struct config *c)
{
	static const char *const known[] = {
	        "resolver",       "cache",  "checks",     "actions",
	        "bogus_networks", "skip",   "mode",       "log",
	        "milter",         "policy", "resilience", "recipient_policies_file",
	        "metrics",        NULL};
	int mode = c->mode;

	if (!conf_check_members(ld, root, known))
		return false;
	if (!load_resolver(ld, root, c) || !load_cache(ld, root, c) || !load_checks(ld, root, c) ||
	    !load_actions(ld, root, c) || !load_bogus(ld, root, c) || !load_skip(ld, root, c) ||
	    !conf_get_choice(ld, root, "mode", mode_choices, &mode) || !load_log(ld, root, c) ||
	    !load_milter(ld, root, c) || !load_policy(ld, root, c) ||
	    !load_resilience(ld, root, c) || !load_metrics(ld, root, c))
		return false;
	c->mode = (enum mode)mode;
	return load_rpolicies(ld, root, c);
}

/* ------------------------------------------------------------------------------------------ */
/* Public API */

static void config_free(struct config *c)
{
	size_t i;

	if (!c)
		return;
	free(c->path);
	for (i = 0; i < c->nservers; i++)
		free(c->servers[i]);
	free(c->servers);
	netlist_free(&c->bogus_networks);
	domlist_free(&c->skip_domains);
	netlist_free(&c->skip_clients);
	free(c->skip_domains_file);
	free(c->skip_clients_file);
	netlist_free(&c->policy_allow_clients);
	free(c->policy_allow_clients_file);
	free(c->recipient_policies_file);
	rpolicies_free(c->rpolicies);
	free(c->milter_socket);
	free(c->policy_listen);
	free(c->metrics_listen);
	free(c);
}

int config_set_servers(struct config *c, const char *const *servers, size_t n, char *err,
                       size_t errlen)
{
	char **v = n ? calloc(n, sizeof(*v)) : NULL;
	size_t i;
	if (n && !v)
		goto oom;
	for (i = 0; i < n; i++) {
		if (!conf_server_valid(servers[i])) {
			snprintf(err, errlen,
			         "invalid server \"%.100s\" (expected IPv4[:port], [IPv6]:port or "
			         "IPv6; "
			         "port 1..65535)",
			         servers[i]);
			goto fail;
		}
		if (!(v[i] = strdup(servers[i])))
			goto oom;
	}
	for (size_t k = 0; k < c->nservers; k++)
		free(c->servers[k]);
	free(c->servers);
	c->servers = v;
	c->nservers = n;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	for (size_t k = 0; v && k < n; k++)
		free(v[k]);
	free(v);
	return -1;
}

struct config *config_load_chosen(const char *given, bool *defaults, char *err, size_t errlen)
{
	struct stat sb;
	*defaults = false;
	if (given)
		return config_load(given, err, errlen);
	if (stat(CONFIG_DEFAULT_PATH, &sb) == 0 || errno != ENOENT)
		return config_load(CONFIG_DEFAULT_PATH, err, errlen);
	*defaults = true;
	struct config *c = config_defaults();
	if (!c)
		snprintf(err, errlen, "out of memory");
	return c;
}

struct config *config_defaults(void)
{
	struct config *c = calloc(1, sizeof(*c));
	size_t v;

	if (!c)
		goto fail;
	c->refs = 1;
	c->timeout_ms = 3000;
	c->cache_max_entries = 100000;
	c->cache_min_ttl = 0;
	c->cache_max_ttl = 86400;
	c->cache_error_ttl = 30;
	c->check_sender = true;
	c->check_recipient = true;
	c->check_local_sender = false;
	c->mixed_null_mx = MIXED_NULL_IGNORE;
	for (v = 0; v < V__COUNT; v++)
		c->actions[v] = ACT_ACCEPT;
	c->actions[V_NULL_MX] = ACT_REJECT;
	c->actions[V_NXDOMAIN] = ACT_REJECT;
	c->actions[V_NO_MAIL_HOST] = ACT_REJECT;
	c->actions[V_BROKEN_MX] = ACT_TEMPFAIL;
	c->actions[V_MX_CNAME] = ACT_WARN;
	c->actions[V_DNS_ERROR] = ACT_TEMPFAIL;
	c->mode = MODE_ENFORCE;
	c->log_format = LOG_FORMAT_KV;
	c->log_facility = LOG_MAIL;
	c->policy_idle_timeout = 300;
	c->policy_max_connections = 20000;
	c->on_dns_outage = OUTAGE_TEMPFAIL;
	c->outage_ratio = 0.5;
	c->outage_window = 100;
	c->milter_timeout = 600;
	/* a unix socket (created mode 0660): only the MTA's group can speak to libmilter,
	 * which trusts its peer (docs/robustness.md); the path is inside Debian's Postfix chroot */
	c->milter_socket = strdup("unix:/var/spool/postfix/mxsane/milter.sock");
	c->policy_listen = strdup("inet:127.0.0.1:10045");
	if (!c->milter_socket || !c->policy_listen)
		goto fail;
	if (!netlist_add_builtin_bogus(&c->bogus_networks))
		goto fail;
	return c;
fail:
	config_free(c);
	return NULL;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
	struct loader ld = {.path = path, .err = err, .errlen = errlen};
	struct config *c = NULL;
	config_t cf;
	bool cf_init = false;
	char *text = NULL;
	size_t len = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!conf_read_file(&ld, &text, &len))
		goto fail;
	unsigned sline;
	char smsg[400];
	if (!confsyntax_check(text, len, &sline, smsg, sizeof(smsg))) {
		conf_fail_line(&ld, sline, "%s", smsg);
		goto fail;
	}
	/* libconfig 1.5 refuses a "# comment" on a last line without a newline */
	if (len && text[len - 1] != '\n') {
		text[len] = '\n';
		text[len + 1] = '\0';
	}
	config_init(&cf);
	cf_init = true;
	if (!config_read_string(&cf, text)) {
		/* only what the check above leaves to libconfig: "duplicate setting name",
		 * "mismatched element type in array" */
		conf_fail_line(&ld, (unsigned)config_error_line(&cf), "syntax error: %s",
		               config_error_text(&cf) ? config_error_text(&cf) : "unknown");
		goto fail;
	}
	c = config_defaults();
	if (!c) {
		conf_fail_oom(&ld);
		goto fail;
	}
	c->path = strdup(path);
	if (!c->path) {
		conf_fail_oom(&ld);
		goto fail;
	}
	if (!load_root(&ld, config_root_setting(&cf), c))
		goto fail;
	config_destroy(&cf);
	free(text);
	return c;
fail:
	if (cf_init)
		config_destroy(&cf);
	free(text);
	config_unref(c);
	return NULL;
}

struct config *config_ref(struct config *c)
{
	if (c)
		c->refs++;
	return c;
}

void config_unref(struct config *c)
{
	if (!c || !c->refs)
		return;
	if (--c->refs == 0)
		config_free(c);
}
