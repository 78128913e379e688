/* The {"mcpServers": {...}} JSON of `aigw run --mcp-config/--mcp-json` as one MCPRoute at /mcp.
 * The route is built with the same ownership rules as YAML routes, so the snapshot frees it. */
#include "config/mcp_json.h"

#include "core/alloc.h"
#include "core/log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* http(s)://host[:port][/path]; the path keeps its query. */
static bool parse_url(const char *url, gw_mcp_backend_t *b)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
        b->tls = false;
    } else if (strncmp(url, "https://", 8) == 0) {
        p = url + 8;
        b->tls = true;
    } else {
        return false;
    }
    const char *host_end, *after;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (host_end == NULL)
            return false;
        b->host = gw_strndup(p + 1, (size_t)(host_end - p - 1));
        after = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/?#");
        b->host = gw_strndup(p, (size_t)(host_end - p));
        after = host_end;
    }
    if (b->host[0] == '\0' || strchr(b->host, '@') != NULL)
        return false;
    b->port = b->tls ? 443 : 80;
    if (*after == ':') {
        after++;
        unsigned long v = 0;
        size_t digits = 0;
        while (after[digits] >= '0' && after[digits] <= '9' && digits < 6)
            v = v * 10 + (unsigned long)(after[digits++] - '0');
        if (digits == 0 || v == 0 || v > 65535)
            return false;
        b->port = (uint16_t)v;
        after += digits;
    }
    if (*after == '#')
        return false;
    if (*after == '\0')
        b->path = gw_strdup("/");
    else if (*after == '/')
        b->path = gw_strndup(after, strcspn(after, "#"));
    else if (*after == '?')
        b->path = gw_strndup("/", 1);
    else
        return false;
    return true;
}

static char *lower_dup(const char *s)
{
    char *d = gw_strdup(s);
    for (char *c = d; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return d;
}

static void free_backend(gw_mcp_backend_t *b)
{
    free(b->name);
    free(b->host);
    free(b->path);
    for (size_t i = 0; i < b->n_include; i++)
        free(b->include[i]);
    free(b->include);
    if (b->api_key != NULL) {
        explicit_bzero(b->api_key, strlen(b->api_key));
        free(b->api_key);
    }
    free(b->api_key_header);
}

static bool parse_server(const cJSON *srv, gw_mcp_backend_t *b, gw_buf_t *errors)
{
    const char *name = srv->string;
    if (!name_ok(name)) {
        gw_buf_appendf(errors, "mcpServers: server name must be 1..63 of [a-z0-9.-]\n");
        return false;
    }
    b->name = gw_strdup(name);
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(srv, "url");
    if (!cJSON_IsString(url) || !parse_url(url->valuestring, b)) {
        gw_buf_appendf(errors, "mcpServers.%s.url: must be an http:// or https:// URL\n", name);
        return false;
    }
    const cJSON *hdrs = cJSON_GetObjectItemCaseSensitive(srv, "headers");
    if (hdrs != NULL && !cJSON_IsNull(hdrs)) {
        if (!cJSON_IsObject(hdrs)) {
            gw_buf_appendf(errors, "mcpServers.%s.headers: must be an object\n", name);
            return false;
        }
        const cJSON *h;
        cJSON_ArrayForEach(h, hdrs)
        {
            if (!cJSON_IsString(h)) {
                gw_buf_appendf(errors, "mcpServers.%s.headers: values must be strings\n", name);
                return false;
            }
            if (b->api_key != NULL) {
                gw_buf_appendf(errors, "mcpServers.%s.headers: at most one header per server is supported\n", name);
                return false;
            }
            char *hn = lower_dup(h->string);
            const char *v = h->valuestring;
            if (strcmp(hn, "authorization") == 0) {
                if (strncasecmp(v, "Bearer ", 7) != 0) {
                    free(hn);
                    gw_buf_appendf(errors, "mcpServers.%s.headers: Authorization must be \"Bearer <token>\"\n",
                                   name);
                    return false;
                }
                v += 7;
            }
            b->api_key_header = hn;
            b->api_key = gw_strdup(v);
            b->api_key_source = GW_MCP_KEY_MCP_SERVERS;
        }
    }
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(srv, "includeTools");
    if (inc != NULL && !cJSON_IsNull(inc)) {
        if (!cJSON_IsArray(inc)) {
            gw_buf_appendf(errors, "mcpServers.%s.includeTools: must be an array of strings\n", name);
            return false;
        }
        int n = cJSON_GetArraySize(inc);
        b->include = gw_calloc(n ? (size_t)n : 1, sizeof(char *));
        const cJSON *t;
        cJSON_ArrayForEach(t, inc)
        {
            if (!cJSON_IsString(t) || t->valuestring[0] == '\0') {
                gw_buf_appendf(errors, "mcpServers.%s.includeTools: must be an array of tool names\n", name);
                return false;
            }
            b->include[b->n_include++] = gw_strdup(t->valuestring);
        }
    }
    return true;
}

int gw_mcp_json_merge(gw_config_t *cfg, const char *json, size_t len, gw_buf_t *errors)
{
    if (len > GW_MCP_JSON_MAX) {
        gw_buf_appendf(errors, "MCP servers JSON: larger than %u bytes\n", GW_MCP_JSON_MAX);
        return GW_EINVAL;
    }
    for (size_t i = 0; i < cfg->n_mcp_routes; i++) {
        if (strcmp(cfg->mcp_routes[i].path, "/mcp") == 0) {
            gw_buf_appendf(errors, "MCP servers JSON: the configuration already has an MCPRoute at /mcp (%s)\n",
                           cfg->mcp_routes[i].name);
            return GW_EINVAL;
        }
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *servers = root ? cJSON_GetObjectItemCaseSensitive(root, "mcpServers") : NULL;
    if (!cJSON_IsObject(servers)) {
        gw_buf_appendf(errors, "MCP servers JSON: expected {\"mcpServers\": {\"name\": {\"url\": ...}}}\n");
        cJSON_Delete(root);
        return GW_EINVAL;
    }
    int n = cJSON_GetArraySize(servers);
    gw_mcp_backend_t *bs = gw_calloc(n ? (size_t)n : 1, sizeof(*bs));
    size_t nb = 0;
    bool ok = true;
    const cJSON *srv;
    cJSON_ArrayForEach(srv, servers)
    {
        if (!cJSON_IsObject(srv)) {
            gw_buf_appendf(errors, "mcpServers: each server must be an object\n");
            ok = false;
            break;
        }
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(srv, "type");
        if (type != NULL && !cJSON_IsNull(type)) {
            const char *t = cJSON_IsString(type) ? type->valuestring : "?";
            if (strcmp(t, "") != 0 && strcmp(t, "http") != 0 && strcmp(t, "streamable-http") != 0 &&
                strcmp(t, "streamable_http") != 0 && strcmp(t, "streamableHttp") != 0) {
                gw_log_warn("mcpServers.%s: type %s is not served over Streamable HTTP; skipped",
                            name_ok(srv->string) ? srv->string : "(invalid name)", t);
                continue;
            }
        }
        if (cJSON_GetObjectItemCaseSensitive(srv, "url") == NULL) {
            gw_log_warn("mcpServers.%s: no url (a stdio server?); skipped",
                        name_ok(srv->string) ? srv->string : "(invalid name)");
            continue;
        }
        for (size_t i = 0; i < nb; i++) {
            if (strcmp(bs[i].name, srv->string) == 0) {
                gw_buf_appendf(errors, "mcpServers.%s: duplicate server name\n", srv->string);
                ok = false;
            }
        }
        if (!ok || !parse_server(srv, &bs[nb], errors)) {
            free_backend(&bs[nb]);
            memset(&bs[nb], 0, sizeof(bs[nb]));
            ok = false;
            break;
        }
        nb++;
    }
    cJSON_Delete(root);
    if (ok && nb == 0) {
        gw_buf_appendf(errors, "MCP servers JSON: no Streamable HTTP server in mcpServers\n");
        ok = false;
    }
    if (!ok) {
        for (size_t i = 0; i < nb; i++)
            free_backend(&bs[i]);
        free(bs);
        return GW_EINVAL;
    }
    cfg->mcp_routes = gw_realloc(cfg->mcp_routes, (cfg->n_mcp_routes + 1) * sizeof(gw_mcp_route_t));
    gw_mcp_route_t *r = &cfg->mcp_routes[cfg->n_mcp_routes++];
    memset(r, 0, sizeof(*r));
    r->name = gw_strdup(GW_MCP_JSON_ROUTE_NAME);
    r->path = gw_strdup("/mcp");
    r->backends = bs;
    r->n_backends = nb;
    return GW_OK;
}
