/* Unit tests for the YAML loader's resources beyond routing basics: the HTTPS listener from a
 * kubernetes.io/tls Secret, BackendTLSPolicy CAs from ConfigMaps and Secrets, BackendTrafficPolicy
 * (retry, passive health, timeout, precedence), ReferenceGrant, MCPRoute, the CRD's CEL rules,
 * notices for what is ignored, the resources-only check and `aigw validate`. Every error is
 * checked as "file:line:col: Kind ns/name: message" at the offending node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"
#include "core/log.h"

#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- helpers ---- */

static void pos_of(const char *text, const char *needle, int *line, int *col)
{
    const char *p = strstr(text, needle);
    if (p == NULL)
        fail_msg("needle %s not in text", needle);
    *line = 1;
    const char *bol = text;
    for (const char *q = text; q < p; q++)
        if (*q == '\n') {
            (*line)++;
            bol = q + 1;
        }
    *col = (int)(p - bol) + 1;
}

static void assert_line(const char *out, const char *text, const char *needle, const char *rest)
{
    int line, col;
    pos_of(text, needle, &line, &col);
    char want[1024];
    snprintf(want, sizeof(want), "mem:%d:%d: %s\n", line, col, rest);
    if (strstr(out, want) == NULL) {
        printf("missing line:\n  %s-- got:\n%s", want, out); /* cmocka truncates long messages */
        fail();
    }
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Loads text; returns the snapshot (NULL when refused) and leaves errors/notices in the buffers. */
static gw_config_t *load(const char *text, gw_buf_t *errors, gw_buf_t *notices)
{
    gw_buf_reset(errors);
    if (notices != NULL)
        gw_buf_reset(notices);
    gw_config_t *c = NULL;
    /* The same input through both entry points: the snapshot from one, the notices from the other. */
    c = gw_config_load_buffer("mem", text, strlen(text), errors);
    if (notices != NULL) {
        gw_buf_t e2;
        gw_buf_init(&e2, 1 << 16);
        int rc = gw_config_check_buffer("mem", text, strlen(text), 0, &e2, notices);
        assert_int_equal(rc == GW_OK, c != NULL);
        gw_buf_free(&e2);
    }
    return c;
}

static gw_config_t *load_ok(const char *text)
{
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    gw_config_t *c = load(text, &errors, NULL);
    if (c == NULL)
        fail_msg("refused:\n%s", gw_buf_cstr(&errors));
    gw_buf_free(&errors);
    return c;
}

/* A route "r" with one rule to AIServiceBackend "svc" -> Backend "be" (127.0.0.1:9). */
#define ROUTE_AND_BACKEND                                                                                  \
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIGatewayRoute\nmetadata: {name: r}\n"           \
    "spec:\n  rules:\n    - matches: [{headers: [{name: x-ai-eg-model, value: m}]}]\n"                      \
    "      backendRefs: [{name: svc}]\n"                                                                  \
    "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIServiceBackend\nmetadata: {name: svc}\n"  \
    "spec: {schema: {name: OpenAI}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n" \
    "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: be}\n"              \
    "spec: {endpoints: [{ip: {address: 127.0.0.1, port: 9}}]}\n"

#define GATEWAY_HTTP                                                                                   \
    "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"            \
    "spec:\n  gatewayClassName: gc\n  listeners: [{name: http, protocol: HTTP, port: 8080}]\n"

/* ---- a self-signed certificate made here, never stored ---- */

typedef struct {
    char *cert_pem, *key_pem, *cert_b64, *key_b64;
} cert_t;

static char *pem_of(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static char *b64_of(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

static cert_t make_cert(const char *cn)
{
    cert_t c;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cb, x);
    PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL);
    c.cert_pem = pem_of(cb);
    c.key_pem = pem_of(kb);
    c.cert_b64 = b64_of(c.cert_pem);
    c.key_b64 = b64_of(c.key_pem);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(k);
    return c;
}

static void free_cert(cert_t *c)
{
    free(c->cert_pem);
    free(c->key_pem);
    free(c->cert_b64);
    free(c->key_b64);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    assert_true(vasprintf(&s, f, ap) >= 0);
    va_end(ap);
    return s;
}

/* ---- HTTPS listener ---- */

static const char https_gw[] =
    "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: edge}\n"
    "spec:\n"
    "  gatewayClassName: gc\n"
    "  listeners:\n"
    "    - name: https\n"
    "      protocol: HTTPS\n"
    "      port: 8443\n"
    "      tls:\n"
    "        mode: Terminate\n"
    "        certificateRefs: [{kind: Secret, group: \"\", name: %s%s}]\n"
    "    - {name: http, protocol: HTTP, port: 8080}\n";

static void test_https_listener(void **state)
{
    (void)state;
    cert_t a = make_cert("localhost"), other = make_cert("other");
    gw_buf_t errors, notices;
    gw_buf_init(&errors, 1 << 16);
    gw_buf_init(&notices, 1 << 16);

    /* data (base64) in the Gateway's namespace. */
    char *gw = fmt(https_gw, "tls", "");
    char *y = fmt("%s%s---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: edge}\n"
                  "type: kubernetes.io/tls\ndata:\n  tls.crt: %s\n  tls.key: %s\n",
                  ROUTE_AND_BACKEND, gw, a.cert_b64, a.key_b64);
    gw_config_t *c = load(y, &errors, &notices);
    if (c == NULL)
        fail_msg("%s", gw_buf_cstr(&errors));
    assert_int_equal(c->listen_port, 8443);
    assert_string_equal(c->listen_tls_cert_pem, a.cert_pem);
    assert_string_equal(c->listen_tls_key_pem, a.key_pem);
    assert_non_null(strstr(c->description, "HTTPS listener"));
    assert_non_null(strstr(gw_buf_cstr(&notices), "spec.listeners[1] is ignored: only the first listener is served"));
    gw_config_unref(c);
    free(y);

    /* stringData works too. */
    y = fmt("%s%s---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: edge}\n"
            "type: kubernetes.io/tls\nstringData:\n  tls.crt: |\n    %s\n  tls.key: |\n    %s\n",
            ROUTE_AND_BACKEND, gw, "PLACEHOLDER_C", "PLACEHOLDER_K");
    /* (indent the PEM lines for the block scalars) */
    gw_buf_t t;
    gw_buf_init(&t, 1 << 20);
    for (const char *p = y; *p; p++) {
        if (strncmp(p, "PLACEHOLDER_C", 13) == 0 || strncmp(p, "PLACEHOLDER_K", 13) == 0) {
            const char *pem = p[12] == 'C' ? a.cert_pem : a.key_pem;
            for (const char *q = pem; *q; q++) {
                gw_buf_append_byte(&t, *q);
                if (*q == '\n' && q[1] != '\0')
                    gw_buf_append_lit(&t, "    ");
            }
            p += 12;
            if (t.data[t.len - 1] == '\n')
                t.len--;
            continue;
        }
        gw_buf_append_byte(&t, *p);
    }
    c = load_ok(gw_buf_cstr(&t));
    assert_string_equal(c->listen_tls_key_pem, a.key_pem);
    gw_config_unref(c);
    gw_buf_free(&t);
    free(y);

    /* Wrong type, missing key, a key of another certificate, no Secret: each refused, no key shown. */
    y = fmt("%s%s---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: edge}\n"
            "type: Opaque\ndata:\n  tls.crt: %s\n  tls.key: %s\n",
            ROUTE_AND_BACKEND, gw, a.cert_b64, a.key_b64);
    assert_null(load(y, &errors, NULL));
    assert_line(gw_buf_cstr(&errors), y, "{kind: Secret, group: \"\", name: tls}",
                "Gateway edge/gw: Secret edge/tls must be of type kubernetes.io/tls (it is Opaque)");
    free(y);
    y = fmt("%s%s---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: edge}\n"
            "type: kubernetes.io/tls\ndata:\n  tls.crt: %s\n",
            ROUTE_AND_BACKEND, gw, a.cert_b64);
    assert_null(load(y, &errors, NULL));
    assert_line(gw_buf_cstr(&errors), y, "{kind: Secret, group: \"\", name: tls}",
                "Gateway edge/gw: Secret edge/tls needs both tls.crt and tls.key");
    free(y);
    y = fmt("%s%s---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: edge}\n"
            "type: kubernetes.io/tls\ndata:\n  tls.crt: %s\n  tls.key: %s\n",
            ROUTE_AND_BACKEND, gw, a.cert_b64, other.key_b64);
    assert_null(load(y, &errors, NULL));
    assert_line(gw_buf_cstr(&errors), y, "{kind: Secret, group: \"\", name: tls}",
                "Gateway edge/gw: Secret edge/tls: tls.key does not match the certificate in tls.crt");
    assert_null(strstr(gw_buf_cstr(&errors), "PRIVATE KEY"));
    assert_null(strstr(gw_buf_cstr(&errors), other.key_b64));
    free(y);
    y = fmt("%s%s", ROUTE_AND_BACKEND, gw);
    assert_null(load(y, &errors, NULL));
    assert_line(gw_buf_cstr(&errors), y, "{kind: Secret, group: \"\", name: tls}", "Gateway edge/gw: Secret edge/tls not found");
    free(y);
    free(gw);

    /* A Secret in another namespace needs a ReferenceGrant from the Gateway. */
    gw = fmt(https_gw, "tls", ", namespace: certs");
    char *secret = fmt("---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: certs}\n"
                       "type: kubernetes.io/tls\ndata:\n  tls.crt: %s\n  tls.key: %s\n",
                       a.cert_b64, a.key_b64);
    y = fmt("%s%s%s", ROUTE_AND_BACKEND, gw, secret);
    assert_null(load(y, &errors, NULL));
    assert_line(gw_buf_cstr(&errors), y, "{kind: Secret, group: \"\", name: tls, namespace: certs}",
                "Gateway edge/gw: Secret certs/tls is in another namespace and no ReferenceGrant in certs lets Gateway "
                "edge/gw use it");
    free(y);
    y = fmt("%s%s%s---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
            "metadata: {name: g, namespace: certs}\n"
            "spec:\n  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: edge}]\n"
            "  to: [{group: \"\", kind: Secret, name: tls}]\n",
            ROUTE_AND_BACKEND, gw, secret);
    c = load_ok(y);
    assert_non_null(c->listen_tls_cert_pem);
    gw_config_unref(c);
    free(y);
    free(gw);
    free(secret);

    /* HTTPS without tls, Passthrough, no certificate, an unsupported protocol. */
    static const char bad[] =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
        "spec:\n"
        "  gatewayClassName: gc\n"
        "  listeners:\n"
        "    - {name: a, protocol: HTTPS, port: 1}\n"
        "    - {name: b, protocol: HTTPS, port: 2, tls: {mode: Passthrough}}\n"
        "    - {name: c, protocol: HTTPS, port: 3, tls: {mode: Terminate}}\n"
        "    - {name: d, protocol: TCP, port: 4}\n"
        "    - {name: d, protocol: HTTP, port: 5}\n";
    assert_null(load(bad, &errors, NULL));
    const char *e = gw_buf_cstr(&errors);
    assert_line(e, bad, "{name: a,", "Gateway default/gw: spec.listeners[0]: tls must be specified for protocols ['HTTPS', 'TLS']");
    assert_line(e, bad, "Passthrough}",
                "Gateway default/gw: spec.listeners[1].tls.mode: TLS Passthrough is not supported (aigw terminates TLS)");
    assert_line(e, bad, "{mode: Terminate}",
                "Gateway default/gw: spec.listeners[2].tls: certificateRefs or options must be specified when mode is "
                "Terminate");
    assert_line(e, bad, "TCP", "Gateway default/gw: spec.listeners[3].protocol TCP is not supported (HTTP or HTTPS)");
    assert_line(e, bad, "d, protocol: HTTP",
                "Gateway default/gw: spec.listeners: Listener name must be unique within the Gateway (d)");
    assert_int_equal(count_lines(e), 5);
    gw_buf_free(&errors);
    gw_buf_free(&notices);
    free_cert(&a);
    free_cert(&other);
}

/* ---- BackendTLSPolicy CA from a ConfigMap or a Secret ---- */

static void test_backend_tls_ca(void **state)
{
    (void)state;
    cert_t ca1 = make_cert("ca one"), ca2 = make_cert("ca two");
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    char *y = fmt("%s---\napiVersion: gateway.networking.k8s.io/v1alpha3\nkind: BackendTLSPolicy\n"
                  "metadata: {name: t}\n"
                  "spec:\n  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: be}]\n"
                  "  validation:\n    hostname: up.example\n"
                  "    caCertificateRefs: [{group: \"\", kind: ConfigMap, name: cm}, {group: \"\", kind: Secret, name: s}]\n"
                  "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata:\n  ca.crt: \"%s\"\n"
                  "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  ca.crt: %s\n",
                  ROUTE_AND_BACKEND, "CA1", ca2.cert_b64);
    /* the ConfigMap value as a double-quoted YAML string with \n escapes */
    gw_buf_t t;
    gw_buf_init(&t, 1 << 20);
    for (const char *p = y; *p; p++) {
        if (strncmp(p, "CA1", 3) == 0) {
            for (const char *q = ca1.cert_pem; *q; q++) {
                if (*q == '\n')
                    gw_buf_append_lit(&t, "\\n");
                else
                    gw_buf_append_byte(&t, *q);
            }
            p += 2;
            continue;
        }
        gw_buf_append_byte(&t, *p);
    }
    gw_config_t *c = load_ok(gw_buf_cstr(&t));
    const gw_backend_t *b = &c->rules[0].backends[0];
    assert_true(b->tls);
    assert_string_equal(b->sni, "up.example");
    assert_non_null(b->ca_pem);
    assert_non_null(strstr(b->ca_pem, ca1.cert_pem));
    assert_non_null(strstr(b->ca_pem, ca2.cert_pem));
    assert_true(strstr(b->ca_pem, ca1.cert_pem) < strstr(b->ca_pem, ca2.cert_pem));
    assert_null(b->ca_file);
    gw_config_unref(c);
    gw_buf_free(&t);
    free(y);

    /* Not a certificate; a missing ConfigMap key; both sources; neither. */
    static const char bad[] =
        ROUTE_AND_BACKEND
        "---\napiVersion: gateway.networking.k8s.io/v1alpha3\nkind: BackendTLSPolicy\nmetadata: {name: t}\n"
        "spec:\n  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: be}]\n"
        "  validation: {hostname: h, caCertificateRefs: [{group: \"\", kind: ConfigMap, name: cm}]}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {ca.crt: \"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: be2}\n"
        "spec: {endpoints: [{ip: {address: 127.0.0.1, port: 9}}]}\n"
        "---\napiVersion: gateway.networking.k8s.io/v1alpha3\nkind: BackendTLSPolicy\nmetadata: {name: t2}\n"
        "spec:\n  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: be2}]\n"
        "  validation: {hostname: h, wellKnownCACertificates: System, caCertificateRefs: [{group: \"\", kind: "
        "ConfigMap, name: nokey}]}\n"
        "---\napiVersion: gateway.networking.k8s.io/v1alpha3\nkind: BackendTLSPolicy\nmetadata: {name: t3}\n"
        "spec:\n  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: be2}]\n"
        "  validation: {hostname: h}\n";
    assert_null(load(bad, &errors, NULL));
    const char *e = gw_buf_cstr(&errors);
    assert_line(e, bad, "{group: \"\", kind: ConfigMap, name: cm}",
                "BackendTLSPolicy default/t: ConfigMap default/cm key ca.crt: a PEM block is not a valid certificate");
    assert_line(e, bad, "{hostname: h, wellKnownCACertificates",
                "BackendTLSPolicy default/t2: spec.validation: must not contain both CACertificateRefs and "
                "WellKnownCACertificates");
    assert_line(e, bad, "{hostname: h}\n",
                "BackendTLSPolicy default/t3: spec.validation: must specify either CACertificateRefs or "
                "WellKnownCACertificates");
    gw_buf_free(&errors);
    free_cert(&ca1);
    free_cert(&ca2);
}

/* ---- BackendTrafficPolicy ---- */

#define TWO_ROUTES                                                                                        \
    ROUTE_AND_BACKEND                                                                                     \
    "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIGatewayRoute\nmetadata: {name: r2}\n"    \
    "spec:\n  rules:\n    - matches: [{headers: [{name: x-ai-eg-model, value: m2}]}]\n"                    \
    "      backendRefs: [{name: svc}]\n      timeouts: {request: 5s, backendRequest: 2s}\n"                 \
    "    - backendRefs: [{name: svc}]\n" GATEWAY_HTTP

static void test_backend_traffic_policy(void **state)
{
    (void)state;
    static const char yaml[] =
        TWO_ROUTES
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: on-route}\n"
        "spec:\n"
        "  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]\n"
        "  retry:\n"
        "    numRetries: 4\n"
        "    retryOn:\n"
        "      triggers: [5xx, gateway-error, reset, retriable-4xx, refused-stream]\n"
        "      httpStatusCodes: [429, 503]\n"
        "    perRetry: {timeout: 1500ms, backOff: {baseInterval: 50ms}}\n"
        "  healthCheck:\n"
        "    passive: {consecutive5XxErrors: 3, baseEjectionTime: 45s, interval: 2s, maxEjectionPercent: 50}\n"
        "  timeout: {http: {requestTimeout: 90s}}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: on-gateway}\n"
        "spec:\n"
        "  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"
        "  retry: {}\n"
        "  timeout: {http: {requestTimeout: 0s}}\n";
    gw_buf_t errors, notices;
    gw_buf_init(&errors, 1 << 16);
    gw_buf_init(&notices, 1 << 16);
    gw_config_t *c = load(yaml, &errors, &notices);
    if (c == NULL)
        fail_msg("%s", gw_buf_cstr(&errors));
    assert_int_equal(c->n_rules, 3);
    /* Route r: its own policy. */
    const gw_route_rule_t *r = &c->rules[0];
    assert_int_equal(r->retry.num_retries, 4);
    assert_true(r->retry.on_5xx && r->retry.on_gateway_error && r->retry.on_reset && r->retry.on_retriable_status);
    assert_false(r->retry.on_connect_failure);
    assert_int_equal(r->retry.n_status_codes, 3);
    assert_int_equal(r->retry.status_codes[0], 429);
    assert_int_equal(r->retry.status_codes[1], 503);
    assert_int_equal(r->retry.status_codes[2], 409); /* retriable-4xx */
    assert_int_equal(r->retry.per_retry_timeout_ms, 1500);
    assert_int_equal(r->retry.backoff_base_ms, 50);
    assert_int_equal(r->retry.backoff_max_ms, 500);
    assert_int_equal(r->health.consecutive_failures, 3);
    assert_int_equal(r->health.base_ejection_ms, 45000);
    assert_int_equal(r->health.max_ejection_ms, 45000);
    assert_int_equal(r->request_timeout_ms, 90000);
    /* Route r2: the Gateway's policy, Envoy Gateway's retry defaults; the rule's own timeout wins,
     * its backendRequest bounds each attempt; the second rule takes the policy's 0s (no limit). */
    r = &c->rules[1];
    assert_int_equal(r->retry.num_retries, 2);
    assert_true(r->retry.on_connect_failure && r->retry.on_retriable_status);
    assert_false(r->retry.on_5xx);
    assert_int_equal(r->retry.n_status_codes, 1);
    assert_int_equal(r->retry.status_codes[0], 503);
    assert_int_equal(r->retry.backoff_base_ms, 25);
    assert_int_equal(r->retry.backoff_max_ms, 250);
    assert_int_equal(r->retry.per_retry_timeout_ms, 2000);
    assert_int_equal(r->request_timeout_ms, 5000);
    assert_int_equal(r->health.consecutive_failures, 1); /* no passive block: aigw's defaults */
    assert_int_equal(r->health.base_ejection_ms, 1000);
    assert_int_equal(r->health.max_ejection_ms, 30000);
    assert_int_equal(c->rules[2].request_timeout_ms, 0);
    const char *n = gw_buf_cstr(&notices);
    assert_line(n, yaml, "refused-stream]",
                "notice: BackendTrafficPolicy default/on-route: spec.retry.retryOn.triggers refused-stream is ignored: an "
                "HTTP/2 or gRPC condition");
    assert_line(n, yaml, "interval: 2s",
                "notice: BackendTrafficPolicy default/on-route: spec.healthCheck.passive.interval is ignored: failures "
                "are counted as they happen");
    gw_config_unref(c);

    /* Errors, each at its node. */
    static const char bad[] =
        TWO_ROUTES
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: b1}\n"
        "spec:\n"
        "  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: nope}]\n"
        "  retry:\n"
        "    numRetries: -1\n"
        "    retryOn: {triggers: [on-tuesdays], httpStatusCodes: [99]}\n"
        "    perRetry: {backOff: {baseInterval: 1s, maxInterval: 10ms}}\n"
        "  rateLimit: {type: Global}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: b2}\n"
        "spec:\n"
        "  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r, sectionName: rule-1}]\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: b3}\n"
        "spec:\n"
        "  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: b4}\n"
        "spec:\n"
        "  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"
        "  healthCheck: {passive: {baseEjectionTime: soon}}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: b5}\n"
        "spec: {retry: {numRetries: 1}}\n";
    assert_null(load(bad, &errors, NULL));
    const char *e = gw_buf_cstr(&errors);
    assert_line(e, bad, "{group: gateway.networking.k8s.io, kind: HTTPRoute, name: nope}",
                "BackendTrafficPolicy default/b1: HTTPRoute default/nope not found (it is the route an AIGatewayRoute of "
                "the same name generates)");
    assert_line(e, bad, "-1", "BackendTrafficPolicy default/b1: spec.retry.numRetries must be an integer from 0 to 2147483647");
    assert_line(e, bad, "on-tuesdays",
                "BackendTrafficPolicy default/b1: spec.retry.retryOn.triggers: Unsupported value: \"on-tuesdays\": "
                "supported values: \"5xx\", \"gateway-error\", \"reset\", \"reset-before-request\", \"connect-failure\", "
                "\"retriable-4xx\", \"refused-stream\", \"retriable-status-codes\", \"cancelled\", \"deadline-exceeded\", "
                "\"internal\", \"resource-exhausted\", \"unavailable\"");
    assert_line(e, bad, "99]", "BackendTrafficPolicy default/b1: spec.retry.retryOn.httpStatusCodes[0] must be an HTTP status from 100 to 600");
    assert_line(e, bad, "10ms}",
                "BackendTrafficPolicy default/b1: spec.retry.perRetry.backOff: maxInterval cannot be less than baseInterval");
    assert_line(e, bad, "{type: Global}",
                "BackendTrafficPolicy default/b1: spec.rateLimit is not supported yet: the limits would not be enforced");
    assert_line(e, bad, "rule-1}",
                "BackendTrafficPolicy default/b2: spec.targetRefs sectionName is not supported (AIGatewayRoute rules and "
                "aigw's listener have no names to select)");
    assert_line(e, bad, "{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n  healthCheck",
                "BackendTrafficPolicy default/b4: Gateway default/gw already has BackendTrafficPolicy default/b3");
    assert_line(e, bad, "soon", "BackendTrafficPolicy default/b4: spec.healthCheck.passive.baseEjectionTime soon is not a duration such as 60s, 1m30s or 500ms");
    assert_line(e, bad, "{retry: {numRetries: 1}}", "BackendTrafficPolicy default/b5: spec: either targetRef or targetRefs must be used");
    assert_int_equal(count_lines(e), 10);
    gw_buf_free(&errors);
    gw_buf_free(&notices);
}

/* ---- ReferenceGrant ---- */

static void test_reference_grant(void **state)
{
    (void)state;
#define XNS_ROUTE                                                                                          \
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIGatewayRoute\nmetadata: {name: r, namespace: a}\n" \
    "spec:\n  rules:\n    - backendRefs:\n        - {name: svc, namespace: b}\n"                            \
    "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIServiceBackend\nmetadata: {name: svc, namespace: b}\n" \
    "spec: {schema: {name: OpenAI}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"   \
    "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: be, namespace: b}\n"  \
    "spec: {endpoints: [{ip: {address: 127.0.0.1, port: 9}}]}\n"
#define GRANT(ns, from_ns, to_name)                                                                        \
    "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: " ns "}\n" \
    "spec:\n  from: [{group: aigateway.envoyproxy.io, kind: AIGatewayRoute, namespace: " from_ns "}]\n"       \
    "  to: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend" to_name "}]\n"
    static const char none[] = XNS_ROUTE;
    static const char wrong_from[] = XNS_ROUTE GRANT("b", "c", "");
    static const char wrong_ns[] = XNS_ROUTE GRANT("a", "a", "");
    static const char wrong_name[] = XNS_ROUTE GRANT("b", "a", ", name: other");
    static const char ok_any[] = XNS_ROUTE GRANT("b", "a", "");
    static const char ok_named[] = XNS_ROUTE GRANT("b", "a", ", name: svc");
    const char *refused[] = {none, wrong_from, wrong_ns, wrong_name};
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    for (size_t i = 0; i < GW_ARRAY_SIZE(refused); i++) {
        assert_null(load(refused[i], &errors, NULL));
        assert_line(gw_buf_cstr(&errors), refused[i], "{name: svc, namespace: b}",
                    "AIGatewayRoute a/r: spec.rules[0].backendRefs[0]: AIServiceBackend b/svc is in another namespace and "
                    "no ReferenceGrant in b allows AIGatewayRoute from a to refer to it");
        assert_int_equal(count_lines(gw_buf_cstr(&errors)), 1);
    }
    gw_config_t *c = load_ok(ok_any);
    assert_string_equal(c->rules[0].backends[0].service_name, "b/svc");
    assert_string_equal(c->rules[0].backends[0].name, "b/svc/route/r/rule/0/ref/0");
    gw_config_unref(c);
    c = load_ok(ok_named);
    gw_config_unref(c);
    gw_buf_free(&errors);
#undef XNS_ROUTE
#undef GRANT
}

/* ---- MCPRoute ---- */

static void test_mcp_route(void **state)
{
    (void)state;
    static const char yaml[] =
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: MCPRoute\nmetadata: {name: tools, namespace: t}\n"
        "spec:\n"
        "  parentRefs: [{name: gw}]\n"
        "  path: /tools/mcp\n"
        "  headers: [{name: X-Team, value: blue}]\n"
        "  backendRefs:\n"
        "    - name: one\n"
        "      kind: Backend\n"
        "      group: gateway.envoyproxy.io\n"
        "      toolSelector: {include: [read, list]}\n"
        "      securityPolicy: {apiKey: {inline: tok-inline, header: X-Api-Key}}\n"
        "    - name: two\n"
        "      kind: Backend\n"
        "      group: gateway.envoyproxy.io\n"
        "      path: /v2/mcp\n"
        "      toolSelector: {includeRegex: [\"^get_.*\", \"search\"]}\n"
        "      securityPolicy: {apiKey: {secretRef: {name: two-key}}}\n"
        "  securityPolicy:\n"
        "    oauth:\n"
        "      issuer: https://issuer.example\n"
        "      audiences: [aud1]\n"
        "      protectedResourceMetadata:\n"
        "        resource: https://gw.example/tools/mcp\n"
        "        resourceName: Tools\n"
        "        resourceSigningAlgValuesSupported: [RS256]\n"
        "    apiKeyAuth:\n"
        "      credentialRefs: [{name: clients}]\n"
        "      extractFrom: [{headers: [X-Client-Key]}]\n"
        "      forwardClientIDHeader: X-Client-Id\n"
        "      sanitize: true\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: one, namespace: t}\n"
        "spec: {endpoints: [{fqdn: {hostname: one.example, port: 8080}}]}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: two, namespace: t}\n"
        "spec: {endpoints: [{fqdn: {hostname: two.example}}]}\n"
        "---\napiVersion: gateway.networking.k8s.io/v1alpha3\nkind: BackendTLSPolicy\nmetadata: {name: two, namespace: t}\n"
        "spec:\n  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: two}]\n"
        "  validation: {hostname: sni.example, wellKnownCACertificates: System}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: two-key, namespace: t}\nstringData: {apiKey: tok-secret}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: clients, namespace: t}\nstringData: {alice: k-alice, bob: k-bob}\n";
    gw_config_t *c = load_ok(yaml);
    assert_int_equal(c->n_mcp_routes, 1);
    const gw_mcp_route_t *r = &c->mcp_routes[0];
    assert_string_equal(r->name, "t/tools");
    assert_string_equal(r->path, "/tools/mcp");
    assert_int_equal(r->match.n_headers, 1);
    assert_string_equal(r->match.headers[0].name, "x-team");
    const gw_mcp_backend_t *one = &r->backends[0], *two = &r->backends[1];
    assert_string_equal(one->host, "one.example");
    assert_int_equal(one->port, 8080);
    assert_false(one->tls);
    assert_string_equal(one->path, "/mcp");
    assert_string_equal(one->api_key, "tok-inline");
    assert_string_equal(one->api_key_header, "x-api-key");
    assert_true(gw_mcp_tool_allowed(one, GW_STR("read")));
    assert_false(gw_mcp_tool_allowed(one, GW_STR("reads")));
    assert_int_equal(two->port, 443);
    assert_true(two->tls);
    assert_string_equal(two->sni, "sni.example");
    assert_string_equal(two->path, "/v2/mcp");
    assert_string_equal(two->api_key, "tok-secret");
    assert_string_equal(two->api_key_header, "authorization");
    assert_true(gw_mcp_tool_allowed(two, GW_STR("get_weather")));
    assert_true(gw_mcp_tool_allowed(two, GW_STR("web_search_v2"))); /* unanchored, as Go's MatchString */
    assert_false(gw_mcp_tool_allowed(two, GW_STR("forget_it")));
    const gw_mcp_oauth_t *o = r->oauth;
    assert_string_equal(o->issuer, "https://issuer.example");
    assert_int_equal(o->n_audiences, 1);
    assert_null(o->jwks_uri);
    assert_null(o->jwks_json); /* discovered from the issuer */
    assert_string_equal(o->resource_name, "Tools");
    assert_int_equal(o->n_signing_algs_supported, 1);
    const gw_mcp_api_key_auth_t *k = r->api_key_auth;
    assert_int_equal(k->n_creds, 2);
    assert_string_equal(k->creds[0].client_id, "alice");
    assert_string_equal(k->creds[1].key, "k-bob");
    assert_int_equal(k->n_headers, 1);
    assert_string_equal(k->headers[0], "x-client-key");
    assert_string_equal(k->forward_client_id_header, "x-client-id");
    assert_true(k->sanitize);
    gw_config_unref(c);

    /* The CEL rules and what aigw cannot resolve. */
    static const char bad[] =
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: MCPRoute\nmetadata: {name: m}\n"
        "spec:\n"
        "  parentRefs: [{name: gw, kind: Service}]\n"
        "  backendRefs:\n"
        "    - {name: a, kind: Backend, group: gateway.envoyproxy.io, toolSelector: {}}\n"
        "    - {name: a, kind: Backend, group: gateway.envoyproxy.io}\n"
        "    - {name: svc, port: 80, securityPolicy: {apiKey: {inline: x, secretRef: {name: s}}}}\n"
        "    - {name: c, kind: Backend, group: gateway.envoyproxy.io, toolSelector: {includeRegex: [\"(\"]}}\n"
        "  securityPolicy:\n"
        "    oauth:\n"
        "      issuer: not a uri\n"
        "      jwks: {localJWKS: {type: Inline, inline: \"{}\"}}\n"
        "      protectedResourceMetadata: {resource: https://x.example, resourceSigningAlgValuesSupported: []}\n"
        "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: MCPRoute\nmetadata: {name: m2}\n"
        "spec:\n"
        "  parentRefs: [{name: gw}]\n"
        "  backendRefs: [{name: a, kind: Backend, group: gateway.envoyproxy.io}]\n"
        "  securityPolicy: {oauth: {issuer: https://i.example, protectedResourceMetadata: {resource: https://r.example}}}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: a}\n"
        "spec: {endpoints: [{fqdn: {hostname: a.example, port: 80}}]}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: c}\n"
        "spec: {endpoints: [{fqdn: {hostname: c.example, port: 80}}]}\n";
    gw_buf_t errors, notices;
    gw_buf_init(&errors, 1 << 16);
    gw_buf_init(&notices, 1 << 16);
    assert_null(load(bad, &errors, NULL));
    const char *e = gw_buf_cstr(&errors);
    assert_line(e, bad, "Service}]", "MCPRoute default/m: spec.parentRefs[0].kind Service: only Gateway is supported");
    assert_line(e, bad, "{}}\n", "MCPRoute default/m: spec.backendRefs[0].toolSelector: exactly one of include or includeRegex must be specified");
    assert_line(e, bad, "{name: a, kind: Backend, group: gateway.envoyproxy.io}\n    - {name: svc",
                "MCPRoute default/m: spec.backendRefs: all backendRefs names must be unique (a)");
    assert_line(e, bad, "{inline: x,",
                "MCPRoute default/m: spec.backendRefs[2].securityPolicy.apiKey: exactly one of secretRef or inline must be set");
    assert_line(e, bad, "{name: svc,",
                "MCPRoute default/m: spec.backendRefs[2]: Service cannot be resolved outside Kubernetes; refer to a Backend "
                "(group gateway.envoyproxy.io, kind Backend)");
    assert_line(e, bad, "[\"(\"]",
                "MCPRoute default/m: spec.backendRefs[3].toolSelector.includeRegex[0]: bad regular expression (: missing "
                "closing parenthesis at offset 1");
    assert_line(e, bad, "not a uri",
                "MCPRoute default/m: spec.securityPolicy.oauth.issuer: Invalid value: \"not a uri\": "
                "spec.securityPolicy.oauth.issuer in body must be of type uri: \"not a uri\"");
    assert_line(e, bad, "\"{}\"",
                "MCPRoute default/m: spec.securityPolicy.oauth.jwks.localJWKS is not a JSON Web Key Set (a JSON object "
                "with \"keys\")");
    assert_line(e, bad, "[]}",
                "MCPRoute default/m: spec.securityPolicy.oauth.protectedResourceMetadata.resourceSigningAlgValuesSupported "
                "in body should have at least 1 items");
    assert_line(e, bad, "{issuer: https://i.example",
                "MCPRoute default/m2: only one MCPRoute with OAuth is supported (MCPRoute default/m has one already)");
    assert_line(e, bad, "parentRefs: [{name: gw}]\n  backendRefs: [{name: a",
                "MCPRoute default/m2: spec.path /mcp is already served by MCPRoute default/m (neither has header matches)");

    /* As the API server sees them, only the CEL rules are errors; the rest are notices. */
    gw_buf_reset(&errors);
    assert_int_equal(gw_config_check_buffer("mem", bad, strlen(bad), GW_CHECK_RESOURCES_ONLY, &errors, &notices),
                     GW_EINVAL);
    e = gw_buf_cstr(&errors);
    assert_non_null(strstr(e, "exactly one of include or includeRegex must be specified"));
    assert_non_null(strstr(e, "all backendRefs names must be unique"));
    assert_null(strstr(e, "cannot be resolved outside Kubernetes"));
    assert_non_null(strstr(gw_buf_cstr(&notices), "notice: MCPRoute default/m: spec.backendRefs[2]: Service cannot be resolved"));
    gw_buf_free(&errors);
    gw_buf_free(&notices);
}

/* securityPolicy.authorization (aigw extension): required scopes for the route and per tool. */
static void test_mcp_authorization(void **state)
{
    (void)state;
#define AUTHZ_BACKENDS                                                                                     \
    "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: weather}\n"          \
    "spec: {endpoints: [{fqdn: {hostname: w.example, port: 80}}]}\n"                                       \
    "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: admin}\n"            \
    "spec: {endpoints: [{fqdn: {hostname: a.example, port: 80}}]}\n"
#define AUTHZ_ROUTE(name)                                                                                  \
    "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: MCPRoute\nmetadata: {name: " name "}\n"           \
    "spec:\n"                                                                                              \
    "  parentRefs: [{name: gw}]\n"                                                                         \
    "  backendRefs:\n"                                                                                     \
    "    - {name: weather, kind: Backend, group: gateway.envoyproxy.io}\n"                                 \
    "    - {name: admin, kind: Backend, group: gateway.envoyproxy.io}\n"
#define AUTHZ_OAUTH "    oauth: {issuer: https://i.example, protectedResourceMetadata: {resource: https://r.example/mcp}}\n"
    static const char yaml[] = AUTHZ_ROUTE("m")
        "  securityPolicy:\n" AUTHZ_OAUTH
        "    authorization:\n"
        "      requiredScopes: [\"mcp:access\", profile]\n"
        "      tools:\n"
        "        - name: weather__get_forecast\n"
        "          scopes: [\"weather:read\"]\n"
        "        - nameRegex: \"^admin__\"\n"
        "          scopes: [\"admin:all\", \"mcp:admin\"]\n" AUTHZ_BACKENDS;
    gw_config_t *c = load_ok(yaml);
    const gw_mcp_authorization_t *z = c->mcp_routes[0].authorization;
    assert_non_null(z);
    assert_int_equal(z->n_required_scopes, 2);
    assert_string_equal(z->required_scopes[0], "mcp:access");
    assert_string_equal(z->required_scopes[1], "profile");
    assert_int_equal(z->n_tools, 2);
    assert_string_equal(z->tools[0].name, "weather__get_forecast");
    assert_null(z->tools[0].name_regex);
    assert_int_equal(z->tools[0].n_scopes, 1);
    assert_string_equal(z->tools[0].scopes[0], "weather:read");
    assert_null(z->tools[1].name);
    assert_string_equal(z->tools[1].name_regex, "^admin__");
    assert_int_equal(z->tools[1].n_scopes, 2);
    assert_string_equal(z->tools[1].scopes[1], "mcp:admin");
    /* exact names are exact; patterns are unanchored like includeRegex, anchored by ^ here */
    assert_true(gw_mcp_tool_rule_matches(&z->tools[0], GW_STR("weather__get_forecast")));
    assert_false(gw_mcp_tool_rule_matches(&z->tools[0], GW_STR("weather__get_forecast2")));
    assert_false(gw_mcp_tool_rule_matches(&z->tools[0], GW_STR("get_forecast")));
    assert_true(gw_mcp_tool_rule_matches(&z->tools[1], GW_STR("admin__drop_all")));
    assert_false(gw_mcp_tool_rule_matches(&z->tools[1], GW_STR("weather__admin__x")));
    gw_config_unref(c);

    /* Without authorization the route has none; requiredScopes alone or tools alone is enough. */
    static const char only_required[] = AUTHZ_ROUTE("m")
        "  securityPolicy:\n" AUTHZ_OAUTH "    authorization: {requiredScopes: [a]}\n" AUTHZ_BACKENDS;
    c = load_ok(only_required);
    assert_int_equal(c->mcp_routes[0].authorization->n_required_scopes, 1);
    assert_int_equal(c->mcp_routes[0].authorization->n_tools, 0);
    gw_config_unref(c);
    static const char none[] = AUTHZ_ROUTE("m") "  securityPolicy:\n" AUTHZ_OAUTH AUTHZ_BACKENDS;
    c = load_ok(none);
    assert_null(c->mcp_routes[0].authorization);
    gw_config_unref(c);

    /* What is refused, each at its node. */
    char many[4096];
    int off = snprintf(many, sizeof(many), "%s", "[");
    for (int i = 0; i < 33; i++)
        off += snprintf(many + off, sizeof(many) - (size_t)off, "%ss%d", i ? ", " : "", i);
    snprintf(many + off, sizeof(many) - (size_t)off, "]");
    char bad[8192];
    snprintf(bad, sizeof(bad),
             AUTHZ_ROUTE("noauth") "  securityPolicy:\n    authorization: {requiredScopes: [x]}\n"
             "---\n" AUTHZ_ROUTE("bad") "  path: /bad\n"
             "  securityPolicy:\n"
             "    oauth: {issuer: https://i2.example, protectedResourceMetadata: {resource: https://r.example/bad}}\n"
             "    authorization:\n"
             "      requiredScopes: [\"\", \"two words\", 'q\"uote']\n"
             "      tools:\n"
             "        - {name: both, nameRegex: both, scopes: [s]}\n"
             "        - {scopes: [s]}\n"
             "        - {name: noscopes}\n"
             "        - {name: emptyscopes, scopes: []}\n"
             "        - {nameRegex: \"(\", scopes: [s]}\n"
             "        - {name: toomany, scopes: %s}\n"
             "---\n" AUTHZ_ROUTE("empty") "  path: /empty\n"
             "  securityPolicy:\n"
             "    authorization: {}\n" AUTHZ_BACKENDS,
             many);
    gw_buf_t errors, notices;
    gw_buf_init(&errors, 1 << 16);
    gw_buf_init(&notices, 1 << 16);
    assert_null(load(bad, &errors, NULL));
    const char *e = gw_buf_cstr(&errors);
    assert_line(e, bad, "{requiredScopes: [x]}",
                "MCPRoute default/noauth: spec.securityPolicy.authorization needs spec.securityPolicy.oauth: the scopes "
                "are those of its access tokens");
    assert_line(e, bad, "\"\", \"two", "MCPRoute default/bad: spec.securityPolicy.authorization.requiredScopes[0] must be "
                "a non-empty string");
    assert_line(e, bad, "\"two words\"", "MCPRoute default/bad: spec.securityPolicy.authorization.requiredScopes[1]: "
                "\"two words\" is not a scope token (no space, quote, backslash or control character)");
    assert_line(e, bad, "'q\"uote'", "MCPRoute default/bad: spec.securityPolicy.authorization.requiredScopes[2]: "
                "\"q\"uote\" is not a scope token (no space, quote, backslash or control character)");
    assert_line(e, bad, "{name: both", "MCPRoute default/bad: spec.securityPolicy.authorization.tools[0]: exactly one "
                "of name or nameRegex must be specified");
    assert_line(e, bad, "{scopes: [s]}", "MCPRoute default/bad: spec.securityPolicy.authorization.tools[1]: exactly "
                "one of name or nameRegex must be specified");
    assert_line(e, bad, "{name: noscopes}", "MCPRoute default/bad: spec.securityPolicy.authorization.tools[2].scopes is "
                "required");
    assert_line(e, bad, "[]}\n", "MCPRoute default/bad: spec.securityPolicy.authorization.tools[3].scopes in body "
                "should have at least 1 items");
    assert_line(e, bad, "\"(\"", "MCPRoute default/bad: spec.securityPolicy.authorization.tools[4].nameRegex: bad "
                "regular expression (: missing closing parenthesis at offset 1");
    assert_line(e, bad, "[s0,", "MCPRoute default/bad: spec.securityPolicy.authorization.tools[5].scopes: Too many: "
                "33: must have at most 32 items");
    assert_line(e, bad, "{}\n", "MCPRoute default/empty: spec.securityPolicy.authorization: at least one of "
                "requiredScopes or tools must be specified");
    assert_line(e, bad, "{}\n", "MCPRoute default/empty: spec.securityPolicy.authorization needs "
                "spec.securityPolicy.oauth: the scopes are those of its access tokens");

    /* More than 32 tool rules. */
    char rules[8192];
    off = snprintf(rules, sizeof(rules), "%s", AUTHZ_ROUTE("m") "  securityPolicy:\n" AUTHZ_OAUTH
                   "    authorization:\n      tools:\n");
    for (int i = 0; i < 33; i++)
        off += snprintf(rules + off, sizeof(rules) - (size_t)off, "        - {name: t%d, scopes: [s]}\n", i);
    snprintf(rules + off, sizeof(rules) - (size_t)off, "%s", AUTHZ_BACKENDS);
    assert_null(load(rules, &errors, NULL));
    assert_line(gw_buf_cstr(&errors), rules, "- {name: t0,", "MCPRoute default/m: spec.securityPolicy.authorization.tools: "
                "Too many: 33: must have at most 32 items");

    /* One backend: a prefixed rule name is told about (the tools are exposed unprefixed). */
    static const char single[] =
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: MCPRoute\nmetadata: {name: one}\n"
        "spec:\n"
        "  parentRefs: [{name: gw}]\n"
        "  backendRefs: [{name: weather, kind: Backend, group: gateway.envoyproxy.io}]\n"
        "  securityPolicy:\n" AUTHZ_OAUTH
        "    authorization: {tools: [{name: weather__get_forecast, scopes: [w]}, {name: get_forecast, scopes: [w]}]}\n"
        AUTHZ_BACKENDS;
    c = load(single, &errors, &notices);
    assert_non_null(c);
    assert_line(gw_buf_cstr(&notices), single, "{name: weather__get_forecast",
                "notice: MCPRoute default/one: spec.securityPolicy.authorization.tools[0].name weather__get_forecast: a "
                "route with one backend exposes its tools without the \"weather__\" prefix, so this rule only matches a "
                "tool named so upstream");
    assert_null(strstr(gw_buf_cstr(&notices), "tools[1].name"));
    gw_config_unref(c);
    gw_buf_free(&errors);
    gw_buf_free(&notices);
#undef AUTHZ_BACKENDS
#undef AUTHZ_ROUTE
#undef AUTHZ_OAUTH
}

/* ---- BackendSecurityPolicy CEL and the credential types ---- */

static void test_security_policy_rules(void **state)
{
    (void)state;
#define BSP(name, body)                                                                                    \
    "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: BackendSecurityPolicy\nmetadata: {name: " name "}\n" \
    "spec:\n" body
    static const char yaml[] =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {apiKey: k}\n"
        BSP("p1", "  type: APIKey\n  apiKey: {secretRef: {name: s}}\n  gcpCredentials: {projectName: p, region: r}\n")
        BSP("p2", "  type: AzureCredentials\n  azureCredentials: {clientID: \"\", tenantID: t}\n")
        BSP("p3", "  type: GCPCredentials\n  gcpCredentials:\n    projectName: p\n    region: r\n"
                  "    credentialsFile: {secretRef: {name: s}}\n"
                  "    workloadIdentityFederationConfig: {projectID: x}\n")
        BSP("p4", "  type: AWSCredentials\n  awsCredentials: {region: \"\"}\n")
        BSP("p5", "  targetRefs: [{group: aigateway.envoyproxy.io, name: x}]\n  type: APIKey\n  apiKey: {secretRef: {name: s}}\n")
        BSP("p6", "  type: AWSCredentials\n  awsCredentials:\n    region: us-east-1\n"
                  "    oidcExchangeToken: {awsRoleArn: arn, oidc: {provider: {issuer: i}, clientID: c, clientSecret: {name: s}}}\n")
        BSP("p7", "  type: AnthropicAPIKey\n  anthropicAPIKey: {secretRef: {name: s, kind: ConfigMap}}\n");
    gw_buf_t errors, notices;
    gw_buf_init(&errors, 1 << 16);
    gw_buf_init(&notices, 1 << 16);
    assert_null(load(yaml, &errors, NULL));
    const char *e = gw_buf_cstr(&errors);
    assert_line(e, yaml, "APIKey\n  apiKey: {secretRef: {name: s}}\n  gcp",
                "BackendSecurityPolicy default/p1: spec: When type is APIKey, only apiKey field should be set");
    assert_line(e, yaml, "\"\", tenantID",
                "BackendSecurityPolicy default/p2: spec.azureCredentials.clientID is required (must be at least 1 "
                "character long)");
    assert_line(e, yaml, "{clientID: \"\", tenantID: t}",
                "BackendSecurityPolicy default/p2: spec.azureCredentials: Exactly one of clientSecretRef or "
                "oidcExchangeToken must be specified");
    assert_line(e, yaml, "projectName: p\n    region: r\n    credentialsFile",
                "BackendSecurityPolicy default/p3: spec.gcpCredentials: Exactly one of GCPWorkloadIdentityFederationConfig "
                "or GCPCredentialsFile must be specified");
    assert_line(e, yaml, "\"\"}\n",
                "BackendSecurityPolicy default/p4: spec.awsCredentials.region is required (must be at least 1 character long)");
    assert_line(e, yaml, "{group: aigateway.envoyproxy.io, name: x}",
                "BackendSecurityPolicy default/p5: spec.targetRefs[0].kind is required");
    assert_line(e, yaml, "{awsRoleArn: arn",
                "BackendSecurityPolicy default/p6: spec.awsCredentials.oidcExchangeToken is not supported outside "
                "Kubernetes (the reference's aigw refuses it too): use credentialsFile, or neither for the AWS default "
                "credential chain");
    assert_line(e, yaml, "{name: s, kind: ConfigMap}",
                "BackendSecurityPolicy default/p7: spec.anthropicAPIKey.secretRef: only a core Secret can hold it, not "
                "ConfigMap");
    /* p6 is valid for the API server: in the resources-only check it is a notice. */
    gw_buf_reset(&errors);
    gw_config_check_buffer("mem", yaml, strlen(yaml), GW_CHECK_RESOURCES_ONLY, &errors, &notices);
    assert_null(strstr(gw_buf_cstr(&errors), "p6"));
    assert_non_null(strstr(gw_buf_cstr(&notices), "BackendSecurityPolicy default/p6: spec.awsCredentials.oidcExchangeToken"));
    gw_buf_free(&errors);
    gw_buf_free(&notices);
#undef BSP
}

/* ---- AIGatewayRoute CEL rules and limits ---- */

static void test_route_rules(void **state)
{
    (void)state;
    static const char yaml[] =
        "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIGatewayRoute\nmetadata: {name: r}\n"
        "spec:\n"
        "  parentRefs: [{name: gw, kind: Gateway}, {name: x, kind: Mesh}]\n"
        "  rules:\n"
        "    - matches: [{headers: [{name: a, value: \"1\"}, {name: A, value: \"2\"}]}]\n"
        "      backendRefs: [{name: p, group: inference.networking.k8s.io}]\n"
        "      timeouts: {request: 10s, backendRequest: 20s}\n"
        "    - backendRefs: [{name: p, group: inference.networking.k8s.io, kind: InferencePool}, {name: svc}]\n"
        "    - backendRefs: [{name: p, group: example.com, kind: Pool}]\n"
        "    - backendRefs: [{name: svc, weight: 2000000}]\n"
        "    - backendRefs: [{name: p, group: inference.networking.k8s.io, kind: InferencePool}]\n"
        "  llmRequestCosts: [{metadataKey: c, type: CEL}]\n"
        "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIServiceBackend\nmetadata: {name: svc}\n"
        "spec: {schema: {name: OpenAI}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: be}\n"
        "spec: {endpoints: [{ip: {address: 127.0.0.1, port: 9}}]}\n";
    gw_buf_t errors;
    gw_buf_init(&errors, 1 << 16);
    assert_null(load(yaml, &errors, NULL));
    const char *e = gw_buf_cstr(&errors);
    assert_line(e, yaml, "Mesh}", "AIGatewayRoute default/r: spec.parentRefs[1].kind Mesh: only Gateway is supported");
    assert_line(e, yaml, "A, value", "AIGatewayRoute default/r: spec.rules[0].matches[0].headers[1].name: Duplicate value: \"A\"");
    assert_line(e, yaml, "{name: p, group: inference.networking.k8s.io}]",
                "AIGatewayRoute default/r: spec.rules[0].backendRefs[0]: group and kind must be specified together");
    assert_line(e, yaml, "{request: 10s,",
                "AIGatewayRoute default/r: spec.rules[0].timeouts: backendRequest timeout cannot be longer than request "
                "timeout");
    assert_line(e, yaml, "[{name: p, group: inference.networking.k8s.io, kind: InferencePool}, {name: svc}]",
                "AIGatewayRoute default/r: spec.rules[1]: cannot mix InferencePool and AIServiceBackend references in the "
                "same rule");
    assert_line(e, yaml, "{name: p, group: example.com",
                "AIGatewayRoute default/r: spec.rules[2].backendRefs[0]: only InferencePool from "
                "inference.networking.k8s.io group is supported");
    assert_line(e, yaml, "2000000",
                "AIGatewayRoute default/r: spec.rules[3].backendRefs[0].weight 2000000 is above 1000000, the Gateway "
                "API's limit");
    assert_line(e, yaml, "[{name: p, group: inference.networking.k8s.io, kind: InferencePool}]\n",
                "AIGatewayRoute default/r: spec.rules[4].backendRefs: InferencePool backends are not supported (the "
                "Gateway API Inference Extension needs its endpoint picker, which aigw does not run)");
    assert_line(e, yaml, "{metadataKey: c, type: CEL}", "AIGatewayRoute default/r: spec.llmRequestCosts[0].cel is required");

    /* 129 rules: "Too many", as the API server says it. */
    gw_buf_t big;
    gw_buf_init(&big, 1 << 20);
    gw_buf_append_lit(&big, "kind: AIGatewayRoute\nmetadata: {name: big}\nspec:\n  rules:\n");
    for (int i = 0; i < 129; i++)
        gw_buf_append_lit(&big, "    - backendRefs: [{name: svc}]\n");
    gw_buf_reset(&errors);
    assert_null(gw_config_load_buffer("mem", big.data, big.len, &errors));
    assert_non_null(strstr(gw_buf_cstr(&errors), "mem:5:5: AIGatewayRoute default/big: spec.rules: Too many: 129: must have at most 128 items\n"));
    gw_buf_free(&big);
    gw_buf_free(&errors);
}

/* ---- notices, the resources-only check, validate, order ---- */

static void test_notices_validate_and_order(void **state)
{
    (void)state;
    static const char yaml[] =
        ROUTE_AND_BACKEND GATEWAY_HTTP
        "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyProxy\nmetadata: {name: ep}\nspec: {}\n"
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
        "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIServiceBackend\nmetadata: {name: svc2}\n"
        "spec:\n  schema: {name: OpenAI}\n  backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}\n"
        "  timeouts: {request: 3m}\n  shema: typo\n"
        "  headerMutation: {set: [{name: x-ai-eg-model, value: hacked}], remove: [x-ai-eg-original-path]}\n";
    gw_buf_t errors, notices;
    gw_buf_init(&errors, 1 << 16);
    gw_buf_init(&notices, 1 << 16);
    gw_config_t *c = load(yaml, &errors, &notices);
    assert_non_null(c);
    const char *n = gw_buf_cstr(&notices);
    assert_line(n, yaml, "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyProxy",
                "notice: EnvoyProxy default/ep: ignored: it configures the Envoy deployment");
    assert_line(n, yaml, "apiVersion: apps/v1", "notice: Deployment default/d: Deployment is not used by aigw and is ignored");
    assert_line(n, yaml, "timeouts: {request: 3m}",
                "notice: AIServiceBackend default/svc2: spec.timeouts is ignored: not an AIServiceBackend field in v0.4 "
                "(the route rule's timeouts apply)");
    assert_line(n, yaml, "shema", "notice: AIServiceBackend default/svc2: spec.shema: unknown field, ignored");
    assert_line(n, yaml, "x-ai-eg-model, value: hacked",
                "notice: AIServiceBackend default/svc2: spec.headerMutation.set[0].name x-ai-eg-model is ignored: "
                "x-ai-eg-* headers belong to the gateway");
    assert_line(n, yaml, "x-ai-eg-original-path]",
                "notice: AIServiceBackend default/svc2: spec.headerMutation.remove[0] x-ai-eg-original-path is ignored: "
                "x-ai-eg-* headers belong to the gateway");
    gw_config_unref(c);

    /* Resources alone: a route to nothing is fine for the API server, not for a run. */
    static const char lone[] = "apiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIGatewayRoute\nmetadata: {name: r}\n"
                               "spec: {rules: [{backendRefs: [{name: nowhere}]}]}\n";
    gw_buf_reset(&errors);
    assert_int_equal(gw_config_check_buffer("mem", lone, strlen(lone), GW_CHECK_RESOURCES_ONLY, &errors, NULL), GW_OK);
    assert_int_equal(errors.len, 0);
    assert_int_equal(gw_config_check_buffer("mem", lone, strlen(lone), 0, &errors, NULL), GW_EINVAL);
    assert_line(gw_buf_cstr(&errors), lone, "{name: nowhere}",
                "AIGatewayRoute default/r: spec.rules[0].backendRefs[0]: AIServiceBackend default/nowhere not found");

    /* validate: errors in file order, then the notices; GW_EINVAL. */
    static const char bad[] =
        "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: late-ref}\nspec: {endpoints: [{fqdn: {hostname: h}}]}\n"
        "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIGatewayRoute\nmetadata: {name: r}\n"
        "spec: {rules: [{backendRefs: [{name: nowhere}]}]}\n"
        "---\napiVersion: aigateway.envoyproxy.io/v1alpha1\nkind: AIServiceBackend\nmetadata: {name: s}\n"
        "spec: {schema: {name: Nope}, backendRef: {name: be, kind: Backend, group: gateway.envoyproxy.io}}\n"
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n";
    char path[] = "/tmp/aigw-test-validate-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    gw_buf_t report;
    gw_buf_init(&report, 1 << 16);
    assert_int_equal(gw_config_validate_file(path, &report), GW_EINVAL);
    const char *r = gw_buf_cstr(&report);
    const char *route = strstr(r, "AIGatewayRoute default/r: spec.rules[0].backendRefs[0]: AIServiceBackend default/nowhere not found");
    const char *schema = strstr(r, "AIServiceBackend default/s: spec.schema.name: Unsupported value: \"Nope\"");
    const char *be = strstr(r, "AIServiceBackend default/s: Backend default/be not found");
    const char *dep = strstr(r, "notice: Deployment default/d");
    assert_non_null(route);
    assert_non_null(schema);
    assert_non_null(be);
    assert_non_null(dep);
    assert_true(route < schema && schema < be && be < dep);
    gw_buf_reset(&report);
    static const char good[] = ROUTE_AND_BACKEND;
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
    close(fd);
    assert_int_equal(gw_config_validate_file(path, &report), GW_OK);
    unlink(path);
    gw_buf_reset(&report);
    assert_int_equal(gw_config_validate_file("/nonexistent/aigw.yaml", &report), GW_EINVAL);
    assert_string_equal(gw_buf_cstr(&report), "/nonexistent/aigw.yaml: cannot open: No such file or directory\n");
    gw_buf_free(&report);
    gw_buf_free(&errors);
    gw_buf_free(&notices);
}

int main(void)
{
    gw_log_level = GW_LOG_WARN;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_listener),
        cmocka_unit_test(test_backend_tls_ca),
        cmocka_unit_test(test_backend_traffic_policy),
        cmocka_unit_test(test_reference_grant),
        cmocka_unit_test(test_mcp_route),
        cmocka_unit_test(test_mcp_authorization),
        cmocka_unit_test(test_security_policy_rules),
        cmocka_unit_test(test_route_rules),
        cmocka_unit_test(test_notices_validate_and_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
