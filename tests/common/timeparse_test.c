/* tests/common/timeparse_test.c: RFC 3339 (the corpus cases), user times, durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "common/timeparse.h"

static int64_t p(const char *s) {
  int64_t ns = 0;
  assert_int_equal(cairn_time_parse_rfc3339(s, strlen(s), &ns), CAIRN_OK);
  return ns;
}

static void rfc3339_matches_corpus_values(void **state) {
  (void)state;
  assert_int_equal(p("2024-01-15T10:23:45Z"), 1705314225000000000LL);
  assert_int_equal(p("2024-01-15T10:23:44.9909Z"), 1705314224990900000LL);
  assert_int_equal(p("2024-01-15T10:23:46.000001337Z"), 1705314226000001337LL);
  assert_int_equal(p("2024-01-15T10:30:01.004+01:00"), 1705311001004000000LL);
  assert_int_equal(p("2024-01-15T10:23:45.123456789-05:00"), 1705332225123456789LL);
  assert_int_equal(p("2024-01-15T10:30:00.12Z"), 1705314600120000000LL);
  assert_int_equal(p("1970-01-01T00:00:00Z"), 0);
  assert_int_equal(p("2024-02-29T00:00:00Z"), 1709164800000000000LL);
}

static void rfc3339_rejects_malformed(void **state) {
  (void)state;
  const char *bad[] = {"2024-01-15 10:23:45Z", "2024-01-15T10:23:45", "2024-13-01T00:00:00Z",
                       "2023-02-29T00:00:00Z", "2024-01-15T24:00:00Z", "2024-01-15T10:23:45.Z",
                       "2024-01-15T10:23:45.1234567890Z", "2024-01-15T10:23:45+0100",
                       "2024-01-15T10:23:45Zjunk", "", "x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int64_t ns = 42;
    assert_int_equal(cairn_time_parse_rfc3339(bad[i], strlen(bad[i]), &ns), CAIRN_E_PARSE);
    assert_int_equal(ns, 42);
  }
}

static void user_times_relative_date_and_now(void **state) {
  (void)state;
  int64_t now = 1705314225000000000LL, ns;
  assert_int_equal(cairn_time_parse_user("2h", now, &ns), CAIRN_OK);
  assert_int_equal(ns, now - 7200LL * 1000000000LL);
  assert_int_equal(cairn_time_parse_user("15m", now, &ns), CAIRN_OK);
  assert_int_equal(ns, now - 900LL * 1000000000LL);
  assert_int_equal(cairn_time_parse_user("7d", now, &ns), CAIRN_OK);
  assert_int_equal(ns, now - 7 * 86400LL * 1000000000LL);
  assert_int_equal(cairn_time_parse_user("2024-01-15", now, &ns), CAIRN_OK);
  assert_int_equal(ns, 1705276800000000000LL);
  assert_int_equal(cairn_time_parse_user("now", now, &ns), CAIRN_OK);
  assert_int_equal(ns, now);
  assert_int_equal(cairn_time_parse_user("yesterday", now, &ns), CAIRN_E_PARSE);
  assert_int_equal(cairn_time_parse_user("2x", now, &ns), CAIRN_E_PARSE);
}

static void format_round_trips(void **state) {
  (void)state;
  char buf[40];
  size_t n = cairn_time_format(1705314226000001337LL, buf, sizeof(buf));
  assert_string_equal(buf, "2024-01-15T10:23:46.000001337Z");
  assert_int_equal(n, strlen(buf));
  assert_int_equal(p(buf), 1705314226000001337LL);
}

static void durations(void **state) {
  (void)state;
  int64_t ns;
  assert_int_equal(cairn_duration_parse("250ms", &ns), CAIRN_OK);
  assert_int_equal(ns, 250000000LL);
  assert_int_equal(cairn_duration_parse("10s", &ns), CAIRN_OK);
  assert_int_equal(ns, 10000000000LL);
  assert_int_equal(cairn_duration_parse("1.5s", &ns), CAIRN_E_PARSE);
  assert_int_equal(cairn_duration_parse("s", &ns), CAIRN_E_PARSE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rfc3339_matches_corpus_values),
      cmocka_unit_test(rfc3339_rejects_malformed),
      cmocka_unit_test(user_times_relative_date_and_now),
      cmocka_unit_test(format_round_trips),
      cmocka_unit_test(durations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
