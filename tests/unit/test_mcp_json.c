/* Unit tests for config/mcp_json: the {"mcpServers": {...}} JSON of --mcp-config/--mcp-json as one
 * MCPRoute at /mcp — URLs, headers (Bearer to API key, one other header as is), includeTools,
 * skipped server types, and every refusal leaving the snapshot unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/mcp_json.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>

static int merge(gw_config_t *c, const char *json, gw_buf_t *errors)
{
    return gw_mcp_json_merge(c, json, strlen(json), errors);
}

static void test_servers(void **state)
{
    (void)state;
    gw_config_t *c = gw_config_new();
    gw_buf_t errors;
    gw_buf_init(&errors, GW_BUF_UNLIMITED);
    const char *json = "{\"mcpServers\":{"
                       "\"github\":{\"type\":\"http\",\"url\":\"https://api.example.com/mcp/readonly\","
                       "\"headers\":{\"Authorization\":\"Bearer tok-1\"},\"includeTools\":[\"a\",\"b\"]},"
                       "\"local\":{\"url\":\"http://127.0.0.1:3000\",\"headers\":{\"X-Key\":\"k2\"}},"
                       "\"v6\":{\"type\":\"streamable-http\",\"url\":\"http://[::1]:8080/x?y=1\"},"
                       "\"old\":{\"type\":\"sse\",\"url\":\"http://h/sse\"},"
                       "\"stdio\":{\"command\":\"npx\",\"args\":[\"srv\"]}}}";
    assert_int_equal(merge(c, json, &errors), GW_OK);
    assert_int_equal(c->n_mcp_routes, 1);
    const gw_mcp_route_t *r = &c->mcp_routes[0];
    assert_string_equal(r->name, GW_MCP_JSON_ROUTE_NAME);
    assert_string_equal(r->path, "/mcp");
    assert_int_equal(r->n_backends, 3);
    const gw_mcp_backend_t *b = &r->backends[0];
    assert_string_equal(b->name, "github");
    assert_string_equal(b->host, "api.example.com");
    assert_int_equal(b->port, 443);
    assert_true(b->tls);
    assert_string_equal(b->path, "/mcp/readonly");
    assert_string_equal(b->api_key, "tok-1");
    assert_string_equal(b->api_key_header, "authorization");
    assert_int_equal(b->n_include, 2);
    assert_true(gw_mcp_tool_allowed(b, GW_STR("a")));
    assert_false(gw_mcp_tool_allowed(b, GW_STR("c")));
    b = &r->backends[1];
    assert_string_equal(b->host, "127.0.0.1");
    assert_int_equal(b->port, 3000);
    assert_false(b->tls);
    assert_string_equal(b->path, "/");
    assert_string_equal(b->api_key_header, "x-key");
    assert_string_equal(b->api_key, "k2");
    assert_true(gw_mcp_tool_allowed(b, GW_STR("anything")));
    b = &r->backends[2];
    assert_string_equal(b->host, "::1");
    assert_int_equal(b->port, 8080);
    assert_string_equal(b->path, "/x?y=1");
    /* A second merge would put a second route at /mcp. */
    assert_int_equal(merge(c, json, &errors), GW_EINVAL);
    assert_int_equal(c->n_mcp_routes, 1);
    gw_buf_free(&errors);
    gw_config_unref(c);
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *error;
    } cases[] = {
        {"", "expected {\"mcpServers\""},
        {"[]", "expected {\"mcpServers\""},
        {"{\"mcpServers\":[]}", "expected {\"mcpServers\""},
        {"{\"mcpServers\":{}}", "no Streamable HTTP server"},
        {"{\"mcpServers\":{\"a\":1}}", "each server must be an object"},
        {"{\"mcpServers\":{\"Bad_Name\":{\"url\":\"http://h/\"}}}", "server name must be"},
        {"{\"mcpServers\":{\"a__b\":{\"url\":\"http://h/\"}}}", "server name must be"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"ftp://h/\"}}}", "mcpServers.a.url"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://h:0/\"}}}", "mcpServers.a.url"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://h:99999/\"}}}", "mcpServers.a.url"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://u@h/\"}}}", "mcpServers.a.url"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://h/\",\"headers\":{\"Authorization\":\"Basic x\"}}}}",
         "Authorization must be"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://h/\",\"headers\":{\"X-A\":\"1\",\"X-B\":\"2\"}}}}",
         "at most one header"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://h/\",\"headers\":{\"X-A\":1}}}}", "values must be strings"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://h/\",\"includeTools\":\"x\"}}}", "includeTools"},
        {"{\"mcpServers\":{\"a\":{\"url\":\"http://h/\",\"includeTools\":[\"\"]}}}", "includeTools"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_config_t *c = gw_config_new();
        gw_buf_t errors;
        gw_buf_init(&errors, GW_BUF_UNLIMITED);
        int rc = merge(c, cases[i].json, &errors);
        if (rc != GW_EINVAL || c->n_mcp_routes != 0 || strstr(gw_buf_cstr(&errors), cases[i].error) == NULL)
            fail_msg("case %zu (%s): rc %d, errors: %s", i, cases[i].json, rc, gw_buf_cstr(&errors));
        /* Secrets never reach the error text. */
        assert_null(strstr(gw_buf_cstr(&errors), "Basic x"));
        gw_buf_free(&errors);
        gw_config_unref(c);
    }
}

int main(void)
{
    gw_log_level = GW_LOG_ERROR; /* skipped servers warn */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_servers),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
