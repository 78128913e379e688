/* How a passthrough translator looks at a response body it forwards unchanged: the bytes are
 * content-decoded (gzip, deflate, br) into a private, bounded buffer for usage extraction, while
 * the client still receives the upstream bytes as they came. */
#ifndef GW_TRANSLATE_BODY_TAP_H
#define GW_TRANSLATE_BODY_TAP_H

#include "codec/decompress.h"
#include "core/buf.h"
#include "core/gw.h"

typedef struct {
    gw_decoder_t *decoder; /* NULL for identity bodies */
    gw_buf_t scratch;      /* the decoded bytes of the current piece */
    bool failed;           /* unsupported or corrupt encoding, or beyond max_decoded: stop looking */
} gw_body_tap_t;

void gw_body_tap_init(gw_body_tap_t *t);
/* Before the first piece: the response's Content-Encoding; max_decoded caps the decoded total
 * (decompression-bomb guard). */
void gw_body_tap_start(gw_body_tap_t *t, gw_str_t content_encoding, size_t max_decoded);
/* The decoded bytes of one received piece in *out (valid until the next call). false once the tap
 * failed: the caller stops observing, the client's bytes are not affected. */
bool gw_body_tap_feed(gw_body_tap_t *t, const char *p, size_t n, gw_str_t *out);
void gw_body_tap_free(gw_body_tap_t *t);

/* Content-Type is text/event-stream (parameters allowed). */
bool gw_content_type_is_event_stream(gw_str_t content_type);

#endif
