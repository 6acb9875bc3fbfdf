/* tests/fuzz/fuzz_time.c: fuzz target for common/timeparse.h: the RFC 3339
 * parser on the collector's hot path (on an exact-size slice, no NUL), and the
 * query CLI's --since/--until and duration parsers (on a NUL-terminated copy).
 * An accepted RFC 3339 time must survive cairn_time_format and parse back to
 * the same nanosecond, and parse the same through cairn_time_parse_user.
 */
#include <string.h>

#include "common/timeparse.h"
#include "tests/fuzz/fuzz.h"

/* A fixed "now" (2026-11-28T10:00:00Z), as the CLI passes the wall clock. */
#define FUZZ_NOW_NS 1795860000000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* 1. RFC 3339 on the raw slice (exact size: overreads are caught) */
  uint8_t *slice = malloc(size ? size : 1);
  FUZZ_CHECK(slice != NULL);
  if (size) memcpy(slice, data, size);
  int64_t ns = 0;
  int rfc_ok = cairn_time_parse_rfc3339((const char *)slice, size, &ns) == CAIRN_OK;
  free(slice);
  if (rfc_ok) {
    char out[64];
    size_t n = cairn_time_format(ns, out, sizeof(out));
    FUZZ_CHECK(n == 30);
    int64_t back = 0;
    FUZZ_CHECK(cairn_time_parse_rfc3339(out, n, &back) == CAIRN_OK);
    FUZZ_CHECK(back == ns);
  }

  /* 2. user times and durations on a NUL-terminated copy */
  char *s = malloc(size + 1);
  FUZZ_CHECK(s != NULL);
  if (size) memcpy(s, data, size);
  s[size] = '\0';
  int64_t user = 0;
  cairn_err e = cairn_time_parse_user(s, FUZZ_NOW_NS, &user);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_PARSE);
  if (rfc_ok && strlen(s) == size) {
    FUZZ_CHECK(e == CAIRN_OK && user == ns);
  }
  int64_t dur = -1;
  e = cairn_duration_parse(s, &dur);
  FUZZ_CHECK(e == CAIRN_OK || e == CAIRN_E_PARSE);
  if (e == CAIRN_OK) FUZZ_CHECK(dur >= 0);
  free(s);
  return 0;
}
