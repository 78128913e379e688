/* Unit tests for translate/openai_usage: handwritten bodies and chunks for each usage shape and
 * edge, then every recorded OpenAI / Azure OpenAI response (bodies, SSE streams, chunk lists)
 * checked against the numbers cJSON reads from the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec/sse.h"
#include "core/json.h"
#include "translate/openai_usage.h"
#include "testutil.h"

#include <cjson/cJSON.h>

#define S(lit) GW_STR(lit)

typedef struct {
    uint64_t input, cached, creation, output, reasoning, total;
    bool present;
} want_t;

static void assert_usage(const gw_token_usage_t *u, want_t w)
{
    if (u->present != w.present || u->input != w.input || u->cached_input != w.cached ||
        u->cache_creation != w.creation || u->output != w.output || u->reasoning != w.reasoning || u->total != w.total)
        printf("usage: present %d in %llu cached %llu creation %llu out %llu reasoning %llu total %llu\n", u->present,
               (unsigned long long)u->input, (unsigned long long)u->cached_input,
               (unsigned long long)u->cache_creation, (unsigned long long)u->output,
               (unsigned long long)u->reasoning, (unsigned long long)u->total);
    assert_int_equal(u->present, w.present);
    assert_true(u->input == w.input);
    assert_true(u->cached_input == w.cached);
    assert_true(u->cache_creation == w.creation);
    assert_true(u->output == w.output);
    assert_true(u->reasoning == w.reasoning);
    assert_true(u->total == w.total);
}

static void check_body(gw_str_t body, int rc, want_t w, const char *model)
{
    gw_token_usage_t u;
    memset(&u, 0xab, sizeof(u)); /* garbage in: from_body must reset it */
    gw_buf_t m;
    gw_buf_init(&m, 256);
    gw_buf_append_lit(&m, "stale");
    assert_int_equal(gw_openai_usage_from_body(body, &u, &m), rc);
    if (rc == GW_OK) {
        assert_usage(&u, w);
        assert_true(gw_str_eq(gw_buf_str(&m), gw_str_c(model)));
    }
    gw_buf_free(&m);
}

static void test_body_shapes(void **state)
{
    (void)state;
    /* chat with every detail */
    check_body(S("{\"id\":\"x\",\"model\":\"gpt-4o-2024-08-06\",\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":50,"
                 "\"total_tokens\":150,\"prompt_tokens_details\":{\"cached_tokens\":64,\"audio_tokens\":0},"
                 "\"completion_tokens_details\":{\"reasoning_tokens\":32,\"audio_tokens\":0}}}"),
               GW_OK, (want_t){100, 64, 0, 50, 32, 150, true}, "gpt-4o-2024-08-06");
    /* gpt-5.x: tokens written to the prompt cache */
    check_body(S("{\"usage\":{\"prompt_tokens\":4020,\"completion_tokens\":4,\"total_tokens\":4024,"
                 "\"prompt_tokens_details\":{\"audio_tokens\":0,\"cache_write_tokens\":4012,\"cached_tokens\":0}}}"),
               GW_OK, (want_t){4020, 0, 4012, 4, 0, 4024, true}, "");
    /* embeddings */
    check_body(S("{\"object\":\"list\",\"data\":[{\"embedding\":[0.1,-0.2]}],\"model\":\"text-embedding-3-small\","
                 "\"usage\":{\"prompt_tokens\":7,\"total_tokens\":7}}"),
               GW_OK, (want_t){7, 0, 0, 0, 0, 7, true}, "text-embedding-3-small");
    /* images (gpt-image-1) */
    check_body(S("{\"created\":1,\"data\":[{\"b64_json\":\"AAAA\"}],\"usage\":{\"total_tokens\":4300,\"input_tokens\":50,"
                 "\"output_tokens\":4250,\"input_tokens_details\":{\"text_tokens\":40,\"image_tokens\":10,\"cached_tokens\":8}}}"),
               GW_OK, (want_t){50, 8, 0, 4250, 0, 4300, true}, "");
    /* Responses-style reasoning detail */
    check_body(S("{\"usage\":{\"input_tokens\":5,\"output_tokens\":9,\"output_tokens_details\":{\"reasoning_tokens\":4}}}"),
               GW_OK, (want_t){5, 0, 0, 9, 4, 14, true}, "");
    /* total absent: input + output */
    check_body(S("{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}"), GW_OK, (want_t){3, 0, 0, 4, 0, 7, true}, "");
    /* empty usage object: present, all zero */
    check_body(S("{\"usage\":{}}"), GW_OK, (want_t){0, 0, 0, 0, 0, 0, true}, "");
    /* no usage, null usage, usage of the wrong type */
    check_body(S("{\"model\":\"m\"}"), GW_OK, (want_t){0}, "m");
    check_body(S("{\"usage\":null,\"model\":\"m\"}"), GW_OK, (want_t){0}, "m");
    check_body(S("{\"usage\":42}"), GW_OK, (want_t){0}, "");
    check_body(S("{\"usage\":[1,2]}"), GW_OK, (want_t){0}, "");
    check_body(S("{}"), GW_OK, (want_t){0}, "");
    /* only the top-level usage and model count */
    check_body(S("{\"choices\":[{\"usage\":{\"prompt_tokens\":99},\"model\":\"inner\"}],\"x\":{\"usage\":{\"prompt_tokens\":98}},"
                 "\"note\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":97}\"}"),
               GW_OK, (want_t){0}, "");
    /* odd counters: null, negative, fractional, too big count as 0; integral forms are read */
    check_body(S("{\"usage\":{\"prompt_tokens\":null,\"completion_tokens\":-3,\"total_tokens\":1.5,"
                 "\"prompt_tokens_details\":null,\"completion_tokens_details\":{\"reasoning_tokens\":99999999999999999999}}}"),
               GW_OK, (want_t){0, 0, 0, 0, 0, 0, true}, "");
    check_body(S("{\"usage\":{\"prompt_tokens\":1.2e1,\"completion_tokens\":3.0,\"total_tokens\":\"99\"}}"), GW_OK,
               (want_t){12, 0, 0, 3, 0, 15, true}, "");
    /* duplicate members: the last one wins, as with JSON.parse in the SDKs */
    check_body(S("{\"usage\":{\"prompt_tokens\":1},\"model\":\"a\",\"usage\":{\"prompt_tokens\":2},\"model\":\"b\"}"), GW_OK,
               (want_t){2, 0, 0, 0, 0, 2, true}, "b");
    /* escaped keys and model */
    check_body(S("{\"mod\\u0065l\":\"gpt\\u002d4o \\u2603\",\"\\u0075sage\":{\"prompt_tok\\u0065ns\":5}}"), GW_OK,
               (want_t){5, 0, 0, 0, 0, 5, true}, "gpt-4o \xe2\x98\x83");
    /* model that is not a usable string: left empty */
    check_body(S("{\"model\":\"\"}"), GW_OK, (want_t){0}, "");
    check_body(S("{\"model\":null}"), GW_OK, (want_t){0}, "");
    check_body(S("{\"model\":7}"), GW_OK, (want_t){0}, "");
    check_body(S("{\"model\":\"bad\\ud800\"}"), GW_OK, (want_t){0}, "");
    /* text content is not validated: a lone surrogate in generated text keeps the usage */
    check_body(S("{\"choices\":[{\"text\":\"\\ud83d\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}"), GW_OK,
               (want_t){1, 0, 0, 1, 0, 2, true}, "");
    /* whitespace around and inside */
    check_body(S(" \n{ \"usage\" : { \"prompt_tokens\" : 2 , \"completion_tokens\" : 3 } } \n"), GW_OK,
               (want_t){2, 0, 0, 3, 0, 5, true}, "");
    /* not a JSON object */
    const char *bad[] = {"", " ", "[]", "null", "\"x\"", "12", "{", "{\"usage\":{\"prompt_tokens\":1}", "{} x", "{}{}",
                         "{\"a\" 1}", "{\"usage\":{\"prompt_tokens\" 1}}", "data: {}"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++)
        check_body(gw_str_c(bad[i]), GW_EINVAL, (want_t){0}, "");

    /* model is optional, and a model too long for the caller's buffer is left out */
    gw_token_usage_t u;
    assert_int_equal(gw_openai_usage_from_body(S("{\"model\":\"m\",\"usage\":{\"prompt_tokens\":1}}"), &u, NULL), GW_OK);
    assert_true(u.present && u.input == 1);
    gw_buf_t small;
    gw_buf_init(&small, 4);
    assert_int_equal(gw_openai_usage_from_body(S("{\"model\":\"longer-than-four\"}"), &u, &small), GW_OK);
    assert_int_equal(small.len, 0);
    gw_buf_free(&small);
}

static void test_chunks(void **state)
{
    (void)state;
    gw_token_usage_t u = {0};
    gw_buf_t m;
    gw_buf_init(&m, 256);
    /* Azure's first chunk: empty model, no usage */
    assert_int_equal(gw_openai_usage_from_chunk(S("{\"choices\":[],\"model\":\"\",\"prompt_filter_results\":[]}"), &u, &m),
                     GW_OK);
    assert_false(u.present);
    assert_int_equal(m.len, 0);
    assert_int_equal(gw_openai_usage_from_chunk(S("{\"model\":\"gpt-5-nano\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}],"
                                                  "\"usage\":null}"),
                                                &u, &m),
                     GW_OK);
    assert_false(u.present);
    assert_true(gw_str_eq(gw_buf_str(&m), S("gpt-5-nano")));
    /* a chunk without model keeps the one we have */
    assert_int_equal(gw_openai_usage_from_chunk(S("{\"choices\":[]}"), &u, &m), GW_OK);
    assert_true(gw_str_eq(gw_buf_str(&m), S("gpt-5-nano")));
    /* cumulative usage on several chunks: each overwrites, nothing accumulates */
    assert_int_equal(gw_openai_usage_from_chunk(S("{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1}}"), &u, &m), GW_OK);
    assert_usage(&u, (want_t){10, 0, 0, 1, 0, 11, true});
    assert_int_equal(gw_openai_usage_from_chunk(S("{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,"
                                                  "\"prompt_tokens_details\":{\"cached_tokens\":2},"
                                                  "\"completion_tokens_details\":{\"reasoning_tokens\":3}}}"),
                                                &u, &m),
                     GW_OK);
    assert_usage(&u, (want_t){10, 2, 0, 5, 3, 15, true});
    /* a later usage:null chunk does not erase it */
    assert_int_equal(gw_openai_usage_from_chunk(S("{\"usage\":null,\"model\":\"other\"}"), &u, &m), GW_OK);
    assert_usage(&u, (want_t){10, 2, 0, 5, 3, 15, true});
    assert_true(gw_str_eq(gw_buf_str(&m), S("other")));
    /* not an object: everything untouched */
    const char *bad[] = {"[DONE]", "", "{\"usage\":{\"prompt_tokens\":1}", "{\"model\":\"x\"} junk"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        assert_int_equal(gw_openai_usage_from_chunk(gw_str_c(bad[i]), &u, &m), GW_EINVAL);
        assert_usage(&u, (want_t){10, 2, 0, 5, 3, 15, true});
        assert_true(gw_str_eq(gw_buf_str(&m), S("other")));
    }
    /* model NULL is fine */
    assert_int_equal(gw_openai_usage_from_chunk(S("{\"model\":\"x\"}"), &u, NULL), GW_OK);
    gw_buf_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * Recorded traffic. The expected numbers come from cJSON, a different parser, reading the bytes
 * on its own; stream framing is split here with plain line handling, not with codec/sse.
 */

typedef struct {
    want_t w;
    const char *model; /* borrowed from the cJSON tree */
} expect_t;

static uint64_t num_at(const cJSON *obj, const char *a, const char *b, bool *found)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, a);
    if (b && cJSON_IsObject(v))
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    else if (b)
        v = NULL;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0)
        return 0;
    if (found)
        *found = true;
    return (uint64_t)v->valuedouble;
}

static want_t expected_usage(const cJSON *usage)
{
    want_t w = {.present = true};
    bool has_prompt = false, has_completion = false, has_total = false;
    w.input = num_at(usage, "prompt_tokens", NULL, &has_prompt);
    if (!has_prompt)
        w.input = num_at(usage, "input_tokens", NULL, NULL);
    w.output = num_at(usage, "completion_tokens", NULL, &has_completion);
    if (!has_completion)
        w.output = num_at(usage, "output_tokens", NULL, NULL);
    w.total = num_at(usage, "total_tokens", NULL, &has_total);
    if (!has_total)
        w.total = w.input + w.output;
    w.cached = num_at(usage, "prompt_tokens_details", "cached_tokens", NULL) +
               num_at(usage, "input_tokens_details", "cached_tokens", NULL);
    w.creation = num_at(usage, "prompt_tokens_details", "cache_write_tokens", NULL);
    w.reasoning = num_at(usage, "completion_tokens_details", "reasoning_tokens", NULL) +
                  num_at(usage, "output_tokens_details", "reasoning_tokens", NULL);
    return w;
}

/* Updates *e from one parsed payload, as a stream consumer would: the last non-null usage and the
 * last non-empty model. */
static void expect_from_payload(const cJSON *root, expect_t *e)
{
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (cJSON_IsObject(usage))
        e->w = expected_usage(usage);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsString(model) && model->valuestring[0])
        e->model = model->valuestring;
}

typedef struct {
    size_t bodies, streams, chunk_lists, with_usage, without_usage, non2xx;
    size_t chat, chat_stream_usage, cached, reasoning, cache_write, emb_float, emb_base64, legacy, legacy_stream,
        legacy_stream_usage, images, azure;
} stats_t;

typedef struct {
    gw_token_usage_t u;
    gw_buf_t model;
    size_t chunks;
} stream_obs_t;

static int on_chunk(void *ud, const gw_sse_event_t *ev)
{
    stream_obs_t *o = ud;
    if (ev->data.len == 0 || gw_str_eq_lit(ev->data, "[DONE]"))
        return GW_OK;
    o->chunks++;
    int rc = gw_openai_usage_from_chunk(ev->data, &o->u, &o->model);
    if (rc != GW_OK)
        printf("chunk rejected: %.*s\n", (int)GW_MIN(ev->data.len, 200), ev->data.base);
    assert_int_equal(rc, GW_OK);
    return GW_OK;
}

static void compare(const char *what, const gw_token_usage_t *u, const gw_buf_t *model, const expect_t *e)
{
    bool ok = u->present == e->w.present && u->input == e->w.input && u->output == e->w.output &&
              u->total == e->w.total && u->cached_input == e->w.cached && u->reasoning == e->w.reasoning &&
              u->cache_creation == e->w.creation && gw_str_eq(gw_buf_str(model), gw_str_c(e->model ? e->model : ""));
    if (!ok)
        printf("MISMATCH %s (model got '%.*s' want '%s')\n", what, (int)model->len, model->data ? model->data : "",
               e->model ? e->model : "");
    assert_usage(u, e->w);
    assert_true(gw_str_eq(gw_buf_str(model), gw_str_c(e->model ? e->model : "")));
}

static void classify(const char *path, const cJSON *root, const expect_t *e, bool stream, stats_t *st)
{
    const cJSON *obj = root ? cJSON_GetObjectItemCaseSensitive(root, "object") : NULL;
    const char *o = cJSON_IsString(obj) ? obj->valuestring : "";
    if (strstr(path, "/azure-openai/"))
        st->azure++;
    if (strcmp(o, "chat.completion") == 0)
        st->chat++;
    if (strcmp(o, "chat.completion.chunk") == 0 && e->w.present)
        st->chat_stream_usage++;
    if (strcmp(o, "text_completion") == 0) {
        if (stream) {
            st->legacy_stream++;
            st->legacy_stream_usage += e->w.present;
        } else {
            st->legacy++;
        }
    }
    if (strcmp(o, "list") == 0) {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
        const cJSON *first = cJSON_IsArray(data) ? cJSON_GetArrayItem(data, 0) : NULL;
        const cJSON *emb = first ? cJSON_GetObjectItemCaseSensitive(first, "embedding") : NULL;
        if (cJSON_IsArray(emb))
            st->emb_float++;
        else if (cJSON_IsString(emb))
            st->emb_base64++;
    }
    if (strstr(path, "/images/"))
        st->images++;
    st->cached += e->w.cached > 0;
    st->reasoning += e->w.reasoning > 0;
    st->cache_write += e->w.creation > 0;
    if (e->w.present)
        st->with_usage++;
    else
        st->without_usage++;
}

static void check_json_body(const char *path, bool is_2xx, stats_t *st)
{
    size_t n = 0;
    char *body = tu_read_file(path, &n);
    assert_non_null(body);
    cJSON *root = cJSON_ParseWithLength(body, n);
    assert_non_null(root);
    expect_t e = {{0}, NULL};
    if (!is_2xx && cJSON_GetObjectItemCaseSensitive(root, "error") == NULL)
        is_2xx = true; /* a response-only fixture without an error envelope */
    expect_from_payload(root, &e);
    gw_token_usage_t u;
    gw_buf_t model;
    gw_buf_init(&model, 1024);
    assert_int_equal(gw_openai_usage_from_body(gw_str(body, n), &u, &model), GW_OK);
    compare(path, &u, &model, &e);
    if (is_2xx) {
        st->bodies++;
        classify(path, root, &e, false, st);
    } else {
        st->non2xx++;
        assert_false(u.present); /* error envelopes carry no usage */
    }
    gw_buf_free(&model);
    cJSON_Delete(root);
    free(body);
}

static void check_sse(const char *path, stats_t *st)
{
    size_t n = 0;
    char *body = tu_read_file(path, &n);
    assert_non_null(body);
    /* expected: every "data:" line of the file, in order */
    expect_t e = {{0}, NULL};
    cJSON *roots[4096];
    size_t nroots = 0;
    for (char *line = body; line < body + n;) {
        char *nl = memchr(line, '\n', (size_t)(body + n - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(body + n - line);
        if (len && line[len - 1] == '\r')
            len--;
        if (len > 5 && memcmp(line, "data:", 5) == 0) {
            const char *p = line + 5 + (line[5] == ' ');
            size_t plen = len - (size_t)(p - line);
            if (!(plen == 6 && memcmp(p, "[DONE]", 6) == 0)) {
                cJSON *root = cJSON_ParseWithLength(p, plen);
                assert_non_null(root);
                assert_true(nroots < GW_ARRAY_SIZE(roots));
                roots[nroots++] = root;
                expect_from_payload(root, &e);
            }
        }
        line = nl ? nl + 1 : body + n;
    }
    assert_true(nroots > 0);
    /* actual: the stream through the SSE parser, chunk by chunk */
    stream_obs_t o = {0};
    gw_buf_init(&o.model, 1024);
    gw_sse_parser_t p;
    gw_sse_parser_init(&p, 0);
    assert_int_equal(gw_sse_feed(&p, body, n, on_chunk, &o), GW_OK);
    gw_sse_parser_free(&p);
    assert_int_equal(o.chunks, nroots);
    compare(path, &o.u, &o.model, &e);
    st->streams++;
    classify(path, roots[nroots - 1], &e, true, st);
    for (size_t i = 0; i < nroots; i++)
        cJSON_Delete(roots[i]);
    gw_buf_free(&o.model);
    free(body);
}

static void check_chunk_list(const char *path, stats_t *st)
{
    size_t n = 0;
    char *body = tu_read_file(path, &n);
    assert_non_null(body);
    expect_t e = {{0}, NULL};
    gw_token_usage_t u = {0};
    gw_buf_t model;
    gw_buf_init(&model, 1024);
    cJSON *last = NULL;
    size_t lines = 0;
    for (char *line = body; line < body + n;) {
        char *nl = memchr(line, '\n', (size_t)(body + n - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(body + n - line);
        if (len) {
            cJSON *root = cJSON_ParseWithLength(line, len);
            assert_non_null(root);
            expect_from_payload(root, &e);
            assert_int_equal(gw_openai_usage_from_chunk(gw_str(line, len), &u, &model), GW_OK);
            cJSON_Delete(last);
            last = root;
            lines++;
        }
        line = nl ? nl + 1 : body + n;
    }
    assert_true(lines > 0);
    compare(path, &u, &model, &e);
    st->chunk_lists++;
    classify(path, last, &e, true, st);
    cJSON_Delete(last);
    gw_buf_free(&model);
    free(body);
}

static void check_case_dir(const char *dir, stats_t *st)
{
    char path[PATH_MAX];
    tu_fmt(path, sizeof(path), "%s/meta.json", dir);
    size_t n = 0;
    char *meta_txt = tu_read_file(path, &n);
    if (meta_txt == NULL)
        return;
    cJSON *meta = cJSON_ParseWithLength(meta_txt, n);
    assert_non_null(meta);
    const cJSON *inter = cJSON_GetObjectItemCaseSensitive(meta, "interactions"), *it;
    cJSON_ArrayForEach(it, inter)
    {
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(it, "response_file");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(it, "status");
        if (!cJSON_IsString(file))
            continue;
        /* status null: a response-only fixture, judged by its body */
        bool is_2xx = cJSON_IsNumber(status) && status->valueint >= 200 && status->valueint < 300;
        bool unknown = !cJSON_IsNumber(status);
        const char *f = file->valuestring;
        size_t fl = strlen(f);
        tu_fmt(path, sizeof(path), "%s/%s", dir, f);
        if (fl > 5 && strcmp(f + fl - 5, ".json") == 0 && strstr(f, "chunks") == NULL) {
            check_json_body(path, is_2xx, st);
        } else if (fl > 4 && strcmp(f + fl - 4, ".sse") == 0) {
            if (is_2xx || unknown)
                check_sse(path, st);
        } else if (strstr(f, ".chunks.jsonl")) {
            if (is_2xx || unknown)
                check_chunk_list(path, st);
        }
    }
    cJSON_Delete(meta);
    free(meta_txt);
}

static void test_recorded(void **state)
{
    (void)state;
    TU_REQUIRE_TESTDATA(td);
    stats_t st = {0};
    const char *providers[] = {"openai", "azure-openai"};
    for (size_t pi = 0; pi < GW_ARRAY_SIZE(providers); pi++) {
        tu_list_t metas = {0};
        char root[PATH_MAX];
        tu_fmt(root, sizeof(root), "%s/providers/%s", td, providers[pi]);
        tu_find_files(root, "meta.json", &metas);
        for (size_t i = 0; i < metas.n; i++) {
            char *slash = strrchr(metas.items[i], '/');
            *slash = '\0';
            check_case_dir(metas.items[i], &st);
        }
        tu_list_free(&metas);
    }
    size_t checked = st.bodies + st.streams + st.chunk_lists;
    printf("recorded OpenAI-schema responses checked: %zu 2xx (%zu bodies, %zu SSE streams, %zu chunk lists; "
           "%zu with usage, %zu without), plus %zu error bodies\n",
           checked, st.bodies, st.streams, st.chunk_lists, st.with_usage, st.without_usage, st.non2xx);
    printf("  chat %zu, chat streams with usage %zu, cached>0 %zu, reasoning>0 %zu, cache_write>0 %zu, embeddings float %zu "
           "/ base64 %zu, legacy completions %zu / streamed %zu (with usage %zu), images %zu, azure %zu\n",
           st.chat, st.chat_stream_usage, st.cached, st.reasoning, st.cache_write, st.emb_float, st.emb_base64, st.legacy,
           st.legacy_stream, st.legacy_stream_usage, st.images, st.azure);
    /* the corpus must still cover every shape this module claims to read */
    assert_true(st.chat > 0 && st.chat_stream_usage > 0 && st.cached > 0 && st.reasoning > 0);
    assert_true(st.emb_float > 0 && st.emb_base64 > 0 && st.legacy > 0 && st.legacy_stream > 0);
    assert_true(st.legacy_stream_usage > 0 && st.images > 0 && st.azure > 0 && st.with_usage > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_shapes),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_recorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
