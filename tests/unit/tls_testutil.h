/* Test certificates made at run time with the OpenSSL API (no key is ever committed): a CA and a
 * server certificate it signs, valid for 127.0.0.1 and localhost, as PEM text. Shared by the TLS
 * client tests (test_upstream) and the TLS listener tests (test_http_server_tls). Static inline;
 * include after <cmocka.h>. */
#ifndef AIGW_TESTS_TLS_TESTUTIL_H
#define AIGW_TESTS_TLS_TESTUTIL_H

#include "core/alloc.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    char *ca_pem;   /* the CA certificate (what a client trusts) */
    char *cert_pem; /* the server certificate, signed by the CA */
    char *key_pem;  /* the server certificate's private key */
} tu_tls_certs_t;

static inline void tu_tls_add_ext_(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

/* A certificate for key, self-signed when issuer is NULL. */
static inline X509 *tu_tls_make_cert(EVP_PKEY *key, EVP_PKEY *issuer_key, X509 *issuer, const char *cn, long serial,
                                     bool ca)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (ca) {
        tu_tls_add_ext_(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        tu_tls_add_ext_(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
        tu_tls_add_ext_(x, &ctx, NID_subject_key_identifier, "hash");
    } else {
        tu_tls_add_ext_(x, &ctx, NID_basic_constraints, "CA:FALSE");
        tu_tls_add_ext_(x, &ctx, NID_key_usage, "critical,digitalSignature");
        tu_tls_add_ext_(x, &ctx, NID_ext_key_usage, "serverAuth");
        tu_tls_add_ext_(x, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    }
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

/* The BIO's bytes as a NUL-terminated string (caller frees); the BIO is freed. */
static inline char *tu_tls_bio_str_(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = gw_strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static inline char *tu_tls_x509_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    PEM_write_bio_X509(b, x);
    return tu_tls_bio_str_(b);
}

/* A fresh CA (P-256) and a server certificate named leaf_cn with this serial. Each call makes an
 * unrelated CA, so a second call gives "another CA" for untrusted-peer tests. */
static inline void tu_tls_make_certs(tu_tls_certs_t *out, const char *leaf_cn, long serial)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(ca_key);
    assert_non_null(key);
    /* a CA name of its own: a client trusting another test CA must fail on the issuer, not on a
     * signature from a same-named CA */
    char ca_cn[128];
    snprintf(ca_cn, sizeof(ca_cn), "aigw test CA for %s", leaf_cn);
    X509 *ca = tu_tls_make_cert(ca_key, ca_key, NULL, ca_cn, 1, true);
    X509 *leaf = tu_tls_make_cert(key, ca_key, ca, leaf_cn, serial, false);
    out->ca_pem = tu_tls_x509_pem(ca);
    out->cert_pem = tu_tls_x509_pem(leaf);
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    out->key_pem = tu_tls_bio_str_(b);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
}

static inline void tu_tls_free_certs(tu_tls_certs_t *c)
{
    free(c->ca_pem);
    free(c->cert_pem);
    free(c->key_pem);
    c->ca_pem = c->cert_pem = c->key_pem = NULL;
}

#endif
