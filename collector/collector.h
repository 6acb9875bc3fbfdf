/* collector/collector.h: the cairn-collector runtime: discover log files, tail
 * them, parse, batch, ship over mutual TLS to an aggregator, checkpoint after
 * acks. The only header other modules (and main.c) include.
 *
 * Caveats:
 *  - col_config is filled by col_config_load() (flags, CAIRN_* env, YAML) and
 *    must outlive the col_collector built from it: the runtime borrows strings.
 *  - col_collector_run() owns its own libuv loop and blocks until shutdown
 *    (SIGINT/SIGTERM, col_collector_stop(), or --exit-when-idle). Call it
 *    once, from the thread that created the collector.
 *  - Checkpoints advance only after the aggregator acked the batch holding
 *    the bytes: a crash re-sends, the aggregator dedupes by
 *    (instance, file_stream, end_offset).
 *  - Line numbers handed to the parsers restart at 1 wherever reading of a
 *    file started (0 for a new file, the checkpoint after a restart).
 */
#ifndef CAIRN_COLLECTOR_COLLECTOR_H
#define CAIRN_COLLECTOR_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/config.h"
#include "common/err.h"
#include "proto/proto.h"

/* ---- configuration ---- */

/* One --input FORMAT:GLOB after validation. */
typedef struct col_input {
  Cairn__Format format; /* CAIRN__FORMAT__FORMAT_CRI, _DOCKER, _AUDITD or _K8S_AUDIT */
  char *glob;           /* owned; glob(3) pattern */
  char *spec;           /* owned; the option text, for log lines */
} col_input;

/* One --aggregator HOST:PORT after validation. */
typedef struct col_peer {
  char *host; /* owned; "127.0.0.1", "::1" or a DNS name */
  char *port; /* owned; decimal */
} col_peer;

typedef struct col_config {
  /* filled by the option table (public) */
  char *state_dir;            /* LMDB checkpoints + instance id */
  cairn_str_list aggregators; /* HOST:PORT, tried in order */
  char *tls_cert, *tls_key, *tls_ca;
  cairn_str_list inputs; /* FORMAT:GLOB */
  cairn_str_list excludes; /* fnmatch(3) patterns on the full path; matches are never read */
  char *start_position;    /* "head" or "tail": where files found by the first scan begin */
  int64_t rotate_wait;     /* ns a rotated, moved or deleted file stays open idle at EOF */
  char *metrics_listen;  /* HOST:PORT for /metrics, /healthz, /readyz, or NULL */
  char *metrics_port_file; /* write the bound metrics HOST:PORT here, or NULL */
  char *node_name;       /* NULL: env NODE_NAME, else gethostname() */
  char *server_name;     /* TLS name to verify; NULL: host of the aggregator */
  char *tls_min_version; /* "1.3" (default) or "1.2" (explicit opt-in, warned at start) */
  uint64_t batch_max_records;
  uint64_t batch_max_bytes;  /* raw message bytes */
  int64_t batch_max_delay;   /* ns */
  uint64_t max_record_size;  /* bytes; longer records are truncated and flagged */
  uint64_t memory_budget;    /* unacked raw bytes before reading pauses */
  int64_t rescan_interval;   /* ns between glob scans */
  int64_t read_interval;     /* ns between growth polls of an idle file (fallback with read_on_change) */
  bool read_on_change;       /* inotify on each followed file: read ~5 ms after a write */
  uint64_t max_inflight;     /* batches sent but not acked on one connection */
  int64_t shutdown_timeout;  /* ns to wait for acks on SIGTERM */
  char *log_level;
  char *log_format;
  bool exit_when_idle;       /* exit 0 once everything is read, acked and checkpointed */
  int64_t idle_grace;        /* ns without new data before exit_when_idle fires */
  cairn_str_list redact_rules; /* NAME=REGEX: add, replace ("NAME=" disables) redaction rules */
  bool redact_defaults;      /* start from the default redaction rules */
  char *spool_dir;           /* on-disk spool for outages; NULL or "" = none */
  uint64_t spool_max_bytes;  /* bytes of spool segment files at most */

  /* derived by col_config_load (public, read-only) */
  col_input *in; /* owned, n_in entries */
  size_t n_in;
  col_peer *peers; /* owned, n_peers entries */
  size_t n_peers;
  char node[256];  /* resolved node name */
  bool start_at_tail; /* start_position == "tail" */
  struct col_redactor *redact; /* owned, NULL = no rules; compiled rules + scratch +
                                * counters: used by the collector's loop thread only */
} col_config;

/* Fill cfg (zeroed by the caller) from argv (argv[0] is the program name),
 * the environment and --config FILE, then validate the inputs and
 * aggregators. *help / *check are set for --help / --check-config (cfg is
 * then filled as far as possible; print usage with col_config_usage()).
 * Errors: CAIRN_E_CONFIG with a one-line errbuf naming the option, e.g.
 *   "--input syslog:/var/log/x: unknown format 'syslog' (use cri, docker, auditd or k8s-audit)".
 * cfg must be released with col_config_free() whatever the result. */
CAIRN_MUST_CHECK cairn_err col_config_load(col_config *cfg, int argc, char **argv, bool *help,
                                           bool *check, char *errbuf, size_t errlen);

/* Release everything col_config_load stored in cfg. NULL-safe. */
void col_config_free(col_config *cfg);

/* Print usage for the daemon and the parse subcommand to f. */
void col_config_usage(FILE *f);

/* Print the effective configuration (secrets masked). */
void col_config_print(FILE *f, const col_config *cfg);

/* ---- runtime ---- */

typedef struct col_collector col_collector;

/* Build a collector: open the checkpoint store in cfg->state_dir (creating
 * the directory and the instance id on first start), load the TLS context,
 * set up the loop. Nothing is read or connected until col_collector_run().
 * cfg is borrowed for the collector's life.
 * Errors: CAIRN_E_CONFIG (TLS files, state dir), CAIRN_E_STORAGE (LMDB),
 * CAIRN_E_NOMEM; errbuf gets a one-line reason that says what to fix. */
CAIRN_MUST_CHECK cairn_err col_collector_new(const col_config *cfg, col_collector **out,
                                             char *errbuf, size_t errlen);

/* Run until shut down. Returns CAIRN_OK after a clean shutdown (signal,
 * col_collector_stop, or exit-when-idle), with every acked offset
 * checkpointed and the loop closed. CAIRN_E_TIMEOUT when the shutdown had to
 * give up on unacked batches (they are re-sent after the next start). */
CAIRN_MUST_CHECK cairn_err col_collector_run(col_collector *c);

/* Ask a running collector to shut down (same path as SIGTERM). Loop thread
 * only (e.g. from a callback); other threads send SIGTERM. */
void col_collector_stop(col_collector *c);

/* The persistent instance id (32 hex chars). Valid for the collector's life. */
const char *col_collector_instance_id(const col_collector *c);

/* Free a collector that is not running (never run, or run returned). NULL is fine. */
void col_collector_free(col_collector *c);

#endif
