/* tests/aggregator/acl_test.c: the --query-acl parser and matcher
 * (aggregator/acl.c): default deny, namespace globs, sources, and one-line
 * errors with the file line for every malformed entry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator/internal.h"

static const char good[] =
    "identities:\n"
    "  team-a: {namespaces: [\"team-a\", \"team-a-*\"], sources: [container]}\n"
    "  auditor:\n"
    "    namespaces: [\"*\"]\n"
    "    sources: [container, audit, k8s-audit, query]\n";

static agg_acl *parse_ok(const char *text) {
  agg_acl *acl = NULL;
  char err[512] = "";
  cairn_err e = agg__acl_parse(text, strlen(text), "acl.yaml", &acl, err, sizeof(err));
  if (e != CAIRN_OK) fail_msg("parse failed: %s", err);
  return acl;
}

/* Parse text expecting failure; err gets the message. */
static void parse_fails(const char *text, char *err, size_t cap) {
  agg_acl *acl = NULL;
  err[0] = '\0';
  assert_int_equal(agg__acl_parse(text, strlen(text), "acl.yaml", &acl, err, cap),
                   CAIRN_E_CONFIG);
  assert_null(acl);
  assert_null(strchr(err, '\n'));
}

static Cairn__Record rec(int source, const char *ns) {
  Cairn__Record r = CAIRN__RECORD__INIT;
  r.source = (Cairn__Source)source;
  r.kube_namespace = (char *)ns;
  return r;
}

static void unlisted_identity_is_denied(void **state) {
  (void)state;
  agg_acl *acl = parse_ok(good);
  assert_int_equal(agg__acl_count(acl), 2);
  assert_null(agg__acl_find(acl, "team-b"));
  assert_null(agg__acl_find(acl, ""));
  assert_null(agg__acl_find(acl, "TEAM-A")); /* identities are exact */
  assert_null(agg__acl_find(NULL, "team-a"));
  agg__acl_free(acl);
}

static void team_reads_only_its_namespace_globs_and_sources(void **state) {
  (void)state;
  agg_acl *acl = parse_ok(good);
  const agg_acl_entry *t = agg__acl_find(acl, "team-a");
  assert_non_null(t);
  assert_true(agg__acl_namespace_ok(t, "team-a"));
  assert_true(agg__acl_namespace_ok(t, "team-a-staging"));
  assert_false(agg__acl_namespace_ok(t, "team-ab"));
  assert_false(agg__acl_namespace_ok(t, "team-b"));
  assert_false(agg__acl_namespace_ok(t, ""));
  assert_false(agg__acl_namespace_ok(t, NULL));
  assert_false(agg__acl_all_namespaces(t));
  assert_true(agg__acl_source_ok(t, CAIRN__SOURCE__SOURCE_CONTAINER));
  assert_false(agg__acl_source_ok(t, CAIRN__SOURCE__SOURCE_AUDIT));
  assert_false(agg__acl_source_ok(t, CAIRN__SOURCE__SOURCE_QUERY));
  assert_false(agg__acl_source_ok(t, 0));
  Cairn__Record r1 = rec(CAIRN__SOURCE__SOURCE_CONTAINER, "team-a-dev");
  Cairn__Record r2 = rec(CAIRN__SOURCE__SOURCE_CONTAINER, "team-b");
  Cairn__Record r3 = rec(CAIRN__SOURCE__SOURCE_AUDIT, "team-a"); /* right ns, wrong source */
  Cairn__Record r4 = rec(CAIRN__SOURCE__SOURCE_AUDIT, "");
  assert_true(agg__acl_record_ok(t, &r1));
  assert_false(agg__acl_record_ok(t, &r2));
  assert_false(agg__acl_record_ok(t, &r3));
  assert_false(agg__acl_record_ok(t, &r4));
  agg__acl_free(acl);
}

static void star_grants_every_namespace_also_none(void **state) {
  (void)state;
  agg_acl *acl = parse_ok(good);
  const agg_acl_entry *a = agg__acl_find(acl, "auditor");
  assert_non_null(a);
  assert_true(agg__acl_all_namespaces(a));
  Cairn__Record r1 = rec(CAIRN__SOURCE__SOURCE_AUDIT, "");
  Cairn__Record r2 = rec(CAIRN__SOURCE__SOURCE_QUERY, "");
  Cairn__Record r3 = rec(CAIRN__SOURCE__SOURCE_CONTAINER, "team-b");
  assert_true(agg__acl_record_ok(a, &r1));
  assert_true(agg__acl_record_ok(a, &r2));
  assert_true(agg__acl_record_ok(a, &r3));
  agg__acl_free(acl);
}

static void scalar_values_are_one_element_lists(void **state) {
  (void)state;
  agg_acl *acl = parse_ok("identities:\n  ops: {namespaces: payments, sources: audit}\n");
  const agg_acl_entry *o = agg__acl_find(acl, "ops");
  assert_non_null(o);
  assert_true(agg__acl_namespace_ok(o, "payments"));
  assert_true(agg__acl_source_ok(o, CAIRN__SOURCE__SOURCE_AUDIT));
  assert_false(agg__acl_source_ok(o, CAIRN__SOURCE__SOURCE_CONTAINER));
  agg__acl_free(acl);
}

static void unknown_source_names_it_with_the_line(void **state) {
  (void)state;
  char err[512];
  parse_fails("identities:\n  a: {namespaces: [x], sources: [container]}\n"
              "  b: {namespaces: [x], sources: [containers]}\n",
              err, sizeof(err));
  assert_non_null(strstr(err, "acl.yaml:3:"));
  assert_non_null(strstr(err, "identities.b.sources: unknown source 'containers'"));
}

static void missing_fields_and_unknown_keys_are_errors(void **state) {
  (void)state;
  char err[512];
  parse_fails("identities:\n  a: {sources: [container]}\n", err, sizeof(err));
  assert_non_null(strstr(err, "identities.a: namespaces is required"));
  parse_fails("identities:\n  a: {namespaces: [x]}\n", err, sizeof(err));
  assert_non_null(strstr(err, "identities.a: sources is required"));
  parse_fails("identities:\n  a: {namespaces: [x], sources: [audit], verbs: [get]}\n", err,
              sizeof(err));
  assert_non_null(strstr(err, "unknown key 'verbs'"));
  parse_fails("users:\n  a: {namespaces: [x], sources: [audit]}\n", err, sizeof(err));
  assert_non_null(strstr(err, "acl.yaml:1: unknown key 'users'"));
  parse_fails("identities:\n  a: {namespaces: [\"\"], sources: [audit]}\n", err, sizeof(err));
  assert_non_null(strstr(err, "empty pattern"));
  parse_fails("identities:\n  a: {namespaces: [x], sources: [audit]}\n"
              "  a: {namespaces: [y], sources: [audit]}\n",
              err, sizeof(err));
  assert_non_null(strstr(err, "identities.a: listed twice"));
  parse_fails("identities: [a, b]\n", err, sizeof(err));
  assert_non_null(strstr(err, "identities: expected a mapping"));
  parse_fails("", err, sizeof(err));
  assert_non_null(strstr(err, "empty file"));
}

static void invalid_yaml_is_an_error_with_a_line(void **state) {
  (void)state;
  char err[512];
  parse_fails("identities:\n  a: {namespaces: [x, sources: [audit]\n", err, sizeof(err));
  assert_non_null(strstr(err, "not valid YAML"));
}

static void load_reads_a_file_and_names_a_missing_one(void **state) {
  (void)state;
  char path[] = "/tmp/cairn-acl-test.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
  close(fd);
  agg_acl *acl = NULL;
  char err[512] = "";
  assert_int_equal(agg__acl_load(path, &acl, err, sizeof(err)), CAIRN_OK);
  assert_non_null(agg__acl_find(acl, "auditor"));
  agg__acl_free(acl);
  unlink(path);
  assert_int_equal(agg__acl_load(path, &acl, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_null(acl);
  assert_non_null(strstr(err, "--query-acl"));
  assert_non_null(strstr(err, "cannot open"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(unlisted_identity_is_denied),
      cmocka_unit_test(team_reads_only_its_namespace_globs_and_sources),
      cmocka_unit_test(star_grants_every_namespace_also_none),
      cmocka_unit_test(scalar_values_are_one_element_lists),
      cmocka_unit_test(unknown_source_names_it_with_the_line),
      cmocka_unit_test(missing_fields_and_unknown_keys_are_errors),
      cmocka_unit_test(invalid_yaml_is_an_error_with_a_line),
      cmocka_unit_test(load_reads_a_file_and_names_a_missing_one),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
