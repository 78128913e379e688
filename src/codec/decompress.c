/* Streaming gzip / deflate (zlib) and brotli decoders with a cap on the total output (decompress.h).
 * The cap is what makes it safe to observe a compressed upstream body: a few KB of input can
 * expand to gigabytes. */
#include "codec/decompress.h"

#include "core/alloc.h"
#include "core/log.h"

#include <brotli/decode.h>
#include <stdlib.h>
#include <zlib.h>

#define SCRATCH 16384 /* decoded bytes per decoder call, on the stack */

struct gw_decoder_s {
    gw_encoding_t enc;
    size_t max_output;
    size_t total;      /* decoded bytes so far */
    int error;         /* sticky: the first failure is returned again */
    bool finished;     /* the stream (or the last gzip member) ended properly */
    bool zinit;        /* z is initialised */
    unsigned char hdr[2];
    unsigned nhdr;     /* deflate: bytes held back until the zlib header can be recognised */
    z_stream z;
    BrotliDecoderState *br;
};

static bool tok_eq(gw_str_t v, const char *lit)
{
    return gw_str_case_eq(v, gw_str_c(lit));
}

gw_encoding_t gw_encoding_parse(gw_str_t value)
{
    const char *p = value.base, *e = value.base + value.len;
    if (p == NULL)
        return GW_ENCODING_IDENTITY;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    gw_str_t v = gw_str(p, (size_t)(e - p));
    if (v.len == 0 || tok_eq(v, "identity"))
        return GW_ENCODING_IDENTITY;
    if (tok_eq(v, "gzip") || tok_eq(v, "x-gzip"))
        return GW_ENCODING_GZIP;
    if (tok_eq(v, "deflate"))
        return GW_ENCODING_DEFLATE;
    if (tok_eq(v, "br"))
        return GW_ENCODING_BR;
    return GW_ENCODING_UNSUPPORTED; /* stacked ("gzip, br"), zstd, compress, ... */
}

gw_decoder_t *gw_decoder_new(gw_encoding_t enc, size_t max_output)
{
    if (enc != GW_ENCODING_GZIP && enc != GW_ENCODING_DEFLATE && enc != GW_ENCODING_BR)
        return NULL;
    gw_decoder_t *d = gw_calloc(1, sizeof(*d));
    d->enc = enc;
    d->max_output = max_output;
    if (enc == GW_ENCODING_GZIP) {
        if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK)
            goto fail;
        d->zinit = true;
    } else if (enc == GW_ENCODING_BR) {
        if ((d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL)) == NULL)
            goto fail;
    }
    /* deflate: initialised on the first two bytes (see start_deflate) */
    return d;
fail:
    gw_log_error("decompress: cannot initialise the %s decoder", enc == GW_ENCODING_BR ? "brotli" : "zlib");
    free(d);
    return NULL;
}

void gw_decoder_free(gw_decoder_t *d)
{
    if (d == NULL)
        return;
    if (d->zinit)
        inflateEnd(&d->z);
    if (d->br)
        BrotliDecoderDestroyInstance(d->br);
    free(d);
}

bool gw_decoder_finished(const gw_decoder_t *d)
{
    return d && d->finished && d->error == GW_OK;
}

/* Appends decoded bytes, enforcing the output cap; never appends past it. */
static int emit(gw_decoder_t *d, const unsigned char *p, size_t n, gw_buf_t *out)
{
    if (n == 0)
        return GW_OK;
    size_t room = d->max_output - d->total;
    if (n > room) {
        gw_buf_append(out, p, room);
        d->total = d->max_output;
        return GW_TOOBIG;
    }
    if (gw_buf_append(out, p, n) != GW_OK)
        return GW_TOOBIG;
    d->total += n;
    return GW_OK;
}

/* HTTP "deflate" means zlib-wrapped deflate, but servers have long sent raw deflate too, so the
 * first two bytes decide: a valid zlib header (CM=8, FCHECK) is zlib, anything else is raw. */
static int start_deflate(gw_decoder_t *d)
{
    unsigned cmf = d->hdr[0], flg = d->hdr[1];
    bool zlib_hdr = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
    if (inflateInit2(&d->z, zlib_hdr ? MAX_WBITS : -MAX_WBITS) != Z_OK)
        return GW_ERROR;
    d->zinit = true;
    return GW_OK;
}

static int feed_zlib(gw_decoder_t *d, const unsigned char *in, size_t n, gw_buf_t *out)
{
    unsigned char tmp[SCRATCH];
    while (n > 0) {
        if (d->finished) {
            /* Past the end: only another gzip member may follow; zlib checks its magic. */
            if (d->enc != GW_ENCODING_GZIP)
                return GW_EINVAL;
            if (inflateReset(&d->z) != Z_OK)
                return GW_EINVAL;
            d->finished = false;
        }
        uInt take = n > UINT_MAX ? UINT_MAX : (uInt)n;
        d->z.next_in = (Bytef *)in;
        d->z.avail_in = take;
        int zrc;
        do {
            d->z.next_out = tmp;
            d->z.avail_out = sizeof(tmp);
            zrc = inflate(&d->z, Z_NO_FLUSH);
            if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR)
                return GW_EINVAL;
            int rc = emit(d, tmp, sizeof(tmp) - d->z.avail_out, out);
            if (rc != GW_OK)
                return rc;
            if (zrc == Z_BUF_ERROR && d->z.avail_out != 0)
                break; /* needs more input */
        } while (zrc != Z_STREAM_END && (d->z.avail_in > 0 || d->z.avail_out == 0));
        size_t used = take - d->z.avail_in;
        in += used;
        n -= used;
        if (zrc == Z_STREAM_END)
            d->finished = true;
        else if (d->z.avail_in > 0)
            return GW_EINVAL; /* no progress with input left: cannot happen with a sane stream */
    }
    return GW_OK;
}

static int feed_brotli(gw_decoder_t *d, const unsigned char *in, size_t n, gw_buf_t *out)
{
    unsigned char tmp[SCRATCH];
    size_t avail_in = n;
    const uint8_t *next_in = in;
    for (;;) {
        if (d->finished)
            return avail_in ? GW_EINVAL : GW_OK; /* trailing bytes after the final meta-block */
        size_t avail_out = sizeof(tmp);
        uint8_t *next_out = tmp;
        BrotliDecoderResult r = BrotliDecoderDecompressStream(d->br, &avail_in, &next_in, &avail_out, &next_out, NULL);
        if (r == BROTLI_DECODER_RESULT_ERROR)
            return GW_EINVAL;
        int rc = emit(d, tmp, sizeof(tmp) - avail_out, out);
        if (rc != GW_OK)
            return rc;
        if (r == BROTLI_DECODER_RESULT_SUCCESS)
            d->finished = true;
        else if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
            return GW_OK;
    }
}

int gw_decoder_feed(gw_decoder_t *d, const char *in, size_t n, gw_buf_t *out)
{
    if (d->error != GW_OK)
        return d->error;
    if (n == 0)
        return GW_OK;
    const unsigned char *p = (const unsigned char *)in;
    int rc;
    if (d->enc == GW_ENCODING_BR) {
        rc = feed_brotli(d, p, n, out);
    } else if (d->enc == GW_ENCODING_DEFLATE && !d->zinit) {
        while (d->nhdr < 2 && n > 0) {
            d->hdr[d->nhdr++] = *p++;
            n--;
        }
        rc = GW_OK;
        if (d->nhdr == 2 && (rc = start_deflate(d)) == GW_OK && (rc = feed_zlib(d, d->hdr, 2, out)) == GW_OK)
            rc = feed_zlib(d, p, n, out);
    } else {
        rc = feed_zlib(d, p, n, out);
    }
    if (rc != GW_OK)
        d->error = rc;
    return rc;
}
