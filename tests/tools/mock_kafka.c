/* tests/tools/mock_kafka.c: a Kafka cluster for tests and the demo.
 *
 * Starts librdkafka's mock cluster (rdkafka_mock.h: it speaks the real Kafka
 * protocol on loopback), creates the topic, prints the bootstrap address as the
 * first stdout line (and into --port-file), and runs until SIGINT/SIGTERM.
 * SIGUSR1 takes every broker down, SIGUSR2 brings them back (fault tests).
 *
 * --control FILE injects request errors (rd_kafka_mock_push_request_errors):
 * the tool polls FILE every 50 ms; when it appears it runs the one command in
 * it, logs it, and deletes the file (write it elsewhere and rename it there):
 *   produce-errors COUNT NAME[,NAME...] [RTT_MS]
 *       the next COUNT Produce requests to each broker fail, cycling through
 *       the named errors, each answered after RTT_MS (default 0); once all
 *       were served it logs "every injected Produce error was served"
 * NAME is a librdkafka error name without the prefix, e.g.
 * NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS.
 * Known limit of the mock cluster (librdkafka 2.0.2): when two Produce
 * requests of one partition are in flight and the first gets an injected
 * error, it still appends the second, whose sequence no longer follows what
 * it holds (a real broker answers OUT_OF_ORDER_SEQUENCE_NUMBER); the
 * idempotent producer then reports the first batch delivered without an
 * offset and its messages are never in the topic. Producers that pipeline
 * batches of a partition (grouped messages) need
 * max.in.flight.requests.per.connection=1 in tests that inject errors.
 *
 *   mock-kafka [--brokers N] [--topic NAME] [--partitions P] [--port-file FILE]
 *              [--control FILE]
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PRODUCE_API_KEY 0 /* Kafka protocol: ProduceRequest */
#define MAX_BURST 10000

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

/* librdkafka error code named name (without "RD_KAFKA_RESP_ERR_"); false if unknown. */
static bool err_by_name(const char *name, rd_kafka_resp_err_t *out) {
  const struct rd_kafka_err_desc *d;
  size_t n;
  rd_kafka_get_err_descs(&d, &n);
  for (size_t i = 0; i < n; i++) {
    if (d[i].name && !strcmp(d[i].name, name)) {
      *out = d[i].code;
      return true;
    }
  }
  return false;
}

/* Run the command in the control file at path (if present) and delete it.
 * The errors go onto each broker's error stack (the broker-level variant of
 * rd_kafka_mock_push_request_errors), because only those stacks can be
 * counted: *pending stays true until every pushed error was served. */
static void control_poll(rd_kafka_mock_cluster_t *mc, int brokers, const char *path,
                         bool *pending) {
  if (*pending) {
    size_t left = 0;
    for (int b = 1; b <= brokers; b++) {
      size_t c = 0;
      if (rd_kafka_mock_broker_error_stack_cnt(mc, b, PRODUCE_API_KEY, &c) == 0) left += c;
    }
    if (left == 0) {
      *pending = false;
      fprintf(stderr, "mock-kafka: every injected Produce error was served\n");
    }
  }
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[4096] = "", names[4000] = "";
  if (!fgets(line, sizeof(line), f)) line[0] = 0;
  fclose(f);
  unlink(path);
  long count = 0, rtt = 0;
  int got = sscanf(line, "produce-errors %ld %3999s %ld", &count, names, &rtt);
  if (got < 2 || count < 1 || count > MAX_BURST || rtt < 0 || rtt > 60000) {
    line[strcspn(line, "\n")] = 0;
    fprintf(stderr,
            "mock-kafka: control: cannot parse '%s' (want: produce-errors COUNT NAME,... [RTT_MS])\n",
            line);
    return;
  }
  char shown[4000];
  snprintf(shown, sizeof(shown), "%s", names); /* strtok_r cuts names */
  rd_kafka_resp_err_t kinds[64];
  size_t nk = 0;
  for (char *save = NULL, *tok = strtok_r(names, ",", &save); tok && nk < 64;
       tok = strtok_r(NULL, ",", &save)) {
    if (!err_by_name(tok, &kinds[nk])) {
      fprintf(stderr, "mock-kafka: control: unknown error name %s\n", tok);
      return;
    }
    nk++;
  }
  for (int b = 1; b <= brokers; b++)
    for (long i = 0; i < count; i++)
      rd_kafka_mock_broker_push_request_error_rtts(mc, b, PRODUCE_API_KEY, 1,
                                                   kinds[(size_t)i % nk], (int)rtt);
  *pending = true;
  fprintf(stderr, "mock-kafka: pushed %ld Produce errors per broker (%s, %ld ms each)\n", count,
          shown, rtt);
}

int main(int argc, char **argv) {
  int brokers = 1, partitions = 4;
  const char *topic = "cairn-records", *port_file = NULL, *control = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--brokers") && i + 1 < argc) brokers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--topic") && i + 1 < argc) topic = argv[++i];
    else if (!strcmp(argv[i], "--partitions") && i + 1 < argc) partitions = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--port-file") && i + 1 < argc) port_file = argv[++i];
    else if (!strcmp(argv[i], "--control") && i + 1 < argc) control = argv[++i];
    else {
      fprintf(stderr, "usage: mock-kafka [--brokers N] [--topic NAME] [--partitions P] "
                      "[--port-file FILE] [--control FILE]\n");
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
  bool pending = false; /* injected errors not yet served */
  while (!g_stop) {
    if (control) {
      struct timespec ts = {0, 50 * 1000000L}; /* a signal cuts it short */
      nanosleep(&ts, NULL);
      control_poll(mc, brokers, control, &pending);
    } else {
      pause();
    }
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
