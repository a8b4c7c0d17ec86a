/*
 * metrics.h - the Prometheus text exposition format (version 0.0.4): a growing text buffer
 * that writes metric families ("# HELP", "# TYPE", samples), histograms with fixed buckets,
 * and the counters shared by both daemons (configuration reloads, build information).
 *
 * Counting is meant for the hot path: a histogram observation is one short scan over the
 * bucket bounds and two increments; the cumulative bucket counts Prometheus wants are
 * computed only when the text is written (at scrape time).
 *
 * Names follow Prometheus conventions: one "mxsane_" prefix, counters end in "_total", times
 * are in seconds.  Label values written here are mxsane's own (verdict names, DNS types, ...)
 * and never need escaping; expo_label_value() escapes anything else.
 *
 * Threads: an expo and a hist belong to whoever writes them; struct metrics_reloads may be
 * updated and read from any thread (atomics).
 */
#ifndef MXSANE_METRICS_H
#define MXSANE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bound on one exposition: a scrape that would exceed it is answered 500, never truncated. */
#define EXPO_MAX (1024 * 1024)

struct expo {
	char *buf;
	size_t len, cap;
	bool failed; /* out of memory or over EXPO_MAX: the text is incomplete */
};

void expo_init(struct expo *x);
void expo_free(struct expo *x); /* leaves it empty and reusable */
/* printf into the buffer (sets failed on out of memory or over EXPO_MAX) */
void expo_printf(struct expo *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram) */
void expo_family(struct expo *x, const char *name, const char *type, const char *help);
/* One sample: name{labels} value.  labels: "" or `a="b",c="d"`. */
void expo_u64(struct expo *x, const char *name, const char *labels, uint64_t v);
void expo_f64(struct expo *x, const char *name, const char *labels, double v);
/* A label value as the format wants it (backslash, double quote and newline escaped), cut to
 * fit out (outlen >= 1). */
void expo_label_value(char *out, size_t outlen, const char *s);

/* A histogram of durations observed in milliseconds, exposed in seconds.  Bucket upper
 * bounds (ms): 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, +Inf. */
#define HIST_BUCKETS 12
struct hist {
	uint64_t count[HIST_BUCKETS + 1]; /* per bucket, not cumulative; last: above all */
	uint64_t sum_ms;
};
void hist_observe_ms(struct hist *h, uint64_t ms);
/* name_bucket{labels,le="..."}, name_sum{labels}, name_count{labels}; the family's HELP and
 * TYPE lines are the caller's (expo_family with "histogram"). */
void expo_hist(struct expo *x, const char *name, const char *labels, const struct hist *h);

/* Configuration loads of a daemon: reloads that took effect and reloads refused (invalid
 * file, or the engine could not take it), and the wall-clock time of the last successful
 * load (the one at start included).  Updated and read from any thread. */
struct metrics_reloads {
	atomic_uint_fast64_t ok, failed;
	atomic_int_fast64_t last_ok_unix; /* seconds since the epoch; 0: never */
};
/* now_unix: the caller's wall clock (the core never reads it). */
void metrics_reload_record(struct metrics_reloads *r, bool ok, int64_t now_unix);
void metrics_write_reloads(struct expo *x, const struct metrics_reloads *r);
/* mxsane_build_info{version="..."} 1, and the name of the program (mxsane-milter, ...). */
void metrics_write_build_info(struct expo *x, const char *program);

#endif
