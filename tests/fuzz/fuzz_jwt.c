/* libFuzzer harness for auth/jwt: an arbitrary JWKS with an arbitrary token, arbitrary tokens against a
 * fixed key set, arbitrary header and claims JSON signed here with a fixed Ed25519 key (so the claim
 * checks behind a valid signature get fuzzed too), and the WWW-Authenticate builder. Nothing may
 * crash or leak; verified results must be consistent and tampering must never verify.
 *
 * Input: byte 0 picks the mode, the rest is split at 0x00 bytes:
 *   0: JWKS \0 token        1: token        2: header \0 claims \0 required scopes      3: rm \0 scope \0 desc */
#include "auth/jwt.h"
#include "codec/base64.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)               \
    do {                          \
        if (!(cond))              \
            __builtin_trap();     \
    } while (0)

#define NOW 1750000000
#define ISS "https://issuer.test"
#define AUD "https://aud.test/mcp"

/* A fixed, publicly known test key: deterministic runs, and nothing secret in it. */
static const unsigned char fixed_seed[32] = "aigw fuzz_jwt fixed test key!!!";
static EVP_PKEY *fixed_key;
static gw_jwks_t *fixed_jwks;

static void init(void)
{
    if (fixed_key != NULL)
        return;
    fixed_key = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, fixed_seed, 32);
    CHECK(fixed_key != NULL);
    unsigned char pub[32];
    size_t pl = sizeof(pub);
    CHECK(EVP_PKEY_get_raw_public_key(fixed_key, pub, &pl) == 1);
    gw_buf_t x, doc;
    gw_buf_init(&x, 64);
    gw_buf_init(&doc, 512);
    CHECK(gw_base64_encode(GW_BASE64_URL, pub, pl, &x) == GW_OK);
    CHECK(gw_buf_appendf(&doc, "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"fz\",\"x\":\"%.*s\"},"
                               "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%.*s\",\"alg\":\"EdDSA\"}]}",
                         (int)x.len, x.data, (int)x.len, x.data) == GW_OK);
    CHECK(gw_jwks_parse(doc.data, doc.len, &fixed_jwks, NULL) == GW_OK && gw_jwks_count(fixed_jwks) == 2);
    gw_buf_free(&x);
    gw_buf_free(&doc);
}

static bool known_status(int rc)
{
    return rc == GW_OK || rc == GW_TOOBIG || (rc <= GW_JWT_EMALFORMED && rc >= GW_JWT_ESCOPE);
}

/* Verifies and checks what a verified token hands out. */
static int check_verify(const gw_jwks_t *set, gw_str_t tok, const gw_jwt_verify_opts_t *o)
{
    gw_jwt_claims_t c;
    int rc = gw_jwt_verify(set, tok, o, &c);
    CHECK(known_status(rc));
    if (rc == GW_OK || rc == GW_JWT_ESCOPE) {
        CHECK(c.subject.len <= tok.len && c.n_scopes <= GW_JWT_MAX_SCOPES);
        CHECK(memchr(c.subject.base, '\0', c.subject.len) == NULL);
        for (size_t i = 0; i < c.n_scopes; i++)
            CHECK(c.scopes[i].len > 0 && memchr(c.scopes[i].base, ' ', c.scopes[i].len) == NULL);
        CHECK(c.alg.len > 0);
    } else {
        CHECK(c.storage_ == NULL && c.scopes == NULL);
    }
    gw_jwt_claims_free(&c);
    /* Deterministic: the same input gives the same answer. */
    CHECK(gw_jwt_verify(set, tok, o, NULL) == rc);
    return rc;
}

static gw_jwt_verify_opts_t default_opts(void)
{
    static const gw_str_t auds[] = {GW_STR(AUD)};
    gw_jwt_verify_opts_t o = {.issuer = GW_STR(ISS), .audiences = auds, .n_audiences = 1, .now = NOW, .skew = -1};
    return o;
}

/* Splits p[0..n) at 0x00 into at most max parts. */
static size_t split(const char *p, size_t n, gw_str_t *parts, size_t max)
{
    size_t k = 0;
    const char *end = p + n;
    while (k < max) {
        const char *z = k + 1 < max ? memchr(p, 0, (size_t)(end - p)) : NULL;
        parts[k++] = gw_str(p, z ? (size_t)(z - p) : (size_t)(end - p));
        if (z == NULL)
            break;
        p = z + 1;
    }
    return k;
}

static void mode_signed(gw_str_t header, gw_str_t claims, gw_str_t scopes, uint8_t flags)
{
    gw_buf_t tok;
    gw_buf_init(&tok, GW_JWT_MAX_TOKEN * 2);
    if (gw_base64_encode(GW_BASE64_URL, header.base, header.len, &tok) != GW_OK ||
        gw_buf_append_byte(&tok, '.') != GW_OK ||
        gw_base64_encode(GW_BASE64_URL, claims.base, claims.len, &tok) != GW_OK)
        goto out;
    unsigned char sig[64];
    size_t sl = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    CHECK(m != NULL);
    CHECK(EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, fixed_key, NULL) == 1);
    CHECK(EVP_DigestSign(m, sig, &sl, (const unsigned char *)tok.data, tok.len) == 1);
    EVP_MD_CTX_free(m);
    if (gw_buf_append_byte(&tok, '.') != GW_OK || gw_base64_encode(GW_BASE64_URL, sig, sl, &tok) != GW_OK)
        goto out;

    /* Required scopes: up to four space-separated words of the third part. */
    gw_str_t req[4];
    size_t nreq = 0, i = 0;
    while (i < scopes.len && nreq < 4) {
        while (i < scopes.len && scopes.base[i] == ' ')
            i++;
        size_t s = i;
        while (i < scopes.len && scopes.base[i] != ' ')
            i++;
        if (i > s)
            req[nreq++] = gw_str(scopes.base + s, i - s);
    }
    gw_jwt_verify_opts_t o = default_opts();
    o.required_scopes = req;
    o.n_required_scopes = nreq;
    o.skew = flags & 1 ? (int64_t)(flags >> 1) * 97 : -1;
    o.require_at_jwt = flags & 0x80;
    o.skip_issuer = flags & 0x40;
    o.skip_audience = flags & 0x20;
    int rc = check_verify(fixed_jwks, gw_buf_str(&tok), &o);
    if (rc == GW_OK) {
        /* A verified token with its last signature character changed never verifies. */
        char *last = &tok.data[tok.len - 1];
        *last = *last == 'A' ? 'Q' : 'A';
        CHECK(gw_jwt_verify(fixed_jwks, gw_buf_str(&tok), &o, NULL) != GW_OK);
    }
out:
    gw_buf_free(&tok);
}

static void mode_challenge(gw_str_t *parts, size_t n, uint8_t flags)
{
    gw_buf_t out;
    gw_buf_init(&out, 1 << 16);
    gw_buf_append_lit(&out, "x");
    int rc = gw_jwt_www_authenticate(&out, parts[0], (gw_bearer_error_t)(flags % 5), n > 1 ? parts[1] : GW_STR_NULL,
                                     n > 2 ? parts[2] : GW_STR_NULL);
    CHECK(rc == GW_OK || rc == GW_EINVAL || rc == GW_TOOBIG);
    if (rc != GW_OK) {
        CHECK(out.len == 1);
    } else {
        CHECK(out.len >= 7 && memcmp(out.data, "xBearer", 7) == 0);
        for (size_t i = 0; i < out.len; i++)
            CHECK((unsigned char)out.data[i] >= 0x20 && (unsigned char)out.data[i] < 0x7f);
    }
    gw_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    gw_str_t parts[3];
    gw_jwt_verify_opts_t o = default_opts();
    switch (mode % 4) {
    case 0: {
        size_t k = split(p, n, parts, 2);
        gw_jwks_t *set = NULL;
        int rc = gw_jwks_parse(parts[0].base, parts[0].len, &set, NULL);
        CHECK(rc == GW_OK || rc == GW_EINVAL || rc == GW_TOOBIG);
        if (rc == GW_OK) {
            CHECK(set != NULL && gw_jwks_count(set) <= GW_JWKS_MAX_KEYS);
            if (k > 1) {
                o.skip_issuer = mode & 0x10;
                o.skip_audience = mode & 0x20;
                check_verify(set, parts[1], &o);
            }
            gw_jwks_unref(set);
        } else {
            CHECK(set == NULL);
        }
        if (k > 1)
            check_verify(fixed_jwks, parts[1], &o);
        break;
    }
    case 1:
        check_verify(fixed_jwks, gw_str(p, n), &o);
        break;
    case 2: {
        size_t k = split(p, n, parts, 3);
        mode_signed(parts[0], k > 1 ? parts[1] : GW_STR_NULL, k > 2 ? parts[2] : GW_STR_NULL, mode);
        break;
    }
    default:
        mode_challenge(parts, split(p, n, parts, 3), mode >> 2);
        break;
    }
    /* Every OpenSSL error was popped: nothing left behind for TLS code on the same thread. */
    CHECK(ERR_peek_error() == 0);
    return 0;
}
