/* JSON-RPC 2.0 envelopes as MCP carries them: classify one message (request, notification,
 * response, error) from raw bytes without building a DOM, and rewrite ids so that messages a
 * backend sends to the client (sampling, elicitation, roots) can be routed back. Pure, no I/O. */
#ifndef GW_MCP_JSONRPC_H
#define GW_MCP_JSONRPC_H

#include "core/buf.h"
#include "core/gw.h"

/* Limits enforced by gw_jsonrpc_parse: the whole message, nesting, and the method name. */
#define GW_JSONRPC_MAX_MESSAGE (16u << 20)
#define GW_JSONRPC_MAX_DEPTH 64
#define GW_JSONRPC_MAX_METHOD 256
#define GW_JSONRPC_MAX_ID 512          /* raw bytes of an id gw_jsonrpc_id_wrap takes */
#define GW_JSONRPC_MAX_OWNER 255       /* owner (backend name) bytes gw_jsonrpc_id_wrap takes */
/* Raw bytes of an id gw_jsonrpc_parse accepts: room for any wrapped id (quotes + owner + "__" +
 * the raw id, each byte escaped at most to two), so the client's answer to a wrapped request
 * always parses. Ids are small keys, not payloads. */
#define GW_JSONRPC_MAX_PARSED_ID (2 + 2 * (GW_JSONRPC_MAX_OWNER + 2 + GW_JSONRPC_MAX_ID))

/* JSON-RPC error codes used by the gateway. */
#define GW_JSONRPC_PARSE_ERROR (-32700)
#define GW_JSONRPC_INVALID_REQUEST (-32600)
#define GW_JSONRPC_METHOD_NOT_FOUND (-32601)
#define GW_JSONRPC_INVALID_PARAMS (-32602)
#define GW_JSONRPC_INTERNAL_ERROR (-32603)
#define GW_JSONRPC_SERVER_ERROR (-32000) /* transport-level problems, as the TS SDK reports them */

typedef enum {
    GW_JSONRPC_REQUEST = 1,  /* method + id */
    GW_JSONRPC_NOTIFICATION, /* method, no id */
    GW_JSONRPC_RESPONSE,     /* id + result */
    GW_JSONRPC_ERROR,        /* id (may be null) + error */
} gw_jsonrpc_kind_t;

/* One parsed message. Every slice points into the parsed bytes, except method, which points
 * into method_buf (unescaped, NUL-terminated). */
typedef struct {
    gw_jsonrpc_kind_t kind;
    gw_str_t id;     /* raw id: a JSON string (with quotes) or number; for errors also null; empty
                        for notifications */
    gw_str_t method; /* requests and notifications */
    gw_str_t params; /* raw object or array; empty when absent */
    gw_str_t result; /* responses */
    gw_str_t error;  /* errors: the raw error object */
    int64_t error_code; /* errors: error.code when it is an integer, else 0 */
    char method_buf[GW_JSONRPC_MAX_METHOD + 1];
} gw_jsonrpc_msg_t;

/* True when the body (after leading whitespace) is a JSON array: a batch. MCP 2025-03-26 allows
 * batches; 2025-06-18 and later forbid them. */
bool gw_jsonrpc_is_batch(gw_str_t body);

/* Splits a batch body (a JSON array) into its members, raw slices into body, in order, without
 * judging them as messages (gw_jsonrpc_parse does, one by one). GW_OK with *n members (0 for
 * "[]"); GW_EINVAL when body is no valid JSON array; GW_TOOBIG past max members, the depth or
 * size limits above. *n is 0 on failure. */
int gw_jsonrpc_batch_split(gw_str_t body, gw_str_t *items, size_t max, size_t *n);

/* Parses and validates exactly one JSON-RPC 2.0 message (strict JSON, "jsonrpc":"2.0", the
 * member combinations of the spec, ids that are strings or numbers, params an object or array).
 * Returns GW_OK; GW_TOOBIG past the limits above; GW_EINVAL for bad JSON (*why = "parse error",
 * so callers can answer -32700) or a bad envelope (*why says what; answer -32600). why may be
 * NULL; *why is static text without any byte of the input. */
int gw_jsonrpc_parse(gw_str_t msg, gw_jsonrpc_msg_t *out, const char **why);

/* Appends a copy of msg whose id is replaced by new_id (raw JSON). msg must have been parsed
 * into m (m->id points into msg and is not empty). GW_OK / GW_EINVAL / GW_TOOBIG (out unchanged). */
int gw_jsonrpc_replace_id(gw_str_t msg, const gw_jsonrpc_msg_t *m, gw_str_t new_id, gw_buf_t *out);

/* Id wrapping for requests a backend sends the client (sampling, elicitation, roots): the wrapped
 * id is the JSON string "<owner>__<raw id>", so the client's answer names the backend that asked
 * and carries the backend's own id, byte for byte. owner: 1..GW_JSONRPC_MAX_OWNER bytes, without
 * "__" and not ending in '_' (MCPRoute backend names are Kubernetes names, which have no '_');
 * raw_id: a JSON string or number of at most GW_JSONRPC_MAX_ID bytes. Appends the wrapped raw id
 * to out. GW_OK / GW_EINVAL / GW_TOOBIG (out unchanged). */
int gw_jsonrpc_id_wrap(gw_str_t owner, gw_str_t raw_id, gw_buf_t *out);

/* Reverses gw_jsonrpc_id_wrap: from a raw id (a JSON string) appends the owner to owner_out and
 * the original raw id to raw_id_out. GW_EINVAL when the id was not made by gw_jsonrpc_id_wrap
 * (not a string, no "__", empty owner, or the rest is not a JSON string or number); the
 * buffers are then left as they were. */
int gw_jsonrpc_id_unwrap(gw_str_t wrapped, gw_buf_t *owner_out, gw_buf_t *raw_id_out);

/* Appends {"jsonrpc":"2.0","id":<id>,"error":{"code":code,"message":"<message>"}}; an empty id
 * becomes null. message is escaped. */
int gw_jsonrpc_error(gw_buf_t *out, gw_str_t id, int code, const char *message);

/* Appends {"jsonrpc":"2.0","id":<id>,"result":<result>}; result is raw JSON. */
int gw_jsonrpc_result(gw_buf_t *out, gw_str_t id, gw_str_t result);

#endif
