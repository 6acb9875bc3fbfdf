/* tests/query/fixture.h: shared by the query tests: a real store in a fresh
 * mkdtemp dir filled through storage's write API with synthetic records
 * (several namespaces, pods, containers, nodes, sources; inserted in shuffled
 * order so seq order is not time order), a brute-force model of the same
 * records to compare query results with, and a runner that calls qry_run with
 * captured output. Header-only: each *_test.c is its own executable.
 */
#ifndef CAIRN_TESTS_QUERY_FIXTURE_H
#define CAIRN_TESTS_QUERY_FIXTURE_H

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/timeparse.h"
#include "query/query.h"
#include "storage/storage.h"

#define FX_N 360                          /* synthetic records */
#define FX_T0 (1705276800LL * 1000000000LL) /* 2024-01-15T00:00:00Z */
#define FX_STEP (30LL * 1000000000LL)       /* 30 s between records */
#define FX_NOW (FX_T0 + 4LL * 3600 * 1000000000LL) /* "now" for relative times */
#define FX_QUOTED 5                       /* index of the record with , " and \n */
#define FX_HOSTILE 6                      /* index of the record with ESC and bad UTF-8 */

typedef struct fx_rec {
  int64_t time_ns;
  const char *ns, *pod, *container, *node; /* static strings; "" = none */
  int source;                              /* Cairn__Source */
  int stream;                              /* Cairn__LogStream */
  uint8_t msg[96];
  size_t msg_len;
} fx_rec;

typedef struct fx_store {
  char dir[64];   /* the mkdtemp dir */
  char data[96];  /* dir/store: the --data argument */
  fx_rec recs[FX_N];
} fx_store;

static const char *const fx_namespaces[] = {"prod", "staging", "dev"};
static const char *const fx_pods[] = {"api-0", "api-1", "db-0"};
static const char *const fx_containers[] = {"app", "sidecar"};
static const char *const fx_nodes[] = {"node-a", "node-b"};

/* Record i of the model: times are distinct (i * 30 s + i ns) so a record is
 * identified by its time in any output. Every 9th record is an auditd record
 * without Kubernetes metadata; every 11th message contains "ERROR". */
static inline void fx_model(fx_store *f) {
  for (int i = 0; i < FX_N; i++) {
    fx_rec *r = &f->recs[i];
    memset(r, 0, sizeof(*r));
    r->time_ns = FX_T0 + i * FX_STEP + i;
    r->node = fx_nodes[i % 2];
    if (i % 9 == 8) {
      r->ns = r->pod = r->container = "";
      r->source = CAIRN__SOURCE__SOURCE_AUDIT;
      r->stream = CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN;
      r->msg_len = (size_t)snprintf((char *)r->msg, sizeof(r->msg),
                                    "type=SYSCALL msg=audit(%d): syscall=59 auid=1000", i);
      continue;
    }
    r->ns = fx_namespaces[i % 3];
    r->pod = fx_pods[(i / 3) % 3];
    r->container = fx_containers[(i / 9) % 2];
    r->source = CAIRN__SOURCE__SOURCE_CONTAINER;
    r->stream = i % 4 == 3 ? CAIRN__LOG_STREAM__LOG_STREAM_STDERR
                           : CAIRN__LOG_STREAM__LOG_STREAM_STDOUT;
    if (i == FX_QUOTED) {
      static const char q[] = "hello, \"world\"\nsecond line";
      memcpy(r->msg, q, sizeof(q) - 1);
      r->msg_len = sizeof(q) - 1;
    } else if (i == FX_HOSTILE) {
      static const char h[] = "bad \xff\xfe byte \x1b[31m red\\x";
      memcpy(r->msg, h, sizeof(h) - 1);
      r->msg_len = sizeof(h) - 1;
    } else {
      r->msg_len = (size_t)snprintf((char *)r->msg, sizeof(r->msg),
                                    "GET /api/items/%d %s", i, i % 11 == 0 ? "ERROR 500" : "200");
    }
  }
}

/* Build the store in a fresh temp dir. 0 on success. */
static inline int fx_build(fx_store *f) {
  fx_model(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-query-test-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->data, sizeof(f->data), "%s/store", f->dir);
  const char *path = f->data;
  sto_options so = {.no_sync = true};
  sto_env *env = NULL;
  char why[256];
  if (sto_open(path, &so, &env, why, sizeof(why)) != CAIRN_OK) {
    fprintf(stderr, "fixture: sto_open: %s\n", why);
    return -1;
  }
  sto_ingest_meta meta = {
      .instance_id = "0123456789abcdef0123456789abcdef",
      .identity = "CN=test-collector",
      .node = NULL,
      .ingest_ns = FX_NOW,
  };
  Cairn__Record recs[FX_N];
  Cairn__Record *ptrs[FX_N];
  for (int k = 0; k < FX_N; k++) {
    int i = (k * 7) % FX_N; /* 7 is prime to 360: a permutation, so seq != time order */
    const fx_rec *m = &f->recs[i];
    Cairn__Record init = CAIRN__RECORD__INIT;
    recs[k] = init;
    recs[k].time_ns = m->time_ns;
    recs[k].source = (Cairn__Source)m->source;
    recs[k].stream = (Cairn__LogStream)m->stream;
    recs[k].format = m->source == CAIRN__SOURCE__SOURCE_AUDIT ? CAIRN__FORMAT__FORMAT_AUDITD
                                                             : CAIRN__FORMAT__FORMAT_CRI;
    recs[k].message.data = (uint8_t *)m->msg;
    recs[k].message.len = m->msg_len;
    recs[k].kube_namespace = (char *)m->ns;
    recs[k].pod = (char *)m->pod;
    recs[k].container = (char *)m->container;
    recs[k].node = (char *)m->node;
    recs[k].path = (char *)"/var/log/containers/x.log";
    ptrs[k] = &recs[k];
  }
  int rc = -1;
  for (int k = 0; k < FX_N; k += 60) {
    sto_wtxn *t = NULL;
    uint32_t stored = 0, dups = 0;
    if (sto_wtxn_begin(env, &t) != CAIRN_OK) goto out_close;
    if (sto_wtxn_put_records(t, &meta, ptrs + k, 60, &stored, &dups) != CAIRN_OK || stored != 60) {
      sto_wtxn_abort(t);
      goto out_close;
    }
    if (sto_wtxn_commit(t) != CAIRN_OK) goto out_close;
  }
  rc = 0;
out_close:
  sto_close(env);
  return rc;
}

static inline int fx_rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(p);
}

static inline void fx_destroy(fx_store *f) {
  if (f->dir[0]) nftw(f->dir, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The store path inside the fixture dir. */
static inline const char *fx_data(const fx_store *f) { return f->data; }

/* Filter of the brute-force model (NULL / 0 = any). */
typedef struct fx_filter {
  int64_t since, until; /* [since, until) */
  const char *ns, *pod, *container, *node, *grep;
  int source;
} fx_filter;

static inline fx_filter fx_any(void) {
  fx_filter q = {.since = INT64_MIN, .until = INT64_MAX};
  return q;
}

static inline bool fx_match(const fx_rec *r, const fx_filter *q) {
  if (r->time_ns < q->since || r->time_ns >= q->until) return false;
  if (q->ns && strcmp(r->ns, q->ns) != 0) return false;
  if (q->pod && strcmp(r->pod, q->pod) != 0) return false;
  if (q->container && strcmp(r->container, q->container) != 0) return false;
  if (q->node && strcmp(r->node, q->node) != 0) return false;
  if (q->source && r->source != q->source) return false;
  if (q->grep && !memmem(r->msg, r->msg_len, q->grep, strlen(q->grep))) return false;
  return true;
}

/* Expected times in output order (newest first unless oldest_first), cut at
 * limit (0 = all). Returns the count written to out (FX_N entries). Records
 * are stored in time order in the model, so walking it gives time order. */
static inline size_t fx_expect(const fx_store *f, const fx_filter *q, bool oldest_first, size_t limit,
                        int64_t *out) {
  size_t n = 0;
  for (int k = 0; k < FX_N; k++) {
    int i = oldest_first ? k : FX_N - 1 - k;
    if (!fx_match(&f->recs[i], q)) continue;
    if (limit && n == limit) break;
    out[n++] = f->recs[i].time_ns;
  }
  return n;
}

static inline size_t fx_count(const fx_store *f, const fx_filter *q) {
  int64_t tmp[FX_N];
  return fx_expect(f, q, false, 0, tmp);
}

/* Captured result of one qry_run. */
typedef struct fx_result {
  int rc;
  char *out; /* owned, NUL-terminated */
  size_t out_len;
  char *err; /* owned */
  size_t err_len;
} fx_result;

static inline void fx_result_free(fx_result *r) {
  free(r->out);
  free(r->err);
  memset(r, 0, sizeof(*r));
}

/* Run cairn-query with the NULL-terminated arguments after the program name,
 * "now" = FX_NOW, the given CAIRN_DATA (NULL = unset), not a terminal. */
static inline fx_result fx_runv(const char *data_env, const char *const *args) {
  fx_result r = {0};
  char *argv[64];
  int argc = 0;
  argv[argc++] = (char *)"cairn-query";
  for (int i = 0; args[i] && argc < 63; i++) argv[argc++] = (char *)args[i];
  argv[argc] = NULL;
  FILE *out = open_memstream(&r.out, &r.out_len);
  FILE *err = open_memstream(&r.err, &r.err_len);
  qry_env env = {.out = out, .err = err, .data_dir = data_env, .now_ns = FX_NOW};
  r.rc = qry_run(argc, argv, &env);
  fclose(out);
  fclose(err);
  return r;
}

#define FX_RUN(data_env, ...) fx_runv((data_env), (const char *const[]){__VA_ARGS__, NULL})

/* Number of '\n' in s. */
static inline size_t fx_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* Times at the start of each text output line (RFC 3339 up to the first
 * space). Returns the count, or (size_t)-1 when a line does not start with a
 * valid timestamp. */
static inline size_t fx_text_times(const char *out, int64_t *times, size_t max) {
  size_t n = 0;
  const char *p = out;
  while (*p) {
    const char *sp = strchr(p, ' ');
    const char *nl = strchr(p, '\n');
    if (!sp || !nl || sp > nl || n == max) return (size_t)-1;
    if (cairn_time_parse_rfc3339(p, (size_t)(sp - p), &times[n]) != CAIRN_OK) return (size_t)-1;
    n++;
    p = nl + 1;
  }
  return n;
}

/* Sign the current chain head of env with the Ed25519 key k and store the
 * checkpoint (time FX_NOW), as the aggregator's signer does. */
static inline void fx_sign_head(sto_env *env, EVP_PKEY *k) {
  sto_chain_head h;
  assert_int_equal(sto_chain_head_get(env, &h), CAIRN_OK);
  sto_checkpoint cp = {.position = h.position, .last_seq = h.last_seq, .time_ns = FX_NOW};
  memcpy(cp.head, h.hash, 32);
  size_t pl = 32;
  assert_int_equal(EVP_PKEY_get_raw_public_key(k, cp.pubkey, &pl), 1);
  uint8_t msg[STO_CHECKPOINT_MSG_LEN];
  size_t mlen = sto_checkpoint_message(&cp, msg);
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  size_t slen = 64;
  assert_int_equal(EVP_DigestSignInit(c, NULL, NULL, NULL, k), 1);
  assert_int_equal(EVP_DigestSign(c, cp.sig, &slen, msg, mlen), 1);
  EVP_MD_CTX_free(c);
  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_checkpoint_put(t, &cp), CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
}

#endif
