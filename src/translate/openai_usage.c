/* Token usage and response model from OpenAI-schema bodies and stream chunks (openai_usage.h).
 * One pass over the top-level members and one over the usage object, nothing allocated. Upstream
 * bodies are scanned structurally, not validated: a lone surrogate in generated text must not
 * cost the usage record (the client gets the bytes unchanged anyway); numbers are read strictly. */
#include "translate/openai_usage.h"

#include "core/json.h"

/* A counter: a non-negative integer; null, negative or non-integral values count as absent. */
static void read_count(gw_str_t raw, uint64_t *dst)
{
    uint64_t v;
    if (gw_json_uint(raw, &v) == GW_OK)
        *dst = v;
}

static void read_detail(gw_str_t obj, const char *key, uint64_t *dst)
{
    gw_str_t v;
    if (gw_json_type(obj) == GW_JSON_OBJECT && gw_json_object_get(obj, gw_str_c(key), &v) == GW_OK)
        read_count(v, dst);
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
        if (gw_json_key_eq(k, GW_STR("prompt_tokens")) || gw_json_key_eq(k, GW_STR("input_tokens"))) {
            read_count(v, &r.input);
        } else if (gw_json_key_eq(k, GW_STR("completion_tokens")) || gw_json_key_eq(k, GW_STR("output_tokens"))) {
            read_count(v, &r.output);
        } else if (gw_json_key_eq(k, GW_STR("total_tokens"))) {
            uint64_t t;
            if (gw_json_uint(v, &t) == GW_OK) {
                r.total = t;
                has_total = true;
            }
        } else if (gw_json_key_eq(k, GW_STR("prompt_tokens_details")) || gw_json_key_eq(k, GW_STR("input_tokens_details"))) {
            read_detail(v, "cached_tokens", &r.cached_input);
            /* Seen on gpt-5.x chat responses: tokens written to the prompt cache. */
            read_detail(v, "cache_write_tokens", &r.cache_creation);
        } else if (gw_json_key_eq(k, GW_STR("completion_tokens_details")) ||
                   gw_json_key_eq(k, GW_STR("output_tokens_details"))) {
            read_detail(v, "reasoning_tokens", &r.reasoning);
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
