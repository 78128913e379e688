/* OpenAI passthrough translator: request path and splice, and usage observed from bodies of any
 * size (whole, windowed, gzip) and from streams, without changing what the client receives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <zlib.h>

#include "translate/translate.h"

static gw_translator_t *feed(const char *ctype, const char *cenc, const char *body, size_t len, size_t chunk)
{
    gw_translator_t *t = gw_translator_new(GW_OP_EMBEDDINGS, GW_SCHEMA_OPENAI);
    assert_non_null(t);
    t->vt->response_head(t, 200, gw_str_c(ctype), gw_str_c(cenc));
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        assert_int_equal(t->vt->response_body(t, body + off, n, false, NULL), GW_OK);
    }
    t->vt->response_body(t, NULL, 0, true, NULL);
    return t;
}

/* A large embeddings-shaped body: data first, model and usage at the end, as OpenAI sends it. */
static char *big_embeddings(size_t vectors, size_t *len)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < vectors; i++) {
        if (i)
            gw_buf_append_byte(&b, ',');
        gw_buf_appendf(&b, "{\"object\":\"embedding\",\"index\":%zu,\"embedding\":[", i);
        for (int k = 0; k < 256; k++)
            gw_buf_appendf(&b, "%s0.0123%d", k ? "," : "", k % 10);
        gw_buf_append_lit(&b, "]}");
    }
    gw_buf_append_lit(&b, "],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":4242,\"total_tokens\":4242}}");
    return gw_buf_detach(&b, len);
}

static void test_windowed_large_body(void **state)
{
    (void)state;
    size_t len;
    char *body = big_embeddings(2000, &len); /* several MB: beyond the whole-body limit */
    assert_true(len > (4u << 20));
    size_t chunks[] = {1, 7, 1400, 65536, 1 << 20};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        if (chunks[c] == 1 && len > (8u << 20))
            continue;
        gw_translator_t *t = feed("application/json", "", body, len, chunks[c]);
        assert_true(t->usage.present);
        assert_int_equal(t->usage.input, 4242);
        assert_int_equal(t->usage.total, 4242);
        assert_true(gw_str_eq_lit(gw_buf_str(&t->response_model), "text-embedding-3-small"));
        gw_translator_free(t);
    }
    free(body);
}

static void test_gzip_large_body(void **state)
{
    (void)state;
    size_t len;
    char *body = big_embeddings(1500, &len);
    uLongf zlen = compressBound(len) + 64;
    unsigned char *z = malloc(zlen);
    z_stream zs = {0};
    deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (unsigned char *)body;
    zs.avail_in = (uInt)len;
    zs.next_out = z;
    zs.avail_out = (uInt)zlen;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t glen = zs.total_out;
    deflateEnd(&zs);
    gw_translator_t *t = feed("application/json", "gzip", (char *)z, glen, 4096);
    assert_true(t->usage.present);
    assert_int_equal(t->usage.input, 4242);
    gw_translator_free(t);
    free(z);
    free(body);
}

static void test_request_path_and_override(void **state)
{
    (void)state;
    gw_backend_t b = {0};
    b.schema = GW_SCHEMA_OPENAI;
    b.schema_version = "v1beta/openai/";
    gw_translator_t *t = gw_translator_new(GW_OP_CHAT, GW_SCHEMA_OPENAI);
    const char *body = "{\"model\" : \"a\\u0062\", \"n\":123456789012345678901234567890}";
    gw_translate_request_t in = {.op = GW_OP_CHAT, .body = gw_str_c(body), .backend = &b};
    in.model_raw = gw_str(strstr(body, "\"a\\"), 9);
    in.model_override = "gpt-x";
    gw_translate_output_t out;
    gw_translate_output_init(&out);
    const char *err = NULL;
    assert_int_equal(t->vt->request(t, &in, &out, &err), GW_OK);
    assert_true(gw_str_eq_lit(gw_buf_str(&out.path), "/v1beta/openai/chat/completions"));
    assert_true(out.body_changed);
    assert_true(gw_str_eq_lit(gw_buf_str(&out.body), "{\"model\" : \"gpt-x\", \"n\":123456789012345678901234567890}"));
    gw_translate_output_free(&out);
    gw_translator_free(t);
}

static void test_azure_path(void **state)
{
    (void)state;
    gw_backend_t b = {0};
    b.schema = GW_SCHEMA_AZURE_OPENAI;
    b.schema_version = "2025-01-01-preview";
    gw_translator_t *t = gw_translator_new(GW_OP_EMBEDDINGS, GW_SCHEMA_AZURE_OPENAI);
    const char *body = "{\"model\":\"my deploy/1\",\"input\":\"x\"}";
    gw_translate_request_t in = {.op = GW_OP_EMBEDDINGS, .body = gw_str_c(body), .backend = &b};
    in.model_raw = gw_str(strstr(body, "\"my"), 13);
    gw_translate_output_t out;
    gw_translate_output_init(&out);
    const char *err = NULL;
    assert_int_equal(t->vt->request(t, &in, &out, &err), GW_OK);
    assert_true(gw_str_eq_lit(gw_buf_str(&out.path),
                              "/openai/deployments/my%20deploy%2F1/embeddings?api-version=2025-01-01-preview"));
    assert_false(out.body_changed);
    gw_translate_output_free(&out);
    gw_translator_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windowed_large_body),
        cmocka_unit_test(test_gzip_large_body),
        cmocka_unit_test(test_request_path_and_override),
        cmocka_unit_test(test_azure_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
