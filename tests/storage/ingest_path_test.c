/* tests/storage/ingest_path_test.c: the aggregator's fast ingest path.
 *
 * - Index staging (write.c): the entries of a put call are grouped by key and
 *   written in key order with MDB_MULTIPLE | MDB_APPENDDUP, falling back to
 *   plain puts when an entry is not after a key's last stored dup. The idx DB
 *   must then hold exactly the entries each record calls for, whatever the
 *   order of times (shuffled, older than what is stored, equal).
 * - The view path (pb_batch_decode_items + sto_wtxn_put_items) stores, byte
 *   for byte, what the protobuf-c path stores for the same batches, and
 *   keeps protobuf-c's limits and errors.
 * - Records stored from their received bytes (pb_batch_decode_raw +
 *   sto_wtxn_put_records_raw): they must read back exactly as records packed
 *   again (sto_wtxn_put_records) do, the aggregator's fields must win over
 *   values a collector put in the same fields, a record with unknown fields
 *   must be packed again (never stored as received), and the hash chain must
 *   verify.
 */
#include "sto_test_util.h"

#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <zstd.h>

#include "storage/internal.h"

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rnd(rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ULL;
}

/* ---- index staging ---- */

typedef struct ent {
  uint8_t key[STO__IDX_KEY_MAX];
  size_t klen;
  uint8_t data[STO__IDX_DATA];
} ent;

static int ent_cmp(const void *a, const void *b) {
  const ent *x = a, *y = b;
  size_t n = x->klen < y->klen ? x->klen : y->klen;
  int c = memcmp(x->key, y->key, n);
  if (c) return c;
  if (x->klen != y->klen) return x->klen < y->klen ? -1 : 1;
  return memcmp(x->data, y->data, STO__IDX_DATA);
}

static void want_add(ent *w, size_t *n, uint8_t kind, const char *v, int64_t t, uint64_t seq) {
  if (!v || !v[0]) return;
  ent *e = &w[(*n)++];
  e->klen = sto__idx_key_str(e->key, kind, v);
  sto__idx_data(e->data, t, seq);
}

static void index_matches_records_in_any_time_order(void **state) {
  (void)state;
  tdir d;
  tdir_make(&d);
  sto_env *env = open_rw(&d, 0, 0);
  static const char *const pods[] = {"api-1", "api-2", "web-1", "web-2", "db-0", "", "cron-9"};
  static const char *const nss[] = {"payments", "checkout", "kube-system"};
  enum { TXNS = 4, CALLS = 3, PER = 700, N = TXNS * CALLS * PER };
  Cairn__Record *recs = calloc(PER, sizeof(*recs));
  Cairn__Record **rp = calloc(PER, sizeof(*rp));
  ent *want = calloc((size_t)N * 6, sizeof(*want));
  assert_non_null(recs);
  assert_non_null(rp);
  assert_non_null(want);
  size_t nw = 0;
  uint64_t seq = 0;
  rng r = {0x1234567890abcdefULL};
  int64_t base = 1700000000000000000LL;
  for (int t = 0; t < TXNS; t++) {
    sto_wtxn *w = NULL;
    assert_int_equal(sto_wtxn_begin(env, &w), CAIRN_OK);
    for (int c = 0; c < CALLS; c++) {
      for (int i = 0; i < PER; i++) {
        uint64_t x = rnd(&r);
        int64_t tm;
        switch (x % 5) {
          case 0: tm = base - (int64_t)(x % 1000000000000ULL); break; /* older than stored */
          case 1: tm = base; break;                                  /* equal times */
          default: tm = base + (int64_t)(seq + (uint64_t)i) * 1000; break; /* ascending */
        }
        const char *pod = pods[(x >> 8) % 7];
        rec_fill(&recs[i], tm, nss[(x >> 16) % 3], pod, (x >> 20) & 1 ? "app" : "sidecar",
                 "node-1", "m", 0, 0);
        rp[i] = &recs[i];
      }
      sto_ingest_meta meta = {"inst", "ident", NULL, 5};
      uint32_t st = 0, du = 0;
      assert_int_equal(sto_wtxn_put_records(w, &meta, rp, PER, &st, &du), CAIRN_OK);
      assert_int_equal(st, PER);
      for (int i = 0; i < PER; i++) {
        const Cairn__Record *x = &recs[i];
        assert_int_equal(x->seq, ++seq);
        ent *te = &want[nw++]; /* the time key has no value */
        te->klen = sto__idx_key_str(te->key, STO__IDX_TIME, NULL);
        sto__idx_data(te->data, x->time_ns, x->seq);
        want_add(want, &nw, STO__IDX_NAMESPACE, x->kube_namespace, x->time_ns, x->seq);
        want_add(want, &nw, STO__IDX_POD, x->pod, x->time_ns, x->seq);
        want_add(want, &nw, STO__IDX_CONTAINER, x->container, x->time_ns, x->seq);
        want_add(want, &nw, STO__IDX_NODE, x->node, x->time_ns, x->seq);
        ent *e = &want[nw++];
        e->klen = sto__idx_key_source(e->key, (uint32_t)x->source);
        sto__idx_data(e->data, x->time_ns, x->seq);
      }
      base += 7000000;
    }
    assert_int_equal(sto_wtxn_commit(w), CAIRN_OK);
  }
  qsort(want, nw, sizeof(*want), ent_cmp);

  /* read the whole idx DB back in LMDB order */
  MDB_txn *txn;
  MDB_cursor *cur;
  assert_int_equal(mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &txn), MDB_SUCCESS);
  assert_int_equal(mdb_cursor_open(txn, env->idx, &cur), MDB_SUCCESS);
  MDB_val k, v;
  size_t got = 0;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), got++) {
    if (got >= nw) fail_msg("idx holds more than the %zu entries expected", nw);
    const ent *e = &want[got];
    if (k.mv_size != e->klen || memcmp(k.mv_data, e->key, e->klen) != 0 ||
        v.mv_size != STO__IDX_DATA || memcmp(v.mv_data, e->data, STO__IDX_DATA) != 0)
      fail_msg("idx entry %zu differs (key %.*s)", got, (int)e->klen, (const char *)e->key);
  }
  assert_int_equal(got, nw);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);

  sto_verify_report rep;
  assert_int_equal(sto_chain_verify(env, NULL, NULL, NULL, &rep), CAIRN_OK);
  assert_int_equal(rep.status, STO_VERIFY_OK);
  assert_int_equal(rep.records, N);
  sto_close(env);
  tdir_remove(&d);
  free(want);
  free(rp);
  free(recs);
}

/* ---- records stored from their received bytes ---- */

static uint8_t *put_varint(uint8_t *o, uint64_t v) {
  while (v >= 0x80) {
    *o++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *o++ = (uint8_t)v;
  return o;
}

/* A zstd RecordBatch of n records; record i carries identity "forged" and
 * seq 777 (the aggregator must overwrite both), and record `unknown_at`
 * (when < n) carries an extra unknown field 99. */
static uint8_t *make_payload(size_t n, size_t unknown_at, size_t *len) {
  size_t cap = n * 512 + 64, rl = 0;
  uint8_t *raw = malloc(cap), *rec = malloc(512);
  assert_non_null(raw);
  assert_non_null(rec);
  for (size_t i = 0; i < n; i++) {
    Cairn__Record r;
    char msg[64];
    snprintf(msg, sizeof(msg), "line %zu \"quoted\" \xc3\xa9", i);
    rec_fill(&r, 1700000000000000000LL + (int64_t)i * 1000, "payments", i % 2 ? "api-1" : "api-2",
             "app", i % 3 ? "node-x" : "", msg, 42, 100 + i);
    r.identity = "forged";
    r.seq = 777;
    Cairn__Attr a = CAIRN__ATTR__INIT, *ap = &a;
    a.key = "level";
    a.value.data = (uint8_t *)"info";
    a.value.len = 4;
    r.n_attrs = 1;
    r.attrs = &ap;
    size_t m = cairn__record__pack(&r, rec);
    if (i == unknown_at) {
      uint8_t *o = put_varint(rec + m, 99u << 3);
      o = put_varint(o, 1);
      m = (size_t)(o - rec);
    }
    uint8_t *o = raw + rl;
    *o++ = 0x0a; /* RecordBatch.records = 1, length-delimited */
    o = put_varint(o, m);
    memcpy(o, rec, m);
    rl = (size_t)(o + m - raw);
  }
  size_t zc = ZSTD_compressBound(rl);
  uint8_t *z = malloc(zc);
  assert_non_null(z);
  *len = ZSTD_compress(z, zc, raw, rl, 1);
  assert_false(ZSTD_isError(*len));
  free(raw);
  free(rec);
  return z;
}

typedef struct json_list {
  cairn_buf all;
  uint64_t n;
} json_list;

static bool json_cb(const Cairn__Record *rec, void *ud) {
  json_list *l = ud;
  assert_int_equal(pb_record_json(rec, &l->all), CAIRN_OK);
  assert_int_equal(cairn_buf_append(&l->all, "\n", 1), CAIRN_OK);
  l->n++;
  return true;
}

/* Store n records of the payload through the raw path (raw = true) or by
 * packing them again; return every record's JSON, one per line. */
static void store_and_render(size_t n, size_t unknown_at, bool raw, const char *node,
                             json_list *out) {
  tdir d;
  tdir_make(&d);
  sto_env *env = open_rw(&d, 0, 0);
  size_t len = 0;
  uint8_t *payload = make_payload(n, unknown_at, &len);
  pb_codec *c = pb_codec_new(0);
  assert_non_null(c);
  cairn_arena a;
  cairn_arena_init(&a, 1u << 16);
  pb_limits lim;
  pb_limits_default(&lim);
  Cairn__RecordBatch *b = NULL;
  pb_slice *raws = NULL;
  if (raw) {
    assert_int_equal(pb_batch_decode_raw(c, payload, len, &lim, &a, &b, &raws), CAIRN_OK);
    assert_non_null(raws);
    for (size_t i = 0; i < n; i++) {
      if (i == unknown_at) assert_null(raws[i].p);
      else assert_non_null(raws[i].p);
    }
  } else {
    assert_int_equal(pb_batch_decode(c, payload, len, &lim, &a, &b), CAIRN_OK);
  }
  assert_int_equal(b->n_records, n);
  sto_wtxn *w = NULL;
  assert_int_equal(sto_wtxn_begin(env, &w), CAIRN_OK);
  sto_ingest_meta meta = {"collector-7", "spiffe://cluster/ns/cairn/sa/collector", node,
                          1700000001000000000LL};
  uint32_t st = 0, du = 0;
  if (raw)
    assert_int_equal(sto_wtxn_put_records_raw(w, &meta, b->records, raws, n, &st, &du), CAIRN_OK);
  else
    assert_int_equal(sto_wtxn_put_records(w, &meta, b->records, n, &st, &du), CAIRN_OK);
  assert_int_equal(st, n);
  assert_int_equal(sto_wtxn_commit(w), CAIRN_OK);
  out->n = 0;
  cairn_buf_init(&out->all);
  assert_int_equal(sto_scan_after(env, 0, 0, json_cb, out), CAIRN_OK);
  assert_int_equal(out->n, n);
  sto_verify_report rep;
  assert_int_equal(sto_chain_verify(env, NULL, NULL, NULL, &rep), CAIRN_OK);
  assert_int_equal(rep.status, STO_VERIFY_OK);
  assert_int_equal(rep.records, n);
  cairn_arena_fini(&a);
  pb_codec_free(c);
  free(payload);
  sto_close(env);
  tdir_remove(&d);
}

static void raw_records_read_back_as_repacked_ones(void **state) {
  (void)state;
  const char *nodes[] = {NULL, "node-from-cert"};
  for (int k = 0; k < 2; k++) {
    json_list a, b;
    store_and_render(300, 123, true, nodes[k], &a);
    store_and_render(300, 123, false, nodes[k], &b);
    assert_int_equal(cairn_buf_append(&a.all, "", 1), CAIRN_OK);
    assert_int_equal(cairn_buf_append(&b.all, "", 1), CAIRN_OK);
    assert_string_equal((const char *)a.all.ptr, (const char *)b.all.ptr);
    /* the aggregator's values won over the collector's */
    assert_null(strstr((const char *)a.all.ptr, "forged"));
    assert_null(strstr((const char *)a.all.ptr, "\"seq\":777,"));
    assert_non_null(strstr((const char *)a.all.ptr, "\"seq\":300,"));
    assert_non_null(strstr((const char *)a.all.ptr, "spiffe://cluster/ns/cairn/sa/collector"));
    if (nodes[k]) assert_null(strstr((const char *)a.all.ptr, "node-x"));
    else assert_non_null(strstr((const char *)a.all.ptr, "node-x"));
    cairn_buf_fini(&a.all);
    cairn_buf_fini(&b.all);
  }
}

static void pack_ingest_round_trips(void **state) {
  (void)state;
  Cairn__Record r;
  rec_fill(&r, -5, "ns", "pod", "c", "n0", "msg", 1, 2);
  uint8_t raw[512];
  size_t m = cairn__record__pack(&r, raw);
  r.node = "node-long-name-0123456789";
  r.identity = "";
  r.instance_id = "i";
  r.ingest_ns = -1234567890123LL; /* negative int64: ten-byte varint */
  r.seq = UINT64_MAX;
  cairn_buf o;
  cairn_buf_init(&o);
  assert_int_equal(pb_record_pack_ingest(raw, m, &r, true, &o), CAIRN_OK);
  cairn_arena a;
  cairn_arena_init(&a, 4096);
  Cairn__Record *u = NULL;
  assert_int_equal(pb_record_unpack(o.ptr, o.len, &a, &u), CAIRN_OK);
  assert_string_equal(u->node, "node-long-name-0123456789");
  assert_string_equal(u->identity, "");
  assert_string_equal(u->instance_id, "i");
  assert_int_equal(u->ingest_ns, -1234567890123LL);
  assert_true(u->seq == UINT64_MAX);
  assert_int_equal(u->time_ns, -5);
  assert_string_equal(u->pod, "pod");
  /* without with_node the received node stays */
  cairn_buf_reset(&o);
  assert_int_equal(pb_record_pack_ingest(raw, m, &r, false, &o), CAIRN_OK);
  assert_int_equal(pb_record_unpack(o.ptr, o.len, &a, &u), CAIRN_OK);
  assert_string_equal(u->node, "n0");
  cairn_buf_fini(&o);
  cairn_arena_fini(&a);
}

/* ---- the view path against the decoded-record path ----
 * The same batches go through pb_batch_decode_items + sto_wtxn_put_items
 * (records read in place) and through pb_batch_decode_raw +
 * sto_wtxn_put_records_raw (protobuf-c): every DB must come out byte for
 * byte the same (records, idx, dedupe, meta; the chain's links up to their
 * commit times, which are clocks) and both chains must verify. */

typedef struct rec_list {
  cairn_buf *v; /* packed records */
  size_t n, cap;
} rec_list;

static cairn_buf *rl_add(rec_list *l) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 256;
    l->v = realloc(l->v, l->cap * sizeof(*l->v));
    assert_non_null(l->v);
  }
  cairn_buf *b = &l->v[l->n++];
  cairn_buf_init(b);
  return b;
}

static void rl_pack(rec_list *l, const Cairn__Record *r) {
  cairn_buf *b = rl_add(l);
  assert_int_equal(pb_record_pack(r, b), CAIRN_OK);
}

static void rl_free(rec_list *l) {
  for (size_t i = 0; i < l->n; i++) cairn_buf_fini(&l->v[i]);
  free(l->v);
}

/* Append a length-delimited field (tag f) to b. */
static void put_field_bytes(cairn_buf *b, uint32_t f, const void *p, size_t n) {
  uint8_t hdr[16], *o = put_varint(hdr, (uint64_t)f << 3 | 2);
  o = put_varint(o, n);
  assert_int_equal(cairn_buf_append(b, hdr, (size_t)(o - hdr)), CAIRN_OK);
  assert_int_equal(cairn_buf_append(b, p, n), CAIRN_OK);
}

typedef struct attr_set {
  Cairn__Attr a[200];
  Cairn__Attr *p[200];
  size_t n;
} attr_set;

static void attr_add(attr_set *s, const char *k, const void *v, size_t n) {
  assert_true(s->n < 200);
  Cairn__Attr *a = &s->a[s->n];
  cairn__attr__init(a);
  a->key = (char *)k;
  a->value.data = (uint8_t *)v;
  a->value.len = n;
  s->p[s->n] = a;
  s->n++;
}

/* The collector's attr name for a key of the corpus expectations. */
static const char *corpus_attr_name(const char *k) {
  static const char *const map[][2] = {
      {"user.username", "user"},      {"objectRef.resource", "resource"},
      {"objectRef.subresource", "subresource"}, {"responseStatus.code", "code"},
  };
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(k, map[i][0]) == 0) return map[i][1];
  return k;
}

/* Records from every line of the corpus expectations of one source: the
 * line as message, its fields as attrs (arrays of audit keys as repeated
 * "key" attrs, record types as the comma list "types", booleans yes/no). */
static size_t corpus_records(rec_list *l, const char *sub, Cairn__Source src, Cairn__Format fmt,
                             uint64_t stream) {
  const char *corpus = getenv("CAIRN_CORPUS");
  char dir[4096];
  snprintf(dir, sizeof(dir), "%.4000s/expected/%s", corpus ? corpus : "../shared/corpus", sub);
  DIR *d = opendir(dir);
  if (!d) return 0;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!strstr(de->d_name, ".jsonl")) continue;
    char path[4096 + 256];
    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    stream++;
    uint64_t off = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
      off += (uint64_t)len;
      json_t *j = json_loadb(line, (size_t)len, 0, NULL);
      if (!json_is_object(j)) {
        json_decref(j);
        continue;
      }
      static attr_set as;
      as.n = 0;
      char *texts[256];
      size_t nt = 0;
      const char *key;
      json_t *val;
      json_object_foreach(j, key, val) {
        if (json_is_null(val) || nt + 8 > 256) continue;
        const char *name = corpus_attr_name(key);
        if (strcmp(key, "keys") == 0 && json_is_array(val)) {
          size_t i;
          json_t *e;
          json_array_foreach(val, i, e) {
            if (!json_is_string(e)) continue;
            attr_add(&as, "key", json_string_value(e), json_string_length(e));
          }
          continue;
        }
        char *t;
        if (json_is_string(val)) {
          t = strdup(json_string_value(val));
        } else if (json_is_boolean(val)) {
          t = strdup(json_is_true(val) ? "yes" : "no");
        } else if (strcmp(key, "types") == 0 && json_is_array(val)) {
          cairn_buf tb = {0};
          size_t i;
          json_t *e;
          json_array_foreach(val, i, e) {
            if (i) assert_int_equal(cairn_buf_append(&tb, ",", 1), CAIRN_OK);
            if (json_is_string(e)) assert_int_equal(cairn_buf_append_str(&tb, json_string_value(e)), CAIRN_OK);
          }
          assert_int_equal(cairn_buf_append(&tb, "", 1), CAIRN_OK);
          t = (char *)tb.ptr;
          name = "types";
        } else {
          t = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
        }
        assert_non_null(t);
        texts[nt++] = t;
        if (as.n < 190) attr_add(&as, name, t, strlen(t));
      }
      Cairn__Record r;
      rec_fill(&r, 1700000000000000000LL + (int64_t)off, src == CAIRN__SOURCE__SOURCE_CONTAINER ? "payments" : "",
               de->d_name, "c", "node-c", "", stream, off);
      r.source = src;
      r.format = fmt;
      r.message = (ProtobufCBinaryData){(size_t)len - 1, (uint8_t *)line};
      json_t *t = json_object_get(j, "time_ns");
      if (json_is_integer(t)) r.time_ns = json_integer_value(t);
      r.n_attrs = as.n;
      r.attrs = as.p;
      rl_pack(l, &r);
      n++;
      for (size_t i = 0; i < nt; i++) free(texts[i]);
      json_decref(j);
    }
    free(line);
    fclose(f);
  }
  closedir(d);
  return n;
}

/* Records made to hit every rule of the index builder and every fallback. */
static void edge_records(rec_list *l) {
  static char longv[600];
  memset(longv, 'x', sizeof(longv) - 1);
  static const uint8_t nulval[] = {'a', 0, 'b'};
  static attr_set as;
  Cairn__Record r;
  /* auditd events: repeated keys and values, type lists with repeats and
   * empty elements, empty values, values past STO_INDEX_VALUE_MAX, NUL bytes */
  for (int i = 0; i < 40; i++) {
    as.n = 0;
    attr_add(&as, "key", "k-exec", 6);
    attr_add(&as, "key", i % 2 ? "k-exec" : "k-net", i % 2 ? 6 : 5);
    attr_add(&as, "key", "", 0);
    attr_add(&as, "types", i % 3 ? "SYSCALL,PATH,PATH,,CWD" : ",EXECVE,", i % 3 ? 22 : 8);
    attr_add(&as, "types", "NEVER_INDEXED", 13); /* only the first types attr counts */
    attr_add(&as, "auid", "1000", 4);
    attr_add(&as, "auid", i % 4 ? "1000" : "4294967295", i % 4 ? 4 : 10);
    attr_add(&as, "uid", nulval, sizeof(nulval));
    attr_add(&as, "syscall", "59", 2);
    attr_add(&as, "exe", longv, i % 5 ? 300 : 255);
    attr_add(&as, "success", i % 2 ? "yes" : "no", i % 2 ? 3 : 2);
    attr_add(&as, "verb", "get", 3); /* a k8s name on an audit record: not indexed */
    rec_fill(&r, 1700000100000000000LL - i * 1000, "", "", "", i % 2 ? "auditd-node" : "", "type=SYSCALL",
             900, 100 + (uint64_t)i);
    r.source = CAIRN__SOURCE__SOURCE_AUDIT;
    r.format = CAIRN__FORMAT__FORMAT_AUDITD;
    r.n_attrs = as.n;
    r.attrs = as.p;
    rl_pack(l, &r);
  }
  /* Kubernetes audit events, and one with an audit name (not indexed) */
  for (int i = 0; i < 20; i++) {
    as.n = 0;
    attr_add(&as, "user", "alice@example.com", 17);
    attr_add(&as, "verb", i % 2 ? "create" : "delete", 6);
    attr_add(&as, "resource", "secrets", 7);
    attr_add(&as, "subresource", i % 3 ? "" : "status", i % 3 ? 0 : 6);
    attr_add(&as, "code", "201", 3);
    attr_add(&as, "code", "201", 3);
    attr_add(&as, "key", "not-audit", 9);
    rec_fill(&r, 1700000200000000000LL + i, "kube-system", "", "", "", "{}", 901, 50 + (uint64_t)i);
    r.source = CAIRN__SOURCE__SOURCE_K8S_AUDIT;
    r.format = CAIRN__FORMAT__FORMAT_K8S_AUDIT;
    r.n_attrs = as.n;
    r.attrs = as.p;
    rl_pack(l, &r);
  }
  /* container records: long names (cut at STO_INDEX_VALUE_MAX), source 0,
   * no stream (never deduped), collector-sent aggregator fields, binary message */
  for (int i = 0; i < 30; i++) {
    rec_fill(&r, -(int64_t)i * 7, i % 2 ? longv : "ns", i % 3 ? "pod-a" : "", "c\xc3\xa9", "n", "\x01\x00\xff",
             i % 4 ? 902 : 0, 10 + (uint64_t)i);
    r.message.len = 3;
    r.source = (Cairn__Source)(i % 5 == 0 ? 0 : 1);
    r.identity = "forged";
    r.instance_id = "forged-instance";
    r.seq = 777;
    r.ingest_ns = 5;
    rl_pack(l, &r);
  }
}

/* Odd records (each makes its whole batch take protobuf-c): an unknown
 * field, a NUL inside a string, more attrs than a view holds. */
static void fallback_records(rec_list *l) {
  Cairn__Record r;
  rec_fill(&r, 1700000300000000000LL, "payments", "pod-u", "c", "", "unknown field", 903, 1);
  cairn_buf *b = rl_add(l);
  assert_int_equal(pb_record_pack(&r, b), CAIRN_OK);
  put_field_bytes(b, 99, "zz", 2);

  rec_fill(&r, 1700000300000000001LL, "payments", "pod-nul", "c", "", "nul in pod", 903, 2);
  b = rl_add(l);
  assert_int_equal(pb_record_pack(&r, b), CAIRN_OK);
  put_field_bytes(b, 7, "pod\0tail", 8); /* protobuf-c's pod reads "pod" */

  static attr_set as;
  as.n = 0;
  for (int i = 0; i < 150; i++) attr_add(&as, i % 2 ? "key" : "auid", i % 3 ? "v1" : "v2", 2);
  rec_fill(&r, 1700000300000000002LL, "", "", "", "", "many attrs", 903, 3);
  r.source = CAIRN__SOURCE__SOURCE_AUDIT;
  r.n_attrs = as.n;
  r.attrs = as.p;
  rl_pack(l, &r);
}

/* recs[from, to) as one zstd RecordBatch payload (malloc'd). */
static uint8_t *batch_payload(const rec_list *l, size_t from, size_t to, size_t *len) {
  cairn_buf raw = {0};
  for (size_t i = from; i < to; i++) put_field_bytes(&raw, 1, l->v[i].ptr, l->v[i].len);
  size_t zc = ZSTD_compressBound(raw.len);
  uint8_t *z = malloc(zc);
  assert_non_null(z);
  *len = ZSTD_compress(z, zc, raw.ptr ? raw.ptr : (const uint8_t *)"", raw.len, 1);
  assert_false(ZSTD_isError(*len));
  cairn_buf_fini(&raw);
  return z;
}

/* Every key and value of dbi, in order: klen k vlen v ... ; for the chain
 * only the first and last seq of each link (the commit time is a clock). */
static void dump_db(sto_env *env, MDB_dbi dbi, bool chain, cairn_buf *out) {
  MDB_txn *txn;
  MDB_cursor *cur;
  assert_int_equal(mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &txn), MDB_SUCCESS);
  assert_int_equal(mdb_cursor_open(txn, dbi, &cur), MDB_SUCCESS);
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    size_t vn = chain ? 16 : v.mv_size;
    assert_int_equal(cairn_buf_append(out, &k.mv_size, sizeof(k.mv_size)), CAIRN_OK);
    assert_int_equal(cairn_buf_append(out, k.mv_data, k.mv_size), CAIRN_OK);
    assert_int_equal(cairn_buf_append(out, &vn, sizeof(vn)), CAIRN_OK);
    assert_int_equal(cairn_buf_append(out, v.mv_data, vn), CAIRN_OK);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
}

typedef struct path_out {
  cairn_buf db[5]; /* records, idx, dedupe, meta, chain */
  uint32_t stored, dups;
  size_t in_place; /* records stored from a view (view path) */
} path_out;

/* Store the batches (batch sizes cycling through sizes[]) G per txn, through
 * the view path or the record path, and dump the DBs. */
static void run_path(const rec_list *l, const size_t *sizes, size_t n_sizes, bool views,
                     path_out *o) {
  memset(o, 0, sizeof(*o));
  tdir d;
  tdir_make(&d);
  sto_env *env = open_rw(&d, 0, 0);
  pb_codec *c = pb_codec_new(0);
  assert_non_null(c);
  cairn_arena a;
  cairn_arena_init(&a, 1u << 16);
  cairn_buf raw = {0};
  pb_limits lim;
  pb_limits_default(&lim);
  size_t at = 0, bi = 0;
  while (at < l->n) {
    sto_wtxn *w = NULL;
    assert_int_equal(sto_wtxn_begin(env, &w), CAIRN_OK);
    for (int g = 0; g < 3 && at < l->n; g++, bi++) {
      size_t to = at + sizes[bi % n_sizes];
      if (to > l->n) to = l->n;
      size_t len = 0;
      uint8_t *pl = batch_payload(l, at, to, &len);
      sto_ingest_meta meta = {bi % 4 == 3 ? "other-instance" : "collector-7", "spiffe://c/collector",
                              bi % 2 ? "node-from-cert" : NULL, 1700000001000000000LL + (int64_t)bi};
      uint32_t st = 0, du = 0;
      if (views) {
        pb_batch_item *items = NULL;
        size_t n = 0;
        assert_int_equal(pb_batch_decode_items(c, pl, len, &lim, &raw, &a, &items, &n), CAIRN_OK);
        assert_int_equal(n, to - at);
        for (size_t i = 0; i < n; i++) o->in_place += items[i].rec == NULL;
        assert_int_equal(sto_wtxn_put_items(w, &meta, items, n, &st, &du), CAIRN_OK);
      } else {
        Cairn__RecordBatch *b = NULL;
        pb_slice *raws = NULL;
        assert_int_equal(pb_batch_decode_raw(c, pl, len, &lim, &a, &b, &raws), CAIRN_OK);
        assert_int_equal(b->n_records, to - at);
        assert_int_equal(sto_wtxn_put_records_raw(w, &meta, b->records, raws, b->n_records, &st, &du),
                         CAIRN_OK);
      }
      o->stored += st;
      o->dups += du;
      free(pl);
      at = to;
    }
    assert_int_equal(sto_wtxn_commit(w), CAIRN_OK);
    cairn_arena_reset(&a);
  }
  dump_db(env, env->records, false, &o->db[0]);
  dump_db(env, env->idx, false, &o->db[1]);
  dump_db(env, env->dedupe, false, &o->db[2]);
  dump_db(env, env->meta, false, &o->db[3]);
  dump_db(env, env->chain, true, &o->db[4]);
  sto_verify_report rep;
  assert_int_equal(sto_chain_verify(env, NULL, NULL, NULL, &rep), CAIRN_OK);
  assert_int_equal(rep.status, STO_VERIFY_OK);
  assert_int_equal(rep.records, o->stored);
  cairn_buf_fini(&raw);
  cairn_arena_fini(&a);
  pb_codec_free(c);
  sto_close(env);
  tdir_remove(&d);
}

static void view_path_stores_what_record_path_stores(void **state) {
  (void)state;
  rec_list l = {0};
  size_t per_src[4] = {
      corpus_records(&l, "cri", CAIRN__SOURCE__SOURCE_CONTAINER, CAIRN__FORMAT__FORMAT_CRI, 100),
      corpus_records(&l, "docker", CAIRN__SOURCE__SOURCE_CONTAINER, CAIRN__FORMAT__FORMAT_DOCKER,
                     200),
      corpus_records(&l, "audit", CAIRN__SOURCE__SOURCE_AUDIT, CAIRN__FORMAT__FORMAT_AUDITD, 300),
      corpus_records(&l, "k8s-audit", CAIRN__SOURCE__SOURCE_K8S_AUDIT,
                     CAIRN__FORMAT__FORMAT_K8S_AUDIT, 400),
  };
  bool corpus = per_src[0] + per_src[1] + per_src[2] + per_src[3] > 0;
  edge_records(&l);
  /* the collector resends: duplicates (same offsets) and older offsets */
  size_t again = l.n;
  for (size_t i = 0; i < again; i += 3) {
    cairn_buf *b = rl_add(&l);
    assert_int_equal(cairn_buf_append(b, l.v[i].ptr, l.v[i].len), CAIRN_OK);
  }
  size_t plain = l.n;
  fallback_records(&l);
  for (size_t i = 0; i < 40; i++) { /* more plain records after the odd ones */
    cairn_buf *b = rl_add(&l);
    assert_int_equal(cairn_buf_append(b, l.v[i].ptr, l.v[i].len), CAIRN_OK);
  }
  static const size_t sizes[] = {7, 1, 50, 13, 20, 2};
  path_out v, r;
  run_path(&l, sizes, sizeof(sizes) / sizeof(sizes[0]), true, &v);
  run_path(&l, sizes, sizeof(sizes) / sizeof(sizes[0]), false, &r);
  static const char *const names[] = {"records", "idx", "dedupe", "meta", "chain"};
  for (int i = 0; i < 5; i++) {
    if (v.db[i].len != r.db[i].len || memcmp(v.db[i].ptr, r.db[i].ptr, v.db[i].len) != 0)
      fail_msg("%s DB differs between the view and the record path", names[i]);
    cairn_buf_fini(&v.db[i]);
    cairn_buf_fini(&r.db[i]);
  }
  assert_int_equal(v.stored, r.stored);
  assert_int_equal(v.dups, r.dups);
  /* the test saw both: records stored in place, batches that fell back,
   * duplicates, and (with the corpus present) every source */
  assert_true(v.dups > 0);
  assert_true(v.in_place >= plain - 100); /* the batches holding the 3 odd records fell back */
  assert_true(v.in_place < l.n);
  for (int i = 0; corpus && i < 4; i++) assert_true(per_src[i] > 0);
  rl_free(&l);
}

/* A batch the view path would accept but protobuf-c's unpack budget refuses
 * (empty attrs expand ~19x) gets the same CAIRN_E_LIMIT and message. */
static void view_path_keeps_the_unpack_budget(void **state) {
  (void)state;
  rec_list l = {0};
  for (int i = 0; i < 50; i++) {
    cairn_buf *b = rl_add(&l);
    for (int k = 0; k < 128; k++) put_field_bytes(b, 17, "", 0);
  }
  size_t len = 0;
  uint8_t *pl = batch_payload(&l, 0, l.n, &len);
  pb_codec *c = pb_codec_new(0);
  cairn_arena a;
  cairn_arena_init(&a, 0);
  cairn_buf raw = {0};
  pb_limits lim;
  pb_limits_default(&lim);
  Cairn__RecordBatch *b = NULL;
  pb_slice *raws = NULL;
  assert_int_equal(pb_batch_decode_raw(c, pl, len, &lim, &a, &b, &raws), CAIRN_E_LIMIT);
  char want[160];
  snprintf(want, sizeof(want), "%s", pb_codec_last_error(c));
  pb_batch_item *items = NULL;
  size_t n = 7;
  assert_int_equal(pb_batch_decode_items(c, pl, len, &lim, &raw, &a, &items, &n), CAIRN_E_LIMIT);
  assert_string_equal(pb_codec_last_error(c), want);
  assert_null(items);
  assert_int_equal(n, 0);
  /* over max_records, and not a RecordBatch: the same errors too */
  lim.max_records = 10;
  assert_int_equal(pb_batch_decode_raw(c, pl, len, &lim, &a, &b, &raws), CAIRN_E_LIMIT);
  snprintf(want, sizeof(want), "%s", pb_codec_last_error(c));
  assert_int_equal(pb_batch_decode_items(c, pl, len, &lim, &raw, &a, &items, &n), CAIRN_E_LIMIT);
  assert_string_equal(pb_codec_last_error(c), want);
  free(pl);
  static const uint8_t junk[] = {0x08, 0x01, 0x0a, 0x02, 0x30, 0x01}; /* field 1 as varint */
  uint8_t z[64];
  size_t zn = ZSTD_compress(z, sizeof(z), junk, sizeof(junk), 1);
  assert_false(ZSTD_isError(zn));
  lim.max_records = 100;
  assert_int_equal(pb_batch_decode_raw(c, z, zn, &lim, &a, &b, &raws), CAIRN_E_PROTO);
  assert_int_equal(pb_batch_decode_items(c, z, zn, &lim, &raw, &a, &items, &n), CAIRN_E_PROTO);
  cairn_buf_fini(&raw);
  cairn_arena_fini(&a);
  pb_codec_free(c);
  rl_free(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(index_matches_records_in_any_time_order),
      cmocka_unit_test(raw_records_read_back_as_repacked_ones),
      cmocka_unit_test(pack_ingest_round_trips),
      cmocka_unit_test(view_path_stores_what_record_path_stores),
      cmocka_unit_test(view_path_keeps_the_unpack_budget),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
