/* The MCP Streamable HTTP endpoint of an MCPRoute: authorization by the worker's mcp/oauth.h
 * authorizer (and the well-known metadata it serves), transport checks, the initialize fan-out that
 * builds the sealed composite session, merged lists, routed calls relayed event by event, and
 * DELETE. One mcp_req_t per client request, with one leg per backend call; nothing outlives the
 * request, so any replica with the same session seeds serves any session. */
#include "mcp/proxy.h"

#include "auth/jwt.h"
#include "codec/base64.h"
#include "codec/sse.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "mcp/inflight.h"
#include "mcp/jsonrpc.h"
#include "mcp/oauth.h"
#include "mcp/session.h"
#include "obs/access_log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/rand.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- process-wide settings ------------------------------------------------------------------ */

static gw_mcp_session_keyring_t *keyring; /* set before workers start, read-only afterwards */
static size_t n_given_seeds;              /* the seeds keyring was made from; 0: a random one */
static char **allowed_origins;
static size_t n_allowed_origins;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static uint64_t heartbeat_ms = GW_MCP_HEARTBEAT_MS;
static uint64_t fanout_timeout_ms = GW_MCP_FANOUT_TIMEOUT_MS;
static atomic_bool draining; /* set by the main thread on SIGTERM, read by every worker */

static int random_keyring(gw_mcp_session_keyring_t **out)
{
    unsigned char seed[32];
    if (RAND_bytes(seed, sizeof(seed)) != 1)
        return GW_ERROR;
    gw_str_t s = gw_str((const char *)seed, sizeof(seed));
    int rc = gw_mcp_session_keyring_new(&s, 1, out);
    explicit_bzero(seed, sizeof(seed));
    return rc;
}

/* Workers reached without setup (tests, embedders): a random keyring, made once. */
static void default_keyring(void)
{
    if (keyring == NULL && random_keyring(&keyring) != GW_OK) {
        gw_log_error("mcp: cannot create a session keyring");
        abort();
    }
}

static void free_origins(void)
{
    for (size_t i = 0; i < n_allowed_origins; i++)
        free(allowed_origins[i]);
    free(allowed_origins);
    allowed_origins = NULL;
    n_allowed_origins = 0;
}

size_t gw_mcp_proxy_session_seeds(void)
{
    return n_given_seeds;
}

/* A whole number in [lo, hi], nothing else in the string. */
static bool parse_ms(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int gw_mcp_proxy_set_fanout_timeout(uint64_t ms, const char **why)
{
    static const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    if (ms == 0 || ms > GW_MCP_FANOUT_TIMEOUT_MAX_MS) {
        *why = "invalid MCP fan-out timeout (1 ms to 24 h)";
        return GW_EINVAL;
    }
    fanout_timeout_ms = ms;
    return GW_OK;
}

uint64_t gw_mcp_proxy_fanout_timeout(void)
{
    return fanout_timeout_ms;
}

int gw_mcp_proxy_setup(const char *seeds_csv, const char *allowed_origins_csv, bool warn, const char **why)
{
    static const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    const char *fo = getenv("AIGW_MCP_FANOUT_TIMEOUT_MS");
    uint64_t fanout = GW_MCP_FANOUT_TIMEOUT_MS;
    if (fo != NULL && fo[0] != '\0' && !parse_ms(fo, 1, GW_MCP_FANOUT_TIMEOUT_MAX_MS, &fanout)) {
        *why = "invalid AIGW_MCP_FANOUT_TIMEOUT_MS (milliseconds, 1 to 86400000)";
        return GW_EINVAL;
    }
    gw_mcp_session_keyring_t *kr = NULL;
    size_t kr_seeds = 0;
    if (seeds_csv != NULL && seeds_csv[0] != '\0') {
        gw_str_t seeds[GW_MCP_SESSION_MAX_SEEDS];
        size_t n = 0;
        const char *p = seeds_csv;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len > 0) {
                if (n == GW_MCP_SESSION_MAX_SEEDS) {
                    *why = "too many MCP session seeds (at most 8)";
                    return GW_EINVAL;
                }
                seeds[n++] = gw_str(p, len);
            }
            p += len;
            if (*p == ',')
                p++;
        }
        if (n == 0 || gw_mcp_session_keyring_new(seeds, n, &kr) != GW_OK) {
            *why = "invalid MCP session seeds (each at least 16 bytes, no duplicates)";
            return GW_EINVAL;
        }
        kr_seeds = n;
    } else {
        if (random_keyring(&kr) != GW_OK) {
            *why = "cannot create a random MCP session seed";
            return GW_ERROR;
        }
        if (warn)
            gw_log_warn("mcp: no session seed given (--mcp-session-seed / AIGW_MCP_SESSION_SEEDS): using a random "
                        "one, so MCP sessions do not survive a restart and do not span replicas");
    }
    gw_mcp_session_keyring_unref(keyring);
    keyring = kr;
    n_given_seeds = kr_seeds;
    fanout_timeout_ms = fanout;
    uint64_t hb;
    if (parse_ms(getenv("AIGW_MCP_HEARTBEAT_MS"), 10, 3600000, &hb))
        heartbeat_ms = hb;
    free_origins();
    if (allowed_origins_csv != NULL) {
        const char *p = allowed_origins_csv;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            while (len && p[0] == ' ') {
                p++;
                len--;
            }
            while (len && p[len - 1] == ' ')
                len--;
            if (len) {
                allowed_origins = gw_realloc(allowed_origins, (n_allowed_origins + 1) * sizeof(char *));
                allowed_origins[n_allowed_origins++] = gw_strndup(p, len);
            }
            p = e ? e + 1 : p + strlen(p);
        }
    }
    return GW_OK;
}

void gw_mcp_proxy_begin_drain(void)
{
    atomic_store(&draining, true);
}

void gw_mcp_proxy_shutdown(void)
{
    gw_mcp_session_keyring_unref(keyring);
    keyring = NULL;
    free_origins();
}

/* spec.headers: every match must hold (Exact compares the value, RegularExpression matches the
 * whole value); a header given twice is judged by its first occurrence. */
static bool headers_match(const gw_route_match_t *m, const gw_http_req_t *req)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        const gw_header_match_t *h = &m->headers[i];
        gw_str_t v = gw_http_header_find(req->headers, req->n_headers, gw_str_c(h->name));
        if (v.base == NULL)
            return false;
        if (h->type == GW_MATCH_EXACT) {
            if (!gw_str_eq(v, gw_str_c(h->value)))
                return false;
            continue;
        }
        if (h->regex == NULL)
            return false;
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(h->regex, NULL);
        if (md == NULL) {
            gw_log_error("mcp: out of memory");
            abort();
        }
        int rc = pcre2_match(h->regex, (PCRE2_SPTR)v.base, v.len, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (rc < 0)
            return false;
    }
    return true;
}

const gw_mcp_route_t *gw_mcp_route_for(const gw_config_t *c, const gw_http_req_t *req)
{
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < c->n_mcp_routes; i++)
        if (gw_str_eq(req->path, gw_str_c(c->mcp_routes[i].path)) && headers_match(&c->mcp_routes[i].match, req))
            return &c->mcp_routes[i];
    return NULL;
}

/* ---- per-request state ---------------------------------------------------------------------- */

static const char mcp_tag = 'M';
/* A request waiting for its authorization check or its well-known metadata (auth_wait_t). */
static const char auth_tag = 'A';

/* Who a request was authorized as, and the configuration snapshot its route belongs to (a
 * request that waited for its check may see a newer g->config than its route's). binding: what
 * sessions are sealed to (session_binding); client_id: the apiKeyAuth client. Both empty on
 * routes without auth. authz: the route has securityPolicy.authorization, and scopes are the
 * token's granted scopes, space-separated (tools/list shows only the tools they allow). Slices
 * valid during the call they are passed to. */
typedef struct {
    gw_config_t *config;
    gw_str_t binding;
    gw_str_t client_id;
    bool authz;
    gw_str_t scopes;
} caller_t;

typedef enum {
    OP_INIT,      /* initialize: fan out, seal a session */
    OP_LIST,      /* tools/list, prompts/list, resources/list, resources/templates/list */
    OP_ROUTED,    /* one backend by name prefix, answer relayed */
    OP_EMPTY,     /* fan out, answer {} (logging/setLevel) */
    OP_ACCEPTED,  /* notifications and client responses: forward, answer 202 */
    OP_DELETE,    /* DELETE: fan out */
    OP_STREAM,    /* GET: every backend's standalone stream fed into one client stream */
} op_t;

typedef struct mcp_req_s mcp_req_t;

typedef struct {
    mcp_req_t *r;
    const gw_mcp_backend_t *be;
    gw_buf_t sid;   /* the backend's session id: SECRET */
    gw_buf_t proto; /* protocol version negotiated with the backend */
    gw_upstream_req_t *up;
    bool active;
    int status;
    bool sse;        /* the answer is an event stream */
    bool streaming;  /* relaying that stream to the client as it arrives */
    bool paused;
    bool got_response;
    bool failed;
    const char *detail; /* static: why the leg failed */
    gw_str_t method;
    gw_buf_t req_body;
    gw_str_t send_body; /* what was sent: req_body or the client's body */
    gw_buf_t body;      /* collected answer */
    gw_buf_t response;  /* the JSON-RPC response found in it */
    gw_sse_parser_t sp;
    bool sp_init;
    cJSON *items;       /* OP_LIST: items gathered over pages */
    int pages;
    gw_buf_t event_id;  /* the backend's last SSE event id on this stream (resumption) */
    bool has_event_id;
    gw_buf_t resume_id; /* GET: the backend's Last-Event-ID from the client's composite one */
    uint64_t sent_ns, done_ns; /* the last request sent, its answer read (initialize duration) */
    int64_t retry_ms;   /* the backend stream's last retry: value, -1 before any */
    int resumes;        /* reopens of this backend's stream in a row that brought nothing new */
    uv_timer_t *reopen; /* waits the retry: time before a reopen; its own allocation, closed by
                           leg_free (the close callback frees only the handle) */
    uint64_t fanout_deadline_ns; /* fan-out legs: this backend's deadline over all its requests
                                    (every page of a list), set by the first; 0 before */
    bool timed_out;              /* a fan-out leg that failed on a timeout (that deadline, or the
                                    connect or route timeout when sooner) */
} leg_t;

typedef struct batch_s batch_t;

struct mcp_req_s {
    const void *tag; /* first member: gw_mcp_owns reads it */
    batch_t *batch;  /* a 2025-03-26 batch this message belongs to; NULL: the message is the body */
    gw_gateway_t *g;
    gw_http_req_t *http;
    gw_config_t *config;
    const gw_mcp_route_t *route;
    gw_buf_t binding;   /* caller_t.binding, sealed into the session by initialize */
    gw_buf_t client_id; /* caller_t.client_id, sent upstream in forwardClientIDHeader */
    bool authz;         /* caller_t.authz and .scopes: tools/list filtered by the tool rules */
    gw_buf_t scopes;
    op_t op;
    gw_jsonrpc_msg_t msg;
    gw_str_t body;
    gw_buf_t client_proto;
    leg_t *legs;
    size_t n_legs;
    size_t pending;
    bool head_sent;
    bool aborted;
    const char *list_key;  /* OP_LIST: "tools", ... */
    const char *name_key;  /* OP_LIST: "name", "uri" or "uriTemplate" */
    bool uri_names;        /* names are URIs: prefix "<backend>+" */
    bool filter_tools;
    uint64_t total_ms;
    /* OP_STREAM: heartbeats, the head once every backend answered, the end at the route timeout */
    uv_timer_t timer;
    bool timer_init;
    uint64_t stream_deadline_ns;
    uint64_t next_heartbeat_ns;
    bool emit_ids; /* the next event written carries the composite id (a backend sent a new one) */
    /* observability: the message's start (the request's, or a batch member's own), how the
     * gateway failed it, the session for the access log (sent, or issued by initialize: SECRET,
     * the log hashes it) and the one backend a routed message went to */
    uint64_t start_ns;
    gw_mcp_error_t error;
    gw_str_t session;
    const char *backend;
    /* OP_ROUTED: recorded in mcp/inflight while it runs, for the client's notifications/cancelled */
    gw_mcp_inflight_key_t inflight_key;
    bool inflight;
};

static const char *const supported_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

static bool version_supported(gw_str_t v)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(supported_versions); i++)
        if (gw_str_eq(v, gw_str_c(supported_versions[i])))
            return true;
    return false;
}

static void on_handle_closed(uv_handle_t *h)
{
    free(h);
}

static void leg_free(leg_t *l)
{
    if (l->reopen != NULL) {
        /* a pending reopen never fires after uv_close, and its callback is the only user of
         * the handle's data (this leg) */
        uv_close((uv_handle_t *)l->reopen, on_handle_closed);
        l->reopen = NULL;
    }
    gw_buf_free(&l->sid);
    gw_buf_free(&l->proto);
    gw_buf_free(&l->req_body);
    gw_buf_free(&l->body);
    gw_buf_free(&l->response);
    gw_buf_free(&l->event_id);
    gw_buf_free(&l->resume_id);
    if (l->sp_init)
        gw_sse_parser_free(&l->sp);
    if (l->items != NULL)
        cJSON_Delete(l->items);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void req_free(mcp_req_t *r)
{
    if (r->inflight)
        gw_mcp_inflight_remove(&r->inflight_key);
    for (size_t i = 0; i < r->n_legs; i++)
        leg_free(&r->legs[i]);
    free(r->legs);
    r->legs = NULL;
    r->n_legs = 0;
    gw_buf_free(&r->client_proto);
    gw_buf_free(&r->binding);
    gw_buf_free(&r->client_id);
    gw_buf_free(&r->scopes);
    gw_config_unref(r->config);
    r->config = NULL;
    if (r->timer_init) {
        /* the handle lives in r: r goes once libuv is done with it */
        uv_timer_stop(&r->timer);
        r->timer.data = r;
        uv_close((uv_handle_t *)&r->timer, on_timer_closed);
        return;
    }
    free(r);
}

/* ---- observability -------------------------------------------------------------------------
 * Each POSTed JSON-RPC message is counted once its answer is complete (metrics.h: MCP metrics),
 * and each request gets one access-log line with the mcp_* fields, written here instead of the
 * gateway's generic line (http->logged). Refusals by the route's authorization are neither: they
 * happen before the MCP endpoint, as in the reference, and keep the generic line. */

/* What one answer reports. Slices valid during the call they are passed to. */
typedef struct {
    bool message;         /* a POSTed JSON-RPC message: counted by gw_metrics_mcp_request */
    gw_mcp_error_t error;
    uint64_t start_ns;    /* the message's start */
    gw_str_t method;      /* as sent; empty when unknown (unparsed) or a response */
    gw_str_t id;          /* raw JSON-RPC id */
    gw_str_t session;     /* Mcp-Session-Id: SECRET, the access log writes only its hash */
    gw_str_t backend;     /* the one backend a routed message went to */
} obs_t;

static gw_str_t session_header(const gw_http_req_t *http)
{
    return gw_http_header_find(http->headers, http->n_headers, GW_STR("mcp-session-id"));
}

/* A request's observation before anything is known of its message. */
static obs_t obs_request(const gw_http_req_t *http, bool message, gw_mcp_error_t error)
{
    return (obs_t){.message = message, .error = error, .start_ns = http->start_ns, .session = session_header(http)};
}

static obs_t obs_of(const mcp_req_t *r)
{
    return (obs_t){
        .message = r->op != OP_DELETE && r->op != OP_STREAM,
        .error = r->error,
        .start_ns = r->start_ns,
        .method = r->msg.method,
        .id = r->msg.id,
        .session = r->session,
        .backend = r->backend ? gw_str_c(r->backend) : GW_STR_NULL,
    };
}

static void observe_message(gw_gateway_t *g, const obs_t *o)
{
    if (o == NULL || !o->message)
        return;
    uint64_t now = uv_hrtime();
    gw_metrics_mcp_request(g->metrics, o->method, o->error,
                           now > o->start_ns ? (double)(now - o->start_ns) / 1e9 : 0.0);
}

/* The request's access-log line; after its last body byte, before its end. */
static void log_access(gw_http_req_t *http, const obs_t *o)
{
    http->logged = true;
    if (!gw_access_log_enabled)
        return;
    uint64_t now = uv_hrtime();
    gw_access_log_entry_t e = {
        .start_time_us = http->start_wall_us,
        .method = http->method,
        .path = http->target,
        .response_code = http->status,
        .bytes_received = http->body.len,
        .bytes_sent = http->bytes_sent,
        .duration_ms = now > http->start_ns ? (now - http->start_ns) / 1000000 : 0,
        .upstream_duration_ms = -1,
        .user_agent = gw_http_header_find(http->headers, http->n_headers, GW_STR("user-agent")),
        .request_id = gw_http_header_find(http->headers, http->n_headers, GW_STR("x-request-id")),
        .downstream_remote_address = gw_str_c(gw_http_peer(http)),
        .termination_details = http->aborted ? GW_STR("client_disconnected") : GW_STR_NULL,
        .mcp_request_id = o->id,
        .mcp_session_id = o->session,
        .mcp_method = o->method,
        .mcp_backend = o->backend,
    };
    gw_access_log_write(&e);
}

/* gw_http_respond_simple with the MCP access-log line (o NULL: the gateway's generic line). */
static void answer(gw_http_req_t *http, int status, gw_str_t ctype, gw_str_t body, const gw_http_header_t *extra,
                   size_t n_extra, const obs_t *o)
{
    if (o == NULL) {
        gw_http_respond_simple(http, status, ctype, body, extra, n_extra);
        return;
    }
    gw_http_header_t h[8];
    size_t n = 0;
    if (ctype.len)
        h[n++] = (gw_http_header_t){GW_STR("Content-Type"), ctype};
    for (size_t i = 0; i < n_extra && n < GW_ARRAY_SIZE(h); i++)
        h[n++] = extra[i];
    gw_http_response_head(http, status, h, n, (int64_t)body.len);
    if (body.len)
        gw_http_response_body(http, body.base, body.len);
    log_access(http, o);
    gw_http_response_end(http);
}

/* Ends the client's response with a whole body and frees r. Only once no leg is active. */
static void batch_child_done(batch_t *b, int status, gw_str_t body);

static void respond(mcp_req_t *r, int status, gw_str_t ctype, gw_str_t body, const gw_http_header_t *extra,
                    size_t n_extra)
{
    obs_t o = obs_of(r); /* points into r: used before r is freed */
    observe_message(r->g, &o);
    if (r->batch != NULL) {
        batch_t *b = r->batch;
        r->http->data = NULL;
        req_free(r);
        batch_child_done(b, status, body); /* body is the caller's, still valid here */
        return;
    }
    gw_http_req_t *http = r->http;
    http->data = NULL;
    gw_metrics_count_request(r->g->metrics, GW_STR("mcp"), status);
    if (r->head_sent) {
        log_access(http, &o);
        gw_http_response_end(http);
    } else {
        answer(http, status, ctype, body, extra, n_extra, &o);
    }
    req_free(r);
}

/* A transport-level error: HTTP status with a JSON-RPC error body (id null), as the spec allows.
 * o: what the metrics and the access log say of the request (NULL: not an MCP message). */
static void respond_http_error_obs(gw_gateway_t *g, gw_http_req_t *req, int status, int code, const char *message,
                                   const gw_http_header_t *extra, size_t n_extra, const obs_t *o)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_jsonrpc_error(&b, GW_STR_NULL, code, message);
    observe_message(g, o);
    gw_metrics_count_request(g->metrics, GW_STR("mcp"), status);
    answer(req, status, GW_STR("application/json"), gw_buf_str(&b), extra, n_extra, o);
    gw_buf_free(&b);
}

static void respond_http_error(gw_gateway_t *g, gw_http_req_t *req, int status, int code, const char *message,
                               const gw_http_header_t *extra, size_t n_extra)
{
    respond_http_error_obs(g, req, status, code, message, extra, n_extra, NULL);
}

/* A refusal of the MCP endpoint itself, observed as o says. */
static void refuse(gw_gateway_t *g, gw_http_req_t *req, const obs_t *o, int status, int code, const char *message)
{
    respond_http_error_obs(g, req, status, code, message, NULL, 0, o);
}

/* error: how the gateway failed the message (the reference's error type). */
static void fail_http(mcp_req_t *r, gw_mcp_error_t error, int status, int code, const char *message)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_jsonrpc_error(&b, GW_STR_NULL, code, message);
    r->error = error;
    respond(r, status, GW_STR("application/json"), gw_buf_str(&b), NULL, 0);
    gw_buf_free(&b);
}

/* A protocol-level error: 200 with a JSON-RPC error for the client's id. */
static void fail_rpc(mcp_req_t *r, gw_mcp_error_t error, int code, const char *message)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_jsonrpc_error(&b, r->msg.id, code, message);
    r->error = error;
    respond(r, 200, GW_STR("application/json"), gw_buf_str(&b), NULL, 0);
    gw_buf_free(&b);
}

static void reply_result(mcp_req_t *r, gw_str_t result, const gw_http_header_t *extra, size_t n_extra)
{
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_jsonrpc_result(&b, r->msg.id, result);
    respond(r, 200, GW_STR("application/json"), gw_buf_str(&b), extra, n_extra);
    gw_buf_free(&b);
}

/* ---- backend answers ------------------------------------------------------------------------ */

/* Some servers send SSE framing under application/json (EAIGW #1997): look at the first bytes. */
static bool looks_like_sse(gw_str_t b)
{
    size_t i = 0;
    while (i < b.len && (b.base[i] == ' ' || b.base[i] == '\r' || b.base[i] == '\n' || b.base[i] == '\t'))
        i++;
    if (i == b.len)
        return false;
    gw_str_t rest = gw_str(b.base + i, b.len - i);
    static const char *const fields[] = {"data:", "event:", "id:", "retry:", ":"};
    for (size_t k = 0; k < GW_ARRAY_SIZE(fields); k++) {
        size_t n = strlen(fields[k]);
        if (rest.len >= n && memcmp(rest.base, fields[k], n) == 0)
            return true;
    }
    return false;
}

static int collect_event(void *ud, const gw_sse_event_t *ev)
{
    leg_t *l = ud;
    if (ev->data.len == 0) /* priming events carry no data (EAIGW #2219) */
        return GW_OK;
    gw_jsonrpc_msg_t m;
    if (gw_jsonrpc_parse(ev->data, &m, NULL) != GW_OK)
        return GW_OK;
    if ((m.kind == GW_JSONRPC_RESPONSE || m.kind == GW_JSONRPC_ERROR) && l->response.len == 0) {
        gw_buf_append_str(&l->response, ev->data);
        return GW_DONE;
    }
    /* Requests and notifications of a backend during a fan-out have no client stream to go to. */
    return GW_OK;
}

/* Finds the JSON-RPC response in a whole collected answer. */
static bool extract_response(leg_t *l)
{
    gw_buf_reset(&l->response);
    gw_str_t b = gw_buf_str(&l->body);
    if (l->sse || looks_like_sse(b)) {
        gw_sse_parser_t sp;
        gw_sse_parser_init(&sp, 0);
        int rc = gw_sse_feed(&sp, b.base, b.len, collect_event, l);
        if (rc == GW_OK && l->response.len == 0)
            (void)gw_sse_feed(&sp, "\n\n", 2, collect_event, l); /* an unterminated last event */
        gw_sse_parser_free(&sp);
    } else {
        gw_jsonrpc_msg_t m;
        if (gw_jsonrpc_parse(b, &m, NULL) == GW_OK && (m.kind == GW_JSONRPC_RESPONSE || m.kind == GW_JSONRPC_ERROR))
            gw_buf_append_str(&l->response, b);
    }
    return l->response.len > 0;
}

static bool response_is_error(const leg_t *l)
{
    gw_jsonrpc_msg_t m;
    return gw_jsonrpc_parse(gw_buf_str(&l->response), &m, NULL) == GW_OK && m.kind == GW_JSONRPC_ERROR;
}

/* ---- sending -------------------------------------------------------------------------------- */

static const gw_upstream_callbacks_t leg_cbs;

/* Whether r asks every backend of the session and answers once all did: those legs get the
 * fan-out deadline, so one stuck backend cannot hold the answer for the route timeout. Routed
 * messages (keep_only named their backend) and GET streams keep the route timeout. */
static bool fans_out(const mcp_req_t *r)
{
    /* OP_ACCEPTED: a notification to every backend, not one routed to its own */
    return r->op == OP_INIT || r->op == OP_LIST || r->op == OP_EMPTY || r->op == OP_DELETE ||
           (r->op == OP_ACCEPTED && r->backend == NULL);
}

static void leg_send(leg_t *l, gw_str_t method, gw_str_t body)
{
    mcp_req_t *r = l->r;
    const gw_mcp_backend_t *be = l->be;
    gw_http_header_t h[8];
    size_t n = 0;
    gw_buf_t auth;
    gw_buf_init(&auth, GW_BUF_UNLIMITED);
    /* No client header is forwarded (the gateway makes each upstream request afresh), so the
     * client's Authorization, Cookie and API-key headers never reach a backend, nor does the
     * client's target with its query parameters (the backend's own path is used). The one
     * client-derived header is the verified apiKeyAuth client id, named by forwardClientIDHeader
     * (unless the backend's own credential uses that header name). */
    const gw_mcp_api_key_auth_t *ka = r->route->api_key_auth;
    gw_buf_t fwd_storage;
    gw_buf_init(&fwd_storage, GW_BUF_UNLIMITED);
    if (r->client_id.len && ka != NULL && ka->forward_client_id_header != NULL &&
        !(be->api_key != NULL && strcmp(ka->forward_client_id_header,
                                        be->api_key_header ? be->api_key_header : "authorization") == 0)) {
        size_t nf = 0;
        if (gw_mcp_auth_forward_headers(r->route, NULL, 0, gw_buf_str(&r->client_id), h + n, 1, &nf,
                                        &fwd_storage) == GW_OK)
            n += nf;
    }
    if (method.len == 4 && memcmp(method.base, "POST", 4) == 0) {
        h[n++] = (gw_http_header_t){GW_STR("Content-Type"), GW_STR("application/json")};
        h[n++] = (gw_http_header_t){GW_STR("Accept"), GW_STR("application/json, text/event-stream")};
    }
    if (method.len == 3 && memcmp(method.base, "GET", 3) == 0)
        h[n++] = (gw_http_header_t){GW_STR("Accept"), GW_STR("text/event-stream")};
    if (l->sid.len)
        h[n++] = (gw_http_header_t){GW_STR("Mcp-Session-Id"), gw_buf_str(&l->sid)};
    if (l->resume_id.len)
        h[n++] = (gw_http_header_t){GW_STR("Last-Event-ID"), gw_buf_str(&l->resume_id)};
    if (l->proto.len)
        h[n++] = (gw_http_header_t){GW_STR("MCP-Protocol-Version"), gw_buf_str(&l->proto)};
    if (be->api_key != NULL) {
        const char *hn = be->api_key_header ? be->api_key_header : "authorization";
        if (strcmp(hn, "authorization") == 0)
            gw_buf_append_lit(&auth, "Bearer ");
        gw_buf_append(&auth, be->api_key, strlen(be->api_key));
        h[n++] = (gw_http_header_t){gw_str_c(hn), gw_buf_str(&auth)};
    }
    gw_upstream_target_t target = {
        .host = gw_str_c(be->host),
        .port = be->port,
        .tls = be->tls,
        .sni = be->sni ? gw_str_c(be->sni) : GW_STR_NULL,
        .ca_pem = be->ca_pem ? gw_str_c(be->ca_pem) : GW_STR_NULL,
    };
    gw_upstream_request_t ureq = {
        .method = method,
        .path = gw_str_c(be->path ? be->path : "/mcp"),
        .headers = h,
        .n_headers = n,
        .body = body,
    };
    /* A fan-out leg ends at its backend's deadline (or the route's, if sooner) through the
     * upstream client's own total timeout: the connection is closed and on_done reports
     * GW_UPSTREAM_ETIMEOUT, so nothing of a late answer arrives, and no timer of ours is needed. */
    uint64_t total_ms = r->total_ms;
    if (fans_out(r)) {
        uint64_t now = uv_hrtime();
        if (l->fanout_deadline_ns == 0)
            l->fanout_deadline_ns = now + fanout_timeout_ms * 1000000ull;
        /* a later page with no time left still gets 1 ms (0 would mean no timeout) */
        uint64_t left = l->fanout_deadline_ns > now ? (l->fanout_deadline_ns - now + 999999) / 1000000 : 1;
        if (left < total_ms)
            total_ms = left;
    }
    gw_upstream_timeouts_t to = {
        .connect_ms = r->g->opts ? r->g->opts->connect_timeout_ms : 0,
        .total_ms = total_ms,
        .idle_ms = 0, /* a tool may think for long between events; the total and a disconnect bound it */
    };
    l->method = method;
    l->send_body = body;
    l->status = 0;
    l->sse = false;
    l->streaming = false;
    gw_buf_reset(&l->body);
    l->active = true;
    l->sent_ns = uv_hrtime();
    l->up = gw_upstream_send(r->g->upstream, &target, &ureq, &to, &leg_cbs, l);
    if (auth.data != NULL)
        explicit_bzero(auth.data, auth.len);
    gw_buf_free(&auth);
    gw_buf_free(&fwd_storage);
}

static void start_legs(mcp_req_t *r, gw_str_t method)
{
    r->pending = r->n_legs;
    for (size_t i = 0; i < r->n_legs; i++) {
        leg_t *l = &r->legs[i];
        leg_send(l, method, l->req_body.len ? gw_buf_str(&l->req_body) : r->body);
    }
}

/* ---- streaming relay ------------------------------------------------------------------------ */

/* One SSE event carrying one JSON message. Raw CR/LF can only be whitespace in valid JSON (inside
 * strings they are escaped), so turning them into spaces keeps the message and the framing. */
/* The client's event id: every backend's last event id on this stream, "name:base64url(id)"
 * joined by ',' (names are [a-z0-9.-]), so one Last-Event-ID resumes each backend where it was.
 * Not sealed: backend event ids are no secret, and a client presenting another one only asks
 * its own backends to replay from there, which they check. */
static void composite_event_id(const mcp_req_t *r, gw_buf_t *out)
{
    bool first = true;
    for (size_t i = 0; i < r->n_legs; i++) {
        const leg_t *l = &r->legs[i];
        if (!l->has_event_id)
            continue;
        if (!first)
            gw_buf_append_byte(out, ',');
        first = false;
        gw_buf_append(out, l->be->name, strlen(l->be->name));
        gw_buf_append_byte(out, ':');
        gw_base64_encode(GW_BASE64_URL, l->event_id.data, l->event_id.len, out);
    }
}

/* Spreads a client's Last-Event-ID over the legs; entries that do not parse, or name a backend
 * not in the session, are ignored (the backend then starts a fresh stream). */
static void apply_resume_id(mcp_req_t *r, gw_str_t v)
{
    size_t i = 0;
    while (i < v.len) {
        size_t e = i;
        while (e < v.len && v.base[e] != ',')
            e++;
        const char *colon = memchr(v.base + i, ':', e - i);
        if (colon != NULL) {
            gw_str_t name = gw_str(v.base + i, (size_t)(colon - (v.base + i)));
            for (size_t k = 0; k < r->n_legs; k++) {
                leg_t *l = &r->legs[k];
                if (!gw_str_eq(name, gw_str_c(l->be->name)))
                    continue;
                gw_buf_reset(&l->resume_id);
                const char *b = colon + 1;
                if (gw_base64_decode(GW_BASE64_URL, b, (size_t)(v.base + e - b), &l->resume_id) != GW_OK ||
                    memchr(l->resume_id.data, '\n', l->resume_id.len) || memchr(l->resume_id.data, '\r', l->resume_id.len) ||
                    memchr(l->resume_id.data, '\0', l->resume_id.len)) {
                    gw_buf_reset(&l->resume_id);
                    continue;
                }
                /* the client's position is this backend's position until it sends more */
                gw_buf_reset(&l->event_id);
                gw_buf_append_str(&l->event_id, gw_buf_str(&l->resume_id));
                l->has_event_id = l->event_id.len > 0;
            }
        }
        i = e + 1;
    }
}

static void stream_send_head(mcp_req_t *r);

static void write_event(mcp_req_t *r, gw_str_t json)
{
    /* GET: a backend with something to say starts the client stream even while another backend
     * has not answered its GET yet */
    if (r->op == OP_STREAM && !r->head_sent)
        stream_send_head(r);
    gw_buf_t ev;
    gw_buf_init(&ev, GW_BUF_UNLIMITED);
    if (r->emit_ids) {
        gw_buf_append_lit(&ev, "id: ");
        composite_event_id(r, &ev);
        gw_buf_append_byte(&ev, '\n');
        r->emit_ids = false;
    }
    gw_buf_append_lit(&ev, "event: message\ndata: ");
    char *p = gw_buf_reserve(&ev, json.len);
    for (size_t i = 0; i < json.len; i++)
        p[i] = json.base[i] == '\r' || json.base[i] == '\n' ? ' ' : json.base[i];
    gw_buf_commit(&ev, json.len);
    gw_buf_append_lit(&ev, "\n\n");
    gw_http_response_body(r->http, ev.data, ev.len);
    gw_buf_free(&ev);
}

static bool prefixed(const mcp_req_t *r);

/* ---- resource URIs in backend messages -------------------------------------------------------
 * On a route whose names are prefixed, a URI a backend hands the client must name the backend
 * the way resources/list does ("<backend>+<uri>"), or the client could not read it back through
 * the gateway. The prefix goes in right after each URI string's opening quote, so no other byte
 * of the message changes (the string's own escapes included). */

typedef struct {
    size_t *at; /* offsets into the message just past a URI string's opening quote, ascending */
    size_t n, cap;
} uri_marks_t;

static void mark_uri(uri_marks_t *m, gw_str_t doc, gw_str_t raw)
{
    if (gw_json_type(raw) != GW_JSON_STRING)
        return;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4;
        m->at = gw_realloc(m->at, m->cap * sizeof(*m->at));
    }
    m->at[m->n++] = (size_t)(raw.base - doc.base) + 1;
}

static void mark_member_uri(uri_marks_t *m, gw_str_t doc, gw_str_t obj)
{
    gw_str_t v;
    if (gw_json_type(obj) == GW_JSON_OBJECT && gw_json_object_get(obj, GW_STR("uri"), &v) == GW_OK)
        mark_uri(m, doc, v);
}

/* A content block (a tools/call content[] item, a prompt message's content): a resource_link's
 * uri, an embedded resource's resource.uri. */
static void mark_content(uri_marks_t *m, gw_str_t doc, gw_str_t block)
{
    gw_str_t type, res;
    if (gw_json_type(block) != GW_JSON_OBJECT || gw_json_object_get(block, GW_STR("type"), &type) != GW_OK ||
        gw_json_type(type) != GW_JSON_STRING)
        return;
    if (gw_json_key_eq(type, GW_STR("resource_link")))
        mark_member_uri(m, doc, block);
    else if (gw_json_key_eq(type, GW_STR("resource")) && gw_json_object_get(block, GW_STR("resource"), &res) == GW_OK)
        mark_member_uri(m, doc, res);
}

/* The URIs a routed call's result hands out: tools/call content[], prompts/get messages[].content,
 * resources/read contents[].uri. A tool's structuredContent is its own data, described by its own
 * output schema: left as it is. result: the result object inside doc (validated). */
static void mark_result_uris(uri_marks_t *m, gw_str_t method, gw_str_t doc, gw_str_t result)
{
    enum { CONTENT, MESSAGES, CONTENTS } kind;
    gw_str_t key;
    if (gw_str_eq_lit(method, "tools/call")) {
        kind = CONTENT;
        key = GW_STR("content");
    } else if (gw_str_eq_lit(method, "prompts/get")) {
        kind = MESSAGES;
        key = GW_STR("messages");
    } else if (gw_str_eq_lit(method, "resources/read")) {
        kind = CONTENTS;
        key = GW_STR("contents");
    } else {
        return;
    }
    gw_str_t arr, el, c;
    if (gw_json_type(result) != GW_JSON_OBJECT || gw_json_object_get(result, key, &arr) != GW_OK ||
        gw_json_type(arr) != GW_JSON_ARRAY)
        return;
    size_t pos = 0;
    while (gw_json_array_next(arr, &pos, &el) == GW_OK) {
        if (kind == CONTENT)
            mark_content(m, doc, el);
        else if (kind == CONTENTS)
            mark_member_uri(m, doc, el);
        else if (gw_json_type(el) == GW_JSON_OBJECT && gw_json_object_get(el, GW_STR("content"), &c) == GW_OK)
            mark_content(m, doc, c);
    }
}

/* Appends doc with "<backend>+" inserted at every mark and, when new_id is not empty, the
 * JSON-RPC id slice (inside doc, outside every URI string) replaced by new_id. GW_OK, GW_EINVAL
 * for marks out of order or out of doc, GW_TOOBIG past out's cap; out is unchanged on failure. */
static int write_marked(gw_str_t doc, const uri_marks_t *m, const char *backend, gw_str_t id, gw_str_t new_id,
                        gw_buf_t *out)
{
    gw_buf_t name, prefix;
    gw_buf_init(&name, GW_BUF_UNLIMITED);
    gw_buf_init(&prefix, GW_BUF_UNLIMITED);
    gw_buf_append(&name, backend, strlen(backend));
    gw_buf_append_byte(&name, '+');
    int rc = gw_json_append_string(&prefix, name.data, name.len); /* escaped, between its quotes */
    gw_str_t ins = gw_str(prefix.data + 1, prefix.len >= 2 ? prefix.len - 2 : 0);
    size_t len0 = out->len;
    bool id_left = new_id.len > 0;
    size_t id_at = id_left ? (size_t)(id.base - doc.base) : 0;
    size_t cur = 0;
    for (size_t k = 0; rc == GW_OK && k <= m->n; k++) {
        size_t at = k < m->n ? m->at[k] : doc.len;
        if (id_left && id_at <= at) {
            if (id_at < cur || id_at + id.len > at) {
                rc = GW_EINVAL;
                break;
            }
            rc = gw_buf_append(out, doc.base + cur, id_at - cur);
            if (rc == GW_OK)
                rc = gw_buf_append_str(out, new_id);
            cur = id_at + id.len;
            id_left = false;
        }
        if (rc != GW_OK || at < cur || at > doc.len) {
            rc = rc != GW_OK ? rc : GW_EINVAL;
            break;
        }
        rc = gw_buf_append(out, doc.base + cur, at - cur);
        cur = at;
        if (rc == GW_OK && k < m->n)
            rc = gw_buf_append_str(out, ins);
    }
    if (rc != GW_OK)
        out->len = len0;
    gw_buf_free(&name);
    gw_buf_free(&prefix);
    return rc;
}

/* notifications/resources/updated names the backend's own URI; the client subscribed to
 * "<backend>+<uri>" and must recognise it (and tell two backends' URIs apart), so the update
 * carries the prefixed URI. false (message left as it is) when it has no string params.uri. */
static bool prefix_uri(const leg_t *l, gw_str_t json, gw_buf_t *out)
{
    gw_str_t raw;
    if (gw_json_path_get(json, "params.uri", &raw) != GW_OK || gw_json_type(raw) != GW_JSON_STRING)
        return false;
    size_t at = (size_t)(raw.base - json.base) + 1;
    uri_marks_t m = {.at = &at, .n = 1, .cap = 1};
    return write_marked(json, &m, l->be->name, GW_STR_NULL, GW_STR_NULL, out) == GW_OK;
}

/* Appends a backend's answer to a routed call as the client gets it: with the client's id and,
 * on a route with prefixed names, the resource URIs of its result prefixed. m: msg parsed. */
static int routed_answer(const mcp_req_t *r, const leg_t *l, gw_str_t msg, const gw_jsonrpc_msg_t *m, gw_buf_t *out)
{
    uri_marks_t marks = {0};
    if (prefixed(r) && m->kind == GW_JSONRPC_RESPONSE)
        mark_result_uris(&marks, r->msg.method, msg, m->result);
    int rc;
    if (marks.n == 0)
        rc = gw_jsonrpc_replace_id(msg, m, r->msg.id, out);
    else if (m->id.len == 0 || r->msg.id.len == 0)
        rc = GW_EINVAL;
    else
        rc = write_marked(msg, &marks, l->be->name, m->id, r->msg.id, out);
    free(marks.at);
    return rc;
}

static int stream_event(void *ud, const gw_sse_event_t *ev)
{
    leg_t *l = ud;
    mcp_req_t *r = l->r;
    bool new_id = false;
    if (ev->has_id && ev->id.len && !gw_str_eq(ev->id, gw_buf_str(&l->event_id))) {
        new_id = true;
        gw_buf_reset(&l->event_id);
        if (gw_buf_append_str(&l->event_id, ev->id) == GW_OK) {
            l->has_event_id = true;
            r->emit_ids = true;
            if (r->op == OP_ROUTED)
                l->resumes = 0; /* the call moves on in the backend's store: a later cut may be resumed */
        } else {
            l->has_event_id = false; /* too long to carry: that backend is not resumable */
        }
    }
    if (ev->data.len == 0)
        return GW_OK; /* a priming event: its id rides on the next event */
    gw_jsonrpc_msg_t m;
    if (gw_jsonrpc_parse(ev->data, &m, NULL) != GW_OK) {
        gw_log_debug("mcp: backend %s sent an event that is not a JSON-RPC message; dropped", l->be->name);
        return GW_OK;
    }
    /* On the GET stream a message moves the stream on, so a later end may be reopened again: a
     * message with a new event id, or any message from a backend that sends no ids. A priming
     * event alone does not count (a backend that ends every stream at once with a fresh id is not
     * reopened forever), nor does a message replayed under an id already seen. A routed call moves
     * on with a new event id only (above). */
    if (r->op == OP_STREAM && (new_id || !l->has_event_id))
        l->resumes = 0;
    gw_buf_t out, id;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    gw_buf_init(&id, GW_BUF_UNLIMITED);
    switch (m.kind) {
    case GW_JSONRPC_REQUEST:
        /* sampling / elicitation / roots: the client's answer must find this backend again, and
         * so must the client's progress notifications for the request's progress token */
        if (gw_jsonrpc_id_wrap(gw_str_c(l->be->name), m.id, &id) == GW_OK &&
            gw_jsonrpc_replace_id(ev->data, &m, gw_buf_str(&id), &out) == GW_OK) {
            gw_str_t tok;
            gw_buf_t wrapped, spliced;
            gw_buf_init(&wrapped, GW_BUF_UNLIMITED);
            gw_buf_init(&spliced, GW_BUF_UNLIMITED);
            if (gw_json_path_get(gw_buf_str(&out), "params._meta.progressToken", &tok) == GW_OK &&
                gw_jsonrpc_id_wrap(gw_str_c(l->be->name), tok, &wrapped) == GW_OK &&
                gw_json_splice(gw_buf_str(&out), tok, gw_buf_str(&wrapped), &spliced) == GW_OK)
                write_event(r, gw_buf_str(&spliced));
            else
                write_event(r, gw_buf_str(&out));
            gw_buf_free(&wrapped);
            gw_buf_free(&spliced);
        } else {
            gw_log_debug("mcp: backend %s sent a request whose id cannot be wrapped; dropped", l->be->name);
        }
        break;
    case GW_JSONRPC_RESPONSE:
    case GW_JSONRPC_ERROR:
        if (r->op == OP_STREAM) {
            /* only a resumed POST stream puts responses here; their ids are the client's own */
            write_event(r, ev->data);
            break;
        }
        if (l->got_response)
            break;
        l->got_response = true;
        if (routed_answer(r, l, ev->data, &m, &out) == GW_OK)
            write_event(r, gw_buf_str(&out));
        break;
    case GW_JSONRPC_NOTIFICATION:
        if (gw_str_eq_lit(m.method, "notifications/progress"))
            gw_metrics_mcp_progress(r->g->metrics);
        if (prefixed(r) && gw_str_eq_lit(m.method, "notifications/resources/updated") &&
            prefix_uri(l, ev->data, &out))
            write_event(r, gw_buf_str(&out));
        else
            write_event(r, ev->data);
        break;
    }
    gw_buf_free(&out);
    gw_buf_free(&id);
    if (gw_http_over_high_water(r->http) && !l->paused && l->up != NULL) {
        l->paused = true;
        gw_upstream_pause(l->up);
    }
    return GW_OK;
}

/* ---- completion of each operation ----------------------------------------------------------- */

static void finish(mcp_req_t *r);
static void batch_free(batch_t *b);
static bool stream_maybe_start(mcp_req_t *r, leg_t *self);

/* A backend that no longer knows the session it gave: 404, as the spec says, or 400 with a
 * JSON-RPC error for no request that names the session, which is what server-everything and the
 * servers built from the SDK's examples answer ("Bad Request: No valid session ID provided").
 * The gateway sent that backend's own id with a request it made itself, so nothing else about
 * the request can be wrong there. Only answers whose body was kept (not GET streams) are read. */
static bool leg_session_gone(const leg_t *l)
{
    if (l->sid.len == 0)
        return false;
    if (l->status == 404)
        return true;
    if (l->status != 400 || l->body.len == 0 || l->body.len > 4096)
        return false;
    cJSON *j = cJSON_ParseWithLength(l->body.data, l->body.len);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    bool gone = cJSON_IsObject(err) && (id == NULL || cJSON_IsNull(id)) && cJSON_IsString(msg) &&
                strcasestr(msg->valuestring, "session") != NULL;
    cJSON_Delete(j);
    return gone;
}

static bool any_session_gone(const mcp_req_t *r)
{
    for (size_t i = 0; i < r->n_legs; i++)
        if (leg_session_gone(&r->legs[i]))
            return true;
    return false;
}

static int leg_on_head(void *ud, int status, const gw_http_header_t *headers, size_t n_headers)
{
    leg_t *l = ud;
    mcp_req_t *r = l->r;
    l->status = status;
    gw_str_t ct = gw_http_header_find(headers, n_headers, GW_STR("content-type"));
    l->sse = ct.len >= 17 && gw_str_case_eq(gw_str(ct.base, 17), GW_STR("text/event-stream"));
    if (r->op == OP_INIT && status == 200) {
        gw_str_t sid = gw_http_header_find(headers, n_headers, GW_STR("mcp-session-id"));
        gw_buf_reset(&l->sid);
        if (sid.len > GW_MCP_SESSION_MAX_BACKEND_SID) {
            l->failed = true;
            l->detail = "session id too long";
        } else {
            gw_buf_append_str(&l->sid, sid);
        }
    }
    if (r->op == OP_STREAM) {
        l->streaming = status == 200 && l->sse;
        if (l->streaming) {
            if (l->sp_init) /* a reopened stream starts a fresh parse */
                gw_sse_parser_free(&l->sp);
            gw_sse_parser_init(&l->sp, 0);
            l->sp_init = true;
        }
        l->got_response = true; /* "answered": counts for the head */
        /* r and l are gone when the response ended; the error return cancels this leg */
        return stream_maybe_start(r, l) ? GW_ERROR : GW_OK;
    }
    if (r->op == OP_ROUTED && status == 200 && l->sse && !r->aborted && r->batch == NULL) {
        if (!r->head_sent) { /* a resumed stream goes on in the client's stream */
            gw_http_header_t h[] = {
                {GW_STR("Content-Type"), GW_STR("text/event-stream")},
                {GW_STR("Cache-Control"), GW_STR("no-cache")},
            };
            gw_http_response_head(r->http, 200, h, GW_ARRAY_SIZE(h), -1);
            r->head_sent = true;
        }
        l->streaming = true;
        if (l->sp_init)
            gw_sse_parser_free(&l->sp);
        gw_sse_parser_init(&l->sp, 0);
        l->sp_init = true;
    }
    return GW_OK;
}

static int leg_on_body(void *ud, const char *p, size_t n)
{
    leg_t *l = ud;
    if (l->r->op == OP_STREAM && !l->streaming)
        return GW_OK; /* a 405 or an error body: nothing for the client */
    if (l->streaming) {
        int rc = gw_sse_feed(&l->sp, p, n, stream_event, l);
        if (rc != GW_OK) {
            l->failed = true;
            l->detail = "malformed event stream";
        }
        if (l->sp.retry_ms >= 0)
            l->retry_ms = l->sp.retry_ms;
        return GW_OK;
    }
    if (gw_buf_append(&l->body, p, n) != GW_OK) {
        /* Too large to merge: give up on this backend rather than buffer without bound. */
        l->failed = true;
        l->detail = "answer too large";
        return GW_ERROR;
    }
    return GW_OK;
}

static void leg_done(leg_t *l, int status, const char *detail);

static void leg_on_done(void *ud, int status, const char *detail)
{
    leg_t *l = ud;
    l->up = NULL;
    leg_done(l, status, detail);
}

static const gw_upstream_callbacks_t leg_cbs = {leg_on_head, leg_on_body, leg_on_done};

/* The body of the next page request, or false when the list is complete. */
static bool next_page(leg_t *l, const cJSON *result)
{
    const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(result, "nextCursor");
    if (!cJSON_IsString(cursor) || cursor->valuestring[0] == '\0' || l->pages >= GW_MCP_MAX_PAGES)
        return false;
    mcp_req_t *r = l->r;
    gw_buf_reset(&l->req_body);
    gw_buf_append_lit(&l->req_body, "{\"jsonrpc\":\"2.0\",\"id\":");
    gw_buf_append_str(&l->req_body, r->msg.id);
    gw_buf_append_lit(&l->req_body, ",\"method\":");
    gw_json_append_string(&l->req_body, r->msg.method.base, r->msg.method.len);
    gw_buf_append_lit(&l->req_body, ",\"params\":{\"cursor\":");
    gw_json_append_string(&l->req_body, cursor->valuestring, strlen(cursor->valuestring));
    gw_buf_append_lit(&l->req_body, "}}");
    return true;
}

/* OP_LIST: takes this page's items; true when another page was requested. */
static bool list_page(leg_t *l)
{
    mcp_req_t *r = l->r;
    gw_jsonrpc_msg_t m;
    if (gw_jsonrpc_parse(gw_buf_str(&l->response), &m, NULL) != GW_OK || m.kind != GW_JSONRPC_RESPONSE) {
        l->failed = true;
        l->detail = "error answer";
        return false;
    }
    cJSON *res = cJSON_ParseWithLength(m.result.base, m.result.len);
    cJSON *arr = res ? cJSON_GetObjectItemCaseSensitive(res, r->list_key) : NULL;
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(res);
        l->failed = true;
        l->detail = "list result without its array";
        return false;
    }
    if (l->items == NULL)
        l->items = cJSON_CreateArray();
    while (cJSON_GetArraySize(arr) > 0)
        cJSON_AddItemToArray(l->items, cJSON_DetachItemFromArray(arr, 0));
    l->pages++;
    bool more = next_page(l, res);
    cJSON_Delete(res);
    if (more)
        leg_send(l, GW_STR("POST"), gw_buf_str(&l->req_body));
    return more;
}

static void on_resume_timer(uv_timer_t *t)
{
    leg_t *l = t->data;
    mcp_req_t *r = l->r;
    if (r->aborted || (r->op == OP_STREAM && atomic_load(&draining)))
        return; /* the request ends (its tick ends a draining GET stream) and frees the timer */
    gw_buf_reset(&l->resume_id);
    if (l->has_event_id)
        gw_buf_append_str(&l->resume_id, gw_buf_str(&l->event_id));
    l->paused = false;
    if (r->op == OP_STREAM)
        r->pending++; /* leg_done counts it off again */
    leg_send(l, GW_STR("GET"), GW_STR_NULL);
}

/* Reopens, with GET and the backend's Last-Event-ID when it sent an event id, a backend stream
 * that the gateway relays and that ended, after the backend's retry: time (1 s when none, at most
 * 30 s). Two streams take it:
 * - a routed call's, the 2025-11-25 polling pattern: once a backend sent an event id (its priming
 *   event, with retry:), it may end a POST stream before the answer and expect a GET with
 *   Last-Event-ID after its retry time; the rest of the stream, answer included, comes on that
 *   GET. The gateway makes that GET itself, so the client keeps its one stream and needs no
 *   support for polling. A cut stream with an id resumes the same way.
 * - the GET stream, whichever way an established backend stream ended, so that the client keeps
 *   hearing that backend.
 * No loops: reopens that bring nothing new (a new event id on a routed call, a message on the
 * GET stream) are bounded, and a reopen answered by anything but an event stream is the last
 * (leg_done then finds the leg not streaming). True when the leg goes on later. */
static bool resume_later(leg_t *l)
{
    mcp_req_t *r = l->r;
    if (r->aborted || !l->streaming || l->resumes >= GW_MCP_MAX_RESUMES)
        return false;
    if (r->op == OP_ROUTED && !l->has_event_id)
        return false; /* nothing to resume from */
    if (r->op != OP_ROUTED && (r->op != OP_STREAM || atomic_load(&draining)))
        return false; /* a draining gateway ends its GET streams */
    l->resumes++;
    l->failed = false;
    l->detail = NULL;
    uint64_t delay = l->retry_ms >= 0 ? (uint64_t)l->retry_ms : GW_MCP_RESUME_DEFAULT_MS;
    if (delay > GW_MCP_RESUME_MAX_MS)
        delay = GW_MCP_RESUME_MAX_MS;
    /* A GET stream is reopened no faster than GW_MCP_REOPEN_MIN_MS (retry: 0 is no reason to hammer
     * a backend), and a backend without event ids, whose messages cannot tell new from replayed,
     * no faster than the default: a backend that says one thing and ends costs a request a second
     * at most. */
    if (r->op == OP_STREAM && delay < (l->has_event_id ? GW_MCP_REOPEN_MIN_MS : GW_MCP_RESUME_DEFAULT_MS))
        delay = l->has_event_id ? GW_MCP_REOPEN_MIN_MS : GW_MCP_RESUME_DEFAULT_MS;
    if (l->reopen == NULL) {
        l->reopen = gw_calloc(1, sizeof(*l->reopen));
        uv_timer_init(r->g->loop, l->reopen);
    }
    l->reopen->data = l;
    uv_timer_start(l->reopen, on_resume_timer, delay, 0);
    return true;
}

/* A fan-out leg that timed out: treated as any failed leg, and said so (the upstream client's
 * detail tells the fan-out deadline, "total timeout", from a connect timeout). */
static void log_fanout_timeout(const mcp_req_t *r, const leg_t *l)
{
    const char *what = r->op == OP_DELETE ? "DELETE" : r->msg.method_buf;
    const char *outcome = r->op == OP_INIT   ? "left out of the session"
                          : r->op == OP_LIST ? "its items are missing from the merged answer"
                                             : "answered without it";
    gw_log_warn("mcp: route %s backend %s: %s timed out (%s; fan-out timeout %llu ms); %s", r->route->name, l->be->name,
                what, l->detail, (unsigned long long)GW_MIN(fanout_timeout_ms, r->total_ms), outcome);
}

static void leg_done(leg_t *l, int status, const char *detail)
{
    mcp_req_t *r = l->r;
    l->active = false;
    l->done_ns = uv_hrtime();
    if (r->op == OP_STREAM) {
        /* An established backend stream that ends is reopened (resume_later); one that never
         * was (405, 202, stateless servers, errors), or a reopen refused, is not asked again: no
         * retry loops (EAIGW #1980, Kuadrant #1382). The client stream stays open on heartbeats. */
        l->got_response = true;
        r->pending--;
        if (!resume_later(l) && !r->aborted && l->resumes > 0 && !atomic_load(&draining)) {
            if (l->streaming)
                gw_log_warn("mcp: route %s backend %s: GET stream reopened %d times in a row without a message; "
                            "not reopened again",
                            r->route->name, l->be->name, l->resumes);
            else
                gw_log_warn("mcp: route %s backend %s: GET stream not reopened (HTTP %d)", r->route->name, l->be->name,
                            l->status);
        }
        l->streaming = false;
        (void)stream_maybe_start(r, NULL);
        return;
    }
    if (status != GW_UPSTREAM_OK) {
        l->failed = true;
        l->detail = detail ? detail : "upstream failure";
        l->timed_out = status == GW_UPSTREAM_ETIMEOUT && fans_out(r);
    }
    /* relaying to the client: this connection's stream, or a resumed one that did not start */
    if (l->streaming || (r->op == OP_ROUTED && r->head_sent && r->batch == NULL)) {
        if (!l->got_response && resume_later(l))
            return; /* still pending */
        if (!l->got_response && !l->streaming && !l->failed) {
            l->failed = true;
            l->detail = "stream not resumed";
        }
        if (!l->got_response) {
            /* The stream ended without the answer: the client still gets one for its id. */
            gw_buf_t b;
            gw_buf_init(&b, GW_BUF_UNLIMITED);
            gw_jsonrpc_error(&b, r->msg.id, GW_JSONRPC_INTERNAL_ERROR, "MCP backend stream ended before the response");
            write_event(r, gw_buf_str(&b));
            gw_buf_free(&b);
        }
    } else if (!l->failed) {
        if (r->op == OP_ACCEPTED || r->op == OP_DELETE) {
            /* the status is all that matters */
        } else if (!extract_response(l) || (l->status != 200 && !(r->op == OP_ROUTED && response_is_error(l)))) {
            /* a routed call's JSON-RPC error travels even under a 4xx/5xx status: the client
             * learns the backend's reason instead of a generic failure */
            l->failed = true;
            l->detail = l->status != 200 ? "unexpected HTTP status" : "no JSON-RPC response in the answer";
        } else if (r->op == OP_LIST && list_page(l)) {
            return; /* the next page is on its way */
        }
    }
    if (l->failed && !r->aborted && l->timed_out)
        log_fanout_timeout(r, l);
    else if (l->failed && !r->aborted)
        gw_log_warn("mcp: route %s backend %s: %s (HTTP %d)", r->route->name, l->be->name, l->detail, l->status);
    if (--r->pending == 0)
        finish(r);
}

static void merge_caps(cJSON *dst, const cJSON *src)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, src)
    {
        if (it->string == NULL)
            continue;
        cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, it->string);
        if (d == NULL)
            cJSON_AddItemToObject(dst, it->string, cJSON_Duplicate(it, 1));
        else if (cJSON_IsObject(d) && cJSON_IsObject(it))
            merge_caps(d, it);
        else if (cJSON_IsFalse(d) && cJSON_IsTrue(it))
            cJSON_ReplaceItemInObjectCaseSensitive(dst, it->string, cJSON_CreateTrue());
    }
}

static void finish_init(mcp_req_t *r)
{
    cJSON *caps = cJSON_CreateObject();
    gw_buf_t instructions;
    gw_buf_init(&instructions, GW_BUF_UNLIMITED);
    gw_mcp_session_backend_t *sb = gw_calloc(r->n_legs ? r->n_legs : 1, sizeof(*sb));
    size_t n_ok = 0;
    for (size_t i = 0; i < r->n_legs; i++) {
        leg_t *l = &r->legs[i];
        if (l->failed)
            continue;
        gw_jsonrpc_msg_t m;
        cJSON *res = NULL;
        if (gw_jsonrpc_parse(gw_buf_str(&l->response), &m, NULL) == GW_OK && m.kind == GW_JSONRPC_RESPONSE)
            res = cJSON_ParseWithLength(m.result.base, m.result.len);
        const cJSON *pv = res ? cJSON_GetObjectItemCaseSensitive(res, "protocolVersion") : NULL;
        if (!cJSON_IsString(pv) || strlen(pv->valuestring) > GW_MCP_SESSION_MAX_PROTOCOL) {
            gw_log_warn("mcp: route %s backend %s: initialize failed; left out of the session", r->route->name,
                        l->be->name);
            l->failed = true;
            cJSON_Delete(res);
            continue;
        }
        gw_buf_reset(&l->proto);
        gw_buf_append(&l->proto, pv->valuestring, strlen(pv->valuestring));
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(res, "capabilities");
        if (cJSON_IsObject(c))
            merge_caps(caps, c);
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(res, "instructions");
        if (cJSON_IsString(ins) && ins->valuestring[0]) {
            if (instructions.len)
                gw_buf_append_lit(&instructions, "\n\n");
            gw_buf_append(&instructions, ins->valuestring, strlen(ins->valuestring));
        }
        cJSON_Delete(res);
        gw_metrics_mcp_initialization(r->g->metrics,
                                      l->done_ns > l->sent_ns ? (double)(l->done_ns - l->sent_ns) / 1e9 : 0.0);
        sb[n_ok++] = (gw_mcp_session_backend_t){
            .name = gw_str_c(l->be->name),
            .protocol_version = gw_buf_str(&l->proto),
            .session_id = gw_buf_str(&l->sid),
        };
    }
    /* The gateway routes no "tasks/..." method (they answer -32601): a backend's tasks capability
     * passed on would invite task-augmented calls whose tasks nobody could then poll. */
    cJSON_DeleteItemFromObjectCaseSensitive(caps, "tasks");
    if (n_ok == 0) {
        free(sb);
        cJSON_Delete(caps);
        gw_buf_free(&instructions);
        fail_rpc(r, GW_MCP_ERR_INTERNAL, GW_JSONRPC_INTERNAL_ERROR,
                 "no MCP backend of this route could be initialized");
        return;
    }
    gw_mcp_session_t s = {
        .route = gw_str_c(r->route->name),
        .subject = gw_buf_str(&r->binding), /* empty on routes without auth */
        .protocol_version = gw_buf_str(&r->client_proto),
        .issued_at = (int64_t)time(NULL),
        .backends = sb,
        .n_backends = n_ok,
    };
    gw_buf_t sid;
    gw_buf_init(&sid, GW_MCP_SESSION_MAX_ID_LEN);
    int rc = gw_mcp_session_seal(keyring, &s, &sid);
    free(sb);
    if (rc != GW_OK) {
        cJSON_Delete(caps);
        gw_buf_free(&instructions);
        gw_buf_free(&sid);
        fail_rpc(r, GW_MCP_ERR_INTERNAL, GW_JSONRPC_INTERNAL_ERROR, "cannot create the MCP session");
        return;
    }
    cJSON *result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "protocolVersion", gw_buf_cstr(&r->client_proto));
    cJSON_AddItemToObject(result, "capabilities", caps);
    cJSON *info = cJSON_AddObjectToObject(result, "serverInfo");
    cJSON_AddStringToObject(info, "name", "aigw");
    cJSON_AddStringToObject(info, "version", AIGW_VERSION);
    if (instructions.len)
        cJSON_AddStringToObject(result, "instructions", gw_buf_cstr(&instructions));
    char *text = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    gw_buf_free(&instructions);
    gw_str_t answered_caps;
    if (gw_json_object_get(gw_str_c(text), GW_STR("capabilities"), &answered_caps) == GW_OK)
        gw_metrics_mcp_capabilities(r->g->metrics, GW_MCP_SIDE_SERVER, answered_caps);
    r->session = gw_buf_str(&sid); /* the access log hashes the id just issued */
    gw_http_header_t h = {GW_STR("Mcp-Session-Id"), gw_buf_str(&sid)};
    reply_result(r, gw_str_c(text), &h, 1);
    free(text);
    gw_buf_free(&sid);
}

/* ---- GET: the standalone stream ------------------------------------------------------------ */

/* Cancels every backend stream but self (a leg inside its own callback cancels itself by its
 * return value). */
static void stream_end(mcp_req_t *r, leg_t *self)
{
    for (size_t i = 0; i < r->n_legs; i++) {
        leg_t *l = &r->legs[i];
        if (l != self && l->active && l->up != NULL)
            gw_upstream_cancel(l->up);
        l->up = NULL;
        l->active = false;
        if (l->reopen != NULL)
            uv_timer_stop(l->reopen); /* closed with the leg */
    }
    r->pending = 0;
}

static void stream_send_head(mcp_req_t *r)
{
    gw_http_header_t h[] = {
        {GW_STR("Content-Type"), GW_STR("text/event-stream")},
        {GW_STR("Cache-Control"), GW_STR("no-cache")},
    };
    gw_http_response_head(r->http, 200, h, GW_ARRAY_SIZE(h), -1);
    r->head_sent = true;
    /* a comment first, so proxies and clients see the stream open at once */
    static const char open_comment[] = ": aigw\n\n";
    gw_http_response_body(r->http, open_comment, sizeof(open_comment) - 1);
}

/* The client's head waits until every backend answered its GET, so that a backend that no
 * longer knows the session turns into a 404 instead of an empty stream. */
static bool stream_maybe_start(mcp_req_t *r, leg_t *self)
{
    if (r->head_sent || r->aborted)
        return false;
    for (size_t i = 0; i < r->n_legs; i++)
        if (!r->legs[i].got_response)
            return false;
    if (any_session_gone(r)) {
        stream_end(r, self);
        fail_http(r, GW_MCP_ERR_INVALID_SESSION_ID, 404, GW_JSONRPC_SERVER_ERROR, "Session not found");
        return true;
    }
    stream_send_head(r);
    return false;
}

static void on_stream_timer(uv_timer_t *t)
{
    mcp_req_t *r = t->data;
    if (r->aborted)
        return;
    if (!r->head_sent)
        stream_send_head(r); /* a backend slow to answer its GET does not hold the others back */
    uint64_t now = uv_hrtime();
    if ((r->stream_deadline_ns && now >= r->stream_deadline_ns) || atomic_load(&draining)) {
        /* the route timeout or a draining gateway: the client reconnects (elsewhere) */
        stream_end(r, NULL);
        respond(r, 200, GW_STR_NULL, GW_STR_NULL, NULL, 0);
        return;
    }
    if (now >= r->next_heartbeat_ns) {
        r->next_heartbeat_ns = now + heartbeat_ms * 1000000ull;
        static const char keepalive[] = ": keepalive\n\n";
        gw_http_response_body(r->http, keepalive, sizeof(keepalive) - 1);
    }
}

static void start_stream(mcp_req_t *r)
{
    uv_timer_init(r->g->loop, &r->timer);
    r->timer_init = true;
    r->timer.data = r;
    r->stream_deadline_ns = uv_hrtime() + r->total_ms * 1000000ull;
    /* ticks often enough to notice a drain; heartbeats go out every heartbeat_ms */
    uint64_t tick = GW_MIN(heartbeat_ms, GW_MCP_STREAM_TICK_MS);
    r->next_heartbeat_ns = uv_hrtime() + heartbeat_ms * 1000000ull;
    uv_timer_start(&r->timer, on_stream_timer, tick, tick);
    if (r->n_legs == 0) {
        stream_send_head(r);
        return;
    }
    r->pending = r->n_legs;
    for (size_t i = 0; i < r->n_legs; i++)
        leg_send(&r->legs[i], GW_STR("GET"), GW_STR_NULL);
}

static bool prefixed(const mcp_req_t *r)
{
    /* aigw extension: a route with one backend exposes the backend's names as they are */
    return r->route->n_backends > 1;
}

/* Whether the space-separated granted list holds scope. */
static bool scope_granted(gw_str_t granted, gw_str_t scope)
{
    size_t i = 0;
    while (i < granted.len) {
        size_t j = i;
        while (j < granted.len && granted.base[j] != ' ')
            j++;
        if (gw_str_eq(gw_str(granted.base + i, j - i), scope))
            return true;
        i = j + 1;
    }
    return false;
}

/* tools/list: whether the caller's token holds the scopes of every authorization rule matching
 * the tool's name as the client will see it (prefixed on a route with several backends), so
 * that a listed tool is one the caller may call. scratch: any buffer (reset here). */
static bool tool_scopes_held(const mcp_req_t *r, const gw_mcp_backend_t *be, gw_str_t tool, gw_buf_t *scratch)
{
    const gw_mcp_authorization_t *z = r->route->authorization;
    if (z == NULL || z->n_tools == 0)
        return true;
    gw_str_t visible = tool;
    if (prefixed(r)) {
        gw_buf_reset(scratch);
        gw_buf_append(scratch, be->name, strlen(be->name));
        gw_buf_append_lit(scratch, "__");
        gw_buf_append_str(scratch, tool);
        visible = gw_buf_str(scratch);
    }
    for (size_t i = 0; i < z->n_tools; i++) {
        const gw_mcp_tool_scopes_t *rule = &z->tools[i];
        if (!gw_mcp_tool_rule_matches(rule, visible))
            continue;
        for (size_t k = 0; k < rule->n_scopes; k++)
            if (!scope_granted(gw_buf_str(&r->scopes), gw_str_c(rule->scopes[k])))
                return false;
    }
    return true;
}

static void finish_list(mcp_req_t *r)
{
    cJSON *out = cJSON_CreateArray();
    size_t n_ok = 0;
    gw_buf_t name;
    gw_buf_init(&name, GW_BUF_UNLIMITED);
    for (size_t i = 0; i < r->n_legs; i++) {
        leg_t *l = &r->legs[i];
        if (l->failed || l->items == NULL)
            continue;
        n_ok++;
        int n = cJSON_GetArraySize(l->items);
        for (int k = 0; k < n; k++) {
            cJSON *item = cJSON_GetArrayItem(l->items, k);
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(item, r->name_key);
            if (!cJSON_IsString(nm))
                continue;
            const char *s = nm->valuestring;
            if (r->filter_tools && !gw_mcp_tool_allowed(l->be, gw_str_c(s)))
                continue;
            if (r->filter_tools && r->authz && !tool_scopes_held(r, l->be, gw_str_c(s), &name))
                continue;
            bool dup = false;
            for (int j = 0; j < k && !dup; j++) {
                const cJSON *o = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(l->items, j), r->name_key);
                dup = cJSON_IsString(o) && strcmp(o->valuestring, s) == 0;
            }
            if (dup) {
                gw_log_warn("mcp: route %s backend %s lists a duplicate %s entry; dropped", r->route->name, l->be->name,
                            r->list_key);
                continue;
            }
            cJSON *copy = cJSON_Duplicate(item, 1);
            if (prefixed(r)) {
                gw_buf_reset(&name);
                gw_buf_append(&name, l->be->name, strlen(l->be->name));
                if (r->uri_names)
                    gw_buf_append_byte(&name, '+');
                else
                    gw_buf_append_lit(&name, "__");
                gw_buf_append(&name, s, strlen(s));
                cJSON_ReplaceItemInObjectCaseSensitive(copy, r->name_key, cJSON_CreateString(gw_buf_cstr(&name)));
            }
            cJSON_AddItemToArray(out, copy);
        }
    }
    gw_buf_free(&name);
    if (n_ok == 0 && r->n_legs > 0) {
        cJSON_Delete(out);
        fail_rpc(r, GW_MCP_ERR_INTERNAL, GW_JSONRPC_INTERNAL_ERROR, "every MCP backend of this session failed");
        return;
    }
    cJSON *result = cJSON_CreateObject();
    cJSON_AddItemToObject(result, r->list_key, out);
    char *text = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    reply_result(r, gw_str_c(text), NULL, 0);
    free(text);
}

static void finish_routed(mcp_req_t *r)
{
    leg_t *l = &r->legs[0];
    if (l->streaming || r->head_sent) {
        if (!l->got_response)
            r->error = GW_MCP_ERR_INTERNAL; /* the client got the gateway's error event instead */
        respond(r, 200, GW_STR_NULL, GW_STR_NULL, NULL, 0);
        return;
    }
    if (l->failed) {
        char msg[256];
        snprintf(msg, sizeof(msg), "MCP backend %s failed: %s", l->be->name, l->detail ? l->detail : "error");
        fail_rpc(r, GW_MCP_ERR_INTERNAL, GW_JSONRPC_INTERNAL_ERROR, msg);
        return;
    }
    gw_jsonrpc_msg_t m;
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    if (gw_jsonrpc_parse(gw_buf_str(&l->response), &m, NULL) != GW_OK ||
        routed_answer(r, l, gw_buf_str(&l->response), &m, &out) != GW_OK) {
        gw_buf_free(&out);
        fail_rpc(r, GW_MCP_ERR_INTERNAL, GW_JSONRPC_INTERNAL_ERROR,
                 "MCP backend answered with a malformed message");
        return;
    }
    respond(r, 200, GW_STR("application/json"), gw_buf_str(&out), NULL, 0);
    gw_buf_free(&out);
}

/* A message the client gets a plain success for (202, {}) although a backend it was forwarded
 * to could not be reached or failed: the gateway's failure, counted as internal_error. */
static bool any_leg_failed(const mcp_req_t *r)
{
    for (size_t i = 0; i < r->n_legs; i++)
        if (r->legs[i].failed)
            return true;
    return false;
}

static void finish(mcp_req_t *r)
{
    if (r->aborted) {
        /* the client is gone: nothing to write, the server still needs the end */
        gw_http_req_t *http = r->http;
        batch_t *b = r->batch;
        /* unanswered, as the reference counts a cancelled request; a stream that already carried
         * the answer was served */
        if (!(r->op == OP_ROUTED && r->n_legs && r->legs[0].got_response))
            r->error = GW_MCP_ERR_INTERNAL;
        obs_t o = obs_of(r);
        observe_message(r->g, &o);
        if (b != NULL)
            o = obs_request(http, false, GW_MCP_OK); /* the line is the whole batch's */
        log_access(http, &o);
        http->data = NULL;
        req_free(r);
        if (b != NULL)
            batch_free(b);
        gw_http_response_end(http);
        return;
    }
    /* A backend that no longer knows its session (deleted, expired, restarted): the composite
     * session is dead, the client must initialize again. */
    if (r->op != OP_INIT && !r->head_sent && any_session_gone(r)) {
        fail_http(r, GW_MCP_ERR_INVALID_SESSION_ID, 404, GW_JSONRPC_SERVER_ERROR, "Session not found");
        return;
    }
    switch (r->op) {
    case OP_INIT:
        finish_init(r);
        return;
    case OP_LIST:
        finish_list(r);
        return;
    case OP_ROUTED:
        finish_routed(r);
        return;
    case OP_EMPTY:
        r->error = any_leg_failed(r) ? GW_MCP_ERR_INTERNAL : GW_MCP_OK;
        reply_result(r, GW_STR("{}"), NULL, 0);
        return;
    case OP_ACCEPTED:
        r->error = any_leg_failed(r) ? GW_MCP_ERR_INTERNAL : GW_MCP_OK;
        respond(r, 202, GW_STR_NULL, GW_STR_NULL, NULL, 0);
        return;
    case OP_DELETE:
        respond(r, 200, GW_STR_NULL, GW_STR_NULL, NULL, 0);
        return;
    case OP_STREAM:
        respond(r, 200, GW_STR_NULL, GW_STR_NULL, NULL, 0);
        return;
    }
}

/* ---- request intake ------------------------------------------------------------------------- */

static bool origin_allowed(gw_str_t origin)
{
    for (size_t i = 0; i < n_allowed_origins; i++)
        if (gw_str_case_eq(origin, gw_str_c(allowed_origins[i])))
            return true;
    /* scheme://host[:port] with a loopback host; anything else could be a DNS-rebinding page */
    const char *sep = memmem(origin.base, origin.len, "://", 3);
    if (sep == NULL)
        return false;
    gw_str_t rest = gw_str(sep + 3, origin.len - (size_t)(sep + 3 - origin.base));
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(hosts); i++) {
        size_t n = strlen(hosts[i]);
        if (rest.len >= n && gw_str_case_eq(gw_str(rest.base, n), gw_str(hosts[i], n)) &&
            (rest.len == n || rest.base[n] == ':'))
            return true;
    }
    return false;
}

static bool header_lists(gw_str_t value, const char *type)
{
    size_t n = strlen(type);
    for (size_t i = 0; i + n <= value.len; i++)
        if (gw_str_case_eq(gw_str(value.base + i, n), gw_str(type, n)))
            return true;
    return false;
}

static mcp_req_t *req_new(gw_gateway_t *g, gw_http_req_t *http, const caller_t *c, const gw_mcp_route_t *route,
                          op_t op)
{
    mcp_req_t *r = gw_calloc(1, sizeof(*r));
    r->tag = &mcp_tag;
    r->g = g;
    r->http = http;
    r->config = gw_config_ref(c->config);
    r->route = route;
    gw_buf_init(&r->binding, GW_BUF_UNLIMITED);
    gw_buf_append_str(&r->binding, c->binding);
    gw_buf_init(&r->client_id, GW_BUF_UNLIMITED);
    gw_buf_append_str(&r->client_id, c->client_id);
    r->authz = c->authz;
    gw_buf_init(&r->scopes, GW_BUF_UNLIMITED);
    gw_buf_append_str(&r->scopes, c->scopes);
    r->op = op;
    r->body = gw_buf_str(&http->body);
    gw_buf_init(&r->client_proto, GW_MCP_SESSION_MAX_PROTOCOL);
    r->total_ms = g->opts && g->opts->request_timeout_ms ? g->opts->request_timeout_ms : GW_MCP_DEFAULT_TIMEOUT_MS;
    r->start_ns = http->start_ns;
    r->session = session_header(http);
    http->data = r;
    return r;
}

static const gw_mcp_backend_t *route_backend(const gw_mcp_route_t *route, gw_str_t name)
{
    for (size_t i = 0; i < route->n_backends; i++)
        if (gw_str_eq(name, gw_str_c(route->backends[i].name)))
            return &route->backends[i];
    return NULL;
}

static void leg_init(leg_t *l, mcp_req_t *r, const gw_mcp_backend_t *be)
{
    l->r = r;
    l->be = be;
    gw_buf_init(&l->sid, GW_MCP_SESSION_MAX_BACKEND_SID);
    gw_buf_init(&l->proto, GW_MCP_SESSION_MAX_PROTOCOL);
    gw_buf_init(&l->req_body, GW_BUF_UNLIMITED);
    gw_buf_init(&l->body, GW_MCP_MAX_BACKEND_BODY);
    gw_buf_init(&l->response, GW_BUF_UNLIMITED);
    gw_buf_init(&l->event_id, GW_MCP_MAX_EVENT_ID);
    gw_buf_init(&l->resume_id, GW_MCP_MAX_EVENT_ID);
    l->retry_ms = -1;
}

/* One leg per backend of the session that the current config still has. */
static void legs_from_session(mcp_req_t *r, const gw_mcp_session_t *s)
{
    r->legs = gw_calloc(s->n_backends ? s->n_backends : 1, sizeof(leg_t));
    for (size_t i = 0; i < s->n_backends; i++) {
        const gw_mcp_backend_t *be = route_backend(r->route, s->backends[i].name);
        if (be == NULL)
            continue; /* removed from the route by a reload: its tools are gone */
        leg_t *l = &r->legs[r->n_legs++];
        leg_init(l, r, be);
        gw_buf_append_str(&l->sid, s->backends[i].session_id);
        gw_buf_append_str(&l->proto, s->backends[i].protocol_version);
    }
}

static leg_t *leg_by_name(mcp_req_t *r, gw_str_t name)
{
    for (size_t i = 0; i < r->n_legs; i++)
        if (gw_str_eq(name, gw_str_c(r->legs[i].be->name)))
            return &r->legs[i];
    return NULL;
}

/* Keeps only leg l (routed calls). */
static void keep_only(mcp_req_t *r, leg_t *l)
{
    if (l != &r->legs[0]) {
        leg_t tmp = r->legs[0];
        r->legs[0] = *l;
        *l = tmp;
    }
    for (size_t i = 1; i < r->n_legs; i++)
        leg_free(&r->legs[i]);
    r->n_legs = 1;
    r->backend = r->legs[0].be->name;
}

/* The in-flight key of request id in r's session (the client's Mcp-Session-Id as it was sent). */
static bool request_key(const mcp_req_t *r, gw_str_t id, gw_mcp_inflight_key_t *k)
{
    gw_str_t sid = gw_http_header_find(r->http->headers, r->http->n_headers, GW_STR("mcp-session-id"));
    if (sid.len == 0 || id.len == 0)
        return false;
    gw_mcp_inflight_key(gw_str_c(r->route->name), sid, id, k);
    return true;
}

/* tools/call, prompts/get, resources/read and (un)subscribe, completion/complete: find the backend from the prefixed
 * name and forward the request with the backend's own name. */
static void start_routed(mcp_req_t *r)
{
    gw_str_t m = r->msg.method;
    const char *path = NULL, *what = "tool";
    bool uri = false;
    gw_str_t body = r->body;
    while (body.len && (body.base[0] == ' ' || body.base[0] == '\n' || body.base[0] == '\r' || body.base[0] == '\t')) {
        body.base++;
        body.len--;
    }
    if (gw_str_eq_lit(m, "tools/call")) {
        path = "params.name";
    } else if (gw_str_eq_lit(m, "prompts/get")) {
        path = "params.name";
        what = "prompt";
    } else if (gw_str_eq_lit(m, "completion/complete")) {
        gw_str_t t;
        if (gw_json_path_get(body, "params.ref.type", &t) == GW_OK && gw_str_eq_lit(t, "\"ref/resource\"")) {
            path = "params.ref.uri";
            uri = true;
            what = "resource";
        } else {
            path = "params.ref.name";
            what = "prompt";
        }
    } else {
        path = "params.uri";
        uri = true;
        what = "resource";
    }
    char msg[200];
    gw_str_t raw;
    gw_buf_t name;
    gw_buf_init(&name, 64 * 1024);
    if (gw_json_path_get(body, path, &raw) != GW_OK || gw_json_type(raw) != GW_JSON_STRING ||
        gw_json_string_unescape(raw, &name) != GW_OK) {
        gw_buf_free(&name);
        snprintf(msg, sizeof(msg), "missing or invalid %s", path);
        fail_rpc(r, GW_MCP_ERR_INVALID_PARAM, GW_JSONRPC_INVALID_PARAMS, msg);
        return;
    }
    leg_t *l = NULL;
    gw_str_t local = gw_buf_str(&name);
    if (!prefixed(r)) {
        l = r->n_legs ? &r->legs[0] : NULL;
    } else {
        const char *sep = uri ? memchr(name.data, '+', name.len) : memmem(name.data, name.len, "__", 2);
        if (sep != NULL) {
            l = leg_by_name(r, gw_str(name.data, (size_t)(sep - name.data)));
            size_t skip = (size_t)(sep - name.data) + (uri ? 1 : 2);
            local = gw_str(name.data + skip, name.len - skip);
        }
    }
    if (l == NULL || local.len == 0 || (gw_str_eq_lit(m, "tools/call") && !gw_mcp_tool_allowed(l->be, local))) {
        gw_buf_free(&name);
        snprintf(msg, sizeof(msg), "Unknown %s", what);
        fail_rpc(r, GW_MCP_ERR_INVALID_PARAM, GW_JSONRPC_INVALID_PARAMS, msg);
        return;
    }
    keep_only(r, l);
    l = &r->legs[0];
    gw_buf_t repl;
    gw_buf_init(&repl, GW_BUF_UNLIMITED);
    gw_json_append_string(&repl, local.base, local.len);
    gw_json_splice(body, raw, gw_buf_str(&repl), &l->req_body);
    gw_buf_free(&repl);
    gw_buf_free(&name);
    if (request_key(r, r->msg.id, &r->inflight_key))
        r->inflight = gw_mcp_inflight_add(&r->inflight_key, gw_str_c(l->be->name));
    start_legs(r, GW_STR("POST"));
}

/* A client's answer to a backend's request: the id names the backend (gw_jsonrpc_id_wrap). */
static void start_client_response(mcp_req_t *r)
{
    gw_buf_t owner, orig;
    gw_buf_init(&owner, 1024);
    gw_buf_init(&orig, GW_JSONRPC_MAX_ID);
    leg_t *l = NULL;
    if (gw_jsonrpc_id_unwrap(r->msg.id, &owner, &orig) == GW_OK)
        l = leg_by_name(r, gw_buf_str(&owner));
    if (l == NULL) {
        gw_buf_free(&owner);
        gw_buf_free(&orig);
        fail_http(r, GW_MCP_ERR_UNSUPPORTED_RESPONSE, 400, GW_JSONRPC_INVALID_REQUEST,
                  "response to an unknown request");
        return;
    }
    keep_only(r, l);
    l = &r->legs[0];
    gw_jsonrpc_replace_id(r->body, &r->msg, gw_buf_str(&orig), &l->req_body);
    gw_buf_free(&owner);
    gw_buf_free(&orig);
    start_legs(r, GW_STR("POST"));
}

/* notifications/cancelled for a routed request in flight in this process: to the backend running
 * it, and no other (a cancel is no business of the rest). A request not found (finished, a list
 * fanned out to all, served by another replica) leaves the cancel to every backend, which ignore
 * request ids they do not know. The client's ids are the backend's ids on routed calls, so the
 * message goes as it is. */
static bool route_cancel(mcp_req_t *r)
{
    gw_str_t id;
    gw_mcp_inflight_key_t k;
    char name[GW_MCP_INFLIGHT_NAME_MAX + 1];
    if (r->msg.params.len == 0 || gw_json_object_get(r->msg.params, GW_STR("requestId"), &id) != GW_OK ||
        !request_key(r, id, &k) || !gw_mcp_inflight_find(&k, name))
        return false;
    leg_t *l = leg_by_name(r, gw_str_c(name));
    if (l == NULL)
        return false;
    keep_only(r, l);
    start_legs(r, GW_STR("POST"));
    return true;
}

/* notifications/progress whose token the gateway wrapped: to its backend, token restored. */
static bool route_progress(mcp_req_t *r)
{
    gw_str_t tok;
    if (r->msg.params.len == 0 || gw_json_object_get(r->msg.params, GW_STR("progressToken"), &tok) != GW_OK)
        return false;
    gw_buf_t owner, orig;
    gw_buf_init(&owner, 1024);
    gw_buf_init(&orig, GW_JSONRPC_MAX_ID);
    leg_t *l = NULL;
    if (gw_jsonrpc_id_unwrap(tok, &owner, &orig) == GW_OK)
        l = leg_by_name(r, gw_buf_str(&owner));
    if (l != NULL) {
        keep_only(r, l);
        l = &r->legs[0];
        gw_json_splice(r->body, tok, gw_buf_str(&orig), &l->req_body);
    }
    gw_buf_free(&owner);
    gw_buf_free(&orig);
    if (l == NULL)
        return false;
    start_legs(r, GW_STR("POST"));
    return true;
}

static void start_list(mcp_req_t *r, const char *key, const char *name_key, bool uri, bool tools)
{
    r->op = OP_LIST;
    r->list_key = key;
    r->name_key = name_key;
    r->uri_names = uri;
    r->filter_tools = tools;
    for (size_t i = 0; i < r->n_legs; i++) {
        leg_t *l = &r->legs[i];
        gw_buf_append_lit(&l->req_body, "{\"jsonrpc\":\"2.0\",\"id\":");
        gw_buf_append_str(&l->req_body, r->msg.id);
        gw_buf_append_lit(&l->req_body, ",\"method\":");
        gw_json_append_string(&l->req_body, r->msg.method.base, r->msg.method.len);
        gw_buf_append_lit(&l->req_body, ",\"params\":{}}");
    }
    if (r->n_legs == 0) {
        finish(r);
        return;
    }
    start_legs(r, GW_STR("POST"));
}

static void dispatch(mcp_req_t *r);
static void handle_batch(gw_gateway_t *g, gw_http_req_t *req, const caller_t *c, const gw_mcp_route_t *route,
                         gw_str_t pv);

/* A POST refused on its headers: the body is read only now, so that the metrics and the log
 * still name the method (and id) when it is one JSON-RPC message. */
static void refuse_unread(gw_gateway_t *g, gw_http_req_t *req, obs_t *o, int status, const char *message)
{
    gw_jsonrpc_msg_t msg;
    if (gw_jsonrpc_parse(gw_buf_str(&req->body), &msg, NULL) == GW_OK) {
        o->method = msg.method;
        o->id = msg.id;
    }
    refuse(g, req, o, status, GW_JSONRPC_SERVER_ERROR, message);
}

static void handle_post(gw_gateway_t *g, gw_http_req_t *req, const caller_t *c, const gw_mcp_route_t *route)
{
    const gw_http_header_t *hs = req->headers;
    size_t nh = req->n_headers;
    gw_str_t accept = gw_http_header_find(hs, nh, GW_STR("accept"));
    bool wildcard = header_lists(accept, "*/*");
    /* Refused on Accept or Content-Type: not a JSON-RPC message this transport takes. */
    obs_t o = obs_request(req, true, GW_MCP_ERR_INVALID_JSON_RPC);
    if (!wildcard && (!header_lists(accept, "application/json") || !header_lists(accept, "text/event-stream"))) {
        refuse_unread(g, req, &o, 406, "Not Acceptable: Accept must list application/json and text/event-stream");
        return;
    }
    gw_str_t ct = gw_http_header_find(hs, nh, GW_STR("content-type"));
    if (ct.len < 16 || !gw_str_case_eq(gw_str(ct.base, 16), GW_STR("application/json")) ||
        (ct.len > 16 && ct.base[16] != ';' && ct.base[16] != ' ')) {
        refuse_unread(g, req, &o, 415, "Unsupported Media Type: Content-Type must be application/json");
        return;
    }
    gw_str_t pv = gw_http_header_find(hs, nh, GW_STR("mcp-protocol-version"));
    if (pv.base != NULL && !version_supported(pv)) {
        o.error = GW_MCP_ERR_UNSUPPORTED_PROTOCOL_VERSION;
        refuse_unread(g, req, &o, 400,
                      "Bad Request: Unsupported protocol version (supported versions: 2025-11-25, 2025-06-18, "
                      "2025-03-26)");
        return;
    }
    gw_str_t body = gw_buf_str(&req->body);
    if (gw_jsonrpc_is_batch(body)) {
        handle_batch(g, req, c, route, pv);
        return;
    }
    gw_jsonrpc_msg_t msg;
    const char *why = NULL;
    int rc = gw_jsonrpc_parse(body, &msg, &why);
    if (rc != GW_OK) {
        bool parse = why != NULL && strcmp(why, "parse error") == 0;
        refuse(g, req, &o, rc == GW_TOOBIG ? 413 : 400, parse ? GW_JSONRPC_PARSE_ERROR : GW_JSONRPC_INVALID_REQUEST,
               why ? why : "invalid JSON-RPC message");
        return;
    }
    o.method = msg.method;
    o.id = msg.id;

    if (msg.kind == GW_JSONRPC_REQUEST && gw_str_eq_lit(msg.method, "initialize")) {
        mcp_req_t *r = req_new(g, req, c, route, OP_INIT);
        r->msg = msg;
        r->msg.method = gw_str(r->msg.method_buf, msg.method.len);
        gw_str_t caps;
        if (msg.params.len && gw_json_object_get(msg.params, GW_STR("capabilities"), &caps) == GW_OK)
            gw_metrics_mcp_capabilities(g->metrics, GW_MCP_SIDE_CLIENT, caps);
        gw_str_t want;
        gw_buf_t v;
        gw_buf_init(&v, GW_MCP_SESSION_MAX_PROTOCOL);
        if (gw_json_path_get(msg.params.len ? msg.params : GW_STR("{}"), "protocolVersion", &want) == GW_OK &&
            gw_json_type(want) == GW_JSON_STRING && gw_json_string_unescape(want, &v) == GW_OK &&
            version_supported(gw_buf_str(&v)))
            gw_buf_append_str(&r->client_proto, gw_buf_str(&v));
        else
            gw_buf_append(&r->client_proto, supported_versions[0], strlen(supported_versions[0]));
        gw_buf_free(&v);
        r->legs = gw_calloc(route->n_backends ? route->n_backends : 1, sizeof(leg_t));
        r->n_legs = route->n_backends;
        for (size_t i = 0; i < route->n_backends; i++)
            leg_init(&r->legs[i], r, &route->backends[i]);
        if (r->n_legs == 0) {
            finish(r);
            return;
        }
        /* The client's own initialize goes to each backend, so its capabilities and requested
         * version reach them and each negotiates for itself. */
        start_legs(r, GW_STR("POST"));
        return;
    }

    gw_str_t sid = gw_http_header_find(hs, nh, GW_STR("mcp-session-id"));
    o.error = GW_MCP_ERR_INVALID_SESSION_ID;
    if (sid.base == NULL || sid.len == 0) {
        refuse(g, req, &o, 400, GW_JSONRPC_SERVER_ERROR, "Bad Request: Mcp-Session-Id header is required");
        return;
    }
    pthread_once(&default_once, default_keyring);
    gw_mcp_session_t s;
    gw_mcp_session_expect_t exp = {
        .route = gw_str_c(route->name),
        .subject = c->binding,
        .now = (int64_t)time(NULL),
        .max_age = GW_MCP_SESSION_MAX_AGE_S,
    };
    rc = gw_mcp_session_open(keyring, sid, &exp, &s);
    if (rc != GW_OK) {
        gw_log_debug("mcp: route %s: session refused: %s", route->name, gw_mcp_session_strerror(rc));
        refuse(g, req, &o, 404, GW_JSONRPC_SERVER_ERROR, "Session not found");
        return;
    }
    mcp_req_t *r = req_new(g, req, c, route, OP_ACCEPTED);
    r->msg = msg;
    r->msg.method = gw_str(r->msg.method_buf, msg.method.len);
    gw_buf_append_str(&r->client_proto, s.protocol_version);
    legs_from_session(r, &s);
    gw_mcp_session_free(&s);
    dispatch(r);
}

/* One message of an open session: r holds the message, its body and a leg per backend. */
static void dispatch(mcp_req_t *r)
{
    switch (r->msg.kind) {
    case GW_JSONRPC_NOTIFICATION:
        /* initialized, roots/list_changed...: every backend of the session gets it. A cancel
         * goes to the backend running the request it names, progress for a backend's request
         * to that backend only, with its own token. */
        r->op = OP_ACCEPTED;
        if (gw_str_eq_lit(r->msg.method, "notifications/progress") && r->n_legs > 0) {
            gw_metrics_mcp_progress(r->g->metrics); /* forwarded: to its backend, else to all */
            if (route_progress(r))
                return;
        }
        if (gw_str_eq_lit(r->msg.method, "notifications/cancelled") && route_cancel(r))
            return;
        if (r->n_legs == 0) {
            finish(r);
            return;
        }
        start_legs(r, GW_STR("POST"));
        return;
    case GW_JSONRPC_RESPONSE:
    case GW_JSONRPC_ERROR:
        r->op = OP_ACCEPTED;
        start_client_response(r);
        return;
    case GW_JSONRPC_REQUEST:
        break;
    }
    gw_str_t m = r->msg.method;
    if (gw_str_eq_lit(m, "ping")) {
        r->op = OP_EMPTY;
        for (size_t i = 0; i < r->n_legs; i++)
            leg_free(&r->legs[i]);
        r->n_legs = 0;
        reply_result(r, GW_STR("{}"), NULL, 0);
    } else if (gw_str_eq_lit(m, "tools/list")) {
        start_list(r, "tools", "name", false, true);
    } else if (gw_str_eq_lit(m, "prompts/list")) {
        start_list(r, "prompts", "name", false, false);
    } else if (gw_str_eq_lit(m, "resources/list")) {
        start_list(r, "resources", "uri", true, false);
    } else if (gw_str_eq_lit(m, "resources/templates/list")) {
        start_list(r, "resourceTemplates", "uriTemplate", true, false);
    } else if (gw_str_eq_lit(m, "tools/call") || gw_str_eq_lit(m, "prompts/get") ||
               gw_str_eq_lit(m, "resources/read") || gw_str_eq_lit(m, "resources/subscribe") ||
               gw_str_eq_lit(m, "resources/unsubscribe") || gw_str_eq_lit(m, "completion/complete")) {
        r->op = OP_ROUTED;
        start_routed(r);
    } else if (gw_str_eq_lit(m, "logging/setLevel")) {
        r->op = OP_EMPTY;
        if (r->n_legs == 0) {
            finish(r);
            return;
        }
        start_legs(r, GW_STR("POST"));
    } else {
        char msgbuf[GW_JSONRPC_MAX_METHOD + 32];
        snprintf(msgbuf, sizeof(msgbuf), "Method not found: %s", r->msg.method_buf);
        fail_rpc(r, GW_MCP_ERR_UNSUPPORTED_METHOD, GW_JSONRPC_METHOD_NOT_FOUND, msgbuf);
    }
}

/* ---- 2025-03-26 batches ----------------------------------------------------------------------
 * Only that revision has them (2025-06-18 removed them). The messages run one after the other as
 * children of the batch, each exactly as if it had been POSTed alone but answered as JSON (no
 * streaming inside a batch); the answers to its requests form the array the client gets. */

struct batch_s {
    gw_gateway_t *g;
    gw_http_req_t *http;
    gw_config_t *config; /* holds route while no member runs */
    const gw_mcp_route_t *route;
    gw_buf_t binding, client_id; /* the caller's, for each member */
    bool authz;                  /* and caller_t.authz, .scopes */
    gw_buf_t scopes;
    gw_mcp_session_t sess;
    gw_str_t items[GW_MCP_MAX_BATCH];
    size_t n_items, next;
    gw_buf_t out; /* "[" answer, answer ... */
    size_t n_out;
    bool gone;    /* a backend lost the session: the whole batch is a 404 */
};

static void batch_free(batch_t *b)
{
    gw_mcp_session_free(&b->sess);
    gw_buf_free(&b->out);
    gw_buf_free(&b->binding);
    gw_buf_free(&b->client_id);
    gw_buf_free(&b->scopes);
    gw_config_unref(b->config);
    free(b);
}

static void batch_next(batch_t *b);

/* Members the gateway did not run (the batch refused, or cut short by a lost session), each
 * counted with its own method as failed with error; their answer is the batch's. */
static void count_members(gw_gateway_t *g, const gw_str_t *items, size_t n, gw_mcp_error_t error, uint64_t start_ns)
{
    for (size_t i = 0; i < n; i++) {
        gw_jsonrpc_msg_t msg;
        obs_t o = {.message = true, .error = error, .start_ns = start_ns};
        if (gw_jsonrpc_parse(items[i], &msg, NULL) == GW_OK)
            o.method = msg.method;
        observe_message(g, &o);
    }
}

static void batch_child_done(batch_t *b, int status, gw_str_t body)
{
    if (status == 404)
        b->gone = true;
    else if (status == 200 && body.len) {
        gw_buf_append_byte(&b->out, b->n_out++ ? ',' : '[');
        gw_buf_append_str(&b->out, body);
    }
    batch_next(b);
}

static void batch_next(batch_t *b)
{
    while (b->next < b->n_items && !b->gone) {
        gw_str_t item = b->items[b->next++];
        gw_jsonrpc_msg_t msg;
        const char *why = NULL;
        bool parsed = gw_jsonrpc_parse(item, &msg, &why) == GW_OK;
        if (!parsed || (msg.kind == GW_JSONRPC_REQUEST && gw_str_eq_lit(msg.method, "initialize"))) {
            /* JSON-RPC: an invalid member gets its own error answer, id null */
            obs_t o = {.message = true, .error = GW_MCP_ERR_INVALID_JSON_RPC, .start_ns = uv_hrtime(),
                       .method = parsed ? msg.method : GW_STR_NULL};
            observe_message(b->g, &o);
            gw_buf_append_byte(&b->out, b->n_out++ ? ',' : '[');
            gw_jsonrpc_error(&b->out, GW_STR_NULL, GW_JSONRPC_INVALID_REQUEST,
                             why ? why : "initialize cannot be part of a batch");
            continue;
        }
        caller_t c = {b->config, gw_buf_str(&b->binding), gw_buf_str(&b->client_id), b->authz, gw_buf_str(&b->scopes)};
        mcp_req_t *r = req_new(b->g, b->http, &c, b->route, OP_ACCEPTED);
        r->batch = b;
        r->body = item;
        r->msg = msg;
        r->msg.method = gw_str(r->msg.method_buf, msg.method.len);
        r->start_ns = uv_hrtime(); /* each member is timed on its own */
        gw_buf_append_str(&r->client_proto, b->sess.protocol_version);
        legs_from_session(r, &b->sess);
        dispatch(r); /* answers now or later through respond -> batch_child_done -> here */
        return;
    }
    gw_http_req_t *http = b->http;
    gw_gateway_t *g = b->g;
    http->data = NULL;
    /* the members were counted one by one; the line is the whole batch's (no one method or id) */
    obs_t o = obs_request(http, false, GW_MCP_OK);
    if (b->gone) {
        count_members(g, b->items + b->next, b->n_items - b->next, GW_MCP_ERR_INVALID_SESSION_ID, http->start_ns);
        batch_free(b);
        respond_http_error_obs(g, http, 404, GW_JSONRPC_SERVER_ERROR, "Session not found", NULL, 0, &o);
        return;
    }
    if (b->n_out == 0) {
        batch_free(b);
        gw_metrics_count_request(g->metrics, GW_STR("mcp"), 202);
        answer(http, 202, GW_STR_NULL, GW_STR_NULL, NULL, 0, &o);
        return;
    }
    gw_buf_append_byte(&b->out, ']');
    gw_metrics_count_request(g->metrics, GW_STR("mcp"), 200);
    answer(http, 200, GW_STR("application/json"), gw_buf_str(&b->out), NULL, 0, &o);
    batch_free(b);
}

/* A batch refused as a whole: each member it holds counts as failed with error (one sample
 * without a method when the body is no batch that splits). */
static void refuse_batch(gw_gateway_t *g, gw_http_req_t *req, gw_mcp_error_t error, int status, int code,
                         const char *message)
{
    gw_str_t items[GW_MCP_MAX_BATCH];
    size_t n = 0;
    obs_t o = obs_request(req, true, error);
    if (gw_jsonrpc_batch_split(gw_buf_str(&req->body), items, GW_MCP_MAX_BATCH, &n) == GW_OK && n > 0) {
        count_members(g, items, n, error, req->start_ns);
        o.message = false;
    }
    refuse(g, req, &o, status, code, message);
}

static void handle_batch(gw_gateway_t *g, gw_http_req_t *req, const caller_t *c, const gw_mcp_route_t *route,
                         gw_str_t pv)
{
    if (pv.base != NULL && !gw_str_eq_lit(pv, "2025-03-26")) {
        refuse_batch(g, req, GW_MCP_ERR_UNSUPPORTED_PROTOCOL_VERSION, 400, GW_JSONRPC_INVALID_REQUEST,
                     "JSON-RPC batches exist only in protocol revision 2025-03-26");
        return;
    }
    gw_str_t body = gw_buf_str(&req->body);
    gw_str_t items[GW_MCP_MAX_BATCH];
    size_t n_items = 0;
    int rc = gw_jsonrpc_batch_split(body, items, GW_MCP_MAX_BATCH, &n_items);
    if (rc != GW_OK || n_items == 0) {
        bool parse = rc == GW_EINVAL;
        obs_t o = obs_request(req, true, GW_MCP_ERR_INVALID_JSON_RPC); /* no members to count */
        refuse(g, req, &o, 400, parse ? GW_JSONRPC_PARSE_ERROR : GW_JSONRPC_INVALID_REQUEST,
               parse ? "parse error" : "a batch holds 1 to 64 messages, nested at most 64 deep");
        return;
    }
    gw_str_t sid = gw_http_header_find(req->headers, req->n_headers, GW_STR("mcp-session-id"));
    if (sid.base == NULL || sid.len == 0) {
        /* initialize is never part of a batch, so a batch always belongs to a session */
        refuse_batch(g, req, GW_MCP_ERR_INVALID_SESSION_ID, 400, GW_JSONRPC_SERVER_ERROR,
                     "Bad Request: Mcp-Session-Id header is required");
        return;
    }
    batch_t *b = gw_calloc(1, sizeof(*b));
    gw_mcp_session_expect_t exp = {
        .route = gw_str_c(route->name),
        .subject = c->binding,
        .now = (int64_t)time(NULL),
        .max_age = GW_MCP_SESSION_MAX_AGE_S,
    };
    if (gw_mcp_session_open(keyring, sid, &exp, &b->sess) != GW_OK) {
        free(b);
        refuse_batch(g, req, GW_MCP_ERR_INVALID_SESSION_ID, 404, GW_JSONRPC_SERVER_ERROR, "Session not found");
        return;
    }
    if (!gw_str_eq_lit(b->sess.protocol_version, "2025-03-26")) {
        batch_free(b);
        refuse_batch(g, req, GW_MCP_ERR_UNSUPPORTED_PROTOCOL_VERSION, 400, GW_JSONRPC_INVALID_REQUEST,
                     "JSON-RPC batches exist only in protocol revision 2025-03-26");
        return;
    }
    memcpy(b->items, items, n_items * sizeof(items[0]));
    b->n_items = n_items;
    b->g = g;
    b->http = req;
    b->config = gw_config_ref(c->config);
    b->route = route;
    gw_buf_init(&b->binding, GW_BUF_UNLIMITED);
    gw_buf_append_str(&b->binding, c->binding);
    gw_buf_init(&b->client_id, GW_BUF_UNLIMITED);
    gw_buf_append_str(&b->client_id, c->client_id);
    b->authz = c->authz;
    gw_buf_init(&b->scopes, GW_BUF_UNLIMITED);
    gw_buf_append_str(&b->scopes, c->scopes);
    gw_buf_init(&b->out, GW_BUF_UNLIMITED);
    batch_next(b);
}

/* Opens the client's Mcp-Session-Id for a GET or DELETE: false after answering 400 (no id) or
 * 404 (unknown, tampered, expired, or bound to another subject). */
static bool open_session_or_refuse(gw_gateway_t *g, gw_http_req_t *req, obs_t *o, const caller_t *c,
                                   const gw_mcp_route_t *route, gw_mcp_session_t *s)
{
    gw_str_t sid = gw_http_header_find(req->headers, req->n_headers, GW_STR("mcp-session-id"));
    if (sid.base == NULL || sid.len == 0) {
        refuse(g, req, o, 400, GW_JSONRPC_SERVER_ERROR, "Bad Request: Mcp-Session-Id header is required");
        return false;
    }
    pthread_once(&default_once, default_keyring);
    gw_mcp_session_expect_t exp = {
        .route = gw_str_c(route->name),
        .subject = c->binding,
        .now = (int64_t)time(NULL),
        .max_age = GW_MCP_SESSION_MAX_AGE_S,
    };
    if (gw_mcp_session_open(keyring, sid, &exp, s) != GW_OK) {
        refuse(g, req, o, 404, GW_JSONRPC_SERVER_ERROR, "Session not found");
        return false;
    }
    return true;
}

static void handle_delete(gw_gateway_t *g, gw_http_req_t *req, const caller_t *c, const gw_mcp_route_t *route)
{
    obs_t o = obs_request(req, false, GW_MCP_OK); /* the session (hashed) in the access log */
    gw_mcp_session_t s;
    if (!open_session_or_refuse(g, req, &o, c, route, &s))
        return;
    mcp_req_t *r = req_new(g, req, c, route, OP_DELETE);
    legs_from_session(r, &s);
    gw_mcp_session_free(&s);
    /* Stateless backends have nothing to terminate. The gateway keeps no list of deleted
     * sessions (that would be per-session state shared by every replica); a deleted session is
     * refused because its stateful backends answer 404 for their own deleted sessions. A
     * deletion marker (a short-lived deny list of session digests in Redis, checked in open)
     * would also cover sessions whose backends are all stateless. */
    size_t k = 0;
    for (size_t i = 0; i < r->n_legs; i++) {
        if (r->legs[i].sid.len == 0) {
            leg_free(&r->legs[i]);
            continue;
        }
        r->legs[k++] = r->legs[i];
    }
    r->n_legs = k;
    if (k == 0) {
        finish(r);
        return;
    }
    r->pending = r->n_legs;
    for (size_t i = 0; i < r->n_legs; i++)
        leg_send(&r->legs[i], GW_STR("DELETE"), GW_STR_NULL);
}

static void handle_get(gw_gateway_t *g, gw_http_req_t *req, const caller_t *c, const gw_mcp_route_t *route)
{
    obs_t o = obs_request(req, false, GW_MCP_OK); /* the session (hashed) in the access log */
    gw_str_t accept = gw_http_header_find(req->headers, req->n_headers, GW_STR("accept"));
    if (!header_lists(accept, "text/event-stream") && !header_lists(accept, "*/*")) {
        refuse(g, req, &o, 406, GW_JSONRPC_SERVER_ERROR, "Not Acceptable: Accept must list text/event-stream");
        return;
    }
    gw_mcp_session_t s;
    if (!open_session_or_refuse(g, req, &o, c, route, &s))
        return;
    mcp_req_t *r = req_new(g, req, c, route, OP_STREAM);
    legs_from_session(r, &s);
    gw_mcp_session_free(&s);
    gw_str_t last = gw_http_header_find(req->headers, req->n_headers, GW_STR("last-event-id"));
    if (last.len > 0 && last.len <= GW_MCP_MAX_EVENT_ID * 2)
        apply_resume_id(r, last);
    start_stream(r);
}

/* ---- authorization -------------------------------------------------------------------------
 * A route with OAuth or apiKeyAuth runs the worker's authorizer (mcp/oauth.h) before anything
 * else. The request waits in an auth_wait_t (req->data, tagged) until the check answers; a client
 * that leaves meanwhile cancels the check. The well-known metadata documents wait the same way. */

typedef struct {
    const void *tag;     /* first member: &auth_tag */
    gw_gateway_t *g;
    gw_http_req_t *http;
    gw_config_t *config; /* holds route while the check runs, across reloads */
    const gw_mcp_route_t *route;
    gw_mcp_auth_req_t *pending;
} auth_wait_t;

static auth_wait_t *auth_wait_new(gw_gateway_t *g, gw_http_req_t *http, const gw_mcp_route_t *route)
{
    auth_wait_t *w = gw_calloc(1, sizeof(*w));
    w->tag = &auth_tag;
    w->g = g;
    w->http = http;
    w->config = gw_config_ref(g->config);
    w->route = route;
    http->data = w;
    return w;
}

static void auth_wait_free(auth_wait_t *w)
{
    gw_config_unref(w->config);
    free(w);
}

/* What the sessions of an authorized caller are sealed to: "oauth" NUL <sub> with OAuth, "apikey"
 * NUL <client id> with apiKeyAuth, NUL-joined when the route has both. Never empty on a route
 * with auth, so an anonymous session (sealed while the route had no auth) is refused there; and
 * tagged, so a JWT subject never passes for an API-key client of the same name ("sub" holds no
 * NUL, so the parts cannot run into each other). */
static void session_binding(const gw_mcp_route_t *route, gw_str_t subject, gw_str_t client_id, gw_buf_t *out)
{
    if (route->oauth != NULL) {
        gw_buf_append_lit(out, "oauth");
        gw_buf_append_byte(out, '\0');
        gw_buf_append_str(out, subject);
    }
    if (route->api_key_auth != NULL) {
        if (out->len)
            gw_buf_append_byte(out, '\0');
        gw_buf_append_lit(out, "apikey");
        gw_buf_append_byte(out, '\0');
        gw_buf_append_str(out, client_id);
    }
}

/* A valid token without "sub" cannot own a session (every such token of the issuer would share
 * it): 401 invalid_token with the route's challenge, like any other token the route cannot use. */
static void refuse_no_subject(gw_gateway_t *g, gw_http_req_t *http, const gw_mcp_route_t *route)
{
    static const char desc[] = "The access token has no subject";
    gw_buf_t url, www;
    gw_buf_init(&url, GW_MCP_AUTH_MAX_URL + 64);
    gw_buf_init(&www, 8192);
    (void)gw_mcp_auth_resource_metadata_url(route, &url);
    if (gw_jwt_www_authenticate(&www, gw_buf_str(&url), GW_BEARER_ERROR_INVALID_TOKEN, GW_STR_NULL, GW_STR(desc)) !=
        GW_OK)
        (void)gw_jwt_www_authenticate(&www, GW_STR_NULL, GW_BEARER_ERROR_INVALID_TOKEN, GW_STR_NULL, GW_STR(desc));
    gw_http_header_t h = {GW_STR("WWW-Authenticate"), gw_buf_str(&www)};
    gw_metrics_count_request(g->metrics, GW_STR("mcp"), 401);
    gw_http_respond_simple(http, 401, GW_STR("application/json"),
                           GW_STR("{\"error\":\"invalid_token\",\"error_description\":\"The access token has no "
                                  "subject\"}"),
                           &h, 1);
    gw_buf_free(&url);
    gw_buf_free(&www);
}

/* ---- securityPolicy.authorization ------------------------------------------------------------
 * The scopes a request needs are known before the token is checked: the body is complete when
 * the endpoint gets the request, so a POST is read for its tools/call messages first and the
 * authorizer checks the route's requiredScopes together with the scopes of every tool rule
 * matching a called tool (every member of a 2025-03-26 batch: one lacking makes the whole batch a
 * 403, the HTTP answer of the spec's scope challenge). A body that does not parse needs only the
 * route's scopes; the transport refuses it after the check, as before. */

typedef struct {
    gw_str_t *v; /* slices of the route's strings (the request's config snapshot holds them) */
    size_t n, cap;
} scope_set_t;

static void scope_add(scope_set_t *set, const char *scope)
{
    gw_str_t s = gw_str_c(scope);
    for (size_t i = 0; i < set->n; i++)
        if (gw_str_eq(set->v[i], s))
            return;
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 8;
        set->v = gw_realloc(set->v, set->cap * sizeof(*set->v));
    }
    set->v[set->n++] = s;
}

/* Adds the scopes of the tool rules that a tools/call message needs. */
static void message_scopes(const gw_mcp_authorization_t *z, gw_str_t item, gw_buf_t *name, scope_set_t *out)
{
    gw_jsonrpc_msg_t msg;
    gw_str_t raw;
    if (gw_jsonrpc_parse(item, &msg, NULL) != GW_OK || msg.kind != GW_JSONRPC_REQUEST ||
        !gw_str_eq_lit(msg.method, "tools/call") || msg.params.len == 0 ||
        gw_json_object_get(msg.params, GW_STR("name"), &raw) != GW_OK || gw_json_type(raw) != GW_JSON_STRING)
        return;
    gw_buf_reset(name);
    if (gw_json_string_unescape(raw, name) != GW_OK)
        return; /* refused as an invalid name by the routing later */
    for (size_t i = 0; i < z->n_tools; i++)
        if (gw_mcp_tool_rule_matches(&z->tools[i], gw_buf_str(name)))
            for (size_t k = 0; k < z->tools[i].n_scopes; k++)
                scope_add(out, z->tools[i].scopes[k]);
}

static void needed_scopes(const gw_mcp_route_t *route, const gw_http_req_t *req, scope_set_t *out)
{
    const gw_mcp_authorization_t *z = route->authorization;
    for (size_t i = 0; i < z->n_required_scopes; i++)
        scope_add(out, z->required_scopes[i]);
    if (z->n_tools == 0 || !gw_str_eq_lit(req->method, "POST"))
        return;
    gw_str_t body = gw_buf_str(&req->body);
    gw_buf_t name;
    gw_buf_init(&name, 64 * 1024);
    if (gw_jsonrpc_is_batch(body)) {
        gw_str_t items[GW_MCP_MAX_BATCH];
        size_t n = 0;
        if (gw_jsonrpc_batch_split(body, items, GW_MCP_MAX_BATCH, &n) == GW_OK)
            for (size_t i = 0; i < n; i++)
                message_scopes(z, items[i], &name, out);
    } else {
        message_scopes(z, body, &name, out);
    }
    gw_buf_free(&name);
}

static void serve(gw_gateway_t *g, gw_http_req_t *req, const caller_t *c, const gw_mcp_route_t *route)
{
    if (gw_str_eq_lit(req->method, "POST"))
        handle_post(g, req, c, route);
    else if (gw_str_eq_lit(req->method, "DELETE"))
        handle_delete(g, req, c, route);
    else
        handle_get(g, req, c, route);
}

static void on_authorized(void *ud, const gw_mcp_auth_result_t *res)
{
    auth_wait_t *w = ud;
    gw_http_req_t *http = w->http;
    const gw_mcp_route_t *route = w->route;
    w->pending = NULL;
    http->data = NULL; /* serve() may hand the request to an mcp_req_t */
    if (res->status != 0) {
        /* The authorizer's answer as it is: status, WWW-Authenticate, JSON body (no secret). */
        gw_log_debug("mcp: route %s: request refused by its security policy (HTTP %d)", route->name, res->status);
        gw_metrics_count_request(w->g->metrics, GW_STR("mcp"), res->status);
        gw_http_respond_simple(http, res->status, res->content_type, res->body, res->headers, res->n_headers);
    } else if (route->oauth != NULL && res->subject.len == 0) {
        gw_log_debug("mcp: route %s: a valid token without a subject refused", route->name);
        refuse_no_subject(w->g, http, route);
    } else {
        gw_buf_t binding, scopes;
        gw_buf_init(&binding, GW_BUF_UNLIMITED);
        gw_buf_init(&scopes, GW_BUF_UNLIMITED);
        session_binding(route, res->subject, res->client_id, &binding);
        for (size_t i = 0; i < res->n_scopes; i++) {
            if (i)
                gw_buf_append_byte(&scopes, ' ');
            gw_buf_append_str(&scopes, res->scopes[i]);
        }
        caller_t c = {w->config, gw_buf_str(&binding), res->client_id,
                      route->oauth != NULL && route->authorization != NULL, gw_buf_str(&scopes)};
        serve(w->g, http, &c, route);
        gw_buf_free(&binding);
        gw_buf_free(&scopes);
    }
    auth_wait_free(w);
}

static void on_metadata(void *ud, const gw_mcp_auth_result_t *res)
{
    auth_wait_t *w = ud;
    w->pending = NULL;
    w->http->data = NULL;
    gw_metrics_count_request(w->g->metrics, GW_STR("mcp"), res->status);
    gw_http_respond_simple(w->http, res->status, res->content_type, res->body, res->headers, res->n_headers);
    auth_wait_free(w);
}

static void respond_oauth_error(gw_gateway_t *g, gw_http_req_t *req, int status, gw_str_t body,
                                const gw_http_header_t *extra, size_t n_extra)
{
    gw_metrics_count_request(g->metrics, GW_STR("mcp"), status);
    gw_http_respond_simple(req, status, GW_STR("application/json"), body, extra, n_extra);
}

void gw_mcp_serve_well_known(gw_gateway_t *g, gw_http_req_t *req, const gw_mcp_route_t *route,
                             gw_mcp_well_known_t kind)
{
    if (gw_str_eq_lit(req->method, "OPTIONS")) {
        /* CORS preflight of a browser client that sends MCP-Protocol-Version with its discovery
         * request (the TypeScript SDK does); the documents themselves carry the same origin. */
        gw_http_header_t h[] = {
            {GW_STR("Access-Control-Allow-Origin"), GW_STR("*")},
            {GW_STR("Access-Control-Allow-Methods"), GW_STR("GET, HEAD, OPTIONS")},
            {GW_STR("Access-Control-Allow-Headers"), GW_STR("MCP-Protocol-Version")},
            {GW_STR("Access-Control-Max-Age"), GW_STR("86400")},
        };
        gw_metrics_count_request(g->metrics, GW_STR("mcp"), 204);
        gw_http_respond_simple(req, 204, GW_STR_NULL, GW_STR_NULL, h, GW_ARRAY_SIZE(h));
        return;
    }
    if (!gw_str_eq_lit(req->method, "GET") && !gw_str_eq_lit(req->method, "HEAD")) {
        gw_http_header_t allow = {GW_STR("Allow"), GW_STR("GET, HEAD, OPTIONS")};
        respond_oauth_error(g, req, 405,
                            GW_STR("{\"error\":\"invalid_request\",\"error_description\":\"Method Not Allowed\"}"),
                            &allow, 1);
        return;
    }
    if (g->mcp_auth == NULL) {
        respond_oauth_error(g, req, 503,
                            GW_STR("{\"error\":\"temporarily_unavailable\",\"error_description\":\"The authorization "
                                   "metadata cannot be served\"}"),
                            NULL, 0);
        return;
    }
    auth_wait_t *w = auth_wait_new(g, req, route);
    w->pending = gw_mcp_auth_metadata(g->mcp_auth, route, kind, on_metadata, w);
}

void gw_mcp_handle(gw_gateway_t *g, gw_http_req_t *req, const gw_mcp_route_t *route)
{
    pthread_once(&default_once, default_keyring);
    gw_str_t origin = gw_http_header_find(req->headers, req->n_headers, GW_STR("origin"));
    if (origin.base != NULL && !origin_allowed(origin)) {
        respond_http_error(g, req, 403, GW_JSONRPC_SERVER_ERROR, "Forbidden: Origin not allowed", NULL, 0);
        return;
    }
    /* Before authorization: a CORS preflight (OPTIONS) carries no credentials, and a method the
     * endpoint does not serve is refused the same for everyone. */
    if (!gw_str_eq_lit(req->method, "POST") && !gw_str_eq_lit(req->method, "DELETE") &&
        !gw_str_eq_lit(req->method, "GET")) {
        gw_http_header_t allow = {GW_STR("Allow"), GW_STR("GET, POST, DELETE")};
        respond_http_error(g, req, 405, GW_JSONRPC_SERVER_ERROR, "Method Not Allowed", &allow, 1);
        return;
    }
    if (!gw_mcp_auth_required(route)) {
        caller_t c = {g->config, GW_STR_NULL, GW_STR_NULL, false, GW_STR_NULL};
        serve(g, req, &c, route);
        return;
    }
    if (g->mcp_auth == NULL) {
        /* Fail closed: a route with OAuth or apiKeyAuth is never served unauthenticated. */
        respond_http_error(g, req, 503, GW_JSONRPC_SERVER_ERROR,
                           "Service Unavailable: this MCP route's authorization is not available", NULL, 0);
        return;
    }
    auth_wait_t *w = auth_wait_new(g, req, route);
    if (route->oauth != NULL && route->authorization != NULL) {
        scope_set_t need = {0};
        needed_scopes(route, req, &need);
        w->pending = gw_mcp_auth_check_scopes(g->mcp_auth, route, req, need.v, need.n, on_authorized, w);
        free(need.v); /* the authorizer copied them */
        return;
    }
    w->pending = gw_mcp_auth_check(g->mcp_auth, route, req, on_authorized, w);
}

static bool auth_waiting(const gw_http_req_t *req)
{
    return req->data != NULL && *(const void *const *)req->data == &auth_tag;
}

bool gw_mcp_owns(const gw_http_req_t *req)
{
    return req->data != NULL && (*(const void *const *)req->data == &mcp_tag || auth_waiting(req));
}

void gw_mcp_on_abort(gw_http_req_t *req)
{
    if (auth_waiting(req)) {
        auth_wait_t *w = req->data;
        gw_mcp_auth_cancel(w->pending); /* its callback never runs */
        req->data = NULL;
        auth_wait_free(w);
        gw_http_response_end(req);
        return;
    }
    mcp_req_t *r = req->data;
    if (r == NULL)
        return;
    r->aborted = true;
    for (size_t i = 0; i < r->n_legs; i++) {
        leg_t *l = &r->legs[i];
        if (l->active && l->up != NULL)
            gw_upstream_cancel(l->up);
        l->up = NULL;
        l->active = false;
    }
    r->pending = 0;
    finish(r);
}

void gw_mcp_on_drain(gw_http_req_t *req)
{
    if (auth_waiting(req))
        return; /* nothing written yet */
    mcp_req_t *r = req->data;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_legs; i++) {
        leg_t *l = &r->legs[i];
        if (l->paused && l->up != NULL) {
            l->paused = false;
            gw_upstream_resume(l->up);
        }
    }
}
