/* tests/aggregator/config_copy_test.c: agg_config_copy (what agg_new keeps
 * of the operator's configuration) owns every string and list option. The
 * copy used to duplicate a hand-kept list of fields; --kafka-format was
 * missing from it, so the aggregator freed that string twice at shutdown
 * (caught as an abort on SIGTERM). Run under ASan, this test fails on any
 * option the copy shares with its source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator.h"

static void copy_outlives_the_source(void **state) {
  (void)state;
  char *argv[] = {"cairn-aggregator", "--data", "/tmp/x", "--listen", "127.0.0.1:0",
                  "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem",
                  "--kafka-brokers", "127.0.0.1:9092", "--kafka-topic", "t",
                  "--kafka-topic-audit", "ta", "--kafka-topic-k8s-audit", "tk",
                  "--kafka-format", "protobuf", "--kafka-property", "acks=all",
                  "--node-policy", "cn=ip-*", "--metrics-listen", "127.0.0.1:0",
                  "--port-file", "/tmp/p", "--log-level", "warn"};
  int argc = (int)(sizeof(argv) / sizeof(argv[0]));
  agg_config src, dst;
  memset(&src, 0, sizeof(src));
  bool help = false, check = false;
  char err[512] = "";
  assert_int_equal(agg_config_load(&src, argc, argv, &help, &check, err, sizeof(err)), CAIRN_OK);
  assert_int_equal(agg_config_copy(&dst, &src), CAIRN_OK);
  assert_ptr_not_equal(dst.kafka_format, src.kafka_format);
  assert_ptr_not_equal(dst.data_dir, src.data_dir);
  agg_config_free(&src);
  assert_string_equal(dst.kafka_format, "protobuf");
  assert_string_equal(dst.kafka_topic_k8s, "tk");
  assert_string_equal(dst.data_dir, "/tmp/x");
  assert_int_equal(dst.kafka_property.n, 1);
  assert_string_equal(dst.kafka_property.v[0], "acks=all");
  assert_int_equal(dst.node_policy.n, 1);
  agg_config_free(&dst);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(copy_outlives_the_source),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
