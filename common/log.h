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
#include <stdint.h>

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

/* ---- rate limiting of repeated messages ----
 *
 * An error that repeats in a loop (a collector that cannot reach its
 * aggregator, a file that keeps failing, a client that keeps sending bad
 * frames) must not flood the log. A cairn_log_limiter lets at most one line
 * per message key through per interval; the next line let through for that
 * key says how many were dropped: "... (suppressed 41 similar messages in the
 * last 12s)" (the time since the previous line for the key).
 *
 * Caveats:
 *  - A limiter is plain caller-owned state, not thread-safe: keep one per
 *    thread (e.g. one in the loop's context struct). No globals are involved.
 *    A zero-filled limiter (calloc) is valid and uses the default interval.
 *  - The key names the kind of event and, usually, its subject ("connect
 *    10.0.0.5:7400", "open /var/log/x.log"): messages with different keys are
 *    limited independently. Keys are compared by a 64-bit hash.
 *  - A limiter tracks CAIRN_LOG_LIMIT_SLOTS keys; beyond that the key seen
 *    least recently is forgotten (its suppressed count is lost, never a line
 *    that would have been let through).
 *  - Suppressed counts are reported with the next line let through for the
 *    key; if the error stops, the count is never printed.
 */

#define CAIRN_LOG_LIMIT_SLOTS 32
#define CAIRN_LOG_LIMIT_INTERVAL_NS (10LL * 1000000000LL) /* default: 10 s */

typedef struct cairn_log_limiter {
  int64_t interval_ns; /* public: 0 = CAIRN_LOG_LIMIT_INTERVAL_NS */
  struct cairn_log_limit_slot {
    uint64_t key;      /* hash of the key, 0 = free */
    int64_t last_ns;   /* monotonic: when the last line for key was let through */
    uint64_t suppressed; /* dropped since then */
  } slots[CAIRN_LOG_LIMIT_SLOTS]; /* private */
} cairn_log_limiter;

/* Make l empty with the given interval (0 = default). Never allocates. */
void cairn_log_limiter_init(cairn_log_limiter *l, int64_t interval_ns);

/* The decision alone, for callers that format their own line: true when a
 * line for key may be written at now_ns (monotonic); *suppressed then gets
 * the number of lines dropped for key since the last one let through (and
 * is reset). False: the caller drops its line (it is counted). */
bool cairn_log_limit_check(cairn_log_limiter *l, const char *key, int64_t now_ns,
                           uint64_t *suppressed);

/* cairn_log() through the limiter, with the monotonic clock: logs the line
 * (adding the suppressed note when lines were dropped) or drops it. Returns
 * false when the line was dropped by the limiter. A level below the minimum
 * set by cairn_log_setup() is filtered first and never touches l. */
bool cairn_log_limited(cairn_log_limiter *l, const char *key, cairn_log_level lvl,
                       const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define cairn_log_debug(comp, ...) cairn_log(CAIRN_LOG_DEBUG, comp, __VA_ARGS__)
#define cairn_log_info(comp, ...) cairn_log(CAIRN_LOG_INFO, comp, __VA_ARGS__)
#define cairn_log_warn(comp, ...) cairn_log(CAIRN_LOG_WARN, comp, __VA_ARGS__)
#define cairn_log_error(comp, ...) cairn_log(CAIRN_LOG_ERROR, comp, __VA_ARGS__)

#endif
