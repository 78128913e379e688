/* The upstream HTTP/1.1 client (see upstream.h): per-loop pools of keep-alive connections keyed by
 * (host, port, tls, sni), asynchronous DNS with a small cache, TLS through memory BIOs, responses
 * parsed by http_response.c, every deadline of a connection on one timer, and backpressure by
 * stopping socket reads.
 *
 * Lifetimes, which make re-entrancy safe: a connection is freed only from its uv_close callbacks,
 * so a connection pointer held by any frame stays valid until that frame returns. A request is
 * freed right after on_done, or on cancel -- unless a callback of that request is running
 * (in_cb), in which case the callback's wrapper frees it when the user code returns. User
 * callbacks are only ever invoked from libuv callbacks, never from a call into this API. */
#include "net/upstream.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "net/http_response.h"
#include "net/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#define READ_BUF_SIZE (64 * 1024)
#define TLS_WRITE_CHUNK (64 * 1024) /* plaintext encrypted per uv_write: bounds the ciphertext copy */
#define DNS_TTL_MS 30000
#define MAX_ADDRS 8
#define MAX_TARGETS 256
#define MAX_NAME_LEN 253
#define REQ_HEAD_MAX (1024 * 1024)
#define DEFAULT_CONNECT_MS 10000
#define DEFAULT_MAX_IDLE 64
#define DEFAULT_IDLE_KEEPALIVE_MS 60000
#define DEFAULT_MAX_HEAD (64 * 1024)
#define PEER_LEN 64
#define NO_DEADLINE UINT64_MAX

/* ---- intrusive lists (self-linked nodes, so unlinking twice is harmless) ---- */

typedef struct link_s {
    struct link_s *prev, *next;
} link_t;

static inline void link_init(link_t *l)
{
    l->prev = l->next = l;
}

static inline bool list_empty(const link_t *h)
{
    return h->next == h;
}

static inline void list_push_front(link_t *h, link_t *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

static inline void list_push_back(link_t *h, link_t *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void link_remove(link_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    link_init(n);
}

static inline bool link_linked(const link_t *n)
{
    return n->next != n;
}

/* Moves every node of src (which ends empty) onto the empty list dst. */
static inline void list_take_all(link_t *dst, link_t *src)
{
    link_init(dst);
    if (list_empty(src))
        return;
    dst->next = src->next;
    dst->prev = src->prev;
    dst->next->prev = dst;
    dst->prev->next = dst;
    link_init(src);
}

/* ---- types ---- */

typedef struct target_s target_t;
typedef struct conn_s conn_t;

struct target_s {
    link_t link; /* pool->targets, most recently used first */
    gw_upstream_pool_t *pool;
    char *host; /* NUL-terminated, IPv6 brackets stripped */
    size_t host_len;
    char *sni; /* as given, may be empty */
    size_t sni_len;
    char *ca_pem; /* NULL: the pool's trust */
    size_t ca_pem_len;
    gw_tls_ctx_t *tls_ctx; /* made from ca_pem on first use; NULL: pool->tls */
    char *authority; /* the Host header value */
    size_t authority_len;
    uint16_t port;
    bool tls;
    bool is_ip;
    bool reserved_invalid; /* ".invalid" (RFC 6761): never resolves, not worth a lookup */
    bool resolving;
    struct sockaddr_storage addrs[MAX_ADDRS];
    size_t n_addrs;
    uint64_t dns_expiry;
    uv_getaddrinfo_t gai;
    link_t waiters; /* connections waiting for the lookup */
    link_t idle;    /* idle connections, most recently used first */
    size_t n_idle;
    size_t refs; /* connections pointing here */
};

typedef enum { C_RESOLVING, C_CONNECTING, C_HANDSHAKE, C_ACTIVE, C_IDLE, C_CLOSING } conn_state_t;

struct conn_s {
    link_t link;       /* target->waiters, target->idle or pool->active */
    link_t defer_link; /* pool->deferred */
    gw_upstream_pool_t *pool;
    target_t *target;
    gw_upstream_req_t *req;
    conn_state_t state;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uint64_t timer_due; /* when the armed timer fires (loop ms); 0: not armed */
    uv_connect_t connect_req;
    uv_write_t write_req;
    int handles;   /* libuv handles not yet closed; the memory goes when this reaches 0 */
    bool tcp_open; /* tcp initialised and not being closed */
    bool reading;
    bool writing;
    bool opened;           /* TCP connected: on_conn_open was called */
    bool reused;           /* the current request found this connection in the pool */
    bool junk;             /* must not go back to the pool */
    bool complete_pending; /* the response ended while the request was paused */
    int defer_status;      /* a failure reported from the deferred pass */
    bool defer_retry;
    const char *defer_detail;
    gw_tls_conn_t *tls;
    gw_buf_t tls_out;  /* ciphertext of the write in flight */
    const char *wp[2]; /* request bytes not yet handed to TLS: head, body */
    size_t wl[2];
    int wi; /* 2 once all of the request went out (with !writing) */
    struct sockaddr_storage addrs[MAX_ADDRS];
    size_t n_addrs, next_addr;
    uint64_t connect_deadline;
    uint64_t attempt_deadline; /* when to give up on this address while others remain */
    uint64_t last_read;
    uint64_t idle_since;
    gw_http_resp_t resp;
    char *rbuf;     /* socket reads, then TLS plaintext; also holds body bytes parked by a pause */
    size_t pend_off; /* parked body bytes: rbuf[pend_off .. pend_off + pend_len) */
    size_t pend_len;
    char peer[PEER_LEN];
};

struct gw_upstream_req_s {
    link_t link; /* pool->failed while waiting to report an early failure */
    gw_upstream_pool_t *pool;
    conn_t *conn;
    gw_str_t body;
    gw_upstream_callbacks_t cb;
    void *ud;
    gw_upstream_timeouts_t to;
    uint64_t start;
    int in_cb;
    bool paused;
    bool cancelled;
    bool done;
    bool retried;
    bool head_method;
    int fail_status;
    const char *fail_detail;
    size_t head_len;
    char head[]; /* the serialised request head */
};

struct gw_upstream_pool_s {
    uv_loop_t *loop;
    size_t max_idle;
    uint64_t idle_keepalive_ms;
    size_t max_head;
    gw_upstream_pool_hooks_t hooks;
    gw_tls_ctx_t *tls;
    link_t targets;
    size_t n_targets;
    link_t active;   /* connections neither idle nor waiting for DNS */
    link_t deferred; /* connections with work for the next loop turn */
    link_t failed;   /* requests failed before reaching a connection */
    uv_timer_t defer_timer;
    bool timer_open;
    size_t n_conns;
    size_t n_lookups;
    bool closing;
};

static const char *const empty_peer = "";

static void conn_close(conn_t *c);
static void conn_connect_next(conn_t *c);
static void conn_begin(conn_t *c);
static void conn_tls_pump(conn_t *c);
static void conn_update_reading(conn_t *c);
static void pool_maybe_free(gw_upstream_pool_t *pool);

/* ---- small helpers ---- */

static inline uint64_t now_ms(const gw_upstream_pool_t *pool)
{
    return uv_now(pool->loop);
}

static bool is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch != '\0' && memchr("!#$%&'*+-.^_`|~", ch, 15) != NULL;
}

static bool valid_token(gw_str_t s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!is_tchar((unsigned char)s.base[i]))
            return false;
    return true;
}

/* Header values may hold anything but the bytes that would end the line (request smuggling). */
static bool valid_value(gw_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.base[i];
        if (ch == '\r' || ch == '\n' || ch == '\0')
            return false;
    }
    return true;
}

static bool valid_path(gw_str_t s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.base[i];
        if (ch <= 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

/* Host names and SNI: printable, no spaces, nothing that could end a header line. */
static bool valid_name(gw_str_t s)
{
    if (s.len > MAX_NAME_LEN)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.base[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '@')
            return false;
    }
    return true;
}

static bool ends_with_invalid_tld(gw_str_t h)
{
    if (h.len > 0 && h.base[h.len - 1] == '.')
        h.len--;
    static const char tld[] = ".invalid";
    size_t n = sizeof(tld) - 1;
    if (h.len == n - 1)
        return gw_str_case_eq(h, gw_str(tld + 1, n - 1));
    return h.len > n && gw_str_case_eq(gw_str(h.base + h.len - n, n), gw_str(tld, n));
}

/* ---- deferred work: failures found inside gw_upstream_send and resumed streams ---- */

static void on_defer(uv_timer_t *t);

static void defer_arm(gw_upstream_pool_t *pool)
{
    if (pool->timer_open && !uv_is_active((uv_handle_t *)&pool->defer_timer))
        uv_timer_start(&pool->defer_timer, on_defer, 0, 0);
}

static void defer_conn(conn_t *c)
{
    if (!link_linked(&c->defer_link))
        list_push_back(&c->pool->deferred, &c->defer_link);
    defer_arm(c->pool);
}

static void conn_fail_later(conn_t *c, int status, const char *detail, bool retry_ok)
{
    if (c->defer_status == 0) {
        c->defer_status = status;
        c->defer_detail = detail;
        c->defer_retry = retry_ok;
    }
    defer_conn(c);
}

static void req_fail_later(gw_upstream_req_t *r, int status, const char *detail)
{
    r->fail_status = status;
    r->fail_detail = detail;
    list_push_back(&r->pool->failed, &r->link);
    defer_arm(r->pool);
}

/* ---- requests ---- */

static void req_free(gw_upstream_req_t *r)
{
    link_remove(&r->link);
    free(r);
}

/* Reports the end of a request (detached from its connection already) and frees it. */
static void req_finish(gw_upstream_req_t *r, int status, const char *detail)
{
    r->done = true;
    if (r->cb.on_done)
        r->cb.on_done(r->ud, status, detail);
    req_free(r);
}

/* After a user callback returned: false when the request is gone (cancelled, maybe freed). */
static bool req_after_cb(gw_upstream_req_t *r, int rc)
{
    r->in_cb--;
    if (r->cancelled) {
        if (r->in_cb == 0)
            req_free(r);
        return false;
    }
    if (rc != GW_OK) {
        gw_upstream_cancel(r);
        return false;
    }
    return true;
}

static bool req_call_body(gw_upstream_req_t *r, const char *p, size_t n)
{
    r->in_cb++;
    int rc = r->cb.on_body ? r->cb.on_body(r->ud, p, n) : GW_OK;
    return req_after_cb(r, rc);
}

/* ---- response parser callbacks ---- */

static int resp_on_head(void *ud, int status, const gw_http_header_t *h, size_t n)
{
    conn_t *c = ud;
    gw_upstream_req_t *r = c->req;
    if (r == NULL)
        return GW_ERROR;
    r->in_cb++;
    int rc = r->cb.on_head ? r->cb.on_head(r->ud, status, h, n) : GW_OK;
    return req_after_cb(r, rc) ? GW_OK : GW_ERROR;
}

static int resp_on_body(void *ud, const char *p, size_t n)
{
    conn_t *c = ud;
    gw_upstream_req_t *r = c->req;
    if (r == NULL)
        return GW_ERROR;
    if (r->paused || c->pend_len > 0) {
        /* Paused mid-buffer: park the rest of this buffer's body in rbuf itself. Body bytes are a
         * subsequence of the buffer, so moving them down never overwrites unparsed input. */
        if (p < c->rbuf || p + n > c->rbuf + READ_BUF_SIZE)
            return GW_ERROR;
        if (c->pend_len == 0)
            c->pend_off = (size_t)(p - c->rbuf);
        char *dst = c->rbuf + c->pend_off + c->pend_len;
        if (dst != p)
            memmove(dst, p, n);
        c->pend_len += n;
        return GW_OK;
    }
    return req_call_body(r, p, n) ? GW_OK : GW_ERROR;
}

static const gw_http_resp_cbs_t resp_cbs = {
    .on_head = resp_on_head,
    .on_body = resp_on_body,
};

/* ---- connection lifecycle ---- */

static void conn_free(conn_t *c)
{
    gw_upstream_pool_t *pool = c->pool;
    if (c->opened && pool->hooks.on_conn_close)
        pool->hooks.on_conn_close(pool->hooks.ud);
    gw_tls_conn_free(c->tls);
    gw_http_resp_free(&c->resp);
    gw_buf_free(&c->tls_out);
    free(c->rbuf);
    c->target->refs--;
    pool->n_conns--;
    free(c);
    pool_maybe_free(pool);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->handles == 0 && c->state == C_CLOSING)
        conn_free(c);
}

/* The TCP handle of a failed connect attempt is closed before the next address is tried. */
static void on_attempt_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->handles--;
    if (c->state == C_CLOSING) {
        if (c->handles == 0)
            conn_free(c);
        return;
    }
    conn_connect_next(c);
}

static void conn_close_attempt(conn_t *c)
{
    c->tcp_open = false;
    c->reading = false;
    c->writing = false;
    uv_close((uv_handle_t *)&c->tcp, on_attempt_closed);
}

/* Closes the connection (no callback is called). Memory is freed from the close callbacks. */
static void conn_close(conn_t *c)
{
    if (c->state == C_CLOSING)
        return;
    if (c->state == C_IDLE)
        c->target->n_idle--;
    c->state = C_CLOSING;
    link_remove(&c->link);
    link_remove(&c->defer_link);
    if (c->req) {
        c->req->conn = NULL;
        c->req = NULL;
    }
    if (c->tcp_open) {
        c->tcp_open = false;
        c->reading = false;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void conn_fail(conn_t *c, int status, const char *detail)
{
    gw_upstream_req_t *r = c->req;
    gw_log_debug("upstream %s:%u: %s", c->target->host, c->target->port, detail);
    conn_close(c);
    if (r)
        req_finish(r, status, detail);
}

static uint64_t conn_deadline(const conn_t *c)
{
    const gw_upstream_req_t *r = c->req;
    uint64_t total = (r && r->to.total_ms) ? r->start + r->to.total_ms : NO_DEADLINE;
    switch (c->state) {
    case C_CONNECTING:
        if (c->next_addr < c->n_addrs)
            total = GW_MIN(total, c->attempt_deadline);
        return GW_MIN(c->connect_deadline, total);
    case C_RESOLVING:
    case C_HANDSHAKE:
        return GW_MIN(c->connect_deadline, total);
    case C_ACTIVE:
        if (r && r->to.idle_ms && !r->paused)
            return GW_MIN(total, c->last_read + r->to.idle_ms);
        return total;
    case C_IDLE:
        return c->idle_since + c->pool->idle_keepalive_ms;
    default:
        return NO_DEADLINE;
    }
}

static void on_conn_timer(uv_timer_t *h);

/* One timer per connection, armed for the nearest deadline. A deadline that moved later (idle
 * time refreshed by each read, a request following the idle period on a pooled connection) is
 * only noticed when the timer fires, which re-arms it: the timer heap is touched when a deadline
 * comes nearer, not on every request. */
static void conn_arm_timer(conn_t *c)
{
    if (c->state == C_CLOSING)
        return;
    uint64_t due = conn_deadline(c);
    if (due == NO_DEADLINE) {
        if (c->timer_due) {
            uv_timer_stop(&c->timer);
            c->timer_due = 0;
        }
        return;
    }
    if (c->timer_due && c->timer_due <= due)
        return; /* fires first; on_conn_timer looks at the deadline then */
    uint64_t now = now_ms(c->pool);
    c->timer_due = due > now ? due : now;
    uv_timer_start(&c->timer, on_conn_timer, due > now ? due - now : 0, 0);
}

static void on_conn_timer(uv_timer_t *h)
{
    conn_t *c = h->data;
    c->timer_due = 0;
    if (c->state == C_CLOSING)
        return;
    uint64_t now = now_ms(c->pool);
    if (now < conn_deadline(c)) {
        conn_arm_timer(c);
        return;
    }
    gw_upstream_req_t *r = c->req;
    if (c->state == C_IDLE || r == NULL) {
        conn_close(c);
        return;
    }
    if (c->state == C_CONNECTING && c->next_addr < c->n_addrs && now < c->connect_deadline &&
        !(r->to.total_ms && now >= r->start + r->to.total_ms)) {
        /* This address does not answer (filtered?): move on while time remains for the others. */
        gw_log_debug("upstream %s:%u: connect attempt timed out, trying the next address", c->target->host,
                     c->target->port);
        conn_close_attempt(c);
        return;
    }
    const char *detail;
    bool total = r->to.total_ms && now >= r->start + r->to.total_ms;
    if (c->state != C_ACTIVE)
        detail = total ? "total timeout while connecting" : "connect timeout";
    else
        detail = total ? "total timeout" : "idle timeout";
    conn_fail(c, GW_UPSTREAM_ETIMEOUT, detail);
}

static conn_t *conn_new(gw_upstream_pool_t *pool, target_t *t)
{
    conn_t *c = gw_calloc(1, sizeof(*c));
    c->pool = pool;
    c->target = t;
    t->refs++;
    pool->n_conns++;
    link_init(&c->link);
    link_init(&c->defer_link);
    uv_timer_init(pool->loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    c->rbuf = gw_malloc(READ_BUF_SIZE);
    gw_http_resp_init(&c->resp, pool->max_head);
    gw_buf_init(&c->tls_out, GW_BUF_UNLIMITED);
    c->wi = 2;
    c->state = C_RESOLVING;
    list_push_front(&pool->active, &c->link);
    return c;
}

/* A connection taken from the pool may have been closed by the server just before we wrote: the
 * keep-alive race. Resend once on a fresh connection if no response byte arrived. */
static void conn_fail_or_retry(conn_t *c, int status, const char *detail)
{
    gw_upstream_req_t *r = c->req;
    if (r && c->reused && !r->retried && !gw_http_resp_started(&c->resp) && !c->pool->closing) {
        target_t *t = c->target;
        gw_log_debug("upstream %s:%u: reused connection failed (%s), retrying", t->host, t->port, detail);
        r->retried = true;
        conn_close(c); /* detaches r */
        conn_t *nc = conn_new(r->pool, t);
        nc->req = r;
        r->conn = nc;
        conn_begin(nc);
        return;
    }
    conn_fail(c, status, detail);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    buf->base = c->rbuf;
    buf->len = READ_BUF_SIZE;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Reads while connecting TLS, while idle (to notice a close) and while a request runs unpaused
 * with nothing parked: parked bytes live in rbuf, which the next read would overwrite. */
static void conn_update_reading(conn_t *c)
{
    if (!c->tcp_open || c->state == C_CLOSING || c->state == C_RESOLVING || c->state == C_CONNECTING)
        return;
    bool want = true;
    if (c->state == C_ACTIVE)
        want = c->req && !c->req->paused && c->pend_len == 0 && !c->complete_pending;
    if (want == c->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void conn_make_idle(conn_t *c)
{
    gw_upstream_pool_t *pool = c->pool;
    target_t *t = c->target;
    while (t->n_idle > 0 && t->n_idle >= pool->max_idle) /* drop the oldest */
        conn_close(GW_CONTAINER_OF(t->idle.prev, conn_t, link));
    link_remove(&c->link);
    list_push_front(&t->idle, &c->link);
    t->n_idle++;
    c->state = C_IDLE;
    c->reused = false;
    c->idle_since = now_ms(pool);
    conn_arm_timer(c);
    conn_update_reading(c);
    if (c->tls && gw_tls_conn_has_input(c->tls))
        defer_conn(c);
}

static void conn_complete(conn_t *c)
{
    gw_upstream_req_t *r = c->req;
    bool keep = !c->junk && gw_http_resp_keep_alive(&c->resp) && c->wi == 2 && !c->writing && !c->pool->closing &&
                c->pool->max_idle > 0;
    c->req = NULL;
    r->conn = NULL;
    c->complete_pending = false;
    if (keep)
        conn_make_idle(c);
    else
        conn_close(c);
    req_finish(r, GW_UPSTREAM_OK, "ok");
}

/* Plaintext from the upstream. Returns false when processing of this connection must stop (the
 * request ended, was cancelled or paused with bytes parked). */
static bool conn_on_data(conn_t *c, const char *p, size_t n)
{
    if (c->state == C_IDLE) {
        gw_log_debug("upstream %s:%u: unexpected bytes on an idle connection", c->target->host, c->target->port);
        conn_close(c);
        return false;
    }
    if (c->state != C_ACTIVE || c->req == NULL)
        return false;
    size_t used = 0;
    int rc = gw_http_resp_feed(&c->resp, p, n, &used);
    if (c->state != C_ACTIVE || c->req == NULL) /* cancelled from a callback */
        return false;
    switch (rc) {
    case GW_OK:
        return true;
    case GW_DONE:
        if (used < n)
            c->junk = true; /* bytes after the response: the stream is out of step */
        if (c->req->paused || c->pend_len > 0)
            c->complete_pending = true;
        else
            conn_complete(c);
        return false;
    default:
        conn_fail(c, GW_UPSTREAM_EPROTO, gw_http_resp_error(&c->resp));
        return false;
    }
}

static void conn_on_eof(conn_t *c)
{
    c->reading = false; /* libuv stops reading at EOF */
    switch (c->state) {
    case C_HANDSHAKE:
        conn_fail(c, GW_UPSTREAM_ECONNECT, "connection closed during the TLS handshake");
        return;
    case C_ACTIVE:
        if (c->req == NULL)
            break;
        if (gw_http_resp_eof(&c->resp) == GW_DONE) {
            c->junk = true;
            if (c->req->paused || c->pend_len > 0)
                c->complete_pending = true;
            else
                conn_complete(c);
            return;
        }
        if (!gw_http_resp_started(&c->resp))
            conn_fail_or_retry(c, GW_UPSTREAM_ERESET, "connection closed before the response");
        else
            conn_fail(c, GW_UPSTREAM_ERESET, "connection closed mid-response");
        return;
    default:
        break;
    }
    conn_close(c);
}

static void conn_on_error(conn_t *c, const char *detail)
{
    switch (c->state) {
    case C_HANDSHAKE:
        conn_fail(c, GW_UPSTREAM_ECONNECT, detail);
        return;
    case C_ACTIVE:
        if (c->req == NULL)
            break;
        if (!gw_http_resp_started(&c->resp))
            conn_fail_or_retry(c, GW_UPSTREAM_ERESET, detail);
        else
            conn_fail(c, GW_UPSTREAM_ERESET, detail);
        return;
    default:
        break;
    }
    conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (c->state == C_CLOSING)
        return;
    if (nread > 0) {
        c->last_read = now_ms(c->pool);
        if (c->tls) {
            gw_tls_conn_feed(c->tls, buf->base, (size_t)nread);
            conn_tls_pump(c);
        } else {
            conn_on_data(c, buf->base, (size_t)nread);
        }
    } else if (nread == UV_EOF) {
        conn_on_eof(c);
    } else if (nread < 0) {
        c->reading = false;
        conn_on_error(c, nread == UV_ECONNRESET ? "connection reset by the upstream" : "read error");
    }
    conn_update_reading(c);
}

/* ---- writing ---- */

static void on_write(uv_write_t *w, int status);

static void conn_write_failed(conn_t *c, int status)
{
    gw_log_debug("upstream %s:%u: write failed: %s", c->target->host, c->target->port, uv_strerror(status));
    switch (c->state) {
    case C_HANDSHAKE:
        conn_fail(c, GW_UPSTREAM_ECONNECT, "write failed during the TLS handshake");
        return;
    case C_ACTIVE:
        if (c->req == NULL)
            break;
        c->junk = true;
        if (gw_http_resp_started(&c->resp))
            return; /* a response is arriving (an early error, say): reading decides */
        conn_fail_or_retry(c, GW_UPSTREAM_ERESET, "connection closed by the upstream");
        return;
    default:
        break;
    }
    conn_close(c);
}

/* Encrypts up to TLS_WRITE_CHUNK of the request beyond what is pending, and writes the pending
 * ciphertext: one write in flight at a time, so a large body never sits encrypted in memory. */
static void conn_tls_flush(conn_t *c)
{
    if (c->writing || !c->tcp_open || c->state == C_CLOSING)
        return;
    gw_tls_conn_t *tls = c->tls;
    if (c->state == C_ACTIVE && c->req) {
        while (c->wi < 2 && gw_tls_conn_pending(tls) < TLS_WRITE_CHUNK) {
            if (c->wl[c->wi] == 0) {
                c->wi++;
                continue;
            }
            size_t n = GW_MIN(c->wl[c->wi], (size_t)TLS_WRITE_CHUNK);
            if (gw_tls_conn_write(tls, c->wp[c->wi], n) != GW_OK) {
                conn_fail_later(c, GW_UPSTREAM_ERESET, "TLS write failed", false);
                return;
            }
            c->wp[c->wi] += n;
            c->wl[c->wi] -= n;
        }
    }
    size_t n = gw_tls_conn_pending(tls);
    if (n == 0)
        return;
    gw_buf_reset(&c->tls_out);
    char *dst = gw_buf_reserve(&c->tls_out, n);
    n = gw_tls_conn_take(tls, dst, n);
    gw_buf_commit(&c->tls_out, n);
    uv_buf_t b = uv_buf_init(c->tls_out.data, (unsigned)n);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        conn_fail_later(c, c->state == C_HANDSHAKE ? GW_UPSTREAM_ECONNECT : GW_UPSTREAM_ERESET, "write failed",
                        c->state == C_ACTIVE);
        return;
    }
    c->writing = true;
}

static void on_write(uv_write_t *w, int status)
{
    conn_t *c = GW_CONTAINER_OF(w, conn_t, write_req);
    if (c->state == C_CLOSING || status == UV_ECANCELED)
        return;
    c->writing = false;
    if (status < 0) {
        conn_write_failed(c, status);
        return;
    }
    if (c->tls)
        conn_tls_flush(c);
    else
        c->wi = 2;
}

/* Sends the request on a connected (and, for TLS, handshaken) connection. May run inside
 * gw_upstream_send, so failures are reported from the deferred pass. */
static void conn_start_request(conn_t *c)
{
    gw_upstream_req_t *r = c->req;
    gw_http_resp_start(&c->resp, &resp_cbs, c);
    if (r->head_method)
        gw_http_resp_expect_no_body(&c->resp);
    c->state = C_ACTIVE;
    c->pend_len = 0;
    c->complete_pending = false;
    c->junk = false;
    c->last_read = now_ms(c->pool);
    c->wp[0] = r->head;
    c->wl[0] = r->head_len;
    c->wp[1] = r->body.base;
    c->wl[1] = r->body.len;
    c->wi = 0;
    conn_arm_timer(c);
    if (c->tls) {
        conn_tls_flush(c);
    } else {
        uv_buf_t bufs[2] = {
            uv_buf_init(r->head, (unsigned)r->head_len),
            uv_buf_init((char *)r->body.base, (unsigned)r->body.len),
        };
        unsigned nbufs = r->body.len ? 2 : 1;
        /* One writev for head and body, no copy. Tried here rather than through uv_write alone:
         * a completed uv_write makes libuv re-arm the socket in epoll (one epoll_ctl per
         * request), which a request that fits the socket buffer does not need. */
        int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (n == (int)(r->head_len + r->body.len)) {
            c->wi = 2;
            conn_update_reading(c);
            return;
        }
        if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
            conn_fail_later(c, GW_UPSTREAM_ERESET, "write failed", true);
            return;
        }
        if (n > 0) { /* the rest goes through uv_write; the buffers stay the request's */
            size_t done = (size_t)n;
            if (done >= bufs[0].len) {
                done -= bufs[0].len;
                bufs[0] = uv_buf_init((char *)r->body.base + done, (unsigned)(r->body.len - done));
                nbufs = 1;
            } else {
                bufs[0] = uv_buf_init(r->head + done, (unsigned)(r->head_len - done));
            }
        }
        int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_write);
        if (rc != 0) {
            conn_fail_later(c, GW_UPSTREAM_ERESET, "write failed", true);
            return;
        }
        c->writing = true;
    }
    conn_update_reading(c);
}

/* ---- TLS ---- */

static void conn_tls_pump(conn_t *c)
{
    if (c->state == C_HANDSHAKE) {
        int rc = gw_tls_conn_handshake(c->tls);
        if (rc != GW_OK)
            conn_tls_flush(c); /* on success the last flight goes out with the request */
        if (rc == GW_AGAIN || c->state != C_HANDSHAKE)
            return;
        if (rc != GW_OK) {
            gw_log_debug("upstream %s:%u: TLS handshake failed: %s", c->target->host, c->target->port,
                         gw_tls_conn_error(c->tls));
            conn_fail(c, GW_UPSTREAM_ECONNECT,
                      gw_tls_conn_verify_failed(c->tls) ? "TLS certificate verification failed" : "TLS handshake failed");
            return;
        }
        conn_start_request(c);
    }
    while (c->state == C_ACTIVE || c->state == C_IDLE) {
        if (c->state == C_ACTIVE && (c->req == NULL || c->req->paused || c->pend_len > 0 || c->complete_pending))
            break;
        size_t n = 0;
        int rc = gw_tls_conn_read(c->tls, c->rbuf, READ_BUF_SIZE, &n);
        if (rc == GW_AGAIN)
            break;
        if (rc == GW_DONE) {
            conn_on_eof(c);
            return;
        }
        if (rc != GW_OK) {
            conn_on_error(c, "TLS error");
            return;
        }
        if (!conn_on_data(c, c->rbuf, n))
            return;
    }
    conn_tls_flush(c); /* TLS may have had to answer (key update) */
}

/* ---- connecting ---- */

static void conn_set_peer(conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];
    c->peer[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        if (uv_ip4_name(sin, ip, sizeof(ip)) == 0)
            snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        if (uv_ip6_name(sin6, ip, sizeof(ip)) == 0)
            snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, ntohs(sin6->sin6_port));
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = GW_CONTAINER_OF(req, conn_t, connect_req);
    if (c->state == C_CLOSING || status == UV_ECANCELED)
        return;
    if (status < 0) {
        gw_log_debug("upstream %s:%u: connect failed: %s", c->target->host, c->target->port, uv_strerror(status));
        conn_close_attempt(c); /* the next address is tried once the handle is closed */
        return;
    }
    gw_upstream_pool_t *pool = c->pool;
    target_t *t = c->target;
    c->opened = true;
    if (pool->hooks.on_conn_open)
        pool->hooks.on_conn_open(pool->hooks.ud);
    uv_tcp_nodelay(&c->tcp, 1);
    conn_set_peer(c);
    if (!t->tls) {
        conn_start_request(c);
        return;
    }
    gw_tls_ctx_t *ctx = pool->tls;
    if (t->ca_pem) {
        if (t->tls_ctx == NULL) {
            char err[128] = "";
            t->tls_ctx = gw_tls_ctx_new_client_pem(gw_str(t->ca_pem, t->ca_pem_len), err, sizeof(err));
            if (t->tls_ctx == NULL)
                gw_log_warn("upstream %s:%u: %s", t->host, t->port, err);
        }
        ctx = t->tls_ctx;
    }
    c->tls = ctx ? gw_tls_conn_new_client(ctx, t->sni_len ? gw_str(t->sni, t->sni_len) : gw_str(t->host, t->host_len))
                 : NULL;
    if (c->tls == NULL) {
        conn_fail(c, GW_UPSTREAM_ECONNECT, "TLS setup failed");
        return;
    }
    c->state = C_HANDSHAKE;
    conn_update_reading(c);
    conn_tls_pump(c);
}

static void conn_connect_next(conn_t *c)
{
    target_t *t = c->target;
    while (c->next_addr < c->n_addrs) {
        const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[c->next_addr++];
        if (uv_tcp_init(c->pool->loop, &c->tcp) != 0)
            break;
        c->tcp.data = c;
        c->tcp_open = true;
        c->handles++;
        c->state = C_CONNECTING;
        /* Each remaining address gets an equal share of the connect time left, so one that
         * drops packets cannot use up the whole budget. */
        uint64_t now = now_ms(c->pool);
        uint64_t left = c->connect_deadline > now ? c->connect_deadline - now : 0;
        c->attempt_deadline = now + left / (c->n_addrs - c->next_addr + 1);
        int rc = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connect);
        if (rc == 0) {
            conn_arm_timer(c);
            return;
        }
        gw_log_debug("upstream %s:%u: connect failed: %s", t->host, t->port, uv_strerror(rc));
        conn_close_attempt(c); /* resumes here from the close callback */
        return;
    }
    /* Every address failed: look the name up again next time, it may have moved. */
    if (!t->is_ip)
        t->dns_expiry = 0;
    conn_fail_later(c, GW_UPSTREAM_ECONNECT, "connect failed", false);
}

static void conn_use_addrs(conn_t *c)
{
    target_t *t = c->target;
    memcpy(c->addrs, t->addrs, t->n_addrs * sizeof(t->addrs[0]));
    c->n_addrs = t->n_addrs;
    c->next_addr = 0;
}

/* ---- DNS ---- */

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

static void target_settle_waiters(target_t *t)
{
    gw_upstream_pool_t *pool = t->pool;
    link_t local;
    list_take_all(&local, &t->waiters);
    /* Pop one at a time: a callback run meanwhile may close (unlink) any of them. */
    while (!list_empty(&local)) {
        conn_t *c = GW_CONTAINER_OF(local.next, conn_t, link);
        link_remove(&c->link);
        list_push_front(&pool->active, &c->link);
        if (t->n_addrs > 0) { /* fresh, or stale when the lookup failed: better than nothing */
            conn_use_addrs(c);
            conn_connect_next(c);
        } else {
            conn_fail_later(c, GW_UPSTREAM_ECONNECT, "DNS lookup failed", false);
        }
    }
}

static void target_resolve(target_t *t)
{
    gw_upstream_pool_t *pool = t->pool;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    t->gai.data = t;
    int rc = uv_getaddrinfo(pool->loop, &t->gai, on_resolved, t->host, NULL, &hints);
    if (rc != 0) {
        gw_log_debug("upstream %s: cannot start DNS lookup: %s", t->host, uv_strerror(rc));
        target_settle_waiters(t);
        return;
    }
    t->resolving = true;
    pool->n_lookups++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    target_t *t = req->data;
    gw_upstream_pool_t *pool = t->pool;
    t->resolving = false;
    pool->n_lookups--;
    if (status == 0) {
        size_t n = 0;
        for (const struct addrinfo *ai = res; ai && n < MAX_ADDRS; ai = ai->ai_next) {
            if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&t->addrs[n++];
                memcpy(sin, ai->ai_addr, sizeof(*sin));
                sin->sin_port = htons(t->port);
            } else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addrs[n++];
                memcpy(sin6, ai->ai_addr, sizeof(*sin6));
                sin6->sin6_port = htons(t->port);
            }
        }
        if (n > 0) {
            t->n_addrs = n;
            t->dns_expiry = now_ms(pool) + DNS_TTL_MS;
        }
    } else if (status != UV_ECANCELED) {
        gw_log_debug("upstream %s: DNS lookup failed: %s", t->host, uv_strerror(status));
    }
    uv_freeaddrinfo(res);
    if (pool->closing) {
        pool_maybe_free(pool);
        return;
    }
    target_settle_waiters(t);
}

/* A fresh connection for the request attached to it: resolve (or use the cache), then connect. */
static void conn_begin(conn_t *c)
{
    target_t *t = c->target;
    gw_upstream_req_t *r = c->req;
    uint64_t now = now_ms(c->pool);
    c->connect_deadline = now + (r->to.connect_ms ? r->to.connect_ms : DEFAULT_CONNECT_MS);
    conn_arm_timer(c);
    if (t->n_addrs > 0 && now < t->dns_expiry) {
        conn_use_addrs(c);
        conn_connect_next(c);
        return;
    }
    link_remove(&c->link);
    list_push_back(&t->waiters, &c->link);
    if (!t->resolving)
        target_resolve(t);
}

/* ---- targets ---- */

static void target_free(target_t *t)
{
    link_remove(&t->link);
    t->pool->n_targets--;
    free(t->host);
    free(t->sni);
    free(t->ca_pem);
    gw_tls_ctx_free(t->tls_ctx);
    free(t->authority);
    free(t);
}

/* Forgets targets nobody uses once there are many (hosts named by configuration are few; this
 * only bounds a pathological stream of distinct names). */
static void targets_gc(gw_upstream_pool_t *pool)
{
    link_t *l = pool->targets.prev;
    while (l != &pool->targets && pool->n_targets >= MAX_TARGETS) {
        target_t *t = GW_CONTAINER_OF(l, target_t, link);
        l = l->prev;
        if (t->refs == 0 && !t->resolving)
            target_free(t);
    }
}

static target_t *target_get(gw_upstream_pool_t *pool, const gw_upstream_target_t *tg)
{
    gw_str_t host = tg->host;
    if (host.len >= 2 && host.base[0] == '[' && host.base[host.len - 1] == ']')
        host = gw_str(host.base + 1, host.len - 2);
    if (host.len == 0 || tg->port == 0 || !valid_name(host) || !valid_name(tg->sni))
        return NULL;
    for (link_t *l = pool->targets.next; l != &pool->targets; l = l->next) {
        target_t *t = GW_CONTAINER_OF(l, target_t, link);
        if (t->port == tg->port && t->tls == tg->tls && gw_str_eq(gw_str(t->host, t->host_len), host) &&
            gw_str_eq(gw_str(t->sni, t->sni_len), tg->sni) && gw_str_eq(gw_str(t->ca_pem, t->ca_pem_len), tg->ca_pem)) {
            if (pool->targets.next != l) {
                link_remove(l);
                list_push_front(&pool->targets, l);
            }
            return t;
        }
    }
    targets_gc(pool);

    target_t *t = gw_calloc(1, sizeof(*t));
    t->pool = pool;
    t->host = gw_strndup(host.base, host.len);
    t->host_len = host.len;
    t->sni = gw_strndup(tg->sni.base ? tg->sni.base : "", tg->sni.len);
    t->sni_len = tg->sni.len;
    if (tg->ca_pem.len) {
        t->ca_pem = gw_strndup(tg->ca_pem.base, tg->ca_pem.len);
        t->ca_pem_len = tg->ca_pem.len;
    }
    t->port = tg->port;
    t->tls = tg->tls;
    link_init(&t->waiters);
    link_init(&t->idle);

    /* Host header: the name the certificate is checked against when one is given, else the host;
     * brackets for IPv6 literals; the port unless it is the scheme's default. */
    gw_str_t name = t->sni_len ? gw_str(t->sni, t->sni_len) : host;
    bool v6 = memchr(name.base, ':', name.len) != NULL;
    bool default_port = t->port == (t->tls ? 443 : 80);
    gw_buf_t a;
    gw_buf_init(&a, GW_BUF_UNLIMITED);
    if (v6)
        gw_buf_append_byte(&a, '[');
    gw_buf_append_str(&a, name);
    if (v6)
        gw_buf_append_byte(&a, ']');
    if (!default_port) {
        gw_buf_append_byte(&a, ':');
        gw_buf_append_u64(&a, t->port);
    }
    gw_buf_cstr(&a);
    t->authority = gw_buf_detach(&a, &t->authority_len);

    struct sockaddr_in *sin = (struct sockaddr_in *)&t->addrs[0];
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addrs[0];
    if (uv_ip4_addr(t->host, t->port, sin) == 0 || uv_ip6_addr(t->host, t->port, sin6) == 0) {
        t->is_ip = true;
        t->n_addrs = 1;
        t->dns_expiry = NO_DEADLINE;
    } else {
        memset(&t->addrs[0], 0, sizeof(t->addrs[0]));
        t->reserved_invalid = ends_with_invalid_tld(host);
    }
    list_push_front(&pool->targets, &t->link);
    pool->n_targets++;
    return t;
}

/* ---- request head ---- */

static bool is_hop_by_hop(gw_str_t name)
{
    static const gw_str_t drop[] = {
        GW_STR("Connection"),       GW_STR("Keep-Alive"), GW_STR("Transfer-Encoding"), GW_STR("TE"),
        GW_STR("Trailer"),          GW_STR("Upgrade"),    GW_STR("Proxy-Connection"),  GW_STR("Host"),
        GW_STR("Content-Length"),   GW_STR("Expect"),     GW_STR("Proxy-Authorization"),
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(drop); i++)
        if (gw_str_case_eq(name, drop[i]))
            return true;
    return false;
}

/* Headers named in the caller's Connection header are hop-by-hop too (RFC 9110 7.6.1). */
static bool named_by_connection(const gw_http_header_t *h, size_t n, gw_str_t name)
{
    for (size_t i = 0; i < n; i++) {
        if (!gw_str_case_eq_lit(h[i].name, "Connection"))
            continue;
        const char *p = h[i].value.base, *end = p + h[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',')
                p++;
            const char *e = p;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e > s && gw_str_case_eq(gw_str(s, (size_t)(e - s)), name))
                return true;
        }
    }
    return false;
}

static void put(char *dst, size_t *len, const char *s, size_t n)
{
    memcpy(dst + *len, s, n);
    *len += n;
}
#define PUT_LIT(dst, len, lit) put((dst), (len), (lit), sizeof(lit) - 1)

static void put_u64(char *dst, size_t *len, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(dst, len, tmp + i, sizeof(tmp) - i);
}

/* Allocates the request with its serialised head in the same block (one malloc per request).
 * NULL when the request is invalid (bad method, path or header bytes, or a head over 1 MiB). */
static gw_upstream_req_t *req_build(gw_upstream_pool_t *pool, const target_t *t, const gw_upstream_request_t *q)
{
    if (!valid_token(q->method) || !valid_path(q->path) || (q->n_headers && q->headers == NULL))
        return NULL;
    size_t need = q->method.len + 1 + q->path.len + sizeof(" HTTP/1.1\r\nHost: \r\n") + t->authority_len +
                  sizeof("Content-Length: 18446744073709551615\r\nConnection: keep-alive\r\n\r\n");
    for (size_t i = 0; i < q->n_headers; i++) {
        if (!valid_token(q->headers[i].name) || !valid_value(q->headers[i].value))
            return NULL;
        need += q->headers[i].name.len + q->headers[i].value.len + 4;
        if (need > REQ_HEAD_MAX)
            return NULL;
    }
    if (need > REQ_HEAD_MAX)
        return NULL;

    gw_upstream_req_t *r = gw_malloc(sizeof(*r) + need);
    memset(r, 0, sizeof(*r));
    link_init(&r->link);
    r->pool = pool;
    r->body = q->body.len ? q->body : gw_str("", 0);
    r->head_method = gw_str_eq_lit(q->method, "HEAD");
    char *d = r->head;
    size_t len = 0;
    put(d, &len, q->method.base, q->method.len);
    PUT_LIT(d, &len, " ");
    put(d, &len, q->path.base, q->path.len);
    PUT_LIT(d, &len, " HTTP/1.1\r\nHost: ");
    put(d, &len, t->authority, t->authority_len);
    PUT_LIT(d, &len, "\r\n");
    bool has_conn = gw_http_header_find(q->headers, q->n_headers, GW_STR("Connection")).base != NULL;
    for (size_t i = 0; i < q->n_headers; i++) {
        const gw_http_header_t *h = &q->headers[i];
        if (is_hop_by_hop(h->name) || (has_conn && named_by_connection(q->headers, q->n_headers, h->name)))
            continue;
        put(d, &len, h->name.base, h->name.len);
        PUT_LIT(d, &len, ": ");
        put(d, &len, h->value.base, h->value.len);
        PUT_LIT(d, &len, "\r\n");
    }
    /* Always framed by Content-Length (0 included, so a POST is never read to close), except a
     * GET or HEAD without a body, where RFC 9110 8.6 asks us not to send it. */
    if (q->body.len > 0 || !(gw_str_eq_lit(q->method, "GET") || r->head_method)) {
        PUT_LIT(d, &len, "Content-Length: ");
        put_u64(d, &len, q->body.len);
        PUT_LIT(d, &len, "\r\n");
    }
    PUT_LIT(d, &len, "Connection: keep-alive\r\n\r\n");
    r->head_len = len;
    return r;
}

/* ---- deferred pass ---- */

/* Work for a connection that could not be done where it was found: failures noticed inside
 * gw_upstream_send, body bytes parked by a pause, buffered TLS input. */
static void conn_drive(conn_t *c)
{
    if (c->state == C_CLOSING)
        return;
    if (c->defer_status != 0) {
        int status = c->defer_status;
        c->defer_status = 0;
        if (c->defer_retry)
            conn_fail_or_retry(c, status, c->defer_detail);
        else
            conn_fail(c, status, c->defer_detail);
        return;
    }
    gw_upstream_req_t *r = c->req;
    if (c->state == C_ACTIVE && r) {
        if (r->paused)
            return;
        if (c->pend_len > 0) {
            const char *p = c->rbuf + c->pend_off;
            size_t n = c->pend_len;
            c->pend_len = 0;
            if (!req_call_body(r, p, n))
                return;
            if (c->state != C_ACTIVE || c->req != r)
                return;
            if (r->paused) {
                conn_update_reading(c);
                return;
            }
        }
        if (c->complete_pending) {
            conn_complete(c);
            return;
        }
    }
    if (c->tls && (c->state == C_ACTIVE || c->state == C_IDLE))
        conn_tls_pump(c);
    conn_update_reading(c);
}

static void on_defer(uv_timer_t *timer)
{
    gw_upstream_pool_t *pool = GW_CONTAINER_OF(timer, gw_upstream_pool_t, defer_timer);
    link_t reqs, conns;
    list_take_all(&reqs, &pool->failed);
    list_take_all(&conns, &pool->deferred);
    while (!list_empty(&reqs)) {
        gw_upstream_req_t *r = GW_CONTAINER_OF(reqs.next, gw_upstream_req_t, link);
        link_remove(&r->link);
        req_finish(r, r->fail_status, r->fail_detail);
    }
    while (!list_empty(&conns)) {
        conn_t *c = GW_CONTAINER_OF(conns.next, conn_t, defer_link);
        link_remove(&c->defer_link);
        conn_drive(c);
    }
}

/* ---- pool ---- */

static void pool_maybe_free(gw_upstream_pool_t *pool)
{
    if (!pool->closing || pool->n_conns > 0 || pool->n_lookups > 0 || pool->timer_open)
        return;
    while (!list_empty(&pool->targets))
        target_free(GW_CONTAINER_OF(pool->targets.next, target_t, link));
    gw_tls_ctx_free(pool->tls);
    free(pool);
}

static void on_defer_timer_closed(uv_handle_t *h)
{
    gw_upstream_pool_t *pool = GW_CONTAINER_OF((uv_timer_t *)h, gw_upstream_pool_t, defer_timer);
    pool->timer_open = false;
    pool_maybe_free(pool);
}

gw_upstream_pool_t *gw_upstream_pool_new(uv_loop_t *loop, const gw_upstream_pool_opts_t *opts,
                                         const gw_upstream_pool_hooks_t *hooks)
{
    gw_upstream_pool_t *pool = gw_calloc(1, sizeof(*pool));
    pool->loop = loop;
    pool->max_idle = opts && opts->max_idle_per_host ? opts->max_idle_per_host : DEFAULT_MAX_IDLE;
    pool->idle_keepalive_ms = opts && opts->idle_keepalive_ms ? opts->idle_keepalive_ms : DEFAULT_IDLE_KEEPALIVE_MS;
    pool->max_head = opts && opts->max_response_head ? opts->max_response_head : DEFAULT_MAX_HEAD;
    if (hooks)
        pool->hooks = *hooks;
    char err[256] = "";
    pool->tls = gw_tls_ctx_new_client(opts ? opts->ca_file : NULL, err, sizeof(err));
    if (pool->tls == NULL) {
        gw_log_error("upstream: TLS client setup failed: %s", err);
        abort();
    }
    link_init(&pool->targets);
    link_init(&pool->active);
    link_init(&pool->deferred);
    link_init(&pool->failed);
    uv_timer_init(loop, &pool->defer_timer);
    pool->timer_open = true;
    return pool;
}

static void pool_drop_conn(conn_t *c)
{
    if (c->req) {
        gw_upstream_req_t *r = c->req;
        gw_log_warn("upstream: pool closed with a request in flight to %s:%u", c->target->host, c->target->port);
        c->req = NULL;
        r->conn = NULL;
        if (r->in_cb == 0)
            req_free(r);
        else
            r->cancelled = true;
    }
    conn_close(c);
}

void gw_upstream_pool_close(gw_upstream_pool_t *pool)
{
    if (pool == NULL || pool->closing)
        return;
    pool->closing = true;
    while (!list_empty(&pool->failed)) /* contract: none; dropped without callbacks */
        req_free(GW_CONTAINER_OF(pool->failed.next, gw_upstream_req_t, link));
    for (link_t *l = pool->targets.next; l != &pool->targets; l = l->next) {
        target_t *t = GW_CONTAINER_OF(l, target_t, link);
        while (!list_empty(&t->idle))
            conn_close(GW_CONTAINER_OF(t->idle.next, conn_t, link));
        while (!list_empty(&t->waiters))
            pool_drop_conn(GW_CONTAINER_OF(t->waiters.next, conn_t, link));
        if (t->resolving)
            uv_cancel((uv_req_t *)&t->gai); /* may fail if already running; on_resolved copes */
    }
    while (!list_empty(&pool->active))
        pool_drop_conn(GW_CONTAINER_OF(pool->active.next, conn_t, link));
    uv_close((uv_handle_t *)&pool->defer_timer, on_defer_timer_closed);
    pool_maybe_free(pool);
}

/* ---- requests: public API ---- */

gw_upstream_req_t *gw_upstream_send(gw_upstream_pool_t *pool, const gw_upstream_target_t *target,
                                    const gw_upstream_request_t *req, const gw_upstream_timeouts_t *timeouts,
                                    const gw_upstream_callbacks_t *cb, void *ud)
{
    if (pool->closing) {
        gw_log_error("upstream: request sent on a closed pool");
        return NULL;
    }
    target_t *t = target_get(pool, target);
    gw_upstream_req_t *r = t ? req_build(pool, t, req) : NULL;
    const char *bad = t ? "invalid request" : "invalid upstream target";
    if (r == NULL) {
        r = gw_calloc(1, sizeof(*r));
        link_init(&r->link);
        r->pool = pool;
    }
    r->cb = *cb;
    r->ud = ud;
    if (timeouts)
        r->to = *timeouts;
    r->start = now_ms(pool);
    if (t == NULL || r->head_len == 0) {
        req_fail_later(r, t ? GW_UPSTREAM_EPROTO : GW_UPSTREAM_ECONNECT, bad);
        return r;
    }
    if (t->reserved_invalid) {
        req_fail_later(r, GW_UPSTREAM_ECONNECT, "DNS lookup failed");
        return r;
    }
    if (!list_empty(&t->idle)) {
        /* LIFO: the most recently used connection is the least likely to have been closed. */
        conn_t *c = GW_CONTAINER_OF(t->idle.next, conn_t, link);
        link_remove(&c->link);
        t->n_idle--;
        list_push_front(&pool->active, &c->link);
        c->reused = true;
        c->req = r;
        r->conn = c;
        conn_start_request(c);
        return r;
    }
    conn_t *c = conn_new(pool, t);
    c->req = r;
    r->conn = c;
    conn_begin(c);
    return r;
}

void gw_upstream_pause(gw_upstream_req_t *r)
{
    if (r == NULL || r->done || r->cancelled || r->paused)
        return;
    r->paused = true;
    if (r->conn)
        conn_update_reading(r->conn);
}

void gw_upstream_resume(gw_upstream_req_t *r)
{
    if (r == NULL || r->done || r->cancelled || !r->paused)
        return;
    r->paused = false;
    conn_t *c = r->conn;
    if (c == NULL)
        return;
    c->last_read = now_ms(c->pool); /* the silence while paused was ours */
    if (c->pend_len > 0 || c->complete_pending || (c->tls && c->state == C_ACTIVE && gw_tls_conn_has_input(c->tls)))
        defer_conn(c); /* never call back from inside resume */
    else
        conn_update_reading(c);
    conn_arm_timer(c);
}

void gw_upstream_cancel(gw_upstream_req_t *r)
{
    if (r == NULL || r->done || r->cancelled)
        return;
    r->cancelled = true;
    if (r->conn)
        conn_close(r->conn); /* detaches r */
    link_remove(&r->link);   /* pending early failure */
    if (r->in_cb == 0)
        req_free(r);
}

const char *gw_upstream_peer(const gw_upstream_req_t *r)
{
    return r && r->conn ? r->conn->peer : empty_peer;
}
