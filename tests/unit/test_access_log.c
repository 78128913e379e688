/* Unit tests for obs/access_log: the JSON line (parsed back with cJSON), nulls for absent fields,
 * hostile strings, the mcp_* fields (hashed session id, id text, absent when unset), the PIPE_BUF
 * bound, and the writer (concurrent lines, short writes, EINTR, EAGAIN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "obs/access_log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/sha.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static const char *const all_keys[] = {
    "start_time",         "method",
    "x-envoy-origin-path", "response_code",
    "bytes_received",     "bytes_sent",
    "duration",           "upstream_service_time",
    "user-agent",         "x-request-id",
    "upstream_host",      "upstream_cluster",
    "downstream_remote_address", "genai_model_name",
    "genai_model_name_override", "genai_backend_name",
    "genai_response_model", "genai_tokens_input",
    "genai_tokens_output", "genai_tokens_total",
    "genai_tokens_cached_input", "connection_termination_details",
};

static char *format(const gw_access_log_entry_t *e)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    assert_int_equal(gw_access_log_format(e, &b), GW_OK);
    gw_buf_cstr(&b);
    return gw_buf_detach(&b, NULL);
}

/* Independent strict UTF-8 check (decodes code points, then checks ranges). */
static bool valid_utf8(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > n)
            return false;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        static const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* Parses one line: it must be a single JSON object, end with exactly one '\n', be valid UTF-8,
 * hold no raw control character, and have exactly the documented keys in order, followed by
 * exactly the mcp_* keys in mcp_keys. */
static cJSON *parse_line_with(const char *line, const char *const *mcp_keys, size_t n_mcp)
{
    size_t n = strlen(line);
    assert_true(n >= 2);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    for (size_t i = 0; i < n - 1; i++)
        assert_true((unsigned char)line[i] >= 0x20 && line[i] != 0x7F);
    assert_true(valid_utf8((const unsigned char *)line, n));
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(line, &end, 0);
    assert_non_null(j);
    assert_true(cJSON_IsObject(j));
    assert_string_equal(end, "\n");
    size_t k = 0, nk = sizeof(all_keys) / sizeof(all_keys[0]);
    for (cJSON *c = j->child; c; c = c->next, k++) {
        assert_true(k < nk + n_mcp);
        assert_string_equal(c->string, k < nk ? all_keys[k] : mcp_keys[k - nk]);
    }
    assert_int_equal(k, nk + n_mcp);
    return j;
}

static cJSON *parse_line(const char *line)
{
    return parse_line_with(line, NULL, 0);
}

static const char *str_of(cJSON *j, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_non_null(v);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static double num_of(cJSON *j, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_non_null(v);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static bool is_null(cJSON *j, const char *key)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, key));
}

static gw_token_usage_t usage = {.input = 120, .cached_input = 100, .output = 30, .total = 150, .present = true};

static gw_access_log_entry_t full_entry(void)
{
    return (gw_access_log_entry_t){
        .start_time_us = 1700000000123456LL,
        .method = GW_STR("POST"),
        .path = GW_STR("/v1/chat/completions?x=1"),
        .response_code = 200,
        .bytes_received = 512,
        .bytes_sent = 2048,
        .duration_ms = 1500,
        .upstream_duration_ms = 1480,
        .user_agent = GW_STR("OpenAI/Python 1.52.0"),
        .request_id = GW_STR("4b0e6f1a-8d7f-4c1e-9f0a-1d2b3c4d5e6f"),
        .upstream_host = GW_STR("10.0.0.7:443"),
        .upstream_cluster = GW_STR("openai"),
        .downstream_remote_address = GW_STR("127.0.0.1:51234"),
        .model_name = GW_STR("gpt-4o"),
        .model_name_override = GW_STR("gpt-4o-mini"),
        .backend_name = GW_STR("openai"),
        .response_model = GW_STR("gpt-4o-mini-2024-07-18"),
        .usage = &usage,
        .termination_details = GW_STR_NULL,
    };
}

/* ---- format -------------------------------------------------------------------------------- */

static void test_format_exact(void **state)
{
    gw_access_log_entry_t e = full_entry();
    char *line = format(&e);
    assert_string_equal(line, "{\"start_time\":\"2023-11-14T22:13:20.123Z\",\"method\":\"POST\","
                              "\"x-envoy-origin-path\":\"/v1/chat/completions?x=1\",\"response_code\":200,"
                              "\"bytes_received\":512,\"bytes_sent\":2048,\"duration\":1500,\"upstream_service_time\":1480,"
                              "\"user-agent\":\"OpenAI/Python 1.52.0\",\"x-request-id\":\"4b0e6f1a-8d7f-4c1e-9f0a-1d2b3c4d5e6f\","
                              "\"upstream_host\":\"10.0.0.7:443\",\"upstream_cluster\":\"openai\","
                              "\"downstream_remote_address\":\"127.0.0.1:51234\",\"genai_model_name\":\"gpt-4o\","
                              "\"genai_model_name_override\":\"gpt-4o-mini\",\"genai_backend_name\":\"openai\","
                              "\"genai_response_model\":\"gpt-4o-mini-2024-07-18\",\"genai_tokens_input\":120,"
                              "\"genai_tokens_output\":30,\"genai_tokens_total\":150,\"genai_tokens_cached_input\":100,"
                              "\"connection_termination_details\":null}\n");
    cJSON *j = parse_line(line);
    assert_string_equal(str_of(j, "method"), "POST");
    assert_true(num_of(j, "genai_tokens_total") == 150);
    assert_true(is_null(j, "connection_termination_details"));
    cJSON_Delete(j);
    free(line);
}

static void test_format_appends(void **state)
{
    /* The line is appended to what the buffer holds; a buffer too small gets nothing at all. */
    gw_access_log_entry_t e = full_entry();
    gw_buf_t b;
    gw_buf_init(&b, 100);
    gw_buf_append_lit(&b, "prefix");
    assert_int_equal(gw_access_log_format(&e, &b), GW_TOOBIG);
    assert_int_equal(b.len, 6);
    gw_buf_free(&b);
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "prefix");
    assert_int_equal(gw_access_log_format(&e, &b), GW_OK);
    assert_memory_equal(b.data, "prefix{\"start_time\":", 20);
    gw_buf_free(&b);
}

static void test_absent_fields_are_null(void **state)
{
    gw_access_log_entry_t e = {.start_time_us = 0, .upstream_duration_ms = -1, .usage = NULL};
    char *line = format(&e);
    cJSON *j = parse_line(line);
    static const char *const strings[] = {"method",           "x-envoy-origin-path",       "user-agent",
                                          "x-request-id",     "upstream_host",             "upstream_cluster",
                                          "downstream_remote_address", "genai_model_name", "genai_model_name_override",
                                          "genai_backend_name", "genai_response_model",    "connection_termination_details",
                                          "upstream_service_time", "genai_tokens_input",   "genai_tokens_output",
                                          "genai_tokens_total", "genai_tokens_cached_input"};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (!is_null(j, strings[i]))
            fail_msg("%s should be null", strings[i]);
    assert_string_equal(str_of(j, "start_time"), "1970-01-01T00:00:00.000Z");
    assert_true(num_of(j, "response_code") == 0);
    assert_true(num_of(j, "duration") == 0);
    cJSON_Delete(j);
    free(line);

    /* A usage record that the response never carried is absent too; a present zero is a zero. */
    gw_token_usage_t none = {.input = 7, .present = false}, zero = {.present = true};
    e.usage = &none;
    line = format(&e);
    j = parse_line(line);
    assert_true(is_null(j, "genai_tokens_input"));
    cJSON_Delete(j);
    free(line);
    e.usage = &zero;
    e.upstream_duration_ms = 0;
    line = format(&e);
    j = parse_line(line);
    assert_true(num_of(j, "genai_tokens_cached_input") == 0);
    assert_true(num_of(j, "upstream_service_time") == 0);
    cJSON_Delete(j);
    free(line);
}

static void test_start_time(void **state)
{
    static const struct {
        int64_t us;
        const char *want;
    } cases[] = {
        {1700000000123456LL, "2023-11-14T22:13:20.123Z"},
        {1700000000999999LL, "2023-11-14T22:13:20.999Z"}, /* truncated, never rounded into the next second */
        {0, "1970-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {951782400000000LL, "2000-02-29T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_access_log_entry_t e = {.start_time_us = cases[i].us, .upstream_duration_ms = -1};
        char *line = format(&e);
        cJSON *j = parse_line(line);
        assert_string_equal(str_of(j, "start_time"), cases[i].want);
        cJSON_Delete(j);
        free(line);
    }
    gw_access_log_entry_t e = {.start_time_us = INT64_MAX, .upstream_duration_ms = -1};
    char *line = format(&e);
    cJSON *j = parse_line(line);
    assert_true(is_null(j, "start_time"));
    cJSON_Delete(j);
    free(line);
}

/* ---- hostile strings ----------------------------------------------------------------------- */

static void test_hostile_strings(void **state)
{
    char controls[40];
    for (int c = 1; c < 0x20; c++)
        controls[c - 1] = (char)c;
    controls[31] = 0x7F;
    gw_access_log_entry_t e = full_entry();
    e.user_agent = GW_STR("evil\"},\"response_code\":999,\"x\":{\"\\ \n{\"injected\":true}");
    e.path = gw_str(controls, 32);
    /* Lone 0xff, overlong "/" (c0 af), a surrogate (ed a0 80), a truncated 3-byte sequence (e2 82),
     * code point above U+10FFFF (f4 90 80 80), then valid 2-, 3- and 4-byte characters. */
    e.model_name = GW_STR("a\xff"
                          "b\xc0\xaf"
                          "c\xed\xa0\x80"
                          "d\xe2\x82"
                          "e\xf4\x90\x80\x80"
                          "f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    e.request_id = GW_STR("</script><script>alert(1)</script>");
    char *line = format(&e);
    cJSON *j = parse_line(line);
    assert_string_equal(str_of(j, "user-agent"), "evil\"},\"response_code\":999,\"x\":{\"\\ \n{\"injected\":true}");
    assert_true(num_of(j, "response_code") == 200);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "x"));
    char want_controls[40];
    memcpy(want_controls, controls, 32);
    want_controls[32] = '\0';
    assert_string_equal(str_of(j, "x-envoy-origin-path"), want_controls);
    assert_string_equal(str_of(j, "genai_model_name"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD"
                                                        "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                                                        "d\xEF\xBF\xBD\xEF\xBF\xBD"
                                                        "e\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                                                        "f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_string_equal(str_of(j, "x-request-id"), "</script><script>alert(1)</script>");
    /* Short escapes where JSON has them, \u00XX for the rest, DEL included. */
    assert_non_null(strstr(line, "\\u0001\\u0002"));
    assert_non_null(strstr(line, "\\b\\t\\n\\u000b\\f\\r"));
    assert_non_null(strstr(line, "\\u001f\\u007f\""));
    cJSON_Delete(j);
    free(line);

    /* A NUL byte inside a value is escaped, not a terminator (cJSON cannot hold it: compare bytes). */
    gw_access_log_entry_t z = {.upstream_duration_ms = -1, .method = gw_str("GE\0T", 4)};
    line = format(&z);
    assert_non_null(strstr(line, "\"method\":\"GE\\u0000T\""));
    free(line);
}

/* ---- MCP fields ---------------------------------------------------------------------------- */

static const char *const mcp_all[] = {"mcp_request_id", "mcp_session_id", "mcp_method", "mcp_backend"};

/* A sealed session id looks like this: base64url of nonce, ciphertext and tag. */
#define SESSION_ID "AQHq3v9JkY0rT2mWcL8xZb4nQe7sVuPiGd1oKfhAyR6tC5MwXjE0lNgBpSzDaI3Hq"

static gw_access_log_entry_t mcp_entry(void)
{
    return (gw_access_log_entry_t){
        .start_time_us = 1700000000123456LL,
        .method = GW_STR("POST"),
        .path = GW_STR("/mcp"),
        .response_code = 200,
        .bytes_received = 120,
        .bytes_sent = 340,
        .duration_ms = 12,
        .upstream_duration_ms = 10,
        .user_agent = GW_STR("node"),
        .request_id = GW_STR("r-1"),
        .upstream_host = GW_STR("127.0.0.1:9000"),
        .upstream_cluster = GW_STR("github"),
        .downstream_remote_address = GW_STR("127.0.0.1:51234"),
        .mcp_request_id = GW_STR("\"call-7\""),
        .mcp_session_id = GW_STR(SESSION_ID),
        .mcp_method = GW_STR("tools/call"),
        .mcp_backend = GW_STR("github"),
    };
}

/* The first 16 hex digits of SHA-256, computed here with OpenSSL's one-shot SHA256 (not the
 * EVP path the log uses). */
static void sha256_16(const char *s, size_t n, char out[17])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, n, md);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void test_mcp_fields_exact(void **state)
{
    gw_access_log_entry_t e = mcp_entry();
    char *line = format(&e);
    char hash[17];
    sha256_16(SESSION_ID, strlen(SESSION_ID), hash);
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"start_time\":\"2023-11-14T22:13:20.123Z\",\"method\":\"POST\",\"x-envoy-origin-path\":\"/mcp\","
             "\"response_code\":200,\"bytes_received\":120,\"bytes_sent\":340,\"duration\":12,"
             "\"upstream_service_time\":10,\"user-agent\":\"node\",\"x-request-id\":\"r-1\","
             "\"upstream_host\":\"127.0.0.1:9000\",\"upstream_cluster\":\"github\","
             "\"downstream_remote_address\":\"127.0.0.1:51234\",\"genai_model_name\":null,"
             "\"genai_model_name_override\":null,\"genai_backend_name\":null,\"genai_response_model\":null,"
             "\"genai_tokens_input\":null,\"genai_tokens_output\":null,\"genai_tokens_total\":null,"
             "\"genai_tokens_cached_input\":null,\"connection_termination_details\":null,"
             "\"mcp_request_id\":\"call-7\",\"mcp_session_id\":\"%s\",\"mcp_method\":\"tools/call\","
             "\"mcp_backend\":\"github\"}\n",
             hash);
    assert_string_equal(line, want);
    cJSON *j = parse_line_with(line, mcp_all, 4);
    assert_string_equal(str_of(j, "mcp_session_id"), hash);
    cJSON_Delete(j);
    /* The raw id appears nowhere in the line, not even in part. */
    assert_null(strstr(line, SESSION_ID));
    assert_null(strstr(line, "AQHq3v9J"));
    free(line);
}

static void test_mcp_session_hash(void **state)
{
    /* FIPS 180-2 test vectors: SHA-256("abc") = ba7816bf 8f01cfea ..., SHA-256("") = e3b0c442 ... */
    char h[GW_ACCESS_LOG_SESSION_HASH_LEN + 1];
    gw_access_log_session_hash(GW_STR("abc"), h);
    assert_string_equal(h, "ba7816bf8f01cfea");
    gw_access_log_session_hash(GW_STR(""), h);
    assert_string_equal(h, "e3b0c44298fc1c14");
    gw_access_log_session_hash(GW_STR_NULL, h);
    assert_string_equal(h, "e3b0c44298fc1c14");
    /* Stable across calls (and so across replicas: no key, no per-process salt), different for
     * different ids, bytes after a NUL included. */
    char a[17], b[17];
    gw_access_log_session_hash(GW_STR(SESSION_ID), a);
    gw_access_log_session_hash(GW_STR(SESSION_ID), b);
    assert_string_equal(a, b);
    gw_access_log_session_hash(GW_STR(SESSION_ID "x"), b);
    assert_string_not_equal(a, b);
    gw_access_log_session_hash(gw_str("ab\0c", 4), a);
    gw_access_log_session_hash(gw_str("ab\0d", 4), b);
    assert_string_not_equal(a, b);

    /* Two lines of the same session carry the same value; the line never carries the id, even an
     * id made of characters the log would escape. */
    gw_access_log_entry_t e = mcp_entry();
    char *l1 = format(&e);
    e.mcp_method = GW_STR("ping");
    char *l2 = format(&e);
    cJSON *j1 = parse_line_with(l1, mcp_all, 4), *j2 = parse_line_with(l2, mcp_all, 4);
    assert_string_equal(str_of(j1, "mcp_session_id"), str_of(j2, "mcp_session_id"));
    cJSON_Delete(j1);
    cJSON_Delete(j2);
    free(l1);
    free(l2);
    e.mcp_session_id = GW_STR("s\"e\ncret");
    l1 = format(&e);
    assert_null(strstr(l1, "cret"));
    j1 = parse_line_with(l1, mcp_all, 4);
    sha256_16("s\"e\ncret", 8, a);
    assert_string_equal(str_of(j1, "mcp_session_id"), a);
    cJSON_Delete(j1);
    free(l1);
}

static void test_mcp_fields_absent_when_unset(void **state)
{
    /* An LLM entry: no mcp_ key at all (test_format_exact holds its bytes). */
    gw_access_log_entry_t llm = full_entry();
    char *line = format(&llm);
    assert_null(strstr(line, "mcp_"));
    free(line);
    gw_access_log_entry_t empty = {.upstream_duration_ms = -1, .mcp_method = gw_str("x", 0),
                                   .mcp_backend = gw_str(NULL, 5)};
    line = format(&empty);
    assert_null(strstr(line, "mcp_"));
    free(line);

    /* Each field on its own: present alone, in the template's place. */
    for (size_t i = 0; i < 4; i++) {
        gw_access_log_entry_t e = {.upstream_duration_ms = -1};
        gw_str_t *f[] = {&e.mcp_request_id, &e.mcp_session_id, &e.mcp_method, &e.mcp_backend};
        *f[i] = GW_STR("7");
        line = format(&e);
        cJSON_Delete(parse_line_with(line, &mcp_all[i], 1));
        free(line);
    }
    /* A notification: no id and no backend, the rest there. */
    gw_access_log_entry_t n = mcp_entry();
    n.mcp_request_id = GW_STR_NULL;
    n.mcp_backend = GW_STR_NULL;
    n.mcp_method = GW_STR("notifications/initialized");
    line = format(&n);
    cJSON *j = parse_line_with(line, &mcp_all[1], 2);
    assert_string_equal(str_of(j, "mcp_method"), "notifications/initialized");
    cJSON_Delete(j);
    free(line);
}

static void test_mcp_request_id_text(void **state)
{
    static const struct {
        const char *raw;
        const char *want; /* as read back by cJSON */
    } cases[] = {
        {"7", "7"},
        {"-12.5e3", "-12.5e3"}, /* a number: its text as sent */
        {"\"abc\"", "abc"},     /* a string: unescaped */
        {"\"a\\\"b\\\\c\\u00e9\\n\"", "a\"b\\c\xc3\xa9\n"},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"},
        {"\"\"", ""},           /* the empty string is an id */
        {"\"abc", "\"abc"},     /* not a JSON string after all: raw bytes */
        {"\"bad\\x\"", "\"bad\\x\""},
        {"\"gh__7\"", "gh__7"}, /* a wrapped server-to-client id is just text */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_access_log_entry_t e = {.upstream_duration_ms = -1, .mcp_request_id = gw_str_c(cases[i].raw)};
        char *line = format(&e);
        cJSON *j = parse_line_with(line, mcp_all, 1);
        assert_string_equal(str_of(j, "mcp_request_id"), cases[i].want);
        cJSON_Delete(j);
        free(line);
    }
    /* Long ids are cut like any field: a 200-byte string id is unescaped then cut; a 5000-byte one
     * is not even unescaped (written raw from its quote, then cut). */
    static char big[5000];
    memset(big, 'i', sizeof(big));
    big[0] = '"';
    big[199] = '"';
    big[sizeof(big) - 1] = '"';
    size_t lens[] = {200, sizeof(big)};
    for (size_t i = 0; i < 2; i++) {
        gw_access_log_entry_t e = {.upstream_duration_ms = -1, .mcp_request_id = gw_str(big, lens[i])};
        char *line = format(&e);
        cJSON *j = parse_line_with(line, mcp_all, 1);
        const char *v = str_of(j, "mcp_request_id");
        /* The budget counts escaped bytes: the raw id's leading quote takes two. */
        assert_int_equal(strlen(v), i == 0 ? 128 : 127);
        assert_string_equal(v + strlen(v) - 3, "...");
        assert_int_equal(v[0], i == 0 ? 'i' : '"');
        cJSON_Delete(j);
        free(line);
    }
}

static void test_mcp_hostile_and_long(void **state)
{
    gw_access_log_entry_t e = mcp_entry();
    e.mcp_method = GW_STR("tools/call\"},\"response_code\":1,\"x\":{\"\x01\x7f\xff");
    e.mcp_backend = GW_STR("gh\n\"back\\end\"");
    char *line = format(&e);
    cJSON *j = parse_line_with(line, mcp_all, 4);
    assert_string_equal(str_of(j, "mcp_method"), "tools/call\"},\"response_code\":1,\"x\":{\"\x01\x7f\xEF\xBF\xBD");
    assert_string_equal(str_of(j, "mcp_backend"), "gh\n\"back\\end\"");
    assert_true(num_of(j, "response_code") == 200);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "x"));
    cJSON_Delete(j);
    free(line);

    /* Budgets: method 64 bytes, backend 192; an MCP line gives the path 1024 bytes, not 1536. */
    static char big[3000];
    memset(big, 'm', sizeof(big));
    e.mcp_method = gw_str(big, sizeof(big));
    e.mcp_backend = gw_str(big, sizeof(big));
    e.path = gw_str(big, sizeof(big));
    line = format(&e);
    j = parse_line_with(line, mcp_all, 4);
    assert_int_equal(strlen(str_of(j, "mcp_method")), 64);
    assert_int_equal(strlen(str_of(j, "mcp_backend")), 192);
    assert_int_equal(strlen(str_of(j, "x-envoy-origin-path")), 1024);
    assert_string_equal(str_of(j, "x-envoy-origin-path") + 1021, "...");
    cJSON_Delete(j);
    free(line);
    gw_access_log_entry_t llm = full_entry();
    llm.path = gw_str(big, sizeof(big));
    line = format(&llm);
    j = parse_line(line);
    assert_int_equal(strlen(str_of(j, "x-envoy-origin-path")), 1536);
    cJSON_Delete(j);
    free(line);
}

/* ---- bounds -------------------------------------------------------------------------------- */

static void test_long_values_are_cut(void **state)
{
    static char big[20000];
    memset(big, 'a', sizeof(big));
    gw_access_log_entry_t e = full_entry();
    bool was_cut = false;
    size_t last_whole = 0;
    for (size_t n = 1; n < 3000; n += 7) {
        e.path = gw_str(big, n);
        char *line = format(&e);
        cJSON *j = parse_line(line);
        const char *p = str_of(j, "x-envoy-origin-path");
        size_t len = strlen(p);
        if (len == n && strspn(p, "a") == n) {
            assert_false(was_cut); /* once values are cut, longer ones are cut too */
            last_whole = n;
        } else {
            was_cut = true;
            assert_true(len <= n && len >= 4);
            assert_string_equal(p + len - 3, "...");
            assert_int_equal(strspn(p, "a"), len - 3);
            assert_true(len >= last_whole); /* the cut keeps as much as the budget allows */
        }
        cJSON_Delete(j);
        free(line);
    }
    assert_true(was_cut && last_whole >= 1024);

    /* The cut never splits a multi-byte character or an escape sequence. */
    static char mixed[6000];
    for (size_t i = 0; i + 3 <= sizeof(mixed); i += 3)
        memcpy(mixed + i, i % 2 ? "\xe2\x82\xac" : "\"\x01\\", 3);
    e.path = gw_str(mixed, sizeof(mixed));
    e.user_agent = gw_str(mixed + 1, sizeof(mixed) - 1);
    char *line = format(&e);
    cJSON *j = parse_line(line);
    const char *p = str_of(j, "x-envoy-origin-path");
    assert_string_equal(p + strlen(p) - 3, "...");
    assert_memory_equal(p, mixed, strlen(p) - 3);
    cJSON_Delete(j);
    free(line);
}

/* Every string at its worst (each byte a 6-byte \u00XX escape), every number at its widest: the
 * line still fits in PIPE_BUF, so one write(2) to a pipe is atomic. Then the same with every
 * mcp_* field at its worst too. */
static void test_worst_case_fits_pipe_buf(void **state)
{
    static char ctl[100000];
    gw_str_t s = gw_str(ctl, sizeof(ctl));
    gw_token_usage_t max = {.input = UINT64_MAX, .cached_input = UINT64_MAX, .output = UINT64_MAX,
                            .total = UINT64_MAX, .present = true};
    gw_access_log_entry_t e = {
        .start_time_us = 253402300799999999LL, /* 9999-12-31T23:59:59.999Z */
        .method = s, .path = s, .response_code = INT32_MIN, .bytes_received = UINT64_MAX, .bytes_sent = UINT64_MAX,
        .duration_ms = UINT64_MAX, .upstream_duration_ms = INT64_MAX, .user_agent = s, .request_id = s,
        .upstream_host = s, .upstream_cluster = s, .downstream_remote_address = s, .model_name = s,
        .model_name_override = s, .backend_name = s, .response_model = s, .usage = &max, .termination_details = s,
    };
    for (int with_mcp = 0; with_mcp < 2; with_mcp++) {
        size_t n_mcp = 0;
        if (with_mcp) {
            e.mcp_request_id = e.mcp_session_id = e.mcp_method = e.mcp_backend = s;
            n_mcp = 4;
        }
        memset(ctl, 0x01, sizeof(ctl));
        char *line = format(&e);
        size_t n = strlen(line);
        print_message("worst-case line%s: %zu bytes (PIPE_BUF %d)\n", with_mcp ? " with mcp_*" : "", n, PIPE_BUF);
        assert_true(n <= PIPE_BUF);
        cJSON *j = parse_line_with(line, mcp_all, n_mcp);
        assert_string_equal(str_of(j, "start_time"), "9999-12-31T23:59:59.999Z");
        for (cJSON *c = j->child; c; c = c->next)
            if (cJSON_IsString(c) && strcmp(c->string, "start_time") != 0 && strcmp(c->string, "mcp_session_id") != 0)
                assert_string_equal(c->valuestring + strlen(c->valuestring) - 3, "...");
        cJSON_Delete(j);
        free(line);
        /* The same with 2-byte escapes and with 3-byte replacement characters. */
        memset(ctl, '"', sizeof(ctl));
        line = format(&e);
        assert_true(strlen(line) <= PIPE_BUF);
        free(line);
        memset(ctl, 0xff, sizeof(ctl));
        line = format(&e);
        assert_true(strlen(line) <= PIPE_BUF);
        cJSON_Delete(parse_line_with(line, mcp_all, n_mcp));
        free(line);
    }
}

/* ---- writing ------------------------------------------------------------------------------- */

struct collector {
    int fd;
    gw_buf_t data;
    size_t chunk;
};

static void *collect(void *arg)
{
    struct collector *c = arg;
    char buf[65536];
    for (;;) {
        ssize_t n = read(c->fd, buf, c->chunk ? c->chunk : sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        gw_buf_append(&c->data, buf, (size_t)n);
    }
    return NULL;
}

/* Checks that data is exactly `lines` whole JSON lines whose request ids are 0..lines-1 once each. */
static void check_lines(gw_buf_t *data, size_t lines)
{
    gw_buf_cstr(data);
    bool *seen = calloc(lines, 1);
    size_t count = 0;
    char *p = data->data;
    while (*p) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char save = nl[1];
        nl[1] = '\0';
        cJSON *j = parse_line(p);
        nl[1] = save;
        unsigned long id = strtoul(str_of(j, "x-request-id"), NULL, 10);
        assert_true(id < lines && !seen[id]);
        seen[id] = true;
        cJSON_Delete(j);
        count++;
        p = nl + 1;
    }
    assert_int_equal(count, lines);
    free(seen);
}

#define THREADS 4
#define LINES_PER_THREAD 1500

struct writer_arg {
    int fd;
    int first_id;
    int count;
    size_t pad; /* user-agent length, to make lines long */
    atomic_int failures;
};

static void *writer(void *arg)
{
    struct writer_arg *w = arg;
    char pad[4000];
    memset(pad, 'u', sizeof(pad));
    for (int i = 0; i < w->count; i++) {
        char id[32];
        snprintf(id, sizeof(id), "%d", w->first_id + i);
        gw_access_log_entry_t e = full_entry();
        e.request_id = gw_str_c(id);
        e.user_agent = gw_str(pad, w->pad + (size_t)(i % 300));
        if (gw_access_log_write_fd(w->fd, &e) != GW_OK)
            atomic_fetch_add(&w->failures, 1); /* cmocka asserts only on the main thread */
    }
    return NULL;
}

static void test_concurrent_writers_pipe(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct collector c = {.fd = p[0]};
    gw_buf_init(&c.data, GW_BUF_UNLIMITED);
    pthread_t reader, threads[THREADS];
    struct writer_arg args[THREADS];
    assert_int_equal(pthread_create(&reader, NULL, collect, &c), 0);
    for (int t = 0; t < THREADS; t++) {
        args[t] = (struct writer_arg){p[1], t * LINES_PER_THREAD, LINES_PER_THREAD, 200, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, writer, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(atomic_load(&args[t].failures), 0);
    }
    close(p[1]);
    pthread_join(reader, NULL);
    close(p[0]);
    check_lines(&c.data, THREADS * LINES_PER_THREAD);
    gw_buf_free(&c.data);
}

/* Test seam: this executable's write() shadows libc's (the library is linked statically into it),
 * so the writer can be shown, on one chosen fd, a short write, EINTR and EAGAIN in turn, as a
 * socket or a full disk can give them. Every other fd goes straight to the system call. */
static atomic_int chaos_fd = -1;
static atomic_uint chaos_calls;

ssize_t write(int fd, const void *p, size_t n)
{
    if (fd >= 0 && fd == atomic_load(&chaos_fd)) {
        unsigned k = atomic_fetch_add(&chaos_calls, 1);
        if (k % 5 == 1) {
            errno = EINTR;
            return -1;
        }
        if (k % 5 == 3) {
            errno = EAGAIN; /* the pipe has room: poll() answers at once */
            return -1;
        }
        n = GW_MIN(n, 97 + k % 7);
    }
    return syscall(SYS_write, fd, p, n);
}

/* Lines accepted a few bytes at a time by four concurrent writers still arrive whole and unmixed. */
static void test_short_writes_do_not_interleave(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct collector c = {.fd = p[0]};
    gw_buf_init(&c.data, GW_BUF_UNLIMITED);
    pthread_t reader, threads[THREADS];
    struct writer_arg args[THREADS];
    atomic_store(&chaos_calls, 0);
    atomic_store(&chaos_fd, p[1]);
    assert_int_equal(pthread_create(&reader, NULL, collect, &c), 0);
    for (int t = 0; t < THREADS; t++) {
        args[t] = (struct writer_arg){p[1], t * 200, 200, 300, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, writer, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(atomic_load(&args[t].failures), 0);
    }
    atomic_store(&chaos_fd, -1);
    close(p[1]);
    pthread_join(reader, NULL);
    close(p[0]);
    check_lines(&c.data, THREADS * 200);
    /* The seam was really in the way: every line took several calls. */
    assert_true(atomic_load(&chaos_calls) > THREADS * 200 * 5);
    gw_buf_free(&c.data);
}

struct late_reader {
    int fd;
    gw_buf_t data;
};

static void *drain_later(void *arg)
{
    struct late_reader *r = arg;
    usleep(100000);
    char buf[65536];
    ssize_t n;
    while ((n = read(r->fd, buf, sizeof(buf))) > 0)
        gw_buf_append(&r->data, buf, (size_t)n);
    return NULL;
}

/* A full non-blocking stdout (as a libuv tty leaves it): write(2) says EAGAIN, the writer waits
 * in poll() until the reader makes room, and the line goes out whole. */
static void test_full_nonblocking_pipe_waits(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char fill[4096];
    memset(fill, 'F', sizeof(fill));
    size_t filled = 0;
    ssize_t n;
    while ((n = write(p[1], fill, sizeof(fill))) > 0)
        filled += (size_t)n;
    struct late_reader r = {.fd = p[0]};
    gw_buf_init(&r.data, GW_BUF_UNLIMITED);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain_later, &r), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gw_access_log_entry_t e = full_entry();
    e.request_id = GW_STR("0");
    assert_int_equal(gw_access_log_write_fd(p[1], &e), GW_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(p[1]);
    pthread_join(t, NULL);
    close(p[0]);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited > 0.05);
    assert_true(r.data.len > filled);
    gw_buf_consume(&r.data, filled);
    check_lines(&r.data, 1);
    gw_buf_free(&r.data);
}

static void on_signal(int sig)
{
    (void)sig;
}

struct blocked {
    int fd;
    int rc;
};

static void *blocked_writer(void *arg)
{
    struct blocked *b = arg;
    gw_access_log_entry_t e = full_entry();
    e.request_id = GW_STR("0");
    b->rc = gw_access_log_write_fd(b->fd, &e);
    return NULL;
}

/* A writer blocked on a full pipe gets signals whose handler does not restart system calls:
 * write(2) fails with EINTR and the line must still be written once, whole. */
static void test_eintr_is_retried(void **state)
{
    struct sigaction sa = {.sa_handler = on_signal}, old;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART */
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char fill[4096];
    memset(fill, 'F', sizeof(fill));
    size_t filled = 0;
    for (;;) {
        ssize_t n = write(p[1], fill, sizeof(fill));
        if (n <= 0)
            break;
        filled += (size_t)n;
    }
    fcntl(p[1], F_SETFL, 0); /* blocking again, and full */
    struct blocked b = {.fd = p[1], .rc = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blocked_writer, &b), 0);
    for (int i = 0; i < 5; i++) {
        usleep(20000);
        pthread_kill(t, SIGUSR1);
    }
    /* Drain the filler, then collect the line. */
    char buf[8192];
    size_t drained = 0;
    while (drained < filled) {
        ssize_t n = read(p[0], buf, GW_MIN(sizeof(buf), filled - drained));
        assert_true(n > 0);
        drained += (size_t)n;
    }
    pthread_join(t, NULL);
    assert_int_equal(b.rc, GW_OK);
    close(p[1]);
    gw_buf_t data;
    gw_buf_init(&data, GW_BUF_UNLIMITED);
    ssize_t n;
    while ((n = read(p[0], buf, sizeof(buf))) > 0)
        gw_buf_append(&data, buf, (size_t)n);
    close(p[0]);
    check_lines(&data, 1);
    gw_buf_free(&data);
    sigaction(SIGUSR1, &old, NULL);
}

static void test_write_errors(void **state)
{
    gw_access_log_entry_t e = full_entry();
    assert_int_equal(gw_access_log_write_fd(-1, &e), GW_ERROR);
    assert_int_equal(gw_access_log_write_fd(STDOUT_FILENO, NULL), GW_ERROR);
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN); /* the gateway ignores SIGPIPE; a reader gone is then EPIPE */
    assert_int_equal(gw_access_log_write_fd(p[1], &e), GW_ERROR);
    close(p[1]);
}

/* gw_access_log_write goes to stdout, and nowhere when disabled. */
static void test_stdout_and_enabled_flag(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(p[1], STDOUT_FILENO) >= 0);
    gw_access_log_entry_t e = full_entry();
    gw_access_log_enabled = false;
    e.request_id = GW_STR("1");
    gw_access_log_write(&e);
    gw_access_log_enabled = true;
    e.request_id = GW_STR("0");
    gw_access_log_write(&e);
    gw_access_log_write(NULL);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(p[1]);
    gw_buf_t data;
    gw_buf_init(&data, GW_BUF_UNLIMITED);
    char buf[8192];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof(buf))) > 0)
        gw_buf_append(&data, buf, (size_t)n);
    close(p[0]);
    check_lines(&data, 1);
    gw_buf_free(&data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_exact),
        cmocka_unit_test(test_format_appends),
        cmocka_unit_test(test_absent_fields_are_null),
        cmocka_unit_test(test_start_time),
        cmocka_unit_test(test_hostile_strings),
        cmocka_unit_test(test_mcp_fields_exact),
        cmocka_unit_test(test_mcp_session_hash),
        cmocka_unit_test(test_mcp_fields_absent_when_unset),
        cmocka_unit_test(test_mcp_request_id_text),
        cmocka_unit_test(test_mcp_hostile_and_long),
        cmocka_unit_test(test_long_values_are_cut),
        cmocka_unit_test(test_worst_case_fits_pipe_buf),
        cmocka_unit_test(test_concurrent_writers_pipe),
        cmocka_unit_test(test_short_writes_do_not_interleave),
        cmocka_unit_test(test_full_nonblocking_pipe_waits),
        cmocka_unit_test(test_eintr_is_retried),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_stdout_and_enabled_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
