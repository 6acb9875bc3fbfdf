/* collector/discover.c: find the files to tail. A scan job on the threadpool
 * runs glob(3) over each --input pattern and over PATTERN.* (rotated names),
 * stat(2)s each match (symlinks followed: identity is the target's
 * (dev, ino)), and lists the directories to watch. Scans run every
 * --rescan-interval and, coalesced, soon after any uv_fs_event on a watched
 * directory (inotify), so new and rotated files are found within ~20 ms where
 * inotify works and within --rescan-interval everywhere else. The loop then
 * decides per match: follow, update a rotated name, or leave alone.
 */
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collector/internal.h"
#include "common/log.h"
#include "common/timeparse.h"

#define KICK_MS 20u        /* coalescing delay after a directory event */
#define MAX_WATCHES 2048u  /* beyond this, the periodic rescan alone finds files */

typedef struct col_watch {
  uv_fs_event_t h;
  col_collector *c;
  char *dir;      /* owned */
  uint64_t gen;   /* last scan that listed it */
} col_watch;

typedef struct col_badpath {
  char *path;       /* owned */
  char why[64];
  uint64_t gen;     /* last scan that reported it */
} col_badpath;

typedef struct scan_job {
  uv_work_t req;
  col_collector *c;
  col_scan_hit *hits; /* owned array */
  size_t n_hits, cap_hits;
  char **dirs;        /* owned: directories to watch */
  size_t n_dirs, cap_dirs;
  col_badpath *bad;   /* owned: matches that are not regular files */
  size_t n_bad, cap_bad;
  char err[512];      /* first glob error, or "" */
  bool oom;
} scan_job;

static void scan_job_free(scan_job *j) {
  for (size_t i = 0; i < j->n_hits; i++) free(j->hits[i].path);
  for (size_t i = 0; i < j->n_dirs; i++) free(j->dirs[i]);
  for (size_t i = 0; i < j->n_bad; i++) free(j->bad[i].path);
  free(j->hits);
  free(j->dirs);
  free(j->bad);
  free(j);
}

static bool grow(void **arr, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return true;
  size_t nc = *cap ? *cap * 2 : 64;
  void *na = realloc(*arr, nc * elem);
  if (!na) return false;
  *arr = na;
  *cap = nc;
  return true;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* kubelet's rotated names: NAME.log.YYYYMMDD-hhmmss */
static bool kubelet_rotated(const char *path) {
  const char *p = strstr(path, ".log.");
  if (!p) return false;
  p += 5;
  if (strlen(p) != 15) return false;
  for (int i = 0; i < 15; i++) {
    if (i == 8 ? p[i] != '-' : (p[i] < '0' || p[i] > '9')) return false;
  }
  return true;
}

static bool excluded(const col_config *cfg, const char *path) {
  for (size_t i = 0; i < cfg->excludes.n; i++) {
    if (fnmatch(cfg->excludes.v[i], path, 0) == 0) return true;
  }
  return false;
}

static bool has_magic(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '*' || s[i] == '?' || s[i] == '[') return true;
  }
  return false;
}

static void add_dir(scan_job *j, const char *dir, size_t len) {
  if (j->oom || len == 0 || len >= PATH_MAX) return;
  if (!grow((void **)&j->dirs, &j->cap_dirs, j->n_dirs, sizeof(char *))) {
    j->oom = true;
    return;
  }
  char *d = strndup(dir, len);
  if (!d) {
    j->oom = true;
    return;
  }
  j->dirs[j->n_dirs++] = d;
}

/* Watch every directory a pattern's matches can appear in: the fixed prefix
 * and each expansion of every wildcard level below it. */
static void add_pattern_dirs(scan_job *j, const char *pattern) {
  const char *last = strrchr(pattern, '/');
  if (!last) return;
  size_t dlen = last == pattern ? 1 : (size_t)(last - pattern);
  if (!has_magic(pattern, dlen)) {
    add_dir(j, pattern, dlen);
    return;
  }
  size_t fixed = 1; /* the deepest directory above the first wildcard ("/" at least) */
  for (size_t i = 1; i < dlen; i++) {
    if (pattern[i] == '/' && !has_magic(pattern, i)) fixed = i;
  }
  add_dir(j, pattern, fixed);
  for (size_t i = fixed + 1; i <= dlen && !j->oom; i++) {
    if (i < dlen && pattern[i] != '/') continue;
    char sub[PATH_MAX];
    snprintf(sub, sizeof(sub), "%.*s", (int)i, pattern);
    glob_t g;
    memset(&g, 0, sizeof(g));
    if (glob(sub, GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g) == 0) {
      for (size_t k = 0; k < g.gl_pathc; k++) add_dir(j, g.gl_pathv[k], strlen(g.gl_pathv[k]));
    }
    globfree(&g);
  }
}

static void add_bad(scan_job *j, const char *path, const char *why) {
  if (!grow((void **)&j->bad, &j->cap_bad, j->n_bad, sizeof(*j->bad))) {
    j->oom = true;
    return;
  }
  col_badpath *b = &j->bad[j->n_bad];
  b->path = strdup(path);
  if (!b->path) {
    j->oom = true;
    return;
  }
  snprintf(b->why, sizeof(b->why), "%s", why);
  j->n_bad++;
}

static const char *kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  return "not a regular file";
}

/* glob one pattern; rotated: every match counts as a rotated name. */
static void scan_pattern(scan_job *j, size_t input, const char *pattern, bool rotated) {
  const col_config *cfg = j->c->cfg;
  glob_t g;
  memset(&g, 0, sizeof(g));
  int rc = glob(pattern, GLOB_NOSORT, NULL, &g);
  if (rc == GLOB_NOSPACE) {
    j->oom = true;
  } else if (rc == GLOB_ABORTED && !j->err[0]) {
    snprintf(j->err, sizeof(j->err), "--input %s: a directory could not be read (check permissions)",
             cfg->in[input].spec);
  }
  for (size_t k = 0; rc == 0 && k < g.gl_pathc && !j->oom; k++) {
    const char *p = g.gl_pathv[k];
    if (ends_with(p, ".gz") || excluded(cfg, p)) continue; /* .gz is never an input */
    struct stat st, lst;
    if (stat(p, &st) != 0) {
      if (errno != ENOENT && !rotated) add_bad(j, p, strerror(errno)); /* ENOENT: dangling link */
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      if (!rotated) add_bad(j, p, kind_of(st.st_mode));
      continue;
    }
    if (!rotated && lstat(p, &lst) == 0 && S_ISLNK(lst.st_mode)) {
      /* /var/log/containers/x.log -> /var/log/pods/...: rotations happen there */
      char real[PATH_MAX];
      if (realpath(p, real)) {
        char *slash = strrchr(real, '/');
        if (slash && slash != real) add_dir(j, real, (size_t)(slash - real));
      }
    }
    if (!grow((void **)&j->hits, &j->cap_hits, j->n_hits, sizeof(*j->hits))) {
      j->oom = true;
      break;
    }
    char *path = strdup(p);
    if (!path) {
      j->oom = true;
      break;
    }
    j->hits[j->n_hits++] = (col_scan_hit){input, path, (uint64_t)st.st_dev, (uint64_t)st.st_ino,
                                          (uint64_t)st.st_size, rotated || kubelet_rotated(p)};
  }
  globfree(&g);
}

static int cmp_hit(const void *a, const void *b) {
  const col_scan_hit *x = a, *y = b;
  if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
  if (x->rotated != y->rotated) return x->rotated ? 1 : -1; /* a live name wins */
  if (x->input != y->input) return x->input < y->input ? -1 : 1;
  return strcmp(x->path, y->path);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Threadpool: glob + stat. Reads only the immutable config. */
static void scan_work(uv_work_t *req) {
  scan_job *j = req->data;
  const col_config *cfg = j->c->cfg;
  for (size_t i = 0; i < cfg->n_in && !j->oom; i++) {
    scan_pattern(j, i, cfg->in[i].glob, false);
    char rot[PATH_MAX];
    if (snprintf(rot, sizeof(rot), "%s.*", cfg->in[i].glob) < (int)sizeof(rot)) {
      scan_pattern(j, i, rot, true);
    }
    add_pattern_dirs(j, cfg->in[i].glob);
  }
  if (j->oom) return;
  /* one hit per (dev, ino): the same file through another pattern or link */
  /* qsort with a NULL base is undefined even for 0 elements (UBSan aborts):
   * the first scan of an empty directory has no hits yet */
  if (j->n_hits > 1) qsort(j->hits, j->n_hits, sizeof(*j->hits), cmp_hit);
  size_t w = 0;
  for (size_t i = 0; i < j->n_hits; i++) {
    if (w && j->hits[w - 1].dev == j->hits[i].dev && j->hits[w - 1].ino == j->hits[i].ino) {
      free(j->hits[i].path);
      continue;
    }
    j->hits[w++] = j->hits[i];
  }
  j->n_hits = w;
  if (j->n_dirs > 1) qsort(j->dirs, j->n_dirs, sizeof(*j->dirs), cmp_str);
  w = 0;
  for (size_t i = 0; i < j->n_dirs; i++) {
    if (w && strcmp(j->dirs[w - 1], j->dirs[i]) == 0) {
      free(j->dirs[i]);
      continue;
    }
    j->dirs[w++] = j->dirs[i];
  }
  j->n_dirs = w;
}

/* ---------------- loop side ---------------- */

static col_file *find_file(col_collector *c, uint64_t dev, uint64_t ino) {
  for (col_file *f = c->files; f; f = f->next) {
    if (f->dev == dev && f->ino == ino && !f->closing) return f;
  }
  return NULL;
}

static col_known *known_find(col_collector *c, uint64_t dev, uint64_t ino) {
  for (size_t i = 0; i < c->n_known; i++) {
    if (c->known[i].dev == dev && c->known[i].ino == ino) return &c->known[i];
  }
  return NULL;
}

void col__known_set(col_collector *c, uint64_t dev, uint64_t ino, uint64_t size,
                    col_known_state st) {
  col_known *k = known_find(c, dev, ino);
  if (!k) {
    if (!grow((void **)&c->known, &c->cap_known, c->n_known, sizeof(*c->known))) return;
    k = &c->known[c->n_known++];
    memset(k, 0, sizeof(*k));
    k->dev = dev;
    k->ino = ino;
    k->scan_gen = c->scan_gen;
  }
  k->size = size;
  k->state = st;
  k->since_ns = cairn_time_mono_ns();
}

static void open_hit(col_collector *c, const col_scan_hit *h, col_open_kind kind) {
  col_file *f;
  cairn_err err = col__file_open(c, &c->cfg->in[h->input], h->path, h->dev, h->ino, kind, &f);
  if (err != CAIRN_OK) {
    cairn_log_error("collector", "cannot follow %s: %s; will retry at the next scan", h->path,
                    cairn_err_str(err));
    return;
  }
  f->scan_gen = c->scan_gen;
}

/* An untracked rotated name: resume, probe, or leave it alone. Returns true
 * when it is left alone as history: present at the first scan without a
 * checkpoint (counted in the first scan's summary). */
static bool rotated_hit(col_collector *c, const col_scan_hit *h, col_known *k, int64_t now) {
  if (k) {
    if (k->state == COL_KNOWN_DEFERRED && now - k->since_ns >= COL_DEFER_TTL_NS) {
      k->state = COL_KNOWN_IGNORED; /* a copy of a file that was never truncated */
    } else if (k->state == COL_KNOWN_DEFERRED && c->n_orphans > 0) {
      open_hit(c, h, COL_OPEN_PROBE);
    } else if (k->state == COL_KNOWN_RETIRED && h->size > k->size && !k->warned) {
      k->warned = true;
      cairn_log_warn("collector", "rotated file %s grew by %llu bytes after it was closed: its "
                     "writer kept it open longer than --rotate-wait; raise --rotate-wait (those "
                     "bytes are not read)", h->path, (unsigned long long)(h->size - k->size));
    } else if (k->state == COL_KNOWN_FAILED && now - k->since_ns >= COL_RETRY_NS) {
      open_hit(c, h, COL_OPEN_RESUME);
    }
    return false;
  }
  const col_ckpt_entry *e = col__ckpt_get(c->ck, h->dev, h->ino);
  if (e && e->offset < h->size) {
    open_hit(c, h, COL_OPEN_RESUME); /* e.g. rotated while the collector was down */
  } else if (e || !c->scanned_once) {
    col__known_set(c, h->dev, h->ino, h->size, COL_KNOWN_IGNORED); /* read, or older than us */
    return !e;
  } else {
    open_hit(c, h, COL_OPEN_PROBE);
  }
  return false;
}

static void warn_bad(col_collector *c, const col_badpath *b, uint64_t gen) {
  for (size_t i = 0; i < c->n_bad; i++) {
    if (strcmp(c->bad[i].path, b->path) == 0 && strcmp(c->bad[i].why, b->why) == 0) {
      c->bad[i].gen = gen;
      return;
    }
  }
  c->stats.bad_inputs++;
  cairn_log_warn("collector", "%s matches an --input glob but is %s: not reading it (only regular "
                 "files are read; narrow the glob or add an --exclude)", b->path, b->why);
  if (!grow((void **)&c->bad, &c->cap_bad, c->n_bad, sizeof(*c->bad))) return;
  col_badpath *n = &c->bad[c->n_bad];
  n->path = strdup(b->path);
  if (!n->path) return;
  snprintf(n->why, sizeof(n->why), "%s", b->why);
  n->gen = gen;
  c->n_bad++;
}

static void on_watch_closed(uv_handle_t *h) {
  col_watch *w = h->data;
  w->c->open_handles--;
  free(w->dir);
  free(w);
}

static void close_watch(col_collector *c, size_t i) {
  col_watch *w = c->watches[i];
  c->watches[i] = c->watches[--c->n_watches];
  uv_close((uv_handle_t *)&w->h, on_watch_closed);
}

static void on_dir_event(uv_fs_event_t *h, const char *name, int events, int status) {
  col_watch *w = h->data;
  (void)name;
  if (status < 0 || (events & UV_RENAME)) col__rescan_soon(w->c); /* created, moved, deleted */
}

static void sync_watches(col_collector *c, scan_job *j, uint64_t gen) {
  for (size_t i = 0; i < j->n_dirs; i++) {
    col_watch *found = NULL;
    for (size_t k = 0; k < c->n_watches && !found; k++) {
      if (strcmp(c->watches[k]->dir, j->dirs[i]) == 0) found = c->watches[k];
    }
    if (found) {
      found->gen = gen;
      continue;
    }
    if (c->n_watches >= MAX_WATCHES) {
      if (!c->watch_limit_logged) {
        c->watch_limit_logged = true;
        cairn_log_warn("collector", "more than %u directories to watch: new files in the others "
                       "are found by the periodic scan (--rescan-interval)", MAX_WATCHES);
      }
      break;
    }
    if (!grow((void **)&c->watches, &c->cap_watches, c->n_watches, sizeof(*c->watches))) break;
    col_watch *w = calloc(1, sizeof(*w));
    if (!w || !(w->dir = strdup(j->dirs[i]))) {
      free(w);
      break;
    }
    w->c = c;
    w->gen = gen;
    uv_fs_event_init(&c->loop, &w->h);
    w->h.data = w;
    c->open_handles++;
    c->watches[c->n_watches++] = w;
    int rc = uv_fs_event_start(&w->h, on_dir_event, w->dir, 0);
    if (rc != 0) {
      /* ENOSPC: fs.inotify.max_user_watches; ENOENT: gone meanwhile */
      if (rc != UV_ENOENT && !c->watch_limit_logged) {
        c->watch_limit_logged = true;
        cairn_log_warn("collector", "cannot watch %s: %s; files there are found by the periodic "
                       "scan (raise fs.inotify.max_user_watches)", w->dir, uv_strerror(rc));
      }
      close_watch(c, c->n_watches - 1);
    }
  }
  for (size_t i = c->n_watches; i-- > 0;) {
    if (c->watches[i]->gen != gen) close_watch(c, i);
  }
}

static void start_scan(col_collector *c);

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
  int64_t now = cairn_time_mono_ns();
  size_t history = 0;          /* rotated files left alone by the first scan */
  const char *history_eg = ""; /* one of them, for the log */
  for (size_t i = 0; i < j->n_hits; i++) {
    col_scan_hit *h = &j->hits[i];
    col_file *f = find_file(c, h->dev, h->ino);
    col__ckpt_touch(c->ck, h->dev, h->ino, now);
    if (f) {
      f->scan_gen = gen;
      f->vanished = false;
      if (h->rotated && !f->rotated) col__file_rotated(f, h->path);
      continue;
    }
    col_known *k = known_find(c, h->dev, h->ino);
    if (k) k->scan_gen = gen;
    if (h->rotated) {
      if (rotated_hit(c, h, k, now) && history++ == 0) history_eg = h->path;
    } else if (!k || k->state != COL_KNOWN_FAILED || now - k->since_ns >= COL_RETRY_NS) {
      open_hit(c, h, c->scanned_once ? COL_OPEN_LIVE : COL_OPEN_INITIAL);
    }
  }
  for (col_file *f = c->files, *next; f; f = next) {
    next = f->next;
    col__ckpt_touch(c->ck, f->dev, f->ino, now);
    if (f->scan_gen != gen && !f->vanished && !f->closing) col__file_vanished(f);
  }
  for (size_t i = c->n_known; i-- > 0;) {
    if (c->known[i].scan_gen != gen && c->known[i].scan_gen + 1 < gen) {
      c->known[i] = c->known[--c->n_known]; /* not seen twice in a row: gone */
    }
  }
  for (size_t i = 0; i < j->n_bad; i++) warn_bad(c, &j->bad[i], gen);
  for (size_t i = c->n_bad; i-- > 0;) {
    if (c->bad[i].gen != gen) {
      free(c->bad[i].path);
      c->bad[i] = c->bad[--c->n_bad];
    }
  }
  sync_watches(c, j, gen);
  col__orphans_expire(c, now);
  size_t dropped = col__ckpt_gc(c->ck, now, COL_CKPT_GC_NS);
  if (dropped) {
    cairn_log_info("collector", "forgot %zu checkpoints of files no scan has seen for %llds",
                   dropped, (long long)(COL_CKPT_GC_NS / 1000000000LL));
  }
  if (!c->scanned_once) {
    /* the point from which every write and rotation is seen (tests wait for it) */
    if (history) {
      cairn_log_info("collector", "first scan done: following %zu files; %zu rotated files that "
                     "were there before the start and have no checkpoint are left alone (e.g. "
                     "%s): lines written to them before this point are not read", c->n_files,
                     history, history_eg);
    } else {
      cairn_log_info("collector", "first scan done: following %zu files", c->n_files);
    }
  }
  c->scanned_once = true;
  scan_job_free(j);
  if (c->rescan_pending) {
    c->rescan_pending = false;
    start_scan(c);
  }
}

static void start_scan(col_collector *c) {
  if (!c->discover_on) return;
  if (c->scan_running) {
    c->rescan_pending = true;
    return;
  }
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

static void on_scan_timer(uv_timer_t *h) { start_scan(h->data); }

void col__rescan_soon(col_collector *c) {
  if (!c->discover_on || uv_is_active((uv_handle_t *)&c->kick_timer)) return;
  c->kick_timer.data = c;
  uv_timer_start(&c->kick_timer, on_scan_timer, KICK_MS, 0);
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
  uv_timer_stop(&c->kick_timer);
  while (c->n_watches) close_watch(c, c->n_watches - 1);
  for (size_t i = 0; i < c->n_bad; i++) free(c->bad[i].path);
  c->n_bad = 0;
}
