/* OpenAI client API -> OpenAI-schema backend (OpenAI, vLLM, Ollama, any compatible server):
 * passthrough. The body goes upstream byte for byte (a model override splices only the model
 * value), the response comes back unchanged, and usage is read on the side. */
#ifndef GW_TRANSLATE_OPENAI_OPENAI_H
#define GW_TRANSLATE_OPENAI_OPENAI_H

#include "translate/translate.h"

gw_translator_t *gw_openai_openai_new(gw_operation_t op);

#endif
