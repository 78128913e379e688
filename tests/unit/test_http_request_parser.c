/* Request parser: framing, limits and the statuses each refusal maps to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "net/http_request_parser.h"

static int feed_all(gw_http_request_parser_t *p, const char *s, size_t n, size_t *used)
{
    return gw_http_request_parser_feed(p, s, n, used);
}

static void test_simple_post(void **state)
{
    (void)state;
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, 4096, 1024);
    const char *in = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                     "X-Multi: one\r\n\r\nhello";
    size_t used;
    assert_int_equal(feed_all(&p, in, strlen(in), &used), GW_OK);
    assert_int_equal(used, strlen(in));
    gw_http_req_t *r = gw_http_request_parser_take(&p);
    assert_non_null(r);
    assert_true(gw_str_eq_lit(r->method, "POST"));
    assert_true(gw_str_eq_lit(r->path, "/v1/chat/completions"));
    assert_true(gw_str_eq_lit(r->target, "/v1/chat/completions?x=1"));
    assert_int_equal(r->n_headers, 3);
    assert_true(gw_str_eq_lit(gw_http_header_find(r->headers, r->n_headers, GW_STR("x-multi")), "one"));
    assert_true(gw_str_eq_lit(gw_buf_str(&r->body), "hello"));
    assert_true(r->keep_alive);
    gw_http_req_free(r);
    gw_http_request_parser_free(&p);
}

/* Two pipelined requests in one buffer come out one at a time, byte-split at every position. */
static void test_pipelined_any_split(void **state)
{
    (void)state;
    const char *in = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
                     "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n2\r\n12\r\n0\r\n\r\n";
    size_t len = strlen(in);
    for (size_t split = 0; split <= len; split++) {
        gw_http_request_parser_t p;
        gw_http_request_parser_init(&p, 4096, 1024);
        const char *paths[] = {"/a", "/b", "/c"};
        const char *bodies[] = {"abc", "", "xyz12"};
        size_t got = 0, off = 0;
        size_t limit = split;
        while (off < len && got < 3) {
            size_t end = off < limit ? limit : len;
            size_t used = 0;
            int rc = gw_http_request_parser_feed(&p, in + off, end - off, &used);
            off += used;
            assert_int_not_equal(rc, GW_ERROR);
            if (rc == GW_OK) {
                gw_http_req_t *r = gw_http_request_parser_take(&p);
                assert_true(gw_str_eq(r->path, gw_str_c(paths[got])));
                assert_true(gw_str_eq(gw_buf_str(&r->body), gw_str_c(bodies[got])));
                gw_http_req_free(r);
                got++;
            } else if (off >= limit) {
                limit = len;
            }
        }
        assert_int_equal(got, 3);
        gw_http_request_parser_free(&p);
    }
}

static int expect_error(const char *in, size_t max_head, size_t max_body)
{
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, max_head, max_body);
    size_t used;
    int rc = gw_http_request_parser_feed(&p, in, strlen(in), &used);
    int status = rc == GW_ERROR ? p.error_status : 0;
    gw_http_request_parser_free(&p);
    return status;
}

static void test_limits(void **state)
{
    (void)state;
    char big[8192];
    int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'a', 3000);
    memcpy(big + n + 3000, "\r\n\r\n", 5);
    assert_int_equal(expect_error(big, 1024, 1024), 431);
    assert_int_equal(expect_error("POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", 1024, 1000), 413);
    assert_int_equal(expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n", 1024, 1000), 0);
    /* chunked body over the cap */
    char chunked[4096];
    n = snprintf(chunked, sizeof(chunked), "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n");
    memset(chunked + n, 'b', 1024);
    chunked[n + 1024] = '\0';
    assert_int_equal(expect_error(chunked, 1024, 1000), 413);
    /* too many headers */
    gw_buf_t many;
    gw_buf_init(&many, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < GW_HTTP_MAX_HEADERS + 1; i++)
        gw_buf_appendf(&many, "h%d: v\r\n", i);
    gw_buf_append_lit(&many, "\r\n");
    assert_int_equal(expect_error(gw_buf_cstr(&many), 1 << 20, 1000), 431);
    gw_buf_free(&many);
}

static void test_malformed_and_smuggling(void **state)
{
    (void)state;
    assert_int_equal(expect_error("GARBAGE\r\n\r\n", 1024, 1024), 400);
    assert_int_equal(expect_error("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 1024, 1024), 400);
    /* both framings: refused rather than guessed (request smuggling) */
    assert_int_equal(expect_error("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                                  1024, 1024),
                     400);
    assert_int_equal(expect_error("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 1024, 1024),
                     400);
    assert_int_equal(expect_error("POST / HTTP/1.1\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\n", 1024, 1024),
                     417);
}

static void test_expect_continue_flag(void **state)
{
    (void)state;
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, 1024, 1024);
    const char *head = "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    size_t used;
    assert_int_equal(gw_http_request_parser_feed(&p, head, strlen(head), &used), GW_AGAIN);
    assert_true(p.expect_continue);
    assert_true(gw_http_request_parser_in_message(&p));
    assert_int_equal(gw_http_request_parser_feed(&p, "hi", 2, &used), GW_OK);
    gw_http_req_t *r = gw_http_request_parser_take(&p);
    assert_true(gw_str_eq_lit(gw_buf_str(&r->body), "hi"));
    assert_false(p.expect_continue);
    gw_http_req_free(r);
    gw_http_request_parser_free(&p);
}

static void test_http10_keepalive(void **state)
{
    (void)state;
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, 1024, 1024);
    const char *in = "GET / HTTP/1.0\r\n\r\n";
    size_t used;
    assert_int_equal(gw_http_request_parser_feed(&p, in, strlen(in), &used), GW_OK);
    gw_http_req_t *r = gw_http_request_parser_take(&p);
    assert_false(r->keep_alive);
    assert_int_equal(r->http_minor, 0);
    gw_http_req_free(r);
    gw_http_request_parser_free(&p);
}

/* ---------------------------------------------------------------------------------------------
 * Added with the hand-written parser: each rule of http_request_parser.h, splits at every offset,
 * the request smuggling cases. */

typedef struct {
    int status;          /* 0: the request came out */
    gw_http_req_t *req;  /* when it did (caller frees) */
    size_t consumed;     /* bytes taken for it */
    const char *reason;
} one_t;

/* Feeds in at most step bytes per call (the unconsumed rest is given again, as the server does)
 * until the first request or a refusal. */
static one_t parse_one(const char *in, size_t len, size_t step, size_t max_head, size_t max_body)
{
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, max_head, max_body);
    one_t o = {0};
    size_t off = 0, avail = 0;
    for (;;) {
        avail = GW_MIN(len, avail + step);
        size_t used = 0;
        int rc = gw_http_request_parser_feed(&p, in + off, avail - off, &used);
        off += used;
        if (rc == GW_ERROR) {
            o.status = p.error_status;
            o.reason = p.error_reason;
            break;
        }
        if (rc == GW_OK) {
            o.req = gw_http_request_parser_take(&p);
            break;
        }
        assert_int_equal(off, avail);
        if (avail == len) {
            o.status = -1; /* incomplete */
            break;
        }
    }
    o.consumed = off;
    gw_http_request_parser_free(&p);
    return o;
}

static int status_of(const char *in, size_t max_head, size_t max_body)
{
    one_t o = parse_one(in, strlen(in), strlen(in) + 1, max_head, max_body);
    gw_http_req_free(o.req);
    return o.status;
}

static bool same_req(const gw_http_req_t *a, const gw_http_req_t *b)
{
    if (!gw_str_eq(a->method, b->method) || !gw_str_eq(a->target, b->target) || !gw_str_eq(a->path, b->path) ||
        a->n_headers != b->n_headers || !gw_str_eq(gw_buf_str(&a->body), gw_buf_str(&b->body)) ||
        a->keep_alive != b->keep_alive || a->http_major != b->http_major || a->http_minor != b->http_minor)
        return false;
    for (size_t i = 0; i < a->n_headers; i++)
        if (!gw_str_eq(a->headers[i].name, b->headers[i].name) || !gw_str_eq(a->headers[i].value, b->headers[i].value))
            return false;
    return true;
}

static void test_every_split_same_request(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1:28904\r\nContent-Type: application/json\r\n"
        "User-Agent: aigw-bench/1\r\nX-A-Very-Long-Header-Name-Beyond-Thirty-Two: v\tw\r\nContent-Length: 12\r\n\r\n"
        "{\"a\":[1,2]} NEXT",
        "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Empty:\r\n\r\n"
        "3;e=1\r\nxyz\r\n2\r\n12\r\n0\r\nT: 1\r\n\r\nNEXT",
        "GET /lf HTTP/1.1\nHost: a\nConnection: close\n\nNEXT",
    };
    for (size_t r = 0; r < GW_ARRAY_SIZE(reqs); r++) {
        size_t len = strlen(reqs[r]);
        one_t whole = parse_one(reqs[r], len, len, 4096, 1024);
        assert_int_equal(whole.status, 0);
        assert_int_equal(whole.consumed, len - 4); /* NEXT is the next request's */
        /* byte by byte, and every two-piece split */
        for (size_t step = 1; step <= len; step++) {
            one_t o = parse_one(reqs[r], len, step, 4096, 1024);
            assert_int_equal(o.status, 0);
            assert_int_equal(o.consumed, len - 4);
            assert_true(same_req(whole.req, o.req));
            gw_http_req_free(o.req);
        }
        gw_http_req_free(whole.req);
    }
}

static void test_values_and_target(void **state)
{
    (void)state;
    const char *in = "OPTIONS http://user@host:8080/p/q?a=b#f HTTP/1.1\r\nX-Ows: \t spaced out \t \r\n"
                     "X-Utf8: caf\xc3\xa9\r\n\r\n";
    one_t o = parse_one(in, strlen(in), 1000, 4096, 1024);
    assert_int_equal(o.status, 0);
    assert_true(gw_str_eq_lit(o.req->method, "OPTIONS"));
    assert_true(gw_str_eq_lit(o.req->target, "http://user@host:8080/p/q?a=b#f"));
    assert_true(gw_str_eq_lit(o.req->path, "http://user@host:8080/p/q"));
    assert_true(gw_str_eq_lit(o.req->headers[0].value, "spaced out"));
    assert_true(gw_str_eq_lit(o.req->headers[1].value, "caf\xc3\xa9"));
    gw_http_req_free(o.req);
    in = "OPTIONS * HTTP/1.1\r\n\r\n";
    o = parse_one(in, strlen(in), 1000, 4096, 1024);
    assert_true(o.status == 0 && gw_str_eq_lit(o.req->target, "*"));
    gw_http_req_free(o.req);
    /* runs of spaces in the request line, as http-parser allowed */
    in = "GET   /a   HTTP/1.1\r\n\r\n";
    o = parse_one(in, strlen(in), 1000, 4096, 1024);
    assert_true(o.status == 0 && gw_str_eq_lit(o.req->target, "/a"));
    gw_http_req_free(o.req);
}

static void test_methods(void **state)
{
    (void)state;
    static const char *const ok[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "COPY",
                                     "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND",
                                     "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH",
                                     "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE", "MKCALENDAR", "LINK", "UNLINK",
                                     "SOURCE"};
    char buf[128];
    for (size_t i = 0; i < GW_ARRAY_SIZE(ok); i++) {
        snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\n\r\n", ok[i]);
        one_t o = parse_one(buf, strlen(buf), 1000, 4096, 1024);
        assert_int_equal(o.status, 0);
        assert_true(gw_str_eq(o.req->method, gw_str_c(ok[i])));
        gw_http_req_free(o.req);
    }
    static const char *const bad[] = {"FOO / HTTP/1.1\r\n\r\n", "get / HTTP/1.1\r\n\r\n", "GETS / HTTP/1.1\r\n\r\n",
                                      "G\x01T / HTTP/1.1\r\n\r\n", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                                      " GET / HTTP/1.1\r\n\r\n", "MKACTIVITYX / HTTP/1.1\r\n\r\n",
                                      "CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++)
        assert_int_equal(status_of(bad[i], 4096, 1024), 400);
    /* refused on its first bytes, before a line ends (a TLS handshake on the plain port) */
    one_t o = parse_one("\x16\x03\x01", 3, 3, 4096, 1024);
    assert_int_equal(o.status, 400);
}

static void test_request_line_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int status;
    } cases[] = {
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\n\r\n", 505},
        {"GET /\r\n\r\n", 400},             /* HTTP/0.9 */
        {"GET / HTTP/1.1 \r\n\r\n", 400},   /* trailing space */
        {"GET / HTTP/1.10\r\n\r\n", 400},
        {"GET / HXTP/1.1\r\n\r\n", 400},
        {"GET / http/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\r\n\r\n", 400},
        {"GET /a\tb HTTP/1.1\r\n\r\n", 400}, /* control bytes in the target */
        {"GET /a\x7f HTTP/1.1\r\n\r\n", 400},
        {"GET abc HTTP/1.1\r\n\r\n", 400},   /* neither origin- nor absolute-form */
        {"GET http:// HTTP/1.1\r\n\r\n", 400},
        {"GET http:/x HTTP/1.1\r\n\r\n", 400},
        {"GET h2c://x HTTP/1.1\r\n\r\n", 400},
        {"GET http://a@@b/ HTTP/1.1\r\n\r\n", 400},
        {"GET http://a<b/ HTTP/1.1\r\n\r\n", 400},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        assert_int_equal(status_of(cases[i].in, 4096, 1024), cases[i].status);
    /* HTTP/1.x beyond 1.1 is taken as HTTP/1.1 */
    one_t o = parse_one("GET / HTTP/1.2\r\n\r\n", 18, 100, 4096, 1024);
    assert_int_equal(o.status, 0);
    assert_true(o.req->keep_alive);
    assert_int_equal(o.req->http_minor, 2);
    gw_http_req_free(o.req);
}

static void test_head_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n",      /* obsolete line folding */
        "GET / HTTP/1.1\r\n X-A: one\r\n\r\n",             /* whitespace before the first field */
        "GET / HTTP/1.1\r\nX-A: b\rc\r\n\r\n",             /* bare CR */
        "GET / HTTP/1.1\r\nX-A : b\r\n\r\n",               /* space before the colon */
        "GET / HTTP/1.1\r\nX A: b\r\n\r\n",                /* space in a name */
        "GET / HTTP/1.1\r\n: b\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: \x01\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++)
        assert_int_equal(status_of(bad[i], 4096, 1024), 400);
    static const char nul[] = "GET / HTTP/1.1\r\nX-A: b\0c\r\n\r\n";
    one_t o = parse_one(nul, sizeof(nul) - 1, 1000, 4096, 1024);
    assert_int_equal(o.status, 400);
}

static void test_smuggling(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int status;
    } cases[] = {
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\nabc", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 18446744073709551617\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", 400}, /* LF-only chunks */
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", 400},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        assert_int_equal(status_of(cases[i].in, 4096, 1024), cases[i].status);
    /* a name that only begins with Transfer-Encoding is another field: no body */
    const char *in = "POST / HTTP/1.1\r\nTransfer-Encodingx: chunked\r\n\r\n0\r\n\r\n";
    one_t o = parse_one(in, strlen(in), 1000, 4096, 1024);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.req->body.len, 0);
    assert_int_equal(o.consumed, strlen(in) - 5);
    gw_http_req_free(o.req);
    /* a huge chunk size is refused only when its data goes over the body limit */
    in = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n";
    assert_int_equal(status_of(in, 4096, 1024), -1);
}

static void test_limits_exact(void **state)
{
    (void)state;
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    /* a head of exactly max_header_bytes passes, one byte more is 431, whatever the split */
    for (int extra = 0; extra < 2; extra++) {
        gw_buf_reset(&b);
        gw_buf_append_lit(&b, "GET / HTTP/1.1\r\nX-Pad: ");
        while (b.len < 1024 - 4 + (size_t)extra)
            gw_buf_append_byte(&b, 'p');
        gw_buf_append_lit(&b, "\r\n\r\n");
        for (size_t step = 1; step <= b.len; step += 97) {
            one_t o = parse_one(b.data, b.len, step, 1024, 1024);
            assert_int_equal(o.status, extra ? 431 : 0);
            gw_http_req_free(o.req);
        }
    }
    /* GW_HTTP_MAX_HEADERS fields pass, one more is 431 */
    for (int extra = 0; extra < 2; extra++) {
        gw_buf_reset(&b);
        gw_buf_append_lit(&b, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < GW_HTTP_MAX_HEADERS + extra; i++)
            gw_buf_appendf(&b, "h%d: v\r\n", i);
        gw_buf_append_lit(&b, "\r\n");
        assert_int_equal(status_of(gw_buf_cstr(&b), 1 << 20, 1024), extra ? 431 : 0);
    }
    /* trailers count with the head, in bytes and fields */
    const char *in = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n";
    size_t head = strlen("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(status_of(in, head + 10, 1024), 0);
    assert_int_equal(status_of(in, head + 9, 1024), 431);
    gw_buf_reset(&b);
    gw_buf_append_lit(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n");
    for (int i = 0; i < GW_HTTP_MAX_HEADERS - 2; i++)
        gw_buf_appendf(&b, "h%d: v\r\n", i);
    gw_buf_append_lit(&b, "\r\n0\r\nT1: 1\r\n\r\n"); /* 128 in all */
    assert_int_equal(status_of(gw_buf_cstr(&b), 1 << 20, 1024), 0);
    b.len -= 2;
    gw_buf_append_lit(&b, "T2: 2\r\n\r\n");
    assert_int_equal(status_of(gw_buf_cstr(&b), 1 << 20, 1024), 431);
    /* bodies: at the limit passes, over it is 413 (declared up front, or as it arrives) */
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd", 1024, 4), 0);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 1024, 4), 413);
    const char *chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
    assert_int_equal(status_of(chunked, 1024, 4), 0);
    chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n";
    assert_int_equal(status_of(chunked, 1024, 4), 413);
    /* empty lines before a request are skipped, within the head limit */
    gw_buf_reset(&b);
    for (int i = 0; i < 600; i++)
        gw_buf_append_lit(&b, "\r\n");
    gw_buf_append_lit(&b, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(status_of(gw_buf_cstr(&b), 1024, 1024), 400);
    assert_int_equal(status_of(gw_buf_cstr(&b) + 400 * 2, 1024, 1024), 0);
    gw_buf_free(&b);
}

static void test_keep_alive_and_expect(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool keep;
    } ka[] = {
        {"GET / HTTP/1.1\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n", true}, /* served as 1.1 */
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(ka); i++) {
        one_t o = parse_one(ka[i].in, strlen(ka[i].in), 1000, 4096, 1024);
        assert_int_equal(o.status, 0);
        assert_int_equal(o.req->keep_alive, ka[i].keep);
        gw_http_req_free(o.req);
    }
    assert_int_equal(status_of("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 0\r\n\r\n", 1024, 1024), 0);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nExpect:\r\nContent-Length: 0\r\n\r\n", 1024, 1024), 0);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nExpect: 100-continue, x\r\nContent-Length: 0\r\n\r\n", 1024, 1024),
                     417);
    /* no 100-continue for HTTP/1.0, nor once the body is complete */
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, 1024, 1024);
    const char *head = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    size_t used;
    assert_int_equal(gw_http_request_parser_feed(&p, head, strlen(head), &used), GW_AGAIN);
    assert_false(p.expect_continue);
    gw_http_request_parser_free(&p);
}

static void test_pipelining_one_per_call(void **state)
{
    (void)state;
    const char *in = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
                     "\r\nGET /c HTTP/1.1\r\n\r\n";
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, 1024, 1024);
    size_t off = 0, used;
    const char *paths[] = {"/a", "/b", "/c"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gw_http_request_parser_feed(&p, in + off, strlen(in) - off, &used), GW_OK);
        off += used;
        /* a request waiting to be taken holds the parser */
        size_t again;
        assert_int_equal(gw_http_request_parser_feed(&p, in + off, strlen(in) - off, &again), GW_OK);
        assert_int_equal(again, 0);
        gw_http_req_t *r = gw_http_request_parser_take(&p);
        assert_true(gw_str_eq(r->path, gw_str_c(paths[i])));
        gw_http_req_free(r);
        assert_false(gw_http_request_parser_in_message(&p));
    }
    assert_int_equal(off, strlen(in));
    gw_http_request_parser_free(&p);
}

static void test_slow_client_and_storage(void **state)
{
    (void)state;
    /* a head of many lines fed a byte at a time (its buffer moves as it grows) */
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "POST /slow HTTP/1.1\r\n");
    for (int i = 0; i < 100; i++)
        gw_buf_appendf(&b, "X-Header-%03d: value number %d with some length\r\n", i, i);
    gw_buf_append_lit(&b, "Content-Length: 5\r\n\r\nhello");
    one_t a = parse_one(b.data, b.len, 1, 1 << 16, 1024);
    one_t w = parse_one(b.data, b.len, b.len, 1 << 16, 1024);
    assert_int_equal(a.status, 0);
    assert_int_equal(w.status, 0);
    assert_true(same_req(a.req, w.req));
    assert_true(gw_str_eq_lit(a.req->headers[99].value, "value number 99 with some length"));
    /* the first byte stamps the request */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    assert_true(w.req->start_ns > 0 && w.req->start_ns >= a.req->start_ns);
    assert_true(w.req->start_wall_us > now_us - 2000000 && w.req->start_wall_us <= now_us + 2000000);
    /* a body that arrived with its head shares the request's allocation and cannot grow */
    assert_true(gw_str_eq_lit(gw_buf_str(&w.req->body), "hello"));
    assert_int_equal(gw_buf_append(&w.req->body, "x", 1), GW_TOOBIG);
    assert_string_equal(gw_buf_cstr(&w.req->body), "hello");
    gw_http_req_free(a.req);
    gw_http_req_free(w.req);
    gw_buf_free(&b);
}

static void test_partial_request_is_current(void **state)
{
    (void)state;
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, 1024, 1024);
    size_t used;
    /* empty lines alone start nothing */
    assert_int_equal(gw_http_request_parser_feed(&p, "\r\n", 2, &used), GW_AGAIN);
    assert_false(gw_http_request_parser_in_message(&p));
    assert_int_equal(gw_http_request_parser_feed(&p, "PO", 2, &used), GW_AGAIN);
    assert_true(gw_http_request_parser_in_message(&p));
    assert_non_null(p.current);
    assert_null(p.current->method.base);
    const char *rest = "ST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\na";
    assert_int_equal(gw_http_request_parser_feed(&p, rest, strlen(rest), &used), GW_AGAIN);
    /* head done, body pending: the partial request has its method (the server answers errors with it) */
    assert_true(gw_str_eq_lit(p.current->method, "POST"));
    assert_int_equal(gw_http_request_parser_feed(&p, "bc", 2, &used), GW_OK);
    gw_http_req_t *r = gw_http_request_parser_take(&p);
    assert_true(gw_str_eq_lit(gw_buf_str(&r->body), "abc"));
    gw_http_req_free(r);
    gw_http_request_parser_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_post),         cmocka_unit_test(test_pipelined_any_split),
        cmocka_unit_test(test_limits),              cmocka_unit_test(test_malformed_and_smuggling),
        cmocka_unit_test(test_expect_continue_flag), cmocka_unit_test(test_http10_keepalive),
        cmocka_unit_test(test_every_split_same_request), cmocka_unit_test(test_values_and_target),
        cmocka_unit_test(test_methods), cmocka_unit_test(test_request_line_refusals),
        cmocka_unit_test(test_head_refusals), cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_limits_exact), cmocka_unit_test(test_keep_alive_and_expect),
        cmocka_unit_test(test_pipelining_one_per_call), cmocka_unit_test(test_slow_client_and_storage),
        cmocka_unit_test(test_partial_request_is_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
