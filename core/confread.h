/*
 * confread.h - what config.c's schema uses to read a file (confread.c): the loader with its
 * error buffer, messages "FILE:LINE: ..." for a setting, typed getters that check ranges and
 * leave *out alone when the key is absent, and value checks.
 */
#ifndef MXSANE_CONFREAD_H
#define MXSANE_CONFREAD_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bound on the size of a configuration file, enforced while reading it. */
#define CONFIG_MAX_BYTES (16u * 1024 * 1024)

/* What one config_load() carries around: where to write the error, and scratch buffers for
 * the name of a setting and a (sanitised) value quoted in a message. */
struct loader {
	const char *path;
	char *err;
	size_t errlen;
	char name[256];
	char val[80];
};

/* A name accepted by a string-valued setting and the value it stands for. */
struct choice {
	const char *name;
	int value;
};

__attribute__((format(printf, 2, 3))) bool conf_fail_file(struct loader *ld, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) bool conf_fail_line(struct loader *ld, unsigned line,
                                                          const char *fmt, ...);
__attribute__((format(printf, 3, 4))) bool
conf_fail_at(struct loader *ld, const config_setting_t *s, const char *fmt, ...);
bool conf_fail_oom(struct loader *ld);
const char *conf_sname(struct loader *ld, const config_setting_t *s);
const char *conf_sanitize(struct loader *ld, const char *t, size_t n);
const char *conf_sval(struct loader *ld, const char *v);
bool conf_read_file(struct loader *ld, char **out, size_t *outlen);
bool conf_check_members(struct loader *ld, const config_setting_t *g, const char *const *known);
bool conf_get_group(struct loader *ld, const config_setting_t *g, const char *key,
                    const char *const *known, const config_setting_t **out);
bool conf_get_int(struct loader *ld, const config_setting_t *g, const char *key, long long min,
                  long long max, long long *out, const config_setting_t **where);
bool conf_get_u32(struct loader *ld, const config_setting_t *g, const char *key, uint32_t min,
                  uint32_t max, uint32_t *out, const config_setting_t **where);
bool conf_get_uns(struct loader *ld, const config_setting_t *g, const char *key, unsigned min,
                  unsigned max, unsigned *out);
bool conf_get_bool(struct loader *ld, const config_setting_t *g, const char *key, bool *out);
bool conf_str_of(struct loader *ld, const config_setting_t *s, const char **out);
bool conf_get_string(struct loader *ld, const config_setting_t *g, const char *key, char **out);
bool conf_get_choice(struct loader *ld, const config_setting_t *g, const char *key,
                     const struct choice *ch, int *out);
bool conf_get_list(struct loader *ld, const config_setting_t *g, const char *key,
                   const config_setting_t **out);
bool conf_server_valid(const char *s);
bool conf_milter_socket_valid(const char *s);
bool conf_policy_listen_valid(const char *s);
bool conf_metrics_listen_valid(const char *s);
bool conf_get_socket(struct loader *ld, const config_setting_t *g, const char *key, char **out,
                     bool (*valid)(const char *), const char *expect);

#endif
