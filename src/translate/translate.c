/* Translator registry: picks the implementation for a (client operation, backend schema) pair. */
#include "translate/translate.h"

#include "translate/anthropic_anthropic.h"
#include "translate/openai_anthropic.h"
#include "translate/openai_openai.h"
#include "translate/openai_bedrock.h"
#include "translate/anthropic_awsanthropic.h"

#include <stdlib.h>
#include <string.h>

const char *gw_operation_name(gw_operation_t op)
{
    switch (op) {
    case GW_OP_CHAT: return "chat";
    case GW_OP_COMPLETION: return "completion";
    case GW_OP_EMBEDDINGS: return "embeddings";
    case GW_OP_IMAGE_GENERATION: return "image_generation";
    case GW_OP_MESSAGES: return "messages";
    case GW_OP_COUNT_TOKENS: return "count_tokens";
    }
    return "unknown";
}

gw_client_api_t gw_operation_client_api(gw_operation_t op)
{
    return op == GW_OP_MESSAGES || op == GW_OP_COUNT_TOKENS ? GW_CLIENT_API_ANTHROPIC : GW_CLIENT_API_OPENAI;
}

int gw_translate_output_add_header(gw_translate_output_t *o, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (o->n_headers == GW_TRANSLATE_MAX_HEADERS || nl >= sizeof(o->headers[0].name) ||
        vl >= sizeof(o->headers[0].value))
        return GW_TOOBIG;
    memcpy(o->headers[o->n_headers].name, name, nl + 1);
    memcpy(o->headers[o->n_headers].value, value, vl + 1);
    o->n_headers++;
    return GW_OK;
}

gw_translator_t *gw_translator_new(gw_operation_t op, gw_schema_t schema)
{
    switch (schema) {
    case GW_SCHEMA_OPENAI:
        if (op == GW_OP_MESSAGES || op == GW_OP_COUNT_TOKENS)
            return NULL;
        return gw_openai_openai_new(op);
    case GW_SCHEMA_AZURE_OPENAI:
        /* passthrough with the deployment in the path (openai_openai.c) */
        if (op == GW_OP_MESSAGES || op == GW_OP_COUNT_TOKENS)
            return NULL;
        return gw_openai_openai_new(op);
    case GW_SCHEMA_ANTHROPIC:
        if (op == GW_OP_MESSAGES || op == GW_OP_COUNT_TOKENS)
            return gw_anthropic_anthropic_new(op);
        return op == GW_OP_CHAT ? gw_openai_anthropic_new() : NULL;
    case GW_SCHEMA_AWS_BEDROCK:
        return gw_openai_bedrock_new(op);
    case GW_SCHEMA_AWS_ANTHROPIC:
        return gw_anthropic_awsanthropic_new(op);
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
    o->n_headers = 0;
    o->content_type[0] = '\0';
}

void gw_translate_output_free(gw_translate_output_t *o)
{
    gw_buf_free(&o->path);
    gw_buf_free(&o->body);
}
