/* query/stats.c: `cairn-query stats`: the store's counters (sto_stats_get)
 * as text, one JSON object, or a CSV header and row. Later versions add
 * per-index and chain figures here.
 */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "query/internal.h"

/* "1.5 GiB" style rendering of a byte count for people. */
static void human_bytes(uint64_t v, char *out, size_t cap) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double d = (double)v;
  size_t u = 0;
  while (d >= 1024.0 && u < 4) {
    d /= 1024.0;
    u++;
  }
  snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", d, unit[u]);
}

int qry__stats_cmd(const qry_opts *o, const qry_env *env) {
  sto_env *sto = NULL;
  int rc = qry__store_open(o, env, &sto);
  if (rc != QRY_EXIT_OK) return rc;

  sto_stats s;
  memset(&s, 0, sizeof(s));
  cairn_err e = sto_stats_get(sto, &s);
  if (e) {
    fprintf(env->err, "cairn-query: reading the store in %s failed: %s (%s); check --data\n",
            o->data_dir, cairn_err_name(e), cairn_err_str(e));
    rc = QRY_EXIT_USAGE;
    goto out_close_store;
  }

  switch (o->format) {
  case QRY_FMT_JSON: {
    json_t *j = json_pack("{s:I,s:I,s:I,s:I}", "records", (json_int_t)s.records, "last_seq",
                          (json_int_t)s.last_seq, "map_size", (json_int_t)s.map_size, "map_used",
                          (json_int_t)s.map_used);
    if (!j || json_dumpf(j, env->out, JSON_COMPACT) != 0) {
      json_decref(j);
      fprintf(env->err, "cairn-query: writing the output failed: %s\n", strerror(errno));
      rc = QRY_EXIT_USAGE;
      goto out_close_store;
    }
    json_decref(j);
    fputc('\n', env->out);
    break;
  }
  case QRY_FMT_CSV:
    fprintf(env->out, "records,last_seq,map_size,map_used\r\n%llu,%llu,%llu,%llu\r\n",
            (unsigned long long)s.records, (unsigned long long)s.last_seq,
            (unsigned long long)s.map_size, (unsigned long long)s.map_used);
    break;
  default: {
    char size[32], used[32];
    human_bytes(s.map_size, size, sizeof(size));
    human_bytes(s.map_used, used, sizeof(used));
    fprintf(env->out,
            "store     %s\nrecords   %llu\nlast_seq  %llu\nmap_size  %llu (%s)\n"
            "map_used  %llu (%s)\n",
            o->data_dir, (unsigned long long)s.records, (unsigned long long)s.last_seq,
            (unsigned long long)s.map_size, size, (unsigned long long)s.map_used, used);
    break;
  }
  }
  if (fflush(env->out) != 0 || ferror(env->out)) {
    fprintf(env->err, "cairn-query: writing the output failed: %s\n", strerror(errno));
    rc = QRY_EXIT_USAGE;
  }

out_close_store:
  sto_close(sto);
  return rc;
}
