/* One JSON access-log line per request on stdout, with the reference's genai_* and mcp_* fields
 * (envoy-ai-gateway autoconfig template) and the usual HTTP fields. Never carries a secret:
 * only the fields below exist, none of them is a header value except user_agent and
 * x_request_id, and the MCP session id is written as a hash only. */
#ifndef GW_OBS_ACCESS_LOG_H
#define GW_OBS_ACCESS_LOG_H

#include "core/buf.h"
#include "core/gw.h"
#include "usage/token_usage.h"

#include <stdint.h>

typedef struct {
    int64_t start_time_us;          /* wall clock, microseconds since the epoch */
    gw_str_t method;
    gw_str_t path;                  /* request path as received (query string included) */
    int response_code;              /* status sent to the client (0 if none was sent) */
    uint64_t bytes_received;        /* request body bytes */
    uint64_t bytes_sent;            /* response body bytes */
    uint64_t duration_ms;           /* request start to last byte */
    int64_t upstream_duration_ms;   /* request sent upstream to last byte, -1 if none */
    gw_str_t user_agent;
    gw_str_t request_id;            /* x-request-id */
    gw_str_t upstream_host;         /* "ip:port" of the upstream actually used, empty if none */
    gw_str_t upstream_cluster;      /* backend name */
    gw_str_t downstream_remote_address; /* "ip:port" */
    gw_str_t model_name;            /* genai_model_name: x-ai-eg-model (model in the request) */
    gw_str_t model_name_override;   /* genai_model_name_override (empty: none) */
    gw_str_t backend_name;          /* genai_backend_name */
    gw_str_t response_model;        /* genai_response_model */
    const gw_token_usage_t *usage;  /* genai_tokens_{input,output,total,cached_input}, NULL: absent */
    gw_str_t termination_details;   /* why the request ended abnormally, e.g. "client_disconnected", "upstream_reset" */
    /* MCP requests only. Each mcp_* key is written only when its field is set (never as null), so
     * the lines of LLM requests stay exactly as they were. */
    gw_str_t mcp_request_id;        /* the JSON-RPC id, raw as parsed (a JSON string with its quotes,
                                       or a number); written as text: "abc" for "abc", "7" for 7 */
    gw_str_t mcp_session_id;        /* the Mcp-Session-Id the client sent (or, for initialize, the one
                                       issued): SECRET, only gw_access_log_session_hash of it is written */
    gw_str_t mcp_method;            /* the JSON-RPC method, as sent */
    gw_str_t mcp_backend;           /* the backend a routed call went to; empty when fanned out to all
                                       or answered by the gateway itself */
} gw_access_log_entry_t;

/* What the log writes for an MCP session id: the first 16 lowercase hex digits (64 bits) of
 * SHA-256 over the id's bytes, NUL-terminated in out. A plain hash, not a keyed one, on purpose:
 * every replica writes the same value for the same session, so lines of one session can be
 * joined across replicas and restarts, and whoever holds an id can find its lines. It is safe
 * because a session id is sealed AES-256-GCM output with a random nonce: nothing about it can be
 * guessed from the hash, and the hash does not resume the session. */
#define GW_ACCESS_LOG_SESSION_HASH_LEN 16
void gw_access_log_session_hash(gw_str_t session_id, char out[GW_ACCESS_LOG_SESSION_HASH_LEN + 1]);

/* Formats the entry as one JSON object line (ends with '\n') into out. Absent string fields are
 * written as null, absent token counts as null, absent mcp_* fields not at all. */
int gw_access_log_format(const gw_access_log_entry_t *e, gw_buf_t *out);
/* Formats and writes to stdout with a single write(2) per line. Disabled when
 * gw_access_log_enabled is false. */
void gw_access_log_write(const gw_access_log_entry_t *e);
/* Same, to any fd, whatever gw_access_log_enabled says (a log file, or a test's pipe). Lines are
 * at most PIPE_BUF bytes (string fields are cut, ending in "..."), and writers in this process
 * are serialized, so lines never interleave even after a partial write. Blocks while fd is full;
 * on a non-blocking fd waits up to 1 s for room, then drops the line. GW_OK or GW_ERROR. */
int gw_access_log_write_fd(int fd, const gw_access_log_entry_t *e);
extern bool gw_access_log_enabled;

#endif
