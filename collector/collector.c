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

/* ---------------- files ---------------- */

void col__file_ref(col_file *f) { f->refs++; }

void col__file_unref(col_file *f) {
  if (--f->refs > 0) return;
  /* a deleted file can never be re-read: forget its checkpoint */
  if (f->gone) col__ckpt_del(f->col->ck, f->dev, f->ino);
  col_parser_free(f->parser);
  free(f->path);
  free(f);
}

static void set_paused(col_collector *c, bool paused) {
  if (c->paused == paused) return;
  c->paused = paused;
  if (paused) {
    /* the first pause is news; later ones are the normal rhythm of a backlog */
    cairn_log(c->stats.pauses++ ? CAIRN_LOG_DEBUG : CAIRN_LOG_INFO, "collector",
                   "memory budget reached (%llu unacked bytes >= --memory-budget %llu): pausing "
                   "reads until the aggregator acks",
                   (unsigned long long)c->unacked_raw, (unsigned long long)c->cfg->memory_budget);
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

static void check_budget(col_collector *c) {
  if (c->unacked_raw >= c->cfg->memory_budget) {
    set_paused(c, true);
  } else if (c->unacked_raw < c->cfg->memory_budget / 4 * 3 && !c->stopping) {
    /* resume at 3/4 of the budget so reads are not toggled on every ack */
    set_paused(c, false);
  }
}

static void fatal(col_collector *c, cairn_err err, const char *what) {
  cairn_log_error("collector", "%s: %s; shutting down", what, cairn_err_str(err));
  if (c->result == CAIRN_OK) c->result = err;
  col_collector_stop(c);
}

static void file_on_rec(const col_rec *r, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  if (!c->open) {
    c->open = col__batch_new(++c->next_batch_id);
    if (!c->open) {
      fatal(c, CAIRN_E_NOMEM, "allocating a batch");
      return;
    }
    uint64_t ms = (uint64_t)(c->cfg->batch_max_delay / 1000000);
    uv_timer_start(&c->batch_timer, on_batch_timer, ms ? ms : 1, 0);
  }
  col_rec_src src = {c->cfg->node, f->path, &f->meta, f->input->format, f->stream_id};
  uint64_t before = c->open->raw_bytes;
  cairn_err err = col__batch_add(c->open, &src, r);
  if (err != CAIRN_OK) {
    fatal(c, err, "adding a record to the batch");
    return;
  }
  c->unacked_raw += c->open->raw_bytes - before;
  c->stats.records++;
  if (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED) c->stats.parse_unparsed++;
  f->emitted = true;
}

static void file_on_line(col_tail *t, const uint8_t *line, size_t len, uint64_t off,
                         uint64_t line_no, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  c->stats.lines_read++;
  c->last_data_ns = cairn_time_mono_ns();
  f->emitted = false;
  cairn_err err = col_parser_line(f->parser, line, len, off, line_no, file_on_rec, f);
  if (err != CAIRN_OK) {
    fatal(c, err, "parsing");
    return;
  }
  if (f->emitted && c->open) {
    /* records of one line always land in one batch: the close waits until here */
    uint64_t safe = col_parser_safe_offset(f->parser, col__tail_offset(t));
    err = col__batch_note_file(c->open, f, f->stream_id, safe);
    if (err != CAIRN_OK) {
      fatal(c, err, "tracking batch offsets");
      return;
    }
    if (col__batch_full(c->open, c->cfg->batch_max_records, c->cfg->batch_max_bytes)) close_batch(c);
  }
  check_budget(c);
}

/* Emit what the parser still holds (auditd events without an end marker;
 * a no-op for CRI and docker), then note the file's new safe offset. */
static void file_flush(col_file *f, bool all) {
  col_collector *c = f->col;
  if (!f->tail || col_parser_audit_pending(f->parser) == 0) return;
  f->emitted = false;
  cairn_err err = col_parser_flush(f->parser, all, file_on_rec, f);
  if (err != CAIRN_OK) {
    fatal(c, err, "flushing pending events");
    return;
  }
  if (f->emitted && c->open) {
    uint64_t safe = col_parser_safe_offset(f->parser, col__tail_offset(f->tail));
    if (col__batch_note_file(c->open, f, f->stream_id, safe) != CAIRN_OK) {
      fatal(c, CAIRN_E_NOMEM, "tracking batch offsets");
      return;
    }
    if (col__batch_full(c->open, c->cfg->batch_max_records, c->cfg->batch_max_bytes)) close_batch(c);
  }
  check_budget(c);
}

static void file_on_open(col_tail *t, const col_tail_info *info, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  f->dev = info->dev;
  f->ino = info->ino;
  memcpy(f->fp, info->fp, info->fp_len);
  f->fp_len = info->fp_len;
  uint64_t start = 0;
  const col_ckpt_entry *e = col__ckpt_get(c->ck, info->dev, info->ino);
  bool same = e && info->fp_len >= e->fp_len && memcmp(e->fp, info->fp, e->fp_len) == 0;
  if (same && e->offset <= info->size) {
    start = e->offset;
    f->stream_id = e->file_stream;
  } else if (same) {
    /* shrank while we were away: a new generation of the same file */
    f->stream_id = col__stream_id(info->dev, info->ino, info->fp, info->fp_len, e->file_stream);
    cairn_log_warn("collector", "%s is shorter (%llu bytes) than its checkpoint (%llu): it was "
                   "truncated while the collector was down; reading it again from the start",
                   f->path, (unsigned long long)info->size, (unsigned long long)e->offset);
  } else {
    f->stream_id = col__stream_id(info->dev, info->ino, info->fp, info->fp_len, 0);
  }
  cairn_log_info("collector", "tailing %s (%s) from offset %llu of %llu, stream %016llx", f->path,
                 f->input->spec, (unsigned long long)start, (unsigned long long)info->size,
                 (unsigned long long)f->stream_id);
  f->started = true;
  c->stats.files_opened++;
  if (c->paused || c->stopping) col__tail_pause(t);
  col__tail_start(t, start);
}

static void file_on_truncate(col_tail *t, const col_tail_info *info, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  uint64_t old = f->stream_id;
  f->stream_id = col__stream_id(info->dev, info->ino, info->fp, info->fp_len, old);
  memcpy(f->fp, info->fp, info->fp_len);
  f->fp_len = info->fp_len;
  col_parser *np = NULL;
  if (col_parser_new(f->input->format, c->cfg->max_record_size, &np) == CAIRN_OK) {
    col_parser_free(f->parser);
    f->parser = np;
  }
  c->stats.truncations++;
  cairn_log_warn("collector", "%s was truncated (now %llu bytes): reading it again from offset 0 as "
                 "stream %016llx; a partial record pending before the truncation is lost",
                 f->path, (unsigned long long)info->size, (unsigned long long)f->stream_id);
}

static void file_close(col_file *f) {
  if (f->closing || !f->tail) return;
  f->closing = true;
  col__tail_close(f->tail);
}

static void file_on_eof(col_tail *t, bool first, bool gone, void *ud) {
  col_file *f = ud;
  int64_t now = cairn_time_mono_ns();
  if (first) {
    f->eof_since_ns = now;
    file_flush(f, false); /* events that only wait for a possible EOE */
  } else if (now - f->eof_since_ns >= COL_EVENT_TIMEOUT_NS) {
    file_flush(f, true); /* the auparse event timeout */
  }
  f->at_eof = true;
  if (gone) f->gone = true;
  if (f->gone || f->vanished) {
    file_flush(f, true); /* nothing more can complete them */
    cairn_log_info("collector", "%s %s and read to the end: closing it", f->path,
                   f->gone ? "was deleted" : "no longer matches any --input");
    file_close(f);
  }
}

static void file_on_error(col_tail *t, cairn_err err, const char *what, int uv_code, void *ud) {
  col_file *f = ud;
  cairn_log_warn("collector", "cannot follow %s: %s failed: %s (%s); will retry at the next scan "
                 "(check permissions of the file and its directory)",
                 f->path, what, uv_strerror(uv_code), cairn_err_name(err));
  file_close(f);
}

static void file_on_close(col_tail *t, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  f->tail = NULL;
  if (f->prev) {
    f->prev->next = f->next;
  } else {
    c->files = f->next;
  }
  if (f->next) f->next->prev = f->prev;
  c->n_files--;
  c->stats.files_closed++;
  col__file_unref(f);
}

static const col_tail_cbs file_cbs = {
    .on_open = file_on_open,
    .on_line = file_on_line,
    .on_truncate = file_on_truncate,
    .on_eof = file_on_eof,
    .on_error = file_on_error,
    .on_close = file_on_close,
};

cairn_err col__file_open(col_collector *c, const col_input *in, const char *path, uint64_t dev,
                         uint64_t ino, col_file **out) {
  col_file *f = calloc(1, sizeof(*f));
  if (!f) return CAIRN_E_NOMEM;
  f->col = c;
  f->input = in;
  f->dev = dev;
  f->ino = ino;
  f->refs = 1;
  f->path = strdup(path);
  if (!f->path) goto out_free;
  cairn_err err = col_parser_new(in->format, c->cfg->max_record_size, &f->parser);
  if (err != CAIRN_OK) goto out_free_path;
  col_meta_from_path(path, &f->meta);
  col_tail_opts o = {
      .poll_ms = (uint64_t)(c->cfg->read_interval / 1000000),
      .max_line = c->cfg->max_record_size + (64u << 10),
  };
  err = col__tail_open(&c->loop, path, &o, &file_cbs, f, &f->tail);
  if (err != CAIRN_OK) goto out_free_parser;
  f->next = c->files;
  if (c->files) c->files->prev = f;
  c->files = f;
  c->n_files++;
  *out = f;
  return CAIRN_OK;

out_free_parser:
  col_parser_free(f->parser);
out_free_path:
  free(f->path);
out_free:
  free(f);
  return CAIRN_E_NOMEM;
}

void col__file_vanished(col_file *f) {
  f->vanished = true;
  if (f->tail && col__tail_idle(f->tail)) {
    cairn_log_info("collector", "%s no longer matches any --input and was read to the end: closing it",
                   f->path);
    file_close(f);
  }
  /* otherwise it is closed at its next EOF */
}

void col__files_close_all(col_collector *c) {
  for (col_file *f = c->files; f; f = f->next) file_close(f);
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
 * touches it, and the codec is used by one job at a time. (A 1 MiB batch
 * costs a few ms here; too long to do on the loop.) */
static void encode_work(uv_work_t *req) {
  col_collector *c = req->data;
  col_batch *b = c->encoding_batch;
  b->encode_err = col__batch_encode(b, c->codec);
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

void col__batch_acked(col_collector *c, col_batch *b) {
  b->state = COL_BATCH_ACKED;
  c->stats.batches_acked++;
  c->stats.records_acked += b->n;
  c->last_data_ns = cairn_time_mono_ns();
  while (c->q_head && c->q_head->state == COL_BATCH_ACKED) {
    col_batch *h = c->q_head;
    c->q_head = h->next;
    if (!c->q_head) c->q_tail = NULL;
    c->q_len--;
    for (size_t i = 0; i < h->n_files; i++) {
      col_file *f = h->files[i].f;
      col_ckpt_entry e = {.dev = f->dev, .ino = f->ino, .offset = h->files[i].safe_offset,
                          .file_stream = h->files[i].file_stream, .fp_len = (uint32_t)f->fp_len,
                          .path = f->path};
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

/* ---------------- timers, signals, shutdown ---------------- */

static void on_ckpt_done(col_ckpt *ck, cairn_err err, const char *why, void *ud) {
  if (err != CAIRN_OK) {
    cairn_log_error("collector", "committing checkpoints in %s failed: %s (%s); will retry (check "
                    "free space in --state)",
                    ((col_collector *)ud)->cfg->state_dir, why, cairn_err_name(err));
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
  if (!c->scanned_once || c->open || c->q_head || c->encoding) return false;
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
  if (c->stopping) {
    if ((!c->q_head && !c->open && !c->encoding) || now >= c->stop_deadline_ns) begin_close(c);
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
  close_handle(c, (uv_handle_t *)&c->scan_timer);
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
  cairn_err err = CAIRN_E_IO;
  int rc = uv_loop_init(&c->loop);
  if (rc != 0) {
    snprintf(errbuf, errlen, "uv_loop_init: %s", uv_strerror(rc));
    goto out_free;
  }
  err = col__ckpt_open(cfg->state_dir, &c->ck, errbuf, errlen);
  if (err != CAIRN_OK) goto out_loop;
  pb_tls_config tc = {cfg->tls_cert, cfg->tls_key, cfg->tls_ca, false};
  err = pb_tls_ctx_new(&tc, &c->tls, errbuf, errlen);
  if (err != CAIRN_OK) goto out_ckpt;
  c->codec = pb_codec_new(1);
  if (!c->codec) {
    err = CAIRN_E_NOMEM;
    snprintf(errbuf, errlen, "out of memory creating the zstd codec");
    goto out_tls;
  }
  *out = c;
  return CAIRN_OK;

out_tls:
  pb_tls_ctx_free(c->tls);
out_ckpt:
  col__ckpt_close(c->ck);
out_loop:
  uv_loop_close(&c->loop);
out_free:
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
  if (cfg->metrics_listen) {
    cairn_log_warn("collector", "--metrics-listen %s: the metrics endpoint is not implemented yet; "
                   "ignoring", cfg->metrics_listen);
  }
  init_timer(c, &c->scan_timer);
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

  cairn_err err = col__ship_new(c, &c->ship, eb, sizeof(eb));
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
  pb_codec_free(c->codec);
  pb_tls_ctx_free(c->tls);
  col__ckpt_close(c->ck);
  free(c);
}
