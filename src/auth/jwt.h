/* JWT access-token verification for the MCP OAuth 2.1 resource server, on raw OpenSSL 3: a JWKS
 * parser into an immutable key set (RSA, EC P-256/P-384, Ed25519), JWS compact signature checks
 * with the algorithm pinned by the key, claim checks, and the WWW-Authenticate challenge. Pure. */
#ifndef GW_AUTH_JWT_H
#define GW_AUTH_JWT_H

#include "core/buf.h"
#include "core/gw.h"

/* ---- Limits ----------------------------------------------------------------------------------
 * Enforced at the boundary, before any other work. The token size, the scope count and every JWKS
 * limit give GW_TOOBIG; JSON nested deeper than GW_JWT_MAX_DEPTH inside a token is
 * GW_JWT_EMALFORMED (such a token is simply invalid). */
#define GW_JWT_MAX_TOKEN 16384        /* whole compact token, bytes */
#define GW_JWT_MAX_DEPTH 16           /* JSON nesting in the JOSE header, the claims and the JWKS */
#define GW_JWT_MAX_SCOPES 256         /* scopes granted by one token */
#define GW_JWKS_MAX_BYTES (256 * 1024) /* JWKS document */
#define GW_JWKS_MAX_KEYS 64           /* entries of "keys", usable or not */
#define GW_JWKS_MAX_KID 256           /* bytes of a "kid"; a key with a longer one is skipped */
#define GW_JWT_RSA_MIN_BITS 2048      /* smaller RSA keys are skipped: they are no longer safe */
#define GW_JWT_RSA_MAX_BITS 8192      /* larger ones are skipped: verification cost is an attack */
#define GW_JWT_DEFAULT_SKEW 60        /* seconds of clock skew allowed on exp, nbf and iat */

/* ---- Statuses -------------------------------------------------------------------------------
 * gw_jwt_verify returns GW_OK or exactly one of these, or GW_EINVAL (bad arguments), GW_TOOBIG (a
 * token past GW_JWT_MAX_TOKEN, or granting more than GW_JWT_MAX_SCOPES scopes), GW_ERROR (OpenSSL
 * itself failed). All but GW_JWT_ESCOPE map to 401 error="invalid_token"; GW_JWT_ESCOPE maps to 403
 * error="insufficient_scope". The checks run in this order, so a forged token learns nothing about
 * how its claims would fare:
 *   size; three base64url parts and a strict-JSON header object with a string "alg" (MALFORMED);
 *   "crit", "typ", "kid" (MALFORMED); "alg" allow-list (EALG); the payload and signature parts are
 *   base64url (MALFORMED); a fitting key (UNKNOWN_KEY); the signature (BAD_SIGNATURE); the claims:
 *   strict JSON object, claim types, "exp" present (MALFORMED); iss; aud; exp; nbf and iat; scopes. */
#define GW_JWT_EMALFORMED (-200)    /* not three base64url parts, bad JSON, a claim of the wrong type,
                                       "crit" present, "exp" missing, an unexpected "typ" */
#define GW_JWT_EALG (-201)          /* "alg" is "none", HS*, or anything outside the allow-list */
#define GW_JWT_EUNKNOWN_KEY (-202)  /* no key with this "kid" fits the "alg" (kty, curve, pinned alg),
                                       or, without "kid", no key at all fits: refetch the JWKS
                                       (rate limited) and try once more */
#define GW_JWT_EBAD_SIGNATURE (-203) /* a fitting key exists, but the signature does not verify */
#define GW_JWT_EEXPIRED (-204)      /* now >= exp + skew */
#define GW_JWT_ENOT_YET_VALID (-205) /* now + skew < nbf, or iat in the future beyond the skew */
#define GW_JWT_EISSUER (-206)       /* "iss" missing or not exactly the configured issuer */
#define GW_JWT_EAUDIENCE (-207)     /* "aud" missing or holding none of the configured audiences */
#define GW_JWT_ESCOPE (-208)        /* valid token lacking a required scope */

/* Static, secret-free text for a status (for logs and error_description). */
const char *gw_jwt_strerror(int status);

/* ---- Key sets ------------------------------------------------------------------------------- */

/* An immutable, refcounted set of verification keys. Safe to use from any number of threads at
 * once (verification makes its own OpenSSL contexts); swap a refreshed set in by reference. */
typedef struct gw_jwks_s gw_jwks_t;

/* Parses a JWKS document ({"keys":[...]}). Keys that cannot be used are skipped, not fatal, since
 * real key sets mix in encryption keys and types we do not take: an unknown or missing "kty", a
 * "use" other than "sig", "key_ops" without "verify", an "alg" outside the allow-list or not fitting
 * the kty, an unsupported curve, bad base64url or an invalid point/modulus, RSA outside
 * GW_JWT_RSA_MIN_BITS..MAX_BITS, a "kid" longer than GW_JWKS_MAX_KID. Taken: RSA (n, e), EC P-256
 * and P-384 (x, y; the point must be on the curve), OKP Ed25519 (x). "x5c", "x5u" and other members
 * are ignored. Returns GW_OK with *out (refcount 1; the caller owns that reference; it may hold zero
 * keys: check gw_jwks_count) and, when skipped != NULL, the number of entries skipped; GW_EINVAL
 * when the document is not strict JSON (duplicate members included) or "keys" is missing or not an
 * array of objects; GW_TOOBIG past GW_JWKS_MAX_BYTES, GW_JWKS_MAX_KEYS or GW_JWT_MAX_DEPTH;
 * GW_ERROR when OpenSSL fails. */
int gw_jwks_parse(const char *json, size_t len, gw_jwks_t **out, size_t *skipped);
size_t gw_jwks_count(const gw_jwks_t *jwks);
gw_jwks_t *gw_jwks_ref(gw_jwks_t *jwks);
void gw_jwks_unref(gw_jwks_t *jwks); /* NULL is fine */

/* ---- Verification --------------------------------------------------------------------------- */

typedef struct {
    /* Exact byte comparison with "iss". Required (GW_EINVAL when empty) unless skip_issuer. */
    gw_str_t issuer;
    bool skip_issuer;
    /* "aud" (a string or an array of strings) must hold at least one of these, compared exactly
     * (for MCP: the canonical resource URI). Required unless skip_audience, so an omission in the
     * configuration cannot silently turn the check off. */
    const gw_str_t *audiences;
    size_t n_audiences;
    bool skip_audience;
    /* Every one must be granted by "scope" (space-separated) or, without it, "scp" (an array of
     * strings, or a space-separated string as some IdPs send). */
    const gw_str_t *required_scopes;
    size_t n_required_scopes;
    int64_t now;  /* unix seconds */
    int64_t skew; /* seconds; < 0 means GW_JWT_DEFAULT_SKEW */
    /* RFC 9068 "typ": false accepts none, "JWT", "at+jwt" and "application/at+jwt" (case-insensitive);
     * true requires one of the last two. Any other "typ" (an ID token's "dpop+jwt", ...) is refused. */
    bool require_at_jwt;
} gw_jwt_verify_opts_t;

/* What a verified token says. Every slice points into storage_, owned by the struct: release it
 * with gw_jwt_claims_free. The token itself is never copied in (it is a SECRET). */
typedef struct {
    gw_str_t subject;  /* unescaped "sub"; empty when absent. Any bytes but NUL ('@' included) */
    gw_str_t *scopes;  /* granted scopes in token order, duplicates kept; each non-empty, no spaces
                          (array elements of "scp" holding spaces are split like the string form) */
    size_t n_scopes;
    int64_t expires_at; /* "exp", unix seconds */
    gw_str_t alg;       /* the verified algorithm, e.g. "ES256" (static text) */
    void *storage_;     /* private */
} gw_jwt_claims_t;

/* Verifies a JWS compact token (the part after "Bearer ") against jwks and opts. Never crashes and
 * never reads outside token. "alg" comes from the header but is only accepted when a key fits it:
 * the key's "kty" (and curve) must suit it and a key's "alg", when present, must equal it. "none",
 * HS*, and every algorithm not listed here are refused before any key is looked at: RS256, RS384,
 * RS512, PS256, PS384, PS512, ES256 (P-256), ES384 (P-384), EdDSA (Ed25519). With "kid" only keys
 * with that kid are tried; without it, every fitting key (at most GW_JWKS_MAX_KEYS). Header keys
 * "jwk", "jku", "x5u", "x5c" are never trusted; "crit" makes the token malformed (no extension is
 * understood). "exp" is required; "nbf" and "iat" are checked when present (NumericDate; fractions
 * are truncated). On GW_OK and GW_JWT_ESCOPE (a valid token, so the caller may log who lacked the
 * scope), *claims is filled when claims != NULL; on every other status *claims is zeroed. */
int gw_jwt_verify(const gw_jwks_t *jwks, gw_str_t token, const gw_jwt_verify_opts_t *opts, gw_jwt_claims_t *claims);

/* Frees what verify stored in c and zeroes it; safe on a zeroed struct and twice. */
void gw_jwt_claims_free(gw_jwt_claims_t *c);

/* ---- Challenge ------------------------------------------------------------------------------ */

typedef enum {
    GW_BEARER_ERROR_NONE = 0,       /* no credentials were sent: RFC 6750 §3.1 says no error code */
    GW_BEARER_ERROR_INVALID_REQUEST,
    GW_BEARER_ERROR_INVALID_TOKEN,
    GW_BEARER_ERROR_INSUFFICIENT_SCOPE,
} gw_bearer_error_t;

/* Appends the value of a WWW-Authenticate header (RFC 6750 §3, RFC 9728 §5.1), e.g.
 *   Bearer resource_metadata="https://gw/.well-known/oauth-protected-resource/mcp", error="insufficient_scope",
 *   scope="mcp:tools mcp:admin", error_description="..."
 * Empty parameters are left out. Every value is a quoted-string: '"' and '\' are escaped; a byte
 * that could split or smuggle a header (CR, LF, other controls, DEL) or a non-ASCII byte is refused
 * with GW_EINVAL. GW_TOOBIG past out's cap. All or nothing: on failure out is left as it was.
 * Never pass a token or anything secret in error_description. */
int gw_jwt_www_authenticate(gw_buf_t *out, gw_str_t resource_metadata, gw_bearer_error_t error, gw_str_t scope,
                            gw_str_t error_description);

#endif
