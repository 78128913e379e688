/* Translator registry: picks the implementation for a (client operation, backend schema) pair. */
#include "translate/translate.h"

#include "translate/openai_openai.h"

#include <stdlib.h>

const char *gw_operation_name(gw_operation_t op)
{
    switch (op) {
    case GW_OP_CHAT: return "chat";
    case GW_OP_COMPLETION: return "completion";
    case GW_OP_EMBEDDINGS: return "embeddings";
    case GW_OP_IMAGE_GENERATION: return "image_generation";
    case GW_OP_MESSAGES: return "messages";
    }
    return "unknown";
}

gw_translator_t *gw_translator_new(gw_operation_t op, gw_schema_t schema)
{
    switch (schema) {
    case GW_SCHEMA_OPENAI:
        if (op == GW_OP_MESSAGES)
            return NULL;
        return gw_openai_openai_new(op);
    default:
        return NULL;
    }
}

void gw_translator_free(gw_translator_t *t)
{
    if (t)
        t->vt->destroy(t);
}

void gw_translate_output_init(gw_translate_output_t *o)
{
    gw_buf_init(&o->path, 8192);
    gw_buf_init(&o->body, GW_BUF_UNLIMITED);
    o->body_changed = false;
}

void gw_translate_output_free(gw_translate_output_t *o)
{
    gw_buf_free(&o->path);
    gw_buf_free(&o->body);
}
