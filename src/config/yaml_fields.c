/* Shared pieces of the YAML loader (see yaml_loader_int.h): ${VAR} substitution with a position
 * map back to the file, error and notice lines, typed field access that reports its own
 * problems in the API server's words, and the value grammars of the CRDs. */
#include "config/yaml_loader_int.h"

#include "core/alloc.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void *gw_yl_vec_grow(void *v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return v;
    *cap = *cap ? *cap * 2 : 8;
    return gw_realloc(v, *cap * elem);
}

/* ---- ${VAR} substitution ---- */

static bool pos_lt(pos_t a, pos_t b)
{
    return a.line < b.line || (a.line == b.line && a.col < b.col);
}

static void pos_advance(pos_t *p, unsigned char c)
{
    if (c == '\n') {
        p->line++;
        p->col = 1;
    } else if ((c & 0xC0) != 0x80) { /* a UTF-8 continuation byte is part of the previous character */
        p->col++;
    }
}

static bool name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

int gw_yl_substitute(const char *in, size_t len, gw_buf_t *out, subst_map_t *map)
{
    pos_t ip = {1, 1}, op = {1, 1};
    size_t i = 0;
    int rc = GW_OK;
    if (len >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0) { /* libyaml does not count a BOM */
        rc |= gw_buf_append(out, in, 3);
        i = 3;
    }
    while (i < len) {
        if (in[i] == '$' && i + 1 < len && in[i + 1] == '{' && i + 2 < len && name_start(in[i + 2])) {
            size_t j = i + 2;
            while (j < len && name_char(in[j]))
                j++;
            if (j < len && in[j] == '}') {
                char name[256];
                size_t nlen = j - (i + 2);
                if (nlen < sizeof(name)) {
                    memcpy(name, in + i + 2, nlen);
                    name[nlen] = '\0';
                    const char *val = getenv(name);
                    subst_t *s = VEC_PUSH(*map);
                    s->orig_start = ip;
                    s->out_start = op;
                    for (size_t k = i; k <= j; k++)
                        pos_advance(&ip, (unsigned char)in[k]);
                    if (val != NULL) {
                        size_t vlen = strlen(val);
                        rc |= gw_buf_append(out, val, vlen);
                        for (size_t k = 0; k < vlen; k++)
                            pos_advance(&op, (unsigned char)val[k]);
                    }
                    s->orig_end = ip;
                    s->out_end = op;
                    i = j + 1;
                    continue;
                }
            }
        }
        rc |= gw_buf_append_byte(out, in[i]);
        pos_advance(&ip, (unsigned char)in[i]);
        pos_advance(&op, (unsigned char)in[i]);
        i++;
    }
    return rc == GW_OK ? GW_OK : GW_TOOBIG;
}

pos_t gw_yl_map_pos(const subst_map_t *m, pos_t p)
{
    size_t lo = 0, hi = m->n; /* find the last substitution starting at or before p */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pos_lt(p, m->v[mid].out_start))
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo == 0)
        return p;
    const subst_t *s = &m->v[lo - 1];
    if (pos_lt(p, s->out_end))
        return s->orig_start;
    if (p.line == s->out_end.line)
        return (pos_t){s->orig_end.line, s->orig_end.col + (p.col - s->out_end.col)};
    return (pos_t){s->orig_end.line + (p.line - s->out_end.line), p.col};
}

/* ---- reporting ---- */

/* Builds "file:line:col: [notice: ]Kind ns/name: message\n" and appends it whole, so a full
 * buffer never ends mid-line. Without a buffer, a notice goes to the log at info level. */
static void __attribute__((format(printf, 6, 0)))
emit(ld_t *ld, gw_buf_t *to, bool warning, const meta_t *m, const gw_yaml_node_t *at, const char *fmt, va_list ap)
{
    gw_buf_t line;
    gw_buf_init(&line, 4096);
    if (at != NULL) {
        pos_t p = gw_yl_map_pos(ld->map, (pos_t){at->line, at->col});
        gw_buf_appendf(&line, "%s:%u:%u: ", ld->file, p.line, p.col);
    } else {
        gw_buf_appendf(&line, "%s: ", ld->file);
    }
    if (warning)
        gw_buf_append_lit(&line, "notice: ");
    if (m != NULL)
        gw_buf_appendf(&line, "%s %s/%s: ", m->kind, m->ns, m->name ? m->name : "(unnamed)");
    gw_buf_vappendf(&line, fmt, ap);
    if (to != NULL) {
        gw_buf_append_byte(&line, '\n');
        gw_buf_append(to, line.data, line.len);
    } else {
        gw_log_info("%s", gw_buf_cstr(&line));
    }
    gw_buf_free(&line);
}

void gw_yl_lerr(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ld->n_errors++;
    emit(ld, ld->errors, false, m, at, fmt, ap);
    va_end(ap);
}

void gw_yl_lref(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *fmt, ...)
{
    if (ld->crd_only)
        return;
    va_list ap;
    va_start(ap, fmt);
    ld->n_errors++;
    emit(ld, ld->errors, false, m, at, fmt, ap);
    va_end(ap);
}

void gw_yl_lunsup(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ld->crd_only) {
        emit(ld, ld->notices, true, m, at, fmt, ap);
    } else {
        ld->n_errors++;
        emit(ld, ld->errors, false, m, at, fmt, ap);
    }
    va_end(ap);
}

void gw_yl_lnote(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(ld, ld->notices, true, m, at, fmt, ap);
    va_end(ap);
}

/* ---- typed field access ---- */

bool gw_yl_present(const gw_yaml_node_t *map, const char *key)
{
    return !gw_yaml_is_null(gw_yaml_get(map, key));
}

const gw_yaml_node_t *gw_yl_field(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key,
                                  gw_yaml_kind_t want, const char *path, bool required)
{
    const gw_yaml_node_t *v = gw_yaml_get(map, key);
    if (gw_yaml_is_null(v)) {
        if (required)
            lerr(ld, m, v ? v : map, "%s is required", path);
        return NULL;
    }
    if (v->kind != want) {
        lerr(ld, m, v, "%s must be %s, not %s", path, gw_yaml_kind_name(want), gw_yaml_kind_name(v->kind));
        return NULL;
    }
    return v;
}

const gw_yaml_node_t *gw_yl_fseq(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key,
                                 const char *path, bool required, size_t max)
{
    const gw_yaml_node_t *v = field(ld, m, map, key, GW_YAML_SEQ, path, required);
    if (v != NULL && v->n_items > max) {
        lerr(ld, m, v, "%s: Too many: %zu: must have at most %zu items", path, v->n_items, max);
        return NULL;
    }
    return v;
}

const char *gw_yl_fstr(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
                       bool required)
{
    const gw_yaml_node_t *v = field(ld, m, map, key, GW_YAML_SCALAR, path, required);
    if (v != NULL && required && v->len == 0) {
        lerr(ld, m, v, "%s must not be empty", path);
        return NULL;
    }
    return v ? v->str : NULL;
}

const char *gw_yl_fstr1(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path)
{
    const gw_yaml_node_t *v = gw_yaml_get(map, key);
    if (!gw_yaml_is_null(v) && v->kind != GW_YAML_SCALAR) {
        lerr(ld, m, v, "%s must be a string, not %s", path, gw_yaml_kind_name(v->kind));
        return NULL;
    }
    if (gw_yaml_is_null(v) || v->len == 0) {
        lerr(ld, m, v ? v : map, "%s is required (must be at least 1 character long)", path);
        return NULL;
    }
    return v->str;
}

const char *gw_yl_fstr_max(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key,
                           const char *path, size_t max)
{
    const gw_yaml_node_t *v = field(ld, m, map, key, GW_YAML_SCALAR, path, false);
    if (v != NULL && v->len > max) {
        lerr(ld, m, v, "%s: Too long: may not be more than %zu bytes", path, max);
        return NULL;
    }
    return v ? v->str : NULL;
}

int gw_yl_fuint(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
                uint64_t min, uint64_t max, uint64_t *out)
{
    const gw_yaml_node_t *v = gw_yaml_get(map, key);
    if (gw_yaml_is_null(v))
        return 0;
    uint64_t x = 0;
    bool ok = v->kind == GW_YAML_SCALAR && v->len > 0 && v->len <= 19;
    for (size_t i = 0; ok && i < v->len; i++) {
        ok = v->str[i] >= '0' && v->str[i] <= '9';
        x = x * 10 + (uint64_t)(v->str[i] - '0');
    }
    if (!ok || x < min || x > max) {
        lerr(ld, m, v, "%s must be an integer from %llu to %llu", path, (unsigned long long)min,
             (unsigned long long)max);
        return -1;
    }
    *out = x;
    return 1;
}

int gw_yl_fenum(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
                const char *const *values, bool required)
{
    const char *s = fstr(ld, m, map, key, path, required);
    if (s == NULL)
        return -1;
    for (int i = 0; values[i] != NULL; i++)
        if (strcmp(values[i], s) == 0)
            return i;
    /* The API server's wording: `spec.type: Unsupported value: "X": supported values: "A", "B"`. */
    gw_buf_t list;
    gw_buf_init(&list, 1024);
    for (int i = 0; values[i] != NULL; i++)
        gw_buf_appendf(&list, "%s\"%s\"", i ? ", " : "", values[i]);
    lerr(ld, m, gw_yaml_get(map, key), "%s: Unsupported value: \"%s\": supported values: %s", path, s,
         gw_buf_cstr(&list));
    gw_buf_free(&list);
    return -1;
}

int gw_yl_fduration(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
                    uint64_t *ms)
{
    const char *s = fstr(ld, m, map, key, path, false);
    if (s == NULL)
        return 0;
    if (!parse_duration(s, ms)) {
        lerr(ld, m, gw_yaml_get(map, key), "%s %s is not a duration such as 60s, 1m30s or 500ms", path, s);
        return -1;
    }
    return 1;
}

int gw_yl_fbool(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path)
{
    const gw_yaml_node_t *v = gw_yaml_get(map, key);
    if (gw_yaml_is_null(v))
        return 0;
    if (v->kind == GW_YAML_SCALAR && v->plain) {
        if (strcmp(v->str, "true") == 0 || strcmp(v->str, "True") == 0 || strcmp(v->str, "TRUE") == 0)
            return 1;
        if (strcmp(v->str, "false") == 0 || strcmp(v->str, "False") == 0 || strcmp(v->str, "FALSE") == 0)
            return 0;
    }
    lerr(ld, m, v, "%s must be true or false", path);
    return -1;
}

void gw_yl_check_fields(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *path,
                        const field_spec_t *known, size_t n_known)
{
    if (map == NULL || map->kind != GW_YAML_MAP)
        return;
    for (size_t i = 0; i < map->n_pairs; i++) {
        const gw_yaml_node_t *k = map->pairs[i].key;
        if (k->kind != GW_YAML_SCALAR)
            continue;
        size_t j = 0;
        while (j < n_known && strcmp(known[j].name, k->str) != 0)
            j++;
        if (j == n_known)
            lnote(ld, m, k, "%s.%s: unknown field, ignored", path, k->str);
        else if (known[j].ignored != NULL && !gw_yaml_is_null(map->pairs[i].value))
            lnote(ld, m, k, "%s.%s is ignored: %s", path, k->str, known[j].ignored);
    }
}

/* ---- value grammars ---- */

/* Gateway API Duration: 1 to 4 groups of 1-5 digits with h, m, s or ms ("1m30s", "500ms"). */
bool gw_yl_parse_duration(const char *s, uint64_t *ms)
{
    uint64_t total = 0;
    int groups = 0;
    while (*s) {
        uint64_t n = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 6) {
            n = n * 10 + (uint64_t)(*s++ - '0');
            digits++;
        }
        if (digits == 0 || digits > 5 || ++groups > 4)
            return false;
        if (s[0] == 'm' && s[1] == 's') {
            total += n;
            s += 2;
        } else if (*s == 'h') {
            total += n * 3600000;
            s++;
        } else if (*s == 'm') {
            total += n * 60000;
            s++;
        } else if (*s == 's') {
            total += n * 1000;
            s++;
        } else {
            return false;
        }
    }
    if (groups == 0)
        return false;
    *ms = total;
    return true;
}

static bool digits_n(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 date-time ("2025-05-23T00:00:00Z", fractions and offsets allowed) -> unix seconds. */
bool gw_yl_parse_rfc3339(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se;
    if (strlen(s) < 20 || !digits_n(s, 4, &y) || s[4] != '-' || !digits_n(s + 5, 2, &mo) || s[7] != '-' ||
        !digits_n(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits_n(s + 11, 2, &h) ||
        s[13] != ':' || !digits_n(s + 14, 2, &mi) || s[16] != ':' || !digits_n(s + 17, 2, &se))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    int off = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        off = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (!digits_n(p + 1, 2, &oh) || !digits_n(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
    } else {
        return false;
    }
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = se};
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) /* timegm normalised an impossible date such as Feb 30 */
        return false;
    *out = (int64_t)t - off;
    return true;
}

/* Kubernetes quantity for a byte size: digits, an optional fraction, and an optional suffix
 * Ki Mi Gi Ti Pi Ei (powers of 1024) or k M G T P E (powers of 1000). Rounds up like Kubernetes. */
bool gw_yl_parse_quantity(const char *s, uint64_t *out)
{
    uint64_t ip = 0, frac = 0, fdiv = 1;
    const char *p = s;
    int nd = 0;
    while (*p >= '0' && *p <= '9') {
        if (ip > (UINT64_MAX - 9) / 10)
            return false;
        ip = ip * 10 + (uint64_t)(*p++ - '0');
        nd++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (fdiv < 1000000000000ULL) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                fdiv *= 10;
            }
            p++;
            nd++;
        }
    }
    if (nd == 0)
        return false;
    static const struct {
        const char *sfx;
        uint64_t mul;
    } sfx[] = {
        {"Ki", 1ULL << 10}, {"Mi", 1ULL << 20}, {"Gi", 1ULL << 30}, {"Ti", 1ULL << 40}, {"Pi", 1ULL << 50},
        {"Ei", 1ULL << 60}, {"k", 1000ULL},     {"M", 1000000ULL},  {"G", 1000000000ULL},
        {"T", 1000000000000ULL}, {"P", 1000000000000000ULL}, {"E", 1000000000000000000ULL}, {"", 1},
    };
    uint64_t mul = 0;
    for (size_t i = 0; i < GW_ARRAY_SIZE(sfx); i++) {
        if (strcmp(p, sfx[i].sfx) == 0) {
            mul = sfx[i].mul;
            break;
        }
    }
    if (mul == 0 || (ip != 0 && mul > UINT64_MAX / ip))
        return false;
    uint64_t v = ip * mul;
    if (frac != 0) {
        /* frac/fdiv * mul, rounded up; mul and fdiv are both at most 1e18, so split the product. */
        unsigned __int128 f = (unsigned __int128)frac * mul;
        uint64_t add = (uint64_t)((f + fdiv - 1) / fdiv);
        if (add > UINT64_MAX - v)
            return false;
        v += add;
    }
    *out = v;
    return true;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

char *gw_yl_b64_decode(const char *s, size_t len)
{
    char *out = gw_malloc(len / 4 * 3 + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64val(c);
        if (v < 0 || pad > 0)
            goto bad;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    /* Leftover bits must be the zero padding of a final partial group; a lone 6-bit group is not base64. */
    if (bits >= 6 || pad > 2 || (acc & ((1u << bits) - 1)) != 0)
        goto bad;
    if (memchr(out, '\0', o) != NULL)
        goto bad;
    out[o] = '\0';
    return out;
bad:
    explicit_bzero(out, o);
    free(out);
    return NULL;
}

bool gw_yl_is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL)
            return false;
    }
    return true;
}

bool gw_yl_is_header_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < ' ' && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

bool gw_yl_is_uri(const char *s)
{
    /* The CRDs' "format: uri" is Go's url.ParseRequestURI: an absolute path, or an RFC 3986
     * scheme, ":" and something; never whitespace or controls. */
    if (s[0] == '/') {
        for (const char *q = s; *q; q++)
            if ((unsigned char)*q <= ' ' || *q == 0x7f)
                return false;
        return true;
    }
    const char *p = s;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '+' ||
           *p == '-' || *p == '.')
        p++;
    if (*p != ':' || p[1] == '\0')
        return false;
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

char *gw_yl_lower_dup(const char *s)
{
    char *p = gw_strdup(s);
    for (char *q = p; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q + 32);
    return p;
}

char *gw_yl_joinf(const char *fmt, ...)
{
    gw_buf_t b;
    gw_buf_init(&b, 4096);
    va_list ap;
    va_start(ap, fmt);
    gw_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    gw_buf_cstr(&b);
    return gw_buf_detach(&b, NULL);
}

char *gw_yl_dup_or_null(const char *s)
{
    return s ? gw_strdup(s) : NULL;
}

void gw_yl_wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

bool gw_yl_parse_ref(ld_t *ld, const meta_t *m, const gw_yaml_node_t *n, const char *path, ref_t *out)
{
    char p[224];
    memset(out, 0, sizeof(*out));
    out->at = n;
    snprintf(p, sizeof(p), "%s.name", path);
    out->name = fstr(ld, m, n, "name", p, true);
    snprintf(p, sizeof(p), "%s.namespace", path);
    out->ns = fstr(ld, m, n, "namespace", p, false);
    snprintf(p, sizeof(p), "%s.group", path);
    out->group = fstr(ld, m, n, "group", p, false);
    snprintf(p, sizeof(p), "%s.kind", path);
    out->kind = fstr(ld, m, n, "kind", p, false);
    out->ns_written = out->ns != NULL && *out->ns != '\0';
    if (!out->ns_written)
        out->ns = m->ns;
    return out->name != NULL;
}
