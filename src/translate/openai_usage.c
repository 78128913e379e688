/* Token usage and response model from OpenAI-schema bodies and stream chunks (openai_usage.h).
 * One pass over the top-level members and one over the usage object, nothing allocated. Upstream
 * bodies are scanned structurally, not validated: a lone surrogate in generated text must not
 * cost the usage record (the client gets the bytes unchanged anyway); numbers are read strictly. */
#include "translate/openai_usage.h"

#include "core/json.h"

/* The usage members read here, told apart by their length and one memcmp (this
 * runs for every response). A key spelled with escapes is compared the slow way. */
enum usage_key {
    K_OTHER = 0,
    K_INPUT,          /* prompt_tokens, input_tokens */
    K_OUTPUT,         /* completion_tokens, output_tokens */
    K_TOTAL,          /* total_tokens */
    K_INPUT_DETAILS,  /* prompt_tokens_details, input_tokens_details */
    K_OUTPUT_DETAILS, /* completion_tokens_details, output_tokens_details */
    K_CACHED,         /* cached_tokens (in the input details) */
    K_CACHE_WRITE,    /* cache_write_tokens (in the input details; gpt-5.x) */
    K_REASONING,      /* reasoning_tokens (in the output details) */
};

/* The key of an unescaped member name c[0..n). */
static enum usage_key plain_key(const char *c, size_t n)
{
#define IS(lit) (memcmp(c, lit, sizeof(lit) - 1) == 0)
    switch (n) {
    case 12: return IS("input_tokens") ? K_INPUT : IS("total_tokens") ? K_TOTAL : K_OTHER;
    case 13:
        return IS("prompt_tokens") ? K_INPUT : IS("output_tokens") ? K_OUTPUT : IS("cached_tokens") ? K_CACHED : K_OTHER;
    case 16: return IS("reasoning_tokens") ? K_REASONING : K_OTHER;
    case 17: return IS("completion_tokens") ? K_OUTPUT : K_OTHER;
    case 18: return IS("cache_write_tokens") ? K_CACHE_WRITE : K_OTHER;
    case 20: return IS("input_tokens_details") ? K_INPUT_DETAILS : K_OTHER;
    case 21: return IS("prompt_tokens_details") ? K_INPUT_DETAILS : IS("output_tokens_details") ? K_OUTPUT_DETAILS : K_OTHER;
    case 25: return IS("completion_tokens_details") ? K_OUTPUT_DETAILS : K_OTHER;
    default: return K_OTHER;
    }
#undef IS
}

static enum usage_key usage_key_of(gw_str_t raw)
{
    if (raw.len < 2)
        return K_OTHER;
    const char *c = raw.base + 1;
    size_t n = raw.len - 2;
    if (memchr(c, '\\', n) == NULL)
        return plain_key(c, n);
    /* Escaped spelling: decode (names are short; a longer one is no name of ours). */
    gw_buf_t d;
    gw_buf_init(&d, 32);
    enum usage_key k = K_OTHER;
    if (gw_json_string_unescape(raw, &d) == GW_OK)
        k = plain_key(d.data, d.len);
    gw_buf_free(&d);
    return k;
}

/* A counter: a non-negative integer; null, negative or non-integral values count as absent. */
static void read_count(gw_str_t raw, uint64_t *dst)
{
    uint64_t v;
    if (gw_json_uint(raw, &v) == GW_OK)
        *dst = v;
}

/* One pass over a details object, reading the members that belong to it. */
static void read_details(gw_str_t obj, bool input_side, gw_token_usage_t *r)
{
    if (gw_json_type(obj) != GW_JSON_OBJECT)
        return;
    size_t pos = 0;
    gw_str_t k, v;
    while (gw_json_object_next(obj, &pos, &k, &v) == GW_OK) {
        enum usage_key key = usage_key_of(k);
        if (input_side && key == K_CACHED)
            read_count(v, &r->cached_input);
        else if (input_side && key == K_CACHE_WRITE) /* seen on gpt-5.x: tokens written to the cache */
            read_count(v, &r->cache_creation);
        else if (!input_side && key == K_REASONING)
            read_count(v, &r->reasoning);
    }
}

/* Fills *u from a usage object (chat and legacy completions, embeddings, images and Responses-style
 * input/output naming alike). Returns false, *u untouched, when the object is malformed. */
static bool parse_usage(gw_str_t usage, gw_token_usage_t *u)
{
    if (gw_json_type(usage) != GW_JSON_OBJECT)
        return false;
    gw_token_usage_t r = {.present = true};
    bool has_total = false;
    size_t pos = 0;
    gw_str_t k, v;
    int rc;
    while ((rc = gw_json_object_next(usage, &pos, &k, &v)) == GW_OK) {
        switch (usage_key_of(k)) {
        case K_INPUT: read_count(v, &r.input); break;
        case K_OUTPUT: read_count(v, &r.output); break;
        case K_TOTAL: {
            uint64_t t;
            if (gw_json_uint(v, &t) == GW_OK) {
                r.total = t;
                has_total = true;
            }
            break;
        }
        case K_INPUT_DETAILS: read_details(v, true, &r); break;
        case K_OUTPUT_DETAILS: read_details(v, false, &r); break;
        default: break;
        }
    }
    if (rc != GW_DONE)
        return false;
    if (!has_total)
        r.total = r.input + r.output;
    *u = r;
    return true;
}

/* Copies a non-empty model string into *model, replacing its content; *model is untouched when
 * the value is not a usable string (Azure's first chunk carries "model": ""). */
static void copy_model(gw_str_t raw, gw_buf_t *model)
{
    if (gw_json_type(raw) != GW_JSON_STRING || raw.len <= 2)
        return;
    size_t old = model->len;
    if (gw_json_string_unescape(raw, model) != GW_OK || model->len == old)
        return;
    memmove(model->data, model->data + old, model->len - old);
    model->len -= old;
}

/* Walks the top-level members once; the last "usage" and "model" win, as in JSON.parse. */
static int scan(gw_str_t body, gw_str_t *usage, gw_str_t *model)
{
    size_t pos = 0;
    gw_str_t k, v;
    int rc;
    *usage = *model = GW_STR_NULL;
    while ((rc = gw_json_object_next(body, &pos, &k, &v)) == GW_OK) {
        if (gw_json_key_eq(k, GW_STR("usage")))
            *usage = v;
        else if (gw_json_key_eq(k, GW_STR("model")))
            *model = v;
    }
    if (rc != GW_DONE)
        return GW_EINVAL;
    for (; pos < body.len; pos++) /* only whitespace may follow the object */
        if (body.base[pos] != ' ' && body.base[pos] != '\n' && body.base[pos] != '\r' && body.base[pos] != '\t')
            return GW_EINVAL;
    return GW_OK;
}

int gw_openai_usage_from_body(gw_str_t body, gw_token_usage_t *u, gw_buf_t *model)
{
    gw_str_t usage, m;
    memset(u, 0, sizeof(*u));
    if (model)
        gw_buf_reset(model);
    if (scan(body, &usage, &m) != GW_OK)
        return GW_EINVAL;
    if (gw_json_type(usage) == GW_JSON_OBJECT && !parse_usage(usage, u))
        return GW_EINVAL;
    if (model && m.base)
        copy_model(m, model);
    return GW_OK;
}

int gw_openai_usage_from_chunk(gw_str_t data, gw_token_usage_t *u, gw_buf_t *model)
{
    gw_str_t usage, m;
    if (scan(data, &usage, &m) != GW_OK)
        return GW_EINVAL;
    /* "usage": null (every chunk but the last with include_usage) leaves *u as it was. */
    gw_token_usage_t nu;
    if (gw_json_type(usage) == GW_JSON_OBJECT) {
        if (!parse_usage(usage, &nu))
            return GW_EINVAL;
        *u = nu;
    }
    if (model && m.base)
        copy_model(m, model);
    return GW_OK;
}
