/* OpenAI chat completions -> Amazon Bedrock Converse / ConverseStream ("AWSBedrock" schema).
 * The request becomes a Converse body (system, messages with images, documents, tool use and
 * results, reasoning blocks, inference config, tools, additionalModelRequestFields, cache
 * points) sent to /model/<id>/converse or /converse-stream; the Converse response or event
 * stream comes back as a chat.completion or as chat.completion.chunk SSE. Reasoning reaches the
 * client as message/delta.reasoning_content (text) plus thinking_blocks (signed blocks to send
 * back on the next turn). Mapping details and where aigw differs from the reference are in
 * docs/translation-differences.md. */
#ifndef GW_TRANSLATE_OPENAI_BEDROCK_H
#define GW_TRANSLATE_OPENAI_BEDROCK_H

#include "translate/translate.h"

/* GW_OP_CHAT only; NULL for any other operation. */
gw_translator_t *gw_openai_bedrock_new(gw_operation_t op);

#endif
