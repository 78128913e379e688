/* Passive health per worker: backends that fail (connect error, reset, 5xx) are ejected for a
 * time that doubles with each consecutive ejection and come back by themselves. Keyed by the
 * backend's name, so the state survives configuration reloads. Only the owning worker touches
 * its table: no locks. */
#ifndef GW_GATEWAY_HEALTH_H
#define GW_GATEWAY_HEALTH_H

#include "config/config.h"

typedef struct gw_health_s gw_health_t;

gw_health_t *gw_health_new(void);
void gw_health_free(gw_health_t *h);
/* now_ms: the loop's clock. */
bool gw_health_available(gw_health_t *h, const char *backend, uint64_t now_ms);
void gw_health_report(gw_health_t *h, const char *backend, const gw_passive_health_t *policy, bool ok,
                      uint64_t now_ms);

#endif
