/* query/search.c: `cairn-query search` against a local store (read-only),
 * or the aggregator's query port with --server (remote.c), and --follow.
 *
 * Storage does the filtering, ordering and limit in one read transaction
 * (sto_query_run picks the index); this file only streams each match to the
 * writer, so memory stays flat however many records match. --follow then
 * polls: every QRY_FOLLOW_POLL_MS one short read txn picks up the records
 * stored after the snapshot the search read (seq > last seen), so it never
 * holds a reader open and never blocks the writer.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeparse.h"
#include "query/internal.h"

int qry__store_open(const qry_opts *o, const qry_env *env, sto_env **out) {
  sto_options so;
  memset(&so, 0, sizeof(so));
  so.read_only = true;
  char why[512] = "";
  cairn_err e = sto_open(o->data_dir, &so, out, why, sizeof(why));
  if (e == CAIRN_OK) return QRY_EXIT_OK;
  if (why[0])
    fprintf(env->err, "cairn-query: %s\n", why);
  else if (e == CAIRN_E_NOTFOUND)
    fprintf(env->err,
            "cairn-query: no cairn store in %s (start cairn-aggregator --data %s first)\n",
            o->data_dir, o->data_dir);
  else
    fprintf(env->err, "cairn-query: cannot open the store in %s: %s (%s); check --data\n",
            o->data_dir, cairn_err_name(e), cairn_err_str(e));
  return QRY_EXIT_USAGE;
}

typedef struct search_ctx {
  qry_writer *w;  /* borrowed */
  cairn_err err;  /* first rendering/output error; stops the scan */
  int err_errno;  /* errno at the time of a CAIRN_E_IO */
} search_ctx;

static bool on_record(const Cairn__Record *rec, void *ud) {
  search_ctx *c = ud;
  cairn_err e = qry__writer_record(c->w, rec);
  if (e) {
    c->err = e;
    c->err_errno = errno;
    return false;
  }
  return true;
}

int qry__output_failed(const qry_env *env, cairn_err e, int errnum) {
  if (e == CAIRN_E_IO)
    fprintf(env->err, "cairn-query: writing the output failed: %s\n", strerror(errnum));
  else
    fprintf(env->err, "cairn-query: rendering the output failed: %s (%s)\n", cairn_err_name(e),
            cairn_err_str(e));
  return QRY_EXIT_USAGE;
}

#define FOLLOW_BATCH 4096u /* records per poll txn; more are read in further txns */

/* Default --follow wait: SIGINT/SIGTERM (blocked by the caller) stop it. */
static bool signal_wait(void *ud, unsigned ms) {
  const sigset_t *set = ud;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  return sigtimedwait(set, NULL, &ts) < 0; /* timeout or another signal: go on */
}

typedef struct follow_ctx {
  const sto_query *q;
  qry_writer *w;
  uint64_t last;  /* highest seq seen */
  size_t seen;    /* records read in this txn */
  cairn_err err;
  int err_errno;
} follow_ctx;

static bool on_new_record(const Cairn__Record *rec, void *ud) {
  follow_ctx *c = ud;
  c->last = rec->seq;
  c->seen++;
  if (!sto_query_match(c->q, rec)) return true;
  cairn_err e = qry__writer_record(c->w, rec);
  if (e) {
    c->err = e;
    c->err_errno = errno;
    return false;
  }
  return true;
}

/* Print matches stored after seq `last` until the wait says stop. */
static int follow(const qry_opts *o, const qry_env *env, sto_env *sto, qry_writer *w,
                  uint64_t last) {
  sigset_t set, old;
  bool (*wait)(void *, unsigned) = env->follow_wait;
  void *wait_ud = env->follow_ud;
  if (!wait) {
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    wait = signal_wait;
    wait_ud = &set;
  }
  follow_ctx c = {.q = &o->q, .w = w, .last = last};
  int rc = QRY_EXIT_OK;
  while (wait(wait_ud, QRY_FOLLOW_POLL_MS)) {
    do {
      c.seen = 0;
      cairn_err e = sto_scan_after(sto, c.last, FOLLOW_BATCH, on_new_record, &c);
      if (e) {
        fprintf(env->err, "cairn-query: reading new records in %s failed: %s (%s)\n",
                o->data_dir, cairn_err_name(e), cairn_err_str(e));
        rc = QRY_EXIT_USAGE;
        goto out_restore;
      }
      if (c.err) {
        rc = qry__output_failed(env, c.err, c.err_errno);
        goto out_restore;
      }
    } while (c.seen == FOLLOW_BATCH);
    cairn_err e = qry__writer_finish(w); /* show this poll's lines now */
    if (e) {
      rc = qry__output_failed(env, e, errno);
      goto out_restore;
    }
  }
out_restore:
  if (!env->follow_wait) pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* Records kept packed for the first page of --follow (printed oldest first). */
typedef struct page {
  cairn_buf bytes; /* u32 length + packed record, one after the other */
  size_t n;
} page;

static bool on_page_record(const Cairn__Record *rec, void *ud) {
  page *p = ud;
  size_t at = p->bytes.len;
  uint8_t len[4] = {0};
  if (cairn_buf_append(&p->bytes, len, 4) || pb_record_pack(rec, &p->bytes)) return false;
  uint32_t n = (uint32_t)(p->bytes.len - at - 4);
  memcpy(p->bytes.ptr + at, &n, 4);
  p->n++;
  return true;
}

/* Render the page from its last record to its first. */
static cairn_err page_render(page *p, qry_writer *w) {
  size_t *offs = calloc(p->n ? p->n : 1, sizeof(*offs));
  if (!offs) return CAIRN_E_NOMEM;
  size_t at = 0;
  for (size_t i = 0; i < p->n; i++) {
    offs[i] = at;
    uint32_t n;
    memcpy(&n, p->bytes.ptr + at, 4);
    at += 4 + n;
  }
  cairn_arena a;
  cairn_arena_init(&a, 16u << 10);
  cairn_err e = CAIRN_OK;
  for (size_t i = p->n; i-- > 0 && !e;) {
    uint32_t n;
    memcpy(&n, p->bytes.ptr + offs[i], 4);
    Cairn__Record *r;
    e = pb_record_unpack(p->bytes.ptr + offs[i] + 4, n, &a, &r);
    if (!e) e = qry__writer_record(w, r);
    cairn_arena_reset(&a);
  }
  cairn_arena_fini(&a);
  free(offs);
  return e;
}

int qry__search_cmd(const qry_opts *o, const qry_env *env) {
  sto_env *sto = NULL;
  int rc = o->server ? QRY_EXIT_OK : qry__store_open(o, env, &sto); /* remote: remote.c */
  if (rc != QRY_EXIT_OK) return rc;

  qry_writer w;
  cairn_err e = qry__writer_init(&w, env->out, o->format, env->out_is_tty, env->color);
  if (e) {
    rc = qry__output_failed(env, e, errno);
    goto out_fini_writer;
  }
  e = qry__writer_begin(&w);
  if (e) {
    rc = qry__output_failed(env, e, errno);
    goto out_fini_writer;
  }

  search_ctx ctx = {.w = &w};
  sto_query_stats st;
  memset(&st, 0, sizeof(st));
  page pg = {.n = 0};
  cairn_buf_init(&pg.bytes);
  int64_t t0 = cairn_time_mono_ns();
  /* --follow newest first: take the newest page, print it oldest first */
  bool paged = o->follow && o->q.newest_first;
  e = paged ? sto_query_run(sto, &o->q, on_page_record, &pg, &st)
            : qry__query_run(o, env, sto, &o->q, on_record, &ctx, &st);
  int64_t t1 = cairn_time_mono_ns();
  if (!e && paged && pg.n != st.matched) e = CAIRN_E_NOMEM;
  if (!e && paged) {
    cairn_err pe = page_render(&pg, &w);
    if (pe) {
      ctx.err = pe;
      ctx.err_errno = errno;
    }
  }
  cairn_buf_fini(&pg.bytes);
  if (e) {
    rc = qry__query_failed(o, env, e);
    goto out_fini_writer;
  }
  if (ctx.err) {
    rc = qry__output_failed(env, ctx.err, ctx.err_errno);
    goto out_fini_writer;
  }
  e = qry__writer_finish(&w);
  if (e) {
    rc = qry__output_failed(env, e, errno);
    goto out_fini_writer;
  }
  if (o->print_stats)
    fprintf(env->err, "stats: index=%s examined=%llu matched=%llu elapsed_ms=%.3f\n",
            st.index ? st.index : "?", (unsigned long long)st.examined,
            (unsigned long long)st.matched, (double)(t1 - t0) / 1e6);
  if (o->follow) {
    rc = follow(o, env, sto, &w, st.snapshot_seq);
    if (rc != QRY_EXIT_OK) goto out_fini_writer;
  }
  rc = w.written ? QRY_EXIT_OK : QRY_EXIT_NO_MATCH;
  if (o->result_count) *o->result_count = w.written;

out_fini_writer:
  qry__writer_fini(&w);
  sto_close(sto);
  return rc;
}
