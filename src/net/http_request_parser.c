/* Pure HTTP/1.1 request parsing (see http_request_parser.h). A head that arrives whole is parsed
 * where it lies and copied once, with its header array, into the request's own allocation; a head
 * that arrives in pieces is gathered in one capped buffer and parsed line by line as LFs arrive, so
 * a slow client costs linear work. Bodies are copied into the request's capped body buffer. */
#include "net/http_request_parser.h"

#include "core/alloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

enum { RQ_IDLE = 0, RQ_HEAD, RQ_BODY_LENGTH, RQ_BODY_CHUNKED };

/* The methods http-parser 2.9.4 knew, most frequent first. */
static const struct {
    const char *name;
    uint8_t len;
} methods[] = {
    {"GET", 3},      {"POST", 4},    {"HEAD", 4},        {"PUT", 3},       {"DELETE", 6},     {"OPTIONS", 7},
    {"PATCH", 5},    {"TRACE", 5},   {"CONNECT", 7},     {"COPY", 4},      {"LOCK", 4},       {"MKCOL", 5},
    {"MOVE", 4},     {"PROPFIND", 8}, {"PROPPATCH", 9},  {"SEARCH", 6},    {"UNLOCK", 6},     {"BIND", 4},
    {"REBIND", 6},   {"UNBIND", 6},  {"ACL", 3},         {"REPORT", 6},    {"MKACTIVITY", 10}, {"CHECKOUT", 8},
    {"MERGE", 5},    {"M-SEARCH", 8}, {"NOTIFY", 6},     {"SUBSCRIBE", 9}, {"UNSUBSCRIBE", 11}, {"PURGE", 5},
    {"MKCALENDAR", 10}, {"LINK", 4}, {"UNLINK", 6},      {"SOURCE", 6},
};
#define MAX_METHOD_LEN 11

/* Bytes an absolute-form target may hold in its authority (http-parser's userinfo and host set). */
/* clang-format off */
#define A1(c) [(unsigned char)(c)] = 1
static const uint8_t authority_char[256] = {
    A1('-'), A1('_'), A1('.'), A1('!'), A1('~'), A1('*'), A1('\''), A1('('), A1(')'), A1('%'), A1(';'), A1(':'),
    A1('&'), A1('='), A1('+'), A1('$'), A1(','), A1('['), A1(']'),
    A1('0'), A1('1'), A1('2'), A1('3'), A1('4'), A1('5'), A1('6'), A1('7'), A1('8'), A1('9'),
    A1('A'), A1('B'), A1('C'), A1('D'), A1('E'), A1('F'), A1('G'), A1('H'), A1('I'), A1('J'), A1('K'), A1('L'),
    A1('M'), A1('N'), A1('O'), A1('P'), A1('Q'), A1('R'), A1('S'), A1('T'), A1('U'), A1('V'), A1('W'), A1('X'),
    A1('Y'), A1('Z'),
    A1('a'), A1('b'), A1('c'), A1('d'), A1('e'), A1('f'), A1('g'), A1('h'), A1('i'), A1('j'), A1('k'), A1('l'),
    A1('m'), A1('n'), A1('o'), A1('p'), A1('q'), A1('r'), A1('s'), A1('t'), A1('u'), A1('v'), A1('w'), A1('x'),
    A1('y'), A1('z'),
};
#undef A1
/* clang-format on */

static inline bool is_alpha(unsigned char c)
{
    return (unsigned)((c | 0x20) - 'a') < 26u;
}

static int fail(gw_http_request_parser_t *p, int status, const char *reason)
{
    if (!p->error_status) {
        p->error_status = status;
        p->error_reason = reason;
    }
    return GW_ERROR;
}

/* One monotonic clock read per request; the wall clock is derived from it with an offset that is
 * read again once a second, so a clock step shows up within a second. */
static _Thread_local int64_t wall_minus_mono_us;
static _Thread_local uint64_t wall_synced_ns;

static void stamp(gw_http_req_t *req)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    if (wall_synced_ns == 0 || now - wall_synced_ns >= 1000000000ULL) {
        struct timespec w;
        clock_gettime(CLOCK_REALTIME, &w);
        wall_minus_mono_us = ((int64_t)w.tv_sec * 1000000 + w.tv_nsec / 1000) - (int64_t)(now / 1000);
        wall_synced_ns = now;
    }
    req->start_ns = now;
    req->start_wall_us = (int64_t)(now / 1000) + wall_minus_mono_us;
}

/* ---------------------------------------------------------------------------------------------
 * Request line */

/* The request-target forms http-parser accepted: origin-form and "*" (any bytes after the first,
 * control bytes and spaces having been excluded already) and absolute-form, whose scheme is
 * letters and whose authority holds userinfo/host bytes, never "@@". */
static bool target_ok(const char *t, size_t n)
{
    unsigned char c = (unsigned char)t[0];
    if (c == '/' || c == '*')
        return true;
    if (!is_alpha(c))
        return false;
    size_t k = 1;
    while (k < n && is_alpha((unsigned char)t[k]))
        k++;
    if (n - k < 4 || t[k] != ':' || t[k + 1] != '/' || t[k + 2] != '/')
        return false;
    bool at = false;
    for (k += 3; k < n; k++) {
        c = (unsigned char)t[k];
        if (c == '/' || c == '?')
            return true; /* path and query: anything */
        if (c == '@') {
            if (at)
                return false;
            at = true;
            continue;
        }
        if (!authority_char[c])
            return false;
        at = false;
    }
    return true;
}

/* The available bytes v[0..n) (n <= 8) can start "HTTP/" DIGIT "." DIGIT. */
static bool version_prefix_ok(const char *v, size_t n)
{
    static const char pat[] = "HTTP/0.0";
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)v[k];
        if (pat[k] == '0' ? (unsigned)(c - '0') > 9u : c != (unsigned char)pat[k])
            return false;
    }
    return true;
}

/* Parses the request line at buf[0..len): GW_OK with p->line_pos after it, GW_AGAIN when it is
 * incomplete, GW_ERROR when refused. */
static int parse_request_line(gw_http_request_parser_t *p, const char *buf, size_t len)
{
    size_t i = 0, m = 0;
    if (len >= 5 && memcmp(buf, "POST ", 5) == 0) { /* the usual two, by one compare */
        i = 4;
        m = 1;
    } else if (len >= 4 && memcmp(buf, "GET ", 4) == 0) {
        i = 3;
    } else {
        while (i < len && gw_http_tchar[(unsigned char)buf[i]])
            i++;
        if (i > MAX_METHOD_LEN)
            return fail(p, 400, "invalid HTTP method");
        if (i >= len)
            return GW_AGAIN;
        if (buf[i] != ' ' || i == 0)
            return fail(p, 400, "invalid HTTP method");
        while (m < GW_ARRAY_SIZE(methods) && !(methods[m].len == i && memcmp(methods[m].name, buf, i) == 0))
            m++;
    }
    if (m == GW_ARRAY_SIZE(methods))
        return fail(p, 400, "invalid HTTP method");
    if (methods[m].len == 7 && methods[m].name[0] == 'C')
        return fail(p, 400, "CONNECT is not supported");
    while (i < len && buf[i] == ' ')
        i++;
    size_t t = i;
    i = gw_http_scan_ctl_sp(buf, i, len);
    if (i >= len)
        return GW_AGAIN;
    if (buf[i] != ' ')
        return fail(p, 400,
                    buf[i] == '\r' || buf[i] == '\n' ? "HTTP/0.9 requests are not supported"
                                                     : "invalid character in the request target");
    if (i == t || !target_ok(buf + t, i - t))
        return fail(p, 400, "invalid request target");
    size_t t_end = i;
    while (i < len && buf[i] == ' ')
        i++;
    size_t avail = len - i;
    if (!(avail >= 8 && (memcmp(buf + i, "HTTP/1.1", 8) == 0 || memcmp(buf + i, "HTTP/1.0", 8) == 0)) &&
        !version_prefix_ok(buf + i, GW_MIN(avail, (size_t)8)))
        return fail(p, 400, "invalid HTTP version");
    if (avail < 9)
        return GW_AGAIN;
    size_t end;
    if (buf[i + 8] == '\n') {
        end = i + 9;
    } else if (buf[i + 8] == '\r') {
        if (avail < 10)
            return GW_AGAIN;
        if (buf[i + 9] != '\n')
            return fail(p, 400, "CR not followed by LF");
        end = i + 10;
    } else {
        return fail(p, 400, "invalid HTTP version");
    }
    if (buf[i + 5] != '1')
        return fail(p, 505, "HTTP version not supported");
    p->method = methods[m].name;
    p->method_len = methods[m].len;
    p->target_off = (uint32_t)t;
    p->target_len = (uint32_t)(t_end - t);
    p->http_major = 1;
    p->http_minor = (uint8_t)(buf[i + 7] - '0');
    p->line_pos = (uint32_t)end;
    p->start_done = true;
    return GW_OK;
}

/* Parses as much of the head in buf[0..len) as is there, from p->line_pos on: GW_DONE (the head
 * ends at p->line_pos), GW_AGAIN (no LF in buf[line_pos..len)) or GW_ERROR. */
static int parse_head(gw_http_request_parser_t *p, const char *buf, size_t len)
{
    if (!p->start_done) {
        int rc = parse_request_line(p, buf, len);
        if (rc != GW_OK)
            return rc;
    }
    size_t pos = p->line_pos;
    const char *why = NULL;
    int rc = gw_http_parse_fields(buf, len, &pos, p->fields, &p->n_fields, GW_HTTP_MAX_HEADERS, p->cand, &p->n_cand,
                                  &why);
    p->line_pos = (uint32_t)pos;
    if (rc == GW_EINVAL)
        return fail(p, 400, why);
    if (rc == GW_TOOBIG)
        return fail(p, 431, "too many request headers");
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Messages */

static void start_message(gw_http_request_parser_t *p)
{
    p->state = RQ_HEAD;
    p->start_done = false;
    p->line_pos = 0;
    p->n_fields = 0;
    p->n_cand = 0;
    p->expect_continue = false;
}

static int complete(gw_http_request_parser_t *p)
{
    p->done = p->current;
    p->current = NULL;
    p->state = RQ_IDLE;
    p->expect_continue = false;
    return GW_OK;
}

/* gw_http_req_t.storage bits. */
#define ST_HEADERS_OWN 1 /* headers (with the head bytes) is an allocation of its own */
#define ST_BODY_SHARED 2 /* the body's bytes are in the request's or the headers' allocation */
#define ST_POOLED 4      /* the request is a REQ_BLOCK from the worker's cache */

/* Requests whose head (and body, when it shares the allocation) fit in REQ_BLOCK bytes reuse
 * blocks kept per thread: a request then costs no malloc/free pair (above ~1 KiB glibc's small
 * caches do not apply and each pair costs ~300 instructions). A worker thread keeps at most
 * REQ_CACHE blocks. Sanitizer builds allocate every request afresh, so use-after-free stays
 * visible. */
#define REQ_BLOCK 4096
#define REQ_CACHE 32
#if defined(__SANITIZE_ADDRESS__)
#define REQ_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REQ_POOL 0
#endif
#endif
#ifndef REQ_POOL
#define REQ_POOL 1
#endif

static _Thread_local void *req_cache[REQ_CACHE];
static _Thread_local unsigned req_cached;
static _Thread_local bool req_cache_armed;
static pthread_key_t req_cache_key; /* its destructor empties a finishing thread's cache */
static pthread_once_t req_cache_once = PTHREAD_ONCE_INIT;

static void req_cache_drain(void *unused)
{
    (void)unused;
    while (req_cached)
        free(req_cache[--req_cached]);
}

static void req_cache_key_init(void)
{
    pthread_key_create(&req_cache_key, req_cache_drain);
}

/* A request block of at least size bytes, its first sizeof(gw_http_req_t) zeroed. */
static gw_http_req_t *req_alloc(size_t size)
{
    gw_http_req_t *req;
    uint8_t storage = 0;
    if (REQ_POOL && size <= REQ_BLOCK) {
        req = req_cached ? req_cache[--req_cached] : gw_malloc(REQ_BLOCK);
        storage = ST_POOLED;
    } else {
        req = gw_malloc(size);
    }
    memset(req, 0, sizeof(*req));
    req->storage = storage;
    return req;
}

static void req_release(gw_http_req_t *req)
{
    if (!(req->storage & ST_POOLED) || req_cached == REQ_CACHE) {
        free(req);
        return;
    }
    if (!req_cache_armed) {
        req_cache_armed = true;
        pthread_once(&req_cache_once, req_cache_key_init);
        pthread_setspecific(req_cache_key, req_cache);
    }
    req_cache[req_cached++] = req;
}
/* A body known to be complete in hand and at most this long shares the head's allocation. */
#define INLINE_BODY_MAX (64 * 1024)

/* The head buf[0..head_len) is complete and avail bytes follow it in this feed: builds the
 * request, with its header array, a copy of the head and (when it is all here) the body room in
 * one allocation, then decides how the body is framed. GW_OK (p->state says what comes next) or
 * GW_ERROR. */
static int head_done(gw_http_request_parser_t *p, const char *buf, size_t head_len, size_t avail)
{
    gw_http_framing_t fr;
    const char *why = NULL;
    int frc = gw_http_framing_read(p->fields, p->cand, p->n_cand, &fr, &why);
    size_t body_room = 0;
    if (frc == GW_OK && fr.te == GW_HTTP_TE_NONE && fr.has_content_length && fr.content_length <= avail &&
        fr.content_length <= INLINE_BODY_MAX && fr.content_length <= p->max_body_bytes && fr.content_length > 0)
        body_room = (size_t)fr.content_length + 1; /* + 1: room for gw_buf_cstr's NUL */

    size_t n = p->n_fields;
    size_t hsz = n * sizeof(gw_http_header_t);
    gw_http_req_t *req = p->current;
    gw_http_header_t *headers;
    if (req == NULL) {
        req = req_alloc(sizeof(*req) + hsz + head_len + body_room);
        stamp(req);
        headers = (gw_http_header_t *)(void *)(req + 1);
    } else {
        headers = gw_malloc(hsz + head_len + body_room + 1);
        req->storage |= ST_HEADERS_OWN;
    }
    char *store = (char *)headers + hsz;
    memcpy(store, buf, head_len);
    req->headers = headers;
    req->n_headers = n;
    req->head_storage = store;
    for (size_t i = 0; i < n; i++) { /* the same slices, in the copy */
        const gw_http_header_t *f = &p->fields[i];
        headers[i].name = gw_str(store + (f->name.base - buf), f->name.len);
        headers[i].value = gw_str(store + (f->value.base - buf), f->value.len);
    }
    req->method = gw_str(p->method, p->method_len);
    req->target = gw_str(store + p->target_off, p->target_len);
    const char *q = memchr(req->target.base, '?', req->target.len);
    req->path = gw_str(req->target.base, q ? (size_t)(q - req->target.base) : req->target.len);
    req->http_major = p->http_major;
    req->http_minor = p->http_minor;
    if (body_room) {
        /* Capped at its length, so nothing can make the buffer grow (and realloc a shared block). */
        req->body = (gw_buf_t){.data = store + head_len, .len = 0, .cap = body_room, .max = body_room - 1};
        req->storage |= ST_BODY_SHARED;
    } else {
        gw_buf_init(&req->body, p->max_body_bytes);
    }
    p->current = req;

    if (frc != GW_OK)
        return fail(p, 400, why);
    req->keep_alive = !fr.close && (p->http_minor >= 1 || fr.keep_alive);
    if (fr.te != GW_HTTP_TE_NONE) {
        if (p->http_minor == 0)
            return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (fr.te == GW_HTTP_TE_INVALID)
            return fail(p, 400, "request has invalid transfer-encoding");
        if (fr.te == GW_HTTP_TE_UNSUPPORTED)
            return fail(p, 501, "unsupported transfer coding");
        /* Trailers share the head's byte budget and header count. */
        gw_http_chunked_init(&p->chunked, p->max_header_bytes - head_len, GW_HTTP_MAX_HEADERS - n);
        p->state = RQ_BODY_CHUNKED;
    } else if (fr.has_content_length && fr.content_length > 0) {
        if (fr.content_length > p->max_body_bytes)
            return fail(p, 413, "request body too large");
        p->remaining = fr.content_length;
        p->state = RQ_BODY_LENGTH;
    } else {
        p->state = RQ_IDLE; /* no body */
    }
    if (fr.expect >= 0 && headers[fr.expect].value.len > 0) { /* an empty Expect asks for nothing */
        if (!gw_str_case_eq_lit(headers[fr.expect].value, "100-continue"))
            return fail(p, 417, "unsupported Expect header value");
        p->expect_continue = p->http_minor >= 1;
    }
    return GW_OK;
}

void gw_http_request_parser_init(gw_http_request_parser_t *p, size_t max_header_bytes, size_t max_body_bytes)
{
    memset(p, 0, sizeof(*p));
    p->max_header_bytes = GW_MIN(max_header_bytes, (size_t)GW_HTTP_HEAD_LIMIT);
    p->max_body_bytes = max_body_bytes;
    gw_buf_init(&p->hbuf, p->max_header_bytes);
}

void gw_http_req_free(gw_http_req_t *req)
{
    if (req == NULL)
        return;
    if (!(req->storage & ST_BODY_SHARED))
        gw_buf_free(&req->body);
    /* A head that came in pieces has its header array and bytes in a block of their own. */
    if (req->storage & ST_HEADERS_OWN)
        free(req->headers);
    req_release(req);
}

void gw_http_request_parser_free(gw_http_request_parser_t *p)
{
    gw_http_req_free(p->current);
    gw_http_req_free(p->done);
    p->current = p->done = NULL;
    gw_buf_free(&p->hbuf);
}

/* Points the parsed fields, slices of from[], at the same bytes copied to to[]. */
static void rebase(gw_http_header_t *f, size_t n, const char *from, const char *to)
{
    for (size_t i = 0; i < n; i++) {
        f[i].name.base = to + (f[i].name.base - from);
        f[i].value.base = to + (f[i].value.base - from);
    }
}

/* Head bytes from data, starting or continuing a message. Returns GW_OK with *off past the head,
 * GW_AGAIN when all of data went into the pending head, or GW_ERROR. */
static int feed_head(gw_http_request_parser_t *p, const char *data, size_t n, size_t *off)
{
    size_t max = p->max_header_bytes;
    if (p->state == RQ_IDLE) {
        size_t i = *off;
        while (i < n && (data[i] == '\r' || data[i] == '\n'))
            i++;
        p->skipped += i - *off;
        *off = i;
        if (p->skipped > max)
            return fail(p, 400, "too many empty lines before the request");
        if (i == n)
            return GW_AGAIN;
        p->skipped = 0;
        start_message(p);
        /* Whole heads are parsed where they lie. */
        size_t avail = GW_MIN(n - i, max);
        int rc = parse_head(p, data + i, avail);
        if (rc == GW_DONE) {
            *off = i + p->line_pos;
            return head_done(p, data + i, p->line_pos, n - *off);
        }
        if (rc != GW_AGAIN)
            return rc;
        if (n - i >= max)
            return fail(p, 431, "request headers too large");
        p->current = req_alloc(sizeof(gw_http_req_t));
        stamp(p->current);
        gw_buf_reset(&p->hbuf);
        gw_buf_append(&p->hbuf, data + i, n - i);
        rebase(p->fields, p->n_fields, data + i, p->hbuf.data);
        *off = n;
        return GW_AGAIN;
    }
    /* A head in pieces: it is parsed further only once a new LF completes a line, and from its
     * start again when the buffer moved (the parsed fields point into it; the buffer doubles, so
     * this stays linear). */
    size_t old = p->hbuf.len;
    size_t k = GW_MIN(n - *off, max - old);
    uintptr_t was = (uintptr_t)p->hbuf.data;
    if (gw_buf_append(&p->hbuf, data + *off, k) != GW_OK)
        return fail(p, 431, "request headers too large");
    int rc = GW_AGAIN;
    if ((uintptr_t)p->hbuf.data != was) {
        start_message(p);
        rc = parse_head(p, p->hbuf.data, p->hbuf.len);
    } else if (memchr(p->hbuf.data + old, '\n', k) != NULL) {
        rc = parse_head(p, p->hbuf.data, p->hbuf.len);
    }
    if (rc == GW_DONE) {
        size_t head_len = p->line_pos;
        *off += head_len - old;
        p->hbuf.len = head_len;
        rc = head_done(p, p->hbuf.data, head_len, n - *off);
        gw_buf_reset(&p->hbuf);
        return rc;
    }
    if (rc != GW_AGAIN)
        return rc;
    if (p->hbuf.len >= max)
        return fail(p, 431, "request headers too large");
    *off += k;
    return GW_AGAIN;
}

int gw_http_request_parser_feed(gw_http_request_parser_t *p, const char *data, size_t n, size_t *consumed)
{
    *consumed = 0;
    if (p->error_status)
        return GW_ERROR;
    if (p->done)
        return GW_OK;
    size_t off = 0;
    int rc = GW_OK;
    if (p->state == RQ_IDLE || p->state == RQ_HEAD) {
        rc = feed_head(p, data, n, &off);
        if (rc != GW_OK)
            goto out;
        if (p->state == RQ_IDLE) {
            rc = complete(p);
            goto out;
        }
    }
    if (p->state == RQ_BODY_LENGTH) {
        size_t take = n - off;
        if (take > p->remaining)
            take = (size_t)p->remaining;
        gw_buf_t *b = &p->current->body;
        if (take < b->cap - b->len) { /* room already (a byte is kept for gw_buf_cstr's NUL); len <= CL <= max */
            memcpy(b->data + b->len, data + off, take);
            b->len += take;
        } else if (gw_buf_append(b, data + off, take) != GW_OK) {
            rc = fail(p, 413, "request body too large");
            goto out;
        }
        off += take;
        p->remaining -= take;
        rc = p->remaining ? GW_AGAIN : complete(p);
        goto out;
    }
    for (;;) { /* RQ_BODY_CHUNKED */
        size_t used = 0;
        gw_str_t piece;
        rc = gw_http_chunked_decode(&p->chunked, data + off, n - off, &used, &piece);
        off += used;
        if (rc == GW_OK) {
            if (gw_buf_append(&p->current->body, piece.base, piece.len) != GW_OK) {
                rc = fail(p, 413, "request body too large");
                goto out;
            }
            continue;
        }
        if (rc == GW_DONE)
            rc = complete(p);
        else if (rc == GW_TOOBIG)
            rc = fail(p, 431, "request trailers too large");
        else if (rc != GW_AGAIN)
            rc = fail(p, 400, p->chunked.why);
        break;
    }
out:
    *consumed = off;
    return rc;
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
