/* One LLM request's life: body and model, route, backend pick, translation, the upstream
 * exchange with streaming and backpressure, usage, metrics and the access log. */
#ifndef GW_GATEWAY_LLM_REQUEST_H
#define GW_GATEWAY_LLM_REQUEST_H

#include "gateway/gateway.h"
#include "translate/translate.h"

/* Takes over answering req (an LLM endpoint with the right method). */
void gw_llm_request_start(gw_gateway_t *g, gw_http_req_t *req, gw_operation_t op);
void gw_llm_request_abort(gw_http_req_t *req);
void gw_llm_request_drain(gw_http_req_t *req);
/* Frees the request states the worker keeps for reuse (at the end of the worker's loop). */
void gw_llm_request_free_spares(gw_gateway_t *g);

/* The reference's text for a request whose model matches no route. */
#define GW_NO_ROUTE_MESSAGE                                                                                       \
    "No matching route found. It is likely because the model specified in your request is not configured in the " \
    "Gateway."

#endif
