/* The MCP resource-server authorizer: API-key and bearer-JWT checks for MCPRoutes, with per-worker
 * caches of key sets and issuer metadata fetched through the upstream client, and the well-known
 * metadata documents. Loop-owned: every function runs on the worker's loop thread, nothing locks. */
#include "mcp/oauth.h"

#include "auth/jwt.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PRM_PATH "/.well-known/oauth-protected-resource"
#define ASM_PATH "/.well-known/oauth-authorization-server"
#define OIDC_PATH "/.well-known/openid-configuration"

/* ---- intrusive lists ------------------------------------------------------------------------- */

typedef struct link_s {
    struct link_s *prev, *next;
} link_t;

static void list_init(link_t *l)
{
    l->prev = l->next = l;
}

static bool list_empty(const link_t *l)
{
    return l->next == l;
}

static void list_push_back(link_t *l, link_t *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static void link_remove(link_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Moves every node of from to the (empty) list to. */
static void list_move(link_t *from, link_t *to)
{
    list_init(to);
    if (list_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

/* ---- types ----------------------------------------------------------------------------------- */

enum { E_LOCAL, E_REMOTE, E_DISCOVERY };
enum { K_CHECK, K_META_RESOURCE, K_META_AUTH_SERVER };

typedef struct fetch_s fetch_t;

/* A cached key set (local text or remote URI) or an issuer's discovery document. */
typedef struct {
    link_t link;       /* in a->entries */
    int kind;
    char *route;       /* route name: entries are per route and source */
    char *src;         /* E_LOCAL: the JWKS text; E_REMOTE: its URI; E_DISCOVERY: the issuer */
    size_t src_len;
    gw_jwks_t *jwks;   /* E_LOCAL / E_REMOTE */
    char *jwks_uri;    /* E_DISCOVERY: NULL when the document had none */
    char *doc;         /* E_DISCOVERY: the document as received (served as AS metadata) */
    size_t doc_len;
    bool have;         /* data present (possibly expired) */
    uint64_t expires_at;
    uint64_t last_fetch_start;
    size_t variant;        /* E_DISCOVERY: the well-known URL the next fetch tries */
    uint64_t next_attempt; /* earliest next fetch after a failure */
    uint64_t used_at;
    fetch_t *fetch;    /* in flight, or NULL */
    bool kick;         /* a fetch is to be started from the timer */
    link_t kick_link;
    link_t waiters;    /* gw_mcp_auth_req_t waiting for this entry */
} entry_t;

struct fetch_s {
    gw_mcp_auth_t *a;
    entry_t *e;
    gw_upstream_req_t *up;
    int http_status;
    gw_buf_t body;
    char cache_control[128];
    size_t variant;    /* E_DISCOVERY: which well-known URL */
    bool any_answer;   /* E_DISCOVERY: some variant answered (4xx) */
};

struct gw_mcp_auth_s {
    uv_loop_t *loop;
    gw_upstream_pool_t *pool;
    uv_timer_t timer;
    gw_mcp_auth_opts_t o;
    link_t entries;
    size_t n_entries;
    link_t ready;      /* finished requests waiting for the timer to call back */
    link_t kicks;      /* entries whose fetch starts on the timer */
    bool closing;
};

struct gw_mcp_auth_req_s {
    link_t link;       /* in a->ready, or an entry's waiters, or alone */
    gw_mcp_auth_t *a;
    const gw_mcp_route_t *route;
    int kind;
    gw_mcp_auth_cb cb;
    void *ud;
    gw_buf_t token;    /* SECRET: wiped when freed */
    gw_str_t *req_scopes;
    size_t n_req_scopes;
    char *req_scope_text;
    gw_buf_t client_id;
    bool retried;      /* the unknown-kid refetch was done */
    /* the outcome */
    int status;
    gw_jwt_claims_t claims;
    bool have_claims;
    gw_buf_t www;
    gw_buf_t body;
    gw_http_header_t headers[2];
    size_t n_headers;
};

static const gw_upstream_callbacks_t fetch_cbs;

static uint64_t now_ms(gw_mcp_auth_t *a)
{
    return uv_now(a->loop);
}

static void wipe_buf(gw_buf_t *b)
{
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->cap);
    gw_buf_free(b);
}

/* ---- URLs ------------------------------------------------------------------------------------ */

typedef struct {
    bool tls;
    gw_str_t origin;    /* scheme://authority as written */
    gw_str_t host;      /* without brackets */
    uint16_t port;
    gw_str_t path;      /* from the first '/' up to '?' or '#'; may be empty */
    gw_str_t query;     /* with its '?', up to '#'; may be empty */
} url_t;

static bool starts_case(gw_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len >= n && gw_str_case_eq(gw_str(s.base, n), gw_str(lit, n));
}

/* Absolute http(s) URL without userinfo; the host must be a plain name or IP literal. */
static int parse_url(gw_str_t s, url_t *u)
{
    memset(u, 0, sizeof(*u));
    if (s.len == 0 || s.len > GW_MCP_AUTH_MAX_URL)
        return GW_EINVAL;
    size_t i;
    if (starts_case(s, "https://")) {
        u->tls = true;
        i = 8;
    } else if (starts_case(s, "http://")) {
        i = 7;
    } else {
        return GW_EINVAL;
    }
    size_t a0 = i;
    while (i < s.len && s.base[i] != '/' && s.base[i] != '?' && s.base[i] != '#')
        i++;
    gw_str_t auth = gw_str(s.base + a0, i - a0);
    u->origin = gw_str(s.base, i);
    if (auth.len == 0)
        return GW_EINVAL;
    for (size_t k = 0; k < auth.len; k++) {
        unsigned char c = (unsigned char)auth.base[k];
        if (c <= 0x20 || c >= 0x7f || c == '@' || c == '\\')
            return GW_EINVAL;
    }
    size_t hend = auth.len;
    if (auth.base[0] == '[') {
        const char *rb = memchr(auth.base, ']', auth.len);
        if (rb == NULL)
            return GW_EINVAL;
        u->host = gw_str(auth.base + 1, (size_t)(rb - auth.base) - 1);
        hend = (size_t)(rb - auth.base) + 1;
        if (hend < auth.len && auth.base[hend] != ':')
            return GW_EINVAL;
    } else {
        const char *colon = memchr(auth.base, ':', auth.len);
        hend = colon ? (size_t)(colon - auth.base) : auth.len;
        u->host = gw_str(auth.base, hend);
    }
    if (u->host.len == 0)
        return GW_EINVAL;
    u->port = u->tls ? 443 : 80;
    if (hend < auth.len) {
        size_t p = hend + 1;
        if (p == auth.len || auth.len - p > 5)
            return GW_EINVAL;
        unsigned v = 0;
        for (; p < auth.len; p++) {
            if (auth.base[p] < '0' || auth.base[p] > '9')
                return GW_EINVAL;
            v = v * 10 + (unsigned)(auth.base[p] - '0');
        }
        if (v == 0 || v > 65535)
            return GW_EINVAL;
        u->port = (uint16_t)v;
    }
    size_t p0 = i;
    while (i < s.len && s.base[i] != '?' && s.base[i] != '#')
        i++;
    u->path = gw_str(s.base + p0, i - p0);
    size_t q0 = i;
    if (i < s.len && s.base[i] == '?')
        while (i < s.len && s.base[i] != '#')
            i++;
    u->query = gw_str(s.base + q0, i - q0);
    for (size_t k = p0; k < i; k++) {
        unsigned char c = (unsigned char)s.base[k];
        if (c <= 0x20 || c >= 0x7f)
            return GW_EINVAL;
    }
    return GW_OK;
}

static gw_str_t trim_slash(gw_str_t p)
{
    while (p.len > 0 && p.base[p.len - 1] == '/')
        p.len--;
    return p;
}

int gw_mcp_auth_resource_metadata_url(const gw_mcp_route_t *route, gw_buf_t *out)
{
    if (route == NULL || route->oauth == NULL || route->oauth->resource == NULL)
        return GW_EINVAL;
    url_t u;
    if (parse_url(gw_str_c(route->oauth->resource), &u) != GW_OK)
        return GW_EINVAL;
    size_t saved = out->len;
    int rc = gw_buf_append_str(out, u.origin);
    if (rc == GW_OK)
        rc = gw_buf_append_lit(out, PRM_PATH);
    if (rc == GW_OK)
        rc = gw_buf_append_str(out, trim_slash(u.path));
    if (rc != GW_OK)
        out->len = saved;
    return rc;
}

/* ---- extraction ------------------------------------------------------------------------------ */

int gw_mcp_auth_bearer(const gw_http_header_t *h, size_t n, gw_str_t *token)
{
    const gw_http_header_t *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!gw_str_case_eq_lit(h[i].name, "authorization"))
            continue;
        if (found != NULL)
            return GW_EINVAL; /* two credentials: which one was meant is anyone's guess */
        found = &h[i];
    }
    if (found == NULL)
        return GW_DONE;
    gw_str_t v = found->value;
    size_t i = 0;
    while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t'))
        i++;
    v = gw_str(v.base + i, v.len - i);
    if (v.len < 6 || !gw_str_case_eq(gw_str(v.base, 6), GW_STR("bearer")))
        return GW_DONE;
    if (v.len == 6)
        return GW_EINVAL;
    if (v.base[6] != ' ' && v.base[6] != '\t')
        return GW_DONE; /* "Bearerx": another scheme */
    i = 6;
    while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t'))
        i++;
    gw_str_t t = gw_str(v.base + i, v.len - i);
    while (t.len > 0 && (t.base[t.len - 1] == ' ' || t.base[t.len - 1] == '\t'))
        t.len--;
    if (t.len == 0)
        return GW_EINVAL;
    for (size_t k = 0; k < t.len; k++)
        if (t.base[k] == ' ' || t.base[k] == '\t' || t.base[k] == ',')
            return GW_EINVAL;
    *token = t;
    return GW_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int pct_decode(gw_str_t s, gw_buf_t *out)
{
    size_t saved = out->len;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.base[i];
        if (c == '%') {
            int hi = i + 2 < s.len ? hexval(s.base[i + 1]) : -1;
            int lo = i + 2 < s.len ? hexval(s.base[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                out->len = saved;
                return GW_EINVAL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        int rc = gw_buf_append_byte(out, c);
        if (rc != GW_OK) {
            out->len = saved;
            return rc;
        }
    }
    return GW_OK;
}

/* Calls fn for each "name=value" of a query string (without '?'); stops when fn returns true. */
typedef bool (*param_fn)(gw_str_t raw_name, gw_str_t raw_value, size_t start, size_t end, void *ud);

static void each_param(gw_str_t q, param_fn fn, void *ud)
{
    size_t i = 0;
    while (i <= q.len) {
        size_t s = i;
        while (i < q.len && q.base[i] != '&')
            i++;
        gw_str_t pair = gw_str(q.base + s, i - s);
        const char *eq = pair.len ? memchr(pair.base, '=', pair.len) : NULL;
        gw_str_t name = eq ? gw_str(pair.base, (size_t)(eq - pair.base)) : pair;
        gw_str_t value = eq ? gw_str(eq + 1, pair.len - name.len - 1) : GW_STR_NULL;
        if (pair.len > 0 && fn(name, value, s, i, ud))
            return;
        i++;
    }
}

static gw_str_t query_of(gw_str_t target)
{
    size_t i = 0;
    while (i < target.len && target.base[i] != '?' && target.base[i] != '#')
        i++;
    if (i == target.len || target.base[i] == '#')
        return GW_STR_NULL;
    size_t s = ++i;
    while (i < target.len && target.base[i] != '#')
        i++;
    return gw_str(target.base + s, i - s);
}

/* Whether the raw (percent-encoded) name decodes to want. */
static bool name_is(gw_str_t raw, gw_str_t want)
{
    if (raw.len < want.len || raw.len > 3 * want.len)
        return false;
    gw_buf_t b;
    gw_buf_init(&b, want.len);
    bool eq = pct_decode(raw, &b) == GW_OK && gw_str_eq(gw_buf_str(&b), want);
    gw_buf_free(&b);
    return eq;
}

typedef struct {
    gw_str_t name;
    gw_buf_t *out;
    int rc;
} qp_find_t;

static bool qp_find(gw_str_t raw_name, gw_str_t raw_value, size_t start, size_t end, void *ud)
{
    qp_find_t *f = ud;
    if (!name_is(raw_name, f->name))
        return false;
    f->rc = pct_decode(raw_value, f->out);
    return true;
}

int gw_mcp_auth_query_param(gw_str_t target, gw_str_t name, gw_buf_t *out)
{
    if (name.len == 0)
        return GW_DONE;
    qp_find_t f = {name, out, GW_DONE};
    each_param(query_of(target), qp_find, &f);
    return f.rc;
}

int gw_mcp_auth_cookie(gw_str_t h, gw_str_t name, gw_str_t *value)
{
    size_t i = 0;
    while (i < h.len) {
        while (i < h.len && (h.base[i] == ' ' || h.base[i] == '\t' || h.base[i] == ';'))
            i++;
        size_t s = i;
        while (i < h.len && h.base[i] != ';')
            i++;
        gw_str_t pair = gw_str(h.base + s, i - s);
        while (pair.len && (pair.base[pair.len - 1] == ' ' || pair.base[pair.len - 1] == '\t'))
            pair.len--;
        const char *eq = pair.len ? memchr(pair.base, '=', pair.len) : NULL;
        if (eq == NULL)
            continue;
        gw_str_t n = gw_str(pair.base, (size_t)(eq - pair.base));
        while (n.len && (n.base[n.len - 1] == ' ' || n.base[n.len - 1] == '\t'))
            n.len--;
        if (!gw_str_eq(n, name) || name.len == 0)
            continue;
        gw_str_t v = gw_str(eq + 1, pair.len - (size_t)(eq + 1 - pair.base));
        while (v.len && (v.base[0] == ' ' || v.base[0] == '\t'))
            v = gw_str(v.base + 1, v.len - 1);
        if (v.len >= 2 && v.base[0] == '"' && v.base[v.len - 1] == '"')
            v = gw_str(v.base + 1, v.len - 2);
        *value = v;
        return GW_OK;
    }
    return GW_DONE;
}

/* ---- Cache-Control --------------------------------------------------------------------------- */

uint64_t gw_mcp_auth_cache_ttl(gw_str_t cc, uint64_t default_ms, uint64_t min_ms)
{
    uint64_t ttl = default_ms;
    size_t i = 0;
    while (i < cc.len) {
        while (i < cc.len && (cc.base[i] == ' ' || cc.base[i] == '\t' || cc.base[i] == ','))
            i++;
        size_t s = i;
        while (i < cc.len && cc.base[i] != ',')
            i++;
        gw_str_t d = gw_str(cc.base + s, i - s);
        while (d.len && (d.base[d.len - 1] == ' ' || d.base[d.len - 1] == '\t'))
            d.len--;
        if (gw_str_case_eq_lit(d, "no-store") || gw_str_case_eq_lit(d, "no-cache")) {
            ttl = 0;
            break;
        }
        if (d.len > 8 && gw_str_case_eq(gw_str(d.base, 8), GW_STR("max-age="))) {
            uint64_t v = 0;
            size_t k = 8;
            if (k < d.len && d.base[k] == '"')
                k++;
            bool digits = false;
            for (; k < d.len && d.base[k] >= '0' && d.base[k] <= '9'; k++) {
                digits = true;
                if (v < 100000000ull) /* saturate: anything this large is clamped anyway */
                    v = v * 10 + (uint64_t)(d.base[k] - '0');
            }
            if (digits)
                ttl = v * 1000;
        }
    }
    if (ttl < min_ms)
        ttl = min_ms;
    if (ttl > GW_MCP_AUTH_MAX_TTL_MS)
        ttl = GW_MCP_AUTH_MAX_TTL_MS;
    return ttl;
}

/* ---- discovery documents --------------------------------------------------------------------- */

static int json_string_member(gw_str_t doc, const char *key, gw_buf_t *out)
{
    gw_str_t raw;
    int rc = gw_json_object_get(doc, gw_str_c(key), &raw);
    if (rc != GW_OK)
        return rc == GW_DONE ? GW_DONE : GW_EINVAL;
    if (gw_json_type(raw) != GW_JSON_STRING)
        return GW_EINVAL;
    return gw_json_string_unescape(raw, out);
}

int gw_mcp_auth_parse_server_metadata(gw_str_t doc, gw_str_t issuer, gw_buf_t *jwks_uri)
{
    if (doc.len > GW_MCP_AUTH_MAX_METADATA)
        return GW_TOOBIG;
    if (gw_json_validate(doc.base, doc.len, 16, NULL) != GW_OK)
        return GW_EINVAL;
    if (gw_json_type(doc) != GW_JSON_OBJECT)
        return GW_EINVAL;
    gw_buf_t iss;
    gw_buf_init(&iss, GW_MCP_AUTH_MAX_URL);
    int rc = json_string_member(doc, "issuer", &iss);
    /* RFC 8414 §3.3: a document naming another issuer must not be used (mix-up attacks). One
     * trailing '/' of difference is forgiven: IdPs and configurations disagree on it. */
    bool same = rc == GW_OK && gw_str_eq(trim_slash(gw_buf_str(&iss)), trim_slash(issuer));
    gw_buf_free(&iss);
    if (!same)
        return rc == GW_TOOBIG ? GW_TOOBIG : GW_EINVAL;
    size_t saved = jwks_uri->len;
    gw_buf_t u;
    gw_buf_init(&u, GW_MCP_AUTH_MAX_URL);
    rc = json_string_member(doc, "jwks_uri", &u);
    if (rc == GW_OK) {
        url_t pu;
        if (parse_url(gw_buf_str(&u), &pu) != GW_OK)
            rc = GW_EINVAL;
        else
            rc = gw_buf_append_str(jwks_uri, gw_buf_str(&u));
    }
    gw_buf_free(&u);
    if (rc != GW_OK && rc != GW_DONE)
        jwks_uri->len = saved;
    return rc;
}

/* ---- requests: completion -------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void arm(gw_mcp_auth_t *a)
{
    if (!a->closing && !uv_is_active((uv_handle_t *)&a->timer))
        uv_timer_start(&a->timer, on_timer, 0, 0);
}

static void req_free(gw_mcp_auth_req_t *r)
{
    link_remove(&r->link);
    wipe_buf(&r->token);
    wipe_buf(&r->client_id);
    free(r->req_scopes);
    free(r->req_scope_text);
    gw_jwt_claims_free(&r->claims);
    gw_buf_free(&r->www);
    gw_buf_free(&r->body);
    free(r);
}

static void finish(gw_mcp_auth_req_t *r)
{
    link_remove(&r->link);
    list_push_back(&r->a->ready, &r->link);
    arm(r->a);
}

static void json_body(gw_mcp_auth_req_t *r, const char *error, const char *description)
{
    gw_buf_reset(&r->body);
    gw_buf_append_lit(&r->body, "{\"error\":");
    gw_json_append_string(&r->body, error, strlen(error));
    gw_buf_append_lit(&r->body, ",\"error_description\":");
    gw_json_append_string(&r->body, description, strlen(description));
    gw_buf_append_lit(&r->body, "}");
}

static void scopes_joined(const gw_mcp_oauth_t *o, gw_buf_t *out)
{
    for (size_t i = 0; i < o->n_scopes_supported; i++) {
        if (i)
            gw_buf_append_byte(out, ' ');
        gw_buf_append(out, o->scopes_supported[i], strlen(o->scopes_supported[i]));
    }
}

/* A Bearer challenge answer. scope: the scope= parameter. */
static void fail_bearer(gw_mcp_auth_req_t *r, int status, gw_bearer_error_t err, gw_str_t scope, const char *body_error,
                        const char *description)
{
    gw_buf_t url;
    gw_buf_init(&url, GW_MCP_AUTH_MAX_URL + 64);
    (void)gw_mcp_auth_resource_metadata_url(r->route, &url);
    gw_str_t desc = err == GW_BEARER_ERROR_NONE ? GW_STR_NULL : gw_str_c(description);
    gw_buf_reset(&r->www);
    if (gw_jwt_www_authenticate(&r->www, gw_buf_str(&url), err, scope, desc) != GW_OK) {
        /* A scope or URL the header cannot carry (control bytes in the configuration): the
         * challenge without them still tells the client what happened. */
        (void)gw_jwt_www_authenticate(&r->www, GW_STR_NULL, err, GW_STR_NULL, desc);
    }
    gw_buf_free(&url);
    r->status = status;
    json_body(r, body_error, description);
    r->headers[0] = (gw_http_header_t){GW_STR("WWW-Authenticate"), gw_buf_str(&r->www)};
    r->n_headers = 1;
    finish(r);
}

static void fail_plain(gw_mcp_auth_req_t *r, int status, const char *www, const char *body_error,
                       const char *description)
{
    r->status = status;
    json_body(r, body_error, description);
    r->n_headers = 0;
    if (www != NULL) {
        gw_buf_reset(&r->www);
        gw_buf_append(&r->www, www, strlen(www));
        r->headers[0] = (gw_http_header_t){GW_STR("WWW-Authenticate"), gw_buf_str(&r->www)};
        r->n_headers = 1;
    }
    finish(r);
}

static void fail_unavailable(gw_mcp_auth_req_t *r)
{
    fail_plain(r, 503, NULL, "temporarily_unavailable", "The keys of the authorization server cannot be obtained");
}

static void fail_token(gw_mcp_auth_req_t *r, int jwt_status)
{
    gw_buf_t scope;
    gw_buf_init(&scope, GW_BUF_UNLIMITED);
    scopes_joined(r->route->oauth, &scope);
    /* Only the expiry of a validly signed token is told apart: it tells the client to refresh,
     * and it says nothing a forger could use (gw_jwt checks the signature before any claim). */
    const char *d = jwt_status == GW_JWT_EEXPIRED ? "The access token expired" : "The access token is invalid";
    fail_bearer(r, 401, GW_BEARER_ERROR_INVALID_TOKEN, gw_buf_str(&scope), "invalid_token", d);
    gw_buf_free(&scope);
}

static void allow(gw_mcp_auth_req_t *r)
{
    r->status = 0;
    r->n_headers = 0;
    finish(r);
}

static void deliver(gw_mcp_auth_req_t *r)
{
    gw_mcp_auth_result_t res = {
        .status = r->status,
        .client_id = gw_buf_str(&r->client_id),
        .headers = r->n_headers ? r->headers : NULL,
        .n_headers = r->n_headers,
    };
    if (r->status == 0 && r->have_claims) {
        res.subject = r->claims.subject;
        res.scopes = r->claims.scopes;
        res.n_scopes = r->claims.n_scopes;
    }
    if (r->status != 0) {
        res.content_type = GW_STR("application/json");
        res.body = gw_buf_str(&r->body);
    }
    r->cb(r->ud, &res);
}

/* ---- cache entries --------------------------------------------------------------------------- */

static void entry_free(gw_mcp_auth_t *a, entry_t *e)
{
    link_remove(&e->link);
    link_remove(&e->kick_link);
    a->n_entries--;
    gw_jwks_unref(e->jwks);
    free(e->route);
    free(e->src);
    free(e->jwks_uri);
    free(e->doc);
    free(e);
}

static entry_t *entry_get(gw_mcp_auth_t *a, int kind, const char *route, gw_str_t src)
{
    uint64_t now = now_ms(a);
    for (link_t *l = a->entries.next; l != &a->entries; l = l->next) {
        entry_t *e = GW_CONTAINER_OF(l, entry_t, link);
        if (e->kind == kind && strcmp(e->route, route) == 0 && gw_str_eq(gw_str(e->src, e->src_len), src)) {
            e->used_at = now;
            return e;
        }
    }
    if (a->n_entries >= GW_MCP_AUTH_MAX_ENTRIES) {
        entry_t *victim = NULL;
        for (link_t *l = a->entries.next; l != &a->entries; l = l->next) {
            entry_t *e = GW_CONTAINER_OF(l, entry_t, link);
            if (e->fetch == NULL && list_empty(&e->waiters) && (victim == NULL || e->used_at < victim->used_at))
                victim = e;
        }
        if (victim == NULL)
            return NULL; /* every entry is busy: bounded, so the caller answers 503 */
        entry_free(a, victim);
    }
    entry_t *e = gw_calloc(1, sizeof(*e));
    e->kind = kind;
    e->route = gw_strdup(route);
    e->src = gw_strndup(src.base, src.len);
    e->src_len = src.len;
    e->used_at = now;
    list_init(&e->waiters);
    list_init(&e->kick_link);
    list_push_back(&a->entries, &e->link);
    a->n_entries++;
    if (kind == E_LOCAL) {
        size_t skipped = 0;
        if (gw_jwks_parse(src.base, src.len, &e->jwks, &skipped) == GW_OK) {
            e->have = true;
            e->expires_at = UINT64_MAX;
            if (skipped)
                gw_log_debug("mcp oauth: route %s: %zu unusable key(s) skipped in localJWKS", route, skipped);
        } else {
            gw_log_warn("mcp oauth: route %s: localJWKS cannot be used", route);
            e->next_attempt = UINT64_MAX;
        }
    }
    return e;
}

typedef enum { ACQ_READY, ACQ_WAIT, ACQ_FAIL } acquire_t;

static void fetch_start(gw_mcp_auth_t *a, entry_t *e);

/* Makes the entry's data usable for r: now (READY), after a fetch (WAIT: r is queued on the entry
 * and advanced again when it ends) or not at all (FAIL). */
static acquire_t acquire(gw_mcp_auth_req_t *r, entry_t *e, bool force)
{
    gw_mcp_auth_t *a = r->a;
    uint64_t now = now_ms(a);
    if (!force && e->have && now < e->expires_at)
        return ACQ_READY;
    if (e->fetch != NULL || e->kick || now >= e->next_attempt) {
        if (e->fetch == NULL && !e->kick)
            fetch_start(a, e);
        link_remove(&r->link);
        list_push_back(&e->waiters, &r->link);
        return ACQ_WAIT;
    }
    if (!force && e->have && (e->expires_at == UINT64_MAX || now < e->expires_at + GW_MCP_AUTH_MAX_STALE_MS))
        return ACQ_READY; /* the IdP is failing: yesterday's keys beat locking everyone out */
    return force && e->have ? ACQ_READY : ACQ_FAIL;
}

/* ---- fetching -------------------------------------------------------------------------------- */

static void advance(gw_mcp_auth_req_t *r);

/* The URL of a discovery variant, or false past the last one (RFC 8414 §3.1 path-inserted first,
 * then OIDC's path-inserted, then OIDC's and RFC 8414's appended forms, which some IdPs use). */
static bool discovery_url(gw_str_t issuer, size_t variant, gw_buf_t *out)
{
    url_t u;
    if (parse_url(issuer, &u) != GW_OK)
        return false;
    gw_str_t path = trim_slash(u.path);
    if (path.len == 0 && variant >= 2)
        return false; /* the appended forms equal the inserted ones */
    gw_buf_append_str(out, u.origin);
    switch (variant) {
    case 0: gw_buf_append_lit(out, ASM_PATH), gw_buf_append_str(out, path); break;
    case 1: gw_buf_append_lit(out, OIDC_PATH), gw_buf_append_str(out, path); break;
    case 2: gw_buf_append_str(out, path), gw_buf_append_lit(out, OIDC_PATH); break;
    case 3: gw_buf_append_str(out, path), gw_buf_append_lit(out, ASM_PATH); break;
    default: return false;
    }
    return true;
}

static void fetch_finish(fetch_t *f, bool ok);

static void fetch_send(fetch_t *f)
{
    gw_mcp_auth_t *a = f->a;
    entry_t *e = f->e;
    gw_buf_t url;
    gw_buf_init(&url, GW_MCP_AUTH_MAX_URL + 128);
    bool have_url = true;
    if (e->kind == E_DISCOVERY)
        have_url = discovery_url(gw_str(e->src, e->src_len), f->variant, &url);
    else
        gw_buf_append(&url, e->src, e->src_len);
    url_t u;
    if (!have_url || parse_url(gw_buf_str(&url), &u) != GW_OK) {
        gw_buf_free(&url);
        fetch_finish(f, false);
        return;
    }
    gw_buf_t path;
    gw_buf_init(&path, GW_BUF_UNLIMITED);
    if (u.path.len == 0)
        gw_buf_append_byte(&path, '/');
    gw_buf_append_str(&path, u.path);
    gw_buf_append_str(&path, u.query);
    gw_http_header_t h[2] = {
        {GW_STR("Accept"), GW_STR("application/json")},
        {GW_STR("User-Agent"), GW_STR("aigw")},
    };
    gw_upstream_target_t t = {.host = u.host, .port = u.port, .tls = u.tls};
    gw_upstream_request_t q = {.method = GW_STR("GET"), .path = gw_buf_str(&path), .headers = h, .n_headers = 2};
    gw_upstream_timeouts_t to = {
        .connect_ms = GW_MCP_AUTH_CONNECT_TIMEOUT_MS,
        .total_ms = a->o.total_timeout_ms,
        .idle_ms = a->o.total_timeout_ms,
    };
    f->http_status = 0;
    f->cache_control[0] = '\0';
    gw_buf_reset(&f->body);
    f->up = gw_upstream_send(a->pool, &t, &q, &to, &fetch_cbs, f);
    gw_buf_free(&path);
    gw_buf_free(&url);
    if (f->up == NULL)
        fetch_finish(f, false);
}

static void fetch_start(gw_mcp_auth_t *a, entry_t *e)
{
    /* Started from the timer, never from inside another fetch's callbacks or the caller's stack. */
    e->variant = 0;
    e->kick = true;
    list_push_back(&a->kicks, &e->kick_link);
    arm(a);
}

static void fetch_begin(gw_mcp_auth_t *a, entry_t *e)
{
    e->kick = false;
    fetch_t *f = gw_calloc(1, sizeof(*f));
    f->a = a;
    f->e = e;
    gw_buf_init(&f->body, e->kind == E_DISCOVERY ? GW_MCP_AUTH_MAX_METADATA : GW_JWKS_MAX_BYTES);
    e->fetch = f;
    f->variant = e->variant;
    if (f->variant == 0)
        e->last_fetch_start = now_ms(a);
    fetch_send(f);
}

static bool fetch_accept(fetch_t *f)
{
    entry_t *e = f->e;
    gw_mcp_auth_t *a = f->a;
    uint64_t now = now_ms(a);
    gw_str_t body = gw_buf_str(&f->body);
    if (e->kind == E_REMOTE) {
        gw_jwks_t *k = NULL;
        size_t skipped = 0;
        if (gw_jwks_parse(body.base ? body.base : "", body.len, &k, &skipped) != GW_OK) {
            gw_log_warn("mcp oauth: route %s: the JWKS at %s is not a usable key set", e->route, e->src);
            return false;
        }
        gw_jwks_unref(e->jwks);
        e->jwks = k;
        e->expires_at = now + gw_mcp_auth_cache_ttl(gw_str_c(f->cache_control), a->o.jwks_default_ttl_ms,
                                                    a->o.min_ttl_ms);
        e->have = true;
        return true;
    }
    gw_buf_t uri;
    gw_buf_init(&uri, GW_MCP_AUTH_MAX_URL);
    int rc = gw_mcp_auth_parse_server_metadata(body, gw_str(e->src, e->src_len), &uri);
    if (rc != GW_OK && rc != GW_DONE) {
        gw_buf_free(&uri);
        return false;
    }
    free(e->jwks_uri);
    e->jwks_uri = rc == GW_OK ? gw_strndup(uri.data, uri.len) : NULL;
    gw_buf_free(&uri);
    free(e->doc);
    e->doc = gw_strndup(body.base, body.len);
    e->doc_len = body.len;
    e->expires_at = now + gw_mcp_auth_cache_ttl(gw_str_c(f->cache_control), a->o.meta_default_ttl_ms, a->o.min_ttl_ms);
    e->have = true;
    if (e->jwks_uri == NULL)
        gw_log_warn("mcp oauth: route %s: the metadata of issuer %s has no jwks_uri", e->route, e->src);
    return true;
}

static void fetch_finish(fetch_t *f, bool ok)
{
    gw_mcp_auth_t *a = f->a;
    entry_t *e = f->e;
    e->fetch = NULL;
    if (!ok)
        e->next_attempt = now_ms(a) + a->o.retry_ms;
    gw_buf_free(&f->body);
    free(f);
    link_t w;
    list_move(&e->waiters, &w);
    while (!list_empty(&w)) {
        gw_mcp_auth_req_t *r = GW_CONTAINER_OF(w.next, gw_mcp_auth_req_t, link);
        link_remove(&r->link);
        advance(r);
    }
}

static int fetch_on_head(void *ud, int status, const gw_http_header_t *headers, size_t n_headers)
{
    fetch_t *f = ud;
    f->http_status = status;
    gw_str_t cc = gw_http_header_find(headers, n_headers, GW_STR("cache-control"));
    if (cc.len && cc.len < sizeof(f->cache_control)) {
        memcpy(f->cache_control, cc.base, cc.len);
        f->cache_control[cc.len] = '\0';
    }
    return GW_OK;
}

static int fetch_on_body(void *ud, const char *p, size_t n)
{
    fetch_t *f = ud;
    if (f->http_status != 200)
        return GW_OK; /* not kept; only the status matters */
    if (gw_buf_append(&f->body, p, n) != GW_OK) {
        gw_log_warn("mcp oauth: route %s: the document at %s is too large", f->e->route, f->e->src);
        f->up = NULL; /* returning an error cancels it: no on_done */
        fetch_finish(f, false);
        return GW_ERROR;
    }
    return GW_OK;
}

static void fetch_on_done(void *ud, int status, const char *detail)
{
    fetch_t *f = ud;
    entry_t *e = f->e;
    f->up = NULL;
    if (status != GW_UPSTREAM_OK) {
        gw_log_warn("mcp oauth: route %s: fetching for %s failed: %s", e->route, e->src, detail ? detail : "error");
        fetch_finish(f, false);
        return;
    }
    if (f->http_status == 200 && fetch_accept(f)) {
        fetch_finish(f, true);
        return;
    }
    if (e->kind == E_DISCOVERY && (f->http_status == 200 || (f->http_status >= 400 && f->http_status < 500))) {
        /* Not this well-known location: try the next one. From the timer, not from here. */
        f->variant++;
        gw_buf_t probe;
        gw_buf_init(&probe, GW_BUF_UNLIMITED);
        bool more = discovery_url(gw_str(e->src, e->src_len), f->variant, &probe);
        gw_buf_free(&probe);
        if (more) {
            gw_mcp_auth_t *a = f->a;
            e->fetch = NULL;
            e->variant = f->variant;
            gw_buf_free(&f->body);
            free(f);
            e->kick = true;
            list_push_back(&a->kicks, &e->kick_link);
            arm(a);
            return;
        }
    }
    gw_log_warn("mcp oauth: route %s: %s answered HTTP %d", e->route, e->src, f->http_status);
    fetch_finish(f, false);
}

static const gw_upstream_callbacks_t fetch_cbs = {
    .on_head = fetch_on_head,
    .on_body = fetch_on_body,
    .on_done = fetch_on_done,
};

/* ---- verification ---------------------------------------------------------------------------- */

/* The lower-cased scheme and host of a URL followed by the rest, into out (RFC 8707 canonical
 * form compares those case-insensitively). */
static void canonical_url(gw_str_t s, gw_buf_t *out)
{
    url_t u;
    if (parse_url(s, &u) != GW_OK) {
        gw_buf_append_str(out, s);
        return;
    }
    for (size_t i = 0; i < u.origin.len; i++) {
        char c = u.origin.base[i];
        gw_buf_append_byte(out, (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
    }
    gw_buf_append_str(out, gw_str(u.origin.base + u.origin.len, s.len - u.origin.len));
}

static void verify_with(gw_mcp_auth_req_t *r, entry_t *e)
{
    gw_mcp_auth_t *a = r->a;
    const gw_mcp_oauth_t *o = r->route->oauth;
    gw_str_t auds[40];
    size_t n_auds = 0;
    gw_buf_t canon;
    gw_buf_init(&canon, GW_BUF_UNLIMITED);
    if (o->n_audiences > 0) {
        for (size_t i = 0; i < o->n_audiences && n_auds < GW_ARRAY_SIZE(auds); i++)
            auds[n_auds++] = gw_str_c(o->audiences[i]);
    } else if (o->resource != NULL && o->resource[0] != '\0') {
        /* RFC 8707: the token must name this resource. Written with or without the trailing
         * slash, and with any case of scheme and host, it is the same resource. */
        gw_str_t res = gw_str_c(o->resource);
        canonical_url(trim_slash(res), &canon);
        gw_buf_append_byte(&canon, '/');
        gw_str_t c = gw_buf_str(&canon);
        auds[n_auds++] = res;
        auds[n_auds++] = trim_slash(res);
        auds[n_auds++] = gw_str(c.base, c.len - 1);
        auds[n_auds++] = c;
    }
    gw_jwt_verify_opts_t vo = {
        .issuer = gw_str_c(o->issuer),
        .audiences = auds,
        .n_audiences = n_auds,
        .required_scopes = r->req_scopes,
        .n_required_scopes = r->n_req_scopes,
        .now = (int64_t)time(NULL),
        .skew = -1,
    };
    int rc = n_auds == 0 ? GW_JWT_EAUDIENCE : gw_jwt_verify(e->jwks, gw_buf_str(&r->token), &vo, &r->claims);
    gw_buf_free(&canon);
    if (rc == GW_JWT_EUNKNOWN_KEY && e->kind == E_REMOTE && !r->retried) {
        /* Key rotation: refetch once, at most every refetch_interval per key set, and let every
         * check that meets the same unknown kid meanwhile wait for that one fetch. */
        uint64_t now = now_ms(a);
        if (e->fetch != NULL || e->kick || now >= e->last_fetch_start + a->o.refetch_interval_ms) {
            r->retried = true;
            if (acquire(r, e, true) == ACQ_WAIT)
                return;
            rc = gw_jwt_verify(e->jwks, gw_buf_str(&r->token), &vo, &r->claims);
        }
    }
    if (rc == GW_OK) {
        r->have_claims = true;
        allow(r);
        return;
    }
    if (rc == GW_JWT_ESCOPE) {
        gw_jwt_claims_free(&r->claims);
        gw_buf_t scope;
        gw_buf_init(&scope, GW_BUF_UNLIMITED);
        for (size_t i = 0; i < r->n_req_scopes; i++) {
            if (i)
                gw_buf_append_byte(&scope, ' ');
            gw_buf_append_str(&scope, r->req_scopes[i]);
        }
        fail_bearer(r, 403, GW_BEARER_ERROR_INSUFFICIENT_SCOPE, gw_buf_str(&scope), "insufficient_scope",
                    "The access token lacks a required scope");
        gw_buf_free(&scope);
        return;
    }
    if (rc == GW_ERROR) {
        gw_log_warn("mcp oauth: route %s: token verification failed inside OpenSSL", r->route->name);
    }
    fail_token(r, rc);
}

/* ---- metadata documents ---------------------------------------------------------------------- */

static void json_key(gw_buf_t *out, bool *first, const char *key)
{
    gw_buf_append_byte(out, *first ? '{' : ',');
    *first = false;
    gw_json_append_string(out, key, strlen(key));
    gw_buf_append_byte(out, ':');
}

static void json_kv(gw_buf_t *out, bool *first, const char *key, const char *value, size_t len)
{
    json_key(out, first, key);
    gw_json_append_string(out, value, len);
}

static void json_kv_opt(gw_buf_t *out, bool *first, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0')
        json_kv(out, first, key, value, strlen(value));
}

static void json_kv_list(gw_buf_t *out, bool *first, const char *key, const char *const *items, size_t n)
{
    if (n == 0)
        return;
    json_key(out, first, key);
    gw_buf_append_byte(out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            gw_buf_append_byte(out, ',');
        gw_json_append_string(out, items[i], strlen(items[i]));
    }
    gw_buf_append_byte(out, ']');
}

int gw_mcp_auth_resource_metadata_json(const gw_mcp_route_t *route, gw_buf_t *out)
{
    if (route == NULL || route->oauth == NULL)
        return GW_EINVAL;
    const gw_mcp_oauth_t *o = route->oauth;
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    bool first = true;
    const char *issuer = o->issuer ? o->issuer : "";
    const char *header = "header";
    json_kv_list(&b, &first, "authorization_servers", &issuer, 1);
    json_kv_list(&b, &first, "bearer_methods_supported", &header, 1);
    json_kv(&b, &first, "resource", o->resource ? o->resource : "", o->resource ? strlen(o->resource) : 0);
    json_kv_opt(&b, &first, "resource_documentation", o->resource_documentation);
    json_kv_opt(&b, &first, "resource_name", o->resource_name);
    json_kv_opt(&b, &first, "resource_policy_uri", o->resource_policy_uri);
    json_kv_list(&b, &first, "resource_signing_alg_values_supported", (const char *const *)o->signing_algs_supported,
                 o->n_signing_algs_supported);
    json_kv_list(&b, &first, "scopes_supported", (const char *const *)o->scopes_supported, o->n_scopes_supported);
    gw_buf_append_byte(&b, '}');
    int rc = gw_buf_append_str(out, gw_buf_str(&b));
    gw_buf_free(&b);
    return rc;
}

/* The reference's hard-coded Keycloak-shaped document, for an issuer that cannot be reached. */
static void fallback_server_metadata(const gw_mcp_oauth_t *o, gw_buf_t *out)
{
    gw_str_t iss = trim_slash(gw_str_c(o->issuer));
    gw_buf_t u;
    gw_buf_init(&u, GW_BUF_UNLIMITED);
    bool first = true;
    static const char *const s256[] = {"S256"}, *const grants[] = {"authorization_code"}, *const codes[] = {"code"};
    static const char *const methods[] = {"client_secret_basic", "client_secret_post"};
    gw_buf_append_str(&u, iss), gw_buf_append_lit(&u, "/protocol/openid-connect/auth");
    json_kv(out, &first, "authorization_endpoint", u.data, u.len);
    json_kv_list(out, &first, "code_challenge_methods_supported", s256, 1);
    json_kv_list(out, &first, "grant_types_supported", grants, 1);
    json_kv(out, &first, "issuer", iss.base, iss.len);
    gw_buf_reset(&u), gw_buf_append_str(&u, iss), gw_buf_append_lit(&u, "/protocol/openid-connect/certs");
    json_kv(out, &first, "jwks_uri", u.data, u.len);
    json_kv_list(out, &first, "response_types_supported", codes, 1);
    json_kv_list(out, &first, "scopes_supported", (const char *const *)o->scopes_supported, o->n_scopes_supported);
    gw_buf_reset(&u), gw_buf_append_str(&u, iss), gw_buf_append_lit(&u, "/protocol/openid-connect/token");
    json_kv(out, &first, "token_endpoint", u.data, u.len);
    json_kv_list(out, &first, "token_endpoint_auth_methods_supported", methods, 2);
    gw_buf_append_byte(out, '}');
    gw_buf_free(&u);
}

static void serve_document(gw_mcp_auth_req_t *r)
{
    r->status = 200;
    r->headers[0] = (gw_http_header_t){GW_STR("Access-Control-Allow-Origin"), GW_STR("*")};
    r->n_headers = 1;
    finish(r);
}

static void serve_server_metadata(gw_mcp_auth_req_t *r)
{
    const gw_mcp_oauth_t *o = r->route->oauth;
    entry_t *d = entry_get(r->a, E_DISCOVERY, r->route->name, gw_str_c(o->issuer));
    acquire_t s = d ? acquire(r, d, false) : ACQ_FAIL;
    if (s == ACQ_WAIT)
        return;
    gw_buf_reset(&r->body);
    if (s == ACQ_READY && d->doc != NULL)
        gw_buf_append(&r->body, d->doc, d->doc_len);
    else
        fallback_server_metadata(o, &r->body);
    serve_document(r);
}

static void advance(gw_mcp_auth_req_t *r)
{
    gw_mcp_auth_t *a = r->a;
    const gw_mcp_route_t *route = r->route;
    const gw_mcp_oauth_t *o = route->oauth;
    if (r->kind == K_META_AUTH_SERVER) {
        serve_server_metadata(r);
        return;
    }
    if (o->jwks_json != NULL) {
        entry_t *e = entry_get(a, E_LOCAL, route->name, gw_str_c(o->jwks_json));
        if (e == NULL || !e->have)
            fail_unavailable(r);
        else
            verify_with(r, e);
        return;
    }
    char *uri;
    if (o->jwks_uri != NULL) {
        uri = gw_strdup(o->jwks_uri);
    } else {
        entry_t *d = entry_get(a, E_DISCOVERY, route->name, gw_str_c(o->issuer));
        acquire_t s = d ? acquire(r, d, false) : ACQ_FAIL;
        if (s == ACQ_WAIT)
            return;
        if (s == ACQ_FAIL || d->jwks_uri == NULL) {
            fail_unavailable(r);
            return;
        }
        uri = gw_strdup(d->jwks_uri); /* the next lookup may evict d */
    }
    entry_t *e = entry_get(a, E_REMOTE, route->name, gw_str_c(uri));
    free(uri);
    acquire_t s = e ? acquire(r, e, false) : ACQ_FAIL;
    if (s == ACQ_READY)
        verify_with(r, e);
    else if (s == ACQ_FAIL)
        fail_unavailable(r);
}

/* ---- API keys -------------------------------------------------------------------------------- */

/* Finds the client's key (first source present wins) and compares it with every configured key
 * through SHA-256 digests and CRYPTO_memcmp, so neither content nor length leaks through timing.
 * GW_OK with the client id appended, or GW_DONE. */
static int api_key_check(const gw_mcp_api_key_auth_t *k, const gw_http_req_t *req, gw_buf_t *client_id)
{
    gw_buf_t key;
    gw_buf_init(&key, GW_MCP_AUTH_MAX_API_KEY);
    bool found = false, bad = false;
    for (size_t i = 0; i < k->n_headers && !found; i++) {
        gw_str_t v = gw_http_header_find(req->headers, req->n_headers, gw_str_c(k->headers[i]));
        if (v.base == NULL)
            continue;
        found = true;
        if (v.len > 7 && gw_str_case_eq(gw_str(v.base, 7), GW_STR("bearer ")))
            v = gw_str(v.base + 7, v.len - 7);
        bad = gw_buf_append_str(&key, v) != GW_OK;
    }
    for (size_t i = 0; i < k->n_params && !found; i++) {
        int rc = gw_mcp_auth_query_param(req->target, gw_str_c(k->params[i]), &key);
        if (rc == GW_DONE)
            continue;
        found = true;
        bad = rc != GW_OK;
    }
    for (size_t i = 0; i < k->n_cookies && !found; i++) {
        for (size_t j = 0; j < req->n_headers && !found; j++) {
            gw_str_t v;
            if (!gw_str_case_eq_lit(req->headers[j].name, "cookie") ||
                gw_mcp_auth_cookie(req->headers[j].value, gw_str_c(k->cookies[i]), &v) != GW_OK)
                continue;
            found = true;
            bad = gw_buf_append_str(&key, v) != GW_OK;
        }
    }
    int result = GW_DONE;
    if (found && !bad && key.len > 0) {
        unsigned char got[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)key.data, key.len, got);
        size_t match = SIZE_MAX;
        for (size_t i = 0; i < k->n_creds; i++) {
            const char *ck = k->creds[i].key ? k->creds[i].key : "";
            SHA256((const unsigned char *)ck, strlen(ck), want);
            bool eq = CRYPTO_memcmp(got, want, sizeof(got)) == 0 && ck[0] != '\0';
            if (eq && match == SIZE_MAX)
                match = i;
        }
        OPENSSL_cleanse(got, sizeof(got));
        OPENSSL_cleanse(want, sizeof(want));
        if (match != SIZE_MAX) {
            const char *id = k->creds[match].client_id ? k->creds[match].client_id : "";
            gw_buf_append(client_id, id, strlen(id));
            result = GW_OK;
        }
    }
    wipe_buf(&key);
    return result;
}

/* ---- public API ------------------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
    gw_mcp_auth_t *a = t->data;
    while (!list_empty(&a->kicks)) {
        entry_t *e = GW_CONTAINER_OF(a->kicks.next, entry_t, kick_link);
        link_remove(&e->kick_link);
        fetch_begin(a, e);
    }
    /* Only what is ready now: a callback that starts another check gets it on a later turn. */
    link_t batch;
    list_move(&a->ready, &batch);
    while (!list_empty(&batch)) {
        gw_mcp_auth_req_t *r = GW_CONTAINER_OF(batch.next, gw_mcp_auth_req_t, link);
        link_remove(&r->link);
        deliver(r);
        req_free(r);
    }
}

static void opts_default(gw_mcp_auth_opts_t *o)
{
    o->jwks_default_ttl_ms = GW_MCP_AUTH_JWKS_DEFAULT_TTL_MS;
    o->meta_default_ttl_ms = GW_MCP_AUTH_META_DEFAULT_TTL_MS;
    o->min_ttl_ms = GW_MCP_AUTH_MIN_TTL_MS;
    o->refetch_interval_ms = GW_MCP_AUTH_REFETCH_INTERVAL_MS;
    o->retry_ms = GW_MCP_AUTH_RETRY_MS;
    o->total_timeout_ms = GW_MCP_AUTH_TOTAL_TIMEOUT_MS;
}

gw_mcp_auth_t *gw_mcp_auth_new(uv_loop_t *loop, gw_upstream_pool_t *pool)
{
    gw_mcp_auth_t *a = gw_calloc(1, sizeof(*a));
    a->loop = loop;
    a->pool = pool;
    opts_default(&a->o);
    list_init(&a->entries);
    list_init(&a->ready);
    list_init(&a->kicks);
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    return a;
}

void gw_mcp_auth_set_opts(gw_mcp_auth_t *a, const gw_mcp_auth_opts_t *o)
{
    opts_default(&a->o);
    if (o == NULL)
        return;
    if (o->jwks_default_ttl_ms)
        a->o.jwks_default_ttl_ms = o->jwks_default_ttl_ms;
    if (o->meta_default_ttl_ms)
        a->o.meta_default_ttl_ms = o->meta_default_ttl_ms;
    if (o->min_ttl_ms)
        a->o.min_ttl_ms = o->min_ttl_ms;
    if (o->refetch_interval_ms)
        a->o.refetch_interval_ms = o->refetch_interval_ms;
    if (o->retry_ms)
        a->o.retry_ms = o->retry_ms;
    if (o->total_timeout_ms)
        a->o.total_timeout_ms = o->total_timeout_ms;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void gw_mcp_auth_free(gw_mcp_auth_t *a)
{
    if (a == NULL)
        return;
    a->closing = true;
    uv_timer_stop(&a->timer);
    while (!list_empty(&a->entries)) {
        entry_t *e = GW_CONTAINER_OF(a->entries.next, entry_t, link);
        if (e->fetch != NULL) {
            if (e->fetch->up != NULL)
                gw_upstream_cancel(e->fetch->up);
            gw_buf_free(&e->fetch->body);
            free(e->fetch);
        }
        while (!list_empty(&e->waiters))
            req_free(GW_CONTAINER_OF(e->waiters.next, gw_mcp_auth_req_t, link));
        entry_free(a, e);
    }
    while (!list_empty(&a->ready))
        req_free(GW_CONTAINER_OF(a->ready.next, gw_mcp_auth_req_t, link));
    uv_close((uv_handle_t *)&a->timer, on_closed);
}

bool gw_mcp_auth_required(const gw_mcp_route_t *route)
{
    return route != NULL && (route->oauth != NULL || route->api_key_auth != NULL);
}

static gw_mcp_auth_req_t *req_new(gw_mcp_auth_t *a, const gw_mcp_route_t *route, int kind, gw_mcp_auth_cb cb, void *ud)
{
    gw_mcp_auth_req_t *r = gw_calloc(1, sizeof(*r));
    list_init(&r->link);
    r->a = a;
    r->route = route;
    r->kind = kind;
    r->cb = cb;
    r->ud = ud;
    gw_buf_init(&r->token, GW_JWT_MAX_TOKEN);
    gw_buf_init(&r->client_id, GW_BUF_UNLIMITED);
    gw_buf_init(&r->www, 8192);
    gw_buf_init(&r->body, GW_BUF_UNLIMITED);
    return r;
}

gw_mcp_auth_req_t *gw_mcp_auth_check_scopes(gw_mcp_auth_t *a, const gw_mcp_route_t *route, const gw_http_req_t *req,
                                            const gw_str_t *required_scopes, size_t n_required, gw_mcp_auth_cb cb,
                                            void *ud)
{
    gw_mcp_auth_req_t *r = req_new(a, route, K_CHECK, cb, ud);
    if (route->api_key_auth != NULL && api_key_check(route->api_key_auth, req, &r->client_id) != GW_OK) {
        fail_plain(r, 401, "ApiKey realm=\"aigw\"", "invalid_api_key", "A valid API key is required");
        return r;
    }
    if (route->oauth == NULL) {
        allow(r);
        return r;
    }
    gw_str_t tok;
    int rc = gw_mcp_auth_bearer(req->headers, req->n_headers, &tok);
    if (rc == GW_EINVAL) {
        fail_bearer(r, 400, GW_BEARER_ERROR_INVALID_REQUEST, GW_STR_NULL, "invalid_request",
                    "The Authorization header is malformed");
        return r;
    }
    if (rc != GW_OK) {
        gw_buf_t scope;
        gw_buf_init(&scope, GW_BUF_UNLIMITED);
        scopes_joined(route->oauth, &scope);
        fail_bearer(r, 401, GW_BEARER_ERROR_NONE, gw_buf_str(&scope), "invalid_request",
                    "No access token was provided in this request");
        gw_buf_free(&scope);
        return r;
    }
    if (gw_buf_append_str(&r->token, tok) != GW_OK) {
        fail_token(r, GW_TOOBIG);
        return r;
    }
    if (n_required > 0) {
        size_t total = 0;
        for (size_t i = 0; i < n_required; i++)
            total += required_scopes[i].len;
        r->req_scopes = gw_calloc(n_required, sizeof(gw_str_t));
        r->req_scope_text = gw_malloc(total + 1);
        size_t off = 0;
        for (size_t i = 0; i < n_required; i++) {
            if (required_scopes[i].len)
                memcpy(r->req_scope_text + off, required_scopes[i].base, required_scopes[i].len);
            r->req_scopes[i] = gw_str(r->req_scope_text + off, required_scopes[i].len);
            off += required_scopes[i].len;
        }
        r->n_req_scopes = n_required;
    }
    advance(r);
    return r;
}

gw_mcp_auth_req_t *gw_mcp_auth_check(gw_mcp_auth_t *a, const gw_mcp_route_t *route, const gw_http_req_t *req,
                                     gw_mcp_auth_cb cb, void *ud)
{
    return gw_mcp_auth_check_scopes(a, route, req, NULL, 0, cb, ud);
}

void gw_mcp_auth_cancel(gw_mcp_auth_req_t *r)
{
    if (r != NULL)
        req_free(r);
}

gw_mcp_auth_req_t *gw_mcp_auth_metadata(gw_mcp_auth_t *a, const gw_mcp_route_t *route, gw_mcp_well_known_t kind,
                                        gw_mcp_auth_cb cb, void *ud)
{
    gw_mcp_auth_req_t *r = req_new(a, route,
                                   kind == GW_MCP_WELL_KNOWN_AUTH_SERVER ? K_META_AUTH_SERVER : K_META_RESOURCE, cb, ud);
    if (route == NULL || route->oauth == NULL || kind == GW_MCP_WELL_KNOWN_NONE) {
        r->status = 404;
        json_body(r, "not_found", "No such metadata");
        finish(r);
        return r;
    }
    if (kind == GW_MCP_WELL_KNOWN_RESOURCE) {
        gw_mcp_auth_resource_metadata_json(route, &r->body);
        serve_document(r);
        return r;
    }
    advance(r);
    return r;
}

/* ---- well-known paths ------------------------------------------------------------------------ */

/* path == prefix + suffix, suffix non-empty and not "/". */
static bool is_prefixed(gw_str_t path, const char *prefix, gw_str_t suffix)
{
    size_t pl = strlen(prefix);
    suffix = trim_slash(suffix);
    if (suffix.len == 0 || suffix.base[0] != '/')
        return false;
    return path.len == pl + suffix.len && memcmp(path.base, prefix, pl) == 0 &&
           memcmp(path.base + pl, suffix.base, suffix.len) == 0;
}

const gw_mcp_route_t *gw_mcp_auth_well_known_route(const gw_config_t *c, gw_str_t path, gw_mcp_well_known_t *kind)
{
    *kind = GW_MCP_WELL_KNOWN_NONE;
    if (c == NULL)
        return NULL;
    const gw_mcp_route_t *first = NULL;
    for (size_t i = 0; i < c->n_mcp_routes; i++) {
        const gw_mcp_route_t *r = &c->mcp_routes[i];
        if (r->oauth == NULL)
            continue;
        if (first == NULL)
            first = r;
        gw_str_t rp = gw_str_c(r->path ? r->path : "/mcp");
        url_t u;
        gw_str_t res_path = GW_STR_NULL;
        if (r->oauth->resource && parse_url(gw_str_c(r->oauth->resource), &u) == GW_OK)
            res_path = u.path;
        if (is_prefixed(path, PRM_PATH, rp) || is_prefixed(path, PRM_PATH, res_path)) {
            *kind = GW_MCP_WELL_KNOWN_RESOURCE;
            return r;
        }
        if (is_prefixed(path, ASM_PATH, rp)) {
            *kind = GW_MCP_WELL_KNOWN_AUTH_SERVER;
            return r;
        }
    }
    if (first == NULL)
        return NULL;
    if (gw_str_eq_lit(path, PRM_PATH) || gw_str_eq_lit(path, PRM_PATH "/")) {
        *kind = GW_MCP_WELL_KNOWN_RESOURCE;
        return first;
    }
    if (gw_str_eq_lit(path, ASM_PATH) || gw_str_eq_lit(path, ASM_PATH "/")) {
        *kind = GW_MCP_WELL_KNOWN_AUTH_SERVER;
        return first;
    }
    return NULL;
}

/* ---- forwarding ------------------------------------------------------------------------------ */

static bool in_list(gw_str_t name, char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (gw_str_case_eq(name, gw_str_c(list[i])))
            return true;
    return false;
}

/* Appends the Cookie value without the named cookies. */
static void cookie_without(gw_str_t h, char *const *names, size_t n, gw_buf_t *out)
{
    size_t i = 0;
    bool first = true;
    while (i < h.len) {
        while (i < h.len && (h.base[i] == ' ' || h.base[i] == '\t' || h.base[i] == ';'))
            i++;
        size_t s = i;
        while (i < h.len && h.base[i] != ';')
            i++;
        gw_str_t pair = gw_str(h.base + s, i - s);
        while (pair.len && (pair.base[pair.len - 1] == ' ' || pair.base[pair.len - 1] == '\t'))
            pair.len--;
        if (pair.len == 0)
            continue;
        const char *eq = memchr(pair.base, '=', pair.len);
        gw_str_t nm = gw_str(pair.base, eq ? (size_t)(eq - pair.base) : pair.len);
        while (nm.len && (nm.base[nm.len - 1] == ' ' || nm.base[nm.len - 1] == '\t'))
            nm.len--;
        bool drop = false;
        for (size_t k = 0; k < n && !drop; k++)
            drop = gw_str_eq(nm, gw_str_c(names[k]));
        if (drop)
            continue;
        if (!first)
            gw_buf_append_lit(out, "; ");
        first = false;
        gw_buf_append_str(out, pair);
    }
}

int gw_mcp_auth_forward_headers(const gw_mcp_route_t *route, const gw_http_header_t *in, size_t n_in,
                                gw_str_t client_id, gw_http_header_t *out, size_t cap, size_t *n_out,
                                gw_buf_t *storage)
{
    const gw_mcp_api_key_auth_t *k = route ? route->api_key_auth : NULL;
    bool sanitize = k != NULL && k->sanitize;
    gw_str_t fwd = k && k->forward_client_id_header ? gw_str_c(k->forward_client_id_header) : GW_STR_NULL;
    /* Rewritten cookie values go to storage first; slices are taken once it stops growing. */
    size_t *offs = n_in ? gw_calloc(n_in, 2 * sizeof(size_t)) : NULL;
    size_t base = storage->len;
    for (size_t i = 0; i < n_in; i++) {
        if (sanitize && k->n_cookies && gw_str_case_eq_lit(in[i].name, "cookie")) {
            size_t o = storage->len;
            cookie_without(in[i].value, k->cookies, k->n_cookies, storage);
            offs[2 * i] = o - base;
            offs[2 * i + 1] = storage->len - o;
        }
    }
    size_t n = 0;
    int rc = GW_OK;
    for (size_t i = 0; i < n_in && rc == GW_OK; i++) {
        gw_str_t name = in[i].name, value = in[i].value;
        if (gw_str_case_eq_lit(name, "authorization") || gw_str_case_eq_lit(name, "proxy-authorization"))
            continue; /* the client's token never goes upstream */
        if (fwd.len && gw_str_case_eq(name, fwd))
            continue; /* only the gateway says who the client is */
        if (sanitize && in_list(name, k->headers, k->n_headers))
            continue;
        if (sanitize && k->n_cookies && gw_str_case_eq_lit(name, "cookie")) {
            if (offs[2 * i + 1] == 0)
                continue;
            value = gw_str(storage->data + base + offs[2 * i], offs[2 * i + 1]);
        }
        if (n == cap) {
            rc = GW_TOOBIG;
            break;
        }
        out[n++] = (gw_http_header_t){name, value};
    }
    if (rc == GW_OK && fwd.len && client_id.len) {
        if (n == cap)
            rc = GW_TOOBIG;
        else
            out[n++] = (gw_http_header_t){fwd, client_id};
    }
    free(offs);
    if (rc == GW_OK)
        *n_out = n;
    return rc;
}

typedef struct {
    const gw_mcp_api_key_auth_t *k;
    gw_str_t q;
    gw_buf_t *out;
    bool first;
} qp_strip_t;

static bool qp_strip(gw_str_t raw_name, gw_str_t raw_value, size_t start, size_t end, void *ud)
{
    qp_strip_t *s = ud;
    for (size_t i = 0; i < s->k->n_params; i++)
        if (name_is(raw_name, gw_str_c(s->k->params[i])))
            return false;
    gw_buf_append_byte(s->out, s->first ? '?' : '&');
    s->first = false;
    gw_buf_append(s->out, s->q.base + start, end - start);
    return false;
}

int gw_mcp_auth_strip_query(const gw_mcp_route_t *route, gw_str_t target, gw_buf_t *out)
{
    const gw_mcp_api_key_auth_t *k = route ? route->api_key_auth : NULL;
    size_t qm = 0;
    while (qm < target.len && target.base[qm] != '?' && target.base[qm] != '#')
        qm++;
    if (k == NULL || !k->sanitize || k->n_params == 0 || qm == target.len || target.base[qm] == '#')
        return gw_buf_append_str(out, target);
    /* The fragment goes too: a request target never carries one (RFC 9112 §3.2). */
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append(&b, target.base, qm);
    qp_strip_t s = {k, query_of(target), &b, true};
    each_param(s.q, qp_strip, &s);
    int rc = gw_buf_append_str(out, gw_buf_str(&b));
    gw_buf_free(&b);
    return rc;
}
