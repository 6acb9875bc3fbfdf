/* aggregator/internal.h: declarations shared by the aggregator's own files.
 * Private to aggregator/: nothing outside this directory includes it.
 *
 * Threads: the loop thread (agg_run: listener, sessions, metrics HTTP, acks),
 * the writer thread (writer.c: owns every LMDB write txn) and the Kafka thread
 * (kafka.c). They meet only through the queues and atomics declared here.
 */
#ifndef CAIRN_AGGREGATOR_INTERNAL_H
#define CAIRN_AGGREGATOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "aggregator/aggregator.h"
#include "common/arena.h"
#include "common/err.h"
#include "common/log.h"
#include "proto/http.h"
#include "proto/proto.h"
#include "proto/tls.h"
#include "storage/storage.h"

#define AGG_COMP "aggregator"

/* Per-connection backpressure: stop reading past either bound, resume below half. */
#define AGG_CONN_MAX_INFLIGHT 32u
#define AGG_CONN_MAX_INFLIGHT_BYTES (64u << 20)

/* ---- counters (metrics.c renders them; every thread updates them) ---- */

typedef enum agg_reject_kind {
  AGG_REJ_LIMIT = 0, /* CAIRN_E_LIMIT: frame, batch bytes or record count */
  AGG_REJ_ZSTD,      /* payload is not zstd */
  AGG_REJ_PROTO,     /* bad protobuf, record count mismatch, protocol order */
  AGG_REJ_PERM,      /* certificate does not cover the node */
  AGG_REJ_OTHER,
  AGG_REJ_N,
} agg_reject_kind;

/* Upper bounds (seconds) of the commit-latency histogram buckets; the last
 * bucket is +Inf. Shared by writer.c (observe) and metrics.c (render). */
#define AGG_COMMIT_BUCKETS 12
static const double agg_commit_bounds[AGG_COMMIT_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

typedef struct agg_metrics {
  atomic_uint_fast64_t sessions;          /* gauge: sessions past Hello */
  atomic_uint_fast64_t connections;       /* gauge: open ingest connections (loop writes) */
  atomic_uint_fast64_t batches;           /* batches acked OK */
  atomic_uint_fast64_t records_stored;
  atomic_uint_fast64_t records_duplicate;
  atomic_uint_fast64_t retries;           /* batches answered RETRY */
  atomic_uint_fast64_t rejects[AGG_REJ_N];
  atomic_uint_fast64_t kafka_delivered;   /* records confirmed by Kafka */
  atomic_uint_fast64_t kafka_failed;      /* delivery reports with an error */
  atomic_uint_fast64_t kafka_cursor;      /* seq committed as the "kafka" cursor */
  atomic_uint_fast64_t last_seq;          /* highest stored seq (writer) */
  atomic_uint_fast64_t map_size;          /* bytes (writer) */
  atomic_uint_fast64_t map_used;          /* bytes (writer) */
  atomic_uint_fast64_t commit_hist[AGG_COMMIT_BUCKETS]; /* commits per latency bucket (writer) */
  atomic_uint_fast64_t commit_count;      /* successful commits (writer) */
  atomic_uint_fast64_t commit_sum_ns;     /* their total latency, ns (writer) */
  atomic_uint_fast64_t chain_position;    /* last hash-chain link committed (writer) */
  atomic_uint_fast64_t kafka_queue;       /* messages in librdkafka's queue (forwarder) */
  atomic_uint_fast64_t pruned_records;    /* records deleted by --retention (writer) */
  atomic_uint_fast64_t oldest_retained;   /* lowest seq still stored (writer; 0 = unknown) */
} agg_metrics;

/* Which reject counter an error belongs to. */
agg_reject_kind agg__reject_kind(cairn_err e);

/* ---- sessions ---- */

typedef enum agg_conn_state {
  AGG_CONN_HANDSHAKE = 0, /* TLS handshake running */
  AGG_CONN_HELLO,         /* waiting for Hello */
  AGG_CONN_READY,         /* Hello accepted; Batches flow */
  AGG_CONN_CLOSING,       /* close started (reject sent or error) */
} agg_conn_state;

typedef struct agg_conn {
  agg *a;                 /* borrowed: the owning service */
  pb_conn *pc;            /* the TLS stream; NULL once its close callback ran */
  atomic_int refs;        /* loop ref (until on_close) + one per queued job */
  atomic_bool dead;       /* closed or rejected: the writer skips its jobs */
  agg_conn_state state;   /* loop thread only */
  char peer[64];          /* "127.0.0.1:54321" */
  char *identity;         /* owned: certificate CN; immutable after Hello */
  char *node;             /* owned: node stored with records; immutable after Hello */
  char *instance_id;      /* owned: collector instance; immutable after Hello */
  char *close_reason;     /* owned: why we closed it (logged in on_close), or NULL */
  uint32_t inflight;      /* batches queued and not yet acked (loop only) */
  uint64_t inflight_bytes; /* their payload bytes (loop only) */
  bool paused;            /* reads stopped for backpressure */
  bool counted;           /* counted in metrics.sessions */
  bool refused;           /* closed at accept by a connection limit (logged there, rate-limited) */
  int64_t last_rx_ns;     /* monotonic: accept, then the last frame received (idle timeout) */
  struct agg_conn *prev, *next; /* agg's list of connections (loop only) */
} agg_conn;

/* Drop one reference; frees the conn at zero. Any thread (the last ref is
 * always dropped on the loop or after it stopped). */
void agg__conn_unref(agg_conn *c);

/* ---- writer jobs ---- */

typedef struct agg_job {
  struct agg_job *next;   /* queue link */
  agg_conn *conn;         /* ref held until the completion is handled */
  uint64_t seq;           /* Batch.seq */
  uint32_t record_count;  /* Batch.record_count */
  uint8_t *payload;       /* owned: zstd bytes; freed by the writer after use */
  size_t payload_len;
  /* result, set by the writer */
  bool skipped;           /* conn was dead: nothing stored, send nothing */
  Cairn__AckStatus status;
  cairn_err err;          /* why, when not OK */
  uint32_t stored;
  uint32_t dups;
  char reason[256];       /* "CAIRN_E_NAME: sentence" when not OK */
} agg_job;

typedef struct agg_queue {
  agg_job *head, *tail;
  size_t n;
} agg_queue;

void agg__queue_push(agg_queue *q, agg_job *j);
agg_job *agg__queue_pop(agg_queue *q);

/* Free a job (payload included) and drop its conn ref. */
void agg__job_free(agg_job *j);

typedef struct agg_writer {
  pthread_t thread;
  bool started;
  bool mu_init;           /* the mutexes and cv below are initialised */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  agg_queue in;           /* guarded by mu: jobs from the loop */
  bool cursor_pending;    /* guarded by mu: a "kafka" cursor value to commit */
  uint64_t cursor_value;  /* guarded by mu */
  bool stopping;          /* guarded by mu: finish the queue, then exit */
  pthread_mutex_t done_mu;
  agg_queue done;         /* guarded by done_mu: completed jobs for the loop */
  bool async_open;        /* guarded by done_mu: done_async may be signalled */
  bool stop_open;         /* guarded by done_mu: agg->stop_async may be signalled */
  uv_async_t done_async;  /* wakes the loop to send acks */
  int64_t last_full_log_ns; /* writer only: rate limit of the storage-full line */
  int64_t next_sign_ns;   /* writer only: monotonic time of the next checkpoint */
} agg_writer;

/* ---- Kafka forwarder (kafka.c) ---- */

typedef struct agg_kafka agg_kafka;

/* Create the producer (checks every property; errbuf names the rejected one).
 * CAIRN_E_CONFIG, CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err agg__kafka_new(agg *a, const agg_config *cfg, agg_kafka **out,
                                          char *errbuf, size_t errlen);
/* Start the forwarding thread. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err agg__kafka_start(agg_kafka *k);
/* New records were committed (writer thread). */
void agg__kafka_notify(agg_kafka *k);
/* Stop producing, flush (bounded by timeout_ns), send the final cursor to the
 * writer, join. Blocking: never call from a loop callback. */
void agg__kafka_stop(agg_kafka *k, int64_t timeout_ns);
void agg__kafka_free(agg_kafka *k); /* NULL is fine */

/* ---- hot retention (retention.c, writer thread) ---- */

typedef struct agg_retention {
  int64_t next_ns;         /* monotonic: next prune step when nothing is pending */
  bool more;               /* the last step ran out of budget with more due */
  uint64_t logged_records; /* pruned since the last info line */
  int64_t last_log_ns;     /* monotonic: rate limit of the info and error lines */
} agg_retention;

/* Before the writer starts (agg_run): log what --retention will do (by age
 * alone without Kafka) and publish the oldest retained seq. */
void agg__retention_start(agg *a);
/* Writer thread, between txns (no write txn open): when --retention is set
 * and a step is due, delete expired records at or below the committed
 * "kafka" cursor (any age-expired record without Kafka) in bounded txns,
 * yielding as soon as batches wait. Errors are logged, retried later. */
void agg__retention_step(agg *a);

/* ---- the service ---- */

struct agg {
  agg_config cfg;          /* owned copy of the strings we use */
  pb_limits limits;
  sto_env *env;            /* owned */
  pb_tls_ctx *tls;         /* owned */
  agg_kafka *kafka;        /* owned; NULL when forwarding is off */
  struct agg_signer *signer; /* owned: signs chain checkpoints (writer thread) */
  struct agg_qserver *qs;  /* owned: --query-listen server; NULL when off (query_server.c) */
  uv_loop_t loop;
  bool loop_init;
  uv_tcp_t listener;
  bool listener_open;
  char listen_addr[128];   /* bound "HOST:PORT" */
  pb_http_server *http;    /* owned: /metrics, /healthz, /readyz; NULL when off */
  char metrics_addr[128];  /* bound "HOST:PORT", "" when off */
  uv_async_t stop_async;   /* agg_stop -> loop */
  bool stop_async_open;
  atomic_bool stop_requested;
  uv_signal_t sigint, sigterm;
  bool signals_open;
  uv_timer_t shutdown_timer;
  bool shutdown_timer_open;
  bool shutting_down;      /* loop only */
  bool finishing;          /* loop only: handles are being closed */
  cairn_arena frame_arena; /* loop only: envelope decode, reset per frame */
  agg_conn *conns;         /* loop only: open connections */
  uint64_t n_conns;        /* loop only: entries of conns (the --max-conns count) */
  uv_timer_t idle_timer;   /* sweeps conns for --idle-timeout */
  bool idle_timer_open;
  uv_signal_t sighup;      /* reloads TLS files (handle_signals only) */
  bool sighup_open;
  bool reloading;          /* loop only: a TLS load runs on the thread pool */
  bool reload_again;       /* loop only: SIGHUP arrived during it: load once more */
  cairn_log_limiter log_limit; /* loop only: repeated per-peer errors (zeroed = 10 s) */
  agg_writer writer;
  agg_retention retention; /* writer thread only */
  agg_metrics m;
};

/* ---- server.c (loop thread) ---- */

/* Bind and listen on cfg.listen; fills a->listen_addr. CAIRN_E_CONFIG with errbuf. */
CAIRN_MUST_CHECK cairn_err agg__server_listen(agg *a, char *errbuf, size_t errlen);
/* done_async callback: drain the whole completion queue and send acks. */
void agg__server_on_done(uv_async_t *h);
/* Shutdown step 1: stop accepting and reading. */
void agg__server_quiesce(agg *a);
/* Batches still queued or unacked on open connections. */
uint64_t agg__server_inflight(const agg *a);
/* Shutdown step 2: close every session. */
void agg__server_close_all(agg *a, const char *reason);
/* Start the --idle-timeout sweep timer (agg_new). CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err agg__server_timers_open(agg *a);
/* Close it (shutdown; idempotent). */
void agg__server_timers_close(agg *a);
/* SIGHUP: build a new TLS context from the configured files off the loop and
 * use it for new connections; established sessions keep theirs. A bad file
 * keeps the current context and logs why. */
void agg__server_tls_reload(agg *a);
/* The pb_tls_config of a->cfg (strings borrowed from a->cfg). */
void agg__tls_config(const agg *a, pb_tls_config *out);

/* ---- writer.c ---- */

CAIRN_MUST_CHECK cairn_err agg__writer_init(agg *a);
CAIRN_MUST_CHECK cairn_err agg__writer_start(agg *a);
/* Queue a batch job (loop thread). Takes ownership of j. */
void agg__writer_push(agg *a, agg_job *j);
/* Store records the aggregator writes itself (the audit record of a remote
 * query) through the writer, like a batch from a collector with instance id
 * "cairn-aggregator" and no session to ack. recs are borrowed (encoded here);
 * identity is stored in each record. Any thread; CAIRN_E_NOMEM, CAIRN_E_ZSTD. */
CAIRN_MUST_CHECK cairn_err agg__writer_push_local(agg *a, const char *identity,
                                                  Cairn__Record *const *recs, size_t n);
/* Record the "kafka" cursor to commit with the next txn (Kafka thread). */
void agg__writer_cursor_set(agg *a, uint64_t value);
/* Finish queued work, join (blocking; after the loop stopped). */
void agg__writer_stop(agg *a);
/* Free leftover completions and the sync objects. */
void agg__writer_fini(agg *a);

/* ---- signer.c (checkpoint signing) ---- */

typedef struct agg_signer agg_signer;

/* Load the Ed25519 key of cfg->signing_key, or DATA/signing.key (generated
 * with mode 0600 when missing and --signing-key is unset); write
 * DATA/signing.pub (PEM); read the last checkpoint position from env. Before
 * threads start. CAIRN_E_CONFIG / CAIRN_E_PERM (key file readable by
 * group/others) with errbuf naming the file and the fix, CAIRN_E_NOMEM,
 * storage errors. */
CAIRN_MUST_CHECK cairn_err agg__signer_open(const agg_config *cfg, sto_env *env, agg_signer **out,
                                            char *errbuf, size_t errlen);
void agg__signer_free(agg_signer *s); /* NULL is fine */
/* Writer thread: when the chain head moved past the last checkpoint, sign it
 * and store the checkpoint in its own txn. *position = the signed position,
 * 0 when there was nothing new. Storage errors (CAIRN_E_MAPFULL after one
 * grow, CAIRN_E_NOSPC, ...), CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err agg__signer_checkpoint(agg_signer *s, sto_env *env, uint64_t *position);

/* ---- metrics.c (loop thread) ---- */

/* Bind the HTTP listener on cfg.metrics_listen. CAIRN_E_CONFIG with errbuf. */
CAIRN_MUST_CHECK cairn_err agg__metrics_listen(agg *a, char *errbuf, size_t errlen);
/* Close the HTTP server and its client connections (asynchronous: the loop
 * releases them). Idempotent. */
void agg__metrics_close(agg *a);

/* ---- query access list (acl.c) ---- */

typedef struct agg_acl agg_acl;

/* One identity's grant: records whose namespace matches one of ns (fnmatch
 * globs) AND whose source bit is set in sources. Immutable after load. */
typedef struct agg_acl_entry {
  char *identity;   /* owned: certificate CN */
  char **ns;        /* owned: n_ns namespace globs ("*" = all, also none) */
  size_t n_ns;
  uint32_t sources; /* bit (1 << Cairn__Source) per allowed source */
} agg_acl_entry;

/* Parse the YAML text[0..len) ("identities: {ID: {namespaces: [...],
 * sources: [...]}}"); name prefixes messages. CAIRN_E_CONFIG with errbuf
 * "NAME:LINE: what is wrong", CAIRN_E_NOMEM. *out owned (agg__acl_free). */
CAIRN_MUST_CHECK cairn_err agg__acl_parse(const char *text, size_t len, const char *name,
                                          agg_acl **out, char *errbuf, size_t errlen);
/* agg__acl_parse of a file (at most 16 MiB). CAIRN_E_CONFIG, CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err agg__acl_load(const char *path, agg_acl **out, char *errbuf,
                                         size_t errlen);
void agg__acl_free(agg_acl *acl); /* NULL is fine */
/* The grant of identity, NULL = not listed (deny). Borrowed from acl. */
const agg_acl_entry *agg__acl_find(const agg_acl *acl, const char *identity);
/* Identities listed. */
size_t agg__acl_count(const agg_acl *acl);
/* ns (NULL = "") matches one of e's globs. */
bool agg__acl_namespace_ok(const agg_acl_entry *e, const char *ns);
/* source (Cairn__Source) is granted; 0 never is. */
bool agg__acl_source_ok(const agg_acl_entry *e, int source);
/* e has the glob "*" (every namespace, also records without one). */
bool agg__acl_all_namespaces(const agg_acl_entry *e);
/* r's source and namespace are both granted. */
bool agg__acl_record_ok(const agg_acl_entry *e, const Cairn__Record *r);

/* ---- query server (query_server.c, loop thread unless noted) ---- */

/* Load --query-acl, bind --query-listen (a->qs stays NULL when it is unset).
 * CAIRN_E_CONFIG with errbuf naming the option, CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err agg__qserver_open(agg *a, char *errbuf, size_t errlen);
/* Bound "HOST:PORT" of the query listener, "" when off. */
const char *agg__qserver_addr(const agg *a);
/* Shutdown: stop accepting, cancel running queries, close their
 * connections; the server's last handle closes once every query thread has
 * ended (they record their audit records through the writer first). */
void agg__qserver_close(agg *a);
/* agg_free: join what is left and free (after the loop stopped). */
void agg__qserver_free(agg *a);

/* ---- helpers (agg.c) ---- */

/* Called on the loop whenever in-flight work dropped; finishes a shutdown
 * once nothing is left. */
void agg__shutdown_check(agg *a);

#endif
