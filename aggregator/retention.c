/* aggregator/retention.c: --retention on the writer thread: deletes records
 * older than the retention from LMDB (storage's sto_prune), never past the
 * "kafka" cursor committed in LMDB when Kafka is configured, so a record
 * leaves the hot store only after Kafka acknowledged it.
 *
 * The one design decision: the step runs on the writer thread between ingest
 * txns (LMDB has one writer), each sto_prune call is one bounded txn, and the
 * step yields as soon as batches are queued, so ingest waits for at most one
 * small prune txn.
 */
#include <inttypes.h>
#include <stdint.h>

#include "aggregator/internal.h"
#include "common/log.h"
#include "common/timeparse.h"

#define AGG_PRUNE_RECORDS 5000u                   /* records per prune txn */
#define AGG_PRUNE_INTERVAL_NS (1000000000LL)      /* step at most every second when idle */
#define AGG_PRUNE_SLICE_NS (200000000LL)          /* stop a step after this long */
#define AGG_PRUNE_LOG_INTERVAL_NS (10LL * 1000000000LL)

void agg__retention_start(agg *a) {
  sto_prune_mark m = {0};
  if (sto_prune_mark_get(a->env, &m) == CAIRN_OK) atomic_store(&a->m.oldest_retained, m.seq + 1);
  if (a->cfg.retention_ns <= 0) return;
  int64_t secs = a->cfg.retention_ns / 1000000000LL;
  if (a->kafka)
    cairn_log_info(AGG_COMP,
                   "retention %" PRId64 "s: records older than that are deleted from %s once "
                   "Kafka acknowledged them (the kafka cursor); pruned up to seq %" PRIu64
                   " so far",
                   secs, a->cfg.data_dir, m.seq);
  else
    cairn_log_warn(AGG_COMP,
                   "retention %" PRId64 "s without --kafka-brokers: records older than that are "
                   "deleted from %s by age alone, and cairn keeps no other copy; set "
                   "--kafka-brokers, or --retention 0s to keep them",
                   secs, a->cfg.data_dir);
}

/* Batches wait for the writer, or it is stopping: give it back. */
static bool writer_wanted(agg *a) {
  agg_writer *w = &a->writer;
  pthread_mutex_lock(&w->mu);
  bool busy = w->in.head != NULL || w->stopping;
  pthread_mutex_unlock(&w->mu);
  return busy;
}

static void log_failure(agg *a, cairn_err e, const sto_prune_result *pr, int64_t now) {
  agg_retention *r = &a->retention;
  if (r->last_log_ns && now - r->last_log_ns < AGG_PRUNE_LOG_INTERVAL_NS) return;
  r->last_log_ns = now;
  if (e == CAIRN_E_CORRUPT)
    cairn_log_error(AGG_COMP,
                    "retention: pruning stopped at seq %" PRIu64 " in %s: the record is missing "
                    "or does not decode (%s), and pruning does not destroy evidence; run "
                    "'cairn-query verify --data %s'",
                    pr->bad_seq, a->cfg.data_dir, cairn_err_name(e), a->cfg.data_dir);
  else
    cairn_log_error(AGG_COMP,
                    "retention: pruning %s failed: %s; records stay stored, retried in 1 s%s",
                    a->cfg.data_dir, cairn_err_name(e),
                    e == CAIRN_E_MAPFULL ? " (raise --max-map-size)" : "");
}

void agg__retention_step(agg *a) {
  if (a->cfg.retention_ns <= 0) return;
  agg_retention *r = &a->retention;
  int64_t start = cairn_time_mono_ns();
  if (!r->more && start < r->next_ns) return;
  r->next_ns = start + AGG_PRUNE_INTERVAL_NS;
  uint64_t bound = UINT64_MAX; /* without Kafka: by age alone */
  if (a->kafka) {
    /* the committed cursor, not the forwarder's in-memory one: after a crash
     * the forwarder restarts from the committed value */
    cairn_err e = sto_cursor_get(a->env, "kafka", &bound);
    if (e != CAIRN_OK) {
      sto_prune_result none = {0};
      log_failure(a, e, &none, start);
      r->more = false;
      return;
    }
  }
  int64_t cutoff = cairn_time_now_ns() - a->cfg.retention_ns;
  for (;;) {
    sto_prune_result pr;
    cairn_err e = sto_prune(a->env, cutoff, bound, AGG_PRUNE_RECORDS, &pr);
    if (e == CAIRN_E_MAPFULL && sto_grow(a->env) == CAIRN_OK) continue;
    if (e != CAIRN_OK) {
      log_failure(a, e, &pr, start);
      r->more = false;
      return;
    }
    r->more = pr.more;
    if (pr.records) {
      atomic_fetch_add(&a->m.pruned_records, pr.records);
      atomic_store(&a->m.oldest_retained, pr.mark.seq + 1);
      r->logged_records += pr.records;
    }
    if (!pr.more || writer_wanted(a) || cairn_time_mono_ns() - start >= AGG_PRUNE_SLICE_NS)
      break;
  }
  int64_t now = cairn_time_mono_ns();
  if (r->logged_records && (!r->last_log_ns || now - r->last_log_ns >= AGG_PRUNE_LOG_INTERVAL_NS)) {
    r->last_log_ns = now;
    cairn_log_info(AGG_COMP,
                   "retention: pruned %" PRIu64 " records from %s; oldest retained seq %" PRIu64
                   "%s",
                   r->logged_records, a->cfg.data_dir,
                   (uint64_t)atomic_load(&a->m.oldest_retained),
                   a->kafka ? " (every pruned record was acknowledged by Kafka)" : "");
    r->logged_records = 0;
  }
}
