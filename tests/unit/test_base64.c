/* Unit tests for codec/base64: the RFC 4648 §10 vectors in both alphabets, every strictness rule
 * of the decoder (alphabet, padding, leftover bits, whitespace), the cap and the all-or-nothing
 * promise, and a round trip of every length over pseudo-random bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec/base64.h"

static void expect_encode(gw_base64_alphabet_t a, const char *in, const char *want)
{
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_base64_encode(a, in, strlen(in), &out), GW_OK);
    assert_int_equal(out.len, strlen(want));
    assert_int_equal(gw_base64_encoded_len(a, strlen(in)), strlen(want));
    if (out.len)
        assert_memory_equal(out.data, want, out.len);
    gw_buf_free(&out);
}

static void expect_decode(gw_base64_alphabet_t a, const char *in, const char *want)
{
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_base64_decode(a, in, strlen(in), &out), GW_OK);
    assert_int_equal(out.len, strlen(want));
    assert_true(out.len <= gw_base64_decoded_max(strlen(in)));
    if (out.len)
        assert_memory_equal(out.data, want, out.len);
    gw_buf_free(&out);
}

static void expect_reject(gw_base64_alphabet_t a, const char *in)
{
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    gw_buf_append_lit(&out, "keep");
    assert_int_equal(gw_base64_decode(a, in, strlen(in), &out), GW_EINVAL);
    /* all or nothing: what was there stays, nothing is added */
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "keep", 4);
    gw_buf_free(&out);
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        expect_encode(GW_BASE64_STD, plain[i], std[i]);
        expect_encode(GW_BASE64_URL, plain[i], url[i]);
        expect_decode(GW_BASE64_STD, std[i], plain[i]);
        expect_decode(GW_BASE64_URL, url[i], plain[i]);
        expect_decode(GW_BASE64_URL, std[i], plain[i]); /* URL also takes the padded form */
    }
}

static void test_alphabets(void **state)
{
    (void)state;
    /* 0xfb 0xff 0xbf uses sextets 62 and 63 */
    const char bin[] = "\xfb\xff\xbf";
    expect_encode(GW_BASE64_STD, bin, "+/+/");
    expect_encode(GW_BASE64_URL, bin, "-_-_");
    expect_decode(GW_BASE64_STD, "+/+/", bin);
    expect_decode(GW_BASE64_URL, "-_-_", bin);
    expect_reject(GW_BASE64_STD, "-_-_");
    expect_reject(GW_BASE64_URL, "+/+/");
}

static void test_strictness(void **state)
{
    (void)state;
    expect_reject(GW_BASE64_STD, "Zg");       /* STD requires padding */
    expect_reject(GW_BASE64_STD, "Zg=");      /* half padding */
    expect_reject(GW_BASE64_URL, "Zg=");
    expect_reject(GW_BASE64_STD, "Zm8==");    /* too much padding */
    expect_reject(GW_BASE64_STD, "Z===");
    expect_reject(GW_BASE64_STD, "====");
    expect_reject(GW_BASE64_STD, "Zg==Zg=="); /* padding in the middle */
    expect_reject(GW_BASE64_STD, "Z=g=");
    expect_reject(GW_BASE64_URL, "Z");        /* a lone character carries no byte */
    expect_reject(GW_BASE64_URL, "Zm9vY");
    expect_reject(GW_BASE64_STD, "Zh==");     /* non-zero leftover bits: not the canonical form */
    expect_reject(GW_BASE64_STD, "Zm9=");
    expect_reject(GW_BASE64_URL, "Zh");
    expect_reject(GW_BASE64_STD, "Zm9v\n");   /* no whitespace */
    expect_reject(GW_BASE64_STD, "Zm 9v");
    expect_reject(GW_BASE64_STD, "Zm9*");
    expect_reject(GW_BASE64_STD, "Zm9v\x80\x80\x80\x80");
    /* an embedded NUL is not part of the alphabet */
    gw_buf_t out;
    gw_buf_init(&out, GW_BUF_UNLIMITED);
    assert_int_equal(gw_base64_decode(GW_BASE64_STD, "Zm\0v", 4, &out), GW_EINVAL);
    assert_int_equal(out.len, 0);
    gw_buf_free(&out);
}

static void test_cap(void **state)
{
    (void)state;
    gw_buf_t out;
    gw_buf_init(&out, 5);
    assert_int_equal(gw_base64_decode(GW_BASE64_STD, "Zm9vYmFy", 8, &out), GW_TOOBIG);
    assert_int_equal(out.len, 0);
    assert_int_equal(gw_base64_decode(GW_BASE64_STD, "Zm9vYmE=", 8, &out), GW_OK);
    assert_int_equal(out.len, 5);
    gw_buf_free(&out);
    gw_buf_init(&out, 7);
    assert_int_equal(gw_base64_encode(GW_BASE64_STD, "foobar", 6, &out), GW_TOOBIG);
    assert_int_equal(out.len, 0);
    assert_int_equal(gw_base64_encode(GW_BASE64_URL, "fooba", 5, &out), GW_OK);
    assert_int_equal(out.len, 7);
    gw_buf_free(&out);
}

static void test_round_trip(void **state)
{
    (void)state;
    unsigned char in[300];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(in); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        in[i] = (unsigned char)x;
    }
    for (int a = GW_BASE64_STD; a <= GW_BASE64_URL; a++) {
        for (size_t n = 0; n <= sizeof(in); n++) {
            gw_buf_t enc, dec;
            gw_buf_init(&enc, GW_BUF_UNLIMITED);
            gw_buf_init(&dec, GW_BUF_UNLIMITED);
            assert_int_equal(gw_base64_encode((gw_base64_alphabet_t)a, in, n, &enc), GW_OK);
            assert_int_equal(enc.len, gw_base64_encoded_len((gw_base64_alphabet_t)a, n));
            assert_int_equal(gw_base64_decode((gw_base64_alphabet_t)a, enc.data, enc.len, &dec), GW_OK);
            assert_int_equal(dec.len, n);
            if (n)
                assert_memory_equal(dec.data, in, n);
            /* changing the last character breaks either the bits or the alphabet rule */
            if (enc.len) {
                size_t last = enc.len - 1;
                while (last && enc.data[last] == '=')
                    last--;
                enc.data[last] = enc.data[last] == 'A' ? 'B' : 'A';
                gw_buf_reset(&dec);
                int rc = gw_base64_decode((gw_base64_alphabet_t)a, enc.data, enc.len, &dec);
                assert_true(rc == GW_EINVAL || (dec.len == n && memcmp(dec.data, in, n) != 0));
            }
            gw_buf_free(&enc);
            gw_buf_free(&dec);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_alphabets),
        cmocka_unit_test(test_strictness),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
