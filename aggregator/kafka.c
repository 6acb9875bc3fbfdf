/* aggregator/kafka.c: forwards stored records to Kafka, from storage.
 *
 * One thread reads records after the LMDB "kafka" cursor, produces them as JSON
 * (key "<instance_id>/<file_stream>", so a source stream stays ordered within
 * its partition) and tracks delivery reports. By default a message is one
 * record; with --kafka-records-per-message N > 1 a message holds up to N
 * consecutive records of one key as JSON lines, with headers naming its first
 * and last seq and its record count. The cursor advances only over the
 * contiguous prefix of delivered messages and is committed by the writer
 * thread. A failed delivery rewinds production to the cursor: delivery into
 * Kafka is at-least-once (a rewind or a crash between delivery and cursor
 * commit can produce a record twice; never zero times).
 * With --kafka-format protobuf a message's value is instead a cairn.RecordBatch
 * whose records are the stored bytes themselves (the bytes the hash chain's
 * leaves cover), one or up to N per message, with the seq/count headers and
 * cairn-format: protobuf: no rendering, and fewer bytes to compress.
 * Records are rendered from their stored bytes (sto_scan_after_raw,
 * pb_view_parse, pb_view_json) without protobuf-c; a record the view cannot
 * take exactly is unpacked and rendered by pb_record_json, to the same JSON.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "aggregator/internal.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/timeparse.h"
#include "proto/json.h"

#define KAFKA_RING_CAP (1u << 16)           /* messages produced but not yet delivered */
#define KAFKA_SCAN_MAX 4096u                /* records per storage scan (one read txn) */
#define KAFKA_KEY_MAX 160                   /* key buffer; longer keys are cut at 159 bytes */
#define KAFKA_GROUP_SLACK 1024u             /* bytes of message.max.bytes kept for key and headers */
#define HDR_FIRST "cairn-first-seq"         /* grouped messages: headers (decimal text) */
#define HDR_LAST "cairn-last-seq"
#define HDR_COUNT "cairn-count"
#define HDR_FORMAT "cairn-format"          /* "protobuf" on --kafka-format protobuf values */
#define KAFKA_CURSOR_INTERVAL_NS 200000000LL /* cursor updates at most every 200 ms */
#define KAFKA_IDLE_WAIT_NS 100000000LL      /* poll fallback when nothing is notified */
#define KAFKA_ERR_LOG_INTERVAL_NS (10LL * 1000000000LL)
#define KAFKA_UNPACK_BLOCK (16u << 10)      /* arena block for a record the view cannot take */

typedef struct kafka_slot {
  uint64_t first, last; /* seqs of the message's first and last record */
  bool done;
} kafka_slot;

/* A grouped message's value while librdkafka holds it (produced without a
 * copy: a 100 KB-1 MB value copied into a fresh allocation per message cost
 * more than the copy itself, in page faults). Reused once delivered. */
typedef struct kafka_vbuf {
  uint8_t *ptr;            /* owned */
  size_t cap;
  bool busy;               /* in librdkafka's queue: keep until its delivery report */
} kafka_vbuf;

/* The message being filled (records-per-message > 1): consecutive records
 * with one key and topic; produced when full, when the key changes and at
 * the end of every scan, so nothing is held between scans. */
typedef struct kafka_group {
  rd_kafka_topic_t *rkt;   /* borrowed from agg_kafka; NULL = empty group */
  char key[KAFKA_KEY_MAX];
  size_t key_len;
  uint64_t first, last;    /* seqs */
  uint32_t count;          /* records in value */
  cairn_buf value;         /* JSON lines, each ending in '\n' */
} kafka_group;

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
  rd_kafka_topic_t *rkt, *rkt_audit, *rkt_k8s; /* owned handles of the three topics (one
                                                  lookup at start, not one per message) */
  uint32_t per_msg;        /* records per message (1 = one JSON object per message) */
  bool protobuf;           /* --kafka-format protobuf: values are cairn.RecordBatch bytes */
  size_t group_max_bytes;  /* value size that closes a group (message.max.bytes - slack) */
  kafka_group group;       /* forwarding thread only */
  kafka_vbuf *vbufs;       /* owned, forwarding thread only: values of grouped messages */
  size_t n_vbufs, cap_vbufs;
  cairn_err scan_err;      /* forwarding thread only: why a scan callback stopped, or OK */
  cairn_arena unpack;      /* forwarding thread only: records the view cannot take */
  pb_rec_view view;        /* forwarding thread only: the record being rendered */
  char inflight[64];       /* ", N request(s) in flight ..." for the start line (grouped), or "" */
};

/* What the forwarder needs of a record besides its JSON; strings borrowed
 * from the stored bytes (or from k->unpack) until the next record. */
typedef struct kafka_rec {
  uint64_t seq;         /* the record's seq field */
  uint32_t source;      /* Cairn__Source value: picks the topic */
  uint64_t file_stream; /* key */
  const uint8_t *inst;  /* key: instance_id, inst_len bytes */
  size_t inst_len;
} kafka_rec;

static kafka_slot *ring_at(agg_kafka *k, size_t i) {
  return &k->ring[(k->head + i) & (KAFKA_RING_CAP - 1)];
}

/* Seqs of a delivered message: its opaque is the last seq; a grouped
 * message names its first in a header (a rewind can produce the same last
 * seq with a different first, so the pair identifies the message). */
static void msg_span(const agg_kafka *k, const rd_kafka_message_t *m, uint64_t *first,
                     uint64_t *last, uint64_t *count) {
  *last = *first = (uint64_t)(uintptr_t)m->_private;
  *count = 1;
  if (k->per_msg <= 1) return;
  rd_kafka_headers_t *h = NULL;
  const void *v;
  size_t n;
  char buf[24];
  if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (rd_kafka_header_get_last(h, HDR_FIRST, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && n > 0 &&
      n < sizeof(buf)) {
    memcpy(buf, v, n);
    buf[n] = '\0';
    *first = strtoull(buf, NULL, 10);
  }
  if (rd_kafka_header_get_last(h, HDR_COUNT, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && n > 0 &&
      n < sizeof(buf)) {
    memcpy(buf, v, n);
    buf[n] = '\0';
    *count = strtoull(buf, NULL, 10);
  }
}

/* Delivery report (runs inside rd_kafka_poll/flush on the forwarding thread). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  agg_kafka *k = opaque;
  uint64_t first, last, count;
  msg_span(k, m, &first, &last, &count);
  /* --log-level debug: one line per report, to match against what a
   * consumer reads (offset -1001: none known, e.g. a batch librdkafka took
   * as delivered because a later one of the partition was acknowledged) */
  cairn_log_debug(AGG_COMP,
                  "kafka delivery report seq %" PRIu64 "..%" PRIu64 " (%" PRIu64
                  " records) partition %" PRId32 " offset %" PRId64 ": %s",
                  first, last, count, m->partition, m->offset,
                  m->err ? rd_kafka_err2name(m->err) : "ok");
  if (k->per_msg > 1) {
    for (size_t i = 0; i < k->n_vbufs; i++) {
      if (k->vbufs[i].busy && k->vbufs[i].ptr == m->payload) {
        k->vbufs[i].busy = false;
        break;
      }
    }
  }
  if (m->err) {
    atomic_fetch_add(&k->a->m.kafka_failed, count);
    int64_t now = cairn_time_mono_ns();
    if (!k->last_dr_log_ns || now - k->last_dr_log_ns >= KAFKA_ERR_LOG_INTERVAL_NS) {
      k->last_dr_log_ns = now;
      cairn_log_warn(AGG_COMP,
                     "kafka delivery of seq %" PRIu64 "..%" PRIu64 " to topic %s (brokers %s) "
                     "failed: %s; producing again from cursor %" PRIu64 " (records stay in LMDB)",
                     first, last, rd_kafka_topic_name(m->rkt), k->brokers,
                     rd_kafka_err2str(m->err), k->cursor);
    }
    k->rewind = true;
    return;
  }
  atomic_fetch_add(&k->a->m.kafka_delivered, count);
  /* binary search: the ring is ascending in last seq */
  size_t lo = 0, hi = k->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ring_at(k, mid)->last < last) lo = mid + 1;
    else hi = mid;
  }
  /* a report of a copy produced before a rewind may mark the new copy of the
   * same records (same first and last seq) early: those records are in Kafka */
  if (lo < k->n && ring_at(k, lo)->last == last && ring_at(k, lo)->first == first)
    ring_at(k, lo)->done = true;
  while (k->n > 0 && ring_at(k, 0)->done) {
    k->cursor = ring_at(k, 0)->last;
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
  cairn_arena_init(&k->unpack, KAFKA_UNPACK_BLOCK); /* allocates nothing until used */
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
  /* zstd level 1: records are repetitive JSON (10-20x smaller on the wire
   * and on the brokers' disks, half of what lz4 leaves); level 1 compresses
   * as small as librdkafka's default level 3 on this data for less CPU
   * (docs/PERFORMANCE.md, "Kafka forwarding"). --kafka-property
   * compression.codec=... / compression.level=... override them */
  static const char *const defaults[][2] = {{"enable.idempotence", "true"},
                                            {"acks", "all"},
                                            {"linger.ms", "5"},
                                            {"compression.codec", "zstd"},
                                            {"compression.level", "1"},
                                            /* librdkafka's default queue is 1 GiB; records wait
                                             * in LMDB anyway, so keep the copy in RAM small
                                             * (QUEUE_FULL is backpressure, see below) */
                                            {"queue.buffering.max.kbytes", "65536"}};
  cairn_err e = conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, "--kafka-brokers", errbuf,
                         errlen);
  for (size_t i = 0; e == CAIRN_OK && i < sizeof(defaults) / sizeof(defaults[0]); i++)
    e = conf_set(conf, defaults[i][0], defaults[i][1], "built-in kafka setting", errbuf, errlen);
  /* grouped messages: one Produce request in flight per broker connection
   * unless --kafka-property says otherwise. With several, librdkafka's mock
   * cluster appended a later batch of a partition after failing an earlier
   * one, and the idempotent producer then took the failed batch as
   * delivered; grouping sends few, large batches, so pipelining them gains
   * little (docs/OPERATIONS.md, "Kafka: message format and producer
   * settings") */
  if (e == CAIRN_OK && cfg->kafka_records_per_message > 1)
    e = conf_set(conf, "max.in.flight.requests.per.connection", "1",
                 "built-in kafka setting for --kafka-records-per-message", errbuf, errlen);
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
  /* a group's value stays below what the producer accepts as one message */
  char mmb[32];
  size_t mmb_len = sizeof(mmb);
  unsigned long long max_msg = 1000000;
  if (rd_kafka_conf_get(conf, "message.max.bytes", mmb, &mmb_len) == RD_KAFKA_CONF_OK)
    max_msg = strtoull(mmb, NULL, 10);
  k->group_max_bytes = max_msg > 2 * KAFKA_GROUP_SLACK ? (size_t)max_msg - KAFKA_GROUP_SLACK
                                                       : KAFKA_GROUP_SLACK;
  k->per_msg = cfg->kafka_records_per_message > 1 ? (uint32_t)cfg->kafka_records_per_message : 1;
  k->protobuf = cfg->kafka_format && strcmp(cfg->kafka_format, "protobuf") == 0;
  if (k->per_msg > 1) { /* for the start line: what grouped mode runs with */
    char v[24];
    size_t vl = sizeof(v);
    if (rd_kafka_conf_get(conf, "max.in.flight.requests.per.connection", v, &vl) !=
        RD_KAFKA_CONF_OK)
      snprintf(v, sizeof(v), "?");
    snprintf(k->inflight, sizeof(k->inflight), ", %s request(s) in flight per connection", v);
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
  k->rkt = rd_kafka_topic_new(k->rk, k->topic, NULL);
  k->rkt_audit = rd_kafka_topic_new(k->rk, k->topic_audit, NULL);
  k->rkt_k8s = rd_kafka_topic_new(k->rk, k->topic_k8s, NULL);
  if (!k->rkt || !k->rkt_audit || !k->rkt_k8s) {
    snprintf(errbuf, errlen, "--kafka-topic %s: librdkafka rejected a topic handle: %s", k->topic,
             rd_kafka_err2str(rd_kafka_last_error()));
    agg__kafka_free(k);
    return CAIRN_E_CONFIG;
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

/* "<instance_id>/<file_stream>" into key (KAFKA_KEY_MAX bytes, cut at
 * KAFKA_KEY_MAX - 1 as snprintf would); returns its length. */
static size_t key_build(const kafka_rec *rec, char *key) {
  const uint8_t *inst = rec->inst;
  size_t il = rec->inst_len;
  char num[24];
  char *p = num + sizeof(num);
  uint64_t v = rec->file_stream;
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  size_t nl = (size_t)(num + sizeof(num) - p);
  size_t len = 0;
  size_t take = il < KAFKA_KEY_MAX - 1 ? il : KAFKA_KEY_MAX - 1;
  if (take) memcpy(key, inst, take);
  len = take;
  if (len < KAFKA_KEY_MAX - 1) key[len++] = '/';
  take = nl < KAFKA_KEY_MAX - 1 - len ? nl : KAFKA_KEY_MAX - 1 - len;
  memcpy(key + len, p, take);
  len += take;
  key[len] = '\0';
  return len;
}

/* One topic per source type when configured, so retention and access can
 * differ between container logs and audit trails. */
static rd_kafka_topic_t *topic_of(const agg_kafka *k, const kafka_rec *rec) {
  return rec->source == CAIRN__SOURCE__SOURCE_AUDIT       ? k->rkt_audit
         : rec->source == CAIRN__SOURCE__SOURCE_K8S_AUDIT ? k->rkt_k8s
                                                          : k->rkt;
}

/* Hand one message (records first..last) to librdkafka (it copies the key,
 * and the value unless grouped) and track it in the ring. grouped and
 * protobuf messages carry the three seq/count headers, protobuf ones also
 * cairn-format: protobuf. false when
 * librdkafka refused it (queue full or an error, logged): nothing was
 * queued, the caller stops and the records are scanned again later. */
static bool produce_msg(agg_kafka *k, rd_kafka_topic_t *rkt, const char *key, size_t key_len,
                        const void *value, size_t len, uint64_t first, uint64_t last,
                        uint32_t count, bool grouped) {
  rd_kafka_resp_err_t err;
  if (!grouped && !k->protobuf) {
    err = rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, len),
                            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)last), RD_KAFKA_V_END);
  } else {
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    char b[3][24];
    int n0 = snprintf(b[0], sizeof(b[0]), "%" PRIu64, first);
    int n1 = snprintf(b[1], sizeof(b[1]), "%" PRIu64, last);
    int n2 = snprintf(b[2], sizeof(b[2]), "%" PRIu32, count);
    rd_kafka_header_add(h, HDR_FIRST, -1, b[0], n0);
    rd_kafka_header_add(h, HDR_LAST, -1, b[1], n1);
    rd_kafka_header_add(h, HDR_COUNT, -1, b[2], n2);
    if (k->protobuf) rd_kafka_header_add(h, HDR_FORMAT, -1, "protobuf", 8);
    /* grouped, no copy: value stays valid until the delivery report (group_flush) */
    err = rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(rkt),
                            RD_KAFKA_V_MSGFLAGS(grouped ? 0 : RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, len),
                            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)last),
                            RD_KAFKA_V_END);
    if (err) rd_kafka_headers_destroy(h); /* librdkafka owns them only on success */
  }
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    k->queue_full = true;
    return false;
  }
  if (err) {
    int64_t now = cairn_time_mono_ns();
    if (!k->last_err_log_ns || now - k->last_err_log_ns >= KAFKA_ERR_LOG_INTERVAL_NS) {
      k->last_err_log_ns = now;
      cairn_log_warn(AGG_COMP,
                     "kafka: producing seq %" PRIu64 "..%" PRIu64 " (%zu bytes) to %s failed: %s; "
                     "will retry",
                     first, last, len, rd_kafka_topic_name(rkt), rd_kafka_err2str(err));
    }
    k->queue_full = true;
    return false;
  }
  kafka_slot *s = ring_at(k, k->n);
  s->first = first;
  s->last = last;
  s->done = false;
  k->n++;
  k->produce_pos = last;
  return true;
}

/* Park the group's value buffer while librdkafka holds it and give the
 * group a delivered one (or none: it grows on the first append). Parked
 * buffers are freed by agg__kafka_free after rd_kafka_destroy. false on out
 * of memory: the message is queued all the same and its buffer is leaked. */
static bool vbuf_park(agg_kafka *k) {
  kafka_group *g = &k->group;
  size_t free_i = SIZE_MAX;
  for (size_t i = 0; i < k->n_vbufs; i++) {
    if (!k->vbufs[i].busy) {
      free_i = i;
      break;
    }
  }
  kafka_vbuf parked = {g->value.ptr, g->value.cap, true};
  if (free_i != SIZE_MAX) { /* swap: the group takes the delivered buffer */
    g->value.ptr = k->vbufs[free_i].ptr;
    g->value.cap = k->vbufs[free_i].cap;
    g->value.len = 0;
    k->vbufs[free_i] = parked;
    return true;
  }
  if (k->n_vbufs == k->cap_vbufs) {
    size_t nc = k->cap_vbufs ? k->cap_vbufs * 2 : 16;
    kafka_vbuf *nv = realloc(k->vbufs, nc * sizeof(*nv));
    if (!nv) return false;
    k->vbufs = nv;
    k->cap_vbufs = nc;
  }
  k->vbufs[k->n_vbufs++] = parked;
  g->value.ptr = NULL;
  g->value.cap = 0;
  g->value.len = 0;
  return true;
}

/* Produce the open group (if any) and empty it. false when librdkafka
 * refused it: the group is dropped all the same, its records are scanned
 * again from produce_pos. */
static bool group_flush(agg_kafka *k) {
  kafka_group *g = &k->group;
  if (!g->rkt) return true;
  bool ok = produce_msg(k, g->rkt, g->key, g->key_len, g->value.ptr, g->value.len, g->first,
                        g->last, g->count, true);
  if (ok && !vbuf_park(k)) {
    cairn_log_error(AGG_COMP, "kafka: out of memory tracking a message buffer; continuing");
    g->value = (cairn_buf){0}; /* the buffer stays with librdkafka; never reused */
  }
  g->rkt = NULL;
  g->count = 0;
  cairn_buf_reset(&g->value);
  return ok;
}

static void render_failed(agg_kafka *k, uint64_t seq) {
  cairn_log_error(AGG_COMP, "kafka: out of memory rendering seq %" PRIu64 "; will retry", seq);
  k->queue_full = true; /* back off like a full queue */
}

/* Fill *rec from the stored bytes p[0..n): in place with pb_view_key_fields
 * (protobuf values: nothing else is read) or pb_view_parse, or (a record
 * neither can take exactly) unpacked into k->unpack, then *r is set.
 * CAIRN_E_CORRUPT when protobuf-c cannot decode it either, CAIRN_E_NOMEM. */
static cairn_err rec_open(agg_kafka *k, const uint8_t *p, size_t n, kafka_rec *rec,
                          const Cairn__Record **r) {
  *r = NULL;
  pb_key_fields kf;
  if (k->protobuf && pb_view_key_fields(p, n, &kf)) {
    *rec = (kafka_rec){kf.seq, kf.source, kf.file_stream, kf.instance_id.p, kf.instance_id.n};
    return CAIRN_OK;
  }
  if (pb_view_parse(p, n, &k->view)) {
    const pb_rec_view *v = &k->view;
    *rec = (kafka_rec){v->seq, v->source, v->file_stream, v->instance_id.p, v->instance_id.n};
    return CAIRN_OK;
  }
  cairn_arena_reset(&k->unpack);
  Cairn__Record *u;
  cairn_err e = pb_record_unpack(p, n, &k->unpack, &u);
  if (e != CAIRN_OK) return e == CAIRN_E_PROTO ? CAIRN_E_CORRUPT : e;
  const char *inst = u->instance_id ? u->instance_id : "";
  *rec = (kafka_rec){u->seq, (uint32_t)u->source, u->file_stream, (const uint8_t *)inst,
                     strlen(inst)};
  *r = u;
  return CAIRN_OK;
}

/* Append the value of the record rec_open opened (r as it set it) from its
 * stored bytes p[0..n): its JSON and a newline when grouped, or (protobuf)
 * the bytes themselves as one RecordBatch.records entry (key, length,
 * bytes), so a message's value is a cairn.RecordBatch. */
static cairn_err rec_value(agg_kafka *k, const Cairn__Record *r, const uint8_t *p, size_t n,
                           cairn_buf *out) {
  if (k->protobuf) {
    uint8_t hdr[11];
    size_t hl = 0;
    hdr[hl++] = 0x0a; /* field 1, length-delimited */
    uint64_t v = n;
    do {
      hdr[hl++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
      v >>= 7;
    } while (v);
    cairn_err e = cairn_buf_append(out, hdr, hl);
    return e ? e : cairn_buf_append(out, p, n);
  }
  cairn_err e = r ? pb_record_json(r, out) : pb_view_json(&k->view, out);
  if (e == CAIRN_OK && k->per_msg > 1) e = cairn_buf_append(out, "\n", 1);
  return e;
}

/* A stored record protobuf-c cannot decode (or no memory to): the scan
 * stops there, and kafka_main logs it like a failed scan. */
static bool open_failed(agg_kafka *k, uint64_t key_seq, cairn_err e) {
  if (e == CAIRN_E_NOMEM) {
    render_failed(k, key_seq);
    return false;
  }
  k->scan_err = e;
  return false;
}

/* sto_scan_after_raw callback, --kafka-records-per-message > 1: add the
 * record to the open group, producing the group first when the record cannot
 * join it. false stops the scan. */
static bool group_one(uint64_t key_seq, const uint8_t *p, size_t n, void *ud) {
  agg_kafka *k = ud;
  kafka_group *g = &k->group;
  kafka_rec rb, *rec = &rb;
  const Cairn__Record *r;
  cairn_err oe = rec_open(k, p, n, rec, &r);
  if (oe != CAIRN_OK) return open_failed(k, key_seq, oe);
  char key[KAFKA_KEY_MAX];
  size_t kl = key_build(rec, key);
  rd_kafka_topic_t *rkt = topic_of(k, rec);
  if (g->rkt && (g->rkt != rkt || g->key_len != kl || memcmp(g->key, key, kl) != 0)) {
    if (!group_flush(k)) return false;
  }
  if (!g->rkt && k->n >= KAFKA_RING_CAP) return false;
  size_t before = g->value.len;
  if (rec_value(k, r, p, n, &g->value) != CAIRN_OK) {
    g->value.len = before;
    render_failed(k, rec->seq);
    return false;
  }
  if (g->rkt && g->value.len > k->group_max_bytes) {
    /* too large with this record: send the others, start over with it */
    size_t rec_len = g->value.len - before;
    g->value.len = before;
    if (!group_flush(k)) return false;
    if (k->n >= KAFKA_RING_CAP) return false;
    if (rec_value(k, r, p, n, &g->value) != CAIRN_OK || g->value.len != rec_len) {
      g->value.len = 0;
      render_failed(k, rec->seq);
      return false;
    }
  }
  if (!g->rkt) {
    g->rkt = rkt;
    memcpy(g->key, key, kl + 1);
    g->key_len = kl;
    g->first = rec->seq;
    g->count = 0;
  }
  g->last = rec->seq;
  g->count++;
  if (g->count >= k->per_msg) return group_flush(k);
  return true;
}

/* sto_scan_after_raw callback, one record per message. false stops the scan. */
static bool produce_one(uint64_t key_seq, const uint8_t *p, size_t n, void *ud) {
  agg_kafka *k = ud;
  if (k->n >= KAFKA_RING_CAP) return false;
  kafka_rec rb, *rec = &rb;
  const Cairn__Record *r;
  cairn_err oe = rec_open(k, p, n, rec, &r);
  if (oe != CAIRN_OK) return open_failed(k, key_seq, oe);
  cairn_buf_reset(&k->json);
  if (rec_value(k, r, p, n, &k->json) != CAIRN_OK) {
    render_failed(k, rec->seq);
    return false;
  }
  char key[KAFKA_KEY_MAX];
  size_t kl = key_build(rec, key);
  return produce_msg(k, topic_of(k, rec), key, kl, k->json.ptr, k->json.len, rec->seq, rec->seq, 1,
                     false);
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
                 "kafka forwarding to topic %s (audit: %s, k8s-audit: %s; brokers %s) from seq %" PRIu64
                 ", %" PRIu32 " record(s) per message as %s%s",
                 k->topic, k->topic_audit, k->topic_k8s, k->brokers, c0 + 1, k->per_msg,
                 k->protobuf ? "protobuf (cairn.RecordBatch)" : "JSON", k->inflight);
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
      /* records: a whole number of full groups, and no more messages than
       * the ring has room for */
      size_t room = (size_t)(KAFKA_RING_CAP - k->n) * k->per_msg;
      size_t step = (KAFKA_SCAN_MAX + k->per_msg - 1) / k->per_msg * k->per_msg;
      k->scan_err = CAIRN_OK;
      cairn_err e = sto_scan_after_raw(a->env, k->produce_pos, room < step ? room : step,
                                       k->per_msg > 1 ? group_one : produce_one, k);
      if (e == CAIRN_OK) e = k->scan_err;
      if (k->per_msg > 1) (void)group_flush(k); /* the rest of the scan: never held back */
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
  pthread_setname_np(k->thread, "cairn-kafka"); /* for top -H and perf; failure is harmless */
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
  if (k->rkt) rd_kafka_topic_destroy(k->rkt);
  if (k->rkt_audit) rd_kafka_topic_destroy(k->rkt_audit);
  if (k->rkt_k8s) rd_kafka_topic_destroy(k->rkt_k8s);
  if (k->rk) rd_kafka_destroy(k->rk); /* no message refers to a value buffer after this */
  cairn_buf_fini(&k->group.value);
  for (size_t i = 0; i < k->n_vbufs; i++) free(k->vbufs[i].ptr);
  free(k->vbufs);
  pthread_cond_destroy(&k->cv);
  pthread_mutex_destroy(&k->mu);
  cairn_buf_fini(&k->json);
  cairn_arena_fini(&k->unpack);
  free(k->ring);
  free(k->brokers);
  free(k->topic);
  free(k->topic_audit);
  free(k->topic_k8s);
  free(k);
}
