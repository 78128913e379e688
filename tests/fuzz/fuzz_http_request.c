/* libFuzzer harness for the HTTP/1.1 request parser: arbitrary bytes, fed whole and then split at a
 * size taken from the input, must never crash, leak or exceed the limits, and must come out the
 * same both ways. Then a differential check against http-parser 2.9.4 driven the way aigw drove it
 * before (same limits): requests both accept must agree on method, target, version, keep-alive,
 * headers and body; where only one accepts, the difference must be one aigw documents (checked by
 * the plain restatement of its rules in http_ref.h, or by the named leniencies below). */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/buf.h"
#include "http_ref.h"
#include "net/http_request_parser.h"

#define MAX_HEAD 4096
#define MAX_BODY 8192
#define MAX_MSGS 8

/* ---------------------------------------------------------------------------------------------
 * One parse: the messages as canonical text, and how parsing ended. */

typedef struct {
    gw_buf_t msg[MAX_MSGS];
    bool ka[MAX_MSGS];       /* keep-alive, compared apart */
    bool ka_loose[MAX_MSGS]; /* HTTP/1.0 with both "close" and "keep-alive": aigw lets close win */
    size_t end[MAX_MSGS];    /* input offset after each message */
    size_t n;
    int status; /* 0: all bytes consumed without error */
} outcome_t;

static void outcome_init(outcome_t *o)
{
    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < MAX_MSGS; i++)
        gw_buf_init(&o->msg[i], GW_BUF_UNLIMITED);
}

static void outcome_free(outcome_t *o)
{
    for (size_t i = 0; i < MAX_MSGS; i++)
        gw_buf_free(&o->msg[i]);
}

/* A length-prefixed record (values may hold NUL bytes). */
static void put(gw_buf_t *b, const char *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    gw_buf_append(b, &len, sizeof(len));
    gw_buf_append(b, p, n);
}

/* The record at b[*i], advancing *i. */
static const char *get(const gw_buf_t *b, size_t *i, size_t *n)
{
    uint32_t len;
    memcpy(&len, b->data + *i, sizeof(len));
    const char *p = b->data + *i + sizeof(len);
    *i += sizeof(len) + len;
    *n = len;
    return p;
}

/* Header values compare without surrounding whitespace (http-parser kept the trailing part). */
static void put_header(gw_buf_t *b, const char *name, size_t nn, const char *v, size_t vn)
{
    const uint8_t *tv = (const uint8_t *)v;
    ref_trim(&tv, &vn);
    gw_buf_append_lit(b, "H");
    put(b, name, nn);
    put(b, (const char *)tv, vn);
}

static void put_line(gw_buf_t *b, const char *method, const char *target, size_t tn, int major, int minor)
{
    gw_buf_appendf(b, "M %s V %d.%d T ", method, major, minor);
    put(b, target, tn);
}

/* ---------------------------------------------------------------------------------------------
 * aigw */

static void run_new(const uint8_t *data, size_t size, size_t step, outcome_t *o)
{
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, MAX_HEAD, MAX_BODY);
    size_t off = 0;
    while (off < size && o->n < MAX_MSGS) {
        size_t n = size - off < step ? size - off : step, used = 0;
        int rc = gw_http_request_parser_feed(&p, (const char *)data + off, n, &used);
        if (used > n)
            abort();
        off += used;
        if (rc == GW_ERROR) {
            o->status = p.error_status;
            if (o->status < 400 || o->status > 505 || p.error_reason == NULL)
                abort();
            break;
        }
        if (rc == GW_OK) {
            gw_http_req_t *r = gw_http_request_parser_take(&p);
            if (r == NULL || r->body.len > MAX_BODY || r->n_headers > GW_HTTP_MAX_HEADERS ||
                r->path.len > r->target.len)
                abort();
            ref_fields_t rf;
            memset(&rf, 0, sizeof(rf));
            o->ka[o->n] = r->keep_alive;
            o->end[o->n] = off;
            gw_buf_t *b = &o->msg[o->n++];
            char m[16];
            snprintf(m, sizeof(m), "%.*s", (int)r->method.len, r->method.base);
            put_line(b, m, r->target.base, r->target.len, r->http_major, r->http_minor);
            for (size_t i = 0; i < r->n_headers; i++) {
                put_header(b, r->headers[i].name.base, r->headers[i].name.len, r->headers[i].value.base,
                           r->headers[i].value.len);
                ref_field(&rf, (const uint8_t *)r->headers[i].name.base, r->headers[i].name.len,
                          (const uint8_t *)r->headers[i].value.base, r->headers[i].value.len);
            }
            o->ka_loose[o->n - 1] = r->http_minor == 0 && rf.close && rf.keep_alive;
            gw_buf_append_lit(b, "B");
            gw_buf_append(b, r->body.data, r->body.len);
            gw_http_req_free(r);
        } else if (used < n) {
            abort(); /* GW_AGAIN consumes everything */
        }
    }
    gw_http_request_parser_free(&p);
}

/* ---------------------------------------------------------------------------------------------
 * http-parser 2.9.4, with the callbacks aigw used before (its limits and refusals), paused at the
 * start, the end of the head and the end of each message to learn where they lie. */

enum { STOP_NONE, STOP_BEGIN, STOP_HEAD, STOP_END };

typedef struct {
    http_parser hp;
    outcome_t *o;
    gw_buf_t hdr; /* name '\0' value of the headers so far */
    gw_buf_t name, value, url, body;
    gw_buf_t line; /* the message as taken at the end of its head */
    size_t hbytes, n_fields;
    bool last_was_value;
    int status;
    int stop;
    bool expect_checked;
} old_t;

static int old_fail(old_t *o, int status)
{
    if (!o->status)
        o->status = status;
    return -1;
}

static void old_flush_field(old_t *o)
{
    if (o->name.len || o->value.len) {
        put(&o->hdr, o->name.data ? o->name.data : "", o->name.len);
        put(&o->hdr, o->value.data ? o->value.data : "", o->value.len);
    }
    gw_buf_reset(&o->name);
    gw_buf_reset(&o->value);
}

static int old_begin(http_parser *hp)
{
    old_t *o = hp->data;
    gw_buf_reset(&o->hdr);
    gw_buf_reset(&o->name);
    gw_buf_reset(&o->value);
    gw_buf_reset(&o->url);
    gw_buf_reset(&o->body);
    o->hbytes = o->n_fields = 0;
    o->last_was_value = false;
    o->stop = STOP_BEGIN;
    http_parser_pause(hp, 1);
    return 0;
}

static int old_count(old_t *o, size_t n)
{
    o->hbytes += n;
    return o->hbytes > MAX_HEAD ? old_fail(o, 431) : 0;
}

static int old_url(http_parser *hp, const char *at, size_t n)
{
    old_t *o = hp->data;
    gw_buf_append(&o->url, at, n);
    return old_count(o, n);
}

static int old_field(http_parser *hp, const char *at, size_t n)
{
    old_t *o = hp->data;
    if (o->n_fields == 0 || o->last_was_value) {
        if (o->n_fields == GW_HTTP_MAX_HEADERS)
            return old_fail(o, 431);
        old_flush_field(o);
        o->n_fields++;
        o->last_was_value = false;
    }
    gw_buf_append(&o->name, at, n);
    return old_count(o, n);
}

static int old_value(http_parser *hp, const char *at, size_t n)
{
    old_t *o = hp->data;
    if (o->n_fields == 0)
        return old_fail(o, 400);
    o->last_was_value = true;
    gw_buf_append(&o->value, at, n);
    return old_count(o, n);
}

static int old_headers_complete(http_parser *hp)
{
    old_t *o = hp->data;
    old_flush_field(o);
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > MAX_BODY)
        return old_fail(o, 413);
    /* the first Expect, as it was: raw (trailing whitespace kept), ignored when empty */
    for (size_t i = 0; i < o->hdr.len;) {
        size_t nn, vn;
        const char *nm = get(&o->hdr, &i, &nn), *v = get(&o->hdr, &i, &vn);
        if (ref_ieq((const uint8_t *)nm, nn, "expect")) {
            if (vn && !ref_ieq((const uint8_t *)v, vn, "100-continue"))
                return old_fail(o, 417);
            break;
        }
    }
    /* The request takes the head here; trailers still count towards the same limits, their
     * bytes in a fresh buffer. */
    gw_buf_reset(&o->line);
    put_line(&o->line, http_method_str((enum http_method)hp->method), o->url.data ? o->url.data : "", o->url.len,
             hp->http_major, hp->http_minor);
    for (size_t i = 0; i < o->hdr.len;) {
        size_t nn, vn;
        const char *nm = get(&o->hdr, &i, &nn), *v = get(&o->hdr, &i, &vn);
        put_header(&o->line, nm, nn, v, vn);
    }
    o->hbytes = 0;
    o->stop = STOP_HEAD;
    http_parser_pause(hp, 1);
    return 0;
}

static int old_body(http_parser *hp, const char *at, size_t n)
{
    old_t *o = hp->data;
    if (o->body.len + n > MAX_BODY)
        return old_fail(o, 413);
    gw_buf_append(&o->body, at, n);
    return 0;
}

static int old_complete(http_parser *hp)
{
    old_t *o = hp->data;
    o->stop = STOP_END;
    http_parser_pause(hp, 1);
    return 0;
}

typedef struct {
    size_t start, head_end, end; /* offsets in the input */
} old_span_t;

static void run_old(const uint8_t *data, size_t size, outcome_t *out, old_span_t *spans)
{
    static http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_begin = old_begin;
    s.on_url = old_url;
    s.on_header_field = old_field;
    s.on_header_value = old_value;
    s.on_headers_complete = old_headers_complete;
    s.on_body = old_body;
    s.on_message_complete = old_complete;
    old_t o;
    memset(&o, 0, sizeof(o));
    o.o = out;
    gw_buf_init(&o.hdr, GW_BUF_UNLIMITED);
    gw_buf_init(&o.name, GW_BUF_UNLIMITED);
    gw_buf_init(&o.value, GW_BUF_UNLIMITED);
    gw_buf_init(&o.url, GW_BUF_UNLIMITED);
    gw_buf_init(&o.body, GW_BUF_UNLIMITED);
    gw_buf_init(&o.line, GW_BUF_UNLIMITED);
    http_parser_init(&o.hp, HTTP_REQUEST);
    o.hp.data = &o;
    size_t off = 0;
    while (off < size && out->n < MAX_MSGS) {
        if (HTTP_PARSER_ERRNO(&o.hp) == HPE_PAUSED)
            http_parser_pause(&o.hp, 0);
        o.stop = STOP_NONE;
        size_t used = http_parser_execute(&o.hp, &s, (const char *)data + off, size - off);
        off += used;
        enum http_errno err = HTTP_PARSER_ERRNO(&o.hp);
        if (err == HPE_PAUSED) {
            old_span_t *sp = &spans[out->n];
            if (o.stop == STOP_BEGIN) {
                sp->start = off - 1;
            } else if (o.stop == STOP_HEAD) {
                sp->head_end = off + 1; /* paused on the head's final LF */
            } else if (o.stop == STOP_END) {
                sp->end = off;
                out->ka[out->n] = http_should_keep_alive(&o.hp) != 0;
                gw_buf_t *b = &out->msg[out->n++];
                gw_buf_append(b, o.line.data, o.line.len);
                gw_buf_append_lit(b, "B");
                gw_buf_append(b, o.body.data, o.body.len);
            }
            continue;
        }
        if (err != HPE_OK) {
            out->status = o.status ? o.status : err == HPE_HEADER_OVERFLOW ? 431 : 400;
            break;
        }
        if (off < size) {
            out->status = 400; /* stopped early: an upgrade */
            break;
        }
    }
    gw_buf_free(&o.hdr);
    gw_buf_free(&o.name);
    gw_buf_free(&o.value);
    gw_buf_free(&o.url);
    gw_buf_free(&o.body);
    gw_buf_free(&o.line);
}

/* ---------------------------------------------------------------------------------------------
 * The documented differences */

static const char *const methods[] = {
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "COPY", "LOCK", "MKCOL",
    "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT",
    "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE", "MKCALENDAR",
    "LINK", "UNLINK", "SOURCE",
};

/* Why aigw refuses the request whose bytes http-parser delimited (head h[0..hn), body b[0..bn)),
 * by its documented rules; NULL when they accept it. */
static const char *ref_request(const uint8_t *h, size_t hn, const uint8_t *b, size_t bn)
{
    size_t i = 0;
    while (i < hn && ref_tchar(h[i]))
        i++;
    bool known = false;
    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
        known |= strlen(methods[m]) == i && memcmp(methods[m], h, i) == 0;
    if (!known || i >= hn || h[i] != ' ')
        return "method";
    if (i == 7 && memcmp(h, "CONNECT", 7) == 0)
        return "CONNECT";
    while (i < hn && h[i] == ' ')
        i++;
    while (i < hn && h[i] != ' ') {
        if (h[i] <= 0x20 || h[i] == 0x7f)
            return "control byte in the target";
        i++;
    }
    while (i < hn && h[i] == ' ')
        i++;
    if (hn - i < 9 || memcmp(h + i, "HTTP/", 5) != 0 || h[i + 5] < '0' || h[i + 5] > '9' || h[i + 6] != '.' ||
        h[i + 7] < '0' || h[i + 7] > '9')
        return "version";
    bool http10 = h[i + 7] == '0';
    if (h[i + 5] != '1')
        return "major version";
    i += 8;
    if (h[i] == '\r' && i + 1 < hn && h[i + 1] == '\n')
        i += 2;
    else if (h[i] == '\n')
        i++;
    else
        return "version";
    ref_fields_t r;
    memset(&r, 0, sizeof(r));
    const char *why = ref_fields(h, hn, &i, &r);
    if (why)
        return why;
    if (i != hn)
        abort(); /* http-parser and the reference disagree on where the head ends */
    if (hn > MAX_HEAD)
        return "head too large";
    if (r.fields > GW_HTTP_MAX_HEADERS)
        return "too many fields";
    if (r.cl_count > 1 || r.cl_bad)
        return "Content-Length";
    if (r.te) {
        if (r.cl_count)
            return "Transfer-Encoding with Content-Length";
        if (http10 || r.te_empty || r.te_chunked != 1 || !r.te_last_chunked || r.te_other)
            return "Transfer-Encoding";
        return ref_chunked(b, bn, MAX_HEAD - hn, GW_HTTP_MAX_HEADERS - r.fields);
    }
    if (r.cl_count && r.cl > MAX_BODY)
        return "body too large";
    if (r.expect_bad)
        return "Expect";
    return NULL;
}

/* A line of d[0..n), past the first empty line when after_head, is a field named name. */
static bool has_field(const uint8_t *d, size_t n, bool after_head, const char *name)
{
    bool body = !after_head;
    ref_line_t l;
    for (size_t pos = 0; ref_next_line(d, n, &pos, &l);) {
        if (!body)
            body = l.e == l.s || (l.e == l.s + 1 && d[l.s] == '\r');
        else if (l.c < l.e && ref_ieq(d + l.s, l.c - l.s, name))
            return true;
    }
    return false;
}

/* OWS in the value of a field that decides framing or persistence may be HTAB, and trailing OWS
 * is not part of the value: http-parser refused "Content-Length: 5<HTAB>" and
 * "Transfer-Encoding: chunked<HTAB>", answered 417 to "Expect: 100-continue<SP>", and did not see
 * "close<HTAB>". True when a line of d[0..n) is such a field with such whitespace. */
static bool ows_field(const uint8_t *d, size_t n)
{
    static const char *const names[] = {"content-length", "expect", "transfer-encoding", "connection",
                                        "proxy-connection"};
    return ref_ows_field(d, n, names, sizeof(names) / sizeof(names[0]));
}

/* Where aigw accepts what http-parser refused, in the bytes d[0..n) of one request: ows_field;
 * a field whose name merely begins with "Transfer-Encoding" is not that field (http-parser flagged
 * the message as transfer-coded and refused it); trailer fields are checked as fields and dropped
 * (http-parser also read a Content-Length among them); HTAB may precede a chunk extension. */
static bool lenient(const uint8_t *d, size_t n)
{
    if (has_field(d, n, true, "content-length") || ows_field(d, n) || ref_chunk_bws_tab(d, n))
        return true;
    ref_line_t l;
    for (size_t pos = 0; ref_next_line(d, n, &pos, &l);) {
        if (l.c - l.s > 17 && ref_ieq(d + l.s, 17, "transfer-encoding")) {
            for (size_t k = l.s + 17; k < l.c; k++)
                if (d[k] != ' ')
                    return true;
        }
    }
    return false;
}

/* Compares the parses; aborts on a difference no documented rule explains. */
static void compare(const uint8_t *data, size_t size, const outcome_t *a, const outcome_t *o, const old_span_t *sp)
{
    size_t k = 0;
    for (; k < a->n && k < o->n; k++) {
        const gw_buf_t *x = &a->msg[k], *y = &o->msg[k];
        if (!ref_same(x->data, x->len, y->data, y->len))
            abort();
        /* keep-alive: also where trailers held connection options, which http-parser applied */
        size_t from = k ? a->end[k - 1] : 0;
        if (a->ka[k] != o->ka[k] && !a->ka_loose[k] && !ows_field(data + from, a->end[k] - from) &&
            !ref_messy_connection(data + from, a->end[k] - from) &&
            !has_field(data + from, a->end[k] - from, true, "connection") &&
            !has_field(data + from, a->end[k] - from, true, "proxy-connection"))
            abort();
    }
    if (a->n > o->n) {
        /* aigw took a message http-parser refused or had not finished */
        size_t from = k ? a->end[k - 1] : 0;
        if (!lenient(data + from, a->end[k] - from))
            abort();
    } else if (a->n < o->n) {
        /* http-parser took message k, which aigw refused or still waits on: only for a rule of
         * aigw's that the message breaks */
        const old_span_t *s = &sp[k];
        if (s->head_end < s->start || s->end < s->head_end || s->end > size)
            abort();
        if (ref_request(data + s->start, s->head_end - s->start, data + s->head_end, s->end - s->head_end) == NULL)
            abort();
    }
    /* Same messages, different endings: one side refused the next message where the other still
     * waits for its end; the input stops before either could be checked. */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome_t whole, split, old;
    outcome_init(&whole);
    outcome_init(&split);
    outcome_init(&old);
    run_new(data, size, size ? size : 1, &whole);
    run_new(data, size, size > 0 ? (size_t)(data[0] % 17) + 1 : 1, &split);
    /* The same messages whatever the split. How a refused input ends may differ: fed whole, a
     * partial line is checked at once; fed in pieces, only once its LF arrives (so that a slow
     * client costs linear work), and the head limit may come first. */
    if (whole.n != split.n)
        abort();
    for (size_t i = 0; i < whole.n; i++)
        if (!ref_same(whole.msg[i].data, whole.msg[i].len, split.msg[i].data, split.msg[i].len))
            abort();
    old_span_t spans[MAX_MSGS + 1];
    memset(spans, 0, sizeof(spans));
    run_old(data, size, &old, spans);
    compare(data, size, &whole, &old, spans);
    outcome_free(&whole);
    outcome_free(&split);
    outcome_free(&old);
    return 0;
}
