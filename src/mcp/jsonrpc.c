/* JSON-RPC 2.0 envelope parsing and id rewriting for the MCP gateway. The scanner of core/json
 * validates the bytes once; members are then read as raw slices, so bodies are relayed without
 * being re-serialized. */
#include "mcp/jsonrpc.h"

#include "core/json.h"

#include <stdio.h>

static gw_str_t trim(gw_str_t s)
{
    while (s.len && (s.base[0] == ' ' || s.base[0] == '\t' || s.base[0] == '\r' || s.base[0] == '\n')) {
        s.base++;
        s.len--;
    }
    while (s.len && (s.base[s.len - 1] == ' ' || s.base[s.len - 1] == '\t' || s.base[s.len - 1] == '\r' ||
                     s.base[s.len - 1] == '\n'))
        s.len--;
    return s;
}

bool gw_jsonrpc_is_batch(gw_str_t body)
{
    body = trim(body);
    return body.len > 0 && body.base[0] == '[';
}

/* A signed integer of at most 18 digits ("-32602"); anything else (fractions, exponents) fails,
 * because error codes are integers by the spec. */
static int parse_int(gw_str_t raw, int64_t *out)
{
    raw = trim(raw);
    size_t i = 0;
    bool neg = false;
    if (i < raw.len && raw.base[i] == '-') {
        neg = true;
        i++;
    }
    if (i == raw.len || raw.len - i > 18)
        return GW_EINVAL;
    int64_t v = 0;
    for (; i < raw.len; i++) {
        if (raw.base[i] < '0' || raw.base[i] > '9')
            return GW_EINVAL;
        v = v * 10 + (raw.base[i] - '0');
    }
    *out = neg ? -v : v;
    return GW_OK;
}

static bool is_id_type(gw_json_type_t t)
{
    return t == GW_JSON_STRING || t == GW_JSON_NUMBER;
}

#define FAIL(text)          \
    do {                    \
        if (why != NULL)    \
            *why = (text);  \
        return GW_EINVAL;   \
    } while (0)

int gw_jsonrpc_parse(gw_str_t msg, gw_jsonrpc_msg_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (why != NULL)
        *why = NULL;
    if (msg.len > GW_JSONRPC_MAX_MESSAGE) {
        if (why != NULL)
            *why = "message too large";
        return GW_TOOBIG;
    }
    if (msg.base == NULL)
        FAIL("parse error");
    gw_json_error_t jerr;
    int rc = gw_json_validate(msg.base, msg.len, GW_JSONRPC_MAX_DEPTH, &jerr);
    if (rc == GW_TOOBIG) {
        if (why != NULL)
            *why = "message nested too deeply";
        return GW_TOOBIG;
    }
    if (rc != GW_OK)
        FAIL("parse error");
    gw_str_t obj = trim(msg);
    if (gw_json_type(obj) != GW_JSON_OBJECT)
        FAIL("a JSON-RPC message must be an object");

    gw_str_t version = GW_STR_NULL, method = GW_STR_NULL;
    bool has_id = false, has_method = false, has_params = false, has_result = false, has_error = false;
    size_t pos = 0;
    gw_str_t key, value;
    while ((rc = gw_json_object_next(obj, &pos, &key, &value)) == GW_OK) {
        value = trim(value);
        if (gw_json_key_eq(key, GW_STR("jsonrpc"))) {
            version = value;
        } else if (gw_json_key_eq(key, GW_STR("id"))) {
            has_id = true;
            out->id = value;
        } else if (gw_json_key_eq(key, GW_STR("method"))) {
            has_method = true;
            method = value;
        } else if (gw_json_key_eq(key, GW_STR("params"))) {
            has_params = true;
            out->params = value;
        } else if (gw_json_key_eq(key, GW_STR("result"))) {
            has_result = true;
            out->result = value;
        } else if (gw_json_key_eq(key, GW_STR("error"))) {
            has_error = true;
            out->error = value;
        }
        /* Other members are ignored: JSON-RPC defines none, and refusing them would break peers
         * that annotate messages, for no gain. */
    }
    if (rc != GW_DONE)
        FAIL("parse error");
    if (!gw_str_eq_lit(version, "\"2.0\""))
        FAIL("jsonrpc must be \"2.0\"");

    if (has_method) {
        if (has_result || has_error)
            FAIL("a message cannot carry both method and result/error");
        if (gw_json_type(method) != GW_JSON_STRING)
            FAIL("method must be a string");
        gw_buf_t mb;
        gw_buf_init(&mb, GW_JSONRPC_MAX_METHOD);
        rc = gw_json_string_unescape(method, &mb);
        if (rc != GW_OK || mb.len == 0) {
            gw_buf_free(&mb);
            FAIL(rc == GW_TOOBIG ? "method name too long" : "method must be a non-empty string");
        }
        memcpy(out->method_buf, mb.data, mb.len);
        out->method_buf[mb.len] = '\0';
        out->method = gw_str(out->method_buf, mb.len);
        gw_buf_free(&mb);
        if (has_params) {
            gw_json_type_t pt = gw_json_type(out->params);
            if (pt != GW_JSON_OBJECT && pt != GW_JSON_ARRAY)
                FAIL("params must be an object or an array");
        }
        if (has_id) {
            /* MCP forbids null ids in requests (JSON-RPC merely discourages them). */
            if (!is_id_type(gw_json_type(out->id)))
                FAIL("id must be a string or a number");
            if (out->id.len > GW_JSONRPC_MAX_PARSED_ID)
                FAIL("id too long");
            out->kind = GW_JSONRPC_REQUEST;
        } else {
            out->kind = GW_JSONRPC_NOTIFICATION;
        }
        return GW_OK;
    }

    if (has_params)
        FAIL("params without method");
    if (!has_id)
        FAIL("a response must carry an id");
    if (has_result == has_error)
        FAIL("a response carries exactly one of result and error");
    if (out->id.len > GW_JSONRPC_MAX_PARSED_ID)
        FAIL("id too long");
    gw_json_type_t it = gw_json_type(out->id);
    if (has_result) {
        if (!is_id_type(it))
            FAIL("id must be a string or a number");
        out->kind = GW_JSONRPC_RESPONSE;
        return GW_OK;
    }
    if (!is_id_type(it) && it != GW_JSON_NULL)
        FAIL("id must be a string, a number or null");
    if (gw_json_type(out->error) != GW_JSON_OBJECT)
        FAIL("error must be an object");
    gw_str_t code, message;
    if (gw_json_object_get(out->error, GW_STR("code"), &code) != GW_OK || parse_int(code, &out->error_code) != GW_OK)
        FAIL("error.code must be an integer");
    if (gw_json_object_get(out->error, GW_STR("message"), &message) != GW_OK ||
        gw_json_type(message) != GW_JSON_STRING)
        FAIL("error.message must be a string");
    out->kind = GW_JSONRPC_ERROR;
    return GW_OK;
}

int gw_jsonrpc_batch_split(gw_str_t body, gw_str_t *items, size_t max, size_t *n)
{
    *n = 0;
    if (body.len > GW_JSONRPC_MAX_MESSAGE)
        return GW_TOOBIG;
    if (body.base == NULL)
        return GW_EINVAL;
    /* the members must be valid JSON too; the iterator checks structure only */
    int rc = gw_json_validate(body.base, body.len, GW_JSONRPC_MAX_DEPTH, NULL);
    if (rc != GW_OK)
        return rc;
    size_t pos = 0;
    gw_str_t elem;
    while ((rc = gw_json_array_next(trim(body), &pos, &elem)) == GW_OK) {
        if (*n == max) {
            *n = 0;
            return GW_TOOBIG;
        }
        items[(*n)++] = trim(elem);
    }
    if (rc != GW_DONE) {
        *n = 0;
        return GW_EINVAL;
    }
    return GW_OK;
}

int gw_jsonrpc_replace_id(gw_str_t msg, const gw_jsonrpc_msg_t *m, gw_str_t new_id, gw_buf_t *out)
{
    if (m->id.len == 0 || new_id.len == 0)
        return GW_EINVAL;
    return gw_json_splice(msg, m->id, new_id, out);
}

int gw_jsonrpc_id_wrap(gw_str_t owner, gw_str_t raw_id, gw_buf_t *out)
{
    raw_id = trim(raw_id);
    if (owner.len == 0 || owner.len > GW_JSONRPC_MAX_OWNER || raw_id.len == 0 || raw_id.len > GW_JSONRPC_MAX_ID ||
        !is_id_type(gw_json_type(raw_id)))
        return GW_EINVAL;
    for (size_t i = 0; i + 1 < owner.len; i++)
        if (owner.base[i] == '_' && owner.base[i + 1] == '_')
            return GW_EINVAL;
    /* An owner ending in '_' would move the first "__" into the owner ("a_" + "__5" -> "a" + "_5"). */
    if (owner.base[owner.len - 1] == '_')
        return GW_EINVAL;
    gw_buf_t tmp;
    gw_buf_init(&tmp, owner.len + 2 + raw_id.len);
    gw_buf_append_str(&tmp, owner);
    gw_buf_append_lit(&tmp, "__");
    gw_buf_append_str(&tmp, raw_id);
    size_t len0 = out->len;
    int rc = gw_json_append_string(out, tmp.data, tmp.len);
    gw_buf_free(&tmp);
    if (rc == GW_OK && out->len - len0 > GW_JSONRPC_MAX_PARSED_ID) {
        /* only an owner full of control characters gets here; its answer could not be parsed */
        out->len = len0;
        rc = GW_TOOBIG;
    }
    return rc;
}

int gw_jsonrpc_id_unwrap(gw_str_t wrapped, gw_buf_t *owner_out, gw_buf_t *raw_id_out)
{
    wrapped = trim(wrapped);
    if (gw_json_type(wrapped) != GW_JSON_STRING || wrapped.len > GW_JSONRPC_MAX_PARSED_ID)
        return GW_EINVAL;
    /* The slice may come from anywhere: validate it as a JSON value before unescaping. */
    if (gw_json_validate(wrapped.base, wrapped.len, 1, NULL) != GW_OK)
        return GW_EINVAL;
    gw_buf_t s;
    gw_buf_init(&s, GW_BUF_UNLIMITED);
    int rc = GW_EINVAL;
    if (gw_json_string_unescape(wrapped, &s) != GW_OK)
        goto out;
    size_t sep = 0;
    bool found = false;
    for (size_t i = 0; i + 1 < s.len; i++) {
        if (s.data[i] == '_' && s.data[i + 1] == '_') {
            sep = i;
            found = true;
            break;
        }
    }
    if (!found || sep == 0)
        goto out;
    gw_str_t raw = gw_str(s.data + sep + 2, s.len - sep - 2);
    if (raw.len == 0 || raw.len > GW_JSONRPC_MAX_ID || gw_json_validate(raw.base, raw.len, 1, NULL) != GW_OK ||
        !is_id_type(gw_json_type(raw)) || trim(raw).len != raw.len)
        goto out;
    size_t owner_len0 = owner_out->len;
    if (gw_buf_append(owner_out, s.data, sep) != GW_OK)
        goto out;
    if (gw_buf_append_str(raw_id_out, raw) != GW_OK) {
        owner_out->len = owner_len0;
        rc = GW_TOOBIG;
        goto out;
    }
    rc = GW_OK;
out:
    gw_buf_free(&s);
    return rc;
}

int gw_jsonrpc_error(gw_buf_t *out, gw_str_t id, int code, const char *message)
{
    int rc = gw_buf_append_lit(out, "{\"jsonrpc\":\"2.0\",\"id\":");
    rc |= id.len ? gw_buf_append_str(out, id) : gw_buf_append_lit(out, "null");
    rc |= gw_buf_appendf(out, ",\"error\":{\"code\":%d,\"message\":", code);
    rc |= gw_json_append_string(out, message, strlen(message));
    rc |= gw_buf_append_lit(out, "}}");
    return rc == GW_OK ? GW_OK : GW_TOOBIG;
}

int gw_jsonrpc_result(gw_buf_t *out, gw_str_t id, gw_str_t result)
{
    int rc = gw_buf_append_lit(out, "{\"jsonrpc\":\"2.0\",\"id\":");
    rc |= id.len ? gw_buf_append_str(out, id) : gw_buf_append_lit(out, "null");
    rc |= gw_buf_append_lit(out, ",\"result\":");
    rc |= gw_buf_append_str(out, result);
    rc |= gw_buf_append_byte(out, '}');
    return rc == GW_OK ? GW_OK : GW_TOOBIG;
}
