/* tests/collector/discover_test.c: the discovery scan (discover.c included to
 * reach its static helpers) against a real directory tree in a fresh mkdtemp
 * directory: rotated names, .gz and --exclude, non-regular matches, symlinks
 * deduplicated by target, and the directories chosen for inotify watches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/discover.c"

static void touch(const char *dir, const char *name) {
  char p[512];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs("x\n", f);
  fclose(f);
}

static const col_scan_hit *hit_named(const scan_job *j, const char *suffix) {
  for (size_t i = 0; i < j->n_hits; i++) {
    if (ends_with(j->hits[i].path, suffix)) return &j->hits[i];
  }
  return NULL;
}

static void kubelet_rotated_names_are_recognised(void **state) {
  (void)state;
  assert_true(kubelet_rotated("/var/log/pods/ns_p_u/c/0.log.20261128-101500"));
  assert_false(kubelet_rotated("/var/log/pods/ns_p_u/c/0.log"));
  assert_false(kubelet_rotated("/var/log/pods/ns_p_u/c/0.log.20261128-101500.gz"));
  assert_false(kubelet_rotated("/var/log/app.log.1"));
}

static void scan_classifies_live_rotated_excluded_and_bad_matches(void **state) {
  (void)state;
  char root[] = "/tmp/cairn-disc-XXXXXX";
  assert_non_null(mkdtemp(root));
  char pods[64], c1[64], links[64], p[128], q[256];
  snprintf(pods, sizeof(pods), "%s/pods", root);
  snprintf(c1, sizeof(c1), "%s/pods/ns_pod_uid", root);
  assert_int_equal(mkdir(pods, 0700), 0);
  assert_int_equal(mkdir(c1, 0700), 0);
  snprintf(p, sizeof(p), "%s/c", c1);
  assert_int_equal(mkdir(p, 0700), 0);
  touch(p, "0.log");
  touch(p, "0.log.20261128-101500");
  touch(p, "0.log.20261127-101500.gz");
  touch(p, "skip.log");
  snprintf(q, sizeof(q), "%s/fifo.log", p);
  assert_int_equal(mkfifo(q, 0600), 0);
  snprintf(links, sizeof(links), "%s/containers", root);
  assert_int_equal(mkdir(links, 0700), 0);
  char link[256], target[256];
  snprintf(link, sizeof(link), "%s/pod_ns_c-abc.log", links);
  snprintf(target, sizeof(target), "%s/0.log", p);
  assert_int_equal(symlink(target, link), 0);

  char g1[512], g2[512], ex[64] = "*/skip.log";
  snprintf(g1, sizeof(g1), "%s/pods/*/*/*.log", root);
  snprintf(g2, sizeof(g2), "%s/containers/*.log", root);
  col_input in[2] = {{CAIRN__FORMAT__FORMAT_CRI, g1, "cri:pods"},
                     {CAIRN__FORMAT__FORMAT_CRI, g2, "cri:containers"}};
  char *exv[1] = {ex};
  col_config cfg = {.in = in, .n_in = 2};
  cfg.excludes.v = exv;
  cfg.excludes.n = 1;
  col_collector c = {.cfg = &cfg};
  scan_job *j = calloc(1, sizeof(*j));
  j->c = &c;
  j->req.data = j;
  scan_work(&j->req);
  assert_false(j->oom);

  /* 0.log twice (pattern + symlink) is one hit: the live name of the first input */
  assert_int_equal(j->n_hits, 2);
  const col_scan_hit *live = hit_named(j, "/0.log");
  assert_non_null(live);
  assert_false(live->rotated);
  assert_int_equal(live->input, 0);
  const col_scan_hit *rot = hit_named(j, "/0.log.20261128-101500");
  assert_non_null(rot);
  assert_true(rot->rotated);
  assert_null(hit_named(j, ".gz"));
  assert_null(hit_named(j, "skip.log"));
  assert_int_equal(j->n_bad, 1);
  assert_non_null(strstr(j->bad[0].path, "fifo.log"));
  assert_string_equal(j->bad[0].why, "a FIFO");

  /* watches: the fixed prefix, every wildcard level, the symlinks' directory */
  bool has_pods = false, has_c = false, has_links = false;
  for (size_t i = 0; i < j->n_dirs; i++) {
    if (strcmp(j->dirs[i], pods) == 0) has_pods = true;
    if (strcmp(j->dirs[i], p) == 0) has_c = true;
    if (strcmp(j->dirs[i], links) == 0) has_links = true;
  }
  assert_true(has_pods);
  assert_true(has_c);
  assert_true(has_links);
  scan_job_free(j);
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kubelet_rotated_names_are_recognised),
      cmocka_unit_test(scan_classifies_live_rotated_excluded_and_bad_matches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
