/* Unit tests for auth/jwt: keys generated at test time (RSA 2048, P-256, P-384, Ed25519), JWKS built
 * and tokens signed here with OpenSSL, then every algorithm, every status, tampering of every
 * character, algorithm-confusion attempts (RS256 against an EC key, "none", HS256 keyed with the
 * public key, pinned algorithms, embedded keys), claim rules, limits, hostile input, threads, timing,
 * and the WWW-Authenticate value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/jwt.h"
#include "codec/base64.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOW 1750000000
#define ISS "https://idp.example.com/realms/mcp"
#define AUD "https://gw.example.com/mcp"

/* ---------------------------------------------------------------------------------------------
 * Test-side JOSE: keys, JWK export, signing. Written here from RFC 7515/7517/7518 so the library
 * is checked against an independent producer.
 */

static EVP_PKEY *rsa_key, *rsa_key2, *ec_key, *ec384_key, *ed_key, *attacker_ec;
static char *jwks_json;   /* rsa-1, rsa-2, ec-1, ec384-1, ed-1, rsa-pinned (alg RS256 on rsa_key2) */
static gw_jwks_t *jwks;

static char *b64u(const void *p, size_t n)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    assert_int_equal(gw_base64_encode(GW_BASE64_URL, p, n, &b), GW_OK);
    char *s = strdup(gw_buf_cstr(&b));
    gw_buf_free(&b);
    return s;
}

static char *bn_b64u(const BIGNUM *bn, int pad)
{
    int n = pad ? pad : BN_num_bytes(bn);
    unsigned char *buf = malloc((size_t)n);
    assert_int_equal(BN_bn2binpad(bn, buf, n), n);
    char *s = b64u(buf, (size_t)n);
    free(buf);
    return s;
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
    char *s = strdup(gw_buf_cstr(&b));
    gw_buf_free(&b);
    return s;
}

/* The public JWK members (without braces) of a key. */
static char *jwk_members(EVP_PKEY *k)
{
    if (EVP_PKEY_is_a(k, "RSA")) {
        BIGNUM *n = NULL, *e = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e), 1);
        char *ns = bn_b64u(n, 0), *es = bn_b64u(e, 0);
        char *s = fmt("\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"", ns, es);
        free(ns), free(es), BN_free(n), BN_free(e);
        return s;
    }
    if (EVP_PKEY_is_a(k, "EC")) {
        char group[32];
        BIGNUM *x = NULL, *y = NULL;
        assert_int_equal(EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL), 1);
        bool p384 = strcmp(group, "secp384r1") == 0;
        assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
        char *xs = bn_b64u(x, p384 ? 48 : 32), *ys = bn_b64u(y, p384 ? 48 : 32);
        char *s = fmt("\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"", p384 ? "P-384" : "P-256", xs, ys);
        free(xs), free(ys), BN_free(x), BN_free(y);
        return s;
    }
    unsigned char raw[32];
    size_t len = sizeof(raw);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &len), 1);
    char *xs = b64u(raw, len);
    char *s = fmt("\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"", xs);
    free(xs);
    return s;
}

static const char *alg_md(const char *alg)
{
    if (strcmp(alg, "EdDSA") == 0)
        return NULL;
    if (strstr(alg, "384"))
        return "SHA384";
    if (strstr(alg, "512"))
        return "SHA512";
    return "SHA256";
}

/* JWS signature of input with key under alg, JOSE form (r||s for ECDSA). */
static unsigned char *sign(EVP_PKEY *k, const char *alg, const char *input, size_t *sig_len)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit_ex(m, &pctx, alg_md(alg), NULL, NULL, k, NULL), 1);
    if (alg[0] == 'P') {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
    }
    size_t n = 0;
    assert_int_equal(EVP_DigestSign(m, NULL, &n, (const unsigned char *)input, strlen(input)), 1);
    unsigned char *sig = malloc(n);
    assert_int_equal(EVP_DigestSign(m, sig, &n, (const unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(m);
    if (alg[0] == 'E' && alg[1] == 'S') {
        int half = strstr(alg, "384") ? 48 : 32;
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        assert_non_null(es);
        unsigned char *rs = malloc((size_t)half * 2);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, half), half);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + half, half), half);
        ECDSA_SIG_free(es);
        free(sig);
        sig = rs;
        n = (size_t)half * 2;
    }
    *sig_len = n;
    return sig;
}

/* header and claims are JSON texts; key NULL gives an empty signature. */
static char *token_raw(const char *header, const char *claims, EVP_PKEY *k, const char *sign_alg)
{
    char *h = b64u(header, strlen(header)), *c = b64u(claims, strlen(claims));
    char *input = fmt("%s.%s", h, c);
    char *sig64 = strdup("");
    if (k) {
        size_t n;
        unsigned char *sig = sign(k, sign_alg, input, &n);
        free(sig64);
        sig64 = b64u(sig, n);
        free(sig);
    }
    char *t = fmt("%s.%s", input, sig64);
    free(h), free(c), free(input), free(sig64);
    return t;
}

static char *std_claims(void)
{
    return fmt("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"alice@example.com\",\"exp\":%d,\"iat\":%d,"
               "\"scope\":\"mcp:tools mcp:read\"}",
               NOW + 600, NOW - 10);
}

static char *token(const char *alg, const char *kid, EVP_PKEY *k, const char *claims)
{
    char *header = kid ? fmt("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid)
                       : fmt("{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    char *c = claims ? NULL : std_claims();
    char *t = token_raw(header, claims ? claims : c, k, alg);
    free(header);
    free(c);
    return t;
}

static gw_str_t audiences[] = {GW_STR("https://other.example.com"), GW_STR(AUD)};

static gw_jwt_verify_opts_t opts(void)
{
    gw_jwt_verify_opts_t o = {
        .issuer = GW_STR(ISS),
        .audiences = audiences,
        .n_audiences = 2,
        .now = NOW,
        .skew = -1,
    };
    return o;
}

static int verify_with(const gw_jwks_t *set, const char *tok, const gw_jwt_verify_opts_t *o)
{
    gw_jwt_claims_t c;
    int rc = gw_jwt_verify(set, gw_str_c(tok), o, &c);
    if (rc != GW_OK && rc != GW_JWT_ESCOPE) {
        assert_null(c.storage_);
        assert_null(c.scopes);
        assert_int_equal(c.subject.len, 0);
    }
    gw_jwt_claims_free(&c);
    return rc;
}

static int verify(const char *tok)
{
    gw_jwt_verify_opts_t o = opts();
    return verify_with(jwks, tok, &o);
}

/* Signs std-shaped claims with extra text spliced in, verifies, frees. */
static int verify_claims(const char *claims, const gw_jwt_verify_opts_t *o)
{
    char *t = token("ES256", "ec-1", ec_key, claims);
    int rc = verify_with(jwks, t, o);
    free(t);
    return rc;
}

static EVP_PKEY *gen(const char *type, const char *param)
{
    EVP_PKEY *k = param ? EVP_PKEY_Q_keygen(NULL, NULL, type, param) : EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(k);
    return k;
}

static int setup(void **state)
{
    (void)state;
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_key2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = gen("EC", "P-256");
    ec384_key = gen("EC", "P-384");
    ed_key = gen("ED25519", NULL);
    attacker_ec = gen("EC", "P-256");
    if (!rsa_key || !rsa_key2)
        return -1;
    char *r1 = jwk_members(rsa_key), *r2 = jwk_members(rsa_key2), *e1 = jwk_members(ec_key);
    char *e3 = jwk_members(ec384_key), *d1 = jwk_members(ed_key);
    jwks_json = fmt("{\"keys\":[{%s,\"kid\":\"rsa-1\",\"use\":\"sig\"},{%s,\"kid\":\"rsa-2\"},{%s,\"kid\":\"ec-1\"},"
                    "{%s,\"kid\":\"ec384-1\",\"alg\":\"ES384\"},{%s,\"kid\":\"ed-1\"},"
                    "{%s,\"kid\":\"rsa-pinned\",\"alg\":\"RS256\"}]}",
                    r1, r2, e1, e3, d1, r2);
    free(r1), free(r2), free(e1), free(e3), free(d1);
    size_t skipped = 99;
    if (gw_jwks_parse(jwks_json, strlen(jwks_json), &jwks, &skipped) != GW_OK || skipped != 0 ||
        gw_jwks_count(jwks) != 6)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gw_jwks_unref(jwks);
    free(jwks_json);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_key2);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec384_key);
    EVP_PKEY_free(ed_key);
    EVP_PKEY_free(attacker_ec);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Good tokens.
 */

static void test_every_algorithm(void **state)
{
    (void)state;
    struct {
        const char *alg, *kid;
        EVP_PKEY **key;
    } cases[] = {
        {"RS256", "rsa-1", &rsa_key}, {"RS384", "rsa-1", &rsa_key}, {"RS512", "rsa-2", &rsa_key2},
        {"PS256", "rsa-1", &rsa_key}, {"PS384", "rsa-2", &rsa_key2}, {"PS512", "rsa-1", &rsa_key},
        {"ES256", "ec-1", &ec_key},   {"ES384", "ec384-1", &ec384_key}, {"EdDSA", "ed-1", &ed_key},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        for (int with_kid = 0; with_kid < 2; with_kid++) {
            char *t = token(cases[i].alg, with_kid ? cases[i].kid : NULL, *cases[i].key, NULL);
            gw_jwt_verify_opts_t o = opts();
            gw_jwt_claims_t c;
            int rc = gw_jwt_verify(jwks, gw_str_c(t), &o, &c);
            if (rc != GW_OK)
                fail_msg("%s kid=%d: %s", cases[i].alg, with_kid, gw_jwt_strerror(rc));
            assert_true(gw_str_eq(c.subject, GW_STR("alice@example.com")));
            assert_int_equal(c.n_scopes, 2);
            assert_true(gw_str_eq(c.scopes[0], GW_STR("mcp:tools")));
            assert_true(gw_str_eq(c.scopes[1], GW_STR("mcp:read")));
            assert_int_equal(c.expires_at, NOW + 600);
            assert_true(gw_str_eq(c.alg, gw_str_c(cases[i].alg)));
            gw_jwt_claims_free(&c);
            gw_jwt_claims_free(&c);
            /* The same token with one signature byte changed fails on the signature. */
            char *dot = strrchr(t, '.');
            dot[1] = dot[1] == 'A' ? 'B' : 'A';
            assert_int_equal(verify(t), GW_JWT_EBAD_SIGNATURE);
            free(t);
        }
    }
}

/* The reference's #1560: '@' (and any other byte) in the subject must come through unchanged. */
static void test_subjects(void **state)
{
    (void)state;
    struct {
        const char *json, *want;
    } cases[] = {
        {"\"a@b@c\"", "a@b@c"},
        {"\"user@example.com@tenant\"", "user@example.com@tenant"},
        {"\"\\u00e9t\\u00e9@x\\n\\\"q\\\"\"", "\xc3\xa9t\xc3\xa9@x\n\"q\""},
        {"\"\"", ""},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char *claims = fmt("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":%s,\"exp\":%d}", cases[i].json, NOW + 60);
        char *t = token("ES256", "ec-1", ec_key, claims);
        gw_jwt_verify_opts_t o = opts();
        gw_jwt_claims_t c;
        assert_int_equal(gw_jwt_verify(jwks, gw_str_c(t), &o, &c), GW_OK);
        assert_true(gw_str_eq(c.subject, gw_str_c(cases[i].want)));
        assert_int_equal(c.n_scopes, 0);
        gw_jwt_claims_free(&c);
        free(t), free(claims);
    }
    gw_jwt_verify_opts_t o = opts();
    assert_int_equal(verify_claims("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1750000600}", &o), GW_OK);
    assert_int_equal(verify_claims("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":7,\"exp\":1750000600}", &o),
                     GW_JWT_EMALFORMED);
    assert_int_equal(verify_claims("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":null,\"exp\":1750000600}", &o),
                     GW_JWT_EMALFORMED);
}

/* ---------------------------------------------------------------------------------------------
 * Tampering and forgery.
 */

static void tamper_all(const char *t)
{
    size_t n = strlen(t);
    char *copy = malloc(n + 1);
    static const char alt[] = "Aa0-_=.+/ Qw";
    for (size_t i = 0; i < n; i++) {
        for (const char *c = alt; *c; c++) {
            if (*c == t[i])
                continue;
            memcpy(copy, t, n + 1);
            copy[i] = *c;
            int rc = verify(copy);
            if (rc == GW_OK)
                fail_msg("tampered token accepted at %zu", i);
            assert_true(rc == GW_JWT_EMALFORMED || rc == GW_JWT_EALG || rc == GW_JWT_EUNKNOWN_KEY ||
                        rc == GW_JWT_EBAD_SIGNATURE);
        }
    }
    /* Truncated at every length, and extended. */
    for (size_t k = 0; k < n; k++) {
        memcpy(copy, t, k);
        copy[k] = '\0';
        assert_int_not_equal(verify(copy), GW_OK);
    }
    char *longer = fmt("%sA", t);
    assert_int_not_equal(verify(longer), GW_OK);
    free(longer);
    free(copy);
}

static void test_tamper_every_char(void **state)
{
    (void)state;
    char *t1 = token("ES256", "ec-1", ec_key, NULL), *t2 = token("RS256", "rsa-1", rsa_key, NULL);
    char *t3 = token("EdDSA", NULL, ed_key, NULL);
    tamper_all(t1);
    tamper_all(t2);
    tamper_all(t3);
    free(t1), free(t2), free(t3);
}

static void test_forged_claims(void **state)
{
    (void)state;
    /* Swap in other claims under a genuine signature: bad signature. */
    char *good = token("RS256", "rsa-1", rsa_key, NULL);
    char *evil_claims = fmt("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"admin\",\"exp\":%d,"
                            "\"scope\":\"mcp:admin\"}", NOW + 600);
    char *evil = token("RS256", "rsa-1", rsa_key2, evil_claims); /* signed by the wrong key */
    char *p1 = strchr(good, '.'), *p2 = strchr(evil, '.');
    char *spliced = fmt("%.*s%.*s%s", (int)(p1 - good), good, (int)(strrchr(evil, '.') - p2), p2, strrchr(good, '.'));
    assert_int_equal(verify(spliced), GW_JWT_EBAD_SIGNATURE);
    assert_int_equal(verify(evil), GW_JWT_EBAD_SIGNATURE);
    /* A key not in the set, with no kid: every fitting key is tried, none verifies. */
    char *att = token("ES256", NULL, attacker_ec, NULL);
    assert_int_equal(verify(att), GW_JWT_EBAD_SIGNATURE);
    free(good), free(evil_claims), free(evil), free(spliced), free(att);
}

/* ---------------------------------------------------------------------------------------------
 * Algorithm confusion.
 */

static char *hs256_token(const void *secret, size_t secret_len, const char *kid)
{
    char *header = kid ? fmt("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid)
                       : strdup("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    char *claims = std_claims();
    char *h = b64u(header, strlen(header)), *c = b64u(claims, strlen(claims));
    char *input = fmt("%s.%s", h, c);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    assert_non_null(HMAC(EVP_sha256(), secret, (int)secret_len, (unsigned char *)input, strlen(input), mac, &mac_len));
    char *m = b64u(mac, mac_len);
    char *t = fmt("%s.%s", input, m);
    free(header), free(claims), free(h), free(c), free(input), free(m);
    return t;
}

static void test_alg_confusion(void **state)
{
    (void)state;
    /* RS256 signed with the RSA key, but naming the EC key: no RSA key has that kid. */
    char *t = token("RS256", "ec-1", rsa_key, NULL);
    assert_int_equal(verify(t), GW_JWT_EUNKNOWN_KEY);
    free(t);
    /* ES256 naming an RSA kid. */
    t = token("ES256", "rsa-1", ec_key, NULL);
    assert_int_equal(verify(t), GW_JWT_EUNKNOWN_KEY);
    free(t);
    /* ES384 on the P-256 key: the curve must fit the algorithm. */
    t = token("ES384", "ec-1", ec_key, NULL);
    assert_int_equal(verify(t), GW_JWT_EUNKNOWN_KEY);
    free(t);
    /* EdDSA naming the EC key. */
    t = token("EdDSA", "ec-1", ed_key, NULL);
    assert_int_equal(verify(t), GW_JWT_EUNKNOWN_KEY);
    free(t);
    /* Pinned "alg": RS256 on rsa-pinned. A valid PS256 signature by the same key is refused, and
     * RS256 goes through. */
    t = token("PS256", "rsa-pinned", rsa_key2, NULL);
    assert_int_equal(verify(t), GW_JWT_EUNKNOWN_KEY);
    free(t);
    t = token("RS256", "rsa-pinned", rsa_key2, NULL);
    assert_int_equal(verify(t), GW_OK);
    free(t);
    /* ec384-1 is pinned to ES384, the only algorithm its curve allows anyway. */
    t = token("ES384", "ec384-1", ec384_key, NULL);
    assert_int_equal(verify(t), GW_OK);
    free(t);

    /* "none", in any spelling, with or without a signature. */
    const char *nones[] = {"none", "None", "NONE", "nOnE", ""};
    for (size_t i = 0; i < GW_ARRAY_SIZE(nones); i++) {
        char *h = fmt("{\"alg\":\"%s\",\"typ\":\"JWT\"}", nones[i]);
        char *c = std_claims();
        t = token_raw(h, c, NULL, NULL);
        assert_int_equal(verify(t), GW_JWT_EALG);
        free(t);
        t = token_raw(h, c, ec_key, "ES256"); /* a real signature does not make "none" acceptable */
        assert_int_equal(verify(t), GW_JWT_EALG);
        free(t), free(h), free(c);
    }
    /* HS256 "signed" with what an attacker can get of the public key: the JWK, its n, the PEM. */
    char *members = jwk_members(rsa_key);
    t = hs256_token(members, strlen(members), "rsa-1");
    assert_int_equal(verify(t), GW_JWT_EALG);
    free(t);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, rsa_key), 1);
    char *pem;
    long pem_len = BIO_get_mem_data(bio, &pem);
    t = hs256_token(pem, (size_t)pem_len, NULL);
    assert_int_equal(verify(t), GW_JWT_EALG);
    free(t);
    BIO_free(bio);
    free(members);
    const char *others[] = {"HS384", "HS512", "ES512", "RS1", "PS256K", "ES256K", "Ed25519", "RSA-OAEP", "dir", "rs256"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(others); i++) {
        char *h = fmt("{\"alg\":\"%s\"}", others[i]);
        t = token_raw(h, "{}", NULL, NULL);
        assert_int_equal(verify(t), GW_JWT_EALG);
        free(t), free(h);
    }
    /* "alg" must be a string. */
    t = token_raw("{\"alg\":[\"RS256\"]}", "{}", NULL, NULL);
    assert_int_equal(verify(t), GW_JWT_EMALFORMED);
    free(t);

    /* A key embedded in the header ("jwk", "jku", "x5u", "x5c") is never trusted. */
    char *att = jwk_members(attacker_ec);
    char *h = fmt("{\"alg\":\"ES256\",\"jwk\":{%s},\"jku\":\"https://evil.example/jwks\",\"x5u\":\"https://evil.example\","
                  "\"x5c\":[\"MIIB\"]}", att);
    char *c = std_claims();
    t = token_raw(h, c, attacker_ec, "ES256");
    assert_int_equal(verify(t), GW_JWT_EBAD_SIGNATURE);
    free(t), free(h);
    h = fmt("{\"alg\":\"ES256\",\"kid\":\"attacker\",\"jwk\":{%s,\"kid\":\"attacker\"}}", att);
    t = token_raw(h, c, attacker_ec, "ES256");
    assert_int_equal(verify(t), GW_JWT_EUNKNOWN_KEY);
    free(t), free(h), free(att);

    /* "crit": no extension is understood, so the token is refused even when validly signed. */
    t = token_raw("{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"crit\":[\"exp\"],\"exp\":1}", c, ec_key, "ES256");
    assert_int_equal(verify(t), GW_JWT_EMALFORMED);
    free(t);
    t = token_raw("{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"b64\":false,\"crit\":[\"b64\"]}", c, ec_key, "ES256");
    assert_int_equal(verify(t), GW_JWT_EMALFORMED);
    free(t);

    /* An ECDSA signature in DER instead of r||s, and one of the wrong length. */
    char *good = token("ES256", "ec-1", ec_key, NULL);
    char *input = strndup(good, (size_t)(strrchr(good, '.') - good));
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t der_len = sizeof(der);
    assert_int_equal(EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, ec_key, NULL), 1);
    assert_int_equal(EVP_DigestSign(m, der, &der_len, (unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(m);
    char *der64 = b64u(der, der_len);
    t = fmt("%s.%s", input, der64);
    assert_int_equal(verify(t), GW_JWT_EBAD_SIGNATURE);
    free(t);
    char *short64 = b64u(der, 63);
    t = fmt("%s.%s", input, short64);
    assert_int_equal(verify(t), GW_JWT_EBAD_SIGNATURE);
    free(t), free(short64), free(der64), free(input), free(good), free(c);
}

static void test_kid(void **state)
{
    (void)state;
    char *t = token("RS256", "nope", rsa_key, NULL);
    assert_int_equal(verify(t), GW_JWT_EUNKNOWN_KEY);
    free(t);
    /* Without kid, the second fitting key verifies. */
    t = token("RS256", NULL, rsa_key2, NULL);
    assert_int_equal(verify(t), GW_OK);
    free(t);
    /* kid with escapes naming the same key. */
    t = token("RS256", "rsa\\u002d1", rsa_key, NULL);
    assert_int_equal(verify(t), GW_OK);
    free(t);
    char *c = std_claims();
    t = token_raw("{\"alg\":\"RS256\",\"kid\":1}", c, rsa_key, "RS256");
    assert_int_equal(verify(t), GW_JWT_EMALFORMED);
    free(t);
    /* Two keys under one kid (a rotation published carelessly): both are tried. */
    char *r1 = jwk_members(rsa_key), *r2 = jwk_members(rsa_key2);
    char *doc = fmt("{\"keys\":[{%s,\"kid\":\"k\"},{%s,\"kid\":\"k\"}]}", r1, r2);
    gw_jwks_t *set;
    assert_int_equal(gw_jwks_parse(doc, strlen(doc), &set, NULL), GW_OK);
    gw_jwt_verify_opts_t o = opts();
    t = token("RS256", "k", rsa_key2, NULL);
    assert_int_equal(verify_with(set, t, &o), GW_OK);
    free(t);
    /* An empty key set knows no key. */
    gw_jwks_t *empty;
    assert_int_equal(gw_jwks_parse("{\"keys\":[]}", 11, &empty, NULL), GW_OK);
    t = token("RS256", NULL, rsa_key, NULL);
    assert_int_equal(verify_with(empty, t, &o), GW_JWT_EUNKNOWN_KEY);
    free(t);
    gw_jwks_unref(empty);
    gw_jwks_unref(set);
    free(r1), free(r2), free(doc), free(c);
}

/* ---------------------------------------------------------------------------------------------
 * Claims.
 */

static void test_time_claims(void **state)
{
    (void)state;
    gw_jwt_verify_opts_t o = opts();
    char buf[256];
#define CL(...) (snprintf(buf, sizeof(buf), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"," __VA_ARGS__), buf)
    assert_int_equal(verify_claims(CL("\"exp\":%d}", NOW), &o), GW_OK); /* within the default skew */
    assert_int_equal(verify_claims(CL("\"exp\":%d}", NOW - 59), &o), GW_OK);
    assert_int_equal(verify_claims(CL("\"exp\":%d}", NOW - 60), &o), GW_JWT_EEXPIRED);
    assert_int_equal(verify_claims(CL("\"exp\":%d}", 0), &o), GW_JWT_EEXPIRED);
    o.skew = 0;
    assert_int_equal(verify_claims(CL("\"exp\":%d}", NOW + 1), &o), GW_OK);
    assert_int_equal(verify_claims(CL("\"exp\":%d}", NOW), &o), GW_JWT_EEXPIRED);
    assert_int_equal(verify_claims(CL("\"exp\":%d,\"nbf\":%d}", NOW + 99, NOW), &o), GW_OK);
    assert_int_equal(verify_claims(CL("\"exp\":%d,\"nbf\":%d}", NOW + 99, NOW + 1), &o), GW_JWT_ENOT_YET_VALID);
    o.skew = -1;
    assert_int_equal(verify_claims(CL("\"exp\":%d,\"nbf\":%d}", NOW + 99, NOW + 60), &o), GW_OK);
    assert_int_equal(verify_claims(CL("\"exp\":%d,\"nbf\":%d}", NOW + 99, NOW + 61), &o), GW_JWT_ENOT_YET_VALID);
    assert_int_equal(verify_claims(CL("\"exp\":%d,\"iat\":%d}", NOW + 99, NOW + 60), &o), GW_OK);
    assert_int_equal(verify_claims(CL("\"exp\":%d,\"iat\":%d}", NOW + 99, NOW + 61), &o), GW_JWT_ENOT_YET_VALID);
    o.skew = 3600;
    assert_int_equal(verify_claims(CL("\"exp\":%d}", NOW - 3599), &o), GW_OK);
    o.skew = INT64_MAX; /* saturates instead of overflowing */
    assert_int_equal(verify_claims(CL("\"exp\":%d}", NOW - 3599), &o), GW_OK);
    o = opts();
    o.now = INT64_MAX;
    assert_int_equal(verify_claims(CL("\"exp\":%d}", NOW), &o), GW_JWT_EEXPIRED);
    o = opts();
    /* NumericDate spellings. */
    assert_int_equal(verify_claims(CL("\"exp\":1750000600.75}"), &o), GW_OK);
    assert_int_equal(verify_claims(CL("\"exp\":1.7500006e9}"), &o), GW_OK);
    assert_int_equal(verify_claims(CL("\"exp\":99999999999999999999999}"), &o), GW_JWT_EMALFORMED);
    assert_int_equal(verify_claims(CL("\"exp\":18446744073709551615}"), &o), GW_OK); /* saturates */
    assert_int_equal(verify_claims(CL("\"exp\":-1}"), &o), GW_JWT_EMALFORMED);
    assert_int_equal(verify_claims(CL("\"exp\":\"1750000600\"}"), &o), GW_JWT_EMALFORMED);
    assert_int_equal(verify_claims(CL("\"exp\":null}"), &o), GW_JWT_EMALFORMED);
    assert_int_equal(verify_claims(CL("\"exp\":1750000600.55e1}"), &o), GW_JWT_EMALFORMED);
    assert_int_equal(verify_claims(CL("\"exp\":1750000600,\"nbf\":true}"), &o), GW_JWT_EMALFORMED);
    assert_int_equal(verify_claims(CL("\"exp\":1750000600,\"iat\":\"x\"}"), &o), GW_JWT_EMALFORMED);
    /* exp is required. */
    assert_int_equal(verify_claims(CL("\"sub\":\"x\"}"), &o), GW_JWT_EMALFORMED);
    /* Duplicate claims would let two parsers disagree: refused. */
    assert_int_equal(verify_claims(CL("\"exp\":1,\"exp\":1750000600}"), &o), GW_JWT_EMALFORMED);
#undef CL
}

static void test_issuer(void **state)
{
    (void)state;
    gw_jwt_verify_opts_t o = opts();
    assert_int_equal(verify_claims("{\"iss\":\"https://evil.example.com\",\"aud\":\"" AUD "\",\"exp\":1750000600}", &o),
                     GW_JWT_EISSUER);
    assert_int_equal(verify_claims("{\"iss\":\"" ISS "/\",\"aud\":\"" AUD "\",\"exp\":1750000600}", &o),
                     GW_JWT_EISSUER);
    assert_int_equal(verify_claims("{\"aud\":\"" AUD "\",\"exp\":1750000600}", &o), GW_JWT_EISSUER);
    assert_int_equal(verify_claims("{\"iss\":[\"" ISS "\"],\"aud\":\"" AUD "\",\"exp\":1750000600}", &o),
                     GW_JWT_EMALFORMED);
    /* Escapes compare after unescaping. */
    assert_int_equal(
        verify_claims("{\"iss\":\"https:\\/\\/idp.example.com\\/realms\\/mcp\",\"aud\":\"" AUD "\",\"exp\":1750000600}", &o),
        GW_OK);
    /* Issuer checked before audience and time. */
    assert_int_equal(verify_claims("{\"iss\":\"x\",\"aud\":\"y\",\"exp\":1}", &o), GW_JWT_EISSUER);
    o.skip_issuer = true;
    assert_int_equal(verify_claims("{\"aud\":\"" AUD "\",\"exp\":1750000600}", &o), GW_OK);
    o = opts();
    o.issuer = GW_STR_NULL;
    assert_int_equal(verify_claims("{\"aud\":\"" AUD "\",\"exp\":1750000600}", &o), GW_EINVAL);
}

static void test_audience(void **state)
{
    (void)state;
    gw_jwt_verify_opts_t o = opts();
#define A(aud) verify_claims("{\"iss\":\"" ISS "\",\"aud\":" aud ",\"exp\":1750000600}", &o)
    assert_int_equal(A("\"" AUD "\""), GW_OK);
    assert_int_equal(A("[\"https://a.example\",\"" AUD "\"]"), GW_OK);
    assert_int_equal(A("\"https://other.example.com\""), GW_OK); /* the other configured audience */
    assert_int_equal(A("[\"https://a.example\"]"), GW_JWT_EAUDIENCE);
    assert_int_equal(A("[]"), GW_JWT_EAUDIENCE);
    assert_int_equal(A("\"" AUD "/\""), GW_JWT_EAUDIENCE);
    assert_int_equal(A("\"https://gw.example.com\""), GW_JWT_EAUDIENCE);
    assert_int_equal(A("\"HTTPS://GW.EXAMPLE.COM/mcp\""), GW_JWT_EAUDIENCE);
    assert_int_equal(A("[\"" AUD "\",1]"), GW_JWT_EMALFORMED);
    assert_int_equal(A("{\"x\":\"" AUD "\"}"), GW_JWT_EMALFORMED);
    assert_int_equal(A("null"), GW_JWT_EMALFORMED);
    assert_int_equal(verify_claims("{\"iss\":\"" ISS "\",\"exp\":1750000600}", &o), GW_JWT_EAUDIENCE);
    /* A malformed "aud" is malformed even next to a wrong issuer; a wrong one comes after the issuer. */
    assert_int_equal(verify_claims("{\"iss\":\"x\",\"aud\":[1],\"exp\":1750000600}", &o), GW_JWT_EMALFORMED);
    assert_int_equal(verify_claims("{\"iss\":\"x\",\"aud\":\"y\",\"exp\":1750000600}", &o), GW_JWT_EISSUER);
    /* Audience checked before time. */
    assert_int_equal(verify_claims("{\"iss\":\"" ISS "\",\"aud\":\"x\",\"exp\":1}", &o), GW_JWT_EAUDIENCE);
    o.skip_audience = true;
    assert_int_equal(A("\"https://a.example\""), GW_OK);
    assert_int_equal(verify_claims("{\"iss\":\"" ISS "\",\"exp\":1750000600}", &o), GW_OK);
    o = opts();
    o.n_audiences = 0;
    assert_int_equal(A("\"" AUD "\""), GW_EINVAL); /* forgetting to configure one is not "any audience" */
#undef A
}

static void test_scopes(void **state)
{
    (void)state;
    gw_str_t need_tools[] = {GW_STR("mcp:tools")}, need_two[] = {GW_STR("mcp:tools"), GW_STR("mcp:admin")};
    gw_jwt_verify_opts_t o = opts();
    o.required_scopes = need_tools;
    o.n_required_scopes = 1;
#define S(sc) verify_claims("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1750000600" sc "}", &o)
    assert_int_equal(S(",\"scope\":\"mcp:tools\""), GW_OK);
    assert_int_equal(S(",\"scope\":\"  a   mcp:tools  \""), GW_OK);
    assert_int_equal(S(",\"scope\":\"mcp:tool\""), GW_JWT_ESCOPE);
    assert_int_equal(S(",\"scope\":\"mcp:toolsx\""), GW_JWT_ESCOPE);
    assert_int_equal(S(",\"scope\":\"\""), GW_JWT_ESCOPE);
    assert_int_equal(S(""), GW_JWT_ESCOPE);
    assert_int_equal(S(",\"scp\":[\"a\",\"mcp:tools\"]"), GW_OK);
    assert_int_equal(S(",\"scp\":\"a mcp:tools\""), GW_OK); /* Azure AD's string form */
    assert_int_equal(S(",\"scp\":[\"a\"]"), GW_JWT_ESCOPE);
    assert_int_equal(S(",\"scope\":\"a\",\"scp\":[\"mcp:tools\"]"), GW_JWT_ESCOPE); /* "scope" wins */
    assert_int_equal(S(",\"scope\":[\"mcp:tools\"]"), GW_JWT_EMALFORMED);
    assert_int_equal(S(",\"scp\":[\"mcp:tools\",7]"), GW_JWT_EMALFORMED);
    assert_int_equal(S(",\"scp\":{}"), GW_JWT_EMALFORMED);
    o.required_scopes = need_two;
    o.n_required_scopes = 2;
    assert_int_equal(S(",\"scope\":\"mcp:admin mcp:tools\""), GW_OK);
    assert_int_equal(S(",\"scope\":\"mcp:tools\""), GW_JWT_ESCOPE);

    /* On ESCOPE the claims are there, so the caller can log who lacked what. */
    char *t = token("ES256", "ec-1", ec_key, NULL);
    gw_jwt_claims_t c;
    assert_int_equal(gw_jwt_verify(jwks, gw_str_c(t), &o, &c), GW_JWT_ESCOPE);
    assert_true(gw_str_eq(c.subject, GW_STR("alice@example.com")));
    assert_int_equal(c.n_scopes, 2);
    gw_jwt_claims_free(&c);
    /* Scope is checked last: an expired token lacking a scope is expired. */
    o.now = NOW + 10000;
    assert_int_equal(gw_jwt_verify(jwks, gw_str_c(t), &o, NULL), GW_JWT_EEXPIRED);
    free(t);

    /* The scope count limit. */
    o = opts();
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_appendf(&b, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1750000600,\"scope\":\"");
    for (int i = 0; i < GW_JWT_MAX_SCOPES; i++)
        gw_buf_appendf(&b, "s%d ", i);
    gw_buf_append_lit(&b, "\"}");
    assert_int_equal(verify_claims(gw_buf_cstr(&b), &o), GW_OK);
    b.len -= 2;
    gw_buf_append_lit(&b, "one-more\"}");
    assert_int_equal(verify_claims(gw_buf_cstr(&b), &o), GW_TOOBIG);
    gw_buf_free(&b);
#undef S
}

static void test_typ(void **state)
{
    (void)state;
    char *c = std_claims();
    struct {
        const char *typ;
        int want, want_strict;
    } cases[] = {
        {NULL, GW_OK, GW_JWT_EMALFORMED},
        {"JWT", GW_OK, GW_JWT_EMALFORMED},
        {"jwt", GW_OK, GW_JWT_EMALFORMED},
        {"at+jwt", GW_OK, GW_OK},
        {"AT+JWT", GW_OK, GW_OK},
        {"application/at+jwt", GW_OK, GW_OK},
        {"dpop+jwt", GW_JWT_EMALFORMED, GW_JWT_EMALFORMED},
        {"logout+jwt", GW_JWT_EMALFORMED, GW_JWT_EMALFORMED},
        {"", GW_JWT_EMALFORMED, GW_JWT_EMALFORMED},
        {"at\\u002bjwt", GW_JWT_EMALFORMED, GW_JWT_EMALFORMED},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char *h = cases[i].typ ? fmt("{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"typ\":\"%s\"}", cases[i].typ)
                               : strdup("{\"alg\":\"ES256\",\"kid\":\"ec-1\"}");
        char *t = token_raw(h, c, ec_key, "ES256");
        gw_jwt_verify_opts_t o = opts();
        assert_int_equal(verify_with(jwks, t, &o), cases[i].want);
        o.require_at_jwt = true;
        assert_int_equal(verify_with(jwks, t, &o), cases[i].want_strict);
        free(h), free(t);
    }
    char *t = token_raw("{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"typ\":5}", c, ec_key, "ES256");
    assert_int_equal(verify(t), GW_JWT_EMALFORMED);
    free(t), free(c);
}

/* ---------------------------------------------------------------------------------------------
 * Malformed, hostile, and over the limits.
 */

static void test_malformed(void **state)
{
    (void)state;
    char *good = token("ES256", "ec-1", ec_key, NULL);
    char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
    char *padded = fmt("%.*s=%s", (int)(d2 - good), good, d2);
    char *four = fmt("%s.AAAA", good);
    char *spaced = fmt(" %s", good);
    char *nul = strdup(good);
    nul[5] = '\0';
    const char *bad[] = {"", ".", "..", "...", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "eyJhbGciOiJFUzI1NiJ9..",
                         padded, four, spaced};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        int rc = verify(bad[i]);
        if (rc != GW_JWT_EMALFORMED)
            fail_msg("case %zu: %s", i, gw_jwt_strerror(rc));
    }
    gw_jwt_verify_opts_t o = opts();
    assert_int_equal(gw_jwt_verify(jwks, gw_str(nul, strlen(good)), &o, NULL), GW_JWT_EMALFORMED);
    /* Headers that are not JSON objects, or not strict JSON. */
    const char *headers[] = {"[\"alg\",\"ES256\"]", "\"ES256\"", "{\"alg\":\"ES256\",}", "{'alg':'ES256'}",
                             "{\"alg\":\"ES256\",\"alg\":\"none\"}", "{\"alg\":\"ES256\"} x", "{\"alg\":\"ES\\u0000\"}",
                             "{\"alg\":\"ES256\",\"x\":\"\xff\"}", "{}"};
    char *c = std_claims();
    for (size_t i = 0; i < GW_ARRAY_SIZE(headers); i++) {
        char *t = token_raw(headers[i], c, ec_key, "ES256");
        int rc = verify(t);
        if (rc != GW_JWT_EMALFORMED)
            fail_msg("header %zu: %s", i, gw_jwt_strerror(rc));
        free(t);
    }
    /* Claims that are not an object, under a valid signature. */
    const char *bodies[] = {"[]", "\"x\"", "1750000600", "{\"exp\":1750000600", "null"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bodies); i++) {
        char *t = token("ES256", "ec-1", ec_key, bodies[i]);
        assert_int_equal(verify(t), GW_JWT_EMALFORMED);
        free(t);
    }
    /* Signature that is not base64url. */
    char *t = fmt("%.*s.AA$A", (int)(d2 - good), good);
    assert_int_equal(verify(t), GW_JWT_EMALFORMED);
    free(t);
    (void)d1;
    /* Bad arguments. */
    assert_int_equal(gw_jwt_verify(NULL, gw_str_c(good), &o, NULL), GW_EINVAL);
    assert_int_equal(gw_jwt_verify(jwks, gw_str_c(good), NULL, NULL), GW_EINVAL);
    assert_int_equal(gw_jwt_verify(jwks, (gw_str_t){NULL, 5}, &o, NULL), GW_EINVAL);
    assert_int_equal(gw_jwt_verify(jwks, GW_STR_NULL, &o, NULL), GW_JWT_EMALFORMED);
    o.required_scopes = NULL;
    o.n_required_scopes = 1;
    assert_int_equal(gw_jwt_verify(jwks, gw_str_c(good), &o, NULL), GW_EINVAL);
    free(good), free(padded), free(four), free(spaced), free(nul), free(c);
}

static void test_limits(void **state)
{
    (void)state;
    /* A token right at the size limit verifies; one byte more is refused before any work. */
    gw_buf_t cl;
    gw_buf_init(&cl, GW_BUF_UNLIMITED);
    gw_buf_appendf(&cl, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d,\"pad\":\"", NOW + 60);
    size_t base = cl.len;
    char *t = NULL;
    for (size_t pad = 11000; pad < 13000; pad++) { /* find the padding that lands exactly on the limit */
        cl.len = base;
        for (size_t i = 0; i < pad; i++)
            gw_buf_append_lit(&cl, "x");
        gw_buf_append_lit(&cl, "\"}");
        free(t);
        t = token("ES256", "ec-1", ec_key, gw_buf_cstr(&cl));
        if (strlen(t) >= GW_JWT_MAX_TOKEN - 3)
            break;
    }
    assert_true(strlen(t) <= GW_JWT_MAX_TOKEN);
    assert_int_equal(verify(t), GW_OK);
    gw_buf_free(&cl);
    size_t n = GW_JWT_MAX_TOKEN + 1;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    big[n] = '\0';
    memcpy(big, t, strlen(t));
    assert_int_equal(verify(big), GW_TOOBIG);
    free(big);
    free(t);

    /* JSON nesting beyond GW_JWT_MAX_DEPTH in the header and in the (signed) claims. */
    gw_buf_t deep;
    gw_buf_init(&deep, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&deep, "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"x\":");
    for (int i = 0; i < GW_JWT_MAX_DEPTH; i++)
        gw_buf_append_lit(&deep, "[");
    for (int i = 0; i < GW_JWT_MAX_DEPTH; i++)
        gw_buf_append_lit(&deep, "]");
    gw_buf_append_lit(&deep, "}");
    char *c = std_claims();
    t = token_raw(gw_buf_cstr(&deep), c, ec_key, "ES256");
    assert_int_equal(verify(t), GW_JWT_EMALFORMED);
    free(t);
    /* One level less verifies. */
    gw_buf_reset(&deep);
    gw_buf_append_lit(&deep, "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"x\":");
    for (int i = 0; i < GW_JWT_MAX_DEPTH - 1; i++)
        gw_buf_append_lit(&deep, "[");
    for (int i = 0; i < GW_JWT_MAX_DEPTH - 1; i++)
        gw_buf_append_lit(&deep, "]");
    gw_buf_append_lit(&deep, "}");
    t = token_raw(gw_buf_cstr(&deep), c, ec_key, "ES256");
    assert_int_equal(verify(t), GW_OK);
    free(t);
    gw_buf_reset(&deep);
    gw_buf_appendf(&deep, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%d,\"x\":", NOW + 60);
    for (int i = 0; i < 200; i++)
        gw_buf_append_lit(&deep, "{\"a\":");
    gw_buf_append_lit(&deep, "1");
    for (int i = 0; i < 200; i++)
        gw_buf_append_lit(&deep, "}");
    gw_buf_append_lit(&deep, "}");
    t = token("ES256", "ec-1", ec_key, gw_buf_cstr(&deep));
    assert_int_equal(verify(t), GW_JWT_EMALFORMED);
    free(t);
    gw_buf_free(&deep);
    free(c);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_hostile_tokens(void **state)
{
    (void)state;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char buf[600];
    gw_jwt_verify_opts_t o = opts();
    /* Random bytes; random base64url with dots; a real header with random rest. */
    char *good = token("ES256", "ec-1", ec_key, NULL);
    size_t hlen = (size_t)(strchr(good, '.') - good);
    for (int i = 0; i < 30000; i++) {
        size_t n = rng() % sizeof(buf);
        int kind = i % 3;
        for (size_t k = 0; k < n; k++)
            buf[k] = kind == 0 ? (char)rng() : (rng() % 20 == 0 ? '.' : b64[rng() % 64]);
        if (kind == 2 && n > hlen + 1) {
            memcpy(buf, good, hlen);
            buf[hlen] = '.';
        }
        int rc = gw_jwt_verify(jwks, gw_str(buf, n), &o, NULL);
        assert_true(rc == GW_JWT_EMALFORMED || rc == GW_JWT_EALG || rc == GW_JWT_EUNKNOWN_KEY ||
                    rc == GW_JWT_EBAD_SIGNATURE);
    }
    /* Every OpenSSL failure along the way was popped: nothing left for the TLS code on this thread. */
    assert_int_equal(ERR_peek_error(), 0);
    free(good);
}

/* ---------------------------------------------------------------------------------------------
 * JWKS parsing.
 */

static void test_jwks_documents(void **state)
{
    (void)state;
    gw_jwks_t *set = (void *)1;
    size_t skipped;
    const char *invalid[] = {"", "[]", "{}", "{\"keys\":{}}", "{\"keys\":\"x\"}", "{\"keys\":[1]}",
                             "{\"keys\":[{}],\"keys\":[]}", "{\"keys\":[}", "{\"keys\":[]} {}", "null",
                             "{\"keys\":[[]]}"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(invalid); i++) {
        assert_int_equal(gw_jwks_parse(invalid[i], strlen(invalid[i]), &set, &skipped), GW_EINVAL);
        assert_null(set);
    }
    assert_int_equal(gw_jwks_parse(NULL, 3, &set, NULL), GW_EINVAL);
    assert_int_equal(gw_jwks_parse("{}", 2, NULL, NULL), GW_EINVAL);
    const char *other = "{\"keys\":[],\"other\":{\"x\":[1,2,{}]}}";
    assert_int_equal(gw_jwks_parse(other, strlen(other), &set, &skipped), GW_OK);
    assert_int_equal(gw_jwks_count(set), 0);
    assert_int_equal(skipped, 0);
    gw_jwks_unref(set);
    gw_jwks_unref(NULL);
    assert_int_equal(gw_jwks_count(NULL), 0);

    /* Keys that must be skipped, each next to nothing else. */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *x25519 = gen("X25519", NULL);
    char *r = jwk_members(rsa_key), *e = jwk_members(ec_key), *e3 = jwk_members(ec384_key), *d = jwk_members(ed_key);
    char *sm = jwk_members(small);
    unsigned char xr[32];
    size_t xl = 32;
    assert_int_equal(EVP_PKEY_get_raw_public_key(x25519, xr, &xl), 1);
    char *x64 = b64u(xr, xl);
    /* An off-curve point: the real x with y + 1. */
    BIGNUM *x = NULL, *y = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(ec_key, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(ec_key, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    BN_add_word(y, 1);
    unsigned char xb[32];
    assert_int_equal(BN_bn2binpad(x, xb, 32), 32);
    char *xs = bn_b64u(x, 32), *ys = bn_b64u(y, 32), *xshort = b64u(xb, 31);
    char *long_kid = malloc(GW_JWKS_MAX_KID + 2);
    memset(long_kid, 'k', GW_JWKS_MAX_KID + 1);
    long_kid[GW_JWKS_MAX_KID + 1] = '\0';
    char *skip[] = {
        fmt("{%s,\"use\":\"enc\"}", r),
        fmt("{%s,\"key_ops\":[\"encrypt\"]}", r),
        fmt("{%s,\"key_ops\":\"verify\"}", r),
        fmt("{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}"), /* an HMAC secret has no place in a JWKS we verify with */
        fmt("{\"n\":\"AQAB\",\"e\":\"AQAB\"}"),
        fmt("{\"kty\":\"rsa\",\"n\":\"AQAB\",\"e\":\"AQAB\"}"),
        fmt("{%s}", sm), /* 1024 bits */
        fmt("{\"kty\":\"RSA\",\"n\":\"not base64!\",\"e\":\"AQAB\"}"),
        fmt("{\"kty\":\"RSA\",\"n\":12,\"e\":\"AQAB\"}"),
        fmt("{\"kty\":\"RSA\",\"e\":\"AQAB\"}"),
        fmt("{%s,\"alg\":\"HS256\"}", r),
        fmt("{%s,\"alg\":\"ES256\"}", r),
        fmt("{%s,\"alg\":\"ES384\"}", e),
        fmt("{%s,\"alg\":\"none\"}", d),
        fmt("{%s,\"alg\":7}", e),
        fmt("{%s,\"kid\":\"%s\"}", e, long_kid),
        fmt("{%s,\"kid\":5}", e),
        fmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", xs, ys),
        fmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", xshort, xs),
        fmt("{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"%s\",\"y\":\"%s\"}", xs, xs),
        fmt("{\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", xs, xs),
        fmt("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"%s\"}", x64),
        fmt("{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"%s\"}", x64),
        fmt("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", xs + 1),
        fmt("{\"kty\":\"EC\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", x64),
    };
    gw_buf_t doc;
    gw_buf_init(&doc, GW_BUF_UNLIMITED);
    for (size_t i = 0; i < GW_ARRAY_SIZE(skip); i++) {
        gw_buf_reset(&doc);
        gw_buf_appendf(&doc, "{\"keys\":[%s]}", skip[i]);
        assert_int_equal(gw_jwks_parse(doc.data, doc.len, &set, &skipped), GW_OK);
        if (gw_jwks_count(set) != 0 || skipped != 1)
            fail_msg("case %zu was not skipped", i);
        gw_jwks_unref(set);
    }
    /* All of them together with usable keys: the usable ones stay, and they work. */
    gw_buf_reset(&doc);
    gw_buf_appendf(&doc, "{\"keys\":[{%s,\"kid\":\"a\",\"x5c\":[\"MIIB\"],\"x5t\":\"x\"},", r);
    for (size_t i = 0; i < GW_ARRAY_SIZE(skip); i++)
        gw_buf_appendf(&doc, "%s,", skip[i]);
    gw_buf_appendf(&doc, "{%s,\"use\":\"sig\",\"key_ops\":[\"sign\",\"verify\"]},{%s,\"alg\":\"EdDSA\"},{%s}]}", e, d, e3);
    assert_int_equal(gw_jwks_parse(doc.data, doc.len, &set, &skipped), GW_OK);
    assert_int_equal(gw_jwks_count(set), 4);
    assert_int_equal(skipped, GW_ARRAY_SIZE(skip));
    gw_jwt_verify_opts_t o = opts();
    char *t = token("EdDSA", NULL, ed_key, NULL);
    assert_int_equal(verify_with(set, t, &o), GW_OK);
    free(t);
    t = token("RS256", "a", rsa_key, NULL);
    assert_int_equal(verify_with(set, t, &o), GW_OK);
    free(t);
    /* Refcount: the set outlives its first owner while referenced. */
    gw_jwks_t *held = gw_jwks_ref(set);
    gw_jwks_unref(set);
    t = token("ES384", NULL, ec384_key, NULL);
    assert_int_equal(verify_with(held, t, &o), GW_OK);
    free(t);
    gw_jwks_unref(held);
    assert_int_equal(ERR_peek_error(), 0);

    for (size_t i = 0; i < GW_ARRAY_SIZE(skip); i++)
        free(skip[i]);
    gw_buf_free(&doc);
    free(r), free(e), free(e3), free(d), free(sm), free(x64), free(xs), free(ys), free(xshort), free(long_kid);
    BN_free(x), BN_free(y);
    EVP_PKEY_free(small);
    EVP_PKEY_free(x25519);
}

static void test_jwks_limits(void **state)
{
    (void)state;
    gw_jwks_t *set;
    char *e = jwk_members(ec_key);
    gw_buf_t doc;
    gw_buf_init(&doc, GW_BUF_UNLIMITED);
    for (int n = GW_JWKS_MAX_KEYS; n <= GW_JWKS_MAX_KEYS + 1; n++) {
        gw_buf_reset(&doc);
        gw_buf_append_lit(&doc, "{\"keys\":[");
        for (int i = 0; i < n; i++)
            gw_buf_appendf(&doc, "%s{%s,\"kid\":\"k%d\"}", i ? "," : "", e, i);
        gw_buf_append_lit(&doc, "]}");
        int rc = gw_jwks_parse(doc.data, doc.len, &set, NULL);
        if (n == GW_JWKS_MAX_KEYS) {
            assert_int_equal(rc, GW_OK);
            assert_int_equal(gw_jwks_count(set), GW_JWKS_MAX_KEYS);
            gw_jwks_unref(set);
        } else {
            assert_int_equal(rc, GW_TOOBIG);
        }
    }
    /* Byte size. */
    gw_buf_reset(&doc);
    gw_buf_appendf(&doc, "{\"keys\":[{%s}],\"pad\":\"", e);
    while (doc.len < GW_JWKS_MAX_BYTES - 2)
        gw_buf_append_lit(&doc, "x");
    gw_buf_append_lit(&doc, "\"}");
    assert_int_equal(doc.len, GW_JWKS_MAX_BYTES);
    assert_int_equal(gw_jwks_parse(doc.data, doc.len, &set, NULL), GW_OK);
    gw_jwks_unref(set);
    gw_buf_reset(&doc);
    gw_buf_appendf(&doc, "{\"keys\":[{%s}],\"pad\":\"", e);
    while (doc.len < GW_JWKS_MAX_BYTES - 1)
        gw_buf_append_lit(&doc, "x");
    gw_buf_append_lit(&doc, "\"}");
    assert_int_equal(gw_jwks_parse(doc.data, doc.len, &set, NULL), GW_TOOBIG);
    /* Depth. */
    gw_buf_reset(&doc);
    gw_buf_appendf(&doc, "{\"keys\":[{%s,\"deep\":", e);
    for (int i = 0; i < GW_JWT_MAX_DEPTH; i++)
        gw_buf_append_lit(&doc, "[");
    for (int i = 0; i < GW_JWT_MAX_DEPTH; i++)
        gw_buf_append_lit(&doc, "]");
    gw_buf_append_lit(&doc, "}]}");
    assert_int_equal(gw_jwks_parse(doc.data, doc.len, &set, NULL), GW_TOOBIG);
    gw_buf_free(&doc);
    free(e);

    /* Random bytes and random JSON-ish text never crash the parser. */
    static const char alpha[] = "{}[]\",:0123456789abcdefkeysRSAnex-_ \\";
    char buf[400];
    for (int i = 0; i < 20000; i++) {
        size_t n = rng() % sizeof(buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = i & 1 ? (char)rng() : alpha[rng() % (sizeof(alpha) - 1)];
        if (n > 10 && (i & 2))
            memcpy(buf, "{\"keys\":[{", 10);
        set = NULL;
        if (gw_jwks_parse(buf, n, &set, NULL) == GW_OK)
            gw_jwks_unref(set);
        else
            assert_null(set);
    }
}

/* ---------------------------------------------------------------------------------------------
 * WWW-Authenticate.
 */

static void expect_challenge(gw_str_t rm, gw_bearer_error_t err, gw_str_t scope, gw_str_t desc, const char *want)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    assert_int_equal(gw_jwt_www_authenticate(&b, rm, err, scope, desc), GW_OK);
    assert_string_equal(gw_buf_cstr(&b), want);
    gw_buf_free(&b);
}

static void test_www_authenticate(void **state)
{
    (void)state;
    gw_str_t rm = GW_STR("https://gw.example.com/.well-known/oauth-protected-resource/mcp");
    expect_challenge(rm, GW_BEARER_ERROR_NONE, GW_STR("mcp:tools"), GW_STR_NULL,
                     "Bearer resource_metadata=\"https://gw.example.com/.well-known/oauth-protected-resource/mcp\", "
                     "scope=\"mcp:tools\"");
    expect_challenge(rm, GW_BEARER_ERROR_INVALID_TOKEN, GW_STR_NULL, GW_STR("token expired"),
                     "Bearer resource_metadata=\"https://gw.example.com/.well-known/oauth-protected-resource/mcp\", "
                     "error=\"invalid_token\", error_description=\"token expired\"");
    expect_challenge(rm, GW_BEARER_ERROR_INSUFFICIENT_SCOPE, GW_STR("mcp:tools mcp:admin"), GW_STR_NULL,
                     "Bearer resource_metadata=\"https://gw.example.com/.well-known/oauth-protected-resource/mcp\", "
                     "error=\"insufficient_scope\", scope=\"mcp:tools mcp:admin\"");
    expect_challenge(GW_STR_NULL, GW_BEARER_ERROR_INVALID_REQUEST, GW_STR_NULL, GW_STR_NULL,
                     "Bearer error=\"invalid_request\"");
    expect_challenge(GW_STR_NULL, GW_BEARER_ERROR_NONE, GW_STR_NULL, GW_STR_NULL, "Bearer");
    /* Quotes and backslashes become quoted-pairs: the value cannot end early. */
    expect_challenge(GW_STR("https://gw/\"x\\"), GW_BEARER_ERROR_INVALID_TOKEN, GW_STR("a\"b"),
                     GW_STR("say \"hi\", \\o/"),
                     "Bearer resource_metadata=\"https://gw/\\\"x\\\\\", error=\"invalid_token\", scope=\"a\\\"b\", "
                     "error_description=\"say \\\"hi\\\", \\\\o/\"");

    /* Anything that could split the header or smuggle bytes is refused, leaving out unchanged. */
    const char *evil[] = {"a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "tab\there", "nul\0x", "del\x7f", "caf\xc3\xa9"};
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "keep");
    for (size_t i = 0; i < GW_ARRAY_SIZE(evil); i++) {
        gw_str_t v = gw_str(evil[i], i == 4 ? 5 : strlen(evil[i]));
        assert_int_equal(gw_jwt_www_authenticate(&b, v, GW_BEARER_ERROR_NONE, GW_STR_NULL, GW_STR_NULL), GW_EINVAL);
        assert_int_equal(gw_jwt_www_authenticate(&b, rm, GW_BEARER_ERROR_INVALID_TOKEN, v, GW_STR_NULL), GW_EINVAL);
        assert_int_equal(gw_jwt_www_authenticate(&b, rm, GW_BEARER_ERROR_INVALID_TOKEN, GW_STR_NULL, v), GW_EINVAL);
        assert_int_equal(b.len, 4);
    }
    assert_int_equal(gw_jwt_www_authenticate(&b, rm, (gw_bearer_error_t)42, GW_STR_NULL, GW_STR_NULL), GW_EINVAL);
    assert_int_equal(gw_jwt_www_authenticate(NULL, rm, GW_BEARER_ERROR_NONE, GW_STR_NULL, GW_STR_NULL), GW_EINVAL);
    assert_int_equal(gw_jwt_www_authenticate(&b, (gw_str_t){NULL, 3}, GW_BEARER_ERROR_NONE, GW_STR_NULL, GW_STR_NULL),
                     GW_EINVAL);
    assert_int_equal(b.len, 4);
    gw_buf_free(&b);
    /* The cap, all or nothing. */
    gw_buf_init(&b, 30);
    gw_buf_append_lit(&b, "keep");
    assert_int_equal(gw_jwt_www_authenticate(&b, rm, GW_BEARER_ERROR_NONE, GW_STR_NULL, GW_STR_NULL), GW_TOOBIG);
    assert_int_equal(b.len, 4);
    gw_buf_free(&b);
}

static void test_strerror(void **state)
{
    (void)state;
    int codes[] = {GW_OK,          GW_JWT_EMALFORMED, GW_JWT_EALG,     GW_JWT_EUNKNOWN_KEY, GW_JWT_EBAD_SIGNATURE,
                   GW_JWT_EEXPIRED, GW_JWT_ENOT_YET_VALID, GW_JWT_EISSUER, GW_JWT_EAUDIENCE, GW_JWT_ESCOPE};
    for (size_t i = 0; i < GW_ARRAY_SIZE(codes); i++)
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(gw_jwt_strerror(codes[i]), gw_jwt_strerror(codes[j]));
    assert_string_equal(gw_jwt_strerror(-999), "error");
}

/* ---------------------------------------------------------------------------------------------
 * Threads and timing.
 */

typedef struct {
    char *tokens[3];
    int failures;
} thread_arg_t;

static void *worker(void *p)
{
    thread_arg_t *a = p;
    gw_jwt_verify_opts_t o = opts();
    for (int i = 0; i < 300; i++) {
        gw_jwt_claims_t c;
        if (gw_jwt_verify(jwks, gw_str_c(a->tokens[i % 3]), &o, &c) != GW_OK)
            a->failures++;
        gw_jwt_claims_free(&c);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    enum { N = 6 };
    pthread_t t[N];
    thread_arg_t arg = {{token("RS256", "rsa-1", rsa_key, NULL), token("ES256", NULL, ec_key, NULL),
                         token("EdDSA", "ed-1", ed_key, NULL)},
                        0};
    thread_arg_t args[N];
    for (int i = 0; i < N; i++) {
        args[i] = arg;
        assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    for (int i = 0; i < 3; i++)
        free(arg.tokens[i]);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void test_timing(void **state)
{
    (void)state;
    struct {
        const char *alg, *kid;
        EVP_PKEY **key;
    } cases[] = {{"RS256", "rsa-1", &rsa_key}, {"PS256", "rsa-1", &rsa_key}, {"ES256", "ec-1", &ec_key},
                 {"ES384", "ec384-1", &ec384_key}, {"EdDSA", "ed-1", &ed_key}};
    gw_jwt_verify_opts_t o = opts();
    printf("jwt verify (2048-bit RSA, P-256, P-384, Ed25519; claims and scopes included):");
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char *t = token(cases[i].alg, cases[i].kid, *cases[i].key, NULL);
        enum { N = 300 };
        double t0 = now_ns();
        for (int k = 0; k < N; k++)
            assert_int_equal(gw_jwt_verify(jwks, gw_str_c(t), &o, NULL), GW_OK);
        printf(" %s %.1f us;", cases[i].alg, (now_ns() - t0) / N / 1e3);
        free(t);
    }
    /* Baseline in the same run: bare OpenSSL verification of the same kind of signature. */
    printf("\n  baseline, bare EVP_DigestVerify:");
    EVP_PKEY *bk[] = {rsa_key, ec_key, ed_key};
    const char *bn[] = {"RS256", "ES256", "EdDSA"};
    for (int i = 0; i < 3; i++) {
        const char *md = i == 2 ? NULL : "SHA256";
        const unsigned char msg[] = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSJ9";
        unsigned char sig[512];
        size_t sl = sizeof(sig);
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit_ex(m, NULL, md, NULL, NULL, bk[i], NULL), 1);
        assert_int_equal(EVP_DigestSign(m, sig, &sl, msg, sizeof(msg) - 1), 1);
        EVP_MD_CTX_free(m);
        enum { N = 300 };
        double t0 = now_ns();
        for (int k = 0; k < N; k++) {
            m = EVP_MD_CTX_new();
            assert_int_equal(EVP_DigestVerifyInit_ex(m, NULL, md, NULL, NULL, bk[i], NULL), 1);
            assert_int_equal(EVP_DigestVerify(m, sig, sl, msg, sizeof(msg) - 1), 1);
            EVP_MD_CTX_free(m);
        }
        printf(" %s %.1f us;", bn[i], (now_ns() - t0) / N / 1e3);
    }
    double t0 = now_ns();
    gw_jwks_t *set;
    assert_int_equal(gw_jwks_parse(jwks_json, strlen(jwks_json), &set, NULL), GW_OK);
    printf("\n  JWKS of 6 keys parsed in %.1f us\n", (now_ns() - t0) / 1e3);
    gw_jwks_unref(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_algorithm),
        cmocka_unit_test(test_subjects),
        cmocka_unit_test(test_tamper_every_char),
        cmocka_unit_test(test_forged_claims),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_typ),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_hostile_tokens),
        cmocka_unit_test(test_jwks_documents),
        cmocka_unit_test(test_jwks_limits),
        cmocka_unit_test(test_www_authenticate),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
