/* Anthropic -> Anthropic passthrough (see anthropic_anthropic.h). Content-encoded responses are
 * decoded into a private buffer for observation only; streams are observed event by event as
 * they pass, non-streaming bodies once at the end. */
#include "translate/anthropic_anthropic.h"

#include "codec/sse.h"
#include "core/alloc.h"
#include "translate/body_tap.h"
#include "core/json.h"
#include "translate/anthropic_common.h"

#include <stdlib.h>

/* Bodies larger than this are still forwarded in full; only observation gives up on them. */
#define OBSERVE_MAX_BODY (64u << 20)
#define MAX_ERROR_MESSAGE 4096

typedef struct {
    gw_translator_t base;
    gw_operation_t op;
    gw_body_tap_t tap;      /* decoded view of the body, for usage */
    gw_sse_parser_t sse;
    gw_anthropic_stream_obs_t obs;
    gw_buf_t body;         /* decoded non-streaming body, read at the end */
    bool observe_failed;   /* corrupt encoding or oversized body: stop observing */
} anthropic_tr_t;

static int tr_request(gw_translator_t *t, const gw_translate_request_t *in, gw_translate_output_t *out,
                      const char **err)
{
    anthropic_tr_t *a = (anthropic_tr_t *)t;
    gw_anthropic_messages_path(in->backend->schema_version, a->op == GW_OP_COUNT_TOKENS, &out->path);
    out->body_changed = false;
    out->n_headers = 0;
    /* anthropic-beta and a client's own anthropic-version reach the backend as client headers. */
    if (!gw_anthropic_client_has_version(in->headers, in->n_headers))
        gw_translate_output_add_header(out, "anthropic-version", GW_ANTHROPIC_VERSION);
    if (in->model_override && *in->model_override) {
        gw_buf_t quoted;
        gw_buf_init(&quoted, GW_BUF_UNLIMITED);
        gw_json_append_string(&quoted, in->model_override, strlen(in->model_override));
        gw_buf_reset(&out->body);
        int rc = in->model_raw.base ? gw_json_splice(in->body, in->model_raw, gw_buf_str(&quoted), &out->body)
                                    : GW_EINVAL;
        gw_buf_free(&quoted);
        if (rc != GW_OK) {
            *err = "cannot rewrite the model name";
            return GW_EINVAL;
        }
        out->body_changed = true;
    }
    return GW_OK;
}

static int tr_response_head(gw_translator_t *t, int status, gw_str_t content_type, gw_str_t content_encoding)
{
    anthropic_tr_t *a = (anthropic_tr_t *)t;
    (void)status;
    gw_body_tap_start(&a->tap, content_encoding, OBSERVE_MAX_BODY);
    if (a->tap.failed)
        a->observe_failed = true;
    t->stream_response = gw_content_type_is_event_stream(content_type);
    return GW_OK;
}

static int on_sse_event(void *ud, const gw_sse_event_t *ev)
{
    anthropic_tr_t *a = ud;
    gw_token_usage_t u = a->base.usage;
    gw_buf_t model;
    gw_buf_init(&model, 1024);
    gw_anthropic_stream_observe(&a->obs, ev->event, ev->data, &u, &model);
    a->base.usage = u;
    if (model.len) {
        gw_buf_reset(&a->base.response_model);
        gw_buf_append_str(&a->base.response_model, gw_buf_str(&model));
    }
    gw_buf_free(&model);
    /* The client already has the error event in its own (Anthropic) format; the exchange is
     * still a failure for metrics and the access log. */
    if (a->obs.saw_error)
        a->base.stream_failed = true;
    return GW_OK;
}

static void observe(anthropic_tr_t *a, const char *p, size_t n)
{
    if (a->base.stream_response) {
        if (gw_sse_feed(&a->sse, p, n, on_sse_event, a) != GW_OK)
            a->observe_failed = true;
    } else if (gw_buf_append(&a->body, p, n) != GW_OK) {
        a->observe_failed = true;
    }
}

static int tr_response_body(gw_translator_t *t, const char *p, size_t n, bool end, gw_buf_t *out)
{
    anthropic_tr_t *a = (anthropic_tr_t *)t;
    /* passthrough: the client gets the upstream bytes; out is only written at the end */
    if (!a->observe_failed && n) {
        gw_str_t decoded;
        if (gw_body_tap_feed(&a->tap, p, n, &decoded))
            observe(a, decoded.base, decoded.len);
        else
            a->observe_failed = true;
    }
    /* The last event may lack its closing blank line (seen in SDK fixtures): end of stream ends
     * it, as the SDKs' decoders do. */
    bool torn = end && t->stream_response && !a->observe_failed && gw_sse_has_partial(&a->sse);
    if (torn && gw_sse_feed(&a->sse, "\n\n", 2, on_sse_event, a) != GW_OK)
        a->observe_failed = true;
    /* A stream that ends without message_stop (and without an error event) was cut short: tell
     * the client in its own format rather than let the end look like a clean one. After a torn
     * event, blank lines first so the client's parser does not glue the two together. */
    if (end && out && t->stream_response && !a->observe_failed && !a->obs.saw_message_stop && !a->obs.saw_error) {
        if (torn)
            gw_buf_append_lit(out, "\n\n");
        gw_buf_append_lit(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                               "\"message\":\"the upstream stream ended before message_stop\"}}\n\n");
        t->stream_failed = true;
    }
    /* count_tokens answers {"input_tokens": N}: a count, not tokens spent, so no usage record. */
    if (end && !a->observe_failed && !t->stream_response && a->body.len && a->op == GW_OP_MESSAGES) {
        gw_token_usage_t u;
        gw_buf_t model;
        gw_buf_init(&model, 1024);
        if (gw_anthropic_usage_from_body(gw_buf_str(&a->body), &u, &model) == GW_OK) {
            t->usage = u;
            if (model.len) {
                gw_buf_reset(&t->response_model);
                gw_buf_append_str(&t->response_model, gw_buf_str(&model));
            }
        }
        gw_buf_free(&model);
    }
    return GW_OK;
}

static int tr_response_error(gw_translator_t *t, int status, const gw_http_header_t *headers, size_t n_headers,
                             gw_str_t body, gw_buf_t *out)
{
    (void)t;
    (void)headers;
    (void)n_headers;
    gw_buf_t type, message;
    gw_buf_init(&type, 256);
    gw_buf_init(&message, MAX_ERROR_MESSAGE * 4);
    bool is_json = body.len && gw_json_validate(body.base, body.len, GW_JSON_DEFAULT_MAX_DEPTH, NULL) == GW_OK &&
                   gw_json_type(body) == GW_JSON_OBJECT;
    if (is_json && gw_anthropic_error_parse(body, &type, &message) && type.len) {
        /* Already an Anthropic error (with its request_id): the client gets it unchanged. */
        goto out;
    }
    /* Anything else (an HTML page from a proxy, {"message": ...} from an API gateway, text) is
     * wrapped so Anthropic SDKs can read it; the type follows the status as Anthropic's would. */
    const char *etype = type.len ? gw_buf_cstr(&type) : gw_anthropic_error_type(status);
    gw_str_t m = GW_STR_NULL;
    gw_str_t v;
    if (message.len)
        m = gw_buf_str(&message);
    else if (is_json && gw_json_object_get(body, GW_STR("message"), &v) == GW_OK && gw_json_type(v) == GW_JSON_STRING &&
             gw_json_string_unescape(v, &message) == GW_OK && message.len)
        m = gw_buf_str(&message);
    else {
        m = body;
        while (m.len && (m.base[m.len - 1] == '\n' || m.base[m.len - 1] == '\r' || m.base[m.len - 1] == ' '))
            m.len--;
    }
    gw_buf_append_lit(out, "{\"type\":\"error\",\"error\":{\"type\":");
    gw_json_append_string(out, etype, strlen(etype));
    gw_buf_append_lit(out, ",\"message\":");
    if (m.len == 0)
        gw_buf_appendf(out, "\"upstream returned status %d with an empty body\"", status);
    else
        gw_json_append_string(out, m.base, GW_MIN(m.len, (size_t)MAX_ERROR_MESSAGE));
    gw_buf_append_lit(out, "}}");
out:
    gw_buf_free(&type);
    gw_buf_free(&message);
    return GW_OK;
}

static void tr_destroy(gw_translator_t *t)
{
    anthropic_tr_t *a = (anthropic_tr_t *)t;
    gw_body_tap_free(&a->tap);
    gw_sse_parser_free(&a->sse);
    gw_buf_free(&a->body);
    gw_buf_free(&t->response_model);
    free(a);
}

static const gw_translator_vtable_t vtable = {
    .request = tr_request,
    .response_head = tr_response_head,
    .response_body = tr_response_body,
    .response_error = tr_response_error,
    .destroy = tr_destroy,
};

gw_translator_t *gw_anthropic_anthropic_new(gw_operation_t op)
{
    if (op != GW_OP_MESSAGES && op != GW_OP_COUNT_TOKENS)
        return NULL;
    anthropic_tr_t *a = gw_calloc(1, sizeof(*a));
    a->base.vt = &vtable;
    a->base.passthrough_response = true;
    a->op = op;
    gw_buf_init(&a->base.response_model, 1024);
    gw_sse_parser_init(&a->sse, GW_SSE_DEFAULT_MAX_EVENT);
    gw_buf_init(&a->body, OBSERVE_MAX_BODY);
    gw_body_tap_init(&a->tap);
    return &a->base;
}
