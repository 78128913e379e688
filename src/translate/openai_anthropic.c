/* OpenAI chat completions -> Anthropic Messages (see openai_anthropic.h). The request is read from
 * the validated client body through raw slices and built with cJSON, raw slices going in as cJSON
 * raw nodes so numbers and schemas stay byte-exact. Responses are written by hand from slices of
 * the upstream JSON, every string copied through a repairing escaper: the client always gets
 * valid JSON, however odd the upstream bytes. */
#include "translate/openai_anthropic.h"

#include "codec/decompress.h"
#include "codec/sse.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "translate/anthropic_common.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#define MAX_BODY (64u << 20)          /* non-streaming upstream body, decoded */
#define MAX_BLOCKS 4096               /* content blocks tracked per stream */
#define MAX_THINKING (32u << 20)      /* one thinking block, buffered to be re-sent whole */
#define MAX_ERROR_MESSAGE 4096

/* ---------------------------------------------------------------------------------------------
 * Raw JSON reading. The request body is validated by the gateway; upstream bodies are not, so
 * every step is bounds-checked and a broken document yields "absent", never a bad read. */

static gw_json_type_t jtype(gw_str_t v)
{
    return v.base && v.len ? gw_json_type(v) : GW_JSON_INVALID;
}

static gw_str_t jget(gw_str_t obj, const char *key)
{
    gw_str_t v;
    if (jtype(obj) == GW_JSON_OBJECT && gw_json_object_get(obj, gw_str_c(key), &v) == GW_OK)
        return v;
    return GW_STR_NULL;
}

static bool jis(gw_str_t raw, const char *lit)
{
    return jtype(raw) == GW_JSON_STRING && gw_json_key_eq(raw, gw_str_c(lit));
}

/* A string value with content (not ""). */
static bool jnonempty(gw_str_t raw)
{
    return jtype(raw) == GW_JSON_STRING && raw.len > 2;
}

static size_t skip_ws(gw_str_t s, size_t i)
{
    while (i < s.len && (s.base[i] == ' ' || s.base[i] == '\t' || s.base[i] == '\n' || s.base[i] == '\r'))
        i++;
    return i;
}

#define JARR_EACH(arr, pos, el) for (size_t pos = 0; gw_json_array_next((arr), &pos, &(el)) == GW_OK;)

/* The unescaped string as a C string (caller frees), NULL when raw is not a valid string. */
static char *jdup(gw_str_t raw)
{
    if (jtype(raw) != GW_JSON_STRING)
        return NULL;
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    if (gw_json_string_unescape(raw, &b) != GW_OK) {
        gw_buf_free(&b);
        return NULL;
    }
    gw_buf_cstr(&b);
    size_t n;
    char *s = gw_buf_detach(&b, &n);
    return s ? s : gw_strdup("");
}

/* ---------------------------------------------------------------------------------------------
 * JSON writing for responses. */

static const char hexdig[] = "0123456789abcdef";

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool hex4(const char *p, const char *end, uint32_t *out)
{
    if (end - p < 4)
        return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

/* Length of the well-formed UTF-8 sequence at p, 0 when ill-formed. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if (p[k] < 0x80 || p[k] > 0xbf)
            return 0;
    return n;
}

/* Appends the content of the raw JSON string literal (with its quotes, as found by a structural
 * scan) as the content of a JSON string (no quotes), repaired where needed: unknown escapes,
 * lone surrogates, \u0000, ill-formed UTF-8 and raw control bytes become U+FFFD or escapes, so
 * the output always passes gw_json_validate. Escapes that are fine are copied as they are. */
static int append_string_body(gw_buf_t *out, gw_str_t raw)
{
    static const char fffd[] = "\\ufffd";
    size_t saved = out->len;
    int rc = GW_OK;
#define PUT(ptr, n)                                  \
    do {                                             \
        if (rc == GW_OK)                             \
            rc = gw_buf_append(out, (ptr), (n));     \
    } while (0)
    if (raw.base == NULL || raw.len < 2 || raw.base[0] != '"' || raw.base[raw.len - 1] != '"')
        return GW_OK;
    const char *p = raw.base + 1, *end = raw.base + raw.len - 1, *run = p;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_len((const unsigned char *)p, (const unsigned char *)end);
            if (k) {
                p += k;
                continue;
            }
            PUT(run, (size_t)(p - run));
            PUT(fffd, sizeof(fffd) - 1);
            run = ++p;
            continue;
        }
        PUT(run, (size_t)(p - run));
        size_t take = 1; /* input bytes consumed */
        const char *copy = NULL;   /* NULL: write U+FFFD */
        if (c == '\\' && p + 1 < end) {
            char e = p[1];
            uint32_t cp, lo;
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                copy = p, take = 2;
            } else if (e == 'u' && hex4(p + 2, end, &cp)) {
                take = 6;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (end - p >= 12 && p[6] == '\\' && p[7] == 'u' && hex4(p + 8, end, &lo) && lo >= 0xdc00 &&
                        lo <= 0xdfff)
                        copy = p, take = 12;
                } else if (!(cp >= 0xdc00 && cp <= 0xdfff) && cp != 0) {
                    copy = p; /* lone surrogates and NUL become U+FFFD, like gw_json_append_string */
                }
            }
        } else if (c < 0x20 && c != 0) { /* NUL falls through to U+FFFD, like \u0000 */
            char esc[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
            PUT(esc, sizeof(esc));
            run = ++p;
            continue;
        }
        /* else: a lone backslash at the end, or a quote a structural scan let through */
        if (copy)
            PUT(copy, take);
        else
            PUT(fffd, sizeof(fffd) - 1);
        p += take;
        run = p;
    }
    PUT(run, (size_t)(p - run));
#undef PUT
    if (rc != GW_OK)
        out->len = saved; /* all or nothing, like the core JSON writers */
    return rc;
}

/* A JSON string literal repaired as above; "" when raw is not a string. */
static void append_string(gw_buf_t *out, gw_str_t raw)
{
    gw_buf_append_byte(out, '"');
    if (jtype(raw) == GW_JSON_STRING)
        append_string_body(out, raw);
    gw_buf_append_byte(out, '"');
}

static void append_usage(gw_buf_t *out, const gw_token_usage_t *u)
{
    gw_buf_append_lit(out, "{\"prompt_tokens\":");
    gw_buf_append_u64(out, u->input);
    gw_buf_append_lit(out, ",\"completion_tokens\":");
    gw_buf_append_u64(out, u->output);
    gw_buf_append_lit(out, ",\"total_tokens\":");
    gw_buf_append_u64(out, u->total);
    gw_buf_append_lit(out, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    gw_buf_append_u64(out, u->cached_input);
    /* the name gpt-5.x uses for prompt-cache writes, which the OpenAI usage reader knows too */
    if (u->cache_creation) {
        gw_buf_append_lit(out, ",\"cache_write_tokens\":");
        gw_buf_append_u64(out, u->cache_creation);
    }
    gw_buf_append_byte(out, '}');
    if (u->reasoning) {
        gw_buf_append_lit(out, ",\"completion_tokens_details\":{\"reasoning_tokens\":");
        gw_buf_append_u64(out, u->reasoning);
        gw_buf_append_byte(out, '}');
    }
    gw_buf_append_byte(out, '}');
}

static const char *finish_reason(gw_str_t stop_reason)
{
    if (jis(stop_reason, "max_tokens") || jis(stop_reason, "model_context_window_exceeded"))
        return "length";
    if (jis(stop_reason, "tool_use"))
        return "tool_calls";
    if (jis(stop_reason, "refusal"))
        return "content_filter";
    /* end_turn, stop_sequence, pause_turn and anything new */
    return "stop";
}

static void openai_error(gw_buf_t *out, gw_str_t message, const char *type, const char *code)
{
    gw_buf_append_lit(out, "{\"error\":{\"message\":");
    gw_json_append_string(out, message.base, GW_MIN(message.len, (size_t)MAX_ERROR_MESSAGE));
    gw_buf_append_lit(out, ",\"type\":");
    gw_json_append_string(out, type, strlen(type));
    gw_buf_append_lit(out, ",\"param\":null,\"code\":");
    if (code)
        gw_json_append_string(out, code, strlen(code));
    else
        gw_buf_append_lit(out, "null");
    gw_buf_append_lit(out, "}}");
}

void gw_openai_anthropic_error_body(int status, gw_str_t body, gw_buf_t *out)
{
    gw_buf_t type, message;
    gw_buf_init(&type, 256);
    gw_buf_init(&message, MAX_ERROR_MESSAGE * 4);
    char code[16];
    snprintf(code, sizeof(code), "%d", status);
    gw_anthropic_error_parse(body, &type, &message);
    if (message.len == 0) {
        gw_str_t v = jget(body, "message");
        if (jtype(v) == GW_JSON_STRING)
            gw_json_string_unescape(v, &message);
    }
    if (message.len == 0) {
        gw_str_t m = body;
        while (m.len && (m.base[m.len - 1] == '\n' || m.base[m.len - 1] == '\r' || m.base[m.len - 1] == ' '))
            m.len--;
        if (m.len == 0)
            gw_buf_appendf(&message, "upstream returned status %d with an empty body", status);
        else
            gw_buf_append(&message, m.base, GW_MIN(m.len, (size_t)MAX_ERROR_MESSAGE));
    }
    openai_error(out, gw_buf_str(&message), type.len ? gw_buf_cstr(&type) : gw_anthropic_error_type(status), code);
    gw_buf_free(&type);
    gw_buf_free(&message);
}

/* ---------------------------------------------------------------------------------------------
 * Request: OpenAI chat completions -> Messages. */

/* cJSON allocation failure is not recoverable here either (core/alloc.h aborts the same way). */
static cJSON *must(cJSON *n)
{
    if (n == NULL) {
        gw_log_error("out of memory building an Anthropic request");
        abort();
    }
    return n;
}

static cJSON *raw_node(gw_str_t raw)
{
    char *tmp = gw_strndup(raw.base, raw.len);
    cJSON *n = must(cJSON_CreateRaw(tmp));
    free(tmp);
    return n;
}

static void add(cJSON *obj, const char *key, cJSON *item)
{
    if (!cJSON_AddItemToObject(obj, key, item))
        must(NULL);
}

static void add_raw(cJSON *obj, const char *key, gw_str_t raw)
{
    add(obj, key, raw_node(raw));
}

static void add_str(cJSON *obj, const char *key, const char *s)
{
    add(obj, key, must(cJSON_CreateString(s)));
}

static void push(cJSON *arr, cJSON *item)
{
    if (!cJSON_AddItemToArray(arr, item))
        must(NULL);
}

static cJSON *block(const char *type)
{
    cJSON *b = must(cJSON_CreateObject());
    add_str(b, "type", type);
    return b;
}

/* cache_control of an OpenAI part or message (the vendor extension Anthropic clients use) goes
 * onto the block as it is. */
static void copy_cache_control(cJSON *blk, gw_str_t from)
{
    gw_str_t cc = jget(from, "cache_control");
    if (jtype(cc) == GW_JSON_OBJECT && !cJSON_HasObjectItem(blk, "cache_control"))
        add_raw(blk, "cache_control", cc);
}

/* A message-level cache_control marks the message's last block. */
static void cache_control_on_last(cJSON *blocks, gw_str_t msg)
{
    int n = cJSON_GetArraySize(blocks);
    if (n > 0)
        copy_cache_control(cJSON_GetArrayItem(blocks, n - 1), msg);
}

typedef struct {
    cJSON *system;   /* system blocks */
    cJSON *messages;
    cJSON *last;     /* content array of the last message */
    int last_role;   /* 0 none, 1 user, 2 assistant */
} conv_t;

/* Appends blocks as a message of role, merged into the previous message when it has the same
 * role: tool results and the next user turn, or two assistant turns, become one Anthropic message
 * (the API wants user/assistant alternation). blocks is consumed. */
static void emit_message(conv_t *c, int role, cJSON *blocks)
{
    if (cJSON_GetArraySize(blocks) == 0) {
        cJSON_Delete(blocks);
        return;
    }
    if (c->last_role == role && c->last) {
        cJSON *it;
        while ((it = cJSON_DetachItemFromArray(blocks, 0)) != NULL)
            push(c->last, it);
        cJSON_Delete(blocks);
        return;
    }
    cJSON *m = must(cJSON_CreateObject());
    add_str(m, "role", role == 1 ? "user" : "assistant");
    add(m, "content", blocks);
    push(c->messages, m);
    c->last = blocks;
    c->last_role = role;
}

static bool ieq_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Parses "data:<media type>[;param...];base64,<data>". *mt is lower-cased in place. */
static bool parse_data_uri(char *uri, char **mt, char **data)
{
    if (!ieq_prefix(uri, "data:"))
        return false;
    char *m = uri + 5, *comma = strchr(m, ',');
    if (comma == NULL)
        return false;
    *comma = '\0';
    char *b64 = strstr(m, ";base64");
    if (b64 == NULL || (b64[7] != '\0' && b64[7] != ';'))
        return false;
    char *semi = strchr(m, ';');
    *semi = '\0';
    for (char *q = m; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    *mt = m;
    *data = comma + 1;
    return true;
}

static const char *image_media_type(const char *mt)
{
    if (strcmp(mt, "image/jpeg") == 0 || strcmp(mt, "image/jpg") == 0)
        return "image/jpeg";
    if (strcmp(mt, "image/png") == 0 || strcmp(mt, "image/gif") == 0 || strcmp(mt, "image/webp") == 0)
        return mt;
    return NULL;
}

static cJSON *source_base64(const char *media_type, const char *data)
{
    cJSON *s = must(cJSON_CreateObject());
    add_str(s, "type", "base64");
    add_str(s, "media_type", media_type);
    add_str(s, "data", data);
    return s;
}

/* True when the URL's path ends in .pdf (query and fragment ignored). */
static bool url_is_pdf(const char *url)
{
    size_t n = strcspn(url, "?#");
    return n >= 4 && strncasecmp(url + n - 4, ".pdf", 4) == 0;
}

/* An image_url (data URI or http(s) URL) as an image block, or a document block for PDFs. */
static int media_block(gw_str_t url_raw, cJSON **out, const char **err)
{
    char *url = jdup(url_raw), *mt, *data;
    int rc = GW_EINVAL;
    *out = NULL;
    if (url == NULL) {
        *err = "image_url.url must be a string";
        goto done;
    }
    if (parse_data_uri(url, &mt, &data)) {
        const char *imt = image_media_type(mt);
        if (imt) {
            *out = block("image");
            add(*out, "source", source_base64(imt, data));
        } else if (strcmp(mt, "application/pdf") == 0) {
            *out = block("document");
            add(*out, "source", source_base64("application/pdf", data));
        } else {
            *err = "unsupported data URI media type: Anthropic takes image/jpeg, image/png, image/gif, image/webp "
                   "and application/pdf";
            goto done;
        }
    } else if (ieq_prefix(url, "https://") || ieq_prefix(url, "http://")) {
        *out = block(url_is_pdf(url) ? "document" : "image");
        cJSON *s = must(cJSON_CreateObject());
        add_str(s, "type", "url");
        add_str(s, "url", url);
        add(*out, "source", s);
    } else {
        *err = "image_url.url must be an http(s) URL or a base64 data URI";
        goto done;
    }
    rc = GW_OK;
done:
    free(url);
    return rc;
}

/* An OpenAI "file" part: file_data (a data URI, or bare base64 taken as PDF) or file_id. */
static int file_block(gw_str_t part, cJSON **out, const char **err)
{
    gw_str_t f = jget(part, "file"), fdata = jget(f, "file_data"), fid = jget(f, "file_id"),
             fname = jget(f, "filename");
    *out = NULL;
    if (jnonempty(fdata)) {
        char *d = jdup(fdata), *mt, *data;
        if (d == NULL) {
            *err = "file.file_data must be a string";
            return GW_EINVAL;
        }
        if (parse_data_uri(d, &mt, &data)) {
            const char *imt = image_media_type(mt);
            if (imt) {
                *out = block("image");
                add(*out, "source", source_base64(imt, data));
            } else if (strcmp(mt, "application/pdf") == 0) {
                *out = block("document");
                add(*out, "source", source_base64("application/pdf", data));
            } else {
                free(d);
                *err = "unsupported file media type: Anthropic takes PDF documents and images";
                return GW_EINVAL;
            }
        } else {
            *out = block("document");
            add(*out, "source", source_base64("application/pdf", d));
        }
        free(d);
    } else if (jnonempty(fid)) {
        *out = block("document");
        cJSON *s = must(cJSON_CreateObject());
        add_str(s, "type", "file");
        add_raw(s, "file_id", fid);
        add(*out, "source", s);
    } else {
        *err = "a file part needs file.file_data or file.file_id";
        return GW_EINVAL;
    }
    if (jnonempty(fname) && strcmp(cJSON_GetObjectItem(*out, "type")->valuestring, "document") == 0)
        add_raw(*out, "title", fname);
    return GW_OK;
}

/* One content part of a user or tool message. Anthropic-native blocks a client may send (image,
 * document, search_result) pass through unchanged. *out stays NULL for a part that adds nothing
 * (empty text). */
static int user_part(gw_str_t part, cJSON **out, const char **err)
{
    gw_str_t type = jget(part, "type");
    *out = NULL;
    if (jtype(part) != GW_JSON_OBJECT) {
        *err = "message content parts must be objects";
        return GW_EINVAL;
    }
    if (jis(type, "text")) {
        gw_str_t text = jget(part, "text");
        if (jtype(text) != GW_JSON_STRING) {
            *err = "a text part needs a string text";
            return GW_EINVAL;
        }
        if (text.len <= 2)
            return GW_OK; /* Anthropic rejects empty text blocks */
        *out = block("text");
        add_raw(*out, "text", text);
    } else if (jis(type, "image_url")) {
        gw_str_t iu = jget(part, "image_url");
        int rc = media_block(jtype(iu) == GW_JSON_OBJECT ? jget(iu, "url") : iu, out, err);
        if (rc != GW_OK)
            return rc;
    } else if (jis(type, "file")) {
        int rc = file_block(part, out, err);
        if (rc != GW_OK)
            return rc;
    } else if (jis(type, "image") || jis(type, "document") || jis(type, "search_result")) {
        *out = raw_node(part);
        return GW_OK;
    } else if (jis(type, "input_audio")) {
        *err = "audio input is not supported by Anthropic backends";
        return GW_EINVAL;
    } else {
        *err = "unsupported content part type for an Anthropic backend";
        return GW_EINVAL;
    }
    copy_cache_control(*out, part);
    return GW_OK;
}

/* User content: a string or an array of parts, appended to blocks. */
static int user_content(gw_str_t content, cJSON *blocks, const char **err)
{
    gw_json_type_t t = jtype(content);
    if (t == GW_JSON_STRING) {
        if (content.len > 2) {
            cJSON *b = block("text");
            add_raw(b, "text", content);
            push(blocks, b);
        }
        return GW_OK;
    }
    if (t == GW_JSON_NULL || t == GW_JSON_INVALID)
        return GW_OK;
    if (t != GW_JSON_ARRAY) {
        *err = "message content must be a string or an array of parts";
        return GW_EINVAL;
    }
    gw_str_t part;
    JARR_EACH(content, pos, part)
    {
        cJSON *b;
        int rc = user_part(part, &b, err);
        if (rc != GW_OK)
            return rc;
        if (b)
            push(blocks, b);
    }
    return GW_OK;
}

static int system_message(conv_t *c, gw_str_t msg, const char **err)
{
    gw_str_t content = jget(msg, "content");
    cJSON *blocks = must(cJSON_CreateArray());
    if (jtype(content) == GW_JSON_ARRAY) {
        gw_str_t part;
        JARR_EACH(content, pos, part)
        {
            gw_str_t text = jget(part, "text");
            if (!jis(jget(part, "type"), "text") || jtype(text) != GW_JSON_STRING) {
                cJSON_Delete(blocks);
                *err = "system and developer messages may only contain text parts";
                return GW_EINVAL;
            }
            if (text.len <= 2)
                continue;
            cJSON *b = block("text");
            add_raw(b, "text", text);
            copy_cache_control(b, part);
            push(blocks, b);
        }
    } else if (jtype(content) == GW_JSON_STRING) {
        if (content.len > 2) {
            cJSON *b = block("text");
            add_raw(b, "text", content);
            push(blocks, b);
        }
    } else if (jtype(content) != GW_JSON_NULL && jtype(content) != GW_JSON_INVALID) {
        cJSON_Delete(blocks);
        *err = "system message content must be a string or an array of text parts";
        return GW_EINVAL;
    }
    cache_control_on_last(blocks, msg);
    cJSON *it;
    while ((it = cJSON_DetachItemFromArray(blocks, 0)) != NULL)
        push(c->system, it);
    cJSON_Delete(blocks);
    return GW_OK;
}

/* A thinking block from either input form: thinking_blocks items / Anthropic content blocks
 * ({type: thinking, thinking, signature}, {type: redacted_thinking, data}) or the reference's
 * content parts ({type: thinking, text, signature}, {type: redacted_thinking, redactedContent}).
 * NULL when the part is not usable (a thinking block without its signature is rejected by
 * Anthropic, so it is dropped rather than sent). */
static cJSON *thinking_block(gw_str_t part)
{
    gw_str_t type = jget(part, "type");
    if (jis(type, "thinking")) {
        gw_str_t text = jget(part, "thinking"), sig = jget(part, "signature");
        if (jtype(text) != GW_JSON_STRING)
            text = jget(part, "text");
        if (jtype(text) != GW_JSON_STRING || !jnonempty(sig))
            return NULL;
        cJSON *b = block("thinking");
        add_raw(b, "thinking", text);
        add_raw(b, "signature", sig);
        return b;
    }
    if (jis(type, "redacted_thinking")) {
        gw_str_t data = jget(part, "data");
        if (!jnonempty(data))
            data = jget(part, "redactedContent");
        if (!jnonempty(data))
            data = jget(part, "redacted_content");
        if (!jnonempty(data))
            return NULL;
        cJSON *b = block("redacted_thinking");
        add_raw(b, "data", data);
        return b;
    }
    return NULL;
}

/* OpenAI arguments (a string holding JSON) -> Anthropic input (an object). */
static int tool_input(gw_str_t args, cJSON **out, const char **err)
{
    if (jtype(args) == GW_JSON_OBJECT) { /* some clients send the object itself */
        *out = raw_node(args);
        return GW_OK;
    }
    if (jtype(args) != GW_JSON_STRING && jtype(args) != GW_JSON_NULL && jtype(args) != GW_JSON_INVALID) {
        *err = "tool_calls[].function.arguments must be a string";
        return GW_EINVAL;
    }
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    if (jtype(args) == GW_JSON_STRING && gw_json_string_unescape(args, &b) != GW_OK) {
        gw_buf_free(&b);
        *err = "tool_calls[].function.arguments is not a valid string";
        return GW_EINVAL;
    }
    gw_str_t s = gw_buf_str(&b);
    size_t i = skip_ws(s, 0);
    int rc = GW_OK;
    if (i == s.len) {
        *out = must(cJSON_CreateObject());
    } else if (gw_json_validate(s.base, s.len, GW_JSON_DEFAULT_MAX_DEPTH, NULL) == GW_OK &&
               gw_json_type(s) == GW_JSON_OBJECT) {
        *out = raw_node(s);
    } else {
        *err = "tool_calls[].function.arguments must hold a JSON object (Anthropic tool input)";
        rc = GW_EINVAL;
    }
    gw_buf_free(&b);
    return rc;
}

static int assistant_message(conv_t *c, gw_str_t msg, const char **err)
{
    cJSON *thinking = must(cJSON_CreateArray()), *rest = must(cJSON_CreateArray());
    int rc = GW_EINVAL;
    gw_str_t el;
    /* LiteLLM-style thinking_blocks; reasoning_content alone carries no signature and cannot be
     * sent back (see docs/reasoning.md). */
    gw_str_t tb = jget(msg, "thinking_blocks");
    if (jtype(tb) == GW_JSON_ARRAY) {
        JARR_EACH(tb, pos, el)
        {
            cJSON *b = thinking_block(el);
            if (b)
                push(thinking, b);
        }
    }
    gw_str_t content = jget(msg, "content");
    if (jtype(content) == GW_JSON_STRING) {
        if (content.len > 2) {
            cJSON *b = block("text");
            add_raw(b, "text", content);
            push(rest, b);
        }
    } else if (jtype(content) == GW_JSON_ARRAY) {
        JARR_EACH(content, pos, el)
        {
            gw_str_t type = jget(el, "type");
            cJSON *b = NULL;
            if (jis(type, "text") || jis(type, "refusal")) {
                gw_str_t text = jget(el, jis(type, "text") ? "text" : "refusal");
                if (jtype(text) != GW_JSON_STRING) {
                    *err = "an assistant text part needs a string text";
                    goto out;
                }
                if (text.len <= 2)
                    continue;
                b = block("text");
                add_raw(b, "text", text);
                copy_cache_control(b, el);
                push(rest, b);
            } else if (jis(type, "thinking") || jis(type, "redacted_thinking")) {
                if ((b = thinking_block(el)) != NULL) {
                    copy_cache_control(b, el);
                    push(thinking, b);
                }
            } else {
                *err = "unsupported assistant content part type for an Anthropic backend";
                goto out;
            }
        }
    } else if (jtype(content) != GW_JSON_NULL && jtype(content) != GW_JSON_INVALID) {
        *err = "assistant content must be a string, an array of parts or null";
        goto out;
    }
    gw_str_t calls = jget(msg, "tool_calls");
    if (jtype(calls) == GW_JSON_ARRAY) {
        JARR_EACH(calls, pos, el)
        {
            gw_str_t fn = jget(el, "function"), id = jget(el, "id"), name = jget(fn, "name");
            if (!jnonempty(id) || !jnonempty(name)) {
                *err = "tool_calls[] need an id and a function.name";
                goto out;
            }
            cJSON *input;
            if (tool_input(jget(fn, "arguments"), &input, err) != GW_OK)
                goto out;
            cJSON *b = block("tool_use");
            add_raw(b, "id", id);
            add_raw(b, "name", name);
            add(b, "input", input);
            copy_cache_control(b, el);
            push(rest, b);
        }
    }
    /* Anthropic wants the thinking blocks first in the turn that produced them. */
    cJSON *it;
    while ((it = cJSON_DetachItemFromArray(rest, 0)) != NULL)
        push(thinking, it);
    cache_control_on_last(thinking, msg);
    emit_message(c, 2, thinking);
    thinking = NULL;
    rc = GW_OK;
out:
    cJSON_Delete(thinking);
    cJSON_Delete(rest);
    return rc;
}

static int tool_message(conv_t *c, gw_str_t msg, const char **err)
{
    gw_str_t id = jget(msg, "tool_call_id"), content = jget(msg, "content");
    if (!jnonempty(id)) {
        *err = "a tool message needs a tool_call_id";
        return GW_EINVAL;
    }
    cJSON *res = block("tool_result");
    add_raw(res, "tool_use_id", id);
    if (jtype(content) == GW_JSON_STRING) {
        add_raw(res, "content", content);
    } else if (jtype(content) == GW_JSON_ARRAY) {
        cJSON *inner = must(cJSON_CreateArray());
        add(res, "content", inner);
        if (user_content(content, inner, err) != GW_OK) {
            cJSON_Delete(res);
            return GW_EINVAL;
        }
    } else if (jtype(content) != GW_JSON_NULL && jtype(content) != GW_JSON_INVALID) {
        cJSON_Delete(res);
        *err = "tool message content must be a string or an array of parts";
        return GW_EINVAL;
    }
    copy_cache_control(res, msg);
    cJSON *blocks = must(cJSON_CreateArray());
    push(blocks, res);
    emit_message(c, 1, blocks);
    return GW_OK;
}

static int user_message(conv_t *c, gw_str_t msg, const char **err)
{
    cJSON *blocks = must(cJSON_CreateArray());
    if (user_content(jget(msg, "content"), blocks, err) != GW_OK) {
        cJSON_Delete(blocks);
        return GW_EINVAL;
    }
    cache_control_on_last(blocks, msg);
    emit_message(c, 1, blocks);
    return GW_OK;
}

static int convert_messages(conv_t *c, gw_str_t messages, const char **err)
{
    if (jtype(messages) != GW_JSON_ARRAY) {
        *err = "messages must be an array";
        return GW_EINVAL;
    }
    gw_str_t msg;
    JARR_EACH(messages, pos, msg)
    {
        gw_str_t role = jget(msg, "role");
        int rc;
        /* System prompts anywhere in the conversation are hoisted, in order, into "system". */
        if (jis(role, "system") || jis(role, "developer"))
            rc = system_message(c, msg, err);
        else if (jis(role, "user"))
            rc = user_message(c, msg, err);
        else if (jis(role, "assistant"))
            rc = assistant_message(c, msg, err);
        else if (jis(role, "tool"))
            rc = tool_message(c, msg, err);
        else {
            *err = "message role must be system, developer, user, assistant or tool";
            rc = GW_EINVAL;
        }
        if (rc != GW_OK)
            return rc;
    }
    return GW_OK;
}

static int convert_tools(cJSON *root, gw_str_t body, const char **err)
{
    gw_str_t tools = jget(body, "tools"), el;
    if (jtype(tools) != GW_JSON_ARRAY)
        return GW_OK;
    cJSON *out = must(cJSON_CreateArray());
    JARR_EACH(tools, pos, el)
    {
        if (!jis(jget(el, "type"), "function")) {
            /* An Anthropic-native tool (web_search_20250305, bash_..., a custom tool with
             * input_schema): the client wrote it for this backend, so it goes as it is. */
            if (jtype(el) != GW_JSON_OBJECT) {
                cJSON_Delete(out);
                *err = "tools[] must be objects";
                return GW_EINVAL;
            }
            push(out, raw_node(el));
            continue;
        }
        gw_str_t fn = jget(el, "function"), name = jget(fn, "name"), params = jget(fn, "parameters");
        if (!jnonempty(name)) {
            cJSON_Delete(out);
            *err = "tools[].function.name is required";
            return GW_EINVAL;
        }
        cJSON *t = must(cJSON_CreateObject());
        add_raw(t, "name", name);
        gw_str_t desc = jget(fn, "description");
        if (jtype(desc) == GW_JSON_STRING)
            add_raw(t, "description", desc);
        if (jtype(params) == GW_JSON_OBJECT)
            add_raw(t, "input_schema", params);
        else
            add(t, "input_schema", raw_node(GW_STR("{\"type\":\"object\",\"properties\":{}}")));
        copy_cache_control(t, el);
        copy_cache_control(t, fn);
        push(out, t);
    }
    if (cJSON_GetArraySize(out) == 0) {
        cJSON_Delete(out);
        return GW_OK;
    }
    add(root, "tools", out);

    gw_str_t tc = jget(body, "tool_choice"), ptc = jget(body, "parallel_tool_calls");
    cJSON *choice = NULL;
    if (jis(tc, "auto")) {
        choice = block("auto");
    } else if (jis(tc, "required")) {
        choice = block("any");
    } else if (jis(tc, "none")) {
        choice = block("none");
    } else if (jtype(tc) == GW_JSON_OBJECT && jis(jget(tc, "type"), "function")) {
        gw_str_t n = jget(jget(tc, "function"), "name");
        if (!jnonempty(n)) {
            *err = "tool_choice.function.name is required";
            return GW_EINVAL;
        }
        choice = block("tool");
        add_raw(choice, "name", n);
    } else if (jtype(tc) == GW_JSON_OBJECT) {
        /* Anthropic's own forms ({"type": "any"}, {"type": "tool", "name": ...}) */
        gw_str_t t = jget(tc, "type");
        if (!(jis(t, "auto") || jis(t, "any") || jis(t, "tool") || jis(t, "none"))) {
            *err = "tool_choice must be auto, required, none or a named function";
            return GW_EINVAL;
        }
        choice = raw_node(tc);
    } else if (jtype(tc) == GW_JSON_STRING) {
        *err = "tool_choice must be auto, required, none or a named function";
        return GW_EINVAL;
    }
    bool parallel = true;
    if (jtype(ptc) == GW_JSON_FALSE)
        parallel = false;
    if (!parallel) {
        if (choice == NULL)
            choice = block("auto");
        /* "none" takes no options; a raw (client-written) choice is left as written */
        cJSON *ty = cJSON_GetObjectItem(choice, "type");
        if (!cJSON_IsRaw(choice) && ty && strcmp(ty->valuestring, "none") != 0)
            add(choice, "disable_parallel_tool_use", must(cJSON_CreateTrue()));
    }
    if (choice)
        add(root, "tool_choice", choice);
    return GW_OK;
}

static uint64_t effort_budget(gw_str_t effort, bool *ok)
{
    *ok = true;
    if (jis(effort, "none"))
        return 0;
    if (jis(effort, "minimal"))
        return GW_ANTHROPIC_BUDGET_MINIMAL;
    if (jis(effort, "low"))
        return GW_ANTHROPIC_BUDGET_LOW;
    if (jis(effort, "medium"))
        return GW_ANTHROPIC_BUDGET_MEDIUM;
    if (jis(effort, "high"))
        return GW_ANTHROPIC_BUDGET_HIGH;
    if (jis(effort, "xhigh") || jis(effort, "max"))
        return GW_ANTHROPIC_BUDGET_XHIGH;
    *ok = false;
    return 0;
}

int gw_openai_anthropic_request_body(gw_str_t body, const gw_openai_anthropic_opts_t *opts, gw_buf_t *out,
                                     gw_openai_anthropic_info_t *info, const char **err)
{
    int rc = GW_EINVAL;
    cJSON *root = must(cJSON_CreateObject());
    conv_t c = {.system = must(cJSON_CreateArray()), .messages = must(cJSON_CreateArray())};
    memset(info, 0, sizeof(*info));

    if (opts && opts->model)
        add_str(root, "model", opts->model);

    gw_str_t n = jget(body, "n");
    uint64_t nv;
    if (jtype(n) == GW_JSON_NUMBER && (gw_json_uint(n, &nv) != GW_OK || nv != 1)) {
        *err = "n other than 1 is not supported by Anthropic backends";
        goto out;
    }

    if (convert_messages(&c, jget(body, "messages"), err) != GW_OK)
        goto out;

    /* max_tokens (required by Anthropic) and thinking */
    gw_str_t mt = jget(body, "max_completion_tokens");
    if (jtype(mt) != GW_JSON_NUMBER)
        mt = jget(body, "max_tokens");
    uint64_t max_tokens = 0;
    bool has_max = jtype(mt) == GW_JSON_NUMBER;
    if (has_max && (gw_json_uint(mt, &max_tokens) != GW_OK || max_tokens == 0)) {
        *err = "max_tokens / max_completion_tokens must be a positive integer";
        goto out;
    }
    gw_str_t thinking = jget(body, "thinking"), effort = jget(body, "reasoning_effort");
    uint64_t budget = 0;
    if (jtype(thinking) == GW_JSON_OBJECT) {
        /* the vendor field wins: Anthropic's own thinking object, as written */
        gw_str_t bt = jget(thinking, "budget_tokens");
        if (jis(jget(thinking, "type"), "enabled") && jtype(bt) == GW_JSON_NUMBER)
            gw_json_uint(bt, &budget);
        add_raw(root, "thinking", thinking);
    } else if (jtype(effort) == GW_JSON_STRING) {
        bool ok;
        budget = effort_budget(effort, &ok);
        if (!ok) {
            *err = "reasoning_effort must be none, minimal, low, medium, high or xhigh";
            goto out;
        }
        if (budget && has_max && budget >= max_tokens) {
            /* the budget must stay below max_tokens: shrink it to fit what the client allows */
            budget = max_tokens - 1;
            if (budget < GW_ANTHROPIC_BUDGET_MINIMAL) {
                *err = "reasoning_effort needs max_tokens above 1024 on Anthropic backends (the smallest "
                       "thinking budget is 1024 tokens)";
                goto out;
            }
        }
        if (budget) {
            cJSON *t = block("enabled");
            add(t, "budget_tokens", must(cJSON_CreateNumber((double)budget)));
            add(root, "thinking", t);
        }
    }
    if (has_max)
        add_raw(root, "max_tokens", mt);
    else
        add(root, "max_tokens", must(cJSON_CreateNumber((double)(GW_ANTHROPIC_DEFAULT_MAX_TOKENS + budget))));

    if (cJSON_GetArraySize(c.system) > 0) {
        add(root, "system", c.system);
        c.system = NULL;
    }
    add(root, "messages", c.messages);
    c.messages = NULL;

    gw_str_t stop = jget(body, "stop");
    if (jnonempty(stop)) {
        cJSON *s = must(cJSON_CreateArray());
        push(s, raw_node(stop));
        add(root, "stop_sequences", s);
    } else if (jtype(stop) == GW_JSON_ARRAY) {
        cJSON *s = must(cJSON_CreateArray());
        gw_str_t el;
        JARR_EACH(stop, pos, el)
        {
            if (jnonempty(el))
                push(s, raw_node(el));
        }
        if (cJSON_GetArraySize(s) > 0)
            add(root, "stop_sequences", s);
        else
            cJSON_Delete(s);
    }
    static const char *const numbers[] = {"temperature", "top_p", "top_k"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(numbers); i++) {
        gw_str_t v = jget(body, numbers[i]);
        if (jtype(v) == GW_JSON_NUMBER)
            add_raw(root, numbers[i], v);
    }
    gw_str_t stream = jget(body, "stream");
    if (jtype(stream) == GW_JSON_TRUE) {
        info->stream = true;
        add(root, "stream", must(cJSON_CreateTrue()));
        info->include_usage = jtype(jget(jget(body, "stream_options"), "include_usage")) == GW_JSON_TRUE;
    }
    if (convert_tools(root, body, err) != GW_OK)
        goto out;
    gw_str_t user = jget(body, "user");
    if (jnonempty(user)) {
        cJSON *m = must(cJSON_CreateObject());
        add_raw(m, "user_id", user);
        add(root, "metadata", m);
    }
    /* Anthropic's automatic prompt caching switch, when a client sets it */
    gw_str_t cc = jget(body, "cache_control");
    if (jtype(cc) == GW_JSON_OBJECT)
        add_raw(root, "cache_control", cc);
    if (opts && opts->anthropic_version)
        add_str(root, "anthropic_version", opts->anthropic_version);

    char *text = cJSON_PrintUnformatted(root);
    if (text == NULL)
        must(NULL);
    rc = gw_buf_append(out, text, strlen(text));
    free(text);
    if (rc != GW_OK)
        *err = "the translated request is too large";
out:
    cJSON_Delete(root);
    cJSON_Delete(c.system);
    cJSON_Delete(c.messages);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Responses: Messages -> chat.completion / chat.completion.chunk. */

typedef enum { BLK_OTHER = 0, BLK_TEXT, BLK_TOOL, BLK_THINKING, BLK_REDACTED } blk_kind_t;

typedef struct {
    blk_kind_t kind;
    bool seen;
    bool got_args;   /* tool_use: an input_json_delta arrived */
    int tool_index;  /* tool_use: the OpenAI tool_calls index */
    gw_buf_t input;  /* tool_use: content_block_start's input, used when no deltas follow */
    gw_buf_t text;   /* thinking: JSON-escaped thinking text; redacted: escaped data */
    gw_buf_t sig;    /* thinking: JSON-escaped signature */
} blk_t;

struct gw_openai_anthropic_resp_s {
    gw_buf_t id;         /* JSON string literal of the message id */
    gw_buf_t model_lit;  /* JSON string literal of the model for chunks */
    int64_t created;
    bool include_usage;
    gw_anthropic_stream_obs_t obs;
    gw_token_usage_t usage;
    gw_buf_t model;      /* unescaped provider model */
    blk_t *blocks;
    size_t n_blocks;
    int n_tools;
    bool named; /* id and model_lit come from a message_start */
    bool role_sent, finish_sent, done, failed;
};

static void reset_blocks(gw_openai_anthropic_resp_t *r);

gw_openai_anthropic_resp_t *gw_openai_anthropic_resp_new(const char *fallback_model, int64_t created,
                                                         bool include_usage)
{
    gw_openai_anthropic_resp_t *r = gw_calloc(1, sizeof(*r));
    gw_buf_init(&r->id, 4096);
    gw_buf_init(&r->model_lit, 4096);
    gw_buf_init(&r->model, 4096);
    const char *m = fallback_model ? fallback_model : "";
    gw_json_append_string(&r->model_lit, m, strlen(m));
    gw_buf_append_lit(&r->id, "\"\"");
    r->created = created;
    r->include_usage = include_usage;
    return r;
}

void gw_openai_anthropic_resp_free(gw_openai_anthropic_resp_t *r)
{
    if (r == NULL)
        return;
    reset_blocks(r);
    gw_buf_free(&r->id);
    gw_buf_free(&r->model_lit);
    gw_buf_free(&r->model);
    free(r);
}

const gw_token_usage_t *gw_openai_anthropic_resp_usage(const gw_openai_anthropic_resp_t *r)
{
    return &r->usage;
}

gw_str_t gw_openai_anthropic_resp_model(const gw_openai_anthropic_resp_t *r)
{
    return gw_buf_str(&r->model);
}

bool gw_openai_anthropic_resp_failed(const gw_openai_anthropic_resp_t *r)
{
    return r->failed;
}

static void set_literal(gw_buf_t *dst, gw_str_t raw)
{
    if (!jnonempty(raw))
        return;
    gw_buf_reset(dst);
    append_string(dst, raw);
}

static void chunk_open(gw_openai_anthropic_resp_t *r, gw_buf_t *out)
{
    gw_buf_append_lit(out, "data: {\"id\":");
    gw_buf_append_str(out, gw_buf_str(&r->id));
    gw_buf_append_lit(out, ",\"object\":\"chat.completion.chunk\",\"created\":");
    gw_buf_appendf(out, "%lld", (long long)r->created);
    gw_buf_append_lit(out, ",\"model\":");
    gw_buf_append_str(out, gw_buf_str(&r->model_lit));
}

static void delta_open(gw_openai_anthropic_resp_t *r, gw_buf_t *out)
{
    chunk_open(r, out);
    gw_buf_append_lit(out, ",\"choices\":[{\"index\":0,\"delta\":{");
}

static void delta_close(gw_buf_t *out, const char *finish)
{
    gw_buf_append_lit(out, "},\"logprobs\":null,\"finish_reason\":");
    if (finish) {
        gw_buf_append_byte(out, '"');
        gw_buf_append(out, finish, strlen(finish));
        gw_buf_append_byte(out, '"');
    } else {
        gw_buf_append_lit(out, "null");
    }
    gw_buf_append_lit(out, "}]}\n\n");
}

/* The first chunk announces the assistant role, as OpenAI's do. */
static void ensure_role(gw_openai_anthropic_resp_t *r, gw_buf_t *out)
{
    if (r->role_sent)
        return;
    r->role_sent = true;
    delta_open(r, out);
    gw_buf_append_lit(out, "\"role\":\"assistant\",\"content\":\"\"");
    delta_close(out, NULL);
}

static void error_event(gw_openai_anthropic_resp_t *r, gw_str_t message, const char *type, gw_buf_t *out)
{
    gw_buf_append_lit(out, "event: error\ndata: ");
    openai_error(out, message, type, NULL);
    gw_buf_append_lit(out, "\n\n");
    r->failed = true;
    r->done = true;
}

static blk_t *block_at(gw_openai_anthropic_resp_t *r, gw_str_t data)
{
    uint64_t idx;
    if (gw_json_uint(jget(data, "index"), &idx) != GW_OK || idx >= MAX_BLOCKS)
        return NULL;
    if (idx >= r->n_blocks) {
        size_t n = (size_t)idx + 1;
        r->blocks = gw_realloc(r->blocks, n * sizeof(*r->blocks));
        for (size_t i = r->n_blocks; i < n; i++) {
            memset(&r->blocks[i], 0, sizeof(r->blocks[i]));
            gw_buf_init(&r->blocks[i].input, MAX_THINKING);
            gw_buf_init(&r->blocks[i].text, MAX_THINKING);
            gw_buf_init(&r->blocks[i].sig, MAX_THINKING);
        }
        r->n_blocks = n;
    }
    return &r->blocks[idx];
}

static void reset_blocks(gw_openai_anthropic_resp_t *r)
{
    for (size_t i = 0; i < r->n_blocks; i++) {
        gw_buf_free(&r->blocks[i].input);
        gw_buf_free(&r->blocks[i].text);
        gw_buf_free(&r->blocks[i].sig);
    }
    free(r->blocks);
    r->blocks = NULL;
    r->n_blocks = 0;
}

static void tool_delta_open(gw_openai_anthropic_resp_t *r, int index, gw_buf_t *out)
{
    delta_open(r, out);
    gw_buf_appendf(out, "\"tool_calls\":[{\"index\":%d,", index);
}

static void on_block_start(gw_openai_anthropic_resp_t *r, gw_str_t data, gw_buf_t *out)
{
    blk_t *b = block_at(r, data);
    gw_str_t cb = jget(data, "content_block"), type = jget(cb, "type");
    if (b == NULL || b->seen)
        return;
    b->seen = true;
    if (jis(type, "text")) {
        b->kind = BLK_TEXT;
        gw_str_t text = jget(cb, "text");
        if (jnonempty(text)) {
            ensure_role(r, out);
            delta_open(r, out);
            gw_buf_append_lit(out, "\"content\":");
            append_string(out, text);
            delta_close(out, NULL);
        }
    } else if (jis(type, "tool_use")) {
        b->kind = BLK_TOOL;
        b->tool_index = r->n_tools++;
        gw_str_t input = jget(cb, "input");
        if (jtype(input) == GW_JSON_OBJECT)
            gw_buf_append_str(&b->input, input);
        ensure_role(r, out);
        tool_delta_open(r, b->tool_index, out);
        gw_buf_append_lit(out, "\"id\":");
        append_string(out, jget(cb, "id"));
        gw_buf_append_lit(out, ",\"type\":\"function\",\"function\":{\"name\":");
        append_string(out, jget(cb, "name"));
        gw_buf_append_lit(out, ",\"arguments\":\"\"}}]");
        delta_close(out, NULL);
    } else if (jis(type, "thinking")) {
        b->kind = BLK_THINKING;
        gw_str_t text = jget(cb, "thinking"), sig = jget(cb, "signature");
        if (jnonempty(text)) {
            append_string_body(&b->text, text);
            ensure_role(r, out);
            delta_open(r, out);
            gw_buf_append_lit(out, "\"reasoning_content\":");
            append_string(out, text);
            delta_close(out, NULL);
        }
        if (jnonempty(sig))
            append_string_body(&b->sig, sig);
    } else if (jis(type, "redacted_thinking")) {
        b->kind = BLK_REDACTED;
        append_string_body(&b->text, jget(cb, "data"));
    } else {
        /* server tools and their results (web search, code execution, MCP), compaction, ...:
         * nothing an OpenAI client can act on */
        b->kind = BLK_OTHER;
    }
}

static void on_block_delta(gw_openai_anthropic_resp_t *r, gw_str_t data, gw_buf_t *out)
{
    blk_t *b = block_at(r, data);
    gw_str_t d = jget(data, "delta"), type = jget(d, "type");
    if (b == NULL)
        return;
    if (jis(type, "text_delta") && b->kind != BLK_TOOL) {
        gw_str_t text = jget(d, "text");
        if (!jnonempty(text))
            return;
        ensure_role(r, out);
        delta_open(r, out);
        gw_buf_append_lit(out, "\"content\":");
        append_string(out, text);
        delta_close(out, NULL);
    } else if (jis(type, "input_json_delta") && b->kind == BLK_TOOL) {
        gw_str_t pj = jget(d, "partial_json");
        if (!jnonempty(pj))
            return;
        b->got_args = true;
        tool_delta_open(r, b->tool_index, out);
        gw_buf_append_lit(out, "\"function\":{\"arguments\":");
        append_string(out, pj);
        gw_buf_append_lit(out, "}}]");
        delta_close(out, NULL);
    } else if (jis(type, "thinking_delta") && b->kind == BLK_THINKING) {
        gw_str_t text = jget(d, "thinking");
        if (!jnonempty(text))
            return;
        if (append_string_body(&b->text, text) != GW_OK) {
            error_event(r, GW_STR("a thinking block exceeds the gateway's size limit"), "api_error", out);
            return;
        }
        ensure_role(r, out);
        delta_open(r, out);
        gw_buf_append_lit(out, "\"reasoning_content\":");
        append_string(out, text);
        delta_close(out, NULL);
    } else if (jis(type, "signature_delta") && b->kind == BLK_THINKING) {
        if (append_string_body(&b->sig, jget(d, "signature")) != GW_OK)
            error_event(r, GW_STR("a thinking signature exceeds the gateway's size limit"), "api_error", out);
    }
    /* citations_delta and server-tool deltas have no OpenAI form */
}

static void on_block_stop(gw_openai_anthropic_resp_t *r, gw_str_t data, gw_buf_t *out)
{
    blk_t *b = block_at(r, data);
    if (b == NULL)
        return;
    if (b->kind == BLK_TOOL && !b->got_args && b->input.len) {
        /* a tool_use whose input came whole in content_block_start */
        gw_str_t in = gw_buf_str(&b->input);
        size_t i = skip_ws(in, 1);
        if (i < in.len && in.base[i] != '}') {
            tool_delta_open(r, b->tool_index, out);
            gw_buf_append_lit(out, "\"function\":{\"arguments\":");
            gw_json_append_string(out, in.base, in.len);
            gw_buf_append_lit(out, "}}]");
            delta_close(out, NULL);
        }
        b->got_args = true;
    } else if (b->kind == BLK_THINKING || b->kind == BLK_REDACTED) {
        /* The whole block, signature included, so a client can send it back (docs/reasoning.md). */
        ensure_role(r, out);
        delta_open(r, out);
        if (b->kind == BLK_THINKING) {
            gw_buf_append_lit(out, "\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"");
            gw_buf_append_str(out, gw_buf_str(&b->text));
            gw_buf_append_lit(out, "\",\"signature\":\"");
            gw_buf_append_str(out, gw_buf_str(&b->sig));
        } else {
            gw_buf_append_lit(out, "\"thinking_blocks\":[{\"type\":\"redacted_thinking\",\"data\":\"");
            gw_buf_append_str(out, gw_buf_str(&b->text));
        }
        gw_buf_append_lit(out, "\"}]");
        delta_close(out, NULL);
        b->kind = BLK_OTHER; /* sent once, even if the stop repeats */
    }
}

static void usage_chunk(gw_openai_anthropic_resp_t *r, gw_buf_t *out)
{
    chunk_open(r, out);
    gw_buf_append_lit(out, ",\"choices\":[],\"usage\":");
    append_usage(out, &r->usage);
    gw_buf_append_lit(out, "}\n\n");
}

void gw_openai_anthropic_resp_event(gw_openai_anthropic_resp_t *r, gw_str_t event_name, gw_str_t data, gw_buf_t *out)
{
    if (r->done)
        return;
    gw_anthropic_event_t kind = gw_anthropic_stream_observe(&r->obs, event_name, data, &r->usage, &r->model);
    switch (kind) {
    case GW_ANTHROPIC_EV_MESSAGE_START: {
        gw_str_t msg = jget(data, "message");
        /* A second message_start after content (a restarted, "spliced" stream) numbers its blocks
         * from 0 again: forget the old ones. Tool call indexes keep counting, as the client
         * already holds the earlier calls. */
        reset_blocks(r);
        /* every chunk of one completion carries the same id and model: the first message's */
        if (!r->named) {
            r->named = true;
            set_literal(&r->id, jget(msg, "id"));
            set_literal(&r->model_lit, jget(msg, "model"));
        }
        ensure_role(r, out);
        break;
    }
    case GW_ANTHROPIC_EV_CONTENT_BLOCK_START: on_block_start(r, data, out); break;
    case GW_ANTHROPIC_EV_CONTENT_BLOCK_DELTA: on_block_delta(r, data, out); break;
    case GW_ANTHROPIC_EV_CONTENT_BLOCK_STOP: on_block_stop(r, data, out); break;
    case GW_ANTHROPIC_EV_MESSAGE_DELTA: {
        gw_str_t sr = jget(jget(data, "delta"), "stop_reason");
        if (jtype(sr) == GW_JSON_STRING && !r->finish_sent) {
            ensure_role(r, out);
            r->finish_sent = true;
            delta_open(r, out);
            delta_close(out, finish_reason(sr));
        }
        break;
    }
    case GW_ANTHROPIC_EV_MESSAGE_STOP:
        ensure_role(r, out);
        if (!r->finish_sent) {
            r->finish_sent = true;
            delta_open(r, out);
            delta_close(out, "stop");
        }
        if (r->include_usage)
            usage_chunk(r, out);
        gw_buf_append_lit(out, "data: [DONE]\n\n");
        r->done = true;
        break;
    case GW_ANTHROPIC_EV_ERROR: {
        gw_buf_t type, message;
        gw_buf_init(&type, 256);
        gw_buf_init(&message, MAX_ERROR_MESSAGE * 4);
        gw_anthropic_error_parse(data, &type, &message);
        if (message.len == 0)
            gw_buf_append_lit(&message, "the upstream stream reported an error");
        error_event(r, gw_buf_str(&message), type.len ? gw_buf_cstr(&type) : "api_error", out);
        gw_buf_free(&type);
        gw_buf_free(&message);
        break;
    }
    default: break; /* ping and event types this translator does not know */
    }
}

void gw_openai_anthropic_resp_end(gw_openai_anthropic_resp_t *r, const char *reason, gw_buf_t *out)
{
    if (r->done)
        return;
    const char *m = reason ? reason : "the upstream stream ended before message_stop";
    error_event(r, gw_str_c(m), "api_error", out);
}

/* Starts the next object of a comma-separated list being built in b. */
static void open_item(gw_buf_t *b)
{
    if (b->len)
        gw_buf_append_byte(b, ',');
    gw_buf_append_byte(b, '{');
}

void gw_openai_anthropic_resp_body(gw_openai_anthropic_resp_t *r, gw_str_t body, gw_buf_t *out)
{
    gw_str_t k, v, id = GW_STR_NULL, model = GW_STR_NULL, content = GW_STR_NULL, stop = GW_STR_NULL,
                   usage = GW_STR_NULL, type = GW_STR_NULL;
    size_t pos = 0;
    int rc;
    while ((rc = gw_json_object_next(body, &pos, &k, &v)) == GW_OK) {
        if (gw_json_key_eq(k, GW_STR("id")))
            id = v;
        else if (gw_json_key_eq(k, GW_STR("model")))
            model = v;
        else if (gw_json_key_eq(k, GW_STR("content")))
            content = v;
        else if (gw_json_key_eq(k, GW_STR("stop_reason")))
            stop = v;
        else if (gw_json_key_eq(k, GW_STR("usage")))
            usage = v;
        else if (gw_json_key_eq(k, GW_STR("type")))
            type = v;
    }
    r->done = true;
    if (rc != GW_DONE) {
        r->failed = true;
        openai_error(out, GW_STR("the upstream response is not a JSON object"), "api_error", NULL);
        return;
    }
    if (jis(type, "error")) {
        r->failed = true;
        gw_openai_anthropic_error_body(500, body, out);
        return;
    }
    gw_anthropic_usage_t au = {0};
    if (gw_anthropic_usage_merge(usage, &au))
        gw_anthropic_usage_to_token_usage(&au, &r->usage);
    if (jnonempty(model)) {
        gw_buf_reset(&r->model);
        gw_json_string_unescape(model, &r->model);
        set_literal(&r->model_lit, model);
    }
    set_literal(&r->id, id);

    gw_buf_t text, reasoning, blocks, calls;
    gw_buf_init(&text, GW_BUF_UNLIMITED);
    gw_buf_init(&reasoning, GW_BUF_UNLIMITED);
    gw_buf_init(&blocks, GW_BUF_UNLIMITED);
    gw_buf_init(&calls, GW_BUF_UNLIMITED);
    bool has_text = false, has_reasoning = false;
    gw_str_t el;
    JARR_EACH(content, cpos, el)
    {
        gw_str_t bt = jget(el, "type");
        if (jis(bt, "text")) {
            append_string_body(&text, jget(el, "text"));
            has_text = true;
        } else if (jis(bt, "thinking")) {
            gw_str_t th = jget(el, "thinking");
            append_string_body(&reasoning, th);
            has_reasoning = true;
            open_item(&blocks);
            gw_buf_append_lit(&blocks, "\"type\":\"thinking\",\"thinking\":");
            append_string(&blocks, th);
            gw_buf_append_lit(&blocks, ",\"signature\":");
            append_string(&blocks, jget(el, "signature"));
            gw_buf_append_byte(&blocks, '}');
        } else if (jis(bt, "redacted_thinking")) {
            open_item(&blocks);
            gw_buf_append_lit(&blocks, "\"type\":\"redacted_thinking\",\"data\":");
            append_string(&blocks, jget(el, "data"));
            gw_buf_append_byte(&blocks, '}');
        } else if (jis(bt, "tool_use")) {
            gw_str_t input = jget(el, "input");
            open_item(&calls);
            gw_buf_append_lit(&calls, "\"id\":");
            append_string(&calls, jget(el, "id"));
            gw_buf_append_lit(&calls, ",\"type\":\"function\",\"function\":{\"name\":");
            append_string(&calls, jget(el, "name"));
            gw_buf_append_lit(&calls, ",\"arguments\":");
            if (jtype(input) == GW_JSON_OBJECT)
                gw_json_append_string(&calls, input.base, input.len);
            else
                gw_buf_append_lit(&calls, "\"{}\"");
            gw_buf_append_lit(&calls, "}}");
        }
    }
    gw_buf_append_lit(out, "{\"id\":");
    gw_buf_append_str(out, gw_buf_str(&r->id));
    gw_buf_append_lit(out, ",\"object\":\"chat.completion\",\"created\":");
    gw_buf_appendf(out, "%lld", (long long)r->created);
    gw_buf_append_lit(out, ",\"model\":");
    gw_buf_append_str(out, gw_buf_str(&r->model_lit));
    gw_buf_append_lit(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (has_text || calls.len == 0) {
        gw_buf_append_byte(out, '"');
        gw_buf_append_str(out, gw_buf_str(&text));
        gw_buf_append_byte(out, '"');
    } else {
        gw_buf_append_lit(out, "null");
    }
    if (has_reasoning) {
        gw_buf_append_lit(out, ",\"reasoning_content\":\"");
        gw_buf_append_str(out, gw_buf_str(&reasoning));
        gw_buf_append_byte(out, '"');
    }
    if (blocks.len) {
        gw_buf_append_lit(out, ",\"thinking_blocks\":[");
        gw_buf_append_str(out, gw_buf_str(&blocks));
        gw_buf_append_byte(out, ']');
    }
    if (calls.len) {
        gw_buf_append_lit(out, ",\"tool_calls\":[");
        gw_buf_append_str(out, gw_buf_str(&calls));
        gw_buf_append_byte(out, ']');
    }
    gw_buf_append_lit(out, "},\"logprobs\":null,\"finish_reason\":\"");
    const char *fr = finish_reason(stop);
    gw_buf_append(out, fr, strlen(fr));
    gw_buf_append_lit(out, "\"}]");
    if (r->usage.present) {
        gw_buf_append_lit(out, ",\"usage\":");
        append_usage(out, &r->usage);
    }
    gw_buf_append_byte(out, '}');
    gw_buf_free(&text);
    gw_buf_free(&reasoning);
    gw_buf_free(&blocks);
    gw_buf_free(&calls);
}

/* ---------------------------------------------------------------------------------------------
 * The translator. */

typedef struct {
    gw_translator_t base;
    char *model;              /* the model sent upstream: the fallback response model */
    gw_openai_anthropic_info_t info;
    gw_openai_anthropic_resp_t *resp;
    gw_decoder_t *decoder;    /* NULL for identity bodies */
    gw_sse_parser_t sse;
    gw_buf_t body;            /* non-streaming: the decoded body, converted at the end */
    gw_buf_t scratch;         /* decoded piece of the current chunk */
    const char *broken;       /* why the upstream body cannot be read, NULL while it can */
} oa_tr_t;

static int oa_request(gw_translator_t *t, const gw_translate_request_t *in, gw_translate_output_t *out,
                      const char **err)
{
    oa_tr_t *o = (oa_tr_t *)t;
    free(o->model);
    if (in->model_override && *in->model_override) {
        o->model = gw_strdup(in->model_override);
    } else {
        o->model = jdup(in->model_raw);
        if (o->model == NULL) {
            *err = "the request body must have a string field \"model\"";
            return GW_EINVAL;
        }
    }
    gw_openai_anthropic_opts_t opts = {.model = o->model};
    gw_buf_reset(&out->body);
    int rc = gw_openai_anthropic_request_body(in->body, &opts, &out->body, &o->info, err);
    if (rc != GW_OK)
        return rc;
    out->body_changed = true;
    gw_anthropic_messages_path(in->backend->schema_version, false, &out->path);
    out->n_headers = 0;
    if (!gw_anthropic_client_has_version(in->headers, in->n_headers))
        gw_translate_output_add_header(out, "anthropic-version", GW_ANTHROPIC_VERSION);
    /* The body is decoded here, so only encodings codec/decompress knows may come back; streams
     * are asked uncompressed so that no compressor sits between the model and the client. */
    gw_translate_output_add_header(out, "accept-encoding", o->info.stream ? "identity" : "gzip, deflate, br");
    snprintf(out->content_type, sizeof(out->content_type), "application/json");
    return GW_OK;
}

static int oa_response_head(gw_translator_t *t, int status, gw_str_t content_type, gw_str_t content_encoding)
{
    oa_tr_t *o = (oa_tr_t *)t;
    (void)status;
    gw_str_t es = GW_STR("text/event-stream");
    t->stream_response = content_type.len >= es.len && gw_str_case_eq(gw_str(content_type.base, es.len), es);
    snprintf(t->client_content_type, sizeof(t->client_content_type), "%s",
             t->stream_response ? "text/event-stream" : "application/json");
    gw_encoding_t enc = gw_encoding_parse(content_encoding);
    if (enc == GW_ENCODING_UNSUPPORTED)
        o->broken = "the upstream response uses a content encoding the gateway cannot decode";
    else if (enc != GW_ENCODING_IDENTITY)
        o->decoder = gw_decoder_new(enc, MAX_BODY);
    gw_openai_anthropic_resp_free(o->resp);
    o->resp = gw_openai_anthropic_resp_new(o->model, (int64_t)time(NULL), o->info.include_usage);
    return GW_OK;
}

typedef struct {
    oa_tr_t *o;
    gw_buf_t *out;
} sse_ctx_t;

static int oa_on_event(void *ud, const gw_sse_event_t *ev)
{
    sse_ctx_t *c = ud;
    gw_openai_anthropic_resp_event(c->o->resp, ev->event, ev->data, c->out);
    return GW_OK;
}

static void sync_result(oa_tr_t *o)
{
    o->base.usage = *gw_openai_anthropic_resp_usage(o->resp);
    gw_str_t m = gw_openai_anthropic_resp_model(o->resp);
    if (m.len) {
        gw_buf_reset(&o->base.response_model);
        gw_buf_append_str(&o->base.response_model, m);
    }
    if (gw_openai_anthropic_resp_failed(o->resp))
        o->base.stream_failed = true;
}

static void consume(oa_tr_t *o, const char *p, size_t n, gw_buf_t *out)
{
    if (o->base.stream_response) {
        sse_ctx_t c = {o, out};
        if (gw_sse_feed(&o->sse, p, n, oa_on_event, &c) != GW_OK)
            o->broken = "an upstream stream event exceeds the size limit";
    } else if (gw_buf_append(&o->body, p, n) != GW_OK) {
        o->broken = "the upstream response body exceeds the size limit";
    }
}

static int oa_response_body(gw_translator_t *t, const char *p, size_t n, bool end, gw_buf_t *out)
{
    oa_tr_t *o = (oa_tr_t *)t;
    if (o->resp == NULL) /* a body without a head: nothing sensible to translate */
        o->resp = gw_openai_anthropic_resp_new(o->model, (int64_t)time(NULL), o->info.include_usage);
    if (o->broken == NULL && n) {
        if (o->decoder) {
            gw_buf_reset(&o->scratch);
            if (gw_decoder_feed(o->decoder, p, n, &o->scratch) != GW_OK)
                o->broken = "the upstream response cannot be decoded";
            else
                consume(o, o->scratch.data, o->scratch.len, out);
        } else {
            consume(o, p, n, out);
        }
    }
    if (t->stream_response) {
        if (o->broken)
            gw_openai_anthropic_resp_end(o->resp, o->broken, out);
        else if (end) {
            /* The last event may lack its closing blank line (seen in SDK fixtures): end of
             * stream ends it, as the SDKs' decoders do; a torn event then fails to parse. */
            if (gw_sse_has_partial(&o->sse))
                consume(o, "\n\n", 2, out);
            gw_openai_anthropic_resp_end(o->resp, o->broken, out);
        }
    } else if (end) {
        if (o->broken) {
            openai_error(out, gw_str_c(o->broken), "api_error", NULL);
            o->base.stream_failed = true;
        } else {
            gw_openai_anthropic_resp_body(o->resp, gw_buf_str(&o->body), out);
        }
    }
    sync_result(o);
    return GW_OK;
}

static int oa_response_error(gw_translator_t *t, int status, const gw_http_header_t *headers, size_t n_headers,
                             gw_str_t body, gw_buf_t *out)
{
    (void)t;
    (void)headers;
    (void)n_headers;
    gw_openai_anthropic_error_body(status, body, out);
    return GW_OK;
}

static void oa_destroy(gw_translator_t *t)
{
    oa_tr_t *o = (oa_tr_t *)t;
    gw_openai_anthropic_resp_free(o->resp);
    gw_decoder_free(o->decoder);
    gw_sse_parser_free(&o->sse);
    gw_buf_free(&o->body);
    gw_buf_free(&o->scratch);
    gw_buf_free(&t->response_model);
    free(o->model);
    free(o);
}

static const gw_translator_vtable_t oa_vtable = {
    .request = oa_request,
    .response_head = oa_response_head,
    .response_body = oa_response_body,
    .response_error = oa_response_error,
    .destroy = oa_destroy,
};

gw_translator_t *gw_openai_anthropic_new(void)
{
    oa_tr_t *o = gw_calloc(1, sizeof(*o));
    o->base.vt = &oa_vtable;
    o->base.passthrough_response = false;
    gw_buf_init(&o->base.response_model, 1024);
    gw_sse_parser_init(&o->sse, GW_SSE_DEFAULT_MAX_EVENT);
    gw_buf_init(&o->body, MAX_BODY);
    gw_buf_init(&o->scratch, MAX_BODY);
    return &o->base;
}
