/* AWS credentials for SigV4: the sources of the AWS SDK default chain plus the reference's
 * BackendSecurityPolicy credentials file, each refreshed before expiry OFF the request path.
 * Providers live on the main thread's loop (they fetch with the project's upstream client);
 * workers read the current credentials with gw_aws_credentials_get(), which never blocks and
 * never starts a fetch. */
#ifndef GW_AUTH_AWS_CREDENTIALS_H
#define GW_AUTH_AWS_CREDENTIALS_H

#include "auth/sigv4.h"
#include "core/buf.h"
#include "core/gw.h"

#include <stdatomic.h>
#include <uv.h>

/* An immutable set of credentials, refcounted. */
typedef struct {
    atomic_int refcount;
    char *access_key_id;
    char *secret_access_key; /* SECRET */
    char *session_token;     /* SECRET; NULL when none */
    int64_t expiration;      /* unix seconds; 0: does not expire */
    const char *source;      /* static: "environment", "shared-credentials-file", "credentials-file-secret",
                                "web-identity", "container", "imds" */
} gw_aws_credentials_snapshot_t;

/* Borrow as gw_aws_credentials_t for signing. */
static inline gw_aws_credentials_t gw_aws_credentials_view(const gw_aws_credentials_snapshot_t *s)
{
    gw_aws_credentials_t c = {gw_str_c(s->access_key_id), gw_str_c(s->secret_access_key),
                              s->session_token ? gw_str_c(s->session_token) : GW_STR_NULL};
    return c;
}

typedef struct gw_aws_credentials_provider_s gw_aws_credentials_provider_t;

typedef struct {
    /* BackendSecurityPolicy awsCredentials.credentialsFile: the file's text (from the Secret) and
     * the profile; NULL text means "use the default chain". */
    const char *credentials_file_text; /* SECRET */
    const char *profile;               /* NULL: "default" */
    const char *region;
    /* The environment, for tests (NULL: getenv). Read once at creation. */
    const char *(*getenv_fn)(const char *name);
} gw_aws_credentials_source_t;

/* Creates a provider on the main loop and starts resolving: static sources resolve at once;
 * remote ones (web identity via STS AssumeRoleWithWebIdentity, container credentials (ECS / EKS
 * Pod Identity with the authorization token file), EC2 IMDSv2) are fetched asynchronously and
 * refreshed ahead of expiry (5 minutes before, or at half-life for short ones). Endpoints follow
 * the SDK environment: AWS_ENDPOINT_URL_STS, AWS_CONTAINER_CREDENTIALS_FULL_URI /
 * _RELATIVE_URI (169.254.170.2), AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE),
 * AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_DISABLED, AWS_WEB_IDENTITY_TOKEN_FILE,
 * AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, AWS_PROFILE. */
gw_aws_credentials_provider_t *gw_aws_credentials_provider_new(uv_loop_t *main_loop,
                                                               const gw_aws_credentials_source_t *src);
/* Any thread, lock-free: a reference to the current credentials (release with
 * gw_aws_credentials_release), or NULL while none could be obtained yet. */
gw_aws_credentials_snapshot_t *gw_aws_credentials_get(gw_aws_credentials_provider_t *p);
void gw_aws_credentials_release(gw_aws_credentials_snapshot_t *s);
/* Main thread: true once the first resolution finished (successfully or not); *error tells why
 * there are no credentials (static text, no secret). */
bool gw_aws_credentials_settled(gw_aws_credentials_provider_t *p, const char **error);
/* Main thread, at exit: stops timers and fetches; the provider is freed on the loop once no get()
 * can still be inside it (no get() may start after close). Snapshots that workers hold stay valid
 * until they release them. */
void gw_aws_credentials_provider_close(gw_aws_credentials_provider_t *p);

/* Main thread: fetches fresh credentials now (e.g. after the upstream answered ExpiredToken), unless
 * a fetch already runs. The credentials in use stay published until the new ones arrive. GW_OK
 * (started), GW_AGAIN (one is running: it will publish), GW_DONE (a static source: nothing to
 * renew), GW_ERROR (closing). */
int gw_aws_credentials_refresh_now(gw_aws_credentials_provider_t *p);

/* Main thread: counters for metrics and tests. */
typedef struct {
    uint64_t fetches_ok;     /* remote fetches that published credentials */
    uint64_t fetches_failed; /* remote fetches that failed (each retried with backoff) */
    bool fetching;           /* a fetch is in flight */
    size_t retired;          /* unpublished snapshots still waiting for their grace period */
} gw_aws_credentials_stats_t;
void gw_aws_credentials_stats(const gw_aws_credentials_provider_t *p, gw_aws_credentials_stats_t *out);

/* Tests only: when set, gw_aws_credentials_get() calls it between loading the published pointer and
 * taking its reference (the window the grace period protects), so that a test can hold a reader
 * there deterministically. Set it before starting the reader threads, clear it after joining them. */
extern void (*gw_aws_credentials_test_hook)(void);

#endif
