/* Anthropic Messages client API -> Claude on Amazon Bedrock through InvokeModel /
 * InvokeModelWithResponseStream ("AWSAnthropic" schema). The body keeps the Messages format:
 * "model" and "stream" leave it (the model goes into the path, streaming is chosen by the path)
 * and "anthropic_version" is set from the backend's schema version (default
 * bedrock-2023-05-31). A JSON response passes through unchanged; the event stream, whose chunks
 * wrap base64 Anthropic events, is unwrapped back into Anthropic SSE. */
#ifndef GW_TRANSLATE_ANTHROPIC_AWSANTHROPIC_H
#define GW_TRANSLATE_ANTHROPIC_AWSANTHROPIC_H

#include "translate/translate.h"

/* GW_OP_MESSAGES only; NULL for any other operation. */
gw_translator_t *gw_anthropic_awsanthropic_new(gw_operation_t op);

#endif
