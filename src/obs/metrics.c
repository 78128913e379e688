/* Per-worker GenAI, MCP, connection and request metrics, summed at scrape time into the Prometheus
 * text exposition format 0.0.4, plus process metrics read from /proc/self. The hot path takes no
 * lock: each worker appends series to its own table and publishes them with a release store. */
#include "obs/metrics.h"

#include "core/json.h"
#include "core/utf8.h"

#include "core/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* Longest escaped label value kept; longer values are cut at a character boundary, so a client
 * sending megabyte model names costs at most this much per series. */
#define LABEL_VALUE_MAX 256
/* A label set has at most 7 labels (error_type, 5 GenAI attributes, token type), whose names are
 * at most 24 bytes, plus `,` `="` `"`: a key always fits, so building one never fails. */
#define MAX_LABELS 7
#define LABEL_NAME_MAX 24
#define KEY_MAX (MAX_LABELS * (LABEL_NAME_MAX + 4 + LABEL_VALUE_MAX))
/* Overflow series are ordinary series whose labels read "overflow"; there are at most this many
 * distinct ones (3 token types, duration ok/error, ttft, tpot, http), so they get reserved slots
 * beyond GW_METRICS_MAX_SERIES and folding never fails. */
#define OVERFLOW_SERIES_MAX 8
#define TABLE_CAP (GW_METRICS_MAX_SERIES + OVERFLOW_SERIES_MAX)
/* Open-addressing index, power of two, kept under half full so probes stay short. */
#define INDEX_SIZE 8192
_Static_assert(INDEX_SIZE >= 2 * TABLE_CAP, "index must stay under half full");
_Static_assert(TABLE_CAP < UINT16_MAX, "index entries are uint16 slot numbers");

enum family { FAM_TOKEN_USAGE = 0, FAM_REQUEST_DURATION, FAM_TTFT, FAM_TPOT, FAM_HTTP_REQUESTS, FAM_COUNT };

/* Bucket boundaries are the reference's (OTel GenAI semantic conventions); a value v falls in the
 * first bucket whose bound b satisfies v <= b, as in both Prometheus and OTel. */
static const double token_bounds[] = {1,      4,       16,      64,       256,      1024,     4096,
                                      16384,  65536,   262144,  1048576,  4194304,  16777216, 67108864};
static const double duration_bounds[] = {0.01, 0.02, 0.04, 0.08,  0.16,  0.32,  0.64,
                                         1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
static const double ttft_bounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                     0.25,  0.5,   0.75, 1,    2.5,  5,    7.5,  10};
static const double tpot_bounds[] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5};

#define MAX_BOUNDS 16

/* ---- MCP: fixed label sets ----------------------------------------------------------------- */

/* The reference's buckets for both MCP duration histograms. */
#define MCP_NBOUNDS 11
static const double mcp_duration_bounds[MCP_NBOUNDS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
_Static_assert(MCP_NBOUNDS <= MAX_BOUNDS, "le strings are built in a MAX_BOUNDS array");

/* error_type values in enum order, which is also their byte order: series render sorted by label
 * text, like the hashed families. */
static const char *const mcp_error_names[GW_MCP_ERR_COUNT] = {
    [GW_MCP_OK] = NULL,
    [GW_MCP_ERR_INTERNAL] = "internal_error",
    [GW_MCP_ERR_INVALID_JSON_RPC] = "invalid_json_rpc",
    [GW_MCP_ERR_INVALID_PARAM] = "invalid_param",
    [GW_MCP_ERR_INVALID_SESSION_ID] = "invalid_session_id",
    [GW_MCP_ERR_UNSUPPORTED_METHOD] = "unsupported_method",
    [GW_MCP_ERR_UNSUPPORTED_PROTOCOL_VERSION] = "unsupported_protocol_version",
    [GW_MCP_ERR_UNSUPPORTED_RESPONSE] = "unsupported_response",
};

/* mcp_method_name values: every method an MCP client sends to a server, requests and
 * notifications, in the revisions 2025-03-26 to 2026-07-28; anything else is "_OTHER", so a client
 * inventing method names cannot grow the series. Sorted by bytes (binary search, render order). */
static const char *const mcp_methods[] = {
    "_OTHER",
    "completion/complete",
    "initialize",
    "logging/setLevel",
    "notifications/cancelled",
    "notifications/initialized",
    "notifications/progress",
    "notifications/roots/list_changed",
    "notifications/tasks/status",
    "ping",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/read",
    "resources/subscribe",
    "resources/templates/list",
    "resources/unsubscribe",
    "server/discover",
    "tasks/cancel",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tools/call",
    "tools/list",
};
#define MCP_METHODS GW_ARRAY_SIZE(mcp_methods)
#define MCP_METHOD_OTHER 0

/* capability_type values, sorted, with the side(s) whose capabilities object declares each: the
 * reference's nine types plus tasks (2025-11-25, both sides). */
enum mcp_cap {
    CAP_COMPLETIONS = 0,
    CAP_ELICITATION,
    CAP_EXPERIMENTAL,
    CAP_LOGGING,
    CAP_PROMPTS,
    CAP_RESOURCES,
    CAP_ROOTS,
    CAP_SAMPLING,
    CAP_TASKS,
    CAP_TOOLS,
    CAP_COUNT
};
#define SIDE_BIT(side) (1u << (side))
#define BOTH_SIDES (SIDE_BIT(GW_MCP_SIDE_CLIENT) | SIDE_BIT(GW_MCP_SIDE_SERVER))
static const struct {
    const char *name;
    unsigned sides;
} mcp_caps[CAP_COUNT] = {
    [CAP_COMPLETIONS] = {"completions", SIDE_BIT(GW_MCP_SIDE_SERVER)},
    [CAP_ELICITATION] = {"elicitation", SIDE_BIT(GW_MCP_SIDE_CLIENT)},
    [CAP_EXPERIMENTAL] = {"experimental", BOTH_SIDES},
    [CAP_LOGGING] = {"logging", SIDE_BIT(GW_MCP_SIDE_SERVER)},
    [CAP_PROMPTS] = {"prompts", SIDE_BIT(GW_MCP_SIDE_SERVER)},
    [CAP_RESOURCES] = {"resources", SIDE_BIT(GW_MCP_SIDE_SERVER)},
    [CAP_ROOTS] = {"roots", SIDE_BIT(GW_MCP_SIDE_CLIENT)},
    [CAP_SAMPLING] = {"sampling", SIDE_BIT(GW_MCP_SIDE_CLIENT)},
    [CAP_TASKS] = {"tasks", BOTH_SIDES},
    [CAP_TOOLS] = {"tools", SIDE_BIT(GW_MCP_SIDE_SERVER)},
};
static const char *const mcp_side_names[GW_MCP_SIDE_COUNT] = {"client", "server"};

enum { MCP_STATUS_ERROR = 0, MCP_STATUS_SUCCESS, MCP_STATUS_COUNT }; /* byte order of the values */

/* Every MCP label set is known in advance, so MCP samples go to fixed slots instead of the series
 * table: no lookup, no allocation, and GenAI label sets filling the table can never crowd them
 * out. Histograms keep non-cumulative bucket counts then the sum as double bits, like a series. */
struct mcp_histogram {
    _Atomic uint64_t v[MCP_NBOUNDS + 2];
};

struct mcp_metrics {
    struct mcp_histogram request[GW_MCP_ERR_COUNT]; /* by error type, [GW_MCP_OK] = success */
    struct mcp_histogram initialization;
    _Atomic uint64_t method[MCP_METHODS][MCP_STATUS_COUNT];
    _Atomic uint64_t method_error_unnamed; /* an error before any method was known */
    _Atomic uint64_t capabilities[GW_MCP_SIDE_COUNT][CAP_COUNT];
    _Atomic uint64_t progress;
};

struct family_desc {
    const char *name;
    const char *help;
    const double *bounds; /* NULL: a counter */
    size_t nbounds;
};

static const struct family_desc families[FAM_COUNT] = {
    [FAM_TOKEN_USAGE] = {"gen_ai_client_token_usage_token", "Number of input and output tokens used.", token_bounds,
                         GW_ARRAY_SIZE(token_bounds)},
    [FAM_REQUEST_DURATION] = {"gen_ai_server_request_duration_seconds",
                              "Generative AI server request duration such as time-to-last byte or last output token.",
                              duration_bounds, GW_ARRAY_SIZE(duration_bounds)},
    [FAM_TTFT] = {"gen_ai_server_time_to_first_token_seconds", "Time to generate first token for successful responses.",
                  ttft_bounds, GW_ARRAY_SIZE(ttft_bounds)},
    [FAM_TPOT] = {"gen_ai_server_time_per_output_token_seconds",
                  "Time per output token generated after the first token for successful responses.", tpot_bounds,
                  GW_ARRAY_SIZE(tpot_bounds)},
    [FAM_HTTP_REQUESTS] = {"aigw_http_requests_total", "HTTP requests answered, by endpoint and status code.", NULL, 0},
};

static const struct {
    const char *name;
    const char *help;
} gauge_desc[GW_GAUGE_COUNT] = {
    [GW_GAUGE_DOWNSTREAM_CONNECTIONS] = {"aigw_downstream_connections", "Open client connections."},
    [GW_GAUGE_UPSTREAM_CONNECTIONS] = {"aigw_upstream_connections", "Open upstream connections, active and idle."},
    [GW_GAUGE_REQUESTS_IN_FLIGHT] = {"aigw_requests_in_flight", "Requests being served."},
    [GW_GAUGE_CONFIG_GENERATION] = {"aigw_config_generation", "Generation of the active configuration."},
}, counter_desc[GW_COUNTER_COUNT] = {
    [GW_COUNTER_DOWNSTREAM_CONNECTIONS_TOTAL] = {"aigw_downstream_connections_total", "Client connections accepted."},
    [GW_COUNTER_UPSTREAM_CONNECTIONS_TOTAL] = {"aigw_upstream_connections_total", "Upstream connections opened."},
    [GW_COUNTER_CONFIG_RELOADS_OK] = {"aigw_config_reloads_total", "Configuration reloads applied."},
    [GW_COUNTER_CONFIG_RELOADS_FAILED] = {"aigw_config_reload_failures_total",
                                          "Configuration reloads refused (the previous configuration stays)."},
    [GW_COUNTER_UPSTREAM_RETRIES] = {"aigw_upstream_retries_total", "Upstream attempts after the first one."},
};

/* One label set of one family. Everything but v[] is written once by the owner before the series
 * is published and never changes after. Histograms keep per-bucket (non-cumulative) counts and no
 * separate count: the scraper derives _count from the buckets it read, so _count always equals the
 * +Inf bucket even when it reads in the middle of an update. */
struct series {
    const char *labels; /* escaped `name="value",...` pairs, sorted by name, no braces */
    uint32_t labels_len;
    uint32_t hash;
    uint8_t family;
    _Atomic uint64_t v[]; /* histogram: nbounds + 1 bucket counts, then the sum as double bits; counter: value */
};

/* A label set being built, in escaped text form. Fixed size (see KEY_MAX) so that building it on
 * the hot path is a few memcpy, not buffer management. */
struct key {
    size_t len;
    char buf[KEY_MAX];
};

/* Consecutive samples mostly carry the same attributes (every request records its token usage
 * and duration with one set, and a gateway serves few models): the series found for the last
 * attribute set are kept with a copy of it, so a repeat costs a few short compares instead of
 * escaping, hashing and probing the labels again. Series are never freed before the table, so
 * the pointers stay valid. Values longer than GENAI_CACHE_VALUE are simply not cached. */
#define GENAI_CACHE_VALUE 128
#define GENAI_ATTRS 6
#define GENAI_TOKEN_TYPES 4
struct genai_cache {
    bool valid;
    uint8_t len[GENAI_ATTRS];
    char val[GENAI_ATTRS][GENAI_CACHE_VALUE];
    struct series *s[FAM_COUNT][GENAI_TOKEN_TYPES];
};

struct gw_metrics_s {
    /* Shared with the scraper. */
    _Atomic size_t nseries; /* release-stored by the owner after filling slots[nseries - 1] */
    struct series *slots[TABLE_CAP];
    _Atomic int64_t gauges[GW_GAUGE_COUNT];
    _Atomic uint64_t counters[GW_COUNTER_COUNT];
    struct mcp_metrics mcp;
    /* Owner only. */
    uint16_t index[INDEX_SIZE]; /* slot number + 1; 0 = empty */
    struct key key;             /* the label set being looked up */
    struct key overflow_key;    /* the overflow label set that replaces it when the table is full */
    struct genai_cache genai;   /* the series of the last GenAI attribute set */
    struct {
        int status;
        size_t endpoint_len;
        char endpoint[48];
        struct series *s;
    } http_cache[4];
    unsigned http_next;
};

gw_metrics_t *gw_metrics_new(void)
{
    gw_metrics_t *m = gw_calloc(1, sizeof(*m));
    atomic_init(&m->nseries, 0);
    for (size_t i = 0; i < GW_GAUGE_COUNT; i++)
        atomic_init(&m->gauges[i], 0);
    for (size_t i = 0; i < GW_COUNTER_COUNT; i++)
        atomic_init(&m->counters[i], 0);
    struct mcp_metrics *x = &m->mcp;
    for (size_t e = 0; e < GW_MCP_ERR_COUNT; e++)
        for (size_t b = 0; b < MCP_NBOUNDS + 2; b++)
            atomic_init(&x->request[e].v[b], 0);
    for (size_t b = 0; b < MCP_NBOUNDS + 2; b++)
        atomic_init(&x->initialization.v[b], 0);
    for (size_t i = 0; i < MCP_METHODS; i++)
        for (size_t st = 0; st < MCP_STATUS_COUNT; st++)
            atomic_init(&x->method[i][st], 0);
    atomic_init(&x->method_error_unnamed, 0);
    for (size_t side = 0; side < GW_MCP_SIDE_COUNT; side++)
        for (size_t c = 0; c < CAP_COUNT; c++)
            atomic_init(&x->capabilities[side][c], 0);
    atomic_init(&x->progress, 0);
    return m;
}

void gw_metrics_free(gw_metrics_t *m)
{
    if (m == NULL)
        return;
    size_t n = atomic_load_explicit(&m->nseries, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        free(m->slots[i]);
    free(m);
}

/* Single writer: a relaxed load and store is enough (no read-modify-write instruction needed);
 * the scraper sees either the old or the new value, never a torn one. */
static inline void relaxed_add(_Atomic uint64_t *p, uint64_t d)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + d, memory_order_relaxed);
}

static inline uint64_t double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static inline double bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* ---- label sets ---------------------------------------------------------------------------- */

static inline void key_put(struct key *k, const void *p, size_t n)
{
    /* Cannot overflow by construction (KEY_MAX); the check keeps it true if that ever changes. */
    if (n > KEY_MAX - k->len)
        n = KEY_MAX - k->len;
    memcpy(k->buf + k->len, p, n);
    k->len += n;
}

/* Appends `name="value"` (comma-separated from what precedes). The exposition format escapes only
 * backslash, double quote and newline; invalid UTF-8 becomes U+FFFD because Prometheus rejects a
 * scrape whose label values are not UTF-8. Empty values read "unknown", as in the reference. */
static void append_label(struct key *k, const char *name, size_t name_len, gw_str_t value)
{
    if (k->len > 0)
        key_put(k, ",", 1);
    key_put(k, name, GW_MIN(name_len, LABEL_NAME_MAX));
    key_put(k, "=\"", 2);
    if (value.len == 0 || value.base == NULL)
        value = GW_STR("unknown");
    const unsigned char *p = (const unsigned char *)value.base;
    size_t n = value.len, out = 0;
    while (n > 0) {
        /* Plain ASCII goes in runs: model names rarely need any escape. */
        size_t run = 0;
        while (run < n && p[run] < 0x80 && p[run] != '\\' && p[run] != '"' && p[run] != '\n')
            run++;
        if (run > 0) {
            size_t take = GW_MIN(run, LABEL_VALUE_MAX - out);
            key_put(k, p, take);
            out += take;
            if (take < run)
                break;
            p += take;
            n -= take;
            continue;
        }
        char esc[2];
        const void *unit = p;
        size_t in = 1, ulen = 1;
        if (*p == '\\' || *p == '"' || *p == '\n') {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : (char)*p;
            unit = esc;
            ulen = 2;
        } else if ((in = gw_utf8_seq_len(p, n)) == 0) {
            unit = "\xEF\xBF\xBD";
            in = 1;
            ulen = 3;
        } else {
            ulen = in;
        }
        if (out + ulen > LABEL_VALUE_MAX)
            break;
        key_put(k, unit, ulen);
        out += ulen;
        p += in;
        n -= in;
    }
    key_put(k, "\"", 1);
}
#define LABEL(k, name, value) append_label((k), (name), sizeof(name) - 1, (value))

/* Labels of a GenAI sample in name order (the order Prometheus clients use, and a stable one). */
static void append_genai_labels(struct key *k, const gw_genai_attrs_t *a, bool with_error)
{
    if (with_error && a->error_type.len > 0)
        LABEL(k, "error_type", a->error_type);
    LABEL(k, "gen_ai_operation_name", a->operation);
    LABEL(k, "gen_ai_original_model", a->original_model);
    LABEL(k, "gen_ai_provider_name", a->provider);
    LABEL(k, "gen_ai_request_model", a->request_model);
    LABEL(k, "gen_ai_response_model", a->response_model);
}

/* Eight bytes per step: a byte-at-a-time hash over ~200-byte keys was a third of the hot path.
 * Keys are bounded and the table is capped, so a weak hash costs probes, never memory. */
static uint32_t hash_key(enum family f, const char *p, size_t n)
{
    const uint64_t mul = 0xff51afd7ed558ccdULL;
    uint64_t h = (0x9E3779B97F4A7C15ULL * ((uint64_t)f + 1)) ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * mul;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * mul;
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

/* Finds the series of (f, kb), creating and publishing it when there is room: below the cap
 * for ordinary label sets, in the reserved slots for overflow ones. NULL: the table is full. */
static struct series *lookup(gw_metrics_t *m, enum family f, const struct key *kb, bool overflow)
{
    const char *key = kb->buf;
    size_t len = kb->len;
    uint32_t h = hash_key(f, key, len);
    size_t i = h & (INDEX_SIZE - 1);
    for (; m->index[i] != 0; i = (i + 1) & (INDEX_SIZE - 1)) {
        struct series *s = m->slots[m->index[i] - 1];
        if (s->hash == h && s->family == f && s->labels_len == len && memcmp(s->labels, key, len) == 0)
            return s;
    }
    size_t n = atomic_load_explicit(&m->nseries, memory_order_relaxed);
    if (n >= (overflow ? TABLE_CAP : GW_METRICS_MAX_SERIES))
        return NULL;
    const struct family_desc *d = &families[f];
    size_t nvals = d->bounds ? d->nbounds + 2 : 1;
    struct series *s = gw_malloc(sizeof(*s) + nvals * sizeof(s->v[0]) + len);
    for (size_t k = 0; k < nvals; k++)
        atomic_init(&s->v[k], 0);
    char *labels = (char *)&s->v[nvals];
    if (len)
        memcpy(labels, key, len);
    s->labels = labels;
    s->labels_len = (uint32_t)len;
    s->hash = h;
    s->family = (uint8_t)f;
    m->slots[n] = s;
    m->index[i] = (uint16_t)(n + 1);
    /* Publishes the slot and everything written to the series above. */
    atomic_store_explicit(&m->nseries, n + 1, memory_order_release);
    return s;
}

/* The series for a GenAI sample whose label set is in m->key or, once the table is full, the
 * overflow series of the same kind: what gives the sample its meaning (token type, failed or
 * not) is kept, the attributes clients control are folded. The overflow key has its own scratch
 * so that m->key survives for the caller. */
static struct series *genai_series(gw_metrics_t *m, enum family f, const gw_genai_attrs_t *a, const char *token_type)
{
    struct series *s = lookup(m, f, &m->key, false);
    if (s)
        return s;
    gw_genai_attrs_t ov = {
        .operation = GW_STR("overflow"),
        .provider = GW_STR("overflow"),
        .original_model = GW_STR("overflow"),
        .request_model = GW_STR("overflow"),
        .response_model = GW_STR("overflow"),
        .error_type = a->error_type.len ? GW_STR("_OTHER") : GW_STR_NULL,
    };
    m->overflow_key.len = 0;
    append_genai_labels(&m->overflow_key, &ov, f == FAM_REQUEST_DURATION);
    if (token_type)
        LABEL(&m->overflow_key, "gen_ai_token_type", gw_str_c(token_type));
    return lookup(m, f, &m->overflow_key, true);
}

/* v: nbounds + 1 bucket counts, then the sum. */
static void hist_observe(_Atomic uint64_t *v, const double *bounds, size_t nbounds, double x)
{
    size_t b = 0;
    while (b < nbounds && x > bounds[b])
        b++;
    relaxed_add(&v[b], 1);
    _Atomic uint64_t *sum = &v[nbounds + 1];
    double total = bits_double(atomic_load_explicit(sum, memory_order_relaxed)) + x;
    atomic_store_explicit(sum, double_bits(total), memory_order_relaxed);
}

static void observe(struct series *s, enum family f, double v)
{
    hist_observe(s->v, families[f].bounds, families[f].nbounds, v);
}

static inline void genai_attr_list(const gw_genai_attrs_t *a, const gw_str_t *out[GENAI_ATTRS])
{
    out[0] = &a->operation;
    out[1] = &a->provider;
    out[2] = &a->original_model;
    out[3] = &a->request_model;
    out[4] = &a->response_model;
    out[5] = &a->error_type;
}

/* Points m->genai at attribute set a (emptying it when a differs from the cached set). Returns
 * false when a cannot be cached; lookups then go the long way. */
static bool genai_cache_select(gw_metrics_t *m, const gw_genai_attrs_t *a)
{
    struct genai_cache *c = &m->genai;
    const gw_str_t *v[GENAI_ATTRS];
    genai_attr_list(a, v);
    if (c->valid) {
        size_t i = 0;
        for (; i < GENAI_ATTRS; i++)
            if (v[i]->len != c->len[i] || (v[i]->len && memcmp(v[i]->base, c->val[i], v[i]->len) != 0))
                break;
        if (i == GENAI_ATTRS)
            return true;
    }
    c->valid = false;
    for (size_t i = 0; i < GENAI_ATTRS; i++)
        if (v[i]->len > GENAI_CACHE_VALUE || (v[i]->len && v[i]->base == NULL))
            return false;
    for (size_t i = 0; i < GENAI_ATTRS; i++) {
        c->len[i] = (uint8_t)v[i]->len;
        if (v[i]->len)
            memcpy(c->val[i], v[i]->base, v[i]->len);
    }
    memset(c->s, 0, sizeof(c->s));
    c->valid = true;
    return true;
}

/* Non-finite values would poison _sum forever, and a negative one (a clock step) would make it
 * decrease, which Prometheus reads as a counter reset; both are dropped or clamped here. */
static void record(gw_metrics_t *m, enum family f, const gw_genai_attrs_t *a, double v)
{
    if (m == NULL || a == NULL || !isfinite(v))
        return;
    if (v < 0)
        v = 0;
    bool cached = genai_cache_select(m, a);
    struct series *s = cached ? m->genai.s[f][0] : NULL;
    if (s == NULL) {
        m->key.len = 0;
        append_genai_labels(&m->key, a, f == FAM_REQUEST_DURATION);
        s = genai_series(m, f, a, NULL);
        if (cached)
            m->genai.s[f][0] = s;
    }
    if (s)
        observe(s, f, v);
}

/* ---- hot path ------------------------------------------------------------------------------ */

void gw_metrics_record_token_usage(gw_metrics_t *m, const gw_genai_attrs_t *a, const gw_token_usage_t *u)
{
    if (m == NULL || a == NULL || u == NULL || !u->present)
        return;
    struct {
        const char *type;
        uint64_t n;
        bool present;
    } samples[] = {
        {"input", u->input, true},
        /* The record has no "reported" flag; a provider without prompt caching reports 0 or nothing. */
        {"cached_input", u->cached_input, u->cached_input > 0},
        /* aigw extension: tokens written to the provider's prompt cache (Anthropic, Bedrock), which
         * are billed differently; not in the GenAI conventions yet, so only when non-zero. */
        {"cache_creation_input", u->cache_creation, u->cache_creation > 0},
        {"output", u->output, true},
    };
    _Static_assert(GW_ARRAY_SIZE(samples) == GENAI_TOKEN_TYPES, "one cache slot per token type");
    bool cached = genai_cache_select(m, a);
    /* The attributes are escaped once (and only when a series is not cached); each token type
     * only appends its own label. */
    size_t base = SIZE_MAX;
    for (size_t i = 0; i < GW_ARRAY_SIZE(samples); i++) {
        if (!samples[i].present)
            continue;
        struct series *s = cached ? m->genai.s[FAM_TOKEN_USAGE][i] : NULL;
        if (s == NULL) {
            if (base == SIZE_MAX) {
                m->key.len = 0;
                append_genai_labels(&m->key, a, false);
                base = m->key.len;
            }
            m->key.len = base;
            LABEL(&m->key, "gen_ai_token_type", gw_str_c(samples[i].type));
            s = genai_series(m, FAM_TOKEN_USAGE, a, samples[i].type);
            if (cached)
                m->genai.s[FAM_TOKEN_USAGE][i] = s;
        }
        if (s)
            observe(s, FAM_TOKEN_USAGE, (double)samples[i].n);
    }
}

void gw_metrics_record_request_duration(gw_metrics_t *m, const gw_genai_attrs_t *a, double seconds)
{
    record(m, FAM_REQUEST_DURATION, a, seconds);
}

void gw_metrics_record_ttft(gw_metrics_t *m, const gw_genai_attrs_t *a, double seconds)
{
    record(m, FAM_TTFT, a, seconds);
}

void gw_metrics_record_tpot(gw_metrics_t *m, const gw_genai_attrs_t *a, double seconds)
{
    record(m, FAM_TPOT, a, seconds);
}

void gw_metrics_gauge_add(gw_metrics_t *m, gw_gauge_t g, int64_t delta)
{
    if (m == NULL || (unsigned)g >= GW_GAUGE_COUNT)
        return;
    _Atomic int64_t *p = &m->gauges[g];
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + delta, memory_order_relaxed);
}

void gw_metrics_counter_add(gw_metrics_t *m, gw_counter_t c, uint64_t delta)
{
    if (m == NULL || (unsigned)c >= GW_COUNTER_COUNT)
        return;
    relaxed_add(&m->counters[c], delta);
}

void gw_metrics_count_request(gw_metrics_t *m, gw_str_t endpoint, int status)
{
    if (m == NULL)
        return;
    /* A handful of (endpoint, status) pairs make nearly all the traffic. */
    for (size_t i = 0; i < GW_ARRAY_SIZE(m->http_cache); i++) {
        if (m->http_cache[i].s && m->http_cache[i].status == status && m->http_cache[i].endpoint_len == endpoint.len &&
            (endpoint.len == 0 || memcmp(m->http_cache[i].endpoint, endpoint.base, endpoint.len) == 0)) {
            relaxed_add(&m->http_cache[i].s->v[0], 1);
            return;
        }
    }
    char code[16];
    int n = snprintf(code, sizeof(code), "%d", status);
    m->key.len = 0;
    LABEL(&m->key, "code", gw_str(code, n > 0 ? (size_t)n : 0));
    LABEL(&m->key, "endpoint", endpoint);
    struct series *s = lookup(m, FAM_HTTP_REQUESTS, &m->key, false);
    if (s == NULL) {
        m->overflow_key.len = 0;
        LABEL(&m->overflow_key, "code", GW_STR("overflow"));
        LABEL(&m->overflow_key, "endpoint", GW_STR("overflow"));
        s = lookup(m, FAM_HTTP_REQUESTS, &m->overflow_key, true);
    }
    if (s == NULL)
        return;
    relaxed_add(&s->v[0], 1);
    if (endpoint.len > sizeof(m->http_cache[0].endpoint) || (endpoint.len && endpoint.base == NULL))
        return;
    unsigned slot = m->http_next++ % GW_ARRAY_SIZE(m->http_cache);
    m->http_cache[slot].status = status;
    m->http_cache[slot].endpoint_len = endpoint.len;
    if (endpoint.len)
        memcpy(m->http_cache[slot].endpoint, endpoint.base, endpoint.len);
    m->http_cache[slot].s = s;
}

/* ---- MCP ------------------------------------------------------------------------------------ */

static int str_cmp(gw_str_t a, const char *b)
{
    size_t bn = strlen(b), n = GW_MIN(a.len, bn);
    int c = n ? memcmp(a.base, b, n) : 0;
    if (c)
        return c;
    return a.len < bn ? -1 : a.len > bn;
}

static size_t mcp_method_index(gw_str_t method)
{
    /* Entry 0 is the fallback, not a method: the search covers the others. */
    size_t lo = MCP_METHOD_OTHER + 1, hi = MCP_METHODS;
    while (lo < hi && method.base != NULL) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(method, mcp_methods[mid]);
        if (c == 0)
            return mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return MCP_METHOD_OTHER;
}

const char *gw_metrics_mcp_method_label(gw_str_t method)
{
    return mcp_methods[mcp_method_index(method)];
}

/* Time samples: a non-finite value is dropped (it would poison the sum), a negative one (a clock
 * step) counts as 0, as for the GenAI histograms. */
static bool usable_seconds(double *seconds)
{
    if (!isfinite(*seconds))
        return false;
    if (*seconds < 0)
        *seconds = 0;
    return true;
}

void gw_metrics_mcp_request(gw_metrics_t *m, gw_str_t method, gw_mcp_error_t error, double seconds)
{
    if (m == NULL)
        return;
    if ((unsigned)error >= GW_MCP_ERR_COUNT)
        error = GW_MCP_ERR_INTERNAL; /* a caller's bug must not index out of the table */
    struct mcp_metrics *x = &m->mcp;
    if (usable_seconds(&seconds))
        hist_observe(x->request[error].v, mcp_duration_bounds, MCP_NBOUNDS, seconds);
    if (method.len == 0) {
        if (error != GW_MCP_OK)
            relaxed_add(&x->method_error_unnamed, 1);
        return;
    }
    relaxed_add(&x->method[mcp_method_index(method)][error == GW_MCP_OK ? MCP_STATUS_SUCCESS : MCP_STATUS_ERROR], 1);
}

void gw_metrics_mcp_initialization(gw_metrics_t *m, double seconds)
{
    if (m != NULL && usable_seconds(&seconds))
        hist_observe(m->mcp.initialization.v, mcp_duration_bounds, MCP_NBOUNDS, seconds);
}

void gw_metrics_mcp_capabilities(gw_metrics_t *m, gw_mcp_side_t side, gw_str_t capabilities)
{
    if (m == NULL || (unsigned)side >= GW_MCP_SIDE_COUNT || gw_json_type(capabilities) != GW_JSON_OBJECT)
        return;
    /* Counted first, added only once the whole object has been read, so a broken object adds
     * nothing rather than half of itself. A repeated member counts once. */
    uint64_t add[CAP_COUNT] = {0};
    bool seen[CAP_COUNT] = {false};
    size_t pos = 0;
    gw_str_t key, value;
    int rc;
    while ((rc = gw_json_object_next(capabilities, &pos, &key, &value)) == GW_OK) {
        if (gw_json_type(value) != GW_JSON_OBJECT)
            continue;
        for (size_t c = 0; c < CAP_COUNT; c++) {
            if (seen[c] || !(mcp_caps[c].sides & SIDE_BIT(side)) || !gw_json_key_eq(key, gw_str_c(mcp_caps[c].name)))
                continue;
            seen[c] = true;
            if (c != CAP_EXPERIMENTAL) {
                add[c] = 1;
                break;
            }
            size_t inner = 0;
            gw_str_t k, v;
            int irc;
            while ((irc = gw_json_object_next(value, &inner, &k, &v)) == GW_OK)
                add[c]++;
            if (irc != GW_DONE)
                return;
            break;
        }
    }
    if (rc != GW_DONE)
        return;
    for (size_t c = 0; c < CAP_COUNT; c++)
        if (add[c])
            relaxed_add(&m->mcp.capabilities[side][c], add[c]);
}

void gw_metrics_mcp_progress(gw_metrics_t *m)
{
    if (m != NULL)
        relaxed_add(&m->mcp.progress, 1);
}

/* ---- rendering ----------------------------------------------------------------------------- */

/* The shortest decimal that reads back as exactly v, laid out as Go's strconv 'g' with precision
 * -1 (what the Prometheus Go client writes): exponent form when the decimal exponent is below -4
 * or at least 6, so 0.01, 1, 262144, 1e+06, 1.048576e+06. Same bytes as the reference's output. */
int gw_metrics_append_double(gw_buf_t *out, double v)
{
    if (isnan(v))
        return gw_buf_append_lit(out, "NaN");
    if (isinf(v))
        return v > 0 ? gw_buf_append_lit(out, "+Inf") : gw_buf_append_lit(out, "-Inf");
    if (v == 0)
        return gw_buf_append_byte(out, '0');
    char tmp[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
    const char *e = strchr(tmp, 'e');
    long exp = e ? strtol(e + 1, NULL, 10) : 0;
    if (exp < -4 || exp >= 6)
        return gw_buf_append(out, tmp, strlen(tmp));
    long decimals = prec - 1 - exp;
    return gw_buf_appendf(out, "%.*f", (int)(decimals > 0 ? decimals : 0), v);
}

/* Appends while nothing has failed yet, so a capped output buffer never ends up with a line cut
 * out of the middle: the first GW_TOOBIG sticks and rendering stops adding bytes. */
struct render {
    gw_buf_t *out;
    int rc;
};

static void put(struct render *r, const char *p, size_t n)
{
    if (r->rc == GW_OK)
        r->rc = gw_buf_append(r->out, p, n);
}

static void puts_(struct render *r, const char *s)
{
    put(r, s, strlen(s));
}

static void put_u64(struct render *r, uint64_t v)
{
    if (r->rc == GW_OK)
        r->rc = gw_buf_append_u64(r->out, v);
}

static void put_i64(struct render *r, int64_t v)
{
    if (v < 0) {
        put(r, "-", 1);
        put_u64(r, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(r, (uint64_t)v);
    }
}

static void put_double(struct render *r, double v)
{
    if (r->rc == GW_OK)
        r->rc = gw_metrics_append_double(r->out, v);
}

/* On failure, drops the partial last line so that what a capped buffer holds still parses. */
static int finish(struct render *r, size_t start)
{
    if (r->rc != GW_OK) {
        size_t len = r->out->len;
        while (len > start && r->out->data[len - 1] != '\n')
            len--;
        r->out->len = len;
    }
    return r->rc;
}

static void put_header(struct render *r, const char *name, const char *help, const char *type)
{
    puts_(r, "# HELP ");
    puts_(r, name);
    puts_(r, " ");
    puts_(r, help);
    puts_(r, "\n# TYPE ");
    puts_(r, name);
    puts_(r, " ");
    puts_(r, type);
    puts_(r, "\n");
}

/* `name{labels}` or `name{labels,extra}`; braces omitted when there is no label at all. */
static void put_name(struct render *r, const char *name, const char *suffix, const char *labels, size_t labels_len,
                     const char *extra)
{
    puts_(r, name);
    puts_(r, suffix);
    if (labels_len == 0 && extra == NULL)
        return;
    put(r, "{", 1);
    put(r, labels, labels_len);
    if (extra) {
        if (labels_len)
            put(r, ",", 1);
        puts_(r, extra);
    }
    put(r, "}", 1);
}

/* The le="..." label of each bucket, +Inf last, written as the reference writes the bounds. */
static void make_le(char le[][32], const double *bounds, size_t nbounds)
{
    for (size_t b = 0; b <= nbounds; b++) {
        gw_buf_t tmp;
        gw_buf_init(&tmp, 24);
        if (b == nbounds)
            gw_buf_append_lit(&tmp, "+Inf");
        else
            gw_metrics_append_double(&tmp, bounds[b]);
        snprintf(le[b], sizeof(le[b]), "le=\"%.*s\"", (int)tmp.len, tmp.data ? tmp.data : "");
        gw_buf_free(&tmp);
    }
}

/* One histogram label set from its per-bucket (non-cumulative) counts: _count is the +Inf bucket,
 * whatever the writer did while they were read. */
static void put_histogram(struct render *r, const char *name, const char *labels, size_t labels_len, char le[][32],
                          const uint64_t *counts, size_t nbounds, double sum)
{
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= nbounds; b++) {
        cumulative += counts[b];
        put_name(r, name, "_bucket", labels, labels_len, le[b]);
        put(r, " ", 1);
        put_u64(r, cumulative);
        put(r, "\n", 1);
    }
    put_name(r, name, "_sum", labels, labels_len, NULL);
    put(r, " ", 1);
    put_double(r, sum);
    put(r, "\n", 1);
    put_name(r, name, "_count", labels, labels_len, NULL);
    put(r, " ", 1);
    put_u64(r, cumulative);
    put(r, "\n", 1);
}

struct entry {
    const struct series *s;
    size_t worker;
};

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    if (a->s->family != b->s->family)
        return a->s->family < b->s->family ? -1 : 1;
    size_t n = GW_MIN(a->s->labels_len, b->s->labels_len);
    int c = n ? memcmp(a->s->labels, b->s->labels, n) : 0;
    if (c)
        return c;
    if (a->s->labels_len != b->s->labels_len)
        return a->s->labels_len < b->s->labels_len ? -1 : 1;
    /* Workers in index order, so the floating-point sum is the same at every scrape. */
    return a->worker < b->worker ? -1 : a->worker > b->worker;
}

static bool same_set(const struct entry *a, const struct entry *b)
{
    return a->s->family == b->s->family && a->s->labels_len == b->s->labels_len &&
           memcmp(a->s->labels, b->s->labels, a->s->labels_len) == 0;
}

/* One histogram label set, summed over the entries [e, e + n) that share it. */
static void render_histogram(struct render *r, const struct family_desc *d, char le[][32], const struct entry *e,
                             size_t n)
{
    uint64_t counts[MAX_BOUNDS + 1] = {0};
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t b = 0; b <= d->nbounds; b++)
            counts[b] += atomic_load_explicit(&e[i].s->v[b], memory_order_relaxed);
        sum += bits_double(atomic_load_explicit(&e[i].s->v[d->nbounds + 1], memory_order_relaxed));
    }
    put_histogram(r, d->name, e->s->labels, e->s->labels_len, le, counts, d->nbounds, sum);
}

static void render_family(struct render *r, enum family f, const struct entry *e, size_t n)
{
    const struct family_desc *d = &families[f];
    put_header(r, d->name, d->help, d->bounds ? "histogram" : "counter");
    char le[MAX_BOUNDS + 1][32];
    if (d->bounds)
        make_le(le, d->bounds, d->nbounds);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_set(&e[i], &e[j]))
            j++;
        if (d->bounds) {
            render_histogram(r, d, le, &e[i], j - i);
        } else {
            uint64_t total = 0;
            for (size_t k = i; k < j; k++)
                total += atomic_load_explicit(&e[k].s->v[0], memory_order_relaxed);
            put_name(r, d->name, "", e[i].s->labels, e[i].s->labels_len, NULL);
            put(r, " ", 1);
            put_u64(r, total);
            put(r, "\n", 1);
        }
        i = j;
    }
}

/* ---- MCP rendering: fixed slots summed over the workers, zero series left out --------------- */

/* Sum over the workers of one atomic counter, named by a member path inside gw_metrics_t. */
#define SUM_WORKERS(total, workers, n, member)                                                                         \
    do {                                                                                                               \
        (total) = 0;                                                                                                   \
        for (size_t w_ = 0; w_ < (n); w_++)                                                                            \
            if ((workers)[w_] != NULL)                                                                                 \
                (total) += atomic_load_explicit(&(workers)[w_]->member, memory_order_relaxed);                         \
    } while (0)

/* which: an error type for mcp_request_duration_seconds, GW_MCP_ERR_COUNT for the initialization
 * histogram. Returns the sample count (0: nothing to render). */
static uint64_t read_mcp_histogram(gw_metrics_t *const *workers, size_t n, size_t which, uint64_t *counts,
                                   double *sum)
{
    uint64_t total = 0;
    *sum = 0;
    for (size_t b = 0; b <= MCP_NBOUNDS; b++)
        counts[b] = 0;
    for (size_t w = 0; w < n; w++) { /* in index order: the same float sum at every scrape */
        if (workers[w] == NULL)
            continue;
        const struct mcp_histogram *h =
            which < GW_MCP_ERR_COUNT ? &workers[w]->mcp.request[which] : &workers[w]->mcp.initialization;
        for (size_t b = 0; b <= MCP_NBOUNDS; b++)
            counts[b] += atomic_load_explicit(&h->v[b], memory_order_relaxed);
        *sum += bits_double(atomic_load_explicit(&h->v[MCP_NBOUNDS + 1], memory_order_relaxed));
    }
    for (size_t b = 0; b <= MCP_NBOUNDS; b++)
        total += counts[b];
    return total;
}

/* A family's HELP and TYPE come with its first series, so a family without samples is absent, as
 * in the reference (and as the GenAI families here). */
static void lazy_header(struct render *r, bool *done, const char *name, const char *help, const char *type)
{
    if (!*done)
        put_header(r, name, help, type);
    *done = true;
}

static void put_counter_line(struct render *r, const char *name, const char *labels, size_t labels_len, uint64_t v)
{
    put_name(r, name, "", labels, labels_len, NULL);
    put(r, " ", 1);
    put_u64(r, v);
    put(r, "\n", 1);
}

/* Label sets are written in byte order of their text, like the hashed families. The help texts
 * are the reference's instrument descriptions. */
static void render_mcp(struct render *r, gw_metrics_t *const *workers, size_t n)
{
    static const char *const status_names[MCP_STATUS_COUNT] = {[MCP_STATUS_ERROR] = "error",
                                                               [MCP_STATUS_SUCCESS] = "success"};
    char le[MAX_BOUNDS + 1][32];
    make_le(le, mcp_duration_bounds, MCP_NBOUNDS);
    char labels[128];
    uint64_t counts[MCP_NBOUNDS + 1], v;
    double sum;
    int len;
    bool header = false;

    /* Success has no label at all, so it sorts first; error types follow in enum (= byte) order. */
    for (size_t e = 0; e < GW_MCP_ERR_COUNT; e++) {
        if (read_mcp_histogram(workers, n, e, counts, &sum) == 0)
            continue;
        lazy_header(r, &header, "mcp_request_duration_seconds", "Duration of MCP requests", "histogram");
        len = e == GW_MCP_OK ? 0 : snprintf(labels, sizeof(labels), "error_type=\"%s\"", mcp_error_names[e]);
        put_histogram(r, "mcp_request_duration_seconds", labels, (size_t)len, le, counts, MCP_NBOUNDS, sum);
    }

    header = false;
    for (size_t i = 0; i < MCP_METHODS; i++) {
        for (size_t st = 0; st < MCP_STATUS_COUNT; st++) {
            SUM_WORKERS(v, workers, n, mcp.method[i][st]);
            if (v == 0)
                continue;
            lazy_header(r, &header, "mcp_method_count_total", "Total number of MCP methods invoked", "counter");
            len = snprintf(labels, sizeof(labels), "mcp_method_name=\"%s\",status=\"%s\"", mcp_methods[i],
                           status_names[st]);
            put_counter_line(r, "mcp_method_count_total", labels, (size_t)len, v);
        }
    }
    SUM_WORKERS(v, workers, n, mcp.method_error_unnamed);
    if (v > 0) { /* "status=..." sorts after every "mcp_method_name=..." */
        lazy_header(r, &header, "mcp_method_count_total", "Total number of MCP methods invoked", "counter");
        put_counter_line(r, "mcp_method_count_total", "status=\"error\"", 14, v);
    }

    if (read_mcp_histogram(workers, n, GW_MCP_ERR_COUNT, counts, &sum) > 0) {
        put_header(r, "mcp_initialization_duration_seconds", "Duration of MCP initialization", "histogram");
        put_histogram(r, "mcp_initialization_duration_seconds", "", 0, le, counts, MCP_NBOUNDS, sum);
    }

    header = false;
    for (size_t side = 0; side < GW_MCP_SIDE_COUNT; side++) {
        for (size_t c = 0; c < CAP_COUNT; c++) {
            SUM_WORKERS(v, workers, n, mcp.capabilities[side][c]);
            if (v == 0)
                continue;
            lazy_header(r, &header, "mcp_capabilities_negotiated_total", "Total number of MCP capabilities negotiated",
                        "counter");
            len = snprintf(labels, sizeof(labels), "capability_side=\"%s\",capability_type=\"%s\"",
                           mcp_side_names[side], mcp_caps[c].name);
            put_counter_line(r, "mcp_capabilities_negotiated_total", labels, (size_t)len, v);
        }
    }

    SUM_WORKERS(v, workers, n, mcp.progress);
    if (v > 0) {
        put_header(r, "mcp_progress_notifications_total", "Total number of MCP progress notifications sent", "counter");
        put_counter_line(r, "mcp_progress_notifications_total", "", 0, v);
    }
}

int gw_metrics_render_workers(gw_metrics_t *const *workers, size_t n, gw_buf_t *out)
{
    struct render r = {out, GW_OK};
    size_t start = out->len;
    size_t *counts = gw_calloc(n ? n : 1, sizeof(*counts));
    size_t total = 0;
    for (size_t w = 0; w < n; w++) {
        if (workers[w] == NULL)
            continue;
        /* Pairs with the owner's release store: slots[0..count) and their labels are complete. */
        counts[w] = atomic_load_explicit(&workers[w]->nseries, memory_order_acquire);
        total += counts[w];
    }
    struct entry *entries = gw_malloc((total ? total : 1) * sizeof(*entries));
    size_t k = 0;
    for (size_t w = 0; w < n; w++)
        for (size_t i = 0; i < counts[w]; i++)
            entries[k++] = (struct entry){workers[w]->slots[i], w};
    qsort(entries, total, sizeof(*entries), entry_cmp);

    for (size_t i = 0; i < total;) {
        size_t j = i;
        while (j < total && entries[j].s->family == entries[i].s->family)
            j++;
        render_family(&r, (enum family)entries[i].s->family, &entries[i], j - i);
        i = j;
    }
    render_mcp(&r, workers, n);

    for (size_t g = 0; g < GW_GAUGE_COUNT; g++) {
        int64_t sum = 0;
        for (size_t w = 0; w < n; w++)
            if (workers[w])
                sum += atomic_load_explicit(&workers[w]->gauges[g], memory_order_relaxed);
        put_header(&r, gauge_desc[g].name, gauge_desc[g].help, "gauge");
        puts_(&r, gauge_desc[g].name);
        put(&r, " ", 1);
        put_i64(&r, sum);
        put(&r, "\n", 1);
    }
    for (size_t c = 0; c < GW_COUNTER_COUNT; c++) {
        uint64_t sum = 0;
        for (size_t w = 0; w < n; w++)
            if (workers[w])
                sum += atomic_load_explicit(&workers[w]->counters[c], memory_order_relaxed);
        put_header(&r, counter_desc[c].name, counter_desc[c].help, "counter");
        puts_(&r, counter_desc[c].name);
        put(&r, " ", 1);
        put_u64(&r, sum);
        put(&r, "\n", 1);
    }
    free(entries);
    free(counts);
    return finish(&r, start);
}

/* ---- process metrics ----------------------------------------------------------------------- */

/* Reads a small /proc file whole into buf (NUL-terminated). Returns its length or -1. */
static ssize_t read_small_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

struct proc_stat {
    uint64_t utime, stime, starttime; /* clock ticks */
    uint64_t vsize;                   /* bytes */
    uint64_t rss;                     /* pages */
};

/* /proc/self/stat: the command name (field 2) may hold spaces and parentheses, so the fields are
 * counted from the last ')'. */
static bool read_proc_stat(struct proc_stat *st)
{
    char buf[1024];
    if (read_small_file("/proc/self/stat", buf, sizeof(buf)) <= 0)
        return false;
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    p++;
    uint64_t field[24] = {0};
    for (int i = 3; i <= 24; i++) { /* field numbers as in proc(5) */
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return false;
        char *end;
        field[i - 1] = strtoull(p, &end, 10);
        if (end == p) { /* field 3 (state) is a letter */
            while (*p && *p != ' ')
                p++;
        } else {
            p = end;
        }
    }
    st->utime = field[13];
    st->stime = field[14];
    st->starttime = field[21];
    st->vsize = field[22];
    st->rss = field[23];
    return true;
}

/* The boot time from /proc/stat, and hence the start time, never changes: computed once. */
static double process_start_time;
static pthread_once_t start_time_once = PTHREAD_ONCE_INIT;

static void compute_start_time(void)
{
    struct proc_stat st;
    long ticks = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL || ticks <= 0 || !read_proc_stat(&st)) {
        if (f)
            fclose(f);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "btime ", 6) == 0) {
            process_start_time = (double)strtoull(line + 6, NULL, 10) + (double)st.starttime / (double)ticks;
            break;
        }
    }
    free(line);
    fclose(f);
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int own = dirfd(d), n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (*end == '\0' && fd != own) /* the directory stream's own fd is not the process's */
            n++;
    }
    closedir(d);
    return n;
}

int gw_metrics_render_process(gw_buf_t *out)
{
    struct render r = {out, GW_OK};
    size_t start = out->len;
    struct proc_stat st;
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (read_proc_stat(&st) && ticks > 0 && page > 0) {
        put_header(&r, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter");
        puts_(&r, "process_cpu_seconds_total ");
        put_double(&r, (double)(st.utime + st.stime) / (double)ticks);
        puts_(&r, "\n");
        put_header(&r, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge");
        puts_(&r, "process_resident_memory_bytes ");
        put_u64(&r, st.rss * (uint64_t)page);
        puts_(&r, "\n");
        put_header(&r, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge");
        puts_(&r, "process_virtual_memory_bytes ");
        put_u64(&r, st.vsize);
        puts_(&r, "\n");
    }
    int fds = count_open_fds();
    if (fds >= 0) {
        put_header(&r, "process_open_fds", "Number of open file descriptors.", "gauge");
        puts_(&r, "process_open_fds ");
        put_u64(&r, (uint64_t)fds);
        puts_(&r, "\n");
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        put_header(&r, "process_max_fds", "Maximum number of open file descriptors.", "gauge");
        puts_(&r, "process_max_fds ");
        put_u64(&r, (uint64_t)rl.rlim_cur);
        puts_(&r, "\n");
    }
    pthread_once(&start_time_once, compute_start_time);
    if (process_start_time > 0) {
        put_header(&r, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge");
        puts_(&r, "process_start_time_seconds ");
        put_double(&r, process_start_time);
        puts_(&r, "\n");
    }
    return finish(&r, start);
}

int gw_metrics_render(gw_metrics_t *const *workers, size_t n, gw_buf_t *out)
{
    int rc = gw_metrics_render_workers(workers, n, out);
    if (rc == GW_OK)
        rc = gw_metrics_render_process(out);
    return rc;
}
