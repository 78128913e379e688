/* AWS Signature Version 4 (AWS4-HMAC-SHA256) for the Authorization header, written on OpenSSL:
 * canonical request, string to sign, signing key, signature, over the final bytes sent (so a
 * translated body is signed as it goes out). Pure: the time is an input. */
#ifndef GW_AUTH_SIGV4_H
#define GW_AUTH_SIGV4_H

#include "core/buf.h"
#include "core/gw.h"
#include "net/http.h"

#include <time.h>

typedef struct {
    gw_str_t access_key_id;
    gw_str_t secret_access_key; /* SECRET */
    gw_str_t session_token;     /* SECRET; empty when none */
} gw_aws_credentials_t;

#define GW_SIGV4_KEY_LEN 32

/* The derived signing key of one credentials/day/region/service, kept by the caller (one per worker
 * and backend; not shared between threads) so that the four HMACs of the derivation run once a day
 * instead of on every request. Holds no copy of the secret, only a digest that says which secret,
 * day, region and service the key belongs to. Zero-initialise it; gw_sigv4_key_cache_clear wipes it. */
typedef struct {
    bool valid;
    uint8_t id[32];
    uint8_t key[GW_SIGV4_KEY_LEN]; /* SECRET */
} gw_sigv4_key_cache_t;

typedef struct {
    gw_str_t method;
    gw_str_t path;              /* as it will be sent: already percent-encoded where needed, e.g.
                                   /model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse */
    gw_str_t query;             /* raw query without '?', may be empty */
    const gw_http_header_t *headers; /* headers that will be sent, Host included */
    size_t n_headers;
    gw_str_t body;
    gw_str_t region;
    gw_str_t service;           /* "bedrock" */
    time_t now;                 /* signing time (UTC seconds) */
    bool normalize_path;        /* remove ./.. and // (false for S3-style services; true for bedrock) */
    bool sign_body_header;      /* also emit x-amz-content-sha256 (not needed for bedrock) */
    bool omit_session_token;    /* add X-Amz-Security-Token after signing, unsigned */
    bool sign_content_length;   /* conformance only: the AWS signing test suite signs Content-Length;
                                   aigw leaves it false (see gw_sigv4_sign) */
    gw_sigv4_key_cache_t *key_cache; /* optional: reuse the derived key while day/region/service/
                                        secret stay the same; NULL derives it every time */
} gw_sigv4_request_t;

/* Signed-output headers to add to the request: "X-Amz-Date", "Authorization", and when they
 * apply "X-Amz-Security-Token" and "x-amz-content-sha256". Values live in storage. */
typedef struct {
    gw_http_header_t headers[4];
    size_t n_headers;
    gw_buf_t storage;
} gw_sigv4_result_t;

void gw_sigv4_result_init(gw_sigv4_result_t *r);
void gw_sigv4_result_free(gw_sigv4_result_t *r);

/* Signs req with creds. Content-Length is never signed (proxies may re-frame the body); every other
 * header given is signed, Host included (required). The canonical URI encodes the path as sent once
 * more (AWS's rule for every service but S3: "%3A" becomes "%253A"); the canonical query decodes
 * and re-encodes each parameter and sorts them by key, then value ('+' is a literal plus). The
 * payload hash is always the SHA-256 of body. out is reset first; its previous values are wiped.
 * Returns GW_OK, or GW_EINVAL for an unusable request: no Host header, a header given that the
 * signer adds (Authorization, X-Amz-Date, and X-Amz-Security-Token or x-amz-content-sha256 when it
 * adds them), a header name that is not an HTTP token, CR/LF/NUL in a value, a path not starting
 * with '/' or holding '?', '#', CR, LF or NUL, an empty method/region/service/key, a time outside
 * years 0..9999, or a canonical request over 1 MiB; GW_ERROR if OpenSSL fails. Pass the headers
 * exactly as they will be sent: one added later (Connection, say) is simply not signed, one changed
 * later breaks the signature. When canonical_out / string_to_sign_out are not NULL, the intermediate
 * texts are appended to them (tests; the canonical request holds the session token when signed). */
int gw_sigv4_sign(const gw_sigv4_request_t *req, const gw_aws_credentials_t *creds, gw_sigv4_result_t *out,
                  gw_buf_t *canonical_out, gw_buf_t *string_to_sign_out);

/* Derives the signing key HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service),
 * "aws4_request") for date "YYYYMMDD". GW_OK, or GW_EINVAL for empty inputs. */
int gw_sigv4_signing_key(gw_str_t secret, gw_str_t date, gw_str_t region, gw_str_t service,
                         uint8_t key[GW_SIGV4_KEY_LEN]);

/* Wipes a key cache (call when the credentials are dropped). */
void gw_sigv4_key_cache_clear(gw_sigv4_key_cache_t *c);

/* Percent-encodes a path segment the way AWS expects in the request (RFC 3986 unreserved kept),
 * appending to out: "anthropic.claude-3-5-sonnet-20240620-v1:0" -> "...-v1%3A0". '/' is kept
 * unless encode_slash. Upper-case hex. GW_OK, or GW_TOOBIG past out's cap. */
int gw_aws_uri_encode(gw_str_t s, bool encode_slash, gw_buf_t *out);

#endif
