/* The MCP gateway's Streamable HTTP endpoint: one MCPRoute path served on the main listener,
 * aggregating the route's MCP servers (initialize fan-out, merged lists with "<backend>__" names,
 * routed calls relayed as JSON or SSE event by event). The gateway keeps no per-session state:
 * everything a session needs travels in the sealed Mcp-Session-Id (mcp/session.h). */
#ifndef GW_MCP_PROXY_H
#define GW_MCP_PROXY_H

#include "config/config.h"
#include "gateway/gateway.h"
#include "mcp/oauth.h"

/* Upstream calls get the route timeout; MCPRoute has no timeout field, so this is the default
 * (tools may run for a long time; a client disconnect cancels earlier). */
#define GW_MCP_DEFAULT_TIMEOUT_MS (30ull * 60 * 1000)
/* Fan-out legs (initialize, the lists, logging/setLevel, a notification sent to every backend,
 * DELETE) get this per-backend deadline instead, over all the pages of a list: a backend that
 * misses it is left out exactly like one that failed, so one stuck server does not hold the
 * merged answer for the route timeout. Routed calls keep the route timeout. AIGW_MCP_FANOUT_TIMEOUT_MS
 * or --mcp-fanout-timeout override it (1 ms to 24 h); the route timeout still applies when shorter. */
#define GW_MCP_FANOUT_TIMEOUT_MS 15000
#define GW_MCP_FANOUT_TIMEOUT_MAX_MS (24ull * 3600 * 1000)
/* A session older than this is refused with 404 and the client initializes again. */
#define GW_MCP_SESSION_MAX_AGE_S (24 * 3600)
/* Pages drained from one backend for one list call (nextCursor loops end here). */
#define GW_MCP_MAX_PAGES 64
/* Heartbeat comments on the GET stream (AIGW_MCP_HEARTBEAT_MS overrides, 10..3600000). */
#define GW_MCP_HEARTBEAT_MS 30000
/* A backend's SSE event id carried in the composite Last-Event-ID (longer ones are dropped). */
#define GW_MCP_MAX_EVENT_ID 512
/* A routed POST stream that ends before its answer after an event id is resumed with GET and
 * Last-Event-ID (the 2025-11-25 polling pattern), and a backend's established GET stream that
 * ends is reopened the same way, after the backend's retry: time (this when it gave none, at most
 * the max), at most this many times in a row without a new event (GET: without a message with a new id, or any
 * message from a backend that sends no ids). */
#define GW_MCP_MAX_RESUMES 3
#define GW_MCP_RESUME_DEFAULT_MS 1000
#define GW_MCP_RESUME_MAX_MS 30000
/* A GET stream is reopened no sooner than this, whatever the backend's retry:. */
#define GW_MCP_REOPEN_MIN_MS 100
/* Messages in one 2025-03-26 JSON-RPC batch. */
#define GW_MCP_MAX_BATCH 64
/* Body of one backend answer gathered before merging (lists, initialize). */
#define GW_MCP_MAX_BACKEND_BODY (32u << 20)

/* Process-wide setup on the main thread before any worker serves MCP. seeds_csv: comma-separated
 * session seeds (each >= 16 bytes; the first seals, all open) or NULL for a random per-process
 * seed, in which case a warning says that sessions do not survive a restart nor span replicas
 * (when warn is true, i.e. MCP routes are configured). allowed_origins_csv: extra Origin values
 * accepted besides localhost ones (exact "scheme://host[:port]"), NULL for none. Also reads
 * AIGW_MCP_HEARTBEAT_MS (ignored when out of range) and AIGW_MCP_FANOUT_TIMEOUT_MS (refused when
 * not a whole number of milliseconds from 1 to GW_MCP_FANOUT_TIMEOUT_MAX_MS). Returns GW_OK or
 * GW_EINVAL with a message in *why (static text, never a seed byte). Calling it again replaces
 * the settings; only before workers start. */
int gw_mcp_proxy_setup(const char *seeds_csv, const char *allowed_origins_csv, bool warn, const char **why);

/* Sets the fan-out timeout (--mcp-fanout-timeout: over AIGW_MCP_FANOUT_TIMEOUT_MS, so after
 * gw_mcp_proxy_setup), 1 ms to GW_MCP_FANOUT_TIMEOUT_MAX_MS; GW_EINVAL with *why (static text)
 * otherwise. Only before workers start. gw_mcp_proxy_fanout_timeout: the value in force. */
int gw_mcp_proxy_set_fanout_timeout(uint64_t ms, const char **why);
uint64_t gw_mcp_proxy_fanout_timeout(void);

/* How many session seeds the last gw_mcp_proxy_setup was given (0: it made a random one); for
 * /config_dump, which shows the count and never a seed. */
size_t gw_mcp_proxy_session_seeds(void);
/* The gateway starts draining (SIGTERM): open GET streams end within GW_MCP_STREAM_TICK_MS so
 * connections can close. Any thread. */
void gw_mcp_proxy_begin_drain(void);
#define GW_MCP_STREAM_TICK_MS 250
/* Releases what setup made (end of process). */
void gw_mcp_proxy_shutdown(void);

/* The first MCPRoute of config c whose path is exactly the request's and whose spec.headers
 * matches all hold for it, or NULL. */
const gw_mcp_route_t *gw_mcp_route_for(const gw_config_t *c, const gw_http_req_t *req);

/* Serves one request on route (which must belong to g->config). The handler owns the request
 * from here; req->data holds its state until the response ends. On a route with OAuth or
 * apiKeyAuth the request is first authorized by g->mcp_auth (refused with the authorizer's own
 * 400/401/403/503 answer); sessions are then bound to the verified JWT subject and API-key
 * client, so a session id presented by anyone else is 404. */
void gw_mcp_handle(gw_gateway_t *g, gw_http_req_t *req, const gw_mcp_route_t *route);

/* Serves a well-known OAuth metadata document of route (kind from gw_mcp_auth_well_known_route on
 * g->config): GET and HEAD through g->mcp_auth, a CORS preflight for OPTIONS, 405 otherwise. Owns
 * the request like gw_mcp_handle (gw_mcp_owns is true while the document is being made). */
void gw_mcp_serve_well_known(gw_gateway_t *g, gw_http_req_t *req, const gw_mcp_route_t *route,
                             gw_mcp_well_known_t kind);

/* Whether req->data is MCP state (its first member is an MCP tag: a request being served, or one
 * waiting for its authorization or metadata), for the gateway's on_abort and on_drain dispatch. */
bool gw_mcp_owns(const gw_http_req_t *req);
void gw_mcp_on_abort(gw_http_req_t *req);
void gw_mcp_on_drain(gw_http_req_t *req);

#endif
