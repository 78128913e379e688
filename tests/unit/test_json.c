/* Unit tests for core/json: the validation table (every limit and every strictness rule), lookups
 * on raw slices, unescaping, number and bool parsing, the string writer and lossless splicing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>

#define S(lit) GW_STR(lit)

typedef struct {
    const char *doc;
    size_t len; /* 0: strlen(doc) */
    int rc;
    const char *why;
} vcase_t;

#define V(lit, rc, why) {(lit), sizeof(lit) - 1, (rc), (why)}

static const vcase_t vcases[] = {
    /* accepted */
    V("{}", GW_OK, "empty object"),
    V("[]", GW_OK, "empty array"),
    V("0", GW_OK, "zero"),
    V("-0", GW_OK, "minus zero"),
    V("1.5e10", GW_OK, "exponent"),
    V("-1.0E+2", GW_OK, "signed exponent"),
    V("123456789012345678901234567890", GW_OK, "big integer is kept as text"),
    V("1e999999", GW_OK, "huge exponent is grammar-valid"),
    V("\"x\"", GW_OK, "string"),
    V("true", GW_OK, "true"),
    V("false", GW_OK, "false"),
    V("null", GW_OK, "null"),
    V(" \t\r\n{\"a\":[1,2,{\"b\":null}]} \n", GW_OK, "surrounding whitespace"),
    V("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", GW_OK, "all simple escapes"),
    V("\"\\u00e9\\ud83d\\ude00\\uFFFF\"", GW_OK, "unicode escapes and a surrogate pair"),
    V("\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"", GW_OK, "2, 3, 4-byte UTF-8 up to U+10FFFF"),
    V("\"\xef\xbb\xbf\"", GW_OK, "U+FEFF inside a string"),
    V("\"\x7f\"", GW_OK, "DEL is not a control character for JSON"),
    V("{\"a\":1,\"b\":{\"a\":2}}", GW_OK, "same key in a nested object"),
    V("[{\"a\":1},{\"a\":1}]", GW_OK, "same key in sibling objects"),
    V("{\"a\":1,\"A\":2}", GW_OK, "keys are case-sensitive"),
    V("{\"\":1}", GW_OK, "empty key"),
    V("{\"a\":{\"b\":1},\"b\":2}", GW_OK, "a closed inner object's keys are forgotten"),
    /* rejected: syntax */
    V("", GW_EINVAL, "empty document"),
    V("   ", GW_EINVAL, "blank document"),
    V("{", GW_EINVAL, "unterminated object"),
    V("[1,2", GW_EINVAL, "unterminated array"),
    V("[1,]", GW_EINVAL, "trailing comma in array"),
    V("{\"a\":1,}", GW_EINVAL, "trailing comma in object"),
    V("[,1]", GW_EINVAL, "leading comma"),
    V("{\"a\" 1}", GW_EINVAL, "missing colon"),
    V("{\"a\":}", GW_EINVAL, "missing value"),
    V("{a:1}", GW_EINVAL, "unquoted key"),
    V("{1:1}", GW_EINVAL, "number key"),
    V("['a']", GW_EINVAL, "single quotes"),
    V("[1 2]", GW_EINVAL, "missing comma"),
    V("[}", GW_EINVAL, "mismatched brackets"),
    V("{]", GW_EINVAL, "mismatched brackets"),
    V("{\"a\":1]", GW_EINVAL, "mismatched close"),
    V("01", GW_EINVAL, "leading zero"),
    V("-01", GW_EINVAL, "leading zero after minus"),
    V("1.", GW_EINVAL, "no fraction digits"),
    V(".5", GW_EINVAL, "no integer digits"),
    V("1e", GW_EINVAL, "no exponent digits"),
    V("1e+", GW_EINVAL, "no exponent digits after sign"),
    V("+1", GW_EINVAL, "plus sign"),
    V("-", GW_EINVAL, "lone minus"),
    V("0x10", GW_EINVAL, "hex"),
    V("NaN", GW_EINVAL, "NaN"),
    V("Infinity", GW_EINVAL, "Infinity"),
    V("-Infinity", GW_EINVAL, "-Infinity"),
    V("tru", GW_EINVAL, "truncated literal"),
    V("True", GW_EINVAL, "capitalised literal"),
    V("nul", GW_EINVAL, "truncated null"),
    V("/*c*/{}", GW_EINVAL, "comment before"),
    V("{} // c", GW_EINVAL, "comment after"),
    V("\xef\xbb\xbf{}", GW_EINVAL, "BOM"),
    V("{}\x00", GW_EINVAL, "NUL after the value"),
    V("\xff", GW_EINVAL, "non-ASCII outside strings"),
    /* rejected: trailing garbage */
    V("{} x", GW_EINVAL, "trailing garbage"),
    V("{}{}", GW_EINVAL, "two documents"),
    V("[]]", GW_EINVAL, "extra close"),
    V("{\"a\":1}}", GW_EINVAL, "extra close brace"),
    V("1 2", GW_EINVAL, "two numbers"),
    V("truefalse", GW_EINVAL, "two literals"),
    V("\"a\"\"b\"", GW_EINVAL, "two strings"),
    /* rejected: strings */
    V("\"abc", GW_EINVAL, "unterminated string"),
    V("\"a\\\"", GW_EINVAL, "escaped final quote"),
    V("\"a\x01z\"", GW_EINVAL, "raw control character"),
    V("\"a\nz\"", GW_EINVAL, "raw newline"),
    V("\"a\tz\"", GW_EINVAL, "raw tab"),
    V("\"a\x00z\"", GW_EINVAL, "raw NUL"),
    V("\"\\x41\"", GW_EINVAL, "unknown escape"),
    V("\"\\'\"", GW_EINVAL, "escaped single quote"),
    V("\"\\u12\"", GW_EINVAL, "short \\u"),
    V("\"\\u12g4\"", GW_EINVAL, "bad hex"),
    V("\"\\u0000\"", GW_EINVAL, "\\u0000"),
    V("{\"a\\u0000\":1}", GW_EINVAL, "\\u0000 in a key"),
    V("\"\\ud800\"", GW_EINVAL, "lone high surrogate"),
    V("\"\\udc00\"", GW_EINVAL, "lone low surrogate"),
    V("\"\\ud800\\u0041\"", GW_EINVAL, "high surrogate followed by a non-surrogate"),
    V("\"\\ud800\\ud800\"", GW_EINVAL, "two high surrogates"),
    V("\"\\ud800x\"", GW_EINVAL, "high surrogate followed by text"),
    V("\"\\ude00\\ud83d\"", GW_EINVAL, "reversed pair"),
    /* rejected: UTF-8 */
    V("\"\x80\"", GW_EINVAL, "lone continuation byte"),
    V("\"\xc0\xaf\"", GW_EINVAL, "overlong 2-byte '/'"),
    V("\"\xc1\xbf\"", GW_EINVAL, "overlong 2-byte"),
    V("\"\xe0\x80\xaf\"", GW_EINVAL, "overlong 3-byte"),
    V("\"\xe0\x9f\xbf\"", GW_EINVAL, "overlong 3-byte (U+07FF)"),
    V("\"\xf0\x80\x80\xaf\"", GW_EINVAL, "overlong 4-byte"),
    V("\"\xf0\x8f\xbf\xbf\"", GW_EINVAL, "overlong 4-byte (U+FFFF)"),
    V("\"\xed\xa0\x80\"", GW_EINVAL, "UTF-8 encoded surrogate U+D800"),
    V("\"\xed\xbf\xbf\"", GW_EINVAL, "UTF-8 encoded surrogate U+DFFF"),
    V("\"\xf4\x90\x80\x80\"", GW_EINVAL, "above U+10FFFF"),
    V("\"\xf5\x80\x80\x80\"", GW_EINVAL, "F5 lead byte"),
    V("\"\xfe\"", GW_EINVAL, "FE byte"),
    V("\"\xe2\x82\"", GW_EINVAL, "truncated 3-byte sequence"),
    V("\"\xe2\x82", GW_EINVAL, "truncated at end of input"),
    V("\"\xc3\"", GW_EINVAL, "lead byte then quote"),
    V("\"\xc3\xc3\xa9\"", GW_EINVAL, "lead byte then lead byte"),
    /* rejected: duplicate keys */
    V("{\"a\":1,\"a\":2}", GW_EINVAL, "duplicate key"),
    V("{\"a\":1,\"b\":2,\"a\":3}", GW_EINVAL, "duplicate key, not adjacent"),
    V("{\"a\":1,\"\\u0061\":2}", GW_EINVAL, "duplicate key spelled with an escape"),
    V("{\"ab\":1,\"a\\u0062\":2}", GW_EINVAL, "duplicate key, partly escaped"),
    V("{\"abcdefghijklmnopq\":1,\"abcdefgh\\u0069jklmnop\\u0071\":2}", GW_EINVAL, "long duplicate key, escaped across words"),
    V("{\"abcdefghijklmnopq\":1,\"abcdefgh\\u0069jklmnopr\":2}", GW_OK, "long keys that differ in the last byte"),
    V("{\"\\/\":1,\"/\":2}", GW_EINVAL, "duplicate key, escaped solidus"),
    V("{\"\":1,\"\":2}", GW_EINVAL, "duplicate empty key"),
    V("{\"x\":{\"a\":1,\"a\":1}}", GW_EINVAL, "duplicate key in a nested object"),
    V("{\"a\":{\"b\":1},\"a\":2}", GW_EINVAL, "duplicate key after a nested object"),
};

static void test_validate_table(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < GW_ARRAY_SIZE(vcases); i++) {
        const vcase_t *c = &vcases[i];
        gw_json_error_t err = {0};
        int rc = gw_json_validate(c->doc, c->len, 0, &err);
        if (rc != c->rc) {
            printf("case %zu (%s): got %d want %d (%s at %zu)\n", i, c->why, rc, c->rc, err.what ? err.what : "-",
                   err.offset);
            bad++;
        }
        if (rc != GW_OK) {
            if (err.what == NULL || err.offset > c->len) {
                printf("case %zu (%s): error not described\n", i, c->why);
                bad++;
            }
        }
    }
    printf("validation table: %zu cases\n", GW_ARRAY_SIZE(vcases));
    assert_int_equal(bad, 0);
}

static void test_validate_error_offsets(void **state)
{
    (void)state;
    struct {
        const char *doc;
        size_t off;
    } cases[] = {
        {"{\"a\":1,\"a\":2}", 7},   /* the second key's quote */
        {"[1,2,]", 5},              /* the bracket after the comma */
        {"{} x", 3},                /* the garbage */
        {"\"ab\x01\"", 3},          /* the control byte */
        {"\"ab\\q\"", 3},           /* the backslash */
        {"\"ab\xc0\xaf\"", 3},      /* the bad lead byte */
        {"[[[1]]]", 2},             /* with max_depth 2: the third bracket */
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        gw_json_error_t err = {0};
        int rc = gw_json_validate(cases[i].doc, strlen(cases[i].doc), i == 6 ? 2 : 0, &err);
        assert_int_not_equal(rc, GW_OK);
        assert_non_null(err.what);
        if (err.offset != cases[i].off)
            printf("offset case %zu: got %zu want %zu (%s)\n", i, err.offset, cases[i].off, err.what);
        assert_int_equal(err.offset, cases[i].off);
    }
    /* err may be NULL */
    assert_int_equal(gw_json_validate("[", 1, 0, NULL), GW_EINVAL);
    /* NULL input: empty, never dereferenced */
    gw_json_error_t e2 = {0};
    assert_int_equal(gw_json_validate(NULL, 0, 0, &e2), GW_EINVAL);
    assert_int_equal(e2.offset, 0);
    gw_buf_t b;
    gw_buf_init(&b, 16);
    assert_int_equal(gw_json_append_string(&b, NULL, 0), GW_OK);
    assert_true(gw_str_eq(gw_buf_str(&b), GW_STR("\"\"")));
    gw_buf_free(&b);
}

static char *nested(const char *open, const char *close, int depth, size_t *len)
{
    size_t o = strlen(open), c = strlen(close);
    char *s = malloc((o + c) * (size_t)depth + 2);
    size_t n = 0;
    for (int i = 0; i < depth; i++, n += o)
        memcpy(s + n, open, o);
    s[n++] = '1';
    for (int i = 0; i < depth; i++, n += c)
        memcpy(s + n, close, c);
    s[n] = '\0';
    *len = n;
    return s;
}

static void test_validate_depth(void **state)
{
    (void)state;
    size_t n;
    char *s;
    gw_json_error_t err;

    s = nested("[", "]", 10, &n);
    assert_int_equal(gw_json_validate(s, n, 10, NULL), GW_OK);
    assert_int_equal(gw_json_validate(s, n, 9, &err), GW_TOOBIG);
    assert_string_equal(err.what, "nesting too deep");
    free(s);

    s = nested("{\"k\":", "}", 10, &n);
    assert_int_equal(gw_json_validate(s, n, 10, NULL), GW_OK);
    assert_int_equal(gw_json_validate(s, n, 9, NULL), GW_TOOBIG);
    free(s);

    assert_int_equal(gw_json_validate("1", 1, 1, NULL), GW_OK); /* a scalar is depth 0 */

    /* max_depth <= 0 means the default */
    s = nested("[", "]", GW_JSON_DEFAULT_MAX_DEPTH, &n);
    assert_int_equal(gw_json_validate(s, n, 0, NULL), GW_OK);
    assert_int_equal(gw_json_validate(s, n, -1, NULL), GW_OK);
    free(s);
    s = nested("[", "]", GW_JSON_DEFAULT_MAX_DEPTH + 1, &n);
    assert_int_equal(gw_json_validate(s, n, 0, NULL), GW_TOOBIG);
    free(s);

    /* max_depth is clamped to the hard cap */
    s = nested("[{\"a\":", "}]", GW_JSON_MAX_DEPTH_CAP / 2, &n);
    assert_int_equal(gw_json_validate(s, n, 1 << 30, NULL), GW_OK);
    free(s);
    s = nested("[", "]", GW_JSON_MAX_DEPTH_CAP + 1, &n);
    assert_int_equal(gw_json_validate(s, n, 1 << 30, NULL), GW_TOOBIG);
    free(s);

    /* deep input far beyond the cap is rejected without recursion */
    s = nested("[", "]", 1000000, &n);
    assert_int_equal(gw_json_validate(s, n, 1 << 30, NULL), GW_TOOBIG);
    free(s);
}

/* {"k0":0,"k1":1,...} with `count` keys, optionally ending with a duplicate of `dup`. */
static char *many_keys(int count, int dup, size_t *len)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "{");
    for (int i = 0; i < count; i++)
        gw_buf_appendf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
    if (dup >= 0)
        gw_buf_appendf(&b, ",\"k%d\":0", dup);
    gw_buf_append_lit(&b, "}");
    gw_buf_cstr(&b);
    return gw_buf_detach(&b, len);
}

static void test_validate_duplicates_at_scale(void **state)
{
    (void)state;
    size_t n;
    char *s;
    /* growth and rehash of the key table keep finding duplicates */
    int counts[] = {1, 15, 16, 17, 100, 1000, 3000};
    for (size_t i = 0; i < GW_ARRAY_SIZE(counts); i++) {
        s = many_keys(counts[i], -1, &n);
        assert_int_equal(gw_json_validate(s, n, 0, NULL), GW_OK);
        free(s);
        for (int dup = 0; dup < counts[i]; dup += counts[i] / 3 + 1) {
            s = many_keys(counts[i], dup, &n);
            assert_int_equal(gw_json_validate(s, n, 0, NULL), GW_EINVAL);
            free(s);
        }
    }

    /* keys of closed siblings are dropped: 50 objects that each reuse the same 200 keys */
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "[");
    for (int o = 0; o < 50; o++) {
        char *obj = many_keys(200, -1, &n);
        if (o)
            gw_buf_append_lit(&b, ",");
        gw_buf_append(&b, obj, n);
        free(obj);
    }
    gw_buf_append_lit(&b, "]");
    assert_int_equal(gw_json_validate(b.data, b.len, 0, NULL), GW_OK);

    /* an inner object may repeat its parent's keys, and the parent keeps detecting its own */
    gw_buf_reset(&b);
    gw_buf_append_lit(&b, "{\"a\":1,\"b\":{\"a\":1,\"b\":2,\"c\":{\"a\":3}},\"c\":3,\"b\":4}");
    gw_json_error_t err;
    assert_int_equal(gw_json_validate(b.data, b.len, 0, &err), GW_EINVAL);
    assert_string_equal(err.what, "duplicate key");
    assert_int_equal(err.offset, strlen("{\"a\":1,\"b\":{\"a\":1,\"b\":2,\"c\":{\"a\":3}},\"c\":3,"));
    gw_buf_free(&b);
}

static void test_validate_open_keys_limit(void **state)
{
    (void)state;
    size_t n;
    char *s = many_keys(GW_JSON_MAX_OPEN_KEYS, -1, &n);
    assert_int_equal(gw_json_validate(s, n, 0, NULL), GW_OK);
    free(s);
    gw_json_error_t err;
    s = many_keys(GW_JSON_MAX_OPEN_KEYS + 1, -1, &n);
    assert_int_equal(gw_json_validate(s, n, 0, &err), GW_TOOBIG);
    assert_string_equal(err.what, "too many keys in open objects");
    free(s);

    /* the limit counts keys of all open objects together: parent keys + a nested object */
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "{");
    for (int i = 0; i < GW_JSON_MAX_OPEN_KEYS - 1; i++)
        gw_buf_appendf(&b, "\"p%d\":0,", i);
    gw_buf_append_lit(&b, "\"in\":{\"x\":1}}");
    assert_int_equal(gw_json_validate(b.data, b.len, 0, NULL), GW_TOOBIG);
    gw_buf_free(&b);
}

static void test_type(void **state)
{
    (void)state;
    assert_int_equal(gw_json_type(S(" {}")), GW_JSON_OBJECT);
    assert_int_equal(gw_json_type(S("[1]")), GW_JSON_ARRAY);
    assert_int_equal(gw_json_type(S("\"s\"")), GW_JSON_STRING);
    assert_int_equal(gw_json_type(S("-1")), GW_JSON_NUMBER);
    assert_int_equal(gw_json_type(S("7")), GW_JSON_NUMBER);
    assert_int_equal(gw_json_type(S("true")), GW_JSON_TRUE);
    assert_int_equal(gw_json_type(S("false")), GW_JSON_FALSE);
    assert_int_equal(gw_json_type(S("null")), GW_JSON_NULL);
    assert_int_equal(gw_json_type(S("")), GW_JSON_INVALID);
    assert_int_equal(gw_json_type(S("  ")), GW_JSON_INVALID);
    assert_int_equal(gw_json_type(S("x")), GW_JSON_INVALID);
    assert_int_equal(gw_json_type(GW_STR_NULL), GW_JSON_INVALID);
}

static const char lookup_doc[] =
    "{ \"model\" : \"gpt-4o\",\"stream\":true, \"n\":1, \"mo\\u0064el2\":\"esc\", \"a\\\"b\":2,"
    "\"tricky\":\"}{][\\\\\",\"arr\":[ 1 , {\"model\":\"inner\"} , \"]\" ],"
    "\"nested\":{\"a\":{\"b\":[1,2]},\"x\":null},\"usage\":{\"prompt_tokens_details\":{\"cached_tokens\":5}},"
    "\"e\\u0301\":\"combining\", \"\\ud83d\\ude00\":\"emoji\", \"big\":123456789012345678901234567890 }";

static void check_get(const char *key, int rc, const char *value)
{
    gw_str_t v = GW_STR_NULL;
    int got = gw_json_object_get(S(lookup_doc), gw_str_c(key), &v);
    if (got != rc)
        printf("key %s: got %d want %d\n", key, got, rc);
    assert_int_equal(got, rc);
    if (rc == GW_OK) {
        assert_true(v.base >= lookup_doc && v.base + v.len <= lookup_doc + sizeof(lookup_doc) - 1);
        if (!gw_str_eq(v, gw_str_c(value)))
            printf("key %s: got '%.*s' want '%s'\n", key, (int)v.len, v.base, value);
        assert_true(gw_str_eq(v, gw_str_c(value)));
    }
}

static void test_object_get(void **state)
{
    (void)state;
    assert_int_equal(gw_json_validate(lookup_doc, sizeof(lookup_doc) - 1, 0, NULL), GW_OK);
    check_get("model", GW_OK, "\"gpt-4o\"");
    check_get("stream", GW_OK, "true");
    check_get("n", GW_OK, "1");
    check_get("model2", GW_OK, "\"esc\"");
    check_get("a\"b", GW_OK, "2");
    check_get("tricky", GW_OK, "\"}{][\\\\\"");
    check_get("arr", GW_OK, "[ 1 , {\"model\":\"inner\"} , \"]\" ]");
    check_get("nested", GW_OK, "{\"a\":{\"b\":[1,2]},\"x\":null}");
    check_get("e\xcc\x81", GW_OK, "\"combining\"");
    check_get("\xf0\x9f\x98\x80", GW_OK, "\"emoji\"");
    check_get("big", GW_OK, "123456789012345678901234567890");
    check_get("absent", GW_DONE, NULL);
    check_get("mode", GW_DONE, NULL);
    check_get("Model", GW_DONE, NULL);
    check_get("inner", GW_DONE, NULL);
    check_get("", GW_DONE, NULL);

    gw_str_t v;
    assert_int_equal(gw_json_object_get(S("[1]"), S("a"), &v), GW_EINVAL);
    assert_int_equal(gw_json_object_get(S("\"{}\""), S("a"), &v), GW_EINVAL);
    assert_int_equal(gw_json_object_get(S(""), S("a"), &v), GW_EINVAL);
    assert_int_equal(gw_json_object_get(GW_STR_NULL, S("a"), &v), GW_EINVAL);
    assert_int_equal(gw_json_object_get(S("{}"), S("a"), &v), GW_DONE);
    assert_int_equal(gw_json_object_get(S(" { } "), S("a"), &v), GW_DONE);
    assert_int_equal(gw_json_object_get(S("{\"\":0}"), S(""), &v), GW_OK);

    /* unvalidated, broken documents: an error once the walk reaches the damage, never a read
     * outside the slice ("z" is absent, so every member is walked) */
    const char *broken[] = {"{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\" 1}", "{\"a\":}", "{\"a\":\"x}", "{\"a\":[1,2}",
                            "{\"x\":1,,\"a\":1}", "{a:1}", "{\"x\\\":1}"};
    assert_int_equal(gw_json_object_get(S("{\"a\":1"), S("a"), &v), GW_OK); /* found before the damage */
    for (size_t i = 0; i < GW_ARRAY_SIZE(broken); i++) {
        /* copy to an exact-size heap block so ASan sees any overread */
        size_t n = strlen(broken[i]);
        char *d = malloc(n);
        memcpy(d, broken[i], n);
        int rc = gw_json_object_get(gw_str(d, n), S("z"), &v);
        if (rc != GW_EINVAL)
            printf("broken %zu: rc %d\n", i, rc);
        assert_int_equal(rc, GW_EINVAL);
        free(d);
    }
}

/* The validator's member capture agrees with gw_json_object_get on every top-level member, and
 * sees neither nested members nor members of a document that is not an object. */
static void test_validate_members(void **state)
{
    (void)state;
    static const gw_str_t names[] = {GW_STR_INIT("model"), GW_STR_INIT("stream"), GW_STR_INIT("a\"b"),
                                     GW_STR_INIT("tricky"), GW_STR_INIT("arr"), GW_STR_INIT("nested"),
                                     GW_STR_INIT("big"), GW_STR_INIT("absent"), GW_STR_INIT("inner"),
                                     GW_STR_INIT("model2"), GW_STR_INIT("e\xcc\x81")};
    gw_str_t got[GW_ARRAY_SIZE(names)];
    assert_int_equal(gw_json_validate_members(lookup_doc, sizeof(lookup_doc) - 1, 0, NULL, names, got,
                                              GW_ARRAY_SIZE(names)),
                     GW_OK);
    for (size_t i = 0; i < GW_ARRAY_SIZE(names); i++) {
        gw_str_t want;
        if (gw_json_object_get(gw_str(lookup_doc, sizeof(lookup_doc) - 1), names[i], &want) == GW_OK) {
            assert_non_null(got[i].base);
            assert_int_equal(got[i].len, want.len);
            assert_memory_equal(got[i].base, want.base, want.len);
        } else {
            assert_null(got[i].base);
        }
    }
    /* a member of an escaped spelling is found too; a nested one is not; empty containers end right */
    const char *doc = "{\"x\":{\"model\":1},\"mo\\u0064el\":\"m\",\"stream\":[],\"n\":{}}";
    assert_int_equal(gw_json_validate_members(doc, strlen(doc), 0, NULL, names, got, 2), GW_OK);
    assert_int_equal(got[0].len, 3);
    assert_memory_equal(got[0].base, "\"m\"", 3);
    assert_int_equal(got[1].len, 2);
    assert_memory_equal(got[1].base, "[]", 2);
    assert_int_equal(gw_json_validate_members("[{\"model\":1}]", 13, 0, NULL, names, got, 2), GW_OK);
    assert_null(got[0].base);
    assert_null(got[1].base);
    /* a scalar member at the end, before the closing brace and whitespace */
    assert_int_equal(gw_json_validate_members(" {\"stream\" : true } ", 20, 0, NULL, names, got, 2), GW_OK);
    assert_int_equal(got[1].len, 4);
    assert_memory_equal(got[1].base, "true", 4);
    /* invalid documents still fail as with gw_json_validate */
    assert_int_equal(gw_json_validate_members("{\"model\":1,\"model\":2}", 21, 0, NULL, names, got, 2), GW_EINVAL);
    assert_int_equal(gw_json_validate_members("{\"model\":", 9, 0, NULL, names, got, 2), GW_EINVAL);
}

static void test_path_get(void **state)
{
    (void)state;
    gw_str_t v;
    assert_int_equal(gw_json_path_get(S(lookup_doc), "nested.a.b", &v), GW_OK);
    assert_true(gw_str_eq(v, S("[1,2]")));
    assert_int_equal(gw_json_path_get(S(lookup_doc), "usage.prompt_tokens_details.cached_tokens", &v), GW_OK);
    assert_true(gw_str_eq(v, S("5")));
    assert_int_equal(gw_json_path_get(S(lookup_doc), "model", &v), GW_OK);
    assert_true(gw_str_eq(v, S("\"gpt-4o\"")));
    assert_int_equal(gw_json_path_get(S(lookup_doc), "nested.zz", &v), GW_DONE);
    assert_int_equal(gw_json_path_get(S(lookup_doc), "nested.x.y", &v), GW_DONE); /* through null */
    assert_int_equal(gw_json_path_get(S(lookup_doc), "n.x", &v), GW_DONE);        /* through a number */
    assert_int_equal(gw_json_path_get(S(lookup_doc), "arr.model", &v), GW_DONE);  /* arrays are not walked */
    assert_int_equal(gw_json_path_get(S("[]"), "a", &v), GW_EINVAL);
    assert_int_equal(gw_json_path_get(S("{}"), NULL, &v), GW_EINVAL);
}

static void test_object_next(void **state)
{
    (void)state;
    const char *doc = " {\"a\" : 1 ,\"b\":[{}],\"c\\n\":\"x\"} ";
    const char *keys[] = {"\"a\"", "\"b\"", "\"c\\n\""}, *vals[] = {"1", "[{}]", "\"x\""};
    size_t pos = 0, i = 0;
    gw_str_t k, v;
    int rc;
    while ((rc = gw_json_object_next(gw_str_c(doc), &pos, &k, &v)) == GW_OK) {
        assert_true(i < 3);
        assert_true(gw_str_eq(k, gw_str_c(keys[i])));
        assert_true(gw_str_eq(v, gw_str_c(vals[i])));
        i++;
    }
    assert_int_equal(rc, GW_DONE);
    assert_int_equal(i, 3);
    assert_int_equal(pos, strlen(doc) - 1); /* just past the closing brace */
    assert_true(gw_json_key_eq(S("\"c\\n\""), S("c\n")));
    assert_false(gw_json_key_eq(S("\"c\\n\""), S("c")));
    assert_false(gw_json_key_eq(S("\"c\\q\""), S("c")));
    assert_false(gw_json_key_eq(S("c"), S("c")));
    assert_true(gw_json_key_eq(S("\"\""), S("")));
}

static void check_unescape(gw_str_t raw, int rc, gw_str_t want)
{
    gw_buf_t b;
    gw_buf_init(&b, 1024);
    gw_buf_append_lit(&b, "pre");
    int got = gw_json_string_unescape(raw, &b);
    if (got != rc)
        printf("unescape %.*s: got %d want %d\n", (int)raw.len, raw.base, got, rc);
    assert_int_equal(got, rc);
    if (rc == GW_OK) {
        assert_int_equal(b.len, 3 + want.len);
        assert_memory_equal(b.data + 3, want.base, want.len);
    } else {
        assert_int_equal(b.len, 3); /* all or nothing */
    }
    assert_memory_equal(b.data, "pre", 3);
    gw_buf_free(&b);
}

static void test_unescape(void **state)
{
    (void)state;
    check_unescape(S("\"plain\""), GW_OK, S("plain"));
    check_unescape(S("\"\""), GW_OK, S(""));
    check_unescape(S(" \"ws\" "), GW_OK, S("ws"));
    check_unescape(S("\"a\\nb\\t\\\"\\\\\\/\\b\\f\\r\""), GW_OK, S("a\nb\t\"\\/\b\f\r"));
    check_unescape(S("\"\\u00e9\\u20AC\""), GW_OK, S("\xc3\xa9\xe2\x82\xac"));
    check_unescape(S("\"\\ud83d\\ude00!\""), GW_OK, S("\xf0\x9f\x98\x80!"));
    check_unescape(S("\"\xf0\x9f\x98\x80 raw\""), GW_OK, S("\xf0\x9f\x98\x80 raw"));
    check_unescape(S("\"\\u0000\""), GW_EINVAL, S(""));
    check_unescape(S("\"\\ud800\""), GW_EINVAL, S(""));
    check_unescape(S("\"\\udc00\""), GW_EINVAL, S(""));
    check_unescape(S("\"\\q\""), GW_EINVAL, S(""));
    check_unescape(S("\"\\u12\""), GW_EINVAL, S(""));
    check_unescape(S("\"a\"b\""), GW_EINVAL, S(""));
    check_unescape(S("\"a\x01\""), GW_EINVAL, S(""));
    check_unescape(S("\"\xc0\xaf\""), GW_EINVAL, S(""));
    check_unescape(S("\"\xed\xa0\x80\""), GW_EINVAL, S(""));
    check_unescape(S("\"abc"), GW_EINVAL, S(""));
    check_unescape(S("abc\""), GW_EINVAL, S(""));
    check_unescape(S("\""), GW_EINVAL, S(""));
    check_unescape(S("\"\\\""), GW_EINVAL, S(""));
    check_unescape(S("12"), GW_EINVAL, S(""));

    gw_buf_t b;
    gw_buf_init(&b, 4);
    assert_int_equal(gw_json_string_unescape(S("\"abcd\""), &b), GW_OK);
    gw_buf_reset(&b);
    assert_int_equal(gw_json_string_unescape(S("\"abcde\""), &b), GW_TOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(gw_json_string_unescape(S("\"ab\\ncd\""), &b), GW_TOOBIG);
    assert_int_equal(b.len, 0);
    gw_buf_free(&b);
}

static void test_uint(void **state)
{
    (void)state;
    struct {
        const char *s;
        int rc;
        uint64_t v;
    } cases[] = {
        {"0", GW_OK, 0},
        {"12", GW_OK, 12},
        {"12.0", GW_OK, 12},
        {"1.2e1", GW_OK, 12},
        {"120e-1", GW_OK, 12},
        {"1E2", GW_OK, 100},
        {"1e+2", GW_OK, 100},
        {"0.5e1", GW_OK, 5},
        {"1.50e1", GW_OK, 15},
        {" 7 ", GW_OK, 7},
        {"-0", GW_OK, 0},
        {"-0.0e7", GW_OK, 0},
        {"0e999999999999999", GW_OK, 0},
        {"0.00000000000000000000000001e26", GW_OK, 1},
        {"100000000000000000000e-20", GW_OK, 1},
        {"18446744073709551615", GW_OK, UINT64_MAX},
        {"1844674407370955161.5e1", GW_OK, UINT64_MAX},
        {"1e19", GW_OK, 10000000000000000000ull},
        {"18446744073709551616", GW_EINVAL, 0},
        {"123456789012345678901234567890", GW_EINVAL, 0},
        {"1e20", GW_EINVAL, 0},
        {"1e999999999999", GW_EINVAL, 0},
        {"1.5", GW_EINVAL, 0},
        {"1e-1", GW_EINVAL, 0},
        {"-1", GW_EINVAL, 0},
        {"-1e-9", GW_EINVAL, 0},
        {"01", GW_EINVAL, 0},
        {"1.", GW_EINVAL, 0},
        {".1", GW_EINVAL, 0},
        {"1e", GW_EINVAL, 0},
        {"+1", GW_EINVAL, 0},
        {"1 2", GW_EINVAL, 0},
        {"\"12\"", GW_EINVAL, 0},
        {"null", GW_EINVAL, 0},
        {"true", GW_EINVAL, 0},
        {"", GW_EINVAL, 0},
        {"-", GW_EINVAL, 0},
        {"0x1", GW_EINVAL, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        uint64_t v = 4242;
        int rc = gw_json_uint(gw_str_c(cases[i].s), &v);
        if (rc != cases[i].rc || (rc == GW_OK && v != cases[i].v))
            printf("uint '%s': rc %d v %llu\n", cases[i].s, rc, (unsigned long long)v);
        assert_int_equal(rc, cases[i].rc);
        if (rc == GW_OK)
            assert_true(v == cases[i].v);
        else
            assert_true(v == 4242); /* untouched on failure */
    }
    uint64_t v;
    assert_int_equal(gw_json_uint(GW_STR_NULL, &v), GW_EINVAL);
}

static void test_bool(void **state)
{
    (void)state;
    bool b = false;
    assert_int_equal(gw_json_bool(S("true"), &b), GW_OK);
    assert_true(b);
    assert_int_equal(gw_json_bool(S(" false "), &b), GW_OK);
    assert_false(b);
    assert_int_equal(gw_json_bool(S("True"), &b), GW_EINVAL);
    assert_int_equal(gw_json_bool(S("1"), &b), GW_EINVAL);
    assert_int_equal(gw_json_bool(S("\"true\""), &b), GW_EINVAL);
    assert_int_equal(gw_json_bool(S("truex"), &b), GW_EINVAL);
    assert_int_equal(gw_json_bool(S(""), &b), GW_EINVAL);
}

static void check_append(gw_str_t in, const char *want)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    assert_int_equal(gw_json_append_string(&b, in.base, in.len), GW_OK);
    if (!gw_str_eq(gw_buf_str(&b), gw_str_c(want)))
        printf("append: got %.*s want %s\n", (int)b.len, b.data, want);
    assert_true(gw_str_eq(gw_buf_str(&b), gw_str_c(want)));
    assert_int_equal(gw_json_validate(b.data, b.len, 0, NULL), GW_OK);
    gw_buf_free(&b);
}

static void test_append_string(void **state)
{
    (void)state;
    check_append(S(""), "\"\"");
    check_append(S("plain text"), "\"plain text\"");
    check_append(S("q\"b\\s/"), "\"q\\\"b\\\\s/\"");
    check_append(S("\n\r\t\b\f\x01\x1f\x7f"), "\"\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\"");
    check_append(S("a\x00z"), "\"a\xef\xbf\xbdz\"");
    check_append(S("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    check_append(S("\xff"), "\"\xef\xbf\xbd\"");
    check_append(S("a\xe2\x82"), "\"a\xef\xbf\xbd\"");                                 /* truncated: one U+FFFD */
    check_append(S("\xe2\x82z"), "\"\xef\xbf\xbdz\"");                                 /* maximal subpart */
    check_append(S("\xed\xa0\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");       /* surrogate: 3 */
    check_append(S("\xc0\xaf"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");                       /* overlong: 2 */
    check_append(S("\xf4\x90\x80\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    check_append(S("long ascii run that is longer than eight bytes \"quoted\""),
                 "\"long ascii run that is longer than eight bytes \\\"quoted\\\"\"");

    /* all or nothing at the cap */
    gw_buf_t b;
    gw_buf_init(&b, 8);
    gw_buf_append_lit(&b, "xy");
    assert_int_equal(gw_json_append_string(&b, "abcd", 4), GW_OK); /* xy"abcd" = 8 */
    gw_buf_reset(&b);
    gw_buf_append_lit(&b, "xy");
    assert_int_equal(gw_json_append_string(&b, "abcde", 5), GW_TOOBIG);
    assert_int_equal(b.len, 2);
    assert_int_equal(gw_json_append_string(&b, "abc\n", 4), GW_TOOBIG); /* the escape crosses the cap */
    assert_int_equal(b.len, 2);
    gw_buf_free(&b);
}

/* A deterministic PRNG so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Property: whatever the bytes, the writer's output validates; for valid UTF-8 without NUL,
 * unescaping it gives the input back. */
static void test_append_string_roundtrip(void **state)
{
    (void)state;
    static const unsigned char alphabet[] = {'a', 'Z', '"', '\\', '/', '\n', 0x01, 0x1f, 0x7f, 0x00, 0x80, 0xbf, 0xc2,
                                             0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xed, 0xa0, 0xf0, 0x9f, 0x98, 0xf4, 0x90, 0xff};
    gw_buf_t out, back;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    gw_buf_init(&back, GW_BUF_UNLIMITED);
    unsigned char in[64];
    int valid_inputs = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = rng() % sizeof(in);
        for (size_t i = 0; i < n; i++)
            in[i] = alphabet[rng() % sizeof(alphabet)];
        gw_buf_reset(&out);
        assert_int_equal(gw_json_append_string(&out, (const char *)in, n), GW_OK);
        assert_int_equal(gw_json_validate(out.data, out.len, 0, NULL), GW_OK);
        /* is the input itself valid UTF-8 without NUL? then the round trip must be exact */
        gw_buf_t probe;
        gw_buf_init(&probe, GW_BUF_UNLIMITED);
        gw_buf_append_lit(&probe, "\"");
        for (size_t i = 0; i < n; i++) {
            if (in[i] == '"' || in[i] == '\\' || in[i] < 0x20)
                gw_buf_append_lit(&probe, "x");
            else
                gw_buf_append_byte(&probe, (char)in[i]);
        }
        gw_buf_append_lit(&probe, "\"");
        bool valid = memchr(in, 0, n) == NULL && gw_json_validate(probe.data, probe.len, 0, NULL) == GW_OK;
        gw_buf_free(&probe);
        if (valid) {
            valid_inputs++;
            gw_buf_reset(&back);
            assert_int_equal(gw_json_string_unescape(gw_buf_str(&out), &back), GW_OK);
            assert_int_equal(back.len, n);
            assert_memory_equal(back.data ? back.data : "", in, n);
        }
    }
    assert_true(valid_inputs > 100);
    gw_buf_free(&out);
    gw_buf_free(&back);
}

static void test_splice(void **state)
{
    (void)state;
    static const char doc[] = "{\n  \"n\": 123456789012345678901234567890,\n  \"model\" : \"gpt-4o\" ,\n"
                              "  \"t\": 1.0e+0, \"s\": \"\\u00e9\\ud83d\\ude00\\/\",\n  \"x\": -0.000\n}\n";
    const size_t dlen = sizeof(doc) - 1;
    assert_int_equal(gw_json_validate(doc, dlen, 0, NULL), GW_OK);
    gw_str_t old;
    assert_int_equal(gw_json_object_get(gw_str(doc, dlen), S("model"), &old), GW_OK);
    size_t head = (size_t)(old.base - doc), tail = dlen - head - old.len;

    const char *repls[] = {"\"o\"", "\"a much longer model name with \\\"escapes\\\" \\u2603\"", "\"\""};
    for (size_t i = 0; i < GW_ARRAY_SIZE(repls); i++) {
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        gw_buf_append_lit(&out, "keep");
        gw_str_t r = gw_str_c(repls[i]);
        assert_int_equal(gw_json_splice(gw_str(doc, dlen), old, r, &out), GW_OK);
        assert_int_equal(out.len, 4 + head + r.len + tail);
        assert_memory_equal(out.data, "keep", 4);
        /* every byte outside the spliced value is unchanged: numbers, escapes, whitespace */
        assert_memory_equal(out.data + 4, doc, head);
        assert_memory_equal(out.data + 4 + head, r.base, r.len);
        assert_memory_equal(out.data + 4 + head + r.len, old.base + old.len, tail);
        assert_int_equal(gw_json_validate(out.data + 4, out.len - 4, 0, NULL), GW_OK);
        gw_str_t spliced = gw_str(out.data + 4, out.len - 4), v;
        assert_int_equal(gw_json_object_get(spliced, S("model"), &v), GW_OK);
        assert_true(gw_str_eq(v, r));
        assert_int_equal(gw_json_object_get(spliced, S("n"), &v), GW_OK);
        assert_true(gw_str_eq(v, S("123456789012345678901234567890")));
        assert_int_equal(gw_json_object_get(spliced, S("s"), &v), GW_OK);
        assert_true(gw_str_eq(v, S("\"\\u00e9\\ud83d\\ude00\\/\"")));
        assert_int_equal(gw_json_object_get(spliced, S("x"), &v), GW_OK);
        assert_true(gw_str_eq(v, S("-0.000")));
        gw_buf_free(&out);
    }

    /* a replacement built by the writer */
    gw_buf_t q, out;
    gw_buf_init(&q, 256);
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_json_append_string(&q, "my-\"model\"", 10), GW_OK);
    assert_int_equal(gw_json_splice(gw_str(doc, dlen), old, gw_buf_str(&q), &out), GW_OK);
    gw_str_t v;
    assert_int_equal(gw_json_object_get(gw_buf_str(&out), S("model"), &v), GW_OK);
    gw_buf_t un;
    gw_buf_init(&un, 256);
    assert_int_equal(gw_json_string_unescape(v, &un), GW_OK);
    assert_true(gw_str_eq(gw_buf_str(&un), S("my-\"model\"")));
    gw_buf_free(&un);
    gw_buf_free(&q);

    /* the whole document and an empty slice at either end */
    gw_buf_reset(&out);
    assert_int_equal(gw_json_splice(gw_str(doc, dlen), gw_str(doc, dlen), S("1"), &out), GW_OK);
    assert_true(gw_str_eq(gw_buf_str(&out), S("1")));
    gw_buf_reset(&out);
    assert_int_equal(gw_json_splice(gw_str(doc, dlen), gw_str(doc + dlen, 0), S("X"), &out), GW_OK);
    assert_int_equal(out.len, dlen + 1);
    assert_int_equal(out.data[dlen], 'X');

    /* old_value outside doc */
    static const char other[] = "\"elsewhere\"";
    gw_buf_reset(&out);
    assert_int_equal(gw_json_splice(gw_str(doc, dlen), S(other), S("1"), &out), GW_EINVAL);
    assert_int_equal(gw_json_splice(gw_str(doc, dlen), gw_str(doc + dlen - 2, 3), S("1"), &out), GW_EINVAL);
    assert_int_equal(out.len, 0);
    gw_buf_free(&out);

    /* the cap: out unchanged */
    gw_buf_init(&out, dlen);
    gw_buf_append_lit(&out, "k");
    assert_int_equal(gw_json_splice(gw_str(doc, dlen), old, S("\"same-length!\""), &out), GW_TOOBIG);
    assert_int_equal(out.len, 1);
    gw_buf_free(&out);
}

static void test_array_next(void **state)
{
    (void)state;
    const char *doc = " [ 1 , \"a,]\" ,{\"k\":[2,3]}, [] ,null] ";
    gw_str_t arr = gw_str_c(doc), el;
    size_t pos = 0;
    const char *want[] = {"1", "\"a,]\"", "{\"k\":[2,3]}", "[]", "null"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(gw_json_array_next(arr, &pos, &el), GW_OK);
        assert_true(gw_str_eq(el, gw_str_c(want[i])));
    }
    assert_int_equal(gw_json_array_next(arr, &pos, &el), GW_DONE);
    pos = 0;
    assert_int_equal(gw_json_array_next(gw_str_c("[]"), &pos, &el), GW_DONE);
    pos = 0;
    assert_int_equal(gw_json_array_next(gw_str_c("{}"), &pos, &el), GW_EINVAL);
    pos = 0;
    gw_str_t broken = gw_str_c("[1 2]");
    assert_int_equal(gw_json_array_next(broken, &pos, &el), GW_OK);
    assert_int_equal(gw_json_array_next(broken, &pos, &el), GW_EINVAL);
    pos = 0;
    assert_int_equal(gw_json_array_next(gw_str_c("[\"unterminated"), &pos, &el), GW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_table),
        cmocka_unit_test(test_validate_error_offsets),
        cmocka_unit_test(test_validate_depth),
        cmocka_unit_test(test_validate_duplicates_at_scale),
        cmocka_unit_test(test_validate_open_keys_limit),
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_object_get),
        cmocka_unit_test(test_validate_members),
        cmocka_unit_test(test_path_get),
        cmocka_unit_test(test_object_next),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_append_string),
        cmocka_unit_test(test_append_string_roundtrip),
        cmocka_unit_test(test_splice),
        cmocka_unit_test(test_array_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
