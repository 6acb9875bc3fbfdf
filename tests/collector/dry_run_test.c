/* tests/collector/dry_run_test.c: `cairn-collector parse` output
 * (col_parse_dry_run, collector/dry_run.c, dry_run_audit.c): every JSON row
 * for every cri/, docker/, audit/ and k8s-audit/ corpus file must equal the
 * expected row key by key, in the expected order. */
#include <unistd.h>

#include "parse_corpus.h"

static int by_serial(const void *a, const void *b) {
  json_int_t x = *(const json_int_t *)a, y = *(const json_int_t *)b;
  return x < y ? -1 : x > y;
}

/* Holes between the sorted serials of expected audit rows (0 for other files). */
static size_t serial_holes(json_t **rows, size_t nrows) {
  json_int_t ser[256];
  size_t n = 0, holes = 0;
  for (size_t i = 0; i < nrows && n < 256; i++) {
    json_t *s = json_object_get(rows[i], "serial");
    if (json_is_integer(s)) ser[n++] = json_integer_value(s);
  }
  qsort(ser, n, sizeof(ser[0]), by_serial);
  for (size_t i = 1; i < n; i++)
    if (ser[i] > ser[i - 1] + 1) holes++;
  return holes;
}

/* Dry-run corpus file rel and compare with its expected JSONL (serial gap
 * rows of audit files are checked against the holes in the serials). */
static void check_dry_run(Cairn__Format fmt, const char *rel) {
  char in[4096], exp[4096], err[512];
  corpus_path(in, sizeof(in), "", rel, "");
  corpus_path(exp, sizeof(exp), "expected/", rel, ".jsonl");
  FILE *out = tmpfile();
  assert_non_null(out);
  cairn_err e = col_parse_dry_run(fmt, in, NULL, out, err, sizeof(err));
  if (e) fail_msg("%s: %s (%s)", rel, err, cairn_err_name(e));
  rewind(out);
  size_t nrows;
  json_t **rows = load_jsonl(exp, &nrows);
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  size_t n = 0, gaps = 0;
  while ((got = getline(&line, &cap, out)) > 0) {
    assert_int_equal(line[got - 1], '\n');
    json_error_t jerr;
    json_t *row = json_loadb(line, (size_t)got, 0, &jerr);
    if (!row) fail_msg("%s: output row %zu is not JSON: %s", rel, n + 1, jerr.text);
    if (json_is_true(json_object_get(row, "audit_gap"))) {
      /* serial gaps are shipped records but not corpus rows: counted below */
      assert_true(json_is_string(json_object_get(row, "message")));
      assert_true(json_is_integer(json_object_get(row, "missing")));
      gaps++;
      json_decref(row);
      continue;
    }
    if (n >= nrows) fail_msg("%s: more output rows than the %zu expected", rel, nrows);
    expect_row_equal(rel, n + 1, row, rows[n]);
    json_decref(row);
    n++;
  }
  assert_int_equal(n, nrows);
  assert_int_equal(gaps, serial_holes(rows, nrows));
  free(line);
  fclose(out);
  free_rows(rows, nrows);
}

static void dry_run_output_matches_expected_rows(void **state) {
  (void)state;
  json_t *summary = load_summary();
  const char *key;
  json_t *val;
  size_t cri = 0, docker = 0, audit = 0, k8s = 0;
  json_object_foreach(summary, key, val) {
    if (strncmp(key, "cri/", 4) == 0) {
      check_dry_run(CAIRN__FORMAT__FORMAT_CRI, key);
      cri++;
    } else if (strncmp(key, "docker/", 7) == 0) {
      check_dry_run(CAIRN__FORMAT__FORMAT_DOCKER, key);
      docker++;
    } else if (strncmp(key, "audit/", 6) == 0) {
      check_dry_run(CAIRN__FORMAT__FORMAT_AUDITD, key);
      audit++;
    } else if (strncmp(key, "k8s-audit/", 10) == 0) {
      check_dry_run(CAIRN__FORMAT__FORMAT_K8S_AUDIT, key);
      k8s++;
    }
  }
  json_decref(summary);
  assert_int_equal(cri, 4);
  assert_int_equal(docker, 2);
  assert_int_equal(audit, 2);
  assert_int_equal(k8s, 1);
}

static void dry_run_takes_metadata_from_meta_path(void **state) {
  (void)state;
  char in[4096], err[512];
  corpus_path(in, sizeof(in), "",
              "docker/5c0ffee15badc0de0ddba11deadbeef0123456789abcdef0123456789abcdef0-json.log",
              "");
  FILE *out = tmpfile();
  assert_non_null(out);
  const char *meta = "/var/log/pods/ns1_pod1_0123456789abcdef0123456789abcdef/ctr/0.log";
  assert_int_equal(col_parse_dry_run(CAIRN__FORMAT__FORMAT_DOCKER, in, meta, out, err, sizeof(err)),
                   CAIRN_OK);
  rewind(out);
  char *line = NULL;
  size_t cap = 0;
  size_t n = 0;
  while (getline(&line, &cap, out) > 0) {
    json_t *row = json_loads(line, 0, NULL);
    assert_non_null(row);
    assert_string_equal(json_string_value(json_object_get(row, "namespace")), "ns1");
    assert_string_equal(json_string_value(json_object_get(row, "pod")), "pod1");
    assert_string_equal(json_string_value(json_object_get(row, "container")), "ctr");
    assert_true(json_is_null(json_object_get(row, "container_id")));
    json_decref(row);
    n++;
  }
  assert_int_equal(n, 5);
  free(line);
  fclose(out);
}

static void dry_run_missing_file_is_notfound(void **state) {
  (void)state;
  char err[512];
  FILE *out = tmpfile();
  assert_non_null(out);
  assert_int_equal(col_parse_dry_run(CAIRN__FORMAT__FORMAT_CRI, "/nonexistent/cairn/x.log", NULL,
                                     out, err, sizeof(err)),
                   CAIRN_E_NOTFOUND);
  assert_non_null(strstr(err, "/nonexistent/cairn/x.log"));
  assert_int_equal(ftell(out), 0);
  fclose(out);
}

static void dry_run_marks_truncated_and_unparsed_rows(void **state) {
  (void)state;
  char dir[] = "/tmp/cairn-dryrun-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof(path), "%s/in.log", dir);
  FILE *w = fopen(path, "wb");
  assert_non_null(w);
  /* one 1 MiB + 10 byte line (truncated), one unparsed invalid-UTF-8 line,
   * one incomplete tail */
  fputs("2024-01-15T10:00:00Z stdout F ", w);
  for (size_t i = 0; i < ((size_t)1 << 20) + 10; i++) fputc('x', w);
  fputs("\nnot cri \xff\n2024-01-15T10:00:01Z stdout F tail", w);
  assert_int_equal(fclose(w), 0);

  FILE *out = tmpfile();
  char err[512];
  assert_int_equal(col_parse_dry_run(CAIRN__FORMAT__FORMAT_CRI, path, NULL, out, err, sizeof(err)),
                   CAIRN_OK);
  rewind(out);
  char *line = NULL;
  size_t cap = 0;
  assert_true(getline(&line, &cap, out) > 0);
  json_t *r1 = json_loads(line, 0, NULL);
  assert_non_null(r1);
  assert_true(json_is_true(json_object_get(r1, "truncated")));
  assert_int_equal(json_integer_value(json_object_get(r1, "message_len")), 1 << 20);
  assert_int_equal(json_integer_value(json_object_get(r1, "full_len")), (1 << 20) + 10);
  json_decref(r1);
  assert_true(getline(&line, &cap, out) > 0);
  json_t *r2 = json_loads(line, 0, NULL);
  assert_non_null(r2);
  assert_true(json_is_true(json_object_get(r2, "unparsed")));
  assert_int_equal(json_integer_value(json_object_get(r2, "line")), 2);
  assert_true(json_is_null(json_object_get(r2, "raw")));
  assert_string_equal(json_string_value(json_object_get(r2, "raw_b64")), "bm90IGNyaSD/");
  json_decref(r2);
  assert_true(getline(&line, &cap, out) < 0); /* the tail is held back */
  free(line);
  fclose(out);
  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(dir), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dry_run_output_matches_expected_rows),
      cmocka_unit_test(dry_run_takes_metadata_from_meta_path),
      cmocka_unit_test(dry_run_missing_file_is_notfound),
      cmocka_unit_test(dry_run_marks_truncated_and_unparsed_rows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
