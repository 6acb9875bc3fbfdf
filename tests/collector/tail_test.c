/* tests/collector/tail_test.c: the file tailer against real files in a fresh
 * mkdtemp directory (identity, truncation and rewrite, non-regular files). The writer side is driven by the tailer's own EOF
 * callback (write the next piece once everything so far was read), so no test
 * sleeps; a deadline timer fails a test that stalls. */
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

#define MAX_LINES 64

typedef struct got_line {
  char text[64];
  size_t len, full_len;
  uint64_t off, line_no;
} got_line;

typedef struct tstate {
  uv_loop_t loop;
  uv_timer_t deadline;
  char dir[64], path[128];
  col_tail *t;
  uint64_t start_off;
  got_line lines[MAX_LINES];
  size_t n_lines;
  const char *const *pieces; /* written one per EOF */
  size_t n_pieces, next_piece;
  int opens, truncs, eofs, gone_eofs, errors, closes;
  uint64_t trunc_old_offset;
  cairn_err last_err;
  char err_what[128];
  col_tail_info first_info;
  bool truncate_before_piece; /* truncate the file before writing piece 1 */
  bool unlink_at_end;
  bool timed_out;
  /* copytruncate + refill racing the tailer: replace the file's content with
   * this (longer than what was read) right after the first on_open, before
   * the first read ... */
  const char *rewrite_at_open;
  /* ... or right after the first line was delivered, before the next read */
  const char *rewrite_after_line1;
} tstate;

static void write_file(const char *path, const char *s, int flags) {
  int fd = open(path, O_WRONLY | O_CREAT | flags, 0600);
  assert_true(fd >= 0);
  size_t n = strlen(s);
  assert_int_equal(write(fd, s, n), (ssize_t)n);
  close(fd);
}

static void rewrite(const char *path, const char *s) {
  assert_int_equal(truncate(path, 0), 0);
  write_file(path, s, O_APPEND);
}

static void on_open(col_tail *t, const col_tail_info *info, void *ud) {
  tstate *s = ud;
  if (s->opens++ == 0) s->first_info = *info;
  if (s->opens == 1 && s->rewrite_at_open) rewrite(s->path, s->rewrite_at_open);
  /* a new generation after a truncation starts at 0 */
  col__tail_start(t, s->opens == 1 ? s->start_off : 0);
}

static void on_line(col_tail *t, const uint8_t *line, size_t len, size_t full_len, uint64_t off,
                    uint64_t line_no, void *ud) {
  tstate *s = ud;
  assert_true(s->n_lines < MAX_LINES);
  got_line *g = &s->lines[s->n_lines++];
  g->len = len;
  g->full_len = full_len;
  memcpy(g->text, line, len < sizeof(g->text) - 1 ? len : sizeof(g->text) - 1);
  g->off = off;
  g->line_no = line_no;
  if (s->n_lines == 1 && s->rewrite_after_line1) rewrite(s->path, s->rewrite_after_line1);
}

static void on_truncate(col_tail *t, const col_tail_info *info, uint64_t old_offset, void *ud) {
  tstate *s = ud;
  s->truncs++;
  s->trunc_old_offset = old_offset;
}

static void on_eof(col_tail *t, bool first, bool gone, void *ud) {
  tstate *s = ud;
  s->eofs++;
  if (gone) {
    s->gone_eofs++;
    col__tail_close(t);
    return;
  }
  if (s->next_piece < s->n_pieces) {
    if (s->truncate_before_piece && s->next_piece == 1) assert_int_equal(truncate(s->path, 0), 0);
    write_file(s->path, s->pieces[s->next_piece++], O_APPEND);
  } else if (s->unlink_at_end) {
    assert_int_equal(unlink(s->path), 0);
    s->unlink_at_end = false;
  } else if (s->gone_eofs == 0) {
    col__tail_close(t);
  }
}

static void on_error(col_tail *t, cairn_err err, const char *what, int uv_code, void *ud) {
  tstate *s = ud;
  s->errors++;
  s->last_err = err;
  snprintf(s->err_what, sizeof(s->err_what), "%s", what);
  col__tail_close(t);
}

static void on_close(col_tail *t, void *ud) {
  tstate *s = ud;
  s->closes++;
  s->t = NULL;
  uv_close((uv_handle_t *)&s->deadline, NULL);
}

static void on_deadline(uv_timer_t *h) {
  tstate *s = h->data;
  s->timed_out = true;
  if (s->t) col__tail_close(s->t);
}

static const col_tail_cbs cbs = {on_open, on_line, on_truncate, on_eof, on_error, on_close, NULL};

/* Write pieces[0], tail the file (pieces 1.. written at each EOF), run until closed. */
static void run_tail(tstate *s, const char *const *pieces, size_t n, const col_tail_opts *o) {
  snprintf(s->dir, sizeof(s->dir), "/tmp/cairn-tail-XXXXXX");
  assert_non_null(mkdtemp(s->dir));
  snprintf(s->path, sizeof(s->path), "%s/c.log", s->dir);
  s->pieces = pieces;
  s->n_pieces = n;
  write_file(s->path, pieces[0], O_TRUNC);
  s->next_piece = 1;
  assert_int_equal(uv_loop_init(&s->loop), 0);
  uv_timer_init(&s->loop, &s->deadline);
  s->deadline.data = s;
  uv_timer_start(&s->deadline, on_deadline, 10000, 0);
  col_tail_opts def = {.poll_ms = 5};
  assert_int_equal(col__tail_open(&s->loop, s->path, o ? o : &def, &cbs, s, &s->t), CAIRN_OK);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&s->loop), 0);
  assert_false(s->timed_out);
  assert_int_equal(s->closes, 1);
  unlink(s->path);
  rmdir(s->dir);
}

static void expect_line(const tstate *s, size_t i, const char *text, uint64_t off, uint64_t no) {
  assert_true(i < s->n_lines);
  assert_int_equal(s->lines[i].len, strlen(text));
  assert_string_equal(s->lines[i].text, text);
  assert_int_equal(s->lines[i].off, off);
  assert_int_equal(s->lines[i].line_no, no);
}

static void tail_delivers_appended_lines_once_with_offsets(void **state) {
  (void)state;
  /* the second line is split across three writes; the file ends mid-line */
  static const char *const pieces[] = {"a\nbb", "b", "b\nccc\nd", "dd\n", "eeee", "\n", "tail"};
  tstate s = {0};
  run_tail(&s, pieces, sizeof(pieces) / sizeof(pieces[0]), NULL);
  assert_int_equal(s.opens, 1);
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.n_lines, 5);
  expect_line(&s, 0, "a", 0, 1);
  expect_line(&s, 1, "bbbb", 2, 2);
  expect_line(&s, 2, "ccc", 7, 3);
  expect_line(&s, 3, "ddd", 11, 4);
  expect_line(&s, 4, "eeee", 15, 5); /* "tail" has no newline: held back */
}

static void tail_starts_at_checkpoint_offset_with_line_numbers_from_there(void **state) {
  (void)state;
  static const char *const pieces[] = {"x\nyy\nz\n"};
  tstate s = {.start_off = 2};
  run_tail(&s, pieces, 1, NULL);
  assert_int_equal(s.n_lines, 2);
  expect_line(&s, 0, "yy", 2, 1);
  expect_line(&s, 1, "z", 5, 2);
}

static void tail_small_reads_split_lines_across_chunks(void **state) {
  (void)state;
  static const char *const pieces[] = {"0123456789\nabcdefghij\nk\n"};
  tstate s = {0};
  col_tail_opts o = {.poll_ms = 5, .chunk = 4};
  run_tail(&s, pieces, 1, &o);
  assert_int_equal(s.n_lines, 3);
  expect_line(&s, 0, "0123456789", 0, 1);
  expect_line(&s, 1, "abcdefghij", 11, 2);
  expect_line(&s, 2, "k", 22, 3);
}

static void tail_restarts_at_zero_after_truncation(void **state) {
  (void)state;
  static const char *const pieces[] = {"aaa\nbbb\n", "c\n"};
  tstate s = {.truncate_before_piece = true};
  run_tail(&s, pieces, 2, NULL);
  assert_int_equal(s.truncs, 1);
  assert_int_equal(s.trunc_old_offset, 8);
  assert_int_equal(s.opens, 2); /* the new generation is identified again */
  assert_int_equal(s.n_lines, 3);
  expect_line(&s, 0, "aaa", 0, 1);
  expect_line(&s, 1, "bbb", 4, 2);
  expect_line(&s, 2, "c", 0, 1);
}

static void tail_detects_a_rewrite_past_the_old_offset_by_fingerprint(void **state) {
  (void)state;
  /* truncated and rewritten longer than what was read before the tailer looked */
  static const char *const pieces[] = {"aaaa\n", "bbbbbbbbbbbb\n"};
  tstate s = {.truncate_before_piece = true};
  run_tail(&s, pieces, 2, NULL);
  assert_int_equal(s.truncs, 1);
  assert_int_equal(s.trunc_old_offset, 5);
  assert_int_equal(s.n_lines, 2);
  expect_line(&s, 0, "aaaa", 0, 1);
  expect_line(&s, 1, "bbbbbbbbbbbb", 0, 1);
}

/* The copytruncate race seen under load: the file is identified by its first
 * line, then copied, truncated and refilled past that point before the first
 * read. The refilled bytes are the next generation: they must come as a new
 * generation from offset 0 (identified again), never as lines of the first
 * one (whose lines the collector then takes from the copy). */
static void tail_never_delivers_a_refill_before_the_first_read_as_the_old_generation(void **state) {
  (void)state;
  static const char *const pieces[] = {"gen1-first\ngen1-second\n"};
  tstate s = {.rewrite_at_open = "gen2-first-line\ngen2-second-line\n"};
  run_tail(&s, pieces, 1, NULL);
  assert_int_equal(s.truncs, 1);
  assert_int_equal(s.trunc_old_offset, 0); /* nothing of gen1 was delivered */
  assert_int_equal(s.opens, 2);
  assert_int_equal(s.n_lines, 2);
  expect_line(&s, 0, "gen2-first-line", 0, 1);
  expect_line(&s, 1, "gen2-second-line", 16, 2);
}

/* The same between two reads: after gen1's first line the file is replaced by
 * a longer gen2, so the next read at the old offset returns gen2's bytes
 * while the size never went below the offset. */
static void tail_never_delivers_a_refill_between_reads_as_the_old_generation(void **state) {
  (void)state;
  static const char *const pieces[] = {"aaaa\nbbbb\n"};
  tstate s = {.rewrite_after_line1 = "cccccccccccccccccccc\ndd\n"};
  col_tail_opts o = {.poll_ms = 5, .chunk = 6};
  run_tail(&s, pieces, 1, &o);
  assert_int_equal(s.truncs, 1);
  assert_int_equal(s.trunc_old_offset, 5); /* gen1 ends after "aaaa\n": the copy has the rest */
  assert_int_equal(s.n_lines, 3);
  expect_line(&s, 0, "aaaa", 0, 1);
  expect_line(&s, 1, "cccccccccccccccccccc", 0, 1);
  expect_line(&s, 2, "dd", 21, 2);
}

/* Read to the end, then truncated and refilled to exactly the same size
 * before the next look: the size alone shows nothing. The write event makes
 * the look compare the first bytes (the poll is too slow to matter here). */
static void tail_detects_a_same_size_refill_on_a_write_event(void **state) {
  (void)state;
  static const char *const pieces[] = {"aaaa\n", "bbbb\n"};
  tstate s = {.truncate_before_piece = true};
  col_tail_opts o = {.poll_ms = 60000, .watch = true};
  run_tail(&s, pieces, 2, &o);
  assert_int_equal(s.truncs, 1);
  assert_int_equal(s.trunc_old_offset, 5);
  assert_int_equal(s.n_lines, 2);
  expect_line(&s, 0, "aaaa", 0, 1);
  expect_line(&s, 1, "bbbb", 0, 1);
}

static void tail_identifies_a_file_only_once_its_first_line_is_complete(void **state) {
  (void)state;
  static const char *const pieces[] = {"", "ab", "c\nd\n"};
  tstate s = {0};
  run_tail(&s, pieces, 3, NULL);
  assert_int_equal(s.opens, 1);
  assert_int_equal(s.first_info.fp_len, 4);
  assert_memory_equal(s.first_info.fp, "abc\n", 4);
  assert_int_equal(s.n_lines, 2);
  expect_line(&s, 0, "abc", 0, 1);
  expect_line(&s, 1, "d", 4, 2);
}

static void tail_fingerprint_is_capped_without_a_newline(void **state) {
  (void)state;
  char big[200];
  memset(big, 'x', 150);
  big[150] = '\n';
  big[151] = '\0';
  const char *const pieces[] = {big};
  tstate s = {0};
  run_tail(&s, pieces, 1, NULL);
  assert_int_equal(s.opens, 1);
  assert_int_equal(s.first_info.fp_len, COL_FP_MAX);
  assert_int_equal(s.n_lines, 1);
}

/* Open path (not a regular file) and expect on_error with CAIRN_E_INVAL naming kind. */
static void expect_not_regular(const char *path, const char *kind) {
  tstate s = {0};
  assert_int_equal(uv_loop_init(&s.loop), 0);
  uv_timer_init(&s.loop, &s.deadline);
  s.deadline.data = &s;
  uv_timer_start(&s.deadline, on_deadline, 10000, 0);
  assert_int_equal(col__tail_open(&s.loop, path, NULL, &cbs, &s, &s.t), CAIRN_OK);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&s.loop), 0);
  assert_false(s.timed_out);
  assert_int_equal(s.errors, 1);
  assert_int_equal(s.last_err, CAIRN_E_INVAL);
  assert_non_null(strstr(s.err_what, kind));
  assert_int_equal(s.opens, 0);
  assert_int_equal(s.closes, 1);
}

static void tail_rejects_a_fifo_without_blocking(void **state) {
  (void)state;
  char dir[] = "/tmp/cairn-tail-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof(path), "%s/fifo.log", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  expect_not_regular(path, "FIFO"); /* no writer: a blocking open would hang here */
  unlink(path);
  rmdir(dir);
}

static void tail_rejects_a_directory(void **state) {
  (void)state;
  char dir[] = "/tmp/cairn-tail-XXXXXX";
  assert_non_null(mkdtemp(dir));
  expect_not_regular(dir, "directory");
  rmdir(dir);
}

static void tail_caps_an_overlong_line_and_keeps_offsets(void **state) {
  (void)state;
  static const char *const pieces[] = {"0123", "456789abcdef\nx\n"};
  tstate s = {0};
  col_tail_opts o = {.poll_ms = 5, .max_line = 8};
  run_tail(&s, pieces, 2, &o);
  assert_int_equal(s.n_lines, 2);
  expect_line(&s, 0, "01234567", 0, 1);
  assert_int_equal(s.lines[0].full_len, 16); /* the real length, for the log message */
  expect_line(&s, 1, "x", 17, 2);
  assert_int_equal(s.lines[1].full_len, 1);
}

static void tail_reports_a_deleted_file_after_draining_it(void **state) {
  (void)state;
  static const char *const pieces[] = {"one\n", "two\n"};
  tstate s = {.unlink_at_end = true};
  run_tail(&s, pieces, 2, NULL);
  assert_int_equal(s.gone_eofs, 1);
  assert_int_equal(s.n_lines, 2);
  expect_line(&s, 1, "two", 4, 2);
}

/* With opts.watch a write is read at once although the poll is a minute away
 * (the 10 s deadline would fail the test): four writes, then a deletion
 * (nlink drops to 0: an attribute event) that closes the tail. */
static void tail_reads_on_change_without_waiting_for_the_poll(void **state) {
  (void)state;
  static const char *const pieces[] = {"first\n", "a\n", "b\n", "c\n", "d\n"};
  tstate s = {.unlink_at_end = true};
  col_tail_opts o = {.poll_ms = 60000, .watch = true};
  uint64_t t0 = uv_hrtime();
  run_tail(&s, pieces, 5, &o);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.gone_eofs, 1);
  assert_int_equal(s.n_lines, 5);
  expect_line(&s, 4, "d", 12, 5);
  assert_true(ms < 5000); /* each of the 5 steps would otherwise wait 60 s */
}

static void tail_reports_open_failure_through_on_error(void **state) {
  (void)state;
  tstate s = {0};
  assert_int_equal(uv_loop_init(&s.loop), 0);
  uv_timer_init(&s.loop, &s.deadline);
  s.deadline.data = &s;
  uv_timer_start(&s.deadline, on_deadline, 10000, 0);
  assert_int_equal(col__tail_open(&s.loop, "/nonexistent/cairn/x.log", NULL, &cbs, &s, &s.t),
                   CAIRN_OK);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&s.loop), 0);
  assert_int_equal(s.errors, 1);
  assert_int_equal(s.opens, 0);
  assert_int_equal(s.closes, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tail_delivers_appended_lines_once_with_offsets),
      cmocka_unit_test(tail_starts_at_checkpoint_offset_with_line_numbers_from_there),
      cmocka_unit_test(tail_small_reads_split_lines_across_chunks),
      cmocka_unit_test(tail_restarts_at_zero_after_truncation),
      cmocka_unit_test(tail_detects_a_rewrite_past_the_old_offset_by_fingerprint),
      cmocka_unit_test(tail_never_delivers_a_refill_before_the_first_read_as_the_old_generation),
      cmocka_unit_test(tail_never_delivers_a_refill_between_reads_as_the_old_generation),
      cmocka_unit_test(tail_detects_a_same_size_refill_on_a_write_event),
      cmocka_unit_test(tail_identifies_a_file_only_once_its_first_line_is_complete),
      cmocka_unit_test(tail_fingerprint_is_capped_without_a_newline),
      cmocka_unit_test(tail_rejects_a_fifo_without_blocking),
      cmocka_unit_test(tail_rejects_a_directory),
      cmocka_unit_test(tail_caps_an_overlong_line_and_keeps_offsets),
      cmocka_unit_test(tail_reports_a_deleted_file_after_draining_it),
      cmocka_unit_test(tail_reports_open_failure_through_on_error),
      cmocka_unit_test(tail_reads_on_change_without_waiting_for_the_poll),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
