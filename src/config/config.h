/* The configuration model: an immutable, refcounted snapshot built on the main thread (from the
 * environment or from the reference's YAML resources) and published to the workers. Requests
 * hold a reference for their whole life, so a reload never changes a request mid-flight. */
#ifndef GW_CONFIG_CONFIG_H
#define GW_CONFIG_CONFIG_H

#include "core/buf.h"
#include "core/gw.h"

#include <stdatomic.h>
#include <stdint.h>

typedef enum {
    GW_SCHEMA_OPENAI = 0,
    GW_SCHEMA_AZURE_OPENAI,
    GW_SCHEMA_ANTHROPIC,
    GW_SCHEMA_AWS_BEDROCK,
    GW_SCHEMA_AWS_ANTHROPIC,
    GW_SCHEMA_GCP_VERTEX_AI,
    GW_SCHEMA_GCP_ANTHROPIC,
    GW_SCHEMA_COHERE,
} gw_schema_t;

/* "OpenAI", "AzureOpenAI", ... as spelled in AIServiceBackend.spec.schema.name. */
const char *gw_schema_name(gw_schema_t s);

typedef enum {
    GW_AUTH_NONE = 0,
    GW_AUTH_API_KEY,           /* Authorization: Bearer <key> */
    GW_AUTH_AZURE_API_KEY,     /* api-key: <key> */
    GW_AUTH_ANTHROPIC_API_KEY, /* x-api-key: <key> */
    GW_AUTH_AWS_CREDENTIALS,   /* parsed now, implemented by the AWS issue */
    GW_AUTH_AZURE_CREDENTIALS,
    GW_AUTH_GCP_CREDENTIALS,
} gw_auth_type_t;

typedef struct {
    gw_auth_type_t type;
    char *api_key; /* SECRET: never logged, never in /config_dump */
    char *region;  /* AWS / GCP */
    /* Added for the credential issues (NULL when not given): */
    char *credentials;  /* SECRET: AWS credentials file, Azure client secret, GCP service account JSON */
    char *aws_profile;  /* credentialsFile.profile, default "default" when a file is given */
    char *gcp_project;  /* gcpCredentials.projectName */
    char *azure_client_id;
    char *azure_tenant_id;
    /* Attached by the main thread after loading (auth/auth.c), shared by every snapshot that has
     * the same credential source; not owned by the snapshot. */
    struct gw_aws_credentials_provider_s *aws_provider;
} gw_auth_config_t;

typedef struct {
    char *name;  /* lower-cased */
    char *value;
} gw_header_kv_t;

typedef struct {
    gw_header_kv_t *set;
    size_t n_set;
    char **remove; /* lower-cased */
    size_t n_remove;
} gw_header_mutation_t;

/* One backend reference of one route rule: everything needed to send an attempt. */
typedef struct {
    char *name;         /* "<ns>/<backend>/route/<route>/rule/<i>/ref/<j>" (reference's backend name) */
    char *service_name; /* "<ns>/<AIServiceBackend name>" for logs */
    gw_schema_t schema;
    char *schema_version; /* OpenAI: path prefix without slashes ("v1", "" allowed); Azure: api-version */
                          /* OpenAI: an absent YAML version is "v1", an explicit "" stays "". Anthropic:
                           * path prefix from ANTHROPIC_BASE_URL, "v1" when absent (the reference
                           * ignores it). Others: as written, NULL when absent. */
    /* Where to connect (from the gateway.envoyproxy.io Backend and BackendTLSPolicy). */
    char *host;     /* DNS name or IP literal (IPv6 without brackets) */
    uint16_t port;
    bool tls;
    char *sni;      /* NULL: host */
    char *ca_file;  /* NULL: system trust store (or ca_pem); the YAML loader never sets it */
    char *ca_pem;   /* NULL: system trust store. Else the PEM bundle (one or more certificates)
                     * that the peer must chain to, instead of the system store: BackendTLSPolicy
                     * validation.caCertificateRefs, key ca.crt of each ConfigMap or Secret,
                     * concatenated. Checked at load: every PEM block parses as a certificate. */
    gw_auth_config_t auth;
    gw_header_mutation_t header_mutation; /* route level merged over backend level */
    char *model_name_override;            /* NULL: none */
    uint32_t weight;                      /* default 1 */
    uint32_t priority;                    /* 0 first */
} gw_backend_t;

typedef enum { GW_MATCH_EXACT = 0, GW_MATCH_REGEX } gw_match_type_t;

typedef struct {
    char *name; /* lower-cased header name; "x-ai-eg-model" is the model from the body */
    char *value;
    gw_match_type_t type;
    void *regex; /* compiled pcre2_code * (anchored, whole value) for GW_MATCH_REGEX */
} gw_header_match_t;

typedef struct {
    gw_header_match_t *headers; /* ANDed */
    size_t n_headers;
} gw_route_match_t;

/* Retries of one request across attempts (BackendTrafficPolicy.spec.retry targeting the route's
 * HTTPRoute, i.e. the AIGatewayRoute's name, or its Gateway). Each attempt picks a backend again:
 * the same priority tier while it has healthy backends, then the next tier (fallback). */
typedef struct {
    uint32_t num_retries;          /* extra attempts after the first; 0: none (no policy) */
    bool on_connect_failure;       /* trigger "connect-failure" (nothing was sent) */
    bool on_reset;                 /* "reset": connection reset / closed before the response */
    bool on_5xx;                   /* "5xx": any 5xx status, connect failures and resets */
    bool on_gateway_error;         /* "gateway-error": 502, 503, 504 */
    bool on_retriable_status;      /* "retriable-status-codes" with status_codes */
    uint16_t status_codes[16];
    size_t n_status_codes;
    uint64_t per_retry_timeout_ms; /* perRetry.timeout; 0: the rule's timeout only */
    uint64_t backoff_base_ms;      /* perRetry.backOff.baseInterval; default 25 ms */
    uint64_t backoff_max_ms;       /* perRetry.backOff.maxInterval; default 10 x base */
    uint32_t num_attempts_per_priority; /* numAttemptsPerPriority: attempts on one priority tier
                                         * before moving to the next; 0: stay on a tier while it
                                         * has healthy backends */
} gw_retry_policy_t;
/* Filling from a BackendTrafficPolicy with a retry block (Envoy Gateway's defaults): numRetries
 * absent -> 2; retryOn absent -> connect-failure + retriable-status-codes [503] (refused-stream,
 * unavailable, cancelled are HTTP/2 and gRPC triggers with no HTTP/1.1 counterpart); httpStatusCodes
 * given without triggers -> retriable-status-codes; "retriable-4xx" -> status 409; "refused-stream",
 * "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable" -> accepted
 * and ignored with a notice. Without any policy: num_retries 0, backoff 25 / 250 ms. */

/* Passive health (outlier detection): a backend that fails consecutively is skipped for a time
 * that grows with each ejection and comes back by itself (BackendTrafficPolicy
 * healthCheck.passive). Always on, with these defaults when no policy says otherwise. */
typedef struct {
    uint32_t consecutive_failures; /* consecutive 5xx / connect errors before ejection; default 1 */
    uint64_t base_ejection_ms;     /* first ejection; doubles per consecutive ejection; default 1000 */
    uint64_t max_ejection_ms;      /* cap; default 30000 */
} gw_passive_health_t;
/* From BackendTrafficPolicy healthCheck.passive: consecutive5XxErrors -> consecutive_failures,
 * baseEjectionTime -> base_ejection_ms; a field not written keeps the default above (aigw's, not
 * Envoy Gateway's 5 errors / 30 s: fallback should be quick); max_ejection_ms is
 * max(30000, base). interval, maxEjectionPercent, consecutiveLocalOriginFailures,
 * consecutiveGatewayErrors and splitExternalLocalOriginErrors are ignored with a notice. */

typedef struct {
    char *route_name;           /* "<ns>/<AIGatewayRoute name>" */
    gw_route_match_t *matches;  /* ORed; none = matches every request */
    size_t n_matches;
    gw_backend_t *backends;
    size_t n_backends;
    uint64_t request_timeout_ms; /* default 60000; 0: no timeout (Gateway API "0s" disables it) */
    gw_retry_policy_t retry;
    gw_passive_health_t health;
} gw_route_rule_t;

typedef struct {
    char *name;
    char *owned_by;     /* default "Envoy AI Gateway" */
    int64_t created;    /* unix seconds */
} gw_model_t;

typedef enum { GW_COST_INPUT = 0, GW_COST_CACHED_INPUT, GW_COST_OUTPUT, GW_COST_TOTAL, GW_COST_CEL } gw_cost_type_t;

typedef struct {
    char *metadata_key;
    gw_cost_type_t type;
    char *cel; /* only for GW_COST_CEL */
} gw_llm_cost_t;

/* ---- MCP (MCPRoute, aigateway.envoyproxy.io/v1alpha1): parsed and validated here, served by
 * the MCP gateway. Strings are owned by the snapshot. ---- */

/* Where an MCP backend's upstream API key came from (shown by /config_dump, never the key). */
typedef enum {
    GW_MCP_KEY_NONE = 0,
    GW_MCP_KEY_INLINE,      /* securityPolicy.apiKey.inline */
    GW_MCP_KEY_SECRET_REF,  /* securityPolicy.apiKey.secretRef (key apiKey) */
    GW_MCP_KEY_MCP_SERVERS, /* the server's headers in the {"mcpServers": ...} JSON of --mcp-config/--mcp-json */
} gw_mcp_key_source_t;

/* One MCP server behind a route. Tools appear to clients as "<name>__<tool>". */
typedef struct {
    char *name;       /* backendRefs[].name, unique in the route */
    char *host;       /* from the gateway.envoyproxy.io Backend (IPv6 without brackets) */
    uint16_t port;    /* backendRefs[].port, else the Backend endpoint's, else 443 / 80 */
    bool tls;         /* a BackendTLSPolicy targets the Backend */
    char *sni;        /* NULL: host */
    char *ca_pem;     /* NULL: system trust store */
    char *path;       /* backend MCP endpoint path; default "/mcp" */
    /* toolSelector: at most one of the two lists is non-empty (CEL); both empty: every tool. */
    char **include;   /* exact tool names (upstream names, without the prefix) */
    size_t n_include;
    char **include_regex;   /* RE2 patterns as written; any match (unanchored, as Go's
                             * regexp.MatchString) includes the tool */
    void **include_re;      /* compiled pcre2_code * for each include_regex */
    size_t n_include_regex;
    /* securityPolicy.apiKey: sent upstream on every call; NULL: none. */
    char *api_key;        /* SECRET: secretRef (key apiKey) or inline */
    char *api_key_header; /* lower-cased; default "authorization", whose value is "Bearer <key>";
                           * any other header carries the key as is */
    gw_mcp_key_source_t api_key_source;
    char *api_key_secret; /* "<ns>/<name>" of the secretRef (GW_MCP_KEY_SECRET_REF), else NULL */
} gw_mcp_backend_t;

/* securityPolicy.oauth: the MCP authorization spec (2025-06-18) resource server. */
typedef struct {
    char *issuer;
    char **audiences;
    size_t n_audiences;
    /* JWKS: exactly one of jwks_uri / jwks_json, or neither: discover jwks_uri from
     * <issuer>/.well-known/oauth-authorization-server (RFC 8414). */
    char *jwks_uri;  /* remoteJWKS.uri */
    char *jwks_json; /* localJWKS: inline, or ConfigMap valueRef key "jwks"; checked to be JSON */
    /* protectedResourceMetadata (RFC 9728), served at /.well-known/oauth-protected-resource. */
    char *resource;
    char *resource_name;           /* NULL: absent */
    char **scopes_supported;
    size_t n_scopes_supported;
    char **signing_algs_supported; /* resourceSigningAlgValuesSupported */
    size_t n_signing_algs_supported;
    char *resource_documentation;  /* NULL: absent */
    char *resource_policy_uri;     /* NULL: absent */
} gw_mcp_oauth_t;

typedef struct {
    char *client_id; /* a data key of a credentialRefs Secret */
    char *key;       /* SECRET: its value */
} gw_api_key_cred_t;

/* securityPolicy.apiKeyAuth (Envoy Gateway APIKeyAuth): clients present one of the keys. */
typedef struct {
    gw_api_key_cred_t *creds;
    size_t n_creds;
    char **headers;  /* extractFrom[].headers, lower-cased: where the key is looked for */
    size_t n_headers;
    char **params;   /* extractFrom[].params: query parameters */
    size_t n_params;
    char **cookies;  /* extractFrom[].cookies */
    size_t n_cookies;
    char *forward_client_id_header; /* NULL: do not forward; lower-cased */
    bool sanitize;                  /* remove the key from the request before forwarding */
} gw_mcp_api_key_auth_t;

/* securityPolicy.authorization (aigw extension; needs oauth): scopes the token must hold. A tool's
 * rule names the tool as clients see it (prefixed "<backend>__<tool>" on a route with several
 * backends); exactly one of name / name_regex is set. */
typedef struct {
    char *name;       /* exact tool name; NULL when name_regex is used */
    char *name_regex; /* PCRE2 pattern as written; unanchored (any match applies), like includeRegex */
    void *name_re;    /* compiled pcre2_code * of name_regex */
    char **scopes;    /* at least one; each an RFC 6749 scope-token (no space, quote or backslash) */
    size_t n_scopes;
} gw_mcp_tool_scopes_t;

#define GW_MCP_AUTHZ_MAX_SCOPES 32 /* requiredScopes, and the scopes of one tool rule */
#define GW_MCP_AUTHZ_MAX_TOOLS 32  /* tool rules per route */

typedef struct {
    char **required_scopes; /* every request on the route needs all of them */
    size_t n_required_scopes;
    gw_mcp_tool_scopes_t *tools; /* a tools/call needs the scopes of every rule matching the tool,
                                  * and tools/list shows only the tools whose rules the token meets */
    size_t n_tools;
} gw_mcp_authorization_t;

typedef struct {
    char *name;              /* "<ns>/<MCPRoute name>" */
    char *path;              /* exact request path; default "/mcp" */
    gw_route_match_t match;  /* spec.headers, ANDed; none: every request on path */
    gw_mcp_backend_t *backends;
    size_t n_backends;
    gw_mcp_oauth_t *oauth;              /* NULL: no OAuth */
    gw_mcp_api_key_auth_t *api_key_auth; /* NULL: no client API keys */
    gw_mcp_authorization_t *authorization; /* NULL: no required scopes; only with oauth */
} gw_mcp_route_t;

/* Whether a backend's toolSelector lets the (upstream) tool name through. */
bool gw_mcp_tool_allowed(const gw_mcp_backend_t *b, gw_str_t tool);
/* Whether an authorization tool rule applies to tool (the name as the client sees it). A regex
 * that hits the backtracking limit applies (fail closed: its scopes are required). */
bool gw_mcp_tool_rule_matches(const gw_mcp_tool_scopes_t *rule, gw_str_t tool);

typedef struct gw_config_s {
    atomic_int refcount;
    uint64_t generation;
    char *description;          /* one line for the start-up log, no secrets */
    uint16_t listen_port;       /* from the Gateway listener; 0: not set (CLI default 1975) */
    size_t max_request_body;    /* ClientTrafficPolicy bufferLimit; 0: default */
    /* Listener TLS (Gateway listener protocol HTTPS, certificateRefs to a kubernetes.io/tls
     * Secret): PEM text, NULL for plain HTTP. SECRET: the key never leaves the process. */
    char *listen_tls_cert_pem;
    char *listen_tls_key_pem;
    gw_route_rule_t *rules;     /* evaluated in order */
    size_t n_rules;
    gw_model_t *models;         /* served by GET /v1/models */
    size_t n_models;
    gw_llm_cost_t *costs;
    size_t n_costs;
    gw_mcp_route_t *mcp_routes; /* MCPRoutes, in file order */
    size_t n_mcp_routes;
} gw_config_t;

/* Auto-configuration from the environment, as `aigw run` without a file does in the reference
 * (OPENAI_API_KEY / OPENAI_BASE_URL / OPENAI_ORG_ID / OPENAI_PROJECT_ID, AZURE_OPENAI_API_KEY +
 * AZURE_OPENAI_ENDPOINT + OPENAI_API_VERSION, ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL). With none
 * set, every model goes to an OpenAI-compatible server at http://127.0.0.1:11434/v1 (Ollama).
 * getenv_fn lets tests supply the environment (NULL: getenv). Returns a snapshot with refcount
 * 1, or NULL with the problems appended to errors (e.g. Azure without its endpoint). */
gw_config_t *gw_config_from_env(const char *(*getenv_fn)(const char *name), gw_buf_t *errors);

/* Loads and validates a YAML file of the reference's resources (multi-document, ${VAR}
 * substitution from the environment first). NULL with every problem appended to errors, one
 * per line as "file:line:col: Kind namespace/name: what is wrong". */
gw_config_t *gw_config_load_file(const char *path, gw_buf_t *errors);

gw_config_t *gw_config_ref(gw_config_t *c);
void gw_config_unref(gw_config_t *c);

/* Finds the first rule whose matches accept the request. get_header returns the value of a
 * (lower-case) request header or GW_STR_NULL; the router passes the body's model as
 * "x-ai-eg-model". NULL: no rule matched. */
const gw_route_rule_t *gw_config_match(const gw_config_t *c, gw_str_t (*get_header)(void *ud, gw_str_t name),
                                       void *ud);
/* Matching details: a header the request lacks (GW_STR_NULL, base == NULL) fails every match,
 * even ".*"; a present empty value has a non-NULL base. Exact is byte equality; a regex must
 * match the whole value. Safe from any number of threads on one snapshot: the only per-call
 * state (PCRE2 match data) is per thread. A regex that hits the backtracking limit is treated
 * as "no match" (logged at debug level). */

/* ---- builders (main thread; the snapshot is immutable once published) ---- */

/* The same as gw_config_load_file on bytes in memory (fuzzing, tests, config from a Secret);
 * name stands for the file name in error messages. */
gw_config_t *gw_config_load_buffer(const char *name, const char *bytes, size_t len, gw_buf_t *errors);

/* Notices (ignored kinds and fields, defaults that differ from the reference) go to the log at
 * info level while loading; these two collect them instead, one per line as
 * "file:line:col: notice: Kind namespace/name: what". */

/* `aigw validate FILE`: loads the file as `aigw run` would and discards the snapshot. GW_OK when
 * it would run, else GW_EINVAL. report receives every error line, then every warning line. */
int gw_config_validate_file(const char *path, gw_buf_t *report);
/* (report: error lines first, then notice lines.) */

/* Check each resource alone, as the reference's API server does (schema and CEL rules only):
 * references to resources that are not in the input, and what aigw refuses to run (reported as
 * warnings then), are not errors. */
#define GW_CHECK_RESOURCES_ONLY 1u
/* Loads bytes like gw_config_load_buffer with flags, keeping errors and notices apart (either
 * may be NULL). GW_OK or GW_EINVAL. */
int gw_config_check_buffer(const char *name, const char *bytes, size_t len, unsigned flags, gw_buf_t *errors,
                           gw_buf_t *notices);

/* An empty snapshot with refcount 1 (listen_port 0, no rules) for a builder to fill. */
gw_config_t *gw_config_new(void);

/* "OpenAI" -> GW_SCHEMA_OPENAI ...; false for an unknown name (exact spelling, as the CRD). */
bool gw_schema_parse(const char *name, gw_schema_t *out);

/* Compiles m->value into m->regex (anchored at both ends, UTF-8, JIT when available). On a bad
 * pattern returns GW_EINVAL and appends PCRE2's reason and offset to err (no newline). */
int gw_header_match_compile(gw_header_match_t *m, gw_buf_t *err);

#endif
