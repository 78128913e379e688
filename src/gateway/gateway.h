/* One worker's view of the gateway: its loop, its upstream pool, its metrics and its reference
 * to the current configuration snapshot. The request handlers (LLM endpoints, /v1/models) run
 * on that worker's loop only. */
#ifndef GW_GATEWAY_GATEWAY_H
#define GW_GATEWAY_GATEWAY_H

#include "auth/sigv4.h"
#include "config/config.h"
#include "net/http_server.h"
#include "net/upstream.h"
#include "obs/metrics.h"

#include <uv.h>

/* Process-wide settings from the command line, read-only once workers start. */
typedef struct {
    uint64_t connect_timeout_ms;     /* upstream DNS + TCP + TLS */
    uint64_t request_timeout_ms;     /* 0: the route rule's timeout */
    uint64_t stream_idle_timeout_ms; /* longest upstream silence */
} gw_gateway_opts_t;

typedef struct {
    uv_loop_t *loop;
    gw_upstream_pool_t *upstream;
    gw_metrics_t *metrics;
    gw_config_t *config;  /* this worker's reference; swapped on the loop thread only */
    const gw_gateway_opts_t *opts;
    struct gw_health_s *health; /* passive health of the backends, this worker's view */
    /* The MCP routes' authorizer (OAuth JWTs, client API keys, well-known metadata): one per
     * worker because its key caches and fetches belong to this loop. NULL: MCP routes with
     * auth fail closed (503). */
    struct gw_mcp_auth_s *mcp_auth;
    uint64_t rng;         /* xorshift state for weighted picks and request ids */
    gw_sigv4_key_cache_t sigv4_keys; /* derived SigV4 key, reused while day/region/secret stay */
    size_t in_flight;
    /* Finished LLM request states kept for reuse (llm_request.c owns them; freed with
     * gw_llm_request_free_spares when the worker ends). */
    void *spare_requests;
    size_t n_spare_requests;
} gw_gateway_t;

/* The gw_http_handler_t callbacks; ud is the gw_gateway_t. */
void gw_gateway_on_request(gw_http_req_t *req, void *ud);
void gw_gateway_on_abort(gw_http_req_t *req, void *ud);
void gw_gateway_on_drain(gw_http_req_t *req, void *ud);
/* Access log for requests the LLM path did not log (local answers, server-level rejects). */
void gw_gateway_on_response_end(gw_http_req_t *req, void *ud);
/* Error bodies the HTTP server writes itself, in the OpenAI error format. */
void gw_gateway_format_error(int status, const char *message, gw_buf_t *out, void *ud);

/* Writes {"error":{"message":...,"type":...,"param":null,"code":...}}; code NULL -> null. */
void gw_openai_error_body(gw_buf_t *out, const char *message, size_t message_len, const char *type,
                          const char *code);

/* An error body in the client's API format. type is the OpenAI-style type; for Anthropic clients
 * the type is derived from the status (invalid_request_error, not_found_error, api_error, ...). */
void gw_client_error_body(int client_api, gw_buf_t *out, int status, const char *message, size_t message_len,
                          const char *type, const char *code);
/* An SSE error event in the client's API format (ends with a blank line). */
void gw_client_error_event(int client_api, gw_buf_t *out, int status, const char *message, const char *type);

uint64_t gw_gateway_random(gw_gateway_t *g);

#endif
