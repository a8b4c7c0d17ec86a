/*
 * metrics.c - the Prometheus text exposition buffer, histograms and the counters both
 * daemons share (see metrics.h).
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t hist_bound_ms[HIST_BUCKETS] = {1,   5,   10,   25,   50,   100,
                                                     250, 500, 1000, 2500, 5000, 10000};
static const char *const hist_le[HIST_BUCKETS] = {"0.001", "0.005", "0.01", "0.025", "0.05", "0.1",
                                                  "0.25",  "0.5",   "1",    "2.5",   "5",    "10"};

void expo_init(struct expo *x)
{
	memset(x, 0, sizeof(*x));
}

void expo_free(struct expo *x)
{
	free(x->buf);
	expo_init(x);
}

static bool expo_reserve(struct expo *x, size_t more)
{
	if (x->failed)
		return false;
	if (x->len + more + 1 <= x->cap)
		return true;
	if (x->len + more + 1 > EXPO_MAX) {
		x->failed = true;
		return false;
	}
	size_t cap = x->cap ? x->cap : 8192;
	while (cap < x->len + more + 1)
		cap *= 2;
	if (cap > EXPO_MAX)
		cap = EXPO_MAX;
	char *nb = realloc(x->buf, cap);
	if (!nb) {
		x->failed = true;
		return false;
	}
	x->buf = nb;
	x->cap = cap;
	return true;
}

void expo_printf(struct expo *x, const char *fmt, ...)
{
	va_list ap;
	char small[512];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		x->failed = true;
		return;
	}
	if (!expo_reserve(x, (size_t)n))
		return;
	if ((size_t)n < sizeof(small)) {
		memcpy(x->buf + x->len, small, (size_t)n + 1);
	} else {
		va_start(ap, fmt);
		vsnprintf(x->buf + x->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	x->len += (size_t)n;
}

void expo_family(struct expo *x, const char *name, const char *type, const char *help)
{
	expo_printf(x, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void expo_u64(struct expo *x, const char *name, const char *labels, uint64_t v)
{
	if (labels && labels[0])
		expo_printf(x, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
	else
		expo_printf(x, "%s %llu\n", name, (unsigned long long)v);
}

void expo_f64(struct expo *x, const char *name, const char *labels, double v)
{
	if (labels && labels[0])
		expo_printf(x, "%s{%s} %.17g\n", name, labels, v);
	else
		expo_printf(x, "%s %.17g\n", name, v);
}

void expo_label_value(char *out, size_t outlen, const char *s)
{
	size_t o = 0;
	for (; *s; s++) {
		const char *esc = NULL;
		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '"')
			esc = "\\\"";
		else if (*s == '\n')
			esc = "\\n";
		size_t need = esc ? 2 : 1;
		if (o + need >= outlen)
			break;
		if (esc) {
			memcpy(out + o, esc, 2);
		} else {
			out[o] = *s;
		}
		o += need;
	}
	out[o] = '\0';
}

void hist_observe_ms(struct hist *h, uint64_t ms)
{
	size_t i = 0;
	while (i < HIST_BUCKETS && ms > hist_bound_ms[i])
		i++;
	h->count[i]++;
	h->sum_ms += ms;
}

void expo_hist(struct expo *x, const char *name, const char *labels, const struct hist *h)
{
	const char *sep = labels && labels[0] ? "," : "";
	const char *lb = labels ? labels : "";
	uint64_t cum = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		cum += h->count[i];
		expo_printf(x, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, lb, sep, hist_le[i],
		            (unsigned long long)cum);
	}
	cum += h->count[HIST_BUCKETS];
	expo_printf(x, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lb, sep, (unsigned long long)cum);
	char n2[128];
	snprintf(n2, sizeof(n2), "%s_sum", name);
	expo_f64(x, n2, lb, (double)h->sum_ms / 1000.0);
	snprintf(n2, sizeof(n2), "%s_count", name);
	expo_u64(x, n2, lb, cum);
}

void metrics_reload_record(struct metrics_reloads *r, bool ok, int64_t now_unix)
{
	if (ok) {
		atomic_fetch_add(&r->ok, 1);
		atomic_store(&r->last_ok_unix, now_unix);
	} else {
		atomic_fetch_add(&r->failed, 1);
	}
}

void metrics_write_reloads(struct expo *x, const struct metrics_reloads *r)
{
	expo_family(x, "mxsane_config_reloads_total", "counter",
	            "Configuration reloads (SIGUSR1, and SIGHUP for the policy server) by result: "
	            "ok took effect, failed kept the running configuration.");
	expo_u64(x, "mxsane_config_reloads_total", "result=\"ok\"", atomic_load(&r->ok));
	expo_u64(x, "mxsane_config_reloads_total", "result=\"failed\"", atomic_load(&r->failed));
	expo_family(x, "mxsane_config_last_load_success_timestamp_seconds", "gauge",
	            "When the configuration in use was loaded (at start or by the last "
	            "successful reload), seconds since the epoch.");
	expo_u64(x, "mxsane_config_last_load_success_timestamp_seconds", "",
	         (uint64_t)atomic_load(&r->last_ok_unix));
}

void metrics_write_build_info(struct expo *x, const char *program)
{
	char p[64];
	expo_label_value(p, sizeof(p), program);
	expo_family(x, "mxsane_build_info", "gauge",
	            "Always 1; the labels say which version of which program runs.");
	expo_printf(x, "mxsane_build_info{version=\"%s\",program=\"%s\"} 1\n", MXSANE_VERSION, p);
}
