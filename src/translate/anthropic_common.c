/* Anthropic Messages API helpers (see anthropic_common.h): usage and model from bodies and
 * stream events, error types, the upstream path. Bodies are scanned structurally, never
 * trusted to be valid: every lookup is bounds-checked by core/json. */
#include "translate/anthropic_common.h"

#include "core/json.h"

static void read_count(gw_str_t obj, const char *key, uint64_t *dst)
{
    gw_str_t v;
    uint64_t n;
    if (gw_json_object_get(obj, gw_str_c(key), &v) == GW_OK && gw_json_uint(v, &n) == GW_OK)
        *dst = n;
}

bool gw_anthropic_usage_merge(gw_str_t usage, gw_anthropic_usage_t *au)
{
    if (usage.base == NULL || gw_json_type(usage) != GW_JSON_OBJECT)
        return false;
    gw_anthropic_usage_t r = *au;
    /* One pass would be faster, but usage objects are tiny and a lookup per counter reads best. */
    read_count(usage, "input_tokens", &r.input_tokens);
    read_count(usage, "cache_read_input_tokens", &r.cache_read_input_tokens);
    read_count(usage, "cache_creation_input_tokens", &r.cache_creation_input_tokens);
    read_count(usage, "output_tokens", &r.output_tokens);
    gw_str_t details;
    if (gw_json_object_get(usage, GW_STR("output_tokens_details"), &details) == GW_OK &&
        gw_json_type(details) == GW_JSON_OBJECT)
        read_count(details, "thinking_tokens", &r.thinking_tokens);
    r.present = true;
    *au = r;
    return true;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void gw_anthropic_usage_to_token_usage(const gw_anthropic_usage_t *au, gw_token_usage_t *u)
{
    memset(u, 0, sizeof(*u));
    u->present = au->present;
    u->input = sat_add(sat_add(au->input_tokens, au->cache_read_input_tokens), au->cache_creation_input_tokens);
    u->cached_input = au->cache_read_input_tokens;
    u->cache_creation = au->cache_creation_input_tokens;
    u->output = au->output_tokens;
    u->reasoning = GW_MIN(au->thinking_tokens, au->output_tokens);
    u->total = sat_add(u->input, u->output);
}

/* Replaces *model's content with the unescaped string value; untouched for "" or a non-string. */
static void copy_model(gw_str_t raw, gw_buf_t *model)
{
    if (model == NULL || raw.base == NULL || gw_json_type(raw) != GW_JSON_STRING || raw.len <= 2)
        return;
    size_t old = model->len;
    if (gw_json_string_unescape(raw, model) != GW_OK || model->len == old)
        return;
    memmove(model->data, model->data + old, model->len - old);
    model->len -= old;
}

int gw_anthropic_usage_from_body(gw_str_t body, gw_token_usage_t *u, gw_buf_t *model)
{
    memset(u, 0, sizeof(*u));
    if (model)
        gw_buf_reset(model);
    size_t pos = 0;
    gw_str_t k, v, usage = GW_STR_NULL, m = GW_STR_NULL;
    int rc;
    while ((rc = gw_json_object_next(body, &pos, &k, &v)) == GW_OK) {
        if (gw_json_key_eq(k, GW_STR("usage")))
            usage = v;
        else if (gw_json_key_eq(k, GW_STR("model")))
            m = v;
    }
    if (rc != GW_DONE)
        return GW_EINVAL;
    gw_anthropic_usage_t au = {0};
    if (gw_anthropic_usage_merge(usage, &au))
        gw_anthropic_usage_to_token_usage(&au, u);
    copy_model(m, model);
    return GW_OK;
}

static gw_anthropic_event_t kind_of(gw_str_t name)
{
    static const struct {
        const char *name;
        gw_anthropic_event_t kind;
    } kinds[] = {
        {"message_start", GW_ANTHROPIC_EV_MESSAGE_START},
        {"content_block_start", GW_ANTHROPIC_EV_CONTENT_BLOCK_START},
        {"content_block_delta", GW_ANTHROPIC_EV_CONTENT_BLOCK_DELTA},
        {"content_block_stop", GW_ANTHROPIC_EV_CONTENT_BLOCK_STOP},
        {"message_delta", GW_ANTHROPIC_EV_MESSAGE_DELTA},
        {"message_stop", GW_ANTHROPIC_EV_MESSAGE_STOP},
        {"ping", GW_ANTHROPIC_EV_PING},
        {"error", GW_ANTHROPIC_EV_ERROR},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(kinds); i++)
        if (gw_str_eq(name, gw_str_c(kinds[i].name)))
            return kinds[i].kind;
    return GW_ANTHROPIC_EV_UNKNOWN;
}

gw_anthropic_event_t gw_anthropic_event_kind(gw_str_t event_name, gw_str_t data)
{
    gw_str_t t;
    if (data.base && gw_json_object_get(data, GW_STR("type"), &t) == GW_OK && gw_json_type(t) == GW_JSON_STRING &&
        t.len >= 2) {
        /* event types are plain ASCII: compare the literal's content without unescaping */
        gw_anthropic_event_t k = kind_of(gw_str(t.base + 1, t.len - 2));
        if (k != GW_ANTHROPIC_EV_UNKNOWN)
            return k;
    }
    return kind_of(event_name);
}

/* The payload is one whole JSON object, structurally: a torn last event of a cut stream must
 * not count (its event name alone would make "message_stop" look complete). */
static bool whole_object(gw_str_t data)
{
    size_t pos = 0;
    gw_str_t k, v;
    int rc;
    if (data.base == NULL)
        return false;
    while ((rc = gw_json_object_next(data, &pos, &k, &v)) == GW_OK)
        ;
    if (rc != GW_DONE)
        return false;
    for (; pos < data.len; pos++)
        if (data.base[pos] != ' ' && data.base[pos] != '\t' && data.base[pos] != '\r' && data.base[pos] != '\n')
            return false;
    return true;
}

gw_anthropic_event_t gw_anthropic_stream_observe(gw_anthropic_stream_obs_t *s, gw_str_t event_name, gw_str_t data,
                                                 gw_token_usage_t *u, gw_buf_t *model)
{
    if (!whole_object(data)) {
        /* "event: error" with a non-JSON payload is still an error */
        if (kind_of(event_name) == GW_ANTHROPIC_EV_ERROR) {
            s->saw_error = true;
            return GW_ANTHROPIC_EV_ERROR;
        }
        return GW_ANTHROPIC_EV_UNKNOWN;
    }
    gw_anthropic_event_t kind = gw_anthropic_event_kind(event_name, data);
    bool changed = false;
    switch (kind) {
    case GW_ANTHROPIC_EV_MESSAGE_START: {
        gw_str_t msg, v;
        s->saw_message_start = true;
        if (gw_json_object_get(data, GW_STR("message"), &msg) != GW_OK || gw_json_type(msg) != GW_JSON_OBJECT)
            break;
        if (gw_json_object_get(msg, GW_STR("usage"), &v) == GW_OK)
            changed = gw_anthropic_usage_merge(v, &s->usage);
        if (gw_json_object_get(msg, GW_STR("model"), &v) == GW_OK)
            copy_model(v, model);
        break;
    }
    case GW_ANTHROPIC_EV_MESSAGE_DELTA: {
        gw_str_t v;
        if (gw_json_object_get(data, GW_STR("usage"), &v) == GW_OK)
            changed = gw_anthropic_usage_merge(v, &s->usage);
        break;
    }
    case GW_ANTHROPIC_EV_MESSAGE_STOP: s->saw_message_stop = true; break;
    case GW_ANTHROPIC_EV_ERROR: s->saw_error = true; break;
    default: break;
    }
    if (changed && u)
        gw_anthropic_usage_to_token_usage(&s->usage, u);
    return kind;
}

const char *gw_anthropic_error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

bool gw_anthropic_error_parse(gw_str_t body, gw_buf_t *type, gw_buf_t *message)
{
    gw_str_t err, v;
    if (body.base == NULL || gw_json_type(body) != GW_JSON_OBJECT ||
        gw_json_object_get(body, GW_STR("error"), &err) != GW_OK || gw_json_type(err) != GW_JSON_OBJECT)
        return false;
    if (type && gw_json_object_get(err, GW_STR("type"), &v) == GW_OK && gw_json_type(v) == GW_JSON_STRING)
        gw_json_string_unescape(v, type);
    if (message && gw_json_object_get(err, GW_STR("message"), &v) == GW_OK && gw_json_type(v) == GW_JSON_STRING)
        gw_json_string_unescape(v, message);
    return true;
}

static bool date_like(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '-'))
            return false;
    return true;
}

void gw_anthropic_messages_path(const char *schema_version, bool count_tokens, gw_buf_t *path)
{
    gw_buf_reset(path);
    const char *v = schema_version ? schema_version : "";
    while (*v == '/')
        v++;
    size_t n = strlen(v);
    while (n && v[n - 1] == '/')
        n--;
    if (n == 0 || date_like(v)) {
        gw_buf_append_lit(path, "/v1");
    } else {
        gw_buf_append_byte(path, '/');
        gw_buf_append(path, v, n);
        bool ends_v1 = n >= 2 && memcmp(v + n - 2, "v1", 2) == 0 && (n == 2 || v[n - 3] == '/');
        if (!ends_v1)
            gw_buf_append_lit(path, "/v1");
    }
    if (count_tokens)
        gw_buf_append_lit(path, "/messages/count_tokens");
    else
        gw_buf_append_lit(path, "/messages");
}

bool gw_anthropic_client_has_version(const gw_http_header_t *headers, size_t n_headers)
{
    for (size_t i = 0; i < n_headers; i++) {
        if (!gw_str_case_eq_lit(headers[i].name, "anthropic-version"))
            continue;
        for (size_t k = 0; k < headers[i].value.len; k++)
            if (headers[i].value.base[k] != ' ' && headers[i].value.base[k] != '\t')
                return true;
    }
    return false;
}
