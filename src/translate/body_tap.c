/* Decoding side channel of passthrough translators (see body_tap.h). */
#include "translate/body_tap.h"

void gw_body_tap_init(gw_body_tap_t *t)
{
    t->decoder = NULL;
    gw_buf_init(&t->scratch, GW_BUF_UNLIMITED);
    t->failed = false;
}

void gw_body_tap_start(gw_body_tap_t *t, gw_str_t content_encoding, size_t max_decoded)
{
    gw_encoding_t enc = gw_encoding_parse(content_encoding);
    if (enc == GW_ENCODING_UNSUPPORTED)
        t->failed = true;
    else if (enc != GW_ENCODING_IDENTITY)
        t->decoder = gw_decoder_new(enc, max_decoded);
}

bool gw_body_tap_feed(gw_body_tap_t *t, const char *p, size_t n, gw_str_t *out)
{
    if (t->failed)
        return false;
    if (t->decoder == NULL) {
        *out = gw_str(p, n);
        return true;
    }
    gw_buf_reset(&t->scratch);
    if (gw_decoder_feed(t->decoder, p, n, &t->scratch) != GW_OK) {
        t->failed = true;
        return false;
    }
    *out = gw_buf_str(&t->scratch);
    return true;
}

void gw_body_tap_free(gw_body_tap_t *t)
{
    gw_decoder_free(t->decoder);
    t->decoder = NULL;
    gw_buf_free(&t->scratch);
}

bool gw_content_type_is_event_stream(gw_str_t ct)
{
    gw_str_t es = GW_STR("text/event-stream");
    return ct.len >= es.len && gw_str_case_eq(gw_str(ct.base, es.len), es);
}
