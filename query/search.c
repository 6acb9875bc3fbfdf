/* query/search.c: `cairn-query search` against a local store (read-only).
 *
 * Storage does the filtering, ordering and limit in one read transaction
 * (sto_query_run picks the index); this file only streams each match to the
 * writer, so memory stays flat however many records match.
 */
#include <errno.h>
#include <string.h>

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

static int output_failed(const qry_env *env, cairn_err e, int errnum) {
  if (e == CAIRN_E_IO)
    fprintf(env->err, "cairn-query: writing the output failed: %s\n", strerror(errnum));
  else
    fprintf(env->err, "cairn-query: rendering the output failed: %s (%s)\n", cairn_err_name(e),
            cairn_err_str(e));
  return QRY_EXIT_USAGE;
}

int qry__search_cmd(const qry_opts *o, const qry_env *env) {
  sto_env *sto = NULL;
  int rc = qry__store_open(o, env, &sto);
  if (rc != QRY_EXIT_OK) return rc;

  qry_writer w;
  cairn_err e = qry__writer_init(&w, env->out, o->format, env->out_is_tty, env->color);
  if (e) {
    rc = output_failed(env, e, errno);
    goto out_fini_writer;
  }
  e = qry__writer_begin(&w);
  if (e) {
    rc = output_failed(env, e, errno);
    goto out_fini_writer;
  }

  search_ctx ctx = {.w = &w};
  sto_query_stats st;
  memset(&st, 0, sizeof(st));
  int64_t t0 = cairn_time_mono_ns();
  e = sto_query_run(sto, &o->q, on_record, &ctx, &st);
  int64_t t1 = cairn_time_mono_ns();
  if (e) {
    fprintf(env->err, "cairn-query: reading the store in %s failed: %s (%s); check --data\n",
            o->data_dir, cairn_err_name(e), cairn_err_str(e));
    rc = QRY_EXIT_USAGE;
    goto out_fini_writer;
  }
  if (ctx.err) {
    rc = output_failed(env, ctx.err, ctx.err_errno);
    goto out_fini_writer;
  }
  e = qry__writer_finish(&w);
  if (e) {
    rc = output_failed(env, e, errno);
    goto out_fini_writer;
  }
  if (o->print_stats)
    fprintf(env->err, "stats: index=%s examined=%llu matched=%llu elapsed_ms=%.3f\n",
            st.index ? st.index : "?", (unsigned long long)st.examined,
            (unsigned long long)st.matched, (double)(t1 - t0) / 1e6);
  rc = w.written ? QRY_EXIT_OK : QRY_EXIT_NO_MATCH;

out_fini_writer:
  qry__writer_fini(&w);
  sto_close(sto);
  return rc;
}
