/* The aigw command line: run | healthcheck | version | help. `aigw run` loads the configuration
 * (a YAML file, or the environment), starts one worker per core and the admin listener, and
 * drains gracefully on SIGTERM / SIGINT. */
#include "admin/admin.h"
#include "auth/auth.h"
#include "config/config.h"
#include "config/config_dump.h"
#include "config/mcp_json.h"
#include "config/xdg.h"
#include "core/buf.h"
#include "core/log.h"
#include "gateway/worker.h"
#include "mcp/proxy.h"
#include "net/http_server.h"
#include "obs/access_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_WORKERS 256

typedef struct {
    const char *config_path;
    const char *listen_address;
    int port;        /* -1: from the config, else 1975 */
    int admin_port;
    int workers;
    bool debug;
    bool no_access_log;
    gw_http_limits_t limits;
    gw_gateway_opts_t gateway;
    uint64_t drain_timeout_ms;
    const char *tls_cert; /* --tls-cert / --tls-key: PEM files for the listener (over the config's) */
    const char *tls_key;
    const char *config_home; /* --config-home (AIGW_CONFIG_HOME): where the default config.yaml is */
    const char *mcp_config;       /* MCP hook: --mcp-config FILE */
    const char *mcp_json;         /* MCP hook: --mcp-json JSON */
    const char *mcp_session_seed; /* MCP hook: --mcp-session-seed, else AIGW_MCP_SESSION_SEEDS */
    uint64_t mcp_fanout_timeout_ms; /* MCP hook: --mcp-fanout-timeout (0: AIGW_MCP_FANOUT_TIMEOUT_MS or 15s) */
} run_opts_t;

/* MCP hook: the {"mcpServers": ...} JSON given on the command line, merged into every snapshot
 * (start and reloads) by mcp_json.c. */
static gw_buf_t mcp_servers_json;

static int merge_mcp_servers(gw_config_t *cfg, gw_buf_t *errors)
{
    if (mcp_servers_json.len == 0)
        return GW_OK;
    return gw_mcp_json_merge(cfg, mcp_servers_json.data, mcp_servers_json.len, errors);
}

static const char *const usage_main =
    "aigw: an AI gateway (OpenAI- and Anthropic-compatible endpoints, MCP) in one small binary.\n"
    "\n"
    "Usage:\n"
    "  aigw run [CONFIG.yaml] [flags]   run the gateway (aigw run --help for the flags)\n"
    "  aigw validate CONFIG.yaml         check a configuration file; prints every problem, exit 0 when valid\n"
    "  aigw healthcheck [--admin-port N] exit 0 when the local gateway's /health answers 200\n"
    "  aigw version                      print the version\n"
    "  aigw help                         this text\n"
    "\n"
    "Without a configuration file, `aigw run` configures itself from the environment:\n"
    "  OPENAI_API_KEY, OPENAI_BASE_URL (default https://api.openai.com/v1), OPENAI_ORG_ID, OPENAI_PROJECT_ID;\n"
    "  AZURE_OPENAI_API_KEY with AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION;\n"
    "  ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL.\n"
    "With none of them set, every model goes to an OpenAI-compatible server at http://127.0.0.1:11434/v1 (Ollama).\n";

static const char *const usage_run =
    "Usage: aigw run [CONFIG.yaml] [flags]\n"
    "\n"
    "CONFIG.yaml holds Envoy AI Gateway resources (AIGatewayRoute, AIServiceBackend, Backend,\n"
    "BackendSecurityPolicy, Secret, ...). Default: $AIGW_CONFIG_HOME/config.yaml (~/.config/aigw/config.yaml)\n"
    "when it exists, else auto-configuration from the environment (see `aigw help`).\n"
    "\n"
    "Flags:\n"
    "  --config-home DIR          where the default config.yaml is looked for (AIGW_CONFIG_HOME, ~/.config/aigw)\n"
    "  --port N                   listener port (default: the Gateway listener's, else 1975)\n"
    "  --admin-port N             admin port for /health and /metrics (default 1064)\n"
    "  --listen-address ADDR      address to bind both listeners to (default 0.0.0.0)\n"
    "  --workers N                worker threads (default: one per core)\n"
    "  --debug                    debug logging on stderr\n"
    "  --max-request-body SIZE    request body limit, e.g. 50Mi (default: the config's, else 50Mi) -> 413\n"
    "  --max-header-bytes SIZE    request line + headers limit (default 64Ki) -> 431\n"
    "  --header-timeout DURATION  time allowed to receive a request's head and body (default 10s)\n"
    "  --idle-timeout DURATION    keep-alive connection idle time (default 300s)\n"
    "  --connect-timeout DURATION upstream connect (DNS, TCP, TLS) timeout (default 10s)\n"
    "  --request-timeout DURATION upstream request timeout (default: the route's, 60s; 120s when auto-configured)\n"
    "  --stream-idle-timeout DURATION longest upstream silence during a response (default 300s)\n"
    "  --drain-timeout DURATION   grace period for in-flight requests on SIGTERM/SIGINT (default 30s)\n"
    "  --no-access-log            do not write the JSON access log on stdout\n"
    "  --tls-cert FILE            serve HTTPS: PEM certificate chain (leaf first) for the listener\n"
    "  --tls-key FILE             ... and its PEM private key (both flags together)\n"
    "  --mcp-config FILE          MCP servers as {\"mcpServers\": {...}} JSON, served at /mcp\n"
    "  --mcp-json JSON            the same, inline (exclusive with --mcp-config)\n"
    "  --mcp-session-seed SEEDS   MCP session seeds, comma-separated, first seals (else AIGW_MCP_SESSION_SEEDS;\n"
    "                             default: random per process, sessions then do not survive restarts)\n"
    "  --mcp-fanout-timeout DURATION per-backend limit of MCP initialize, lists and other fan-outs (else\n"
    "                             AIGW_MCP_FANOUT_TIMEOUT_MS; default 15s); a backend missing it is left out\n"
    "\n"
    "DURATION: 500ms, 10s, 2m, 1h or plain seconds. SIZE: bytes, or with Ki/Mi/Gi (K/M/G) suffixes.\n";

static int parse_duration_ms(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    double mult = 1000;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -1;
    *out = (uint64_t)(v * mult);
    return 0;
}

static int parse_size(const char *s, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned long long mult = 1;
    if (*end == '\0' || strcmp(end, "B") == 0)
        mult = 1;
    else if (strcmp(end, "Ki") == 0 || strcmp(end, "K") == 0 || strcmp(end, "KB") == 0)
        mult = 1024ULL;
    else if (strcmp(end, "Mi") == 0 || strcmp(end, "M") == 0 || strcmp(end, "MB") == 0)
        mult = 1024ULL * 1024;
    else if (strcmp(end, "Gi") == 0 || strcmp(end, "G") == 0 || strcmp(end, "GB") == 0)
        mult = 1024ULL * 1024 * 1024;
    else
        return -1;
    *out = (size_t)(v * mult);
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * aigw run */

typedef struct {
    uv_loop_t *loop;
    gw_worker_t *workers[MAX_WORKERS];
    gw_metrics_t *metrics[MAX_WORKERS + 1]; /* the workers', then the main thread's (reloads) */
    gw_metrics_t *main_metrics;
    int n_workers;
    gw_admin_t *admin;
    gw_config_t *config;
    char *config_path;       /* the watched file, NULL when configured from the environment */
    uv_fs_event_t watch;     /* the file's directory: editors replace files by renaming */
    bool watching;
    uv_timer_t reload_timer; /* coalesces bursts of file events */
    uv_timer_t ready_timer;  /* /health turns 200 once credential providers resolved */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_poll;
    uint64_t drain_deadline;
    uint64_t drain_timeout_ms;
    bool draining;
    bool forced;
    bool https;              /* the listener terminates TLS from the configuration's Secret */
    /* the MCP gateway's process-wide settings, for /config_dump */
    gw_config_dump_mcp_t mcp_dump;
} app_t;

static void close_signal_handles(app_t *app)
{
    uv_close((uv_handle_t *)&app->sig_term, NULL);
    uv_close((uv_handle_t *)&app->sig_int, NULL);
    uv_close((uv_handle_t *)&app->sig_hup, NULL);
    uv_close((uv_handle_t *)&app->reload_timer, NULL);
    uv_timer_stop(&app->ready_timer);
    uv_close((uv_handle_t *)&app->ready_timer, NULL);
    if (app->watching) {
        uv_fs_event_stop(&app->watch);
        uv_close((uv_handle_t *)&app->watch, NULL);
        app->watching = false;
    }
}

/* Parses and validates the file on the main thread; a valid snapshot replaces the old one in
 * every worker (requests in flight finish on the one they hold), an invalid one changes
 * nothing. */
static void reload_config(app_t *app, const char *why)
{
    if (app->config_path == NULL || app->draining) {
        gw_log_info("%s: nothing to reload (configured from the environment)", why);
        return;
    }
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 20);
    gw_config_t *next = gw_config_load_file(app->config_path, &errors);
    if (next != NULL && merge_mcp_servers(next, &errors) != GW_OK) {
        gw_config_unref(next);
        next = NULL;
    }
    if (next == NULL) {
        gw_metrics_counter_add(app->main_metrics, GW_COUNTER_CONFIG_RELOADS_FAILED, 1);
        gw_log_error("%s: %s is invalid, keeping configuration generation %llu:\n%s", why, app->config_path,
                     (unsigned long long)app->config->generation, gw_buf_cstr(&errors));
        gw_buf_free(&errors);
        return;
    }
    if (gw_auth_attach(next, app->loop, &errors) != GW_OK) {
        gw_metrics_counter_add(app->main_metrics, GW_COUNTER_CONFIG_RELOADS_FAILED, 1);
        gw_log_error("%s: credentials of %s cannot be set up, keeping the current configuration:\n%s", why,
                     app->config_path, gw_buf_cstr(&errors));
        gw_config_unref(next);
        gw_buf_free(&errors);
        return;
    }
    gw_buf_free(&errors);
    /* a changed listener certificate applies to new connections; open ones keep theirs */
    const char *old_cert = app->config->listen_tls_cert_pem, *old_key = app->config->listen_tls_key_pem;
    const char *new_cert = next->listen_tls_cert_pem, *new_key = next->listen_tls_key_pem;
    if (app->https && new_cert && new_key &&
        (old_cert == NULL || old_key == NULL || strcmp(old_cert, new_cert) != 0 || strcmp(old_key, new_key) != 0)) {
        char tls_err[256] = "";
        gw_tls_ctx_t *tls = gw_tls_ctx_new_server(gw_str_c(new_cert), gw_str_c(new_key), tls_err, sizeof(tls_err));
        if (tls == NULL) {
            gw_metrics_counter_add(app->main_metrics, GW_COUNTER_CONFIG_RELOADS_FAILED, 1);
            gw_log_error("%s: the listener certificate of %s is unusable (%s), keeping the current configuration", why,
                         app->config_path, tls_err);
            gw_config_unref(next);
            return;
        }
        for (int i = 0; i < app->n_workers; i++)
            gw_worker_set_tls(app->workers[i], tls);
        gw_tls_ctx_free(tls);
        gw_log_info("%s: listener certificate replaced for new connections", why);
    }
    next->generation = app->config->generation + 1;
    for (int i = 0; i < app->n_workers; i++)
        gw_worker_set_config(app->workers[i], next);
    gw_config_unref(app->config);
    app->config = next;
    gw_metrics_counter_add(app->main_metrics, GW_COUNTER_CONFIG_RELOADS_OK, 1);
    gw_metrics_gauge_add(app->main_metrics, GW_GAUGE_CONFIG_GENERATION, 1);
    gw_log_info("%s: configuration generation %llu loaded from %s (%zu rules, %zu models)", why,
                (unsigned long long)next->generation, app->config_path, next->n_rules, next->n_models);
}

static void on_ready_timer(uv_timer_t *t)
{
    app_t *app = t->data;
    bool all_ok = true;
    const char *why = NULL;
    if (!gw_auth_settled(app->config, &all_ok, &why))
        return;
    uv_timer_stop(t);
    if (!all_ok)
        gw_log_warn("AWS credentials: %s; requests to those backends answer 503 until credentials appear", why);
    if (!app->draining)
        gw_admin_set_ready(app->admin, true);
}

static void on_reload_timer(uv_timer_t *t)
{
    reload_config(t->data, "file changed");
}

static void on_config_file_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    app_t *app = h->data;
    (void)events;
    if (status < 0)
        return;
    const char *base = strrchr(app->config_path, '/');
    base = base ? base + 1 : app->config_path;
    if (filename && strcmp(filename, base) != 0)
        return;
    uv_timer_start(&app->reload_timer, on_reload_timer, 50, 0);
}

static void watch_config(app_t *app)
{
    char dir[4096];
    const char *slash = strrchr(app->config_path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == app->config_path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - app->config_path), app->config_path);
    uv_fs_event_init(app->loop, &app->watch);
    app->watch.data = app;
    int rc = uv_fs_event_start(&app->watch, on_config_file_event, dir, 0);
    if (rc != 0) {
        gw_log_warn("cannot watch %s for changes (%s); SIGHUP still reloads", dir, uv_strerror(rc));
        uv_close((uv_handle_t *)&app->watch, NULL);
        return;
    }
    app->watching = true;
}

static void on_drain_poll(uv_timer_t *t)
{
    app_t *app = t->data;
    bool all_done = true;
    for (int i = 0; i < app->n_workers; i++)
        all_done = all_done && gw_worker_done(app->workers[i]);
    if (all_done) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        close_signal_handles(app);
        gw_admin_close(app->admin);
        app->admin = NULL;
        gw_auth_shutdown();
        return;
    }
    if (!app->forced && uv_now(app->loop) >= app->drain_deadline) {
        app->forced = true;
        gw_log_warn("drain: grace period over, closing the remaining connections");
        for (int i = 0; i < app->n_workers; i++)
            gw_worker_close_all(app->workers[i]);
    }
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    app_t *app = s->data;
    if (app->draining) {
        if (!app->forced) {
            gw_log_warn("second signal: closing the remaining connections now");
            app->forced = true;
            for (int i = 0; i < app->n_workers; i++)
                gw_worker_close_all(app->workers[i]);
        }
        return;
    }
    app->draining = true;
    gw_log_info("%s: draining (up to %llu ms for in-flight requests)", signum == SIGTERM ? "SIGTERM" : "SIGINT",
                (unsigned long long)app->drain_timeout_ms);
    gw_admin_set_ready(app->admin, false);
    gw_mcp_proxy_begin_drain(); /* MCP hook: long-lived GET streams end */
    for (int i = 0; i < app->n_workers; i++)
        gw_worker_stop_accepting(app->workers[i]);
    app->drain_deadline = uv_now(app->loop) + app->drain_timeout_ms;
    uv_timer_init(app->loop, &app->drain_poll);
    app->drain_poll.data = app;
    uv_timer_start(&app->drain_poll, on_drain_poll, 10, 10);
}

static void on_hup(uv_signal_t *s, int signum)
{
    (void)signum;
    reload_config(s->data, "SIGHUP");
}

static void config_dump(gw_buf_t *out, void *ud)
{
    app_t *app = ud;
    gw_config_dump_json(app->config, &app->mcp_dump, out);
}

static gw_config_t *load_config(const run_opts_t *o, char **used_path)
{
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 20);
    gw_config_t *cfg = NULL;
    const char *path = o->config_path;
    char default_path[PATH_MAX];
    if (path == NULL) {
        /* $AIGW_CONFIG_HOME/config.yaml (~/.config/aigw) when it exists, as the reference does */
        gw_xdg_dirs_t dirs;
        gw_buf_t xerr;
        gw_buf_init(&xerr, 4096);
        if (gw_xdg_dirs_resolve(&dirs, NULL, &xerr) == GW_OK &&
            (o->config_home == NULL || gw_xdg_set(dirs.config_home, o->config_home, NULL, &xerr) == GW_OK) &&
            gw_xdg_default_config(&dirs, default_path, sizeof(default_path)))
            path = default_path;
        gw_buf_free(&xerr);
    }
    if (path) {
        cfg = gw_config_load_file(path, &errors);
        if (cfg == NULL)
            fprintf(stderr, "aigw: %s: invalid configuration:\n%s", path, gw_buf_cstr(&errors));
        else
            *used_path = realpath(path, NULL);
    } else {
        cfg = gw_config_from_env(NULL, &errors);
        if (cfg == NULL)
            fprintf(stderr, "aigw: auto-configuration from the environment failed:\n%s", gw_buf_cstr(&errors));
    }
    if (cfg != NULL && merge_mcp_servers(cfg, &errors) != GW_OK) {
        fprintf(stderr, "aigw: MCP servers: %s", gw_buf_cstr(&errors));
        gw_config_unref(cfg);
        cfg = NULL;
    }
    gw_buf_free(&errors);
    return cfg;
}

static int cmd_run(run_opts_t *o)
{
    app_t app;
    memset(&app, 0, sizeof(app));
    gw_log_level = o->debug ? GW_LOG_DEBUG : GW_LOG_INFO;
    gw_access_log_enabled = !o->no_access_log;
    signal(SIGPIPE, SIG_IGN);

    /* MCP hook: servers JSON and session seeds */
    gw_buf_init(&mcp_servers_json, GW_MCP_JSON_MAX);
    if (o->mcp_config && o->mcp_json) {
        gw_log_error("--mcp-config and --mcp-json are exclusive");
        return 1;
    }
    if (o->mcp_json && gw_buf_append(&mcp_servers_json, o->mcp_json, strlen(o->mcp_json)) != GW_OK) {
        gw_log_error("--mcp-json: too large");
        return 1;
    }
    if (o->mcp_config) {
        FILE *f = fopen(o->mcp_config, "rb");
        char chunk[8192];
        size_t n;
        int rc = f ? GW_OK : GW_ERROR;
        while (f && rc == GW_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            rc = gw_buf_append(&mcp_servers_json, chunk, n);
        if (f)
            fclose(f);
        if (rc != GW_OK || mcp_servers_json.len == 0) {
            gw_log_error("--mcp-config %s: cannot read it (or empty, or larger than 1 MiB)", o->mcp_config);
            return 1;
        }
    }
    char *config_path = NULL;
    gw_config_t *cfg = load_config(o, &config_path);
    if (cfg == NULL)
        return 1;
    {
        const char *seeds = o->mcp_session_seed ? o->mcp_session_seed : getenv("AIGW_MCP_SESSION_SEEDS");
        const char *why = NULL;
        if (gw_mcp_proxy_setup(seeds, getenv("AIGW_MCP_ALLOWED_ORIGINS"), cfg->n_mcp_routes > 0, &why) != GW_OK ||
            (o->mcp_fanout_timeout_ms && gw_mcp_proxy_set_fanout_timeout(o->mcp_fanout_timeout_ms, &why) != GW_OK)) {
            gw_log_error("%s", why);
            gw_config_unref(cfg);
            return 1;
        }
        app.mcp_dump.n_session_seeds = gw_mcp_proxy_session_seeds();
        app.mcp_dump.fanout_timeout_ms = gw_mcp_proxy_fanout_timeout();
    }
    app.mcp_dump.session_max_age_s = GW_MCP_SESSION_MAX_AGE_S;
    app.mcp_dump.request_timeout_ms =
        o->gateway.request_timeout_ms ? o->gateway.request_timeout_ms : GW_MCP_DEFAULT_TIMEOUT_MS;
    cfg->generation = 1;
    if (cfg->description)
        gw_log_info("%s", cfg->description);
    if (o->limits.max_body_bytes == 0)
        o->limits.max_body_bytes = cfg->max_request_body ? cfg->max_request_body : 50u * 1024 * 1024;
    /* Listener TLS: the flags' files, else the Gateway listener's Secret. One context for every
     * worker; each server takes its own reference. */
    char tls_err[256] = "";
    gw_tls_ctx_t *tls = NULL;
    if ((o->tls_cert != NULL) != (o->tls_key != NULL)) {
        gw_log_error("--tls-cert and --tls-key go together");
        gw_config_unref(cfg);
        return 1;
    }
    if (o->tls_cert)
        tls = gw_tls_ctx_new_server_files(o->tls_cert, o->tls_key, tls_err, sizeof(tls_err));
    else if (cfg->listen_tls_cert_pem && cfg->listen_tls_key_pem)
        tls = gw_tls_ctx_new_server(gw_str_c(cfg->listen_tls_cert_pem), gw_str_c(cfg->listen_tls_key_pem), tls_err,
                                    sizeof(tls_err));
    if (tls == NULL && (o->tls_cert || cfg->listen_tls_cert_pem)) {
        gw_log_error("listener TLS: %s", tls_err);
        gw_config_unref(cfg);
        return 1;
    }
    o->limits.tls = tls;
    bool https = tls != NULL;
    int port = o->port >= 0 ? o->port : cfg->listen_port ? cfg->listen_port : 1975;

    int admin_fd = gw_http_listen_socket(o->listen_address, (uint16_t)o->admin_port, 128);
    if (admin_fd < 0) {
        gw_log_error("cannot listen on %s:%d (admin): %s", o->listen_address, o->admin_port, strerror(-admin_fd));
        gw_tls_ctx_free(tls);
        gw_config_unref(cfg);
        return 1;
    }
    int fds[MAX_WORKERS];
    for (int i = 0; i < o->workers; i++) {
        fds[i] = gw_http_listen_socket(o->listen_address, (uint16_t)port, 4096);
        if (fds[i] < 0) {
            gw_log_error("cannot listen on %s:%d: %s", o->listen_address, port, strerror(-fds[i]));
            for (int j = 0; j < i; j++)
                close(fds[j]);
            close(admin_fd);
            gw_tls_ctx_free(tls);
            gw_config_unref(cfg);
            return 1;
        }
    }

    app.loop = uv_default_loop();
    {
        gw_buf_t errors;
        gw_buf_init(&errors, 1 << 16);
        if (gw_auth_attach(cfg, app.loop, &errors) != GW_OK) {
            fprintf(stderr, "aigw: credentials cannot be set up:\n%s", gw_buf_cstr(&errors));
            gw_buf_free(&errors);
            gw_config_unref(cfg);
            return 1;
        }
        gw_buf_free(&errors);
    }
    app.config = gw_config_ref(cfg);
    app.config_path = config_path;
    app.main_metrics = gw_metrics_new();
    app.https = https && o->tls_cert == NULL;
    gw_metrics_gauge_add(app.main_metrics, GW_GAUGE_CONFIG_GENERATION, 1);
    app.drain_timeout_ms = o->drain_timeout_ms;
    for (int i = 0; i < o->workers; i++) {
        app.workers[i] = gw_worker_start(i, fds[i], cfg, &o->limits, &o->gateway);
        app.metrics[i] = gw_worker_metrics(app.workers[i]);
    }
    app.n_workers = o->workers;
    /* gw_worker_start returns once its server exists, and every server holds its own reference */
    gw_tls_ctx_free(tls);
    o->limits.tls = NULL;
    app.metrics[app.n_workers] = app.main_metrics;
    gw_admin_sources_t src = {app.metrics, (size_t)app.n_workers + 1, config_dump, &app};
    app.admin = gw_admin_start(app.loop, admin_fd, &src);
    if (app.admin == NULL)
        return 1;
    uv_signal_init(app.loop, &app.sig_term);
    uv_signal_init(app.loop, &app.sig_int);
    uv_signal_init(app.loop, &app.sig_hup);
    app.sig_term.data = app.sig_int.data = app.sig_hup.data = &app;
    uv_signal_start(&app.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&app.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&app.sig_hup, on_hup, SIGHUP);
    uv_timer_init(app.loop, &app.reload_timer);
    app.reload_timer.data = &app;
    if (app.config_path)
        watch_config(&app);
    uv_timer_init(app.loop, &app.ready_timer);
    app.ready_timer.data = &app;
    uv_timer_start(&app.ready_timer, on_ready_timer, 0, 10);
    gw_log_info("aigw %s listening on %s://%s:%d (admin http://%s:%d), %d worker%s", AIGW_VERSION,
                https ? "https" : "http", o->listen_address, port, o->listen_address, o->admin_port, o->workers,
                o->workers == 1 ? "" : "s");

    uv_run(app.loop, UV_RUN_DEFAULT);

    for (int i = 0; i < app.n_workers; i++)
        gw_worker_join(app.workers[i]);
    uv_loop_close(app.loop);
    gw_config_unref(app.config);
    gw_config_unref(cfg);
    gw_metrics_free(app.main_metrics);
    free(app.config_path);
    gw_log_info("drained, exiting");
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * aigw healthcheck: a blocking GET /health with a 1 s budget, for container HEALTHCHECKs. */

static int cmd_healthcheck(int admin_port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)admin_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = 1;
    char buf[256];
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "aigw healthcheck: cannot connect to 127.0.0.1:%d: %s\n", admin_port, strerror(errno));
        goto out;
    }
    const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        goto out;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n > 0) {
        buf[n] = '\0';
        if (strncmp(buf, "HTTP/1.1 200", 12) == 0 || strncmp(buf, "HTTP/1.0 200", 12) == 0)
            rc = 0;
        else
            fprintf(stderr, "aigw healthcheck: not healthy: %.*s\n", (int)strcspn(buf, "\r\n"), buf);
    }
out:
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("aigw %s (%s)\n", AIGW_VERSION, AIGW_GIT_REV);
        return 0;
    }
    if (strcmp(argv[1], "validate") == 0) {
        if (argc != 3 || argv[2][0] == '-') {
            fputs("Usage: aigw validate CONFIG.yaml   (prints every problem; exit 0 when the file is valid)\n",
                  argc == 3 && strcmp(argv[2], "--help") == 0 ? stdout : stderr);
            return argc == 3 && strcmp(argv[2], "--help") == 0 ? 0 : 2;
        }
        gw_buf_t report;
        gw_buf_init(&report, 1 << 20);
        int rc = gw_config_validate_file(argv[2], &report);
        if (report.len)
            fputs(gw_buf_cstr(&report), rc == GW_OK ? stdout : stderr);
        if (rc == GW_OK)
            printf("%s: valid\n", argv[2]);
        gw_buf_free(&report);
        return rc == GW_OK ? 0 : 1;
    }
    if (strcmp(argv[1], "healthcheck") == 0) {
        int port = 1064;
        for (int i = 2; i < argc; i++) {
            if ((strcmp(argv[i], "--admin-port") == 0) && i + 1 < argc) {
                if (parse_int(argv[++i], 1, 65535, &port) != 0) {
                    fprintf(stderr, "aigw healthcheck: bad --admin-port\n");
                    return 2;
                }
            } else if (strcmp(argv[i], "--help") == 0) {
                puts("Usage: aigw healthcheck [--admin-port N]   (exit 0 when http://127.0.0.1:N/health answers 200)");
                return 0;
            } else {
                fprintf(stderr, "aigw healthcheck: unknown argument %s\n", argv[i]);
                return 2;
            }
        }
        return cmd_healthcheck(port);
    }
    if (strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "aigw: unknown command \"%s\"\n\n%s", argv[1], usage_main);
        return 2;
    }

    run_opts_t o;
    memset(&o, 0, sizeof(o));
    o.listen_address = "0.0.0.0";
    o.port = -1;
    o.admin_port = 1064;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.workers = cores > 0 ? (int)GW_MIN(cores, MAX_WORKERS) : 1;
    gw_http_limits_default(&o.limits);
    o.limits.max_body_bytes = 0; /* from the config unless given */
    o.gateway.connect_timeout_ms = 10000;
    o.gateway.stream_idle_timeout_ms = 300000;
    o.drain_timeout_ms = 30000;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_run, stdout);
            return 0;
        } else if (strcmp(a, "--debug") == 0) {
            o.debug = true;
        } else if (strcmp(a, "--no-access-log") == 0) {
            o.no_access_log = true;
        } else if (a[0] == '-' && v == NULL) {
            fprintf(stderr, "aigw run: %s needs a value\n", a);
            return 2;
        } else if (strcmp(a, "--port") == 0) {
            bad = parse_int(v, 0, 65535, &o.port), i++;
        } else if (strcmp(a, "--admin-port") == 0) {
            bad = parse_int(v, 0, 65535, &o.admin_port), i++;
        } else if (strcmp(a, "--listen-address") == 0) {
            o.listen_address = v, i++;
        } else if (strcmp(a, "--config-home") == 0) {
            o.config_home = v, i++;
        } else if (strcmp(a, "--tls-cert") == 0) {
            o.tls_cert = v, i++;
        } else if (strcmp(a, "--tls-key") == 0) {
            o.tls_key = v, i++;
        } else if (strcmp(a, "--mcp-config") == 0) {
            o.mcp_config = v, i++;
        } else if (strcmp(a, "--mcp-json") == 0) {
            o.mcp_json = v, i++;
        } else if (strcmp(a, "--mcp-session-seed") == 0) {
            o.mcp_session_seed = v, i++;
        } else if (strcmp(a, "--mcp-fanout-timeout") == 0) {
            bad = parse_duration_ms(v, &o.mcp_fanout_timeout_ms) || o.mcp_fanout_timeout_ms == 0, i++;
        } else if (strcmp(a, "--workers") == 0) {
            bad = parse_int(v, 1, MAX_WORKERS, &o.workers), i++;
        } else if (strcmp(a, "--max-request-body") == 0) {
            bad = parse_size(v, &o.limits.max_body_bytes), i++;
        } else if (strcmp(a, "--max-header-bytes") == 0) {
            bad = parse_size(v, &o.limits.max_header_bytes), i++;
        } else if (strcmp(a, "--header-timeout") == 0) {
            bad = parse_duration_ms(v, &o.limits.header_timeout_ms), i++;
        } else if (strcmp(a, "--idle-timeout") == 0) {
            bad = parse_duration_ms(v, &o.limits.idle_timeout_ms), i++;
        } else if (strcmp(a, "--connect-timeout") == 0) {
            bad = parse_duration_ms(v, &o.gateway.connect_timeout_ms), i++;
        } else if (strcmp(a, "--request-timeout") == 0) {
            bad = parse_duration_ms(v, &o.gateway.request_timeout_ms), i++;
        } else if (strcmp(a, "--stream-idle-timeout") == 0) {
            bad = parse_duration_ms(v, &o.gateway.stream_idle_timeout_ms), i++;
        } else if (strcmp(a, "--drain-timeout") == 0) {
            bad = parse_duration_ms(v, &o.drain_timeout_ms), i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "aigw run: unknown flag %s (see aigw run --help)\n", a);
            return 2;
        } else if (o.config_path == NULL) {
            o.config_path = a;
        } else {
            fprintf(stderr, "aigw run: unexpected argument %s\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "aigw run: bad value for %s: %s\n", a, v);
            return 2;
        }
    }
    return cmd_run(&o);
}
