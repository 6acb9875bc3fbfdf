/* common/timeparse.h: timestamps as int64 nanoseconds since the Unix epoch (UTC).
 *
 * Caveats:
 *  - RFC 3339 parsing is strict (the CRI/Docker writers are Go RFC3339Nano):
 *    'T' separator, 0-9 fraction digits, 'Z' or +hh:mm / -hh:mm offset.
 *  - The parse functions take a length, so they work on unterminated slices.
 */
#ifndef CAIRN_COMMON_TIMEPARSE_H
#define CAIRN_COMMON_TIMEPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Parse an RFC 3339 timestamp from s[0..n) (exactly, no trailing bytes).
 * *ns_out: nanoseconds since epoch, offsets applied. CAIRN_E_PARSE on any
 * deviation (out-of-range fields included). */
CAIRN_MUST_CHECK cairn_err cairn_time_parse_rfc3339(const char *s, size_t n, int64_t *ns_out);

/* Parse a user-given time for queries (NUL-terminated s):
 *   RFC 3339 ("2026-11-28T10:00:00Z"), a date ("2026-11-28", midnight UTC),
 *   "now", or a relative duration back from now_ns: "90s", "15m", "2h", "7d", "1w".
 * CAIRN_E_PARSE with nothing written on anything else. */
CAIRN_MUST_CHECK cairn_err cairn_time_parse_user(const char *s, int64_t now_ns, int64_t *ns_out);

/* Parse a duration like "250ms", "2s", "5m", "1h", "7d" into nanoseconds. */
CAIRN_MUST_CHECK cairn_err cairn_duration_parse(const char *s, int64_t *ns_out);

/* Current wall-clock time in ns. */
int64_t cairn_time_now_ns(void);

/* Monotonic clock in ns (for timeouts and latency). */
int64_t cairn_time_mono_ns(void);

/* Format ns as RFC 3339 UTC with 9 fraction digits ("2024-01-15T10:23:45.000000000Z").
 * out needs at least 31 bytes; returns the length written (without NUL). */
size_t cairn_time_format(int64_t ns, char *out, size_t cap);

#endif
