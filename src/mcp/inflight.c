/* The in-flight table (inflight.h): open addressing with linear probing over digests, deletion by
 * backward shift so no tombstones pile up. One mutex: workers hold it for a probe or two, never
 * across I/O, and only routed requests and cancels take it. */
#include "mcp/inflight.h"

#include "core/log.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    gw_mcp_inflight_key_t key;
    char name[GW_MCP_INFLIGHT_NAME_MAX + 1];
    bool used;
} slot_t;

static slot_t slots[GW_MCP_INFLIGHT_SLOTS];
static size_t n_used;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

#define MASK (GW_MCP_INFLIGHT_SLOTS - 1)

void gw_mcp_inflight_key(gw_str_t route, gw_str_t session_id, gw_str_t request_id, gw_mcp_inflight_key_t *out)
{
    /* Each part with its length first, so no two different triples hash the same bytes. */
    const gw_str_t parts[] = {route, session_id, request_id};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto fail;
    for (size_t i = 0; i < GW_ARRAY_SIZE(parts); i++) {
        uint64_t n = parts[i].len;
        if (EVP_DigestUpdate(ctx, &n, sizeof(n)) != 1 || (n && EVP_DigestUpdate(ctx, parts[i].base, n) != 1))
            goto fail;
    }
    if (EVP_DigestFinal_ex(ctx, out->b, &len) != 1 || len != sizeof(out->b))
        goto fail;
    EVP_MD_CTX_free(ctx);
    return;
fail:
    /* OpenSSL cannot hash: an allocation failure, which aborts everywhere else too */
    gw_log_error("mcp: SHA-256 failed");
    abort();
}

static size_t home(const gw_mcp_inflight_key_t *k)
{
    uint64_t h;
    memcpy(&h, k->b, sizeof(h));
    return (size_t)h & MASK;
}

/* The slot holding k, or the empty slot where the probe for it ended. Under mu. */
static size_t probe(const gw_mcp_inflight_key_t *k)
{
    size_t i = home(k);
    while (slots[i].used && memcmp(slots[i].key.b, k->b, sizeof(k->b)) != 0)
        i = (i + 1) & MASK;
    return i;
}

bool gw_mcp_inflight_add(const gw_mcp_inflight_key_t *k, gw_str_t backend)
{
    if (backend.len == 0 || backend.len > GW_MCP_INFLIGHT_NAME_MAX)
        return false;
    bool ok = false;
    pthread_mutex_lock(&mu);
    if (n_used < GW_MCP_INFLIGHT_MAX) {
        size_t i = probe(k);
        if (!slots[i].used) {
            slots[i].key = *k;
            memcpy(slots[i].name, backend.base, backend.len);
            slots[i].name[backend.len] = '\0';
            slots[i].used = true;
            n_used++;
            ok = true;
        }
    }
    pthread_mutex_unlock(&mu);
    return ok;
}

void gw_mcp_inflight_remove(const gw_mcp_inflight_key_t *k)
{
    pthread_mutex_lock(&mu);
    size_t i = probe(k);
    if (slots[i].used) {
        slots[i].used = false;
        n_used--;
        /* Backward shift: an entry further along the run moves into the hole when its home is
         * not between the hole and itself, so every probe still finds it. */
        size_t j = i;
        for (;;) {
            j = (j + 1) & MASK;
            if (!slots[j].used)
                break;
            size_t h = home(&slots[j].key);
            bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
            if (stays)
                continue;
            slots[i] = slots[j];
            slots[j].used = false;
            i = j;
        }
    }
    pthread_mutex_unlock(&mu);
}

bool gw_mcp_inflight_find(const gw_mcp_inflight_key_t *k, char name[GW_MCP_INFLIGHT_NAME_MAX + 1])
{
    pthread_mutex_lock(&mu);
    size_t i = probe(k);
    bool found = slots[i].used;
    if (found)
        memcpy(name, slots[i].name, sizeof(slots[i].name));
    pthread_mutex_unlock(&mu);
    return found;
}

size_t gw_mcp_inflight_count(void)
{
    pthread_mutex_lock(&mu);
    size_t n = n_used;
    pthread_mutex_unlock(&mu);
    return n;
}
