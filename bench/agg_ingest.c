/* bench/agg_ingest.c: the aggregator's per-record work in one process, with
 * startup and the network left out, so callgrind counts (scenario f) and CPU
 * rates measure the hot path alone on a fixed input.
 *
 *   agg-ingest --file CRI.log --data DIR [--lines N] [--batch B] [--group G]
 *              [--kafka | --kafka-protobuf | --kafka-protobuf-view] [--repeat R]
 *
 * Setup (not timed): the CRI file is parsed and encoded into Batch payloads
 * exactly as the collector does (collector parser, col__batch_add, 5000
 * records / 1 MiB per batch, pb_batch_encode: protobuf + zstd -1).
 * Timed, ingest_run(): what the aggregator's writer thread does per group of
 * G batches (default 8): pb_batch_decode_items (zstd into a reused buffer
 * per batch of the group, records read in place, with the aggregator's
 * default limits) of each batch, then sto_wtxn_put_items (dedupe, seq,
 * record bytes + ingest fields, records DB, hash chain, index entries) of
 * all of them in one txn and
 * sto_wtxn_commit (no fsync).
 * With --kafka, forward_run() then does what the Kafka forwarder does before
 * librdkafka: sto_scan_after_raw in steps of 1000, pb_view_parse and
 * pb_view_json of every record (pb_record_unpack + pb_record_json for one the
 * view cannot take; librdkafka itself is not included).
 * With --kafka-protobuf it does instead what the forwarder does with
 * --kafka-format protobuf: pb_view_key_fields of every record (falling back to
 * pb_view_parse / pb_record_unpack as rec_open does), the Kafka key built, and
 * the stored bytes appended as one framed RecordBatch.records entry;
 * --kafka-protobuf-view reads the key fields with pb_view_parse instead (the
 * forwarder before pb_view_key_fields), for before/after comparisons.
 * Each repeat uses a fresh store under DIR. Prints per repeat and a last line
 *   RESULT records=N ingest_per_cpu_s=X forward_per_cpu_s=Y ingest_per_s=Z
 * with the medians. Under callgrind, --toggle-collect=ingest_run (and
 * forward_run) counts exactly the timed part.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "collector/internal.h"
#include "collector/internal_parse.h"
#include "proto/json.h"
#include "storage/storage.h"

typedef struct payload {
  uint8_t *p;
  size_t len;
  uint32_t records;
} payload;

typedef struct setup {
  col_rec_src src;
  col_meta meta;
  pb_codec *codec;
  col_batch *batch;
  payload *pl;
  size_t n_pl, cap_pl;
  size_t batch_max;
  int failed;
} setup;

static void flush_batch(setup *s) {
  if (!s->batch || s->batch->n == 0) return;
  if (col__batch_encode(s->batch, s->codec) != CAIRN_OK) s->failed = 1;
  if (s->n_pl == s->cap_pl) {
    s->cap_pl = s->cap_pl ? s->cap_pl * 2 : 64;
    payload *np = realloc(s->pl, s->cap_pl * sizeof(*np));
    if (!np) {
      s->failed = 1;
      return;
    }
    s->pl = np;
  }
  payload *p = &s->pl[s->n_pl++];
  p->len = s->batch->payload.len;
  p->records = (uint32_t)s->batch->n;
  p->p = malloc(p->len);
  if (!p->p) s->failed = 1;
  else memcpy(p->p, s->batch->payload.ptr, p->len);
  col__batch_free(s->batch);
  s->batch = col__batch_new(1);
  if (!s->batch) s->failed = 1;
}

static void on_rec(const col_rec *r, void *ud) {
  setup *s = ud;
  if (s->failed) return;
  if (col__batch_add(s->batch, &s->src, r) != CAIRN_OK) {
    s->failed = 1;
    return;
  }
  if (col__batch_full(s->batch, s->batch_max, 1u << 20)) flush_batch(s);
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 20, n = 0;
  uint8_t *d = malloc(cap);
  while (d) {
    if (n == cap) {
      uint8_t *nd = realloc(d, cap *= 2);
      if (!nd) {
        free(d);
        d = NULL;
        break;
      }
      d = nd;
    }
    size_t got = fread(d + n, 1, cap - n, f);
    if (got == 0) break;
    n += got;
  }
  fclose(f);
  *len = n;
  return d;
}

static double now_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The writer thread's work for every payload, G per txn. Returns records stored. */
__attribute__((noinline)) static uint64_t ingest_run(sto_env *env, const payload *pl, size_t n,
                                                     size_t group) {
  pb_codec *codec = pb_codec_new(0);
  cairn_arena arena;
  cairn_arena_init(&arena, 1u << 20);
  pb_limits lim;
  pb_limits_default(&lim);
  /* per batch of a group, as the writer's slots: decompressed bytes (reused
   * across groups) and the records in them */
  cairn_buf *raw = calloc(group, sizeof(*raw));
  pb_batch_item **items = calloc(group, sizeof(*items));
  size_t *n_items = calloc(group, sizeof(*n_items));
  uint64_t stored = 0;
  if (!codec || !raw || !items || !n_items) return 0;
  for (size_t i = 0; i < n; i += group) {
    size_t k = n - i < group ? n - i : group;
    for (size_t j = 0; j < k; j++) {
      if (pb_batch_decode_items(codec, pl[i + j].p, pl[i + j].len, &lim, &raw[j], &arena,
                                &items[j], &n_items[j]) != CAIRN_OK) {
        fprintf(stderr, "agg-ingest: decode failed: %s\n", pb_codec_last_error(codec));
        exit(1);
      }
    }
    sto_wtxn *t = NULL;
    if (sto_wtxn_begin(env, &t) != CAIRN_OK) exit(1);
    sto_ingest_meta meta = {"0123456789abcdef0123456789abcdef", "collector-1", "node-1",
                            (int64_t)(now_s(CLOCK_REALTIME) * 1e9)};
    for (size_t j = 0; j < k; j++) {
      uint32_t st = 0, du = 0;
      cairn_err e = sto_wtxn_put_items(t, &meta, items[j], n_items[j], &st, &du);
      if (e != CAIRN_OK) {
        fprintf(stderr, "agg-ingest: put_items: %s\n", cairn_err_name(e));
        exit(1);
      }
      stored += st;
    }
    cairn_err e = sto_wtxn_commit(t);
    if (e != CAIRN_OK) {
      fprintf(stderr, "agg-ingest: commit: %s\n", cairn_err_name(e));
      exit(1);
    }
    cairn_arena_reset(&arena);
  }
  for (size_t j = 0; j < group; j++) cairn_buf_fini(&raw[j]);
  free(raw);
  free(items);
  free(n_items);
  cairn_arena_fini(&arena);
  pb_codec_free(codec);
  return stored;
}

enum { FWD_JSON, FWD_PB_KEYS, FWD_PB_VIEW }; /* forward_run modes */

typedef struct fwd {
  int mode;            /* FWD_* */
  uint64_t key_sum;    /* protobuf modes: key bytes, so nothing is optimised away */
  cairn_buf json;
  pb_rec_view view;    /* the record being rendered (large: one per run) */
  cairn_arena unpack;  /* records the view cannot take */
  uint64_t last, n, bytes;
  uint64_t fallback;   /* records rendered through pb_record_unpack */
  int failed;
} fwd;

/* What the forwarder does per record (aggregator/kafka.c, rec_open +
 * rec_json): the stored bytes viewed in place and rendered, or unpacked and
 * rendered when the view cannot take them. */
/* --kafka-protobuf[-view]: aggregator/kafka.c rec_open + key_build +
 * rec_value for protobuf values, one record per message. */
static cairn_err fwd_pb(fwd *f, const uint8_t *p, size_t n) {
  pb_key_fields kf;
  uint64_t seq, fs;
  uint32_t src;
  const uint8_t *inst;
  size_t il;
  if (f->mode == FWD_PB_KEYS && pb_view_key_fields(p, n, &kf)) {
    seq = kf.seq, src = kf.source, fs = kf.file_stream, inst = kf.instance_id.p,
    il = kf.instance_id.n;
  } else if (pb_view_parse(p, n, &f->view)) {
    seq = f->view.seq, src = f->view.source, fs = f->view.file_stream,
    inst = f->view.instance_id.p, il = f->view.instance_id.n;
  } else {
    Cairn__Record *r;
    cairn_arena_reset(&f->unpack);
    cairn_err e = pb_record_unpack(p, n, &f->unpack, &r);
    if (e != CAIRN_OK) return e;
    f->fallback++;
    seq = r->seq, src = (uint32_t)r->source, fs = r->file_stream;
    inst = (const uint8_t *)(r->instance_id ? r->instance_id : "");
    il = strlen((const char *)inst);
  }
  char key[160], num[24], *d = num + sizeof(num); /* as key_build: "<instance_id>/<file_stream>" */
  do {
    *--d = (char)('0' + fs % 10);
    fs /= 10;
  } while (fs);
  size_t kl = il < 120 ? il : 120;
  if (kl) memcpy(key, inst, kl);
  key[kl++] = '/';
  memcpy(key + kl, d, (size_t)(num + sizeof(num) - d));
  kl += (size_t)(num + sizeof(num) - d);
  f->key_sum += kl + (uint8_t)key[0] + seq + src;
  uint8_t hdr[11];
  size_t hl = 0;
  hdr[hl++] = 0x0a; /* RecordBatch.records, length-delimited */
  uint64_t v = n;
  do {
    hdr[hl++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  cairn_err e = cairn_buf_append(&f->json, hdr, hl);
  return e ? e : cairn_buf_append(&f->json, p, n);
}

static bool fwd_cb(uint64_t seq, const uint8_t *p, size_t n, void *ud) {
  fwd *f = ud;
  cairn_buf_reset(&f->json);
  cairn_err e;
  if (f->mode != FWD_JSON) {
    e = fwd_pb(f, p, n);
  } else if (pb_view_parse(p, n, &f->view)) {
    e = pb_view_json(&f->view, &f->json);
  } else {
    Cairn__Record *r;
    cairn_arena_reset(&f->unpack);
    e = pb_record_unpack(p, n, &f->unpack, &r);
    if (e == CAIRN_OK) e = pb_record_json(r, &f->json);
    f->fallback++;
  }
  if (e != CAIRN_OK) {
    f->failed = 1;
    return false;
  }
  f->bytes += f->json.len;
  f->last = seq;
  f->n++;
  return true;
}

/* The Kafka forwarder's reading and rendering, without librdkafka. */
__attribute__((noinline)) static uint64_t forward_run(sto_env *env, int mode, uint64_t *bytes) {
  fwd *f = calloc(1, sizeof(*f));
  if (!f) exit(1);
  f->mode = mode;
  cairn_buf_init(&f->json);
  cairn_arena_init(&f->unpack, 16u << 10);
  for (;;) {
    uint64_t before = f->n;
    if (sto_scan_after_raw(env, f->last, 1000, fwd_cb, f) != CAIRN_OK || f->failed) exit(1);
    if (f->n == before) break;
  }
  if (f->fallback) fprintf(stderr, "forward: %" PRIu64 " records not taken by the view\n", f->fallback);
  if (mode != FWD_JSON && f->key_sum == 0) exit(1); /* keeps the key work observable */
  uint64_t n = f->n;
  *bytes = f->bytes;
  cairn_arena_fini(&f->unpack);
  cairn_buf_fini(&f->json);
  free(f);
  return n;
}

int main(int argc, char **argv) {
  const char *path = NULL, *dir = NULL;
  long max_lines = 0;
  int repeat = 3;
  size_t group = 8, batch_max = 5000;
  bool kafka = false;
  int fwd_mode = FWD_JSON;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--file") && i + 1 < argc) path = argv[++i];
    else if (!strcmp(argv[i], "--data") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--lines") && i + 1 < argc) max_lines = atol(argv[++i]);
    else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--group") && i + 1 < argc) group = (size_t)atol(argv[++i]);
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch_max = (size_t)atol(argv[++i]);
    else if (!strcmp(argv[i], "--kafka")) kafka = true;
    else if (!strcmp(argv[i], "--kafka-protobuf")) kafka = true, fwd_mode = FWD_PB_KEYS;
    else if (!strcmp(argv[i], "--kafka-protobuf-view")) kafka = true, fwd_mode = FWD_PB_VIEW;
    else path = NULL, i = argc;
  }
  if (!path || !dir || repeat < 1 || repeat > 99 || group < 1 || group > 1024 || batch_max < 1) {
    fprintf(stderr, "usage: agg-ingest --file CRI.log --data DIR [--lines N] [--batch B] "
                    "[--group G] [--kafka | --kafka-protobuf | --kafka-protobuf-view] [--repeat R]\n");
    return 2;
  }
  size_t len = 0;
  uint8_t *data = read_file(path, &len);
  if (!data) {
    fprintf(stderr, "agg-ingest: cannot read %s: %s\n", path, strerror(errno));
    return 2;
  }
  setup s = {.batch_max = batch_max};
  col_meta_from_path(path, &s.meta);
  s.src = (col_rec_src){.node = "node-1", .path = path, .meta = &s.meta,
                        .format = CAIRN__FORMAT__FORMAT_CRI, .file_stream = 1};
  s.codec = pb_codec_new(1);
  s.batch = col__batch_new(1);
  col_parser *p = NULL;
  if (!s.codec || !s.batch || col_parser_new(CAIRN__FORMAT__FORMAT_CRI, 0, &p) != CAIRN_OK) return 2;
  size_t off = 0, lines = 0;
  while (off < len && (!max_lines || lines < (size_t)max_lines)) {
    uint8_t *e = memchr(data + off, '\n', len - off);
    if (!e) break;
    if (col_parser_line(p, data + off, (size_t)(e - data) - off, off, lines + 1, on_rec, &s) !=
        CAIRN_OK)
      s.failed = 1;
    off = (size_t)(e - data) + 1;
    lines++;
  }
  if (col_parser_flush(p, true, on_rec, &s) != CAIRN_OK) s.failed = 1;
  flush_batch(&s);
  col_parser_free(p);
  if (s.failed) {
    fprintf(stderr, "agg-ingest: parsing or encoding the input failed\n");
    return 1;
  }
  uint64_t wire = 0, nrec = 0;
  for (size_t i = 0; i < s.n_pl; i++) wire += s.pl[i].len, nrec += s.pl[i].records;
  printf("input: %zu lines, %llu records in %zu batches, %llu payload bytes\n", lines,
         (unsigned long long)nrec, s.n_pl, (unsigned long long)wire);

  double *ing = calloc((size_t)repeat, sizeof(double)), *ingw = calloc((size_t)repeat, sizeof(double));
  double *fw = calloc((size_t)repeat, sizeof(double));
  if (!ing || !ingw || !fw) return 2;
  for (int rep = 0; rep < repeat; rep++) {
    char d[4096];
    snprintf(d, sizeof(d), "%s/rep%d", dir, rep);
    mkdir(dir, 0700);
    char err[512];
    sto_options opt = {.no_sync = true};
    sto_env *env = NULL;
    if (sto_open(d, &opt, &env, err, sizeof(err)) != CAIRN_OK) {
      fprintf(stderr, "agg-ingest: %s\n", err);
      return 2;
    }
    sto_stats st0;
    if (sto_stats_get(env, &st0) != CAIRN_OK || st0.records) {
      fprintf(stderr, "agg-ingest: %s is not empty\n", d);
      return 2;
    }
    double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    uint64_t stored = ingest_run(env, s.pl, s.n_pl, group);
    double t1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    if (stored != nrec) {
      fprintf(stderr, "agg-ingest: stored %llu of %llu records\n", (unsigned long long)stored,
              (unsigned long long)nrec);
      return 1;
    }
    ing[rep] = (double)stored / (c1 - c0);
    ingw[rep] = (double)stored / (t1 - t0);
    printf("run %d: ingest %llu records in %.3f s (cpu %.3f s): %.0f per cpu-s", rep + 1,
           (unsigned long long)stored, t1 - t0, c1 - c0, ing[rep]);
    if (kafka) {
      uint64_t bytes = 0;
      double f0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
      uint64_t fwded = forward_run(env, fwd_mode, &bytes);
      double f1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
      if (fwded != stored) {
        fprintf(stderr, "\nagg-ingest: forwarded %llu of %llu\n", (unsigned long long)fwded,
                (unsigned long long)stored);
        return 1;
      }
      fw[rep] = (double)fwded / (f1 - f0);
      printf("; forward (scan + %s) %.3f cpu-s: %.0f per cpu-s, %.0f %s bytes/record",
             fwd_mode == FWD_JSON ? "JSON" : fwd_mode == FWD_PB_KEYS ? "protobuf" : "protobuf, view",
             f1 - f0, fw[rep], (double)bytes / (double)fwded,
             fwd_mode == FWD_JSON ? "JSON" : "value");
    }
    printf("\n");
    fflush(stdout);
    sto_close(env);
  }
  qsort(ing, (size_t)repeat, sizeof(double), cmp_double);
  qsort(ingw, (size_t)repeat, sizeof(double), cmp_double);
  qsort(fw, (size_t)repeat, sizeof(double), cmp_double);
  printf("RESULT records=%llu ingest_per_cpu_s=%.0f forward_per_cpu_s=%.0f ingest_per_s=%.0f\n",
         (unsigned long long)nrec, ing[repeat / 2], fw[repeat / 2], ingw[repeat / 2]);
  for (size_t i = 0; i < s.n_pl; i++) free(s.pl[i].p);
  free(s.pl);
  free(ing);
  free(ingw);
  free(fw);
  free(data);
  col__batch_free(s.batch);
  pb_codec_free(s.codec);
  return 0;
}
