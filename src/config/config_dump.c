/* Configuration snapshot -> JSON for the admin /config_dump endpoint (see config_dump.h). */
#include "config/config_dump.h"

#include "core/json.h"

#include <inttypes.h>

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
    str_field(o, "apiKey", b->auth.api_key ? "[redacted]" : NULL, true);
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

int gw_config_dump_json(const gw_config_t *c, gw_buf_t *o)
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
            gw_buf_append_byte(o, '[');
            for (size_t h = 0; h < r->matches[m].n_headers; h++) {
                const gw_header_match_t *hm = &r->matches[m].headers[h];
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
    gw_buf_append_lit(o, "]}\n");
    return GW_OK;
}
