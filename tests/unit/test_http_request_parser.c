/* Request parser: framing, limits and the statuses each refusal maps to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_post),         cmocka_unit_test(test_pipelined_any_split),
        cmocka_unit_test(test_limits),              cmocka_unit_test(test_malformed_and_smuggling),
        cmocka_unit_test(test_expect_continue_flag), cmocka_unit_test(test_http10_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
