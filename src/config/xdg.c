/* aigw's directories (see xdg.h): environment first, then the reference's defaults, "~" expanded
 * from HOME or the password database. */
#include "config/xdg.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *env_get(const char *(*getenv_fn)(const char *), const char *name)
{
    const char *v = getenv_fn != NULL ? getenv_fn(name) : getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

static const char *home_dir(const char *(*getenv_fn)(const char *))
{
    const char *h = env_get(getenv_fn, "HOME");
    if (h != NULL)
        return h;
    if (getenv_fn != NULL)
        return NULL; /* a test's environment: no fallback to the real user */
    struct passwd *pw = getpwuid(getuid());
    return pw != NULL && pw->pw_dir != NULL && *pw->pw_dir != '\0' ? pw->pw_dir : NULL;
}

int gw_xdg_set(char dst[PATH_MAX], const char *value, const char *(*getenv_fn)(const char *name), gw_buf_t *err)
{
    int n;
    if (value[0] == '~' && (value[1] == '/' || value[1] == '\0')) {
        const char *home = home_dir(getenv_fn);
        if (home == NULL) {
            if (err != NULL)
                gw_buf_appendf(err, "%s: no home directory for ~ (HOME is not set)\n", value);
            return GW_EINVAL;
        }
        size_t hl = strlen(home);
        while (hl > 1 && home[hl - 1] == '/')
            hl--;
        n = snprintf(dst, PATH_MAX, "%.*s%s", (int)hl, home, value + 1);
    } else {
        n = snprintf(dst, PATH_MAX, "%s", value);
    }
    if (n < 0 || n >= PATH_MAX) {
        dst[0] = '\0';
        if (err != NULL)
            gw_buf_appendf(err, "%.64s...: path longer than %d bytes\n", value, PATH_MAX - 1);
        return GW_EINVAL;
    }
    return GW_OK;
}

int gw_xdg_dirs_resolve(gw_xdg_dirs_t *out, const char *(*getenv_fn)(const char *name), gw_buf_t *err)
{
    char runtime[64];
    snprintf(runtime, sizeof(runtime), "/tmp/aigw-%lu", (unsigned long)getuid());
    const struct {
        const char *var, *def;
        char *dst;
    } dirs[] = {
        {"AIGW_CONFIG_HOME", "~/.config/aigw", out->config_home},
        {"AIGW_DATA_HOME", "~/.local/share/aigw", out->data_home},
        {"AIGW_STATE_HOME", "~/.local/state/aigw", out->state_home},
        {"AIGW_RUNTIME_DIR", runtime, out->runtime_dir},
    };
    int rc = GW_OK;
    for (size_t i = 0; i < GW_ARRAY_SIZE(dirs); i++) {
        const char *v = env_get(getenv_fn, dirs[i].var);
        if (gw_xdg_set(dirs[i].dst, v != NULL ? v : dirs[i].def, getenv_fn, err) != GW_OK)
            rc = GW_EINVAL;
    }
    return rc;
}

bool gw_xdg_default_config(const gw_xdg_dirs_t *d, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/config.yaml", d->config_home);
    if (n < 0 || (size_t)n >= cap)
        return false;
    struct stat st;
    return stat(out, &st) == 0 && S_ISREG(st.st_mode);
}

int gw_xdg_mkdirs(const char *path, mode_t mode, gw_buf_t *err)
{
    char p[PATH_MAX];
    int n = snprintf(p, sizeof(p), "%s", path);
    if (n <= 0 || n >= (int)sizeof(p)) {
        if (err != NULL)
            gw_buf_appendf(err, "%s: not a usable path\n", path);
        return GW_EINVAL;
    }
    /* Each prefix in turn; an existing one is fine as long as it is a directory. */
    for (char *s = p + 1;; s++) {
        bool last = *s == '\0';
        if (*s != '/' && !last)
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            if (err != NULL)
                gw_buf_appendf(err, "%s: cannot create: %s\n", p, strerror(errno));
            return GW_ERROR;
        }
        *s = saved;
        if (last)
            break;
    }
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (err != NULL)
            gw_buf_appendf(err, "%s: not a directory\n", p);
        return GW_ERROR;
    }
    return GW_OK;
}
