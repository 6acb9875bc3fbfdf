/* tests/aggregator/cli_test.c: the cairn-aggregator binary ($CAIRN_BUILD) as
 * operators run it: exit codes and one-line messages for bad configuration,
 * --check-config, the YAML file and environment, the port file, and a
 * graceful SIGTERM shutdown that keeps what was acked.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "tests/aggregator/harness.h"

#define INSTANCE "cafebabecafebabecafebabecafebabe"

static int setup(void **state) {
  h_env *e = calloc(1, sizeof(*e));
  h_env_init(e);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  h_env *e = *state;
  h_env_fini(e);
  free(e);
  return 0;
}

static const char *bin(void) {
  static char path[512]; /* set once, test thread only */
  const char *b = getenv("CAIRN_BUILD");
  snprintf(path, sizeof(path), "%s/cairn-aggregator", b ? b : ".");
  if (access(path, X_OK) != 0) fail_msg("%s is not built (cmake --build first)", path);
  return path;
}

/* Start the binary with args (NULL-terminated), stdout+stderr to out_file. */
static pid_t spawn(const char *out_file, char *const *args) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    FILE *f = freopen(out_file, "w", stdout);
    if (!f || dup2(STDOUT_FILENO, STDERR_FILENO) < 0) _exit(127);
    execv(bin(), args);
    _exit(127);
  }
  return pid;
}

/* Wait for pid with a deadline; returns the exit status or -1 on timeout/signal. */
static int wait_exit(pid_t pid, int timeout_ms) {
  int64_t deadline = cairn_time_mono_ns() + (int64_t)timeout_ms * 1000000;
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (cairn_time_mono_ns() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
}

static void slurp(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(out, 1, cap - 1, f);
  out[n] = '\0';
  fclose(f);
}

/* Run to completion; returns the exit status, output in out. */
static int run(h_env *e, char *const *args, char *out, size_t cap) {
  char of[400];
  snprintf(of, sizeof(of), "%s/out.txt", e->root);
  int rc = wait_exit(spawn(of, args), 20000);
  slurp(of, out, cap);
  return rc;
}

static void query_listen_without_acl_exits_2_naming_query_acl(void **state) {
  h_env *e = *state;
  char data[400];
  snprintf(data, sizeof(data), "%s/data", e->root);
  char *args[] = {(char *)"cairn-aggregator", (char *)"--data", data, (char *)"--listen",
                  (char *)"127.0.0.1:0", (char *)"--tls-cert", (char *)"c.pem",
                  (char *)"--tls-key", (char *)"k.pem", (char *)"--tls-ca", (char *)"ca.pem",
                  (char *)"--query-listen", (char *)"127.0.0.1:7401", NULL};
  char out[4096];
  assert_int_equal(run(e, args, out, sizeof(out)), 2);
  assert_non_null(strstr(out, "--query-listen needs --query-acl FILE"));
  assert_null(strchr(strchr(out, '\n') + 1, '\n')); /* one line */
}

static void query_listen_not_hostport_exits_2(void **state) {
  h_env *e = *state;
  char data[400];
  snprintf(data, sizeof(data), "%s/data", e->root);
  char *args[] = {(char *)"cairn-aggregator", (char *)"--data", data, (char *)"--listen",
                  (char *)"127.0.0.1:0", (char *)"--tls-cert", (char *)"c.pem",
                  (char *)"--tls-key", (char *)"k.pem", (char *)"--tls-ca", (char *)"ca.pem",
                  (char *)"--query-acl", (char *)"acl.yaml", (char *)"--query-listen",
                  (char *)"nowhere", NULL};
  char out[4096];
  assert_int_equal(run(e, args, out, sizeof(out)), 2);
  assert_non_null(strstr(out, "--query-listen: 'nowhere' is not HOST:PORT"));
}

static void missing_data_exits_2_naming_the_option(void **state) {
  h_env *e = *state;
  char *args[] = {(char *)"cairn-aggregator", (char *)"--listen", (char *)"127.0.0.1:0", NULL};
  char out[4096];
  assert_int_equal(run(e, args, out, sizeof(out)), 2);
  assert_non_null(strstr(out, "--data is required"));
  assert_non_null(strchr(out, '\n'));
  assert_null(strchr(strchr(out, '\n') + 1, '\n')); /* one line */
}

static void unreadable_certificate_exits_2_naming_it(void **state) {
  h_env *e = *state;
  char *args[] = {(char *)"cairn-aggregator", (char *)"--data", e->data, (char *)"--listen",
                  (char *)"127.0.0.1:0", (char *)"--tls-cert", (char *)"/nonexistent/cert.pem",
                  (char *)"--tls-key", (char *)"/nonexistent/key.pem", (char *)"--tls-ca",
                  (char *)"/nonexistent/ca.pem", NULL};
  char out[4096];
  assert_int_equal(run(e, args, out, sizeof(out)), 2);
  assert_non_null(strstr(out, "/nonexistent/"));
}

static void check_config_merges_file_env_and_flags(void **state) {
  h_env *e = *state;
  char yaml[400];
  snprintf(yaml, sizeof(yaml), "%s/agg.yaml", e->root);
  FILE *f = fopen(yaml, "w");
  assert_non_null(f);
  fprintf(f, "data: /from/file\nlisten: 127.0.0.1:1\ntls:\n  cert: c.pem\n  key: k.pem\n  ca: a.pem\n"
             "kafka:\n  topic: file-topic\nstorage:\n  group_commit: 8\n");
  fclose(f);
  setenv("CAIRN_KAFKA_TOPIC", "env-topic", 1);
  char *args[] = {(char *)"cairn-aggregator", (char *)"--config", yaml, (char *)"--listen",
                  (char *)"127.0.0.1:9", (char *)"--check-config", NULL};
  char out[8192];
  int rc = run(e, args, out, sizeof(out));
  unsetenv("CAIRN_KAFKA_TOPIC");
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "data: /from/file\n"));
  assert_non_null(strstr(out, "listen: 127.0.0.1:9\n"));         /* flag beats file */
  assert_non_null(strstr(out, "kafka.topic: env-topic\n"));      /* env beats file */
  assert_non_null(strstr(out, "storage.group_commit: 8\n"));
  assert_non_null(strstr(out, "shutdown_timeout: 10000ms\n"));  /* default */
}

static bool file_exists(void *path) { return access((const char *)path, R_OK) == 0; }

static void sigterm_stops_gracefully_and_keeps_acked_records(void **state) {
  h_env *e = *state;
  char pf[400], of[400], cert[400], key[400], ca[400];
  snprintf(pf, sizeof(pf), "%s/agg.port", e->root);
  snprintf(of, sizeof(of), "%s/agg.log", e->root);
  h_path(cert, sizeof(cert), e, "server.pem");
  h_path(key, sizeof(key), e, "server.key");
  h_path(ca, sizeof(ca), e, "ca.pem");
  char *args[] = {(char *)"cairn-aggregator", (char *)"--data", e->data, (char *)"--listen",
                  (char *)"127.0.0.1:0", (char *)"--tls-cert", cert, (char *)"--tls-key", key,
                  (char *)"--tls-ca", ca, (char *)"--port-file", pf, (char *)"--no-sync", NULL};
  pid_t pid = spawn(of, args);
  if (!h_wait(file_exists, pf, 20000)) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("no port file within 20 s");
  }
  char addr[128];
  slurp(pf, addr, sizeof(addr));
  addr[strcspn(addr, "\n")] = '\0';

  h_client c;
  h_client_open_addr(&c, e, addr, "node-1");
  h_client_hello(&c, INSTANCE, "node-1");
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  assert_int_equal(c.msgs[0].status, CAIRN__ACK_STATUS__ACK_OK);
  h_client_batch(&c, 1, 4, 0, 25, 0);
  assert_true(h_client_wait_msgs(&c, 2, 10000));
  assert_int_equal(c.msgs[1].stored, 25);

  assert_int_equal(kill(pid, SIGTERM), 0);
  assert_true(h_client_run(&c, hc_is_closed, 15000)); /* the server closes the session */
  int rc = wait_exit(pid, 15000);
  char log[16384];
  slurp(of, log, sizeof(log));
  if (rc != 0) fail_msg("exit status %d; log:\n%s", rc, log);
  assert_non_null(strstr(log, "shutting down (SIGTERM)"));
  assert_non_null(strstr(log, "kafka forwarding is off (no --kafka-brokers)"));
  assert_non_null(strstr(log, "identity=node-1 node=node-1 instance=" INSTANCE));
  h_client_close(&c);

  sto_env *env = NULL;
  sto_options ro = {.read_only = true};
  assert_int_equal(sto_open(e->data, &ro, &env, NULL, 0), CAIRN_OK);
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_int_equal(st.records, 25);
  sto_close(env);
}

int main(void) {
  cairn_log_setup(CAIRN_LOG_WARN, CAIRN_LOG_LOGFMT);
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(query_listen_without_acl_exits_2_naming_query_acl, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(query_listen_not_hostport_exits_2, setup, teardown),
      cmocka_unit_test_setup_teardown(missing_data_exits_2_naming_the_option, setup, teardown),
      cmocka_unit_test_setup_teardown(unreadable_certificate_exits_2_naming_it, setup, teardown),
      cmocka_unit_test_setup_teardown(check_config_merges_file_env_and_flags, setup, teardown),
      cmocka_unit_test_setup_teardown(sigterm_stops_gracefully_and_keeps_acked_records, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
