/*
 * test_metrics.c - the Prometheus text exposition (metrics.h): families, samples,
 * histograms with cumulative buckets in seconds, label escaping, the reload counters, and the
 * bound on one exposition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static void test_family_and_samples(void **state)
{
	(void)state;
	struct expo x;
	expo_init(&x);
	expo_family(&x, "mxsane_a_total", "counter", "Things.");
	expo_u64(&x, "mxsane_a_total", "", 3);
	expo_u64(&x, "mxsane_a_total", "k=\"v\"", 18446744073709551615ull);
	expo_f64(&x, "mxsane_b", "", 0.25);
	assert_false(x.failed);
	assert_string_equal(x.buf, "# HELP mxsane_a_total Things.\n"
	                           "# TYPE mxsane_a_total counter\n"
	                           "mxsane_a_total 3\n"
	                           "mxsane_a_total{k=\"v\"} 18446744073709551615\n"
	                           "mxsane_b 0.25\n");
	expo_free(&x);
	assert_null(x.buf);
}

static void test_histogram_buckets_are_cumulative_seconds(void **state)
{
	(void)state;
	struct hist h;
	memset(&h, 0, sizeof(h));
	hist_observe_ms(&h, 0);     /* le 0.001 */
	hist_observe_ms(&h, 1);     /* le 0.001: bounds are inclusive */
	hist_observe_ms(&h, 7);     /* le 0.01 */
	hist_observe_ms(&h, 20000); /* above every bound */
	struct expo x;
	expo_init(&x);
	expo_hist(&x, "mxsane_d_seconds", "role=\"sender\"", &h);
	assert_false(x.failed);
	assert_non_null(strstr(x.buf, "mxsane_d_seconds_bucket{role=\"sender\",le=\"0.001\"} 2\n"));
	assert_non_null(strstr(x.buf, "mxsane_d_seconds_bucket{role=\"sender\",le=\"0.005\"} 2\n"));
	assert_non_null(strstr(x.buf, "mxsane_d_seconds_bucket{role=\"sender\",le=\"0.01\"} 3\n"));
	assert_non_null(strstr(x.buf, "mxsane_d_seconds_bucket{role=\"sender\",le=\"10\"} 3\n"));
	assert_non_null(strstr(x.buf, "mxsane_d_seconds_bucket{role=\"sender\",le=\"+Inf\"} 4\n"));
	assert_non_null(
	        strstr(x.buf, "mxsane_d_seconds_sum{role=\"sender\"} 20.007999999999999\n"));
	assert_non_null(strstr(x.buf, "mxsane_d_seconds_count{role=\"sender\"} 4\n"));
	expo_free(&x);
	/* without labels */
	expo_init(&x);
	expo_hist(&x, "mxsane_e_seconds", "", &h);
	assert_non_null(strstr(x.buf, "mxsane_e_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(x.buf, "mxsane_e_seconds_count 4\n"));
	expo_free(&x);
}

static void test_label_value_escaping(void **state)
{
	(void)state;
	char out[32];
	expo_label_value(out, sizeof(out), "a\"b\\c\nd");
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	expo_label_value(out, 5, "abcdefgh"); /* cut to fit */
	assert_string_equal(out, "abcd");
	expo_label_value(out, 3, "a\"b"); /* an escape is never cut in half */
	assert_string_equal(out, "a");
}

static void test_exposition_is_bounded(void **state)
{
	(void)state;
	struct expo x;
	expo_init(&x);
	char line[1000];
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	for (int i = 0; i < 2000 && !x.failed; i++)
		expo_printf(&x, "%s\n", line);
	assert_true(x.failed);
	assert_true(x.len <= EXPO_MAX);
	expo_free(&x);
}

static void test_reloads(void **state)
{
	(void)state;
	struct metrics_reloads r;
	memset(&r, 0, sizeof(r));
	metrics_reload_record(&r, true, 1000);
	metrics_reload_record(&r, false, 2000);
	metrics_reload_record(&r, true, 3000);
	metrics_reload_record(&r, false, 4000);
	metrics_reload_record(&r, false, 5000);
	struct expo x;
	expo_init(&x);
	metrics_write_reloads(&x, &r);
	assert_non_null(strstr(x.buf, "mxsane_config_reloads_total{result=\"ok\"} 2\n"));
	assert_non_null(strstr(x.buf, "mxsane_config_reloads_total{result=\"failed\"} 3\n"));
	assert_non_null(strstr(x.buf, "mxsane_config_last_load_success_timestamp_seconds 3000\n"));
	expo_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_family_and_samples),
	        cmocka_unit_test(test_histogram_buckets_are_cumulative_seconds),
	        cmocka_unit_test(test_label_value_escaping),
	        cmocka_unit_test(test_exposition_is_bounded),
	        cmocka_unit_test(test_reloads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
