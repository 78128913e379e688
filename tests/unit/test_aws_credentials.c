/* Unit tests for the AWS credential chain (auth/aws_credentials.c): a fake environment per case,
 * files in a temporary directory, and fake STS / container / IMDS endpoints on 127.0.0.1 ephemeral
 * ports served by a tiny HTTP server on the test's own loop; plus readers racing the refreshes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "auth/aws_credentials.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"

#include "fake_http.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------------
 * Fake environment */

#define MAX_ENV 32

static struct {
    const char *name;
    char value[1024];
} env_tab[MAX_ENV];
static size_t env_n;

static void env_unset(const char *name)
{
    for (size_t i = 0; i < env_n; i++) {
        if (strcmp(env_tab[i].name, name) == 0) {
            env_tab[i] = env_tab[--env_n];
            return;
        }
    }
}

__attribute__((format(printf, 2, 3))) static void env_set(const char *name, const char *fmt, ...)
{
    env_unset(name);
    assert_true(env_n < MAX_ENV);
    env_tab[env_n].name = name;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(env_tab[env_n].value, sizeof(env_tab[env_n].value), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(env_tab[env_n].value));
    env_n++;
}

static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; i < env_n; i++)
        if (strcmp(env_tab[i].name, name) == 0)
            return env_tab[i].value;
    return NULL;
}

/* ------------------------------------------------------------------------------------------------
 * Loop, temporary files, time */

static uv_loop_t loop;
static uv_timer_t tick; /* keeps UV_RUN_ONCE from sleeping forever */
static char tmpdir[64];

static void on_tick(uv_timer_t *t)
{
}

typedef bool (*cond_fn)(void *ud);

/* Runs the loop until cond holds or timeout_ms pass; returns cond's last value. */
static bool run_until(cond_fn cond, void *ud, uint64_t timeout_ms)
{
    uv_update_time(&loop);
    uint64_t deadline = uv_now(&loop) + timeout_ms;
    while (!cond(ud)) {
        uv_update_time(&loop);
        if (uv_now(&loop) >= deadline)
            return cond(ud);
        uv_run(&loop, UV_RUN_ONCE);
    }
    return true;
}

static bool never(void *ud)
{
    return false;
}

static void run_for(uint64_t ms)
{
    run_until(never, NULL, ms);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ISO 8601 UTC time `secs` seconds from now. */
static void iso_in(int64_t secs, char *out, size_t cap)
{
    time_t t = time(NULL) + secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    assert_true(strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
}

static void path_in_tmp(const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", tmpdir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_file(const char *path, const char *text, size_t len)
{
    /* Replaced atomically (rename), as the kubelet does with projected tokens. */
    char tmp[512];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_true(n > 0 && (size_t)n < sizeof(tmp));
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void write_tmp(const char *name, const char *text, char *path_out, size_t cap)
{
    path_in_tmp(name, path_out, cap);
    write_file(path_out, text, strlen(text));
}

static void rm_tree(const char *dir)
{
    char cmd[256];
    int n = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------------------------------------------
 * Answers for the fake endpoints (served by fake_http.h) */

__attribute__((format(printf, 4, 5))) static void answer(gw_buf_t *a, int status, const char *ctype, const char *fmt,
                                                         ...)
{
    gw_buf_t body;
    gw_buf_init(&body, GW_BUF_UNLIMITED);
    va_list ap;
    va_start(ap, fmt);
    assert_int_equal(gw_buf_vappendf(&body, fmt, ap), GW_OK);
    va_end(ap);
    fh_answer(a, status, ctype, NULL, body.data, body.len);
    gw_buf_free(&body);
}

/* ------------------------------------------------------------------------------------------------
 * Fixtures */

static int setup(void **state)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/aigw-awscred-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    env_n = 0;
    gw_log_level = GW_LOG_ERROR + 1; /* quiet: failures are the point of several cases */
    return 0;
}

static void count_open(uv_handle_t *h, void *arg)
{
    if (h != (uv_handle_t *)&tick && !uv_is_closing(h))
        ++*(int *)arg;
}

static void close_open(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static atomic_int pause_state; /* the held-reader case: 0 idle, 1 armed, 2 paused, 3 resume */

static int teardown(void **state)
{
    atomic_store(&pause_state, 3); /* never leave a reader parked when a case failed midway */
    fh_servers_stop_all();
    /* Everything the providers and fakes opened must close by itself, in bounded time; a leftover
     * handle (a provider not closed because the case failed midway) is closed here and reported. */
    int open = 0;
    for (int i = 0; i < 1000; i++) {
        open = 0;
        uv_walk(&loop, count_open, &open);
        if (open == 0)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_walk(&loop, close_open, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fh_servers_free_all();
    rm_tree(tmpdir);
    gw_log_level = GW_LOG_INFO;
    if (open)
        fail_msg("%d handle(s) still open after the case", open);
    return 0;
}

static gw_aws_credentials_provider_t *provider(const char *file_text, const char *profile)
{
    gw_aws_credentials_source_t src = {
        .credentials_file_text = file_text,
        .profile = profile,
        .region = "us-east-1",
        .getenv_fn = fake_getenv,
    };
    return gw_aws_credentials_provider_new(&loop, &src);
}

static bool settled_cond(void *ud)
{
    return gw_aws_credentials_settled(ud, NULL);
}

static void wait_settled(gw_aws_credentials_provider_t *p, uint64_t timeout_ms)
{
    assert_true(run_until(settled_cond, p, timeout_ms));
}

/* Asserts the current credentials (NULL token: none). */
static void expect_creds(gw_aws_credentials_provider_t *p, const char *akid, const char *secret, const char *token,
                         const char *source)
{
    gw_aws_credentials_snapshot_t *s = gw_aws_credentials_get(p);
    assert_non_null(s);
    assert_string_equal(s->access_key_id, akid);
    assert_string_equal(s->secret_access_key, secret);
    if (token)
        assert_string_equal(s->session_token, token);
    else
        assert_null(s->session_token);
    assert_string_equal(s->source, source);
    gw_aws_credentials_t v = gw_aws_credentials_view(s);
    assert_int_equal(v.access_key_id.len, strlen(akid));
    gw_aws_credentials_release(s);
}

static void expect_error(gw_aws_credentials_provider_t *p, const char *fragment)
{
    const char *err = NULL;
    assert_true(gw_aws_credentials_settled(p, &err));
    assert_non_null(err);
    if (strstr(err, fragment) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, fragment);
    assert_null(gw_aws_credentials_get(p));
}

static void expect_settled_ok(gw_aws_credentials_provider_t *p)
{
    const char *err = "unset";
    assert_true(gw_aws_credentials_settled(p, &err));
    assert_null(err);
}

/* ------------------------------------------------------------------------------------------------
 * Fake endpoints */

typedef struct {
    int mode;      /* 0: credentials; 1: 403 ErrorResponse; 2: 500 garbage; 3: huge; 4: already expired */
    int64_t life;  /* seconds until Expiration */
    int issued;
} sts_state_t;

static void sts_handler(fh_server_t *f, const fh_req_t *rq, gw_buf_t *a)
{
    sts_state_t *st = f->ud;
    char exp[64];
    switch (st->mode) {
    case 1:
        answer(a, 403, "text/xml",
               "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
               "<Code>InvalidIdentityToken</Code><Message>bad token %s</Message></Error>"
               "<RequestId>x</RequestId></ErrorResponse>",
               rq->body);
        return;
    case 2:
        answer(a, 500, "text/plain", "oops");
        return;
    case 3: {
        char *big = gw_malloc(100 * 1024 + 1);
        memset(big, 'x', 100 * 1024);
        big[100 * 1024] = '\0';
        answer(a, 200, "text/xml", "<r>%s</r>", big);
        free(big);
        return;
    }
    default:
        break;
    }
    iso_in(st->mode == 4 ? -10 : st->life, exp, sizeof(exp));
    st->issued++;
    answer(a, 200, "text/xml",
           "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
           "  <AssumeRoleWithWebIdentityResult>\n"
           "    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>\n"
           "    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>"
           "<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>\n"
           "    <Credentials>\n"
           "      <AccessKeyId>ASIASTS%d</AccessKeyId>\n"
           "      <SecretAccessKey>sts/secret+%d</SecretAccessKey>\n"
           "      <SessionToken>sts-token-%d&amp;x&#61;y</SessionToken>\n"
           "      <Expiration>%s</Expiration>\n"
           "    </Credentials>\n"
           "    <Audience>sts.amazonaws.com</Audience>\n"
           "  </AssumeRoleWithWebIdentityResult>\n"
           "  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>\n"
           "</AssumeRoleWithWebIdentityResponse>\n",
           st->issued, st->issued, st->issued, exp);
}

typedef struct {
    int mode; /* 0: credentials; 1: 500; 2: no SecretAccessKey */
    int64_t life;
    int issued;
} json_state_t;

static void container_handler(fh_server_t *f, const fh_req_t *rq, gw_buf_t *a)
{
    json_state_t *st = f->ud;
    char exp[64];
    iso_in(st->life, exp, sizeof(exp));
    if (st->mode == 1) {
        answer(a, 500, "application/json", "{\"code\":\"InternalError\"}");
        return;
    }
    st->issued++;
    if (st->mode == 2) {
        answer(a, 200, "application/json", "{\"AccessKeyId\":\"AKID%d\",\"Token\":\"TOKEN%d\"}", st->issued, st->issued);
        return;
    }
    answer(a, 200, "application/json",
           "{\"RoleArn\":\"arn:aws:iam::1:role/x\",\"AccessKeyId\":\"AKID%d\",\"SecretAccessKey\":\"SECRET%d\","
           "\"Token\":\"TOKEN%d\",\"Expiration\":\"%s\"}",
           st->issued, st->issued, st->issued, exp);
}

static void imds_handler(fh_server_t *f, const fh_req_t *rq, gw_buf_t *a)
{
    if (strcmp(rq->method, "PUT") == 0 && strcmp(rq->path, "/latest/api/token") == 0) {
        if (!fh_req_has_header(rq, "X-aws-ec2-metadata-token-ttl-seconds: 21600"))
            answer(a, 400, "text/plain", "missing ttl");
        else
            answer(a, 200, "text/plain", "imds-session-token");
        return;
    }
    if (strcmp(rq->method, "GET") != 0 || !fh_req_has_header(rq, "X-aws-ec2-metadata-token: imds-session-token")) {
        answer(a, 401, "text/plain", "unauthorized");
        return;
    }
    if (strcmp(rq->path, "/latest/meta-data/iam/security-credentials/") == 0) {
        answer(a, 200, "text/plain", "role-a\n");
        return;
    }
    if (strcmp(rq->path, "/latest/meta-data/iam/security-credentials/role-a") == 0) {
        char exp[64];
        iso_in(6 * 3600, exp, sizeof(exp));
        answer(a, 200, "text/plain",
               "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2024-01-01T00:00:00Z\",\n  \"Type\" : \"AWS-HMAC\",\n"
               "  \"AccessKeyId\" : \"ASIAIMDS\",\n  \"SecretAccessKey\" : \"imds\\/secret\",\n"
               "  \"Token\" : \"imds-token\",\n  \"Expiration\" : \"%s\"\n}",
               exp);
        return;
    }
    answer(a, 404, "text/plain", "not found");
}

/* ------------------------------------------------------------------------------------------------
 * Static sources */

static void test_environment(void **state)
{
    env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
    env_set("AWS_SECRET_ACCESS_KEY", "SECRETENV");
    env_set("AWS_SESSION_TOKEN", "TOKENENV");
    env_set("AWS_EC2_METADATA_DISABLED", "true");
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    expect_settled_ok(p);
    expect_creds(p, "AKIDENV", "SECRETENV", "TOKENENV", "environment");
    gw_aws_credentials_snapshot_t *s = gw_aws_credentials_get(p);
    assert_int_equal(s->expiration, 0);
    gw_aws_credentials_release(s);
    assert_int_equal(gw_aws_credentials_refresh_now(p), GW_DONE);
    gw_aws_credentials_provider_close(p);

    /* Without a session token; an empty variable counts as unset. */
    env_set("AWS_SESSION_TOKEN", "%s", "");
    p = provider(NULL, NULL);
    expect_creds(p, "AKIDENV", "SECRETENV", NULL, "environment");
    gw_aws_credentials_provider_close(p);
}

static void test_environment_incomplete_is_skipped(void **state)
{
    env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
    env_set("AWS_EC2_METADATA_DISABLED", "TRUE");
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    expect_error(p, "no AWS credentials");
    gw_aws_credentials_provider_close(p);
}

static void test_no_source(void **state)
{
    env_set("AWS_EC2_METADATA_DISABLED", "true");
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    expect_error(p, "no AWS credentials");
    assert_int_equal(gw_aws_credentials_refresh_now(p), GW_DONE);
    gw_aws_credentials_stats_t st;
    gw_aws_credentials_stats(p, &st);
    assert_int_equal(st.fetches_ok + st.fetches_failed, 0);
    gw_aws_credentials_provider_close(p);
}

static const char shared_creds[] = "# a comment\n"
                                   "[default]\n"
                                   "aws_access_key_id = AKIDDEF\n"
                                   "aws_secret_access_key = SECRETDEF ; inline comment\n"
                                   "\n"
                                   "[dev]\r\n"
                                   "AWS_Access_Key_Id=AKIDDEV\r\n"
                                   "aws_secret_access_key=SECRETDEV\r\n"
                                   "aws_session_token = TOKENDEV\r\n"
                                   "s3 =\r\n"
                                   "  aws_access_key_id = NESTED\r\n"
                                   "region = eu-west-1\r\n"
                                   "[other]\n"
                                   "aws_access_key_id = AKIDOTHER\n";

static void test_shared_file_profiles(void **state)
{
    char creds[256], config[256];
    write_tmp("credentials", shared_creds, creds, sizeof(creds));
    write_tmp("config",
              "[default]\nregion = us-east-1\n"
              "[profile cfg]\naws_access_key_id = AKIDCFG\naws_secret_access_key = SECRETCFG\n"
              "[profile dev]\naws_access_key_id = AKIDCFGDEV\naws_secret_access_key = SECRETCFGDEV\n"
              "[cfg]\naws_access_key_id = NOTAPROFILE\naws_secret_access_key = NOTAPROFILE\n",
              config, sizeof(config));
    env_set("AWS_EC2_METADATA_DISABLED", "true");
    env_set("AWS_SHARED_CREDENTIALS_FILE", "%s", creds);
    env_set("AWS_CONFIG_FILE", "%s", config);

    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    expect_settled_ok(p);
    expect_creds(p, "AKIDDEF", "SECRETDEF", NULL, "shared-credentials-file");
    gw_aws_credentials_provider_close(p);

    /* A named profile; an indented sub-property never overrides the profile's own key; the
     * credentials file wins over the config file's profile of the same name. */
    env_set("AWS_PROFILE", "dev");
    p = provider(NULL, NULL);
    expect_creds(p, "AKIDDEV", "SECRETDEV", "TOKENDEV", "shared-credentials-file");
    gw_aws_credentials_provider_close(p);

    /* Only in the config file, spelled [profile cfg] there ([cfg] is not a profile in it). */
    env_set("AWS_PROFILE", "cfg");
    p = provider(NULL, NULL);
    expect_creds(p, "AKIDCFG", "SECRETCFG", NULL, "shared-credentials-file");
    gw_aws_credentials_provider_close(p);

    /* A profile without a secret does not count: the chain goes on (and finds nothing here). */
    env_set("AWS_PROFILE", "other");
    p = provider(NULL, NULL);
    expect_error(p, "no AWS credentials");
    gw_aws_credentials_provider_close(p);

    /* The default location under HOME. */
    env_unset("AWS_PROFILE");
    env_unset("AWS_SHARED_CREDENTIALS_FILE");
    env_unset("AWS_CONFIG_FILE");
    char dir[256], path[256];
    path_in_tmp(".aws", dir, sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0);
    path_in_tmp(".aws/credentials", path, sizeof(path));
    static const char home_creds[] = "[default]\naws_access_key_id=AKIDHOME\naws_secret_access_key=SECRETHOME\n";
    write_file(path, home_creds, sizeof(home_creds) - 1);
    env_set("HOME", "%s", tmpdir);
    p = provider(NULL, NULL);
    expect_creds(p, "AKIDHOME", "SECRETHOME", NULL, "shared-credentials-file");
    gw_aws_credentials_provider_close(p);
}

static void test_shared_file_missing_profile(void **state)
{
    char creds[256];
    write_tmp("credentials", shared_creds, creds, sizeof(creds));
    fh_server_t *imds = fh_server_start(&loop, imds_handler, NULL);
    env_set("AWS_SHARED_CREDENTIALS_FILE", "%s", creds);
    env_set("AWS_PROFILE", "nope");
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:%u", imds->port);
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    expect_error(p, "AWS_PROFILE");
    run_for(50);
    assert_int_equal(imds->nreq, 0); /* a profile asked for by name is not replaced by a guess */
    gw_aws_credentials_provider_close(p);
}

static const char bsp_text[] = "[default]\n"
                               "aws_access_key_id = AKIDBSPDEF\n"
                               "aws_secret_access_key = SECRETBSPDEF\n"
                               "[prod]\n"
                               "aws_access_key_id = AKIDBSPPROD\n"
                               "aws_secret_access_key = SECRETBSPPROD\n"
                               "aws_session_token = TOKENBSPPROD\n"
                               "[nokeys]\n"
                               "role_arn = arn:aws:iam::1:role/x\n";

static void test_bsp_credentials_file(void **state)
{
    /* The environment has keys too: with a BSP file only the file counts. */
    env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
    env_set("AWS_SECRET_ACCESS_KEY", "SECRETENV");
    gw_aws_credentials_provider_t *p = provider(bsp_text, "prod");
    expect_settled_ok(p);
    expect_creds(p, "AKIDBSPPROD", "SECRETBSPPROD", "TOKENBSPPROD", "credentials-file-secret");
    gw_aws_credentials_provider_close(p);

    p = provider(bsp_text, NULL);
    expect_creds(p, "AKIDBSPDEF", "SECRETBSPDEF", NULL, "credentials-file-secret");
    gw_aws_credentials_provider_close(p);

    p = provider(bsp_text, "missing");
    expect_error(p, "profile is not in the file");
    gw_aws_credentials_provider_close(p);

    p = provider(bsp_text, "nokeys");
    expect_error(p, "aws_secret_access_key");
    gw_aws_credentials_provider_close(p);

    p = provider("", NULL);
    expect_error(p, "credentials file");
    gw_aws_credentials_provider_close(p);
}

/* ------------------------------------------------------------------------------------------------
 * Web identity */

typedef struct {
    gw_aws_credentials_provider_t *p;
    const char *akid;
} akid_wait_t;

static bool akid_is_not(void *ud)
{
    akid_wait_t *w = ud;
    gw_aws_credentials_snapshot_t *s = gw_aws_credentials_get(w->p);
    bool changed = s == NULL || strcmp(s->access_key_id, w->akid) != 0;
    gw_aws_credentials_release(s);
    return changed;
}

static bool has_creds(void *ud)
{
    gw_aws_credentials_snapshot_t *s = gw_aws_credentials_get(ud);
    gw_aws_credentials_release(s);
    return s != NULL;
}

static bool no_creds(void *ud)
{
    gw_aws_credentials_snapshot_t *s = gw_aws_credentials_get(ud);
    gw_aws_credentials_release(s);
    return s == NULL;
}

typedef struct {
    gw_aws_credentials_provider_t *p;
    uint64_t failed;
} fail_wait_t;

static bool failed_at_least(void *ud)
{
    fail_wait_t *w = ud;
    gw_aws_credentials_stats_t st;
    gw_aws_credentials_stats(w->p, &st);
    return st.fetches_failed >= w->failed && !st.fetching;
}

static void web_identity_env(const char *token_path, uint16_t port)
{
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", "%s", token_path);
    env_set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/aigw-test");
    env_set("AWS_ROLE_SESSION_NAME", "aigw-unit");
    env_set("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:%u", port);
    env_set("AWS_EC2_METADATA_DISABLED", "true");
}

static void test_web_identity_refresh(void **state)
{
    sts_state_t st = {.life = 2};
    fh_server_t *sts = fh_server_start(&loop, sts_handler, &st);
    char token[256];
    write_tmp("token", "jwt-one\n", token, sizeof(token));
    web_identity_env(token, sts->port);

    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    assert_false(gw_aws_credentials_settled(p, NULL)); /* the fetch is asynchronous */
    assert_null(gw_aws_credentials_get(p));
    wait_settled(p, 3000);
    expect_settled_ok(p);
    expect_creds(p, "ASIASTS1", "sts/secret+1", "sts-token-1&x=y", "web-identity");

    /* The request: a form with the role, the session name and the token file's contents. */
    assert_int_equal(sts->nreq, 1);
    const fh_req_t *rq = &sts->reqs[0];
    assert_string_equal(rq->method, "POST");
    assert_string_equal(rq->path, "/");
    assert_true(fh_req_has_header(rq, "Content-Type: application/x-www-form-urlencoded; charset=utf-8"));
    assert_string_equal(rq->body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
                                  "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Faigw-test"
                                  "&RoleSessionName=aigw-unit&WebIdentityToken=jwt-one");

    /* Expiry 2 s ahead: renewed at half-life, before it expires, with the token file read again. */
    gw_aws_credentials_snapshot_t *first = gw_aws_credentials_get(p);
    int64_t first_exp = first->expiration;
    assert_true(first_exp * 1000 > now_ms() && first_exp <= time(NULL) + 3);
    write_tmp("token", "jwt-two", token, sizeof(token));
    akid_wait_t w = {p, "ASIASTS1"};
    assert_true(run_until(akid_is_not, &w, 3000));
    assert_true(now_ms() < first_exp * 1000);
    expect_creds(p, "ASIASTS2", "sts/secret+2", "sts-token-2&x=y", "web-identity");
    assert_int_equal(sts->nreq, 2);
    assert_non_null(strstr(sts->reqs[1].body, "&WebIdentityToken=jwt-two"));
    /* A snapshot taken before the renewal stays intact for its holder. */
    assert_string_equal(first->access_key_id, "ASIASTS1");
    assert_string_equal(first->secret_access_key, "sts/secret+1");
    gw_aws_credentials_release(first);

    /* A failed renewal keeps the old credentials in use... */
    st.mode = 1;
    gw_aws_credentials_snapshot_t *second = gw_aws_credentials_get(p);
    int64_t second_exp = second->expiration;
    gw_aws_credentials_release(second);
    assert_int_equal(gw_aws_credentials_refresh_now(p), GW_OK);
    assert_int_equal(gw_aws_credentials_refresh_now(p), GW_AGAIN); /* never two fetches at once */
    fail_wait_t fw = {p, 1};
    assert_true(run_until(failed_at_least, &fw, 3000));
    expect_settled_ok(p);
    expect_creds(p, "ASIASTS2", "sts/secret+2", "sts-token-2&x=y", "web-identity");

    /* ...until they actually expire. */
    assert_true(run_until(no_creds, p, 4000));
    assert_true(now_ms() >= second_exp * 1000);
    expect_error(p, "expired");

    /* STS answering again brings credentials back (the retry runs with backoff). */
    st.mode = 0;
    assert_true(run_until(settled_cond, p, 10)); /* still settled */
    gw_aws_credentials_refresh_now(p);
    assert_true(run_until(has_creds, p, 3000));
    gw_aws_credentials_snapshot_t *s = gw_aws_credentials_get(p);
    assert_non_null(s);
    assert_string_equal(s->source, "web-identity");
    gw_aws_credentials_release(s);
    gw_aws_credentials_provider_close(p);
}

static void test_web_identity_failures(void **state)
{
    sts_state_t st = {.mode = 1, .life = 3600};
    fh_server_t *sts = fh_server_start(&loop, sts_handler, &st);
    char token[256];
    write_tmp("token", "jwt-refused", token, sizeof(token));
    web_identity_env(token, sts->port);

    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_error(p, "STS refused");
    gw_aws_credentials_provider_close(p);

    /* Not XML credentials. */
    st.mode = 2;
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_error(p, "STS refused");
    gw_aws_credentials_provider_close(p);

    /* Larger than the answer cap. */
    st.mode = 3;
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_error(p, "malformed");
    gw_aws_credentials_provider_close(p);

    /* Credentials that are already expired are not published. */
    st.mode = 4;
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_error(p, "malformed or expired");
    gw_aws_credentials_provider_close(p);

    /* The token file: missing, then over its cap; STS is never asked. */
    int before = sts->nreq;
    st.mode = 0;
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", "%s/absent", tmpdir);
    p = provider(NULL, NULL);
    expect_error(p, "AWS_WEB_IDENTITY_TOKEN_FILE");
    gw_aws_credentials_provider_close(p);
    size_t big_len = 65 * 1024;
    char *big = gw_malloc(big_len);
    memset(big, 'a', big_len);
    write_file(token, big, big_len);
    free(big);
    env_set("AWS_WEB_IDENTITY_TOKEN_FILE", "%s", token);
    p = provider(NULL, NULL);
    expect_error(p, "AWS_WEB_IDENTITY_TOKEN_FILE");
    gw_aws_credentials_provider_close(p);
    run_for(20);
    assert_int_equal(sts->nreq, before);

    /* Nobody listening. */
    fh_server_stop(sts);
    write_file(token, "jwt", 3);
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_error(p, "STS unreachable");
    gw_aws_credentials_provider_close(p);
}

/* ------------------------------------------------------------------------------------------------
 * Container credentials */

static void test_container_full_uri(void **state)
{
    json_state_t st = {.life = 3600};
    fh_server_t *c = fh_server_start(&loop, container_handler, &st);
    char token[256];
    write_tmp("pod-identity-token", "container-token-abc\n", token, sizeof(token));
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:%u/v1/credentials?x=1", c->port);
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "%s", token);
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token"); /* the file wins */
    env_set("AWS_EC2_METADATA_DISABLED", "true");

    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_settled_ok(p);
    expect_creds(p, "AKID1", "SECRET1", "TOKEN1", "container");
    assert_int_equal(c->nreq, 1);
    assert_string_equal(c->reqs[0].method, "GET");
    assert_string_equal(c->reqs[0].path, "/v1/credentials?x=1");
    assert_true(fh_req_has_header(&c->reqs[0], "Authorization: container-token-abc"));
    gw_aws_credentials_snapshot_t *s = gw_aws_credentials_get(p);
    assert_true(s->expiration > time(NULL) + 3500);
    gw_aws_credentials_release(s);

    /* The token file is read again at each fetch. */
    write_tmp("pod-identity-token", "container-token-rotated", token, sizeof(token));
    assert_int_equal(gw_aws_credentials_refresh_now(p), GW_OK);
    akid_wait_t w = {p, "AKID1"};
    assert_true(run_until(akid_is_not, &w, 3000));
    expect_creds(p, "AKID2", "SECRET2", "TOKEN2", "container");
    assert_true(fh_req_has_header(&c->reqs[1], "Authorization: container-token-rotated"));

    /* A malformed answer is a failure that keeps the credentials. */
    st.mode = 2;
    assert_int_equal(gw_aws_credentials_refresh_now(p), GW_OK);
    fail_wait_t fw = {p, 1};
    assert_true(run_until(failed_at_least, &fw, 3000));
    expect_creds(p, "AKID2", "SECRET2", "TOKEN2", "container");
    gw_aws_credentials_provider_close(p);

    /* The token from the variable when there is no file. */
    st.mode = 0;
    env_unset("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_settled_ok(p);
    assert_true(fh_req_has_header(&c->last, "Authorization: env-token"));
    gw_aws_credentials_provider_close(p);
}

static void test_container_uri_rules(void **state)
{
    env_set("AWS_EC2_METADATA_DISABLED", "true");
    /* Plain http to an arbitrary host would hand the token to it. */
    static const char *const refused[] = {"http://10.1.2.3/creds", "http://169.254.170.3/creds",
                                          "http://example.com/creds", "ftp://127.0.0.1/", "http://user@127.0.0.1/"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(refused); i++) {
        env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "%s", refused[i]);
        gw_aws_credentials_provider_t *p = provider(NULL, NULL);
        expect_error(p, "container credentials");
        gw_aws_credentials_provider_close(p);
    }
    env_unset("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/credentials");
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    expect_error(p, "RELATIVE_URI");
    gw_aws_credentials_provider_close(p);

    /* Allowed hosts start a fetch (not settled at once); closing cancels it. */
    env_unset("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    static const char *const allowed[] = {"http://127.0.0.2:1/x", "http://[::1]:1/x", "http://localhost:1/x",
                                          "http://169.254.170.23/v1/credentials", "https://10.1.2.3/creds"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(allowed); i++) {
        env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "%s", allowed[i]);
        p = provider(NULL, NULL);
        const char *err = NULL;
        if (gw_aws_credentials_settled(p, &err))
            fail_msg("%s settled at once: %s", allowed[i], err ? err : "");
        gw_aws_credentials_provider_close(p);
    }
}

/* ------------------------------------------------------------------------------------------------
 * EC2 instance metadata */

static void test_imds_v2(void **state)
{
    fh_server_t *imds = fh_server_start(&loop, imds_handler, NULL);
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:%u/", imds->port);
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_settled_ok(p);
    expect_creds(p, "ASIAIMDS", "imds/secret", "imds-token", "imds");
    assert_int_equal(imds->nreq, 3);
    assert_string_equal(imds->reqs[0].method, "PUT");
    assert_string_equal(imds->reqs[0].path, "/latest/api/token");
    assert_true(fh_req_has_header(&imds->reqs[0], "X-aws-ec2-metadata-token-ttl-seconds: 21600"));
    assert_string_equal(imds->reqs[1].method, "GET");
    assert_string_equal(imds->reqs[1].path, "/latest/meta-data/iam/security-credentials/");
    assert_true(fh_req_has_header(&imds->reqs[1], "X-aws-ec2-metadata-token: imds-session-token"));
    assert_string_equal(imds->reqs[2].path, "/latest/meta-data/iam/security-credentials/role-a");
    assert_true(fh_req_has_header(&imds->reqs[2], "X-aws-ec2-metadata-token: imds-session-token"));
    gw_aws_credentials_provider_close(p);

    /* Disabled: never asked. */
    env_set("AWS_EC2_METADATA_DISABLED", "true");
    p = provider(NULL, NULL);
    expect_error(p, "disabled");
    run_for(20);
    assert_int_equal(imds->nreq, 3);
    gw_aws_credentials_provider_close(p);
}

static void test_imds_unreachable(void **state)
{
    /* A host where nothing answers (a non-EC2 machine): settled, with an error, within ~1 s. */
    fh_server_t *silent = fh_server_start(&loop, imds_handler, NULL);
    silent->silent = true;
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:%u", silent->port);
    int64_t t0 = now_ms();
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    wait_settled(p, 3000);
    int64_t took = now_ms() - t0;
    assert_true(took >= 900 && took < 2000);
    expect_error(p, "no instance metadata service (IMDSv2) answered");
    gw_aws_credentials_provider_close(p);

    /* A refused connection settles at once. */
    fh_server_t *closed = fh_server_start(&loop, imds_handler, NULL);
    uint16_t port = closed->port;
    fh_server_stop(closed);
    run_for(5);
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:%u", port);
    t0 = now_ms();
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    assert_true(now_ms() - t0 < 900);
    expect_error(p, "no AWS credentials");
    gw_aws_credentials_provider_close(p);
}

/* ------------------------------------------------------------------------------------------------
 * Chain order */

static void test_chain_order(void **state)
{
    char creds[256], token[256];
    write_tmp("credentials", shared_creds, creds, sizeof(creds));
    write_tmp("token", "jwt-chain", token, sizeof(token));
    sts_state_t sst = {.life = 3600};
    json_state_t cst = {.life = 3600};
    fh_server_t *sts = fh_server_start(&loop, sts_handler, &sst);
    fh_server_t *cont = fh_server_start(&loop, container_handler, &cst);
    fh_server_t *imds = fh_server_start(&loop, imds_handler, NULL);
    env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
    env_set("AWS_SECRET_ACCESS_KEY", "SECRETENV");
    env_set("AWS_SHARED_CREDENTIALS_FILE", "%s", creds);
    web_identity_env(token, sts->port);
    env_unset("AWS_EC2_METADATA_DISABLED");
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:%u/creds", cont->port);
    env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:%u", imds->port);

    /* 1. environment */
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    expect_creds(p, "AKIDENV", "SECRETENV", NULL, "environment");
    gw_aws_credentials_provider_close(p);
    /* 2. shared file */
    env_unset("AWS_ACCESS_KEY_ID");
    p = provider(NULL, NULL);
    expect_creds(p, "AKIDDEF", "SECRETDEF", NULL, "shared-credentials-file");
    gw_aws_credentials_provider_close(p);
    run_for(30);
    assert_int_equal(sts->nreq + cont->nreq + imds->nreq, 0);
    /* 3. web identity */
    env_unset("AWS_SHARED_CREDENTIALS_FILE");
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_creds(p, "ASIASTS1", "sts/secret+1", "sts-token-1&x=y", "web-identity");
    gw_aws_credentials_provider_close(p);
    run_for(30);
    assert_int_equal(sts->nreq, 1);
    assert_int_equal(cont->nreq + imds->nreq, 0);
    /* 4. container (web identity needs both the token file and the role) */
    env_unset("AWS_WEB_IDENTITY_TOKEN_FILE");
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_creds(p, "AKID1", "SECRET1", "TOKEN1", "container");
    gw_aws_credentials_provider_close(p);
    run_for(30);
    assert_int_equal(sts->nreq, 1);
    assert_int_equal(cont->nreq, 1);
    assert_int_equal(imds->nreq, 0);
    /* 5. instance metadata */
    env_unset("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_creds(p, "ASIAIMDS", "imds/secret", "imds-token", "imds");
    gw_aws_credentials_provider_close(p);
    assert_int_equal(imds->nreq, 3);
}

/* ------------------------------------------------------------------------------------------------
 * Secrets stay out of the logs and the errors */

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void test_secrets_not_logged(void **state)
{
    char log_path[256], token[256], ctoken[256];
    path_in_tmp("log", log_path, sizeof(log_path));
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    gw_log_level = GW_LOG_DEBUG;

    sts_state_t st = {.mode = 1, .life = 3600};
    fh_server_t *sts = fh_server_start(&loop, sts_handler, &st);
    write_tmp("token", "jwt-very-secret-xyz", token, sizeof(token));
    web_identity_env(token, sts->port);
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    wait_settled(p, 3000);
    const char *err = NULL;
    gw_aws_credentials_settled(p, &err);
    assert_non_null(err);
    assert_null(strstr(err, "jwt-very-secret"));
    st.mode = 0;
    gw_aws_credentials_refresh_now(p);
    assert_true(run_until(has_creds, p, 3000));
    gw_aws_credentials_provider_close(p);

    json_state_t cst = {.mode = 1, .life = 3600};
    fh_server_t *cont = fh_server_start(&loop, container_handler, &cst);
    env_unset("AWS_WEB_IDENTITY_TOKEN_FILE");
    write_tmp("ctoken", "container-very-secret", ctoken, sizeof(ctoken));
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:%u/creds", cont->port);
    env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "%s", ctoken);
    p = provider(NULL, NULL);
    wait_settled(p, 3000);
    gw_aws_credentials_provider_close(p);

    p = provider(bsp_text, "nokeys");
    gw_aws_credentials_provider_close(p);
    run_for(20);

    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    gw_log_level = GW_LOG_ERROR + 1;
    assert_true(file_contains(log_path, "aws credentials")); /* something was logged */
    assert_true(file_contains(log_path, "InvalidIdentityToken"));
    static const char *const secrets[] = {"jwt-very-secret", "sts/secret", "sts-token", "container-very-secret",
                                          "SECRETBSP"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(secrets); i++)
        if (file_contains(log_path, secrets[i]))
            fail_msg("the log holds \"%s\"", secrets[i]);
}

/* ------------------------------------------------------------------------------------------------
 * Readers racing refreshes: no torn snapshot, no use after free (run under ASan and TSan). */

#define READERS 4

typedef struct {
    gw_aws_credentials_provider_t *p;
    atomic_bool *stop;
    uint64_t reads, nulls, distinct;
    int errors;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    gw_aws_credentials_snapshot_t *held = NULL; /* kept across iterations: outlives its retirement */
    long last = -1;
    while (!atomic_load(r->stop)) {
        gw_aws_credentials_snapshot_t *s = gw_aws_credentials_get(r->p);
        r->reads++;
        if (s == NULL) {
            r->nulls++;
            continue;
        }
        long n = strtol(s->access_key_id + 4, NULL, 10);
        char secret[32], token[32];
        snprintf(secret, sizeof(secret), "SECRET%ld", n);
        snprintf(token, sizeof(token), "TOKEN%ld", n);
        if (strncmp(s->access_key_id, "AKID", 4) != 0 || strcmp(s->secret_access_key, secret) != 0 ||
            s->session_token == NULL || strcmp(s->session_token, token) != 0 || n < last)
            r->errors++;
        if (n != last)
            r->distinct++;
        last = n;
        if ((r->reads & 63) == 0) {
            gw_aws_credentials_release(held);
            held = s;
        } else {
            gw_aws_credentials_release(s);
        }
    }
    if (held && strncmp(held->access_key_id, "AKID", 4) != 0)
        r->errors++;
    gw_aws_credentials_release(held);
    return NULL;
}

typedef struct {
    gw_aws_credentials_provider_t *p;
    uint64_t target;
} refresher_t;

static void on_refresh_tick(uv_timer_t *t)
{
    refresher_t *rf = t->data;
    gw_aws_credentials_refresh_now(rf->p);
}

static bool fetched_enough(void *ud)
{
    refresher_t *rf = ud;
    gw_aws_credentials_stats_t st;
    gw_aws_credentials_stats(rf->p, &st);
    return st.fetches_ok >= rf->target;
}

static bool nothing_retired(void *ud)
{
    gw_aws_credentials_stats_t st;
    gw_aws_credentials_stats(ud, &st);
    return st.retired == 0;
}

static void test_concurrent_readers(void **state)
{
    json_state_t st = {.life = 3600};
    fh_server_t *c = fh_server_start(&loop, container_handler, &st);
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:%u/creds", c->port);
    env_set("AWS_EC2_METADATA_DISABLED", "true");
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_settled_ok(p);

    atomic_bool stop;
    atomic_init(&stop, false);
    reader_t readers[READERS];
    pthread_t threads[READERS];
    for (int i = 0; i < READERS; i++) {
        readers[i] = (reader_t){.p = p, .stop = &stop};
        assert_int_equal(pthread_create(&threads[i], NULL, reader_main, &readers[i]), 0);
    }
    refresher_t rf = {p, 300};
    static uv_timer_t refresh; /* closed by the loop after this function returns */
    uv_timer_init(&loop, &refresh);
    refresh.data = &rf;
    uv_timer_start(&refresh, on_refresh_tick, 1, 1);
    bool enough = run_until(fetched_enough, &rf, 30000);
    uv_timer_stop(&refresh);
    uv_close((uv_handle_t *)&refresh, NULL);
    atomic_store(&stop, true);
    uint64_t reads = 0, distinct = 0;
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(readers[i].errors, 0);
        assert_int_equal(readers[i].nulls, 0);
        reads += readers[i].reads;
        distinct += readers[i].distinct;
    }
    assert_true(enough);
    assert_true(distinct > READERS * 2); /* the readers did see the snapshots change */
    assert_true(run_until(nothing_retired, p, 2000));
    print_message("    %llu reads across %d threads, %llu refreshes\n", (unsigned long long)reads, READERS,
                  (unsigned long long)rf.target);
    gw_aws_credentials_provider_close(p);
}

/* One reader held inside get(), between loading the pointer and taking its reference, while the
 * main loop replaces the snapshot: the old one must survive until the reader is through. */
static void pause_hook(void)
{
    int armed = 1;
    if (!atomic_compare_exchange_strong(&pause_state, &armed, 2))
        return;
    while (atomic_load(&pause_state) != 3)
        usleep(100);
}

typedef struct {
    gw_aws_credentials_provider_t *p;
    char akid[32], secret[32];
} held_reader_t;

static void *held_reader_main(void *arg)
{
    held_reader_t *r = arg;
    gw_aws_credentials_snapshot_t *s = gw_aws_credentials_get(r->p);
    if (s) {
        snprintf(r->akid, sizeof(r->akid), "%s", s->access_key_id);
        snprintf(r->secret, sizeof(r->secret), "%s", s->secret_access_key);
    }
    gw_aws_credentials_release(s);
    return NULL;
}

static bool fetched_two(void *ud)
{
    gw_aws_credentials_stats_t st;
    gw_aws_credentials_stats(ud, &st);
    return st.fetches_ok >= 2;
}

static void test_grace_period_holds_for_a_reader_in_get(void **state)
{
    json_state_t st = {.life = 3600};
    fh_server_t *c = fh_server_start(&loop, container_handler, &st);
    env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:%u/creds", c->port);
    env_set("AWS_EC2_METADATA_DISABLED", "true");
    gw_aws_credentials_provider_t *p = provider(NULL, NULL);
    wait_settled(p, 3000);
    expect_creds(p, "AKID1", "SECRET1", "TOKEN1", "container");

    atomic_store(&pause_state, 1);
    gw_aws_credentials_test_hook = pause_hook;
    held_reader_t r = {.p = p};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, held_reader_main, &r), 0);
    for (int i = 0; i < 20000 && atomic_load(&pause_state) != 2; i++)
        usleep(100);
    assert_int_equal(atomic_load(&pause_state), 2);

    /* Replace AKID1 while the reader holds its pointer without a reference yet. */
    assert_int_equal(gw_aws_credentials_refresh_now(p), GW_OK);
    assert_true(run_until(fetched_two, p, 3000));
    run_for(30); /* many reclaim passes */
    gw_aws_credentials_stats_t stats;
    gw_aws_credentials_stats(p, &stats);
    assert_int_equal(stats.retired, 1); /* still waiting for the reader */
    expect_creds(p, "AKID2", "SECRET2", "TOKEN2", "container"); /* other readers see the new one */

    atomic_store(&pause_state, 3);
    assert_int_equal(pthread_join(t, NULL), 0);
    gw_aws_credentials_test_hook = NULL;
    assert_string_equal(r.akid, "AKID1");
    assert_string_equal(r.secret, "SECRET1");
    assert_true(run_until(nothing_retired, p, 2000));
    gw_aws_credentials_provider_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_incomplete_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_file_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_file_missing_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bsp_credentials_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_full_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_uri_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_not_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_period_holds_for_a_reader_in_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
