/* The HTTP/1.1 request parser, pure (no I/O): bytes in, complete requests out, with the limits
 * enforced at this boundary (head bytes and header count -> 431, body bytes -> 413, malformed
 * -> 400, unsupported Expect -> 417). Wraps http-parser so another parser can replace it. */
#ifndef GW_NET_HTTP_REQUEST_PARSER_H
#define GW_NET_HTTP_REQUEST_PARSER_H

#include "core/buf.h"
#include "core/gw.h"
#include "net/http.h"

#include <http_parser.h>

typedef struct gw_http_req_s gw_http_req_t;

struct gw_http_req_s {
    struct gw_http_conn_s *conn; /* set by the server */
    gw_str_t method;
    gw_str_t target;     /* request-target as received (path + query) */
    gw_str_t path;       /* target without the query string */
    gw_http_header_t *headers;
    size_t n_headers;
    gw_buf_t body;       /* the whole request body (chunked bodies de-chunked) */
    int http_major, http_minor;
    bool keep_alive;     /* client allows reuse */
    uint64_t start_ns;   /* monotonic ns when the first byte of the request arrived */
    int64_t start_wall_us;
    void *data;          /* the handler's per-request state */
    /* Response state (read-only for handlers). */
    int status;          /* sent status, 0 before the head */
    uint64_t bytes_sent; /* response body bytes */
    bool aborted;        /* client gone */
    char *head_storage;  /* owns the bytes method/target/headers point into */
    bool logged;         /* the handler wrote this request's access-log line itself */
};

typedef struct {
    size_t name_off, name_len, value_off, value_len;
} gw_http_hdr_span_t;

typedef struct {
    http_parser parser;
    size_t max_header_bytes;
    size_t max_body_bytes;
    gw_http_req_t *current; /* message being parsed */
    gw_http_req_t *done;    /* complete message waiting to be taken */
    gw_buf_t hbuf;          /* request line + header bytes of the current message */
    gw_http_hdr_span_t spans[GW_HTTP_MAX_HEADERS];
    size_t n_spans;
    bool last_was_value;
    size_t url_off, url_len;
    bool head_complete;       /* the current message's head is parsed (body may follow) */
    bool expect_continue;     /* ... and it asked for 100-continue */
    int error_status;         /* 400, 413, 417 or 431 once the parser failed */
    const char *error_reason; /* static text */
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
