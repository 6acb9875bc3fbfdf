/* bench/parse_bench.c: single-thread, in-memory throughput of the collector
 * parsers, optionally with the collector's batching and encoding (protobuf +
 * zstd, as collector/batch.c does it) but no network or files besides the
 * input. Used by bench/run.sh for the parser table (scenario a) and under
 * valgrind --tool=callgrind for instruction counts (scenario f).
 *
 *   parse-bench --format cri|docker|auditd|k8s-audit --file PATH
 *               [--repeat N] [--lines N] [--reference] [--encode] [--encode-protobuf-c]
 *               [--zstd level=L,wlog=W,hlog=H,clog=C,slog=S,mml=M,tlen=T,strategy=X]
 *               [--verify]
 *
 * The file is read into memory once and split into lines; each repeat feeds
 * every line (the first --lines only, when given) to a fresh parser, as the
 * tailer does. --reference (docker only) runs the jansson path alone (the
 * parser before the fast scanner). --encode also builds batches of at most
 * 5000 records / 1 MiB (the collector defaults) and encodes them with zstd
 * level 1 with the collector's encoder (proto/pack.h); --encode-protobuf-c
 * encodes the same batches with protobuf-c (pb_batch_encode), the encoder
 * before pack.h, for before/after comparisons in one binary (same output
 * bytes). --zstd (implies --encode) packs with pb_pack but compresses with
 * these zstd parameters instead of the codec's level 1 (any subset; zstd's
 * defaults for the level fill in the rest), to compare CPU and ratio;
 * --verify decodes every payload with the aggregator's codec and limits
 * (pb_batch_decode) and counts the records (slower: not for timing).
 * Prints one line per repeat and a last line
 *   RESULT format=F lines=N records=R bytes=B lines_per_s=X mb_per_s=Y lines_per_cpu_s=C out_bytes=Z
 * with the medians of the repeats (wall clock and process CPU time; out_bytes
 * is the zstd output of the last repeat with --encode).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "collector/internal.h"
#include "collector/internal_docker.h"
#include "collector/internal_parse.h"

typedef struct bench {
  Cairn__Format fmt;
  bool encode;
  bool encode_pbc; /* --encode-protobuf-c: pb_codec instead of pb_pack */
  col_rec_src src;
  col_meta meta;
  pb_codec *codec; /* --encode-protobuf-c */
  pb_pack *pack;   /* --encode */
  col_batch *batch;
  ZSTD_CCtx *zc;   /* --zstd: own compressor with the given parameters */
  cairn_buf raw;   /* --zstd: the packed RecordBatch */
  bool verify;     /* --verify */
  uint64_t verified;
  uint64_t records;
  uint64_t out_bytes;
  int failed;
} bench;

/* The batch packed by pb_pack and compressed by b->zc into its payload. */
static cairn_err encode_zstd(bench *b, col_batch *bt) {
  cairn_buf_reset(&b->raw);
  cairn_err e = pb_pack_batch(b->pack, (Cairn__Record *const *)bt->recs, bt->n, &b->raw);
  if (e != CAIRN_OK) return e;
  size_t bound = ZSTD_compressBound(b->raw.len);
  cairn_buf_reset(&bt->payload);
  if (cairn_buf_reserve(&bt->payload, bound)) return CAIRN_E_NOMEM;
  size_t z = ZSTD_compress2(b->zc, bt->payload.ptr, bound, b->raw.ptr, b->raw.len);
  if (ZSTD_isError(z)) {
    fprintf(stderr, "parse-bench: zstd: %s\n", ZSTD_getErrorName(z));
    return CAIRN_E_ZSTD;
  }
  bt->payload.len = z;
  bt->raw_size = b->raw.len;
  return CAIRN_OK;
}

/* Decode the payload as the aggregator does (its codec, default limits). */
static void verify_batch(bench *b, const col_batch *bt) {
  pb_limits lim;
  pb_limits_default(&lim);
  cairn_arena a;
  cairn_arena_init(&a, 0);
  Cairn__RecordBatch *rb = NULL;
  if (pb_batch_decode(b->codec, bt->payload.ptr, bt->payload.len, &lim, &a, &rb) != CAIRN_OK ||
      rb->n_records != bt->n) {
    fprintf(stderr, "parse-bench: payload does not decode: %s\n", pb_codec_last_error(b->codec));
    b->failed = 1;
  } else {
    b->verified += rb->n_records;
  }
  cairn_arena_fini(&a);
}

static void flush_batch(bench *b) {
  if (!b->batch || b->batch->n == 0) return;
  cairn_err e = b->zc           ? encode_zstd(b, b->batch)
                : b->encode_pbc ? col__batch_encode(b->batch, b->codec)
                                : col__batch_encode_pack(b->batch, b->pack);
  if (e != CAIRN_OK) b->failed = 1;
  if (b->verify && e == CAIRN_OK) verify_batch(b, b->batch);
  b->out_bytes += b->batch->payload.len;
  col__batch_free(b->batch);
  b->batch = col__batch_new(1);
  if (!b->batch) b->failed = 1;
}

static void on_rec(const col_rec *r, void *ud) {
  bench *b = ud;
  b->records++;
  if (!b->encode || b->failed) return;
  if (col__batch_add(b->batch, &b->src, r) != CAIRN_OK) {
    b->failed = 1;
    return;
  }
  if (col__batch_full(b->batch, 5000, 1u << 20)) flush_batch(b);
}

/* Apply "level=L,wlog=W,..." to zc; false on an unknown name or a value
 * zstd refuses. */
static bool zstd_params(ZSTD_CCtx *zc, const char *spec) {
  static const struct {
    const char *name;
    ZSTD_cParameter p;
  } names[] = {{"level", ZSTD_c_compressionLevel}, {"wlog", ZSTD_c_windowLog},
               {"hlog", ZSTD_c_hashLog},           {"clog", ZSTD_c_chainLog},
               {"slog", ZSTD_c_searchLog},         {"mml", ZSTD_c_minMatch},
               {"tlen", ZSTD_c_targetLength},      {"strategy", ZSTD_c_strategy}};
  char buf[256];
  snprintf(buf, sizeof(buf), "%s", spec);
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(t, '=');
    if (!eq) return false;
    *eq = '\0';
    size_t i = 0;
    while (i < sizeof(names) / sizeof(names[0]) && strcmp(names[i].name, t)) i++;
    if (i == sizeof(names) / sizeof(names[0])) return false;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(zc, names[i].p, atoi(eq + 1)))) return false;
  }
  return true;
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

int main(int argc, char **argv) {
  const char *fmt_s = NULL, *path = NULL;
  int repeat = 5;
  long max_lines = 0;
  bool reference = false;
  const char *zspec = NULL;
  bench b = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--format") && i + 1 < argc) fmt_s = argv[++i];
    else if (!strcmp(argv[i], "--file") && i + 1 < argc) path = argv[++i];
    else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--lines") && i + 1 < argc) max_lines = atol(argv[++i]);
    else if (!strcmp(argv[i], "--reference")) reference = true;
    else if (!strcmp(argv[i], "--encode")) b.encode = true;
    else if (!strcmp(argv[i], "--encode-protobuf-c")) b.encode = b.encode_pbc = true;
    else if (!strcmp(argv[i], "--zstd") && i + 1 < argc) zspec = argv[++i], b.encode = true;
    else if (!strcmp(argv[i], "--verify")) b.verify = true;
    else path = NULL, i = argc;
  }
  if (!fmt_s || !path || repeat < 1 || repeat > 99 || pb_format_parse(fmt_s, &b.fmt) != CAIRN_OK ||
      (reference && b.fmt != CAIRN__FORMAT__FORMAT_DOCKER)) {
    fprintf(stderr, "usage: parse-bench --format cri|docker|auditd|k8s-audit --file PATH "
                    "[--repeat N] [--lines N] [--reference (docker)] [--encode] "
                    "[--encode-protobuf-c] [--zstd level=L,wlog=W,...] [--verify]\n");
    return 2;
  }
  size_t len = 0;
  uint8_t *data = read_file(path, &len);
  if (!data) {
    fprintf(stderr, "parse-bench: cannot read %s: %s\n", path, strerror(errno));
    return 2;
  }
  /* line starts; a last line without '\n' is left out, as the tailer does */
  size_t nl = 0, cap = 1 << 16, bytes = 0;
  size_t *starts = malloc(cap * sizeof(*starts));
  for (size_t off = 0; starts && off < len;) {
    uint8_t *e = memchr(data + off, '\n', len - off);
    if (!e) break;
    if (nl == cap) starts = realloc(starts, (cap *= 2) * sizeof(*starts));
    if (!starts) break;
    starts[nl++] = off;
    off = bytes = (size_t)(e - data) + 1;
    if (max_lines && nl == (size_t)max_lines) break;
  }
  if (!starts) return 2;

  col_meta_from_path(path, &b.meta);
  b.src = (col_rec_src){.node = "node-1", .path = path, .meta = &b.meta, .format = b.fmt, .file_stream = 1};
  double *rates = calloc((size_t)repeat, sizeof(*rates));
  double *cpu_rates = calloc((size_t)repeat, sizeof(*cpu_rates));
  for (int rep = 0; rep < repeat; rep++) {
    col_parser *p = NULL;
    if (col_parser_new(b.fmt, 0, &p) != CAIRN_OK) return 2;
    b.records = 0;
    b.out_bytes = 0;
    b.verified = 0;
    if (b.encode) {
      if (b.encode_pbc || b.verify) b.codec = pb_codec_new(1);
      if (!b.encode_pbc) b.pack = pb_pack_new(1);
      if (zspec) {
        b.zc = ZSTD_createCCtx();
        if (!b.zc || !zstd_params(b.zc, zspec)) {
          fprintf(stderr, "parse-bench: bad --zstd %s\n", zspec);
          return 2;
        }
      }
      b.batch = col__batch_new(1);
      if ((!b.codec && !b.pack) || !b.batch) return 2;
    }
    double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    for (size_t i = 0; i < nl; i++) {
      size_t s = starts[i];
      size_t e = i + 1 < nl ? starts[i + 1] - 1 : bytes - 1;
      cairn_err err = reference
                          ? col__docker_line_json(p, data + s, e - s, s, i + 1, on_rec, &b)
                          : col_parser_line(p, data + s, e - s, s, i + 1, on_rec, &b);
      if (err != CAIRN_OK) b.failed = 1;
    }
    if (col_parser_flush(p, true, on_rec, &b) != CAIRN_OK) b.failed = 1;
    if (b.encode) flush_batch(&b);
    double t1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    col_parser_free(p);
    if (b.encode) {
      col__batch_free(b.batch);
      pb_codec_free(b.codec);
      pb_pack_free(b.pack);
      ZSTD_freeCCtx(b.zc);
      b.zc = NULL;
      b.batch = NULL;
      b.codec = NULL;
      b.pack = NULL;
    }
    if (b.failed) {
      fprintf(stderr, "parse-bench: a parser or encoder call failed\n");
      return 1;
    }
    rates[rep] = (double)nl / (t1 - t0);
    cpu_rates[rep] = (double)nl / (c1 - c0);
    printf("run %d: %zu lines, %llu records in %.3f s (cpu %.3f s): %.0f lines/s, %.1f MB/s%s\n",
           rep + 1, nl, (unsigned long long)b.records, t1 - t0, c1 - c0, rates[rep],
           (double)bytes / (t1 - t0) / 1e6, b.encode ? " (with encode)" : "");
    fflush(stdout);
  }
  qsort(rates, (size_t)repeat, sizeof(*rates), cmp_double);
  qsort(cpu_rates, (size_t)repeat, sizeof(*cpu_rates), cmp_double);
  double med = rates[repeat / 2];
  printf("RESULT format=%s lines=%zu records=%llu bytes=%zu lines_per_s=%.0f mb_per_s=%.1f "
         "lines_per_cpu_s=%.0f out_bytes=%llu\n",
         fmt_s, nl, (unsigned long long)b.records, bytes, med, med * (double)bytes / (double)nl / 1e6,
         cpu_rates[repeat / 2],
         (unsigned long long)b.out_bytes);
  if (b.verify) printf("VERIFY records_decoded=%llu (last repeat)\n", (unsigned long long)b.verified);
  cairn_buf_fini(&b.raw);
  free(rates);
  free(cpu_rates);
  free(starts);
  free(data);
  return 0;
}
