/* Base64 (RFC 4648) encoding and strict decoding, standard and URL-safe alphabets. Pure, no I/O.
 * Used to unwrap Bedrock InvokeModelWithResponseStream chunks ({"bytes":"<base64>"}) and by
 * anything else that carries binary inside JSON or tokens. */
#ifndef GW_CODEC_BASE64_H
#define GW_CODEC_BASE64_H

#include "core/buf.h"
#include "core/gw.h"

typedef enum {
    /* RFC 4648 §4 ("+/"). Encoding writes '=' padding; decoding requires it (length % 4 == 0). */
    GW_BASE64_STD = 0,
    /* RFC 4648 §5 ("-_"), as in JWTs. Encoding writes no padding; decoding accepts the
     * unpadded form and the correctly padded one. */
    GW_BASE64_URL,
} gw_base64_alphabet_t;

/* Exact length of the encoding of n bytes. */
size_t gw_base64_encoded_len(gw_base64_alphabet_t a, size_t n);

/* Upper bound of the decoded length of n base64 characters. */
static inline size_t gw_base64_decoded_max(size_t n)
{
    return n / 4 * 3 + (n % 4 ? 3 : 0);
}

/* Appends the encoding of in[0..n) to out. GW_OK, or GW_TOOBIG (out unchanged) past out's cap. */
int gw_base64_encode(gw_base64_alphabet_t a, const void *in, size_t n, gw_buf_t *out);

/* Appends the decoding of in[0..n) to out. Strict: only the alphabet's 64 characters (no
 * whitespace, no characters of the other alphabet), padding as described above and only at the
 * end, no leftover 1-character group, and the unused low bits of the last group must be zero, so
 * every byte string has exactly one accepted encoding. GW_OK, GW_EINVAL, or GW_TOOBIG past out's
 * cap; all or nothing: on failure out is left as it was. */
int gw_base64_decode(gw_base64_alphabet_t a, const char *in, size_t n, gw_buf_t *out);

#endif
