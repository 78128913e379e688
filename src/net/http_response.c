/* Incremental HTTP/1.1 response parser (see http_response.h): http-parser does the framing; this
 * file keeps the head within its cap, collects headers split across reads, skips 1xx responses and
 * stops exactly at the end of the response so that trailing bytes are never taken for the next.
 * http-parser is paused at the end of each head: it then reports exactly how many bytes the head
 * took, and the head callback runs outside http-parser. */
#include "net/http_response.h"

enum { ST_HEAD = 0, ST_BODY, ST_DONE, ST_ERROR };

#define DEFAULT_MAX_HEAD (64 * 1024)
/* Offsets into the head buffer are 32-bit; no sane head comes near this. */
#define MAX_HEAD_LIMIT (16u * 1024 * 1024)

static int fail(gw_http_resp_t *r, int err, const char *detail)
{
    if (r->err == 0) {
        r->err = err;
        r->detail = detail;
    }
    return -1;
}

static int on_message_begin(http_parser *hp)
{
    gw_http_resp_t *r = hp->data;
    gw_buf_reset(&r->head);
    r->n_headers = 0;
    r->last_was_field = false;
    r->interim = false;
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    gw_http_resp_t *r = hp->data;
    if (r->state != ST_HEAD) /* chunked trailers: not passed on */
        return 0;
    if (!r->last_was_field) {
        if (r->n_headers == GW_HTTP_MAX_HEADERS)
            return fail(r, GW_TOOBIG, "too many response headers");
        gw_http_resp_span_t *s = &r->spans[r->n_headers++];
        s->name_off = (uint32_t)r->head.len;
        s->name_len = 0;
        s->value_off = (uint32_t)r->head.len;
        s->value_len = 0;
        r->last_was_field = true;
    }
    if (gw_buf_append(&r->head, at, len) != GW_OK)
        return fail(r, GW_TOOBIG, "response head too large");
    r->spans[r->n_headers - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    gw_http_resp_t *r = hp->data;
    if (r->state != ST_HEAD || r->n_headers == 0)
        return 0;
    gw_http_resp_span_t *s = &r->spans[r->n_headers - 1];
    if (r->last_was_field) {
        s->value_off = (uint32_t)r->head.len;
        s->value_len = 0;
        r->last_was_field = false;
    }
    if (gw_buf_append(&r->head, at, len) != GW_OK)
        return fail(r, GW_TOOBIG, "response head too large");
    s->value_len += (uint32_t)len;
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    gw_http_resp_t *r = hp->data;
    unsigned status = hp->status_code;
    if (status < 100)
        return fail(r, GW_EINVAL, "invalid status code");
    if (status == 101) /* would switch protocols, which we never ask for */
        return fail(r, GW_EINVAL, "unexpected 101 response");
    r->interim = status < 200;
    r->head_ready = true;
    http_parser_pause(hp, 1);
    return (r->no_body && !r->interim) ? 1 : 0; /* 1: http-parser skips the body */
}

/* The final head is complete: hand it over. */
static int deliver_head(gw_http_resp_t *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        const gw_http_resp_span_t *s = &r->spans[i];
        const char *v = r->head.data + s->value_off;
        size_t vlen = s->value_len;
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        r->headers[i].name = gw_str(r->head.data + s->name_off, s->name_len);
        r->headers[i].value = gw_str(vlen ? v : "", vlen);
    }
    r->state = ST_BODY;
    if (r->cbs && r->cbs->on_head && r->cbs->on_head(r->ud, (int)r->hp.status_code, r->headers, r->n_headers) != GW_OK)
        return fail(r, GW_ERROR, "stopped by the head callback");
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    gw_http_resp_t *r = hp->data;
    if (len == 0 || r->state != ST_BODY)
        return 0;
    if (r->cbs && r->cbs->on_body && r->cbs->on_body(r->ud, at, len) != GW_OK)
        return fail(r, GW_ERROR, "stopped by the body callback");
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    gw_http_resp_t *r = hp->data;
    if (r->interim) {
        r->interim = false;
        return 0;
    }
    r->state = ST_DONE;
    r->keep_alive = http_should_keep_alive(hp) != 0;
    /* Stop here: whatever follows is not part of this response. */
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void gw_http_resp_init(gw_http_resp_t *r, size_t max_head)
{
    memset(r, 0, sizeof(*r));
    if (max_head == 0)
        max_head = DEFAULT_MAX_HEAD;
    r->max_head = GW_MIN(max_head, (size_t)MAX_HEAD_LIMIT);
    gw_buf_init(&r->head, r->max_head);
    r->state = ST_ERROR;
    r->err = GW_EINVAL;
    r->detail = "parser not started";
}

void gw_http_resp_start(gw_http_resp_t *r, const gw_http_resp_cbs_t *cbs, void *ud)
{
    http_parser_init(&r->hp, HTTP_RESPONSE);
    r->hp.data = r;
    r->cbs = cbs;
    r->ud = ud;
    gw_buf_reset(&r->head);
    r->n_headers = 0;
    r->head_bytes = 0;
    r->detail = NULL;
    r->state = ST_HEAD;
    r->err = 0;
    r->last_was_field = false;
    r->interim = false;
    r->head_ready = false;
    r->started = false;
    r->keep_alive = false;
    r->no_body = false;
}

void gw_http_resp_free(gw_http_resp_t *r)
{
    gw_buf_free(&r->head);
}

static int set_error(gw_http_resp_t *r)
{
    r->state = ST_ERROR;
    if (r->err == 0) {
        enum http_errno e = HTTP_PARSER_ERRNO(&r->hp);
        if (e == HPE_HEADER_OVERFLOW) {
            r->err = GW_TOOBIG;
            r->detail = "response head too large";
        } else {
            r->err = GW_EINVAL;
            r->detail = e != HPE_OK ? http_errno_description(e) : "malformed response";
        }
    }
    return r->err;
}

int gw_http_resp_feed(gw_http_resp_t *r, const char *p, size_t n, size_t *used)
{
    if (used)
        *used = 0;
    if (r->state == ST_DONE)
        return GW_DONE;
    if (r->state == ST_ERROR)
        return r->err;
    if (n == 0)
        return GW_OK;
    r->started = true;
    size_t off = 0;
    while (off < n) {
        size_t k = http_parser_execute(&r->hp, &settings, p + off, n - off);
        off += k;
        if (r->state == ST_DONE) {
            if (used)
                *used = off;
            return GW_DONE;
        }
        if (r->err != 0)
            return set_error(r);
        if (r->head_ready) {
            /* Paused on the head's last byte (its final LF), which the next execute consumes. */
            r->head_ready = false;
            r->head_bytes += k;
            if (r->head_bytes + 1 > r->max_head) {
                fail(r, GW_TOOBIG, "response head too large");
                return set_error(r);
            }
            http_parser_pause(&r->hp, 0);
            if (!r->interim && deliver_head(r) != 0)
                return set_error(r);
            continue;
        }
        if (HTTP_PARSER_ERRNO(&r->hp) != HPE_OK || off != n)
            return set_error(r);
        if (r->state == ST_HEAD) {
            r->head_bytes += k;
            if (r->head_bytes > r->max_head) {
                fail(r, GW_TOOBIG, "response head too large");
                return set_error(r);
            }
        }
    }
    if (used)
        *used = n;
    return GW_OK;
}

int gw_http_resp_eof(gw_http_resp_t *r)
{
    if (r->state == ST_DONE)
        return GW_DONE;
    if (r->state == ST_ERROR)
        return r->err;
    if (!r->started) {
        fail(r, GW_EINVAL, "connection closed before the response");
        return set_error(r);
    }
    /* A zero-length execute is http-parser's end of input: it completes a body read until close. */
    http_parser_execute(&r->hp, &settings, NULL, 0);
    if (r->state == ST_DONE)
        return GW_DONE;
    fail(r, GW_EINVAL, "response truncated by connection close");
    return set_error(r);
}
