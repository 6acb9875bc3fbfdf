/* tests/aggregator/server_test.c: the session protocol end to end: a real agg
 * (in a thread, real LMDB in a temp dir, real mTLS on 127.0.0.1:0) and a
 * minimal client built on proto/tls.h. Covers acks, dedupe, node checks,
 * limits, protocol order, handshake refusal and the metrics endpoint.
 */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>

#include "tests/aggregator/harness.h"

#define INSTANCE "0123456789abcdef0123456789abcdef"

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

static void hello_ok(h_client *c, const char *node) {
  h_client_hello(c, INSTANCE, node);
  assert_true(h_client_wait_msgs(c, 1, 10000));
  assert_int_equal(c->msgs[0].type, CAIRN__ENVELOPE__MSG_HELLO_ACK);
  assert_int_equal(c->msgs[0].status, CAIRN__ACK_STATUS__ACK_OK);
  assert_string_equal(c->msgs[0].identity, "node-1");
}

static void session_acks_stored_counts_and_dedupes_resends(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  h_server_start(&s);

  h_client c;
  h_client_open(&c, e, &s, "node-1");
  hello_ok(&c, NULL);
  h_client_batch(&c, 1, 7, 0, 10, 0);
  h_client_batch(&c, 2, 7, 0, 10, 0); /* the same records again: all duplicates */
  h_client_batch(&c, 3, 7, 1000, 5, 0);
  assert_true(h_client_wait_msgs(&c, 4, 10000));
  const h_msg *m = c.msgs;
  assert_int_equal(m[1].type, CAIRN__ENVELOPE__MSG_ACK);
  assert_int_equal(m[1].seq, 1);
  assert_int_equal(m[1].status, CAIRN__ACK_STATUS__ACK_OK);
  assert_int_equal(m[1].stored, 10);
  assert_int_equal(m[1].dups, 0);
  assert_int_equal(m[2].seq, 2);
  assert_int_equal(m[2].status, CAIRN__ACK_STATUS__ACK_OK);
  assert_int_equal(m[2].stored, 0);
  assert_int_equal(m[2].dups, 10);
  assert_int_equal(m[3].seq, 3);
  assert_int_equal(m[3].stored, 5);

  /* readable while running through the agg's own env */
  h_scan sc = {0};
  assert_int_equal(sto_scan_after(agg_storage(s.a), 0, 0, h_scan_cb, &sc), CAIRN_OK);
  assert_int_equal(sc.n, 15);
  agg_counters ctr;
  agg_counters_get(s.a, &ctr);
  assert_int_equal(ctr.batches, 3);
  assert_int_equal(ctr.records_stored, 15);
  assert_int_equal(ctr.records_duplicate, 10);
  assert_int_equal(ctr.sessions, 1);
  h_client_close(&c);
  h_server_stop(&s);

  /* and durable: a read-only open after shutdown sees the same records */
  sto_env *env = NULL;
  sto_options ro = {.read_only = true};
  assert_int_equal(sto_open(e->data, &ro, &env, NULL, 0), CAIRN_OK);
  memset(&sc, 0, sizeof(sc));
  assert_int_equal(sto_scan_after(env, 0, 0, h_scan_cb, &sc), CAIRN_OK);
  assert_int_equal(sc.n, 15);
  assert_int_equal(sc.bad_identity, 0);
  assert_string_equal(sc.node, "node-1"); /* empty node_name: the certificate identity */
  assert_string_equal(sc.instance, INSTANCE);
  assert_int_equal(sc.last_seq, 15);
  sto_close(env);
}

static void hello_with_node_covered_by_certificate_stores_that_node(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  h_server_start(&s);
  h_client c;
  h_client_open(&c, e, &s, "node-1");
  hello_ok(&c, "node-1");
  h_client_batch(&c, 1, 1, 0, 3, 0);
  assert_true(h_client_wait_msgs(&c, 2, 10000));
  assert_int_equal(c.msgs[1].stored, 3);
  h_scan sc = {0};
  assert_int_equal(sto_scan_after(agg_storage(s.a), 0, 0, h_scan_cb, &sc), CAIRN_OK);
  assert_string_equal(sc.node, "node-1");
  h_client_close(&c);
  h_server_stop(&s);
}

static void hello_with_node_not_covered_by_certificate_is_rejected(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  h_server_start(&s);
  h_client c;
  h_client_open(&c, e, &s, "node-1");
  h_client_hello(&c, INSTANCE, "node-2");
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  assert_int_equal(c.msgs[0].type, CAIRN__ENVELOPE__MSG_HELLO_ACK);
  assert_int_equal(c.msgs[0].status, CAIRN__ACK_STATUS__ACK_REJECT);
  assert_string_equal(c.msgs[0].reason,
                      "CAIRN_E_PERM: certificate CN=node-1 does not cover node node-2");
  assert_true(h_client_run(&c, hc_is_closed, 10000));
  agg_counters ctr;
  agg_counters_get(s.a, &ctr);
  assert_int_equal(ctr.rejects, 1);
  assert_int_equal(ctr.sessions, 0);
  h_client_close(&c);
  h_server_stop(&s);
}

/* --node-policy: a cluster-wide certificate (CN node-1) may state nodes that
 * match its glob, and only those */
static void node_policy_lets_a_shared_certificate_state_matching_nodes(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  char *pol[] = {(char *)"node-1=web-*"};
  s.cfg.node_policy.v = pol;
  s.cfg.node_policy.n = 1;
  h_server_start(&s);
  h_client c;
  h_client_open(&c, e, &s, "node-1");
  h_client_hello(&c, INSTANCE, "web-7");
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  assert_int_equal(c.msgs[0].status, CAIRN__ACK_STATUS__ACK_OK);
  h_client_batch(&c, 1, 1, 0, 3, 0);
  assert_true(h_client_wait_msgs(&c, 2, 10000));
  assert_int_equal(c.msgs[1].stored, 3);
  h_client_close(&c);
  h_scan sc = {0};
  assert_int_equal(sto_scan_after(agg_storage(s.a), 0, 0, h_scan_cb, &sc), CAIRN_OK);
  assert_string_equal(sc.node, "web-7");
  /* a node outside the glob is still refused */
  h_client_open(&c, e, &s, "node-1");
  h_client_hello(&c, INSTANCE, "db-1");
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  assert_int_equal(c.msgs[0].status, CAIRN__ACK_STATUS__ACK_REJECT);
  assert_string_equal(c.msgs[0].reason,
                      "CAIRN_E_PERM: certificate CN=node-1 does not cover node db-1");
  h_client_close(&c);
  h_server_stop(&s);
}

static void hello_with_empty_instance_id_is_rejected(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  h_server_start(&s);
  h_client c;
  h_client_open(&c, e, &s, "node-1");
  h_client_hello(&c, "", NULL);
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  assert_int_equal(c.msgs[0].status, CAIRN__ACK_STATUS__ACK_REJECT);
  assert_non_null(strstr(c.msgs[0].reason, "CAIRN_E_PROTO: instance_id"));
  assert_true(h_client_run(&c, hc_is_closed, 10000));
  h_client_close(&c);
  h_server_stop(&s);
}

static void batch_before_hello_closes_connection(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  h_server_start(&s);
  h_client c;
  h_client_open(&c, e, &s, "node-1");
  h_client_batch(&c, 1, 1, 0, 3, 0);
  assert_true(h_client_run(&c, hc_is_closed, 10000));
  assert_int_equal(c.n_msgs, 0); /* no Ack, nothing stored */
  sto_stats st;
  assert_int_equal(sto_stats_get(agg_storage(s.a), &st), CAIRN_OK);
  assert_int_equal(st.records, 0);
  h_client_close(&c);
  h_server_stop(&s);
}

static void oversized_batch_closes_only_that_connection(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.max_batch_bytes = 64u << 10;
  h_server_start(&s);

  h_client good, bad;
  h_client_open(&good, e, &s, "node-1");
  hello_ok(&good, NULL);
  h_client_open(&bad, e, &s, "node-1");
  hello_ok(&bad, NULL);

  /* 4 records of 100 KiB 'a': a few hundred bytes of zstd, 400 KiB inflated */
  h_client_batch(&bad, 1, 9, 0, 4, 100u << 10);
  assert_true(h_client_wait_msgs(&bad, 2, 10000));
  assert_int_equal(bad.msgs[1].type, CAIRN__ENVELOPE__MSG_ACK);
  assert_int_equal(bad.msgs[1].status, CAIRN__ACK_STATUS__ACK_REJECT);
  assert_memory_equal(bad.msgs[1].reason, "CAIRN_E_LIMIT: ", 15);
  assert_true(h_client_run(&bad, hc_is_closed, 10000));

  h_client_batch(&good, 1, 3, 0, 20, 0);
  assert_true(h_client_wait_msgs(&good, 2, 10000));
  assert_int_equal(good.msgs[1].status, CAIRN__ACK_STATUS__ACK_OK);
  assert_int_equal(good.msgs[1].stored, 20);
  assert_false(good.closed);
  h_client_close(&good);
  h_client_close(&bad);
  h_server_stop(&s);
}

static bool one_reject(void *ud) {
  agg_counters ctr;
  agg_counters_get(ud, &ctr);
  return ctr.rejects == 1;
}

static void frame_over_max_frame_closes_connection(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.max_frame = 4096;
  h_server_start(&s);
  h_client c;
  h_client_open(&c, e, &s, "node-1");
  hello_ok(&c, NULL);
  uint8_t *big = calloc(1, 10000);
  assert_non_null(big);
  h_client_batch_raw(&c, 1, 1, big, 10000, 10000);
  free(big);
  assert_true(h_client_run(&c, hc_is_closed, 10000));
  assert_int_equal(c.n_msgs, 1); /* no Ack */
  h_client_close(&c);
  /* the server's close callback may run just after the client saw the close */
  assert_true(h_wait(one_reject, s.a, 10000));
  h_server_stop(&s);
}

static void batch_with_invalid_zstd_payload_is_rejected(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  h_server_start(&s);
  h_client c;
  h_client_open(&c, e, &s, "node-1");
  hello_ok(&c, NULL);
  static const uint8_t junk[] = "this is not zstd";
  h_client_batch_raw(&c, 1, 1, junk, sizeof(junk), 100);
  assert_true(h_client_wait_msgs(&c, 2, 10000));
  assert_int_equal(c.msgs[1].status, CAIRN__ACK_STATUS__ACK_REJECT);
  assert_memory_equal(c.msgs[1].reason, "CAIRN_E_ZSTD: ", 14);
  assert_true(h_client_run(&c, hc_is_closed, 10000));
  h_client_close(&c);
  h_server_stop(&s);
}

static void client_from_another_ca_is_refused_and_server_keeps_serving(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  h_server_start(&s);
  h_client rogue, nocert, ok;
  h_client_open(&rogue, e, &s, "rogue");
  assert_true(h_client_run(&rogue, hc_is_closed, 10000));
  assert_int_equal(rogue.close_why, CAIRN_E_TLS);
  h_client_open(&nocert, e, &s, NULL);
  assert_true(h_client_run(&nocert, hc_is_closed, 10000));
  assert_int_not_equal(nocert.close_why, CAIRN_OK);
  assert_int_equal(nocert.n_msgs, 0);

  h_client_open(&ok, e, &s, "node-1");
  hello_ok(&ok, NULL);
  h_client_close(&rogue);
  h_client_close(&nocert);
  h_client_close(&ok);
  h_server_stop(&s);
}

/* Blocking HTTP GET from the test thread (the server runs in its own). */
static void http_get(const char *hostport, const char *path, char *out, size_t cap) {
  char host[64];
  snprintf(host, sizeof(host), "%s", hostport);
  char *colon = strrchr(host, ':');
  assert_non_null(colon);
  *colon = '\0';
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)atoi(colon + 1));
  assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  char req[256];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
  assert_int_equal(write(fd, req, (size_t)n), n);
  size_t len = 0;
  ssize_t r;
  while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0) len += (size_t)r;
  out[len] = '\0';
  close(fd);
}

static void metrics_endpoint_reports_counters(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  s.cfg.metrics_listen = (char *)"127.0.0.1:0";
  char pf[400];
  snprintf(pf, sizeof(pf), "%s/metrics.port", e->root);
  s.cfg.metrics_port_file = pf;
  h_server_start(&s);
  h_client c;
  h_client_open(&c, e, &s, "node-1");
  hello_ok(&c, NULL);
  h_client_batch(&c, 1, 5, 0, 12, 0);
  assert_true(h_client_wait_msgs(&c, 2, 10000));

  char addr[128] = "";
  FILE *f = fopen(pf, "r");
  assert_non_null(f);
  assert_non_null(fgets(addr, sizeof(addr), f));
  fclose(f);
  addr[strcspn(addr, "\n")] = '\0';
  assert_string_equal(addr, agg_metrics_addr(s.a));
  char body[8192];
  http_get(addr, "/metrics", body, sizeof(body));
  assert_non_null(strstr(body, "HTTP/1.0 200 OK"));
  assert_non_null(strstr(body, "\ncairn_aggregator_records_stored_total 12\n"));
  assert_non_null(strstr(body, "\ncairn_aggregator_batches_total 1\n"));
  assert_non_null(strstr(body, "\ncairn_aggregator_sessions 1\n"));
  assert_non_null(strstr(body, "cairn_aggregator_rejects_total{reason=\"limit\"} 0"));
  /* the batch was committed once: one observation in the commit histogram,
   * in the +Inf bucket and in _count; the chain has at least that link */
  assert_non_null(strstr(body, "# TYPE cairn_aggregator_commit_seconds histogram\n"));
  assert_non_null(strstr(body, "\ncairn_aggregator_commit_seconds_bucket{le=\"+Inf\"} 1\n"));
  assert_non_null(strstr(body, "\ncairn_aggregator_commit_seconds_count 1\n"));
  assert_non_null(strstr(body, "\ncairn_aggregator_commit_seconds_sum "));
  assert_non_null(strstr(body, "\ncairn_aggregator_chain_position 1\n"));
  assert_non_null(strstr(body, "\ncairn_aggregator_kafka_queue_messages 0\n"));
  http_get(addr, "/healthz", body, sizeof(body));
  assert_non_null(strstr(body, "200 OK"));
  http_get(addr, "/nope", body, sizeof(body));
  assert_non_null(strstr(body, "404"));
  h_client_close(&c);
  h_server_stop(&s);
}

static void port_file_holds_bound_address(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  char pf[400];
  snprintf(pf, sizeof(pf), "%s/agg.port", e->root);
  s.cfg.port_file = pf;
  h_server_start(&s);
  char addr[128] = "";
  FILE *f = fopen(pf, "r");
  assert_non_null(f);
  assert_non_null(fgets(addr, sizeof(addr), f));
  fclose(f);
  assert_memory_equal(addr, "127.0.0.1:", 10);
  assert_true(atoi(addr + 10) > 0);
  assert_string_equal(addr + strlen(addr) - 1, "\n");
  addr[strcspn(addr, "\n")] = '\0';
  assert_string_equal(addr, agg_listen_addr(s.a));
  h_server_stop(&s);
}

static void listen_address_in_use_fails_agg_new_naming_it(void **state) {
  h_env *e = *state;
  h_server s;
  h_server_config(&s, e);
  h_server_start(&s);
  h_server t;
  h_server_config(&t, e);
  char other[400];
  snprintf(other, sizeof(other), "%s/data2", e->root); /* one LMDB env per dir per process */
  t.cfg.data_dir = other;
  char addr[128];
  snprintf(addr, sizeof(addr), "%s", agg_listen_addr(s.a));
  t.cfg.listen = addr;
  char err[512] = "";
  agg *a = NULL;
  assert_int_equal(agg_new(&t.cfg, &a, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_null(a);
  assert_non_null(strstr(err, "--listen"));
  assert_non_null(strstr(err, addr));
  h_server_stop(&s);
}

int main(void) {
  cairn_log_setup(CAIRN_LOG_WARN, CAIRN_LOG_LOGFMT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(session_acks_stored_counts_and_dedupes_resends, setup, teardown),
      cmocka_unit_test_setup_teardown(hello_with_node_covered_by_certificate_stores_that_node, setup, teardown),
      cmocka_unit_test_setup_teardown(hello_with_node_not_covered_by_certificate_is_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(node_policy_lets_a_shared_certificate_state_matching_nodes,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(hello_with_empty_instance_id_is_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(batch_before_hello_closes_connection, setup, teardown),
      cmocka_unit_test_setup_teardown(oversized_batch_closes_only_that_connection, setup, teardown),
      cmocka_unit_test_setup_teardown(batch_with_invalid_zstd_payload_is_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(frame_over_max_frame_closes_connection, setup, teardown),
      cmocka_unit_test_setup_teardown(client_from_another_ca_is_refused_and_server_keeps_serving, setup, teardown),
      cmocka_unit_test_setup_teardown(metrics_endpoint_reports_counters, setup, teardown),
      cmocka_unit_test_setup_teardown(port_file_holds_bound_address, setup, teardown),
      cmocka_unit_test_setup_teardown(listen_address_in_use_fails_agg_new_naming_it, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
