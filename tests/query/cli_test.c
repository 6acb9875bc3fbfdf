/* tests/query/cli_test.c: cairn-query's command line: help and version,
 * and that every usage, configuration and data error exits 2 with exactly
 * one line on stderr naming what to fix (and nothing on stdout).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/query/fixture.h"

/* Assert r is a usage error: rc 2, no stdout, one stderr line containing want. */
static void assert_usage_error(fx_result *r, const char *want) {
  if (r->rc != 2 || !strstr(r->err, want)) fprintf(stderr, "stderr was: %s", r->err);
  assert_int_equal(r->rc, 2);
  assert_int_equal(r->out_len, 0);
  assert_int_equal(fx_lines(r->err), 1);
  assert_non_null(strstr(r->err, want));
  fx_result_free(r);
}

static void help_and_version_exit_0_on_stdout(void **state) {
  fx_result r = FX_RUN(NULL, "--help");
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "search"));
  assert_non_null(strstr(r.out, "verify-export"));
  assert_int_equal(r.err_len, 0);
  fx_result_free(&r);

  r = FX_RUN(NULL, "--version");
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.out, "cairn-query " CAIRN_VERSION "\n");
  fx_result_free(&r);
}

static void command_help_lists_the_commands_options(void **state) {
  const char *flags[] = {"--data", "--since", "--until", "--namespace", "--pod", "--container",
                         "--node", "--source", "--grep", "--limit", "--oldest-first",
                         "--newest-first", "--output", "--stats"};
  fx_result r = FX_RUN(NULL, "search", "--help");
  assert_int_equal(r.rc, 0);
  for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
    assert_non_null(strstr(r.out, flags[i]));
  fx_result_free(&r);

  /* --help wins over missing --data, and works as "help COMMAND" */
  r = FX_RUN(NULL, "help", "stats");
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "cairn-query stats"));
  assert_non_null(strstr(r.out, "--by"));
  assert_non_null(strstr(r.out, "--histogram"));
  assert_null(strstr(r.out, "--limit"));
  assert_non_null(strstr(r.out, "examples:"));
  fx_result_free(&r);

  /* audit has its own filters, and examples */
  const char *audit_flags[] = {"--key", "--auid", "--uid", "--syscall", "--success", "--type",
                               "--exe", "--user", "--verb", "--resource", "--subresource",
                               "--status", "--verbose", "--namespace", "examples:"};
  r = FX_RUN(NULL, "audit", "--help");
  assert_int_equal(r.rc, 0);
  for (size_t i = 0; i < sizeof(audit_flags) / sizeof(audit_flags[0]); i++)
    assert_non_null(strstr(r.out, audit_flags[i]));
  assert_null(strstr(r.out, "--pod"));
  fx_result_free(&r);
  r = FX_RUN(NULL, "search", "--help");
  assert_non_null(strstr(r.out, "--regex"));
  assert_non_null(strstr(r.out, "--follow"));
  assert_non_null(strstr(r.out, "--stream"));
  assert_non_null(strstr(r.out, "--ignore-case"));
  fx_result_free(&r);
}

static void missing_or_unknown_command_exits_2(void **state) {
  fx_result r = fx_runv(NULL, (const char *const[]){NULL});
  assert_usage_error(&r, "missing command");
  r = FX_RUN(NULL, "serch", "--data", "/tmp");
  assert_usage_error(&r, "unknown command 'serch'");
  r = FX_RUN(NULL, "--data", "/tmp", "search");
  assert_usage_error(&r, "expected a command before '--data'");
}

static void unknown_flag_exits_2_naming_the_flag(void **state) {
  fx_result r = FX_RUN(NULL, "search", "--data", "/tmp", "--podd", "x");
  assert_usage_error(&r, "unknown option '--podd'");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "stray");
  assert_usage_error(&r, "unexpected argument 'stray'");
  r = FX_RUN(NULL, "stats", "--data", "/tmp", "--limit", "5");
  assert_usage_error(&r, "--limit does not apply to stats");
  r = FX_RUN(NULL, "audit", "--data", "/tmp", "--pod", "x");
  assert_usage_error(&r, "--pod does not apply to audit");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--key", "x");
  assert_usage_error(&r, "--key does not apply to search");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--stats=yes");
  assert_usage_error(&r, "--stats takes no value");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--since");
  assert_usage_error(&r, "--since needs a value");
}

static void bad_time_exits_2_with_the_accepted_forms(void **state) {
  fx_result r = FX_RUN(NULL, "search", "--data", "/tmp", "--since", "xyz");
  assert_usage_error(&r, "cairn-query: --since: cannot parse 'xyz' (use RFC 3339, YYYY-MM-DD "
                         "or a duration like 2h)");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--until", "2024-13-01");
  assert_usage_error(&r, "--until: cannot parse '2024-13-01'");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--since", "1h", "--until", "2h");
  assert_usage_error(&r, "is not before --until");
}

static void bad_limit_output_or_source_exits_2(void **state) {
  fx_result r = FX_RUN(NULL, "search", "--data", "/tmp", "--limit", "-3");
  assert_usage_error(&r, "--limit: '-3' is not a count");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--limit", "10x");
  assert_usage_error(&r, "--limit: '10x'");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--output", "xml");
  assert_usage_error(&r, "--output: unknown format 'xml' (use text, json or csv)");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--source", "syslog");
  assert_usage_error(&r, "--source: unknown source 'syslog'");
}

static void filter_empty_or_bad_value_exits_2(void **state) {
  fx_result r;
  /* an empty filter (e.g. an unset shell variable) must not widen to "everything" */
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--namespace", "");
  assert_usage_error(&r, "--namespace is empty");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--grep=");
  assert_usage_error(&r, "--grep is empty");
  r = FX_RUN(NULL, "audit", "--data", "/tmp", "--syscall", "frobnicate");
  assert_usage_error(&r, "--syscall: unknown syscall 'frobnicate'");
  r = FX_RUN(NULL, "audit", "--data", "/tmp", "--success", "maybe");
  assert_usage_error(&r, "--success: 'maybe' is not yes or no");
  r = FX_RUN(NULL, "audit", "--data", "/tmp", "--status", "forbidden");
  assert_usage_error(&r, "--status: 'forbidden' is not an HTTP status");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--regex", "a(b");
  assert_usage_error(&r, "--regex 'a(b': missing closing parenthesis at offset 3");
  r = FX_RUN(NULL, "search", "--data", "/tmp", "--stream", "stdin");
  assert_usage_error(&r, "--stream: 'stdin' is not stdout or stderr");
  r = FX_RUN(NULL, "stats", "--data", "/tmp", "--by", "colour");
  assert_usage_error(&r, "--by: unknown field 'colour'");
  r = FX_RUN(NULL, "stats", "--data", "/tmp", "--histogram", "hourly");
  assert_usage_error(&r, "--histogram: 'hourly' is not a bucket length");
  r = FX_RUN(NULL, "stats", "--data", "/tmp", "--top", "x");
  assert_usage_error(&r, "--top: 'x' is not a count");
  r = FX_RUN(NULL, "audit", "--data", "/tmp", "--key", "exec", "--verb", "get");
  assert_usage_error(&r, "--key filters auditd events and --verb Kubernetes audit events");
  r = FX_RUN(NULL, "audit", "--data", "/tmp", "--source", "container");
  assert_usage_error(&r, "--source container has no audit events");
  r = FX_RUN(NULL, "audit", "--data", "/tmp", "--source", "k8s-audit", "--key", "x");
  assert_usage_error(&r, "--source k8s-audit contradicts --key");
}

static void missing_store_exits_2_with_storages_message(void **state) {
  char dir[] = "/tmp/cairn-query-empty-XXXXXX";
  assert_non_null(mkdtemp(dir));
  fx_result r = FX_RUN(NULL, "search", "--data", dir);
  char want[128];
  snprintf(want, sizeof(want), "no cairn store in %s", dir);
  assert_usage_error(&r, want);
  r = FX_RUN(NULL, "stats", "--data", dir);
  assert_usage_error(&r, want);
  /* the read-only open never creates the store */
  char sub[96];
  snprintf(sub, sizeof(sub), "%s/data.mdb", dir);
  assert_int_equal(access(sub, F_OK), -1);
  assert_int_equal(rmdir(dir), 0);
}

static void missing_data_dir_exits_2(void **state) {
  fx_result r = FX_RUN(NULL, "search", "--pod", "x");
  assert_usage_error(&r, "pass --data DIR or set CAIRN_DATA");
}

/* export and verify-export exist now (tests/query/export_test.c); their
 * required arguments are usage errors like any other. */
static void export_commands_without_their_arguments_exit_2(void **state) {
  fx_result r = FX_RUN("/tmp", "export", "--data", "/tmp");
  assert_usage_error(&r, "cairn-query export: --out DIR is required");
  r = FX_RUN("/tmp", "verify-export", "--data", "/tmp");
  assert_usage_error(&r, "cairn-query verify-export: --data does not apply to verify-export");
}

/* remote mode itself runs against a real aggregator in
 * tests/integration/remote_query_test.sh; here: what is refused up front */
static void server_mode_usage_errors_exit_2(void **state) {
  fx_result r = FX_RUN(NULL, "search", "--server", "agg:7000", "--pod", "x");
  assert_usage_error(&r, "--server needs --tls-cert FILE");
  r = FX_RUN(NULL, "stats", "--server=agg:7000", "--tls-ca", "ca.pem");
  assert_usage_error(&r, "--server needs --tls-cert FILE");
  r = FX_RUN(NULL, "verify", "--server=agg:7000");
  assert_usage_error(&r, "cairn-query verify: cannot run remotely (--server)");
  r = FX_RUN(NULL, "export", "--server=agg:7000", "--out", "/tmp/x");
  assert_usage_error(&r, "cairn-query export: cannot run remotely (--server)");
  r = FX_RUN(NULL, "search", "--server=agg:7000", "--tls-cert", "c", "--tls-key", "k",
             "--tls-ca", "ca", "--follow");
  assert_usage_error(&r, "--follow cannot run remotely");
  r = FX_RUN("/tmp", "search", "--server=agg:7000", "--tls-cert", "c", "--tls-key", "k",
             "--tls-ca", "ca", "--data", "/tmp");
  assert_usage_error(&r, "--server and --data exclude each other");
  r = FX_RUN(NULL, "search", "--tls-ca", "ca.pem");
  assert_usage_error(&r, "--tls-* are for remote mode");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(help_and_version_exit_0_on_stdout),
      cmocka_unit_test(command_help_lists_the_commands_options),
      cmocka_unit_test(missing_or_unknown_command_exits_2),
      cmocka_unit_test(unknown_flag_exits_2_naming_the_flag),
      cmocka_unit_test(bad_time_exits_2_with_the_accepted_forms),
      cmocka_unit_test(bad_limit_output_or_source_exits_2),
      cmocka_unit_test(filter_empty_or_bad_value_exits_2),
      cmocka_unit_test(missing_store_exits_2_with_storages_message),
      cmocka_unit_test(missing_data_dir_exits_2),
      cmocka_unit_test(export_commands_without_their_arguments_exit_2),
      cmocka_unit_test(server_mode_usage_errors_exit_2),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
