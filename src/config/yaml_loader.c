/* Builds a snapshot from the reference's YAML resources: ${VAR} substitution, the DOM, a
 * per-kind parse of every document (table `kinds`) that checks the CRD schema and CEL rules,
 * then linking (routes -> AIServiceBackends -> Backends, policies -> targets, Secrets,
 * ConfigMaps, ReferenceGrants) with every problem reported as file:line:col. BackendTrafficPolicy
 * lives in yaml_traffic.c, MCPRoute in yaml_mcp.c, the shared helpers in yaml_fields.c. */
#include "config/yaml_loader_int.h"

#include "core/alloc.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONFIG_FILE ((size_t)16 << 20)
#define MAX_SECRET_FILE ((size_t)1 << 20)
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_OWNED_BY "Envoy AI Gateway"
#define MODEL_HEADER "x-ai-eg-model"
#define SUBST_ENV "substitution.aigw.run/env/"
#define SUBST_FILE "substitution.aigw.run/file/"
#define MAX_WEIGHT 1000000 /* Gateway API's own cap on a backend weight */

#define AIGW_GROUP "aigateway.envoyproxy.io"
#define EG_GROUP "gateway.envoyproxy.io"
#define GWAPI_GROUP "gateway.networking.k8s.io"
#define INFERENCE_GROUP "inference.networking.k8s.io"

static void hm_free(hm_t *hm)
{
    free(hm->set.v);
    free(hm->remove.v);
}

static void set_free(set_t *s)
{
    free(s->gateways.v);
    free(s->routes.v);
    for (size_t i = 0; i < s->svcs.n; i++) {
        hm_free(&s->svcs.v[i].hm);
        gw_auth_config_t *a = &s->svcs.v[i].auth;
        wipe_free(a->api_key);
        wipe_free(a->credentials);
        free(a->region);
        free(a->aws_profile);
        free(a->gcp_project);
        free(a->azure_client_id);
        free(a->azure_tenant_id);
    }
    free(s->svcs.v);
    for (size_t i = 0; i < s->backends.n; i++) {
        free(s->backends.v[i].host);
        free(s->backends.v[i].ca_pem);
    }
    free(s->backends.v);
    for (size_t i = 0; i < s->tls.n; i++) {
        free(s->tls.v[i].targets.v);
        free(s->tls.v[i].ca_refs.v);
    }
    free(s->tls.v);
    for (size_t i = 0; i < s->secs.n; i++)
        free(s->secs.v[i].targets.v);
    free(s->secs.v);
    for (size_t i = 0; i < s->secrets.n; i++) {
        for (size_t j = 0; j < s->secrets.v[i].data.n; j++)
            wipe_free(s->secrets.v[i].data.v[j].value);
        free(s->secrets.v[i].data.v);
    }
    free(s->secrets.v);
    for (size_t i = 0; i < s->configmaps.n; i++)
        free(s->configmaps.v[i].data.v);
    free(s->configmaps.v);
    for (size_t i = 0; i < s->grants.n; i++) {
        free(s->grants.v[i].from.v);
        free(s->grants.v[i].to.v);
    }
    free(s->grants.v);
    free(s->ctps.v);
    for (size_t i = 0; i < s->btps.n; i++)
        free(s->btps.v[i].targets.v);
    free(s->btps.v);
    free(s->mcps.v);
}

static bool streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* ---- pieces shared by several kinds ---- */

static void parse_header_mutation(ld_t *ld, const meta_t *m, const gw_yaml_node_t *parent, const char *path, hm_t *hm)
{
    char p[192];
    snprintf(p, sizeof(p), "%s.headerMutation", path);
    const gw_yaml_node_t *n = field(ld, m, parent, "headerMutation", GW_YAML_MAP, p, false);
    if (n == NULL)
        return;
    snprintf(p, sizeof(p), "%s.headerMutation.set", path);
    const gw_yaml_node_t *set = fseq(ld, m, n, "set", p, false, 16);
    for (size_t i = 0; set != NULL && i < set->n_items; i++) {
        const gw_yaml_node_t *e = set->items[i];
        char q[224];
        snprintf(q, sizeof(q), "%s.headerMutation.set[%zu]", path, i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping {name, value}", q);
            continue;
        }
        char qn[240], qv[240];
        snprintf(qn, sizeof(qn), "%s.name", q);
        snprintf(qv, sizeof(qv), "%s.value", q);
        const char *name = fstr(ld, m, e, "name", qn, true);
        const gw_yaml_node_t *val = field(ld, m, e, "value", GW_YAML_SCALAR, qv, false);
        if (name != NULL && !is_token(name)) {
            lerr(ld, m, gw_yaml_get(e, "name"), "%s %s is not a valid header name", qn, name);
            continue;
        }
        if (val != NULL && !is_header_value(val->str)) {
            lerr(ld, m, val, "%s contains a line break or control character", qv);
            continue;
        }
        if (name == NULL)
            continue;
        if (strncasecmp(name, "x-ai-eg-", 8) == 0) {
            /* The gateway's own headers: the reference's mutator skips them, so does aigw. */
            lnote(ld, m, gw_yaml_get(e, "name"), "%s %s is ignored: x-ai-eg-* headers belong to the gateway", qn, name);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < hm->set.n && !dup; j++)
            dup = gw_str_case_eq(gw_str_c(hm->set.v[j].name), gw_str_c(name));
        if (dup) {
            lerr(ld, m, gw_yaml_get(e, "name"), "%s: Duplicate value: \"%s\"", qn, name);
            continue;
        }
        kv_t *kv = VEC_PUSH(hm->set);
        kv->name = name;
        kv->value = val ? val->str : ""; /* a header value is never echoed: it may be a credential */
    }
    snprintf(p, sizeof(p), "%s.headerMutation.remove", path);
    const gw_yaml_node_t *rm = fseq(ld, m, n, "remove", p, false, 16);
    for (size_t i = 0; rm != NULL && i < rm->n_items; i++) {
        const gw_yaml_node_t *e = rm->items[i];
        if (e->kind != GW_YAML_SCALAR || !is_token(e->str)) {
            lerr(ld, m, e, "%s[%zu] must be a header name", p, i);
            continue;
        }
        if (strncasecmp(e->str, "x-ai-eg-", 8) == 0) {
            lnote(ld, m, e, "%s[%zu] %s is ignored: x-ai-eg-* headers belong to the gateway", p, i, e->str);
            continue;
        }
        *VEC_PUSH(hm->remove) = e->str;
    }
}

/* Policy targetRefs (LocalPolicyTargetReference: group, kind and name all required; always
 * the policy's own namespace). The caller checks which kinds it takes. */
void gw_yl_parse_policy_targets(ld_t *ld, const meta_t *m, bool required, refs_t *vec)
{
    const gw_yaml_node_t *tr = fseq(ld, m, m->spec, "targetRefs", "spec.targetRefs", required, 16);
    if (tr != NULL && tr->n_items == 0 && required)
        lerr(ld, m, tr, "spec.targetRefs in body should have at least 1 items");
    for (size_t i = 0; tr != NULL && i < tr->n_items; i++) {
        const gw_yaml_node_t *e = tr->items[i];
        char p[64], q[96];
        snprintf(p, sizeof(p), "spec.targetRefs[%zu]", i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping {group, kind, name}", p);
            continue;
        }
        ref_t r;
        bool ok = parse_ref(ld, m, e, p, &r);
        if (r.group == NULL) {
            snprintf(q, sizeof(q), "%s.group", p);
            lerr(ld, m, e, "%s is required", q);
            ok = false;
        }
        if (r.kind == NULL || *r.kind == '\0') {
            snprintf(q, sizeof(q), "%s.kind", p);
            lerr(ld, m, e, "%s is required", q);
            ok = false;
        }
        if (r.ns_written)
            lnote(ld, m, gw_yaml_get(e, "namespace"), "%s.namespace is ignored: a policy targets its own namespace", p);
        r.ns = m->ns;
        if (ok)
            *VEC_PUSH(*vec) = r;
    }
}

/* ---- Gateway ---- */

static const field_spec_t gateway_fields[] = {
    {"gatewayClassName", NULL},
    {"listeners", NULL},
    {"infrastructure", "it configures the Envoy deployment"},
    {"addresses", "aigw listens on every address"},
    {"backendTLS", "use a BackendTLSPolicy per Backend"},
    {"allowedListeners", NULL},
};

static void parse_gateway(ld_t *ld, set_t *s, const meta_t *m)
{
    gateway_t *g = VEC_PUSH(s->gateways);
    g->m = *m;
    size_t before = ld->n_errors;
    if (s->gateways.n > 1) {
        const meta_t *first = &s->gateways.v[0].m;
        /* The reference's aigw serves exactly one Gateway too. */
        lunsup(ld, m, m->root, "only one Gateway is supported (already have Gateway %s/%s)", first->ns,
               first->name ? first->name : "(unnamed)");
    }
    CHECK_FIELDS(ld, m, m->spec, "spec", gateway_fields);
    const gw_yaml_node_t *ls = fseq(ld, m, m->spec, "listeners", "spec.listeners", false, 64);
    if (ls == NULL || ls->n_items == 0) {
        /* The reference's wording: "gateway aigw-run has no listeners configured". */
        lerr(ld, m, ls ? ls : gw_yaml_get(m->spec, "listeners") ? gw_yaml_get(m->spec, "listeners") : m->spec,
             "no listeners configured");
        goto out;
    }
    for (size_t i = 0; i < ls->n_items; i++) {
        const gw_yaml_node_t *l = ls->items[i];
        char p[64], q[96];
        snprintf(p, sizeof(p), "spec.listeners[%zu]", i);
        if (l->kind != GW_YAML_MAP) {
            lerr(ld, m, l, "%s must be a mapping", p);
            continue;
        }
        snprintf(q, sizeof(q), "%s.name", p);
        const char *lname = fstr(ld, m, l, "name", q, true);
        for (size_t j = 0; lname != NULL && j < i; j++)
            if (streq(gw_yaml_str(gw_yaml_get(ls->items[j], "name")), lname))
                lerr(ld, m, gw_yaml_get(l, "name"), "spec.listeners: Listener name must be unique within the Gateway (%s)",
                     lname);
        snprintf(q, sizeof(q), "%s.protocol", p);
        const char *proto = fstr(ld, m, l, "protocol", q, true);
        uint64_t port;
        snprintf(q, sizeof(q), "%s.port", p);
        int rc = fuint(ld, m, l, "port", q, 1, 65535, &port);
        if (rc == 0)
            lerr(ld, m, l, "%s is required", q);
        bool https = streq(proto, "HTTPS");
        const gw_yaml_node_t *tls = gw_yaml_get(l, "tls");
        if ((https || streq(proto, "TLS")) && gw_yaml_is_null(tls))
            lerr(ld, m, l, "%s: tls must be specified for protocols ['HTTPS', 'TLS']", p);
        if (proto != NULL && !https && !streq(proto, "HTTP")) {
            lunsup(ld, m, gw_yaml_get(l, "protocol"), "%s.protocol %s is not supported (HTTP or HTTPS)", p, proto);
            continue;
        }
        if (!gw_yaml_is_null(gw_yaml_get(l, "hostname")))
            lnote(ld, m, gw_yaml_get(l, "hostname"), "%s.hostname is ignored: every host name is served", p);
        ref_t cert = {0};
        if (https && !gw_yaml_is_null(tls)) {
            snprintf(q, sizeof(q), "%s.tls", p);
            const gw_yaml_node_t *t = field(ld, m, l, "tls", GW_YAML_MAP, q, true);
            static const char *const modes[] = {"Terminate", "Passthrough", NULL};
            snprintf(q, sizeof(q), "%s.tls.mode", p);
            int mode = t ? fenum(ld, m, t, "mode", q, modes, false) : -1;
            if (mode == 1)
                lunsup(ld, m, gw_yaml_get(t, "mode"), "%s: TLS Passthrough is not supported (aigw terminates TLS)", q);
            snprintf(q, sizeof(q), "%s.tls.certificateRefs", p);
            const gw_yaml_node_t *crs = t ? fseq(ld, m, t, "certificateRefs", q, false, 64) : NULL;
            if (t != NULL && mode != 1 && (crs == NULL || crs->n_items == 0) && !present(t, "options"))
                lerr(ld, m, t, "%s.tls: certificateRefs or options must be specified when mode is Terminate", p);
            else if (t != NULL && mode != 1 && (crs == NULL || crs->n_items == 0))
                lunsup(ld, m, t, "%s.tls: a certificate is required (certificateRefs to a kubernetes.io/tls Secret)",
                       p);
            for (size_t j = 0; crs != NULL && j < crs->n_items; j++) {
                char cp[128];
                snprintf(cp, sizeof(cp), "%s.tls.certificateRefs[%zu]", p, j);
                if (crs->items[j]->kind != GW_YAML_MAP) {
                    lerr(ld, m, crs->items[j], "%s must be a mapping {name, namespace}", cp);
                    continue;
                }
                ref_t r;
                if (!parse_ref(ld, m, crs->items[j], cp, &r))
                    continue;
                if ((r.kind != NULL && strcmp(r.kind, "Secret") != 0) || (r.group != NULL && *r.group != '\0')) {
                    lunsup(ld, m, crs->items[j], "%s: only Secret certificates are supported, not %s", cp,
                           r.kind ? r.kind : r.group);
                    continue;
                }
                if (j == 0)
                    cert = r;
                else if (i == 0)
                    lnote(ld, m, crs->items[j], "%s is ignored: only the first certificate is served (no SNI selection)",
                          cp);
            }
        }
        if (i == 0) {
            g->listener = l;
            g->https = https;
            g->cert = cert;
            if (rc == 1)
                g->port = (uint16_t)port;
        } else if (rc == 1) {
            lnote(ld, m, l, "%s is ignored: only the first listener is served (port %llu)", p, (unsigned long long)port);
        }
    }
out:
    g->ok = ld->n_errors == before;
}

/* ---- Backend (gateway.envoyproxy.io) ---- */

static const field_spec_t backend_fields[] = {
    {"endpoints", NULL},
    {"type", NULL},
    {"appProtocols", "aigw speaks HTTP/1.1 to every backend"},
    {"fallback", "use AIGatewayRoute backendRefs[].priority"},
    {"tls", "use a BackendTLSPolicy"},
};

static void parse_backend(ld_t *ld, set_t *s, const meta_t *m)
{
    be_t *b = VEC_PUSH(s->backends);
    b->m = *m;
    size_t before = ld->n_errors;
    CHECK_FIELDS(ld, m, m->spec, "spec", backend_fields);
    static const char *const types[] = {"Endpoints", "DynamicResolver", NULL};
    if (fenum(ld, m, m->spec, "type", "spec.type", types, false) == 1)
        lunsup(ld, m, gw_yaml_get(m->spec, "type"), "spec.type DynamicResolver is not supported (list endpoints)");
    const gw_yaml_node_t *eps = fseq(ld, m, m->spec, "endpoints", "spec.endpoints", true, 64);
    if (eps != NULL && eps->n_items == 0)
        lerr(ld, m, eps, "spec.endpoints must have at least one endpoint");
    for (size_t i = 0; eps != NULL && i < eps->n_items; i++) {
        const gw_yaml_node_t *e = eps->items[i];
        char p[64];
        snprintf(p, sizeof(p), "spec.endpoints[%zu]", i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping", p);
            continue;
        }
        int n = present(e, "fqdn") + present(e, "ip") + present(e, "unix");
        if (n != 1)
            lerr(ld, m, e, "%s: exactly one of fqdn, ip or unix must be specified", p);
    }
    if (eps != NULL && eps->n_items > 0 && eps->items[0]->kind == GW_YAML_MAP) {
        const gw_yaml_node_t *e = eps->items[0];
        if (eps->n_items > 1)
            lnote(ld, m, eps, "spec.endpoints: only the first of %zu endpoints is used", eps->n_items);
        const gw_yaml_node_t *which = NULL;
        const char *host = NULL;
        bool is_fqdn = false;
        if (present(e, "fqdn")) {
            is_fqdn = true;
            which = field(ld, m, e, "fqdn", GW_YAML_MAP, "spec.endpoints[0].fqdn", true);
            host = which ? fstr(ld, m, which, "hostname", "spec.endpoints[0].fqdn.hostname", true) : NULL;
        } else if (present(e, "ip")) {
            which = field(ld, m, e, "ip", GW_YAML_MAP, "spec.endpoints[0].ip", true);
            host = which ? fstr(ld, m, which, "address", "spec.endpoints[0].ip.address", true) : NULL;
        } else if (present(e, "unix")) {
            lunsup(ld, m, e, "spec.endpoints[0]: unix socket endpoints are not supported");
        } else {
            lerr(ld, m, e, "spec.endpoints[0] needs fqdn {hostname, port} or ip {address, port}");
        }
        if (host != NULL) {
            /* A host goes into a Host header and a connect call: no spaces, slashes or controls. */
            for (const char *q = host; *q; q++) {
                if ((unsigned char)*q <= ' ' || *q == '/' || *q == '@' || *q == 0x7f) {
                    lerr(ld, m, which, "spec.endpoints[0]: %s is not a valid host", host);
                    host = NULL;
                    break;
                }
            }
        }
        if (host != NULL) {
            size_t hl = strlen(host);
            if (hl > 2 && host[0] == '[' && host[hl - 1] == ']')
                b->host = gw_strndup(host + 1, hl - 2);
            else
                b->host = gw_strdup(host);
            uint64_t port;
            if (fuint(ld, m, which, "port", is_fqdn ? "spec.endpoints[0].fqdn.port" : "spec.endpoints[0].ip.port", 1,
                      65535, &port) == 1)
                b->port = (uint16_t)port;
        }
    }
    b->ok = ld->n_errors == before;
}

/* ---- AIServiceBackend ---- */

static const char *const schema_names[] = {"OpenAI",      "Cohere",       "AWSBedrock", "AzureOpenAI",
                                           "GCPVertexAI", "GCPAnthropic", "Anthropic",  "AWSAnthropic",
                                           NULL};

static const field_spec_t svc_fields[] = {
    {"schema", NULL},
    {"backendRef", NULL},
    {"headerMutation", NULL},
    {"timeouts", "not an AIServiceBackend field in v0.4 (the route rule's timeouts apply)"},
    {"backendSecurityPolicyRef", "removed after v0.3: target the AIServiceBackend from the BackendSecurityPolicy"},
};

static void parse_svc(ld_t *ld, set_t *s, const meta_t *m)
{
    svc_t *v = VEC_PUSH(s->svcs);
    v->m = *m;
    size_t before = ld->n_errors;
    CHECK_FIELDS(ld, m, m->spec, "spec", svc_fields);
    const gw_yaml_node_t *schema = field(ld, m, m->spec, "schema", GW_YAML_MAP, "spec.schema", true);
    if (schema != NULL) {
        int i = fenum(ld, m, schema, "name", "spec.schema.name", schema_names, true);
        if (i >= 0)
            gw_schema_parse(schema_names[i], &v->schema);
        const gw_yaml_node_t *ver = gw_yaml_get(schema, "version");
        if (ver != NULL && ver->kind == GW_YAML_SCALAR)
            v->version = gw_yaml_is_null(ver) ? NULL : ver->str;
        else if (ver != NULL)
            lerr(ld, m, ver, "spec.schema.version must be a string");
    }
    const gw_yaml_node_t *br = field(ld, m, m->spec, "backendRef", GW_YAML_MAP, "spec.backendRef", true);
    if (br != NULL && parse_ref(ld, m, br, "spec.backendRef", &v->backend)) {
        /* The reference's CEL rule (#902): kind defaults to Service and group to "", so both must
         * be written: a Kubernetes Service cannot be a backend in v0.4. */
        const ref_t *r = &v->backend;
        if (!streq(r->kind, "Backend") || !streq(r->group, EG_GROUP)) {
            lerr(ld, m, br,
                 "spec.backendRef: BackendRef must be a Backend resource of Envoy Gateway (group %s, kind Backend; "
                 "got %s%s%s)",
                 EG_GROUP, r->group && *r->group ? r->group : "", r->group && *r->group ? " " : "",
                 r->kind ? r->kind : "Service");
            v->backend.name = NULL;
        }
    }
    parse_header_mutation(ld, m, m->spec, "spec", &v->hm);
    v->ok = ld->n_errors == before;
}

/* ---- BackendTLSPolicy ---- */

static const field_spec_t tls_fields[] = {
    {"targetRefs", NULL},
    {"validation", NULL},
    {"options", "TLS options are Envoy settings"},
};

static void parse_tls(ld_t *ld, set_t *s, const meta_t *m)
{
    tls_t *t = VEC_PUSH(s->tls);
    t->m = *m;
    size_t before = ld->n_errors;
    CHECK_FIELDS(ld, m, m->spec, "spec", tls_fields);
    refs_t all = {0};
    gw_yl_parse_policy_targets(ld, m, true, &all);
    for (size_t i = 0; i < all.n; i++) {
        const ref_t *r = &all.v[i];
        if (streq(r->group, EG_GROUP) && streq(r->kind, "Backend"))
            *VEC_PUSH(t->targets) = *r;
        else if (streq(r->kind, "Service") && *r->group == '\0')
            lunsup(ld, m, r->at, "spec.targetRefs[%zu]: a Kubernetes Service cannot be resolved outside Kubernetes; "
                   "target a gateway.envoyproxy.io Backend", i);
        else
            lunsup(ld, m, r->at, "spec.targetRefs[%zu]: only gateway.envoyproxy.io Backend targets are supported, not "
                   "%s %s", i, r->group, r->kind);
        if (present(r->at, "sectionName"))
            lnote(ld, m, gw_yaml_get(r->at, "sectionName"), "spec.targetRefs[%zu].sectionName is ignored", i);
    }
    free(all.v);
    const gw_yaml_node_t *val = field(ld, m, m->spec, "validation", GW_YAML_MAP, "spec.validation", true);
    if (val != NULL) {
        static const field_spec_t val_fields[] = {
            {"hostname", NULL},
            {"wellKnownCACertificates", NULL},
            {"caCertificateRefs", NULL},
            {"subjectAltNames", "the certificate is checked against hostname"},
        };
        CHECK_FIELDS(ld, m, val, "spec.validation", val_fields);
        t->sni = fstr(ld, m, val, "hostname", "spec.validation.hostname", true);
        static const char *const wk[] = {"System", NULL};
        bool has_wk = present(val, "wellKnownCACertificates");
        const gw_yaml_node_t *cas = fseq(ld, m, val, "caCertificateRefs", "spec.validation.caCertificateRefs", false, 8);
        bool has_ca = cas != NULL && cas->n_items > 0;
        if (has_wk)
            fenum(ld, m, val, "wellKnownCACertificates", "spec.validation.wellKnownCACertificates", wk, true);
        if (has_wk && has_ca)
            lerr(ld, m, val, "spec.validation: must not contain both CACertificateRefs and WellKnownCACertificates");
        else if (!has_wk && !has_ca)
            lerr(ld, m, val, "spec.validation: must specify either CACertificateRefs or WellKnownCACertificates");
        for (size_t i = 0; cas != NULL && i < cas->n_items; i++) {
            char p[96];
            snprintf(p, sizeof(p), "spec.validation.caCertificateRefs[%zu]", i);
            if (cas->items[i]->kind != GW_YAML_MAP) {
                lerr(ld, m, cas->items[i], "%s must be a mapping {group, kind, name}", p);
                continue;
            }
            ref_t r;
            if (!parse_ref(ld, m, cas->items[i], p, &r))
                continue;
            if (r.ns_written)
                lerr(ld, m, cas->items[i], "%s.namespace: a local reference has no namespace", p);
            r.ns = m->ns;
            if (r.kind == NULL || r.group == NULL) {
                lerr(ld, m, cas->items[i], "%s: group and kind are required (\"\" and ConfigMap or Secret)", p);
                continue;
            }
            if (*r.group != '\0' || (strcmp(r.kind, "ConfigMap") != 0 && strcmp(r.kind, "Secret") != 0)) {
                lunsup(ld, m, cas->items[i], "%s: only a ConfigMap or Secret (key ca.crt) is supported, not %s %s", p,
                       r.group, r.kind);
                continue;
            }
            *VEC_PUSH(t->ca_refs) = r;
        }
    }
    t->ok = ld->n_errors == before;
}

/* ---- BackendSecurityPolicy ---- */

static const char *const bsp_types[] = {"APIKey",         "AWSCredentials",  "AzureAPIKey", "AzureCredentials",
                                        "GCPCredentials", "AnthropicAPIKey", NULL};
static const char *const bsp_fields[] = {"apiKey",         "awsCredentials",  "azureAPIKey", "azureCredentials",
                                         "gcpCredentials", "anthropicAPIKey", NULL};

/* A SecretObjectReference: name required; kind Secret and group "" when written. */
static bool parse_secret_ref(ld_t *ld, const meta_t *m, const gw_yaml_node_t *parent, const char *key,
                             const char *path, bool required, ref_t *out)
{
    const gw_yaml_node_t *n = field(ld, m, parent, key, GW_YAML_MAP, path, required);
    if (n == NULL || !parse_ref(ld, m, n, path, out))
        return false;
    if ((out->kind != NULL && strcmp(out->kind, "Secret") != 0) || (out->group != NULL && *out->group != '\0')) {
        lunsup(ld, m, n, "%s: only a core Secret can hold it, not %s", path, out->kind ? out->kind : out->group);
        out->name = NULL;
        return false;
    }
    return true;
}

/* Envoy Gateway's OIDC block of an oidcExchangeToken: provider.issuer, clientID, clientSecret. */
static void check_oidc(ld_t *ld, const meta_t *m, const gw_yaml_node_t *ox, const char *path)
{
    char p[160];
    snprintf(p, sizeof(p), "%s.oidc", path);
    const gw_yaml_node_t *oidc = field(ld, m, ox, "oidc", GW_YAML_MAP, p, true);
    if (oidc == NULL)
        return;
    snprintf(p, sizeof(p), "%s.oidc.provider", path);
    const gw_yaml_node_t *prov = field(ld, m, oidc, "provider", GW_YAML_MAP, p, true);
    snprintf(p, sizeof(p), "%s.oidc.provider.issuer", path);
    if (prov != NULL)
        fstr1(ld, m, prov, "issuer", p);
    /* clientID / clientSecret: checked when written (Envoy Gateway versions differ on which of
     * them, or their *Ref forms, are required). */
    snprintf(p, sizeof(p), "%s.oidc.clientID", path);
    fstr(ld, m, oidc, "clientID", p, false);
    ref_t r;
    snprintf(p, sizeof(p), "%s.oidc.clientSecret", path);
    parse_secret_ref(ld, m, oidc, "clientSecret", p, false, &r);
}

static void parse_sec(ld_t *ld, set_t *s, const meta_t *m)
{
    sec_t *p = VEC_PUSH(s->secs);
    p->m = *m;
    size_t before = ld->n_errors;
    static const field_spec_t known[] = {
        {"targetRefs", NULL},      {"type", NULL},           {"apiKey", NULL},         {"awsCredentials", NULL},
        {"azureAPIKey", NULL},     {"azureCredentials", NULL}, {"gcpCredentials", NULL}, {"anthropicAPIKey", NULL},
    };
    CHECK_FIELDS(ld, m, m->spec, "spec", known);
    refs_t all = {0};
    gw_yl_parse_policy_targets(ld, m, false, &all);
    bool cel_bad = false;
    for (size_t i = 0; i < all.n; i++) {
        if (streq(all.v[i].group, AIGW_GROUP) && streq(all.v[i].kind, "AIServiceBackend"))
            *VEC_PUSH(p->targets) = all.v[i];
        else
            cel_bad = true;
    }
    if (cel_bad)
        lerr(ld, m, gw_yaml_get(m->spec, "targetRefs"), "spec.targetRefs: targetRefs must reference AIServiceBackend resources");
    free(all.v);
    int t = fenum(ld, m, m->spec, "type", "spec.type", bsp_types, true);
    if (t < 0)
        goto out;
    p->type_name = bsp_types[t];
    /* CEL: the field matching type is set, and no other credential field. */
    bool only = present(m->spec, bsp_fields[t]);
    for (int i = 0; bsp_fields[i] != NULL; i++)
        if (i != t && present(m->spec, bsp_fields[i]))
            only = false;
    if (!only) {
        lerr(ld, m, gw_yaml_get(m->spec, "type"), "spec: When type is %s, only %s field should be set", bsp_types[t],
             bsp_fields[t]);
        goto out;
    }
    char path[96];
    snprintf(path, sizeof(path), "spec.%s", bsp_fields[t]);
    const gw_yaml_node_t *f = field(ld, m, m->spec, bsp_fields[t], GW_YAML_MAP, path, true);
    if (f == NULL)
        goto out;
    switch (t) {
    case 0: /* APIKey */
    case 2: /* AzureAPIKey */
    case 5: /* AnthropicAPIKey */
        snprintf(path, sizeof(path), "spec.%s.secretRef", bsp_fields[t]);
        parse_secret_ref(ld, m, f, "secretRef", path, true, &p->secret);
        p->type = t == 0 ? GW_AUTH_API_KEY : t == 2 ? GW_AUTH_AZURE_API_KEY : GW_AUTH_ANTHROPIC_API_KEY;
        p->secret_key = "apiKey";
        break;
    case 1: { /* AWSCredentials */
        p->type = GW_AUTH_AWS_CREDENTIALS;
        p->region = fstr1(ld, m, f, "region", "spec.awsCredentials.region");
        const gw_yaml_node_t *cf =
            field(ld, m, f, "credentialsFile", GW_YAML_MAP, "spec.awsCredentials.credentialsFile", false);
        if (cf != NULL) {
            parse_secret_ref(ld, m, cf, "secretRef", "spec.awsCredentials.credentialsFile.secretRef", true, &p->secret);
            p->secret_key = "credentials";
            p->profile = fstr(ld, m, cf, "profile", "spec.awsCredentials.credentialsFile.profile", false);
            if (p->profile == NULL || *p->profile == '\0')
                p->profile = "default";
        }
        const gw_yaml_node_t *ox =
            field(ld, m, f, "oidcExchangeToken", GW_YAML_MAP, "spec.awsCredentials.oidcExchangeToken", false);
        if (ox != NULL) {
            check_oidc(ld, m, ox, "spec.awsCredentials.oidcExchangeToken");
            fstr1(ld, m, ox, "awsRoleArn", "spec.awsCredentials.oidcExchangeToken.awsRoleArn");
            lunsup(ld, m, ox,
                   "spec.awsCredentials.oidcExchangeToken is not supported outside Kubernetes (the reference's aigw "
                   "refuses it too): use credentialsFile, or neither for the AWS default credential chain");
        }
        break;
    }
    case 3: { /* AzureCredentials */
        p->type = GW_AUTH_AZURE_CREDENTIALS;
        p->client_id = fstr1(ld, m, f, "clientID", "spec.azureCredentials.clientID");
        p->tenant_id = fstr1(ld, m, f, "tenantID", "spec.azureCredentials.tenantID");
        bool has_secret = present(f, "clientSecretRef"), has_oidc = present(f, "oidcExchangeToken");
        if (has_secret == has_oidc) {
            lerr(ld, m, f, "spec.azureCredentials: Exactly one of clientSecretRef or oidcExchangeToken must be specified");
            break;
        }
        if (has_secret) {
            parse_secret_ref(ld, m, f, "clientSecretRef", "spec.azureCredentials.clientSecretRef", true, &p->secret);
            p->secret_key = "client-secret";
        } else {
            const gw_yaml_node_t *ox = field(ld, m, f, "oidcExchangeToken", GW_YAML_MAP,
                                             "spec.azureCredentials.oidcExchangeToken", true);
            if (ox != NULL)
                check_oidc(ld, m, ox, "spec.azureCredentials.oidcExchangeToken");
            lunsup(ld, m, ox ? ox : f,
                   "spec.azureCredentials.oidcExchangeToken is not supported yet (use clientSecretRef)");
        }
        break;
    }
    case 4: { /* GCPCredentials */
        p->type = GW_AUTH_GCP_CREDENTIALS;
        p->project = fstr1(ld, m, f, "projectName", "spec.gcpCredentials.projectName");
        p->region = fstr1(ld, m, f, "region", "spec.gcpCredentials.region");
        bool has_file = present(f, "credentialsFile"), has_wif = present(f, "workloadIdentityFederationConfig");
        if (has_file == has_wif) {
            lerr(ld, m, f,
                 "spec.gcpCredentials: Exactly one of GCPWorkloadIdentityFederationConfig or GCPCredentialsFile must "
                 "be specified");
            break;
        }
        if (has_file) {
            const gw_yaml_node_t *cf =
                field(ld, m, f, "credentialsFile", GW_YAML_MAP, "spec.gcpCredentials.credentialsFile", true);
            if (cf != NULL)
                parse_secret_ref(ld, m, cf, "secretRef", "spec.gcpCredentials.credentialsFile.secretRef", true,
                                 &p->secret);
            p->secret_key = "service_account.json";
        } else {
            const char *w = "spec.gcpCredentials.workloadIdentityFederationConfig";
            const gw_yaml_node_t *wif = field(ld, m, f, "workloadIdentityFederationConfig", GW_YAML_MAP, w, true);
            if (wif != NULL) {
                char q[160];
                snprintf(q, sizeof(q), "%s.projectID", w);
                fstr1(ld, m, wif, "projectID", q);
                snprintf(q, sizeof(q), "%s.workloadIdentityProviderName", w);
                fstr1(ld, m, wif, "workloadIdentityProviderName", q);
                snprintf(q, sizeof(q), "%s.workloadIdentityPoolName", w);
                fstr1(ld, m, wif, "workloadIdentityPoolName", q);
                snprintf(q, sizeof(q), "%s.oidcExchangeToken", w);
                const gw_yaml_node_t *ox = field(ld, m, wif, "oidcExchangeToken", GW_YAML_MAP, q, true);
                if (ox != NULL)
                    check_oidc(ld, m, ox, q);
                snprintf(q, sizeof(q), "%s.serviceAccountImpersonation", w);
                const gw_yaml_node_t *sa = field(ld, m, wif, "serviceAccountImpersonation", GW_YAML_MAP, q, false);
                snprintf(q, sizeof(q), "%s.serviceAccountImpersonation.serviceAccountName", w);
                if (sa != NULL)
                    fstr1(ld, m, sa, "serviceAccountName", q);
            }
            lunsup(ld, m, wif ? wif : f, "%s is not supported yet (use credentialsFile)", w);
        }
        break;
    }
    }
out:
    p->ok = ld->n_errors == before;
}

/* ---- Secret, ConfigMap, ReferenceGrant ---- */

/* Reads a Secret value from a file named by an annotation: a regular file, at most 1 MiB, with
 * trailing line breaks dropped (key files usually end with one; a header value must not). */
static char *read_secret_file(const char *path, char *why, size_t why_len)
{
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "not a regular file");
        goto out;
    }
    if ((size_t)st.st_size > MAX_SECRET_FILE) {
        snprintf(why, why_len, "larger than %zu bytes", MAX_SECRET_FILE);
        goto out;
    }
    size_t len = 0, cap = (size_t)st.st_size + 1;
    buf = gw_malloc(cap);
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, why_len, "%s", strerror(errno));
            wipe_free(buf);
            buf = NULL;
            goto out;
        }
        if (n == 0 || len + (size_t)n == cap - 1) {
            len += (size_t)n;
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        snprintf(why, why_len, "contains a NUL byte");
        wipe_free(buf);
        buf = NULL;
        goto out;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
out:
    close(fd);
    return buf;
}

static void secret_put(secret_t *sc, const char *key, char *value, const gw_yaml_node_t *at)
{
    for (size_t i = 0; i < sc->data.n; i++) {
        if (strcmp(sc->data.v[i].key, key) == 0) {
            wipe_free(sc->data.v[i].value);
            sc->data.v[i].value = value;
            sc->data.v[i].at = at;
            return;
        }
    }
    secret_kv_t *kv = VEC_PUSH(sc->data);
    kv->key = key;
    kv->value = value;
    kv->at = at;
}

static void parse_secret(ld_t *ld, set_t *s, const meta_t *m)
{
    secret_t *sc = VEC_PUSH(s->secrets);
    sc->m = *m;
    sc->type = fstr(ld, m, m->root, "type", "type", false);
    /* Kubernetes order: data, then stringData over it; aigw's substitution annotations last. */
    const gw_yaml_node_t *data = field(ld, m, m->root, "data", GW_YAML_MAP, "data", false);
    for (size_t i = 0; data != NULL && i < data->n_pairs; i++) {
        const gw_yaml_node_t *k = data->pairs[i].key, *v = data->pairs[i].value;
        if (k->kind != GW_YAML_SCALAR || v->kind != GW_YAML_SCALAR) {
            lerr(ld, m, k, "data entries must be key: base64 value");
            continue;
        }
        char *dec = b64_decode(v->str, v->len);
        if (dec == NULL) {
            lerr(ld, m, v, "data.%s is not valid base64 (or decodes to a NUL byte)", k->str);
            continue;
        }
        secret_put(sc, k->str, dec, v);
    }
    const gw_yaml_node_t *sd = field(ld, m, m->root, "stringData", GW_YAML_MAP, "stringData", false);
    for (size_t i = 0; sd != NULL && i < sd->n_pairs; i++) {
        const gw_yaml_node_t *k = sd->pairs[i].key, *v = sd->pairs[i].value;
        if (k->kind != GW_YAML_SCALAR || v->kind != GW_YAML_SCALAR) {
            lerr(ld, m, k, "stringData entries must be key: value");
            continue;
        }
        secret_put(sc, k->str, gw_strdup(gw_yaml_is_null(v) ? "" : v->str), v);
    }
    const gw_yaml_node_t *ann = gw_yaml_get(gw_yaml_get(m->root, "metadata"), "annotations");
    for (size_t i = 0; ann != NULL && ann->kind == GW_YAML_MAP && i < ann->n_pairs; i++) {
        const gw_yaml_node_t *k = ann->pairs[i].key, *v = ann->pairs[i].value;
        if (k->kind != GW_YAML_SCALAR)
            continue;
        bool is_env = strncmp(k->str, SUBST_ENV, strlen(SUBST_ENV)) == 0;
        bool is_file = strncmp(k->str, SUBST_FILE, strlen(SUBST_FILE)) == 0;
        if (!is_env && !is_file)
            continue;
        const char *key = k->str + strlen(is_env ? SUBST_ENV : SUBST_FILE);
        const char *src = gw_yaml_str(v);
        if (*key == '\0' || src == NULL || *src == '\0') {
            lerr(ld, m, k, "annotation %s needs a data key in its name and a non-empty value", k->str);
            continue;
        }
        if (is_env) {
            const char *val = getenv(src);
            if (val == NULL) {
                lerr(ld, m, v, "annotation %s: environment variable %s is not set", k->str, src);
                continue;
            }
            secret_put(sc, key, gw_strdup(val), v);
        } else {
            char why[128];
            char *val = read_secret_file(src, why, sizeof(why));
            if (val == NULL) {
                lerr(ld, m, v, "annotation %s: cannot read %s: %s", k->str, src, why);
                continue;
            }
            secret_put(sc, key, val, v);
        }
    }
}

static void parse_configmap(ld_t *ld, set_t *s, const meta_t *m)
{
    configmap_t *cm = VEC_PUSH(s->configmaps);
    cm->m = *m;
    const gw_yaml_node_t *data = field(ld, m, m->root, "data", GW_YAML_MAP, "data", false);
    for (size_t i = 0; data != NULL && i < data->n_pairs; i++) {
        const gw_yaml_node_t *k = data->pairs[i].key, *v = data->pairs[i].value;
        if (k->kind != GW_YAML_SCALAR || v->kind != GW_YAML_SCALAR) {
            lerr(ld, m, k, "data entries must be key: string value");
            continue;
        }
        kv_t *kv = VEC_PUSH(cm->data);
        kv->name = k->str;
        kv->value = gw_yaml_is_null(v) ? "" : v->str;
    }
}

static void parse_grant(ld_t *ld, set_t *s, const meta_t *m)
{
    rgrant_t *g = VEC_PUSH(s->grants);
    g->m = *m;
    static const field_spec_t known[] = {{"from", NULL}, {"to", NULL}};
    CHECK_FIELDS(ld, m, m->spec, "spec", known);
    const gw_yaml_node_t *from = fseq(ld, m, m->spec, "from", "spec.from", true, 16);
    if (from != NULL && from->n_items == 0)
        lerr(ld, m, from, "spec.from in body should have at least 1 items");
    for (size_t i = 0; from != NULL && i < from->n_items; i++) {
        const gw_yaml_node_t *e = from->items[i];
        char p[64], q[96];
        snprintf(p, sizeof(p), "spec.from[%zu]", i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping {group, kind, namespace}", p);
            continue;
        }
        rg_from_t f;
        snprintf(q, sizeof(q), "%s.group", p);
        f.group = fstr(ld, m, e, "group", q, false);
        if (f.group == NULL && !gw_yaml_get(e, "group"))
            lerr(ld, m, e, "%s is required", q);
        snprintf(q, sizeof(q), "%s.kind", p);
        f.kind = fstr(ld, m, e, "kind", q, true);
        snprintf(q, sizeof(q), "%s.namespace", p);
        f.ns = fstr(ld, m, e, "namespace", q, true);
        if (f.kind != NULL && f.ns != NULL) {
            if (f.group == NULL)
                f.group = "";
            *VEC_PUSH(g->from) = f;
        }
    }
    const gw_yaml_node_t *to = fseq(ld, m, m->spec, "to", "spec.to", true, 16);
    if (to != NULL && to->n_items == 0)
        lerr(ld, m, to, "spec.to in body should have at least 1 items");
    for (size_t i = 0; to != NULL && i < to->n_items; i++) {
        const gw_yaml_node_t *e = to->items[i];
        char p[64], q[96];
        snprintf(p, sizeof(p), "spec.to[%zu]", i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping {group, kind, name}", p);
            continue;
        }
        rg_to_t t;
        snprintf(q, sizeof(q), "%s.group", p);
        t.group = fstr(ld, m, e, "group", q, false);
        if (t.group == NULL && !gw_yaml_get(e, "group"))
            lerr(ld, m, e, "%s is required", q);
        snprintf(q, sizeof(q), "%s.kind", p);
        t.kind = fstr(ld, m, e, "kind", q, true);
        snprintf(q, sizeof(q), "%s.name", p);
        t.name = fstr(ld, m, e, "name", q, false);
        if (t.name != NULL && *t.name == '\0')
            t.name = NULL;
        if (t.kind != NULL) {
            if (t.group == NULL)
                t.group = "";
            *VEC_PUSH(g->to) = t;
        }
    }
}

bool gw_yl_granted(const set_t *s, const char *from_group, const char *from_kind, const char *from_ns,
                   const char *to_group, const char *to_kind, const char *to_ns, const char *to_name)
{
    if (strcmp(from_ns, to_ns) == 0)
        return true;
    for (size_t i = 0; i < s->grants.n; i++) {
        const rgrant_t *g = &s->grants.v[i];
        if (strcmp(g->m.ns, to_ns) != 0)
            continue;
        bool from_ok = false, to_ok = false;
        for (size_t j = 0; j < g->from.n && !from_ok; j++)
            from_ok = strcmp(g->from.v[j].group, from_group) == 0 && strcmp(g->from.v[j].kind, from_kind) == 0 &&
                      strcmp(g->from.v[j].ns, from_ns) == 0;
        for (size_t j = 0; j < g->to.n && !to_ok; j++)
            to_ok = strcmp(g->to.v[j].group, to_group) == 0 && strcmp(g->to.v[j].kind, to_kind) == 0 &&
                    (g->to.v[j].name == NULL || strcmp(g->to.v[j].name, to_name) == 0);
        if (from_ok && to_ok)
            return true;
    }
    return false;
}

/* ---- ClientTrafficPolicy, AIGatewayRoute, GatewayClass ---- */

static void parse_ctp(ld_t *ld, set_t *s, const meta_t *m)
{
    static const field_spec_t known[] = {
        {"targetRefs", NULL},
        {"targetRef", NULL},
        {"targetSelectors", NULL},
        {"connection", NULL},
        {"tcpKeepalive", "TCP keepalive is the kernel's default"},
        {"enableProxyProtocol", "PROXY protocol is not supported"},
        {"proxyProtocol", "PROXY protocol is not supported"},
        {"clientIPDetection", "the peer address is the client"},
        {"tls", "TLS settings come from the Gateway listener"},
        {"path", "paths are served as received"},
        {"headers", "header settings are Envoy's"},
        {"timeout", "client timeouts are aigw's own"},
        {"http1", "HTTP/1.1 settings are aigw's own"},
        {"http2", "aigw serves HTTP/1.1"},
        {"http3", "aigw serves HTTP/1.1"},
        {"healthCheck", "aigw's health endpoint is on the admin port"},
        {"networkBuffer", NULL},
    };
    CHECK_FIELDS(ld, m, m->spec, "spec", known);
    const gw_yaml_node_t *conn = field(ld, m, m->spec, "connection", GW_YAML_MAP, "spec.connection", false);
    const gw_yaml_node_t *bl = gw_yaml_get(conn, "bufferLimit");
    if (conn != NULL) {
        static const field_spec_t cknown[] = {
            {"bufferLimit", NULL},
            {"connectionLimit", "aigw's connection limits are its own"},
            {"socketBufferLimit", "socket buffers are the kernel's"},
            {"maxAcceptPerSocketEvent", "aigw's accept loop is its own"},
        };
        CHECK_FIELDS(ld, m, conn, "spec.connection", cknown);
    }
    if (gw_yaml_is_null(bl))
        return; /* a ClientTrafficPolicy about something else */
    uint64_t v;
    if (bl->kind != GW_YAML_SCALAR || !parse_quantity(bl->str, &v) || v == 0) {
        lerr(ld, m, bl, "spec.connection.bufferLimit %s is not a byte quantity such as 50Mi",
             bl->kind == GW_YAML_SCALAR ? bl->str : "");
        return;
    }
    if (s->ctps.n > 0) {
        lnote(ld, m, bl, "a second bufferLimit is ignored (ClientTrafficPolicy %s/%s set it first)", s->ctps.v[0].m.ns,
              s->ctps.v[0].m.name);
        return;
    }
    ctp_t *c = VEC_PUSH(s->ctps);
    c->m = *m;
    c->limit = v;
}

static void parse_route(ld_t *ld, set_t *s, const meta_t *m)
{
    /* Rules are checked and built in link_routes, once every AIServiceBackend is known. */
    route_t *r = VEC_PUSH(s->routes);
    r->m = *m;
}

static void parse_gatewayclass(ld_t *ld, set_t *s, const meta_t *m)
{
    /* Accepted: which controller runs it does not matter to aigw. */
    fstr(ld, m, m->spec, "controllerName", "spec.controllerName", true);
}

/* ---- kinds ---- */

typedef enum {
    KIND_READ = 0, /* parsed and used */
    KIND_IGNORE,   /* only matters to Kubernetes or Envoy: a notice */
    KIND_REFUSE,   /* changes what is served and aigw cannot do it: refused (why) */
} kind_action_t;

/* Every kind aigw knows. A new kind is a row here, a struct and a parse function, and a step in
 * link() if it refers to other resources. Anything not listed is ignored with a notice. */
static const struct kind_entry {
    const char *kind;
    const char *group; /* apiVersion group ("" for the core group); NULL: any */
    kind_action_t action;
    bool has_spec;
    void (*parse)(ld_t *, set_t *, const meta_t *);
    const char *why; /* KIND_IGNORE / KIND_REFUSE */
} kinds[] = {
    {"GatewayClass", GWAPI_GROUP, KIND_READ, true, parse_gatewayclass, NULL},
    {"Gateway", GWAPI_GROUP, KIND_READ, true, parse_gateway, NULL},
    {"AIGatewayRoute", AIGW_GROUP, KIND_READ, true, parse_route, NULL},
    {"AIServiceBackend", AIGW_GROUP, KIND_READ, true, parse_svc, NULL},
    {"BackendSecurityPolicy", AIGW_GROUP, KIND_READ, true, parse_sec, NULL},
    {"MCPRoute", AIGW_GROUP, KIND_READ, true, gw_yl_parse_mcp, NULL},
    {"Backend", EG_GROUP, KIND_READ, true, parse_backend, NULL},
    {"BackendTLSPolicy", GWAPI_GROUP, KIND_READ, true, parse_tls, NULL},
    {"BackendTrafficPolicy", EG_GROUP, KIND_READ, true, gw_yl_parse_btp, NULL},
    {"ClientTrafficPolicy", EG_GROUP, KIND_READ, true, parse_ctp, NULL},
    {"ReferenceGrant", GWAPI_GROUP, KIND_READ, true, parse_grant, NULL},
    {"Secret", "", KIND_READ, false, parse_secret, NULL},
    {"ConfigMap", "", KIND_READ, false, parse_configmap, NULL},
    /* Kinds that decide what is served: ignoring them would serve something else, so refuse. */
    {"HTTPRoute", NULL, KIND_REFUSE, false, NULL,
     "aigw serves AIGatewayRoute and MCPRoute only (an HTTPRoute is what the reference generates from them)"},
    {"GRPCRoute", NULL, KIND_REFUSE, false, NULL, "aigw serves AIGatewayRoute and MCPRoute only"},
    {"TLSRoute", NULL, KIND_REFUSE, false, NULL, "aigw serves AIGatewayRoute and MCPRoute only"},
    {"TCPRoute", NULL, KIND_REFUSE, false, NULL, "aigw serves AIGatewayRoute and MCPRoute only"},
    {"UDPRoute", NULL, KIND_REFUSE, false, NULL, "aigw serves AIGatewayRoute and MCPRoute only"},
    {"HTTPRouteFilter", NULL, KIND_REFUSE, false, NULL, "it belongs to an HTTPRoute, which aigw does not serve"},
    {"InferencePool", NULL, KIND_REFUSE, false, NULL,
     "the Gateway API Inference Extension needs its endpoint picker (EPP), which aigw does not run"},
    {"InferenceObjective", NULL, KIND_REFUSE, false, NULL, "it belongs to an InferencePool"},
    {"InferenceModel", NULL, KIND_REFUSE, false, NULL, "it belongs to an InferencePool"},
    {"SecurityPolicy", NULL, KIND_REFUSE, false, NULL,
     "client authentication would not be enforced (MCPRoute securityPolicy is supported)"},
    {"QuotaPolicy", NULL, KIND_REFUSE, false, NULL, "it is not part of v0.4 and its quotas would not be enforced"},
    /* Kinds that only matter to Kubernetes or Envoy. */
    {"EnvoyProxy", NULL, KIND_IGNORE, false, NULL, "it configures the Envoy deployment"},
    {"EnvoyPatchPolicy", NULL, KIND_IGNORE, false, NULL, "it patches Envoy's xDS"},
    {"EnvoyExtensionPolicy", NULL, KIND_IGNORE, false, NULL, "it configures Envoy extensions"},
    {"GatewayConfig", NULL, KIND_IGNORE, false, NULL, "it configures the external processor container"},
};

static bool same_group(const char *api_version, const char *group)
{
    if (api_version == NULL || group == NULL)
        return true; /* lenient: the kind alone decides */
    const char *slash = strchr(api_version, '/');
    if (slash == NULL)
        return *group == '\0'; /* "v1": the core group */
    return strlen(group) == (size_t)(slash - api_version) && memcmp(api_version, group, strlen(group)) == 0;
}

static const meta_t *find_dup(const set_t *s, const meta_t *m);

static void parse_doc(ld_t *ld, set_t *s, const gw_yaml_node_t *root)
{
    if (gw_yaml_is_null(root))
        return; /* an empty document, e.g. after a trailing "---" */
    if (root->kind != GW_YAML_MAP) {
        lerr(ld, NULL, root, "a resource must be a mapping with apiVersion, kind and metadata");
        return;
    }
    const gw_yaml_node_t *kn = gw_yaml_get(root, "kind");
    const char *kind = gw_yaml_str(kn);
    if (kind == NULL || kn->kind != GW_YAML_SCALAR) {
        lerr(ld, NULL, kn ? kn : root, "resource has no kind (not a Kubernetes resource)");
        return;
    }
    const gw_yaml_node_t *av = gw_yaml_get(root, "apiVersion");
    const char *api_version = gw_yaml_str(av);
    const struct kind_entry *ke = NULL;
    for (size_t i = 0; i < GW_ARRAY_SIZE(kinds); i++) {
        if (strcmp(kinds[i].kind, kind) == 0) {
            ke = &kinds[i];
            break;
        }
    }
    meta_t m = {.kind = ke ? ke->kind : kind, .ns = "default", .root = root};
    const gw_yaml_node_t *md = gw_yaml_get(root, "metadata");
    m.name = gw_yaml_str(gw_yaml_get(md, "name"));
    const char *ns = gw_yaml_str(gw_yaml_get(md, "namespace"));
    if (ns != NULL && *ns != '\0')
        m.ns = ns;
    if (ke == NULL) {
        lnote(ld, &m, root, "%s is not used by aigw and is ignored", kind);
        return;
    }
    if (!same_group(api_version, ke->group)) {
        lnote(ld, &m, av, "apiVersion %s is not the %s one; ignored", api_version, *ke->group ? ke->group : "core");
        return;
    }
    if (ke->action == KIND_IGNORE) {
        lnote(ld, &m, root, "ignored: %s", ke->why);
        return;
    }
    if (ke->action == KIND_REFUSE) {
        lunsup(ld, &m, root, "%s is not supported: %s", kind, ke->why);
        return;
    }
    md = field(ld, &m, root, "metadata", GW_YAML_MAP, "metadata", true);
    m.name = md ? fstr(ld, &m, md, "name", "metadata.name", true) : NULL;
    if (m.name == NULL)
        return;
    const meta_t *dup = find_dup(s, &m);
    if (dup != NULL) {
        pos_t p = gw_yl_map_pos(ld->map, (pos_t){dup->root->line, dup->root->col});
        lerr(ld, &m, root, "defined twice (first at line %u)", p.line);
        return;
    }
    if (ke->has_spec) {
        m.spec = field(ld, &m, root, "spec", GW_YAML_MAP, "spec", true);
        if (m.spec == NULL)
            return;
    }
    ke->parse(ld, s, &m);
}

static const meta_t *find_dup(const set_t *s, const meta_t *m)
{
    const char *k = m->kind;
#define DUP(vec, kind_)                                \
    if (strcmp(k, kind_) == 0) {                       \
        const void *f_ = FIND(s->vec, m->ns, m->name); \
        return f_ ? (const meta_t *)f_ : NULL;         \
    }
    /* meta_t is the first member of every resource struct. */
    DUP(gateways, "Gateway")
    DUP(routes, "AIGatewayRoute")
    DUP(svcs, "AIServiceBackend")
    DUP(secs, "BackendSecurityPolicy")
    DUP(backends, "Backend")
    DUP(tls, "BackendTLSPolicy")
    DUP(secrets, "Secret")
    DUP(configmaps, "ConfigMap")
    DUP(grants, "ReferenceGrant")
    DUP(ctps, "ClientTrafficPolicy")
    DUP(btps, "BackendTrafficPolicy")
    DUP(mcps, "MCPRoute")
#undef DUP
    return NULL;
}

/* ---- linking ---- */

const char *gw_yl_secret_value(ld_t *ld, const set_t *s, const meta_t *m, const ref_t *r, const char *key)
{
    const secret_t *sc = FIND(s->secrets, r->ns, r->name);
    if (sc == NULL) {
        lref(ld, m, r->at, "Secret %s/%s not found", r->ns, r->name);
        return NULL;
    }
    for (size_t i = 0; i < sc->data.n; i++)
        if (strcmp(sc->data.v[i].key, key) == 0)
            return sc->data.v[i].value;
    lref(ld, m, r->at, "Secret %s/%s has no key %s", r->ns, r->name, key);
    return NULL;
}

/* Every PEM block of text is a certificate, and there is at least one. */
static bool pem_certs_ok(const char *text, char *why, size_t why_len)
{
    BIO *bio = BIO_new_mem_buf(text, (int)strlen(text));
    int n = 0;
    bool ok = bio != NULL;
    while (ok) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x == NULL)
            break;
        X509_free(x);
        n++;
    }
    unsigned long e = ERR_peek_last_error();
    /* Reading stops with "no start line" at the end of the input; anything else is a bad block. */
    if (ok && e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        snprintf(why, why_len, "a PEM block is not a valid certificate");
        ok = false;
    } else if (ok && n == 0) {
        snprintf(why, why_len, "no PEM certificate (-----BEGIN CERTIFICATE-----)");
        ok = false;
    }
    ERR_clear_error();
    BIO_free(bio);
    return ok;
}

/* The listener certificate and key parse and belong together. why never holds key material. */
static bool pem_pair_ok(const char *cert_pem, const char *key_pem, char *why, size_t why_len)
{
    bool ok = false;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    BIO *cb = BIO_new_mem_buf(cert_pem, (int)strlen(cert_pem));
    BIO *kb = BIO_new_mem_buf(key_pem, (int)strlen(key_pem));
    if (cb == NULL || kb == NULL) {
        snprintf(why, why_len, "out of memory");
        goto out;
    }
    if ((x = PEM_read_bio_X509(cb, NULL, NULL, NULL)) == NULL) {
        snprintf(why, why_len, "tls.crt is not a PEM certificate");
        goto out;
    }
    if ((k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)) == NULL) {
        snprintf(why, why_len, "tls.key is not an unencrypted PEM private key");
        goto out;
    }
    if (X509_check_private_key(x, k) != 1) {
        snprintf(why, why_len, "tls.key does not match the certificate in tls.crt");
        goto out;
    }
    ok = true;
out:
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    return ok;
}

static void link_gateway(ld_t *ld, set_t *s, gw_config_t *c)
{
    if (s->gateways.n == 0)
        return;
    gateway_t *g = &s->gateways.v[0];
    c->listen_port = g->port;
    if (!g->https || g->cert.name == NULL || !g->ok)
        return;
    const ref_t *r = &g->cert;
    if (!gw_yl_granted(s, GWAPI_GROUP, "Gateway", g->m.ns, "", "Secret", r->ns, r->name)) {
        lref(ld, &g->m, r->at,
             "Secret %s/%s is in another namespace and no ReferenceGrant in %s lets Gateway %s/%s use it", r->ns,
             r->name, r->ns, g->m.ns, g->m.name);
        return;
    }
    const secret_t *sc = FIND(s->secrets, r->ns, r->name);
    if (sc == NULL) {
        lref(ld, &g->m, r->at, "Secret %s/%s not found", r->ns, r->name);
        return;
    }
    if (!streq(sc->type, "kubernetes.io/tls")) {
        lref(ld, &g->m, r->at, "Secret %s/%s must be of type kubernetes.io/tls (it is %s)", r->ns, r->name,
             sc->type ? sc->type : "Opaque");
        return;
    }
    const char *crt = NULL, *key = NULL;
    for (size_t i = 0; i < sc->data.n; i++) {
        if (strcmp(sc->data.v[i].key, "tls.crt") == 0)
            crt = sc->data.v[i].value;
        else if (strcmp(sc->data.v[i].key, "tls.key") == 0)
            key = sc->data.v[i].value;
    }
    if (crt == NULL || key == NULL || *crt == '\0' || *key == '\0') {
        lref(ld, &g->m, r->at, "Secret %s/%s needs both tls.crt and tls.key", r->ns, r->name);
        return;
    }
    char why[128];
    if (!pem_pair_ok(crt, key, why, sizeof(why))) {
        lref(ld, &g->m, r->at, "Secret %s/%s: %s", r->ns, r->name, why);
        return;
    }
    c->listen_tls_cert_pem = gw_strdup(crt);
    c->listen_tls_key_pem = gw_strdup(key);
}

/* The PEM bundle of a BackendTLSPolicy's caCertificateRefs (ConfigMap or Secret, key ca.crt). */
static char *tls_ca_pem(ld_t *ld, const set_t *s, tls_t *t)
{
    gw_buf_t pem;
    gw_buf_init(&pem, 4 << 20);
    bool ok = true;
    for (size_t i = 0; i < t->ca_refs.n; i++) {
        const ref_t *r = &t->ca_refs.v[i];
        const char *text = NULL;
        if (strcmp(r->kind, "ConfigMap") == 0) {
            const configmap_t *cm = FIND(s->configmaps, r->ns, r->name);
            if (cm == NULL) {
                lref(ld, &t->m, r->at, "ConfigMap %s/%s not found", r->ns, r->name);
                ok = false;
                continue;
            }
            for (size_t j = 0; j < cm->data.n && text == NULL; j++)
                if (strcmp(cm->data.v[j].name, "ca.crt") == 0)
                    text = cm->data.v[j].value;
            if (text == NULL) {
                lref(ld, &t->m, r->at, "ConfigMap %s/%s has no key ca.crt", r->ns, r->name);
                ok = false;
                continue;
            }
        } else if ((text = gw_yl_secret_value(ld, s, &t->m, r, "ca.crt")) == NULL) {
            ok = false;
            continue;
        }
        char why[96];
        if (!pem_certs_ok(text, why, sizeof(why))) {
            lref(ld, &t->m, r->at, "%s %s/%s key ca.crt: %s", r->kind, r->ns, r->name, why);
            ok = false;
            continue;
        }
        gw_buf_append(&pem, text, strlen(text));
        if (pem.len > 0 && pem.data[pem.len - 1] != '\n')
            gw_buf_append_byte(&pem, '\n');
    }
    if (!ok || pem.len == 0) {
        gw_buf_free(&pem);
        return NULL;
    }
    gw_buf_cstr(&pem);
    return gw_buf_detach(&pem, NULL);
}

static void link_tls(ld_t *ld, set_t *s)
{
    for (size_t i = 0; i < s->tls.n; i++) {
        tls_t *t = &s->tls.v[i];
        char *ca = t->ca_refs.n > 0 && t->ok ? tls_ca_pem(ld, s, t) : NULL;
        if (t->ca_refs.n > 0 && ca == NULL)
            t->ok = false;
        for (size_t j = 0; j < t->targets.n; j++) {
            const ref_t *r = &t->targets.v[j];
            be_t *b = FIND(s->backends, r->ns, r->name);
            if (b == NULL) {
                lref(ld, &t->m, r->at, "Backend %s/%s not found", r->ns, r->name);
                continue;
            }
            if (b->tls_by != NULL) {
                lerr(ld, &t->m, r->at, "Backend %s/%s already has BackendTLSPolicy %s/%s", r->ns, r->name,
                     b->tls_by->ns, b->tls_by->name);
                continue;
            }
            b->tls_by = &t->m;
            b->tls = t->ok;
            b->sni = t->sni;
            if (ca != NULL)
                b->ca_pem = gw_strdup(ca);
        }
        free(ca);
    }
    for (size_t i = 0; i < s->backends.n; i++) {
        be_t *b = &s->backends.v[i];
        if (b->port == 0)
            b->port = b->tls ? 443 : 80;
        if (b->ok && b->port == 443 && !b->tls)
            lnote(ld, &b->m, b->m.spec, "port 443 without a BackendTLSPolicy: plain HTTP will be sent");
    }
}

static void link_svcs(ld_t *ld, set_t *s)
{
    for (size_t i = 0; i < s->svcs.n; i++) {
        svc_t *v = &s->svcs.v[i];
        if (v->backend.name == NULL)
            continue;
        v->be = FIND(s->backends, v->backend.ns, v->backend.name);
        if (v->be == NULL) {
            lref(ld, &v->m, v->backend.at, "Backend %s/%s not found", v->backend.ns, v->backend.name);
            v->ok = false;
        }
    }
}

static bool is_key_auth(gw_auth_type_t t)
{
    return t == GW_AUTH_API_KEY || t == GW_AUTH_AZURE_API_KEY || t == GW_AUTH_ANTHROPIC_API_KEY;
}

static void link_secs(ld_t *ld, set_t *s)
{
    for (size_t i = 0; i < s->secs.n; i++) {
        sec_t *p = &s->secs.v[i];
        if (!p->ok)
            continue;
        const char *secret = NULL;
        if (p->secret.name != NULL && (secret = gw_yl_secret_value(ld, s, &p->m, &p->secret, p->secret_key)) == NULL)
            continue;
        char *trimmed = NULL;
        if (secret != NULL && is_key_auth(p->type)) {
            /* An API key goes into a header: a "key: |" block's final line break is dropped, any
             * other control character is refused (the value itself is never shown). */
            size_t len = strlen(secret);
            while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
                len--;
            trimmed = gw_strndup(secret, len);
            secret = trimmed;
            if (*secret == '\0') {
                /* Usually ${OPENAI_API_KEY} with the variable unset. */
                lref(ld, &p->m, p->secret.at, "Secret %s/%s key %s is empty", p->secret.ns, p->secret.name,
                     p->secret_key);
                wipe_free(trimmed);
                continue;
            }
            if (!is_header_value(secret)) {
                lref(ld, &p->m, p->secret.at, "Secret %s/%s key %s contains a line break or control character",
                     p->secret.ns, p->secret.name, p->secret_key);
                wipe_free(trimmed);
                continue;
            }
        }
        for (size_t j = 0; j < p->targets.n; j++) {
            const ref_t *r = &p->targets.v[j];
            svc_t *v = FIND(s->svcs, r->ns, r->name);
            if (v == NULL) {
                lref(ld, &p->m, r->at, "AIServiceBackend %s/%s not found", r->ns, r->name);
                continue;
            }
            if (v->auth_by != NULL) {
                lerr(ld, &p->m, r->at,
                     "AIServiceBackend %s/%s already has BackendSecurityPolicy %s/%s (only one may attach)", r->ns,
                     r->name, v->auth_by->ns, v->auth_by->name);
                continue;
            }
            v->auth_by = &p->m;
            gw_auth_config_t *a = &v->auth;
            a->type = p->type;
            bool is_key = is_key_auth(p->type);
            a->api_key = is_key ? dup_or_null(secret) : NULL;
            a->credentials = is_key ? NULL : dup_or_null(secret);
            a->region = dup_or_null(p->region);
            a->aws_profile = p->type == GW_AUTH_AWS_CREDENTIALS && secret ? dup_or_null(p->profile) : NULL;
            a->gcp_project = dup_or_null(p->project);
            a->azure_client_id = dup_or_null(p->client_id);
            a->azure_tenant_id = dup_or_null(p->tenant_id);
        }
        wipe_free(trimmed);
    }
}

static void copy_auth(gw_auth_config_t *dst, const gw_auth_config_t *src)
{
    dst->type = src->type;
    dst->api_key = dup_or_null(src->api_key);
    dst->credentials = dup_or_null(src->credentials);
    dst->region = dup_or_null(src->region);
    dst->aws_profile = dup_or_null(src->aws_profile);
    dst->gcp_project = dup_or_null(src->gcp_project);
    dst->azure_client_id = dup_or_null(src->azure_client_id);
    dst->azure_tenant_id = dup_or_null(src->azure_tenant_id);
}

/* Route-level set wins over backend-level set by (case-insensitive) name; removes are unioned. */
static void merge_mutations(gw_header_mutation_t *out, const hm_t *route, const hm_t *svc)
{
    size_t max_set = route->set.n + svc->set.n, max_rm = route->remove.n + svc->remove.n;
    out->set = max_set ? gw_calloc(max_set, sizeof(*out->set)) : NULL;
    out->remove = max_rm ? gw_calloc(max_rm, sizeof(*out->remove)) : NULL;
    const hm_t *order[2] = {route, svc};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < order[k]->set.n; i++) {
            const kv_t *kv = &order[k]->set.v[i];
            bool seen = false;
            for (size_t j = 0; j < out->n_set && !seen; j++)
                seen = gw_str_case_eq(gw_str_c(out->set[j].name), gw_str_c(kv->name));
            if (seen)
                continue;
            out->set[out->n_set].name = lower_dup(kv->name);
            out->set[out->n_set].value = gw_strdup(kv->value);
            out->n_set++;
        }
        for (size_t i = 0; i < order[k]->remove.n; i++) {
            const char *name = order[k]->remove.v[i];
            bool seen = false;
            for (size_t j = 0; j < out->n_remove && !seen; j++)
                seen = gw_str_case_eq(gw_str_c(out->remove[j]), gw_str_c(name));
            if (!seen)
                out->remove[out->n_remove++] = lower_dup(name);
        }
    }
}

static void add_model(gw_config_t *c, const char *name, const char *owned_by, int64_t created)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return; /* listed once, the first rule's metadata wins */
    c->models = gw_realloc(c->models, (c->n_models + 1) * sizeof(*c->models));
    c->models[c->n_models++] = (gw_model_t){.name = gw_strdup(name), .owned_by = gw_strdup(owned_by), .created = created};
}

static void link_costs(ld_t *ld, gw_config_t *c, const meta_t *m)
{
    const gw_yaml_node_t *costs = fseq(ld, m, m->spec, "llmRequestCosts", "spec.llmRequestCosts", false, 36);
    static const char *const type_names[] = {"OutputToken", "InputToken", "CachedInputToken", "TotalToken", "CEL", NULL};
    static const gw_cost_type_t types[] = {GW_COST_OUTPUT, GW_COST_INPUT, GW_COST_CACHED_INPUT, GW_COST_TOTAL,
                                           GW_COST_CEL};
    for (size_t i = 0; costs != NULL && i < costs->n_items; i++) {
        const gw_yaml_node_t *e = costs->items[i];
        char p[64], pk[80], pt[80], pc[80];
        snprintf(p, sizeof(p), "spec.llmRequestCosts[%zu]", i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping", p);
            continue;
        }
        snprintf(pk, sizeof(pk), "%s.metadataKey", p);
        snprintf(pt, sizeof(pt), "%s.type", p);
        snprintf(pc, sizeof(pc), "%s.cel", p);
        const char *key = fstr(ld, m, e, "metadataKey", pk, true);
        int t = fenum(ld, m, e, "type", pt, type_names, true);
        if (key == NULL || t < 0)
            continue;
        const char *cel = NULL;
        if (types[t] == GW_COST_CEL && (cel = fstr(ld, m, e, "cel", pc, true)) == NULL)
            continue;
        bool dup = false;
        for (size_t j = 0; j < c->n_costs && !dup; j++)
            dup = strcmp(c->costs[j].metadata_key, key) == 0;
        if (dup)
            continue; /* the reference de-duplicates by metadataKey across routes: the first wins */
        c->costs = gw_realloc(c->costs, (c->n_costs + 1) * sizeof(*c->costs));
        c->costs[c->n_costs++] = (gw_llm_cost_t){.metadata_key = gw_strdup(key), .type = types[t], .cel = dup_or_null(cel)};
    }
}

void gw_yl_parse_header_matches(ld_t *ld, const meta_t *m, const gw_yaml_node_t *hs, const char *path,
                                gw_route_match_t *rm)
{
    if (hs == NULL || hs->n_items == 0)
        return;
    rm->headers = gw_calloc(hs->n_items, sizeof(*rm->headers));
    for (size_t j = 0; j < hs->n_items; j++) {
        const gw_yaml_node_t *hn = hs->items[j];
        char hp[192], fp[224];
        snprintf(hp, sizeof(hp), "%s[%zu]", path, j);
        if (hn->kind != GW_YAML_MAP) {
            lerr(ld, m, hn, "%s must be a mapping {type, name, value}", hp);
            continue;
        }
        snprintf(fp, sizeof(fp), "%s.name", hp);
        const char *name = fstr(ld, m, hn, "name", fp, true);
        if (name != NULL && (!is_token(name) || strlen(name) > 256)) {
            lerr(ld, m, gw_yaml_get(hn, "name"), "%s %s is not a valid header name", fp, name);
            name = NULL;
        }
        for (size_t k = 0; name != NULL && k < rm->n_headers; k++)
            if (gw_str_case_eq(gw_str_c(rm->headers[k].name), gw_str_c(name))) {
                lerr(ld, m, gw_yaml_get(hn, "name"), "%s: Duplicate value: \"%s\"", fp, name);
                name = NULL;
            }
        snprintf(fp, sizeof(fp), "%s.value", hp);
        const gw_yaml_node_t *vn = field(ld, m, hn, "value", GW_YAML_SCALAR, fp, true);
        if (vn != NULL && vn->len > 4096) {
            lerr(ld, m, vn, "%s: Too long: may not be more than 4096 bytes", fp);
            vn = NULL;
        }
        snprintf(fp, sizeof(fp), "%s.type", hp);
        static const char *const types[] = {"Exact", "RegularExpression", NULL};
        int t = present(hn, "type") ? fenum(ld, m, hn, "type", fp, types, false) : 0;
        if (name == NULL || vn == NULL || t < 0)
            continue;
        gw_header_match_t *h = &rm->headers[rm->n_headers++];
        h->name = lower_dup(name);
        h->value = gw_strdup(vn->str);
        h->type = t == 1 ? GW_MATCH_REGEX : GW_MATCH_EXACT;
        if (h->type == GW_MATCH_REGEX) {
            gw_buf_t why;
            gw_buf_init(&why, 512);
            if (gw_header_match_compile(h, &why) != GW_OK)
                lerr(ld, m, vn, "%s: bad regular expression %s: %s", hp, h->value, gw_buf_cstr(&why));
            gw_buf_free(&why);
        }
    }
}

static void link_matches(ld_t *ld, const meta_t *m, const gw_yaml_node_t *rule, const char *rp, gw_route_rule_t *r)
{
    char p[192];
    snprintf(p, sizeof(p), "%s.matches", rp);
    const gw_yaml_node_t *ms = fseq(ld, m, rule, "matches", p, false, 128);
    if (ms == NULL || ms->n_items == 0)
        return;
    r->matches = gw_calloc(ms->n_items, sizeof(*r->matches));
    for (size_t i = 0; i < ms->n_items; i++) {
        const gw_yaml_node_t *mn = ms->items[i];
        gw_route_match_t *rm = &r->matches[r->n_matches++];
        char mp[128];
        snprintf(mp, sizeof(mp), "%s.matches[%zu]", rp, i);
        if (mn->kind != GW_YAML_MAP) {
            lerr(ld, m, mn, "%s must be a mapping", mp);
            continue;
        }
        static const field_spec_t known[] = {{"headers", NULL}};
        CHECK_FIELDS(ld, m, mn, mp, known);
        snprintf(p, sizeof(p), "%s.headers", mp);
        gw_yl_parse_header_matches(ld, m, fseq(ld, m, mn, "headers", p, false, 16), p, rm);
    }
}

/* The reference's CEL rules on one rule's backendRefs: AIServiceBackend refs have neither group
 * nor kind; an InferencePool ref has both, alone in its rule. True when InferencePool is used. */
static bool check_rule_refs(ld_t *ld, const meta_t *m, const gw_yaml_node_t *brs, const char *rp)
{
    size_t with = 0, without = 0;
    for (size_t j = 0; j < brs->n_items; j++) {
        const gw_yaml_node_t *bn = brs->items[j];
        if (bn->kind != GW_YAML_MAP)
            continue;
        bool g = present(bn, "group"), k = present(bn, "kind");
        const char *group = gw_yaml_str(gw_yaml_get(bn, "group")), *kind = gw_yaml_str(gw_yaml_get(bn, "kind"));
        if (g != k)
            lerr(ld, m, bn, "%s.backendRefs[%zu]: group and kind must be specified together", rp, j);
        else if (g && (!streq(group, INFERENCE_GROUP) || !streq(kind, "InferencePool")))
            lerr(ld, m, bn, "%s.backendRefs[%zu]: only InferencePool from %s group is supported", rp, j, INFERENCE_GROUP);
        if (g && k)
            with++;
        else if (!g && !k)
            without++;
    }
    if (with > 0 && without > 0)
        lerr(ld, m, brs, "%s: cannot mix InferencePool and AIServiceBackend references in the same rule", rp);
    else if (with > 0 && brs->n_items != 1)
        lerr(ld, m, brs, "%s: only one InferencePool backend is allowed per rule", rp);
    return with > 0;
}

static const field_spec_t route_fields[] = {
    {"parentRefs", NULL},
    {"rules", NULL},
    {"llmRequestCosts", NULL},
    {"filterConfig", NULL},
    {"targetRefs", "removed in v0.4: use parentRefs"},
    {"schema", "removed in v0.4: the client API comes from the request path"},
};

static const field_spec_t rule_fields[] = {
    {"matches", NULL},        {"backendRefs", NULL},     {"timeouts", NULL},
    {"modelsOwnedBy", NULL},  {"modelsCreatedAt", NULL},
};

static const field_spec_t ref_fields[] = {
    {"name", NULL},   {"namespace", NULL},         {"group", NULL},          {"kind", NULL},
    {"weight", NULL}, {"priority", NULL},          {"modelNameOverride", NULL}, {"headerMutation", NULL},
};

/* parentRefs: at most 16, every kind Gateway (the default); one of them should be the Gateway
 * aigw serves when the file has one. */
void gw_yl_check_parent_refs(ld_t *ld, const set_t *s, const meta_t *m, bool required)
{
    const gw_yaml_node_t *prs = fseq(ld, m, m->spec, "parentRefs", "spec.parentRefs", required, 16);
    if (prs != NULL && prs->n_items == 0 && required)
        lerr(ld, m, prs, "spec.parentRefs in body should have at least 1 items");
    bool ours = false;
    for (size_t i = 0; prs != NULL && i < prs->n_items; i++) {
        char p[64];
        snprintf(p, sizeof(p), "spec.parentRefs[%zu]", i);
        if (prs->items[i]->kind != GW_YAML_MAP) {
            lerr(ld, m, prs->items[i], "%s must be a mapping {name, kind, group}", p);
            continue;
        }
        ref_t r;
        if (!parse_ref(ld, m, prs->items[i], p, &r))
            continue;
        if (r.kind != NULL && strcmp(r.kind, "Gateway") != 0) {
            lerr(ld, m, gw_yaml_get(prs->items[i], "kind"), "%s.kind %s: only Gateway is supported", p, r.kind);
            continue;
        }
        if (s->gateways.n > 0 && strcmp(s->gateways.v[0].m.name, r.name) == 0 &&
            strcmp(s->gateways.v[0].m.ns, r.ns) == 0)
            ours = true;
    }
    if (prs != NULL && prs->n_items > 0 && !ours && s->gateways.n > 0 && !ld->crd_only)
        lnote(ld, m, prs, "spec.parentRefs does not name Gateway %s/%s; served on it anyway (aigw has one listener)",
              s->gateways.v[0].m.ns, s->gateways.v[0].m.name);
}

static void link_routes(ld_t *ld, set_t *s, gw_config_t *c)
{
    for (size_t ri = 0; ri < s->routes.n; ri++) {
        const meta_t *m = &s->routes.v[ri].m;
        CHECK_FIELDS(ld, m, m->spec, "spec", route_fields);
        gw_yl_check_parent_refs(ld, s, m, false);
        const gw_yaml_node_t *fc = field(ld, m, m->spec, "filterConfig", GW_YAML_MAP, "spec.filterConfig", false);
        if (fc != NULL) {
            static const char *const fct[] = {"ExternalProcessor", "DynamicModule", NULL};
            fenum(ld, m, fc, "type", "spec.filterConfig.type", fct, false);
            lnote(ld, m, fc, "spec.filterConfig is ignored: aigw runs no external processor");
        }
        const btp_t *btp = gw_yl_btp_for_route(s, m);
        const gw_yaml_node_t *rules = fseq(ld, m, m->spec, "rules", "spec.rules", true, 128);
        if (rules != NULL && rules->n_items == 0)
            lunsup(ld, m, rules, "spec.rules must have at least one rule");
        if (rules != NULL && rules->n_items > 0) {
            c->rules = gw_realloc(c->rules, (c->n_rules + rules->n_items) * sizeof(*c->rules));
            memset(&c->rules[c->n_rules], 0, rules->n_items * sizeof(*c->rules));
        }
        for (size_t i = 0; rules != NULL && i < rules->n_items; i++) {
            const gw_yaml_node_t *rn = rules->items[i];
            gw_route_rule_t *r = &c->rules[c->n_rules++];
            char rp[64];
            snprintf(rp, sizeof(rp), "spec.rules[%zu]", i);
            r->route_name = joinf("%s/%s", m->ns, m->name);
            r->request_timeout_ms = DEFAULT_TIMEOUT_MS;
            r->retry.backoff_base_ms = 25;
            r->retry.backoff_max_ms = 250;
            r->health = (gw_passive_health_t){.consecutive_failures = 1, .base_ejection_ms = 1000, .max_ejection_ms = 30000};
            if (rn->kind != GW_YAML_MAP) {
                lerr(ld, m, rn, "%s must be a mapping", rp);
                continue;
            }
            CHECK_FIELDS(ld, m, rn, rp, rule_fields);
            link_matches(ld, m, rn, rp, r);

            /* Timeouts: the rule's own, else the BackendTrafficPolicy's, else 60 s. */
            char p[128];
            snprintf(p, sizeof(p), "%s.timeouts", rp);
            const gw_yaml_node_t *to = field(ld, m, rn, "timeouts", GW_YAML_MAP, p, false);
            snprintf(p, sizeof(p), "%s.timeouts.request", rp);
            int has_req = to ? fduration(ld, m, to, "request", p, &r->request_timeout_ms) : 0;
            uint64_t backend_req = 0;
            snprintf(p, sizeof(p), "%s.timeouts.backendRequest", rp);
            int has_breq = to ? fduration(ld, m, to, "backendRequest", p, &backend_req) : 0;
            if (has_req == 1 && has_breq == 1 && r->request_timeout_ms != 0 &&
                (backend_req == 0 || backend_req > r->request_timeout_ms))
                lerr(ld, m, to, "%s.timeouts: backendRequest timeout cannot be longer than request timeout", rp);
            if (btp != NULL) {
                if (has_req == 0 && btp->has_timeout)
                    r->request_timeout_ms = btp->request_timeout_ms;
                if (btp->has_retry)
                    r->retry = btp->retry;
                if (btp->has_health)
                    r->health = btp->health;
            }
            /* backendRequest bounds each attempt, as Envoy Gateway's per-try timeout. */
            if (has_breq == 1 && r->retry.per_retry_timeout_ms == 0)
                r->retry.per_retry_timeout_ms = backend_req;

            snprintf(p, sizeof(p), "%s.modelsOwnedBy", rp);
            const char *owned_by = fstr(ld, m, rn, "modelsOwnedBy", p, false);
            snprintf(p, sizeof(p), "%s.modelsCreatedAt", rp);
            const char *created_at = fstr(ld, m, rn, "modelsCreatedAt", p, false);
            int64_t created = ld->now;
            if (created_at != NULL && !parse_rfc3339(created_at, &created))
                lerr(ld, m, gw_yaml_get(rn, "modelsCreatedAt"),
                     "%s %s is not an RFC 3339 date-time such as 2025-05-23T00:00:00Z", p, created_at);
            for (size_t j = 0; j < r->n_matches; j++)
                for (size_t k = 0; k < r->matches[j].n_headers; k++) {
                    const gw_header_match_t *h = &r->matches[j].headers[k];
                    if (h->type == GW_MATCH_EXACT && strcmp(h->name, MODEL_HEADER) == 0)
                        add_model(c, h->value, owned_by && *owned_by ? owned_by : DEFAULT_OWNED_BY, created);
                }

            snprintf(p, sizeof(p), "%s.backendRefs", rp);
            const gw_yaml_node_t *brs = fseq(ld, m, rn, "backendRefs", p, false, 128);
            if (brs == NULL || brs->n_items == 0) {
                /* An empty rule is valid for the API server; a rule that routes nowhere is not served. */
                if (brs != NULL || gw_yaml_is_null(gw_yaml_get(rn, "backendRefs")))
                    lunsup(ld, m, brs ? brs : rn, "%s: a rule needs at least one backend", p);
                continue;
            }
            if (check_rule_refs(ld, m, brs, rp)) {
                lunsup(ld, m, brs, "%s: InferencePool backends are not supported (the Gateway API Inference "
                       "Extension needs its endpoint picker, which aigw does not run)", p);
                continue;
            }
            r->backends = gw_calloc(brs->n_items, sizeof(*r->backends));
            for (size_t j = 0; j < brs->n_items; j++) {
                const gw_yaml_node_t *bn = brs->items[j];
                char bp[128], fp[160];
                snprintf(bp, sizeof(bp), "%s.backendRefs[%zu]", rp, j);
                if (bn->kind != GW_YAML_MAP) {
                    lerr(ld, m, bn, "%s must be a mapping", bp);
                    continue;
                }
                CHECK_FIELDS(ld, m, bn, bp, ref_fields);
                ref_t ref;
                bool named = parse_ref(ld, m, bn, bp, &ref);
                if (named && *ref.name == '\0') {
                    lerr(ld, m, bn, "%s.name must be at least 1 character long", bp);
                    named = false;
                }
                uint64_t weight = 1, priority = 0;
                snprintf(fp, sizeof(fp), "%s.weight", bp);
                int wrc = fuint(ld, m, bn, "weight", fp, 0, INT32_MAX, &weight);
                if (wrc == 1 && weight > MAX_WEIGHT) {
                    lunsup(ld, m, gw_yaml_get(bn, "weight"), "%s %llu is above %d, the Gateway API's limit", fp,
                           (unsigned long long)weight, MAX_WEIGHT);
                    wrc = -1;
                }
                snprintf(fp, sizeof(fp), "%s.priority", bp);
                int prc = fuint(ld, m, bn, "priority", fp, 0, UINT32_MAX, &priority);
                snprintf(fp, sizeof(fp), "%s.modelNameOverride", bp);
                const char *override = fstr(ld, m, bn, "modelNameOverride", fp, false);
                hm_t hm = {0};
                parse_header_mutation(ld, m, bn, bp, &hm);
                if (!named) {
                    hm_free(&hm);
                    continue;
                }
                /* Cross-namespace: a ReferenceGrant in the backend's namespace must allow it. */
                if (!gw_yl_granted(s, AIGW_GROUP, "AIGatewayRoute", m->ns, AIGW_GROUP, "AIServiceBackend", ref.ns,
                                   ref.name)) {
                    lref(ld, m, bn,
                         "%s: AIServiceBackend %s/%s is in another namespace and no ReferenceGrant in %s allows "
                         "AIGatewayRoute from %s to refer to it",
                         bp, ref.ns, ref.name, ref.ns, m->ns);
                    hm_free(&hm);
                    continue;
                }
                const svc_t *v = FIND(s->svcs, ref.ns, ref.name);
                if (v == NULL)
                    lref(ld, m, bn, "%s: AIServiceBackend %s/%s not found", bp, ref.ns, ref.name);
                /* A broken AIServiceBackend or Backend has reported its own errors already. */
                if (v == NULL || !v->ok || v->be == NULL || !v->be->ok || v->be->host == NULL || wrc < 0 || prc < 0) {
                    hm_free(&hm);
                    continue;
                }
                gw_backend_t *b = &r->backends[r->n_backends++];
                b->name = joinf("%s/%s/route/%s/rule/%zu/ref/%zu", ref.ns, ref.name, m->name, i, j);
                b->service_name = joinf("%s/%s", ref.ns, ref.name);
                b->schema = v->schema;
                if (v->version != NULL)
                    b->schema_version = gw_strdup(v->version);
                else if (v->schema == GW_SCHEMA_OPENAI || v->schema == GW_SCHEMA_ANTHROPIC)
                    b->schema_version = gw_strdup("v1");
                b->host = gw_strdup(v->be->host);
                b->port = v->be->port;
                b->tls = v->be->tls;
                if (v->be->tls && v->be->sni != NULL && strcmp(v->be->sni, v->be->host) != 0)
                    b->sni = gw_strdup(v->be->sni);
                if (v->be->tls && v->be->ca_pem != NULL)
                    b->ca_pem = gw_strdup(v->be->ca_pem);
                copy_auth(&b->auth, &v->auth);
                merge_mutations(&b->header_mutation, &hm, &v->hm);
                hm_free(&hm);
                if (override != NULL && *override != '\0')
                    b->model_name_override = gw_strdup(override);
                b->weight = (uint32_t)weight;
                b->priority = (uint32_t)priority;
            }
        }
        link_costs(ld, c, m);
    }
}

/* ---- the whole load ---- */

typedef struct {
    uint32_t line, col;
    size_t off, len;
} line_ref_t;

static uint32_t read_u32(const char *p, const char *end, const char **next)
{
    uint32_t v = 0;
    while (p < end && *p >= '0' && *p <= '9' && v < 100000000)
        v = v * 10 + (uint32_t)(*p++ - '0');
    *next = p;
    return v;
}

static int line_cmp(const void *a, const void *b)
{
    const line_ref_t *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off; /* stable: emission order */
}

/* Problems are found kind by kind and then while linking; the reader wants them in file order.
 * Sorts the lines "file:line:col: ..." appended to b since from; lines without a position first. */
static void sort_lines(gw_buf_t *b, size_t from, const char *file)
{
    if (b == NULL || b->len <= from)
        return;
    size_t flen = strlen(file), n = 0, cap = 64;
    line_ref_t *v = gw_malloc(cap * sizeof(*v));
    const char *base = b->data, *end = b->data + b->len;
    for (const char *p = base + from; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl + 1 : end;
        line_ref_t r = {0, 0, (size_t)(p - base), (size_t)(le - p)};
        if ((size_t)(le - p) > flen + 1 && memcmp(p, file, flen) == 0 && p[flen] == ':') {
            const char *q;
            r.line = read_u32(p + flen + 1, le, &q);
            if (q < le && *q == ':')
                r.col = read_u32(q + 1, le, &q);
        }
        if (n == cap)
            v = gw_realloc(v, (cap *= 2) * sizeof(*v));
        v[n++] = r;
        p = le;
    }
    qsort(v, n, sizeof(*v), line_cmp);
    char *sorted = gw_malloc(b->len - from);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(sorted + o, base + v[i].off, v[i].len);
        o += v[i].len;
    }
    memcpy(b->data + from, sorted, o);
    explicit_bzero(sorted, o);
    free(sorted);
    free(v);
}

static int load(const char *name, const char *bytes, size_t len, unsigned flags, gw_buf_t *errors,
                gw_buf_t *notices, gw_config_t **out)
{
    gw_buf_t scratch, text;
    subst_map_t map = {0};
    set_t set = {0};
    gw_yaml_stream_t *ys = NULL;
    gw_config_t *c = NULL;
    int rc = GW_EINVAL;
    if (errors == NULL) {
        gw_buf_init(&scratch, 64 << 10);
        errors = &scratch;
    }
    ld_t ld = {.file = name,
               .errors = errors,
               .notices = notices,
               .map = &map,
               .now = (int64_t)time(NULL),
               .crd_only = (flags & GW_CHECK_RESOURCES_ONLY) != 0};
    size_t errors_before = errors->len, notices_before = notices ? notices->len : 0;
    gw_buf_init(&text, MAX_CONFIG_FILE);
    if (gw_yl_substitute(bytes, len, &text, &map) != GW_OK) {
        gw_buf_appendf(errors, "%s: larger than %zu bytes after ${VAR} substitution\n", name, MAX_CONFIG_FILE);
        goto out;
    }

    gw_yaml_error_t yerr;
    ys = gw_yaml_parse(text.data ? text.data : "", text.len, NULL, &yerr);
    if (ys == NULL) {
        if (yerr.line > 0) {
            pos_t p = gw_yl_map_pos(&map, (pos_t){yerr.line, yerr.col});
            gw_buf_appendf(errors, "%s:%u:%u: %s\n", name, p.line, p.col, yerr.msg);
        } else {
            gw_buf_appendf(errors, "%s: %s\n", name, yerr.msg);
        }
        goto out;
    }
    for (size_t i = 0; i < gw_yaml_doc_count(ys); i++)
        parse_doc(&ld, &set, gw_yaml_doc(ys, i));

    c = gw_config_new();
    link_gateway(&ld, &set, c);
    link_tls(&ld, &set);
    link_svcs(&ld, &set);
    link_secs(&ld, &set);
    gw_yl_link_btps(&ld, &set);
    link_routes(&ld, &set, c);
    gw_yl_link_mcps(&ld, &set, c);
    if (set.ctps.n > 0)
        c->max_request_body = (size_t)set.ctps.v[0].limit;
    /* A refusal always says why, even when an error line did not fit the buffer. */
    if (ld.n_errors > 0 || errors->len != errors_before) {
        if (errors->len == errors_before)
            gw_buf_appendf(errors, "%s: refused (%zu problems)\n", name, ld.n_errors);
        gw_config_unref(c);
        c = NULL;
        goto out;
    }
    if (c->n_rules == 0 && c->n_mcp_routes == 0 && !ld.crd_only)
        lnote(&ld, NULL, NULL, "no AIGatewayRoute or MCPRoute: every request will get 404");
    size_t n_backends = 0;
    for (size_t i = 0; i < c->n_rules; i++)
        n_backends += c->rules[i].n_backends;
    c->description = joinf("%s: %zu rule%s, %zu backend reference%s, %zu model%s, %zu MCP route%s%s", name,
                           c->n_rules, c->n_rules == 1 ? "" : "s", n_backends, n_backends == 1 ? "" : "s",
                           c->n_models, c->n_models == 1 ? "" : "s", c->n_mcp_routes, c->n_mcp_routes == 1 ? "" : "s",
                           c->listen_tls_cert_pem ? ", HTTPS listener" : "");
    rc = GW_OK;
out:
    sort_lines(errors, errors_before, name);
    sort_lines(notices, notices_before, name);
    gw_yaml_stream_free(ys);
    set_free(&set);
    free(map.v);
    if (text.data != NULL)
        explicit_bzero(text.data, text.len); /* the substituted text holds secrets from the environment */
    gw_buf_free(&text);
    if (errors == &scratch)
        gw_buf_free(&scratch);
    if (out != NULL)
        *out = c;
    else
        gw_config_unref(c);
    return rc;
}

gw_config_t *gw_config_load_buffer(const char *name, const char *bytes, size_t len, gw_buf_t *errors)
{
    gw_config_t *c = NULL;
    load(name ? name : "(buffer)", bytes, len, 0, errors, NULL, &c);
    return c;
}

int gw_config_check_buffer(const char *name, const char *bytes, size_t len, unsigned flags, gw_buf_t *errors,
                           gw_buf_t *notices)
{
    gw_buf_t scratch;
    if (notices == NULL) { /* collected and dropped: a check is not a run, nothing to log */
        gw_buf_init(&scratch, 1 << 20);
        notices = &scratch;
    }
    int rc = load(name ? name : "(buffer)", bytes, len, flags, errors, notices, NULL);
    if (notices == &scratch)
        gw_buf_free(&scratch);
    return rc;
}

/* Reads a whole configuration file (at most MAX_CONFIG_FILE bytes) into b. */
static int read_config(const char *path, gw_buf_t *b, gw_buf_t *errors)
{
    int rc = GW_ERROR;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        gw_buf_appendf(errors, "%s: cannot open: %s\n", path, strerror(errno));
        return GW_ERROR;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        gw_buf_appendf(errors, "%s: cannot read: %s\n", path, strerror(EISDIR));
        goto out;
    }
    for (;;) {
        size_t want = 65536 < MAX_CONFIG_FILE - b->len ? 65536 : MAX_CONFIG_FILE - b->len;
        char *p = gw_buf_reserve(b, want);
        if (p == NULL || b->len == MAX_CONFIG_FILE) {
            gw_buf_appendf(errors, "%s: larger than %zu bytes\n", path, MAX_CONFIG_FILE);
            goto out;
        }
        ssize_t n = read(fd, p, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            gw_buf_appendf(errors, "%s: cannot read: %s\n", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        gw_buf_commit(b, (size_t)n);
    }
    rc = GW_OK;
out:
    close(fd);
    return rc;
}

static int load_file(const char *path, unsigned flags, gw_buf_t *errors, gw_buf_t *notices, gw_config_t **out)
{
    gw_buf_t scratch, b;
    int rc = GW_EINVAL;
    if (out != NULL)
        *out = NULL;
    if (errors == NULL) {
        gw_buf_init(&scratch, 4096);
        errors = &scratch;
    }
    gw_buf_init(&b, MAX_CONFIG_FILE);
    if (read_config(path, &b, errors) == GW_OK)
        rc = load(path, b.data ? b.data : "", b.len, flags, errors, notices, out);
    if (b.data != NULL)
        explicit_bzero(b.data, b.len);
    gw_buf_free(&b);
    if (errors == &scratch)
        gw_buf_free(&scratch);
    return rc;
}

gw_config_t *gw_config_load_file(const char *path, gw_buf_t *errors)
{
    gw_config_t *c = NULL;
    load_file(path, 0, errors, NULL, &c);
    return c;
}

int gw_config_validate_file(const char *path, gw_buf_t *report)
{
    gw_buf_t errors, notices;
    gw_buf_init(&errors, 1 << 20);
    gw_buf_init(&notices, 1 << 20);
    int rc = load_file(path, 0, &errors, &notices, NULL);
    if (report != NULL) {
        gw_buf_append(report, errors.data, errors.len);
        gw_buf_append(report, notices.data, notices.len);
    }
    gw_buf_free(&errors);
    gw_buf_free(&notices);
    return rc;
}
