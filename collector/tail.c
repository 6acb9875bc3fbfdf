/* collector/tail.c: follow one file with libuv's threadpool fs calls: one
 * request in flight per file (open, fstat, read of up to 256 KiB), split on
 * '\n', hold an incomplete last line until its newline arrives. Growth,
 * truncation and deletion are found by fstat after EOF and on a poll timer.
 * Knows nothing of formats, batches or checkpoints: it hands lines to on_line.
 * uv_fs_* calls with a callback fail synchronously only on invalid arguments
 * (never passed here), so their return values are not checked.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "collector/internal.h"

typedef enum tail_step {
  STEP_NONE = 0,
  STEP_OPEN,
  STEP_STAT_OPEN, /* fstat right after open */
  STEP_FP_OPEN,   /* fingerprint read after open */
  STEP_READ,
  STEP_STAT,      /* growth/truncation check */
  STEP_FP_TRUNC,  /* fingerprint read after a truncation */
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

  col_tail_info info;
  uint64_t pos;      /* next byte to read */
  uint64_t line_off; /* offset of the first byte of the current (incomplete) line */
  uint64_t line_no;  /* lines delivered since reading started */
  cairn_buf part;    /* bytes of the incomplete line kept so far (<= max_line) */
  uint8_t *rbuf;     /* read buffer while a read is in flight (owned) */
  size_t rlen;

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
bool col__tail_idle(const col_tail *t) { return t->at_eof && t->step == STEP_NONE; }

static void report_error(col_tail *t, int uv_code, const char *what) {
  t->at_eof = true; /* nothing more will come */
  if (t->cbs.on_error) {
    cairn_err e = uv_code == UV_ENOENT ? CAIRN_E_NOTFOUND
                  : uv_code == UV_EACCES || uv_code == UV_EPERM ? CAIRN_E_PERM
                  : uv_code == UV_ENOMEM                      ? CAIRN_E_NOMEM
                                                              : CAIRN_E_IO;
    t->cbs.on_error(t, e, what, uv_code, t->ud);
  }
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

/* Deliver the complete lines in buf[0..n) read at file offset base. */
static void split_lines(col_tail *t, const uint8_t *buf, size_t n, uint64_t base) {
  size_t i = 0;
  while (i < n && !t->closing) {
    const uint8_t *nl = memchr(buf + i, '\n', n - i);
    if (!nl) break;
    size_t seg = (size_t)(nl - (buf + i));
    const uint8_t *line = buf + i;
    size_t len = seg;
    if (t->line_off < base + i) {
      /* the line began in an earlier read: join it with what part kept */
      size_t room = t->max_line > t->part.len ? t->max_line - t->part.len : 0;
      size_t take = seg < room ? seg : room;
      if (take && cairn_buf_append(&t->part, buf + i, take) != CAIRN_OK) {
        take = 0; /* out of memory: the line is delivered shortened */
      }
      line = t->part.ptr;
      len = t->part.len;
    } else if (len > t->max_line) {
      len = t->max_line;
    }
    t->line_no++;
    uint64_t off = t->line_off;
    t->line_off = base + i + seg + 1;
    t->cbs.on_line(t, line ? line : (const uint8_t *)"", len, off, t->line_no, t->ud);
    cairn_buf_reset(&t->part);
    i += seg + 1;
  }
  if (i < n && !t->closing) {
    size_t rest = n - i;
    size_t room = t->max_line > t->part.len ? t->max_line - t->part.len : 0;
    size_t take = rest < room ? rest : room;
    if (take && cairn_buf_append(&t->part, buf + i, take) != CAIRN_OK) take = 0;
  }
}

static void arm_poll(col_tail *t) {
  if (t->timer_open && !t->closing) uv_timer_start(&t->timer, on_poll, t->poll_ms, 0);
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
    if (!t->closing) {
      t->step = STEP_STAT_OPEN;
      uv_fs_fstat(t->loop, &t->req, t->fd, on_fs);
    }
    break;
  case STEP_STAT_OPEN:
  case STEP_STAT: {
    uv_stat_t st = req->statbuf;
    uv_fs_req_cleanup(req);
    if (res < 0) {
      report_error(t, (int)res, "fstat");
      break;
    }
    t->info.dev = st.st_dev;
    t->info.ino = st.st_ino;
    t->info.size = st.st_size;
    t->info.nlink = st.st_nlink;
    if (t->closing) break;
    if (step == STEP_STAT_OPEN) {
      start_fp_read(t, STEP_FP_OPEN);
    } else if (st.st_size < t->pos) {
      start_fp_read(t, STEP_FP_TRUNC);
    } else if (st.st_size > t->pos) {
      t->at_eof = false;
      t->eof_reported = false;
      tail_next(t);
    } else {
      t->at_eof = true;
      bool first = !t->eof_reported, gone = st.st_nlink == 0;
      t->eof_reported = true;
      if (t->cbs.on_eof) t->cbs.on_eof(t, first, gone, t->ud);
      arm_poll(t);
    }
    break;
  }
  case STEP_FP_OPEN:
  case STEP_FP_TRUNC:
    uv_fs_req_cleanup(req);
    if (res < 0) {
      free(t->rbuf);
      t->rbuf = NULL;
      report_error(t, (int)res, "fingerprint read");
      break;
    }
    t->info.fp_len = (size_t)res;
    memcpy(t->info.fp, t->rbuf, (size_t)res);
    free(t->rbuf);
    t->rbuf = NULL;
    if (t->closing) break;
    if (step == STEP_FP_OPEN) {
      t->cbs.on_open(t, &t->info, t->ud);
    } else {
      cairn_buf_reset(&t->part);
      t->pos = t->line_off = 0;
      t->line_no = 0;
      t->at_eof = t->eof_reported = false;
      t->cbs.on_truncate(t, &t->info, t->ud);
      tail_next(t);
    }
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
    uint64_t base = t->pos;
    t->pos += (uint64_t)res;
    if (res > 0) split_lines(t, buf, (size_t)res, base);
    free(buf);
    if (t->closing) break;
    if ((size_t)res == asked) {
      tail_next(t); /* probably more */
    } else {
      t->step = STEP_STAT; /* short read: at EOF now, check for truncation/deletion */
      uv_fs_fstat(t->loop, &t->req, t->fd, on_fs);
    }
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

static void on_poll(uv_timer_t *h) {
  col_tail *t = h->data;
  if (t->closing || t->paused || t->step != STEP_NONE || !t->started) return;
  t->step = STEP_STAT;
  uv_fs_fstat(t->loop, &t->req, t->fd, on_fs);
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
  t->req.data = t;
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
  t->timer_open = true;
  t->step = STEP_OPEN;
  int rc = uv_fs_open(loop, &t->req, path, O_RDONLY | O_CLOEXEC, 0, on_fs);
  if (rc < 0) {
    /* nothing in flight: report asynchronously through the poll path is
     * overkill; close the timer and fail synchronously */
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
  if (t->started || t->closing) return;
  t->started = true;
  t->pos = t->line_off = offset;
  t->line_no = 0;
  tail_next(t);
}

void col__tail_pause(col_tail *t) {
  t->paused = true;
  if (t->timer_open) uv_timer_stop(&t->timer);
}

void col__tail_resume(col_tail *t) {
  if (!t->paused) return;
  t->paused = false;
  if (t->closing || !t->started) return;
  if (t->step == STEP_NONE) {
    t->step = STEP_STAT;
    uv_fs_fstat(t->loop, &t->req, t->fd, on_fs);
  }
}

static void on_timer_closed(uv_handle_t *h) {
  col_tail *t = h->data;
  t->timer_open = false;
  maybe_finish_close(t);
}

static void maybe_finish_close(col_tail *t) {
  if (t->in_cb || t->step != STEP_NONE) return; /* a request is in flight: its callback resumes */
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
  free(t->path);
  free(t);
}

void col__tail_close(col_tail *t) {
  if (t->closing) return;
  t->closing = true;
  if (t->timer_open) uv_timer_stop(&t->timer);
  maybe_finish_close(t);
}
