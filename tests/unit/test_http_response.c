/* Unit tests for the incremental HTTP/1.1 response parser (net/http_response.c): framing by length,
 * chunks and close, 1xx skipping, keep-alive decisions, the head cap and header count limits, and
 * every split point of the input giving the same result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"
#include "net/http_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int heads;
    int status;
    char hdrs[2048]; /* "name=value;" for each header */
    size_t hlen;
    gw_buf_t body;
    int stop_in_head;
} rec_t;

static int rec_head(void *ud, int status, const gw_http_header_t *h, size_t n)
{
    rec_t *r = ud;
    r->heads++;
    r->status = status;
    r->hlen = 0;
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(r->hdrs + r->hlen, sizeof(r->hdrs) - r->hlen, "%.*s=%.*s;", (int)h[i].name.len, h[i].name.base,
                         (int)h[i].value.len, h[i].value.base);
        if (k > 0 && (size_t)k < sizeof(r->hdrs) - r->hlen)
            r->hlen += (size_t)k;
    }
    return r->stop_in_head ? GW_ERROR : GW_OK;
}

static int rec_body(void *ud, const char *p, size_t n)
{
    rec_t *r = ud;
    assert_int_equal(gw_buf_append(&r->body, p, n), GW_OK);
    return GW_OK;
}

static const gw_http_resp_cbs_t cbs = {rec_head, rec_body};

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof(*r));
    gw_buf_init(&r->body, GW_BUF_UNLIMITED);
}

/* Feeds s in pieces of `step` bytes; returns the final status and the bytes consumed. */
static int feed_all(gw_http_resp_t *p, const char *s, size_t len, size_t step, size_t *consumed)
{
    size_t off = 0;
    int rc = GW_OK;
    while (off < len) {
        size_t n = GW_MIN(step, len - off), used = 0;
        rc = gw_http_resp_feed(p, s + off, n, &used);
        off += used;
        if (rc != GW_OK)
            break;
    }
    if (consumed)
        *consumed = off;
    return rc;
}

static void test_content_length(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Pad:  v  \r\nContent-Length: 5\r\n\r\nhelloEXTRA";
    for (size_t step = 1; step <= sizeof(resp); step++) {
        gw_http_resp_t p;
        rec_t r;
        rec_init(&r);
        gw_http_resp_init(&p, 0);
        gw_http_resp_start(&p, &cbs, &r);
        size_t used = 0;
        int rc = feed_all(&p, resp, sizeof(resp) - 1, step, &used);
        assert_int_equal(rc, GW_DONE);
        assert_int_equal(used, sizeof(resp) - 1 - 5); /* stops before EXTRA */
        assert_int_equal(r.heads, 1);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.hdrs, "Content-Type=text/plain;X-Pad=v;Content-Length=5;");
        assert_int_equal(r.body.len, 5);
        assert_memory_equal(r.body.data, "hello", 5);
        assert_true(gw_http_resp_keep_alive(&p));
        gw_http_resp_free(&p);
        gw_buf_free(&r.body);
    }
}

static void test_chunked_and_trailers(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "1\r\na\r\n3;ext=1\r\nbcd\r\n0A\r\n0123456789\r\n11\r\nABCDEFGHIJKLMNOPQ\r\n"
                               "0\r\nX-Trailer: t\r\n\r\n";
    for (size_t step = 1; step <= sizeof(resp); step++) {
        gw_http_resp_t p;
        rec_t r;
        rec_init(&r);
        gw_http_resp_init(&p, 0);
        gw_http_resp_start(&p, &cbs, &r);
        assert_int_equal(feed_all(&p, resp, sizeof(resp) - 1, step, NULL), GW_DONE);
        assert_int_equal(r.body.len, 1 + 3 + 10 + 17);
        assert_memory_equal(r.body.data, "abcd0123456789ABCDEFGHIJKLMNOPQ", 31);
        assert_string_equal(r.hdrs, "Transfer-Encoding=chunked;"); /* trailers not passed on */
        assert_true(gw_http_resp_keep_alive(&p));
        gw_http_resp_free(&p);
        gw_buf_free(&r.body);
    }
}

static void test_interim_skipped(void **state)
{
    static const char resp[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                               "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    gw_http_resp_t p;
    rec_t r;
    rec_init(&r);
    gw_http_resp_init(&p, 0);
    gw_http_resp_start(&p, &cbs, &r);
    assert_int_equal(feed_all(&p, resp, sizeof(resp) - 1, 4, NULL), GW_DONE);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.hdrs, "Content-Length=2;");
    gw_http_resp_free(&p);
    gw_buf_free(&r.body);
}

static void test_close_delimited_and_truncation(void **state)
{
    gw_http_resp_t p;
    rec_t r;
    rec_init(&r);
    gw_http_resp_init(&p, 0);
    gw_http_resp_start(&p, &cbs, &r);
    static const char a[] = "HTTP/1.1 200 OK\r\n\r\nuntil close";
    assert_int_equal(feed_all(&p, a, sizeof(a) - 1, 100, NULL), GW_OK);
    assert_int_equal(gw_http_resp_eof(&p), GW_DONE);
    assert_false(gw_http_resp_keep_alive(&p));
    assert_int_equal(r.body.len, 11);

    /* truncated Content-Length body */
    gw_http_resp_start(&p, &cbs, &r);
    static const char b[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    assert_int_equal(feed_all(&p, b, sizeof(b) - 1, 100, NULL), GW_OK);
    assert_int_equal(gw_http_resp_eof(&p), GW_EINVAL);

    /* nothing at all */
    gw_http_resp_start(&p, &cbs, &r);
    assert_false(gw_http_resp_started(&p));
    assert_int_equal(gw_http_resp_eof(&p), GW_EINVAL);
    gw_http_resp_free(&p);
    gw_buf_free(&r.body);
}

static void test_keep_alive_rules(void **state)
{
    static const struct {
        const char *resp;
        bool keep;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 204 No Content\r\n\r\n", true},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        gw_http_resp_t p;
        rec_t r;
        rec_init(&r);
        gw_http_resp_init(&p, 0);
        gw_http_resp_start(&p, &cbs, &r);
        assert_int_equal(feed_all(&p, cases[i].resp, strlen(cases[i].resp), 7, NULL), GW_DONE);
        assert_int_equal(gw_http_resp_keep_alive(&p), cases[i].keep);
        gw_http_resp_free(&p);
        gw_buf_free(&r.body);
    }
}

static void test_head_request_has_no_body(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    gw_http_resp_t p;
    rec_t r;
    rec_init(&r);
    gw_http_resp_init(&p, 0);
    gw_http_resp_start(&p, &cbs, &r);
    gw_http_resp_expect_no_body(&p);
    assert_int_equal(feed_all(&p, resp, sizeof(resp) - 1, 3, NULL), GW_DONE);
    assert_int_equal(r.body.len, 0);
    assert_true(gw_http_resp_keep_alive(&p));
    gw_http_resp_free(&p);
    gw_buf_free(&r.body);
}

static void test_malformed(void **state)
{
    static const char *bad[] = {
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "garbage\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        gw_http_resp_t p;
        rec_t r;
        rec_init(&r);
        gw_http_resp_init(&p, 0);
        gw_http_resp_start(&p, &cbs, &r);
        int rc = feed_all(&p, bad[i], strlen(bad[i]), 5, NULL);
        assert_int_equal(rc, GW_EINVAL);
        assert_non_null(gw_http_resp_error(&p));
        /* sticky */
        size_t used = 1;
        assert_int_equal(gw_http_resp_feed(&p, "x", 1, &used), GW_EINVAL);
        assert_int_equal(used, 0);
        gw_http_resp_free(&p);
        gw_buf_free(&r.body);
    }
}

static void head_with_header(gw_buf_t *b, size_t value_len)
{
    gw_buf_reset(b);
    gw_buf_append_lit(b, "HTTP/1.1 200 OK\r\nX-Big: ");
    for (size_t i = 0; i < value_len; i++)
        gw_buf_append_byte(b, 'v');
    gw_buf_append_lit(b, "\r\nContent-Length: 0\r\n\r\n");
}

static void test_head_cap(void **state)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    for (size_t step = 1; step <= 4096; step *= 4) {
        /* exactly at the cap passes, one byte over fails, whatever the split */
        head_with_header(&b, 100);
        size_t exact = b.len;
        gw_http_resp_t p;
        rec_t r;
        rec_init(&r);
        gw_http_resp_init(&p, exact);
        gw_http_resp_start(&p, &cbs, &r);
        assert_int_equal(feed_all(&p, b.data, b.len, step, NULL), GW_DONE);
        gw_http_resp_free(&p);

        head_with_header(&b, 101);
        gw_http_resp_init(&p, exact);
        gw_http_resp_start(&p, &cbs, &r);
        assert_int_equal(feed_all(&p, b.data, b.len, step, NULL), GW_TOOBIG);
        assert_int_equal(r.heads, 1);
        gw_http_resp_free(&p);
        gw_buf_free(&r.body);
    }
    /* 1xx heads count towards the same cap: an endless stream of them is cut off */
    gw_buf_reset(&b);
    for (int i = 0; i < 200; i++)
        gw_buf_append_lit(&b, "HTTP/1.1 102 Processing\r\n\r\n");
    gw_http_resp_t p;
    rec_t r;
    rec_init(&r);
    gw_http_resp_init(&p, 1024);
    gw_http_resp_start(&p, &cbs, &r);
    assert_int_equal(feed_all(&p, b.data, b.len, 64, NULL), GW_TOOBIG);
    assert_int_equal(r.heads, 0);
    gw_http_resp_free(&p);
    gw_buf_free(&r.body);
    gw_buf_free(&b);
}

static void test_too_many_headers(void **state)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < GW_HTTP_MAX_HEADERS + 1; i++)
        gw_buf_appendf(&b, "X-H%d: v\r\n", i);
    gw_buf_append_lit(&b, "Content-Length: 0\r\n\r\n");
    gw_http_resp_t p;
    rec_t r;
    rec_init(&r);
    gw_http_resp_init(&p, 0);
    gw_http_resp_start(&p, &cbs, &r);
    assert_int_equal(feed_all(&p, b.data, b.len, 1000, NULL), GW_TOOBIG);
    gw_http_resp_free(&p);
    gw_buf_free(&r.body);
    gw_buf_free(&b);
}

static void test_empty_header_value_and_stop(void **state)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-B: 1\r\nContent-Length: 0\r\n\r\n";
    gw_http_resp_t p;
    rec_t r;
    rec_init(&r);
    gw_http_resp_init(&p, 0);
    gw_http_resp_start(&p, &cbs, &r);
    assert_int_equal(feed_all(&p, resp, sizeof(resp) - 1, 2, NULL), GW_DONE);
    assert_string_equal(r.hdrs, "X-Empty=;X-B=1;Content-Length=0;");
    /* a callback refusing the head stops the parser */
    r.stop_in_head = 1;
    gw_http_resp_start(&p, &cbs, &r);
    assert_int_equal(feed_all(&p, resp, sizeof(resp) - 1, 1000, NULL), GW_ERROR);
    gw_http_resp_free(&p);
    gw_buf_free(&r.body);
}

/* ---------------------------------------------------------------------------------------------
 * Added with the hand-written parser: every split, the framing rules, the refusals. */

typedef struct {
    int rc;
    size_t used;
    bool keep;
} res_t;

/* Parses resp in two pieces cut at cut (the second with the rest), then EOF if still open. */
static res_t parse_cut(const char *resp, size_t len, size_t cut, bool no_body, rec_t *r)
{
    gw_http_resp_t p;
    gw_http_resp_init(&p, 0);
    gw_http_resp_start(&p, &cbs, r);
    if (no_body)
        gw_http_resp_expect_no_body(&p);
    res_t o = {GW_OK, 0, false};
    const size_t ends[2] = {cut, len};
    size_t off = 0;
    for (int k = 0; k < 2 && o.rc == GW_OK; k++) {
        size_t used = 0;
        o.rc = gw_http_resp_feed(&p, resp + off, ends[k] - off, &used);
        off += used;
    }
    if (o.rc == GW_OK)
        o.rc = gw_http_resp_eof(&p);
    o.used = off;
    o.keep = gw_http_resp_keep_alive(&p);
    gw_http_resp_free(&p);
    return o;
}

static void test_every_two_piece_split(void **state)
{
    static const char *const resps[] = {
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 11 Mar 2025 10:12:31 GMT\r\nContent-Type: application/json\r\n"
        "Content-Length: 10\r\nConnection: keep-alive\r\nx-request-id: req_7f3c1d2e9a\r\nopenai-processing-ms: 412\r\n"
        "\r\n0123456789NEXT",
        "\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\nTransfer-Encoding: chunked\n"
        "X-Long-Name-Over-Thirty-Two-Bytes-X: v\n\n"
        "4;a=b\r\nwiki\r\n5\r\npedia\r\n0\r\nT: x\r\n\r\nNEXT",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(resps); i++) {
        size_t len = strlen(resps[i]);
        for (size_t cut = 0; cut <= len; cut++) {
            rec_t r;
            rec_init(&r);
            res_t o = parse_cut(resps[i], len, cut, false, &r);
            assert_int_equal(o.rc, GW_DONE);
            assert_int_equal(o.used, len - 4);
            assert_int_equal(r.heads, 1);
            assert_int_equal(r.status, 200);
            assert_true(o.keep);
            if (i == 0) {
                assert_string_equal(r.hdrs, "Server=nginx;Date=Tue, 11 Mar 2025 10:12:31 GMT;"
                                            "Content-Type=application/json;Content-Length=10;Connection=keep-alive;"
                                            "x-request-id=req_7f3c1d2e9a;openai-processing-ms=412;");
                assert_int_equal(r.body.len, 10);
            } else {
                assert_string_equal(r.hdrs, "Transfer-Encoding=chunked;X-Long-Name-Over-Thirty-Two-Bytes-X=v;");
                assert_memory_equal(r.body.data, "wikipedia", 9);
            }
            gw_buf_free(&r.body);
        }
    }
}

static void test_bodiless_statuses(void **state)
{
    static const struct {
        const char *resp;
        bool no_body;
    } cases[] = {
        {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", false},
        {"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\n\r\nhello", true},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        rec_t r;
        rec_init(&r);
        size_t len = strlen(cases[i].resp);
        res_t o = parse_cut(cases[i].resp, len, len, cases[i].no_body, &r);
        assert_int_equal(o.rc, GW_DONE);
        assert_int_equal(r.body.len, 0);
        assert_int_equal(o.used, (size_t)(strstr(cases[i].resp, "\r\n\r\n") + 4 - cases[i].resp));
        assert_true(o.keep);
        gw_buf_free(&r.body);
    }
}

static void test_framing_refusals(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nx",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/0.9 200 OK\r\n\r\n",
        "HXTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 OK\rX\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        "HTTP/1.1 100 Continue\r\nX:\x01\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", /* 1xx heads are checked too */
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        size_t len = strlen(bad[i]);
        for (size_t cut = 0; cut <= len; cut += 7) {
            rec_t r;
            rec_init(&r);
            res_t o = parse_cut(bad[i], len, cut, false, &r);
            assert_int_equal(o.rc, GW_EINVAL);
            gw_buf_free(&r.body);
        }
    }
}

static void test_accepted_variants(void **state)
{
    static const struct {
        const char *resp;
        int status;
        const char *hdrs;
        const char *body;
        bool keep;
    } cases[] = {
        {"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", 200, "Content-Length=1;", "x", true}, /* no reason */
        {"HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nx", 200, "Content-Length=1;", "x", true},
        {"HTTP/1.1 404 N\tot \xc3\xa9\r\nContent-Length: 1\r\n\r\nx", 404, "Content-Length=1;", "x", true},
        {"HTTP/1.1 200 OK\nContent-Length: 1\n\nx", 200, "Content-Length=1;", "x", true}, /* bare LF */
        {"HTTP/1.1 200 OK\r\nX-A: \t a b \t\r\nContent-Length: 0\r\n\r\n", 200, "X-A=a b;Content-Length=0;", "", true},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 200,
         "Connection=keep-alive;Transfer-Encoding=chunked;", "x", false}, /* chunked on 1.0: not reused */
        {"HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 1\r\n\r\nx", 200,
         "Connection=foo, close;Content-Length=1;", "x", false},
        {"HTTP/1.1 103 Early Hints\r\nContent-Length: zz\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 200,
         "Content-Length=1;", "x", true}, /* a 1xx head's framing fields are not read */
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\t;x\r\nx\r\n0\r\nContent-Length: 9\r\n\r\n", 200,
         "Transfer-Encoding=chunked;", "x", true}, /* BWS before an extension; trailers dropped */
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        rec_t r;
        rec_init(&r);
        size_t len = strlen(cases[i].resp);
        res_t o = parse_cut(cases[i].resp, len, len / 2, false, &r);
        assert_int_equal(o.rc, GW_DONE);
        assert_int_equal(o.used, len);
        assert_int_equal(r.status, cases[i].status);
        assert_string_equal(r.hdrs, cases[i].hdrs);
        assert_int_equal(r.body.len, strlen(cases[i].body));
        assert_int_equal(o.keep, cases[i].keep);
        gw_buf_free(&r.body);
    }
}

static void test_trailer_bounds(void **state)
{
    /* trailers count with the head against the cap: a response exactly at it passes */
    static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT: 1\r\n\r\n";
    size_t head = strlen("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), trailers = strlen("T: 1\r\n\r\n");
    for (int extra = 0; extra < 2; extra++) {
        gw_http_resp_t p;
        rec_t r;
        rec_init(&r);
        gw_http_resp_init(&p, head + trailers - (size_t)extra);
        gw_http_resp_start(&p, &cbs, &r);
        assert_int_equal(feed_all(&p, resp, sizeof(resp) - 1, 3, NULL), extra ? GW_TOOBIG : GW_DONE);
        gw_http_resp_free(&p);
        gw_buf_free(&r.body);
    }
    /* and their fields with the head's */
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    for (int extra = 0; extra < 2; extra++) {
        gw_buf_reset(&b);
        gw_buf_append_lit(&b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
        for (int i = 0; i < GW_HTTP_MAX_HEADERS - 1 + extra; i++)
            gw_buf_appendf(&b, "T%d: v\r\n", i);
        gw_buf_append_lit(&b, "\r\n");
        gw_http_resp_t p;
        rec_t r;
        rec_init(&r);
        gw_http_resp_init(&p, 1 << 20);
        gw_http_resp_start(&p, &cbs, &r);
        assert_int_equal(feed_all(&p, b.data, b.len, 100, NULL), extra ? GW_TOOBIG : GW_DONE);
        gw_http_resp_free(&p);
        gw_buf_free(&r.body);
    }
    gw_buf_free(&b);
}

static void test_big_head_byte_by_byte(void **state)
{
    /* the buffer of a split head grows (and moves) while fields are already parsed */
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 80; i++)
        gw_buf_appendf(&b, "X-Header-%02d: value %d\r\n", i, i);
    gw_buf_append_lit(&b, "Content-Length: 2\r\n\r\nok");
    gw_http_resp_t p;
    rec_t r;
    rec_init(&r);
    gw_http_resp_init(&p, 0);
    gw_http_resp_start(&p, &cbs, &r);
    size_t used = 0;
    assert_int_equal(feed_all(&p, b.data, b.len, 1, &used), GW_DONE);
    assert_int_equal(used, b.len);
    assert_non_null(strstr(r.hdrs, "X-Header-00=value 0;"));
    assert_non_null(strstr(r.hdrs, "X-Header-79=value 79;Content-Length=2;"));
    assert_memory_equal(r.body.data, "ok", 2);
    gw_http_resp_free(&p);
    gw_buf_free(&r.body);
    gw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked_and_trailers),
        cmocka_unit_test(test_interim_skipped),
        cmocka_unit_test(test_close_delimited_and_truncation),
        cmocka_unit_test(test_keep_alive_rules),
        cmocka_unit_test(test_head_request_has_no_body),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_head_cap),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_empty_header_value_and_stop),
        cmocka_unit_test(test_every_two_piece_split),
        cmocka_unit_test(test_bodiless_statuses),
        cmocka_unit_test(test_framing_refusals),
        cmocka_unit_test(test_accepted_variants),
        cmocka_unit_test(test_trailer_bounds),
        cmocka_unit_test(test_big_head_byte_by_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
