/* Shared HTTP/1.1 parsing pieces (see http_parse.h). Line ends and value bytes are found 16 bytes at
 * a time (SSE2, with an 8-byte SWAR fallback) and names are checked against a table, so a head
 * costs a few instructions per byte instead of a per-byte state machine with callbacks. */
#include "net/http_parse.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* clang-format off */
#define T1(c) [(unsigned char)(c)] = 1
const uint8_t gw_http_tchar[256] = {
    T1('!'), T1('#'), T1('$'), T1('%'), T1('&'), T1('\''), T1('*'), T1('+'), T1('-'), T1('.'), T1('^'), T1('_'),
    T1('`'), T1('|'), T1('~'),
    T1('0'), T1('1'), T1('2'), T1('3'), T1('4'), T1('5'), T1('6'), T1('7'), T1('8'), T1('9'),
    T1('A'), T1('B'), T1('C'), T1('D'), T1('E'), T1('F'), T1('G'), T1('H'), T1('I'), T1('J'), T1('K'), T1('L'),
    T1('M'), T1('N'), T1('O'), T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'), T1('U'), T1('V'), T1('W'), T1('X'),
    T1('Y'), T1('Z'),
    T1('a'), T1('b'), T1('c'), T1('d'), T1('e'), T1('f'), T1('g'), T1('h'), T1('i'), T1('j'), T1('k'), T1('l'),
    T1('m'), T1('n'), T1('o'), T1('p'), T1('q'), T1('r'), T1('s'), T1('t'), T1('u'), T1('v'), T1('w'), T1('x'),
    T1('y'), T1('z'),
};
#undef T1

/* Hex digit values, -1 for anything else. */
#define H(c, v) [(unsigned char)(c)] = (v) + 1
static const int8_t hex1[256] = {
    H('0', 0), H('1', 1), H('2', 2), H('3', 3), H('4', 4), H('5', 5), H('6', 6), H('7', 7), H('8', 8), H('9', 9),
    H('a', 10), H('b', 11), H('c', 12), H('d', 13), H('e', 14), H('f', 15),
    H('A', 10), H('B', 11), H('C', 12), H('D', 13), H('E', 14), H('F', 15),
};
#undef H
/* clang-format on */
#define UNHEX(c) (hex1[(unsigned char)(c)] - 1)

/* ---------------------------------------------------------------------------------------------
 * Scans */

#ifdef __SSE2__
/* Bit k set when byte k of x is <= lim or DEL. */
static inline unsigned stop_mask(__m128i x, __m128i lim)
{
    __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(x, lim), x);
    __m128i del = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(low, del));
}
#endif

/* The first byte in buf[i..len) that is <= lim or DEL. lim is 0x1f (control bytes) or 0x20. */
static inline size_t scan_stop(const char *buf, size_t i, size_t len, unsigned char lim)
{
#ifdef __SSE2__
    const __m128i vlim = _mm_set1_epi8((char)lim);
    while (len - i >= 16) {
        unsigned m = stop_mask(_mm_loadu_si128((const __m128i *)(const void *)(buf + i)), vlim);
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
    if (i < len && len >= 16) {
        /* The short tail: the last 16 bytes of the buffer, with the ones before i shifted out. */
        size_t start = len - 16;
        unsigned m = stop_mask(_mm_loadu_si128((const __m128i *)(const void *)(buf + start)), vlim) >> (i - start);
        return m ? i + (size_t)__builtin_ctz(m) : len;
    }
#else
    /* Eight bytes at a time: the lowest flagged byte is exact (a borrow only runs upwards). */
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (len - i >= 8) {
        uint64_t x;
        memcpy(&x, buf + i, 8);
        uint64_t d = x ^ (ones * 0x7f);
        uint64_t hit = (((x - ones * (uint64_t)(lim + 1)) & ~x) | ((d - ones) & ~d)) & highs;
        if (hit)
            return i + (size_t)(__builtin_ctzll(hit) >> 3);
        i += 8;
    }
#endif
    for (; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c <= lim || c == 0x7f)
            return i;
    }
    return len;
}

#ifdef __SSE2__
/* Bit k set when byte k of x is not a letter, a digit or '-', the bytes nearly every field name is
 * made of (unsigned range checks done as signed compares after a bias of 0x80). */
static inline unsigned name_stop_mask(__m128i x)
{
    __m128i lo = _mm_or_si128(x, _mm_set1_epi8(0x20));
    __m128i alpha =
        _mm_cmplt_epi8(_mm_add_epi8(lo, _mm_set1_epi8((char)(0x80 - 'a'))), _mm_set1_epi8((char)(-128 + 26)));
    __m128i digit =
        _mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8((char)(0x80 - '0'))), _mm_set1_epi8((char)(-128 + 10)));
    __m128i dash = _mm_cmpeq_epi8(x, _mm_set1_epi8('-'));
    return ~(unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), dash)) & 0xffffu;
}
#endif

/* The first byte in buf[i..len) that is not a letter, a digit or '-', or len. */
static inline size_t scan_name(const char *buf, size_t i, size_t len)
{
#ifdef __SSE2__
    while (len - i >= 16) {
        unsigned m = name_stop_mask(_mm_loadu_si128((const __m128i *)(const void *)(buf + i)));
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
    if (i < len && len >= 16) {
        size_t start = len - 16;
        unsigned m = name_stop_mask(_mm_loadu_si128((const __m128i *)(const void *)(buf + start))) >> (i - start);
        return m ? i + (size_t)__builtin_ctz(m) : len;
    }
#endif
    for (; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (!((unsigned)((c | 0x20) - 'a') < 26u || (unsigned)(c - '0') < 10u || c == '-'))
            return i;
    }
    return len;
}

size_t gw_http_scan_ctl(const char *buf, size_t i, size_t len)
{
    return scan_stop(buf, i, len, 0x1f);
}

size_t gw_http_scan_ctl_sp(const char *buf, size_t i, size_t len)
{
    return scan_stop(buf, i, len, 0x20);
}

/* ---------------------------------------------------------------------------------------------
 * Field lines */

/* Name lengths of the fields gw_http_framing_read looks at: expect (6), connection (10),
 * content-length (14), proxy-connection (16), transfer-encoding (17). */
#define FRAMING_NAME_LENGTHS ((1u << 6) | (1u << 10) | (1u << 14) | (1u << 16) | (1u << 17))

int gw_http_parse_fields(const char *buf, size_t len, size_t *pos, gw_http_header_t *fields, size_t *n, size_t max,
                         uint8_t *cand, size_t *n_cand, const char **why)
{
    size_t i = *pos, count = *n, line = i;
    int rc;
#ifdef __SSE2__
    /* Loaded once, out of the loop. */
    const __m128i k20 = _mm_set1_epi8(0x20), ka = _mm_set1_epi8((char)(0x80 - 'a')),
                  k26 = _mm_set1_epi8((char)(-128 + 26)), kdash = _mm_set1_epi8('-'), k1 = _mm_set1_epi8(1),
                  k21 = _mm_set1_epi8(0x21);
#endif
    for (;;) {
#ifdef __SSE2__
        /* Common lines, tested with 16-byte loads: a name of letters and '-', a colon, spaces, a
         * value without control bytes (nor obs-text, which the cheap test flags too), CRLF or LF,
         * all within 48 bytes. The first line that is anything else takes the general path below. */
        if (len >= 32) {
            const char *p = buf + i, *const last = buf + len - 32, *const end = buf + len;
            gw_http_header_t *f = fields + count, *const fend = fields + max;
            while (p <= last && f < fend) {
                __m128i x0 = _mm_loadu_si128((const __m128i *)(const void *)p);
                __m128i x1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
#define NAME_STOP(x)                                                                                                   \
    (~(unsigned)_mm_movemask_epi8(                                                                                     \
         _mm_or_si128(_mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128((x), k20), ka), k26), _mm_cmpeq_epi8((x), kdash))) &    \
     0xffffu)
/* x + 1 < 0x21 as signed bytes: the controls, DEL and every byte >= 0x80 */
#define VALUE_STOP(x) ((uint32_t)_mm_movemask_epi8(_mm_cmplt_epi8(_mm_add_epi8((x), k1), k21)))
                unsigned nstop = NAME_STOP(x0);
                size_t k = nstop ? (size_t)__builtin_ctz(nstop) : 16 + (size_t)__builtin_ctz(NAME_STOP(x1) | 0x10000u);
                if (k - 1 >= 31 || p[k] != ':')
                    break;
                uint32_t stop = (VALUE_STOP(x0) | VALUE_STOP(x1) << 16) & (~1u << k);
                const char *e;
                if (stop)
                    e = p + __builtin_ctz(stop);
                else if (end - p >= 48 && (stop = VALUE_STOP(_mm_loadu_si128((const __m128i *)(const void *)(p + 32)))))
                    e = p + 32 + __builtin_ctz(stop);
                else
                    e = buf + scan_stop(buf, (size_t)(p - buf) + 32, len, 0x1f);
#undef NAME_STOP
#undef VALUE_STOP
                const char *next;
                if (end - e < 2)
                    break;
                if (e[0] == '\r' && e[1] == '\n')
                    next = e + 2;
                else if (e[0] == '\n')
                    next = e + 1;
                else
                    break;
                const char *vs = p + k + 1, *ve = e;
                while (*vs == ' ') /* stops at *e at the latest */
                    vs++;
                while (ve > vs && ve[-1] == ' ')
                    ve--;
                if ((FRAMING_NAME_LENGTHS >> k) & 1u)
                    cand[(*n_cand)++] = (uint8_t)(f - fields);
                f->name = gw_str(p, k);
                f->value = gw_str(vs, (size_t)(ve - vs));
                f++;
                p = next;
            }
            count = (size_t)(f - fields);
            i = (size_t)(p - buf);
        }
#endif
        line = i;
        if (i >= len) {
            rc = GW_AGAIN;
            goto out;
        }
        unsigned char c = (unsigned char)buf[i];
        if (!gw_http_tchar[c]) {
            if (c == '\r') {
                if (i + 1 >= len) {
                    rc = GW_AGAIN;
                    goto out;
                }
                if (buf[i + 1] != '\n') {
                    *why = "CR not followed by LF";
                    rc = GW_EINVAL;
                    goto out;
                }
                line = i + 2;
                rc = GW_DONE;
                goto out;
            }
            if (c == '\n') {
                line = i + 1;
                rc = GW_DONE;
                goto out;
            }
            *why = (c == ' ' || c == '\t') ? "obsolete line folding is not accepted"
                                           : "invalid character in a header name";
            rc = GW_EINVAL;
            goto out;
        }
        /* The name: letters, digits and '-' by the vector test, other token bytes one by one. */
        i = scan_name(buf, i, len);
        while (i < len && buf[i] != ':' && gw_http_tchar[(unsigned char)buf[i]])
            i = scan_name(buf, i + 1, len);
        if (i >= len) {
            rc = GW_AGAIN;
            goto out;
        }
        if (buf[i] != ':') {
            *why = "invalid character in a header name";
            rc = GW_EINVAL;
            goto out;
        }
        size_t name_len = i - line;
        i++;
        if (i < len && buf[i] == ' ')
            i++;
        if (i < len && (buf[i] == ' ' || buf[i] == '\t'))
            while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
                i++;
        size_t vstart = i;
        /* The value runs to the first control byte but HTAB. */
        i = scan_stop(buf, i, len, 0x1f);
        while (i < len && buf[i] == '\t')
            i = scan_stop(buf, i + 1, len, 0x1f);
        if (i >= len) {
            rc = GW_AGAIN;
            goto out;
        }
        size_t vend = i;
        if (buf[i] == '\r') {
            if (i + 1 >= len) {
                rc = GW_AGAIN;
                goto out;
            }
            if (buf[i + 1] != '\n') {
                *why = "CR not followed by LF";
                rc = GW_EINVAL;
                goto out;
            }
            i += 2;
        } else if (buf[i] == '\n') {
            i++;
        } else {
            *why = "control character in a header value";
            rc = GW_EINVAL;
            goto out;
        }
        if (vend > vstart && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
            while (vend > vstart && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
                vend--;
        if (count == max) {
            *why = "too many header fields";
            rc = GW_TOOBIG;
            goto out;
        }
        if (name_len < 32 && ((FRAMING_NAME_LENGTHS >> name_len) & 1u))
            cand[(*n_cand)++] = (uint8_t)count;
        gw_http_header_t *f = &fields[count++];
        f->name = gw_str(buf + line, name_len);
        f->value = gw_str(buf + vstart, vend - vstart);
    }
out:
    *pos = line;
    *n = count;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Framing fields */

static inline uint64_t load64(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static inline uint32_t load32(const char *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* s[0..n) equals the literal lit (lower-case letters and '-', n >= 4), ignoring ASCII case. OR-ing
 * 0x20 maps only 'A'-'Z' onto 'a'-'z' and only CR onto '-', and s never holds a CR (a field name
 * or value), so whole words compare at once. */
static inline bool is_lit(const char *s, const char *lit, size_t n)
{
    if (n >= 8) {
        const uint64_t m = 0x2020202020202020ull;
        for (size_t i = 0; i + 8 < n; i += 8)
            if ((load64(s + i) | m) != load64(lit + i))
                return false;
        return (load64(s + n - 8) | m) == load64(lit + n - 8);
    }
    const uint32_t m = 0x20202020u;
    return (load32(s) | m) == load32(lit) && (load32(s + n - 4) | m) == load32(lit + n - 4);
}

/* Calls fn on each element of a comma-separated list, OWS trimmed (empty elements included). */
typedef void (*list_fn)(const char *e, size_t n, void *ud);
static void each_element(const char *v, size_t n, list_fn fn, void *ud)
{
    size_t i = 0;
    for (;;) {
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        fn(v + s, e - s, ud);
        if (i >= n)
            return;
        i++;
    }
}

static void connection_option(const char *e, size_t n, void *ud)
{
    gw_http_framing_t *f = ud;
    if (n == 5 && is_lit(e, "close", 5))
        f->close = true;
    else if (n == 10 && is_lit(e, "keep-alive", 10))
        f->keep_alive = true;
}

typedef struct {
    unsigned chunked; /* times "chunked" was listed */
    bool last_chunked, other, empty;
} te_list_t;

static void transfer_coding(const char *e, size_t n, void *ud)
{
    te_list_t *t = ud;
    if (n == 0) {
        t->empty = true;
    } else if (n == 7 && is_lit(e, "chunked", 7)) {
        t->chunked++;
        t->last_chunked = true;
        return;
    } else {
        t->other = true;
    }
    t->last_chunked = false;
}

/* Values are trimmed, so a value without a comma is one element: the usual values are decided
 * without the list walk. */
static inline void connection_field(const char *v, size_t n, gw_http_framing_t *f)
{
    if (n == 10 && is_lit(v, "keep-alive", 10))
        f->keep_alive = true;
    else if (n == 5 && is_lit(v, "close", 5))
        f->close = true;
    else if (n > 2 && memchr(v, ',', n) != NULL)
        each_element(v, n, connection_option, f);
}

static inline void transfer_encoding_field(const char *v, size_t n, te_list_t *te)
{
    if (memchr(v, ',', n) == NULL)
        transfer_coding(v, n, te);
    else
        each_element(v, n, transfer_coding, te);
}

/* Content-Length: 1*DIGIT, whose value fits 64 bits. */
static bool content_length(const char *v, size_t n, uint64_t *out)
{
    size_t k = 0;
    while (n - k > 19 && v[k] == '0') /* leading zeros beyond what could overflow */
        k++;
    if (n == 0 || n - k > 19)
        return false;
    uint64_t cl = 0;
    for (; k < n; k++) {
        unsigned d = (unsigned)((unsigned char)v[k] - '0');
        if (d > 9)
            return false;
        cl = cl * 10 + d;
    }
    *out = cl;
    return true;
}

int gw_http_framing_read(const gw_http_header_t *fields, const uint8_t *cand, size_t n_cand, gw_http_framing_t *out,
                         const char **why)
{
    *out = (gw_http_framing_t){.expect = -1};
    te_list_t te = {0};
    bool has_te = false;
    for (size_t c = 0; c < n_cand; c++) {
        size_t i = cand[c];
        const char *name = fields[i].name.base;
        const char *v = fields[i].value.base;
        size_t vn = fields[i].value.len;
        /* The name's length picks the one candidate worth comparing. */
        switch (fields[i].name.len) {
        case 6:
            if (out->expect < 0 && is_lit(name, "expect", 6))
                out->expect = (int)i;
            break;
        case 10:
            if (is_lit(name, "connection", 10))
                connection_field(v, vn, out);
            break;
        case 14:
            if (is_lit(name, "content-length", 14)) {
                if (out->has_content_length) {
                    *why = "duplicate Content-Length";
                    return GW_EINVAL;
                }
                if (!content_length(v, vn, &out->content_length)) {
                    *why = "invalid Content-Length";
                    return GW_EINVAL;
                }
                out->has_content_length = true;
            }
            break;
        case 16:
            if (is_lit(name, "proxy-connection", 16))
                connection_field(v, vn, out);
            break;
        case 17:
            if (is_lit(name, "transfer-encoding", 17)) {
                has_te = true;
                transfer_encoding_field(v, vn, &te);
            }
            break;
        default:
            break;
        }
    }
    if (has_te) {
        if (out->has_content_length) {
            *why = "both Content-Length and Transfer-Encoding";
            return GW_EINVAL;
        }
        if (te.empty || te.chunked != 1 || !te.last_chunked)
            out->te = GW_HTTP_TE_INVALID;
        else
            out->te = te.other ? GW_HTTP_TE_UNSUPPORTED : GW_HTTP_TE_CHUNKED;
    }
    return GW_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Chunked bodies */

enum {
    CH_SIZE_START = 0,
    CH_SIZE,
    CH_EXT_WS, /* whitespace after the size, before ';' */
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TR_START,
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_END_LF,
    CH_DONE,
    CH_ERROR,
};

void gw_http_chunked_init(gw_http_chunked_t *d, size_t max_trailer_bytes, size_t max_trailer_fields)
{
    memset(d, 0, sizeof(*d));
    d->max_trailer_bytes = (uint32_t)GW_MIN(max_trailer_bytes, (size_t)GW_HTTP_HEAD_LIMIT);
    d->max_trailer_fields = (uint32_t)GW_MIN(max_trailer_fields, (size_t)GW_HTTP_HEAD_LIMIT);
    d->state = CH_SIZE_START;
}

static int chunk_fail(gw_http_chunked_t *d, int err, const char *why)
{
    d->state = CH_ERROR;
    d->err = (int8_t)err;
    d->why = why;
    return err;
}

int gw_http_chunked_decode(gw_http_chunked_t *d, const char *p, size_t n, size_t *used, gw_str_t *piece)
{
    *used = 0;
    *piece = GW_STR_NULL;
    if (d->state == CH_ERROR)
        return d->err;
    if (d->state == CH_DONE)
        return GW_DONE;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (d->state >= CH_TR_START && ++d->trailer_bytes > d->max_trailer_bytes)
            return chunk_fail(d, GW_TOOBIG, "trailer section too large");
        switch (d->state) {
        case CH_DATA: {
            size_t take = n - i;
            if (take > d->remaining)
                take = (size_t)d->remaining;
            *piece = gw_str(p + i, take);
            d->remaining -= take;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            *used = i + take;
            return GW_OK;
        }
        case CH_SIZE_START:
            if (UNHEX(c) < 0)
                return chunk_fail(d, GW_EINVAL, "invalid chunk size");
            d->remaining = (uint64_t)UNHEX(c);
            d->line = 1;
            d->state = CH_SIZE;
            break;
        case CH_SIZE:
        case CH_EXT_WS:
        case CH_EXT:
            if (++d->line > GW_HTTP_MAX_CHUNK_LINE)
                return chunk_fail(d, GW_EINVAL, "chunk size line too long");
            if (c == '\r' && d->state != CH_EXT_WS) { /* whitespace is allowed only before ';' */
                d->state = CH_SIZE_LF;
            } else if (d->state == CH_SIZE && UNHEX(c) >= 0) {
                if (d->remaining >> 59)
                    return chunk_fail(d, GW_EINVAL, "chunk size too large");
                d->remaining = d->remaining << 4 | (uint64_t)UNHEX(c);
            } else if (d->state == CH_EXT) {
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                    return chunk_fail(d, GW_EINVAL, "invalid chunk extension");
            } else if (c == ';') {
                d->state = CH_EXT;
            } else if (c == ' ' || c == '\t') {
                d->state = CH_EXT_WS;
            } else {
                return chunk_fail(d, GW_EINVAL, "invalid chunk size");
            }
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                return chunk_fail(d, GW_EINVAL, "chunk size line not ended by CRLF");
            d->state = d->remaining ? CH_DATA : CH_TR_START;
            break;
        case CH_DATA_CR:
            if (c != '\r')
                return chunk_fail(d, GW_EINVAL, "chunk data not followed by CRLF");
            d->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return chunk_fail(d, GW_EINVAL, "chunk data not followed by CRLF");
            d->state = CH_SIZE_START;
            break;
        case CH_TR_START:
            if (c == '\r') {
                d->state = CH_END_LF;
            } else if (c == '\n') {
                goto done;
            } else if (gw_http_tchar[c]) {
                d->state = CH_TR_NAME;
            } else {
                return chunk_fail(d, GW_EINVAL, "invalid trailer field");
            }
            break;
        case CH_TR_NAME:
            if (c == ':')
                d->state = CH_TR_VALUE;
            else if (!gw_http_tchar[c])
                return chunk_fail(d, GW_EINVAL, "invalid trailer field");
            break;
        case CH_TR_VALUE:
            if (c == '\r') {
                d->state = CH_TR_LF;
            } else if (c == '\n') {
                goto field_end;
            } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return chunk_fail(d, GW_EINVAL, "invalid trailer field");
            }
            break;
        case CH_TR_LF:
            if (c != '\n')
                return chunk_fail(d, GW_EINVAL, "CR not followed by LF");
        field_end:
            if (++d->trailer_fields > d->max_trailer_fields)
                return chunk_fail(d, GW_TOOBIG, "too many trailer fields");
            d->state = CH_TR_START;
            break;
        case CH_END_LF:
            if (c != '\n')
                return chunk_fail(d, GW_EINVAL, "CR not followed by LF");
            goto done;
        default:
            return chunk_fail(d, GW_EINVAL, "chunked decoder in a bad state");
        }
        i++;
    }
    *used = n;
    return GW_AGAIN;
done:
    d->state = CH_DONE;
    *used = i + 1;
    return GW_DONE;
}
