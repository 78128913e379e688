/* Passive health table (see health.h): a small open-addressing hash of backend names, bounded
 * (backend names come from the configuration). */
#include "gateway/health.h"

#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

#define HEALTH_SLOTS 1024 /* power of two */

typedef struct {
    char *name;
    uint64_t hash;
    uint32_t consecutive_failures;
    uint32_t ejections;
    uint64_t ejected_until_ms;
    uint64_t touched_ms;
} entry_t;

struct gw_health_s {
    entry_t slots[HEALTH_SLOTS];
    size_t used;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

gw_health_t *gw_health_new(void)
{
    return gw_calloc(1, sizeof(gw_health_t));
}

void gw_health_free(gw_health_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < HEALTH_SLOTS; i++)
        free(h->slots[i].name);
    free(h);
}

static entry_t *find(gw_health_t *h, const char *name, bool create, uint64_t now_ms)
{
    if (!create && h->used == 0)
        return NULL; /* the usual case: no backend has failed yet, so no hashing per request */
    uint64_t hv = hash_name(name);
    for (size_t i = 0; i < HEALTH_SLOTS; i++) {
        entry_t *e = &h->slots[(hv + i) & (HEALTH_SLOTS - 1)];
        if (e->name == NULL) {
            if (!create)
                return NULL;
            if (h->used >= HEALTH_SLOTS * 3 / 4) {
                /* Full (more backends than any sane configuration): forget all state; a
                 * forgotten backend is healthy, which is the safe side. */
                for (size_t k = 0; k < HEALTH_SLOTS; k++) {
                    free(h->slots[k].name);
                    memset(&h->slots[k], 0, sizeof(h->slots[k]));
                }
                h->used = 0;
                return find(h, name, true, now_ms);
            }
            e->name = gw_strdup(name);
            e->hash = hv;
            h->used++;
            return e;
        }
        if (e->hash == hv && strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

bool gw_health_available(gw_health_t *h, const char *backend, uint64_t now_ms)
{
    entry_t *e = find(h, backend, false, now_ms);
    return e == NULL || e->ejected_until_ms <= now_ms;
}

void gw_health_report(gw_health_t *h, const char *backend, const gw_passive_health_t *policy, bool ok,
                      uint64_t now_ms)
{
    entry_t *e = find(h, backend, !ok, now_ms);
    if (e == NULL)
        return; /* healthy and unknown: nothing to remember */
    e->touched_ms = now_ms;
    if (ok) {
        e->consecutive_failures = 0;
        e->ejections = 0;
        e->ejected_until_ms = 0;
        return;
    }
    uint32_t threshold = policy && policy->consecutive_failures ? policy->consecutive_failures : 1;
    uint64_t base = policy && policy->base_ejection_ms ? policy->base_ejection_ms : 1000;
    uint64_t max = policy && policy->max_ejection_ms ? policy->max_ejection_ms : 30000;
    if (++e->consecutive_failures < threshold)
        return;
    e->consecutive_failures = 0;
    uint64_t t = base << (e->ejections < 20 ? e->ejections : 20);
    if (t > max)
        t = max;
    e->ejections++;
    e->ejected_until_ms = now_ms + t;
}
