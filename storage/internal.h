/* storage/internal.h: private to storage/ (never included from other modules).
 * The env and write-txn structs, big-endian key helpers, LMDB error
 * translation and the read-txn helpers every reader uses. Nothing outside
 * storage/ .c files may include this file.
 */
#ifndef CAIRN_STORAGE_INTERNAL_H
#define CAIRN_STORAGE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "storage/storage.h"

#define STO__VERSION 1u            /* meta "version" written by this code */
#define STO__MAXDBS 8u             /* named DBs: 5 used, room to add */
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
};

/* The one write transaction of an env; embedded so that beginning a txn
 * allocates nothing and the pack buffer is reused across txns. */
struct sto_wtxn {
  sto_env *env;      /* owner */
  MDB_txn *txn;      /* NULL while not in use */
  uint64_t seq;      /* last seq assigned inside this txn */
  cairn_err dead;    /* CAIRN_OK, or the error that killed the txn */
  cairn_buf pack;    /* owned; packed record, reused for every record */
};

struct sto_env {
  MDB_env *mdb;            /* owned */
  MDB_dbi records;         /* seq BE -> packed record */
  MDB_dbi idx;             /* DUPSORT|DUPFIXED: kind value -> time seq */
  MDB_dbi dedupe;          /* instance 0x00 stream BE -> end_offset BE */
  MDB_dbi cursors;         /* name -> u64 BE */
  MDB_dbi meta;            /* "last_seq", "version" */
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
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
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

/* Read meta "last_seq" inside txn (0 when absent). */
CAIRN_MUST_CHECK cairn_err sto__meta_last_seq(sto_env *env, MDB_txn *txn, uint64_t *out);

#endif
