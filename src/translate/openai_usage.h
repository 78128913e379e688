/* Token usage and response model from OpenAI-schema responses: non-streaming bodies of every
 * endpoint (chat, completions, embeddings, images), and streamed chat/completion chunks.
 * Pure functions over bytes; the caller owns every buffer. */
#ifndef GW_TRANSLATE_OPENAI_USAGE_H
#define GW_TRANSLATE_OPENAI_USAGE_H

#include "core/buf.h"
#include "core/gw.h"
#include "usage/token_usage.h"

/* Reads a whole non-streaming JSON response body.
 *   chat/completions: usage.prompt_tokens, .completion_tokens, .total_tokens,
 *     .prompt_tokens_details.cached_tokens, .completion_tokens_details.reasoning_tokens
 *   embeddings: usage.prompt_tokens -> input, total_tokens
 *   images (gpt-image-1): usage.input_tokens, .output_tokens, .total_tokens,
 *     .input_tokens_details.cached_tokens (also .output_tokens_details.reasoning_tokens)
 *   prompt_tokens_details.cache_write_tokens (gpt-5.x chat) -> cache_creation
 * Sets u->present when a usage object exists; total defaults to input + output when absent.
 * Counters that are null, negative or not integral count as 0. Bodies are scanned for structure,
 * not validated (usage must survive odd text content); duplicate members: the last one wins.
 * Copies the top-level "model" string (unescaped) into *model when non-NULL (left empty when
 * absent or ""). Returns GW_OK, or GW_EINVAL when body is not a JSON object. */
int gw_openai_usage_from_body(gw_str_t body, gw_token_usage_t *u, gw_buf_t *model);

/* Reads one stream chunk: the payload of one SSE "data:" event (not "[DONE]"). When the chunk
 * carries a non-null usage object, *u is overwritten with it (the final usage chunk of
 * stream_options.include_usage; some servers send cumulative usage on every chunk, the last one
 * wins). Copies "model" into *model (replacing it) when non-NULL and the chunk has a non-empty
 * one (Azure's first chunk carries "model": ""). GW_OK, or GW_EINVAL when the payload is not a
 * JSON object (*u and *model then untouched). */
int gw_openai_usage_from_chunk(gw_str_t data, gw_token_usage_t *u, gw_buf_t *model);

#endif
