/* Leveled logging to stderr. The macros test the level before formatting anything (redis's
 * serverLog), so a disabled debug line costs one comparison. Never pass a secret to these. */
#ifndef GW_CORE_LOG_H
#define GW_CORE_LOG_H

enum { GW_LOG_DEBUG = 0, GW_LOG_INFO = 1, GW_LOG_WARN = 2, GW_LOG_ERROR = 3 };

extern int gw_log_level;

void gw_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define GW_LOG(level, ...)                   \
    do {                                     \
        if ((level) >= gw_log_level)         \
            gw_log_write((level), __VA_ARGS__); \
    } while (0)
#define gw_log_debug(...) GW_LOG(GW_LOG_DEBUG, __VA_ARGS__)
#define gw_log_info(...) GW_LOG(GW_LOG_INFO, __VA_ARGS__)
#define gw_log_warn(...) GW_LOG(GW_LOG_WARN, __VA_ARGS__)
#define gw_log_error(...) GW_LOG(GW_LOG_ERROR, __VA_ARGS__)

#endif
