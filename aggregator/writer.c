/* aggregator/writer.c: the writer thread, owner of every LMDB write txn.
 *
 * The loop queues batch jobs; the writer takes up to --group-commit of them,
 * decodes each (zstd + protobuf, with limits), stores them all in ONE txn and
 * commits once, so one fsync covers the group. Completed jobs go back on a
 * completion queue and uv_async_send wakes the loop, whose callback drains the
 * whole queue (sends coalesce). The Kafka cursor rides along in the next txn.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/internal.h"
#include "common/log.h"
#include "common/timeparse.h"

#define AGG_FULL_LOG_INTERVAL_NS (10LL * 1000000000LL)
#define AGG_STATS_INTERVAL_NS (1000000000LL)
/* Decompression buffers kept between groups (sum of their capacities):
 * reused, a batch's bytes land in pages already mapped. */
#define AGG_KEEP_RAW_BYTES (32u << 20)

/* The writer's decode state of the i-th job of a group. The records are
 * stored from the decompressed bytes (pb_batch_decode_items): no protobuf-c
 * unpack for records it reads in place. */
typedef struct agg_slot {
  cairn_buf raw;        /* owned, kept across groups: the job's decompressed RecordBatch */
  pb_batch_item *items; /* n records, in the group arena (bytes in raw) */
  size_t n;
  bool ok;              /* decoded and still to be stored / counted */
} agg_slot;

typedef struct agg_slots {
  agg_slot *v; /* owned, cap entries, the first group.n used by a group */
  size_t cap;
} agg_slots;

/* Room for n slots (new ones zeroed). false on OOM. */
static bool slots_reserve(agg_slots *s, size_t n) {
  if (n <= s->cap) return true;
  agg_slot *nv = realloc(s->v, n * sizeof(*nv));
  if (!nv) return false;
  memset(nv + s->cap, 0, (n - s->cap) * sizeof(*nv));
  s->v = nv;
  s->cap = n;
  return true;
}

/* After a group: forget its items, keep the buffers up to AGG_KEEP_RAW_BYTES. */
static void slots_end_group(agg_slots *s) {
  size_t kept = 0;
  for (size_t i = 0; i < s->cap; i++) {
    agg_slot *sl = &s->v[i];
    sl->items = NULL;
    sl->n = 0;
    sl->ok = false;
    if (kept + sl->raw.cap > AGG_KEEP_RAW_BYTES) cairn_buf_fini(&sl->raw);
    kept += sl->raw.cap;
    cairn_buf_reset(&sl->raw);
  }
}

static void slots_fini(agg_slots *s) {
  for (size_t i = 0; i < s->cap; i++) cairn_buf_fini(&s->v[i].raw);
  free(s->v);
  s->v = NULL;
  s->cap = 0;
}

void agg__queue_push(agg_queue *q, agg_job *j) {
  j->next = NULL;
  if (q->tail) q->tail->next = j;
  else q->head = j;
  q->tail = j;
  q->n++;
}

agg_job *agg__queue_pop(agg_queue *q) {
  agg_job *j = q->head;
  if (!j) return NULL;
  q->head = j->next;
  if (!q->head) q->tail = NULL;
  q->n--;
  j->next = NULL;
  return j;
}

void agg__job_free(agg_job *j) {
  if (!j) return;
  free(j->payload);
  agg__conn_unref(j->conn);
  free(j);
}

cairn_err agg__writer_init(agg *a) {
  agg_writer *w = &a->writer;
  if (pthread_mutex_init(&w->mu, NULL) != 0) return CAIRN_E_NOMEM;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* checkpoint deadlines ignore clock steps */
  int crc = pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (crc != 0) {
    pthread_mutex_destroy(&w->mu);
    return CAIRN_E_NOMEM;
  }
  if (pthread_mutex_init(&w->done_mu, NULL) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return CAIRN_E_NOMEM;
  }
  w->mu_init = true;
  return CAIRN_OK;
}

void agg__writer_push(agg *a, agg_job *j) {
  agg_writer *w = &a->writer;
  pthread_mutex_lock(&w->mu);
  agg__queue_push(&w->in, j);
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

cairn_err agg__writer_push_local(agg *a, const char *identity, Cairn__Record *const *recs,
                                 size_t n) {
  /* a job like a collector's batch, on a session that has no connection
   * (pc NULL): the loop's completion handling then sends no Ack */
  agg_conn *c = calloc(1, sizeof(*c));
  agg_job *j = calloc(1, sizeof(*j));
  pb_codec *codec = pb_codec_new(0);
  cairn_buf out;
  cairn_buf_init(&out);
  cairn_err e = c && j && codec ? CAIRN_OK : CAIRN_E_NOMEM;
  if (!e && (!(c->identity = strdup(identity ? identity : "")) ||
             !(c->instance_id = strdup("cairn-aggregator"))))
    e = CAIRN_E_NOMEM;
  uint64_t raw = 0;
  if (!e) e = pb_batch_encode(codec, recs, n, &out, &raw);
  pb_codec_free(codec);
  if (e) {
    cairn_buf_fini(&out);
    free(j);
    if (c) {
      atomic_init(&c->refs, 1);
      agg__conn_unref(c);
    }
    return e;
  }
  c->a = a;
  atomic_init(&c->refs, 1); /* the job's */
  atomic_init(&c->dead, false);
  c->state = AGG_CONN_READY;
  c->inflight = 1; /* handle_done accounts the job against it */
  c->inflight_bytes = out.len;
  j->conn = c;
  j->record_count = (uint32_t)n;
  j->payload = out.ptr; /* taken over from the buf */
  j->payload_len = out.len;
  agg__writer_push(a, j);
  return CAIRN_OK;
}

void agg__writer_cursor_set(agg *a, uint64_t value) {
  agg_writer *w = &a->writer;
  pthread_mutex_lock(&w->mu);
  w->cursor_pending = true;
  w->cursor_value = value;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

/* Hand finished jobs to the loop. When the loop is gone (shutdown), they
 * stay queued and agg__writer_fini frees them. */
static void complete(agg *a, agg_queue *group) {
  agg_writer *w = &a->writer;
  if (!group->head) return; /* woken only to sign a checkpoint */
  pthread_mutex_lock(&w->done_mu);
  agg_job *j;
  while ((j = agg__queue_pop(group)) != NULL) {
    free(j->payload); /* the loop needs only the result */
    j->payload = NULL;
    agg__queue_push(&w->done, j);
  }
  if (w->async_open) uv_async_send(&w->done_async);
  pthread_mutex_unlock(&w->done_mu);
}

static void job_fail(agg_job *j, Cairn__AckStatus st, cairn_err e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void job_fail(agg_job *j, Cairn__AckStatus st, cairn_err e, const char *fmt, ...) {
  j->status = st;
  j->err = e;
  j->stored = j->dups = 0;
  int n = snprintf(j->reason, sizeof(j->reason), "%s: ", cairn_err_name(e));
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof(j->reason)) vsnprintf(j->reason + n, sizeof(j->reason) - (size_t)n, fmt, ap);
  va_end(ap);
}

/* Decode every job of the group once (before the txn) into slots (the
 * i-th job into slots->v[i]); rejects set status. */
static void decode_group(agg *a, agg_queue *group, pb_codec *codec, cairn_arena *arena,
                         agg_slots *slots) {
  size_t i = 0;
  for (agg_job *j = group->head; j; j = j->next, i++) {
    j->status = CAIRN__ACK_STATUS__ACK_OK;
    if (atomic_load(&j->conn->dead)) {
      j->skipped = true; /* its session is gone: store nothing, the collector resends */
      continue;
    }
    agg_slot *sl = &slots->v[i];
    cairn_err e = pb_batch_decode_items(codec, j->payload, j->payload_len, &a->limits, &sl->raw,
                                        arena, &sl->items, &sl->n);
    if (e == CAIRN_OK && sl->n != j->record_count) {
      job_fail(j, CAIRN__ACK_STATUS__ACK_REJECT, CAIRN_E_PROTO,
               "batch seq %" PRIu64 " announces %u records but the payload holds %zu", j->seq,
               j->record_count, sl->n);
    } else if (e == CAIRN_E_LIMIT) {
      job_fail(j, CAIRN__ACK_STATUS__ACK_REJECT, e,
               "batch seq %" PRIu64 " exceeds a limit (at most %" PRIu64
               " bytes decompressed, --max-batch-bytes; %u records, --max-batch-records)",
               j->seq, a->limits.max_raw, a->limits.max_records);
    } else if (e == CAIRN_E_ZSTD) {
      job_fail(j, CAIRN__ACK_STATUS__ACK_REJECT, e,
               "batch seq %" PRIu64 " payload is not a valid zstd frame", j->seq);
    } else if (e == CAIRN_E_PROTO) {
      job_fail(j, CAIRN__ACK_STATUS__ACK_REJECT, e,
               "batch seq %" PRIu64 " payload is not a cairn RecordBatch", j->seq);
    } else if (e == CAIRN_E_NOMEM) {
      job_fail(j, CAIRN__ACK_STATUS__ACK_RETRY, e,
               "aggregator out of memory decoding batch seq %" PRIu64 "; send it again later",
               j->seq);
    } else if (e != CAIRN_OK) {
      job_fail(j, CAIRN__ACK_STATUS__ACK_REJECT, e, "batch seq %" PRIu64 " could not be decoded",
               j->seq);
    } else {
      sl->ok = true; /* stored as received plus the ingest fields: no re-pack */
      continue;
    }
    if (j->status == CAIRN__ACK_STATUS__ACK_REJECT) {
      /* later batches of this session must not be stored after a reject */
      atomic_store(&j->conn->dead, true);
      atomic_fetch_add(&a->m.rejects[agg__reject_kind(j->err)], 1);
    } else if (j->status == CAIRN__ACK_STATUS__ACK_RETRY) {
      /* nor after a RETRY: the collector resends this one, and a later batch
       * stored first would raise the dedupe mark past it (the loop closes
       * the session after this Ack; the collector resends in order) */
      atomic_store(&j->conn->dead, true);
    }
  }
}

/* Answer every decoded job of the group RETRY (storage cannot take them). */
static void group_retry(agg *a, agg_queue *group, agg_slots *slots, cairn_err e,
                        const char *why) {
  size_t i = 0;
  for (agg_job *j = group->head; j; j = j->next, i++) {
    if (!slots->v[i].ok) continue;
    job_fail(j, CAIRN__ACK_STATUS__ACK_RETRY, e, "%s; the batch was not stored, send it again later",
             why);
    /* later batches of the session must not be stored ahead of this one */
    atomic_store(&j->conn->dead, true);
    slots->v[i].ok = false;
    atomic_fetch_add(&a->m.retries, 1);
  }
}

static void log_storage_full(agg *a, cairn_err e) {
  agg_writer *w = &a->writer;
  int64_t now = cairn_time_mono_ns();
  if (w->last_full_log_ns && now - w->last_full_log_ns < AGG_FULL_LOG_INTERVAL_NS) return;
  w->last_full_log_ns = now;
  sto_stats st = {0};
  if (sto_stats_get(a->env, &st) != CAIRN_OK) st.map_size = 0;
  if (e == CAIRN_E_NOSPC) {
    cairn_log_error(AGG_COMP,
                    "storage full (no space left on the disk of %s, map %" PRIu64
                    " bytes): free disk; batches are answered RETRY, collectors keep the data",
                    a->cfg.data_dir, st.map_size);
  } else {
    cairn_log_error(AGG_COMP,
                    "storage full (map %" PRIu64 " bytes at max, %s): raise --max-map-size or "
                    "free disk; batches are answered RETRY, collectors keep the data",
                    st.map_size, a->cfg.data_dir);
  }
}

/* Store the decoded jobs and the pending cursor in one txn. On map full the
 * txn is aborted, the map grown and the group retried. */
/* Commit latency into the histogram, and the chain position the commit
 * reached (writer thread; read by the metrics endpoint). */
static void observe_commit(agg *a, int64_t ns) {
  double sec = (double)ns / 1e9;
  size_t b = 0;
  while (b < AGG_COMMIT_BUCKETS - 1 && sec > agg_commit_bounds[b]) b++;
  atomic_fetch_add(&a->m.commit_hist[b], 1);
  atomic_fetch_add(&a->m.commit_count, 1);
  atomic_fetch_add(&a->m.commit_sum_ns, (uint_fast64_t)(ns > 0 ? ns : 0));
  sto_chain_head h;
  if (sto_chain_head_get(a->env, &h) == CAIRN_OK) atomic_store(&a->m.chain_position, h.position);
}

static void commit_group(agg *a, agg_queue *group, agg_slots *slots, bool have_cursor,
                         uint64_t cursor) {
  bool any = have_cursor;
  for (size_t i = 0; i < group->n && !any; i++) any = slots->v[i].ok;
  if (!any) return;
  for (;;) {
    sto_wtxn *t = NULL;
    cairn_err e = sto_wtxn_begin(a->env, &t);
    const char *what = "beginning a write txn";
    int64_t now = cairn_time_now_ns();
    size_t i = 0;
    for (agg_job *j = group->head; j && e == CAIRN_OK; j = j->next, i++) {
      if (!slots->v[i].ok) continue;
      sto_ingest_meta meta = {j->conn->instance_id, j->conn->identity, j->conn->node, now};
      e = sto_wtxn_put_items(t, &meta, slots->v[i].items, slots->v[i].n, &j->stored, &j->dups);
      what = "storing records";
    }
    if (e == CAIRN_OK && have_cursor) {
      e = sto_wtxn_cursor_set(t, "kafka", cursor);
      what = "setting the kafka cursor";
    }
    if (e == CAIRN_OK) {
      int64_t t0 = cairn_time_mono_ns();
      e = sto_wtxn_commit(t);
      t = NULL;
      what = "committing";
      if (e == CAIRN_OK) observe_commit(a, cairn_time_mono_ns() - t0);
    }
    if (e == CAIRN_OK) {
      if (have_cursor) atomic_store(&a->m.kafka_cursor, cursor);
      return;
    }
    sto_wtxn_abort(t);
    if (e == CAIRN_E_MAPFULL) {
      cairn_err g = sto_grow(a->env);
      if (g == CAIRN_OK) {
        sto_stats st = {0};
        if (sto_stats_get(a->env, &st) == CAIRN_OK)
          cairn_log_info(AGG_COMP, "storage map grown to %" PRIu64 " bytes (%s)", st.map_size,
                         a->cfg.data_dir);
        continue;
      }
      e = CAIRN_E_MAPFULL;
    }
    if (e == CAIRN_E_MAPFULL || e == CAIRN_E_NOSPC) {
      log_storage_full(a, e);
      group_retry(a, group, slots, e, "storage full");
    } else {
      cairn_log_error(AGG_COMP, "storage error %s in %s: %s; batches are answered RETRY",
                      what, a->cfg.data_dir, cairn_err_name(e));
      group_retry(a, group, slots, e, "storage error");
    }
    return;
  }
}

static void account_group(agg *a, agg_queue *group, const agg_slots *slots) {
  size_t i = 0;
  for (agg_job *j = group->head; j; j = j->next, i++) {
    if (!slots->v[i].ok) continue;
    atomic_fetch_add(&a->m.batches, 1);
    atomic_fetch_add(&a->m.records_stored, j->stored);
    atomic_fetch_add(&a->m.records_duplicate, j->dups);
  }
}

/* Sign a checkpoint of the chain head when it moved (signer.c). A failure
 * is logged and retried at the next interval: records stay stored, only the
 * signed coverage lags (cairn-query verify reports the unsigned tail). */
static void sign_checkpoint(agg *a, bool at_shutdown) {
  uint64_t pos = 0;
  cairn_err e = agg__signer_checkpoint(a->signer, a->env, &pos);
  if (e != CAIRN_OK)
    cairn_log_error(AGG_COMP,
                    "signing a chain checkpoint in %s failed: %s; records stay stored but "
                    "unsigned until the next checkpoint",
                    a->cfg.data_dir, cairn_err_name(e));
  else if (pos && at_shutdown)
    cairn_log_info(AGG_COMP, "signed the chain checkpoint at position %" PRIu64 " at shutdown",
                   pos);
  else if (pos)
    cairn_log_debug(AGG_COMP, "signed the chain checkpoint at position %" PRIu64, pos);
}

/* Wait on w->cv until work arrives or the next checkpoint is due (w->mu held). */
static void writer_wait(agg *a) {
  agg_writer *w = &a->writer;
  while (!w->in.head && !w->cursor_pending && !w->stopping) {
    if (!a->signer) {
      pthread_cond_wait(&w->cv, &w->mu);
      continue;
    }
    int64_t now = cairn_time_mono_ns();
    if (now >= w->next_sign_ns) return;
    struct timespec ts = {.tv_sec = (time_t)(w->next_sign_ns / 1000000000LL),
                          .tv_nsec = (long)(w->next_sign_ns % 1000000000LL)};
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
  }
}

static void *writer_main(void *arg) {
  agg *a = arg;
  agg_writer *w = &a->writer;
  pb_codec *codec = pb_codec_new(0);
  cairn_arena arena;
  cairn_arena_init(&arena, 1u << 20);
  agg_slots slots = {0};
  size_t max_group = a->cfg.group_commit ? (size_t)a->cfg.group_commit : 64;
  int64_t last_stats = 0;
  w->next_sign_ns = cairn_time_mono_ns() + a->cfg.sign_interval_ns;
  if (!codec) cairn_log_error(AGG_COMP, "writer: out of memory creating the codec; batches are answered RETRY");
  for (;;) {
    agg_queue group = {0};
    bool have_cursor = false;
    uint64_t cursor = 0;
    pthread_mutex_lock(&w->mu);
    writer_wait(a);
    if (!w->in.head && !w->cursor_pending && w->stopping) {
      pthread_mutex_unlock(&w->mu);
      break;
    }
    while (group.n < max_group && w->in.head) agg__queue_push(&group, agg__queue_pop(&w->in));
    if (w->cursor_pending) {
      have_cursor = true;
      cursor = w->cursor_value;
      w->cursor_pending = false;
    }
    pthread_mutex_unlock(&w->mu);

    /* without a codec or slots nothing is decoded: the cursor alone is committed */
    agg_queue none = {0}, *decoded = &none;
    if (codec && slots_reserve(&slots, group.n)) {
      decode_group(a, &group, codec, &arena, &slots);
      decoded = &group;
    } else {
      for (agg_job *j = group.head; j; j = j->next)
        job_fail(j, CAIRN__ACK_STATUS__ACK_RETRY, CAIRN_E_NOMEM, "aggregator out of memory");
    }
    commit_group(a, decoded, &slots, have_cursor, cursor);
    account_group(a, decoded, &slots);
    bool stored_any = false;
    size_t i = 0;
    for (agg_job *j = decoded->head; j; j = j->next, i++)
      stored_any |= slots.v[i].ok && j->stored > 0;
    slots_end_group(&slots);
    cairn_arena_reset(&arena);
    complete(a, &group);
    if (stored_any && a->kafka) agg__kafka_notify(a->kafka);
    int64_t now = cairn_time_mono_ns();
    if (a->signer && now >= w->next_sign_ns) {
      sign_checkpoint(a, false);
      w->next_sign_ns = now + a->cfg.sign_interval_ns;
    }
    agg__retention_step(a); /* --retention: bounded prune txns (retention.c) */
    sto_stats st;
    if (now - last_stats >= AGG_STATS_INTERVAL_NS && sto_stats_get(a->env, &st) == CAIRN_OK) {
      atomic_store(&a->m.last_seq, st.last_seq);
      atomic_store(&a->m.map_size, st.map_size);
      atomic_store(&a->m.map_used, st.map_used);
      last_stats = now;
    }
  }
  if (a->signer) sign_checkpoint(a, true); /* the queue is drained: sign the final head */
  slots_fini(&slots);
  cairn_arena_fini(&arena);
  pb_codec_free(codec);
  return NULL;
}

cairn_err agg__writer_start(agg *a) {
  agg_writer *w = &a->writer;
  if (pthread_create(&w->thread, NULL, writer_main, a) != 0) return CAIRN_E_NOMEM;
  w->started = true;
  return CAIRN_OK;
}

void agg__writer_stop(agg *a) {
  agg_writer *w = &a->writer;
  if (!w->started) return;
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  w->started = false;
}

void agg__writer_fini(agg *a) {
  agg_writer *w = &a->writer;
  agg_job *j;
  while ((j = agg__queue_pop(&w->in)) != NULL) agg__job_free(j);
  while ((j = agg__queue_pop(&w->done)) != NULL) agg__job_free(j);
  pthread_mutex_destroy(&w->done_mu);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  w->mu_init = false;
}
