/* Anthropic client API (/anthropic/v1/messages and .../count_tokens) -> Anthropic backend:
 * passthrough. The body goes upstream byte for byte (a model override splices only the model
 * value), anthropic-version defaults to 2023-06-01, and the response comes back unchanged while
 * usage (message_start and message_delta together) and the model are read on the side. */
#ifndef GW_TRANSLATE_ANTHROPIC_ANTHROPIC_H
#define GW_TRANSLATE_ANTHROPIC_ANTHROPIC_H

#include "translate/translate.h"

/* op: GW_OP_MESSAGES or GW_OP_COUNT_TOKENS (NULL for any other). */
gw_translator_t *gw_anthropic_anthropic_new(gw_operation_t op);

#endif
