/* Strict JSON validation with limits, and lookups that hand back raw slices of the input (json.h).
 * Nothing here allocates: the validator keeps its depth stack and its duplicate-key table on the C
 * stack, bounded by GW_JSON_MAX_DEPTH_CAP and GW_JSON_MAX_OPEN_KEYS. */
#include "core/json.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef const unsigned char *uptr;

/* ---------------------------------------------------------------------------------------------
 * Byte classes and small decoders shared by the validator, the lookups and the writers.
 */

/* Bytes that may be copied verbatim inside a JSON string: printable ASCII except '"' and '\'. */
static const unsigned char plain_tab[256] = {
    [0x20 ... 0x21] = 1,
    [0x23 ... 0x5b] = 1,
    [0x5d ... 0x7f] = 1,
};

/* Bytes that matter while skipping a container without validating it. */
static const unsigned char struct_tab[256] = {
    ['"'] = 1, ['['] = 1, [']'] = 1, ['{'] = 1, ['}'] = 1,
};

static inline bool is_ws(unsigned c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline bool is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static inline uptr skip_ws(uptr p, uptr end)
{
    /* Compact JSON has no whitespace: one comparison settles the common case. */
    while (p < end && *p <= ' ' && is_ws(*p))
        p++;
    return p;
}

/* The first '"' or '\' in [p, end), or end. Sixteen bytes at a time with SSE2 (every x86-64 has
 * it), eight with plain integer arithmetic elsewhere: the lookups skip every string this way, and
 * most strings are short, where a memchr call per string costs more than the scan. */
static inline uptr find_quote_or_backslash(uptr p, uptr end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned hit = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)));
        if (hit)
            return p + __builtin_ctz(hit);
        p += 16;
    }
#endif
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t hit = (((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
        if (hit)
            return p + (__builtin_ctzll(hit) >> 3);
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\')
        p++;
    return p;
}

/* Returns the first byte in [p, end) that is not plain string content ('"', '\', a control byte
 * or a non-ASCII byte). Strings dominate JSON bodies, so sixteen (SSE2) or eight bytes are tested
 * at a time. */
static inline uptr skip_plain(uptr p, uptr end)
{
#ifdef __SSE2__
    /* A signed compare below 0x20 catches control bytes and, being negative, non-ASCII ones. */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                   _mm_cmplt_epi8(x, space));
        unsigned hit = (unsigned)_mm_movemask_epi8(bad);
        if (hit)
            return p + __builtin_ctz(hit);
        p += 16;
    }
#endif
    const uint64_t ones
 = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x;
        if (hit & highs)
            break;
        p += 8;
    }
    while (p < end && plain_tab[*p])
        p++;
    return p;
}

/* Length of the well-formed UTF-8 sequence at p (*p >= 0x80), or 0 when it is ill-formed, with
 * *bad set to the length of its maximal ill-formed prefix (Unicode's "maximal subpart", which is
 * what one U+FFFD replaces). Overlong forms, surrogates and code points past U+10FFFF fail. */
static size_t utf8_seq(uptr p, uptr end, size_t *bad)
{
    unsigned c = p[0], lo = 0x80, hi = 0xbf;
    size_t need;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c == 0xe0) {
        need = 2, lo = 0xa0;
    } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
        need = 2;
    } else if (c == 0xed) {
        need = 2, hi = 0x9f;
    } else if (c == 0xf0) {
        need = 3, lo = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3) {
        need = 3;
    } else if (c == 0xf4) {
        need = 3, hi = 0x8f;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= (size_t)(end - p) || p[i] < lo || p[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80, hi = 0xbf;
    }
    return need + 1;
}

static size_t utf8_put(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

static bool hex4(uptr p, uptr end, uint32_t *out)
{
    if (end - p < 4)
        return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (is_digit(c))
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* Decodes the escape at *pp (which points at the backslash) into a code point, joining surrogate
 * pairs; advances *pp past it. Lone surrogates and unknown escapes fail. U+0000 is returned as
 * is: the callers decide. */
static bool decode_escape(uptr *pp, uptr end, uint32_t *cp)
{
    uptr p = *pp;
    if (end - p < 2)
        return false;
    switch (p[1]) {
    case '"': *cp = '"'; break;
    case '\\': *cp = '\\'; break;
    case '/': *cp = '/'; break;
    case 'b': *cp = '\b'; break;
    case 'f': *cp = '\f'; break;
    case 'n': *cp = '\n'; break;
    case 'r': *cp = '\r'; break;
    case 't': *cp = '\t'; break;
    case 'u': {
        uint32_t u, lo;
        if (!hex4(p + 2, end, &u) || (u >= 0xdc00 && u <= 0xdfff))
            return false;
        if (u >= 0xd800 && u <= 0xdbff) {
            if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, end, &lo) || lo < 0xdc00 || lo > 0xdfff)
                return false;
            *cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            *pp = p + 12;
            return true;
        }
        *cp = u;
        *pp = p + 6;
        return true;
    }
    default:
        return false;
    }
    *pp = p + 2;
    return true;
}

/* Walks the unescaped bytes of string content (between the quotes), one byte at a time, so keys
 * can be compared and hashed without a buffer. Lenient about raw bytes (they pass through). */
typedef struct {
    uptr p, end;
    unsigned char pend[4];
    unsigned npend, ipend;
} ubytes_t;

static void ub_init(ubytes_t *it, uptr p, uptr end)
{
    it->p = p;
    it->end = end;
    it->npend = it->ipend = 0;
}

/* Next byte (0..255), -1 at the end, -2 on a malformed escape. */
static int ub_next(ubytes_t *it)
{
    if (it->ipend < it->npend)
        return it->pend[it->ipend++];
    if (it->p >= it->end)
        return -1;
    if (*it->p != '\\')
        return *it->p++;
    uint32_t cp;
    if (!decode_escape(&it->p, it->end, &cp))
        return -2;
    it->npend = (unsigned)utf8_put(cp, it->pend);
    it->ipend = 1;
    return it->pend[0];
}

/* Compares two string contents after unescaping. */
static bool content_eq(uptr a, size_t alen, uptr b, size_t blen)
{
    if (alen == blen && memcmp(a, b, alen) == 0)
        return true;
    if (!memchr(a, '\\', alen) && !memchr(b, '\\', blen))
        return false;
    ubytes_t x, y;
    ub_init(&x, a, a + alen);
    ub_init(&y, b, b + blen);
    for (;;) {
        int cx = ub_next(&x), cy = ub_next(&y);
        if (cx == -2 || cy == -2 || cx != cy)
            return false;
        if (cx == -1)
            return true;
    }
}

/* A hash of the unescaped bytes, so "a" and "\u0061" collide as they must. Eight bytes are mixed
 * at a time (keys are hashed for every member of every validated body); the escaped spelling
 * feeds the same little-endian words byte by byte. */
#define KH_MUL 0xff51afd7ed558ccdULL

static inline uint64_t kh_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * KH_MUL;
    return h ^ (h >> 32);
}

static inline uint64_t load_le64(uptr p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

static uint32_t content_hash(uptr p, size_t len, bool escaped)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL, w = 0;
    size_t n = 0; /* unescaped bytes */
    if (!escaped) {
        for (; len - n >= 8; n += 8)
            h = kh_mix(h, load_le64(p + n));
        for (size_t i = 0; n + i < len; i++)
            w |= (uint64_t)p[n + i] << (8 * i);
        n = len;
    } else {
        ubytes_t it;
        ub_init(&it, p, p + len);
        for (int c; (c = ub_next(&it)) >= 0; n++) {
            w |= (uint64_t)(unsigned)c << (8 * (n & 7));
            if ((n & 7) == 7) {
                h = kh_mix(h, w);
                w = 0;
            }
        }
    }
    h = kh_mix(h, w ^ ((uint64_t)n << 56));
    return (uint32_t)(h ^ (h >> 29));
}

/* ---------------------------------------------------------------------------------------------
 * Validator.
 */

enum { K_OBJ = 1, K_ARR = 2 };

#define KEY_SLOTS_MAX (2 * GW_JSON_MAX_OPEN_KEYS) /* load factor stays <= 1/2 */
#define KEY_SLOTS_MIN 32

typedef struct {
    uint32_t off;  /* content start (after the quote), offset in the document */
    uint32_t len;  /* raw content length */
    uint32_t hash; /* of the unescaped content */
} vkey_t;

typedef struct {
    uptr start, end;
    gw_json_error_t *err;
    /* Keys of every open object, in document order; each open object owns a suffix starting at
     * keybase[depth]. The hash table holds index+1 of each key; closing an object removes its keys
     * in reverse insertion order, which restores a linear-probing table exactly (no tombstones). */
    uint32_t nkeys;
    uint32_t mask; /* table slots in use - 1; 0 until the first key */
    vkey_t keys[GW_JSON_MAX_OPEN_KEYS];
    uint16_t slots[KEY_SLOTS_MAX];
    unsigned char kind[GW_JSON_MAX_DEPTH_CAP + 1];
    uint16_t keybase[GW_JSON_MAX_DEPTH_CAP + 1];
} vstate_t;

static int fail(vstate_t *s, uptr at, int rc, const char *what)
{
    if (s->err) {
        s->err->offset = (size_t)(at - s->start);
        s->err->what = what;
    }
    return rc;
}

static void table_put(vstate_t *s, uint32_t idx)
{
    uint32_t i = s->keys[idx].hash & s->mask;
    while (s->slots[i])
        i = (i + 1) & s->mask;
    s->slots[i] = (uint16_t)(idx + 1);
}

static void table_grow(vstate_t *s)
{
    uint32_t size = s->mask ? (s->mask + 1) * 2 : KEY_SLOTS_MIN;
    memset(s->slots, 0, size * sizeof(s->slots[0]));
    s->mask = size - 1;
    for (uint32_t i = 0; i < s->nkeys; i++)
        table_put(s, i);
}

/* Records a key of the object open at `depth`; GW_EINVAL when that object already has it. */
static int add_key(vstate_t *s, int depth, uptr content, size_t len, bool escaped)
{
    if (s->nkeys >= GW_JSON_MAX_OPEN_KEYS)
        return fail(s, content - 1, GW_TOOBIG, "too many keys in open objects");
    if (s->mask == 0 || (s->nkeys + 1) * 2 > s->mask + 1)
        table_grow(s);
    uint32_t h = content_hash(content, len, escaped), base = s->keybase[depth];
    uint32_t i = h & s->mask;
    for (uint32_t v; (v = s->slots[i]) != 0; i = (i + 1) & s->mask) {
        const vkey_t *k = &s->keys[v - 1];
        if (v - 1 >= base && k->hash == h && content_eq(s->start + k->off, k->len, content, len))
            return fail(s, content - 1, GW_EINVAL, "duplicate key");
    }
    vkey_t *k = &s->keys[s->nkeys];
    k->off = (uint32_t)(content - s->start);
    k->len = (uint32_t)len;
    k->hash = h;
    s->slots[i] = (uint16_t)(++s->nkeys);
    return GW_OK;
}

static void drop_keys(vstate_t *s, uint32_t base)
{
    while (s->nkeys > base) {
        uint32_t idx = --s->nkeys, i = s->keys[idx].hash & s->mask;
        while (s->slots[i] != idx + 1)
            i = (i + 1) & s->mask;
        s->slots[i] = 0;
    }
}

/* Scans the string whose opening quote is at *pp and leaves *pp past the closing quote. */
static int scan_string(vstate_t *s, uptr *pp, bool *escaped)
{
    uptr p = *pp + 1, end = s->end;
    for (;;) {
        p = skip_plain(p, end);
        if (p >= end)
            return fail(s, *pp, GW_EINVAL, "unterminated string");
        unsigned c = *p;
        if (c == '"') {
            *pp = p + 1;
            return GW_OK;
        }
        if (c == '\\') {
            uint32_t cp;
            uptr e = p;
            *escaped = true;
            if (!decode_escape(&e, end, &cp)) {
                if (end - p >= 2 && p[1] == 'u')
                    return fail(s, p, GW_EINVAL, "invalid \\u escape or lone surrogate");
                return fail(s, p, GW_EINVAL, "invalid escape");
            }
            if (cp == 0)
                return fail(s, p, GW_EINVAL, "\\u0000 not allowed");
            p = e;
            continue;
        }
        if (c < 0x20)
            return fail(s, p, GW_EINVAL, "control character in string");
        size_t bad, k = utf8_seq(p, end, &bad);
        if (k == 0)
            return fail(s, p, GW_EINVAL, "invalid UTF-8");
        p += k;
    }
}

static int scan_number(vstate_t *s, uptr *pp)
{
    uptr p = *pp, end = s->end;
    if (*p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return fail(s, *pp, GW_EINVAL, "invalid number");
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(s, *pp, GW_EINVAL, "leading zero in number");
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return fail(s, *pp, GW_EINVAL, "invalid number");
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return fail(s, *pp, GW_EINVAL, "invalid number");
        while (p < end && is_digit(*p))
            p++;
    }
    *pp = p;
    return GW_OK;
}

static bool literal(uptr *pp, uptr end, const char *lit, size_t n)
{
    if ((size_t)(end - *pp) < n || memcmp(*pp, lit, n) != 0)
        return false;
    *pp += n;
    return true;
}

/* Whether the key whose text is [content, content + len) (escaped: it holds a backslash) names
 * one of the wanted members; the index, or -1. */
static int wanted_member(uptr content, size_t len, bool escaped, const gw_str_t *names, size_t n_names)
{
    gw_str_t raw = gw_str((const char *)content - 1, len + 2);
    for (size_t i = 0; i < n_names; i++)
        if (escaped ? gw_json_key_eq(raw, names[i]) : (len == names[i].len && memcmp(content, names[i].base, len) == 0))
            return (int)i;
    return -1;
}

int gw_json_validate(const char *p, size_t n, int max_depth, gw_json_error_t *err)
{
    return gw_json_validate_members(p, n, max_depth, err, NULL, NULL, 0);
}

int gw_json_validate_members(const char *p, size_t n, int max_depth, gw_json_error_t *err, const gw_str_t *names,
                             gw_str_t *values, size_t n_names)
{
    vstate_t s;
    int capture = -1; /* the wanted top-level member whose value is being scanned */
    uptr capture_start = NULL;
    for (size_t i = 0; i < n_names; i++)
        values[i] = GW_STR_NULL;
    if (p == NULL && n == 0)
        p = ""; /* no arithmetic on NULL, even by zero */
    s.start = (uptr)p;
    s.end = s.start + n;
    s.err = err;
    s.nkeys = 0;
    s.mask = 0;
    if (p == NULL && n > 0)
        return fail(&s, s.start, GW_EINVAL, "no input");
    if (n > UINT32_MAX) /* key offsets are 32-bit */
        return fail(&s, s.start, GW_TOOBIG, "document too large");
    int limit = max_depth <= 0 ? GW_JSON_DEFAULT_MAX_DEPTH : GW_MIN(max_depth, GW_JSON_MAX_DEPTH_CAP);
    int depth = 0, rc;
    uptr q = skip_ws(s.start, s.end), end = s.end;

value:
    if (q >= end)
        return fail(&s, q, GW_EINVAL, depth ? "unexpected end of input" : "empty document");
    switch (*q) {
    case '{':
    case '[':
        if (depth >= limit)
            return fail(&s, q, GW_TOOBIG, "nesting too deep");
        depth++;
        s.kind[depth] = *q == '{' ? K_OBJ : K_ARR;
        s.keybase[depth] = (uint16_t)s.nkeys;
        q = skip_ws(q + 1, end);
        if (q < end && *q == (s.kind[depth] == K_OBJ ? '}' : ']')) {
            q++;
            depth--;
            goto after;
        }
        if (s.kind[depth] == K_OBJ)
            goto key;
        goto value;
    case '"': {
        bool esc = false;
        if ((rc = scan_string(&s, &q, &esc)) != GW_OK)
            return rc;
        goto after;
    }
    case 't':
        if (!literal(&q, end, "true", 4))
            return fail(&s, q, GW_EINVAL, "invalid literal");
        goto after;
    case 'f':
        if (!literal(&q, end, "false", 5))
            return fail(&s, q, GW_EINVAL, "invalid literal");
        goto after;
    case 'n':
        if (!literal(&q, end, "null", 4))
            return fail(&s, q, GW_EINVAL, "invalid literal");
        goto after;
    case '-':
    case '0' ... '9':
        if ((rc = scan_number(&s, &q)) != GW_OK)
            return rc;
        goto after;
    case ']':
    case '}':
        return fail(&s, q, GW_EINVAL, "unexpected closing bracket (trailing comma?)");
    default:
        return fail(&s, q, GW_EINVAL, "unexpected character");
    }

key:
    if (q >= end || *q != '"')
        return fail(&s, q, GW_EINVAL, q < end && *q == '}' ? "trailing comma" : "expected a string key");
    {
        uptr k = q;
        bool esc = false;
        if ((rc = scan_string(&s, &q, &esc)) != GW_OK)
            return rc;
        if ((rc = add_key(&s, depth, k + 1, (size_t)(q - 1 - (k + 1)), esc)) != GW_OK)
            return rc;
        if (depth == 1 && n_names > 0)
            capture = wanted_member(k + 1, (size_t)(q - 1 - (k + 1)), esc, names, n_names);
    }
    q = skip_ws(q, end);
    if (q >= end || *q != ':')
        return fail(&s, q, GW_EINVAL, "expected ':'");
    q = skip_ws(q + 1, end);
    if (depth == 1)
        capture_start = q;
    goto value;

after:
    if (capture >= 0 && depth == 1) { /* a top-level member's value ends here (keys are unique) */
        values[capture] = gw_str((const char *)capture_start, (size_t)(q - capture_start));
        capture = -1;
    }
    q = skip_ws(q, end);
    if (depth == 0) {
        if (q != end)
            return fail(&s, q, GW_EINVAL, "trailing garbage");
        return GW_OK;
    }
    if (q >= end)
        return fail(&s, q, GW_EINVAL, "unexpected end of input");
    if (*q == ',') {
        q = skip_ws(q + 1, end);
        if (s.kind[depth] == K_OBJ)
            goto key;
        goto value;
    }
    if (*q == '}' && s.kind[depth] == K_OBJ) {
        drop_keys(&s, s.keybase[depth]);
        depth--;
        q++;
        goto after;
    }
    if (*q == ']' && s.kind[depth] == K_ARR) {
        depth--;
        q++;
        goto after;
    }
    return fail(&s, q, GW_EINVAL, "expected ',' or a matching closing bracket");
}

gw_json_type_t gw_json_type(gw_str_t raw)
{
    if (raw.base == NULL)
        return GW_JSON_INVALID;
    uptr p = skip_ws((uptr)raw.base, (uptr)raw.base + raw.len);
    if (p >= (uptr)raw.base + raw.len)
        return GW_JSON_INVALID;
    switch (*p) {
    case '{': return GW_JSON_OBJECT;
    case '[': return GW_JSON_ARRAY;
    case '"': return GW_JSON_STRING;
    case '-':
    case '0' ... '9': return GW_JSON_NUMBER;
    case 't': return GW_JSON_TRUE;
    case 'f': return GW_JSON_FALSE;
    case 'n': return GW_JSON_NULL;
    default: return GW_JSON_INVALID;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Lookups. They trust structure only as far as they must: every step is bounds-checked, so an
 * unvalidated document gives GW_EINVAL or a wrong-but-inside slice, never an out-of-bounds read.
 */

/* p at an opening quote; returns the byte after the closing quote, or NULL. A backslash escapes
 * the byte after it, whatever it is (enough to find the string's end; validity is not checked). */
static uptr skip_string(uptr p, uptr end)
{
    uptr q = p + 1;
    for (;;) {
        q = find_quote_or_backslash(q, end);
        if (q >= end)
            return NULL;
        if (*q == '"')
            return q + 1;
        q += 2; /* the backslash and the byte it escapes */
        if (q > end)
            return NULL;
    }
}

/* Bytes that end a scalar (number, literal) while skipping: whitespace and structure. */
static const unsigned char scalar_end_tab[256] = {
    [' '] = 1, ['\n'] = 1, ['\r'] = 1, ['\t'] = 1, [','] = 1, [':'] = 1,
    [']'] = 1, ['}'] = 1,  ['['] = 1,  ['{'] = 1,  ['"'] = 1,
};

/* The first byte of [p, end) that matters while skipping a container ('"', '[', ']', '{', '}'),
 * or end. With SSE2, sixteen bytes at a time: OR-ing 0x20 folds '[' onto '{' and ']' onto '}'. */
static inline uptr find_struct(uptr p, uptr end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), open = _mm_set1_epi8('{'), close = _mm_set1_epi8('}'),
                  fold = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p), f = _mm_or_si128(x, fold);
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_or_si128(_mm_cmpeq_epi8(f, open), _mm_cmpeq_epi8(f, close)));
        unsigned hit = (unsigned)_mm_movemask_epi8(m);
        if (hit)
            return p + __builtin_ctz(hit);
        p += 16;
    }
#endif
    while (p < end && !struct_tab[*p])
        p++;
    return p;
}

/* p at the first byte of a value; returns the byte after it, or NULL. */
static uptr skip_value(uptr p, uptr end)
{
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            p = find_struct(p, end);
            if (p >= end)
                break;
            if (*p == '"') {
                if ((p = skip_string(p, end)) == NULL)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') {
                depth++;
            } else if (--depth == 0) {
                return p + 1;
            }
            p++;
        }
        return NULL;
    }
    uptr s = p;
    while (p < end && !scalar_end_tab[*p])
        p++;
    return p == s ? NULL : p;
}

int gw_json_array_next(gw_str_t arr, size_t *pos, gw_str_t *elem)
{
    if (arr.base == NULL || *pos > arr.len)
        return GW_EINVAL;
    uptr b = (uptr)arr.base, end = b + arr.len, q;
    if (*pos == 0) {
        q = skip_ws(b, end);
        if (q >= end || *q != '[')
            return GW_EINVAL;
        q = skip_ws(q + 1, end);
        if (q < end && *q == ']') {
            *pos = (size_t)(q + 1 - b);
            return GW_DONE;
        }
    } else {
        q = skip_ws(b + *pos, end);
        if (q >= end)
            return GW_EINVAL;
        if (*q == ']') {
            *pos = (size_t)(q + 1 - b);
            return GW_DONE;
        }
        if (*q != ',')
            return GW_EINVAL;
        q = skip_ws(q + 1, end);
    }
    if (q >= end)
        return GW_EINVAL;
    uptr vend = skip_value(q, end);
    if (vend == NULL)
        return GW_EINVAL;
    *elem = gw_str((const char *)q, (size_t)(vend - q));
    *pos = (size_t)(vend - b);
    return GW_OK;
}

int gw_json_object_next(gw_str_t obj, size_t *pos, gw_str_t *key, gw_str_t *value)
{
    if (obj.base == NULL || *pos > obj.len)
        return GW_EINVAL;
    uptr b = (uptr)obj.base, end = b + obj.len, q;
    if (*pos == 0) {
        q = skip_ws(b, end);
        if (q >= end || *q != '{')
            return GW_EINVAL;
        q = skip_ws(q + 1, end);
        if (q < end && *q == '}') {
            *pos = (size_t)(q + 1 - b);
            return GW_DONE;
        }
    } else {
        q = skip_ws(b + *pos, end);
        if (q >= end)
            return GW_EINVAL;
        if (*q == '}') {
            *pos = (size_t)(q + 1 - b);
            return GW_DONE;
        }
        if (*q != ',')
            return GW_EINVAL;
        q = skip_ws(q + 1, end);
    }
    if (q >= end || *q != '"')
        return GW_EINVAL;
    uptr kend = skip_string(q, end);
    if (kend == NULL)
        return GW_EINVAL;
    uptr v = skip_ws(kend, end);
    if (v >= end || *v != ':')
        return GW_EINVAL;
    v = skip_ws(v + 1, end);
    if (v >= end)
        return GW_EINVAL;
    uptr vend = skip_value(v, end);
    if (vend == NULL)
        return GW_EINVAL;
    *key = gw_str((const char *)q, (size_t)(kend - q));
    *value = gw_str((const char *)v, (size_t)(vend - v));
    *pos = (size_t)(vend - b);
    return GW_OK;
}

bool gw_json_key_eq(gw_str_t raw_key, gw_str_t key)
{
    if (raw_key.base == NULL || raw_key.len < 2 || raw_key.base[0] != '"' || raw_key.base[raw_key.len - 1] != '"')
        return false;
    uptr c = (uptr)raw_key.base + 1;
    size_t clen = raw_key.len - 2;
    /* An escape's text is longer than the character it stands for: a raw key shorter than key
     * never matches, one of the same length only byte for byte (unless key itself holds a
     * backslash, which lookups by name never do), and only a longer one holding a backslash
     * needs decoding. Most keys compared are mismatches of another length. */
    if (clen < key.len || (key.len > 0 && c[0] != (unsigned char)key.base[0] && c[0] != '\\'))
        return false; /* too short, or its first character already differs */
    if (clen == key.len) {
        if (clen == 0)
            return true;
        if (memcmp(c, key.base, clen) != 0)
            return false;
        if (!memchr(key.base, '\\', key.len))
            return true;
    } else if (!memchr(c, '\\', clen)) {
        return false;
    }
    ubytes_t it;
    ub_init(&it, c, c + clen);
    for (size_t i = 0;; i++) {
        int ch = ub_next(&it);
        if (ch == -1)
            return i == key.len;
        if (ch < 0 || i >= key.len || (unsigned char)key.base[i] != ch)
            return false;
    }
}

int gw_json_object_get(gw_str_t obj, gw_str_t key, gw_str_t *value)
{
    size_t pos = 0;
    gw_str_t k, v;
    int rc;
    while ((rc = gw_json_object_next(obj, &pos, &k, &v)) == GW_OK) {
        if (gw_json_key_eq(k, key)) {
            *value = v;
            return GW_OK;
        }
    }
    return rc;
}

int gw_json_path_get(gw_str_t obj, const char *dotted_path, gw_str_t *value)
{
    if (dotted_path == NULL)
        return GW_EINVAL;
    gw_str_t cur = obj;
    const char *seg = dotted_path;
    for (bool first = true;; first = false) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!first && gw_json_type(cur) != GW_JSON_OBJECT)
            return GW_DONE;
        int rc = gw_json_object_get(cur, gw_str(seg, len), &cur);
        if (rc != GW_OK)
            return rc;
        if (dot == NULL)
            break;
        seg = dot + 1;
    }
    *value = cur;
    return GW_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Scalars and writers.
 */

static gw_str_t trim_ws(gw_str_t s)
{
    if (s.base == NULL)
        return s;
    uptr p = (uptr)s.base, end = p + s.len;
    p = skip_ws(p, end);
    while (end > p && is_ws(end[-1]))
        end--;
    return gw_str((const char *)p, (size_t)(end - p));
}

int gw_json_string_unescape(gw_str_t raw, gw_buf_t *out)
{
    raw = trim_ws(raw);
    if (raw.len < 2 || raw.base[0] != '"' || raw.base[raw.len - 1] != '"')
        return GW_EINVAL;
    size_t saved = out->len;
    uptr p = (uptr)raw.base + 1, end = (uptr)raw.base + raw.len - 1, run = p;
    int rc = GW_EINVAL;
    for (;;) {
        p = skip_plain(p, end);
        if (p >= end)
            break;
        if (*p >= 0x80) {
            size_t bad, k = utf8_seq(p, end, &bad);
            if (k == 0)
                goto fail;
            p += k;
            continue;
        }
        if (*p != '\\') /* an unescaped quote or a control byte */
            goto fail;
        if ((rc = gw_buf_append(out, run, (size_t)(p - run))) != GW_OK)
            goto fail;
        uint32_t cp;
        unsigned char u8[4];
        rc = GW_EINVAL;
        if (!decode_escape(&p, end, &cp) || cp == 0)
            goto fail;
        if ((rc = gw_buf_append(out, u8, utf8_put(cp, u8))) != GW_OK)
            goto fail;
        rc = GW_EINVAL;
        run = p;
    }
    if ((rc = gw_buf_append(out, run, (size_t)(end - run))) == GW_OK)
        return GW_OK;
fail:
    out->len = saved;
    return rc;
}

static int pow10_mul(uint64_t *v, int64_t e)
{
    for (; e > 0; e--) {
        if (*v > UINT64_MAX / 10)
            return GW_EINVAL;
        *v *= 10;
    }
    return GW_OK;
}

int gw_json_uint(gw_str_t raw, uint64_t *out)
{
    raw = trim_ws(raw);
    if (raw.base == NULL || raw.len == 0)
        return GW_EINVAL;
    uptr p = (uptr)raw.base, end = p + raw.len;
    bool neg = false;
    if (*p == '-')
        neg = true, p++;
    /* Grammar first (the validator's), remembering the digit runs. */
    uptr i0 = p, i1, f0 = NULL, f1 = NULL;
    if (p >= end || !is_digit(*p) || (*p == '0' && end - p > 1 && is_digit(p[1])))
        return GW_EINVAL;
    while (p < end && is_digit(*p))
        p++;
    i1 = p;
    if (p < end && *p == '.') {
        f0 = ++p;
        while (p < end && is_digit(*p))
            p++;
        f1 = p;
        if (f0 == f1)
            return GW_EINVAL;
    }
    int64_t exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return GW_EINVAL;
        for (; p < end && is_digit(*p); p++)
            if (exp < 1000000000) /* saturate: anything this large overflows or underflows anyway */
                exp = exp * 10 + (*p - '0');
        if (eneg)
            exp = -exp;
    }
    if (p != end)
        return GW_EINVAL;

    /* value = digits(int ++ frac) * 10^(exp - fraclen); drop leading and trailing zeros. */
    size_t ilen = (size_t)(i1 - i0), flen = f0 ? (size_t)(f1 - f0) : 0, total = ilen + flen;
#define DIGIT(k) ((k) < ilen ? i0[k] : f0[(k)-ilen])
    size_t first = 0, last = total;
    while (first < total && DIGIT(first) == '0')
        first++;
    if (first == total) {
        *out = 0; /* zero in any spelling, "-0" included */
        return GW_OK;
    }
    if (neg)
        return GW_EINVAL;
    while (DIGIT(last - 1) == '0')
        last--;
    int64_t scale = exp - (int64_t)flen + (int64_t)(total - last);
    if (scale < 0)
        return GW_EINVAL; /* fractional */
    uint64_t v = 0;
    for (size_t k = first; k < last; k++) {
        unsigned d = (unsigned)(DIGIT(k) - '0');
        if (v > (UINT64_MAX - d) / 10)
            return GW_EINVAL;
        v = v * 10 + d;
    }
#undef DIGIT
    if (pow10_mul(&v, scale) != GW_OK)
        return GW_EINVAL;
    *out = v;
    return GW_OK;
}

int gw_json_bool(gw_str_t raw, bool *out)
{
    raw = trim_ws(raw);
    if (gw_str_eq_lit(raw, "true")) {
        *out = true;
        return GW_OK;
    }
    if (gw_str_eq_lit(raw, "false")) {
        *out = false;
        return GW_OK;
    }
    return GW_EINVAL;
}

int gw_json_append_string(gw_buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    static const unsigned char fffd[3] = {0xef, 0xbf, 0xbd};
    size_t saved = out->len;
    if (s == NULL)
        s = "", n = 0;
    uptr p = (uptr)s, end = p + n, run = p;
    int rc = gw_buf_append_byte(out, '"');
    while (rc == GW_OK) {
        p = skip_plain(p, end);
        if (p >= end)
            break;
        unsigned c = *p;
        if (c >= 0x80) {
            size_t bad, k = utf8_seq(p, end, &bad);
            if (k) {
                p += k;
                continue;
            }
            if ((rc = gw_buf_append(out, run, (size_t)(p - run))) == GW_OK)
                rc = gw_buf_append(out, fffd, sizeof(fffd));
            run = p += bad;
            continue;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case 0: elen = 0; break; /* "\u0000" would fail our own validator: U+FFFD instead */
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if ((rc = gw_buf_append(out, run, (size_t)(p - run))) == GW_OK)
            rc = elen ? gw_buf_append(out, esc, elen) : gw_buf_append(out, fffd, sizeof(fffd));
        run = ++p;
    }
    if (rc == GW_OK && (rc = gw_buf_append(out, run, (size_t)(end - run))) == GW_OK &&
        (rc = gw_buf_append_byte(out, '"')) == GW_OK)
        return GW_OK;
    out->len = saved;
    return rc;
}

int gw_json_splice(gw_str_t doc, gw_str_t old_value, gw_str_t replacement, gw_buf_t *out)
{
    uintptr_t d0 = (uintptr_t)doc.base, v0 = (uintptr_t)old_value.base;
    if (doc.base == NULL || old_value.base == NULL || v0 < d0 || v0 - d0 > doc.len ||
        old_value.len > doc.len - (v0 - d0) || (replacement.len && replacement.base == NULL))
        return GW_EINVAL;
    size_t head = v0 - d0, tail = doc.len - head - old_value.len;
    if (replacement.len > SIZE_MAX - head - tail)
        return GW_TOOBIG;
    size_t total = head + replacement.len + tail;
    char *w = gw_buf_reserve(out, total);
    if (w == NULL)
        return GW_TOOBIG;
    memcpy(w, doc.base, head);
    if (replacement.len)
        memcpy(w + head, replacement.base, replacement.len);
    memcpy(w + head + replacement.len, old_value.base + old_value.len, tail);
    gw_buf_commit(out, total);
    return GW_OK;
}
