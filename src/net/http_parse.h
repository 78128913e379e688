/* The pieces the HTTP/1.1 request and response parsers share: byte classes, a vectorised scan for
 * control bytes, the field-line tokenizer, what the framing headers (Content-Length,
 * Transfer-Encoding, Connection) mean, and the chunked body decoder. Pure functions, no I/O. */
#ifndef GW_NET_HTTP_PARSE_H
#define GW_NET_HTTP_PARSE_H

#include "core/gw.h"
#include "net/http.h"

/* Every configured head limit is clamped below this (16 MiB). */
#define GW_HTTP_HEAD_LIMIT (16u * 1024 * 1024)
/* Longest chunk-size line (size, extensions, CRLF) accepted; extensions are skipped, not kept. */
#define GW_HTTP_MAX_CHUNK_LINE 4096

/* RFC 9110 tchar: non-zero for the bytes a token (method, field name) may contain. */
extern const uint8_t gw_http_tchar[256];

/* The index of the first control byte (< 0x20 or 0x7f) in buf[i..len), or len when there is none.
 * 16 bytes at a time with SSE2. */
size_t gw_http_scan_ctl(const char *buf, size_t i, size_t len);
/* The same with the space (0x20) counted as a stop byte (request-target, tokens). */
size_t gw_http_scan_ctl_sp(const char *buf, size_t i, size_t len);

/* Tokenizes field lines in buf[*pos..len) into fields[*n..max): name ":" OWS value OWS, ending in
 * CRLF or a bare LF (RFC 9112 2.2 allows a recipient to accept it; a CR must be followed by LF).
 * Names are tokens; values hold no control byte but HTAB; obsolete line folding is refused. The
 * slices point into buf; values come without surrounding whitespace.
 * GW_DONE: the empty line that ends the section was read, *pos is past it. GW_AGAIN: the line at
 * *pos is incomplete (buf[*pos..len) then holds no LF, so a caller may wait for one before calling
 * again with the same bytes at the same address, and more). GW_EINVAL: malformed (*why).
 * GW_TOOBIG: a field line beyond max. Complete lines are stored and *pos advanced past them
 * whatever the result. The indices of the fields whose name has the length of one
 * gw_http_framing_read looks at are appended to cand[*n_cand..] (room for max entries; max <= 256). */
int gw_http_parse_fields(const char *buf, size_t len, size_t *pos, gw_http_header_t *fields, size_t *n, size_t max,
                         uint8_t *cand, size_t *n_cand, const char **why);

/* Transfer-Encoding lists, as far as framing is concerned. */
enum {
    GW_HTTP_TE_NONE = 0,    /* no Transfer-Encoding field */
    GW_HTTP_TE_CHUNKED,     /* exactly "chunked" */
    GW_HTTP_TE_UNSUPPORTED, /* chunked last, after codings we do not decode (e.g. "gzip, chunked") */
    GW_HTTP_TE_INVALID,     /* chunked missing, not last or twice, or an empty list element */
};

typedef struct {
    uint64_t content_length; /* valid when has_content_length */
    bool has_content_length;
    uint8_t te;           /* GW_HTTP_TE_* */
    bool close;           /* a "close" connection option */
    bool keep_alive;      /* a "keep-alive" connection option */
    int expect;           /* index of the first Expect field, -1 without one */
} gw_http_framing_t;

/* Reads the fields that decide framing and persistence, among the candidates gw_http_parse_fields
 * listed. GW_EINVAL (*why) for a Content-Length that is not 1*DIGIT, overflows or is repeated
 * (even with the same value), and for Content-Length together with Transfer-Encoding (request
 * smuggling). Connection and Proxy-Connection options are comma-separated, case-insensitive. */
int gw_http_framing_read(const gw_http_header_t *fields, const uint8_t *cand, size_t n_cand, gw_http_framing_t *out,
                         const char **why);

/* Incremental chunked body decoder (RFC 9112 7.1). Chunk sizes are hex (overflow refused), each
 * size line and each chunk's data end in CRLF exactly, extensions are skipped within
 * GW_HTTP_MAX_CHUNK_LINE, and trailer fields are checked like header fields, bounded, and dropped. */
typedef struct {
    uint64_t remaining; /* data bytes left in the current chunk */
    uint32_t line;      /* bytes of the current size line */
    uint32_t trailer_bytes, max_trailer_bytes;
    uint32_t trailer_fields, max_trailer_fields;
    uint8_t state;
    int8_t err;      /* GW_EINVAL or GW_TOOBIG once refused */
    const char *why; /* static text after an error */
} gw_http_chunked_t;

void gw_http_chunked_init(gw_http_chunked_t *d, size_t max_trailer_bytes, size_t max_trailer_fields);
/* Decodes from p[0..n). GW_OK: *piece is body data (pointing into p), *used bytes were consumed;
 * call again with the rest. GW_AGAIN: all n bytes consumed, more are needed. GW_DONE: the body and
 * its trailers ended after *used bytes. GW_EINVAL (malformed) or GW_TOOBIG (trailers over their
 * bounds): d->why says why; further calls fail the same way. */
int gw_http_chunked_decode(gw_http_chunked_t *d, const char *p, size_t n, size_t *used, gw_str_t *piece);

#endif
