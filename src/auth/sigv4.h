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

/* Signs req with creds. Content-Length is never signed (proxies may re-frame the body). Returns
 * GW_OK, or GW_EINVAL for an unusable request. When canonical_out / string_to_sign_out are not
 * NULL, the intermediate texts are appended to them (tests). */
int gw_sigv4_sign(const gw_sigv4_request_t *req, const gw_aws_credentials_t *creds, gw_sigv4_result_t *out,
                  gw_buf_t *canonical_out, gw_buf_t *string_to_sign_out);

/* Percent-encodes a path segment the way AWS expects in the request (RFC 3986 unreserved kept),
 * appending to out: "anthropic.claude-3-5-sonnet-20240620-v1:0" -> "...-v1%3A0". */
int gw_aws_uri_encode(gw_str_t s, bool encode_slash, gw_buf_t *out);

#endif
