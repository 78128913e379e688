/* Anthropic Messages -> Bedrock InvokeModel (see anthropic_awsanthropic.h). The request body is
 * spliced member by member, never re-serialized, so every value reaches Bedrock byte for byte.
 * A streamed response arrives as AWS event-stream "chunk" frames whose JSON payload carries one
 * Anthropic event in base64; each is decoded and written as the SSE event Anthropic itself
 * would have sent, usage read on the way (anthropic_common). */
#include "translate/anthropic_awsanthropic.h"

#include "codec/aws_eventstream.h"
#include "codec/base64.h"
#include "codec/decompress.h"
#include "core/alloc.h"
#include "core/json.h"
#include "translate/anthropic_common.h"
#include "translate/bedrock_common.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_RESPONSE_BODY (64u << 20) /* non-streaming bodies beyond this are forwarded unobserved */
#define MAX_EVENT_TYPE 64

typedef struct {
    gw_translator_t base;
    bool stream_requested;
    bool unwrap;           /* the response is an event stream being turned into SSE */
    gw_decoder_t *decoder; /* content-encoding, NULL for identity */
    bool encoding_failed;
    gw_buf_t decoded;
    gw_buf_t body;         /* passthrough body, observed for usage at the end */
    bool body_too_big;
    gw_eventstream_decoder_t es;
    gw_anthropic_stream_obs_t obs;
    bool finished;         /* the stream ended in error: ignore further bytes */
    gw_buf_t b64;          /* the chunk's base64 text, unescaped */
    gw_buf_t event;        /* the decoded Anthropic event */
    gw_buf_t tmp;
    gw_buf_t *out;         /* the client's bytes during a feed */
} awsa_tr_t;

/* ---------------------------------------------------------------------------------------------
 * Request.
 */

/* request() runs once per attempt: whatever an earlier attempt left of a response goes. */
static void reset_response(awsa_tr_t *a)
{
    gw_decoder_free(a->decoder);
    a->decoder = NULL;
    a->unwrap = a->encoding_failed = a->body_too_big = a->finished = false;
    gw_buf_reset(&a->body);
    gw_eventstream_decoder_free(&a->es);
    gw_eventstream_decoder_init(&a->es);
    memset(&a->obs, 0, sizeof(a->obs));
    memset(&a->base.usage, 0, sizeof(a->base.usage));
    gw_buf_reset(&a->base.response_model);
    a->base.stream_failed = false;
}

static int tr_request(gw_translator_t *t, const gw_translate_request_t *in, gw_translate_output_t *out,
                      const char **err)
{
    awsa_tr_t *a = (awsa_tr_t *)t;
    reset_response(a);
    const char *version = in->backend && in->backend->schema_version && *in->backend->schema_version
                              ? in->backend->schema_version
                              : GW_BEDROCK_DEFAULT_ANTHROPIC_VERSION;
    gw_buf_t model;
    gw_buf_init(&model, 4096);
    int rc = GW_EINVAL;
    if (in->model_override && *in->model_override) {
        gw_buf_append(&model, in->model_override, strlen(in->model_override));
    } else {
        gw_str_t raw = in->model_raw;
        if (raw.base == NULL)
            gw_json_object_get(in->body, GW_STR("model"), &raw);
        if (gw_json_type(raw) != GW_JSON_STRING || gw_json_string_unescape(raw, &model) != GW_OK)
            gw_buf_reset(&model);
    }
    if (model.len == 0) {
        *err = "the request has no model";
        goto out;
    }
    a->stream_requested = in->stream;
    gw_buf_reset(&out->path);
    if (gw_bedrock_model_path(&out->path, gw_buf_str(&model), in->stream ? "invoke-with-response-stream" : "invoke") !=
        GW_OK) {
        *err = "the model name is too long";
        goto out;
    }
    /* Every member but model, stream and anthropic_version, copied as it is; the version last. */
    gw_buf_reset(&out->body);
    gw_buf_append_byte(&out->body, '{');
    size_t pos = 0, kept = 0;
    gw_str_t k, v;
    int jrc;
    while ((jrc = gw_json_object_next(in->body, &pos, &k, &v)) == GW_OK) {
        if (gw_json_key_eq(k, GW_STR("model")) || gw_json_key_eq(k, GW_STR("stream")) ||
            gw_json_key_eq(k, GW_STR("anthropic_version")))
            continue;
        if (kept++)
            gw_buf_append_byte(&out->body, ',');
        gw_buf_append_str(&out->body, k);
        gw_buf_append_byte(&out->body, ':');
        gw_buf_append_str(&out->body, v);
    }
    if (jrc != GW_DONE) {
        *err = "the request body is not a JSON object";
        goto out;
    }
    if (kept)
        gw_buf_append_byte(&out->body, ',');
    gw_buf_append_lit(&out->body, "\"anthropic_version\":");
    gw_json_append_string(&out->body, version, strlen(version));
    if (gw_buf_append_byte(&out->body, '}') != GW_OK) {
        *err = "the translated request is too large";
        goto out;
    }
    out->body_changed = true;
    snprintf(out->content_type, sizeof(out->content_type), "application/json");
    gw_translate_output_add_header(out, "accept", in->stream ? "application/vnd.amazon.eventstream" : "application/json");
    if (in->stream) /* no compressor between the model and the client: it would hold back tokens */
        gw_translate_output_add_header(out, "accept-encoding", "identity");
    rc = GW_OK;
out:
    gw_buf_free(&model);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Errors.
 */

static bool contains_ci(gw_str_t s, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= s.len; i++)
        if (gw_str_case_eq(gw_str(s.base + i, n), gw_str(needle, n)))
            return true;
    return false;
}

/* Anthropic's error type for a Bedrock error or exception name, so Anthropic SDKs classify it
 * (retry on rate_limit_error and overloaded_error) as they would Anthropic's own. */
static const char *anthropic_type_for(gw_str_t aws_type, int status)
{
    if (contains_ci(aws_type, "throttl") || contains_ci(aws_type, "quotaexceeded") ||
        contains_ci(aws_type, "toomanyrequests"))
        return "rate_limit_error";
    if (contains_ci(aws_type, "validation"))
        return "invalid_request_error";
    if (contains_ci(aws_type, "accessdenied"))
        return "permission_error";
    if (contains_ci(aws_type, "notfound"))
        return "not_found_error";
    if (contains_ci(aws_type, "unrecognizedclient") || contains_ci(aws_type, "signature") ||
        contains_ci(aws_type, "expiredtoken") || contains_ci(aws_type, "authenticationtoken"))
        return "authentication_error";
    if (contains_ci(aws_type, "serviceunavailable") || contains_ci(aws_type, "modelnotready"))
        return "overloaded_error";
    if (aws_type.len)
        return "api_error"; /* modelStreamErrorException, internalServerException, modelTimeoutException */
    return status > 0 ? gw_anthropic_error_type(status) : "api_error";
}

static void append_anthropic_error(gw_buf_t *out, const char *type, const char *msg, size_t msg_len)
{
    gw_buf_append_lit(out, "{\"type\":\"error\",\"error\":{\"type\":");
    gw_json_append_string(out, type, strlen(type));
    gw_buf_append_lit(out, ",\"message\":");
    gw_json_append_string(out, msg, msg_len);
    gw_buf_append_lit(out, "}}");
}

static void stream_error(awsa_tr_t *a, const char *type, const char *msg, size_t msg_len)
{
    if (a->finished)
        return;
    gw_buf_append_lit(a->out, "event: error\ndata: ");
    append_anthropic_error(a->out, type, msg, msg_len);
    gw_buf_append_lit(a->out, "\n\n");
    a->base.stream_failed = true;
    a->finished = true;
}

static void stream_error_lit(awsa_tr_t *a, const char *msg)
{
    stream_error(a, "api_error", msg, strlen(msg));
}

static int tr_response_error(gw_translator_t *t, int status, const gw_http_header_t *headers, size_t n_headers,
                             gw_str_t body, gw_buf_t *out)
{
    (void)t;
    /* Bedrock relays Claude's own errors in the Anthropic format: those pass unchanged. */
    gw_str_t type_raw;
    if (gw_json_type(body) == GW_JSON_OBJECT && gw_anthropic_error_parse(body, NULL, NULL) &&
        gw_json_object_get(body, GW_STR("type"), &type_raw) == GW_OK && gw_str_eq_lit(type_raw, "\"error\""))
        return GW_OK;
    gw_str_t aws_type = gw_bedrock_error_type(headers, n_headers);
    gw_buf_t msg;
    gw_buf_init(&msg, GW_BUF_UNLIMITED);
    if (!gw_bedrock_error_message(body, &msg)) {
        size_t n = body.len;
        while (n && (body.base[n - 1] == '\n' || body.base[n - 1] == '\r' || body.base[n - 1] == ' '))
            n--;
        if (n)
            gw_buf_append(&msg, body.base, GW_MIN(n, (size_t)4096));
        else
            gw_buf_appendf(&msg, "Bedrock returned status %d with an empty body", status);
    }
    append_anthropic_error(out, anthropic_type_for(aws_type, status), msg.data ? msg.data : "", msg.len);
    gw_buf_free(&msg);
    return GW_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Stream unwrapping.
 */

/* The event's "type" when it is a plain token that can go on an SSE "event:" line. */
static gw_str_t event_name(gw_str_t event)
{
    gw_str_t raw;
    if (gw_json_object_get(event, GW_STR("type"), &raw) != GW_OK || gw_json_type(raw) != GW_JSON_STRING ||
        raw.len < 3 || raw.len - 2 > MAX_EVENT_TYPE)
        return GW_STR_NULL;
    for (size_t i = 1; i + 1 < raw.len; i++) {
        char c = raw.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return GW_STR_NULL;
    }
    return gw_str(raw.base + 1, raw.len - 2);
}

/* Writes one Anthropic event as SSE. JSON never holds a raw line break inside a string, but it
 * may between tokens: such a document is split over several data: lines, which SSE joins back
 * with '\n', so the client reads exactly the bytes Bedrock sent. */
static void write_event(gw_buf_t *out, gw_str_t name, gw_str_t data)
{
    if (name.len) {
        gw_buf_append_lit(out, "event: ");
        gw_buf_append_str(out, name);
        gw_buf_append_byte(out, '\n');
    }
    const char *p = data.base, *end = data.base + data.len;
    for (;;) {
        const char *nl = p;
        while (nl < end && *nl != '\n' && *nl != '\r')
            nl++;
        gw_buf_append_lit(out, "data: ");
        gw_buf_append(out, p, (size_t)(nl - p));
        gw_buf_append_byte(out, '\n');
        if (nl >= end)
            break;
        p = nl + (*nl == '\r' && nl + 1 < end && nl[1] == '\n' ? 2 : 1);
    }
    gw_buf_append_byte(out, '\n');
}

static int on_frame(void *ud, const gw_es_message_t *m)
{
    awsa_tr_t *a = ud;
    gw_str_t type;
    gw_buf_reset(&a->tmp);
    if (gw_bedrock_frame_error(m, &type, &a->tmp)) {
        /* throttlingException, modelStreamErrorException, ... : the message says which */
        gw_buf_t msg;
        gw_buf_init(&msg, GW_BUF_UNLIMITED);
        gw_buf_append_str(&msg, type);
        gw_buf_append_lit(&msg, ": ");
        gw_buf_append_str(&msg, gw_buf_str(&a->tmp));
        stream_error(a, anthropic_type_for(type, 0), msg.data, msg.len);
        gw_buf_free(&msg);
        return GW_DONE;
    }
    gw_str_t mt = gw_es_header_string(m, ":message-type");
    if (mt.len && !gw_str_eq_lit(mt, "event"))
        return GW_OK;
    gw_str_t bytes;
    if (gw_json_type(m->payload) != GW_JSON_OBJECT ||
        gw_json_object_get(m->payload, GW_STR("bytes"), &bytes) != GW_OK)
        return GW_OK; /* not a chunk (no other event type is defined for this API) */
    gw_buf_reset(&a->b64);
    gw_buf_reset(&a->event);
    if (gw_json_type(bytes) != GW_JSON_STRING || gw_json_string_unescape(bytes, &a->b64) != GW_OK ||
        gw_base64_decode(GW_BASE64_STD, a->b64.data, a->b64.len, &a->event) != GW_OK) {
        stream_error_lit(a, "Bedrock sent a stream chunk that is not base64");
        return GW_DONE;
    }
    gw_str_t ev = gw_buf_str(&a->event);
    if (gw_json_type(ev) != GW_JSON_OBJECT) {
        stream_error_lit(a, "Bedrock sent a stream chunk that is not a JSON event");
        return GW_DONE;
    }
    gw_anthropic_event_t kind = gw_anthropic_stream_observe(&a->obs, GW_STR(""), ev, &a->base.usage,
                                                            &a->base.response_model);
    write_event(a->out, event_name(ev), ev);
    if (kind == GW_ANTHROPIC_EV_ERROR) {
        /* Claude's own in-stream error (overloaded_error...): already in the client's format. */
        a->base.stream_failed = true;
        a->finished = true;
        return GW_DONE;
    }
    return GW_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Vtable.
 */

static bool starts_with_ci(gw_str_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && gw_str_case_eq(gw_str(s.base, n), gw_str(prefix, n));
}

static int tr_response_head(gw_translator_t *t, int status, gw_str_t content_type, gw_str_t content_encoding)
{
    awsa_tr_t *a = (awsa_tr_t *)t;
    (void)status;
    gw_encoding_t enc = gw_encoding_parse(content_encoding);
    /* Bedrock says application/vnd.amazon.eventstream; trust the request when it says nothing. */
    a->unwrap = starts_with_ci(content_type, "application/vnd.amazon.eventstream") ||
                (a->stream_requested && content_type.len == 0);
    if (enc == GW_ENCODING_UNSUPPORTED)
        a->encoding_failed = true;
    else if (enc != GW_ENCODING_IDENTITY)
        a->decoder = gw_decoder_new(enc, a->unwrap ? GW_BUF_UNLIMITED : MAX_RESPONSE_BODY);
    t->passthrough_response = !a->unwrap;
    t->stream_response = a->unwrap;
    if (a->unwrap)
        snprintf(t->client_content_type, sizeof(t->client_content_type), "text/event-stream");
    return GW_OK;
}

static int tr_response_body(gw_translator_t *t, const char *p, size_t n, bool end, gw_buf_t *out)
{
    awsa_tr_t *a = (awsa_tr_t *)t;
    a->out = out;
    if (n && a->decoder && !a->encoding_failed) {
        gw_buf_reset(&a->decoded);
        if (gw_decoder_feed(a->decoder, p, n, &a->decoded) != GW_OK)
            a->encoding_failed = true;
        p = a->decoded.data;
        n = a->decoded.len;
    }
    if (!a->unwrap) {
        /* passthrough: the client already has these bytes; only usage is read, at the end */
        if (!a->encoding_failed && n && !a->body_too_big && gw_buf_append(&a->body, p, n) != GW_OK)
            a->body_too_big = true;
        if (end && !a->encoding_failed && !a->body_too_big && a->body.len) {
            gw_token_usage_t u;
            gw_buf_reset(&t->response_model);
            if (gw_anthropic_usage_from_body(gw_buf_str(&a->body), &u, &t->response_model) == GW_OK)
                t->usage = u;
        }
        return GW_OK;
    }
    if (a->encoding_failed) {
        stream_error_lit(a, "Bedrock answered with an unsupported or corrupt content-encoding");
        return GW_OK;
    }
    if (!a->finished && n) {
        int rc = gw_eventstream_feed(&a->es, p, n, on_frame, a);
        if (rc != GW_OK && !a->finished) {
            char msg[192];
            snprintf(msg, sizeof(msg), "malformed event stream from Bedrock: %s",
                     a->es.error ? a->es.error : "decoding failed");
            stream_error_lit(a, msg);
        }
    }
    if (end && !a->finished) {
        if (gw_eventstream_has_partial(&a->es) || !a->obs.saw_message_stop)
            stream_error_lit(a, "the Bedrock event stream ended before message_stop");
        a->finished = true;
    }
    return GW_OK;
}

static void tr_destroy(gw_translator_t *t)
{
    awsa_tr_t *a = (awsa_tr_t *)t;
    gw_decoder_free(a->decoder);
    gw_eventstream_decoder_free(&a->es);
    gw_buf_free(&a->decoded);
    gw_buf_free(&a->body);
    gw_buf_free(&a->b64);
    gw_buf_free(&a->event);
    gw_buf_free(&a->tmp);
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

gw_translator_t *gw_anthropic_awsanthropic_new(gw_operation_t op)
{
    if (op != GW_OP_MESSAGES)
        return NULL;
    awsa_tr_t *a = gw_calloc(1, sizeof(*a));
    a->base.vt = &vtable;
    a->base.passthrough_response = true;
    gw_buf_init(&a->base.response_model, 1024);
    gw_buf_init(&a->decoded, GW_BUF_UNLIMITED);
    gw_buf_init(&a->body, MAX_RESPONSE_BODY);
    gw_buf_init(&a->b64, GW_EVENTSTREAM_MAX_MESSAGE);
    gw_buf_init(&a->event, GW_EVENTSTREAM_MAX_MESSAGE);
    gw_buf_init(&a->tmp, GW_BUF_UNLIMITED);
    gw_eventstream_decoder_init(&a->es);
    return &a->base;
}
