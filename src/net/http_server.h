/* The HTTP/1.1 server side: one gw_http_conn_t per accepted client connection, parsed with the
 * project's own parser (net/http_request_parser.h). It delivers complete requests (head + body,
 * buffered up to a cap) to a handler and gives the handler a streaming response writer with
 * backpressure. Keep-alive, pipelining (requests answered one at a time, in order), chunked
 * request bodies, Expect: 100-continue,
 * limits (431 for the head, 413 for the body), a header read timeout and optional TLS
 * termination (TLS 1.2 and 1.3, ALPN http/1.1) live here. No knowledge of AI. Everything runs on
 * the owning loop's thread. */
#ifndef GW_NET_HTTP_SERVER_H
#define GW_NET_HTTP_SERVER_H

#include "core/buf.h"
#include "core/gw.h"
#include "net/http.h"
#include "net/http_request_parser.h"
#include "net/tls.h"

#include <uv.h>

typedef struct gw_http_conn_s gw_http_conn_t;
typedef struct gw_http_req_s gw_http_req_t;

typedef struct {
    size_t max_header_bytes;   /* request line + headers; beyond -> 431. Default 64 KiB */
    size_t max_body_bytes;     /* beyond -> 413. Default 50 MiB */
    uint64_t header_timeout_ms;/* from the first byte of a request to the end of its body
                                  (slowloris guard); beyond -> 408 and close. Default 10 s */
    uint64_t idle_timeout_ms;  /* keep-alive connection with no request; default 300 s */
    size_t write_high_water;   /* pending response bytes above which writers should pause their
                                  producer; default 256 KiB */
    size_t write_low_water;    /* on_drain fires when pending bytes fall below; default 64 KiB */
    /* TLS termination: a server context (gw_tls_ctx_new_server*) or NULL for plain HTTP (the
     * default). gw_http_server_new takes its own reference, so one context made by the caller can
     * serve every worker's server and the caller may drop its reference once they are made. The
     * header timeout also bounds the handshake; pending bytes and the water marks count the
     * ciphertext queued to the socket. */
    gw_tls_ctx_t *tls;
} gw_http_limits_t;

void gw_http_limits_default(gw_http_limits_t *l);

typedef struct {
    /* A complete request arrived. The handler now owns answering it: it must eventually call
     * gw_http_response_end() (or gw_http_respond_simple()), even after on_abort. */
    void (*on_request)(gw_http_req_t *req, void *ud);
    /* The client went away (EOF, reset, write error) while the handler owns a request. The handler
     * should stop its work and then end the response; writes become no-ops. */
    void (*on_abort)(gw_http_req_t *req, void *ud);
    /* Pending response bytes fell below the low-water mark after having exceeded the high one. */
    void (*on_drain)(gw_http_req_t *req, void *ud);
    /* Every response's end, including the errors the server answers by itself, just before the
     * request is freed (access logging; may be NULL). */
    void (*on_response_end)(gw_http_req_t *req, void *ud);
    /* Connection accounting for metrics (may be NULL). */
    void (*on_conn_open)(void *ud);
    void (*on_conn_close)(void *ud);
    /* Writes the body of an error the server answers by itself (400, 408, 413, 417, 431) in the
     * API format of the clients (the gateway: OpenAI error JSON). NULL: a plain JSON error. */
    void (*format_error)(int status, const char *message, gw_buf_t *out, void *ud);
    void *ud;
} gw_http_handler_t;



/* Server context for one loop: a listening TCP handle plus the live connections. */
typedef struct gw_http_server_s gw_http_server_t;

/* Starts serving on an already bound and listening socket fd (SO_REUSEPORT listeners are made by
 * the caller). Returns NULL on failure. */
gw_http_server_t *gw_http_server_new(uv_loop_t *loop, int listen_fd, const gw_http_limits_t *limits,
                                     const gw_http_handler_t *handler);
/* Replaces the TLS context used for connections accepted from now on (a certificate reload); NULL
 * turns TLS off for them. Open connections keep the context they started with. Takes a
 * reference to ctx and drops the previous one. On the server's loop thread only. */
void gw_http_server_set_tls(gw_http_server_t *s, gw_tls_ctx_t *ctx);
/* Stops accepting (the listening handle is closed); open connections continue. From now on
 * responses carry Connection: close and idle keep-alive connections are closed. */
void gw_http_server_stop_accepting(gw_http_server_t *s);
/* Number of open client connections. */
size_t gw_http_server_connections(const gw_http_server_t *s);
/* Closes every connection now (end of the drain grace period). on_abort is called for requests in
 * flight. */
void gw_http_server_close_all(gw_http_server_t *s);
/* Frees the server once every handle is closed (call after stop_accepting and when no connection
 * remains, or after close_all; completes asynchronously on the loop). */
void gw_http_server_free(gw_http_server_t *s);

/* Creates a TCP listening socket on host:port with SO_REUSEADDR and SO_REUSEPORT, non-blocking.
 * Returns the fd or a negative errno. */
int gw_http_listen_socket(const char *host, uint16_t port, int backlog);

/* Response writing. Headers given are sent as is, except that the server adds Content-Length or
 * Transfer-Encoding: chunked (content_length < 0), Connection when closing, and Date. */
int gw_http_response_head(gw_http_req_t *req, int status, const gw_http_header_t *headers, size_t n_headers,
                          int64_t content_length);
/* Appends body bytes (copied). Returns GW_OK, or GW_DONE when the client is gone. */
int gw_http_response_body(gw_http_req_t *req, const char *p, size_t n);
/* Ends the response (terminating chunk when chunked). The request object is freed: do not touch
 * it afterwards. The next pipelined request, if any, is then parsed. */
void gw_http_response_end(gw_http_req_t *req);
/* Ends a response whose body could not be completed: the connection is closed without the
 * terminating chunk, so the client sees a truncated message, never a complete-looking one. */
void gw_http_response_abort(gw_http_req_t *req);
/* Head + body + end in one call. */
void gw_http_respond_simple(gw_http_req_t *req, int status, gw_str_t content_type, gw_str_t body,
                            const gw_http_header_t *extra, size_t n_extra);
/* Response bytes queued to the socket and not yet written. */
size_t gw_http_pending_bytes(const gw_http_req_t *req);
bool gw_http_over_high_water(const gw_http_req_t *req);
/* "ip:port" of the client. */
const char *gw_http_peer(const gw_http_req_t *req);

#endif
