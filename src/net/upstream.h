/* The upstream HTTP/1.1 client: per-worker keep-alive connection pools, TLS (system CAs, SNI,
 * certificate and host name verification on), connect / overall / idle timeouts, streaming
 * response bodies with pause/resume for backpressure. One pool per worker loop; everything here
 * runs on that loop's thread only. No callback is ever invoked synchronously from a call into
 * this API. */
#ifndef GW_NET_UPSTREAM_H
#define GW_NET_UPSTREAM_H

#include "core/gw.h"
#include "net/http.h"

#include <uv.h>

typedef struct gw_upstream_pool_s gw_upstream_pool_t;
typedef struct gw_upstream_req_s gw_upstream_req_t;

typedef struct {
    size_t max_idle_per_host;    /* idle keep-alive connections kept per target; default 64 */
    uint64_t idle_keepalive_ms;  /* an idle pooled connection is closed after this; default 60000 */
    size_t max_response_head;    /* status line + headers cap; default 64 KiB */
    const char *ca_file;         /* PEM bundle to trust instead of the system store; NULL: system
                                    store (OpenSSL default paths, which honour SSL_CERT_FILE) */
} gw_upstream_pool_opts_t;

/* Callbacks counting connections for metrics; may be NULL. */
typedef struct {
    void (*on_conn_open)(void *ud);
    void (*on_conn_close)(void *ud);
    void *ud;
} gw_upstream_pool_hooks_t;

/* opts may be NULL for defaults. Returns the pool (never NULL; fails hard on a broken TLS setup). */
gw_upstream_pool_t *gw_upstream_pool_new(uv_loop_t *loop, const gw_upstream_pool_opts_t *opts,
                                         const gw_upstream_pool_hooks_t *hooks);
/* Closes idle connections and frees the pool once every connection handle is closed; in-flight
 * requests must have completed or been cancelled first. */
void gw_upstream_pool_close(gw_upstream_pool_t *pool);

typedef struct {
    gw_str_t host;          /* DNS name or IP literal (copied) */
    uint16_t port;
    bool tls;
    gw_str_t sni;           /* TLS server name and the name the certificate must match; empty:
                               host (no SNI is sent for IP literals) */
    gw_str_t ca_pem;        /* CAs to trust for this target instead of the pool's (PEM text, copied);
                               empty: the pool's trust (system store or its ca_file) */
} gw_upstream_target_t;

typedef struct {
    uint64_t connect_ms;    /* DNS + TCP + TLS handshake; 0: default 10000 */
    uint64_t total_ms;      /* whole exchange until the response is complete; 0: none */
    uint64_t idle_ms;       /* longest silence from the upstream while waiting for or streaming
                               the response; 0: none */
} gw_upstream_timeouts_t;

typedef enum {
    GW_UPSTREAM_OK = 0,
    GW_UPSTREAM_ECONNECT = -100, /* DNS, TCP connect or TLS handshake/verification failed */
    GW_UPSTREAM_ETIMEOUT = -101, /* connect, total or idle timeout */
    GW_UPSTREAM_ERESET = -102,   /* the connection closed or reset before the response ended */
    GW_UPSTREAM_EPROTO = -103,   /* malformed response */
} gw_upstream_status_t;

typedef struct {
    /* Status and headers (1xx interim responses are skipped). The slices are valid only during
     * the call. Return GW_OK to continue; anything else cancels the request (no on_done). */
    int (*on_head)(void *ud, int status, const gw_http_header_t *headers, size_t n_headers);
    /* A piece of the body, de-chunked but still content-encoded. Valid only during the call.
     * gw_upstream_pause() may be called from here. Return GW_OK, or anything else to cancel. */
    int (*on_body)(void *ud, const char *p, size_t n);
    /* Exactly once unless cancelled: status GW_UPSTREAM_OK when the response completed, else one
     * of the errors, with a short static description. The handle is invalid afterwards. */
    void (*on_done)(void *ud, int status, const char *detail);
} gw_upstream_callbacks_t;

typedef struct {
    gw_str_t method;
    gw_str_t path;                    /* origin-form, query included */
    const gw_http_header_t *headers;  /* copied; the client adds Host, Content-Length and
                                         Connection: keep-alive itself, and drops any of those
                                         and hop-by-hop headers given here */
    size_t n_headers;
    gw_str_t body;                    /* NOT copied: must stay valid until on_done or cancel */
} gw_upstream_request_t;

/* Starts a request on a pooled idle connection to the target or a new one. When a reused
 * connection turns out to have been closed by the server before any response byte arrived, the
 * request is resent once on a fresh connection (the standard keep-alive race). */
gw_upstream_req_t *gw_upstream_send(gw_upstream_pool_t *pool, const gw_upstream_target_t *target,
                                    const gw_upstream_request_t *req, const gw_upstream_timeouts_t *timeouts,
                                    const gw_upstream_callbacks_t *cb, void *ud);
/* Stop / restart reading the response from the upstream socket (backpressure). */
void gw_upstream_pause(gw_upstream_req_t *r);
void gw_upstream_resume(gw_upstream_req_t *r);
/* Abandons the request: no callback is called afterwards, the connection is closed (never
 * returned to the pool mid-response). Safe to call from within on_head/on_body. */
void gw_upstream_cancel(gw_upstream_req_t *r);
/* "ip:port" of the connected upstream, "" before connecting. Valid until on_done/cancel. */
const char *gw_upstream_peer(const gw_upstream_req_t *r);

#endif
