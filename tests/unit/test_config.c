/* Unit tests for the configuration snapshot: schema names, the route matcher (Exact byte
 * equality, regex anchored on both ends, rule order, ORed matches of ANDed headers), matching
 * from many threads on one snapshot, and reference counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "core/alloc.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- a hand-built snapshot ---- */

typedef struct {
    const char *name;
    const char *value;
    gw_match_type_t type;
} hspec_t;

static void add_match(gw_route_rule_t *r, const hspec_t *hs, size_t n)
{
    r->matches = gw_realloc(r->matches, (r->n_matches + 1) * sizeof(*r->matches));
    gw_route_match_t *m = &r->matches[r->n_matches++];
    m->headers = gw_calloc(n ? n : 1, sizeof(*m->headers));
    m->n_headers = n;
    for (size_t i = 0; i < n; i++) {
        m->headers[i].name = gw_strdup(hs[i].name);
        m->headers[i].value = gw_strdup(hs[i].value);
        m->headers[i].type = hs[i].type;
        if (hs[i].type == GW_MATCH_REGEX)
            assert_int_equal(gw_header_match_compile(&m->headers[i], NULL), GW_OK);
    }
}

static gw_route_rule_t *add_rule(gw_config_t *c, const char *route)
{
    c->rules = gw_realloc(c->rules, (c->n_rules + 1) * sizeof(*c->rules));
    gw_route_rule_t *r = &c->rules[c->n_rules++];
    memset(r, 0, sizeof(*r));
    r->route_name = gw_strdup(route);
    r->request_timeout_ms = 60000;
    r->backends = gw_calloc(1, sizeof(*r->backends));
    r->n_backends = 1;
    r->backends[0].name = gw_strdup(route);
    r->backends[0].auth.api_key = gw_strdup("sk-test"); /* freed (and wiped) by unref */
    r->backends[0].weight = 1;
    return r;
}

/* Rules, in order:
 *   0 exact:    x-ai-eg-model == gpt-4o
 *   1 regex:    x-ai-eg-model ~ claude-.*
 *   2 or-and:   (x-ai-eg-model == a AND x-tenant == t1) OR (x-ai-eg-model ~ b|bc)
 *   3 tenant:   x-tenant ~ .*          (any request that has the header, even empty)
 */
static gw_config_t *sample_config(void)
{
    gw_config_t *c = gw_config_new();
    gw_route_rule_t *r = add_rule(c, "default/exact");
    add_match(r, (hspec_t[]){{"x-ai-eg-model", "gpt-4o", GW_MATCH_EXACT}}, 1);
    r = add_rule(c, "default/regex");
    add_match(r, (hspec_t[]){{"x-ai-eg-model", "claude-.*", GW_MATCH_REGEX}}, 1);
    r = add_rule(c, "default/or-and");
    add_match(r, (hspec_t[]){{"x-ai-eg-model", "a", GW_MATCH_EXACT}, {"x-tenant", "t1", GW_MATCH_EXACT}}, 2);
    add_match(r, (hspec_t[]){{"x-ai-eg-model", "b|bc", GW_MATCH_REGEX}}, 1);
    r = add_rule(c, "default/tenant");
    add_match(r, (hspec_t[]){{"x-tenant", ".*", GW_MATCH_REGEX}}, 1);
    return c;
}

/* A request: model plus an optional tenant (NULL = header absent). Values are slices that are
 * not NUL-terminated, to catch a matcher that reads past the length. */
typedef struct {
    char model[64];
    size_t model_len;
    bool has_model;
    char tenant[64];
    size_t tenant_len;
    bool has_tenant;
} req_t;

static gw_str_t get_header(void *ud, gw_str_t name)
{
    req_t *r = ud;
    if (gw_str_eq_lit(name, "x-ai-eg-model"))
        return r->has_model ? gw_str(r->model, r->model_len) : GW_STR_NULL;
    if (gw_str_eq_lit(name, "x-tenant"))
        return r->has_tenant ? gw_str(r->tenant, r->tenant_len) : GW_STR_NULL;
    return GW_STR_NULL;
}

static void set_field(char *dst, size_t *len, bool *has, const char *v)
{
    *has = v != NULL;
    *len = 0;
    if (v != NULL) {
        *len = strlen(v);
        memcpy(dst, v, *len);
        dst[*len] = 'Z'; /* a trailing byte that must not be part of the value */
    }
}

static req_t req(const char *model, const char *tenant)
{
    req_t r;
    memset(&r, 0, sizeof(r));
    set_field(r.model, &r.model_len, &r.has_model, model);
    set_field(r.tenant, &r.tenant_len, &r.has_tenant, tenant);
    return r;
}

static const char *route_of(const gw_config_t *c, const char *model, const char *tenant)
{
    req_t r = req(model, tenant);
    const gw_route_rule_t *rule = gw_config_match(c, get_header, &r);
    return rule ? rule->route_name : "none";
}

static void test_schema_names(void **state)
{
    (void)state;
    static const char *const names[] = {"OpenAI",      "AzureOpenAI", "Anthropic",    "AWSBedrock",
                                        "AWSAnthropic", "GCPVertexAI", "GCPAnthropic", "Cohere"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(names); i++) {
        gw_schema_t s;
        assert_true(gw_schema_parse(names[i], &s));
        assert_int_equal(s, (gw_schema_t)i);
        assert_string_equal(gw_schema_name(s), names[i]);
    }
    gw_schema_t s;
    assert_false(gw_schema_parse("openai", &s)); /* exact spelling, as the CRD enum */
    assert_false(gw_schema_parse("", &s));
    assert_string_equal(gw_schema_name((gw_schema_t)99), "unknown");
}

static void test_exact_is_byte_equality(void **state)
{
    (void)state;
    gw_config_t *c = sample_config();
    assert_string_equal(route_of(c, "gpt-4o", NULL), "default/exact");
    assert_string_equal(route_of(c, "GPT-4o", NULL), "none");     /* case matters in values */
    assert_string_equal(route_of(c, "gpt-4o-mini", NULL), "none"); /* no prefix match */
    assert_string_equal(route_of(c, "gpt-4", NULL), "none");
    assert_string_equal(route_of(c, "gpt-4o ", NULL), "none");
    /* A value with an embedded NUL is not equal to its prefix. */
    req_t r = req("gpt-4o", NULL);
    r.model[6] = '\0';
    r.model_len = 7;
    assert_null(gw_config_match(c, get_header, &r));
    gw_config_unref(c);
}

static void test_regex_is_anchored(void **state)
{
    (void)state;
    gw_config_t *c = sample_config();
    assert_string_equal(route_of(c, "claude-3-5-sonnet", NULL), "default/regex");
    assert_string_equal(route_of(c, "claude-", NULL), "default/regex");
    assert_string_equal(route_of(c, "my-claude-3", NULL), "none"); /* start anchored */
    assert_string_equal(route_of(c, "claude", NULL), "none");
    /* End anchoring with backtracking: "b|bc" must accept "bc" although "b" matches first. */
    assert_string_equal(route_of(c, "b", NULL), "default/or-and");
    assert_string_equal(route_of(c, "bc", NULL), "default/or-and");
    assert_string_equal(route_of(c, "bcd", NULL), "none");
    assert_string_equal(route_of(c, "xb", NULL), "none");
    gw_config_unref(c);

    /* A partial-looking pattern still has to cover the whole value. */
    c = gw_config_new();
    gw_route_rule_t *r = add_rule(c, "default/gpt");
    add_match(r, (hspec_t[]){{"x-ai-eg-model", "gpt", GW_MATCH_REGEX}}, 1);
    assert_string_equal(route_of(c, "gpt", NULL), "default/gpt");
    assert_string_equal(route_of(c, "gpt-4o", NULL), "none");
    assert_string_equal(route_of(c, "xgpt", NULL), "none");
    gw_config_unref(c);
}

static void test_and_or_and_order(void **state)
{
    (void)state;
    gw_config_t *c = sample_config();
    /* First match: all headers of one match (AND). */
    assert_string_equal(route_of(c, "a", "t1"), "default/or-and");
    /* "a" alone fails the AND; the tenant header then matches rule 3. */
    assert_string_equal(route_of(c, "a", "t2"), "default/tenant");
    assert_string_equal(route_of(c, "a", NULL), "none");
    /* Rules in order: gpt-4o with a tenant still goes to rule 0. */
    assert_string_equal(route_of(c, "gpt-4o", "t1"), "default/exact");
    gw_config_unref(c);
}

static void test_missing_vs_empty_header(void **state)
{
    (void)state;
    gw_config_t *c = sample_config();
    /* ".*" needs the header to be present, and accepts it empty. */
    assert_string_equal(route_of(c, "zzz", NULL), "none");
    assert_string_equal(route_of(c, "zzz", ""), "default/tenant");
    /* No model at all: only header-less rules could match. */
    assert_string_equal(route_of(c, NULL, NULL), "none");
    gw_config_unref(c);

    /* A rule without matches (or a match without headers) takes every request. */
    c = gw_config_new();
    add_rule(c, "default/all");
    assert_string_equal(route_of(c, NULL, NULL), "default/all");
    gw_config_unref(c);
    c = gw_config_new();
    gw_route_rule_t *r = add_rule(c, "default/empty-match");
    add_match(r, NULL, 0);
    assert_string_equal(route_of(c, "x", NULL), "default/empty-match");
    gw_config_unref(c);

    assert_null(gw_config_match(NULL, get_header, NULL));
}

static void test_bad_regex_reports(void **state)
{
    (void)state;
    gw_header_match_t m = {.name = "x-ai-eg-model", .value = "gpt-(4o", .type = GW_MATCH_REGEX};
    gw_buf_t err;
    gw_buf_init(&err, 1024);
    assert_int_equal(gw_header_match_compile(&m, &err), GW_EINVAL);
    assert_null(m.regex);
    assert_non_null(strstr(gw_buf_cstr(&err), "missing closing parenthesis"));
    assert_non_null(strstr(gw_buf_cstr(&err), "offset 7"));
    gw_buf_free(&err);
}

static void test_regex_limits_and_bad_utf8(void **state)
{
    (void)state;
    gw_config_t *c = gw_config_new();
    gw_route_rule_t *r = add_rule(c, "default/evil");
    add_match(r, (hspec_t[]){{"x-ai-eg-model", "(a+)+$", GW_MATCH_REGEX}}, 1);
    r = add_rule(c, "default/any");
    add_match(r, (hspec_t[]){{"x-ai-eg-model", ".*", GW_MATCH_REGEX}}, 1);
    /* Catastrophic backtracking is cut by the match limit: the request falls through. */
    char evil[40];
    memset(evil, 'a', sizeof(evil) - 2);
    evil[sizeof(evil) - 2] = 'b';
    evil[sizeof(evil) - 1] = '\0';
    assert_string_equal(route_of(c, evil, NULL), "default/any");
    assert_string_equal(route_of(c, "aaaa", NULL), "default/evil");
    /* Invalid UTF-8 in a header is not an error, just not matched by ".". */
    assert_string_equal(route_of(c, "\xff\xfe", NULL), "none");
    assert_string_equal(route_of(c, "h\xc3\xa9llo", NULL), "default/any");
    gw_config_unref(c);
}

static void test_regex_uses_jit_when_available(void **state)
{
    (void)state;
    uint32_t jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    gw_header_match_t m = {.name = "x-ai-eg-model", .value = "claude-.*", .type = GW_MATCH_REGEX};
    assert_int_equal(gw_header_match_compile(&m, NULL), GW_OK);
    size_t jit_size = 0;
    assert_int_equal(pcre2_pattern_info(m.regex, PCRE2_INFO_JITSIZE, &jit_size), 0);
    if (jit)
        assert_true(jit_size > 0); /* anchored at both ends and still JIT-compiled */
    else
        printf("note: this PCRE2 has no JIT; the interpreter is used\n");
    pcre2_code_free(m.regex);
}

/* ---- several workers on one snapshot ---- */

typedef struct {
    gw_config_t *c;
    int id;
    int failures;
} thread_arg_t;

static void *matcher_thread(void *p)
{
    thread_arg_t *a = p;
    static const struct {
        const char *model, *tenant, *want;
    } cases[] = {
        {"gpt-4o", NULL, "default/exact"},      {"claude-3-opus", NULL, "default/regex"},
        {"bc", NULL, "default/or-and"},         {"a", "t1", "default/or-and"},
        {"a", "t9", "default/tenant"},          {"my-claude", NULL, "none"},
        {"bcd", "", "default/tenant"},          {"gpt-4o-mini", NULL, "none"},
    };
    for (int i = 0; i < 20000; i++) {
        size_t k = (size_t)(i + a->id) % GW_ARRAY_SIZE(cases);
        gw_config_t *mine = gw_config_ref(a->c); /* what a request does */
        if (strcmp(route_of(mine, cases[k].model, cases[k].tenant), cases[k].want) != 0)
            a->failures++;
        gw_config_unref(mine);
    }
    return NULL;
}

static void test_concurrent_matching(void **state)
{
    (void)state;
    gw_config_t *c = sample_config();
    enum { N = 8 };
    pthread_t th[N];
    thread_arg_t args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (thread_arg_t){.c = c, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, matcher_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(atomic_load(&c->refcount), 1);
    gw_config_unref(c);
}

static void *unref_thread(void *p)
{
    gw_config_unref(p);
    return NULL;
}

static void test_refcount(void **state)
{
    (void)state;
    gw_config_t *c = sample_config();
    assert_int_equal(atomic_load(&c->refcount), 1);
    assert_ptr_equal(gw_config_ref(c), c);
    assert_int_equal(atomic_load(&c->refcount), 2);
    gw_config_unref(c);
    assert_int_equal(atomic_load(&c->refcount), 1);
    /* Still usable after dropping the extra reference. */
    assert_string_equal(route_of(c, "gpt-4o", NULL), "default/exact");

    /* The last reference may be dropped on any thread; ASan sees a leak or a double free. */
    enum { N = 16 };
    pthread_t th[N];
    for (int i = 0; i < N - 1; i++)
        gw_config_ref(c);
    assert_int_equal(atomic_load(&c->refcount), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, unref_thread, c), 0);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);

    assert_null(gw_config_ref(NULL));
    gw_config_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_names),
        cmocka_unit_test(test_exact_is_byte_equality),
        cmocka_unit_test(test_regex_is_anchored),
        cmocka_unit_test(test_and_or_and_order),
        cmocka_unit_test(test_missing_vs_empty_header),
        cmocka_unit_test(test_bad_regex_reports),
        cmocka_unit_test(test_regex_limits_and_bad_utf8),
        cmocka_unit_test(test_regex_uses_jit_when_available),
        cmocka_unit_test(test_concurrent_matching),
        cmocka_unit_test(test_refcount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
