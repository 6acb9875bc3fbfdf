/* aggregator/agg.c: lifecycle of the service: open (agg_new), run and graceful
 * shutdown (agg_run, agg_stop), free.
 *
 * Shutdown order matters: stop accepting and reading, wait (bounded) until the
 * writer has answered every queued batch, close sessions (their acks are
 * flushed by pb_conn_close), close every handle so uv_run returns, then stop
 * the Kafka thread (flush + final cursor) BEFORE the writer, which commits it.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aggregator/internal.h"
#include "common/log.h"
#include "proto/http.h"

/* ---- shutdown on the loop ---- */

static void close_if_open(uv_handle_t *h, bool *open) {
  if (*open) {
    uv_close(h, NULL);
    *open = false;
  }
}

/* Last step on the loop: close sessions and every handle so uv_run returns. */
static void shutdown_finish(agg *a) {
  if (a->finishing) return;
  a->finishing = true;
  agg__server_close_all(a, "aggregator shutting down");
  agg__qserver_close(a);
  agg__metrics_close(a);
  close_if_open((uv_handle_t *)&a->shutdown_timer, &a->shutdown_timer_open);
  if (a->signals_open) {
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    a->signals_open = false;
  }
  close_if_open((uv_handle_t *)&a->sighup, &a->sighup_open);
  agg__server_timers_close(a);
  pthread_mutex_lock(&a->writer.done_mu);
  bool was_open = a->writer.async_open;
  a->writer.async_open = false; /* the writer stops signalling from now on */
  a->writer.stop_open = false;  /* and agg_stop too */
  pthread_mutex_unlock(&a->writer.done_mu);
  if (was_open) uv_close((uv_handle_t *)&a->writer.done_async, NULL);
  close_if_open((uv_handle_t *)&a->stop_async, &a->stop_async_open);
}

void agg__shutdown_check(agg *a) {
  if (!a->shutting_down || a->finishing) return;
  if (agg__server_inflight(a) == 0) shutdown_finish(a);
}

static void on_shutdown_timeout(uv_timer_t *t) {
  agg *a = t->data;
  cairn_log_warn(AGG_COMP,
                 "shutdown: %" PRIu64 " batches still unanswered after --shutdown-timeout; "
                 "closing sessions anyway (collectors resend them)",
                 agg__server_inflight(a));
  shutdown_finish(a);
}

static void shutdown_begin(agg *a, const char *why) {
  if (a->shutting_down) return;
  a->shutting_down = true;
  cairn_log_info(AGG_COMP, "shutting down (%s): no new connections, answering queued batches",
                 why);
  agg__server_quiesce(a);
  agg__qserver_close(a); /* cancels running queries; they record themselves first */
  uint64_t ms = (uint64_t)(a->cfg.shutdown_timeout_ns / 1000000);
  if (uv_timer_init(&a->loop, &a->shutdown_timer) == 0) {
    a->shutdown_timer_open = true;
    a->shutdown_timer.data = a;
    uv_timer_start(&a->shutdown_timer, on_shutdown_timeout, ms, 0);
    uv_unref((uv_handle_t *)&a->shutdown_timer);
  }
  agg__shutdown_check(a);
}

static void on_stop_async(uv_async_t *h) { shutdown_begin(h->data, "stop requested"); }

static void on_sighup(uv_signal_t *s, int signum) {
  (void)signum;
  agg *a = s->data;
  if (!a->shutting_down) agg__server_tls_reload(a);
}

static void on_signal(uv_signal_t *s, int signum) {
  shutdown_begin(s->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- public API ---- */

static void close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

cairn_err agg_new(const agg_config *cfg, agg **out, char *errbuf, size_t errlen) {
  *out = NULL;
  if (errbuf && errlen) errbuf[0] = '\0';
  cairn_err e = agg_config_validate(cfg, errbuf, errlen);
  if (e != CAIRN_OK) return e;
  agg *a = calloc(1, sizeof(*a));
  if (!a) return CAIRN_E_NOMEM;
  atomic_init(&a->stop_requested, false);
  e = agg_config_copy(&a->cfg, cfg);
  if (e != CAIRN_OK) goto out_free;
  if (!a->cfg.shutdown_timeout_ns) a->cfg.shutdown_timeout_ns = 10LL * 1000000000LL;
  if (!a->cfg.group_commit) a->cfg.group_commit = 64;
  if (!a->cfg.sign_interval_ns) a->cfg.sign_interval_ns = 10LL * 1000000000LL;
  if (!a->cfg.handshake_timeout_ns)
    a->cfg.handshake_timeout_ns = (int64_t)PB_CONN_HANDSHAKE_TIMEOUT_MS * 1000000LL;
  if (!a->cfg.idle_timeout_ns) a->cfg.idle_timeout_ns = 300LL * 1000000000LL;
  if (!a->cfg.max_conns_per_ip) a->cfg.max_conns_per_ip = 64;
  if (!a->cfg.max_conns) a->cfg.max_conns = 4096;
  if (!a->cfg.query_max_conns) a->cfg.query_max_conns = 16;
  pb_limits_default(&a->limits);
  if (cfg->max_frame) a->limits.max_frame = (uint32_t)cfg->max_frame;
  if (cfg->max_batch_bytes) a->limits.max_raw = cfg->max_batch_bytes;
  if (cfg->max_batch_records) a->limits.max_records = (uint32_t)cfg->max_batch_records;
  cairn_arena_init(&a->frame_arena, 0);
  /* libuv writes with write(2): a peer that vanished must not kill us */
  signal(SIGPIPE, SIG_IGN);

  sto_options so = {.map_size = cfg->map_size, .max_map_size = cfg->max_map_size,
                    .read_only = false, .no_sync = cfg->no_sync};
  char serr[512] = "";
  e = sto_open(a->cfg.data_dir, &so, &a->env, serr, sizeof(serr));
  if (e != CAIRN_OK) {
    snprintf(errbuf, errlen, "--data %s: %s (%s)", a->cfg.data_dir, serr, cairn_err_name(e));
    goto out_free;
  }
  e = agg__signer_open(&a->cfg, a->env, &a->signer, errbuf, errlen);
  if (e != CAIRN_OK) goto out_free;
  pb_tls_config tc;
  agg__tls_config(a, &tc);
  char terr[512] = "";
  e = pb_tls_ctx_new(&tc, &a->tls, terr, sizeof(terr));
  if (e != CAIRN_OK) {
    snprintf(errbuf, errlen, "%s: %s",
             e == CAIRN_E_PERM ? "--tls-key" : "--tls-cert/--tls-key/--tls-ca", terr);
    if (e != CAIRN_E_NOMEM) e = CAIRN_E_CONFIG;
    goto out_free;
  }
  if (a->cfg.kafka_brokers && *a->cfg.kafka_brokers) {
    e = agg__kafka_new(a, &a->cfg, &a->kafka, errbuf, errlen);
    if (e != CAIRN_OK) goto out_free;
  }
  e = agg__writer_init(a);
  if (e != CAIRN_OK) goto out_free;
  if (uv_loop_init(&a->loop) != 0) {
    e = CAIRN_E_NOMEM;
    goto out_free;
  }
  a->loop_init = true;
  if (uv_async_init(&a->loop, &a->writer.done_async, agg__server_on_done) != 0 ||
      uv_async_init(&a->loop, &a->stop_async, on_stop_async) != 0) {
    e = CAIRN_E_NOMEM;
    goto out_free;
  }
  a->writer.done_async.data = a;
  a->writer.async_open = true;
  a->stop_async.data = a;
  a->stop_async_open = true;
  a->writer.stop_open = true;
  if (cfg->handle_signals) {
    uv_signal_init(&a->loop, &a->sigint);
    uv_signal_init(&a->loop, &a->sigterm);
    a->sigint.data = a->sigterm.data = a;
    a->signals_open = true;
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_init(&a->loop, &a->sighup);
    a->sighup.data = a;
    a->sighup_open = true;
    uv_signal_start(&a->sighup, on_sighup, SIGHUP);
  }
  e = agg__server_timers_open(a);
  if (e != CAIRN_OK) goto out_free;
  e = agg__server_listen(a, errbuf, errlen);
  if (e != CAIRN_OK) goto out_free;
  e = agg__qserver_open(a, errbuf, errlen);
  if (e != CAIRN_OK) goto out_free;
  if (a->cfg.metrics_listen && *a->cfg.metrics_listen) {
    e = agg__metrics_listen(a, errbuf, errlen);
    if (e != CAIRN_OK) goto out_free;
  }
  if (a->cfg.query_port_file && *a->cfg.query_port_file && a->qs) {
    e = pb_port_file_write(a->cfg.query_port_file, agg__qserver_addr(a), "--query-port-file",
                           errbuf, errlen);
    if (e != CAIRN_OK) goto out_free;
  }
  if (a->cfg.port_file && *a->cfg.port_file) {
    e = pb_port_file_write(a->cfg.port_file, a->listen_addr, "--port-file", errbuf, errlen);
    if (e != CAIRN_OK) goto out_free;
  }
  if (a->cfg.metrics_port_file && *a->cfg.metrics_port_file && a->metrics_addr[0]) {
    e = pb_port_file_write(a->cfg.metrics_port_file, a->metrics_addr, "--metrics-port-file",
                             errbuf, errlen);
    if (e != CAIRN_OK) goto out_free;
  }
  *out = a;
  return CAIRN_OK;

out_free:
  if (e == CAIRN_E_NOMEM && errbuf && errlen && !*errbuf)
    snprintf(errbuf, errlen, "out of memory while starting");
  agg_free(a);
  return e;
}

cairn_err agg_run(agg *a) {
  sto_stats st = {0};
  if (sto_stats_get(a->env, &st) == CAIRN_OK) {
    atomic_store(&a->m.last_seq, st.last_seq);
    atomic_store(&a->m.map_size, st.map_size);
    atomic_store(&a->m.map_used, st.map_used);
  }
  cairn_log_info(AGG_COMP, "listening on %s for collectors (mTLS); data %s (%" PRIu64
                 " records, last seq %" PRIu64 ")%s%s",
                 a->listen_addr, a->cfg.data_dir, st.records, st.last_seq,
                 a->metrics_addr[0] ? "; metrics on http://" : "", a->metrics_addr);
  if (!a->kafka) cairn_log_info(AGG_COMP, "kafka forwarding is off (no --kafka-brokers)");
  agg__retention_start(a);
  char cert[300];
  pb_tls_ctx_describe(a->tls, cert, sizeof(cert));
  cairn_log_info(AGG_COMP, "TLS certificate: %s (SIGHUP reloads it)", cert);
  if (a->cfg.tls_min_version && strcmp(a->cfg.tls_min_version, "1.2") == 0)
    cairn_log_warn(AGG_COMP, "--tls-min-version 1.2: collectors may connect with TLS 1.2 "
                   "(ECDHE+AEAD suites only); remove it once every collector speaks TLS 1.3");
  cairn_err e = agg__writer_start(a);
  if (e == CAIRN_OK && a->kafka) e = agg__kafka_start(a->kafka);
  if (e != CAIRN_OK) {
    cairn_log_error(AGG_COMP, "cannot start a thread: %s", cairn_err_name(e));
    agg_stop(a);
  }
  uv_run(&a->loop, UV_RUN_DEFAULT);
  /* the loop is done: blocking calls are fine from here on */
  agg__kafka_stop(a->kafka, a->cfg.shutdown_timeout_ns);
  agg__writer_stop(a);
  int rc = uv_loop_close(&a->loop);
  if (rc != 0) {
    /* a handle was not closed on shutdown: a bug; report it, then clean up */
    cairn_log_error(AGG_COMP, "shutdown: libuv handles still open (a leak); closing them");
    uv_walk(&a->loop, close_walk, NULL);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&a->loop);
    if (e == CAIRN_OK) e = CAIRN_E_INVAL;
  }
  if (rc == 0) a->loop_init = false;
  cairn_log_info(AGG_COMP, "stopped");
  return e;
}

void agg_stop(agg *a) {
  atomic_store(&a->stop_requested, true);
  if (!a->writer.mu_init) return;
  pthread_mutex_lock(&a->writer.done_mu);
  if (a->writer.stop_open) uv_async_send(&a->stop_async);
  pthread_mutex_unlock(&a->writer.done_mu);
}

void agg_free(agg *a) {
  if (!a) return;
  agg__kafka_stop(a->kafka, 0);
  if (a->writer.started) agg__writer_stop(a);
  if (a->loop_init) {
    /* agg_new failed half way, or agg_run never ran: close what is open */
    if (a->writer.mu_init) {
      pthread_mutex_lock(&a->writer.done_mu);
      a->writer.async_open = false;
      a->writer.stop_open = false;
      pthread_mutex_unlock(&a->writer.done_mu);
    }
    agg__server_close_all(a, "aggregator stopped");
    agg__metrics_close(a);
    uv_walk(&a->loop, close_walk, NULL);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&a->loop) != 0)
      cairn_log_error(AGG_COMP, "agg_free: libuv loop still busy (handle leak)");
  }
  agg__qserver_free(a); /* its threads read the env: before sto_close */
  if (a->writer.mu_init) agg__writer_fini(a);
  agg__signer_free(a->signer);
  agg__kafka_free(a->kafka);
  pb_tls_ctx_free(a->tls);
  sto_close(a->env);
  cairn_arena_fini(&a->frame_arena);
  agg_config_free(&a->cfg);
  free(a);
}

const char *agg_listen_addr(const agg *a) { return a->listen_addr; }

uint64_t agg_open_connections(agg *a) { return atomic_load(&a->m.connections); }

const char *agg_query_addr(const agg *a) { return a->qs ? agg__qserver_addr(a) : NULL; }

const char *agg_metrics_addr(const agg *a) { return a->metrics_addr[0] ? a->metrics_addr : NULL; }

sto_env *agg_storage(agg *a) { return a->env; }

void agg_counters_get(const agg *a, agg_counters *out) {
  agg_metrics *m = (agg_metrics *)&a->m;
  memset(out, 0, sizeof(*out));
  out->sessions = atomic_load(&m->sessions);
  out->batches = atomic_load(&m->batches);
  out->records_stored = atomic_load(&m->records_stored);
  out->records_duplicate = atomic_load(&m->records_duplicate);
  for (int i = 0; i < AGG_REJ_N; i++) out->rejects += atomic_load(&m->rejects[i]);
  out->retries = atomic_load(&m->retries);
  out->kafka_delivered = atomic_load(&m->kafka_delivered);
  out->kafka_failed = atomic_load(&m->kafka_failed);
  out->kafka_cursor = atomic_load(&m->kafka_cursor);
}
