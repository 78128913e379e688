/* Bedrock Runtime helpers shared by openai_bedrock and anthropic_awsanthropic (bedrock_common.h).
 * The path encoder is local on purpose: the path is built before signing and must be byte for
 * byte what goes on the wire, whatever the signer does with it afterwards. */
#include "translate/bedrock_common.h"

#include "core/json.h"

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

int gw_bedrock_model_path(gw_buf_t *path, gw_str_t model, const char *action)
{
    static const char hex[] = "0123456789ABCDEF";
    if (model.len == 0)
        return GW_EINVAL;
    size_t start = path->len;
    int rc = gw_buf_append_lit(path, "/model/");
    for (size_t i = 0; rc == GW_OK && i < model.len; i++) {
        unsigned char c = (unsigned char)model.base[i];
        if (unreserved(c)) {
            rc = gw_buf_append_byte(path, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = gw_buf_append(path, esc, sizeof(esc));
        }
    }
    if (rc == GW_OK)
        rc = gw_buf_append_byte(path, '/');
    if (rc == GW_OK)
        rc = gw_buf_append(path, action, strlen(action));
    if (rc != GW_OK)
        path->len = start;
    return rc;
}

gw_str_t gw_bedrock_error_type(const gw_http_header_t *headers, size_t n_headers)
{
    for (size_t i = 0; i < n_headers; i++) {
        if (!gw_str_case_eq_lit(headers[i].name, "x-amzn-errortype"))
            continue;
        gw_str_t v = headers[i].value;
        const char *colon = v.len ? memchr(v.base, ':', v.len) : NULL;
        if (colon)
            v.len = (size_t)(colon - v.base);
        while (v.len && (v.base[0] == ' ' || v.base[0] == '\t')) {
            v.base++;
            v.len--;
        }
        while (v.len && (v.base[v.len - 1] == ' ' || v.base[v.len - 1] == '\t'))
            v.len--;
        return v;
    }
    return GW_STR_NULL;
}

bool gw_bedrock_error_message(gw_str_t body, gw_buf_t *out)
{
    gw_str_t v;
    if (gw_json_type(body) != GW_JSON_OBJECT)
        return false;
    if ((gw_json_object_get(body, GW_STR("message"), &v) == GW_OK && gw_json_type(v) == GW_JSON_STRING) ||
        (gw_json_object_get(body, GW_STR("Message"), &v) == GW_OK && gw_json_type(v) == GW_JSON_STRING))
        return gw_json_string_unescape(v, out) == GW_OK;
    return false;
}

bool gw_bedrock_frame_error(const gw_es_message_t *m, gw_str_t *type, gw_buf_t *message)
{
    gw_str_t mt = gw_es_header_string(m, ":message-type");
    if (gw_str_eq_lit(mt, "exception")) {
        *type = gw_es_header_string(m, ":exception-type");
        if (type->len == 0)
            *type = GW_STR("exception");
        if (!gw_bedrock_error_message(m->payload, message)) {
            /* Not JSON: keep a bounded copy of the text so the client still learns something. */
            gw_buf_append(message, m->payload.base, GW_MIN(m->payload.len, (size_t)4096));
        }
        return true;
    }
    if (gw_str_eq_lit(mt, "error")) {
        *type = gw_es_header_string(m, ":error-code");
        if (type->len == 0)
            *type = GW_STR("error");
        gw_buf_append_str(message, gw_es_header_string(m, ":error-message"));
        return true;
    }
    return false;
}
