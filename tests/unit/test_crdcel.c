/* The reference's CRD validation verdicts (tests/crdcel of Envoy AI Gateway v0.4, read in place
 * from ../shared/testdata): every resource file is checked alone, as the API server would
 * (gw_config_check_buffer with GW_CHECK_RESOURCES_ONLY). A valid one must load; an invalid one
 * must be refused with a message that carries the key words of the reference's reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "config/config.h"
#include "config/yaml_dom.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            b = realloc(b, cap *= 2);
    }
    fclose(f);
    *len = n;
    return b;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return n == 0;
}

/* ---- key words of a reason, in the API server's usual shapes ---- */

#define MAX_KW 4

typedef struct {
    char kw[MAX_KW][512];
    int n;
} keywords_t;

static void add_kw(keywords_t *k, const char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == '.' || s[len - 1] == ' '))
        len--; /* "must be specified." and "must be specified" are the same reason */
    if (k->n < MAX_KW && len > 0 && len < sizeof(k->kw[0])) {
        memcpy(k->kw[k->n], s, len);
        k->kw[k->n][len] = '\0';
        k->n++;
    }
}

/* `path: Invalid value: "object": message` -> path, message;
 * `path: Unsupported value: "X": supported values: ...` -> path, "X", "supported values";
 * `path in body should be at least N chars long` -> path, "at least N char";
 * `path: Required value` -> path, "required"; `path: Too many: N: must have at most M items` ->
 * path, "at most M items"; `path: Duplicate value: ...` -> path, "Duplicate value";
 * anything else: the whole reason. */
static keywords_t keywords_of(const char *reason)
{
    keywords_t k = {.n = 0};
    const char *sp = strchr(reason, ' ');
    const char *colon = strstr(reason, ": ");
    const char *inbody = strstr(reason, " in body should be at least ");
    const char *anybody = strstr(reason, " in body ");
    if (colon != NULL && (sp == NULL || colon < sp)) {
        const char *rest = colon + 2;
        size_t plen = (size_t)(colon - reason);
        if (strncmp(rest, "Invalid value: \"", 16) == 0) {
            const char *q = strstr(rest + 16, "\": ");
            if (q != NULL) {
                add_kw(&k, reason, plen);
                add_kw(&k, q + 3, strlen(q + 3));
                return k;
            }
        } else if (strncmp(rest, "Unsupported value: \"", 20) == 0) {
            const char *q = strchr(rest + 20, '"');
            if (q != NULL) {
                add_kw(&k, reason, plen);
                add_kw(&k, rest + 19, (size_t)(q - (rest + 19)) + 1);
                add_kw(&k, "supported values", 16);
                return k;
            }
        } else if (strncmp(rest, "Required value", 14) == 0) {
            add_kw(&k, reason, plen);
            add_kw(&k, "required", 8);
            return k;
        } else if (strncmp(rest, "Too many: ", 10) == 0 && strstr(rest, "must have at most ") != NULL) {
            add_kw(&k, reason, plen);
            const char *q = strstr(rest, "at most ");
            add_kw(&k, q, strlen(q));
            return k;
        } else if (strncmp(rest, "Too long", 8) == 0) {
            add_kw(&k, reason, plen);
            add_kw(&k, "Too long", 8);
            return k;
        } else if (strncmp(rest, "Duplicate value", 15) == 0) {
            add_kw(&k, reason, plen);
            add_kw(&k, "Duplicate value", 15);
            return k;
        }
    } else if (inbody != NULL && (sp == NULL || inbody == sp)) {
        add_kw(&k, reason, (size_t)(inbody - reason));
        const char *n = inbody + strlen(" in body should be at least ");
        char w[64];
        int d = 0;
        while (isdigit((unsigned char)n[d]) && d < 10)
            d++;
        snprintf(w, sizeof(w), "at least %.*s char", d, n);
        add_kw(&k, w, strlen(w));
        return k;
    } else if (anybody != NULL && (sp == NULL || anybody == sp)) {
        /* `path in body must be of type uri: "x"`, `path in body should have at least 1 items` */
        add_kw(&k, reason, (size_t)(anybody - reason));
        add_kw(&k, anybody + 1, strlen(anybody + 1));
        return k;
    }
    add_kw(&k, reason, strlen(reason));
    return k;
}

static void test_keywords_of(void **state)
{
    (void)state;
    keywords_t k = keywords_of("spec.rules[0]: Invalid value: \"object\": only one InferencePool backend is allowed per rule");
    assert_int_equal(k.n, 2);
    assert_string_equal(k.kw[0], "spec.rules[0]");
    assert_string_equal(k.kw[1], "only one InferencePool backend is allowed per rule");
    k = keywords_of("spec.securityPolicy.oauth.jwks: Invalid value: \"object\": either remoteJWKS or localJWKS must be "
                    "specified.");
    assert_string_equal(k.kw[1], "either remoteJWKS or localJWKS must be specified");
    k = keywords_of("spec.type: Unsupported value: \"UnknownType\": supported values: \"APIKey\"");
    assert_int_equal(k.n, 3);
    assert_string_equal(k.kw[1], "\"UnknownType\"");
    k = keywords_of("spec.azureCredentials.clientID in body should be at least 1 chars long");
    assert_string_equal(k.kw[0], "spec.azureCredentials.clientID");
    assert_string_equal(k.kw[1], "at least 1 char");
    k = keywords_of("spec.a.issuer in body must be of type uri: \"x y\"");
    assert_string_equal(k.kw[0], "spec.a.issuer");
    assert_string_equal(k.kw[1], "in body must be of type uri: \"x y\"");
    k = keywords_of("spec.path: Too long: may not be longer than 1024");
    assert_string_equal(k.kw[1], "Too long");
    k = keywords_of("When type is APIKey, only apiKey field should be set");
    assert_int_equal(k.n, 1);
    assert_string_equal(k.kw[0], "When type is APIKey, only apiKey field should be set");
}

/* ---- the verdicts ---- */

static void test_crdcel_verdicts(void **state)
{
    (void)state;
    const char *td = tu_testdata();
    char base[PATH_MAX + 64], path[PATH_MAX + 256];
    if (td != NULL)
        snprintf(base, sizeof(base), "%s/envoy-ai-gateway/tests/crdcel", td);
    struct stat st;
    if (td == NULL || stat(base, &st) != 0) {
        printf("skipped: ../shared/testdata not found\n");
        skip();
    }
    snprintf(path, sizeof(path), "%s/expected.yaml", base);
    size_t len;
    char *text = read_all(path, &len);
    assert_non_null(text);
    gw_yaml_error_t yerr;
    gw_yaml_stream_t *ys = gw_yaml_parse(text, len, NULL, &yerr);
    if (ys == NULL)
        fail_msg("expected.yaml: %u:%u: %s", yerr.line, yerr.col, yerr.msg);
    const gw_yaml_node_t *root = gw_yaml_doc(ys, 0);
    assert_non_null(root);
    assert_int_equal(root->kind, GW_YAML_MAP);

    int n_valid = 0, n_invalid = 0, failures = 0, n_cases = 0, n_unlisted = 0;
    for (size_t g = 0; g < root->n_pairs; g++) {
        const char *group = root->pairs[g].key->str;
        const gw_yaml_node_t *cases = root->pairs[g].value;
        assert_int_equal(cases->kind, GW_YAML_MAP);
        for (size_t i = 0; i < cases->n_pairs; i++) {
            const char *file = cases->pairs[i].key->str;
            const gw_yaml_node_t *c = cases->pairs[i].value;
            const char *valid = gw_yaml_str(gw_yaml_get(c, "valid"));
            const char *reason = gw_yaml_str(gw_yaml_get(c, "reason"));
            assert_non_null(valid);
            bool want_valid = strcmp(valid, "true") == 0;
            n_cases++;
            snprintf(path, sizeof(path), "%s/testdata/%s/%s", base, group, file);
            size_t flen;
            char *bytes = read_all(path, &flen);
            if (bytes == NULL) {
                printf("  MISSING %s/%s\n", group, file);
                failures++;
                continue;
            }
            gw_buf_t errors, notices;
            gw_buf_init(&errors, 1 << 16);
            gw_buf_init(&notices, 1 << 16);
            int rc = gw_config_check_buffer(file, bytes, flen, GW_CHECK_RESOURCES_ONLY, &errors, &notices);
            const char *e = gw_buf_cstr(&errors);
            if (want_valid) {
                if (rc != GW_OK || errors.len != 0) {
                    printf("  FAIL    %s/%s: valid for the reference, refused:\n%s", group, file, e);
                    failures++;
                } else {
                    printf("  valid   %s/%s\n", group, file);
                    n_valid++;
                }
            } else {
                keywords_t k = keywords_of(reason ? reason : "");
                bool all = rc != GW_OK && errors.len > 0;
                for (int j = 0; all && j < k.n; j++)
                    all = contains_ci(e, k.kw[j]);
                if (!all) {
                    printf("  FAIL    %s/%s: want refused with \"%s\"; got rc %d:\n%s", group, file, reason, rc, e);
                    failures++;
                } else {
                    const char *first = strchr(e, ' ');
                    printf("  refused %s/%s:%.*s\n", group, file, (int)(strcspn(first ? first : e, "\n")),
                           first ? first : e);
                    n_invalid++;
                }
            }
            gw_buf_free(&errors);
            gw_buf_free(&notices);
            free(bytes);
        }
        /* Files the table does not list: shown, not judged. */
        snprintf(path, sizeof(path), "%s/testdata/%s", base, group);
        DIR *d = opendir(path);
        struct dirent *de;
        while (d != NULL && (de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' || gw_yaml_get(cases, de->d_name) != NULL)
                continue;
            n_unlisted++;
            printf("  (not in expected.yaml, not judged: %s/%s)\n", group, de->d_name);
        }
        if (d != NULL)
            closedir(d);
    }
    printf("crdcel: %d cases: %d valid loaded, %d invalid refused with the reference's reason, %d failed; %d files "
           "not listed\n",
           n_cases, n_valid, n_invalid, failures, n_unlisted);
    gw_yaml_stream_free(ys);
    free(text);
    assert_int_equal(failures, 0);
    assert_true(n_cases > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keywords_of),
        cmocka_unit_test(test_crdcel_verdicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
