/* tests/common/log_test.c: the per-key rate limiter of common/log.h, both the
 * decision (with explicit clock values) and the lines cairn_log_limited
 * writes (stderr redirected into a temp file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

#define SEC 1000000000LL

static void first_line_per_key_passes_then_repeats_are_counted(void **state) {
  cairn_log_limiter l;
  cairn_log_limiter_init(&l, 10 * SEC);
  uint64_t sup = 99;
  assert_true(cairn_log_limit_check(&l, "connect a", 100 * SEC, &sup));
  assert_int_equal(sup, 0);
  for (int i = 0; i < 5; i++) assert_false(cairn_log_limit_check(&l, "connect a", 101 * SEC + i, &sup));
  /* another key is independent */
  assert_true(cairn_log_limit_check(&l, "connect b", 101 * SEC, &sup));
  assert_int_equal(sup, 0);
  /* still inside the interval */
  assert_false(cairn_log_limit_check(&l, "connect a", 109 * SEC, &sup));
  /* interval over: passes and reports what was dropped, then starts again */
  assert_true(cairn_log_limit_check(&l, "connect a", 110 * SEC, &sup));
  assert_int_equal(sup, 6);
  assert_false(cairn_log_limit_check(&l, "connect a", 111 * SEC, &sup));
  assert_true(cairn_log_limit_check(&l, "connect a", 200 * SEC, &sup));
  assert_int_equal(sup, 1);
}

static void zero_interval_means_ten_seconds(void **state) {
  cairn_log_limiter l;
  cairn_log_limiter_init(&l, 0);
  uint64_t sup;
  assert_true(cairn_log_limit_check(&l, "k", 0, &sup));
  assert_false(cairn_log_limit_check(&l, "k", 9 * SEC, &sup));
  assert_true(cairn_log_limit_check(&l, "k", 10 * SEC, &sup));
  assert_int_equal(sup, 1);
}

static void more_keys_than_slots_forget_the_oldest_and_never_drop_new_keys(void **state) {
  cairn_log_limiter l;
  cairn_log_limiter_init(&l, 10 * SEC);
  uint64_t sup;
  char key[32];
  for (int i = 0; i < CAIRN_LOG_LIMIT_SLOTS + 8; i++) {
    snprintf(key, sizeof(key), "file %d", i);
    assert_true(cairn_log_limit_check(&l, key, SEC + i, &sup)); /* a new key always passes */
  }
  /* the newest keys are still limited */
  snprintf(key, sizeof(key), "file %d", CAIRN_LOG_LIMIT_SLOTS + 7);
  assert_false(cairn_log_limit_check(&l, key, 2 * SEC, &sup));
  /* the oldest was evicted: it passes again at once */
  assert_true(cairn_log_limit_check(&l, "file 0", 2 * SEC, &sup));
}

/* Run fn with stderr captured into out. */
static void capture_stderr(void (*fn)(void *), void *arg, char *out, size_t cap) {
  char path[] = "/tmp/cairn-logtest-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(fd, STDERR_FILENO) >= 0);
  fn(arg);
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  ssize_t n = pread(fd, out, cap - 1, 0);
  assert_true(n >= 0);
  out[n] = '\0';
  close(fd);
  unlink(path);
}

static void log_a_burst(void *arg) {
  cairn_log_limiter *l = arg;
  for (int i = 0; i < 50; i++)
    cairn_log_limited(l, "read /var/log/x", CAIRN_LOG_WARN, "collector", "cannot read %s: %d",
                      "/var/log/x", i);
  cairn_log_limited(l, "other", CAIRN_LOG_ERROR, "collector", "a different error");
}

static void burst_writes_one_line_per_key(void **state) {
  cairn_log_setup(CAIRN_LOG_INFO, CAIRN_LOG_LOGFMT);
  cairn_log_limiter l;
  cairn_log_limiter_init(&l, 3600 * SEC);
  char out[8192];
  capture_stderr(log_a_burst, &l, out, sizeof(out));
  int lines = 0;
  for (const char *p = out; (p = strchr(p, '\n')); p++) lines++;
  assert_int_equal(lines, 2);
  assert_non_null(strstr(out, "level=warn comp=collector msg=\"cannot read /var/log/x: 0\""));
  assert_non_null(strstr(out, "msg=\"a different error\""));
  assert_null(strstr(out, "x: 1\""));
}

static void log_after_interval(void *arg) {
  cairn_log_limiter *l = arg;
  for (int i = 0; i < 4; i++)
    cairn_log_limited(l, "k", CAIRN_LOG_WARN, "aggregator", "bad frame from %s", "10.0.0.9:5000");
  usleep(30 * 1000); /* past the 10 ms interval */
  cairn_log_limited(l, "k", CAIRN_LOG_WARN, "aggregator", "bad frame from %s", "10.0.0.9:5000");
}

static void line_after_the_interval_reports_the_suppressed_count(void **state) {
  cairn_log_setup(CAIRN_LOG_INFO, CAIRN_LOG_JSON);
  cairn_log_limiter l;
  cairn_log_limiter_init(&l, 10 * 1000000LL);
  char out[8192];
  capture_stderr(log_after_interval, &l, out, sizeof(out));
  cairn_log_setup(CAIRN_LOG_INFO, CAIRN_LOG_LOGFMT);
  assert_non_null(strstr(out, "\"msg\":\"bad frame from 10.0.0.9:5000\"}\n"));
  assert_non_null(
      strstr(out, "\"msg\":\"bad frame from 10.0.0.9:5000 (suppressed 3 similar messages in the last 1s)\"}"));
}

static void log_debug_twice(void *arg) {
  cairn_log_limiter *l = arg;
  assert_true(cairn_log_limited(l, "k", CAIRN_LOG_DEBUG, "c", "hidden"));
  assert_true(cairn_log_limited(l, "k", CAIRN_LOG_WARN, "c", "shown"));
}

static void filtered_levels_do_not_use_up_the_key(void **state) {
  cairn_log_setup(CAIRN_LOG_INFO, CAIRN_LOG_LOGFMT);
  cairn_log_limiter l;
  cairn_log_limiter_init(&l, 3600 * SEC);
  char out[4096];
  capture_stderr(log_debug_twice, &l, out, sizeof(out));
  assert_null(strstr(out, "hidden"));
  assert_non_null(strstr(out, "msg=\"shown\""));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(first_line_per_key_passes_then_repeats_are_counted),
      cmocka_unit_test(zero_interval_means_ten_seconds),
      cmocka_unit_test(more_keys_than_slots_forget_the_oldest_and_never_drop_new_keys),
      cmocka_unit_test(burst_writes_one_line_per_key),
      cmocka_unit_test(line_after_the_interval_reports_the_suppressed_count),
      cmocka_unit_test(filtered_levels_do_not_use_up_the_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
