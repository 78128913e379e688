/* The HTTP/1.1 request parser, pure (no I/O): bytes in, complete requests out, with the limits
 * enforced at this boundary (head bytes and header count -> 431, body bytes -> 413, malformed
 * -> 400, unsupported Expect -> 417, a transfer coding we do not decode -> 501, an HTTP version
 * other than 1.x -> 505). Hand-written over net/http_parse (it replaced http-parser, whose per-byte
 * state machine cost ~30 instructions per byte on the hot path). */
#ifndef GW_NET_HTTP_REQUEST_PARSER_H
#define GW_NET_HTTP_REQUEST_PARSER_H

#include "core/buf.h"
#include "core/gw.h"
#include "net/http.h"
#include "net/http_parse.h"

typedef struct gw_http_req_s gw_http_req_t;

struct gw_http_req_s {
    struct gw_http_conn_s *conn; /* set by the server */
    gw_str_t method;
    gw_str_t target;     /* request-target as received (path + query) */
    gw_str_t path;       /* target without the query string */
    gw_http_header_t *headers;
    size_t n_headers;
    gw_buf_t body;       /* the whole request body (chunked bodies de-chunked); read-only: its bytes
                          * may share the request's allocation (then max == its length) */
    int http_major, http_minor;
    bool keep_alive;     /* client allows reuse */
    uint64_t start_ns;   /* monotonic ns when the first byte of the request arrived */
    int64_t start_wall_us;
    void *data;          /* the handler's per-request state */
    /* Response state (read-only for handlers). */
    int status;          /* sent status, 0 before the head */
    uint64_t bytes_sent; /* response body bytes */
    bool aborted;        /* client gone */
    char *head_storage;  /* the head's bytes, which method/target/headers point into; they live in
                          * the request's own allocation (or its header array's): never freed alone */
    bool logged;         /* the handler wrote this request's access-log line itself */
    uint8_t storage;     /* private to the parser: which parts share an allocation */
};

/* What a request's head looks like (RFC 9112), and what is refused:
 * - request line: method SP request-target SP "HTTP/" DIGIT "." DIGIT, single spaces or runs of
 *   them; the methods http-parser knew (GET, POST, ..., M-SEARCH); CONNECT is refused (400); the
 *   target is origin-form ("/..."), "*", or absolute-form ("scheme://authority..."), without
 *   control bytes; HTTP/0.9 (no version) is refused (400), a major version other than 1 gets 505,
 *   HTTP/1.x with x > 1 is taken as HTTP/1.1;
 * - field lines as gw_http_parse_fields says (tokens, no control bytes but HTAB in values, no
 *   obsolete folding); lines may end in CRLF or a bare LF, never a bare CR; empty lines before the
 *   request line are skipped (at most max_header_bytes of them);
 * - framing: Content-Length is 1*DIGIT, at most one field, 413 at once when over max_body_bytes;
 *   Transfer-Encoding must be exactly "chunked" (400 when chunked is missing or not last, 501 when
 *   other codings precede it), never with Content-Length, never in HTTP/1.0; without either there
 *   is no body; chunked bodies as gw_http_chunked_decode says (CRLF framing, extensions skipped);
 * - keep-alive: HTTP/1.1 unless a "close" option in Connection (or Proxy-Connection); HTTP/1.0
 *   only with "keep-alive" and no "close"; an Upgrade header is ignored (the request is served as
 *   HTTP/1.1);
 * - Expect: "100-continue" (any case) sets expect_continue on HTTP/1.1 while the body is pending;
 *   an empty value is ignored, any other is 417.
 * The head, request line to its empty line, counts against max_header_bytes, and so do a chunked
 * body's trailers together with it; header fields plus trailer fields are at most
 * GW_HTTP_MAX_HEADERS. Header values come without surrounding whitespace. */
typedef struct {
    size_t max_header_bytes;
    size_t max_body_bytes;
    gw_http_req_t *current;   /* message being parsed, once a partial head or body is pending */
    gw_http_req_t *done;      /* complete message waiting to be taken */
    bool expect_continue;     /* the current message's head is parsed and asked for 100-continue */
    int error_status;         /* 400, 413, 417, 431, 501 or 505 once the parser failed */
    const char *error_reason; /* static text */
    /* Private. */
    int state;
    gw_buf_t hbuf;     /* a head that arrived in pieces, from its first byte */
    size_t skipped;    /* empty lines' bytes before the current request */
    uint32_t line_pos; /* the first line of the head not parsed yet */
    uint32_t target_off, target_len;
    const char *method; /* static string */
    uint8_t method_len;
    uint8_t http_major, http_minor;
    bool start_done; /* the request line is parsed */
    size_t n_fields;
    size_t n_cand;      /* fields that may be framing fields (gw_http_parse_fields) */
    uint64_t remaining; /* Content-Length body bytes still to come */
    gw_http_chunked_t chunked;
    gw_http_header_t fields[GW_HTTP_MAX_HEADERS]; /* slices of the head being parsed */
    uint8_t cand[GW_HTTP_MAX_HEADERS];
} gw_http_request_parser_t;

void gw_http_request_parser_init(gw_http_request_parser_t *p, size_t max_header_bytes, size_t max_body_bytes);
void gw_http_request_parser_free(gw_http_request_parser_t *p);

/* Parses up to n bytes; *consumed says how many were used. Returns GW_OK when a request is
 * complete (take it; bytes after it belong to the next request), GW_AGAIN when all bytes were
 * used and more are needed, GW_ERROR when the input is refused (error_status/error_reason set;
 * the connection cannot continue). */
int gw_http_request_parser_feed(gw_http_request_parser_t *p, const char *data, size_t n, size_t *consumed);
/* The completed request (caller owns it: gw_http_req_free), or NULL. */
gw_http_req_t *gw_http_request_parser_take(gw_http_request_parser_t *p);
/* A request is partially received (head or body bytes pending). */
bool gw_http_request_parser_in_message(const gw_http_request_parser_t *p);

void gw_http_req_free(gw_http_req_t *req);

#endif
