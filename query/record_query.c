/* query/record_query.c: every local query is itself an audit record (PCI DSS
 * 10.2.1.3, "access to audit logs is logged"): who ran it (Unix user name
 * and uid), when, the command, its filters and how many records it returned,
 * stored as a source=query record in the same store.
 *
 * The one design decision: cairn-query writes it with its own short write
 * txn, next to a running aggregator. LMDB serialises write txns across
 * processes, and storage reloads last_seq and the chain head inside every
 * write txn, so both writers extend one seq range and one hash chain.
 * Remote queries are recorded by the aggregator (aggregator/query_server.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/timeparse.h"
#include "query/internal.h"

/* The filters of o as one line: the storage query, then the client filters. */
static cairn_err describe(const qry_opts *o, cairn_buf *b) {
  const sto_query *q = &o->q;
  const qry_filter_args *a = &o->args;
  char t[48];
  cairn_err e = CAIRN_OK;
  if (q->since_ns != INT64_MIN) {
    cairn_time_format(q->since_ns, t, sizeof(t));
    e = cairn_buf_printf(b, " since=%s", t);
  }
  if (!e && q->until_ns != INT64_MAX) {
    cairn_time_format(q->until_ns, t, sizeof(t));
    e = cairn_buf_printf(b, " until=%s", t);
  }
  for (int f = 0; !e && f < STO_FIELD_COUNT_; f++)
    for (size_t i = 0; !e && i < a->field[f].n; i++)
      e = cairn_buf_printf(b, " %s=%s", sto_field_name((sto_field)f),
                           a->field[f].v[i]);
  for (size_t i = 0; !e && i < a->k8s_namespace.n; i++)
    e = cairn_buf_printf(b, " k8s-namespace=%s", a->k8s_namespace.v[i]);
  if (!e && q->source)
    e = cairn_buf_printf(b, " source=%s", pb_source_name(q->source));
  for (size_t i = 0; !e && i < a->stream.n; i++)
    e = cairn_buf_printf(b, " stream=%s", a->stream.v[i]);
  for (size_t i = 0; !e && i < a->grep.n; i++)
    e = cairn_buf_printf(b, " grep=%s", a->grep.v[i]);
  for (size_t i = 0; !e && i < a->regex.n; i++)
    e = cairn_buf_printf(b, " regex=%s", a->regex.v[i]);
  if (!e && a->icase)
    e = cairn_buf_append_str(b, " -i");
  if (!e && o->out_dir)
    e = cairn_buf_printf(b, " out=%s", o->out_dir);
  if (!e)
    e = cairn_buf_printf(b, " limit=%zu order=%s", q->limit,
                         q->newest_first ? "newest" : "oldest");
  return e;
}

/* Store rec in dir with a write txn of this process; one grow on map full. */
static cairn_err store(const char *dir, Cairn__Record *rec, const char *user,
                       char *why, size_t cap) {
  sto_options so;
  memset(&so, 0, sizeof(so));
  sto_env *env = NULL;
  cairn_err e = sto_open(dir, &so, &env, why, cap);
  if (e != CAIRN_OK)
    return e;
  for (int attempt = 0; attempt < 2; attempt++) {
    sto_wtxn *t = NULL;
    e = sto_wtxn_begin(env, &t);
    sto_ingest_meta meta = {"cairn-query", user, NULL, cairn_time_now_ns()};
    uint32_t stored = 0, dups = 0;
    if (e == CAIRN_OK)
      e = sto_wtxn_put_records(t, &meta, &rec, 1, &stored, &dups);
    if (e == CAIRN_OK) {
      e = sto_wtxn_commit(t);
    } else {
      sto_wtxn_abort(t);
    }
    if (e != CAIRN_E_MAPFULL || attempt == 1 || sto_grow(env) != CAIRN_OK)
      break;
  }
  sto_close(env);
  return e;
}

void qry__record_local(const qry_opts *o, const qry_env *env, int rc) {
  if (!env->record_queries)
    return; /* CAIRN_QUERY_RECORD=0: a deliberate, silent opt-out */
  char p1[PATH_MAX], p2[PATH_MAX];
  snprintf(p1, sizeof(p1), "%s/data.mdb", o->data_dir);
  snprintf(p2, sizeof(p2), "%s/lock.mdb", o->data_dir);
  if (access(o->data_dir, W_OK) != 0 || access(p1, W_OK) != 0 ||
      access(p2, W_OK) != 0) {
    fprintf(env->err,
            "cairn-query: query not recorded: no write access to %s\n",
            o->data_dir);
    return;
  }
  uid_t uid = getuid();
  char user[256], uidb[24], countb[24], host[256] = "";
  struct passwd pw, *pwp = NULL;
  char pwbuf[4096];
  if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp &&
      pwp->pw_name)
    snprintf(user, sizeof(user), "%s", pwp->pw_name);
  else
    snprintf(user, sizeof(user), "uid-%u", (unsigned)uid);
  snprintf(uidb, sizeof(uidb), "%u", (unsigned)uid);
  uint64_t count = o->result_count ? *o->result_count : 0;
  snprintf(countb, sizeof(countb), "%" PRIu64, count);
  if (strcmp(o->cmd, "export") == 0)
    snprintf(countb, sizeof(countb), "-"); /* see its manifest */
  gethostname(host, sizeof(host) - 1);
  const char *result = rc == QRY_EXIT_OK ? "ok" : "ok (nothing matched)";

  cairn_buf filters, msg;
  cairn_buf_init(&filters);
  cairn_buf_init(&msg);
  cairn_err e = describe(o, &filters);
  if (!e)
    e = cairn_buf_append(&filters, "", 1);
  const char *fl = !e && filters.len > 1 ? (const char *)filters.ptr + 1 : "";
  if (!e)
    e = cairn_buf_printf(&msg,
                         "query %s by %s (local, uid %s): %s -> %s records, %s",
                         o->cmd, user, uidb, fl, countb, result);
  if (e) {
    fprintf(env->err, "cairn-query: query not recorded: out of memory\n");
    goto out_free;
  }
  const char *const kv[][2] = {{"mode", "local"},  {"user", user},
                               {"uid", uidb},      {"command", o->cmd},
                               {"filters", fl},    {"count", countb},
                               {"result", result}, {"data", o->data_dir}};
  enum { NKV = sizeof(kv) / sizeof(kv[0]) };
  Cairn__Attr attrs[NKV], *ap[NKV];
  Cairn__Record rec;
  pb_query_record_fill(&rec, attrs, ap, kv, NKV, cairn_time_now_ns(), host,
                       msg.ptr, msg.len);
  char why[512] = "";
  e = store(o->data_dir, &rec, user, why, sizeof(why));
  if (e == CAIRN_E_PERM)
    fprintf(env->err,
            "cairn-query: query not recorded: no write access to %s (%s)\n",
            o->data_dir, why[0] ? why : cairn_err_str(e));
  else if (e != CAIRN_OK)
    fprintf(env->err, "cairn-query: query not recorded in %s: %s (%s)\n",
            o->data_dir, why[0] ? why : cairn_err_str(e), cairn_err_name(e));
out_free:
  cairn_buf_fini(&filters);
  cairn_buf_fini(&msg);
}
