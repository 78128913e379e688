/* libFuzzer harness for the HTTP/1.1 request parser: arbitrary bytes, fed whole and then split
 * at a position taken from the input, must never crash, leak or exceed the limits. */
#include <stdint.h>
#include <stdlib.h>

#include "net/http_request_parser.h"

static void run(const uint8_t *data, size_t size, size_t step)
{
    gw_http_request_parser_t p;
    gw_http_request_parser_init(&p, 4096, 8192);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        size_t used = 0;
        int rc = gw_http_request_parser_feed(&p, (const char *)data + off, n, &used);
        if (rc == GW_ERROR)
            break;
        if (rc == GW_OK) {
            gw_http_req_t *r = gw_http_request_parser_take(&p);
            if (r->body.len > 8192 || r->n_headers > GW_HTTP_MAX_HEADERS)
                abort();
            gw_http_req_free(r);
        } else if (used == 0 && n == 0) {
            break;
        }
        off += used;
        if (rc == GW_AGAIN && used < n)
            break;
    }
    gw_http_request_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, size ? size : 1);
    run(data, size, size > 0 ? (size_t)(data[0] % 17) + 1 : 1);
    return 0;
}
