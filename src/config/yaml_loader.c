/* Builds a snapshot from the reference's YAML resources: ${VAR} substitution, the DOM, a
 * per-kind parse of every document (table `kinds`), then linking (routes -> AIServiceBackends
 * -> Backends, policies -> targets, Secrets) with every problem reported as file:line:col. */
#include "config/config.h"

#include "config/yaml_dom.h"
#include "core/alloc.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONFIG_FILE ((size_t)16 << 20)
#define MAX_SECRET_FILE ((size_t)1 << 20)
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_OWNED_BY "Envoy AI Gateway"
#define MODEL_HEADER "x-ai-eg-model"
#define SUBST_ENV "substitution.aigw.run/env/"
#define SUBST_FILE "substitution.aigw.run/file/"

/* ---- growable arrays ---- */

static void *vec_grow(void *v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return v;
    *cap = *cap ? *cap * 2 : 8;
    return gw_realloc(v, *cap * elem);
}
#define VEC(T)     \
    struct {       \
        T *v;      \
        size_t n;  \
        size_t cap; \
    }
#define VEC_PUSH(vec)                                                              \
    ((vec).v = vec_grow((vec).v, &(vec).cap, (vec).n, sizeof(*(vec).v)),           \
     memset(&(vec).v[(vec).n], 0, sizeof(*(vec).v)), &(vec).v[(vec).n++])

/* ---- ${VAR} substitution, remembering where each one happened ---- */

/* Positions as libyaml counts them: 1-based lines, columns in characters. */
typedef struct {
    uint32_t line;
    uint32_t col;
} pos_t;

typedef struct {
    pos_t out_start, out_end;   /* in the substituted text */
    pos_t orig_start, orig_end; /* in the file */
} subst_t;

typedef VEC(subst_t) subst_map_t;

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

/* envsubst for the ${NAME} form only: an unset variable becomes "", anything that is not
 * ${NAME} (a lone $, $NAME, ${1}) stays as written so prices and regexes survive. */
static int substitute(const char *in, size_t len, gw_buf_t *out, subst_map_t *map)
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

/* Maps a position in the substituted text back to the file. */
static pos_t map_pos(const subst_map_t *m, pos_t p)
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

/* ---- loader state and error reporting ---- */

typedef struct {
    const char *kind;
    const char *ns;   /* "default" when not written */
    const char *name; /* NULL when missing (already reported) */
    const gw_yaml_node_t *root;
    const gw_yaml_node_t *spec;
} meta_t;

typedef struct {
    const char *file;
    gw_buf_t *errors;
    size_t n_errors;
    const subst_map_t *map;
    int64_t now;
} ld_t;

static void __attribute__((format(printf, 4, 0))) verr(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *fmt,
                                                      va_list ap)
{
    /* The line is built apart and appended whole, so a full errors buffer never ends mid-line. */
    gw_buf_t line;
    gw_buf_init(&line, 4096);
    ld->n_errors++;
    if (at != NULL) {
        pos_t p = map_pos(ld->map, (pos_t){at->line, at->col});
        gw_buf_appendf(&line, "%s:%u:%u: ", ld->file, p.line, p.col);
    } else {
        gw_buf_appendf(&line, "%s: ", ld->file);
    }
    if (m != NULL)
        gw_buf_appendf(&line, "%s %s/%s: ", m->kind, m->ns, m->name ? m->name : "(unnamed)");
    gw_buf_vappendf(&line, fmt, ap);
    gw_buf_append_byte(&line, '\n');
    gw_buf_append(ld->errors, line.data, line.len);
    gw_buf_free(&line);
}

static void __attribute__((format(printf, 4, 5))) lerr(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(ld, m, at, fmt, ap);
    va_end(ap);
}

static void __attribute__((format(printf, 4, 5))) lwarn(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at,
                                                        const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pos_t p = at ? map_pos(ld->map, (pos_t){at->line, at->col}) : (pos_t){0, 0};
    gw_log_warn("%s:%u:%u: %s %s/%s: %s", ld->file, p.line, p.col, m->kind, m->ns, m->name ? m->name : "(unnamed)",
                msg);
}

/* ---- typed field access: each reports its own problems ---- */

/* The value of key when it has the wanted kind; NULL when absent/null (an error if required)
 * or of another kind (always an error). */
static const gw_yaml_node_t *field(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key,
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

static const char *fstr(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
                        bool required)
{
    const gw_yaml_node_t *v = field(ld, m, map, key, GW_YAML_SCALAR, path, required);
    if (v != NULL && required && v->len == 0) {
        lerr(ld, m, v, "%s must not be empty", path);
        return NULL;
    }
    return v ? v->str : NULL;
}

/* 1: present and valid, 0: absent, -1: invalid (reported). Plain decimal digits only. */
static int fuint(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
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

static char *lower_dup(const char *s)
{
    char *p = gw_strdup(s);
    for (char *q = p; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q + 32);
    return p;
}

static char *joinf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *joinf(const char *fmt, ...)
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

static void wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* RFC 9110 token: what a header name may be made of. */
static bool is_token(const char *s)
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

/* A header value may hold tabs and visible bytes, never CR, LF or other controls (injection). */
static bool is_header_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < ' ' && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* ---- value grammars ---- */

/* Gateway API Duration: 1 to 4 groups of 1-5 digits with h, m, s or ms ("1m30s", "500ms"). */
static bool parse_duration(const char *s, uint64_t *ms)
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
static bool parse_rfc3339(const char *s, int64_t *out)
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
static bool parse_quantity(const char *s, uint64_t *out)
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

/* Standard base64 as in a Secret's data; whitespace is skipped and padding is optional. */
static char *b64_decode(const char *s, size_t len)
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

/* ---- resources ---- */

typedef struct {
    const char *name;
    const char *ns;
    const gw_yaml_node_t *at;
} ref_t;

typedef VEC(ref_t) refs_t;

typedef struct {
    const char *name;
    const char *value;
} kv_t;

typedef struct {
    VEC(kv_t) set;
    VEC(const char *) remove;
} hm_t;

typedef struct {
    meta_t m;
    uint16_t port;
} gateway_t;

typedef struct {
    meta_t m;
    bool ok;
    char *host;
    uint16_t port; /* 0: not written */
    bool tls;
    const char *sni;
    const meta_t *tls_by;
} be_t;

typedef struct {
    meta_t m;
    bool ok;
    gw_schema_t schema;
    const char *version; /* NULL when not written */
    ref_t backend;
    hm_t hm;
    const be_t *be;
    gw_auth_config_t auth;
    const meta_t *auth_by;
} svc_t;

typedef struct {
    meta_t m;
    refs_t targets;
    const char *sni;
    bool ok;
} tls_t;

typedef struct {
    meta_t m;
    bool ok;
    refs_t targets;
    gw_auth_type_t type;
    const char *type_name;
    ref_t secret;             /* name NULL: none */
    const char *secret_key;   /* which key of the Secret */
    const char *region, *profile, *project, *client_id, *tenant_id;
} sec_t;

typedef struct {
    const char *key;
    char *value; /* owned, secret */
    const gw_yaml_node_t *at;
} secret_kv_t;

typedef struct {
    meta_t m;
    VEC(secret_kv_t) data;
} secret_t;

typedef struct {
    meta_t m;
    uint64_t limit;
} ctp_t;

typedef struct {
    meta_t m;
} route_t;

typedef struct {
    VEC(gateway_t) gateways;
    VEC(route_t) routes;
    VEC(svc_t) svcs;
    VEC(be_t) backends;
    VEC(tls_t) tls;
    VEC(sec_t) secs;
    VEC(secret_t) secrets;
    VEC(ctp_t) ctps;
} set_t;

static void hm_free(hm_t *hm)
{
    free(hm->set.v);
    free(hm->remove.v);
}

static void set_free(set_t *s)
{
    free(s->gateways.v);
    free(s->routes.v);
    for (size_t i = 0; i < s->svcs.n; i++) {
        hm_free(&s->svcs.v[i].hm);
        gw_auth_config_t *a = &s->svcs.v[i].auth;
        wipe_free(a->api_key);
        wipe_free(a->credentials);
        free(a->region);
        free(a->aws_profile);
        free(a->gcp_project);
        free(a->azure_client_id);
        free(a->azure_tenant_id);
    }
    free(s->svcs.v);
    for (size_t i = 0; i < s->backends.n; i++)
        free(s->backends.v[i].host);
    free(s->backends.v);
    for (size_t i = 0; i < s->tls.n; i++)
        free(s->tls.v[i].targets.v);
    free(s->tls.v);
    for (size_t i = 0; i < s->secs.n; i++)
        free(s->secs.v[i].targets.v);
    free(s->secs.v);
    for (size_t i = 0; i < s->secrets.n; i++) {
        for (size_t j = 0; j < s->secrets.v[i].data.n; j++)
            wipe_free(s->secrets.v[i].data.v[j].value);
        free(s->secrets.v[i].data.v);
    }
    free(s->secrets.v);
    free(s->ctps.v);
}

/* An object reference {name, namespace} whose namespace defaults to the referrer's. */
static bool parse_ref(ld_t *ld, const meta_t *m, const gw_yaml_node_t *n, const char *path, ref_t *out)
{
    char p[192];
    snprintf(p, sizeof(p), "%s.name", path);
    out->at = n;
    out->name = fstr(ld, m, n, "name", p, true);
    snprintf(p, sizeof(p), "%s.namespace", path);
    out->ns = fstr(ld, m, n, "namespace", p, false);
    if (out->ns == NULL || *out->ns == '\0')
        out->ns = m->ns;
    return out->name != NULL;
}

static void parse_header_mutation(ld_t *ld, const meta_t *m, const gw_yaml_node_t *parent, const char *path, hm_t *hm)
{
    char p[192];
    snprintf(p, sizeof(p), "%s.headerMutation", path);
    const gw_yaml_node_t *n = field(ld, m, parent, "headerMutation", GW_YAML_MAP, p, false);
    if (n == NULL)
        return;
    snprintf(p, sizeof(p), "%s.headerMutation.set", path);
    const gw_yaml_node_t *set = field(ld, m, n, "set", GW_YAML_SEQ, p, false);
    for (size_t i = 0; set != NULL && i < set->n_items; i++) {
        const gw_yaml_node_t *e = set->items[i];
        char q[224];
        snprintf(q, sizeof(q), "%s.headerMutation.set[%zu]", path, i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping {name, value}", q);
            continue;
        }
        char qn[240], qv[240];
        snprintf(qn, sizeof(qn), "%s.name", q);
        snprintf(qv, sizeof(qv), "%s.value", q);
        const char *name = fstr(ld, m, e, "name", qn, true);
        const gw_yaml_node_t *val = field(ld, m, e, "value", GW_YAML_SCALAR, qv, false);
        if (name != NULL && !is_token(name)) {
            lerr(ld, m, gw_yaml_get(e, "name"), "%s %s is not a valid header name", qn, name);
            continue;
        }
        if (val != NULL && !is_header_value(val->str)) {
            lerr(ld, m, val, "%s contains a line break or control character", qv);
            continue;
        }
        if (name == NULL)
            continue;
        kv_t *kv = VEC_PUSH(hm->set);
        kv->name = name;
        kv->value = val ? val->str : ""; /* a header value is never echoed: it may be a credential */
    }
    snprintf(p, sizeof(p), "%s.headerMutation.remove", path);
    const gw_yaml_node_t *rm = field(ld, m, n, "remove", GW_YAML_SEQ, p, false);
    for (size_t i = 0; rm != NULL && i < rm->n_items; i++) {
        const gw_yaml_node_t *e = rm->items[i];
        if (e->kind != GW_YAML_SCALAR || !is_token(e->str)) {
            lerr(ld, m, e, "%s[%zu] must be a header name", p, i);
            continue;
        }
        *VEC_PUSH(hm->remove) = e->str;
    }
}

/* Target references of a policy, keeping those of the wanted group/kind. */
static void parse_targets(ld_t *ld, const meta_t *m, const char *group, const char *kind, refs_t *vec)
{
    const gw_yaml_node_t *tr = field(ld, m, m->spec, "targetRefs", GW_YAML_SEQ, "spec.targetRefs", true);
    for (size_t i = 0; tr != NULL && i < tr->n_items; i++) {
        const gw_yaml_node_t *e = tr->items[i];
        char p[64];
        snprintf(p, sizeof(p), "spec.targetRefs[%zu]", i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping", p);
            continue;
        }
        const char *g = gw_yaml_str(gw_yaml_get(e, "group"));
        const char *k = gw_yaml_str(gw_yaml_get(e, "kind"));
        if ((k != NULL && strcmp(k, kind) != 0) || (g != NULL && *g != '\0' && strcmp(g, group) != 0)) {
            lerr(ld, m, e, "%s: only %s %s targets are supported", p, group, kind);
            continue;
        }
        ref_t r;
        if (parse_ref(ld, m, e, p, &r)) {
            r.ns = m->ns; /* LocalPolicyTargetReference: always the policy's own namespace */
            *VEC_PUSH(*vec) = r;
        }
    }
}

static void parse_gateway(ld_t *ld, set_t *s, const meta_t *m)
{
    if (s->gateways.n > 0) {
        const meta_t *first = &s->gateways.v[0].m;
        lerr(ld, m, m->root, "only one Gateway is supported (already have Gateway %s/%s)", first->ns,
            first->name ? first->name : "(unnamed)");
        return;
    }
    gateway_t *g = VEC_PUSH(s->gateways);
    g->m = *m;
    const gw_yaml_node_t *ls = field(ld, m, m->spec, "listeners", GW_YAML_SEQ, "spec.listeners", false);
    if (ls == NULL || ls->n_items == 0) {
        /* The reference's wording: "gateway aigw-run has no listeners configured". */
        lerr(ld, m, ls ? ls : m->spec ? m->spec : m->root, "no listeners configured");
        return;
    }
    for (size_t i = 0; i < ls->n_items; i++) {
        const gw_yaml_node_t *l = ls->items[i];
        char p[64];
        snprintf(p, sizeof(p), "spec.listeners[%zu]", i);
        if (l->kind != GW_YAML_MAP) {
            lerr(ld, m, l, "%s must be a mapping", p);
            continue;
        }
        const char *proto = gw_yaml_str(gw_yaml_get(l, "protocol"));
        if (proto == NULL || strcmp(proto, "HTTP") != 0) {
            lerr(ld, m, gw_yaml_get(l, "protocol") ? gw_yaml_get(l, "protocol") : l,
                "%s.protocol %s is not supported (only HTTP for now)", p, proto ? proto : "(missing)");
            continue;
        }
        uint64_t port;
        char pp[80];
        snprintf(pp, sizeof(pp), "%s.port", p);
        int rc = fuint(ld, m, l, "port", pp, 1, 65535, &port);
        if (rc == 0)
            lerr(ld, m, l, "%s is required", pp);
        if (rc == 1 && i == 0)
            g->port = (uint16_t)port;
        else if (rc == 1)
            lwarn(ld, m, l, "%s: only the first listener is served, port %llu ignored", p, (unsigned long long)port);
    }
}

static void parse_backend(ld_t *ld, set_t *s, const meta_t *m)
{
    be_t *b = VEC_PUSH(s->backends);
    b->m = *m;
    size_t before = ld->n_errors;
    const gw_yaml_node_t *eps = field(ld, m, m->spec, "endpoints", GW_YAML_SEQ, "spec.endpoints", true);
    if (eps != NULL && eps->n_items == 0)
        lerr(ld, m, eps, "spec.endpoints must have at least one endpoint");
    if (eps != NULL && eps->n_items > 0) {
        const gw_yaml_node_t *e = eps->items[0];
        if (eps->n_items > 1)
            lwarn(ld, m, eps, "only the first of %zu endpoints is used", eps->n_items);
        const gw_yaml_node_t *fqdn = gw_yaml_get(e, "fqdn"), *ip = gw_yaml_get(e, "ip");
        const gw_yaml_node_t *which = NULL;
        const char *host = NULL;
        bool is_fqdn = false;
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "spec.endpoints[0] must be a mapping");
        } else if (!gw_yaml_is_null(fqdn)) {
            is_fqdn = true;
            which = field(ld, m, e, "fqdn", GW_YAML_MAP, "spec.endpoints[0].fqdn", true);
            host = which ? fstr(ld, m, which, "hostname", "spec.endpoints[0].fqdn.hostname", true) : NULL;
        } else if (!gw_yaml_is_null(ip)) {
            which = field(ld, m, e, "ip", GW_YAML_MAP, "spec.endpoints[0].ip", true);
            host = which ? fstr(ld, m, which, "address", "spec.endpoints[0].ip.address", true) : NULL;
        } else if (gw_yaml_get(e, "unix") != NULL) {
            lerr(ld, m, e, "spec.endpoints[0]: unix socket endpoints are not supported yet");
        } else {
            lerr(ld, m, e, "spec.endpoints[0] needs fqdn {hostname, port} or ip {address, port}");
        }
        if (host != NULL) {
            /* A host goes into a Host header and a connect call: no spaces, slashes or controls. */
            for (const char *q = host; *q; q++) {
                if ((unsigned char)*q <= ' ' || *q == '/' || *q == '@' || *q == 0x7f) {
                    lerr(ld, m, which, "spec.endpoints[0]: %s is not a valid host", host);
                    host = NULL;
                    break;
                }
            }
        }
        if (host != NULL) {
            size_t hl = strlen(host);
            if (hl > 2 && host[0] == '[' && host[hl - 1] == ']')
                b->host = gw_strndup(host + 1, hl - 2);
            else
                b->host = gw_strdup(host);
            uint64_t port;
            if (fuint(ld, m, which, "port", is_fqdn ? "spec.endpoints[0].fqdn.port" : "spec.endpoints[0].ip.port", 1,
                      65535, &port) == 1)
                b->port = (uint16_t)port;
        }
    }
    b->ok = ld->n_errors == before;
}

static void parse_svc(ld_t *ld, set_t *s, const meta_t *m)
{
    svc_t *v = VEC_PUSH(s->svcs);
    v->m = *m;
    size_t before = ld->n_errors;
    const gw_yaml_node_t *schema = field(ld, m, m->spec, "schema", GW_YAML_MAP, "spec.schema", true);
    if (schema != NULL) {
        const char *name = fstr(ld, m, schema, "name", "spec.schema.name", true);
        if (name != NULL && !gw_schema_parse(name, &v->schema))
            lerr(ld, m, gw_yaml_get(schema, "name"),
                "spec.schema.name %s is not one of OpenAI, AzureOpenAI, Anthropic, AWSBedrock, AWSAnthropic, "
                "GCPVertexAI, GCPAnthropic, Cohere",
                name);
        const gw_yaml_node_t *ver = gw_yaml_get(schema, "version");
        if (ver != NULL && ver->kind == GW_YAML_SCALAR)
            v->version = gw_yaml_is_null(ver) ? NULL : ver->str;
        else if (ver != NULL)
            lerr(ld, m, ver, "spec.schema.version must be a scalar");
    }
    const gw_yaml_node_t *br = field(ld, m, m->spec, "backendRef", GW_YAML_MAP, "spec.backendRef", true);
    if (br != NULL) {
        const char *kind = gw_yaml_str(gw_yaml_get(br, "kind"));
        const char *group = gw_yaml_str(gw_yaml_get(br, "group"));
        /* The reference's CEL rule: a gateway.envoyproxy.io Backend (a Kubernetes Service is refused, #902). */
        if ((kind != NULL && strcmp(kind, "Backend") != 0) || (group != NULL && strcmp(group, "gateway.envoyproxy.io") != 0))
            lerr(ld, m, br, "spec.backendRef must be a gateway.envoyproxy.io Backend, not %s%s%s",
                group && *group ? group : "", group && *group ? " " : "", kind ? kind : "Service");
        else
            parse_ref(ld, m, br, "spec.backendRef", &v->backend);
    }
    parse_header_mutation(ld, m, m->spec, "spec", &v->hm);
    v->ok = ld->n_errors == before;
}

static void parse_tls(ld_t *ld, set_t *s, const meta_t *m)
{
    tls_t *t = VEC_PUSH(s->tls);
    t->m = *m;
    size_t before = ld->n_errors;
    parse_targets(ld, m, "gateway.envoyproxy.io", "Backend", &t->targets);
    const gw_yaml_node_t *val = field(ld, m, m->spec, "validation", GW_YAML_MAP, "spec.validation", true);
    if (val != NULL) {
        t->sni = fstr(ld, m, val, "hostname", "spec.validation.hostname", true);
        const char *wk = fstr(ld, m, val, "wellKnownCACertificates", "spec.validation.wellKnownCACertificates", false);
        if (gw_yaml_get(val, "caCertificateRefs") != NULL && !gw_yaml_is_null(gw_yaml_get(val, "caCertificateRefs")))
            lerr(ld, m, gw_yaml_get(val, "caCertificateRefs"),
                "spec.validation.caCertificateRefs is not supported yet (use wellKnownCACertificates: System)");
        else if (wk == NULL)
            lerr(ld, m, val, "spec.validation.wellKnownCACertificates is required");
        else if (strcmp(wk, "System") != 0)
            lerr(ld, m, gw_yaml_get(val, "wellKnownCACertificates"),
                "spec.validation.wellKnownCACertificates %s is not supported (only System)", wk);
    }
    t->ok = ld->n_errors == before;
}

static void parse_sec(ld_t *ld, set_t *s, const meta_t *m)
{
    sec_t *p = VEC_PUSH(s->secs);
    p->m = *m;
    size_t before = ld->n_errors;
    parse_targets(ld, m, "aigateway.envoyproxy.io", "AIServiceBackend", &p->targets);
    const char *type = fstr(ld, m, m->spec, "type", "spec.type", true);
    p->type_name = type;
    const gw_yaml_node_t *tn = gw_yaml_get(m->spec, "type");
    if (type == NULL)
        goto out;
    static const struct {
        const char *type, *field, *secret_key;
        gw_auth_type_t auth;
    } api_keys[] = {
        {"APIKey", "apiKey", "apiKey", GW_AUTH_API_KEY},
        {"AzureAPIKey", "azureAPIKey", "apiKey", GW_AUTH_AZURE_API_KEY},
        {"AnthropicAPIKey", "anthropicAPIKey", "apiKey", GW_AUTH_ANTHROPIC_API_KEY},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(api_keys); i++) {
        if (strcmp(type, api_keys[i].type) != 0)
            continue;
        char path[64];
        snprintf(path, sizeof(path), "spec.%s", api_keys[i].field);
        const gw_yaml_node_t *f = field(ld, m, m->spec, api_keys[i].field, GW_YAML_MAP, path, true);
        snprintf(path, sizeof(path), "spec.%s.secretRef", api_keys[i].field);
        const gw_yaml_node_t *sr = f ? field(ld, m, f, "secretRef", GW_YAML_MAP, path, true) : NULL;
        if (sr != NULL)
            parse_ref(ld, m, sr, path, &p->secret);
        p->type = api_keys[i].auth;
        p->secret_key = api_keys[i].secret_key;
        goto out;
    }
    if (strcmp(type, "AWSCredentials") == 0) {
        p->type = GW_AUTH_AWS_CREDENTIALS;
        const gw_yaml_node_t *f = field(ld, m, m->spec, "awsCredentials", GW_YAML_MAP, "spec.awsCredentials", true);
        if (f == NULL)
            goto out;
        p->region = fstr(ld, m, f, "region", "spec.awsCredentials.region", true);
        const gw_yaml_node_t *cf =
            field(ld, m, f, "credentialsFile", GW_YAML_MAP, "spec.awsCredentials.credentialsFile", false);
        if (cf != NULL) {
            const gw_yaml_node_t *sr =
                field(ld, m, cf, "secretRef", GW_YAML_MAP, "spec.awsCredentials.credentialsFile.secretRef", true);
            if (sr != NULL)
                parse_ref(ld, m, sr, "spec.awsCredentials.credentialsFile.secretRef", &p->secret);
            p->secret_key = "credentials";
            p->profile = fstr(ld, m, cf, "profile", "spec.awsCredentials.credentialsFile.profile", false);
            if (p->profile == NULL)
                p->profile = "default";
        }
        if (!gw_yaml_is_null(gw_yaml_get(f, "oidcExchangeToken")))
            lerr(ld, m, gw_yaml_get(f, "oidcExchangeToken"),
                "spec.awsCredentials.oidcExchangeToken is not supported outside Kubernetes (the reference refuses "
                "it in standalone mode too)");
        goto out;
    }
    if (strcmp(type, "AzureCredentials") == 0) {
        p->type = GW_AUTH_AZURE_CREDENTIALS;
        const gw_yaml_node_t *f =
            field(ld, m, m->spec, "azureCredentials", GW_YAML_MAP, "spec.azureCredentials", true);
        if (f == NULL)
            goto out;
        p->client_id = fstr(ld, m, f, "clientID", "spec.azureCredentials.clientID", true);
        p->tenant_id = fstr(ld, m, f, "tenantID", "spec.azureCredentials.tenantID", true);
        const gw_yaml_node_t *sr =
            field(ld, m, f, "clientSecretRef", GW_YAML_MAP, "spec.azureCredentials.clientSecretRef", false);
        if (sr != NULL) {
            parse_ref(ld, m, sr, "spec.azureCredentials.clientSecretRef", &p->secret);
            p->secret_key = "client-secret";
        } else if (!gw_yaml_is_null(gw_yaml_get(f, "oidcExchangeToken"))) {
            lerr(ld, m, gw_yaml_get(f, "oidcExchangeToken"),
                "spec.azureCredentials.oidcExchangeToken is not supported yet (use clientSecretRef)");
        } else {
            lerr(ld, m, f, "spec.azureCredentials needs clientSecretRef");
        }
        goto out;
    }
    if (strcmp(type, "GCPCredentials") == 0) {
        p->type = GW_AUTH_GCP_CREDENTIALS;
        const gw_yaml_node_t *f = field(ld, m, m->spec, "gcpCredentials", GW_YAML_MAP, "spec.gcpCredentials", true);
        if (f == NULL)
            goto out;
        p->project = fstr(ld, m, f, "projectName", "spec.gcpCredentials.projectName", true);
        p->region = fstr(ld, m, f, "region", "spec.gcpCredentials.region", true);
        const gw_yaml_node_t *cf =
            field(ld, m, f, "credentialsFile", GW_YAML_MAP, "spec.gcpCredentials.credentialsFile", false);
        if (cf != NULL) {
            const gw_yaml_node_t *sr =
                field(ld, m, cf, "secretRef", GW_YAML_MAP, "spec.gcpCredentials.credentialsFile.secretRef", true);
            if (sr != NULL)
                parse_ref(ld, m, sr, "spec.gcpCredentials.credentialsFile.secretRef", &p->secret);
            p->secret_key = "service_account.json";
        } else if (!gw_yaml_is_null(gw_yaml_get(f, "workloadIdentityFederationConfig"))) {
            lerr(ld, m, gw_yaml_get(f, "workloadIdentityFederationConfig"),
                "spec.gcpCredentials.workloadIdentityFederationConfig is not supported yet (use credentialsFile)");
        } else {
            lerr(ld, m, f, "spec.gcpCredentials needs credentialsFile");
        }
        goto out;
    }
    lerr(ld, m, tn,
        "spec.type %s is not one of APIKey, AzureAPIKey, AnthropicAPIKey, AWSCredentials, AzureCredentials, "
        "GCPCredentials",
        type);
out:
    p->ok = ld->n_errors == before;
}

/* Reads a Secret value from a file named by an annotation: a regular file, at most 1 MiB, with
 * trailing line breaks dropped (key files usually end with one; a header value must not). */
static char *read_secret_file(const char *path, char *why, size_t why_len)
{
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "not a regular file");
        goto out;
    }
    if ((size_t)st.st_size > MAX_SECRET_FILE) {
        snprintf(why, why_len, "larger than %zu bytes", MAX_SECRET_FILE);
        goto out;
    }
    size_t len = 0, cap = (size_t)st.st_size + 1;
    buf = gw_malloc(cap);
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, why_len, "%s", strerror(errno));
            wipe_free(buf);
            buf = NULL;
            goto out;
        }
        if (n == 0 || len + (size_t)n == cap - 1) {
            len += (size_t)n;
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        snprintf(why, why_len, "contains a NUL byte");
        wipe_free(buf);
        buf = NULL;
        goto out;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
out:
    close(fd);
    return buf;
}

static void secret_put(secret_t *sc, const char *key, char *value, const gw_yaml_node_t *at)
{
    for (size_t i = 0; i < sc->data.n; i++) {
        if (strcmp(sc->data.v[i].key, key) == 0) {
            wipe_free(sc->data.v[i].value);
            sc->data.v[i].value = value;
            sc->data.v[i].at = at;
            return;
        }
    }
    secret_kv_t *kv = VEC_PUSH(sc->data);
    kv->key = key;
    kv->value = value;
    kv->at = at;
}

static void parse_secret(ld_t *ld, set_t *s, const meta_t *m)
{
    secret_t *sc = VEC_PUSH(s->secrets);
    sc->m = *m;
    /* Kubernetes order: data, then stringData over it; aigw's substitution annotations last. */
    const gw_yaml_node_t *data = field(ld, m, m->root, "data", GW_YAML_MAP, "data", false);
    for (size_t i = 0; data != NULL && i < data->n_pairs; i++) {
        const gw_yaml_node_t *k = data->pairs[i].key, *v = data->pairs[i].value;
        if (k->kind != GW_YAML_SCALAR || v->kind != GW_YAML_SCALAR) {
            lerr(ld, m, k, "data entries must be key: base64 value");
            continue;
        }
        char *dec = b64_decode(v->str, v->len);
        if (dec == NULL) {
            lerr(ld, m, v, "data.%s is not valid base64 (or decodes to a NUL byte)", k->str);
            continue;
        }
        secret_put(sc, k->str, dec, v);
    }
    const gw_yaml_node_t *sd = field(ld, m, m->root, "stringData", GW_YAML_MAP, "stringData", false);
    for (size_t i = 0; sd != NULL && i < sd->n_pairs; i++) {
        const gw_yaml_node_t *k = sd->pairs[i].key, *v = sd->pairs[i].value;
        if (k->kind != GW_YAML_SCALAR || v->kind != GW_YAML_SCALAR) {
            lerr(ld, m, k, "stringData entries must be key: value");
            continue;
        }
        secret_put(sc, k->str, gw_strdup(gw_yaml_is_null(v) ? "" : v->str), v);
    }
    const gw_yaml_node_t *ann = gw_yaml_get(gw_yaml_get(m->root, "metadata"), "annotations");
    for (size_t i = 0; ann != NULL && ann->kind == GW_YAML_MAP && i < ann->n_pairs; i++) {
        const gw_yaml_node_t *k = ann->pairs[i].key, *v = ann->pairs[i].value;
        if (k->kind != GW_YAML_SCALAR)
            continue;
        bool is_env = strncmp(k->str, SUBST_ENV, strlen(SUBST_ENV)) == 0;
        bool is_file = strncmp(k->str, SUBST_FILE, strlen(SUBST_FILE)) == 0;
        if (!is_env && !is_file)
            continue;
        const char *key = k->str + strlen(is_env ? SUBST_ENV : SUBST_FILE);
        const char *src = gw_yaml_str(v);
        if (*key == '\0' || src == NULL || *src == '\0') {
            lerr(ld, m, k, "annotation %s needs a data key in its name and a non-empty value", k->str);
            continue;
        }
        if (is_env) {
            const char *val = getenv(src);
            if (val == NULL) {
                lerr(ld, m, v, "annotation %s: environment variable %s is not set", k->str, src);
                continue;
            }
            secret_put(sc, key, gw_strdup(val), v);
        } else {
            char why[128];
            char *val = read_secret_file(src, why, sizeof(why));
            if (val == NULL) {
                lerr(ld, m, v, "annotation %s: cannot read %s: %s", k->str, src, why);
                continue;
            }
            secret_put(sc, key, val, v);
        }
    }
}

static void parse_ctp(ld_t *ld, set_t *s, const meta_t *m)
{
    const gw_yaml_node_t *conn = field(ld, m, m->spec, "connection", GW_YAML_MAP, "spec.connection", false);
    const gw_yaml_node_t *bl = gw_yaml_get(conn, "bufferLimit");
    if (gw_yaml_is_null(bl))
        return; /* a ClientTrafficPolicy about something else */
    uint64_t v;
    if (bl->kind != GW_YAML_SCALAR || !parse_quantity(bl->str, &v) || v == 0) {
        lerr(ld, m, bl, "spec.connection.bufferLimit %s is not a byte quantity such as 50Mi",
            bl->kind == GW_YAML_SCALAR ? bl->str : "");
        return;
    }
    if (s->ctps.n > 0) {
        lwarn(ld, m, bl, "a second bufferLimit is ignored (ClientTrafficPolicy %s/%s set it first)", s->ctps.v[0].m.ns,
             s->ctps.v[0].m.name);
        return;
    }
    ctp_t *c = VEC_PUSH(s->ctps);
    c->m = *m;
    c->limit = v;
}

static void parse_route(ld_t *ld, set_t *s, const meta_t *m)
{
    /* Rules are built in link_routes, once every AIServiceBackend is known. */
    route_t *r = VEC_PUSH(s->routes);
    r->m = *m;
}

/* Every kind aigw reads; the others are accepted and ignored. A new kind is a row here, a
 * struct and a parse function, and a step in link() if it refers to other resources. */
static const struct kind_entry {
    const char *kind;
    const char *group; /* apiVersion group ("" for the core group) */
    bool has_spec;
    void (*parse)(ld_t *, set_t *, const meta_t *);
} kinds[] = {
    {"Gateway", "gateway.networking.k8s.io", true, parse_gateway},
    {"AIGatewayRoute", "aigateway.envoyproxy.io", true, parse_route},
    {"AIServiceBackend", "aigateway.envoyproxy.io", true, parse_svc},
    {"BackendSecurityPolicy", "aigateway.envoyproxy.io", true, parse_sec},
    {"Backend", "gateway.envoyproxy.io", true, parse_backend},
    {"BackendTLSPolicy", "gateway.networking.k8s.io", true, parse_tls},
    {"ClientTrafficPolicy", "gateway.envoyproxy.io", true, parse_ctp},
    {"Secret", "", false, parse_secret},
    /* Known to the reference, read by later issues: accepted with a warning so nothing is silently lost. */
    {"MCPRoute", "aigateway.envoyproxy.io", false, NULL},
    {"BackendTrafficPolicy", "gateway.envoyproxy.io", false, NULL},
    {"GatewayConfig", "aigateway.envoyproxy.io", false, NULL},
    {"QuotaPolicy", "aigateway.envoyproxy.io", false, NULL},
};

static bool same_group(const char *api_version, const char *group)
{
    if (api_version == NULL)
        return true; /* lenient: the kind alone decides */
    const char *slash = strchr(api_version, '/');
    if (slash == NULL)
        return *group == '\0'; /* "v1": the core group */
    return strlen(group) == (size_t)(slash - api_version) && memcmp(api_version, group, strlen(group)) == 0;
}

static const meta_t *find_dup(const set_t *s, const meta_t *m);

static void parse_doc(ld_t *ld, set_t *s, const gw_yaml_node_t *root)
{
    if (gw_yaml_is_null(root))
        return; /* an empty document, e.g. after a trailing "---" */
    if (root->kind != GW_YAML_MAP) {
        lerr(ld, NULL, root, "a resource must be a mapping with apiVersion, kind and metadata");
        return;
    }
    const gw_yaml_node_t *kn = gw_yaml_get(root, "kind");
    const char *kind = gw_yaml_str(kn);
    if (kind == NULL || kn->kind != GW_YAML_SCALAR) {
        lerr(ld, NULL, kn ? kn : root, "resource has no kind");
        return;
    }
    const gw_yaml_node_t *av = gw_yaml_get(root, "apiVersion");
    const char *api_version = gw_yaml_str(av);
    const struct kind_entry *ke = NULL;
    for (size_t i = 0; i < GW_ARRAY_SIZE(kinds); i++) {
        if (strcmp(kinds[i].kind, kind) == 0) {
            ke = &kinds[i];
            break;
        }
    }
    if (ke == NULL)
        return; /* GatewayClass, EnvoyProxy, Deployment, Service, ...: not ours */
    meta_t m = {.kind = ke->kind, .ns = "default", .root = root};
    if (!same_group(api_version, ke->group)) {
        gw_log_warn("%s: %s with apiVersion %s is not the %s one, ignored", ld->file, kind, api_version,
                    *ke->group ? ke->group : "core");
        return;
    }
    const gw_yaml_node_t *md = field(ld, &m, root, "metadata", GW_YAML_MAP, "metadata", true);
    m.name = md ? fstr(ld, &m, md, "name", "metadata.name", true) : NULL;
    const char *ns = md ? fstr(ld, &m, md, "namespace", "metadata.namespace", false) : NULL;
    if (ns != NULL && *ns != '\0')
        m.ns = ns;
    if (ke->parse == NULL) {
        lwarn(ld, &m, root, "%s is not supported yet and is ignored", kind);
        return;
    }
    if (m.name == NULL)
        return;
    const meta_t *dup = find_dup(s, &m);
    if (dup != NULL) {
        pos_t p = map_pos(ld->map, (pos_t){dup->root->line, dup->root->col});
        lerr(ld, &m, root, "defined twice (first at line %u)", p.line);
        return;
    }
    if (ke->has_spec) {
        m.spec = field(ld, &m, root, "spec", GW_YAML_MAP, "spec", true);
        if (m.spec == NULL)
            return;
    }
    ke->parse(ld, s, &m);
}

/* ---- lookups ---- */

#define FIND(vec, ns_, name_)                                                                                        \
    __extension__({                                                                                                  \
        __typeof__((vec).v[0]) *found_ = NULL;                                                                       \
        for (size_t i_ = 0; i_ < (vec).n; i_++)                                                                      \
            if (strcmp((vec).v[i_].m.name, (name_)) == 0 && strcmp((vec).v[i_].m.ns, (ns_)) == 0) {                  \
                found_ = &(vec).v[i_];                                                                               \
                break;                                                                                               \
            }                                                                                                        \
        found_;                                                                                                      \
    })

static const meta_t *find_dup(const set_t *s, const meta_t *m)
{
    const char *k = m->kind;
#define DUP(vec, kind_)                                             \
    if (strcmp(k, kind_) == 0) {                                    \
        const void *f_ = FIND(s->vec, m->ns, m->name);              \
        return f_ ? (const meta_t *)f_ : NULL;                      \
    }
    /* meta_t is the first member of every resource struct. */
    DUP(gateways, "Gateway")
    DUP(routes, "AIGatewayRoute")
    DUP(svcs, "AIServiceBackend")
    DUP(secs, "BackendSecurityPolicy")
    DUP(backends, "Backend")
    DUP(tls, "BackendTLSPolicy")
    DUP(secrets, "Secret")
    DUP(ctps, "ClientTrafficPolicy")
#undef DUP
    return NULL;
}

/* ---- linking ---- */

static void link_tls(ld_t *ld, set_t *s)
{
    for (size_t i = 0; i < s->tls.n; i++) {
        tls_t *t = &s->tls.v[i];
        for (size_t j = 0; j < t->targets.n; j++) {
            const ref_t *r = &t->targets.v[j];
            be_t *b = FIND(s->backends, r->ns, r->name);
            if (b == NULL) {
                lerr(ld, &t->m, r->at, "Backend %s/%s not found", r->ns, r->name);
                continue;
            }
            if (b->tls_by != NULL) {
                lerr(ld, &t->m, r->at, "Backend %s/%s already has BackendTLSPolicy %s/%s", r->ns, r->name,
                    b->tls_by->ns, b->tls_by->name);
                continue;
            }
            b->tls_by = &t->m;
            b->tls = t->ok;
            b->sni = t->sni;
        }
    }
    for (size_t i = 0; i < s->backends.n; i++) {
        be_t *b = &s->backends.v[i];
        if (b->port == 0)
            b->port = b->tls ? 443 : 80;
        if (b->ok && b->port == 443 && !b->tls)
            lwarn(ld, &b->m, b->m.spec, "port 443 without a BackendTLSPolicy: plain HTTP will be sent");
    }
}

static void link_svcs(ld_t *ld, set_t *s)
{
    for (size_t i = 0; i < s->svcs.n; i++) {
        svc_t *v = &s->svcs.v[i];
        if (v->backend.name == NULL)
            continue;
        v->be = FIND(s->backends, v->backend.ns, v->backend.name);
        if (v->be == NULL) {
            lerr(ld, &v->m, v->backend.at, "Backend %s/%s not found", v->backend.ns, v->backend.name);
            v->ok = false;
        }
    }
}

static const char *secret_value(ld_t *ld, set_t *s, const sec_t *p)
{
    const ref_t *r = &p->secret;
    secret_t *sc = FIND(s->secrets, r->ns, r->name);
    if (sc == NULL) {
        lerr(ld, &p->m, r->at, "Secret %s/%s not found", r->ns, r->name);
        return NULL;
    }
    for (size_t i = 0; i < sc->data.n; i++)
        if (strcmp(sc->data.v[i].key, p->secret_key) == 0)
            return sc->data.v[i].value;
    lerr(ld, &p->m, r->at, "Secret %s/%s has no key %s", r->ns, r->name, p->secret_key);
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? gw_strdup(s) : NULL;
}

static void link_secs(ld_t *ld, set_t *s)
{
    for (size_t i = 0; i < s->secs.n; i++) {
        sec_t *p = &s->secs.v[i];
        if (!p->ok)
            continue;
        const char *secret = NULL;
        if (p->secret.name != NULL && (secret = secret_value(ld, s, p)) == NULL)
            continue;
        char *trimmed = NULL;
        if (p->type == GW_AUTH_API_KEY || p->type == GW_AUTH_AZURE_API_KEY || p->type == GW_AUTH_ANTHROPIC_API_KEY) {
            /* An API key goes into a header: a "key: |" block's final line break is dropped, any
             * other control character is refused (the value itself is never shown). */
            size_t len = strlen(secret);
            while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
                len--;
            trimmed = gw_strndup(secret, len);
            secret = trimmed;
            if (*secret == '\0') {
                /* Usually ${OPENAI_API_KEY} with the variable unset. */
                lerr(ld, &p->m, p->secret.at, "Secret %s/%s key %s is empty", p->secret.ns, p->secret.name,
                     p->secret_key);
                wipe_free(trimmed);
                continue;
            }
            if (!is_header_value(secret)) {
                lerr(ld, &p->m, p->secret.at, "Secret %s/%s key %s contains a line break or control character",
                     p->secret.ns, p->secret.name, p->secret_key);
                wipe_free(trimmed);
                continue;
            }
        }
        for (size_t j = 0; j < p->targets.n; j++) {
            const ref_t *r = &p->targets.v[j];
            svc_t *v = FIND(s->svcs, r->ns, r->name);
            if (v == NULL) {
                lerr(ld, &p->m, r->at, "AIServiceBackend %s/%s not found", r->ns, r->name);
                continue;
            }
            if (v->auth_by != NULL) {
                lerr(ld, &p->m, r->at, "AIServiceBackend %s/%s already has BackendSecurityPolicy %s/%s (only one may attach)",
                    r->ns, r->name, v->auth_by->ns, v->auth_by->name);
                continue;
            }
            v->auth_by = &p->m;
            gw_auth_config_t *a = &v->auth;
            a->type = p->type;
            bool is_key = p->type == GW_AUTH_API_KEY || p->type == GW_AUTH_AZURE_API_KEY ||
                          p->type == GW_AUTH_ANTHROPIC_API_KEY;
            a->api_key = is_key ? dup_or_null(secret) : NULL;
            a->credentials = is_key ? NULL : dup_or_null(secret);
            a->region = dup_or_null(p->region);
            a->aws_profile = p->type == GW_AUTH_AWS_CREDENTIALS && secret ? dup_or_null(p->profile) : NULL;
            a->gcp_project = dup_or_null(p->project);
            a->azure_client_id = dup_or_null(p->client_id);
            a->azure_tenant_id = dup_or_null(p->tenant_id);
        }
        wipe_free(trimmed);
    }
}

static void copy_auth(gw_auth_config_t *dst, const gw_auth_config_t *src)
{
    dst->type = src->type;
    dst->api_key = dup_or_null(src->api_key);
    dst->credentials = dup_or_null(src->credentials);
    dst->region = dup_or_null(src->region);
    dst->aws_profile = dup_or_null(src->aws_profile);
    dst->gcp_project = dup_or_null(src->gcp_project);
    dst->azure_client_id = dup_or_null(src->azure_client_id);
    dst->azure_tenant_id = dup_or_null(src->azure_tenant_id);
}

/* Route-level set wins over backend-level set by (case-insensitive) name; removes are unioned. */
static void merge_mutations(gw_header_mutation_t *out, const hm_t *route, const hm_t *svc)
{
    size_t max_set = route->set.n + svc->set.n, max_rm = route->remove.n + svc->remove.n;
    out->set = max_set ? gw_calloc(max_set, sizeof(*out->set)) : NULL;
    out->remove = max_rm ? gw_calloc(max_rm, sizeof(*out->remove)) : NULL;
    const hm_t *order[2] = {route, svc};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < order[k]->set.n; i++) {
            const kv_t *kv = &order[k]->set.v[i];
            bool seen = false;
            for (size_t j = 0; j < out->n_set && !seen; j++)
                seen = gw_str_case_eq(gw_str_c(out->set[j].name), gw_str_c(kv->name));
            if (seen)
                continue;
            out->set[out->n_set].name = lower_dup(kv->name);
            out->set[out->n_set].value = gw_strdup(kv->value);
            out->n_set++;
        }
        for (size_t i = 0; i < order[k]->remove.n; i++) {
            const char *name = order[k]->remove.v[i];
            bool seen = false;
            for (size_t j = 0; j < out->n_remove && !seen; j++)
                seen = gw_str_case_eq(gw_str_c(out->remove[j]), gw_str_c(name));
            if (!seen)
                out->remove[out->n_remove++] = lower_dup(name);
        }
    }
}

static void add_model(gw_config_t *c, const char *name, const char *owned_by, int64_t created)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return; /* listed once, the first rule's metadata wins */
    c->models = gw_realloc(c->models, (c->n_models + 1) * sizeof(*c->models));
    c->models[c->n_models++] = (gw_model_t){.name = gw_strdup(name), .owned_by = gw_strdup(owned_by), .created = created};
}

static void link_costs(ld_t *ld, gw_config_t *c, const meta_t *m)
{
    const gw_yaml_node_t *costs = field(ld, m, m->spec, "llmRequestCosts", GW_YAML_SEQ, "spec.llmRequestCosts", false);
    static const struct {
        const char *name;
        gw_cost_type_t type;
    } types[] = {
        {"InputToken", GW_COST_INPUT},   {"CachedInputToken", GW_COST_CACHED_INPUT}, {"OutputToken", GW_COST_OUTPUT},
        {"TotalToken", GW_COST_TOTAL},   {"CEL", GW_COST_CEL},
    };
    for (size_t i = 0; costs != NULL && i < costs->n_items; i++) {
        const gw_yaml_node_t *e = costs->items[i];
        char p[64], pk[80], pt[80], pc[80];
        snprintf(p, sizeof(p), "spec.llmRequestCosts[%zu]", i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping", p);
            continue;
        }
        snprintf(pk, sizeof(pk), "%s.metadataKey", p);
        snprintf(pt, sizeof(pt), "%s.type", p);
        snprintf(pc, sizeof(pc), "%s.cel", p);
        const char *key = fstr(ld, m, e, "metadataKey", pk, true);
        const char *type = fstr(ld, m, e, "type", pt, true);
        if (key == NULL || type == NULL)
            continue;
        size_t t = 0;
        while (t < GW_ARRAY_SIZE(types) && strcmp(types[t].name, type) != 0)
            t++;
        if (t == GW_ARRAY_SIZE(types)) {
            lerr(ld, m, gw_yaml_get(e, "type"),
                "%s %s is not one of InputToken, CachedInputToken, OutputToken, TotalToken, CEL", pt, type);
            continue;
        }
        const char *cel = NULL;
        if (types[t].type == GW_COST_CEL && (cel = fstr(ld, m, e, "cel", pc, true)) == NULL)
            continue;
        bool dup = false;
        for (size_t j = 0; j < c->n_costs && !dup; j++)
            dup = strcmp(c->costs[j].metadata_key, key) == 0;
        if (dup)
            continue; /* the reference de-duplicates by metadataKey across routes: the first wins */
        c->costs = gw_realloc(c->costs, (c->n_costs + 1) * sizeof(*c->costs));
        c->costs[c->n_costs++] = (gw_llm_cost_t){.metadata_key = gw_strdup(key), .type = types[t].type, .cel = dup_or_null(cel)};
    }
}

static void link_matches(ld_t *ld, const meta_t *m, const gw_yaml_node_t *rule, const char *rp, gw_route_rule_t *r)
{
    char p[192];
    snprintf(p, sizeof(p), "%s.matches", rp);
    const gw_yaml_node_t *ms = field(ld, m, rule, "matches", GW_YAML_SEQ, p, false);
    if (ms == NULL || ms->n_items == 0)
        return;
    r->matches = gw_calloc(ms->n_items, sizeof(*r->matches));
    for (size_t i = 0; i < ms->n_items; i++) {
        const gw_yaml_node_t *mn = ms->items[i];
        gw_route_match_t *rm = &r->matches[r->n_matches++];
        char mp[128];
        snprintf(mp, sizeof(mp), "%s.matches[%zu]", rp, i);
        if (mn->kind != GW_YAML_MAP) {
            lerr(ld, m, mn, "%s must be a mapping", mp);
            continue;
        }
        snprintf(p, sizeof(p), "%s.headers", mp);
        const gw_yaml_node_t *hs = field(ld, m, mn, "headers", GW_YAML_SEQ, p, false);
        if (hs == NULL || hs->n_items == 0)
            continue;
        rm->headers = gw_calloc(hs->n_items, sizeof(*rm->headers));
        for (size_t j = 0; j < hs->n_items; j++) {
            const gw_yaml_node_t *hn = hs->items[j];
            char hp[160], fp[192];
            snprintf(hp, sizeof(hp), "%s.headers[%zu]", mp, j);
            if (hn->kind != GW_YAML_MAP) {
                lerr(ld, m, hn, "%s must be a mapping {type, name, value}", hp);
                continue;
            }
            snprintf(fp, sizeof(fp), "%s.name", hp);
            const char *name = fstr(ld, m, hn, "name", fp, true);
            snprintf(fp, sizeof(fp), "%s.value", hp);
            const gw_yaml_node_t *vn = field(ld, m, hn, "value", GW_YAML_SCALAR, fp, true);
            snprintf(fp, sizeof(fp), "%s.type", hp);
            const char *type = fstr(ld, m, hn, "type", fp, false);
            gw_match_type_t mt = GW_MATCH_EXACT;
            if (type != NULL && strcmp(type, "RegularExpression") == 0) {
                mt = GW_MATCH_REGEX;
            } else if (type != NULL && strcmp(type, "Exact") != 0) {
                lerr(ld, m, gw_yaml_get(hn, "type"), "%s %s is not Exact or RegularExpression", fp, type);
                continue;
            }
            if (name == NULL || vn == NULL)
                continue;
            gw_header_match_t *h = &rm->headers[rm->n_headers++];
            h->name = lower_dup(name);
            h->value = gw_strdup(vn->str);
            h->type = mt;
            if (mt == GW_MATCH_REGEX) {
                gw_buf_t why;
                gw_buf_init(&why, 512);
                if (gw_header_match_compile(h, &why) != GW_OK)
                    lerr(ld, m, vn, "%s: bad regular expression %s: %s", hp, h->value, gw_buf_cstr(&why));
                gw_buf_free(&why);
            }
        }
    }
}

static void link_routes(ld_t *ld, set_t *s, gw_config_t *c)
{
    for (size_t ri = 0; ri < s->routes.n; ri++) {
        const meta_t *m = &s->routes.v[ri].m;
        const gw_yaml_node_t *rules = field(ld, m, m->spec, "rules", GW_YAML_SEQ, "spec.rules", true);
        if (rules != NULL && rules->n_items == 0)
            lerr(ld, m, rules, "spec.rules must have at least one rule");
        if (rules != NULL && rules->n_items > 0) {
            c->rules = gw_realloc(c->rules, (c->n_rules + rules->n_items) * sizeof(*c->rules));
            memset(&c->rules[c->n_rules], 0, rules->n_items * sizeof(*c->rules));
        }
        for (size_t i = 0; rules != NULL && i < rules->n_items; i++) {
            const gw_yaml_node_t *rn = rules->items[i];
            gw_route_rule_t *r = &c->rules[c->n_rules++];
            char rp[64];
            snprintf(rp, sizeof(rp), "spec.rules[%zu]", i);
            r->route_name = joinf("%s/%s", m->ns, m->name);
            r->request_timeout_ms = DEFAULT_TIMEOUT_MS;
            if (rn->kind != GW_YAML_MAP) {
                lerr(ld, m, rn, "%s must be a mapping", rp);
                continue;
            }
            link_matches(ld, m, rn, rp, r);

            char p[128];
            snprintf(p, sizeof(p), "%s.timeouts", rp);
            const gw_yaml_node_t *to = field(ld, m, rn, "timeouts", GW_YAML_MAP, p, false);
            snprintf(p, sizeof(p), "%s.timeouts.request", rp);
            const char *req = to ? fstr(ld, m, to, "request", p, false) : NULL;
            if (req != NULL && !parse_duration(req, &r->request_timeout_ms))
                lerr(ld, m, gw_yaml_get(to, "request"), "%s %s is not a duration such as 60s, 1m30s or 500ms", p, req);

            snprintf(p, sizeof(p), "%s.modelsOwnedBy", rp);
            const char *owned_by = fstr(ld, m, rn, "modelsOwnedBy", p, false);
            snprintf(p, sizeof(p), "%s.modelsCreatedAt", rp);
            const char *created_at = fstr(ld, m, rn, "modelsCreatedAt", p, false);
            int64_t created = ld->now;
            if (created_at != NULL && !parse_rfc3339(created_at, &created))
                lerr(ld, m, gw_yaml_get(rn, "modelsCreatedAt"), "%s %s is not an RFC 3339 date-time such as 2025-05-23T00:00:00Z",
                    p, created_at);
            for (size_t j = 0; j < r->n_matches; j++)
                for (size_t k = 0; k < r->matches[j].n_headers; k++) {
                    const gw_header_match_t *h = &r->matches[j].headers[k];
                    if (h->type == GW_MATCH_EXACT && strcmp(h->name, MODEL_HEADER) == 0)
                        add_model(c, h->value, owned_by && *owned_by ? owned_by : DEFAULT_OWNED_BY, created);
                }

            snprintf(p, sizeof(p), "%s.backendRefs", rp);
            const gw_yaml_node_t *brs = field(ld, m, rn, "backendRefs", GW_YAML_SEQ, p, true);
            if (brs != NULL && brs->n_items == 0)
                lerr(ld, m, brs, "%s must have at least one backend", p);
            if (brs == NULL || brs->n_items == 0)
                continue;
            r->backends = gw_calloc(brs->n_items, sizeof(*r->backends));
            for (size_t j = 0; j < brs->n_items; j++) {
                const gw_yaml_node_t *bn = brs->items[j];
                char bp[128], fp[160];
                snprintf(bp, sizeof(bp), "%s.backendRefs[%zu]", rp, j);
                if (bn->kind != GW_YAML_MAP) {
                    lerr(ld, m, bn, "%s must be a mapping", bp);
                    continue;
                }
                const char *kind = gw_yaml_str(gw_yaml_get(bn, "kind"));
                if (kind != NULL && strcmp(kind, "AIServiceBackend") != 0) {
                    lerr(ld, m, gw_yaml_get(bn, "kind"), "%s: kind %s is not supported yet (only AIServiceBackend)", bp,
                        kind);
                    continue;
                }
                ref_t ref;
                if (!parse_ref(ld, m, bn, bp, &ref))
                    continue;
                uint64_t weight = 1, priority = 0;
                snprintf(fp, sizeof(fp), "%s.weight", bp);
                int wrc = fuint(ld, m, bn, "weight", fp, 0, 1000000, &weight);
                snprintf(fp, sizeof(fp), "%s.priority", bp);
                int prc = fuint(ld, m, bn, "priority", fp, 0, UINT32_MAX, &priority);
                snprintf(fp, sizeof(fp), "%s.modelNameOverride", bp);
                const char *override = fstr(ld, m, bn, "modelNameOverride", fp, false);
                hm_t hm = {0};
                parse_header_mutation(ld, m, bn, bp, &hm);
                const svc_t *v = FIND(s->svcs, ref.ns, ref.name);
                if (v == NULL)
                    lerr(ld, m, bn, "%s: AIServiceBackend %s/%s not found", bp, ref.ns, ref.name);
                /* A broken AIServiceBackend or Backend has reported its own errors already. */
                if (v == NULL || !v->ok || v->be == NULL || !v->be->ok || v->be->host == NULL || wrc < 0 || prc < 0) {
                    hm_free(&hm);
                    continue;
                }
                gw_backend_t *b = &r->backends[r->n_backends++];
                b->name = joinf("%s/%s/route/%s/rule/%zu/ref/%zu", ref.ns, ref.name, m->name, i, j);
                b->service_name = joinf("%s/%s", ref.ns, ref.name);
                b->schema = v->schema;
                if (v->version != NULL)
                    b->schema_version = gw_strdup(v->version);
                else if (v->schema == GW_SCHEMA_OPENAI || v->schema == GW_SCHEMA_ANTHROPIC)
                    b->schema_version = gw_strdup("v1");
                b->host = gw_strdup(v->be->host);
                b->port = v->be->port;
                b->tls = v->be->tls;
                if (v->be->tls && v->be->sni != NULL && strcmp(v->be->sni, v->be->host) != 0)
                    b->sni = gw_strdup(v->be->sni);
                copy_auth(&b->auth, &v->auth);
                merge_mutations(&b->header_mutation, &hm, &v->hm);
                hm_free(&hm);
                if (override != NULL && *override != '\0')
                    b->model_name_override = gw_strdup(override);
                b->weight = (uint32_t)weight;
                b->priority = (uint32_t)priority;
            }
        }
        link_costs(ld, c, m);
    }
}

static gw_config_t *load(const char *name, const char *bytes, size_t len, gw_buf_t *errors)
{
    gw_buf_t scratch, text;
    subst_map_t map = {0};
    set_t set = {0};
    gw_yaml_stream_t *ys = NULL;
    gw_config_t *c = NULL;
    if (errors == NULL) {
        gw_buf_init(&scratch, 64 << 10);
        errors = &scratch;
    }
    ld_t ld = {.file = name, .errors = errors, .map = &map, .now = (int64_t)time(NULL)};
    gw_buf_init(&text, MAX_CONFIG_FILE);
    if (substitute(bytes, len, &text, &map) != GW_OK) {
        gw_buf_appendf(errors, "%s: larger than %zu bytes after ${VAR} substitution\n", name, MAX_CONFIG_FILE);
        goto out;
    }

    gw_yaml_error_t yerr;
    ys = gw_yaml_parse(text.data ? text.data : "", text.len, NULL, &yerr);
    if (ys == NULL) {
        if (yerr.line > 0) {
            pos_t p = map_pos(&map, (pos_t){yerr.line, yerr.col});
            gw_buf_appendf(errors, "%s:%u:%u: %s\n", name, p.line, p.col, yerr.msg);
        } else {
            gw_buf_appendf(errors, "%s: %s\n", name, yerr.msg);
        }
        goto out;
    }
    for (size_t i = 0; i < gw_yaml_doc_count(ys); i++)
        parse_doc(&ld, &set, gw_yaml_doc(ys, i));

    c = gw_config_new();
    link_tls(&ld, &set);
    link_svcs(&ld, &set);
    link_secs(&ld, &set);
    link_routes(&ld, &set, c);
    if (set.gateways.n > 0)
        c->listen_port = set.gateways.v[0].port;
    if (set.ctps.n > 0)
        c->max_request_body = (size_t)set.ctps.v[0].limit;
    if (ld.n_errors > 0) {
        gw_config_unref(c);
        c = NULL;
        goto out;
    }
    size_t n_backends = 0;
    for (size_t i = 0; i < c->n_rules; i++)
        n_backends += c->rules[i].n_backends;
    c->description = joinf("%s: %zu rule%s, %zu backend reference%s, %zu model%s", name, c->n_rules,
                           c->n_rules == 1 ? "" : "s", n_backends, n_backends == 1 ? "" : "s", c->n_models,
                           c->n_models == 1 ? "" : "s");
out:
    gw_yaml_stream_free(ys);
    set_free(&set);
    free(map.v);
    if (text.data != NULL)
        explicit_bzero(text.data, text.len); /* the substituted text holds secrets from the environment */
    gw_buf_free(&text);
    if (errors == &scratch)
        gw_buf_free(&scratch);
    return c;
}

gw_config_t *gw_config_load_buffer(const char *name, const char *bytes, size_t len, gw_buf_t *errors)
{
    return load(name ? name : "(buffer)", bytes, len, errors);
}

gw_config_t *gw_config_load_file(const char *path, gw_buf_t *errors)
{
    gw_buf_t scratch, b;
    gw_config_t *c = NULL;
    if (errors == NULL) {
        gw_buf_init(&scratch, 4096);
        errors = &scratch;
    }
    gw_buf_init(&b, MAX_CONFIG_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        gw_buf_appendf(errors, "%s: cannot open: %s\n", path, strerror(errno));
        goto out;
    }
    for (;;) {
        char *p = gw_buf_reserve(&b, 65536 < MAX_CONFIG_FILE - b.len ? 65536 : MAX_CONFIG_FILE - b.len);
        if (p == NULL || b.len == MAX_CONFIG_FILE) {
            gw_buf_appendf(errors, "%s: larger than %zu bytes\n", path, MAX_CONFIG_FILE);
            goto out;
        }
        ssize_t n = read(fd, p, 65536 < MAX_CONFIG_FILE - b.len ? 65536 : MAX_CONFIG_FILE - b.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            gw_buf_appendf(errors, "%s: cannot read: %s\n", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        gw_buf_commit(&b, (size_t)n);
    }
    c = load(path, b.data ? b.data : "", b.len, errors);
out:
    if (fd >= 0)
        close(fd);
    if (b.data != NULL)
        explicit_bzero(b.data, b.len);
    gw_buf_free(&b);
    if (errors == &scratch)
        gw_buf_free(&scratch);
    return c;
}
