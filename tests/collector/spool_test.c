/* tests/collector/spool_test.c: the on-disk spool (collector/spool.c) in a
 * fresh mkdtemp directory: append, replay in order, acks deleting segments,
 * rewind after a lost connection, reopen after a restart, a torn tail
 * truncated, a corrupt entry in the middle skipped and counted, the size
 * limit, file modes, CRC32C check values. Prints the cost of one append +
 * fdatasync and of one read (the figures in docs/RELIABILITY.md). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/internal.h"
#include "common/timeparse.h"

static char *make_dir(void) {
  char tmpl[] = "/tmp/cairn-spool-XXXXXX";
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

static col_spool *open_ok(const char *dir, uint64_t max) {
  col_spool *sp = NULL;
  char eb[256] = "";
  cairn_err err = col__spool_open(dir, max, &sp, eb, sizeof(eb));
  if (err != CAIRN_OK)
    fail_msg("open %s: %s", dir, eb);
  return sp;
}

/* Payload i: len bytes of a pattern that names i. */
static uint8_t *payload(int i, size_t len) {
  uint8_t *p = malloc(len);
  assert_non_null(p);
  for (size_t k = 0; k < len; k++)
    p[k] = (uint8_t)(i * 31 + k * 7);
  return p;
}

static void append_ok(col_spool *sp, int i, size_t len) {
  uint8_t *p = payload(i, len);
  col_spool_item it = {p, len, (uint32_t)i, (uint64_t)i * 1000};
  char eb[256] = "";
  cairn_err err = col__spool_append(sp, &it, 1, eb, sizeof(eb));
  if (err != CAIRN_OK)
    fail_msg("append %d: %s", i, eb);
  col__spool_publish(sp, 1);
  free(p);
}

/* Read the next entry and check it is payload i of len bytes. */
static col_spool_pos expect_next(col_spool *sp, int i, size_t len) {
  col_spool_entry e;
  assert_int_equal(col__spool_next(sp, &e), CAIRN_OK);
  assert_int_equal(e.records, (uint32_t)i);
  assert_int_equal(e.raw_size, (uint64_t)i * 1000);
  assert_int_equal(e.len, len);
  uint8_t *p = payload(i, len);
  assert_memory_equal(e.payload, p, len);
  free(p);
  return e.end;
}

static size_t count_segments(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '\\.spool$'", dir);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  size_t n = 0;
  if (fscanf(f, "%zu", &n) != 1)
    n = 0;
  pclose(f);
  return n;
}

static void crc32c_matches_check_values(void **state) {
  (void)state;
  /* the CRC-32C check value (RFC 3720 B.4 and the usual "123456789") */
  assert_int_equal(col__crc32c(0, "123456789", 9), 0xE3069283u);
  uint8_t zeros[32] = {0};
  assert_int_equal(col__crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAu);
  /* incremental == one shot */
  assert_int_equal(col__crc32c(col__crc32c(0, "1234", 4), "56789", 5),
                   0xE3069283u);
}

static void append_replay_ack_delete(void **state) {
  (void)state;
  char *dir = make_dir();
  char sub[300];
  snprintf(sub, sizeof(sub), "%s/spool", dir);
  /* 1 MiB limit: 64 KiB segments, so 40 entries of 5000 bytes span several */
  col_spool *sp = open_ok(sub, 1u << 20);
  struct stat st;
  assert_int_equal(stat(sub, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_true(col__spool_empty(sp));
  assert_false(col__spool_unsent(sp));
  col_spool_entry e;
  assert_int_equal(col__spool_next(sp, &e), CAIRN_E_AGAIN);
  for (int i = 1; i <= 40; i++)
    append_ok(sp, i, 5000);
  col_spool_stats ss;
  col__spool_stats(sp, &ss);
  assert_int_equal(ss.batches, 40);
  assert_int_equal(ss.bytes, 40 * col__spool_entry_bytes(5000));
  size_t segs = count_segments(sub);
  assert_true(segs >= 3);
  char cmd[600];
  snprintf(cmd, sizeof(cmd),
           "test -z \"$(find '%s' -name '*.spool' ! -perm 600)\"", sub);
  assert_int_equal(system(cmd), 0);

  /* send 10, lose the connection after acking 5: the rest is sent again */
  col_spool_pos ends[41];
  for (int i = 1; i <= 10; i++)
    ends[i] = expect_next(sp, i, 5000);
  assert_int_equal(col__spool_inflight(sp), 10);
  for (int i = 1; i <= 5; i++)
    col__spool_acked(sp, ends[i]);
  col__spool_rewind(sp);
  assert_int_equal(col__spool_inflight(sp), 0);
  for (int i = 6; i <= 40; i++) {
    ends[i] = expect_next(sp, i, 5000);
    col__spool_acked(sp, ends[i]);
  }
  assert_int_equal(col__spool_next(sp, &e), CAIRN_E_AGAIN);
  assert_true(col__spool_empty(sp));
  /* acked segments before the last were deleted as the acks passed them */
  assert_int_equal(count_segments(sub), 1);
  col__spool_trim(sp);
  assert_int_equal(count_segments(sub), 0);
  col__spool_stats(sp, &ss);
  assert_int_equal(ss.batches, 0);
  assert_int_equal(ss.bytes, 0);
  assert_int_equal(ss.acked, 40);
  /* appends after the trim start a new segment and replay normally */
  append_ok(sp, 41, 100);
  expect_next(sp, 41, 100);
  col__spool_close(sp);
  remove_dir(dir);
}

static void reopen_replays_in_order(void **state) {
  (void)state;
  char *dir = make_dir();
  col_spool *sp = open_ok(dir, 1u << 20);
  for (int i = 1; i <= 30; i++)
    append_ok(sp, i, 3000 + (size_t)i);
  /* two acked before the "crash": they may be sent again (dedupe) or not */
  col_spool_pos end = expect_next(sp, 1, 3001);
  col__spool_acked(sp, end);
  col__spool_close(sp);

  sp = open_ok(dir, 1u << 20);
  col_spool_stats ss;
  col__spool_stats(sp, &ss);
  assert_true(ss.batches >= 29);
  col_spool_entry e;
  assert_int_equal(col__spool_next(sp, &e), CAIRN_OK);
  int first = (int)e.records;
  assert_true(first == 1 || first == 2);
  for (int i = first + 1; i <= 30; i++)
    expect_next(sp, i, 3000 + (size_t)i);
  assert_int_equal(col__spool_next(sp, &e), CAIRN_E_AGAIN);
  /* new appends after a reopen follow the old entries */
  append_ok(sp, 31, 10);
  expect_next(sp, 31, 10);
  col__spool_close(sp);
  remove_dir(dir);
}

/* Path of the only (or last) segment in dir. */
static void last_segment(const char *dir, char *out, size_t len) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "ls '%s'/*.spool | tail -n 1", dir);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  assert_non_null(fgets(out, (int)len, f));
  out[strcspn(out, "\n")] = 0;
  pclose(f);
}

static void torn_tail_is_truncated(void **state) {
  (void)state;
  char *dir = make_dir();
  col_spool *sp = open_ok(dir, 1u << 20);
  for (int i = 1; i <= 3; i++)
    append_ok(sp, i, 1000);
  col__spool_close(sp);
  char seg[600];
  last_segment(dir, seg, sizeof(seg));
  uint64_t good = 3 * col__spool_entry_bytes(1000);
  /* a crash in the middle of the 4th append: a header and part of its payload
   */
  int fd = open(seg, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  uint8_t part[24 + 400];
  memset(part, 0xAB, sizeof(part));
  const uint8_t hdr[12] = {'C', 'S', 'P', '1', 0xe8, 0x03,
                           0,   0,   1,   2,   3,    4}; /* len 1000 */
  memcpy(part, hdr, sizeof(hdr));
  assert_int_equal(write(fd, part, sizeof(part)), (ssize_t)sizeof(part));
  close(fd);

  sp = open_ok(dir, 1u << 20);
  struct stat st;
  assert_int_equal(stat(seg, &st), 0);
  assert_int_equal((uint64_t)st.st_size, good);
  col_spool_stats ss;
  col__spool_stats(sp, &ss);
  assert_int_equal(ss.torn, 1);
  assert_int_equal(ss.batches, 3);
  for (int i = 1; i <= 3; i++)
    expect_next(sp, i, 1000);
  col_spool_entry e;
  assert_int_equal(col__spool_next(sp, &e), CAIRN_E_AGAIN);
  col__spool_close(sp);

  /* a complete last entry whose bytes never reached the disk (zeros) */
  fd = open(seg, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  uint8_t zeros[24 + 1000] = {0};
  memcpy(zeros, hdr, 8); /* magic and length made it, the rest is zeros */
  assert_int_equal(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
  close(fd);
  sp = open_ok(dir, 1u << 20);
  assert_int_equal(stat(seg, &st), 0);
  assert_int_equal((uint64_t)st.st_size, good);
  col__spool_stats(sp, &ss);
  assert_int_equal(ss.torn, 1);
  col__spool_close(sp);
  remove_dir(dir);
}

static void corrupt_middle_entry_is_skipped(void **state) {
  (void)state;
  char *dir = make_dir();
  col_spool *sp = open_ok(dir, 1u << 20);
  for (int i = 1; i <= 5; i++)
    append_ok(sp, i, 1000);
  col__spool_close(sp);
  char seg[600];
  last_segment(dir, seg, sizeof(seg));
  /* flip a payload byte of entry 3 */
  int fd = open(seg, O_RDWR);
  assert_true(fd >= 0);
  off_t off = (off_t)(2 * col__spool_entry_bytes(1000) + 24 + 500);
  uint8_t b;
  assert_int_equal(pread(fd, &b, 1, off), 1);
  b ^= 0xff;
  assert_int_equal(pwrite(fd, &b, 1, off), 1);
  close(fd);

  sp = open_ok(dir, 1u << 20);
  col_spool_stats ss;
  col__spool_stats(sp, &ss);
  assert_int_equal(ss.torn, 0);
  assert_int_equal(ss.batches, 5);
  col_spool_pos ends[6];
  ends[1] = expect_next(sp, 1, 1000);
  ends[2] = expect_next(sp, 2, 1000);
  ends[4] = expect_next(sp, 4, 1000); /* 3 is skipped */
  ends[5] = expect_next(sp, 5, 1000);
  col_spool_entry e;
  assert_int_equal(col__spool_next(sp, &e), CAIRN_E_AGAIN);
  col__spool_stats(sp, &ss);
  assert_int_equal(ss.corrupt, 1);
  assert_int_equal(ss.batches, 4);
  col__spool_acked(sp, ends[1]);
  col__spool_acked(sp, ends[2]);
  col__spool_acked(sp, ends[4]);
  col__spool_acked(sp, ends[5]);
  assert_true(col__spool_empty(sp));
  col__spool_trim(sp);
  assert_int_equal(count_segments(dir), 0);

  /* a corrupt entry read with nothing in flight moves the ack cursor past it
   * too */
  append_ok(sp, 6, 1000);
  append_ok(sp, 7, 1000);
  col__spool_close(sp);
  last_segment(dir, seg, sizeof(seg));
  fd = open(seg, O_RDWR);
  assert_true(fd >= 0);
  off = (off_t)(24 + 10); /* entry 6 (not the last: no torn tail) */
  assert_int_equal(pread(fd, &b, 1, off), 1);
  b ^= 0x01;
  assert_int_equal(pwrite(fd, &b, 1, off), 1);
  close(fd);
  sp = open_ok(dir, 1u << 20);
  col_spool_pos end = expect_next(sp, 7, 1000);
  col__spool_acked(sp, end);
  assert_true(col__spool_empty(sp));
  col__spool_close(sp);
  remove_dir(dir);
}

static void limit_is_reported(void **state) {
  (void)state;
  char *dir = make_dir();
  uint64_t max = 8192;
  col_spool *sp = open_ok(dir, max);
  uint64_t one = col__spool_entry_bytes(2000);
  int n = 0;
  while (col__spool_fits(sp, one))
    append_ok(sp, ++n, 2000);
  assert_int_equal(n, (int)(max / one));
  col_spool_stats ss;
  col__spool_stats(sp, &ss);
  assert_true(ss.bytes <= max);
  assert_false(col__spool_fits(sp, one));
  /* acking frees room only once the segments are gone (bytes on disk count) */
  col_spool_pos ends[16];
  for (int i = 1; i <= n; i++)
    ends[i] = expect_next(sp, i, 2000);
  for (int i = 1; i <= n; i++)
    col__spool_acked(sp, ends[i]);
  col__spool_trim(sp);
  assert_true(col__spool_fits(sp, one));
  col__spool_close(sp);
  remove_dir(dir);
}

static void timing(void **state) {
  (void)state;
  char *dir = make_dir();
  col_spool *sp = open_ok(dir, 1u << 30);
  enum { N = 20, LEN = 200000 }; /* ~ a compressed 5000-record batch */
  int64_t t0 = cairn_time_mono_ns();
  for (int i = 1; i <= N; i++)
    append_ok(sp, i, LEN);
  int64_t t1 = cairn_time_mono_ns();
  col_spool_entry e;
  for (int i = 1; i <= N; i++) {
    assert_int_equal(col__spool_next(sp, &e),
                     CAIRN_OK); /* pread + CRC32C check */
    assert_int_equal(e.records, (uint32_t)i);
  }
  int64_t t2 = cairn_time_mono_ns();
  printf("spool: append + fdatasync of one %d-byte entry: %.2f ms; read back + "
         "CRC: %.3f ms\n",
         LEN, (double)(t1 - t0) / N / 1e6, (double)(t2 - t1) / N / 1e6);
  col__spool_close(sp);
  remove_dir(dir);
}

static void open_rejects_a_file(void **state) {
  (void)state;
  char *dir = make_dir();
  char f[400];
  snprintf(f, sizeof(f), "%s/file", dir);
  FILE *fp = fopen(f, "w");
  assert_non_null(fp);
  fclose(fp);
  col_spool *sp = NULL;
  char eb[256] = "";
  assert_int_equal(col__spool_open(f, 1u << 20, &sp, eb, sizeof(eb)),
                   CAIRN_E_CONFIG);
  assert_null(sp);
  assert_non_null(strstr(eb, "not a directory"));
  remove_dir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(crc32c_matches_check_values),
      cmocka_unit_test(append_replay_ack_delete),
      cmocka_unit_test(reopen_replays_in_order),
      cmocka_unit_test(torn_tail_is_truncated),
      cmocka_unit_test(corrupt_middle_entry_is_skipped),
      cmocka_unit_test(limit_is_reported),
      cmocka_unit_test(open_rejects_a_file),
      cmocka_unit_test(timing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
