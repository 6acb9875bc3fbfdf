/* tests/aggregator/kafka_test.c: the Kafka forwarder against librdkafka's mock
 * cluster (rdkafka_mock.h, real Kafka protocol on loopback) started in this
 * process: every stored record arrives exactly once, keyed by source stream,
 * the "kafka" cursor reaches last_seq, and a restart resumes from the cursor.
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <time.h>

#include "tests/aggregator/harness.h"

#define INSTANCE "feedfacefeedfacefeedfacefeedface"
#define TOPIC "cairn-records"
#define PARTITIONS 3
#define MAX_SEQ 1024

typedef struct kt_state {
  h_env env;
  rd_kafka_t *host;               /* owns the mock cluster */
  rd_kafka_mock_cluster_t *mock;
  char brokers[256];
} kt_state;

static int setup(void **state) {
  kt_state *k = calloc(1, sizeof(*k));
  h_env_init(&k->env);
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
  k->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  assert_non_null(k->host);
  k->mock = rd_kafka_mock_cluster_new(k->host, 1);
  assert_non_null(k->mock);
  assert_int_equal(rd_kafka_mock_topic_create(k->mock, TOPIC, PARTITIONS, 1), 0);
  snprintf(k->brokers, sizeof(k->brokers), "%s", rd_kafka_mock_cluster_bootstraps(k->mock));
  *state = k;
  return 0;
}

static int teardown(void **state) {
  kt_state *k = *state;
  rd_kafka_mock_cluster_destroy(k->mock);
  rd_kafka_destroy(k->host);
  h_env_fini(&k->env);
  free(k);
  return 0;
}

static agg *g_wait_agg; /* test thread only: target of cursor_at */
static uint64_t g_wait_cursor;
static bool cursor_at(void *ud) {
  agg_counters c;
  agg_counters_get(g_wait_agg, &c);
  return c.kafka_cursor == g_wait_cursor;
}

/* Read the whole topic from the beginning; count[seq] gets each delivery.
 * Returns messages seen; stops when `expect` were seen and every partition
 * reported EOF, or at the deadline. Keys are checked against the JSON. */
static size_t consume_topic(const char *brokers, const char *topic, unsigned *count, size_t expect,
                            int timeout_ms);
static size_t consume_all(const char *brokers, unsigned *count, size_t expect, int timeout_ms) {
  return consume_topic(brokers, TOPIC, count, expect, timeout_ms);
}

static size_t consume_topic(const char *brokers, const char *topic, unsigned *count, size_t expect,
                            int timeout_ms) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)), 0);
  assert_int_equal(rd_kafka_conf_set(conf, "group.id", "kafka-test", err, sizeof(err)), 0);
  assert_int_equal(rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err)), 0);
  assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)), 0);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  assert_non_null(rk);
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS);
  for (int p = 0; p < PARTITIONS; p++)
    rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  assert_int_equal(rd_kafka_assign(rk, parts), 0);
  rd_kafka_topic_partition_list_destroy(parts);

  size_t seen = 0;
  bool eof[PARTITIONS] = {false};
  int64_t deadline = cairn_time_mono_ns() + (int64_t)timeout_ms * 1000000;
  while (cairn_time_mono_ns() < deadline) {
    bool all_eof = true;
    for (int p = 0; p < PARTITIONS; p++) all_eof &= eof[p];
    if (seen >= expect && all_eof) break;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->partition >= 0 && m->partition < PARTITIONS) eof[m->partition] = true;
    } else if (!m->err) {
      json_error_t je;
      json_t *o = json_loadb(m->payload, m->len, 0, &je);
      assert_non_null(o);
      json_int_t seq = json_integer_value(json_object_get(o, "seq"));
      assert_true(seq > 0 && seq < MAX_SEQ);
      count[seq]++;
      seen++;
      eof[m->partition] = false;
      const char *inst = json_string_value(json_object_get(o, "instance_id"));
      assert_non_null(inst);
      assert_string_equal(inst, INSTANCE);
      /* key = "<instance_id>/<file_stream>" */
      assert_true(m->key_len > strlen(INSTANCE) + 1);
      assert_memory_equal(m->key, INSTANCE "/", strlen(INSTANCE) + 1);
      json_decref(o);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return seen;
}

static void kafka_forwarder_delivers_every_record_once_and_advances_cursor(void **state) {
  kt_state *k = *state;
  h_server s;
  h_server_config(&s, &k->env);
  s.cfg.kafka_brokers = k->brokers;
  h_server_start(&s);

  h_client c;
  h_client_open(&c, &k->env, &s, "node-1");
  h_client_hello(&c, INSTANCE, NULL);
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  h_client_batch(&c, 1, 1, 0, 40, 0);
  h_client_batch(&c, 2, 2, 0, 30, 0);
  h_client_batch(&c, 3, 1, 4000, 20, 0);
  assert_true(h_client_wait_msgs(&c, 4, 10000));
  for (int i = 1; i <= 3; i++) assert_int_equal(c.msgs[i].status, CAIRN__ACK_STATUS__ACK_OK);
  h_client_close(&c);

  g_wait_agg = s.a;
  g_wait_cursor = 90;
  assert_true(h_wait(cursor_at, NULL, 30000));
  agg_counters ctr;
  agg_counters_get(s.a, &ctr);
  assert_true(ctr.kafka_delivered >= 90);
  h_server_stop(&s);

  unsigned *count = calloc(MAX_SEQ, sizeof(*count));
  assert_int_equal(consume_all(k->brokers, count, 90, 30000), 90);
  for (int seq = 1; seq <= 90; seq++) assert_int_equal(count[seq], 1);

  /* the cursor is durable */
  sto_env *env = NULL;
  sto_options ro = {.read_only = true};
  assert_int_equal(sto_open(k->env.data, &ro, &env, NULL, 0), CAIRN_OK);
  uint64_t cur = 0;
  assert_int_equal(sto_cursor_get(env, "kafka", &cur), CAIRN_OK);
  assert_int_equal(cur, 90);
  sto_close(env);

  /* a restart forwards only what is new */
  h_server_config(&s, &k->env);
  s.cfg.kafka_brokers = k->brokers;
  h_server_start(&s);
  h_client_open(&c, &k->env, &s, "node-1");
  h_client_hello(&c, INSTANCE, NULL);
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  h_client_batch(&c, 1, 3, 0, 10, 0);
  assert_true(h_client_wait_msgs(&c, 2, 10000));
  assert_int_equal(c.msgs[1].stored, 10);
  h_client_close(&c);
  g_wait_agg = s.a;
  g_wait_cursor = 100;
  assert_true(h_wait(cursor_at, NULL, 30000));
  h_server_stop(&s);
  memset(count, 0, MAX_SEQ * sizeof(*count));
  assert_int_equal(consume_all(k->brokers, count, 100, 30000), 100);
  for (int seq = 1; seq <= 100; seq++) assert_int_equal(count[seq], 1);
  free(count);
}

/* --kafka-topic-audit / --kafka-topic-k8s-audit route records by source type */
static void kafka_topic_per_source_type(void **state) {
  kt_state *k = *state;
  assert_int_equal(rd_kafka_mock_topic_create(k->mock, "cairn-audit", PARTITIONS, 1), 0);
  assert_int_equal(rd_kafka_mock_topic_create(k->mock, "cairn-k8s-audit", PARTITIONS, 1), 0);
  h_server s;
  h_server_config(&s, &k->env);
  s.cfg.kafka_brokers = k->brokers;
  s.cfg.kafka_topic_audit = (char *)"cairn-audit";
  s.cfg.kafka_topic_k8s = (char *)"cairn-k8s-audit";
  h_server_start(&s);
  h_client c;
  h_client_open(&c, &k->env, &s, "node-1");
  h_client_hello(&c, INSTANCE, NULL);
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  h_client_batch_src(&c, 1, 1, 0, 10, 0, CAIRN__SOURCE__SOURCE_CONTAINER);   /* seq 1..10 */
  h_client_batch_src(&c, 2, 2, 0, 7, 0, CAIRN__SOURCE__SOURCE_AUDIT);        /* 11..17 */
  h_client_batch_src(&c, 3, 3, 0, 5, 0, CAIRN__SOURCE__SOURCE_K8S_AUDIT);    /* 18..22 */
  assert_true(h_client_wait_msgs(&c, 4, 10000));
  h_client_close(&c);
  g_wait_agg = s.a;
  g_wait_cursor = 22;
  assert_true(h_wait(cursor_at, NULL, 30000));
  h_server_stop(&s);

  unsigned *count = calloc(MAX_SEQ, sizeof(*count));
  assert_int_equal(consume_topic(k->brokers, TOPIC, count, 10, 30000), 10);
  for (int seq = 1; seq <= 10; seq++) assert_int_equal(count[seq], 1);
  memset(count, 0, MAX_SEQ * sizeof(*count));
  assert_int_equal(consume_topic(k->brokers, "cairn-audit", count, 7, 30000), 7);
  for (int seq = 11; seq <= 17; seq++) assert_int_equal(count[seq], 1);
  memset(count, 0, MAX_SEQ * sizeof(*count));
  assert_int_equal(consume_topic(k->brokers, "cairn-k8s-audit", count, 5, 30000), 5);
  for (int seq = 18; seq <= 22; seq++) assert_int_equal(count[seq], 1);
  free(count);
}

static bool kafka_failed_once(void *ud) {
  agg_counters c;
  agg_counters_get(g_wait_agg, &c);
  return c.kafka_failed >= 1;
}

static void kafka_outage_delays_forwarding_and_loses_nothing(void **state) {
  kt_state *k = *state;
  rd_kafka_mock_broker_set_down(k->mock, 1);
  h_server s;
  h_server_config(&s, &k->env);
  s.cfg.kafka_brokers = k->brokers;
  char *props[] = {(char *)"message.timeout.ms=800"};
  s.cfg.kafka_property.v = props;
  s.cfg.kafka_property.n = 1;
  h_server_start(&s);
  h_client c;
  h_client_open(&c, &k->env, &s, "node-1");
  h_client_hello(&c, INSTANCE, NULL);
  assert_true(h_client_wait_msgs(&c, 1, 10000));
  h_client_batch(&c, 1, 5, 0, 20, 0);
  assert_true(h_client_wait_msgs(&c, 2, 10000));
  assert_int_equal(c.msgs[1].stored, 20); /* storage acks while Kafka is down */
  h_client_close(&c);

  g_wait_agg = s.a;
  assert_true(h_wait(kafka_failed_once, NULL, 30000));
  agg_counters ctr;
  agg_counters_get(s.a, &ctr);
  assert_int_equal(ctr.kafka_cursor, 0); /* nothing delivered, cursor stays */
  rd_kafka_mock_broker_set_up(k->mock, 1);
  g_wait_cursor = 20;
  assert_true(h_wait(cursor_at, NULL, 30000));
  h_server_stop(&s);

  unsigned *count = calloc(MAX_SEQ, sizeof(*count));
  size_t n = consume_all(k->brokers, count, 20, 30000);
  assert_true(n >= 20); /* at-least-once: a rewind may have produced some twice */
  for (int seq = 1; seq <= 20; seq++) assert_true(count[seq] >= 1);
  free(count);
}

static void kafka_property_rejected_by_librdkafka_fails_agg_new(void **state) {
  kt_state *k = *state;
  h_server s;
  h_server_config(&s, &k->env);
  s.cfg.kafka_brokers = k->brokers;
  char *props[] = {(char *)"linger.ms=10", (char *)"no.such.property=1"};
  s.cfg.kafka_property.v = props;
  s.cfg.kafka_property.n = 2;
  char err[512] = "";
  agg *a = NULL;
  assert_int_equal(agg_new(&s.cfg, &a, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_null(a);
  assert_non_null(strstr(err, "--kafka-property no.such.property=1"));
}

int main(void) {
  cairn_log_setup(CAIRN_LOG_WARN, CAIRN_LOG_LOGFMT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(kafka_forwarder_delivers_every_record_once_and_advances_cursor,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(kafka_topic_per_source_type, setup, teardown),
      cmocka_unit_test_setup_teardown(kafka_outage_delays_forwarding_and_loses_nothing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(kafka_property_rejected_by_librdkafka_fails_agg_new, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
