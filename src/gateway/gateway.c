/* Request dispatch for one worker: endpoint and method checks, the locally served /v1/models,
 * and the OpenAI error format used for every error the gateway itself produces. */
#include "gateway/gateway.h"

#include "core/json.h"
#include "core/log.h"
#include "obs/access_log.h"
#include "gateway/endpoints.h"
#include "gateway/llm_request.h"
#include "mcp/proxy.h"
#include "translate/translate.h"

#include <stdio.h>

uint64_t gw_gateway_random(gw_gateway_t *g)
{
    /* xorshift64*: per worker, so no shared state on the hot path */
    uint64_t x = g->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void gw_openai_error_body(gw_buf_t *out, const char *message, size_t message_len, const char *type,
                          const char *code)
{
    gw_buf_append_lit(out, "{\"error\":{\"message\":");
    gw_json_append_string(out, message, message_len);
    gw_buf_append_lit(out, ",\"type\":");
    gw_json_append_string(out, type, strlen(type));
    gw_buf_append_lit(out, ",\"param\":null,\"code\":");
    if (code)
        gw_json_append_string(out, code, strlen(code));
    else
        gw_buf_append_lit(out, "null");
    gw_buf_append_lit(out, "}}");
}

static const char *anthropic_error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

void gw_client_error_body(int client_api, gw_buf_t *out, int status, const char *message, size_t message_len,
                          const char *type, const char *code)
{
    if (client_api == GW_CLIENT_API_ANTHROPIC) {
        const char *t = anthropic_error_type(status);
        gw_buf_append_lit(out, "{\"type\":\"error\",\"error\":{\"type\":");
        gw_json_append_string(out, t, strlen(t));
        gw_buf_append_lit(out, ",\"message\":");
        gw_json_append_string(out, message, message_len);
        gw_buf_append_lit(out, "}}");
        return;
    }
    gw_openai_error_body(out, message, message_len, type, code);
}

void gw_client_error_event(int client_api, gw_buf_t *out, int status, const char *message, const char *type)
{
    gw_buf_append_lit(out, "event: error\ndata: ");
    gw_client_error_body(client_api, out, status, message, strlen(message), type, NULL);
    gw_buf_append_lit(out, "\n\n");
}

static const char *error_type_for(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "invalid_request_error";
    case 408: return "timeout_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

void gw_gateway_format_error(int status, const char *message, gw_buf_t *out, void *ud)
{
    (void)ud;
    gw_openai_error_body(out, message, strlen(message), error_type_for(status), NULL);
}

static void respond_error(gw_gateway_t *g, gw_http_req_t *req, int status, const char *message, const char *code,
                          const gw_http_header_t *extra, size_t n_extra)
{
    gw_buf_t body;
    gw_buf_init(&body, GW_BUF_UNLIMITED);
    int api = req->path.len >= 11 && memcmp(req->path.base, "/anthropic/", 11) == 0 ? GW_CLIENT_API_ANTHROPIC
                                                                                     : GW_CLIENT_API_OPENAI;
    gw_client_error_body(api, &body, status, message, strlen(message), error_type_for(status), code);
    gw_metrics_count_request(g->metrics, GW_STR("other"), status);
    gw_http_respond_simple(req, status, GW_STR("application/json"), gw_buf_str(&body), extra, n_extra);
    gw_buf_free(&body);
}

static void serve_models(gw_gateway_t *g, gw_http_req_t *req)
{
    const gw_config_t *c = g->config;
    gw_buf_t body;
    gw_buf_init(&body, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&body, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < c->n_models; i++) {
        const gw_model_t *m = &c->models[i];
        if (i)
            gw_buf_append_byte(&body, ',');
        gw_buf_append_lit(&body, "{\"id\":");
        gw_json_append_string(&body, m->name, strlen(m->name));
        gw_buf_appendf(&body, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":", (long long)m->created);
        const char *owner = m->owned_by ? m->owned_by : "Envoy AI Gateway";
        gw_json_append_string(&body, owner, strlen(owner));
        gw_buf_append_byte(&body, '}');
    }
    gw_buf_append_lit(&body, "]}");
    gw_metrics_count_request(g->metrics, GW_STR("/v1/models"), 200);
    gw_http_respond_simple(req, 200, GW_STR("application/json"), gw_buf_str(&body), NULL, 0);
    gw_buf_free(&body);
}

void gw_gateway_on_request(gw_http_req_t *req, void *ud)
{
    gw_gateway_t *g = ud;
    /* MCP hook: the OAuth metadata of MCP routes (RFC 9728, RFC 8414). Only paths under
     * /.well-known/ are looked up, so other requests pay one comparison. */
    if (req->path.len > 13 && memcmp(req->path.base, "/.well-known/", 13) == 0) {
        gw_mcp_well_known_t kind;
        const gw_mcp_route_t *wk = gw_mcp_auth_well_known_route(g->config, req->path, &kind);
        if (wk != NULL) {
            gw_mcp_serve_well_known(g, req, wk, kind);
            return;
        }
    }
    /* MCP hook (mcp/proxy.c): an MCPRoute path is served by the MCP gateway. */
    const gw_mcp_route_t *mcp_route = gw_mcp_route_for(g->config, req);
    if (mcp_route != NULL) {
        gw_mcp_handle(g, req, mcp_route);
        return;
    }
    const gw_endpoint_t *ep = gw_endpoint_find(req->path);
    char msg[512];
    if (ep == NULL) {
        snprintf(msg, sizeof(msg), "unsupported path: %.*s", (int)GW_MIN(req->path.len, 256), req->path.base);
        respond_error(g, req, 404, msg, NULL, NULL, 0);
        return;
    }
    if (!gw_str_eq(req->method, gw_str_c(ep->method))) {
        snprintf(msg, sizeof(msg), "method %.*s is not allowed on %s; use %s", (int)GW_MIN(req->method.len, 32),
                 req->method.base, ep->path, ep->method);
        gw_http_header_t allow = {GW_STR("Allow"), gw_str_c(ep->method)};
        respond_error(g, req, 405, msg, NULL, &allow, 1);
        return;
    }
    if (ep->kind == GW_ENDPOINT_MODELS) {
        serve_models(g, req);
        return;
    }
    gw_llm_request_start(g, req, ep->op);
}

void gw_gateway_on_response_end(gw_http_req_t *req, void *ud)
{
    (void)ud;
    if (req->logged)
        return;
    uint64_t now = uv_hrtime();
    gw_access_log_entry_t e = {
        .start_time_us = req->start_wall_us,
        .method = req->method,
        .path = req->target,
        .response_code = req->status,
        .bytes_received = req->body.len,
        .bytes_sent = req->bytes_sent,
        .duration_ms = now > req->start_ns ? (now - req->start_ns) / 1000000 : 0,
        .upstream_duration_ms = -1,
        .user_agent = gw_http_header_find(req->headers, req->n_headers, GW_STR("user-agent")),
        .request_id = gw_http_header_find(req->headers, req->n_headers, GW_STR("x-request-id")),
        .downstream_remote_address = gw_str_c(gw_http_peer(req)),
        .termination_details = req->aborted ? GW_STR("client_disconnected") : GW_STR_NULL,
    };
    gw_access_log_write(&e);
}

void gw_gateway_on_abort(gw_http_req_t *req, void *ud)
{
    (void)ud;
    if (gw_mcp_owns(req)) /* MCP hook */
        gw_mcp_on_abort(req);
    else if (req->data)
        gw_llm_request_abort(req);
}

void gw_gateway_on_drain(gw_http_req_t *req, void *ud)
{
    (void)ud;
    if (gw_mcp_owns(req)) /* MCP hook */
        gw_mcp_on_drain(req);
    else if (req->data)
        gw_llm_request_drain(req);
}
