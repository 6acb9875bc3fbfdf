/* aggregator/metrics.c: a tiny HTTP/1.0 server on the loop for GET /metrics
 * (Prometheus text format) and GET /healthz.
 *
 * One request per connection, answered from the atomic counters the threads
 * update, then closed; requests larger than 4 KiB are refused. Nothing here
 * touches LMDB: the writer publishes the map figures as atomics.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/internal.h"
#include "common/buf.h"
#include "common/log.h"

#define HTTP_REQ_MAX 4096u

typedef struct agg_http_client {
  uv_tcp_t tcp;
  agg *a;                 /* borrowed */
  char req[HTTP_REQ_MAX]; /* request bytes so far */
  size_t len;
  uv_write_t wr;
  cairn_buf resp;         /* owned: response being written */
  bool closing;
  struct agg_http_client *prev, *next; /* a->http_clients */
} agg_http_client;

static const char *const reject_names[AGG_REJ_N] = {"limit", "zstd", "proto", "perm", "other"};

static void client_closed(uv_handle_t *h) {
  agg_http_client *c = h->data;
  cairn_buf_fini(&c->resp);
  free(c);
}

static void client_close(agg_http_client *c) {
  if (c->closing) return;
  c->closing = true;
  agg *a = c->a;
  if (c->prev) c->prev->next = c->next;
  else a->http_clients = c->next;
  if (c->next) c->next->prev = c->prev;
  uv_close((uv_handle_t *)&c->tcp, client_closed);
}

static cairn_err render_metrics(agg *a, cairn_buf *b) {
  agg_metrics *m = &a->m;
  uint64_t last = atomic_load(&m->last_seq), cur = atomic_load(&m->kafka_cursor);
  cairn_err e = cairn_buf_printf(
      b,
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
      atomic_load(&m->sessions), atomic_load(&m->batches), atomic_load(&m->records_stored),
      atomic_load(&m->records_duplicate), atomic_load(&m->retries));
  for (int i = 0; e == CAIRN_OK && i < AGG_REJ_N; i++)
    e = cairn_buf_printf(b, "cairn_aggregator_rejects_total{reason=\"%s\"} %" PRIuFAST64 "\n",
                         reject_names[i], atomic_load(&m->rejects[i]));
  if (e != CAIRN_OK) return e;
  return cairn_buf_printf(
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
}

static void on_written(uv_write_t *wr, int status) {
  agg_http_client *c = wr->data;
  client_close(c);
}

/* Build and send the response for the request line in c->req. */
static void respond(agg_http_client *c) {
  agg *a = c->a;
  const char *status = "200 OK";
  cairn_buf body = {0};
  cairn_err e = CAIRN_OK;
  bool get = strncmp(c->req, "GET ", 4) == 0;
  const char *path = c->req + 4;
  size_t plen = get ? strcspn(path, " ?\r\n") : 0;
  if (!get) {
    status = "405 Method Not Allowed";
    e = cairn_buf_append_str(&body, "only GET is supported\n");
  } else if (plen == 8 && strncmp(path, "/metrics", 8) == 0) {
    e = render_metrics(a, &body);
  } else if (plen == 8 && strncmp(path, "/healthz", 8) == 0) {
    if (a->shutting_down) status = "503 Service Unavailable";
    e = cairn_buf_append_str(&body, a->shutting_down ? "shutting down\n" : "ok\n");
  } else {
    status = "404 Not Found";
    e = cairn_buf_append_str(&body, "try /metrics or /healthz\n");
  }
  if (e == CAIRN_OK)
    e = cairn_buf_printf(&c->resp,
                         "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                         status, body.len);
  if (e == CAIRN_OK) e = cairn_buf_append(&c->resp, body.ptr, body.len);
  cairn_buf_fini(&body);
  if (e != CAIRN_OK) {
    client_close(c);
    return;
  }
  uv_buf_t ub = uv_buf_init((char *)c->resp.ptr, (unsigned)c->resp.len);
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &ub, 1, on_written) < 0) client_close(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  agg_http_client *c = h->data;
  *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - 1 - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  agg_http_client *c = s->data;
  if (n < 0) {
    client_close(c);
    return;
  }
  c->len += (size_t)n;
  c->req[c->len] = '\0';
  if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
    uv_read_stop(s);
    respond(c);
  } else if (c->len >= sizeof(c->req) - 1) {
    client_close(c);
  }
}

static void on_metrics_conn(uv_stream_t *server, int status) {
  agg *a = server->data;
  if (status < 0) return;
  agg_http_client *c = calloc(1, sizeof(*c));
  if (!c) return;
  c->a = a;
  if (uv_tcp_init(&a->loop, &c->tcp) < 0) {
    free(c);
    return;
  }
  c->tcp.data = c;
  c->next = a->http_clients;
  if (a->http_clients) a->http_clients->prev = c;
  a->http_clients = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
    client_close(c);
}

cairn_err agg__metrics_listen(agg *a, char *errbuf, size_t errlen) {
  int r = uv_tcp_init(&a->loop, &a->metrics);
  if (r < 0) {
    snprintf(errbuf, errlen, "--metrics-listen %s: %s", a->cfg.metrics_listen, uv_strerror(r));
    return CAIRN_E_CONFIG;
  }
  a->metrics_open = true;
  a->metrics.data = a;
  return agg__tcp_listen(&a->metrics, a->cfg.metrics_listen, "--metrics-listen", on_metrics_conn,
                         a->metrics_addr, sizeof(a->metrics_addr), errbuf, errlen);
}

void agg__metrics_close(agg *a) {
  if (a->metrics_open) {
    uv_close((uv_handle_t *)&a->metrics, NULL);
    a->metrics_open = false;
  }
  while (a->http_clients) client_close(a->http_clients);
}
