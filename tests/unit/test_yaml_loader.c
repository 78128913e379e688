/* Unit tests for the YAML loader: a full valid configuration (every supported kind), ${VAR}
 * substitution with error positions mapped back to the file, Secret sources (stringData,
 * base64 data, env and file annotations), header mutation merge, weights and priorities, each
 * error kind with its file:line:col message, DOM limits. The reference's example files are in
 * test_config_examples.c, its CRD verdicts in test_crdcel.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/yaml_dom.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];

static const char *write_file(const char *name, const char *text)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
    return path;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/aigw-test-yaml-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[PATH_MAX + 300];
            snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static gw_config_t *load_ok(const char *path)
{
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    gw_config_t *c = gw_config_load_file(path, &errors);
    if (c == NULL)
        fail_msg("%s refused:\n%s", path, gw_buf_cstr(&errors));
    assert_int_equal(errors.len, 0);
    gw_buf_free(&errors);
    return c;
}

/* 1-based line and column (in bytes; the test texts are ASCII) of the first occurrence of needle. */
static void pos_of(const char *text, const char *needle, int *line, int *col)
{
    const char *p = strstr(text, needle);
    if (p == NULL)
        fail_msg("needle %s not in text", needle);
    *line = 1;
    const char *bol = text;
    for (const char *q = text; q < p; q++)
        if (*q == '\n') {
            (*line)++;
            bol = q + 1;
        }
    *col = (int)(p - bol) + 1;
}

/* Asserts that errors holds the line "<file>:<line>:<col>: <rest>" with the position of needle. */
static void assert_error_at(const char *errors, const char *file, const char *text, const char *needle,
                            const char *rest)
{
    int line, col;
    pos_of(text, needle, &line, &col);
    char want[1024];
    snprintf(want, sizeof(want), "%s:%d:%d: %s\n", file, line, col, rest);
    if (strstr(errors, want) == NULL)
        fail_msg("missing error line:\n  %s-- got:\n%s", want, errors);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- a valid configuration using every supported kind ---- */

static const char valid_yaml[] =
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: GatewayClass\n"
    "metadata:\n"
    "  name: gc\n"
    "spec:\n"
    "  controllerName: gateway.envoyproxy.io/gatewayclass-controller\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: Gateway\n"
    "metadata:\n"
    "  name: gw\n"
    "spec:\n"
    "  gatewayClassName: gc\n"
    "  listeners:\n"
    "    - name: http\n"
    "      protocol: HTTP\n"
    "      port: 8080\n"
    "---\n"
    "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
    "kind: ClientTrafficPolicy\n"
    "metadata: {name: buffer}\n"
    "spec:\n"
    "  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"
    "  connection:\n"
    "    bufferLimit: 10Mi\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIGatewayRoute\n"
    "metadata:\n"
    "  name: main\n"
    "  namespace: team\n"
    "spec:\n"
    "  parentRefs: [{name: gw, kind: Gateway, group: gateway.networking.k8s.io}]\n"
    "  rules:\n"
    "    - matches:\n"
    "        - headers:\n"
    "            - {type: Exact, name: X-AI-EG-Model, value: gpt-4o-mini}\n"
    "        - headers:\n"
    "            - {name: x-ai-eg-model, value: gpt-4o}\n"
    "            - {name: X-Tenant, value: blue}\n"
    "      backendRefs:\n"
    "        - name: openai\n"
    "          weight: 3\n"
    "          modelNameOverride: gpt-4o-mini-2024-07-18\n"
    "          headerMutation:\n"
    "            set: [{name: X-A, value: route}]\n"
    "            remove: [x-old, X-New]\n"
    "        - name: azure\n"
    "          namespace: shared\n"
    "          weight: 0\n"
    "          priority: 1\n"
    "      modelsOwnedBy: acme\n"
    "      modelsCreatedAt: \"2025-05-23T02:30:00+02:00\"\n"
    "    - matches:\n"
    "        - headers:\n"
    "            - {type: RegularExpression, name: x-ai-eg-model, value: \"claude-.*\"}\n"
    "      backendRefs:\n"
    "        - name: anthropic\n"
    "      timeouts:\n"
    "        request: 1m30s\n"
    "  llmRequestCosts:\n"
    "    - {metadataKey: in, type: InputToken}\n"
    "    - {metadataKey: cost, type: CEL, cel: \"input_tokens + output_tokens * 2\"}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIGatewayRoute\n"
    "metadata: {name: extra, namespace: team}\n"
    "spec:\n"
    "  rules:\n"
    "    - matches: [{headers: [{name: x-ai-eg-model, value: deepseek-chat}]}]\n"
    "      backendRefs: [{name: deepseek}]\n"
    "      timeouts: {request: 500ms}\n"
    "    - matches: [{headers: [{name: x-ai-eg-model, value: gpt-4o-mini}]}]\n"
    "      backendRefs: [{name: bedrock, priority: 2}]\n"
    "  llmRequestCosts:\n"
    "    - {metadataKey: in, type: OutputToken}\n"
    "    - {metadataKey: out, type: OutputToken}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIServiceBackend\n"
    "metadata: {name: openai, namespace: team}\n"
    "spec:\n"
    "  schema: {name: OpenAI}\n"
    "  backendRef: {name: openai-be, kind: Backend, group: gateway.envoyproxy.io}\n"
    "  headerMutation:\n"
    "    set: [{name: X-A, value: svc}, {name: x-b, value: svc}]\n"
    "    remove: [X-Old]\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIServiceBackend\n"
    "metadata: {name: azure, namespace: shared}\n"
    "spec:\n"
    "  schema: {name: AzureOpenAI, version: 2025-01-01-preview}\n"
    "  backendRef: {name: azure-be, kind: Backend, group: gateway.envoyproxy.io}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIServiceBackend\n"
    "metadata: {name: anthropic, namespace: team}\n"
    "spec:\n"
    "  schema: {name: Anthropic}\n"
    "  backendRef: {name: anthropic-be, kind: Backend, group: gateway.envoyproxy.io}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIServiceBackend\n"
    "metadata: {name: deepseek, namespace: team}\n"
    "spec:\n"
    "  schema: {name: OpenAI, version: \"\"}\n"
    "  backendRef: {name: deepseek-be, kind: Backend, group: gateway.envoyproxy.io}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIServiceBackend\n"
    "metadata: {name: bedrock, namespace: team}\n"
    "spec:\n"
    "  schema: {name: AWSBedrock}\n"
    "  backendRef: {name: bedrock-be, kind: Backend, group: gateway.envoyproxy.io}\n"
    "---\n"
    "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
    "kind: Backend\n"
    "metadata: {name: openai-be, namespace: team}\n"
    "spec:\n"
    "  endpoints: [{fqdn: {hostname: api.openai.com}}]\n"
    "---\n"
    "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
    "kind: Backend\n"
    "metadata: {name: azure-be, namespace: shared}\n"
    "spec:\n"
    "  endpoints: [{fqdn: {hostname: x.openai.azure.com, port: 8443}}]\n"
    "---\n"
    "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
    "kind: Backend\n"
    "metadata: {name: anthropic-be, namespace: team}\n"
    "spec:\n"
    "  endpoints: [{ip: {address: 10.0.0.7}}]\n"
    "---\n"
    "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
    "kind: Backend\n"
    "metadata: {name: deepseek-be, namespace: team}\n"
    "spec:\n"
    "  endpoints: [{ip: {address: \"[::1]\", port: 8000}}]\n"
    "---\n"
    "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
    "kind: Backend\n"
    "metadata: {name: bedrock-be, namespace: team}\n"
    "spec:\n"
    "  endpoints: [{fqdn: {hostname: bedrock-runtime.us-east-1.amazonaws.com, port: 443}}]\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1alpha3\n"
    "kind: BackendTLSPolicy\n"
    "metadata: {name: openai-tls, namespace: team}\n"
    "spec:\n"
    "  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: openai-be}, {group: gateway.envoyproxy.io, "
    "kind: Backend, name: bedrock-be}]\n"
    "  validation: {wellKnownCACertificates: System, hostname: api.openai.com}\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1alpha3\n"
    "kind: BackendTLSPolicy\n"
    "metadata: {name: azure-tls, namespace: shared}\n"
    "spec:\n"
    "  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: azure-be}]\n"
    "  validation: {wellKnownCACertificates: System, hostname: other.example}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: BackendSecurityPolicy\n"
    "metadata: {name: openai-key, namespace: team}\n"
    "spec:\n"
    "  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: openai}]\n"
    "  type: APIKey\n"
    "  apiKey: {secretRef: {name: openai-secret}}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: BackendSecurityPolicy\n"
    "metadata: {name: azure-key, namespace: shared}\n"
    "spec:\n"
    "  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: azure}]\n"
    "  type: AzureAPIKey\n"
    "  azureAPIKey: {secretRef: {name: azure-secret}}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: BackendSecurityPolicy\n"
    "metadata: {name: anthropic-key, namespace: team}\n"
    "spec:\n"
    "  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: anthropic}]\n"
    "  type: AnthropicAPIKey\n"
    "  anthropicAPIKey: {secretRef: {name: anthropic-secret}}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: BackendSecurityPolicy\n"
    "metadata: {name: deepseek-key, namespace: team}\n"
    "spec:\n"
    "  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: deepseek}]\n"
    "  type: APIKey\n"
    "  apiKey: {secretRef: {name: deepseek-secret, namespace: team}}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: BackendSecurityPolicy\n"
    "metadata: {name: aws, namespace: team}\n"
    "spec:\n"
    "  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: bedrock}]\n"
    "  type: AWSCredentials\n"
    "  awsCredentials:\n"
    "    region: us-east-1\n"
    "    credentialsFile: {secretRef: {name: aws-creds}}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata: {name: openai-secret, namespace: team}\n"
    "stringData:\n"
    "  apiKey: ${AIGW_TEST_OPENAI_KEY}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata: {name: azure-secret, namespace: shared}\n"
    "data:\n"
    "  apiKey: YXp1cmUtYjY0LWtleQ\n" /* "azure-b64-key" without its "==" padding */
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata:\n"
    "  name: anthropic-secret\n"
    "  namespace: team\n"
    "  annotations:\n"
    "    substitution.aigw.run/env/apiKey: AIGW_TEST_ANTHROPIC_KEY\n"
    "type: Opaque\n"
    "stringData:\n"
    "  apiKey: replaced-at-runtime\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata:\n"
    "  name: deepseek-secret\n"
    "  namespace: team\n"
    "  annotations:\n"
    "    substitution.aigw.run/file/apiKey: ${AIGW_TEST_KEY_FILE}\n"
    "data:\n"
    "  apiKey: b3ZlcnJpZGRlbg==\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1beta1\n"
    "kind: ReferenceGrant\n"
    "metadata: {name: team-routes, namespace: shared}\n"
    "spec:\n"
    "  from: [{group: aigateway.envoyproxy.io, kind: AIGatewayRoute, namespace: team}]\n"
    "  to: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend}]\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata: {name: aws-creds, namespace: team}\n"
    "stringData:\n"
    "  credentials: |\n"
    "    [default]\n"
    "    aws_access_key_id = AKIDEXAMPLE\n"
    "---\n";

static const gw_backend_t *backend(const gw_config_t *c, size_t rule, size_t ref)
{
    assert_true(rule < c->n_rules);
    assert_true(ref < c->rules[rule].n_backends);
    return &c->rules[rule].backends[ref];
}

static void test_valid_config(void **state)
{
    (void)state;
    char keyfile[PATH_MAX + 64];
    snprintf(keyfile, sizeof(keyfile), "%s/deepseek.key", tmpdir);
    write_file("deepseek.key", "sk-from-file\r\n");
    setenv("AIGW_TEST_OPENAI_KEY", "sk-env-openai", 1);
    setenv("AIGW_TEST_ANTHROPIC_KEY", "sk-ant-env", 1);
    setenv("AIGW_TEST_KEY_FILE", keyfile, 1);
    int64_t before = (int64_t)time(NULL);
    gw_config_t *c = load_ok(write_file("valid.yaml", valid_yaml));
    int64_t after = (int64_t)time(NULL);
    unsetenv("AIGW_TEST_OPENAI_KEY");
    unsetenv("AIGW_TEST_ANTHROPIC_KEY");
    unsetenv("AIGW_TEST_KEY_FILE");

    assert_int_equal(c->listen_port, 8080);
    assert_int_equal(c->max_request_body, 10u << 20);
    assert_int_equal(atomic_load(&c->refcount), 1);
    assert_non_null(strstr(c->description, "4 rules, 5 backend references, 3 models"));
    assert_null(strstr(c->description, "sk-"));

    /* Rules: routes in file order, rules in route order. */
    assert_int_equal(c->n_rules, 4);
    const gw_route_rule_t *r0 = &c->rules[0];
    assert_string_equal(r0->route_name, "team/main");
    assert_int_equal(r0->request_timeout_ms, 60000);
    assert_int_equal(r0->n_matches, 2);
    assert_int_equal(r0->matches[0].n_headers, 1);
    assert_string_equal(r0->matches[0].headers[0].name, "x-ai-eg-model"); /* names lower-cased */
    assert_string_equal(r0->matches[0].headers[0].value, "gpt-4o-mini");
    assert_int_equal(r0->matches[0].headers[0].type, GW_MATCH_EXACT);
    assert_int_equal(r0->matches[1].n_headers, 2);
    assert_string_equal(r0->matches[1].headers[1].name, "x-tenant");
    assert_string_equal(c->rules[1].route_name, "team/main");
    assert_int_equal(c->rules[1].request_timeout_ms, 90000);
    assert_int_equal(c->rules[1].matches[0].headers[0].type, GW_MATCH_REGEX);
    assert_non_null(c->rules[1].matches[0].headers[0].regex);
    assert_string_equal(c->rules[2].route_name, "team/extra");
    assert_int_equal(c->rules[2].request_timeout_ms, 500);

    /* OpenAI behind a TLS policy: port 443 by default, SNI equal to the host is not repeated. */
    const gw_backend_t *b = backend(c, 0, 0);
    assert_string_equal(b->name, "team/openai/route/main/rule/0/ref/0");
    assert_string_equal(b->service_name, "team/openai");
    assert_int_equal(b->schema, GW_SCHEMA_OPENAI);
    assert_string_equal(b->schema_version, "v1");
    assert_string_equal(b->host, "api.openai.com");
    assert_int_equal(b->port, 443);
    assert_true(b->tls);
    assert_null(b->sni);
    assert_int_equal(b->auth.type, GW_AUTH_API_KEY);
    assert_string_equal(b->auth.api_key, "sk-env-openai");
    assert_string_equal(b->model_name_override, "gpt-4o-mini-2024-07-18");
    assert_int_equal(b->weight, 3);
    assert_int_equal(b->priority, 0);
    /* Merge: route-level X-A wins over backend-level, x-b kept; removes unioned, lower-cased, once. */
    assert_int_equal(b->header_mutation.n_set, 2);
    assert_string_equal(b->header_mutation.set[0].name, "x-a");
    assert_string_equal(b->header_mutation.set[0].value, "route");
    assert_string_equal(b->header_mutation.set[1].name, "x-b");
    assert_string_equal(b->header_mutation.set[1].value, "svc");
    assert_int_equal(b->header_mutation.n_remove, 2);
    assert_string_equal(b->header_mutation.remove[0], "x-old");
    assert_string_equal(b->header_mutation.remove[1], "x-new");

    /* Cross-namespace reference, explicit port, SNI different from the host, base64 data. */
    b = backend(c, 0, 1);
    assert_string_equal(b->name, "shared/azure/route/main/rule/0/ref/1");
    assert_int_equal(b->schema, GW_SCHEMA_AZURE_OPENAI);
    assert_string_equal(b->schema_version, "2025-01-01-preview");
    assert_string_equal(b->host, "x.openai.azure.com");
    assert_int_equal(b->port, 8443);
    assert_true(b->tls);
    assert_string_equal(b->sni, "other.example");
    assert_int_equal(b->auth.type, GW_AUTH_AZURE_API_KEY);
    assert_string_equal(b->auth.api_key, "azure-b64-key");
    assert_int_equal(b->weight, 0);
    assert_int_equal(b->priority, 1);
    assert_int_equal(b->header_mutation.n_set, 0);
    assert_null(b->model_name_override);

    /* Plain IP without a port and without TLS: port 80; env annotation wins over stringData. */
    b = backend(c, 1, 0);
    assert_string_equal(b->name, "team/anthropic/route/main/rule/1/ref/0");
    assert_int_equal(b->schema, GW_SCHEMA_ANTHROPIC);
    assert_string_equal(b->schema_version, "v1");
    assert_string_equal(b->host, "10.0.0.7");
    assert_int_equal(b->port, 80);
    assert_false(b->tls);
    assert_int_equal(b->auth.type, GW_AUTH_ANTHROPIC_API_KEY);
    assert_string_equal(b->auth.api_key, "sk-ant-env");

    /* An explicit empty version stays empty; IPv6 brackets dropped; file annotation, line end trimmed. */
    b = backend(c, 2, 0);
    assert_string_equal(b->schema_version, "");
    assert_string_equal(b->host, "::1");
    assert_int_equal(b->port, 8000);
    assert_string_equal(b->auth.api_key, "sk-from-file");

    /* AWS: region and credentials file parsed, no API key. */
    b = backend(c, 3, 0);
    assert_int_equal(b->schema, GW_SCHEMA_AWS_BEDROCK);
    assert_null(b->schema_version);
    assert_int_equal(b->priority, 2);
    assert_int_equal(b->auth.type, GW_AUTH_AWS_CREDENTIALS);
    assert_null(b->auth.api_key);
    assert_string_equal(b->auth.region, "us-east-1");
    assert_string_equal(b->auth.aws_profile, "default");
    assert_string_equal(b->auth.credentials, "[default]\naws_access_key_id = AKIDEXAMPLE\n");
    assert_true(b->tls);
    assert_string_equal(b->sni, "api.openai.com"); /* the policy's hostname, as written */

    /* Models: every Exact x-ai-eg-model, once, first rule's metadata. */
    assert_int_equal(c->n_models, 3);
    assert_string_equal(c->models[0].name, "gpt-4o-mini");
    assert_string_equal(c->models[0].owned_by, "acme");
    assert_int_equal(c->models[0].created, 1747967400 - 7200);
    assert_string_equal(c->models[1].name, "gpt-4o");
    assert_string_equal(c->models[1].owned_by, "acme");
    assert_string_equal(c->models[2].name, "deepseek-chat");
    assert_string_equal(c->models[2].owned_by, "Envoy AI Gateway");
    assert_true(c->models[2].created >= before && c->models[2].created <= after);

    /* Costs: de-duplicated by metadataKey across routes, the first definition wins. */
    assert_int_equal(c->n_costs, 3);
    assert_string_equal(c->costs[0].metadata_key, "in");
    assert_int_equal(c->costs[0].type, GW_COST_INPUT);
    assert_string_equal(c->costs[1].metadata_key, "cost");
    assert_int_equal(c->costs[1].type, GW_COST_CEL);
    assert_string_equal(c->costs[1].cel, "input_tokens + output_tokens * 2");
    assert_string_equal(c->costs[2].metadata_key, "out");
    assert_int_equal(c->costs[2].type, GW_COST_OUTPUT);
    gw_config_unref(c);
}

/* ---- ${VAR} substitution ---- */

static const char subst_yaml[] =
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata: {name: s, annotations: {note: \"${AIGW_TEST_MULTI}\"}}\n"
    "stringData: {apiKey: \"${AIGW_TEST_UNSET_VAR}\", price: \"$5 and ${1} and $HOME and ${not closed\"}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIGatewayRoute\n"
    "metadata: {name: r}\n"
    "spec:\n"
    "  rules:\n"
    "    - backendRefs: [{name: \"${AIGW_TEST_LONG}\", weight: heavy}]\n"
    "      timeouts: {request: \"${AIGW_TEST_DURATION}\"}\n";

static void test_substitution(void **state)
{
    (void)state;
    setenv("AIGW_TEST_MULTI", "line one\nline two\nline three", 1);
    setenv("AIGW_TEST_LONG", "a-much-longer-backend-name-than-the-variable", 1);
    setenv("AIGW_TEST_DURATION", "forever", 1);
    unsetenv("AIGW_TEST_UNSET_VAR");
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    const char *path = write_file("subst.yaml", subst_yaml);
    gw_config_t *c = gw_config_load_file(path, &errors);
    unsetenv("AIGW_TEST_MULTI");
    unsetenv("AIGW_TEST_LONG");
    unsetenv("AIGW_TEST_DURATION");
    assert_null(c);
    const char *e = gw_buf_cstr(&errors);
    /* Positions are those of the file, although the values shifted columns and added lines. */
    assert_error_at(e, path, subst_yaml, "heavy",
                    "AIGatewayRoute default/r: spec.rules[0].backendRefs[0].weight must be an integer from 0 to 2147483647");
    assert_error_at(e, path, subst_yaml, "\"${AIGW_TEST_DURATION}\"",
                    "AIGatewayRoute default/r: spec.rules[0].timeouts.request forever is not a duration such as 60s, "
                    "1m30s or 500ms");
    assert_error_at(e, path, subst_yaml, "{name: \"${AIGW_TEST_LONG}\"",
                    "AIGatewayRoute default/r: spec.rules[0].backendRefs[0]: AIServiceBackend "
                    "default/a-much-longer-backend-name-than-the-variable not found");
    assert_int_equal(count_lines(e), 3);
    gw_buf_free(&errors);

    /* What is not ${NAME} stays as written; an unset variable is empty. */
    static const char ok_yaml[] = "apiVersion: v1\n"
                                  "kind: Secret\n"
                                  "metadata: {name: s}\n"
                                  "stringData: {apiKey: \"x${AIGW_TEST_UNSET_VAR}y\", price: \"$5 ${1} $HOME ${a\"}\n"
                                  "---\n"
                                  "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
                                  "kind: AIServiceBackend\n"
                                  "metadata: {name: svc}\n"
                                  "spec: {schema: {name: OpenAI, version: \"${AIGW_TEST_VER}\"}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"
                                  "---\n"
                                  "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
                                  "kind: Backend\n"
                                  "metadata: {name: be}\n"
                                  "spec: {endpoints: [{fqdn: {hostname: \"h$x${AIGW_TEST_HOST}\"}}]}\n"
                                  "---\n"
                                  "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
                                  "kind: BackendSecurityPolicy\n"
                                  "metadata: {name: bsp}\n"
                                  "spec: {targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: svc}], type: APIKey, apiKey: {secretRef: {name: s}}}\n"
                                  "---\n"
                                  "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
                                  "kind: AIGatewayRoute\n"
                                  "metadata: {name: r}\n"
                                  "spec: {rules: [{backendRefs: [{name: svc}]}]}\n";
    setenv("AIGW_TEST_VER", "v9", 1);
    setenv("AIGW_TEST_HOST", ".example", 1);
    c = load_ok(write_file("subst-ok.yaml", ok_yaml));
    unsetenv("AIGW_TEST_VER");
    unsetenv("AIGW_TEST_HOST");
    assert_string_equal(backend(c, 0, 0)->auth.api_key, "xy");
    assert_string_equal(backend(c, 0, 0)->schema_version, "v9");
    assert_string_equal(backend(c, 0, 0)->host, "h$x.example");
    gw_config_unref(c);
}

/* ---- every error kind, all reported in one pass ---- */

static const char errors_yaml[] =
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIGatewayRoute\n"
    "metadata:\n"
    "  name: r\n"
    "spec:\n"
    "  rules:\n"
    "    - matches:\n"
    "        - headers:\n"
    "            - type: RegularExpression\n"
    "              name: x-ai-eg-model\n"
    "              value: \"gpt-(4o\"\n"
    "            - type: Prefix\n"
    "              name: x-other\n"
    "              value: v\n"
    "      backendRefs:\n"
    "        - name: missing-svc\n"
    "        - name: good\n"
    "          weight: heavy\n"
    "      timeouts:\n"
    "        request: 5 minutes\n"
    "      modelsCreatedAt: yesterday\n"
    "  llmRequestCosts:\n"
    "    - {metadataKey: c, type: Tokens}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIGatewayRoute\n"
    "metadata: {name: empty, namespace: ns1}\n"
    "spec: {rules: []}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIServiceBackend\n"
    "metadata: {name: good}\n"
    "spec:\n"
    "  schema: {name: OpenAI}\n"
    "  backendRef: {name: good-be, kind: Backend, group: gateway.envoyproxy.io}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIServiceBackend\n"
    "metadata: {name: no-schema}\n"
    "spec:\n"
    "  backendRef: {name: good-be, kind: Backend, group: gateway.envoyproxy.io}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIServiceBackend\n"
    "metadata: {name: bad-schema}\n"
    "spec:\n"
    "  schema: {name: OpenAl}\n"
    "  backendRef: {name: missing-be, kind: Backend, group: gateway.envoyproxy.io}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: AIServiceBackend\n"
    "metadata: {name: k8s-service}\n"
    "spec:\n"
    "  schema: {name: OpenAI}\n"
    "  backendRef: {name: svc, kind: Service, port: 80}\n"
    "---\n"
    "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
    "kind: Backend\n"
    "metadata: {name: good-be}\n"
    "spec: {endpoints: [{fqdn: {hostname: api.example.com, port: 443}}]}\n"
    "---\n"
    "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
    "kind: Backend\n"
    "metadata: {name: bad-port}\n"
    "spec: {endpoints: [{fqdn: {hostname: api.example.com, port: 70000}}]}\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1alpha3\n"
    "kind: BackendTLSPolicy\n"
    "metadata: {name: tls-missing}\n"
    "spec:\n"
    "  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: nope-be}]\n"
    "  validation: {hostname: x.example, wellKnownCACertificates: System}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: BackendSecurityPolicy\n"
    "metadata: {name: no-secret}\n"
    "spec:\n"
    "  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: good}]\n"
    "  type: APIKey\n"
    "  apiKey: {secretRef: {name: absent}}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: BackendSecurityPolicy\n"
    "metadata: {name: no-key}\n"
    "spec:\n"
    "  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: bad-schema}]\n"
    "  type: APIKey\n"
    "  apiKey: {secretRef: {name: token-secret}}\n"
    "---\n"
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
    "kind: BackendSecurityPolicy\n"
    "metadata: {name: weird}\n"
    "spec:\n"
    "  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: good}]\n"
    "  type: Magic\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata: {name: token-secret}\n"
    "stringData: {token: sk-should-never-appear}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata: {name: bad-b64}\n"
    "data: {apiKey: \"not*base64\"}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata:\n"
    "  name: env-missing\n"
    "  annotations: {substitution.aigw.run/env/apiKey: AIGW_TEST_SURELY_UNSET}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata:\n"
    "  name: file-missing\n"
    "  annotations: {substitution.aigw.run/file/apiKey: /nonexistent/aigw/key}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: Secret\n"
    "metadata: {name: token-secret}\n"
    "stringData: {token: again}\n"
    "---\n"
    "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
    "kind: ClientTrafficPolicy\n"
    "metadata: {name: ctp}\n"
    "spec: {connection: {bufferLimit: 50 MB}}\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: Gateway\n"
    "metadata: {name: g1}\n"
    "spec:\n"
    "  listeners:\n"
    "    - {name: https, protocol: HTTPS, port: 443}\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: Gateway\n"
    "metadata: {name: g2}\n"
    "spec: {listeners: [{name: http, protocol: HTTP, port: 80}]}\n"
    "---\n"
    "- just a list\n"
    "---\n"
    "apiVersion: v1\n"
    "metadata: {name: nokind}\n";

static void test_error_kinds(void **state)
{
    (void)state;
    unsetenv("AIGW_TEST_SURELY_UNSET");
    const char *path = write_file("errors.yaml", errors_yaml);
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    assert_null(gw_config_load_file(path, &errors));
    const char *e = gw_buf_cstr(&errors);
    const char *y = errors_yaml;
    if (getenv("AIGW_TEST_VERBOSE") != NULL)
        printf("%s", e);
    /* Route problems. */
    assert_error_at(e, path, y, "\"gpt-(4o\"",
                    "AIGatewayRoute default/r: spec.rules[0].matches[0].headers[0]: bad regular expression gpt-(4o: "
                    "missing closing parenthesis at offset 7");
    assert_error_at(e, path, y, "Prefix",
                    "AIGatewayRoute default/r: spec.rules[0].matches[0].headers[1].type: Unsupported value: \"Prefix\": "
                    "supported values: \"Exact\", \"RegularExpression\"");
    assert_error_at(e, path, y, "name: missing-svc",
                    "AIGatewayRoute default/r: spec.rules[0].backendRefs[0]: AIServiceBackend default/missing-svc not "
                    "found");
    assert_error_at(e, path, y, "heavy",
                    "AIGatewayRoute default/r: spec.rules[0].backendRefs[1].weight must be an integer from 0 to 2147483647");
    assert_error_at(e, path, y, "5 minutes",
                    "AIGatewayRoute default/r: spec.rules[0].timeouts.request 5 minutes is not a duration such as 60s, "
                    "1m30s or 500ms");
    assert_error_at(e, path, y, "yesterday",
                    "AIGatewayRoute default/r: spec.rules[0].modelsCreatedAt yesterday is not an RFC 3339 date-time "
                    "such as 2025-05-23T00:00:00Z");
    assert_error_at(e, path, y, "Tokens",
                    "AIGatewayRoute default/r: spec.llmRequestCosts[0].type: Unsupported value: \"Tokens\": supported "
                    "values: \"OutputToken\", \"InputToken\", \"CachedInputToken\", \"TotalToken\", \"CEL\"");
    assert_error_at(e, path, y, "[]}", "AIGatewayRoute ns1/empty: spec.rules must have at least one rule");
    /* Backends. */
    assert_error_at(e, path, y, "backendRef: {name: good-be, kind: Backend, group: gateway.envoyproxy.io}\n---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIServiceBackend\nmetadata: {name: bad-schema}",
                    "AIServiceBackend default/no-schema: spec.schema is required");
    assert_error_at(e, path, y, "OpenAl",
                    "AIServiceBackend default/bad-schema: spec.schema.name: Unsupported value: \"OpenAl\": supported "
                    "values: \"OpenAI\", \"Cohere\", \"AWSBedrock\", \"AzureOpenAI\", \"GCPVertexAI\", "
                    "\"GCPAnthropic\", \"Anthropic\", \"AWSAnthropic\"");
    assert_error_at(e, path, y, "{name: missing-be, kind: Backend, group: gateway.envoyproxy.io}",
                    "AIServiceBackend default/bad-schema: Backend default/missing-be not found");
    assert_error_at(e, path, y, "{name: svc, kind: Service",
                    "AIServiceBackend default/k8s-service: spec.backendRef: BackendRef must be a Backend resource of Envoy "
                    "Gateway (group gateway.envoyproxy.io, kind Backend; got Service)");
    assert_error_at(e, path, y, "70000",
                    "Backend default/bad-port: spec.endpoints[0].fqdn.port must be an integer from 1 to 65535");
    assert_error_at(e, path, y, "{group: gateway.envoyproxy.io, kind: Backend, name: nope-be}",
                    "BackendTLSPolicy default/tls-missing: Backend default/nope-be not found");
    /* Policies and Secrets. */
    assert_error_at(e, path, y, "{name: absent}", "BackendSecurityPolicy default/no-secret: Secret default/absent not found");
    assert_error_at(e, path, y, "{name: token-secret}}",
                    "BackendSecurityPolicy default/no-key: Secret default/token-secret has no key apiKey");
    assert_error_at(e, path, y, "Magic",
                    "BackendSecurityPolicy default/weird: spec.type: Unsupported value: \"Magic\": supported values: "
                    "\"APIKey\", \"AWSCredentials\", \"AzureAPIKey\", \"AzureCredentials\", \"GCPCredentials\", "
                    "\"AnthropicAPIKey\"");
    assert_error_at(e, path, y, "\"not*base64\"",
                    "Secret default/bad-b64: data.apiKey is not valid base64 (or decodes to a NUL byte)");
    assert_error_at(e, path, y, "AIGW_TEST_SURELY_UNSET",
                    "Secret default/env-missing: annotation substitution.aigw.run/env/apiKey: environment variable "
                    "AIGW_TEST_SURELY_UNSET is not set");
    assert_error_at(e, path, y, "/nonexistent/aigw/key",
                    "Secret default/file-missing: annotation substitution.aigw.run/file/apiKey: cannot read "
                    "/nonexistent/aigw/key: No such file or directory");
    int first_line, col;
    pos_of(y, "metadata: {name: token-secret}", &first_line, &col);
    char dup[128];
    snprintf(dup, sizeof(dup), "Secret default/token-secret: defined twice (first at line %d)", first_line - 2);
    assert_error_at(e, path, y, "apiVersion: v1\nkind: Secret\nmetadata: {name: token-secret}\nstringData: {token: again}", dup);
    assert_error_at(e, path, y, "50 MB",
                    "ClientTrafficPolicy default/ctp: spec.connection.bufferLimit 50 MB is not a byte quantity such as 50Mi");
    assert_error_at(e, path, y, "{name: https, protocol: HTTPS",
                    "Gateway default/g1: spec.listeners[0]: tls must be specified for protocols ['HTTPS', 'TLS']");
    assert_error_at(e, path, y, "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g2}",
                    "Gateway default/g2: only one Gateway is supported (already have Gateway default/g1)");
    assert_error_at(e, path, y, "- just a list", "a resource must be a mapping with apiVersion, kind and metadata");
    assert_error_at(e, path, y, "apiVersion: v1\nmetadata: {name: nokind}", "resource has no kind (not a Kubernetes resource)");
    /* Nothing else, and never a secret. */
    assert_int_equal(count_lines(e), 26);
    assert_null(strstr(e, "sk-should-never-appear"));
    gw_buf_free(&errors);
}

static void test_syntax_and_file_errors(void **state)
{
    (void)state;
    static const char bad[] = "kind: Secret\n"
                              "metadata: {name: x\n"
                              "stringData: {a: b}\n";
    const char *path = write_file("syntax.yaml", bad);
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    assert_null(gw_config_load_file(path, &errors));
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s:3:11: did not find expected ',' or '}' while parsing a flow mapping\n", path);
    assert_string_equal(gw_buf_cstr(&errors), want);

    gw_buf_reset(&errors);
    assert_null(gw_config_load_file("/nonexistent/aigw.yaml", &errors));
    assert_string_equal(gw_buf_cstr(&errors), "/nonexistent/aigw.yaml: cannot open: No such file or directory\n");

    /* A Gateway without listeners is refused, as the reference does. */
    gw_buf_reset(&errors);
    static const char nol[] = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: aigw-run}\n"
                              "spec: {listeners: []}\n";
    path = write_file("nolisteners.yaml", nol);
    assert_null(gw_config_load_file(path, &errors));
    snprintf(want, sizeof(want), "%s:4:19: Gateway default/aigw-run: no listeners configured\n", path);
    assert_string_equal(gw_buf_cstr(&errors), want);

    /* Empty documents and files are fine: a configuration with nothing to route. */
    gw_config_t *c = load_ok(write_file("empty.yaml", "---\n# nothing\n---\n"));
    assert_int_equal(c->n_rules, 0);
    assert_int_equal(c->listen_port, 0);
    gw_config_unref(c);
    gw_buf_free(&errors);
}

static void test_limits(void **state)
{
    (void)state;
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    /* Depth. */
    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    assert_null(gw_config_load_buffer("deep.yaml", deep, n, &errors));
    assert_non_null(strstr(gw_buf_cstr(&errors), "deep.yaml:1:66: YAML nesting is too deep"));
    /* An alias bomb is stopped by the node budget, which counts every use of an alias. */
    gw_buf_reset(&errors);
    static const char bomb[] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                               "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    assert_null(gw_config_load_buffer("bomb.yaml", bomb, sizeof(bomb) - 1, &errors));
    assert_non_null(strstr(gw_buf_cstr(&errors), "YAML has too many nodes"));
    /* DOM helpers directly. */
    gw_yaml_error_t ye;
    gw_yaml_stream_t *s = gw_yaml_parse("a: ~\nb: ''\nc: [1]\n", 18, NULL, &ye);
    assert_non_null(s);
    assert_int_equal(gw_yaml_doc_count(s), 1);
    const gw_yaml_node_t *root = gw_yaml_doc(s, 0);
    assert_true(gw_yaml_is_null(gw_yaml_get(root, "a")));
    assert_false(gw_yaml_is_null(gw_yaml_get(root, "b"))); /* quoted empty is a string */
    assert_null(gw_yaml_str(gw_yaml_get(root, "c")));
    assert_int_equal(gw_yaml_get(root, "c")->line, 3);
    assert_int_equal(gw_yaml_get(root, "c")->col, 4);
    assert_null(gw_yaml_get(root, "missing"));
    gw_yaml_stream_free(s);
    gw_yaml_limits_t tiny = {.max_input = 4, .max_nodes = 10, .max_depth = 4};
    assert_null(gw_yaml_parse("a: bc\n", 6, &tiny, &ye));
    assert_non_null(strstr(ye.msg, "larger than 4 bytes"));
    gw_buf_free(&errors);
}

static void test_secret_sources(void **state)
{
    (void)state;
    /* Precedence: data < stringData < annotations; base64 with and without padding and line breaks. */
    static const char yaml[] =
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata: {name: s}\n"
        "data: {apiKey: c2stZnJvbS1kYXRh, other: \"c2st\\nYmFzZTY0\"}\n" /* "sk-from-data", "sk-base64" */
        "stringData: {apiKey: sk-from-string-data}\n"
        "---\n"
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
        "kind: AIServiceBackend\n"
        "metadata: {name: a}\n"
        "spec: {schema: {name: OpenAI}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"
        "---\n"
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
        "kind: AIServiceBackend\n"
        "metadata: {name: b}\n"
        "spec: {schema: {name: Cohere, version: v2}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"
        "---\n"
        "apiVersion: gateway.envoyproxy.io/v1alpha1\n"
        "kind: Backend\n"
        "metadata: {name: be}\n"
        "spec: {endpoints: [{fqdn: {hostname: localhost, port: 9}}]}\n"
        "---\n"
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
        "kind: BackendSecurityPolicy\n"
        "metadata: {name: pa}\n"
        "spec: {targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: a}], type: APIKey, apiKey: {secretRef: {name: s}}}\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata: {name: s2}\n"
        "data: {apiKey: \"c2stYmFzZTY0\"}\n"
        "---\n"
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
        "kind: BackendSecurityPolicy\n"
        "metadata: {name: pb}\n"
        "spec: {targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: b}], type: APIKey, apiKey: {secretRef: {name: s2}}}\n"
        "---\n"
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\n"
        "kind: AIGatewayRoute\n"
        "metadata: {name: r}\n"
        "spec:\n"
        "  rules:\n"
        "    - backendRefs: [{name: a}, {name: b, weight: 7}]\n";
    gw_config_t *c = load_ok(write_file("secrets.yaml", yaml));
    assert_string_equal(backend(c, 0, 0)->auth.api_key, "sk-from-string-data");
    assert_string_equal(backend(c, 0, 1)->auth.api_key, "sk-base64");
    assert_int_equal(backend(c, 0, 1)->schema, GW_SCHEMA_COHERE);
    assert_string_equal(backend(c, 0, 1)->schema_version, "v2");
    assert_int_equal(backend(c, 0, 1)->weight, 7);
    assert_int_equal(backend(c, 0, 0)->weight, 1); /* default */
    assert_int_equal(backend(c, 0, 1)->port, 9);
    assert_false(backend(c, 0, 1)->tls);
    assert_int_equal(c->rules[0].n_matches, 0); /* no matches: every request */
    assert_int_equal(c->n_models, 0);
    gw_config_unref(c);

    /* A key emptied by an unset ${VAR} is an error that names the Secret, not a silent "". */
    static const char empty[] = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {apiKey: \"${AIGW_TEST_NOPE}\"}\n"
                                "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIServiceBackend\n"
                                "metadata: {name: a}\nspec: {schema: {name: OpenAI}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"
                                "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: be}\n"
                                "spec: {endpoints: [{fqdn: {hostname: localhost}}]}\n"
                                "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: BackendSecurityPolicy\n"
                                "metadata: {name: pa}\n"
                                "spec: {targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: a}], type: APIKey, apiKey: {secretRef: {name: s}}}\n";
    unsetenv("AIGW_TEST_NOPE");
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    const char *path = write_file("empty-key.yaml", empty);
    assert_null(gw_config_load_file(path, &errors));
    assert_error_at(gw_buf_cstr(&errors), path, empty, "{name: s}}}",
                    "BackendSecurityPolicy default/pa: Secret default/s key apiKey is empty");
    gw_buf_free(&errors);
}

static void test_buffer_api_and_two_policies(void **state)
{
    (void)state;
    static const char yaml[] =
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIServiceBackend\nmetadata: {name: a}\n"
        "spec: {schema: {name: OpenAI}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: be}\n"
        "spec: {endpoints: [{fqdn: {hostname: localhost}}]}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {apiKey: k}\n"
        "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: BackendSecurityPolicy\nmetadata: {name: p1}\n"
        "spec: {targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: a}], type: APIKey, apiKey: {secretRef: {name: s}}}\n"
        "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: BackendSecurityPolicy\nmetadata: {name: p2}\n"
        "spec: {targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: a}], type: AnthropicAPIKey, anthropicAPIKey: {secretRef: {name: s}}}\n";
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    assert_null(gw_config_load_buffer("mem", yaml, sizeof(yaml) - 1, &errors));
    assert_error_at(gw_buf_cstr(&errors), "mem", yaml, "{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: a}], type: AnthropicAPIKey",
                    "BackendSecurityPolicy default/p2: AIServiceBackend default/a already has BackendSecurityPolicy "
                    "default/p1 (only one may attach)");
    assert_int_equal(count_lines(gw_buf_cstr(&errors)), 1);
    gw_buf_free(&errors);
    /* NULL errors is allowed. */
    assert_null(gw_config_load_buffer(NULL, yaml, sizeof(yaml) - 1, NULL));
}

/* A route to a Backend that failed its own checks reports that Backend's error and nothing
 * worse (found by the fuzzer: the route used to copy the missing host). */
static void test_broken_backend_referenced(void **state)
{
    (void)state;
    static const char yaml[] = "kind: Backend\nmetadata: {name: be}\nspec: {endpoints: [{fqdn: {port: 9}}]}\n"
                               "---\nkind: AIServiceBackend\nmetadata: {name: svc}\n"
                               "spec: {schema: {name: OpenAI}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"
                               "---\nkind: AIGatewayRoute\nmetadata: {name: r}\nspec: {rules: [{backendRefs: [{name: svc}]}]}\n";
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    assert_null(gw_config_load_buffer("mem", yaml, sizeof(yaml) - 1, &errors));
    assert_error_at(gw_buf_cstr(&errors), "mem", yaml, "{port: 9}",
                    "Backend default/be: spec.endpoints[0].fqdn.hostname is required");
    assert_int_equal(count_lines(gw_buf_cstr(&errors)), 1);
    gw_buf_free(&errors);
}

/* Whatever ends up in an upstream header is checked here, at the configuration boundary. */
static void test_header_injection_refused(void **state)
{
    (void)state;
    static const char yaml[] =
        "kind: AIServiceBackend\nmetadata: {name: a}\nspec:\n"
        "  schema: {name: OpenAI}\n"
        "  backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}\n"
        "  headerMutation:\n"
        "    set: [{name: \"X A\", value: v}, {name: x-ok, value: \"evil\\r\\nInjected: 1\"}]\n"
        "    remove: [\"bad:name\"]\n"
        "---\nkind: Backend\nmetadata: {name: be}\nspec: {endpoints: [{fqdn: {hostname: localhost}}]}\n"
        "---\nkind: Secret\nmetadata: {name: s}\nstringData: {apiKey: \"sk-line1\\nsk-line2\"}\n"
        "---\nkind: BackendSecurityPolicy\nmetadata: {name: p}\n"
        "spec: {targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: a}], type: APIKey, apiKey: {secretRef: {name: s}}}\n";
    gw_buf_t errors;
    gw_buf_init(&errors, 4096);
    assert_null(gw_config_load_buffer("mem", yaml, sizeof(yaml) - 1, &errors));
    const char *e = gw_buf_cstr(&errors);
    assert_error_at(e, "mem", yaml, "\"X A\"",
                    "AIServiceBackend default/a: spec.headerMutation.set[0].name X A is not a valid header name");
    assert_error_at(e, "mem", yaml, "\"evil",
                    "AIServiceBackend default/a: spec.headerMutation.set[1].value contains a line break or control "
                    "character");
    assert_error_at(e, "mem", yaml, "\"bad:name\"",
                    "AIServiceBackend default/a: spec.headerMutation.remove[0] must be a header name");
    assert_error_at(e, "mem", yaml, "{name: s}}}",
                    "BackendSecurityPolicy default/p: Secret default/s key apiKey contains a line break or control "
                    "character");
    assert_int_equal(count_lines(e), 4);
    assert_null(strstr(e, "sk-line"));
    assert_null(strstr(e, "Injected"));
    gw_buf_free(&errors);

    /* A block scalar's final line break is not part of the key. */
    static const char block[] =
        "kind: AIServiceBackend\nmetadata: {name: a}\nspec: {schema: {name: OpenAI}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"
        "---\nkind: Backend\nmetadata: {name: be}\nspec: {endpoints: [{fqdn: {hostname: localhost}}]}\n"
        "---\nkind: Secret\nmetadata: {name: s}\nstringData:\n  apiKey: |\n    sk-block\n"
        "---\nkind: BackendSecurityPolicy\nmetadata: {name: p}\n"
        "spec: {targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: a}], type: APIKey, apiKey: {secretRef: {name: s}}}\n"
        "---\nkind: AIGatewayRoute\nmetadata: {name: r}\nspec: {rules: [{backendRefs: [{name: a}]}]}\n";
    gw_config_t *c = gw_config_load_buffer("block", block, sizeof(block) - 1, NULL);
    assert_non_null(c);
    assert_string_equal(backend(c, 0, 0)->auth.api_key, "sk-block");
    gw_config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_config),
        cmocka_unit_test(test_substitution),
        cmocka_unit_test(test_error_kinds),
        cmocka_unit_test(test_syntax_and_file_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_secret_sources),
        cmocka_unit_test(test_buffer_api_and_two_policies),
        cmocka_unit_test(test_broken_backend_referenced),
        cmocka_unit_test(test_header_injection_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
