/* tests/fuzz/gen_seeds.c: writes seed inputs for the fuzz targets.
 *   gen_seeds OUT            corpus-derived seeds from $CAIRN_CORPUS (cri/ and
 *                            docker/ files): OUT/frame, OUT/batch, OUT/time
 *   gen_seeds --minimal OUT  a few tiny hand-made seeds (what is committed
 *                            under tests/fuzz/seeds/)
 * Run by ctest as the fixture fuzz/gen-seeds before the fuzz/<name>-seeds
 * tests, and by tests/fuzz/run.sh. Exit 0 on success, 1 on any error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/timeparse.h"
#include "proto/proto.h"

#define GEN_MAX_RECORDS 1000

typedef struct gen {
  const char *out;   /* output root */
  pb_codec *codec;   /* owned */
  unsigned nfiles;   /* seed files written */
  unsigned ntimes;   /* time seeds written */
} gen;

/* Write n bytes to OUT/<dir>/<name>. false (message printed) on error. */
static int gen_write(gen *g, const char *dir, const char *name, const void *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", g->out, dir);
  if (mkdir(path, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "gen_seeds: mkdir %s: %s\n", path, strerror(errno));
    return 0;
  }
  snprintf(path, sizeof(path), "%s/%s/%s", g->out, dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
    fprintf(stderr, "gen_seeds: write %s: %s\n", path, strerror(errno));
    return 0;
  }
  g->nfiles++;
  return 1;
}

/* Write the batch seeds for recs: "\0"+zstd payload and "\1"+raw RecordBatch
 * (the two modes of fuzz_batch), and the frame seed: Hello, HelloAck, Batch
 * and Ack frames back to back, as one connection's receive buffer. */
static int gen_batch(gen *g, const char *stem, Cairn__Record **recs, size_t n) {
  int ok = 0;
  cairn_buf z = {0}, raw = {0}, frames = {0};
  uint64_t raw_size = 0;
  if (cairn_buf_append(&z, "\0", 1) || pb_batch_encode(g->codec, recs, n, &z, &raw_size)) {
    fprintf(stderr, "gen_seeds: encode %s: %s\n", stem, pb_codec_last_error(g->codec));
    goto out;
  }
  Cairn__RecordBatch rb = CAIRN__RECORD_BATCH__INIT;
  rb.n_records = n;
  rb.records = recs;
  size_t rawlen = cairn__record_batch__get_packed_size(&rb);
  if (cairn_buf_append(&raw, "\1", 1) || cairn_buf_reserve(&raw, rawlen)) goto out;
  raw.len += cairn__record_batch__pack(&rb, raw.ptr + raw.len);

  Cairn__Hello hello = CAIRN__HELLO__INIT;
  hello.protocol_version = PB_PROTOCOL_VERSION;
  hello.instance_id = "0123456789abcdef0123456789abcdef";
  hello.node_name = "node-1";
  hello.agent_version = "0.1.0";
  Cairn__HelloAck hack = CAIRN__HELLO_ACK__INIT;
  hack.protocol_version = PB_PROTOCOL_VERSION;
  hack.identity = "node-1";
  Cairn__Batch batch = CAIRN__BATCH__INIT;
  batch.seq = 1;
  batch.record_count = (uint32_t)n;
  batch.raw_size = raw_size;
  batch.payload.data = z.ptr + 1;
  batch.payload.len = z.len - 1;
  Cairn__Ack ack = CAIRN__ACK__INIT;
  ack.seq = 1;
  ack.stored = (uint32_t)n;
  Cairn__Envelope env[4] = {CAIRN__ENVELOPE__INIT, CAIRN__ENVELOPE__INIT, CAIRN__ENVELOPE__INIT,
                            CAIRN__ENVELOPE__INIT};
  env[0].msg_case = CAIRN__ENVELOPE__MSG_HELLO;
  env[0].hello = &hello;
  env[1].msg_case = CAIRN__ENVELOPE__MSG_HELLO_ACK;
  env[1].hello_ack = &hack;
  env[2].msg_case = CAIRN__ENVELOPE__MSG_BATCH;
  env[2].batch = &batch;
  env[3].msg_case = CAIRN__ENVELOPE__MSG_ACK;
  env[3].ack = &ack;
  for (int i = 0; i < 4; i++)
    if (pb_frame_append(&frames, &env[i])) goto out;

  char name[256];
  snprintf(name, sizeof(name), "%s.zst", stem);
  if (!gen_write(g, "batch", name, z.ptr, z.len)) goto out;
  snprintf(name, sizeof(name), "%s.raw", stem);
  if (!gen_write(g, "batch", name, raw.ptr, raw.len)) goto out;
  snprintf(name, sizeof(name), "%s.frames", stem);
  if (!gen_write(g, "frame", name, frames.ptr, frames.len)) goto out;
  ok = 1;
out:
  cairn_buf_fini(&z);
  cairn_buf_fini(&raw);
  cairn_buf_fini(&frames);
  return ok;
}

/* Seeds from one corpus log file: every line becomes a Record (the line as
 * message, its CRI timestamp as time) and its timestamp a time seed. */
static int gen_from_file(gen *g, const char *path, const char *stem, Cairn__Format fmt) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "gen_seeds: open %s: %s\n", path, strerror(errno));
    return 0;
  }
  Cairn__Record recs[GEN_MAX_RECORDS], *ptrs[GEN_MAX_RECORDS];
  char *lines[GEN_MAX_RECORDS];
  Cairn__Attr attr[GEN_MAX_RECORDS], *attrp[GEN_MAX_RECORDS];
  size_t n = 0;
  uint64_t off = 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int ok = 1;
  while (n < GEN_MAX_RECORDS && (len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] == '\n') line[--len] = '\0';
    off += (uint64_t)len + 1;
    Cairn__Record *r = &recs[n];
    cairn__record__init(r);
    lines[n] = malloc((size_t)len + 1);
    if (!lines[n]) {
      ok = 0;
      break;
    }
    memcpy(lines[n], line, (size_t)len + 1);
    r->message.data = (uint8_t *)lines[n];
    r->message.len = (size_t)len;
    r->source = CAIRN__SOURCE__SOURCE_CONTAINER;
    r->format = fmt;
    r->stream = CAIRN__LOG_STREAM__LOG_STREAM_STDOUT;
    r->node = "node-1";
    r->path = (char *)path;
    r->file_stream = 1;
    r->end_offset = off;
    r->fragments = 1;
    r->seq = n + 1;
    cairn__attr__init(&attr[n]);
    attr[n].key = "line";
    attr[n].value.data = (uint8_t *)lines[n];
    attr[n].value.len = (size_t)len < 8 ? (size_t)len : 8;
    attrp[n] = &attr[n];
    r->attrs = &attrp[n];
    r->n_attrs = 1;
    const char *sp = memchr(line, ' ', (size_t)len);
    if (fmt == CAIRN__FORMAT__FORMAT_CRI && sp) {
      size_t tl = (size_t)(sp - line);
      int64_t ns;
      if (cairn_time_parse_rfc3339(line, tl, &ns) == CAIRN_OK) r->time_ns = ns;
      char name[64];
      snprintf(name, sizeof(name), "t%03u", g->ntimes++);
      if (!gen_write(g, "time", name, line, tl)) ok = 0;
    }
    ptrs[n] = r;
    n++;
  }
  free(line);
  fclose(f);
  if (ok) ok = gen_batch(g, stem, ptrs, n);
  for (size_t i = 0; i < n; i++) free(lines[i]);
  return ok;
}

/* Walk dir recursively, making seeds from every regular file. */
static int gen_walk(gen *g, const char *dir, const char *prefix, Cairn__Format fmt) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "gen_seeds: cannot list %s: %s (set CAIRN_CORPUS)\n", dir, strerror(errno));
    return 0;
  }
  int ok = 1;
  unsigned idx = 0;
  struct dirent *de;
  while (ok && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char path[4096], stem[64];
    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
    snprintf(stem, sizeof(stem), "%s%u", prefix, idx++);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode))
      ok = gen_walk(g, path, stem, fmt);
    else if (S_ISREG(st.st_mode))
      ok = gen_from_file(g, path, stem, fmt);
  }
  closedir(d);
  return ok;
}

/* The committed seeds: tiny, readable in a hex dump. */
static int gen_minimal(gen *g) {
  Cairn__Record r = CAIRN__RECORD__INIT;
  r.time_ns = 1795860000123456789LL;
  r.source = CAIRN__SOURCE__SOURCE_CONTAINER;
  r.format = CAIRN__FORMAT__FORMAT_CRI;
  r.stream = CAIRN__LOG_STREAM__LOG_STREAM_STDERR;
  r.message.data = (uint8_t *)"hi";
  r.message.len = 2;
  r.kube_namespace = "ns";
  r.pod = "p";
  r.fragments = 1;
  Cairn__Record *one = &r;
  if (!gen_batch(g, "one", &one, 1)) return 0;
  if (!gen_batch(g, "empty", NULL, 0)) return 0;
  static const char *const times[] = {
      "2026-11-28T10:00:00Z", "2026-11-28T10:00:00.123456789+01:00", "2024-02-29t23:59:60z",
      "2026-11-28", "now", "15m", "250ms", "7d", "1w", "90s"};
  for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
    char name[32];
    snprintf(name, sizeof(name), "t%zu", i);
    if (!gen_write(g, "time", name, times[i], strlen(times[i]))) return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  int minimal = argc == 3 && strcmp(argv[1], "--minimal") == 0;
  if (argc != 2 && !minimal) {
    fprintf(stderr, "usage: gen_seeds [--minimal] OUTDIR   (corpus from $CAIRN_CORPUS)\n");
    return 1;
  }
  gen g = {.out = argv[argc - 1]};
  if (mkdir(g.out, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "gen_seeds: mkdir %s: %s\n", g.out, strerror(errno));
    return 1;
  }
  g.codec = pb_codec_new(3);
  if (!g.codec) return 1;
  int ok;
  if (minimal) {
    ok = gen_minimal(&g);
  } else {
    const char *corpus = getenv("CAIRN_CORPUS");
    char dir[4096];
    ok = corpus != NULL;
    if (!ok) fprintf(stderr, "gen_seeds: CAIRN_CORPUS is not set\n");
    if (ok) {
      snprintf(dir, sizeof(dir), "%s/cri", corpus);
      ok = gen_walk(&g, dir, "cri", CAIRN__FORMAT__FORMAT_CRI);
    }
    if (ok) {
      snprintf(dir, sizeof(dir), "%s/docker", corpus);
      ok = gen_walk(&g, dir, "docker", CAIRN__FORMAT__FORMAT_DOCKER);
    }
  }
  pb_codec_free(g.codec);
  printf("gen_seeds: %u seed files in %s\n", g.nfiles, g.out);
  return ok && g.nfiles > 0 ? 0 : 1;
}
