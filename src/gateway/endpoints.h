/* Client endpoints: which paths exist, with which method, and what serves them. */
#ifndef GW_GATEWAY_ENDPOINTS_H
#define GW_GATEWAY_ENDPOINTS_H

#include "core/gw.h"
#include "translate/translate.h"

typedef enum {
    GW_ENDPOINT_NONE = 0,
    GW_ENDPOINT_LLM,    /* proxied: operation says which */
    GW_ENDPOINT_MODELS, /* GET /v1/models, served locally */
} gw_endpoint_kind_t;

typedef struct {
    const char *path;
    const char *method;
    gw_endpoint_kind_t kind;
    gw_operation_t op;
} gw_endpoint_t;

/* The endpoint at this exact path (query string already removed), or NULL. */
const gw_endpoint_t *gw_endpoint_find(gw_str_t path);

#endif
