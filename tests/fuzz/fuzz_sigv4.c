/* libFuzzer harness for auth/sigv4: method, path, query, headers, body, region, service and
 * credentials all come from the input. Signing must never crash; when it succeeds, the output must
 * be well formed, deterministic, the same with the key cache, and consistent with its own canonical
 * request (string to sign = hash of the canonical request; signature = HMAC of the string to sign). */
#include "auth/sigv4.h"

#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)               \
    do {                          \
        if (!(cond))              \
            __builtin_trap();     \
    } while (0)

#define MAX_FUZZ_HEADERS 40

/* Fields are separated by 0xff bytes: flags+time (first 9 bytes), then method, path, query, body,
 * region, service, access key, secret, token, then header name/value pairs. */
typedef struct {
    gw_str_t f[9];
    gw_http_header_t h[MAX_FUZZ_HEADERS];
    size_t nh;
} fields_t;

static void split_fields(const char *p, size_t n, fields_t *out)
{
    size_t k = 0;
    gw_str_t pending_name = GW_STR_NULL;
    bool have_name = false;
    const char *end = p + n;
    while (p <= end) {
        const char *sep = memchr(p, 0xff, (size_t)(end - p));
        const char *e = sep ? sep : end;
        gw_str_t s = gw_str(p, (size_t)(e - p));
        if (k < 9) {
            out->f[k++] = s;
        } else if (!have_name) {
            pending_name = s;
            have_name = true;
        } else if (out->nh < MAX_FUZZ_HEADERS) {
            out->h[out->nh++] = (gw_http_header_t){pending_name, s};
            have_name = false;
        }
        if (sep == NULL)
            break;
        p = sep + 1;
    }
}

static void hexs(const unsigned char *d, size_t n, char *out)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9)
        return 0;
    uint8_t flags = data[0];
    int64_t t = 0;
    for (int i = 1; i < 9; i++)
        t = (int64_t)((uint64_t)t << 8 | data[i]);
    fields_t fl = {0};
    split_fields((const char *)data + 9, size - 9, &fl);

    gw_sigv4_key_cache_t cache = {0};
    gw_sigv4_request_t q = {
        .method = fl.f[0],
        .path = fl.f[1],
        .query = fl.f[2],
        .headers = fl.h,
        .n_headers = fl.nh,
        .body = fl.f[3],
        .region = fl.f[4],
        .service = fl.f[5],
        /* the top bit picks a plain recent time, so that the signing path is reached often */
        .now = (flags & 0x80) ? (time_t)(1500000000 + (t & 0x3fffffff)) : (time_t)t,
        .normalize_path = flags & 1,
        .sign_body_header = flags & 2,
        .omit_session_token = flags & 4,
        .sign_content_length = flags & 8,
        .key_cache = (flags & 16) ? &cache : NULL,
    };
    gw_aws_credentials_t creds = {fl.f[6], fl.f[7], fl.f[8]};

    gw_buf_t enc;
    gw_buf_init(&enc, GW_BUF_UNLIMITED);
    CHECK(gw_aws_uri_encode(q.path, flags & 32, &enc) == GW_OK);
    for (size_t i = 0; i < enc.len; i++) {
        char c = enc.data[i];
        CHECK(c != ' ' && c != '\n' && c != '\r' && (unsigned char)c < 0x80);
    }
    gw_buf_free(&enc);

    gw_sigv4_result_t r1, r2;
    gw_sigv4_result_init(&r1);
    gw_sigv4_result_init(&r2);
    gw_buf_t canon, sts;
    gw_buf_init(&canon, GW_BUF_UNLIMITED);
    gw_buf_init(&sts, GW_BUF_UNLIMITED);
    int rc = gw_sigv4_sign(&q, &creds, &r1, &canon, &sts);
    CHECK(rc == GW_OK || rc == GW_EINVAL);
    if (rc == GW_OK) {
        CHECK(r1.n_headers >= 2 && r1.n_headers <= 4);
        gw_str_t auth = r1.headers[r1.n_headers - 1].value;
        CHECK(gw_str_eq_lit(r1.headers[r1.n_headers - 1].name, "Authorization"));
        CHECK(auth.len > 64 + 10 && memcmp(auth.base, "AWS4-HMAC-SHA256 Credential=", 28) == 0);
        CHECK(memcmp(auth.base + auth.len - 64 - 12, ", Signature=", 12) == 0);
        for (size_t i = 0; i < r1.n_headers; i++)
            for (size_t k = 0; k < r1.headers[i].value.len; k++)
                CHECK(r1.headers[i].value.base[k] != '\r' && r1.headers[i].value.base[k] != '\n');

        /* string to sign ends with the hash of the canonical request */
        unsigned char d[32];
        char hx[65] = {0};
        SHA256((const unsigned char *)canon.data, canon.len, d);
        hexs(d, 32, hx);
        CHECK(sts.len > 64 && memcmp(sts.data + sts.len - 64, hx, 64) == 0);
        /* the signature is the HMAC of the string to sign under the derived key */
        uint8_t key[GW_SIGV4_KEY_LEN];
        CHECK(sts.len > 17 + 16 && memcmp(sts.data, "AWS4-HMAC-SHA256\n", 17) == 0);
        CHECK(gw_sigv4_signing_key(creds.secret_access_key, gw_str(sts.data + 17, 8), q.region, q.service, key) == GW_OK);
        unsigned int kl = 0;
        HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)sts.data, sts.len, d, &kl);
        hexs(d, 32, hx);
        CHECK(memcmp(auth.base + auth.len - 64, hx, 64) == 0);

        /* deterministic, with or without the cache (a second call may hit it) */
        CHECK(gw_sigv4_sign(&q, &creds, &r2, NULL, NULL) == GW_OK);
        CHECK(r1.n_headers == r2.n_headers);
        for (size_t i = 0; i < r1.n_headers; i++)
            CHECK(gw_str_eq(r1.headers[i].value, r2.headers[i].value));
    }
    gw_sigv4_key_cache_clear(&cache);
    gw_sigv4_result_free(&r1);
    gw_sigv4_result_free(&r2);
    gw_buf_free(&canon);
    gw_buf_free(&sts);
    return 0;
}
