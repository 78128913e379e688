/* Unit tests for mcp/jsonrpc: classification of every message shape, each envelope rule, the
 * limits, batches, id replacement, and the id wrapping round trip used for server-to-client
 * requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/json.h"
#include "mcp/jsonrpc.h"

#include <stdio.h>
#include <stdlib.h>

static int parse(const char *s, gw_jsonrpc_msg_t *m, const char **why)
{
    return gw_jsonrpc_parse(gw_str_c(s), m, why);
}

static void test_classify(void **state)
{
    (void)state;
    gw_jsonrpc_msg_t m;
    const char *why;
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{}}", &m, &why), GW_OK);
    assert_int_equal(m.kind, GW_JSONRPC_REQUEST);
    assert_true(gw_str_eq_lit(m.id, "1"));
    assert_true(gw_str_eq_lit(m.method, "tools/list"));
    assert_true(gw_str_eq_lit(m.params, "{}"));

    assert_int_equal(parse(" {\"method\":\"notifications/initialized\",\"jsonrpc\":\"2.0\"} ", &m, &why), GW_OK);
    assert_int_equal(m.kind, GW_JSONRPC_NOTIFICATION);
    assert_int_equal(m.id.len, 0);
    assert_int_equal(m.params.len, 0);

    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"x\":[1,2]}}", &m, &why), GW_OK);
    assert_int_equal(m.kind, GW_JSONRPC_RESPONSE);
    assert_true(gw_str_eq_lit(m.id, "\"a\""));
    assert_true(gw_str_eq_lit(m.result, "{\"x\":[1,2]}"));

    assert_int_equal(
        parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32602,\"message\":\"Unknown tool\"}}", &m, &why),
        GW_OK);
    assert_int_equal(m.kind, GW_JSONRPC_ERROR);
    assert_int_equal(m.error_code, -32602);
    assert_true(gw_str_eq_lit(m.id, "null"));

    /* Escaped method names are unescaped; unknown members are tolerated. */
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":2.5,\"method\":\"tools\\/call\",\"x\":1}", &m, &why), GW_OK);
    assert_true(gw_str_eq_lit(m.method, "tools/call"));
    assert_true(gw_str_eq_lit(m.id, "2.5"));
}

static void test_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *why;
    } cases[] = {
        {"", "parse error"},
        {"{", "parse error"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"x\"}", "parse error"}, /* duplicate key */
        {"[]", "a JSON-RPC message must be an object"},
        {"\"x\"", "a JSON-RPC message must be an object"},
        {"{\"id\":1,\"method\":\"x\"}", "jsonrpc must be \"2.0\""},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"x\"}", "jsonrpc must be \"2.0\""},
        {"{\"jsonrpc\":2.0,\"id\":1,\"method\":\"x\"}", "jsonrpc must be \"2.0\""},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", "method must be a string"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", "method must be a non-empty string"},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"x\"}", "id must be a string or a number"},
        {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"x\"}", "id must be a string or a number"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":3}", "params must be an object or an array"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"result\":{}}",
         "a message cannot carry both method and result/error"},
        {"{\"jsonrpc\":\"2.0\",\"result\":{}}", "a response must carry an id"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1}", "a response carries exactly one of result and error"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{}}", "a response carries exactly one of result and error"},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}", "id must be a string or a number"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"params\":{}}", "params without method"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}", "error must be an object"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1.5,\"message\":\"m\"}}", "error.code must be an integer"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}", "error.message must be a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_jsonrpc_msg_t m;
        const char *why = NULL;
        int rc = parse(cases[i].in, &m, &why);
        if (rc != GW_EINVAL || why == NULL || strcmp(why, cases[i].why) != 0)
            fail_msg("case %zu (%s): rc %d why %s", i, cases[i].in, rc, why ? why : "(null)");
    }
}

static void test_limits(void **state)
{
    (void)state;
    gw_jsonrpc_msg_t m;
    const char *why;
    /* Method name: the limit itself passes, one more byte fails. */
    char buf[1024];
    char name[GW_JSONRPC_MAX_METHOD + 2];
    memset(name, 'm', sizeof(name));
    name[GW_JSONRPC_MAX_METHOD] = '\0';
    snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"method\":\"%s\"}", name);
    assert_int_equal(parse(buf, &m, &why), GW_OK);
    assert_int_equal(m.method.len, GW_JSONRPC_MAX_METHOD);
    name[GW_JSONRPC_MAX_METHOD] = 'm';
    name[GW_JSONRPC_MAX_METHOD + 1] = '\0';
    snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"method\":\"%s\"}", name);
    assert_int_equal(parse(buf, &m, &why), GW_EINVAL);
    assert_string_equal(why, "method name too long");

    /* Id length: the parse limit, and the longest wrapped id still parses (the client's answer to a
     * backend's request must come back in). */
    gw_buf_t big;
    gw_buf_init(&big, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&big, "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"id\":");
    for (int i = 0; i < GW_JSONRPC_MAX_PARSED_ID; i++)
        gw_buf_append_byte(&big, '7');
    gw_buf_append_byte(&big, '}');
    assert_int_equal(gw_jsonrpc_parse(gw_buf_str(&big), &m, &why), GW_OK);
    big.len--;
    gw_buf_append_lit(&big, "7}");
    assert_int_equal(gw_jsonrpc_parse(gw_buf_str(&big), &m, &why), GW_EINVAL);
    assert_string_equal(why, "id too long");
    gw_buf_free(&big);

    char owner[GW_JSONRPC_MAX_OWNER + 1], rawid[GW_JSONRPC_MAX_ID + 1];
    memset(owner, 'o', GW_JSONRPC_MAX_OWNER);
    owner[GW_JSONRPC_MAX_OWNER] = '\0';
    /* a string id full of escaped quotes doubles when wrapped */
    rawid[0] = '"';
    for (int i = 1; i + 2 < GW_JSONRPC_MAX_ID; i += 2) {
        rawid[i] = '\\';
        rawid[i + 1] = '"';
    }
    rawid[GW_JSONRPC_MAX_ID - 1] = '"';
    rawid[GW_JSONRPC_MAX_ID] = '\0';
    gw_buf_t w, msg;
    gw_buf_init(&w, GW_BUF_UNLIMITED);
    gw_buf_init(&msg, GW_BUF_UNLIMITED);
    assert_int_equal(gw_jsonrpc_id_wrap(gw_str_c(owner), gw_str_c(rawid), &w), GW_OK);
    gw_buf_append_lit(&msg, "{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":");
    gw_buf_append_str(&msg, gw_buf_str(&w));
    gw_buf_append_byte(&msg, '}');
    assert_int_equal(gw_jsonrpc_parse(gw_buf_str(&msg), &m, &why), GW_OK);
    gw_buf_free(&w);
    gw_buf_free(&msg);
    /* one byte more of owner or id is refused */
    char owner2[GW_JSONRPC_MAX_OWNER + 2];
    memset(owner2, 'o', sizeof(owner2) - 1);
    owner2[sizeof(owner2) - 1] = '\0';
    gw_buf_init(&w, GW_BUF_UNLIMITED);
    assert_int_equal(gw_jsonrpc_id_wrap(gw_str_c(owner2), GW_STR("1"), &w), GW_EINVAL);
    gw_buf_free(&w);

    /* Depth: params nested past the limit. */
    gw_buf_t d;
    gw_buf_init(&d, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&d, "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":");
    for (int i = 0; i < GW_JSONRPC_MAX_DEPTH + 1; i++)
        gw_buf_append_lit(&d, "[");
    for (int i = 0; i < GW_JSONRPC_MAX_DEPTH + 1; i++)
        gw_buf_append_lit(&d, "]");
    gw_buf_append_lit(&d, "}");
    assert_int_equal(gw_jsonrpc_parse(gw_buf_str(&d), &m, &why), GW_TOOBIG);
    gw_buf_free(&d);

    /* Whole message: refused before scanning. */
    assert_int_equal(gw_jsonrpc_parse(gw_str("{}", GW_JSONRPC_MAX_MESSAGE + 1), &m, &why), GW_TOOBIG);
}

static void test_batch(void **state)
{
    (void)state;
    assert_true(gw_jsonrpc_is_batch(GW_STR(" \n[{\"jsonrpc\":\"2.0\"}]")));
    assert_false(gw_jsonrpc_is_batch(GW_STR("{\"jsonrpc\":\"2.0\"}")));
    assert_false(gw_jsonrpc_is_batch(GW_STR("")));
}

static void test_batch_split(void **state)
{
    (void)state;
    gw_str_t items[4];
    size_t n = 99;
    const char *b = " [ {\"a\":\"x,]\"} , 2 ,[3,[4]] ,\"s\\\"]\"\n] ";
    assert_int_equal(gw_jsonrpc_batch_split(gw_str_c(b), items, 4, &n), GW_OK);
    assert_int_equal(n, 4);
    assert_true(gw_str_eq_lit(items[0], "{\"a\":\"x,]\"}"));
    assert_true(gw_str_eq_lit(items[1], "2"));
    assert_true(gw_str_eq_lit(items[2], "[3,[4]]"));
    assert_true(gw_str_eq_lit(items[3], "\"s\\\"]\""));
    assert_int_equal(gw_jsonrpc_batch_split(GW_STR("[]"), items, 4, &n), GW_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gw_jsonrpc_batch_split(GW_STR("[1,2,3,4,5]"), items, 4, &n), GW_TOOBIG);
    assert_int_equal(n, 0);
    assert_int_equal(gw_jsonrpc_batch_split(GW_STR("[1,]"), items, 4, &n), GW_EINVAL);
    assert_int_equal(gw_jsonrpc_batch_split(GW_STR("{}"), items, 4, &n), GW_EINVAL);
    assert_int_equal(gw_jsonrpc_batch_split(GW_STR(""), items, 4, &n), GW_EINVAL);
    assert_int_equal(n, 0);
}

static void test_replace_id(void **state)
{
    (void)state;
    const char *s = "{\"jsonrpc\":\"2.0\",\"id\":\"up-7\",\"result\":{\"id\":\"up-7\"}}";
    gw_jsonrpc_msg_t m;
    assert_int_equal(parse(s, &m, NULL), GW_OK);
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_jsonrpc_replace_id(gw_str_c(s), &m, GW_STR("42"), &out), GW_OK);
    /* Only the envelope's id changes, never an "id" inside the result. */
    assert_int_equal(out.len, strlen("{\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{\"id\":\"up-7\"}}"));
    assert_memory_equal(out.data, "{\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{\"id\":\"up-7\"}}", out.len);
    gw_buf_free(&out);

    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"method\":\"n\"}", &m, NULL), GW_OK);
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_jsonrpc_replace_id(GW_STR("{\"jsonrpc\":\"2.0\",\"method\":\"n\"}"), &m, GW_STR("1"), &out),
                     GW_EINVAL);
    gw_buf_free(&out);
}

static void roundtrip(const char *owner, const char *raw)
{
    gw_buf_t w, o, r;
    gw_buf_init(&w, GW_BUF_UNLIMITED);
    gw_buf_init(&o, GW_BUF_UNLIMITED);
    gw_buf_init(&r, GW_BUF_UNLIMITED);
    assert_int_equal(gw_jsonrpc_id_wrap(gw_str_c(owner), gw_str_c(raw), &w), GW_OK);
    assert_int_equal(gw_json_validate(w.data, w.len, 0, NULL), GW_OK);
    assert_int_equal(gw_json_type(gw_buf_str(&w)), GW_JSON_STRING);
    assert_int_equal(gw_jsonrpc_id_unwrap(gw_buf_str(&w), &o, &r), GW_OK);
    assert_true(gw_str_eq(gw_buf_str(&o), gw_str_c(owner)));
    assert_true(gw_str_eq(gw_buf_str(&r), gw_str_c(raw)));
    gw_buf_free(&w);
    gw_buf_free(&o);
    gw_buf_free(&r);
}

static void test_id_wrap(void **state)
{
    (void)state;
    roundtrip("weather", "5");
    roundtrip("a", "\"abc__def\"");       /* "__" inside the original id stays there */
    roundtrip("b-1.x", "\"q\\\"uote\\u00e9\""); /* escapes survive byte for byte */
    roundtrip("srv", "-1.5e3");

    gw_buf_t w;
    gw_buf_init(&w, GW_BUF_UNLIMITED);
    assert_int_equal(gw_jsonrpc_id_wrap(GW_STR(""), GW_STR("1"), &w), GW_EINVAL);
    assert_int_equal(gw_jsonrpc_id_wrap(GW_STR("a__b"), GW_STR("1"), &w), GW_EINVAL);
    assert_int_equal(gw_jsonrpc_id_wrap(GW_STR("a_"), GW_STR("1"), &w), GW_EINVAL);
    assert_int_equal(gw_jsonrpc_id_wrap(GW_STR("a"), GW_STR("null"), &w), GW_EINVAL);
    assert_int_equal(gw_jsonrpc_id_wrap(GW_STR("a"), GW_STR("{}"), &w), GW_EINVAL);
    assert_int_equal(w.len, 0);
    gw_buf_free(&w);

    static const char *bad[] = {
        "5",                /* not a string */
        "\"nounderscore\"", /* no separator */
        "\"__5\"",          /* empty owner */
        "\"a__\"",          /* empty id */
        "\"a__{}\"",        /* not an id type */
        "\"a__ 5\"",        /* padded */
        "\"a__5",           /* broken JSON */
        "\"a__\\\"x\"",     /* unterminated inner string */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_buf_t o, r;
        gw_buf_init(&o, GW_BUF_UNLIMITED);
        gw_buf_init(&r, GW_BUF_UNLIMITED);
        int rc = gw_jsonrpc_id_unwrap(gw_str_c(bad[i]), &o, &r);
        if (rc != GW_EINVAL || o.len != 0 || r.len != 0)
            fail_msg("case %zu (%s): rc %d", i, bad[i], rc);
        gw_buf_free(&o);
        gw_buf_free(&r);
    }
}

static void test_builders(void **state)
{
    (void)state;
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    assert_int_equal(gw_jsonrpc_error(&b, GW_STR("\"x\""), -32601, "Method not found: \"q\""), GW_OK);
    assert_int_equal(gw_json_validate(b.data, b.len, 0, NULL), GW_OK);
    gw_jsonrpc_msg_t m;
    assert_int_equal(gw_jsonrpc_parse(gw_buf_str(&b), &m, NULL), GW_OK);
    assert_int_equal(m.kind, GW_JSONRPC_ERROR);
    assert_int_equal(m.error_code, -32601);
    gw_buf_reset(&b);
    assert_int_equal(gw_jsonrpc_error(&b, GW_STR_NULL, -32000, "bad"), GW_OK);
    assert_int_equal(gw_jsonrpc_parse(gw_buf_str(&b), &m, NULL), GW_OK);
    assert_true(gw_str_eq_lit(m.id, "null"));
    gw_buf_reset(&b);
    assert_int_equal(gw_jsonrpc_result(&b, GW_STR("3"), GW_STR("{}")), GW_OK);
    assert_int_equal(gw_jsonrpc_parse(gw_buf_str(&b), &m, NULL), GW_OK);
    assert_int_equal(m.kind, GW_JSONRPC_RESPONSE);
    gw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),   cmocka_unit_test(test_invalid), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_batch),      cmocka_unit_test(test_batch_split), cmocka_unit_test(test_replace_id),
        cmocka_unit_test(test_id_wrap),
        cmocka_unit_test(test_builders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
