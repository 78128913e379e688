/* Unit tests for auto-configuration from the environment: each golden case of the reference
 * (the YAML files of internal/autoconfig/testdata) with a fake environment, compared field by field with
 * the same golden YAML loaded by gw_config_load_file; plus aigw's keyless and Ollama cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "config/config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the fake environment ---- */

typedef struct {
    const char *name;
    const char *value;
} envkv_t;

static const envkv_t *fake_env;

static const char *fake_getenv(const char *name)
{
    for (const envkv_t *e = fake_env; e != NULL && e->name != NULL; e++)
        if (strcmp(e->name, name) == 0)
            return e->value;
    return NULL;
}

static gw_config_t *from_env(const envkv_t *env, gw_buf_t *errors)
{
    fake_env = env;
    return gw_config_from_env(fake_getenv, errors);
}

/* ---- where the reference's golden files are ---- */

#define GOLDEN_DIR "envoy-ai-gateway/internal/autoconfig/testdata"

/* ---- checks ---- */

static void assert_no_secret(const gw_config_t *c, const char *secret)
{
    assert_non_null(c->description);
    assert_null(strstr(c->description, secret));
    assert_null(strchr(c->description, '\n'));
}

/* What every auto-configuration shares, from the reference's template. */
static void assert_template(const gw_config_t *c)
{
    assert_int_equal(c->listen_port, 1975);
    assert_int_equal(c->max_request_body, 50u << 20);
    assert_int_equal(c->n_costs, 2);
    assert_string_equal(c->costs[0].metadata_key, "llm_input_token");
    assert_int_equal(c->costs[0].type, GW_COST_INPUT);
    assert_string_equal(c->costs[1].metadata_key, "llm_output_token");
    assert_int_equal(c->costs[1].type, GW_COST_OUTPUT);
    assert_int_equal(c->n_models, 0); /* a regex route lists no model */
    assert_int_equal(c->n_rules, 1);
    const gw_route_rule_t *r = &c->rules[0];
    assert_string_equal(r->route_name, "default/aigw-run");
    assert_int_equal(r->request_timeout_ms, 120000);
    assert_int_equal(r->n_matches, 1);
    assert_int_equal(r->matches[0].n_headers, 1);
    assert_string_equal(r->matches[0].headers[0].name, "x-ai-eg-model");
    assert_string_equal(r->matches[0].headers[0].value, ".*");
    assert_int_equal(r->matches[0].headers[0].type, GW_MATCH_REGEX);
    assert_non_null(r->matches[0].headers[0].regex);
    assert_int_equal(r->n_backends, 1);
    assert_int_equal(r->backends[0].weight, 1);
    assert_int_equal(r->backends[0].priority, 0);
    assert_null(r->backends[0].model_name_override);
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* The snapshot from the environment must equal the one from the golden YAML, field by field. */
static void assert_same_snapshot(const gw_config_t *a, const gw_config_t *b)
{
    assert_int_equal(a->listen_port, b->listen_port);
    assert_int_equal(a->max_request_body, b->max_request_body);
    assert_int_equal(a->n_costs, b->n_costs);
    for (size_t i = 0; i < a->n_costs; i++) {
        assert_string_equal(a->costs[i].metadata_key, b->costs[i].metadata_key);
        assert_int_equal(a->costs[i].type, b->costs[i].type);
    }
    assert_int_equal(a->n_models, b->n_models);
    assert_int_equal(a->n_rules, b->n_rules);
    for (size_t i = 0; i < a->n_rules; i++) {
        const gw_route_rule_t *ra = &a->rules[i], *rb = &b->rules[i];
        assert_string_equal(ra->route_name, rb->route_name);
        assert_int_equal(ra->request_timeout_ms, rb->request_timeout_ms);
        assert_int_equal(ra->n_matches, rb->n_matches);
        for (size_t j = 0; j < ra->n_matches; j++) {
            assert_int_equal(ra->matches[j].n_headers, rb->matches[j].n_headers);
            for (size_t k = 0; k < ra->matches[j].n_headers; k++) {
                assert_string_equal(ra->matches[j].headers[k].name, rb->matches[j].headers[k].name);
                assert_string_equal(ra->matches[j].headers[k].value, rb->matches[j].headers[k].value);
                assert_int_equal(ra->matches[j].headers[k].type, rb->matches[j].headers[k].type);
            }
        }
        assert_int_equal(ra->n_backends, rb->n_backends);
        for (size_t j = 0; j < ra->n_backends; j++) {
            const gw_backend_t *x = &ra->backends[j], *y = &rb->backends[j];
            assert_string_equal(x->name, y->name);
            assert_string_equal(x->service_name, y->service_name);
            assert_int_equal(x->schema, y->schema);
            assert_str_eq_or_null(x->schema_version, y->schema_version);
            assert_string_equal(x->host, y->host);
            assert_int_equal(x->port, y->port);
            assert_int_equal(x->tls, y->tls);
            assert_str_eq_or_null(x->sni, y->sni);
            assert_int_equal(x->auth.type, y->auth.type);
            assert_str_eq_or_null(x->auth.api_key, y->auth.api_key);
            assert_int_equal(x->header_mutation.n_set, y->header_mutation.n_set);
            for (size_t k = 0; k < x->header_mutation.n_set; k++) {
                assert_string_equal(x->header_mutation.set[k].name, y->header_mutation.set[k].name);
                assert_string_equal(x->header_mutation.set[k].value, y->header_mutation.set[k].value);
            }
            assert_int_equal(x->header_mutation.n_remove, y->header_mutation.n_remove);
            assert_int_equal(x->weight, y->weight);
            assert_int_equal(x->priority, y->priority);
            assert_str_eq_or_null(x->model_name_override, y->model_name_override);
        }
    }
}

/* Loads the golden YAML with the variables it references exported, and compares. */
static void compare_with_golden(const gw_config_t *c, const char *file, const envkv_t *env)
{
    const char *td = tu_testdata();
    if (td == NULL) {
        printf("skipped golden comparison: ../shared/testdata not found\n");
        return;
    }
    char path[PATH_MAX + 256];
    snprintf(path, sizeof(path), "%s/" GOLDEN_DIR "/%s", td, file);
    for (const envkv_t *e = env; e->name != NULL; e++)
        setenv(e->name, e->value, 1);
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    gw_config_t *g = gw_config_load_file(path, &errors);
    for (const envkv_t *e = env; e->name != NULL; e++)
        unsetenv(e->name);
    if (g == NULL)
        fail_msg("%s did not load:\n%s", path, gw_buf_cstr(&errors));
    assert_same_snapshot(c, g);
    gw_config_unref(g);
    gw_buf_free(&errors);
}

static const gw_backend_t *only_backend(const gw_config_t *c)
{
    assert_int_equal(c->n_rules, 1);
    assert_int_equal(c->rules[0].n_backends, 1);
    return &c->rules[0].backends[0];
}

static void assert_headers(const gw_backend_t *b, const char *org, const char *project)
{
    size_t want = (org != NULL) + (project != NULL), i = 0;
    assert_int_equal(b->header_mutation.n_set, want);
    assert_int_equal(b->header_mutation.n_remove, 0);
    if (org != NULL) {
        assert_string_equal(b->header_mutation.set[i].name, "openai-organization");
        assert_string_equal(b->header_mutation.set[i].value, org);
        i++;
    }
    if (project != NULL) {
        assert_string_equal(b->header_mutation.set[i].name, "openai-project");
        assert_string_equal(b->header_mutation.set[i].value, project);
    }
}

/* ---- the reference's golden cases ---- */

static void check_openai(const envkv_t *env, const char *golden, const char *org, const char *project)
{
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    gw_config_t *c = from_env(env, &errors);
    assert_non_null(c);
    assert_int_equal(errors.len, 0);
    assert_template(c);
    const gw_backend_t *b = only_backend(c);
    assert_string_equal(b->name, "default/openai/route/aigw-run/rule/0/ref/0");
    assert_string_equal(b->service_name, "default/openai");
    assert_int_equal(b->schema, GW_SCHEMA_OPENAI);
    assert_string_equal(b->schema_version, "v1");
    assert_string_equal(b->host, "api.openai.com");
    assert_int_equal(b->port, 443);
    assert_true(b->tls);
    assert_null(b->sni);
    assert_int_equal(b->auth.type, GW_AUTH_API_KEY);
    assert_string_equal(b->auth.api_key, "sk-golden-openai");
    assert_headers(b, org, project);
    assert_no_secret(c, "sk-golden-openai");
    compare_with_golden(c, golden, env);
    gw_config_unref(c);
    gw_buf_free(&errors);
}

static void test_openai(void **state)
{
    (void)state;
    check_openai((envkv_t[]){{"OPENAI_API_KEY", "sk-golden-openai"}, {NULL, NULL}}, "openai.yaml", NULL, NULL);
}

static void test_openai_with_org(void **state)
{
    (void)state;
    check_openai((envkv_t[]){{"OPENAI_API_KEY", "sk-golden-openai"}, {"OPENAI_ORG_ID", "org-test123"}, {NULL, NULL}},
                 "openai-with-org.yaml", "org-test123", NULL);
}

static void test_openai_with_project(void **state)
{
    (void)state;
    check_openai(
        (envkv_t[]){{"OPENAI_API_KEY", "sk-golden-openai"}, {"OPENAI_PROJECT_ID", "proj_test456"}, {NULL, NULL}},
        "openai-with-project.yaml", NULL, "proj_test456");
}

static void test_openai_with_org_and_project(void **state)
{
    (void)state;
    check_openai((envkv_t[]){{"OPENAI_API_KEY", "sk-golden-openai"},
                             {"OPENAI_ORG_ID", "org-test123"},
                             {"OPENAI_PROJECT_ID", "proj_test456"},
                             {NULL, NULL}},
                 "openai-with-org-and-project.yaml", "org-test123", "proj_test456");
}

static void check_azure(const envkv_t *env, const char *golden, const char *org, const char *project)
{
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    gw_config_t *c = from_env(env, &errors);
    assert_non_null(c);
    assert_template(c);
    const gw_backend_t *b = only_backend(c);
    assert_string_equal(b->name, "default/openai/route/aigw-run/rule/0/ref/0");
    assert_int_equal(b->schema, GW_SCHEMA_AZURE_OPENAI);
    assert_string_equal(b->schema_version, "2024-02-15-preview");
    assert_string_equal(b->host, "my-resource.openai.azure.com");
    assert_int_equal(b->port, 443);
    assert_true(b->tls);
    assert_int_equal(b->auth.type, GW_AUTH_AZURE_API_KEY);
    assert_string_equal(b->auth.api_key, "azure-golden-key");
    assert_headers(b, org, project);
    assert_no_secret(c, "azure-golden-key");
    assert_no_secret(c, "sk-also-set"); /* OPENAI_API_KEY, set but not used: Azure wins */
    compare_with_golden(c, golden, env);
    gw_config_unref(c);
    gw_buf_free(&errors);
}

static void test_azure_openai(void **state)
{
    (void)state;
    check_azure((envkv_t[]){{"AZURE_OPENAI_API_KEY", "azure-golden-key"},
                            {"AZURE_OPENAI_ENDPOINT", "https://my-resource.openai.azure.com"},
                            {"OPENAI_API_VERSION", "2024-02-15-preview"},
                            {"OPENAI_API_KEY", "sk-also-set"},
                            {NULL, NULL}},
                "azure-openai.yaml", NULL, NULL);
}

static void test_azure_openai_with_org_and_project(void **state)
{
    (void)state;
    check_azure((envkv_t[]){{"AZURE_OPENAI_API_KEY", "azure-golden-key"},
                            {"AZURE_OPENAI_ENDPOINT", "https://my-resource.openai.azure.com/"},
                            {"OPENAI_API_VERSION", "2024-02-15-preview"},
                            {"OPENAI_ORG_ID", "org-test123"},
                            {"OPENAI_PROJECT_ID", "proj_test456"},
                            {NULL, NULL}},
                "azure-openai-with-org-and-project.yaml", "org-test123", "proj_test456");
}

static void test_anthropic(void **state)
{
    (void)state;
    const envkv_t env[] = {{"ANTHROPIC_API_KEY", "sk-ant-golden"}, {"OPENAI_ORG_ID", "org-ignored"}, {NULL, NULL}};
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    gw_config_t *c = from_env(env, &errors);
    assert_non_null(c);
    assert_template(c);
    const gw_backend_t *b = only_backend(c);
    assert_string_equal(b->name, "default/anthropic/route/aigw-run/rule/0/ref/0");
    assert_string_equal(b->service_name, "default/anthropic");
    assert_int_equal(b->schema, GW_SCHEMA_ANTHROPIC);
    assert_string_equal(b->schema_version, "v1");
    assert_string_equal(b->host, "api.anthropic.com");
    assert_int_equal(b->port, 443);
    assert_true(b->tls);
    assert_int_equal(b->auth.type, GW_AUTH_ANTHROPIC_API_KEY);
    assert_string_equal(b->auth.api_key, "sk-ant-golden");
    assert_headers(b, NULL, NULL); /* OpenAI organisation headers are for OpenAI and Azure only */
    assert_no_secret(c, "sk-ant-golden");
    compare_with_golden(c, "anthropic.yaml", (envkv_t[]){{"ANTHROPIC_API_KEY", "sk-ant-golden"}, {NULL, NULL}});
    gw_config_unref(c);
    gw_buf_free(&errors);
}

/* ---- aigw's own cases ---- */

static void test_no_env_goes_to_ollama(void **state)
{
    (void)state;
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    gw_config_t *c = from_env((envkv_t[]){{"OPENAI_API_KEY", ""}, {NULL, NULL}}, &errors); /* empty = unset */
    assert_non_null(c);
    assert_int_equal(errors.len, 0);
    assert_template(c);
    const gw_backend_t *b = only_backend(c);
    assert_string_equal(b->name, "default/openai/route/aigw-run/rule/0/ref/0");
    assert_int_equal(b->schema, GW_SCHEMA_OPENAI);
    assert_string_equal(b->schema_version, "v1");
    assert_string_equal(b->host, "127.0.0.1");
    assert_int_equal(b->port, 11434);
    assert_false(b->tls);
    assert_int_equal(b->auth.type, GW_AUTH_NONE);
    assert_null(b->auth.api_key);
    assert_string_equal(c->description, "no OPENAI_API_KEY, AZURE_OPENAI_API_KEY or ANTHROPIC_API_KEY set: every model "
                                        "goes to the OpenAI-compatible server at http://127.0.0.1:11434/v1 (Ollama)");
    gw_config_unref(c);
    gw_buf_free(&errors);
}

static void test_base_url_without_key(void **state)
{
    (void)state;
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    gw_config_t *c = from_env((envkv_t[]){{"OPENAI_BASE_URL", "http://localhost:11434/v1"}, {NULL, NULL}}, &errors);
    assert_non_null(c);
    const gw_backend_t *b = only_backend(c);
    assert_int_equal(b->schema, GW_SCHEMA_OPENAI);
    assert_string_equal(b->schema_version, "v1");
    assert_string_equal(b->host, "localhost"); /* no nip.io rewrite: there is no Envoy to fool */
    assert_int_equal(b->port, 11434);
    assert_false(b->tls);
    assert_int_equal(b->auth.type, GW_AUTH_NONE);
    assert_non_null(strstr(c->description, "without OPENAI_API_KEY"));
    assert_non_null(strstr(c->description, "no authentication"));
    assert_non_null(strstr(c->description, "http://localhost:11434/v1"));
    gw_config_unref(c);

    /* With a key the same URL is authenticated (vLLM --api-key, a remote proxy). */
    c = from_env((envkv_t[]){{"OPENAI_BASE_URL", "http://localhost:11434/v1"}, {"OPENAI_API_KEY", "local-secret"}, {NULL, NULL}},
                 &errors);
    assert_non_null(c);
    assert_int_equal(only_backend(c)->auth.type, GW_AUTH_API_KEY);
    assert_no_secret(c, "local-secret");
    gw_config_unref(c);
    gw_buf_free(&errors);
}

static void test_url_paths_and_ports(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host, *version;
        uint16_t port;
        bool tls;
    } cases[] = {
        {"http://localhost:8321/v1/openai/v1", "localhost", "v1/openai/v1", 8321, false}, /* llamastack golden */
        {"https://openrouter.ai/api/v1", "openrouter.ai", "api/v1", 443, true},          /* openrouter golden */
        {"https://api.router.tetrate.ai/v1", "api.router.tetrate.ai", "v1", 443, true},   /* tars golden */
        {"https://generativelanguage.googleapis.com/v1beta/openai/", "generativelanguage.googleapis.com",
         "v1beta/openai", 443, true},
        {"https://api.deepseek.com", "api.deepseek.com", "", 443, true},
        {"http://127.0.0.1", "127.0.0.1", "", 80, false},
        {"HTTP://[::1]:8080/v1", "::1", "v1", 8080, false},
        {"https://host.example:/v1", "host.example", "v1", 443, true},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        gw_buf_t errors;
        gw_buf_init(&errors, 4096);
        gw_config_t *c = from_env((envkv_t[]){{"OPENAI_API_KEY", "k"}, {"OPENAI_BASE_URL", cases[i].url}, {NULL, NULL}},
                                  &errors);
        if (c == NULL)
            fail_msg("%s refused: %s", cases[i].url, gw_buf_cstr(&errors));
        const gw_backend_t *b = only_backend(c);
        assert_string_equal(b->host, cases[i].host);
        assert_string_equal(b->schema_version, cases[i].version);
        assert_int_equal(b->port, cases[i].port);
        assert_int_equal(b->tls, cases[i].tls);
        gw_config_unref(c);
        gw_buf_free(&errors);
    }
}

static void test_bad_urls(void **state)
{
    (void)state;
    static const struct {
        const char *var, *url, *why;
    } cases[] = {
        {"OPENAI_BASE_URL", "ftp://example.com/v1", "not an http:// or https:// URL"},
        {"OPENAI_BASE_URL", "api.openai.com/v1", "not an http:// or https:// URL"},
        {"OPENAI_BASE_URL", "http:///v1", "no host"},
        {"OPENAI_BASE_URL", "http://host:99999/v1", "port out of range"},
        {"OPENAI_BASE_URL", "http://host:0/v1", "port out of range"},
        {"OPENAI_BASE_URL", "http://host:12ab/v1", "bad character"},
        {"OPENAI_BASE_URL", "http://host/v1?key=x", "query or fragment"},
        {"OPENAI_BASE_URL", "http://ho st/v1", "bad character"},
        {"OPENAI_BASE_URL", "http://[::1/v1", "unterminated IPv6"},
        {"OPENAI_BASE_URL", "http://user:hunter2@host/v1", "user information"},
        {"ANTHROPIC_BASE_URL", "https://", "no host"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        gw_buf_t errors;
        gw_buf_init(&errors, 4096);
        const char *key_var = strcmp(cases[i].var, "ANTHROPIC_BASE_URL") == 0 ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY";
        gw_config_t *c = from_env((envkv_t[]){{key_var, "sk-secret"}, {cases[i].var, cases[i].url}, {NULL, NULL}}, &errors);
        if (c != NULL)
            fail_msg("%s=%s accepted", cases[i].var, cases[i].url);
        const char *e = gw_buf_cstr(&errors);
        assert_non_null(strstr(e, cases[i].var));
        if (strstr(e, cases[i].why) == NULL)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].url, e, cases[i].why);
        assert_null(strstr(e, "hunter2"));
        assert_null(strstr(e, "sk-secret"));
        gw_buf_free(&errors);
    }
}

static void test_control_characters_refused(void **state)
{
    (void)state;
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    gw_config_t *c = from_env((envkv_t[]){{"OPENAI_API_KEY", "sk-abc\r\nX-Injected: 1"}, {NULL, NULL}}, &errors);
    assert_null(c);
    assert_string_equal(gw_buf_cstr(&errors), "OPENAI_API_KEY contains a line break or control character\n");
    gw_buf_reset(&errors);
    c = from_env((envkv_t[]){{"OPENAI_API_KEY", "k"}, {"OPENAI_ORG_ID", "org\nx"}, {NULL, NULL}}, &errors);
    assert_null(c);
    assert_string_equal(gw_buf_cstr(&errors), "OPENAI_ORG_ID contains a line break or control character\n");
    gw_buf_free(&errors);
}

static void test_azure_requires_endpoint_and_version(void **state)
{
    (void)state;
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    gw_config_t *c = from_env(
        (envkv_t[]){{"AZURE_OPENAI_API_KEY", "az"}, {"OPENAI_API_VERSION", "2024-02-15-preview"}, {NULL, NULL}}, &errors);
    assert_null(c);
    assert_non_null(strstr(gw_buf_cstr(&errors), "AZURE_OPENAI_ENDPOINT"));
    assert_null(strstr(gw_buf_cstr(&errors), "OPENAI_API_VERSION is not"));

    /* Both missing: both reported, one per line. */
    gw_buf_reset(&errors);
    c = from_env((envkv_t[]){{"AZURE_OPENAI_API_KEY", "az"}, {NULL, NULL}}, &errors);
    assert_null(c);
    const char *e = gw_buf_cstr(&errors);
    assert_non_null(strstr(e, "AZURE_OPENAI_ENDPOINT is not"));
    assert_non_null(strstr(e, "OPENAI_API_VERSION is not"));
    assert_non_null(strchr(e, '\n'));
    assert_ptr_not_equal(strchr(e, '\n'), strrchr(e, '\n'));

    gw_buf_reset(&errors);
    c = from_env((envkv_t[]){{"AZURE_OPENAI_API_KEY", "az"}, {"AZURE_OPENAI_ENDPOINT", "my-resource"},
                             {"OPENAI_API_VERSION", "v"}, {NULL, NULL}},
                 &errors);
    assert_null(c);
    assert_non_null(strstr(gw_buf_cstr(&errors), "AZURE_OPENAI_ENDPOINT=my-resource: not an http"));
    gw_buf_free(&errors);
}

static void test_precedence(void **state)
{
    (void)state;
    /* Anthropic only when neither OpenAI nor Azure has a key; a keyless base URL does not count. */
    gw_config_t *c = from_env((envkv_t[]){{"ANTHROPIC_API_KEY", "a"}, {"OPENAI_API_KEY", "o"}, {NULL, NULL}}, NULL);
    assert_int_equal(only_backend(c)->schema, GW_SCHEMA_OPENAI);
    gw_config_unref(c);
    c = from_env((envkv_t[]){{"ANTHROPIC_API_KEY", "a"}, {"OPENAI_BASE_URL", "http://localhost:8000/v1"}, {NULL, NULL}}, NULL);
    assert_int_equal(only_backend(c)->schema, GW_SCHEMA_ANTHROPIC);
    assert_non_null(strstr(c->description, "OPENAI_BASE_URL ignored"));
    gw_config_unref(c);
    c = from_env((envkv_t[]){{"ANTHROPIC_API_KEY", "a"}, {"ANTHROPIC_BASE_URL", "https://proxy.example/anthropic/v1"},
                             {NULL, NULL}},
                 NULL);
    assert_string_equal(only_backend(c)->host, "proxy.example");
    assert_string_equal(only_backend(c)->schema_version, "anthropic/v1");
    gw_config_unref(c);

    /* NULL getenv_fn: the process environment. */
    setenv("ANTHROPIC_API_KEY", "from-process-env", 1);
    c = gw_config_from_env(NULL, NULL);
    unsetenv("ANTHROPIC_API_KEY");
    assert_non_null(c);
    assert_string_equal(only_backend(c)->auth.api_key, "from-process-env");
    gw_config_unref(c);
}

int main(void)
{
    /* The process environment must not leak into the cases that read it. */
    static const char *const vars[] = {"OPENAI_API_KEY",     "OPENAI_BASE_URL",   "AZURE_OPENAI_API_KEY",
                                       "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION", "ANTHROPIC_API_KEY",
                                       "ANTHROPIC_BASE_URL", "OPENAI_ORG_ID",     "OPENAI_PROJECT_ID"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(vars); i++)
        unsetenv(vars[i]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai),
        cmocka_unit_test(test_openai_with_org),
        cmocka_unit_test(test_openai_with_project),
        cmocka_unit_test(test_openai_with_org_and_project),
        cmocka_unit_test(test_azure_openai),
        cmocka_unit_test(test_azure_openai_with_org_and_project),
        cmocka_unit_test(test_anthropic),
        cmocka_unit_test(test_no_env_goes_to_ollama),
        cmocka_unit_test(test_base_url_without_key),
        cmocka_unit_test(test_url_paths_and_ports),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_control_characters_refused),
        cmocka_unit_test(test_azure_requires_endpoint_and_version),
        cmocka_unit_test(test_precedence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
