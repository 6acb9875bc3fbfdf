/* aggregator/aggregator.h: public API of cairn-aggregator, the central service.
 *
 * An agg accepts collectors over mutual TLS (proto/tls.h), stores their
 * batches in LMDB through one writer thread (storage/storage.h), acks each
 * batch only after it is committed, and optionally forwards every stored
 * record to Kafka from storage (a "kafka" cursor in LMDB). main.c is a thin
 * shell over this API; the tests run an agg in a thread.
 *
 * Caveats:
 *  - agg_config strings are heap-owned once agg_config_load filled them:
 *    release them with agg_config_free (agg_new copies what it keeps).
 *  - agg_run blocks the calling thread until agg_stop (or SIGINT/SIGTERM when
 *    handle_signals is set). agg_stop is the only call that may come from
 *    another thread.
 *  - LMDB must not be opened twice in one process: while an agg runs, read its
 *    store through agg_storage(), not a second sto_open().
 */
#ifndef CAIRN_AGGREGATOR_AGGREGATOR_H
#define CAIRN_AGGREGATOR_AGGREGATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/config.h"
#include "common/err.h"
#include "storage/storage.h"

/* Everything the runtime needs; filled by agg_config_load (flags, CAIRN_*
 * environment, YAML) or by hand (tests). Units as noted; 0 means "default"
 * for every number. */
typedef struct agg_config {
  char *data_dir;          /* LMDB directory (created if missing) */
  char *listen;            /* "HOST:PORT" for collectors; port 0 = any free port */
  char *tls_cert;          /* PEM server certificate */
  char *tls_key;           /* PEM server key */
  char *tls_ca;            /* PEM CA that signs collector certificates */
  char *kafka_brokers;     /* "HOST:PORT,..."; NULL/"" = forwarding off */
  char *kafka_topic;       /* default "cairn-records" */
  char *kafka_topic_audit; /* auditd records; NULL = kafka_topic */
  char *kafka_topic_k8s;   /* Kubernetes audit records; NULL = kafka_topic */
  cairn_str_list kafka_property; /* "KEY=VALUE" pairs passed to librdkafka */
  uint64_t kafka_records_per_message; /* 1 (default, 0 = 1): one JSON object per message;
                                         N > 1: up to N records of one key as JSON lines */
  char *kafka_format;      /* "json" (default) or "protobuf": a cairn.RecordBatch of the
                              records' stored bytes */
  cairn_str_list node_policy;    /* "IDENTITY=NODE-GLOB": certificate CN allowed to state
                                    nodes matching the glob (cluster-wide certificate) */
  char *query_listen;      /* "HOST:PORT" for remote queries (mTLS); NULL = off */
  char *query_acl;         /* YAML: identity -> namespaces, sources (required with query_listen) */
  uint64_t query_max_conns; /* open query connections (default 16) */
  char *query_port_file;   /* written with the bound query address */
  char *metrics_listen;    /* "HOST:PORT" for GET /metrics and /healthz; NULL = off */
  char *port_file;         /* written with the bound listen address */
  char *metrics_port_file; /* written with the bound metrics address */
  char *log_level;         /* debug|info|warn|error */
  char *log_format;        /* logfmt|json */
  bool no_sync;            /* skip fsync at commit */
  uint64_t map_size;       /* bytes, initial LMDB map */
  uint64_t max_map_size;   /* bytes, the map never grows beyond this */
  uint64_t max_frame;      /* bytes of one wire frame */
  uint64_t max_batch_bytes;   /* bytes of one decompressed batch */
  uint64_t max_batch_records; /* records in one batch */
  uint64_t group_commit;   /* max batches per LMDB txn */
  int64_t shutdown_timeout_ns; /* bound on draining + Kafka flush at shutdown */
  char *signing_key;       /* PEM Ed25519 key for checkpoints; NULL = DATA/signing.key */
  int64_t sign_interval_ns; /* checkpoint when the chain advanced, this often (default 10s) */
  char *tls_min_version;   /* "1.3" (default) or "1.2" (opt-in, warned at start) */
  int64_t handshake_timeout_ns; /* TCP accept to finished TLS handshake (default 10s) */
  int64_t idle_timeout_ns; /* close a session with no frame and nothing in flight this long (5m) */
  uint64_t max_conns_per_ip; /* open connections from one address (default 64) */
  uint64_t max_conns;      /* open connections in total (default 4096) */
  int64_t retention_ns;    /* prune records older than this from LMDB (only once Kafka has
                              them when Kafka is configured); 0 = keep forever */
  bool handle_signals;     /* not an option: main sets it; SIGINT/SIGTERM stop agg_run,
                              SIGHUP reloads the TLS certificate, key and CA */
} agg_config;

/* ---- configuration (config.c) ---- */

/* Fill cfg (zeroed by the caller) from defaults, --config FILE, CAIRN_*
 * environment and argv. *help / *check report --help / --check-config.
 * Errors: CAIRN_E_CONFIG with a one-line errbuf naming the option to fix
 * (also for stray positional arguments, and --query-listen without
 * --query-acl); CAIRN_E_NOMEM. cfg must be released with agg_config_free
 * in every case. */
CAIRN_MUST_CHECK cairn_err agg_config_load(agg_config *cfg, int argc, char **argv, bool *help,
                                           bool *check, char *errbuf, size_t errlen);

/* Check values the option table cannot (formats, ranges, --query-listen).
 * CAIRN_E_CONFIG with errbuf naming the option. Called by agg_config_load
 * and by agg_new. */
CAIRN_MUST_CHECK cairn_err agg_config_validate(const agg_config *cfg, char *errbuf, size_t errlen);

/* Release every string agg_config_load allocated; cfg is left zeroed. */
void agg_config_free(agg_config *cfg);

/* dst = a deep copy of src (every string and list option duplicated, from
 * the option table, so a new option can never be shared and freed twice);
 * release it with agg_config_free, also after CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err agg_config_copy(agg_config *dst, const agg_config *src);

/* Print usage (synopsis + one line per option) to f. */
void agg_config_usage(FILE *f);

/* Print the effective configuration ("key: value" lines) to f. */
void agg_config_print(FILE *f, const agg_config *cfg);

/* ---- the service ---- */

typedef struct agg agg;

/* Open everything that can fail on bad configuration, before any thread
 * starts: the store in cfg->data_dir, the TLS context, the Kafka producer
 * (properties are checked here), the listeners (bound and listening; the port
 * files are written). cfg is borrowed (copied as needed).
 * Errors (errbuf gets one line naming what to fix): CAIRN_E_CONFIG (bad
 * option, certificate, Kafka property, address in use), CAIRN_E_STORAGE /
 * CAIRN_E_PERM / CAIRN_E_NOTFOUND (data dir), CAIRN_E_NOMEM. Nothing is left
 * open on error. */
CAIRN_MUST_CHECK cairn_err agg_new(const agg_config *cfg, agg **out, char *errbuf, size_t errlen);

/* Run the service on the calling thread: starts the writer and Kafka threads
 * and the loop; returns after a graceful shutdown (agg_stop or a signal):
 * listener closed, queued batches committed and acked, sessions closed,
 * Kafka flushed (bounded by shutdown_timeout), threads joined, loop closed.
 * Returns CAIRN_OK, or the error that stopped it: CAIRN_E_NOMEM (a thread
 * could not start), CAIRN_E_INVAL (a libuv handle was left open at shutdown,
 * a bug; it was closed anyway). Call at most once per agg. */
CAIRN_MUST_CHECK cairn_err agg_run(agg *a);

/* Ask a running (or about to run) agg to shut down. Thread-safe; returns at
 * once. Idempotent. */
void agg_stop(agg *a);

/* Free an agg (after agg_run returned, or instead of it). NULL is fine. */
void agg_free(agg *a);

/* Bound collector address as "HOST:PORT" ("127.0.0.1:40123"). Valid until
 * agg_free. */
const char *agg_listen_addr(const agg *a);

/* Open ingest connections, in any state (the cairn_aggregator_connections
 * gauge). Safe from any thread. */
uint64_t agg_open_connections(agg *a);

/* Bound query address, or NULL when --query-listen is off. */
const char *agg_query_addr(const agg *a);

/* Bound metrics address, or NULL when --metrics-listen is off. */
const char *agg_metrics_addr(const agg *a);

/* The open store, for reading only (sto_scan_after, sto_cursor_get,
 * sto_stats_get are safe from any thread). Valid until agg_free. */
sto_env *agg_storage(agg *a);

/* Counters, as exported on /metrics. */
typedef struct agg_counters {
  uint64_t sessions;          /* open sessions now */
  uint64_t batches;           /* batches acked OK */
  uint64_t records_stored;
  uint64_t records_duplicate;
  uint64_t rejects;           /* batches or hellos answered REJECT */
  uint64_t retries;           /* batches answered RETRY */
  uint64_t kafka_delivered;   /* records confirmed by Kafka */
  uint64_t kafka_failed;      /* failed deliveries (each one is produced again) */
  uint64_t kafka_cursor;      /* last seq whose delivery is committed */
} agg_counters;

/* Snapshot of the counters; any thread. */
void agg_counters_get(const agg *a, agg_counters *out);

#endif
