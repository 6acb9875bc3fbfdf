/* tests/aggregator/writer_test.c: the writer thread's storage paths with a real
 * LMDB: a full map grows and the group is retried; at --max-map-size batches
 * are answered RETRY (nothing lost; no later batch of the session is stored
 * and the session is closed so the collector resends in order), and group commit
 * answers many pipelined batches in order.
 */
#include "tests/aggregator/harness.h"

#define INSTANCE "00112233445566778899aabbccddeeff"

static int setup(void **state) {
  h_env *e = calloc(1, sizeof(*e));
  h_env_init(e);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  h_env *e = *state;
  h_env_fini(e);
  free(e);
  return 0;
}

static void open_session(h_client *c, h_env *e, h_server *s) {
  h_client_open(c, e, s, "node-1");
  h_client_hello(c, INSTANCE, NULL);
  assert_true(h_client_wait_msgs(c, 1, 10000));
  assert_int_equal(c->msgs[0].status, CAIRN__ACK_STATUS__ACK_OK);
}

static void full_map_grows_and_batches_are_stored(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.map_size = 256u << 10;
  s.cfg.max_map_size = 64u << 20;
  h_server_start(&s);
  h_client c;
  open_session(&c, e, &s);
  for (uint64_t i = 0; i < 3; i++) h_client_batch(&c, i + 1, i + 1, 0, 100, 10u << 10);
  assert_true(h_client_wait_msgs(&c, 4, 20000));
  for (int i = 1; i <= 3; i++) {
    assert_int_equal(c.msgs[i].status, CAIRN__ACK_STATUS__ACK_OK);
    assert_int_equal(c.msgs[i].stored, 100);
  }
  sto_stats st;
  assert_int_equal(sto_stats_get(agg_storage(s.a), &st), CAIRN_OK);
  assert_int_equal(st.records, 300);
  assert_true(st.map_size > (256u << 10));
  h_client_close(&c);
  h_server_stop(&s);
}

/* At --max-map-size a batch is answered RETRY and nothing of it is stored.
 * A later batch of the same session, pipelined behind it, must not be stored
 * either, even if it would fit: dedupe keeps a per-stream high-water mark, so
 * storing it first would make the refused batch's records look like
 * duplicates when the collector resends them (lost). The session is closed
 * after the RETRY; the collector resends everything unacked, in order, on a
 * new one. (group_commit 1 puts the two batches into separate groups.) */
static void storage_full_at_max_map_size_answers_retry_and_stores_nothing_after_it(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.map_size = 512u << 10;
  s.cfg.max_map_size = 512u << 10;
  s.cfg.group_commit = 1;
  h_server_start(&s);
  h_client c;
  open_session(&c, e, &s);
  h_client_batch(&c, 1, 1, 0, 100, 10u << 10); /* ~1 MiB stored: cannot fit */
  h_client_batch(&c, 2, 1, 10000, 2, 0);       /* same stream, later offsets: would fit */
  assert_true(h_client_wait_msgs(&c, 2, 10000));
  assert_int_equal(c.msgs[1].status, CAIRN__ACK_STATUS__ACK_RETRY);
  assert_non_null(strstr(c.msgs[1].reason, "storage full"));
  assert_memory_equal(c.msgs[1].reason, "CAIRN_E_MAPFULL: ", 17);
  assert_int_equal(c.msgs[1].stored, 0);
  assert_true(h_client_run(&c, hc_is_closed, 10000));
  assert_int_equal(c.n_msgs, 2); /* batch 2 got no Ack: it was not stored */
  h_client_close(&c);
  sto_stats st;
  assert_int_equal(sto_stats_get(agg_storage(s.a), &st), CAIRN_OK);
  assert_int_equal(st.records, 0);

  /* the collector's resend, in order, in smaller pieces: all of it is stored */
  h_client c2;
  open_session(&c2, e, &s);
  h_client_batch(&c2, 1, 1, 0, 2, 0);
  h_client_batch(&c2, 2, 1, 10000, 2, 0);
  assert_true(h_client_wait_msgs(&c2, 3, 10000));
  assert_int_equal(c2.msgs[1].status, CAIRN__ACK_STATUS__ACK_OK);
  assert_int_equal(c2.msgs[1].stored, 2);
  assert_int_equal(c2.msgs[2].status, CAIRN__ACK_STATUS__ACK_OK);
  assert_int_equal(c2.msgs[2].stored, 2);
  agg_counters ctr;
  agg_counters_get(s.a, &ctr);
  assert_int_equal(ctr.retries, 1);
  h_client_close(&c2);
  h_server_stop(&s);
}

static void pipelined_batches_are_acked_in_order(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.group_commit = 4;
  h_server_start(&s);
  h_client c;
  open_session(&c, e, &s);
  /* more than the per-connection in-flight cap, to exercise read pausing */
  enum { N = 100 };
  for (uint64_t i = 0; i < N; i++) h_client_batch(&c, i + 1, 1, i * 1000, 5, 0);
  assert_true(h_client_wait_msgs(&c, N + 1, 30000));
  for (size_t i = 1; i <= N; i++) {
    assert_int_equal(c.msgs[i].type, CAIRN__ENVELOPE__MSG_ACK);
    assert_int_equal(c.msgs[i].seq, i);
    assert_int_equal(c.msgs[i].status, CAIRN__ACK_STATUS__ACK_OK);
    assert_int_equal(c.msgs[i].stored, 5);
  }
  h_client_close(&c);
  h_server_stop(&s);
}

static bool has_first_ack(h_client *c) { return c->n_msgs >= 2 || c->closed; }

static void shutdown_answers_every_batch_it_stored(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  h_server_start(&s);
  h_client c;
  open_session(&c, e, &s);
  enum { N = 60 };
  for (uint64_t i = 0; i < N; i++) h_client_batch(&c, i + 1, 1, i * 1000, 5, 0);
  assert_true(h_client_run(&c, has_first_ack, 10000));
  agg_stop(s.a); /* while batches are queued, in flight and unread */
  assert_true(h_client_run(&c, hc_is_closed, 15000));
  assert_int_equal(pthread_join(s.thread, NULL), 0);
  assert_int_equal(s.rc, CAIRN_OK);
  agg_free(s.a);

  /* acks arrive in order with no gap, and acked <=> stored */
  size_t acked = c.n_msgs - 1;
  assert_true(acked >= 1);
  for (size_t i = 1; i <= acked; i++) {
    assert_int_equal(c.msgs[i].seq, i);
    assert_int_equal(c.msgs[i].status, CAIRN__ACK_STATUS__ACK_OK);
  }
  sto_env *env = NULL;
  sto_options ro = {.read_only = true};
  assert_int_equal(sto_open(e->data, &ro, &env, NULL, 0), CAIRN_OK);
  sto_stats st;
  assert_int_equal(sto_stats_get(env, &st), CAIRN_OK);
  assert_int_equal(st.records, 5 * acked);
  sto_close(env);
  h_client_close(&c);
}

int main(void) {
  cairn_log_setup(CAIRN_LOG_WARN, CAIRN_LOG_LOGFMT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(full_map_grows_and_batches_are_stored, setup, teardown),
      cmocka_unit_test_setup_teardown(
          storage_full_at_max_map_size_answers_retry_and_stores_nothing_after_it,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(pipelined_batches_are_acked_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(shutdown_answers_every_batch_it_stored, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
