/* tests/query/search_ext_test.c: the search additions against a generated
 * store: case-insensitive text (-i), repeated --grep (OR), PCRE2 --regex
 * (checked against POSIX ERE on the model), glob patterns for namespace and
 * pod (a prefix glob still walks only its index range), repeated filters,
 * --stream, and --follow in a child process that picks up records committed
 * after it started and stops on SIGINT.
 */
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "tests/query/audit_fixture.h"

static int setup(void **state) {
  ax_store *s = calloc(1, sizeof(*s));
  if (!s || ax_build(s) != 0) return -1;
  *state = s;
  return 0;
}

static int teardown(void **state) {
  ax_destroy(*state);
  free(*state);
  return 0;
}

#define CHECK_SEARCH(s, pred, arg, ...)                                                          \
  do {                                                                                           \
    static int64_t want_[AX_N], got_[AX_N];                                                      \
    size_t nw_ = ax_expect((s), (pred), (arg), false, 0, want_);                                 \
    fx_result r_ = FX_RUN(NULL, "search", "--data", (s)->data, "--output", "json", "--limit",    \
                          "0", __VA_ARGS__);                                                     \
    if (r_.rc != (nw_ ? 0 : 1)) fprintf(stderr, "stderr: %s\n", r_.err);                         \
    assert_int_equal(r_.rc, nw_ ? 0 : 1);                                                        \
    size_t ng_ = ax_json_times(r_.out, got_, AX_N);                                              \
    if (ng_ != nw_) fprintf(stderr, "got %zu want %zu\n", ng_, nw_);                              \
    assert_int_equal(ng_, nw_);                                                                  \
    assert_memory_equal(got_, want_, nw_ * sizeof(int64_t));                                     \
    fx_result_free(&r_);                                                                         \
  } while (0)

static bool p_icase(const ax_rec *r, const void *arg) {
  return r->kind == AX_CONTAINER && strcasestr(r->msg, arg) != NULL;
}
static bool p_either(const ax_rec *r, const void *arg) {
  (void)arg;
  return strstr(r->msg, "TIMEOUT") || strstr(r->msg, "Timeout");
}
static bool p_ere(const ax_rec *r, const void *arg) {
  return regexec(arg, r->msg, 0, NULL, 0) == 0;
}
static bool p_ns_glob(const ax_rec *r, const void *arg) {
  return r->kind == AX_CONTAINER && fnmatch(arg, r->ns, 0) == 0;
}
static bool p_pods_stderr(const ax_rec *r, const void *arg) {
  (void)arg;
  return r->kind == AX_CONTAINER && (!strcmp(r->pod, "api-0") || !strcmp(r->pod, "db-0")) &&
         r->stream == CAIRN__LOG_STREAM__LOG_STREAM_STDERR;
}
static bool p_two_ns(const ax_rec *r, const void *arg) {
  (void)arg;
  return r->kind == AX_CONTAINER && (!strcmp(r->ns, "checkout") || !strcmp(r->ns, "kube-system"));
}

static void search_ignore_case_and_repeated_grep(void **state) {
  ax_store *s = *state;
  CHECK_SEARCH(s, p_icase, "timeout", "-i", "--grep", "timeout");
  CHECK_SEARCH(s, p_icase, "get /API", "--ignore-case", "--grep", "get /API", "--source",
               "container");
  CHECK_SEARCH(s, p_either, NULL, "--grep", "TIMEOUT", "--grep", "Timeout");
}

static void search_regex_matches_like_posix_ere(void **state) {
  ax_store *s = *state;
  regex_t re;
  assert_int_equal(regcomp(&re, "^get /api/items/[0-9]*2 ", REG_EXTENDED | REG_NOSUB), 0);
  CHECK_SEARCH(s, p_ere, &re, "--regex", "^get /api/items/[0-9]*2 ");
  regfree(&re);
  assert_int_equal(regcomp(&re, "^get /api/items/[0-9]*2 ", REG_EXTENDED | REG_NOSUB | REG_ICASE),
                   0);
  CHECK_SEARCH(s, p_ere, &re, "-i", "--regex", "^get /api/items/[0-9]*2 ");
  regfree(&re);
  /* regex and grep combine with AND */
  assert_int_equal(regcomp(&re, "items/[0-9]+ (Timeout|TIMEOUT)", REG_EXTENDED | REG_NOSUB), 0);
  CHECK_SEARCH(s, p_ere, &re, "--regex", "items/[0-9]+ (Timeout|TIMEOUT)", "--regex", "nomatch^");
  regfree(&re);
}

static void search_namespace_glob_uses_the_index_range(void **state) {
  ax_store *s = *state;
  CHECK_SEARCH(s, p_ns_glob, "payment*", "--namespace", "payment*");
  CHECK_SEARCH(s, p_ns_glob, "*-gw", "--namespace", "*-gw");
  CHECK_SEARCH(s, p_ns_glob, "pay[m]ent?", "--namespace", "pay[m]ent?");
  int64_t tmp[AX_N];
  size_t n = ax_expect(s, p_ns_glob, "payment*", false, 0, tmp);
  fx_result r = FX_RUN(NULL, "search", "--data", s->data, "--namespace", "payment*", "--limit", "0",
                       "--stats");
  assert_int_equal(r.rc, 0);
  char want[64];
  snprintf(want, sizeof(want), "index=namespace examined=%zu matched=%zu", n, n);
  if (!strstr(r.err, want)) fail_msg("want '%s' in '%s'", want, r.err);
  fx_result_free(&r);
}

static void search_repeated_filters_or_within_a_field(void **state) {
  ax_store *s = *state;
  CHECK_SEARCH(s, p_pods_stderr, NULL, "--pod", "api-0", "--pod", "db-0", "--stream", "stderr");
  CHECK_SEARCH(s, p_two_ns, NULL, "--namespace", "checkout", "--namespace", "kube-system");
}

/* ---- --follow ---- */

/* Read from fd into buf (appending) until it holds `lines` newlines or the
 * deadline passes. Returns the newline count. */
static size_t read_lines(int fd, char *buf, size_t cap, size_t *len, size_t lines, int ms) {
  int64_t end = cairn_time_mono_ns() + (int64_t)ms * 1000000;
  for (;;) {
    size_t n = 0;
    for (size_t i = 0; i < *len; i++) n += buf[i] == '\n';
    if (n >= lines) return n;
    int64_t left = (end - cairn_time_mono_ns()) / 1000000;
    if (left <= 0) return n;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)left) <= 0) continue;
    ssize_t k = read(fd, buf + *len, cap - 1 - *len);
    if (k <= 0) return n;
    *len += (size_t)k;
    buf[*len] = 0;
  }
}

static void add_record(ax_store *s, int64_t t, const char *ns, const char *msg) {
  sto_options so = {.no_sync = true};
  sto_env *env = NULL;
  char why[256];
  assert_int_equal(sto_open(s->data, &so, &env, why, sizeof(why)), CAIRN_OK);
  Cairn__Record r = CAIRN__RECORD__INIT, *p = &r;
  r.time_ns = t;
  r.source = CAIRN__SOURCE__SOURCE_CONTAINER;
  r.stream = CAIRN__LOG_STREAM__LOG_STREAM_STDOUT;
  r.kube_namespace = (char *)ns;
  r.pod = (char *)"api-0";
  r.node = (char *)"node-a";
  r.message.data = (uint8_t *)msg;
  r.message.len = strlen(msg);
  sto_ingest_meta meta = {.instance_id = "follow-test", .identity = "CN=t", .ingest_ns = t};
  sto_wtxn *w;
  uint32_t stored = 0, dups = 0;
  assert_int_equal(sto_wtxn_begin(env, &w), CAIRN_OK);
  assert_int_equal(sto_wtxn_put_records(w, &meta, &p, 1, &stored, &dups), CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(w), CAIRN_OK);
  sto_close(env);
}

static void search_follow_prints_new_matches_until_sigint(void **state) {
  ax_store *s = *state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    FILE *out = fdopen(fds[1], "w");
    FILE *err = fopen("/dev/null", "w");
    setvbuf(out, NULL, _IOLBF, 0);
    char *argv[] = {"cairn-query", "search", "--data", s->data, "--namespace", "payments",
                    "--limit", "3", "--follow", "--output", "json", NULL};
    qry_env env = {.out = out, .err = err, .now_ns = AX_T0};
    int rc = qry_run(11, argv, &env);
    fflush(out);
    _exit(rc);
  }
  close(fds[1]);
  static char buf[1 << 16];
  size_t len = 0;
  /* first page: the 3 newest matches, oldest of them first */
  assert_int_equal(read_lines(fds[0], buf, sizeof(buf), &len, 3, 20000), 3);
  int64_t got[4], want[AX_N];
  size_t nw = 0;
  for (int i = AX_N - 1; i >= 0 && nw < 3; i--)
    if (s->r[i].kind == AX_CONTAINER && !strcmp(s->r[i].ns, "payments"))
      want[nw++] = s->r[i].time_ns;
  assert_int_equal(ax_json_times(buf, got, 4), 3);
  assert_int_equal(got[0], want[2]);
  assert_int_equal(got[2], want[0]);
  /* records committed while it follows: only the match is printed */
  int64_t t = AX_T0 + 24LL * 3600 * 1000000000LL;
  add_record(s, t, "checkout", "not for us");
  add_record(s, t + 1, "payments", "follow-marker-1");
  assert_int_equal(read_lines(fds[0], buf, sizeof(buf), &len, 4, 20000), 4);
  assert_non_null(strstr(buf, "follow-marker-1"));
  assert_null(strstr(buf, "not for us"));
  add_record(s, t + 2, "payments", "follow-marker-2");
  assert_int_equal(read_lines(fds[0], buf, sizeof(buf), &len, 5, 20000), 5);
  assert_non_null(strstr(buf, "follow-marker-2"));
  assert_int_equal(kill(pid, SIGINT), 0);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  close(fds[0]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(search_ignore_case_and_repeated_grep),
      cmocka_unit_test(search_regex_matches_like_posix_ere),
      cmocka_unit_test(search_namespace_glob_uses_the_index_range),
      cmocka_unit_test(search_repeated_filters_or_within_a_field),
      cmocka_unit_test(search_follow_prints_new_matches_until_sigint),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
