/* tests/query/audit_test.c: `cairn-query audit` against a generated store of
 * auditd, Kubernetes audit and container records: every filter checked
 * against the model (JSON output, all matches), the index each one uses,
 * the merge of both audit sources, the one-line text view, -v and CSV.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

/* Run audit with args + "--output json --limit 0" and compare the times with
 * the model's matches, newest first. */
#define CHECK_AUDIT(s, pred, arg, ...)                                                          \
  do {                                                                                          \
    static int64_t want_[AX_N], got_[AX_N];                                                     \
    size_t nw_ = ax_expect((s), (pred), (arg), false, 0, want_);                                \
    fx_result r_ = FX_RUN(NULL, "audit", "--data", (s)->data, "--output", "json", "--limit", "0", \
                          __VA_ARGS__);                                                         \
    if (r_.rc != (nw_ ? 0 : 1)) fprintf(stderr, "stderr: %s\n", r_.err);                        \
    assert_int_equal(r_.rc, nw_ ? 0 : 1);                                                       \
    size_t ng_ = ax_json_times(r_.out, got_, AX_N);                                             \
    if (ng_ != nw_) fprintf(stderr, "got %zu want %zu\n", ng_, nw_);                             \
    assert_int_equal(ng_, nw_);                                                                 \
    assert_memory_equal(got_, want_, nw_ * sizeof(int64_t));                                    \
    fx_result_free(&r_);                                                                        \
  } while (0)

static bool eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static bool p_key(const ax_rec *r, const void *arg) {
  return r->kind == AX_AUDITD && (eq(r->key1, arg) || eq(r->key2, arg));
}
static bool p_key_either(const ax_rec *r, const void *arg) {
  (void)arg;
  return r->kind == AX_AUDITD && (r->key1 || r->key2);
}
static bool p_auid(const ax_rec *r, const void *arg) {
  return r->kind == AX_AUDITD && eq(r->auid, arg);
}
static bool p_auid_name(const ax_rec *r, const void *arg) {
  return r->kind == AX_AUDITD && eq(r->auid_name, arg);
}
static bool p_uid_syscall(const ax_rec *r, const void *arg) {
  (void)arg;
  return r->kind == AX_AUDITD && eq(r->uid, "0") && eq(r->syscall, "59");
}
static bool p_failed_type(const ax_rec *r, const void *arg) {
  return r->kind == AX_AUDITD && eq(r->success, "no") && strstr(r->types, arg);
}
static bool p_exe_glob(const ax_rec *r, const void *arg) {
  (void)arg;
  return r->kind == AX_AUDITD && strncmp(r->exe, "/usr/bin/", 9) == 0;
}
static bool p_k8s_user_verb(const ax_rec *r, const void *arg) {
  (void)arg;
  return r->kind == AX_K8S && eq(r->user, "alice@example.com") &&
         (eq(r->verb, "delete") || eq(r->verb, "patch"));
}
static bool p_k8s_secrets_ns(const ax_rec *r, const void *arg) {
  (void)arg;
  return r->kind == AX_K8S && eq(r->resource, "secrets") && eq(r->kns, "payments");
}
static bool p_k8s_exec_4xx(const ax_rec *r, const void *arg) {
  (void)arg;
  return r->kind == AX_K8S && eq(r->subresource, "exec") && r->code[0] == '4';
}
static bool p_k8s_code(const ax_rec *r, const void *arg) {
  return r->kind == AX_K8S && eq(r->code, arg);
}
static bool p_any_audit(const ax_rec *r, const void *arg) {
  (void)arg;
  return r->kind != AX_CONTAINER;
}
static bool p_node_audit(const ax_rec *r, const void *arg) {
  return r->kind != AX_CONTAINER && eq(r->node, arg);
}

static void audit_key_returns_exactly_the_events_with_that_key(void **state) {
  ax_store *s = *state;
  CHECK_AUDIT(s, p_key, "exec", "--key", "exec");
  CHECK_AUDIT(s, p_key, "priv-esc", "--key", "priv-esc");
  CHECK_AUDIT(s, p_key_either, NULL, "--key", "exec", "--key", "priv-esc");
  CHECK_AUDIT(s, p_key, "nope", "--key", "nope");
  /* the key index is read, not the whole store */
  fx_result r = FX_RUN(NULL, "audit", "--data", s->data, "--key", "exec", "--stats", "--limit", "0");
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.err, "index=key"));
  int64_t tmp[AX_N];
  char want[64];
  snprintf(want, sizeof(want), "examined=%zu ", ax_expect(s, p_key, "exec", false, 0, tmp));
  assert_non_null(strstr(r.err, want));
  fx_result_free(&r);
}

static void audit_auid_takes_numbers_unset_and_logged_names(void **state) {
  ax_store *s = *state;
  CHECK_AUDIT(s, p_auid, "1000", "--auid", "1000");
  CHECK_AUDIT(s, p_auid, "4294967295", "--auid", "-1");
  CHECK_AUDIT(s, p_auid, "4294967295", "--auid", "unset");
  CHECK_AUDIT(s, p_auid_name, "alice", "--auid", "alice");
}

static void audit_syscall_name_equals_its_number(void **state) {
  ax_store *s = *state;
  CHECK_AUDIT(s, p_uid_syscall, NULL, "--uid", "0", "--syscall", "execve");
  CHECK_AUDIT(s, p_uid_syscall, NULL, "--uid", "0", "--syscall", "59");
}

static void audit_success_type_and_exe_glob(void **state) {
  ax_store *s = *state;
  CHECK_AUDIT(s, p_failed_type, "USER_LOGIN", "--success", "no", "--type", "user_login");
  CHECK_AUDIT(s, p_failed_type, "EXECVE", "--success", "no", "--type", "EXECVE");
  CHECK_AUDIT(s, p_exe_glob, NULL, "--exe", "/usr/bin/*");
}

static void audit_k8s_user_verb_resource_namespace_status(void **state) {
  ax_store *s = *state;
  CHECK_AUDIT(s, p_k8s_user_verb, NULL, "--user", "alice@example.com", "--verb", "delete",
              "--verb", "patch");
  CHECK_AUDIT(s, p_k8s_secrets_ns, NULL, "--resource", "secrets", "--namespace", "payments");
  CHECK_AUDIT(s, p_k8s_exec_4xx, NULL, "--subresource", "exec", "--status", "4xx");
  CHECK_AUDIT(s, p_k8s_code, "403", "--status", "403");
}

static void audit_without_source_filter_merges_both_sources_by_time(void **state) {
  ax_store *s = *state;
  CHECK_AUDIT(s, p_any_audit, NULL, "--since", "2024-01-15T00:00:00Z");
  CHECK_AUDIT(s, p_node_audit, "node-b", "--node", "node-b");
  /* the limit applies to the merged stream, in both orders */
  static int64_t want[AX_N], got[AX_N];
  size_t nw = ax_expect(s, p_any_audit, NULL, true, 7, want);
  fx_result r = FX_RUN(NULL, "audit", "--data", s->data, "--output", "json", "--limit", "7",
                       "--oldest-first");
  assert_int_equal(r.rc, 0);
  assert_int_equal(ax_json_times(r.out, got, AX_N), nw);
  assert_memory_equal(got, want, nw * sizeof(int64_t));
  fx_result_free(&r);
  nw = ax_expect(s, p_any_audit, NULL, false, 5, want);
  r = FX_RUN(NULL, "audit", "--data", s->data, "--output", "json", "--limit", "5");
  assert_int_equal(ax_json_times(r.out, got, AX_N), nw);
  assert_memory_equal(got, want, nw * sizeof(int64_t));
  fx_result_free(&r);
}

/* The text line of the event with time t. */
static const char *line_of(const char *out, const ax_rec *m, char *buf, size_t cap) {
  char ts[40];
  cairn_time_format(m->time_ns, ts, sizeof(ts));
  const char *p = strstr(out, ts);
  if (!p) return NULL;
  const char *nl = strchr(p, '\n');
  snprintf(buf, cap, "%.*s", (int)(nl - p), p);
  return buf;
}

static void audit_text_line_shows_who_what_result_and_key(void **state) {
  ax_store *s = *state;
  /* event 0: auditd, key exec and priv-esc, auid 1000 (alice), uid 1000, execve, failed */
  const ax_rec *m = &s->r[0];
  assert_string_equal(m->auid_name, "alice");
  fx_result r = FX_RUN(NULL, "audit", "--data", s->data, "--key", "priv-esc", "--limit", "0");
  assert_int_equal(r.rc, 0);
  char line[512];
  assert_non_null(line_of(r.out, m, line, sizeof(line)));
  const char *want[] = {"node-a", "SYSCALL", "auid=1000(alice) uid=1000", "syscall=execve",
                        "exe=/usr/bin/ls", "success=no", "key=exec,priv-esc"};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    if (!strstr(line, want[i])) fail_msg("'%s' not in '%s'", want[i], line);
  }
  assert_int_equal(fx_lines(r.out), ax_expect(s, p_key, "priv-esc", false, 0, (int64_t[AX_N]){0}));
  fx_result_free(&r);

  /* a k8s event: user, verb, namespace/resource/name, code and decision */
  const ax_rec *k = NULL;
  for (int i = 0; i < AX_N && !k; i++)
    if (s->r[i].kind == AX_K8S && eq(s->r[i].code, "403")) k = &s->r[i];
  assert_non_null(k);
  r = FX_RUN(NULL, "audit", "--data", s->data, "--status", "403", "--limit", "0");
  assert_non_null(line_of(r.out, k, line, sizeof(line)));
  char obj[96];
  snprintf(obj, sizeof(obj), "%s/%s/%s", k->kns, k->resource, k->name);
  const char *kwant[] = {"k8s:ResponseComplete", k->user, k->verb, obj, "code=403",
                         "decision=forbid"};
  for (size_t i = 0; i < sizeof(kwant) / sizeof(kwant[0]); i++)
    if (!strstr(line, kwant[i])) fail_msg("'%s' not in '%s'", kwant[i], line);
  fx_result_free(&r);
}

static void audit_verbose_adds_every_attr_and_the_raw_lines(void **state) {
  ax_store *s = *state;
  fx_result r = FX_RUN(NULL, "audit", "--data", s->data, "--key", "priv-esc", "-v", "--limit", "1",
                       "--oldest-first");
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "\n    types=SYSCALL,EXECVE,CWD,PATH,PATH,PROCTITLE,EOE"));
  assert_non_null(strstr(r.out, "\n    AUID=alice"));
  assert_non_null(strstr(r.out, "\n    | type=SYSCALL msg=audit("));
  assert_non_null(strstr(r.out, "\n    | type=EOE msg=audit("));
  fx_result_free(&r);
}

static void audit_csv_has_a_header_and_one_row_per_event(void **state) {
  ax_store *s = *state;
  fx_result r = FX_RUN(NULL, "audit", "--data", s->data, "--verb", "delete", "--output", "csv",
                       "--limit", "0");
  assert_int_equal(r.rc, 0);
  assert_true(strncmp(r.out, "time,node,source,types,auid,uid,syscall,exe,comm,success,exit,key,"
                             "user,verb,resource,subresource,namespace,name,code,decision\r\n",
                      50) == 0);
  size_t n = 0;
  for (int i = 0; i < AX_N; i++) n += s->r[i].kind == AX_K8S && eq(s->r[i].verb, "delete");
  assert_int_equal(fx_lines(r.out), n + 1);
  assert_non_null(strstr(r.out, ",k8s-audit,"));
  fx_result_free(&r);
}

static void audit_no_match_exits_1(void **state) {
  ax_store *s = *state;
  fx_result r = FX_RUN(NULL, "audit", "--data", s->data, "--user", "mallory");
  assert_int_equal(r.rc, 1);
  assert_int_equal(r.out_len, 0);
  fx_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(audit_key_returns_exactly_the_events_with_that_key),
      cmocka_unit_test(audit_auid_takes_numbers_unset_and_logged_names),
      cmocka_unit_test(audit_syscall_name_equals_its_number),
      cmocka_unit_test(audit_success_type_and_exe_glob),
      cmocka_unit_test(audit_k8s_user_verb_resource_namespace_status),
      cmocka_unit_test(audit_without_source_filter_merges_both_sources_by_time),
      cmocka_unit_test(audit_text_line_shows_who_what_result_and_key),
      cmocka_unit_test(audit_verbose_adds_every_attr_and_the_raw_lines),
      cmocka_unit_test(audit_csv_has_a_header_and_one_row_per_event),
      cmocka_unit_test(audit_no_match_exits_1),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
