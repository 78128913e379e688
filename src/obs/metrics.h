/* GenAI metrics, per worker, summed at scrape time. Each worker owns one gw_metrics_t and is the
 * only writer of it; the scraper (admin thread) only reads, through atomics, so the hot path
 * takes no lock. Names, units, buckets and attributes are exactly the reference's (OpenTelemetry
 * GenAI semantic conventions as exported to Prometheus by Envoy AI Gateway v0.4). */
#ifndef GW_OBS_METRICS_H
#define GW_OBS_METRICS_H

#include "core/buf.h"
#include "core/gw.h"
#include "usage/token_usage.h"

typedef struct gw_metrics_s gw_metrics_t;

/* The attributes of one GenAI request. Empty slices are exported as "unknown". */
typedef struct {
    gw_str_t operation;      /* gen_ai.operation.name: chat|completion|embeddings|image_generation|messages */
    gw_str_t provider;       /* gen_ai.provider.name: openai, aws.bedrock, or the backend name */
    gw_str_t original_model; /* gen_ai.original.model: model in the client's body */
    gw_str_t request_model;  /* gen_ai.request.model: after modelNameOverride */
    gw_str_t response_model; /* gen_ai.response.model: as reported by the provider */
    gw_str_t error_type;     /* error.type: empty on success, "_OTHER" (or a class) on failure */
} gw_genai_attrs_t;

/* Cap on distinct attribute sets per worker; beyond it samples are folded into one series whose
 * model attributes read "overflow" (bounded memory whatever clients send as model names). */
#define GW_METRICS_MAX_SERIES 2048

gw_metrics_t *gw_metrics_new(void);
void gw_metrics_free(gw_metrics_t *m);

/* Hot path, owner thread only. */
/* gen_ai_client_token_usage_token: one sample per type: input, cached_input, output.
 * (cached_input only when the provider reported cached tokens.) Skipped when !u->present. */
void gw_metrics_record_token_usage(gw_metrics_t *m, const gw_genai_attrs_t *a, const gw_token_usage_t *u);
/* gen_ai_server_request_duration_seconds (error.type attribute only when set). */
void gw_metrics_record_request_duration(gw_metrics_t *m, const gw_genai_attrs_t *a, double seconds);
/* gen_ai_server_time_to_first_token_seconds (streaming only). */
void gw_metrics_record_ttft(gw_metrics_t *m, const gw_genai_attrs_t *a, double seconds);
/* gen_ai_server_time_per_output_token_seconds (streaming only). */
void gw_metrics_record_tpot(gw_metrics_t *m, const gw_genai_attrs_t *a, double seconds);

/* Connection and request gauges/counters of this worker (owner thread only). */
typedef enum {
    GW_GAUGE_DOWNSTREAM_CONNECTIONS = 0, /* open client connections */
    GW_GAUGE_UPSTREAM_CONNECTIONS,       /* open upstream connections (active + idle in pools) */
    GW_GAUGE_REQUESTS_IN_FLIGHT,         /* requests being served */
    GW_GAUGE_CONFIG_GENERATION,          /* generation of the active configuration (main thread) */
    GW_GAUGE_COUNT
} gw_gauge_t;
void gw_metrics_gauge_add(gw_metrics_t *m, gw_gauge_t g, int64_t delta);

typedef enum {
    GW_COUNTER_DOWNSTREAM_CONNECTIONS_TOTAL = 0, /* accepted client connections */
    GW_COUNTER_UPSTREAM_CONNECTIONS_TOTAL,       /* upstream connections opened */
    GW_COUNTER_CONFIG_RELOADS_OK,                /* configuration reloads applied (main thread) */
    GW_COUNTER_CONFIG_RELOADS_FAILED,            /* reloads refused: the old configuration stays */
    GW_COUNTER_UPSTREAM_RETRIES,                 /* attempts after the first (retries and fallback) */
    GW_COUNTER_COUNT
} gw_counter_t;
void gw_metrics_counter_add(gw_metrics_t *m, gw_counter_t c, uint64_t delta);
/* aigw_http_requests_total{endpoint,code}: one per finished request. endpoint is a short static
 * name (e.g. "/v1/chat/completions", "other"); code the HTTP status sent to the client. */
void gw_metrics_count_request(gw_metrics_t *m, gw_str_t endpoint, int status);

/* Scrape: any thread. Renders the Prometheus text exposition format (version 0.0.4) of the sum
 * over the n workers, followed by process metrics (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
 * process_max_fds, process_start_time_seconds) read from /proc/self. */
int gw_metrics_render(gw_metrics_t *const *workers, size_t n, gw_buf_t *out);
/* The two halves of gw_metrics_render, for callers that add families of their own: the sum over
 * the workers (GenAI histograms, aigw_* gauges and counters), and the process_* metrics. Each
 * returns GW_OK, or GW_TOOBIG when out's cap was reached (out then ends after the last whole
 * line that fitted, never with a cut line). A worker's gw_metrics_t must not be freed while a
 * render reads it. NULL entries in workers are skipped. */
int gw_metrics_render_workers(gw_metrics_t *const *workers, size_t n, gw_buf_t *out);
int gw_metrics_render_process(gw_buf_t *out);
/* Appends v the way the Prometheus Go client writes floats (shortest round-trip digits, exponent
 * form below 1e-4 and from 1e+06): 0.01, 1, 262144, 1e+06, 1.048576e+06, +Inf, NaN. */
int gw_metrics_append_double(gw_buf_t *out, double v);

#endif
