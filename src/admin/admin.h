/* The admin listener (default port 1064): /health and /ready (200 once every worker serves,
 * 503 while starting or draining), /metrics (Prometheus text summed over the workers). It runs
 * on the main thread's loop, away from the request path. */
#ifndef GW_ADMIN_ADMIN_H
#define GW_ADMIN_ADMIN_H

#include "obs/metrics.h"

#include <uv.h>

typedef struct gw_admin_s gw_admin_t;

typedef struct {
    gw_metrics_t *const *metrics; /* one per worker */
    size_t n_metrics;
    /* Extra text for /config_dump (no secrets); may be NULL. Called on the admin loop. */
    void (*config_dump)(gw_buf_t *out, void *ud);
    void *ud;
} gw_admin_sources_t;

gw_admin_t *gw_admin_start(uv_loop_t *loop, int listen_fd, const gw_admin_sources_t *src);
void gw_admin_set_ready(gw_admin_t *a, bool ready);
void gw_admin_close(gw_admin_t *a);

#endif
