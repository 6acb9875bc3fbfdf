/* tests/proto/tls_test.c: framed mutual-TLS connections over real loopback
 * sockets, with certificates generated at test time by tests/tools/gen-certs.sh.
 * Each test runs one uv loop holding a server on 127.0.0.1 port 0 and its
 * clients, is bounded by a watchdog timer, and ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/proto.h"
#include "proto/tls.h"

#define WATCHDOG_MS 20000
#define MAX_SIDES 8

static char cert_dir[256];

typedef struct harness harness;

/* One end of one connection. */
typedef struct side {
  harness *h;
  pb_conn *conn;     /* NULL once closed */
  bool server;
  bool ready;
  bool closed;
  cairn_err why;
  char reason[400];
  char identity[64];
  bool has_node1, has_NODE1, has_node2;
  size_t frames;     /* frames received */
  size_t bytes;      /* body bytes received */
  size_t sent;       /* frames sent (client) */
  bool bad_content;  /* a received frame did not match what was sent */
  int drains;        /* on_drain calls */
  bool paused;       /* the test called pb_conn_read_stop */
  bool frame_while_paused;
} side;

struct harness {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_timer_t watchdog;
  struct sockaddr_in addr; /* the server's, with its port */
  pb_tls_ctx *sctx;
  uint32_t server_max_frame;
  side sides[MAX_SIDES];
  int nsides;
  int open;          /* connections not yet closed */
  bool done;         /* the scenario finished; tear down when open == 0 */
  bool finished;
  /* scenario hooks */
  void (*on_ready)(harness *h, side *s);
  void (*on_frame)(harness *h, side *s);
  void (*on_close)(harness *h, side *s);
  int step;
  bool envelopes; /* server decodes Hello envelopes instead of echoing */
};

/* ---- frame content: index and length decide every byte ---- */

static void fill_frame(uint8_t *p, size_t len, uint32_t idx) {
  for (size_t j = 0; j < len; j++) p[j] = (uint8_t)(idx * 31u + j * 7u);
}

static bool check_frame(const uint8_t *p, size_t len, uint32_t idx) {
  for (size_t j = 0; j < len; j++)
    if (p[j] != (uint8_t)(idx * 31u + j * 7u)) return false;
  return true;
}

/* Sizes of the frames the exchange test sends: many small, one 5 MiB. */
static size_t frame_size(uint32_t idx) {
  if (idx == 150) return 5u << 20;
  return 1 + (idx * 97u) % 3000;
}

static void send_frame(side *s, uint32_t idx) {
  size_t len = frame_size(idx);
  uint8_t *p = malloc(len);
  assert_non_null(p);
  fill_frame(p, len, idx);
  assert_int_equal(pb_conn_send(s->conn, p, len), CAIRN_OK);
  free(p);
  s->sent++;
}

/* ---- harness ---- */

static void harness_finish(harness *h) {
  if (h->finished) return;
  h->finished = true;
  uv_close((uv_handle_t *)&h->listener, NULL);
  uv_close((uv_handle_t *)&h->watchdog, NULL);
}

static void harness_maybe_finish(harness *h) {
  if (h->done && h->open == 0) harness_finish(h);
}

static void cb_ready(pb_conn *c, void *ud) {
  side *s = ud;
  s->ready = true;
  snprintf(s->identity, sizeof(s->identity), "%s", pb_conn_identity(c));
  s->has_node1 = pb_conn_peer_has_name(c, "node-1");
  s->has_NODE1 = pb_conn_peer_has_name(c, "NODE-1");
  s->has_node2 = pb_conn_peer_has_name(c, "node-2");
  if (s->h->on_ready) s->h->on_ready(s->h, s);
}

static cairn_err cb_frame(pb_conn *c, const uint8_t *body, size_t len, void *ud) {
  side *s = ud;
  if (s->paused) s->frame_while_paused = true;
  if (s->server && s->h->envelopes) {
    cairn_arena a;
    cairn_arena_init(&a, 0);
    Cairn__Envelope *env = NULL;
    cairn_err e = pb_envelope_decode(body, len, &a, &env);
    if (e || env->msg_case != CAIRN__ENVELOPE__MSG_HELLO || strcmp(env->hello->node_name, "node-1"))
      s->bad_content = true;
    cairn_arena_fini(&a);
  } else if (s->server) {
    /* echo: sending from inside on_frame */
    cairn_err e = pb_conn_send(c, body, len);
    if (e) return e;
  } else {
    uint32_t idx = (uint32_t)s->frames;
    if (len != frame_size(idx) || !check_frame(body, len, idx)) s->bad_content = true;
  }
  s->frames++;
  s->bytes += len;
  if (s->h->on_frame) s->h->on_frame(s->h, s);
  return CAIRN_OK;
}

static void cb_close(pb_conn *c, cairn_err why, const char *reason, void *ud) {
  side *s = ud;
  assert_false(s->closed); /* exactly once */
  assert_ptr_equal(c, s->conn);
  s->closed = true;
  s->conn = NULL;
  s->why = why;
  snprintf(s->reason, sizeof(s->reason), "%s", reason);
  if (getenv("TLS_TEST_VERBOSE"))
    fprintf(stderr, "close %s %s: %s\n", s->server ? "server" : "client", cairn_err_name(why),
            reason);
  s->h->open--;
  if (s->h->on_close) s->h->on_close(s->h, s);
  harness_maybe_finish(s->h);
}

static void cb_drain(pb_conn *c, void *ud) {
  side *s = ud;
  assert_true(pb_conn_write_pending(c) < PB_CONN_LOW_WATER);
  s->drains++;
}

static const pb_conn_cbs cbs = {
    .on_ready = cb_ready, .on_frame = cb_frame, .on_close = cb_close, .on_drain = cb_drain};

static side *side_new(harness *h, bool server) {
  assert_true(h->nsides < MAX_SIDES);
  side *s = &h->sides[h->nsides++];
  memset(s, 0, sizeof(*s));
  s->h = h;
  s->server = server;
  h->open++;
  return s;
}

static void on_connection(uv_stream_t *l, int status) {
  harness *h = l->data;
  assert_int_equal(status, 0);
  side *s = side_new(h, true);
  assert_int_equal(pb_conn_accept(l, h->sctx, h->server_max_frame, &cbs, s, &s->conn), CAIRN_OK);
}

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fail_msg("scenario did not finish within %d ms", WATCHDOG_MS);
}

static pb_tls_ctx *make_ctx(const char *cert, const char *key, const char *ca, bool server) {
  char c[512], k[512], a[512];
  snprintf(c, sizeof(c), "%s/%s", cert_dir, cert ? cert : "");
  snprintf(k, sizeof(k), "%s/%s", cert_dir, key ? key : "");
  snprintf(a, sizeof(a), "%s/%s", cert_dir, ca);
  pb_tls_config cfg = {
      .cert_file = cert ? c : NULL, .key_file = key ? k : NULL, .ca_file = a, .server = server};
  pb_tls_ctx *ctx = NULL;
  char err[256];
  cairn_err e = pb_tls_ctx_new(&cfg, &ctx, err, sizeof(err));
  if (e) fail_msg("pb_tls_ctx_new: %s", err);
  return ctx;
}

static void harness_start(harness *h, uint32_t server_max_frame) {
  memset(h, 0, sizeof(*h));
  assert_int_equal(uv_loop_init(&h->loop), 0);
  h->server_max_frame = server_max_frame;
  h->sctx = make_ctx("server.pem", "server.key", "ca.pem", true);
  assert_int_equal(uv_tcp_init(&h->loop, &h->listener), 0);
  h->listener.data = h;
  struct sockaddr_in any;
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &any), 0);
  assert_int_equal(uv_tcp_bind(&h->listener, (struct sockaddr *)&any, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&h->listener, 16, on_connection), 0);
  int len = sizeof(h->addr);
  assert_int_equal(uv_tcp_getsockname(&h->listener, (struct sockaddr *)&h->addr, &len), 0);
  assert_int_equal(uv_timer_init(&h->loop, &h->watchdog), 0);
  assert_int_equal(uv_timer_start(&h->watchdog, on_watchdog, WATCHDOG_MS, 0), 0);
}

static side *harness_connect(harness *h, pb_tls_ctx *cctx, const char *server_name) {
  side *s = side_new(h, false);
  assert_int_equal(pb_conn_connect(&h->loop, (struct sockaddr *)&h->addr, server_name, cctx, 0,
                                   &cbs, s, &s->conn),
                   CAIRN_OK);
  return s;
}

static void harness_run(harness *h) {
  assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
  assert_true(h->finished);
  assert_int_equal(h->open, 0);
  pb_tls_ctx_free(h->sctx);
  assert_int_equal(uv_loop_close(&h->loop), 0);
}

/* ---- exchange ---- */

#define EXCHANGE_FRAMES 300u

static void exchange_ready(harness *h, side *s) {
  (void)h;
  if (s->server) return;
  for (uint32_t i = 0; i < EXCHANGE_FRAMES; i++) send_frame(s, i);
}

static void exchange_frame(harness *h, side *s) {
  if (!s->server && s->frames == EXCHANGE_FRAMES) {
    h->done = true;
    pb_conn_close(s->conn, CAIRN_OK, "test done");
  }
}

static void tls_exchanges_frames_both_ways_with_identity(void **state) {
  (void)state;
  harness h;
  harness_start(&h, 0);
  h.on_ready = exchange_ready;
  h.on_frame = exchange_frame;
  pb_tls_ctx *cctx = make_ctx("client.pem", "client.key", "ca.pem", false);
  side *cl = harness_connect(&h, cctx, "localhost");
  harness_run(&h);

  side *sv = &h.sides[1];
  assert_true(sv->server);
  assert_true(cl->ready);
  assert_true(sv->ready);
  /* server side sees the client certificate */
  assert_string_equal(sv->identity, "node-1");
  assert_true(sv->has_node1);
  assert_true(sv->has_NODE1);
  assert_false(sv->has_node2);
  /* client side sees the server certificate (SAN localhost, no node-1) */
  assert_string_equal(cl->identity, "localhost");
  assert_false(cl->has_node1);
  /* every frame came back intact and in order */
  assert_int_equal(sv->frames, EXCHANGE_FRAMES);
  assert_int_equal(cl->frames, EXCHANGE_FRAMES);
  assert_false(cl->bad_content);
  assert_true(cl->bytes > (5u << 20));
  assert_int_equal(cl->bytes, sv->bytes);
  /* local close on one end, clean peer close on the other */
  assert_int_equal(cl->why, CAIRN_OK);
  assert_string_equal(cl->reason, "test done");
  assert_int_equal(sv->why, CAIRN_E_CLOSED);
  /* 5 MiB queued at once went over the low-water mark and drained */
  assert_true(cl->drains >= 1);
  pb_tls_ctx_free(cctx);
}

/* ---- envelopes ---- */

static void send_hello(side *s) {
  Cairn__Hello hello = CAIRN__HELLO__INIT;
  hello.protocol_version = PB_PROTOCOL_VERSION;
  hello.node_name = "node-1";
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_HELLO;
  env.hello = &hello;
  assert_int_equal(pb_conn_send_envelope(s->conn, &env), CAIRN_OK);
  Cairn__Envelope empty = CAIRN__ENVELOPE__INIT;
  assert_int_equal(pb_conn_send_envelope(s->conn, &empty), CAIRN_E_INVAL);
}

static void envelope_ready(harness *h, side *s) {
  (void)h;
  if (!s->server) send_hello(s);
}

static void envelope_frame(harness *h, side *s) {
  if (s->server && s->frames == 2) {
    h->done = true;
    pb_conn_close(s->conn, CAIRN_OK, "enough");
  }
}

static void tls_send_envelope_before_and_after_ready(void **state) {
  (void)state;
  harness h;
  harness_start(&h, 0);
  h.envelopes = true;
  h.on_ready = envelope_ready;
  h.on_frame = envelope_frame;
  pb_tls_ctx *cctx = make_ctx("client.pem", "client.key", "ca.pem", false);
  side *cl = harness_connect(&h, cctx, "localhost");
  send_hello(cl); /* before the handshake */
  harness_run(&h);
  side *sv = &h.sides[1];
  assert_int_equal(sv->frames, 2);
  assert_false(sv->bad_content);
  assert_int_equal(sv->why, CAIRN_OK);
  /* the server's close_notify reaches the client as a clean peer close */
  assert_int_equal(cl->why, CAIRN_E_CLOSED);
  pb_tls_ctx_free(cctx);
}

/* ---- backpressure ---- */

#define PAUSE_FRAMES 40u

static uv_timer_t g_resume;
static side *g_paused;

static void pause_resume_cb(uv_timer_t *t) {
  (void)t;
  g_paused->paused = false;
  pb_conn_read_start(g_paused->conn);
  uv_close((uv_handle_t *)&g_resume, NULL);
}

static void pause_ready(harness *h, side *s) {
  (void)h;
  if (s->server) return;
  /* small frames sent back to back arrive in few reads, so most of them are
   * still buffered when the server pauses after the first */
  for (uint32_t i = 0; i < PAUSE_FRAMES; i++) send_frame(s, i);
}

static void pause_frame(harness *h, side *s) {
  if (s->server && s->frames == 1) {
    pb_conn_read_stop(s->conn);
    s->paused = true;
    g_paused = s;
    assert_int_equal(uv_timer_init(&h->loop, &g_resume), 0);
    assert_int_equal(uv_timer_start(&g_resume, pause_resume_cb, 0, 0), 0);
  }
  if (!s->server && s->frames == PAUSE_FRAMES) {
    h->done = true;
    pb_conn_close(s->conn, CAIRN_OK, NULL);
  }
}

static void tls_read_stop_holds_back_buffered_frames(void **state) {
  (void)state;
  harness h;
  harness_start(&h, 0);
  h.on_ready = pause_ready;
  h.on_frame = pause_frame;
  pb_tls_ctx *cctx = make_ctx("client.pem", "client.key", "ca.pem", false);
  side *cl = harness_connect(&h, cctx, "localhost");
  harness_run(&h);
  side *sv = &h.sides[1];
  assert_int_equal(sv->frames, PAUSE_FRAMES);
  assert_false(sv->frame_while_paused);
  assert_int_equal(cl->frames, PAUSE_FRAMES);
  assert_false(cl->bad_content);
  pb_tls_ctx_free(cctx);
}

static void tls_client_checks_ip_san_and_sends_before_ready(void **state) {
  (void)state;
  harness h;
  harness_start(&h, 0);
  h.on_frame = exchange_frame;
  pb_tls_ctx *cctx = make_ctx("client.pem", "client.key", "ca.pem", false);
  side *cl = harness_connect(&h, cctx, "127.0.0.1");
  /* queued until the handshake is done */
  for (uint32_t i = 0; i < EXCHANGE_FRAMES; i++) send_frame(cl, i);
  assert_true(pb_conn_write_pending(cl->conn) > (5u << 20));
  harness_run(&h);
  assert_true(cl->ready);
  assert_false(cl->bad_content);
  assert_int_equal(cl->frames, EXCHANGE_FRAMES);
  assert_int_equal(cl->why, CAIRN_OK);
  pb_tls_ctx_free(cctx);
}

/* ---- refused clients ---- */

typedef struct refusal {
  pb_tls_ctx *good;
  side *bad_client;
  side *bad_server;
  side *good_client;
} refusal;

static refusal g_refusal; /* test scenario state, reset by each test */

/* After the refused connection is gone on both ends, a good client must
 * still get through. */
static void refusal_close(harness *h, side *s) {
  refusal *r = &g_refusal;
  if (s->server && !r->bad_server) r->bad_server = s;
  if (h->step == 0 && r->bad_server && r->bad_server->closed && r->bad_client->closed) {
    h->step = 1;
    r->good_client = harness_connect(h, r->good, "localhost");
  }
}

static void refusal_ready(harness *h, side *s) {
  if (h->step == 1 && s == g_refusal.good_client) send_frame(s, 0);
}

static void refusal_frame(harness *h, side *s) {
  if (s == g_refusal.good_client) {
    h->done = true;
    pb_conn_close(s->conn, CAIRN_OK, NULL);
  }
}

static void run_refusal(const char *cert, const char *key, const char *ca, const char *want) {
  harness h;
  harness_start(&h, 0);
  memset(&g_refusal, 0, sizeof(g_refusal));
  h.on_close = refusal_close;
  h.on_ready = refusal_ready;
  h.on_frame = refusal_frame;
  g_refusal.good = make_ctx("client.pem", "client.key", "ca.pem", false);
  pb_tls_ctx *bad = make_ctx(cert, key, ca, false);
  g_refusal.bad_client = harness_connect(&h, bad, "localhost");
  harness_run(&h);

  refusal *r = &g_refusal;
  assert_non_null(r->bad_server);
  assert_false(r->bad_server->ready);
  assert_int_equal(r->bad_server->why, CAIRN_E_TLS);
  char peer[64];
  snprintf(peer, sizeof(peer), "TLS handshake with 127.0.0.1:");
  if (!strstr(r->bad_server->reason, peer) || !strstr(r->bad_server->reason, want))
    fail_msg("server reason \"%s\" lacks peer or \"%s\"", r->bad_server->reason, want);
  assert_int_not_equal(r->bad_client->why, CAIRN_OK);
  assert_int_equal(r->bad_client->frames, 0);
  /* the good client after it */
  assert_non_null(r->good_client);
  assert_int_equal(r->good_client->frames, 1);
  assert_false(r->good_client->bad_content);
  assert_int_equal(r->good_client->why, CAIRN_OK);
  pb_tls_ctx_free(bad);
  pb_tls_ctx_free(r->good);
}

static void tls_server_refuses_client_without_certificate(void **state) {
  (void)state;
  run_refusal(NULL, NULL, "ca.pem", "peer did not return a certificate");
}

static void tls_server_refuses_client_from_rogue_ca(void **state) {
  (void)state;
  run_refusal("rogue.pem", "rogue.key", "ca.pem", "certificate verify failed");
}

/* ---- limits ---- */

typedef struct oversize {
  side *a, *b;
  side *a_server;
  int ready_clients;
} oversize;

static oversize g_over;

static void oversize_ready(harness *h, side *s) {
  (void)h;
  if (s->server) return;
  if (++g_over.ready_clients < 2) return;
  /* both clients up: A sends a frame over the server's 1 MiB limit */
  size_t len = 2u << 20;
  uint8_t *p = calloc(1, len);
  assert_int_equal(pb_conn_send(g_over.a->conn, p, len), CAIRN_OK);
  free(p);
}

static void oversize_close(harness *h, side *s) {
  if (s->server && s->why == CAIRN_E_LIMIT) {
    g_over.a_server = s;
    /* B must be unaffected */
    assert_false(g_over.b->closed);
    send_frame(g_over.b, 0);
  }
  (void)h;
}

static void oversize_frame(harness *h, side *s) {
  if (s == g_over.b) {
    h->done = true;
    pb_conn_close(s->conn, CAIRN_OK, NULL);
  }
}

static void tls_oversized_frame_closes_only_that_connection(void **state) {
  (void)state;
  harness h;
  harness_start(&h, 1u << 20);
  memset(&g_over, 0, sizeof(g_over));
  h.on_ready = oversize_ready;
  h.on_close = oversize_close;
  h.on_frame = oversize_frame;
  pb_tls_ctx *cctx = make_ctx("client.pem", "client.key", "ca.pem", false);
  g_over.a = harness_connect(&h, cctx, "localhost");
  g_over.b = harness_connect(&h, cctx, "localhost");
  harness_run(&h);
  assert_non_null(g_over.a_server);
  if (!strstr(g_over.a_server->reason, "frame of 2097152 bytes exceeds limit 1048576"))
    fail_msg("reason \"%s\"", g_over.a_server->reason);
  assert_int_not_equal(g_over.a->why, CAIRN_OK);
  assert_int_equal(g_over.b->why, CAIRN_OK);
  assert_int_equal(g_over.b->frames, 1);
  pb_tls_ctx_free(cctx);
}

/* ---- client-side checks ---- */

static void wrong_name_close(harness *h, side *s) {
  (void)s;
  if (h->open == 0) h->done = true;
}

static void tls_client_rejects_server_with_other_name(void **state) {
  (void)state;
  harness h;
  harness_start(&h, 0);
  h.on_close = wrong_name_close;
  pb_tls_ctx *cctx = make_ctx("client.pem", "client.key", "ca.pem", false);
  side *cl = harness_connect(&h, cctx, "aggregator.example");
  harness_run(&h);
  assert_false(cl->ready);
  assert_int_equal(cl->why, CAIRN_E_TLS);
  if (!strstr(cl->reason, "certificate verify failed"))
    fail_msg("client reason \"%s\"", cl->reason);
  pb_tls_ctx_free(cctx);
}

static void tls_connect_refused_reports_io_error(void **state) {
  (void)state;
  harness h;
  harness_start(&h, 0);
  h.on_close = wrong_name_close;
  pb_tls_ctx *cctx = make_ctx("client.pem", "client.key", "ca.pem", false);
  /* a port nothing listens on: bind one, note it, close it */
  uv_tcp_t tmp;
  assert_int_equal(uv_tcp_init(&h.loop, &tmp), 0);
  struct sockaddr_in any, got;
  uv_ip4_addr("127.0.0.1", 0, &any);
  assert_int_equal(uv_tcp_bind(&tmp, (struct sockaddr *)&any, 0), 0);
  int len = sizeof(got);
  assert_int_equal(uv_tcp_getsockname(&tmp, (struct sockaddr *)&got, &len), 0);
  uv_close((uv_handle_t *)&tmp, NULL);
  side *cl = side_new(&h, false);
  assert_int_equal(
      pb_conn_connect(&h.loop, (struct sockaddr *)&got, NULL, cctx, 0, &cbs, cl, &cl->conn),
      CAIRN_OK);
  harness_run(&h);
  assert_int_equal(cl->why, CAIRN_E_IO);
  if (!strstr(cl->reason, "connect to 127.0.0.1:")) fail_msg("reason \"%s\"", cl->reason);
  pb_tls_ctx_free(cctx);
}

static void tls_ctx_new_names_missing_file(void **state) {
  (void)state;
  pb_tls_config cfg = {.cert_file = "/nonexistent/c.pem", .key_file = "/nonexistent/c.key",
                       .ca_file = "/nonexistent/ca.pem", .server = true};
  pb_tls_ctx *ctx = NULL;
  char err[256] = "";
  assert_int_equal(pb_tls_ctx_new(&cfg, &ctx, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_null(ctx);
  assert_non_null(strstr(err, "/nonexistent/c.pem"));
  /* key of another certificate */
  char c[512], k[512], a[512];
  snprintf(c, sizeof(c), "%s/server.pem", cert_dir);
  snprintf(k, sizeof(k), "%s/client.key", cert_dir);
  snprintf(a, sizeof(a), "%s/ca.pem", cert_dir);
  pb_tls_config bad = {.cert_file = c, .key_file = k, .ca_file = a, .server = true};
  assert_int_equal(pb_tls_ctx_new(&bad, &ctx, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_non_null(strstr(err, "does not match"));
}

/* ---- setup ---- */

static int make_certs(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  const char *src = getenv("CAIRN_SRC");
  if (!src) src = ".";
  snprintf(cert_dir, sizeof(cert_dir), "/tmp/cairn-tls-test-XXXXXX");
  if (!mkdtemp(cert_dir)) return -1;
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "bash '%s/tests/tools/gen-certs.sh' '%s' >/dev/null 2>&1", src,
           cert_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static int remove_certs(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cert_dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tls_exchanges_frames_both_ways_with_identity),
      cmocka_unit_test(tls_client_checks_ip_san_and_sends_before_ready),
      cmocka_unit_test(tls_read_stop_holds_back_buffered_frames),
      cmocka_unit_test(tls_send_envelope_before_and_after_ready),
      cmocka_unit_test(tls_server_refuses_client_without_certificate),
      cmocka_unit_test(tls_server_refuses_client_from_rogue_ca),
      cmocka_unit_test(tls_oversized_frame_closes_only_that_connection),
      cmocka_unit_test(tls_client_rejects_server_with_other_name),
      cmocka_unit_test(tls_connect_refused_reports_io_error),
      cmocka_unit_test(tls_ctx_new_names_missing_file),
  };
  return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
