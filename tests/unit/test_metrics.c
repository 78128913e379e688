/* Unit tests for obs/metrics: exact Prometheus text for known samples (GenAI and MCP), float
 * layout, merging of workers, the series cap, label escaping, the MCP label sets (methods,
 * capabilities), process metrics, and a writer racing a scraper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "obs/metrics.h"

#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static char *render_workers(gw_metrics_t **w, size_t n)
{
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_metrics_render_workers((gw_metrics_t *const *)w, n, &out), GW_OK);
    gw_buf_cstr(&out);
    return gw_buf_detach(&out, NULL);
}

static char *render_one(gw_metrics_t *m)
{
    return render_workers(&m, 1);
}

/* Value of the sample line whose name and labels are exactly `series`, or -1 when absent. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static size_t count_prefix(const char *text, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, len) == 0)
            n++;
    return n;
}

/* A strict reader of the text format 0.0.4 for one line: `# HELP|TYPE ...`, or
 * `name{label="value",...} number` where values use only the \\ \" \n escapes. */
static bool valid_line(const char *p, size_t n)
{
    if (n >= 2 && p[0] == '#')
        return strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0;
    size_t i = 0;
    while (i < n && (p[i] == '_' || p[i] == ':' || (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
                     (i > 0 && p[i] >= '0' && p[i] <= '9')))
        i++;
    if (i == 0)
        return false;
    if (i < n && p[i] == '{') {
        i++;
        for (;;) {
            size_t name = i;
            while (i < n && (p[i] == '_' || (p[i] >= 'a' && p[i] <= 'z')))
                i++;
            if (i == name || i + 1 >= n || p[i] != '=' || p[i + 1] != '"')
                return false;
            for (i += 2; i < n && p[i] != '"'; i++) {
                if (p[i] == '\n')
                    return false;
                if (p[i] == '\\') {
                    if (i + 1 >= n || (p[i + 1] != '\\' && p[i + 1] != '"' && p[i + 1] != 'n'))
                        return false;
                    i++;
                }
            }
            if (i >= n)
                return false;
            i++;
            if (i < n && p[i] == ',') {
                i++;
                continue;
            }
            if (i < n && p[i] == '}') {
                i++;
                break;
            }
            return false;
        }
    }
    if (i >= n || p[i] != ' ')
        return false;
    i++;
    char num[64];
    if (n - i == 0 || n - i >= sizeof(num))
        return false;
    memcpy(num, p + i, n - i);
    num[n - i] = '\0';
    if (strcmp(num, "+Inf") == 0 || strcmp(num, "-Inf") == 0 || strcmp(num, "NaN") == 0)
        return true;
    char *end;
    strtod(num, &end);
    return *end == '\0';
}

static void assert_valid_exposition(const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every line ends with a newline */
        if (!valid_line(p, (size_t)(nl - p)))
            fail_msg("invalid exposition line: %.*s", (int)(nl - p), p);
        p = nl + 1;
    }
}

static gw_genai_attrs_t attrs(const char *model)
{
    return (gw_genai_attrs_t){
        .operation = GW_STR("chat"),
        .provider = GW_STR("openai"),
        .original_model = gw_str_c(model),
        .request_model = gw_str_c(model),
        .response_model = gw_str_c(model),
    };
}

/* ---- exact text ---------------------------------------------------------------------------- */

#define A                                                                                                              \
    "gen_ai_operation_name=\"chat\",gen_ai_original_model=\"gpt-4o\",gen_ai_provider_name=\"openai\","                 \
    "gen_ai_request_model=\"gpt-4o\",gen_ai_response_model=\"gpt-4o-2024-08-06\""

/* Derived independently of the implementation (le strings typed from the reference's bucket table). */
static const char expected_text[] =
    "# HELP gen_ai_client_token_usage_token Number of input and output tokens used.\n"
    "# TYPE gen_ai_client_token_usage_token histogram\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"1\"} 0\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"4\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"16\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"64\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"256\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"1024\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"4096\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"16384\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"65536\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"262144\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"1.048576e+06\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"4.194304e+06\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"1.6777216e+07\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"6.7108864e+07\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"cached_input\",le=\"+Inf\"} 1\n"
    "gen_ai_client_token_usage_token_sum{" A ",gen_ai_token_type=\"cached_input\"} 4\n"
    "gen_ai_client_token_usage_token_count{" A ",gen_ai_token_type=\"cached_input\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"1\"} 0\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"4\"} 0\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"16\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"64\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"256\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"1024\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"4096\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"16384\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"65536\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"262144\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"1.048576e+06\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"4.194304e+06\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"1.6777216e+07\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"6.7108864e+07\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"input\",le=\"+Inf\"} 1\n"
    "gen_ai_client_token_usage_token_sum{" A ",gen_ai_token_type=\"input\"} 16\n"
    "gen_ai_client_token_usage_token_count{" A ",gen_ai_token_type=\"input\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"1\"} 0\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"4\"} 0\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"16\"} 0\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"64\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"256\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"1024\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"4096\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"16384\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"65536\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"262144\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"1.048576e+06\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"4.194304e+06\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"1.6777216e+07\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"6.7108864e+07\"} 1\n"
    "gen_ai_client_token_usage_token_bucket{" A ",gen_ai_token_type=\"output\",le=\"+Inf\"} 1\n"
    "gen_ai_client_token_usage_token_sum{" A ",gen_ai_token_type=\"output\"} 17\n"
    "gen_ai_client_token_usage_token_count{" A ",gen_ai_token_type=\"output\"} 1\n"
    "# HELP gen_ai_server_request_duration_seconds Generative AI server request duration such as"
    " time-to-last byte or last output token.\n"
    "# TYPE gen_ai_server_request_duration_seconds histogram\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"0.01\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"0.02\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"0.04\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"0.08\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"0.16\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"0.32\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"0.64\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"1.28\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"2.56\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"5.12\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"10.24\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"20.48\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"40.96\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"81.92\"} 0\n"
    "gen_ai_server_request_duration_seconds_bucket{error_type=\"_OTHER\"," A ",le=\"+Inf\"} 1\n"
    "gen_ai_server_request_duration_seconds_sum{error_type=\"_OTHER\"," A "} 100\n"
    "gen_ai_server_request_duration_seconds_count{error_type=\"_OTHER\"," A "} 1\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"0.01\"} 1\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"0.02\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"0.04\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"0.08\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"0.16\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"0.32\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"0.64\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"1.28\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"2.56\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"5.12\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"10.24\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"20.48\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"40.96\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"81.92\"} 2\n"
    "gen_ai_server_request_duration_seconds_bucket{" A ",le=\"+Inf\"} 2\n"
    "gen_ai_server_request_duration_seconds_sum{" A "} 0.020000000000000004\n"
    "gen_ai_server_request_duration_seconds_count{" A "} 2\n"
    "# HELP gen_ai_server_time_to_first_token_seconds Time to generate first token for successful responses.\n"
    "# TYPE gen_ai_server_time_to_first_token_seconds histogram\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.001\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.005\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.01\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.02\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.04\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.06\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.08\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.1\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.25\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.5\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"0.75\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"1\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"2.5\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"5\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"7.5\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"10\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_bucket{" A ",le=\"+Inf\"} 1\n"
    "gen_ai_server_time_to_first_token_seconds_sum{" A "} 0.001\n"
    "gen_ai_server_time_to_first_token_seconds_count{" A "} 1\n"
    "# HELP gen_ai_server_time_per_output_token_seconds Time per output token generated after the first"
    " token for successful responses.\n"
    "# TYPE gen_ai_server_time_per_output_token_seconds histogram\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.01\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.025\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.05\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.075\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.1\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.15\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.2\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.3\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.4\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.5\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"0.75\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"1\"} 0\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"2.5\"} 1\n"
    "gen_ai_server_time_per_output_token_seconds_bucket{" A ",le=\"+Inf\"} 2\n"
    "gen_ai_server_time_per_output_token_seconds_sum{" A "} 5.5\n"
    "gen_ai_server_time_per_output_token_seconds_count{" A "} 2\n"
    "# HELP aigw_http_requests_total HTTP requests answered, by endpoint and status code.\n"
    "# TYPE aigw_http_requests_total counter\n"
    "aigw_http_requests_total{code=\"200\",endpoint=\"/v1/chat/completions\"} 2\n"
    "aigw_http_requests_total{code=\"404\",endpoint=\"other\"} 1\n"
    "# HELP aigw_downstream_connections Open client connections.\n"
    "# TYPE aigw_downstream_connections gauge\n"
    "aigw_downstream_connections 1\n"
    "# HELP aigw_upstream_connections Open upstream connections, active and idle.\n"
    "# TYPE aigw_upstream_connections gauge\n"
    "aigw_upstream_connections 1\n"
    "# HELP aigw_requests_in_flight Requests being served.\n"
    "# TYPE aigw_requests_in_flight gauge\n"
    "aigw_requests_in_flight 0\n"
    "# HELP aigw_config_generation Generation of the active configuration.\n"
    "# TYPE aigw_config_generation gauge\n"
    "aigw_config_generation 0\n"
    "# HELP aigw_downstream_connections_total Client connections accepted.\n"
    "# TYPE aigw_downstream_connections_total counter\n"
    "aigw_downstream_connections_total 2\n"
    "# HELP aigw_upstream_connections_total Upstream connections opened.\n"
    "# TYPE aigw_upstream_connections_total counter\n"
    "aigw_upstream_connections_total 1\n"
    "# HELP aigw_config_reloads_total Configuration reloads applied.\n"
    "# TYPE aigw_config_reloads_total counter\n"
    "aigw_config_reloads_total 0\n"
    "# HELP aigw_config_reload_failures_total Configuration reloads refused (the previous configuration stays).\n"
    "# TYPE aigw_config_reload_failures_total counter\n"
    "aigw_config_reload_failures_total 0\n"
    "# HELP aigw_upstream_retries_total Upstream attempts after the first one.\n"
    "# TYPE aigw_upstream_retries_total counter\n"
    "aigw_upstream_retries_total 0\n";

static void test_render_exact(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    gw_genai_attrs_t a = {
        .operation = GW_STR("chat"),
        .provider = GW_STR("openai"),
        .original_model = GW_STR("gpt-4o"),
        .request_model = GW_STR("gpt-4o"),
        .response_model = GW_STR("gpt-4o-2024-08-06"),
    };
    /* 16 sits exactly on a bound (le=16), 4 too (le=4), 17 just past one (le=64). */
    gw_token_usage_t u = {.input = 16, .cached_input = 4, .output = 17, .total = 33, .present = true};
    gw_metrics_record_token_usage(m, &a, &u);
    gw_metrics_record_request_duration(m, &a, 0.01);                 /* on the first bound */
    gw_metrics_record_request_duration(m, &a, 0.010000000000000002); /* the next double: second bucket */
    gw_genai_attrs_t failed = a;
    failed.error_type = GW_STR("_OTHER");
    gw_metrics_record_request_duration(m, &failed, 100); /* beyond the last bound: +Inf only */
    gw_metrics_record_ttft(m, &a, 0.001);
    gw_metrics_record_tpot(m, &a, 2.5);
    gw_metrics_record_tpot(m, &a, 3.0);
    gw_metrics_count_request(m, GW_STR("/v1/chat/completions"), 200);
    gw_metrics_count_request(m, GW_STR("other"), 404);
    gw_metrics_count_request(m, GW_STR("/v1/chat/completions"), 200);
    gw_metrics_gauge_add(m, GW_GAUGE_DOWNSTREAM_CONNECTIONS, 2);
    gw_metrics_gauge_add(m, GW_GAUGE_DOWNSTREAM_CONNECTIONS, -1);
    gw_metrics_gauge_add(m, GW_GAUGE_UPSTREAM_CONNECTIONS, 1);
    gw_metrics_gauge_add(m, GW_GAUGE_REQUESTS_IN_FLIGHT, 1);
    gw_metrics_gauge_add(m, GW_GAUGE_REQUESTS_IN_FLIGHT, -1);
    gw_metrics_counter_add(m, GW_COUNTER_DOWNSTREAM_CONNECTIONS_TOTAL, 2);
    gw_metrics_counter_add(m, GW_COUNTER_UPSTREAM_CONNECTIONS_TOTAL, 1);

    char *text = render_one(m);
    assert_string_equal(text, expected_text);
    assert_valid_exposition(text);
    /* A second render reads the same state: scraping does not consume anything. */
    char *again = render_one(m);
    assert_string_equal(again, text);
    free(again);
    free(text);
    gw_metrics_free(m);
}

static void test_empty_render(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    char *text = render_one(m);
    /* No GenAI family before the first sample (as the reference), but the gauges are always there. */
    assert_null(strstr(text, "gen_ai_"));
    assert_null(strstr(text, "aigw_http_requests_total"));
    assert_true(value_of(text, "aigw_requests_in_flight") == 0);
    assert_true(value_of(text, "aigw_downstream_connections_total") == 0);
    assert_valid_exposition(text);
    free(text);
    /* No worker at all, or NULL entries, render the same zeros. */
    gw_metrics_t *none[2] = {NULL, NULL};
    text = render_workers(none, 2);
    assert_true(value_of(text, "aigw_upstream_connections") == 0);
    free(text);
    gw_metrics_free(m);
}

/* ---- float layout -------------------------------------------------------------------------- */

static void check_double(double v, const char *want)
{
    gw_buf_t b;
    gw_buf_init(&b, 64);
    assert_int_equal(gw_metrics_append_double(&b, v), GW_OK);
    gw_buf_cstr(&b);
    assert_string_equal(b.data, want);
    gw_buf_free(&b);
}

static void test_format_double(void **state)
{
    check_double(0.01, "0.01");
    check_double(1, "1");
    check_double(1e6, "1e+06");
    check_double(999999, "999999");
    check_double(262144, "262144");
    check_double(1048576, "1.048576e+06");
    check_double(67108864, "6.7108864e+07");
    check_double(0.0001, "0.0001");
    check_double(0.00001, "1e-05");
    check_double(0.1 + 0.2, "0.30000000000000004");
    check_double(81.92, "81.92");
    check_double(-2.5, "-2.5");
    check_double(0, "0");
    check_double(-0.0, "0");
    check_double(1e21, "1e+21");
    check_double(5e-324, "5e-324");
    check_double(DBL_MAX, "1.7976931348623157e+308");
    check_double(NAN, "NaN");
    check_double(INFINITY, "+Inf");
    check_double(-INFINITY, "-Inf");
}

/* ---- bucket edges, skipped and clamped samples -------------------------------------------- */

static void test_bucket_edges(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    gw_genai_attrs_t a = attrs("m");
    gw_token_usage_t top = {.input = 67108864, .output = 67108865, .present = true};
    gw_metrics_record_token_usage(m, &a, &top);
    gw_metrics_record_ttft(m, &a, 10);         /* last bound, inclusive */
    gw_metrics_record_ttft(m, &a, 10.0000001); /* just past it */
    char *text = render_one(m);
#define TOK "gen_ai_client_token_usage_token_bucket{gen_ai_operation_name=\"chat\",gen_ai_original_model=\"m\","    \
            "gen_ai_provider_name=\"openai\",gen_ai_request_model=\"m\",gen_ai_response_model=\"m\",gen_ai_token_type="
    assert_true(value_of(text, TOK "\"input\",le=\"1.6777216e+07\"}") == 0);
    assert_true(value_of(text, TOK "\"input\",le=\"6.7108864e+07\"}") == 1);
    assert_true(value_of(text, TOK "\"output\",le=\"6.7108864e+07\"}") == 0);
    assert_true(value_of(text, TOK "\"output\",le=\"+Inf\"}") == 1);
#undef TOK
#define TTFT "gen_ai_server_time_to_first_token_seconds_bucket{gen_ai_operation_name=\"chat\",gen_ai_original_model=\"m\"," \
             "gen_ai_provider_name=\"openai\",gen_ai_request_model=\"m\",gen_ai_response_model=\"m\",le="
    assert_true(value_of(text, TTFT "\"7.5\"}") == 0);
    assert_true(value_of(text, TTFT "\"10\"}") == 1);
    assert_true(value_of(text, TTFT "\"+Inf\"}") == 2);
#undef TTFT
    /* cached_input was 0: no cached_input series at all. */
    assert_null(strstr(text, "cached_input"));
    free(text);
    gw_metrics_free(m);
}

static void test_skipped_and_clamped(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    gw_genai_attrs_t a = attrs("m");
    gw_token_usage_t absent = {.input = 5, .output = 5, .present = false};
    gw_metrics_record_token_usage(m, &a, &absent);
    gw_metrics_record_token_usage(m, &a, NULL);
    gw_metrics_record_request_duration(m, &a, NAN);
    gw_metrics_record_request_duration(m, &a, INFINITY);
    gw_metrics_record_ttft(NULL, &a, 1);
    gw_metrics_record_tpot(m, NULL, 1);
    char *text = render_one(m);
    assert_null(strstr(text, "gen_ai_"));
    free(text);

    gw_metrics_record_request_duration(m, &a, -3); /* a clock step back counts as 0 */
    text = render_one(m);
#define DUR "gen_ai_server_request_duration_seconds_%s{gen_ai_operation_name=\"chat\",gen_ai_original_model=\"m\","  \
            "gen_ai_provider_name=\"openai\",gen_ai_request_model=\"m\",gen_ai_response_model=\"m\"%s}"
    char key[512];
    snprintf(key, sizeof(key), DUR, "bucket", ",le=\"0.01\"");
    assert_true(value_of(text, key) == 1);
    snprintf(key, sizeof(key), DUR, "sum", "");
    assert_true(value_of(text, key) == 0);
#undef DUR
    free(text);
    gw_metrics_free(m);
}

/* ---- merge ----------------------------------------------------------------------------------- */

static void test_merge_two_workers(void **state)
{
    gw_metrics_t *w[3] = {gw_metrics_new(), NULL, gw_metrics_new()};
    gw_genai_attrs_t shared = attrs("gpt-4o"), only0 = attrs("a-model"), only2 = attrs("z-model");
    gw_metrics_record_ttft(w[0], &shared, 0.05);
    gw_metrics_record_ttft(w[2], &shared, 0.2);
    gw_metrics_record_ttft(w[2], &shared, 0.25);
    gw_metrics_record_ttft(w[0], &only0, 1);
    gw_metrics_record_ttft(w[2], &only2, 2);
    gw_metrics_count_request(w[0], GW_STR("/v1/embeddings"), 200);
    gw_metrics_count_request(w[2], GW_STR("/v1/embeddings"), 200);
    gw_metrics_count_request(w[2], GW_STR("/v1/embeddings"), 503);
    gw_metrics_gauge_add(w[0], GW_GAUGE_DOWNSTREAM_CONNECTIONS, 3);
    gw_metrics_gauge_add(w[2], GW_GAUGE_DOWNSTREAM_CONNECTIONS, 4);
    gw_metrics_counter_add(w[0], GW_COUNTER_UPSTREAM_CONNECTIONS_TOTAL, 10);
    gw_metrics_counter_add(w[2], GW_COUNTER_UPSTREAM_CONNECTIONS_TOTAL, 5);
    char *text = render_workers(w, 3);
    assert_valid_exposition(text);

#define S(model, suffix, extra)                                                                                        \
    "gen_ai_server_time_to_first_token_seconds_" suffix "{gen_ai_operation_name=\"chat\",gen_ai_original_model=\"" model  \
    "\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"" model "\",gen_ai_response_model=\"" model "\"" extra "}"
    /* The shared label set is one series: counts and sums added, buckets merged. */
    assert_int_equal(count_prefix(text, S("gpt-4o", "count", "")), 1);
    assert_true(value_of(text, S("gpt-4o", "count", "")) == 3);
    assert_true(value_of(text, S("gpt-4o", "sum", "")) == 0.05 + 0.2 + 0.25);
    assert_true(value_of(text, S("gpt-4o", "bucket", ",le=\"0.06\"")) == 1);
    assert_true(value_of(text, S("gpt-4o", "bucket", ",le=\"0.25\"")) == 3);
    assert_true(value_of(text, S("a-model", "count", "")) == 1);
    assert_true(value_of(text, S("z-model", "count", "")) == 1);
    /* Series sorted by labels whatever worker they came from. */
    const char *pa = strstr(text, S("a-model", "count", "")), *pg = strstr(text, S("gpt-4o", "count", "")),
               *pz = strstr(text, S("z-model", "count", ""));
    assert_true(pa && pg && pz && pa < pg && pg < pz);
#undef S
    /* One HELP and one TYPE per family. */
    assert_int_equal(count_prefix(text, "# TYPE gen_ai_server_time_to_first_token_seconds "), 1);
    assert_int_equal(count_prefix(text, "# HELP gen_ai_server_time_to_first_token_seconds "), 1);
    assert_int_equal(count_prefix(text, "# TYPE aigw_http_requests_total "), 1);
    assert_true(value_of(text, "aigw_http_requests_total{code=\"200\",endpoint=\"/v1/embeddings\"}") == 2);
    assert_true(value_of(text, "aigw_http_requests_total{code=\"503\",endpoint=\"/v1/embeddings\"}") == 1);
    assert_true(value_of(text, "aigw_downstream_connections") == 7);
    assert_true(value_of(text, "aigw_upstream_connections_total") == 15);
    free(text);
    gw_metrics_free(w[0]);
    gw_metrics_free(w[2]);
}

/* ---- cap ------------------------------------------------------------------------------------- */

#define OVF "gen_ai_operation_name=\"overflow\",gen_ai_original_model=\"overflow\",gen_ai_provider_name=\"overflow\"," \
            "gen_ai_request_model=\"overflow\",gen_ai_response_model=\"overflow\""

static void test_overflow_cap(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    char model[32];
    for (int i = 0; i < GW_METRICS_MAX_SERIES; i++) {
        snprintf(model, sizeof(model), "m%d", i);
        gw_genai_attrs_t a = attrs(model);
        gw_metrics_record_ttft(m, &a, 0.5);
    }
    /* The table is full: new label sets fold into one overflow series per family... */
    for (int i = 0; i < 10; i++) {
        snprintf(model, sizeof(model), "late%d", i);
        gw_genai_attrs_t a = attrs(model);
        gw_metrics_record_ttft(m, &a, 0.5);
    }
    /* ...while known ones keep counting in their own series. */
    gw_genai_attrs_t known = attrs("m7");
    gw_metrics_record_ttft(m, &known, 0.5);
    /* Token types and failure stay apart even in overflow; the client-controlled attributes fold. */
    gw_genai_attrs_t late = attrs("late");
    gw_token_usage_t u = {.input = 3, .output = 2, .present = true};
    gw_metrics_record_token_usage(m, &late, &u);
    gw_metrics_record_token_usage(m, &late, &u);
    late.error_type = GW_STR("timeout");
    gw_metrics_record_request_duration(m, &late, 1);
    late.error_type = GW_STR_NULL;
    gw_metrics_record_request_duration(m, &late, 1);
    gw_metrics_count_request(m, GW_STR("/late"), 201);

    char *text = render_one(m);
    assert_valid_exposition(text);
    assert_int_equal(count_prefix(text, "gen_ai_server_time_to_first_token_seconds_count{"), GW_METRICS_MAX_SERIES + 1);
    assert_true(value_of(text, "gen_ai_server_time_to_first_token_seconds_count{" OVF "}") == 10);
    assert_true(value_of(text,
                         "gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name=\"chat\","
                         "gen_ai_original_model=\"m7\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"m7\","
                         "gen_ai_response_model=\"m7\"}") == 2);
    assert_null(strstr(text, "late"));
    assert_true(value_of(text, "gen_ai_client_token_usage_token_count{" OVF ",gen_ai_token_type=\"input\"}") == 2);
    assert_true(value_of(text, "gen_ai_client_token_usage_token_sum{" OVF ",gen_ai_token_type=\"input\"}") == 6);
    assert_true(value_of(text, "gen_ai_client_token_usage_token_sum{" OVF ",gen_ai_token_type=\"output\"}") == 4);
    assert_true(value_of(text, "gen_ai_server_request_duration_seconds_count{error_type=\"_OTHER\"," OVF "}") == 1);
    assert_true(value_of(text, "gen_ai_server_request_duration_seconds_count{" OVF "}") == 1);
    assert_true(value_of(text, "aigw_http_requests_total{code=\"overflow\",endpoint=\"overflow\"}") == 1);
    free(text);
    gw_metrics_free(m);
}

/* The hot path remembers the series of the last attribute set and of recent (endpoint, status)
 * pairs: samples must still land in the series their labels name when the attributes alternate,
 * change in one field only, are too long to remember, or arrive in a reused buffer. */
static void test_repeat_and_alternate(void **state)
{
    (void)state;
    gw_metrics_t *m = gw_metrics_new();
    char buf[200];
    gw_token_usage_t u = {.input = 1, .output = 1, .present = true};
    for (int i = 0; i < 6; i++) {
        snprintf(buf, sizeof(buf), "%s", i % 2 ? "m-b" : "m-a");
        gw_genai_attrs_t a = attrs(buf); /* same bytes at the same address, other content */
        gw_metrics_record_request_duration(m, &a, 0.1);
        gw_metrics_record_token_usage(m, &a, &u);
    }
    gw_genai_attrs_t a = attrs("m-a");
    a.error_type = GW_STR("timeout");
    gw_metrics_record_request_duration(m, &a, 0.1);
    a.response_model = GW_STR("m-a2");
    gw_metrics_record_request_duration(m, &a, 0.1);
    gw_token_usage_t cached = {.input = 5, .cached_input = 4, .output = 1, .present = true};
    gw_metrics_record_token_usage(m, &a, &cached);
    memset(buf, 'x', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    gw_genai_attrs_t longer = attrs(buf);
    gw_metrics_record_ttft(m, &longer, 0.1);
    gw_metrics_record_ttft(m, &longer, 0.1);
    static const char *endpoints[] = {"/v1/a", "/v1/b", "/v1/c", "/v1/d", "/v1/e", "/v1/f"};
    for (int i = 0; i < 60; i++) {
        snprintf(buf, sizeof(buf), "%s", endpoints[i % 6]);
        gw_metrics_count_request(m, gw_str_c(buf), i % 12 < 6 ? 200 : 500);
    }

    char *text = render_one(m);
    assert_valid_exposition(text);
#define GA(model, resp) "gen_ai_operation_name=\"chat\",gen_ai_original_model=\"" model "\",gen_ai_provider_name=\"openai\"," \
                        "gen_ai_request_model=\"" model "\",gen_ai_response_model=\"" resp "\""
    assert_true(value_of(text, "gen_ai_server_request_duration_seconds_count{" GA("m-a", "m-a") "}") == 3);
    assert_true(value_of(text, "gen_ai_server_request_duration_seconds_count{" GA("m-b", "m-b") "}") == 3);
    assert_true(value_of(text, "gen_ai_server_request_duration_seconds_count{error_type=\"timeout\"," GA("m-a", "m-a") "}") == 1);
    assert_true(value_of(text, "gen_ai_server_request_duration_seconds_count{error_type=\"timeout\"," GA("m-a", "m-a2") "}") == 1);
    assert_true(value_of(text, "gen_ai_client_token_usage_token_count{" GA("m-a", "m-a") ",gen_ai_token_type=\"input\"}") == 3);
    assert_true(value_of(text, "gen_ai_client_token_usage_token_count{" GA("m-b", "m-b") ",gen_ai_token_type=\"output\"}") == 3);
    assert_true(value_of(text, "gen_ai_client_token_usage_token_sum{" GA("m-a", "m-a2") ",gen_ai_token_type=\"cached_input\"}") == 4);
    assert_true(value_of(text, "gen_ai_client_token_usage_token_count{" GA("m-a", "m-a") ",gen_ai_token_type=\"cached_input\"}") == -1);
#undef GA
    assert_int_equal(count_prefix(text, "gen_ai_server_time_to_first_token_seconds_count{"), 1);
    assert_non_null(strstr(text, "xxxxxxxx"));
    for (int i = 0; i < 6; i++) {
        char series[128];
        snprintf(series, sizeof(series), "aigw_http_requests_total{code=\"200\",endpoint=\"%s\"}", endpoints[i]);
        assert_true(value_of(text, series) == 5);
        snprintf(series, sizeof(series), "aigw_http_requests_total{code=\"500\",endpoint=\"%s\"}", endpoints[i]);
        assert_true(value_of(text, series) == 5);
    }
    free(text);
    gw_metrics_free(m);
}

/* ---- escaping ------------------------------------------------------------------------------ */

static void test_label_escaping(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    char long_value[1000];
    memset(long_value, 'x', sizeof(long_value));
    char straddle[300];
    memset(straddle, 'a', 255);
    memcpy(straddle + 255, "\xC3\xA9", 2); /* a 2-byte character that does not fit the 256-byte cut */
    gw_genai_attrs_t a = {
        .operation = GW_STR("chat"),
        .provider = GW_STR_NULL,
        .original_model = GW_STR("a\"b\\c\nd\re"),
        .request_model = GW_STR("x\xff\xc0\xafy\xed\xa0\x80z caf\xc3\xa9"),
        .response_model = gw_str(long_value, sizeof(long_value)),
    };
    gw_metrics_record_ttft(m, &a, 1);
    a.response_model = gw_str(straddle, 257);
    gw_metrics_record_tpot(m, &a, 1);
    char *text = render_one(m);
    assert_valid_exposition(text);
    assert_non_null(strstr(text, "gen_ai_provider_name=\"unknown\""));
    assert_non_null(strstr(text, "gen_ai_original_model=\"a\\\"b\\\\c\\nd\re\""));
    /* Each invalid byte (lone 0xff, overlong 0xc0 0xaf, surrogate 0xed 0xa0 0x80) becomes U+FFFD. */
    assert_non_null(strstr(text, "gen_ai_request_model=\"x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy"
                                 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz caf\xc3\xa9\""));
    char want[300];
    snprintf(want, sizeof(want), "gen_ai_response_model=\"%.256s\"", long_value);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof(want), "gen_ai_response_model=\"%.255s\"", straddle);
    assert_non_null(strstr(text, want));
    free(text);
    gw_metrics_free(m);
}

/* ---- capped output ------------------------------------------------------------------------- */

static void test_render_cap(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    gw_genai_attrs_t a = attrs("gpt-4o");
    gw_metrics_record_ttft(m, &a, 1);
    gw_buf_t out;
    gw_buf_init(&out, 1000);
    assert_int_equal(gw_metrics_render(&m, 1, &out), GW_TOOBIG);
    assert_true(out.len > 0 && out.len <= 1000);
    assert_int_equal(out.data[out.len - 1], '\n'); /* whole lines only */
    gw_buf_cstr(&out);
    assert_valid_exposition(out.data);
    gw_buf_free(&out);
    gw_metrics_free(m);
}

/* ---- process metrics ----------------------------------------------------------------------- */

static void test_process_metrics(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_metrics_render(&m, 1, &out), GW_OK);
    gw_buf_cstr(&out);
    const char *t = out.data;
    assert_valid_exposition(t);
    assert_non_null(strstr(t, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(t, "# TYPE process_resident_memory_bytes gauge\n"));
    double rss = value_of(t, "process_resident_memory_bytes"), vsz = value_of(t, "process_virtual_memory_bytes");
    assert_true(rss > 0 && vsz >= rss);
    assert_true(value_of(t, "process_cpu_seconds_total") >= 0);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(value_of(t, "process_max_fds") == (double)rl.rlim_cur);
    double start = value_of(t, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(start <= now + 1 && start > now - 3600);
    double fds = value_of(t, "process_open_fds");
    assert_true(fds >= 3);

    /* One more open file shows up as one more fd. */
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    gw_buf_reset(&out);
    assert_int_equal(gw_metrics_render_process(&out), GW_OK);
    gw_buf_cstr(&out);
    assert_true(value_of(out.data, "process_open_fds") == fds + 1);
    assert_null(strstr(out.data, "aigw_"));
    close(fd);
    gw_buf_free(&out);
    gw_metrics_free(m);
}

/* ---- MCP ------------------------------------------------------------------------------------- */

/* The MCP part of a render: from its first family to the first gauge. Returns a copy. */
static char *mcp_section(const char *text)
{
    const char *start = strstr(text, "# HELP mcp_");
    const char *end = strstr(text, "# HELP aigw_downstream_connections ");
    assert_non_null(end);
    if (start == NULL)
        return strdup("");
    assert_true(start < end);
    return strndup(start, (size_t)(end - start));
}

/* Typed by hand from the reference's bucket list (0.005 ... 10) and attribute names. */
static const char expected_mcp[] =
    "# HELP mcp_request_duration_seconds Duration of MCP requests\n"
    "# TYPE mcp_request_duration_seconds histogram\n"
    "mcp_request_duration_seconds_bucket{le=\"0.005\"} 2\n"
    "mcp_request_duration_seconds_bucket{le=\"0.01\"} 2\n"
    "mcp_request_duration_seconds_bucket{le=\"0.025\"} 2\n"
    "mcp_request_duration_seconds_bucket{le=\"0.05\"} 2\n"
    "mcp_request_duration_seconds_bucket{le=\"0.1\"} 2\n"
    "mcp_request_duration_seconds_bucket{le=\"0.25\"} 2\n"
    "mcp_request_duration_seconds_bucket{le=\"0.5\"} 3\n"
    "mcp_request_duration_seconds_bucket{le=\"1\"} 3\n"
    "mcp_request_duration_seconds_bucket{le=\"2.5\"} 3\n"
    "mcp_request_duration_seconds_bucket{le=\"5\"} 3\n"
    "mcp_request_duration_seconds_bucket{le=\"10\"} 3\n"
    "mcp_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"
    "mcp_request_duration_seconds_sum 0.307\n"
    "mcp_request_duration_seconds_count 3\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"0.005\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"0.01\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"0.025\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"0.05\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"0.1\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"0.25\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"0.5\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"1\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"2.5\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"5\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"10\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_json_rpc\",le=\"+Inf\"} 1\n"
    "mcp_request_duration_seconds_sum{error_type=\"invalid_json_rpc\"} 0.001\n"
    "mcp_request_duration_seconds_count{error_type=\"invalid_json_rpc\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"0.005\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"0.01\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"0.025\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"0.05\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"0.1\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"0.25\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"0.5\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"1\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"2.5\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"5\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"10\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"invalid_param\",le=\"+Inf\"} 1\n"
    "mcp_request_duration_seconds_sum{error_type=\"invalid_param\"} 20\n"
    "mcp_request_duration_seconds_count{error_type=\"invalid_param\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"0.005\"} 0\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"0.01\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"0.025\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"0.05\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"0.1\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"0.25\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"0.5\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"1\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"2.5\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"5\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"10\"} 1\n"
    "mcp_request_duration_seconds_bucket{error_type=\"unsupported_method\",le=\"+Inf\"} 1\n"
    "mcp_request_duration_seconds_sum{error_type=\"unsupported_method\"} 0.01\n"
    "mcp_request_duration_seconds_count{error_type=\"unsupported_method\"} 1\n"
    "# HELP mcp_method_count_total Total number of MCP methods invoked\n"
    "# TYPE mcp_method_count_total counter\n"
    "mcp_method_count_total{mcp_method_name=\"_OTHER\",status=\"error\"} 1\n"
    "mcp_method_count_total{mcp_method_name=\"initialize\",status=\"error\"} 1\n"
    "mcp_method_count_total{mcp_method_name=\"tools/call\",status=\"success\"} 2\n"
    "mcp_method_count_total{status=\"error\"} 1\n"
    "# HELP mcp_initialization_duration_seconds Duration of MCP initialization\n"
    "# TYPE mcp_initialization_duration_seconds histogram\n"
    "mcp_initialization_duration_seconds_bucket{le=\"0.005\"} 0\n"
    "mcp_initialization_duration_seconds_bucket{le=\"0.01\"} 0\n"
    "mcp_initialization_duration_seconds_bucket{le=\"0.025\"} 0\n"
    "mcp_initialization_duration_seconds_bucket{le=\"0.05\"} 0\n"
    "mcp_initialization_duration_seconds_bucket{le=\"0.1\"} 1\n"
    "mcp_initialization_duration_seconds_bucket{le=\"0.25\"} 1\n"
    "mcp_initialization_duration_seconds_bucket{le=\"0.5\"} 1\n"
    "mcp_initialization_duration_seconds_bucket{le=\"1\"} 1\n"
    "mcp_initialization_duration_seconds_bucket{le=\"2.5\"} 2\n"
    "mcp_initialization_duration_seconds_bucket{le=\"5\"} 2\n"
    "mcp_initialization_duration_seconds_bucket{le=\"10\"} 2\n"
    "mcp_initialization_duration_seconds_bucket{le=\"+Inf\"} 2\n"
    "mcp_initialization_duration_seconds_sum 1.6\n"
    "mcp_initialization_duration_seconds_count 2\n"
    "# HELP mcp_capabilities_negotiated_total Total number of MCP capabilities negotiated\n"
    "# TYPE mcp_capabilities_negotiated_total counter\n"
    "mcp_capabilities_negotiated_total{capability_side=\"client\",capability_type=\"elicitation\"} 1\n"
    "mcp_capabilities_negotiated_total{capability_side=\"client\",capability_type=\"experimental\"} 2\n"
    "mcp_capabilities_negotiated_total{capability_side=\"client\",capability_type=\"roots\"} 1\n"
    "mcp_capabilities_negotiated_total{capability_side=\"client\",capability_type=\"sampling\"} 1\n"
    "mcp_capabilities_negotiated_total{capability_side=\"server\",capability_type=\"completions\"} 1\n"
    "mcp_capabilities_negotiated_total{capability_side=\"server\",capability_type=\"experimental\"} 1\n"
    "mcp_capabilities_negotiated_total{capability_side=\"server\",capability_type=\"logging\"} 1\n"
    "mcp_capabilities_negotiated_total{capability_side=\"server\",capability_type=\"prompts\"} 1\n"
    "mcp_capabilities_negotiated_total{capability_side=\"server\",capability_type=\"resources\"} 1\n"
    "mcp_capabilities_negotiated_total{capability_side=\"server\",capability_type=\"tasks\"} 1\n"
    "mcp_capabilities_negotiated_total{capability_side=\"server\",capability_type=\"tools\"} 1\n"
    "# HELP mcp_progress_notifications_total Total number of MCP progress notifications sent\n"
    "# TYPE mcp_progress_notifications_total counter\n"
    "mcp_progress_notifications_total 3\n";

static void record_mcp_sample_set(gw_metrics_t *m)
{
    gw_metrics_mcp_request(m, GW_STR("tools/call"), GW_MCP_OK, 0.005); /* on the first bound */
    gw_metrics_mcp_request(m, GW_STR("tools/call"), GW_MCP_OK, 0.3);
    gw_metrics_mcp_request(m, GW_STR("initialize"), GW_MCP_ERR_INVALID_PARAM, 20); /* past the last bound */
    gw_metrics_mcp_request(m, GW_STR("bogus/method"), GW_MCP_ERR_UNSUPPORTED_METHOD, 0.01);
    /* No method: an unparsable body (error), a client's response to a server request (success). */
    gw_metrics_mcp_request(m, GW_STR_NULL, GW_MCP_ERR_INVALID_JSON_RPC, 0.001);
    gw_metrics_mcp_request(m, GW_STR_NULL, GW_MCP_OK, 0.002);
    gw_metrics_mcp_initialization(m, 0.1);
    gw_metrics_mcp_initialization(m, 1.5);
    /* tools is no client capability and roots no server one: ignored on that side. */
    gw_metrics_mcp_capabilities(m, GW_MCP_SIDE_CLIENT,
                                GW_STR("{\"roots\":{\"listChanged\":true},\"sampling\":{},"
                                       "\"elicitation\":{\"form\":{}},\"experimental\":{\"a\":{},\"b\":{}},"
                                       "\"tools\":{}}"));
    gw_metrics_mcp_capabilities(m, GW_MCP_SIDE_SERVER,
                                GW_STR(" {\"tools\":{\"listChanged\":true},\"prompts\":{},\"resources\":{\"subscribe\":"
                                       "true},\"logging\":{},\"completions\":{},\"experimental\":{\"x\":{}},"
                                       "\"tasks\":{\"list\":{}},\"roots\":{}} "));
    for (int i = 0; i < 3; i++)
        gw_metrics_mcp_progress(m);
}

static void test_mcp_render_exact(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    record_mcp_sample_set(m);
    gw_metrics_count_request(m, GW_STR("mcp"), 200);
    char *text = render_one(m);
    assert_valid_exposition(text);
    char *mcp = mcp_section(text);
    assert_string_equal(mcp, expected_mcp);
    /* After the hashed families, before the gauges; nothing MCP-related anywhere else. */
    const char *http = strstr(text, "aigw_http_requests_total{code=\"200\",endpoint=\"mcp\"} 1\n");
    assert_non_null(http);
    assert_true(http < strstr(text, "# HELP mcp_"));
    assert_int_equal(count_prefix(text, "mcp_"), count_prefix(expected_mcp, "mcp_"));
    free(mcp);
    free(text);
    gw_metrics_free(m);
}

static void test_mcp_methods(void **state)
{
    static const char *const known[] = {
        "initialize",          "ping",           "tools/list",          "tools/call",
        "resources/list",      "resources/read", "resources/templates/list", "resources/subscribe",
        "resources/unsubscribe", "prompts/list", "prompts/get",         "completion/complete",
        "logging/setLevel",    "tasks/get",      "tasks/list",          "tasks/result",
        "tasks/cancel",        "server/discover", "notifications/initialized", "notifications/cancelled",
        "notifications/progress", "notifications/roots/list_changed", "notifications/tasks/status",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(known); i++)
        assert_string_equal(gw_metrics_mcp_method_label(gw_str_c(known[i])), known[i]);
    /* Anything else folds into one value: near misses, case, trailing bytes, server-to-client
     * methods, notifications only servers send, empty and NULL. */
    static const char *const other[] = {"tools",       "tools/call2",         "TOOLS/CALL",   "tools/call ",
                                        "sampling/createMessage", "roots/list", "elicitation/create",
                                        "notifications/message", "notifications/tools/list_changed",
                                        "_OTHER",      "a",                   "zzz",          ""};
    for (size_t i = 0; i < GW_ARRAY_SIZE(other); i++)
        assert_string_equal(gw_metrics_mcp_method_label(gw_str_c(other[i])), "_OTHER");
    assert_string_equal(gw_metrics_mcp_method_label(gw_str("tools/call\0x", 12)), "_OTHER");
    assert_string_equal(gw_metrics_mcp_method_label(GW_STR_NULL), "_OTHER");

    /* Every label once, plus many invented names: one series per known method and one _OTHER,
     * written in byte order of their label text. */
    gw_metrics_t *m = gw_metrics_new();
    for (size_t i = GW_ARRAY_SIZE(known); i-- > 0;)
        gw_metrics_mcp_request(m, gw_str_c(known[i]), GW_MCP_OK, 0.01);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "custom/%d", i);
        gw_metrics_mcp_request(m, gw_str_c(name), GW_MCP_OK, 0.01);
    }
    char *text = render_one(m);
    assert_valid_exposition(text);
    assert_int_equal(count_prefix(text, "mcp_method_count_total{"), GW_ARRAY_SIZE(known) + 1);
    assert_true(value_of(text, "mcp_method_count_total{mcp_method_name=\"_OTHER\",status=\"success\"}") == 5000);
    assert_true(value_of(text, "mcp_request_duration_seconds_count") == 5000 + GW_ARRAY_SIZE(known));
    const char *prev = NULL;
    size_t prev_len = 0;
    for (const char *p = strstr(text, "mcp_method_count_total{"); p && strncmp(p, "mcp_method_count_total{", 23) == 0;
         p = strchr(p, '\n') + 1) {
        size_t len = (size_t)(strchr(p, ' ') - p);
        if (prev) {
            int c = memcmp(prev, p, GW_MIN(prev_len, len));
            assert_true(c < 0 || (c == 0 && prev_len < len));
        }
        prev = p;
        prev_len = len;
    }
    free(text);
    gw_metrics_free(m);
}

static void test_mcp_capabilities_input(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    static const char *const ignored[] = {
        "",                                   /* no object at all */
        "null",
        "[{\"tools\":{}}]",
        "{\"tools\":{},\"prompts\":",         /* cut: nothing of it counts, not even tools */
        "{\"tools\":{} \"prompts\":{}}",      /* missing comma */
        "{\"experimental\":{\"a\":{},}}",     /* broken experimental: the whole object is refused */
        "{\"tools\":null,\"prompts\":true,\"logging\":1,\"resources\":[]}", /* not objects */
        "{\"experimental\":{}}",              /* zero experimental capabilities */
        "{\"unknown\":{},\"extensions\":{}}", /* not capability types of the reference */
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(ignored); i++)
        gw_metrics_mcp_capabilities(m, GW_MCP_SIDE_SERVER, gw_str_c(ignored[i]));
    gw_metrics_mcp_capabilities(m, GW_MCP_SIDE_COUNT, GW_STR("{\"tools\":{}}"));
    gw_metrics_mcp_capabilities(m, (gw_mcp_side_t)-1, GW_STR("{\"tools\":{}}"));
    gw_metrics_mcp_capabilities(NULL, GW_MCP_SIDE_SERVER, GW_STR("{\"tools\":{}}"));
    char *text = render_one(m);
    assert_null(strstr(text, "mcp_"));
    free(text);

    /* A repeated member counts once; an escaped key is the same key; nested objects do not count. */
    gw_metrics_mcp_capabilities(m, GW_MCP_SIDE_SERVER,
                                GW_STR("{\"tools\":{},\"tools\":{\"listChanged\":true},\"t\\u006fols\":{},"
                                       "\"prompts\":{\"logging\":{}}}"));
    gw_metrics_mcp_capabilities(m, GW_MCP_SIDE_CLIENT, GW_STR("{\"experimental\":{\"a\":1,\"b\":{},\"c\":[]}}"));
    gw_metrics_mcp_capabilities(m, GW_MCP_SIDE_CLIENT, GW_STR("{\"experimental\":{\"d\":{}}}"));
    gw_metrics_mcp_capabilities(m, GW_MCP_SIDE_CLIENT,
                                GW_STR("{\"experimental\":{\"e\":{}},\"experimental\":{\"f\":{},\"g\":{}}}"));
    text = render_one(m);
    assert_valid_exposition(text);
#define CAP(side, type) "mcp_capabilities_negotiated_total{capability_side=\"" side "\",capability_type=\"" type "\"}"
    assert_true(value_of(text, CAP("server", "tools")) == 1);
    assert_true(value_of(text, CAP("server", "prompts")) == 1);
    assert_true(value_of(text, CAP("server", "logging")) == -1);
    assert_true(value_of(text, CAP("client", "experimental")) == 5); /* 3 + 1 + the first of the repeated */
#undef CAP
    assert_int_equal(count_prefix(text, "mcp_capabilities_negotiated_total{"), 3);
    free(text);
    gw_metrics_free(m);
}

static void test_mcp_skipped_and_clamped(void **state)
{
    gw_metrics_t *m = gw_metrics_new();
    char *text = render_one(m);
    assert_null(strstr(text, "mcp_")); /* no MCP family before its first sample */
    free(text);
    gw_metrics_mcp_request(NULL, GW_STR("ping"), GW_MCP_OK, 1);
    gw_metrics_mcp_initialization(NULL, 1);
    gw_metrics_mcp_progress(NULL);
    gw_metrics_mcp_initialization(m, NAN);
    gw_metrics_mcp_initialization(m, INFINITY);
    text = render_one(m);
    assert_null(strstr(text, "mcp_"));
    free(text);

    /* A sample without a usable time still counts the method. */
    gw_metrics_mcp_request(m, GW_STR("ping"), GW_MCP_OK, NAN);
    gw_metrics_mcp_request(m, GW_STR("ping"), GW_MCP_OK, -INFINITY);
    text = render_one(m);
    assert_true(value_of(text, "mcp_method_count_total{mcp_method_name=\"ping\",status=\"success\"}") == 2);
    assert_null(strstr(text, "mcp_request_duration_seconds"));
    free(text);

    /* A clock step back counts as 0; an error type out of range counts as internal_error. */
    gw_metrics_mcp_request(m, GW_STR("ping"), GW_MCP_OK, -2);
    gw_metrics_mcp_initialization(m, -1);
    gw_metrics_mcp_request(m, GW_STR("tools/call"), GW_MCP_ERR_COUNT, 0.5);
    gw_metrics_mcp_request(m, GW_STR("tools/call"), (gw_mcp_error_t)-7, 0.5);
    text = render_one(m);
    assert_valid_exposition(text);
    assert_true(value_of(text, "mcp_request_duration_seconds_bucket{le=\"0.005\"}") == 1);
    assert_true(value_of(text, "mcp_request_duration_seconds_sum") == 0);
    assert_true(value_of(text, "mcp_initialization_duration_seconds_bucket{le=\"0.005\"}") == 1);
    assert_true(value_of(text, "mcp_request_duration_seconds_count{error_type=\"internal_error\"}") == 2);
    assert_true(value_of(text, "mcp_method_count_total{mcp_method_name=\"tools/call\",status=\"error\"}") == 2);
    assert_int_equal(count_prefix(text, "mcp_request_duration_seconds_count"), 2);
    free(text);
    gw_metrics_free(m);
}

static void test_mcp_merge_and_full_table(void **state)
{
    gw_metrics_t *w[3] = {gw_metrics_new(), NULL, gw_metrics_new()};
    /* The GenAI series table of worker 2 is full: MCP samples have fixed slots and still count. */
    char model[32];
    for (int i = 0; i < GW_METRICS_MAX_SERIES + 50; i++) {
        snprintf(model, sizeof(model), "m%d", i);
        gw_genai_attrs_t a = attrs(model);
        gw_metrics_record_ttft(w[2], &a, 0.5);
    }
    record_mcp_sample_set(w[0]);
    record_mcp_sample_set(w[2]);
    gw_metrics_mcp_request(w[2], GW_STR("tools/list"), GW_MCP_ERR_INTERNAL, 0.04);
    char *text = render_workers(w, 3);
    assert_valid_exposition(text);
    char *mcp = mcp_section(text);
    assert_int_equal(count_prefix(mcp, "# TYPE mcp_"), 5); /* one header per family */
    assert_int_equal(count_prefix(mcp, "# HELP mcp_"), 5);
    assert_true(value_of(mcp, "mcp_request_duration_seconds_count") == 6);
    assert_true(value_of(mcp, "mcp_request_duration_seconds_sum") == 0.307 + 0.307);
    assert_true(value_of(mcp, "mcp_request_duration_seconds_bucket{le=\"0.25\"}") == 4);
    assert_true(value_of(mcp, "mcp_request_duration_seconds_count{error_type=\"internal_error\"}") == 1);
    assert_true(value_of(mcp, "mcp_request_duration_seconds_bucket{error_type=\"internal_error\",le=\"0.025\"}") == 0);
    assert_true(value_of(mcp, "mcp_request_duration_seconds_bucket{error_type=\"internal_error\",le=\"0.05\"}") == 1);
    assert_true(value_of(mcp, "mcp_method_count_total{mcp_method_name=\"tools/call\",status=\"success\"}") == 4);
    assert_true(value_of(mcp, "mcp_method_count_total{mcp_method_name=\"tools/list\",status=\"error\"}") == 1);
    assert_true(value_of(mcp, "mcp_method_count_total{status=\"error\"}") == 2);
    assert_true(value_of(mcp, "mcp_initialization_duration_seconds_count") == 4);
    assert_true(value_of(mcp, "mcp_initialization_duration_seconds_sum") == 1.6 + 1.6);
    assert_true(value_of(mcp, "mcp_capabilities_negotiated_total{capability_side=\"client\","
                              "capability_type=\"experimental\"}") == 4);
    assert_true(value_of(mcp, "mcp_progress_notifications_total") == 6);
    free(mcp);
    free(text);
    gw_metrics_free(w[0]);
    gw_metrics_free(w[2]);
}

/* ---- a writer racing a scraper ------------------------------------------------------------- */

#define RACE_SAMPLES 200000

struct race {
    gw_metrics_t *m;
    atomic_bool done;
};

static void *race_writer(void *arg)
{
    struct race *r = arg;
    char model[32];
    gw_token_usage_t u = {.input = 10, .output = 1, .present = true};
    for (int i = 0; i < RACE_SAMPLES; i++) {
        /* New label sets keep appearing during the run, so publication races with reading. */
        int distinct = 1 + i / 500;
        snprintf(model, sizeof(model), "model-%d", (i * 7) % (distinct < 300 ? distinct : 300));
        gw_genai_attrs_t a = attrs(model);
        gw_metrics_gauge_add(r->m, GW_GAUGE_REQUESTS_IN_FLIGHT, 1);
        gw_metrics_record_request_duration(r->m, &a, (double)(i % 100) * 0.01);
        gw_metrics_record_token_usage(r->m, &a, &u);
        gw_metrics_count_request(r->m, GW_STR("/v1/chat/completions"), 200);
        gw_metrics_counter_add(r->m, GW_COUNTER_DOWNSTREAM_CONNECTIONS_TOTAL, 1);
        gw_metrics_mcp_request(r->m, GW_STR("tools/call"), i % 10 ? GW_MCP_OK : GW_MCP_ERR_INTERNAL,
                               (double)(i % 100) * 0.01);
        gw_metrics_gauge_add(r->m, GW_GAUGE_REQUESTS_IN_FLIGHT, -1);
    }
    atomic_store(&r->done, true);
    return NULL;
}

/* Sums the values of the lines starting with prefix; checks each duration histogram on the way:
 * cumulative buckets never decrease, and _count equals the +Inf bucket. */
static double check_snapshot(const char *text, const char *count_prefix_)
{
    double total = 0, prev = -1, inf = -1;
    size_t n = strlen(count_prefix_);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *sp = strchr(p, ' ');
        if (*p == '#' || sp == NULL)
            continue;
        double v = strtod(sp + 1, NULL);
        if (strncmp(p, "mcp_request_duration_seconds_bucket{", 36) == 0) {
            /* The same checks on the MCP histogram (its fixed slots are read the same way). */
            const char *le = strstr(p, "le=\"");
            if (strncmp(le, "le=\"0.005\"", 10) == 0)
                prev = -1;
            assert_true(v >= prev);
            prev = v;
            if (strncmp(le, "le=\"+Inf\"", 9) == 0)
                inf = v;
        } else if (strncmp(p, "mcp_request_duration_seconds_count", 34) == 0) {
            assert_true(v == inf);
        } else if (strncmp(p, "gen_ai_server_request_duration_seconds_bucket{", 46) == 0) {
            const char *le = strstr(p, "le=\"");
            if (strncmp(le, "le=\"0.01\"", 9) == 0)
                prev = -1;
            assert_true(v >= prev);
            prev = v;
            if (strncmp(le, "le=\"+Inf\"", 9) == 0)
                inf = v;
        } else if (strncmp(p, "gen_ai_server_request_duration_seconds_count{", 45) == 0) {
            assert_true(v == inf);
        }
        if (strncmp(p, count_prefix_, n) == 0)
            total += v;
    }
    return total;
}

static void test_concurrent_scrape(void **state)
{
    struct race r = {.m = gw_metrics_new()};
    atomic_init(&r.done, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race_writer, &r), 0);
    double last = 0, last_mcp = 0;
    int renders = 0;
    while (!atomic_load(&r.done)) {
        char *text = render_one(r.m);
        double total = check_snapshot(text, "gen_ai_server_request_duration_seconds_count{");
        assert_true(total >= last && total <= RACE_SAMPLES);
        last = total;
        double mcp = check_snapshot(text, "mcp_method_count_total{");
        assert_true(mcp >= last_mcp && mcp <= RACE_SAMPLES);
        last_mcp = mcp;
        double in_flight = value_of(text, "aigw_requests_in_flight");
        assert_true(in_flight == 0 || in_flight == 1);
        free(text);
        renders++;
    }
    pthread_join(t, NULL);
    char *text = render_one(r.m);
    assert_valid_exposition(text);
    assert_true(check_snapshot(text, "gen_ai_server_request_duration_seconds_count{") == RACE_SAMPLES);
    assert_true(check_snapshot(text, "gen_ai_client_token_usage_token_count{") == 2.0 * RACE_SAMPLES);
    assert_true(check_snapshot(text, "gen_ai_client_token_usage_token_sum{") == 11.0 * RACE_SAMPLES);
    assert_true(value_of(text, "aigw_http_requests_total{code=\"200\",endpoint=\"/v1/chat/completions\"}") ==
                RACE_SAMPLES);
    assert_true(value_of(text, "aigw_downstream_connections_total") == RACE_SAMPLES);
    assert_true(value_of(text, "aigw_requests_in_flight") == 0);
    assert_int_equal(count_prefix(text, "gen_ai_server_request_duration_seconds_count{"), 300);
    assert_true(check_snapshot(text, "mcp_request_duration_seconds_count") == RACE_SAMPLES);
    assert_true(value_of(text, "mcp_method_count_total{mcp_method_name=\"tools/call\",status=\"error\"}") ==
                RACE_SAMPLES / 10);
    assert_true(value_of(text, "mcp_method_count_total{mcp_method_name=\"tools/call\",status=\"success\"}") ==
                RACE_SAMPLES - RACE_SAMPLES / 10);
    free(text);
    print_message("%d renders raced the writer\n", renders);
    gw_metrics_free(r.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact),      cmocka_unit_test(test_empty_render),
        cmocka_unit_test(test_format_double),     cmocka_unit_test(test_bucket_edges),
        cmocka_unit_test(test_skipped_and_clamped), cmocka_unit_test(test_merge_two_workers),
        cmocka_unit_test(test_overflow_cap),      cmocka_unit_test(test_repeat_and_alternate),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_mcp_render_exact),  cmocka_unit_test(test_mcp_methods),
        cmocka_unit_test(test_mcp_capabilities_input), cmocka_unit_test(test_mcp_skipped_and_clamped),
        cmocka_unit_test(test_mcp_merge_and_full_table),
        cmocka_unit_test(test_render_cap),        cmocka_unit_test(test_process_metrics),
        cmocka_unit_test(test_concurrent_scrape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
