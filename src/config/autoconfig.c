/* Auto-configuration from the environment, as the reference's `aigw run` without a file: one
 * rule sending every model (x-ai-eg-model ".*") to one provider chosen from the provider
 * variables. aigw extension: with none set, everything goes to a local Ollama, keyless. */
#include "config/config.h"

#include "core/alloc.h"

#include <stdlib.h>
#include <strings.h>

#define AUTO_ROUTE "aigw-run"
#define AUTO_NS "default"
#define AUTO_LISTEN_PORT 1975
#define AUTO_TIMEOUT_MS 120000
#define AUTO_MAX_BODY ((size_t)50 << 20) /* the template's ClientTrafficPolicy bufferLimit: 50Mi */
#define OLLAMA_URL "http://127.0.0.1:11434/v1"

typedef struct {
    bool tls;
    char *host;    /* without IPv6 brackets */
    uint16_t port;
    char *prefix;  /* path without leading and trailing slashes */
} url_t;

static void url_free(url_t *u)
{
    free(u->host);
    free(u->prefix);
}

/* The URL in an error message, unless it may carry credentials (user:password@host). */
static const char *printable_url(const char *url)
{
    return strchr(url, '@') != NULL ? "(a URL with user information)" : url;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '%';
}

/* Accepts http(s)://host[:port][/path]; what the reference's net/url would take and we can use. */
static int parse_url(const char *var, const char *url, url_t *out, gw_buf_t *errors)
{
    const char *shown = printable_url(url);
    const char *p = url;
    memset(out, 0, sizeof(*out));
    if (strncasecmp(p, "https://", 8) == 0) {
        out->tls = true;
        p += 8;
    } else if (strncasecmp(p, "http://", 7) == 0) {
        p += 7;
    } else {
        gw_buf_appendf(errors, "%s=%s: not an http:// or https:// URL\n", var, shown);
        return GW_EINVAL;
    }
    const char *auth_end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(auth_end - p)) != NULL) {
        gw_buf_appendf(errors, "%s: user information in the URL is not supported; pass the key in its own variable\n",
                       var);
        return GW_EINVAL;
    }
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end > auth_end) {
            gw_buf_appendf(errors, "%s=%s: unterminated IPv6 address\n", var, shown);
            return GW_EINVAL;
        }
        for (const char *q = host; q < host_end; q++) {
            if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F') || *q == ':' ||
                  *q == '.')) {
                gw_buf_appendf(errors, "%s=%s: bad IPv6 address\n", var, shown);
                return GW_EINVAL;
            }
        }
        p = host_end + 1;
    } else {
        while (p < auth_end && host_char(*p))
            p++;
        host_end = p;
    }
    if (host_end == host) {
        gw_buf_appendf(errors, "%s=%s: no host\n", var, shown);
        return GW_EINVAL;
    }
    uint32_t port = out->tls ? 443 : 80;
    if (p < auth_end && *p == ':') {
        p++;
        const char *digits = p;
        port = 0;
        while (p < auth_end && *p >= '0' && *p <= '9' && port <= 65535)
            port = port * 10 + (uint32_t)(*p++ - '0');
        if (p == digits) {
            /* "host:" with an empty port means the default, as in net/url. */
            port = out->tls ? 443 : 80;
        } else if (port == 0 || port > 65535 || (p < auth_end && *p >= '0' && *p <= '9')) {
            gw_buf_appendf(errors, "%s=%s: port out of range\n", var, shown);
            return GW_EINVAL;
        }
    }
    if (p != auth_end) {
        gw_buf_appendf(errors, "%s=%s: bad character in the host or port\n", var, shown);
        return GW_EINVAL;
    }
    if (*p == '?' || *p == '#' || strpbrk(p, "?#") != NULL) {
        gw_buf_appendf(errors, "%s=%s: a query or fragment cannot be part of a base URL\n", var, shown);
        return GW_EINVAL;
    }
    for (const char *q = p; *q; q++) {
        if ((unsigned char)*q <= ' ' || *q == 0x7f) {
            gw_buf_appendf(errors, "%s: the URL contains a space or control character\n", var);
            return GW_EINVAL;
        }
    }
    /* The path becomes the schema version prefix: "/v1" -> "v1", "/" or "" -> "". */
    while (*p == '/')
        p++;
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    out->host = gw_strndup(host, (size_t)(host_end - host));
    out->port = (uint16_t)port;
    out->prefix = gw_strndup(p, plen);
    return GW_OK;
}

static char *strdup_cat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *p = gw_malloc(la + lb + lc + 1);
    memcpy(p, a, la);
    memcpy(p + la, b, lb);
    memcpy(p + la + lb, c, lc + 1);
    return p;
}

static const char *env(const char *(*getenv_fn)(const char *), const char *name)
{
    const char *v = getenv_fn != NULL ? getenv_fn(name) : getenv(name);
    return (v != NULL && *v != '\0') ? v : NULL; /* empty counts as unset, as in the reference */
}

static void add_set_header(gw_header_mutation_t *hm, const char *name, const char *value)
{
    hm->set = gw_realloc(hm->set, (hm->n_set + 1) * sizeof(*hm->set));
    hm->set[hm->n_set].name = gw_strdup(name);
    hm->set[hm->n_set].value = gw_strdup(value);
    hm->n_set++;
}

static void add_cost(gw_config_t *c, const char *key, gw_cost_type_t type)
{
    c->costs = gw_realloc(c->costs, (c->n_costs + 1) * sizeof(*c->costs));
    c->costs[c->n_costs] = (gw_llm_cost_t){.metadata_key = gw_strdup(key), .type = type};
    c->n_costs++;
}

gw_config_t *gw_config_from_env(const char *(*getenv_fn)(const char *name), gw_buf_t *errors)
{
    const char *openai_key = env(getenv_fn, "OPENAI_API_KEY");
    const char *openai_url = env(getenv_fn, "OPENAI_BASE_URL");
    const char *azure_key = env(getenv_fn, "AZURE_OPENAI_API_KEY");
    const char *azure_endpoint = env(getenv_fn, "AZURE_OPENAI_ENDPOINT");
    const char *api_version = env(getenv_fn, "OPENAI_API_VERSION");
    const char *anthropic_key = env(getenv_fn, "ANTHROPIC_API_KEY");
    const char *anthropic_url = env(getenv_fn, "ANTHROPIC_BASE_URL");
    const char *org = env(getenv_fn, "OPENAI_ORG_ID");
    const char *project = env(getenv_fn, "OPENAI_PROJECT_ID");
    gw_config_t *c = NULL;
    url_t u = {0};
    gw_buf_t desc, scratch;
    gw_buf_init(&desc, 1024);
    gw_buf_init(&scratch, 4096);
    if (errors == NULL)
        errors = &scratch;

    /* Keys and the organisation/project ids become header values: no line breaks or controls. */
    static const char *const header_vars[] = {"OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY",
                                              "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_API_VERSION"};
    bool bad_value = false;
    for (size_t i = 0; i < GW_ARRAY_SIZE(header_vars); i++) {
        const char *v = env(getenv_fn, header_vars[i]);
        for (const char *q = v; q != NULL && *q; q++) {
            if (((unsigned char)*q < ' ' && *q != '\t') || *q == 0x7f) {
                gw_buf_appendf(errors, "%s contains a line break or control character\n", header_vars[i]);
                bad_value = true;
                break;
            }
        }
    }
    if (bad_value)
        goto fail;

    gw_schema_t schema;
    gw_auth_type_t auth;
    const char *key = NULL, *url, *service;
    bool org_headers = true;
    if (azure_key != NULL) {
        /* Azure wins over OpenAI; both of its companions are required. */
        bool bad = false;
        if (azure_endpoint == NULL) {
            gw_buf_appendf(errors, "AZURE_OPENAI_API_KEY is set but AZURE_OPENAI_ENDPOINT is not (e.g. "
                                   "https://my-resource.openai.azure.com)\n");
            bad = true;
        }
        if (api_version == NULL) {
            gw_buf_appendf(errors, "AZURE_OPENAI_API_KEY is set but OPENAI_API_VERSION is not (e.g. 2024-02-15-preview)\n");
            bad = true;
        }
        if (bad)
            goto fail;
        schema = GW_SCHEMA_AZURE_OPENAI;
        auth = GW_AUTH_AZURE_API_KEY;
        key = azure_key;
        url = azure_endpoint;
        service = "openai";
        if (parse_url("AZURE_OPENAI_ENDPOINT", url, &u, errors) != GW_OK)
            goto fail;
        gw_buf_appendf(&desc, "auto-configured from AZURE_OPENAI_API_KEY: every model goes to Azure OpenAI at %s "
                              "(api-version %s)",
                       url, api_version);
    } else if (openai_key != NULL || (openai_url != NULL && anthropic_key == NULL)) {
        schema = GW_SCHEMA_OPENAI;
        auth = openai_key != NULL ? GW_AUTH_API_KEY : GW_AUTH_NONE;
        key = openai_key;
        url = openai_url != NULL ? openai_url : "https://api.openai.com/v1";
        service = "openai";
        if (parse_url("OPENAI_BASE_URL", url, &u, errors) != GW_OK)
            goto fail;
        if (openai_key != NULL)
            gw_buf_appendf(&desc, "auto-configured from OPENAI_API_KEY: every model goes to %s", url);
        else
            /* The reference requires the key; local servers (vLLM, Ollama, llama.cpp) need none. */
            gw_buf_appendf(&desc, "auto-configured from OPENAI_BASE_URL without OPENAI_API_KEY: every model goes "
                                  "to the OpenAI-compatible server at %s, with no authentication",
                           url);
    } else if (anthropic_key != NULL) {
        schema = GW_SCHEMA_ANTHROPIC;
        auth = GW_AUTH_ANTHROPIC_API_KEY;
        key = anthropic_key;
        url = anthropic_url != NULL ? anthropic_url : "https://api.anthropic.com/v1";
        service = "anthropic";
        org_headers = false;
        if (parse_url("ANTHROPIC_BASE_URL", url, &u, errors) != GW_OK)
            goto fail;
        gw_buf_appendf(&desc, "auto-configured from ANTHROPIC_API_KEY: every model goes to Anthropic at %s", url);
        if (openai_url != NULL)
            gw_buf_appendf(&desc, " (OPENAI_BASE_URL ignored without OPENAI_API_KEY)");
    } else {
        schema = GW_SCHEMA_OPENAI;
        auth = GW_AUTH_NONE;
        url = OLLAMA_URL;
        service = "openai";
        org_headers = false; /* not OpenAI itself */
        if (parse_url("default URL", url, &u, errors) != GW_OK)
            goto fail;
        gw_buf_appendf(&desc, "no OPENAI_API_KEY, AZURE_OPENAI_API_KEY or ANTHROPIC_API_KEY set: every model goes to "
                              "the OpenAI-compatible server at %s (Ollama)",
                       url);
    }

    c = gw_config_new();
    c->description = gw_strndup(desc.data ? desc.data : "", desc.len);
    c->listen_port = AUTO_LISTEN_PORT;
    c->max_request_body = AUTO_MAX_BODY;
    add_cost(c, "llm_input_token", GW_COST_INPUT);
    add_cost(c, "llm_output_token", GW_COST_OUTPUT);

    c->rules = gw_calloc(1, sizeof(*c->rules));
    c->n_rules = 1;
    gw_route_rule_t *rule = &c->rules[0];
    rule->route_name = gw_strdup(AUTO_NS "/" AUTO_ROUTE);
    rule->request_timeout_ms = AUTO_TIMEOUT_MS;
    rule->matches = gw_calloc(1, sizeof(*rule->matches));
    rule->n_matches = 1;
    rule->matches[0].headers = gw_calloc(1, sizeof(gw_header_match_t));
    rule->matches[0].n_headers = 1;
    gw_header_match_t *hm = &rule->matches[0].headers[0];
    hm->name = gw_strdup("x-ai-eg-model");
    hm->value = gw_strdup(".*");
    hm->type = GW_MATCH_REGEX;
    if (gw_header_match_compile(hm, errors) != GW_OK)
        goto fail;

    rule->backends = gw_calloc(1, sizeof(*rule->backends));
    rule->n_backends = 1;
    gw_backend_t *b = &rule->backends[0];
    b->name = strdup_cat3(AUTO_NS "/", service, "/route/" AUTO_ROUTE "/rule/0/ref/0");
    b->service_name = strdup_cat3(AUTO_NS "/", service, "");
    b->schema = schema;
    b->schema_version = gw_strdup(schema == GW_SCHEMA_AZURE_OPENAI ? api_version : u.prefix);
    b->host = u.host;
    b->port = u.port;
    b->tls = u.tls;
    u.host = NULL;
    b->auth.type = auth;
    if (key != NULL)
        b->auth.api_key = gw_strdup(key);
    if (org_headers && org != NULL)
        add_set_header(&b->header_mutation, "openai-organization", org);
    if (org_headers && project != NULL)
        add_set_header(&b->header_mutation, "openai-project", project);
    b->weight = 1;
    b->priority = 0;
    url_free(&u);
    gw_buf_free(&desc);
    gw_buf_free(&scratch);
    return c;

fail:
    url_free(&u);
    gw_buf_free(&desc);
    gw_buf_free(&scratch);
    gw_config_unref(c);
    return NULL;
}
