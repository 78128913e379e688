/* OpenAI -> OpenAI passthrough (see openai_openai.h). The response observer decompresses gzip
 * or brotli bodies into a private buffer for usage extraction only; streams are parsed event by
 * event as they pass, non-streaming bodies once at the end. */
#include "translate/openai_openai.h"

#include "codec/sse.h"
#include "core/alloc.h"
#include "translate/body_tap.h"
#include "core/json.h"
#include "translate/openai_usage.h"

#include <stdlib.h>

/* Non-streaming bodies up to this size are kept whole and parsed at the end. Beyond it (large
 * embeddings batches) only a head and a tail window are kept, so memory per request stays bounded
 * whatever the body size; usage and model are then read from the windows, where OpenAI-schema
 * servers put them. */
#define OBSERVE_WHOLE_MAX (1u << 20)
#define OBSERVE_WINDOW (64u << 10)
#define OBSERVE_MAX_DECODED (64u << 20)  /* decompression-bomb guard for the private decoder */

typedef struct {
    gw_translator_t base;
    gw_operation_t op;
    gw_body_tap_t tap;      /* decoded view of the body, for usage */
    gw_sse_parser_t sse;
    gw_buf_t body;          /* decoded non-streaming body (or its head window once too large) */
    gw_buf_t tail;          /* last bytes of a body too large to keep whole */
    bool windowed;          /* body holds only the head window */
    bool observe_failed;    /* corrupt encoding or oversized body: stop observing */
} openai_tr_t;

static const char *endpoint_suffix(gw_operation_t op)
{
    switch (op) {
    case GW_OP_CHAT: return "/chat/completions";
    case GW_OP_COMPLETION: return "/completions";
    case GW_OP_EMBEDDINGS: return "/embeddings";
    case GW_OP_IMAGE_GENERATION: return "/images/generations";
    default: return "/";
    }
}

/* Azure OpenAI: the deployment (the model, or its override) is in the path, the API version in
 * the query; the body goes as it is. */
static int azure_request(openai_tr_t *o, const gw_translate_request_t *in, gw_translate_output_t *out,
                         const char **err)
{
    gw_buf_t model;
    gw_buf_init(&model, 4096);
    if (in->model_override && *in->model_override)
        gw_buf_append(&model, in->model_override, strlen(in->model_override));
    else if (gw_json_string_unescape(in->model_raw, &model) != GW_OK) {
        gw_buf_free(&model);
        *err = "the model name cannot be read";
        return GW_EINVAL;
    }
    gw_buf_reset(&out->path);
    gw_buf_append_lit(&out->path, "/openai/deployments/");
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < model.len; i++) {
        unsigned char c = (unsigned char)model.data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            gw_buf_append_byte(&out->path, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            gw_buf_append(&out->path, e, 3);
        }
    }
    gw_buf_free(&model);
    gw_buf_append(&out->path, endpoint_suffix(o->op), strlen(endpoint_suffix(o->op)));
    const char *version = in->backend->schema_version;
    if (version && *version) {
        gw_buf_append_lit(&out->path, "?api-version=");
        gw_buf_append(&out->path, version, strlen(version));
    }
    out->body_changed = false;
    return GW_OK;
}

static int tr_request(gw_translator_t *t, const gw_translate_request_t *in, gw_translate_output_t *out,
                      const char **err)
{
    openai_tr_t *o = (openai_tr_t *)t;
    if (in->backend->schema == GW_SCHEMA_AZURE_OPENAI)
        return azure_request(o, in, out, err);
    const char *version = in->backend->schema_version ? in->backend->schema_version : "v1";
    gw_buf_reset(&out->path);
    if (*version) {
        if (*version != '/')
            gw_buf_append_byte(&out->path, '/');
        gw_buf_append(&out->path, version, strlen(version));
        if (out->path.len > 1 && out->path.data[out->path.len - 1] == '/')
            out->path.len--;
    }
    gw_buf_append(&out->path, endpoint_suffix(o->op), strlen(endpoint_suffix(o->op)));
    out->body_changed = false;
    if (in->model_override && *in->model_override) {
        gw_buf_t quoted;
        gw_buf_init(&quoted, GW_BUF_UNLIMITED);
        gw_json_append_string(&quoted, in->model_override, strlen(in->model_override));
        gw_buf_reset(&out->body);
        int rc = gw_json_splice(in->body, in->model_raw, gw_buf_str(&quoted), &out->body);
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
    openai_tr_t *o = (openai_tr_t *)t;
    (void)status;
    gw_body_tap_start(&o->tap, content_encoding, OBSERVE_MAX_DECODED);
    if (o->tap.failed)
        o->observe_failed = true;
    t->stream_response = gw_content_type_is_event_stream(content_type);
    return GW_OK;
}

/* True when the chunk has a non-null "usage" member (a cheap byte scan: a false positive only
 * costs a parse, and a chunk is never skipped when it could carry usage). */
static bool chunk_may_have_usage(gw_str_t d)
{
    const char *p = d.base, *end = d.base + d.len;
    while ((p = memmem(p, (size_t)(end - p), "\"usage\"", 7)) != NULL) {
        const char *q = p + 7;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n' || *q == ':'))
            q++;
        if (q < end && *q != 'n')
            return true;
        p += 7;
    }
    return false;
}

static int on_sse_event(void *ud, const gw_sse_event_t *ev)
{
    openai_tr_t *o = ud;
    if (ev->data.len == 0 || gw_str_eq_lit(ev->data, "[DONE]"))
        return GW_OK;
    /* Every chunk names the model and only the last carries usage: parse the first chunk (for the
     * model) and chunks that may carry usage, and skip the JSON work for the rest. */
    if (o->base.response_model.len && !chunk_may_have_usage(ev->data))
        return GW_OK;
    gw_buf_t model;
    gw_buf_init(&model, 1024);
    gw_token_usage_t u = o->base.usage;
    if (gw_openai_usage_from_chunk(ev->data, &u, &model) == GW_OK) {
        o->base.usage = u;
        if (model.len && o->base.response_model.len == 0)
            gw_buf_append_str(&o->base.response_model, gw_buf_str(&model));
    }
    gw_buf_free(&model);
    return GW_OK;
}

static void observe(openai_tr_t *o, const char *p, size_t n)
{
    if (o->base.stream_response) {
        if (gw_sse_feed(&o->sse, p, n, on_sse_event, o) != GW_OK)
            o->observe_failed = true;
        return;
    }
    if (!o->windowed && o->body.len + n <= OBSERVE_WHOLE_MAX) {
        gw_buf_append(&o->body, p, n);
        return;
    }
    if (!o->windowed) {
        /* switch to windows: keep the head, start the tail with what is beyond it */
        o->windowed = true;
        if (o->body.len > OBSERVE_WINDOW) {
            gw_buf_append(&o->tail, o->body.data + OBSERVE_WINDOW, o->body.len - OBSERVE_WINDOW);
            o->body.len = OBSERVE_WINDOW;
        }
    }
    if (n >= OBSERVE_WINDOW) {
        gw_buf_reset(&o->tail);
        gw_buf_append(&o->tail, p + n - OBSERVE_WINDOW, OBSERVE_WINDOW);
        return;
    }
    if (o->tail.len + n > 2 * OBSERVE_WINDOW)
        gw_buf_consume(&o->tail, o->tail.len + n - OBSERVE_WINDOW);
    gw_buf_append(&o->tail, p, n);
}

/* The JSON value starting at p (an object or a string), by bracket matching that respects
 * strings; 0 when it does not end inside the window. */
static size_t value_extent(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (*p == '"') {
        for (size_t i = 1; i < n; i++) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                return i + 1;
        }
        return 0;
    }
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
        }
    }
    return 0;
}

/* Finds the last `"key"` followed by ':' in the window and appends `"key":<value>` to doc. */
static bool copy_member(gw_str_t win, const char *key, gw_buf_t *doc)
{
    size_t klen = strlen(key);
    for (size_t i = win.len; i-- > 0;) {
        if (win.base[i] != '"' || i + klen + 2 > win.len || memcmp(win.base + i + 1, key, klen) != 0 ||
            win.base[i + klen + 1] != '"')
            continue;
        size_t j = i + klen + 2;
        while (j < win.len && (win.base[j] == ' ' || win.base[j] == '\n' || win.base[j] == '\r' || win.base[j] == '\t'))
            j++;
        if (j >= win.len || win.base[j] != ':')
            continue;
        j++;
        while (j < win.len && (win.base[j] == ' ' || win.base[j] == '\n' || win.base[j] == '\r' || win.base[j] == '\t'))
            j++;
        size_t ext = value_extent(win.base + j, win.len - j);
        if (ext == 0)
            continue;
        if (doc->len > 1)
            gw_buf_append_byte(doc, ',');
        gw_buf_appendf(doc, "\"%s\":", key);
        gw_buf_append(doc, win.base + j, ext);
        return true;
    }
    return false;
}

static void usage_from_windows(openai_tr_t *o)
{
    gw_buf_t doc;
    gw_buf_init(&doc, 4 * OBSERVE_WINDOW);
    gw_buf_append_byte(&doc, '{');
    bool have_usage = copy_member(gw_buf_str(&o->tail), "usage", &doc);
    if (!copy_member(gw_buf_str(&o->tail), "model", &doc))
        copy_member(gw_buf_str(&o->body), "model", &doc);
    gw_buf_append_byte(&doc, '}');
    if (have_usage && gw_json_validate(doc.data, doc.len, GW_JSON_DEFAULT_MAX_DEPTH, NULL) == GW_OK) {
        gw_token_usage_t u = {0};
        gw_buf_reset(&o->base.response_model);
        if (gw_openai_usage_from_body(gw_buf_str(&doc), &u, &o->base.response_model) == GW_OK)
            o->base.usage = u;
    }
    gw_buf_free(&doc);
}

static int tr_response_body(gw_translator_t *t, const char *p, size_t n, bool end, gw_buf_t *out)
{
    openai_tr_t *o = (openai_tr_t *)t;
    (void)out; /* passthrough: the client gets the upstream bytes */
    if (!o->observe_failed && n) {
        gw_str_t decoded;
        if (gw_body_tap_feed(&o->tap, p, n, &decoded))
            observe(o, decoded.base, decoded.len);
        else
            o->observe_failed = true;
    }
    if (end && !o->observe_failed && !t->stream_response && o->windowed) {
        usage_from_windows(o);
    } else if (end && !o->observe_failed && !t->stream_response && o->body.len) {
        gw_token_usage_t u = {0};
        gw_buf_reset(&t->response_model);
        if (gw_openai_usage_from_body(gw_buf_str(&o->body), &u, &t->response_model) == GW_OK)
            t->usage = u;
    }
    return GW_OK;
}

static int tr_response_error(gw_translator_t *t, int status, const gw_http_header_t *headers, size_t n_headers,
                             gw_str_t body, gw_buf_t *out)
{
    (void)t;
    (void)headers;
    (void)n_headers;
    /* A JSON error from an OpenAI-compatible server is already in the client's format. */
    if (body.len && gw_json_validate(body.base, body.len, GW_JSON_DEFAULT_MAX_DEPTH, NULL) == GW_OK &&
        gw_json_type(body) == GW_JSON_OBJECT)
        return GW_OK;
    gw_buf_append_lit(out, "{\"error\":{\"message\":");
    /* trim the text so an HTML error page does not become a huge message */
    size_t n = body.len;
    while (n && (body.base[n - 1] == '\n' || body.base[n - 1] == '\r' || body.base[n - 1] == ' '))
        n--;
    if (n == 0)
        gw_buf_appendf(out, "\"upstream returned status %d with an empty body\"", status);
    else
        gw_json_append_string(out, body.base, GW_MIN(n, (size_t)4096));
    gw_buf_appendf(out, ",\"type\":\"OpenAIBackendError\",\"param\":null,\"code\":\"%d\"}}", status);
    return GW_OK;
}

static void tr_destroy(gw_translator_t *t)
{
    openai_tr_t *o = (openai_tr_t *)t;
    gw_body_tap_free(&o->tap);
    gw_sse_parser_free(&o->sse);
    gw_buf_free(&o->body);
    gw_buf_free(&o->tail);
    gw_buf_free(&t->response_model);
    free(o);
}

static const gw_translator_vtable_t vtable = {
    .request = tr_request,
    .response_head = tr_response_head,
    .response_body = tr_response_body,
    .response_error = tr_response_error,
    .destroy = tr_destroy,
};

gw_translator_t *gw_openai_openai_new(gw_operation_t op)
{
    openai_tr_t *o = gw_calloc(1, sizeof(*o));
    o->base.vt = &vtable;
    o->base.passthrough_response = true;
    o->op = op;
    gw_buf_init(&o->base.response_model, 1024);
    gw_sse_parser_init(&o->sse, GW_SSE_DEFAULT_MAX_EVENT);
    gw_buf_init(&o->body, OBSERVE_WHOLE_MAX);
    gw_buf_init(&o->tail, 2 * OBSERVE_WINDOW);
    gw_body_tap_init(&o->tap);
    return &o->base;
}
