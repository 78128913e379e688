/* Encrypted stateless MCP session ids (session.h): HKDF-SHA256 keys derived once per seed, AES-256-GCM
 * seal/open with a random nonce per id (through cipher contexts each thread keys once), a
 * length-prefixed plaintext record, and checks of route, subject and age after authentication. */
#include "mcp/session.h"

#include "codec/base64.h"
#include "core/alloc.h"
#include "core/log.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define WIRE_VERSION 1
#define PLAIN_FORMAT 1
#define KEY_LEN 32
#define KID_LEN 8
#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (1 + KID_LEN + NONCE_LEN)
#define MAX_RAW (GW_MCP_SESSION_MAX_PLAINTEXT + GW_MCP_SESSION_OVERHEAD)
/* Smallest plaintext: format, issued_at, three lengths and the backend count. */
#define PLAIN_FIXED (1 + 8 + 2 + 2 + 1 + 2)

static const char purpose[] = "aigw mcp session v1";      /* HKDF info and AAD prefix */
static const char hkdf_salt[] = "aigw mcp session salt v1";

/* What an opened session's storage_ points at: the decrypted record, wiped on free. */
typedef struct {
    size_t len;
    unsigned char data[];
} plainbuf_t;

typedef struct {
    unsigned char key[KEY_LEN]; /* SECRET */
    unsigned char kid[KID_LEN];
} skey_t;

struct gw_mcp_session_keyring_s {
    atomic_int refcount;
    uint64_t gen;       /* unique to this keyring, never reused: names it in the thread caches */
    EVP_CIPHER *cipher; /* fetched once: the implicit fetch in EVP_aes_256_gcm() costs 5x per call */
    size_t n;
    skey_t keys[GW_MCP_SESSION_MAX_SEEDS];
};

static atomic_uint_fast64_t last_gen;       /* the last keyring generation handed out */
static atomic_uint_fast64_t keyrings_freed; /* how many keyrings were freed so far */

const char *gw_mcp_session_strerror(int status)
{
    switch (status) {
    case GW_OK: return "ok";
    case GW_EINVAL: return "invalid argument";
    case GW_TOOBIG: return "session too large";
    case GW_MCP_SESSION_EMALFORMED: return "malformed session id";
    case GW_MCP_SESSION_EUNKNOWN_KEY: return "session sealed with an unknown key";
    case GW_MCP_SESSION_ETAMPERED: return "session authentication failed";
    case GW_MCP_SESSION_EEXPIRED: return "session expired";
    case GW_MCP_SESSION_ESUBJECT: return "session bound to another subject";
    case GW_MCP_SESSION_EROUTE: return "session issued for another route";
    default: return "error";
    }
}

/* ---------------------------------------------------------------------------------------------
 * Keyring.
 */

static int derive(EVP_KDF *kdf, gw_str_t seed, skey_t *k)
{
    unsigned char okm[KEY_LEN + KID_LEN];
    char digest[] = "SHA256";
    int rc = GW_ERROR;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL)
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)seed.base, seed.len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)hkdf_salt, sizeof(hkdf_salt) - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)purpose, sizeof(purpose) - 1),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(kctx, okm, sizeof(okm), params) != 1)
        goto out;
    memcpy(k->key, okm, KEY_LEN);
    memcpy(k->kid, okm + KEY_LEN, KID_LEN);
    rc = GW_OK;
out:
    OPENSSL_cleanse(okm, sizeof(okm));
    EVP_KDF_CTX_free(kctx);
    return rc;
}

static void keyring_free(gw_mcp_session_keyring_t *kr)
{
    OPENSSL_cleanse(kr->keys, sizeof(kr->keys));
    EVP_CIPHER_free(kr->cipher);
    free(kr);
    /* Tells every thread to drop its contexts (which hold this keyring's key schedules) on its next
     * call; correctness does not depend on it, the generation does (see the thread caches). */
    atomic_fetch_add_explicit(&keyrings_freed, 1, memory_order_relaxed);
}

int gw_mcp_session_keyring_new(const gw_str_t *seeds, size_t n, gw_mcp_session_keyring_t **out)
{
    if (out == NULL)
        return GW_EINVAL;
    *out = NULL;
    if (seeds == NULL || n == 0 || n > GW_MCP_SESSION_MAX_SEEDS)
        return GW_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (seeds[i].base == NULL || seeds[i].len < GW_MCP_SESSION_SEED_MIN || seeds[i].len > GW_MCP_SESSION_SEED_MAX)
            return GW_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (gw_str_eq(seeds[i], seeds[j]))
                return GW_EINVAL;
    }

    int rc = GW_ERROR;
    EVP_KDF *kdf = NULL;
    gw_mcp_session_keyring_t *kr = gw_calloc(1, sizeof(*kr));
    ERR_set_mark();
    atomic_init(&kr->refcount, 1);
    kr->gen = atomic_fetch_add_explicit(&last_gen, 1, memory_order_relaxed) + 1;
    if ((kr->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL)
        goto out;
    if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (derive(kdf, seeds[i], &kr->keys[i]) != GW_OK)
            goto out;
        /* Two seeds with one key id would make open try the wrong key and call it tampering. */
        for (size_t j = 0; j < i; j++) {
            if (memcmp(kr->keys[i].kid, kr->keys[j].kid, KID_LEN) == 0) {
                rc = GW_EINVAL;
                goto out;
            }
        }
        kr->n = i + 1;
    }
    *out = kr;
    kr = NULL;
    rc = GW_OK;
out:
    ERR_pop_to_mark();
    EVP_KDF_free(kdf);
    if (kr != NULL)
        keyring_free(kr);
    return rc;
}

gw_mcp_session_keyring_t *gw_mcp_session_keyring_ref(gw_mcp_session_keyring_t *kr)
{
    if (kr != NULL)
        atomic_fetch_add_explicit(&kr->refcount, 1, memory_order_relaxed);
    return kr;
}

void gw_mcp_session_keyring_unref(gw_mcp_session_keyring_t *kr)
{
    if (kr == NULL)
        return;
    if (atomic_fetch_sub_explicit(&kr->refcount, 1, memory_order_acq_rel) == 1)
        keyring_free(kr);
}

/* ---------------------------------------------------------------------------------------------
 * Plaintext record.
 */

static bool slice_ok(gw_str_t s)
{
    return s.base != NULL || s.len == 0;
}

/* Size of the record for s, or 0 when a field is invalid (*rc says which failure). */
static size_t plain_size(const gw_mcp_session_t *s, int *rc)
{
    *rc = GW_EINVAL;
    if (s->issued_at < 0 || !slice_ok(s->route) || !slice_ok(s->subject) || !slice_ok(s->protocol_version) ||
        (s->n_backends > 0 && s->backends == NULL))
        return 0;
    *rc = GW_TOOBIG;
    if (s->route.len > GW_MCP_SESSION_MAX_ROUTE || s->subject.len > GW_MCP_SESSION_MAX_SUBJECT ||
        s->protocol_version.len > GW_MCP_SESSION_MAX_PROTOCOL || s->n_backends > GW_MCP_SESSION_MAX_BACKENDS)
        return 0;
    /* Each term is bounded by the limits above, so the sum cannot overflow. */
    size_t total = PLAIN_FIXED + s->route.len + s->subject.len + s->protocol_version.len;
    for (size_t i = 0; i < s->n_backends; i++) {
        const gw_mcp_session_backend_t *b = &s->backends[i];
        *rc = GW_EINVAL;
        if (b->name.len == 0 || b->name.base == NULL || !slice_ok(b->protocol_version) || !slice_ok(b->session_id))
            return 0;
        for (size_t j = 0; j < i; j++)
            if (gw_str_eq(b->name, s->backends[j].name))
                return 0;
        *rc = GW_TOOBIG;
        if (b->name.len > GW_MCP_SESSION_MAX_NAME || b->protocol_version.len > GW_MCP_SESSION_MAX_PROTOCOL ||
            b->session_id.len > GW_MCP_SESSION_MAX_BACKEND_SID)
            return 0;
        total += 1 + 1 + 2 + b->name.len + b->protocol_version.len + b->session_id.len;
    }
    if (total > GW_MCP_SESSION_MAX_PLAINTEXT)
        return 0;
    *rc = GW_OK;
    return total;
}

static unsigned char *put_bytes(unsigned char *p, gw_str_t s)
{
    if (s.len)
        memcpy(p, s.base, s.len);
    return p + s.len;
}

static unsigned char *put_u16_str(unsigned char *p, gw_str_t s)
{
    *p++ = (unsigned char)(s.len >> 8);
    *p++ = (unsigned char)s.len;
    return put_bytes(p, s);
}

static unsigned char *put_u8_str(unsigned char *p, gw_str_t s)
{
    *p++ = (unsigned char)s.len;
    return put_bytes(p, s);
}

static void plain_write(const gw_mcp_session_t *s, unsigned char *p)
{
    *p++ = PLAIN_FORMAT;
    uint64_t t = (uint64_t)s->issued_at;
    for (int i = 7; i >= 0; i--)
        *p++ = (unsigned char)(t >> (8 * i));
    p = put_u16_str(p, s->route);
    p = put_u16_str(p, s->subject);
    p = put_u8_str(p, s->protocol_version);
    *p++ = (unsigned char)(s->n_backends >> 8);
    *p++ = (unsigned char)s->n_backends;
    for (size_t i = 0; i < s->n_backends; i++) {
        const gw_mcp_session_backend_t *b = &s->backends[i];
        *p++ = (unsigned char)b->name.len;
        *p++ = (unsigned char)b->protocol_version.len;
        *p++ = (unsigned char)(b->session_id.len >> 8);
        *p++ = (unsigned char)b->session_id.len;
        p = put_bytes(p, b->name);
        p = put_bytes(p, b->protocol_version);
        p = put_bytes(p, b->session_id);
    }
}

typedef struct {
    const unsigned char *p, *end;
    bool bad;
} reader_t;

static unsigned rd_u8(reader_t *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static unsigned rd_u16(reader_t *r)
{
    unsigned hi = rd_u8(r);
    return hi << 8 | rd_u8(r);
}

static gw_str_t rd_bytes(reader_t *r, size_t n, size_t max)
{
    if (r->bad || n > max || n > (size_t)(r->end - r->p)) {
        r->bad = true;
        return GW_STR_NULL;
    }
    gw_str_t s = gw_str((const char *)r->p, n);
    r->p += n;
    return s;
}

/* Parses the record in plain[0..n) into s; the slices point into plain and backends is allocated.
 * The record is authentic by now, but its parser is still strict: a bug elsewhere must not become a
 * read out of bounds. */
static int plain_parse(const unsigned char *plain, size_t n, gw_mcp_session_t *s)
{
    reader_t r = {plain, plain + n, false};
    if (rd_u8(&r) != PLAIN_FORMAT)
        return GW_MCP_SESSION_EMALFORMED;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = t << 8 | rd_u8(&r);
    size_t route_len = rd_u16(&r);
    s->route = rd_bytes(&r, route_len, GW_MCP_SESSION_MAX_ROUTE);
    size_t subject_len = rd_u16(&r);
    s->subject = rd_bytes(&r, subject_len, GW_MCP_SESSION_MAX_SUBJECT);
    size_t proto_len = rd_u8(&r);
    s->protocol_version = rd_bytes(&r, proto_len, GW_MCP_SESSION_MAX_PROTOCOL);
    size_t nb = rd_u16(&r);
    if (r.bad || t > INT64_MAX || nb > GW_MCP_SESSION_MAX_BACKENDS)
        return GW_MCP_SESSION_EMALFORMED;
    s->issued_at = (int64_t)t;
    s->n_backends = nb;
    s->backends = nb ? gw_calloc(nb, sizeof(*s->backends)) : NULL;
    for (size_t i = 0; i < nb && !r.bad; i++) {
        gw_mcp_session_backend_t *b = &s->backends[i];
        size_t name_len = rd_u8(&r), pv_len = rd_u8(&r), sid_len = rd_u16(&r);
        if (name_len == 0)
            r.bad = true;
        b->name = rd_bytes(&r, name_len, GW_MCP_SESSION_MAX_NAME);
        b->protocol_version = rd_bytes(&r, pv_len, GW_MCP_SESSION_MAX_PROTOCOL);
        b->session_id = rd_bytes(&r, sid_len, GW_MCP_SESSION_MAX_BACKEND_SID);
    }
    if (r.bad || r.p != r.end) {
        free(s->backends);
        s->backends = NULL;
        return GW_MCP_SESSION_EMALFORMED;
    }
    return GW_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Per-thread cipher contexts.
 *
 * Making, keying and freeing an AES-256-GCM context on every call (allocation, provider context, AES
 * key schedule, GHASH table, then the wipe) cost a fifth of an open and more with cold caches
 * (docs/benchmarks.md, MCP). So each thread keeps, per keyring and key, a context keyed once (about
 * 1 KiB), and a call only gives it the nonce: EVP_CipherInit_ex2 with cipher and key NULL keeps the
 * key schedule (a non-NULL cipher would reset the whole context), and the new IV restarts the GCM
 * state (counter, GHASH, AAD, lengths) before the first update; test_ctx_reinit checks this on the
 * OpenSSL in use. The keyring stays immutable and shared by all threads.
 *
 * A context is found by its keyring's generation, never by its address: a keyring freed and another
 * allocated at the same place share no context. After any keyring is freed, each thread drops all its
 * contexts on its next call, so no key schedule outlives its keyring for longer than a thread's idle
 * time; the rest go at thread exit (the key's destructor). Contexts are freed with
 * EVP_CIPHER_CTX_free, which wipes the key schedule.
 */

#define CACHE_KEYRINGS 4 /* a gateway uses one keyring at a time; a reload briefly two */

typedef struct {
    uint64_t gen;                                   /* the keyring's generation; 0 = unused */
    EVP_CIPHER_CTX *seal;                           /* keys[0], encrypting */
    EVP_CIPHER_CTX *open[GW_MCP_SESSION_MAX_SEEDS]; /* keys[i], decrypting */
} ctx_slot_t;

typedef struct {
    uint_fast64_t freed_seen; /* keyrings_freed when the slots were last emptied */
    unsigned next_victim;
    ctx_slot_t slots[CACHE_KEYRINGS];
} ctx_cache_t;

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;

static void slot_clear(ctx_slot_t *sl)
{
    EVP_CIPHER_CTX_free(sl->seal);
    for (size_t i = 0; i < GW_MCP_SESSION_MAX_SEEDS; i++)
        EVP_CIPHER_CTX_free(sl->open[i]);
    memset(sl, 0, sizeof(*sl));
}

static void cache_clear(ctx_cache_t *c)
{
    for (size_t i = 0; i < CACHE_KEYRINGS; i++)
        slot_clear(&c->slots[i]);
}

static void cache_destroy(void *p)
{
    cache_clear(p);
    free(p);
}

static void cache_key_create(void)
{
    if (pthread_key_create(&cache_key, cache_destroy) != 0) {
        gw_log_error("mcp session: cannot create a thread-specific key");
        abort();
    }
}

static ctx_cache_t *thread_cache(void)
{
    pthread_once(&cache_once, cache_key_create);
    ctx_cache_t *c = pthread_getspecific(cache_key);
    if (c == NULL) {
        c = gw_calloc(1, sizeof(*c));
        if (pthread_setspecific(cache_key, c) != 0) {
            gw_log_error("mcp session: cannot set a thread-specific value");
            abort();
        }
    }
    uint_fast64_t freed = atomic_load_explicit(&keyrings_freed, memory_order_relaxed);
    if (freed != c->freed_seen) {
        cache_clear(c);
        c->freed_seen = freed;
    }
    return c;
}

/* Where this thread keeps the context for key i of kr (i == 0 and enc for sealing): the slot of
 * kr's generation, taken over from the least recently claimed keyring when there is none. */
static EVP_CIPHER_CTX **ctx_slot(const gw_mcp_session_keyring_t *kr, size_t i, bool enc)
{
    ctx_cache_t *c = thread_cache();
    ctx_slot_t *sl = NULL;
    for (size_t j = 0; j < CACHE_KEYRINGS && sl == NULL; j++)
        if (c->slots[j].gen == kr->gen)
            sl = &c->slots[j];
    for (size_t j = 0; j < CACHE_KEYRINGS && sl == NULL; j++)
        if (c->slots[j].gen == 0)
            sl = &c->slots[j];
    if (sl == NULL) {
        sl = &c->slots[c->next_victim];
        c->next_victim = (c->next_victim + 1) % CACHE_KEYRINGS;
        slot_clear(sl);
    }
    sl->gen = kr->gen;
    return enc ? &sl->seal : &sl->open[i];
}

/* This thread's context for key i of kr, ready for one message under nonce: keyed on first use,
 * then only given the nonce. Returns where the cache holds it (*slot is the context), NULL when
 * OpenSSL fails. Nothing else may use this thread's cache before ctx_done(slot, ...). */
static EVP_CIPHER_CTX **ctx_get(const gw_mcp_session_keyring_t *kr, size_t i, bool enc, const unsigned char *nonce)
{
    EVP_CIPHER_CTX **slot = ctx_slot(kr, i, enc);
    if (*slot == NULL) {
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        if (ctx == NULL)
            return NULL;
        if (EVP_CipherInit_ex2(ctx, kr->cipher, kr->keys[i].key, NULL, enc, NULL) != 1) {
            EVP_CIPHER_CTX_free(ctx);
            return NULL;
        }
        *slot = ctx;
    }
    /* Cipher and key NULL: the same key schedule, a fresh GCM state for this nonce. 12 bytes is
     * GCM's default IV length, so there is no length to set. */
    if (EVP_CipherInit_ex2(*slot, NULL, NULL, nonce, enc, NULL) != 1) {
        EVP_CIPHER_CTX_free(*slot);
        *slot = NULL;
        return NULL;
    }
    return slot;
}

/* After the call that used ctx_get's context (slot may be NULL): an OpenSSL failure (GW_ERROR) may
 * have left the context in any state, so it is dropped and made again next time; any other outcome,
 * a failed tag check included, leaves it ready for its next nonce. */
static void ctx_done(EVP_CIPHER_CTX **slot, int rc)
{
    if (slot == NULL || rc != GW_ERROR)
        return;
    EVP_CIPHER_CTX_free(*slot);
    *slot = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Seal and open.
 */

static int set_aad(EVP_CIPHER_CTX *ctx, const unsigned char *header, bool enc)
{
    int outl;
    /* The purpose string with its NUL terminator, so no purpose can be a prefix of another. */
    if (enc)
        return EVP_EncryptUpdate(ctx, NULL, &outl, (const unsigned char *)purpose, sizeof(purpose)) == 1 &&
               EVP_EncryptUpdate(ctx, NULL, &outl, header, HEADER_LEN) == 1;
    return EVP_DecryptUpdate(ctx, NULL, &outl, (const unsigned char *)purpose, sizeof(purpose)) == 1 &&
           EVP_DecryptUpdate(ctx, NULL, &outl, header, HEADER_LEN) == 1;
}

int gw_mcp_session_seal(const gw_mcp_session_keyring_t *kr, const gw_mcp_session_t *s, gw_buf_t *out)
{
    if (kr == NULL || s == NULL || out == NULL)
        return GW_EINVAL;
    int rc;
    size_t plen = plain_size(s, &rc);
    if (rc != GW_OK)
        return rc;
    size_t raw_len = HEADER_LEN + plen + TAG_LEN;
    if (gw_base64_encoded_len(GW_BASE64_URL, raw_len) > out->max - GW_MIN(out->max, out->len))
        return GW_TOOBIG;

    const skey_t *k = &kr->keys[0];
    unsigned char *plain = gw_malloc(plen), *raw = gw_malloc(raw_len);
    ERR_set_mark(); /* leave no OpenSSL error behind for the TLS code of this thread */
    EVP_CIPHER_CTX **slot = NULL, *ctx;
    int outl;
    rc = GW_ERROR;
    plain_write(s, plain);
    raw[0] = WIRE_VERSION;
    memcpy(raw + 1, k->kid, KID_LEN);
    if (RAND_bytes(raw + 1 + KID_LEN, NONCE_LEN) != 1)
        goto out;
    if ((slot = ctx_get(kr, 0, true, raw + 1 + KID_LEN)) == NULL)
        goto out;
    ctx = *slot;
    if (!set_aad(ctx, raw, true))
        goto out;
    if (EVP_EncryptUpdate(ctx, raw + HEADER_LEN, &outl, plain, (int)plen) != 1 || (size_t)outl != plen)
        goto out;
    if (EVP_EncryptFinal_ex(ctx, raw + HEADER_LEN + plen, &outl) != 1 || outl != 0)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + HEADER_LEN + plen) != 1)
        goto out;
    rc = gw_base64_encode(GW_BASE64_URL, raw, raw_len, out);
out:
    ERR_pop_to_mark();
    ctx_done(slot, rc);
    OPENSSL_cleanse(plain, plen);
    free(plain);
    free(raw); /* ciphertext only: nothing to wipe */
    return rc;
}

/* issued_at within [now - max_age, now + skew], free of overflow whatever now is. */
static bool age_ok(int64_t issued_at, int64_t now, int64_t max_age)
{
    int64_t age;
    if (__builtin_sub_overflow(now, issued_at, &age))
        return false; /* issued_at >= 0, so only a far-negative now overflows: issued in the future */
    return age >= -(int64_t)GW_MCP_SESSION_CLOCK_SKEW && age < max_age;
}

/* Equal-length comparison without early exit; the length itself is not secret. */
static bool ct_eq(gw_str_t a, gw_str_t b)
{
    if (a.len != b.len)
        return false;
    return a.len == 0 || CRYPTO_memcmp(a.base, b.base, a.len) == 0;
}

int gw_mcp_session_open(const gw_mcp_session_keyring_t *kr, gw_str_t id, const gw_mcp_session_expect_t *exp,
                        gw_mcp_session_t *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (kr == NULL || exp == NULL || out == NULL || exp->max_age <= 0 || !slice_ok(exp->route) ||
        !slice_ok(exp->subject))
        return GW_EINVAL;
    if (id.base == NULL || id.len < 4 || id.len > GW_MCP_SESSION_MAX_ID_LEN)
        return GW_MCP_SESSION_EMALFORMED;
    /* The decoder also takes the padded form; only the unpadded one is ever issued. Together with
     * its canonical decoding, every id has exactly one spelling. */
    if (memchr(id.base, '=', id.len) != NULL)
        return GW_MCP_SESSION_EMALFORMED;

    int rc = GW_MCP_SESSION_EMALFORMED, outl;
    plainbuf_t *pb = NULL;
    unsigned char *plain = NULL;
    size_t plen = 0;
    EVP_CIPHER_CTX **slot = NULL, *ctx;
    gw_buf_t raw;
    gw_buf_init(&raw, MAX_RAW);
    ERR_set_mark();
    if (gw_base64_decode(GW_BASE64_URL, id.base, id.len, &raw) != GW_OK)
        goto out;
    const unsigned char *r = (const unsigned char *)raw.data;
    if (raw.len < HEADER_LEN + PLAIN_FIXED + TAG_LEN || r[0] != WIRE_VERSION)
        goto out;

    size_t ki = kr->n;
    for (size_t i = 0; i < kr->n && ki == kr->n; i++)
        if (memcmp(kr->keys[i].kid, r + 1, KID_LEN) == 0)
            ki = i;
    rc = GW_MCP_SESSION_EUNKNOWN_KEY;
    if (ki == kr->n)
        goto out;

    rc = GW_ERROR;
    plen = raw.len - HEADER_LEN - TAG_LEN;
    pb = gw_malloc(sizeof(*pb) + plen);
    pb->len = plen;
    plain = pb->data;
    if ((slot = ctx_get(kr, ki, false, r + 1 + KID_LEN)) == NULL)
        goto out;
    ctx = *slot;
    if (!set_aad(ctx, r, false))
        goto out;
    if (EVP_DecryptUpdate(ctx, plain, &outl, r + HEADER_LEN, (int)plen) != 1 || (size_t)outl != plen)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(r + HEADER_LEN + plen)) != 1)
        goto out;
    /* OpenSSL compares the tag in constant time. Nothing of the plaintext is looked at before. */
    if (EVP_DecryptFinal_ex(ctx, plain + plen, &outl) != 1) {
        rc = GW_MCP_SESSION_ETAMPERED;
        goto out;
    }

    if ((rc = plain_parse(plain, plen, out)) != GW_OK) {
        memset(out, 0, sizeof(*out)); /* no slice into the plaintext about to be wiped */
        goto out;
    }
    if (!ct_eq(out->route, exp->route)) {
        rc = GW_MCP_SESSION_EROUTE;
    } else if (!ct_eq(out->subject, exp->subject)) {
        rc = GW_MCP_SESSION_ESUBJECT;
    } else if (!age_ok(out->issued_at, exp->now, exp->max_age)) {
        rc = GW_MCP_SESSION_EEXPIRED;
    } else {
        out->storage_ = pb;
        pb = NULL; /* owned by out now */
        rc = GW_OK;
    }
    if (rc != GW_OK) {
        free(out->backends);
        memset(out, 0, sizeof(*out));
    }
out:
    ERR_pop_to_mark();
    ctx_done(slot, rc);
    if (pb != NULL) {
        OPENSSL_cleanse(pb->data, pb->len);
        free(pb);
    }
    gw_buf_free(&raw);
    return rc;
}

void gw_mcp_session_free(gw_mcp_session_t *s)
{
    if (s == NULL)
        return;
    if (s->storage_ != NULL) {
        plainbuf_t *pb = s->storage_;
        OPENSSL_cleanse(pb->data, pb->len);
        free(pb);
        free(s->backends);
    }
    memset(s, 0, sizeof(*s));
}
