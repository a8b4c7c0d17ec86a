/*
 * test_config.c - unit tests for core/config.c: defaults, every key, every error class with
 * the exact "FILE:LINE:" it must name, libconfig 1.5's silent integer truncation, and the
 * installed example conf/mxsane.conf (found from the top of the tree or $MXS_TOP).
 *
 * Each test writes its configuration to a temporary file (mkstemp under $TMPDIR or /tmp),
 * loads it and removes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers */

/* Write text to a new temporary file; its name goes to path (PATH_MAX bytes). */
static void write_tmp(const char *text, size_t len, char *path)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(path, PATH_MAX, "%s/mxsane-test-config-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Load text as a file; path receives the file name (already removed when this returns). */
static struct config *load_text_n(const char *text, size_t len, char *path, char *err,
                                  size_t errlen)
{
	struct config *c;

	write_tmp(text, len, path);
	c = config_load(path, err, errlen);
	unlink(path);
	return c;
}

static struct config *load_text(const char *text, char *path, char *err, size_t errlen)
{
	return load_text_n(text, strlen(text), path, err, errlen);
}

/* Load text expecting success. */
static struct config *load_ok(const char *text)
{
	char path[PATH_MAX], err[512];
	struct config *c = load_text(text, path, err, sizeof(err));

	if (!c)
		fail_msg("config refused: %s\n--- config ---\n%s", err, text);
	assert_string_equal(c->path, path);
	assert_int_equal(c->refs, 1);
	return c;
}

/* Load text expecting failure with "PATH:LINE: " followed by a message containing what. */
static void expect_error_n(const char *text, size_t len, unsigned line, const char *what)
{
	char path[PATH_MAX], err[512], prefix[PATH_MAX + 32];
	struct config *c = load_text_n(text, len, path, err, sizeof(err));

	if (c) {
		config_unref(c);
		fail_msg("config accepted, expected line %u \"%s\"\n--- config ---\n%s", line, what,
		         text);
	}
	snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err + strlen(prefix), what))
		fail_msg("error \"%s\"\n  expected \"%s...%s...\"\n--- config ---\n%s", err, prefix,
		         what, text);
}

static void expect_error(const char *text, unsigned line, const char *what)
{
	expect_error_n(text, strlen(text), line, what);
}

static bool cidr_equal(const struct cidr *a, const struct cidr *b)
{
	size_t alen = a->family == AF_INET ? 4 : 16;

	return a->family == b->family && a->plen == b->plen && memcmp(a->addr, b->addr, alen) == 0;
}

static void assert_netlist_equal(const struct netlist *a, const struct netlist *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++)
		assert_true(cidr_equal(&a->v[i], &b->v[i]));
}

/* Every setting of a and b is the same (path and refs aside). */
static void assert_config_equal(const struct config *a, const struct config *b)
{
	size_t i;

	assert_int_equal(a->nservers, b->nservers);
	for (i = 0; i < a->nservers; i++)
		assert_string_equal(a->servers[i], b->servers[i]);
	assert_int_equal(a->timeout_ms, b->timeout_ms);
	assert_int_equal(a->cache_max_entries, b->cache_max_entries);
	assert_int_equal(a->cache_min_ttl, b->cache_min_ttl);
	assert_int_equal(a->cache_max_ttl, b->cache_max_ttl);
	assert_int_equal(a->cache_error_ttl, b->cache_error_ttl);
	assert_int_equal(a->check_sender, b->check_sender);
	assert_int_equal(a->check_recipient, b->check_recipient);
	assert_int_equal(a->check_local_sender, b->check_local_sender);
	assert_int_equal(a->mixed_null_mx, b->mixed_null_mx);
	for (i = 0; i < V__COUNT; i++)
		assert_int_equal(a->actions[i], b->actions[i]);
	assert_netlist_equal(&a->bogus_networks, &b->bogus_networks);
	assert_int_equal(domlist_count(&a->skip_domains), domlist_count(&b->skip_domains));
	assert_netlist_equal(&a->skip_clients, &b->skip_clients);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->log_format, b->log_format);
	assert_int_equal(a->log_facility, b->log_facility);
	assert_string_equal(a->milter_socket, b->milter_socket);
	assert_int_equal(a->milter_timeout, b->milter_timeout);
	assert_string_equal(a->policy_listen, b->policy_listen);
	assert_int_equal(a->policy_idle_timeout, b->policy_idle_timeout);
	assert_int_equal(a->policy_max_connections, b->policy_max_connections);
	assert_int_equal(a->on_dns_outage, b->on_dns_outage);
	assert_true(a->outage_ratio == b->outage_ratio);
	assert_int_equal(a->outage_window, b->outage_window);
}

static struct cidr cidr(const char *s)
{
	struct cidr c;
	char err[128];

	memset(&c, 0, sizeof(c));
	if (!cidr_parse(s, &c, err, sizeof(err)))
		fail_msg("cidr_parse(%s): %s", s, err);
	return c;
}

/* ------------------------------------------------------------------------------------------ */
/* Defaults */

static void test_defaults(void **state)
{
	struct config *d = config_defaults();
	size_t i;

	(void)state;
	assert_non_null(d);
	assert_null(d->path);
	assert_int_equal(d->refs, 1);
	assert_int_equal(d->nservers, 0);
	assert_null(d->servers);
	assert_int_equal(d->timeout_ms, 3000);
	assert_int_equal(d->cache_max_entries, 100000);
	assert_int_equal(d->cache_min_ttl, 0);
	assert_int_equal(d->cache_max_ttl, 86400);
	assert_int_equal(d->cache_error_ttl, 30);
	assert_true(d->check_sender);
	assert_true(d->check_recipient);
	assert_false(d->check_local_sender);
	assert_int_equal(d->mixed_null_mx, MIXED_NULL_IGNORE);
	assert_int_equal(d->actions[V_OK], ACT_ACCEPT);
	assert_int_equal(d->actions[V_NULL_MX], ACT_REJECT);
	assert_int_equal(d->actions[V_NXDOMAIN], ACT_REJECT);
	assert_int_equal(d->actions[V_NO_MAIL_HOST], ACT_REJECT);
	assert_int_equal(d->actions[V_BROKEN_MX], ACT_TEMPFAIL);
	assert_int_equal(d->actions[V_MX_CNAME], ACT_WARN);
	assert_int_equal(d->actions[V_DNS_ERROR], ACT_TEMPFAIL);
	assert_int_equal(d->actions[V_SKIPPED], ACT_ACCEPT);
	assert_true(d->bogus_networks.n > 0);
	assert_true(netlist_match_str(&d->bogus_networks, "127.0.0.1"));
	assert_true(netlist_match_str(&d->bogus_networks, "::1"));
	assert_false(netlist_match_str(&d->bogus_networks, "8.8.8.8"));
	assert_int_equal(domlist_count(&d->skip_domains), 0);
	assert_int_equal(d->skip_clients.n, 0);
	assert_int_equal(d->mode, MODE_ENFORCE);
	assert_int_equal(d->log_format, LOG_FORMAT_KV);
	assert_int_equal(d->log_facility, LOG_MAIL);
	assert_string_equal(d->milter_socket, "unix:/var/spool/postfix/mxsane/milter.sock");
	assert_int_equal(d->milter_timeout, 600);
	assert_string_equal(d->policy_listen, "inet:127.0.0.1:10045");
	assert_int_equal(d->policy_idle_timeout, 300);
	assert_int_equal(d->policy_max_connections, 20000);
	assert_int_equal(d->on_dns_outage, OUTAGE_TEMPFAIL);
	assert_true(d->outage_ratio == 0.5);
	assert_int_equal(d->outage_window, 100);
	for (i = 0; i < V__COUNT; i++)
		assert_true(d->actions[i] < ACT__COUNT);
	config_unref(d);
}

static void test_empty_file_is_defaults(void **state)
{
	static const char *const texts[] = {
	        "",
	        "# only a comment\n\n// another\n/* and\n   one more */\n",
	        ("resolver = { }; cache = { }; checks = { }; actions = { }; skip = { };\n"
	         "log = { }; milter = { }; policy = { }; resilience = { };\n"),
	};
	struct config *d = config_defaults(), *c;
	size_t i;

	(void)state;
	assert_non_null(d);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		c = load_ok(texts[i]);
		assert_config_equal(c, d);
		config_unref(c);
	}
	config_unref(d);
}

static void test_refcount(void **state)
{
	struct config *c = config_defaults();

	(void)state;
	assert_ptr_equal(config_ref(c), c);
	assert_int_equal(c->refs, 2);
	config_unref(c);
	assert_int_equal(c->refs, 1);
	config_unref(c); /* freed: valgrind/ASan check there is no leak and no double free */
	config_unref(NULL);
	assert_null(config_ref(NULL));
}

/* ------------------------------------------------------------------------------------------ */
/* Every key */

static void test_every_key(void **state)
{
	static const char text[] =
	        "resolver = { servers = [ \"127.0.0.1:5300\", \"[::1]:53\", \"192.0.2.1\",\n"
	        "                         \"2001:db8::53\" ];\n"
	        "             timeout_ms = 1500; };\n"
	        "cache = { max_entries = 0; min_ttl = 60; max_ttl = 3600; error_ttl = 0; };\n"
	        "checks = { sender = false; recipient = false; local_sender = true;\n"
	        "           mixed_null_mx = \"null_mx\"; };\n"
	        "actions = { null_mx = \"tempfail\"; nxdomain = \"warn\"; no_mail_host = "
	        "\"accept\";\n"
	        "            broken_mx = \"reject\"; mx_cname = \"reject\"; dns_error = "
	        "\"accept\"; };\n"
	        "bogus_networks = [ \"10.0.0.0/8\", \"2001:db8::/32\" ];\n"
	        "skip = { domains = [ \"Example.COM.\", \".ESP.example\" ];\n"
	        "         clients = ( \"192.0.2.0/24\", \"2001:db8:1::/48\", \"198.51.100.7\" ); "
	        "};\n"
	        "mode = \"monitor\";\n"
	        "log = { format = \"json\"; facility = \"local7\"; };\n"
	        "milter = { socket = \"unix:/var/spool/postfix/mxsane/milter.sock\"; timeout = "
	        "45; };\n"
	        "policy = { listen = \"inet:[::1]:10046\"; idle_timeout = 60;\n"
	        "           max_connections = 5000; };\n"
	        "resilience = { on_dns_outage = \"accept\"; outage_ratio = 0.25;\n"
	        "               outage_window = 1000; };\n";
	struct config *c = load_ok(text);
	struct cidr n;

	(void)state;
	assert_int_equal(c->nservers, 4);
	assert_string_equal(c->servers[0], "127.0.0.1:5300");
	assert_string_equal(c->servers[1], "[::1]:53");
	assert_string_equal(c->servers[2], "192.0.2.1");
	assert_string_equal(c->servers[3], "2001:db8::53");
	assert_int_equal(c->timeout_ms, 1500);
	assert_int_equal(c->cache_max_entries, 0);
	assert_int_equal(c->cache_min_ttl, 60);
	assert_int_equal(c->cache_max_ttl, 3600);
	assert_int_equal(c->cache_error_ttl, 0);
	assert_false(c->check_sender);
	assert_false(c->check_recipient);
	assert_true(c->check_local_sender);
	assert_int_equal(c->mixed_null_mx, MIXED_NULL_IS_NULL);
	assert_int_equal(c->actions[V_OK], ACT_ACCEPT);
	assert_int_equal(c->actions[V_NULL_MX], ACT_TEMPFAIL);
	assert_int_equal(c->actions[V_NXDOMAIN], ACT_WARN);
	assert_int_equal(c->actions[V_NO_MAIL_HOST], ACT_ACCEPT);
	assert_int_equal(c->actions[V_BROKEN_MX], ACT_REJECT);
	assert_int_equal(c->actions[V_MX_CNAME], ACT_REJECT);
	assert_int_equal(c->actions[V_DNS_ERROR], ACT_ACCEPT);
	assert_int_equal(c->actions[V_SKIPPED], ACT_ACCEPT);
	assert_int_equal(c->bogus_networks.n, 2);
	n = cidr("10.0.0.0/8");
	assert_true(cidr_equal(&c->bogus_networks.v[0], &n));
	n = cidr("2001:db8::/32");
	assert_true(cidr_equal(&c->bogus_networks.v[1], &n));
	assert_int_equal(domlist_count(&c->skip_domains), 2);
	assert_true(domlist_match(&c->skip_domains, "example.com"));
	assert_true(domlist_match(&c->skip_domains, "a.esp.example"));
	assert_false(domlist_match(&c->skip_domains, "esp.example"));
	assert_int_equal(c->skip_clients.n, 3);
	n = cidr("192.0.2.0/24");
	assert_true(cidr_equal(&c->skip_clients.v[0], &n));
	n = cidr("2001:db8:1::/48");
	assert_true(cidr_equal(&c->skip_clients.v[1], &n));
	n = cidr("198.51.100.7");
	assert_true(cidr_equal(&c->skip_clients.v[2], &n));
	assert_int_equal(c->mode, MODE_MONITOR);
	assert_int_equal(c->log_format, LOG_FORMAT_JSON);
	assert_int_equal(c->log_facility, LOG_LOCAL7);
	assert_string_equal(c->milter_socket, "unix:/var/spool/postfix/mxsane/milter.sock");
	assert_int_equal(c->milter_timeout, 45);
	assert_string_equal(c->policy_listen, "inet:[::1]:10046");
	assert_int_equal(c->policy_idle_timeout, 60);
	assert_int_equal(c->policy_max_connections, 5000);
	assert_int_equal(c->on_dns_outage, OUTAGE_ACCEPT);
	assert_true(c->outage_ratio == 0.25);
	assert_int_equal(c->outage_window, 1000);
	config_unref(c);
}

static void test_choices(void **state)
{
	static const struct {
		const char *name;
		int value;
	} fac[] = {
	        {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"local0", LOG_LOCAL0},
	        {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
	        {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
	        {"local7", LOG_LOCAL7},
	};
	char text[128];
	struct config *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fac) / sizeof(fac[0]); i++) {
		snprintf(text, sizeof(text), "log = { facility = \"%s\"; };", fac[i].name);
		c = load_ok(text);
		assert_int_equal(c->log_facility, fac[i].value);
		config_unref(c);
	}
	c = load_ok("mode = \"enforce\"; log = { format = \"kv\"; };\n"
	            "checks = { mixed_null_mx = \"ignore\"; };\n"
	            "resilience = { on_dns_outage = \"tempfail\"; outage_ratio = 1; };\n");
	assert_int_equal(c->mode, MODE_ENFORCE);
	assert_int_equal(c->log_format, LOG_FORMAT_KV);
	assert_int_equal(c->mixed_null_mx, MIXED_NULL_IGNORE);
	assert_int_equal(c->on_dns_outage, OUTAGE_TEMPFAIL);
	assert_true(c->outage_ratio == 1.0);
	config_unref(c);
	/* libconfig number forms that must not trip the integer-overflow scan */
	c = load_ok("resolver = { timeout_ms = 3000L; };  # 99999999999999999999\n"
	            "cache = { max_entries = 0x10; max_ttl = +600; };\n"
	            "skip = { domains = [ \"99999999999999999999.example\" ]; };\n"
	            "/* 0x100000000 */ resilience = { outage_ratio = 5e-1; };\n"
	            "policy = { max_connections = 1000000; idle_timeout = 86400; };\n");
	assert_int_equal(c->timeout_ms, 3000);
	assert_int_equal(c->cache_max_entries, 16);
	assert_int_equal(c->cache_max_ttl, 600);
	assert_true(c->outage_ratio == 0.5);
	assert_int_equal(c->policy_max_connections, 1000000);
	assert_int_equal(c->policy_idle_timeout, 86400);
	config_unref(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Resolver servers */

static void test_servers_valid(void **state)
{
	struct config *c;

	(void)state;
	c = load_ok("resolver = { servers = [ ]; };");
	assert_int_equal(c->nservers, 0);
	assert_null(c->servers);
	config_unref(c);
	c = load_ok("resolver = { servers = ( ); };");
	assert_int_equal(c->nservers, 0);
	config_unref(c);
	c = load_ok(
	        "resolver = { servers = ( \"1.2.3.4:1\", \"[::ffff:1.2.3.4]:65535\", \"::\" ); };");
	assert_int_equal(c->nservers, 3);
	assert_string_equal(c->servers[0], "1.2.3.4:1");
	assert_string_equal(c->servers[1], "[::ffff:1.2.3.4]:65535");
	assert_string_equal(c->servers[2], "::");
	config_unref(c);
}

static void test_servers_invalid(void **state)
{
	static const char *const bad[] = {
	        "1.2.3",          "1.2.3.4:0",
	        "1.2.3.4:65536",  "1.2.3.4:",
	        "1.2.3.4:53x",    "1.2.3.4:+53",
	        "example.com",    "[::1]",
	        "[::1]:",         "[::1]:0",
	        "[1.2.3.4]:53",   "[::1]53",
	        "::1::2",         "",
	        "[]:53",          " 1.2.3.4",
	        "1.2.3.4:100000", "fe80::1%eth0",
	        "1.2.3.4:53:53",
	};
	char text[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
		         "resolver = {\n servers = [ \"8.8.8.8\",\n\"%s\" ];\n};\n", bad[i]);
		expect_error(text, 3, "'resolver.servers[1]': invalid server");
	}
	expect_error("resolver = {\n servers = \"8.8.8.8\"; };\n", 2,
	             "'resolver.servers': expected a list");
	expect_error("resolver = {\n servers = ( \"8.8.8.8\",\n 53 ); };\n", 3,
	             "'resolver.servers[1]': expected a string");
	expect_error("resolver = {\n servers = [ 53 ]; };\n", 2,
	             "'resolver.servers[0]': expected a string");
}

/* ------------------------------------------------------------------------------------------ */
/* Errors */

static void test_sockets(void **state)
{
	(void)state;
	const char *good_milter[] = {
	        "inet:8895@127.0.0.1", "inet:8895",
	        "inet6:8895@::1",      "unix:/var/spool/postfix/mxsane/milter.sock",
	        "local:/run/m.sock",   "inet:8895@mail.example"};
	const char *good_policy[] = {"inet:127.0.0.1:10045", "inet:[::1]:10045", "127.0.0.1:10045",
	                             "unix:/run/mxsane/policy.sock"};
	char text[256];
	for (size_t i = 0; i < sizeof(good_milter) / sizeof(good_milter[0]); i++) {
		snprintf(text, sizeof(text), "milter = { socket = \"%s\"; };\n", good_milter[i]);
		struct config *c = load_ok(text);
		assert_string_equal(c->milter_socket, good_milter[i]);
		config_unref(c);
	}
	for (size_t i = 0; i < sizeof(good_policy) / sizeof(good_policy[0]); i++) {
		snprintf(text, sizeof(text), "policy = { listen = \"%s\"; };\n", good_policy[i]);
		struct config *c = load_ok(text);
		assert_string_equal(c->policy_listen, good_policy[i]);
		config_unref(c);
	}
	expect_error("milter = {\n socket = \"inet:99999@127.0.0.1\"; };\n", 2,
	             "'milter.socket': invalid socket");
	expect_error("milter = {\n socket = \"tcp:8895@127.0.0.1\"; };\n", 2,
	             "'milter.socket': invalid socket");
	expect_error("milter = {\n socket = \"unix:relative.sock\"; };\n", 2,
	             "'milter.socket': invalid socket");
	expect_error("\npolicy = {\n listen = \"inet:localhost:10045\"; };\n", 3,
	             "'policy.listen': invalid socket");
	expect_error("policy = {\n listen = \"inet:[::1]10045\"; };\n", 2,
	             "'policy.listen': invalid socket");
	expect_error("policy = {\n listen = \"10045\"; };\n", 2, "'policy.listen': invalid socket");
}

static void test_metrics_listen(void **state)
{
	(void)state;
	const char *good[] = {"inet:127.0.0.1:9325", "inet:[::1]:9326", "unix:/run/mxsane/m.sock"};
	char text[256];
	struct config *d = load_ok("mode = \"enforce\";\n");
	assert_null(d->metrics_listen); /* no metrics unless asked */
	config_unref(d);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "metrics = { listen = \"%s\"; };\n", good[i]);
		struct config *c = load_ok(text);
		assert_string_equal(c->metrics_listen, good[i]);
		config_unref(c);
	}
	expect_error("\nmetrics = {\n listen = \"localhost:9325\"; };\n", 3,
	             "'metrics.listen': invalid socket");
	/* inet: is required (a bare HOST:PORT, as Postfix allows for policy.listen, is not) */
	expect_error("metrics = {\n listen = \"127.0.0.1:9325\"; };\n", 2,
	             "'metrics.listen': invalid socket");
	expect_error("metrics = {\n listen = \"inet:127.0.0.1:0\"; };\n", 2,
	             "'metrics.listen': invalid socket");
	expect_error("metrics = {\n listen = \"unix:m.sock\"; };\n", 2,
	             "'metrics.listen': invalid socket");
	expect_error("metrics = {\n port = 9325; };\n", 2, "unknown setting 'metrics.port'");
	expect_error("metrics = {\n listen = 9325; };\n", 2, "metrics.listen");
}

static void test_unknown_keys(void **state)
{
	(void)state;
	expect_error("mode = \"enforce\";\nmodes = \"enforce\";\n", 2, "unknown setting 'modes'");
	expect_error("\n\n\n\n\n\n\n\n\n\ncache = {\n max_entries = 5;\n maxentries = 5; };\n", 13,
	             "unknown setting 'cache.maxentries'");
	expect_error("resolver = { servers = [];\n server = \"1.2.3.4\"; };\n", 2,
	             "unknown setting 'resolver.server'");
	expect_error("checks = {\n sender = true;\n helo = true; };\n", 3,
	             "unknown setting 'checks.helo'");
	expect_error("actions = {\n\n ok = \"accept\"; };\n", 3, "unknown setting 'actions.ok'");
	expect_error("actions = { skipped = \"accept\"; };\n", 1,
	             "unknown setting 'actions.skipped'");
	expect_error("skip = {\n senders = [ ]; };\n", 2, "unknown setting 'skip.senders'");
	expect_error("log = { format = \"kv\";\n extra = { a = 1; }; };\n", 2,
	             "unknown setting 'log.extra'");
	expect_error("milter = { socket = \"inet:1@127.0.0.1\";\n backlog = 5; };\n", 2,
	             "unknown setting 'milter.backlog'");
	expect_error("policy = {\n spawn = true; };\n", 2, "unknown setting 'policy.spawn'");
	expect_error("resilience = {\n ratio = 0.5; };\n", 2, "unknown setting 'resilience.ratio'");
	expect_error("Mode = \"enforce\";\n", 1, "unknown setting 'Mode'");
}

static void test_wrong_types(void **state)
{
	(void)state;
	expect_error("cache = 5;\n", 1, "'cache': expected a group");
	expect_error("\nresolver = ( \"1.2.3.4\" );\n", 2, "'resolver': expected a group");
	expect_error("cache = {\n max_ttl = \"3600\"; };\n", 2,
	             "'cache.max_ttl': expected an integer");
	expect_error("cache = {\n max_ttl = 3600.0; };\n", 2,
	             "'cache.max_ttl': expected an integer");
	expect_error("cache = {\n max_ttl = true; };\n", 2, "'cache.max_ttl': expected an integer");
	expect_error("resolver = {\n timeout_ms = [ 1 ]; };\n", 2,
	             "'resolver.timeout_ms': expected an integer");
	expect_error("checks = {\n sender = \"yes\"; };\n", 2,
	             "'checks.sender': expected true or false");
	expect_error("checks = {\n recipient = 1; };\n", 2,
	             "'checks.recipient': expected true or false");
	expect_error("mode = 1;\n", 1, "'mode': expected a string");
	expect_error("actions = {\n null_mx = reject; };\n", 2, "syntax error");
	expect_error("actions = {\n null_mx = 3; };\n", 2, "'actions.null_mx': expected a string");
	expect_error("milter = {\n socket = 8895; };\n", 2, "'milter.socket': expected a string");
	expect_error("milter = {\n socket = \"\"; };\n", 2, "'milter.socket': must not be empty");
	expect_error("policy = {\n listen = [ \"inet:127.0.0.1:1\" ]; };\n", 2,
	             "'policy.listen': expected a string");
	expect_error("resilience = {\n outage_ratio = \"0.5\"; };\n", 2,
	             "'resilience.outage_ratio': expected a number");
	expect_error("bogus_networks = \"10.0.0.0/8\";\n", 1, "'bogus_networks': expected a list");
	expect_error("bogus_networks = {\n a = \"10.0.0.0/8\"; };\n", 1,
	             "'bogus_networks': expected a list");
	expect_error("skip = {\n domains = \"example.com\"; };\n", 2,
	             "'skip.domains': expected a list");
	expect_error("skip = {\n clients = ( \"192.0.2.1\",\n ( \"x\" ) ); };\n", 3,
	             "'skip.clients[1]': expected a string");
	expect_error("log = {\n facility = 2; };\n", 2, "'log.facility': expected a string");
}

static void test_bad_values(void **state)
{
	(void)state;
	expect_error("mode = \"enforcing\";\n", 1,
	             "'mode': invalid value \"enforcing\" (expected \"enforce\" or \"monitor\")");
	expect_error("log = {\n format = \"text\"; };\n", 2,
	             "'log.format': invalid value \"text\"");
	expect_error("log = {\n facility = \"user\"; };\n", 2,
	             "'log.facility': invalid value \"user\"");
	expect_error("log = {\n facility = \"local8\"; };\n", 2,
	             "'log.facility': invalid value \"local8\"");
	expect_error("log = {\n facility = \"MAIL\"; };\n", 2, "invalid value \"MAIL\"");
	expect_error("checks = {\n mixed_null_mx = \"reject\"; };\n", 2,
	             "'checks.mixed_null_mx': invalid value");
	expect_error("resilience = {\n on_dns_outage = \"warn\"; };\n", 2,
	             "'resilience.on_dns_outage': invalid value");
	expect_error("actions = {\n broken_mx = \"bounce\"; };\n", 2,
	             "'actions.broken_mx': invalid value \"bounce\" (expected \"reject\", "
	             "\"tempfail\", \"warn\" or \"accept\")");
	/* a control character from the file is not copied into the message */
	expect_error("mode = \"a\\nb\";\n", 1, "invalid value \"a?b\"");
}

static void test_ranges(void **state)
{
	static const struct {
		const char *group, *key;
		long long lo, hi;
		const char *extra; /* other settings of the group the test needs */
	} r[] = {
	        {"resolver", "timeout_ms", 100, 60000, ""},
	        {"cache", "max_entries", 0, 10000000, ""},
	        {"cache", "min_ttl", 0, 2147483647, " max_ttl = 2147483647;"},
	        {"cache", "max_ttl", 0, 2147483647, ""},
	        {"cache", "error_ttl", 0, 300, ""},
	        {"milter", "timeout", 1, 86400, ""},
	        {"policy", "idle_timeout", 1, 86400, ""},
	        {"policy", "max_connections", 1, 1000000, ""},
	        {"resilience", "outage_window", 10, 100000, ""},
	};
	char text[256], want[128];
	struct config *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		snprintf(text, sizeof(text), "%s = {\n%s = %lld;%s };\n", r[i].group, r[i].key,
		         r[i].lo, r[i].extra);
		c = load_ok(text);
		config_unref(c);
		snprintf(text, sizeof(text), "%s = {\n%s = %lld;%s };\n", r[i].group, r[i].key,
		         r[i].hi, r[i].extra);
		c = load_ok(text);
		config_unref(c);

		snprintf(text, sizeof(text), "%s = {\n%s = %lld;%s };\n", r[i].group, r[i].key,
		         r[i].lo - 1, r[i].extra);
		snprintf(want, sizeof(want), "'%s.%s': %lld is out of range (%lld..%lld)",
		         r[i].group, r[i].key, r[i].lo - 1, r[i].lo, r[i].hi);
		expect_error(text, 2, want);
		/* beyond 32 bits needs the L suffix, or libconfig truncates it (tested below) */
		snprintf(text, sizeof(text), "%s = {\n%s = %lld%s;%s };\n", r[i].group, r[i].key,
		         r[i].hi + 1, r[i].hi + 1 > INT32_MAX ? "L" : "", r[i].extra);
		snprintf(want, sizeof(want), "'%s.%s': %lld is out of range (%lld..%lld)",
		         r[i].group, r[i].key, r[i].hi + 1, r[i].lo, r[i].hi);
		expect_error(text, 2, want);
	}
	expect_error("resilience = {\n outage_ratio = 0; };\n", 2,
	             "'resilience.outage_ratio': 0 is out of range");
	expect_error("resilience = {\n outage_ratio = 0.0; };\n", 2, "out of range");
	expect_error("resilience = {\n outage_ratio = -0.5; };\n", 2, "out of range");
	expect_error("resilience = {\n outage_ratio = 1.0001; };\n", 2, "out of range");
	expect_error("resilience = {\n outage_ratio = 2; };\n", 2, "out of range");
	c = load_ok("resilience = { outage_ratio = 0.001; };");
	assert_true(c->outage_ratio == 0.001);
	config_unref(c);
}

static void test_int_overflow(void **state)
{
	char text[200];

	(void)state;
	/* libconfig 1.5 reads these as 100, -1, 1 and 1 without complaint */
	expect_error("resolver = {\n timeout_ms = 4294967396; };\n", 2,
	             "integer 4294967396 does not fit in 32 bits");
	expect_error("cache = {\n\n max_ttl = 99999999999999999999; };\n", 3,
	             "integer 99999999999999999999 does not fit in 32 bits");
	expect_error("cache = {\n max_entries = 0x100000001; };\n", 2,
	             "integer 0x100000001 does not fit in 32 bits");
	expect_error("resilience = {\n outage_ratio = 4294967297; };\n", 2,
	             "does not fit in 32 bits");
	expect_error("cache = { max_ttl = 2147483648; };\n", 1, "does not fit in 32 bits");
	expect_error("cache = { min_ttl = -2147483649; };\n", 1, "does not fit in 32 bits");
	/* even in a key that would be refused anyway: the value is wrong either way */
	expect_error("mode = \"enforce\";\nfoo = 4294967296;\n", 2, "does not fit in 32 bits");
	/* 64-bit literals: saturated or wrapped by libconfig */
	expect_error("cache = {\n max_ttl = 99999999999999999999L; };\n", 2,
	             "integer 99999999999999999999L does not fit in 64 bits");
	expect_error("cache = {\n max_ttl = 0xFFFFFFFFFFFFFFFFFL; };\n", 2,
	             "does not fit in 64 bits");
	/* fits in 64 bits, not in the key's range */
	expect_error("cache = {\n max_ttl = 4294967296L; };\n", 2,
	             "'cache.max_ttl': 4294967296 is out of range");
	expect_error("cache = {\n max_entries = -1; };\n", 2,
	             "'cache.max_entries': -1 is out of range");
	/* a long literal is shortened in the message */
	memset(text, '9', sizeof(text));
	memcpy(text, "cache = {\n max_ttl = ", 21);
	memcpy(text + sizeof(text) - 5, "; };\n", 5);
	expect_error_n(text, sizeof(text), 2, "integer 9999999999999999999999999999999999999999");
	expect_error_n(text, sizeof(text), 2, "999... does not fit in 32 bits");
}

static void test_ttl_order(void **state)
{
	struct config *c;

	(void)state;
	expect_error("cache = {\n min_ttl = 600;\n max_ttl = 300; };\n", 2,
	             "'cache.min_ttl' (600) is greater than 'cache.max_ttl' (300)");
	expect_error("cache = {\n min_ttl = 86401; };\n", 2, "is greater than 'cache.max_ttl'");
	expect_error("cache = {\n\n max_ttl = 10; min_ttl = 11; };\n", 3, "is greater than");
	c = load_ok("cache = { min_ttl = 300; max_ttl = 300; };");
	assert_int_equal(c->cache_min_ttl, 300);
	assert_int_equal(c->cache_max_ttl, 300);
	config_unref(c);
}

static void test_actions(void **state)
{
	static const char *const keys[] = {"null_mx",   "nxdomain", "no_mail_host",
	                                   "broken_mx", "mx_cname", "dns_error"};
	static const char *const names[] = {"accept", "warn", "tempfail", "reject"};
	static const enum verdict v[] = {V_NULL_MX,   V_NXDOMAIN, V_NO_MAIL_HOST,
	                                 V_BROKEN_MX, V_MX_CNAME, V_DNS_ERROR};
	static const enum action a[] = {ACT_ACCEPT, ACT_WARN, ACT_TEMPFAIL, ACT_REJECT};
	char text[128];
	struct config *c;
	size_t i, j;

	(void)state;
	for (i = 0; i < 6; i++) {
		for (j = 0; j < 4; j++) {
			snprintf(text, sizeof(text), "actions = {\n\n %s = \"%s\"; };\n", keys[i],
			         names[j]);
			if (v[i] == V_DNS_ERROR && a[j] == ACT_REJECT) {
				expect_error(text, 3,
				             "'actions.dns_error': a temporary DNS failure must "
				             "never bounce mail; use tempfail, warn or accept");
				continue;
			}
			c = load_ok(text);
			assert_int_equal(c->actions[v[i]], a[j]);
			assert_int_equal(c->actions[V_OK], ACT_ACCEPT);
			assert_int_equal(c->actions[V_SKIPPED], ACT_ACCEPT);
			config_unref(c);
		}
	}
}

static void test_bogus_networks(void **state)
{
	struct config *c, *d = config_defaults();
	struct cidr n;

	(void)state;
	/* absent: the built-in list */
	c = load_ok("mode = \"enforce\";");
	assert_netlist_equal(&c->bogus_networks, &d->bogus_networks);
	config_unref(c);
	/* present: replaces it */
	c = load_ok("bogus_networks = ( \"203.0.113.0/24\" );");
	assert_int_equal(c->bogus_networks.n, 1);
	n = cidr("203.0.113.0/24");
	assert_true(cidr_equal(&c->bogus_networks.v[0], &n));
	assert_true(netlist_match_str(&c->bogus_networks, "203.0.113.9"));
	assert_false(netlist_match_str(&c->bogus_networks, "127.0.0.1"));
	config_unref(c);
	/* empty: nothing is bogus */
	c = load_ok("bogus_networks = [ ];");
	assert_int_equal(c->bogus_networks.n, 0);
	assert_false(netlist_match_str(&c->bogus_networks, "127.0.0.1"));
	assert_false(netlist_match_str(&c->bogus_networks, "::1"));
	config_unref(c);
	config_unref(d);
	expect_error("bogus_networks = [ \"10.0.0.0/8\",\n \"10.0.0.1/8\" ];\n", 2,
	             "'bogus_networks[1]': invalid network \"10.0.0.1/8\"");
	expect_error("bogus_networks = [\n \"10.0.0.0/33\" ];\n", 2, "invalid network");
	expect_error("bogus_networks = [\n \"example.com\" ];\n", 2, "invalid network");
}

static void test_skip(void **state)
{
	struct config *c;

	(void)state;
	c = load_ok("skip = { domains = [ \"Mail.Example.ORG.\", \".Sub.Example.NET\" ];\n"
	            " clients = [ \"2001:DB8::/32\", \"192.0.2.1\" ]; };");
	assert_int_equal(domlist_count(&c->skip_domains), 2);
	assert_true(domlist_match(&c->skip_domains, "mail.example.org"));
	assert_false(domlist_match(&c->skip_domains, "a.mail.example.org"));
	assert_true(domlist_match(&c->skip_domains, "a.sub.example.net"));
	assert_false(domlist_match(&c->skip_domains, "sub.example.net"));
	assert_int_equal(c->skip_clients.n, 2);
	assert_true(netlist_match_str(&c->skip_clients, "2001:db8::25"));
	assert_true(netlist_match_str(&c->skip_clients, "192.0.2.1"));
	assert_false(netlist_match_str(&c->skip_clients, "192.0.2.2"));
	config_unref(c);
	c = load_ok("skip = { domains = ( \"b\xc3\xbc"
	            "cher.example\" ); };");
	assert_int_equal(domlist_count(&c->skip_domains), 1);
	assert_true(domlist_match(&c->skip_domains, "xn--bcher-kva.example"));
	config_unref(c);
	expect_error("skip = {\n domains = [ \"ok.example\",\n \"exa mple.com\" ]; };\n", 3,
	             "'skip.domains[1]': invalid domain \"exa mple.com\"");
	expect_error("skip = {\n domains = [ \".\" ]; };\n", 2,
	             "'skip.domains[0]': invalid domain");
	expect_error("skip = {\n domains = [ \"..example.com\" ]; };\n", 2, "invalid domain");
	expect_error("skip = {\n domains = [ \"\" ]; };\n", 2, "invalid domain");
	expect_error("skip = {\n domains = [ \"-bad.example\" ]; };\n", 2, "invalid domain");
	expect_error("skip = {\n clients = [ \"192.0.2.1/24\" ]; };\n", 2,
	             "'skip.clients[0]': invalid network \"192.0.2.1/24\"");
	expect_error("skip = {\n clients = [\n\n \"192.0.2\" ]; };\n", 4,
	             "'skip.clients[0]': invalid network");
}

static void test_syntax_errors(void **state)
{
	char deep[256];
	size_t i;

	(void)state;
	expect_error("mode = \"enforce\";\ncache = { max_ttl = 5; };\nlog = { format = = 1; };\n",
	             3, "syntax error: unexpected '='");
	expect_error("checks = {\n sender = yes; };\n", 2, "syntax error: unexpected 'yes'");
	expect_error("actions = {\n null_mx = reject; };\n", 2,
	             "syntax error: unexpected 'reject'");
	expect_error("cache = {\n max_ttl = 5;\n", 3, "syntax error: unexpected end of file");
	expect_error("cache = { };;\n", 1, "syntax error: unexpected ';'");
	expect_error("skip = {\n clients = [ \"192.0.2.1\",\n ];\n};\n", 3,
	             "syntax error: unexpected ']'");
	expect_error("skip = {\n clients = [ [ \"192.0.2.1\" ] ]; };\n", 2,
	             "syntax error: unexpected '['");
	expect_error("mode = \"enforce\" \"x\" 5;\n", 1, "syntax error: unexpected '5'");
	/* "1e5" then a setting named L */
	expect_error("resolver = { timeout_ms = 1e5L; };\n", 1, "syntax error: unexpected ';'");
	expect_error("mode = -;\n", 1, "syntax error: unexpected character '-'");
	expect_error("mode = \"enforce\"; \v\n", 1, "syntax error: unexpected character '?'");
	expect_error("\xef\xbb\xbfmode = \"enforce\";\n", 1, "syntax error: unexpected character");
	expect_error("\n\"mode\" = \"enforce\";\n", 2, "syntax error: unexpected '\"mode\"'");
	expect_error("\nmode = \"enforce\n;\n", 2, "syntax error: unterminated string");
	expect_error("mode = \"enforce\";\n\n/* the end\n\n", 3,
	             "syntax error: unterminated comment");
	/* left to libconfig */
	expect_error("mode = \"enforce\";\n\nmode = \"monitor\";\n", 3,
	             "syntax error: duplicate setting name");
	expect_error("skip = {\n clients = [ \"192.0.2.1\", 5 ]; };\n", 2,
	             "syntax error: mismatched element type in array");
	/* nesting is bounded */
	for (i = 0; i < 40; i++)
		memcpy(deep + 2 * i, i ? "((" : "a=", 2);
	deep[80] = '\0';
	expect_error(deep, 1, "syntax error: nested more than 16 levels deep");
	/* @include would read a file nobody validated */
	expect_error("mode = \"enforce\";\n  @include \"/etc/passwd\"\n", 2,
	             "@include is not supported");
	/* libconfig would stop reading at a NUL byte */
	expect_error_n("mode = \"enforce\";\n\0cache = 5;\n", 30, 2, "NUL byte");
}

/* Forms libconfig 1.5 accepts must pass the syntax check as well. */
static void test_syntax_accepted(void **state)
{
	static const char *const ok[] = {
	        "mode = \"enforce\"; # comment on the last line, no newline",
	        "mode = \"enforce\"; // the same",
	        "mode : \"enforce\", log : { format : \"kv\", }",
	        "mode = \"enf\" \"orce\"\nlog = { format = \"k\"\n\"v\" }",
	        "mode=\"enforce\"log={format=\"kv\"}",
	        "mode = \"enforce\";\r\nlog = { format = \"kv\"; };\r\n",
	        "/* one */ mode /* two */ = /* three\n four */ \"enforce\";",
	        "skip = { domains = [ \"a\\x2e\" \"example\" ]; };",
	        "milter = { socket = \"unix:/h\\\"x\"; };",
	        "milter = { socket = \"unix:/a \\q \\\\ b\"; };",
	        "cache = { max_ttl = 0X1f; min_ttl = 0x1fL; max_entries = 08; error_ttl = -0; };",
	        "cache = { max_ttl = 30LL; };",
	        "resilience = { outage_ratio = .5; };",
	        "resilience = { outage_ratio = +.5e0; };",
	        "resilience = { outage_ratio = 1.; };",
	        "resilience = { outage_ratio = 5E-1; };",
	        "checks = { sender = TRUE; recipient = False; };",
	        "skip = { domains = ( ); clients = ( \"192.0.2.1\", \"::1\" ); };",
	};
	struct config *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		c = load_ok(ok[i]);
		config_unref(c);
	}
	c = load_ok("milter = { socket = \"unix:/a\\tb\\\"c\" \"d\"; };");
	assert_string_equal(c->milter_socket, "unix:/a\tb\"cd");
	config_unref(c);
	c = load_ok("cache = { max_ttl = 0X1f; min_ttl = 0x1fL; };");
	assert_int_equal(c->cache_max_ttl, 31);
	assert_int_equal(c->cache_min_ttl, 31);
	config_unref(c);
}

static void test_missing_file(void **state)
{
	char err[512], path[PATH_MAX], want[PATH_MAX + 64];
	const char *dir = getenv("TMPDIR");

	(void)state;
	snprintf(path, sizeof(path), "%s/mxsane-test-config-does-not-exist.conf",
	         dir && *dir ? dir : "/tmp");
	unlink(path);
	assert_null(config_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s", dir && *dir ? dir : "/tmp");
	assert_null(config_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(EISDIR));
	assert_string_equal(err, want);

	/* no room for the message, or none at all: still just NULL */
	assert_null(config_load("/nonexistent/mxsane.conf", NULL, 0));
	assert_null(config_load("/nonexistent/mxsane.conf", err, 8));
	assert_string_equal(err, "/nonexi");
}

/* The installed example must load and describe exactly the defaults. */
/* mxsane-check -s: the servers replaced through the config, checked as the file's are */
static void test_set_servers(void **state)
{
	(void)state;
	char err[256];
	struct config *c = config_defaults();
	const char *good[] = {"127.0.0.1:5300", "[::1]:53"};
	const char *bad[] = {"127.0.0.1", "example.net"};
	assert_non_null(c);
	assert_int_equal(config_set_servers(c, good, 2, err, sizeof(err)), 0);
	assert_int_equal(c->nservers, 2);
	assert_string_equal(c->servers[1], "[::1]:53");
	assert_int_equal(config_set_servers(c, bad, 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "example.net"));
	assert_int_equal(c->nservers, 2); /* unchanged */
	assert_string_equal(c->servers[0], "127.0.0.1:5300");
	config_unref(c);
}

static void test_example_conf(void **state)
{
	const char *top = getenv("MXS_TOP");
	char path[PATH_MAX], err[512];
	struct config *c, *d;

	(void)state;
	snprintf(path, sizeof(path), "%s/conf/mxsane.conf", top && *top ? top : ".");
	c = config_load(path, err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	d = config_defaults();
	assert_non_null(d);
	assert_config_equal(c, d);
	config_unref(c);
	config_unref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_metrics_listen),
	        cmocka_unit_test(test_empty_file_is_defaults),
	        cmocka_unit_test(test_refcount),
	        cmocka_unit_test(test_every_key),
	        cmocka_unit_test(test_choices),
	        cmocka_unit_test(test_servers_valid),
	        cmocka_unit_test(test_servers_invalid),
	        cmocka_unit_test(test_sockets),
	        cmocka_unit_test(test_unknown_keys),
	        cmocka_unit_test(test_wrong_types),
	        cmocka_unit_test(test_bad_values),
	        cmocka_unit_test(test_ranges),
	        cmocka_unit_test(test_int_overflow),
	        cmocka_unit_test(test_ttl_order),
	        cmocka_unit_test(test_actions),
	        cmocka_unit_test(test_bogus_networks),
	        cmocka_unit_test(test_skip),
	        cmocka_unit_test(test_syntax_errors),
	        cmocka_unit_test(test_syntax_accepted),
	        cmocka_unit_test(test_missing_file),
	        cmocka_unit_test(test_example_conf),
	        cmocka_unit_test(test_set_servers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
