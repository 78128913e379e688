/* Access log: one JSON object per request, one line, written with a single write(2). Every string
 * field has a byte budget, so a line never exceeds PIPE_BUF and stays atomic even on a pipe shared
 * with other writers (stderr logs, other processes); hostile bytes are escaped, never passed. */
#include "obs/access_log.h"

#include "core/json.h"
#include "core/log.h"
#include "core/utf8.h"

#include <openssl/evp.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

bool gw_access_log_enabled = true;

/* Escaped-byte budgets (quotes excluded). With every field at its budget and every number at its
 * widest, a line is 4054 bytes, or 4008 with the mcp_* fields (whose lines give the path less
 * room): under PIPE_BUF (4096) on Linux, checked by the unit test. Cut values end with "..." so
 * that a reader never mistakes them for the real value. */
#define MAX_METHOD 24
#define MAX_PATH 1536
#define MAX_PATH_MCP 1024 /* an MCP line's path: MCP endpoints have short fixed paths */
#define MAX_MCP_METHOD 64
#define MAX_MCP_REQUEST_ID 128
/* A JSON-RPC id longer than this is written raw (and cut) rather than unescaped: ids are small
 * keys, and the log must not allocate in proportion to what a client sends. */
#define MAX_MCP_ID_UNESCAPE 1024
#define MAX_USER_AGENT 512
#define MAX_REQUEST_ID 128
#define MAX_ADDRESS 64 /* "[v6 address]:port" fits in 47 */
#define MAX_NAME 192   /* backend, cluster and model names */
#define MAX_DETAILS 128
#define LINE_MAX_BYTES 4096
_Static_assert(LINE_MAX_BYTES <= PIPE_BUF, "a line must fit one atomic pipe write");
/* How long a worker waits for a non-blocking stdout to drain before dropping the line. */
#define WRITE_STALL_MS 1000

/* Appends s as a JSON string of at most `budget` bytes between its quotes, or null when s is
 * empty. Control characters and DEL are escaped (a log line must not move a terminal cursor or
 * hide text), invalid UTF-8 becomes U+FFFD, and the cut falls between two characters. */
static int put_string(gw_buf_t *b, gw_str_t s, size_t budget)
{
    if (s.len == 0 || s.base == NULL)
        return gw_buf_append_lit(b, "null");
    int rc = gw_buf_append_byte(b, '"');
    const unsigned char *p = (const unsigned char *)s.base;
    size_t n = s.len, out = 0, cut = b->len;
    while (n > 0 && rc == GW_OK) {
        char esc[6];
        const void *unit = p;
        size_t in = 1, ulen;
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            unit = esc;
            ulen = 2;
        } else if (c < 0x20 || c == 0x7F) {
            static const char hex[] = "0123456789abcdef";
            char short_form = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : c == '\f' ? 'f' : 0;
            esc[0] = '\\';
            if (short_form) {
                esc[1] = short_form;
                ulen = 2;
            } else {
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xF];
                ulen = 6;
            }
            unit = esc;
        } else if ((in = gw_utf8_seq_len(p, n)) == 0) {
            unit = "\xEF\xBF\xBD";
            in = 1;
            ulen = 3;
        } else {
            ulen = in;
        }
        if (out + ulen > budget) {
            b->len = cut; /* back to the last boundary with room for the marker */
            rc = gw_buf_append_lit(b, "...");
            break;
        }
        rc = gw_buf_append(b, unit, ulen);
        out += ulen;
        if (out + 3 <= budget)
            cut = b->len;
        p += in;
        n -= in;
    }
    if (rc == GW_OK)
        rc = gw_buf_append_byte(b, '"');
    return rc;
}

/* A JSON object writer whose first failure sticks, so the fields below read as a plain list. */
struct obj {
    gw_buf_t *b;
    int rc;
    bool first;
};

static void key(struct obj *o, const char *k)
{
    if (o->rc == GW_OK && !o->first)
        o->rc = gw_buf_append_byte(o->b, ',');
    o->first = false;
    if (o->rc == GW_OK)
        o->rc = gw_buf_append_byte(o->b, '"');
    if (o->rc == GW_OK)
        o->rc = gw_buf_append(o->b, k, strlen(k));
    if (o->rc == GW_OK)
        o->rc = gw_buf_append_lit(o->b, "\":");
}

static void field_str(struct obj *o, const char *k, gw_str_t v, size_t budget)
{
    key(o, k);
    if (o->rc == GW_OK)
        o->rc = put_string(o->b, v, budget);
}

static void field_u64(struct obj *o, const char *k, uint64_t v)
{
    key(o, k);
    if (o->rc == GW_OK)
        o->rc = gw_buf_append_u64(o->b, v);
}

static void field_null(struct obj *o, const char *k)
{
    key(o, k);
    if (o->rc == GW_OK)
        o->rc = gw_buf_append_lit(o->b, "null");
}

/* RFC 3339 in UTC with milliseconds, as Envoy's %START_TIME% default: 2025-01-02T03:04:05.678Z. */
static void field_time(struct obj *o, const char *k, int64_t us)
{
    int64_t secs = us / 1000000, rem = us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
        field_null(o, k);
        return;
    }
    key(o, k);
    if (o->rc == GW_OK)
        o->rc = gw_buf_appendf(o->b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
                               tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rem / 1000));
}

void gw_access_log_session_hash(gw_str_t session_id, char out[GW_ACCESS_LOG_SESSION_HASH_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const void *p = session_id.base != NULL ? session_id.base : "";
    if (EVP_Digest(p, session_id.len, md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len < GW_ACCESS_LOG_SESSION_HASH_LEN / 2) {
        /* OpenSSL out of memory: a fixed marker, never anything derived from the id itself. */
        memset(out, '0', GW_ACCESS_LOG_SESSION_HASH_LEN);
        out[GW_ACCESS_LOG_SESSION_HASH_LEN] = '\0';
        return;
    }
    for (size_t i = 0; i < GW_ACCESS_LOG_SESSION_HASH_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xF];
    }
    out[GW_ACCESS_LOG_SESSION_HASH_LEN] = '\0';
}

/* The text of a raw JSON-RPC id: a JSON string unescaped (into scratch), a number as it is. An id
 * that does not unescape (not a JSON string after all) is written as its raw bytes. */
static gw_str_t request_id_text(gw_str_t raw, gw_buf_t *scratch)
{
    if (raw.len < 2 || raw.base[0] != '"' || raw.len > MAX_MCP_ID_UNESCAPE)
        return raw;
    if (gw_json_string_unescape(raw, scratch) != GW_OK)
        return raw;
    return gw_buf_str(scratch);
}

/* The mcp_* keys, each only when set, in the order of the reference's template. */
static void mcp_fields(struct obj *o, const gw_access_log_entry_t *e)
{
    if (e->mcp_request_id.len > 0 && e->mcp_request_id.base != NULL) {
        gw_buf_t id;
        gw_buf_init(&id, MAX_MCP_ID_UNESCAPE);
        gw_str_t text = request_id_text(e->mcp_request_id, &id);
        if (text.len > 0) {
            field_str(o, "mcp_request_id", text, MAX_MCP_REQUEST_ID);
        } else { /* the id "" is an id, not an absent one */
            key(o, "mcp_request_id");
            if (o->rc == GW_OK)
                o->rc = gw_buf_append_lit(o->b, "\"\"");
        }
        gw_buf_free(&id);
    }
    if (e->mcp_session_id.len > 0 && e->mcp_session_id.base != NULL) {
        char hash[GW_ACCESS_LOG_SESSION_HASH_LEN + 1];
        gw_access_log_session_hash(e->mcp_session_id, hash);
        field_str(o, "mcp_session_id", gw_str(hash, GW_ACCESS_LOG_SESSION_HASH_LEN), GW_ACCESS_LOG_SESSION_HASH_LEN);
    }
    if (e->mcp_method.len > 0 && e->mcp_method.base != NULL)
        field_str(o, "mcp_method", e->mcp_method, MAX_MCP_METHOD);
    if (e->mcp_backend.len > 0 && e->mcp_backend.base != NULL)
        field_str(o, "mcp_backend", e->mcp_backend, MAX_NAME);
}

static bool has_mcp_fields(const gw_access_log_entry_t *e)
{
    return (e->mcp_request_id.len > 0 && e->mcp_request_id.base != NULL) ||
           (e->mcp_session_id.len > 0 && e->mcp_session_id.base != NULL) ||
           (e->mcp_method.len > 0 && e->mcp_method.base != NULL) ||
           (e->mcp_backend.len > 0 && e->mcp_backend.base != NULL);
}

int gw_access_log_format(const gw_access_log_entry_t *e, gw_buf_t *out)
{
    size_t start = out->len;
    bool mcp = has_mcp_fields(e);
    const gw_token_usage_t *u = e->usage && e->usage->present ? e->usage : NULL;
    struct obj o = {out, gw_buf_append_byte(out, '{'), true};
    /* Envoy's usual field names first, then the reference template's genai_* fields. */
    field_time(&o, "start_time", e->start_time_us);
    field_str(&o, "method", e->method, MAX_METHOD);
    field_str(&o, "x-envoy-origin-path", e->path, mcp ? MAX_PATH_MCP : MAX_PATH);
    key(&o, "response_code");
    if (o.rc == GW_OK)
        o.rc = gw_buf_appendf(out, "%d", e->response_code);
    field_u64(&o, "bytes_received", e->bytes_received);
    field_u64(&o, "bytes_sent", e->bytes_sent);
    field_u64(&o, "duration", e->duration_ms);
    if (e->upstream_duration_ms < 0)
        field_null(&o, "upstream_service_time");
    else
        field_u64(&o, "upstream_service_time", (uint64_t)e->upstream_duration_ms);
    field_str(&o, "user-agent", e->user_agent, MAX_USER_AGENT);
    field_str(&o, "x-request-id", e->request_id, MAX_REQUEST_ID);
    field_str(&o, "upstream_host", e->upstream_host, MAX_ADDRESS);
    field_str(&o, "upstream_cluster", e->upstream_cluster, MAX_NAME);
    field_str(&o, "downstream_remote_address", e->downstream_remote_address, MAX_ADDRESS);
    field_str(&o, "genai_model_name", e->model_name, MAX_NAME);
    field_str(&o, "genai_model_name_override", e->model_name_override, MAX_NAME);
    field_str(&o, "genai_backend_name", e->backend_name, MAX_NAME);
    field_str(&o, "genai_response_model", e->response_model, MAX_NAME);
    static const char *const token_keys[] = {"genai_tokens_input", "genai_tokens_output", "genai_tokens_total",
                                             "genai_tokens_cached_input"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(token_keys); i++) {
        if (u == NULL) {
            field_null(&o, token_keys[i]);
            continue;
        }
        uint64_t v = i == 0 ? u->input : i == 1 ? u->output : i == 2 ? u->total : u->cached_input;
        field_u64(&o, token_keys[i], v);
    }
    field_str(&o, "connection_termination_details", e->termination_details, MAX_DETAILS);
    if (mcp)
        mcp_fields(&o, e);
    if (o.rc == GW_OK)
        o.rc = gw_buf_append_lit(out, "}\n");
    if (o.rc != GW_OK)
        out->len = start; /* never leave half an object behind */
    return o.rc;
}

/* Serializes writers so that a line the kernel accepted only in part is finished before any other
 * line starts; in the normal case this is one uncontended lock around one write(2). */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static int write_all(int fd, const char *p, size_t n)
{
    int rc = GW_OK;
    pthread_mutex_lock(&write_lock);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* stdout may have been made non-blocking by whoever shares it (a libuv tty does) */
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int r = poll(&pfd, 1, WRITE_STALL_MS);
            if (r > 0 || (r < 0 && errno == EINTR))
                continue;
        }
        rc = GW_ERROR;
        break;
    }
    pthread_mutex_unlock(&write_lock);
    return rc;
}

static atomic_bool warned;

int gw_access_log_write_fd(int fd, const gw_access_log_entry_t *e)
{
    if (e == NULL)
        return GW_ERROR;
    gw_buf_t line;
    gw_buf_init(&line, LINE_MAX_BYTES);
    int rc = gw_access_log_format(e, &line);
    if (rc == GW_OK)
        rc = write_all(fd, line.data, line.len);
    gw_buf_free(&line);
    return rc;
}

void gw_access_log_write(const gw_access_log_entry_t *e)
{
    if (!gw_access_log_enabled || e == NULL)
        return;
    int saved = errno;
    /* One warning only: a closed or stuck stdout would otherwise turn every request into a line. */
    if (gw_access_log_write_fd(STDOUT_FILENO, e) != GW_OK && !atomic_exchange(&warned, true))
        gw_log_warn("access log: cannot write to stdout (errno %d); lines are being dropped", errno);
    errno = saved;
}
