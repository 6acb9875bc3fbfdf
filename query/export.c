/* query/export.c: `cairn-query export`: an evidence bundle for one query,
 * a directory an auditor can check offline with only the public key:
 *   records.jsonl  the matching records, one pb_record_json line each, seq order
 *   records.bin    the same records exactly as stored: seq || length || bytes
 *   manifest.json  query, exporter, counts, file hashes, and the proof
 *   report.html    a self-contained page for a browser (report.c)
 *
 * The proof is a list of segments. Each starts at a link covering exported
 * records (with the stored hash of the link before it as anchor) and runs
 * to the first signed checkpoint at or after it. A covering link carries the
 * leaf hashes of ALL its records (never the content of records outside the
 * query); a link in between carries only its digest. The exporter recomputes
 * every link from the stored records while writing, so a tampered store is
 * caught here, and finally checks the finished bundle exactly as
 * verify-export does (export_verify.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/arena.h"
#include "common/timeparse.h"
#include "query/internal.h"

#define PROGRESS_MIN_NS (200LL * 1000000LL) /* redraw the TTY progress line at most 5x/s */
#define HIST_MAX_BUCKETS 60u

typedef struct exporter {
  const qry_opts *o;        /* borrowed */
  const qry_env *env;       /* borrowed */
  sto_env *sto;             /* owned */
  uint64_t *seqs;           /* owned: matching seqs, sorted ascending */
  size_t n, cap;
  size_t next;              /* index of the next seq to write */
  FILE *jsonl, *bin;        /* owned while writing */
  cairn_buf line;           /* scratch: one JSON line */
  cairn_arena arena;        /* scratch: one decoded record */
  json_t *precords;         /* proof.records (owned by the manifest once added) */
  json_t *by_source, *by_namespace, *by_node;
  int64_t *times;           /* owned: event time of each written record */
  /* the link being read */
  uint64_t position;
  cairn_buf leaves;         /* its leaves, STO_HASH_LEN each */
  cairn_err cb_err;         /* first failure inside a record callback */
  int cb_errno;
  bool made_dir;            /* export created out_dir (removed again on failure) */
  bool created;             /* files may exist in out_dir */
  bool complete;            /* manifest.json written: keep the bundle */
  /* progress on a TTY */
  uint64_t done;            /* records read */
  int64_t last_draw;
  bool drawn;
} exporter;

static int fail_io(exporter *x, const char *what, const char *path) {
  fprintf(x->env->err, "cairn-query export: %s %s: %s\n", what, path, strerror(errno));
  return QRY_EXIT_USAGE;
}

static void progress(exporter *x, bool force) {
  if (!x->env->err_is_tty) return;
  int64_t now = cairn_time_mono_ns();
  if (!force && now - x->last_draw < PROGRESS_MIN_NS) return;
  x->last_draw = now;
  fprintf(x->env->err, "\rexport: %zu/%zu records written, %llu read for the proof", x->next,
          x->n, (unsigned long long)x->done);
  fflush(x->env->err);
  x->drawn = true;
}

/* ---- 1: the query ---- */

static bool on_match(const Cairn__Record *r, void *ud) {
  exporter *x = ud;
  if (x->n == x->cap) {
    size_t nc = x->cap ? x->cap * 2 : 1024;
    uint64_t *s = realloc(x->seqs, nc * sizeof(*s));
    if (!s) {
      x->cb_err = CAIRN_E_NOMEM;
      return false;
    }
    x->seqs = s;
    x->cap = nc;
  }
  x->seqs[x->n++] = r->seq;
  if (x->env->err_is_tty && x->n % 65536 == 0) {
    fprintf(x->env->err, "\rexport: %zu matching records", x->n);
    x->drawn = true;
  }
  return true;
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* ---- 2: records and proof ---- */

static void count_add(json_t *o, const char *v) {
  json_t *j = json_object_get(o, v);
  json_object_set_new(o, v, json_integer(j ? json_integer_value(j) + 1 : 1));
}

/* Write one exported record (bytes as stored) to both record files. */
static cairn_err write_record(exporter *x, uint64_t seq, const uint8_t *p, size_t n,
                              const uint8_t *leaf) {
  uint8_t hdr[16];
  for (int i = 0; i < 8; i++) {
    hdr[i] = (uint8_t)(seq >> (56 - 8 * i));
    hdr[8 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
  }
  if (fwrite(hdr, 1, 16, x->bin) != 16 || fwrite(p, 1, n, x->bin) != n) return CAIRN_E_IO;
  Cairn__Record *r = NULL;
  cairn_arena_reset(&x->arena);
  cairn_buf_reset(&x->line);
  cairn_err e = pb_record_unpack(p, n, &x->arena, &r);
  if (e != CAIRN_OK) return e == CAIRN_E_NOMEM ? e : CAIRN_E_CORRUPT;
  if ((e = pb_record_json(r, &x->line)) != CAIRN_OK) return e;
  if ((e = cairn_buf_append(&x->line, "\n", 1)) != CAIRN_OK) return e;
  if (fwrite(x->line.ptr, 1, x->line.len, x->jsonl) != x->line.len) return CAIRN_E_IO;
  const char *src = pb_source_name(r->source);
  count_add(x->by_source, *src ? src : "unknown");
  count_add(x->by_namespace, r->kube_namespace && *r->kube_namespace ? r->kube_namespace : "-");
  count_add(x->by_node, r->node && *r->node ? r->node : "-");
  x->times[x->next] = r->time_ns;
  char hex[2 * STO_HASH_LEN + 1];
  qry__hex(leaf, STO_HASH_LEN, hex);
  json_t *e1 = json_pack("{s:I, s:I, s:s}", "seq", (json_int_t)seq, "position",
                         (json_int_t)x->position, "leaf", hex);
  if (!e1 || json_array_append_new(x->precords, e1) != 0) return CAIRN_E_NOMEM;
  return CAIRN_OK;
}

static bool on_raw(uint64_t seq, const uint8_t *p, size_t n, void *ud) {
  exporter *x = ud;
  uint8_t leaf[STO_HASH_LEN];
  cairn_err e = sto_leaf_hash(seq, p, n, leaf);
  if (e == CAIRN_OK) e = cairn_buf_append(&x->leaves, leaf, sizeof(leaf));
  if (e == CAIRN_OK && x->next < x->n && x->seqs[x->next] == seq) {
    e = write_record(x, seq, p, n, leaf);
    if (e == CAIRN_E_IO) x->cb_errno = errno;
    x->next++;
  }
  x->done++;
  if (x->done % 4096 == 0) progress(x, false);
  if (e != CAIRN_OK) {
    x->cb_err = e;
    return false;
  }
  return true;
}

static int store_failed(exporter *x, const char *what, cairn_err e) {
  fprintf(x->env->err, "cairn-query export: %s: reading %s failed: %s (%s); check --data\n",
          x->o->data_dir, what, cairn_err_name(e), cairn_err_str(e));
  return QRY_EXIT_USAGE;
}

static int store_tampered(exporter *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The store disagrees with its own chain: never export from it silently. */
static int store_tampered(exporter *x, const char *fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  fprintf(x->env->err,
          "cairn-query export: TAMPERED: %s; nothing was exported as proven: run cairn-query "
          "verify --data %s for the details\n",
          what, x->o->data_dir);
  return QRY_EXIT_VERIFY_FAILED;
}

/* Read link l's records, write the exported ones, recompute its hash from
 * prev (updated to it) and append the link's proof object to links. */
static int do_link(exporter *x, const sto_link *l, uint8_t *prev, json_t *links) {
  bool covering = x->next < x->n && x->seqs[x->next] <= l->last_seq;
  x->position = l->position;
  cairn_buf_reset(&x->leaves);
  uint64_t missing = 0;
  char *hex = NULL;
  cairn_err e = sto_records_raw(x->sto, l->first_seq, l->last_seq, on_raw, x, &missing);
  int rc = QRY_EXIT_OK;
  if (x->cb_err == CAIRN_E_IO) {
    errno = x->cb_errno;
    rc = fail_io(x, "writing the records of the bundle in", x->o->out_dir);
    goto out_free;
  }
  if (x->cb_err == CAIRN_E_CORRUPT) {
    rc = store_tampered(x, "a stored record of link %llu (seq %llu) no longer decodes",
                        (unsigned long long)l->position, (unsigned long long)x->seqs[x->next - 1]);
    goto out_free;
  }
  if (x->cb_err != CAIRN_OK) {
    rc = store_failed(x, "records", x->cb_err);
    goto out_free;
  }
  if (e == CAIRN_E_NOTFOUND) {
    rc = store_tampered(x, "record seq %llu of link %llu is missing", (unsigned long long)missing,
                        (unsigned long long)l->position);
    goto out_free;
  }
  if (e != CAIRN_OK) {
    rc = store_failed(x, "records", e);
    goto out_free;
  }
  uint8_t digest[STO_HASH_LEN], calc[STO_HASH_LEN];
  e = sto_link_digest(x->leaves.ptr, x->leaves.len / STO_HASH_LEN, digest);
  if (e == CAIRN_OK) e = sto_link_hash(prev, l, digest, calc);
  if (e != CAIRN_OK) {
    rc = store_failed(x, "the chain", e);
    goto out_free;
  }
  if (CRYPTO_memcmp(calc, l->hash, STO_HASH_LEN) != 0) {
    rc = store_tampered(x, "link %llu does not recompute from its records (seq %llu..%llu)",
                        (unsigned long long)l->position, (unsigned long long)l->first_seq,
                        (unsigned long long)l->last_seq);
    goto out_free;
  }
  memcpy(prev, calc, STO_HASH_LEN);
  char hh[2 * STO_HASH_LEN + 1], dh[2 * STO_HASH_LEN + 1];
  qry__hex(l->hash, STO_HASH_LEN, hh);
  json_t *lj = json_pack("{s:I, s:I, s:I, s:I, s:s}", "position", (json_int_t)l->position,
                         "first_seq", (json_int_t)l->first_seq, "last_seq",
                         (json_int_t)l->last_seq, "commit_ns", (json_int_t)l->commit_ns, "hash",
                         hh);
  if (lj && covering) { /* all leaves of the link, one hex string */
    hex = malloc(2 * x->leaves.len + 1);
    if (hex) qry__hex(x->leaves.ptr, x->leaves.len, hex);
    if (!hex || json_object_set_new(lj, "leaves", json_string(hex)) != 0) {
      json_decref(lj);
      lj = NULL;
    }
  } else if (lj) {
    qry__hex(digest, STO_HASH_LEN, dh);
    json_object_set_new(lj, "digest", json_string(dh));
  }
  if (!lj || json_array_append_new(links, lj) != 0) rc = store_failed(x, "the chain", CAIRN_E_NOMEM);
out_free:
  free(hex);
  return rc;
}

static json_t *checkpoint_json(const sto_checkpoint *cp) {
  char head[2 * STO_HASH_LEN + 1], pub[2 * STO_PUBKEY_LEN + 1], sig[2 * STO_SIG_LEN + 1], t[40];
  qry__hex(cp->head, STO_HASH_LEN, head);
  qry__hex(cp->pubkey, STO_PUBKEY_LEN, pub);
  qry__hex(cp->sig, STO_SIG_LEN, sig);
  cairn_time_format(cp->time_ns, t, sizeof(t));
  return json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:s}", "position", (json_int_t)cp->position,
                   "last_seq", (json_int_t)cp->last_seq, "time_ns", (json_int_t)cp->time_ns,
                   "time", t, "head", head, "pubkey", pub, "signature", sig);
}

/* One segment from the link covering seqs[x->next] to the first checkpoint
 * at or after it; consumes every exported seq up to that checkpoint. */
static int do_segment(exporter *x, json_t *segments) {
  sto_link l;
  uint64_t seq = x->seqs[x->next];
  cairn_err e = sto_link_find(x->sto, seq, &l);
  if (e == CAIRN_E_NOTFOUND) {
    fprintf(x->env->err,
            "cairn-query export: record seq %llu is not covered by the hash chain (stored "
            "before the chain existed): it cannot be exported with a proof; narrow the query "
            "with --since\n",
            (unsigned long long)seq);
    return QRY_EXIT_USAGE;
  }
  if (e != CAIRN_OK) return store_failed(x, "the chain", e);
  sto_checkpoint cp;
  bool found = false;
  if ((e = sto_checkpoint_from(x->sto, l.position, &cp, &found)) != CAIRN_OK)
    return store_failed(x, "the checkpoints", e);
  if (!found) /* checked up front; the store changed meanwhile? */
    return store_tampered(x, "no signed checkpoint at or after link %llu (seq %llu)",
                          (unsigned long long)l.position, (unsigned long long)seq);
  uint8_t prev[STO_HASH_LEN] = {0};
  if (l.position > 1) {
    sto_link before;
    if ((e = sto_link_get(x->sto, l.position - 1, &before)) != CAIRN_OK)
      return store_failed(x, "the chain", e);
    memcpy(prev, before.hash, STO_HASH_LEN);
  }
  char anchor[2 * STO_HASH_LEN + 1];
  qry__hex(prev, STO_HASH_LEN, anchor);
  json_t *links = json_array();
  json_t *seg = json_pack("{s:s, s:o}", "anchor", anchor, "links", links);
  if (!seg || json_array_append_new(segments, seg) != 0)
    return store_failed(x, "the chain", CAIRN_E_NOMEM);
  int rc;
  for (uint64_t pos = l.position;; pos++) {
    if (pos != l.position && (e = sto_link_get(x->sto, pos, &l)) != CAIRN_OK)
      return e == CAIRN_E_NOTFOUND ? store_tampered(x, "link %llu is missing (checkpoint at %llu)",
                                                    (unsigned long long)pos,
                                                    (unsigned long long)cp.position)
                                   : store_failed(x, "the chain", e);
    if ((rc = do_link(x, &l, prev, links)) != QRY_EXIT_OK) return rc;
    if (pos == cp.position) break;
  }
  if (CRYPTO_memcmp(prev, cp.head, STO_HASH_LEN) != 0 || cp.last_seq != l.last_seq)
    return store_tampered(x, "the checkpoint at position %llu did not sign the chain head at "
                          "that position (seq %llu)", (unsigned long long)cp.position,
                          (unsigned long long)l.last_seq);
  json_t *cj = checkpoint_json(&cp);
  if (!cj || json_object_set_new(seg, "checkpoint", cj) != 0)
    return store_failed(x, "the chain", CAIRN_E_NOMEM);
  return QRY_EXIT_OK;
}

/* ---- 3: manifest ---- */

static json_t *values_json(const qry_values *v) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < v->n; i++) json_array_append_new(a, json_string(v->v[i]));
  return a;
}

static const char *match_name(sto_match m) {
  return m == STO_MATCH_PREFIX ? "prefix" : m == STO_MATCH_GLOB ? "glob" : "exact";
}

static json_t *time_json(int64_t ns, bool open) {
  if (open) return json_null();
  char t[40];
  cairn_time_format(ns, t, sizeof(t));
  return json_string(t);
}

/* The query as given (argv) and as parsed (the filters storage ran). */
static json_t *query_json(const qry_opts *o) {
  json_t *given = json_array();
  for (int i = 0; given && i < o->argc; i++) json_array_append_new(given, json_string(o->argv[i]));
  json_t *fields = json_object();
  for (int f = 0; fields && f < STO_FIELD_COUNT_; f++) {
    if (!o->args.field[f].n) continue;
    json_t *terms = json_array();
    for (size_t i = 0; terms && i < o->q.terms[f].n; i++)
      json_array_append_new(terms, json_pack("{s:s, s:s}", "value", o->q.terms[f].v[i].value,
                                             "match", match_name(o->q.terms[f].v[i].match)));
    json_object_set_new(fields, sto_field_name((sto_field)f),
                        json_pack("{s:o, s:o}", "given", values_json(&o->args.field[f]),
                                  "index_terms", terms));
  }
  const char *src = o->q.source ? pb_source_name((Cairn__Source)o->q.source) : NULL;
  const char *stream = o->q.stream ? pb_stream_name((Cairn__LogStream)o->q.stream) : NULL;
  json_t *parsed = json_pack(
      "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:I, s:s}", "since",
      time_json(o->q.since_ns, o->q.since_ns == INT64_MIN), "until",
      time_json(o->q.until_ns, o->q.until_ns == INT64_MAX), "source",
      src ? json_string(src) : json_null(), "stream", stream ? json_string(stream) : json_null(),
      "fields", fields ? fields : json_object(), "grep", values_json(&o->args.grep), "regex",
      values_json(&o->args.regex), "ignore_case", o->args.icase, "limit", (json_int_t)o->q.limit,
      "order", o->q.newest_first ? "newest-first" : "oldest-first");
  return json_pack("{s:o, s:o}", "given", given ? given : json_array(), "parsed",
                   parsed ? parsed : json_object());
}

static json_t *exporter_json(void) {
  uid_t uid = getuid();
  char host[256] = "", pwbuf[4096];
  struct passwd pw, *res = NULL;
  if (gethostname(host, sizeof(host) - 1) != 0) snprintf(host, sizeof(host), "unknown");
  host[sizeof(host) - 1] = 0;
  const char *user = getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res ? pw.pw_name
                                                                                : NULL;
  json_t *j = json_pack("{s:s, s:I, s:s}", "user", user ? user : "unknown", "uid", (json_int_t)uid,
                        "host", host);
  const char *sudo = getenv("SUDO_USER");
  if (j && sudo && *sudo) json_object_set_new(j, "sudo_user", json_string(sudo));
  return j;
}

/* Bucket lengths in ms, smallest first. */
static const int64_t nice_buckets_ms[] = {
    1,        5,        10,        50,        100,        500,        1000,      5000,
    10000,    30000,    60000,     300000,    600000,     900000,     1800000,   3600000,
    7200000,  10800000, 21600000,  43200000,  86400000,   172800000,  604800000, 2592000000};

/* Time histogram of the exported records: bucket length from a fixed list,
 * at most HIST_MAX_BUCKETS buckets. */
static json_t *histogram_json(const int64_t *t, size_t n) {
  if (!n) return json_pack("{s:I, s:I, s:[]}", "start_ns", (json_int_t)0, "bucket_ns",
                           (json_int_t)0, "counts");
  int64_t lo = t[0], hi = t[0];
  for (size_t i = 1; i < n; i++) {
    if (t[i] < lo) lo = t[i];
    if (t[i] > hi) hi = t[i];
  }
  size_t nn = sizeof(nice_buckets_ms) / sizeof(nice_buckets_ms[0]);
  int64_t b = nice_buckets_ms[nn - 1] * 1000000LL;
  for (size_t i = 0; i < nn; i++) {
    int64_t c = nice_buckets_ms[i] * 1000000LL;
    if ((hi - lo) / c < (int64_t)HIST_MAX_BUCKETS) {
      b = c;
      break;
    }
  }
  int64_t start = lo / b * b - (lo % b < 0 ? b : 0);
  size_t nb = (size_t)((hi - start) / b) + 1;
  if (nb > HIST_MAX_BUCKETS * 16) nb = HIST_MAX_BUCKETS * 16; /* spans beyond 30 d buckets */
  uint64_t *cnt = calloc(nb, sizeof(*cnt));
  if (!cnt) return NULL;
  for (size_t i = 0; i < n; i++) {
    size_t k = (size_t)((t[i] - start) / b);
    cnt[k < nb ? k : nb - 1]++;
  }
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < nb; i++) json_array_append_new(arr, json_integer((json_int_t)cnt[i]));
  free(cnt);
  return json_pack("{s:I, s:I, s:o}", "start_ns", (json_int_t)start, "bucket_ns", (json_int_t)b,
                   "counts", arr);
}

static bool sha256_file(const char *path, char *hex, uint64_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
  uint8_t buf[1 << 16], d[STO_HASH_LEN];
  size_t got;
  *size = 0;
  while (ok && (got = fread(buf, 1, sizeof(buf), f)) > 0) {
    ok = EVP_DigestUpdate(md, buf, got) == 1;
    *size += got;
  }
  unsigned int dn = 0;
  ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, d, &dn) == 1;
  EVP_MD_CTX_free(md);
  fclose(f);
  if (ok) qry__hex(d, STO_HASH_LEN, hex);
  return ok;
}

/* ---- the command ---- */

/* Create dir (0700: it holds log data) or accept an existing empty one. */
static int make_bundle_dir(exporter *x) {
  const char *dir = x->o->out_dir;
  if (mkdir(dir, 0700) == 0) {
    x->made_dir = true;
    return QRY_EXIT_OK;
  }
  if (errno != EEXIST) return fail_io(x, "cannot create the bundle directory", dir);
  DIR *d = opendir(dir);
  if (!d) return fail_io(x, "cannot open the bundle directory", dir);
  struct dirent *de;
  bool empty = true;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) empty = false;
  closedir(d);
  if (!empty) {
    fprintf(x->env->err,
            "cairn-query export: --out %s is not empty: an evidence bundle is never overwritten; "
            "pass a new directory\n",
            dir);
    return QRY_EXIT_USAGE;
  }
  return QRY_EXIT_OK;
}

static FILE *open_out(exporter *x, const char *name) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", x->o->out_dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  return fd < 0 ? NULL : fdopen(fd, "wb");
}

static int close_out(exporter *x, FILE **f, const char *name) {
  if (!*f) return QRY_EXIT_OK;
  int bad = fflush(*f) != 0 || fsync(fileno(*f)) != 0;
  if (fclose(*f) != 0) bad = 1;
  *f = NULL;
  if (!bad) return QRY_EXIT_OK;
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", x->o->out_dir, name);
  return fail_io(x, "writing", path);
}

/* A failed export leaves no half-written bundle behind (only what it created). */
static void remove_partial(exporter *x) {
  static const char *const names[] = {QRY_BUNDLE_RECORDS, QRY_BUNDLE_BIN, QRY_BUNDLE_REPORT,
                                      "." QRY_BUNDLE_MANIFEST ".tmp"};
  char path[4096];
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", x->o->out_dir, names[i]);
    unlink(path);
  }
  if (x->made_dir) rmdir(x->o->out_dir);
}

/* Steps 1-2: run the query, then write records and build the proof. */
static int collect(exporter *x, json_t *segments) {
  sto_query_stats st;
  memset(&st, 0, sizeof(st));
  cairn_err e = sto_query_run(x->sto, &x->o->q, on_match, x, &st);
  if (!e && x->cb_err) e = x->cb_err;
  if (e) return store_failed(x, "the store", e);
  if (!x->n) return QRY_EXIT_OK;
  qsort(x->seqs, x->n, sizeof(*x->seqs), u64_cmp);
  x->times = calloc(x->n, sizeof(*x->times));
  if (!x->times) return store_failed(x, "records", CAIRN_E_NOMEM);
  sto_checkpoint last;
  bool found = false;
  if ((e = sto_checkpoint_last(x->sto, &last, &found)) != CAIRN_OK)
    return store_failed(x, "the checkpoints", e);
  uint64_t max = x->seqs[x->n - 1];
  if (!found || last.last_seq < max) {
    size_t late = 0;
    for (size_t i = 0; i < x->n; i++) late += !found || x->seqs[i] > last.last_seq;
    if (found)
      fprintf(x->env->err,
              "cairn-query export: %zu matching records (up to seq %llu) are newer than the last "
              "signed checkpoint (position %llu, seq %llu): they cannot be proven yet; export "
              "again after the aggregator's next checkpoint (--sign-interval), or end the query "
              "earlier with --until\n",
              late, (unsigned long long)max, (unsigned long long)last.position,
              (unsigned long long)last.last_seq);
    else
      fprintf(x->env->err,
              "cairn-query export: the store in %s has no signed checkpoint: nothing in it can "
              "be proven (does the aggregator sign? see docs/SECURITY.md)\n",
              x->o->data_dir);
    return QRY_EXIT_USAGE;
  }
  while (x->next < x->n) {
    int rc = do_segment(x, segments);
    if (rc != QRY_EXIT_OK) return rc;
  }
  return QRY_EXIT_OK;
}

int qry__export_cmd(const qry_opts *o, const qry_env *env) {
  exporter x = {.o = o, .env = env, .last_draw = cairn_time_mono_ns()};
  cairn_buf_init(&x.line);
  cairn_buf_init(&x.leaves);
  cairn_arena_init(&x.arena, 16u << 10);
  int64_t started = env->now_ns ? env->now_ns : cairn_time_now_ns();
  json_t *m = NULL, *segments = json_array();
  cairn_buf bin;
  cairn_buf_init(&bin);
  uint8_t key[STO_PUBKEY_LEN];
  char fp[17] = "", keypath[4096], why[512];
  bool have_key = false;
  x.precords = json_array();
  x.by_source = json_object();
  x.by_namespace = json_object();
  x.by_node = json_object();
  int rc = QRY_EXIT_USAGE;
  if (!segments || !x.precords || !x.by_source || !x.by_namespace || !x.by_node) {
    fprintf(env->err, "cairn-query export: out of memory\n");
    goto out_free;
  }
  /* the key to check the bundle with before handing it out */
  if (o->public_key && *o->public_key) snprintf(keypath, sizeof(keypath), "%s", o->public_key);
  else snprintf(keypath, sizeof(keypath), "%s/signing.pub", o->data_dir);
  have_key = qry__pubkey_read(keypath, key, fp, why, sizeof(why));
  if (!have_key && o->public_key && *o->public_key) {
    fprintf(env->err, "cairn-query export: --public-key %s\n", why);
    goto out_free;
  }
  if ((rc = qry__store_open(o, env, &x.sto)) != QRY_EXIT_OK) goto out_free;
  rc = make_bundle_dir(&x);
  if (rc != QRY_EXIT_OK) goto out_free;
  x.created = true;
  if (!(x.jsonl = open_out(&x, QRY_BUNDLE_RECORDS)) || !(x.bin = open_out(&x, QRY_BUNDLE_BIN))) {
    rc = fail_io(&x, "cannot create the record files in", o->out_dir);
    goto out_free;
  }
  rc = collect(&x, segments);
  if (x.drawn) progress(&x, true);
  if (rc != QRY_EXIT_OK) goto out_free;
  if ((rc = close_out(&x, &x.jsonl, QRY_BUNDLE_RECORDS)) != QRY_EXIT_OK ||
      (rc = close_out(&x, &x.bin, QRY_BUNDLE_BIN)) != QRY_EXIT_OK)
    goto out_free;

  /* step 3: the manifest, checked like verify-export does */
  char created[40];
  cairn_time_format(started, created, sizeof(created));
  json_t *proof = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "leaf",
      "SHA-256(seq u64be || length u64be || packed record bytes): the records.bin entry",
      "digest", "SHA-256(leaf(first_seq) || ... || leaf(last_seq))", "link",
      "SHA-256(prev_hash || position || first_seq || last_seq || commit_ns XOR 2^63 || digest), "
      "integers u64be; prev_hash of the first link of a segment = anchor",
      "checkpoint",
      "Ed25519 over \"cairn-checkpoint-v1\\0\" || position || head || last_seq || time_ns XOR "
      "2^63, integers u64be; head = hash of the link at position",
      "scope",
      "proves that each record of records.bin is byte for byte what the store committed under "
      "a signed checkpoint, and that records.jsonl renders exactly those bytes; it does not "
      "prove that the query matched nothing else",
      "records", x.precords, "segments", segments);
  x.precords = segments = NULL; /* owned by proof now (or lost with it) */
  m = json_pack("{s:s, s:s, s:s, s:I, s:o, s:s, s:o, s:{s:I, s:O, s:O, s:O}, s:o}", "format",
                QRY_BUNDLE_FORMAT, "cairn_version", CAIRN_VERSION, "created", created,
                "created_ns", (json_int_t)started, "exported_by", exporter_json(), "store",
                o->data_dir, "query", query_json(o), "counts", "records", (json_int_t)x.next,
                "by_source", x.by_source, "by_namespace", x.by_namespace, "by_node", x.by_node,
                "histogram", histogram_json(x.times, x.next));
  if (!m || !proof || json_object_set_new(m, "proof", proof) != 0) {
    if (!m) json_decref(proof);
    fprintf(env->err, "cairn-query export: out of memory building the manifest\n");
    rc = QRY_EXIT_USAGE;
    goto out_free;
  }
  qry_check chk;
  cairn_err e = qry__bundle_check(o->out_dir, m, have_key ? key : NULL, false, &chk);
  if (e != CAIRN_OK) {
    fprintf(env->err, "cairn-query export: checking the bundle: %s\n", cairn_err_str(e));
    rc = QRY_EXIT_USAGE;
    goto out_free;
  }
  if (have_key)
    json_object_set_new(m, "public_key", json_pack("{s:s, s:s}", "path", keypath, "fingerprint",
                                                   fp));
  bool unchecked = !have_key && strcmp(chk.code, "SIGNATURE") == 0;
  json_object_set_new(m, "verification",
                      json_pack("{s:s, s:s, s:s, s:b}", "status",
                                chk.ok ? "ok" : unchecked ? "signatures-not-checked" : "failed",
                                "problem", chk.code, "detail", chk.detail, "signature_checked",
                                chk.signature_checked));

  /* step 4: report.html, then the file hashes, then manifest.json */
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", o->out_dir, QRY_BUNDLE_BIN);
  FILE *bf = fopen(path, "rb");
  bool read_ok = bf != NULL;
  while (read_ok && cairn_buf_reserve(&bin, 1u << 16) == CAIRN_OK) {
    size_t got = fread(bin.ptr + bin.len, 1, bin.cap - bin.len, bf);
    bin.len += got;
    if (!got) break;
  }
  if (bf) fclose(bf);
  snprintf(path, sizeof(path), "%s/%s", o->out_dir, QRY_BUNDLE_REPORT);
  if (!read_ok || (e = qry__report_write(path, m, &chk, bin.ptr, bin.len)) != CAIRN_OK) {
    rc = fail_io(&x, "writing", path);
    goto out_free;
  }
  json_t *files = json_object();
  static const char *const names[] = {QRY_BUNDLE_RECORDS, QRY_BUNDLE_BIN, QRY_BUNDLE_REPORT};
  for (size_t i = 0; files && i < 3; i++) {
    char hex[2 * STO_HASH_LEN + 1];
    uint64_t size = 0;
    snprintf(path, sizeof(path), "%s/%s", o->out_dir, names[i]);
    if (!sha256_file(path, hex, &size)) {
      json_decref(files);
      rc = fail_io(&x, "reading back", path);
      goto out_free;
    }
    json_object_set_new(files, names[i],
                        json_pack("{s:s, s:I}", "sha256", hex, "bytes", (json_int_t)size));
  }
  json_object_set_new(m, "files", files);
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", o->out_dir, QRY_BUNDLE_MANIFEST);
  snprintf(path, sizeof(path), "%s/%s", o->out_dir, QRY_BUNDLE_MANIFEST);
  if (json_dump_file(m, tmp, JSON_INDENT(1) | JSON_ENSURE_ASCII) != 0 || chmod(tmp, 0600) != 0 ||
      rename(tmp, path) != 0) {
    rc = fail_io(&x, "writing", path);
    goto out_free;
  }
  x.complete = true;
  if (x.drawn) fprintf(env->err, "\r\033[K");
  x.drawn = false;
  fprintf(env->out, "export: %zu records to %s (%s)\n", x.next, o->out_dir,
          chk.ok ? "verified" : "NOT verified");
  if (chk.ok) {
    fprintf(env->out, "  proof:     %llu links in %llu segments, up to checkpoint %llu\n",
            (unsigned long long)chk.links, (unsigned long long)chk.segments,
            (unsigned long long)chk.cp_position);
    fprintf(env->out, "  key:       %s (%s)\n", keypath, fp);
  }
  fflush(env->out);
  if (unchecked) {
    fprintf(env->err,
            "cairn-query export: warning: no public key (%s): the bundle's signatures were not "
            "checked; pass --public-key FILE\n",
            why);
    rc = x.next ? QRY_EXIT_OK : QRY_EXIT_NO_MATCH;
  } else if (!chk.ok) {
    fprintf(env->err, "cairn-query export: %s: %s\n", chk.code, chk.detail);
    rc = QRY_EXIT_VERIFY_FAILED;
  } else {
    rc = x.next ? QRY_EXIT_OK : QRY_EXIT_NO_MATCH;
  }

out_free:
  if (x.drawn) fprintf(env->err, "\r\033[K");
  if (x.jsonl) fclose(x.jsonl);
  if (x.bin) fclose(x.bin);
  if (x.created && !x.complete) remove_partial(&x);
  json_decref(m);
  json_decref(segments);
  json_decref(x.precords);
  json_decref(x.by_source);
  json_decref(x.by_namespace);
  json_decref(x.by_node);
  cairn_buf_fini(&bin);
  cairn_buf_fini(&x.line);
  cairn_buf_fini(&x.leaves);
  cairn_arena_fini(&x.arena);
  free(x.seqs);
  free(x.times);
  sto_close(x.sto);
  return rc;
}
