/* The AWS credential chain behind aws_credentials.h. Static sources (the BackendSecurityPolicy file,
 * the environment, the shared files) resolve at creation; web identity (STS), container and IMDSv2
 * credentials are fetched on the main loop with the upstream client and renewed ahead of expiry.
 * Workers take the published snapshot lock-free; unpublished ones are freed after a grace period. */
#include "auth/aws_credentials.h"

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "net/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Limits: every input read here is bounded before it is parsed. */
#define MAX_SHARED_FILE (1u << 20) /* ~/.aws/credentials, ~/.aws/config, the BSP file */
#define MAX_TOKEN_FILE (64u << 10) /* web identity JWT, container authorization token */
#define MAX_RESPONSE (64u << 10)   /* STS, container and IMDS answers */
#define MAX_FIELD (16u << 10)      /* one credential value (session tokens run to a few KiB) */
#define MAX_URL 2048

/* Timing. */
#define REFRESH_AHEAD_MS (5 * 60 * 1000) /* renew this long before expiry (as the reference's rotator) */
#define MIN_REFRESH_MS 100
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
#define RECLAIM_INTERVAL_MS 1
#define STS_CONNECT_MS 5000
#define STS_TOTAL_MS 10000
#define CONTAINER_CONNECT_MS 2000
#define CONTAINER_TOTAL_MS 5000
/* A machine that is not on EC2 must find out quickly that nobody answers at 169.254.169.254. */
#define IMDS_TIMEOUT_MS 1000
#define IMDS_TOKEN_TTL "21600"

/* The environment, copied once at creation (the header's contract). */
enum {
    E_ACCESS_KEY_ID,
    E_SECRET_ACCESS_KEY, /* SECRET */
    E_SESSION_TOKEN,     /* SECRET */
    E_PROFILE,
    E_SHARED_CREDENTIALS_FILE,
    E_CONFIG_FILE,
    E_HOME,
    E_WEB_IDENTITY_TOKEN_FILE,
    E_ROLE_ARN,
    E_ROLE_SESSION_NAME,
    E_ENDPOINT_URL_STS,
    E_REGION,
    E_DEFAULT_REGION,
    E_CONTAINER_RELATIVE_URI,
    E_CONTAINER_FULL_URI,
    E_CONTAINER_TOKEN, /* SECRET */
    E_CONTAINER_TOKEN_FILE,
    E_IMDS_DISABLED,
    E_IMDS_ENDPOINT,
    E_IMDS_ENDPOINT_MODE,
    E_COUNT
};

static const char *const env_names[E_COUNT] = {
    [E_ACCESS_KEY_ID] = "AWS_ACCESS_KEY_ID",
    [E_SECRET_ACCESS_KEY] = "AWS_SECRET_ACCESS_KEY",
    [E_SESSION_TOKEN] = "AWS_SESSION_TOKEN",
    [E_PROFILE] = "AWS_PROFILE",
    [E_SHARED_CREDENTIALS_FILE] = "AWS_SHARED_CREDENTIALS_FILE",
    [E_CONFIG_FILE] = "AWS_CONFIG_FILE",
    [E_HOME] = "HOME",
    [E_WEB_IDENTITY_TOKEN_FILE] = "AWS_WEB_IDENTITY_TOKEN_FILE",
    [E_ROLE_ARN] = "AWS_ROLE_ARN",
    [E_ROLE_SESSION_NAME] = "AWS_ROLE_SESSION_NAME",
    [E_ENDPOINT_URL_STS] = "AWS_ENDPOINT_URL_STS",
    [E_REGION] = "AWS_REGION",
    [E_DEFAULT_REGION] = "AWS_DEFAULT_REGION",
    [E_CONTAINER_RELATIVE_URI] = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    [E_CONTAINER_FULL_URI] = "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    [E_CONTAINER_TOKEN] = "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    [E_CONTAINER_TOKEN_FILE] = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    [E_IMDS_DISABLED] = "AWS_EC2_METADATA_DISABLED",
    [E_IMDS_ENDPOINT] = "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    [E_IMDS_ENDPOINT_MODE] = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
};

typedef enum { SRC_NONE, SRC_STATIC, SRC_WEB_IDENTITY, SRC_CONTAINER, SRC_IMDS } src_kind_t;

typedef enum { STEP_IDLE, STEP_STS, STEP_CONTAINER, STEP_IMDS_TOKEN, STEP_IMDS_ROLE, STEP_IMDS_CREDS } step_t;

typedef struct {
    bool tls;
    char *host; /* without IPv6 brackets */
    uint16_t port;
    char *path; /* origin-form, query included, never empty */
} url_t;

typedef struct retired_s {
    struct retired_s *next;
    gw_aws_credentials_snapshot_t *snap; /* holds the reference the provider had while it was published */
    unsigned quiet;                      /* bit i: readers[i] was seen at zero after the unpublish */
} retired_t;

/* The block behind a snapshot: strings live in the same allocation, so one wipe covers them all. */
typedef struct {
    gw_aws_credentials_snapshot_t pub;
    size_t size;
    char data[];
} snap_block_t;

/* Reclamation. get() loads the published pointer and then takes a reference; in between, the main
 * thread may unpublish the snapshot and drop its own reference, which would free it under the
 * reader. A refcount alone cannot close that window, so get() also counts itself in one of two
 * reader counters (picked by the parity of `phase`) for the duration of load + increment. An
 * unpublished snapshot keeps the provider's reference until each of the two counters has been seen
 * at zero after the unpublish: a get() that could still load the old pointer had counted itself
 * before the unpublish, so a zero read later means it has finished and owns a counted reference.
 * Each time the main thread sees the idle counter at zero it flips `phase`, so new readers move
 * there and the other counter drains even under constant load (the two-index scheme of sleepable
 * RCU). Chosen over a time-based grace period because it assumes nothing about how long a thread
 * can be preempted, and over hazard pointers because workers need no registration. A get() costs
 * three atomic read-modify-writes and two loads: no lock, no loop, no wait. */
struct gw_aws_credentials_provider_s {
    _Atomic(gw_aws_credentials_snapshot_t *) cur;
    atomic_uint phase;
    atomic_long readers[2];

    /* Everything below belongs to the main loop's thread. */
    uv_loop_t *loop;
    uv_timer_t refresh_timer; /* the next fetch: ahead of expiry, or a retry after a failure */
    uv_timer_t expiry_timer;  /* unpublishes credentials that expired without being renewed */
    uv_timer_t reclaim_timer; /* grace periods of retired snapshots */
    int open_handles;
    bool closing;
    retired_t *retired;
    size_t n_retired;

    src_kind_t kind;
    char *env[E_COUNT];
    char *region;
    char *profile; /* BSP profile */
    url_t url;     /* STS endpoint, container URI or IMDS base */

    gw_upstream_pool_t *pool;
    gw_upstream_req_t *req;
    step_t step;
    int http_status;
    bool resp_too_big;
    gw_buf_t resp;      /* allocated once at its cap and never reallocated: it holds secrets */
    gw_buf_t req_body;  /* SECRET (the web identity token); must live until on_done */
    char *imds_token;   /* SECRET, during one IMDS resolution */

    bool settled;
    const char *error;
    bool failing; /* the current run of failures was logged once at warn */
    uint64_t backoff_ms;
    uint64_t fetches_ok, fetches_failed;
};

typedef gw_aws_credentials_provider_t provider_t;

static void fetch_start(provider_t *p);

/* ------------------------------------------------------------------------------------------------
 * Small helpers */

static void wipe_free(char *s, size_t n)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, n);
    free(s);
}

static void wipe_str(char **s)
{
    if (*s)
        wipe_free(*s, strlen(*s));
    *s = NULL;
}

/* A buffer that may hold a secret: allocated at its cap up front, so no realloc leaves copies. */
static void secret_buf_init(gw_buf_t *b, size_t cap)
{
    gw_buf_init(b, cap);
    if (gw_buf_reserve(b, cap) == NULL)
        abort(); /* cannot happen: cap fits the empty buffer */
}

static void secret_buf_free(gw_buf_t *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    gw_buf_free(b);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static gw_str_t trim(gw_str_t s)
{
    while (s.len && is_space(s.base[0])) {
        s.base++;
        s.len--;
    }
    while (s.len && is_space(s.base[s.len - 1]))
        s.len--;
    return s;
}

/* Credential values go into HTTP header values: visible ASCII only. */
static bool visible_ascii(gw_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.base[i] <= 0x20 || (unsigned char)s.base[i] >= 0x7f)
            return false;
    return true;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads a whole file of at most max bytes (NUL-terminated copy in *out, which the caller wipes and
 * frees). GW_OK, GW_DONE when it does not exist, GW_TOOBIG, GW_ERROR. */
static int read_file(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? GW_DONE : GW_ERROR;
    char *buf = gw_malloc(max + 2);
    size_t n = 0;
    int rc = GW_OK;
    while (n <= max) {
        ssize_t got = read(fd, buf + n, max + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = GW_ERROR;
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (rc == GW_OK && n > max)
        rc = GW_TOOBIG;
    if (rc != GW_OK) {
        wipe_free(buf, max + 2);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return GW_OK;
}

/* The size to wipe for a buffer returned by read_file. */
#define READ_FILE_ALLOC(max) ((size_t)(max) + 2)

/* ------------------------------------------------------------------------------------------------
 * Snapshots */

static gw_aws_credentials_snapshot_t *snap_new(gw_str_t akid, gw_str_t secret, gw_str_t token, int64_t expiration,
                                               const char *source)
{
    if (akid.len == 0 || secret.len == 0 || akid.len > MAX_FIELD || secret.len > MAX_FIELD || token.len > MAX_FIELD ||
        !visible_ascii(akid) || !visible_ascii(secret) || !visible_ascii(token))
        return NULL;
    size_t size = sizeof(snap_block_t) + akid.len + secret.len + token.len + 3;
    snap_block_t *b = gw_malloc(size);
    memset(b, 0, sizeof(*b));
    b->size = size;
    char *d = b->data;
    b->pub.access_key_id = d;
    memcpy(d, akid.base, akid.len);
    d[akid.len] = '\0';
    d += akid.len + 1;
    b->pub.secret_access_key = d;
    memcpy(d, secret.base, secret.len);
    d[secret.len] = '\0';
    d += secret.len + 1;
    b->pub.session_token = NULL;
    if (token.len) {
        b->pub.session_token = d;
        memcpy(d, token.base, token.len);
        d[token.len] = '\0';
    }
    b->pub.expiration = expiration;
    b->pub.source = source;
    atomic_init(&b->pub.refcount, 1);
    return &b->pub;
}

static void snap_unref(gw_aws_credentials_snapshot_t *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1)
        return;
    snap_block_t *b = GW_CONTAINER_OF(s, snap_block_t, pub);
    OPENSSL_cleanse(b, b->size);
    free(b);
}

void (*gw_aws_credentials_test_hook)(void);

gw_aws_credentials_snapshot_t *gw_aws_credentials_get(gw_aws_credentials_provider_t *p)
{
    if (p == NULL)
        return NULL;
    /* seq_cst on the counter and the pointer: the count must be visible before the load (see the
     * reclamation note at the provider). */
    unsigned idx = atomic_load(&p->phase) & 1u;
    atomic_fetch_add(&p->readers[idx], 1);
    gw_aws_credentials_snapshot_t *s = atomic_load(&p->cur);
    if (__builtin_expect(gw_aws_credentials_test_hook != NULL, 0))
        gw_aws_credentials_test_hook();
    if (s)
        atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
    atomic_fetch_sub(&p->readers[idx], 1);
    return s;
}

void gw_aws_credentials_release(gw_aws_credentials_snapshot_t *s)
{
    snap_unref(s);
}

static void provider_finish_close(provider_t *p);
static void on_reclaim_timer(uv_timer_t *t);

/* Frees what has been quiet on both counters; flips the phase so that the busy counter drains. */
static void reclaim(provider_t *p)
{
    for (int round = 0; round < 2 && p->retired; round++) {
        unsigned ph = atomic_load(&p->phase);
        unsigned idle = (ph & 1u) ^ 1u;
        if (atomic_load(&p->readers[idle]) != 0)
            break;
        for (retired_t *r = p->retired; r; r = r->next)
            r->quiet |= 1u << idle;
        atomic_store(&p->phase, ph + 1);
    }
    for (retired_t **rp = &p->retired; *rp;) {
        retired_t *r = *rp;
        if (r->quiet != 3u) {
            rp = &r->next;
            continue;
        }
        *rp = r->next;
        snap_unref(r->snap);
        free(r);
        p->n_retired--;
    }
    if (p->retired) {
        if (!uv_is_active((uv_handle_t *)&p->reclaim_timer))
            uv_timer_start(&p->reclaim_timer, on_reclaim_timer, RECLAIM_INTERVAL_MS, RECLAIM_INTERVAL_MS);
        return;
    }
    uv_timer_stop(&p->reclaim_timer);
    if (p->closing)
        provider_finish_close(p);
}

static void on_reclaim_timer(uv_timer_t *t)
{
    reclaim(t->data);
}

/* Unpublishes (or replaces) the current snapshot; the old one is freed after its grace period. */
static void swap_current(provider_t *p, gw_aws_credentials_snapshot_t *next)
{
    gw_aws_credentials_snapshot_t *old = atomic_exchange(&p->cur, next);
    if (old == NULL)
        return;
    retired_t *r = gw_calloc(1, sizeof(*r));
    r->snap = old;
    r->next = p->retired;
    p->retired = r;
    p->n_retired++;
    reclaim(p);
}

/* ------------------------------------------------------------------------------------------------
 * Shared credentials / config files (INI). Only static keys are understood; a profile that relies
 * on role_arn, credential_process, SSO or login sessions is reported and skipped. */

typedef struct {
    gw_str_t akid, secret, token; /* slices into the text */
    bool found;                    /* the profile's section exists */
    bool unsupported;              /* it names another credential mechanism */
} ini_profile_t;

static bool section_matches(gw_str_t name, bool config_style, gw_str_t profile)
{
    name = trim(name);
    if (!config_style)
        return gw_str_eq(name, profile);
    /* The config file spells profiles "[profile NAME]", except "[default]". */
    if (gw_str_eq_lit(name, "default"))
        return gw_str_eq_lit(profile, "default");
    if (name.len > 8 && memcmp(name.base, "profile", 7) == 0 && (name.base[7] == ' ' || name.base[7] == '\t'))
        return gw_str_eq(trim(gw_str(name.base + 8, name.len - 8)), profile);
    return false;
}

/* Drops an inline comment: '#' or ';' after whitespace (credential values never contain either). */
static gw_str_t cut_comment(gw_str_t v)
{
    for (size_t i = 1; i < v.len; i++)
        if ((v.base[i] == '#' || v.base[i] == ';') && (v.base[i - 1] == ' ' || v.base[i - 1] == '\t'))
            return trim(gw_str(v.base, i));
    return v;
}

static void ini_lookup(gw_str_t text, gw_str_t profile, bool config_style, ini_profile_t *out)
{
    static const char *const other_mechanisms[] = {
        "role_arn", "credential_process", "credential_source", "source_profile", "web_identity_token_file",
        "sso_session", "sso_start_url", "sso_account_id", "login_session",
    };
    memset(out, 0, sizeof(*out));
    bool in_profile = false, nested = false;
    size_t i = 0;
    while (i < text.len) {
        const char *line = text.base + i;
        const char *nl = memchr(line, '\n', text.len - i);
        size_t n = nl ? (size_t)(nl - line) : text.len - i;
        i += n + (nl ? 1 : 0);
        bool indented = n > 0 && (line[0] == ' ' || line[0] == '\t');
        gw_str_t l = trim(gw_str(line, n));
        if (l.len == 0 || l.base[0] == '#' || l.base[0] == ';')
            continue;
        if (l.base[0] == '[') {
            const char *close = memchr(l.base, ']', l.len);
            nested = false;
            in_profile = close && section_matches(gw_str(l.base + 1, (size_t)(close - l.base - 1)), config_style, profile);
            out->found |= in_profile;
            continue;
        }
        /* Indented lines under a key with an empty value are its sub-properties ("s3 =\n  addressing_style = ..."). */
        if (indented && nested)
            continue;
        const char *eq = memchr(l.base, '=', l.len);
        if (eq == NULL)
            continue;
        gw_str_t key = trim(gw_str(l.base, (size_t)(eq - l.base)));
        gw_str_t val = cut_comment(trim(gw_str(eq + 1, (size_t)(l.base + l.len - eq - 1))));
        nested = val.len == 0;
        if (!in_profile)
            continue;
        if (gw_str_case_eq_lit(key, "aws_access_key_id"))
            out->akid = val;
        else if (gw_str_case_eq_lit(key, "aws_secret_access_key"))
            out->secret = val;
        else if (gw_str_case_eq_lit(key, "aws_session_token"))
            out->token = val;
        else
            for (size_t k = 0; k < GW_ARRAY_SIZE(other_mechanisms); k++)
                if (gw_str_case_eq(key, gw_str_c(other_mechanisms[k])))
                    out->unsupported = true;
    }
}

static bool ini_has_keys(const ini_profile_t *ip)
{
    return ip->akid.len > 0 && ip->secret.len > 0;
}

/* ------------------------------------------------------------------------------------------------
 * URLs of the remote sources */

static void url_free(url_t *u)
{
    free(u->host);
    free(u->path);
    memset(u, 0, sizeof(*u));
}

/* http(s)://host[:port][/path][?query]; no user info, fragment dropped. */
static int url_parse(const char *s, url_t *u)
{
    memset(u, 0, sizeof(*u));
    size_t n = strlen(s);
    if (n == 0 || n > MAX_URL)
        return GW_EINVAL;
    gw_str_t in = gw_str(s, n);
    size_t off;
    if (in.len >= 8 && gw_str_case_eq(gw_str(s, 8), GW_STR("https://"))) {
        u->tls = true;
        off = 8;
    } else if (in.len >= 7 && gw_str_case_eq(gw_str(s, 7), GW_STR("http://"))) {
        off = 7;
    } else {
        return GW_EINVAL;
    }
    size_t end = off;
    while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#')
        end++;
    gw_str_t auth = gw_str(s + off, end - off);
    if (auth.len == 0 || memchr(auth.base, '@', auth.len))
        return GW_EINVAL;
    gw_str_t host, port = GW_STR_NULL;
    if (auth.base[0] == '[') {
        const char *rb = memchr(auth.base, ']', auth.len);
        if (rb == NULL)
            return GW_EINVAL;
        host = gw_str(auth.base + 1, (size_t)(rb - auth.base - 1));
        size_t rest = auth.len - (size_t)(rb - auth.base) - 1;
        if (rest > 0) {
            if (rb[1] != ':')
                return GW_EINVAL;
            port = gw_str(rb + 2, rest - 1);
        }
    } else {
        const char *colon = memchr(auth.base, ':', auth.len);
        host = colon ? gw_str(auth.base, (size_t)(colon - auth.base)) : auth;
        if (colon)
            port = gw_str(colon + 1, auth.len - host.len - 1);
    }
    if (host.len == 0)
        return GW_EINVAL;
    for (size_t i = 0; i < host.len; i++) {
        unsigned char c = (unsigned char)host.base[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\')
            return GW_EINVAL;
    }
    u->port = u->tls ? 443 : 80;
    if (port.base) {
        if (port.len == 0 || port.len > 5)
            return GW_EINVAL;
        unsigned v = 0;
        for (size_t i = 0; i < port.len; i++) {
            if (port.base[i] < '0' || port.base[i] > '9')
                return GW_EINVAL;
            v = v * 10 + (unsigned)(port.base[i] - '0');
        }
        if (v == 0 || v > 65535)
            return GW_EINVAL;
        u->port = (uint16_t)v;
    }
    size_t pend = end;
    while (pend < n && s[pend] != '#')
        pend++;
    gw_buf_t path;
    gw_buf_init(&path, MAX_URL + 2);
    if (end == pend || s[end] != '/')
        gw_buf_append_byte(&path, '/');
    gw_buf_append(&path, s + end, pend - end);
    gw_buf_cstr(&path);
    u->path = gw_buf_detach(&path, NULL);
    u->host = gw_strndup(host.base, host.len);
    return GW_OK;
}

/* base path without its trailing slashes + suffix (which starts with '/'). */
static char *url_join(const url_t *base, const char *suffix)
{
    size_t bl = strlen(base->path);
    while (bl > 0 && base->path[bl - 1] == '/')
        bl--;
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append(&b, base->path, bl);
    gw_buf_append(&b, suffix, strlen(suffix));
    gw_buf_cstr(&b);
    return gw_buf_detach(&b, NULL);
}

/* Plain http for container credentials only to this machine or the ECS / EKS Pod Identity agents:
 * anything else could be an attacker-chosen host receiving the authorization token in clear. */
static bool container_host_allowed(const char *host)
{
    if (strcmp(host, "localhost") == 0)
        return true;
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127 || (a[0] == 169 && a[1] == 254 && a[2] == 170 && (a[3] == 2 || a[3] == 23));
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char loop6[16] = {[15] = 1};
        static const unsigned char eks6[16] = {0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23}; /* fd00:ec2::23 */
        return memcmp(a, loop6, 16) == 0 || memcmp(a, eks6, 16) == 0;
    }
    return false;
}

static bool region_valid(const char *r)
{
    if (r == NULL || *r == '\0' || strlen(r) > 64)
        return false;
    for (const char *c = r; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return false;
    return true;
}

/* ------------------------------------------------------------------------------------------------
 * ISO 8601 times ("2024-05-01T12:00:00Z", fractions and offsets allowed) */

static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (eras of 400 years). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_iso8601(gw_str_t s, int64_t *out)
{
    s = trim(s);
    const char *p = s.base;
    int y, mo, d, h, mi, se;
    if (s.len < 20 || !digits(p, 4, &y) || p[4] != '-' || !digits(p + 5, 2, &mo) || p[7] != '-' ||
        !digits(p + 8, 2, &d) || (p[10] != 'T' && p[10] != 't' && p[10] != ' ') || !digits(p + 11, 2, &h) ||
        p[13] != ':' || !digits(p + 14, 2, &mi) || p[16] != ':' || !digits(p + 17, 2, &se))
        return GW_EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 ||
        se > 60)
        return GW_EINVAL;
    size_t i = 19;
    if (i < s.len && p[i] == '.') {
        size_t start = ++i;
        while (i < s.len && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == start)
            return GW_EINVAL;
    }
    int64_t offset = 0;
    if (i < s.len && (p[i] == 'Z' || p[i] == 'z')) {
        i++;
    } else if (i < s.len && (p[i] == '+' || p[i] == '-')) {
        int oh, om;
        bool colon = i + 3 < s.len && p[i + 3] == ':';
        if (i + (colon ? 6 : 5) != s.len || !digits(p + i + 1, 2, &oh) || !digits(p + i + (colon ? 4 : 3), 2, &om) ||
            oh > 23 || om > 59)
            return GW_EINVAL;
        offset = (p[i] == '-' ? -1 : 1) * ((int64_t)oh * 3600 + om * 60);
        i = s.len;
    } else {
        return GW_EINVAL; /* a time without a zone is ambiguous */
    }
    if (i != s.len)
        return GW_EINVAL;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (se == 60 ? 59 : se) - offset;
    return GW_OK;
}

/* ------------------------------------------------------------------------------------------------
 * A bounded XML scanner for STS answers: element texts by name, no DOM. Understands what STS sends
 * (elements, attributes on the root, the five predefined entities and numeric ASCII references);
 * no CDATA, no nesting of an element inside one of the same name. */

static int xml_element(gw_str_t doc, const char *name, gw_str_t *inner)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 2 < doc.len; i++) {
        if (doc.base[i] != '<' || memcmp(doc.base + i + 1, name, nl) != 0)
            continue;
        char c = doc.base[i + 1 + nl];
        if (c != '>' && c != '/' && !is_space(c))
            continue;
        const char *tag_end = memchr(doc.base + i + 1 + nl, '>', doc.len - (i + 1 + nl));
        if (tag_end == NULL)
            return GW_EINVAL;
        size_t start = (size_t)(tag_end - doc.base) + 1;
        if (tag_end[-1] == '/') {
            *inner = gw_str(doc.base + start, 0);
            return GW_OK;
        }
        for (size_t j = start; j + nl + 3 <= doc.len; j++) {
            if (doc.base[j] == '<' && doc.base[j + 1] == '/' && memcmp(doc.base + j + 2, name, nl) == 0 &&
                doc.base[j + 2 + nl] == '>') {
                *inner = gw_str(doc.base + start, j - start);
                return GW_OK;
            }
        }
        return GW_EINVAL;
    }
    return GW_DONE;
}

/* Appends the decoded text of a text-only element to out. GW_OK / GW_EINVAL / GW_TOOBIG. */
static int xml_text(gw_str_t raw, gw_buf_t *out)
{
    static const struct {
        const char *name;
        char c;
    } entities[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    raw = trim(raw);
    size_t saved = out->len;
    for (size_t i = 0; i < raw.len;) {
        char c = raw.base[i];
        if (c == '<')
            goto bad;
        if (c != '&') {
            if (gw_buf_append_byte(out, c) != GW_OK)
                goto toobig;
            i++;
            continue;
        }
        gw_str_t rest = gw_str(raw.base + i + 1, raw.len - i - 1);
        const char *semi = memchr(rest.base, ';', GW_MIN(rest.len, 12));
        if (semi == NULL)
            goto bad;
        size_t elen = (size_t)(semi - rest.base) + 1;
        char decoded = 0;
        for (size_t k = 0; k < GW_ARRAY_SIZE(entities); k++)
            if (gw_str_eq(gw_str(rest.base, elen), gw_str_c(entities[k].name)))
                decoded = entities[k].c;
        if (decoded == 0 && elen > 2 && rest.base[0] == '#') {
            bool hex = rest.base[1] == 'x' || rest.base[1] == 'X';
            unsigned v = 0;
            size_t k = hex ? 2 : 1;
            if (k >= elen - 1)
                goto bad;
            for (; k < elen - 1; k++) {
                char h = rest.base[k];
                int dv = h >= '0' && h <= '9' ? h - '0'
                         : hex && h >= 'a' && h <= 'f' ? h - 'a' + 10
                         : hex && h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                        : -1;
                if (dv < 0 || v > 0x10ffff)
                    goto bad;
                v = v * (hex ? 16u : 10u) + (unsigned)dv;
            }
            if (v == 0 || v >= 0x80) /* credentials are ASCII */
                goto bad;
            decoded = (char)v;
        }
        if (decoded == 0)
            goto bad;
        if (gw_buf_append_byte(out, decoded) != GW_OK)
            goto toobig;
        i += 1 + elen;
    }
    return GW_OK;
bad:
    out->len = saved;
    return GW_EINVAL;
toobig:
    out->len = saved;
    return GW_TOOBIG;
}

/* A short, log-safe copy of an STS error code ("InvalidIdentityToken"); "" when absent or odd. */
static void sts_error_code(gw_str_t doc, char *out, size_t cap)
{
    out[0] = '\0';
    gw_str_t err, code;
    if (xml_element(doc, "Error", &err) != GW_OK || xml_element(err, "Code", &code) != GW_OK)
        return;
    code = trim(code);
    if (code.len == 0 || code.len >= cap)
        return;
    for (size_t i = 0; i < code.len; i++) {
        char c = code.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return;
    }
    memcpy(out, code.base, code.len);
    out[code.len] = '\0';
}

/* ------------------------------------------------------------------------------------------------
 * Publishing, renewal, failures */

/* Static texts: the error of gw_aws_credentials_settled() and the log lines. */
#define ERR_NONE                                                                                                 \
    "no AWS credentials: none in the environment or the shared files, no web identity or container endpoint " \
    "configured, and instance metadata is disabled (AWS_EC2_METADATA_DISABLED)"
#define ERR_IMDS_UNREACHABLE                                                                              \
    "no AWS credentials: none in the environment or the shared files, no web identity or container " \
    "endpoint configured, and no instance metadata service (IMDSv2) answered"
#define ERR_EXPIRED "AWS credentials expired and could not be renewed"

typedef struct {
    const char *read_token;  /* the token file could not be read */
    const char *unreachable; /* connect / timeout / reset */
    const char *refused;     /* an HTTP status other than 200 */
    const char *malformed;   /* an answer that is not credentials */
} src_errors_t;

static const src_errors_t web_identity_errors = {
    "web identity: cannot read AWS_WEB_IDENTITY_TOKEN_FILE",
    "web identity: STS unreachable",
    "web identity: STS refused AssumeRoleWithWebIdentity",
    "web identity: malformed or expired STS answer",
};
static const src_errors_t container_errors = {
    "container credentials: cannot read the authorization token",
    "container credentials: endpoint unreachable",
    "container credentials: endpoint refused the request",
    "container credentials: malformed or expired answer",
};
static const src_errors_t imds_errors = {
    "instance metadata: no token",
    "instance metadata: the service stopped answering",
    "instance metadata: request refused",
    "instance metadata: malformed or expired answer",
};

static const src_errors_t *errors_of(const provider_t *p)
{
    return p->kind == SRC_WEB_IDENTITY ? &web_identity_errors
           : p->kind == SRC_CONTAINER  ? &container_errors
                                       : &imds_errors;
}

static const char *kind_name(src_kind_t k)
{
    return k == SRC_WEB_IDENTITY ? "web-identity" : k == SRC_CONTAINER ? "container" : k == SRC_IMDS ? "imds" : "static";
}

static void on_refresh_timer(uv_timer_t *t)
{
    fetch_start(t->data);
}

static void schedule_refresh(provider_t *p, uint64_t delay_ms)
{
    uv_timer_stop(&p->refresh_timer);
    if (!p->closing)
        uv_timer_start(&p->refresh_timer, on_refresh_timer, delay_ms, 0);
}

static void settle_error(provider_t *p, const char *msg)
{
    p->settled = true;
    p->error = msg;
    p->kind = SRC_NONE;
    gw_log_warn("aws credentials: %s", msg);
}

/* why: a short, secret-free reason for the log (the upstream client's detail, an HTTP status). */
static void fetch_failed(provider_t *p, const char *msg, const char *why)
{
    p->step = STEP_IDLE;
    wipe_str(&p->imds_token);
    p->fetches_failed++;
    p->backoff_ms = p->backoff_ms ? GW_MIN(p->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_FIRST_MS;
    bool serving = atomic_load(&p->cur) != NULL;
    /* IMDS is the chain's last resort: if it never answered, the truth is "no credentials anywhere". */
    if (!p->settled && p->kind == SRC_IMDS && p->fetches_ok == 0 && msg == imds_errors.unreachable)
        msg = ERR_IMDS_UNREACHABLE;
    if (!serving)
        p->error = msg;
    p->settled = true;
    GW_LOG(p->failing ? GW_LOG_DEBUG : GW_LOG_WARN, "aws credentials: %s%s%s; %s; next attempt in %llu ms", msg,
           why && *why ? ": " : "", why ? why : "",
           serving ? "the current credentials stay in use until they expire" : "no credentials yet",
           (unsigned long long)p->backoff_ms);
    p->failing = true;
    schedule_refresh(p, p->backoff_ms);
}

static void fail_http(provider_t *p, const char *msg, int status, const char *code)
{
    char why[96];
    snprintf(why, sizeof(why), "HTTP %d%s%s", status, code && *code ? " " : "", code ? code : "");
    fetch_failed(p, msg, why);
}

static void on_expiry_timer(uv_timer_t *t)
{
    provider_t *p = t->data;
    gw_aws_credentials_snapshot_t *s = atomic_load(&p->cur);
    if (s == NULL || s->expiration == 0)
        return;
    int64_t left = s->expiration * 1000 - wall_ms();
    if (left > 0) { /* the loop's monotonic clock ran ahead of the wall clock */
        uv_timer_start(&p->expiry_timer, on_expiry_timer, (uint64_t)left, 0);
        return;
    }
    swap_current(p, NULL);
    p->error = ERR_EXPIRED;
    gw_log_warn("aws credentials: the %s credentials expired and could not be renewed; requests fail until a fetch "
                "succeeds",
                kind_name(p->kind));
}

typedef struct {
    gw_buf_t akid, secret, token, expiration;
} fields_t;

static void fields_init(fields_t *f)
{
    secret_buf_init(&f->akid, MAX_FIELD);
    secret_buf_init(&f->secret, MAX_FIELD);
    secret_buf_init(&f->token, MAX_FIELD);
    secret_buf_init(&f->expiration, 64);
}

static void fields_free(fields_t *f)
{
    secret_buf_free(&f->akid);
    secret_buf_free(&f->secret);
    secret_buf_free(&f->token);
    secret_buf_free(&f->expiration);
}

/* Publishes fetched credentials and plans their renewal: 5 minutes ahead of expiry, or at half-life
 * when they live less than 10 minutes. */
static void publish_fetched(provider_t *p, const fields_t *f, const char *source)
{
    const src_errors_t *e = errors_of(p);
    int64_t exp = 0;
    if (f->expiration.len && parse_iso8601(gw_buf_str(&f->expiration), &exp) != GW_OK) {
        fetch_failed(p, e->malformed, "unreadable Expiration");
        return;
    }
    int64_t now = wall_ms();
    if (exp != 0 && exp * 1000 <= now) {
        fetch_failed(p, e->malformed, "credentials already expired (is the clock right?)");
        return;
    }
    gw_aws_credentials_snapshot_t *s =
        snap_new(gw_buf_str(&f->akid), gw_buf_str(&f->secret), gw_buf_str(&f->token), exp, source);
    if (s == NULL) {
        fetch_failed(p, e->malformed, "missing or unusable key fields");
        return;
    }
    p->step = STEP_IDLE;
    wipe_str(&p->imds_token);
    p->fetches_ok++;
    p->backoff_ms = 0;
    p->settled = true;
    p->error = NULL;
    GW_LOG(p->fetches_ok == 1 || p->failing ? GW_LOG_INFO : GW_LOG_DEBUG,
           "aws credentials: obtained from %s%s, valid for %lld s", source, p->failing ? " after failures" : "",
           exp ? (long long)((exp * 1000 - now) / 1000) : -1LL);
    p->failing = false;
    swap_current(p, s);
    uv_timer_stop(&p->expiry_timer);
    if (exp == 0) { /* the source says they do not expire (as the SDKs, never renewed) */
        uv_timer_stop(&p->refresh_timer);
        return;
    }
    int64_t life = exp * 1000 - now;
    int64_t delay = life > 2 * (int64_t)REFRESH_AHEAD_MS ? life - REFRESH_AHEAD_MS : life / 2;
    delay = GW_MAX(delay, GW_MIN((int64_t)MIN_REFRESH_MS, life));
    schedule_refresh(p, (uint64_t)delay);
    uv_timer_start(&p->expiry_timer, on_expiry_timer, (uint64_t)life, 0);
}

static bool publish_static(provider_t *p, gw_str_t akid, gw_str_t secret, gw_str_t token, const char *source)
{
    gw_aws_credentials_snapshot_t *s = snap_new(trim(akid), trim(secret), trim(token), 0, source);
    if (s == NULL)
        return false;
    p->kind = SRC_STATIC;
    p->settled = true;
    p->error = NULL;
    swap_current(p, s);
    gw_log_info("aws credentials: using %s", source);
    return true;
}

/* ------------------------------------------------------------------------------------------------
 * HTTP exchanges on the main loop */

static int on_http_head(void *ud, int status, const gw_http_header_t *h, size_t n)
{
    provider_t *p = ud;
    p->http_status = status;
    return GW_OK;
}

static int on_http_body(void *ud, const char *d, size_t n)
{
    provider_t *p = ud;
    /* Past the cap the rest is dropped, not the connection: the total timeout bounds a flood. */
    if (!p->resp_too_big && gw_buf_append(&p->resp, d, n) != GW_OK)
        p->resp_too_big = true;
    return GW_OK;
}

static void on_http_done(void *ud, int status, const char *detail);

static const gw_upstream_callbacks_t http_callbacks = {on_http_head, on_http_body, on_http_done};

static void resp_wipe(provider_t *p)
{
    if (p->resp.data)
        OPENSSL_cleanse(p->resp.data, p->resp.len);
    gw_buf_reset(&p->resp);
}

static void http_send(provider_t *p, step_t step, const char *method, const char *path, const gw_http_header_t *h,
                      size_t nh, gw_str_t body, uint64_t connect_ms, uint64_t total_ms)
{
    if (p->pool == NULL) {
        /* Credential fetches are rare: no point keeping connections around for long. */
        gw_upstream_pool_opts_t o = {.max_idle_per_host = 1, .idle_keepalive_ms = 1000};
        p->pool = gw_upstream_pool_new(p->loop, &o, NULL);
    }
    gw_upstream_target_t t = {gw_str_c(p->url.host), p->url.port, p->url.tls, GW_STR_NULL, GW_STR_NULL};
    gw_upstream_request_t rq = {gw_str_c(method), gw_str_c(path), h, nh, body};
    gw_upstream_timeouts_t to = {connect_ms, total_ms, total_ms};
    resp_wipe(p);
    p->step = step;
    p->http_status = 0;
    p->resp_too_big = false;
    p->req = gw_upstream_send(p->pool, &t, &rq, &to, &http_callbacks, p);
    if (p->req == NULL)
        fetch_failed(p, errors_of(p)->unreachable, "upstream client refused the request");
}

/* Header values must not carry control characters (request splitting). */
static bool header_value_ok(gw_str_t v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.base[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static void start_sts(provider_t *p)
{
    char *file = NULL;
    size_t flen = 0;
    int rc = read_file(p->env[E_WEB_IDENTITY_TOKEN_FILE], MAX_TOKEN_FILE, &file, &flen);
    if (rc != GW_OK) {
        fetch_failed(p, web_identity_errors.read_token,
                     rc == GW_DONE ? "no such file" : rc == GW_TOOBIG ? "larger than 64 KiB" : "read error");
        return;
    }
    gw_str_t token = trim(gw_str(file, flen)); /* re-read at every refresh: the kubelet rotates it */
    if (token.len == 0) {
        wipe_free(file, flen + 1);
        fetch_failed(p, web_identity_errors.read_token, "empty file");
        return;
    }
    char session[64];
    if (p->env[E_ROLE_SESSION_NAME])
        snprintf(session, sizeof(session), "%s", p->env[E_ROLE_SESSION_NAME]);
    else
        snprintf(session, sizeof(session), "aigw-%lld", (long long)wall_ms());
    const char *role = p->env[E_ROLE_ARN];
    size_t cap = 256 + 3 * (strlen(role) + strlen(session) + token.len);
    secret_buf_free(&p->req_body);
    secret_buf_init(&p->req_body, cap);
    gw_buf_t *b = &p->req_body;
    gw_buf_append_lit(b, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=");
    gw_aws_uri_encode(gw_str_c(role), true, b);
    gw_buf_append_lit(b, "&RoleSessionName=");
    gw_aws_uri_encode(gw_str_c(session), true, b);
    gw_buf_append_lit(b, "&WebIdentityToken=");
    gw_aws_uri_encode(token, true, b);
    wipe_free(file, flen + 1);
    static const gw_http_header_t headers[] = {
        {GW_STR("Content-Type"), GW_STR("application/x-www-form-urlencoded; charset=utf-8")},
        {GW_STR("Accept"), GW_STR("text/xml")},
    };
    http_send(p, STEP_STS, "POST", p->url.path, headers, GW_ARRAY_SIZE(headers), gw_buf_str(b), STS_CONNECT_MS,
              STS_TOTAL_MS);
}

static void start_container(provider_t *p)
{
    char *file = NULL;
    size_t flen = 0;
    gw_str_t token = GW_STR_NULL;
    /* The file wins over the variable (as the SDKs) and is re-read each time: EKS rotates it. */
    if (p->env[E_CONTAINER_TOKEN_FILE]) {
        int rc = read_file(p->env[E_CONTAINER_TOKEN_FILE], MAX_TOKEN_FILE, &file, &flen);
        if (rc != GW_OK) {
            fetch_failed(p, container_errors.read_token,
                         rc == GW_DONE ? "no such file" : rc == GW_TOOBIG ? "larger than 64 KiB" : "read error");
            return;
        }
        token = trim(gw_str(file, flen));
    } else if (p->env[E_CONTAINER_TOKEN]) {
        token = trim(gw_str_c(p->env[E_CONTAINER_TOKEN]));
    }
    if (!header_value_ok(token)) {
        wipe_free(file, flen + 1);
        fetch_failed(p, container_errors.read_token, "the token holds control characters");
        return;
    }
    gw_http_header_t headers[2] = {{GW_STR("Accept"), GW_STR("application/json")}};
    size_t nh = 1;
    if (token.len)
        headers[nh++] = (gw_http_header_t){GW_STR("Authorization"), token};
    /* gw_upstream_send copies the headers into the request head: the file can go right after. */
    http_send(p, STEP_CONTAINER, "GET", p->url.path, headers, nh, GW_STR_NULL, CONTAINER_CONNECT_MS,
              CONTAINER_TOTAL_MS);
    wipe_free(file, flen + 1);
}

static void imds_get(provider_t *p, step_t step, const char *suffix)
{
    char *path = url_join(&p->url, suffix);
    gw_http_header_t h = {GW_STR("X-aws-ec2-metadata-token"), gw_str_c(p->imds_token)};
    http_send(p, step, "GET", path, &h, 1, GW_STR_NULL, IMDS_TIMEOUT_MS, IMDS_TIMEOUT_MS);
    free(path);
}

static void start_imds(provider_t *p)
{
    char *path = url_join(&p->url, "/latest/api/token");
    gw_http_header_t h = {GW_STR("X-aws-ec2-metadata-token-ttl-seconds"), GW_STR(IMDS_TOKEN_TTL)};
    http_send(p, STEP_IMDS_TOKEN, "PUT", path, &h, 1, GW_STR_NULL, IMDS_TIMEOUT_MS, IMDS_TIMEOUT_MS);
    free(path);
}

static void fetch_start(provider_t *p)
{
    if (p->closing || p->req != NULL || p->step != STEP_IDLE)
        return;
    uv_timer_stop(&p->refresh_timer);
    switch (p->kind) {
    case SRC_WEB_IDENTITY:
        start_sts(p);
        break;
    case SRC_CONTAINER:
        start_container(p);
        break;
    case SRC_IMDS:
        start_imds(p);
        break;
    default:
        break;
    }
}

static void handle_sts(provider_t *p, gw_str_t body)
{
    if (p->http_status != 200) {
        char code[64];
        sts_error_code(body, code, sizeof(code));
        fail_http(p, web_identity_errors.refused, p->http_status, code);
        return;
    }
    static const struct {
        const char *name;
        size_t field;
    } names[] = {
        {"AccessKeyId", offsetof(fields_t, akid)},
        {"SecretAccessKey", offsetof(fields_t, secret)},
        {"SessionToken", offsetof(fields_t, token)},
        {"Expiration", offsetof(fields_t, expiration)},
    };
    fields_t f;
    fields_init(&f);
    gw_str_t result, creds, v;
    bool ok = xml_element(body, "AssumeRoleWithWebIdentityResult", &result) == GW_OK &&
              xml_element(result, "Credentials", &creds) == GW_OK;
    for (size_t i = 0; ok && i < GW_ARRAY_SIZE(names); i++)
        ok = xml_element(creds, names[i].name, &v) == GW_OK &&
             xml_text(v, (gw_buf_t *)((char *)&f + names[i].field)) == GW_OK;
    if (ok)
        publish_fetched(p, &f, "web-identity");
    else
        fetch_failed(p, web_identity_errors.malformed, "no Credentials element with the four fields");
    fields_free(&f);
}

/* Container and IMDS answers: {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} (+ "Code"). */
static void handle_json_creds(provider_t *p, gw_str_t body, const char *source)
{
    const src_errors_t *e = errors_of(p);
    if (p->http_status != 200) {
        fail_http(p, e->refused, p->http_status, NULL);
        return;
    }
    gw_str_t v;
    if (gw_json_validate(body.base, body.len, 8, NULL) != GW_OK || gw_json_type(body) != GW_JSON_OBJECT) {
        fetch_failed(p, e->malformed, "not a JSON object");
        return;
    }
    if (gw_json_object_get(body, GW_STR("Code"), &v) == GW_OK && !gw_json_key_eq(v, GW_STR("Success"))) {
        fetch_failed(p, e->malformed, "Code is not Success");
        return;
    }
    static const struct {
        const char *name;
        size_t field;
        bool required;
    } names[] = {
        {"AccessKeyId", offsetof(fields_t, akid), true},
        {"SecretAccessKey", offsetof(fields_t, secret), true},
        {"Token", offsetof(fields_t, token), false},
        {"Expiration", offsetof(fields_t, expiration), false},
    };
    fields_t f;
    fields_init(&f);
    bool ok = true;
    for (size_t i = 0; ok && i < GW_ARRAY_SIZE(names); i++) {
        int rc = gw_json_object_get(body, gw_str_c(names[i].name), &v);
        if (!names[i].required && (rc == GW_DONE || (rc == GW_OK && gw_json_type(v) == GW_JSON_NULL)))
            continue;
        ok = rc == GW_OK && gw_json_type(v) == GW_JSON_STRING &&
             gw_json_string_unescape(v, (gw_buf_t *)((char *)&f + names[i].field)) == GW_OK;
    }
    if (ok)
        publish_fetched(p, &f, source);
    else
        fetch_failed(p, e->malformed, "missing or unusable fields");
    fields_free(&f);
}

static bool role_name_ok(gw_str_t r)
{
    if (r.len == 0 || r.len > 128)
        return false;
    for (size_t i = 0; i < r.len; i++) {
        char c = r.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("+=,.@_-", c)))
            return false;
    }
    return true;
}

static void handle_imds(provider_t *p, gw_str_t body)
{
    switch (p->step) {
    case STEP_IMDS_TOKEN: {
        gw_str_t tok = trim(body);
        if (p->http_status != 200) {
            fail_http(p, imds_errors.read_token, p->http_status, NULL);
            return;
        }
        if (tok.len == 0 || tok.len > 4096 || !visible_ascii(tok)) {
            fetch_failed(p, imds_errors.malformed, "unusable session token");
            return;
        }
        wipe_str(&p->imds_token);
        p->imds_token = gw_strndup(tok.base, tok.len);
        imds_get(p, STEP_IMDS_ROLE, "/latest/meta-data/iam/security-credentials/");
        return;
    }
    case STEP_IMDS_ROLE: {
        if (p->http_status == 404) {
            fetch_failed(p, "instance metadata: no IAM role attached to this instance", "HTTP 404");
            return;
        }
        if (p->http_status != 200) {
            fail_http(p, imds_errors.refused, p->http_status, NULL);
            return;
        }
        gw_str_t b = trim(body);
        const char *nl = memchr(b.base, '\n', b.len);
        gw_str_t role = trim(nl ? gw_str(b.base, (size_t)(nl - b.base)) : b);
        if (!role_name_ok(role)) {
            fetch_failed(p, imds_errors.malformed, "unusable role name");
            return;
        }
        char suffix[256];
        snprintf(suffix, sizeof(suffix), "/latest/meta-data/iam/security-credentials/%.*s", (int)role.len, role.base);
        imds_get(p, STEP_IMDS_CREDS, suffix);
        return;
    }
    case STEP_IMDS_CREDS:
        handle_json_creds(p, body, "imds");
        return;
    default:
        return;
    }
}

static void on_http_done(void *ud, int status, const char *detail)
{
    provider_t *p = ud;
    p->req = NULL;
    secret_buf_free(&p->req_body);
    if (status != GW_UPSTREAM_OK) {
        fetch_failed(p, errors_of(p)->unreachable, detail);
    } else if (p->resp_too_big) {
        fetch_failed(p, errors_of(p)->malformed, "answer larger than 64 KiB");
    } else {
        /* The handlers copy what they keep before a next IMDS step reuses (and wipes) the buffer. */
        gw_str_t body = gw_buf_str(&p->resp);
        if (body.base == NULL)
            body = gw_str("", 0);
        switch (p->step) {
        case STEP_STS:
            handle_sts(p, body);
            break;
        case STEP_CONTAINER:
            handle_json_creds(p, body, "container");
            break;
        default:
            handle_imds(p, body);
            break;
        }
    }
    if (p->req == NULL)
        resp_wipe(p);
}

/* ------------------------------------------------------------------------------------------------
 * Resolution at creation */

static void resolve_bsp_file(provider_t *p, const char *text, const char *profile_name)
{
    p->profile = gw_strdup(profile_name && *profile_name ? profile_name : "default");
    size_t len = strlen(text);
    if (len > MAX_SHARED_FILE) {
        settle_error(p, "BackendSecurityPolicy credentials file: larger than 1 MiB");
        return;
    }
    ini_profile_t ip;
    ini_lookup(gw_str(text, len), gw_str_c(p->profile), false, &ip);
    /* Only this file: falling back to the environment would sign with an identity nobody chose. */
    if (!ip.found)
        settle_error(p, "BackendSecurityPolicy credentials file: the profile is not in the file");
    else if (!ini_has_keys(&ip))
        settle_error(p, "BackendSecurityPolicy credentials file: the profile has no aws_access_key_id and "
                        "aws_secret_access_key");
    else if (!publish_static(p, ip.akid, ip.secret, ip.token, "credentials-file-secret"))
        settle_error(p, "BackendSecurityPolicy credentials file: the profile's keys hold invalid characters");
}

static char *home_path(const provider_t *p, const char *suffix)
{
    if (p->env[E_HOME] == NULL)
        return NULL;
    gw_buf_t b;
    gw_buf_init(&b, GW_BUF_UNLIMITED);
    gw_buf_append(&b, p->env[E_HOME], strlen(p->env[E_HOME]));
    gw_buf_append(&b, suffix, strlen(suffix));
    gw_buf_cstr(&b);
    return gw_buf_detach(&b, NULL);
}

/* GW_OK published, GW_ERROR settled with an error, GW_DONE: continue the chain. */
static int resolve_shared_files(provider_t *p)
{
    bool explicit_profile = p->env[E_PROFILE] != NULL;
    gw_str_t profile = gw_str_c(explicit_profile ? p->env[E_PROFILE] : "default");
    char *paths[2] = {
        p->env[E_SHARED_CREDENTIALS_FILE] ? gw_strdup(p->env[E_SHARED_CREDENTIALS_FILE])
                                          : home_path(p, "/.aws/credentials"),
        p->env[E_CONFIG_FILE] ? gw_strdup(p->env[E_CONFIG_FILE]) : home_path(p, "/.aws/config"),
    };
    bool found = false, unsupported = false;
    int result = GW_DONE;
    /* The credentials file first: the SDKs let its keys win over the config file's. */
    for (int i = 0; i < 2 && result == GW_DONE; i++) {
        if (paths[i] == NULL)
            continue;
        char *text;
        size_t len;
        int rc = read_file(paths[i], MAX_SHARED_FILE, &text, &len);
        if (rc == GW_DONE)
            continue;
        if (rc != GW_OK) {
            gw_log_warn("aws credentials: the shared %s file is unreadable%s; skipped", i ? "config" : "credentials",
                        rc == GW_TOOBIG ? " (larger than 1 MiB)" : "");
            continue;
        }
        ini_profile_t ip;
        ini_lookup(gw_str(text, len), profile, i == 1, &ip);
        found |= ip.found;
        unsupported |= ip.unsupported;
        if (ini_has_keys(&ip)) {
            if (publish_static(p, ip.akid, ip.secret, ip.token, "shared-credentials-file")) {
                result = GW_OK;
            } else {
                settle_error(p, "shared credentials file: the profile's keys hold invalid characters");
                result = GW_ERROR;
            }
        }
        wipe_free(text, len + 1);
    }
    if (result == GW_DONE && explicit_profile && !found) {
        /* As the SDKs: a profile asked for by name and missing is an error, not a reason to guess. */
        settle_error(p, "AWS_PROFILE names a profile that is in neither the shared credentials nor the config file");
        result = GW_ERROR;
    } else if (result == GW_DONE && unsupported) {
        gw_log_warn("aws credentials: profile \"%.*s\" relies on role_arn, credential_process or SSO, which aigw does "
                    "not support; continuing with the rest of the chain",
                    (int)GW_MIN(profile.len, 64), profile.base);
    }
    free(paths[0]);
    free(paths[1]);
    return result;
}

static int setup_url(provider_t *p, const char *url, const char *bad)
{
    url_free(&p->url);
    if (url_parse(url, &p->url) != GW_OK) {
        url_free(&p->url);
        settle_error(p, bad);
        return GW_ERROR;
    }
    return GW_OK;
}

static void start_remote(provider_t *p, src_kind_t kind)
{
    p->kind = kind;
    secret_buf_init(&p->resp, MAX_RESPONSE);
    gw_log_info("aws credentials: fetching from %s (%s://%s:%u)", kind_name(kind), p->url.tls ? "https" : "http",
                p->url.host, p->url.port);
    fetch_start(p);
}

static void resolve_chain(provider_t *p)
{
    char url[MAX_URL + 64];
    /* 1. The environment (both keys, or it does not count, as the SDKs). */
    if (p->env[E_ACCESS_KEY_ID] && p->env[E_SECRET_ACCESS_KEY]) {
        if (!publish_static(p, gw_str_c(p->env[E_ACCESS_KEY_ID]), gw_str_c(p->env[E_SECRET_ACCESS_KEY]),
                            gw_str_c(p->env[E_SESSION_TOKEN]), "environment"))
            settle_error(p, "environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN hold invalid "
                            "characters");
        return;
    }
    /* 2. The shared credentials and config files. */
    if (resolve_shared_files(p) != GW_DONE)
        return;
    /* 3. Web identity (IRSA): STS AssumeRoleWithWebIdentity. */
    if (p->env[E_WEB_IDENTITY_TOKEN_FILE] && p->env[E_ROLE_ARN]) {
        if (p->env[E_ENDPOINT_URL_STS]) {
            snprintf(url, sizeof(url), "%s", p->env[E_ENDPOINT_URL_STS]);
        } else if (p->region && !region_valid(p->region)) {
            settle_error(p, "web identity: the region is not a valid AWS region name");
            return;
        } else if (p->region) {
            snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com%s", p->region,
                     strncmp(p->region, "cn-", 3) == 0 ? ".cn" : "");
        } else {
            snprintf(url, sizeof(url), "https://sts.amazonaws.com");
        }
        if (setup_url(p, url, "web identity: invalid AWS_ENDPOINT_URL_STS") == GW_OK)
            start_remote(p, SRC_WEB_IDENTITY);
        return;
    }
    /* 4. Container credentials: ECS task roles, EKS Pod Identity. */
    if (p->env[E_CONTAINER_RELATIVE_URI] || p->env[E_CONTAINER_FULL_URI]) {
        const char *rel = p->env[E_CONTAINER_RELATIVE_URI];
        if (rel) {
            if (rel[0] != '/') {
                settle_error(p, "container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'");
                return;
            }
            snprintf(url, sizeof(url), "http://169.254.170.2%s", rel);
        } else {
            snprintf(url, sizeof(url), "%s", p->env[E_CONTAINER_FULL_URI]);
        }
        if (setup_url(p, url, "container credentials: invalid credentials URI") != GW_OK)
            return;
        if (!p->url.tls && !container_host_allowed(p->url.host)) {
            settle_error(p, "container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI must use https, or http to a "
                            "loopback address or the ECS / EKS Pod Identity agent (169.254.170.2, 169.254.170.23, "
                            "fd00:ec2::23)");
            return;
        }
        start_remote(p, SRC_CONTAINER);
        return;
    }
    /* 5. EC2 instance metadata, IMDSv2 only. */
    const char *disabled = p->env[E_IMDS_DISABLED];
    if (disabled && gw_str_case_eq(gw_str_c(disabled), GW_STR("true"))) {
        settle_error(p, ERR_NONE);
        return;
    }
    if (p->env[E_IMDS_ENDPOINT])
        snprintf(url, sizeof(url), "%s", p->env[E_IMDS_ENDPOINT]);
    else if (p->env[E_IMDS_ENDPOINT_MODE] && gw_str_case_eq(gw_str_c(p->env[E_IMDS_ENDPOINT_MODE]), GW_STR("IPv6")))
        snprintf(url, sizeof(url), "http://[fd00:ec2::254]");
    else
        snprintf(url, sizeof(url), "http://169.254.169.254");
    if (setup_url(p, url, "instance metadata: invalid AWS_EC2_METADATA_SERVICE_ENDPOINT") == GW_OK)
        start_remote(p, SRC_IMDS);
}

static const char *process_getenv(const char *name)
{
    return getenv(name);
}

gw_aws_credentials_provider_t *gw_aws_credentials_provider_new(uv_loop_t *main_loop,
                                                               const gw_aws_credentials_source_t *src)
{
    provider_t *p = gw_calloc(1, sizeof(*p));
    atomic_init(&p->cur, NULL);
    atomic_init(&p->phase, 0);
    atomic_init(&p->readers[0], 0);
    atomic_init(&p->readers[1], 0);
    p->loop = main_loop;
    uv_timer_init(main_loop, &p->refresh_timer);
    uv_timer_init(main_loop, &p->expiry_timer);
    uv_timer_init(main_loop, &p->reclaim_timer);
    p->refresh_timer.data = p->expiry_timer.data = p->reclaim_timer.data = p;
    p->open_handles = 3;
    gw_buf_init(&p->resp, MAX_RESPONSE);
    gw_buf_init(&p->req_body, 0);

    const char *(*env_fn)(const char *) = src && src->getenv_fn ? src->getenv_fn : process_getenv;
    for (int i = 0; i < E_COUNT; i++) {
        const char *v = env_fn(env_names[i]);
        if (v && *v) /* empty means unset, as the SDKs read it */
            p->env[i] = gw_strdup(v);
    }
    const char *region = src && src->region && *src->region ? src->region
                         : p->env[E_REGION]                 ? p->env[E_REGION]
                                                            : p->env[E_DEFAULT_REGION];
    p->region = region ? gw_strdup(region) : NULL;

    if (src && src->credentials_file_text)
        resolve_bsp_file(p, src->credentials_file_text, src->profile);
    else
        resolve_chain(p);
    return p;
}

/* ------------------------------------------------------------------------------------------------
 * Main-thread API and shutdown */

bool gw_aws_credentials_settled(gw_aws_credentials_provider_t *p, const char **error)
{
    if (error)
        *error = p->settled && atomic_load(&p->cur) == NULL ? (p->error ? p->error : ERR_NONE) : NULL;
    return p->settled;
}

int gw_aws_credentials_refresh_now(gw_aws_credentials_provider_t *p)
{
    if (p == NULL || p->closing)
        return GW_ERROR;
    if (p->kind != SRC_WEB_IDENTITY && p->kind != SRC_CONTAINER && p->kind != SRC_IMDS)
        return GW_DONE;
    if (p->req != NULL || p->step != STEP_IDLE)
        return GW_AGAIN;
    fetch_start(p);
    return GW_OK;
}

void gw_aws_credentials_stats(const gw_aws_credentials_provider_t *p, gw_aws_credentials_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->fetches_ok = p->fetches_ok;
    out->fetches_failed = p->fetches_failed;
    out->fetching = p->req != NULL;
    out->retired = p->n_retired;
}

static void provider_free(provider_t *p)
{
    for (int i = 0; i < E_COUNT; i++)
        wipe_str(&p->env[i]);
    url_free(&p->url);
    free(p->region);
    free(p->profile);
    wipe_str(&p->imds_token);
    secret_buf_free(&p->resp);
    secret_buf_free(&p->req_body);
    free(p);
}

static void on_handle_closed(uv_handle_t *h)
{
    provider_t *p = h->data;
    if (--p->open_handles == 0)
        provider_free(p);
}

/* Called once the last retired snapshot is gone: no reader can be inside get() any more unless the
 * caller broke the contract (get() after close). */
static void provider_finish_close(provider_t *p)
{
    if (p->open_handles != 3 || uv_is_closing((uv_handle_t *)&p->refresh_timer))
        return;
    uv_close((uv_handle_t *)&p->refresh_timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->expiry_timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->reclaim_timer, on_handle_closed);
}

void gw_aws_credentials_provider_close(gw_aws_credentials_provider_t *p)
{
    if (p == NULL || p->closing)
        return;
    p->closing = true;
    uv_timer_stop(&p->refresh_timer);
    uv_timer_stop(&p->expiry_timer);
    if (p->req) {
        gw_upstream_cancel(p->req);
        p->req = NULL;
    }
    if (p->pool) {
        gw_upstream_pool_close(p->pool);
        p->pool = NULL;
    }
    p->step = STEP_IDLE;
    secret_buf_free(&p->req_body);
    wipe_str(&p->imds_token);
    /* Snapshots held by workers stay valid (they are refcounted on their own); the provider's own
     * reference goes through the grace period like any other. */
    swap_current(p, NULL);
    reclaim(p);
}
