/* Unit tests for mcp/inflight: keys, add/find/remove, refusals (duplicate, long name, full table),
 * colliding keys and the wrap at the end of the table surviving removals in any order, a long
 * random run checked against a plain list, and several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/inflight.h"

static gw_mcp_inflight_key_t key_of(const char *route, const char *sid, const char *id)
{
    gw_mcp_inflight_key_t k;
    gw_mcp_inflight_key(gw_str_c(route), gw_str_c(sid), gw_str_c(id), &k);
    return k;
}

/* A key whose home slot is chosen (the table takes it from the first 8 bytes). */
static gw_mcp_inflight_key_t key_at(size_t home, uint32_t tag)
{
    gw_mcp_inflight_key_t k;
    memset(&k, 0, sizeof(k));
    uint64_t h = home;
    memcpy(k.b, &h, sizeof(h));
    memcpy(k.b + 8, &tag, sizeof(tag));
    return k;
}

static void test_keys(void **state)
{
    (void)state;
    gw_mcp_inflight_key_t a = key_of("r", "sess", "1"), b = key_of("r", "sess", "1");
    assert_memory_equal(a.b, b.b, sizeof(a.b));
    /* each part counts, and parts do not run into each other */
    gw_mcp_inflight_key_t others[] = {key_of("r", "sess", "2"), key_of("r", "sess2", "1"), key_of("r2", "sess", "1"),
                                      key_of("rs", "ess", "1"), key_of("r", "ses", "s1"), key_of("r", "sess", "\"1\"")};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        assert_memory_not_equal(a.b, others[i].b, sizeof(a.b));
}

static void test_add_find_remove(void **state)
{
    (void)state;
    gw_mcp_inflight_key_t k = key_of("default/mcp", "sealed-session", "7");
    char name[GW_MCP_INFLIGHT_NAME_MAX + 1];
    assert_false(gw_mcp_inflight_find(&k, name));
    assert_true(gw_mcp_inflight_add(&k, GW_STR("everything")));
    assert_int_equal(gw_mcp_inflight_count(), 1);
    assert_true(gw_mcp_inflight_find(&k, name));
    assert_string_equal(name, "everything");
    /* the same request id in flight twice in one session: the first one keeps the entry */
    assert_false(gw_mcp_inflight_add(&k, GW_STR("station")));
    assert_true(gw_mcp_inflight_find(&k, name));
    assert_string_equal(name, "everything");
    gw_mcp_inflight_remove(&k);
    assert_false(gw_mcp_inflight_find(&k, name));
    gw_mcp_inflight_remove(&k); /* twice is harmless */
    assert_int_equal(gw_mcp_inflight_count(), 0);
}

static void test_names(void **state)
{
    (void)state;
    gw_mcp_inflight_key_t k = key_of("r", "s", "1");
    char name[GW_MCP_INFLIGHT_NAME_MAX + 1];
    char longest[GW_MCP_INFLIGHT_NAME_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    assert_false(gw_mcp_inflight_add(&k, gw_str(longest, GW_MCP_INFLIGHT_NAME_MAX + 1)));
    assert_false(gw_mcp_inflight_add(&k, GW_STR("")));
    assert_true(gw_mcp_inflight_add(&k, gw_str(longest, GW_MCP_INFLIGHT_NAME_MAX)));
    assert_true(gw_mcp_inflight_find(&k, name));
    assert_int_equal(strlen(name), GW_MCP_INFLIGHT_NAME_MAX);
    gw_mcp_inflight_remove(&k);
    assert_int_equal(gw_mcp_inflight_count(), 0);
}

static void test_full(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < GW_MCP_INFLIGHT_MAX; i++) {
        gw_mcp_inflight_key_t k = key_at(i * 7, i);
        assert_true(gw_mcp_inflight_add(&k, GW_STR("b")));
    }
    gw_mcp_inflight_key_t extra = key_at(3, 999999);
    assert_false(gw_mcp_inflight_add(&extra, GW_STR("b")));
    char name[GW_MCP_INFLIGHT_NAME_MAX + 1];
    for (uint32_t i = 0; i < GW_MCP_INFLIGHT_MAX; i++) {
        gw_mcp_inflight_key_t k = key_at(i * 7, i);
        assert_true(gw_mcp_inflight_find(&k, name));
        gw_mcp_inflight_remove(&k);
    }
    assert_int_equal(gw_mcp_inflight_count(), 0);
    assert_true(gw_mcp_inflight_add(&extra, GW_STR("b")));
    gw_mcp_inflight_remove(&extra);
}

/* Runs of keys sharing a home, one of them across the end of the table, removed in every order
 * of a small permutation set: whatever is left is still found with its own name. */
static void test_collisions_and_wrap(void **state)
{
    (void)state;
    const size_t homes[] = {10, 10, 11, 10, GW_MCP_INFLIGHT_SLOTS - 2, GW_MCP_INFLIGHT_SLOTS - 1,
                            GW_MCP_INFLIGHT_SLOTS - 2, 0, 1, 0};
    enum { N = sizeof(homes) / sizeof(homes[0]) };
    char name[GW_MCP_INFLIGHT_NAME_MAX + 1];
    for (unsigned seed = 1; seed <= 200; seed++) {
        gw_mcp_inflight_key_t keys[N];
        bool live[N];
        for (size_t i = 0; i < N; i++) {
            keys[i] = key_at(homes[i], (uint32_t)i);
            char nm[8];
            snprintf(nm, sizeof(nm), "b%zu", i);
            assert_true(gw_mcp_inflight_add(&keys[i], gw_str_c(nm)));
            live[i] = true;
        }
        srand(seed);
        for (size_t n = 0; n < N; n++) {
            size_t pick;
            do
                pick = (size_t)rand() % N;
            while (!live[pick]);
            gw_mcp_inflight_remove(&keys[pick]);
            live[pick] = false;
            for (size_t i = 0; i < N; i++) {
                assert_int_equal(gw_mcp_inflight_find(&keys[i], name), live[i]);
                if (live[i]) {
                    char nm[8];
                    snprintf(nm, sizeof(nm), "b%zu", i);
                    assert_string_equal(name, nm);
                }
            }
        }
        assert_int_equal(gw_mcp_inflight_count(), 0);
    }
}

static void test_random_against_list(void **state)
{
    (void)state;
    enum { KEYS = 3000 };
    static bool live[KEYS];
    memset(live, 0, sizeof(live));
    size_t n_live = 0;
    char name[GW_MCP_INFLIGHT_NAME_MAX + 1];
    srand(42);
    for (int step = 0; step < 200000; step++) {
        uint32_t i = (uint32_t)rand() % KEYS;
        /* homes crowd into 64 slots so runs get long and wrap */
        gw_mcp_inflight_key_t k = key_at((GW_MCP_INFLIGHT_SLOTS - 32 + i % 64) % GW_MCP_INFLIGHT_SLOTS, i);
        if (live[i]) {
            assert_true(gw_mcp_inflight_find(&k, name));
            gw_mcp_inflight_remove(&k);
            live[i] = false;
            n_live--;
        } else {
            bool added = gw_mcp_inflight_add(&k, GW_STR("x"));
            assert_int_equal(added, n_live < GW_MCP_INFLIGHT_MAX);
            if (added) {
                live[i] = true;
                n_live++;
            }
        }
        assert_int_equal(gw_mcp_inflight_count(), n_live);
    }
    for (uint32_t i = 0; i < KEYS; i++) {
        gw_mcp_inflight_key_t k = key_at((GW_MCP_INFLIGHT_SLOTS - 32 + i % 64) % GW_MCP_INFLIGHT_SLOTS, i);
        assert_int_equal(gw_mcp_inflight_find(&k, name), live[i]);
        gw_mcp_inflight_remove(&k);
    }
    assert_int_equal(gw_mcp_inflight_count(), 0);
}

static void *worker(void *arg)
{
    uintptr_t t = (uintptr_t)arg;
    char sid[32], id[32], name[GW_MCP_INFLIGHT_NAME_MAX + 1], want[16];
    snprintf(sid, sizeof(sid), "session-%lu", (unsigned long)t);
    snprintf(want, sizeof(want), "w%lu", (unsigned long)t);
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "%d", i % 50);
        gw_mcp_inflight_key_t k = key_of("r", sid, id);
        if (!gw_mcp_inflight_add(&k, gw_str_c(want)))
            return (void *)1;
        if (!gw_mcp_inflight_find(&k, name) || strcmp(name, want) != 0)
            return (void *)1;
        gw_mcp_inflight_remove(&k);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < 4; i++) {
        void *rv = (void *)1;
        pthread_join(th[i], &rv);
        assert_null(rv);
    }
    assert_int_equal(gw_mcp_inflight_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_add_find_remove),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_collisions_and_wrap),
        cmocka_unit_test(test_random_against_list),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
