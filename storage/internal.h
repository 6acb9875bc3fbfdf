/* storage/internal.h: private to storage/ (never included from other modules).
 * The env and write-txn structs, big-endian key helpers, LMDB error
 * translation and the read-txn helpers every reader uses. Nothing outside
 * storage/ .c files may include this file.
 */
#ifndef CAIRN_STORAGE_INTERNAL_H
#define CAIRN_STORAGE_INTERNAL_H

#include <lmdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "proto/recview.h"
#include "storage/storage.h"

#define STO__VERSION 2u            /* meta "version" written by this code (2: hash chain) */
#define STO__MAXDBS 16u            /* named DBs: 7 used, room to add */
#define STO__MAXREADERS 256u       /* concurrent read txns across processes */
#define STO__DEFAULT_MAP (1ull << 30)
#define STO__DEFAULT_MAX_MAP (64ull << 30)
#define STO__IDX_DATA 16u          /* idx dup data: time(8) seq(8) */
#define STO__IDX_KEY_MAX (1u + STO_INDEX_VALUE_MAX)
#define STO__INSTANCE_MAX 255u     /* bytes of instance_id in a dedupe key */

/* Index kinds (first byte of an idx key). */
enum {
  STO__IDX_TIME = 't',
  STO__IDX_NAMESPACE = 'n',
  STO__IDX_POD = 'p',
  STO__IDX_CONTAINER = 'c',
  STO__IDX_NODE = 'h',
  STO__IDX_SOURCE = 's',
  /* attrs of auditd records (source audit) */
  STO__IDX_AUDIT_KEY = 'k', /* each key= value */
  STO__IDX_AUID = 'a',      /* decimal, as logged (4294967295 = unset) */
  STO__IDX_UID = 'u',
  STO__IDX_SYSCALL = 'y',   /* decimal syscall number */
  STO__IDX_TYPE = 'r',      /* each distinct record type of the event */
  STO__IDX_EXE = 'e',
  STO__IDX_SUCCESS = 'x',   /* "yes" / "no" */
  /* attrs of Kubernetes audit records (source k8s-audit) */
  STO__IDX_K8S_USER = 'U',
  STO__IDX_VERB = 'v',
  STO__IDX_RESOURCE = 'R',
  STO__IDX_SUBRESOURCE = 'B',
  STO__IDX_CODE = 'C',      /* decimal HTTP status */
};

/* How a sto_field is stored and indexed (table in index.c, indexed by
 * sto_field). Fields with attr == NULL are Record struct fields. */
typedef struct sto__field_def {
  uint8_t kind;      /* idx kind byte */
  int source;        /* Cairn__Source whose records carry the attr; 0 = any */
  const char *attr;  /* attr key, NULL for a Record field */
  bool list;         /* attr value is a comma-separated list ("types") */
  const char *name;  /* sto_field_name() */
} sto__field_def;

extern const sto__field_def sto__fields[STO_FIELD_COUNT_];

/* meta key: first seq stored with attr index entries (absent = none yet). */
#define STO__META_ATTR_IDX_FROM "attr_idx_from"

/* The one write transaction of an env; embedded so that beginning a txn
 * allocates nothing and the pack buffer is reused across txns. */
struct sto_wtxn {
  sto_env *env;      /* owner */
  MDB_txn *txn;      /* NULL while not in use */
  uint64_t seq;      /* last seq assigned inside this txn */
  cairn_err dead;    /* CAIRN_OK, or the error that killed the txn */
  cairn_buf pack;    /* owned; packed record, reused for every record */
  EVP_MD_CTX *chain_md; /* owned; digest of this txn's records (chain.c) */
  EVP_MD_CTX *leaf_md;  /* owned; scratch for one record's leaf hash (chain.c) */
  bool chain_open;   /* chain_md holds the digest of >= 1 record of this txn */
  uint64_t chain_first; /* seq of the first record stored in this txn */
  uint8_t chain_new[32]; /* hash of the link written at commit, adopted on success */
  bool chain_wrote;  /* a link was written in this txn */
  pb_rec_view view;  /* scratch: the record being stored by sto_wtxn_put_items */
};

struct sto_env {
  MDB_env *mdb;            /* owned */
  MDB_dbi records;         /* seq BE -> packed record */
  MDB_dbi idx;             /* DUPSORT|DUPFIXED: kind value -> time seq */
  MDB_dbi dedupe;          /* instance 0x00 stream BE -> end_offset BE */
  MDB_dbi cursors;         /* name -> u64 BE */
  MDB_dbi meta;            /* "last_seq", "version" */
  MDB_dbi chain;           /* position BE -> link (chain.c) */
  MDB_dbi checkpoints;     /* position BE -> signed checkpoint (chain.c) */
  bool has_chain;          /* chain/checkpoints DBs exist (false: read-only v1 store) */
  uint64_t chain_pos;      /* writer: last committed link position (0 = none) */
  uint8_t chain_head[32];  /* writer: its hash (zeros when none) */
  uint64_t last_seq;       /* writer: last committed seq (readers read meta) */
  uint64_t map_size;       /* bytes, current */
  uint64_t max_map_size;   /* bytes, sto_grow cap */
  bool read_only;
  bool wtxn_busy;          /* the embedded wtxn is in use */
  pthread_rwlock_t map_lock; /* read txns hold it shared; map resizes exclusive */
  sto_wtxn wtxn;           /* embedded, see struct sto_wtxn */
};

/* ---- big-endian helpers (LMDB compares keys bytewise) ---- */

static inline void sto__be64_put(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static inline uint64_t sto__be64_get(const uint8_t *p) {
  /* written out so that compilers emit one load and a byte swap (the query
   * walk calls this per index entry) */
  return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 | (uint64_t)p[3] << 32 |
         (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 | (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

/* Signed time with the sign bit flipped: unsigned order == signed order. */
static inline uint64_t sto__time_bias(int64_t t) {
  return (uint64_t)t ^ (1ull << 63);
}

static inline int64_t sto__time_unbias(uint64_t u) {
  return (int64_t)(u ^ (1ull << 63));
}

/* ---- index.c ---- */

/* Build the idx key kind|value into key (STO__IDX_KEY_MAX bytes), value
 * truncated to STO_INDEX_VALUE_MAX bytes; returns the key length. */
size_t sto__idx_key_str(uint8_t *key, uint8_t kind, const char *value);

/* idx key kind|bytes, cut at STO_INDEX_VALUE_MAX; returns the key length. */
size_t sto__idx_key_bytes(uint8_t *key, uint8_t kind, const uint8_t *value, size_t n);

/* A record as the index builder and sto_field_value read it: a decoded
 * record (r) or a view of its packed bytes (v); exactly one is set. */
typedef struct sto__rec_ref {
  const Cairn__Record *r;
  const pb_rec_view *v;
} sto__rec_ref;

/* sto_field_value on either form; the same values for a view as for the
 * record protobuf-c decodes from the same bytes. */
bool sto__ref_field_value(const sto__rec_ref *x, sto_field f, size_t i, const uint8_t **v,
                          size_t *n);

/* idx key for a source value (u32 BE). */
size_t sto__idx_key_source(uint8_t *key, uint32_t source);

/* idx dup data: time (biased BE) then seq (BE), STO__IDX_DATA bytes. */
void sto__idx_data(uint8_t *data, int64_t time_ns, uint64_t seq);

/* dedupe key instance 0x00 stream BE; returns its length, 0 when the
 * instance id is longer than STO__INSTANCE_MAX. key has room for
 * STO__INSTANCE_MAX + 9 bytes. */
size_t sto__dedupe_key(uint8_t *key, const char *instance_id, uint64_t stream);

/* ---- env.c ---- */

/* Translate an LMDB or errno return code. */
cairn_err sto__err_from_mdb(int rc);

/* Begin a read txn (taking map_lock shared, handling MDB_MAP_RESIZED).
 * On CAIRN_OK the caller must end it with sto__rtxn_end. */
CAIRN_MUST_CHECK cairn_err sto__rtxn_begin(sto_env *env, MDB_txn **out);
void sto__rtxn_end(sto_env *env, MDB_txn *txn);
/* Begin a read txn and open a cursor on dbi in it. On CAIRN_OK the caller
 * closes the cursor and ends the txn with sto__rtxn_end; on error nothing is
 * left open. */
CAIRN_MUST_CHECK cairn_err sto__rcursor_open(sto_env *env, MDB_dbi dbi, MDB_txn **txn,
                                             MDB_cursor **cur);

/* Read meta "last_seq" inside txn (0 when absent). */
CAIRN_MUST_CHECK cairn_err sto__meta_last_seq(sto_env *env, MDB_txn *txn, uint64_t *out);

/* ---- chain.c (hooks called by write.c and env.c) ---- */

#define STO__LINK_LEN (8u + 8u + 8u + 32u) /* first_seq last_seq commit_ns hash */

/* env.c, after opening the DBs in a write txn: load the head into env. */
CAIRN_MUST_CHECK cairn_err sto__chain_load(sto_env *env, MDB_txn *txn);
/* sto_wtxn_begin, inside the new LMDB txn: forget the previous txn's digest
 * and reload the head from the chain DB (another process may have written).
 * CAIRN_E_CORRUPT (malformed last link), CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto__chain_begin(sto_wtxn *t);
/* store_record: add one stored record (key seq, packed bytes) to the digest.
 * CAIRN_E_NOMEM: the record is stored but not hashed, so the txn must die. */
CAIRN_MUST_CHECK cairn_err sto__chain_add(sto_wtxn *t, uint64_t seq, const void *p, size_t n);
/* sto_wtxn_commit, before mdb_txn_commit: append the link when records were
 * stored. CAIRN_E_MAPFULL, CAIRN_E_STORAGE, CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err sto__chain_link_put(sto_wtxn *t);
/* sto_wtxn_commit, after mdb_txn_commit succeeded: adopt the new head. */
void sto__chain_committed(sto_wtxn *t);
/* sto_close: free the digest context. */
void sto__chain_fini(sto_wtxn *t);

/* ---- retention.c ---- */

/* The prune mark inside txn (zeros when never pruned). CAIRN_E_CORRUPT,
 * CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto__prune_mark_read(sto_env *env, MDB_txn *txn, sto_prune_mark *out);
/* Delete every idx entry of stored record r inside write txn txn, computed
 * with the same key helpers as write.c's index_record (an entry already gone
 * is fine). CAIRN_E_MAPFULL, CAIRN_E_STORAGE. */
CAIRN_MUST_CHECK cairn_err sto__idx_del_record(sto_env *env, MDB_txn *txn,
                                               const Cairn__Record *r);

#endif
