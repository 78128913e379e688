/* Unit tests for codec/decompress: gzip, zlib/raw deflate and brotli produced here with zlib and
 * libbrotlienc, decoded in every chunk size; concatenated gzip members; the output cap against
 * decompression bombs; corrupt, truncated and trailing-garbage input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec/decompress.h"

#include <brotli/encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

typedef enum { F_GZIP, F_ZLIB, F_RAW, F_BR } fmt_t;

/* Compresses with the reference encoders; the caller frees. */
static unsigned char *compress_with(fmt_t f, const void *in, size_t n, int level, size_t *out_len)
{
    if (f == F_BR) {
        size_t cap = BrotliEncoderMaxCompressedSize(n) + 64;
        unsigned char *out = malloc(cap);
        *out_len = cap;
        assert_true(BrotliEncoderCompress(level > 11 ? 11 : level, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, n, in,
                                          out_len, out) == BROTLI_TRUE);
        return out;
    }
    z_stream z = {0};
    int wbits = f == F_GZIP ? 16 + MAX_WBITS : f == F_ZLIB ? MAX_WBITS : -MAX_WBITS;
    assert_int_equal(deflateInit2(&z, level > 9 ? 9 : level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static gw_encoding_t enc_of(fmt_t f)
{
    return f == F_GZIP ? GW_ENCODING_GZIP : f == F_BR ? GW_ENCODING_BR : GW_ENCODING_DEFLATE;
}

/* Decodes in pieces of `chunk` bytes; returns the first non-GW_OK status, or GW_OK. */
static int decode(gw_encoding_t enc, const unsigned char *in, size_t n, size_t chunk, size_t max_output, gw_buf_t *out,
                  bool *finished)
{
    gw_decoder_t *d = gw_decoder_new(enc, max_output);
    assert_non_null(d);
    int rc = GW_OK;
    for (size_t off = 0; off < n && rc == GW_OK; off += chunk)
        rc = gw_decoder_feed(d, (const char *)in + off, GW_MIN(chunk, n - off), out);
    if (finished)
        *finished = gw_decoder_finished(d);
    gw_decoder_free(d);
    return rc;
}

/* Text that compresses like JSON does: repetitive with some variety. */
static char *sample(size_t n)
{
    char *s = malloc(n + 1);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = (i % 97 < 60) ? "{\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n"[i % 41] : (char)('a' + (x >> 16) % 26);
    }
    s[n] = '\0';
    return s;
}

static void test_encoding_parse(void **state)
{
    (void)state;
    struct {
        const char *v;
        gw_encoding_t e;
    } cases[] = {
        {"gzip", GW_ENCODING_GZIP},       {"GZIP", GW_ENCODING_GZIP},         {" x-gzip\t", GW_ENCODING_GZIP},
        {"deflate", GW_ENCODING_DEFLATE}, {"Deflate ", GW_ENCODING_DEFLATE},  {"br", GW_ENCODING_BR},
        {"BR", GW_ENCODING_BR},           {"identity", GW_ENCODING_IDENTITY}, {"", GW_ENCODING_IDENTITY},
        {"   ", GW_ENCODING_IDENTITY},    {"gzip, br", GW_ENCODING_UNSUPPORTED}, {"zstd", GW_ENCODING_UNSUPPORTED},
        {"compress", GW_ENCODING_UNSUPPORTED}, {"gzipx", GW_ENCODING_UNSUPPORTED}, {"g zip", GW_ENCODING_UNSUPPORTED},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        assert_int_equal(gw_encoding_parse(gw_str_c(cases[i].v)), cases[i].e);
    assert_int_equal(gw_encoding_parse(GW_STR_NULL), GW_ENCODING_IDENTITY);
    assert_null(gw_decoder_new(GW_ENCODING_IDENTITY, 100));
    assert_null(gw_decoder_new(GW_ENCODING_UNSUPPORTED, 100));
    gw_decoder_free(NULL);
}

/* Every format, every chunk size from 1 to the whole compressed length: exact output. */
static void test_roundtrip_every_chunk_size(void **state)
{
    (void)state;
    size_t sizes[] = {0, 1, 100, 5000, 70000};
    size_t runs = 0;
    for (size_t si = 0; si < GW_ARRAY_SIZE(sizes); si++) {
        char *plain = sample(sizes[si]);
        for (fmt_t f = F_GZIP; f <= F_BR; f++) {
            size_t clen;
            unsigned char *c = compress_with(f, plain, sizes[si], 6, &clen);
            /* all chunk sizes for small inputs; for the big one 1..512 and then a stride */
            for (size_t chunk = 1; chunk <= clen; chunk = chunk < 512 ? chunk + 1 : chunk * 2 + 1) {
                gw_buf_t out;
                gw_buf_init(&out, GW_BUF_UNLIMITED);
                bool fin = false;
                int rc = decode(enc_of(f), c, clen, chunk, sizes[si] + 1, &out, &fin);
                if (rc != GW_OK || out.len != sizes[si] || !fin)
                    printf("format %d size %zu chunk %zu: rc %d len %zu fin %d\n", f, sizes[si], chunk, rc, out.len, fin);
                assert_int_equal(rc, GW_OK);
                assert_true(fin);
                assert_int_equal(out.len, sizes[si]);
                if (sizes[si])
                    assert_memory_equal(out.data, plain, sizes[si]);
                gw_buf_free(&out);
                runs++;
            }
            free(c);
        }
        free(plain);
    }
    printf("round trips: %zu\n", runs);
}

static void test_not_finished_until_end(void **state)
{
    (void)state;
    char *plain = sample(3000);
    for (fmt_t f = F_GZIP; f <= F_BR; f++) {
        size_t clen;
        unsigned char *c = compress_with(f, plain, 3000, 6, &clen);
        gw_decoder_t *d = gw_decoder_new(enc_of(f), 1 << 20);
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        assert_int_equal(gw_decoder_feed(d, (const char *)c, clen - 1, &out), GW_OK);
        assert_false(gw_decoder_finished(d)); /* truncated: a cut stream is visible to the caller */
        assert_int_equal(gw_decoder_feed(d, (const char *)c + clen - 1, 1, &out), GW_OK);
        assert_true(gw_decoder_finished(d));
        assert_int_equal(out.len, 3000);
        assert_int_equal(gw_decoder_feed(d, "", 0, &out), GW_OK); /* empty feeds are harmless */
        gw_buf_free(&out);
        gw_decoder_free(d);
        free(c);
    }
    free(plain);
}

static void test_gzip_members(void **state)
{
    (void)state;
    const char *parts[] = {"first member, ", "second member, ", "", "fourth"};
    gw_buf_t cat, want;
    gw_buf_init(&cat, GW_BUF_UNLIMITED);
    gw_buf_init(&want, GW_BUF_UNLIMITED);
    for (size_t i = 0; i < GW_ARRAY_SIZE(parts); i++) {
        size_t clen;
        unsigned char *c = compress_with(F_GZIP, parts[i], strlen(parts[i]), 9, &clen);
        gw_buf_append(&cat, c, clen);
        gw_buf_append(&want, parts[i], strlen(parts[i]));
        free(c);
    }
    for (size_t chunk = 1; chunk <= cat.len; chunk++) {
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        bool fin = false;
        assert_int_equal(decode(GW_ENCODING_GZIP, (unsigned char *)cat.data, cat.len, chunk, 1000, &out, &fin), GW_OK);
        assert_true(fin);
        assert_true(gw_str_eq(gw_buf_str(&out), gw_buf_str(&want)));
        gw_buf_free(&out);
    }
    gw_buf_free(&cat);
    gw_buf_free(&want);
}

/* Bombs: a few KB that expand to many MB stop at the cap, in any chunking, never past it. */
static void test_output_cap(void **state)
{
    (void)state;
    size_t big = 64u << 20; /* 64 MiB of zeros */
    char *zeros = calloc(1, big);
    for (fmt_t f = F_GZIP; f <= F_BR; f++) {
        size_t clen;
        unsigned char *c = compress_with(f, zeros, big, 9, &clen);
        assert_true(clen < big / 500); /* it is a bomb */
        size_t caps[] = {1, 1000, 1 << 20};
        size_t chunks[] = {1, 7, 4096, clen};
        for (size_t ci = 0; ci < GW_ARRAY_SIZE(caps); ci++) {
            for (size_t ki = 0; ki < GW_ARRAY_SIZE(chunks); ki++) {
                if (chunks[ki] == 1 && caps[ci] > 1000)
                    continue; /* byte-wise through a MiB of output is slow and adds nothing */
                gw_buf_t out;
                gw_buf_init(&out, GW_BUF_UNLIMITED);
                gw_decoder_t *d = gw_decoder_new(enc_of(f), caps[ci]);
                int rc = GW_OK;
                size_t off = 0;
                for (; off < clen && rc == GW_OK; off += chunks[ki])
                    rc = gw_decoder_feed(d, (const char *)c + off, GW_MIN(chunks[ki], clen - off), &out);
                assert_int_equal(rc, GW_TOOBIG);
                assert_true(out.len <= caps[ci]);
                assert_false(gw_decoder_finished(d));
                /* the error is sticky */
                assert_int_equal(gw_decoder_feed(d, (const char *)c, 1, &out), GW_TOOBIG);
                gw_decoder_free(d);
                gw_buf_free(&out);
            }
        }
        /* exactly at the cap is fine; one byte under it is not */
        size_t exact = 100000;
        unsigned char *c2 = compress_with(f, zeros, exact, 9, &clen);
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        bool fin;
        assert_int_equal(decode(enc_of(f), c2, clen, 3, exact, &out, &fin), GW_OK);
        assert_true(fin);
        assert_int_equal(out.len, exact);
        gw_buf_reset(&out);
        assert_int_equal(decode(enc_of(f), c2, clen, clen, exact - 1, &out, &fin), GW_TOOBIG);
        assert_true(out.len <= exact - 1);
        gw_buf_free(&out);
        free(c2);
        free(c);
    }
    free(zeros);

    /* the caller's buffer cap is honoured too */
    size_t clen;
    char *plain = sample(10000);
    unsigned char *c = compress_with(F_GZIP, plain, 10000, 6, &clen);
    gw_buf_t small;
    gw_buf_init(&small, 5000);
    assert_int_equal(decode(GW_ENCODING_GZIP, c, clen, clen, 1 << 20, &small, NULL), GW_TOOBIG);
    assert_true(small.len <= 5000);
    gw_buf_free(&small);
    free(c);
    free(plain);
}

static void test_corrupt_input(void **state)
{
    (void)state;
    char *plain = sample(20000);
    size_t rejected = 0, trials = 0;
    for (fmt_t f = F_GZIP; f <= F_BR; f++) {
        size_t clen;
        unsigned char *c = compress_with(f, plain, 20000, 6, &clen);
        gw_buf_t out;
        gw_buf_init(&out, GW_BUF_UNLIMITED);
        bool fin;

        /* garbage from the first byte */
        const char *junk = "this is not compressed at all, not even a little";
        int rc = decode(enc_of(f), (const unsigned char *)junk, strlen(junk), 5, 1 << 20, &out, &fin);
        if (f == F_GZIP)
            assert_int_equal(rc, GW_EINVAL); /* bad magic */
        else /* deflate falls back to raw, brotli has no magic: both must at least not finish */
            assert_true(rc == GW_EINVAL || !fin);
        gw_buf_reset(&out);

        /* trailing garbage after a complete stream (for gzip: not a gzip member) */
        unsigned char *tg = malloc(clen + 8);
        memcpy(tg, c, clen);
        memcpy(tg + clen, "GARBAGE!", 8);
        for (size_t chunk = 1; chunk <= clen + 8; chunk += 97) {
            gw_buf_reset(&out);
            assert_int_equal(decode(enc_of(f), tg, clen + 8, chunk, 1 << 20, &out, &fin), GW_EINVAL);
            assert_true(out.len <= 20000);
        }
        free(tg);

        /* flipped bits: the checksums (gzip CRC32, zlib Adler-32) or brotli's structure catch
         * them; raw deflate has no checksum, so there only "never crashes" is asserted */
        for (size_t pos = 0; pos < clen; pos += 1 + clen / 60) {
            if (f == F_GZIP && pos >= 4 && pos < 10)
                continue; /* MTIME, XFL, OS: informational header bytes nobody checks */
            unsigned char *bad = malloc(clen);
            memcpy(bad, c, clen);
            bad[pos] ^= 0x5a;
            gw_buf_reset(&out);
            rc = decode(enc_of(f), bad, clen, 64, 1 << 20, &out, &fin);
            trials++;
            bool ok_result = rc == GW_OK && fin && out.len == 20000 && memcmp(out.data, plain, 20000) == 0;
            if (f == F_GZIP || f == F_ZLIB) {
                if (ok_result)
                    printf("format %d: flip at %zu went unnoticed\n", f, pos);
                assert_false(ok_result);
            }
            if (rc == GW_EINVAL || !fin)
                rejected++;
            free(bad);
        }
        gw_buf_free(&out);
        free(c);
    }
    printf("corrupted streams: %zu trials, %zu rejected or unfinished\n", trials, rejected);
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding_parse),
        cmocka_unit_test(test_roundtrip_every_chunk_size),
        cmocka_unit_test(test_not_finished_until_end),
        cmocka_unit_test(test_gzip_members),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_corrupt_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
