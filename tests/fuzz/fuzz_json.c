/* libFuzzer harness for core/json: the validator on any bytes, the lenient lookups on any bytes
 * (they must stay inside the slice), and invariants that tie the functions together on valid input:
 * member values validate on their own, identity splices are lossless, the writer round-trips. */
#include "core/json.h"

#include <stdlib.h>

#define CHECK(cond)                 \
    do {                            \
        if (!(cond))                \
            __builtin_trap();       \
    } while (0)

static void check_string_roundtrip(gw_str_t raw)
{
    gw_buf_t un, esc, back;
    gw_buf_init(&un, 1 << 20);
    gw_buf_init(&esc, 1 << 22);
    gw_buf_init(&back, 1 << 20);
    CHECK(gw_json_string_unescape(raw, &un) == GW_OK);
    CHECK(gw_json_append_string(&esc, un.data ? un.data : "", un.len) == GW_OK);
    CHECK(gw_json_validate(esc.data, esc.len, 0, NULL) == GW_OK);
    CHECK(gw_json_string_unescape(gw_buf_str(&esc), &back) == GW_OK);
    CHECK(back.len == un.len && (un.len == 0 || memcmp(back.data, un.data, un.len) == 0));
    gw_buf_free(&un);
    gw_buf_free(&esc);
    gw_buf_free(&back);
}

/* Lookups and scalar readers on an arbitrary slice: anything may fail, nothing may crash. */
static void poke(gw_str_t doc)
{
    size_t pos = 0;
    gw_str_t k, v;
    int members = 0;
    uint64_t u;
    bool b;
    gw_buf_t tmp;
    gw_buf_init(&tmp, 1 << 16);
    while (members < 64 && gw_json_object_next(doc, &pos, &k, &v) == GW_OK) {
        CHECK(k.base >= doc.base && k.base + k.len <= doc.base + doc.len);
        CHECK(v.base >= doc.base && v.base + v.len <= doc.base + doc.len);
        (void)gw_json_key_eq(k, GW_STR("model"));
        gw_buf_reset(&tmp);
        (void)gw_json_string_unescape(k, &tmp);
        gw_buf_reset(&tmp);
        (void)gw_json_string_unescape(v, &tmp);
        (void)gw_json_uint(v, &u);
        (void)gw_json_bool(v, &b);
        (void)gw_json_type(v);
        members++;
    }
    (void)gw_json_path_get(doc, "usage.prompt_tokens_details.cached_tokens", &v);
    (void)gw_json_path_get(doc, "a..b", &v);
    (void)gw_json_uint(doc, &u);
    (void)gw_json_bool(doc, &b);
    gw_buf_reset(&tmp);
    (void)gw_json_string_unescape(doc, &tmp);
    gw_buf_free(&tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    gw_str_t doc = gw_str(p, size);
    gw_json_error_t err = {0};
    int rc = gw_json_validate(p, size, 0, &err);
    CHECK(rc == GW_OK || rc == GW_EINVAL || rc == GW_TOOBIG);
    if (rc != GW_OK)
        CHECK(err.what != NULL && err.offset <= size);
    /* a tighter depth can only reject more */
    int rc3 = gw_json_validate(p, size, 3, NULL);
    if (rc3 == GW_OK)
        CHECK(rc == GW_OK);

    poke(doc);

    if (rc == GW_OK) {
        gw_json_type_t t = gw_json_type(doc);
        CHECK(t != GW_JSON_INVALID);
        if (t == GW_JSON_STRING)
            check_string_roundtrip(doc);
        if (t == GW_JSON_OBJECT) {
            size_t pos = 0;
            gw_str_t k, v, again;
            int r;
            while ((r = gw_json_object_next(doc, &pos, &k, &v)) == GW_OK) {
                /* a member value of a valid document is a valid document */
                CHECK(gw_json_validate(v.base, v.len, 0, NULL) == GW_OK);
                check_string_roundtrip(k);
                /* lookups by the unescaped key find this very member (keys are unique) */
                gw_buf_t key;
                gw_buf_init(&key, 1 << 20);
                CHECK(gw_json_string_unescape(k, &key) == GW_OK);
                CHECK(gw_json_key_eq(k, gw_buf_str(&key)));
                CHECK(gw_json_object_get(doc, gw_buf_str(&key), &again) == GW_OK);
                CHECK(again.base == v.base && again.len == v.len);
                gw_buf_free(&key);
                /* splicing a value with itself changes nothing */
                gw_buf_t out;
                gw_buf_init(&out, GW_BUF_UNLIMITED);
                CHECK(gw_json_splice(doc, v, v, &out) == GW_OK);
                CHECK(out.len == size && memcmp(out.data, p, size) == 0);
                gw_buf_free(&out);
            }
            CHECK(r == GW_DONE);
        }
    }

    /* whatever the bytes, the writer produces valid JSON */
    gw_buf_t w;
    gw_buf_init(&w, GW_BUF_UNLIMITED);
    CHECK(gw_json_append_string(&w, p, size) == GW_OK);
    CHECK(gw_json_validate(w.data, w.len, 0, NULL) == GW_OK);
    gw_buf_free(&w);
    return 0;
}
