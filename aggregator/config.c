/* aggregator/config.c: the option table of cairn-aggregator and the checks the
 * table cannot express. This is the only file that knows about flags, CAIRN_*
 * variables and YAML keys; the runtime takes the filled agg_config struct.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator.h"
#include "aggregator/internal.h"
#include "proto/http.h"
#include "common/log.h"

#define OPT(flag, key, type, field, def, req, help) \
  {flag, key, type, offsetof(agg_config, field), def, req, false, help}

static const cairn_opt agg_opts[] = {
    OPT("data", "data", CAIRN_OPT_STR, data_dir, NULL, true, "LMDB data directory (created if missing)"),
    OPT("listen", "listen", CAIRN_OPT_STR, listen, NULL, true, "HOST:PORT for collectors (mTLS)"),
    OPT("tls-cert", "tls.cert", CAIRN_OPT_STR, tls_cert, NULL, true, "PEM server certificate"),
    OPT("tls-key", "tls.key", CAIRN_OPT_STR, tls_key, NULL, true, "PEM server private key"),
    OPT("tls-ca", "tls.ca", CAIRN_OPT_STR, tls_ca, NULL, true,
        "PEM CA that signs collector certificates"),
    OPT("tls-min-version", "tls.min_version", CAIRN_OPT_STR, tls_min_version, "1.3", false,
        "1.3, or 1.2 to also accept TLS 1.2 collectors (explicit opt-in, warned at start)"),
    OPT("handshake-timeout", "limits.handshake_timeout", CAIRN_OPT_DURATION, handshake_timeout_ns,
        "10s", false, "close a connection whose TLS handshake is not done this long after accept"),
    OPT("idle-timeout", "limits.idle_timeout", CAIRN_OPT_DURATION, idle_timeout_ns, "5m", false,
        "close a session that sent no frame for this long while none of its batches was pending"),
    OPT("max-conns-per-ip", "limits.max_conns_per_ip", CAIRN_OPT_U64, max_conns_per_ip, "64",
        false, "open connections accepted from one client address; more are closed at once"),
    OPT("max-conns", "limits.max_conns", CAIRN_OPT_U64, max_conns, "4096", false,
        "open connections accepted in total; more are closed at once"),
    OPT("kafka-brokers", "kafka.brokers", CAIRN_OPT_STR, kafka_brokers, NULL, false,
        "HOST:PORT,... bootstrap brokers; forwarding is off without it"),
    OPT("kafka-topic", "kafka.topic", CAIRN_OPT_STR, kafka_topic, "cairn-records", false,
        "Kafka topic for stored records (JSON values)"),
    OPT("kafka-topic-audit", "kafka.topics.audit", CAIRN_OPT_STR, kafka_topic_audit, NULL, false,
        "topic for auditd records (default: --kafka-topic)"),
    OPT("kafka-topic-k8s-audit", "kafka.topics.k8s_audit", CAIRN_OPT_STR, kafka_topic_k8s, NULL,
        false, "topic for Kubernetes API audit records (default: --kafka-topic)"),
    OPT("node-policy", "identity.node_policy", CAIRN_OPT_LIST, node_policy, NULL, false,
        "IDENTITY=NODE-GLOB (repeatable): a certificate CN may state any node matching the glob; "
        "for one cluster-wide collector certificate, weaker than per-node SANs"),
    OPT("kafka-property", "kafka.properties", CAIRN_OPT_LIST, kafka_property, NULL, false,
        "KEY=VALUE passed to librdkafka (repeatable)"),
    OPT("kafka-records-per-message", "kafka.records_per_message", CAIRN_OPT_U64,
        kafka_records_per_message, "1", false,
        "1: one JSON record per Kafka message; N > 1: up to N consecutive records of one source "
        "stream per message, as JSON lines with headers cairn-first-seq, cairn-last-seq, "
        "cairn-count (fewer, larger messages: far less producer CPU); N > 1 also sets "
        "max.in.flight.requests.per.connection=1 unless --kafka-property sets it"),
    OPT("kafka-format", "kafka.format", CAIRN_OPT_STR, kafka_format, "json", false,
        "json: records as JSON objects (lines); protobuf: a cairn.RecordBatch of the records' "
        "stored bytes, exactly the bytes the hash chain covers (header cairn-format: protobuf)"),
    OPT("query-listen", "query.listen", CAIRN_OPT_STR, query_listen, NULL, false,
        "HOST:PORT for remote queries (mTLS with the --tls-* files; needs --query-acl)"),
    OPT("query-acl", "query.acl", CAIRN_OPT_STR, query_acl, NULL, false,
        "YAML file mapping certificate identities to the namespaces and sources they may "
        "query; identities not listed are refused"),
    OPT("query-max-conns", "query.max_conns", CAIRN_OPT_U64, query_max_conns, "16", false,
        "open query connections accepted at once (each runs one query thread)"),
    OPT("query-port-file", "query.port_file", CAIRN_OPT_STR, query_port_file, NULL, false,
        "write the bound HOST:PORT of --query-listen here"),
    OPT("metrics-listen", "metrics.listen", CAIRN_OPT_STR, metrics_listen, NULL, false,
        "HOST:PORT serving GET /metrics, /healthz and /readyz"),
    OPT("port-file", "port_file", CAIRN_OPT_STR, port_file, NULL, false,
        "write the bound HOST:PORT of --listen here"),
    OPT("metrics-port-file", "metrics.port_file", CAIRN_OPT_STR, metrics_port_file, NULL, false,
        "write the bound HOST:PORT of --metrics-listen here"),
    OPT("log-level", "log.level", CAIRN_OPT_STR, log_level, "info", false,
        "debug, info, warn or error"),
    OPT("log-format", "log.format", CAIRN_OPT_STR, log_format, "logfmt", false, "logfmt or json"),
    OPT("no-sync", "storage.no_sync", CAIRN_OPT_BOOL, no_sync, "false", false,
        "skip fsync at commit (loses the last commits on power loss)"),
    OPT("map-size", "storage.map_size", CAIRN_OPT_SIZE, map_size, "1GiB", false,
        "initial LMDB map size; grows on demand"),
    OPT("max-map-size", "storage.max_map_size", CAIRN_OPT_SIZE, max_map_size, "64GiB", false,
        "LMDB map never grows beyond this; then batches are answered RETRY"),
    OPT("max-frame", "limits.max_frame", CAIRN_OPT_SIZE, max_frame, "16MiB", false,
        "largest wire frame accepted"),
    OPT("max-batch-bytes", "limits.max_batch_bytes", CAIRN_OPT_SIZE, max_batch_bytes, "64MiB",
        false, "largest decompressed batch accepted"),
    OPT("max-batch-records", "limits.max_batch_records", CAIRN_OPT_U64, max_batch_records,
        "100000", false, "most records in one batch"),
    OPT("group-commit", "storage.group_commit", CAIRN_OPT_U64, group_commit, "64", false,
        "most batches committed in one LMDB transaction"),
    OPT("shutdown-timeout", "shutdown_timeout", CAIRN_OPT_DURATION, shutdown_timeout_ns, "10s",
        false, "bound on draining acks and flushing Kafka at shutdown"),
    OPT("signing-key", "integrity.signing_key", CAIRN_OPT_STR, signing_key, NULL, false,
        "PEM Ed25519 key (mode 0600) signing chain checkpoints; default DATA/signing.key, "
        "generated on first start"),
    OPT("sign-interval", "integrity.sign_interval", CAIRN_OPT_DURATION, sign_interval_ns, "10s",
        false, "sign a chain checkpoint this often when the chain advanced (and at shutdown)"),
    OPT("retention", "storage.retention", CAIRN_OPT_DURATION, retention_ns, "0s", false,
        "delete records older than this (e.g. 7d, 12h) from LMDB, never before Kafka "
        "acknowledged them; 0s keeps them forever; without --kafka-brokers by age alone"),
};

#define AGG_NOPTS (sizeof(agg_opts) / sizeof(agg_opts[0]))

static const char agg_synopsis[] =
    "cairn-aggregator [--config FILE] --data DIR --listen HOST:PORT --tls-cert F --tls-key F "
    "--tls-ca F [--kafka-brokers HOST:PORT,...] [--kafka-topic NAME] [--query-listen HOST:PORT --query-acl FILE] "
    "[--metrics-listen HOST:PORT] [--signing-key FILE] [--sign-interval DURATION]";

cairn_err agg_config_validate(const agg_config *cfg, char *errbuf, size_t errlen) {
  char host[256];
  uint16_t port;
  if (cfg->query_listen && *cfg->query_listen) {
    if (pb_http_hostport_split(cfg->query_listen, host, sizeof(host), &port) != CAIRN_OK) {
      snprintf(errbuf, errlen, "--query-listen: '%s' is not HOST:PORT (e.g. 0.0.0.0:7401)",
               cfg->query_listen);
      return CAIRN_E_CONFIG;
    }
    if (!cfg->query_acl || !*cfg->query_acl) {
      snprintf(errbuf, errlen, "--query-listen needs --query-acl FILE: the identities allowed "
                               "to query and what each may read (nobody is allowed by default)");
      return CAIRN_E_CONFIG;
    }
  }
  if (cfg->query_max_conns > 100000) {
    snprintf(errbuf, errlen, "--query-max-conns: %llu is too large (at most 100000)",
             (unsigned long long)cfg->query_max_conns);
    return CAIRN_E_CONFIG;
  }
  if (!cfg->data_dir || !*cfg->data_dir) {
    snprintf(errbuf, errlen, "--data: must name a directory");
    return CAIRN_E_CONFIG;
  }
  if (!cfg->listen || pb_http_hostport_split(cfg->listen, host, sizeof(host), &port) != CAIRN_OK) {
    snprintf(errbuf, errlen, "--listen: '%s' is not HOST:PORT (e.g. 0.0.0.0:7400)",
             cfg->listen ? cfg->listen : "");
    return CAIRN_E_CONFIG;
  }
  if (cfg->metrics_listen && *cfg->metrics_listen &&
      pb_http_hostport_split(cfg->metrics_listen, host, sizeof(host), &port) != CAIRN_OK) {
    snprintf(errbuf, errlen, "--metrics-listen: '%s' is not HOST:PORT (e.g. 0.0.0.0:9400)",
             cfg->metrics_listen);
    return CAIRN_E_CONFIG;
  }
  cairn_log_level lvl;
  if (cfg->log_level && !cairn_log_level_parse(cfg->log_level, &lvl)) {
    snprintf(errbuf, errlen, "--log-level: '%s' is not debug, info, warn or error", cfg->log_level);
    return CAIRN_E_CONFIG;
  }
  if (cfg->log_format && strcmp(cfg->log_format, "logfmt") != 0 &&
      strcmp(cfg->log_format, "json") != 0) {
    snprintf(errbuf, errlen, "--log-format: '%s' is not logfmt or json", cfg->log_format);
    return CAIRN_E_CONFIG;
  }
  if (cfg->max_frame > UINT32_MAX || (cfg->max_frame && cfg->max_frame < 64)) {
    snprintf(errbuf, errlen, "--max-frame: %llu is out of range (64 bytes .. 4GiB)",
             (unsigned long long)cfg->max_frame);
    return CAIRN_E_CONFIG;
  }
  if (cfg->max_batch_records > UINT32_MAX) {
    snprintf(errbuf, errlen, "--max-batch-records: %llu is too large (at most 4294967295)",
             (unsigned long long)cfg->max_batch_records);
    return CAIRN_E_CONFIG;
  }
  if (cfg->group_commit > 100000) {
    snprintf(errbuf, errlen, "--group-commit: %llu is too large (at most 100000)",
             (unsigned long long)cfg->group_commit);
    return CAIRN_E_CONFIG;
  }
  if (cfg->map_size && cfg->max_map_size && cfg->map_size > cfg->max_map_size) {
    snprintf(errbuf, errlen, "--map-size (%llu) is larger than --max-map-size (%llu)",
             (unsigned long long)cfg->map_size, (unsigned long long)cfg->max_map_size);
    return CAIRN_E_CONFIG;
  }
  if (cfg->tls_min_version && strcmp(cfg->tls_min_version, "1.3") != 0 &&
      strcmp(cfg->tls_min_version, "1.2") != 0) {
    snprintf(errbuf, errlen, "--tls-min-version: '%s' is not 1.3 or 1.2", cfg->tls_min_version);
    return CAIRN_E_CONFIG;
  }
  if (cfg->handshake_timeout_ns < 0 ||
      (cfg->handshake_timeout_ns && cfg->handshake_timeout_ns < 100000000LL) ||
      cfg->handshake_timeout_ns > 3600LL * 1000000000LL) {
    snprintf(errbuf, errlen, "--handshake-timeout: must be between 100ms and 1h (e.g. 10s)");
    return CAIRN_E_CONFIG;
  }
  if (cfg->idle_timeout_ns < 0 || (cfg->idle_timeout_ns && cfg->idle_timeout_ns < 100000000LL)) {
    snprintf(errbuf, errlen, "--idle-timeout: must be at least 100ms (e.g. 5m)");
    return CAIRN_E_CONFIG;
  }
  if (cfg->max_conns_per_ip > 1000000 || cfg->max_conns > 1000000) {
    snprintf(errbuf, errlen, "--max-conns / --max-conns-per-ip: at most 1000000");
    return CAIRN_E_CONFIG;
  }
  if (cfg->sign_interval_ns < 0) {
    snprintf(errbuf, errlen, "--sign-interval: must not be negative (e.g. 10s)");
    return CAIRN_E_CONFIG;
  }
  if (cfg->retention_ns < 0 || (cfg->retention_ns && cfg->retention_ns < 1000000000LL)) {
    snprintf(errbuf, errlen, "--retention: must be 0s (keep forever) or at least 1s (e.g. 7d)");
    return CAIRN_E_CONFIG;
  }
  if (cfg->shutdown_timeout_ns < 0) {
    snprintf(errbuf, errlen, "--shutdown-timeout: must not be negative");
    return CAIRN_E_CONFIG;
  }
  for (size_t i = 0; i < cfg->node_policy.n; i++) {
    const char *kv = cfg->node_policy.v[i];
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || !eq[1]) {
      snprintf(errbuf, errlen,
               "--node-policy: '%s' is not IDENTITY=NODE-GLOB (e.g. cairn-collector=ip-10-*)", kv);
      return CAIRN_E_CONFIG;
    }
  }
  if (cfg->kafka_format && strcmp(cfg->kafka_format, "json") != 0 &&
      strcmp(cfg->kafka_format, "protobuf") != 0) {
    snprintf(errbuf, errlen, "--kafka-format: '%s' is not json or protobuf", cfg->kafka_format);
    return CAIRN_E_CONFIG;
  }
  if (cfg->kafka_records_per_message > 100000) {
    snprintf(errbuf, errlen, "--kafka-records-per-message: %llu is too large (1 .. 100000)",
             (unsigned long long)cfg->kafka_records_per_message);
    return CAIRN_E_CONFIG;
  }
  for (size_t i = 0; i < cfg->kafka_property.n; i++) {
    const char *kv = cfg->kafka_property.v[i];
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
      snprintf(errbuf, errlen, "--kafka-property: '%s' is not KEY=VALUE (e.g. compression.type=zstd)",
               kv);
      return CAIRN_E_CONFIG;
    }
  }
  return CAIRN_OK;
}

cairn_err agg_config_load(agg_config *cfg, int argc, char **argv, bool *help, bool *check,
                          char *errbuf, size_t errlen) {
  cairn_str_list rest = {0};
  cairn_err e = cairn_config_load(agg_opts, AGG_NOPTS, cfg, argc, argv, &rest, help, check, errbuf,
                                  errlen);
  if (e == CAIRN_OK && rest.n > 0) {
    snprintf(errbuf, errlen, "unexpected argument '%s' (every option is a --flag; see --help)",
             rest.v[0]);
    e = CAIRN_E_CONFIG;
  }
  cairn_str_list_free(&rest);
  if (e == CAIRN_OK && !*help) e = agg_config_validate(cfg, errbuf, errlen);
  return e;
}

void agg_config_free(agg_config *cfg) {
  cairn_config_free(agg_opts, AGG_NOPTS, cfg);
  memset(cfg, 0, sizeof(*cfg));
}

cairn_err agg_config_copy(agg_config *dst, const agg_config *src) {
  return cairn_config_copy(agg_opts, AGG_NOPTS, dst, src, sizeof(*dst));
}

void agg_config_usage(FILE *f) { cairn_config_usage(f, agg_synopsis, agg_opts, AGG_NOPTS); }

void agg_config_print(FILE *f, const agg_config *cfg) {
  cairn_config_print(f, agg_opts, AGG_NOPTS, cfg);
}
