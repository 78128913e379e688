/* Configuration snapshot -> JSON for the admin /config_dump endpoint (see config_dump.h). */
#include "config/config_dump.h"

#include "core/json.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

static void str_field(gw_buf_t *o, const char *key, const char *v, bool comma)
{
    if (comma)
        gw_buf_append_byte(o, ',');
    gw_json_append_string(o, key, strlen(key));
    gw_buf_append_byte(o, ':');
    if (v)
        gw_json_append_string(o, v, strlen(v));
    else
        gw_buf_append_lit(o, "null");
}

static void u64_field(gw_buf_t *o, const char *key, uint64_t v)
{
    gw_buf_append_byte(o, ',');
    gw_json_append_string(o, key, strlen(key));
    gw_buf_appendf(o, ":%" PRIu64, v);
}

static void bool_field(gw_buf_t *o, const char *key, bool v)
{
    gw_buf_append_byte(o, ',');
    gw_json_append_string(o, key, strlen(key));
    gw_buf_append_byte(o, ':');
    if (v)
        gw_buf_append_lit(o, "true");
    else
        gw_buf_append_lit(o, "false");
}

/* The one way a secret appears: "[redacted]" when it is set, null when not. Its value is never
 * read, so no length or prefix of it can leak either. */
static void secret_field(gw_buf_t *o, const char *key, const void *secret, bool comma)
{
    str_field(o, key, secret != NULL ? "[redacted]" : NULL, comma);
}

/* A header whose value is a credential by its name: Authorization, Cookie, or a name that says
 * key, token, secret, password, signature, session or credential. A header mutation may carry one
 * (a static bearer token for a self-hosted server); the dump shows that it is set, not its value. */
static bool credential_header(const char *name)
{
    static const char *const exact[] = {"authorization", "proxy-authorization", "cookie", "set-cookie"};
    static const char *const parts[] = {"key", "token", "secret", "password", "signature", "session", "credential",
                                        "auth"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcasecmp(name, exact[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcasestr(name, parts[i]) != NULL)
            return true;
    return false;
}

static void str_array_field(gw_buf_t *o, const char *key, char *const *v, size_t n, bool comma)
{
    if (comma)
        gw_buf_append_byte(o, ',');
    gw_json_append_string(o, key, strlen(key));
    gw_buf_append_lit(o, ":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            gw_buf_append_byte(o, ',');
        gw_json_append_string(o, v[i], strlen(v[i]));
    }
    gw_buf_append_byte(o, ']');
}

/* [{"type","name","value"}, ...]: the ANDed header matches of one match. */
static void dump_header_matches(gw_buf_t *o, const gw_route_match_t *m)
{
    gw_buf_append_byte(o, '[');
    for (size_t h = 0; h < m->n_headers; h++) {
        const gw_header_match_t *hm = &m->headers[h];
        if (h)
            gw_buf_append_byte(o, ',');
        gw_buf_append_byte(o, '{');
        str_field(o, "type", hm->type == GW_MATCH_REGEX ? "RegularExpression" : "Exact", false);
        str_field(o, "name", hm->name, true);
        str_field(o, "value", hm->value, true);
        gw_buf_append_byte(o, '}');
    }
    gw_buf_append_byte(o, ']');
}

static const char *auth_name(gw_auth_type_t t)
{
    switch (t) {
    case GW_AUTH_NONE: return "None";
    case GW_AUTH_API_KEY: return "APIKey";
    case GW_AUTH_AZURE_API_KEY: return "AzureAPIKey";
    case GW_AUTH_ANTHROPIC_API_KEY: return "AnthropicAPIKey";
    case GW_AUTH_AWS_CREDENTIALS: return "AWSCredentials";
    case GW_AUTH_AZURE_CREDENTIALS: return "AzureCredentials";
    case GW_AUTH_GCP_CREDENTIALS: return "GCPCredentials";
    }
    return "Unknown";
}

static void dump_backend(gw_buf_t *o, const gw_backend_t *b)
{
    gw_buf_append_byte(o, '{');
    str_field(o, "name", b->name, false);
    str_field(o, "serviceName", b->service_name, true);
    str_field(o, "schema", gw_schema_name(b->schema), true);
    str_field(o, "schemaVersion", b->schema_version, true);
    str_field(o, "host", b->host, true);
    u64_field(o, "port", b->port);
    gw_buf_appendf(o, ",\"tls\":%s", b->tls ? "true" : "false");
    str_field(o, "sni", b->sni, true);
    str_field(o, "caFile", b->ca_file, true);
    gw_buf_append_lit(o, ",\"auth\":{");
    str_field(o, "type", auth_name(b->auth.type), false);
    secret_field(o, "apiKey", b->auth.api_key, true);
    str_field(o, "region", b->auth.region, true);
    gw_buf_append_byte(o, '}');
    str_field(o, "modelNameOverride", b->model_name_override, true);
    u64_field(o, "weight", b->weight);
    u64_field(o, "priority", b->priority);
    gw_buf_append_lit(o, ",\"headerMutation\":{\"set\":[");
    for (size_t i = 0; i < b->header_mutation.n_set; i++) {
        if (i)
            gw_buf_append_byte(o, ',');
        gw_buf_append_byte(o, '{');
        str_field(o, "name", b->header_mutation.set[i].name, false);
        if (credential_header(b->header_mutation.set[i].name))
            secret_field(o, "value", b->header_mutation.set[i].value, true);
        else
            str_field(o, "value", b->header_mutation.set[i].value, true);
        gw_buf_append_byte(o, '}');
    }
    gw_buf_append_lit(o, "],\"remove\":[");
    for (size_t i = 0; i < b->header_mutation.n_remove; i++) {
        if (i)
            gw_buf_append_byte(o, ',');
        gw_json_append_string(o, b->header_mutation.remove[i], strlen(b->header_mutation.remove[i]));
    }
    gw_buf_append_lit(o, "]}}");
}

static const char *key_source_name(gw_mcp_key_source_t s)
{
    switch (s) {
    case GW_MCP_KEY_NONE: return NULL;
    case GW_MCP_KEY_INLINE: return "inline";
    case GW_MCP_KEY_SECRET_REF: return "secretRef";
    case GW_MCP_KEY_MCP_SERVERS: return "mcpServers";
    }
    return "unknown";
}

static void dump_mcp_backend(gw_buf_t *o, const gw_mcp_backend_t *b)
{
    gw_buf_append_byte(o, '{');
    str_field(o, "name", b->name, false);
    str_field(o, "host", b->host, true);
    u64_field(o, "port", b->port);
    bool_field(o, "tls", b->tls);
    str_field(o, "sni", b->sni, true);
    bool_field(o, "caPEM", b->ca_pem != NULL);
    str_field(o, "path", b->path, true);
    gw_buf_append_lit(o, ",\"toolSelector\":{");
    str_array_field(o, "include", b->include, b->n_include, false);
    str_array_field(o, "includeRegex", b->include_regex, b->n_include_regex, true);
    gw_buf_append_lit(o, "},\"apiKey\":");
    if (b->api_key != NULL || b->api_key_header != NULL) {
        gw_buf_append_byte(o, '{');
        str_field(o, "header", b->api_key_header, false);
        str_field(o, "source", key_source_name(b->api_key_source), true);
        str_field(o, "secretRef", b->api_key_secret, true);
        secret_field(o, "value", b->api_key, true);
        gw_buf_append_byte(o, '}');
    } else {
        gw_buf_append_lit(o, "null");
    }
    gw_buf_append_byte(o, '}');
}

/* The kid of every key of a local JWKS (public: what a token's header names), so an "unknown
 * key" refusal can be checked against the set. The keys themselves are left out: they are long,
 * and a JWKS pasted with its private parts ("d") must not be echoed. */
static void dump_jwks_key_ids(gw_buf_t *o, const char *jwks)
{
    gw_str_t doc = gw_str_c(jwks), keys, key, kid;
    gw_buf_t tmp;
    gw_buf_init(&tmp, 4096);
    gw_buf_append_lit(o, ",\"keyIds\":[");
    size_t pos = 0, n = 0;
    if (gw_json_object_get(doc, GW_STR("keys"), &keys) == GW_OK) {
        while (gw_json_array_next(keys, &pos, &key) == GW_OK) {
            gw_buf_reset(&tmp);
            if (gw_json_type(key) != GW_JSON_OBJECT || gw_json_object_get(key, GW_STR("kid"), &kid) != GW_OK ||
                gw_json_type(kid) != GW_JSON_STRING || gw_json_string_unescape(kid, &tmp) != GW_OK)
                continue;
            if (n++)
                gw_buf_append_byte(o, ',');
            gw_json_append_string(o, tmp.data ? tmp.data : "", tmp.len);
        }
    }
    gw_buf_append_byte(o, ']');
    gw_buf_free(&tmp);
}

static void dump_mcp_oauth(gw_buf_t *o, const gw_mcp_oauth_t *a)
{
    gw_buf_append_byte(o, '{');
    str_field(o, "issuer", a->issuer, false);
    str_array_field(o, "audiences", a->audiences, a->n_audiences, true);
    gw_buf_append_lit(o, ",\"jwks\":{");
    if (a->jwks_uri != NULL) {
        str_field(o, "source", "remote", false);
        str_field(o, "uri", a->jwks_uri, true);
    } else if (a->jwks_json != NULL) {
        str_field(o, "source", "local", false);
        dump_jwks_key_ids(o, a->jwks_json);
    } else {
        /* the jwks_uri of <issuer>/.well-known/oauth-authorization-server (RFC 8414) */
        str_field(o, "source", "discovery", false);
    }
    gw_buf_append_lit(o, "},\"protectedResourceMetadata\":{");
    str_field(o, "resource", a->resource, false);
    str_field(o, "resourceName", a->resource_name, true);
    str_array_field(o, "scopesSupported", a->scopes_supported, a->n_scopes_supported, true);
    str_array_field(o, "resourceSigningAlgValuesSupported", a->signing_algs_supported, a->n_signing_algs_supported,
                    true);
    str_field(o, "resourceDocumentation", a->resource_documentation, true);
    str_field(o, "resourcePolicyUri", a->resource_policy_uri, true);
    gw_buf_append_lit(o, "}}");
}

static void dump_mcp_api_key_auth(gw_buf_t *o, const gw_mcp_api_key_auth_t *a)
{
    gw_buf_append_lit(o, "{\"clients\":[");
    for (size_t i = 0; i < a->n_creds; i++) {
        if (i)
            gw_buf_append_byte(o, ',');
        gw_buf_append_byte(o, '{');
        str_field(o, "clientID", a->creds[i].client_id, false);
        secret_field(o, "key", a->creds[i].key, true);
        gw_buf_append_byte(o, '}');
    }
    gw_buf_append_lit(o, "],\"extractFrom\":{");
    str_array_field(o, "headers", a->headers, a->n_headers, false);
    str_array_field(o, "params", a->params, a->n_params, true);
    str_array_field(o, "cookies", a->cookies, a->n_cookies, true);
    gw_buf_append_byte(o, '}');
    str_field(o, "forwardClientIDHeader", a->forward_client_id_header, true);
    bool_field(o, "sanitize", a->sanitize);
    gw_buf_append_byte(o, '}');
}

static void dump_mcp_authorization(gw_buf_t *o, const gw_mcp_authorization_t *a)
{
    gw_buf_append_byte(o, '{');
    str_array_field(o, "requiredScopes", a->required_scopes, a->n_required_scopes, false);
    gw_buf_append_lit(o, ",\"tools\":[");
    for (size_t i = 0; i < a->n_tools; i++) {
        const gw_mcp_tool_scopes_t *t = &a->tools[i];
        if (i)
            gw_buf_append_byte(o, ',');
        gw_buf_append_byte(o, '{');
        str_field(o, "name", t->name, false);
        str_field(o, "nameRegex", t->name_regex, true);
        str_array_field(o, "scopes", t->scopes, t->n_scopes, true);
        gw_buf_append_byte(o, '}');
    }
    gw_buf_append_lit(o, "]}");
}

static void dump_mcp_route(gw_buf_t *o, const gw_mcp_route_t *r, const gw_config_dump_mcp_t *mcp)
{
    gw_buf_append_byte(o, '{');
    str_field(o, "name", r->name, false);
    str_field(o, "path", r->path, true);
    gw_buf_append_lit(o, ",\"headers\":");
    dump_header_matches(o, &r->match);
    if (mcp != NULL) {
        u64_field(o, "requestTimeoutMs", mcp->request_timeout_ms);
        if (mcp->fanout_timeout_ms)
            u64_field(o, "fanoutTimeoutMs", GW_MIN(mcp->fanout_timeout_ms, mcp->request_timeout_ms));
        else
            gw_buf_append_lit(o, ",\"fanoutTimeoutMs\":null");
    } else {
        gw_buf_append_lit(o, ",\"requestTimeoutMs\":null,\"fanoutTimeoutMs\":null");
    }
    gw_buf_append_lit(o, ",\"backends\":[");
    for (size_t b = 0; b < r->n_backends; b++) {
        if (b)
            gw_buf_append_byte(o, ',');
        dump_mcp_backend(o, &r->backends[b]);
    }
    gw_buf_append_lit(o, "],\"securityPolicy\":{\"oauth\":");
    if (r->oauth != NULL)
        dump_mcp_oauth(o, r->oauth);
    else
        gw_buf_append_lit(o, "null");
    gw_buf_append_lit(o, ",\"apiKeyAuth\":");
    if (r->api_key_auth != NULL)
        dump_mcp_api_key_auth(o, r->api_key_auth);
    else
        gw_buf_append_lit(o, "null");
    gw_buf_append_lit(o, ",\"authorization\":");
    if (r->authorization != NULL)
        dump_mcp_authorization(o, r->authorization);
    else
        gw_buf_append_lit(o, "null");
    gw_buf_append_lit(o, "}}");
}

int gw_config_dump_json(const gw_config_t *c, const gw_config_dump_mcp_t *mcp, gw_buf_t *o)
{
    gw_buf_appendf(o, "{\"generation\":%" PRIu64, c->generation);
    str_field(o, "description", c->description, true);
    u64_field(o, "listenPort", c->listen_port);
    gw_buf_appendf(o, ",\"listenTLS\":%s", c->listen_tls_cert_pem ? "true" : "false");
    u64_field(o, "maxRequestBody", c->max_request_body);
    gw_buf_append_lit(o, ",\"rules\":[");
    for (size_t i = 0; i < c->n_rules; i++) {
        const gw_route_rule_t *r = &c->rules[i];
        if (i)
            gw_buf_append_byte(o, ',');
        gw_buf_append_byte(o, '{');
        str_field(o, "route", r->route_name, false);
        u64_field(o, "requestTimeoutMs", r->request_timeout_ms);
        gw_buf_append_lit(o, ",\"matches\":[");
        for (size_t m = 0; m < r->n_matches; m++) {
            if (m)
                gw_buf_append_byte(o, ',');
            dump_header_matches(o, &r->matches[m]);
        }
        gw_buf_appendf(o, "],\"retry\":{\"numRetries\":%u,\"perRetryTimeoutMs\":%" PRIu64 "}", r->retry.num_retries,
                       r->retry.per_retry_timeout_ms);
        gw_buf_append_lit(o, ",\"backends\":[");
        for (size_t b = 0; b < r->n_backends; b++) {
            if (b)
                gw_buf_append_byte(o, ',');
            dump_backend(o, &r->backends[b]);
        }
        gw_buf_append_lit(o, "]}");
    }
    gw_buf_append_lit(o, "],\"models\":[");
    for (size_t i = 0; i < c->n_models; i++) {
        if (i)
            gw_buf_append_byte(o, ',');
        gw_buf_append_byte(o, '{');
        str_field(o, "id", c->models[i].name, false);
        str_field(o, "ownedBy", c->models[i].owned_by, true);
        gw_buf_appendf(o, ",\"created\":%lld}", (long long)c->models[i].created);
    }
    gw_buf_append_lit(o, "],\"mcpRoutes\":[");
    for (size_t i = 0; i < c->n_mcp_routes; i++) {
        if (i)
            gw_buf_append_byte(o, ',');
        dump_mcp_route(o, &c->mcp_routes[i], mcp);
    }
    gw_buf_append_lit(o, "],\"mcpSession\":");
    if (mcp != NULL) {
        gw_buf_appendf(o, "{\"maxAgeSeconds\":%" PRIu64, mcp->session_max_age_s);
        u64_field(o, "seeds", mcp->n_session_seeds);
        bool_field(o, "randomSeed", mcp->n_session_seeds == 0);
        gw_buf_append_byte(o, '}');
    } else {
        gw_buf_append_lit(o, "null");
    }
    gw_buf_append_lit(o, "}\n");
    return GW_OK;
}
