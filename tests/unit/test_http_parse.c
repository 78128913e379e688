/* Unit tests for the shared HTTP/1.1 parsing pieces (net/http_parse.c): the control-byte scans
 * against a naive scan at every offset, the field-line tokenizer (fast and general paths, every
 * refusal, incomplete input at every offset), the framing fields (Content-Length, Transfer-Encoding,
 * Connection) and the chunked decoder (every split, every refusal, its bounds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"
#include "net/http_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Scans */

static size_t naive(const char *b, size_t i, size_t len, unsigned char lim)
{
    for (; i < len; i++)
        if ((unsigned char)b[i] <= lim || (unsigned char)b[i] == 0x7f)
            return i;
    return len;
}

static void test_scans_match_naive(void **state)
{
    (void)state;
    static const unsigned char stops[] = {0x00, 0x01, '\t', '\n', '\r', 0x1f, ' ', 0x7f};
    char buf[80];
    for (size_t len = 0; len <= 70; len++) {
        for (size_t at = 0; at <= len; at++) {
            for (size_t s = 0; s < sizeof(stops); s++) {
                /* printable and obs-text bytes around one stop byte (or none when at == len) */
                for (size_t k = 0; k < len; k++)
                    buf[k] = (char)(k % 3 == 0 ? 'a' + k % 26 : k % 3 == 1 ? 0x80 + k : '~');
                if (at < len)
                    buf[at] = (char)stops[s];
                for (size_t from = 0; from <= len; from++) {
                    assert_int_equal(gw_http_scan_ctl(buf, from, len), naive(buf, from, len, 0x1f));
                    assert_int_equal(gw_http_scan_ctl_sp(buf, from, len), naive(buf, from, len, 0x20));
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Field lines */

typedef struct {
    gw_http_header_t f[GW_HTTP_MAX_HEADERS];
    uint8_t cand[GW_HTTP_MAX_HEADERS];
    size_t n, n_cand, pos;
    const char *why;
} fl_t;

static int fields(fl_t *t, const char *s, size_t len)
{
    memset(t, 0, sizeof(*t));
    return gw_http_parse_fields(s, len, &t->pos, t->f, &t->n, GW_HTTP_MAX_HEADERS, t->cand, &t->n_cand, &t->why);
}

static bool is(gw_str_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.base, lit, s.len) == 0;
}

static void test_fields_basic(void **state)
{
    (void)state;
    /* padded so that the vector path runs for each line, and again unpadded (general path) */
    static const char head[] = "Host: a.example\r\nX-Empty:\r\nX-Ows: \t v  w \t \r\n"
                               "x_token!#$%&'*+.^`|~: 1\nLast: z\r\n\r\n";
    for (int pad = 0; pad < 2; pad++) {
        char buf[512];
        size_t len = strlen(head);
        memcpy(buf, head, len);
        if (pad) {
            memset(buf + len, 'P', 64);
            len += 64;
        }
        fl_t t;
        assert_int_equal(fields(&t, buf, len), GW_DONE);
        assert_int_equal(t.pos, strlen(head));
        assert_int_equal(t.n, 5);
        assert_true(is(t.f[0].name, "Host") && is(t.f[0].value, "a.example"));
        assert_true(is(t.f[1].name, "X-Empty") && is(t.f[1].value, ""));
        assert_true(is(t.f[2].name, "X-Ows") && is(t.f[2].value, "v  w"));
        assert_true(is(t.f[3].name, "x_token!#$%&'*+.^`|~") && is(t.f[3].value, "1"));
        assert_true(is(t.f[4].name, "Last") && is(t.f[4].value, "z"));
        assert_int_equal(t.n_cand, 0);
    }
}

static void test_fields_long_and_odd_lines(void **state)
{
    (void)state;
    /* names past 16 and 32 bytes, values past 48, HTAB and obs-text inside values */
    char buf[1024];
    int n = snprintf(buf, sizeof(buf),
                     "openai-processing-ms: 412\r\nX-A-Very-Long-Header-Name-Beyond-Thirty-Two: %s\r\n"
                     "X-Tab: a\tb\r\nX-Utf8: caf\xc3\xa9\r\nX-Digits-123: 4\r\n\r\n"
                     "BODY-BODY-BODY-BODY-BODY-BODY-BODY-BODY",
                     "0123456789012345678901234567890123456789012345678901234567890123456789");
    fl_t t;
    assert_int_equal(fields(&t, buf, (size_t)n), GW_DONE);
    assert_int_equal(t.n, 5);
    assert_true(is(t.f[0].name, "openai-processing-ms") && is(t.f[0].value, "412"));
    assert_int_equal(t.f[1].name.len, 43);
    assert_int_equal(t.f[1].value.len, 70);
    assert_true(is(t.f[2].value, "a\tb"));
    assert_true(is(t.f[3].value, "caf\xc3\xa9"));
    assert_true(is(t.f[4].name, "X-Digits-123"));
}

static void test_fields_incomplete_everywhere(void **state)
{
    (void)state;
    static const char head[] = "Content-Type: application/json\r\nX-B: 1\nAccept: */*\r\n\r\n";
    size_t len = strlen(head);
    for (size_t cut = 0; cut < len; cut++) {
        fl_t t;
        int rc = fields(&t, head, cut);
        assert_int_equal(rc, GW_AGAIN);
        /* the incomplete line holds no LF, complete lines are stored */
        assert_null(memchr(head + t.pos, '\n', cut - t.pos));
        size_t lines = 0;
        for (size_t k = 0; k < t.pos; k++)
            lines += head[k] == '\n';
        assert_int_equal(t.n, lines);
        /* and parsing resumes from there */
        fl_t u = t;
        int rc2 = gw_http_parse_fields(head, len, &u.pos, u.f, &u.n, GW_HTTP_MAX_HEADERS, u.cand, &u.n_cand, &u.why);
        assert_int_equal(rc2, GW_DONE);
        assert_int_equal(u.n, 3);
        assert_int_equal(u.pos, len);
        assert_true(is(u.f[0].value, "application/json") && is(u.f[2].value, "*/*"));
    }
}

static void test_fields_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "A: b\r\n one\r\n\r\n",   /* obs-fold */
        "A: b\r\n\tone\r\n\r\n",  /* obs-fold */
        " A: b\r\n\r\n",          /* leading whitespace */
        "A: b\rc\r\n\r\n",        /* bare CR in a value */
        "A: b\r\r\n\r\n",         /* CR before CRLF */
        "A: b\r\n\rX\r\n",        /* bare CR at a line start */
        "A : b\r\n\r\n",          /* space before the colon */
        ": b\r\n\r\n",            /* empty name */
        "A\r\n\r\n",              /* no colon */
        "A: b\x01\r\n\r\n",       /* control byte */
        "A: b\x7f\r\n\r\n",       /* DEL */
        "A(: b\r\n\r\n",          /* separators in a name */
        "A/: b\r\n\r\n",
        "A@: b\r\n\r\n",
        "A{: b\r\n\r\n",
        "A\": b\r\n\r\n",
        "A\xc3: b\r\n\r\n",       /* non-ASCII in a name */
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        for (int pad = 0; pad < 2; pad++) {
            char buf[256];
            size_t len = strlen(bad[i]);
            memcpy(buf, bad[i], len);
            if (pad) {
                memset(buf + len, 'P', 64);
                len += 64;
            }
            fl_t t;
            assert_int_equal(fields(&t, buf, len), GW_EINVAL);
            assert_non_null(t.why);
        }
    }
    /* a NUL byte too (strlen would stop at it) */
    static const char nul[] = "A: b\0c\r\n\r\n";
    fl_t t;
    assert_int_equal(fields(&t, nul, sizeof(nul) - 1), GW_EINVAL);
}

static void test_fields_limit_and_candidates(void **state)
{
    (void)state;
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "Expect: x\r\nConnection: y\r\ncontent-length: 1\r\nProxy-Connection: z\r\n"
                          "Transfer-Encoding: c\r\nServer: nginx\r\n");
    for (int i = 0; i < GW_HTTP_MAX_HEADERS - 6; i++)
        gw_buf_appendf(&b, "h%d: v\r\n", i);
    gw_buf_append_lit(&b, "\r\n");
    fl_t t;
    assert_int_equal(fields(&t, b.data, b.len), GW_DONE);
    assert_int_equal(t.n, GW_HTTP_MAX_HEADERS);
    /* the names whose length is one of a framing field's: expect, connection, content-length,
     * proxy-connection, transfer-encoding, and Server (6, like expect) */
    assert_int_equal(t.n_cand, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(t.cand[i], i);
    /* one more is one too many */
    b.len -= 2;
    gw_buf_append_lit(&b, "one: more\r\n\r\n");
    assert_int_equal(fields(&t, b.data, b.len), GW_TOOBIG);
    gw_buf_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * Framing fields */

static int framing(const char *head, gw_http_framing_t *fr)
{
    fl_t t;
    size_t len = strlen(head);
    assert_int_equal(fields(&t, head, len), GW_DONE);
    return gw_http_framing_read(t.f, t.cand, t.n_cand, fr, &t.why);
}

static void test_framing_content_length(void **state)
{
    (void)state;
    gw_http_framing_t fr;
    assert_int_equal(framing("Content-Length: 1344\r\n\r\n", &fr), GW_OK);
    assert_true(fr.has_content_length);
    assert_int_equal(fr.content_length, 1344);
    assert_int_equal(framing("content-LENGTH:0\r\n\r\n", &fr), GW_OK);
    assert_true(fr.has_content_length && fr.content_length == 0);
    assert_int_equal(framing("Content-Length: 0000000000000000000000000000005\r\n\r\n", &fr), GW_OK);
    assert_int_equal(fr.content_length, 5);
    assert_int_equal(framing("Content-Length: 9999999999999999999\r\n\r\n", &fr), GW_OK);
    assert_true(fr.content_length == 9999999999999999999ull);
    static const char *const bad[] = {
        "Content-Length: 18446744073709551616\r\n\r\n", /* 20 digits */
        "Content-Length: 10000000000000000000\r\n\r\n",
        "Content-Length:\r\n\r\n",
        "Content-Length: 1e3\r\n\r\n",
        "Content-Length: -1\r\n\r\n",
        "Content-Length: +5\r\n\r\n",
        "Content-Length: 5, 5\r\n\r\n",
        "Content-Length: 5 5\r\n\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", /* even the same value */
        "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++)
        assert_int_equal(framing(bad[i], &fr), GW_EINVAL);
    /* OWS around the value is not part of it */
    assert_int_equal(framing("Content-Length: \t7\t \r\n\r\n", &fr), GW_OK);
    assert_int_equal(fr.content_length, 7);
}

static void test_framing_transfer_encoding(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        int te;
    } cases[] = {
        {"Transfer-Encoding: chunked\r\n\r\n", GW_HTTP_TE_CHUNKED},
        {"transfer-encoding: CHUNKED \r\n\r\n", GW_HTTP_TE_CHUNKED},
        {"Transfer-Encoding: gzip, chunked\r\n\r\n", GW_HTTP_TE_UNSUPPORTED},
        {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", GW_HTTP_TE_UNSUPPORTED},
        {"Transfer-Encoding: chunked, identity\r\n\r\n", GW_HTTP_TE_INVALID},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", GW_HTTP_TE_INVALID},
        {"Transfer-Encoding: chunked, chunked\r\n\r\n", GW_HTTP_TE_INVALID},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", GW_HTTP_TE_INVALID},
        {"Transfer-Encoding: , chunked\r\n\r\n", GW_HTTP_TE_INVALID},
        {"Transfer-Encoding: chunked,\r\n\r\n", GW_HTTP_TE_INVALID},
        {"Transfer-Encoding:\r\n\r\n", GW_HTTP_TE_INVALID},
        {"Transfer-Encoding: identity\r\n\r\n", GW_HTTP_TE_INVALID},
        {"Transfer-Encoding: chunked;q=1\r\n\r\n", GW_HTTP_TE_INVALID},
        {"Transfer-Encodings: chunked\r\n\r\n", GW_HTTP_TE_NONE}, /* another field */
        {"Transfer-Encodingx: chunked\r\n\r\n", GW_HTTP_TE_NONE},
        {"Host: a\r\n\r\n", GW_HTTP_TE_NONE},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        gw_http_framing_t fr;
        assert_int_equal(framing(cases[i].head, &fr), GW_OK);
        assert_int_equal(fr.te, cases[i].te);
    }
}

static void test_framing_connection_and_expect(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        bool close, keep_alive;
    } cases[] = {
        {"Connection: close\r\n\r\n", true, false},
        {"Connection: Keep-Alive\r\n\r\n", false, true},
        {"Connection: foo, CLOSE\r\n\r\n", true, false},
        {"Connection: close , foo\r\n\r\n", true, false},
        {"Connection: ,,keep-alive,\r\n\r\n", false, true},
        {"Connection: keep-alive, close\r\n\r\n", true, true},
        {"Connection: closed\r\n\r\n", false, false},
        {"Connection: keep-alive-ish\r\n\r\n", false, false},
        {"Connection: upgrade\r\n\r\n", false, false},
        {"Proxy-Connection: close\r\n\r\n", true, false},
        {"Connection: foo\r\nConnection: close\r\n\r\n", true, false},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        gw_http_framing_t fr;
        assert_int_equal(framing(cases[i].head, &fr), GW_OK);
        assert_int_equal(fr.close, cases[i].close);
        assert_int_equal(fr.keep_alive, cases[i].keep_alive);
        assert_int_equal(fr.expect, -1);
    }
    gw_http_framing_t fr;
    assert_int_equal(framing("Host: a\r\nExpect: 100-continue\r\nExpect: other\r\n\r\n", &fr), GW_OK);
    assert_int_equal(fr.expect, 1);
}

/* ---------------------------------------------------------------------------------------------
 * Chunked bodies */

typedef struct {
    gw_buf_t out;
    int rc;
    size_t used;
    const char *why;
} chunk_run_t;

/* Decodes s in pieces of at most step bytes; stops at the end of the body or an error. */
static void chunk_run(const char *s, size_t len, size_t step, size_t max_tr, size_t max_fields, chunk_run_t *r)
{
    gw_http_chunked_t d;
    gw_http_chunked_init(&d, max_tr, max_fields);
    gw_buf_init(&r->out, GW_BUF_UNLIMITED);
    size_t off = 0;
    r->rc = GW_AGAIN;
    while (off < len) {
        size_t n = GW_MIN(step, len - off), used = 0;
        gw_str_t piece;
        r->rc = gw_http_chunked_decode(&d, s + off, n, &used, &piece);
        assert_true(used <= n);
        off += used;
        if (r->rc == GW_OK) {
            assert_true(piece.len > 0 && piece.base >= s && piece.base + piece.len <= s + off);
            gw_buf_append(&r->out, piece.base, piece.len);
            continue;
        }
        if (r->rc == GW_AGAIN) {
            assert_int_equal(used, n);
            continue;
        }
        break;
    }
    r->used = off;
    r->why = d.why;
    /* errors and the end are sticky */
    if (r->rc != GW_AGAIN && r->rc != GW_OK) {
        size_t used = 1;
        gw_str_t piece;
        assert_int_equal(gw_http_chunked_decode(&d, "0", 1, &used, &piece), r->rc);
        assert_int_equal(used, 0);
    }
}

static void test_chunked_every_split(void **state)
{
    (void)state;
    static const char body[] = "5;ext=1;q=\"a b\"\r\nhello\r\n6 ; e\r\n world\r\n000A\r\n0123456789\r\n"
                               "0\r\nX-Checksum: 1\r\nX-Other:\t2 \r\n\r\nNEXT";
    size_t len = sizeof(body) - 1;
    for (size_t step = 1; step <= len; step++) {
        chunk_run_t r;
        chunk_run(body, len, step, 1024, 8, &r);
        assert_int_equal(r.rc, GW_DONE);
        assert_int_equal(r.used, len - 4); /* stops before NEXT */
        assert_int_equal(r.out.len, 21);
        assert_memory_equal(r.out.data, "hello world0123456789", 21);
        gw_buf_free(&r.out);
    }
    /* every two-piece split, the second piece given with the rest */
    for (size_t cut = 0; cut <= len; cut++) {
        gw_http_chunked_t d;
        gw_http_chunked_init(&d, 1024, 8);
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        size_t off = 0;
        int rc = GW_AGAIN;
        const size_t ends[2] = {cut, len};
        for (int k = 0; k < 2 && rc != GW_DONE; k++) {
            while (off < ends[k]) {
                size_t used;
                gw_str_t piece;
                rc = gw_http_chunked_decode(&d, body + off, ends[k] - off, &used, &piece);
                off += used;
                if (rc == GW_OK)
                    gw_buf_append(&out, piece.base, piece.len);
                else
                    break;
            }
        }
        assert_int_equal(rc, GW_DONE);
        assert_int_equal(off, len - 4);
        assert_int_equal(out.len, 21);
        gw_buf_free(&out);
    }
}

static void test_chunked_refused(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int rc;
    } cases[] = {
        {"zz\r\n", GW_EINVAL},
        {"\r\n", GW_EINVAL},
        {";ext\r\n", GW_EINVAL},
        {"3 \r\nabc\r\n0\r\n\r\n", GW_EINVAL},  /* whitespace, then no extension */
        {"3\nabc\r\n0\r\n\r\n", GW_EINVAL},     /* LF-only size line */
        {"3\rabc\r\n0\r\n\r\n", GW_EINVAL},
        {"3\r\nabcX\r\n0\r\n\r\n", GW_EINVAL},  /* data longer than its size */
        {"3\r\nabc\n0\r\n\r\n", GW_EINVAL},     /* LF-only after data */
        {"3\r\nabc\r0\r\n\r\n", GW_EINVAL},
        {"3;a\x01\r\nabc\r\n0\r\n\r\n", GW_EINVAL}, /* control byte in an extension */
        {"3;a\nb\r\nabc\r\n0\r\n\r\n", GW_EINVAL},
        {"-3\r\n", GW_EINVAL},
        {"0x3\r\n", GW_EINVAL},
        {"1ffffffffffffffff\r\n", GW_EINVAL}, /* over 2^64 */
        {"10000000000000000\r\n", GW_EINVAL}, /* 2^64 */
        {"0\r\n X: 1\r\n\r\n", GW_EINVAL},    /* folded trailer */
        {"0\r\nX : 1\r\n\r\n", GW_EINVAL},
        {"0\r\nX: 1\r2\r\n\r\n", GW_EINVAL},
        {"0\r\nX: \x7f\r\n\r\n", GW_EINVAL},
        {"0\r\n\rX", GW_EINVAL},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        for (size_t step = 1; step <= 64; step *= 8) {
            chunk_run_t r;
            chunk_run(cases[i].body, strlen(cases[i].body), step, 1024, 8, &r);
            assert_int_equal(r.rc, cases[i].rc);
            assert_non_null(r.why);
            gw_buf_free(&r.out);
        }
    }
    /* sizes that fit: 2^60 - 1, and leading zeros */
    chunk_run_t r;
    chunk_run("fffffffffffffff\r\nab", 19, 64, 1024, 8, &r);
    assert_int_equal(r.rc, GW_OK); /* its first data came out */
    assert_int_equal(r.out.len, 2);
    gw_buf_free(&r.out);
    static const char zeros[] = "00000000000000000000000003\r\nabc\r\n0\r\n\n";
    chunk_run(zeros, strlen(zeros), 5, 1024, 8, &r);
    assert_int_equal(r.rc, GW_DONE); /* the trailer section may end in a bare LF */
    assert_int_equal(r.used, strlen(zeros));
    assert_int_equal(r.out.len, 3);
    gw_buf_free(&r.out);
}

static void test_chunked_bounds(void **state)
{
    (void)state;
    /* a size line of exactly GW_HTTP_MAX_CHUNK_LINE bytes (CR included) passes, one more fails */
    for (int extra = 0; extra < 2; extra++) {
        gw_buf_t b;
        gw_buf_init(&b, GW_BUF_UNLIMITED);
        gw_buf_append_lit(&b, "1;");
        while (b.len < GW_HTTP_MAX_CHUNK_LINE - 1 + (size_t)extra)
            gw_buf_append_byte(&b, 'e');
        gw_buf_append_lit(&b, "\r\nx\r\n0\r\n\r\n");
        chunk_run_t r;
        chunk_run(b.data, b.len, 100, 1024, 8, &r);
        assert_int_equal(r.rc, extra ? GW_EINVAL : GW_DONE);
        gw_buf_free(&r.out);
        gw_buf_free(&b);
    }
    /* trailer bytes: the section (its final CRLF included) within the room */
    static const char tr[] = "0\r\nA: 1\r\nB: 2\r\n\r\n"; /* 14 bytes after "0\r\n" */
    chunk_run_t r;
    chunk_run(tr, strlen(tr), 3, 14, 8, &r);
    assert_int_equal(r.rc, GW_DONE);
    gw_buf_free(&r.out);
    chunk_run(tr, strlen(tr), 3, 13, 8, &r);
    assert_int_equal(r.rc, GW_TOOBIG);
    gw_buf_free(&r.out);
    /* trailer fields */
    chunk_run(tr, strlen(tr), 3, 1024, 2, &r);
    assert_int_equal(r.rc, GW_DONE);
    gw_buf_free(&r.out);
    chunk_run(tr, strlen(tr), 3, 1024, 1, &r);
    assert_int_equal(r.rc, GW_TOOBIG);
    gw_buf_free(&r.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scans_match_naive),
        cmocka_unit_test(test_fields_basic),
        cmocka_unit_test(test_fields_long_and_odd_lines),
        cmocka_unit_test(test_fields_incomplete_everywhere),
        cmocka_unit_test(test_fields_refused),
        cmocka_unit_test(test_fields_limit_and_candidates),
        cmocka_unit_test(test_framing_content_length),
        cmocka_unit_test(test_framing_transfer_encoding),
        cmocka_unit_test(test_framing_connection_and_expect),
        cmocka_unit_test(test_chunked_every_split),
        cmocka_unit_test(test_chunked_refused),
        cmocka_unit_test(test_chunked_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
