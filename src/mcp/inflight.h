/* Which backend runs a client's MCP request while it is in flight, so that the client's
 * notifications/cancelled (which names only the request id) reaches that backend alone. One
 * process-wide bounded table: the cancel may come in on another worker than the call. */
#ifndef GW_MCP_INFLIGHT_H
#define GW_MCP_INFLIGHT_H

#include "core/gw.h"

/* Slots of the table (a power of two); it takes entries up to three quarters of them. */
#define GW_MCP_INFLIGHT_SLOTS 4096
#define GW_MCP_INFLIGHT_MAX (GW_MCP_INFLIGHT_SLOTS / 4 * 3)
/* Backend names are Kubernetes names; longer ones are not recorded. */
#define GW_MCP_INFLIGHT_NAME_MAX 63

/* SHA-256 of route, session id and raw request id: the table keeps no session id (a secret). */
typedef struct {
    unsigned char b[32];
} gw_mcp_inflight_key_t;

void gw_mcp_inflight_key(gw_str_t route, gw_str_t session_id, gw_str_t request_id, gw_mcp_inflight_key_t *out);

/* Records that the request of key k runs on backend. false (nothing recorded) when the table is
 * full, the key is already there (a client reusing an id in flight) or the name is too long:
 * the cancel then goes to every backend of the session, as it would without the table. */
bool gw_mcp_inflight_add(const gw_mcp_inflight_key_t *k, gw_str_t backend);
/* Forgets k (when the request ends); nothing when it is not there. */
void gw_mcp_inflight_remove(const gw_mcp_inflight_key_t *k);
/* Copies the backend of k into name (NUL-terminated, GW_MCP_INFLIGHT_NAME_MAX + 1 bytes);
 * false when k is not in flight here (finished, or served by another process). */
bool gw_mcp_inflight_find(const gw_mcp_inflight_key_t *k, char name[GW_MCP_INFLIGHT_NAME_MAX + 1]);
/* Entries recorded (for tests). */
size_t gw_mcp_inflight_count(void);

#endif
