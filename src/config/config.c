/* The configuration snapshot: schema names, reference counting (the last unref frees every
 * string and compiled regex) and the route matcher the workers call concurrently on a shared,
 * immutable snapshot. */
#include "config/config.h"

#include "core/alloc.h"
#include "core/log.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>

static const char *const schema_names[] = {
    [GW_SCHEMA_OPENAI] = "OpenAI",
    [GW_SCHEMA_AZURE_OPENAI] = "AzureOpenAI",
    [GW_SCHEMA_ANTHROPIC] = "Anthropic",
    [GW_SCHEMA_AWS_BEDROCK] = "AWSBedrock",
    [GW_SCHEMA_AWS_ANTHROPIC] = "AWSAnthropic",
    [GW_SCHEMA_GCP_VERTEX_AI] = "GCPVertexAI",
    [GW_SCHEMA_GCP_ANTHROPIC] = "GCPAnthropic",
    [GW_SCHEMA_COHERE] = "Cohere",
};

const char *gw_schema_name(gw_schema_t s)
{
    if ((size_t)s < GW_ARRAY_SIZE(schema_names) && schema_names[s] != NULL)
        return schema_names[s];
    return "unknown";
}

bool gw_schema_parse(const char *name, gw_schema_t *out)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(schema_names); i++) {
        if (schema_names[i] != NULL && strcmp(schema_names[i], name) == 0) {
            *out = (gw_schema_t)i;
            return true;
        }
    }
    return false;
}

gw_config_t *gw_config_new(void)
{
    gw_config_t *c = gw_calloc(1, sizeof(*c));
    atomic_init(&c->refcount, 1);
    return c;
}

/* ---- regex ---- */

/* Client-controlled values meet user-written patterns here, so backtracking is bounded. The
 * match context is written once and only read afterwards, which PCRE2 allows across threads. */
#define MATCH_LIMIT 100000
#define DEPTH_LIMIT 10000

static pthread_once_t regex_once = PTHREAD_ONCE_INIT;
static pthread_key_t match_data_key;
static pcre2_match_context *match_ctx;

static void free_match_data(void *p)
{
    pcre2_match_data_free(p);
}

static void regex_init(void)
{
    if (pthread_key_create(&match_data_key, free_match_data) != 0)
        abort();
    match_ctx = pcre2_match_context_create(NULL);
    if (match_ctx == NULL)
        abort();
    pcre2_set_match_limit(match_ctx, MATCH_LIMIT);
    pcre2_set_depth_limit(match_ctx, DEPTH_LIMIT);
}

/* One match data per thread, made on first use: only whether it matched matters, so one
 * ovector pair is enough, and the pattern is anchored at both ends at compile time. */
static pcre2_match_data *thread_match_data(void)
{
    pcre2_match_data *md = pthread_getspecific(match_data_key);
    if (md == NULL) {
        md = pcre2_match_data_create(1, NULL);
        if (md == NULL) {
            gw_log_error("out of memory creating PCRE2 match data");
            abort();
        }
        pthread_setspecific(match_data_key, md);
    }
    return md;
}

int gw_header_match_compile(gw_header_match_t *m, gw_buf_t *err)
{
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    pthread_once(&regex_once, regex_init);
    /* ANCHORED + ENDANCHORED is a full match with proper backtracking ("a|ab" accepts "ab"),
     * which wrapping the pattern in "^(?:...)$" would also give but can be broken by the
     * pattern text itself. MATCH_INVALID_UTF: a header with bad UTF-8 simply fails to match. */
    uint32_t opts = PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)m->value, strlen(m->value), opts, &errcode, &erroff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            memcpy(msg, "unknown error", sizeof("unknown error"));
        if (err != NULL)
            gw_buf_appendf(err, "%s at offset %zu", (const char *)msg, (size_t)erroff);
        return GW_EINVAL;
    }
    /* Without JIT support (or on a pattern JIT refuses) the interpreter is used: slower, same answer. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    if (m->regex != NULL)
        pcre2_code_free(m->regex);
    m->regex = re;
    return GW_OK;
}

static bool header_matches(const gw_header_match_t *h, gw_str_t v)
{
    if (v.base == NULL)
        return false;
    if (h->type == GW_MATCH_EXACT)
        return gw_str_eq(v, gw_str_c(h->value));
    if (h->regex == NULL)
        return false;
    pcre2_match_data *md = thread_match_data();
    int rc = pcre2_match(h->regex, (PCRE2_SPTR)v.base, v.len, 0, 0, md, match_ctx);
    if (rc >= 0)
        return true; /* 0 only means "ovector too small", still a match */
    if (rc != PCRE2_ERROR_NOMATCH)
        gw_log_debug("header %s: regex evaluation failed (%d), treated as no match", h->name, rc);
    return false;
}

const gw_route_rule_t *gw_config_match(const gw_config_t *c, gw_str_t (*get_header)(void *ud, gw_str_t name),
                                       void *ud)
{
    if (c == NULL)
        return NULL;
    /* The thread key and match context exist once any regex has been compiled, and only then
     * can a regex match be reached; this keeps an all-Exact snapshot free of the once-call. */
    for (size_t r = 0; r < c->n_rules; r++) {
        const gw_route_rule_t *rule = &c->rules[r];
        if (rule->n_matches == 0)
            return rule;
        for (size_t i = 0; i < rule->n_matches; i++) {
            const gw_route_match_t *m = &rule->matches[i];
            bool all = true;
            for (size_t j = 0; j < m->n_headers && all; j++) {
                const gw_header_match_t *h = &m->headers[j];
                all = header_matches(h, get_header(ud, gw_str_c(h->name)));
            }
            if (all)
                return rule;
        }
    }
    return NULL;
}

/* ---- lifetime ---- */

static void free_auth(gw_auth_config_t *a)
{
    /* Wipe secrets before returning the memory to the allocator. */
    if (a->api_key != NULL)
        explicit_bzero(a->api_key, strlen(a->api_key));
    if (a->credentials != NULL)
        explicit_bzero(a->credentials, strlen(a->credentials));
    free(a->api_key);
    free(a->credentials);
    free(a->region);
    free(a->aws_profile);
    free(a->gcp_project);
    free(a->azure_client_id);
    free(a->azure_tenant_id);
}

static void free_mutation(gw_header_mutation_t *hm)
{
    for (size_t i = 0; i < hm->n_set; i++) {
        free(hm->set[i].name);
        free(hm->set[i].value);
    }
    free(hm->set);
    for (size_t i = 0; i < hm->n_remove; i++)
        free(hm->remove[i]);
    free(hm->remove);
}

static void free_backend(gw_backend_t *b)
{
    free(b->name);
    free(b->service_name);
    free(b->schema_version);
    free(b->host);
    free(b->sni);
    free(b->ca_file);
    free(b->ca_pem);
    free_auth(&b->auth);
    free_mutation(&b->header_mutation);
    free(b->model_name_override);
}

static void free_match(gw_route_match_t *m)
{
    for (size_t j = 0; j < m->n_headers; j++) {
        free(m->headers[j].name);
        free(m->headers[j].value);
        if (m->headers[j].regex != NULL)
            pcre2_code_free(m->headers[j].regex);
    }
    free(m->headers);
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void wipe_str(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void free_mcp_route(gw_mcp_route_t *r)
{
    free(r->name);
    free(r->path);
    free_match(&r->match);
    for (size_t i = 0; i < r->n_backends; i++) {
        gw_mcp_backend_t *b = &r->backends[i];
        free(b->name);
        free(b->host);
        free(b->sni);
        free(b->ca_pem);
        free(b->path);
        free_strv(b->include, b->n_include);
        for (size_t j = 0; j < b->n_include_regex; j++)
            if (b->include_re != NULL && b->include_re[j] != NULL)
                pcre2_code_free(b->include_re[j]);
        free(b->include_re);
        free_strv(b->include_regex, b->n_include_regex);
        wipe_str(b->api_key);
        free(b->api_key_header);
        free(b->api_key_secret);
    }
    free(r->backends);
    if (r->oauth != NULL) {
        gw_mcp_oauth_t *o = r->oauth;
        free(o->issuer);
        free_strv(o->audiences, o->n_audiences);
        free(o->jwks_uri);
        free(o->jwks_json);
        free(o->resource);
        free(o->resource_name);
        free_strv(o->scopes_supported, o->n_scopes_supported);
        free_strv(o->signing_algs_supported, o->n_signing_algs_supported);
        free(o->resource_documentation);
        free(o->resource_policy_uri);
        free(o);
    }
    if (r->api_key_auth != NULL) {
        gw_mcp_api_key_auth_t *a = r->api_key_auth;
        for (size_t i = 0; i < a->n_creds; i++) {
            free(a->creds[i].client_id);
            wipe_str(a->creds[i].key);
        }
        free(a->creds);
        free_strv(a->headers, a->n_headers);
        free_strv(a->params, a->n_params);
        free_strv(a->cookies, a->n_cookies);
        free(a->forward_client_id_header);
        free(a);
    }
    if (r->authorization != NULL) {
        gw_mcp_authorization_t *z = r->authorization;
        free_strv(z->required_scopes, z->n_required_scopes);
        for (size_t i = 0; i < z->n_tools; i++) {
            gw_mcp_tool_scopes_t *t = &z->tools[i];
            free(t->name);
            free(t->name_regex);
            if (t->name_re != NULL)
                pcre2_code_free(t->name_re);
            free_strv(t->scopes, t->n_scopes);
        }
        free(z->tools);
        free(z);
    }
}

bool gw_mcp_tool_allowed(const gw_mcp_backend_t *b, gw_str_t tool)
{
    if (b->n_include > 0) {
        for (size_t i = 0; i < b->n_include; i++)
            if (gw_str_eq(tool, gw_str_c(b->include[i])))
                return true;
        return false;
    }
    if (b->n_include_regex == 0)
        return true;
    pthread_once(&regex_once, regex_init);
    pcre2_match_data *md = thread_match_data();
    for (size_t i = 0; i < b->n_include_regex; i++) {
        if (b->include_re == NULL || b->include_re[i] == NULL)
            continue;
        int rc = pcre2_match(b->include_re[i], (PCRE2_SPTR)(tool.base ? tool.base : ""), tool.len, 0, 0, md, match_ctx);
        if (rc >= 0)
            return true;
    }
    return false;
}

bool gw_mcp_tool_rule_matches(const gw_mcp_tool_scopes_t *rule, gw_str_t tool)
{
    if (rule->name != NULL)
        return gw_str_eq(tool, gw_str_c(rule->name));
    if (rule->name_re == NULL)
        return true; /* never in a loaded snapshot (a bad pattern is refused); fail closed */
    pthread_once(&regex_once, regex_init);
    int rc = pcre2_match(rule->name_re, (PCRE2_SPTR)(tool.base ? tool.base : ""), tool.len, 0, 0, thread_match_data(),
                         match_ctx);
    /* Past the backtracking limits the rule applies: a pattern that cannot decide must not
     * lift the scopes it guards. */
    return rc != PCRE2_ERROR_NOMATCH;
}

static void free_rule(gw_route_rule_t *r)
{
    free(r->route_name);
    for (size_t i = 0; i < r->n_matches; i++)
        free_match(&r->matches[i]);
    free(r->matches);
    for (size_t i = 0; i < r->n_backends; i++)
        free_backend(&r->backends[i]);
    free(r->backends);
}

static void config_free(gw_config_t *c)
{
    free(c->description);
    for (size_t i = 0; i < c->n_rules; i++)
        free_rule(&c->rules[i]);
    free(c->rules);
    for (size_t i = 0; i < c->n_models; i++) {
        free(c->models[i].name);
        free(c->models[i].owned_by);
    }
    free(c->models);
    for (size_t i = 0; i < c->n_costs; i++) {
        free(c->costs[i].metadata_key);
        free(c->costs[i].cel);
    }
    free(c->costs);
    for (size_t i = 0; i < c->n_mcp_routes; i++)
        free_mcp_route(&c->mcp_routes[i]);
    free(c->mcp_routes);
    if (c->listen_tls_key_pem != NULL)
        explicit_bzero(c->listen_tls_key_pem, strlen(c->listen_tls_key_pem));
    free(c->listen_tls_key_pem);
    free(c->listen_tls_cert_pem);
    free(c);
}

gw_config_t *gw_config_ref(gw_config_t *c)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->refcount, 1, memory_order_relaxed);
    return c;
}

void gw_config_unref(gw_config_t *c)
{
    if (c == NULL)
        return;
    /* acq_rel: every reader's last access happens before the free on whichever thread drops last. */
    if (atomic_fetch_sub_explicit(&c->refcount, 1, memory_order_acq_rel) == 1)
        config_free(c);
}
