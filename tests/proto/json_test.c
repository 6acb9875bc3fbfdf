/* tests/proto/json_test.c: pb_record_json's numbers and times. The renderer
 * formats integers and UTC times by hand (no snprintf or gmtime_r on the
 * Kafka forwarder's hot path); this compares it with cairn_time_format and
 * printf over fixed edge cases and a million seeded random instants.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/timeparse.h"
#include "proto/proto.h"

/* The JSON of a record with only time_ns, seq and ingest_ns set must be
 * exactly what printf and cairn_time_format produce. */
static void check_one(int64_t t, uint64_t seq, int64_t ingest) {
  Cairn__Record r = CAIRN__RECORD__INIT;
  r.time_ns = t;
  r.seq = seq;
  r.ingest_ns = ingest;
  cairn_buf o;
  cairn_buf_init(&o);
  assert_int_equal(pb_record_json(&r, &o), CAIRN_OK);
  assert_int_equal(cairn_buf_append(&o, "", 1), CAIRN_OK); /* NUL for strstr */
  o.len--;
  char want[512], tb[64], ib[64];
  cairn_time_format(t, tb, sizeof(tb));
  cairn_time_format(ingest, ib, sizeof(ib));
  int n = 0;
  n += snprintf(want + n, sizeof(want) - (size_t)n, "{");
  if (seq) n += snprintf(want + n, sizeof(want) - (size_t)n, "\"seq\":%" PRIu64 ",", seq);
  n += snprintf(want + n, sizeof(want) - (size_t)n,
                "\"time\":\"%s\",\"time_ns\":%" PRId64 ",\"source\":\"unspecified\","
                "\"format\":\"unspecified\",\"stream\":\"unspecified\"", tb, t);
  (void)n;
  /* compare what this test owns: the prefix up to "source" (names come
   * from proto/names.c) and the ingest_time tail */
  const char *got = (const char *)o.ptr;
  char *src = strstr(want, ",\"source\"");
  assert_non_null(src);
  size_t head = (size_t)(src - want);
  if (o.len < head || memcmp(got, want, head) != 0)
    fail_msg("t=%" PRId64 " seq=%" PRIu64 ": got %.*s want %.*s", t, seq, (int)o.len, got,
             (int)head, want);
  if (ingest) {
    char tail[96];
    snprintf(tail, sizeof(tail), "\"ingest_time\":\"%s\"}", ib);
    size_t tl = strlen(tail);
    if (o.len < tl || memcmp(got + o.len - tl, tail, tl) != 0)
      fail_msg("ingest=%" PRId64 ": got %.*s want ...%s", ingest, (int)o.len, got, tail);
  } else {
    assert_null(strstr(got, "ingest_time"));
  }
  cairn_buf_fini(&o);
}

static void edge_cases(void **state) {
  (void)state;
  static const int64_t ts[] = {
      0, 1, -1, 999999999, 1000000000, -1000000000, -1000000001, 86399999999999LL,
      86400000000000LL, 951782400000000000LL /* 2000-02-29 */, 951868800000000000LL,
      1709164800123456789LL /* 2024-02-29 */, 4102444800000000000LL /* 2100-01-01 */,
      -62135596800000000LL /* 0001-01-01 */, INT64_MAX, 253402300799999999LL /* 9999-12-31 */,
      INT64_MIN + 1, -2208988800000000000LL /* 1900-01-01 */, 1764288000000000000LL};
  for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
    check_one(ts[i], 0, 0);
    check_one(ts[i], UINT64_MAX, ts[i]);
    check_one(ts[i], 1, -(ts[i] / 2) + 7);
  }
}

static void random_instants(void **state) {
  (void)state;
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 1000000; i++) {
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    uint64_t r = x * 2685821657736338717ULL;
    int64_t t;
    switch (i % 4) {
      case 0: t = (int64_t)r; break;                                   /* anything */
      case 1: t = (int64_t)(r % 4102444800000000000ULL); break;        /* 1970..2100 */
      case 2: t = -(int64_t)(r % 2208988800000000000ULL); break;       /* 1900..1970 */
      default: t = 1764288000000000000LL + (int64_t)(r % 86400000000000ULL); break; /* one day */
    }
    check_one(t, r >> (i % 64), i % 3 ? t / 2 + (int64_t)(r % 1000000000) : 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(edge_cases),
      cmocka_unit_test(random_instants),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
