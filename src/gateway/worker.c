/* Worker threads (see worker.h). Commands from the main thread are bits in an atomic word plus
 * a uv_async_send; the worker applies them on its own loop. */
#include "gateway/worker.h"

#include "core/alloc.h"
#include "core/log.h"
#include "net/tls.h"
#include "gateway/health.h"
#include "gateway/llm_request.h"
#include "mcp/oauth.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { CMD_STOP_ACCEPTING = 1, CMD_CLOSE_ALL = 2, CMD_NEW_CONFIG = 4, CMD_NEW_TLS = 8 };

struct gw_worker_s {
    int id;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t drain_timer;
    bool draining;
    int listen_fd;
    gw_http_limits_t limits;
    gw_gateway_opts_t opts;
    gw_gateway_t gw;
    gw_http_server_t *http;
    atomic_int commands;
    _Atomic(gw_config_t *) pending_config;
    _Atomic(gw_tls_ctx_t *) pending_tls;
    atomic_bool done;
    uv_sem_t started;
    /* Guards the async handle's lifetime against a late command from the main thread (never
     * taken on the request path). */
    uv_mutex_t async_lock;
    bool async_closed;
};

static void on_conn_open(void *ud)
{
    gw_gateway_t *g = ud;
    gw_metrics_gauge_add(g->metrics, GW_GAUGE_DOWNSTREAM_CONNECTIONS, 1);
    gw_metrics_counter_add(g->metrics, GW_COUNTER_DOWNSTREAM_CONNECTIONS_TOTAL, 1);
}

static void on_conn_close(void *ud)
{
    gw_gateway_t *g = ud;
    gw_metrics_gauge_add(g->metrics, GW_GAUGE_DOWNSTREAM_CONNECTIONS, -1);
}

static void on_up_open(void *ud)
{
    gw_gateway_t *g = ud;
    gw_metrics_gauge_add(g->metrics, GW_GAUGE_UPSTREAM_CONNECTIONS, 1);
    gw_metrics_counter_add(g->metrics, GW_COUNTER_UPSTREAM_CONNECTIONS_TOTAL, 1);
}

static void on_up_close(void *ud)
{
    gw_gateway_t *g = ud;
    gw_metrics_gauge_add(g->metrics, GW_GAUGE_UPSTREAM_CONNECTIONS, -1);
}

static void shutdown_worker(gw_worker_t *w)
{
    uv_timer_stop(&w->drain_timer);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    uv_mutex_lock(&w->async_lock);
    w->async_closed = true;
    uv_close((uv_handle_t *)&w->async, NULL);
    uv_mutex_unlock(&w->async_lock);
    gw_http_server_free(w->http);
    w->http = NULL;
    /* Before the pool: the authorizer cancels its JWKS and discovery fetches on it. Its timer
     * handle closes on this loop, which runs on until every handle is closed. */
    gw_mcp_auth_free(w->gw.mcp_auth);
    w->gw.mcp_auth = NULL;
    gw_upstream_pool_close(w->gw.upstream);
    w->gw.upstream = NULL;
}

static void on_drain_timer(uv_timer_t *t)
{
    gw_worker_t *w = t->data;
    if (w->http && gw_http_server_connections(w->http) == 0 && w->gw.in_flight == 0)
        shutdown_worker(w);
}

static void on_async(uv_async_t *a)
{
    gw_worker_t *w = a->data;
    int cmds = atomic_exchange(&w->commands, 0);
    if (cmds & CMD_NEW_CONFIG) {
        gw_config_t *next = atomic_exchange(&w->pending_config, NULL);
        if (next) {
            gw_config_unref(w->gw.config);
            w->gw.config = next;
        }
    }
    if (cmds & CMD_NEW_TLS) {
        gw_tls_ctx_t *t = atomic_exchange(&w->pending_tls, NULL);
        if (t && w->http)
            gw_http_server_set_tls(w->http, t);
        if (t)
            gw_tls_ctx_free(t);
    }
    if ((cmds & CMD_STOP_ACCEPTING) && !w->draining && w->http) {
        w->draining = true;
        gw_http_server_stop_accepting(w->http);
        uv_timer_start(&w->drain_timer, on_drain_timer, 0, 20);
    }
    if ((cmds & CMD_CLOSE_ALL) && w->http)
        gw_http_server_close_all(w->http);
}

static void worker_main(void *arg)
{
    gw_worker_t *w = arg;
    gw_http_handler_t handler = {
        .on_request = gw_gateway_on_request,
        .on_abort = gw_gateway_on_abort,
        .on_drain = gw_gateway_on_drain,
        .on_response_end = gw_gateway_on_response_end,
        .on_conn_open = on_conn_open,
        .on_conn_close = on_conn_close,
        .format_error = gw_gateway_format_error,
        .ud = &w->gw,
    };
    gw_upstream_pool_hooks_t hooks = {on_up_open, on_up_close, &w->gw};
    w->gw.loop = &w->loop;
    w->gw.upstream = gw_upstream_pool_new(&w->loop, NULL, &hooks);
    w->gw.mcp_auth = gw_mcp_auth_new(&w->loop, w->gw.upstream);
    w->http = gw_http_server_new(&w->loop, w->listen_fd, &w->limits, &handler);
    uv_sem_post(&w->started);
    if (w->http == NULL) {
        gw_log_error("worker %d: cannot serve on its listening socket", w->id);
        uv_close((uv_handle_t *)&w->drain_timer, NULL);
        uv_mutex_lock(&w->async_lock);
        w->async_closed = true;
        uv_close((uv_handle_t *)&w->async, NULL);
        uv_mutex_unlock(&w->async_lock);
        gw_mcp_auth_free(w->gw.mcp_auth);
        w->gw.mcp_auth = NULL;
        gw_upstream_pool_close(w->gw.upstream);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0) {
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    gw_llm_request_free_spares(&w->gw);
    atomic_store(&w->done, true);
}

gw_worker_t *gw_worker_start(int id, int listen_fd, gw_config_t *cfg, const gw_http_limits_t *limits,
                             const gw_gateway_opts_t *opts)
{
    gw_worker_t *w = gw_calloc(1, sizeof(*w));
    w->id = id;
    w->listen_fd = listen_fd;
    w->limits = *limits;
    w->opts = *opts;
    w->gw.opts = &w->opts;
    w->gw.metrics = gw_metrics_new();
    w->gw.health = gw_health_new();
    w->gw.config = gw_config_ref(cfg);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    w->gw.rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)(id + 1) * 0x9E3779B97F4A7C15ULL) ^
                (uint64_t)getpid();
    if (w->gw.rng == 0)
        w->gw.rng = 0x12345678;
    atomic_init(&w->commands, 0);
    atomic_init(&w->pending_config, NULL);
    atomic_init(&w->pending_tls, NULL);
    atomic_init(&w->done, false);
    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->async, on_async);
    w->async.data = w;
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    uv_sem_init(&w->started, 0);
    uv_mutex_init(&w->async_lock);
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
        gw_log_error("worker %d: cannot start its thread", id);
        abort();
    }
    uv_sem_wait(&w->started);
    uv_sem_destroy(&w->started);
    return w;
}

static void send_command(gw_worker_t *w, int cmd)
{
    atomic_fetch_or(&w->commands, cmd);
    uv_mutex_lock(&w->async_lock);
    if (!w->async_closed)
        uv_async_send(&w->async);
    uv_mutex_unlock(&w->async_lock);
}

void gw_worker_stop_accepting(gw_worker_t *w)
{
    send_command(w, CMD_STOP_ACCEPTING);
}

void gw_worker_close_all(gw_worker_t *w)
{
    send_command(w, CMD_CLOSE_ALL);
}

void gw_worker_set_tls(gw_worker_t *w, gw_tls_ctx_t *tls)
{
    gw_tls_ctx_t *old = atomic_exchange(&w->pending_tls, gw_tls_ctx_ref(tls));
    if (old)
        gw_tls_ctx_free(old);
    send_command(w, CMD_NEW_TLS);
}

void gw_worker_set_config(gw_worker_t *w, gw_config_t *cfg)
{
    gw_config_t *old = atomic_exchange(&w->pending_config, gw_config_ref(cfg));
    if (old)
        gw_config_unref(old);
    send_command(w, CMD_NEW_CONFIG);
}

bool gw_worker_done(const gw_worker_t *w)
{
    return atomic_load(&((gw_worker_t *)w)->done);
}

void gw_worker_join(gw_worker_t *w)
{
    uv_thread_join(&w->thread);
    gw_config_t *pending = atomic_exchange(&w->pending_config, NULL);
    if (pending)
        gw_config_unref(pending);
    gw_tls_ctx_t *pending_tls = atomic_exchange(&w->pending_tls, NULL);
    if (pending_tls)
        gw_tls_ctx_free(pending_tls);
    gw_config_unref(w->gw.config);
    gw_metrics_free(w->gw.metrics);
    gw_health_free(w->gw.health);
    uv_mutex_destroy(&w->async_lock);
    free(w);
}

gw_metrics_t *gw_worker_metrics(gw_worker_t *w)
{
    return w->gw.metrics;
}
