/* AWS SigV4 header signing (sigv4.h): canonical request, string to sign, signing key and signature,
 * on OpenSSL's SHA-256. HMAC is built here on one reused digest context (RFC 2104), which avoids
 * OpenSSL 3's per-call MAC fetch; secrets and keys are wiped from every buffer that held them. */
#include "auth/sigv4.h"

#include "core/alloc.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define SHA256_LEN 32
#define SHA256_BLOCK 64
#define MAX_CANONICAL (1u << 20)
#define MAX_HEADERS 512
#define STACK_HEADERS 32

static const char hexdigits[] = "0123456789abcdef";
static const char HEXDIGITS[] = "0123456789ABCDEF";

/* ---------------------------------------------------------------------------------------------
 * Digests and HMAC.
 */

static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Fetched once: the implicit fetch behind EVP_sha256() costs a method-store lookup per digest. */
static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, fetch_sha256);
    return sha256_fetched ? sha256_fetched : EVP_sha256();
}

typedef struct {
    EVP_MD_CTX *ctx;
    const EVP_MD *md;
    bool ok; /* false once any OpenSSL call failed */
} hasher_t;

static bool hasher_init(hasher_t *h)
{
    h->md = sha256();
    h->ctx = EVP_MD_CTX_new();
    h->ok = h->ctx != NULL;
    return h->ok;
}

static void hasher_free(hasher_t *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

static void h_begin(hasher_t *h)
{
    if (h->ok && EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1)
        h->ok = false;
}

static void h_update(hasher_t *h, const void *p, size_t n)
{
    if (h->ok && n > 0 && EVP_DigestUpdate(h->ctx, p, n) != 1)
        h->ok = false;
}

static void h_end(hasher_t *h, uint8_t out[SHA256_LEN])
{
    unsigned int len = 0;
    if (h->ok && (EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != SHA256_LEN))
        h->ok = false;
    if (!h->ok)
        memset(out, 0, SHA256_LEN);
}

static void sha256_of(hasher_t *h, const void *p, size_t n, uint8_t out[SHA256_LEN])
{
    h_begin(h);
    h_update(h, p, n);
    h_end(h, out);
}

/* HMAC-SHA256 with the key given as prefix || key (so "AWS4" + secret needs no copy). */
static void hmac2(hasher_t *h, const void *prefix, size_t plen, const void *key, size_t klen, const void *msg, size_t n,
                  uint8_t out[SHA256_LEN])
{
    uint8_t block[SHA256_BLOCK] = {0}, pad[SHA256_BLOCK], inner[SHA256_LEN];
    if (plen + klen > SHA256_BLOCK) {
        h_begin(h);
        h_update(h, prefix, plen);
        h_update(h, key, klen);
        h_end(h, block);
    } else {
        if (plen)
            memcpy(block, prefix, plen);
        if (klen)
            memcpy(block + plen, key, klen);
    }
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = block[i] ^ 0x36;
    h_begin(h);
    h_update(h, pad, sizeof(pad));
    h_update(h, msg, n);
    h_end(h, inner);
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = block[i] ^ 0x5c;
    h_begin(h);
    h_update(h, pad, sizeof(pad));
    h_update(h, inner, sizeof(inner));
    h_end(h, out);
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
}

static void hmac(hasher_t *h, const uint8_t key[SHA256_LEN], const void *msg, size_t n, uint8_t out[SHA256_LEN])
{
    hmac2(h, NULL, 0, key, SHA256_LEN, msg, n, out);
}

static void derive_key(hasher_t *h, gw_str_t secret, gw_str_t date, gw_str_t region, gw_str_t service,
                       uint8_t key[SHA256_LEN])
{
    uint8_t k[SHA256_LEN];
    hmac2(h, "AWS4", 4, secret.base, secret.len, date.base, date.len, k);
    hmac(h, k, region.base, region.len, k);
    hmac(h, k, service.base, service.len, k);
    hmac(h, k, "aws4_request", 12, key);
    OPENSSL_cleanse(k, sizeof(k));
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[p[i] >> 4];
        out[2 * i + 1] = hexdigits[p[i] & 15];
    }
}

/* ---------------------------------------------------------------------------------------------
 * Encoding.
 */

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

int gw_aws_uri_encode(gw_str_t s, bool encode_slash, gw_buf_t *out)
{
    const unsigned char *p = (const unsigned char *)s.base;
    size_t i = 0;
    while (i < s.len) {
        size_t run = i;
        while (run < s.len && (unreserved(p[run]) || (p[run] == '/' && !encode_slash)))
            run++;
        if (run > i && gw_buf_append(out, p + i, run - i) != GW_OK)
            return GW_TOOBIG;
        if (run == s.len)
            break;
        char esc[3] = {'%', HEXDIGITS[p[run] >> 4], HEXDIGITS[p[run] & 15]};
        if (gw_buf_append(out, esc, 3) != GW_OK)
            return GW_TOOBIG;
        i = run + 1;
    }
    return GW_OK;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s then encodes the result strictly: what AWS compares is the decoded parameter,
 * so "%E1%88%B4" and the raw UTF-8 bytes canonicalise alike. A '%' not followed by two hex digits
 * is taken literally. */
static int requery_encode(gw_str_t s, gw_buf_t *out)
{
    const unsigned char *p = (const unsigned char *)s.base;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = p[i];
        if (c == '%' && i + 2 < s.len && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            c = (unsigned char)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
            i += 2;
        }
        int rc = unreserved(c) ? gw_buf_append_byte(out, (char)c)
                               : gw_buf_append(out, (char[3]){'%', HEXDIGITS[c >> 4], HEXDIGITS[c & 15]}, 3);
        if (rc != GW_OK)
            return rc;
    }
    return GW_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Canonical URI and query.
 */

static int canonical_uri(gw_str_t path, bool normalize, gw_buf_t *out)
{
    if (path.len == 0)
        return gw_buf_append_byte(out, '/');
    if (path.base[0] != '/')
        return GW_EINVAL;
    for (size_t i = 0; i < path.len; i++) {
        char c = path.base[i];
        if (c == '?' || c == '#' || c == '\r' || c == '\n' || c == '\0')
            return GW_EINVAL;
    }
    if (!normalize)
        return gw_aws_uri_encode(path, false, out);

    /* Segments kept after removing empty and "." segments and resolving ".." (RFC 3986 5.2.4 on an
     * absolute path, plus AWS's merging of repeated slashes). As in RFC 3986, a path ending in "/",
     * "/." or "/.." keeps a trailing slash ("/a/b/." -> "/a/b/"). */
    size_t max_segs = 1;
    for (size_t i = 0; i < path.len; i++)
        max_segs += path.base[i] == '/';
    gw_str_t *segs = gw_malloc(max_segs * sizeof(*segs));
    size_t n = 0;
    bool trailing = true; /* the last segment seen was empty, "." or ".." */
    const char *p = path.base + 1, *end = path.base + path.len;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        gw_str_t seg = gw_str(p, (size_t)(e - p));
        trailing = true;
        if (seg.len == 0 || gw_str_eq_lit(seg, ".")) {
            /* dropped */
        } else if (gw_str_eq_lit(seg, "..")) {
            if (n > 0)
                n--;
        } else {
            segs[n++] = seg;
            trailing = false;
        }
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    int rc = GW_OK;
    for (size_t i = 0; i < n && rc == GW_OK; i++) {
        rc = gw_buf_append_byte(out, '/');
        if (rc == GW_OK)
            rc = gw_aws_uri_encode(segs[i], true, out);
    }
    if (rc == GW_OK && (n == 0 || trailing))
        rc = gw_buf_append_byte(out, '/');
    free(segs);
    return rc;
}

typedef struct {
    size_t key_off, key_len, val_off, val_len; /* in the scratch buffer */
} qparam_t;

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, GW_MIN(alen, blen));
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_qparam(const void *pa, const void *pb, void *arg)
{
    const qparam_t *a = pa, *b = pb;
    const char *base = arg;
    int c = cmp_bytes(base + a->key_off, a->key_len, base + b->key_off, b->key_len);
    return c ? c : cmp_bytes(base + a->val_off, a->val_len, base + b->val_off, b->val_len);
}

static int canonical_query(gw_str_t query, gw_buf_t *out)
{
    if (query.len == 0)
        return GW_OK;
    size_t max_params = 1;
    for (size_t i = 0; i < query.len; i++)
        max_params += query.base[i] == '&';
    qparam_t *params = gw_malloc(max_params * sizeof(*params));
    gw_buf_t scratch;
    gw_buf_init(&scratch, MAX_CANONICAL);
    size_t n = 0;
    int rc = GW_OK;
    const char *p = query.base, *end = query.base + query.len;
    while (p < end && rc == GW_OK) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if (e > p) {
            const char *eq = memchr(p, '=', (size_t)(e - p));
            qparam_t *q = &params[n++];
            q->key_off = scratch.len;
            rc = requery_encode(gw_str(p, (size_t)((eq ? eq : e) - p)), &scratch);
            q->key_len = scratch.len - q->key_off;
            q->val_off = scratch.len;
            if (rc == GW_OK && eq)
                rc = requery_encode(gw_str(eq + 1, (size_t)(e - eq - 1)), &scratch);
            q->val_len = scratch.len - q->val_off;
        }
        p = amp ? amp + 1 : end;
    }
    if (rc == GW_OK && n > 0) {
        qsort_r(params, n, sizeof(*params), cmp_qparam, scratch.data);
        for (size_t i = 0; i < n && rc == GW_OK; i++) {
            if (i > 0)
                rc = gw_buf_append_byte(out, '&');
            if (rc == GW_OK)
                rc = gw_buf_append(out, scratch.data + params[i].key_off, params[i].key_len);
            if (rc == GW_OK)
                rc = gw_buf_append_byte(out, '=');
            if (rc == GW_OK)
                rc = gw_buf_append(out, scratch.data + params[i].val_off, params[i].val_len);
        }
    }
    gw_buf_free(&scratch);
    free(params);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Canonical headers.
 */

typedef struct {
    gw_str_t name, value;
    size_t order; /* position in the request: values of a repeated name keep request order */
} hentry_t;

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int cmp_hentry(const void *pa, const void *pb)
{
    const hentry_t *a = pa, *b = pb;
    size_t n = GW_MIN(a->name.len, b->name.len);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = lower((unsigned char)a->name.base[i]), y = lower((unsigned char)b->name.base[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    if (a->name.len != b->name.len)
        return a->name.len < b->name.len ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_token(gw_str_t s)
{
    if (s.len == 0 || s.base == NULL)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!is_tchar((unsigned char)s.base[i]))
            return false;
    return true;
}

static bool safe_value(gw_str_t s)
{
    if (s.len > 0 && s.base == NULL)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (s.base[i] == '\r' || s.base[i] == '\n' || s.base[i] == '\0')
            return false;
    return true;
}

/* Visible ASCII without the characters that would break the Credential field. */
static bool credential_text(gw_str_t s, bool allow_slash)
{
    if (s.len == 0 || s.base == NULL)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.base[i];
        if (c <= 0x20 || c >= 0x7f || c == ',' || (c == '/' && !allow_slash))
            return false;
    }
    return true;
}

static bool scope_part(gw_str_t s)
{
    if (s.len == 0 || s.base == NULL)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.base[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    }
    return true;
}

static int append_lower(gw_buf_t *b, gw_str_t s)
{
    char *w = gw_buf_reserve(b, s.len);
    if (w == NULL)
        return GW_TOOBIG;
    for (size_t i = 0; i < s.len; i++)
        w[i] = (char)lower((unsigned char)s.base[i]);
    gw_buf_commit(b, s.len);
    return GW_OK;
}

/* The value with leading and trailing blanks removed and inner runs of blanks made one space. */
static int append_trimmed(gw_buf_t *b, gw_str_t v)
{
    size_t i = 0, end = v.len;
    while (i < end && (v.base[i] == ' ' || v.base[i] == '\t'))
        i++;
    while (end > i && (v.base[end - 1] == ' ' || v.base[end - 1] == '\t'))
        end--;
    while (i < end) {
        size_t run = i;
        while (run < end && v.base[run] != ' ' && v.base[run] != '\t')
            run++;
        if (gw_buf_append(b, v.base + i, run - i) != GW_OK)
            return GW_TOOBIG;
        if (run == end)
            break;
        if (gw_buf_append_byte(b, ' ') != GW_OK)
            return GW_TOOBIG;
        while (run < end && (v.base[run] == ' ' || v.base[run] == '\t'))
            run++;
        i = run;
    }
    return GW_OK;
}

/* "name:v1,v2\n" per distinct name, then the blank line, then the signed-header list, whose place
 * in b is returned for the Authorization header. */
static int append_headers(gw_buf_t *b, const hentry_t *e, size_t n, size_t *signed_off, size_t *signed_len)
{
    int rc = GW_OK;
    for (size_t i = 0; i < n && rc == GW_OK;) {
        size_t j = i + 1;
        while (j < n && gw_str_case_eq(e[j].name, e[i].name))
            j++;
        rc = append_lower(b, e[i].name);
        if (rc == GW_OK)
            rc = gw_buf_append_byte(b, ':');
        for (size_t k = i; k < j && rc == GW_OK; k++) {
            if (k > i)
                rc = gw_buf_append_byte(b, ',');
            if (rc == GW_OK)
                rc = append_trimmed(b, e[k].value);
        }
        if (rc == GW_OK)
            rc = gw_buf_append_byte(b, '\n');
        i = j;
    }
    if (rc == GW_OK)
        rc = gw_buf_append_byte(b, '\n');
    *signed_off = b->len;
    for (size_t i = 0; i < n && rc == GW_OK; i++) {
        if (i > 0 && gw_str_case_eq(e[i].name, e[i - 1].name))
            continue;
        if (i > 0)
            rc = gw_buf_append_byte(b, ';');
        if (rc == GW_OK)
            rc = append_lower(b, e[i].name);
    }
    *signed_len = b->len - *signed_off;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Signing.
 */

void gw_sigv4_result_init(gw_sigv4_result_t *r)
{
    memset(r, 0, sizeof(*r));
    gw_buf_init(&r->storage, 2 * MAX_CANONICAL);
}

static void wipe_buf(gw_buf_t *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    gw_buf_reset(b);
}

void gw_sigv4_result_free(gw_sigv4_result_t *r)
{
    wipe_buf(&r->storage);
    gw_buf_free(&r->storage);
    r->n_headers = 0;
}

void gw_sigv4_key_cache_clear(gw_sigv4_key_cache_t *c)
{
    OPENSSL_cleanse(c, sizeof(*c));
}

int gw_sigv4_signing_key(gw_str_t secret, gw_str_t date, gw_str_t region, gw_str_t service,
                         uint8_t key[GW_SIGV4_KEY_LEN])
{
    if (secret.len == 0 || secret.base == NULL || date.len == 0 || date.base == NULL || region.len == 0 ||
        region.base == NULL || service.len == 0 || service.base == NULL)
        return GW_EINVAL;
    hasher_t h;
    if (!hasher_init(&h))
        return GW_ERROR;
    derive_key(&h, secret, date, region, service, key);
    bool ok = h.ok;
    hasher_free(&h);
    return ok ? GW_OK : GW_ERROR;
}

static void h_update_field(hasher_t *h, gw_str_t s)
{
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)s.len >> (56 - 8 * i));
    h_update(h, len, sizeof(len));
    h_update(h, s.base, s.len);
}

/* The signing key, from the cache when it holds the key of this secret/day/region/service. */
static void signing_key(hasher_t *h, gw_sigv4_key_cache_t *cache, gw_str_t secret, gw_str_t date, gw_str_t region,
                        gw_str_t service, uint8_t key[SHA256_LEN])
{
    uint8_t id[SHA256_LEN];
    if (cache) {
        h_begin(h);
        h_update_field(h, secret);
        h_update_field(h, date);
        h_update_field(h, region);
        h_update_field(h, service);
        h_end(h, id);
        if (cache->valid && h->ok && memcmp(cache->id, id, sizeof(id)) == 0) {
            memcpy(key, cache->key, SHA256_LEN);
            return;
        }
    }
    derive_key(h, secret, date, region, service, key);
    if (cache && h->ok) {
        memcpy(cache->id, id, sizeof(id));
        memcpy(cache->key, key, SHA256_LEN);
        cache->valid = true;
    }
}

static void put_digits(char *p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* "YYYYMMDDTHHMMSSZ"; false outside years 0..9999. */
static bool amz_date(time_t now, char out[16])
{
    struct tm tm;
    if (gmtime_r(&now, &tm) == NULL)
        return false;
    long year = (long)tm.tm_year + 1900;
    if (year < 0 || year > 9999)
        return false;
    put_digits(out, (int)year, 4);
    put_digits(out + 4, tm.tm_mon + 1, 2);
    put_digits(out + 6, tm.tm_mday, 2);
    out[8] = 'T';
    put_digits(out + 9, tm.tm_hour, 2);
    put_digits(out + 11, tm.tm_min, 2);
    put_digits(out + 13, tm.tm_sec, 2);
    out[15] = 'Z';
    return true;
}

int gw_sigv4_sign(const gw_sigv4_request_t *req, const gw_aws_credentials_t *creds, gw_sigv4_result_t *out,
                  gw_buf_t *canonical_out, gw_buf_t *string_to_sign_out)
{
    int rc = GW_EINVAL;
    hasher_t h = {0};
    gw_buf_t canon, sts;
    gw_buf_init(&canon, MAX_CANONICAL);
    gw_buf_init(&sts, MAX_CANONICAL);
    hentry_t stack_entries[STACK_HEADERS], *entries = stack_entries;
    uint8_t key[SHA256_LEN] = {0}, digest[SHA256_LEN];
    char date[16], payload_hex[2 * SHA256_LEN], canon_hex[2 * SHA256_LEN], sig_hex[2 * SHA256_LEN];

    wipe_buf(&out->storage);
    out->n_headers = 0;

    gw_str_t token = creds->session_token;
    bool add_token = token.len > 0, sign_token = add_token && !req->omit_session_token;
    if (!is_token(req->method) || !scope_part(req->region) || !scope_part(req->service) ||
        !credential_text(creds->access_key_id, false) || creds->secret_access_key.len == 0 ||
        creds->secret_access_key.base == NULL || (add_token && !credential_text(token, true)) ||
        (req->body.len > 0 && req->body.base == NULL) || (req->query.len > 0 && req->query.base == NULL) ||
        (req->path.len > 0 && req->path.base == NULL) || req->n_headers > MAX_HEADERS ||
        (req->n_headers > 0 && req->headers == NULL) || !amz_date(req->now, date))
        goto out;

    if (req->n_headers + 3 > STACK_HEADERS)
        entries = gw_malloc((req->n_headers + 3) * sizeof(*entries));
    size_t n = 0;
    bool has_host = false;
    for (size_t i = 0; i < req->n_headers; i++) {
        gw_str_t name = req->headers[i].name, value = req->headers[i].value;
        if (!is_token(name) || !safe_value(value))
            goto out;
        /* Headers the signer adds must not come twice. */
        if (gw_str_case_eq_lit(name, "authorization") || gw_str_case_eq_lit(name, "x-amz-date") ||
            (add_token && gw_str_case_eq_lit(name, "x-amz-security-token")) ||
            (req->sign_body_header && gw_str_case_eq_lit(name, "x-amz-content-sha256")))
            goto out;
        if (gw_str_case_eq_lit(name, "host"))
            has_host = true;
        if (!req->sign_content_length && gw_str_case_eq_lit(name, "content-length"))
            continue;
        entries[n++] = (hentry_t){name, value, i};
    }
    if (!has_host)
        goto out;

    if (!hasher_init(&h)) {
        rc = GW_ERROR;
        goto out;
    }
    sha256_of(&h, req->body.base, req->body.len, digest);
    hex(digest, SHA256_LEN, payload_hex);

    size_t order = req->n_headers;
    entries[n++] = (hentry_t){GW_STR("x-amz-date"), gw_str(date, sizeof(date)), order++};
    if (sign_token)
        entries[n++] = (hentry_t){GW_STR("x-amz-security-token"), token, order++};
    if (req->sign_body_header)
        entries[n++] = (hentry_t){GW_STR("x-amz-content-sha256"), gw_str(payload_hex, sizeof(payload_hex)), order++};
    qsort(entries, n, sizeof(*entries), cmp_hentry);

    /* Canonical request. */
    size_t signed_off = 0, signed_len = 0;
    gw_buf_reserve(&canon, 512);
    int brc = gw_buf_append_str(&canon, req->method);
    if (brc == GW_OK)
        brc = gw_buf_append_byte(&canon, '\n');
    if (brc == GW_OK)
        brc = canonical_uri(req->path, req->normalize_path, &canon);
    if (brc == GW_OK)
        brc = gw_buf_append_byte(&canon, '\n');
    if (brc == GW_OK)
        brc = canonical_query(req->query, &canon);
    if (brc == GW_OK)
        brc = gw_buf_append_byte(&canon, '\n');
    if (brc == GW_OK)
        brc = append_headers(&canon, entries, n, &signed_off, &signed_len);
    if (brc == GW_OK)
        brc = gw_buf_append_byte(&canon, '\n');
    if (brc == GW_OK)
        brc = gw_buf_append(&canon, payload_hex, sizeof(payload_hex));
    if (brc != GW_OK)
        goto out;
    sha256_of(&h, canon.data, canon.len, digest);
    hex(digest, SHA256_LEN, canon_hex);

    /* String to sign; the credential scope inside it is reused for the Authorization header. */
    gw_str_t day = gw_str(date, 8);
    brc = gw_buf_append_lit(&sts, ALGORITHM "\n");
    if (brc == GW_OK)
        brc = gw_buf_append(&sts, date, sizeof(date));
    if (brc == GW_OK)
        brc = gw_buf_append_byte(&sts, '\n');
    size_t scope_off = sts.len;
    if (brc == GW_OK)
        brc = gw_buf_append_str(&sts, day);
    if (brc == GW_OK)
        brc = gw_buf_append_byte(&sts, '/');
    if (brc == GW_OK)
        brc = gw_buf_append_str(&sts, req->region);
    if (brc == GW_OK)
        brc = gw_buf_append_byte(&sts, '/');
    if (brc == GW_OK)
        brc = gw_buf_append_str(&sts, req->service);
    if (brc == GW_OK)
        brc = gw_buf_append_lit(&sts, "/aws4_request");
    size_t scope_len = sts.len - scope_off;
    if (brc == GW_OK)
        brc = gw_buf_append_byte(&sts, '\n');
    if (brc == GW_OK)
        brc = gw_buf_append(&sts, canon_hex, sizeof(canon_hex));
    if (brc != GW_OK)
        goto out;

    signing_key(&h, req->key_cache, creds->secret_access_key, day, req->region, req->service, key);
    hmac(&h, key, sts.data, sts.len, digest);
    hex(digest, SHA256_LEN, sig_hex);
    if (!h.ok) {
        rc = GW_ERROR;
        goto out;
    }

    /* Output headers: values first (the storage may move while it grows), slices last. */
    gw_buf_t *s = &out->storage;
    size_t date_off = s->len, token_off = 0, sha_off = 0, auth_off = 0;
    brc = gw_buf_append(s, date, sizeof(date));
    if (brc == GW_OK && add_token) {
        token_off = s->len;
        brc = gw_buf_append_str(s, token);
    }
    if (brc == GW_OK && req->sign_body_header) {
        sha_off = s->len;
        brc = gw_buf_append(s, payload_hex, sizeof(payload_hex));
    }
    auth_off = s->len;
    if (brc == GW_OK)
        brc = gw_buf_append_lit(s, ALGORITHM " Credential=");
    if (brc == GW_OK)
        brc = gw_buf_append_str(s, creds->access_key_id);
    if (brc == GW_OK)
        brc = gw_buf_append_byte(s, '/');
    if (brc == GW_OK)
        brc = gw_buf_append(s, sts.data + scope_off, scope_len);
    if (brc == GW_OK)
        brc = gw_buf_append_lit(s, ", SignedHeaders=");
    if (brc == GW_OK)
        brc = gw_buf_append(s, canon.data + signed_off, signed_len);
    if (brc == GW_OK)
        brc = gw_buf_append_lit(s, ", Signature=");
    if (brc == GW_OK)
        brc = gw_buf_append(s, sig_hex, sizeof(sig_hex));
    if (brc != GW_OK) {
        wipe_buf(s);
        goto out;
    }
    out->headers[out->n_headers++] = (gw_http_header_t){GW_STR("X-Amz-Date"), gw_str(s->data + date_off, sizeof(date))};
    if (add_token)
        out->headers[out->n_headers++] =
            (gw_http_header_t){GW_STR("X-Amz-Security-Token"), gw_str(s->data + token_off, token.len)};
    if (req->sign_body_header)
        out->headers[out->n_headers++] =
            (gw_http_header_t){GW_STR("x-amz-content-sha256"), gw_str(s->data + sha_off, sizeof(payload_hex))};
    out->headers[out->n_headers++] =
        (gw_http_header_t){GW_STR("Authorization"), gw_str(s->data + auth_off, s->len - auth_off)};

    if (canonical_out)
        gw_buf_append(canonical_out, canon.data, canon.len);
    if (string_to_sign_out)
        gw_buf_append(string_to_sign_out, sts.data, sts.len);
    rc = GW_OK;
out:
    hasher_free(&h);
    OPENSSL_cleanse(key, sizeof(key));
    wipe_buf(&canon); /* holds the session token when it is signed */
    gw_buf_free(&canon);
    gw_buf_free(&sts);
    if (entries != stack_entries)
        free(entries);
    return rc;
}
