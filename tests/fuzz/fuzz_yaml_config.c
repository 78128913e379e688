/* libFuzzer harness for the YAML configuration loader (substitution, DOM, every kind, linking,
 * MCPRoute, the resources-only check): arbitrary bytes must never crash or leak; a snapshot that
 * loads must be internally consistent, matchable and dumpable as valid JSON, and a refusal must say
 * why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_dump.h"
#include "core/json.h"
#include "core/log.h"

static gw_str_t get_header(void *ud, gw_str_t name)
{
    const gw_str_t *model = ud;
    return gw_str_eq_lit(name, "x-ai-eg-model") ? *model : GW_STR_NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gw_log_level = GW_LOG_ERROR; /* the loader warns about ignored kinds; keep the run quiet */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 20);
    gw_config_t *c = gw_config_load_buffer("fuzz.yaml", (const char *)data, size, &errors);
    if (c == NULL) {
        if (errors.len == 0)
            abort(); /* a refusal without a reason */
    } else {
        for (size_t i = 0; i < c->n_rules; i++) {
            const gw_route_rule_t *r = &c->rules[i];
            if (r->route_name == NULL || (r->n_backends > 0 && r->backends == NULL))
                abort();
            for (size_t j = 0; j < r->n_backends; j++)
                if (r->backends[j].name == NULL || r->backends[j].host == NULL || r->backends[j].port == 0)
                    abort();
            for (size_t j = 0; j < r->n_matches; j++)
                for (size_t k = 0; k < r->matches[j].n_headers; k++)
                    if (r->matches[j].headers[k].type == GW_MATCH_REGEX && r->matches[j].headers[k].regex == NULL)
                        abort();
        }
        /* Match with the input's own bytes as the model, and with every listed model (which may
         * still need other headers, so only the absence of a crash is checked). */
        gw_str_t model = gw_str((const char *)data, size < 64 ? size : 64);
        (void)gw_config_match(c, get_header, &model);
        for (size_t i = 0; i < c->n_models; i++) {
            if (c->models[i].name == NULL || c->models[i].owned_by == NULL)
                abort();
            model = gw_str_c(c->models[i].name);
            (void)gw_config_match(c, get_header, &model);
        }
        for (size_t i = 0; i < c->n_mcp_routes; i++) {
            const gw_mcp_route_t *r = &c->mcp_routes[i];
            if (r->name == NULL || r->path == NULL || r->path[0] != '/')
                abort();
            for (size_t j = 0; j < r->n_backends; j++) {
                const gw_mcp_backend_t *b = &r->backends[j];
                if (b->name == NULL || b->host == NULL || b->port == 0 || b->path == NULL)
                    abort();
                if (b->n_include > 0 && b->n_include_regex > 0)
                    abort(); /* the CEL rule: one or the other */
                (void)gw_mcp_tool_allowed(b, gw_str((const char *)data, size < 32 ? size : 32));
            }
        }
        if ((c->listen_tls_cert_pem == NULL) != (c->listen_tls_key_pem == NULL))
            abort();
        /* /config_dump of whatever loaded is one valid JSON document (names, hosts, header values
         * and regexes from the input are escaped). */
        gw_buf_t dump;
        gw_buf_init(&dump, GW_BUF_UNLIMITED);
        gw_config_dump_mcp_t settings = {.n_session_seeds = 2, .session_max_age_s = 60, .request_timeout_ms = 1000};
        if (gw_config_dump_json(c, &settings, &dump) != GW_OK ||
            gw_json_validate(dump.data, dump.len, 0, NULL) != GW_OK)
            abort();
        gw_buf_free(&dump);
        gw_config_unref(c);
    }
    gw_buf_free(&errors);
    /* The resources-only check (as the API server would judge each resource) says why too. */
    gw_buf_t e2;
    gw_buf_init(&e2, 1 << 20);
    int rc = gw_config_check_buffer("fuzz.yaml", (const char *)data, size, GW_CHECK_RESOURCES_ONLY, &e2, NULL);
    if (rc != GW_OK && e2.len == 0)
        abort();
    gw_buf_free(&e2);
    return 0;
}
