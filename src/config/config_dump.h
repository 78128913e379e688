/* /config_dump: the active configuration snapshot as JSON, secrets redacted (API keys,
 * credentials and TLS keys are shown as "[redacted]"; their presence is visible, their value
 * never). */
#ifndef GW_CONFIG_CONFIG_DUMP_H
#define GW_CONFIG_CONFIG_DUMP_H

#include "config/config.h"

/* What the MCP gateway runs with besides the snapshot: process-wide settings from the command
 * line and the environment, which the config layer cannot see. Counts only, never a seed. */
typedef struct {
    uint64_t request_timeout_ms; /* upstream calls of every MCPRoute */
    uint64_t fanout_timeout_ms;  /* each backend's part of initialize, the lists, ... (0: not known) */
    uint64_t session_max_age_s;  /* an older Mcp-Session-Id is refused */
    size_t n_session_seeds;      /* --mcp-session-seed / AIGW_MCP_SESSION_SEEDS; 0: one random seed */
} gw_config_dump_mcp_t;

/* Appends c as one JSON document (and a newline) to out: generation, listener, LLM rules with
 * their backends, models, and MCP routes. mcp may be NULL: "mcpSession" and each MCP route's
 * "requestTimeoutMs" and "fanoutTimeoutMs" are then null. Returns GW_OK. */
int gw_config_dump_json(const gw_config_t *c, const gw_config_dump_mcp_t *mcp, gw_buf_t *out);

#endif
