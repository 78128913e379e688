/* AWS event-stream (application/vnd.amazon.eventstream) decoding, incremental across arbitrary
 * chunk boundaries: prelude (total length, headers length, prelude CRC32), typed headers,
 * payload, message CRC32. Pure, no I/O. Used for Bedrock ConverseStream and
 * InvokeModelWithResponseStream responses. */
#ifndef GW_CODEC_AWS_EVENTSTREAM_H
#define GW_CODEC_AWS_EVENTSTREAM_H

#include "core/buf.h"
#include "core/gw.h"

#define GW_EVENTSTREAM_MAX_MESSAGE (16u << 20) /* AWS's own limit is 16 MiB per message */
#define GW_EVENTSTREAM_MAX_HEADERS_BYTES (128u * 1024)

typedef enum {
    GW_ES_BOOL_TRUE = 0,
    GW_ES_BOOL_FALSE = 1,
    GW_ES_BYTE = 2,
    GW_ES_INT16 = 3,
    GW_ES_INT32 = 4,
    GW_ES_INT64 = 5,
    GW_ES_BYTES = 6,
    GW_ES_STRING = 7,
    GW_ES_TIMESTAMP = 8, /* int64 milliseconds since the epoch */
    GW_ES_UUID = 9,      /* 16 bytes */
} gw_es_header_type_t;

typedef struct {
    gw_str_t name;
    gw_es_header_type_t type;
    int64_t int_value;   /* BOOL (1/0), BYTE, INT16, INT32, INT64, TIMESTAMP */
    gw_str_t bytes;      /* BYTES, STRING, UUID */
} gw_es_header_t;

#define GW_EVENTSTREAM_MAX_HEADER_COUNT 64

typedef struct {
    const gw_es_header_t *headers;
    size_t n_headers;
    gw_str_t payload;
    uint32_t prelude_crc, message_crc;
    uint32_t total_length, headers_length; /* as framed (prelude fields), for diagnostics and tests */
} gw_es_message_t;

/* Return GW_OK to continue; another value stops gw_eventstream_feed, which returns it (the rest of
 * that chunk is not read, so the decoder is then done). Slices are valid only during the call. */
typedef int (*gw_es_message_cb)(void *ud, const gw_es_message_t *msg);

typedef struct {
    gw_buf_t pending;   /* bytes of an incomplete message */
    gw_es_header_t headers[GW_EVENTSTREAM_MAX_HEADER_COUNT];
    bool failed;
    int failed_rc;     /* GW_EINVAL or GW_TOOBIG, returned again by every later feed */
    const char *error; /* static description after a failure */
} gw_eventstream_decoder_t;

void gw_eventstream_decoder_init(gw_eventstream_decoder_t *d);
void gw_eventstream_decoder_free(gw_eventstream_decoder_t *d);
/* Feeds bytes; each complete, verified message is reported. Returns GW_OK, GW_EINVAL on a
 * framing or CRC error or an invalid header (d->error says which; the decoder stays failed),
 * GW_TOOBIG beyond the limits, or the callback's value. */
int gw_eventstream_feed(gw_eventstream_decoder_t *d, const char *p, size_t n, gw_es_message_cb cb, void *ud);
/* True when bytes of an unfinished message remain (the stream was cut). */
bool gw_eventstream_has_partial(const gw_eventstream_decoder_t *d);
/* The string value of a header by name, or GW_STR_NULL. */
gw_str_t gw_es_header_string(const gw_es_message_t *m, const char *name);

/* Encodes one message (for tests and fake upstreams): appends the framed bytes to out. Returns GW_OK,
 * GW_EINVAL for a header the decoder would refuse or could not give back unchanged (empty or
 * >255-byte name, unknown type, value out of its type's range, UUID not 16 bytes, BYTES/STRING
 * over 65535 bytes, more than GW_EVENTSTREAM_MAX_HEADER_COUNT headers), or GW_TOOBIG beyond the
 * size limits or out's cap (out unchanged). BOOL headers take their value from the type. */
int gw_eventstream_encode(const gw_es_header_t *headers, size_t n_headers, gw_str_t payload, gw_buf_t *out);

#endif
