/* The endpoint table (exact paths, as the reference matches them). */
#include "gateway/endpoints.h"

static const gw_endpoint_t endpoints[] = {
    {"/v1/chat/completions", "POST", GW_ENDPOINT_LLM, GW_OP_CHAT},
    {"/v1/completions", "POST", GW_ENDPOINT_LLM, GW_OP_COMPLETION},
    {"/v1/embeddings", "POST", GW_ENDPOINT_LLM, GW_OP_EMBEDDINGS},
    {"/v1/images/generations", "POST", GW_ENDPOINT_LLM, GW_OP_IMAGE_GENERATION},
    {"/v1/models", "GET", GW_ENDPOINT_MODELS, GW_OP_CHAT},
    {"/anthropic/v1/messages", "POST", GW_ENDPOINT_LLM, GW_OP_MESSAGES},
    {"/anthropic/v1/messages/count_tokens", "POST", GW_ENDPOINT_LLM, GW_OP_COUNT_TOKENS},
};

const gw_endpoint_t *gw_endpoint_find(gw_str_t path)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(endpoints); i++)
        if (gw_str_eq(path, gw_str_c(endpoints[i].path)))
            return &endpoints[i];
    return NULL;
}
