/* TLS over OpenSSL memory BIOs (see tls.h). Every failure is reduced to a short static string
 * and the thread's OpenSSL error queue is emptied at once, so one connection's errors never show
 * up as another's on the same worker. */
#include "net/tls.h"

#include "core/alloc.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct gw_tls_ctx_s {
    SSL_CTX *ssl_ctx;
    bool server;
    atomic_int refs;
};

struct gw_tls_conn_s {
    SSL *ssl;
    BIO *rbio; /* peer -> TLS (ciphertext we were fed) */
    BIO *wbio; /* TLS -> peer (ciphertext to send) */
    const char *err;
    bool verify_failed;
    bool hs_done;
};

/* Longest DNS name plus NUL; IP literals are shorter. */
#define MAX_NAME 254
/* A PEM file larger than this is not a certificate chain or a key. */
#define MAX_PEM_FILE (1024 * 1024)
/* Memory BIOs keep the capacity they grew to; beyond about one record's worth, trimming an idle
 * connection gives it back. */
#define TRIM_ABOVE (17 * 1024)

static const unsigned char alpn_h1[] = "\x08http/1.1";

static void set_err(char *err, size_t err_len, const char *what)
{
    if (err == NULL || err_len == 0)
        return;
    unsigned long code = ERR_peek_last_error();
    const char *why = code ? ERR_reason_error_string(code) : NULL;
    snprintf(err, err_len, "%s%s%s", what, why ? ": " : "", why ? why : "");
}

static SSL_CTX *ctx_common(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* Idle keep-alive connections then hold no record buffers (about 34 KiB each). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

gw_tls_ctx_t *gw_tls_ctx_new_client(const char *ca_file, char *err, size_t err_len)
{
    gw_tls_ctx_t *t = NULL;
    ERR_clear_error();
    SSL_CTX *ctx = ctx_common(TLS_client_method());
    if (ctx == NULL) {
        set_err(err, err_len, "cannot create TLS client context");
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file && ca_file[0]) {
        if (SSL_CTX_load_verify_file(ctx, ca_file) != 1) {
            set_err(err, err_len, "cannot load CA file");
            goto out;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        set_err(err, err_len, "cannot load the system CA store");
        goto out;
    }
    if (SSL_CTX_set_alpn_protos(ctx, alpn_h1, sizeof(alpn_h1) - 1) != 0) {
        set_err(err, err_len, "cannot set ALPN");
        goto out;
    }
    t = gw_calloc(1, sizeof(*t));
    t->ssl_ctx = ctx;
    atomic_init(&t->refs, 1);
    ctx = NULL;
out:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return t;
}

gw_tls_ctx_t *gw_tls_ctx_new_client_pem(gw_str_t ca_pem, char *err, size_t err_len)
{
    gw_tls_ctx_t *t = NULL;
    BIO *bio = NULL;
    X509 *x = NULL;
    size_t loaded = 0;
    ERR_clear_error();
    SSL_CTX *ctx = ctx_common(TLS_client_method());
    if (ctx == NULL) {
        set_err(err, err_len, "cannot create TLS client context");
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_pem.len == 0 || ca_pem.len > INT32_MAX) {
        set_err(err, err_len, "empty CA bundle");
        goto out;
    }
    bio = BIO_new_mem_buf(ca_pem.base, (int)ca_pem.len);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) == 1)
            loaded++;
        X509_free(x);
        x = NULL;
    }
    if (loaded == 0) {
        set_err(err, err_len, "no certificate in the CA bundle");
        goto out;
    }
    if (SSL_CTX_set_alpn_protos(ctx, alpn_h1, sizeof(alpn_h1) - 1) != 0) {
        set_err(err, err_len, "cannot set ALPN");
        goto out;
    }
    t = gw_calloc(1, sizeof(*t));
    t->ssl_ctx = ctx;
    atomic_init(&t->refs, 1);
    ctx = NULL;
out:
    BIO_free(bio);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return t;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    for (unsigned i = 0; i < inlen;) {
        unsigned l = in[i];
        if (i + 1 + l > inlen)
            break;
        if (l == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + l;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

gw_tls_ctx_t *gw_tls_ctx_new_server(gw_str_t cert_pem, gw_str_t key_pem, char *err, size_t err_len)
{
    gw_tls_ctx_t *t = NULL;
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    ERR_clear_error();
    SSL_CTX *ctx = ctx_common(TLS_server_method());
    if (ctx == NULL) {
        set_err(err, err_len, "cannot create TLS server context");
        goto out;
    }
    if (cert_pem.len == 0 || cert_pem.len > INT_MAX || key_pem.len == 0 || key_pem.len > INT_MAX) {
        set_err(err, err_len, "missing certificate or key");
        goto out;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    bio = BIO_new_mem_buf(cert_pem.base, (int)cert_pem.len);
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
        set_err(err, err_len, "cannot load certificate");
        goto out;
    }
    X509_free(x);
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
            set_err(err, err_len, "cannot load certificate chain");
            goto out;
        }
        x = NULL; /* owned by the context now */
    }
    ERR_clear_error(); /* the chain loop ends on a "no start line" error */
    BIO_free(bio);
    bio = BIO_new_mem_buf(key_pem.base, (int)key_pem.len);
    key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (key == NULL || SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, err_len, "cannot load private key");
        goto out;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    /* Every worker makes its connections from this one context: OpenSSL's stateful session cache
     * would be a lock taken on each TLS 1.2 handshake (and a periodic sweep under it). Tickets
     * resume sessions (1.2 and 1.3) with no shared mutable state. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    t = gw_calloc(1, sizeof(*t));
    t->ssl_ctx = ctx;
    t->server = true;
    atomic_init(&t->refs, 1);
    ctx = NULL;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    BIO_free(bio);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return t;
}

/* Reads a whole file of at most MAX_PEM_FILE bytes; the caller frees (cleansing a key first). */
static char *read_pem_file(const char *path, size_t *len, const char *what, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (err && err_len)
            snprintf(err, err_len, "cannot open %s file %s: %s", what, path, strerror(errno));
        return NULL;
    }
    size_t cap = 16 * 1024, n = 0;
    char *buf = gw_malloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_PEM_FILE) {
                if (err && err_len)
                    snprintf(err, err_len, "%s file %s is %d bytes or larger", what, path, MAX_PEM_FILE);
                OPENSSL_cleanse(buf, n);
                free(buf);
                fclose(f);
                return NULL;
            }
            cap *= 2;
            buf = gw_realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        if (err && err_len)
            snprintf(err, err_len, "cannot read %s file %s", what, path);
        OPENSSL_cleanse(buf, n);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

gw_tls_ctx_t *gw_tls_ctx_new_server_files(const char *cert_file, const char *key_file, char *err, size_t err_len)
{
    size_t cert_len = 0, key_len = 0;
    gw_tls_ctx_t *t = NULL;
    char *key = NULL;
    char *cert = read_pem_file(cert_file, &cert_len, "certificate", err, err_len);
    if (cert == NULL)
        goto out;
    key = read_pem_file(key_file, &key_len, "key", err, err_len);
    if (key == NULL)
        goto out;
    t = gw_tls_ctx_new_server(gw_str(cert, cert_len), gw_str(key, key_len), err, err_len);
out:
    if (key) {
        OPENSSL_cleanse(key, key_len); /* the only copy outside OpenSSL's own key object */
        free(key);
    }
    free(cert);
    return t;
}

gw_tls_ctx_t *gw_tls_ctx_ref(gw_tls_ctx_t *ctx)
{
    if (ctx)
        atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void gw_tls_ctx_free(gw_tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

static BIO *input_bio_new(void)
{
    BIO *b = BIO_new(BIO_s_mem());
    /* An empty input BIO means "more bytes later", not end of stream. */
    if (b)
        BIO_set_mem_eof_return(b, -1);
    return b;
}

static gw_tls_conn_t *conn_new(gw_tls_ctx_t *ctx)
{
    SSL *ssl = SSL_new(ctx->ssl_ctx);
    BIO *rbio = input_bio_new();
    BIO *wbio = BIO_new(BIO_s_mem());
    if (ssl == NULL || rbio == NULL || wbio == NULL) {
        SSL_free(ssl);
        BIO_free(rbio);
        BIO_free(wbio);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(ssl, rbio, wbio);
    gw_tls_conn_t *c = gw_calloc(1, sizeof(*c));
    c->ssl = ssl;
    c->rbio = rbio;
    c->wbio = wbio;
    c->err = "";
    return c;
}

gw_tls_conn_t *gw_tls_conn_new_client(gw_tls_ctx_t *ctx, gw_str_t name)
{
    char host[MAX_NAME];
    if (ctx == NULL || ctx->server)
        return NULL;
    if (name.len >= 2 && name.base[0] == '[' && name.base[name.len - 1] == ']')
        name = gw_str(name.base + 1, name.len - 2);
    if (name.len == 0 || name.len >= sizeof(host) || memchr(name.base, '\0', name.len))
        return NULL;
    memcpy(host, name.base, name.len);
    host[name.len] = '\0';

    gw_tls_conn_t *c = conn_new(ctx);
    if (c == NULL)
        return NULL;
    SSL_set_connect_state(c->ssl);
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
        /* Not an IP literal: a DNS name, sent as SNI (RFC 6066 forbids SNI for addresses). */
        if (X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1 || SSL_set_tlsext_host_name(c->ssl, host) != 1) {
            gw_tls_conn_free(c);
            c = NULL;
        }
    }
    ERR_clear_error();
    return c;
}

gw_tls_conn_t *gw_tls_conn_new_server(gw_tls_ctx_t *ctx)
{
    if (ctx == NULL || !ctx->server)
        return NULL;
    gw_tls_conn_t *c = conn_new(ctx);
    if (c)
        SSL_set_accept_state(c->ssl);
    return c;
}

void gw_tls_conn_free(gw_tls_conn_t *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl); /* frees both BIOs */
    free(c);
}

void gw_tls_conn_feed(gw_tls_conn_t *c, const char *p, size_t n)
{
    while (n > 0) {
        int k = (int)GW_MIN(n, (size_t)INT_MAX);
        int w = BIO_write(c->rbio, p, k);
        if (w <= 0)
            break; /* a memory BIO only fails when out of memory */
        p += w;
        n -= (size_t)w;
    }
}

bool gw_tls_conn_has_input(const gw_tls_conn_t *c)
{
    return BIO_ctrl_pending(c->rbio) > 0 || SSL_has_pending(c->ssl);
}

bool gw_tls_conn_mid_record(const gw_tls_conn_t *c)
{
    /* SSL_has_pending sees a partial header; a complete header whose body is still awaited shows
     * only in the read state ("RB": reading the body). */
    return gw_tls_conn_has_input(c) || strcmp(SSL_rstate_string(c->ssl), "RB") == 0;
}

int gw_tls_conn_handshake(gw_tls_conn_t *c)
{
    if (c->hs_done)
        return GW_OK;
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->hs_done = true;
        return GW_OK;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return GW_AGAIN;
    long v = SSL_is_server(c->ssl) ? X509_V_OK : SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        c->verify_failed = true;
        c->err = X509_verify_cert_error_string(v);
    } else {
        unsigned long code = ERR_peek_last_error();
        const char *why = code ? ERR_reason_error_string(code) : NULL;
        c->err = why ? why : "tls handshake failed";
    }
    ERR_clear_error();
    return GW_ERROR;
}

bool gw_tls_conn_handshake_done(const gw_tls_conn_t *c)
{
    return c->hs_done;
}

int gw_tls_conn_read(gw_tls_conn_t *c, char *buf, size_t cap, size_t *n)
{
    *n = 0;
    ERR_clear_error();
    size_t got = 0;
    int rc = SSL_read_ex(c->ssl, buf, cap, &got);
    if (rc == 1 && got > 0) {
        *n = got;
        return GW_OK;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return GW_AGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return GW_DONE;
    unsigned long code = ERR_peek_last_error();
    const char *why = code ? ERR_reason_error_string(code) : NULL;
    c->err = why ? why : "tls read failed";
    ERR_clear_error();
    return GW_ERROR;
}

int gw_tls_conn_write(gw_tls_conn_t *c, const char *p, size_t n)
{
    if (n == 0)
        return GW_OK;
    if (!c->hs_done)
        return GW_ERROR;
    ERR_clear_error();
    size_t w = 0;
    if (SSL_write_ex(c->ssl, p, n, &w) != 1 || w != n) {
        c->err = "tls write failed";
        ERR_clear_error();
        return GW_ERROR;
    }
    return GW_OK;
}

void gw_tls_conn_shutdown(gw_tls_conn_t *c)
{
    if (c->hs_done)
        SSL_shutdown(c->ssl);
    ERR_clear_error();
}

size_t gw_tls_conn_pending(const gw_tls_conn_t *c)
{
    return BIO_ctrl_pending(c->wbio);
}

size_t gw_tls_conn_take(gw_tls_conn_t *c, char *out, size_t cap)
{
    int k = (int)GW_MIN(cap, (size_t)INT_MAX);
    if (k == 0)
        return 0;
    int r = BIO_read(c->wbio, out, k);
    return r > 0 ? (size_t)r : 0;
}

static size_t mem_bio_capacity(BIO *b)
{
    BUF_MEM *m = NULL;
    BIO_get_mem_ptr(b, &m);
    return m ? m->max : 0;
}

void gw_tls_conn_trim(gw_tls_conn_t *c)
{
    if (!c->hs_done || BIO_ctrl_pending(c->rbio) > 0 || BIO_ctrl_pending(c->wbio) > 0)
        return;
    /* SSL_set0_* free the replaced BIO; on allocation failure the old one simply stays. */
    if (mem_bio_capacity(c->rbio) > TRIM_ABOVE) {
        BIO *b = input_bio_new();
        if (b) {
            SSL_set0_rbio(c->ssl, b);
            c->rbio = b;
        }
    }
    if (mem_bio_capacity(c->wbio) > TRIM_ABOVE) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b) {
            SSL_set0_wbio(c->ssl, b);
            c->wbio = b;
        }
    }
    ERR_clear_error();
}

const char *gw_tls_conn_error(const gw_tls_conn_t *c)
{
    return c->err;
}

bool gw_tls_conn_verify_failed(const gw_tls_conn_t *c)
{
    return c->verify_failed;
}
