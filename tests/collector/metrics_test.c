/* tests/collector/metrics_test.c: the collector's /metrics, /healthz and
 * /readyz. The rendering is checked in process on a hand-filled collector;
 * then real cairn-aggregator and cairn-collector processes (from CAIRN_BUILD,
 * certificates from tests/tools/gen-certs.sh) run on 127.0.0.1 with port 0 +
 * port files, and the test scrapes the running collector over HTTP while it
 * reads, ships, rotates and loses its aggregator. Deadlines, no fixed sleeps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/internal.h"

/* ---------------- in process: rendering and readiness ---------------- */

static void render_labels_each_input_and_escapes_the_spec(void **state) {
  col_input in[2] = {{.format = CAIRN__FORMAT__FORMAT_CRI, .spec = (char *)"cri:/var/log/containers/*.log"},
                     {.format = CAIRN__FORMAT__FORMAT_DOCKER, .spec = (char *)"docker:/x/\"q\"\\b/*.log"}};
  col_config cfg = {.in = in, .n_in = 2};
  col_input_stats is[2] = {{.lines_read = 7, .bytes_read = 700, .records = 7, .parse_unparsed = 2,
                            .records_truncated = 1},
                           {.lines_read = 3}};
  col_collector c = {.cfg = &cfg, .in_stats = is, .unacked_raw = 4096, .q_len = 2};
  c.stats.records_sent = 11;
  c.stats.records_acked = 9;
  c.stats.rejects = 1;
  c.stats.retries = 4;
  c.stats.ckpt_commits = 5;
  c.stats.rotations = 2;
  c.stats.audit_gaps = 3;
  c.stats.audit_lost = 7;
  cairn_buf b = {0};
  assert_int_equal(col__metrics_render(&c, 0, &b), CAIRN_OK);
  assert_int_equal(cairn_buf_append(&b, "", 1), CAIRN_OK);
  const char *t = (const char *)b.ptr;
  assert_non_null(strstr(t, "\ncairn_collector_lines_read_total{input=\"cri:/var/log/containers/*.log\"} 7\n"));
  assert_non_null(strstr(t, "\ncairn_collector_lines_read_total{input=\"docker:/x/\\\"q\\\"\\\\b/*.log\"} 3\n"));
  assert_non_null(strstr(t, "\ncairn_collector_bytes_read_total{input=\"cri:/var/log/containers/*.log\"} 700\n"));
  assert_non_null(strstr(t, "\ncairn_collector_parse_errors_total{input=\"cri:/var/log/containers/*.log\"} 2\n"));
  assert_non_null(strstr(t, "\ncairn_collector_records_truncated_total{input=\"cri:/var/log/containers/*.log\"} 1\n"));
  assert_non_null(strstr(t, "\n# TYPE cairn_collector_records_sent_total counter\ncairn_collector_records_sent_total 11\n"));
  assert_non_null(strstr(t, "\ncairn_collector_records_acked_total 9\n"));
  assert_non_null(strstr(t, "\ncairn_collector_acks_reject_total 1\n"));
  assert_non_null(strstr(t, "\ncairn_collector_acks_retry_total 4\n"));
  assert_non_null(strstr(t, "\ncairn_collector_checkpoint_commits_total 5\n"));
  assert_non_null(strstr(t, "\ncairn_collector_rotations_total 2\n"));
  assert_non_null(strstr(t, "\ncairn_collector_audit_gaps_total 3\n"));
  assert_non_null(strstr(t, "\ncairn_collector_audit_events_lost_total 7\n"));
  assert_non_null(strstr(t, "\n# TYPE cairn_collector_unacked_bytes gauge\ncairn_collector_unacked_bytes 4096\n"));
  assert_non_null(strstr(t, "\ncairn_collector_batches_queued 2\n"));
  assert_non_null(strstr(t, "\ncairn_collector_aggregator_connected 0\n"));
  /* every sample line belongs to a family announced by a TYPE line before it */
  const char *p = t;
  while (*p) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    if (*p != '#') {
      char name[128];
      size_t n = strcspn(p, "{ ");
      assert_true(n < sizeof(name));
      memcpy(name, p, n);
      name[n] = '\0';
      char want[160];
      snprintf(want, sizeof(want), "# TYPE %s ", name);
      const char *ty = strstr(t, want);
      if (!ty || ty > p) fail_msg("sample %s has no TYPE line before it", name);
    }
    p = nl + 1;
  }
  cairn_buf_fini(&b);
}

static void readiness_needs_a_session_and_not_stopping(void **state) {
  col_config cfg = {0};
  col_collector c = {.cfg = &cfg};
  const char *why = NULL;
  assert_false(col__metrics_ready(&c, 1000, &why));
  assert_string_equal(why, "not connected to an aggregator");
  c.stopping = true;
  assert_false(col__metrics_ready(&c, 1000, &why));
  assert_string_equal(why, "shutting down");
}

/* ---------------- real processes ---------------- */

typedef struct fx {
  char root[64];
  char bin_agg[512], bin_col[512], gen_certs[512];
  char logs[128];
  pid_t agg, col;
} fx;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void path_of(const fx *f, char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", f->root, name);
}

/* Start argv with stdout+stderr to ROOT/<log>; returns the pid. */
static pid_t spawn(const fx *f, const char *log, char *const argv[]) {
  char lp[256];
  path_of(f, lp, sizeof(lp), log);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) _exit(127);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

static int wait_exit(pid_t pid, int64_t timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  int st;
  while (now_ms() < end) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(20 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  fail_msg("process %d did not exit within %lld ms", (int)pid, (long long)timeout_ms);
  return -1;
}

/* Poll until path holds a line; returns it in out. */
static void read_port_file(const char *path, char *out, size_t cap) {
  int64_t end = now_ms() + 30000;
  while (now_ms() < end) {
    FILE *fp = fopen(path, "r");
    if (fp) {
      bool ok = fgets(out, (int)cap, fp) != NULL;
      fclose(fp);
      if (ok && strchr(out, '\n')) {
        out[strcspn(out, "\n")] = '\0';
        return;
      }
    }
    usleep(20 * 1000);
  }
  fail_msg("no address in %s after 30s", path);
}

/* GET path from addr ("127.0.0.1:PORT"); whole response into out. false when
 * the connection failed. */
static bool http_get(const char *addr, const char *path, char *out, size_t cap) {
  const char *colon = strrchr(addr, ':');
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  char host[64];
  snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return false;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return false;
  }
  char req[256];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: test\r\n\r\n", path);
  if (write(fd, req, (size_t)n) != n) {
    close(fd);
    return false;
  }
  size_t len = 0;
  ssize_t r;
  while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0) len += (size_t)r;
  out[len] = '\0';
  close(fd);
  return len > 0;
}

/* Value of the sample line starting with `series ` in a /metrics body, -1 if absent. */
static long long sample(const char *body, const char *series) {
  size_t n = strlen(series);
  for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, series, n) == 0 && p[n] == ' ') return atoll(p + n + 1);
  }
  return -1;
}

/* Scrape until series >= want (30 s deadline); returns the last body in out. */
static void wait_sample(const char *addr, const char *series, long long want, char *out,
                        size_t cap) {
  int64_t end = now_ms() + 30000;
  long long v = -1;
  while (now_ms() < end) {
    if (http_get(addr, "/metrics", out, cap) && (v = sample(out, series)) >= want) return;
    usleep(50 * 1000);
  }
  fail_msg("%s is %lld after 30s, want >= %lld", series, v, want);
}

static void wait_status(const char *addr, const char *path, const char *status, char *out,
                        size_t cap) {
  int64_t end = now_ms() + 30000;
  while (now_ms() < end) {
    if (http_get(addr, path, out, cap) && strncmp(out, status, strlen(status)) == 0) return;
    usleep(50 * 1000);
  }
  fail_msg("GET %s never answered '%s' within 30s; last: %.80s", path, status, out);
}

static void write_text(const char *path, const char *text, const char *mode) {
  FILE *fp = fopen(path, mode);
  assert_non_null(fp);
  assert_true(fputs(text, fp) >= 0);
  assert_int_equal(fclose(fp), 0);
}

static int fx_setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  const char *b = getenv("CAIRN_BUILD"), *s = getenv("CAIRN_SRC");
  if (!b || !s) {
    fprintf(stderr, "CAIRN_BUILD and CAIRN_SRC must be set (ctest sets them)\n");
    return -1;
  }
  snprintf(f->bin_agg, sizeof(f->bin_agg), "%s/cairn-aggregator", b);
  snprintf(f->bin_col, sizeof(f->bin_col), "%s/cairn-collector", b);
  snprintf(f->gen_certs, sizeof(f->gen_certs), "%s/tests/tools/gen-certs.sh", s);
  snprintf(f->root, sizeof(f->root), "/tmp/cairn-colmetrics-XXXXXX");
  if (!mkdtemp(f->root)) return -1;
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "bash '%s' '%s/pki' >/dev/null", f->gen_certs, f->root);
  if (system(cmd) != 0) return -1;
  path_of(f, f->logs, sizeof(f->logs), "logs");
  mkdir(f->logs, 0700);
  *state = f;
  return 0;
}

static int fx_teardown(void **state) {
  fx *f = *state;
  int st;
  if (f->col > 0 && waitpid(f->col, &st, WNOHANG) == 0) {
    kill(f->col, SIGKILL);
    waitpid(f->col, &st, 0);
  }
  if (f->agg > 0 && waitpid(f->agg, &st, WNOHANG) == 0) {
    kill(f->agg, SIGKILL);
    waitpid(f->agg, &st, 0);
  }
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", f->root);
  free(f);
  return 0;
}

static void start_aggregator(fx *f, char *addr, size_t cap) {
  char data[256], pf[256], cert[256], key[256], ca[256];
  path_of(f, data, sizeof(data), "data");
  path_of(f, pf, sizeof(pf), "agg.addr");
  path_of(f, cert, sizeof(cert), "pki/server.pem");
  path_of(f, key, sizeof(key), "pki/server.key");
  path_of(f, ca, sizeof(ca), "pki/ca.pem");
  unlink(pf);
  char *argv[] = {f->bin_agg, "--data", data, "--listen", "127.0.0.1:0", "--port-file", pf,
                  "--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, "--no-sync", NULL};
  f->agg = spawn(f, "aggregator.log", argv);
  read_port_file(pf, addr, cap);
}

static void running_collector_serves_metrics_health_and_readiness(void **state) {
  fx *f = *state;
  char agg_addr[128];
  start_aggregator(f, agg_addr, sizeof(agg_addr));

  /* 3 good lines, 1 that is not CRI, 1 over --max-record-size (1 KiB) */
  char log[256];
  snprintf(log, sizeof(log), "%s/app_ns_web-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
           f->logs);
  static char big[3000];
  memcpy(big, "2024-01-01T00:00:00.000000000Z stdout F ", 40);
  memset(big + 40, 'x', sizeof(big) - 42);
  big[sizeof(big) - 2] = '\n';
  write_text(log,
             "2024-01-01T00:00:00.000000000Z stdout F one\n"
             "2024-01-01T00:00:01.000000000Z stdout F two\n"
             "this is not a CRI line\n"
             "2024-01-01T00:00:02.000000000Z stderr F three\n", "w");
  write_text(log, big, "a");
  struct stat sb;
  assert_int_equal(stat(log, &sb), 0);

  /* metrics options from the YAML file (keys metrics.listen / metrics.port_file) */
  char conf[256], mpf[256], st[256], cert[256], key[256], ca[256], input[256];
  path_of(f, conf, sizeof(conf), "collector.yaml");
  path_of(f, mpf, sizeof(mpf), "metrics.addr");
  path_of(f, st, sizeof(st), "state");
  path_of(f, cert, sizeof(cert), "pki/client.pem");
  path_of(f, key, sizeof(key), "pki/client.key");
  path_of(f, ca, sizeof(ca), "pki/ca.pem");
  snprintf(input, sizeof(input), "cri:%s/*.log", f->logs);
  char yaml[1024];
  snprintf(yaml, sizeof(yaml), "metrics:\n  listen: 127.0.0.1:0\n  port_file: %s\n", mpf);
  write_text(conf, yaml, "w");
  char *argv[] = {f->bin_col, "--config", conf, "--state", st, "--aggregator", agg_addr,
                  "--server-name", "localhost", "--tls-cert", cert, "--tls-key", key,
                  "--tls-ca", ca, "--node-name", "node-1", "--input", input,
                  "--max-record-size", "1KiB", "--rotate-wait", "200ms",
                  "--read-interval", "50ms", "--batch-max-delay", "50ms", NULL};
  f->col = spawn(f, "collector.log", argv);
  char maddr[128];
  read_port_file(mpf, maddr, sizeof(maddr));

  static char body[65536];
  char series[512];
  snprintf(series, sizeof(series), "cairn_collector_lines_read_total{input=\"%s\"}", input);
  wait_sample(maddr, "cairn_collector_records_acked_total", 5, body, sizeof(body));
  wait_sample(maddr, "cairn_collector_checkpoint_commits_total", 1, body, sizeof(body));
  assert_non_null(strstr(body, "HTTP/1.0 200 OK\r\n"));
  assert_non_null(strstr(body, "Content-Type: text/plain; version=0.0.4"));
  assert_int_equal(sample(body, series), 5);
  snprintf(series, sizeof(series), "cairn_collector_bytes_read_total{input=\"%s\"}", input);
  assert_int_equal(sample(body, series), (long long)sb.st_size);
  snprintf(series, sizeof(series), "cairn_collector_parse_errors_total{input=\"%s\"}", input);
  assert_int_equal(sample(body, series), 1);
  snprintf(series, sizeof(series), "cairn_collector_records_truncated_total{input=\"%s\"}", input);
  assert_int_equal(sample(body, series), 1);
  snprintf(series, sizeof(series), "cairn_collector_files_tailed{input=\"%s\"}", input);
  assert_int_equal(sample(body, series), 1);
  assert_int_equal(sample(body, "cairn_collector_records_sent_total"), 5);
  assert_true(sample(body, "cairn_collector_bytes_sent_total") > 0);
  assert_int_equal(sample(body, "cairn_collector_unacked_bytes"), 0);
  assert_int_equal(sample(body, "cairn_collector_batches_in_flight"), 0);
  assert_int_equal(sample(body, "cairn_collector_aggregator_connected"), 1);
  assert_int_equal(sample(body, "cairn_collector_acks_reject_total"), 0);

  wait_status(maddr, "/readyz", "HTTP/1.0 200 OK", body, sizeof(body));
  assert_true(http_get(maddr, "/healthz", body, sizeof(body)));
  assert_true(strncmp(body, "HTTP/1.0 200 OK", 15) == 0);
  assert_true(http_get(maddr, "/nope", body, sizeof(body)));
  assert_true(strncmp(body, "HTTP/1.0 404", 12) == 0);

  /* a rotation: rename away, a new file under the old name */
  char rotated[300];
  snprintf(rotated, sizeof(rotated), "%s.1", log);
  assert_int_equal(rename(log, rotated), 0);
  write_text(log, "2024-01-01T00:00:03.000000000Z stdout F four\n", "w");
  wait_sample(maddr, "cairn_collector_rotations_total", 1, body, sizeof(body));
  wait_sample(maddr, "cairn_collector_records_acked_total", 6, body, sizeof(body));

  /* the aggregator goes away: not ready, still healthy, reconnects counted */
  kill(f->agg, SIGTERM);
  assert_int_equal(wait_exit(f->agg, 30000), 0);
  f->agg = 0;
  wait_status(maddr, "/readyz", "HTTP/1.0 503", body, sizeof(body));
  assert_non_null(strstr(body, "not connected to an aggregator"));
  assert_true(http_get(maddr, "/healthz", body, sizeof(body)));
  assert_true(strncmp(body, "HTTP/1.0 200 OK", 15) == 0);
  wait_sample(maddr, "cairn_collector_reconnects_total", 1, body, sizeof(body));
  assert_int_equal(sample(body, "cairn_collector_aggregator_connected"), 0);

  kill(f->col, SIGTERM);
  assert_int_equal(wait_exit(f->col, 30000), 0);
  f->col = 0;
}

static void bad_metrics_listen_is_a_config_error(void **state) {
  fx *f = *state;
  char st[256], cert[256], key[256], ca[256];
  path_of(f, st, sizeof(st), "state");
  path_of(f, cert, sizeof(cert), "pki/client.pem");
  path_of(f, key, sizeof(key), "pki/client.key");
  path_of(f, ca, sizeof(ca), "pki/ca.pem");
  char *argv[] = {f->bin_col, "--state", st, "--aggregator", "127.0.0.1:1", "--tls-cert", cert,
                  "--tls-key", key, "--tls-ca", ca, "--metrics-listen", "9401", "--check-config",
                  NULL};
  pid_t pid = spawn(f, "badconf.log", argv);
  assert_int_equal(wait_exit(pid, 30000), 2);
  char lp[256], text[1024] = "";
  path_of(f, lp, sizeof(lp), "badconf.log");
  FILE *fp = fopen(lp, "r");
  assert_non_null(fp);
  size_t n = fread(text, 1, sizeof(text) - 1, fp);
  text[n] = '\0';
  fclose(fp);
  assert_non_null(strstr(text, "--metrics-listen: '9401' is not HOST:PORT"));
}

static void collector_ignores_sigpipe(void **state) {
  /* a scraper or aggregator that hangs up mid-write must not kill the
   * collector: col_collector_new sets SIGPIPE to ignored */
  fx *f = *state;
  signal(SIGPIPE, SIG_DFL);
  char st[256], cert[256], key[256], ca[256], input[256];
  path_of(f, st, sizeof(st), "state-sigpipe");
  path_of(f, cert, sizeof(cert), "pki/client.pem");
  path_of(f, key, sizeof(key), "pki/client.key");
  path_of(f, ca, sizeof(ca), "pki/ca.pem");
  snprintf(input, sizeof(input), "cri:%s/*.log", f->logs);
  char *argv[] = {"cairn-collector", "--state", st, "--aggregator", "127.0.0.1:1", "--tls-cert",
                  cert, "--tls-key", key, "--tls-ca", ca, "--input", input, NULL};
  col_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  bool help = false, check = false;
  char eb[512] = "";
  assert_int_equal(col_config_load(&cfg, 13, argv, &help, &check, eb, sizeof(eb)), CAIRN_OK);
  col_collector *c = NULL;
  assert_int_equal(col_collector_new(&cfg, &c, eb, sizeof(eb)), CAIRN_OK);
  struct sigaction sa;
  assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
  assert_true(sa.sa_handler == SIG_IGN);
  col_collector_free(c);
  col_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(render_labels_each_input_and_escapes_the_spec),
      cmocka_unit_test(readiness_needs_a_session_and_not_stopping),
      cmocka_unit_test_setup_teardown(running_collector_serves_metrics_health_and_readiness,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(bad_metrics_listen_is_a_config_error, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(collector_ignores_sigpipe, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
