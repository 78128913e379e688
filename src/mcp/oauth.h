/* The MCP gateway as an OAuth 2.1 resource server (MCP authorization 2025-06-18 / 2025-11-25) and
 * the client API-key gate (Envoy Gateway apiKeyAuth) of an MCPRoute: one authorizer per worker
 * loop, which verifies bearer JWTs against local, remote or discovered JWKS (cached, refetched on
 * an unknown kid with a rate limit, single-flight), checks the client's API key, and builds the
 * 400/401/403/503 answers and the RFC 9728 / RFC 8414 metadata documents the proxy serves. */
#ifndef GW_MCP_OAUTH_H
#define GW_MCP_OAUTH_H

#include "config/config.h"
#include "core/buf.h"
#include "core/gw.h"
#include "net/http.h"
#include "net/http_server.h"
#include "net/upstream.h"

#include <uv.h>

/* ---- Limits and defaults ---------------------------------------------------------------------
 * Remote documents are fetched with the upstream client, never followed through redirects, and
 * bounded here; a larger answer is a failed fetch. */
#define GW_MCP_AUTH_MAX_METADATA (64 * 1024) /* an issuer's RFC 8414 / OIDC discovery document */
#define GW_MCP_AUTH_MAX_URL 2048             /* jwks_uri, issuer */
#define GW_MCP_AUTH_MAX_ENTRIES 128          /* cached key sets and discovery documents per worker */
#define GW_MCP_AUTH_MAX_API_KEY 4096         /* a client API key as presented */
/* Key-set lifetime: Cache-Control max-age of the answer, clamped to [MIN, MAX]; DEFAULT without
 * one. no-store / no-cache / max-age=0 give MIN, so a misconfigured IdP cannot make every request
 * fetch. Discovery documents live DEFAULT_META unless Cache-Control says otherwise (same clamp). */
#define GW_MCP_AUTH_JWKS_DEFAULT_TTL_MS (5ull * 60 * 1000)
#define GW_MCP_AUTH_META_DEFAULT_TTL_MS (60ull * 60 * 1000)
#define GW_MCP_AUTH_MIN_TTL_MS (30ull * 1000)
#define GW_MCP_AUTH_MAX_TTL_MS (24ull * 3600 * 1000)
/* A token with an unknown kid refetches its key set at most this often (key rotation; anything
 * more would let forged kids hammer the IdP). */
#define GW_MCP_AUTH_REFETCH_INTERVAL_MS (30ull * 1000)
/* After a failed fetch, the next one waits this long; meanwhile checks use the previous keys when
 * they expired less than MAX_STALE ago, else get 503. */
#define GW_MCP_AUTH_RETRY_MS (5ull * 1000)
#define GW_MCP_AUTH_MAX_STALE_MS (60ull * 60 * 1000)
#define GW_MCP_AUTH_CONNECT_TIMEOUT_MS 5000
#define GW_MCP_AUTH_TOTAL_TIMEOUT_MS 10000

/* Tunables, for tests; gw_mcp_auth_new uses the defaults above. A zero field keeps its default. */
typedef struct {
    uint64_t jwks_default_ttl_ms;
    uint64_t meta_default_ttl_ms;
    uint64_t min_ttl_ms;
    uint64_t refetch_interval_ms;
    uint64_t retry_ms;
    uint64_t total_timeout_ms;
} gw_mcp_auth_opts_t;

/* ---- The authorizer --------------------------------------------------------------------------
 * Owned by one worker loop and touched only from it: no lock anywhere. Its caches are keyed by
 * (route name, URI or JWKS text), not by pointers, so they survive configuration reloads; an entry
 * no longer used is evicted when the cache is full. */
typedef struct gw_mcp_auth_s gw_mcp_auth_t;
typedef struct gw_mcp_auth_req_s gw_mcp_auth_req_t;

/* pool: the worker's upstream pool (JWKS and discovery fetches go through it; https verifies the
 * server against the system trust store). Never NULL. */
gw_mcp_auth_t *gw_mcp_auth_new(uv_loop_t *loop, gw_upstream_pool_t *pool);
void gw_mcp_auth_set_opts(gw_mcp_auth_t *a, const gw_mcp_auth_opts_t *opts);
/* Cancels in-flight fetches and pending checks (their callbacks are never called) and frees the
 * authorizer once its timer handle is closed (asynchronously, on the loop). Call before
 * gw_upstream_pool_close. */
void gw_mcp_auth_free(gw_mcp_auth_t *a);

/* What a check or a metadata request ends with. Every slice is valid only during the callback:
 * copy what outlives it (the subject into the session, the client id into the forwarded header). */
typedef struct {
    /* 0: allowed, forward the request. Else a ready answer: 400 (malformed Authorization), 401
     * (no, invalid or expired token; missing or unknown API key), 403 (insufficient_scope), 503
     * (the route's keys cannot be fetched: no 401, which would send clients into a pointless
     * re-authorization), or 200 for the metadata documents. */
    int status;
    /* Allowed with OAuth: the token's "sub" (may be empty) for session binding, and its scopes. */
    gw_str_t subject;
    const gw_str_t *scopes;
    size_t n_scopes;
    /* Allowed with apiKeyAuth: the client id (the Secret data key) of the matched key. */
    gw_str_t client_id;
    /* The answer when status != 0: send exactly these headers (WWW-Authenticate for 401/403/400,
     * Access-Control-Allow-Origin for the metadata documents), content type and body. The bodies
     * are small JSON objects ({"error":"invalid_token","error_description":"..."}) that hold no
     * token, key or other secret. */
    const gw_http_header_t *headers;
    size_t n_headers;
    gw_str_t content_type;
    gw_str_t body;
} gw_mcp_auth_result_t;

/* Called exactly once per check unless the check was cancelled first; never synchronously from
 * gw_mcp_auth_check (always from a later turn of the loop, even when every key is cached), so the
 * caller may answer and free the HTTP request from inside it. The handle is invalid afterwards. */
typedef void (*gw_mcp_auth_cb)(void *ud, const gw_mcp_auth_result_t *res);

/* Whether the route needs gw_mcp_auth_check at all (OAuth or apiKeyAuth configured). */
bool gw_mcp_auth_required(const gw_mcp_route_t *route);

/* Authorizes req for route. In order:
 *   1. apiKeyAuth, when configured: the key is looked for in the configured headers (a "Bearer "
 *      prefix is removed, as Envoy's api_key_auth does), then query parameters, then cookies; the
 *      first source present is compared in constant time with every configured key. None -> 401,
 *      no match -> 401 (WWW-Authenticate: ApiKey realm="aigw"); the two are not distinguished.
 *   2. OAuth, when configured: exactly one "Authorization: Bearer <token>" (case-insensitive
 *      scheme). None, or another scheme -> 401 `Bearer resource_metadata="...", scope="..."` with
 *      no error code (RFC 6750 §3.1); repeated or empty -> 400 invalid_request. The token is
 *      verified against the route's keys: localJWKS, else remoteJWKS.uri, else the jwks_uri of the
 *      issuer's metadata (RFC 8414 path-inserted /.well-known/oauth-authorization-server, then the
 *      OIDC variants, then the issuer-appended ones). "iss" must equal the issuer; "aud" must hold
 *      one of `audiences`, or the protectedResourceMetadata `resource` when audiences is empty (RFC
 *      8707; the reference left aud unchecked then); exp/nbf/iat with GW_JWT_DEFAULT_SKEW. Any
 *      failure -> 401 error="invalid_token" with a fixed description (only "expired" is told
 *      apart, and only for a validly signed token, so a client knows to refresh).
 *   Scopes: like the reference (§5.6: scopesSupported only goes into the metadata and Envoy's
 *   jwt_authn requires no scope), the advertised scopesSupported are NOT required: the Keycloak
 *   example advertises a dozen scopes no token holds together. They are the scope= of the 401
 *   challenge (what to ask the IdP for). Required scopes come from gw_mcp_auth_check_scopes.
 * route must stay valid until the callback or cancel (the request's config snapshot holds it). The
 * Authorization value and the API key are copied when needed and wiped when the check ends. */
gw_mcp_auth_req_t *gw_mcp_auth_check(gw_mcp_auth_t *a, const gw_mcp_route_t *route, const gw_http_req_t *req,
                                     gw_mcp_auth_cb cb, void *ud);
/* The same, with scopes the token must all hold (e.g. per tool); a valid token lacking one gets
 * 403 `Bearer error="insufficient_scope", scope="<required...>", resource_metadata="..."`. The
 * scopes are copied. Without OAuth on the route they are ignored. */
gw_mcp_auth_req_t *gw_mcp_auth_check_scopes(gw_mcp_auth_t *a, const gw_mcp_route_t *route, const gw_http_req_t *req,
                                            const gw_str_t *required_scopes, size_t n_required, gw_mcp_auth_cb cb,
                                            void *ud);
/* Abandons a check (client gone): its callback is never called. Only before the callback ran. */
void gw_mcp_auth_cancel(gw_mcp_auth_req_t *r);

/* ---- Well-known metadata ---------------------------------------------------------------------
 * Served unauthenticated, application/json, with Access-Control-Allow-Origin: * (browser clients
 * and the inspector fetch them), as the reference does:
 *   Protected Resource Metadata (RFC 9728) at /.well-known/oauth-protected-resource, at
 *   /.well-known/oauth-protected-resource<route path> (when the path is not "/") and at the
 *   path-inserted URL of `resource` when its path differs from the route's (a gateway behind a
 *   path-prefixing proxy);
 *   Authorization Server Metadata at /.well-known/oauth-authorization-server and
 *   /.well-known/oauth-authorization-server<route path> (MCP 2025-03-26 clients look for it on the
 *   MCP server's origin).
 * The root paths belong to the first OAuth route in file order (the reference allows one OAuth
 * MCPRoute per listener); the 401 challenges point at the path-inserted URL of `resource` (RFC
 * 9728 §3.1), which is always served, so routes never share a document. */
typedef enum {
    GW_MCP_WELL_KNOWN_NONE = 0,
    GW_MCP_WELL_KNOWN_RESOURCE,    /* RFC 9728 Protected Resource Metadata */
    GW_MCP_WELL_KNOWN_AUTH_SERVER, /* RFC 8414 Authorization Server Metadata */
} gw_mcp_well_known_t;

/* The OAuth MCPRoute of c whose metadata is served at path (GET/HEAD), with the document kind in
 * *kind; NULL (kind NONE) when path is not a well-known path of any route. */
const gw_mcp_route_t *gw_mcp_auth_well_known_route(const gw_config_t *c, gw_str_t path, gw_mcp_well_known_t *kind);

/* Appends route's Protected Resource Metadata document, members in the reference's (sorted)
 * order: authorization_servers [issuer], bearer_methods_supported ["header"], resource,
 * resource_documentation?, resource_name?, resource_policy_uri?,
 * resource_signing_alg_values_supported?, scopes_supported? (absent or empty members left out).
 * GW_OK, GW_EINVAL when the route has no OAuth, GW_TOOBIG past out's cap. */
int gw_mcp_auth_resource_metadata_json(const gw_mcp_route_t *route, gw_buf_t *out);

/* The resource_metadata URL of the challenges: `resource` with the well-known segment inserted
 * between its authority and path (query and fragment dropped). Appends to out. */
int gw_mcp_auth_resource_metadata_url(const gw_mcp_route_t *route, gw_buf_t *out);

/* Answers a well-known request through cb (status 200, always asynchronously, like a check):
 * the Protected Resource Metadata is built locally; the Authorization Server Metadata is the
 * issuer's own document (fetched once and cached with the discovery of the jwks_uri, passed on as
 * received after validation: strict JSON object whose "issuer" matches), else, when the issuer
 * cannot be reached, the reference's Keycloak-shaped fallback: authorization_endpoint,
 * code_challenge_methods_supported ["S256"], grant_types_supported ["authorization_code"], issuer,
 * jwks_uri, response_types_supported ["code"], scopes_supported (the route's, when any),
 * token_endpoint, token_endpoint_auth_methods_supported ["client_secret_basic",
 * "client_secret_post"], with <issuer>/protocol/openid-connect/{auth,token,certs}. */
gw_mcp_auth_req_t *gw_mcp_auth_metadata(gw_mcp_auth_t *a, const gw_mcp_route_t *route, gw_mcp_well_known_t kind,
                                        gw_mcp_auth_cb cb, void *ud);

/* ---- Forwarding ------------------------------------------------------------------------------
 * The client's token is never sent upstream (MCP forbids token passthrough): Authorization and
 * Proxy-Authorization are always dropped. With apiKeyAuth and sanitize, the key's headers and the
 * key's cookies are dropped too (other cookies kept), and gw_mcp_auth_strip_query removes the key
 * parameters. A client-sent header named like forwardClientIDHeader is always dropped (it would
 * spoof the identity) and, when client_id is not empty, replaced by the verified one. Upstream
 * credentials (the backend's apiKey) are added by the proxy after this. */

/* Copies the headers to forward from in[] to out[] (at most cap; GW_TOOBIG beyond). Rewritten
 * Cookie values are stored in storage, which must stay alive and unchanged while out is used.
 * *n_out is set on GW_OK. */
int gw_mcp_auth_forward_headers(const gw_mcp_route_t *route, const gw_http_header_t *in, size_t n_in,
                                gw_str_t client_id, gw_http_header_t *out, size_t cap, size_t *n_out,
                                gw_buf_t *storage);
/* Appends target (path + query) to out without the apiKeyAuth parameters when sanitize is set
 * (and as is otherwise). */
int gw_mcp_auth_strip_query(const gw_mcp_route_t *route, gw_str_t target, gw_buf_t *out);

/* ---- Extraction, exposed for tests and fuzzing ------------------------------------------------ */

/* The bearer token of the Authorization headers: GW_OK with *token (a slice of the header value);
 * GW_DONE when there is no Authorization header or it uses another scheme; GW_EINVAL when the
 * header is repeated or the token is empty or holds a space. */
int gw_mcp_auth_bearer(const gw_http_header_t *h, size_t n, gw_str_t *token);
/* The percent-decoded value of the first query parameter `name` of target (path?query) into out:
 * GW_OK, GW_DONE when absent, GW_EINVAL on a bad escape, GW_TOOBIG past out's cap. */
int gw_mcp_auth_query_param(gw_str_t target, gw_str_t name, gw_buf_t *out);
/* The value of cookie `name` in one Cookie header value (RFC 6265 "a=b; c=d", optional quotes
 * removed): GW_OK with a slice of value, or GW_DONE. */
int gw_mcp_auth_cookie(gw_str_t cookie_header, gw_str_t name, gw_str_t *value);
/* Validates an issuer's metadata document (strict JSON object within GW_MCP_AUTH_MAX_METADATA,
 * "issuer" equal to issuer up to one trailing '/', "jwks_uri" an absolute http(s) URL) and appends
 * the unescaped jwks_uri to jwks_uri. GW_OK, GW_EINVAL, GW_DONE when valid but without jwks_uri,
 * GW_TOOBIG. */
int gw_mcp_auth_parse_server_metadata(gw_str_t doc, gw_str_t issuer, gw_buf_t *jwks_uri);
/* Milliseconds a response may be cached, from its Cache-Control value (empty: default_ms), clamped
 * to [min_ms, GW_MCP_AUTH_MAX_TTL_MS]. */
uint64_t gw_mcp_auth_cache_ttl(gw_str_t cache_control, uint64_t default_ms, uint64_t min_ms);

#endif
