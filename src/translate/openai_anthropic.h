/* OpenAI chat completions client API -> Anthropic Messages backend: the request (messages, images
 * and PDFs, tools, tool_choice, reasoning, cache_control, ...) becomes a Messages request, and
 * responses and streams become chat.completion / chat.completion.chunk with usage. How thinking
 * looks to OpenAI clients is in docs/reasoning.md; mapping choices are in docs/translation-
 * differences.md. The conversions are exported so that other Messages-API backends (Claude on
 * Vertex AI or Bedrock), which differ only in path, auth and a few body fields, can reuse them. */
#ifndef GW_TRANSLATE_OPENAI_ANTHROPIC_H
#define GW_TRANSLATE_OPENAI_ANTHROPIC_H

#include "translate/translate.h"

/* max_tokens when the client sets neither max_tokens nor max_completion_tokens (Anthropic
 * requires it). 4096 is the output limit of the smallest Claude models, so it is always
 * accepted; a thinking budget is added on top so the answer keeps room after the reasoning. */
#define GW_ANTHROPIC_DEFAULT_MAX_TOKENS 4096

/* Thinking budgets for reasoning_effort (Anthropic's minimum budget is 1024). */
#define GW_ANTHROPIC_BUDGET_MINIMAL 1024
#define GW_ANTHROPIC_BUDGET_LOW 2048
#define GW_ANTHROPIC_BUDGET_MEDIUM 8192
#define GW_ANTHROPIC_BUDGET_HIGH 16384
#define GW_ANTHROPIC_BUDGET_XHIGH 32768

gw_translator_t *gw_openai_anthropic_new(void);

typedef struct {
    const char *model;             /* the "model" member; NULL: none (the backend takes it from the path) */
    const char *anthropic_version; /* an "anthropic_version" member; NULL: none (sent as a header instead) */
} gw_openai_anthropic_opts_t;

typedef struct {
    bool stream;        /* the client asked for a stream ("stream": true is in the Messages body) */
    bool include_usage; /* stream_options.include_usage: a final usage chunk is wanted */
} gw_openai_anthropic_info_t;

/* Translates a validated OpenAI chat completions body into a Messages body appended to out.
 * GW_OK, or GW_EINVAL with a static message in *err (unsupported content, n > 1, bad arguments).
 * Numbers and schemas the client wrote are copied as raw JSON, never through a double. */
int gw_openai_anthropic_request_body(gw_str_t body, const gw_openai_anthropic_opts_t *opts, gw_buf_t *out,
                                     gw_openai_anthropic_info_t *info, const char **err);

/* Response conversion state: one per response. */
typedef struct gw_openai_anthropic_resp_s gw_openai_anthropic_resp_t;

/* fallback_model names the response when the provider does not (NULL: ""); created is the
 * "created" of every chunk / the completion. Free with gw_openai_anthropic_resp_free. */
gw_openai_anthropic_resp_t *gw_openai_anthropic_resp_new(const char *fallback_model, int64_t created,
                                                         bool include_usage);
void gw_openai_anthropic_resp_free(gw_openai_anthropic_resp_t *r);

/* One Messages stream event (SSE event name, may be empty, and JSON payload), rewritten as
 * OpenAI "data: <chunk>\n\n" events appended to out; message_stop adds the usage chunk (when
 * include_usage) and "data: [DONE]". An upstream "error" event becomes
 * "event: error\ndata: {\"error\":{...}}" with no [DONE], and the response counts as failed.
 * Events after the end are ignored. */
void gw_openai_anthropic_resp_event(gw_openai_anthropic_resp_t *r, gw_str_t event_name, gw_str_t data, gw_buf_t *out);

/* The upstream stream ended (or broke: reason says why, NULL for a clean end). A stream that ends
 * without message_stop or an error gets an error event: never a clean stop that is not one. */
void gw_openai_anthropic_resp_end(gw_openai_anthropic_resp_t *r, const char *reason, gw_buf_t *out);

/* A whole non-streaming Messages response body rewritten as a chat.completion JSON appended to
 * out. A body that is not a Messages object (or is an Anthropic error) becomes an OpenAI error
 * body and the response counts as failed. */
void gw_openai_anthropic_resp_body(gw_openai_anthropic_resp_t *r, gw_str_t body, gw_buf_t *out);

/* Usage (OpenAI semantics, see anthropic_common.h), response model (unescaped, empty when the
 * provider named none) and failure so far. Pointers valid until the next call on r. */
const gw_token_usage_t *gw_openai_anthropic_resp_usage(const gw_openai_anthropic_resp_t *r);
gw_str_t gw_openai_anthropic_resp_model(const gw_openai_anthropic_resp_t *r);
bool gw_openai_anthropic_resp_failed(const gw_openai_anthropic_resp_t *r);

/* An upstream non-2xx body (decoded) in the OpenAI error format:
 * {"error":{"message","type","param":null,"code":"<status>"}}, keeping Anthropic's error type
 * (or the type Anthropic gives that status, for a body that is not an Anthropic error). */
void gw_openai_anthropic_error_body(int status, gw_str_t body, gw_buf_t *out);

#endif
