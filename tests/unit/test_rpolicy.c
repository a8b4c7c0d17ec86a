/*
 * test_rpolicy.c - unit tests for core/rpolicy.c and recipient_policies_file in the
 * configuration: the line syntax (domain entries, every key, values, repeats), errors naming
 * the file and the line, entries completed from the main configuration, the most specific
 * entry winning, and a file that cannot be read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <limits.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "rpolicy.h"

static char dir[512];

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/mxsane-test-rpolicy-XXXXXX", t && *t ? t : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *put(const char *name, const char *text)
{
	static char path[4][PATH_MAX];
	static unsigned k;
	char *p = path[k++ % 4];
	FILE *fp;

	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	fp = fopen(p, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return p;
}

/* The main configuration's defaults as a base. */
static struct rpolicy base(void)
{
	struct rpolicy b;
	memset(&b, 0, sizeof(b));
	b.check_sender = 1;
	b.mode = MODE_ENFORCE;
	for (int v = 0; v < V__COUNT; v++)
		b.actions[v] = ACT_ACCEPT;
	b.actions[V_NULL_MX] = ACT_REJECT;
	b.actions[V_BROKEN_MX] = ACT_TEMPFAIL;
	b.actions[V_MX_CNAME] = ACT_WARN;
	b.actions[V_DNS_ERROR] = ACT_TEMPFAIL;
	return b;
}

static bool parse(const char *line, struct rpolicy *out, char *entry, char *why)
{
	struct rpolicy b = base();
	return rpolicy_parse(line, strlen(line), &b, out, entry, why, 256);
}

static void assert_refused(const char *line, const char *needle)
{
	struct rpolicy p;
	char entry[DOMAIN_MAX + 2], why[256] = "";
	if (parse(line, &p, entry, why))
		fail_msg("'%s' was accepted", line);
	if (!strstr(why, needle))
		fail_msg("'%s': reason \"%s\" lacks \"%s\"", line, why, needle);
}

static void test_parse_every_key(void **state)
{
	struct rpolicy p;
	char entry[DOMAIN_MAX + 2], why[256];

	(void)state;
	assert_true(parse("Customer.Example check_sender=false mode=monitor\tbroken_mx=accept "
	                  "mx_cname=reject null_mx=warn nxdomain=tempfail no_mail_host=accept "
	                  "dns_error=accept",
	                  &p, entry, why));
	assert_string_equal(entry, "customer.example");
	assert_int_equal(p.check_sender, 0);
	assert_int_equal(p.mode, MODE_MONITOR);
	assert_int_equal(p.actions[V_BROKEN_MX], ACT_ACCEPT);
	assert_int_equal(p.actions[V_MX_CNAME], ACT_REJECT);
	assert_int_equal(p.actions[V_NULL_MX], ACT_WARN);
	assert_int_equal(p.actions[V_NXDOMAIN], ACT_TEMPFAIL);
	assert_int_equal(p.actions[V_NO_MAIL_HOST], ACT_ACCEPT);
	assert_int_equal(p.actions[V_DNS_ERROR], ACT_ACCEPT);
}

static void test_parse_keeps_the_base_for_keys_not_given(void **state)
{
	struct rpolicy p;
	char entry[DOMAIN_MAX + 2], why[256];

	(void)state;
	assert_true(parse(".hosted.example mx_cname=reject", &p, entry, why));
	assert_string_equal(entry, ".hosted.example");
	assert_int_equal(p.check_sender, 1);
	assert_int_equal(p.mode, MODE_ENFORCE);
	assert_int_equal(p.actions[V_MX_CNAME], ACT_REJECT);
	assert_int_equal(p.actions[V_NULL_MX], ACT_REJECT);
	assert_int_equal(p.actions[V_BROKEN_MX], ACT_TEMPFAIL);
	/* a domain alone: the main configuration, as an exception to a parent's entry */
	assert_true(parse("bücher.example", &p, entry, why));
	assert_string_equal(entry, "xn--bcher-kva.example");
	assert_int_equal(p.actions[V_MX_CNAME], ACT_WARN);
}

static void test_parse_refuses_bad_lines(void **state)
{
	(void)state;
	assert_refused("a..b mode=monitor", "invalid domain name 'a..b'");
	assert_refused(". mode=monitor", "invalid domain");
	assert_refused("c.example mode", "expected key=value");
	assert_refused("c.example colour=blue", "unknown key 'colour'");
	assert_refused("c.example ok=reject", "unknown key 'ok'");
	assert_refused("c.example skipped=reject", "unknown key 'skipped'");
	assert_refused("c.example check_sender=yes", "expected true or false");
	assert_refused("c.example mode=off", "expected enforce or monitor");
	assert_refused("c.example null_mx=bounce", "invalid value 'bounce'");
	assert_refused("c.example null_mx=REJECT", "invalid value");
	assert_refused("c.example broken_mx=rejectrejectreject", "invalid value");
	assert_refused("c.example dns_error=reject", "must never bounce");
	assert_refused("c.example mode=monitor mode=enforce", "'mode' is given twice");
	assert_refused("c.example check_sender=false check_sender=false", "given twice");
}

static void test_load_and_most_specific_lookup(void **state)
{
	char err[512];
	struct rpolicy b = base();

	(void)state;
	const char *path = put("pol", "# hosted customers\n"
	                              "\n"
	                              ".example.net mode=monitor   # every subdomain\r\n"
	                              "shop.example.net check_sender=false\n"
	                              "  example.net null_mx=tempfail\n"
	                              ".a.b.example.org broken_mx=accept");
	struct rpolicies *t = rpolicies_load(path, &b, err, sizeof(err));
	if (!t)
		fail_msg("%s", err);
	assert_int_equal(rpolicies_count(t), 4);
	const struct rpolicy *p = rpolicies_lookup(t, "x.example.net");
	assert_non_null(p);
	assert_string_equal(rpolicies_name(t, p), ".example.net");
	assert_int_equal(p->mode, MODE_MONITOR);
	p = rpolicies_lookup(t, "shop.example.net");
	assert_string_equal(rpolicies_name(t, p), "shop.example.net");
	assert_int_equal(p->check_sender, 0);
	assert_int_equal(p->mode, MODE_ENFORCE); /* not the parent's: the main configuration */
	p = rpolicies_lookup(t, "a.shop.example.net");
	assert_string_equal(rpolicies_name(t, p), ".example.net");
	p = rpolicies_lookup(t, "example.net");
	assert_string_equal(rpolicies_name(t, p), "example.net");
	assert_int_equal(p->actions[V_NULL_MX], ACT_TEMPFAIL);
	assert_non_null(rpolicies_lookup(t, "c.a.b.example.org"));
	assert_null(rpolicies_lookup(t, "a.b.example.org"));
	assert_null(rpolicies_lookup(t, "example.com"));
	assert_null(rpolicies_lookup(NULL, "example.com"));
	rpolicies_free(t);
	rpolicies_free(NULL);
}

static void test_load_errors_name_file_and_line(void **state)
{
	char err[512], want[PATH_MAX + 64];
	struct rpolicy b = base();

	(void)state;
	const char *path = put("bad", "ok.example mode=monitor\n# fine\nbad.example mode=loud\n");
	assert_null(rpolicies_load(path, &b, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:3: 'mode': invalid value 'loud'", path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	path = put("dup", "a.example mode=monitor\nb.example\nA.Example. check_sender=false\n");
	assert_null(rpolicies_load(path, &b, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:3: 'a.example' is given twice", path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	snprintf(want, sizeof(want), "%s/none", dir);
	assert_null(rpolicies_load(want, &b, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open"));
	assert_non_null(strstr(err, want));
	/* an empty file is an empty table */
	path = put("empty", "# nothing yet\n");
	struct rpolicies *t = rpolicies_load(path, &b, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(rpolicies_count(t), 0);
	assert_null(rpolicies_lookup(t, "example.com"));
	rpolicies_free(t);
}

/* In the main file: an absolute path, read after the other settings, whose values complete
 * the entries; its errors are the list file's. */
static void test_config_setting(void **state)
{
	char err[512], text[PATH_MAX + 256];

	(void)state;
	const char *pol = put("p", "c.example nxdomain=warn\n");
	snprintf(text, sizeof(text),
	         "recipient_policies_file = \"%s\";\nmode = \"monitor\";\n"
	         "checks = { sender = false; };\nactions = { mx_cname = \"tempfail\"; };\n",
	         pol);
	struct config *c = config_load(put("m.conf", text), err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	assert_string_equal(c->recipient_policies_file, pol);
	const struct rpolicy *p = rpolicies_lookup(c->rpolicies, "c.example");
	assert_non_null(p);
	assert_int_equal(p->actions[V_NXDOMAIN], ACT_WARN);
	assert_int_equal(p->actions[V_MX_CNAME], ACT_TEMPFAIL);
	assert_int_equal(p->mode, MODE_MONITOR);
	assert_int_equal(p->check_sender, 0);
	config_unref(c);

	c = config_load(put("n.conf", "mode = \"enforce\";\n"), err, sizeof(err));
	assert_non_null(c);
	assert_null(c->rpolicies); /* not set: nothing per check but this test */
	config_unref(c);

	assert_null(config_load(put("r.conf", "recipient_policies_file = \"pol\";\n"), err,
	                        sizeof(err)));
	assert_non_null(strstr(err, "expected an absolute path"));
	assert_non_null(strstr(err, "r.conf:1:"));

	pol = put("q", "c.example\nd.example dns_error=reject\n");
	snprintf(text, sizeof(text), "recipient_policies_file = \"%s\";\n", pol);
	assert_null(config_load(put("s.conf", text), err, sizeof(err)));
	char want[PATH_MAX + 16];
	snprintf(want, sizeof(want), "%s:2: ", pol);
	assert_true(strncmp(err, want, strlen(want)) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_every_key),
	        cmocka_unit_test(test_parse_keeps_the_base_for_keys_not_given),
	        cmocka_unit_test(test_parse_refuses_bad_lines),
	        cmocka_unit_test(test_load_and_most_specific_lookup),
	        cmocka_unit_test(test_load_errors_name_file_and_line),
	        cmocka_unit_test(test_config_setting),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
