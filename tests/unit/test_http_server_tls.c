/* Unit tests for TLS termination in the HTTP/1.1 server (net/http_server.c over net/tls.c): the
 * server runs on a real libuv loop in the test's thread on a 127.0.0.1 ephemeral port, with a
 * certificate made at run time; a blocking OpenSSL client runs in a second thread and records what
 * it saw, and the test thread checks both sides once the client is done. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "net/http_response.h"
#include "net/http_server.h"
#include "net/tls.h"

#include "tls_testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MB (1024 * 1024)
#define BIG_BODY (5 * MB)
#define STREAM_PIECE (16 * 1024)

static tu_tls_certs_t certs;       /* the server's CA, certificate and key */
static tu_tls_certs_t other_certs; /* an unrelated CA (and a second server identity) */

/* Byte i of every large body: position-dependent, so a lost, repeated or reordered piece shows. */
static inline char pattern_byte(size_t i)
{
    return (char)('a' + (i + i / 4099) % 26);
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    return h;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------------------------------
 * Server side (test thread): the server under test and a handler that answers by path */

typedef struct {
    size_t sent;
    size_t total;
    bool streaming;
} stream_t;

static struct {
    uv_loop_t loop;
    uv_timer_t guard;
    gw_http_server_t *srv;
    gw_tls_ctx_t *tls;
    uint16_t port;
    int requests, response_ends, aborts, drains, opens, closes;
    int max_status;
    size_t max_pending;
    size_t stream_total;
    size_t last_body_len;
    uint64_t last_body_sum;
} S;

static void stream_pump(gw_http_req_t *req)
{
    stream_t *st = req->data;
    char piece[STREAM_PIECE];
    bool gone = req->aborted;
    while (st->sent < st->total && !gw_http_over_high_water(req) && !gone) {
        size_t n = GW_MIN(sizeof(piece), st->total - st->sent);
        for (size_t i = 0; i < n; i++)
            piece[i] = pattern_byte(st->sent + i);
        st->sent += n;
        gone = gw_http_response_body(req, piece, n) != GW_OK;
        S.max_pending = GW_MAX(S.max_pending, gw_http_pending_bytes(req));
    }
    if (st->sent >= st->total || gone) {
        req->data = NULL;
        free(st);
        gw_http_response_end(req);
    }
}

static void on_request(gw_http_req_t *req, void *ud)
{
    S.requests++;
    static const gw_http_header_t text[] = {{GW_STR("Content-Type"), GW_STR("text/plain")}};
    if (gw_str_eq_lit(req->path, "/hello")) {
        gw_http_respond_simple(req, 200, GW_STR("text/plain"), GW_STR("hello over tls\n"), NULL, 0);
        return;
    }
    if (gw_str_eq_lit(req->path, "/stream") || gw_str_eq_lit(req->path, "/big")) {
        /* /stream: chunked, written while under the high-water mark, resumed by on_drain.
         * /big: one Content-Length body handed over in a single call. */
        stream_t *st = gw_calloc(1, sizeof(*st));
        st->total = S.stream_total ? S.stream_total : BIG_BODY;
        req->data = st;
        if (gw_str_eq_lit(req->path, "/big")) {
            char *body = gw_malloc(st->total);
            for (size_t i = 0; i < st->total; i++)
                body[i] = pattern_byte(i);
            gw_http_response_head(req, 200, text, 1, (int64_t)st->total);
            gw_http_response_body(req, body, st->total);
            S.max_pending = GW_MAX(S.max_pending, gw_http_pending_bytes(req));
            free(body);
            free(st);
            req->data = NULL;
            gw_http_response_end(req);
            return;
        }
        st->streaming = true;
        gw_http_response_head(req, 200, text, 1, -1);
        stream_pump(req);
        return;
    }
    if (gw_str_eq_lit(req->path, "/abort")) {
        /* a response cut short (an upstream failing mid-body) */
        gw_http_response_head(req, 200, text, 1, -1);
        char piece[8192];
        memset(piece, 'x', sizeof(piece));
        for (int i = 0; i < 8; i++)
            gw_http_response_body(req, piece, sizeof(piece));
        gw_http_response_abort(req);
        return;
    }
    /* anything else: echo method, target and a digest of the body */
    S.last_body_len = req->body.len;
    S.last_body_sum = fnv1a(req->body.data, req->body.len);
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    gw_buf_appendf(&out, "%.*s %.*s len=%zu sum=%016llx", (int)req->method.len, req->method.base, (int)req->target.len,
                   req->target.base, req->body.len, (unsigned long long)S.last_body_sum);
    gw_http_respond_simple(req, 200, GW_STR("text/plain"), gw_buf_str(&out), NULL, 0);
    gw_buf_free(&out);
}

static void on_abort(gw_http_req_t *req, void *ud)
{
    S.aborts++;
    stream_t *st = req->data;
    if (st && st->streaming) {
        req->data = NULL;
        free(st);
        gw_http_response_end(req);
    }
}

static void on_drain(gw_http_req_t *req, void *ud)
{
    S.drains++;
    if (req->data)
        stream_pump(req);
}

static void on_response_end(gw_http_req_t *req, void *ud)
{
    S.response_ends++;
    S.max_status = GW_MAX(S.max_status, req->status);
}

static void on_conn_open(void *ud)
{
    S.opens++;
}

static void on_conn_close(void *ud)
{
    S.closes++;
}

static const gw_http_handler_t handler = {
    .on_request = on_request,
    .on_abort = on_abort,
    .on_drain = on_drain,
    .on_response_end = on_response_end,
    .on_conn_open = on_conn_open,
    .on_conn_close = on_conn_close,
};

static void on_guard(uv_timer_t *t)
{
}

static gw_tls_ctx_t *server_ctx(const tu_tls_certs_t *c)
{
    char err[256] = "";
    gw_tls_ctx_t *ctx = gw_tls_ctx_new_server(gw_str_c(c->cert_pem), gw_str_c(c->key_pem), err, sizeof(err));
    if (ctx == NULL)
        fail_msg("server context: %s", err);
    return ctx;
}

/* Starts the server: TLS with the test certificate unless plain; limits may be NULL. */
static void server_start(const gw_http_limits_t *limits, bool plain)
{
    gw_http_limits_t l;
    if (limits)
        l = *limits;
    else
        gw_http_limits_default(&l);
    if (!plain) {
        S.tls = server_ctx(&certs);
        l.tls = S.tls;
    }
    int fd = gw_http_listen_socket("127.0.0.1", 0, 128);
    assert_true(fd >= 0);
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    S.port = ntohs(sin.sin_port);
    S.srv = gw_http_server_new(&S.loop, fd, &l, &handler);
    assert_non_null(S.srv);
}

/* Stops and frees the server and checks that nothing is left on the loop. */
static void server_finish(void)
{
    gw_http_server_stop_accepting(S.srv);
    gw_http_server_close_all(S.srv);
    gw_http_server_free(S.srv);
    S.srv = NULL;
    gw_tls_ctx_free(S.tls); /* the server holds its own reference */
    S.tls = NULL;
    uv_close((uv_handle_t *)&S.guard, NULL);
    alarm(20);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    alarm(0);
    assert_int_equal(uv_loop_close(&S.loop), 0);
    assert_int_equal(S.opens, S.closes);
}

/* ------------------------------------------------------------------------------------------------
 * Client side (second thread): blocking sockets and OpenSSL. Failures are recorded, not asserted
 * (cmocka's asserts must stay on the test thread). */

enum { CL_OPEN, CL_EOF_NOTIFY, CL_EOF_UNEXPECTED, CL_EOF_TCP, CL_ERROR };

typedef struct {
    int fd;
    SSL *ssl;           /* NULL on a plain connection */
    gw_buf_t in;        /* received, not yet parsed */
    gw_http_resp_t rp;
    int state;          /* CL_*: how the connection ended */
    size_t read_piece;  /* bytes per read (slow readers use little pieces) */
    unsigned pause_us;  /* sleep after each read */
} cl_t;

typedef struct {
    int status;
    gw_buf_t body;
    bool verify_pattern; /* check the body against pattern_byte instead of keeping it */
    size_t body_len;
    size_t bad_bytes;
    size_t stop_after;   /* stop reading once this many body bytes arrived (0: never) */
    bool keep_alive;
} resp_t;

static struct {
    pthread_t thread;
    atomic_bool done;
    atomic_int phase; /* for tests that interleave client steps with server-side actions */
    char fail[512];
    /* observations */
    char version[16];
    char alpn[32];
    char peer_cn[64];
    long verify_result;
    uint64_t elapsed_ms;
    int end_state;
    int n_ok;
} C;

#define CL_CHECK(cond, ...)                                                                                            \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            if (C.fail[0] == '\0') {                                                                                   \
                int o_ = snprintf(C.fail, sizeof(C.fail), "%s:%d: ", __FILE__, __LINE__);                               \
                snprintf(C.fail + o_, sizeof(C.fail) - (size_t)o_, __VA_ARGS__);                                       \
            }                                                                                                          \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

static int resp_on_head(void *ud, int status, const gw_http_header_t *headers, size_t n_headers)
{
    resp_t *r = ud;
    r->status = status;
    return GW_OK;
}

static int resp_on_body(void *ud, const char *p, size_t n)
{
    resp_t *r = ud;
    if (r->verify_pattern) {
        for (size_t i = 0; i < n; i++)
            if (p[i] != pattern_byte(r->body_len + i))
                r->bad_bytes++;
    } else {
        gw_buf_append(&r->body, p, n);
    }
    r->body_len += n;
    return GW_OK;
}

static const gw_http_resp_cbs_t resp_cbs = {resp_on_head, resp_on_body};

static void resp_init(resp_t *r)
{
    memset(r, 0, sizeof(*r));
    gw_buf_init(&r->body, GW_BUF_UNLIMITED);
}

static void resp_free(resp_t *r)
{
    gw_buf_free(&r->body);
}

/* A client context trusting ca_pem; max_version 0 for the library's highest; alpn in wire format
 * (NULL: none offered). */
static SSL_CTX *cl_ctx_new(const char *ca_pem, int max_version, const char *alpn, size_t alpn_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (max_version)
        SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    BIO *b = BIO_new_mem_buf(ca_pem, -1);
    X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
    X509_free(ca);
    BIO_free(b);
    if (alpn)
        SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)alpn, (unsigned)alpn_len);
    return ctx;
}

/* A TCP connection to the server (recv timeout 10 s, so a broken server fails the test instead of
 * hanging it); rcvbuf > 0 shrinks the receive buffer, for slow readers. */
static bool cl_tcp(cl_t *cl, int rcvbuf)
{
    memset(cl, 0, sizeof(*cl));
    gw_buf_init(&cl->in, GW_BUF_UNLIMITED);
    gw_http_resp_init(&cl->rp, 0);
    cl->read_piece = 16384;
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cl->fd < 0)
        return false;
    struct timeval tv = {10, 0};
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (rcvbuf > 0)
        setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    int one = 1;
    setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(S.port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    return connect(cl->fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
}

/* TCP + TLS handshake verifying the server as 127.0.0.1. Records version, ALPN and the server's
 * CN in C. False on failure (C.verify_result says why when verification failed). */
static bool cl_connect(cl_t *cl, SSL_CTX *ctx, int rcvbuf)
{
    if (!cl_tcp(cl, rcvbuf))
        return false;
    if (ctx == NULL)
        return true;
    cl->ssl = SSL_new(ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cl->ssl), "127.0.0.1");
    SSL_set_fd(cl->ssl, cl->fd);
    int rc = SSL_connect(cl->ssl);
    C.verify_result = SSL_get_verify_result(cl->ssl);
    if (rc != 1) {
        ERR_clear_error();
        return false;
    }
    snprintf(C.version, sizeof(C.version), "%s", SSL_get_version(cl->ssl));
    const unsigned char *a = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(cl->ssl, &a, &alen);
    snprintf(C.alpn, sizeof(C.alpn), "%.*s", (int)alen, a ? (const char *)a : "");
    X509 *peer = SSL_get1_peer_certificate(cl->ssl);
    if (peer) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, C.peer_cn, sizeof(C.peer_cn));
        X509_free(peer);
    }
    return true;
}

static void cl_close(cl_t *cl)
{
    if (cl->ssl)
        SSL_free(cl->ssl);
    if (cl->fd >= 0)
        close(cl->fd);
    cl->ssl = NULL;
    cl->fd = -1;
    gw_buf_free(&cl->in);
    gw_http_resp_free(&cl->rp);
}

static bool cl_send(cl_t *cl, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        if (cl->ssl) {
            size_t w = 0;
            if (SSL_write_ex(cl->ssl, s, n, &w) != 1)
                return false;
            s += w;
            n -= w;
        } else {
            ssize_t w = send(cl->fd, s, n, MSG_NOSIGNAL);
            if (w <= 0)
                return false;
            s += w;
            n -= (size_t)w;
        }
    }
    return true;
}

static bool cl_send_str(cl_t *cl, const char *s)
{
    return cl_send(cl, s, strlen(s));
}

/* Reads some bytes: > 0, or 0 when the connection ended (cl->state says how), -1 on an error. */
static ssize_t cl_recv(cl_t *cl, char *buf, size_t cap)
{
    if (cl->state != CL_OPEN)
        return 0;
    cap = GW_MIN(cap, cl->read_piece);
    ssize_t got;
    if (cl->ssl) {
        size_t n = 0;
        int rc = SSL_read_ex(cl->ssl, buf, cap, &n);
        if (rc == 1) {
            got = (ssize_t)n;
        } else {
            int e = SSL_get_error(cl->ssl, rc);
            unsigned long code = ERR_peek_last_error();
            if (e == SSL_ERROR_ZERO_RETURN)
                cl->state = CL_EOF_NOTIFY;
            else if (e == SSL_ERROR_SSL && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
                cl->state = CL_EOF_UNEXPECTED;
            else
                cl->state = CL_ERROR;
            ERR_clear_error();
            return cl->state == CL_ERROR ? -1 : 0;
        }
    } else {
        got = recv(cl->fd, buf, cap, 0);
        if (got == 0)
            cl->state = CL_EOF_TCP;
        else if (got < 0)
            cl->state = CL_ERROR;
        if (got <= 0)
            return got;
    }
    if (cl->pause_us)
        usleep(cl->pause_us);
    return got;
}

/* Reads one response. 0 when complete, -1 when the connection ended or broke before its end. */
static int cl_response(cl_t *cl, resp_t *r)
{
    gw_http_resp_start(&cl->rp, &resp_cbs, r);
    char tmp[16384];
    for (;;) {
        if (cl->in.len) {
            size_t used = 0;
            int rc = gw_http_resp_feed(&cl->rp, cl->in.data, cl->in.len, &used);
            if (rc == GW_DONE) {
                gw_buf_consume(&cl->in, used);
                r->keep_alive = gw_http_resp_keep_alive(&cl->rp);
                return 0;
            }
            if (rc != GW_OK)
                return -1;
            gw_buf_reset(&cl->in);
            if (r->stop_after && r->body_len >= r->stop_after)
                return -1;
        }
        ssize_t n = cl_recv(cl, tmp, sizeof(tmp));
        if (n == 0)
            return gw_http_resp_eof(&cl->rp) == GW_DONE ? 0 : -1;
        if (n < 0)
            return -1;
        gw_buf_append(&cl->in, tmp, (size_t)n);
    }
}

/* Waits for the end of the connection: the CL_* state it ended in (CL_OPEN if bytes came). */
static int cl_wait_end(cl_t *cl)
{
    char tmp[4096];
    ssize_t n = cl_recv(cl, tmp, sizeof(tmp));
    return n > 0 ? CL_OPEN : cl->state;
}

/* Sends a request and reads its response into r (resp_init first). */
static bool cl_roundtrip(cl_t *cl, const char *request, resp_t *r)
{
    return cl_send_str(cl, request) && cl_response(cl, r) == 0;
}

static void *client_main(void *arg)
{
    void (*fn)(void) = (void (*)(void))arg;
    fn();
    ERR_clear_error();
    OPENSSL_thread_stop();
    atomic_store(&C.done, true);
    return NULL;
}

/* Runs fn on the client thread while the test thread runs the server's loop; then joins and
 * fails the test with the client's first recorded failure. */
static void run_client(void (*fn)(void), uint64_t timeout_ms)
{
    atomic_store(&C.done, false);
    assert_int_equal(pthread_create(&C.thread, NULL, client_main, (void *)fn), 0);
    alarm((unsigned)(timeout_ms / 1000) + 10); /* a server stuck in a callback kills the run */
    uint64_t deadline = now_ms() + timeout_ms;
    while (!atomic_load(&C.done) && now_ms() < deadline) {
        uv_timer_start(&S.guard, on_guard, 5, 0);
        uv_run(&S.loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&S.guard);
    if (!atomic_load(&C.done))
        fail_msg("client did not finish within %llu ms", (unsigned long long)timeout_ms);
    pthread_join(C.thread, NULL);
    alarm(0);
    if (C.fail[0])
        fail_msg("%s", C.fail);
}

/* Runs the loop for a while (lets the server finish closes after the client is done). */
static void run_for(uint64_t ms)
{
    uint64_t deadline = now_ms() + ms;
    while (now_ms() < deadline) {
        uv_timer_start(&S.guard, on_guard, 5, 0);
        uv_run(&S.loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&S.guard);
}

static int setup(void **state)
{
    memset(&S, 0, sizeof(S));
    memset(&C, 0, sizeof(C));
    assert_int_equal(uv_loop_init(&S.loop), 0);
    uv_timer_init(&S.loop, &S.guard);
    return 0;
}

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("AIGW_TEST_DEBUG"))
        gw_log_level = GW_LOG_DEBUG;
    tu_tls_make_certs(&certs, "aigw test server", 2);
    tu_tls_make_certs(&other_certs, "aigw test server 2", 3);
    return 0;
}

static int group_teardown(void **state)
{
    tu_tls_free_certs(&certs);
    tu_tls_free_certs(&other_certs);
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Request / response over TLS 1.3 and 1.2, ALPN */

static const char alpn_h2_h1[] = "\x02h2\x08http/1.1";
static const char alpn_h2[] = "\x02h2";

static void client_basic(int max_version, const char *alpn, size_t alpn_len)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, max_version, alpn, alpn_len);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 0);
    resp_t r;
    resp_init(&r);
    if (ok)
        ok = cl_roundtrip(&cl, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    if (ok && r.status == 200)
        C.n_ok++;
    resp_t r2;
    resp_init(&r2);
    const char post[] = "POST /echo?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";
    if (ok && cl_roundtrip(&cl, post, &r2) && r2.status == 200)
        C.n_ok++;
    char want[128];
    snprintf(want, sizeof(want), "POST /echo?x=1 len=11 sum=%016llx", (unsigned long long)fnv1a("hello world", 11));
    bool body_ok = r.body.len == 15 && memcmp(r.body.data, "hello over tls\n", 15) == 0 &&
                   r2.body.len == strlen(want) && memcmp(r2.body.data, want, r2.body.len) == 0;
    resp_free(&r);
    resp_free(&r2);
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "request over TLS failed (verify %ld)", C.verify_result);
    CL_CHECK(body_ok, "unexpected response bodies");
}

static void client_tls13(void)
{
    client_basic(0, alpn_h2_h1, sizeof(alpn_h2_h1) - 1);
}

static void test_tls13_request_response(void **state)
{
    server_start(NULL, false);
    run_client(client_tls13, 10000);
    assert_string_equal(C.version, "TLSv1.3");
    assert_string_equal(C.alpn, "http/1.1"); /* offered h2 first: only http/1.1 is ever chosen */
    assert_string_equal(C.peer_cn, "aigw test server");
    assert_int_equal(C.n_ok, 2);
    assert_int_equal(S.requests, 2);
    assert_int_equal(S.opens, 1);
    server_finish();
}

static void client_tls12(void)
{
    client_basic(TLS1_2_VERSION, alpn_h2, sizeof(alpn_h2) - 1);
}

static void test_tls12_request_response(void **state)
{
    server_start(NULL, false);
    run_client(client_tls12, 10000);
    assert_string_equal(C.version, "TLSv1.2");
    assert_string_equal(C.alpn, ""); /* h2 alone is not acknowledged */
    assert_int_equal(C.n_ok, 2);
    assert_int_equal(S.requests, 2);
    server_finish();
}

/* ------------------------------------------------------------------------------------------------
 * Keep-alive, pipelining, Expect: 100-continue, large bodies */

static void client_keepalive(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 0);
    char req[128], want[128];
    for (int i = 0; ok && i < 20; i++) {
        snprintf(req, sizeof(req), "GET /echo?i=%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
        snprintf(want, sizeof(want), "GET /echo?i=%d len=0 sum=%016llx", i, (unsigned long long)fnv1a("", 0));
        resp_t r;
        resp_init(&r);
        ok = cl_roundtrip(&cl, req, &r) && r.status == 200 && r.keep_alive && r.body.len == strlen(want) &&
             memcmp(r.body.data, want, r.body.len) == 0;
        resp_free(&r);
        if (ok)
            C.n_ok++;
    }
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "request %d of 20 failed", C.n_ok + 1);
}

static void test_keepalive_20_requests(void **state)
{
    server_start(NULL, false);
    run_client(client_keepalive, 10000);
    assert_int_equal(C.n_ok, 20);
    assert_int_equal(S.requests, 20);
    assert_int_equal(S.opens, 1); /* all on one connection */
    server_finish();
}

static void client_pipelining(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 0);
    /* five requests in one TLS write (one record), the third with a body */
    const char reqs[] = "GET /echo?n=0 HTTP/1.1\r\nHost: a\r\n\r\n"
                        "GET /echo?n=1 HTTP/1.1\r\nHost: a\r\n\r\n"
                        "POST /echo?n=2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                        "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
                        "GET /echo?n=4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    ok = ok && cl_send(&cl, reqs, sizeof(reqs) - 1);
    const char *want[5] = {"GET /echo?n=0 len=0", "GET /echo?n=1 len=0", "POST /echo?n=2 len=3", "hello over tls",
                           "GET /echo?n=4 len=0"};
    for (int i = 0; ok && i < 5; i++) {
        resp_t r;
        resp_init(&r);
        ok = cl_response(&cl, &r) == 0 && r.status == 200 && r.body.len >= strlen(want[i]) &&
             memcmp(r.body.data, want[i], strlen(want[i])) == 0;
        resp_free(&r);
        if (ok)
            C.n_ok++;
    }
    C.end_state = ok ? cl_wait_end(&cl) : -1;
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "pipelined response %d wrong or missing", C.n_ok);
}

static void test_pipelining(void **state)
{
    server_start(NULL, false);
    run_client(client_pipelining, 10000);
    assert_int_equal(C.n_ok, 5);
    assert_int_equal(C.end_state, CL_EOF_NOTIFY); /* Connection: close ends with close_notify */
    assert_int_equal(S.requests, 5);
    server_finish();
}

static void client_large_body(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 0);
    char *body = gw_malloc(BIG_BODY);
    for (size_t i = 0; i < BIG_BODY; i++)
        body[i] = pattern_byte(i);
    char head[256], want[128];
    snprintf(head, sizeof(head), "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", BIG_BODY);
    snprintf(want, sizeof(want), "POST /upload len=%d sum=%016llx", BIG_BODY,
             (unsigned long long)fnv1a(body, BIG_BODY));
    resp_t r;
    resp_init(&r);
    ok = ok && cl_send_str(&cl, head) && cl_send(&cl, body, BIG_BODY) && cl_response(&cl, &r) == 0;
    bool body_ok = ok && r.status == 200 && r.body.len == strlen(want) && memcmp(r.body.data, want, r.body.len) == 0;
    /* the same with Expect: 100-continue: the interim response comes over TLS too */
    snprintf(head, sizeof(head), "POST /upload2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n");
    char cont[64] = "";
    size_t got = 0;
    bool cont_ok = ok && cl_send_str(&cl, head);
    while (cont_ok && got < 25) {
        ssize_t n = cl_recv(&cl, cont + got, 25 - got);
        if (n <= 0)
            cont_ok = false;
        else
            got += (size_t)n;
    }
    cont_ok = cont_ok && memcmp(cont, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0;
    resp_t r2;
    resp_init(&r2);
    cont_ok = cont_ok && cl_send(&cl, body, 4096) && cl_response(&cl, &r2) == 0 && r2.status == 200 &&
              r2.body.len > 20 && memcmp(r2.body.data, "POST /upload2 len=4096", 22) == 0;
    resp_free(&r);
    resp_free(&r2);
    free(body);
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "5 MB upload failed");
    CL_CHECK(body_ok, "the server did not get the 5 MB body intact");
    CL_CHECK(cont_ok, "100 Continue over TLS failed");
}

static void test_large_request_body(void **state)
{
    server_start(NULL, false);
    run_client(client_large_body, 20000);
    assert_int_equal(S.requests, 2);
    server_finish();
}

/* ------------------------------------------------------------------------------------------------
 * Streaming response with a slow client: backpressure over TLS */

static void client_slow_stream(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 16 * 1024);
    ok = ok && cl_send_str(&cl, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
    usleep(300 * 1000); /* let the server fill the socket and cross the high-water mark */
    cl.read_piece = 8192;
    resp_t r;
    resp_init(&r);
    r.verify_pattern = true;
    uint64_t t0 = now_ms();
    ok = ok && cl_response(&cl, &r) == 0;
    C.elapsed_ms = now_ms() - t0;
    size_t len = r.body_len, bad = r.bad_bytes;
    int status = r.status;
    resp_free(&r);
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "streamed response failed after %zu bytes", len);
    CL_CHECK(status == 200 && len == BIG_BODY, "status %d, %zu body bytes", status, len);
    CL_CHECK(bad == 0, "%zu corrupted body bytes", bad);
}

static void test_streamed_response_backpressure(void **state)
{
    gw_http_limits_t l;
    gw_http_limits_default(&l);
    l.write_high_water = 64 * 1024;
    l.write_low_water = 16 * 1024;
    server_start(&l, false);
    run_client(client_slow_stream, 30000);
    assert_true(S.drains >= 1);
    /* the writer stops once over the mark: at most one piece (plus TLS framing) beyond it */
    assert_true(S.max_pending <= l.write_high_water + STREAM_PIECE + 1024);
    assert_true(S.max_pending > l.write_high_water); /* the mark was really crossed */
    assert_int_equal(S.response_ends, 1);
    assert_int_equal(S.aborts, 0);
    server_finish();
}

/* One Content-Length body of 5 MB handed to the server in a single call, read slowly: the
 * ciphertext goes out in bounded pieces and arrives whole. */
static void client_big_single_write(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, TLS1_2_VERSION, NULL, 0);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 16 * 1024);
    ok = ok && cl_send_str(&cl, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    usleep(100 * 1000);
    resp_t r;
    resp_init(&r);
    r.verify_pattern = true;
    ok = ok && cl_response(&cl, &r) == 0;
    size_t len = r.body_len, bad = r.bad_bytes;
    resp_free(&r);
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok && len == BIG_BODY && bad == 0, "big response: ok %d, %zu bytes, %zu bad", ok, len, bad);
}

static void test_big_single_write(void **state)
{
    server_start(NULL, false);
    run_client(client_big_single_write, 30000);
    assert_true(S.max_pending > 0); /* most of it had to be queued */
    server_finish();
}

/* The client goes away in the middle of an endless streamed response (which only backpressure
 * keeps from filling memory): the handler gets on_abort. */
static void client_leaves_mid_stream(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 16 * 1024);
    ok = ok && cl_send_str(&cl, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
    usleep(200 * 1000); /* the server is over the high-water mark, waiting for on_drain, when we go */
    resp_t r;
    resp_init(&r);
    r.verify_pattern = true;
    r.stop_after = 256 * 1024;
    ok = ok && cl_response(&cl, &r) == -1 && r.body_len >= r.stop_after && r.bad_bytes == 0;
    resp_free(&r);
    cl_close(&cl); /* a plain close: unread data makes it a reset */
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "could not read the start of the stream");
}

static void test_client_leaves_mid_stream(void **state)
{
    gw_http_limits_t l;
    gw_http_limits_default(&l);
    l.write_high_water = 64 * 1024;
    l.write_low_water = 16 * 1024;
    server_start(&l, false);
    S.stream_total = SIZE_MAX; /* endless: only the client's leaving ends it */
    run_client(client_leaves_mid_stream, 10000);
    uint64_t deadline = now_ms() + 5000;
    while (S.aborts == 0 && now_ms() < deadline)
        run_for(10);
    assert_int_equal(S.aborts, 1);
    assert_int_equal(S.response_ends, 1);
    assert_true(S.max_pending > l.write_high_water);
    server_finish();
}

/* ------------------------------------------------------------------------------------------------
 * Handshake guard, plain HTTP on the TLS port, untrusted server */

static void client_no_hello(void)
{
    /* one client sends nothing, one the first bytes of a ClientHello record and nothing more */
    cl_t a, b;
    uint64_t t0 = now_ms();
    bool ok = cl_tcp(&a, 0) && cl_tcp(&b, 0);
    ok = ok && send(b.fd, "\x16\x03\x01\x00\xc8\x01", 6, MSG_NOSIGNAL) == 6;
    int ea = ok ? cl_wait_end(&a) : -1;
    int eb = ok ? cl_wait_end(&b) : -1;
    C.elapsed_ms = now_ms() - t0;
    cl_close(&a);
    cl_close(&b);
    CL_CHECK(ok, "connect failed");
    CL_CHECK(ea == CL_EOF_TCP || ea == CL_ERROR, "silent client: not closed (%d)", ea);
    CL_CHECK(eb == CL_EOF_TCP || eb == CL_ERROR, "partial hello: not closed (%d)", eb);
}

static void test_handshake_timeout(void **state)
{
    gw_http_limits_t l;
    gw_http_limits_default(&l);
    l.header_timeout_ms = 300;
    server_start(&l, false);
    run_client(client_no_hello, 10000);
    assert_true(C.elapsed_ms >= 250);
    assert_true(C.elapsed_ms < 3000);
    run_for(50);
    assert_int_equal(S.opens, 2);
    assert_int_equal(S.closes, 2);
    assert_int_equal(S.requests, 0);
    server_finish();
}

/* The header timeout after the handshake: a partial request head gets a 408 over TLS, then
 * close_notify. */
static void client_partial_head(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 0) && cl_send_str(&cl, "GET /hello HTTP/1.1\r\nHost: a\r\n");
    resp_t r;
    resp_init(&r);
    ok = ok && cl_response(&cl, &r) == 0;
    int status = r.status;
    C.end_state = ok ? cl_wait_end(&cl) : -1;
    resp_free(&r);
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok && status == 408, "expected a 408 over TLS, got %d", status);
}

static void test_header_timeout_after_handshake(void **state)
{
    gw_http_limits_t l;
    gw_http_limits_default(&l);
    l.header_timeout_ms = 300;
    server_start(&l, false);
    run_client(client_partial_head, 10000);
    assert_int_equal(C.end_state, CL_EOF_NOTIFY);
    assert_int_equal(S.max_status, 408);
    server_finish();
}

/* On an idle keep-alive connection, part of a TLS record is the start of a request: the header
 * timeout applies to it, not the (long) idle timeout. */
static void client_partial_record(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    cl_t cl;
    resp_t r;
    resp_init(&r);
    bool ok = cl_connect(&cl, ctx, 0) && cl_roundtrip(&cl, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", &r) && r.keep_alive;
    resp_free(&r);
    /* an application-data record header announcing 100 bytes, and nothing after it */
    ok = ok && send(cl.fd, "\x17\x03\x03\x00\x64", 5, MSG_NOSIGNAL) == 5;
    uint64_t t0 = now_ms();
    int end = ok ? cl_wait_end(&cl) : -1;
    C.elapsed_ms = now_ms() - t0;
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "request failed");
    CL_CHECK(end != CL_OPEN && end != -1, "connection not closed");
}

static void test_partial_record_on_idle_connection(void **state)
{
    gw_http_limits_t l;
    gw_http_limits_default(&l);
    l.header_timeout_ms = 300;
    l.idle_timeout_ms = 8000;
    server_start(&l, false);
    run_client(client_partial_record, 10000);
    assert_true(C.elapsed_ms >= 250);
    assert_true(C.elapsed_ms < 3000);
    server_finish();
}

static void client_plaintext(void)
{
    /* a plain HTTP request: one plain 400 that says why, then the close */
    cl_t cl;
    bool ok = cl_tcp(&cl, 0) && cl_send_str(&cl, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    resp_t r;
    resp_init(&r);
    ok = ok && cl_response(&cl, &r) == 0;
    bool says = r.body.len && memmem(r.body.data, r.body.len, "HTTPS", 5) != NULL;
    int status = r.status;
    int end = ok ? cl_wait_end(&cl) : -1;
    resp_free(&r);
    cl_close(&cl);
    CL_CHECK(ok && status == 400 && says, "plain request: status %d", status);
    CL_CHECK(end == CL_EOF_TCP || end == CL_ERROR, "plain request: connection not closed");
    /* bytes that are neither TLS nor HTTP: closed */
    ok = cl_tcp(&cl, 0) && send(cl.fd, "\x01\x02\x03 not tls at all\r\n\r\n", 21, MSG_NOSIGNAL) == 21;
    end = ok ? cl_wait_end(&cl) : -1;
    cl_close(&cl);
    CL_CHECK(end == CL_EOF_TCP || end == CL_ERROR, "garbage: connection not closed (%d)", end);
    /* and the listener still serves TLS */
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    resp_init(&r);
    ok = cl_connect(&cl, ctx, 0) && cl_roundtrip(&cl, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", &r) && r.status == 200;
    resp_free(&r);
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "TLS request after the plaintext ones failed");
}

static void test_plain_http_to_tls_port(void **state)
{
    server_start(NULL, false);
    run_client(client_plaintext, 10000);
    run_for(50);
    assert_int_equal(S.requests, 1);      /* only the TLS one reached the handler */
    assert_int_equal(S.response_ends, 2); /* the 400 is logged like any rejected request */
    assert_int_equal(S.opens, 3);
    server_finish();
}

static void client_untrusted(void)
{
    SSL_CTX *ctx = cl_ctx_new(other_certs.ca_pem, 0, NULL, 0);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 0);
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(!ok, "the handshake succeeded with the wrong CA");
    CL_CHECK(C.verify_result == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "verify result %ld",
             C.verify_result);
}

static void test_untrusted_server_certificate(void **state)
{
    server_start(NULL, false);
    run_client(client_untrusted, 10000);
    uint64_t deadline = now_ms() + 2000;
    while (S.closes < 1 && now_ms() < deadline)
        run_for(10);
    assert_int_equal(S.opens, 1);
    assert_int_equal(S.closes, 1); /* the failed handshake closed the connection */
    assert_int_equal(S.requests, 0);
    server_finish();
}

/* ------------------------------------------------------------------------------------------------
 * Endings: abort mid-response, graceful close, idle close */

static void client_abort(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    cl_t cl;
    bool ok = cl_connect(&cl, ctx, 0) && cl_send_str(&cl, "GET /abort HTTP/1.1\r\nHost: a\r\n\r\n");
    resp_t r;
    resp_init(&r);
    int rc = ok ? cl_response(&cl, &r) : 0;
    int status = r.status;
    C.end_state = cl.state;
    resp_free(&r);
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "connect failed");
    CL_CHECK(rc == -1, "an aborted response looked complete");
    CL_CHECK(status == 200, "head not received (%d)", status);
}

static void test_abort_mid_response(void **state)
{
    server_start(NULL, false);
    run_client(client_abort, 10000);
    /* a cut response ends without close_notify: TLS itself says it is truncated */
    assert_int_equal(C.end_state, CL_EOF_UNEXPECTED);
    assert_int_equal(S.response_ends, 1);
    server_finish();
}

static void client_graceful(void)
{
    SSL_CTX *ctx = cl_ctx_new(certs.ca_pem, TLS1_2_VERSION, NULL, 0);
    cl_t cl;
    resp_t r;
    resp_init(&r);
    bool ok = cl_connect(&cl, ctx, 0) &&
              cl_roundtrip(&cl, "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r) && r.status == 200 &&
              !r.keep_alive;
    int end = ok ? cl_wait_end(&cl) : -1;
    resp_free(&r);
    cl_close(&cl);
    CL_CHECK(ok, "request failed");
    CL_CHECK(end == CL_EOF_NOTIFY, "Connection: close did not end with close_notify (%d)", end);
    /* an idle keep-alive connection closed by the server's idle timeout: close_notify too */
    resp_init(&r);
    ok = cl_connect(&cl, ctx, 0) && cl_roundtrip(&cl, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", &r) && r.keep_alive;
    uint64_t t0 = now_ms();
    end = ok ? cl_wait_end(&cl) : -1;
    C.elapsed_ms = now_ms() - t0;
    resp_free(&r);
    cl_close(&cl);
    SSL_CTX_free(ctx);
    CL_CHECK(ok, "keep-alive request failed");
    CL_CHECK(end == CL_EOF_NOTIFY, "idle close did not send close_notify (%d)", end);
}

static void test_graceful_close(void **state)
{
    gw_http_limits_t l;
    gw_http_limits_default(&l);
    l.idle_timeout_ms = 200;
    server_start(&l, false);
    run_client(client_graceful, 10000);
    assert_true(C.elapsed_ms >= 150);
    server_finish();
}

/* ------------------------------------------------------------------------------------------------
 * Certificate reload: new connections get the new certificate, open ones keep theirs */

static void wait_phase(int p)
{
    while (atomic_load(&C.phase) < p)
        usleep(1000);
}

static void client_reload(void)
{
    SSL_CTX *ctx1 = cl_ctx_new(certs.ca_pem, 0, NULL, 0);
    SSL_CTX *ctx2 = cl_ctx_new(other_certs.ca_pem, 0, NULL, 0);
    cl_t old_conn, new_conn;
    resp_t r;
    resp_init(&r);
    bool ok = cl_connect(&old_conn, ctx1, 0) &&
              cl_roundtrip(&old_conn, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", &r) && r.status == 200;
    resp_free(&r);
    atomic_store(&C.phase, 1); /* the test thread now swaps the certificate */
    wait_phase(2);
    resp_init(&r);
    bool old_ok = ok && cl_roundtrip(&old_conn, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", &r) && r.status == 200;
    resp_free(&r);
    resp_init(&r);
    bool new_ok = cl_connect(&new_conn, ctx2, 0) &&
                  cl_roundtrip(&new_conn, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", &r) && r.status == 200;
    resp_free(&r);
    cl_close(&old_conn);
    cl_close(&new_conn);
    SSL_CTX_free(ctx1);
    SSL_CTX_free(ctx2);
    CL_CHECK(ok, "first request failed");
    CL_CHECK(old_ok, "the connection opened before the reload stopped working");
    CL_CHECK(new_ok, "a new connection did not get the new certificate (verify %ld)", C.verify_result);
}

static void test_certificate_reload(void **state)
{
    server_start(NULL, false);
    atomic_store(&C.done, false);
    assert_int_equal(pthread_create(&C.thread, NULL, client_main, (void *)client_reload), 0);
    uint64_t deadline = now_ms() + 10000;
    while (atomic_load(&C.phase) < 1 && !atomic_load(&C.done) && now_ms() < deadline)
        run_for(2);
    /* the reload, on the loop thread: a new context in, every outside reference dropped at once */
    gw_tls_ctx_t *next = server_ctx(&other_certs);
    gw_http_server_set_tls(S.srv, next);
    gw_tls_ctx_free(next);
    gw_tls_ctx_free(S.tls);
    S.tls = NULL;
    atomic_store(&C.phase, 2);
    while (!atomic_load(&C.done) && now_ms() < deadline)
        run_for(2);
    assert_true(atomic_load(&C.done));
    pthread_join(C.thread, NULL);
    if (C.fail[0])
        fail_msg("%s", C.fail);
    assert_string_equal(C.peer_cn, "aigw test server 2");
    assert_int_equal(S.requests, 3);
    server_finish();
}

/* ------------------------------------------------------------------------------------------------
 * Plain HTTP is unchanged; PEM files; contexts */

static void client_plain(void)
{
    cl_t cl;
    bool ok = cl_connect(&cl, NULL, 0);
    for (int i = 0; ok && i < 5; i++) {
        resp_t r;
        resp_init(&r);
        ok = cl_roundtrip(&cl, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", &r) && r.status == 200 && r.body.len == 15;
        resp_free(&r);
        if (ok)
            C.n_ok++;
    }
    const char reqs[] = "GET /echo?n=0 HTTP/1.1\r\nHost: a\r\n\r\nGET /echo?n=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    ok = ok && cl_send(&cl, reqs, sizeof(reqs) - 1);
    for (int i = 0; ok && i < 2; i++) {
        resp_t r;
        resp_init(&r);
        ok = cl_response(&cl, &r) == 0 && r.status == 200;
        resp_free(&r);
        if (ok)
            C.n_ok++;
    }
    C.end_state = ok ? cl_wait_end(&cl) : -1;
    cl_close(&cl);
    CL_CHECK(ok, "plain request %d failed", C.n_ok + 1);
}

static void test_plain_http_unchanged(void **state)
{
    server_start(NULL, true);
    run_client(client_plain, 10000);
    assert_int_equal(C.n_ok, 7);
    assert_int_equal(C.end_state, CL_EOF_TCP);
    assert_int_equal(S.opens, 1);
    server_finish();
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(content, f) >= 0, 1);
    fclose(f);
}

static void test_server_context_from_files(void **state)
{
    char dir[] = "/tmp/aigw-test-tls-XXXXXX", cert[64], key[64];
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/tls.crt", dir);
    snprintf(key, sizeof(key), "%s/tls.key", dir);
    write_file(cert, certs.cert_pem);
    write_file(key, certs.key_pem);
    char err[256] = "";
    gw_tls_ctx_t *ctx = gw_tls_ctx_new_server_files(cert, key, err, sizeof(err));
    assert_non_null(ctx);
    assert_ptr_equal(gw_tls_ctx_ref(ctx), ctx);
    gw_tls_ctx_free(ctx);
    gw_tls_ctx_free(ctx);
    assert_null(gw_tls_ctx_ref(NULL));
    gw_tls_ctx_free(NULL);
    /* key and certificate swapped, a missing file, a key that does not match */
    assert_null(gw_tls_ctx_new_server_files(key, cert, err, sizeof(err)));
    assert_non_null(strstr(err, "certificate"));
    assert_null(gw_tls_ctx_new_server_files("/nonexistent/aigw.pem", key, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/aigw.pem"));
    write_file(key, other_certs.key_pem);
    assert_null(gw_tls_ctx_new_server_files(cert, key, err, sizeof(err)));
    assert_non_null(strstr(err, "key"));
    unlink(cert);
    unlink(key);
    rmdir(dir);
    /* a client context is not a server one */
    gw_tls_ctx_t *cctx = gw_tls_ctx_new_client(NULL, err, sizeof(err));
    assert_non_null(cctx);
    assert_null(gw_tls_conn_new_server(cctx));
    gw_tls_ctx_free(cctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_tls13_request_response, setup),
        cmocka_unit_test_setup(test_tls12_request_response, setup),
        cmocka_unit_test_setup(test_keepalive_20_requests, setup),
        cmocka_unit_test_setup(test_pipelining, setup),
        cmocka_unit_test_setup(test_large_request_body, setup),
        cmocka_unit_test_setup(test_streamed_response_backpressure, setup),
        cmocka_unit_test_setup(test_big_single_write, setup),
        cmocka_unit_test_setup(test_client_leaves_mid_stream, setup),
        cmocka_unit_test_setup(test_handshake_timeout, setup),
        cmocka_unit_test_setup(test_header_timeout_after_handshake, setup),
        cmocka_unit_test_setup(test_partial_record_on_idle_connection, setup),
        cmocka_unit_test_setup(test_plain_http_to_tls_port, setup),
        cmocka_unit_test_setup(test_untrusted_server_certificate, setup),
        cmocka_unit_test_setup(test_abort_mid_response, setup),
        cmocka_unit_test_setup(test_graceful_close, setup),
        cmocka_unit_test_setup(test_certificate_reload, setup),
        cmocka_unit_test_setup(test_plain_http_unchanged, setup),
        cmocka_unit_test(test_server_context_from_files),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
