/* Workers: one thread per core, each with its own libuv loop, its own SO_REUSEPORT listening
 * socket, upstream pool, metrics and configuration reference. The main thread talks to a worker
 * only through atomics and a uv_async wake-up, so nothing on the request path is locked. */
#ifndef GW_GATEWAY_WORKER_H
#define GW_GATEWAY_WORKER_H

#include "gateway/gateway.h"
#include "net/http_server.h"

#include <stdatomic.h>

typedef struct gw_worker_s gw_worker_t;

/* Starts a worker thread serving on listen_fd (ownership passes to the worker). cfg is
 * referenced. The metrics object exists from this call on (for the admin scrape). */
gw_worker_t *gw_worker_start(int id, int listen_fd, gw_config_t *cfg, const gw_http_limits_t *limits,
                             const gw_gateway_opts_t *opts);
/* Drain: stop accepting, finish in-flight requests, then the thread ends by itself. */
void gw_worker_stop_accepting(gw_worker_t *w);
/* End of the grace period: close every connection now. */
void gw_worker_close_all(gw_worker_t *w);
/* Publishes a new configuration snapshot (referenced here; the worker drops its old one). */
void gw_worker_set_config(gw_worker_t *w, gw_config_t *cfg);
/* Publishes a new listener TLS context for new connections (referenced here). */
void gw_worker_set_tls(gw_worker_t *w, struct gw_tls_ctx_s *tls);
bool gw_worker_done(const gw_worker_t *w);
/* Joins the thread and frees the worker; the metrics object stays valid until then. */
void gw_worker_join(gw_worker_t *w);
gw_metrics_t *gw_worker_metrics(gw_worker_t *w);

#endif
