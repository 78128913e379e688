/* Unit tests for the upstream HTTP/1.1 client (net/upstream.c) and the TLS wrapper (net/tls.c): a
 * real libuv loop on 127.0.0.1 ephemeral ports, a scripted test server on the same loop (plain, or
 * TLS through tls.c's server mode), certificates generated at run time with the OpenSSL API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "net/tls.h"
#include "net/upstream.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fake_http.h"
#include "tls_testutil.h"

/* ------------------------------------------------------------------------------------------------
 * Scripted test server */

typedef struct srv_s srv_t;
typedef struct sconn_s sconn_t;

/* Called for each complete request (head and Content-Length body) on a connection. */
typedef void (*srv_handler_t)(sconn_t *sc, int idx, const char *head, size_t head_len);

struct sconn_s {
    uv_tcp_t tcp;
    uv_timer_t timer; /* drips and delayed actions */
    srv_t *srv;
    sconn_t *next;
    int id; /* accept order */
    int nreq;
    int handles;
    bool closing;
    gw_buf_t in;
    gw_tls_conn_t *tls;
    char *drip;
    size_t drip_len, drip_off, drip_piece;
    bool drip_close;
    void (*later)(sconn_t *sc);
};

struct srv_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    uint16_t port;
    int accepts;
    int requests;
    bool silent; /* accept, never read */
    srv_handler_t handler;
    gw_tls_ctx_t *tls;
    sconn_t *conns;
    sconn_t *last; /* most recent connection that got a request */
    char last_head[8192];
};

typedef struct {
    uv_write_t w;
    sconn_t *sc;
    bool close_after;
    char data[];
} swrite_t;

static void sconn_handle_closed(uv_handle_t *h)
{
    sconn_t *sc = h->data;
    if (--sc->handles > 0)
        return;
    for (sconn_t **pp = &sc->srv->conns; *pp; pp = &(*pp)->next) {
        if (*pp == sc) {
            *pp = sc->next;
            break;
        }
    }
    if (sc->srv->last == sc)
        sc->srv->last = NULL;
    gw_buf_free(&sc->in);
    gw_tls_conn_free(sc->tls);
    free(sc->drip);
    free(sc);
}

static void sconn_close(sconn_t *sc)
{
    if (sc->closing)
        return;
    sc->closing = true;
    uv_close((uv_handle_t *)&sc->tcp, sconn_handle_closed);
    uv_close((uv_handle_t *)&sc->timer, sconn_handle_closed);
}

/* Closes with a TCP RST (SO_LINGER 0). */
static void sconn_reset(sconn_t *sc)
{
    if (sc->closing)
        return;
    sc->closing = true;
    if (uv_tcp_close_reset(&sc->tcp, sconn_handle_closed) != 0)
        uv_close((uv_handle_t *)&sc->tcp, sconn_handle_closed);
    uv_close((uv_handle_t *)&sc->timer, sconn_handle_closed);
}

static void on_swrite(uv_write_t *req, int status)
{
    swrite_t *w = GW_CONTAINER_OF(req, swrite_t, w);
    sconn_t *sc = w->sc;
    bool close_after = w->close_after && status == 0;
    free(w);
    if (close_after)
        sconn_close(sc);
}

static void send_raw(sconn_t *sc, const char *p, size_t n, bool close_after)
{
    if (sc->closing)
        return;
    swrite_t *w = gw_malloc(sizeof(*w) + n + 1);
    w->sc = sc;
    w->close_after = close_after;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    assert_int_equal(uv_write(&w->w, (uv_stream_t *)&sc->tcp, &b, 1, on_swrite), 0);
}

static void flush_tls(sconn_t *sc, bool close_after)
{
    size_t n = gw_tls_conn_pending(sc->tls);
    if (n == 0) {
        if (close_after)
            sconn_close(sc);
        return;
    }
    char *tmp = gw_malloc(n);
    n = gw_tls_conn_take(sc->tls, tmp, n);
    send_raw(sc, tmp, n, close_after);
    free(tmp);
}

static void srv_send(sconn_t *sc, const char *p, size_t n, bool close_after)
{
    if (sc->closing)
        return;
    if (sc->tls) {
        assert_int_equal(gw_tls_conn_write(sc->tls, p, n), GW_OK);
        flush_tls(sc, close_after);
        return;
    }
    send_raw(sc, p, n, close_after);
}

static void srv_send_str(sconn_t *sc, const char *s, bool close_after)
{
    srv_send(sc, s, strlen(s), close_after);
}

static void on_drip(uv_timer_t *t)
{
    sconn_t *sc = t->data;
    size_t n = GW_MIN(sc->drip_piece, sc->drip_len - sc->drip_off);
    bool last = sc->drip_off + n == sc->drip_len;
    srv_send(sc, sc->drip + sc->drip_off, n, last && sc->drip_close);
    sc->drip_off += n;
    if (last) {
        uv_timer_stop(&sc->timer);
        free(sc->drip);
        sc->drip = NULL;
    }
}

/* Sends p in pieces of `piece` bytes, one every interval_ms. */
static void srv_drip(sconn_t *sc, const char *p, size_t n, size_t piece, uint64_t interval_ms, bool close_after)
{
    free(sc->drip);
    sc->drip = gw_malloc(n);
    memcpy(sc->drip, p, n);
    sc->drip_len = n;
    sc->drip_off = 0;
    sc->drip_piece = piece;
    sc->drip_close = close_after;
    uv_timer_start(&sc->timer, on_drip, interval_ms, interval_ms);
}

static void on_later(uv_timer_t *t)
{
    sconn_t *sc = t->data;
    sc->later(sc);
}

static void srv_later(sconn_t *sc, uint64_t ms, void (*fn)(sconn_t *sc))
{
    sc->later = fn;
    uv_timer_start(&sc->timer, on_later, ms, 0);
}

static void srv_process(sconn_t *sc)
{
    while (!sc->closing) {
        const char *d = sc->in.data;
        size_t hl = 0, total = fh_request_size(d, sc->in.len, &hl);
        if (total == 0)
            return;
        srv_t *srv = sc->srv;
        size_t keep = GW_MIN(hl, sizeof(srv->last_head) - 1);
        memcpy(srv->last_head, d, keep);
        srv->last_head[keep] = '\0';
        srv->requests++;
        srv->last = sc;
        int idx = sc->nreq++;
        if (srv->handler)
            srv->handler(sc, idx, d, hl);
        gw_buf_consume(&sc->in, total);
    }
}

static void on_sread(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sconn_t *sc = s->data;
    if (nread <= 0) {
        free(buf->base);
        if (nread < 0)
            sconn_close(sc);
        return;
    }
    if (sc->tls) {
        gw_tls_conn_feed(sc->tls, buf->base, (size_t)nread);
        free(buf->base);
        if (!gw_tls_conn_handshake_done(sc->tls)) {
            int rc = gw_tls_conn_handshake(sc->tls);
            flush_tls(sc, false);
            if (rc == GW_ERROR)
                sconn_close(sc);
            if (rc != GW_OK)
                return;
        }
        char tmp[16384];
        size_t n = 0;
        int rc;
        while ((rc = gw_tls_conn_read(sc->tls, tmp, sizeof(tmp), &n)) == GW_OK)
            gw_buf_append(&sc->in, tmp, n);
        flush_tls(sc, false);
        if (rc == GW_DONE || rc == GW_ERROR) {
            sconn_close(sc);
            return;
        }
    } else {
        gw_buf_append(&sc->in, buf->base, (size_t)nread);
        free(buf->base);
    }
    srv_process(sc);
}

static void on_saccept(uv_stream_t *l, int status)
{
    srv_t *srv = l->data;
    if (status != 0)
        return;
    sconn_t *sc = gw_calloc(1, sizeof(*sc));
    sc->srv = srv;
    uv_tcp_init(srv->loop, &sc->tcp);
    uv_timer_init(srv->loop, &sc->timer);
    sc->tcp.data = sc;
    sc->timer.data = sc;
    sc->handles = 2;
    gw_buf_init(&sc->in, GW_BUF_UNLIMITED);
    sc->next = srv->conns;
    srv->conns = sc;
    if (uv_accept(l, (uv_stream_t *)&sc->tcp) != 0) {
        sconn_close(sc);
        return;
    }
    sc->id = srv->accepts++;
    if (srv->tls)
        sc->tls = gw_tls_conn_new_server(srv->tls);
    if (!srv->silent)
        uv_read_start((uv_stream_t *)&sc->tcp, fh_alloc, on_sread);
}

static void srv_start(srv_t *srv, uv_loop_t *loop, srv_handler_t handler, gw_tls_ctx_t *tls)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->handler = handler;
    srv->tls = tls;
    srv->port = fh_listen(loop, &srv->listener, srv, on_saccept);
    srv->listening = true;
}

static void srv_stop(srv_t *srv)
{
    if (srv->listening) {
        uv_close((uv_handle_t *)&srv->listener, NULL);
        srv->listening = false;
    }
    for (sconn_t *sc = srv->conns; sc; sc = sc->next)
        sconn_close(sc);
}

/* ------------------------------------------------------------------------------------------------
 * Certificates made at run time: a CA, and a server certificate for 127.0.0.1 and localhost */

static struct {
    tu_tls_certs_t pem;
    char ca_file[64];
} certs;

static int group_setup(void **state)
{
    signal(SIGPIPE, SIG_IGN);
    unsetenv("SSL_CERT_FILE"); /* the "system store" tests must not trust our CA by accident */
    tu_tls_make_certs(&certs.pem, "aigw test server", 2);
    snprintf(certs.ca_file, sizeof(certs.ca_file), "/tmp/aigw-test-ca-XXXXXX");
    int fd = mkstemp(certs.ca_file);
    assert_true(fd >= 0);
    size_t len = strlen(certs.pem.ca_pem);
    assert_int_equal(write(fd, certs.pem.ca_pem, len), (ssize_t)len);
    close(fd);
    return 0;
}

static int group_teardown(void **state)
{
    unlink(certs.ca_file);
    tu_tls_free_certs(&certs.pem);
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Client side: one environment per test, results per request */

typedef struct res_s res_t;

struct res_s {
    gw_upstream_req_t *req;
    int done;
    int status;
    int heads;
    int head_status;
    char detail[128];
    char peer[64];
    char x_test[64];
    char link[64];
    gw_buf_t body;
    /* behaviour */
    size_t pause_every; /* pause after this many body bytes (0: never) */
    size_t since_pause;
    bool pause_in_head;
    uint64_t resume_ms;
    bool paused;
    int pauses;
    int body_while_paused;
    size_t max_server_queue; /* the server's unsent bytes seen while paused */
    bool cancel_in_body;
    bool refuse_head;
    bool cancelled;
    uv_timer_t resume_timer;
    uint64_t t_start, t_done;
    void (*next)(res_t *r); /* run from on_done */
    int remaining;
};

static struct {
    uv_loop_t loop;
    uv_timer_t guard;
    gw_upstream_pool_t *pool;
    int opens, closes;
    srv_t srv;
    gw_tls_ctx_t *srv_tls;
    gw_upstream_target_t target;
    res_t *res[32];
    int n_res;
} E;

static void hook_open(void *ud)
{
    E.opens++;
}

static void hook_close(void *ud)
{
    E.closes++;
}

static int setup(void **state)
{
    memset(&E, 0, sizeof(E));
    assert_int_equal(uv_loop_init(&E.loop), 0);
    uv_timer_init(&E.loop, &E.guard);
    return 0;
}

static void pool_start(const gw_upstream_pool_opts_t *opts)
{
    gw_upstream_pool_hooks_t hooks = {hook_open, hook_close, NULL};
    E.pool = gw_upstream_pool_new(&E.loop, opts, &hooks);
}

/* Starts the server (TLS when tls) and a pool, and aims the default target at the server. */
static void env_start(srv_handler_t handler, bool tls, const gw_upstream_pool_opts_t *opts)
{
    if (tls) {
        char err[256];
        E.srv_tls = gw_tls_ctx_new_server(gw_str_c(certs.pem.cert_pem), gw_str_c(certs.pem.key_pem), err, sizeof(err));
        assert_non_null(E.srv_tls);
    }
    srv_start(&E.srv, &E.loop, handler, E.srv_tls);
    pool_start(opts);
    E.target = (gw_upstream_target_t){GW_STR("127.0.0.1"), E.srv.port, tls, GW_STR_NULL, GW_STR_NULL};
}

static void on_guard(uv_timer_t *t)
{
}

#define RUN_UNTIL(cond, ms)                                          \
    do {                                                             \
        uv_update_time(&E.loop);                                     \
        uint64_t dl_ = uv_now(&E.loop) + (ms);                       \
        while (!(cond) && uv_now(&E.loop) < dl_) {                   \
            uv_timer_start(&E.guard, on_guard, 5, 0);                \
            uv_run(&E.loop, UV_RUN_ONCE);                            \
        }                                                            \
        uv_timer_stop(&E.guard);                                     \
    } while (0)

static void run_for(uint64_t ms)
{
    RUN_UNTIL(false, ms);
}

/* Ends the test: everything must close, leaving no handle and balanced connection hooks. */
static void finish(void)
{
    srv_stop(&E.srv);
    if (E.pool)
        gw_upstream_pool_close(E.pool);
    E.pool = NULL;
    for (int i = 0; i < E.n_res; i++)
        uv_close((uv_handle_t *)&E.res[i]->resume_timer, NULL);
    uv_close((uv_handle_t *)&E.guard, NULL);
    alarm(20);
    uv_run(&E.loop, UV_RUN_DEFAULT);
    alarm(0);
    for (int i = 0; i < E.n_res; i++)
        gw_buf_free(&E.res[i]->body);
    gw_tls_ctx_free(E.srv_tls);
    assert_int_equal(uv_loop_close(&E.loop), 0);
    assert_int_equal(E.opens, E.closes);
}

static void res_init(res_t *r)
{
    memset(r, 0, sizeof(*r));
    gw_buf_init(&r->body, GW_BUF_UNLIMITED);
    uv_timer_init(&E.loop, &r->resume_timer);
    r->resume_timer.data = r;
    r->resume_ms = 30;
    assert_true(E.n_res < (int)GW_ARRAY_SIZE(E.res));
    E.res[E.n_res++] = r;
}

static void copy_value(const gw_http_header_t *h, size_t n, const char *name, char *out, size_t cap)
{
    gw_str_t v = gw_http_header_find(h, n, gw_str_c(name));
    if (v.base)
        snprintf(out, cap, "%.*s", (int)v.len, v.base);
}

static void on_resume_timer(uv_timer_t *t)
{
    res_t *r = t->data;
    if (E.srv.last && !E.srv.last->closing) {
        size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&E.srv.last->tcp);
        r->max_server_queue = GW_MAX(r->max_server_queue, q);
    }
    r->paused = false;
    gw_upstream_resume(r->req);
}

static void do_pause(res_t *r)
{
    gw_upstream_pause(r->req);
    r->paused = true;
    r->pauses++;
    uv_timer_start(&r->resume_timer, on_resume_timer, r->resume_ms, 0);
}

static int t_on_head(void *ud, int status, const gw_http_header_t *h, size_t n)
{
    res_t *r = ud;
    r->heads++;
    r->head_status = status;
    snprintf(r->peer, sizeof(r->peer), "%s", gw_upstream_peer(r->req));
    copy_value(h, n, "X-Test", r->x_test, sizeof(r->x_test));
    copy_value(h, n, "Link", r->link, sizeof(r->link));
    if (r->refuse_head) {
        r->cancelled = true;
        return GW_ERROR;
    }
    if (r->pause_in_head)
        do_pause(r);
    return GW_OK;
}

static int t_on_body(void *ud, const char *p, size_t n)
{
    res_t *r = ud;
    assert_true(n > 0);
    if (r->paused)
        r->body_while_paused++;
    assert_int_equal(gw_buf_append(&r->body, p, n), GW_OK);
    if (r->cancel_in_body) {
        gw_upstream_cancel(r->req);
        gw_upstream_cancel(r->req); /* twice is harmless */
        r->cancelled = true;
        return GW_OK;
    }
    if (r->pause_every && (r->since_pause += n) >= r->pause_every) {
        r->since_pause = 0;
        do_pause(r);
    }
    return GW_OK;
}

static void t_on_done(void *ud, int status, const char *detail)
{
    res_t *r = ud;
    r->done++;
    r->status = status;
    snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
    r->t_done = uv_now(&E.loop);
    r->req = NULL;
    if (r->next)
        r->next(r);
}

static const gw_upstream_callbacks_t cbs = {t_on_head, t_on_body, t_on_done};

static gw_upstream_req_t *send_full(res_t *r, const gw_upstream_target_t *t, const char *method, const char *path,
                                    const gw_http_header_t *h, size_t nh, gw_str_t body, const gw_upstream_timeouts_t *to)
{
    gw_upstream_request_t q = {gw_str_c(method), gw_str_c(path), h, nh, body};
    r->t_start = uv_now(&E.loop);
    r->req = gw_upstream_send(E.pool, t, &q, to, &cbs, r);
    assert_non_null(r->req);
    return r->req;
}

static gw_upstream_req_t *send_get(res_t *r, const gw_upstream_timeouts_t *to)
{
    return send_full(r, &E.target, "GET", "/", NULL, 0, GW_STR_NULL, to);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL) {
        print_error("missing \"%s\" in:\n%s\n", needle, hay);
        fail();
    }
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (strcasestr(hay, needle) != NULL) {
        print_error("unexpected \"%s\" in:\n%s\n", needle, hay);
        fail();
    }
}

/* ------------------------------------------------------------------------------------------------
 * Framing, keep-alive, request head */

static void h_hello(sconn_t *sc, int idx, const char *head, size_t hl)
{
    srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: a\r\n\r\nhello", false);
}

static const gw_http_header_t hop_headers[] = {
    {GW_STR("Connection"), GW_STR("x-drop, Keep-Alive")},
    {GW_STR("X-Drop"), GW_STR("1")},
    {GW_STR("Keep-Alive"), GW_STR("timeout=5")},
    {GW_STR("Transfer-Encoding"), GW_STR("chunked")},
    {GW_STR("TE"), GW_STR("trailers")},
    {GW_STR("Trailer"), GW_STR("X-T")},
    {GW_STR("Upgrade"), GW_STR("h2c")},
    {GW_STR("Proxy-Connection"), GW_STR("keep-alive")},
    {GW_STR("Host"), GW_STR("evil.example")},
    {GW_STR("Content-Length"), GW_STR("99")},
    {GW_STR("Expect"), GW_STR("100-continue")},
    {GW_STR("X-Keep"), GW_STR("yes")},
    {GW_STR("content-type"), GW_STR("application/json")},
};

static void next_post(res_t *r)
{
    if (--r->remaining <= 0)
        return;
    assert_int_equal(r->status, GW_UPSTREAM_OK);
    send_full(r, &E.target, "POST", "/v1/chat?x=1", hop_headers, GW_ARRAY_SIZE(hop_headers), GW_STR("abc"), NULL);
}

static void test_content_length_keepalive_reuse(void **state)
{
    env_start(h_hello, false, NULL);
    res_t r;
    res_init(&r);
    r.remaining = 20;
    r.next = next_post;
    send_full(&r, &E.target, "POST", "/v1/chat?x=1", hop_headers, GW_ARRAY_SIZE(hop_headers), GW_STR("abc"), NULL);
    RUN_UNTIL(r.done == 20, 3000);
    assert_int_equal(r.done, 20);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(r.heads, 20);
    assert_int_equal(r.head_status, 200);
    assert_string_equal(r.x_test, "a");
    assert_int_equal(r.body.len, 5 * 20);
    assert_memory_equal(r.body.data, "hellohello", 10);
    /* one connection for 20 sequential requests */
    assert_int_equal(E.srv.accepts, 1);
    assert_int_equal(E.opens, 1);
    assert_int_equal(E.srv.requests, 20);
    char peer[64];
    snprintf(peer, sizeof(peer), "127.0.0.1:%u", E.srv.port);
    assert_string_equal(r.peer, peer);

    const char *h = E.srv.last_head;
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", E.srv.port);
    assert_true(strncmp(h, "POST /v1/chat?x=1 HTTP/1.1\r\n", 28) == 0);
    assert_contains(h, host);
    assert_contains(h, "\r\nContent-Length: 3\r\n");
    assert_contains(h, "\r\nConnection: keep-alive\r\n");
    assert_contains(h, "\r\nX-Keep: yes\r\n");
    assert_contains(h, "\r\ncontent-type: application/json\r\n");
    assert_lacks(h, "x-drop");
    assert_lacks(h, "Expect");
    assert_lacks(h, "evil");
    assert_lacks(h, "chunked");
    assert_lacks(h, "Keep-Alive:");
    assert_lacks(h, "\r\nTE:");
    assert_lacks(h, "Trailer");
    assert_lacks(h, "Upgrade");
    assert_lacks(h, "Proxy-Connection");
    assert_lacks(h, "Content-Length: 99");
    finish();
}

static void test_request_framing(void **state)
{
    env_start(h_hello, false, NULL);
    res_t a, b;
    res_init(&a);
    res_init(&b);
    send_full(&a, &E.target, "POST", "/empty", NULL, 0, GW_STR_NULL, NULL);
    RUN_UNTIL(a.done, 2000);
    assert_int_equal(a.status, GW_UPSTREAM_OK);
    assert_contains(E.srv.last_head, "\r\nContent-Length: 0\r\n");
    send_get(&b, NULL);
    RUN_UNTIL(b.done, 2000);
    assert_int_equal(b.status, GW_UPSTREAM_OK);
    assert_lacks(E.srv.last_head, "Content-Length");
    assert_true(strncmp(E.srv.last_head, "GET / HTTP/1.1\r\n", 16) == 0);
    assert_int_equal(E.srv.accepts, 1);
    finish();
}

static void test_invalid_request_and_target(void **state)
{
    env_start(h_hello, false, NULL);
    res_t a, b, c;
    res_init(&a);
    res_init(&b);
    res_init(&c);
    gw_http_header_t inj = {GW_STR("X-A"), GW_STR("v\r\nX-Injected: 1")};
    send_full(&a, &E.target, "GET", "/", &inj, 1, GW_STR_NULL, NULL);
    assert_int_equal(a.done, 0); /* never from inside send */
    send_full(&b, &E.target, "GET", "/a b", NULL, 0, GW_STR_NULL, NULL);
    gw_upstream_target_t bad = {GW_STR("bad host"), 80, false, GW_STR_NULL, GW_STR_NULL};
    send_full(&c, &bad, "GET", "/", NULL, 0, GW_STR_NULL, NULL);
    RUN_UNTIL(a.done && b.done && c.done, 2000);
    assert_int_equal(a.status, GW_UPSTREAM_EPROTO);
    assert_int_equal(b.status, GW_UPSTREAM_EPROTO);
    assert_int_equal(c.status, GW_UPSTREAM_ECONNECT);
    assert_int_equal(E.srv.accepts, 0);
    finish();
}

static const char chunked_resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Test: c\r\n\r\n"
                                   "1\r\na\r\n3;ext=1\r\nbcd\r\n0A\r\n0123456789\r\n11\r\nABCDEFGHIJKLMNOPQ\r\n"
                                   "0\r\nX-Trailer: t\r\n\r\n";

static void h_chunked_drip(sconn_t *sc, int idx, const char *head, size_t hl)
{
    srv_drip(sc, chunked_resp, sizeof(chunked_resp) - 1, 7, 1, false);
}

static void next_get(res_t *r)
{
    if (--r->remaining > 0)
        send_get(r, NULL);
}

static void test_chunked_odd_sizes(void **state)
{
    env_start(h_chunked_drip, false, NULL);
    res_t r;
    res_init(&r);
    r.remaining = 2;
    r.next = next_get;
    send_get(&r, NULL);
    RUN_UNTIL(r.done == 2, 3000);
    assert_int_equal(r.done, 2);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_string_equal(r.x_test, "c");
    assert_int_equal(r.body.len, 2 * 31);
    assert_memory_equal(r.body.data, "abcd0123456789ABCDEFGHIJKLMNOPQabcd", 35);
    assert_int_equal(E.srv.accepts, 1); /* reused after a chunked body */
    finish();
}

static void h_close_delimited(sconn_t *sc, int idx, const char *head, size_t hl)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
    for (int i = 0; i < 100000; i++)
        gw_buf_append_byte(&b, (char)('a' + i % 26));
    srv_send(sc, b.data, b.len, true);
    gw_buf_free(&b);
}

static void test_close_delimited(void **state)
{
    env_start(h_close_delimited, false, NULL);
    res_t r;
    res_init(&r);
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(r.body.len, 100000);
    assert_int_equal(r.body.data[99999], 'a' + 99999 % 26);
    RUN_UNTIL(E.closes == 1, 1000);
    assert_int_equal(E.closes, 1); /* never pooled */
    finish();
}

static const char interim_resp[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                                   "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Test: final\r\n\r\nok";

static void h_interim(sconn_t *sc, int idx, const char *head, size_t hl)
{
    srv_drip(sc, interim_resp, sizeof(interim_resp) - 1, 10, 1, false);
}

static void test_interim_1xx_skipped(void **state)
{
    env_start(h_interim, false, NULL);
    res_t r;
    res_init(&r);
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.head_status, 201);
    assert_string_equal(r.x_test, "final");
    assert_string_equal(r.link, "");
    assert_int_equal(r.body.len, 2);
    finish();
}

static void h_connection_close(sconn_t *sc, int idx, const char *head, size_t hl)
{
    srv_send_str(sc, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false);
}

static void test_connection_close_not_reused(void **state)
{
    env_start(h_connection_close, false, NULL);
    res_t r;
    res_init(&r);
    r.remaining = 2;
    r.next = next_get;
    send_get(&r, NULL);
    RUN_UNTIL(r.done == 2, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(E.srv.accepts, 2);
    finish();
}

static void h_head_or_get(sconn_t *sc, int idx, const char *head, size_t hl)
{
    if (strncmp(head, "HEAD ", 5) == 0)
        srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false);
    else
        srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false);
}

static void test_head_method(void **state)
{
    env_start(h_head_or_get, false, NULL);
    res_t a, b;
    res_init(&a);
    res_init(&b);
    send_full(&a, &E.target, "HEAD", "/", NULL, 0, GW_STR_NULL, NULL);
    RUN_UNTIL(a.done, 2000);
    assert_int_equal(a.status, GW_UPSTREAM_OK);
    assert_int_equal(a.body.len, 0);
    send_get(&b, NULL);
    RUN_UNTIL(b.done, 2000);
    assert_int_equal(b.status, GW_UPSTREAM_OK);
    assert_int_equal(b.body.len, 5);
    assert_int_equal(E.srv.accepts, 1);
    finish();
}

/* ------------------------------------------------------------------------------------------------
 * Pool behaviour */

static void reply_hello(sconn_t *sc)
{
    srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false);
}

static void h_hello_later(sconn_t *sc, int idx, const char *head, size_t hl)
{
    srv_later(sc, 20, reply_hello);
}

static void test_concurrent_and_max_idle(void **state)
{
    gw_upstream_pool_opts_t opts = {.max_idle_per_host = 2};
    env_start(h_hello_later, false, &opts);
    res_t r[4], last;
    for (int i = 0; i < 4; i++) {
        res_init(&r[i]);
        send_get(&r[i], NULL);
    }
    RUN_UNTIL(r[0].done && r[1].done && r[2].done && r[3].done, 3000);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r[i].status, GW_UPSTREAM_OK);
    assert_int_equal(E.opens, 4);
    RUN_UNTIL(E.closes == 2, 1000);
    assert_int_equal(E.closes, 2); /* two kept idle */
    res_init(&last);
    send_get(&last, NULL);
    RUN_UNTIL(last.done, 2000);
    assert_int_equal(last.status, GW_UPSTREAM_OK);
    assert_int_equal(E.opens, 4); /* reused */
    finish();
}

static void test_idle_keepalive_expiry(void **state)
{
    gw_upstream_pool_opts_t opts = {.idle_keepalive_ms = 50};
    env_start(h_hello, false, &opts);
    res_t r;
    res_init(&r);
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 2000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(E.closes, 0);
    RUN_UNTIL(E.closes == 1, 1000);
    assert_int_equal(E.closes, 1);
    finish();
}

static void h_hello_then_close(sconn_t *sc, int idx, const char *head, size_t hl)
{
    srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true);
}

/* The server closes an idle pooled connection: the pool notices and drops it. */
static void test_server_closes_idle_connection(void **state)
{
    env_start(h_hello_then_close, false, NULL);
    res_t a, b;
    res_init(&a);
    res_init(&b);
    send_get(&a, NULL);
    RUN_UNTIL(a.done, 2000);
    assert_int_equal(a.status, GW_UPSTREAM_OK);
    RUN_UNTIL(E.closes == 1, 1000);
    assert_int_equal(E.closes, 1);
    send_get(&b, NULL);
    RUN_UNTIL(b.done, 2000);
    assert_int_equal(b.status, GW_UPSTREAM_OK);
    assert_int_equal(E.srv.accepts, 2);
    finish();
}

/* The keep-alive race: the server closes a reused connection on receiving the request. */
static void h_close_second(sconn_t *sc, int idx, const char *head, size_t hl)
{
    if (sc->id == 0 && idx == 1) {
        sconn_close(sc);
        return;
    }
    srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false);
}

static void test_retry_on_reused_connection(void **state)
{
    env_start(h_close_second, false, NULL);
    res_t r;
    res_init(&r);
    r.remaining = 2;
    r.next = next_post;
    send_full(&r, &E.target, "POST", "/p", NULL, 0, GW_STR("body"), NULL);
    RUN_UNTIL(r.done == 2, 3000);
    assert_int_equal(r.done, 2);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(r.body.len, 10);
    assert_int_equal(E.srv.accepts, 2);
    assert_int_equal(E.srv.requests, 3); /* the second request was sent twice */
    finish();
}

static void h_close_all_but_first(sconn_t *sc, int idx, const char *head, size_t hl)
{
    if (sc->id == 0 && idx == 0)
        srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false);
    else
        sconn_close(sc);
}

static void test_retry_only_once(void **state)
{
    env_start(h_close_all_but_first, false, NULL);
    res_t r;
    res_init(&r);
    r.remaining = 2;
    r.next = next_get;
    send_get(&r, NULL);
    RUN_UNTIL(r.done == 2, 3000);
    assert_int_equal(r.done, 2);
    assert_int_equal(r.status, GW_UPSTREAM_ERESET);
    assert_int_equal(E.srv.accepts, 2);
    finish();
}

static void h_close_without_answer(sconn_t *sc, int idx, const char *head, size_t hl)
{
    sconn_close(sc);
}

static void test_no_retry_on_fresh_connection(void **state)
{
    env_start(h_close_without_answer, false, NULL);
    res_t r;
    res_init(&r);
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 2000);
    assert_int_equal(r.status, GW_UPSTREAM_ERESET);
    assert_int_equal(E.srv.accepts, 1);
    finish();
}

/* ------------------------------------------------------------------------------------------------
 * Connect failures and timeouts */

static void test_connect_refused(void **state)
{
    uint16_t port = fh_unused_port(&E.loop); /* a port that was just free */
    pool_start(NULL);
    res_t r;
    res_init(&r);
    gw_upstream_target_t target = {GW_STR("127.0.0.1"), port, false, GW_STR_NULL, GW_STR_NULL};
    send_full(&r, &target, "GET", "/", NULL, 0, GW_STR_NULL, NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_ECONNECT);
    assert_int_equal(r.heads, 0);
    assert_int_equal(E.opens, 0);
    finish();
}

static void test_dns_failure(void **state)
{
    pool_start(NULL);
    res_t r;
    res_init(&r);
    gw_upstream_target_t target = {GW_STR("no-such-host.invalid"), 80, false, GW_STR_NULL, GW_STR_NULL};
    send_full(&r, &target, "GET", "/", NULL, 0, GW_STR_NULL, NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_ECONNECT);
    assert_string_equal(r.detail, "DNS lookup failed");
    finish();
}

/* A name through getaddrinfo (localhost from /etc/hosts), then the cached addresses. */
static void test_dns_name(void **state)
{
    gw_upstream_pool_opts_t opts = {.max_idle_per_host = 1};
    env_start(h_hello_later, false, &opts);
    res_t a, b, c;
    res_init(&a);
    res_init(&b);
    res_init(&c);
    gw_upstream_target_t target = {GW_STR("localhost"), E.srv.port, false, GW_STR_NULL, GW_STR_NULL};
    send_full(&a, &target, "GET", "/", NULL, 0, GW_STR_NULL, NULL);
    send_full(&b, &target, "GET", "/", NULL, 0, GW_STR_NULL, NULL); /* waits on the same lookup */
    RUN_UNTIL(a.done && b.done, 3000);
    assert_int_equal(a.status, GW_UPSTREAM_OK);
    assert_int_equal(b.status, GW_UPSTREAM_OK);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: localhost:%u\r\n", E.srv.port);
    assert_contains(E.srv.last_head, host);
    send_full(&c, &target, "GET", "/", NULL, 0, GW_STR_NULL, NULL);
    RUN_UNTIL(c.done, 3000);
    assert_int_equal(c.status, GW_UPSTREAM_OK);
    assert_int_equal(E.srv.accepts, 2);
    finish();
}

static void h_silent(sconn_t *sc, int idx, const char *head, size_t hl)
{
}

static void test_idle_timeout_waiting(void **state)
{
    env_start(h_silent, false, NULL);
    res_t r;
    res_init(&r);
    gw_upstream_timeouts_t to = {.idle_ms = 100};
    send_get(&r, &to);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_ETIMEOUT);
    assert_string_equal(r.detail, "idle timeout");
    uint64_t took = r.t_done - r.t_start;
    assert_true(took >= 90 && took < 1500);
    RUN_UNTIL(E.closes == 1, 1000);
    assert_int_equal(E.closes, 1);
    finish();
}

static void h_head_then_stall(sconn_t *sc, int idx, const char *head, size_t hl)
{
    srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome", false);
}

static void test_idle_timeout_mid_body(void **state)
{
    env_start(h_head_then_stall, false, NULL);
    res_t r;
    res_init(&r);
    gw_upstream_timeouts_t to = {.idle_ms = 100};
    send_get(&r, &to);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.body.len, 4);
    assert_int_equal(r.status, GW_UPSTREAM_ETIMEOUT);
    finish();
}

static void h_trickle(sconn_t *sc, int idx, const char *head, size_t hl)
{
    static char resp[1000];
    int n = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n");
    memset(resp + n, 'x', sizeof(resp) - (size_t)n);
    srv_drip(sc, resp, (size_t)n + 500, 1, 10, false);
}

/* Bytes keep coming (never idle), but the whole exchange takes too long. */
static void test_total_timeout(void **state)
{
    env_start(h_trickle, false, NULL);
    res_t r;
    res_init(&r);
    gw_upstream_timeouts_t to = {.total_ms = 300, .idle_ms = 200};
    send_get(&r, &to);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_ETIMEOUT);
    assert_string_equal(r.detail, "total timeout");
    uint64_t took = r.t_done - r.t_start;
    assert_true(took >= 290 && took < 2000);
    finish();
}

/* TCP connects, but the TLS handshake never answers: the connect timeout covers it. */
static void test_connect_timeout_in_handshake(void **state)
{
    env_start(h_silent, false, NULL);
    E.srv.silent = true;
    E.target.tls = true;
    res_t r;
    res_init(&r);
    gw_upstream_timeouts_t to = {.connect_ms = 100};
    send_get(&r, &to);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_ETIMEOUT);
    assert_string_equal(r.detail, "connect timeout");
    finish();
}

/* ------------------------------------------------------------------------------------------------
 * Broken responses */

static void do_reset(sconn_t *sc)
{
    sconn_reset(sc);
}

static void h_reset_mid_body(sconn_t *sc, int idx, const char *head, size_t hl)
{
    char buf[1100];
    int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    memset(buf + n, 'y', sizeof(buf) - (size_t)n);
    srv_send(sc, buf, sizeof(buf), false);
    srv_later(sc, 30, do_reset);
}

static void test_reset_mid_body(void **state)
{
    env_start(h_reset_mid_body, false, NULL);
    res_t r;
    res_init(&r);
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.status, GW_UPSTREAM_ERESET);
    finish();
}

static const char *bad_response;

static void h_bad(sconn_t *sc, int idx, const char *head, size_t hl)
{
    srv_send_str(sc, bad_response, false);
}

static void expect_proto_error(const char *resp, size_t max_head, int heads)
{
    gw_upstream_pool_opts_t opts = {.max_response_head = max_head};
    setup(NULL);
    bad_response = resp;
    env_start(h_bad, false, &opts);
    res_t r;
    res_init(&r);
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_EPROTO);
    assert_int_equal(r.heads, heads);
    finish();
}

static void test_malformed_responses(void **state)
{
    finish(); /* each case below runs in its own environment */
    expect_proto_error("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", 0, 0);
    expect_proto_error("SSH-2.0-OpenSSH\r\n\r\n", 0, 0);
    expect_proto_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 1);
    expect_proto_error("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", 0, 0);
}

static void test_oversized_head(void **state)
{
    finish();
    /* above a small configured cap */
    static char small[4096];
    int n = snprintf(small, sizeof(small), "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(small + n, 'b', 2000);
    snprintf(small + n + 2000, sizeof(small) - (size_t)n - 2000, "\r\nContent-Length: 0\r\n\r\n");
    expect_proto_error(small, 1024, 0);
    /* above the 64 KiB default */
    static char big[80 * 1024];
    n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(big + n, 'b', 70 * 1024);
    snprintf(big + n + 70 * 1024, sizeof(big) - (size_t)n - 70 * 1024, "\r\nContent-Length: 0\r\n\r\n");
    expect_proto_error(big, 0, 0);
    /* just under the small cap passes */
    setup(NULL);
    n = snprintf(small, sizeof(small), "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(small + n, 'b', 900);
    snprintf(small + n + 900, sizeof(small) - (size_t)n - 900, "\r\nContent-Length: 0\r\n\r\n");
    bad_response = small;
    gw_upstream_pool_opts_t opts = {.max_response_head = 1024};
    env_start(h_bad, false, &opts);
    res_t r;
    res_init(&r);
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    finish();
}

/* ------------------------------------------------------------------------------------------------
 * Backpressure and cancellation */

#define BIG_BODY (8u * 1024 * 1024)

static char *make_big_response(size_t body, size_t *len)
{
    char head[128];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body);
    char *p = gw_malloc((size_t)n + body);
    memcpy(p, head, (size_t)n);
    for (size_t i = 0; i < body; i++)
        p[n + i] = (char)(i % 251);
    *len = (size_t)n + body;
    return p;
}

static size_t big_body_size = BIG_BODY;

static void h_big(sconn_t *sc, int idx, const char *head, size_t hl)
{
    size_t len;
    char *p = make_big_response(big_body_size, &len);
    srv_send(sc, p, len, false);
    free(p);
}

static void check_big_body(const res_t *r, size_t size)
{
    assert_int_equal(r->body.len, size);
    for (size_t i = 0; i < size; i++) {
        if ((unsigned char)r->body.data[i] != i % 251) {
            print_error("body byte %zu differs\n", i);
            fail();
        }
    }
}

static void test_pause_resume_large_body(void **state)
{
    big_body_size = BIG_BODY;
    env_start(h_big, false, NULL);
    res_t r;
    res_init(&r);
    r.pause_every = 1024 * 1024;
    r.resume_ms = 20;
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 5000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_true(r.pauses >= 7);
    assert_int_equal(r.body_while_paused, 0);
    /* while paused the client did not read: the server still had part of the body to send. How much
     * depends on the kernel's loopback buffer autotuning (several MB under load), so only "some"
     * is asserted; body_while_paused == 0 above is the strict check. */
    assert_true(r.max_server_queue > 0);
    check_big_body(&r, BIG_BODY);
    finish();
}

/* A chunked body in small chunks: many body callbacks per read, so a pause lands mid-buffer. */
static void h_big_chunked(sconn_t *sc, int idx, const char *head, size_t hl)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    size_t sent = 0;
    while (sent < big_body_size) {
        size_t n = GW_MIN((size_t)997, big_body_size - sent);
        gw_buf_appendf(&b, "%zx\r\n", n);
        for (size_t i = 0; i < n; i++)
            gw_buf_append_byte(&b, (char)((sent + i) % 251));
        gw_buf_append_lit(&b, "\r\n");
        sent += n;
    }
    gw_buf_append_lit(&b, "0\r\n\r\n");
    srv_send(sc, b.data, b.len, false);
    gw_buf_free(&b);
}

static void test_pause_resume_chunked(void **state)
{
    big_body_size = 2u * 1024 * 1024;
    env_start(h_big_chunked, false, NULL);
    res_t r;
    res_init(&r);
    r.pause_every = 100 * 1000;
    r.resume_ms = 5;
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 5000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_true(r.pauses >= 20);
    assert_int_equal(r.body_while_paused, 0);
    check_big_body(&r, big_body_size);
    finish();
}

static void h_small_body(sconn_t *sc, int idx, const char *head, size_t hl)
{
    srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Test: p\r\n\r\nhello world", false);
}

/* Paused from on_head while the body sits in the same read: it comes only after resume. */
static void test_pause_in_head(void **state)
{
    env_start(h_small_body, false, NULL);
    res_t r;
    res_init(&r);
    r.pause_in_head = true;
    r.resume_ms = 300; /* well past the 20 ms looked at below, even on a loaded machine */
    send_get(&r, NULL);
    RUN_UNTIL(r.heads == 1, 2000);
    run_for(20);
    assert_int_equal(r.body.len, 0);
    assert_int_equal(r.done, 0);
    RUN_UNTIL(r.done, 2000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(r.body_while_paused, 0);
    assert_int_equal(r.body.len, 11);
    assert_memory_equal(r.body.data, "hello world", 11);
    /* paused and resumed without losing the connection */
    res_t again;
    res_init(&again);
    send_get(&again, NULL);
    RUN_UNTIL(again.done, 2000);
    assert_int_equal(again.status, GW_UPSTREAM_OK);
    assert_int_equal(E.srv.accepts, 1);
    finish();
}

static void test_cancel_in_body(void **state)
{
    big_body_size = 200 * 1024;
    env_start(h_big, false, NULL);
    res_t r, next;
    res_init(&r);
    res_init(&next);
    r.cancel_in_body = true;
    send_get(&r, NULL);
    RUN_UNTIL(r.cancelled, 2000);
    assert_true(r.cancelled);
    RUN_UNTIL(E.closes == 1, 1000);
    assert_int_equal(E.closes, 1);
    assert_int_equal(r.done, 0);
    size_t got = r.body.len;
    assert_true(got > 0 && got < 200 * 1024);
    send_get(&next, NULL);
    RUN_UNTIL(next.done, 2000);
    assert_int_equal(next.status, GW_UPSTREAM_OK);
    assert_int_equal(r.done, 0);
    assert_int_equal(r.body.len, got); /* nothing after the cancel */
    finish();
}

static void test_cancel_by_head_callback(void **state)
{
    env_start(h_small_body, false, NULL);
    res_t r;
    res_init(&r);
    r.refuse_head = true;
    send_get(&r, NULL);
    RUN_UNTIL(r.cancelled, 2000);
    RUN_UNTIL(E.closes == 1, 1000);
    assert_int_equal(E.closes, 1);
    run_for(20);
    assert_int_equal(r.done, 0);
    assert_int_equal(r.body.len, 0);
    finish();
}

static void test_cancel_before_connect(void **state)
{
    env_start(h_hello, false, NULL);
    res_t a, b;
    res_init(&a);
    res_init(&b);
    send_get(&a, NULL);
    gw_upstream_cancel(a.req);
    gw_upstream_target_t named = {GW_STR("localhost"), E.srv.port, false, GW_STR_NULL, GW_STR_NULL};
    send_full(&b, &named, "GET", "/", NULL, 0, GW_STR_NULL, NULL); /* cancelled during DNS */
    gw_upstream_cancel(b.req);
    run_for(50);
    assert_int_equal(a.done + a.heads, 0);
    assert_int_equal(b.done + b.heads, 0);
    finish();
}

/* Against the contract, but it must neither call back nor leak. */
static void test_pool_close_with_request_in_flight(void **state)
{
    env_start(h_silent, false, NULL);
    res_t a, b;
    res_init(&a);
    res_init(&b);
    send_get(&a, NULL);
    RUN_UNTIL(E.srv.requests == 1, 2000);
    send_get(&b, NULL); /* still connecting */
    gw_upstream_pool_close(E.pool);
    E.pool = NULL;
    run_for(30);
    assert_int_equal(a.done + b.done, 0);
    finish();
}

/* ------------------------------------------------------------------------------------------------
 * TLS */

static void test_tls_verified_keepalive(void **state)
{
    gw_upstream_pool_opts_t opts = {.ca_file = certs.ca_file};
    env_start(h_chunked_drip, true, &opts);
    res_t r;
    res_init(&r);
    r.remaining = 3;
    r.next = next_get;
    send_get(&r, NULL);
    RUN_UNTIL(r.done == 3, 3000);
    assert_int_equal(r.done, 3);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(r.body.len, 3 * 31);
    assert_int_equal(E.srv.accepts, 1);
    finish();
}

static void test_tls_sni_name(void **state)
{
    gw_upstream_pool_opts_t opts = {.ca_file = certs.ca_file};
    env_start(h_hello, true, &opts);
    E.target.sni = GW_STR("localhost");
    res_t r;
    res_init(&r);
    send_full(&r, &E.target, "POST", "/x", NULL, 0, GW_STR("{}"), NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: localhost:%u\r\n", E.srv.port);
    assert_contains(E.srv.last_head, host);
    finish();
}

static void test_tls_system_store_rejects(void **state)
{
    env_start(h_hello, true, NULL);
    res_t r;
    res_init(&r);
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_ECONNECT);
    assert_string_equal(r.detail, "TLS certificate verification failed");
    assert_int_equal(r.heads, 0);
    finish();
}

static void test_tls_wrong_name_rejects(void **state)
{
    gw_upstream_pool_opts_t opts = {.ca_file = certs.ca_file};
    env_start(h_hello, true, &opts);
    E.target.sni = GW_STR("wrong.example");
    res_t r;
    res_init(&r);
    send_get(&r, NULL);
    RUN_UNTIL(r.done, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_ECONNECT);
    assert_string_equal(r.detail, "TLS certificate verification failed");
    finish();
}

static void test_tls_pause_resume_large_body(void **state)
{
    big_body_size = 3u * 1024 * 1024;
    gw_upstream_pool_opts_t opts = {.ca_file = certs.ca_file};
    env_start(h_big, true, &opts);
    res_t r;
    res_init(&r);
    r.pause_every = 512 * 1024;
    r.resume_ms = 10;
    send_full(&r, &E.target, "POST", "/big", NULL, 0, GW_STR("ask"), NULL);
    RUN_UNTIL(r.done, 8000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_true(r.pauses >= 5);
    assert_int_equal(r.body_while_paused, 0);
    check_big_body(&r, big_body_size);
    finish();
}

static void test_tls_retry_on_reused_connection(void **state)
{
    gw_upstream_pool_opts_t opts = {.ca_file = certs.ca_file};
    env_start(h_close_second, true, &opts);
    res_t r;
    res_init(&r);
    r.remaining = 2;
    r.next = next_get;
    send_get(&r, NULL);
    RUN_UNTIL(r.done == 2, 3000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(E.srv.accepts, 2);
    finish();
}

/* A large request body over TLS goes out in bounded pieces and arrives whole. */
static size_t tls_body_seen;

static void h_count_body(sconn_t *sc, int idx, const char *head, size_t hl)
{
    tls_body_seen = fh_content_length(head, hl);
    srv_send_str(sc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false);
}

static void test_tls_large_request_body(void **state)
{
    gw_upstream_pool_opts_t opts = {.ca_file = certs.ca_file};
    env_start(h_count_body, true, &opts);
    size_t n = 1024 * 1024 + 17;
    char *body = gw_malloc(n);
    memset(body, 'q', n);
    res_t r;
    res_init(&r);
    send_full(&r, &E.target, "POST", "/upload", NULL, 0, gw_str(body, n), NULL);
    RUN_UNTIL(r.done, 5000);
    assert_int_equal(r.status, GW_UPSTREAM_OK);
    assert_int_equal(tls_body_seen, n);
    finish();
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_content_length_keepalive_reuse, setup),
        cmocka_unit_test_setup(test_request_framing, setup),
        cmocka_unit_test_setup(test_invalid_request_and_target, setup),
        cmocka_unit_test_setup(test_chunked_odd_sizes, setup),
        cmocka_unit_test_setup(test_close_delimited, setup),
        cmocka_unit_test_setup(test_interim_1xx_skipped, setup),
        cmocka_unit_test_setup(test_connection_close_not_reused, setup),
        cmocka_unit_test_setup(test_head_method, setup),
        cmocka_unit_test_setup(test_concurrent_and_max_idle, setup),
        cmocka_unit_test_setup(test_idle_keepalive_expiry, setup),
        cmocka_unit_test_setup(test_server_closes_idle_connection, setup),
        cmocka_unit_test_setup(test_retry_on_reused_connection, setup),
        cmocka_unit_test_setup(test_retry_only_once, setup),
        cmocka_unit_test_setup(test_no_retry_on_fresh_connection, setup),
        cmocka_unit_test_setup(test_connect_refused, setup),
        cmocka_unit_test_setup(test_dns_failure, setup),
        cmocka_unit_test_setup(test_dns_name, setup),
        cmocka_unit_test_setup(test_idle_timeout_waiting, setup),
        cmocka_unit_test_setup(test_idle_timeout_mid_body, setup),
        cmocka_unit_test_setup(test_total_timeout, setup),
        cmocka_unit_test_setup(test_connect_timeout_in_handshake, setup),
        cmocka_unit_test_setup(test_reset_mid_body, setup),
        cmocka_unit_test_setup(test_malformed_responses, setup),
        cmocka_unit_test_setup_teardown(test_oversized_head, setup, NULL),
        cmocka_unit_test_setup(test_pause_resume_large_body, setup),
        cmocka_unit_test_setup(test_pause_resume_chunked, setup),
        cmocka_unit_test_setup(test_pause_in_head, setup),
        cmocka_unit_test_setup(test_cancel_in_body, setup),
        cmocka_unit_test_setup(test_cancel_by_head_callback, setup),
        cmocka_unit_test_setup(test_cancel_before_connect, setup),
        cmocka_unit_test_setup(test_pool_close_with_request_in_flight, setup),
        cmocka_unit_test_setup(test_tls_verified_keepalive, setup),
        cmocka_unit_test_setup(test_tls_sni_name, setup),
        cmocka_unit_test_setup(test_tls_system_store_rejects, setup),
        cmocka_unit_test_setup(test_tls_wrong_name_rejects, setup),
        cmocka_unit_test_setup(test_tls_pause_resume_large_body, setup),
        cmocka_unit_test_setup(test_tls_retry_on_reused_connection, setup),
        cmocka_unit_test_setup(test_tls_large_request_body, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
