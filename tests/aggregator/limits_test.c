/* tests/aggregator/limits_test.c: slow or many connections cannot starve the
 * aggregator. A slowloris-style attacker (raw TCP sockets that send TLS bytes
 * one at a time, or nothing) runs in its own thread against a real agg, while
 * a real collector-side client must be served. Everything runs on 127.0.0.1
 * (the per-address limit is exercised with attacker and collector sharing it).
 * Checks the handshake deadline (--handshake-timeout), the per-address and
 * global connection limits (--max-conns-per-ip, --max-conns), the idle
 * timeout (--idle-timeout), their log lines (stderr is captured), and that a
 * TLS key readable by group/others is refused at start.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "tests/aggregator/harness.h"

#define INSTANCE "0123456789abcdef0123456789abcdef"
#define MS 1000000LL

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

/* ---- stderr capture (the aggregator logs there) ---- */

typedef struct cap {
  char path[400];
  int saved;
} cap;

static void cap_start(cap *c, const h_env *e) {
  snprintf(c->path, sizeof(c->path), "%s/stderr.log", e->root);
  fflush(stderr);
  c->saved = dup(2);
  assert_true(c->saved >= 0);
  int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_true(dup2(fd, 2) == 2);
  close(fd);
}

/* Restore stderr; returns what was logged (caller frees), and echoes it so a
 * failing test still shows the server's log. */
static char *cap_stop(cap *c) {
  fflush(stderr);
  assert_true(dup2(c->saved, 2) == 2);
  close(c->saved);
  FILE *f = fopen(c->path, "r");
  assert_non_null(f);
  char *buf = calloc(1, 1 << 20);
  assert_non_null(buf);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  fputs(buf, stderr);
  return buf;
}

/* ---- the attacker: raw sockets on loopback ---- */

#define ATK_MAX 64

typedef struct attacker {
  const char *from;      /* source address: always "127.0.0.1" */
  uint16_t port;         /* the aggregator's */
  int n;                 /* connections to open */
  bool trickle;          /* send one TLS byte per 100 ms (else send nothing) */
  int64_t deadline_ms;   /* give up after this long */
  int fd[ATK_MAX];
  int64_t opened_ns[ATK_MAX];
  int64_t closed_ns[ATK_MAX]; /* 0 = still open at the deadline */
  pthread_t thread;
} attacker;

static uint16_t port_of(const char *hostport) {
  const char *colon = strrchr(hostport, ':');
  assert_non_null(colon);
  return (uint16_t)atoi(colon + 1);
}

/* Open every connection (blocking connects: the server accepts on its own
 * thread) before the thread starts, so the test knows they were accepted
 * in order. */
static void atk_open(attacker *a) {
  for (int i = 0; i < a->n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, a->from, &src.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(a->port)};
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
    a->fd[i] = fd;
    a->opened_ns[i] = cairn_time_mono_ns();
    a->closed_ns[i] = 0;
  }
}

/* Trickle bytes (or nothing) and note when the server closes each socket. */
static void *atk_main(void *arg) {
  attacker *a = arg;
  /* the start of a TLS ClientHello record, sent one byte at a time */
  static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc,
                                  0x03, 0x03, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  int64_t start = cairn_time_mono_ns();
  int64_t next_byte = start;
  size_t sent = 0;
  for (;;) {
    int64_t now = cairn_time_mono_ns();
    int open = 0;
    struct pollfd pf[ATK_MAX];
    int idx[ATK_MAX];
    for (int i = 0; i < a->n; i++) {
      if (a->closed_ns[i]) continue;
      pf[open].fd = a->fd[i];
      pf[open].events = POLLIN;
      pf[open].revents = 0;
      idx[open++] = i;
    }
    if (open == 0 || now - start > a->deadline_ms * MS) break;
    if (a->trickle && now >= next_byte) {
      for (int k = 0; k < open; k++)
        (void)send(pf[k].fd, &hello[sent % sizeof(hello)], 1, MSG_NOSIGNAL);
      sent++;
      next_byte = now + 100 * MS;
    }
    if (poll(pf, (nfds_t)open, 10) <= 0) continue;
    for (int k = 0; k < open; k++) {
      if (!pf[k].revents) continue;
      uint8_t buf[512];
      ssize_t r = recv(pf[k].fd, buf, sizeof(buf), 0);
      if (r <= 0) a->closed_ns[idx[k]] = cairn_time_mono_ns(); /* EOF or RST */
    }
  }
  return NULL;
}

static void atk_start(attacker *a) {
  atk_open(a);
  assert_int_equal(pthread_create(&a->thread, NULL, atk_main, a), 0);
}

static void atk_join(attacker *a) {
  assert_int_equal(pthread_join(a->thread, NULL), 0);
  for (int i = 0; i < a->n; i++) close(a->fd[i]);
}

/* Connections closed within [lo_ms, hi_ms] after they were opened. */
static int atk_closed_between(const attacker *a, int64_t lo_ms, int64_t hi_ms) {
  int n = 0;
  for (int i = 0; i < a->n; i++) {
    if (!a->closed_ns[i]) continue;
    int64_t d = a->closed_ns[i] - a->opened_ns[i];
    if (d >= lo_ms * MS && d <= hi_ms * MS) n++;
  }
  return n;
}

/* Wait until the server's loop runs (a handshake completes): connections
 * are timed from connect, the server's deadlines from accept, and agg_run
 * may take a moment to start on a loaded machine. */
static void server_running(h_env *e, h_server *s) {
  h_client c;
  h_client_open(&c, e, s, "node-1");
  assert_true(h_client_run(&c, hc_is_ready_or_closed, 10000));
  assert_true(c.ready);
  h_client_close(&c);
  /* the attackers share 127.0.0.1 with this client: wait until the server
   * has closed its side, so it no longer counts against --max-conns-per-ip */
  int64_t deadline = cairn_time_mono_ns() + 10000 * MS;
  while (agg_open_connections(s->a) != 0) {
    assert_true(cairn_time_mono_ns() < deadline);
    struct timespec ts = {0, 5 * MS};
    nanosleep(&ts, NULL);
  }
}

/* ---- a real session alongside ---- */

static void collector_is_served(h_env *e, h_server *s, uint64_t stream) {
  h_client c;
  h_client_open(&c, e, s, "node-1");
  h_client_hello(&c, INSTANCE, NULL);
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  assert_int_equal(c.msgs[0].status, CAIRN__ACK_STATUS__ACK_OK);
  h_client_batch(&c, 1, stream, 0, 10, 0);
  assert_true(h_client_wait_msgs(&c, 2, 10000));
  assert_int_equal(c.msgs[1].type, CAIRN__ENVELOPE__MSG_ACK);
  assert_int_equal(c.msgs[1].status, CAIRN__ACK_STATUS__ACK_OK);
  assert_int_equal(c.msgs[1].stored, 10);
  h_client_close(&c);
}

/* ---- tests ---- */

static void slowloris_connections_are_cut_at_the_handshake_deadline_and_over_limit_refused(
    void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.handshake_timeout_ns = 1000 * MS;
  s.cfg.max_conns_per_ip = 8;
  cap log;
  cap_start(&log, e);
  h_server_start(&s);
  server_running(e, &s);

  attacker trickle = {.from = "127.0.0.1", .port = port_of(agg_listen_addr(s.a)), .n = 20,
                      .trickle = true, .deadline_ms = 8000};
  atk_start(&trickle);
  atk_join(&trickle);
  /* the deadline freed the attacker's 8 slots of this address: a collector
   * from the same address is served at once (serving while under attack is
   * checked by silent_connections_are_cut_at_the_handshake_deadline) */
  int64_t t0 = cairn_time_mono_ns();
  collector_is_served(e, &s, 1);
  int64_t served_ms = (cairn_time_mono_ns() - t0) / MS;
  h_server_stop(&s);
  char *out = cap_stop(&log);

  /* 12 over the limit: closed at accept; 8 within the limit: closed by the
   * handshake deadline however slowly they trickle (1 s, sweep-free timer) */
  int refused = atk_closed_between(&trickle, 0, 500);
  int cut = atk_closed_between(&trickle, 900, 2500);
  if (refused != 12 || cut != 8) {
    for (int i = 0; i < trickle.n; i++)
      fprintf(stderr, "conn %d closed after %lld ms\n", i,
              trickle.closed_ns[i]
                  ? (long long)((trickle.closed_ns[i] - trickle.opened_ns[i]) / MS)
                  : -1LL);
    fail_msg("refused %d (want 12), cut at the deadline %d (want 8)", refused, cut);
  }
  assert_true(served_ms < 1000);
  assert_non_null(strstr(out, "connection from 127.0.0.1:"));
  assert_non_null(strstr(out, "refused: 8 connections from this address are open "
                              "(--max-conns-per-ip 8)"));
  assert_non_null(strstr(out, "TLS handshake with 127.0.0.1:"));
  assert_non_null(strstr(out, "timed out after 1000 ms"));
  free(out);
}

static void silent_connections_are_cut_at_the_handshake_deadline(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.handshake_timeout_ns = 500 * MS;
  h_server_start(&s);
  server_running(e, &s);
  attacker silent = {.from = "127.0.0.1", .port = port_of(agg_listen_addr(s.a)), .n = 10,
                     .trickle = false, .deadline_ms = 8000};
  atk_start(&silent);
  /* while 10 silent connections are open, a collector is served at once */
  int64_t t0 = cairn_time_mono_ns();
  collector_is_served(e, &s, 2);
  int64_t served_ms = (cairn_time_mono_ns() - t0) / MS;
  atk_join(&silent);
  h_server_stop(&s);
  assert_int_equal(atk_closed_between(&silent, 400, 2000), 10);
  assert_true(served_ms < 1000); /* not delayed by the attack */
}

static void connections_over_the_global_cap_are_refused(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.max_conns = 4;
  /* a long handshake timeout keeps "held until the timeout" (3 s) far from
   * "refused at accept" (well under 2 s even when a loaded machine delays
   * the loop): with 1.5 s and a 500 ms window for refusals this test failed
   * now and then while other test suites and valgrind ran beside it */
  s.cfg.handshake_timeout_ns = 3000 * MS;
  cap log;
  cap_start(&log, e);
  h_server_start(&s);
  /* one established connection (it stays open: the loop is running, and it
   * holds a slot), 3 silent ones fill the cap of 4; the 3 opened after them
   * are over it */
  h_client held;
  h_client_open(&held, e, &s, "node-1");
  assert_true(h_client_run(&held, hc_is_ready_or_closed, 10000));
  assert_true(held.ready);
  uint16_t port = port_of(agg_listen_addr(s.a));
  attacker a = {.from = "127.0.0.1", .port = port, .n = 3, .deadline_ms = 10000};
  attacker b = {.from = "127.0.0.1", .port = port, .n = 3, .deadline_ms = 10000};
  atk_start(&a);
  atk_start(&b);
  atk_join(&a);
  atk_join(&b);
  h_client_close(&held);
  /* every slot is free again: a collector gets in */
  collector_is_served(e, &s, 3);
  h_server_stop(&s);
  char *out = cap_stop(&log);
  assert_int_equal(atk_closed_between(&a, 2900, 9000), 3);
  assert_int_equal(atk_closed_between(&b, 0, 2000), 3);
  assert_non_null(strstr(out, "refused: 4 connections are open (--max-conns 4)"));
  free(out);
}

static bool hello_acked_or_closed(h_client *c) { return c->n_msgs >= 1 || c->closed; }

static void idle_sessions_are_closed_with_a_logged_reason_and_busy_ones_are_not(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.idle_timeout_ns = 600 * MS;
  cap log;
  cap_start(&log, e);
  h_server_start(&s);

  h_client quiet, nohello;
  h_client_open(&quiet, e, &s, "node-1");
  h_client_hello(&quiet, INSTANCE, NULL);
  assert_true(h_client_run(&quiet, hello_acked_or_closed, 10000));
  assert_int_equal(quiet.msgs[0].status, CAIRN__ACK_STATUS__ACK_OK);
  int64_t t_quiet = cairn_time_mono_ns();
  h_client_open(&nohello, e, &s, "node-2");
  assert_true(h_client_run(&nohello, hc_is_ready_or_closed, 10000));
  assert_true(nohello.ready);
  int64_t t_nohello = cairn_time_mono_ns();

  /* closed by the sweep within the timeout plus one sweep interval (75 ms)
   * and some scheduling slack */
  assert_true(h_client_run(&quiet, hc_is_closed, 10000));
  int64_t quiet_ms = (cairn_time_mono_ns() - t_quiet) / MS;
  assert_true(h_client_run(&nohello, hc_is_closed, 10000));
  int64_t nohello_ms = (cairn_time_mono_ns() - t_nohello) / MS;
  assert_int_equal(quiet.close_why, CAIRN_E_CLOSED); /* a clean close from the server */
  if (quiet_ms < 550 || quiet_ms > 1500 || nohello_ms < 550 || nohello_ms > 1500)
    fail_msg("idle sessions closed after %lld ms and %lld ms, want about 600",
             (long long)quiet_ms, (long long)nohello_ms);

  /* busy: a batch every 200 ms for 1.8 s (3x the timeout) stays open */
  h_client busy;
  h_client_open(&busy, e, &s, "node-1");
  h_client_hello(&busy, "fedcba9876543210fedcba9876543210", NULL);
  assert_true(h_client_wait_msgs(&busy, 1, 10000));
  for (int i = 0; i < 9; i++) {
    h_client_batch(&busy, (uint64_t)i + 1, 4, (uint64_t)i * 1000, 2, 0);
    assert_true(h_client_wait_msgs(&busy, (size_t)i + 2, 10000));
    h_client_run(&busy, hc_is_closed, 200); /* 200 ms of silence, or a close */
    assert_false(busy.closed);
  }
  h_client_close(&quiet);
  h_client_close(&nohello);
  h_client_close(&busy);
  h_server_stop(&s);
  char *out = cap_stop(&log);
  assert_non_null(strstr(out, "idle: no frame received for 600ms (--idle-timeout)"));
  assert_non_null(
      strstr(out, "CAIRN_E_TIMEOUT: no Hello within 600ms after the TLS handshake (--idle-timeout)"));
  free(out);
}

static void tls_key_readable_by_group_is_refused_at_start(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  assert_int_equal(chmod(s.key, 0640), 0);
  char err[1024] = "";
  agg *a = NULL;
  assert_int_equal(agg_new(&s.cfg, &a, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_null(a);
  char want[1024];
  snprintf(want, sizeof(want),
           "--tls-key: private key %s: the private key is accessible by group or others "
           "(mode 0640): run chmod 600 %s",
           s.key, s.key);
  assert_string_equal(err, want);
  /* others: refused as well; owner-only modes start */
  assert_int_equal(chmod(s.key, 0604), 0);
  assert_int_equal(agg_new(&s.cfg, &a, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_non_null(strstr(err, "(mode 0604)"));
  assert_int_equal(chmod(s.key, 0400), 0);
  h_server_start(&s);
  h_server_stop(&s);
}

static void handshake_timeout_below_100ms_is_a_config_error(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.handshake_timeout_ns = 10 * MS;
  char err[512] = "";
  assert_int_equal(agg_config_validate(&s.cfg, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_non_null(strstr(err, "--handshake-timeout"));
  s.cfg.handshake_timeout_ns = 0;
  s.cfg.tls_min_version = (char *)"1.1";
  assert_int_equal(agg_config_validate(&s.cfg, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_string_equal(err, "--tls-min-version: '1.1' is not 1.3 or 1.2");
}

int main(void) {
  cairn_log_setup(CAIRN_LOG_INFO, CAIRN_LOG_LOGFMT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          slowloris_connections_are_cut_at_the_handshake_deadline_and_over_limit_refused, setup,
          teardown),
      cmocka_unit_test_setup_teardown(silent_connections_are_cut_at_the_handshake_deadline, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(connections_over_the_global_cap_are_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          idle_sessions_are_closed_with_a_logged_reason_and_busy_ones_are_not, setup, teardown),
      cmocka_unit_test_setup_teardown(tls_key_readable_by_group_is_refused_at_start, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(handshake_timeout_below_100ms_is_a_config_error, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
