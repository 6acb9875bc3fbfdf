/* bench/null_sink.c: a TLS receiver that speaks the aggregator's session
 * protocol (Hello -> HelloAck, Batch -> Ack OK) and stores nothing: the
 * "null receiver" of the collector benchmark. Payloads are not even
 * decompressed, so the sink costs little CPU next to the collector.
 *
 *   null-sink --tls-cert F --tls-key F --tls-ca F --port-file F [--expect N]
 *
 * Listens on 127.0.0.1 (port 0, the port is written to --port-file). When
 * the records acked reach --expect, prints one line
 *   DONE records=N batches=B payload_bytes=P raw_bytes=R first_batch_s=T0 last_batch_s=T1
 * (CLOCK_REALTIME seconds), and keeps serving until SIGTERM/SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "proto/tls.h"

typedef struct sink {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_signal_t sig_term, sig_int;
  pb_tls_ctx *tls;
  cairn_arena arena;
  uint64_t expect, records, batches, payload_bytes, raw_bytes;
  double first_s, last_s;
  bool done;
} sink;

static double real_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static cairn_err send_env(pb_conn *c, Cairn__Envelope *env) { return pb_conn_send_envelope(c, env); }

static cairn_err on_frame(pb_conn *c, const uint8_t *body, size_t len, void *ud) {
  sink *s = ud;
  cairn_arena_reset(&s->arena);
  Cairn__Envelope *env = NULL;
  cairn_err e = pb_envelope_decode(body, len, &s->arena, &env);
  if (e != CAIRN_OK) return e;
  Cairn__Envelope out = CAIRN__ENVELOPE__INIT;
  if (env->msg_case == CAIRN__ENVELOPE__MSG_HELLO) {
    Cairn__HelloAck ha = CAIRN__HELLO_ACK__INIT;
    ha.protocol_version = PB_PROTOCOL_VERSION;
    ha.status = CAIRN__ACK_STATUS__ACK_OK;
    ha.identity = (char *)pb_conn_identity(c);
    out.msg_case = CAIRN__ENVELOPE__MSG_HELLO_ACK;
    out.hello_ack = &ha;
    return send_env(c, &out);
  }
  if (env->msg_case != CAIRN__ENVELOPE__MSG_BATCH) return CAIRN_E_PROTO;
  const Cairn__Batch *b = env->batch;
  double now = real_s();
  if (s->batches == 0) s->first_s = now;
  s->last_s = now;
  s->batches++;
  s->records += b->record_count;
  s->payload_bytes += b->payload.len;
  s->raw_bytes += b->raw_size;
  Cairn__Ack ack = CAIRN__ACK__INIT;
  ack.seq = b->seq;
  ack.status = CAIRN__ACK_STATUS__ACK_OK;
  ack.stored = b->record_count;
  out.msg_case = CAIRN__ENVELOPE__MSG_ACK;
  out.ack = &ack;
  e = send_env(c, &out);
  if (!s->done && s->expect && s->records >= s->expect) {
    s->done = true;
    printf("DONE records=%llu batches=%llu payload_bytes=%llu raw_bytes=%llu first_batch_s=%.6f "
           "last_batch_s=%.6f\n",
           (unsigned long long)s->records, (unsigned long long)s->batches,
           (unsigned long long)s->payload_bytes, (unsigned long long)s->raw_bytes, s->first_s,
           s->last_s);
    fflush(stdout);
  }
  return e;
}

static void on_close(pb_conn *c, cairn_err why, const char *reason, void *ud) {
  (void)c;
  (void)ud;
  if (why != CAIRN_E_CLOSED && why != CAIRN_OK)
    fprintf(stderr, "null-sink: connection closed: %s\n", reason ? reason : cairn_err_name(why));
}

static const pb_conn_cbs cbs = {.on_frame = on_frame, .on_close = on_close};

static void on_connection(uv_stream_t *server, int status) {
  sink *s = server->data;
  if (status < 0) return;
  pb_conn *c = NULL;
  if (pb_conn_accept(server, s->tls, 0, &cbs, s, &c) != CAIRN_OK)
    fprintf(stderr, "null-sink: accept failed\n");
}

static void on_walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  uv_stop(h->loop);
}

int main(int argc, char **argv) {
  const char *cert = NULL, *key = NULL, *ca = NULL, *port_file = NULL;
  sink s;
  memset(&s, 0, sizeof(s));
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc) cert = argv[++i];
    else if (!strcmp(argv[i], "--tls-key") && i + 1 < argc) key = argv[++i];
    else if (!strcmp(argv[i], "--tls-ca") && i + 1 < argc) ca = argv[++i];
    else if (!strcmp(argv[i], "--port-file") && i + 1 < argc) port_file = argv[++i];
    else if (!strcmp(argv[i], "--expect") && i + 1 < argc) s.expect = strtoull(argv[++i], NULL, 10);
    else cert = NULL, i = argc;
  }
  if (!cert || !key || !ca || !port_file) {
    fprintf(stderr, "usage: null-sink --tls-cert F --tls-key F --tls-ca F --port-file F [--expect N]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  char err[512];
  pb_tls_config tc = {.cert_file = cert, .key_file = key, .ca_file = ca, .server = true};
  if (pb_tls_ctx_new(&tc, &s.tls, err, sizeof(err)) != CAIRN_OK) {
    fprintf(stderr, "null-sink: %s\n", err);
    return 2;
  }
  cairn_arena_init(&s.arena, 64u << 10);
  uv_loop_init(&s.loop);
  uv_tcp_init(&s.loop, &s.listener);
  s.listener.data = &s;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (uv_tcp_bind(&s.listener, (const struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&s.listener, 64, on_connection) != 0) {
    fprintf(stderr, "null-sink: cannot listen on 127.0.0.1\n");
    return 2;
  }
  struct sockaddr_storage bound;
  int blen = sizeof(bound);
  uv_tcp_getsockname(&s.listener, (struct sockaddr *)&bound, &blen);
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
  FILE *pf = fopen(tmp, "w");
  if (!pf || fprintf(pf, "127.0.0.1:%d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port)) < 0 ||
      fclose(pf) != 0 || rename(tmp, port_file) != 0) {
    fprintf(stderr, "null-sink: cannot write %s\n", port_file);
    return 2;
  }
  uv_signal_init(&s.loop, &s.sig_term);
  uv_signal_start(&s.sig_term, on_signal, SIGTERM);
  uv_signal_init(&s.loop, &s.sig_int);
  uv_signal_start(&s.sig_int, on_signal, SIGINT);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  /* connections are abandoned at exit (the process ends); close handles */
  uv_walk(&s.loop, on_walk_close, NULL);
  uv_run(&s.loop, UV_RUN_NOWAIT);
  pb_tls_ctx_free(s.tls);
  cairn_arena_fini(&s.arena);
  if (!s.done)
    printf("END records=%llu batches=%llu\n", (unsigned long long)s.records,
           (unsigned long long)s.batches);
  return 0;
}
