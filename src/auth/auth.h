/* Upstream credentials, applied to the final request after translation: API keys (OpenAI,
 * Azure, Anthropic headers) and AWS SigV4 over the exact bytes that go out. AWS credential
 * providers are attached to a configuration snapshot on the main thread, before it is published,
 * and are shared across reloads by credential source. */
#ifndef GW_AUTH_AUTH_H
#define GW_AUTH_AUTH_H

#include "auth/sigv4.h"
#include "config/config.h"
#include "core/buf.h"
#include "net/http.h"

#include <uv.h>

/* Main thread: gives every AWS backend of cfg its credential provider (created on first use of a
 * source, reused afterwards). GW_OK or GW_ERROR with the reason appended to errors. */
int gw_auth_attach(gw_config_t *cfg, uv_loop_t *main_loop, gw_buf_t *errors);
/* Main thread: true when every provider of cfg resolved at least once; *why names one that did
 * not obtain credentials (no secret in it). */
bool gw_auth_settled(const gw_config_t *cfg, bool *all_ok, const char **why);
/* Main thread, at exit. */
void gw_auth_shutdown(void);

#define GW_AUTH_MAX_HEADERS 4

/* The headers that authenticate one request; values live in storage. */
typedef struct {
    gw_http_header_t headers[GW_AUTH_MAX_HEADERS];
    size_t n_headers;
    gw_buf_t storage;
    gw_sigv4_result_t sigv4;
} gw_auth_result_t;

void gw_auth_result_init(gw_auth_result_t *r);
void gw_auth_result_free(gw_auth_result_t *r);

typedef struct {
    gw_str_t method;
    gw_str_t path;        /* path and query as sent */
    gw_str_t host;        /* the Host header value the upstream client will send */
    gw_str_t content_type;
    gw_str_t body;        /* the exact body sent */
    gw_sigv4_key_cache_t *key_cache; /* per worker, may be NULL */
} gw_auth_request_t;

/* Any worker thread. GW_OK (nothing to add for GW_AUTH_NONE), or GW_ERROR with a static reason
 * in *err (e.g. AWS credentials not available yet). */
int gw_auth_apply(const gw_backend_t *b, const gw_auth_request_t *req, gw_auth_result_t *out, const char **err);

/* The value the upstream client sends as Host for this backend (the SNI name or host, with the
 * port when it is not the scheme's default), appended to out. */
void gw_auth_host_header(const gw_backend_t *b, gw_buf_t *out);

#endif
