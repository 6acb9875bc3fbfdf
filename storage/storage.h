/* storage/storage.h: the LMDB store of cairn: records, indexes, dedupe state,
 * named cursors. The aggregator writes (one writer thread), cairn-query reads.
 *
 * Layout (named databases in one environment, see docs/ARCHITECTURE.md).
 * Every integer in a key is big-endian so LMDB's byte order is numeric order;
 * signed times are stored with the sign bit flipped ("biased").
 *   records : seq (u64 BE)                          -> packed Cairn__Record
 *   idx     : MDB_DUPSORT|MDB_DUPFIXED, one key per indexed value, each
 *             record one 16-byte dup:
 *             key  kind(1) value                    (value cut at STO_INDEX_VALUE_MAX)
 *             dup  time(i64 BE, biased) seq(u64 BE) (so dups sort by time, then seq)
 *             kind = 't' time (empty value, every record), 'n' namespace,
 *             'p' pod, 'c' container, 'h' node, 's' source (value u32 BE).
 *             Empty strings and source 0 are not indexed.
 *   dedupe  : instance_id 0x00 file_stream(u64 BE)  -> end_offset (u64 BE)
 *   cursors : name                                  -> u64 BE (e.g. "kafka")
 *   meta    : "last_seq" -> u64 BE, "version" -> u32 BE (1)
 *
 * Caveats:
 *  - LMDB binds a write transaction to its thread: sto_wtxn_* calls must all
 *    happen on one thread, and only one write txn exists at a time.
 *  - Readers never block the writer; a reader sees the last committed state
 *    at the moment its read began.
 *  - Records passed to callbacks live only for the duration of the callback
 *    (they are unpacked into a scratch arena reset afterwards): copy what you
 *    keep.
 *  - A callback must not call back into sto_* (the read txn holds a lock
 *    that a concurrent map resize waits for): collect, return, then call.
 *  - LMDB allows one open env per data dir per process: open the store once
 *    and share the sto_env between threads (reads are thread-safe).
 *  - Index values longer than STO_INDEX_VALUE_MAX bytes are cut to that
 *    length, for put and query alike; queries still compare full values, so
 *    results are exact, only the scan gets wider.
 */
#ifndef CAIRN_STORAGE_STORAGE_H
#define CAIRN_STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/proto.h"

/* Bytes of a namespace/pod/container/node value used in an idx key (LMDB
 * keys are at most 511 bytes). Also the maximum cursor name length. */
#define STO_INDEX_VALUE_MAX 255u

typedef struct sto_env sto_env;
typedef struct sto_wtxn sto_wtxn;

typedef struct sto_options {
  uint64_t map_size;  /* bytes; 0 = 1 GiB. Grows on MDB_MAP_FULL up to max_map_size */
  uint64_t max_map_size; /* bytes; 0 = 64 GiB */
  bool read_only;     /* cairn-query: MDB_RDONLY, never creates the dir */
  bool no_sync;       /* skip fsync at commit (tests, benchmarks) */
} sto_options;

/* Open (creating dir and databases unless read_only) the store in dir; one
 * directory level is created (mode 0750), the parent must exist. opt may be
 * NULL (defaults). On success *out is owned by the caller (sto_close).
 * read_only works while another process has the store open for writing; it
 * needs the store's lock.mdb to be writable.
 * Errors: CAIRN_E_NOTFOUND (read_only and no store there), CAIRN_E_PERM,
 * CAIRN_E_STORAGE (LMDB error or a store version newer than this code;
 * errbuf names it), CAIRN_E_CORRUPT, CAIRN_E_NOMEM, CAIRN_E_INVAL (dir NULL
 * or empty). errbuf (may be NULL) receives a one-line reason. */
CAIRN_MUST_CHECK cairn_err sto_open(const char *dir, const sto_options *opt, sto_env **out,
                                    char *errbuf, size_t errlen);

/* Close the environment. All transactions must be finished. NULL is fine. */
void sto_close(sto_env *env);

/* ---- writing (one thread) ---- */

/* Begin a write transaction; *out is borrowed from env (no allocation) and
 * is gone after sto_wtxn_commit/abort. CAIRN_E_INVAL when env is read-only
 * or a write txn is already open, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_wtxn_begin(sto_env *env, sto_wtxn **out);

typedef struct sto_ingest_meta {
  const char *instance_id; /* collector instance (dedupe key part) */
  const char *identity;    /* authenticated certificate identity, stored in each record */
  const char *node;        /* node name to store (overrides record->node when non-empty) */
  int64_t ingest_ns;       /* commit time stamped on the records */
} sto_ingest_meta;

/* Store records (in order) inside txn t: for each record, skip it as a
 * duplicate if its end_offset <= the stored high-water mark of
 * (instance_id, file_stream), else assign the next seq, set seq/identity/
 * instance_id/ingest_ns/node, pack and store it, add its index entries and
 * raise the high-water mark. Records are modified in place (the seq field
 * etc.). *stored and *dups count the outcome.
 * Records with file_stream == 0 are never deduped (always stored). The
 * strings of meta must outlive the use of recs (the records point at them).
 * Errors: CAIRN_E_MAPFULL (the txn is dead: abort it, grow the map with
 * sto_grow, and retry the whole group), CAIRN_E_INVAL (instance_id longer
 * than 255 bytes), CAIRN_E_CORRUPT, CAIRN_E_STORAGE, CAIRN_E_NOMEM. After
 * any error the txn must be aborted; later calls on it return the same error. */
CAIRN_MUST_CHECK cairn_err sto_wtxn_put_records(sto_wtxn *t, const sto_ingest_meta *meta,
                                                Cairn__Record *const *recs, size_t n,
                                                uint32_t *stored, uint32_t *dups);

/* Set a named cursor (e.g. "kafka", at most STO_INDEX_VALUE_MAX bytes) to
 * value inside t. CAIRN_E_INVAL, CAIRN_E_MAPFULL, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_wtxn_cursor_set(sto_wtxn *t, const char *name, uint64_t value);

/* Commit (fsync unless no_sync). The txn is gone afterwards, also on error.
 * CAIRN_E_MAPFULL, CAIRN_E_NOSPC, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_wtxn_commit(sto_wtxn *t);

/* Abort; NULL is fine. */
void sto_wtxn_abort(sto_wtxn *t);

/* Grow the map (double, capped at max_map_size). Must be called with no
 * write txn open, on the writer thread; waits for this process's running
 * reads to finish. CAIRN_E_MAPFULL when already at max, CAIRN_E_INVAL
 * (read-only env or a write txn open). Readers in other processes adopt
 * the new size on their next read. */
CAIRN_MUST_CHECK cairn_err sto_grow(sto_env *env);

/* ---- reading (any thread, each call its own read txn) ---- */

/* Read a named cursor; 0 if never set. CAIRN_E_INVAL, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_cursor_get(sto_env *env, const char *name, uint64_t *value);

typedef struct sto_stats {
  uint64_t records;  /* records stored */
  uint64_t last_seq; /* highest seq assigned (0 = empty) */
  uint64_t map_size; /* bytes */
  uint64_t map_used; /* bytes in use (pages * page size) */
} sto_stats;

/* Fill out (one read txn). CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_stats_get(sto_env *env, sto_stats *out);

/* Callback per record. rec is valid only during the call. Return true to go on,
 * false to stop the scan (not an error). */
typedef bool (*sto_record_cb)(const Cairn__Record *rec, void *ud);

/* Records with seq > after_seq, ascending, at most max (0 = no limit), in
 * one read txn. CAIRN_E_CORRUPT (a stored record does not decode; the scan
 * stops there), CAIRN_E_STORAGE, CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err sto_scan_after(sto_env *env, uint64_t after_seq, size_t max,
                                          sto_record_cb cb, void *ud);

typedef struct sto_query {
  int64_t since_ns;      /* inclusive; INT64_MIN = open */
  int64_t until_ns;      /* exclusive; INT64_MAX = open */
  const char *kube_namespace; /* exact match, NULL or "" = any */
  const char *pod;
  const char *container;
  const char *node;
  int source;            /* Cairn__Source, 0 = any */
  const char *grep;      /* substring of message (bytes), NULL or "" = any */
  size_t limit;          /* 0 = no limit */
  bool newest_first;     /* order by time descending */
} sto_query;

typedef struct sto_query_stats {
  const char *index;     /* index used: "time", "pod", "container", "namespace",
                            "node" or "source"; static storage */
  uint64_t examined;     /* index entries looked at */
  uint64_t matched;      /* records handed to the callback */
} sto_query_stats;

/* Run q in one read txn, choosing the most selective index among the equality
 * filters (pod > container > namespace > node > source > time), scanning its
 * [since, until) range in time order and checking the other filters on each
 * record. Order is (time, seq) ascending, or descending with newest_first.
 * st (may be NULL) gets what was done. Errors (cb may have been called for
 * earlier records): CAIRN_E_CORRUPT, CAIRN_E_STORAGE, CAIRN_E_NOMEM,
 * CAIRN_E_INVAL. */
CAIRN_MUST_CHECK cairn_err sto_query_run(sto_env *env, const sto_query *q, sto_record_cb cb,
                                         void *ud, sto_query_stats *st);

/* Initialise q to match everything (open time range, no filters, no limit). */
void sto_query_init(sto_query *q);

#endif
