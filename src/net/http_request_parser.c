/* Pure HTTP/1.1 request parsing over http-parser (see http_request_parser.h). The head of each
 * message is accumulated in one capped buffer; once complete, the request takes ownership of
 * those bytes, so its slices stay valid whatever the parser does next. */
#include "net/http_request_parser.h"

#include "core/alloc.h"

#include <stdlib.h>
#include <time.h>

static http_parser_settings settings;
static bool settings_ready;

static int fail(gw_http_request_parser_t *p, int status, const char *reason)
{
    if (!p->error_status) {
        p->error_status = status;
        p->error_reason = reason;
    }
    return -1; /* stops http_parser_execute */
}

static int on_message_begin(http_parser *hp)
{
    gw_http_request_parser_t *p = hp->data;
    gw_http_req_t *req = gw_calloc(1, sizeof(*req));
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    req->start_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    clock_gettime(CLOCK_REALTIME, &ts);
    req->start_wall_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    gw_buf_init(&req->body, p->max_body_bytes);
    p->current = req;
    gw_buf_free(&p->hbuf);
    gw_buf_init(&p->hbuf, p->max_header_bytes);
    p->n_spans = 0;
    p->last_was_value = false;
    p->url_off = p->url_len = 0;
    p->head_complete = false;
    p->expect_continue = false;
    return 0;
}

static int head_append(gw_http_request_parser_t *p, const char *at, size_t len)
{
    if (gw_buf_append(&p->hbuf, at, len) != GW_OK)
        return fail(p, 431, "request headers too large");
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    gw_http_request_parser_t *p = hp->data;
    if (p->url_len == 0)
        p->url_off = p->hbuf.len;
    p->url_len += len;
    return head_append(p, at, len);
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    gw_http_request_parser_t *p = hp->data;
    if (p->n_spans == 0 || p->last_was_value) {
        if (p->n_spans == GW_HTTP_MAX_HEADERS)
            return fail(p, 431, "too many request headers");
        gw_http_hdr_span_t *s = &p->spans[p->n_spans++];
        s->name_off = p->hbuf.len;
        s->name_len = s->value_off = s->value_len = 0;
        p->last_was_value = false;
    }
    p->spans[p->n_spans - 1].name_len += len;
    return head_append(p, at, len);
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    gw_http_request_parser_t *p = hp->data;
    if (p->n_spans == 0)
        return fail(p, 400, "header value without a name");
    gw_http_hdr_span_t *s = &p->spans[p->n_spans - 1];
    if (!p->last_was_value) {
        s->value_off = p->hbuf.len;
        p->last_was_value = true;
    }
    s->value_len += len;
    return head_append(p, at, len);
}

static int on_headers_complete(http_parser *hp)
{
    gw_http_request_parser_t *p = hp->data;
    gw_http_req_t *req = p->current;
    size_t head_len = 0;
    req->head_storage = gw_buf_detach(&p->hbuf, &head_len);
    const char *base = req->head_storage ? req->head_storage : "";
    req->target = gw_str(base + p->url_off, p->url_len);
    const char *q = p->url_len ? memchr(req->target.base, '?', req->target.len) : NULL;
    req->path = gw_str(req->target.base, q ? (size_t)(q - req->target.base) : req->target.len);
    req->method = gw_str_c(http_method_str((enum http_method)hp->method));
    req->http_major = hp->http_major;
    req->http_minor = hp->http_minor;
    req->keep_alive = http_should_keep_alive(hp) != 0;
    req->headers = gw_malloc(sizeof(gw_http_header_t) * (p->n_spans ? p->n_spans : 1));
    req->n_headers = p->n_spans;
    for (size_t i = 0; i < p->n_spans; i++) {
        req->headers[i].name = gw_str(base + p->spans[i].name_off, p->spans[i].name_len);
        req->headers[i].value = gw_str(base + p->spans[i].value_off, p->spans[i].value_len);
    }
    p->head_complete = true;
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > p->max_body_bytes)
        return fail(p, 413, "request body too large");
    gw_str_t expect = gw_http_header_find(req->headers, req->n_headers, GW_STR("expect"));
    if (expect.len) {
        if (!gw_str_case_eq_lit(expect, "100-continue"))
            return fail(p, 417, "unsupported Expect header value");
        p->expect_continue = hp->http_minor >= 1;
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    gw_http_request_parser_t *p = hp->data;
    if (gw_buf_append(&p->current->body, at, len) != GW_OK)
        return fail(p, 413, "request body too large");
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    gw_http_request_parser_t *p = hp->data;
    p->done = p->current;
    p->current = NULL;
    p->head_complete = false;
    p->expect_continue = false;
    http_parser_pause(hp, 1); /* one message per feed: the caller answers it first */
    return 0;
}

void gw_http_request_parser_init(gw_http_request_parser_t *p, size_t max_header_bytes, size_t max_body_bytes)
{
    if (!settings_ready) {
        /* idempotent: every thread computes the same table */
        http_parser_settings s;
        http_parser_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_header_field = on_header_field;
        s.on_header_value = on_header_value;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        settings = s;
        settings_ready = true;
    }
    memset(p, 0, sizeof(*p));
    p->max_header_bytes = max_header_bytes;
    p->max_body_bytes = max_body_bytes;
    gw_buf_init(&p->hbuf, max_header_bytes);
    http_parser_init(&p->parser, HTTP_REQUEST);
    p->parser.data = p;
}

void gw_http_req_free(gw_http_req_t *req)
{
    if (req == NULL)
        return;
    gw_buf_free(&req->body);
    free(req->headers);
    free(req->head_storage);
    free(req);
}

void gw_http_request_parser_free(gw_http_request_parser_t *p)
{
    gw_http_req_free(p->current);
    gw_http_req_free(p->done);
    p->current = p->done = NULL;
    gw_buf_free(&p->hbuf);
}

int gw_http_request_parser_feed(gw_http_request_parser_t *p, const char *data, size_t n, size_t *consumed)
{
    *consumed = 0;
    if (p->error_status)
        return GW_ERROR;
    if (p->done)
        return GW_OK;
    if (HTTP_PARSER_ERRNO(&p->parser) == HPE_PAUSED)
        http_parser_pause(&p->parser, 0);
    size_t used = http_parser_execute(&p->parser, &settings, data, n);
    enum http_errno err = HTTP_PARSER_ERRNO(&p->parser);
    *consumed = used;
    if (err == HPE_PAUSED)
        return p->done ? GW_OK : GW_AGAIN;
    if (err != HPE_OK) {
        if (!p->error_status) {
            if (err == HPE_HEADER_OVERFLOW)
                fail(p, 431, "request headers too large");
            else
                fail(p, 400, http_errno_description(err));
        }
        return GW_ERROR;
    }
    if (used < n) {
        /* http-parser stops early only on errors or upgrades; treat both as refused */
        fail(p, 400, "unsupported protocol upgrade");
        return GW_ERROR;
    }
    return p->done ? GW_OK : GW_AGAIN;
}

gw_http_req_t *gw_http_request_parser_take(gw_http_request_parser_t *p)
{
    gw_http_req_t *r = p->done;
    p->done = NULL;
    return r;
}

bool gw_http_request_parser_in_message(const gw_http_request_parser_t *p)
{
    return p->current != NULL;
}
