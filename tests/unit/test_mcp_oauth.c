/* Unit tests for mcp/oauth: keys generated and tokens signed here (RS256, ES256), local JWKS, remote
 * JWKS and issuer metadata served by a tiny HTTP server on 127.0.0.1 ephemeral ports on the test's
 * own loop (rotation, the refetch rate limit, single-flight, Cache-Control, failures, discovery),
 * the 400/401/403/503 answers, apiKeyAuth, the metadata documents and the forwarding helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec/base64.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "mcp/oauth.h"

#include "fake_http.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ISS "https://idp.example.com/realms/mcp"
#define RESOURCE "https://gw.example.com/mcp"
#define PRM_URL "https://gw.example.com/.well-known/oauth-protected-resource/mcp"

/* ------------------------------------------------------------------------------------------------
 * Loop helpers */

static uv_loop_t loop;
static uv_timer_t tick; /* keeps UV_RUN_ONCE from sleeping forever */
static gw_upstream_pool_t *pool;
static gw_mcp_auth_t *auth;

static void on_tick(uv_timer_t *t)
{
}

typedef bool (*cond_fn)(void *ud);

static bool run_until(cond_fn cond, void *ud, uint64_t timeout_ms)
{
    uv_update_time(&loop);
    uint64_t deadline = uv_now(&loop) + timeout_ms;
    while (!cond(ud)) {
        uv_update_time(&loop);
        if (uv_now(&loop) >= deadline)
            return cond(ud);
        uv_run(&loop, UV_RUN_ONCE);
    }
    return true;
}

static bool never(void *ud)
{
    return false;
}

static void run_for(uint64_t ms)
{
    run_until(never, NULL, ms);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    va_list ap;
    va_start(ap, f);
    assert_int_equal(gw_buf_vappendf(&b, f, ap), GW_OK);
    va_end(ap);
    char *s = gw_strdup(gw_buf_cstr(&b));
    gw_buf_free(&b);
    return s;
}

/* ------------------------------------------------------------------------------------------------
 * Fake identity providers: a fake_http.h server each, serving a JWKS and a metadata document. */

typedef struct {
    fh_server_t *http;
    char *jwks; /* at /jwks */
    const char *cache_control;
    char *metadata; /* at metadata_path */
    char metadata_path[256];
} idp_t;

static idp_t idps[4];
static size_t n_idps;

static void answer(gw_buf_t *a, int status, const char *extra, const char *body)
{
    fh_answer(a, status, "application/json", extra, body, strlen(body));
}

/* Serves /jwks and the metadata document; 404 for everything else. */
static void serve(fh_server_t *s, const fh_req_t *rq, gw_buf_t *a)
{
    idp_t *f = s->ud;
    if (strcmp(rq->path, "/jwks") == 0 && f->jwks) {
        char *extra = f->cache_control ? fmt("Cache-Control: %s\r\n", f->cache_control) : NULL;
        answer(a, 200, extra, f->jwks);
        free(extra);
    } else if (f->metadata && strcmp(rq->path, f->metadata_path) == 0) {
        answer(a, 200, NULL, f->metadata);
    } else {
        answer(a, 404, NULL, "{}");
    }
}

static idp_t *idp_start(void)
{
    assert_true(n_idps < GW_ARRAY_SIZE(idps));
    idp_t *f = &idps[n_idps++];
    memset(f, 0, sizeof(*f));
    f->http = fh_server_start(&loop, serve, f);
    return f;
}

/* ------------------------------------------------------------------------------------------------
 * Test-side JOSE: keys, JWKs and signatures made here with OpenSSL (RFC 7515/7517/7518). */

static EVP_PKEY *rsa_a, *ec_b, *ec_c;

static char *b64u(const void *p, size_t n)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    assert_int_equal(gw_base64_encode(GW_BASE64_URL, p, n, &b), GW_OK);
    char *s = gw_strdup(gw_buf_cstr(&b));
    gw_buf_free(&b);
    return s;
}

static char *bn_b64u(const BIGNUM *bn, int pad)
{
    int n = pad ? pad : BN_num_bytes(bn);
    unsigned char *buf = gw_malloc((size_t)n);
    assert_int_equal(BN_bn2binpad(bn, buf, n), n);
    char *s = b64u(buf, (size_t)n);
    free(buf);
    return s;
}

/* {"kty":...,"kid":kid} for the public half of k. */
static char *jwk(EVP_PKEY *k, const char *kid)
{
    if (EVP_PKEY_is_a(k, "RSA")) {
        BIGNUM *n = NULL, *e = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e), 1);
        char *ns = bn_b64u(n, 0), *es = bn_b64u(e, 0);
        char *s = fmt("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\",\"kid\":\"%s\",\"use\":\"sig\"}", ns, es, kid);
        free(ns), free(es), BN_free(n), BN_free(e);
        return s;
    }
    BIGNUM *x = NULL, *y = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    char *xs = bn_b64u(x, 32), *ys = bn_b64u(y, 32);
    char *s = fmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"kid\":\"%s\"}", xs, ys, kid);
    free(xs), free(ys), BN_free(x), BN_free(y);
    return s;
}

static char *jwks_of(int n, ...)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "{\"keys\":[");
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        EVP_PKEY *k = va_arg(ap, EVP_PKEY *);
        const char *kid = va_arg(ap, const char *);
        char *j = jwk(k, kid);
        if (i)
            gw_buf_append_byte(&b, ',');
        gw_buf_append(&b, j, strlen(j));
        free(j);
    }
    va_end(ap);
    gw_buf_append_lit(&b, "]}");
    char *s = gw_strdup(gw_buf_cstr(&b));
    gw_buf_free(&b);
    return s;
}

/* A compact JWS of claims with k; ES256 signatures are converted from DER to r||s. */
static char *sign_token(EVP_PKEY *k, const char *kid, const char *claims)
{
    bool ec = EVP_PKEY_is_a(k, "EC");
    char *header = fmt("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", ec ? "ES256" : "RS256", kid);
    char *h = b64u(header, strlen(header)), *c = b64u(claims, strlen(claims));
    char *input = fmt("%s.%s", h, c);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, k, NULL), 1);
    size_t n = 0;
    assert_int_equal(EVP_DigestSign(m, NULL, &n, (const unsigned char *)input, strlen(input)), 1);
    unsigned char *sig = gw_malloc(n);
    assert_int_equal(EVP_DigestSign(m, sig, &n, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(m);
    if (ec) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        assert_non_null(es);
        unsigned char *rs = gw_malloc(64);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32), 32);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32), 32);
        ECDSA_SIG_free(es);
        free(sig);
        sig = rs;
        n = 64;
    }
    char *s64 = b64u(sig, n);
    char *t = fmt("%s.%s", input, s64);
    free(header), free(h), free(c), free(input), free(sig), free(s64);
    return t;
}

/* Claims valid now unless the caller overrides: iss, aud, sub, exp, scope. */
static char *claims(const char *iss, const char *aud, long exp_in, const char *scope)
{
    long now = (long)time(NULL);
    return fmt("{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"alice@example.com\",\"exp\":%ld,\"iat\":%ld,\"scope\":\"%s\"}", iss,
               aud, now + exp_in, now - 5, scope);
}

static char *good_token(EVP_PKEY *k, const char *kid)
{
    char *c = claims(ISS, "\"" RESOURCE "\"", 600, "mcp:tools mcp:read");
    char *t = sign_token(k, kid, c);
    free(c);
    return t;
}

/* ------------------------------------------------------------------------------------------------
 * Routes, requests and outcomes */

static char *scopes_supported[] = {"mcp:tools", "mcp:read"};
static char *algs[] = {"RS256", "ES256"};
static char *audiences[] = {"https://other.example.com", RESOURCE};

typedef struct {
    gw_mcp_route_t route;
    gw_mcp_oauth_t oauth;
    gw_mcp_api_key_auth_t keys;
} route_t;

static void route_init(route_t *t, const char *name, const char *jwks_json, const char *jwks_uri)
{
    memset(t, 0, sizeof(*t));
    t->route.name = (char *)name;
    t->route.path = "/mcp";
    t->route.oauth = &t->oauth;
    t->oauth.issuer = ISS;
    t->oauth.jwks_json = (char *)jwks_json;
    t->oauth.jwks_uri = (char *)jwks_uri;
    t->oauth.resource = RESOURCE;
    t->oauth.scopes_supported = scopes_supported;
    t->oauth.n_scopes_supported = 2;
}

typedef struct {
    bool called;
    int calls;
    int status;
    char subject[128];
    char client_id[64];
    char www[1024];
    char body[4096];
    char ctype[64];
    char scopes[256];
    char headers[1024]; /* "name: value\n"... */
} outcome_t;

static void on_result(void *ud, const gw_mcp_auth_result_t *res)
{
    outcome_t *o = ud;
    o->called = true;
    o->calls++;
    o->status = res->status;
    snprintf(o->subject, sizeof(o->subject), "%.*s", (int)res->subject.len, res->subject.base ? res->subject.base : "");
    snprintf(o->client_id, sizeof(o->client_id), "%.*s", (int)res->client_id.len,
             res->client_id.base ? res->client_id.base : "");
    snprintf(o->body, sizeof(o->body), "%.*s", (int)res->body.len, res->body.base ? res->body.base : "");
    snprintf(o->ctype, sizeof(o->ctype), "%.*s", (int)res->content_type.len,
             res->content_type.base ? res->content_type.base : "");
    o->www[0] = o->scopes[0] = o->headers[0] = '\0';
    size_t off = 0;
    for (size_t i = 0; i < res->n_scopes; i++)
        off += (size_t)snprintf(o->scopes + off, sizeof(o->scopes) - off, "%s%.*s", i ? " " : "", (int)res->scopes[i].len,
                                res->scopes[i].base);
    off = 0;
    for (size_t i = 0; i < res->n_headers; i++) {
        const gw_http_header_t *h = &res->headers[i];
        off += (size_t)snprintf(o->headers + off, sizeof(o->headers) - off, "%.*s: %.*s\n", (int)h->name.len, h->name.base,
                                (int)h->value.len, h->value.base);
        if (gw_str_case_eq_lit(h->name, "www-authenticate"))
            snprintf(o->www, sizeof(o->www), "%.*s", (int)h->value.len, h->value.base);
    }
}

static bool called(void *ud)
{
    return ((outcome_t *)ud)->called;
}

static gw_http_req_t mkreq(const char *target, gw_http_header_t *h, size_t n)
{
    gw_http_req_t r;
    memset(&r, 0, sizeof(r));
    r.method = GW_STR("POST");
    r.target = gw_str_c(target);
    const char *q = strchr(target, '?');
    r.path = gw_str(target, q ? (size_t)(q - target) : strlen(target));
    r.headers = h;
    r.n_headers = n;
    return r;
}

/* Runs one check with an "Authorization: Bearer <token>" header (none when token is NULL). */
static outcome_t check_token(const route_t *t, const char *token)
{
    outcome_t o = {0};
    char *value = token ? fmt("Bearer %s", token) : NULL;
    gw_http_header_t h[1] = {{GW_STR("Authorization"), gw_str_c(value)}};
    gw_http_req_t req = mkreq("/mcp", h, token ? 1 : 0);
    gw_mcp_auth_check(auth, &t->route, &req, on_result, &o);
    assert_false(o.called); /* never synchronous */
    assert_true(run_until(called, &o, 5000));
    free(value);
    return o;
}

static void expect_invalid_token(const outcome_t *o, const char *desc)
{
    assert_int_equal(o->status, 401);
    char *want = fmt("Bearer resource_metadata=\"" PRM_URL "\", error=\"invalid_token\", scope=\"mcp:tools mcp:read\", "
                     "error_description=\"%s\"",
                     desc);
    assert_string_equal(o->www, want);
    free(want);
    assert_string_equal(o->ctype, "application/json");
    assert_non_null(strstr(o->body, "\"error\":\"invalid_token\""));
}

/* ------------------------------------------------------------------------------------------------
 * Fixtures */

static int group_setup(void **state)
{
    rsa_a = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec_c = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return rsa_a && ec_b && ec_c ? 0 : -1;
}

static int group_teardown(void **state)
{
    EVP_PKEY_free(rsa_a);
    EVP_PKEY_free(ec_b);
    EVP_PKEY_free(ec_c);
    return 0;
}

static gw_mcp_auth_opts_t test_opts = {
    .refetch_interval_ms = 400,
    .retry_ms = 400,
    .min_ttl_ms = 300,
    .total_timeout_ms = 1500,
};

static int setup(void **state)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    n_idps = 0;
    gw_log_level = GW_LOG_ERROR + 1; /* quiet: failures are the point of several cases */
    pool = gw_upstream_pool_new(&loop, NULL, NULL);
    auth = gw_mcp_auth_new(&loop, pool);
    gw_mcp_auth_set_opts(auth, &test_opts);
    return 0;
}

static void count_open(uv_handle_t *h, void *arg)
{
    if (h != (uv_handle_t *)&tick && !uv_is_closing(h))
        ++*(int *)arg;
}

static void close_open(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    gw_mcp_auth_free(auth);
    gw_upstream_pool_close(pool);
    fh_servers_stop_all();
    int open = 0;
    for (int i = 0; i < 1000; i++) {
        open = 0;
        uv_walk(&loop, count_open, &open);
        if (open == 0)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_walk(&loop, close_open, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fh_servers_free_all();
    for (size_t i = 0; i < n_idps; i++) {
        free(idps[i].jwks);
        free(idps[i].metadata);
    }
    n_idps = 0;
    gw_log_level = GW_LOG_INFO;
    if (open)
        fail_msg("%d handle(s) still open after the case", open);
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Local JWKS: algorithms, claims, challenges */

static void test_local_rs256_es256(void **state)
{
    char *jwks = jwks_of(2, rsa_a, "rsa-a", ec_b, "ec-b");
    route_t t;
    route_init(&t, "default/local", jwks, NULL);
    char *rs = good_token(rsa_a, "rsa-a"), *es = good_token(ec_b, "ec-b");
    outcome_t o = check_token(&t, rs);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.subject, "alice@example.com");
    assert_string_equal(o.scopes, "mcp:tools mcp:read");
    assert_string_equal(o.headers, "");
    o = check_token(&t, es);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.subject, "alice@example.com");
    /* A key of the set under another kid does not verify: kids pin keys. */
    char *wrong = good_token(ec_c, "ec-b");
    o = check_token(&t, wrong);
    expect_invalid_token(&o, "The access token is invalid");
    free(rs), free(es), free(wrong), free(jwks);
}

static void test_token_failures(void **state)
{
    char *jwks = jwks_of(1, ec_b, "ec-b");
    route_t t;
    route_init(&t, "default/local", jwks, NULL);
    struct {
        const char *iss, *aud;
        long exp_in;
        const char *desc;
    } cases[] = {
        {ISS, "\"" RESOURCE "\"", -3600, "The access token expired"},
        {ISS, "\"https://evil.example.com/mcp\"", 600, "The access token is invalid"},
        {ISS, "[\"https://a.example.com\",\"https://b.example.com\"]", 600, "The access token is invalid"},
        {"https://idp.example.com/realms/other", "\"" RESOURCE "\"", 600, "The access token is invalid"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char *c = claims(cases[i].iss, cases[i].aud, cases[i].exp_in, "mcp:tools");
        char *tok = sign_token(ec_b, "ec-b", c);
        outcome_t o = check_token(&t, tok);
        expect_invalid_token(&o, cases[i].desc);
        assert_null(strstr(o.body, tok));
        free(c), free(tok);
    }
    /* Tampered signature and garbage. */
    char *tok = good_token(ec_b, "ec-b");
    /* Another base64url letter in the signature (flipping a bit could make '-' a ',', which is no
     * token68 character at all: a malformed header, 400, instead of a bad signature). */
    char *flip = tok + strlen(tok) - 3;
    *flip = *flip == 'A' ? 'B' : 'A';
    outcome_t o = check_token(&t, tok);
    expect_invalid_token(&o, "The access token is invalid");
    o = check_token(&t, "not-a-jwt");
    expect_invalid_token(&o, "The access token is invalid");
    free(tok), free(jwks);
}

static void test_challenges(void **state)
{
    char *jwks = jwks_of(1, ec_b, "ec-b");
    route_t t;
    route_init(&t, "default/local", jwks, NULL);
    /* No credentials: no error code (RFC 6750 §3.1), the metadata URL and the scopes to ask for. */
    outcome_t o = check_token(&t, NULL);
    assert_int_equal(o.status, 401);
    assert_string_equal(o.www, "Bearer resource_metadata=\"" PRM_URL "\", scope=\"mcp:tools mcp:read\"");
    assert_string_equal(o.ctype, "application/json");
    assert_string_equal(o.body, "{\"error\":\"invalid_request\",\"error_description\":\"No access token was provided in "
                                "this request\"}");
    /* Another scheme counts as no bearer credentials. */
    gw_http_header_t basic[] = {{GW_STR("authorization"), GW_STR("Basic YWxhZGRpbjpvcGVuc2VzYW1l")}};
    gw_http_req_t req = mkreq("/mcp", basic, 1);
    memset(&o, 0, sizeof(o));
    gw_mcp_auth_check(auth, &t.route, &req, on_result, &o);
    assert_true(run_until(called, &o, 5000));
    assert_int_equal(o.status, 401);
    assert_null(strstr(o.www, "error="));
    /* Two Authorization headers, or an empty bearer: 400 invalid_request. */
    char *tok = good_token(ec_b, "ec-b");
    char *v = fmt("Bearer %s", tok);
    gw_http_header_t two[] = {{GW_STR("Authorization"), gw_str_c(v)}, {GW_STR("authorization"), gw_str_c(v)}};
    req = mkreq("/mcp", two, 2);
    memset(&o, 0, sizeof(o));
    gw_mcp_auth_check(auth, &t.route, &req, on_result, &o);
    assert_true(run_until(called, &o, 5000));
    assert_int_equal(o.status, 400);
    assert_string_equal(o.www, "Bearer resource_metadata=\"" PRM_URL "\", error=\"invalid_request\", "
                               "error_description=\"The Authorization header is malformed\"");
    gw_http_header_t empty[] = {{GW_STR("Authorization"), GW_STR("Bearer   ")}};
    req = mkreq("/mcp", empty, 1);
    memset(&o, 0, sizeof(o));
    gw_mcp_auth_check(auth, &t.route, &req, on_result, &o);
    assert_true(run_until(called, &o, 5000));
    assert_int_equal(o.status, 400);
    /* Lower-case scheme is fine. */
    free(v);
    v = fmt("bearer %s", tok);
    gw_http_header_t lower[] = {{GW_STR("AUTHORIZATION"), gw_str_c(v)}};
    req = mkreq("/mcp", lower, 1);
    memset(&o, 0, sizeof(o));
    gw_mcp_auth_check(auth, &t.route, &req, on_result, &o);
    assert_true(run_until(called, &o, 5000));
    assert_int_equal(o.status, 0);
    free(v), free(tok), free(jwks);
}

static void test_audience_defaults_to_resource(void **state)
{
    char *jwks = jwks_of(1, ec_b, "ec-b");
    route_t t;
    route_init(&t, "default/local", jwks, NULL);
    const char *ok[] = {"\"" RESOURCE "\"", "\"" RESOURCE "/\"", "[\"x\",\"" RESOURCE "\"]"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(ok); i++) {
        char *c = claims(ISS, ok[i], 600, "");
        char *tok = sign_token(ec_b, "ec-b", c);
        outcome_t o = check_token(&t, tok);
        assert_int_equal(o.status, 0);
        free(c), free(tok);
    }
    const char *bad[] = {"\"https://gw.example.com/mcp2\"", "\"https://gw.example.com\"", "[]"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        char *c = claims(ISS, bad[i], 600, "");
        char *tok = sign_token(ec_b, "ec-b", c);
        outcome_t o = check_token(&t, tok);
        assert_int_equal(o.status, 401);
        free(c), free(tok);
    }
    /* The configuration may spell scheme and host in capitals (RFC 8707 canonical form). */
    t.oauth.resource = "HTTPS://GW.Example.COM/mcp/";
    char *c = claims(ISS, "\"" RESOURCE "\"", 600, "");
    char *tok0 = sign_token(ec_b, "ec-b", c);
    outcome_t o0 = check_token(&t, tok0);
    assert_int_equal(o0.status, 0);
    free(c), free(tok0);
    t.oauth.resource = RESOURCE;
    /* Configured audiences replace the resource. */
    t.oauth.audiences = audiences;
    t.oauth.n_audiences = 1;
    char *tok = good_token(ec_b, "ec-b");
    outcome_t o = check_token(&t, tok);
    assert_int_equal(o.status, 401);
    t.oauth.n_audiences = 2;
    o = check_token(&t, tok);
    assert_int_equal(o.status, 0);
    free(tok), free(jwks);
}

static void test_required_scopes(void **state)
{
    char *jwks = jwks_of(1, rsa_a, "rsa-a");
    route_t t;
    route_init(&t, "default/local", jwks, NULL);
    char *tok = good_token(rsa_a, "rsa-a"), *v = fmt("Bearer %s", tok);
    gw_http_header_t h[] = {{GW_STR("Authorization"), gw_str_c(v)}};
    gw_http_req_t req = mkreq("/mcp", h, 1);
    gw_str_t need[] = {GW_STR("mcp:tools"), GW_STR("mcp:admin")};
    outcome_t o = {0};
    gw_mcp_auth_check_scopes(auth, &t.route, &req, need, 2, on_result, &o);
    assert_true(run_until(called, &o, 5000));
    assert_int_equal(o.status, 403);
    assert_string_equal(o.www, "Bearer resource_metadata=\"" PRM_URL "\", error=\"insufficient_scope\", "
                               "scope=\"mcp:tools mcp:admin\", error_description=\"The access token lacks a required scope\"");
    assert_non_null(strstr(o.body, "\"error\":\"insufficient_scope\""));
    memset(&o, 0, sizeof(o));
    gw_mcp_auth_check_scopes(auth, &t.route, &req, need, 1, on_result, &o);
    assert_true(run_until(called, &o, 5000));
    assert_int_equal(o.status, 0);
    /* The advertised scopesSupported are not required (the reference does not require them). */
    t.oauth.n_scopes_supported = 2;
    char *c = claims(ISS, "\"" RESOURCE "\"", 600, "other");
    char *tok2 = sign_token(rsa_a, "rsa-a", c);
    o = check_token(&t, tok2);
    assert_int_equal(o.status, 0);
    free(c), free(tok2), free(tok), free(v), free(jwks);
}

/* ------------------------------------------------------------------------------------------------
 * Remote JWKS */

static void test_remote_rotation_and_rate_limit(void **state)
{
    idp_t *f = idp_start();
    f->jwks = jwks_of(1, rsa_a, "rsa-a");
    char *uri = fmt("http://127.0.0.1:%u/jwks", f->http->port);
    route_t t;
    route_init(&t, "default/remote", NULL, uri);
    char *ta = good_token(rsa_a, "rsa-a"), *tb = good_token(ec_b, "ec-b"), *tc = good_token(ec_c, "ec-c");
    outcome_t o = check_token(&t, ta);
    assert_int_equal(o.status, 0);
    o = check_token(&t, ta);
    assert_int_equal(o.status, 0);
    assert_int_equal(fh_server_count_path(f->http, "/jwks"), 1); /* cached */
    /* Rotation: the IdP adds ec-b; a token under it makes one refetch. The rate limit counts from
     * the last fetch, so let it pass first. */
    free(f->jwks);
    f->jwks = jwks_of(2, rsa_a, "rsa-a", ec_b, "ec-b");
    run_for(450);
    o = check_token(&t, tb);
    assert_int_equal(o.status, 0);
    assert_int_equal(fh_server_count_path(f->http, "/jwks"), 2);
    /* An unknown kid right after a fetch: no refetch, 401. */
    o = check_token(&t, tc);
    expect_invalid_token(&o, "The access token is invalid");
    assert_int_equal(fh_server_count_path(f->http, "/jwks"), 2);
    /* Once the interval passed: one refetch, still unknown, 401. */
    run_for(450);
    o = check_token(&t, tc);
    assert_int_equal(o.status, 401);
    assert_int_equal(fh_server_count_path(f->http, "/jwks"), 3);
    /* Single-flight: five checks meeting the same unknown kid wait for one fetch. */
    free(f->jwks);
    f->jwks = jwks_of(3, rsa_a, "rsa-a", ec_b, "ec-b", ec_c, "ec-c");
    run_for(450);
    char *v = fmt("Bearer %s", tc);
    gw_http_header_t h[] = {{GW_STR("Authorization"), gw_str_c(v)}};
    gw_http_req_t req = mkreq("/mcp", h, 1);
    outcome_t os[5];
    memset(os, 0, sizeof(os));
    for (int i = 0; i < 5; i++)
        gw_mcp_auth_check(auth, &t.route, &req, on_result, &os[i]);
    for (int i = 0; i < 5; i++) {
        assert_true(run_until(called, &os[i], 5000));
        assert_int_equal(os[i].status, 0);
        assert_int_equal(os[i].calls, 1);
    }
    assert_int_equal(fh_server_count_path(f->http, "/jwks"), 4);
    free(v), free(ta), free(tb), free(tc), free(uri);
}

static void test_remote_cache_control(void **state)
{
    idp_t *f = idp_start();
    f->jwks = jwks_of(1, ec_b, "ec-b");
    f->cache_control = "no-store"; /* clamped to min_ttl (300 ms here) */
    char *uri = fmt("http://127.0.0.1:%u/jwks", f->http->port);
    route_t t;
    route_init(&t, "default/remote", NULL, uri);
    char *tok = good_token(ec_b, "ec-b");
    outcome_t o = check_token(&t, tok);
    assert_int_equal(o.status, 0);
    o = check_token(&t, tok);
    assert_int_equal(fh_server_count_path(f->http, "/jwks"), 1);
    run_for(350);
    o = check_token(&t, tok);
    assert_int_equal(o.status, 0);
    assert_int_equal(fh_server_count_path(f->http, "/jwks"), 2);
    /* max-age=3600: no refetch after the minimum. */
    f->cache_control = "public, max-age=3600";
    run_for(350);
    o = check_token(&t, tok);
    assert_int_equal(fh_server_count_path(f->http, "/jwks"), 3);
    run_for(350);
    o = check_token(&t, tok);
    assert_int_equal(o.status, 0);
    assert_int_equal(fh_server_count_path(f->http, "/jwks"), 3);
    /* The parser itself. */
    assert_int_equal(gw_mcp_auth_cache_ttl(GW_STR(""), 5000, 100), 5000);
    assert_int_equal(gw_mcp_auth_cache_ttl(GW_STR("max-age=60"), 5000, 100), 60000);
    assert_int_equal(gw_mcp_auth_cache_ttl(GW_STR("Max-Age=\"7\", must-revalidate"), 5000, 100), 7000);
    assert_int_equal(gw_mcp_auth_cache_ttl(GW_STR("max-age=0"), 5000, 100), 100);
    assert_int_equal(gw_mcp_auth_cache_ttl(GW_STR("no-cache, max-age=60"), 5000, 100), 100);
    assert_int_equal(gw_mcp_auth_cache_ttl(GW_STR("max-age=99999999999999999999"), 5000, 100), GW_MCP_AUTH_MAX_TTL_MS);
    assert_int_equal(gw_mcp_auth_cache_ttl(GW_STR("max-age=abc"), 5000, 100), 5000);
    free(tok), free(uri);
}

static void test_remote_failures(void **state)
{
    /* Nobody listening: 503 (not 401), and no second connection within the retry window. */
    char *uri = fmt("http://127.0.0.1:%u/jwks", fh_unused_port(&loop));
    route_t t;
    route_init(&t, "default/dead", NULL, uri);
    char *tok = good_token(ec_b, "ec-b");
    outcome_t o = check_token(&t, tok);
    assert_int_equal(o.status, 503);
    assert_string_equal(o.www, "");
    assert_non_null(strstr(o.body, "temporarily_unavailable"));
    o = check_token(&t, tok);
    assert_int_equal(o.status, 503);
    /* A server answering garbage, then 404: both 503; keys already cached survive a failed refresh. */
    idp_t *f = idp_start();
    f->jwks = gw_strdup("{\"keys\":");
    char *uri2 = fmt("http://127.0.0.1:%u/jwks", f->http->port);
    route_t t2;
    route_init(&t2, "default/garbage", NULL, uri2);
    o = check_token(&t2, tok);
    assert_int_equal(o.status, 503);
    free(f->jwks);
    f->jwks = jwks_of(1, ec_b, "ec-b");
    run_for(450);
    o = check_token(&t2, tok);
    assert_int_equal(o.status, 0);
    free(f->jwks);
    f->jwks = NULL; /* 404 from now on */
    run_for(450);
    char *tc = good_token(ec_c, "ec-c");
    o = check_token(&t2, tc); /* refetch fails */
    assert_int_equal(o.status, 401);
    o = check_token(&t2, tok); /* the old keys still verify */
    assert_int_equal(o.status, 0);
    /* A hanging server: the fetch times out (total_timeout_ms 1500 here) and the check gets 503. */
    idp_t *h = idp_start();
    h->http->hang = true;
    char *uri3 = fmt("http://127.0.0.1:%u/jwks", h->http->port);
    route_t t3;
    route_init(&t3, "default/hang", NULL, uri3);
    o = check_token(&t3, tok);
    assert_int_equal(o.status, 503);
    free(tc), free(tok), free(uri), free(uri2), free(uri3);
}

/* ------------------------------------------------------------------------------------------------
 * Discovery and Authorization Server Metadata */

static void test_discovery(void **state)
{
    idp_t *f = idp_start();
    f->jwks = jwks_of(1, ec_b, "ec-b");
    char *issuer = fmt("http://127.0.0.1:%u/realms/x", f->http->port);
    /* Only the OIDC path-inserted location exists: the RFC 8414 one answers 404 first. */
    snprintf(f->metadata_path, sizeof(f->metadata_path), "/.well-known/openid-configuration/realms/x");
    f->metadata = fmt("{\"issuer\":\"%s\",\"jwks_uri\":\"http://127.0.0.1:%u/jwks\",\"authorization_endpoint\":\"%s/auth\","
                      "\"code_challenge_methods_supported\":[\"S256\"]}",
                      issuer, f->http->port, issuer);
    route_t t;
    route_init(&t, "default/disc", NULL, NULL);
    t.oauth.issuer = issuer;
    char *c = claims(issuer, "\"" RESOURCE "\"", 600, "mcp:tools");
    char *tok = sign_token(ec_b, "ec-b", c);
    outcome_t o = check_token(&t, tok);
    assert_int_equal(o.status, 0);
    assert_true(f->http->nreq >= 3);
    assert_string_equal(f->http->reqs[0].path, "/.well-known/oauth-authorization-server/realms/x");
    assert_string_equal(f->http->reqs[1].path, "/.well-known/openid-configuration/realms/x");
    assert_string_equal(f->http->reqs[2].path, "/jwks");
    /* The AS metadata is the issuer's document, served from the same cache. */
    int before = f->http->nreq;
    memset(&o, 0, sizeof(o));
    gw_mcp_auth_metadata(auth, &t.route, GW_MCP_WELL_KNOWN_AUTH_SERVER, on_result, &o);
    assert_false(o.called);
    assert_true(run_until(called, &o, 5000));
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, f->metadata);
    assert_string_equal(o.headers, "Access-Control-Allow-Origin: *\n");
    assert_int_equal(f->http->nreq, before);
    free(c), free(tok);

    /* A document naming another issuer is not used (RFC 8414 §3.3): 503. */
    idp_t *g = idp_start();
    char *issuer2 = fmt("http://127.0.0.1:%u", g->http->port);
    snprintf(g->metadata_path, sizeof(g->metadata_path), "/.well-known/oauth-authorization-server");
    g->metadata = fmt("{\"issuer\":\"https://evil.example.com\",\"jwks_uri\":\"http://127.0.0.1:%u/jwks\"}", g->http->port);
    g->jwks = jwks_of(1, ec_b, "ec-b");
    route_t t2;
    route_init(&t2, "default/disc2", NULL, NULL);
    t2.oauth.issuer = issuer2;
    c = claims(issuer2, "\"" RESOURCE "\"", 600, "");
    tok = sign_token(ec_b, "ec-b", c);
    o = check_token(&t2, tok);
    assert_int_equal(o.status, 503);
    /* Without a path only the two root locations exist. */
    assert_int_equal(g->http->nreq, 2);
    assert_int_equal(fh_server_count_path(g->http, "/jwks"), 0);
    free(c), free(tok), free(issuer), free(issuer2);
}

static void test_server_metadata_fallback(void **state)
{
    route_t t;
    route_init(&t, "default/fallback", NULL, NULL);
    char *issuer = fmt("http://127.0.0.1:%u/realms/master/", fh_unused_port(&loop));
    t.oauth.issuer = issuer;
    outcome_t o = {0};
    gw_mcp_auth_metadata(auth, &t.route, GW_MCP_WELL_KNOWN_AUTH_SERVER, on_result, &o);
    assert_true(run_until(called, &o, 5000));
    assert_int_equal(o.status, 200);
    char *base = gw_strndup(issuer, strlen(issuer) - 1);
    char *want = fmt("{\"authorization_endpoint\":\"%s/protocol/openid-connect/auth\",\"code_challenge_methods_supported\":"
                     "[\"S256\"],\"grant_types_supported\":[\"authorization_code\"],\"issuer\":\"%s\",\"jwks_uri\":\"%s/"
                     "protocol/openid-connect/certs\",\"response_types_supported\":[\"code\"],\"scopes_supported\":"
                     "[\"mcp:tools\",\"mcp:read\"],\"token_endpoint\":\"%s/protocol/openid-connect/token\","
                     "\"token_endpoint_auth_methods_supported\":[\"client_secret_basic\",\"client_secret_post\"]}",
                     base, base, base, base);
    assert_string_equal(o.body, want);
    assert_string_equal(o.ctype, "application/json");
    free(want), free(base), free(issuer);
}

static void test_resource_metadata(void **state)
{
    route_t t;
    route_init(&t, "default/prm", NULL, NULL);
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    assert_int_equal(gw_mcp_auth_resource_metadata_json(&t.route, &b), GW_OK);
    assert_string_equal(gw_buf_cstr(&b), "{\"authorization_servers\":[\"" ISS "\"],\"bearer_methods_supported\":[\"header\"],"
                                         "\"resource\":\"" RESOURCE "\",\"scopes_supported\":[\"mcp:tools\",\"mcp:read\"]}");
    gw_buf_reset(&b);
    t.oauth.resource_name = "AI \"gateway\" MCP";
    t.oauth.resource_documentation = "https://docs.example.com";
    t.oauth.resource_policy_uri = "https://policy.example.com";
    t.oauth.signing_algs_supported = algs;
    t.oauth.n_signing_algs_supported = 2;
    t.oauth.n_scopes_supported = 0;
    assert_int_equal(gw_mcp_auth_resource_metadata_json(&t.route, &b), GW_OK);
    assert_string_equal(gw_buf_cstr(&b),
                        "{\"authorization_servers\":[\"" ISS "\"],\"bearer_methods_supported\":[\"header\"],"
                        "\"resource\":\"" RESOURCE "\",\"resource_documentation\":\"https://docs.example.com\","
                        "\"resource_name\":\"AI \\\"gateway\\\" MCP\",\"resource_policy_uri\":\"https://policy.example.com\","
                        "\"resource_signing_alg_values_supported\":[\"RS256\",\"ES256\"]}");
    /* Served asynchronously with CORS. */
    outcome_t o = {0};
    gw_mcp_auth_metadata(auth, &t.route, GW_MCP_WELL_KNOWN_RESOURCE, on_result, &o);
    assert_false(o.called);
    assert_true(run_until(called, &o, 5000));
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, gw_buf_cstr(&b));
    assert_string_equal(o.headers, "Access-Control-Allow-Origin: *\n");
    /* The challenge URL: path inserted, trailing slash, query and fragment dropped. */
    const char *res[][2] = {
        {"https://gw.example.com/mcp", PRM_URL},
        {"https://gw.example.com/mcp/", PRM_URL},
        {"https://gw.example.com", "https://gw.example.com/.well-known/oauth-protected-resource"},
        {"http://127.0.0.1:1975/a/b?x=1#f", "http://127.0.0.1:1975/.well-known/oauth-protected-resource/a/b"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(res); i++) {
        t.oauth.resource = (char *)res[i][0];
        gw_buf_reset(&b);
        assert_int_equal(gw_mcp_auth_resource_metadata_url(&t.route, &b), GW_OK);
        assert_string_equal(gw_buf_cstr(&b), res[i][1]);
    }
    gw_buf_free(&b);
}

static void test_well_known_paths(void **state)
{
    route_t r[3];
    route_init(&r[0], "default/plain", NULL, NULL);
    r[0].route.oauth = NULL;
    r[0].route.path = "/plain";
    route_init(&r[1], "default/a", NULL, NULL);
    r[1].route.path = "/mcp";
    route_init(&r[2], "default/b", NULL, NULL);
    r[2].route.path = "/tools";
    r[2].oauth.resource = "https://gw.example.com/prefix/tools";
    gw_mcp_route_t routes[3] = {r[0].route, r[1].route, r[2].route};
    routes[1].oauth = &r[1].oauth;
    routes[2].oauth = &r[2].oauth;
    gw_config_t c;
    memset(&c, 0, sizeof(c));
    c.mcp_routes = routes;
    c.n_mcp_routes = 3;
    struct {
        const char *path;
        int route;
        gw_mcp_well_known_t kind;
    } cases[] = {
        {"/.well-known/oauth-protected-resource", 1, GW_MCP_WELL_KNOWN_RESOURCE},
        {"/.well-known/oauth-protected-resource/mcp", 1, GW_MCP_WELL_KNOWN_RESOURCE},
        {"/.well-known/oauth-protected-resource/tools", 2, GW_MCP_WELL_KNOWN_RESOURCE},
        {"/.well-known/oauth-protected-resource/prefix/tools", 2, GW_MCP_WELL_KNOWN_RESOURCE},
        {"/.well-known/oauth-authorization-server", 1, GW_MCP_WELL_KNOWN_AUTH_SERVER},
        {"/.well-known/oauth-authorization-server/tools", 2, GW_MCP_WELL_KNOWN_AUTH_SERVER},
        {"/.well-known/oauth-protected-resource/plain", -1, GW_MCP_WELL_KNOWN_NONE},
        {"/.well-known/oauth-protected-resource/mcpx", -1, GW_MCP_WELL_KNOWN_NONE},
        {"/.well-known/openid-configuration", -1, GW_MCP_WELL_KNOWN_NONE},
        {"/mcp", -1, GW_MCP_WELL_KNOWN_NONE},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        gw_mcp_well_known_t kind;
        const gw_mcp_route_t *got = gw_mcp_auth_well_known_route(&c, gw_str_c(cases[i].path), &kind);
        assert_int_equal(kind, cases[i].kind);
        if (cases[i].route < 0)
            assert_null(got);
        else
            assert_ptr_equal(got, &routes[cases[i].route]);
    }
    /* No OAuth route: nothing is served. */
    c.n_mcp_routes = 1;
    gw_mcp_well_known_t kind;
    assert_null(gw_mcp_auth_well_known_route(&c, GW_STR("/.well-known/oauth-protected-resource"), &kind));
}

/* ------------------------------------------------------------------------------------------------
 * apiKeyAuth and forwarding */

static char *key_headers[] = {"x-api-key", "authorization"};
static char *key_params[] = {"api_key"};
static char *key_cookies[] = {"aigw_key"};
static gw_api_key_cred_t creds[] = {{"client-one", "k1-secret"}, {"client-two", "k2+secret/="}};

static void keys_init(route_t *t)
{
    route_init(t, "default/keys", NULL, NULL);
    t->route.oauth = NULL;
    t->route.api_key_auth = &t->keys;
    t->keys.creds = creds;
    t->keys.n_creds = 2;
    t->keys.headers = key_headers;
    t->keys.n_headers = 2;
    t->keys.params = key_params;
    t->keys.n_params = 1;
    t->keys.cookies = key_cookies;
    t->keys.n_cookies = 1;
    t->keys.forward_client_id_header = "x-client-id";
    t->keys.sanitize = true;
}

static outcome_t check_req(const route_t *t, const char *target, gw_http_header_t *h, size_t n)
{
    outcome_t o = {0};
    gw_http_req_t req = mkreq(target, h, n);
    gw_mcp_auth_check(auth, &t->route, &req, on_result, &o);
    assert_false(o.called);
    assert_true(run_until(called, &o, 5000));
    return o;
}

static void test_api_keys(void **state)
{
    route_t t;
    keys_init(&t);
    assert_true(gw_mcp_auth_required(&t.route));
    gw_http_header_t h1[] = {{GW_STR("X-Api-Key"), GW_STR("k1-secret")}};
    outcome_t o = check_req(&t, "/mcp", h1, 1);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.client_id, "client-one");
    gw_http_header_t h2[] = {{GW_STR("Authorization"), GW_STR("Bearer k2+secret/=")}};
    o = check_req(&t, "/mcp", h2, 1);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.client_id, "client-two");
    o = check_req(&t, "/mcp?x=1&api_key=k2%2Bsecret%2F%3D", NULL, 0);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.client_id, "client-two");
    gw_http_header_t h3[] = {{GW_STR("Cookie"), GW_STR("a=b; aigw_key=\"k1-secret\"; c=d")}};
    o = check_req(&t, "/mcp", h3, 1);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.client_id, "client-one");
    /* Wrong, prefixed, empty or missing keys: the same 401. */
    gw_http_header_t bad[][1] = {
        {{GW_STR("x-api-key"), GW_STR("k1-secreT")}},
        {{GW_STR("x-api-key"), GW_STR("k1-secret ")}},
        {{GW_STR("x-api-key"), GW_STR("")}},
        {{GW_STR("x-other"), GW_STR("k1-secret")}},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        o = check_req(&t, "/mcp?api_key=", bad[i], 1);
        assert_int_equal(o.status, 401);
        assert_string_equal(o.www, "ApiKey realm=\"aigw\"");
        assert_string_equal(o.body, "{\"error\":\"invalid_api_key\",\"error_description\":\"A valid API key is required\"}");
        assert_string_equal(o.client_id, "");
    }
    /* The first source present wins: a bad header is not rescued by a good parameter. */
    o = check_req(&t, "/mcp?api_key=k1-secret", bad[0], 1);
    assert_int_equal(o.status, 401);

    /* With OAuth too, both are needed. */
    char *jwks = jwks_of(1, ec_b, "ec-b");
    route_init(&t, "default/both", jwks, NULL);
    t.route.api_key_auth = &t.keys;
    t.keys.creds = creds;
    t.keys.n_creds = 2;
    t.keys.headers = key_headers;
    t.keys.n_headers = 1;
    char *tok = good_token(ec_b, "ec-b"), *v = fmt("Bearer %s", tok);
    gw_http_header_t both[] = {{GW_STR("Authorization"), gw_str_c(v)}, {GW_STR("x-api-key"), GW_STR("k1-secret")}};
    o = check_req(&t, "/mcp", both, 2);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.client_id, "client-one");
    assert_string_equal(o.subject, "alice@example.com");
    o = check_req(&t, "/mcp", both, 1);
    assert_int_equal(o.status, 401);
    assert_string_equal(o.www, "ApiKey realm=\"aigw\"");
    o = check_req(&t, "/mcp", both + 1, 1);
    assert_int_equal(o.status, 401);
    assert_non_null(strstr(o.www, "Bearer resource_metadata="));
    free(v), free(tok), free(jwks);
}

static void test_forwarding(void **state)
{
    route_t t;
    keys_init(&t);
    gw_http_header_t in[] = {
        {GW_STR("Authorization"), GW_STR("Bearer secret-token")},
        {GW_STR("Proxy-Authorization"), GW_STR("Basic x")},
        {GW_STR("X-Api-Key"), GW_STR("k1-secret")},
        {GW_STR("X-Client-Id"), GW_STR("spoofed")},
        {GW_STR("Cookie"), GW_STR("a=b; aigw_key=k1-secret;c=d")},
        {GW_STR("Cookie"), GW_STR("aigw_key=k1-secret")},
        {GW_STR("Accept"), GW_STR("application/json")},
    };
    gw_http_header_t out[16];
    size_t n = 0;
    gw_buf_t st;
    gw_buf_init(&st, GW_BUF_UNLIMITED);
    assert_int_equal(gw_mcp_auth_forward_headers(&t.route, in, GW_ARRAY_SIZE(in), GW_STR("client-one"), out, 16, &n, &st),
                     GW_OK);
    char got[1024];
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(got + off, sizeof(got) - off, "%.*s: %.*s\n", (int)out[i].name.len, out[i].name.base,
                                (int)out[i].value.len, out[i].value.base);
    assert_string_equal(got, "Cookie: a=b; c=d\nAccept: application/json\nx-client-id: client-one\n");
    /* Without sanitize the key material stays, the token and the spoofed id never do. */
    t.keys.sanitize = false;
    gw_buf_reset(&st);
    assert_int_equal(gw_mcp_auth_forward_headers(&t.route, in, GW_ARRAY_SIZE(in), GW_STR_NULL, out, 16, &n, &st), GW_OK);
    assert_int_equal(n, 4);
    assert_true(gw_str_eq_lit(out[0].name, "X-Api-Key"));
    /* Capacity. */
    assert_int_equal(gw_mcp_auth_forward_headers(&t.route, in, GW_ARRAY_SIZE(in), GW_STR_NULL, out, 2, &n, &st),
                     GW_TOOBIG);
    /* No route policy: only the credentials go. */
    route_t plain;
    route_init(&plain, "default/plain", NULL, NULL);
    assert_int_equal(gw_mcp_auth_forward_headers(&plain.route, in, GW_ARRAY_SIZE(in), GW_STR_NULL, out, 16, &n, &st),
                     GW_OK);
    assert_int_equal(n, 5);
    gw_buf_free(&st);
    /* Query parameters. */
    t.keys.sanitize = true;
    gw_buf_t q;
    gw_buf_init(&q, GW_BUF_UNLIMITED);
    const char *qs[][2] = {
        {"/mcp?api_key=k1&x=1", "/mcp?x=1"},
        {"/mcp?x=1&api%5Fkey=k1&y=2", "/mcp?x=1&y=2"},
        {"/mcp?api_key=k1", "/mcp"},
        {"/mcp", "/mcp"},
        {"/mcp?api_keyx=1", "/mcp?api_keyx=1"},
        {"/mcp?api_key=1#?api_key=2", "/mcp"},
        {"/mcp#x?api_key=1", "/mcp#x?api_key=1"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(qs); i++) {
        gw_buf_reset(&q);
        assert_int_equal(gw_mcp_auth_strip_query(&t.route, gw_str_c(qs[i][0]), &q), GW_OK);
        assert_string_equal(gw_buf_cstr(&q), qs[i][1]);
    }
    gw_buf_free(&q);
}

/* ------------------------------------------------------------------------------------------------
 * Cancellation and shutdown */

static void test_cancel(void **state)
{
    idp_t *f = idp_start();
    f->http->hang = true;
    char *uri = fmt("http://127.0.0.1:%u/jwks", f->http->port);
    route_t t;
    route_init(&t, "default/cancel", NULL, uri);
    char *tok = good_token(ec_b, "ec-b"), *v = fmt("Bearer %s", tok);
    gw_http_header_t h[] = {{GW_STR("Authorization"), gw_str_c(v)}};
    gw_http_req_t req = mkreq("/mcp", h, 1);
    outcome_t a = {0}, b = {0};
    gw_mcp_auth_req_t *ra = gw_mcp_auth_check(auth, &t.route, &req, on_result, &a);
    gw_mcp_auth_check(auth, &t.route, &req, on_result, &b);
    run_for(100);
    assert_int_equal(f->http->nreq, 1); /* one fetch for both */
    gw_mcp_auth_cancel(ra);
    /* A check already decided but not yet delivered can be cancelled too. */
    char *jwks = jwks_of(1, ec_b, "ec-b");
    route_t local;
    route_init(&local, "default/local", jwks, NULL);
    outcome_t c = {0};
    gw_mcp_auth_req_t *rc = gw_mcp_auth_check(auth, &local.route, &req, on_result, &c);
    gw_mcp_auth_cancel(rc);
    run_for(100);
    assert_false(a.called);
    assert_false(c.called);
    assert_false(b.called);
    /* b is still waiting when the authorizer goes away (teardown): its callback never runs and
     * nothing leaks. */
    free(v), free(tok), free(uri), free(jwks);
}

/* ------------------------------------------------------------------------------------------------
 * Extraction */

static void test_extraction(void **state)
{
    gw_str_t tok;
    gw_http_header_t h1[] = {{GW_STR("authorization"), GW_STR("  Bearer\tabc.def.ghi  ")}};
    assert_int_equal(gw_mcp_auth_bearer(h1, 1, &tok), GW_OK);
    assert_true(gw_str_eq_lit(tok, "abc.def.ghi"));
    gw_http_header_t h2[] = {{GW_STR("authorization"), GW_STR("Bearerabc")}};
    assert_int_equal(gw_mcp_auth_bearer(h2, 1, &tok), GW_DONE);
    gw_http_header_t h3[] = {{GW_STR("authorization"), GW_STR("Bearer a b")}};
    assert_int_equal(gw_mcp_auth_bearer(h3, 1, &tok), GW_EINVAL);
    gw_http_header_t h4[] = {{GW_STR("authorization"), GW_STR("Bearer")}};
    assert_int_equal(gw_mcp_auth_bearer(h4, 1, &tok), GW_EINVAL);
    assert_int_equal(gw_mcp_auth_bearer(NULL, 0, &tok), GW_DONE);

    gw_buf_t b;
    gw_buf_init(&b, 64);
    assert_int_equal(gw_mcp_auth_query_param(GW_STR("/p?a=1&b=%41%2b+&c"), GW_STR("b"), &b), GW_OK);
    assert_string_equal(gw_buf_cstr(&b), "A++");
    gw_buf_reset(&b);
    assert_int_equal(gw_mcp_auth_query_param(GW_STR("/p?a=1&c"), GW_STR("c"), &b), GW_OK);
    assert_int_equal(b.len, 0);
    assert_int_equal(gw_mcp_auth_query_param(GW_STR("/p?a=%4"), GW_STR("a"), &b), GW_EINVAL);
    assert_int_equal(gw_mcp_auth_query_param(GW_STR("/p?a=%zz"), GW_STR("a"), &b), GW_EINVAL);
    assert_int_equal(gw_mcp_auth_query_param(GW_STR("/p?ab=1#a=2"), GW_STR("a"), &b), GW_DONE);
    assert_int_equal(gw_mcp_auth_query_param(GW_STR("/p"), GW_STR("a"), &b), GW_DONE);
    assert_int_equal(gw_mcp_auth_query_param(GW_STR("/p#?a=1"), GW_STR("a"), &b), GW_DONE);
    gw_buf_reset(&b);
    assert_int_equal(gw_mcp_auth_query_param(GW_STR("/p?a=0123456789012345678901234567890123456789012345678901234567890123456789"),
                                             GW_STR("a"), &b),
                     GW_TOOBIG);
    gw_buf_free(&b);

    gw_str_t v;
    assert_int_equal(gw_mcp_auth_cookie(GW_STR("a=1; k = \"x y\" ;b=2"), GW_STR("k"), &v), GW_OK);
    assert_true(gw_str_eq_lit(v, "x y"));
    assert_int_equal(gw_mcp_auth_cookie(GW_STR("ka=1; k"), GW_STR("k"), &v), GW_DONE);
    assert_int_equal(gw_mcp_auth_cookie(GW_STR(";;k=;"), GW_STR("k"), &v), GW_OK);
    assert_int_equal(v.len, 0);

    gw_buf_t u;
    gw_buf_init(&u, GW_BUF_UNLIMITED);
    assert_int_equal(gw_mcp_auth_parse_server_metadata(GW_STR("{\"issuer\":\"https://i/\",\"jwks_uri\":\"https:\\/\\/i\\/k\"}"),
                                                       GW_STR("https://i"), &u),
                     GW_OK);
    assert_string_equal(gw_buf_cstr(&u), "https://i/k");
    gw_buf_reset(&u);
    assert_int_equal(gw_mcp_auth_parse_server_metadata(GW_STR("{\"issuer\":\"https://i\"}"), GW_STR("https://i"), &u),
                     GW_DONE);
    assert_int_equal(gw_mcp_auth_parse_server_metadata(GW_STR("{\"issuer\":\"https://j\",\"jwks_uri\":\"https://i/k\"}"),
                                                       GW_STR("https://i"), &u),
                     GW_EINVAL);
    assert_int_equal(gw_mcp_auth_parse_server_metadata(GW_STR("{\"issuer\":\"https://i\",\"jwks_uri\":\"file:///etc\"}"),
                                                       GW_STR("https://i"), &u),
                     GW_EINVAL);
    assert_int_equal(gw_mcp_auth_parse_server_metadata(GW_STR("{\"issuer\":\"https://i\",\"jwks_uri\":\"https://u@i/k\"}"),
                                                       GW_STR("https://i"), &u),
                     GW_EINVAL);
    assert_int_equal(gw_mcp_auth_parse_server_metadata(GW_STR("{\"issuer\":\"https://i\",\"issuer\":\"https://i\"}"),
                                                       GW_STR("https://i"), &u),
                     GW_EINVAL);
    assert_int_equal(gw_mcp_auth_parse_server_metadata(GW_STR("[]"), GW_STR("https://i"), &u), GW_EINVAL);
    assert_int_equal(u.len, 0);
    gw_buf_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_rs256_es256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_challenges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audience_defaults_to_resource, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_scopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_rotation_and_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_cache_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_metadata_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_well_known_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forwarding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extraction, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
