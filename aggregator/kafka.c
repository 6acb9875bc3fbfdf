/* aggregator/kafka.c: forwards stored records to Kafka, from storage.
 *
 * One thread reads records after the LMDB "kafka" cursor, produces each as JSON
 * (key "<instance_id>/<file_stream>", so a source stream stays ordered within
 * its partition) and tracks delivery reports. The cursor advances only over the
 * contiguous prefix of delivered seqs and is committed by the writer thread.
 * A failed delivery rewinds production to the cursor: delivery into Kafka is
 * at-least-once (a rewind or a crash between delivery and cursor commit can
 * produce a record twice; never zero times).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "aggregator/internal.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/timeparse.h"

#define KAFKA_RING_CAP (1u << 16)           /* records produced but not yet delivered */
#define KAFKA_SCAN_MAX 1000u                /* records per storage scan */
#define KAFKA_CURSOR_INTERVAL_NS 200000000LL /* cursor updates at most every 200 ms */
#define KAFKA_IDLE_WAIT_NS 100000000LL      /* poll fallback when nothing is notified */
#define KAFKA_ERR_LOG_INTERVAL_NS (10LL * 1000000000LL)

typedef struct kafka_slot {
  uint64_t seq;
  bool done;
} kafka_slot;

struct agg_kafka {
  agg *a;                  /* borrowed */
  rd_kafka_t *rk;          /* owned */
  char *topic;             /* owned */
  char *brokers;           /* owned, for logs */
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t notify_gen;     /* guarded by mu: bumped on every commit with new records */
  bool stopping;           /* guarded by mu */
  int64_t stop_timeout_ns; /* guarded by mu */
  /* forwarding thread only: */
  uint64_t cursor;         /* every seq <= cursor is delivered */
  uint64_t cursor_sent;    /* last value handed to the writer */
  int64_t cursor_sent_ns;  /* mono time of that */
  uint64_t produce_pos;    /* last seq handed to librdkafka */
  kafka_slot *ring;        /* owned, KAFKA_RING_CAP entries, ascending seq */
  size_t head, n;
  bool rewind;             /* a delivery failed: produce again from cursor */
  bool queue_full;         /* librdkafka's queue is full: poll before producing */
  int64_t last_err_log_ns; /* rate limit of error-callback and produce lines */
  int64_t last_dr_log_ns;  /* rate limit of failed-delivery lines */
  cairn_buf json;          /* scratch: record value */
  char *topic_audit;       /* owned: topic for auditd records (= topic unless configured) */
  char *topic_k8s;         /* owned: topic for Kubernetes audit records */
};

static kafka_slot *ring_at(agg_kafka *k, size_t i) {
  return &k->ring[(k->head + i) & (KAFKA_RING_CAP - 1)];
}

/* Delivery report (runs inside rd_kafka_poll/flush on the forwarding thread). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  agg_kafka *k = opaque;
  uint64_t seq = (uint64_t)(uintptr_t)m->_private;
  if (m->err) {
    atomic_fetch_add(&k->a->m.kafka_failed, 1);
    int64_t now = cairn_time_mono_ns();
    if (!k->last_dr_log_ns || now - k->last_dr_log_ns >= KAFKA_ERR_LOG_INTERVAL_NS) {
      k->last_dr_log_ns = now;
      cairn_log_warn(AGG_COMP,
                     "kafka delivery of seq %" PRIu64 " to topic %s (brokers %s) failed: %s; "
                     "producing again from cursor %" PRIu64 " (records stay in LMDB)",
                     seq, k->topic, k->brokers, rd_kafka_err2str(m->err), k->cursor);
    }
    k->rewind = true;
    return;
  }
  atomic_fetch_add(&k->a->m.kafka_delivered, 1);
  /* binary search: the ring is ascending in seq */
  size_t lo = 0, hi = k->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ring_at(k, mid)->seq < seq) lo = mid + 1;
    else hi = mid;
  }
  if (lo < k->n && ring_at(k, lo)->seq == seq) ring_at(k, lo)->done = true;
  while (k->n > 0 && ring_at(k, 0)->done) {
    k->cursor = ring_at(k, 0)->seq;
    k->head = (k->head + 1) & (KAFKA_RING_CAP - 1);
    k->n--;
  }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  agg_kafka *k = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
    cairn_log_error(AGG_COMP,
                    "kafka producer fatal error (brokers %s): %s: %s; forwarding stops, restart "
                    "the aggregator (records stay in LMDB)",
                    k->brokers, rd_kafka_err2name(orig), buf);
    return;
  }
  int64_t now = cairn_time_mono_ns();
  if (k->last_err_log_ns && now - k->last_err_log_ns < KAFKA_ERR_LOG_INTERVAL_NS) return;
  k->last_err_log_ns = now;
  cairn_log_warn(AGG_COMP, "kafka (brokers %s): %s: %s; retrying", k->brokers,
                 rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* librdkafka's own log lines (from its threads): debug only, because the
 * error callback above already reports what an operator must act on. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  cairn_log_debug(AGG_COMP, "librdkafka %s (level %d): %s", fac, level, buf);
}

static cairn_err conf_set(rd_kafka_conf_t *conf, const char *key, const char *val,
                          const char *opt, char *errbuf, size_t errlen) {
  char err[512];
  if (rd_kafka_conf_set(conf, key, val, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    snprintf(errbuf, errlen, "%s %s=%s: librdkafka rejected it: %s", opt, key, val, err);
    return CAIRN_E_CONFIG;
  }
  return CAIRN_OK;
}

cairn_err agg__kafka_new(agg *a, const agg_config *cfg, agg_kafka **out, char *errbuf,
                         size_t errlen) {
  *out = NULL;
  agg_kafka *k = calloc(1, sizeof(*k));
  if (!k) return CAIRN_E_NOMEM;
  k->a = a;
  k->topic = strdup(cfg->kafka_topic && *cfg->kafka_topic ? cfg->kafka_topic : "cairn-records");
  k->topic_audit = strdup(cfg->kafka_topic_audit && *cfg->kafka_topic_audit ? cfg->kafka_topic_audit
                                                                           : k->topic ? k->topic : "");
  k->topic_k8s = strdup(cfg->kafka_topic_k8s && *cfg->kafka_topic_k8s ? cfg->kafka_topic_k8s
                                                                     : k->topic ? k->topic : "");
  k->brokers = strdup(cfg->kafka_brokers);
  k->ring = calloc(KAFKA_RING_CAP, sizeof(*k->ring));
  if (!k->topic || !k->topic_audit || !k->topic_k8s || !k->brokers || !k->ring) goto out_free;
  if (pthread_mutex_init(&k->mu, NULL) != 0) goto out_free;
  if (pthread_cond_init(&k->cv, NULL) != 0) goto out_destroy_mu;

  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (!conf) goto out_destroy_cv;
  /* zstd: records are repetitive JSON (5-10x smaller on the wire and on the
   * brokers' disks); --kafka-property compression.codec=... overrides it */
  static const char *const defaults[][2] = {{"enable.idempotence", "true"},
                                            {"acks", "all"},
                                            {"linger.ms", "5"},
                                            {"compression.codec", "zstd"},
                                            /* librdkafka's default queue is 1 GiB; records wait
                                             * in LMDB anyway, so keep the copy in RAM small
                                             * (QUEUE_FULL is backpressure, see below) */
                                            {"queue.buffering.max.kbytes", "65536"}};
  cairn_err e = conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, "--kafka-brokers", errbuf,
                         errlen);
  for (size_t i = 0; e == CAIRN_OK && i < sizeof(defaults) / sizeof(defaults[0]); i++)
    e = conf_set(conf, defaults[i][0], defaults[i][1], "built-in kafka setting", errbuf, errlen);
  for (size_t i = 0; e == CAIRN_OK && i < cfg->kafka_property.n; i++) {
    const char *kv = cfg->kafka_property.v[i];
    const char *eq = strchr(kv, '=');
    char key[256];
    if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
      snprintf(errbuf, errlen, "--kafka-property: '%s' is not KEY=VALUE", kv);
      e = CAIRN_E_CONFIG;
      break;
    }
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    e = conf_set(conf, key, eq + 1, "--kafka-property", errbuf, errlen);
  }
  if (e != CAIRN_OK) {
    rd_kafka_conf_destroy(conf);
    goto out_destroy_cv_keep_err;
  }
  rd_kafka_conf_set_opaque(conf, k);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_log_cb(conf, on_log);
  char err[512];
  k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)); /* owns conf on success */
  if (!k->rk) {
    rd_kafka_conf_destroy(conf);
    snprintf(errbuf, errlen, "--kafka-brokers %s: cannot create the producer: %s",
             cfg->kafka_brokers, err);
    goto out_destroy_cv_keep_err;
  }
  *out = k;
  return CAIRN_OK;

out_destroy_cv_keep_err:
  pthread_cond_destroy(&k->cv);
  pthread_mutex_destroy(&k->mu);
  free(k->ring);
  free(k->brokers);
  free(k->topic);
  free(k->topic_audit);
  free(k->topic_k8s);
  free(k);
  return CAIRN_E_CONFIG;
out_destroy_cv:
  pthread_cond_destroy(&k->cv);
out_destroy_mu:
  pthread_mutex_destroy(&k->mu);
out_free:
  free(k->ring);
  free(k->brokers);
  free(k->topic);
  free(k->topic_audit);
  free(k->topic_k8s);
  free(k);
  return CAIRN_E_NOMEM;
}

/* sto_scan_after callback: produce one record. false stops the scan. */
static bool produce_one(const Cairn__Record *rec, void *ud) {
  agg_kafka *k = ud;
  if (k->n >= KAFKA_RING_CAP) return false;
  cairn_buf_reset(&k->json);
  if (pb_record_json(rec, &k->json) != CAIRN_OK) {
    cairn_log_error(AGG_COMP, "kafka: out of memory rendering seq %" PRIu64 "; will retry",
                    rec->seq);
    k->queue_full = true; /* back off like a full queue */
    return false;
  }
  char key[160];
  int kl = snprintf(key, sizeof(key), "%s/%" PRIu64, rec->instance_id ? rec->instance_id : "",
                    rec->file_stream);
  if (kl < 0) kl = 0;
  if ((size_t)kl >= sizeof(key)) kl = (int)sizeof(key) - 1;
  /* one topic per source type when configured, so retention and access can
   * differ between container logs and audit trails */
  const char *topic = rec->source == CAIRN__SOURCE__SOURCE_AUDIT       ? k->topic_audit
                      : rec->source == CAIRN__SOURCE__SOURCE_K8S_AUDIT ? k->topic_k8s
                                                                       : k->topic;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      k->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(key, (size_t)kl), RD_KAFKA_V_VALUE(k->json.ptr, k->json.len),
      RD_KAFKA_V_OPAQUE((void *)(uintptr_t)rec->seq), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    k->queue_full = true;
    return false;
  }
  if (err) {
    int64_t now = cairn_time_mono_ns();
    if (!k->last_err_log_ns || now - k->last_err_log_ns >= KAFKA_ERR_LOG_INTERVAL_NS) {
      k->last_err_log_ns = now;
      cairn_log_warn(AGG_COMP, "kafka: producing seq %" PRIu64 " to %s failed: %s; will retry",
                     rec->seq, topic, rd_kafka_err2str(err));
    }
    k->queue_full = true;
    return false;
  }
  kafka_slot *s = ring_at(k, k->n);
  s->seq = rec->seq;
  s->done = false;
  k->n++;
  k->produce_pos = rec->seq;
  return true;
}

static void maybe_send_cursor(agg_kafka *k, bool force) {
  if (k->cursor == k->cursor_sent) return;
  int64_t now = cairn_time_mono_ns();
  if (!force && now - k->cursor_sent_ns < KAFKA_CURSOR_INTERVAL_NS) return;
  agg__writer_cursor_set(k->a, k->cursor);
  k->cursor_sent = k->cursor;
  k->cursor_sent_ns = now;
}

static void handle_rewind(agg_kafka *k) {
  if (!k->rewind) return;
  k->rewind = false;
  k->produce_pos = k->cursor;
  k->head = 0;
  k->n = 0; /* reports of the old copies are ignored or mark the new ones early */
}

static void *kafka_main(void *arg) {
  agg_kafka *k = arg;
  agg *a = k->a;
  uint64_t c0 = 0;
  if (sto_cursor_get(a->env, "kafka", &c0) != CAIRN_OK) {
    cairn_log_error(AGG_COMP, "kafka: cannot read the kafka cursor in %s; starting from 0",
                    a->cfg.data_dir);
    c0 = 0;
  }
  k->cursor = k->cursor_sent = k->produce_pos = c0;
  atomic_store(&a->m.kafka_cursor, c0);
  cairn_log_info(AGG_COMP,
                 "kafka forwarding to topic %s (audit: %s, k8s-audit: %s; brokers %s) from seq %" PRIu64,
                 k->topic, k->topic_audit, k->topic_k8s, k->brokers, c0 + 1);
  int64_t timeout_ns;
  for (;;) {
    pthread_mutex_lock(&k->mu);
    bool stop = k->stopping;
    uint64_t gen = k->notify_gen;
    timeout_ns = k->stop_timeout_ns;
    pthread_mutex_unlock(&k->mu);
    if (stop) break;

    size_t before = k->n;
    uint64_t pos_before = k->produce_pos;
    if (!k->queue_full && k->n < KAFKA_RING_CAP) {
      size_t room = KAFKA_RING_CAP - k->n;
      cairn_err e = sto_scan_after(a->env, k->produce_pos, room < KAFKA_SCAN_MAX ? room : KAFKA_SCAN_MAX,
                                   produce_one, k);
      if (e != CAIRN_OK) {
        cairn_log_error(AGG_COMP, "kafka: reading records after seq %" PRIu64 " in %s failed: %s",
                        k->produce_pos, a->cfg.data_dir, cairn_err_name(e));
      }
    }
    bool produced = k->produce_pos != pos_before || k->n != before;
    rd_kafka_poll(k->rk, 0);
    atomic_store(&a->m.kafka_queue, (uint_fast64_t)rd_kafka_outq_len(k->rk));
    handle_rewind(k);
    maybe_send_cursor(k, false);
    if (produced) continue;
    if (k->n > 0 || k->queue_full) {
      k->queue_full = false;
      rd_kafka_poll(k->rk, 20);
      handle_rewind(k);
      continue;
    }
    pthread_mutex_lock(&k->mu);
    if (k->notify_gen == gen && !k->stopping) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      int64_t ns = ts.tv_nsec + KAFKA_IDLE_WAIT_NS;
      ts.tv_sec += ns / 1000000000LL;
      ts.tv_nsec = ns % 1000000000LL;
      pthread_cond_timedwait(&k->cv, &k->mu, &ts);
    }
    pthread_mutex_unlock(&k->mu);
  }
  /* shutdown: deliver what is in flight (bounded), then record how far we got */
  int tmo_ms = (int)(timeout_ns / 1000000LL);
  rd_kafka_resp_err_t fe = rd_kafka_flush(k->rk, tmo_ms > 0 ? tmo_ms : 0);
  rd_kafka_poll(k->rk, 0);
  if (fe != RD_KAFKA_RESP_ERR_NO_ERROR) {
    cairn_log_warn(AGG_COMP,
                   "kafka: %d messages not delivered within --shutdown-timeout; they are "
                   "forwarded again from cursor %" PRIu64 " at next start",
                   rd_kafka_outq_len(k->rk), k->cursor);
  }
  maybe_send_cursor(k, true);
  cairn_log_info(AGG_COMP, "kafka forwarder stopped at cursor %" PRIu64, k->cursor);
  return NULL;
}

cairn_err agg__kafka_start(agg_kafka *k) {
  if (pthread_create(&k->thread, NULL, kafka_main, k) != 0) return CAIRN_E_NOMEM;
  k->started = true;
  return CAIRN_OK;
}

void agg__kafka_notify(agg_kafka *k) {
  pthread_mutex_lock(&k->mu);
  k->notify_gen++;
  pthread_cond_signal(&k->cv);
  pthread_mutex_unlock(&k->mu);
}

void agg__kafka_stop(agg_kafka *k, int64_t timeout_ns) {
  if (!k || !k->started) return;
  pthread_mutex_lock(&k->mu);
  k->stopping = true;
  k->stop_timeout_ns = timeout_ns;
  pthread_cond_signal(&k->cv);
  pthread_mutex_unlock(&k->mu);
  pthread_join(k->thread, NULL);
  k->started = false;
}

void agg__kafka_free(agg_kafka *k) {
  if (!k) return;
  if (k->rk) rd_kafka_destroy(k->rk);
  pthread_cond_destroy(&k->cv);
  pthread_mutex_destroy(&k->mu);
  cairn_buf_fini(&k->json);
  free(k->ring);
  free(k->brokers);
  free(k->topic);
  free(k->topic_audit);
  free(k->topic_k8s);
  free(k);
}
