/* collector/config.c: the collector's option table (flag, YAML key, CAIRN_*
 * env, default, help in one place) and the validation that turns the raw
 * strings into col_input / col_peer. The runtime only ever sees col_config.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/collector.h"
#include "collector/redact.h"
#include "common/log.h"
#include "proto/http.h"

#define OPT(flag, key, type, field, def, req, help) \
  {flag, key, type, offsetof(col_config, field), def, req, false, help}

static const cairn_opt col_opts[] = {
    OPT("state", "state", CAIRN_OPT_STR, state_dir, NULL, true,
        "directory for checkpoints and the instance id (LMDB)"),
    OPT("aggregator", "aggregator", CAIRN_OPT_LIST, aggregators, NULL, true,
        "HOST:PORT of an aggregator (repeatable; tried in order on failures)"),
    OPT("tls-cert", "tls.cert", CAIRN_OPT_STR, tls_cert, NULL, true, "client certificate (PEM)"),
    OPT("tls-key", "tls.key", CAIRN_OPT_STR, tls_key, NULL, true, "client private key (PEM)"),
    OPT("tls-ca", "tls.ca", CAIRN_OPT_STR, tls_ca, NULL, true, "CA bundle that signs the aggregator (PEM)"),
    OPT("server-name", "tls.server_name", CAIRN_OPT_STR, server_name, NULL, false,
        "name to verify in the aggregator certificate (default: host of --aggregator)"),
    OPT("tls-min-version", "tls.min_version", CAIRN_OPT_STR, tls_min_version, "1.3", false,
        "1.3, or 1.2 to also talk TLS 1.2 to an older aggregator (explicit opt-in, warned at start)"),
    OPT("input", "input", CAIRN_OPT_LIST, inputs, "cri:/var/log/containers/*.log", false,
        "FORMAT:GLOB to tail, FORMAT = cri, docker, auditd or k8s-audit (repeatable)"),
    OPT("exclude", "exclude", CAIRN_OPT_LIST, excludes, NULL, false,
        "GLOB of paths never to read, matched against the whole path (repeatable)"),
    OPT("start-position", "start_position", CAIRN_OPT_STR, start_position, "head", false,
        "head or tail: where files found at startup without a checkpoint begin (new files: head)"),
    OPT("rotate-wait", "rotate_wait", CAIRN_OPT_DURATION, rotate_wait, "5s", false,
        "how long a rotated, moved or deleted file stays open idle at its end before it is closed"),
    OPT("metrics-listen", "metrics.listen", CAIRN_OPT_STR, metrics_listen, NULL, false,
        "HOST:PORT serving GET /metrics, /healthz and /readyz"),
    OPT("metrics-port-file", "metrics.port_file", CAIRN_OPT_STR, metrics_port_file, NULL, false,
        "write the bound HOST:PORT of --metrics-listen here"),
    OPT("node-name", "node_name", CAIRN_OPT_STR, node_name, NULL, false,
        "node name put in every record (default: env NODE_NAME, else the hostname)"),
    OPT("batch-max-records", "batch.max_records", CAIRN_OPT_U64, batch_max_records, "5000", false,
        "records per batch"),
    OPT("batch-max-bytes", "batch.max_bytes", CAIRN_OPT_SIZE, batch_max_bytes, "1MiB", false,
        "raw message bytes per batch"),
    OPT("batch-max-delay", "batch.max_delay", CAIRN_OPT_DURATION, batch_max_delay, "100ms", false,
        "longest a record waits in an open batch"),
    OPT("max-record-size", "max_record_size", CAIRN_OPT_SIZE, max_record_size, "1MiB", false,
        "longer records are truncated and flagged"),
    OPT("memory-budget", "memory_budget", CAIRN_OPT_SIZE, memory_budget, "16MiB", false,
        "unacked raw bytes before reading pauses (the files are the buffer)"),
    OPT("rescan-interval", "rescan_interval", CAIRN_OPT_DURATION, rescan_interval, "1s", false,
        "how often the input globs are re-evaluated"),
    OPT("read-interval", "read_interval", CAIRN_OPT_DURATION, read_interval, "250ms", false,
        "how often an idle file is checked for growth (with --read-on-change: the fallback for "
        "missed events, NFS, or past the inotify watch limit)"),
    OPT("read-on-change", "read_on_change", CAIRN_OPT_BOOL, read_on_change, "true", false,
        "read a file ~5 ms after inotify reports a write to it (a busy file at most every "
        "50 ms) instead of waiting for --read-interval"),
    OPT("max-inflight", "max_inflight", CAIRN_OPT_U64, max_inflight, "8", false,
        "batches sent but not yet acked"),
    OPT("shutdown-timeout", "shutdown_timeout", CAIRN_OPT_DURATION, shutdown_timeout, "10s", false,
        "how long SIGTERM waits for outstanding acks"),
    OPT("log-level", "log.level", CAIRN_OPT_STR, log_level, "info", false, "debug, info, warn, error"),
    OPT("log-format", "log.format", CAIRN_OPT_STR, log_format, "logfmt", false, "logfmt or json"),
    OPT("exit-when-idle", "exit_when_idle", CAIRN_OPT_BOOL, exit_when_idle, "false", false,
        "exit 0 once all files are read, acked and checkpointed (tests, demos)"),
    OPT("idle-grace", "idle_grace", CAIRN_OPT_DURATION, idle_grace, "2s", false,
        "quiet time before --exit-when-idle exits"),
    OPT("redact", "redact.rules", CAIRN_OPT_LIST, redact_rules, NULL, false,
        "NAME=REGEX (PCRE2): mask matches as [REDACTED:NAME] before sending (repeatable; "
        "a default's NAME replaces it, NAME= disables it; see docs/SECURITY.md)"),
    OPT("spool-dir", "spool.dir", CAIRN_OPT_STR, spool_dir, NULL, false,
        "directory for the on-disk spool: batches no aggregator takes are written here (fsynced) "
        "and sent first later, so outages may outlast the node's log files (empty: no spool)"),
    OPT("spool-max-bytes", "spool.max_bytes", CAIRN_OPT_SIZE, spool_max_bytes, "1GiB", false,
        "spool size limit; when reached, reading pauses at --memory-budget (counted in "
        "cairn_collector_spool_full_total)"),
    OPT("redact-defaults", "redact.defaults", CAIRN_OPT_BOOL, redact_defaults, "true", false,
        "apply the default redaction rules (" COL_REDACT_DEFAULTS ")"),
};

#define N_OPTS (sizeof(col_opts) / sizeof(col_opts[0]))

static cairn_err parse_input(const char *spec, col_input *in, char *errbuf, size_t errlen) {
  const char *colon = strchr(spec, ':');
  if (!colon || colon == spec || !colon[1]) {
    snprintf(errbuf, errlen, "--input %s: expected FORMAT:GLOB, e.g. cri:/var/log/containers/*.log",
             spec);
    return CAIRN_E_CONFIG;
  }
  size_t flen = (size_t)(colon - spec);
  if (flen == 3 && strncmp(spec, "cri", 3) == 0) {
    in->format = CAIRN__FORMAT__FORMAT_CRI;
  } else if (flen == 6 && strncmp(spec, "docker", 6) == 0) {
    in->format = CAIRN__FORMAT__FORMAT_DOCKER;
  } else if (flen == 6 && strncmp(spec, "auditd", 6) == 0) {
    in->format = CAIRN__FORMAT__FORMAT_AUDITD;
  } else if (flen == 9 && strncmp(spec, "k8s-audit", 9) == 0) {
    in->format = CAIRN__FORMAT__FORMAT_K8S_AUDIT;
  } else {
    snprintf(errbuf, errlen, "--input %s: unknown format '%.*s' (use cri, docker, auditd or k8s-audit)", spec,
             (int)flen, spec);
    return CAIRN_E_CONFIG;
  }
  in->glob = strdup(colon + 1);
  in->spec = strdup(spec);
  if (!in->glob || !in->spec) return CAIRN_E_NOMEM;
  return CAIRN_OK;
}

static cairn_err parse_peer(const char *spec, col_peer *p, char *errbuf, size_t errlen) {
  const char *host = spec, *hend, *port;
  if (spec[0] == '[') {
    host = spec + 1;
    hend = strchr(host, ']');
    if (!hend || hend[1] != ':') goto bad;
    port = hend + 2;
  } else {
    hend = strrchr(spec, ':');
    if (!hend) goto bad;
    port = hend + 1;
  }
  if (hend == host || !*port) goto bad;
  char *end;
  unsigned long pn = strtoul(port, &end, 10);
  if (*end || pn == 0 || pn > 65535) goto bad;
  p->host = strndup(host, (size_t)(hend - host));
  p->port = strdup(port);
  if (!p->host || !p->port) return CAIRN_E_NOMEM;
  return CAIRN_OK;
bad:
  snprintf(errbuf, errlen, "--aggregator %s: expected HOST:PORT (e.g. 10.0.0.5:7400, [::1]:7400)",
           spec);
  return CAIRN_E_CONFIG;
}

static cairn_err validate(col_config *cfg, char *errbuf, size_t errlen) {
  cairn_log_level lvl;
  if (!cairn_log_level_parse(cfg->log_level, &lvl)) {
    snprintf(errbuf, errlen, "--log-level %s: use debug, info, warn or error", cfg->log_level);
    return CAIRN_E_CONFIG;
  }
  if (strcmp(cfg->log_format, "logfmt") != 0 && strcmp(cfg->log_format, "json") != 0) {
    snprintf(errbuf, errlen, "--log-format %s: use logfmt or json", cfg->log_format);
    return CAIRN_E_CONFIG;
  }
  if (cfg->tls_min_version && strcmp(cfg->tls_min_version, "1.3") != 0 &&
      strcmp(cfg->tls_min_version, "1.2") != 0) {
    snprintf(errbuf, errlen, "--tls-min-version %s: use 1.3 or 1.2", cfg->tls_min_version);
    return CAIRN_E_CONFIG;
  }
  if (cfg->batch_max_records == 0 || cfg->batch_max_records > PB_DEFAULT_MAX_RECORDS) {
    snprintf(errbuf, errlen, "--batch-max-records %llu: must be 1..%u",
             (unsigned long long)cfg->batch_max_records, PB_DEFAULT_MAX_RECORDS);
    return CAIRN_E_CONFIG;
  }
  if (cfg->batch_max_bytes < 1024 || cfg->batch_max_bytes > (8u << 20)) {
    snprintf(errbuf, errlen, "--batch-max-bytes: must be 1KiB..8MiB (frames are limited to 16MiB)");
    return CAIRN_E_CONFIG;
  }
  if (cfg->max_record_size < 1024 || cfg->max_record_size > (4u << 20)) {
    snprintf(errbuf, errlen, "--max-record-size: must be 1KiB..4MiB");
    return CAIRN_E_CONFIG;
  }
  if (cfg->memory_budget < cfg->batch_max_bytes) {
    snprintf(errbuf, errlen, "--memory-budget must be at least --batch-max-bytes");
    return CAIRN_E_CONFIG;
  }
  if (cfg->spool_dir && *cfg->spool_dir && cfg->spool_max_bytes < 4096) {
    snprintf(errbuf, errlen, "--spool-max-bytes %llu: must be at least 4KiB",
             (unsigned long long)cfg->spool_max_bytes);
    return CAIRN_E_CONFIG;
  }
  if (cfg->max_inflight == 0 || cfg->max_inflight > 1024) {
    snprintf(errbuf, errlen, "--max-inflight: must be 1..1024");
    return CAIRN_E_CONFIG;
  }
  if (strcmp(cfg->start_position, "head") != 0 && strcmp(cfg->start_position, "tail") != 0) {
    snprintf(errbuf, errlen, "--start-position %s: use head or tail", cfg->start_position);
    return CAIRN_E_CONFIG;
  }
  cfg->start_at_tail = strcmp(cfg->start_position, "tail") == 0;
  for (size_t i = 0; i < cfg->excludes.n; i++) {
    if (!cfg->excludes.v[i][0]) {
      snprintf(errbuf, errlen, "--exclude: empty pattern");
      return CAIRN_E_CONFIG;
    }
  }
  if (cfg->rotate_wait < 0) {
    snprintf(errbuf, errlen, "--rotate-wait: must be >= 0");
    return CAIRN_E_CONFIG;
  }
  if (cfg->batch_max_delay <= 0 || cfg->rescan_interval <= 0 || cfg->read_interval <= 0 ||
      cfg->idle_grace < 0 || cfg->shutdown_timeout < 0) {
    snprintf(errbuf, errlen, "--batch-max-delay, --rescan-interval and --read-interval must be > 0");
    return CAIRN_E_CONFIG;
  }
  cfg->in = calloc(cfg->inputs.n ? cfg->inputs.n : 1, sizeof(*cfg->in));
  cfg->peers = calloc(cfg->aggregators.n ? cfg->aggregators.n : 1, sizeof(*cfg->peers));
  if (!cfg->in || !cfg->peers) return CAIRN_E_NOMEM;
  for (size_t i = 0; i < cfg->inputs.n; i++) {
    cairn_err err = parse_input(cfg->inputs.v[i], &cfg->in[cfg->n_in], errbuf, errlen);
    cfg->n_in++; /* count it even on failure so col_config_free releases it */
    if (err != CAIRN_OK) return err;
  }
  if (cfg->n_in == 0) {
    snprintf(errbuf, errlen, "no --input given");
    return CAIRN_E_CONFIG;
  }
  for (size_t i = 0; i < cfg->aggregators.n; i++) {
    cairn_err err = parse_peer(cfg->aggregators.v[i], &cfg->peers[cfg->n_peers], errbuf, errlen);
    cfg->n_peers++;
    if (err != CAIRN_OK) return err;
  }
  if (cfg->metrics_listen && *cfg->metrics_listen) {
    char mh[256];
    uint16_t mp;
    if (pb_http_hostport_split(cfg->metrics_listen, mh, sizeof(mh), &mp) != CAIRN_OK) {
      snprintf(errbuf, errlen, "--metrics-listen: '%s' is not HOST:PORT (e.g. 0.0.0.0:9401)",
               cfg->metrics_listen);
      return CAIRN_E_CONFIG;
    }
  }
  const char *node = cfg->node_name;
  if (!node || !*node) node = getenv("NODE_NAME");
  if (node && *node) {
    snprintf(cfg->node, sizeof(cfg->node), "%s", node);
  } else if (gethostname(cfg->node, sizeof(cfg->node) - 1) != 0 || !cfg->node[0]) {
    snprintf(errbuf, errlen, "cannot determine the node name: set --node-name or NODE_NAME");
    return CAIRN_E_CONFIG;
  }
  return col__redactor_new(cfg->redact_defaults, cfg->redact_rules.v, cfg->redact_rules.n,
                           &cfg->redact, errbuf, errlen);
}

cairn_err col_config_load(col_config *cfg, int argc, char **argv, bool *help, bool *check,
                          char *errbuf, size_t errlen) {
  cairn_str_list rest = {0};
  cairn_err err =
      cairn_config_load(col_opts, N_OPTS, cfg, argc, argv, &rest, help, check, errbuf, errlen);
  if (err == CAIRN_OK && *help) {
    cairn_str_list_free(&rest);
    return CAIRN_OK;
  }
  if (err == CAIRN_OK && rest.n > 0) {
    snprintf(errbuf, errlen, "unexpected argument '%s' (see --help)", rest.v[0]);
    err = CAIRN_E_CONFIG;
  }
  cairn_str_list_free(&rest);
  if (err != CAIRN_OK) return err;
  return validate(cfg, errbuf, errlen);
}

void col_config_free(col_config *cfg) {
  if (!cfg) return;
  for (size_t i = 0; i < cfg->n_in; i++) {
    free(cfg->in[i].glob);
    free(cfg->in[i].spec);
  }
  for (size_t i = 0; i < cfg->n_peers; i++) {
    free(cfg->peers[i].host);
    free(cfg->peers[i].port);
  }
  free(cfg->in);
  free(cfg->peers);
  col__redactor_free(cfg->redact);
  cfg->redact = NULL;
  cfg->in = NULL;
  cfg->peers = NULL;
  cfg->n_in = cfg->n_peers = 0;
  cairn_config_free(col_opts, N_OPTS, cfg);
}

void col_config_usage(FILE *f) {
  cairn_config_usage(f,
                     "cairn-collector [--config FILE] --state DIR --aggregator HOST:PORT "
                     "--tls-cert F --tls-key F --tls-ca F [--input FORMAT:GLOB]...\n"
                     "       cairn-collector parse --format cri|docker|auditd|k8s-audit [--path PATH-FOR-METADATA] FILE",
                     col_opts, N_OPTS);
}

void col_config_print(FILE *f, const col_config *cfg) {
  cairn_config_print(f, col_opts, N_OPTS, cfg);
}
