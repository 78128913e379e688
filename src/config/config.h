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
    char *ca_file;  /* NULL: system trust store */
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
} gw_retry_policy_t;

/* Passive health (outlier detection): a backend that fails consecutively is skipped for a time
 * that grows with each ejection and comes back by itself (BackendTrafficPolicy
 * healthCheck.passive). Always on, with these defaults when no policy says otherwise. */
typedef struct {
    uint32_t consecutive_failures; /* consecutive 5xx / connect errors before ejection; default 1 */
    uint64_t base_ejection_ms;     /* first ejection; doubles per consecutive ejection; default 1000 */
    uint64_t max_ejection_ms;      /* cap; default 30000 */
} gw_passive_health_t;

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

/* An empty snapshot with refcount 1 (listen_port 0, no rules) for a builder to fill. */
gw_config_t *gw_config_new(void);

/* "OpenAI" -> GW_SCHEMA_OPENAI ...; false for an unknown name (exact spelling, as the CRD). */
bool gw_schema_parse(const char *name, gw_schema_t *out);

/* Compiles m->value into m->regex (anchored at both ends, UTF-8, JIT when available). On a bad
 * pattern returns GW_EINVAL and appends PCRE2's reason and offset to err (no newline). */
int gw_header_match_compile(gw_header_match_t *m, gw_buf_t *err);

#endif
