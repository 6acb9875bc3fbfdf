/* collector/tail.c: follow one file with libuv's threadpool fs calls: one
 * request in flight per file (open, fstat, read of up to 256 KiB), split on
 * '\n', hold an incomplete last line until its newline arrives. Growth,
 * truncation and deletion are found by fstat after EOF and on a poll timer.
 * The bytes of each read are delivered only once a fingerprint re-read that
 * follows it still finds the file's first bytes: a copytruncate plus a
 * refill past our offset between two looks (or between identifying a file
 * and its first read) would otherwise hand lines of the next generation to
 * the old one; on a mismatch they are dropped and the generation ends where
 * the delivered lines ended (the copy has the rest). A look after a write
 * event that finds the size unchanged compares the first bytes too (refilled
 * to exactly our offset; on the poll alone that case waits for the next
 * write). With
 * opts.watch, an inotify watch on the open descriptor's inode (through
 * /proc/self/fd, so renames and symlinks do not matter) moves the next look
 * to ~5 ms after a write (TAIL_KICK_MS), at most one look per TAIL_GAP_MS
 * however often the writer writes; the poll stays as the fallback (NFS,
 * missed events, the inotify watch limit).
 * Knows nothing of formats, batches or checkpoints: it hands lines to on_line.
 * uv_fs_* calls with a callback fail synchronously only on invalid arguments
 * (never passed here), so their return values are not checked.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collector/internal.h"

/* After a write event the next look comes TAIL_KICK_MS later (coalescing a
 * writer's burst), but no sooner than TAIL_GAP_MS after the previous look
 * began: a quiet file's new line is read within ~5 ms, a busy file is read
 * at most ~1000/TAIL_GAP_MS times a second. Each look costs 2-4 threadpool
 * round trips (fstat, fingerprint, read, fstat), which at one per write
 * would cost more CPU than the lines themselves. */
#define TAIL_KICK_MS 5u
#define TAIL_GAP_MS 50u

typedef enum tail_step {
  STEP_NONE = 0,
  STEP_OPEN,
  STEP_STAT_ID,   /* fstat before (re)reading the fingerprint */
  STEP_FP_ID,     /* fingerprint read to identify the file (open, after truncation) */
  STEP_READ,
  STEP_VERIFY,    /* fingerprint re-read after a read: are the bytes read still ours? */
  STEP_STAT,      /* growth/truncation check */
  STEP_FP_SAME,   /* written to, yet the size is unchanged: still our first bytes? */
  STEP_CLOSE,
} tail_step;

struct col_tail {
  uv_loop_t *loop;
  col_tail_cbs cbs;
  void *ud;
  char *path;       /* owned */
  uv_file fd;       /* -1 until opened */
  uv_fs_t req;      /* the one request in flight */
  tail_step step;   /* STEP_NONE: nothing in flight */
  uv_timer_t timer; /* growth poll */
  bool timer_open;
  uint64_t poll_ms;
  size_t max_line, chunk;
  uv_fs_event_t watch; /* inotify on the open file's inode (opts.watch) */
  bool want_watch, watch_open;
  bool notified;     /* a write event came while a look was in flight: look again soon */
  bool changed;      /* a write event came since the last look began */
  bool look_changed; /* ... for the look in flight: at an unchanged size, check the fingerprint */
  uint64_t look_ms;  /* uv_now() when the last look (fstat after idling) began */

  col_tail_info info;
  uint64_t id_size;  /* size at the last identification attempt */
  uint64_t pos;      /* next byte to read */
  uint64_t line_off; /* offset of the first byte of the current (incomplete) line */
  uint64_t line_no;  /* lines delivered since reading started */
  uint64_t part_full; /* bytes of the incomplete line seen so far (kept or skipped) */
  cairn_buf part;    /* bytes of the incomplete line kept so far (<= max_line) */
  uint8_t *rbuf;     /* read buffer while a read is in flight (owned) */
  size_t rlen;
  uint8_t *held;     /* bytes read, undelivered until STEP_VERIFY confirms them (owned) */
  size_t held_len, held_asked;

  bool identified; /* on_open delivered for the current generation */
  bool started, paused, closing, at_eof, eof_reported;
  bool in_cb; /* a callback of ours is running: defer the close */
};

static void tail_next(col_tail *t);
static void maybe_finish_close(col_tail *t);
static void on_fs(uv_fs_t *req);
static void on_poll(uv_timer_t *h);

const char *col__tail_path(const col_tail *t) { return t->path; }
uint64_t col__tail_offset(const col_tail *t) { return t->line_off; }
size_t col__tail_partial(const col_tail *t) { return (size_t)(t->pos - t->line_off); }
int col__tail_fd(const col_tail *t) { return t->fd; }
const col_tail_info *col__tail_info(const col_tail *t) { return &t->info; }
bool col__tail_idle(const col_tail *t) {
  return t->step == STEP_NONE && (t->at_eof || (!t->identified && t->fd >= 0));
}

static void report(col_tail *t, cairn_err e, const char *what, int uv_code) {
  t->at_eof = true; /* nothing more will come */
  if (t->cbs.on_error) t->cbs.on_error(t, e, what, uv_code, t->ud);
}

static void report_error(col_tail *t, int uv_code, const char *what) {
  cairn_err e = uv_code == UV_ENOENT ? CAIRN_E_NOTFOUND
                : uv_code == UV_EACCES || uv_code == UV_EPERM ? CAIRN_E_PERM
                : uv_code == UV_ENOMEM                      ? CAIRN_E_NOMEM
                                                            : CAIRN_E_IO;
  report(t, e, what, uv_code);
}

/* Length of the complete fingerprint in buf[0..n): up to and including the
 * first '\n', or COL_FP_MAX bytes; 0 while neither is there. */
static size_t fp_complete(const uint8_t *buf, size_t n) {
  const uint8_t *nl = memchr(buf, '\n', n);
  if (nl) return (size_t)(nl - buf) + 1;
  return n >= COL_FP_MAX ? COL_FP_MAX : 0;
}

static void start_fp_read(col_tail *t, tail_step step) {
  t->rbuf = malloc(COL_FP_MAX);
  if (!t->rbuf) {
    report_error(t, UV_ENOMEM, "fingerprint buffer");
    return;
  }
  t->rlen = COL_FP_MAX;
  uv_buf_t b = uv_buf_init((char *)t->rbuf, COL_FP_MAX);
  t->step = step;
  uv_fs_read(t->loop, &t->req, t->fd, &b, 1, 0, on_fs);
}

static void deliver(col_tail *t, const uint8_t *line, size_t len, size_t full, uint64_t end) {
  t->line_no++;
  uint64_t off = t->line_off;
  t->line_off = end;
  t->cbs.on_line(t, line ? line : (const uint8_t *)"", len, full, off, t->line_no, t->ud);
  cairn_buf_reset(&t->part);
  t->part_full = 0;
}

/* Keep up to max_line bytes of an incomplete line; count all of them. */
static void keep_partial(col_tail *t, const uint8_t *p, size_t n) {
  size_t room = t->max_line > t->part.len ? t->max_line - t->part.len : 0;
  size_t take = n < room ? n : room;
  if (take && cairn_buf_append(&t->part, p, take) != CAIRN_OK) {
    /* out of memory: the line is delivered shortened (and flagged by its full length) */
  }
  t->part_full += n;
}

/* Deliver the complete lines in buf[0..n) read at file offset base. */
static void split_lines(col_tail *t, const uint8_t *buf, size_t n, uint64_t base) {
  size_t i = 0;
  while (i < n && !t->closing) {
    const uint8_t *nl = memchr(buf + i, '\n', n - i);
    if (!nl) break;
    size_t seg = (size_t)(nl - (buf + i));
    uint64_t end = base + i + seg + 1;
    if (t->line_off < base + i) {
      /* the line began in an earlier read: join it with what part kept */
      keep_partial(t, buf + i, seg);
      deliver(t, t->part.ptr, t->part.len, (size_t)t->part_full, end);
    } else {
      deliver(t, buf + i, seg < t->max_line ? seg : t->max_line, seg, end);
    }
    i += seg + 1;
  }
  if (i < n && !t->closing) keep_partial(t, buf + i, n - i);
}

/* ms until the look a write event asks for (see TAIL_GAP_MS). */
static uint64_t kick_delay(const col_tail *t) {
  uint64_t since = uv_now(t->loop) - t->look_ms;
  uint64_t ms = since < TAIL_GAP_MS ? TAIL_GAP_MS - since : 0;
  return ms > TAIL_KICK_MS ? ms : TAIL_KICK_MS;
}

static void arm_poll(col_tail *t) {
  uint64_t ms = t->notified ? kick_delay(t) : t->poll_ms;
  t->notified = false;
  if (t->timer_open && !t->closing) uv_timer_start(&t->timer, on_poll, ms, 0);
}

/* A write (or attribute change: a deletion's nlink) on our inode: look after
 * kick_delay(). Later events before that look, or while one is in flight,
 * only make sure one more look follows. */
static void on_watch(uv_fs_event_t *h, const char *name, int events, int status) {
  col_tail *t = h->data;
  (void)name;
  (void)events;
  if (status < 0 || t->closing || t->paused || !t->timer_open) return;
  t->changed = true;
  if (t->step != STEP_NONE) {
    t->notified = true; /* a look is running: the next idle stretch starts with a quick one */
    return;
  }
  uint64_t ms = kick_delay(t);
  if (uv_is_active((uv_handle_t *)&t->timer) && uv_timer_get_due_in(&t->timer) <= ms) return;
  uv_timer_start(&t->timer, on_poll, ms, 0);
}

static void on_watch_closed(uv_handle_t *h) {
  col_tail *t = h->data;
  t->watch_open = false;
  maybe_finish_close(t);
}

/* Watch the inode behind fd (not the path: it may be renamed or replaced). */
static void start_watch(col_tail *t) {
  if (!t->want_watch || t->closing) return;
  char proc[64];
  snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->fd);
  uv_fs_event_init(t->loop, &t->watch);
  t->watch.data = t;
  t->watch_open = true;
  int rc = uv_fs_event_start(&t->watch, on_watch, proc, 0);
  if (rc != 0) {
    uv_close((uv_handle_t *)&t->watch, on_watch_closed);
    if (t->cbs.on_nowatch) t->cbs.on_nowatch(t, rc, t->ud);
  }
}

static void note_stat(col_tail *t, const uv_stat_t *st) {
  t->info.dev = st->st_dev;
  t->info.ino = st->st_ino;
  t->info.size = st->st_size;
  t->info.nlink = st->st_nlink;
  t->info.btime = (uint64_t)st->st_birthtim.tv_sec * 1000000000ull + (uint64_t)st->st_birthtim.tv_nsec;
}

/* Nothing new: tell the owner (it may close a gone or rotated file) and wait. */
static void idle_here(col_tail *t, bool gone) {
  t->at_eof = true;
  bool first = !t->eof_reported;
  t->eof_reported = true;
  if (t->cbs.on_eof) t->cbs.on_eof(t, first, gone, t->ud);
  arm_poll(t);
}

/* The content was replaced: end the old generation, identify the new one. */
static void new_generation(col_tail *t) {
  uint64_t old = t->line_off;
  cairn_buf_reset(&t->part);
  t->part_full = 0;
  t->pos = t->line_off = 0;
  t->line_no = 0;
  t->at_eof = t->eof_reported = false;
  t->identified = t->started = false;
  t->id_size = 0;
  t->cbs.on_truncate(t, &t->info, old, t->ud);
  if (t->closing) return;
  t->step = STEP_STAT_ID;
  uv_fs_fstat(t->loop, &t->req, t->fd, on_fs);
}

static const char *kind_name(uint64_t mode) {
  if (S_ISDIR(mode)) return "not a regular file: a directory";
  if (S_ISFIFO(mode)) return "not a regular file: a FIFO";
  if (S_ISSOCK(mode)) return "not a regular file: a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "not a regular file: a device";
  return "not a regular file";
}

static void on_stat(col_tail *t, tail_step step, ssize_t res, const uv_stat_t *st) {
  if (res < 0) {
    report_error(t, (int)res, "fstat");
    return;
  }
  if (!S_ISREG(st->st_mode)) {
    report(t, CAIRN_E_INVAL, kind_name(st->st_mode), 0);
    return;
  }
  note_stat(t, st);
  if (t->closing) return;
  if (step == STEP_STAT_ID) {
    if (t->id_size && st->st_size == t->id_size && st->st_nlink > 0) {
      idle_here(t, false); /* still no complete first line */
    } else if (st->st_size == 0) {
      t->id_size = 0;
      idle_here(t, st->st_nlink == 0);
    } else {
      t->id_size = st->st_size;
      start_fp_read(t, STEP_FP_ID);
    }
  } else if (st->st_size < t->pos) {
    new_generation(t);
  } else if (st->st_size > t->pos) {
    t->look_changed = false; /* the events were this growth; a rewrite past pos is caught by
                              * the read's STEP_VERIFY, a later event marks the next look */
    t->at_eof = false;
    t->eof_reported = false;
    tail_next(t);
  } else if (step == STEP_STAT && t->look_changed && t->info.fp_len > 0 && st->st_nlink > 0) {
    /* a write event, but no growth: truncated and refilled to exactly our
     * offset between two looks (or only events for bytes already read) */
    t->look_changed = false;
    start_fp_read(t, STEP_FP_SAME);
  } else {
    idle_here(t, st->st_nlink == 0);
  }
}

static void on_fp(col_tail *t, tail_step step, ssize_t res) {
  uint8_t *buf = t->rbuf;
  t->rbuf = NULL;
  if (res < 0) {
    free(buf);
    report_error(t, (int)res, "fingerprint read");
    return;
  }
  size_t n = (size_t)res;
  if (t->closing) {
    free(buf);
    return;
  }
  if (step == STEP_FP_ID) {
    size_t fl = fp_complete(buf, n);
    if (fl == 0) {
      free(buf);
      idle_here(t, t->info.nlink == 0); /* wait for the first line to complete */
      return;
    }
    memcpy(t->info.fp, buf, fl);
    t->info.fp_len = fl;
    free(buf);
    t->identified = true;
    t->at_eof = t->eof_reported = false;
    t->cbs.on_open(t, &t->info, t->ud);
    return;
  }
  if (step == STEP_FP_SAME) {
    bool same = col__fp_match(t->info.fp, t->info.fp_len, buf, n);
    free(buf);
    if (same) {
      idle_here(t, false);
    } else {
      new_generation(t);
    }
    return;
  }
  /* STEP_VERIFY: the first bytes, read after the data, are still the
   * fingerprint, so no truncation came before that data was read */
  bool same = col__fp_match(t->info.fp, t->info.fp_len, buf, n);
  free(buf);
  uint8_t *data = t->held;
  size_t len = t->held_len, asked = t->held_asked;
  t->held = NULL;
  if (!same) {
    free(data); /* maybe the next generation's bytes: never deliver them as this one's */
    new_generation(t);
    return;
  }
  uint64_t base = t->pos;
  t->pos += (uint64_t)len;
  split_lines(t, data, len, base);
  free(data);
  if (t->closing) return;
  if (len == asked) {
    tail_next(t); /* probably more */
  } else {
    t->step = STEP_STAT; /* short read: at EOF now, check for truncation/deletion */
    uv_fs_fstat(t->loop, &t->req, t->fd, on_fs);
  }
}

static void on_fs(uv_fs_t *req) {
  col_tail *t = req->data;
  tail_step step = t->step;
  ssize_t res = req->result;
  t->step = STEP_NONE;
  t->in_cb = true;
  switch (step) {
  case STEP_OPEN:
    uv_fs_req_cleanup(req);
    if (res < 0) {
      report_error(t, (int)res, "open");
      break;
    }
    t->fd = (uv_file)res;
    start_watch(t);
    if (!t->closing) {
      t->step = STEP_STAT_ID;
      uv_fs_fstat(t->loop, &t->req, t->fd, on_fs);
    }
    break;
  case STEP_STAT_ID:
  case STEP_STAT: {
    uv_stat_t st = req->statbuf;
    uv_fs_req_cleanup(req);
    on_stat(t, step, res, &st);
    break;
  }
  case STEP_FP_ID:
  case STEP_VERIFY:
  case STEP_FP_SAME:
    uv_fs_req_cleanup(req);
    on_fp(t, step, res);
    break;
  case STEP_READ: {
    uv_fs_req_cleanup(req);
    uint8_t *buf = t->rbuf;
    size_t asked = t->rlen;
    t->rbuf = NULL;
    if (res < 0) {
      free(buf);
      report_error(t, (int)res, "read");
      break;
    }
    if (t->closing) {
      free(buf);
      break;
    }
    if (res == 0) {
      free(buf);
      t->step = STEP_STAT; /* at EOF: check for truncation/deletion */
      uv_fs_fstat(t->loop, &t->req, t->fd, on_fs);
      break;
    }
    t->held = buf;
    t->held_len = (size_t)res;
    t->held_asked = asked;
    start_fp_read(t, STEP_VERIFY);
    break;
  }
  case STEP_CLOSE:
    uv_fs_req_cleanup(req);
    t->fd = -1;
    break;
  case STEP_NONE:
    uv_fs_req_cleanup(req);
    break;
  }
  t->in_cb = false;
  if (t->closing) maybe_finish_close(t);
}

/* Issue the next read at pos (unless paused or closing). */
static void tail_next(col_tail *t) {
  if (t->paused || t->closing || !t->started || t->step != STEP_NONE) return;
  size_t len = t->chunk;
  if (t->info.size > t->pos && t->info.size - t->pos < len) {
    /* size the buffer to what fstat promised (+ slack for growth) */
    uint64_t want = t->info.size - t->pos + 4096;
    len = want < len ? (size_t)want : len;
  }
  t->rbuf = malloc(len);
  if (!t->rbuf) {
    arm_poll(t); /* try again later */
    return;
  }
  t->rlen = len;
  uv_buf_t b = uv_buf_init((char *)t->rbuf, (unsigned)len);
  t->step = STEP_READ;
  uv_fs_read(t->loop, &t->req, t->fd, &b, 1, (int64_t)t->pos, on_fs);
}

static void stat_now(col_tail *t) {
  if (t->closing || t->paused || t->step != STEP_NONE || t->fd < 0) return;
  t->notified = false;
  t->look_changed = t->changed;
  t->changed = false;
  t->look_ms = uv_now(t->loop);
  if (!t->identified) {
    t->step = STEP_STAT_ID;
  } else if (t->started) {
    t->step = STEP_STAT;
  } else {
    return; /* identified, waiting for the owner's col__tail_start */
  }
  uv_fs_fstat(t->loop, &t->req, t->fd, on_fs);
}

static void on_poll(uv_timer_t *h) { stat_now(h->data); }

void col__tail_kick(col_tail *t) {
  if (t->timer_open) uv_timer_stop(&t->timer);
  stat_now(t);
  if (t->step == STEP_NONE) arm_poll(t);
}

cairn_err col__tail_open(uv_loop_t *loop, const char *path, const col_tail_opts *o,
                         const col_tail_cbs *cbs, void *ud, col_tail **out) {
  *out = NULL;
  col_tail *t = calloc(1, sizeof(*t));
  if (!t) return CAIRN_E_NOMEM;
  t->path = strdup(path);
  if (!t->path) {
    free(t);
    return CAIRN_E_NOMEM;
  }
  t->loop = loop;
  t->cbs = *cbs;
  t->ud = ud;
  t->fd = -1;
  t->poll_ms = o && o->poll_ms ? o->poll_ms : 250;
  t->max_line = o && o->max_line ? o->max_line : (1u << 20) + (64u << 10);
  t->chunk = o && o->chunk ? o->chunk : COL_READ_CHUNK;
  t->want_watch = o && o->watch;
  t->req.data = t;
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
  t->timer_open = true;
  t->step = STEP_OPEN;
  /* O_NONBLOCK: opening a FIFO put where a log file was must not block */
  int rc = uv_fs_open(loop, &t->req, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0, on_fs);
  if (rc < 0) {
    t->step = STEP_NONE;
    t->closing = true;
    t->cbs.on_close = NULL;
    maybe_finish_close(t);
    return CAIRN_E_IO;
  }
  *out = t;
  return CAIRN_OK;
}

void col__tail_start(col_tail *t, uint64_t offset) {
  if (t->started || t->closing || !t->identified) return;
  t->started = true;
  t->pos = t->line_off = offset;
  t->line_no = 0;
  t->at_eof = t->eof_reported = false;
  tail_next(t);
}

void col__tail_pause(col_tail *t) {
  t->paused = true;
  if (t->timer_open) uv_timer_stop(&t->timer);
}

void col__tail_resume(col_tail *t) {
  if (!t->paused) return;
  t->paused = false;
  if (t->closing) return;
  if (t->step == STEP_NONE) {
    stat_now(t);
    if (t->step == STEP_NONE) arm_poll(t);
  }
}

static void on_timer_closed(uv_handle_t *h) {
  col_tail *t = h->data;
  t->timer_open = false;
  maybe_finish_close(t);
}

static void maybe_finish_close(col_tail *t) {
  if (t->in_cb || t->step != STEP_NONE) return; /* a request is in flight: its callback resumes */
  if (t->watch_open) {
    if (!uv_is_closing((uv_handle_t *)&t->watch)) uv_close((uv_handle_t *)&t->watch, on_watch_closed);
    return;
  }
  if (t->timer_open) {
    if (!uv_is_closing((uv_handle_t *)&t->timer)) uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    return;
  }
  if (t->fd >= 0) {
    t->step = STEP_CLOSE;
    uv_fs_close(t->loop, &t->req, t->fd, on_fs);
    return;
  }
  if (t->cbs.on_close) t->cbs.on_close(t, t->ud);
  cairn_buf_fini(&t->part);
  free(t->rbuf);
  free(t->held);
  free(t->path);
  free(t);
}

void col__tail_close(col_tail *t) {
  if (t->closing) return;
  t->closing = true;
  if (t->timer_open) uv_timer_stop(&t->timer);
  maybe_finish_close(t);
}
