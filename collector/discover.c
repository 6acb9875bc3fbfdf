/* collector/discover.c: find the files to tail. Every --rescan-interval a job
 * on the threadpool runs glob(3) over each --input pattern and stat(2)s each
 * match (symlinks followed: identity is the target's (dev, ino)); the loop
 * then opens files it does not track yet and marks tracked files that no
 * pattern matches any more as vanished (they are drained to EOF, then closed).
 */
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collector/internal.h"
#include "common/log.h"

typedef struct scan_job {
  uv_work_t req;
  col_collector *c;
  col_scan_hit *hits; /* owned array */
  size_t n_hits, cap_hits;
  char err[512]; /* first glob error, or "" */
  bool oom;
} scan_job;

static void scan_job_free(scan_job *j) {
  for (size_t i = 0; i < j->n_hits; i++) free(j->hits[i].path);
  free(j->hits);
  free(j);
}

static bool hit_push(scan_job *j, size_t input, const char *path, const struct stat *st) {
  for (size_t i = 0; i < j->n_hits; i++) {
    if (j->hits[i].dev == (uint64_t)st->st_dev && j->hits[i].ino == (uint64_t)st->st_ino) {
      return true; /* same file through another pattern or link: first one wins */
    }
  }
  if (j->n_hits == j->cap_hits) {
    size_t nc = j->cap_hits ? j->cap_hits * 2 : 64;
    col_scan_hit *nh = realloc(j->hits, nc * sizeof(*nh));
    if (!nh) return false;
    j->hits = nh;
    j->cap_hits = nc;
  }
  char *p = strdup(path);
  if (!p) return false;
  j->hits[j->n_hits++] = (col_scan_hit){input, p, (uint64_t)st->st_dev, (uint64_t)st->st_ino};
  return true;
}

/* Threadpool: glob + stat. Reads only the immutable config. */
static void scan_work(uv_work_t *req) {
  scan_job *j = req->data;
  const col_config *cfg = j->c->cfg;
  for (size_t i = 0; i < cfg->n_in && !j->oom; i++) {
    glob_t g;
    memset(&g, 0, sizeof(g));
    int rc = glob(cfg->in[i].glob, GLOB_NOSORT, NULL, &g);
    if (rc == GLOB_NOSPACE) {
      j->oom = true;
    } else if (rc == GLOB_ABORTED && !j->err[0]) {
      snprintf(j->err, sizeof(j->err), "--input %s: a directory could not be read (check permissions)",
               cfg->in[i].spec);
    }
    for (size_t k = 0; rc == 0 && k < g.gl_pathc && !j->oom; k++) {
      struct stat st;
      if (stat(g.gl_pathv[k], &st) != 0 || !S_ISREG(st.st_mode)) continue; /* dangling link, dir */
      if (!hit_push(j, i, g.gl_pathv[k], &st)) j->oom = true;
    }
    globfree(&g);
  }
}

static col_file *find_file(col_collector *c, uint64_t dev, uint64_t ino) {
  for (col_file *f = c->files; f; f = f->next) {
    if (f->dev == dev && f->ino == ino && !f->closing) return f;
  }
  return NULL;
}

static void scan_after(uv_work_t *req, int status) {
  scan_job *j = req->data;
  col_collector *c = j->c;
  c->scan_running = false;
  if (status != 0 || !c->discover_on) {
    scan_job_free(j);
    return;
  }
  if (j->oom) {
    cairn_log_error("collector", "file discovery ran out of memory; keeping the current file set");
    scan_job_free(j);
    return;
  }
  if (j->err[0]) cairn_log_warn("collector", "%s", j->err);
  uint64_t gen = ++c->scan_gen;
  for (size_t i = 0; i < j->n_hits; i++) {
    col_scan_hit *h = &j->hits[i];
    col_file *f = find_file(c, h->dev, h->ino);
    if (!f) {
      cairn_err err = col__file_open(c, &c->cfg->in[h->input], h->path, h->dev, h->ino, &f);
      if (err != CAIRN_OK) {
        cairn_log_error("collector", "cannot follow %s: %s; will retry at the next scan", h->path,
                        cairn_err_str(err));
        continue;
      }
    }
    f->scan_gen = gen;
    if (f->vanished) f->vanished = false; /* renamed back or re-matched */
  }
  for (col_file *f = c->files, *next; f; f = next) {
    next = f->next;
    if (f->scan_gen != gen && !f->vanished && !f->closing) col__file_vanished(f);
  }
  c->scanned_once = true;
  scan_job_free(j);
}

static void on_scan_timer(uv_timer_t *h) {
  col_collector *c = h->data;
  if (c->scan_running || !c->discover_on) return;
  scan_job *j = calloc(1, sizeof(*j));
  if (!j) return; /* next tick */
  j->c = c;
  j->req.data = j;
  if (uv_queue_work(&c->loop, &j->req, scan_work, scan_after) != 0) {
    scan_job_free(j);
    return;
  }
  c->scan_running = true;
}

cairn_err col__discover_start(col_collector *c) {
  uint64_t ms = (uint64_t)(c->cfg->rescan_interval / 1000000);
  if (ms == 0) ms = 1;
  c->discover_on = true;
  c->scan_timer.data = c;
  if (uv_timer_start(&c->scan_timer, on_scan_timer, 0, ms) != 0) return CAIRN_E_IO;
  return CAIRN_OK;
}

void col__discover_stop(col_collector *c) {
  c->discover_on = false;
  uv_timer_stop(&c->scan_timer);
}
