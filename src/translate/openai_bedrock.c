/* OpenAI chat -> Bedrock Converse (see openai_bedrock.h). The client body is read as raw JSON
 * slices (it was validated by the gateway) and the Converse body is built with cJSON, values
 * that pass through (numbers, schemas, tool inputs, signatures) inserted as raw slices so they
 * stay byte-exact. Responses are scanned structurally, never trusted to be valid, and written
 * straight into the client's bytes with escaping that always yields valid JSON. */
#include "translate/openai_bedrock.h"

#include "codec/aws_eventstream.h"
#include "codec/decompress.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "translate/bedrock_common.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_RESPONSE_BODY (64u << 20)   /* a non-streaming Converse response beyond this is refused */
#define MAX_REASONING_BLOCK (16u << 20) /* one streamed reasoning block, kept for thinking_blocks */
#define MAX_TOOL_BLOCKS 4096            /* tool calls in one streamed response */
#define MAX_DOC_NAME 200

/* ---------------------------------------------------------------------------------------------
 * Raw JSON helpers. The gateway validated the client body; upstream bytes are not validated, so
 * every scanner here is bounds-checked and gives GW_EINVAL rather than reading outside.
 */

static bool json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Member `key` of the raw object obj; GW_STR_NULL when absent or obj is not an object. */
static gw_str_t member(gw_str_t obj, const char *key)
{
    gw_str_t v;
    if (gw_json_type(obj) == GW_JSON_OBJECT && gw_json_object_get(obj, gw_str_c(key), &v) == GW_OK)
        return v;
    return GW_STR_NULL;
}

static inline bool is_type(gw_str_t raw, gw_json_type_t t)
{
    return gw_json_type(raw) == t;
}

/* Unescapes the raw JSON string raw into out (reset first); false when raw is not a string. */
static bool string_value(gw_str_t raw, gw_buf_t *out)
{
    gw_buf_reset(out);
    return is_type(raw, GW_JSON_STRING) && gw_json_string_unescape(raw, out) == GW_OK;
}

static bool string_is(gw_str_t raw, const char *lit)
{
    return is_type(raw, GW_JSON_STRING) && raw.len == strlen(lit) + 2 && memcmp(raw.base + 1, lit, raw.len - 2) == 0;
}

static void utf8_put(gw_buf_t *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    gw_buf_append(out, b, n);
}

static int hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Appends the unescaped content of the raw upstream string raw to out. Model text can reach us
 * with a lone surrogate escape (a token boundary inside an emoji) or other oddities; one bad
 * character must not cost the response, so it becomes U+FFFD. Invalid UTF-8 and control bytes are
 * dealt with when the text is re-escaped by gw_json_append_string. */
static void lenient_unescape(gw_str_t raw, gw_buf_t *out)
{
    if (!is_type(raw, GW_JSON_STRING) || raw.len < 2 || raw.base[raw.len - 1] != '"')
        return;
    if (gw_json_string_unescape(raw, out) == GW_OK)
        return;
    const char *p = raw.base + 1, *end = raw.base + raw.len - 1;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        const char *stop = bs ? bs : end;
        gw_buf_append(out, p, (size_t)(stop - p));
        p = stop;
        if (p >= end)
            break;
        if (p + 1 >= end) {
            utf8_put(out, 0xfffd);
            break;
        }
        char e = p[1];
        p += 2;
        switch (e) {
        case '"': gw_buf_append_byte(out, '"'); break;
        case '\\': gw_buf_append_byte(out, '\\'); break;
        case '/': gw_buf_append_byte(out, '/'); break;
        case 'b': gw_buf_append_byte(out, '\b'); break;
        case 'f': gw_buf_append_byte(out, '\f'); break;
        case 'n': gw_buf_append_byte(out, '\n'); break;
        case 'r': gw_buf_append_byte(out, '\r'); break;
        case 't': gw_buf_append_byte(out, '\t'); break;
        case 'u': {
            int cp = hex4(p, end);
            if (cp < 0) {
                utf8_put(out, 0xfffd);
                break;
            }
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                int lo = hex4(p + 2, end);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    utf8_put(out, 0x10000 + (((uint32_t)cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00));
                    p += 6;
                    break;
                }
            }
            utf8_put(out, (cp >= 0xd800 && cp <= 0xdfff) || cp == 0 ? 0xfffd : (uint32_t)cp);
            break;
        }
        default: utf8_put(out, 0xfffd); break;
        }
    }
}

/* Appends the upstream string raw as a JSON string literal; tmp is scratch. */
static void append_string_from(gw_buf_t *out, gw_str_t raw, gw_buf_t *tmp)
{
    gw_buf_reset(tmp);
    lenient_unescape(raw, tmp);
    gw_json_append_string(out, tmp->data ? tmp->data : "", tmp->len);
}

/* ---------------------------------------------------------------------------------------------
 * Translator state.
 */

#define SERVER_TOOL (-2) /* tool_slot_t.tool of a server-side tool block, which the client never sees */

typedef struct {
    int64_t block; /* contentBlockIndex */
    int tool;      /* index in the client's tool_calls, or SERVER_TOOL */
} tool_slot_t;

typedef struct {
    gw_translator_t base;
    /* from the request */
    bool stream;
    bool include_usage;
    gw_buf_t model_json;   /* model reported to the client, as a JSON string literal */
    char id[48];
    int64_t created;
    /* response decoding */
    gw_decoder_t *decoder; /* content-encoding, NULL for identity */
    bool encoding_failed;
    gw_buf_t decoded;
    gw_buf_t body;         /* whole non-streaming body */
    bool body_too_big;
    gw_eventstream_decoder_t es;
    bool finished;         /* the stream ended in error or was abandoned: ignore further bytes */
    bool saw_stop;
    tool_slot_t *tools;
    size_t n_tools, cap_tools;
    int n_calls; /* tool calls announced to the client */
    /* reasoning block being streamed: reported whole in thinking_blocks when it ends */
    bool rs_open, rs_redacted;
    int64_t rs_block;
    gw_buf_t rs_text, rs_sig, rs_data;
    gw_buf_t tmp;
    gw_buf_t *out; /* the client's bytes during a feed */
} bedrock_tr_t;

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Bedrock returns no response id; one is made up per request. Not a secret, only unique. */
static void new_id(bedrock_tr_t *bt)
{
    static _Atomic uint64_t seq;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t a = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)bt ^
                       (atomic_fetch_add(&seq, 1) << 48));
    uint64_t b = mix64(a);
    snprintf(bt->id, sizeof(bt->id), "chatcmpl-%016" PRIx64 "%08" PRIx64, a, b >> 32);
    bt->created = (int64_t)ts.tv_sec;
}

/* ---------------------------------------------------------------------------------------------
 * Request: OpenAI chat -> Converse.
 */

static cJSON *must(cJSON *n)
{
    if (n == NULL) {
        gw_log_error("out of memory building a Bedrock request");
        abort();
    }
    return n;
}

static cJSON *raw_node(gw_str_t raw)
{
    char *s = gw_strndup(raw.base, raw.len);
    cJSON *n = must(cJSON_CreateRaw(s));
    free(s);
    return n;
}

static cJSON *bytes_node(const char *p, size_t n)
{
    char *s = gw_strndup(p ? p : "", n);
    cJSON *node = must(cJSON_CreateString(s));
    free(s);
    return node;
}

static void add(cJSON *obj, const char *key, cJSON *item)
{
    cJSON_AddItemToObject(obj, key, item);
}

static cJSON *new_object(void)
{
    return must(cJSON_CreateObject());
}

static cJSON *new_array(void)
{
    return must(cJSON_CreateArray());
}

/* {"cachePoint":{"type":"default"}}: the Converse form of an Anthropic-style cache_control. */
static void add_cache_point(cJSON *blocks)
{
    cJSON *cp = new_object(), *inner = new_object();
    add(inner, "type", must(cJSON_CreateString("default")));
    add(cp, "cachePoint", inner);
    cJSON_AddItemToArray(blocks, cp);
}

static bool wants_cache(gw_str_t obj)
{
    gw_str_t cc = member(obj, "cache_control");
    return cc.base != NULL && !is_type(cc, GW_JSON_NULL);
}

typedef struct {
    cJSON *messages, *system;
    cJSON *last_msg;       /* last Converse message, for merging same-role turns */
    const char *last_role;
    bool has_tool_blocks;  /* toolUse / toolResult in the conversation (toolConfig then required) */
    int n_documents;
    gw_buf_t s;            /* scratch for unescaped strings */
    const char *err;
} req_ctx_t;

/* Adds blocks as a turn of role. Converse wants user and assistant turns to alternate, so a turn
 * that follows one of the same role (tool results then a user message, consecutive tool
 * results) is merged into it; an empty turn is dropped. */
static void add_turn(req_ctx_t *c, const char *role, cJSON *blocks)
{
    if (cJSON_GetArraySize(blocks) == 0) {
        cJSON_Delete(blocks);
        return;
    }
    if (c->last_msg && strcmp(c->last_role, role) == 0) {
        cJSON *content = cJSON_GetObjectItemCaseSensitive(c->last_msg, "content");
        cJSON *it;
        while ((it = cJSON_DetachItemFromArray(blocks, 0)) != NULL)
            cJSON_AddItemToArray(content, it);
        cJSON_Delete(blocks);
        return;
    }
    cJSON *msg = new_object();
    add(msg, "role", must(cJSON_CreateString(role)));
    add(msg, "content", blocks);
    cJSON_AddItemToArray(c->messages, msg);
    c->last_msg = msg;
    c->last_role = role;
}

/* {"text": raw} unless the text is empty (Converse rejects blank text blocks). */
static void add_text_block(cJSON *blocks, gw_str_t raw)
{
    if (!is_type(raw, GW_JSON_STRING) || raw.len <= 2)
        return;
    cJSON *b = new_object();
    add(b, "text", raw_node(raw));
    cJSON_AddItemToArray(blocks, b);
}

/* Splits "data:<mime>[;params];base64,<data>"; false when s is not such a URI. */
static bool parse_data_uri(gw_str_t s, gw_str_t *mime, gw_str_t *data)
{
    if (s.len < 5 || memcmp(s.base, "data:", 5) != 0)
        return false;
    static const char marker[] = ";base64,";
    const char *p = s.base + 5, *end = s.base + s.len;
    const char *m = memmem(p, (size_t)(end - p), marker, sizeof(marker) - 1);
    if (m == NULL)
        return false;
    const char *semi = memchr(p, ';', (size_t)(m - p) + 1);
    *mime = gw_str(p, (size_t)(semi - p));
    *data = gw_str(m + sizeof(marker) - 1, (size_t)(end - m - (sizeof(marker) - 1)));
    return true;
}

static const char *image_format(gw_str_t mime)
{
    if (gw_str_case_eq_lit(mime, "image/png"))
        return "png";
    if (gw_str_case_eq_lit(mime, "image/jpeg") || gw_str_case_eq_lit(mime, "image/jpg"))
        return "jpeg";
    if (gw_str_case_eq_lit(mime, "image/gif"))
        return "gif";
    if (gw_str_case_eq_lit(mime, "image/webp"))
        return "webp";
    return NULL;
}

static const char *document_format(gw_str_t mime)
{
    static const struct {
        const char *mime, *format;
    } map[] = {
        {"application/pdf", "pdf"},
        {"text/csv", "csv"},
        {"application/msword", "doc"},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
        {"application/vnd.ms-excel", "xls"},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
        {"text/html", "html"},
        {"text/plain", "txt"},
        {"text/markdown", "md"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(map); i++)
        if (gw_str_case_eq(mime, gw_str_c(map[i].mime)))
            return map[i].format;
    return NULL;
}

static int image_block(req_ctx_t *c, gw_str_t part, cJSON *blocks)
{
    gw_str_t iu = member(part, "image_url");
    gw_str_t url = is_type(iu, GW_JSON_OBJECT) ? member(iu, "url") : iu;
    gw_str_t mime, data;
    if (!string_value(url, &c->s)) {
        c->err = "an image_url content part needs a url string";
        return GW_EINVAL;
    }
    if (!parse_data_uri(gw_buf_str(&c->s), &mime, &data)) {
        c->err = "Bedrock accepts images only as base64 data URIs (data:image/png;base64,...)";
        return GW_EINVAL;
    }
    const char *fmt = image_format(mime);
    if (fmt == NULL) {
        c->err = "unsupported image type for Bedrock (png, jpeg, gif and webp are supported)";
        return GW_EINVAL;
    }
    cJSON *b = new_object(), *img = new_object(), *src = new_object();
    add(src, "bytes", bytes_node(data.base, data.len));
    add(img, "format", must(cJSON_CreateString(fmt)));
    add(img, "source", src);
    add(b, "image", img);
    cJSON_AddItemToArray(blocks, b);
    return GW_OK;
}

/* Converse document names allow letters, digits, single spaces, hyphens, parentheses and square
 * brackets: anything else becomes a hyphen, the extension is dropped. */
static void document_name(req_ctx_t *c, gw_str_t filename_raw, char *name, size_t cap)
{
    size_t n = 0;
    if (string_value(filename_raw, &c->s)) {
        gw_str_t f = gw_buf_str(&c->s);
        const char *dot = f.len ? memrchr(f.base, '.', f.len) : NULL;
        if (dot && dot != f.base)
            f.len = (size_t)(dot - f.base);
        for (size_t i = 0; i < f.len && n + 1 < cap; i++) {
            unsigned char ch = (unsigned char)f.base[i];
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                      ch == '(' || ch == ')' || ch == '[' || ch == ']';
            if (ch == ' ' || ch == '\t') {
                if (n && name[n - 1] != ' ')
                    name[n++] = ' ';
                continue;
            }
            name[n++] = ok ? (char)ch : '-';
        }
        while (n && name[n - 1] == ' ')
            n--;
    }
    if (n == 0) {
        snprintf(name, cap, "document-%d", ++c->n_documents);
        return;
    }
    name[n] = '\0';
}

static int document_block(req_ctx_t *c, gw_str_t part, cJSON *blocks)
{
    gw_str_t file = member(part, "file");
    gw_str_t mime, data;
    if (!string_value(member(file, "file_data"), &c->s)) {
        c->err = "Bedrock accepts files only as file_data base64 data URIs (file_id is not supported)";
        return GW_EINVAL;
    }
    if (!parse_data_uri(gw_buf_str(&c->s), &mime, &data)) {
        c->err = "file_data must be a base64 data URI";
        return GW_EINVAL;
    }
    const char *fmt = document_format(mime);
    if (fmt == NULL) {
        c->err = "unsupported document type for Bedrock (pdf, csv, doc, docx, xls, xlsx, html, txt, md)";
        return GW_EINVAL;
    }
    cJSON *bytes = bytes_node(data.base, data.len); /* before c->s is reused for the name */
    char name[MAX_DOC_NAME + 1];
    document_name(c, member(file, "filename"), name, sizeof(name));
    cJSON *b = new_object(), *doc = new_object(), *src = new_object();
    add(src, "bytes", bytes);
    add(doc, "format", must(cJSON_CreateString(fmt)));
    add(doc, "name", must(cJSON_CreateString(name)));
    add(doc, "source", src);
    add(b, "document", doc);
    cJSON_AddItemToArray(blocks, b);
    return GW_OK;
}

typedef enum { PARTS_SYSTEM, PARTS_USER, PARTS_TOOL } parts_kind_t;

/* Content (string or array of parts) of a system, user or tool message -> blocks. */
static int content_blocks(req_ctx_t *c, gw_str_t content, cJSON *blocks, parts_kind_t kind)
{
    switch (gw_json_type(content)) {
    case GW_JSON_STRING:
        add_text_block(blocks, content);
        return GW_OK;
    case GW_JSON_NULL:
    case GW_JSON_INVALID: /* absent */
        return GW_OK;
    case GW_JSON_ARRAY: break;
    default: c->err = "message content must be a string or an array of content parts"; return GW_EINVAL;
    }
    size_t pos = 0;
    gw_str_t part;
    int rc;
    while ((rc = gw_json_array_next(content, &pos, &part)) == GW_OK) {
        gw_str_t type = member(part, "type");
        if (string_is(type, "text")) {
            add_text_block(blocks, member(part, "text"));
        } else if (string_is(type, "image_url") && kind != PARTS_SYSTEM) {
            if (image_block(c, part, blocks) != GW_OK)
                return GW_EINVAL;
        } else if (string_is(type, "file") && kind == PARTS_USER) {
            if (document_block(c, part, blocks) != GW_OK)
                return GW_EINVAL;
        } else {
            c->err = kind == PARTS_SYSTEM ? "system messages may hold only text parts on Bedrock"
                                          : "unsupported content part type for Bedrock";
            return GW_EINVAL;
        }
        if (wants_cache(part))
            add_cache_point(blocks);
    }
    return rc == GW_DONE ? GW_OK : GW_EINVAL;
}

/* A thinking block in either accepted form -> a reasoningContent block:
 *   {"type":"thinking","thinking":t,"signature":s}   (thinking_blocks, LiteLLM convention)
 *   {"type":"thinking","text":t,"signature":s}       (the reference's assistant content part)
 *   {"type":"redacted_thinking","data":d}            (thinking_blocks)
 *   {"type":"redacted_thinking","redactedContent":d} (the reference's content part)
 * A thinking block without a signature is dropped. Returns false when part is not a reasoning
 * block. */
static bool reasoning_block(gw_str_t part, cJSON *blocks)
{
    gw_str_t type = member(part, "type");
    cJSON *rc;
    if (string_is(type, "thinking")) {
        gw_str_t text = member(part, "thinking");
        if (!is_type(text, GW_JSON_STRING))
            text = member(part, "text");
        gw_str_t sig = member(part, "signature");
        /* Unsigned thinking cannot be verified: Claude would reject the whole request. */
        if (!is_type(sig, GW_JSON_STRING) || sig.len <= 2)
            return true;
        cJSON *rt = new_object();
        add(rt, "text", is_type(text, GW_JSON_STRING) ? raw_node(text) : must(cJSON_CreateString("")));
        add(rt, "signature", raw_node(sig));
        rc = new_object();
        add(rc, "reasoningText", rt);
    } else if (string_is(type, "redacted_thinking")) {
        gw_str_t data = member(part, "data");
        if (!is_type(data, GW_JSON_STRING))
            data = member(part, "redactedContent");
        if (!is_type(data, GW_JSON_STRING))
            data = member(part, "redacted_content");
        if (!is_type(data, GW_JSON_STRING))
            return true; /* nothing to send back */
        rc = new_object();
        add(rc, "redactedContent", raw_node(data));
    } else {
        return false;
    }
    cJSON *b = new_object();
    add(b, "reasoningContent", rc);
    cJSON_AddItemToArray(blocks, b);
    if (wants_cache(part))
        add_cache_point(blocks);
    return true;
}

static int tool_use_block(req_ctx_t *c, gw_str_t call, cJSON *blocks)
{
    gw_str_t id = member(call, "id"), fn = member(call, "function");
    gw_str_t name = member(fn, "name"), args = member(fn, "arguments");
    if (!is_type(id, GW_JSON_STRING) || !is_type(name, GW_JSON_STRING)) {
        c->err = "an assistant tool call needs an id and a function name";
        return GW_EINVAL;
    }
    cJSON *input;
    if (is_type(args, GW_JSON_STRING)) {
        string_value(args, &c->s);
        const char *p = c->s.data ? c->s.data : "", *end = p + c->s.len;
        while (p < end && json_ws(*p))
            p++;
        while (end > p && json_ws(end[-1]))
            end--;
        if (p == end) {
            input = new_object();
        } else if (gw_json_validate(p, (size_t)(end - p), GW_JSON_DEFAULT_MAX_DEPTH, NULL) == GW_OK) {
            input = raw_node(gw_str(p, (size_t)(end - p)));
        } else {
            c->err = "tool call arguments must be a JSON document for Bedrock";
            return GW_EINVAL;
        }
    } else if (is_type(args, GW_JSON_OBJECT)) {
        input = raw_node(args);
    } else {
        input = new_object();
    }
    cJSON *b = new_object(), *tu = new_object();
    add(tu, "toolUseId", raw_node(id));
    add(tu, "name", raw_node(name));
    add(tu, "input", input);
    add(b, "toolUse", tu);
    cJSON_AddItemToArray(blocks, b);
    c->has_tool_blocks = true;
    return GW_OK;
}

static int assistant_turn(req_ctx_t *c, gw_str_t msg)
{
    cJSON *blocks = new_array();
    gw_str_t content = member(msg, "content"), thinking = member(msg, "thinking_blocks");
    size_t pos;
    gw_str_t item;
    int rc = GW_DONE;
    /* Reasoning first: Anthropic models require the thinking blocks at the start of the turn. A
     * bare reasoning_content string is not sent back: without its signature Claude rejects it. */
    if (is_type(thinking, GW_JSON_ARRAY)) {
        for (pos = 0; (rc = gw_json_array_next(thinking, &pos, &item)) == GW_OK;)
            reasoning_block(item, blocks);
    } else if (is_type(content, GW_JSON_ARRAY)) {
        for (pos = 0; (rc = gw_json_array_next(content, &pos, &item)) == GW_OK;) {
            gw_str_t type = member(item, "type");
            if (string_is(type, "thinking") || string_is(type, "redacted_thinking"))
                reasoning_block(item, blocks);
        }
    }
    if (rc != GW_DONE)
        goto bad;
    if (is_type(content, GW_JSON_STRING)) {
        add_text_block(blocks, content);
    } else if (is_type(content, GW_JSON_ARRAY)) {
        for (pos = 0; (rc = gw_json_array_next(content, &pos, &item)) == GW_OK;) {
            gw_str_t type = member(item, "type");
            if (string_is(type, "text"))
                add_text_block(blocks, member(item, "text"));
            else if (string_is(type, "refusal"))
                add_text_block(blocks, member(item, "refusal"));
            else if (!string_is(type, "thinking") && !string_is(type, "redacted_thinking")) {
                c->err = "unsupported assistant content part type for Bedrock";
                goto bad;
            }
            if (wants_cache(item) && !string_is(type, "thinking") && !string_is(type, "redacted_thinking"))
                add_cache_point(blocks);
        }
        if (rc != GW_DONE)
            goto bad;
    }
    gw_str_t calls = member(msg, "tool_calls");
    if (is_type(calls, GW_JSON_ARRAY)) {
        for (pos = 0; (rc = gw_json_array_next(calls, &pos, &item)) == GW_OK;)
            if (tool_use_block(c, item, blocks) != GW_OK)
                goto bad;
        if (rc != GW_DONE)
            goto bad;
    }
    if (wants_cache(msg) && cJSON_GetArraySize(blocks) > 0)
        add_cache_point(blocks);
    add_turn(c, "assistant", blocks);
    return GW_OK;
bad:
    if (c->err == NULL)
        c->err = "malformed assistant message";
    cJSON_Delete(blocks);
    return GW_EINVAL;
}

static int tool_turn(req_ctx_t *c, gw_str_t msg)
{
    gw_str_t id = member(msg, "tool_call_id");
    if (!is_type(id, GW_JSON_STRING)) {
        c->err = "a tool message needs a tool_call_id";
        return GW_EINVAL;
    }
    cJSON *inner = new_array();
    if (content_blocks(c, member(msg, "content"), inner, PARTS_TOOL) != GW_OK) {
        cJSON_Delete(inner);
        return GW_EINVAL;
    }
    /* cache points are not tool result content: keep them for after the toolResult block */
    int n_cache = 0;
    for (int i = cJSON_GetArraySize(inner) - 1; i >= 0; i--) {
        if (cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(inner, i), "cachePoint")) {
            cJSON_DeleteItemFromArray(inner, i);
            n_cache++;
        }
    }
    cJSON *blocks = new_array(), *b = new_object(), *tr = new_object();
    add(tr, "toolUseId", raw_node(id));
    add(tr, "content", inner);
    add(b, "toolResult", tr);
    cJSON_AddItemToArray(blocks, b);
    if (n_cache || wants_cache(msg))
        add_cache_point(blocks);
    c->has_tool_blocks = true;
    add_turn(c, "user", blocks);
    return GW_OK;
}

static int messages(req_ctx_t *c, gw_str_t msgs)
{
    if (!is_type(msgs, GW_JSON_ARRAY)) {
        c->err = "messages must be an array";
        return GW_EINVAL;
    }
    size_t pos = 0;
    gw_str_t msg;
    int rc;
    while ((rc = gw_json_array_next(msgs, &pos, &msg)) == GW_OK) {
        gw_str_t role = member(msg, "role");
        if (string_is(role, "system") || string_is(role, "developer")) {
            size_t before = (size_t)cJSON_GetArraySize(c->system);
            if (content_blocks(c, member(msg, "content"), c->system, PARTS_SYSTEM) != GW_OK)
                return GW_EINVAL;
            if (wants_cache(msg) && (size_t)cJSON_GetArraySize(c->system) > before)
                add_cache_point(c->system);
        } else if (string_is(role, "user")) {
            cJSON *blocks = new_array();
            if (content_blocks(c, member(msg, "content"), blocks, PARTS_USER) != GW_OK) {
                cJSON_Delete(blocks);
                return GW_EINVAL;
            }
            if (wants_cache(msg) && cJSON_GetArraySize(blocks) > 0)
                add_cache_point(blocks);
            add_turn(c, "user", blocks);
        } else if (string_is(role, "assistant")) {
            if (assistant_turn(c, msg) != GW_OK)
                return GW_EINVAL;
        } else if (string_is(role, "tool")) {
            if (tool_turn(c, msg) != GW_OK)
                return GW_EINVAL;
        } else {
            c->err = "unsupported message role for Bedrock (system, developer, user, assistant and tool are)";
            return GW_EINVAL;
        }
    }
    if (rc != GW_DONE) {
        c->err = "malformed messages array";
        return GW_EINVAL;
    }
    return GW_OK;
}

static int tool_config(req_ctx_t *c, gw_str_t tools, gw_str_t choice, cJSON *root)
{
    if (!is_type(tools, GW_JSON_ARRAY))
        return GW_OK;
    cJSON *specs = new_array();
    size_t pos = 0;
    gw_str_t tool;
    int rc;
    while ((rc = gw_json_array_next(tools, &pos, &tool)) == GW_OK) {
        gw_str_t fn = member(tool, "function"), name = member(fn, "name");
        if (!string_is(member(tool, "type"), "function") || !is_type(name, GW_JSON_STRING)) {
            c->err = "Bedrock supports only function tools with a name";
            cJSON_Delete(specs);
            return GW_EINVAL;
        }
        gw_str_t desc = member(fn, "description"), params = member(fn, "parameters");
        cJSON *spec = new_object(), *schema = new_object(), *t = new_object();
        add(spec, "name", raw_node(name));
        if (is_type(desc, GW_JSON_STRING) && desc.len > 2)
            add(spec, "description", raw_node(desc));
        add(schema, "json",
            is_type(params, GW_JSON_OBJECT) ? raw_node(params) : raw_node(GW_STR("{\"type\":\"object\",\"properties\":{}}")));
        add(spec, "inputSchema", schema);
        add(t, "toolSpec", spec);
        cJSON_AddItemToArray(specs, t);
        if (wants_cache(tool))
            add_cache_point(specs);
    }
    if (rc != GW_DONE) {
        c->err = "malformed tools array";
        cJSON_Delete(specs);
        return GW_EINVAL;
    }
    if (cJSON_GetArraySize(specs) == 0) {
        cJSON_Delete(specs);
        return GW_OK;
    }
    cJSON *tc = NULL;
    if (string_is(choice, "none")) {
        /* Converse has no "none": without tool blocks in the conversation the tools are simply
         * not offered; with them toolConfig must stay (Bedrock requires it), without a choice. */
        if (!c->has_tool_blocks) {
            cJSON_Delete(specs);
            return GW_OK;
        }
    } else if (string_is(choice, "auto")) {
        tc = new_object();
        add(tc, "auto", new_object());
    } else if (string_is(choice, "required")) {
        tc = new_object();
        add(tc, "any", new_object());
    } else if (is_type(choice, GW_JSON_OBJECT)) {
        gw_str_t name = member(member(choice, "function"), "name");
        if (!is_type(name, GW_JSON_STRING)) {
            c->err = "tool_choice must name a function";
            cJSON_Delete(specs);
            return GW_EINVAL;
        }
        cJSON *t = new_object();
        add(t, "name", raw_node(name));
        tc = new_object();
        add(tc, "tool", t);
    } else if (choice.base && !is_type(choice, GW_JSON_NULL)) {
        c->err = "unsupported tool_choice for Bedrock (auto, required, none or a named function)";
        cJSON_Delete(specs);
        return GW_EINVAL;
    }
    cJSON *cfg = new_object();
    add(cfg, "tools", specs);
    if (tc)
        add(cfg, "toolChoice", tc);
    add(root, "toolConfig", cfg);
    return GW_OK;
}

/* Sets key in obj to item, replacing an existing member. */
static void put(cJSON *obj, const char *key, cJSON *item)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    else
        add(obj, key, item);
}

static int build_converse(bedrock_tr_t *bt, gw_str_t body, cJSON *root, req_ctx_t *c)
{
    gw_str_t msgs = GW_STR_NULL, max_tokens = GW_STR_NULL, max_completion = GW_STR_NULL, temperature = GW_STR_NULL,
             top_p = GW_STR_NULL, stop = GW_STR_NULL, tools = GW_STR_NULL, choice = GW_STR_NULL,
             thinking = GW_STR_NULL, amrf = GW_STR_NULL, guardrail = GW_STR_NULL, perf = GW_STR_NULL,
             stream_options = GW_STR_NULL, n = GW_STR_NULL;
    size_t pos = 0;
    gw_str_t k, v;
    int rc;
    while ((rc = gw_json_object_next(body, &pos, &k, &v)) == GW_OK) {
        if (gw_json_key_eq(k, GW_STR("messages")))
            msgs = v;
        else if (gw_json_key_eq(k, GW_STR("max_tokens")))
            max_tokens = v;
        else if (gw_json_key_eq(k, GW_STR("max_completion_tokens")))
            max_completion = v;
        else if (gw_json_key_eq(k, GW_STR("temperature")))
            temperature = v;
        else if (gw_json_key_eq(k, GW_STR("top_p")))
            top_p = v;
        else if (gw_json_key_eq(k, GW_STR("stop")))
            stop = v;
        else if (gw_json_key_eq(k, GW_STR("tools")))
            tools = v;
        else if (gw_json_key_eq(k, GW_STR("tool_choice")))
            choice = v;
        else if (gw_json_key_eq(k, GW_STR("thinking")))
            thinking = v;
        else if (gw_json_key_eq(k, GW_STR("additionalModelRequestFields")))
            amrf = v;
        else if (gw_json_key_eq(k, GW_STR("guardrailConfig")))
            guardrail = v;
        else if (gw_json_key_eq(k, GW_STR("performanceConfig")))
            perf = v;
        else if (gw_json_key_eq(k, GW_STR("stream_options")))
            stream_options = v;
        else if (gw_json_key_eq(k, GW_STR("n")))
            n = v;
    }
    if (rc != GW_DONE) {
        c->err = "the request body is not a JSON object";
        return GW_EINVAL;
    }
    uint64_t nv;
    if (is_type(n, GW_JSON_NUMBER) && (gw_json_uint(n, &nv) != GW_OK || nv != 1)) {
        c->err = "Bedrock Converse returns one choice: n must be 1";
        return GW_EINVAL;
    }
    bool iu = false;
    bt->include_usage = gw_json_bool(member(stream_options, "include_usage"), &iu) == GW_OK && iu;

    c->messages = new_array();
    c->system = new_array();
    add(root, "messages", c->messages);
    add(root, "system", c->system);
    if (messages(c, msgs) != GW_OK)
        return GW_EINVAL;

    cJSON *ic = new_object();
    add(root, "inferenceConfig", ic);
    gw_str_t mt = is_type(max_completion, GW_JSON_NUMBER) ? max_completion : max_tokens;
    if (is_type(mt, GW_JSON_NUMBER))
        add(ic, "maxTokens", raw_node(mt));
    if (is_type(temperature, GW_JSON_NUMBER))
        add(ic, "temperature", raw_node(temperature));
    if (is_type(top_p, GW_JSON_NUMBER))
        add(ic, "topP", raw_node(top_p));
    if (is_type(stop, GW_JSON_STRING)) {
        cJSON *arr = new_array();
        cJSON_AddItemToArray(arr, raw_node(stop));
        add(ic, "stopSequences", arr);
    } else if (is_type(stop, GW_JSON_ARRAY)) {
        size_t p2 = 0;
        gw_str_t s;
        cJSON *arr = new_array();
        while ((rc = gw_json_array_next(stop, &p2, &s)) == GW_OK) {
            if (!is_type(s, GW_JSON_STRING)) {
                rc = GW_EINVAL;
                break;
            }
            cJSON_AddItemToArray(arr, raw_node(s));
        }
        add(ic, "stopSequences", arr);
        if (rc != GW_DONE) {
            c->err = "stop must be a string or an array of strings";
            return GW_EINVAL;
        }
    }
    if (tool_config(c, tools, choice, root) != GW_OK)
        return GW_EINVAL;

    /* Vendor fields: "thinking" (Anthropic extended thinking) goes to additionalModelRequestFields,
     * and an explicit additionalModelRequestFields object is merged over it member by member. */
    cJSON *extra = NULL;
    if (is_type(thinking, GW_JSON_OBJECT)) {
        extra = new_object();
        add(extra, "thinking", raw_node(thinking));
    }
    if (is_type(amrf, GW_JSON_OBJECT)) {
        if (extra == NULL)
            extra = new_object();
        size_t p3 = 0;
        while ((rc = gw_json_object_next(amrf, &p3, &k, &v)) == GW_OK) {
            string_value(k, &c->s);
            put(extra, gw_buf_cstr(&c->s), raw_node(v));
        }
    }
    if (extra)
        add(root, "additionalModelRequestFields", extra);
    if (is_type(guardrail, GW_JSON_OBJECT))
        add(root, "guardrailConfig", raw_node(guardrail));
    if (is_type(perf, GW_JSON_OBJECT))
        add(root, "performanceConfig", raw_node(perf));
    return GW_OK;
}

/* request() runs once per attempt: whatever an earlier attempt left of a response goes. */
static void reset_response(bedrock_tr_t *bt)
{
    gw_decoder_free(bt->decoder);
    bt->decoder = NULL;
    bt->encoding_failed = bt->body_too_big = bt->finished = bt->saw_stop = false;
    bt->rs_open = bt->rs_redacted = false;
    bt->rs_block = -1;
    bt->n_tools = 0;
    bt->n_calls = 0;
    gw_buf_reset(&bt->body);
    gw_buf_reset(&bt->rs_text);
    gw_buf_reset(&bt->rs_sig);
    gw_buf_reset(&bt->rs_data);
    gw_eventstream_decoder_free(&bt->es);
    gw_eventstream_decoder_init(&bt->es);
    memset(&bt->base.usage, 0, sizeof(bt->base.usage));
    bt->base.stream_failed = false;
}

static int tr_request(gw_translator_t *t, const gw_translate_request_t *in, gw_translate_output_t *out,
                      const char **err)
{
    bedrock_tr_t *bt = (bedrock_tr_t *)t;
    req_ctx_t c = {0};
    reset_response(bt);
    gw_buf_init(&c.s, GW_BUF_UNLIMITED);
    cJSON *root = new_object();
    int rc = GW_EINVAL;

    /* The model: the override, else the client's; Bedrock reports none, so this is also the
     * model the client is told. */
    gw_buf_t model;
    gw_buf_init(&model, 4096);
    if (in->model_override && *in->model_override)
        gw_buf_append(&model, in->model_override, strlen(in->model_override));
    else if (!string_value(in->model_raw.base ? in->model_raw : member(in->body, "model"), &model))
        gw_buf_reset(&model);
    if (model.len == 0) {
        c.err = "the request has no model";
        goto out;
    }
    bt->stream = in->stream;
    gw_buf_reset(&bt->model_json);
    gw_json_append_string(&bt->model_json, model.data, model.len);
    new_id(bt);

    if (build_converse(bt, in->body, root, &c) != GW_OK)
        goto out;
    gw_buf_reset(&out->path);
    if (gw_bedrock_model_path(&out->path, gw_buf_str(&model), bt->stream ? "converse-stream" : "converse") != GW_OK) {
        c.err = "the model name is too long";
        goto out;
    }
    char *json = cJSON_PrintUnformatted(root);
    if (json == NULL) {
        gw_log_error("out of memory printing a Bedrock request");
        abort();
    }
    gw_buf_reset(&out->body);
    rc = gw_buf_append(&out->body, json, strlen(json));
    free(json);
    if (rc != GW_OK) {
        c.err = "the translated request is too large";
        rc = GW_EINVAL;
        goto out;
    }
    out->body_changed = true;
    snprintf(out->content_type, sizeof(out->content_type), "application/json");
    gw_translate_output_add_header(out, "accept", bt->stream ? "application/vnd.amazon.eventstream" : "application/json");
    if (bt->stream) /* no compressor between the model and the client: it would hold back tokens */
        gw_translate_output_add_header(out, "accept-encoding", "identity");
    rc = GW_OK;
out:
    if (rc != GW_OK)
        *err = c.err ? c.err : "the request cannot be translated for Bedrock";
    cJSON_Delete(root);
    gw_buf_free(&model);
    gw_buf_free(&c.s);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Response pieces shared by the JSON and the stream paths.
 */

static const char *finish_reason(gw_str_t stop)
{
    if (string_is(stop, "max_tokens") || string_is(stop, "model_context_window_exceeded"))
        return "length";
    if (string_is(stop, "tool_use"))
        return "tool_calls";
    if (string_is(stop, "content_filtered") || string_is(stop, "guardrail_intervened"))
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, null and anything new */
}

static void read_count(gw_str_t obj, const char *key, uint64_t *dst, bool *seen)
{
    uint64_t v;
    if (gw_json_uint(member(obj, key), &v) == GW_OK) {
        *dst = v;
        if (seen)
            *seen = true;
    }
}

/* Converse usage: inputTokens counts only the uncached input; cache reads and writes come apart
 * and totalTokens is their sum with outputTokens. aigw's record counts input with its cached
 * parts (token_usage.h), so input = inputTokens + cacheRead + cacheWrite, which also makes
 * prompt + completion = total for the client. Returns whether cache counters were present. */
static bool converse_usage(gw_str_t usage, gw_token_usage_t *u)
{
    uint64_t in = 0, out = 0, total = 0, cr = 0, cw = 0;
    bool has_total = false, has_cache = false;
    read_count(usage, "inputTokens", &in, NULL);
    read_count(usage, "outputTokens", &out, NULL);
    read_count(usage, "totalTokens", &total, &has_total);
    read_count(usage, "cacheReadInputTokens", &cr, &has_cache);
    read_count(usage, "cacheWriteInputTokens", &cw, &has_cache);
    memset(u, 0, sizeof(*u));
    u->present = true;
    u->input = in + cr + cw;
    u->cached_input = cr;
    u->cache_creation = cw;
    u->output = out;
    u->total = has_total ? total : u->input + u->output;
    return has_cache;
}

static void append_usage(gw_buf_t *out, const gw_token_usage_t *u, bool cache_details)
{
    gw_buf_appendf(out, "{\"prompt_tokens\":%" PRIu64 ",\"completion_tokens\":%" PRIu64 ",\"total_tokens\":%" PRIu64,
                   u->input, u->output, u->total);
    if (cache_details)
        gw_buf_appendf(out, ",\"prompt_tokens_details\":{\"cached_tokens\":%" PRIu64 ",\"cache_write_tokens\":%" PRIu64 "}",
                       u->cached_input, u->cache_creation);
    gw_buf_append_byte(out, '}');
}

static void append_openai_error(gw_buf_t *out, const char *msg, size_t msg_len, gw_str_t type, int status)
{
    gw_buf_append_lit(out, "{\"error\":{\"message\":");
    gw_json_append_string(out, msg, msg_len);
    gw_buf_append_lit(out, ",\"type\":");
    gw_json_append_string(out, type.base ? type.base : "", type.len);
    gw_buf_append_lit(out, ",\"param\":null,\"code\":");
    if (status > 0)
        gw_buf_appendf(out, "\"%d\"}}", status);
    else
        gw_buf_append_lit(out, "null}}");
}

/* ---------------------------------------------------------------------------------------------
 * Non-streaming response: Converse JSON -> chat.completion.
 */

static void translate_body(bedrock_tr_t *bt, gw_str_t body, gw_buf_t *out)
{
    gw_str_t content = GW_STR_NULL;
    if (gw_json_type(body) != GW_JSON_OBJECT ||
        (gw_json_path_get(body, "output.message.content", &content) == GW_OK && !is_type(content, GW_JSON_ARRAY) &&
         !is_type(content, GW_JSON_NULL))) {
        static const char msg[] = "Bedrock returned a response that is not a Converse JSON object";
        append_openai_error(out, msg, sizeof(msg) - 1, GW_STR("AWSBedrockBackendError"), 0);
        bt->base.stream_failed = true;
        return;
    }
    gw_buf_t text, reasoning, thinking, calls;
    gw_buf_init(&text, GW_BUF_UNLIMITED);
    gw_buf_init(&reasoning, GW_BUF_UNLIMITED);
    gw_buf_init(&thinking, GW_BUF_UNLIMITED);
    gw_buf_init(&calls, GW_BUF_UNLIMITED);
    size_t n_calls = 0, n_thinking = 0;
    bool has_text = false, has_reasoning = false;
    size_t pos = 0;
    gw_str_t block;
    while (is_type(content, GW_JSON_ARRAY) && gw_json_array_next(content, &pos, &block) == GW_OK) {
        gw_str_t v;
        if (is_type(v = member(block, "text"), GW_JSON_STRING)) {
            lenient_unescape(v, &text);
            has_text = true;
        } else if (is_type(v = member(block, "toolUse"), GW_JSON_OBJECT) &&
                   !string_is(member(v, "type"), "server_tool_use")) {
            /* (a server tool, e.g. Nova's code interpreter, already ran: not the client's to call) */
            if (n_calls++)
                gw_buf_append_byte(&calls, ',');
            gw_buf_append_lit(&calls, "{\"id\":");
            append_string_from(&calls, member(v, "toolUseId"), &bt->tmp);
            gw_buf_append_lit(&calls, ",\"type\":\"function\",\"function\":{\"name\":");
            append_string_from(&calls, member(v, "name"), &bt->tmp);
            gw_buf_append_lit(&calls, ",\"arguments\":");
            gw_str_t input = member(v, "input");
            if (input.base == NULL || is_type(input, GW_JSON_NULL))
                input = GW_STR("{}");
            gw_json_append_string(&calls, input.base, input.len); /* the model's JSON, byte for byte */
            gw_buf_append_lit(&calls, "}}");
        } else if (is_type(v = member(block, "reasoningContent"), GW_JSON_OBJECT)) {
            gw_str_t rt = member(v, "reasoningText"), red = member(v, "redactedContent");
            if (is_type(rt, GW_JSON_OBJECT)) {
                gw_str_t t = member(rt, "text"), sig = member(rt, "signature");
                lenient_unescape(t, &reasoning);
                has_reasoning = true;
                if (n_thinking++)
                    gw_buf_append_byte(&thinking, ',');
                gw_buf_append_lit(&thinking, "{\"type\":\"thinking\",\"thinking\":");
                append_string_from(&thinking, t, &bt->tmp);
                if (is_type(sig, GW_JSON_STRING)) {
                    gw_buf_append_lit(&thinking, ",\"signature\":");
                    append_string_from(&thinking, sig, &bt->tmp);
                }
                gw_buf_append_byte(&thinking, '}');
            } else if (is_type(red, GW_JSON_STRING)) {
                if (n_thinking++)
                    gw_buf_append_byte(&thinking, ',');
                gw_buf_append_lit(&thinking, "{\"type\":\"redacted_thinking\",\"data\":");
                append_string_from(&thinking, red, &bt->tmp);
                gw_buf_append_byte(&thinking, '}');
            }
        }
        /* image, document, citationsContent, guardContent...: nothing in a chat message */
    }
    gw_str_t stop = member(body, "stopReason"), usage = member(body, "usage");

    gw_buf_appendf(out, "{\"id\":\"%s\",\"object\":\"chat.completion\",\"created\":%" PRId64 ",\"model\":", bt->id,
                   bt->created);
    gw_buf_append_str(out, gw_buf_str(&bt->model_json));
    gw_buf_append_lit(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (has_text || n_calls == 0)
        gw_json_append_string(out, text.data ? text.data : "", text.len);
    else
        gw_buf_append_lit(out, "null");
    if (has_reasoning) {
        gw_buf_append_lit(out, ",\"reasoning_content\":");
        gw_json_append_string(out, reasoning.data ? reasoning.data : "", reasoning.len);
    }
    if (n_thinking) {
        gw_buf_append_lit(out, ",\"thinking_blocks\":[");
        gw_buf_append_str(out, gw_buf_str(&thinking));
        gw_buf_append_byte(out, ']');
    }
    if (n_calls) {
        gw_buf_append_lit(out, ",\"tool_calls\":[");
        gw_buf_append_str(out, gw_buf_str(&calls));
        gw_buf_append_byte(out, ']');
    }
    gw_buf_appendf(out, "},\"logprobs\":null,\"finish_reason\":\"%s\"}]", finish_reason(stop));
    if (is_type(usage, GW_JSON_OBJECT)) {
        bool cache = converse_usage(usage, &bt->base.usage);
        gw_buf_append_lit(out, ",\"usage\":");
        append_usage(out, &bt->base.usage, cache);
    }
    gw_buf_append_byte(out, '}');
    gw_buf_free(&text);
    gw_buf_free(&reasoning);
    gw_buf_free(&thinking);
    gw_buf_free(&calls);
}

/* ---------------------------------------------------------------------------------------------
 * Streaming response: ConverseStream event stream -> chat.completion.chunk SSE.
 */

static void chunk_open(bedrock_tr_t *bt, gw_buf_t *out)
{
    gw_buf_appendf(out, "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%" PRId64 ",\"model\":",
                   bt->id, bt->created);
    gw_buf_append_str(out, gw_buf_str(&bt->model_json));
    gw_buf_append_lit(out, ",\"choices\":[{\"index\":0,\"delta\":{");
}

static void chunk_close(gw_buf_t *out, const char *finish)
{
    if (finish)
        gw_buf_appendf(out, "},\"logprobs\":null,\"finish_reason\":\"%s\"}]}\n\n", finish);
    else
        gw_buf_append_lit(out, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
}

/* The stream failed: an error event in the OpenAI format, no [DONE], nothing after it. */
static void stream_error(bedrock_tr_t *bt, gw_str_t type, const char *msg, size_t msg_len)
{
    if (bt->finished)
        return;
    gw_buf_append_lit(bt->out, "event: error\ndata: ");
    append_openai_error(bt->out, msg, msg_len, type, 0);
    gw_buf_append_lit(bt->out, "\n\n");
    bt->base.stream_failed = true;
    bt->finished = true;
}

static void stream_error_lit(bedrock_tr_t *bt, const char *msg)
{
    stream_error(bt, GW_STR("AWSBedrockBackendError"), msg, strlen(msg));
}

/* Reports the reasoning block that just ended as one thinking_blocks entry: the text was already
 * streamed in reasoning_content, but the client needs the whole signed block to send it back. */
static void flush_reasoning(bedrock_tr_t *bt)
{
    if (!bt->rs_open)
        return;
    gw_buf_t *out = bt->out;
    chunk_open(bt, out);
    if (bt->rs_redacted) {
        gw_buf_append_lit(out, "\"thinking_blocks\":[{\"type\":\"redacted_thinking\",\"data\":");
        gw_json_append_string(out, bt->rs_data.data ? bt->rs_data.data : "", bt->rs_data.len);
    } else {
        gw_buf_append_lit(out, "\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":");
        gw_json_append_string(out, bt->rs_text.data ? bt->rs_text.data : "", bt->rs_text.len);
        if (bt->rs_sig.len) {
            gw_buf_append_lit(out, ",\"signature\":");
            gw_json_append_string(out, bt->rs_sig.data, bt->rs_sig.len);
        }
    }
    gw_buf_append_lit(out, "}]");
    chunk_close(out, NULL);
    bt->rs_open = bt->rs_redacted = false;
    gw_buf_reset(&bt->rs_text);
    gw_buf_reset(&bt->rs_sig);
    gw_buf_reset(&bt->rs_data);
}

static int64_t block_index(gw_str_t payload)
{
    uint64_t v;
    return gw_json_uint(member(payload, "contentBlockIndex"), &v) == GW_OK && v <= INT64_MAX ? (int64_t)v : -1;
}

/* The client's tool_calls index of a content block (SERVER_TOOL for a server tool's block),
 * added when new; -1 past the limit. */
static int tool_slot(bedrock_tr_t *bt, int64_t block, bool create, bool server)
{
    for (size_t i = bt->n_tools; block >= 0 && i-- > 0;)
        if (bt->tools[i].block == block)
            return bt->tools[i].tool;
    if (!create && bt->n_tools) {
        /* Indexes missing on either side (seen from test upstreams, not from Bedrock): the delta
         * belongs to the last call started, which takes the delta's index from now on. */
        tool_slot_t *last = &bt->tools[bt->n_tools - 1];
        if (block < 0 || last->block < 0) {
            if (last->block < 0)
                last->block = block;
            return last->tool;
        }
    }
    if (bt->n_tools == MAX_TOOL_BLOCKS)
        return -1;
    if (bt->n_tools == bt->cap_tools) {
        bt->cap_tools = bt->cap_tools ? bt->cap_tools * 2 : 8;
        bt->tools = gw_realloc(bt->tools, bt->cap_tools * sizeof(*bt->tools));
    }
    int k = server ? SERVER_TOOL : bt->n_calls++;
    bt->tools[bt->n_tools++] = (tool_slot_t){block, k};
    return k;
}

static void on_block_start(bedrock_tr_t *bt, gw_str_t payload)
{
    gw_str_t tu = member(member(payload, "start"), "toolUse");
    flush_reasoning(bt);
    if (!is_type(tu, GW_JSON_OBJECT))
        return;
    int k = tool_slot(bt, block_index(payload), true, string_is(member(tu, "type"), "server_tool_use"));
    if (k == SERVER_TOOL)
        return;
    if (k < 0) {
        stream_error_lit(bt, "too many tool calls in one Bedrock response");
        return;
    }
    chunk_open(bt, bt->out);
    gw_buf_appendf(bt->out, "\"tool_calls\":[{\"index\":%d,\"id\":", k);
    append_string_from(bt->out, member(tu, "toolUseId"), &bt->tmp);
    gw_buf_append_lit(bt->out, ",\"type\":\"function\",\"function\":{\"name\":");
    append_string_from(bt->out, member(tu, "name"), &bt->tmp);
    gw_buf_append_lit(bt->out, ",\"arguments\":\"\"}}]");
    chunk_close(bt->out, NULL);
}

static void on_block_delta(bedrock_tr_t *bt, gw_str_t payload)
{
    gw_str_t delta = member(payload, "delta"), v;
    int64_t block = block_index(payload);
    if (is_type(v = member(delta, "reasoningContent"), GW_JSON_OBJECT)) {
        gw_str_t text = member(v, "text"), sig = member(v, "signature"), red = member(v, "redactedContent");
        if (bt->rs_open && bt->rs_block != block)
            flush_reasoning(bt);
        bt->rs_open = true;
        bt->rs_block = block;
        if (is_type(text, GW_JSON_STRING)) {
            size_t before = bt->rs_text.len;
            lenient_unescape(text, &bt->rs_text);
            if (bt->rs_text.len > MAX_REASONING_BLOCK) {
                stream_error_lit(bt, "a Bedrock reasoning block exceeds the gateway's limit");
                return;
            }
            if (bt->rs_text.len > before) {
                chunk_open(bt, bt->out);
                gw_buf_append_lit(bt->out, "\"reasoning_content\":");
                gw_json_append_string(bt->out, bt->rs_text.data + before, bt->rs_text.len - before);
                chunk_close(bt->out, NULL);
            }
        }
        if (is_type(sig, GW_JSON_STRING))
            lenient_unescape(sig, &bt->rs_sig);
        if (is_type(red, GW_JSON_STRING)) {
            lenient_unescape(red, &bt->rs_data);
            bt->rs_redacted = true;
        }
        if (bt->rs_sig.len > MAX_REASONING_BLOCK || bt->rs_data.len > MAX_REASONING_BLOCK)
            stream_error_lit(bt, "a Bedrock reasoning block exceeds the gateway's limit");
        return;
    }
    if (is_type(v = member(delta, "text"), GW_JSON_STRING)) {
        flush_reasoning(bt);
        chunk_open(bt, bt->out);
        gw_buf_append_lit(bt->out, "\"content\":");
        append_string_from(bt->out, v, &bt->tmp);
        chunk_close(bt->out, NULL);
        return;
    }
    if (is_type(v = member(delta, "toolUse"), GW_JSON_OBJECT)) {
        flush_reasoning(bt);
        int k = tool_slot(bt, block, false, false);
        if (k == SERVER_TOOL)
            return;
        if (k < 0) {
            stream_error_lit(bt, "too many tool calls in one Bedrock response");
            return;
        }
        chunk_open(bt, bt->out);
        gw_buf_appendf(bt->out, "\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":", k);
        gw_str_t input = member(v, "input");
        if (is_type(input, GW_JSON_STRING))
            append_string_from(bt->out, input, &bt->tmp);
        else
            gw_buf_append_lit(bt->out, "\"\"");
        gw_buf_append_lit(bt->out, "}}]");
        chunk_close(bt->out, NULL);
    }
    /* citation and other deltas have no chat-completions form */
}

static void on_event(bedrock_tr_t *bt, gw_str_t type, gw_str_t payload)
{
    if (gw_str_eq_lit(type, "messageStart")) {
        chunk_open(bt, bt->out);
        gw_buf_append_lit(bt->out, "\"role\":\"assistant\",\"content\":\"\"");
        chunk_close(bt->out, NULL);
    } else if (gw_str_eq_lit(type, "contentBlockStart")) {
        on_block_start(bt, payload);
    } else if (gw_str_eq_lit(type, "contentBlockDelta")) {
        on_block_delta(bt, payload);
    } else if (gw_str_eq_lit(type, "contentBlockStop")) {
        if (bt->rs_open && bt->rs_block == block_index(payload))
            flush_reasoning(bt);
    } else if (gw_str_eq_lit(type, "messageStop")) {
        flush_reasoning(bt);
        chunk_open(bt, bt->out);
        chunk_close(bt->out, finish_reason(member(payload, "stopReason")));
        bt->saw_stop = true;
    } else if (gw_str_eq_lit(type, "metadata")) {
        gw_str_t usage = member(payload, "usage");
        if (!is_type(usage, GW_JSON_OBJECT))
            return;
        bool cache = converse_usage(usage, &bt->base.usage);
        if (bt->include_usage) {
            gw_buf_appendf(bt->out,
                           "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%" PRId64 ",\"model\":",
                           bt->id, bt->created);
            gw_buf_append_str(bt->out, gw_buf_str(&bt->model_json));
            gw_buf_append_lit(bt->out, ",\"choices\":[],\"usage\":");
            append_usage(bt->out, &bt->base.usage, cache);
            gw_buf_append_lit(bt->out, "}\n\n");
        }
    }
}

static int on_frame(void *ud, const gw_es_message_t *m)
{
    bedrock_tr_t *bt = ud;
    gw_str_t type;
    gw_buf_reset(&bt->tmp);
    if (gw_bedrock_frame_error(m, &type, &bt->tmp)) {
        /* throttlingException, modelStreamErrorException, validationException, ... mid-stream */
        gw_buf_t msg = bt->tmp; /* flush_reasoning reuses tmp: keep the message apart */
        gw_buf_init(&bt->tmp, GW_BUF_UNLIMITED);
        flush_reasoning(bt);
        stream_error(bt, type, msg.data ? msg.data : "", msg.len);
        gw_buf_free(&msg);
        return GW_DONE;
    }
    gw_str_t mt = gw_es_header_string(m, ":message-type");
    if (mt.len && !gw_str_eq_lit(mt, "event"))
        return GW_OK;
    gw_str_t et = gw_es_header_string(m, ":event-type");
    if (gw_json_type(m->payload) != GW_JSON_OBJECT)
        return GW_OK; /* an event without a JSON payload carries nothing we could forward */
    on_event(bt, et, m->payload);
    return bt->finished ? GW_DONE : GW_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Vtable.
 */

static int tr_response_head(gw_translator_t *t, int status, gw_str_t content_type, gw_str_t content_encoding)
{
    bedrock_tr_t *bt = (bedrock_tr_t *)t;
    (void)status;
    (void)content_type;
    gw_encoding_t enc = gw_encoding_parse(content_encoding);
    if (enc == GW_ENCODING_UNSUPPORTED)
        bt->encoding_failed = true;
    else if (enc != GW_ENCODING_IDENTITY)
        bt->decoder = gw_decoder_new(enc, bt->stream ? GW_BUF_UNLIMITED : MAX_RESPONSE_BODY);
    t->passthrough_response = false;
    t->stream_response = bt->stream;
    snprintf(t->client_content_type, sizeof(t->client_content_type), "%s",
             bt->stream ? "text/event-stream" : "application/json");
    return GW_OK;
}

static void stream_feed(bedrock_tr_t *bt, const char *p, size_t n)
{
    if (bt->finished || n == 0)
        return;
    int rc = gw_eventstream_feed(&bt->es, p, n, on_frame, bt);
    if (rc != GW_OK && !bt->finished) {
        char msg[192];
        snprintf(msg, sizeof(msg), "malformed event stream from Bedrock: %s",
                 bt->es.error ? bt->es.error : "decoding failed");
        stream_error_lit(bt, msg);
    }
}

static int tr_response_body(gw_translator_t *t, const char *p, size_t n, bool end, gw_buf_t *out)
{
    bedrock_tr_t *bt = (bedrock_tr_t *)t;
    bt->out = out;
    if (bt->encoding_failed) {
        if (end) {
            static const char msg[] = "Bedrock answered with an unsupported content-encoding";
            if (bt->stream) {
                if (!bt->finished)
                    stream_error_lit(bt, msg);
            } else {
                append_openai_error(out, msg, sizeof(msg) - 1, GW_STR("AWSBedrockBackendError"), 0);
                t->stream_failed = true;
            }
        }
        return GW_OK;
    }
    if (n && bt->decoder) {
        gw_buf_reset(&bt->decoded);
        if (gw_decoder_feed(bt->decoder, p, n, &bt->decoded) != GW_OK) {
            bt->encoding_failed = true;
            return tr_response_body(t, NULL, 0, end, out);
        }
        p = bt->decoded.data;
        n = bt->decoded.len;
    }
    if (bt->stream) {
        stream_feed(bt, p, n);
        if (end && !bt->finished) {
            flush_reasoning(bt);
            if (gw_eventstream_has_partial(&bt->es) || !bt->saw_stop)
                stream_error_lit(bt, "the Bedrock event stream ended before messageStop");
            else
                gw_buf_append_lit(out, "data: [DONE]\n\n");
            bt->finished = true;
        }
        return GW_OK;
    }
    if (n && !bt->body_too_big && gw_buf_append(&bt->body, p, n) != GW_OK)
        bt->body_too_big = true;
    if (end) {
        if (bt->body_too_big) {
            static const char msg[] = "the Bedrock response exceeds the gateway's limit";
            append_openai_error(out, msg, sizeof(msg) - 1, GW_STR("AWSBedrockBackendError"), 0);
            t->stream_failed = true;
        } else {
            translate_body(bt, gw_buf_str(&bt->body), out);
        }
    }
    return GW_OK;
}

static int tr_response_error(gw_translator_t *t, int status, const gw_http_header_t *headers, size_t n_headers,
                             gw_str_t body, gw_buf_t *out)
{
    (void)t;
    gw_str_t type = gw_bedrock_error_type(headers, n_headers);
    gw_buf_t msg;
    gw_buf_init(&msg, GW_BUF_UNLIMITED);
    bool json = gw_bedrock_error_message(body, &msg);
    if (!json) {
        size_t n = body.len;
        while (n && (body.base[n - 1] == '\n' || body.base[n - 1] == '\r' || body.base[n - 1] == ' '))
            n--;
        gw_buf_reset(&msg);
        if (n)
            gw_buf_append(&msg, body.base, GW_MIN(n, (size_t)4096));
        else
            gw_buf_appendf(&msg, "Bedrock returned status %d with an empty body", status);
    }
    /* AWS's JSON protocol may name the error in the body instead ("__type": "ns#ValidationException");
     * a body that is not JSON gets the reference's AWSBedrockBackendError. */
    gw_str_t t2 = member(body, "__type");
    if (json && type.len == 0 && is_type(t2, GW_JSON_STRING) && t2.len > 2 &&
        memchr(t2.base, '\\', t2.len) == NULL) {
        type = gw_str(t2.base + 1, t2.len - 2);
        const char *hash = memrchr(type.base, '#', type.len);
        if (hash)
            type = gw_str(hash + 1, (size_t)(type.base + type.len - hash - 1));
    }
    if (!json || type.len == 0)
        type = GW_STR("AWSBedrockBackendError");
    append_openai_error(out, msg.data ? msg.data : "", msg.len, type, status);
    gw_buf_free(&msg);
    return GW_OK;
}

static void tr_destroy(gw_translator_t *t)
{
    bedrock_tr_t *bt = (bedrock_tr_t *)t;
    gw_decoder_free(bt->decoder);
    gw_eventstream_decoder_free(&bt->es);
    gw_buf_free(&bt->model_json);
    gw_buf_free(&bt->decoded);
    gw_buf_free(&bt->body);
    gw_buf_free(&bt->rs_text);
    gw_buf_free(&bt->rs_sig);
    gw_buf_free(&bt->rs_data);
    gw_buf_free(&bt->tmp);
    gw_buf_free(&t->response_model);
    free(bt->tools);
    free(bt);
}

static const gw_translator_vtable_t vtable = {
    .request = tr_request,
    .response_head = tr_response_head,
    .response_body = tr_response_body,
    .response_error = tr_response_error,
    .destroy = tr_destroy,
};

gw_translator_t *gw_openai_bedrock_new(gw_operation_t op)
{
    if (op != GW_OP_CHAT)
        return NULL;
    bedrock_tr_t *bt = gw_calloc(1, sizeof(*bt));
    bt->base.vt = &vtable;
    bt->base.passthrough_response = false;
    gw_buf_init(&bt->base.response_model, 1024);
    gw_buf_init(&bt->model_json, 8192);
    gw_buf_init(&bt->decoded, GW_BUF_UNLIMITED);
    gw_buf_init(&bt->body, MAX_RESPONSE_BODY);
    gw_buf_init(&bt->rs_text, GW_BUF_UNLIMITED);
    gw_buf_init(&bt->rs_sig, GW_BUF_UNLIMITED);
    gw_buf_init(&bt->rs_data, GW_BUF_UNLIMITED);
    gw_buf_init(&bt->tmp, GW_BUF_UNLIMITED);
    gw_eventstream_decoder_init(&bt->es);
    bt->rs_block = -1;
    return &bt->base;
}
