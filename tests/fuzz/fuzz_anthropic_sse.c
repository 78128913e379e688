/* libFuzzer harness for the Anthropic translators: any bytes as an Anthropic SSE stream (whole,
 * split at a point taken from the input, and byte by byte) through the passthrough observer and
 * the OpenAI translator, as a non-streaming Messages body, and as an OpenAI chat request.
 * Invariants: the client output is valid SSE whose payloads are valid JSON, or a valid JSON
 * body; the way the bytes are split never changes the output; [DONE] and an error event never
 * both appear; usage stays consistent; nothing leaks. */
#include "core/json.h"
#include "translate/anthropic_anthropic.h"
#include "translate/openai_anthropic.h"
#include "translate/translate.h"

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                      \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "fuzz_anthropic_sse: line %d: %s\n", __LINE__, #cond); \
            __builtin_trap();                                            \
        }                                                                \
    } while (0)

static const char stream_req[] = "{\"model\":\"fuzz-model\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                                 "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char plain_req[] = "{\"model\":\"fuzz-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static char version[] = "v1";

static gw_translator_t *translator(gw_operation_t op, const char *req)
{
    gw_translator_t *t = gw_translator_new(op, GW_SCHEMA_ANTHROPIC);
    CHECK(t != NULL);
    gw_backend_t be;
    memset(&be, 0, sizeof(be));
    be.schema = GW_SCHEMA_ANTHROPIC;
    be.schema_version = version;
    gw_str_t body = gw_str_c(req), model;
    CHECK(gw_json_object_get(body, GW_STR("model"), &model) == GW_OK);
    gw_translate_request_t in = {.op = op, .body = body, .model_raw = model, .backend = &be};
    gw_translate_output_t out;
    gw_translate_output_init(&out);
    const char *err = NULL;
    CHECK(t->vt->request(t, &in, &out, &err) == GW_OK);
    gw_translate_output_free(&out);
    return t;
}

/* Feeds p as the response body: whole (split 0), split once, or byte by byte (SIZE_MAX). The
 * client bytes go to *client with every "created":<n> written as "created":0 (the clock may tick
 * between runs). */
static void feed(gw_translator_t *t, const char *p, size_t n, size_t split, gw_buf_t *client)
{
    gw_buf_t raw, piece;
    gw_buf_init(&raw, GW_BUF_UNLIMITED);
    gw_buf_init(&piece, GW_BUF_UNLIMITED);
    gw_buf_t *o = t->passthrough_response ? NULL : &piece;
    size_t step = split == SIZE_MAX ? 1 : split ? split : n;
    for (size_t off = 0; off < n;) {
        size_t k = off == 0 ? GW_MIN(step, n) : (split == SIZE_MAX ? 1 : n - off);
        gw_buf_reset(&piece);
        CHECK(t->vt->response_body(t, p + off, k, false, o) == GW_OK);
        gw_buf_append(&raw, piece.data, piece.len);
        off += k;
    }
    gw_buf_reset(&piece);
    CHECK(t->vt->response_body(t, NULL, 0, true, &piece) == GW_OK);
    gw_buf_append(&raw, piece.data, piece.len);
    static const char key[] = "\"created\":";
    for (size_t i = 0; i < raw.len;) {
        if (raw.len - i >= sizeof(key) - 1 && memcmp(raw.data + i, key, sizeof(key) - 1) == 0) {
            gw_buf_append(client, key, sizeof(key) - 1);
            i += sizeof(key) - 1;
            while (i < raw.len && raw.data[i] >= '0' && raw.data[i] <= '9')
                i++;
            gw_buf_append_byte(client, '0');
            continue;
        }
        gw_buf_append_byte(client, raw.data[i++]);
    }
    gw_buf_free(&raw);
    gw_buf_free(&piece);
}

/* The client stream: "event: error" or "data: " lines, each event closed by a blank line, every
 * payload valid JSON but a final [DONE]; an error event and [DONE] exclude each other and end the
 * stream. */
static void check_sse(gw_str_t s, bool failed)
{
    bool in_event = false, done = false, error = false, error_pending = false;
    size_t i = 0;
    while (i < s.len) {
        const char *nl = memchr(s.base + i, '\n', s.len - i);
        CHECK(nl != NULL);
        gw_str_t line = gw_str(s.base + i, (size_t)(nl - (s.base + i)));
        i += line.len + 1;
        if (line.len == 0) {
            CHECK(in_event && !error_pending);
            in_event = false;
            continue;
        }
        CHECK(!done && !error);
        if (line.len == 12 && memcmp(line.base, "event: error", 12) == 0) {
            CHECK(!in_event);
            in_event = error_pending = true;
            continue;
        }
        CHECK(line.len > 6 && memcmp(line.base, "data: ", 6) == 0);
        gw_str_t data = gw_str(line.base + 6, line.len - 6);
        if (gw_str_eq_lit(data, "[DONE]")) {
            CHECK(!in_event);
            done = true;
        } else {
            CHECK(gw_json_validate(data.base, data.len, 0, NULL) == GW_OK && gw_json_type(data) == GW_JSON_OBJECT);
            if (error_pending)
                error = true;
        }
        error_pending = false;
        in_event = true;
    }
    CHECK(!in_event);
    CHECK(done != error);      /* every stream ends one way or the other */
    CHECK(error == failed);
}

static bool usage_sane(const gw_token_usage_t *u)
{
    return u->cached_input <= u->input && u->cache_creation <= u->input && u->reasoning <= u->output &&
           (u->present || (u->input == 0 && u->output == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t split = size ? (size_t)data[0] % (size + 1) : 0;
    gw_buf_t whole, other;
    gw_buf_init(&whole, GW_BUF_UNLIMITED);
    gw_buf_init(&other, GW_BUF_UNLIMITED);

    /* passthrough observer: never writes mid-stream; at the end at most an error event */
    gw_token_usage_t pu[2];
    for (int k = 0; k < 2; k++) {
        gw_translator_t *t = translator(GW_OP_MESSAGES, plain_req);
        t->vt->response_head(t, 200, GW_STR("text/event-stream"), GW_STR(""));
        gw_buf_reset(&other);
        feed(t, p, size, k ? SIZE_MAX : split, &other);
        pu[k] = t->usage;
        CHECK(usage_sane(&t->usage));
        if (other.len) {
            size_t skip = other.len > 2 && memcmp(other.data, "\n\n", 2) == 0 ? 2 : 0;
            CHECK(t->stream_failed && other.len > skip + 19 && memcmp(other.data + skip, "event: error\ndata: ", 19) == 0);
        }
        gw_translator_free(t);
    }
    CHECK(memcmp(&pu[0], &pu[1], sizeof(pu[0])) == 0);

    /* OpenAI translation of the stream */
    bool failed = false;
    for (int k = 0; k < 3; k++) {
        gw_translator_t *t = translator(GW_OP_CHAT, stream_req);
        t->vt->response_head(t, 200, GW_STR("text/event-stream"), GW_STR(""));
        gw_buf_t *dst = k == 0 ? &whole : &other;
        gw_buf_reset(dst);
        feed(t, p, size, k == 0 ? 0 : k == 1 ? split : SIZE_MAX, dst);
        CHECK(usage_sane(&t->usage));
        if (k == 0) {
            failed = t->stream_failed;
            check_sse(gw_buf_str(&whole), failed);
        } else {
            CHECK(t->stream_failed == failed);
            CHECK(other.len == whole.len && memcmp(other.data, whole.data, whole.len) == 0);
        }
        gw_translator_free(t);
    }

    /* the same bytes as a non-streaming Messages body: one valid JSON document */
    gw_translator_t *t = translator(GW_OP_CHAT, plain_req);
    t->vt->response_head(t, 200, GW_STR("application/json"), GW_STR(""));
    gw_buf_reset(&whole);
    feed(t, p, size, split, &whole);
    CHECK(gw_json_validate(whole.data ? whole.data : "", whole.len, 0, NULL) == GW_OK);
    gw_buf_reset(&other);
    t->vt->response_error(t, 500, NULL, 0, gw_str(p, size), &other);
    CHECK(gw_json_validate(other.data ? other.data : "", other.len, 0, NULL) == GW_OK);
    gw_translator_free(t);

    /* and as an OpenAI chat request (when it is a JSON object, as the gateway guarantees) */
    if (gw_json_validate(p, size, 0, NULL) == GW_OK && gw_json_type(gw_str(p, size)) == GW_JSON_OBJECT) {
        gw_openai_anthropic_opts_t opts = {.model = "fuzz-model"};
        gw_openai_anthropic_info_t info;
        const char *err = NULL;
        gw_buf_reset(&whole);
        int rc = gw_openai_anthropic_request_body(gw_str(p, size), &opts, &whole, &info, &err);
        CHECK(rc == GW_OK || (rc == GW_EINVAL && err != NULL));
        if (rc == GW_OK)
            CHECK(gw_json_validate(whole.data, whole.len, 0, NULL) == GW_OK);
    }
    gw_buf_free(&whole);
    gw_buf_free(&other);
    return 0;
}
