/* A fake HTTP/1.1 server for the unit tests, on 127.0.0.1 and an ephemeral port on the test's own
 * libuv loop: one request per connection (head and Content-Length body), answered by a handler,
 * then closed; plus the pieces a test with its own server needs (listen, framing, a free port).
 * Static inline so each test binary takes only what it uses. Include after <cmocka.h>. */
#ifndef AIGW_TESTS_FAKE_HTTP_H
#define AIGW_TESTS_FAKE_HTTP_H

#include "core/alloc.h"
#include "core/buf.h"
#include "core/gw.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

/* ------------------------------------------------------------------------------------------------
 * Building blocks */

/* Binds listener to 127.0.0.1 on a port the system picks, listens, and returns that port. */
static inline uint16_t fh_listen(uv_loop_t *loop, uv_tcp_t *listener, void *data, uv_connection_cb on_connection)
{
    struct sockaddr_in sin;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
    assert_int_equal(uv_tcp_init(loop, listener), 0);
    listener->data = data;
    assert_int_equal(uv_tcp_bind(listener, (const struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)listener, 128, on_connection), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(listener, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A port nothing listens on: bound, learnt, closed (the close runs before this returns). */
static inline uint16_t fh_unused_port(uv_loop_t *loop)
{
    uv_tcp_t t;
    struct sockaddr_in sin;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
    uv_tcp_init(loop, &t);
    assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&sin, 0), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len), 0);
    uint16_t port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return port;
}

/* The Content-Length value in a request head (0 when absent). */
static inline size_t fh_content_length(const char *head, size_t len)
{
    static const char key[] = "\r\ncontent-length:";
    size_t kl = sizeof(key) - 1;
    for (size_t i = 0; i + kl <= len; i++) {
        if (strncasecmp(head + i, key, kl) != 0)
            continue;
        size_t v = 0;
        for (size_t j = i + kl; j < len && (head[j] == ' ' || (head[j] >= '0' && head[j] <= '9')); j++)
            if (head[j] != ' ')
                v = v * 10 + (size_t)(head[j] - '0');
        return v;
    }
    return 0;
}

/* The size of the request at the start of d (head and Content-Length body) once all of it is
 * there, else 0; *head_len gets the head's size, blank line included. */
static inline size_t fh_request_size(const char *d, size_t len, size_t *head_len)
{
    const char *end = d ? memmem(d, len, "\r\n\r\n", 4) : NULL;
    if (end == NULL)
        return 0;
    size_t hl = (size_t)(end - d) + 4, bl = fh_content_length(d, hl);
    if (len < hl + bl)
        return 0;
    *head_len = hl;
    return hl + bl;
}

/* uv_alloc_cb: 64 KiB from gw_malloc; the read callback frees it. */
static inline void fh_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = gw_malloc(65536);
    buf->len = 65536;
}

/* Appends a whole answer: status line, Content-Type, Content-Length, the extra header lines (each
 * ending in CRLF; NULL for none), Connection: close, then the body. */
static inline void fh_answer(gw_buf_t *a, int status, const char *ctype, const char *extra, const char *body,
                             size_t len)
{
    gw_buf_appendf(a, "HTTP/1.1 %d Whatever\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                   status, ctype, len, extra ? extra : "");
    gw_buf_append(a, body, len);
}

/* ------------------------------------------------------------------------------------------------
 * The server */

/* One request as read: NUL-terminated copies, each cut to its field's size. */
typedef struct {
    char method[16];
    char path[512];
    char head[8192]; /* request line and headers, blank line included */
    char body[8192]; /* the Content-Length body */
} fh_req_t;

typedef struct fh_server_s fh_server_t;

/* Fills answer with the whole response (fh_answer); it is written, then the connection closes. */
typedef void (*fh_handler_t)(fh_server_t *s, const fh_req_t *rq, gw_buf_t *answer);

typedef struct fh_conn_s {
    uv_tcp_t tcp;
    fh_server_t *srv;
    struct fh_conn_s *next;
    gw_buf_t in;
    bool closing;
} fh_conn_t;

#define FH_RECORDED 32

struct fh_server_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    uint16_t port;
    fh_handler_t handler;
    void *ud;                   /* the test's, for the handler */
    bool silent;                /* accept, never read */
    bool hang;                  /* read each request, never answer */
    int nreq;                   /* requests read */
    fh_req_t reqs[FH_RECORDED]; /* the first FH_RECORDED requests, in order */
    fh_req_t last;
    fh_conn_t *conns;
    fh_server_t *next_server;
};

/* Every server started and not yet freed (fh_servers_stop_all, fh_servers_free_all). */
static fh_server_t *fh_servers;

static inline void fh_conn_closed_(uv_handle_t *h)
{
    fh_conn_t *c = h->data;
    for (fh_conn_t **pp = &c->srv->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    gw_buf_free(&c->in);
    free(c);
}

static inline void fh_conn_close_(fh_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, fh_conn_closed_);
}

typedef struct {
    uv_write_t w;
    fh_conn_t *c;
    char data[];
} fh_write_t;

static inline void fh_on_write_(uv_write_t *w, int status)
{
    fh_write_t *fw = GW_CONTAINER_OF(w, fh_write_t, w);
    fh_conn_close_(fw->c);
    free(fw);
}

static inline void fh_copy_(char *dst, size_t cap, const char *src, size_t n)
{
    n = GW_MIN(n, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static inline void fh_conn_process_(fh_conn_t *c)
{
    size_t hl = 0, total = fh_request_size(c->in.data, c->in.len, &hl);
    if (total == 0)
        return;
    const char *d = c->in.data;
    fh_server_t *s = c->srv;
    fh_req_t *rq = &s->last;
    memset(rq, 0, sizeof(*rq));
    const char *sp1 = memchr(d, ' ', hl);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', hl - (size_t)(sp1 + 1 - d)) : NULL;
    assert_non_null(sp2);
    fh_copy_(rq->method, sizeof(rq->method), d, (size_t)(sp1 - d));
    fh_copy_(rq->path, sizeof(rq->path), sp1 + 1, (size_t)(sp2 - sp1 - 1));
    fh_copy_(rq->head, sizeof(rq->head), d, hl);
    fh_copy_(rq->body, sizeof(rq->body), d + hl, total - hl);
    if (s->nreq < FH_RECORDED)
        s->reqs[s->nreq] = *rq;
    s->nreq++;
    uv_read_stop((uv_stream_t *)&c->tcp); /* one request per connection */
    if (s->hang)
        return;
    gw_buf_t answer;
    gw_buf_init(&answer, GW_BUF_UNLIMITED);
    s->handler(s, rq, &answer);
    fh_write_t *fw = gw_malloc(sizeof(*fw) + answer.len + 1);
    fw->c = c;
    memcpy(fw->data, answer.data, answer.len);
    uv_buf_t b = uv_buf_init(fw->data, (unsigned)answer.len);
    assert_int_equal(uv_write(&fw->w, (uv_stream_t *)&c->tcp, &b, 1, fh_on_write_), 0);
    gw_buf_free(&answer);
}

static inline void fh_on_read_(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    fh_conn_t *c = st->data;
    if (nread > 0)
        gw_buf_append(&c->in, buf->base, (size_t)nread);
    free(buf->base);
    if (nread < 0)
        fh_conn_close_(c);
    else if (nread > 0)
        fh_conn_process_(c);
}

static inline void fh_on_accept_(uv_stream_t *l, int status)
{
    fh_server_t *s = l->data;
    if (status != 0)
        return;
    fh_conn_t *c = gw_calloc(1, sizeof(*c));
    c->srv = s;
    gw_buf_init(&c->in, 1 << 20);
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    s->conns = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        fh_conn_close_(c);
        return;
    }
    if (!s->silent)
        uv_read_start((uv_stream_t *)&c->tcp, fh_alloc, fh_on_read_);
}

/* Starts a server answering with handler (ud for it in s->ud). The server is the header's: it
 * lives until fh_servers_free_all. */
static inline fh_server_t *fh_server_start(uv_loop_t *loop, fh_handler_t handler, void *ud)
{
    fh_server_t *s = gw_calloc(1, sizeof(*s));
    s->loop = loop;
    s->handler = handler;
    s->ud = ud;
    s->port = fh_listen(loop, &s->listener, s, fh_on_accept_);
    s->listening = true;
    s->next_server = fh_servers;
    fh_servers = s;
    return s;
}

/* Stops listening (the port refuses from then on) and closes every connection; again is a no-op. */
static inline void fh_server_stop(fh_server_t *s)
{
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listening = false;
    }
    for (fh_conn_t *c = s->conns; c; c = c->next)
        fh_conn_close_(c);
}

/* How many of the recorded requests asked for path. */
static inline int fh_server_count_path(const fh_server_t *s, const char *path)
{
    int n = 0;
    for (int i = 0; i < s->nreq && i < FH_RECORDED; i++)
        n += strcmp(s->reqs[i].path, path) == 0;
    return n;
}

/* Whether the request has the header line `line` ("Name: value"; the name in any case). */
static inline bool fh_req_has_header(const fh_req_t *rq, const char *line)
{
    char needle[1024];
    int n = snprintf(needle, sizeof(needle), "\r\n%s\r\n", line);
    assert_true(n > 0 && (size_t)n < sizeof(needle));
    return strcasestr(rq->head, needle) != NULL;
}

/* In a teardown: stops every server; run the loop afterwards so that the closes complete. */
static inline void fh_servers_stop_all(void)
{
    for (fh_server_t *s = fh_servers; s; s = s->next_server)
        fh_server_stop(s);
}

/* In a teardown, once the loop has run the closes (after uv_loop_close): frees every server. */
static inline void fh_servers_free_all(void)
{
    while (fh_servers) {
        fh_server_t *s = fh_servers;
        fh_servers = s->next_server;
        free(s);
    }
}

#endif
