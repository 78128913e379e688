/* BackendTrafficPolicy (gateway.envoyproxy.io): retries with back-off, passive health and the
 * request timeout, for the HTTPRoute an AIGatewayRoute generates (same name) or for the Gateway.
 * A policy on the route replaces one on the Gateway, as Envoy Gateway does without mergeType. */
#include "config/yaml_loader_int.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>

#define GWAPI_GROUP "gateway.networking.k8s.io"
#define DEFAULT_NUM_RETRIES 2
#define DEFAULT_BACKOFF_MS 25

static const field_spec_t btp_fields[] = {
    {"targetRef", NULL},
    {"targetRefs", NULL},
    {"targetSelectors", NULL},
    {"mergeType", "policies are not merged: the route's replaces the Gateway's"},
    {"retry", NULL},
    {"healthCheck", NULL},
    {"timeout", NULL},
    {"rateLimit", NULL},
    {"loadBalancer", "backends are chosen by weight within a priority"},
    {"circuitBreaker", "aigw's connection limits are its own"},
    {"faultInjection", "fault injection is not supported"},
    {"tcpKeepalive", "TCP keepalive is the kernel's default"},
    {"connection", "upstream connection settings are aigw's own"},
    {"dns", "DNS is resolved by the system resolver"},
    {"http2", "aigw speaks HTTP/1.1 upstream"},
    {"proxyProtocol", "PROXY protocol is not supported"},
    {"useClientProtocol", "aigw speaks HTTP/1.1 upstream"},
    {"compression", "responses are not recompressed"},
    {"responseCompression", "responses are not recompressed"},
    {"responseOverride", "error bodies come from aigw"},
    {"httpUpgrade", "upgrades are not supported"},
    {"requestBuffer", "the request body limit is the ClientTrafficPolicy's bufferLimit"},
    {"telemetry", "telemetry is aigw's own"},
    {"routingType", "backends are resolved by name"},
};

/* Envoy Gateway's retryOn.triggers, and what aigw does with each. */
static void add_trigger(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *t, gw_retry_policy_t *r)
{
    if (strcmp(t, "connect-failure") == 0) {
        r->on_connect_failure = true;
    } else if (strcmp(t, "reset") == 0) {
        r->on_reset = true;
    } else if (strcmp(t, "5xx") == 0) {
        r->on_5xx = true;
    } else if (strcmp(t, "gateway-error") == 0) {
        r->on_gateway_error = true;
    } else if (strcmp(t, "retriable-status-codes") == 0) {
        r->on_retriable_status = true;
    } else if (strcmp(t, "reset-before-request") == 0) {
        r->on_connect_failure = true; /* nothing was sent: the same safe case */
    } else if (strcmp(t, "retriable-4xx") == 0) {
        r->on_retriable_status = true;
        bool have = false;
        for (size_t i = 0; i < r->n_status_codes; i++)
            have = have || r->status_codes[i] == 409;
        if (!have && r->n_status_codes < GW_ARRAY_SIZE(r->status_codes))
            r->status_codes[r->n_status_codes++] = 409;
    } else if (strcmp(t, "refused-stream") == 0 || strcmp(t, "cancelled") == 0 ||
               strcmp(t, "deadline-exceeded") == 0 || strcmp(t, "internal") == 0 ||
               strcmp(t, "resource-exhausted") == 0 || strcmp(t, "unavailable") == 0) {
        lnote(ld, m, at, "spec.retry.retryOn.triggers %s is ignored: an HTTP/2 or gRPC condition", t);
    } else {
        lerr(ld, m, at,
             "spec.retry.retryOn.triggers: Unsupported value: \"%s\": supported values: \"5xx\", \"gateway-error\", "
             "\"reset\", \"reset-before-request\", \"connect-failure\", \"retriable-4xx\", \"refused-stream\", "
             "\"retriable-status-codes\", \"cancelled\", \"deadline-exceeded\", \"internal\", \"resource-exhausted\", "
             "\"unavailable\"",
             t);
    }
}

static void parse_retry(ld_t *ld, const meta_t *m, const gw_yaml_node_t *rt, btp_t *b)
{
    gw_retry_policy_t *r = &b->retry;
    static const field_spec_t known[] = {
        {"numRetries", NULL}, {"numAttemptsPerPriority", NULL}, {"retryOn", NULL}, {"perRetry", NULL}};
    CHECK_FIELDS(ld, m, rt, "spec.retry", known);
    b->has_retry = true;
    uint64_t v;
    r->num_retries = DEFAULT_NUM_RETRIES;
    if (fuint(ld, m, rt, "numRetries", "spec.retry.numRetries", 0, INT32_MAX, &v) == 1)
        r->num_retries = (uint32_t)v;
    if (fuint(ld, m, rt, "numAttemptsPerPriority", "spec.retry.numAttemptsPerPriority", 0, INT32_MAX, &v) == 1)
        r->num_attempts_per_priority = (uint32_t)v;
    const gw_yaml_node_t *on = field(ld, m, rt, "retryOn", GW_YAML_MAP, "spec.retry.retryOn", false);
    if (on == NULL) {
        /* Envoy Gateway's default: connect-failure, refused-stream, unavailable, cancelled,
         * retriable-status-codes with 503. */
        r->on_connect_failure = true;
        r->on_retriable_status = true;
        r->status_codes[0] = 503;
        r->n_status_codes = 1;
    } else {
        static const field_spec_t on_known[] = {{"triggers", NULL}, {"httpStatusCodes", NULL}};
        CHECK_FIELDS(ld, m, on, "spec.retry.retryOn", on_known);
        const gw_yaml_node_t *codes = fseq(ld, m, on, "httpStatusCodes", "spec.retry.retryOn.httpStatusCodes", false,
                                           GW_ARRAY_SIZE(r->status_codes));
        for (size_t i = 0; codes != NULL && i < codes->n_items; i++) {
            const gw_yaml_node_t *e = codes->items[i];
            uint64_t x = 0;
            bool ok = e->kind == GW_YAML_SCALAR && e->len == 3;
            for (size_t k = 0; ok && k < 3; k++) {
                ok = e->str[k] >= '0' && e->str[k] <= '9';
                x = x * 10 + (uint64_t)(e->str[k] - '0');
            }
            if (!ok || x < 100 || x > 600) {
                lerr(ld, m, e, "spec.retry.retryOn.httpStatusCodes[%zu] must be an HTTP status from 100 to 600", i);
                continue;
            }
            r->status_codes[r->n_status_codes++] = (uint16_t)x;
        }
        const gw_yaml_node_t *tr = fseq(ld, m, on, "triggers", "spec.retry.retryOn.triggers", false, 16);
        for (size_t i = 0; tr != NULL && i < tr->n_items; i++) {
            if (tr->items[i]->kind != GW_YAML_SCALAR) {
                lerr(ld, m, tr->items[i], "spec.retry.retryOn.triggers[%zu] must be a string", i);
                continue;
            }
            add_trigger(ld, m, tr->items[i], tr->items[i]->str, r);
        }
        /* Status codes without the trigger still mean "retry on these", as Envoy Gateway adds it. */
        if (r->n_status_codes > 0)
            r->on_retriable_status = true;
        else if (r->on_retriable_status)
            lnote(ld, m, tr, "spec.retry.retryOn: retriable-status-codes without httpStatusCodes retries no status");
    }
    const gw_yaml_node_t *pr = field(ld, m, rt, "perRetry", GW_YAML_MAP, "spec.retry.perRetry", false);
    r->backoff_base_ms = DEFAULT_BACKOFF_MS;
    r->backoff_max_ms = 10 * DEFAULT_BACKOFF_MS;
    if (pr != NULL) {
        static const field_spec_t pr_known[] = {{"timeout", NULL}, {"backOff", NULL}};
        CHECK_FIELDS(ld, m, pr, "spec.retry.perRetry", pr_known);
        fduration(ld, m, pr, "timeout", "spec.retry.perRetry.timeout", &r->per_retry_timeout_ms);
        const gw_yaml_node_t *bo = field(ld, m, pr, "backOff", GW_YAML_MAP, "spec.retry.perRetry.backOff", false);
        if (bo != NULL) {
            uint64_t base = 0, max = 0;
            int hb = fduration(ld, m, bo, "baseInterval", "spec.retry.perRetry.backOff.baseInterval", &base);
            int hm = fduration(ld, m, bo, "maxInterval", "spec.retry.perRetry.backOff.maxInterval", &max);
            if (hb == 1 && base == 0) {
                lerr(ld, m, gw_yaml_get(bo, "baseInterval"), "spec.retry.perRetry.backOff.baseInterval must be above 0");
                hb = -1;
            }
            if (hb == 1) {
                r->backoff_base_ms = base;
                r->backoff_max_ms = 10 * base;
            }
            if (hm == 1) {
                if (max < r->backoff_base_ms)
                    lerr(ld, m, gw_yaml_get(bo, "maxInterval"),
                         "spec.retry.perRetry.backOff: maxInterval cannot be less than baseInterval");
                else
                    r->backoff_max_ms = max;
            }
        }
    }
}

static void parse_health(ld_t *ld, const meta_t *m, const gw_yaml_node_t *hc, btp_t *b)
{
    static const field_spec_t known[] = {
        {"passive", NULL},
        {"active", "active health checks are not run (passive health is always on)"},
        {"panicThreshold", "every backend may be ejected"},
    };
    CHECK_FIELDS(ld, m, hc, "spec.healthCheck", known);
    const gw_yaml_node_t *ps = field(ld, m, hc, "passive", GW_YAML_MAP, "spec.healthCheck.passive", false);
    if (ps == NULL)
        return;
    static const field_spec_t pknown[] = {
        {"consecutive5XxErrors", NULL},
        {"baseEjectionTime", NULL},
        {"interval", "failures are counted as they happen"},
        {"maxEjectionPercent", "every backend of a tier may be ejected; the next tier takes over"},
        {"consecutiveLocalOriginFailures", "connect errors count with consecutive5XxErrors"},
        {"consecutiveGatewayErrors", "502, 503 and 504 count with consecutive5XxErrors"},
        {"splitExternalLocalOriginErrors", "connect errors count with consecutive5XxErrors"},
    };
    CHECK_FIELDS(ld, m, ps, "spec.healthCheck.passive", pknown);
    b->has_health = true;
    gw_passive_health_t *h = &b->health;
    uint64_t v;
    if (fuint(ld, m, ps, "consecutive5XxErrors", "spec.healthCheck.passive.consecutive5XxErrors", 0, INT32_MAX, &v) ==
        1) {
        if (v == 0)
            lunsup(ld, m, gw_yaml_get(ps, "consecutive5XxErrors"),
                   "spec.healthCheck.passive.consecutive5XxErrors 0 is not supported (passive health is always on; "
                   "use a high number)");
        else
            h->consecutive_failures = (uint32_t)v;
    }
    uint64_t base;
    if (fduration(ld, m, ps, "baseEjectionTime", "spec.healthCheck.passive.baseEjectionTime", &base) == 1) {
        if (base == 0)
            lerr(ld, m, gw_yaml_get(ps, "baseEjectionTime"), "spec.healthCheck.passive.baseEjectionTime must be above 0");
        else
            h->base_ejection_ms = base;
    }
    h->max_ejection_ms = GW_MAX(h->max_ejection_ms, h->base_ejection_ms);
}

static void parse_timeout(ld_t *ld, const meta_t *m, const gw_yaml_node_t *to, btp_t *b)
{
    static const field_spec_t known[] = {{"http", NULL}, {"tcp", NULL}};
    CHECK_FIELDS(ld, m, to, "spec.timeout", known);
    const gw_yaml_node_t *tcp = field(ld, m, to, "tcp", GW_YAML_MAP, "spec.timeout.tcp", false);
    if (tcp != NULL) {
        static const field_spec_t tknown[] = {{"connectTimeout", "connects are bounded by aigw's own timeout"}};
        CHECK_FIELDS(ld, m, tcp, "spec.timeout.tcp", tknown);
        uint64_t ms;
        fduration(ld, m, tcp, "connectTimeout", "spec.timeout.tcp.connectTimeout", &ms);
    }
    const gw_yaml_node_t *http = field(ld, m, to, "http", GW_YAML_MAP, "spec.timeout.http", false);
    if (http == NULL)
        return;
    static const field_spec_t hknown[] = {
        {"requestTimeout", NULL},
        {"connectionIdleTimeout", "idle upstream connections are closed by aigw's pool"},
        {"maxConnectionDuration", "upstream connections live as long as aigw's pool keeps them"},
    };
    CHECK_FIELDS(ld, m, http, "spec.timeout.http", hknown);
    uint64_t ms;
    if (fduration(ld, m, http, "connectionIdleTimeout", "spec.timeout.http.connectionIdleTimeout", &ms) < 0 ||
        fduration(ld, m, http, "maxConnectionDuration", "spec.timeout.http.maxConnectionDuration", &ms) < 0)
        return;
    if (fduration(ld, m, http, "requestTimeout", "spec.timeout.http.requestTimeout", &b->request_timeout_ms) == 1)
        b->has_timeout = true;
}

void gw_yl_parse_btp(ld_t *ld, set_t *s, const meta_t *m)
{
    btp_t *b = VEC_PUSH(s->btps);
    b->m = *m;
    size_t before = ld->n_errors;
    CHECK_FIELDS(ld, m, m->spec, "spec", btp_fields);
    refs_t all = {0};
    const gw_yaml_node_t *one = field(ld, m, m->spec, "targetRef", GW_YAML_MAP, "spec.targetRef", false);
    if (one != NULL) {
        ref_t r;
        if (parse_ref(ld, m, one, "spec.targetRef", &r)) {
            r.ns = m->ns;
            *VEC_PUSH(all) = r;
        }
    }
    gw_yl_parse_policy_targets(ld, m, false, &all);
    if (present(m->spec, "targetSelectors"))
        lunsup(ld, m, gw_yaml_get(m->spec, "targetSelectors"),
               "spec.targetSelectors is not supported (resources have no labels here): use targetRefs");
    else if (one == NULL && !present(m->spec, "targetRefs"))
        lerr(ld, m, m->spec, "spec: either targetRef or targetRefs must be used");
    for (size_t i = 0; i < all.n; i++) {
        const ref_t *r = &all.v[i];
        if (r->group != NULL && strcmp(r->group, GWAPI_GROUP) != 0) {
            lerr(ld, m, r->at, "spec.targetRefs: this policy can only have a targetRefs[*].group of %s", GWAPI_GROUP);
            continue;
        }
        if (r->kind == NULL) {
            lerr(ld, m, r->at, "spec.targetRef.kind is required");
            continue;
        }
        if (strcmp(r->kind, "Gateway") != 0 && strcmp(r->kind, "HTTPRoute") != 0) {
            if (strcmp(r->kind, "GRPCRoute") == 0 || strcmp(r->kind, "TCPRoute") == 0 ||
                strcmp(r->kind, "UDPRoute") == 0 || strcmp(r->kind, "TLSRoute") == 0)
                lunsup(ld, m, r->at, "spec.targetRefs: %s targets are not supported (Gateway, or HTTPRoute named after "
                       "an AIGatewayRoute)", r->kind);
            else
                lerr(ld, m, r->at,
                     "spec.targetRefs: this policy can only have a targetRefs[*].kind of "
                     "Gateway/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute");
            continue;
        }
        if (present(r->at, "sectionName")) {
            lunsup(ld, m, gw_yaml_get(r->at, "sectionName"),
                   "spec.targetRefs sectionName is not supported (AIGatewayRoute rules and aigw's listener have no "
                   "names to select)");
            continue;
        }
        *VEC_PUSH(b->targets) = *r;
    }
    free(all.v);
    const gw_yaml_node_t *n;
    if ((n = field(ld, m, m->spec, "retry", GW_YAML_MAP, "spec.retry", false)) != NULL)
        parse_retry(ld, m, n, b);
    if ((n = field(ld, m, m->spec, "healthCheck", GW_YAML_MAP, "spec.healthCheck", false)) != NULL) {
        b->health = (gw_passive_health_t){.consecutive_failures = 1, .base_ejection_ms = 1000, .max_ejection_ms = 30000};
        parse_health(ld, m, n, b);
    }
    if ((n = field(ld, m, m->spec, "timeout", GW_YAML_MAP, "spec.timeout", false)) != NULL)
        parse_timeout(ld, m, n, b);
    if (present(m->spec, "rateLimit"))
        /* Ignoring a limit would let traffic through that the user meant to stop. */
        lunsup(ld, m, gw_yaml_get(m->spec, "rateLimit"),
               "spec.rateLimit is not supported yet: the limits would not be enforced");
    b->ok = ld->n_errors == before;
}

static bool targets(const btp_t *b, const char *kind, const char *ns, const char *name)
{
    for (size_t i = 0; i < b->targets.n; i++)
        if (strcmp(b->targets.v[i].kind, kind) == 0 && strcmp(b->targets.v[i].name, name) == 0 &&
            strcmp(b->targets.v[i].ns, ns) == 0)
            return true;
    return false;
}

void gw_yl_link_btps(ld_t *ld, set_t *s)
{
    for (size_t i = 0; i < s->btps.n; i++) {
        btp_t *b = &s->btps.v[i];
        for (size_t j = 0; j < b->targets.n; j++) {
            const ref_t *r = &b->targets.v[j];
            bool gateway = strcmp(r->kind, "Gateway") == 0;
            if (gateway) {
                bool found = false;
                for (size_t k = 0; k < s->gateways.n && !found; k++)
                    found = strcmp(s->gateways.v[k].m.name, r->name) == 0 && strcmp(s->gateways.v[k].m.ns, r->ns) == 0;
                if (!found)
                    lref(ld, &b->m, r->at, "Gateway %s/%s not found", r->ns, r->name);
            } else if (FIND(s->routes, r->ns, r->name) == NULL) {
                lref(ld, &b->m, r->at,
                     "HTTPRoute %s/%s not found (it is the route an AIGatewayRoute of the same name generates)", r->ns,
                     r->name);
            }
            /* Two policies on one target: Envoy Gateway keeps the older one; a file has no age. */
            for (size_t k = 0; k < i; k++)
                if (targets(&s->btps.v[k], r->kind, r->ns, r->name)) {
                    lunsup(ld, &b->m, r->at, "%s %s/%s already has BackendTrafficPolicy %s/%s", r->kind, r->ns,
                           r->name, s->btps.v[k].m.ns, s->btps.v[k].m.name);
                    break;
                }
        }
    }
}

const btp_t *gw_yl_btp_for_route(const set_t *s, const meta_t *route)
{
    for (size_t i = 0; i < s->btps.n; i++)
        if (targets(&s->btps.v[i], "HTTPRoute", route->ns, route->name))
            return &s->btps.v[i];
    if (s->gateways.n == 0)
        return NULL;
    const meta_t *g = &s->gateways.v[0].m;
    for (size_t i = 0; i < s->btps.n; i++)
        if (targets(&s->btps.v[i], "Gateway", g->ns, g->name))
            return &s->btps.v[i];
    return NULL;
}
