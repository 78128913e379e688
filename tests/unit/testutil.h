/* Shared helpers for the unit tests: locating the recorded provider traffic (read-only, outside the
 * repository), reading files and listing them recursively. Static inline so each test binary
 * takes only what it uses. Include after <cmocka.h>. */
#ifndef AIGW_TESTS_TESTUTIL_H
#define AIGW_TESTS_TESTUTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* snprintf that fails the test run loudly instead of truncating a path. */
__attribute__((format(printf, 3, 4))) static inline void tu_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "testutil: path too long\n");
        abort();
    }
}

static inline bool tu_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The repository root: the first directory holding src/core/gw.h, from the working directory
 * upwards, else derived from the test's own source path (__FILE__, when absolute). */
static inline bool tu_repo_root_from(const char *src_file, char *out, size_t cap)
{
    char dir[PATH_MAX], probe[PATH_MAX];
    if (getcwd(dir, sizeof(dir)) != NULL) {
        for (;;) {
            tu_fmt(probe, sizeof(probe), "%s/src/core/gw.h", dir);
            if (access(probe, R_OK) == 0) {
                tu_fmt(out, cap, "%s", dir);
                return true;
            }
            char *slash = strrchr(dir, '/');
            if (slash == NULL || slash == dir)
                break;
            *slash = '\0';
        }
    }
    const char *marker = src_file ? strstr(src_file, "/tests/unit/") : NULL;
    if (src_file && src_file[0] == '/' && marker) {
        tu_fmt(out, cap, "%.*s", (int)(marker - src_file), src_file);
        return true;
    }
    return false;
}

/* $AIGW_TESTDATA, or <repo>/../shared/testdata; NULL when absent. The returned string is static. */
static inline const char *tu_testdata_from(const char *src_file)
{
    static char path[PATH_MAX];
    const char *env = getenv("AIGW_TESTDATA");
    if (env && *env) {
        tu_fmt(path, sizeof(path), "%s", env);
        return tu_is_dir(path) ? path : NULL;
    }
    char root[PATH_MAX - 32];
    if (!tu_repo_root_from(src_file, root, sizeof(root)))
        return NULL;
    tu_fmt(path, sizeof(path), "%s/../shared/testdata", root);
    return tu_is_dir(path) ? path : NULL;
}
#define tu_testdata() tu_testdata_from(__FILE__)

/* In a cmocka test: the testdata directory, or a skip with the agreed message. */
#define TU_REQUIRE_TESTDATA(var)                                      \
    const char *var = tu_testdata();                                  \
    do {                                                              \
        if (var == NULL) {                                            \
            printf("skipped: ../shared/testdata not found\n");        \
            skip();                                                   \
        }                                                             \
    } while (0)

/* Reads a whole file; the caller frees. The buffer is NUL-terminated (not counted in *len). */
static inline char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        if (got == 0)
            break;
        n += got;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

typedef struct {
    char **items;
    size_t n, cap;
} tu_list_t;

static inline void tu_list_push(tu_list_t *l, const char *s)
{
    if (l->n == l->cap)
        l->items = realloc(l->items, (l->cap = l->cap ? l->cap * 2 : 64) * sizeof(char *));
    l->items[l->n++] = strdup(s);
}

static inline void tu_list_free(tu_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

static inline int tu_cmp_str_(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline void tu_find_walk_(const char *dir, const char *suffix, tu_list_t *out)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        tu_fmt(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (tu_is_dir(path)) {
            tu_find_walk_(path, suffix, out);
            continue;
        }
        size_t nl = strlen(e->d_name), sl = strlen(suffix);
        if (nl >= sl && strcmp(e->d_name + nl - sl, suffix) == 0)
            tu_list_push(out, path);
    }
    closedir(d);
}

/* Appends every file under dir whose name ends with suffix, sorted by path. */
static inline void tu_find_files(const char *dir, const char *suffix, tu_list_t *out)
{
    size_t first = out->n;
    tu_find_walk_(dir, suffix, out);
    qsort(out->items + first, out->n - first, sizeof(char *), tu_cmp_str_);
}

#endif
