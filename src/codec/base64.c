/* Base64 encode and strict decode (see base64.h). Decoding writes straight into out's reserved
 * space and commits only once the whole input proved valid, so a failure leaves out unchanged. */
#include "codec/base64.h"

static const char std_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of c in the alphabet, or -1. Range tests instead of a table: the two alphabets
 * differ only in the last two characters. */
static int sextet(gw_base64_alphabet_t a, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (a == GW_BASE64_STD)
        return c == '+' ? 62 : c == '/' ? 63 : -1;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

size_t gw_base64_encoded_len(gw_base64_alphabet_t a, size_t n)
{
    if (a == GW_BASE64_STD)
        return (n + 2) / 3 * 4;
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int gw_base64_encode(gw_base64_alphabet_t a, const void *in, size_t n, gw_buf_t *out)
{
    const unsigned char *p = in;
    const char *chars = a == GW_BASE64_STD ? std_chars : url_chars;
    if (n > (SIZE_MAX - 4) / 4 * 3)
        return GW_TOOBIG;
    size_t len = gw_base64_encoded_len(a, n);
    if (len == 0)
        return GW_OK;
    char *o = gw_buf_reserve(out, len);
    if (o == NULL)
        return GW_TOOBIG;
    size_t i = 0, k = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        o[k++] = chars[v >> 18];
        o[k++] = chars[v >> 12 & 63];
        o[k++] = chars[v >> 6 & 63];
        o[k++] = chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        o[k++] = chars[v >> 18];
        o[k++] = chars[v >> 12 & 63];
        if (a == GW_BASE64_STD) {
            o[k++] = '=';
            o[k++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        o[k++] = chars[v >> 18];
        o[k++] = chars[v >> 12 & 63];
        o[k++] = chars[v >> 6 & 63];
        if (a == GW_BASE64_STD)
            o[k++] = '=';
    }
    gw_buf_commit(out, k);
    return GW_OK;
}

int gw_base64_decode(gw_base64_alphabet_t a, const char *in, size_t n, gw_buf_t *out)
{
    const unsigned char *p = (const unsigned char *)in;
    /* Padding: strip up to two '=' from a length that is a multiple of 4 (STD requires that
     * length; URL takes the padded form too). */
    size_t pad = 0;
    if (n % 4 == 0 && n >= 4) {
        if (p[n - 1] == '=')
            pad++;
        if (pad && p[n - 2] == '=')
            pad++;
    } else if (a == GW_BASE64_STD && n % 4 != 0) {
        return GW_EINVAL;
    }
    size_t m = n - pad; /* significant characters */
    if (m % 4 == 1)
        return GW_EINVAL; /* one character cannot carry a whole byte */
    size_t len = m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0);
    if (len == 0)
        return m == 0 && pad == 0 ? GW_OK : GW_EINVAL;
    char *o = gw_buf_reserve(out, len);
    if (o == NULL)
        return GW_TOOBIG;
    size_t i = 0, k = 0;
    for (; i + 4 <= m; i += 4) {
        int s0 = sextet(a, p[i]), s1 = sextet(a, p[i + 1]), s2 = sextet(a, p[i + 2]), s3 = sextet(a, p[i + 3]);
        if ((s0 | s1 | s2 | s3) < 0)
            return GW_EINVAL;
        uint32_t v = (uint32_t)s0 << 18 | (uint32_t)s1 << 12 | (uint32_t)s2 << 6 | (uint32_t)s3;
        o[k++] = (char)(v >> 16);
        o[k++] = (char)(v >> 8 & 0xff);
        o[k++] = (char)(v & 0xff);
    }
    size_t rest = m - i;
    if (rest == 2) {
        int s0 = sextet(a, p[i]), s1 = sextet(a, p[i + 1]);
        if ((s0 | s1) < 0 || (s1 & 0x0f) != 0)
            return GW_EINVAL;
        o[k++] = (char)((uint32_t)s0 << 2 | (uint32_t)s1 >> 4);
    } else if (rest == 3) {
        int s0 = sextet(a, p[i]), s1 = sextet(a, p[i + 1]), s2 = sextet(a, p[i + 2]);
        if ((s0 | s1 | s2) < 0 || (s2 & 0x03) != 0)
            return GW_EINVAL;
        uint32_t v = (uint32_t)s0 << 10 | (uint32_t)s1 << 4 | (uint32_t)s2 >> 2;
        o[k++] = (char)(v >> 8);
        o[k++] = (char)(v & 0xff);
    }
    /* A padded input must have exactly the padding its tail needs. */
    if (pad && ((rest == 2 && pad != 2) || (rest == 3 && pad != 1) || rest == 0))
        return GW_EINVAL;
    gw_buf_commit(out, k);
    return GW_OK;
}
