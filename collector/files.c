/* collector/files.c: the life of one followed file: identity when its
 * fingerprint is complete (checkpoint resume, --start-position, a new
 * generation after truncation, a rotated file decided by its fingerprint),
 * lines into the parser, the end of a generation (copytruncate orphans whose
 * unread tail is taken from the copy), and closing rotated, moved or deleted
 * files once they are drained and idle for --rotate-wait.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/internal.h"
#include "common/log.h"
#include "common/timeparse.h"

void col__file_ref(col_file *f) { f->refs++; }

void col__file_unref(col_file *f) {
  if (--f->refs > 0) return;
  /* a deleted file can never be re-read: forget its checkpoint */
  if (f->gone) col__ckpt_del(f->col->ck, f->dev, f->ino);
  col_parser_free(f->parser);
  free(f->path);
  free(f->cur_path);
  free(f);
}

const char *col__file_name(const col_file *f) { return f->cur_path ? f->cur_path : f->path; }

static void set_cur_path(col_file *f, const char *p) {
  if (!p || strcmp(p, f->path) == 0) {
    free(f->cur_path);
    f->cur_path = NULL;
    return;
  }
  if (f->cur_path && strcmp(f->cur_path, p) == 0) return;
  char *np = strdup(p);
  if (!np) return; /* keep the old name in logs */
  free(f->cur_path);
  f->cur_path = np;
}

/* Directory part of path into out. */
static void dir_of(const char *path, char *out, size_t len) {
  snprintf(out, len, "%s", path);
  char *slash = strrchr(out, '/');
  if (slash == out) {
    out[1] = '\0';
  } else if (slash) {
    *slash = '\0';
  } else {
    snprintf(out, len, ".");
  }
}

/* ---------------- orphans (copytruncate) ---------------- */

static void orphan_free(col_orphan *o) {
  col_parser_free(o->parser);
  free(o->dir);
  free(o->path);
  memset(o, 0, sizeof(*o));
}

static void orphan_remove(col_collector *c, size_t i) {
  orphan_free(&c->orphans[i]);
  c->orphans[i] = c->orphans[--c->n_orphans];
  memset(&c->orphans[c->n_orphans], 0, sizeof(c->orphans[0]));
}

/* f's generation ended at old_offset: keep what continuing it needs; takes f->parser. */
static void orphan_add(col_file *f, uint64_t old_offset) {
  col_collector *c = f->col;
  if (c->n_orphans == COL_MAX_ORPHANS) orphan_remove(c, 0); /* the oldest goes */
  col_orphan *o = &c->orphans[c->n_orphans];
  char dir[4096];
  dir_of(col__file_name(f), dir, sizeof(dir));
  o->dir = strdup(dir);
  o->path = strdup(f->path);
  if (!o->dir || !o->path) {
    orphan_free(o);
    return;
  }
  o->input = f->input;
  o->parser = f->parser;
  f->parser = NULL;
  o->meta = f->meta;
  o->stream_id = f->stream_id;
  o->offset = old_offset;
  memcpy(o->fp, f->fp, f->fp_len);
  o->fp_len = f->fp_len;
  o->since_ns = cairn_time_mono_ns();
  c->n_orphans++;
  c->orphan_gen++;
}

void col__orphans_expire(col_collector *c, int64_t now_ns) {
  for (size_t i = c->n_orphans; i-- > 0;) {
    if (now_ns - c->orphans[i].since_ns < COL_ORPHAN_TTL_NS) continue;
    cairn_log_debug("collector", "no copy of truncated %s appeared: its generation ends at %llu",
                    c->orphans[i].path, (unsigned long long)c->orphans[i].offset);
    orphan_remove(c, i);
  }
}

/* ---------------- identity ---------------- */

static bool same_btime(uint64_t a, uint64_t b) { return a == 0 || b == 0 || a == b; }

/* Remember where a new file starts, so a crash before its first ack cannot
 * move the start (matters for --start-position tail). */
static void note_start(col_file *f, uint64_t offset) {
  col_ckpt_entry e = {.dev = f->dev, .ino = f->ino, .offset = offset, .file_stream = f->stream_id,
                      .btime = f->btime, .fp_len = (uint32_t)f->fp_len, .path = (char *)col__file_name(f)};
  memcpy(e.fp, f->fp, f->fp_len);
  if (col__ckpt_put(f->col->ck, &e) != CAIRN_OK) {
    cairn_log_warn("collector", "out of memory noting the start of %s", col__file_name(f));
  }
}

/* A rotated name opened without a usable checkpoint: continue a truncated
 * generation from its copy, wait (a copy of a file being read), or read it
 * from the start (it was renamed before a scan saw its live name).
 * Returns false when f was closed. */
static bool decide_probe(col_file *f, const col_tail_info *info, uint64_t *start) {
  col_collector *c = f->col;
  char dir[4096];
  dir_of(col__file_name(f), dir, sizeof(dir));
  for (size_t i = 0; i < c->n_orphans; i++) {
    col_orphan *o = &c->orphans[i];
    if (strcmp(o->dir, dir) != 0 || !col__fp_match(o->fp, o->fp_len, info->fp, info->fp_len)) continue;
    if (info->size <= o->offset) {
      /* the copy holds nothing we had not read */
      orphan_remove(c, i);
      col__known_set(c, f->dev, f->ino, info->size, COL_KNOWN_IGNORED);
      col__file_close(f);
      return false;
    }
    col_parser_free(f->parser);
    f->parser = o->parser;
    o->parser = NULL;
    f->stream_id = o->stream_id;
    f->meta = o->meta;
    char *p = strdup(o->path);
    if (p) {
      char *copy_name = f->path; /* logs keep naming the copy */
      f->path = p;
      set_cur_path(f, copy_name);
      free(copy_name);
    }
    *start = o->offset;
    c->stats.copies_resumed++;
    cairn_log_info("collector", "%s is the copy of %s made before it was truncated (copytruncate): "
                   "reading the %llu bytes not yet read from it as stream %016llx",
                   col__file_name(f), f->path, (unsigned long long)(info->size - o->offset),
                   (unsigned long long)f->stream_id);
    orphan_remove(c, i);
    return true;
  }
  for (col_file *g = c->files; g; g = g->next) {
    if (g == f || !g->started || g->closing) continue;
    if (col__fp_match(g->fp, g->fp_len, info->fp, info->fp_len)) {
      col__known_set(c, f->dev, f->ino, info->size, COL_KNOWN_DEFERRED);
      col__file_close(f);
      return false;
    }
  }
  f->stream_id = col__stream_id(f->dev, f->ino, f->btime, info->fp, info->fp_len, 0);
  *start = 0;
  c->stats.missed_rotated++;
  cairn_log_info("collector", "%s appeared under a rotated name with content never seen under a live "
                 "name (written and rotated between two looks): reading it from the start as "
                 "stream %016llx",
                 col__file_name(f), (unsigned long long)f->stream_id);
  return true;
}

static void file_on_open(col_tail *t, const col_tail_info *info, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  f->dev = info->dev;
  f->ino = info->ino;
  f->btime = info->btime;
  memcpy(f->fp, info->fp, info->fp_len);
  f->fp_len = info->fp_len;
  uint64_t start = 0;
  const char *how = "from the start";
  const col_ckpt_entry *e = col__ckpt_get(c->ck, info->dev, info->ino);
  bool same = e && col__fp_match(e->fp, e->fp_len, info->fp, info->fp_len) &&
              same_btime(e->btime, info->btime);
  if (f->regen) {
    f->regen = false;
    f->stream_id = col__stream_id(f->dev, f->ino, f->btime, info->fp, info->fp_len, f->prev_stream);
    how = "from the start (new generation)";
    note_start(f, 0);
  } else if (same && e->offset <= info->size) {
    start = e->offset;
    f->stream_id = e->file_stream;
    how = "from its checkpoint";
  } else if (same) {
    f->stream_id = col__stream_id(f->dev, f->ino, f->btime, info->fp, info->fp_len, e->file_stream);
    cairn_log_warn("collector", "%s is shorter (%llu bytes) than its checkpoint (%llu): it was "
                   "truncated while the collector was down; reading it again from the start",
                   col__file_name(f), (unsigned long long)info->size, (unsigned long long)e->offset);
    note_start(f, 0);
  } else if (f->kind == COL_OPEN_PROBE || f->kind == COL_OPEN_RESUME) {
    if (!decide_probe(f, info, &start)) return;
    how = start ? "from the copy point" : "from the start (missed rotation)";
    note_start(f, start);
  } else {
    /* never seen, or a new file at a reused inode (fingerprint or birth time differ) */
    f->stream_id = col__stream_id(f->dev, f->ino, f->btime, info->fp, info->fp_len,
                                  e ? e->file_stream : 0);
    if (f->kind == COL_OPEN_INITIAL && c->cfg->start_at_tail) {
      start = info->size;
      how = "from its end (--start-position tail)";
    }
    note_start(f, start);
  }
  cairn_log_info("collector", "tailing %s (%s) %s, offset %llu of %llu, stream %016llx",
                 col__file_name(f), f->input->spec, how, (unsigned long long)start,
                 (unsigned long long)info->size, (unsigned long long)f->stream_id);
  f->started = true;
  f->at_eof = false;
  c->stats.files_opened++;
  if (c->paused || c->stopping) col__tail_pause(t);
  col__tail_start(t, start);
}

static void file_on_truncate(col_tail *t, const col_tail_info *info, uint64_t old_offset, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  col_parser *np = NULL;
  if (col_parser_new(f->input->format, c->cfg->max_record_size, &np) != CAIRN_OK) {
    col__fatal(c, CAIRN_E_NOMEM, "allocating a parser");
    return;
  }
  c->stats.truncations++;
  cairn_log_warn("collector", "%s was truncated or rewritten (now %llu bytes, we had read %llu): "
                 "reading the new content from offset 0 as a new stream; if a rotated copy of it "
                 "appears (copytruncate), its unread end is taken from there",
                 col__file_name(f), (unsigned long long)info->size, (unsigned long long)old_offset);
  if (f->started) {
    orphan_add(f, old_offset); /* takes f->parser */
    col_parser_free(f->parser);
  } else {
    col_parser_free(f->parser);
  }
  f->parser = np;
  f->prev_stream = f->stream_id;
  f->regen = true;
  f->started = false;
  col__rescan_soon(c);
}

static void file_flush(col_file *f, bool all) {
  if (!f->tail || !f->parser || col_parser_audit_pending(f->parser) == 0) return;
  f->emitted = false;
  cairn_err err = col_parser_flush(f->parser, all, col__on_rec, f);
  if (err != CAIRN_OK) {
    col__fatal(f->col, err, "flushing pending events");
    return;
  }
  col__note_progress(f);
}

static void file_on_line(col_tail *t, const uint8_t *line, size_t len, size_t full_len,
                         uint64_t off, uint64_t line_no, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  col__count_line(f, full_len);
  c->last_data_ns = cairn_time_mono_ns();
  if (full_len > c->cfg->max_record_size) {
    c->stats.long_lines++;
    if (++f->big_lines <= 3) {
      cairn_log_warn("collector", "%s: line %llu at offset %llu is %zu bytes, over --max-record-size "
                     "%llu: it is stored truncated and flagged%s", col__file_name(f),
                     (unsigned long long)line_no, (unsigned long long)off, full_len,
                     (unsigned long long)c->cfg->max_record_size,
                     f->big_lines == 3 ? " (further ones in this file are not logged)" : "");
    }
  }
  f->emitted = false;
  cairn_err err = col_parser_line(f->parser, line, len, off, line_no, col__on_rec, f);
  if (err != CAIRN_OK) {
    col__fatal(c, err, "parsing");
    return;
  }
  col__note_progress(f);
}

void col__file_close(col_file *f) {
  if (f->closing || !f->tail) return;
  f->closing = true;
  col__tail_close(f->tail);
}

static void file_on_eof(col_tail *t, bool first, bool gone, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  int64_t now = cairn_time_mono_ns();
  if (first) {
    f->eof_since_ns = now;
    file_flush(f, false); /* events that only wait for a possible EOE */
  } else if (now - f->eof_since_ns >= COL_EVENT_TIMEOUT_NS) {
    file_flush(f, true); /* the auparse event timeout */
  }
  f->at_eof = true;
  if (gone && !f->gone) {
    f->gone = true;
    cairn_log_info("collector", "%s was deleted: reading it to the end while it is still open",
                   col__file_name(f));
  }
  if (!(f->gone || f->vanished || f->rotated)) return;
  if (now - f->eof_since_ns < c->cfg->rotate_wait && !c->stopping) return;
  file_flush(f, true); /* nothing more can complete them */
  cairn_log_info("collector", "%s %s, read to the end and idle for --rotate-wait: closing it",
                 col__file_name(f), f->gone ? "was deleted" : f->rotated ? "was rotated"
                                                                         : "no longer matches any --input");
  if (f->rotated && !f->gone) {
    col__known_set(c, f->dev, f->ino, col__tail_info(t)->size, COL_KNOWN_RETIRED);
  }
  col__file_close(f);
}

static void file_on_error(col_tail *t, cairn_err err, const char *what, int uv_code, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  c->stats.bad_inputs++;
  if (err == CAIRN_E_INVAL) {
    cairn_log_warn("collector", "%s is %s: skipping it (only regular files are read; narrow the "
                   "--input glob or add an --exclude)", col__file_name(f), what);
  } else {
    cairn_log_warn("collector", "cannot follow %s: %s failed: %s (%s); retrying in %llds "
                   "(check permissions of the file and its directory)",
                   col__file_name(f), what, uv_strerror(uv_code), cairn_err_name(err),
                   (long long)(COL_RETRY_NS / 1000000000LL));
  }
  col__known_set(c, f->dev, f->ino, 0, COL_KNOWN_FAILED);
  col__file_close(f);
}

static void file_on_nowatch(col_tail *t, int uv_code, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  if (f->watched) {
    f->watched = false;
    c->n_file_watches--;
  }
  if (c->file_watch_logged) return;
  c->file_watch_logged = true;
  cairn_log_warn("collector", "cannot watch %s for writes: %s; it and any other file that cannot "
                 "be watched are read every --read-interval (%lld ms) instead (raise "
                 "fs.inotify.max_user_watches)", col__file_name(f), uv_strerror(uv_code),
                 (long long)(c->cfg->read_interval / 1000000));
}

static void file_on_close(col_tail *t, void *ud) {
  col_file *f = ud;
  col_collector *c = f->col;
  f->tail = NULL;
  if (f->watched) {
    f->watched = false;
    c->n_file_watches--;
  }
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
    .on_nowatch = file_on_nowatch,
};

cairn_err col__file_open(col_collector *c, const col_input *in, const char *path, uint64_t dev,
                         uint64_t ino, col_open_kind kind, col_file **out) {
  col_file *f = calloc(1, sizeof(*f));
  if (!f) return CAIRN_E_NOMEM;
  f->col = c;
  f->input = in;
  f->dev = dev;
  f->ino = ino;
  f->kind = kind;
  f->rotated = kind == COL_OPEN_PROBE || kind == COL_OPEN_RESUME;
  f->refs = 1;
  f->eof_since_ns = cairn_time_mono_ns();
  f->path = strdup(path);
  if (!f->path) goto out_free;
  cairn_err err = col_parser_new(in->format, c->cfg->max_record_size, &f->parser);
  if (err != CAIRN_OK) goto out_free_path;
  col_meta_from_path(path, &f->meta);
  col_tail_opts o = {
      .poll_ms = (uint64_t)(c->cfg->read_interval / 1000000),
      .max_line = c->cfg->max_record_size + (64u << 10),
      .watch = c->cfg->read_on_change && c->n_file_watches < COL_MAX_FILE_WATCHES,
  };
  if (c->cfg->read_on_change && !o.watch && !c->file_watch_logged) {
    c->file_watch_logged = true;
    cairn_log_warn("collector", "following more than %u files: %s and further files are read "
                   "every --read-interval (%lld ms), not on change", COL_MAX_FILE_WATCHES, path,
                   (long long)(c->cfg->read_interval / 1000000));
  }
  f->watched = o.watch; /* counted before the open: on_nowatch may uncount it */
  if (f->watched) c->n_file_watches++;
  err = col__tail_open(&c->loop, path, &o, &file_cbs, f, &f->tail);
  if (err != CAIRN_OK) {
    if (f->watched) c->n_file_watches--;
    goto out_free_parser;
  }
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

void col__file_rotated(col_file *f, const char *new_path) {
  set_cur_path(f, new_path);
  if (f->rotated) return;
  f->rotated = true;
  f->vanished = false;
  f->col->stats.rotations++;
  f->eof_since_ns = cairn_time_mono_ns();
  cairn_log_info("collector", "%s was rotated to %s: reading it to the end", f->path, new_path);
  if (f->tail) col__tail_kick(f->tail);
}

void col__file_vanished(col_file *f) {
  if (f->vanished) return;
  f->vanished = true;
  f->eof_since_ns = cairn_time_mono_ns();
  /* where did it go? the descriptor knows (Linux /proc) */
  int fd = f->tail ? col__tail_fd(f->tail) : -1;
  if (fd >= 0) {
    char link[64], target[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n > 0) {
      target[n] = '\0';
      set_cur_path(f, target);
    }
  }
  cairn_log_info("collector", "%s no longer matches any --input (now %s): reading it to the end",
                 f->path, col__file_name(f));
  if (f->tail) col__tail_kick(f->tail);
}

void col__files_close_all(col_collector *c) {
  for (col_file *f = c->files; f; f = f->next) col__file_close(f);
  while (c->n_orphans) orphan_remove(c, c->n_orphans - 1);
}
