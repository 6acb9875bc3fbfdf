/* common/log.h: leveled self-logging for the daemons (stderr).
 *
 * Only binaries log: storage/, proto/ and common/ return errors and let the
 * caller log once with context. Lines are logfmt by default:
 *   ts=2026-11-28T12:00:00.123Z level=warn comp=aggregator msg="..."
 * Caveats:
 *  - cairn_log_setup() is called once, before threads start.
 *  - Messages should say what failed, on what, why, and what to do next.
 */
#ifndef CAIRN_COMMON_LOG_H
#define CAIRN_COMMON_LOG_H

#include <stdbool.h>

typedef enum cairn_log_level {
  CAIRN_LOG_DEBUG = 0,
  CAIRN_LOG_INFO = 1,
  CAIRN_LOG_WARN = 2,
  CAIRN_LOG_ERROR = 3,
} cairn_log_level;

typedef enum cairn_log_format {
  CAIRN_LOG_LOGFMT = 0,
  CAIRN_LOG_JSON = 1,
} cairn_log_format;

/* Set minimum level and format. Not thread-safe: call before threads start. */
void cairn_log_setup(cairn_log_level min, cairn_log_format fmt);

/* Parse "debug", "info", "warn", "error"; returns false on anything else. */
bool cairn_log_level_parse(const char *s, cairn_log_level *out);

/* Log one line. comp is a short component name ("collector", "tls").
 * Thread-safe (one write(2) per line). */
void cairn_log(cairn_log_level lvl, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cairn_log_debug(comp, ...) cairn_log(CAIRN_LOG_DEBUG, comp, __VA_ARGS__)
#define cairn_log_info(comp, ...) cairn_log(CAIRN_LOG_INFO, comp, __VA_ARGS__)
#define cairn_log_warn(comp, ...) cairn_log(CAIRN_LOG_WARN, comp, __VA_ARGS__)
#define cairn_log_error(comp, ...) cairn_log(CAIRN_LOG_ERROR, comp, __VA_ARGS__)

#endif
