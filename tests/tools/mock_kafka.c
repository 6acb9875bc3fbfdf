/* tests/tools/mock_kafka.c: a Kafka cluster for tests and the demo.
 *
 * Starts librdkafka's mock cluster (rdkafka_mock.h: it speaks the real Kafka
 * protocol on loopback), creates the topic, prints the bootstrap address as the
 * first stdout line (and into --port-file), and runs until SIGINT/SIGTERM.
 * SIGUSR1 takes every broker down, SIGUSR2 brings them back (fault tests).
 *
 *   mock-kafka [--brokers N] [--topic NAME] [--partitions P] [--port-file FILE]
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop, g_down, g_up;

static void on_signal(int sig) {
  if (sig == SIGUSR1) g_down = 1;
  else if (sig == SIGUSR2) g_up = 1;
  else g_stop = 1;
}

static int write_port_file(const char *path, const char *text) {
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fprintf(f, "%s\n", text);
  if (fclose(f) != 0) return -1;
  return rename(tmp, path);
}

int main(int argc, char **argv) {
  int brokers = 1, partitions = 4;
  const char *topic = "cairn-records", *port_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--brokers") && i + 1 < argc) brokers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--topic") && i + 1 < argc) topic = argv[++i];
    else if (!strcmp(argv[i], "--partitions") && i + 1 < argc) partitions = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--port-file") && i + 1 < argc) port_file = argv[++i];
    else {
      fprintf(stderr,
              "usage: mock-kafka [--brokers N] [--topic NAME] [--partitions P] [--port-file FILE]\n");
      return 2;
    }
  }
  if (brokers < 1 || partitions < 1) {
    fprintf(stderr, "mock-kafka: --brokers and --partitions must be >= 1\n");
    return 2;
  }
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* the mock cluster needs a client instance to live in; a producer is enough */
  if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "mock-kafka: %s\n", errstr);
    return 2;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) {
    fprintf(stderr, "mock-kafka: cannot create client: %s\n", errstr);
    return 2;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    fprintf(stderr, "mock-kafka: cannot start the mock cluster\n");
    rd_kafka_destroy(rk);
    return 2;
  }
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, topic, partitions, brokers < 3 ? brokers : 3);
  if (err) {
    fprintf(stderr, "mock-kafka: cannot create topic %s: %s\n", topic, rd_kafka_err2str(err));
    return 2;
  }
  const char *boot = rd_kafka_mock_cluster_bootstraps(mc);
  printf("%s\n", boot);
  fflush(stdout);
  if (port_file && write_port_file(port_file, boot) != 0) {
    fprintf(stderr, "mock-kafka: cannot write --port-file %s\n", port_file);
    return 2;
  }
  fprintf(stderr, "mock-kafka: %d broker(s) at %s, topic %s with %d partitions\n", brokers, boot,
          topic, partitions);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  while (!g_stop) {
    pause();
    if (g_down) {
      g_down = 0;
      for (int b = 1; b <= brokers; b++) rd_kafka_mock_broker_set_down(mc, b);
      fprintf(stderr, "mock-kafka: brokers down\n");
    }
    if (g_up) {
      g_up = 0;
      for (int b = 1; b <= brokers; b++) rd_kafka_mock_broker_set_up(mc, b);
      fprintf(stderr, "mock-kafka: brokers up\n");
    }
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
