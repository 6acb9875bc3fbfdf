/* tests/collector/meta_test.c: path metadata (collector/meta.c) for every
 * line of corpus paths.txt against expected/paths.txt.jsonl, plus layouts that
 * must not be decoded. */
#include "parse_corpus.h"

static const char *kind_name(col_path_kind k) {
  switch (k) {
  case COL_PATH_CONTAINERS: return "containers";
  case COL_PATH_PODS: return "pods";
  case COL_PATH_DOCKER: return "docker";
  default: return "";
  }
}

static void meta_paths_match_expected(void **state) {
  (void)state;
  char in[4096], exp[4096];
  corpus_path(in, sizeof(in), "", "paths.txt", "");
  corpus_path(exp, sizeof(exp), "expected/", "paths.txt", ".jsonl");
  size_t nrows;
  json_t **rows = load_jsonl(exp, &nrows);
  FILE *f = fopen(in, "rb");
  assert_non_null(f);
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  size_t n = 0;
  while ((got = getline(&line, &cap, f)) > 0) {
    if (line[got - 1] == '\n') line[got - 1] = '\0';
    assert_true(n < nrows);
    json_t *row = rows[n++];
    row_ctx c = {.rel = "paths.txt", .row = n};
    assert_string_equal(json_string_value(json_object_get(row, "path")), line);
    col_meta m;
    col_meta_from_path(line, &m);
    expect_str_or_null(&c, row, "kind", kind_name(m.kind));
    expect_str_or_null(&c, row, "namespace", m.kube_namespace);
    expect_str_or_null(&c, row, "pod", m.pod);
    expect_str_or_null(&c, row, "pod_uid", m.pod_uid);
    expect_str_or_null(&c, row, "container", m.container);
    expect_str_or_null(&c, row, "container_id", m.container_id);
    expect_str_or_null(&c, row, "rotated_suffix", m.rotated_suffix);
    expect_bool(&c, row, "compressed", m.compressed);
    json_t *rc = json_object_get(row, "restart_count");
    if (json_is_null(rc))
      assert_int_equal(m.restart_count, -1);
    else
      expect_int(&c, row, "restart_count", m.restart_count);
  }
  free(line);
  fclose(f);
  assert_int_equal(n, nrows);
  assert_int_equal(n, 14);
  free_rows(rows, nrows);
}

static void meta_unknown_layouts_give_empty_fields(void **state) {
  (void)state;
  static const char *const paths[] = {
      "",
      "/var/log/syslog",
      "/var/log/audit/audit.log",
      /* id one hex digit short */
      "/var/log/containers/"
      "web_default_app-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde.log",
      /* no namespace part */
      "/var/log/containers/"
      "web-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
      /* pod dir without uid */
      "/var/log/pods/default_web/app/0.log",
      /* not a restart number */
      "/var/log/pods/default_web_0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/app/current.log",
      /* no container directory */
      "0.log",
      "/0.log",
      /* docker id with a non-hex character */
      "/var/lib/docker/containers/x/"
      "g1f3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3-json.log",
  };
  for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
    col_meta m;
    memset(&m, 0x5a, sizeof(m));
    col_meta_from_path(paths[i], &m);
    if (m.kind != COL_PATH_UNKNOWN) fail_msg("path %zu decoded as kind %d", i, m.kind);
    assert_string_equal(m.kube_namespace, "");
    assert_string_equal(m.pod, "");
    assert_string_equal(m.pod_uid, "");
    assert_string_equal(m.container, "");
    assert_string_equal(m.container_id, "");
    assert_string_equal(m.rotated_suffix, "");
    assert_int_equal(m.restart_count, -1);
    assert_false(m.compressed);
  }
}

static void meta_relative_pods_path_decodes(void **state) {
  (void)state;
  col_meta m;
  col_meta_from_path("ns_pod_0123456789abcdef0123456789abcdef/c-1/12.log.gz", &m);
  assert_int_equal(m.kind, COL_PATH_PODS);
  assert_string_equal(m.kube_namespace, "ns");
  assert_string_equal(m.pod, "pod");
  assert_string_equal(m.pod_uid, "0123456789abcdef0123456789abcdef");
  assert_string_equal(m.container, "c-1");
  assert_int_equal(m.restart_count, 12);
  assert_true(m.compressed);
  assert_string_equal(m.rotated_suffix, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(meta_paths_match_expected),
      cmocka_unit_test(meta_unknown_layouts_give_empty_fields),
      cmocka_unit_test(meta_relative_pods_path_decodes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
