/* collector/checkpoint.c: the collector's own small LMDB store (not storage/):
 * per-file checkpoints keyed by (dev, ino) and the persistent instance id.
 * Every entry is mirrored in memory; the loop only touches that copy, and
 * changes are committed in one write txn on the threadpool (col__ckpt_flush_start),
 * so no LMDB write or fsync ever runs on the loop.
 */
#include <errno.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collector/internal.h"
#include "common/timeparse.h"

#define CKPT_MAP_SIZE ((size_t)64 << 20) /* bytes; ~300k files of 200-byte values */
#define CKPT_KEY_LEN 16u
/* Value layout 2: offset, file_stream (u64 BE), fp_len (u32 BE), fp[64],
 * btime (u64 BE), path. Layout 1 (no btime) is read as btime 0 and rewritten. */
#define CKPT_VAL_HDR1 (8u + 8u + 4u + COL_FP_MAX)
#define CKPT_VAL_HDR (CKPT_VAL_HDR1 + 8u)
#define CKPT_LAYOUT "2"

typedef struct ckpt_slot {
  col_ckpt_entry e;
  bool dirty;       /* changed since the last snapshot */
  int64_t seen_ns;  /* monotonic: last time a scan or a reader saw the file (memory only) */
} ckpt_slot;

typedef struct ckpt_key {
  uint64_t dev, ino;
} ckpt_key;

/* One change handed to the writer job (owned copies, no loop state). */
typedef struct ckpt_change {
  uint8_t key[CKPT_KEY_LEN];
  uint8_t *val; /* owned; NULL = delete */
  size_t val_len;
} ckpt_change;

struct col_ckpt {
  MDB_env *env;
  MDB_dbi files, meta;
  char instance_id[33];
  ckpt_slot *slots; /* owned array, n used / cap */
  size_t n, cap;
  ckpt_key *dels;   /* keys to delete at the next flush */
  size_t n_dels, cap_dels;
  bool busy;
  /* running job (private) */
  uv_work_t req;
  ckpt_change *job;
  size_t job_n;
  int job_rc;
  char job_why[160];
  col_ckpt_flush_cb cb;
  void *cb_ud;
};

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}

static void make_key(uint8_t key[CKPT_KEY_LEN], uint64_t dev, uint64_t ino) {
  put_u64(key, dev);
  put_u64(key + 8, ino);
}

bool col__fp_match(const uint8_t *fp, size_t fp_len, const uint8_t *cur, size_t cur_len) {
  return fp_len > 0 && cur_len >= fp_len && memcmp(fp, cur, fp_len) == 0;
}

uint64_t col__stream_id(uint64_t dev, uint64_t ino, uint64_t btime, const uint8_t *fp,
                        size_t fp_len, uint64_t salt) {
  uint8_t in[32 + COL_FP_MAX + 8];
  put_u64(in, dev);
  put_u64(in + 8, ino);
  put_u64(in + 16, salt);
  put_u64(in + 24, btime);
  if (fp_len > COL_FP_MAX) fp_len = COL_FP_MAX;
  if (fp_len) memcpy(in + 32, fp, fp_len);
  put_u64(in + 32 + fp_len, (uint64_t)fp_len);
  size_t n = 40 + fp_len;
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!EVP_Digest(in, n, md, &mdlen, EVP_sha256(), NULL)) {
    /* cannot happen with the default provider; fall back to FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ in[i]) * 1099511628211ull;
    return h ? h : 1;
  }
  uint64_t id = get_u64(md);
  return id ? id : 1; /* 0 means "unset" in proto3 */
}

static ckpt_slot *find_slot(const col_ckpt *ck, uint64_t dev, uint64_t ino) {
  for (size_t i = 0; i < ck->n; i++) {
    if (ck->slots[i].e.dev == dev && ck->slots[i].e.ino == ino) return &ck->slots[i];
  }
  return NULL;
}

/* Insert or replace the in-memory copy (path duplicated). */
static cairn_err slot_set(col_ckpt *ck, const col_ckpt_entry *e, bool dirty) {
  char *path = strdup(e->path ? e->path : "");
  if (!path) return CAIRN_E_NOMEM;
  ckpt_slot *s = find_slot(ck, e->dev, e->ino);
  if (!s) {
    if (ck->n == ck->cap) {
      size_t nc = ck->cap ? ck->cap * 2 : 64;
      ckpt_slot *ns = realloc(ck->slots, nc * sizeof(*ns));
      if (!ns) {
        free(path);
        return CAIRN_E_NOMEM;
      }
      ck->slots = ns;
      ck->cap = nc;
    }
    s = &ck->slots[ck->n++];
    memset(s, 0, sizeof(*s));
  }
  free(s->e.path);
  s->e = *e;
  if (s->e.fp_len > COL_FP_MAX) s->e.fp_len = COL_FP_MAX;
  s->e.path = path;
  s->dirty = dirty;
  s->seen_ns = cairn_time_mono_ns();
  return CAIRN_OK;
}

static void fmt_mdb(char *errbuf, size_t errlen, const char *dir, const char *step, int rc) {
  if (errbuf && errlen) {
    snprintf(errbuf, errlen,
             "checkpoint store %s/checkpoints.mdb: %s: %s (check that --state is a writable "
             "local directory not used by another collector)",
             dir, step, mdb_strerror(rc));
  }
}

/* Read the instance id or create and store a new one (in txn). */
static int ensure_instance_id(col_ckpt *ck, MDB_txn *txn) {
  MDB_val k = {.mv_size = 11, .mv_data = (void *)"instance_id"}, v;
  int rc = mdb_get(txn, ck->meta, &k, &v);
  if (rc == 0 && v.mv_size == 32) {
    memcpy(ck->instance_id, v.mv_data, 32);
    ck->instance_id[32] = '\0';
    return 0;
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return rc;
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return EIO;
  for (int i = 0; i < 16; i++) snprintf(ck->instance_id + 2 * i, 3, "%02x", raw[i]);
  v.mv_size = 32;
  v.mv_data = ck->instance_id;
  return mdb_put(txn, ck->meta, &k, &v, 0);
}

/* Load every file entry into memory (in txn); layout1: values without btime
 * (they are marked dirty, so the next commit rewrites them in layout 2). */
static cairn_err load_entries(col_ckpt *ck, MDB_txn *txn, bool layout1) {
  size_t hdr = layout1 ? CKPT_VAL_HDR1 : CKPT_VAL_HDR;
  MDB_cursor *cur;
  if (mdb_cursor_open(txn, ck->files, &cur) != 0) return CAIRN_E_STORAGE;
  MDB_val k, v;
  cairn_err err = CAIRN_OK;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  while (rc == 0) {
    if (k.mv_size == CKPT_KEY_LEN && v.mv_size >= hdr) {
      const uint8_t *kp = k.mv_data, *vp = v.mv_data;
      col_ckpt_entry e = {.dev = get_u64(kp), .ino = get_u64(kp + 8)};
      e.offset = get_u64(vp);
      e.file_stream = get_u64(vp + 8);
      e.fp_len = ((uint32_t)vp[16] << 24 | (uint32_t)vp[17] << 16 | (uint32_t)vp[18] << 8 | vp[19]);
      if (e.fp_len > COL_FP_MAX) e.fp_len = COL_FP_MAX;
      memcpy(e.fp, vp + 20, COL_FP_MAX);
      e.btime = layout1 ? 0 : get_u64(vp + CKPT_VAL_HDR1);
      size_t plen = v.mv_size - hdr;
      char *path = malloc(plen + 1);
      if (!path) {
        err = CAIRN_E_NOMEM;
        break;
      }
      memcpy(path, vp + hdr, plen);
      path[plen] = '\0';
      e.path = path;
      err = slot_set(ck, &e, layout1);
      free(path);
      if (err != CAIRN_OK) break;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  return err;
}

cairn_err col__ckpt_open(const char *dir, col_ckpt **out, char *errbuf, size_t errlen) {
  *out = NULL;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(errbuf, errlen, "--state %s: cannot create directory: %s (create it or point --state elsewhere)",
             dir, strerror(errno));
    return CAIRN_E_CONFIG;
  }
  col_ckpt *ck = calloc(1, sizeof(*ck));
  if (!ck) return CAIRN_E_NOMEM;
  char path[4096];
  snprintf(path, sizeof(path), "%s/checkpoints.mdb", dir);
  cairn_err err = CAIRN_E_STORAGE;
  int rc = mdb_env_create(&ck->env);
  if (rc != 0) {
    fmt_mdb(errbuf, errlen, dir, "mdb_env_create", rc);
    goto out_free;
  }
  mdb_env_set_maxdbs(ck->env, 4);
  mdb_env_set_mapsize(ck->env, CKPT_MAP_SIZE);
  rc = mdb_env_open(ck->env, path, MDB_NOSUBDIR | MDB_NOTLS, 0600);
  if (rc != 0) {
    fmt_mdb(errbuf, errlen, dir, "mdb_env_open", rc);
    goto out_close_env;
  }
  MDB_txn *txn;
  rc = mdb_txn_begin(ck->env, NULL, 0, &txn);
  if (rc != 0) {
    fmt_mdb(errbuf, errlen, dir, "mdb_txn_begin", rc);
    goto out_close_env;
  }
  rc = mdb_dbi_open(txn, "files", MDB_CREATE, &ck->files);
  if (rc == 0) rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ck->meta);
  if (rc == 0) rc = ensure_instance_id(ck, txn);
  if (rc != 0) {
    fmt_mdb(errbuf, errlen, dir, "initialising", rc);
    goto out_abort;
  }
  MDB_val lk = {.mv_size = 6, .mv_data = (void *)"layout"}, lv;
  bool layout1 = mdb_get(txn, ck->meta, &lk, &lv) != 0;
  if (layout1) {
    lv.mv_size = 1;
    lv.mv_data = (void *)CKPT_LAYOUT;
    rc = mdb_put(txn, ck->meta, &lk, &lv, 0);
    if (rc != 0) {
      fmt_mdb(errbuf, errlen, dir, "writing the layout version", rc);
      goto out_abort;
    }
  }
  err = load_entries(ck, txn, layout1);
  if (err != CAIRN_OK) {
    snprintf(errbuf, errlen, "checkpoint store %s/checkpoints.mdb: loading entries: %s", dir,
             cairn_err_str(err));
    goto out_abort;
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) {
    err = CAIRN_E_STORAGE;
    fmt_mdb(errbuf, errlen, dir, "mdb_txn_commit", rc);
    goto out_close_env;
  }
  *out = ck;
  return CAIRN_OK;

out_abort:
  mdb_txn_abort(txn);
out_close_env:
  mdb_env_close(ck->env);
  ck->env = NULL;
out_free:
  for (size_t i = 0; i < ck->n; i++) free(ck->slots[i].e.path);
  free(ck->slots);
  free(ck);
  return err;
}

const char *col__ckpt_instance_id(const col_ckpt *ck) { return ck->instance_id; }

const col_ckpt_entry *col__ckpt_get(const col_ckpt *ck, uint64_t dev, uint64_t ino) {
  ckpt_slot *s = find_slot(ck, dev, ino);
  return s ? &s->e : NULL;
}

size_t col__ckpt_count(const col_ckpt *ck) { return ck->n; }

cairn_err col__ckpt_put(col_ckpt *ck, const col_ckpt_entry *e) {
  for (size_t i = 0; i < ck->n_dels; i++) {
    if (ck->dels[i].dev == e->dev && ck->dels[i].ino == e->ino) {
      ck->dels[i] = ck->dels[--ck->n_dels];
      break;
    }
  }
  return slot_set(ck, e, true);
}

void col__ckpt_touch(col_ckpt *ck, uint64_t dev, uint64_t ino, int64_t now_ns) {
  ckpt_slot *s = find_slot(ck, dev, ino);
  if (s) s->seen_ns = now_ns;
}

size_t col__ckpt_gc(col_ckpt *ck, int64_t now_ns, int64_t max_age_ns) {
  size_t dropped = 0;
  for (size_t i = ck->n; i-- > 0;) {
    if (now_ns - ck->slots[i].seen_ns < max_age_ns) continue;
    col__ckpt_del(ck, ck->slots[i].e.dev, ck->slots[i].e.ino);
    dropped++;
  }
  return dropped;
}

void col__ckpt_del(col_ckpt *ck, uint64_t dev, uint64_t ino) {
  ckpt_slot *s = find_slot(ck, dev, ino);
  if (!s) return;
  free(s->e.path);
  *s = ck->slots[--ck->n];
  if (ck->n_dels == ck->cap_dels) {
    size_t nc = ck->cap_dels ? ck->cap_dels * 2 : 16;
    ckpt_key *nd = realloc(ck->dels, nc * sizeof(*nd));
    if (!nd) return; /* the stale entry stays on disk: harmless, reused inode gets re-fingerprinted */
    ck->dels = nd;
    ck->cap_dels = nc;
  }
  ck->dels[ck->n_dels++] = (ckpt_key){dev, ino};
}

bool col__ckpt_dirty(const col_ckpt *ck) {
  if (ck->n_dels) return true;
  for (size_t i = 0; i < ck->n; i++) {
    if (ck->slots[i].dirty) return true;
  }
  return false;
}

bool col__ckpt_busy(const col_ckpt *ck) { return ck->busy; }

static void free_changes(ckpt_change *ch, size_t n) {
  for (size_t i = 0; i < n; i++) free(ch[i].val);
  free(ch);
}

/* Copy every pending change out of the loop-owned table and clear the marks. */
static cairn_err snapshot(col_ckpt *ck, ckpt_change **out, size_t *n_out) {
  size_t n = ck->n_dels;
  for (size_t i = 0; i < ck->n; i++) n += ck->slots[i].dirty;
  *out = NULL;
  *n_out = 0;
  if (n == 0) return CAIRN_OK;
  ckpt_change *ch = calloc(n, sizeof(*ch));
  if (!ch) return CAIRN_E_NOMEM;
  size_t k = 0;
  for (size_t i = 0; i < ck->n; i++) {
    const col_ckpt_entry *e = &ck->slots[i].e;
    if (!ck->slots[i].dirty) continue;
    size_t plen = strlen(e->path);
    ch[k].val_len = CKPT_VAL_HDR + plen;
    ch[k].val = malloc(ch[k].val_len);
    if (!ch[k].val) {
      free_changes(ch, k);
      return CAIRN_E_NOMEM;
    }
    make_key(ch[k].key, e->dev, e->ino);
    uint8_t *v = ch[k].val;
    put_u64(v, e->offset);
    put_u64(v + 8, e->file_stream);
    v[16] = (uint8_t)(e->fp_len >> 24);
    v[17] = (uint8_t)(e->fp_len >> 16);
    v[18] = (uint8_t)(e->fp_len >> 8);
    v[19] = (uint8_t)e->fp_len;
    memcpy(v + 20, e->fp, COL_FP_MAX);
    put_u64(v + CKPT_VAL_HDR1, e->btime);
    memcpy(v + CKPT_VAL_HDR, e->path, plen);
    k++;
  }
  for (size_t i = 0; i < ck->n_dels; i++, k++) {
    make_key(ch[k].key, ck->dels[i].dev, ck->dels[i].ino);
  }
  for (size_t i = 0; i < ck->n; i++) ck->slots[i].dirty = false;
  ck->n_dels = 0;
  *out = ch;
  *n_out = n;
  return CAIRN_OK;
}

/* Put the changes back as pending after a failed commit (newer changes win). */
static void unsnapshot(col_ckpt *ck, const ckpt_change *ch, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t dev = get_u64(ch[i].key), ino = get_u64(ch[i].key + 8);
    ckpt_slot *s = find_slot(ck, dev, ino);
    if (ch[i].val) {
      if (s) s->dirty = true;
    } else if (!s && ck->n_dels < ck->cap_dels) {
      ck->dels[ck->n_dels++] = (ckpt_key){dev, ino};
    }
  }
}

/* One write txn with every change. Runs on any thread; returns an MDB/errno code. */
static int write_changes(MDB_env *env, MDB_dbi dbi, const ckpt_change *ch, size_t n,
                         const char **step) {
  MDB_txn *txn;
  *step = "mdb_txn_begin";
  int rc = mdb_txn_begin(env, NULL, 0, &txn);
  if (rc != 0) return rc;
  for (size_t i = 0; i < n; i++) {
    MDB_val k = {.mv_size = CKPT_KEY_LEN, .mv_data = (void *)ch[i].key};
    if (ch[i].val) {
      MDB_val v = {.mv_size = ch[i].val_len, .mv_data = ch[i].val};
      *step = "mdb_put";
      rc = mdb_put(txn, dbi, &k, &v, 0);
    } else {
      *step = "mdb_del";
      rc = mdb_del(txn, dbi, &k, NULL);
      if (rc == MDB_NOTFOUND) rc = 0;
    }
    if (rc != 0) {
      mdb_txn_abort(txn);
      return rc;
    }
  }
  *step = "mdb_txn_commit";
  return mdb_txn_commit(txn);
}

static void flush_work(uv_work_t *req) {
  col_ckpt *ck = req->data;
  const char *step = "";
  ck->job_rc = write_changes(ck->env, ck->files, ck->job, ck->job_n, &step);
  if (ck->job_rc != 0) {
    snprintf(ck->job_why, sizeof(ck->job_why), "%s: %s", step, mdb_strerror(ck->job_rc));
  }
}

static void flush_after(uv_work_t *req, int status) {
  col_ckpt *ck = req->data;
  cairn_err err = CAIRN_OK;
  if (status != 0 || ck->job_rc != 0) {
    err = CAIRN_E_STORAGE;
    if (status != 0) snprintf(ck->job_why, sizeof(ck->job_why), "%s", uv_strerror(status));
    unsnapshot(ck, ck->job, ck->job_n);
  }
  free_changes(ck->job, ck->job_n);
  ck->job = NULL;
  ck->job_n = 0;
  ck->busy = false;
  ck->cb(ck, err, err == CAIRN_OK ? "" : ck->job_why, ck->cb_ud);
}

cairn_err col__ckpt_flush_start(col_ckpt *ck, uv_loop_t *loop, col_ckpt_flush_cb cb, void *ud) {
  if (ck->busy) return CAIRN_E_AGAIN;
  cairn_err err = snapshot(ck, &ck->job, &ck->job_n);
  if (err != CAIRN_OK) return err;
  ck->cb = cb;
  ck->cb_ud = ud;
  ck->job_rc = 0;
  ck->job_why[0] = '\0';
  ck->req.data = ck;
  int rc = uv_queue_work(loop, &ck->req, flush_work, flush_after);
  if (rc != 0) {
    unsnapshot(ck, ck->job, ck->job_n);
    free_changes(ck->job, ck->job_n);
    ck->job = NULL;
    return CAIRN_E_NOMEM;
  }
  ck->busy = true;
  return CAIRN_OK;
}

cairn_err col__ckpt_flush_sync(col_ckpt *ck, char *errbuf, size_t errlen) {
  if (ck->busy) return CAIRN_E_AGAIN;
  ckpt_change *ch;
  size_t n;
  cairn_err err = snapshot(ck, &ch, &n);
  if (err != CAIRN_OK) return err;
  if (n == 0) return CAIRN_OK;
  const char *step = "";
  int rc = write_changes(ck->env, ck->files, ch, n, &step);
  if (rc != 0) {
    unsnapshot(ck, ch, n);
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s: %s", step, mdb_strerror(rc));
    err = CAIRN_E_STORAGE;
  }
  free_changes(ch, n);
  return err;
}

void col__ckpt_close(col_ckpt *ck) {
  if (!ck) return;
  if (ck->env) mdb_env_close(ck->env);
  for (size_t i = 0; i < ck->n; i++) free(ck->slots[i].e.path);
  free(ck->slots);
  free(ck->dels);
  free(ck);
}
