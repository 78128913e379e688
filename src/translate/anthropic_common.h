/* Helpers shared by every translator whose backend speaks the Anthropic Messages API (Anthropic,
 * AWSAnthropic, GCPAnthropic): the upstream path, usage and model from bodies and from stream
 * events taken one at a time (independent of SSE or AWS event-stream framing), and error types. */
#ifndef GW_TRANSLATE_ANTHROPIC_COMMON_H
#define GW_TRANSLATE_ANTHROPIC_COMMON_H

#include "core/buf.h"
#include "core/gw.h"
#include "net/http.h"
#include "usage/token_usage.h"

/* Sent as anthropic-version when the client did not send one. */
#define GW_ANTHROPIC_VERSION "2023-06-01"

/* Anthropic's own counters, as the API reports them. input_tokens does NOT include the cache
 * reads and writes (unlike OpenAI's prompt_tokens); gw_anthropic_usage_to_token_usage adds them
 * up so that gw_token_usage_t keeps OpenAI semantics. */
typedef struct {
    uint64_t input_tokens;
    uint64_t cache_read_input_tokens;
    uint64_t cache_creation_input_tokens;
    uint64_t output_tokens;   /* cumulative in a stream: the last value wins */
    uint64_t thinking_tokens; /* output_tokens_details.thinking_tokens, 0 when not reported */
    bool present;             /* a usage object was seen */
} gw_anthropic_usage_t;

/* Copies every counter present in the raw usage object into *au (absent members leave their
 * field as it was, so message_delta can refine message_start); sets present. Counters that are
 * null, negative or not integral are ignored. false (and *au untouched) when usage is not an
 * object. */
bool gw_anthropic_usage_merge(gw_str_t usage, gw_anthropic_usage_t *au);

/* The gateway's record: input = input_tokens + cache_read + cache_creation (OpenAI semantics:
 * prompt tokens include the cached ones), cached_input = cache_read, cache_creation,
 * output = output_tokens, reasoning = thinking_tokens, total = input + output. */
void gw_anthropic_usage_to_token_usage(const gw_anthropic_usage_t *au, gw_token_usage_t *u);

/* A whole non-streaming Messages response: top-level "usage" and "model". *u is reset first
 * (present stays false without a usage object); *model (may be NULL) gets the unescaped model,
 * empty when absent. GW_OK, or GW_EINVAL when body is not a JSON object. Scanned structurally,
 * not validated: odd generated text must not cost the usage record. */
int gw_anthropic_usage_from_body(gw_str_t body, gw_token_usage_t *u, gw_buf_t *model);

typedef enum {
    GW_ANTHROPIC_EV_UNKNOWN = 0,
    GW_ANTHROPIC_EV_MESSAGE_START,
    GW_ANTHROPIC_EV_CONTENT_BLOCK_START,
    GW_ANTHROPIC_EV_CONTENT_BLOCK_DELTA,
    GW_ANTHROPIC_EV_CONTENT_BLOCK_STOP,
    GW_ANTHROPIC_EV_MESSAGE_DELTA,
    GW_ANTHROPIC_EV_MESSAGE_STOP,
    GW_ANTHROPIC_EV_PING,
    GW_ANTHROPIC_EV_ERROR,
} gw_anthropic_event_t;

/* The kind of one stream event: the payload's "type" member when it has one (what AWS
 * event-stream chunks carry), else the SSE event name. */
gw_anthropic_event_t gw_anthropic_event_kind(gw_str_t event_name, gw_str_t data);

/* Usage and model seen so far in one Messages stream. Zero-initialise; nothing to free. */
typedef struct {
    gw_anthropic_usage_t usage;
    bool saw_message_start;
    bool saw_message_stop;
    bool saw_error; /* an "error" event (e.g. overloaded_error) arrived */
} gw_anthropic_stream_obs_t;

/* Consumes one stream event: event_name is the SSE "event:" value (may be empty), data the JSON
 * payload. message_start sets usage from message.usage and the model from message.model;
 * message_delta refines usage with whatever counters it carries (output_tokens is cumulative;
 * input and cache counters, when present, replace message_start's). When the usage record
 * changes, *u (may be NULL) is rewritten from it; *model (may be NULL) is replaced when the event
 * names a non-empty model. Returns the event's kind; GW_ANTHROPIC_EV_UNKNOWN also for a payload
 * that is not a JSON object (nothing changed then). */
gw_anthropic_event_t gw_anthropic_stream_observe(gw_anthropic_stream_obs_t *s, gw_str_t event_name, gw_str_t data,
                                                 gw_token_usage_t *u, gw_buf_t *model);

/* Anthropic's error type for an HTTP status ("rate_limit_error" for 429, "overloaded_error" for
 * 529, "api_error" for other 5xx, ...). Static string. */
const char *gw_anthropic_error_type(int status);

/* Reads an Anthropic error document {"type":"error","error":{"type","message"}} (also the data of
 * a stream "error" event). Appends the unescaped error.type and error.message to the buffers
 * (either may be NULL). true when body is a JSON object with an "error" object; the strings it
 * lacks are left empty. */
bool gw_anthropic_error_parse(gw_str_t body, gw_buf_t *type, gw_buf_t *message);

/* Upstream path for /v1/messages (or /v1/messages/count_tokens) behind the backend's
 * schema_version, which holds the base URL's path prefix (autoconfig: ANTHROPIC_BASE_URL's path;
 * YAML: "v1" when absent). NULL or "" -> "/v1"; a prefix whose last segment is "v1" is used as
 * is ("v1", "proxy/anthropic/v1"); a date-like value ("2023-06-01", an API version rather than a
 * path) is ignored; any other prefix gets "/v1" appended ("anthropic" -> "/anthropic/v1", the
 * SDKs' ANTHROPIC_BASE_URL convention). Replaces *path's content. */
void gw_anthropic_messages_path(const char *schema_version, bool count_tokens, gw_buf_t *path);

/* True when the client's request headers carry anthropic-version (then the gateway forwards it
 * and the translator must not replace it). */
bool gw_anthropic_client_has_version(const gw_http_header_t *headers, size_t n_headers);

#endif
