/* AWS event-stream framing (aws_eventstream.h): verifies and splits application/vnd.amazon.eventstream
 * bytes into messages. Messages that a chunk holds whole are decoded in place; only a message cut by
 * a chunk boundary is copied, into d->pending, until it completes. */
#include "codec/aws_eventstream.h"

#include <zlib.h>

/* Prelude: total length (4) + headers length (4) + prelude CRC (4); trailer: message CRC (4). */
#define PRELUDE_LEN 12u
#define TRAILER_LEN 4u
#define MIN_MESSAGE (PRELUDE_LEN + TRAILER_LEN)

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint32_t crc(uint32_t start, const unsigned char *p, size_t n)
{
    /* Messages are capped at 16 MiB, so a uInt length never truncates. */
    return (uint32_t)crc32(start, p, (uInt)n);
}

void gw_eventstream_decoder_init(gw_eventstream_decoder_t *d)
{
    memset(d, 0, sizeof(*d));
    gw_buf_init(&d->pending, GW_EVENTSTREAM_MAX_MESSAGE);
}

void gw_eventstream_decoder_free(gw_eventstream_decoder_t *d)
{
    gw_buf_free(&d->pending);
}

bool gw_eventstream_has_partial(const gw_eventstream_decoder_t *d)
{
    return d->pending.len > 0;
}

static int fail(gw_eventstream_decoder_t *d, int rc, const char *why)
{
    d->failed = true;
    d->failed_rc = rc;
    d->error = why;
    return rc;
}

/* Checks a prelude (12 bytes) and gives the message's total length. The CRC is checked first so
 * that garbage is reported as corruption rather than as an oversized message. */
static int check_prelude(gw_eventstream_decoder_t *d, const unsigned char *p, uint32_t *total)
{
    uint32_t len = get_u32(p), hlen = get_u32(p + 4);
    if (crc(0, p, 8) != get_u32(p + 8))
        return fail(d, GW_EINVAL, "prelude checksum mismatch");
    if (len < MIN_MESSAGE)
        return fail(d, GW_EINVAL, "message length below the 16-byte minimum");
    if (hlen > len - MIN_MESSAGE)
        return fail(d, GW_EINVAL, "headers length beyond the message");
    if (len > GW_EVENTSTREAM_MAX_MESSAGE)
        return fail(d, GW_TOOBIG, "message larger than the limit");
    if (hlen > GW_EVENTSTREAM_MAX_HEADERS_BYTES)
        return fail(d, GW_TOOBIG, "headers larger than the limit");
    *total = len;
    return GW_OK;
}

/* Fixed value sizes per type; -1 = length-prefixed (u16), -2 = unknown type. */
static int value_size(unsigned type)
{
    switch (type) {
    case GW_ES_BOOL_TRUE:
    case GW_ES_BOOL_FALSE:
        return 0;
    case GW_ES_BYTE:
        return 1;
    case GW_ES_INT16:
        return 2;
    case GW_ES_INT32:
        return 4;
    case GW_ES_INT64:
    case GW_ES_TIMESTAMP:
        return 8;
    case GW_ES_UUID:
        return 16;
    case GW_ES_BYTES:
    case GW_ES_STRING:
        return -1;
    default:
        return -2;
    }
}

static int parse_headers(gw_eventstream_decoder_t *d, const unsigned char *p, size_t n, size_t *count)
{
    const unsigned char *end = p + n;
    size_t k = 0;
    while (p < end) {
        if (k == GW_EVENTSTREAM_MAX_HEADER_COUNT)
            return fail(d, GW_TOOBIG, "more headers than the limit");
        gw_es_header_t *h = &d->headers[k];
        size_t name_len = *p++;
        if (name_len == 0)
            return fail(d, GW_EINVAL, "empty header name");
        /* name, then at least the type byte */
        if ((size_t)(end - p) < name_len + 1)
            return fail(d, GW_EINVAL, "header name beyond the headers");
        h->name = gw_str((const char *)p, name_len);
        p += name_len;
        unsigned type = *p++;
        int size = value_size(type);
        if (size == -2)
            return fail(d, GW_EINVAL, "invalid header value type");
        h->type = (gw_es_header_type_t)type;
        h->int_value = 0;
        h->bytes = GW_STR_NULL;
        if (size == -1) {
            if (end - p < 2)
                return fail(d, GW_EINVAL, "header value length beyond the headers");
            size = (int)((unsigned)p[0] << 8 | p[1]);
            p += 2;
        }
        if ((size_t)(end - p) < (size_t)size)
            return fail(d, GW_EINVAL, "header value beyond the headers");
        switch (h->type) {
        case GW_ES_BOOL_TRUE:
            h->int_value = 1;
            break;
        case GW_ES_BOOL_FALSE:
            break;
        case GW_ES_BYTE:
            h->int_value = (int8_t)p[0];
            break;
        case GW_ES_INT16:
            h->int_value = (int16_t)((unsigned)p[0] << 8 | p[1]);
            break;
        case GW_ES_INT32:
            h->int_value = (int32_t)get_u32(p);
            break;
        case GW_ES_INT64:
        case GW_ES_TIMESTAMP:
            h->int_value = (int64_t)get_u64(p);
            break;
        case GW_ES_BYTES:
        case GW_ES_STRING:
        case GW_ES_UUID:
            h->bytes = gw_str((const char *)p, (size_t)size);
            break;
        }
        p += size;
        k++;
    }
    *count = k;
    return GW_OK;
}

/* One whole message of total bytes whose prelude was checked. */
static int deliver(gw_eventstream_decoder_t *d, const unsigned char *m, uint32_t total, gw_es_message_cb cb, void *ud)
{
    uint32_t hlen = get_u32(m + 4);
    uint32_t prelude_crc = get_u32(m + 8), message_crc = get_u32(m + total - TRAILER_LEN);
    /* The message CRC covers everything before it; the running CRC after the first 8 bytes is the
     * prelude CRC just verified, so only the rest is hashed again. */
    if (crc(prelude_crc, m + 8, total - 8 - TRAILER_LEN) != message_crc)
        return fail(d, GW_EINVAL, "message checksum mismatch");
    size_t n_headers = 0;
    int rc = parse_headers(d, m + PRELUDE_LEN, hlen, &n_headers);
    if (rc != GW_OK)
        return rc;
    gw_es_message_t msg = {
        .headers = d->headers,
        .n_headers = n_headers,
        .payload = gw_str((const char *)m + PRELUDE_LEN + hlen, total - MIN_MESSAGE - hlen),
        .prelude_crc = prelude_crc,
        .message_crc = message_crc,
        .total_length = total,
        .headers_length = hlen,
    };
    return cb(ud, &msg);
}

/* Completes the message in d->pending with bytes from *p; consumes what it takes. */
static int fill_pending(gw_eventstream_decoder_t *d, const unsigned char **p, size_t *n, gw_es_message_cb cb, void *ud)
{
    if (d->pending.len < PRELUDE_LEN) {
        size_t take = GW_MIN(*n, PRELUDE_LEN - d->pending.len);
        if (gw_buf_append(&d->pending, *p, take) != GW_OK)
            return fail(d, GW_TOOBIG, "message larger than the limit");
        *p += take;
        *n -= take;
        if (d->pending.len < PRELUDE_LEN)
            return GW_OK;
    }
    uint32_t total = 0;
    int rc = check_prelude(d, (const unsigned char *)d->pending.data, &total);
    if (rc != GW_OK)
        return rc;
    size_t take = GW_MIN(*n, total - d->pending.len);
    if (gw_buf_append(&d->pending, *p, take) != GW_OK)
        return fail(d, GW_TOOBIG, "message larger than the limit");
    *p += take;
    *n -= take;
    if (d->pending.len < total)
        return GW_OK;
    rc = deliver(d, (const unsigned char *)d->pending.data, total, cb, ud);
    gw_buf_reset(&d->pending);
    return rc;
}

int gw_eventstream_feed(gw_eventstream_decoder_t *d, const char *buf, size_t n, gw_es_message_cb cb, void *ud)
{
    if (d->failed)
        return d->failed_rc ? d->failed_rc : GW_EINVAL;
    const unsigned char *p = (const unsigned char *)buf;
    int rc = GW_OK;
    if (d->pending.len > 0) {
        rc = fill_pending(d, &p, &n, cb, ud);
        if (rc != GW_OK || d->pending.len > 0)
            return rc;
    }
    while (n >= PRELUDE_LEN) {
        uint32_t total = 0;
        rc = check_prelude(d, p, &total);
        if (rc != GW_OK)
            return rc;
        if (n < total)
            break;
        rc = deliver(d, p, total, cb, ud);
        if (rc != GW_OK)
            return rc;
        p += total;
        n -= total;
    }
    /* The tail is the start of a message (its prelude, if whole, was checked above). */
    if (n > 0 && gw_buf_append(&d->pending, p, n) != GW_OK)
        return fail(d, GW_TOOBIG, "message larger than the limit");
    return GW_OK;
}

gw_str_t gw_es_header_string(const gw_es_message_t *m, const char *name)
{
    gw_str_t want = gw_str_c(name);
    for (size_t i = 0; i < m->n_headers; i++)
        if (m->headers[i].type == GW_ES_STRING && gw_str_eq(m->headers[i].name, want))
            return m->headers[i].bytes;
    return GW_STR_NULL;
}

/* Wire size of one header, or 0 when it cannot be encoded (the decoder would refuse it). */
static size_t header_wire_size(const gw_es_header_t *h)
{
    if (h->name.len == 0 || h->name.len > 255 || h->name.base == NULL)
        return 0;
    int size = value_size((unsigned)h->type);
    int64_t v = h->int_value;
    switch (size) {
    case -2:
        return 0;
    case -1:
        if (h->bytes.len > UINT16_MAX || (h->bytes.len > 0 && h->bytes.base == NULL))
            return 0;
        return 1 + h->name.len + 1 + 2 + h->bytes.len;
    default:
        break;
    }
    /* Values must fit their wire type so that decoding gives back exactly what was encoded. */
    if ((h->type == GW_ES_BYTE && (v < INT8_MIN || v > INT8_MAX)) ||
        (h->type == GW_ES_INT16 && (v < INT16_MIN || v > INT16_MAX)) ||
        (h->type == GW_ES_INT32 && (v < INT32_MIN || v > INT32_MAX)) ||
        (h->type == GW_ES_UUID && (h->bytes.len != 16 || h->bytes.base == NULL)))
        return 0;
    return 1 + h->name.len + 1 + (size_t)size;
}

int gw_eventstream_encode(const gw_es_header_t *headers, size_t n_headers, gw_str_t payload, gw_buf_t *out)
{
    if (n_headers > GW_EVENTSTREAM_MAX_HEADER_COUNT || (n_headers > 0 && headers == NULL) ||
        (payload.len > 0 && payload.base == NULL))
        return GW_EINVAL;
    size_t hlen = 0;
    for (size_t i = 0; i < n_headers; i++) {
        size_t s = header_wire_size(&headers[i]);
        if (s == 0)
            return GW_EINVAL;
        hlen += s;
    }
    if (hlen > GW_EVENTSTREAM_MAX_HEADERS_BYTES || payload.len > GW_EVENTSTREAM_MAX_MESSAGE)
        return GW_TOOBIG;
    size_t total = MIN_MESSAGE + hlen + payload.len;
    if (total > GW_EVENTSTREAM_MAX_MESSAGE)
        return GW_TOOBIG;
    unsigned char *m = (unsigned char *)gw_buf_reserve(out, total);
    if (m == NULL)
        return GW_TOOBIG;
    put_u32(m, (uint32_t)total);
    put_u32(m + 4, (uint32_t)hlen);
    put_u32(m + 8, crc(0, m, 8));
    unsigned char *w = m + PRELUDE_LEN;
    for (size_t i = 0; i < n_headers; i++) {
        const gw_es_header_t *h = &headers[i];
        *w++ = (unsigned char)h->name.len;
        memcpy(w, h->name.base, h->name.len);
        w += h->name.len;
        *w++ = (unsigned char)h->type;
        switch (h->type) {
        case GW_ES_BOOL_TRUE:
        case GW_ES_BOOL_FALSE:
            break;
        case GW_ES_BYTE:
            *w++ = (unsigned char)(int8_t)h->int_value;
            break;
        case GW_ES_INT16:
            put_u16(w, (uint16_t)(int16_t)h->int_value);
            w += 2;
            break;
        case GW_ES_INT32:
            put_u32(w, (uint32_t)(int32_t)h->int_value);
            w += 4;
            break;
        case GW_ES_INT64:
        case GW_ES_TIMESTAMP:
            put_u64(w, (uint64_t)h->int_value);
            w += 8;
            break;
        case GW_ES_BYTES:
        case GW_ES_STRING:
            put_u16(w, (uint16_t)h->bytes.len);
            w += 2;
            __attribute__((fallthrough));
        case GW_ES_UUID:
            if (h->bytes.len)
                memcpy(w, h->bytes.base, h->bytes.len);
            w += h->bytes.len;
            break;
        }
    }
    if (payload.len)
        memcpy(w, payload.base, payload.len);
    w += payload.len;
    put_u32(w, crc(0, m, total - TRAILER_LEN));
    gw_buf_commit(out, total);
    return GW_OK;
}
