/* Streaming decoders for upstream Content-Encoding (gzip, deflate, br). Used to *observe*
 * compressed response bodies (usage extraction) while the client still receives the original
 * bytes. Pure, no I/O. */
#ifndef GW_CODEC_DECOMPRESS_H
#define GW_CODEC_DECOMPRESS_H

#include "core/buf.h"
#include "core/gw.h"

typedef enum {
    GW_ENCODING_IDENTITY = 0,
    GW_ENCODING_GZIP,
    GW_ENCODING_DEFLATE,
    GW_ENCODING_BR,
    GW_ENCODING_UNSUPPORTED,
} gw_encoding_t;

/* Parses a Content-Encoding header value ("gzip", "x-gzip", "br", "deflate", "identity", empty;
 * case-insensitive, surrounding whitespace ignored). Stacked encodings ("gzip, br") return
 * GW_ENCODING_UNSUPPORTED. */
gw_encoding_t gw_encoding_parse(gw_str_t value);

typedef struct gw_decoder_s gw_decoder_t;

/* Returns a decoder (caller frees with gw_decoder_free), or NULL for IDENTITY/UNSUPPORTED.
 * max_output caps the total decoded bytes (decompression-bomb guard). */
gw_decoder_t *gw_decoder_new(gw_encoding_t enc, size_t max_output);
/* Decodes n input bytes, appending the output to *out. Returns GW_OK, GW_TOOBIG when the total
 * output would exceed max_output (or out's own cap; out then holds at most max_output bytes from
 * this decoder), or GW_EINVAL for corrupt input, including bytes after the end of the stream.
 * After an error the decoder stays in the error state. Concatenated gzip members are decoded
 * too. "deflate" accepts the zlib format (RFC 1950, what HTTP specifies) and, when the first two
 * bytes are not a zlib header, raw deflate (what some servers send). */
int gw_decoder_feed(gw_decoder_t *d, const char *in, size_t n, gw_buf_t *out);
/* True once the compressed stream reached its proper end (false for a truncated stream). */
bool gw_decoder_finished(const gw_decoder_t *d);
void gw_decoder_free(gw_decoder_t *d);

#endif
