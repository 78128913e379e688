/* libFuzzer harness for translate/openai_usage: any bytes as a whole body and as a chunk, and as
 * an SSE stream whose events go through the chunk reader, as the gateway does. Invariants: a
 * rejected chunk leaves the record untouched; a valid JSON object is never rejected; the body and
 * chunk readers agree. */
#include "codec/sse.h"
#include "core/json.h"
#include "translate/openai_usage.h"

#include <stdlib.h>

#define CHECK(cond)                 \
    do {                            \
        if (!(cond))                \
            __builtin_trap();       \
    } while (0)

static bool usage_eq(const gw_token_usage_t *a, const gw_token_usage_t *b)
{
    return a->input == b->input && a->cached_input == b->cached_input && a->cache_creation == b->cache_creation &&
           a->output == b->output && a->reasoning == b->reasoning && a->total == b->total && a->present == b->present;
}

typedef struct {
    gw_token_usage_t u;
    gw_buf_t model;
} obs_t;

static int on_event(void *ud, const gw_sse_event_t *ev)
{
    obs_t *o = ud;
    gw_token_usage_t before = o->u;
    size_t mlen = o->model.len;
    if (gw_openai_usage_from_chunk(ev->data, &o->u, &o->model) != GW_OK) {
        CHECK(usage_eq(&before, &o->u));
        CHECK(o->model.len == mlen);
    }
    return GW_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_str_t in = gw_str((const char *)data, size);
    gw_token_usage_t u;
    gw_buf_t model;
    gw_buf_init(&model, 256);

    int rc = gw_openai_usage_from_body(in, &u, &model);
    CHECK(rc == GW_OK || rc == GW_EINVAL);
    if (gw_json_validate(in.base, in.len, 0, NULL) == GW_OK && gw_json_type(in) == GW_JSON_OBJECT)
        CHECK(rc == GW_OK);
    if (rc != GW_OK)
        CHECK(model.len == 0);

    /* the body and chunk readers agree on the same bytes */
    gw_token_usage_t c = {0};
    int crc = gw_openai_usage_from_chunk(in, &c, NULL);
    CHECK(crc == rc);
    if (rc == GW_OK)
        CHECK(usage_eq(&c, &u));

    obs_t o = {{0}, {0}};
    gw_buf_init(&o.model, 256);
    gw_sse_parser_t p;
    gw_sse_parser_init(&p, 4096);
    (void)gw_sse_feed(&p, in.base, in.len, on_event, &o);
    gw_sse_parser_free(&p);
    gw_buf_free(&o.model);
    gw_buf_free(&model);
    return 0;
}
