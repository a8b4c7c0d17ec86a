/*
 * confread.c - the reading half of config.c: the file itself (bounded), error messages with
 * file and line, typed access to libconfig settings with range checks, and the checks of
 * values (servers, sockets).  config.c holds the schema: which settings exist, their
 * defaults and limits.
 */
#include "confread.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "addr.h"
#include "text.h"

/* ------------------------------------------------------------------------------------------ */
/* Error messages */

/* "FILE: message"; always returns false so callers can `return conf_fail_file(...)`. */
__attribute__((format(printf, 2, 3))) bool conf_fail_file(struct loader *ld, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ld->err && ld->errlen)
		snprintf(ld->err, ld->errlen, "%s: %s", ld->path, msg);
	return false;
}

/* "FILE:LINE: message". */
__attribute__((format(printf, 3, 4))) bool conf_fail_line(struct loader *ld, unsigned line,
                                                          const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ld->err && ld->errlen)
		snprintf(ld->err, ld->errlen, "%s:%u: %s", ld->path, line, msg);
	return false;
}

/* "FILE:LINE: message" with the line of a setting (one file: @include is refused). */
__attribute__((format(printf, 3, 4))) bool
conf_fail_at(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ld->err && ld->errlen)
		snprintf(ld->err, ld->errlen, "%s:%u: %s", ld->path, config_setting_source_line(s),
		         msg);
	return false;
}

bool conf_fail_oom(struct loader *ld)
{
	return conf_fail_file(ld, "out of memory");
}

static size_t name_append(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *parent = config_setting_parent(s);
	size_t n;
	int r;

	if (!parent)
		return 0; /* the root has no name */
	n = name_append(parent, buf, len);
	if (n >= len)
		return n;
	if (config_setting_name(s))
		r = snprintf(buf + n, len - n, "%s%s", n ? "." : "", config_setting_name(s));
	else
		r = snprintf(buf + n, len - n, "[%d]", config_setting_index(s));
	return r < 0 ? n : n + (size_t)r;
}

/* The full name of a setting as written in messages: "cache.max_ttl", "skip.domains[2]". */
const char *conf_sname(struct loader *ld, const config_setting_t *s)
{
	ld->name[0] = '\0';
	name_append(s, ld->name, sizeof(ld->name));
	return ld->name;
}

/* Text from the file, safe to put in a message: printable ASCII only, shortened. */
const char *conf_sanitize(struct loader *ld, const char *t, size_t n)
{
	text_printable(ld->val, sizeof(ld->val), t, n, 0);
	return ld->val;
}

/* A string value, for a message. */
const char *conf_sval(struct loader *ld, const char *v)
{
	return conf_sanitize(ld, v, strlen(v));
}

/* ------------------------------------------------------------------------------------------ */
/* Reading the file */

/* On success *out holds the text, NUL-terminated, with room for one more byte (len + 2). */
bool conf_read_file(struct loader *ld, char **out, size_t *outlen)
{
	struct stat st;
	FILE *fp = NULL;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, n;
	bool ok = false;

	fp = fopen(ld->path, "r");
	if (!fp) {
		conf_fail_file(ld, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (fstat(fileno(fp), &st) != 0) {
		conf_fail_file(ld, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		conf_fail_file(ld, "cannot open: %s", strerror(EISDIR));
		goto fail;
	}
	for (;;) {
		/* keeps cap - len >= 4096 before each read, so the end always has spare room */
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			nbuf = realloc(buf, cap + 1);
			if (!nbuf) {
				conf_fail_oom(ld);
				goto fail;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (len > CONFIG_MAX_BYTES) {
			conf_fail_file(ld, "too large (more than %u bytes)", CONFIG_MAX_BYTES);
			goto fail;
		}
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		conf_fail_file(ld, "cannot read: %s", strerror(errno));
		goto fail;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	ok = true;
fail:
	free(buf);
	if (fp)
		fclose(fp);
	return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Typed access to settings.  Each getter leaves *out alone when the key is absent. */

/* Every member of group g must be one of known[] (NULL-terminated). */
bool conf_check_members(struct loader *ld, const config_setting_t *g, const char *const *known)
{
	const config_setting_t *m;
	size_t k;
	int i, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		m = config_setting_get_elem(g, (unsigned)i);
		for (k = 0; known[k]; k++)
			if (strcmp(known[k], config_setting_name(m)) == 0)
				break;
		if (!known[k])
			return conf_fail_at(ld, m, "unknown setting '%s'", conf_sname(ld, m));
	}
	return true;
}

/* A sub-group of g, checked against its known member names; *out NULL if absent. */
bool conf_get_group(struct loader *ld, const config_setting_t *g, const char *key,
                    const char *const *known, const config_setting_t **out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	*out = NULL;
	if (!s)
		return true;
	if (!config_setting_is_group(s))
		return conf_fail_at(ld, s, "'%s': expected a group { ... }", conf_sname(ld, s));
	*out = s;
	return conf_check_members(ld, s, known);
}

bool conf_get_int(struct loader *ld, const config_setting_t *g, const char *key, long long min,
                  long long max, long long *out, const config_setting_t **where)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	long long v;

	if (where)
		*where = s;
	if (!s)
		return true;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return conf_fail_at(ld, s, "'%s': expected an integer", conf_sname(ld, s));
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return conf_fail_at(ld, s, "'%s': %lld is out of range (%lld..%lld)",
		                    conf_sname(ld, s), v, min, max);
	*out = v;
	return true;
}

bool conf_get_u32(struct loader *ld, const config_setting_t *g, const char *key, uint32_t min,
                  uint32_t max, uint32_t *out, const config_setting_t **where)
{
	long long v = *out;

	if (!conf_get_int(ld, g, key, min, max, &v, where))
		return false;
	*out = (uint32_t)v;
	return true;
}

bool conf_get_uns(struct loader *ld, const config_setting_t *g, const char *key, unsigned min,
                  unsigned max, unsigned *out)
{
	long long v = *out;

	if (!conf_get_int(ld, g, key, min, max, &v, NULL))
		return false;
	*out = (unsigned)v;
	return true;
}

bool conf_get_bool(struct loader *ld, const config_setting_t *g, const char *key, bool *out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (!s)
		return true;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return conf_fail_at(ld, s, "'%s': expected true or false", conf_sname(ld, s));
	*out = config_setting_get_bool(s) != 0;
	return true;
}

/* The string value of setting s itself (a member or a list element). */
bool conf_str_of(struct loader *ld, const config_setting_t *s, const char **out)
{
	*out = "";
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_fail_at(ld, s, "'%s': expected a string", conf_sname(ld, s));
	*out = config_setting_get_string(s);
	return true;
}

/* A non-empty string, copied; replaces (and frees) *out. */
bool conf_get_string(struct loader *ld, const config_setting_t *g, const char *key, char **out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v;
	char *copy;

	if (!s)
		return true;
	if (!conf_str_of(ld, s, &v))
		return false;
	if (!*v)
		return conf_fail_at(ld, s, "'%s': must not be empty", conf_sname(ld, s));
	copy = strdup(v);
	if (!copy)
		return conf_fail_oom(ld);
	free(*out);
	*out = copy;
	return true;
}

static void choices_text(const struct choice *ch, char *buf, size_t len)
{
	size_t n = 0, i;

	buf[0] = '\0';
	for (i = 0; ch[i].name && n < len; i++) {
		const char *sep = !i ? "" : ch[i + 1].name ? ", " : " or ";
		int r = snprintf(buf + n, len - n, "%s\"%s\"", sep, ch[i].name);

		if (r < 0)
			break;
		n += (size_t)r;
	}
}

/* A string that must be one of the names in ch; *out gets its value. */
bool conf_get_choice(struct loader *ld, const config_setting_t *g, const char *key,
                     const struct choice *ch, int *out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v;
	char names[256];
	size_t i;

	if (!s)
		return true;
	if (!conf_str_of(ld, s, &v))
		return false;
	for (i = 0; ch[i].name; i++) {
		if (strcmp(ch[i].name, v) == 0) {
			*out = ch[i].value;
			return true;
		}
	}
	choices_text(ch, names, sizeof(names));
	return conf_fail_at(ld, s, "'%s': invalid value \"%s\" (expected %s)", conf_sname(ld, s),
	                    conf_sval(ld, v), names);
}

/* A list ( ... ) or array [ ... ]; *out NULL if absent.  Elements are checked by the caller. */
bool conf_get_list(struct loader *ld, const config_setting_t *g, const char *key,
                   const config_setting_t **out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	*out = NULL;
	if (!s)
		return true;
	if (!config_setting_is_list(s) && !config_setting_is_array(s))
		return conf_fail_at(ld, s, "'%s': expected a list of strings [ \"...\", ... ]",
		                    conf_sname(ld, s));
	*out = s;
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Value checks */

static bool port_valid(const char *p)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; p[i]; i++) {
		if (i >= 5 || !isdigit((unsigned char)p[i]))
			return false;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	return i > 0 && v >= 1 && v <= 65535;
}

/* "192.0.2.1", "192.0.2.1:5300", "2001:db8::1", "[2001:db8::1]:53". */
bool conf_server_valid(const char *s)
{
	unsigned char bin[16];
	char host[64];
	const char *end, *port = NULL;
	size_t n;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return false;
		n = (size_t)(end - s - 1);
		port = end + 2;
	} else {
		if (inet_pton(AF_INET6, s, bin) == 1)
			return true;
		end = strchr(s, ':');
		n = end ? (size_t)(end - s) : strlen(s);
		port = end ? end + 1 : NULL;
	}
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, s[0] == '[' ? s + 1 : s, n);
	host[n] = '\0';
	if (inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, host, bin) != 1)
		return false;
	return !port || port_valid(port);
}

/* A host in a socket specification: an IP address or a host name (LDH labels). */
static bool sock_host_valid(const char *h, size_t n, bool allow_name)
{
	char buf[256];
	unsigned char bin[16];

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, h, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1)
		return true;
	if (!allow_name)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)buf[i]) && buf[i] != '-' && buf[i] != '.')
			return false;
	return true;
}

static bool sock_path_valid(const char *p)
{
	return p[0] == '/' && strlen(p) < 108; /* sizeof(sun_path) */
}

/* libmilter syntax: unix:/path, local:/path, inet:PORT[@HOST], inet6:PORT[@HOST]. */
bool conf_milter_socket_valid(const char *s)
{
	const char *rest, *at;
	char port[8];

	if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0)
		return sock_path_valid(strchr(s, ':') + 1);
	if (strncmp(s, "inet:", 5) == 0)
		rest = s + 5;
	else if (strncmp(s, "inet6:", 6) == 0)
		rest = s + 6;
	else
		return false;
	at = strchr(rest, '@');
	size_t pl = at ? (size_t)(at - rest) : strlen(rest);
	if (pl == 0 || pl >= sizeof(port))
		return false;
	memcpy(port, rest, pl);
	port[pl] = '\0';
	return port_valid(port) && (!at || sock_host_valid(at + 1, strlen(at + 1), true));
}

/* Postfix syntax: unix:/path, [inet:]HOST:PORT, [inet:][IPv6]:PORT (HOST an IP address). */
bool conf_policy_listen_valid(const char *s)
{
	const char *rest, *colon;

	if (strncmp(s, "unix:", 5) == 0)
		return sock_path_valid(s + 5);
	rest = strncmp(s, "inet:", 5) == 0 ? s + 5 : s; /* "inet:" may be left out */
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		return close && close[1] == ':' && port_valid(close + 2) &&
		       sock_host_valid(rest + 1, (size_t)(close - rest - 1), false);
	}
	colon = strrchr(rest, ':');
	return colon && port_valid(colon + 1) &&
	       sock_host_valid(rest, (size_t)(colon - rest), false);
}

/* metrics.listen: unix:/path, inet:IP:PORT or inet:[IPv6]:PORT ("inet:" required). */
bool conf_metrics_listen_valid(const char *s)
{
	return (strncmp(s, "inet:", 5) == 0 || strncmp(s, "unix:", 5) == 0) &&
	       conf_policy_listen_valid(s);
}

/* A string setting checked by valid(); `expect` describes the accepted forms. */
bool conf_get_socket(struct loader *ld, const config_setting_t *g, const char *key, char **out,
                     bool (*valid)(const char *), const char *expect)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (!conf_get_string(ld, g, key, out))
		return false;
	if (s && !valid(*out))
		return conf_fail_at(ld, s, "'%s': invalid socket \"%s\" (expected %s)",
		                    conf_sname(ld, s), conf_sval(ld, *out), expect);
	return true;
}
