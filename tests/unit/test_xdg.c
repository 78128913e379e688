/* Unit tests for aigw's directories: the reference's defaults, environment overrides, "~"
 * expansion, the default config file and mkdir -p. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/xdg.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const *env_table;

static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; env_table[i] != NULL; i += 2)
        if (strcmp(env_table[i], name) == 0)
            return env_table[i + 1];
    return NULL;
}

static void test_defaults(void **state)
{
    (void)state;
    static const char *const env[] = {"HOME", "/home/ada/", NULL};
    env_table = env;
    gw_xdg_dirs_t d;
    assert_int_equal(gw_xdg_dirs_resolve(&d, fake_getenv, NULL), GW_OK);
    assert_string_equal(d.config_home, "/home/ada/.config/aigw");
    assert_string_equal(d.data_home, "/home/ada/.local/share/aigw");
    assert_string_equal(d.state_home, "/home/ada/.local/state/aigw");
    char want[64];
    snprintf(want, sizeof(want), "/tmp/aigw-%lu", (unsigned long)getuid());
    assert_string_equal(d.runtime_dir, want);
}

static void test_overrides_and_tilde(void **state)
{
    (void)state;
    static const char *const env[] = {"HOME",          "/h",           "AIGW_CONFIG_HOME", "~/cfg",
                                      "AIGW_DATA_HOME", "/srv/data",   "AIGW_STATE_HOME",  "",
                                      "AIGW_RUNTIME_DIR", "/run/aigw", NULL};
    env_table = env;
    gw_xdg_dirs_t d;
    assert_int_equal(gw_xdg_dirs_resolve(&d, fake_getenv, NULL), GW_OK);
    assert_string_equal(d.config_home, "/h/cfg");
    assert_string_equal(d.data_home, "/srv/data");
    assert_string_equal(d.state_home, "/h/.local/state/aigw"); /* empty counts as unset */
    assert_string_equal(d.runtime_dir, "/run/aigw");
    assert_int_equal(gw_xdg_set(d.config_home, "~", fake_getenv, NULL), GW_OK);
    assert_string_equal(d.config_home, "/h");
    assert_int_equal(gw_xdg_set(d.config_home, "~user/x", fake_getenv, NULL), GW_OK); /* not ours to expand */
    assert_string_equal(d.config_home, "~user/x");
}

static void test_no_home(void **state)
{
    (void)state;
    static const char *const env[] = {NULL};
    env_table = env;
    gw_xdg_dirs_t d;
    gw_buf_t err;
    gw_buf_init(&err, 4096);
    assert_int_equal(gw_xdg_dirs_resolve(&d, fake_getenv, &err), GW_EINVAL);
    assert_non_null(strstr(gw_buf_cstr(&err), "~/.config/aigw: no home directory for ~ (HOME is not set)"));
    gw_buf_reset(&err);
    char big[PATH_MAX + 10];
    memset(big, 'a', sizeof(big) - 1);
    big[0] = '/';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(gw_xdg_set(d.data_home, big, fake_getenv, &err), GW_EINVAL);
    assert_non_null(strstr(gw_buf_cstr(&err), "path longer than"));
    gw_buf_free(&err);
}

static void test_default_config_and_mkdirs(void **state)
{
    (void)state;
    char base[] = "/tmp/aigw-test-xdg-XXXXXX";
    assert_non_null(mkdtemp(base));
    gw_xdg_dirs_t d;
    snprintf(d.config_home, sizeof(d.config_home), "%s/a/b/c", base);
    char path[PATH_MAX];
    assert_false(gw_xdg_default_config(&d, path, sizeof(path)));
    gw_buf_t err;
    gw_buf_init(&err, 4096);
    assert_int_equal(gw_xdg_mkdirs(d.config_home, 0700, &err), GW_OK);
    assert_int_equal(gw_xdg_mkdirs(d.config_home, 0700, &err), GW_OK); /* again: fine */
    struct stat st;
    assert_int_equal(stat(d.config_home, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_true(gw_xdg_default_config(&d, path, sizeof(path)));
    char want[PATH_MAX + 16];
    snprintf(want, sizeof(want), "%s/config.yaml", d.config_home);
    assert_string_equal(path, want);
    /* A file in the way is an error. */
    assert_int_equal(gw_xdg_mkdirs(path, 0700, &err), GW_ERROR);
    assert_non_null(strstr(gw_buf_cstr(&err), "not a directory"));
    unlink(path);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/a/b/c", base);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/a/b", base);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/a", base);
    rmdir(p);
    rmdir(base);
    gw_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_overrides_and_tilde),
        cmocka_unit_test(test_no_home),
        cmocka_unit_test(test_default_config_and_mkdirs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
