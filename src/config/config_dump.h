/* /config_dump: the active configuration snapshot as JSON, secrets redacted (API keys,
 * credentials and TLS keys are shown as "[redacted]"; their presence is visible, their value
 * never). */
#ifndef GW_CONFIG_CONFIG_DUMP_H
#define GW_CONFIG_CONFIG_DUMP_H

#include "config/config.h"

int gw_config_dump_json(const gw_config_t *c, gw_buf_t *out);

#endif
