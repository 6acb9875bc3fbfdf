/* tests/collector/checkpoint_test.c: the collector's LMDB checkpoint store in a
 * fresh mkdtemp directory: instance id stability, round trips through a
 * reopen, asynchronous commits on the threadpool, deletes, stream ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/internal.h"
#include "common/timeparse.h"

static char *make_dir(void) {
  char tmpl[] = "/tmp/cairn-ckpt-XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

static void remove_dir(char *d) {
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
  assert_int_equal(system(cmd), 0);
  free(d);
}

static col_ckpt *open_ok(const char *dir) {
  col_ckpt *ck = NULL;
  char eb[256] = "";
  cairn_err err = col__ckpt_open(dir, &ck, eb, sizeof(eb));
  if (err != CAIRN_OK) fail_msg("open %s: %s", dir, eb);
  return ck;
}

static col_ckpt_entry entry(uint64_t dev, uint64_t ino, uint64_t off, const char *path) {
  col_ckpt_entry e = {.dev = dev, .ino = ino, .offset = off, .file_stream = ino * 1000 + 7,
                      .path = (char *)path};
  e.fp_len = 5;
  memcpy(e.fp, "hello", 5);
  return e;
}

static void ckpt_instance_id_is_stable_across_reopen(void **state) {
  (void)state;
  char *dir = make_dir();
  col_ckpt *ck = open_ok(dir);
  char id[33];
  snprintf(id, sizeof(id), "%s", col__ckpt_instance_id(ck));
  assert_int_equal(strlen(id), 32);
  assert_int_equal(strspn(id, "0123456789abcdef"), 32);
  col__ckpt_close(ck);
  ck = open_ok(dir);
  assert_string_equal(col__ckpt_instance_id(ck), id);
  col__ckpt_close(ck);

  char *other = make_dir();
  ck = open_ok(other);
  assert_string_not_equal(col__ckpt_instance_id(ck), id);
  col__ckpt_close(ck);
  remove_dir(other);
  remove_dir(dir);
}

static void ckpt_entries_round_trip_through_reopen(void **state) {
  (void)state;
  char *dir = make_dir();
  col_ckpt *ck = open_ok(dir);
  assert_int_equal(col__ckpt_count(ck), 0);
  col_ckpt_entry a = entry(1, 100, 4096, "/var/log/containers/a.log");
  col_ckpt_entry b = entry(1, 200, 17, "/var/log/containers/b.log");
  assert_int_equal(col__ckpt_put(ck, &a), CAIRN_OK);
  assert_int_equal(col__ckpt_put(ck, &b), CAIRN_OK);
  a.offset = 8192; /* a later ack overrides */
  assert_int_equal(col__ckpt_put(ck, &a), CAIRN_OK);
  assert_true(col__ckpt_dirty(ck));
  char eb[256];
  assert_int_equal(col__ckpt_flush_sync(ck, eb, sizeof(eb)), CAIRN_OK);
  assert_false(col__ckpt_dirty(ck));
  col__ckpt_close(ck);

  ck = open_ok(dir);
  assert_int_equal(col__ckpt_count(ck), 2);
  const col_ckpt_entry *ga = col__ckpt_get(ck, 1, 100);
  assert_non_null(ga);
  assert_int_equal(ga->offset, 8192);
  assert_int_equal(ga->file_stream, 100 * 1000 + 7);
  assert_int_equal(ga->fp_len, 5);
  assert_memory_equal(ga->fp, "hello", 5);
  assert_string_equal(ga->path, "/var/log/containers/a.log");
  const col_ckpt_entry *gb = col__ckpt_get(ck, 1, 200);
  assert_non_null(gb);
  assert_int_equal(gb->offset, 17);
  assert_null(col__ckpt_get(ck, 2, 100));
  col__ckpt_close(ck);
  remove_dir(dir);
}

typedef struct flush_state {
  int calls;
  cairn_err err;
} flush_state;

static void on_flushed(col_ckpt *ck, cairn_err err, const char *why, void *ud) {
  flush_state *fs = ud;
  fs->calls++;
  fs->err = err;
}

static void ckpt_async_flush_commits_puts_and_deletes(void **state) {
  (void)state;
  char *dir = make_dir();
  col_ckpt *ck = open_ok(dir);
  col_ckpt_entry a = entry(3, 1, 10, "/a"), b = entry(3, 2, 20, "/b");
  assert_int_equal(col__ckpt_put(ck, &a), CAIRN_OK);
  assert_int_equal(col__ckpt_put(ck, &b), CAIRN_OK);

  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  flush_state fs = {0};
  assert_int_equal(col__ckpt_flush_start(ck, &loop, on_flushed, &fs), CAIRN_OK);
  assert_true(col__ckpt_busy(ck));
  /* a second commit while one runs is refused, without a callback */
  assert_int_equal(col__ckpt_flush_start(ck, &loop, on_flushed, &fs), CAIRN_E_AGAIN);
  /* a change made while the job runs stays pending for the next one */
  a.offset = 11;
  assert_int_equal(col__ckpt_put(ck, &a), CAIRN_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(fs.calls, 1);
  assert_int_equal(fs.err, CAIRN_OK);
  assert_false(col__ckpt_busy(ck));
  assert_true(col__ckpt_dirty(ck));

  col__ckpt_del(ck, 3, 2);
  assert_null(col__ckpt_get(ck, 3, 2));
  assert_int_equal(col__ckpt_flush_start(ck, &loop, on_flushed, &fs), CAIRN_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(fs.calls, 2);
  assert_int_equal(fs.err, CAIRN_OK);
  assert_false(col__ckpt_dirty(ck));
  assert_int_equal(uv_loop_close(&loop), 0);
  col__ckpt_close(ck);

  ck = open_ok(dir);
  assert_int_equal(col__ckpt_count(ck), 1);
  const col_ckpt_entry *ga = col__ckpt_get(ck, 3, 1);
  assert_non_null(ga);
  assert_int_equal(ga->offset, 11);
  assert_null(col__ckpt_get(ck, 3, 2));
  col__ckpt_close(ck);
  remove_dir(dir);
}

static void ckpt_open_reports_unusable_state_dir(void **state) {
  (void)state;
  col_ckpt *ck = (col_ckpt *)1;
  char eb[256] = "";
  cairn_err err = col__ckpt_open("/proc/cairn-no-such/dir", &ck, eb, sizeof(eb));
  assert_int_not_equal(err, CAIRN_OK);
  assert_null(ck);
  assert_non_null(strstr(eb, "--state"));
}

static void stream_id_depends_on_identity_fingerprint_and_salt(void **state) {
  (void)state;
  const uint8_t fp1[] = "2024-01-15T10:23:45.1Z stdout F one";
  const uint8_t fp2[] = "2024-01-15T10:23:45.2Z stdout F two";
  uint64_t a = col__stream_id(1, 2, 77, fp1, sizeof(fp1) - 1, 0);
  assert_int_equal(a, col__stream_id(1, 2, 77, fp1, sizeof(fp1) - 1, 0));
  assert_int_not_equal(a, 0);
  assert_int_not_equal(a, col__stream_id(1, 2, 77, fp2, sizeof(fp2) - 1, 0)); /* inode re-used */
  assert_int_not_equal(a, col__stream_id(1, 2, 78, fp1, sizeof(fp1) - 1, 0)); /* same first line, reborn */
  assert_int_not_equal(a, col__stream_id(1, 3, 77, fp1, sizeof(fp1) - 1, 0));
  assert_int_not_equal(a, col__stream_id(1, 2, 77, fp1, sizeof(fp1) - 1, a)); /* truncated */
  assert_int_not_equal(col__stream_id(1, 2, 0, NULL, 0, 0), col__stream_id(1, 2, 0, fp1, 1, 0));
}

static void fingerprint_matches_only_as_a_non_empty_prefix(void **state) {
  (void)state;
  const uint8_t cur[] = "line one\nline two\n";
  assert_true(col__fp_match(cur, 9, cur, sizeof(cur) - 1));
  assert_false(col__fp_match(cur, 0, cur, sizeof(cur) - 1)); /* no fingerprint: no identity */
  assert_false(col__fp_match(cur, 9, cur, 5));                /* shrank below it */
  assert_false(col__fp_match((const uint8_t *)"line 0ne\n", 9, cur, sizeof(cur) - 1));
}

static void ckpt_birth_time_round_trips_and_gc_drops_unseen_entries(void **state) {
  (void)state;
  char *dir = make_dir();
  col_ckpt *ck = open_ok(dir);
  col_ckpt_entry a = entry(5, 1, 10, "/a"), b = entry(5, 2, 20, "/b");
  a.btime = 1234567890123456789ull;
  assert_int_equal(col__ckpt_put(ck, &a), CAIRN_OK);
  assert_int_equal(col__ckpt_put(ck, &b), CAIRN_OK);
  char eb[256];
  assert_int_equal(col__ckpt_flush_sync(ck, eb, sizeof(eb)), CAIRN_OK);
  col__ckpt_close(ck);
  ck = open_ok(dir);
  assert_int_equal(col__ckpt_get(ck, 5, 1)->btime, 1234567890123456789ull);
  assert_int_equal(col__ckpt_get(ck, 5, 2)->btime, 0);
  /* one file seen an hour later, the other not: only the unseen one goes */
  int64_t later = cairn_time_mono_ns() + 3600LL * 1000000000LL;
  col__ckpt_touch(ck, 5, 1, later);
  assert_int_equal(col__ckpt_gc(ck, later, 600LL * 1000000000LL), 1);
  assert_non_null(col__ckpt_get(ck, 5, 1));
  assert_null(col__ckpt_get(ck, 5, 2));
  assert_int_equal(col__ckpt_flush_sync(ck, eb, sizeof(eb)), CAIRN_OK);
  col__ckpt_close(ck);
  ck = open_ok(dir);
  assert_int_equal(col__ckpt_count(ck), 1);
  col__ckpt_close(ck);
  remove_dir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ckpt_instance_id_is_stable_across_reopen),
      cmocka_unit_test(ckpt_entries_round_trip_through_reopen),
      cmocka_unit_test(ckpt_async_flush_commits_puts_and_deletes),
      cmocka_unit_test(ckpt_open_reports_unusable_state_dir),
      cmocka_unit_test(stream_id_depends_on_identity_fingerprint_and_salt),
      cmocka_unit_test(fingerprint_matches_only_as_a_non_empty_prefix),
      cmocka_unit_test(ckpt_birth_time_round_trips_and_gc_drops_unseen_entries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
