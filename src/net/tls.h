/* TLS through OpenSSL 3 memory BIOs: the caller moves ciphertext between its socket and these
 * functions, so one wrapper serves libuv streams as a client (upstreams: SNI, peer verification,
 * host name or IP check) and as a server (listeners with a certificate and key). TLS 1.2 minimum.
 * A connection is touched by one thread only; contexts are immutable once made and may be shared
 * between threads (refcounted). */
#ifndef GW_NET_TLS_H
#define GW_NET_TLS_H

#include "core/gw.h"

typedef struct gw_tls_ctx_s gw_tls_ctx_t;
typedef struct gw_tls_conn_s gw_tls_conn_t;

/* Client context: peers are verified against ca_file (a PEM bundle) or, when ca_file is NULL, the
 * system store (OpenSSL default paths, which honour SSL_CERT_FILE / SSL_CERT_DIR); ALPN offers
 * http/1.1. NULL on failure with a reason in err (may be NULL). Free with gw_tls_ctx_free. */
gw_tls_ctx_t *gw_tls_ctx_new_client(const char *ca_file, char *err, size_t err_len);
/* The same with the trusted CAs given as PEM text (BackendTLSPolicy caCertificateRefs): only those
 * CAs are trusted. Parses memory only, so it may run on a worker. */
gw_tls_ctx_t *gw_tls_ctx_new_client_pem(gw_str_t ca_pem, char *err, size_t err_len);
/* Server context from PEM bytes (a Secret's tls.crt / tls.key or a file's contents): cert_pem is
 * the leaf certificate followed by any intermediates. ALPN selects http/1.1 when offered and
 * nothing else (no other protocol is ever acknowledged). Resumption by session tickets only: no
 * server-side session cache, so workers sharing the context share no lock on the handshake path.
 * Refcount 1. */
gw_tls_ctx_t *gw_tls_ctx_new_server(gw_str_t cert_pem, gw_str_t key_pem, char *err, size_t err_len);
/* The same from PEM files (e.g. `aigw run --tls-cert FILE --tls-key FILE`); each file at most
 * 1 MiB (exclusive). Blocking file I/O: call it on the main thread, never on a worker. */
gw_tls_ctx_t *gw_tls_ctx_new_server_files(const char *cert_file, const char *key_file, char *err, size_t err_len);
/* Takes one more reference (any thread); returns ctx. NULL stays NULL. */
gw_tls_ctx_t *gw_tls_ctx_ref(gw_tls_ctx_t *ctx);
/* Drops one reference (any thread); the context goes with the last one. Connections made from the
 * context keep what they need: dropping it while they live is safe. NULL is a no-op. */
void gw_tls_ctx_free(gw_tls_ctx_t *ctx);

/* Client connection. name is both the SNI and the identity the certificate must prove: a DNS name
 * (sent as SNI, matched against the certificate's DNS names) or an IP literal (no SNI, matched
 * against its IP addresses). NULL when name is empty or too long. */
gw_tls_conn_t *gw_tls_conn_new_client(gw_tls_ctx_t *ctx, gw_str_t name);
gw_tls_conn_t *gw_tls_conn_new_server(gw_tls_ctx_t *ctx);
void gw_tls_conn_free(gw_tls_conn_t *c);

/* Hands n bytes of ciphertext received from the peer to TLS (copied). */
void gw_tls_conn_feed(gw_tls_conn_t *c, const char *p, size_t n);
/* True when fed ciphertext or decrypted bytes wait to be read. */
bool gw_tls_conn_has_input(const gw_tls_conn_t *c);
/* True when part of a record has arrived and the rest is awaited (a server's timeouts treat it as
 * a request that has begun). */
bool gw_tls_conn_mid_record(const gw_tls_conn_t *c);

/* Advances the handshake. GW_OK: done. GW_AGAIN: send the pending output, then feed more peer
 * bytes. GW_ERROR: failed (gw_tls_conn_error says why; a client that could not verify the peer
 * gets a verification reason). */
int gw_tls_conn_handshake(gw_tls_conn_t *c);
bool gw_tls_conn_handshake_done(const gw_tls_conn_t *c);

/* Decrypts up to cap bytes into buf. GW_OK with *n > 0; GW_AGAIN: needs more ciphertext; GW_DONE:
 * the peer sent close_notify; GW_ERROR: the stream is broken. Check the pending output afterwards
 * (TLS may have to answer, e.g. a key update). */
int gw_tls_conn_read(gw_tls_conn_t *c, char *buf, size_t cap, size_t *n);
/* Encrypts all n plaintext bytes into the pending output (handshake must be done). GW_OK or
 * GW_ERROR. */
int gw_tls_conn_write(gw_tls_conn_t *c, const char *p, size_t n);
/* Queues a close_notify alert into the pending output. */
void gw_tls_conn_shutdown(gw_tls_conn_t *c);

/* Bytes of ciphertext waiting to be sent to the peer. */
size_t gw_tls_conn_pending(const gw_tls_conn_t *c);
/* Moves up to cap bytes of that ciphertext into out; returns how many. */
size_t gw_tls_conn_take(gw_tls_conn_t *c, char *out, size_t cap);

/* For a connection about to sit idle with nothing pending either way: gives back the memory its
 * ciphertext buffers grew to during large transfers (OpenSSL's memory BIOs never shrink). */
void gw_tls_conn_trim(gw_tls_conn_t *c);

/* Short static description of the last failure ("" when none). */
const char *gw_tls_conn_error(const gw_tls_conn_t *c);
/* Whether the last handshake failure was the peer's certificate not verifying. */
bool gw_tls_conn_verify_failed(const gw_tls_conn_t *c);

#endif
