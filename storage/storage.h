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
 *             'p' pod, 'c' container, 'h' node, 's' source (value u32 BE);
 *             attrs of auditd records: 'k' key, 'a' auid, 'u' uid,
 *             'y' syscall, 'r' record type, 'e' exe, 'x' success; of
 *             Kubernetes audit records: 'U' user, 'v' verb, 'R' resource,
 *             'B' subresource, 'C' code (see sto_field).
 *             Empty strings and source 0 are not indexed.
 *   dedupe  : instance_id 0x00 file_stream(u64 BE)  -> end_offset (u64 BE)
 *   cursors : name                                  -> u64 BE (e.g. "kafka")
 *   meta    : "last_seq" -> u64 BE, "version" -> u32 BE (2),
 *             "attr_idx_from" -> u64 BE: first seq stored with attr index
 *             entries (1 = every record has them)
 *             "pruned_position", "pruned_seq" -> u64 BE: how far hot
 *             retention deleted records (sto_prune, retention section)
 *   chain   : position n (u64 BE, from 1)           -> first_seq(8) last_seq(8)
 *             commit_ns(8, biased) hash(32): one link per committed write txn
 *             that stored records (storage/chain.c, docs/SECURITY.md)
 *   checkpoints : position n (u64 BE)               -> signed checkpoint of link n
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
 *  - The hash chain is extended by sto_wtxn_commit, in the same LMDB txn as
 *    the records: never write records behind storage's back (see the
 *    "integrity" section at the end of this header).
 *  - A writable open refuses a data dir writable by group or others
 *    (CAIRN_E_PERM): run chmod 700 on it.
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
 * directory level is created (mode 0700, LMDB files 0600), the parent must
 * exist. A writable open fails with CAIRN_E_PERM when dir is writable by
 * group or others (errbuf names the chmod to run). opt may be
 * NULL (defaults). On success *out is owned by the caller (sto_close).
 * read_only works while another process has the store open for writing; it
 * needs the store's lock.mdb to be writable.
 * Errors: CAIRN_E_NOTFOUND (read_only and no store there), CAIRN_E_PERM,
 * CAIRN_E_STORAGE (LMDB error or a store version newer than this code;
 * errbuf names it), CAIRN_E_CORRUPT (also: data.mdb is cut short, i.e.
 * shorter than its last page and the missing pages are not all free),
 * CAIRN_E_NOMEM, CAIRN_E_INVAL (dir NULL or empty). errbuf (may be NULL)
 * receives a one-line reason.
 * Threads: call it before starting threads. When data.mdb ends before its
 * last page (normal after deletions: LMDB never writes pages it freed in
 * the same txn) it forks a child to check the missing pages are free. */
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

/* sto_wtxn_put_records for records decoded with pb_batch_decode_raw: raws[i]
 * (may be NULL, or an entry with p == NULL) are the bytes recs[i] came in,
 * stored with the ingest fields appended (pb_record_pack_ingest) instead of
 * packing the record again. Same result when unpacked, same errors. */
CAIRN_MUST_CHECK cairn_err sto_wtxn_put_records_raw(sto_wtxn *t, const sto_ingest_meta *meta,
                                                    Cairn__Record *const *recs,
                                                    const pb_slice *raws, size_t n,
                                                    uint32_t *stored, uint32_t *dups);

/* sto_wtxn_put_records for a batch decoded with pb_batch_decode_items: an
 * item without rec is read in place (pb_view_parse) and stored as its bytes
 * plus the ingest fields, an item with rec exactly as by
 * sto_wtxn_put_records_raw (rec is modified in place). Same dedupe, seq,
 * stored bytes, chain and index entries as sto_wtxn_put_records_raw on the
 * records protobuf-c decodes from the same bytes. Same errors, plus
 * CAIRN_E_INVAL (txn killed) for an item without rec whose bytes are not a
 * record pb_view_parse takes. */
CAIRN_MUST_CHECK cairn_err sto_wtxn_put_items(sto_wtxn *t, const sto_ingest_meta *meta,
                                              const pb_batch_item *items, size_t n,
                                              uint32_t *stored, uint32_t *dups);

/* Set a named cursor (e.g. "kafka", at most STO_INDEX_VALUE_MAX bytes) to
 * value inside t. CAIRN_E_INVAL, CAIRN_E_MAPFULL, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_wtxn_cursor_set(sto_wtxn *t, const char *name, uint64_t value);

/* Commit (fsync unless no_sync). When the txn stored records, the next hash
 * chain link is appended first, inside the same txn. The txn is gone
 * afterwards, also on error. CAIRN_E_MAPFULL (grow and retry the group),
 * CAIRN_E_NOSPC, CAIRN_E_STORAGE, CAIRN_E_CORRUPT (the chain DB has a link
 * past the head this env loaded: another writer?), CAIRN_E_NOMEM. */
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

/* Fields a query can filter on and stats can group by; every one has an
 * index (idx kinds above). The audit fields are attrs of source audit
 * records, the k8s fields attrs of source k8s-audit records
 * (collector/parse_audit.c, collector/parse_k8s.c); numbers are compared as
 * the decimal text the collector stored. Values never renumbered: append. */
typedef enum sto_field {
  STO_FIELD_NAMESPACE = 0, /* Record.kube_namespace */
  STO_FIELD_POD,           /* Record.pod */
  STO_FIELD_CONTAINER,     /* Record.container */
  STO_FIELD_NODE,          /* Record.node */
  STO_FIELD_AUDIT_KEY,     /* attr "key" (repeated) */
  STO_FIELD_AUID,          /* attr "auid" */
  STO_FIELD_UID,           /* attr "uid" */
  STO_FIELD_SYSCALL,       /* attr "syscall" (number) */
  STO_FIELD_TYPE,          /* attr "types": each comma-separated record type */
  STO_FIELD_EXE,           /* attr "exe" */
  STO_FIELD_SUCCESS,       /* attr "success": "yes" / "no" */
  STO_FIELD_K8S_USER,      /* attr "user" (user.username) */
  STO_FIELD_VERB,          /* attr "verb" */
  STO_FIELD_RESOURCE,      /* attr "resource" */
  STO_FIELD_SUBRESOURCE,   /* attr "subresource" */
  STO_FIELD_CODE,          /* attr "code" (HTTP status) */
  STO_FIELD_COUNT_
} sto_field;

/* Short name of f ("namespace", "key", "auid", ..., "code"), also the
 * sto_query_stats.index name when f's index was walked. "" when out of range. */
const char *sto_field_name(sto_field f);

/* The i-th value (0-based) of field f in r: *v / *n point into r (borrowed
 * for r's lifetime, not NUL-terminated). false when r has no i-th value
 * (empty strings count as no value; audit fields exist only on source audit
 * records, k8s fields only on source k8s-audit records). */
bool sto_field_value(const Cairn__Record *r, sto_field f, size_t i, const uint8_t **v, size_t *n);

typedef enum sto_match {
  STO_MATCH_EXACT = 0, /* whole value equal (bytes) */
  STO_MATCH_PREFIX,    /* value starts with the term */
  STO_MATCH_GLOB,      /* fnmatch(3) pattern (no flags); its literal prefix
                          (up to the first * ? [ or backslash) bounds the index range */
} sto_match;

typedef struct sto_term {
  const char *value; /* NUL-terminated; borrowed */
  sto_match match;
} sto_term;

/* A field matches when any term matches any of its values (OR). n == 0 = any. */
typedef struct sto_terms {
  const sto_term *v; /* n terms, borrowed */
  size_t n;
} sto_terms;

/* Extra per-record predicate (e.g. a regex); true = keep. Runs after every
 * other filter, inside the query's read txn: it must not call sto_*. */
typedef bool (*sto_record_filter_fn)(const Cairn__Record *rec, void *ud);

/* Predicate on a record's message bytes alone (a regex, a case-insensitive
 * substring); true = keep. sto_query_run runs it, with the time, source,
 * stream and grep checks, on the message read straight from the stored
 * (packed) record, before decoding it: a record it rejects is never
 * unpacked, which is what makes a text scan fast. msg is never NULL (an
 * empty message is "" with len 0) and not NUL-terminated. Same rules as
 * sto_record_filter_fn: no sto_* calls. */
typedef bool (*sto_msg_filter_fn)(const uint8_t *msg, size_t len, void *ud);

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
  sto_terms terms[STO_FIELD_COUNT_]; /* per field, ANDed with the fields above */
  int stream;            /* Cairn__LogStream, 0 = any */
  sto_record_filter_fn filter; /* NULL = none; records it rejects are not counted */
  void *filter_ud;
  sto_msg_filter_fn msg_filter; /* NULL = none; checked before filter, on the message */
  void *msg_filter_ud;
} sto_query;

typedef struct sto_query_stats {
  const char *index;     /* index used: "time", "pod", "container", "namespace",
                            "node" or "source"; static storage */
  uint64_t examined;     /* index entries looked at */
  uint64_t matched;      /* records handed to the callback */
  uint64_t snapshot_seq; /* last seq of the snapshot the query read: records
                            with a higher seq were not visible to it */
} sto_query_stats;

/* Run q in one read txn, choosing the most selective index among the equality
 * filters, scanning its [since, until) range in time order and checking the
 * other filters on each record. With only the single-value fields (pod,
 * container, kube_namespace, node, source) the choice is the fixed order
 * pod > container > namespace > node > source > time. As soon as q->terms
 * holds a term, every filter is a candidate and the one whose index holds the
 * fewest entries wins (a field with several terms, or prefix/glob terms,
 * walks the union of its index keys, merged in time order; a field whose
 * terms expand to more than 64 keys, or a glob starting with a wildcard, is
 * not a candidate). Attr indexes are candidates only in stores that indexed
 * attrs from their first record on (meta "attr_idx_from" = 1); older stores
 * answer the same, by checking attrs on each record.
 * Order is (time, seq) ascending, or descending with newest_first.
 * Each record is first checked in its stored (packed) form: time, source,
 * stream, grep and msg_filter are read from the protobuf wire bytes, and
 * only a record that passes them is decoded for the other filters and cb.
 * (So a damaged record that these checks reject is skipped unreported: the
 * integrity check is `verify`'s job.) Records stored one after the other
 * in seq order are read with a cursor step, not a lookup each.
 * st (may be NULL) gets what was done. Errors (cb may have been called for
 * earlier records): CAIRN_E_CORRUPT, CAIRN_E_STORAGE, CAIRN_E_NOMEM,
 * CAIRN_E_INVAL (also: a term with a NULL value). */
CAIRN_MUST_CHECK cairn_err sto_query_run(sto_env *env, const sto_query *q, sto_record_cb cb,
                                         void *ud, sto_query_stats *st);

/* Initialise q to match everything (open time range, no filters, no limit). */
void sto_query_init(sto_query *q);

/* Does r pass every filter of q (time range, fields, terms, stream, grep,
 * q->msg_filter, q->filter)? limit and order are ignored. For following new records
 * (sto_scan_after) with the filters of a query. */
bool sto_query_match(const sto_query *q, const Cairn__Record *r);

/* Per-value counts of field f's index over [since, until): cb gets each
 * indexed value (bytes borrowed for the call, possibly cut at
 * STO_INDEX_VALUE_MAX) and its number of records, in byte order of the
 * values; *total (may be NULL) gets the number of records in the range (the
 * time index). Reads only the index (no record is decoded): with an open
 * range each count is O(1). A record with a repeated value (audit keys,
 * record types) counts once per distinct value. The attr fields need an
 * attr-indexed store: CAIRN_E_NOTFOUND otherwise (count from records
 * instead). cb returns false to stop. CAIRN_E_INVAL, CAIRN_E_STORAGE. */
typedef bool (*sto_count_cb)(const uint8_t *value, size_t n, uint64_t count, void *ud);
CAIRN_MUST_CHECK cairn_err sto_index_counts(sto_env *env, sto_field f, int64_t since_ns,
                                            int64_t until_ns, sto_count_cb cb, void *ud,
                                            uint64_t *total);

/* Event times of all records in [since, until), ascending, from the time
 * index only (no record decoded): for histograms. cb returns false to stop.
 * CAIRN_E_STORAGE, CAIRN_E_CORRUPT. */
typedef bool (*sto_time_cb)(int64_t time_ns, void *ud);
CAIRN_MUST_CHECK cairn_err sto_times_scan(sto_env *env, int64_t since_ns, int64_t until_ns,
                                          sto_time_cb cb, void *ud);

/* ---- integrity: hash chain and signed checkpoints (chain.c) ----
 *
 * Every committed write txn that stored records appends link n:
 *   hash_n = SHA-256(hash_{n-1} || n || first_seq || last_seq || commit_ns
 *                    || digest)
 *   digest = SHA-256(leaf_first || ... || leaf_last): the txn's records'
 *            leaves in seq order
 *   leaf_s = SHA-256(seq (u64 BE) || length (u64 BE) || packed bytes as stored)
 * with hash_0 = 32 zero bytes and every integer big-endian (commit_ns as
 * stored, biased: sign bit flipped). Hashing leaves rather than bytes lets a
 * proof for one record carry only the other records' leaves (sto_link_*). The aggregator signs checkpoints of the head with Ed25519;
 * storage keeps them and checks them (sto_chain_verify), it never signs.
 */

#define STO_HASH_LEN 32u   /* SHA-256 */
#define STO_PUBKEY_LEN 32u /* raw Ed25519 public key */
#define STO_SIG_LEN 64u    /* Ed25519 signature */
/* Bytes of the message a checkpoint signature covers (sto_checkpoint_message). */
#define STO_CHECKPOINT_MSG_LEN (20u + 8u + STO_HASH_LEN + 8u + 8u)

typedef struct sto_chain_head {
  uint64_t position;           /* last link n; 0 = empty chain */
  uint64_t first_seq;          /* first record seq covered by link 1 (0 = empty) */
  uint64_t last_seq;           /* last record seq covered by link n */
  int64_t commit_ns;           /* wall-clock commit time of link n */
  uint8_t hash[STO_HASH_LEN];  /* hash_n (zeros when empty) */
} sto_chain_head;

/* The current head in one read txn (any thread). A store opened read-only
 * that predates the chain gives an empty head. CAIRN_E_INVAL,
 * CAIRN_E_CORRUPT (a malformed link), CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_chain_head_get(sto_env *env, sto_chain_head *out);

typedef struct sto_checkpoint {
  uint64_t position;               /* chain position n it signs (>= 1) */
  uint64_t last_seq;               /* last seq covered by link n */
  int64_t time_ns;                 /* when it was signed (wall clock) */
  uint8_t head[STO_HASH_LEN];      /* hash_n */
  uint8_t pubkey[STO_PUBKEY_LEN];  /* raw public key of the signer (informational:
                                      a verifier trusts only its own copy) */
  uint8_t sig[STO_SIG_LEN];        /* Ed25519 over sto_checkpoint_message */
} sto_checkpoint;

/* The exact bytes signed for cp: "cairn-checkpoint-v1" NUL, position,
 * head, last_seq, time_ns (biased); integers u64 BE. out has room for
 * STO_CHECKPOINT_MSG_LEN bytes; returns that length. */
size_t sto_checkpoint_message(const sto_checkpoint *cp, uint8_t *out);

/* Store cp (already signed) inside t, keyed by cp->position; an existing
 * checkpoint at that position is replaced. CAIRN_E_INVAL (position 0),
 * CAIRN_E_MAPFULL, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_wtxn_checkpoint_put(sto_wtxn *t, const sto_checkpoint *cp);

/* The checkpoint with the highest position; *found false when none.
 * CAIRN_E_CORRUPT (malformed value), CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_checkpoint_last(sto_env *env, sto_checkpoint *out, bool *found);

typedef enum sto_verify_status {
  STO_VERIFY_OK = 0,
  STO_VERIFY_PREDATES,      /* records but no chain: made before the chain existed */
  STO_VERIFY_MODIFIED,      /* a record's bytes differ from what the link hashed */
  STO_VERIFY_REMOVED,       /* a seq covered by a link is missing */
  STO_VERIFY_INSERTED,      /* a record no link covers */
  STO_VERIFY_REORDERED,     /* a record is stored under another record's seq */
  STO_VERIFY_LINK_BROKEN,   /* a link is missing, malformed, not contiguous, or its hash altered */
  STO_VERIFY_CHECKPOINT_MISMATCH, /* a checkpoint does not match the chain (rewritten or truncated) */
  STO_VERIFY_BAD_SIGNATURE, /* a checkpoint signature does not verify with the given key */
} sto_verify_status;

/* Stable lower-case name of s ("modified", "bad-signature", ...). */
const char *sto_verify_status_name(sto_verify_status s);

typedef struct sto_verify_report {
  sto_verify_status status;   /* OK or the FIRST problem in chain order */
  uint64_t position;          /* chain position of the problem (0 = not at a link) */
  uint64_t seq;               /* record seq of the problem (0 = none) */
  uint64_t first_seq, last_seq; /* seq range of the link at position (0 = n/a) */
  char detail[256];           /* one line: what exactly is wrong */
  /* counts, valid also when status != OK (up to where the walk stopped) */
  uint64_t links;             /* links checked */
  uint64_t records;           /* records covered by checked links */
  uint64_t prechain_records;  /* records older than link 1 (store upgraded from v1) */
  uint64_t checkpoints;       /* checkpoints seen */
  bool signatures_checked;    /* a public key was given */
  uint64_t last_signed_position; /* highest checkpoint that verified (0 = none) */
  uint64_t last_signed_seq;   /* its last_seq */
  uint64_t chain_last_seq;    /* last seq covered by the chain */
  uint8_t chain_head[STO_HASH_LEN]; /* hash of the last link checked (anchor it elsewhere) */
  uint64_t unsigned_records;  /* records after the last verified checkpoint */
  /* hot retention (sto_prune): links at or below the prune mark were checked
   * for continuity and checkpoint signatures only, their records being gone */
  uint64_t pruned_links;      /* links at or below the prune mark */
  uint64_t pruned_records;    /* records deleted by retention (seq <= pruned_seq) */
  uint64_t pruned_seq;        /* the mark: every record up to it is deleted (0 = none) */
} sto_verify_report;

/* Progress during sto_chain_verify: records checked so far of about total.
 * Called on the verifying thread every few thousand records; must not call
 * into sto_*. */
typedef void (*sto_verify_progress_cb)(uint64_t done, uint64_t total, void *ud);

/* Walk the whole chain from link 1 in one read txn (a consistent snapshot):
 * recompute every link from the records actually stored (each seq from the
 * link's first to last must be present, no record may lie outside the chain)
 * and compare with the stored links; links at or below the prune mark
 * (sto_prune) are checked for seq continuity and checkpoints only, no record
 * at or below the mark may still be stored, and the first link after them
 * is recomputed from the last pruned link's stored hash; check every checkpoint against the
 * chain, and its signature against pubkey (STO_PUBKEY_LEN raw Ed25519 bytes;
 * NULL = do not check signatures). The verdict goes to *out: STO_VERIFY_OK
 * or the first problem in chain order. progress may be NULL.
 * Returns CAIRN_OK whenever the walk produced a verdict (also a failed one);
 * errors only when it could not run: CAIRN_E_INVAL, CAIRN_E_NOMEM,
 * CAIRN_E_STORAGE (LMDB error). Holding one read txn for the whole walk
 * keeps LMDB from reusing pages meanwhile: the writer's file may grow. */
CAIRN_MUST_CHECK cairn_err sto_chain_verify(sto_env *env, const uint8_t *pubkey,
                                            sto_verify_progress_cb progress, void *ud,
                                            sto_verify_report *out);

/* ---- integrity: proofs for single records (evidence export) ----
 *
 * A record is proven by: its stored bytes (-> its leaf), the leaves of the
 * other records of its link (-> the digest), the link fields and the hash of
 * the link before it (-> hash_n), the fields and digests of the following
 * links up to a checkpoint (-> that checkpoint's head), and the checkpoint's
 * signature. These calls read the pieces; each takes its own read txn, which
 * is consistent because links, records and checkpoints are only appended.
 */

typedef struct sto_link {
  uint64_t position;          /* n (>= 1) */
  uint64_t first_seq;         /* first record seq it covers */
  uint64_t last_seq;          /* last record seq it covers */
  int64_t commit_ns;          /* wall clock; hashed biased (sto_link_hash does that) */
  uint8_t hash[STO_HASH_LEN]; /* hash_n as stored */
} sto_link;

/* leaf = SHA-256(seq || n || p[0..n)) into out (STO_HASH_LEN bytes).
 * CAIRN_E_INVAL, CAIRN_E_NOMEM. Pure: no store needed. */
CAIRN_MUST_CHECK cairn_err sto_leaf_hash(uint64_t seq, const uint8_t *p, size_t n, uint8_t *out);

/* digest = SHA-256 of n leaves (n * STO_HASH_LEN bytes at leaves) into out.
 * CAIRN_E_INVAL, CAIRN_E_NOMEM. Pure. */
CAIRN_MUST_CHECK cairn_err sto_link_digest(const uint8_t *leaves, size_t n, uint8_t *out);

/* hash_n of link l (l->hash is ignored) after prev (hash_{n-1}) with digest,
 * into out. CAIRN_E_INVAL, CAIRN_E_NOMEM. Pure. */
CAIRN_MUST_CHECK cairn_err sto_link_hash(const uint8_t *prev, const sto_link *l,
                                         const uint8_t *digest, uint8_t *out);

/* The link at position (>= 1). CAIRN_E_NOTFOUND (no such link, or a store
 * without chain), CAIRN_E_CORRUPT (malformed), CAIRN_E_INVAL, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_link_get(sto_env *env, uint64_t position, sto_link *out);

/* The link covering record seq (binary search over positions).
 * CAIRN_E_NOTFOUND (seq is before link 1 or after the last link),
 * CAIRN_E_CORRUPT (a malformed or missing link on the way), CAIRN_E_INVAL,
 * CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_link_find(sto_env *env, uint64_t seq, sto_link *out);

/* The checkpoint with the lowest position >= position; *found false when
 * none. CAIRN_E_CORRUPT (malformed value), CAIRN_E_INVAL, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_checkpoint_from(sto_env *env, uint64_t position,
                                               sto_checkpoint *out, bool *found);

/* Callback per raw record: seq and its packed bytes exactly as stored (what
 * the leaf hashes), valid only during the call. Return false to stop. Must
 * not call sto_*. */
typedef bool (*sto_raw_record_cb)(uint64_t seq, const uint8_t *p, size_t n, void *ud);

/* Every record first_seq..last_seq in ascending order, in one read txn.
 * CAIRN_E_NOTFOUND when a seq in the range is not stored (*missing, may be
 * NULL, gets it; cb was called for the records before it), CAIRN_E_INVAL
 * (first_seq 0 or > last_seq), CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_records_raw(sto_env *env, uint64_t first_seq, uint64_t last_seq,
                                           sto_raw_record_cb cb, void *ud, uint64_t *missing);

/* sto_scan_after without unpacking: records with seq > after_seq, ascending,
 * at most max (0 = no limit), in one read txn; cb gets each record's seq
 * (its key) and stored bytes (valid only during the call, must not call
 * sto_*; decode them with pb_view_parse or pb_record_unpack). The Kafka
 * forwarder's scan. CAIRN_E_CORRUPT (a record key is not 8 bytes; the scan
 * stops there), CAIRN_E_INVAL, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_scan_after_raw(sto_env *env, uint64_t after_seq, size_t max,
                                              sto_raw_record_cb cb, void *ud);

/* ---- retention: pruning old records (retention.c) ----
 *
 * Hot retention deletes the oldest records from LMDB once the long-term copy
 * (Kafka) has them. It prunes whole chain links, oldest first: a link goes
 * when its commit time (which is after every record's ingest_ns) is older
 * than the cutoff AND its last seq is at or below the caller's seq bound (the
 * "kafka" cursor). For each record it deletes the record and its index
 * entries; the chain links, checkpoints and dedupe high-water marks stay, so
 * resent batches are still recognised as duplicates and sto_chain_verify can
 * still check the pruned links for continuity and signatures (their records
 * are gone, so their hashes cannot be recomputed).
 *
 * A link is pruned in one txn, together with meta "pruned_position" /
 * "pruned_seq" (u64 BE): links 1..pruned_position are pruned, every record
 * with seq <= pruned_seq (the last seq of that link) is gone, and no link is
 * ever half pruned. Records stored before link 1 (a store upgraded from
 * version 1) are never pruned.
 */

#define STO_PRUNE_DEFAULT_RECORDS 5000u /* record budget per txn when 0 is given */

typedef struct sto_prune_mark {
  uint64_t position; /* last pruned link (0 = nothing pruned) */
  uint64_t seq;      /* its last seq: every record with seq <= seq is deleted (0 = none) */
} sto_prune_mark;

/* The current mark, in one read txn (any thread). Zeros for a store that was
 * never pruned. CAIRN_E_INVAL, CAIRN_E_CORRUPT (malformed meta value),
 * CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto_prune_mark_get(sto_env *env, sto_prune_mark *out);

typedef struct sto_prune_result {
  uint64_t records;    /* records deleted by this call (0 = nothing was due) */
  uint64_t links;      /* links pruned by this call */
  sto_prune_mark mark; /* the mark after the call */
  bool more;           /* the budget stopped it while another link was due: call again */
  uint64_t bad_seq;    /* with CAIRN_E_CORRUPT: the seq that is missing or does not decode */
} sto_prune_result;

/* Prune the oldest links committed before cutoff_ns (wall clock, ns) that
 * end at or below max_seq (pass the "kafka" cursor when Kafka has the
 * long-term copy, UINT64_MAX to prune by age alone): delete their records
 * with their index entries, in ONE write txn, then commit it (fsync unless
 * no_sync). Links are taken while their records fit max_records (0 =
 * STO_PRUNE_DEFAULT_RECORDS), but at least one: a link bigger than the
 * budget is pruned alone. The writer thread calls it between ingest txns: it
 * opens its own write txn, so none may be open (CAIRN_E_INVAL); the budget
 * (and the largest link) bounds how long ingest waits. *out gets what was done (also on error: the mark before).
 * Errors (nothing was deleted): CAIRN_E_CORRUPT (a record of a due link is
 * missing, does not decode, or a link or meta value is malformed: pruning
 * refuses to destroy evidence; *out->bad_seq names the record, run
 * cairn-query verify), CAIRN_E_MAPFULL (grow the map, retry), CAIRN_E_NOSPC,
 * CAIRN_E_STORAGE, CAIRN_E_NOMEM, CAIRN_E_INVAL (read-only env, a store
 * without chain, a write txn open). */
CAIRN_MUST_CHECK cairn_err sto_prune(sto_env *env, int64_t cutoff_ns, uint64_t max_seq,
                                     size_t max_records, sto_prune_result *out);

#endif
