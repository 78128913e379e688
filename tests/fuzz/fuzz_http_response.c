/* libFuzzer harness for the HTTP/1.1 response parser (net/http_response.c): arbitrary bytes, fed
 * whole and in pieces sized from the input, then an end of stream, must never crash, leak, exceed
 * the head cap, deliver more body than was fed, or disagree with itself across splits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_response.h"

#define MAX_HEAD 2048

typedef struct {
    int heads;
    size_t body;
    uint64_t sum; /* order-sensitive digest of the body bytes */
} seen_t;

static int on_head(void *ud, int status, const gw_http_header_t *h, size_t n)
{
    seen_t *s = ud;
    s->heads++;
    if (status < 200 || status > 999 || n > GW_HTTP_MAX_HEADERS)
        abort();
    for (size_t i = 0; i < n; i++)
        if (h[i].name.len == 0 || h[i].name.len + h[i].value.len > MAX_HEAD)
            abort();
    return GW_OK;
}

static int on_body(void *ud, const char *p, size_t n)
{
    seen_t *s = ud;
    if (n == 0 || s->heads != 1)
        abort();
    for (size_t i = 0; i < n; i++)
        s->sum = s->sum * 31 + (unsigned char)p[i];
    s->body += n;
    return GW_OK;
}

static const gw_http_resp_cbs_t cbs = {on_head, on_body};

/* Returns the final status (GW_DONE, GW_OK when still open at EOF is impossible: eof decides). */
static int run(const uint8_t *data, size_t size, size_t step, bool no_body, seen_t *s)
{
    gw_http_resp_t p;
    gw_http_resp_init(&p, MAX_HEAD);
    gw_http_resp_start(&p, &cbs, s);
    if (no_body)
        gw_http_resp_expect_no_body(&p);
    size_t off = 0;
    int rc = GW_OK;
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used = 0;
        rc = gw_http_resp_feed(&p, (const char *)data + off, n, &used);
        if (used > n)
            abort();
        off += used;
        if (rc != GW_OK)
            break;
    }
    if (rc == GW_OK)
        rc = gw_http_resp_eof(&p);
    if (s->body > size || s->heads > 1)
        abort();
    if (rc == GW_DONE && s->heads != 1)
        abort();
    gw_http_resp_free(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool no_body = size > 0 && (data[0] & 0x80);
    seen_t whole = {0}, split = {0};
    int a = run(data, size, size ? size : 1, no_body, &whole);
    int b = run(data, size, size > 0 ? (size_t)(data[size - 1] % 13) + 1 : 1, no_body, &split);
    /* A complete response parses the same however it is split. (Failures may differ in kind:
     * the head cap is checked per piece, a syntax error where it is met.) */
    if ((a == GW_DONE) != (b == GW_DONE))
        abort();
    if (a == GW_DONE && (whole.body != split.body || whole.sum != split.sum))
        abort();
    return 0;
}
