/* libFuzzer harness for codec/sse: the same bytes fed whole, in pieces of a size taken from the
 * input, split once, and one byte at a time must give the same status, the same events and the
 * same retry: value. */
#include "codec/sse.h"

#include <stdlib.h>

#define CHECK(cond)                 \
    do {                            \
        if (!(cond))                \
            __builtin_trap();       \
    } while (0)

/* Events are serialised (length-prefixed fields) so runs can be compared byte for byte. */
static int on_event(void *ud, const gw_sse_event_t *ev)
{
    gw_buf_t *log = ud;
    CHECK(ev->event.base && ev->data.base && ev->id.base);
    gw_buf_append_u64(log, ev->event.len);
    gw_buf_append_str(log, ev->event);
    gw_buf_append_u64(log, ev->data.len);
    gw_buf_append_str(log, ev->data);
    gw_buf_append_u64(log, ev->id.len);
    gw_buf_append_str(log, ev->id);
    gw_buf_append_byte(log, ev->has_id ? 'I' : '-');
    return GW_OK;
}

typedef struct {
    int rc;
    bool partial;
    int64_t retry_ms;
    gw_buf_t log;
} run_t;

static void run(const char *p, size_t n, size_t max_event, size_t step, size_t split, run_t *r)
{
    gw_sse_parser_t sp;
    gw_sse_parser_init(&sp, max_event);
    gw_buf_init(&r->log, GW_BUF_UNLIMITED);
    r->rc = GW_OK;
    if (split) {
        r->rc = gw_sse_feed(&sp, p, split, on_event, &r->log);
        if (r->rc == GW_OK)
            r->rc = gw_sse_feed(&sp, p + split, n - split, on_event, &r->log);
    } else {
        for (size_t off = 0; off < n && r->rc == GW_OK; off += step)
            r->rc = gw_sse_feed(&sp, p + off, GW_MIN(step, n - off), on_event, &r->log);
        if (n == 0)
            r->rc = gw_sse_feed(&sp, p, 0, on_event, &r->log);
    }
    r->partial = gw_sse_has_partial(&sp);
    r->retry_ms = sp.retry_ms;
    CHECK(sp.retry_ms >= -1 && sp.retry_ms <= GW_SSE_MAX_RETRY_MS);
    gw_sse_parser_free(&sp);
}

static void same(const run_t *a, const run_t *b)
{
    CHECK(a->rc == b->rc);
    CHECK(a->log.len == b->log.len && (a->log.len == 0 || memcmp(a->log.data, b->log.data, a->log.len) == 0));
    if (a->rc == GW_OK) {
        CHECK(a->partial == b->partial);
        CHECK(a->retry_ms == b->retry_ms);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* byte 0: the limit (0 = default); byte 1: a chunk size */
    size_t max_event = data[0] < 8 ? 0 : data[0];
    size_t step = (size_t)data[1] % 17 + 1;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;

    run_t whole, bytes, chunks, halves;
    run(p, n, max_event, n ? n : 1, 0, &whole);
    run(p, n, max_event, 1, 0, &bytes);
    run(p, n, max_event, step, 0, &chunks);
    size_t split = n ? (size_t)data[1] * 7 % n : 0;
    run(p, n, max_event, n ? n : 1, split, &halves); /* split 0: fed whole again */
    CHECK(whole.rc == GW_OK || whole.rc == GW_TOOBIG);
    same(&whole, &bytes);
    same(&whole, &chunks);
    same(&whole, &halves);
    gw_buf_free(&whole.log);
    gw_buf_free(&bytes.log);
    gw_buf_free(&chunks.log);
    gw_buf_free(&halves.log);
    return 0;
}
