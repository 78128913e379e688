/* GenAI and MCP metrics, per worker, summed at scrape time. Each worker owns one gw_metrics_t and
 * is the only writer of it; the scraper (admin thread) only reads, through atomics, so the hot
 * path takes no lock. Names, buckets and attributes are the reference's (OpenTelemetry GenAI
 * semantic conventions and the MCP proxy's metrics, as Envoy AI Gateway v0.4 exports them to
 * Prometheus); MCP durations carry the unit the reference meant (seconds). */
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

/* ---- MCP metrics ---------------------------------------------------------------------------
 * The five metrics of the reference's MCP proxy (envoy-ai-gateway internal/metrics/mcp_metrics.go),
 * with the reference's attributes and buckets, durations in seconds (the reference exports
 * mcp.initialization.duration with the unit "token", a known bug). Every label value comes from a
 * fixed set, so these series need no cap: no session id, token, tool name, argument or backend
 * name is ever a label. All calls: owner thread only, m may be NULL (nothing recorded). */

/* error.type of a failed MCP request: the reference's MCPErrorType values. */
typedef enum {
    GW_MCP_OK = 0,                          /* success: the sample carries no error_type */
    GW_MCP_ERR_INTERNAL,                    /* internal_error: backend unreachable or failed, no backend
                                               session could be made, the gateway's own failure */
    GW_MCP_ERR_INVALID_JSON_RPC,            /* invalid_json_rpc: the body is no JSON-RPC 2.0 message */
    GW_MCP_ERR_INVALID_PARAM,               /* invalid_param: bad params, unknown tool/prompt prefix */
    GW_MCP_ERR_INVALID_SESSION_ID,          /* invalid_session_id: missing, unreadable or expired session */
    GW_MCP_ERR_UNSUPPORTED_METHOD,          /* unsupported_method: a method the gateway does not serve */
    GW_MCP_ERR_UNSUPPORTED_PROTOCOL_VERSION, /* unsupported_protocol_version */
    GW_MCP_ERR_UNSUPPORTED_RESPONSE,        /* unsupported_response: a response nobody asked for */
    GW_MCP_ERR_COUNT
} gw_mcp_error_t;

/* capability.side of mcp_capabilities_negotiated_total. */
typedef enum { GW_MCP_SIDE_CLIENT = 0, GW_MCP_SIDE_SERVER, GW_MCP_SIDE_COUNT } gw_mcp_side_t;

/* One JSON-RPC message the client POSTed, once it is answered (for an SSE answer, when the stream
 * ends; for a notification or a client's response, at the 202). Records
 *   mcp_request_duration_seconds{[error_type]}           seconds (error_type only when error != OK)
 *   mcp_method_count_total{mcp_method_name,status}       status = success | error
 * method is the message's method, raw: the label is that name when it is an MCP method a client
 * sends (see gw_metrics_mcp_method_label), else "_OTHER". As in the reference, a success without a
 * method (the client's response to a server-to-client request) counts in the duration only, and an
 * error without a method (unparsable body) counts as {status="error"} without mcp_method_name.
 * error is the gateway's failure to handle the message, not a JSON-RPC error a backend answered
 * (that call was proxied successfully). Members of a batch: one call per member, each with its
 * own time. A non-finite seconds skips the duration sample only; a negative one counts as 0. */
void gw_metrics_mcp_request(gw_metrics_t *m, gw_str_t method, gw_mcp_error_t error, double seconds);
/* mcp_initialization_duration_seconds: one backend's initialize exchange (request sent to
 * answer read, its notifications/initialized excluded), recorded for each backend whose
 * initialize succeeded, as the reference does. */
void gw_metrics_mcp_initialization(gw_metrics_t *m, double seconds);
/* mcp_capabilities_negotiated_total{capability_side,capability_type}: capabilities is the raw
 * JSON "capabilities" object. Client side: call with the params.capabilities of each initialize
 * the client sends; server side: with the capabilities the gateway answers that initialize with
 * (the merged view the client sees). Each capability declared with an object value counts 1 (for
 * the client: elicitation, roots, sampling, tasks; for the server: completions, logging, prompts,
 * resources, tasks, tools); experimental counts the number of its members, as the reference
 * does. Other members, and anything that is not an object, are ignored. */
void gw_metrics_mcp_capabilities(gw_metrics_t *m, gw_mcp_side_t side, gw_str_t capabilities);
/* mcp_progress_notifications_total: one notifications/progress the gateway forwarded, in either
 * direction (a client's POSTed one, or one a backend sent on a stream relayed to the client). */
void gw_metrics_mcp_progress(gw_metrics_t *m);
/* The mcp_method_name label for a method: a static string, the method itself when it is one an
 * MCP client sends to a server (2025-03-26 to 2026-07-28: requests and notifications), "_OTHER"
 * for anything else. */
const char *gw_metrics_mcp_method_label(gw_str_t method);

/* Scrape: any thread. Renders the Prometheus text exposition format (version 0.0.4) of the sum
 * over the n workers, followed by process metrics (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
 * process_max_fds, process_start_time_seconds) read from /proc/self. */
int gw_metrics_render(gw_metrics_t *const *workers, size_t n, gw_buf_t *out);
/* The two halves of gw_metrics_render, for callers that add families of their own: the sum over
 * the workers (GenAI histograms, MCP metrics, aigw_* gauges and counters), and the process_*
 * metrics. Each
 * returns GW_OK, or GW_TOOBIG when out's cap was reached (out then ends after the last whole
 * line that fitted, never with a cut line). A worker's gw_metrics_t must not be freed while a
 * render reads it. NULL entries in workers are skipped. */
int gw_metrics_render_workers(gw_metrics_t *const *workers, size_t n, gw_buf_t *out);
int gw_metrics_render_process(gw_buf_t *out);
/* Appends v the way the Prometheus Go client writes floats (shortest round-trip digits, exponent
 * form below 1e-4 and from 1e+06): 0.01, 1, 262144, 1e+06, 1.048576e+06, +Inf, NaN. */
int gw_metrics_append_double(gw_buf_t *out, double v);

#endif
