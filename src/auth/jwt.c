/* JWT verification on raw OpenSSL 3 (jwt.h): JWKS import through EVP_PKEY_fromdata, JWS signature
 * checks with the algorithm pinned by the key (JOSE r||s turned into DER for ECDSA), claim checks,
 * and the WWW-Authenticate value. Every JSON input is validated strictly before it is looked at. */
#include "auth/jwt.h"

#include "codec/base64.h"
#include "core/alloc.h"
#include "core/json.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdatomic.h>
#include <stdlib.h>

/* ---------------------------------------------------------------------------------------------
 * Algorithms and keys.
 */

typedef enum { KTY_RSA = 1, KTY_EC, KTY_OKP } kty_t;
typedef enum { CRV_NONE = 0, CRV_P256, CRV_P384, CRV_ED25519 } crv_t;

typedef struct {
    const char *name;
    kty_t kty;
    crv_t crv;      /* required curve, CRV_NONE for RSA */
    const char *md; /* digest, NULL for EdDSA (it hashes internally) */
    bool pss;
} alg_t;

/* The allow-list. Nothing else is ever verified: "none" and HS* are absent on purpose, since an HMAC
 * "verified" with a public key as its secret is the classic algorithm-confusion forgery. */
static const alg_t algs[] = {
    {"RS256", KTY_RSA, CRV_NONE, "SHA256", false}, {"RS384", KTY_RSA, CRV_NONE, "SHA384", false},
    {"RS512", KTY_RSA, CRV_NONE, "SHA512", false}, {"PS256", KTY_RSA, CRV_NONE, "SHA256", true},
    {"PS384", KTY_RSA, CRV_NONE, "SHA384", true},  {"PS512", KTY_RSA, CRV_NONE, "SHA512", true},
    {"ES256", KTY_EC, CRV_P256, "SHA256", false},  {"ES384", KTY_EC, CRV_P384, "SHA384", false},
    {"EdDSA", KTY_OKP, CRV_ED25519, NULL, false},
};

typedef struct {
    EVP_PKEY *pkey;
    kty_t kty;
    crv_t crv;
    const alg_t *alg; /* pinned by the JWK's "alg"; NULL when it has none */
    bool has_kid;
    gw_str_t kid;     /* unescaped, points into the key set's own allocation */
} jwk_t;

struct gw_jwks_s {
    atomic_int refcount;
    size_t n;
    char *kids; /* every kid, back to back */
    jwk_t keys[];
};

const char *gw_jwt_strerror(int status)
{
    switch (status) {
    case GW_OK: return "ok";
    case GW_EINVAL: return "invalid argument";
    case GW_TOOBIG: return "token too large";
    case GW_JWT_EMALFORMED: return "malformed token";
    case GW_JWT_EALG: return "algorithm not allowed";
    case GW_JWT_EUNKNOWN_KEY: return "no key fits the token";
    case GW_JWT_EBAD_SIGNATURE: return "bad signature";
    case GW_JWT_EEXPIRED: return "token expired";
    case GW_JWT_ENOT_YET_VALID: return "token not yet valid";
    case GW_JWT_EISSUER: return "wrong issuer";
    case GW_JWT_EAUDIENCE: return "wrong audience";
    case GW_JWT_ESCOPE: return "insufficient scope";
    default: return "error";
    }
}

/* ---------------------------------------------------------------------------------------------
 * Small JSON and base64url helpers.
 */

/* Member `key` of obj: GW_OK, GW_DONE when absent. */
static int member(gw_str_t obj, const char *key, gw_str_t *v)
{
    return gw_json_object_get(obj, gw_str_c(key), v);
}

/* Unescaped string member into out (reset first): GW_OK, GW_DONE when absent, GW_EINVAL when not a
 * string, GW_TOOBIG past out's cap. */
static int member_string(gw_str_t obj, const char *key, gw_buf_t *out)
{
    gw_str_t v;
    int rc = member(obj, key, &v);
    if (rc != GW_OK)
        return rc;
    if (gw_json_type(v) != GW_JSON_STRING)
        return GW_EINVAL;
    gw_buf_reset(out);
    return gw_json_string_unescape(v, out);
}

/* Decodes unpadded base64url (the only form JOSE uses) into out (reset first). */
static int b64url(gw_str_t in, gw_buf_t *out)
{
    gw_buf_reset(out);
    if (in.len == 0 || memchr(in.base, '=', in.len) != NULL)
        return GW_EINVAL;
    return gw_base64_decode(GW_BASE64_URL, in.base, in.len, out);
}

/* Decodes a base64url JSON string value (JWK members) into out. */
static int b64url_member(gw_str_t obj, const char *key, gw_buf_t *tmp, gw_buf_t *out)
{
    int rc = member_string(obj, key, tmp);
    if (rc != GW_OK)
        return rc == GW_DONE ? GW_EINVAL : rc;
    return b64url(gw_buf_str(tmp), out);
}

static const alg_t *alg_by_raw(gw_str_t raw)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(algs); i++)
        if (gw_json_key_eq(raw, gw_str_c(algs[i].name)))
            return &algs[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * JWK import.
 */

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* The quick check (point on the curve, not at infinity) is the complete one for P-256 and P-384:
 * their cofactor is 1, so the full check's multiplication by the order adds nothing but ~1 ms. */
static bool public_ok(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    bool ok = ctx != NULL && EVP_PKEY_public_check_quick(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static EVP_PKEY *import_rsa(gw_str_t obj, gw_buf_t *tmp, gw_buf_t *nb, gw_buf_t *eb)
{
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    if (b64url_member(obj, "n", tmp, nb) != GW_OK || b64url_member(obj, "e", tmp, eb) != GW_OK)
        goto out;
    if (eb->len > 8 || (n = BN_bin2bn((unsigned char *)nb->data, (int)nb->len, NULL)) == NULL ||
        (e = BN_bin2bn((unsigned char *)eb->data, (int)eb->len, NULL)) == NULL)
        goto out;
    int bits = BN_num_bits(n);
    /* e odd and > 1; n odd and within the size limits (public_check repeats some of this). */
    if (bits < GW_JWT_RSA_MIN_BITS || bits > GW_JWT_RSA_MAX_BITS || !BN_is_odd(n) || !BN_is_odd(e) || BN_is_one(e))
        goto out;
    if ((bld = OSSL_PARAM_BLD_new()) == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        goto out;
    pkey = from_params("RSA", bld);
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

static EVP_PKEY *import_ec(gw_str_t obj, crv_t crv, gw_buf_t *tmp, gw_buf_t *xb, gw_buf_t *yb)
{
    size_t coord = crv == CRV_P256 ? 32 : 48;
    unsigned char pub[1 + 2 * 48];
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    if (b64url_member(obj, "x", tmp, xb) != GW_OK || b64url_member(obj, "y", tmp, yb) != GW_OK)
        return NULL;
    /* RFC 7518 §6.2.1.2: full-length coordinates, no stripped leading zeros. */
    if (xb->len != coord || yb->len != coord)
        return NULL;
    pub[0] = 0x04; /* uncompressed point */
    memcpy(pub + 1, xb->data, coord);
    memcpy(pub + 1 + coord, yb->data, coord);
    if ((bld = OSSL_PARAM_BLD_new()) != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, crv == CRV_P256 ? "P-256" : "P-384", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * coord))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    /* Off-curve points are the door to invalid-curve attacks: make sure, whatever fromdata did. */
    if (pkey != NULL && !public_ok(pkey)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    return pkey;
}

static EVP_PKEY *import_ed25519(gw_str_t obj, gw_buf_t *tmp, gw_buf_t *xb)
{
    if (b64url_member(obj, "x", tmp, xb) != GW_OK || xb->len != 32)
        return NULL;
    return EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, (unsigned char *)xb->data, 32);
}

/* key_ops, when present, must be an array of strings holding "verify". */
static bool key_ops_allow_verify(gw_str_t obj)
{
    gw_str_t ops, el;
    if (member(obj, "key_ops", &ops) != GW_OK)
        return true;
    size_t pos = 0;
    while (gw_json_array_next(ops, &pos, &el) == GW_OK)
        if (gw_json_key_eq(el, GW_STR("verify")))
            return true;
    return false;
}

typedef struct {
    gw_buf_t tmp, a, b, kid;
} scratch_t;

/* Imports one JWK into *k; false when it is to be skipped. */
static bool import_jwk(gw_str_t obj, jwk_t *k, scratch_t *sc)
{
    gw_str_t v;
    memset(k, 0, sizeof(*k));
    if (member(obj, "use", &v) == GW_OK && !gw_json_key_eq(v, GW_STR("sig")))
        return false;
    if (!key_ops_allow_verify(obj))
        return false;
    if (member(obj, "kty", &v) != GW_OK)
        return false;
    if (gw_json_key_eq(v, GW_STR("RSA"))) {
        k->kty = KTY_RSA;
    } else if (gw_json_key_eq(v, GW_STR("EC"))) {
        k->kty = KTY_EC;
    } else if (gw_json_key_eq(v, GW_STR("OKP"))) {
        k->kty = KTY_OKP;
    } else {
        return false;
    }
    if (k->kty != KTY_RSA) {
        if (member(obj, "crv", &v) != GW_OK)
            return false;
        if (k->kty == KTY_EC && gw_json_key_eq(v, GW_STR("P-256")))
            k->crv = CRV_P256;
        else if (k->kty == KTY_EC && gw_json_key_eq(v, GW_STR("P-384")))
            k->crv = CRV_P384;
        else if (k->kty == KTY_OKP && gw_json_key_eq(v, GW_STR("Ed25519")))
            k->crv = CRV_ED25519;
        else
            return false;
    }
    if (member(obj, "alg", &v) == GW_OK) {
        /* A pinned algorithm must be one we take and must fit the key, else the key is unusable. */
        k->alg = alg_by_raw(v);
        if (k->alg == NULL || k->alg->kty != k->kty || (k->alg->crv != CRV_NONE && k->alg->crv != k->crv))
            return false;
    }
    int rc = member_string(obj, "kid", &sc->kid);
    if (rc == GW_OK) {
        if (sc->kid.len > GW_JWKS_MAX_KID)
            return false;
        k->has_kid = true;
    } else if (rc != GW_DONE) {
        return false;
    }
    switch (k->kty) {
    case KTY_RSA: k->pkey = import_rsa(obj, &sc->tmp, &sc->a, &sc->b); break;
    case KTY_EC: k->pkey = import_ec(obj, k->crv, &sc->tmp, &sc->a, &sc->b); break;
    case KTY_OKP: k->pkey = import_ed25519(obj, &sc->tmp, &sc->a); break;
    }
    return k->pkey != NULL;
}

static void jwks_free(gw_jwks_t *j)
{
    for (size_t i = 0; i < j->n; i++)
        EVP_PKEY_free(j->keys[i].pkey);
    free(j->kids);
    free(j);
}

int gw_jwks_parse(const char *json, size_t len, gw_jwks_t **out, size_t *skipped)
{
    if (out == NULL)
        return GW_EINVAL;
    *out = NULL;
    if (skipped)
        *skipped = 0;
    if (json == NULL && len > 0)
        return GW_EINVAL;
    if (len > GW_JWKS_MAX_BYTES)
        return GW_TOOBIG;
    int rc = gw_json_validate(json ? json : "", len, GW_JWT_MAX_DEPTH, NULL);
    if (rc != GW_OK)
        return rc == GW_TOOBIG ? GW_TOOBIG : GW_EINVAL;
    gw_str_t doc = gw_str(json, len), keys, el;
    if (gw_json_type(doc) != GW_JSON_OBJECT || member(doc, "keys", &keys) != GW_OK ||
        gw_json_type(keys) != GW_JSON_ARRAY)
        return GW_EINVAL;
    size_t count = 0, pos = 0;
    while ((rc = gw_json_array_next(keys, &pos, &el)) == GW_OK) {
        if (gw_json_type(el) != GW_JSON_OBJECT)
            return GW_EINVAL;
        if (++count > GW_JWKS_MAX_KEYS)
            return GW_TOOBIG;
    }
    if (rc != GW_DONE)
        return GW_EINVAL;

    ERR_set_mark();
    scratch_t sc;
    gw_buf_init(&sc.tmp, GW_JWKS_MAX_BYTES);
    gw_buf_init(&sc.a, GW_JWKS_MAX_BYTES);
    gw_buf_init(&sc.b, GW_JWKS_MAX_BYTES);
    gw_buf_init(&sc.kid, GW_JWKS_MAX_BYTES);
    gw_buf_t kids;
    gw_buf_init(&kids, GW_JWKS_MAX_BYTES);
    size_t kid_off[GW_JWKS_MAX_KEYS];
    gw_jwks_t *j = gw_calloc(1, sizeof(*j) + count * sizeof(jwk_t));
    atomic_init(&j->refcount, 1);
    pos = 0;
    while (gw_json_array_next(keys, &pos, &el) == GW_OK) {
        jwk_t *k = &j->keys[j->n];
        if (!import_jwk(el, k, &sc)) {
            EVP_PKEY_free(k->pkey);
            memset(k, 0, sizeof(*k));
            if (skipped)
                (*skipped)++;
            continue;
        }
        kid_off[j->n] = kids.len;
        if (k->has_kid) {
            /* The kid's bytes fit: kids' cap is the document size, and each kid came from it. */
            gw_buf_append(&kids, sc.kid.data, sc.kid.len);
            k->kid.len = sc.kid.len;
        }
        j->n++;
    }
    /* Slices only once the kid buffer stopped moving. */
    j->kids = gw_buf_detach(&kids, NULL);
    for (size_t i = 0; i < j->n; i++)
        j->keys[i].kid.base = j->kids ? j->kids + kid_off[i] : "";
    gw_buf_free(&sc.tmp);
    gw_buf_free(&sc.a);
    gw_buf_free(&sc.b);
    gw_buf_free(&sc.kid);
    gw_buf_free(&kids);
    ERR_pop_to_mark(); /* skipped keys leave errors on the thread's queue; TLS code reads it */
    *out = j;
    return GW_OK;
}

size_t gw_jwks_count(const gw_jwks_t *jwks)
{
    return jwks ? jwks->n : 0;
}

gw_jwks_t *gw_jwks_ref(gw_jwks_t *jwks)
{
    if (jwks != NULL)
        atomic_fetch_add_explicit(&jwks->refcount, 1, memory_order_relaxed);
    return jwks;
}

void gw_jwks_unref(gw_jwks_t *jwks)
{
    if (jwks == NULL)
        return;
    if (atomic_fetch_sub_explicit(&jwks->refcount, 1, memory_order_acq_rel) == 1)
        jwks_free(jwks);
}

/* ---------------------------------------------------------------------------------------------
 * Signatures.
 */

/* JOSE ECDSA signatures are r||s, each exactly the coordinate size; OpenSSL wants DER. */
static unsigned char *ecdsa_der(const unsigned char *sig, size_t half, int *der_len)
{
    unsigned char *der = NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    if ((*der_len = i2d_ECDSA_SIG(es, &der)) <= 0)
        der = NULL;
out:
    ECDSA_SIG_free(es);
    return der;
}

/* GW_OK, GW_JWT_EBAD_SIGNATURE, or GW_ERROR. */
static int verify_sig(const jwk_t *k, const alg_t *a, gw_str_t msg, const unsigned char *sig, size_t sig_len)
{
    int rc = GW_ERROR, der_len = 0;
    unsigned char *der = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *mctx = NULL;
    if (a->kty == KTY_EC) {
        size_t half = a->crv == CRV_P256 ? 32 : 48;
        if (sig_len != 2 * half)
            return GW_JWT_EBAD_SIGNATURE;
        if ((der = ecdsa_der(sig, half, &der_len)) == NULL)
            return GW_ERROR;
        sig = der;
        sig_len = (size_t)der_len;
    } else if (a->kty == KTY_RSA) {
        if (sig_len != (size_t)EVP_PKEY_get_size(k->pkey))
            return GW_JWT_EBAD_SIGNATURE;
    } else if (sig_len != 64) {
        return GW_JWT_EBAD_SIGNATURE;
    }
    if ((mctx = EVP_MD_CTX_new()) == NULL)
        goto out;
    if (EVP_DigestVerifyInit_ex(mctx, &pctx, a->md, NULL, NULL, k->pkey, NULL) != 1)
        goto out;
    if (a->pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                   EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                   EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, a->md, NULL) != 1))
        goto out;
    /* 0 is a bad signature, < 0 a signature OpenSSL could not even parse: the same to us. */
    rc = EVP_DigestVerify(mctx, sig, sig_len, (const unsigned char *)msg.base, msg.len) == 1 ? GW_OK
                                                                                              : GW_JWT_EBAD_SIGNATURE;
out:
    EVP_MD_CTX_free(mctx);
    OPENSSL_free(der);
    return rc;
}

static bool key_fits(const jwk_t *k, const alg_t *a)
{
    return k->kty == a->kty && (a->crv == CRV_NONE || k->crv == a->crv) && (k->alg == NULL || k->alg == a);
}

/* ---------------------------------------------------------------------------------------------
 * Claims.
 */

/* NumericDate: a non-negative number; a fraction is truncated; values past INT64_MAX saturate. */
static int numeric_date(gw_str_t raw, int64_t *out)
{
    uint64_t u;
    if (gw_json_type(raw) != GW_JSON_NUMBER)
        return GW_JWT_EMALFORMED;
    if (gw_json_uint(raw, &u) != GW_OK) {
        /* "123.45": the integer part, when the rest is a plain fraction. */
        const char *dot = memchr(raw.base, '.', raw.len);
        if (dot == NULL || raw.base[0] == '-')
            return GW_JWT_EMALFORMED;
        for (const char *p = dot + 1; p < raw.base + raw.len; p++)
            if (*p < '0' || *p > '9')
                return GW_JWT_EMALFORMED;
        if (gw_json_uint(gw_str(raw.base, (size_t)(dot - raw.base)), &u) != GW_OK)
            return GW_JWT_EMALFORMED;
    }
    *out = u > INT64_MAX ? INT64_MAX : (int64_t)u;
    return GW_OK;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

typedef struct {
    size_t off, len;
} span_t;

/* Splits the space-separated scope string in buf[from..) into spans; GW_TOOBIG past the limit. */
static int split_scopes(const gw_buf_t *buf, size_t from, span_t *sp, size_t *n)
{
    size_t i = from;
    while (i < buf->len) {
        while (i < buf->len && buf->data[i] == ' ')
            i++;
        size_t start = i;
        while (i < buf->len && buf->data[i] != ' ')
            i++;
        if (i > start) {
            if (*n >= GW_JWT_MAX_SCOPES)
                return GW_TOOBIG;
            sp[(*n)++] = (span_t){start, i - start};
        }
    }
    return GW_OK;
}

/* Reads "scope" or, without it, "scp" into buf as spans. "scope" is a space-separated string
 * (RFC 8693 §4.2); "scp" is an array of strings, or a space-separated string as Azure AD sends.
 * Every span is a non-empty token without spaces. */
static int read_scopes(gw_str_t claims, gw_buf_t *buf, span_t *sp, size_t *n)
{
    gw_str_t v, el;
    bool from_scp = false;
    *n = 0;
    if (member(claims, "scope", &v) != GW_OK) {
        if (member(claims, "scp", &v) != GW_OK)
            return GW_OK; /* no scopes granted */
        from_scp = true;
    }
    gw_json_type_t t = gw_json_type(v);
    if (t == GW_JSON_STRING) {
        size_t from = buf->len;
        if (gw_json_string_unescape(v, buf) != GW_OK)
            return GW_JWT_EMALFORMED;
        return split_scopes(buf, from, sp, n);
    }
    if (!from_scp || t != GW_JSON_ARRAY)
        return GW_JWT_EMALFORMED;
    size_t pos = 0;
    int rc;
    while ((rc = gw_json_array_next(v, &pos, &el)) == GW_OK) {
        if (gw_json_type(el) != GW_JSON_STRING)
            return GW_JWT_EMALFORMED;
        size_t from = buf->len;
        if (gw_json_string_unescape(el, buf) != GW_OK)
            return GW_JWT_EMALFORMED;
        /* A scope token never holds a space (RFC 6749 §3.3): split, so both forms mean the same. */
        if ((rc = split_scopes(buf, from, sp, n)) != GW_OK)
            return rc;
    }
    return rc == GW_DONE ? GW_OK : GW_JWT_EMALFORMED;
}

/* "aud": a string or an array of strings, one of which must be a configured audience. */
static int check_audience(gw_str_t claims, const gw_jwt_verify_opts_t *o)
{
    gw_str_t v, el;
    if (member(claims, "aud", &v) != GW_OK)
        return o->skip_audience ? GW_OK : GW_JWT_EAUDIENCE;
    gw_json_type_t t = gw_json_type(v);
    bool found = false;
    if (t == GW_JSON_STRING) {
        for (size_t i = 0; i < o->n_audiences && !found; i++)
            found = gw_json_key_eq(v, o->audiences[i]);
    } else if (t == GW_JSON_ARRAY) {
        size_t pos = 0;
        int rc;
        while ((rc = gw_json_array_next(v, &pos, &el)) == GW_OK) {
            if (gw_json_type(el) != GW_JSON_STRING)
                return GW_JWT_EMALFORMED;
            for (size_t i = 0; i < o->n_audiences && !found; i++)
                found = gw_json_key_eq(el, o->audiences[i]);
        }
        if (rc != GW_DONE)
            return GW_JWT_EMALFORMED;
    } else {
        return GW_JWT_EMALFORMED;
    }
    return found || o->skip_audience ? GW_OK : GW_JWT_EAUDIENCE;
}

static bool typ_ok(gw_str_t header, bool require_at_jwt)
{
    gw_str_t v;
    if (member(header, "typ", &v) != GW_OK)
        return !require_at_jwt;
    if (gw_json_type(v) != GW_JSON_STRING)
        return false;
    /* Media types are case-insensitive; no escapes are expected in them (refused otherwise). */
    gw_str_t s = gw_str(v.base + 1, v.len - 2);
    if (memchr(s.base, '\\', s.len) != NULL)
        return false;
    if (gw_str_case_eq_lit(s, "at+jwt") || gw_str_case_eq_lit(s, "application/at+jwt"))
        return true;
    return !require_at_jwt && gw_str_case_eq_lit(s, "JWT");
}

/* Decodes and validates one JSON segment into buf; GW_OK or GW_JWT_EMALFORMED. */
static int json_segment(gw_str_t seg, gw_buf_t *buf)
{
    if (b64url(seg, buf) != GW_OK || gw_json_validate(buf->data, buf->len, GW_JWT_MAX_DEPTH, NULL) != GW_OK ||
        gw_json_type(gw_buf_str(buf)) != GW_JSON_OBJECT)
        return GW_JWT_EMALFORMED;
    return GW_OK;
}

int gw_jwt_verify(const gw_jwks_t *jwks, gw_str_t token, const gw_jwt_verify_opts_t *o, gw_jwt_claims_t *claims)
{
    if (claims != NULL)
        memset(claims, 0, sizeof(*claims));
    if (jwks == NULL || o == NULL || (token.base == NULL && token.len > 0) ||
        (!o->skip_issuer && o->issuer.len == 0) || (!o->skip_audience && o->n_audiences == 0) ||
        (o->n_audiences > 0 && o->audiences == NULL) || (o->n_required_scopes > 0 && o->required_scopes == NULL))
        return GW_EINVAL;
    if (token.len > GW_JWT_MAX_TOKEN)
        return GW_TOOBIG;

    /* Three parts, none empty: header.payload.signature. */
    const char *d1 = token.len ? memchr(token.base, '.', token.len) : NULL;
    const char *end = token.base + token.len;
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
        return GW_JWT_EMALFORMED;
    gw_str_t h64 = gw_str(token.base, (size_t)(d1 - token.base));
    gw_str_t p64 = gw_str(d1 + 1, (size_t)(d2 - d1 - 1));
    gw_str_t s64 = gw_str(d2 + 1, (size_t)(end - d2 - 1));
    gw_str_t signing_input = gw_str(token.base, (size_t)(d2 - token.base));

    int rc;
    gw_buf_t hb, pb, sb, store;
    gw_buf_init(&hb, GW_JWT_MAX_TOKEN);
    gw_buf_init(&pb, GW_JWT_MAX_TOKEN);
    gw_buf_init(&sb, GW_JWT_MAX_TOKEN);
    gw_buf_init(&store, GW_JWT_MAX_TOKEN);
    span_t *spans = NULL;
    ERR_set_mark();

    /* ---- header ---- */
    if ((rc = json_segment(h64, &hb)) != GW_OK)
        goto out;
    gw_str_t header = gw_buf_str(&hb), alg_raw, kid_raw, v;
    rc = GW_JWT_EMALFORMED;
    if (member(header, "alg", &alg_raw) != GW_OK || gw_json_type(alg_raw) != GW_JSON_STRING)
        goto out;
    if (member(header, "crit", &v) == GW_OK || !typ_ok(header, o->require_at_jwt))
        goto out;
    bool has_kid = member(header, "kid", &kid_raw) == GW_OK;
    if (has_kid && gw_json_type(kid_raw) != GW_JSON_STRING)
        goto out;
    const alg_t *a = alg_by_raw(alg_raw);
    rc = GW_JWT_EALG;
    if (a == NULL)
        goto out;
    /* Both other parts must be base64url before any key is tried; the claims' JSON is only read
     * once the signature holds. */
    rc = GW_JWT_EMALFORMED;
    if (b64url(p64, &pb) != GW_OK || b64url(s64, &sb) != GW_OK)
        goto out;

    /* ---- signature: only keys that fit the algorithm, and the kid when there is one ---- */
    rc = GW_JWT_EUNKNOWN_KEY;
    for (size_t i = 0; i < jwks->n; i++) {
        const jwk_t *k = &jwks->keys[i];
        if (has_kid && (!k->has_kid || !gw_json_key_eq(kid_raw, k->kid)))
            continue;
        if (!key_fits(k, a))
            continue;
        rc = verify_sig(k, a, signing_input, (const unsigned char *)sb.data, sb.len);
        if (rc == GW_OK || rc == GW_ERROR)
            break;
    }
    if (rc != GW_OK)
        goto out;

    /* ---- claims: types first, then meaning, in the order the header documents ---- */
    rc = GW_JWT_EMALFORMED;
    if (gw_json_validate(pb.data, pb.len, GW_JWT_MAX_DEPTH, NULL) != GW_OK ||
        gw_json_type(gw_buf_str(&pb)) != GW_JSON_OBJECT)
        goto out;
    gw_str_t cl = gw_buf_str(&pb), iss, sub, x;
    int64_t exp_at = 0, nbf = 0, iat = 0;
    bool has_nbf = false, has_iat = false, has_iss;
    if (member(cl, "exp", &x) != GW_OK || numeric_date(x, &exp_at) != GW_OK)
        goto out;
    if ((has_nbf = member(cl, "nbf", &x) == GW_OK) && numeric_date(x, &nbf) != GW_OK)
        goto out;
    if ((has_iat = member(cl, "iat", &x) == GW_OK) && numeric_date(x, &iat) != GW_OK)
        goto out;
    if ((has_iss = member(cl, "iss", &iss) == GW_OK) && gw_json_type(iss) != GW_JSON_STRING)
        goto out;
    if (member(cl, "sub", &sub) == GW_OK) {
        if (gw_json_type(sub) != GW_JSON_STRING || gw_json_string_unescape(sub, &store) != GW_OK)
            goto out;
    }
    size_t sub_len = store.len, n_scopes = 0;
    spans = gw_malloc(GW_JWT_MAX_SCOPES * sizeof(*spans));
    if ((rc = read_scopes(cl, &store, spans, &n_scopes)) != GW_OK)
        goto out;
    int aud_rc = check_audience(cl, o); /* a malformed "aud" is reported before a wrong issuer */
    if ((rc = aud_rc) == GW_JWT_EMALFORMED)
        goto out;

    if (!o->skip_issuer && (!has_iss || !gw_json_key_eq(iss, o->issuer))) {
        rc = GW_JWT_EISSUER;
        goto out;
    }
    if ((rc = aud_rc) != GW_OK)
        goto out;
    int64_t skew = o->skew < 0 ? GW_JWT_DEFAULT_SKEW : o->skew;
    if (o->now >= sat_add(exp_at, skew)) {
        rc = GW_JWT_EEXPIRED;
        goto out;
    }
    if ((has_nbf && sat_add(o->now, skew) < nbf) || (has_iat && iat > sat_add(o->now, skew))) {
        rc = GW_JWT_ENOT_YET_VALID;
        goto out;
    }
    rc = GW_OK;
    for (size_t r = 0; r < o->n_required_scopes && rc == GW_OK; r++) {
        bool have = false;
        for (size_t i = 0; i < n_scopes && !have; i++)
            have = gw_str_eq(gw_str(store.data + spans[i].off, spans[i].len), o->required_scopes[r]);
        if (!have)
            rc = GW_JWT_ESCOPE;
    }

    if (claims != NULL) {
        char *data = gw_buf_detach(&store, NULL);
        claims->storage_ = data;
        claims->subject = gw_str(data ? data : "", sub_len);
        claims->n_scopes = n_scopes;
        claims->scopes = n_scopes ? gw_calloc(n_scopes, sizeof(gw_str_t)) : NULL;
        for (size_t i = 0; i < n_scopes; i++)
            claims->scopes[i] = gw_str(data + spans[i].off, spans[i].len);
        claims->expires_at = exp_at;
        claims->alg = gw_str_c(a->name);
    }
out:
    ERR_pop_to_mark();
    free(spans);
    gw_buf_free(&hb);
    gw_buf_free(&pb);
    gw_buf_free(&sb);
    gw_buf_free(&store);
    return rc;
}

void gw_jwt_claims_free(gw_jwt_claims_t *c)
{
    if (c == NULL)
        return;
    free(c->storage_);
    free(c->scopes);
    memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------------------------------------
 * WWW-Authenticate.
 */

static int append_param(gw_buf_t *out, bool *first, const char *name, gw_str_t v)
{
    if (v.len == 0)
        return GW_OK;
    if (v.base == NULL)
        return GW_EINVAL;
    int rc = gw_buf_append_str(out, *first ? GW_STR(" ") : GW_STR(", "));
    *first = false;
    if (rc == GW_OK)
        rc = gw_buf_append(out, name, strlen(name));
    if (rc == GW_OK)
        rc = gw_buf_append_lit(out, "=\"");
    size_t run = 0;
    for (size_t i = 0; i < v.len && rc == GW_OK; i++) {
        unsigned char c = (unsigned char)v.base[i];
        if (c < 0x20 || c > 0x7e)
            return GW_EINVAL; /* CR/LF would end the header; no byte outside visible ASCII + space */
        if (c == '"' || c == '\\') {
            if ((rc = gw_buf_append(out, v.base + run, i - run)) == GW_OK)
                rc = gw_buf_append_byte(out, '\\');
            run = i;
        }
    }
    if (rc == GW_OK)
        rc = gw_buf_append(out, v.base + run, v.len - run);
    if (rc == GW_OK)
        rc = gw_buf_append_byte(out, '"');
    return rc;
}

int gw_jwt_www_authenticate(gw_buf_t *out, gw_str_t resource_metadata, gw_bearer_error_t error, gw_str_t scope,
                            gw_str_t error_description)
{
    if (out == NULL)
        return GW_EINVAL;
    gw_str_t code;
    switch (error) {
    case GW_BEARER_ERROR_NONE: code = GW_STR_NULL; break;
    case GW_BEARER_ERROR_INVALID_REQUEST: code = GW_STR("invalid_request"); break;
    case GW_BEARER_ERROR_INVALID_TOKEN: code = GW_STR("invalid_token"); break;
    case GW_BEARER_ERROR_INSUFFICIENT_SCOPE: code = GW_STR("insufficient_scope"); break;
    default: return GW_EINVAL;
    }
    size_t saved = out->len;
    bool first = true;
    int rc = gw_buf_append_lit(out, "Bearer");
    if (rc == GW_OK)
        rc = append_param(out, &first, "resource_metadata", resource_metadata);
    if (rc == GW_OK)
        rc = append_param(out, &first, "error", code);
    if (rc == GW_OK)
        rc = append_param(out, &first, "scope", scope);
    if (rc == GW_OK)
        rc = append_param(out, &first, "error_description", error_description);
    if (rc != GW_OK)
        out->len = saved;
    return rc;
}
