/* aggregator/metrics.c: GET /metrics (Prometheus text format), /healthz and
 * /readyz on the loop, served by the shared HTTP endpoint (proto/http.h).
 *
 * Rendering reads only the atomic counters the threads update: nothing here
 * touches LMDB (the writer publishes the map figures as atomics), so a scrape
 * never waits for a commit.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/internal.h"
#include "common/buf.h"
#include "common/log.h"

static const char *const reject_names[AGG_REJ_N] = {"limit", "zstd", "proto", "perm", "other"};

/* Commit latency histogram (cumulative buckets, seconds), chain position and
 * Kafka queue depth. */
static cairn_err render_commit_and_chain(const agg_metrics *m, cairn_buf *b) {
  cairn_err e = cairn_buf_printf(
      b, "# HELP cairn_aggregator_commit_seconds LMDB write transaction commit latency (group commit, fsync included).\n"
         "# TYPE cairn_aggregator_commit_seconds histogram\n");
  uint64_t cum = 0;
  for (size_t i = 0; e == CAIRN_OK && i < AGG_COMMIT_BUCKETS; i++) {
    cum += atomic_load(&m->commit_hist[i]);
    if (i < AGG_COMMIT_BUCKETS - 1)
      e = cairn_buf_printf(b, "cairn_aggregator_commit_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                           agg_commit_bounds[i], cum);
    else
      e = cairn_buf_printf(b, "cairn_aggregator_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                           cum);
  }
  if (e != CAIRN_OK) return e;
  return cairn_buf_printf(
      b,
      "cairn_aggregator_commit_seconds_sum %.6f\n"
      "cairn_aggregator_commit_seconds_count %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_chain_position Last hash-chain link committed (one per write transaction with records).\n"
      "# TYPE cairn_aggregator_chain_position gauge\n"
      "cairn_aggregator_chain_position %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_kafka_queue_messages Messages waiting in the Kafka producer queue.\n"
      "# TYPE cairn_aggregator_kafka_queue_messages gauge\n"
      "cairn_aggregator_kafka_queue_messages %" PRIuFAST64 "\n",
      (double)atomic_load(&m->commit_sum_ns) / 1e9, atomic_load(&m->commit_count),
      atomic_load(&m->chain_position), atomic_load(&m->kafka_queue));
}

/* Kafka cursor and --retention (pruning) figures. */
static cairn_err render_cursor_and_retention(agg *a, cairn_buf *b) {
  const agg_metrics *m = &a->m;
  return cairn_buf_printf(
      b,
      "# HELP cairn_aggregator_kafka_cursor Last seq whose Kafka delivery is committed in LMDB (0 without Kafka).\n"
      "# TYPE cairn_aggregator_kafka_cursor gauge\n"
      "cairn_aggregator_kafka_cursor %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_pruned_records_total Records deleted from LMDB by --retention.\n"
      "# TYPE cairn_aggregator_pruned_records_total counter\n"
      "cairn_aggregator_pruned_records_total %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_oldest_retained_seq Lowest record seq still in LMDB after pruning (1 = nothing pruned).\n"
      "# TYPE cairn_aggregator_oldest_retained_seq gauge\n"
      "cairn_aggregator_oldest_retained_seq %" PRIuFAST64 "\n",
      a->kafka ? atomic_load(&m->kafka_cursor) : 0, atomic_load(&m->pruned_records),
      atomic_load(&m->oldest_retained));
}

static cairn_err render_metrics(agg *a, cairn_buf *b) {
  agg_metrics *m = &a->m;
  uint64_t last = atomic_load(&m->last_seq), cur = atomic_load(&m->kafka_cursor);
  cairn_err e = cairn_buf_printf(
      b,
      "# HELP cairn_aggregator_connections Open ingest connections (any state).\n"
      "# TYPE cairn_aggregator_connections gauge\n"
      "cairn_aggregator_connections %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_sessions Collector sessions past Hello.\n"
      "# TYPE cairn_aggregator_sessions gauge\n"
      "cairn_aggregator_sessions %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_batches_total Batches committed and acked OK.\n"
      "# TYPE cairn_aggregator_batches_total counter\n"
      "cairn_aggregator_batches_total %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_records_stored_total Records newly stored.\n"
      "# TYPE cairn_aggregator_records_stored_total counter\n"
      "cairn_aggregator_records_stored_total %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_records_duplicate_total Records skipped as already stored.\n"
      "# TYPE cairn_aggregator_records_duplicate_total counter\n"
      "cairn_aggregator_records_duplicate_total %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_retries_total Batches answered RETRY (storage full or failing).\n"
      "# TYPE cairn_aggregator_retries_total counter\n"
      "cairn_aggregator_retries_total %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_rejects_total Hellos, frames and batches refused, by reason.\n"
      "# TYPE cairn_aggregator_rejects_total counter\n",
      atomic_load(&m->connections), atomic_load(&m->sessions), atomic_load(&m->batches),
      atomic_load(&m->records_stored),
      atomic_load(&m->records_duplicate), atomic_load(&m->retries));
  for (int i = 0; e == CAIRN_OK && i < AGG_REJ_N; i++)
    e = cairn_buf_printf(b, "cairn_aggregator_rejects_total{reason=\"%s\"} %" PRIuFAST64 "\n",
                         reject_names[i], atomic_load(&m->rejects[i]));
  if (e != CAIRN_OK) return e;
  e = cairn_buf_printf(
      b,
      "# HELP cairn_aggregator_kafka_delivered_total Records confirmed by Kafka.\n"
      "# TYPE cairn_aggregator_kafka_delivered_total counter\n"
      "cairn_aggregator_kafka_delivered_total %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_kafka_failed_total Failed Kafka deliveries (produced again).\n"
      "# TYPE cairn_aggregator_kafka_failed_total counter\n"
      "cairn_aggregator_kafka_failed_total %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_kafka_cursor_lag Stored records not yet confirmed by Kafka.\n"
      "# TYPE cairn_aggregator_kafka_cursor_lag gauge\n"
      "cairn_aggregator_kafka_cursor_lag %" PRIu64 "\n"
      "# HELP cairn_aggregator_lmdb_map_bytes LMDB map size.\n"
      "# TYPE cairn_aggregator_lmdb_map_bytes gauge\n"
      "cairn_aggregator_lmdb_map_bytes %" PRIuFAST64 "\n"
      "# HELP cairn_aggregator_lmdb_map_used_bytes LMDB bytes in use.\n"
      "# TYPE cairn_aggregator_lmdb_map_used_bytes gauge\n"
      "cairn_aggregator_lmdb_map_used_bytes %" PRIuFAST64 "\n",
      atomic_load(&m->kafka_delivered), atomic_load(&m->kafka_failed), a->kafka && last > cur ? last - cur : 0,
      atomic_load(&m->map_size), atomic_load(&m->map_used));
  if (e == CAIRN_OK) e = render_commit_and_chain(m, b);
  if (e == CAIRN_OK) e = render_cursor_and_retention(a, b);
  return e;
}

static bool path_is(const char *path, size_t len, const char *want) {
  return len == strlen(want) && memcmp(path, want, len) == 0;
}

/* pb_http handler (loop thread). /healthz: the process and its loop answer.
 * /readyz: collectors can be served (listening, not shutting down). */
static cairn_err handle(const char *path, size_t len, pb_http_response *resp, void *ud) {
  agg *a = ud;
  if (path_is(path, len, "/metrics")) {
    resp->content_type = PB_HTTP_PROMETHEUS_TYPE;
    return render_metrics(a, &resp->body);
  }
  if (path_is(path, len, "/healthz")) return cairn_buf_append_str(&resp->body, "ok\n");
  if (path_is(path, len, "/readyz")) {
    if (a->shutting_down) {
      resp->status = 503;
      return cairn_buf_append_str(&resp->body, "shutting down\n");
    }
    return cairn_buf_append_str(&resp->body, "ready\n");
  }
  resp->status = 404;
  return cairn_buf_append_str(&resp->body, "try /metrics, /healthz or /readyz\n");
}

cairn_err agg__metrics_listen(agg *a, char *errbuf, size_t errlen) {
  pb_http_options o = {.opt_name = "--metrics-listen"};
  cairn_err e = pb_http_open(&a->loop, a->cfg.metrics_listen, &o, handle, a, &a->http, errbuf,
                             errlen);
  if (e != CAIRN_OK) return e == CAIRN_E_NOMEM ? e : CAIRN_E_CONFIG;
  snprintf(a->metrics_addr, sizeof(a->metrics_addr), "%s", pb_http_addr(a->http));
  return CAIRN_OK;
}

void agg__metrics_close(agg *a) {
  pb_http_close(a->http, NULL, NULL);
  a->http = NULL;
}
