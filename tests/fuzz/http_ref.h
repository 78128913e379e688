/* A deliberately plain, byte-at-a-time statement of the HTTP/1.1 syntax the aigw parsers accept
 * (net/http_request_parser.h, net/http_response.h), for the differential harnesses: when
 * http-parser 2.9.4 accepted a message that aigw refused, this must name a rule aigw documents as
 * stricter. It shares no code with the parsers it checks. */
#ifndef GW_FUZZ_HTTP_REF_H
#define GW_FUZZ_HTTP_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Byte strings equal (either may be NULL when empty). */
static bool ref_same(const void *a, size_t an, const void *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static bool ref_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool ref_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool ref_ieq(const uint8_t *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = a[i], y = (unsigned char)lit[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (x != y)
            return false;
    }
    return true;
}

static void ref_trim(const uint8_t **v, size_t *n)
{
    while (*n && ((*v)[0] == ' ' || (*v)[0] == '\t')) {
        (*v)++;
        (*n)--;
    }
    while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
        (*n)--;
}

typedef struct {
    int fields;
    int cl_count;
    bool cl_bad;
    uint64_t cl;
    bool te;
    int te_chunked; /* "chunked" elements */
    bool te_last_chunked, te_other, te_empty;
    bool close, keep_alive;
    bool expect_bad; /* the first Expect is not 100-continue */
    bool expect_seen;
} ref_fields_t;

/* One element of a comma-separated list. */
static void ref_element(ref_fields_t *r, int kind, const uint8_t *e, size_t n)
{
    ref_trim(&e, &n);
    if (kind == 1) { /* Connection, Proxy-Connection */
        if (ref_ieq(e, n, "close"))
            r->close = true;
        if (ref_ieq(e, n, "keep-alive"))
            r->keep_alive = true;
        return;
    }
    if (n == 0) {
        r->te_empty = true;
        r->te_last_chunked = false;
    } else if (ref_ieq(e, n, "chunked")) {
        r->te_chunked++;
        r->te_last_chunked = true;
    } else {
        r->te_other = true;
        r->te_last_chunked = false;
    }
}

static void ref_list(ref_fields_t *r, int kind, const uint8_t *v, size_t n)
{
    size_t s = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || v[i] == ',') {
            ref_element(r, kind, v + s, i - s);
            s = i + 1;
        }
}

static void ref_field(ref_fields_t *r, const uint8_t *name, size_t nn, const uint8_t *v, size_t vn)
{
    ref_trim(&v, &vn);
    if (ref_ieq(name, nn, "content-length")) {
        r->cl_count++;
        size_t k = 0;
        while (vn - k > 19 && v[k] == '0')
            k++;
        if (vn == 0 || vn - k > 19)
            r->cl_bad = true;
        uint64_t x = 0;
        for (; k < vn; k++) {
            if (v[k] < '0' || v[k] > '9')
                r->cl_bad = true;
            x = x * 10 + (uint64_t)(v[k] - '0');
        }
        r->cl = x;
    } else if (ref_ieq(name, nn, "transfer-encoding")) {
        r->te = true;
        ref_list(r, 2, v, vn);
    } else if (ref_ieq(name, nn, "connection") || ref_ieq(name, nn, "proxy-connection")) {
        ref_list(r, 1, v, vn);
    } else if (ref_ieq(name, nn, "expect") && !r->expect_seen) {
        r->expect_seen = true; /* an empty Expect asks for nothing */
        r->expect_bad = vn > 0 && !ref_ieq(v, vn, "100-continue");
    }
}

/* One line of d[0..n) from *pos on, split at its first colon: the line is d[s..e) (its LF left
 * out), the name d[s..c) and the value d[c+1..ve) (its CR left out); c == e when the line has no
 * colon. Advances *pos past the LF; false once d is used up. The oracles below walk lines with it. */
typedef struct {
    size_t s, c, e, ve;
} ref_line_t;

static bool ref_next_line(const uint8_t *d, size_t n, size_t *pos, ref_line_t *l)
{
    if (*pos >= n)
        return false;
    size_t s = *pos, e = s;
    while (e < n && d[e] != '\n')
        e++;
    size_t c = s;
    while (c < e && d[c] != ':')
        c++;
    *l = (ref_line_t){s, c, e, e > c && d[e - 1] == '\r' ? e - 1 : e};
    *pos = e + 1;
    return true;
}

/* A line of d[0..n) is a field named one of names[0..n_names) */
static bool ref_has_field(const uint8_t *d, size_t n, const char *const *names, size_t n_names)
{
    ref_line_t l;
    for (size_t pos = 0; ref_next_line(d, n, &pos, &l);)
        for (size_t m = 0; l.c < l.e && m < n_names; m++)
            if (ref_ieq(d + l.s, l.c - l.s, names[m]))
                return true;
    return false;
}

/* A line of d[0..n) is a field named one of names[0..n_names) with HTAB in its value's OWS or a
 * trailing SP: http-parser refused "Content-Length: 5<HTAB>" and "Transfer-Encoding:
 * chunked<HTAB>", answered 417 to "Expect: 100-continue<SP>" and did not see "close<HTAB>"; aigw
 * takes OWS as RFC 9110 defines it. */
static bool ref_ows_field(const uint8_t *d, size_t n, const char *const *names, size_t n_names)
{
    ref_line_t l;
    for (size_t pos = 0; ref_next_line(d, n, &pos, &l);)
        for (size_t m = 0; l.c < l.e && m < n_names; m++) {
            if (!ref_ieq(d + l.s, l.c - l.s, names[m]))
                continue;
            if (memchr(d + l.c, '\t', l.ve - l.c) != NULL || (l.ve > l.c + 1 && d[l.ve - 1] == ' '))
                return true;
        }
    return false;
}

/* A Connection or Proxy-Connection line in d[0..n) whose value is a list or not a token:
 * http-parser's option matching lost its place there (after an element that began like
 * "keep-alive" it missed a following "close"; empty elements stopped it), aigw reads every
 * element. */
static bool ref_messy_connection(const uint8_t *d, size_t n)
{
    ref_line_t l;
    for (size_t pos = 0; ref_next_line(d, n, &pos, &l);) {
        if (l.c < l.e &&
            (ref_ieq(d + l.s, l.c - l.s, "connection") || ref_ieq(d + l.s, l.c - l.s, "proxy-connection"))) {
            const uint8_t *v = d + l.c + 1;
            size_t vn = l.ve - l.c - 1;
            ref_trim(&v, &vn);
            for (size_t j = 0; j < vn; j++)
                if (!ref_tchar(v[j]))
                    return true;
        }
    }
    return false;
}

/* A chunk-size line in d[0..n) (past the head) with HTAB in the whitespace before its extension:
 * RFC 9112's BWS, which aigw accepts and http-parser refused. */
static bool ref_chunk_bws_tab(const uint8_t *d, size_t n)
{
    ref_line_t l;
    for (size_t pos = 0; ref_next_line(d, n, &pos, &l);) {
        size_t k = l.s;
        while (k < l.e && ((d[k] >= '0' && d[k] <= '9') || ((d[k] | 0x20) >= 'a' && (d[k] | 0x20) <= 'f')))
            k++;
        if (k > l.s)
            for (; k < l.e && (d[k] == ' ' || d[k] == '\t'); k++)
                if (d[k] == '\t')
                    return true;
    }
    return false;
}

/* Field lines from h[*i..n) up to and including the empty line. A line ends in CRLF or LF; a CR
 * elsewhere, a line starting with whitespace, a name that is not a token, a value with a control
 * byte other than HTAB are refused. Returns NULL, or why. */
static const char *ref_fields(const uint8_t *h, size_t n, size_t *i, ref_fields_t *r)
{
    for (;;) {
        size_t s = *i, e = s;
        while (e < n && h[e] != '\n')
            e++;
        if (e >= n)
            return "incomplete";
        *i = e + 1;
        size_t end = e;
        if (end > s && h[end - 1] == '\r')
            end--;
        for (size_t k = s; k < end; k++)
            if (h[k] == '\r')
                return "bare CR";
        if (end == s)
            return NULL;
        if (h[s] == ' ' || h[s] == '\t')
            return "obs-fold";
        size_t c = s;
        while (c < end && h[c] != ':')
            c++;
        if (c == end || c == s)
            return "no name";
        for (size_t k = s; k < c; k++)
            if (!ref_tchar(h[k]))
                return "name not a token";
        for (size_t k = c + 1; k < end; k++)
            if (ref_ctl(h[k]) && h[k] != '\t')
                return "control byte in a value";
        r->fields++;
        ref_field(r, h + s, c - s, h + c + 1, end - c - 1);
    }
}

/* A chunked body b[0..n) (exactly the bytes http-parser took for it): NULL when aigw's rules
 * accept it, else why. trailer_room bytes and field_room fields are left for the trailers. */
static const char *ref_chunked(const uint8_t *b, size_t n, size_t trailer_room, int field_room)
{
    size_t i = 0;
    for (;;) {
        size_t line = i;
        uint64_t size = 0;
        size_t digits = 0;
        while (i < n) {
            unsigned char c = b[i];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                break;
            if (size >> 59)
                return "chunk size overflow";
            size = size << 4 | (uint64_t)d;
            digits++;
            i++;
        }
        if (digits == 0)
            return "no chunk size";
        size_t ws = i;
        while (i < n && (b[i] == ' ' || b[i] == '\t'))
            i++;
        if (i < n && b[i] == ';') {
            i++;
            while (i < n && b[i] != '\r') {
                if (ref_ctl(b[i]) && b[i] != '\t')
                    return "control byte in an extension";
                i++;
            }
        } else if (i != ws) {
            return "whitespace without extension";
        }
        if (i + 1 - line > 4096) /* the size, extensions and CR */
            return "size line too long";
        if (i + 1 >= n || b[i] != '\r' || b[i + 1] != '\n')
            return "size line not ended by CRLF";
        i += 2;
        if (size == 0)
            break;
        if (size > n - i)
            return "incomplete";
        i += (size_t)size;
        if (i + 1 >= n || b[i] != '\r' || b[i + 1] != '\n')
            return "data not followed by CRLF";
        i += 2;
    }
    size_t t = i;
    ref_fields_t tr;
    memset(&tr, 0, sizeof(tr));
    const char *why = ref_fields(b, n, &i, &tr);
    if (why)
        return why;
    if (i - t > trailer_room)
        return "trailers too large";
    if (tr.fields > field_room)
        return "too many trailers";
    return NULL;
}

#endif
