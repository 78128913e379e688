/* The token usage record every response fills in, whatever the provider. Types only, so that
 * translate/, obs/ and usage/ can all include it without forming cycles. */
#ifndef GW_USAGE_TOKEN_USAGE_H
#define GW_USAGE_TOKEN_USAGE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t input;           /* prompt / input tokens (including cached ones, OpenAI semantics) */
    uint64_t cached_input;    /* of input: read from the provider's prompt cache */
    uint64_t cache_creation;  /* of input: written to the provider's prompt cache (Anthropic, Bedrock) */
    uint64_t output;          /* completion / output tokens (including reasoning tokens) */
    uint64_t reasoning;       /* of output: reasoning tokens */
    uint64_t total;           /* as reported, or input + output when the provider gives none */
    bool present;             /* the response carried a usage object at all */
} gw_token_usage_t;

#endif
