/* Growable byte buffers with a hard cap (curl's dynbuf idea): every header, body and event
 * buffer in aigw has an explicit maximum, and appending past it fails with GW_TOOBIG. */
#ifndef GW_CORE_BUF_H
#define GW_CORE_BUF_H

#include "core/gw.h"

#include <stdarg.h>

typedef struct {
    char *data;  /* owned; NULL until the first append */
    size_t len;  /* bytes in use */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard cap on len */
} gw_buf_t;

#define GW_BUF_UNLIMITED ((size_t)-1)

void gw_buf_init(gw_buf_t *b, size_t max);
void gw_buf_free(gw_buf_t *b);
static inline void gw_buf_reset(gw_buf_t *b)
{
    b->len = 0;
}
/* GW_OK, or GW_TOOBIG (buffer unchanged) when len + n would exceed max. */
int gw_buf_append(gw_buf_t *b, const void *p, size_t n);
static inline int gw_buf_append_str(gw_buf_t *b, gw_str_t s)
{
    return gw_buf_append(b, s.base, s.len);
}
#define gw_buf_append_lit(b, lit) gw_buf_append((b), (lit), sizeof(lit) - 1)
int gw_buf_append_byte(gw_buf_t *b, char c);
int gw_buf_append_u64(gw_buf_t *b, uint64_t v);
/* printf-style append (bounded by max). */
int gw_buf_appendf(gw_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gw_buf_vappendf(gw_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Makes room for n more bytes and returns a pointer to write them; commit with gw_buf_commit. */
char *gw_buf_reserve(gw_buf_t *b, size_t n);
static inline void gw_buf_commit(gw_buf_t *b, size_t n)
{
    b->len += n;
}
/* Drops the first n bytes. */
void gw_buf_consume(gw_buf_t *b, size_t n);
/* Ensures data[len] == '\0' (not counted in len); returns data. */
const char *gw_buf_cstr(gw_buf_t *b);
static inline gw_str_t gw_buf_str(const gw_buf_t *b)
{
    return (gw_str_t){b->data, b->len};
}
/* Moves the bytes out: the caller owns *out (free()); the buffer is left empty. */
char *gw_buf_detach(gw_buf_t *b, size_t *len);

#endif
