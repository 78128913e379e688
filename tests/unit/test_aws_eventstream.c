/* Unit tests for codec/aws_eventstream: the AWS SDK framing vectors (aws-sdk-go, smithy-rs) and every
 * recorded Bedrock stream, each fed whole, split in two at every byte and one byte at a time and
 * compared with its decoded form; handwritten framing errors and limits; encoder round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec/aws_eventstream.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <zlib.h>

/* ---------------------------------------------------------------------------------------------
 * Recorded messages: deep copies, since the decoder's slices live only during the callback.
 */

typedef struct {
    char *name;
    size_t name_len;
    int type;
    int64_t ival;
    char *bytes;
    size_t bytes_len;
} rhdr_t;

typedef struct {
    rhdr_t h[GW_EVENTSTREAM_MAX_HEADER_COUNT];
    size_t n_headers;
    char *payload;
    size_t payload_len;
    uint32_t prelude_crc, message_crc, total_length, headers_length;
} rmsg_t;

typedef struct {
    rmsg_t *v;
    size_t n, cap;
    int stop_after; /* the callback returns GW_DONE after this many messages; 0 = never */
    const char *in_base;
    size_t in_len;
    size_t in_place; /* messages whose payload pointed into the caller's chunk */
} rec_t;

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static void rmsg_free(rmsg_t *m)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        free(m->h[i].name);
        free(m->h[i].bytes);
    }
    free(m->payload);
}

static void rec_free(rec_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        rmsg_free(&r->v[i]);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static rmsg_t *rec_add(rec_t *r)
{
    if (r->n == r->cap)
        r->v = realloc(r->v, (r->cap = r->cap ? r->cap * 2 : 16) * sizeof(*r->v));
    rmsg_t *m = &r->v[r->n++];
    memset(m, 0, sizeof(*m));
    return m;
}

static int on_message(void *ud, const gw_es_message_t *msg)
{
    rec_t *r = ud;
    rmsg_t *m = rec_add(r);
    assert_true(msg->n_headers <= GW_EVENTSTREAM_MAX_HEADER_COUNT);
    for (size_t i = 0; i < msg->n_headers; i++) {
        const gw_es_header_t *h = &msg->headers[i];
        m->h[i] = (rhdr_t){dup_bytes(h->name.base, h->name.len), h->name.len, (int)h->type, h->int_value,
                           dup_bytes(h->bytes.base, h->bytes.len), h->bytes.len};
    }
    m->n_headers = msg->n_headers;
    m->payload = dup_bytes(msg->payload.base, msg->payload.len);
    m->payload_len = msg->payload.len;
    m->prelude_crc = msg->prelude_crc;
    m->message_crc = msg->message_crc;
    m->total_length = msg->total_length;
    m->headers_length = msg->headers_length;
    if (r->in_base && msg->payload.base >= r->in_base && msg->payload.base <= r->in_base + r->in_len)
        r->in_place++;
    if (r->stop_after && (int)r->n >= r->stop_after)
        return GW_DONE;
    return GW_OK;
}

static bool rmsg_eq(const rmsg_t *a, const rmsg_t *b, char *why, size_t cap)
{
    if (a->n_headers != b->n_headers) {
        snprintf(why, cap, "%zu headers, want %zu", a->n_headers, b->n_headers);
        return false;
    }
    for (size_t i = 0; i < a->n_headers; i++) {
        const rhdr_t *x = &a->h[i], *y = &b->h[i];
        if (x->name_len != y->name_len || memcmp(x->name, y->name, x->name_len) != 0 || x->type != y->type ||
            x->ival != y->ival || x->bytes_len != y->bytes_len || memcmp(x->bytes, y->bytes, x->bytes_len) != 0) {
            snprintf(why, cap, "header %zu (%s) differs", i, y->name);
            return false;
        }
    }
    if (a->payload_len != b->payload_len || memcmp(a->payload, b->payload, a->payload_len) != 0) {
        snprintf(why, cap, "payload differs (%zu bytes, want %zu)", a->payload_len, b->payload_len);
        return false;
    }
    if (a->prelude_crc != b->prelude_crc || a->message_crc != b->message_crc || a->total_length != b->total_length ||
        a->headers_length != b->headers_length) {
        snprintf(why, cap, "crc/length fields differ");
        return false;
    }
    return true;
}

/* Feed modes: 0 whole, 1 one byte at a time, 2 split once at `split`. */
typedef struct {
    int rc;
    bool partial;
    const char *error;
} run_t;

static run_t feed(const char *buf, size_t n, int mode, size_t split, rec_t *r)
{
    gw_eventstream_decoder_t d;
    gw_eventstream_decoder_init(&d);
    run_t out = {GW_OK, false, NULL};
    if (mode == 0) {
        out.rc = gw_eventstream_feed(&d, buf, n, on_message, r);
    } else if (mode == 1) {
        for (size_t i = 0; i < n && out.rc == GW_OK; i++)
            out.rc = gw_eventstream_feed(&d, buf + i, 1, on_message, r);
    } else {
        out.rc = gw_eventstream_feed(&d, buf, split, on_message, r);
        if (out.rc == GW_OK)
            out.rc = gw_eventstream_feed(&d, buf + split, n - split, on_message, r);
    }
    out.partial = gw_eventstream_has_partial(&d);
    out.error = d.error;
    if (out.rc == GW_EINVAL || out.rc == GW_TOOBIG) {
        /* A failed decoder stays failed, whatever follows. */
        assert_true(d.failed);
        assert_non_null(d.error);
        assert_int_equal(gw_eventstream_feed(&d, "\0\0\0\x10", 4, on_message, r), out.rc);
    }
    gw_eventstream_decoder_free(&d);
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Expected messages from the decoded JSON forms.
 */

static int b64v(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static char *b64_decode(const char *s, size_t *out_len)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64v(s[i]);
        assert_true(v >= 0);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits);
        }
    }
    *out_len = o;
    return out;
}

static char *hex_decode(const char *s, size_t *out_len)
{
    size_t n = strlen(s);
    char *out = malloc(n / 2 + 1);
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v = 0;
        assert_int_equal(sscanf(s + i, "%2x", &v), 1);
        out[i / 2] = (char)v;
    }
    *out_len = n / 2;
    return out;
}

static uint32_t json_u32(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(v));
    return (uint32_t)(int64_t)v->valuedouble; /* aws-sdk-go writes CRCs as signed int32 */
}

static void fill_value(rhdr_t *h, const cJSON *v, bool b64_strings)
{
    switch (h->type) {
    case GW_ES_BOOL_TRUE:
    case GW_ES_BOOL_FALSE:
        assert_true(cJSON_IsBool(v));
        h->ival = cJSON_IsTrue(v) ? 1 : 0;
        assert_int_equal(h->ival, h->type == GW_ES_BOOL_TRUE);
        break;
    case GW_ES_BYTE:
    case GW_ES_INT16:
    case GW_ES_INT32:
    case GW_ES_INT64:
    case GW_ES_TIMESTAMP:
        assert_true(cJSON_IsNumber(v));
        h->ival = (int64_t)v->valuedouble;
        break;
    case GW_ES_STRING:
        assert_true(cJSON_IsString(v));
        if (b64_strings)
            h->bytes = b64_decode(v->valuestring, &h->bytes_len);
        else
            h->bytes = dup_bytes(v->valuestring, (h->bytes_len = strlen(v->valuestring)));
        break;
    case GW_ES_BYTES:
        h->bytes = b64_decode(cJSON_GetStringValue(v), &h->bytes_len);
        break;
    case GW_ES_UUID:
        if (b64_strings)
            h->bytes = b64_decode(cJSON_GetStringValue(v), &h->bytes_len);
        else
            h->bytes = hex_decode(cJSON_GetStringValue(v), &h->bytes_len);
        break;
    default:
        fail_msg("unknown type %d", h->type);
    }
    if (h->bytes == NULL)
        h->bytes = dup_bytes("", 0);
}

/* aws-sdk-go form: one message; headers an array of {name, type (code), value}; string, bytes and
 * uuid values in base64; payload in base64. */
static void expect_sdk_go(const cJSON *j, rec_t *exp)
{
    rmsg_t *m = rec_add(exp);
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(j, "headers"), *h;
    cJSON_ArrayForEach(h, hs)
    {
        rhdr_t *x = &m->h[m->n_headers++];
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "name"));
        x->name = dup_bytes(name, (x->name_len = strlen(name)));
        x->type = (int)cJSON_GetObjectItemCaseSensitive(h, "type")->valuedouble;
        fill_value(x, cJSON_GetObjectItemCaseSensitive(h, "value"), true);
    }
    m->payload = b64_decode(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "payload")), &m->payload_len);
    m->prelude_crc = json_u32(j, "prelude_crc");
    m->message_crc = json_u32(j, "message_crc");
    m->total_length = json_u32(j, "total_length");
    m->headers_length = json_u32(j, "headers_length");
}

static int type_code(const char *name)
{
    static const char *const names[] = {"bool_true", "bool_false", "byte", "short", "integer",
                                        "long", "byte_array", "string", "timestamp", "uuid"};
    for (int i = 0; i < (int)GW_ARRAY_SIZE(names); i++)
        if (strcmp(names[i], name) == 0)
            return i;
    fail_msg("unknown header type name %s", name);
    return -1;
}

/* The collector's form (smithy-rs vectors, Bedrock recordings): an array of messages; headers an
 * object keyed by name (in wire order) of {type (name), value}; strings raw, byte arrays base64,
 * uuids hex; payload a raw string. */
static void expect_collector(const cJSON *j, rec_t *exp)
{
    const cJSON *mj;
    cJSON_ArrayForEach(mj, j)
    {
        rmsg_t *m = rec_add(exp);
        const cJSON *h;
        cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(mj, "headers"))
        {
            rhdr_t *x = &m->h[m->n_headers++];
            x->name = dup_bytes(h->string, (x->name_len = strlen(h->string)));
            x->type = type_code(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "type")));
            fill_value(x, cJSON_GetObjectItemCaseSensitive(h, "value"), false);
        }
        const char *payload = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(mj, "payload"));
        assert_non_null(payload);
        m->payload = dup_bytes(payload, (m->payload_len = strlen(payload)));
        m->prelude_crc = json_u32(mj, "prelude_crc");
        m->message_crc = json_u32(mj, "message_crc");
        m->total_length = json_u32(mj, "total_length");
        m->headers_length = json_u32(mj, "headers_length");
    }
}

/* Decodes buf in every mode (whole, every two-piece split, byte by byte) and compares each run with
 * exp. Returns the number of runs. */
static int check_all_modes(const char *label, const char *buf, size_t n, const rec_t *exp)
{
    int runs = 0;
    for (size_t k = 0; k <= n + 1; k++) {
        int mode = k == 0 ? 0 : k == n + 1 ? 1 : 2;
        rec_t got = {0};
        run_t r = feed(buf, n, mode, k - 1, &got);
        char why[128] = "";
        bool ok = r.rc == GW_OK && !r.partial && got.n == exp->n;
        if (!ok)
            snprintf(why, sizeof(why), "rc %d (%s), partial %d, %zu messages, want %zu", r.rc, r.error ? r.error : "-",
                     r.partial, got.n, exp->n);
        for (size_t i = 0; ok && i < got.n; i++)
            ok = rmsg_eq(&got.v[i], &exp->v[i], why, sizeof(why));
        if (!ok)
            fail_msg("%s (mode %d, split %zu): %s", label, mode, k - 1, why);
        rec_free(&got);
        runs++;
    }
    return runs;
}

/* ---------------------------------------------------------------------------------------------
 * The framing vectors.
 */

static void list_vector_dirs(const char *td, const char *kind, tu_list_t *dirs)
{
    char root[PATH_MAX];
    tu_fmt(root, sizeof(root), "%s/providers/aws-eventstream-framing", td);
    tu_list_t files = {0};
    tu_find_files(root, "encoded.bin", &files);
    for (size_t i = 0; i < files.n; i++) {
        if (strstr(files.items[i], kind) == NULL)
            continue;
        *strrchr(files.items[i], '/') = '\0';
        tu_list_push(dirs, files.items[i]);
    }
    tu_list_free(&files);
}

static void test_vectors_positive(void **state)
{
    TU_REQUIRE_TESTDATA(td);
    tu_list_t dirs = {0};
    list_vector_dirs(td, "/positive/", &dirs);
    assert_true(dirs.n >= 8);
    int runs = 0;
    for (size_t i = 0; i < dirs.n; i++) {
        char path[PATH_MAX];
        size_t n = 0, jl = 0;
        tu_fmt(path, sizeof(path), "%s/encoded.bin", dirs.items[i]);
        char *bin = tu_read_file(path, &n);
        tu_fmt(path, sizeof(path), "%s/decoded.json", dirs.items[i]);
        char *js = tu_read_file(path, &jl);
        bool sdk_go = js != NULL;
        if (!sdk_go) {
            tu_fmt(path, sizeof(path), "%s/decoded.collector.json", dirs.items[i]);
            js = tu_read_file(path, &jl);
        }
        assert_non_null(bin);
        assert_non_null(js);
        cJSON *j = cJSON_Parse(js);
        assert_non_null(j);
        rec_t exp = {0};
        if (sdk_go)
            expect_sdk_go(j, &exp);
        else
            expect_collector(j, &exp);
        assert_true(exp.n >= 1);
        runs += check_all_modes(dirs.items[i], bin, n, &exp);

        /* Re-encoding the expected message gives back the vector's bytes exactly. */
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        for (size_t m = 0; m < exp.n; m++) {
            gw_es_header_t hs[GW_EVENTSTREAM_MAX_HEADER_COUNT];
            for (size_t k = 0; k < exp.v[m].n_headers; k++) {
                const rhdr_t *x = &exp.v[m].h[k];
                hs[k] = (gw_es_header_t){gw_str(x->name, x->name_len), (gw_es_header_type_t)x->type, x->ival,
                                         gw_str(x->bytes, x->bytes_len)};
            }
            assert_int_equal(gw_eventstream_encode(hs, exp.v[m].n_headers, gw_str(exp.v[m].payload, exp.v[m].payload_len),
                                                   &out),
                             GW_OK);
        }
        assert_int_equal(out.len, n);
        assert_memory_equal(out.data, bin, n);
        gw_buf_free(&out);

        rec_free(&exp);
        cJSON_Delete(j);
        free(js);
        free(bin);
    }
    printf("event-stream positive vectors: %zu checked, %zu passed (%d decodes: whole, every split, byte by byte; "
           "re-encoded byte-exact)\n",
           dirs.n, dirs.n, runs);
    tu_list_free(&dirs);
}

static void test_vectors_negative(void **state)
{
    TU_REQUIRE_TESTDATA(td);
    tu_list_t dirs = {0};
    list_vector_dirs(td, "/negative/", &dirs);
    assert_true(dirs.n >= 12);
    int runs = 0;
    for (size_t i = 0; i < dirs.n; i++) {
        char path[PATH_MAX];
        size_t n = 0;
        tu_fmt(path, sizeof(path), "%s/encoded.bin", dirs.items[i]);
        char *bin = tu_read_file(path, &n);
        assert_non_null(bin);
        const char *first_error = NULL;
        for (size_t k = 0; k <= n + 1; k++) {
            int mode = k == 0 ? 0 : k == n + 1 ? 1 : 2;
            rec_t got = {0};
            run_t r = feed(bin, n, mode, k - 1, &got);
            if (r.rc != GW_EINVAL || got.n != 0)
                fail_msg("%s (mode %d, split %zu): rc %d, %zu messages; want a refusal", dirs.items[i], mode, k - 1,
                         r.rc, got.n);
            /* The same reason whatever the chunking. */
            if (first_error == NULL)
                first_error = r.error;
            assert_string_equal(first_error, r.error);
            rec_free(&got);
            runs++;
        }
        printf("  refused %s: %s\n", strrchr(dirs.items[i], '/') + 1, first_error);
        free(bin);
    }
    printf("event-stream negative vectors: %zu checked, %zu refused (%d decodes)\n", dirs.n, dirs.n, runs);
    tu_list_free(&dirs);
}

/* ---------------------------------------------------------------------------------------------
 * Recorded Bedrock streams.
 */

static void test_bedrock_recordings(void **state)
{
    TU_REQUIRE_TESTDATA(td);
    tu_list_t files = {0};
    static const char *const providers[] = {"bedrock-converse", "bedrock-invoke"};
    for (size_t p = 0; p < GW_ARRAY_SIZE(providers); p++) {
        char root[PATH_MAX];
        tu_fmt(root, sizeof(root), "%s/providers/%s", td, providers[p]);
        tu_find_files(root, "response.eventstream", &files);
    }
    assert_true(files.n >= 1);
    size_t messages = 0;
    int runs = 0;
    for (size_t i = 0; i < files.n; i++) {
        char path[PATH_MAX];
        size_t n = 0, jl = 0;
        char *bin = tu_read_file(files.items[i], &n);
        tu_fmt(path, sizeof(path), "%s.decoded.json", files.items[i]);
        char *js = tu_read_file(path, &jl);
        assert_non_null(bin);
        assert_non_null(js);
        cJSON *j = cJSON_Parse(js);
        assert_non_null(j);
        rec_t exp = {0};
        expect_collector(j, &exp);
        assert_true(exp.n >= 1);
        runs += check_all_modes(files.items[i], bin, n, &exp);
        /* Every Bedrock event names itself. */
        rec_t got = {0};
        assert_int_equal(feed(bin, n, 0, 0, &got).rc, GW_OK);
        for (size_t m = 0; m < got.n; m++) {
            gw_es_header_t hs[GW_EVENTSTREAM_MAX_HEADER_COUNT];
            for (size_t k = 0; k < got.v[m].n_headers; k++)
                hs[k] = (gw_es_header_t){gw_str(got.v[m].h[k].name, got.v[m].h[k].name_len),
                                         (gw_es_header_type_t)got.v[m].h[k].type, 0,
                                         gw_str(got.v[m].h[k].bytes, got.v[m].h[k].bytes_len)};
            gw_es_message_t msg = {.headers = hs, .n_headers = got.v[m].n_headers};
            assert_true(gw_es_header_string(&msg, ":message-type").len > 0);
        }
        messages += got.n;
        rec_free(&got);
        rec_free(&exp);
        cJSON_Delete(j);
        free(js);
        free(bin);
    }
    printf("bedrock recordings: %zu streams, %zu messages checked, all equal to the decoded form in %d decodes\n",
           files.n, messages, runs);
    tu_list_free(&files);
}

/* The payloads of the gateway-translation Bedrock cases (one per line), framed by the encoder the
 * way a Bedrock upstream frames them, decoded back in every chunking. */
static void test_translation_payloads_framed(void **state)
{
    TU_REQUIRE_TESTDATA(td);
    char root[PATH_MAX];
    tu_fmt(root, sizeof(root), "%s/providers/gateway-translation", td);
    tu_list_t files = {0};
    tu_find_files(root, ".eventstream-payloads.jsonl", &files);
    size_t frames = 0;
    for (size_t i = 0; i < files.n; i++) {
        size_t n = 0;
        char *text = tu_read_file(files.items[i], &n);
        assert_non_null(text);
        gw_buf_t wire;
        gw_buf_init(&wire, GW_BUF_UNLIMITED);
        rec_t exp = {0};
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            size_t len = strlen(line);
            gw_es_header_t hs[3] = {
                {GW_STR(":event-type"), GW_ES_STRING, 0, GW_STR("chunk")},
                {GW_STR(":content-type"), GW_ES_STRING, 0, GW_STR("application/json")},
                {GW_STR(":message-type"), GW_ES_STRING, 0, GW_STR("event")},
            };
            size_t before = wire.len;
            assert_int_equal(gw_eventstream_encode(hs, 3, gw_str(line, len), &wire), GW_OK);
            rmsg_t *m = rec_add(&exp);
            for (size_t k = 0; k < 3; k++)
                m->h[k] = (rhdr_t){dup_bytes(hs[k].name.base, hs[k].name.len), hs[k].name.len, GW_ES_STRING, 0,
                                   dup_bytes(hs[k].bytes.base, hs[k].bytes.len), hs[k].bytes.len};
            m->n_headers = 3;
            m->payload = dup_bytes(line, (m->payload_len = len));
            const unsigned char *w = (const unsigned char *)wire.data + before;
            m->total_length = (uint32_t)(wire.len - before);
            m->headers_length = (uint32_t)w[4] << 24 | (uint32_t)w[5] << 16 | (uint32_t)w[6] << 8 | w[7];
            m->prelude_crc = (uint32_t)crc32(0, w, 8);
            m->message_crc = (uint32_t)crc32(0, w, m->total_length - 4);
        }
        check_all_modes(files.items[i], wire.data, wire.len, &exp);
        frames += exp.n;
        rec_free(&exp);
        gw_buf_free(&wire);
        free(text);
    }
    printf("gateway-translation payloads: %zu files, %zu frames encoded and decoded back\n", files.n, frames);
    tu_list_free(&files);
}

/* ---------------------------------------------------------------------------------------------
 * Handwritten framing: a test-side framer (zlib CRCs) builds messages the encoder would refuse.
 */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Frames raw header bytes and a payload; total/hlen overrides when non-zero. */
static size_t frame(unsigned char *out, const void *hdrs, size_t hlen, const void *payload, size_t plen,
                    uint32_t total_override, uint32_t hlen_override)
{
    size_t total = 16 + hlen + plen;
    put32(out, total_override ? total_override : (uint32_t)total);
    put32(out + 4, hlen_override ? hlen_override : (uint32_t)hlen);
    put32(out + 8, (uint32_t)crc32(0, out, 8));
    if (hlen)
        memcpy(out + 12, hdrs, hlen);
    if (plen)
        memcpy(out + 12 + hlen, payload, plen);
    put32(out + 12 + hlen + plen, (uint32_t)crc32(0, out, (uInt)(12 + hlen + plen)));
    return total;
}

static void expect_refused(const char *label, const unsigned char *buf, size_t n, int want_rc, const char *want_error)
{
    for (int mode = 0; mode < 2; mode++) {
        rec_t got = {0};
        run_t r = feed((const char *)buf, n, mode, 0, &got);
        if (r.rc != want_rc || got.n != 0 || (want_error && strcmp(r.error, want_error) != 0))
            fail_msg("%s (mode %d): rc %d (%s), %zu messages", label, mode, r.rc, r.error ? r.error : "-", got.n);
        rec_free(&got);
    }
}

static void test_framing_errors(void **state)
{
    unsigned char buf[512];
    size_t n;
    /* total below 16 */
    n = frame(buf, NULL, 0, NULL, 0, 15, 0);
    expect_refused("short total", buf, n, GW_EINVAL, "message length below the 16-byte minimum");
    /* headers length beyond the message */
    n = frame(buf, NULL, 0, "abcd", 4, 0, 5);
    expect_refused("headers length", buf, n, GW_EINVAL, "headers length beyond the message");
    /* empty header name */
    n = frame(buf, "\x00\x00", 2, NULL, 0, 0, 0);
    expect_refused("empty name", buf, n, GW_EINVAL, "empty header name");
    /* unknown value type 10 */
    n = frame(buf, "\x01x\x0a", 3, NULL, 0, 0, 0);
    expect_refused("type 10", buf, n, GW_EINVAL, "invalid header value type");
    /* name longer than the headers */
    n = frame(buf, "\x05xy", 3, NULL, 0, 0, 0);
    expect_refused("name cut", buf, n, GW_EINVAL, "header name beyond the headers");
    /* string length beyond the headers (payload bytes must not be taken as the value) */
    n = frame(buf, "\x01s\x07\x00\x04" "ab", 7, "cdef", 4, 0, 0);
    expect_refused("string cut", buf, n, GW_EINVAL, "header value beyond the headers");
    n = frame(buf, "\x01s\x07\x00", 4, NULL, 0, 0, 0);
    expect_refused("string length cut", buf, n, GW_EINVAL, "header value length beyond the headers");
    /* int64 cut */
    n = frame(buf, "\x01i\x05\x00\x00\x00", 6, NULL, 0, 0, 0);
    expect_refused("int64 cut", buf, n, GW_EINVAL, "header value beyond the headers");
    /* bad message CRC */
    n = frame(buf, NULL, 0, "hello", 5, 0, 0);
    buf[n - 1] ^= 1;
    expect_refused("message crc", buf, n, GW_EINVAL, "message checksum mismatch");
    /* bad prelude CRC, detected before the message is complete */
    n = frame(buf, NULL, 0, "hello", 5, 0, 0);
    buf[9] ^= 0x80;
    expect_refused("prelude crc", buf, 12, GW_EINVAL, "prelude checksum mismatch");
    /* A good message followed by garbage: the first is delivered, then the refusal. */
    n = frame(buf, NULL, 0, "ok", 2, 0, 0);
    memcpy(buf + n, "garbage-garbage!", 16);
    rec_t got = {0};
    run_t r = feed((const char *)buf, n + 16, 0, 0, &got);
    assert_int_equal(r.rc, GW_EINVAL);
    assert_int_equal(got.n, 1);
    rec_free(&got);
}

static void test_limits(void **state)
{
    unsigned char buf[64];
    /* A prelude announcing more than 16 MiB is refused at once, before any of it is buffered. */
    frame(buf, NULL, 0, NULL, 0, GW_EVENTSTREAM_MAX_MESSAGE + 1, 0);
    expect_refused("total", buf, 12, GW_TOOBIG, "message larger than the limit");
    frame(buf, NULL, 0, NULL, 0, GW_EVENTSTREAM_MAX_MESSAGE, GW_EVENTSTREAM_MAX_HEADERS_BYTES + 1);
    expect_refused("headers bytes", buf, 12, GW_TOOBIG, "headers larger than the limit");

    /* Exactly at the limits is accepted: a 16 MiB message with 128 KiB of headers. */
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    size_t payload_len = GW_EVENTSTREAM_MAX_MESSAGE - 16 - GW_EVENTSTREAM_MAX_HEADERS_BYTES;
    char *payload = calloc(1, payload_len);
    char *big = malloc(UINT16_MAX);
    memset(big, 'v', UINT16_MAX);
    /* a BYTES header of 1+1+1+2+65535 bytes, and one filling the rest of the 128 KiB */
    size_t rest = GW_EVENTSTREAM_MAX_HEADERS_BYTES - (1 + 1 + 1 + 2 + UINT16_MAX) - (1 + 1 + 1 + 2);
    gw_es_header_t hs[2] = {
        {GW_STR("a"), GW_ES_BYTES, 0, gw_str(big, UINT16_MAX)},
        {GW_STR("c"), GW_ES_BYTES, 0, gw_str(big, rest)},
    };
    assert_int_equal(gw_eventstream_encode(hs, 2, gw_str(payload, payload_len), &out), GW_OK);
    assert_int_equal(out.len, GW_EVENTSTREAM_MAX_MESSAGE);
    rec_t got = {0};
    assert_int_equal(feed(out.data, out.len, 0, 0, &got).rc, GW_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.v[0].headers_length, GW_EVENTSTREAM_MAX_HEADERS_BYTES);
    rec_free(&got);
    /* split in the middle: goes through the pending buffer up to its cap */
    assert_int_equal(feed(out.data, out.len, 2, out.len / 2, &got).rc, GW_OK);
    assert_int_equal(got.n, 1);
    rec_free(&got);
    /* one byte more of payload: the encoder refuses */
    gw_buf_reset(&out);
    assert_int_equal(gw_eventstream_encode(hs, 2, gw_str(payload, payload_len + 1), &out), GW_TOOBIG);
    hs[1].bytes.len++;
    assert_int_equal(gw_eventstream_encode(hs, 2, GW_STR(""), &out), GW_TOOBIG);
    assert_int_equal(out.len, 0);
    gw_buf_free(&out);
    free(payload);
    free(big);

    /* Header count: 64 accepted, 65 refused (built by hand: the encoder refuses 65 too). */
    unsigned char hdrs[65 * 3], msg[65 * 3 + 16];
    for (int i = 0; i < 65; i++) {
        hdrs[3 * i] = 1;
        hdrs[3 * i + 1] = (unsigned char)('0' + i % 10);
        hdrs[3 * i + 2] = GW_ES_BOOL_TRUE;
    }
    size_t n = frame(msg, hdrs, 64 * 3, NULL, 0, 0, 0);
    assert_int_equal(feed((const char *)msg, n, 0, 0, &got).rc, GW_OK);
    assert_int_equal(got.v[0].n_headers, 64);
    rec_free(&got);
    n = frame(msg, hdrs, 65 * 3, NULL, 0, 0, 0);
    expect_refused("65 headers", msg, n, GW_TOOBIG, "more headers than the limit");
}

static void test_callback_stop_and_partial(void **state)
{
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gw_eventstream_encode(NULL, 0, GW_STR("payload"), &out), GW_OK);
    rec_t got = {.stop_after = 1};
    assert_int_equal(feed(out.data, out.len, 0, 0, &got).rc, GW_DONE);
    assert_int_equal(got.n, 1);
    rec_free(&got);

    /* Cut at every point: the messages before the cut arrive, the rest stays partial. */
    size_t one = out.len / 3;
    for (size_t cut = 0; cut <= out.len; cut++) {
        gw_eventstream_decoder_t d;
        gw_eventstream_decoder_init(&d);
        rec_t r = {0};
        assert_int_equal(gw_eventstream_feed(&d, out.data, cut, on_message, &r), GW_OK);
        assert_int_equal(r.n, cut / one);
        assert_int_equal(gw_eventstream_has_partial(&d), cut % one != 0);
        rec_free(&r);
        gw_eventstream_decoder_free(&d);
    }

    /* Messages that a chunk holds whole are handed over in place, without a copy. */
    gw_eventstream_decoder_t d;
    gw_eventstream_decoder_init(&d);
    rec_t r = {.in_base = out.data, .in_len = out.len};
    assert_int_equal(gw_eventstream_feed(&d, out.data, one + 5, on_message, &r), GW_OK);
    assert_int_equal(r.in_place, 1);
    assert_int_equal(d.pending.len, 5);
    r.in_base = out.data + one + 5;
    r.in_len = out.len - one - 5;
    assert_int_equal(gw_eventstream_feed(&d, out.data + one + 5, out.len - one - 5, on_message, &r), GW_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.in_place, 2); /* the second came from the pending copy, the third in place */
    assert_false(gw_eventstream_has_partial(&d));
    assert_int_equal(gw_eventstream_feed(&d, "", 0, on_message, &r), GW_OK);
    rec_free(&r);
    gw_eventstream_decoder_free(&d);
    gw_buf_free(&out);
}

static void test_encoder(void **state)
{
    static const unsigned char uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    gw_es_header_t hs[] = {
        {GW_STR("t"), GW_ES_BOOL_TRUE, 0, GW_STR_NULL},
        {GW_STR("f"), GW_ES_BOOL_FALSE, 0, GW_STR_NULL},
        {GW_STR("b"), GW_ES_BYTE, -128, GW_STR_NULL},
        {GW_STR("s"), GW_ES_INT16, 32767, GW_STR_NULL},
        {GW_STR("i"), GW_ES_INT32, INT32_MIN, GW_STR_NULL},
        {GW_STR("l"), GW_ES_INT64, INT64_MIN, GW_STR_NULL},
        {GW_STR("y"), GW_ES_BYTES, 0, {"\0\1\2", 3}},
        {GW_STR(":event-type"), GW_ES_STRING, 0, GW_STR("contentBlockDelta")},
        {GW_STR("ts"), GW_ES_TIMESTAMP, 1719826205123, GW_STR_NULL},
        {GW_STR("u"), GW_ES_UUID, 0, {(const char *)uuid, 16}},
        {GW_STR("empty"), GW_ES_STRING, 0, GW_STR("")},
    };
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_eventstream_encode(hs, GW_ARRAY_SIZE(hs), GW_STR("{\"p\":1}"), &out), GW_OK);
    rec_t got = {0};
    assert_int_equal(feed(out.data, out.len, 1, 0, &got).rc, GW_OK);
    assert_int_equal(got.n, 1);
    assert_int_equal(got.v[0].n_headers, GW_ARRAY_SIZE(hs));
    for (size_t i = 0; i < GW_ARRAY_SIZE(hs); i++) {
        const rhdr_t *h = &got.v[0].h[i];
        assert_int_equal(h->type, hs[i].type);
        assert_true(gw_str_eq(gw_str(h->name, h->name_len), hs[i].name));
        assert_int_equal(h->ival, hs[i].type == GW_ES_BOOL_TRUE ? 1 : hs[i].int_value);
        assert_int_equal(h->bytes_len, hs[i].bytes.len);
        if (h->bytes_len)
            assert_memory_equal(h->bytes, hs[i].bytes.base, h->bytes_len);
    }
    assert_string_equal(got.v[0].payload, "{\"p\":1}");
    rec_free(&got);

    /* gw_es_header_string finds STRING headers only */
    gw_es_message_t m = {.headers = hs, .n_headers = GW_ARRAY_SIZE(hs)};
    assert_true(gw_str_eq_lit(gw_es_header_string(&m, ":event-type"), "contentBlockDelta"));
    assert_null(gw_es_header_string(&m, "y").base);
    assert_null(gw_es_header_string(&m, "missing").base);
    assert_non_null(gw_es_header_string(&m, "empty").base);

    /* Refusals leave out unchanged. */
    size_t before = out.len;
    char name256[256];
    memset(name256, 'n', sizeof(name256));
    const gw_es_header_t bad[] = {
        {GW_STR(""), GW_ES_BOOL_TRUE, 0, GW_STR_NULL},
        {gw_str(name256, 256), GW_ES_BOOL_TRUE, 0, GW_STR_NULL},
        {GW_STR("x"), (gw_es_header_type_t)10, 0, GW_STR_NULL},
        {GW_STR("x"), GW_ES_BYTE, 128, GW_STR_NULL},
        {GW_STR("x"), GW_ES_INT16, -32769, GW_STR_NULL},
        {GW_STR("x"), GW_ES_INT32, (int64_t)INT32_MAX + 1, GW_STR_NULL},
        {GW_STR("x"), GW_ES_UUID, 0, GW_STR("short")},
        {GW_STR("x"), GW_ES_STRING, 0, {name256, 65536}},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        assert_int_equal(gw_eventstream_encode(&bad[i], 1, GW_STR(""), &out), GW_EINVAL);
        assert_int_equal(out.len, before);
    }
    gw_es_header_t ok255 = {gw_str(name256, 255), GW_ES_BOOL_FALSE, 0, GW_STR_NULL};
    assert_int_equal(gw_eventstream_encode(&ok255, 1, GW_STR(""), &out), GW_OK);
    gw_es_header_t many[GW_EVENTSTREAM_MAX_HEADER_COUNT + 1];
    for (size_t i = 0; i < GW_ARRAY_SIZE(many); i++)
        many[i] = (gw_es_header_t){GW_STR("k"), GW_ES_BOOL_TRUE, 0, GW_STR_NULL};
    assert_int_equal(gw_eventstream_encode(many, GW_EVENTSTREAM_MAX_HEADER_COUNT, GW_STR(""), &out), GW_OK);
    before = out.len;
    assert_int_equal(gw_eventstream_encode(many, GW_EVENTSTREAM_MAX_HEADER_COUNT + 1, GW_STR(""), &out), GW_EINVAL);
    gw_buf_t small;
    gw_buf_init(&small, 20);
    assert_int_equal(gw_eventstream_encode(NULL, 0, GW_STR("12345"), &small), GW_TOOBIG);
    assert_int_equal(small.len, 0);
    assert_int_equal(gw_eventstream_encode(NULL, 0, GW_STR("1234"), &small), GW_OK);
    assert_int_equal(small.len, 20);
    gw_buf_free(&small);
    assert_int_equal(out.len, before);
    gw_buf_free(&out);
}

/* Seeds for tests/fuzz/corpus/aws_eventstream, made by the encoder: run this test binary with
 * AIGW_WRITE_FUZZ_SEEDS=<dir>. */
static void write_fuzz_seeds(const char *dir)
{
    static const unsigned char uuid[16] = {0xb7, 0x9b, 0xc9, 0x14, 0xde, 0x21, 0x4e, 0x13,
                                           0xb8, 0xb2, 0xbc, 0x47, 0xe8, 0x5b, 0x7f, 0x0b};
    gw_es_header_t event[] = {
        {GW_STR(":event-type"), GW_ES_STRING, 0, GW_STR("contentBlockDelta")},
        {GW_STR(":content-type"), GW_ES_STRING, 0, GW_STR("application/json")},
        {GW_STR(":message-type"), GW_ES_STRING, 0, GW_STR("event")},
    };
    gw_es_header_t all[] = {
        {GW_STR("t"), GW_ES_BOOL_TRUE, 0, GW_STR_NULL},      {GW_STR("f"), GW_ES_BOOL_FALSE, 0, GW_STR_NULL},
        {GW_STR("b"), GW_ES_BYTE, -5, GW_STR_NULL},          {GW_STR("s"), GW_ES_INT16, 20000, GW_STR_NULL},
        {GW_STR("i"), GW_ES_INT32, 500000, GW_STR_NULL},     {GW_STR("l"), GW_ES_INT64, 50000000000, GW_STR_NULL},
        {GW_STR("y"), GW_ES_BYTES, 0, GW_STR("some bytes")}, {GW_STR("str"), GW_ES_STRING, 0, GW_STR("some str")},
        {GW_STR("ts"), GW_ES_TIMESTAMP, 5000000000, GW_STR_NULL}, {GW_STR("u"), GW_ES_UUID, 0, {(const char *)uuid, 16}},
    };
    gw_es_header_t exception[] = {
        {GW_STR(":exception-type"), GW_ES_STRING, 0, GW_STR("throttlingException")},
        {GW_STR(":content-type"), GW_ES_STRING, 0, GW_STR("application/json")},
        {GW_STR(":message-type"), GW_ES_STRING, 0, GW_STR("exception")},
    };
    static const struct {
        const char *name;
        int which; /* 0 none, 1 event, 2 all types, 3 exception */
        const char *payloads[3];
    } seeds[] = {
        {"empty_message", 0, {""}},
        {"bedrock_delta", 1, {"{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"},\"p\":\"abcd\"}"}},
        {"bedrock_three", 1, {"{\"role\":\"assistant\"}", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"x\"}}",
                              "{\"usage\":{\"inputTokens\":1,\"outputTokens\":2,\"totalTokens\":3}}"}},
        {"all_types", 2, {"some payload"}},
        {"exception", 3, {"{\"message\":\"Too many requests\"}"}},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(seeds); i++) {
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        for (size_t k = 0; k < 3 && seeds[i].payloads[k]; k++) {
            const gw_es_header_t *hs = seeds[i].which == 1 ? event : seeds[i].which == 2 ? all : exception;
            size_t nh = seeds[i].which == 0 ? 0 : seeds[i].which == 2 ? GW_ARRAY_SIZE(all) : 3;
            if (gw_eventstream_encode(hs, nh, gw_str_c(seeds[i].payloads[k]), &out) != GW_OK)
                abort();
        }
        char path[PATH_MAX];
        tu_fmt(path, sizeof(path), "%s/%s", dir, seeds[i].name);
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
            perror(path);
            abort();
        }
        gw_buf_free(&out);
    }
    printf("wrote %zu fuzz seeds to %s\n", GW_ARRAY_SIZE(seeds), dir);
}

int main(void)
{
    const char *seed_dir = getenv("AIGW_WRITE_FUZZ_SEEDS");
    if (seed_dir && *seed_dir)
        write_fuzz_seeds(seed_dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoder),
        cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_callback_stop_and_partial),
        cmocka_unit_test(test_vectors_positive),
        cmocka_unit_test(test_vectors_negative),
        cmocka_unit_test(test_bedrock_recordings),
        cmocka_unit_test(test_translation_payloads_framed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
