/* libFuzzer harness for mcp/oauth's parsers: the input is cut at NUL bytes into an Authorization
 * value, a request target, a Cookie value, a Cache-Control value and an issuer metadata document.
 * Every extraction stays inside its input and within its caps; a token is never empty nor holds a
 * space; an accepted document yields an http(s) jwks_uri; forwarding never lets Authorization or a
 * sanitized key through, and a stripped query no longer holds the key parameter. */
#include "mcp/oauth.h"

#include <stdlib.h>

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static bool inside(gw_str_t in, gw_str_t s)
{
    return s.len == 0 || (s.base >= in.base && s.base + s.len <= in.base + in.len);
}

static gw_str_t next_part(gw_str_t *rest)
{
    const char *z = rest->len ? memchr(rest->base, '\0', rest->len) : NULL;
    gw_str_t p = gw_str(rest->base, z ? (size_t)(z - rest->base) : rest->len);
    size_t used = z ? p.len + 1 : p.len;
    *rest = gw_str(rest->base + used, rest->len - used);
    return p;
}

static char *key_headers[] = {"x-api-key"};
static char *key_params[] = {"api_key"};
static char *key_cookies[] = {"aigw_key"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_str_t rest = gw_str((const char *)data, size);
    gw_str_t authz = next_part(&rest), target = next_part(&rest), cookie = next_part(&rest);
    gw_str_t cc = next_part(&rest), doc = rest;

    /* Bearer extraction. */
    gw_http_header_t h[4] = {
        {GW_STR("Authorization"), authz},
        {GW_STR("Cookie"), cookie},
        {GW_STR("X-Api-Key"), authz},
        {GW_STR("X-Client-Id"), target},
    };
    gw_str_t tok = GW_STR_NULL;
    int rc = gw_mcp_auth_bearer(h, 1, &tok);
    CHECK(rc == GW_OK || rc == GW_DONE || rc == GW_EINVAL);
    if (rc == GW_OK) {
        CHECK(tok.len > 0 && inside(authz, tok));
        CHECK(memchr(tok.base, ' ', tok.len) == NULL && memchr(tok.base, '\t', tok.len) == NULL);
    }

    /* Query parameter and cookie. */
    gw_buf_t v;
    gw_buf_init(&v, 64);
    rc = gw_mcp_auth_query_param(target, GW_STR("api_key"), &v);
    CHECK(rc == GW_OK || rc == GW_DONE || rc == GW_EINVAL || rc == GW_TOOBIG);
    CHECK(v.len <= 64 && (rc == GW_OK || v.len == 0));
    gw_buf_free(&v);
    gw_str_t cv;
    if (gw_mcp_auth_cookie(cookie, GW_STR("aigw_key"), &cv) == GW_OK)
        CHECK(inside(cookie, cv));

    /* Cache-Control. */
    uint64_t ttl = gw_mcp_auth_cache_ttl(cc, 300000, 30000);
    CHECK(ttl >= 30000 && ttl <= GW_MCP_AUTH_MAX_TTL_MS);

    /* Issuer metadata. */
    gw_buf_t uri;
    gw_buf_init(&uri, GW_BUF_UNLIMITED);
    rc = gw_mcp_auth_parse_server_metadata(doc, GW_STR("https://idp.example.com/realms/x"), &uri);
    CHECK(rc == GW_OK || rc == GW_DONE || rc == GW_EINVAL || rc == GW_TOOBIG);
    if (rc == GW_OK)
        CHECK((uri.len > 7 && strncasecmp(uri.data, "http://", 7) == 0) ||
              (uri.len > 8 && strncasecmp(uri.data, "https://", 8) == 0));
    else
        CHECK(uri.len == 0);
    gw_buf_free(&uri);

    /* Forwarding with a sanitizing apiKeyAuth. */
    gw_mcp_api_key_auth_t k = {
        .headers = key_headers,
        .n_headers = 1,
        .params = key_params,
        .n_params = 1,
        .cookies = key_cookies,
        .n_cookies = 1,
        .forward_client_id_header = "x-client-id",
        .sanitize = true,
    };
    gw_mcp_route_t route = {.name = "fuzz/route", .path = "/mcp", .api_key_auth = &k};
    gw_http_header_t out[8];
    size_t n = 0;
    gw_buf_t st;
    gw_buf_init(&st, GW_BUF_UNLIMITED);
    CHECK(gw_mcp_auth_forward_headers(&route, h, 4, GW_STR("client"), out, 8, &n, &st) == GW_OK);
    for (size_t i = 0; i < n; i++) {
        CHECK(!gw_str_case_eq_lit(out[i].name, "authorization") && !gw_str_case_eq_lit(out[i].name, "x-api-key"));
        if (gw_str_case_eq_lit(out[i].name, "cookie"))
            CHECK(gw_mcp_auth_cookie(out[i].value, GW_STR("aigw_key"), &cv) == GW_DONE);
        if (gw_str_case_eq_lit(out[i].name, "x-client-id"))
            CHECK(gw_str_eq_lit(out[i].value, "client"));
    }
    gw_buf_free(&st);
    gw_buf_t q;
    gw_buf_init(&q, GW_BUF_UNLIMITED);
    CHECK(gw_mcp_auth_strip_query(&route, target, &q) == GW_OK);
    gw_buf_t again;
    gw_buf_init(&again, 1 << 20);
    rc = gw_mcp_auth_query_param(gw_buf_str(&q), GW_STR("api_key"), &again);
    CHECK(rc == GW_DONE);
    gw_buf_free(&again);
    gw_buf_free(&q);
    return 0;
}
