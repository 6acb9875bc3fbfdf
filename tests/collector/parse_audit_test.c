/* tests/collector/parse_audit_test.c: the auditd parser
 * (collector/parse_audit.c, parse_audit_fields.c) through the streaming API:
 * every row of the RAW and ENRICHED corpus files field by field (attrs, message
 * bytes, the rendered row), summary counts, plus event ending (EOE, PROCTITLE,
 * timeout flush, stamp-time expiry), interleaving, safe offsets, bad lines,
 * long lines, serial gaps and a throughput run. */
#include <time.h>

#include "parse_corpus.h"

/* ---- corpus ---- */

typedef struct file_lines {
  uint8_t *data; /* owned */
  const uint8_t **line;
  size_t *len;
  size_t n;
} file_lines;

static void file_lines_load(const char *path, file_lines *fl) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long sz = ftell(f);
  rewind(f);
  fl->data = malloc((size_t)sz + 1);
  assert_non_null(fl->data);
  assert_int_equal(fread(fl->data, 1, (size_t)sz, f), (size_t)sz);
  fclose(f);
  fl->n = 0;
  fl->line = calloc((size_t)sz + 1, sizeof(*fl->line));
  fl->len = calloc((size_t)sz + 1, sizeof(*fl->len));
  size_t start = 0;
  for (size_t i = 0; i < (size_t)sz; i++) {
    if (fl->data[i] != '\n') continue;
    fl->line[fl->n] = fl->data + start;
    fl->len[fl->n++] = i - start;
    start = i + 1;
  }
}

static void file_lines_free(file_lines *fl) {
  free(fl->data);
  free(fl->line);
  free(fl->len);
}

static int by_first_line(const void *a, const void *b) {
  const stored_rec *x = a, *y = b;
  return x->r.first_line < y->r.first_line ? -1 : x->r.first_line > y->r.first_line;
}

/* The message must be the event's lines joined with '\n'. */
static void expect_msg_is_lines(const char *rel, size_t row, const stored_rec *c, json_t *lines,
                                const file_lines *fl) {
  size_t want = 0;
  for (size_t i = 0; i < json_array_size(lines); i++)
    want += fl->len[json_integer_value(json_array_get(lines, i)) - 1] + (i ? 1 : 0);
  if (c->r.msg_len != want)
    fail_msg("%s row %zu: message %zu bytes, want %zu", rel, row, c->r.msg_len, want);
  size_t pos = 0;
  for (size_t i = 0; i < json_array_size(lines); i++) {
    size_t ln = (size_t)json_integer_value(json_array_get(lines, i)) - 1;
    if (i) assert_int_equal(c->msg[pos++], '\n');
    assert_memory_equal(c->msg + pos, fl->line[ln], fl->len[ln]);
    pos += fl->len[ln];
  }
}

/* attrs of an audit event against its expected row. */
static void expect_audit_attrs(const char *rel, size_t row, const stored_rec *c, json_t *w) {
  expect_attr(rel, row, c, "serial", json_object_get(w, "serial"));
  char types[512] = "";
  json_t *t;
  size_t i;
  json_array_foreach(json_object_get(w, "types"), i, t) {
    if (i) strcat(types, ",");
    strcat(types, json_string_value(t));
  }
  assert_string_equal(rec_attr(c, "types", 0), types);
  assert_string_equal(rec_attr(c, "complete", 0),
                      json_is_true(json_object_get(w, "complete")) ? "true" : "false");
  static const char *const same[] = {"node", "uid",  "auid", "pid", "arch",     "syscall",
                                     "exit", "comm", "exe",  "sig", "proctitle"};
  for (i = 0; i < sizeof(same) / sizeof(same[0]); i++)
    expect_attr(rel, row, c, same[i], json_object_get(w, same[i]));
  /* without a CWD record, the cwd attr is the one inside msg='...' (USER_CMD)
   */
  json_t *cwd = json_object_get(w, "cwd");
  if (json_is_null(cwd)) cwd = json_object_get(json_object_get(w, "user_msg"), "cwd");
  expect_attr(rel, row, c, "cwd", cwd);
  json_t *succ = json_object_get(w, "success");
  json_t *ws = json_is_null(succ) ? json_null() : json_string(json_is_true(succ) ? "yes" : "no");
  expect_attr(rel, row, c, "success", ws);
  json_decref(ws);
  json_t *keys = json_object_get(w, "keys");
  assert_int_equal(rec_attr_count(c, "key"), json_array_size(keys));
  json_array_foreach(keys, i, t) assert_string_equal(rec_attr(c, "key", i), json_string_value(t));
  json_t *paths = json_object_get(w, "paths");
  assert_int_equal(rec_attr_count(c, "path"), json_array_size(paths));
  json_array_foreach(paths, i, t) {
    char want[4096];
    json_t *name = json_object_get(t, "name");
    snprintf(want, sizeof(want), "%s:%s", json_is_null(name) ? "(null)" : json_string_value(name),
             json_string_value(json_object_get(t, "nametype")));
    assert_string_equal(rec_attr(c, "path", i), want);
  }
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(w, "user_msg"), k, v) {
    if (strcmp(k, "exe") == 0) continue; /* the event's exe attr */
    expect_attr(rel, row, c, k, v);
    assert_int_equal(rec_attr_count(c, k), 1);
  }
  json_object_foreach(json_object_get(w, "enriched"), k, v) expect_attr(rel, row, c, k, v);
}

static int by_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The gap records (in first-line order) must be exactly the holes between
 * the sorted serials of the expected events (the corpus has one node). */
static void expect_gaps_from_serials(const char *rel, json_t **rows, size_t nrows,
                                     const rec_store *gaps) {
  uint64_t ser[256];
  size_t n = 0;
  for (size_t i = 0; i < nrows && n < 256; i++) {
    json_t *s = json_object_get(rows[i], "serial");
    if (json_is_integer(s)) ser[n++] = (uint64_t)json_integer_value(s);
  }
  qsort(ser, n, sizeof(ser[0]), by_u64);
  size_t g = 0;
  for (size_t i = 1; i < n; i++) {
    if (ser[i] <= ser[i - 1] + 1) continue;
    if (g >= gaps->n) fail_msg("%s: no gap record for serials after %llu", rel,
                               (unsigned long long)ser[i - 1]);
    char want[32];
    snprintf(want, sizeof(want), "%llu", (unsigned long long)(ser[i - 1] + 1));
    assert_string_equal(rec_attr(&gaps->v[g], "serial_first", 0), want);
    snprintf(want, sizeof(want), "%llu", (unsigned long long)(ser[i] - 1));
    assert_string_equal(rec_attr(&gaps->v[g], "serial_last", 0), want);
    assert_string_equal(rec_attr(&gaps->v[g], "type", 0), "CAIRN_AUDIT_GAP");
    assert_int_equal(gaps->v[g].r.audit_lost, ser[i] - ser[i - 1] - 1);
    assert_int_equal(gaps->v[g].r.source, CAIRN__SOURCE__SOURCE_AUDIT);
    g++;
  }
  if (g != gaps->n) fail_msg("%s: %zu gap records, the serials have %zu holes", rel, gaps->n, g);
}

static void check_audit_stream(const char *rel, json_t *summary) {
  char in[4096], exp[4096];
  corpus_path(in, sizeof(in), "", rel, "");
  corpus_path(exp, sizeof(exp), "expected/", rel, ".jsonl");
  size_t nrows;
  json_t **rows = load_jsonl(exp, &nrows);
  file_lines fl;
  file_lines_load(in, &fl);
  col_parser *p;
  assert_int_equal(col_parser_new(CAIRN__FORMAT__FORMAT_AUDITD, 0, &p), CAIRN_OK);
  rec_store st = {0};
  uint64_t nlines = feed_file(p, in, &st);
  assert_int_equal(col_parser_flush(p, true, rec_store_cb, &st), CAIRN_OK);
  assert_int_equal(col_parser_audit_pending(p), 0);
  struct stat sb;
  assert_int_equal(stat(in, &sb), 0);
  assert_int_equal(col_parser_safe_offset(p, (uint64_t)sb.st_size), (uint64_t)sb.st_size);

  /* emission order: strictly increasing end offsets (the aggregator's dedupe
   * drops a record that ends at or before one it stored) */
  for (size_t i = 1; i < st.n; i++)
    if (st.v[i].r.end_offset <= st.v[i - 1].r.end_offset)
      fail_msg("%s: record %zu ends at %llu, not after record %zu (%llu)", rel, i + 1,
               (unsigned long long)st.v[i].r.end_offset, i,
               (unsigned long long)st.v[i - 1].r.end_offset);
  /* the corpus is in first-line order */
  qsort(st.v, st.n, sizeof(*st.v), by_first_line);
  /* serial gap records are not corpus rows: set them aside, check them against
   * the holes in the expected serials */
  rec_store gaps = {0};
  size_t kept = 0;
  for (size_t i = 0; i < st.n; i++) {
    if (st.v[i].r.audit_lost) {
      if (gaps.n == gaps.cap) {
        gaps.cap = gaps.cap ? 2 * gaps.cap : 16;
        gaps.v = realloc(gaps.v, gaps.cap * sizeof(*gaps.v));
        assert_non_null(gaps.v);
      }
      gaps.v[gaps.n++] = st.v[i];
    } else {
      st.v[kept++] = st.v[i];
    }
  }
  st.n = kept;
  expect_gaps_from_serials(rel, rows, nrows, &gaps);
  if (st.n != nrows) fail_msg("%s: %zu records, expected %zu rows", rel, st.n, nrows);
  uint64_t events = 0, records = 0, unparsed = 0;
  uint64_t malformed[64];
  for (size_t i = 0; i < nrows; i++) {
    const stored_rec *c = &st.v[i];
    json_t *w = rows[i];
    assert_int_equal(c->r.source, CAIRN__SOURCE__SOURCE_AUDIT);
    if (json_is_true(json_object_get(w, "unparsed"))) {
      assert_int_equal(c->r.flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED,
                       CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED);
      row_ctx rc = {.rel = rel, .row = i + 1};
      expect_int(&rc, w, "line", (long long)c->r.first_line);
      expect_bytes(&rc, w, "raw", "raw_b64", c->msg, c->r.msg_len);
      assert_int_equal(c->n_attrs, 0);
      assert_null(c->row);
      malformed[unparsed++] = c->r.first_line;
      continue;
    }
    assert_int_equal(c->r.flags, 0);
    assert_non_null(c->row);
    expect_row_equal(rel, i + 1, c->row, w);
    json_t *lines = json_object_get(w, "lines");
    size_t nl = json_array_size(lines);
    assert_int_equal(c->r.time_ns, json_integer_value(json_object_get(w, "time_ns")));
    assert_int_equal(c->r.first_line, json_integer_value(json_array_get(lines, 0)));
    assert_int_equal(c->r.last_line, json_integer_value(json_array_get(lines, nl - 1)));
    assert_int_equal(c->r.fragments, json_integer_value(json_object_get(w, "record_count")));
    assert_int_equal(c->r.stream, CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN);
    expect_msg_is_lines(rel, i + 1, c, lines, &fl);
    expect_audit_attrs(rel, i + 1, c, w);
    events++;
    records += c->r.fragments;
  }
  json_t *s = json_object_get(summary, rel);
  assert_non_null(s);
  assert_int_equal(events, json_integer_value(json_object_get(s, "events")));
  assert_int_equal(records, json_integer_value(json_object_get(s, "records")));
  assert_int_equal(unparsed, json_integer_value(json_object_get(s, "unparsed")));
  assert_int_equal(nlines, json_integer_value(json_object_get(s, "physical_lines")));
  expect_summary_list(rel, json_object_get(s, "malformed_lines"), NULL, malformed, unparsed);
  assert_true(json_is_null(json_object_get(s, "incomplete_tail")));

  /* the file driver's summary agrees */
  col_file_summary sum;
  char err[256];
  rec_store st2 = {0};
  assert_int_equal(col__parse_file(CAIRN__FORMAT__FORMAT_AUDITD, 0, in, rec_store_cb, &st2, &sum,
                                   err, sizeof(err)),
                   CAIRN_OK);
  assert_int_equal(sum.events, events);
  assert_int_equal(sum.records, records);
  assert_int_equal(sum.unparsed, unparsed);
  assert_int_equal(sum.physical_lines, nlines);
  assert_int_equal(sum.safe_offset, (uint64_t)sb.st_size);
  assert_int_equal(sum.gaps, gaps.n);
  rec_store_clear(&gaps);
  rec_store_clear(&st2);
  rec_store_clear(&st);
  col_parser_free(p);
  file_lines_free(&fl);
  free_rows(rows, nrows);
}

static void audit_raw_corpus_matches_expected(void **state) {
  (void)state;
  json_t *summary = load_summary();
  check_audit_stream("audit/audit.log", summary);
  json_decref(summary);
}

static void audit_enriched_corpus_matches_expected(void **state) {
  (void)state;
  json_t *summary = load_summary();
  check_audit_stream("audit/audit-enriched.log", summary);
  json_decref(summary);
}

/* ---- hand-written events ---- */

#define SC(stamp, rest)                      \
  "type=SYSCALL msg=audit(" stamp            \
  "): arch=c000003e syscall=59 success=yes " \
  "exit=0 ppid=1 pid=7 auid=1000 uid=0 comm=\"sh\" exe=\"/bin/sh\" " rest
#define REC(type, stamp, rest) "type=" type " msg=audit(" stamp "): " rest

static void feed_store(feeder *f, rec_store *st, const char *line) {
  size_t n = strlen(line);
  assert_int_equal(
      col_parser_line(f->p, (const uint8_t *)line, n, f->off, ++f->line_no, rec_store_cb, st),
      CAIRN_OK);
  f->off += n + 1;
}

static void audit_timeout_flush_splits_event(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  feed_store(&f, &st, SC("1700000000.100:10", "key=\"k\""));
  feed_store(&f, &st, REC("CWD", "1700000000.100:10", "cwd=\"/\""));
  assert_int_equal(st.n, 0);
  assert_int_equal(col_parser_audit_pending(f.p), 1);
  /* no PROCTITLE yet: the event does not look complete */
  assert_int_equal(col_parser_flush(f.p, false, rec_store_cb, &st), CAIRN_OK);
  assert_int_equal(st.n, 0);
  /* the idle timeout: emitted as it is, incomplete */
  assert_int_equal(col_parser_flush(f.p, true, rec_store_cb, &st), CAIRN_OK);
  assert_int_equal(st.n, 1);
  assert_string_equal(rec_attr(&st.v[0], "types", 0), "SYSCALL,CWD");
  assert_string_equal(rec_attr(&st.v[0], "complete", 0), "false");
  assert_string_equal(rec_attr(&st.v[0], "key", 0), "k");
  assert_false(json_is_true(json_object_get(st.v[0].row, "complete")));
  assert_int_equal(col_parser_safe_offset(f.p, f.off), f.off);
  /* a late record of the same stamp starts a new event */
  feed_store(&f, &st, REC("PATH", "1700000000.100:10", "item=0 name=\"/x\" nametype=NORMAL"));
  assert_int_equal(col_parser_flush(f.p, true, rec_store_cb, &st), CAIRN_OK);
  assert_int_equal(st.n, 2);
  assert_string_equal(rec_attr(&st.v[1], "types", 0), "PATH");
  assert_string_equal(rec_attr(&st.v[1], "path", 0), "/x:NORMAL");
  assert_int_equal(st.v[1].r.first_line, 3);
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void audit_stale_event_ends_two_seconds_later(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  feed_store(&f, &st, SC("1700000000.100:10", "key=(null)"));
  feed_store(&f, &st, SC("1700000001.000:11", "key=(null)"));
  assert_int_equal(st.n, 0); /* 0.9 s later: still waiting */
  feed_store(&f, &st, SC("1700000002.100:12", "key=(null)"));
  assert_int_equal(st.n, 1); /* 2 s after serial 10 */
  assert_string_equal(rec_attr(&st.v[0], "serial", 0), "10");
  assert_int_equal(col_parser_audit_pending(f.p), 2);
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void audit_interleaved_events_without_eoe(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  feed_store(&f, &st, SC("1700000000.100:20", "key=\"a\""));
  feed_store(&f, &st, SC("1700000000.100:21", "key=\"b\""));
  feed_store(&f, &st, REC("CWD", "1700000000.100:21", "cwd=\"/b\""));
  feed_store(&f, &st, REC("CWD", "1700000000.100:20", "cwd=\"/a\""));
  feed_store(&f, &st, REC("PROCTITLE", "1700000000.100:21", "proctitle=\"b\""));
  feed_store(&f, &st, REC("PROCTITLE", "1700000000.100:20", "proctitle=6100782079"));
  assert_int_equal(st.n, 0); /* both ready, a late EOE may still join */
  assert_int_equal(col_parser_audit_pending(f.p), 2);
  /* the next event ends both, in the order of their last lines (dedupe needs
   * increasing end offsets): 21 (last line 5) before 20 (last line 6) */
  feed_store(&f, &st, SC("1700000000.200:22", "key=\"c\""));
  assert_int_equal(st.n, 2);
  assert_string_equal(rec_attr(&st.v[1], "serial", 0), "20");
  assert_string_equal(rec_attr(&st.v[1], "cwd", 0), "/a");
  assert_string_equal(rec_attr(&st.v[1], "proctitle", 0), "a x y");
  assert_string_equal(rec_attr(&st.v[1], "types", 0), "SYSCALL,CWD,PROCTITLE");
  assert_string_equal(rec_attr(&st.v[1], "complete", 0), "false");
  assert_int_equal(st.v[1].r.first_line, 1);
  assert_int_equal(st.v[1].r.last_line, 6);
  assert_int_equal(st.v[1].r.fragments, 3);
  assert_string_equal(
      (const char *)st.v[1].msg,
      SC("1700000000.100:20", "key=\"a\"") "\n" REC(
          "CWD", "1700000000.100:20", "cwd=\"/a\"") "\n" REC("PROCTITLE", "1700000000.100:20",
                                                             "proctitle=6100782079"));
  assert_string_equal(rec_attr(&st.v[0], "serial", 0), "21");
  assert_string_equal(rec_attr(&st.v[0], "cwd", 0), "/b");
  assert_int_equal(st.v[0].r.first_line, 2);
  assert_int_equal(st.v[0].r.last_line, 5);
  assert_true(st.v[0].r.end_offset < st.v[1].r.end_offset);
  json_t *argv = json_object_get(st.v[1].row, "proctitle_argv");
  assert_int_equal(json_array_size(argv), 2);
  assert_string_equal(json_string_value(json_array_get(argv, 1)), "x y");
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void audit_safe_offset_holds_pending_event(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  feed_store(&f, &st,
             REC("USER_LOGIN", "1700000000.000:30",
                 "pid=1 uid=0 auid=5 ses=1 msg='op=login acct=\"bob\" res=success'"));
  assert_int_equal(st.n, 1); /* userspace records are events of their own */
  assert_int_equal(col_parser_safe_offset(f.p, f.off), f.off);
  uint64_t start = f.off;
  feed_store(&f, &st, SC("1700000000.100:31", "key=(null)"));
  feed_store(
      &f, &st,
      REC("USER_CMD", "1700000000.150:32", "pid=1 uid=0 auid=5 ses=1 msg='cmd=6C73 res=success'"));
  feed_store(&f, &st, REC("CWD", "1700000000.100:31", "cwd=\"/\""));
  assert_int_equal(st.n, 2);
  assert_string_equal(rec_attr(&st.v[1], "cmd", 0), "ls");
  assert_int_equal(col_parser_safe_offset(f.p, f.off), start);
  feed_store(&f, &st, REC("EOE", "1700000000.100:31", ""));
  assert_int_equal(st.n, 3);
  assert_string_equal(rec_attr(&st.v[2], "complete", 0), "true");
  assert_int_equal(st.v[2].r.end_offset, f.off);
  assert_int_equal(col_parser_safe_offset(f.p, f.off), f.off);
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void audit_garbage_lines_do_not_disturb_events(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  static const uint8_t bin[] = {0x00, 0xff, 't', 'y', 'p', 'e', '=', 0x1d, 0x80};
  feed_store(&f, &st, SC("1700000000.100:40", "key=\"g\""));
  assert_int_equal(col_parser_line(f.p, bin, sizeof(bin), f.off, ++f.line_no, rec_store_cb, &st),
                   CAIRN_OK);
  f.off += sizeof(bin) + 1;
  feed_store(&f, &st, REC("EXECVE", "1700000000.100:40", "argc=2 a0=\"ls\" a1=2D6C"));
  feed_store(&f, &st, "type=PATH msg=audit(1700000000.100:");
  feed_store(&f, &st, "type=PATH msg=audit(abc.100:40): item=0");
  feed_store(&f, &st, "");
  feed_store(&f, &st, REC("PROCTITLE", "1700000000.100:40", "proctitle=6C73002D6C"));
  feed_store(&f, &st, REC("EOE", "1700000000.100:40", ""));
  assert_int_equal(st.n, 5);
  for (size_t i = 0; i < 4; i++) {
    assert_true(st.v[i].r.flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED);
    assert_int_equal(st.v[i].r.source, CAIRN__SOURCE__SOURCE_AUDIT);
  }
  assert_int_equal(st.v[0].r.first_line, 2);
  assert_true(st.v[0].r.flags & CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8);
  assert_int_equal(st.v[0].r.msg_len, sizeof(bin));
  const stored_rec *ev = &st.v[4];
  assert_int_equal(ev->r.flags, 0);
  assert_string_equal(rec_attr(ev, "types", 0), "SYSCALL,EXECVE,PROCTITLE,EOE");
  assert_string_equal(rec_attr(ev, "proctitle", 0), "ls -l");
  json_t *argv = json_object_get(ev->row, "execve_argv");
  assert_int_equal(json_array_size(argv), 2);
  assert_string_equal(json_string_value(json_array_get(argv, 1)), "-l");
  assert_int_equal(ev->r.fragments, 4);
  json_t *lines = json_object_get(ev->row, "lines");
  assert_int_equal(json_integer_value(json_array_get(lines, 2)), 7);
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void audit_long_execve_line_and_truncation(void **state) {
  (void)state;
  /* one EXECVE line of ~100 KB: a1 in two hex chunks of 25,000 bytes each */
  size_t half = 25000;
  cairn_buf line;
  cairn_buf_init(&line);
  const char *head =
      "type=EXECVE msg=audit(1700000000.100:50): argc=2 "
      "a0=\"echo\" a1_len=50000 a1[0]=";
  assert_int_equal(cairn_buf_append_str(&line, head), CAIRN_OK);
  for (size_t i = 0; i < half; i++) assert_int_equal(cairn_buf_append(&line, "41", 2), CAIRN_OK);
  assert_int_equal(cairn_buf_append_str(&line, " a1[1]="), CAIRN_OK);
  for (size_t i = 0; i < half; i++) assert_int_equal(cairn_buf_append(&line, "42", 2), CAIRN_OK);
  assert_true(line.len > 100000);

  for (int round = 0; round < 2; round++) {
    feeder f;
    size_t max = round ? 4096 : 0;
    feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, max);
    rec_store st = {0};
    feed_store(&f, &st, SC("1700000000.100:50", "key=(null)"));
    assert_int_equal(
        col_parser_line(f.p, line.ptr, line.len, f.off, ++f.line_no, rec_store_cb, &st), CAIRN_OK);
    f.off += line.len + 1;
    feed_store(&f, &st, REC("EOE", "1700000000.100:50", ""));
    assert_int_equal(st.n, 1);
    const stored_rec *c = &st.v[0];
    json_t *argv = json_object_get(c->row, "execve_argv");
    assert_int_equal(json_array_size(argv), 2);
    const char *a1 = json_string_value(json_array_get(argv, 1));
    assert_int_equal(strlen(a1), 2 * half);
    assert_int_equal(a1[0], 'A');
    assert_int_equal(a1[half], 'B');
    size_t full = strlen(SC("1700000000.100:50", "key=(null)")) + 1 + line.len + 1 +
                  strlen(REC("EOE", "1700000000.100:50", ""));
    assert_int_equal(c->r.full_len, full);
    if (round) {
      assert_int_equal(c->r.msg_len, 4096);
      assert_int_equal(c->r.flags, CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED);
    } else {
      assert_int_equal(c->r.msg_len, full);
      assert_int_equal(c->r.flags, 0);
    }
    rec_store_clear(&st);
    feeder_fini(&f);
  }
  cairn_buf_fini(&line);
}

static void audit_config_change_joins_or_stands_alone(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  feed_store(&f, &st,
             REC("CONFIG_CHANGE", "1700000000.100:60",
                 "auid=1000 ses=1 op=add_rule key=\"w\" list=4 res=1"));
  feed_store(&f, &st, SC("1700000000.100:60", "key=(null)"));
  feed_store(&f, &st,
             REC("CONFIG_CHANGE", "1700000001.000:61",
                 "op=set audit_backlog_limit=8192 old=64 auid=4294967295 res=1"));
  assert_int_equal(st.n, 0); /* the SYSCALL event waits for its PROCTITLE/EOE */
  feed_store(&f, &st,
             REC("ANOM_ABEND", "1700000009.000:62",
                 "auid=1 uid=1 pid=9 comm=\"x\" exe=\"/x\" sig=11 res=1"));
  /* serial 60 is now 8.9 s old; the lone CONFIG_CHANGE has a later event after
   * it */
  assert_int_equal(st.n, 2);
  assert_string_equal(rec_attr(&st.v[0], "types", 0), "CONFIG_CHANGE,SYSCALL");
  assert_string_equal(rec_attr(&st.v[0], "key", 0), "w");
  assert_string_equal(rec_attr(&st.v[0], "uid", 0), "0");
  assert_string_equal(rec_attr(&st.v[1], "types", 0), "CONFIG_CHANGE");
  assert_string_equal(rec_attr(&st.v[1], "complete", 0), "true");
  assert_string_equal(rec_attr(&st.v[1], "success", 0), "yes");
  assert_null(rec_attr(&st.v[1], "uid", 0));
  /* a lone record looks complete: flush(false) emits it */
  assert_int_equal(col_parser_flush(f.p, false, rec_store_cb, &st), CAIRN_OK);
  assert_int_equal(st.n, 3);
  assert_string_equal(rec_attr(&st.v[2], "sig", 0), "11");
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void audit_node_prefix_and_multiple_keys(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  /* key "a\x01b" is hex: 610162; same stamp from another node is another event
   */
  feed_store(&f, &st, "node=web-1 " SC("1700000000.100:70", "key=610162"));
  feed_store(&f, &st, "node=web-2 " SC("1700000000.100:70", "key=\"c\""));
  feed_store(&f, &st, "node=web-1 " REC("EOE", "1700000000.100:70", ""));
  feed_store(&f, &st, "node=web-2 " REC("EOE", "1700000000.100:70", ""));
  assert_int_equal(st.n, 2);
  assert_string_equal(rec_attr(&st.v[0], "node", 0), "web-1");
  assert_int_equal(rec_attr_count(&st.v[0], "key"), 2);
  assert_string_equal(rec_attr(&st.v[0], "key", 0), "a");
  assert_string_equal(rec_attr(&st.v[0], "key", 1), "b");
  assert_string_equal(rec_attr(&st.v[1], "node", 0), "web-2");
  assert_string_equal(json_string_value(json_object_get(st.v[1].row, "node")), "web-2");
  rec_store_clear(&st);
  feeder_fini(&f);
}

/* ---- the aggregator's dedupe, simulated ---- */

/* What storage keeps of one file stream: a record is stored only if its
 * end_offset is above the highest stored so far (storage/write.c). Each
 * stored record marks the physical lines it holds. */
typedef struct dedupe_sim {
  uint64_t hwm;
  bool have;
  size_t stored, dropped;
  unsigned *line_hits; /* per physical line (1-based), times stored */
  size_t nlines;
  uint64_t gap_records;
} dedupe_sim;

static void dedupe_cb(const col_rec *r, void *ud) {
  dedupe_sim *d = ud;
  if (d->have && r->end_offset <= d->hwm) {
    d->dropped++;
    return;
  }
  d->have = true;
  d->hwm = r->end_offset;
  d->stored++;
  if (r->audit_lost) {
    d->gap_records++;
    return;
  }
  if (r->audit) {
    const uint64_t *ln = (const uint64_t *)r->audit->lines.ptr;
    for (size_t i = 0; i < r->audit->lines.len / sizeof(*ln); i++) {
      assert_true(ln[i] >= 1 && ln[i] <= d->nlines);
      d->line_hits[ln[i]]++;
    }
  } else {
    d->line_hits[r->first_line]++;
  }
}

/* The bug this guards against: event 20 starts first but its last record
 * (line 5) comes after the whole of event 21 (lines 2-4); 21 is over first and
 * was shipped first, so 20 (end offset below 21's) was dropped by dedupe. */
static void audit_out_of_order_completion_is_not_dropped_by_dedupe(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  dedupe_sim d = {.nlines = 8};
  d.line_hits = calloc(d.nlines + 1, sizeof(unsigned));
  static const char *const lines[] = {
      SC("1700000000.100:20", "key=\"a\""),
      SC("1700000000.100:21", "key=\"b\""),
      REC("PROCTITLE", "1700000000.100:21", "proctitle=\"b\""),
      REC("USER_CMD", "1700000000.150:22", "pid=1 uid=0 auid=5 ses=1 msg='cmd=6C73 res=success'"),
      REC("CWD", "1700000000.100:20", "cwd=\"/a\""),
      "garbage between events",
      SC("1700000000.300:23", "key=\"c\""),
      REC("PROCTITLE", "1700000000.300:23", "proctitle=\"c\""),
  };
  for (size_t i = 0; i < 8; i++) {
    size_t n = strlen(lines[i]);
    assert_int_equal(col_parser_line(f.p, (const uint8_t *)lines[i], n, f.off, ++f.line_no,
                                     dedupe_cb, &d),
                     CAIRN_OK);
    f.off += n + 1;
  }
  assert_int_equal(col_parser_flush(f.p, true, dedupe_cb, &d), CAIRN_OK);
  assert_int_equal(d.dropped, 0);
  assert_int_equal(d.stored, 5); /* events 20, 21, 22, 23 and the garbage line */
  for (size_t i = 1; i <= d.nlines; i++) assert_int_equal(d.line_hits[i], 1);
  free(d.line_hits);
  feeder_fini(&f);
}

/* A generated audit.log: events of 1-5 records whose lines interleave with
 * up to 3 other events, some without PROCTITLE (ended by the 2 s timeout),
 * userspace records, EOEs, garbage lines, serial holes and pairs of events
 * logged in reverse serial order (two CPUs). Lines are
 * malloc'ed into out (caller frees). */
static size_t gen_audit_log(unsigned seed, char **out, size_t max) {
  typedef struct { uint64_t serial; int64_t ms; int left; bool title; } gev;
  gev open[4];
  size_t nopen = 0, n = 0;
  uint64_t serial = 1000, swapped = 0;
  int64_t ms = 1700000000000;
  srand(seed);
  char buf[256];
  while (n < max) {
    int r = rand() % 100;
    if (nopen < 4 && (nopen == 0 || r < 30)) {
      uint64_t this_serial;
      if (swapped) { /* the lower serial of a pair that started in reverse order */
        this_serial = swapped;
        swapped = 0;
      } else if (rand() % 10 == 0) { /* two CPUs: serial s+2 is logged before s+1 */
        swapped = serial + 1;
        serial += 2;
        this_serial = serial;
      } else {
        serial += (rand() % 20 == 0) ? 2 + (uint64_t)(rand() % 3) : 1; /* sometimes a hole */
        this_serial = serial;
      }
      ms += rand() % 400;
      if (rand() % 5 == 0) {
        snprintf(buf, sizeof(buf), "type=USER_ACCT msg=audit(%lld.%03lld:%llu): pid=1 uid=0 "
                 "auid=5 ses=1 msg='op=x res=success'", (long long)(ms / 1000),
                 (long long)(ms % 1000), (unsigned long long)this_serial);
        out[n++] = strdup(buf);
        continue;
      }
      open[nopen++] = (gev){this_serial, ms, 1 + rand() % 4, rand() % 4 != 0};
      snprintf(buf, sizeof(buf), "type=SYSCALL msg=audit(%lld.%03lld:%llu): arch=c000003e "
               "syscall=59 success=yes exit=0 pid=7 uid=0 comm=\"sh\" key=\"k\"",
               (long long)(ms / 1000), (long long)(ms % 1000), (unsigned long long)this_serial);
      out[n++] = strdup(buf);
      continue;
    }
    if (r < 33) {
      out[n++] = strdup("not an audit line");
      continue;
    }
    size_t k = (size_t)rand() % nopen;
    gev *e = &open[k];
    const char *type = "CWD";
    if (e->left == 1) type = e->title ? "PROCTITLE" : (rand() % 2 ? "EOE" : "PATH");
    snprintf(buf, sizeof(buf), "type=%s msg=audit(%lld.%03lld:%llu): cwd=\"/\" proctitle=\"x\"", type,
             (long long)(e->ms / 1000), (long long)(e->ms % 1000), (unsigned long long)e->serial);
    out[n++] = strdup(buf);
    if (--e->left == 0) open[k] = open[--nopen];
  }
  return n;
}

/* Feed lines[from..to) (file offsets from offs) into p through d; the
 * checkpoint a collector would note after each line goes to ckpt[i]. */
static void feed_range(col_parser *p, char **lines, const uint64_t *offs, size_t from, size_t to,
                       dedupe_sim *d, uint64_t *ckpt) {
  for (size_t i = from; i < to; i++) {
    size_t n = strlen(lines[i]);
    assert_int_equal(col_parser_line(p, (const uint8_t *)lines[i], n, offs[i], i + 1, dedupe_cb, d),
                     CAIRN_OK);
    if (ckpt) ckpt[i] = col_parser_safe_offset(p, offs[i + 1]);
  }
}

/* Restart semantics: the collector is killed after line k (everything it
 * emitted up to there is stored), restarts at the safe offset it had
 * checkpointed after line c <= k (acks lag), with a fresh parser, and reads
 * to the end. For every k and several lags: no record is dropped by dedupe in
 * one run, every line is stored at least once, and (no idle timeouts split
 * events here) none twice. */
static void audit_restart_at_safe_offset_stores_every_line_once(void **state) {
  (void)state;
  enum { N = 600 };
  char *lines[N];
  size_t n = gen_audit_log(7, lines, N);
  uint64_t offs[N + 1];
  offs[0] = 0;
  for (size_t i = 0; i < n; i++) offs[i + 1] = offs[i] + strlen(lines[i]) + 1;
  uint64_t ckpt[N];
  /* one uninterrupted run */
  dedupe_sim d = {.nlines = n};
  d.line_hits = calloc(n + 1, sizeof(unsigned));
  col_parser *p;
  assert_int_equal(col_parser_new(CAIRN__FORMAT__FORMAT_AUDITD, 0, &p), CAIRN_OK);
  feed_range(p, lines, offs, 0, n, &d, ckpt);
  assert_int_equal(col_parser_flush(p, true, dedupe_cb, &d), CAIRN_OK);
  col_parser_free(p);
  assert_int_equal(d.dropped, 0);
  assert_true(d.gap_records > 0);
  for (size_t i = 1; i <= n; i++) assert_int_equal(d.line_hits[i], 1);
  uint64_t gaps_once = d.gap_records;
  free(d.line_hits);

  static const size_t lags[] = {0, 1, 7, 40};
  size_t replays = 0, spurious = 0;
  for (size_t k = 0; k < n; k += 3) {
    for (size_t li = 0; li < 4; li++) {
      if (lags[li] > k) continue;
      size_t c = k - lags[li];
      dedupe_sim r = {.nlines = n};
      r.line_hits = calloc(n + 1, sizeof(unsigned));
      assert_int_equal(col_parser_new(CAIRN__FORMAT__FORMAT_AUDITD, 0, &p), CAIRN_OK);
      feed_range(p, lines, offs, 0, k + 1, &r, NULL);
      col_parser_free(p); /* SIGKILL: pending events are lost with the process */
      size_t resume = 0;
      while (offs[resume] < ckpt[c]) resume++;
      assert_int_equal(offs[resume], ckpt[c]);
      assert_int_equal(col_parser_new(CAIRN__FORMAT__FORMAT_AUDITD, 0, &p), CAIRN_OK);
      feed_range(p, lines, offs, resume, n, &r, NULL);
      assert_int_equal(col_parser_flush(p, true, dedupe_cb, &r), CAIRN_OK);
      col_parser_free(p);
      for (size_t i = 1; i <= n; i++)
        if (r.line_hits[i] != 1)
          fail_msg("killed after line %zu, resumed at line %zu: line %zu stored %u times", k + 1,
                   resume + 1, i, r.line_hits[i]);
      /* no gap is lost; one the run had stored may be reported again after a
       * restart only as a spurious hole (serials before the resume point) */
      if (r.gap_records < gaps_once)
        fail_msg("killed after line %zu, resumed at line %zu: %llu gap records, want %llu", k + 1,
                 resume + 1, (unsigned long long)r.gap_records, (unsigned long long)gaps_once);
      if (r.gap_records > gaps_once) spurious++;
      free(r.line_hits);
      replays++;
    }
  }
  assert_true(replays > 500);
  fprintf(stderr, "%zu kill/resume points, %zu with a spurious serial gap after the restart\n",
          replays, spurious);
  for (size_t i = 0; i < n; i++) free(lines[i]);
}

static void audit_serial_gap_is_a_record_of_its_own(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  const char *u = "pid=1 uid=0 auid=5 ses=1 msg='op=x res=success'";
  char line[256];
  /* 102..104 open a hole at 105; 103 arrives late (interleaving), so 102 and
   * 104 are missing; 48256..48259 are missing on node web-1 */
  static const int serials[] = {100, 101, 105, 103, 106};
  for (size_t i = 0; i < 5; i++) {
    snprintf(line, sizeof(line), "type=USER_ACCT msg=audit(1700000000.%03zu:%d): %s", i, serials[i],
             u);
    feed_store(&f, &st, line);
  }
  assert_int_equal(st.n, 2); /* 105 and later wait for the hole to be decided */
  assert_int_equal(col_parser_safe_offset(f.p, f.off) < f.off, true);
  /* a serial COL_AUDIT_GAP_WINDOW above the hole decides it */
  snprintf(line, sizeof(line), "type=USER_ACCT msg=audit(1700000000.010:%d): %s",
           104 + COL_AUDIT_GAP_WINDOW + 1, u);
  feed_store(&f, &st, line);
  /* which opens a hole of its own (107..136), decided at the flush */
  assert_int_equal(st.n, 6);
  assert_int_equal(st.v[2].r.audit_lost, 2);
  assert_string_equal((const char *)st.v[2].msg,
                      "2 audit serials between 102 and 104 missing (2 events lost by the kernel "
                      "or auditd)");
  assert_string_equal(rec_attr(&st.v[2], "type", 0), "CAIRN_AUDIT_GAP");
  assert_string_equal(rec_attr(&st.v[2], "serial_first", 0), "102");
  assert_string_equal(rec_attr(&st.v[2], "serial_last", 0), "104");
  assert_string_equal(rec_attr(&st.v[2], "missing", 0), "2");
  assert_int_equal(st.v[2].r.source, CAIRN__SOURCE__SOURCE_AUDIT);
  assert_int_equal(st.v[2].r.first_line, 3);
  assert_string_equal(rec_attr(&st.v[3], "serial", 0), "105");
  assert_true(st.v[2].r.end_offset > st.v[1].r.end_offset);
  assert_true(st.v[2].r.end_offset < st.v[3].r.end_offset);
  assert_int_equal(col_parser_audit_serial_gaps(f.p), 2);
  feed_store(&f, &st, "node=web-1 " REC("USER_LOGIN", "1700000001.000:48255", "pid=1 uid=0 auid=5 ses=1 msg='op=login res=success'"));
  feed_store(&f, &st, "node=web-1 " REC("USER_LOGIN", "1700000001.500:48260", "pid=1 uid=0 auid=5 ses=1 msg='op=login res=success'"));
  assert_int_equal(col_parser_flush(f.p, true, rec_store_cb, &st), CAIRN_OK);
  assert_int_equal(st.n, 11);
  assert_string_equal((const char *)st.v[6].msg,
                      "audit serials 107..136 missing (30 events lost by the kernel or auditd)");
  assert_string_equal(rec_attr(&st.v[7], "serial", 0), "137");
  assert_string_equal(rec_attr(&st.v[8], "serial", 0), "48255"); /* another node: no hole */
  assert_string_equal((const char *)st.v[9].msg,
                      "node web-1: audit serials 48256..48259 missing (4 events lost by the "
                      "kernel or auditd)");
  assert_string_equal(rec_attr(&st.v[9], "node", 0), "web-1");
  assert_string_equal(rec_attr(&st.v[10], "serial", 0), "48260");
  assert_int_equal(col_parser_audit_serial_gaps(f.p), 2 + 30 + 4);
  for (size_t i = 1; i < st.n; i++) assert_true(st.v[i].r.end_offset > st.v[i - 1].r.end_offset);
  assert_int_equal(col_parser_safe_offset(f.p, f.off), f.off);
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void audit_late_serial_fills_a_hole_and_interleaving_is_no_gap(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  /* 41 starts before 40 (two CPUs): no gap; 43 before 42: none either */
  feed_store(&f, &st, SC("1700000000.100:39", "key=\"a\""));
  feed_store(&f, &st, REC("PROCTITLE", "1700000000.100:39", "proctitle=\"a\""));
  feed_store(&f, &st, SC("1700000000.101:41", "key=\"b\""));
  feed_store(&f, &st, SC("1700000000.101:40", "key=\"c\""));
  feed_store(&f, &st, REC("PROCTITLE", "1700000000.101:41", "proctitle=\"b\""));
  feed_store(&f, &st, REC("PROCTITLE", "1700000000.101:40", "proctitle=\"c\""));
  feed_store(&f, &st, REC("USER_ACCT", "1700000000.200:43", "pid=1 uid=0 msg='op=x res=success'"));
  feed_store(&f, &st, REC("USER_ACCT", "1700000000.200:42", "pid=1 uid=0 msg='op=x res=success'"));
  assert_int_equal(col_parser_flush(f.p, true, rec_store_cb, &st), CAIRN_OK);
  assert_int_equal(st.n, 5);
  for (size_t i = 0; i < st.n; i++) assert_int_equal(st.v[i].r.audit_lost, 0);
  assert_int_equal(col_parser_audit_serial_gaps(f.p), 0);
  rec_store_clear(&st);
  feeder_fini(&f);
}

static void audit_orphan_eoe_and_flush_noop_for_other_formats(void **state) {
  (void)state;
  feeder f;
  feeder_init(&f, CAIRN__FORMAT__FORMAT_AUDITD, 0);
  rec_store st = {0};
  feed_store(&f, &st, REC("EOE", "1700000000.100:80", ""));
  assert_int_equal(st.n, 1);
  assert_string_equal(rec_attr(&st.v[0], "types", 0), "EOE");
  assert_string_equal(rec_attr(&st.v[0], "complete", 0), "true");
  rec_store_clear(&st);
  feeder_fini(&f);
  feeder_init(&f, CAIRN__FORMAT__FORMAT_CRI, 0);
  feed(&f, "2024-01-15T10:00:00Z stdout P part");
  assert_int_equal(col_parser_flush(f.p, true, rec_store_cb, &st), CAIRN_OK);
  assert_int_equal(st.n, 0);
  assert_int_equal(col_parser_audit_pending(f.p), 0);
  feeder_fini(&f);
}

/* ---- throughput ---- */

static void count_cb(const col_rec *r, void *ud) {
  uint64_t *n = ud;
  n[r->audit_lost ? 2 : (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED) ? 1 : 0]++;
}

/* The RAW corpus file replicated in memory (100k lines; CAIRN_BENCH=1 makes
 * it ~1M and prints lines/s). */
static void audit_replicated_corpus_throughput(void **state) {
  (void)state;
  char in[4096];
  corpus_path(in, sizeof(in), "", "audit/audit.log", "");
  file_lines fl;
  file_lines_load(in, &fl);
  const char *bench = getenv("CAIRN_BENCH");
  size_t copies = (bench && *bench == '1' ? 1000000 : 100000) / fl.n + 1;
  col_parser *p;
  assert_int_equal(col_parser_new(CAIRN__FORMAT__FORMAT_AUDITD, 0, &p), CAIRN_OK);
  uint64_t counts[3] = {0, 0, 0}, off = 0, ln = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (size_t c = 0; c < copies; c++)
    for (size_t i = 0; i < fl.n; i++) {
      assert_int_equal(col_parser_line(p, fl.line[i], fl.len[i], off, ++ln, count_cb, counts),
                       CAIRN_OK);
      off += fl.len[i] + 1;
    }
  assert_int_equal(col_parser_flush(p, true, count_cb, counts), CAIRN_OK);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  assert_int_equal(counts[0], 13 * copies);
  assert_int_equal(counts[1], 2 * copies);
  /* the 9 holes of the first copy; later copies repeat serials already seen */
  assert_int_equal(counts[2], 9);
  if (bench && *bench == '1')
    fprintf(stderr, "audit parse: %llu lines in %.3f s = %.0f lines/s (%.1f MB/s)\n",
            (unsigned long long)ln, s, (double)ln / s, (double)off / s / 1e6);
  col_parser_free(p);
  file_lines_free(&fl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(audit_raw_corpus_matches_expected),
      cmocka_unit_test(audit_enriched_corpus_matches_expected),
      cmocka_unit_test(audit_timeout_flush_splits_event),
      cmocka_unit_test(audit_stale_event_ends_two_seconds_later),
      cmocka_unit_test(audit_interleaved_events_without_eoe),
      cmocka_unit_test(audit_safe_offset_holds_pending_event),
      cmocka_unit_test(audit_garbage_lines_do_not_disturb_events),
      cmocka_unit_test(audit_long_execve_line_and_truncation),
      cmocka_unit_test(audit_config_change_joins_or_stands_alone),
      cmocka_unit_test(audit_node_prefix_and_multiple_keys),
      cmocka_unit_test(audit_out_of_order_completion_is_not_dropped_by_dedupe),
      cmocka_unit_test(audit_restart_at_safe_offset_stores_every_line_once),
      cmocka_unit_test(audit_serial_gap_is_a_record_of_its_own),
      cmocka_unit_test(audit_late_serial_fills_a_hole_and_interleaving_is_no_gap),
      cmocka_unit_test(audit_orphan_eoe_and_flush_noop_for_other_formats),
      cmocka_unit_test(audit_replicated_corpus_throughput),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
