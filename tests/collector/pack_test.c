/* tests/collector/pack_test.c: the hand-written RecordBatch encoder
 * (proto/pack.h) gives exactly protobuf-c's bytes: packed RecordBatch and
 * zstd payload, for records the collector builds from the shared corpus
 * (every format, with and without redaction, truncated, fragments, invalid
 * UTF-8, unparsed lines) and for generated records with every field set or
 * unset at its edge values, attrs, unknown fields, huge messages and many
 * files per batch (the per-file field cache).
 * col__file_ref/unref are defined here (the runtime's versions free files). */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "collector/internal.h"
#include "collector/redact.h"
#include "proto/pack.h"

void col__file_ref(col_file *f) { f->refs++; }
void col__file_unref(col_file *f) { f->refs--; }

/* ---------------- comparison with protobuf-c ---------------- */

/* protobuf-c's bytes for RecordBatch{recs} appended to out. */
static void pbc_pack(Cairn__Record *const *recs, size_t n, cairn_buf *out) {
  Cairn__RecordBatch b = CAIRN__RECORD_BATCH__INIT;
  b.records = (Cairn__Record **)recs;
  b.n_records = n;
  size_t len = cairn__record_batch__get_packed_size(&b);
  assert_int_equal(cairn_buf_reserve(out, len + 1), CAIRN_OK);
  out->len += cairn__record_batch__pack(&b, out->ptr + out->len);
}

static void assert_bytes_equal(const cairn_buf *want, const cairn_buf *got, const char *what) {
  if (want->len != got->len)
    fail_msg("%s: %zu bytes from protobuf-c, %zu from pb_pack", what, want->len, got->len);
  for (size_t i = 0; i < want->len; i++)
    if (want->ptr[i] != got->ptr[i])
      fail_msg(
          "%s: first difference at byte %zu of %zu (0x%02x from protobuf-c, 0x%02x from pb_pack)",
          what, i, want->len, want->ptr[i], got->ptr[i]);
}

/* recs[0..n) packed and encoded by both encoders: same packed bytes (also
 * when appended after existing bytes), same zstd payload, same raw size. */
static void assert_same(pb_pack *pk, Cairn__Record *const *recs, size_t n) {
  cairn_buf want, got;
  cairn_buf_init(&want);
  cairn_buf_init(&got);
  pbc_pack(recs, n, &want);
  assert_int_equal(pb_pack_batch(pk, recs, n, &got), CAIRN_OK);
  assert_bytes_equal(&want, &got, "packed RecordBatch");
  assert_string_equal(pb_pack_last_error(pk), "");

  /* appending keeps what out held */
  cairn_buf_reset(&got);
  assert_int_equal(cairn_buf_append(&got, "xyz", 3), CAIRN_OK);
  assert_int_equal(pb_pack_batch(pk, recs, n, &got), CAIRN_OK);
  assert_int_equal(got.len, want.len + 3);
  assert_memory_equal(got.ptr, "xyz", 3);
  if (want.len) assert_memory_equal(got.ptr + 3, want.ptr, want.len);

  static pb_codec *codec; /* one for the whole run (contexts are reused, as in the collector) */
  if (!codec) codec = pb_codec_new(1);
  assert_non_null(codec);
  uint64_t raw_want = 0, raw_got = 0;
  cairn_buf_reset(&want);
  cairn_buf_reset(&got);
  assert_int_equal(pb_batch_encode(codec, recs, n, &want, &raw_want), CAIRN_OK);
  assert_int_equal(pb_pack_encode(pk, recs, n, &got, &raw_got), CAIRN_OK);
  assert_int_equal(raw_got, raw_want);
  assert_bytes_equal(&want, &got, "zstd payload");
  cairn_buf_fini(&want);
  cairn_buf_fini(&got);
}

/* ---------------- corpus records through col__batch_add ---------------- */

typedef struct corpus_file {
  char path[4096];
  Cairn__Format fmt;
  col_meta meta;
  col_rec_src src;
} corpus_file;

typedef struct files {
  corpus_file *v;
  size_t n;
} files;

static void files_add(files *fs, const char *path, Cairn__Format fmt) {
  fs->v = realloc(fs->v, (fs->n + 1) * sizeof(*fs->v));
  assert_non_null(fs->v);
  corpus_file *f = &fs->v[fs->n++];
  memset(f, 0, sizeof(*f));
  snprintf(f->path, sizeof(f->path), "%s", path);
  f->fmt = fmt;
}

/* Every *.log under dir (recursively) as format fmt. */
static void files_scan(files *fs, const char *dir, Cairn__Format fmt) {
  DIR *d = opendir(dir);
  if (!d) fail_msg("cannot open corpus directory %s", dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    size_t l = strlen(e->d_name);
    if (S_ISDIR(st.st_mode))
      files_scan(fs, p, fmt);
    else if (l > 4 && !strcmp(e->d_name + l - 4, ".log"))
      files_add(fs, p, fmt);
  }
  closedir(d);
}

static files corpus_files(void) {
  const char *root = getenv("CAIRN_CORPUS");
  if (!root || !*root) fail_msg("CAIRN_CORPUS is not set: run through ctest");
  files fs = {0};
  char d[4096];
  static const struct {
    const char *dir;
    Cairn__Format fmt;
  } kinds[] = {{"cri", CAIRN__FORMAT__FORMAT_CRI},
               {"docker", CAIRN__FORMAT__FORMAT_DOCKER},
               {"audit", CAIRN__FORMAT__FORMAT_AUDITD},
               {"k8s-audit", CAIRN__FORMAT__FORMAT_K8S_AUDIT}};
  for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
    snprintf(d, sizeof(d), "%s/%s", root, kinds[k].dir);
    size_t before = fs.n;
    files_scan(&fs, d, kinds[k].fmt);
    if (fs.n == before) fail_msg("no *.log files under %s", d);
  }
  for (size_t i = 0; i < fs.n; i++) {
    corpus_file *f = &fs.v[i];
    col_meta_from_path(f->path, &f->meta);
    f->src = (col_rec_src){"node-1", f->path, &f->meta, f->fmt, 1000 + i};
  }
  return fs;
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  uint8_t *d = malloc((size_t)n + 1);
  assert_non_null(d);
  assert_int_equal(fread(d, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return d;
}

typedef struct adder {
  col_batch *b;
  const col_rec_src *src;
} adder;

static void on_rec(const col_rec *r, void *ud) {
  adder *a = ud;
  assert_int_equal(col__batch_add(a->b, a->src, r), CAIRN_OK);
}

/* Feed len bytes of lines to a fresh parser of src's format (records cut at
 * max_record, 0 = the default) and add every record to b. */
static void feed_lines(col_batch *b, const col_rec_src *src, const uint8_t *d, size_t len,
                       size_t max_record) {
  col_parser *p = NULL;
  assert_int_equal(col_parser_new(src->format, max_record, &p), CAIRN_OK);
  adder a = {b, src};
  uint64_t no = 0;
  for (size_t off = 0; off < len;) {
    const uint8_t *e = memchr(d + off, '\n', len - off);
    size_t l = e ? (size_t)(e - (d + off)) : len - off;
    assert_int_equal(col_parser_line(p, d + off, l, off, ++no, on_rec, &a), CAIRN_OK);
    off += l + 1;
  }
  assert_int_equal(col_parser_flush(p, true, on_rec, &a), CAIRN_OK);
  col_parser_free(p);
}

/* Lines every parser sees besides its corpus file: fragments, invalid
 * UTF-8, empty and unparsed lines, secrets for the redactor. */
static const char extra_lines[] =
    "2024-01-15T10:00:00.100000000Z stdout P first half, \n"
    "2024-01-15T10:00:00.200000000Z stderr F other stream\n"
    "2024-01-15T10:00:00.300000000Z stdout P second part, \n"
    "2024-01-15T10:00:00.400000000Z stdout F last part\n"
    "2024-01-15T10:00:00.500000000Z stdout F bad \xff\xfe utf-8 \xc3\n"
    "2024-01-15T10:00:00.600000000Z stdout F \n"
    "not a log line at all\n"
    "\xff\xff\xff\n"
    "\n"
    "{\"log\":\"password=hunter2 "
    "\\u00e9\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-15T10:00:00.7Z\","
    "\"attrs\":{\"tag\":\"v1\"}}\n"
    "2024-01-15T10:00:00.800000000Z stdout F Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig "
    "password=hunter2 AKIAIOSFODNN7EXAMPLE\n"
    "type=SYSCALL msg=audit(1705312800.123:42): arch=c000003e syscall=59 success=yes exit=0 "
    "a0=1 items=1 ppid=1 pid=2 auid=1000 uid=0 comm=\"sh\" exe=\"/bin/sh\" key=\"exec\"\n"
    "type=EOE msg=audit(1705312800.123:42): \n"
    "type=SYSCALL msg=audit(1705312800.200:50): syscall=2 success=no\n";

/* All corpus files into one batch (many files: the per-file cache switches
 * between them), each with the extra lines, at max_record. */
static void corpus_batch_same(col_redactor *rd, size_t max_record) {
  files fs = corpus_files();
  col_batch *b = col__batch_new(1);
  assert_non_null(b);
  b->redact = rd;
  for (size_t i = 0; i < fs.n; i++) {
    size_t len = 0;
    uint8_t *d = slurp(fs.v[i].path, &len);
    feed_lines(b, &fs.v[i].src, d, len, max_record);
    feed_lines(b, &fs.v[i].src, (const uint8_t *)extra_lines, sizeof(extra_lines) - 1, max_record);
    free(d);
  }
  assert_true(b->n > 100);
  /* what the test means to cover is there */
  uint32_t flags = 0;
  bool frag = false, attrs = false, docker_attrs = false;
  for (size_t i = 0; i < b->n; i++) {
    flags |= b->recs[i]->flags;
    frag |= b->recs[i]->fragments > 1;
    attrs |= b->recs[i]->n_attrs > 3;
    for (size_t k = 0; k < b->recs[i]->n_attrs; k++)
      docker_attrs |= !strcmp(b->recs[i]->attrs[k]->key, "attrs");
  }
  assert_true(flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED);
  assert_true(flags & CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8);
  if (max_record) assert_true(flags & CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED);
  assert_true(frag && attrs && docker_attrs);

  pb_pack *pk = pb_pack_new(1);
  assert_non_null(pk);
  assert_same(pk, b->recs, b->n);
  /* and every run of records alone (batches cut anywhere) */
  for (size_t i = 0; i < b->n; i += 97) assert_same(pk, b->recs + i, b->n - i < 97 ? b->n - i : 97);
  pb_pack_free(pk);
  col__batch_free(b);
  free(fs.v);
}

static void pack_matches_protobuf_c_on_corpus_records(void **state) {
  (void)state;
  corpus_batch_same(NULL, 0);
}

static void pack_matches_protobuf_c_on_truncated_corpus_records(void **state) {
  (void)state;
  corpus_batch_same(NULL, 40);
}

static void pack_matches_protobuf_c_on_redacted_corpus_records(void **state) {
  (void)state;
  col_redactor *rd = NULL;
  char err[256];
  assert_int_equal(col__redactor_new(true, NULL, 0, &rd, err, sizeof(err)), CAIRN_OK);
  assert_non_null(rd);
  corpus_batch_same(rd, 0);
  assert_true(col__redactor_records(rd) > 0); /* something was masked */
  col__redactor_free(rd);
}

/* The collector's two encode calls give one payload. */
static void batch_encode_pack_gives_the_payload_of_batch_encode(void **state) {
  (void)state;
  files fs = corpus_files();
  col_batch *b1 = col__batch_new(1), *b2 = col__batch_new(2);
  assert_non_null(b1);
  assert_non_null(b2);
  for (size_t i = 0; i < fs.n; i++) {
    size_t len = 0;
    uint8_t *d = slurp(fs.v[i].path, &len);
    feed_lines(b1, &fs.v[i].src, d, len, 0);
    feed_lines(b2, &fs.v[i].src, d, len, 0);
    free(d);
  }
  /* unparsed records are stamped with the read time: make both batches equal */
  assert_int_equal(b1->n, b2->n);
  for (size_t i = 0; i < b1->n; i++) b2->recs[i]->time_ns = b1->recs[i]->time_ns;
  size_t n = b1->n;
  pb_codec *codec = pb_codec_new(1);
  pb_pack *pk = pb_pack_new(1);
  assert_int_equal(col__batch_encode(b1, codec), CAIRN_OK);
  assert_int_equal(col__batch_encode_pack(b2, pk), CAIRN_OK);
  assert_null(b2->recs); /* record memory released as before */
  assert_int_equal(b2->n, n);
  assert_int_equal(b2->raw_size, b1->raw_size);
  assert_bytes_equal(&b1->payload, &b2->payload, "batch payload");

  /* and it decodes to the records */
  cairn_arena a;
  cairn_arena_init(&a, 0);
  pb_limits lim;
  pb_limits_default(&lim);
  Cairn__RecordBatch *rb = NULL;
  assert_int_equal(pb_batch_decode(codec, b2->payload.ptr, b2->payload.len, &lim, &a, &rb),
                   CAIRN_OK);
  assert_int_equal(rb->n_records, n);
  assert_string_equal(rb->records[0]->node, "node-1");
  assert_string_equal(rb->records[n - 1]->path, fs.v[fs.n - 1].path);
  cairn_arena_fini(&a);
  pb_pack_free(pk);
  pb_codec_free(codec);
  col__batch_free(b1);
  col__batch_free(b2);
  free(fs.v);
}

/* ---------------- generated records ---------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
static size_t pick(size_t n) { return (size_t)(rnd() % n); }

static char long_str[300], hex64[65];
static uint8_t bytes_pool[20000];

static void pools_init(void) {
  memset(long_str, 'p', sizeof(long_str) - 1);
  for (int i = 0; i < 64; i++) hex64[i] = "0123456789abcdef"[i % 16];
  for (size_t i = 0; i < sizeof(bytes_pool); i++) bytes_pool[i] = (uint8_t)rnd();
}

/* A string field: NULL, "", a shared pointer, or a fresh copy (same text
 * at another address) from arena a. */
static char *gen_str(cairn_arena *a) {
  static const char *const shared[] = {"payments", "api-5f9c7d8b6-zq4wn", "a", "x-y_z.1"};
  switch (pick(7)) {
  case 0: return NULL;
  case 1: return "";
  case 2: return long_str;
  case 3: return hex64;
  case 4: return cairn_arena_strndup(a, hex64, pick(65));
  default: return (char *)shared[pick(4)];
  }
}

static uint64_t gen_u64(void) {
  static const uint64_t edge[] = {
      0, 1, 127, 128, 16383, 16384, UINT32_MAX, (uint64_t)1 << 63, UINT64_MAX};
  return pick(3) ? edge[pick(sizeof(edge) / sizeof(edge[0]))] : rnd() >> pick(64);
}

static int gen_enum(void) {
  static const int v[] = {0, 1, 2, 3, 4, 127, 128, -1, INT_MIN, INT_MAX};
  return pick(3) ? v[pick(5)] : v[pick(sizeof(v) / sizeof(v[0]))];
}

/* message/value bytes: unset (len 0, data NULL), empty with data set, or
 * some bytes around the varint length boundaries */
static void gen_bytes(ProtobufCBinaryData *d) {
  static const size_t lens[] = {0, 0, 1, 2, 127, 128, 129, 300, 16383, 16384, 16385};
  size_t l = lens[pick(sizeof(lens) / sizeof(lens[0]))];
  d->len = l;
  d->data = l || pick(2) ? bytes_pool + pick(sizeof(bytes_pool) - l) : NULL;
}

static void gen_record(Cairn__Record *r, cairn_arena *a) {
  cairn__record__init(r);
  r->time_ns = pick(2) ? (int64_t)gen_u64() : 0;
  if (pick(4) == 0) r->time_ns = -(int64_t)pick(1000000) - 1; /* before 1970 */
  r->source = (Cairn__Source)gen_enum();
  r->stream = (Cairn__LogStream)gen_enum();
  r->flags = pick(2) ? (uint32_t)gen_u64() : (uint32_t)pick(8);
  gen_bytes(&r->message);
  r->kube_namespace = gen_str(a);
  r->pod = gen_str(a);
  r->container = gen_str(a);
  r->container_id = gen_str(a);
  r->pod_uid = gen_str(a);
  r->node = gen_str(a);
  r->path = gen_str(a);
  r->file_stream = gen_u64();
  r->end_offset = gen_u64();
  r->fragments = (uint32_t)gen_u64();
  r->format = (Cairn__Format)gen_enum();
  static const size_t na[] = {0, 0, 1, 3, 20, 130};
  r->n_attrs = na[pick(sizeof(na) / sizeof(na[0]))];
  bool small = r->n_attrs > 20; /* keep a record with many attrs to a few hundred KB */
  if (r->n_attrs) {
    r->attrs = cairn_arena_alloc(a, r->n_attrs * sizeof(*r->attrs));
    assert_non_null(r->attrs);
    for (size_t i = 0; i < r->n_attrs; i++) {
      Cairn__Attr *at = cairn_arena_alloc(a, sizeof(*at));
      assert_non_null(at);
      cairn__attr__init(at);
      at->key = gen_str(a);
      gen_bytes(&at->value);
      if (small && at->value.len > 300) at->value.len = 300;
      r->attrs[i] = at;
    }
  }
  r->identity = pick(3) ? "" : gen_str(a);
  r->instance_id = pick(3) ? "" : gen_str(a);
  r->ingest_ns = pick(3) ? 0 : (int64_t)gen_u64();
  r->seq = pick(3) ? 0 : gen_u64();
}

static void pack_matches_protobuf_c_on_generated_records(void **state) {
  (void)state;
  pools_init();
  pb_pack *pk = pb_pack_new(1);
  assert_non_null(pk);
  cairn_arena a;
  cairn_arena_init(&a, 0);
  enum { N = 300 };
  Cairn__Record recs[N], *rp[N];
  for (int round = 0; round < 12; round++) {
    cairn_arena_reset(&a);
    for (size_t i = 0; i < N; i++) {
      gen_record(&recs[i], &a);
      rp[i] = &recs[i];
    }
    assert_same(pk, rp, N);
    for (size_t i = 0; i < N; i += 1 + pick(50)) assert_same(pk, rp + i, 1);
  }
  cairn_arena_fini(&a);
  pb_pack_free(pk);
}

/* Every field alone, at every edge value: a record holding only that field. */
static void pack_matches_protobuf_c_field_by_field(void **state) {
  (void)state;
  pools_init();
  pb_pack *pk = pb_pack_new(1);
  static const uint64_t u[] = {0,
                               1,
                               127,
                               128,
                               255,
                               16383,
                               16384,
                               INT32_MAX,
                               UINT32_MAX,
                               (uint64_t)INT64_MAX,
                               (uint64_t)INT64_MIN,
                               UINT64_MAX};
  static const int e[] = {0, 1, 4, 127, 128, -1, INT_MIN, INT_MAX};
  Cairn__Record r;
  Cairn__Record *rp = &r;
  for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
    Cairn__Record *f[6];
    for (int k = 0; k < 6; k++) {
      cairn__record__init(&r);
      switch (k) {
      case 0: r.time_ns = (int64_t)u[i]; break;
      case 1: r.flags = (uint32_t)u[i]; break;
      case 2: r.file_stream = u[i]; break;
      case 3: r.end_offset = u[i]; break;
      case 4: r.fragments = (uint32_t)u[i]; break;
      default: r.ingest_ns = (int64_t)u[i], r.seq = u[i]; break;
      }
      f[k] = rp;
      assert_same(pk, f + k, 1);
    }
  }
  for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
    cairn__record__init(&r);
    r.source = (Cairn__Source)e[i];
    assert_same(pk, &rp, 1);
    cairn__record__init(&r);
    r.stream = (Cairn__LogStream)e[i];
    assert_same(pk, &rp, 1);
    cairn__record__init(&r);
    r.format = (Cairn__Format)e[i];
    assert_same(pk, &rp, 1);
  }
  char *const strs[] = {NULL, "", "x", long_str, hex64};
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
    char **fields[] = {&r.kube_namespace, &r.pod,  &r.container, &r.container_id, &r.pod_uid,
                       &r.node,           &r.path, &r.identity,  &r.instance_id};
    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
      cairn__record__init(&r);
      *fields[k] = strs[i];
      assert_same(pk, &rp, 1);
    }
  }
  /* bytes: unset, empty with a pointer (protobuf-c omits both), set */
  static const uint8_t one = 'z';
  const ProtobufCBinaryData bins[] = {{0, NULL}, {0, (uint8_t *)&one}, {1, (uint8_t *)&one}};
  for (size_t i = 0; i < 3; i++) {
    cairn__record__init(&r);
    r.message = bins[i];
    assert_same(pk, &rp, 1);
    Cairn__Attr at = CAIRN__ATTR__INIT, *ap = &at;
    at.value = bins[i];
    cairn__record__init(&r);
    r.attrs = &ap;
    r.n_attrs = 1;
    assert_same(pk, &rp, 1); /* an empty attr is still packed */
    at.key = "k";
    assert_same(pk, &rp, 1);
    at.key = NULL;
    assert_same(pk, &rp, 1);
  }
  /* the empty record and the empty batch */
  cairn__record__init(&r);
  assert_same(pk, &rp, 1);
  assert_same(pk, &rp, 0);
  pb_pack_free(pk);
}

/* Records around the 2 MiB varint boundary of the record length and
 * messages near the collector's limits (16 MiB frame). */
static void pack_matches_protobuf_c_on_huge_messages(void **state) {
  (void)state;
  size_t big = (16u << 20) + 3;
  uint8_t *m = malloc(big);
  assert_non_null(m);
  for (size_t i = 0; i < big; i++) m[i] = (uint8_t)(i * 131 + (i >> 9));
  pb_pack *pk = pb_pack_new(1);
  Cairn__Record r[6], *rp[6];
  const size_t lens[] = {(1u << 21) - 60, (1u << 21) - 3, (1u << 21),
                         (1u << 21) + 1,  16u << 20,      big};
  for (int i = 0; i < 6; i++) {
    cairn__record__init(&r[i]);
    r[i].time_ns = 1705312800000000000LL;
    r[i].message.data = m;
    r[i].message.len = lens[i];
    r[i].pod = "pod";
    r[i].path = "/var/log/containers/x.log";
    r[i].end_offset = UINT64_MAX;
    rp[i] = &r[i];
  }
  for (int i = 0; i < 6; i++) assert_same(pk, rp + i, 1);
  /* only the packed bytes for all together (zstd of 37 MiB twice is slow under ASan) */
  cairn_buf want, got;
  cairn_buf_init(&want);
  cairn_buf_init(&got);
  pbc_pack(rp, 6, &want);
  assert_int_equal(pb_pack_batch(pk, rp, 6, &got), CAIRN_OK);
  assert_bytes_equal(&want, &got, "huge batch");
  cairn_buf_fini(&want);
  cairn_buf_fini(&got);
  pb_pack_free(pk);
  free(m);
}

/* More files than the cache has slots, and more field bytes than it keeps:
 * records cycle through 40 files with 4 KB paths. */
static void pack_matches_protobuf_c_with_many_files_per_batch(void **state) {
  (void)state;
  enum { FILES = 40, N = 2000 };
  static char paths[FILES][4096];
  static char pods[FILES][32];
  Cairn__Record *recs = calloc(N, sizeof(*recs));
  Cairn__Record **rp = calloc(N, sizeof(*rp));
  assert_non_null(recs);
  assert_non_null(rp);
  for (int f = 0; f < FILES; f++) {
    memset(paths[f], 'a' + f % 26, sizeof(paths[f]) - 1);
    snprintf(pods[f], sizeof(pods[f]), "pod-%d", f);
  }
  for (size_t i = 0; i < N; i++) {
    /* runs of one file, then a jump; sometimes round robin over all */
    size_t f = i < N / 2 ? (i / 7) % FILES : i % FILES;
    cairn__record__init(&recs[i]);
    recs[i].time_ns = (int64_t)i;
    recs[i].message.data = (uint8_t *)"msg";
    recs[i].message.len = 3;
    recs[i].kube_namespace = "ns";
    recs[i].pod = pods[f];
    recs[i].path = paths[f];
    recs[i].node = "node-1";
    recs[i].format = CAIRN__FORMAT__FORMAT_CRI;
    rp[i] = &recs[i];
  }
  pb_pack *pk = pb_pack_new(1);
  assert_same(pk, rp, N);
  /* the same pointers with other text between two calls: nothing is cached across calls */
  assert_same(pk, rp, 10);
  memset(paths[0], 'Z', 100);
  assert_same(pk, rp, 10);
  pb_pack_free(pk);
  free(recs);
  free(rp);
}

/* Records that differ in one of the seven per-file strings only (by pointer
 * and text) never share a cached block. */
static void pack_cache_tells_apart_records_differing_in_one_file_field(void **state) {
  (void)state;
  pb_pack *pk = pb_pack_new(1);
  assert_non_null(pk);
  Cairn__Record r[4], *rp[4];
  for (int k = 0; k < 7; k++) {
    for (int i = 0; i < 4; i++) {
      cairn__record__init(&r[i]);
      char **f[] = {&r[i].kube_namespace, &r[i].pod,  &r[i].container, &r[i].container_id,
                    &r[i].pod_uid,        &r[i].node, &r[i].path};
      for (int j = 0; j < 7; j++) *f[j] = "same";
      *f[k] = i % 2 ? "one" : "other";
      r[i].end_offset = (uint64_t)i + 1;
      rp[i] = &r[i];
    }
    assert_same(pk, rp, 4);
  }
  pb_pack_free(pk);
}

/* Unknown fields (only on records that were decoded) are packed by
 * protobuf-c itself after the known ones: still the same bytes. */
static void pack_matches_protobuf_c_with_unknown_fields(void **state) {
  (void)state;
  uint8_t data[] = {0x05};
  ProtobufCMessageUnknownField uf = {
      .tag = 30, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT, .len = 1, .data = data};
  Cairn__Record r[3], *rp[3];
  Cairn__Attr at = CAIRN__ATTR__INIT, *ap = &at;
  for (int i = 0; i < 3; i++) {
    cairn__record__init(&r[i]);
    r[i].time_ns = 5;
    r[i].pod = "p";
    r[i].message.data = data;
    r[i].message.len = 1;
    rp[i] = &r[i];
  }
  r[0].base.n_unknown_fields = 1;
  r[0].base.unknown_fields = &uf;
  at.key = "k";
  at.base.n_unknown_fields = 1;
  at.base.unknown_fields = &uf;
  r[2].attrs = &ap;
  r[2].n_attrs = 1;
  pb_pack *pk = pb_pack_new(1);
  assert_same(pk, rp, 3);
  pb_pack_free(pk);
}

/* A record with none of the seven per-file strings, first thing a new packer
 * sees: it matches the unused cache slot before the slot buffer was ever
 * allocated (pb_pack computed NULL + 0 there, which clang's UBSan reports;
 * found by tests/fuzz/fuzz_pack.c, seed
 * regress-empty-file-fields-fresh-packer). */
static void pack_handles_record_without_file_fields_on_new_packer(void **state) {
  (void)state;
  Cairn__Record r[2], *rp[2] = {&r[0], &r[1]};
  cairn__record__init(&r[0]);
  r[0].kube_namespace = r[0].pod = r[0].container = r[0].container_id = NULL;
  r[0].pod_uid = r[0].node = r[0].path = NULL;
  r[0].time_ns = 7;
  r[0].message.data = (uint8_t *)"m";
  r[0].message.len = 1;
  r[1] = r[0];
  r[1].pod = "p"; /* then a record that does fill the cache */
  for (size_t n = 1; n <= 2; n++) {
    pb_pack *pk = pb_pack_new(1);
    assert_non_null(pk);
    assert_same(pk, rp, n);
    pb_pack_free(pk);
  }
  cairn__record__init(&r[0]); /* "" strings, no fields at all */
  pb_pack *pk = pb_pack_new(1);
  assert_non_null(pk);
  assert_same(pk, rp, 1);
  pb_pack_free(pk);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pack_matches_protobuf_c_on_corpus_records),
      cmocka_unit_test(pack_matches_protobuf_c_on_truncated_corpus_records),
      cmocka_unit_test(pack_matches_protobuf_c_on_redacted_corpus_records),
      cmocka_unit_test(batch_encode_pack_gives_the_payload_of_batch_encode),
      cmocka_unit_test(pack_matches_protobuf_c_on_generated_records),
      cmocka_unit_test(pack_matches_protobuf_c_field_by_field),
      cmocka_unit_test(pack_matches_protobuf_c_on_huge_messages),
      cmocka_unit_test(pack_matches_protobuf_c_with_many_files_per_batch),
      cmocka_unit_test(pack_cache_tells_apart_records_differing_in_one_file_field),
      cmocka_unit_test(pack_matches_protobuf_c_with_unknown_fields),
      cmocka_unit_test(pack_handles_record_without_file_fields_on_new_packer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
