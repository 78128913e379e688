/* Admin endpoints (see admin.h), served by the same HTTP server code as the gateway. */
#include "admin/admin.h"

#include "core/alloc.h"
#include "net/http_server.h"

#include <stdlib.h>

struct gw_admin_s {
    gw_http_server_t *http;
    gw_admin_sources_t src;
    bool ready;
};

static void on_request(gw_http_req_t *req, void *ud)
{
    gw_admin_t *a = ud;
    gw_str_t text = GW_STR("text/plain; charset=utf-8");
    if (!gw_str_eq_lit(req->method, "GET") && !gw_str_eq_lit(req->method, "HEAD")) {
        gw_http_header_t allow = {GW_STR("Allow"), GW_STR("GET")};
        gw_http_respond_simple(req, 405, text, GW_STR("method not allowed\n"), &allow, 1);
        return;
    }
    if (gw_str_eq_lit(req->path, "/health") || gw_str_eq_lit(req->path, "/ready")) {
        if (a->ready)
            gw_http_respond_simple(req, 200, text, GW_STR("OK\n"), NULL, 0);
        else
            gw_http_respond_simple(req, 503, text, GW_STR("not ready\n"), NULL, 0);
        return;
    }
    if (gw_str_eq_lit(req->path, "/metrics")) {
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        gw_metrics_render(a->src.metrics, a->src.n_metrics, &out);
        gw_http_respond_simple(req, 200, GW_STR("text/plain; version=0.0.4; charset=utf-8"), gw_buf_str(&out), NULL,
                               0);
        gw_buf_free(&out);
        return;
    }
    if (gw_str_eq_lit(req->path, "/config_dump") && a->src.config_dump) {
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        a->src.config_dump(&out, a->src.ud);
        gw_http_respond_simple(req, 200, GW_STR("application/json"), gw_buf_str(&out), NULL, 0);
        gw_buf_free(&out);
        return;
    }
    gw_http_respond_simple(req, 404, text, GW_STR("not found\n"), NULL, 0);
}

gw_admin_t *gw_admin_start(uv_loop_t *loop, int listen_fd, const gw_admin_sources_t *src)
{
    gw_admin_t *a = gw_calloc(1, sizeof(*a));
    a->src = *src;
    gw_http_limits_t limits;
    gw_http_limits_default(&limits);
    limits.max_body_bytes = 64 * 1024;
    gw_http_handler_t h = {.on_request = on_request, .ud = a};
    a->http = gw_http_server_new(loop, listen_fd, &limits, &h);
    if (a->http == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

void gw_admin_set_ready(gw_admin_t *a, bool ready)
{
    a->ready = ready;
}

void gw_admin_close(gw_admin_t *a)
{
    gw_http_server_stop_accepting(a->http);
    gw_http_server_close_all(a->http);
    gw_http_server_free(a->http);
    free(a);
}
