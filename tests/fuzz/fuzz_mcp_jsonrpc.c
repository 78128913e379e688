/* libFuzzer harness for mcp/jsonrpc: batches split into valid members, in order; any bytes
 * either parse into a message whose slices lie inside the input and whose kind matches its
 * members, or fail with a static reason; replacing the id keeps the message valid and of the same
 * kind; id wrapping round-trips. */
#include "core/json.h"
#include "mcp/jsonrpc.h"

#include <stdlib.h>

#define CHECK(cond)               \
    do {                          \
        if (!(cond))              \
            __builtin_trap();     \
    } while (0)

static bool inside(gw_str_t in, gw_str_t s)
{
    return s.len == 0 || (s.base >= in.base && s.base + s.len <= in.base + in.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_str_t in = gw_str((const char *)data, size);
    if (gw_jsonrpc_is_batch(in)) {
        /* batch members: in order, inside the input, not overlapping, each one JSON value */
        gw_str_t items[64];
        size_t n = 0;
        int brc = gw_jsonrpc_batch_split(in, items, 64, &n);
        CHECK(brc == GW_OK || brc == GW_EINVAL || brc == GW_TOOBIG);
        CHECK(brc == GW_OK || n == 0);
        const char *prev_end = in.base;
        for (size_t i = 0; i < n; i++) {
            CHECK(items[i].len > 0 && inside(in, items[i]) && items[i].base >= prev_end);
            CHECK(gw_json_validate(items[i].base, items[i].len, 0, NULL) == GW_OK);
            prev_end = items[i].base + items[i].len;
        }
    }
    gw_jsonrpc_msg_t m;
    const char *why = NULL;
    int rc = gw_jsonrpc_parse(in, &m, &why);
    if (rc != GW_OK) {
        CHECK(rc == GW_EINVAL || rc == GW_TOOBIG);
        CHECK(why != NULL);
        return 0;
    }
    CHECK(inside(in, m.id) && inside(in, m.params) && inside(in, m.result) && inside(in, m.error));
    CHECK((m.kind == GW_JSONRPC_REQUEST || m.kind == GW_JSONRPC_NOTIFICATION) == (m.method.len > 0));
    CHECK((m.kind == GW_JSONRPC_NOTIFICATION) == (m.id.len == 0));

    if (m.id.len > 0 && gw_json_type(m.id) != GW_JSON_NULL) {
        gw_buf_t tmp;
        gw_buf_init(&tmp, GW_BUF_UNLIMITED);
        int wrc = gw_jsonrpc_id_wrap(GW_STR("backend-1"), m.id, &tmp);
        gw_buf_free(&tmp);
        /* ids beyond what wrapping takes are refused, never cut */
        CHECK(m.id.len > GW_JSONRPC_MAX_ID ? wrc == GW_EINVAL : wrc == GW_OK);
    }
    if (m.id.len > 0 && m.id.len <= GW_JSONRPC_MAX_ID && gw_json_type(m.id) != GW_JSON_NULL) {
        /* Wrap the id the way server-to-client requests are rewritten, put it in, parse again. */
        gw_buf_t w, out, owner, raw;
        gw_buf_init(&w, GW_BUF_UNLIMITED);
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        gw_buf_init(&owner, GW_BUF_UNLIMITED);
        gw_buf_init(&raw, GW_BUF_UNLIMITED);
        CHECK(gw_jsonrpc_id_wrap(GW_STR("backend-1"), m.id, &w) == GW_OK);
        CHECK(gw_jsonrpc_replace_id(in, &m, gw_buf_str(&w), &out) == GW_OK);
        gw_jsonrpc_msg_t m2;
        CHECK(gw_jsonrpc_parse(gw_buf_str(&out), &m2, NULL) == GW_OK);
        CHECK(m2.kind == m.kind);
        CHECK(gw_jsonrpc_id_unwrap(m2.id, &owner, &raw) == GW_OK);
        CHECK(gw_str_eq(gw_buf_str(&owner), GW_STR("backend-1")));
        CHECK(gw_str_eq(gw_buf_str(&raw), m.id));
        gw_buf_free(&w);
        gw_buf_free(&out);
        gw_buf_free(&owner);
        gw_buf_free(&raw);
    }
    return 0;
}
