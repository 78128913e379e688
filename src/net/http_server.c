/* HTTP/1.1 server connections on libuv and net/http_request_parser (see http_server.h). Requests are parsed
 * from a loop-wide read buffer; bytes that arrive while a request is being answered (pipelining)
 * wait in the connection's input buffer and are parsed when the response ends. On a TLS listener
 * the socket carries ciphertext: reads are decrypted into the same input buffer and writes are
 * encrypted before the same queue, so parsing, timeouts and backpressure are shared with plain
 * HTTP, which pays one untaken branch per read and per write for it. */
#include "net/http_server.h"

#include "core/alloc.h"
#include "core/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF_SIZE (64 * 1024)
#define TLS_RECORD (16 * 1024)      /* largest plaintext of one TLS record */
#define TLS_WRITE_CHUNK (64 * 1024) /* ciphertext handed to the socket at a time: bounds what sits
                                       encrypted in memory before it is queued and counted */
#define TLS_ALERT_MAX 512           /* an alert or close_notify sent as the connection closes */


struct gw_http_server_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    bool stopping;
    bool free_requested;
    gw_http_limits_t limits;
    gw_http_handler_t handler;
    gw_http_conn_t *conns; /* doubly linked list of open connections */
    size_t n_conns;
    size_t closing_handles; /* handles with a close callback outstanding */
    gw_tls_ctx_t *tls;  /* a reference, for connections accepted from now on; NULL: plain HTTP */
    char *tls_gather;   /* TLS_RECORD bytes where small writes are gathered into one record */
    char read_buf[READ_BUF_SIZE];
    bool read_buf_busy;
};

struct gw_http_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    gw_http_server_t *srv;
    gw_http_conn_t *prev, *next;
    gw_http_request_parser_t parser;
    char peer[64];

    gw_buf_t inbuf;         /* received, not yet parsed bytes */
    gw_http_req_t *active;  /* owned by the handler until response end */
    bool sent_continue;     /* 100 Continue sent for the message being received */
    int reject_status;      /* status of a final error answered by the server itself */
    const char *reject_reason;

    /* response state */
    gw_buf_t head;            /* response head not yet written (coalesced with the first body bytes) */
    bool chunked;
    bool close_delimited;
    bool head_only;           /* HEAD request */
    size_t pending_write;
    bool over_high;
    bool close_after_response;

    bool processing;          /* inside process_input(): a synchronous response must not recurse */
    bool read_stopped;
    bool client_gone;
    bool closing;             /* uv_close issued or pending until the active request ends */
    bool lingering;           /* write side shut, discarding input until EOF or LINGER_MS */
    enum { TIMER_NONE, TIMER_IDLE, TIMER_HEADER } timer_mode;
    uint64_t deadline;        /* loop ms when the timer_mode's time is up */
    uint64_t timer_due;       /* loop ms when the armed timer fires; 0: not armed */
    uv_shutdown_t shutdown_req;
    int open_handles;
    gw_tls_conn_t *tls;       /* NULL on a plain connection */
    bool tls_started;         /* a first byte of ciphertext arrived */
};

typedef struct {
    uv_write_t w;
    gw_http_conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static void conn_close(gw_http_conn_t *c);
static void conn_finish(gw_http_conn_t *c);
static void process_input(gw_http_conn_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);
static void on_linger_timer(uv_timer_t *t);
static int tls_write(gw_http_conn_t *c, uv_buf_t *bufs, unsigned nbufs);

#define LINGER_MS 2000 /* read and discard after a final error response, so the client sees it */

/* Starts the idle or header time of the connection. The timer is re-armed only when the new
 * deadline comes before the one it is armed for; otherwise it fires early and on_timer re-arms it
 * for what is left. Every request ends an idle time and starts one: this keeps the timer heap out
 * of the per-request path. */
static void conn_deadline_set(gw_http_conn_t *c, int mode, uint64_t timeout_ms)
{
    uint64_t now = uv_now(c->srv->loop);
    c->timer_mode = mode;
    c->deadline = now + timeout_ms;
    if (c->lingering || (c->timer_due && c->timer_due <= c->deadline))
        return;
    c->timer_due = c->deadline;
    uv_timer_start(&c->timer, on_timer, timeout_ms, 0);
}

void gw_http_limits_default(gw_http_limits_t *l)
{
    l->max_header_bytes = 64 * 1024;
    l->max_body_bytes = 50u * 1024 * 1024;
    l->header_timeout_ms = 10000;
    l->idle_timeout_ms = 300000;
    l->write_high_water = 256 * 1024;
    l->write_low_water = 64 * 1024;
    l->tls = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Listening socket */

int gw_http_listen_socket(const char *host, uint16_t port, int backlog)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int family = AF_INET;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0) {
        if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
            return -EINVAL;
        family = AF_INET6;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* ---------------------------------------------------------------------------------------------
 * Writing */

static void on_write(uv_write_t *w, int status)
{
    write_req_t *wr = (write_req_t *)w;
    gw_http_conn_t *c = wr->conn;
    c->pending_write -= wr->len;
    free(wr);
    if (status < 0 && !c->client_gone) {
        c->client_gone = true;
        if (c->active) {
            c->active->aborted = true;
            if (c->srv->handler.on_abort)
                c->srv->handler.on_abort(c->active, c->srv->handler.ud);
        } else {
            conn_close(c);
        }
        return;
    }
    if (c->over_high && c->pending_write <= c->srv->limits.write_low_water) {
        c->over_high = false;
        if (c->active && !c->active->aborted && c->srv->handler.on_drain)
            c->srv->handler.on_drain(c->active, c->srv->handler.ud);
    }
    if (c->pending_write == 0 && c->close_after_response && c->active == NULL)
        conn_finish(c);
}

/* Writes the buffers: directly when the socket takes them, the rest copied into one queued
 * write. Returns GW_OK, or GW_DONE when the client is gone. */
static int conn_write(gw_http_conn_t *c, uv_buf_t *bufs, unsigned nbufs)
{
    if (c->client_gone || c->closing)
        return GW_DONE;
    if (c->tls)
        return tls_write(c, bufs, nbufs);
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return GW_OK;
    size_t skip = 0;
    if (c->pending_write == 0) {
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (n == (int)total)
            return GW_OK;
        if (n > 0)
            skip = (size_t)n;
        else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            c->client_gone = true;
            return GW_DONE;
        }
    }
    size_t rest = total - skip;
    write_req_t *wr = gw_malloc(sizeof(*wr) + rest);
    wr->conn = c;
    wr->len = rest;
    size_t off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t l = bufs[i].len;
        const char *p = bufs[i].base;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        p += skip;
        l -= skip;
        skip = 0;
        memcpy(wr->data + off, p, l);
        off += l;
    }
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)rest);
    int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        free(wr);
        c->client_gone = true;
        return GW_DONE;
    }
    c->pending_write += rest;
    if (c->pending_write > c->srv->limits.write_high_water)
        c->over_high = true;
    return GW_OK;
}

/* ---------------------------------------------------------------------------------------------
 * TLS: ciphertext moves between the socket and tls.c's memory BIOs */

/* Writes the ciphertext TLS has produced: directly when the socket takes it, the rest queued
 * (and counted in pending_write, so the water marks see what the socket has yet to take). One
 * copy out of the BIO; no second one for the queued part. Returns GW_OK or GW_DONE. */
static int tls_flush(gw_http_conn_t *c)
{
    size_t n = gw_tls_conn_pending(c->tls);
    if (n == 0)
        return GW_OK;
    if (c->client_gone || c->closing)
        return GW_DONE; /* the bytes die with the connection */
    write_req_t *wr = gw_malloc(sizeof(*wr) + n);
    n = gw_tls_conn_take(c->tls, wr->data, n);
    size_t skip = 0;
    if (c->pending_write == 0) {
        uv_buf_t b = uv_buf_init(wr->data, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r == (int)n) {
            free(wr);
            return GW_OK;
        }
        if (r > 0) {
            skip = (size_t)r;
        } else if (r != UV_EAGAIN && r != UV_ENOSYS) {
            free(wr);
            c->client_gone = true;
            return GW_DONE;
        }
    }
    wr->conn = c;
    wr->len = n - skip;
    uv_buf_t b = uv_buf_init(wr->data + skip, (unsigned)wr->len);
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(wr);
        c->client_gone = true;
        return GW_DONE;
    }
    c->pending_write += wr->len;
    if (c->pending_write > c->srv->limits.write_high_water)
        c->over_high = true;
    return GW_OK;
}

static int tls_encrypt(gw_http_conn_t *c, const char *p, size_t n)
{
    if (gw_tls_conn_write(c->tls, p, n) != GW_OK) {
        gw_log_debug("http: %s: TLS: %s", c->peer, gw_tls_conn_error(c->tls));
        c->client_gone = true;
        return GW_DONE;
    }
    return gw_tls_conn_pending(c->tls) >= TLS_WRITE_CHUNK ? tls_flush(c) : GW_OK;
}

/* conn_write for TLS. Each TLS write makes at least one record (22+ bytes of overhead and a
 * separate decryption for the client), so small pieces — a head, a chunk-size line, a CRLF — are
 * gathered into full records; pieces of a record or more are encrypted where they lie. */
static int tls_write(gw_http_conn_t *c, uv_buf_t *bufs, unsigned nbufs)
{
    char *gather = c->srv->tls_gather;
    size_t used = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        const char *p = bufs[i].base;
        size_t l = bufs[i].len;
        while (l > 0) {
            size_t k;
            int rc = GW_OK;
            if (used == 0 && l >= TLS_RECORD) {
                k = GW_MIN(l, (size_t)TLS_WRITE_CHUNK);
                rc = tls_encrypt(c, p, k);
            } else {
                k = GW_MIN(l, TLS_RECORD - used);
                memcpy(gather + used, p, k);
                used += k;
                if (used == TLS_RECORD) {
                    rc = tls_encrypt(c, gather, used);
                    used = 0;
                }
            }
            if (rc != GW_OK)
                return GW_DONE;
            p += k;
            l -= k;
        }
    }
    if (used && tls_encrypt(c, gather, used) != GW_OK)
        return GW_DONE;
    return tls_flush(c);
}

/* For closes that do not wait for queued writes: sends what TLS has pending (an alert, a
 * close_notify) if the socket takes it at once, and never ahead of a queued write. */
static void tls_send_now(gw_http_conn_t *c)
{
    char tmp[TLS_ALERT_MAX];
    size_t pending = gw_tls_conn_pending(c->tls);
    if (pending == 0 || pending > sizeof(tmp) || c->pending_write > 0)
        return;
    size_t n = gw_tls_conn_take(c->tls, tmp, sizeof(tmp));
    uv_buf_t b = uv_buf_init(tmp, (unsigned)n);
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

static __thread char date_cache[48];
static __thread time_t date_cache_sec;

static gw_str_t http_date(void)
{
    time_t now = time(NULL);
    if (now != date_cache_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date_cache, sizeof(date_cache), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        date_cache_sec = now;
    }
    return gw_str_c(date_cache);
}

int gw_http_response_head(gw_http_req_t *req, int status, const gw_http_header_t *headers, size_t n_headers,
                          int64_t content_length)
{
    gw_http_conn_t *c = req->conn;
    if (req->status != 0)
        return GW_ERROR;
    req->status = status;
    gw_buf_t *h = &c->head;
    gw_buf_reset(h);
    /* formatted by hand: this runs for every response */
    char line[16] = "HTTP/1.1 000 ";
    line[7] = req->http_minor >= 1 ? '1' : '0';
    line[9] = (char)('0' + (status / 100) % 10);
    line[10] = (char)('0' + (status / 10) % 10);
    line[11] = (char)('0' + status % 10);
    gw_buf_append(h, line, 13);
    const char *reason = gw_http_reason(status);
    gw_buf_append(h, reason, strlen(reason));
    gw_buf_append_lit(h, "\r\n");
    for (size_t i = 0; i < n_headers; i++) {
        gw_buf_append_str(h, headers[i].name);
        gw_buf_append_lit(h, ": ");
        gw_buf_append_str(h, headers[i].value);
        gw_buf_append_lit(h, "\r\n");
    }
    gw_buf_append_lit(h, "Date: ");
    gw_buf_append_str(h, http_date());
    gw_buf_append_lit(h, "\r\n");
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    c->chunked = false;
    c->close_delimited = false;
    if (!no_body) {
        if (content_length >= 0) {
            gw_buf_append_lit(h, "Content-Length: ");
            gw_buf_append_u64(h, (uint64_t)content_length);
            gw_buf_append_lit(h, "\r\n");
        } else if (req->http_minor >= 1) {
            gw_buf_append_lit(h, "Transfer-Encoding: chunked\r\n");
            c->chunked = true;
        } else {
            c->close_delimited = true;
        }
    }
    if (!req->keep_alive || c->srv->stopping || c->close_delimited || c->reject_status)
        c->close_after_response = true;
    if (c->close_after_response)
        gw_buf_append_lit(h, "Connection: close\r\n");
    else if (req->http_minor == 0)
        gw_buf_append_lit(h, "Connection: keep-alive\r\n");
    gw_buf_append_lit(h, "\r\n");
    return GW_OK;
}

int gw_http_response_body(gw_http_req_t *req, const char *p, size_t n)
{
    gw_http_conn_t *c = req->conn;
    if (req->aborted || c->client_gone)
        return GW_DONE;
    if (n == 0)
        return GW_OK;
    req->bytes_sent += n;
    uv_buf_t bufs[4];
    unsigned nb = 0;
    if (c->head.len)
        bufs[nb++] = uv_buf_init(c->head.data, (unsigned)c->head.len);
    if (c->head_only) {
        int rc = nb ? conn_write(c, bufs, nb) : GW_OK;
        gw_buf_reset(&c->head);
        return rc;
    }
    char size_line[24];
    if (c->chunked) {
        static const char hex[] = "0123456789abcdef";
        char digits[16];
        int nd = 0;
        for (size_t v = n; v; v >>= 4)
            digits[nd++] = hex[v & 15];
        int l = 0;
        while (nd)
            size_line[l++] = digits[--nd];
        size_line[l++] = '\r';
        size_line[l++] = '\n';
        bufs[nb++] = uv_buf_init(size_line, (unsigned)l);
    }
    bufs[nb++] = uv_buf_init((char *)p, (unsigned)n);
    if (c->chunked)
        bufs[nb++] = uv_buf_init("\r\n", 2);
    int rc = conn_write(c, bufs, nb);
    gw_buf_reset(&c->head);
    return rc;
}

static void request_done(gw_http_conn_t *c)
{
    gw_http_req_t *req = c->active;
    if (c->srv->handler.on_response_end)
        c->srv->handler.on_response_end(req, c->srv->handler.ud);
    c->active = NULL;
    gw_http_req_free(req);
    if (c->client_gone) {
        conn_close(c);
        return;
    }
    if (c->close_after_response || c->srv->stopping) {
        c->close_after_response = true;
        if (c->pending_write == 0)
            conn_finish(c);
        return;
    }
    if (!c->processing)
        process_input(c);
}

void gw_http_response_end(gw_http_req_t *req)
{
    gw_http_conn_t *c = req->conn;
    if (req->status == 0)
        gw_http_response_head(req, 500, NULL, 0, 0);
    uv_buf_t bufs[2];
    unsigned nb = 0;
    if (c->head.len)
        bufs[nb++] = uv_buf_init(c->head.data, (unsigned)c->head.len);
    if (c->chunked && !c->head_only)
        bufs[nb++] = uv_buf_init("0\r\n\r\n", 5);
    if (nb)
        conn_write(c, bufs, nb);
    gw_buf_reset(&c->head);
    request_done(c);
}

void gw_http_response_abort(gw_http_req_t *req)
{
    gw_http_conn_t *c = req->conn;
    c->close_after_response = true;
    c->client_gone = true; /* nothing more may be written: the message stays visibly truncated */
    request_done(c);
}

void gw_http_respond_simple(gw_http_req_t *req, int status, gw_str_t content_type, gw_str_t body,
                            const gw_http_header_t *extra, size_t n_extra)
{
    gw_http_header_t hdrs[16];
    size_t n = 0;
    if (content_type.len)
        hdrs[n++] = (gw_http_header_t){GW_STR("Content-Type"), content_type};
    for (size_t i = 0; i < n_extra && n < GW_ARRAY_SIZE(hdrs); i++)
        hdrs[n++] = extra[i];
    gw_http_response_head(req, status, hdrs, n, (int64_t)body.len);
    if (body.len)
        gw_http_response_body(req, body.base, body.len);
    gw_http_response_end(req);
}

size_t gw_http_pending_bytes(const gw_http_req_t *req)
{
    return req->conn->pending_write;
}

bool gw_http_over_high_water(const gw_http_req_t *req)
{
    return req->conn->over_high;
}

const char *gw_http_peer(const gw_http_req_t *req)
{
    return req->conn->peer;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing */

static void send_reject(gw_http_conn_t *c)
{
    gw_http_req_t *req = c->parser.current; /* the partial request, when there is one */
    c->parser.current = NULL;
    if (req == NULL) {
        req = gw_calloc(1, sizeof(*req));
        req->http_minor = 1;
        req->start_ns = uv_hrtime();
        gw_buf_init(&req->body, 0);
    }
    req->conn = c;
    if (req->method.base == NULL)
        req->method = GW_STR("-");
    req->keep_alive = false;
    c->head_only = false;
    c->active = req;
    c->close_after_response = true;
    gw_buf_t body;
    gw_buf_init(&body, 4096);
    const char *reason = c->reject_reason ? c->reject_reason : "bad request";
    if (c->srv->handler.format_error)
        c->srv->handler.format_error(c->reject_status, reason, &body, c->srv->handler.ud);
    else
        gw_buf_appendf(&body, "{\"error\":{\"message\":\"%s\"}}", reason);
    gw_http_respond_simple(req, c->reject_status, GW_STR("application/json"), gw_buf_str(&body), NULL, 0);
    gw_buf_free(&body);
}

static void on_timer(uv_timer_t *t)
{
    gw_http_conn_t *c = t->data;
    c->timer_due = 0;
    if (c->active || c->timer_mode == TIMER_NONE)
        return; /* a request is being answered: the next idle time arms the timer again */
    uint64_t now = uv_now(c->srv->loop);
    if (now < c->deadline) { /* armed for an earlier deadline that has since moved */
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    if (gw_http_request_parser_in_message(&c->parser) || c->inbuf.len) {
        gw_log_debug("http: %s: request not received within the header timeout", c->peer);
        c->reject_status = 408;
        c->reject_reason = "request not received in time";
        send_reject(c);
        return;
    }
    if (c->tls && !gw_tls_conn_handshake_done(c->tls))
        gw_log_debug("http: %s: TLS handshake not completed within the header timeout", c->peer);
    conn_close(c); /* idle keep-alive connection, or a handshake that never finished */
}

/* Parses buffered input and hands complete requests to the handler, one at a time. */
static void process_input(gw_http_conn_t *c)
{
    if (c->processing)
        return;
    c->processing = true;
    while (!c->closing && !c->lingering && c->active == NULL && !c->client_gone && c->inbuf.len) {
        size_t used = 0;
        int rc = gw_http_request_parser_feed(&c->parser, c->inbuf.data, c->inbuf.len, &used);
        gw_buf_consume(&c->inbuf, used);
        if (rc == GW_ERROR) {
            c->reject_status = c->parser.error_status;
            c->reject_reason = c->parser.error_reason;
            gw_buf_reset(&c->inbuf);
            send_reject(c);
            break;
        }
        if (c->parser.expect_continue && !c->sent_continue) {
            c->sent_continue = true;
            uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
            conn_write(c, &b, 1);
        }
        if (rc == GW_AGAIN) {
            if (gw_http_request_parser_in_message(&c->parser) && c->timer_mode != TIMER_HEADER)
                conn_deadline_set(c, TIMER_HEADER, c->srv->limits.header_timeout_ms);
            break;
        }
        gw_http_req_t *req = gw_http_request_parser_take(&c->parser);
        req->conn = c;
        c->sent_continue = false;
        c->head_only = gw_str_eq_lit(req->method, "HEAD");
        c->active = req;
        c->timer_mode = TIMER_NONE; /* the timer may stay armed: on_timer ignores it now */
        c->srv->handler.on_request(req, c->srv->handler.ud);
    }
    c->processing = false;
    if (!c->closing && c->active == NULL && c->inbuf.len == 0 && !c->client_gone && !c->lingering &&
        !gw_http_request_parser_in_message(&c->parser)) {
        if (c->srv->stopping) {
            conn_close(c);
            return;
        }
        conn_deadline_set(c, TIMER_IDLE, c->srv->limits.idle_timeout_ms);
        if (c->tls)
            gw_tls_conn_trim(c->tls); /* idle TLS connections keep no large buffers */
    }
    /* Resume reading if input had been throttled and was consumed. */
    if (c->read_stopped && !c->closing && !c->client_gone && c->inbuf.len < c->srv->limits.max_header_bytes) {
        c->read_stopped = false;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gw_http_conn_t *c = h->data;
    (void)suggested;
    /* One read buffer per loop: libuv calls read_cb right after alloc_cb, and everything kept
     * past the callback is copied. */
    buf->base = c->srv->read_buf;
    buf->len = READ_BUF_SIZE;
}

/* EOF, a reset or a broken TLS stream: the client is gone (a half-close while we answer counts
 * too: HTTP clients do not half-close while they still want the answer). */
static void conn_lost(gw_http_conn_t *c)
{
    c->client_gone = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->active) {
        if (!c->active->aborted) {
            c->active->aborted = true;
            if (c->srv->handler.on_abort)
                c->srv->handler.on_abort(c->active, c->srv->handler.ud);
        }
    } else {
        conn_close(c);
    }
}

/* New bytes are in inbuf. */
static inline void input_arrived(gw_http_conn_t *c)
{
    if (c->active) {
        /* pipelined bytes while answering: keep them, but bounded */
        if (c->inbuf.len >= c->srv->limits.max_header_bytes && !c->read_stopped) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->read_stopped = true;
        }
        return;
    }
    process_input(c);
}

/* A first byte that is an upper-case letter is a request line, not a TLS record (those start with
 * 0x16, or with the high bit set for an SSLv2-format hello): a client speaking plain HTTP to the
 * TLS port. It gets one plain 400 saying so, as nginx does, instead of an unexplained close. */
static bool tls_plain_http_probe(gw_http_conn_t *c, const char *p)
{
    if (c->tls_started)
        return false;
    c->tls_started = true;
    if (p[0] < 'A' || p[0] > 'Z')
        return false;
    gw_log_debug("http: %s: plain HTTP request on the TLS listener", c->peer);
    gw_tls_conn_free(c->tls);
    c->tls = NULL; /* from here on a plain connection that answers once and closes */
    c->reject_status = 400;
    c->reject_reason = "plain HTTP request sent to the HTTPS port";
    send_reject(c);
    return true;
}

/* Ciphertext arrived: advance the handshake, decrypt into inbuf, send what TLS has to say. The
 * connection timer is left alone until the handshake is done, so the header timeout armed at
 * accept bounds the handshake. */
static void tls_on_read(gw_http_conn_t *c, const char *p, size_t n)
{
    gw_tls_conn_t *t = c->tls;
    if (tls_plain_http_probe(c, p))
        return;
    gw_tls_conn_feed(t, p, n);
    if (!gw_tls_conn_handshake_done(t)) {
        int rc = gw_tls_conn_handshake(t);
        if (rc == GW_ERROR) {
            gw_log_debug("http: %s: TLS handshake failed: %s", c->peer, gw_tls_conn_error(t));
            tls_send_now(c); /* the alert, when the socket takes it */
            conn_lost(c);
            return;
        }
        if (rc == GW_AGAIN) {
            if (tls_flush(c) != GW_OK)
                conn_lost(c);
            return;
        }
    }
    size_t got = 0;
    int rc;
    for (;;) {
        /* decrypted straight into inbuf: no copy on the way to the parser */
        char *dst = gw_buf_reserve(&c->inbuf, TLS_RECORD);
        size_t k = 0;
        rc = dst ? gw_tls_conn_read(t, dst, TLS_RECORD, &k) : GW_ERROR;
        if (rc != GW_OK)
            break;
        gw_buf_commit(&c->inbuf, k);
        got += k;
    }
    if (rc == GW_ERROR)
        gw_log_debug("http: %s: TLS: %s", c->peer, gw_tls_conn_error(t));
    /* the handshake's last flight, session tickets, a key update's answer: before any response */
    if (tls_flush(c) != GW_OK) {
        conn_lost(c);
        return;
    }
    if (got)
        input_arrived(c);
    if (c->closing || c->lingering)
        return;
    if (rc == GW_DONE || rc == GW_ERROR) {
        if (rc == GW_DONE && c->active == NULL && gw_tls_conn_pending(t) == 0) {
            gw_tls_conn_shutdown(t); /* answer the client's close_notify with ours */
            tls_send_now(c);
        }
        conn_lost(c);
        return;
    }
    if (got == 0 && c->active == NULL && c->timer_mode == TIMER_IDLE && gw_tls_conn_mid_record(t)) {
        /* part of a record on an idle connection: a request has begun, as a first plain byte
         * would say, so the header timeout applies */
        conn_deadline_set(c, TIMER_HEADER, c->srv->limits.header_timeout_ms);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gw_http_conn_t *c = s->data;
    if (nread == 0)
        return;
    if (c->lingering) {
        if (nread < 0)
            conn_close(c);
        return; /* discard */
    }
    if (nread < 0) {
        conn_lost(c);
        return;
    }
    if (c->tls) {
        tls_on_read(c, buf->base, (size_t)nread);
        return;
    }
    if (gw_buf_append(&c->inbuf, buf->base, (size_t)nread) != GW_OK) {
        /* cannot happen: inbuf is unbounded, reading is throttled below */
        conn_close(c);
        return;
    }
    input_arrived(c);
}


/* ---------------------------------------------------------------------------------------------
 * Connection lifetime */

static void maybe_free_server(gw_http_server_t *s);

static void on_conn_handle_closed(uv_handle_t *h)
{
    gw_http_conn_t *c = h->data;
    gw_http_server_t *srv = c->srv;
    srv->closing_handles--;
    if (--c->open_handles > 0)
        return;
    gw_http_request_parser_free(&c->parser);
    gw_buf_free(&c->inbuf);
    gw_buf_free(&c->head);
    gw_tls_conn_free(c->tls);
    free(c);
    maybe_free_server(srv);
}

static void conn_close(gw_http_conn_t *c)
{
    if (c->closing)
        return;
    if (c->active) {
        /* wait for the handler to end the response; make sure it knows */
        c->client_gone = true;
        c->close_after_response = true;
        if (!c->active->aborted) {
            c->active->aborted = true;
            if (c->srv->handler.on_abort)
                c->srv->handler.on_abort(c->active, c->srv->handler.ud);
        }
        return;
    }
    if (c->tls && !c->client_gone && !c->lingering && gw_tls_conn_handshake_done(c->tls)) {
        /* an idle or drained connection closed by us: close_notify if the socket takes it now */
        gw_tls_conn_shutdown(c->tls);
        tls_send_now(c);
    }
    c->closing = true;
    gw_http_server_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    if (srv->handler.on_conn_close)
        srv->handler.on_conn_close(srv->handler.ud);
    srv->closing_handles += 2;
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    gw_http_conn_t *c = req->data;
    if (status < 0)
        conn_close(c);
}

static void on_linger_timer(uv_timer_t *t)
{
    conn_close(t->data);
}

/* Ends a connection after its last response was written: the write side is shut down, and
 * whatever the client still sends is read and dropped for a moment, so that unread input (a
 * rejected request body) does not turn our response into a connection reset. */
static void conn_finish(gw_http_conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->client_gone || c->active) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    if (c->tls) {
        /* close_notify after the last response, queued behind it: the client can tell a complete
         * (e.g. close-delimited) body from a cut one, which gets no close_notify */
        gw_tls_conn_shutdown(c->tls);
        if (tls_flush(c) != GW_OK) {
            conn_close(c);
            return;
        }
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    if (c->read_stopped) {
        c->read_stopped = false;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    c->timer_mode = TIMER_NONE;
    c->timer_due = 0; /* not on_timer's any more (conn_deadline_set does nothing while lingering) */
    uv_timer_start(&c->timer, on_linger_timer, LINGER_MS, 0);
}

static void on_connection(uv_stream_t *listener, int status)
{
    gw_http_server_t *srv = listener->data;
    if (status < 0) {
        gw_log_warn("http: accept: %s", uv_strerror(status));
        return;
    }
    gw_http_conn_t *c = gw_calloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    gw_buf_init(&c->inbuf, GW_BUF_UNLIMITED);
    gw_buf_init(&c->head, GW_BUF_UNLIMITED);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    if (srv->handler.on_conn_open)
        srv->handler.on_conn_open(srv->handler.ud);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    c->peer[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[48] = "";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(c->peer, sizeof(c->peer), "[%s]:%d", ip, port);
        }
    }
    if (srv->tls) {
        c->tls = gw_tls_conn_new_server(srv->tls);
        if (c->tls == NULL) {
            gw_log_warn("http: %s: cannot set up TLS for the connection", c->peer);
            conn_close(c);
            return;
        }
    }
    gw_http_request_parser_init(&c->parser, srv->limits.max_header_bytes, srv->limits.max_body_bytes);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    /* nothing received yet: the header timeout applies as idle time */
    conn_deadline_set(c, TIMER_IDLE, srv->limits.header_timeout_ms);
}

gw_http_server_t *gw_http_server_new(uv_loop_t *loop, int listen_fd, const gw_http_limits_t *limits,
                                     const gw_http_handler_t *handler)
{
    gw_http_server_t *s = gw_calloc(1, sizeof(*s));
    s->loop = loop;
    s->limits = *limits;
    s->handler = *handler;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_open(&s->listener, listen_fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 4096, on_connection);
    if (rc != 0) {
        gw_log_error("http: listen: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&s->listener, NULL);
        /* the handle is freed with the loop's next iteration; the struct must outlive it */
        s->free_requested = true;
        return NULL;
    }
    s->listening = true;
    s->limits.tls = NULL; /* s->tls holds the server's own reference */
    gw_http_server_set_tls(s, limits->tls);
    return s;
}

void gw_http_server_set_tls(gw_http_server_t *s, gw_tls_ctx_t *ctx)
{
    gw_tls_ctx_ref(ctx);
    gw_tls_ctx_free(s->tls);
    s->tls = ctx;
    if (ctx && s->tls_gather == NULL)
        s->tls_gather = gw_malloc(TLS_RECORD); /* kept while connections made earlier may use it */
}

static void on_listener_closed(uv_handle_t *h)
{
    gw_http_server_t *s = h->data;
    s->closing_handles--;
    maybe_free_server(s);
}

void gw_http_server_stop_accepting(gw_http_server_t *s)
{
    s->stopping = true;
    if (s->listening) {
        s->listening = false;
        s->closing_handles++;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    }
    /* idle connections go now; busy ones close after their response */
    gw_http_conn_t *c = s->conns;
    while (c) {
        gw_http_conn_t *next = c->next;
        if (c->active == NULL && !gw_http_request_parser_in_message(&c->parser) && c->inbuf.len == 0)
            conn_close(c);
        c = next;
    }
}

size_t gw_http_server_connections(const gw_http_server_t *s)
{
    return s->n_conns;
}

void gw_http_server_close_all(gw_http_server_t *s)
{
    gw_http_conn_t *c = s->conns;
    while (c) {
        gw_http_conn_t *next = c->next;
        conn_close(c);
        c = next;
    }
}

static void maybe_free_server(gw_http_server_t *s)
{
    if (s->free_requested && s->closing_handles == 0 && s->n_conns == 0 && !s->listening) {
        gw_tls_ctx_free(s->tls);
        free(s->tls_gather);
        free(s);
    }
}

void gw_http_server_free(gw_http_server_t *s)
{
    if (s->listening)
        gw_http_server_stop_accepting(s);
    s->free_requested = true;
    maybe_free_server(s);
}
