/* Upstream credentials (see auth.h). The provider registry is touched by the main thread only;
 * workers only read the provider pointers stored in the immutable snapshots. */
#include "auth/auth.h"

#include "auth/aws_credentials.h"
#include "core/alloc.h"
#include "core/log.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct registry_entry_s {
    unsigned char key[SHA256_DIGEST_LENGTH]; /* digest of the source: no secret kept in clear here */
    gw_aws_credentials_provider_t *provider;
    struct registry_entry_s *next;
} registry_entry_t;

static registry_entry_t *registry;

static void source_key(const gw_auth_config_t *a, unsigned char out[SHA256_DIGEST_LENGTH])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    const char *parts[] = {a->credentials ? a->credentials : "", a->aws_profile ? a->aws_profile : "",
                           a->region ? a->region : ""};
    for (size_t i = 0; i < 3; i++)
        EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1); /* the NUL separates the parts */
    EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
}

int gw_auth_attach(gw_config_t *cfg, uv_loop_t *main_loop, gw_buf_t *errors)
{
    (void)errors;
    for (size_t i = 0; i < cfg->n_rules; i++) {
        for (size_t j = 0; j < cfg->rules[i].n_backends; j++) {
            gw_auth_config_t *a = &cfg->rules[i].backends[j].auth;
            if (a->type != GW_AUTH_AWS_CREDENTIALS)
                continue;
            unsigned char key[SHA256_DIGEST_LENGTH];
            source_key(a, key);
            registry_entry_t *e = registry;
            while (e && memcmp(e->key, key, sizeof(key)) != 0)
                e = e->next;
            if (e == NULL) {
                gw_aws_credentials_source_t src = {
                    .credentials_file_text = a->credentials,
                    .profile = a->aws_profile,
                    .region = a->region,
                };
                e = gw_calloc(1, sizeof(*e));
                memcpy(e->key, key, sizeof(key));
                e->provider = gw_aws_credentials_provider_new(main_loop, &src);
                e->next = registry;
                registry = e;
            }
            a->aws_provider = e->provider;
        }
    }
    return GW_OK;
}

bool gw_auth_settled(const gw_config_t *cfg, bool *all_ok, const char **why)
{
    *all_ok = true;
    for (size_t i = 0; i < cfg->n_rules; i++)
        for (size_t j = 0; j < cfg->rules[i].n_backends; j++) {
            const gw_auth_config_t *a = &cfg->rules[i].backends[j].auth;
            if (a->type != GW_AUTH_AWS_CREDENTIALS || a->aws_provider == NULL)
                continue;
            const char *err = NULL;
            if (!gw_aws_credentials_settled(a->aws_provider, &err))
                return false;
            if (err) {
                *all_ok = false;
                *why = err;
            }
        }
    return true;
}

void gw_auth_shutdown(void)
{
    while (registry) {
        registry_entry_t *e = registry;
        registry = e->next;
        gw_aws_credentials_provider_close(e->provider);
        free(e);
    }
}

void gw_auth_result_init(gw_auth_result_t *r)
{
    r->n_headers = 0;
    gw_buf_init(&r->storage, 16384);
    gw_sigv4_result_init(&r->sigv4);
}

void gw_auth_result_free(gw_auth_result_t *r)
{
    gw_buf_free(&r->storage);
    gw_sigv4_result_free(&r->sigv4);
}

void gw_auth_host_header(const gw_backend_t *b, gw_buf_t *out)
{
    const char *name = b->sni && *b->sni ? b->sni : b->host;
    bool v6 = strchr(name, ':') != NULL;
    if (v6)
        gw_buf_append_byte(out, '[');
    gw_buf_append(out, name, strlen(name));
    if (v6)
        gw_buf_append_byte(out, ']');
    if (b->port != (b->tls ? 443 : 80))
        gw_buf_appendf(out, ":%u", (unsigned)b->port);
}

static int sign_aws(const gw_backend_t *b, const gw_auth_request_t *req, gw_auth_result_t *out, const char **err)
{
    if (b->auth.aws_provider == NULL) {
        *err = "no AWS credential provider is attached to this backend";
        return GW_ERROR;
    }
    gw_aws_credentials_snapshot_t *snap = gw_aws_credentials_get(b->auth.aws_provider);
    if (snap == NULL) {
        *err = "no AWS credentials could be obtained for this backend";
        return GW_ERROR;
    }
    gw_http_header_t signed_headers[2];
    size_t n = 0;
    signed_headers[n++] = (gw_http_header_t){GW_STR("host"), req->host};
    if (req->content_type.len)
        signed_headers[n++] = (gw_http_header_t){GW_STR("content-type"), req->content_type};
    const char *q = memchr(req->path.base, '?', req->path.len);
    gw_sigv4_request_t sr = {
        .method = req->method,
        .path = gw_str(req->path.base, q ? (size_t)(q - req->path.base) : req->path.len),
        .query = q ? gw_str(q + 1, req->path.len - (size_t)(q + 1 - req->path.base)) : GW_STR_NULL,
        .headers = signed_headers,
        .n_headers = n,
        .body = req->body,
        .region = gw_str_c(b->auth.region ? b->auth.region : "us-east-1"),
        .service = GW_STR("bedrock"),
        .now = time(NULL),
        .normalize_path = true,
        .key_cache = req->key_cache,
    };
    gw_aws_credentials_t creds = gw_aws_credentials_view(snap);
    int rc = gw_sigv4_sign(&sr, &creds, &out->sigv4, NULL, NULL);
    gw_aws_credentials_release(snap);
    if (rc != GW_OK) {
        *err = "the request cannot be signed with SigV4";
        return GW_ERROR;
    }
    for (size_t i = 0; i < out->sigv4.n_headers && out->n_headers < GW_AUTH_MAX_HEADERS; i++)
        out->headers[out->n_headers++] = out->sigv4.headers[i];
    return GW_OK;
}

int gw_auth_apply(const gw_backend_t *b, const gw_auth_request_t *req, gw_auth_result_t *out, const char **err)
{
    const gw_auth_config_t *a = &b->auth;
    switch (a->type) {
    case GW_AUTH_NONE:
        return GW_OK;
    case GW_AUTH_API_KEY:
        if (a->api_key == NULL)
            return GW_OK;
        gw_buf_append_lit(&out->storage, "Bearer ");
        gw_buf_append(&out->storage, a->api_key, strlen(a->api_key));
        out->headers[out->n_headers++] = (gw_http_header_t){GW_STR("Authorization"), gw_buf_str(&out->storage)};
        return GW_OK;
    case GW_AUTH_AZURE_API_KEY:
        if (a->api_key)
            out->headers[out->n_headers++] = (gw_http_header_t){GW_STR("api-key"), gw_str_c(a->api_key)};
        return GW_OK;
    case GW_AUTH_ANTHROPIC_API_KEY:
        if (a->api_key)
            out->headers[out->n_headers++] = (gw_http_header_t){GW_STR("x-api-key"), gw_str_c(a->api_key)};
        return GW_OK;
    case GW_AUTH_AWS_CREDENTIALS:
        return sign_aws(b, req, out, err);
    case GW_AUTH_AZURE_CREDENTIALS:
    case GW_AUTH_GCP_CREDENTIALS:
        *err = "Azure and GCP token credentials are not implemented yet";
        return GW_ERROR;
    }
    return GW_OK;
}
