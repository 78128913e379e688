/* The directories of `aigw` as the reference's CLI lays them out (internal/xdg): each from its
 * environment variable, else the XDG-style default. A leading "~" is the user's home directory.
 *   AIGW_CONFIG_HOME  ~/.config/aigw         (config.yaml: the default file of `aigw run`)
 *   AIGW_DATA_HOME    ~/.local/share/aigw
 *   AIGW_STATE_HOME   ~/.local/state/aigw    (runs/<run id>/: logs and generated files)
 *   AIGW_RUNTIME_DIR  /tmp/aigw-${UID}       (sockets and per-run scratch) */
#ifndef GW_CONFIG_XDG_H
#define GW_CONFIG_XDG_H

#include "core/buf.h"
#include "core/gw.h"

#include <limits.h>
#include <sys/types.h>

typedef struct {
    char config_home[PATH_MAX];
    char data_home[PATH_MAX];
    char state_home[PATH_MAX];
    char runtime_dir[PATH_MAX];
} gw_xdg_dirs_t;

/* Fills out from the environment (getenv_fn NULL: getenv; tests pass their own). A CLI flag
 * overrides a field afterwards with gw_xdg_set. GW_OK, or GW_EINVAL with the reason appended to
 * err (no home directory for "~", a path longer than PATH_MAX). Nothing is created. */
int gw_xdg_dirs_resolve(gw_xdg_dirs_t *out, const char *(*getenv_fn)(const char *name), gw_buf_t *err);

/* Sets one directory (e.g. from --config-home) with the same "~" expansion. */
int gw_xdg_set(char dst[PATH_MAX], const char *value, const char *(*getenv_fn)(const char *name), gw_buf_t *err);

/* "<config_home>/config.yaml" into out (cap bytes). True when that file exists and is a regular
 * file: `aigw run` without a path uses it then, else auto-configuration. */
bool gw_xdg_default_config(const gw_xdg_dirs_t *d, char *out, size_t cap);

/* mkdir -p: every missing directory of path is created with mode (0700 for the runtime and
 * state dirs: they hold sockets and logs). GW_OK when it exists as a directory afterwards. */
int gw_xdg_mkdirs(const char *path, mode_t mode, gw_buf_t *err);

#endif
