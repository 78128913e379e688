/* libFuzzer harness for codec/aws_eventstream: the input is an event stream, fed whole, split once
 * at a position derived from the input, and (when small) one byte at a time; every run must give the
 * same status, error and messages. Each decoded message is re-encoded and must give back the same
 * lengths and CRCs, and decode again to the same message. */
#include "codec/aws_eventstream.h"

#include <stdlib.h>

#define CHECK(cond)               \
    do {                          \
        if (!(cond))              \
            __builtin_trap();     \
    } while (0)

/* Messages serialised (length-prefixed fields) so that runs can be compared byte for byte. */
static void log_message(gw_buf_t *log, const gw_es_message_t *m)
{
    gw_buf_append_u64(log, m->n_headers);
    for (size_t i = 0; i < m->n_headers; i++) {
        const gw_es_header_t *h = &m->headers[i];
        gw_buf_append_u64(log, h->name.len);
        gw_buf_append_str(log, h->name);
        gw_buf_append_u64(log, (uint64_t)h->type);
        gw_buf_append_u64(log, (uint64_t)h->int_value);
        gw_buf_append_u64(log, h->bytes.len);
        gw_buf_append_str(log, h->bytes);
    }
    gw_buf_append_u64(log, m->payload.len);
    gw_buf_append_str(log, m->payload);
    gw_buf_append_u64(log, ((uint64_t)m->prelude_crc << 32) | m->message_crc);
    gw_buf_append_u64(log, ((uint64_t)m->total_length << 32) | m->headers_length);
}

static int on_reencoded(void *ud, const gw_es_message_t *m)
{
    gw_buf_t *log = ud;
    log_message(log, m);
    return GW_OK;
}

typedef struct {
    gw_buf_t log;
    bool reencode;
} ctx_t;

static int on_message(void *ud, const gw_es_message_t *m)
{
    ctx_t *c = ud;
    CHECK(m->n_headers <= GW_EVENTSTREAM_MAX_HEADER_COUNT);
    CHECK(m->total_length == 16 + m->headers_length + m->payload.len);
    log_message(&c->log, m);
    if (!c->reencode)
        return GW_OK;

    /* Encoding is canonical, so what the decoder accepted comes back bit for bit. */
    gw_buf_t wire;
    gw_buf_init(&wire, GW_BUF_UNLIMITED);
    CHECK(gw_eventstream_encode(m->headers, m->n_headers, m->payload, &wire) == GW_OK);
    CHECK(wire.len == m->total_length);
    const unsigned char *w = (const unsigned char *)wire.data;
    uint32_t pcrc = (uint32_t)w[8] << 24 | (uint32_t)w[9] << 16 | (uint32_t)w[10] << 8 | w[11];
    const unsigned char *t = w + wire.len - 4;
    uint32_t mcrc = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
    CHECK(pcrc == m->prelude_crc && mcrc == m->message_crc);

    gw_eventstream_decoder_t d;
    gw_eventstream_decoder_init(&d);
    gw_buf_t again, orig;
    gw_buf_init(&again, GW_BUF_UNLIMITED);
    gw_buf_init(&orig, GW_BUF_UNLIMITED);
    CHECK(gw_eventstream_feed(&d, wire.data, wire.len, on_reencoded, &again) == GW_OK);
    CHECK(!gw_eventstream_has_partial(&d));
    log_message(&orig, m);
    CHECK(again.len == orig.len && memcmp(again.data, orig.data, orig.len) == 0);
    gw_eventstream_decoder_free(&d);
    gw_buf_free(&again);
    gw_buf_free(&orig);
    gw_buf_free(&wire);
    return GW_OK;
}

typedef struct {
    int rc;
    bool partial;
    const char *error;
    ctx_t ctx;
} run_t;

/* mode 0: whole; 1: byte by byte; 2: split once at `split`. */
static void run(const char *p, size_t n, int mode, size_t split, bool reencode, run_t *r)
{
    gw_eventstream_decoder_t d;
    gw_eventstream_decoder_init(&d);
    gw_buf_init(&r->ctx.log, GW_BUF_UNLIMITED);
    r->ctx.reencode = reencode;
    r->rc = GW_OK;
    if (mode == 0) {
        r->rc = gw_eventstream_feed(&d, p, n, on_message, &r->ctx);
    } else if (mode == 1) {
        for (size_t i = 0; i < n && r->rc == GW_OK; i++)
            r->rc = gw_eventstream_feed(&d, p + i, 1, on_message, &r->ctx);
    } else {
        r->rc = gw_eventstream_feed(&d, p, split, on_message, &r->ctx);
        if (r->rc == GW_OK)
            r->rc = gw_eventstream_feed(&d, p + split, n - split, on_message, &r->ctx);
    }
    r->partial = gw_eventstream_has_partial(&d);
    r->error = d.error;
    CHECK(r->rc == GW_OK || r->rc == GW_EINVAL || r->rc == GW_TOOBIG);
    CHECK((r->rc == GW_OK) == (r->error == NULL));
    gw_eventstream_decoder_free(&d);
}

static void same(const run_t *a, const run_t *b)
{
    CHECK(a->rc == b->rc);
    CHECK(a->error == b->error); /* static strings: the same failure */
    CHECK(a->ctx.log.len == b->ctx.log.len &&
          (a->ctx.log.len == 0 || memcmp(a->ctx.log.data, b->ctx.log.data, a->ctx.log.len) == 0));
    if (a->rc == GW_OK)
        CHECK(a->partial == b->partial);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    size_t split = size ? h % (size + 1) : 0;

    run_t whole, halves;
    run(p, size, 0, 0, true, &whole);
    run(p, size, 2, split, false, &halves);
    same(&whole, &halves);
    if (size <= 4096) {
        run_t bytes;
        run(p, size, 1, 0, false, &bytes);
        same(&whole, &bytes);
        gw_buf_free(&bytes.ctx.log);
    }
    gw_buf_free(&whole.ctx.log);
    gw_buf_free(&halves.ctx.log);
    return 0;
}
