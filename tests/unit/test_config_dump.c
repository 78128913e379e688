/* Unit tests for config/config_dump: the /config_dump JSON is one valid document; MCP routes from
 * YAML and from the mcpServers JSON show every setting (key sources, secretRef names, JWKS key ids,
 * session settings, timeout) and no secret value; without process settings those are null. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/config_dump.h"
#include "config/mcp_json.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SECRETS[] = {"tok-inline-5e1f",  "tok-secret-9a07", "k-alice-33c1",      "k-bob-70d2",
                                      "json-bearer-8b4e", "json-xkey-c9f0",  "sk-env-openai-2f6a"};

/* Dumps c; fails when the text is not exactly one JSON value or holds a secret of SECRETS. */
static void dump(const gw_config_t *c, const gw_config_dump_mcp_t *mcp, gw_buf_t *out)
{
    gw_buf_init(out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_config_dump_json(c, mcp, out), GW_OK);
    const char *text = gw_buf_cstr(out);
    gw_json_error_t err;
    if (gw_json_validate(out->data, out->len, 0, &err) != GW_OK)
        fail_msg("invalid JSON at %zu (%s):\n%s", err.offset, err.what, text);
    for (size_t i = 0; i < sizeof(SECRETS) / sizeof(SECRETS[0]); i++)
        if (strstr(text, SECRETS[i]) != NULL)
            fail_msg("secret %s in the dump:\n%s", SECRETS[i], text);
}

/* The raw value at a path of object keys and array indexes, e.g. "mcpRoutes.0.backends.1.name". */
static gw_str_t at(gw_str_t doc, const char *path)
{
    gw_str_t v = doc;
    char part[128];
    while (*path) {
        size_t n = strcspn(path, ".");
        assert_true(n < sizeof(part));
        memcpy(part, path, n);
        part[n] = '\0';
        path += n + (path[n] == '.');
        if (part[0] >= '0' && part[0] <= '9') {
            size_t pos = 0, want = strtoul(part, NULL, 10);
            gw_str_t e = GW_STR_NULL;
            for (size_t i = 0; i <= want; i++)
                if (gw_json_array_next(v, &pos, &e) != GW_OK)
                    fail_msg("no element %zu", want);
            v = e;
        } else if (gw_json_object_get(v, gw_str_c(part), &v) != GW_OK) {
            fail_msg("no member %s", part);
        }
    }
    return v;
}

/* The raw JSON at path is exactly want (JSON text: "\"x\"", "null", "[]", "42"). */
static void expect(const gw_buf_t *out, const char *path, const char *want)
{
    gw_str_t v = at(gw_buf_str(out), path);
    if (v.len != strlen(want) || memcmp(v.base, want, v.len) != 0)
        fail_msg("%s: %.*s, expected %s", path, (int)v.len, v.base, want);
}

static const char MCP_YAML[] =
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: MCPRoute\nmetadata: {name: tools, namespace: t}\n"
    "spec:\n"
    "  parentRefs: [{name: gw}]\n"
    "  path: /tools/mcp\n"
    "  headers: [{name: X-Team, value: 'b\"l\\ue'}, {name: X-Env, type: RegularExpression, value: 'prod-.*'}]\n"
    "  backendRefs:\n"
    "    - name: one\n"
    "      kind: Backend\n"
    "      group: gateway.envoyproxy.io\n"
    "      toolSelector: {include: [read, list]}\n"
    "      securityPolicy: {apiKey: {inline: tok-inline-5e1f, header: X-Api-Key}}\n"
    "    - name: two\n"
    "      kind: Backend\n"
    "      group: gateway.envoyproxy.io\n"
    "      path: /v2/mcp\n"
    "      toolSelector: {includeRegex: [\"^get_.*\"]}\n"
    "      securityPolicy: {apiKey: {secretRef: {name: two-key}}}\n"
    "    - name: three\n"
    "      kind: Backend\n"
    "      group: gateway.envoyproxy.io\n"
    "  securityPolicy:\n"
    "    oauth:\n"
    "      issuer: https://issuer.example\n"
    "      audiences: [aud1, aud2]\n"
    "      jwks: {localJWKS: {inline: '{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k\\u0031\",\"k\":\"c2VjcmV0LWhtYWM\"},"
    "{\"kty\":\"EC\"}]}'}}\n"
    "      protectedResourceMetadata:\n"
    "        resource: https://gw.example/tools/mcp\n"
    "        scopesSupported: [read]\n"
    "    apiKeyAuth:\n"
    "      credentialRefs: [{name: clients}]\n"
    "      extractFrom: [{headers: [X-Client-Key]}, {cookies: [ck]}]\n"
    "    authorization:\n"
    "      requiredScopes: [read]\n"
    "      tools: [{nameRegex: '^two__', scopes: [write, admin]}]\n"
    "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: one, namespace: t}\n"
    "spec: {endpoints: [{fqdn: {hostname: one.example, port: 8080}}]}\n"
    "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: two, namespace: t}\n"
    "spec: {endpoints: [{fqdn: {hostname: two.example}}]}\n"
    "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: three, namespace: t}\n"
    "spec: {endpoints: [{ip: {address: '::1', port: 9}}]}\n"
    "---\napiVersion: gateway.networking.k8s.io/v1alpha3\nkind: BackendTLSPolicy\nmetadata: {name: two, namespace: t}\n"
    "spec:\n  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: two}]\n"
    "  validation: {hostname: sni.example, wellKnownCACertificates: System}\n"
    "---\napiVersion: v1\nkind: Secret\nmetadata: {name: two-key, namespace: t}\nstringData: {apiKey: tok-secret-9a07}\n"
    "---\napiVersion: v1\nkind: Secret\nmetadata: {name: clients, namespace: t}\n"
    "stringData: {alice: k-alice-33c1, bob: k-bob-70d2}\n";

static void test_mcp_route_from_yaml(void **state)
{
    (void)state;
    gw_buf_t errors, out;
    gw_buf_init(&errors, 1 << 16);
    gw_config_t *c = gw_config_load_buffer("mem", MCP_YAML, strlen(MCP_YAML), &errors);
    if (c == NULL)
        fail_msg("refused:\n%s", gw_buf_cstr(&errors));
    c->generation = 7;
    gw_config_dump_mcp_t mcp = {
        .request_timeout_ms = 90000, .fanout_timeout_ms = 15000, .session_max_age_s = 86400, .n_session_seeds = 3};
    dump(c, &mcp, &out);
    expect(&out, "generation", "7");
    expect(&out, "mcpRoutes.0.name", "\"t/tools\"");
    expect(&out, "mcpRoutes.0.path", "\"/tools/mcp\"");
    expect(&out, "mcpRoutes.0.headers.0", "{\"type\":\"Exact\",\"name\":\"x-team\",\"value\":\"b\\\"l\\\\ue\"}");
    expect(&out, "mcpRoutes.0.headers.1.type", "\"RegularExpression\"");
    expect(&out, "mcpRoutes.0.requestTimeoutMs", "90000");
    expect(&out, "mcpRoutes.0.fanoutTimeoutMs", "15000");

    expect(&out, "mcpRoutes.0.backends.0",
           "{\"name\":\"one\",\"host\":\"one.example\",\"port\":8080,\"tls\":false,\"sni\":null,\"caPEM\":false,"
           "\"path\":\"/mcp\",\"toolSelector\":{\"include\":[\"read\",\"list\"],\"includeRegex\":[]},"
           "\"apiKey\":{\"header\":\"x-api-key\",\"source\":\"inline\",\"secretRef\":null,\"value\":\"[redacted]\"}}");
    expect(&out, "mcpRoutes.0.backends.1.port", "443");
    expect(&out, "mcpRoutes.0.backends.1.tls", "true");
    expect(&out, "mcpRoutes.0.backends.1.sni", "\"sni.example\"");
    expect(&out, "mcpRoutes.0.backends.1.path", "\"/v2/mcp\"");
    expect(&out, "mcpRoutes.0.backends.1.toolSelector.includeRegex", "[\"^get_.*\"]");
    expect(
        &out, "mcpRoutes.0.backends.1.apiKey",
        "{\"header\":\"authorization\",\"source\":\"secretRef\",\"secretRef\":\"t/two-key\",\"value\":\"[redacted]\"}");
    expect(&out, "mcpRoutes.0.backends.2.host", "\"::1\"");
    expect(&out, "mcpRoutes.0.backends.2.apiKey", "null");
    expect(&out, "mcpRoutes.0.backends.2.toolSelector", "{\"include\":[],\"includeRegex\":[]}");

    expect(&out, "mcpRoutes.0.securityPolicy.oauth.issuer", "\"https://issuer.example\"");
    expect(&out, "mcpRoutes.0.securityPolicy.oauth.audiences", "[\"aud1\",\"aud2\"]");
    /* the kid unescaped and escaped again; a key without kid is skipped; no key material */
    expect(&out, "mcpRoutes.0.securityPolicy.oauth.jwks", "{\"source\":\"local\",\"keyIds\":[\"k1\"]}");
    assert_null(strstr(gw_buf_cstr(&out), "c2VjcmV0LWhtYWM"));
    expect(&out, "mcpRoutes.0.securityPolicy.oauth.protectedResourceMetadata",
           "{\"resource\":\"https://gw.example/tools/mcp\",\"resourceName\":null,\"scopesSupported\":[\"read\"],"
           "\"resourceSigningAlgValuesSupported\":[],\"resourceDocumentation\":null,\"resourcePolicyUri\":null}");
    expect(
        &out, "mcpRoutes.0.securityPolicy.apiKeyAuth",
        "{\"clients\":[{\"clientID\":\"alice\",\"key\":\"[redacted]\"},{\"clientID\":\"bob\",\"key\":\"[redacted]\"}],"
        "\"extractFrom\":{\"headers\":[\"x-client-key\"],\"params\":[],\"cookies\":[\"ck\"]},"
        "\"forwardClientIDHeader\":null,\"sanitize\":false}");
    expect(&out, "mcpRoutes.0.securityPolicy.authorization",
           "{\"requiredScopes\":[\"read\"],\"tools\":[{\"name\":null,\"nameRegex\":\"^two__\",\"scopes\":[\"write\","
           "\"admin\"]}]}");
    expect(&out, "mcpSession", "{\"maxAgeSeconds\":86400,\"seeds\":3,\"randomSeed\":false}");
    gw_buf_free(&out);
    gw_buf_free(&errors);
    gw_config_unref(c);
}

static void test_mcp_servers_json(void **state)
{
    (void)state;
    gw_config_t *c = gw_config_new();
    gw_buf_t errors, out;
    gw_buf_init(&errors, 1 << 16);
    const char *json = "{\"mcpServers\":{"
                       "\"gh\":{\"url\":\"https://api.example.com/mcp\",\"headers\":{\"Authorization\":\"Bearer "
                       "json-bearer-8b4e\"}},"
                       "\"local\":{\"url\":\"http://127.0.0.1:3000\",\"headers\":{\"X-Key\":\"json-xkey-c9f0\"}},"
                       "\"open\":{\"url\":\"http://127.0.0.1:3001/m\"}}}";
    assert_int_equal(gw_mcp_json_merge(c, json, strlen(json), &errors), GW_OK);
    gw_config_dump_mcp_t mcp = {.request_timeout_ms = 1800000, .session_max_age_s = 86400, .n_session_seeds = 0};
    dump(c, &mcp, &out);
    assert_null(strstr(gw_buf_cstr(&out), "Bearer"));
    expect(&out, "mcpRoutes.0.name", "\"" GW_MCP_JSON_ROUTE_NAME "\"");
    expect(&out, "mcpRoutes.0.headers", "[]");
    expect(&out, "mcpRoutes.0.backends.0.apiKey",
           "{\"header\":\"authorization\",\"source\":\"mcpServers\",\"secretRef\":null,\"value\":\"[redacted]\"}");
    expect(&out, "mcpRoutes.0.backends.1.apiKey",
           "{\"header\":\"x-key\",\"source\":\"mcpServers\",\"secretRef\":null,\"value\":\"[redacted]\"}");
    expect(&out, "mcpRoutes.0.backends.2.apiKey", "null");
    expect(&out, "mcpRoutes.0.securityPolicy", "{\"oauth\":null,\"apiKeyAuth\":null,\"authorization\":null}");
    expect(&out, "mcpSession", "{\"maxAgeSeconds\":86400,\"seeds\":0,\"randomSeed\":true}");
    gw_buf_free(&out);
    gw_buf_free(&errors);
    gw_config_unref(c);
}

static const char *env_openai(const char *name)
{
    return strcmp(name, "OPENAI_API_KEY") == 0 ? "sk-env-openai-2f6a" : NULL;
}

/* No process settings (NULL): the MCP fields that come from them are null; LLM keys stay redacted. */
static void test_without_mcp_settings(void **state)
{
    (void)state;
    gw_buf_t errors, out;
    gw_buf_init(&errors, 1 << 16);
    gw_config_t *c = gw_config_from_env(env_openai, &errors);
    assert_non_null(c);
    dump(c, NULL, &out);
    expect(&out, "rules.0.backends.0.auth.apiKey", "\"[redacted]\"");
    expect(&out, "mcpRoutes", "[]");
    expect(&out, "mcpSession", "null");
    gw_buf_free(&out);
    const char *json = "{\"mcpServers\":{\"a\":{\"url\":\"http://127.0.0.1:1/\"}}}";
    assert_int_equal(gw_mcp_json_merge(c, json, strlen(json), &errors), GW_OK);
    dump(c, NULL, &out);
    expect(&out, "mcpRoutes.0.requestTimeoutMs", "null");
    expect(&out, "mcpRoutes.0.fanoutTimeoutMs", "null");
    expect(&out, "mcpRoutes.0.backends.0.path", "\"/\"");
    gw_buf_free(&out);
    gw_buf_free(&errors);
    gw_config_unref(c);
}

/* Header mutations show their values, except on headers that carry a credential by their name. */
static void test_header_mutation_credentials(void **state)
{
    (void)state;
    static const char yaml[] =
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIGatewayRoute\nmetadata: {name: r, namespace: t}\n"
        "spec:\n  rules:\n    - matches: [{headers: [{name: x-ai-eg-model, value: m}]}]\n"
        "      backendRefs:\n        - name: vllm\n          headerMutation:\n"
        "            set: [{name: Authorization, value: 'Bearer hm-bearer-41d7'}, {name: X-Team, value: blue},\n"
        "                  {name: X-Upstream-Api-Key, value: hm-xkey-6c2e}, {name: Cookie, value: 'sid=hm-cookie-0b9a'}]\n"
        "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIServiceBackend\n"
        "metadata: {name: vllm, namespace: t}\n"
        "spec: {schema: {name: OpenAI}, backendRef: {name: vllm, kind: Backend, group: gateway.envoyproxy.io}}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: vllm, namespace: t}\n"
        "spec: {endpoints: [{fqdn: {hostname: vllm.example, port: 8000}}]}\n";
    gw_buf_t errors, out;
    gw_buf_init(&errors, 1 << 16);
    gw_config_t *c = gw_config_load_buffer("hm.yaml", yaml, sizeof(yaml) - 1, &errors);
    if (c == NULL)
        fail_msg("%s", gw_buf_cstr(&errors));
    dump(c, NULL, &out);
    const char *text = gw_buf_cstr(&out);
    assert_null(strstr(text, "hm-bearer-41d7"));
    assert_null(strstr(text, "hm-xkey-6c2e"));
    assert_null(strstr(text, "hm-cookie-0b9a"));
    assert_non_null(strstr(text, "\"name\":\"x-team\",\"value\":\"blue\""));
    assert_non_null(strstr(text, "\"name\":\"authorization\",\"value\":\"[redacted]\""));
    gw_buf_free(&out);
    gw_buf_free(&errors);
    gw_config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcp_route_from_yaml),
        cmocka_unit_test(test_mcp_servers_json),
        cmocka_unit_test(test_without_mcp_settings),
        cmocka_unit_test(test_header_mutation_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
