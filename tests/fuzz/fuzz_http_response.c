/* libFuzzer harness for the HTTP/1.1 response parser (net/http_response.c): arbitrary bytes, fed
 * whole and in pieces sized from the input, then an end of stream, must never crash, leak, exceed
 * the head cap, deliver more body than was fed, or disagree with itself across splits. Then a
 * differential check against http-parser 2.9.4 driven the way aigw drove it before (same cap):
 * responses both complete must agree on status, headers, body, keep-alive and where they end;
 * where only one completes, the difference must be one aigw documents (checked by the plain
 * restatement of its rules in http_ref.h, or by the named leniencies below). */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http_ref.h"
#include "net/http_response.h"

#define MAX_HEAD 2048
#define MAX_HEADS 128 /* more than MAX_HEAD bytes can hold */

typedef struct {
    int heads;
    int status;
    gw_buf_t hdrs; /* name '\0' value '\0', values trimmed */
    gw_buf_t body;
    int rc;
    size_t used; /* bytes taken before GW_DONE */
    bool keep_alive;
} seen_t;

static void seen_init(seen_t *s)
{
    memset(s, 0, sizeof(*s));
    gw_buf_init(&s->hdrs, GW_BUF_UNLIMITED);
    gw_buf_init(&s->body, GW_BUF_UNLIMITED);
}

static void seen_free(seen_t *s)
{
    gw_buf_free(&s->hdrs);
    gw_buf_free(&s->body);
}

static void record_head(seen_t *s, int status, const gw_http_header_t *h, size_t n)
{
    s->heads++;
    s->status = status;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *v = (const uint8_t *)h[i].value.base;
        size_t vn = h[i].value.len;
        ref_trim(&v, &vn);
        uint32_t a = (uint32_t)h[i].name.len, b = (uint32_t)vn;
        gw_buf_append(&s->hdrs, &a, sizeof(a));
        gw_buf_append(&s->hdrs, h[i].name.base, a);
        gw_buf_append(&s->hdrs, &b, sizeof(b));
        gw_buf_append(&s->hdrs, v, b);
    }
}

/* ---------------------------------------------------------------------------------------------
 * aigw */

static int on_head(void *ud, int status, const gw_http_header_t *h, size_t n)
{
    seen_t *s = ud;
    if (status < 200 || status > 999 || n > GW_HTTP_MAX_HEADERS)
        abort();
    for (size_t i = 0; i < n; i++)
        if (h[i].name.len == 0 || h[i].name.len + h[i].value.len > MAX_HEAD)
            abort();
    record_head(s, status, h, n);
    return GW_OK;
}

static int on_body(void *ud, const char *p, size_t n)
{
    seen_t *s = ud;
    if (n == 0 || s->heads != 1)
        abort();
    gw_buf_append(&s->body, p, n);
    return GW_OK;
}

static const gw_http_resp_cbs_t cbs = {on_head, on_body};

static void run_new(const uint8_t *data, size_t size, size_t step, bool no_body, seen_t *s)
{
    gw_http_resp_t p;
    gw_http_resp_init(&p, MAX_HEAD);
    gw_http_resp_start(&p, &cbs, s);
    if (no_body)
        gw_http_resp_expect_no_body(&p);
    size_t off = 0;
    int rc = GW_OK;
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used = 0;
        rc = gw_http_resp_feed(&p, (const char *)data + off, n, &used);
        if (used > n || (rc == GW_OK && used != n))
            abort();
        off += used;
        if (rc != GW_OK)
            break;
    }
    if (rc == GW_OK)
        rc = gw_http_resp_eof(&p);
    if (s->body.len > size || s->heads > 1)
        abort();
    if (rc == GW_DONE && s->heads != 1)
        abort();
    s->rc = rc;
    s->used = off;
    s->keep_alive = rc == GW_DONE && gw_http_resp_keep_alive(&p);
    gw_http_resp_free(&p);
}

/* ---------------------------------------------------------------------------------------------
 * The parser aigw had before: http-parser 2.9.4 under the same rules (the head cap counts every
 * head, 1xx skipped, 101 refused, paused at the end of each head and of the response). */

enum { O_HEAD = 0, O_BODY, O_DONE, O_ERROR };

typedef struct {
    http_parser hp;
    seen_t *s;
    gw_buf_t name, value;
    gw_http_header_t h[GW_HTTP_MAX_HEADERS];
    gw_buf_t store[GW_HTTP_MAX_HEADERS * 2];
    size_t n, head_bytes;
    int state, err;
    bool last_was_field, interim, head_ready, no_body, keep_alive;
} old_t;

static int old_fail(old_t *o, int err)
{
    if (o->err == 0)
        o->err = err;
    return -1;
}

static int old_begin(http_parser *hp)
{
    old_t *o = hp->data;
    o->n = 0;
    o->last_was_field = false;
    o->interim = false;
    for (size_t i = 0; i < GW_HTTP_MAX_HEADERS * 2; i++)
        gw_buf_reset(&o->store[i]);
    return 0;
}

static int old_field(http_parser *hp, const char *at, size_t len)
{
    old_t *o = hp->data;
    if (o->state != O_HEAD)
        return 0;
    if (!o->last_was_field) {
        if (o->n == GW_HTTP_MAX_HEADERS)
            return old_fail(o, GW_TOOBIG);
        o->n++;
        o->last_was_field = true;
    }
    gw_buf_append(&o->store[2 * (o->n - 1)], at, len);
    return 0;
}

static int old_value(http_parser *hp, const char *at, size_t len)
{
    old_t *o = hp->data;
    if (o->state != O_HEAD || o->n == 0)
        return 0;
    o->last_was_field = false;
    gw_buf_append(&o->store[2 * (o->n - 1) + 1], at, len);
    return 0;
}

static int old_headers_complete(http_parser *hp)
{
    old_t *o = hp->data;
    if (hp->status_code < 100 || hp->status_code == 101)
        return old_fail(o, GW_EINVAL);
    o->interim = hp->status_code < 200;
    o->head_ready = true;
    http_parser_pause(hp, 1);
    return (o->no_body && !o->interim) ? 1 : 0;
}

static int old_body(http_parser *hp, const char *at, size_t len)
{
    old_t *o = hp->data;
    if (len && o->state == O_BODY)
        gw_buf_append(&o->s->body, at, len);
    return 0;
}

static int old_complete(http_parser *hp)
{
    old_t *o = hp->data;
    if (o->interim) {
        o->interim = false;
        return 0;
    }
    o->state = O_DONE;
    o->keep_alive = http_should_keep_alive(hp) != 0;
    http_parser_pause(hp, 1);
    return 0;
}

/* Head spans: ends[i] is the offset after head i (1xx heads first). */
static size_t run_old(const uint8_t *data, size_t size, bool no_body, seen_t *s, size_t *ends)
{
    static http_parser_settings set;
    http_parser_settings_init(&set);
    set.on_message_begin = old_begin;
    set.on_header_field = old_field;
    set.on_header_value = old_value;
    set.on_headers_complete = old_headers_complete;
    set.on_body = old_body;
    set.on_message_complete = old_complete;
    old_t o;
    memset(&o, 0, sizeof(o));
    for (size_t i = 0; i < GW_HTTP_MAX_HEADERS * 2; i++)
        gw_buf_init(&o.store[i], GW_BUF_UNLIMITED);
    o.s = s;
    o.no_body = no_body;
    http_parser_init(&o.hp, HTTP_RESPONSE);
    o.hp.data = &o;
    size_t heads = 0, off = 0;
    int rc = GW_OK;
    while (off < size) {
        size_t k = http_parser_execute(&o.hp, &set, (const char *)data + off, size - off);
        off += k;
        if (o.state == O_DONE) {
            rc = GW_DONE;
            break;
        }
        if (o.err) {
            rc = o.err;
            break;
        }
        if (o.head_ready) {
            o.head_ready = false;
            o.head_bytes += k;
            if (o.head_bytes + 1 > MAX_HEAD) {
                rc = GW_TOOBIG;
                break;
            }
            if (heads < MAX_HEADS)
                ends[heads] = off + 1;
            heads++; /* more than MAX_HEADS is reported as MAX_HEADS + 1 */
            http_parser_pause(&o.hp, 0);
            if (!o.interim) {
                for (size_t i = 0; i < o.n; i++) {
                    const gw_buf_t *nm = &o.store[2 * i], *v = &o.store[2 * i + 1];
                    o.h[i].name = gw_str(nm->data ? nm->data : "", nm->len);
                    o.h[i].value = gw_str(v->data ? v->data : "", v->len);
                }
                record_head(s, (int)o.hp.status_code, o.h, o.n);
                o.state = O_BODY;
            }
            continue;
        }
        if (HTTP_PARSER_ERRNO(&o.hp) != HPE_OK || off != size) {
            rc = HTTP_PARSER_ERRNO(&o.hp) == HPE_HEADER_OVERFLOW ? GW_TOOBIG : GW_EINVAL;
            break;
        }
        if (o.state == O_HEAD) {
            o.head_bytes += k;
            if (o.head_bytes > MAX_HEAD) {
                rc = GW_TOOBIG;
                break;
            }
        }
    }
    if (rc == GW_OK) {
        if (size == 0) {
            rc = GW_EINVAL;
        } else {
            http_parser_execute(&o.hp, &set, NULL, 0);
            rc = o.state == O_DONE ? GW_DONE : GW_EINVAL;
        }
    }
    s->rc = rc;
    s->used = off;
    s->keep_alive = rc == GW_DONE && o.keep_alive;
    for (size_t i = 0; i < GW_HTTP_MAX_HEADERS * 2; i++)
        gw_buf_free(&o.store[i]);
    return heads <= MAX_HEADS ? heads : MAX_HEADS + 1;
}

/* ---------------------------------------------------------------------------------------------
 * The documented differences */

/* Why aigw refuses the head at h[0..n) (status line to empty line), by its documented rules; NULL
 * when they accept it. *r receives what the fields say, *len the head's length. */
static const char *ref_head_len(const uint8_t *h, size_t n, ref_fields_t *r, int *status, bool *http10, size_t *len)
{
    if (n < 13 || memcmp(h, "HTTP/1.", 7) != 0 || h[7] < '0' || h[7] > '9' || h[8] != ' ')
        return "status line";
    for (int i = 9; i < 12; i++)
        if (h[i] < '0' || h[i] > '9')
            return "status code";
    *status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    *http10 = h[7] == '0';
    size_t i = 12;
    if (h[i] == ' ') {
        for (i = 13; i < n && h[i] != '\r' && h[i] != '\n'; i++)
            if (ref_ctl(h[i]) && h[i] != '\t')
                return "control byte in the reason";
    }
    if (i < n && h[i] == '\r' && i + 1 < n && h[i + 1] == '\n')
        i += 2;
    else if (i < n && h[i] == '\n')
        i++;
    else
        return "status line end";
    memset(r, 0, sizeof(*r));
    const char *why = ref_fields(h, n, &i, r);
    if (why)
        return why;
    *len = i;
    if (r->fields > GW_HTTP_MAX_HEADERS)
        return "too many fields";
    if (*status < 100 || *status == 101)
        return "status";
    return NULL;
}

/* The head h[0..n) exactly, as http-parser delimited it. */
static const char *ref_head(const uint8_t *h, size_t n, ref_fields_t *r, int *status, bool *http10)
{
    size_t len = 0;
    const char *why = ref_head_len(h, n, r, status, http10, &len);
    if (why == NULL && len != n)
        abort(); /* http-parser and the reference disagree on where the head ends */
    return why;
}

/* The fields that decide a response's framing or persistence. */
static const char *const FRAMING_FIELDS[] = {"content-length", "transfer-encoding", "connection", "proxy-connection"};

/* A field that decides framing or persistence with HTAB in its OWS or trailing OWS (http-parser
 * refused "Content-Length: 5<HTAB>" and "Transfer-Encoding: chunked<HTAB>" and missed
 * "close<HTAB>"), or whose name merely begins with "Transfer-Encoding" (http-parser took the
 * response as transfer-coded), in the lines of d[0..n). */
static bool odd_field(const uint8_t *d, size_t n)
{
    ref_line_t l;
    for (size_t pos = 0; ref_next_line(d, n, &pos, &l);)
        if (l.c - l.s > 17 && ref_ieq(d + l.s, 17, "transfer-encoding"))
            return true;
    return ref_ows_field(d, n, FRAMING_FIELDS, sizeof(FRAMING_FIELDS) / sizeof(FRAMING_FIELDS[0]));
}

/* Where aigw's response framing differs on purpose from http-parser's: after HEAD, 1xx, 204 and
 * 304 there is no body whatever the fields say (http-parser read one for 204/304 with
 * Content-Length or chunked); Transfer-Encoding other than exactly "chunked" is refused
 * (http-parser read "gzip" until close and "gzip, chunked" as chunked); HTTP/1.0 with chunked is
 * not kept alive; trailer fields are checked and dropped (http-parser read framing fields among
 * them). */
static bool framing_differs(int status, const ref_fields_t *r, bool http10, bool no_body)
{
    bool bodiless = no_body || status == 204 || status == 304;
    if (bodiless && (r->te || (r->cl_count && r->cl)))
        return true;
    if (r->te && (r->te_empty || r->te_chunked != 1 || !r->te_last_chunked || r->te_other))
        return true;
    return r->te && http10;
}

/* A line of d[0..n) is a field named like one that decides framing or persistence (in trailers,
 * where http-parser applied them and aigw drops them). */
static bool framing_field(const uint8_t *d, size_t n)
{
    return ref_has_field(d, n, FRAMING_FIELDS, sizeof(FRAMING_FIELDS) / sizeof(FRAMING_FIELDS[0]));
}

/* The first head of d[0..n) is a 1xx that carries Content-Length or Transfer-Encoding: aigw
 * checks only the syntax of an interim head, http-parser also read (and judged) those fields. */
static bool first_head_interim_framing(const uint8_t *d, size_t n)
{
    size_t s = 0, len = 0;
    while (s < n && (d[s] == '\r' || d[s] == '\n'))
        s++;
    ref_fields_t r;
    int status = 0;
    bool http10;
    return ref_head_len(d + s, n - s, &r, &status, &http10, &len) == NULL && status < 200 && (r.cl_count || r.te);
}

static bool same(const seen_t *a, const seen_t *o)
{
    return a->status == o->status && ref_same(a->hdrs.data, a->hdrs.len, o->hdrs.data, o->hdrs.len) &&
           ref_same(a->body.data, a->body.len, o->body.data, o->body.len) && a->used == o->used &&
           a->keep_alive == o->keep_alive;
}

/* Aborts on a difference between aigw (a) and http-parser (o) that no documented rule explains.
 * ends[0..n_heads) are where http-parser found the heads ending (1xx first). */
static void compare(const uint8_t *data, size_t size, bool no_body, const seen_t *a, const seen_t *o,
                    const size_t *ends, size_t n_heads)
{
    bool a_done = a->rc == GW_DONE, o_done = o->rc == GW_DONE;
    if (!a_done && !o_done)
        return;
    if (a_done && o_done && same(a, o))
        return;
    if (n_heads == 0 || n_heads > MAX_HEADS) {
        /* http-parser did not finish a head that aigw took: allowed when a field is odd, or when
         * the first head is a 1xx whose framing fields http-parser read (and may have refused) */
        if (o_done)
            abort();
        if (odd_field(data, size) || first_head_interim_framing(data, size))
            return;
        abort();
    }
    size_t start = 0;
    int status = 0;
    bool http10 = false;
    ref_fields_t r;
    for (size_t i = 0; i < n_heads; i++) {
        while (start < ends[i] && (data[start] == '\r' || data[start] == '\n'))
            start++;
        if (ref_head(data + start, ends[i] - start, &r, &status, &http10) != NULL) {
            if (a_done && i + 1 == n_heads)
                abort(); /* aigw took a head its own rules refuse */
            return;
        }
        /* aigw checks a 1xx head's syntax only; http-parser also read its framing fields, and
         * may have taken the bytes after it as its body: the heads after it are not comparable */
        if (status < 200 && (r.cl_count || r.te))
            return;
        start = ends[i];
    }
    /* http-parser may have refused the next head, a 1xx whose framing fields it read */
    if (a_done && !o_done && first_head_interim_framing(data + ends[n_heads - 1], size - ends[n_heads - 1]))
        return;
    size_t head_end = ends[n_heads - 1];
    if (head_end > MAX_HEAD || r.cl_count > 1 || r.cl_bad || (r.te && r.cl_count)) {
        if (a_done)
            abort();
        return;
    }
    if (framing_differs(status, &r, http10, no_body) || odd_field(data, size) ||
        (r.te && ref_chunk_bws_tab(data + ends[n_heads - 1], size - ends[n_heads - 1])))
        return;
    if (a_done && o_done && a->keep_alive != o->keep_alive && ref_messy_connection(data, size)) {
        seen_t t = *a;
        t.keep_alive = o->keep_alive;
        if (same(&t, o))
            return;
    }
    if (r.te) {
        size_t end = o_done ? o->used : size;
        if (framing_field(data + head_end, end - head_end))
            return;
        if (!a_done && ref_chunked(data + head_end, end - head_end, MAX_HEAD - head_end,
                                   GW_HTTP_MAX_HEADERS - r.fields) != NULL)
            return; /* aigw's chunk rules are stricter */
    }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool no_body = size > 0 && (data[0] & 0x80);
    seen_t whole, split, old;
    seen_init(&whole);
    seen_init(&split);
    seen_init(&old);
    run_new(data, size, size ? size : 1, no_body, &whole);
    run_new(data, size, size > 0 ? (size_t)(data[size - 1] % 13) + 1 : 1, no_body, &split);
    /* A complete response parses the same however it is split. (Failures may differ in kind:
     * the head cap is checked per piece, a syntax error where it is met.) */
    if ((whole.rc == GW_DONE) != (split.rc == GW_DONE))
        abort();
    if (whole.rc == GW_DONE && !same(&whole, &split))
        abort();
    size_t ends[MAX_HEADS];
    size_t n_heads = run_old(data, size, no_body, &old, ends);
    compare(data, size, no_body, &whole, &old, ends, n_heads);
    seen_free(&whole);
    seen_free(&split);
    seen_free(&old);
    return 0;
}
