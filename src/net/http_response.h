/* Incremental HTTP/1.1 response parser without I/O: fed bytes in any split, it reports the final
 * status and headers (1xx interim responses skipped) and the de-chunked body, and tells where the
 * response ends. The upstream client drives it per connection; the fuzz harness drives it alone.
 * Hand-written over net/http_parse (it replaced http-parser on the hot path).
 *
 * What is accepted: a status line "HTTP/1." DIGIT SP 3DIGIT [SP reason] (a reason without control
 * bytes but HTAB); field lines as gw_http_parse_fields says; lines ending in CRLF or a bare LF;
 * empty lines before the status line are skipped. 101 and statuses below 100 are refused; other
 * 1xx heads are skipped. Framing: no body after HEAD (gw_http_resp_expect_no_body), 1xx, 204 or 304
 * whatever the headers say; else Transfer-Encoding exactly "chunked", or Content-Length (one field,
 * 1*DIGIT), or the body runs until the connection closes. Content-Length with Transfer-Encoding,
 * duplicate Content-Length and any other transfer coding are refused (GW_EINVAL). Trailers are
 * checked, counted with the head against max_head and GW_HTTP_MAX_HEADERS, and dropped. */
#ifndef GW_NET_HTTP_RESPONSE_H
#define GW_NET_HTTP_RESPONSE_H

#include "core/buf.h"
#include "net/http.h"
#include "net/http_parse.h"

typedef struct {
    /* The final (status >= 200) head. Slices are valid only during the call. Anything but GW_OK
     * stops parsing (gw_http_resp_feed returns GW_ERROR). */
    int (*on_head)(void *ud, int status, const gw_http_header_t *headers, size_t n_headers);
    /* A piece of the de-chunked body; p points into the bytes given to gw_http_resp_feed. Anything
     * but GW_OK stops parsing (GW_ERROR). */
    int (*on_body)(void *ud, const char *p, size_t n);
} gw_http_resp_cbs_t;

/* All state lives inline (no allocation but the buffer for a head split across reads, whose
 * capacity is kept across responses on the same connection). Treat the fields as private. */
typedef struct {
    const gw_http_resp_cbs_t *cbs;
    void *ud;
    gw_buf_t head;      /* a head that arrived in pieces, from its first byte */
    size_t max_head;    /* cap on the bytes of all heads of one response, 1xx included */
    size_t head_bytes;  /* head bytes consumed so far */
    uint64_t remaining; /* Content-Length body bytes still to come */
    const char *detail; /* static description of the failure */
    int state;
    int err;
    int status;
    uint32_t line_pos; /* the first line of the current head not parsed yet */
    uint8_t http_minor;
    bool start_done; /* the status line of the current head is parsed */
    bool started;
    bool keep_alive;
    bool no_body;
    size_t n_fields;
    size_t n_cand; /* fields that may be framing fields (gw_http_parse_fields) */
    gw_http_chunked_t chunked;
    uint8_t cand[GW_HTTP_MAX_HEADERS];
    gw_http_header_t headers[GW_HTTP_MAX_HEADERS]; /* slices of the head being parsed */
} gw_http_resp_t;

/* Once per connection; max_head bounds status line plus headers (0: 64 KiB). */
void gw_http_resp_init(gw_http_resp_t *r, size_t max_head);
/* Before each response; cbs must outlive the response. */
void gw_http_resp_start(gw_http_resp_t *r, const gw_http_resp_cbs_t *cbs, void *ud);
void gw_http_resp_free(gw_http_resp_t *r);
/* After gw_http_resp_start, for a HEAD request: the final response has no body whatever its
 * Content-Length or Transfer-Encoding say. */
static inline void gw_http_resp_expect_no_body(gw_http_resp_t *r)
{
    r->no_body = true;
}

/* Parses n bytes. GW_OK: all consumed, the response goes on. GW_DONE: the response ended after
 * *used bytes (the rest does not belong to it). GW_EINVAL: malformed. GW_TOOBIG: head over
 * max_head or more than GW_HTTP_MAX_HEADERS headers. GW_ERROR: a callback stopped it. After an
 * error or GW_DONE, further calls return the same status and consume nothing. */
int gw_http_resp_feed(gw_http_resp_t *r, const char *p, size_t n, size_t *used);
/* The peer closed the connection: GW_DONE when that ends a close-delimited body (or the response
 * had already ended), GW_EINVAL when the response is truncated or never began. */
int gw_http_resp_eof(gw_http_resp_t *r);

/* True once any byte was fed since gw_http_resp_start. */
static inline bool gw_http_resp_started(const gw_http_resp_t *r)
{
    return r->started;
}
/* After GW_DONE: whether the connection may carry another request (HTTP/1.1 without
 * "Connection: close", or HTTP/1.0 with keep-alive, and the body was not close-delimited). */
static inline bool gw_http_resp_keep_alive(const gw_http_resp_t *r)
{
    return r->keep_alive;
}
/* Short static description of the last failure. */
static inline const char *gw_http_resp_error(const gw_http_resp_t *r)
{
    return r->detail ? r->detail : "ok";
}

#endif
