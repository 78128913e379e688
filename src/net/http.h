/* HTTP vocabulary shared by the server and the upstream client. */
#ifndef GW_NET_HTTP_H
#define GW_NET_HTTP_H

#include "core/gw.h"

typedef struct {
    gw_str_t name;
    gw_str_t value;
} gw_http_header_t;

#define GW_HTTP_MAX_HEADERS 128

/* Reason phrase for a status code ("OK", "Not Found", ...; "Unknown" otherwise). */
const char *gw_http_reason(int status);

/* Finds the first header with this name (case-insensitive); GW_STR_NULL when absent. */
gw_str_t gw_http_header_find(const gw_http_header_t *h, size_t n, gw_str_t name);

#endif
