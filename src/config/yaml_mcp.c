/* MCPRoute (aigateway.envoyproxy.io/v1alpha1): the CRD's schema and CEL rules, then the route in
 * the snapshot (gw_mcp_route_t) with its MCP servers resolved to Backends, tool selectors
 * compiled, upstream API keys read from Secrets, and the OAuth / client API-key policies. */
#include "config/yaml_loader_int.h"

#include "core/alloc.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>

#define EG_GROUP "gateway.envoyproxy.io"
#define DEFAULT_MCP_PATH "/mcp"

static bool streq_safe(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

void gw_yl_parse_mcp(ld_t *ld, set_t *s, const meta_t *m)
{
    /* Checked and built in gw_yl_link_mcps, once Backends, Secrets and ConfigMaps are known. */
    mcp_t *r = VEC_PUSH(s->mcps);
    r->m = *m;
}

static char **str_list(ld_t *ld, const meta_t *m, const gw_yaml_node_t *parent, const char *key, const char *path,
                       size_t max, size_t *n)
{
    const gw_yaml_node_t *seq = fseq(ld, m, parent, key, path, false, max);
    *n = 0;
    if (seq == NULL || seq->n_items == 0)
        return NULL;
    char **out = gw_calloc(seq->n_items, sizeof(*out));
    for (size_t i = 0; i < seq->n_items; i++) {
        const gw_yaml_node_t *e = seq->items[i];
        if (e->kind != GW_YAML_SCALAR || e->len == 0) {
            lerr(ld, m, e, "%s[%zu] must be a non-empty string", path, i);
            continue;
        }
        out[(*n)++] = gw_strdup(e->str);
    }
    return out;
}

/* A "format: uri" field: the API server's check (an absolute URI or an absolute path), then aigw's
 * (a URI it can fetch or compare: scheme and authority). */
static char *uri_field(ld_t *ld, const meta_t *m, const gw_yaml_node_t *parent, const char *key, const char *path,
                       bool required)
{
    const char *v = required ? fstr1(ld, m, parent, key, path) : fstr(ld, m, parent, key, path, false);
    if (v == NULL)
        return NULL;
    const gw_yaml_node_t *at = gw_yaml_get(parent, key);
    if (!is_uri(v)) {
        lerr(ld, m, at, "%s: Invalid value: \"%s\": %s in body must be of type uri: \"%s\"", path, v, path, v);
        return NULL;
    }
    if (v[0] == '/') {
        lunsup(ld, m, at, "%s %s: an absolute URI (scheme://host/...) is needed here", path, v);
        return NULL;
    }
    return gw_strdup(v);
}

/* A JSON Web Key Set: a JSON object with a "keys" array. */
static bool jwks_ok(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    bool ok = j != NULL && cJSON_IsObject(j) && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "keys"));
    cJSON_Delete(j);
    return ok;
}

static gw_mcp_oauth_t *parse_oauth(ld_t *ld, const set_t *s, const meta_t *m, const gw_yaml_node_t *o)
{
    static const char *const P = "spec.securityPolicy.oauth";
    static const field_spec_t known[] = {
        {"issuer", NULL}, {"audiences", NULL}, {"jwks", NULL}, {"protectedResourceMetadata", NULL}};
    CHECK_FIELDS(ld, m, o, P, known);
    gw_mcp_oauth_t *a = gw_calloc(1, sizeof(*a));
    a->issuer = uri_field(ld, m, o, "issuer", "spec.securityPolicy.oauth.issuer", true);
    a->audiences = str_list(ld, m, o, "audiences", "spec.securityPolicy.oauth.audiences", 32, &a->n_audiences);
    const gw_yaml_node_t *jw = field(ld, m, o, "jwks", GW_YAML_MAP, "spec.securityPolicy.oauth.jwks", false);
    if (jw != NULL) {
        bool remote = present(jw, "remoteJWKS"), local = present(jw, "localJWKS");
        if (!remote && !local)
            lerr(ld, m, jw, "%s.jwks: either remoteJWKS or localJWKS must be specified.", P);
        else if (remote && local)
            lerr(ld, m, jw, "%s.jwks: remoteJWKS and localJWKS cannot both be specified.", P);
        const gw_yaml_node_t *rj =
            remote ? field(ld, m, jw, "remoteJWKS", GW_YAML_MAP, "spec.securityPolicy.oauth.jwks.remoteJWKS", true)
                   : NULL;
        if (rj != NULL && !local) {
            a->jwks_uri = uri_field(ld, m, rj, "uri", "spec.securityPolicy.oauth.jwks.remoteJWKS.uri", true);
            if (present(rj, "backendRefs") || present(rj, "backendSettings"))
                lnote(ld, m, rj, "%s.jwks.remoteJWKS: backendRefs and backendSettings are ignored: the URI is fetched "
                      "directly", P);
        }
        const gw_yaml_node_t *lj =
            local ? field(ld, m, jw, "localJWKS", GW_YAML_MAP, "spec.securityPolicy.oauth.jwks.localJWKS", true) : NULL;
        if (lj != NULL && !remote) {
            static const char *const types[] = {"Inline", "ValueRef", NULL};
            int t = fenum(ld, m, lj, "type", "spec.securityPolicy.oauth.jwks.localJWKS.type", types, false);
            if (t < 0 && !present(lj, "type"))
                t = present(lj, "valueRef") ? 1 : 0;
            const char *text = NULL;
            const gw_yaml_node_t *at = lj;
            if (t == 0) {
                text = fstr(ld, m, lj, "inline", "spec.securityPolicy.oauth.jwks.localJWKS.inline", true);
                at = gw_yaml_get(lj, "inline");
            } else if (t == 1) {
                const gw_yaml_node_t *vr = field(ld, m, lj, "valueRef", GW_YAML_MAP,
                                                 "spec.securityPolicy.oauth.jwks.localJWKS.valueRef", true);
                ref_t r;
                if (vr != NULL && parse_ref(ld, m, vr, "spec.securityPolicy.oauth.jwks.localJWKS.valueRef", &r)) {
                    at = vr;
                    if (r.kind != NULL && strcmp(r.kind, "ConfigMap") != 0) {
                        lunsup(ld, m, vr, "%s.jwks.localJWKS.valueRef: only a ConfigMap is supported, not %s", P, r.kind);
                    } else {
                        const configmap_t *cm = FIND(s->configmaps, m->ns, r.name);
                        for (size_t i = 0; cm != NULL && i < cm->data.n && text == NULL; i++)
                            if (strcmp(cm->data.v[i].name, "jwks") == 0)
                                text = cm->data.v[i].value;
                        if (cm == NULL)
                            lref(ld, m, vr, "ConfigMap %s/%s not found", m->ns, r.name);
                        else if (text == NULL)
                            lref(ld, m, vr, "ConfigMap %s/%s has no key jwks", m->ns, r.name);
                    }
                }
            }
            if (text != NULL && !jwks_ok(text))
                lunsup(ld, m, at, "%s.jwks.localJWKS is not a JSON Web Key Set (a JSON object with \"keys\")", P);
            else if (text != NULL)
                a->jwks_json = gw_strdup(text);
        }
    }
    const char *PR = "spec.securityPolicy.oauth.protectedResourceMetadata";
    const gw_yaml_node_t *pr = field(ld, m, o, "protectedResourceMetadata", GW_YAML_MAP, PR, true);
    if (pr != NULL) {
        static const field_spec_t pknown[] = {
            {"resource", NULL},          {"resourceName", NULL},          {"scopesSupported", NULL},
            {"resourceSigningAlgValuesSupported", NULL}, {"resourceDocumentation", NULL}, {"resourcePolicyUri", NULL}};
        CHECK_FIELDS(ld, m, pr, PR, pknown);
        a->resource = uri_field(ld, m, pr, "resource", "spec.securityPolicy.oauth.protectedResourceMetadata.resource",
                                true);
        a->resource_name = dup_or_null(
            fstr_max(ld, m, pr, "resourceName", "spec.securityPolicy.oauth.protectedResourceMetadata.resourceName", 256));
        a->scopes_supported =
            str_list(ld, m, pr, "scopesSupported", "spec.securityPolicy.oauth.protectedResourceMetadata.scopesSupported",
                     32, &a->n_scopes_supported);
        const char *algs = "spec.securityPolicy.oauth.protectedResourceMetadata.resourceSigningAlgValuesSupported";
        const gw_yaml_node_t *an = gw_yaml_get(pr, "resourceSigningAlgValuesSupported");
        if (an != NULL && an->kind == GW_YAML_SEQ && an->n_items == 0)
            lerr(ld, m, an, "%s in body should have at least 1 items", algs);
        a->signing_algs_supported =
            str_list(ld, m, pr, "resourceSigningAlgValuesSupported", algs, 16, &a->n_signing_algs_supported);
        a->resource_documentation = uri_field(
            ld, m, pr, "resourceDocumentation", "spec.securityPolicy.oauth.protectedResourceMetadata.resourceDocumentation",
            false);
        a->resource_policy_uri = uri_field(
            ld, m, pr, "resourcePolicyUri", "spec.securityPolicy.oauth.protectedResourceMetadata.resourcePolicyUri", false);
    }
    return a;
}

static gw_mcp_api_key_auth_t *parse_api_key_auth(ld_t *ld, const set_t *s, const meta_t *m, const gw_yaml_node_t *k)
{
    static const char *const P = "spec.securityPolicy.apiKeyAuth";
    static const field_spec_t known[] = {
        {"credentialRefs", NULL}, {"extractFrom", NULL}, {"forwardClientIDHeader", NULL}, {"sanitize", NULL}};
    CHECK_FIELDS(ld, m, k, P, known);
    gw_mcp_api_key_auth_t *a = gw_calloc(1, sizeof(*a));
    const gw_yaml_node_t *crs = fseq(ld, m, k, "credentialRefs", "spec.securityPolicy.apiKeyAuth.credentialRefs", true, 16);
    if (crs != NULL && crs->n_items == 0)
        lerr(ld, m, crs, "%s.credentialRefs in body should have at least 1 items", P);
    for (size_t i = 0; crs != NULL && i < crs->n_items; i++) {
        char p[96];
        snprintf(p, sizeof(p), "%s.credentialRefs[%zu]", P, i);
        ref_t r;
        if (crs->items[i]->kind != GW_YAML_MAP || !parse_ref(ld, m, crs->items[i], p, &r)) {
            if (crs->items[i]->kind != GW_YAML_MAP)
                lerr(ld, m, crs->items[i], "%s must be a mapping {name, namespace}", p);
            continue;
        }
        const secret_t *sc = FIND(s->secrets, r.ns, r.name);
        if (sc == NULL) {
            lref(ld, m, crs->items[i], "Secret %s/%s not found", r.ns, r.name);
            continue;
        }
        if (!gw_yl_granted(s, "aigateway.envoyproxy.io", "MCPRoute", m->ns, "", "Secret", r.ns, r.name)) {
            lref(ld, m, crs->items[i], "Secret %s/%s is in another namespace and no ReferenceGrant allows it", r.ns,
                 r.name);
            continue;
        }
        /* Every data key is a client id, its value that client's API key. */
        a->creds = gw_realloc(a->creds, (a->n_creds + sc->data.n) * sizeof(*a->creds));
        for (size_t j = 0; j < sc->data.n; j++) {
            if (*sc->data.v[j].value == '\0') {
                lref(ld, m, crs->items[i], "Secret %s/%s key %s is empty", r.ns, r.name, sc->data.v[j].key);
                continue;
            }
            a->creds[a->n_creds].client_id = gw_strdup(sc->data.v[j].key);
            a->creds[a->n_creds].key = gw_strdup(sc->data.v[j].value);
            a->n_creds++;
        }
    }
    const gw_yaml_node_t *ef = fseq(ld, m, k, "extractFrom", "spec.securityPolicy.apiKeyAuth.extractFrom", true, 16);
    if (ef != NULL && ef->n_items == 0)
        lerr(ld, m, ef, "%s.extractFrom in body should have at least 1 items", P);
    for (size_t i = 0; ef != NULL && i < ef->n_items; i++) {
        const gw_yaml_node_t *e = ef->items[i];
        char p[96], q[128];
        snprintf(p, sizeof(p), "%s.extractFrom[%zu]", P, i);
        if (e->kind != GW_YAML_MAP) {
            lerr(ld, m, e, "%s must be a mapping {headers, params, cookies}", p);
            continue;
        }
        if (!present(e, "headers") && !present(e, "params") && !present(e, "cookies"))
            lerr(ld, m, e, "%s: one of headers, params or cookies must be specified", p);
        static const struct {
            const char *key;
            size_t off_list, off_n;
        } lists[] = {
            {"headers", offsetof(gw_mcp_api_key_auth_t, headers), offsetof(gw_mcp_api_key_auth_t, n_headers)},
            {"params", offsetof(gw_mcp_api_key_auth_t, params), offsetof(gw_mcp_api_key_auth_t, n_params)},
            {"cookies", offsetof(gw_mcp_api_key_auth_t, cookies), offsetof(gw_mcp_api_key_auth_t, n_cookies)},
        };
        for (size_t l = 0; l < GW_ARRAY_SIZE(lists); l++) {
            snprintf(q, sizeof(q), "%s.%s", p, lists[l].key);
            size_t n = 0;
            char **add = str_list(ld, m, e, lists[l].key, q, 16, &n);
            char ***list = (char ***)((char *)a + lists[l].off_list);
            size_t *cnt = (size_t *)((char *)a + lists[l].off_n);
            *list = gw_realloc(*list, (*cnt + n + 1) * sizeof(**list));
            for (size_t j = 0; j < n; j++) {
                if (l == 0 && !is_token(add[j])) {
                    lerr(ld, m, e, "%s[%zu] %s is not a valid header name", q, j, add[j]);
                    free(add[j]);
                    continue;
                }
                (*list)[(*cnt)++] = l == 0 ? lower_dup(add[j]) : gw_strdup(add[j]);
                free(add[j]);
            }
            free(add);
        }
    }
    const char *fwd = fstr(ld, m, k, "forwardClientIDHeader", "spec.securityPolicy.apiKeyAuth.forwardClientIDHeader",
                           false);
    if (fwd != NULL && !is_token(fwd))
        lerr(ld, m, gw_yaml_get(k, "forwardClientIDHeader"), "%s.forwardClientIDHeader %s is not a valid header name",
             P, fwd);
    else if (fwd != NULL)
        a->forward_client_id_header = lower_dup(fwd);
    a->sanitize = fbool(ld, m, k, "sanitize", "spec.securityPolicy.apiKeyAuth.sanitize") == 1;
    return a;
}

/* Compiles an includeRegex entry: UTF-8, unanchored (any match includes, as Go's MatchString). */
static void *compile_tool_regex(const char *pattern, char *why, size_t why_len)
{
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, strlen(pattern), PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &errcode,
                                   &erroff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "unknown error");
        snprintf(why, why_len, "%s at offset %zu", (const char *)msg, (size_t)erroff);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* RFC 6749 §3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ). The scopes go into the scope= of a
 * WWW-Authenticate challenge and are compared with the token's space-separated list, so a space,
 * quote, backslash or control byte could never be granted and would break the header. */
static bool scope_token_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p == '"' || *p == '\\' || *p > 0x7e)
            return false;
    return true;
}

static char **scope_list(ld_t *ld, const meta_t *m, const gw_yaml_node_t *parent, const char *key, const char *path,
                         bool required, size_t *n)
{
    const gw_yaml_node_t *seq = fseq(ld, m, parent, key, path, required, GW_MCP_AUTHZ_MAX_SCOPES);
    *n = 0;
    if (seq == NULL)
        return NULL;
    if (seq->n_items == 0) {
        lerr(ld, m, seq, "%s in body should have at least 1 items", path);
        return NULL;
    }
    char **out = gw_calloc(seq->n_items, sizeof(*out));
    for (size_t i = 0; i < seq->n_items; i++) {
        const gw_yaml_node_t *e = seq->items[i];
        if (e->kind != GW_YAML_SCALAR || e->len == 0)
            lerr(ld, m, e, "%s[%zu] must be a non-empty string", path, i);
        else if (!scope_token_ok(e->str))
            lerr(ld, m, e, "%s[%zu]: \"%s\" is not a scope token (no space, quote, backslash or control character)",
                 path, i, e->str);
        else
            out[(*n)++] = gw_strdup(e->str);
    }
    return out;
}

static void *compile_tool_regex(const char *pattern, char *why, size_t why_len);

/* securityPolicy.authorization: an aigw extension (the v0.4 CRD has none; the reference's later
 * API authorizes tools by JWT scopes too). Scopes come from the oauth tokens, so it needs oauth. */
static gw_mcp_authorization_t *parse_authorization(ld_t *ld, const meta_t *m, const gw_yaml_node_t *z)
{
    static const char *const P = "spec.securityPolicy.authorization";
    static const field_spec_t known[] = {{"requiredScopes", NULL}, {"tools", NULL}};
    CHECK_FIELDS(ld, m, z, P, known);
    gw_mcp_authorization_t *a = gw_calloc(1, sizeof(*a));
    if (!present(z, "requiredScopes") && !present(z, "tools"))
        lerr(ld, m, z, "%s: at least one of requiredScopes or tools must be specified", P);
    a->required_scopes =
        scope_list(ld, m, z, "requiredScopes", "spec.securityPolicy.authorization.requiredScopes", false,
                   &a->n_required_scopes);
    const gw_yaml_node_t *ts = fseq(ld, m, z, "tools", "spec.securityPolicy.authorization.tools", false,
                                    GW_MCP_AUTHZ_MAX_TOOLS);
    if (ts != NULL && ts->n_items == 0)
        lerr(ld, m, ts, "%s.tools in body should have at least 1 items", P);
    if (ts != NULL && ts->n_items > 0)
        a->tools = gw_calloc(ts->n_items, sizeof(*a->tools));
    for (size_t i = 0; ts != NULL && i < ts->n_items; i++) {
        const gw_yaml_node_t *t = ts->items[i];
        char p[96], q[128];
        snprintf(p, sizeof(p), "%s.tools[%zu]", P, i);
        if (t->kind != GW_YAML_MAP) {
            lerr(ld, m, t, "%s must be a mapping {name or nameRegex, scopes}", p);
            continue;
        }
        static const field_spec_t tknown[] = {{"name", NULL}, {"nameRegex", NULL}, {"scopes", NULL}};
        CHECK_FIELDS(ld, m, t, p, tknown);
        /* Kept even when invalid so that every string is freed with the snapshot. */
        gw_mcp_tool_scopes_t *r = &a->tools[a->n_tools++];
        if (present(t, "name") == present(t, "nameRegex"))
            lerr(ld, m, t, "%s: exactly one of name or nameRegex must be specified", p);
        snprintf(q, sizeof(q), "%s.name", p);
        const char *name = fstr_max(ld, m, t, "name", q, 512);
        if (name != NULL && *name == '\0')
            lerr(ld, m, gw_yaml_get(t, "name"), "%s must not be empty", q);
        else if (name != NULL)
            r->name = gw_strdup(name);
        snprintf(q, sizeof(q), "%s.nameRegex", p);
        const char *re = fstr_max(ld, m, t, "nameRegex", q, 1024);
        if (re != NULL && *re == '\0') {
            lerr(ld, m, gw_yaml_get(t, "nameRegex"), "%s must not be empty", q);
        } else if (re != NULL && r->name == NULL) {
            char why[200];
            r->name_regex = gw_strdup(re);
            if ((r->name_re = compile_tool_regex(re, why, sizeof(why))) == NULL)
                lerr(ld, m, gw_yaml_get(t, "nameRegex"), "%s: bad regular expression %s: %s", q, re, why);
        }
        snprintf(q, sizeof(q), "%s.scopes", p);
        r->scopes = scope_list(ld, m, t, "scopes", q, true, &r->n_scopes);
    }
    return a;
}

static void parse_backend_ref(ld_t *ld, const set_t *s, const meta_t *m, const gw_yaml_node_t *bn, const char *bp,
                              gw_mcp_backend_t *b, bool *ok)
{
    static const field_spec_t known[] = {
        {"name", NULL}, {"namespace", NULL}, {"group", NULL},        {"kind", NULL},
        {"port", NULL}, {"path", NULL},      {"toolSelector", NULL}, {"securityPolicy", NULL},
    };
    CHECK_FIELDS(ld, m, bn, bp, known);
    char p[192];
    ref_t r;
    if (!parse_ref(ld, m, bn, bp, &r)) {
        *ok = false;
        return;
    }
    b->name = gw_strdup(r.name);
    snprintf(p, sizeof(p), "%s.path", bp);
    const char *path = fstr_max(ld, m, bn, "path", p, 1024);
    if (path != NULL && path[0] != '/')
        lunsup(ld, m, gw_yaml_get(bn, "path"), "%s %s must start with /", p, path);
    b->path = gw_strdup(path != NULL && *path != '\0' ? path : DEFAULT_MCP_PATH);
    uint64_t port = 0;
    snprintf(p, sizeof(p), "%s.port", bp);
    int prc = fuint(ld, m, bn, "port", p, 1, 65535, &port);

    snprintf(p, sizeof(p), "%s.toolSelector", bp);
    const gw_yaml_node_t *ts = field(ld, m, bn, "toolSelector", GW_YAML_MAP, p, false);
    if (ts != NULL) {
        static const field_spec_t tknown[] = {{"include", NULL}, {"includeRegex", NULL}};
        CHECK_FIELDS(ld, m, ts, p, tknown);
        if (present(ts, "include") == present(ts, "includeRegex"))
            lerr(ld, m, ts, "%s: exactly one of include or includeRegex must be specified", p);
        char q[224];
        snprintf(q, sizeof(q), "%s.include", p);
        b->include = str_list(ld, m, ts, "include", q, 32, &b->n_include);
        snprintf(q, sizeof(q), "%s.includeRegex", p);
        b->include_regex = str_list(ld, m, ts, "includeRegex", q, 32, &b->n_include_regex);
        if (b->n_include_regex > 0)
            b->include_re = gw_calloc(b->n_include_regex, sizeof(*b->include_re));
        for (size_t i = 0; i < b->n_include_regex; i++) {
            char why[200];
            if ((b->include_re[i] = compile_tool_regex(b->include_regex[i], why, sizeof(why))) == NULL)
                lunsup(ld, m, gw_yaml_get(ts, "includeRegex"), "%s[%zu]: bad regular expression %s: %s", q, i,
                       b->include_regex[i], why);
        }
    }

    snprintf(p, sizeof(p), "%s.securityPolicy", bp);
    const gw_yaml_node_t *sp = field(ld, m, bn, "securityPolicy", GW_YAML_MAP, p, false);
    const gw_yaml_node_t *ak = NULL;
    if (sp != NULL) {
        static const field_spec_t sknown[] = {{"apiKey", NULL}};
        CHECK_FIELDS(ld, m, sp, p, sknown);
        snprintf(p, sizeof(p), "%s.securityPolicy.apiKey", bp);
        ak = field(ld, m, sp, "apiKey", GW_YAML_MAP, p, false);
    }
    const char *key = NULL;
    ref_t sr = {0};
    if (ak != NULL) {
        static const field_spec_t aknown[] = {{"secretRef", NULL}, {"inline", NULL}, {"header", NULL}};
        CHECK_FIELDS(ld, m, ak, p, aknown);
        bool has_ref = present(ak, "secretRef"), has_inline = present(ak, "inline");
        if (has_ref == has_inline) {
            lerr(ld, m, ak, "%s: exactly one of secretRef or inline must be set", p);
        } else if (has_inline) {
            char q[224];
            snprintf(q, sizeof(q), "%s.inline", p);
            key = fstr(ld, m, ak, "inline", q, true);
            b->api_key_source = GW_MCP_KEY_INLINE;
        } else {
            char q[224];
            snprintf(q, sizeof(q), "%s.secretRef", p);
            const gw_yaml_node_t *srn = field(ld, m, ak, "secretRef", GW_YAML_MAP, q, true);
            if (srn != NULL && parse_ref(ld, m, srn, q, &sr)) {
                key = gw_yl_secret_value(ld, s, m, &sr, "apiKey");
                b->api_key_source = GW_MCP_KEY_SECRET_REF;
                b->api_key_secret = joinf("%s/%s", sr.ns, sr.name);
            }
        }
        char q[224];
        snprintf(q, sizeof(q), "%s.header", p);
        const char *hdr = fstr(ld, m, ak, "header", q, false);
        if (hdr != NULL && !is_token(hdr))
            lerr(ld, m, gw_yaml_get(ak, "header"), "%s %s is not a valid header name", q, hdr);
        b->api_key_header = lower_dup(hdr != NULL && is_token(hdr) ? hdr : "Authorization");
        if (key != NULL) {
            /* It goes into a header: drop a block scalar's final line break, refuse other controls. */
            size_t len = strlen(key);
            while (len > 0 && (key[len - 1] == '\n' || key[len - 1] == '\r'))
                len--;
            b->api_key = gw_strndup(key, len);
            if (len == 0)
                lref(ld, m, ak, "%s: the API key is empty", p);
            else if (!is_header_value(b->api_key))
                lerr(ld, m, ak, "%s: the API key contains a line break or control character", p);
        }
    }

    /* Where to connect: a gateway.envoyproxy.io Backend in the route's namespace. */
    const char *kind = r.kind ? r.kind : "Service"; /* BackendObjectReference's default */
    if (strcmp(kind, "Backend") != 0 || !(r.group != NULL && strcmp(r.group, EG_GROUP) == 0)) {
        lunsup(ld, m, bn,
               "%s: %s%s%s cannot be resolved outside Kubernetes; refer to a Backend (group %s, kind Backend)", bp,
               r.group && *r.group ? r.group : "", r.group && *r.group ? " " : "", kind, EG_GROUP);
        *ok = false;
        return;
    }
    if (r.ns_written && strcmp(r.ns, m->ns) != 0) {
        lunsup(ld, m, gw_yaml_get(bn, "namespace"),
               "%s.namespace: MCP backends must be in the MCPRoute's namespace (%s), as in the reference", bp, m->ns);
        *ok = false;
        return;
    }
    const be_t *be = FIND(s->backends, m->ns, r.name);
    if (be == NULL) {
        lref(ld, m, bn, "%s: Backend %s/%s not found", bp, m->ns, r.name);
        *ok = false;
        return;
    }
    if (!be->ok || be->host == NULL) {
        *ok = false; /* it reported its own errors */
        return;
    }
    b->host = gw_strdup(be->host);
    b->port = be->port;
    if (prc == 1 && port != be->port)
        lnote(ld, m, gw_yaml_get(bn, "port"), "%s.port %llu is ignored: the Backend's endpoint port %u is used", bp,
              (unsigned long long)port, be->port);
    b->tls = be->tls;
    if (be->tls && be->sni != NULL && strcmp(be->sni, be->host) != 0)
        b->sni = gw_strdup(be->sni);
    if (be->tls && be->ca_pem != NULL)
        b->ca_pem = gw_strdup(be->ca_pem);
}

static const field_spec_t mcp_fields[] = {
    {"parentRefs", NULL}, {"path", NULL}, {"headers", NULL}, {"backendRefs", NULL}, {"securityPolicy", NULL},
};

void gw_yl_link_mcps(ld_t *ld, set_t *s, gw_config_t *c)
{
    if (s->mcps.n == 0)
        return;
    c->mcp_routes = gw_calloc(s->mcps.n, sizeof(*c->mcp_routes));
    const meta_t *oauth_by = NULL;
    for (size_t ri = 0; ri < s->mcps.n; ri++) {
        const meta_t *m = &s->mcps.v[ri].m;
        gw_mcp_route_t *rt = &c->mcp_routes[c->n_mcp_routes++];
        rt->name = joinf("%s/%s", m->ns, m->name);
        CHECK_FIELDS(ld, m, m->spec, "spec", mcp_fields);
        gw_yl_check_parent_refs(ld, s, m, true);
        const gw_yaml_node_t *prs = gw_yaml_get(m->spec, "parentRefs");
        for (size_t i = 0; prs != NULL && prs->kind == GW_YAML_SEQ && i < prs->n_items; i++) {
            const char *ns = gw_yaml_str(gw_yaml_get(prs->items[i], "namespace"));
            if (ns != NULL && *ns != '\0' && strcmp(ns, m->ns) != 0)
                lunsup(ld, m, prs->items[i], "spec.parentRefs[%zu]: the Gateway must be in the MCPRoute's namespace", i);
        }
        const char *path = fstr_max(ld, m, m->spec, "path", "spec.path", 1024);
        if (path != NULL && path[0] != '/')
            lunsup(ld, m, gw_yaml_get(m->spec, "path"), "spec.path %s must start with /", path);
        rt->path = gw_strdup(path != NULL && *path != '\0' ? path : DEFAULT_MCP_PATH);
        gw_yl_parse_header_matches(ld, m, fseq(ld, m, m->spec, "headers", "spec.headers", false, 16), "spec.headers",
                                   &rt->match);

        const gw_yaml_node_t *brs = fseq(ld, m, m->spec, "backendRefs", "spec.backendRefs", true, 256);
        if (brs != NULL && brs->n_items == 0)
            lerr(ld, m, brs, "spec.backendRefs in body should have at least 1 items");
        if (brs != NULL) {
            for (size_t i = 0; i < brs->n_items; i++) {
                const char *ni = gw_yaml_str(gw_yaml_get(brs->items[i], "name"));
                bool dup = false;
                for (size_t j = 0; ni != NULL && j < i && !dup; j++)
                    dup = streq_safe(ni, gw_yaml_str(gw_yaml_get(brs->items[j], "name")));
                if (dup) {
                    lerr(ld, m, brs->items[i], "spec.backendRefs: all backendRefs names must be unique (%s)", ni);
                    break;
                }
            }
            rt->backends = gw_calloc(brs->n_items ? brs->n_items : 1, sizeof(*rt->backends));
            for (size_t i = 0; i < brs->n_items; i++) {
                char bp[64];
                snprintf(bp, sizeof(bp), "spec.backendRefs[%zu]", i);
                if (brs->items[i]->kind != GW_YAML_MAP) {
                    lerr(ld, m, brs->items[i], "%s must be a mapping", bp);
                    continue;
                }
                bool ok = true;
                /* Kept even when unresolved so that every string is freed with the snapshot. */
                parse_backend_ref(ld, s, m, brs->items[i], bp, &rt->backends[rt->n_backends++], &ok);
            }
        }

        const gw_yaml_node_t *sp = field(ld, m, m->spec, "securityPolicy", GW_YAML_MAP, "spec.securityPolicy", false);
        if (sp != NULL) {
            static const field_spec_t sknown[] = {{"oauth", NULL}, {"apiKeyAuth", NULL}, {"authorization", NULL}};
            CHECK_FIELDS(ld, m, sp, "spec.securityPolicy", sknown);
            const gw_yaml_node_t *o = field(ld, m, sp, "oauth", GW_YAML_MAP, "spec.securityPolicy.oauth", false);
            if (o != NULL) {
                rt->oauth = parse_oauth(ld, s, m, o);
                /* The well-known metadata paths are fixed: one OAuth route per listener (§5.6). */
                if (oauth_by != NULL)
                    lunsup(ld, m, o, "only one MCPRoute with OAuth is supported (MCPRoute %s/%s has one already)",
                           oauth_by->ns, oauth_by->name);
                oauth_by = m;
            }
            const gw_yaml_node_t *k =
                field(ld, m, sp, "apiKeyAuth", GW_YAML_MAP, "spec.securityPolicy.apiKeyAuth", false);
            if (k != NULL)
                rt->api_key_auth = parse_api_key_auth(ld, s, m, k);
            const gw_yaml_node_t *z =
                field(ld, m, sp, "authorization", GW_YAML_MAP, "spec.securityPolicy.authorization", false);
            if (z != NULL) {
                rt->authorization = parse_authorization(ld, m, z);
                if (o == NULL)
                    lerr(ld, m, z, "spec.securityPolicy.authorization needs spec.securityPolicy.oauth: the scopes are "
                         "those of its access tokens");
                /* One backend: its tools are exposed unprefixed, so a prefixed rule name would never
                 * match and the tool would go unguarded. */
                const gw_yaml_node_t *tn = gw_yaml_get(z, "tools");
                for (size_t i = 0; rt->n_backends == 1 && rt->backends[0].name != NULL &&
                                   i < rt->authorization->n_tools;
                     i++) {
                    const char *nm = rt->authorization->tools[i].name, *bn = rt->backends[0].name;
                    size_t bl = strlen(bn);
                    if (nm != NULL && strncmp(nm, bn, bl) == 0 && strncmp(nm + bl, "__", 2) == 0)
                        lnote(ld, m, tn != NULL && i < tn->n_items ? tn->items[i] : z,
                              "spec.securityPolicy.authorization.tools[%zu].name %s: a route with one backend exposes "
                              "its tools without the \"%s__\" prefix, so this rule only matches a tool named so "
                              "upstream", i, nm, bn);
                }
            }
        }
        for (size_t j = 0; j < ri; j++) {
            const gw_mcp_route_t *o = &c->mcp_routes[j];
            if (strcmp(o->path, rt->path) == 0 && o->match.n_headers == 0 && rt->match.n_headers == 0)
                lunsup(ld, m, m->spec, "spec.path %s is already served by MCPRoute %s (neither has header matches)",
                       rt->path, o->name);
        }
    }
}
