/* collector/collector.c: the runtime glue on one libuv loop: tracked files
 * (tail -> parser -> open batch), closing batches (size, count, delay),
 * encoding them off the loop, applying checkpoints for the acked prefix of
 * the batch queue, the memory budget, periodic checkpoint commits, signals,
 * idle exit and the bounded shutdown.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "collector/internal.h"
#include "common/log.h"
#include "common/timeparse.h"

#define TICK_MS 100u
#define CKPT_MS 1000u

static void close_batch(col_collector *c);
static void encode_next(col_collector *c);
static void begin_close(col_collector *c);
static void on_batch_timer(uv_timer_t *h);
static uint64_t unencoded(const col_collector *c);

/* ---------------- records and the memory budget ---------------- */

static void set_paused(col_collector *c, bool paused) {
  if (c->paused == paused) return;
  c->paused = paused;
  if (paused) {
    /* the first pause is news; later ones are the normal rhythm of a backlog */
    cairn_log(c->stats.pauses++ ? CAIRN_LOG_DEBUG : CAIRN_LOG_INFO, "collector",
                   "memory budget reached (%llu unacked bytes, --memory-budget %llu; %llu "
                   "batches waiting to be compressed): pausing reads until the aggregator acks",
                   (unsigned long long)c->unacked_raw, (unsigned long long)c->cfg->memory_budget,
                   (unsigned long long)unencoded(c));
  }
  for (col_file *f = c->files; f; f = f->next) {
    if (!f->tail || !f->started) continue;
    if (paused || c->stopping) {
      col__tail_pause(f->tail);
    } else {
      col__tail_resume(f->tail);
    }
  }
}

/* Batches closed but not yet encoded hold their records uncompressed (about
 * 2.5x their raw bytes with the protobuf structs); the one encoder is slower
 * than reading a backlog, so without a bound they pile up and the process
 * uses ~3x --memory-budget. Reading also pauses while more than
 * MAX_UNENCODED wait; the files keep the data. Batches are encoded in queue
 * order and ids ascend along the queue, so the count is a difference of ids
 * (an empty batch freed at close leaves a gap: the count errs high). */
#define MAX_UNENCODED 2u

static uint64_t unencoded(const col_collector *c) {
  if (!c->q_tail || c->q_tail->state != COL_BATCH_ENCODING) return 0;
  if (!c->encoding || !c->encoding_batch) return c->q_len;
  return c->q_tail->id - c->encoding_batch->id + 1;
}

static void check_budget(col_collector *c) {
  uint64_t unenc = unencoded(c);
  if (c->unacked_raw >= c->cfg->memory_budget || unenc > MAX_UNENCODED) {
    set_paused(c, true);
  } else if (c->unacked_raw < c->cfg->memory_budget / 4 * 3 && unenc <= 1 && !c->stopping) {
    /* resume at 3/4 of the budget so reads are not toggled on every ack */
    set_paused(c, false);
  }
  col__spool_pump(c);
}

void col__fatal(col_collector *c, cairn_err err, const char *what) {
  cairn_log_error("collector", "%s: %s; shutting down", what, cairn_err_str(err));
  if (c->result == CAIRN_OK) c->result = err;
  col_collector_stop(c);
}

void col__on_rec(const col_rec *r, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  if (!c->open) {
    c->open = col__batch_new(++c->next_batch_id);
    if (!c->open) {
      col__fatal(c, CAIRN_E_NOMEM, "allocating a batch");
      return;
    }
    c->open->redact = c->cfg->redact;
    uint64_t ms = (uint64_t)(c->cfg->batch_max_delay / 1000000);
    uv_timer_start(&c->batch_timer, on_batch_timer, ms ? ms : 1, 0);
  }
  col_rec_src src = {c->cfg->node, f->path, &f->meta, f->input->format, f->stream_id};
  uint64_t before = c->open->raw_bytes;
  cairn_err err = col__batch_add(c->open, &src, r);
  if (err != CAIRN_OK) {
    col__fatal(c, err, "adding a record to the batch");
    return;
  }
  c->unacked_raw += c->open->raw_bytes - before;
  c->stats.records++;
  if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED) c->stats.parse_unparsed++;
  if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED) c->stats.records_truncated++;
  if (r->audit_lost) {
    c->stats.audit_gaps++;
    c->stats.audit_lost += r->audit_lost;
    cairn_log_warn("collector", "%s line %llu: %.*s", col__file_name(f),
                   (unsigned long long)r->first_line, (int)r->msg_len, (const char *)r->msg);
  }
  if (c->in_stats && f->input) {
    col_input_stats *is = &c->in_stats[f->input - c->cfg->in];
    is->records++;
    if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED) is->parse_unparsed++;
    if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED) is->records_truncated++;
  }
  f->emitted = true;
}

void col__note_progress(col_file *f) {
  col_collector *c = f->col;
  if (f->emitted && c->open) {
    /* records of one line always land in one batch: the close waits until here */
    uint64_t safe = col_parser_safe_offset(f->parser, col__tail_offset(f->tail));
    if (col__batch_note_file(c->open, f, f->stream_id, safe) != CAIRN_OK) {
      col__fatal(c, CAIRN_E_NOMEM, "tracking batch offsets");
      return;
    }
    if (col__batch_full(c->open, c->cfg->batch_max_records, c->cfg->batch_max_bytes)) close_batch(c);
  }
  check_budget(c);
}

/* ---------------- batches ---------------- */

static void on_batch_timer(uv_timer_t *h) { close_batch(h->data); }

static void close_batch(col_collector *c) {
  col_batch *b = c->open;
  if (!b) return;
  uv_timer_stop(&c->batch_timer);
  c->open = NULL;
  if (b->n == 0) {
    c->unacked_raw -= b->raw_bytes;
    col__batch_free(b);
    return;
  }
  b->state = COL_BATCH_ENCODING;
  if (c->q_tail) {
    c->q_tail->next = b;
  } else {
    c->q_head = b;
  }
  c->q_tail = b;
  c->q_len++;
  encode_next(c);
}

/* Threadpool: protobuf + zstd. The batch is closed, so nothing on the loop
 * touches it, and the encoder is used by one job at a time. (A 1 MiB batch
 * costs a few ms here; too long to do on the loop.) */
static void encode_work(uv_work_t *req) {
  col_collector *c = req->data;
  col_batch *b = c->encoding_batch;
  b->encode_err = col__batch_encode_pack(b, c->pack);
}

static void encode_after(uv_work_t *req, int status) {
  col_collector *c = req->data;
  col_batch *b = c->encoding_batch;
  c->encoding = false;
  c->encoding_batch = NULL;
  if (status != 0 || b->encode_err != CAIRN_OK) {
    cairn_log_error("collector", "encoding batch %llu (%zu records) failed: %s; retrying",
                    (unsigned long long)b->id, b->n,
                    status ? uv_strerror(status) : cairn_err_str(b->encode_err));
    return; /* still ENCODING: the tick retries */
  }
  b->state = COL_BATCH_READY;
  if (c->ship) col__ship_kick(c->ship);
  encode_next(c);
  check_budget(c); /* reads paused for the encode backlog resume here */
}

static void encode_next(col_collector *c) {
  if (c->encoding) return;
  for (col_batch *b = c->q_head; b; b = b->next) {
    if (b->state != COL_BATCH_ENCODING) continue;
    c->encoding_batch = b;
    c->encode_req.data = c;
    if (uv_queue_work(&c->loop, &c->encode_req, encode_work, encode_after) == 0) c->encoding = true;
    return;
  }
}

/* Pop the ACKED prefix of the queue (acked, or safe in the spool) and
 * apply its checkpoints. */
static void retire_head(col_collector *c) {
  while (c->q_head && c->q_head->state == COL_BATCH_ACKED) {
    col_batch *h = c->q_head;
    c->q_head = h->next;
    if (!c->q_head) c->q_tail = NULL;
    c->q_len--;
    for (size_t i = 0; i < h->n_files; i++) {
      col_file *f = h->files[i].f;
      /* an offset of a generation that was truncated since is not this file's any more */
      if (h->files[i].file_stream != f->stream_id || f->regen) continue;
      col_ckpt_entry e = {.dev = f->dev, .ino = f->ino, .offset = h->files[i].safe_offset,
                          .file_stream = h->files[i].file_stream, .btime = f->btime,
                          .fp_len = (uint32_t)f->fp_len, .path = (char *)col__file_name(f)};
      memcpy(e.fp, f->fp, f->fp_len);
      if (col__ckpt_put(c->ck, &e) != CAIRN_OK) {
        cairn_log_error("collector", "out of memory recording the checkpoint of %s; it will be "
                        "re-read from an older offset after a restart", f->path);
      }
    }
    c->unacked_raw -= h->raw_bytes;
    col__batch_free(h);
  }
  check_budget(c);
}

void col__batch_acked(col_collector *c, col_batch *b) {
  b->state = COL_BATCH_ACKED;
  c->stats.batches_acked++;
  c->stats.records_acked += b->n;
  c->last_data_ns = cairn_time_mono_ns();
  c->last_ack_ns = c->last_data_ns;
  retire_head(c);
}

/* ---------------- the spool (--spool-dir) ---------------- */

#define SPOOL_JOB_MAX 16u /* batches per append (one fdatasync) */

/* Threadpool: write the batches and fdatasync (5-20 ms per fsync here: too
 * long for the loop). The batches are SPOOLING: nothing on the loop touches
 * their payloads meanwhile. */
static void spool_work(uv_work_t *req) {
  col_collector *c = req->data;
  int64_t t0 = cairn_time_mono_ns();
  c->spool_err = col__spool_append(c->spool, c->spool_items, c->spool_n, c->spool_errbuf,
                                   sizeof(c->spool_errbuf));
  c->spool_job_ns = cairn_time_mono_ns() - t0;
}

static void spool_after(uv_work_t *req, int status) {
  col_collector *c = req->data;
  c->spooling = false;
  if (status != 0 || c->spool_err != CAIRN_OK) {
    for (size_t i = 0; i < c->spool_n; i++) c->spool_jobs[i]->state = COL_BATCH_READY;
    c->spool_retry_ns = cairn_time_mono_ns() + 1000000000LL;
    cairn_log_limited(&c->log_limit, "spool write", CAIRN_LOG_ERROR, "collector",
                      "cannot append %zu batches to the spool in %s: %s; they stay in memory "
                      "(reading pauses at --memory-budget) and the spool is tried again in 1s",
                      c->spool_n, c->cfg->spool_dir,
                      status ? uv_strerror(status) : c->spool_errbuf);
    c->spool_n = 0;
    if (c->ship) col__ship_kick(c->ship);
    check_budget(c);
    return;
  }
  col__spool_publish(c->spool, c->spool_n);
  cairn_log(CAIRN_LOG_DEBUG, "collector", "spooled %zu batches in %.1f ms (write + fdatasync)",
            c->spool_n, (double)c->spool_job_ns / 1e6);
  /* fsynced: the spool, not the log file, holds these lines now */
  for (size_t i = 0; i < c->spool_n; i++) c->spool_jobs[i]->state = COL_BATCH_ACKED;
  c->spool_n = 0;
  c->last_data_ns = cairn_time_mono_ns();
  retire_head(c); /* also pumps again through check_budget */
  if (c->ship) col__ship_kick(c->ship);
}

/* Log (once per interval) and count that the limit was reached. */
static void spool_full(col_collector *c, uint64_t need) {
  if (!c->spool_at_limit) {
    c->spool_at_limit = true;
    c->spool_full_total++;
  }
  col_spool_stats st;
  col__spool_stats(c->spool, &st);
  cairn_log_limited(&c->log_limit, "spool full", CAIRN_LOG_WARN, "collector",
                    "spool %s is full (%llu bytes used, --spool-max-bytes %llu, next batch needs "
                    "%llu): not spooling; reading pauses at --memory-budget until the aggregator "
                    "acks, so the log files are the buffer again (lines the node rotates away "
                    "before then are lost on the node)",
                    c->cfg->spool_dir, (unsigned long long)st.bytes,
                    (unsigned long long)c->cfg->spool_max_bytes, (unsigned long long)need);
}

void col__spool_pump(col_collector *c) {
  if (!c->spool || c->spooling || c->closing || !c->ship) return;
  if (!c->spooling && c->spool_n == 0 && col__spool_empty(c->spool) &&
      col__spool_inflight(c->spool) == 0)
    col__spool_trim(c->spool);
  col_batch *h = c->q_head;
  if (!h || h->state != COL_BATCH_READY || col__ship_mem_inflight(c->ship) > 0) return;
  /* stopping behind a spool still being replayed: the queue could not be
   * sent before the spool anyway, so it joins the spool instead of timing out */
  bool pressure = col__ship_down(c->ship) || c->unacked_raw >= c->cfg->memory_budget / 2 ||
                  (c->stopping && !col__spool_empty(c->spool));
  if (!pressure) return;
  int64_t now = cairn_time_mono_ns();
  if (now < c->spool_retry_ns) return;
  if (c->spool_cap < SPOOL_JOB_MAX) {
    col_batch **j = realloc(c->spool_jobs, SPOOL_JOB_MAX * sizeof(*j));
    if (j) c->spool_jobs = j;
    col_spool_item *it = realloc(c->spool_items, SPOOL_JOB_MAX * sizeof(*it));
    if (it) c->spool_items = it;
    if (!j || !it) return; /* out of memory: backpressure instead */
    c->spool_cap = SPOOL_JOB_MAX;
  }
  uint64_t bytes = 0;
  size_t n = 0;
  for (col_batch *b = h; b && n < SPOOL_JOB_MAX && b->state == COL_BATCH_READY; b = b->next) {
    uint64_t need = col__spool_entry_bytes(b->payload.len);
    if (!col__spool_fits(c->spool, bytes + need)) {
      if (n == 0) {
        spool_full(c, need);
        return;
      }
      break;
    }
    bytes += need;
    c->spool_jobs[n] = b;
    c->spool_items[n] = (col_spool_item){b->payload.ptr, b->payload.len, (uint32_t)b->n,
                                         b->raw_size};
    n++;
  }
  if (c->spool_at_limit) {
    c->spool_at_limit = false;
    cairn_log_info("collector", "spool %s has room again: spooling resumes", c->cfg->spool_dir);
  }
  c->spool_n = n;
  c->spool_req.data = c;
  if (uv_queue_work(&c->loop, &c->spool_req, spool_work, spool_after) != 0) {
    c->spool_n = 0;
    return;
  }
  for (size_t i = 0; i < n; i++) c->spool_jobs[i]->state = COL_BATCH_SPOOLING;
  c->spooling = true;
}

/* ---------------- timers, signals, shutdown ---------------- */

static void on_ckpt_done(col_ckpt *ck, cairn_err err, const char *why, void *ud) {
  col_collector *c = ud;
  if (err == CAIRN_OK) {
    c->stats.ckpt_commits++;
  } else {
    c->stats.ckpt_failures++;
    cairn_log_limited(&c->log_limit, "checkpoint commit", CAIRN_LOG_ERROR, "collector",
                      "committing checkpoints in %s failed: %s (%s); will retry (check free "
                      "space in --state)", c->cfg->state_dir, why, cairn_err_name(err));
  }
}

static void on_ckpt_timer(uv_timer_t *h) {
  col_collector *c = h->data;
  if (c->closing || !col__ckpt_dirty(c->ck) || col__ckpt_busy(c->ck)) return;
  cairn_err err = col__ckpt_flush_start(c->ck, &c->loop, on_ckpt_done, c);
  if (err != CAIRN_OK && err != CAIRN_E_AGAIN) {
    cairn_log_warn("collector", "cannot start the checkpoint commit: %s; retrying in 1s",
                   cairn_err_str(err));
  }
}

static bool all_idle(col_collector *c) {
  if (!c->scanned_once || c->open || c->q_head || c->encoding || c->spooling) return false;
  if (c->spool && !col__spool_empty(c->spool)) return false;
  if (col__ckpt_dirty(c->ck) || col__ckpt_busy(c->ck)) return false;
  for (col_file *f = c->files; f; f = f->next) {
    if (!f->started || !f->tail || !col__tail_idle(f->tail)) return false;
    if (col_parser_audit_pending(f->parser) > 0) return false;
  }
  return true;
}

static void on_tick(uv_timer_t *h) {
  col_collector *c = h->data;
  int64_t now = cairn_time_mono_ns();
  if (c->closing) return;
  if (!c->encoding) encode_next(c); /* retries a failed encode */
  col__spool_pump(c);               /* retries after a spool write error */
  if (c->stopping) {
    if ((!c->q_head && !c->open && !c->encoding && !c->spooling) || now >= c->stop_deadline_ns)
      begin_close(c);
    return;
  }
  if (c->cfg->exit_when_idle && all_idle(c) && now - c->last_data_ns >= c->cfg->idle_grace) {
    cairn_log_info("collector", "every file is read to the end, acked and checkpointed: exiting "
                   "(--exit-when-idle)");
    col_collector_stop(c);
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  col_collector *c = h->data;
  if (c->stopping) {
    cairn_log_warn("collector", "second signal %d: closing now; unacked batches are re-sent after "
                   "the next start", signum);
    c->stop_deadline_ns = 0;
    return;
  }
  cairn_log_info("collector", "signal %d: stopping (waiting up to --shutdown-timeout for acks)", signum);
  col_collector_stop(c);
}

void col_collector_stop(col_collector *c) {
  if (c->stopping) return;
  c->stopping = true;
  c->stop_deadline_ns = cairn_time_mono_ns() + c->cfg->shutdown_timeout;
  col__discover_stop(c);
  for (col_file *f = c->files; f; f = f->next) {
    if (f->tail) col__tail_pause(f->tail);
  }
  close_batch(c);
}

static void on_handle_closed(uv_handle_t *h) {
  col_collector *c = h->data;
  c->open_handles--;
}

static void close_handle(col_collector *c, uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, on_handle_closed);
}

static void on_ship_closed(void *ud) { (void)ud; }

static void begin_close(col_collector *c) {
  if (c->closing) return;
  c->closing = true;
  if (c->q_head) {
    size_t recs = 0;
    for (col_batch *b = c->q_head; b; b = b->next) recs += b->n;
    cairn_log_warn("collector", "shutdown: %zu batches (%zu records) not acked within "
                   "--shutdown-timeout; they are read and sent again after the next start",
                   c->q_len, recs);
    if (c->result == CAIRN_OK) c->result = CAIRN_E_TIMEOUT;
  }
  col__files_close_all(c);
  if (c->ship) col__ship_close(c->ship, on_ship_closed, c);
  col__discover_stop(c);
  col__metrics_close(c);
  close_handle(c, (uv_handle_t *)&c->scan_timer);
  close_handle(c, (uv_handle_t *)&c->kick_timer);
  close_handle(c, (uv_handle_t *)&c->batch_timer);
  close_handle(c, (uv_handle_t *)&c->ckpt_timer);
  close_handle(c, (uv_handle_t *)&c->tick_timer);
  close_handle(c, (uv_handle_t *)&c->sig_int);
  close_handle(c, (uv_handle_t *)&c->sig_term);
}

/* ---------------- lifecycle ---------------- */

cairn_err col_collector_new(const col_config *cfg, col_collector **out, char *errbuf,
                            size_t errlen) {
  *out = NULL;
  col_collector *c = calloc(1, sizeof(*c));
  if (!c) return CAIRN_E_NOMEM;
  c->cfg = cfg;
  cairn_log_limiter_init(&c->log_limit, 0);
  /* libuv writes with write(2): an aggregator or scraper that hung up must
   * not kill us with SIGPIPE (proto/tls.h, proto/http.h caveats) */
  signal(SIGPIPE, SIG_IGN);
  cairn_err err = CAIRN_E_IO;
  c->in_stats = calloc(cfg->n_in ? cfg->n_in : 1, sizeof(*c->in_stats));
  if (!c->in_stats) {
    free(c);
    return CAIRN_E_NOMEM;
  }
  int rc = uv_loop_init(&c->loop);
  if (rc != 0) {
    snprintf(errbuf, errlen, "uv_loop_init: %s", uv_strerror(rc));
    goto out_free;
  }
  err = col__ckpt_open(cfg->state_dir, &c->ck, errbuf, errlen);
  if (err != CAIRN_OK) goto out_loop;
  pb_tls_config tc;
  col__tls_config(cfg, &tc);
  err = pb_tls_ctx_new(&tc, &c->tls, errbuf, errlen);
  if (err != CAIRN_OK) goto out_ckpt;
  c->pack = pb_pack_new(1);
  if (!c->pack) {
    err = CAIRN_E_NOMEM;
    snprintf(errbuf, errlen, "out of memory creating the zstd codec");
    goto out_tls;
  }
  if (cfg->spool_dir && *cfg->spool_dir) {
    err = col__spool_open(cfg->spool_dir, cfg->spool_max_bytes, &c->spool, errbuf, errlen);
    if (err != CAIRN_OK) goto out_codec;
  }
  *out = c;
  return CAIRN_OK;

out_codec:
  pb_pack_free(c->pack);
out_tls:
  pb_tls_ctx_free(c->tls);
out_ckpt:
  col__ckpt_close(c->ck);
out_loop:
  uv_loop_close(&c->loop);
out_free:
  free(c->in_stats);
  free(c);
  return err;
}

const char *col_collector_instance_id(const col_collector *c) {
  return col__ckpt_instance_id(c->ck);
}

static void init_timer(col_collector *c, uv_timer_t *t) {
  uv_timer_init(&c->loop, t);
  t->data = c;
  c->open_handles++;
}

static void walk_report(uv_handle_t *h, void *arg) {
  (void)arg;
  cairn_log_error("collector", "handle still open at exit: %s", uv_handle_type_name(h->type));
}

cairn_err col_collector_run(col_collector *c) {
  const col_config *cfg = c->cfg;
  char eb[512] = "";
  c->last_data_ns = cairn_time_mono_ns();
  cairn_log_info("collector", "starting: node %s, instance %s, %zu inputs, state %s", cfg->node,
                 col__ckpt_instance_id(c->ck), cfg->n_in, cfg->state_dir);
  if (c->spool) {
    col_spool_stats st;
    col__spool_stats(c->spool, &st);
    cairn_log_info("collector", "spool %s: %llu batches (%llu bytes) waiting, sent first once an "
                   "aggregator is reachable; --spool-max-bytes %llu", cfg->spool_dir,
                   (unsigned long long)st.batches, (unsigned long long)st.bytes,
                   (unsigned long long)cfg->spool_max_bytes);
  }
  init_timer(c, &c->scan_timer);
  init_timer(c, &c->kick_timer);
  init_timer(c, &c->batch_timer);
  c->batch_timer.data = c;
  init_timer(c, &c->ckpt_timer);
  init_timer(c, &c->tick_timer);
  uv_signal_init(&c->loop, &c->sig_int);
  uv_signal_init(&c->loop, &c->sig_term);
  c->sig_int.data = c->sig_term.data = c;
  c->open_handles += 2;
  uv_signal_start(&c->sig_int, on_signal, SIGINT);
  uv_signal_start(&c->sig_term, on_signal, SIGTERM);
  uv_timer_start(&c->ckpt_timer, on_ckpt_timer, CKPT_MS, CKPT_MS);
  uv_timer_start(&c->tick_timer, on_tick, TICK_MS, TICK_MS);

  cairn_err err = col__metrics_start(c, eb, sizeof(eb));
  if (err == CAIRN_OK) err = col__ship_new(c, &c->ship, eb, sizeof(eb));
  if (err == CAIRN_OK) err = col__discover_start(c);
  if (err != CAIRN_OK) {
    cairn_log_error("collector", "cannot start: %s %s", cairn_err_str(err), eb);
    c->result = err;
    c->stopping = true;
    begin_close(c);
  }
  uv_run(&c->loop, UV_RUN_DEFAULT);

  /* the loop has stopped: drop what was never acked, then the final commit */
  if (c->open) {
    col__batch_free(c->open);
    c->open = NULL;
  }
  while (c->q_head) {
    col_batch *b = c->q_head;
    c->q_head = b->next;
    col__batch_free(b);
  }
  c->q_tail = NULL;
  c->q_len = 0;
  if (col__ckpt_flush_sync(c->ck, eb, sizeof(eb)) != CAIRN_OK) {
    cairn_log_error("collector", "final checkpoint commit in %s failed: %s; the last acked data "
                    "will be sent again after a restart (the aggregator dedupes it)",
                    cfg->state_dir, eb);
  }
  col__ship_free(c->ship);
  c->ship = NULL;
  int rc = uv_loop_close(&c->loop);
  if (rc != 0) {
    uv_walk(&c->loop, walk_report, NULL);
    cairn_log_error("collector", "event loop did not close cleanly: %s", uv_strerror(rc));
  }
  cairn_log_info("collector", "stopped: %llu lines read, %llu records acked, %llu reconnects",
                 (unsigned long long)c->stats.lines_read, (unsigned long long)c->stats.records_acked,
                 (unsigned long long)c->stats.reconnects);
  c->loop_closed = rc == 0;
  return c->result;
}

void col_collector_free(col_collector *c) {
  if (!c) return;
  if (!c->loop_closed) {
    /* never run: nothing was started on the loop */
    uv_loop_close(&c->loop);
  }
  free(c->watches);
  free(c->known);
  free(c->bad);
  free(c->in_stats);
  pb_pack_free(c->pack);
  pb_tls_ctx_free(c->tls);
  col__ckpt_close(c->ck);
  col__spool_close(c->spool);
  free(c->spool_jobs);
  free(c->spool_items);
  free(c);
}
