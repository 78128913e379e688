/* MCP servers from the canonical {"mcpServers": {...}} JSON (`aigw run --mcp-config FILE` /
 * `--mcp-json JSON`), turned into one MCPRoute at /mcp, as the reference's CLI does. */
#ifndef GW_CONFIG_MCP_JSON_H
#define GW_CONFIG_MCP_JSON_H

#include "config/config.h"

#define GW_MCP_JSON_MAX (1u << 20) /* bytes of JSON accepted */
#define GW_MCP_JSON_ROUTE_NAME "default/mcp-json"

/* Parses json and appends one route (GW_MCP_JSON_ROUTE_NAME, path "/mcp") holding every server
 * of type "", "http", "streamable-http", "streamable_http" or "streamableHttp" (others, such as
 * "sse" and stdio servers, are skipped with a warning, as the reference does). Per server: url
 * (http or https; port from the URL, else 80/443; path from the URL, else "/"), headers (an
 * "Authorization: Bearer X" header becomes the backend's API key; one other header is sent as is;
 * more than one header is refused), includeTools (exact tool names). Server names must be 1..63
 * of [a-z0-9.-] (Kubernetes names, so "__" and "+" can separate prefixes). Fails when cfg already
 * has a route at /mcp. Returns GW_OK, or GW_EINVAL with one line per problem appended to errors
 * (never a header value); cfg is unchanged on failure. Main thread, before the snapshot is
 * published. */
int gw_mcp_json_merge(gw_config_t *cfg, const char *json, size_t len, gw_buf_t *errors);

#endif
