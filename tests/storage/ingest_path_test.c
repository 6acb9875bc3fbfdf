/* tests/storage/ingest_path_test.c: the aggregator's fast ingest path.
 *
 * - Index staging (write.c): the entries of a put call are grouped by key and
 *   written in key order with MDB_MULTIPLE | MDB_APPENDDUP, falling back to
 *   plain puts when an entry is not after a key's last stored dup. The idx DB
 *   must then hold exactly the entries each record calls for, whatever the
 *   order of times (shuffled, older than what is stored, equal).
 * - Records stored from their received bytes (pb_batch_decode_raw +
 *   sto_wtxn_put_records_raw): they must read back exactly as records packed
 *   again (sto_wtxn_put_records) do, the aggregator's fields must win over
 *   values a collector put in the same fields, a record with unknown fields
 *   must be packed again (never stored as received), and the hash chain must
 *   verify.
 */
#include "sto_test_util.h"

#include <inttypes.h>
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(index_matches_records_in_any_time_order),
      cmocka_unit_test(raw_records_read_back_as_repacked_ones),
      cmocka_unit_test(pack_ingest_round_trips),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
