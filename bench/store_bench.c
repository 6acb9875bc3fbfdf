/* bench/store_bench.c: builds a large store through storage's write API
 * (as the aggregator's writer thread does: groups of records per
 * transaction, no fsync) and measures the selective query of the budget:
 * one pod, one hour, first page.
 *
 *   store-bench --data DIR [--records N] [--pods P] [--hours H] [--group G]
 *               [--queries Q] [--page K]
 *
 * N records (default 1,000,000) of ~200-byte CRI-like messages are spread
 * evenly over H hours (default 24) ending now, round-robin over P pods
 * (default 200) in 4 namespaces on 10 nodes, committed G per transaction
 * (default 5000). Then Q (default 200) queries, each for a random pod over a
 * random whole hour, limit K (default 100), newest first, as
 * `cairn-query search --pod X --since .. --until ..` asks. Prints
 *   BUILD records=N seconds=S records_per_s=R map_used=B
 *   SAMPLE pod=P since=T until=T   (a pod-hour for timing the cairn-query CLI)
 *   QUERY queries=Q page=K p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. avg_matched=..
 * The data dir is reused if it already holds N or more records (build skipped).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/storage.h"

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rnd(rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ULL;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static const char *const namespaces[] = {"payments", "checkout", "ingress-nginx", "kube-system"};

static bool count_cb(const Cairn__Record *rec, void *ud) {
  (void)rec;
  (*(uint64_t *)ud)++;
  return true;
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  uint64_t n = 1000000, pods = 200, hours = 24, group = 5000, queries = 200, page = 100;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--data") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--records") && i + 1 < argc) n = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--pods") && i + 1 < argc) pods = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--hours") && i + 1 < argc) hours = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--group") && i + 1 < argc) group = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--queries") && i + 1 < argc) queries = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--page") && i + 1 < argc) page = strtoull(argv[++i], NULL, 10);
    else dir = NULL, i = argc;
  }
  if (!dir || n == 0 || pods == 0 || pods > 100000 || hours == 0 || group == 0 || queries == 0) {
    fprintf(stderr, "usage: store-bench --data DIR [--records N] [--pods P] [--hours H] [--group G] "
                    "[--queries Q] [--page K]\n");
    return 2;
  }
  char err[512];
  sto_options opt = {.no_sync = true};
  sto_env *env = NULL;
  if (sto_open(dir, &opt, &env, err, sizeof(err)) != CAIRN_OK) {
    fprintf(stderr, "store-bench: %s\n", err);
    return 2;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t t_end = (int64_t)now.tv_sec / 3600 * 3600 * 1000000000LL; /* whole hour */
  int64_t span = (int64_t)hours * 3600 * 1000000000LL, t_begin = t_end - span;
  char (*pod_names)[64] = calloc(pods, sizeof(*pod_names));
  char (*uids)[40] = calloc(pods, sizeof(*uids));
  uint64_t *offs = calloc(pods, sizeof(*offs));
  if (!pod_names || !uids || !offs) return 2;
  rng r = {0x9E3779B97F4A7C15ULL};
  char nodes[10][16];
  for (unsigned k = 0; k < 10; k++) snprintf(nodes[k], sizeof(nodes[k]), "node-%02u", k);
  for (uint64_t p = 0; p < pods; p++) {
    snprintf(pod_names[p], sizeof(pod_names[p]), "app-%03" PRIu64 "-%05" PRIx64, p % 50, rnd(&r) & 0xfffff);
    snprintf(uids[p], sizeof(uids[p]), "%016" PRIx64 "%016" PRIx64, rnd(&r), rnd(&r));
  }
  sto_stats st;
  if (sto_stats_get(env, &st) != CAIRN_OK) return 2;
  if (st.records < n) {
    if (st.records) {
      fprintf(stderr, "store-bench: %s holds %" PRIu64 " records (< %" PRIu64 "); use an empty dir\n",
              dir, st.records, n);
      return 2;
    }
    Cairn__Record *recs = calloc(group, sizeof(*recs));
    Cairn__Record **rp = calloc(group, sizeof(*rp));
    char (*msgs)[256] = calloc(group, sizeof(*msgs));
    if (!recs || !rp || !msgs) return 2;
    sto_ingest_meta meta = {.instance_id = "0123456789abcdef0123456789abcdef",
                            .identity = "bench-collector", .node = "", .ingest_ns = 0};
    double t0 = mono_s();
    for (uint64_t done = 0; done < n;) {
      size_t k = (size_t)(n - done < group ? n - done : group);
      for (size_t j = 0; j < k; j++) {
        uint64_t i = done + j, p = i % pods;
        uint64_t x = rnd(&r);
        Cairn__Record *rec = &recs[j];
        cairn__record__init(rec);
        int len = snprintf(msgs[j], sizeof(msgs[j]),
                           "{\"level\":\"info\",\"msg\":\"request served\",\"method\":\"GET\",\"path\":"
                           "\"/api/v1/items/%u\",\"status\":%d,\"latency_ms\":%u,\"trace_id\":\"%016" PRIx64
                           "\",\"seq\":%" PRIu64 "}",
                           (unsigned)(x % 100000), (x >> 20) % 7 ? 200 : 500,
                           (unsigned)((x >> 32) % 2000), rnd(&r), i);
        rec->time_ns = t_begin + (int64_t)((double)i / (double)n * (double)span);
        rec->source = CAIRN__SOURCE__SOURCE_CONTAINER;
        rec->stream = (x >> 40) % 10 ? CAIRN__LOG_STREAM__LOG_STREAM_STDOUT : CAIRN__LOG_STREAM__LOG_STREAM_STDERR;
        rec->message.data = (uint8_t *)msgs[j];
        rec->message.len = (size_t)len;
        rec->kube_namespace = (char *)namespaces[p % 4];
        rec->pod = pod_names[p];
        rec->container = "app";
        rec->container_id = "a7895ed8cd218d1d2fd6c69c9498cdb4d2fb7a57208ab630227d342c59ed2ecd";
        rec->pod_uid = uids[p];
        rec->node = nodes[p % 10];
        rec->path = "/var/log/containers/app.log";
        rec->file_stream = p + 1;
        offs[p] += (uint64_t)len + 40;
        rec->end_offset = offs[p];
        rec->fragments = 1;
        rec->format = CAIRN__FORMAT__FORMAT_CRI;
        rp[j] = rec;
      }
      sto_wtxn *t = NULL;
      uint32_t stored = 0, dups = 0;
      meta.ingest_ns = (int64_t)now.tv_sec * 1000000000LL;
      cairn_err e = sto_wtxn_begin(env, &t);
      if (e == CAIRN_OK) e = sto_wtxn_put_records(t, &meta, rp, k, &stored, &dups);
      if (e == CAIRN_OK) {
        e = sto_wtxn_commit(t);
      } else {
        sto_wtxn_abort(t);
      }
      if (e == CAIRN_E_MAPFULL) {
        if (sto_grow(env) != CAIRN_OK) return 2;
        continue; /* retry this group */
      }
      if (e != CAIRN_OK) {
        fprintf(stderr, "store-bench: write failed: %s\n", cairn_err_name(e));
        return 2;
      }
      done += k;
    }
    double t1 = mono_s();
    if (sto_stats_get(env, &st) != CAIRN_OK) return 2;
    printf("BUILD records=%" PRIu64 " seconds=%.2f records_per_s=%.0f map_used=%" PRIu64 "\n", n,
           t1 - t0, (double)n / (t1 - t0), st.map_used);
    free(recs);
    free(rp);
    free(msgs);
  } else {
    printf("BUILD records=%" PRIu64 " reused=1 map_used=%" PRIu64 "\n", st.records, st.map_used);
  }
  { /* one query for the CLI timing in bench/run.sh: a pod over the middle hour */
    uint64_t h = hours / 2;
    time_t a = (time_t)((t_begin + (int64_t)h * 3600 * 1000000000LL) / 1000000000LL), b = a + 3600;
    struct tm ta, tb;
    gmtime_r(&a, &ta);
    gmtime_r(&b, &tb);
    printf("SAMPLE pod=%s since=%04d-%02d-%02dT%02d:00:00Z until=%04d-%02d-%02dT%02d:00:00Z\n",
           pod_names[pods / 3], ta.tm_year + 1900, ta.tm_mon + 1, ta.tm_mday, ta.tm_hour,
           tb.tm_year + 1900, tb.tm_mon + 1, tb.tm_mday, tb.tm_hour);
  }
  fflush(stdout);

  double *lat = calloc(queries, sizeof(*lat));
  uint64_t matched_total = 0;
  for (uint64_t q = 0; q < queries; q++) {
    sto_query sq;
    sto_query_init(&sq);
    uint64_t p = rnd(&r) % pods, h = rnd(&r) % hours;
    sq.pod = pod_names[p];
    sq.since_ns = t_begin + (int64_t)h * 3600 * 1000000000LL;
    sq.until_ns = sq.since_ns + 3600 * 1000000000LL;
    sq.limit = page;
    sq.newest_first = true;
    uint64_t got = 0;
    double a = mono_s();
    cairn_err e = sto_query_run(env, &sq, count_cb, &got, NULL);
    lat[q] = (mono_s() - a) * 1000;
    if (e != CAIRN_OK) {
      fprintf(stderr, "store-bench: query failed: %s\n", cairn_err_name(e));
      return 2;
    }
    matched_total += got;
  }
  qsort(lat, queries, sizeof(*lat), cmp_double);
  printf("QUERY queries=%" PRIu64 " page=%" PRIu64 " p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
         "avg_matched=%.1f\n",
         queries, page, lat[queries / 2], lat[queries * 9 / 10], lat[queries * 99 / 100],
         lat[queries - 1], (double)matched_total / (double)queries);
  free(lat);
  free(pod_names);
  free(uids);
  free(offs);
  sto_close(env);
  return 0;
}
