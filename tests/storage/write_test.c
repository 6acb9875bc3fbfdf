/* tests/storage/write_test.c: the write side of storage/ against a real LMDB
 * in a fresh temp dir: record round trip, the dedupe rule, seq continuity
 * across reopen, cursors, map-full handling and growth.
 */
#include "tests/storage/sto_test_util.h"

typedef struct rec_copy {
  Cairn__Record got;
  char buf[4096]; /* backing store for the copied strings */
  size_t used;
  int calls;
} rec_copy;

static char *copy_str(rec_copy *c, const char *s) {
  size_t n = strlen(s) + 1;
  assert_true(c->used + n <= sizeof(c->buf));
  char *p = memcpy(c->buf + c->used, s, n);
  c->used += n;
  return p;
}

/* Keep a deep-enough copy of the one record scanned (attrs compared in cb). */
static bool copy_cb(const Cairn__Record *r, void *ud) {
  rec_copy *c = ud;
  c->calls++;
  c->got = *r;
  c->got.kube_namespace = copy_str(c, r->kube_namespace);
  c->got.pod = copy_str(c, r->pod);
  c->got.container = copy_str(c, r->container);
  c->got.container_id = copy_str(c, r->container_id);
  c->got.pod_uid = copy_str(c, r->pod_uid);
  c->got.node = copy_str(c, r->node);
  c->got.path = copy_str(c, r->path);
  c->got.identity = copy_str(c, r->identity);
  c->got.instance_id = copy_str(c, r->instance_id);
  assert_true(c->used + r->message.len <= sizeof(c->buf));
  c->got.message.data =
      memcpy(c->buf + c->used, r->message.data, r->message.len);
  c->used += r->message.len;
  assert_int_equal(r->n_attrs, 2);
  assert_string_equal(r->attrs[0]->key, "k1");
  assert_memory_equal(r->attrs[0]->value.data, "v\0one", 5);
  assert_int_equal(r->attrs[0]->value.len, 5);
  assert_string_equal(r->attrs[1]->key, "k2");
  assert_int_equal(r->attrs[1]->value.len, 0);
  c->got.attrs = NULL;
  return true;
}

static void put_then_scan_round_trips_every_field(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Attr a1 = CAIRN__ATTR__INIT, a2 = CAIRN__ATTR__INIT;
  a1.key = "k1";
  a1.value.data = (uint8_t *)"v\0one";
  a1.value.len = 5;
  a2.key = "k2";
  Cairn__Attr *attrs[] = {&a1, &a2};
  static const uint8_t msg[] = {'h', 'i', 0, 0xff, '\n', 'x'};
  Cairn__Record r = CAIRN__RECORD__INIT;
  r.time_ns = -1234567890123LL;
  r.source = CAIRN__SOURCE__SOURCE_AUDIT;
  r.stream = CAIRN__LOG_STREAM__LOG_STREAM_STDERR;
  r.flags = CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED |
            CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8;
  r.message.data = (uint8_t *)msg;
  r.message.len = sizeof(msg);
  r.kube_namespace = "prod";
  r.pod = "web-1";
  r.container = "nginx";
  r.container_id = "abc123";
  r.pod_uid = "uid-9";
  r.node = "stated-node";
  r.path = "/var/log/containers/x.log";
  r.file_stream = 77;
  r.end_offset = 4096;
  r.fragments = 3;
  r.format = CAIRN__FORMAT__FORMAT_DOCKER;
  r.n_attrs = 2;
  r.attrs = attrs;
  r.identity = "forged"; /* overwritten at ingest */
  r.seq = 999;           /* overwritten at ingest */
  Cairn__Record *recs[] = {&r};

  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  sto_ingest_meta m = {.instance_id = "inst-A",
                       .identity = "CN=node-1",
                       .node = "node-1",
                       .ingest_ns = 1700000000000000000LL};
  uint32_t stored, dups;
  assert_int_equal(sto_wtxn_put_records(t, &m, recs, 1, &stored, &dups),
                   CAIRN_OK);
  assert_int_equal(stored, 1);
  assert_int_equal(dups, 0);
  assert_int_equal(r.seq, 1); /* stamped in place */
  assert_string_equal(r.node, "node-1");
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);

  rec_copy c = {0};
  assert_int_equal(sto_scan_after(env, 0, 0, copy_cb, &c), CAIRN_OK);
  assert_int_equal(c.calls, 1);
  const Cairn__Record *g = &c.got;
  assert_int_equal(g->time_ns, r.time_ns);
  assert_int_equal(g->source, r.source);
  assert_int_equal(g->stream, r.stream);
  assert_int_equal(g->flags, r.flags);
  assert_int_equal(g->message.len, sizeof(msg));
  assert_memory_equal(g->message.data, msg, sizeof(msg));
  assert_string_equal(g->kube_namespace, "prod");
  assert_string_equal(g->pod, "web-1");
  assert_string_equal(g->container, "nginx");
  assert_string_equal(g->container_id, "abc123");
  assert_string_equal(g->pod_uid, "uid-9");
  assert_string_equal(g->node, "node-1");
  assert_string_equal(g->path, "/var/log/containers/x.log");
  assert_int_equal(g->file_stream, 77);
  assert_int_equal(g->end_offset, 4096);
  assert_int_equal(g->fragments, 3);
  assert_int_equal(g->format, CAIRN__FORMAT__FORMAT_DOCKER);
  assert_string_equal(g->identity, "CN=node-1");
  assert_string_equal(g->instance_id, "inst-A");
  assert_int_equal(g->ingest_ns, 1700000000000000000LL);
  assert_int_equal(g->seq, 1);
  sto_close(env);
}

static void put_keeps_record_node_when_meta_node_empty(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Record r;
  rec_fill(&r, 1, "ns", "p", "c", "own-node", "m", 1, 10);
  Cairn__Record *recs[] = {&r};
  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  sto_ingest_meta m = {.instance_id = "i", .identity = "id", .node = ""};
  uint32_t stored, dups;
  assert_int_equal(sto_wtxn_put_records(t, &m, recs, 1, &stored, &dups),
                   CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
  sto_query q;
  sto_query_init(&q);
  q.node = "own-node";
  seq_list l = {0};
  assert_int_equal(sto_query_run(env, &q, seq_list_cb, &l, NULL), CAIRN_OK);
  assert_int_equal(l.n, 1);
  seq_list_fini(&l);
  sto_close(env);
}

/* n records of stream with end offsets first, first+step, ... */
static void make_batch(Cairn__Record *r, Cairn__Record **p, size_t n,
                       uint64_t stream, uint64_t first, uint64_t step) {
  for (size_t i = 0; i < n; i++) {
    rec_fill(&r[i], (int64_t)(1000 + first + i * step), "ns", "pod", "c", "n",
             "line", stream, first + i * step);
    p[i] = &r[i];
  }
}

static void dedupe_resent_batch_stores_nothing(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Record r[5], *p[5];
  uint32_t dups;
  make_batch(r, p, 5, 7, 100, 100);
  assert_int_equal(put_commit(env, "inst", p, 5, &dups), 5);
  assert_int_equal(dups, 0);
  make_batch(r, p, 5, 7, 100, 100);
  assert_int_equal(put_commit(env, "inst", p, 5, &dups), 0);
  assert_int_equal(dups, 5);
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_int_equal(st.records, 5);
  assert_int_equal(st.last_seq, 5);
  sto_close(env);
}

static void dedupe_overlapping_resend_stores_only_new_tail(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Record r[4], *p[4];
  uint32_t dups;
  make_batch(r, p, 3, 7, 100, 100); /* 100 200 300 */
  assert_int_equal(put_commit(env, "inst", p, 3, &dups), 3);
  make_batch(r, p, 4, 7, 200, 100); /* 200 300 | 400 500 */
  assert_int_equal(put_commit(env, "inst", p, 4, &dups), 2);
  assert_int_equal(dups, 2);
  seq_list l = {0};
  assert_int_equal(sto_scan_after(env, 3, 0, seq_list_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.v[0], 4);
  assert_int_equal(l.v[1], 5);
  assert_int_equal(r[2].seq, 4); /* the record with end_offset 400 */
  seq_list_fini(&l);
  sto_close(env);
}

static void dedupe_is_per_instance_and_stream(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Record r[3], *p[3];
  uint32_t dups;
  make_batch(r, p, 3, 7, 100, 100);
  assert_int_equal(put_commit(env, "inst-1", p, 3, &dups), 3);
  make_batch(r, p, 3, 7, 100, 100);
  assert_int_equal(put_commit(env, "inst-2", p, 3, &dups),
                   3); /* other instance */
  make_batch(r, p, 3, 8, 100, 100);
  assert_int_equal(put_commit(env, "inst-1", p, 3, &dups),
                   3); /* other stream */
  make_batch(r, p, 3, 7, 100, 100);
  assert_int_equal(put_commit(env, "inst-1", p, 3, &dups), 0);
  assert_int_equal(dups, 3);
  sto_close(env);
}

static void dedupe_never_applies_to_stream_zero(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Record r[3], *p[3];
  uint32_t dups;
  make_batch(r, p, 3, 0, 100, 100);
  assert_int_equal(put_commit(env, "inst", p, 3, &dups), 3);
  make_batch(r, p, 3, 0, 100, 100);
  assert_int_equal(put_commit(env, "inst", p, 3, &dups), 3);
  assert_int_equal(dups, 0);
  sto_close(env);
}

static void
dedupe_sees_earlier_puts_of_same_txn_and_interleaved_streams(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Record r[6], *p[6];
  /* streams interleaved: 1@10 2@10 1@20 2@5(dup) 1@15(dup) 2@30 */
  const uint64_t streams[] = {1, 2, 1, 2, 1, 2},
                 offs[] = {10, 10, 20, 5, 15, 30};
  for (int i = 0; i < 6; i++) {
    rec_fill(&r[i], i, "ns", "pod", "c", "n", "x", streams[i], offs[i]);
    p[i] = &r[i];
  }
  sto_wtxn *t;
  sto_ingest_meta m = {.instance_id = "inst", .identity = "id"};
  uint32_t stored, dups;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_put_records(t, &m, p, 6, &stored, &dups), CAIRN_OK);
  assert_int_equal(stored, 4);
  assert_int_equal(dups, 2);
  /* same group again inside the same txn: all duplicates now */
  assert_int_equal(sto_wtxn_put_records(t, &m, p, 6, &stored, &dups), CAIRN_OK);
  assert_int_equal(stored, 0);
  assert_int_equal(dups, 6);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
  sto_close(env);
}

static void dedupe_state_rolls_back_with_abort(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Record r[3], *p[3];
  make_batch(r, p, 3, 7, 100, 100);
  sto_wtxn *t;
  sto_ingest_meta m = {.instance_id = "inst", .identity = "id"};
  uint32_t stored, dups;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_put_records(t, &m, p, 3, &stored, &dups), CAIRN_OK);
  assert_int_equal(stored, 3);
  sto_wtxn_abort(t);
  make_batch(r, p, 3, 7, 100, 100);
  assert_int_equal(put_commit(env, "inst", p, 3, &dups), 3);
  assert_int_equal(r[0].seq, 1); /* the aborted seqs are reused */
  sto_close(env);
}

static void seq_is_monotonic_across_reopen(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Record r[3], *p[3];
  make_batch(r, p, 3, 0, 1, 1);
  assert_int_equal(put_commit(env, "i", p, 3, NULL), 3);
  sto_close(env);
  env = open_rw(d, 0, 0);
  make_batch(r, p, 2, 0, 1, 1);
  assert_int_equal(put_commit(env, "i", p, 2, NULL), 2);
  assert_int_equal(r[0].seq, 4);
  assert_int_equal(r[1].seq, 5);
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_int_equal(st.records, 5);
  assert_int_equal(st.last_seq, 5);
  assert_true(st.map_used > 0 && st.map_used <= st.map_size);
  seq_list l = {0};
  assert_int_equal(sto_scan_after(env, 0, 0, seq_list_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 5);
  for (size_t i = 0; i < l.n; i++)
    assert_int_equal(l.v[i], i + 1);
  seq_list_fini(&l);
  sto_close(env);
}

static void scan_after_honours_after_seq_and_max(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  Cairn__Record r[10], *p[10];
  make_batch(r, p, 10, 0, 1, 1);
  assert_int_equal(put_commit(env, "i", p, 10, NULL), 10);
  seq_list l = {0};
  assert_int_equal(sto_scan_after(env, 6, 0, seq_list_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 4);
  assert_int_equal(l.v[0], 7);
  seq_list_fini(&l);
  assert_int_equal(sto_scan_after(env, 2, 3, seq_list_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 3);
  assert_int_equal(l.v[0], 3);
  assert_int_equal(l.v[2], 5);
  seq_list_fini(&l);
  assert_int_equal(sto_scan_after(env, 10, 0, seq_list_cb, &l), CAIRN_OK);
  assert_int_equal(l.n, 0);
  seq_list_fini(&l);
  sto_close(env);
}

static void cursor_set_get_persists_across_reopen(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  uint64_t v = 99;
  assert_int_equal(sto_cursor_get(env, "kafka", &v), CAIRN_OK);
  assert_int_equal(v, 0);
  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_cursor_set(t, "kafka", 17), CAIRN_OK);
  assert_int_equal(sto_wtxn_cursor_set(t, "other", UINT64_MAX), CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
  sto_close(env);
  env = open_ro(d);
  assert_int_equal(sto_cursor_get(env, "kafka", &v), CAIRN_OK);
  assert_int_equal(v, 17);
  assert_int_equal(sto_cursor_get(env, "other", &v), CAIRN_OK);
  assert_int_equal(v, UINT64_MAX);
  sto_close(env);
}

static void write_txn_is_exclusive_and_refused_read_only(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  sto_wtxn *t, *t2;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_begin(env, &t2), CAIRN_E_INVAL);
  assert_int_equal(sto_grow(env),
                   CAIRN_E_INVAL); /* not while a write txn is open */
  sto_wtxn_abort(t);
  sto_wtxn_abort(NULL);
  sto_close(env);
  env = open_ro(d);
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_E_INVAL);
  sto_close(env);
}

static void put_rejects_oversized_instance_id(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 0, 0);
  char inst[300];
  memset(inst, 'i', sizeof(inst) - 1);
  inst[sizeof(inst) - 1] = 0;
  Cairn__Record r[1], *p[1];
  make_batch(r, p, 1, 1, 1, 1);
  sto_wtxn *t;
  sto_ingest_meta m = {.instance_id = inst, .identity = "id"};
  uint32_t stored, dups;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_put_records(t, &m, p, 1, &stored, &dups),
                   CAIRN_E_INVAL);
  sto_wtxn_abort(t);
  sto_close(env);
}

/* Put batches of ~1 KiB records in their own txns until something fails;
 * returns that error and the number of records committed. */
static cairn_err fill_until_error(sto_env *env, uint64_t *committed,
                                  int max_batches) {
  static char msg[1024];
  memset(msg, 'm', sizeof(msg) - 1);
  Cairn__Record r[20], *p[20];
  for (int b = 0; b < max_batches; b++) {
    for (int i = 0; i < 20; i++) {
      rec_fill(&r[i], b * 20 + i, "ns", "pod", "c", "n", msg, 0, 0);
      p[i] = &r[i];
    }
    sto_wtxn *t;
    cairn_err err = sto_wtxn_begin(env, &t);
    if (err != CAIRN_OK)
      return err;
    sto_ingest_meta m = {.instance_id = "i", .identity = "id"};
    uint32_t stored, dups;
    err = sto_wtxn_put_records(t, &m, p, 20, &stored, &dups);
    if (err != CAIRN_OK) {
      sto_wtxn_abort(t);
      return err;
    }
    err = sto_wtxn_commit(t);
    if (err != CAIRN_OK)
      return err;
    *committed += 20;
  }
  return CAIRN_OK;
}

static void map_full_at_max_is_reported_and_grow_refuses(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 1u << 20, 1u << 20);
  uint64_t committed = 0;
  assert_int_equal(fill_until_error(env, &committed, 1000), CAIRN_E_MAPFULL);
  assert_true(committed > 0);
  assert_int_equal(sto_grow(env), CAIRN_E_MAPFULL);
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_int_equal(st.records, committed);
  assert_int_equal(st.last_seq, committed);
  assert_int_equal(st.map_size, 1u << 20);
  sto_close(env);
}

static void map_full_then_grow_lets_the_retried_group_succeed(void **state) {
  tdir *d = *state;
  sto_env *env = open_rw(d, 1u << 20, 8u << 20);
  static char msg[1024];
  memset(msg, 'g', sizeof(msg) - 1);
  Cairn__Record r[20], *p[20];
  int grows = 0;
  uint64_t total = 0;
  for (int b = 0; b < 200; b++) {
    for (int i = 0; i < 20; i++) {
      rec_fill(&r[i], b * 20 + i, "ns", "pod", "c", "n", msg, 5,
               (uint64_t)(b * 20 + i + 1));
      p[i] = &r[i];
    }
    for (;;) {
      sto_wtxn *t;
      assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
      sto_ingest_meta m = {.instance_id = "i", .identity = "id"};
      uint32_t stored = 0, dups = 0;
      cairn_err err = sto_wtxn_put_records(t, &m, p, 20, &stored, &dups);
      if (err == CAIRN_OK) {
        err = sto_wtxn_commit(t);
      } else {
        sto_wtxn_abort(t);
      }
      if (err == CAIRN_E_MAPFULL) {
        assert_int_equal(sto_grow(env), CAIRN_OK);
        grows++;
        continue;
      }
      assert_int_equal(err, CAIRN_OK);
      assert_int_equal(stored, 20); /* nothing of the failed try survived */
      total += stored;
      break;
    }
  }
  assert_true(grows >= 2);
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_int_equal(st.records, total);
  assert_int_equal(st.last_seq, total);
  assert_true(st.map_size > (1u << 20));
  sto_close(env);
  /* the grown map survives reopen with the small configured size */
  env = open_rw(d, 1u << 20, 8u << 20);
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_int_equal(st.records, total);
  sto_close(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(put_then_scan_round_trips_every_field,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          put_keeps_record_node_when_meta_node_empty, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(dedupe_resent_batch_stores_nothing,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          dedupe_overlapping_resend_stores_only_new_tail, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(dedupe_is_per_instance_and_stream,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(dedupe_never_applies_to_stream_zero,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          dedupe_sees_earlier_puts_of_same_txn_and_interleaved_streams,
          tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(dedupe_state_rolls_back_with_abort,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(seq_is_monotonic_across_reopen,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(scan_after_honours_after_seq_and_max,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(cursor_set_get_persists_across_reopen,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          write_txn_is_exclusive_and_refused_read_only, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(put_rejects_oversized_instance_id,
                                      tdir_setup, tdir_teardown),
      cmocka_unit_test_setup_teardown(
          map_full_at_max_is_reported_and_grow_refuses, tdir_setup,
          tdir_teardown),
      cmocka_unit_test_setup_teardown(
          map_full_then_grow_lets_the_retried_group_succeed, tdir_setup,
          tdir_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
