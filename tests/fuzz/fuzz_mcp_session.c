/* libFuzzer harness for mcp/session with a keyring built once from fixed test seeds: arbitrary ids are
 * opened (nothing may crash, leak or open), and sessions built from the input are sealed and must open
 * to exactly what went in, while the same id with one byte changed must not. A third keyring of the
 * same seeds is made again every few inputs (the old one freed, as a reload does): its verdicts must
 * be the first one's, whatever cipher contexts the thread kept for the keyrings before it.
 *
 * Input: byte 0 picks the mode. Mode even: the rest is an id. Mode odd: the rest is split at 0x00 into
 * route, subject, protocol version, then name / protocol version / session id per backend. */
#include "mcp/session.h"

#include <openssl/err.h>
#include <stdlib.h>

#define CHECK(cond)               \
    do {                          \
        if (!(cond))              \
            __builtin_trap();     \
    } while (0)

#define NOW 1750000000
#define MAX_PARTS (3 + 3 * 40)

static gw_mcp_session_keyring_t *keyring;
static gw_mcp_session_keyring_t *old_only;
static gw_mcp_session_keyring_t *remade; /* keyring's seeds, made again every REMAKE_EVERY inputs */
static unsigned n_inputs;

#define REMAKE_EVERY 7

/* Test-only seeds, public by design: the corpus ids are sealed with them. */
static const gw_str_t seeds[] = {GW_STR_INIT("aigw fuzz_mcp_session seed new"),
                                 GW_STR_INIT("aigw fuzz_mcp_session seed old")};

static void init(void)
{
    if (n_inputs++ % REMAKE_EVERY == 0) {
        gw_mcp_session_keyring_unref(remade);
        CHECK(gw_mcp_session_keyring_new(seeds, 2, &remade) == GW_OK);
    }
    if (keyring != NULL)
        return;
    CHECK(gw_mcp_session_keyring_new(seeds, 2, &keyring) == GW_OK);
    CHECK(gw_mcp_session_keyring_new(seeds + 1, 1, &old_only) == GW_OK);
}

static bool known_open_status(int rc)
{
    return rc == GW_OK || (rc <= GW_MCP_SESSION_EMALFORMED && rc >= GW_MCP_SESSION_EROUTE);
}

static void open_any(gw_str_t id, uint8_t mode)
{
    gw_mcp_session_expect_t e = {GW_STR("default/route"), GW_STR("alice@example.com"), NOW, 3600};
    if (mode & 2)
        e.subject = GW_STR_NULL;
    gw_mcp_session_t s;
    int rc = gw_mcp_session_open(keyring, id, &e, &s);
    CHECK(known_open_status(rc));
    if (rc == GW_OK) {
        /* Only the corpus' genuine ids get here: whatever opens is well-formed. */
        CHECK(gw_str_eq(s.route, e.route) && gw_str_eq(s.subject, e.subject));
        CHECK(s.n_backends <= GW_MCP_SESSION_MAX_BACKENDS);
        for (size_t i = 0; i < s.n_backends; i++)
            CHECK(s.backends[i].name.len > 0);
    } else {
        CHECK(s.storage_ == NULL && s.backends == NULL);
    }
    gw_mcp_session_free(&s);
    CHECK(gw_mcp_session_open(remade, id, &e, &s) == rc);
    gw_mcp_session_free(&s);
    rc = gw_mcp_session_open(old_only, id, &e, &s);
    CHECK(known_open_status(rc));
    gw_mcp_session_free(&s);
}

static void roundtrip(const char *p, size_t n, uint8_t mode)
{
    gw_str_t parts[MAX_PARTS];
    size_t k = 0;
    const char *end = p + n;
    while (k < MAX_PARTS) {
        const char *z = memchr(p, 0, (size_t)(end - p));
        parts[k++] = gw_str(p, z ? (size_t)(z - p) : (size_t)(end - p));
        if (z == NULL)
            break;
        p = z + 1;
    }
    gw_mcp_session_backend_t b[40];
    gw_mcp_session_t s = {
        .route = parts[0],
        .subject = k > 1 ? parts[1] : GW_STR_NULL,
        .protocol_version = k > 2 ? parts[2] : GW_STR_NULL,
        .issued_at = NOW - (int64_t)(mode >> 1) * 60,
        .backends = b,
    };
    for (size_t i = 3; i + 2 < k && s.n_backends < 40; i += 3)
        b[s.n_backends++] = (gw_mcp_session_backend_t){parts[i], parts[i + 1], parts[i + 2]};

    gw_buf_t id;
    gw_buf_init(&id, GW_MCP_SESSION_MAX_ID_LEN);
    int rc = gw_mcp_session_seal(keyring, &s, &id);
    CHECK(rc == GW_OK || rc == GW_EINVAL || rc == GW_TOOBIG);
    if (rc != GW_OK) {
        CHECK(id.len == 0);
        gw_buf_free(&id);
        return;
    }
    for (size_t i = 0; i < id.len; i++)
        CHECK(id.data[i] > 0x20 && id.data[i] < 0x7f);

    gw_mcp_session_expect_t e = {s.route, s.subject, NOW, 3600};
    gw_mcp_session_t got;
    rc = gw_mcp_session_open(keyring, gw_buf_str(&id), &e, &got);
    bool fresh = (mode >> 1) * 60 < 3600;
    CHECK(rc == (fresh ? GW_OK : GW_MCP_SESSION_EEXPIRED));
    if (rc == GW_OK) {
        CHECK(gw_str_eq(got.route, s.route) && gw_str_eq(got.subject, s.subject) &&
              gw_str_eq(got.protocol_version, s.protocol_version) && got.issued_at == s.issued_at &&
              got.n_backends == s.n_backends);
        for (size_t i = 0; i < s.n_backends; i++)
            CHECK(gw_str_eq(got.backends[i].name, b[i].name) &&
                  gw_str_eq(got.backends[i].protocol_version, b[i].protocol_version) &&
                  gw_str_eq(got.backends[i].session_id, b[i].session_id));
    }
    gw_mcp_session_free(&got);
    gw_buf_t id2;
    gw_buf_init(&id2, GW_MCP_SESSION_MAX_ID_LEN);
    CHECK(gw_mcp_session_seal(remade, &s, &id2) == GW_OK && id2.len == id.len);
    CHECK(gw_mcp_session_open(keyring, gw_buf_str(&id2), &e, &got) == rc);
    gw_mcp_session_free(&got);
    CHECK(gw_mcp_session_open(remade, gw_buf_str(&id), &e, &got) == rc);
    gw_mcp_session_free(&got);
    gw_buf_free(&id2);
    /* Sealed with the first seed: a keyring with only the second does not know the key. */
    CHECK(gw_mcp_session_open(old_only, gw_buf_str(&id), &e, &got) == GW_MCP_SESSION_EUNKNOWN_KEY);
    /* One character changed, chosen by the input: never opens. */
    size_t at = (n * 31 + mode) % id.len;
    id.data[at] = id.data[at] == 'A' ? 'B' : 'A';
    CHECK(gw_mcp_session_open(keyring, gw_buf_str(&id), &e, &got) != GW_OK);
    gw_buf_free(&id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 1)
        return 0;
    if (data[0] & 1)
        roundtrip((const char *)data + 1, size - 1, data[0]);
    else
        open_any(gw_str((const char *)data + 1, size - 1), data[0]);
    CHECK(ERR_peek_error() == 0);
    return 0;
}
