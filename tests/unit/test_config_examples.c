/* Every configuration the reference ships (the YAML files under examples/ and cmd/aigw/testdata/, read in
 * place from ../shared/testdata) either loads or is refused with a message naming the kind or
 * field aigw does not run; docs/configuration-compatibility.md lists the same verdicts. A file
 * that appears there without a row here fails the test, so the table stays complete. Spot
 * checks then look at what the loaded ones mean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "config/config.h"
#include "core/log.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    gw_log_level = GW_LOG_WARN; /* the notices about Deployments and EnvoyProxy are expected */
    const char *td = tu_testdata();
    struct stat st;
    if (td == NULL)
        return 0;
    snprintf(root, sizeof(root), "%s/envoy-ai-gateway", td);
    if (stat(root, &st) != 0)
        root[0] = '\0';
    return 0;
}

#define SKIP_WITHOUT_TESTDATA()                                   \
    do {                                                          \
        if (root[0] == '\0') {                                    \
            printf("skipped: ../shared/testdata not found\n");    \
            skip();                                               \
        }                                                         \
    } while (0)

/* refused == NULL: must load (with rules / models / MCP routes as given); else a piece of the
 * expected error. env: NAME=value set for the load (the examples take keys from the environment). */
static const struct example {
    const char *file;
    const char *refused;
    size_t rules, models, mcp;
    const char *env;
} examples[] = {
    {"cmd/aigw/testdata/gateway_no_listeners.yaml", "Gateway default/aigw-run: no listeners configured", 0, 0, 0, NULL},
    {"cmd/aigw/testdata/translate_basic.in.yaml",
     "AIServiceBackend default/envoy-ai-gateway-basic-testupstream: spec.backendRef: BackendRef must be a Backend "
     "resource of Envoy Gateway",
     0, 0, 0, NULL},
    {"cmd/aigw/testdata/translate_basic.out.yaml", "HTTPRoute default/envoy-ai-gateway-basic: HTTPRoute is not supported",
     0, 0, 0, NULL},
    {"cmd/aigw/testdata/translate_nonairesources.yaml", NULL, 0, 0, 0, NULL},
    {"examples/access-log/basic.yaml", NULL, 1, 1, 0, NULL},
    {"examples/aigw/ollama.yaml", NULL, 1, 0, 0, "OPENAI_API_KEY=sk-example"},
    {"examples/basic/anthropic.yaml", NULL, 1, 1, 0, NULL},
    {"examples/basic/aws-irsa.yaml", NULL, 1, 1, 0, NULL},
    {"examples/basic/aws-pod-identity.yaml", NULL, 1, 1, 0, NULL},
    {"examples/basic/aws.yaml", NULL, 2, 2, 0, NULL},
    {"examples/basic/azure_openai.yaml", NULL, 1, 1, 0, NULL},
    {"examples/basic/basic.yaml", NULL, 1, 1, 0, NULL},
    {"examples/basic/cohere.yaml", NULL, 1, 1, 0, NULL},
    {"examples/basic/gcp_vertex.yaml", NULL, 2, 2, 0, NULL},
    {"examples/basic/openai.yaml", NULL, 1, 1, 0, NULL},
    {"examples/basic/tars.yaml", NULL, 1, 0, 0, NULL},
    {"examples/goose/kiwi_recipe.yaml", "resource has no kind (not a Kubernetes resource)", 0, 0, 0, NULL},
    {"examples/inference-pool/aigwroute.yaml", "spec.rules[0].backendRefs: InferencePool backends are not supported", 0,
     0, 0, NULL},
    {"examples/inference-pool/base.yaml", "InferencePool default/mistral: InferencePool is not supported", 0, 0, 0,
     NULL},
    {"examples/inference-pool/envoy-gateway-values-addon.yaml", "resource has no kind", 0, 0, 0, NULL},
    {"examples/inference-pool/httproute.yaml",
     "HTTPRoute default/inference-pool-with-httproute: HTTPRoute is not supported", 0, 0, 0, NULL},
    {"examples/inference-pool/with-annotations.yaml", "InferencePool is not supported", 0, 0, 0, NULL},
    {"examples/mcp/mcp_example.yaml", NULL, 0, 0, 1, "GITHUB_ACCESS_TOKEN=ghp-example"},
    {"examples/mcp/mcp_oauth_example.yaml", NULL, 0, 0, 1, NULL},
    {"examples/mcp/mcp_oauth_keycloak.yaml", NULL, 0, 0, 1, NULL},
    {"examples/mcp/openai-github.yaml", NULL, 1, 0, 1, NULL},
    {"examples/monitoring/monitoring.yaml", NULL, 0, 0, 0, NULL},
    {"examples/provider_fallback/base.yaml", NULL, 1, 1, 0, NULL},
    {"examples/provider_fallback/fallback.yaml",
     "BackendTrafficPolicy default/provider-fallback: HTTPRoute default/provider-fallback not found", 0, 0, 0, NULL},
    {"examples/token_ratelimit/envoy-gateway-values-addon.yaml", "resource has no kind", 0, 0, 0, NULL},
    {"examples/token_ratelimit/redis.yaml", NULL, 0, 0, 0, NULL},
    {"examples/token_ratelimit/token_ratelimit.yaml", "spec.rateLimit is not supported yet", 0, 0, 0, NULL},
};

static const struct example *find_example(const char *rel)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(examples); i++)
        if (strcmp(examples[i].file, rel) == 0)
            return &examples[i];
    return NULL;
}

/* Sets "NAME=value" (NULL: nothing) and returns the name to unset afterwards. */
static void set_env(const char *kv, char *name, size_t cap)
{
    name[0] = '\0';
    if (kv == NULL)
        return;
    const char *eq = strchr(kv, '=');
    snprintf(name, cap, "%.*s", (int)(eq - kv), kv);
    setenv(name, eq + 1, 1);
}

static gw_config_t *load_example(const char *rel, gw_buf_t *errors)
{
    char path[PATH_MAX + 128];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    return gw_config_load_file(path, errors);
}

static void test_every_example_has_a_verdict(void **state)
{
    (void)state;
    SKIP_WITHOUT_TESTDATA();
    int loads = 0, refused = 0;
    for (size_t i = 0; i < GW_ARRAY_SIZE(examples); i++) {
        const struct example *x = &examples[i];
        char var[64];
        set_env(x->env, var, sizeof(var));
        gw_buf_t errors;
        gw_buf_init(&errors, 1 << 16);
        gw_config_t *c = load_example(x->file, &errors);
        if (x->refused == NULL) {
            if (c == NULL)
                fail_msg("%s refused:\n%s", x->file, gw_buf_cstr(&errors));
            printf("  loads:   %-58s %s\n", x->file, strchr(c->description, ':') + 2);
            assert_int_equal(c->n_rules, x->rules);
            assert_int_equal(c->n_models, x->models);
            assert_int_equal(c->n_mcp_routes, x->mcp);
            gw_config_unref(c);
            loads++;
        } else {
            if (c != NULL)
                fail_msg("%s loaded but should be refused", x->file);
            if (strstr(gw_buf_cstr(&errors), x->refused) == NULL)
                fail_msg("%s: unexpected errors:\n%s", x->file, gw_buf_cstr(&errors));
            printf("  refused: %-58s %s\n", x->file, x->refused);
            refused++;
        }
        gw_buf_free(&errors);
        if (var[0] != '\0')
            unsetenv(var);
    }
    printf("examples: %d load, %d refused with a reason\n", loads, refused);
}

/* The table covers every YAML file of the two trees, so a new example cannot go unnoticed. */
static void walk(const char *rel_dir, int *unlisted)
{
    char path[PATH_MAX + 1100];
    snprintf(path, sizeof(path), "%s/%s", root, rel_dir);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char rel[1024];
        if ((size_t)snprintf(rel, sizeof(rel), "%s/%s", rel_dir, e->d_name) >= sizeof(rel))
            continue;
        snprintf(path, sizeof(path), "%s/%s", root, rel);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            walk(rel, unlisted);
            continue;
        }
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 5, ".yaml") != 0)
            continue;
        if (find_example(rel) == NULL) {
            printf("  no verdict for %s\n", rel);
            (*unlisted)++;
        }
    }
    closedir(d);
}

static void test_table_is_complete(void **state)
{
    (void)state;
    SKIP_WITHOUT_TESTDATA();
    int unlisted = 0;
    walk("examples", &unlisted);
    walk("cmd/aigw/testdata", &unlisted);
    assert_int_equal(unlisted, 0);
}

/* Keys from ${VAR}: unset, ollama.yaml's Secret is empty and says so. */
static void test_ollama_without_key(void **state)
{
    (void)state;
    SKIP_WITHOUT_TESTDATA();
    unsetenv("OPENAI_API_KEY");
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    assert_null(load_example("examples/aigw/ollama.yaml", &errors));
    assert_non_null(strstr(gw_buf_cstr(&errors), "Secret default/openai-apikey key apiKey is empty"));
    gw_buf_free(&errors);
}

static void test_basic_and_gcp(void **state)
{
    (void)state;
    SKIP_WITHOUT_TESTDATA();
    gw_config_t *c = load_example("examples/basic/basic.yaml", NULL);
    assert_non_null(c);
    assert_int_equal(c->listen_port, 80);
    assert_int_equal(c->max_request_body, 50u << 20);
    assert_null(c->listen_tls_cert_pem);
    const gw_backend_t *b = &c->rules[0].backends[0];
    assert_string_equal(b->host, "envoy-ai-gateway-basic-testupstream.default.svc.cluster.local");
    assert_int_equal(b->auth.type, GW_AUTH_NONE);
    assert_int_equal(c->rules[0].request_timeout_ms, 60000);
    assert_int_equal(c->rules[0].retry.num_retries, 0);
    assert_int_equal(c->rules[0].health.consecutive_failures, 1);
    gw_config_unref(c);

    c = load_example("examples/basic/gcp_vertex.yaml", NULL);
    assert_non_null(c);
    assert_int_equal(c->rules[0].backends[0].auth.type, GW_AUTH_GCP_CREDENTIALS);
    assert_string_equal(c->rules[0].backends[0].auth.gcp_project, "GCP_PROJECT_NAME");
    assert_string_equal(c->rules[0].backends[0].auth.credentials, "{}");
    assert_string_equal(c->rules[1].backends[0].schema_version, "vertex-2023-10-16");
    assert_string_equal(c->rules[1].backends[0].host, "us-east5-aiplatform.googleapis.com");
    assert_true(c->rules[1].backends[0].tls);
    assert_null(c->rules[1].backends[0].ca_pem);
    gw_config_unref(c);
}

/* base.yaml and fallback.yaml together, as the reference's guide applies them. */
static void test_provider_fallback_together(void **state)
{
    (void)state;
    SKIP_WITHOUT_TESTDATA();
    char path[PATH_MAX + 128];
    gw_buf_t all;
    gw_buf_init(&all, 1 << 20);
    const char *parts[] = {"examples/provider_fallback/base.yaml", "examples/provider_fallback/fallback.yaml"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", root, parts[i]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            gw_buf_append(&all, buf, n);
        fclose(f);
        gw_buf_append_lit(&all, "\n---\n");
    }
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    gw_config_t *c = gw_config_load_buffer("provider_fallback", all.data, all.len, &errors);
    if (c == NULL)
        fail_msg("%s", gw_buf_cstr(&errors));
    const gw_route_rule_t *r = &c->rules[0];
    assert_int_equal(r->n_backends, 2);
    assert_int_equal(r->backends[0].priority, 0);
    assert_int_equal(r->backends[1].priority, 1);
    assert_int_equal(r->retry.num_retries, 5);
    assert_int_equal(r->retry.num_attempts_per_priority, 1);
    assert_true(r->retry.on_connect_failure);
    assert_true(r->retry.on_retriable_status);
    assert_false(r->retry.on_5xx);
    assert_false(r->retry.on_reset);
    assert_int_equal(r->retry.n_status_codes, 1);
    assert_int_equal(r->retry.status_codes[0], 500);
    assert_int_equal(r->retry.per_retry_timeout_ms, 30000);
    assert_int_equal(r->retry.backoff_base_ms, 100);
    assert_int_equal(r->retry.backoff_max_ms, 10000);
    assert_int_equal(r->backends[1].auth.type, GW_AUTH_AWS_CREDENTIALS);
    assert_string_equal(r->backends[1].auth.aws_profile, "default");
    gw_config_unref(c);
    gw_buf_free(&errors);
    gw_buf_free(&all);
}

static void test_mcp_examples(void **state)
{
    (void)state;
    SKIP_WITHOUT_TESTDATA();
    setenv("GITHUB_ACCESS_TOKEN", "ghp-from-env", 1);
    gw_config_t *c = load_example("examples/mcp/mcp_example.yaml", NULL);
    unsetenv("GITHUB_ACCESS_TOKEN");
    assert_non_null(c);
    assert_int_equal(c->listen_port, 1975);
    const gw_mcp_route_t *r = &c->mcp_routes[0];
    assert_string_equal(r->name, "default/mcp-route");
    assert_string_equal(r->path, "/mcp");
    assert_null(r->oauth);
    assert_int_equal(r->n_backends, 3);
    const gw_mcp_backend_t *gh = &r->backends[0];
    assert_string_equal(gh->name, "github");
    assert_string_equal(gh->host, "api.githubcopilot.com");
    assert_int_equal(gh->port, 443);
    assert_true(gh->tls);
    assert_string_equal(gh->path, "/mcp/readonly");
    assert_string_equal(gh->api_key, "ghp-from-env"); /* the annotation wins over stringData */
    assert_string_equal(gh->api_key_header, "authorization");
    assert_int_equal(gh->n_include_regex, 2);
    assert_true(gw_mcp_tool_allowed(gh, GW_STR("list_pull_requests")));
    assert_true(gw_mcp_tool_allowed(gh, GW_STR("get_issue")));
    assert_false(gw_mcp_tool_allowed(gh, GW_STR("create_repository")));
    assert_string_equal(r->backends[1].name, "context7");
    assert_null(r->backends[1].api_key);
    assert_true(gw_mcp_tool_allowed(&r->backends[1], GW_STR("anything")));
    assert_string_equal(r->backends[2].path, "/");
    gw_config_unref(c);

    c = load_example("examples/mcp/mcp_oauth_example.yaml", NULL);
    assert_non_null(c);
    const gw_mcp_oauth_t *o = c->mcp_routes[0].oauth;
    assert_non_null(o);
    assert_string_equal(o->issuer, "https://auth-server.example.com");
    assert_null(o->jwks_uri);
    assert_non_null(o->jwks_json); /* from the ConfigMap's "jwks" key */
    assert_non_null(strstr(o->jwks_json, "\"keys\""));
    assert_string_equal(o->resource, "https://foo.bar.com/mcp");
    assert_int_equal(o->n_scopes_supported, 3);
    assert_string_equal(o->scopes_supported[2], "countdown");
    gw_config_unref(c);

    c = load_example("examples/mcp/mcp_oauth_keycloak.yaml", NULL);
    assert_non_null(c);
    o = c->mcp_routes[0].oauth;
    assert_string_equal(o->jwks_uri, "http://localhost:8080/realms/master/protocol/openid-connect/certs");
    assert_int_equal(o->n_scopes_supported, 13);
    gw_config_unref(c);

    c = load_example("examples/mcp/openai-github.yaml", NULL);
    assert_non_null(c);
    const gw_mcp_backend_t *b = &c->mcp_routes[0].backends[0];
    assert_string_equal(b->api_key, "GITHUB_MCP_TOKEN");
    assert_true(gw_mcp_tool_allowed(b, GW_STR("issue_read")));
    assert_false(gw_mcp_tool_allowed(b, GW_STR("issue_write")));
    assert_int_equal(c->rules[0].request_timeout_ms, 120000);
    gw_config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_example_has_a_verdict),
        cmocka_unit_test(test_table_is_complete),
        cmocka_unit_test(test_ollama_without_key),
        cmocka_unit_test(test_basic_and_gcp),
        cmocka_unit_test(test_provider_fallback_together),
        cmocka_unit_test(test_mcp_examples),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
