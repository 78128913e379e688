/* The life of one LLM request (see llm_request.h). Everything runs on the worker's loop. The
 * request state is freed in one place, complete(), after the access log and metrics are
 * written and the client's response is ended. */
#include "gateway/llm_request.h"

#include "auth/auth.h"
#include "codec/decompress.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "gateway/health.h"
#include "obs/access_log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_ERROR_BODY (1u << 20) /* an upstream error body beyond this is cut */

typedef struct {
    gw_gateway_t *g;
    gw_http_req_t *http;
    gw_config_t *config;     /* reference held for the whole request */
    gw_operation_t op;
    gw_str_t model_raw;
    bool stream_requested;
    const gw_route_rule_t *rule;
    const gw_backend_t *backend;
    gw_translator_t *tr;
    gw_upstream_req_t *up;
    int up_status;
    bool upstream_2xx;
    bool head_sent;
    bool failed;             /* for error.type */
    bool paused;
    const char *termination; /* why the exchange ended abnormally, NULL when it did not */
    size_t n_err_spans;
    uint64_t t_upstream_start;
    uint64_t t_first_byte;
    char request_id[48];
    gw_str_t request_id_s;
    char upstream_host[64];
    /* attempts (retries and fallback) */
    uint32_t attempts;                 /* attempts started so far */
    size_t n_tried;
    uint64_t deadline_ns;              /* end of the route timeout; 0: none */
    uv_timer_t retry_timer;            /* backoff between attempts */
    bool retry_timer_used;
    /* Not zeroed when the request starts (see gw_llm_request_start): the buffers keep their
     * memory when the state is recycled, and the arrays are used only up to their counts. */
    gw_buf_t model;          /* the model in the client's body, unescaped */
    gw_buf_t err_body;
    gw_buf_t err_content_type;
    gw_buf_t err_encoding;
    gw_buf_t err_hdr_store;  /* copies of the upstream error response's headers */
    gw_buf_t client_out;     /* translated bytes for non-passthrough translators */
    gw_translate_output_t out;
    void *next_spare;        /* in the worker's list of spare request states */
    const gw_backend_t *tried[16]; /* backends that failed for this request, n_tried of them */
    struct {
        size_t name_off, name_len, value_off, value_len;
    } err_spans[32]; /* n_err_spans of them */
} llm_req_t;

static void attempt_start(llm_req_t *r);

static double seconds_since(uint64_t start_ns, uint64_t now_ns)
{
    return now_ns > start_ns ? (double)(now_ns - start_ns) / 1e9 : 0.0;
}

/* gen_ai.provider.name: the GenAI semantic-convention value of the provider. The reference only
 * maps OpenAI and AWSBedrock and leaks the internal backend name for the others; aigw names them
 * all (the backend is in the access log). */
static const char *provider_name(const gw_backend_t *b)
{
    switch (b->schema) {
    case GW_SCHEMA_OPENAI: return "openai";
    case GW_SCHEMA_AZURE_OPENAI: return "azure.ai.openai";
    case GW_SCHEMA_ANTHROPIC: return "anthropic";
    case GW_SCHEMA_AWS_BEDROCK:
    case GW_SCHEMA_AWS_ANTHROPIC: return "aws.bedrock";
    case GW_SCHEMA_GCP_VERTEX_AI:
    case GW_SCHEMA_GCP_ANTHROPIC: return "gcp.vertex_ai";
    case GW_SCHEMA_COHERE: return "cohere";
    }
    return b->name;
}

static gw_str_t endpoint_label(gw_operation_t op)
{
    switch (op) {
    case GW_OP_CHAT: return GW_STR("/v1/chat/completions");
    case GW_OP_COMPLETION: return GW_STR("/v1/completions");
    case GW_OP_EMBEDDINGS: return GW_STR("/v1/embeddings");
    case GW_OP_IMAGE_GENERATION: return GW_STR("/v1/images/generations");
    case GW_OP_MESSAGES: return GW_STR("/anthropic/v1/messages");
    case GW_OP_COUNT_TOKENS: return GW_STR("/anthropic/v1/messages/count_tokens");
    }
    return GW_STR("other");
}

/* Finished request states are kept per worker, buffers included, for the next requests: a
 * request then allocates neither its state nor the buffers it had last time (malloc and free of
 * blocks this size were a visible share of the CPU per request). Bounded in count, and buffers
 * that grew past SPARE_BUF_MAX are released rather than kept. */
#define SPARE_MAX 64
#define SPARE_BUF_MAX (16u * 1024)

static void free_buffers(llm_req_t *r)
{
    gw_buf_free(&r->model);
    gw_buf_free(&r->err_body);
    gw_buf_free(&r->err_content_type);
    gw_buf_free(&r->err_encoding);
    gw_buf_free(&r->err_hdr_store);
    gw_buf_free(&r->client_out);
    gw_translate_output_free(&r->out);
}

static void keep_or_free(gw_buf_t *b)
{
    if (b->cap > SPARE_BUF_MAX)
        gw_buf_free(b); /* the buffer stays usable: it starts again from nothing */
    else
        gw_buf_reset(b);
}

static void free_request(llm_req_t *r)
{
    gw_gateway_t *g = r->g;
    gw_translator_free(r->tr);
    r->tr = NULL;
    gw_config_unref(r->config);
    if (g->n_spare_requests >= SPARE_MAX) {
        free_buffers(r);
        free(r);
        return;
    }
    keep_or_free(&r->model);
    keep_or_free(&r->err_body);
    keep_or_free(&r->err_content_type);
    keep_or_free(&r->err_encoding);
    keep_or_free(&r->err_hdr_store);
    keep_or_free(&r->client_out);
    keep_or_free(&r->out.path);
    keep_or_free(&r->out.body);
    r->out.body_changed = false;
    r->out.n_headers = 0;
    r->out.content_type[0] = '\0';
    r->next_spare = g->spare_requests;
    g->spare_requests = r;
    g->n_spare_requests++;
}

void gw_llm_request_free_spares(gw_gateway_t *g)
{
    while (g->spare_requests) {
        llm_req_t *r = g->spare_requests;
        g->spare_requests = r->next_spare;
        free_buffers(r);
        free(r);
    }
    g->n_spare_requests = 0;
}

static void on_retry_timer_closed(uv_handle_t *h)
{
    free_request(h->data);
}

/* Metrics, access log, end of the client's response, and freeing. how: 0 end normally,
 * 1 abort (truncate) the client's response. */
static void complete(llm_req_t *r, int how)
{
    gw_gateway_t *g = r->g;
    gw_http_req_t *http = r->http;
    uint64_t now = uv_hrtime();
    if (r->up) {
        gw_upstream_cancel(r->up);
        r->up = NULL;
    }
    int status = http->status;
    bool failed = r->failed || status >= 400 || r->termination != NULL;
    const gw_token_usage_t *usage = r->tr && r->tr->usage.present ? &r->tr->usage : NULL;
    gw_str_t response_model = r->tr && r->tr->response_model.len ? gw_buf_str(&r->tr->response_model) : GW_STR_NULL;
    gw_str_t request_model = gw_buf_str(&r->model);
    if (r->backend && r->backend->model_name_override)
        request_model = gw_str_c(r->backend->model_name_override);
    if (response_model.len == 0)
        response_model = request_model;

    if (r->backend) {
        gw_genai_attrs_t a = {
            .operation = gw_str_c(gw_operation_name(r->op)),
            .provider = gw_str_c(provider_name(r->backend)),
            .original_model = gw_buf_str(&r->model),
            .request_model = request_model,
            .response_model = response_model,
            .error_type = failed ? GW_STR("_OTHER") : GW_STR_NULL,
        };
        gw_metrics_record_request_duration(g->metrics, &a, seconds_since(http->start_ns, now));
        if (usage)
            gw_metrics_record_token_usage(g->metrics, &a, usage);
        if (!failed && r->tr && r->tr->stream_response && r->t_first_byte) {
            double ttft = seconds_since(r->t_upstream_start, r->t_first_byte);
            gw_metrics_record_ttft(g->metrics, &a, ttft);
            if (usage && usage->output > 1)
                gw_metrics_record_tpot(g->metrics, &a,
                                       (seconds_since(r->t_upstream_start, now) - ttft) / (double)(usage->output - 1));
        }
    }
    gw_metrics_count_request(g->metrics, endpoint_label(r->op), status);

    if (gw_access_log_enabled && r->backend && r->t_upstream_start)
        snprintf(r->upstream_host, sizeof(r->upstream_host), "%s:%u", r->backend->host, (unsigned)r->backend->port);
    gw_access_log_entry_t e = {
        .start_time_us = http->start_wall_us,
        .method = http->method,
        .path = http->target,
        .response_code = status,
        .bytes_received = http->body.len,
        .bytes_sent = http->bytes_sent,
        .duration_ms = (now - http->start_ns) / 1000000,
        .upstream_duration_ms = r->t_upstream_start ? (int64_t)((now - r->t_upstream_start) / 1000000) : -1,
        .user_agent = gw_http_header_find(http->headers, http->n_headers, GW_STR("user-agent")),
        .request_id = r->request_id_s,
        .upstream_host = gw_str_c(r->upstream_host),
        .upstream_cluster = r->backend ? gw_str_c(r->backend->service_name) : GW_STR_NULL,
        .downstream_remote_address = gw_str_c(gw_http_peer(http)),
        .model_name = gw_buf_str(&r->model),
        .model_name_override =
            r->backend && r->backend->model_name_override ? gw_str_c(r->backend->model_name_override) : GW_STR_NULL,
        .backend_name = r->backend ? gw_str_c(r->backend->name) : GW_STR_NULL,
        .response_model = r->tr && r->tr->response_model.len ? gw_buf_str(&r->tr->response_model) : GW_STR_NULL,
        .usage = usage,
        .termination_details = r->termination ? gw_str_c(r->termination) : GW_STR_NULL,
    };
    gw_access_log_write(&e);
    http->logged = true;

    http->data = NULL;
    if (how == 1)
        gw_http_response_abort(http);
    else
        gw_http_response_end(http);

    g->in_flight--;
    gw_metrics_gauge_add(g->metrics, GW_GAUGE_REQUESTS_IN_FLIGHT, -1);
    if (r->retry_timer_used) {
        uv_timer_stop(&r->retry_timer);
        uv_close((uv_handle_t *)&r->retry_timer, on_retry_timer_closed);
        return;
    }
    free_request(r);
}

/* Sends an error in the OpenAI format (status, message) and completes the request. */
static void fail(llm_req_t *r, int status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void fail(llm_req_t *r, int status, const char *type, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gw_buf_t body;
    gw_buf_init(&body, GW_BUF_UNLIMITED);
    gw_client_error_body(gw_operation_client_api(r->op), &body, status, msg, strlen(msg), type, code);
    gw_http_header_t h = {GW_STR("Content-Type"), GW_STR("application/json")};
    gw_http_response_head(r->http, status, &h, 1, (int64_t)body.len);
    gw_http_response_body(r->http, body.data, body.len);
    gw_buf_free(&body);
    r->failed = true;
    complete(r, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Retries, fallback and passive health */

enum { OUTCOME_CONNECT, OUTCOME_RESET, OUTCOME_TIMEOUT, OUTCOME_STATUS };

static void report_health(llm_req_t *r, bool ok)
{
    if (r->backend)
        gw_health_report(r->g->health, r->backend->name, &r->rule->health, ok, uv_now(r->g->loop));
}

static bool retriable(const gw_retry_policy_t *p, int outcome, int status)
{
    switch (outcome) {
    case OUTCOME_CONNECT: return p->on_connect_failure || p->on_5xx || p->on_gateway_error;
    case OUTCOME_RESET: return p->on_reset || p->on_5xx;
    case OUTCOME_TIMEOUT: return p->on_5xx || p->on_gateway_error;
    case OUTCOME_STATUS:
        if (p->on_5xx && status >= 500)
            return true;
        if (p->on_gateway_error && status >= 502 && status <= 504)
            return true;
        if (p->on_retriable_status)
            for (size_t i = 0; i < p->n_status_codes; i++)
                if (p->status_codes[i] == status)
                    return true;
        return false;
    }
    return false;
}

static void on_retry_timer(uv_timer_t *t)
{
    attempt_start(t->data);
}

/* Decides whether a failed attempt is tried again (on another backend when there is one). Only
 * before anything was sent to the client, within the retry budget and the route deadline. */
static bool try_again(llm_req_t *r, int outcome, int status)
{
    const gw_retry_policy_t *p = &r->rule->retry;
    if (r->head_sent || r->http->aborted || r->attempts > p->num_retries || !retriable(p, outcome, status))
        return false;
    if (r->deadline_ns && uv_hrtime() >= r->deadline_ns)
        return false;
    if (r->backend && r->n_tried < GW_ARRAY_SIZE(r->tried))
        r->tried[r->n_tried++] = r->backend;
    /* forget this attempt */
    gw_translator_free(r->tr);
    r->tr = NULL;
    gw_translate_output_free(&r->out);
    gw_translate_output_init(&r->out);
    r->up = NULL;
    r->up_status = 0;
    r->upstream_2xx = false;
    r->paused = false;
    r->t_first_byte = 0;
    gw_buf_reset(&r->err_body);
    gw_buf_reset(&r->err_content_type);
    gw_buf_reset(&r->err_encoding);
    gw_buf_reset(&r->err_hdr_store);
    r->n_err_spans = 0;
    /* jittered exponential backoff, as Envoy does */
    uint64_t base = p->backoff_base_ms ? p->backoff_base_ms : 25;
    uint64_t max = p->backoff_max_ms ? p->backoff_max_ms : base * 10;
    uint32_t shift = r->attempts - 1 < 16 ? r->attempts - 1 : 16;
    uint64_t window = GW_MIN(max, base << shift);
    uint64_t delay = gw_gateway_random(r->g) % (window + 1);
    if (!r->retry_timer_used) {
        uv_timer_init(r->g->loop, &r->retry_timer);
        r->retry_timer.data = r;
        r->retry_timer_used = true;
    }
    gw_metrics_counter_add(r->g->metrics, GW_COUNTER_UPSTREAM_RETRIES, 1);
    gw_log_debug("request %s: attempt %u failed, retrying in %llu ms", r->request_id, r->attempts,
                 (unsigned long long)delay);
    uv_timer_start(&r->retry_timer, on_retry_timer, delay, 0);
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Upstream callbacks */

static bool hop_by_hop(gw_str_t name)
{
    static const gw_str_t names[] = {GW_STR("connection"), GW_STR("keep-alive"), GW_STR("proxy-connection"),
                                     GW_STR("transfer-encoding"), GW_STR("te"), GW_STR("trailer"),
                                     GW_STR("upgrade"), GW_STR("content-length"), GW_STR("date")};
    for (size_t i = 0; i < GW_ARRAY_SIZE(names); i++)
        if (name.len == names[i].len && gw_str_case_eq(name, names[i]))
            return true;
    return false;
}

static int on_up_head(void *ud, int status, const gw_http_header_t *headers, size_t n)
{
    llm_req_t *r = ud;
    r->up_status = status;
    gw_str_t ctype = gw_http_header_find(headers, n, GW_STR("content-type"));
    gw_str_t cenc = gw_http_header_find(headers, n, GW_STR("content-encoding"));
    if (status < 200 || status >= 300) {
        gw_buf_append_str(&r->err_content_type, ctype);
        gw_buf_append_str(&r->err_encoding, cenc);
        for (size_t i = 0; i < n && r->n_err_spans < GW_ARRAY_SIZE(r->err_spans); i++) {
            size_t no = r->err_hdr_store.len;
            if (gw_buf_append_str(&r->err_hdr_store, headers[i].name) != GW_OK)
                break;
            size_t vo = r->err_hdr_store.len;
            if (gw_buf_append_str(&r->err_hdr_store, headers[i].value) != GW_OK)
                break;
            r->err_spans[r->n_err_spans].name_off = no;
            r->err_spans[r->n_err_spans].name_len = headers[i].name.len;
            r->err_spans[r->n_err_spans].value_off = vo;
            r->err_spans[r->n_err_spans].value_len = headers[i].value.len;
            r->n_err_spans++;
        }
        return GW_OK;
    }
    r->upstream_2xx = true;
    report_health(r, true);
    r->tr->vt->response_head(r->tr, status, ctype, cenc);
    gw_http_header_t out[GW_HTTP_MAX_HEADERS];
    size_t m = 0;
    int64_t content_length = -1;
    for (size_t i = 0; i < n && m < GW_ARRAY_SIZE(out); i++) {
        if (gw_str_case_eq_lit(headers[i].name, "content-length") && r->tr->passthrough_response) {
            uint64_t v = 0;
            bool ok = headers[i].value.len > 0 && headers[i].value.len < 19;
            for (size_t k = 0; ok && k < headers[i].value.len; k++) {
                char ch = headers[i].value.base[k];
                ok = ch >= '0' && ch <= '9';
                v = v * 10 + (uint64_t)(ch - '0');
            }
            if (ok)
                content_length = (int64_t)v;
            continue;
        }
        if (hop_by_hop(headers[i].name))
            continue;
        if (!r->tr->passthrough_response && (gw_str_case_eq_lit(headers[i].name, "content-encoding") ||
                                              gw_str_case_eq_lit(headers[i].name, "content-type")))
            continue;
        out[m++] = headers[i];
    }
    if (!r->tr->passthrough_response && r->tr->client_content_type[0] && m < GW_ARRAY_SIZE(out))
        out[m++] = (gw_http_header_t){GW_STR("Content-Type"), gw_str_c(r->tr->client_content_type)};
    gw_http_response_head(r->http, status, out, m, content_length);
    r->head_sent = true;
    return GW_OK;
}

static int on_up_body(void *ud, const char *p, size_t n)
{
    llm_req_t *r = ud;
    if (!r->upstream_2xx) {
        size_t room = MAX_ERROR_BODY - r->err_body.len;
        gw_buf_append(&r->err_body, p, GW_MIN(room, n));
        return GW_OK;
    }
    if (r->t_first_byte == 0)
        r->t_first_byte = uv_hrtime();
    int rc;
    if (r->tr->passthrough_response) {
        r->tr->vt->response_body(r->tr, p, n, false, NULL);
        rc = gw_http_response_body(r->http, p, n);
    } else {
        gw_buf_reset(&r->client_out);
        r->tr->vt->response_body(r->tr, p, n, false, &r->client_out);
        rc = gw_http_response_body(r->http, r->client_out.data, r->client_out.len);
    }
    if (rc != GW_OK) {
        /* the client went away: returning an error cancels the upstream request */
        r->up = NULL;
        r->termination = "client_disconnected";
        complete(r, 0);
        return GW_ERROR;
    }
    if (!r->paused && gw_http_over_high_water(r->http)) {
        r->paused = true;
        gw_upstream_pause(r->up);
    }
    return GW_OK;
}

static void stream_error_event(llm_req_t *r, int status, const char *type, const char *message)
{
    gw_buf_t ev;
    gw_buf_init(&ev, GW_BUF_UNLIMITED);
    gw_client_error_event(gw_operation_client_api(r->op), &ev, status, message, type);
    gw_http_response_body(r->http, ev.data, ev.len);
    gw_buf_free(&ev);
}

static void on_up_done(void *ud, int status, const char *detail)
{
    llm_req_t *r = ud;
    r->up = NULL;
    const char *peer = NULL;
    (void)peer;
    if (status == GW_UPSTREAM_OK) {
        if (r->upstream_2xx) {
            gw_buf_reset(&r->client_out);
            r->tr->vt->response_body(r->tr, NULL, 0, true, &r->client_out);
            if (r->client_out.len)
                gw_http_response_body(r->http, r->client_out.data, r->client_out.len);
            if (r->tr->stream_failed)
                r->failed = true;
            complete(r, 0);
            return;
        }
        report_health(r, r->up_status < 500);
        if (try_again(r, OUTCOME_STATUS, r->up_status))
            return;
        /* upstream 4xx/5xx: its status, and its body in the client's error format */
        gw_http_header_t eh[GW_ARRAY_SIZE(r->err_spans)];
        for (size_t i = 0; i < r->n_err_spans; i++) {
            eh[i].name = gw_str(r->err_hdr_store.data + r->err_spans[i].name_off, r->err_spans[i].name_len);
            eh[i].value = gw_str(r->err_hdr_store.data + r->err_spans[i].value_off, r->err_spans[i].value_len);
        }
        /* An encoded error body is decoded here: it is small, and the client gets it plain. */
        gw_buf_t decoded;
        gw_buf_init(&decoded, MAX_ERROR_BODY);
        gw_str_t raw = gw_buf_str(&r->err_body);
        gw_encoding_t enc = gw_encoding_parse(gw_buf_str(&r->err_encoding));
        if (enc != GW_ENCODING_IDENTITY && enc != GW_ENCODING_UNSUPPORTED) {
            gw_decoder_t *d = gw_decoder_new(enc, MAX_ERROR_BODY);
            if (d && gw_decoder_feed(d, raw.base, raw.len, &decoded) == GW_OK)
                raw = gw_buf_str(&decoded);
            gw_decoder_free(d);
        }
        gw_buf_t rewritten;
        gw_buf_init(&rewritten, GW_BUF_UNLIMITED);
        r->tr->vt->response_error(r->tr, r->up_status, eh, r->n_err_spans, raw, &rewritten);
        gw_str_t body = rewritten.len ? gw_buf_str(&rewritten) : raw;
        gw_str_t ctype = rewritten.len || r->err_content_type.len == 0 ? GW_STR("application/json")
                                                                       : gw_buf_str(&r->err_content_type);
        gw_http_header_t h = {GW_STR("Content-Type"), ctype};
        gw_http_response_head(r->http, r->up_status, &h, 1, (int64_t)body.len);
        gw_http_response_body(r->http, body.base, body.len);
        gw_buf_free(&rewritten);
        gw_buf_free(&decoded);
        r->failed = true;
        complete(r, 0);
        return;
    }

    report_health(r, false);
    if (!r->head_sent &&
        try_again(r,
                  status == GW_UPSTREAM_ECONNECT   ? OUTCOME_CONNECT
                  : status == GW_UPSTREAM_ETIMEOUT ? OUTCOME_TIMEOUT
                                                   : OUTCOME_RESET,
                  0))
        return;
    const char *what = status == GW_UPSTREAM_ETIMEOUT ? "upstream request timeout"
                       : status == GW_UPSTREAM_ECONNECT ? "upstream connect error"
                       : status == GW_UPSTREAM_EPROTO   ? "upstream protocol error"
                                                        : "upstream connection reset";
    r->termination = status == GW_UPSTREAM_ETIMEOUT ? "upstream_timeout"
                     : status == GW_UPSTREAM_ECONNECT ? "upstream_connect_failure"
                     : status == GW_UPSTREAM_EPROTO   ? "upstream_protocol_error"
                                                      : "upstream_reset";
    gw_log_debug("request %s: %s (%s) from backend %s", r->request_id, what, detail ? detail : "",
                 r->backend->name);
    if (!r->head_sent) {
        int code = status == GW_UPSTREAM_ETIMEOUT ? 504 : 502;
        fail(r, code, "api_error", status == GW_UPSTREAM_ETIMEOUT ? "upstream_timeout" : "upstream_error", "%s: %s",
             what, detail ? detail : "");
        return;
    }
    r->failed = true;
    if (r->tr->stream_response) {
        /* Tell a streaming client in-band, then end the stream cleanly: the error event, never a
         * silent truncation that looks complete, and no [DONE]. */
        char msg[256];
        snprintf(msg, sizeof(msg), "%s during the response stream: %s", what, detail ? detail : "");
        stream_error_event(r, status == GW_UPSTREAM_ETIMEOUT ? 504 : 502,
                           status == GW_UPSTREAM_ETIMEOUT ? "timeout_error" : "api_error", msg);
        complete(r, 0);
    } else {
        complete(r, 1);
    }
}

static const gw_upstream_callbacks_t upstream_cbs = {on_up_head, on_up_body, on_up_done};

/* ---------------------------------------------------------------------------------------------
 * Request start */

static gw_str_t route_header(void *ud, gw_str_t name)
{
    llm_req_t *r = ud;
    if (gw_str_eq_lit(name, "x-ai-eg-model"))
        return gw_buf_str(&r->model);
    return gw_http_header_find(r->http->headers, r->http->n_headers, name);
}

/* numAttemptsPerPriority: a tier that already had that many failed attempts for this request is
 * left for the next one. */
static bool tier_exhausted(const llm_req_t *r, uint32_t priority)
{
    uint32_t limit = r->rule->retry.num_attempts_per_priority;
    if (limit == 0)
        return false;
    uint32_t used = 0;
    for (size_t i = 0; i < r->n_tried; i++)
        if (r->tried[i]->priority == priority)
            used++;
    return used >= limit;
}

static bool was_tried(const llm_req_t *r, const gw_backend_t *b)
{
    for (size_t i = 0; i < r->n_tried; i++)
        if (r->tried[i] == b)
            return true;
    return false;
}

/* Priority first (0 before 1 ...), then weighted random within the tier. A backend is a candidate
 * when it has weight, is not ejected by passive health and did not already fail this request;
 * when nothing qualifies, the conditions are relaxed in that order (better an ejected backend
 * than none, as Envoy's panic threshold does). */
static const gw_backend_t *pick_backend(llm_req_t *r)
{
    const gw_route_rule_t *rule = r->rule;
    uint64_t now_ms = uv_now(r->g->loop);
    for (int pass = 0; pass < 3; pass++) {
        uint32_t best = UINT32_MAX;
        uint64_t total = 0;
        for (int round = 0; round < 2; round++) {
            uint64_t x = round ? gw_gateway_random(r->g) % total : 0;
            for (size_t i = 0; i < rule->n_backends; i++) {
                const gw_backend_t *b = &rule->backends[i];
                if (b->weight == 0)
                    continue;
                if (pass < 2 && !gw_health_available(r->g->health, b->name, now_ms))
                    continue;
                if (pass < 1 && (was_tried(r, b) || tier_exhausted(r, b->priority)))
                    continue;
                if (round == 0) {
                    if (b->priority < best) {
                        best = b->priority;
                        total = 0;
                    }
                    if (b->priority == best)
                        total += b->weight;
                } else if (b->priority == best) {
                    if (x < b->weight)
                        return b;
                    x -= b->weight;
                }
            }
            if (total == 0)
                break;
        }
    }
    return NULL;
}

/* Header mutations never touch pseudo-headers or the gateway's own x-ai-eg-* namespace (the
 * reference's rule), nor the framing and credentials the gateway sets itself. */
static bool protected_header(gw_str_t name)
{
    return (name.len && name.base[0] == ':') ||
           (name.len >= 8 && gw_str_case_eq(gw_str(name.base, 8), GW_STR("x-ai-eg-"))) || hop_by_hop(name) ||
           gw_str_case_eq_lit(name, "host");
}

static bool header_in_mutation(const gw_header_mutation_t *m, gw_str_t name)
{
    for (size_t i = 0; i < m->n_set; i++)
        if (gw_str_case_eq(name, gw_str_c(m->set[i].name)))
            return true;
    for (size_t i = 0; i < m->n_remove; i++)
        if (gw_str_case_eq(name, gw_str_c(m->remove[i])))
            return true;
    return false;
}

static bool translator_sets(const gw_translate_output_t *o, gw_str_t name)
{
    if (o->content_type[0] && gw_str_case_eq_lit(name, "content-type"))
        return true;
    for (size_t i = 0; i < o->n_headers; i++)
        if (gw_str_case_eq(name, gw_str_c(o->headers[i].name)))
            return true;
    return false;
}

static bool is_auth_header(gw_str_t name)
{
    return gw_str_case_eq_lit(name, "authorization") || gw_str_case_eq_lit(name, "api-key") ||
           gw_str_case_eq_lit(name, "x-api-key");
}

static void send_upstream(llm_req_t *r)
{
    gw_gateway_t *g = r->g;
    const gw_backend_t *b = r->backend;
    gw_http_req_t *http = r->http;
    gw_http_header_t hdrs[GW_HTTP_MAX_HEADERS + GW_TRANSLATE_MAX_HEADERS + 24];
    size_t n = 0;
    bool has_request_id = false;
    for (size_t i = 0; i < http->n_headers && n < GW_HTTP_MAX_HEADERS; i++) {
        gw_str_t name = http->headers[i].name;
        if (hop_by_hop(name) || gw_str_case_eq_lit(name, "host") || gw_str_case_eq_lit(name, "expect"))
            continue;
        if (name.len >= 8 && gw_str_case_eq(gw_str(name.base, 8), GW_STR("x-ai-eg-")))
            continue; /* the gateway's own namespace */
        if (b->auth.type != GW_AUTH_NONE && is_auth_header(name))
            continue; /* the client's credentials never reach a backend that has its own */
        if (header_in_mutation(&b->header_mutation, name))
            continue;
        if (translator_sets(&r->out, name))
            continue;
        if (gw_str_case_eq_lit(name, "x-request-id"))
            has_request_id = true;
        hdrs[n++] = http->headers[i];
    }
    for (size_t i = 0; i < r->out.n_headers; i++)
        hdrs[n++] = (gw_http_header_t){gw_str_c(r->out.headers[i].name), gw_str_c(r->out.headers[i].value)};
    if (r->out.content_type[0])
        hdrs[n++] = (gw_http_header_t){GW_STR("Content-Type"), gw_str_c(r->out.content_type)};
    for (size_t i = 0; i < b->header_mutation.n_set && n < GW_ARRAY_SIZE(hdrs) - 4; i++) {
        gw_str_t name = gw_str_c(b->header_mutation.set[i].name);
        if (protected_header(name))
            continue;
        hdrs[n++] = (gw_http_header_t){name, gw_str_c(b->header_mutation.set[i].value)};
    }
    if (!has_request_id)
        hdrs[n++] = (gw_http_header_t){GW_STR("x-request-id"), r->request_id_s};
    /* credentials last: they may sign the exact bytes, path and headers that go out */
    gw_buf_t host;
    gw_buf_init(&host, 1024);
    if (b->auth.type == GW_AUTH_AWS_CREDENTIALS) /* only SigV4 signs the Host header */
        gw_auth_host_header(b, &host);
    gw_str_t body = r->out.body_changed ? gw_buf_str(&r->out.body) : gw_buf_str(&http->body);
    gw_str_t ctype = r->out.content_type[0] ? gw_str_c(r->out.content_type)
                                            : gw_http_header_find(http->headers, http->n_headers, GW_STR("content-type"));
    gw_auth_request_t areq = {
        .method = GW_STR("POST"),
        .path = gw_buf_str(&r->out.path),
        .host = gw_buf_str(&host),
        .content_type = ctype,
        .body = body,
        .key_cache = &g->sigv4_keys,
    };
    gw_auth_result_t auth;
    gw_auth_result_init(&auth);
    const char *auth_err = NULL;
    if (gw_auth_apply(b, &areq, &auth, &auth_err) != GW_OK) {
        gw_auth_result_free(&auth);
        gw_buf_free(&host);
        fail(r, 503, "api_error", NULL, "cannot authenticate to backend %s: %s", b->name, auth_err);
        return;
    }
    for (size_t i = 0; i < auth.n_headers; i++)
        hdrs[n++] = auth.headers[i];
    gw_upstream_target_t target = {
        .host = gw_str_c(b->host),
        .port = b->port,
        .tls = b->tls,
        .sni = b->sni ? gw_str_c(b->sni) : GW_STR_NULL,
        .ca_pem = b->ca_pem ? gw_str_c(b->ca_pem) : GW_STR_NULL,
    };
    gw_upstream_request_t ureq = {
        .method = GW_STR("POST"),
        .path = gw_buf_str(&r->out.path),
        .headers = hdrs,
        .n_headers = n,
        .body = body,
    };
    /* this attempt's budget: the per-retry timeout within what is left of the route deadline */
    uint64_t total = 0;
    if (r->deadline_ns) {
        uint64_t now = uv_hrtime();
        total = r->deadline_ns > now ? (r->deadline_ns - now) / 1000000 : 1;
        if (total == 0)
            total = 1;
    }
    if (r->rule->retry.per_retry_timeout_ms && (total == 0 || r->rule->retry.per_retry_timeout_ms < total))
        total = r->rule->retry.per_retry_timeout_ms;
    gw_upstream_timeouts_t to = {
        .connect_ms = g->opts->connect_timeout_ms,
        .total_ms = total,
        .idle_ms = g->opts->stream_idle_timeout_ms,
    };
    r->t_upstream_start = uv_hrtime();
    r->upstream_host[0] = '\0'; /* formatted at the end, only when the access log wants it */
    r->up = gw_upstream_send(g->upstream, &target, &ureq, &to, &upstream_cbs, r);
    gw_auth_result_free(&auth);
    gw_buf_free(&host);
}

void gw_llm_request_start(gw_gateway_t *g, gw_http_req_t *http, gw_operation_t op)
{
    llm_req_t *r = g->spare_requests;
    if (r) {
        g->spare_requests = r->next_spare;
        g->n_spare_requests--;
        memset(r, 0, offsetof(llm_req_t, model));
    } else {
        r = gw_malloc(sizeof(*r));
        memset(r, 0, offsetof(llm_req_t, model));
        gw_buf_init(&r->model, 4096);
        gw_buf_init(&r->err_body, MAX_ERROR_BODY);
        gw_buf_init(&r->err_content_type, 256);
        gw_buf_init(&r->err_encoding, 64);
        gw_buf_init(&r->err_hdr_store, 16384);
        gw_buf_init(&r->client_out, GW_BUF_UNLIMITED);
        gw_translate_output_init(&r->out);
    }
    r->g = g;
    r->http = http;
    r->op = op;
    r->config = gw_config_ref(g->config);
    http->data = r;
    g->in_flight++;
    gw_metrics_gauge_add(g->metrics, GW_GAUGE_REQUESTS_IN_FLIGHT, 1);

    gw_str_t rid = gw_http_header_find(http->headers, http->n_headers, GW_STR("x-request-id"));
    if (rid.len && rid.len < sizeof(r->request_id)) {
        memcpy(r->request_id, rid.base, rid.len);
        r->request_id[rid.len] = '\0';
    } else {
        /* a random UUIDv4, formatted by hand (this runs for every request without an id) */
        static const char hex[] = "0123456789abcdef";
        uint64_t a = gw_gateway_random(g), b = gw_gateway_random(g);
        unsigned char raw[16];
        memcpy(raw, &a, 8);
        memcpy(raw + 8, &b, 8);
        raw[6] = (unsigned char)((raw[6] & 0x0f) | 0x40);
        raw[8] = (unsigned char)((raw[8] & 0x3f) | 0x80);
        char *o = r->request_id;
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                *o++ = '-';
            *o++ = hex[raw[i] >> 4];
            *o++ = hex[raw[i] & 15];
        }
        *o = '\0';
    }
    r->request_id_s = gw_str_c(r->request_id);

    gw_json_error_t jerr = {0};
    gw_str_t body = http->body.len ? gw_buf_str(&http->body) : GW_STR("");
    if (body.len == 0) {
        fail(r, 400, "invalid_request_error", NULL, "the request body is empty; a JSON object is expected");
        return;
    }
    /* The validation pass also finds the two members the gateway reads itself. */
    static const gw_str_t members[] = {GW_STR_INIT("model"), GW_STR_INIT("stream")};
    gw_str_t member_values[GW_ARRAY_SIZE(members)];
    int rc = gw_json_validate_members(body.base, body.len, GW_JSON_DEFAULT_MAX_DEPTH, &jerr, members, member_values,
                                      GW_ARRAY_SIZE(members));
    if (rc != GW_OK) {
        fail(r, 400, "invalid_request_error", NULL, "the request body is not valid JSON: %s at byte %zu",
             jerr.what ? jerr.what : "malformed", jerr.offset);
        return;
    }
    if (gw_json_type(body) != GW_JSON_OBJECT) {
        fail(r, 400, "invalid_request_error", NULL, "the request body must be a JSON object");
        return;
    }
    r->model_raw = member_values[0];
    gw_str_t stream_raw = member_values[1];
    if (r->model_raw.base == NULL || gw_json_type(r->model_raw) != GW_JSON_STRING ||
        gw_json_string_unescape(r->model_raw, &r->model) != GW_OK || r->model.len == 0) {
        fail(r, 400, "invalid_request_error", NULL, "the request body must have a non-empty string field \"model\"");
        return;
    }
    bool stream = false;
    if (stream_raw.base)
        gw_json_bool(stream_raw, &stream);
    r->stream_requested = stream;

    r->rule = gw_config_match(r->config, route_header, r);
    if (r->rule == NULL) {
        fail(r, 404, "invalid_request_error", "model_not_found", "%s", GW_NO_ROUTE_MESSAGE);
        return;
    }
    uint64_t timeout_ms = g->opts->request_timeout_ms ? g->opts->request_timeout_ms : r->rule->request_timeout_ms;
    r->deadline_ns = timeout_ms ? http->start_ns + timeout_ms * 1000000ULL : 0;
    attempt_start(r);
}

/* One attempt: pick a backend, translate the original body for it, send. */
static void attempt_start(llm_req_t *r)
{
    gw_http_req_t *http = r->http;
    r->attempts++;
    r->backend = pick_backend(r);
    if (r->backend == NULL) {
        fail(r, 503, "api_error", NULL, "no backend with a non-zero weight for model %.*s", (int)GW_MIN(r->model.len, 200),
             r->model.data);
        return;
    }
    r->tr = gw_translator_new(r->op, r->backend->schema);
    if (r->tr == NULL) {
        const gw_backend_t *b = r->backend;
        r->backend = NULL; /* no metrics for a request that never reached a provider */
        fail(r, 400, "invalid_request_error", NULL, "%s is not supported by the %s backend %s",
             endpoint_label(r->op).base, gw_schema_name(b->schema), b->name);
        return;
    }
    const char *err = NULL;
    gw_translate_request_t tin = {
        .op = r->op,
        .body = gw_buf_str(&http->body),
        .model_raw = r->model_raw,
        .model_override = r->backend->model_name_override,
        .stream = r->stream_requested,
        .backend = r->backend,
        .headers = http->headers,
        .n_headers = http->n_headers,
    };
    if (r->tr->vt->request(r->tr, &tin, &r->out, &err) != GW_OK) {
        fail(r, 400, "invalid_request_error", NULL, "%s", err ? err : "the request cannot be translated");
        return;
    }
    send_upstream(r);
}

void gw_llm_request_abort(gw_http_req_t *http)
{
    llm_req_t *r = http->data;
    if (r->termination == NULL)
        r->termination = "client_disconnected";
    complete(r, 0);
}

void gw_llm_request_drain(gw_http_req_t *http)
{
    llm_req_t *r = http->data;
    if (r->paused && r->up) {
        r->paused = false;
        gw_upstream_resume(r->up);
    }
}
