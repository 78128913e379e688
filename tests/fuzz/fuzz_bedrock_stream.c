/* libFuzzer harness for the Bedrock stream translators: the input is an event-stream body fed to
 * openai_bedrock (ConverseStream -> OpenAI chunks) and to anthropic_awsanthropic (invoke stream ->
 * Anthropic SSE), whole and in pieces. Neither may crash or leak; the client bytes must not depend
 * on how the body was cut; every OpenAI chunk must be strict JSON. Built with
 * -DFUZZ_WRITE_SEEDS it is instead a program writing its seed corpus (made with the encoder):
 *   clang -DFUZZ_WRITE_SEEDS -Isrc -D_GNU_SOURCE tests/fuzz/fuzz_bedrock_stream.c build/libaigw.a \
 *       -lcjson -lz -lbrotlidec -lbrotlienc -lm -o /tmp/seeds && /tmp/seeds tests/fuzz/corpus/bedrock_stream */
#include "codec/aws_eventstream.h"
#include "codec/base64.h"
#include "codec/sse.h"
#include "core/json.h"
#include "translate/translate.h"

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)               \
    do {                          \
        if (!(cond))              \
            __builtin_trap();     \
    } while (0)

/* The generated response id and time differ per translator: blank them before comparing runs. */
static void normalize(gw_buf_t *b)
{
    static const char id[] = "\"id\":\"chatcmpl-";
    static const char created[] = "\"created\":";
    size_t w = 0;
    for (size_t i = 0; i < b->len;) {
        if (b->len - i >= sizeof(id) - 1 && memcmp(b->data + i, id, sizeof(id) - 1) == 0) {
            memcpy(b->data + w, id, sizeof(id) - 1);
            w += sizeof(id) - 1;
            i += sizeof(id) - 1;
            size_t start = i;
            while (i < b->len && b->data[i] != '"')
                i++;
            if (i > start) /* write no more than was read: the buffer is rewritten in place */
                b->data[w++] = 'X';
        } else if (b->len - i >= sizeof(created) - 1 && memcmp(b->data + i, created, sizeof(created) - 1) == 0) {
            memcpy(b->data + w, created, sizeof(created) - 1);
            w += sizeof(created) - 1;
            i += sizeof(created) - 1;
            size_t start = i;
            while (i < b->len && b->data[i] >= '0' && b->data[i] <= '9')
                i++;
            if (i > start)
                b->data[w++] = '0';
        } else {
            b->data[w++] = b->data[i++];
        }
    }
    b->len = w;
}

static int check_chunk(void *ud, const gw_sse_event_t *ev)
{
    (void)ud;
    if (!gw_str_eq_lit(ev->data, "[DONE]"))
        CHECK(gw_json_validate(ev->data.base, ev->data.len, 0, NULL) == GW_OK);
    return GW_OK;
}

typedef struct {
    gw_buf_t out;
    bool failed;
    gw_token_usage_t usage;
} run_t;

static void run(bool openai, const char *p, size_t n, size_t step, run_t *r)
{
    static const char chat[] = "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[]}";
    static const char msgs[] = "{\"model\":\"m\",\"stream\":true,\"max_tokens\":1,\"messages\":[]}";
    gw_backend_t b;
    memset(&b, 0, sizeof(b));
    b.schema = openai ? GW_SCHEMA_AWS_BEDROCK : GW_SCHEMA_AWS_ANTHROPIC;
    gw_translator_t *t = gw_translator_new(openai ? GW_OP_CHAT : GW_OP_MESSAGES, b.schema);
    CHECK(t != NULL);
    gw_translate_output_t o;
    gw_translate_output_init(&o);
    gw_str_t body = openai ? GW_STR(chat) : GW_STR(msgs), model;
    CHECK(gw_json_object_get(body, GW_STR("model"), &model) == GW_OK);
    gw_translate_request_t in = {.op = openai ? GW_OP_CHAT : GW_OP_MESSAGES, .body = body, .model_raw = model,
                                 .stream = true, .backend = &b};
    const char *err = NULL;
    CHECK(t->vt->request(t, &in, &o, &err) == GW_OK);
    gw_buf_init(&r->out, GW_BUF_UNLIMITED);
    t->vt->response_head(t, 200, GW_STR("application/vnd.amazon.eventstream"), GW_STR(""));
    for (size_t off = 0; off < n; off += step)
        t->vt->response_body(t, p + off, GW_MIN(step, n - off), false, &r->out);
    t->vt->response_body(t, NULL, 0, true, &r->out);
    r->failed = t->stream_failed;
    r->usage = t->usage;
    gw_translator_free(t);
    gw_translate_output_free(&o);
    normalize(&r->out);
}

static void same(const run_t *a, const run_t *b)
{
    CHECK(a->failed == b->failed);
    CHECK(a->out.len == b->out.len && (a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0));
    CHECK(memcmp(&a->usage, &b->usage, sizeof(a->usage)) == 0);
}

/* Structured mode: every line is one frame, framed here with valid CRCs so that mutations reach
 * the translators' JSON handling instead of dying in the checksum. The line's first byte picks the
 * frame kind, the rest is the payload (base64-wrapped into {"bytes":...} for invoke chunks). */
static void frames_from_lines(const char *p, size_t n, gw_buf_t *out)
{
    static const char *const events[] = {"messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop",
                                          "messageStop", "metadata"};
    gw_buf_t payload;
    gw_buf_init(&payload, GW_BUF_UNLIMITED);
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        if (len) {
            unsigned kind = ((unsigned char)p[0] + 222u) % 9; /* the digits '0'..'8' pick the kinds in order */
            gw_str_t body = gw_str(p + 1, len - 1);
            gw_es_header_t h[2] = {{.name = GW_STR(":message-type"), .type = GW_ES_STRING, .bytes = GW_STR("event")},
                                   {.name = GW_STR(":event-type"), .type = GW_ES_STRING}};
            if (kind < 6) {
                h[1].bytes = gw_str_c(events[kind]);
            } else if (kind == 6) {
                h[0].bytes = GW_STR("exception");
                h[1].name = GW_STR(":exception-type");
                h[1].bytes = GW_STR("throttlingException");
            } else {
                h[1].bytes = GW_STR("chunk");
                gw_buf_reset(&payload);
                gw_buf_append_lit(&payload, "{\"bytes\":\"");
                gw_base64_encode(GW_BASE64_STD, body.base, body.len, &payload);
                if (kind == 7)
                    gw_buf_append_lit(&payload, "\"}");
                else
                    gw_buf_append_lit(&payload, "\",\"p\":\"abc\"}");
                body = gw_buf_str(&payload);
            }
            gw_eventstream_encode(h, 2, body, out);
        }
        if (nl == NULL)
            break;
        n -= len + 1;
        p = nl + 1;
    }
    gw_buf_free(&payload);
}

#ifndef FUZZ_WRITE_SEEDS

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* byte 0: bit 7 selects structured mode, the rest a piece size */
    size_t step = (size_t)(data[0] & 0x7f) % 29 + 1;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    gw_buf_t framed;
    gw_buf_init(&framed, GW_BUF_UNLIMITED);
    if (data[0] & 0x80) {
        frames_from_lines(p, n, &framed);
        p = framed.data ? framed.data : "";
        n = framed.len;
    }
    for (int openai = 0; openai < 2; openai++) {
        run_t whole, pieces;
        run(openai, p, n, n ? n : 1, &whole);
        run(openai, p, n, step, &pieces);
        same(&whole, &pieces);
        /* the stream always ends in [DONE] or in an error event, never silently */
        CHECK(whole.failed || (openai ? whole.out.len >= 14 && memcmp(whole.out.data + whole.out.len - 14,
                                                                         "data: [DONE]\n\n", 14) == 0
                                      : true));
        if (openai) {
            gw_sse_parser_t sp;
            gw_sse_parser_init(&sp, GW_EVENTSTREAM_MAX_MESSAGE * 2);
            CHECK(gw_sse_feed(&sp, whole.out.data, whole.out.len, check_chunk, NULL) == GW_OK);
            CHECK(!gw_sse_has_partial(&sp));
            gw_sse_parser_free(&sp);
        }
        gw_buf_free(&whole.out);
        gw_buf_free(&pieces.out);
    }
    gw_buf_free(&framed);
    return 0;
}

#else /* seed writer */

static void ev(gw_buf_t *out, const char *mtype, const char *hname, const char *hval, const char *payload)
{
    gw_es_header_t h[3] = {
        {.name = GW_STR(":message-type"), .type = GW_ES_STRING, .bytes = gw_str_c(mtype)},
        {.name = gw_str_c(hname), .type = GW_ES_STRING, .bytes = gw_str_c(hval)},
        {.name = GW_STR(":content-type"), .type = GW_ES_STRING, .bytes = GW_STR("application/json")},
    };
    if (gw_eventstream_encode(h, 3, gw_str_c(payload), out) != GW_OK)
        abort();
}

static void chunk(gw_buf_t *out, const char *json)
{
    gw_buf_t p;
    gw_buf_init(&p, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&p, "{\"bytes\":\"");
    gw_base64_encode(GW_BASE64_STD, json, strlen(json), &p);
    gw_buf_append_lit(&p, "\"}");
    ev(out, "event", ":event-type", "chunk", gw_buf_cstr(&p));
    gw_buf_free(&p);
}

static void write_seed(const char *dir, const char *name, char step, const gw_buf_t *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(&step, 1, 1, f) != 1 || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0)
        abort();
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    ev(&b, "event", ":event-type", "messageStart", "{\"role\":\"assistant\"}");
    ev(&b, "event", ":event-type", "contentBlockDelta",
       "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"text\":\"hm\"}}}");
    ev(&b, "event", ":event-type", "contentBlockDelta",
       "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"signature\":\"c2ln\"}}}");
    ev(&b, "event", ":event-type", "contentBlockStop", "{\"contentBlockIndex\":0}");
    ev(&b, "event", ":event-type", "contentBlockDelta",
       "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"Hi \\ud83d\"}}");
    ev(&b, "event", ":event-type", "contentBlockStart",
       "{\"contentBlockIndex\":2,\"start\":{\"toolUse\":{\"toolUseId\":\"t\",\"name\":\"f\"}}}");
    ev(&b, "event", ":event-type", "contentBlockDelta",
       "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"{}\"}}}");
    ev(&b, "event", ":event-type", "messageStop", "{\"stopReason\":\"tool_use\"}");
    ev(&b, "event", ":event-type", "metadata", "{\"usage\":{\"inputTokens\":1,\"outputTokens\":2,\"totalTokens\":3,"
                                               "\"cacheReadInputTokens\":4}}");
    write_seed(argv[1], "converse_full", 7, &b);
    gw_buf_reset(&b);
    ev(&b, "event", ":event-type", "messageStart", "{\"role\":\"assistant\"}");
    ev(&b, "event", ":event-type", "contentBlockDelta",
       "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"redactedContent\":\"UkVE\"}}}");
    ev(&b, "exception", ":exception-type", "throttlingException", "{\"message\":\"slow down\"}");
    write_seed(argv[1], "converse_exception", 3, &b);
    gw_buf_reset(&b);
    chunk(&b, "{\"type\":\"message_start\",\"message\":{\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}");
    chunk(&b, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}");
    chunk(&b, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}");
    chunk(&b, "{\"type\":\"message_stop\"}");
    write_seed(argv[1], "invoke_full", 11, &b);
    gw_buf_reset(&b);
    chunk(&b, "{\"type\":\"message_start\",\"message\":{}}");
    ev(&b, "exception", ":exception-type", "modelStreamErrorException", "not json");
    chunk(&b, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}");
    write_seed(argv[1], "invoke_errors", 1, &b);
    /* structured mode (byte 0 >= 0x80): one frame per line, kind chosen by the first byte */
    gw_buf_reset(&b);
    gw_buf_append_lit(&b, "0{\"role\":\"assistant\"}\n"
                          "1{\"contentBlockIndex\":0,\"start\":{\"toolUse\":{\"toolUseId\":\"t\",\"name\":\"f\"}}}\n"
                          "2{\"contentBlockIndex\":0,\"delta\":{\"toolUse\":{\"input\":\"{\\\"a\\\":1}\"}}}\n"
                          "2{\"contentBlockIndex\":1,\"delta\":{\"reasoningContent\":{\"text\":\"r\",\"signature\":\"s\"}}}\n"
                          "3{\"contentBlockIndex\":1}\n"
                          "2{\"contentBlockIndex\":2,\"delta\":{\"text\":\"t\"}}\n"
                          "4{\"stopReason\":\"max_tokens\"}\n"
                          "5{\"usage\":{\"inputTokens\":1,\"outputTokens\":2,\"cacheWriteInputTokens\":3}}\n"
                          "6{\"message\":\"late\"}");
    write_seed(argv[1], "structured_converse", (char)0x85, &b);
    gw_buf_reset(&b);
    gw_buf_append_lit(&b, "7{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":2}}}\n"
                          "8{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"text\":\"a\"}}\n"
                          "7{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n"
                          "7{\"type\":\"message_stop\"}");
    write_seed(argv[1], "structured_invoke", (char)0x83, &b);
    gw_buf_free(&b);
    return 0;
}

#endif
