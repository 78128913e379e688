/* Basic vocabulary shared by every layer: status codes, string slices, small macros.
 * Nothing here knows about HTTP or AI; every other header may include it. */
#ifndef GW_CORE_GW_H
#define GW_CORE_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Status codes: 0 is success, negatives are failures or asynchronous states. */
#define GW_OK 0
#define GW_ERROR (-1)  /* generic failure */
#define GW_AGAIN (-2)  /* not yet: call again when more input arrives */
#define GW_DONE (-3)   /* finished / not found, not an error */
#define GW_TOOBIG (-4) /* a configured limit was exceeded */
#define GW_EINVAL (-5) /* malformed input */

/* A length-carrying slice. Never assume NUL termination. The slice does not own its bytes. */
typedef struct {
    const char *base;
    size_t len;
} gw_str_t;

#define GW_STR(lit) ((gw_str_t){(lit), sizeof(lit) - 1})
#define GW_STR_INIT(lit) {(lit), sizeof(lit) - 1} /* the same, in a static initializer */
#define GW_STR_NULL ((gw_str_t){NULL, 0})

static inline gw_str_t gw_str(const char *base, size_t len)
{
    return (gw_str_t){base, len};
}

static inline gw_str_t gw_str_c(const char *cstr)
{
    return (gw_str_t){cstr, cstr ? strlen(cstr) : 0};
}

static inline bool gw_str_eq(gw_str_t a, gw_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

static inline bool gw_str_eq_lit_(gw_str_t a, const char *lit, size_t n)
{
    return a.len == n && memcmp(a.base, lit, n) == 0;
}
#define gw_str_eq_lit(s, lit) gw_str_eq_lit_((s), (lit), sizeof(lit) - 1)

/* ASCII case-insensitive equality (HTTP header names, tokens). The length test is inline: most compares (header names
 * against a list) fail on it without a call. */
bool gw_str_case_eq_bytes(const char *a, const char *b, size_t n);
static inline bool gw_str_case_eq(gw_str_t a, gw_str_t b)
{
    return a.len == b.len && gw_str_case_eq_bytes(a.base, b.base, a.len);
}
#define gw_str_case_eq_lit(s, lit) gw_str_case_eq((s), GW_STR(lit))

#define GW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define GW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GW_MAX(a, b) ((a) > (b) ? (a) : (b))
#define GW_UNUSED(x) ((void)(x))
#define GW_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
