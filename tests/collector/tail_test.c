/* tests/collector/tail_test.c: the file tailer against real files in a fresh
 * mkdtemp directory. The writer side is driven by the tailer's own EOF
 * callback (write the next piece once everything so far was read), so no test
 * sleeps; a deadline timer fails a test that stalls. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/internal.h"

#define MAX_LINES 64

typedef struct got_line {
  char text[64];
  size_t len;
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
  bool truncate_before_piece; /* truncate the file before writing piece 1 */
  bool unlink_at_end;
  bool timed_out;
} tstate;

static void write_file(const char *path, const char *s, int flags) {
  int fd = open(path, O_WRONLY | O_CREAT | flags, 0600);
  assert_true(fd >= 0);
  size_t n = strlen(s);
  assert_int_equal(write(fd, s, n), (ssize_t)n);
  close(fd);
}

static void on_open(col_tail *t, const col_tail_info *info, void *ud) {
  tstate *s = ud;
  s->opens++;
  col__tail_start(t, s->start_off);
}

static void on_line(col_tail *t, const uint8_t *line, size_t len, uint64_t off, uint64_t line_no,
                    void *ud) {
  tstate *s = ud;
  assert_true(s->n_lines < MAX_LINES);
  got_line *g = &s->lines[s->n_lines++];
  g->len = len;
  memcpy(g->text, line, len < sizeof(g->text) - 1 ? len : sizeof(g->text) - 1);
  g->off = off;
  g->line_no = line_no;
}

static void on_truncate(col_tail *t, const col_tail_info *info, void *ud) {
  tstate *s = ud;
  s->truncs++;
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

static const col_tail_cbs cbs = {on_open, on_line, on_truncate, on_eof, on_error, on_close};

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
  assert_int_equal(s.n_lines, 3);
  expect_line(&s, 0, "aaa", 0, 1);
  expect_line(&s, 1, "bbb", 4, 2);
  expect_line(&s, 2, "c", 0, 1);
}

static void tail_caps_an_overlong_line_and_keeps_offsets(void **state) {
  (void)state;
  static const char *const pieces[] = {"0123", "456789abcdef\nx\n"};
  tstate s = {0};
  col_tail_opts o = {.poll_ms = 5, .max_line = 8};
  run_tail(&s, pieces, 2, &o);
  assert_int_equal(s.n_lines, 2);
  expect_line(&s, 0, "01234567", 0, 1);
  expect_line(&s, 1, "x", 17, 2);
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
      cmocka_unit_test(tail_caps_an_overlong_line_and_keeps_offsets),
      cmocka_unit_test(tail_reports_a_deleted_file_after_draining_it),
      cmocka_unit_test(tail_reports_open_failure_through_on_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
