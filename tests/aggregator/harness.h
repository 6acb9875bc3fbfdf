/* tests/aggregator/harness.h: shared helpers for the aggregator tests: an agg
 * running in a thread on 127.0.0.1:0 with throwaway certificates, and a
 * minimal collector-side client written with proto/tls.h that waits for
 * conditions with deadlines (never fixed sleeps). Header-only (static), one
 * copy per test executable.
 */
#ifndef CAIRN_TESTS_AGGREGATOR_HARNESS_H
#define CAIRN_TESTS_AGGREGATOR_HARNESS_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/aggregator.h"
#include "common/log.h"
#include "common/timeparse.h"
#include "proto/proto.h"
#include "proto/tls.h"
#include "storage/storage.h"

/* ---- temp dirs and certificates ---- */

typedef struct h_env {
  char root[256];  /* mkdtemp dir */
  char certs[300]; /* root/certs */
  char data[300];  /* root/data */
} h_env;

static inline void h_env_init(h_env *e) {
  snprintf(e->root, sizeof(e->root), "/tmp/cairn-agg-test-XXXXXX");
  assert_non_null(mkdtemp(e->root));
  snprintf(e->certs, sizeof(e->certs), "%s/certs", e->root);
  snprintf(e->data, sizeof(e->data), "%s/data", e->root);
  const char *src = getenv("CAIRN_SRC");
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "bash '%s/tests/tools/gen-certs.sh' '%s' node-1 node-2 >/dev/null",
           src ? src : ".", e->certs);
  assert_int_equal(system(cmd), 0);
}

static inline void h_env_fini(h_env *e) {
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->root);
  assert_int_equal(system(cmd), 0);
}

static inline void h_path(char *out, size_t cap, const h_env *e, const char *file) {
  snprintf(out, cap, "%s/%s", e->certs, file);
}

/* ---- the aggregator in a thread ---- */

typedef struct h_server {
  agg *a;
  pthread_t thread;
  cairn_err rc;
  char cert[400], key[400], ca[400];
  agg_config cfg; /* strings borrowed from this struct / the test */
} h_server;

/* Fill s->cfg with the test defaults (caller may change fields, then h_server_start). */
static inline void h_server_config(h_server *s, h_env *e) {
  memset(s, 0, sizeof(*s));
  h_path(s->cert, sizeof(s->cert), e, "server.pem");
  h_path(s->key, sizeof(s->key), e, "server.key");
  h_path(s->ca, sizeof(s->ca), e, "ca.pem");
  s->cfg.data_dir = e->data;
  s->cfg.listen = (char *)"127.0.0.1:0";
  s->cfg.tls_cert = s->cert;
  s->cfg.tls_key = s->key;
  s->cfg.tls_ca = s->ca;
  s->cfg.no_sync = true;
  s->cfg.map_size = 16u << 20;
  s->cfg.shutdown_timeout_ns = 5LL * 1000000000LL;
}

static inline void *h_server_main(void *arg) {
  h_server *s = arg;
  s->rc = agg_run(s->a);
  return NULL;
}

static inline void h_server_start(h_server *s) {
  char err[512] = "";
  cairn_err e = agg_new(&s->cfg, &s->a, err, sizeof(err));
  if (e != CAIRN_OK) fail_msg("agg_new: %s: %s", cairn_err_name(e), err);
  assert_int_equal(pthread_create(&s->thread, NULL, h_server_main, s), 0);
}

static inline void h_server_stop(h_server *s) {
  agg_stop(s->a);
  assert_int_equal(pthread_join(s->thread, NULL), 0);
  assert_int_equal(s->rc, CAIRN_OK);
  agg_free(s->a);
  s->a = NULL;
}

/* Poll cond(ud) until true or timeout_ms; returns the last value. */
static inline bool h_wait(bool (*cond)(void *), void *ud, int timeout_ms) {
  int64_t deadline = cairn_time_mono_ns() + (int64_t)timeout_ms * 1000000;
  while (!cond(ud)) {
    if (cairn_time_mono_ns() > deadline) return false;
    struct timespec ts = {0, 2000000}; /* poll interval, not a wait for an outcome */
    nanosleep(&ts, NULL);
  }
  return true;
}

/* ---- the client ---- */

#define H_MAX_MSGS 256

typedef struct h_msg {
  Cairn__Envelope__MsgCase type;
  int status;           /* HelloAck / Ack status */
  char reason[256];
  char identity[128];
  uint64_t seq;
  uint32_t stored, dups;
} h_msg;

typedef struct h_client {
  uv_loop_t loop;
  uv_timer_t timer;
  bool timed_out;
  pb_tls_ctx *ctx;
  pb_conn *c;
  bool ready, closed;
  cairn_err close_why;
  char close_reason[256];
  h_msg msgs[H_MAX_MSGS];
  size_t n_msgs;
  pb_codec *codec;
  cairn_arena arena;
} h_client;

static inline void hc_on_ready(pb_conn *c, void *ud) { ((h_client *)ud)->ready = true; }

static cairn_err hc_on_frame(pb_conn *c, const uint8_t *body, size_t len, void *ud) {
  h_client *hc = ud;
  cairn_arena_reset(&hc->arena);
  Cairn__Envelope *env = NULL;
  cairn_err e = pb_envelope_decode(body, len, &hc->arena, &env);
  if (e != CAIRN_OK) return e;
  if (hc->n_msgs >= H_MAX_MSGS) return CAIRN_E_LIMIT;
  h_msg *m = &hc->msgs[hc->n_msgs++];
  memset(m, 0, sizeof(*m));
  m->type = env->msg_case;
  if (env->msg_case == CAIRN__ENVELOPE__MSG_HELLO_ACK) {
    m->status = env->hello_ack->status;
    snprintf(m->reason, sizeof(m->reason), "%s", env->hello_ack->reason);
    snprintf(m->identity, sizeof(m->identity), "%s", env->hello_ack->identity);
  } else if (env->msg_case == CAIRN__ENVELOPE__MSG_ACK) {
    m->status = env->ack->status;
    snprintf(m->reason, sizeof(m->reason), "%s", env->ack->reason);
    m->seq = env->ack->seq;
    m->stored = env->ack->stored;
    m->dups = env->ack->duplicates;
  }
  return CAIRN_OK;
}

static inline void hc_on_close(pb_conn *c, cairn_err why, const char *reason, void *ud) {
  h_client *hc = ud;
  hc->closed = true;
  hc->close_why = why;
  snprintf(hc->close_reason, sizeof(hc->close_reason), "%s", reason ? reason : "");
  hc->c = NULL;
}

static const pb_conn_cbs hc_cbs = {hc_on_ready, hc_on_frame, hc_on_close, NULL};

/* Connect to addr ("127.0.0.1:PORT") with certificate pair name ("node-1",
 * "rogue", or NULL for no client certificate). */
static inline void h_client_open_addr(h_client *hc, const h_env *e, const char *addr,
                                      const char *name) {
  memset(hc, 0, sizeof(*hc));
  assert_int_equal(uv_loop_init(&hc->loop), 0);
  assert_int_equal(uv_timer_init(&hc->loop, &hc->timer), 0);
  hc->timer.data = hc;
  cairn_arena_init(&hc->arena, 0);
  hc->codec = pb_codec_new(1);
  assert_non_null(hc->codec);
  char cert[400], key[400], ca[400];
  snprintf(cert, sizeof(cert), "%s/%s.pem", e->certs, name ? name : "");
  snprintf(key, sizeof(key), "%s/%s.key", e->certs, name ? name : "");
  h_path(ca, sizeof(ca), e, "ca.pem");
  pb_tls_config tc = {.cert_file = name ? cert : NULL, .key_file = name ? key : NULL, .ca_file = ca};
  char err[512] = "";
  cairn_err ce = pb_tls_ctx_new(&tc, &hc->ctx, err, sizeof(err));
  if (ce != CAIRN_OK) fail_msg("pb_tls_ctx_new: %s", err);
  char host[160];
  snprintf(host, sizeof(host), "%s", addr);
  char *colon = strrchr(host, ':');
  assert_non_null(colon);
  *colon = '\0';
  struct sockaddr_in sa;
  assert_int_equal(uv_ip4_addr(host, atoi(colon + 1), &sa), 0);
  assert_int_equal(pb_conn_connect(&hc->loop, (const struct sockaddr *)&sa, "localhost", hc->ctx, 0,
                                   &hc_cbs, hc, &hc->c),
                   CAIRN_OK);
}

/* Connect to the in-process server s. */
static inline void h_client_open(h_client *hc, const h_env *e, const h_server *s, const char *name) {
  h_client_open_addr(hc, e, agg_listen_addr(s->a), name);
}

static inline void hc_on_timer(uv_timer_t *t) { ((h_client *)t->data)->timed_out = true; }

/* Run the client loop until cond(hc) or timeout_ms. */
static inline bool h_client_run(h_client *hc, bool (*cond)(h_client *), int timeout_ms) {
  hc->timed_out = false;
  uv_timer_start(&hc->timer, hc_on_timer, (uint64_t)timeout_ms, 0);
  while (!cond(hc) && !hc->timed_out) uv_run(&hc->loop, UV_RUN_ONCE);
  uv_timer_stop(&hc->timer);
  return cond(hc);
}

static inline bool hc_is_closed(h_client *hc) { return hc->closed; }
static inline bool hc_is_ready_or_closed(h_client *hc) { return hc->ready || hc->closed; }

static size_t hc_want; /* target of hc_has_msgs (test thread only) */
static inline bool hc_has_msgs(h_client *hc) { return hc->n_msgs >= hc_want || hc->closed; }

/* Wait until n messages arrived in total (or the connection closed). */
static inline bool h_client_wait_msgs(h_client *hc, size_t n, int timeout_ms) {
  hc_want = n;
  h_client_run(hc, hc_has_msgs, timeout_ms);
  return hc->n_msgs >= n;
}

static inline void h_client_send_env(h_client *hc, const Cairn__Envelope *env) {
  assert_non_null(hc->c);
  size_t n = cairn__envelope__get_packed_size(env);
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  cairn__envelope__pack(env, p);
  assert_int_equal(pb_conn_send(hc->c, p, n), CAIRN_OK);
  free(p);
}

static inline void h_client_hello(h_client *hc, const char *instance, const char *node) {
  Cairn__Hello h = CAIRN__HELLO__INIT;
  h.protocol_version = PB_PROTOCOL_VERSION;
  h.instance_id = (char *)instance;
  h.node_name = (char *)(node ? node : "");
  h.agent_version = (char *)"test";
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_HELLO;
  env.hello = &h;
  h_client_send_env(hc, &env);
}

/* Send a Batch frame with a ready payload. */
static inline void h_client_batch_raw(h_client *hc, uint64_t seq, uint32_t count, const uint8_t *payload,
                               size_t len, uint64_t raw_size) {
  Cairn__Batch b = CAIRN__BATCH__INIT;
  b.seq = seq;
  b.record_count = count;
  b.raw_size = raw_size;
  b.payload.data = (uint8_t *)payload;
  b.payload.len = len;
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_BATCH;
  env.batch = &b;
  h_client_send_env(hc, &env);
}

/* Send n records of source `source` and file_stream `stream`, end_offsets
 * first_off+100*i, each message msg_len bytes (0 = a short text). */
static inline void h_client_batch_src(h_client *hc, uint64_t seq, uint64_t stream,
                                      uint64_t first_off, size_t n, size_t msg_len,
                                      Cairn__Source source) {
  Cairn__Record *recs = calloc(n, sizeof(*recs));
  Cairn__Record **ptrs = calloc(n, sizeof(*ptrs));
  char **msgs = calloc(n, sizeof(*msgs));
  assert_true(recs && ptrs && msgs);
  for (size_t i = 0; i < n; i++) {
    cairn__record__init(&recs[i]);
    size_t ml = msg_len ? msg_len : 32;
    msgs[i] = malloc(ml + 1);
    assert_non_null(msgs[i]);
    if (msg_len) memset(msgs[i], 'a', ml);
    else ml = (size_t)snprintf(msgs[i], ml + 1, "line %zu of stream %llu", i,
                               (unsigned long long)stream);
    recs[i].time_ns = 1700000000000000000LL + (int64_t)(first_off + i);
    recs[i].source = source;
    recs[i].stream = CAIRN__LOG_STREAM__LOG_STREAM_STDOUT;
    recs[i].format = CAIRN__FORMAT__FORMAT_CRI;
    recs[i].message.data = (uint8_t *)msgs[i];
    recs[i].message.len = ml;
    recs[i].kube_namespace = (char *)"default";
    recs[i].pod = (char *)"web-1";
    recs[i].container = (char *)"nginx";
    recs[i].path = (char *)"/var/log/containers/web-1_default_nginx-abc.log";
    recs[i].file_stream = stream;
    recs[i].end_offset = first_off + 100 * (i + 1);
    recs[i].fragments = 1;
    ptrs[i] = &recs[i];
  }
  cairn_buf out = {0};
  uint64_t raw = 0;
  assert_int_equal(pb_batch_encode(hc->codec, ptrs, n, &out, &raw), CAIRN_OK);
  h_client_batch_raw(hc, seq, (uint32_t)n, out.ptr, out.len, raw);
  cairn_buf_fini(&out);
  for (size_t i = 0; i < n; i++) free(msgs[i]);
  free(msgs);
  free(ptrs);
  free(recs);
}

/* Send n container records (see h_client_batch_src). */
static inline void h_client_batch(h_client *hc, uint64_t seq, uint64_t stream, uint64_t first_off,
                                  size_t n, size_t msg_len) {
  h_client_batch_src(hc, seq, stream, first_off, n, msg_len, CAIRN__SOURCE__SOURCE_CONTAINER);
}

static inline void h_client_close(h_client *hc) {
  if (hc->c) pb_conn_close(hc->c, CAIRN_OK, "test done");
  h_client_run(hc, hc_is_closed, 10000);
  assert_true(hc->closed);
  uv_close((uv_handle_t *)&hc->timer, NULL);
  uv_run(&hc->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&hc->loop), 0);
  pb_tls_ctx_free(hc->ctx);
  pb_codec_free(hc->codec);
  cairn_arena_fini(&hc->arena);
}

/* Count records after seq 0 (any thread; use agg_storage while it runs). */
typedef struct h_scan {
  size_t n;
  size_t bad_identity;
  char node[64];
  char instance[80];
  uint64_t last_seq;
} h_scan;

static inline bool h_scan_cb(const Cairn__Record *r, void *ud) {
  h_scan *s = ud;
  s->n++;
  if (!r->identity || strcmp(r->identity, "node-1") != 0) s->bad_identity++;
  snprintf(s->node, sizeof(s->node), "%s", r->node ? r->node : "");
  snprintf(s->instance, sizeof(s->instance), "%s", r->instance_id ? r->instance_id : "");
  s->last_seq = r->seq;
  return true;
}

#endif
