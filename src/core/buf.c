/* Capped growable buffers (see buf.h). */
#include "core/buf.h"

#include "core/alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

void gw_buf_init(gw_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void gw_buf_free(gw_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

static int grow(gw_buf_t *b, size_t need)
{
    if (need > b->max || need < b->len)
        return GW_TOOBIG;
    if (need + 1 <= b->cap)
        return GW_OK;
    size_t cap = b->cap ? b->cap : 256; /* a request head or a small body in one allocation */
    while (cap < need + 1)
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    b->data = gw_realloc(b->data, cap);
    b->cap = cap;
    return GW_OK;
}

int gw_buf_append(gw_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return GW_OK;
    if (n > b->max - b->len || b->len > b->max)
        return GW_TOOBIG;
    if (b->len + n + 1 > b->cap && grow(b, b->len + n) != GW_OK) /* room already: no call */
        return GW_TOOBIG;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return GW_OK;
}

int gw_buf_append_byte(gw_buf_t *b, char c)
{
    return gw_buf_append(b, &c, 1);
}

int gw_buf_append_u64(gw_buf_t *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return gw_buf_append(b, tmp + i, sizeof(tmp) - i);
}

int gw_buf_vappendf(gw_buf_t *b, const char *fmt, va_list ap)
{
    char small[256];
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof(small), fmt, cp);
    va_end(cp);
    if (n < 0)
        return GW_ERROR;
    if ((size_t)n < sizeof(small))
        return gw_buf_append(b, small, (size_t)n);
    if ((size_t)n > b->max - b->len)
        return GW_TOOBIG;
    if (grow(b, b->len + (size_t)n) != GW_OK)
        return GW_TOOBIG;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return GW_OK;
}

int gw_buf_appendf(gw_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = gw_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *gw_buf_reserve(gw_buf_t *b, size_t n)
{
    if (n > b->max - b->len || grow(b, b->len + n) != GW_OK)
        return NULL;
    return b->data + b->len;
}

void gw_buf_consume(gw_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

const char *gw_buf_cstr(gw_buf_t *b)
{
    if (b->data == NULL || b->len + 1 > b->cap) {
        size_t saved = b->max;
        b->max = GW_MAX(b->max, b->len + 1);
        grow(b, b->len + 1);
        b->max = saved;
    }
    b->data[b->len] = '\0';
    return b->data;
}

char *gw_buf_detach(gw_buf_t *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
