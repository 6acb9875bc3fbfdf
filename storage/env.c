/* storage/env.c: the LMDB environment: open/close, map growth, stats,
 * cursor reads, and the read-txn helpers. Read txns hold env->map_lock shared
 * so that a map resize (sto_grow in the writer, MDB_MAP_RESIZED handling in a
 * reader process) never runs while this process has a read txn open, which
 * LMDB forbids for mdb_env_set_mapsize.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/internal.h"

static const char META_LAST_SEQ[] = "last_seq";
static const char META_VERSION[] = "version";

cairn_err sto__err_from_mdb(int rc) {
  switch (rc) {
  case MDB_SUCCESS:
    return CAIRN_OK;
  case MDB_MAP_FULL:
    return CAIRN_E_MAPFULL;
  case MDB_NOTFOUND:
    return CAIRN_E_NOTFOUND;
  case MDB_CORRUPTED:
  case MDB_PAGE_NOTFOUND:
  case MDB_INVALID:
    return CAIRN_E_CORRUPT;
  case ENOSPC:
  case EDQUOT:
    return CAIRN_E_NOSPC;
  case ENOMEM:
    return CAIRN_E_NOMEM;
  case EACCES:
  case EPERM:
  case EROFS:
    return CAIRN_E_PERM;
  default:
    return CAIRN_E_STORAGE;
  }
}

static void set_err(char *errbuf, size_t errlen, const char *fmt, const char *dir,
                    const char *what, int rc, const char *hint) {
  if (!errbuf || !errlen) return;
  snprintf(errbuf, errlen, fmt, dir, what, rc, mdb_strerror(rc), hint);
}

/* Map-size change with no read txn of this process open. size 0 = adopt the
 * size another process set. */
static int resize_locked(sto_env *env, uint64_t size) {
  pthread_rwlock_wrlock(&env->map_lock);
  int rc = mdb_env_set_mapsize(env->mdb, (size_t)size);
  if (rc == MDB_SUCCESS) {
    MDB_envinfo info;
    mdb_env_info(env->mdb, &info);
    env->map_size = info.me_mapsize;
  }
  pthread_rwlock_unlock(&env->map_lock);
  return rc;
}

cairn_err sto__rtxn_begin(sto_env *env, MDB_txn **out) {
  for (int attempt = 0; attempt < 4; attempt++) {
    pthread_rwlock_rdlock(&env->map_lock);
    int rc = mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, out);
    if (rc == MDB_SUCCESS) return CAIRN_OK;
    pthread_rwlock_unlock(&env->map_lock);
    if (rc != MDB_MAP_RESIZED) return sto__err_from_mdb(rc);
    rc = resize_locked(env, 0);
    if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  }
  return CAIRN_E_AGAIN;
}

void sto__rtxn_end(sto_env *env, MDB_txn *txn) {
  mdb_txn_abort(txn);
  pthread_rwlock_unlock(&env->map_lock);
}

cairn_err sto__rcursor_open(sto_env *env, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cur) {
  cairn_err err = sto__rtxn_begin(env, txn);
  if (err != CAIRN_OK) return err;
  int rc = mdb_cursor_open(*txn, dbi, cur);
  if (rc != MDB_SUCCESS) {
    sto__rtxn_end(env, *txn);
    return sto__err_from_mdb(rc);
  }
  return CAIRN_OK;
}

static cairn_err get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out) {
  MDB_val k = {strlen(name), (void *)name}, v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) {
    *out = 0;
    return CAIRN_OK;
  }
  if (rc != MDB_SUCCESS) return sto__err_from_mdb(rc);
  if (v.mv_size != 8) return CAIRN_E_CORRUPT;
  *out = sto__be64_get(v.mv_data);
  return CAIRN_OK;
}

cairn_err sto__meta_last_seq(sto_env *env, MDB_txn *txn, uint64_t *out) {
  return get_u64(txn, env->meta, META_LAST_SEQ, out);
}

/* Open the named DBs in one txn; a writer creates them and stamps the
 * version. Fills env->last_seq. */
static cairn_err open_dbs(sto_env *env, const char *dir, char *errbuf, size_t errlen) {
  static const char fmt[] = "storage: %s: %s failed: %d %s%s";
  MDB_txn *txn;
  unsigned create = env->read_only ? 0 : MDB_CREATE;
  int rc = mdb_txn_begin(env->mdb, NULL, env->read_only ? MDB_RDONLY : 0, &txn);
  if (rc != MDB_SUCCESS) {
    set_err(errbuf, errlen, fmt, dir, "begin txn", rc, "");
    return sto__err_from_mdb(rc);
  }
  struct {
    const char *name;
    unsigned flags;
    MDB_dbi *dbi;
    bool since_v2; /* absent from a version 1 store (read-only open copes) */
  } dbs[] = {
      {"records", 0, &env->records, false},
      {"idx", MDB_DUPSORT | MDB_DUPFIXED, &env->idx, false},
      {"dedupe", 0, &env->dedupe, false},
      {"cursors", 0, &env->cursors, false},
      {"meta", 0, &env->meta, false},
      {"chain", 0, &env->chain, true},
      {"checkpoints", 0, &env->checkpoints, true},
  };
  cairn_err err = CAIRN_OK;
  env->has_chain = true;
  for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
    rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | create, dbs[i].dbi);
    if (rc == MDB_NOTFOUND && dbs[i].since_v2) {
      env->has_chain = false; /* read-only v1 store: sto_chain_verify says so */
      continue;
    }
    if (rc == MDB_NOTFOUND) {
      if (errbuf && errlen)
        snprintf(errbuf, errlen,
                 "storage: no cairn store in %s (database '%s' missing; start "
                 "cairn-aggregator --data %s first)",
                 dir, dbs[i].name, dir);
      err = CAIRN_E_NOTFOUND;
      goto out_abort;
    }
    if (rc != MDB_SUCCESS) {
      set_err(errbuf, errlen, fmt, dir, dbs[i].name, rc,
              rc == MDB_INCOMPATIBLE ? " (not a cairn store, or made by another version)" : "");
      err = sto__err_from_mdb(rc);
      goto out_abort;
    }
  }
  uint64_t version = 0;
  MDB_val vk = {sizeof(META_VERSION) - 1, (void *)META_VERSION}, vv;
  rc = mdb_get(txn, env->meta, &vk, &vv);
  if (rc == MDB_SUCCESS && vv.mv_size == 4) {
    const uint8_t *p = vv.mv_data;
    version = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
    if (version > STO__VERSION) {
      if (errbuf && errlen)
        snprintf(errbuf, errlen,
                 "storage: %s holds store version %u, this binary knows up to %u: "
                 "upgrade cairn",
                 dir, (unsigned)version, STO__VERSION);
      err = CAIRN_E_STORAGE;
      goto out_abort;
    }
  }
  if (!env->read_only &&
      (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && vv.mv_size == 4 && version < STO__VERSION))) {
    /* a new store, or a version 1 store whose chain starts with its next commit */
    uint8_t b[4] = {0, 0, 0, STO__VERSION};
    vv.mv_size = 4;
    vv.mv_data = b;
    rc = mdb_put(txn, env->meta, &vk, &vv, 0);
    if (rc != MDB_SUCCESS) {
      set_err(errbuf, errlen, fmt, dir, "write version", rc, "");
      err = sto__err_from_mdb(rc);
      goto out_abort;
    }
  } else if (rc == MDB_SUCCESS && vv.mv_size != 4) {
    if (errbuf && errlen)
      snprintf(errbuf, errlen,
               "storage: %s: the store version in 'meta' is %zu bytes, not 4: not a cairn "
               "store, or damaged",
               dir, vv.mv_size);
    err = CAIRN_E_CORRUPT;
    goto out_abort;
  } else if (rc != MDB_NOTFOUND && rc != MDB_SUCCESS) {
    set_err(errbuf, errlen, fmt, dir, "read version", rc, "");
    err = sto__err_from_mdb(rc);
    goto out_abort;
  }
  err = get_u64(txn, env->meta, META_LAST_SEQ, &env->last_seq);
  if (err != CAIRN_OK) {
    if (errbuf && errlen)
      snprintf(errbuf, errlen, "storage: %s: reading last_seq: %s", dir, cairn_err_name(err));
    goto out_abort;
  }
  if (!env->read_only && (err = sto__chain_load(env, txn)) != CAIRN_OK) {
    if (errbuf && errlen)
      snprintf(errbuf, errlen,
               "storage: %s: the last hash chain link is unreadable (%s): run cairn-query "
               "verify --data %s",
               dir, cairn_err_name(err), dir);
    goto out_abort;
  }
  /* commit also for the read-only txn: it keeps the dbi handles open */
  rc = mdb_txn_commit(txn);
  if (rc != MDB_SUCCESS) {
    set_err(errbuf, errlen, fmt, dir, "commit", rc, "");
    return sto__err_from_mdb(rc);
  }
  return CAIRN_OK;

out_abort:
  mdb_txn_abort(txn);
  return err;
}

/* A writable store refuses a data dir others could write into (they could
 * replace data.mdb or lock.mdb under us). */
static cairn_err check_dir_mode(const char *dir, char *errbuf, size_t errlen) {
  struct stat st;
  if (stat(dir, &st) != 0) {
    int e = errno;
    if (errbuf && errlen) snprintf(errbuf, errlen, "storage: cannot stat data dir %s: %s", dir, strerror(e));
    return cairn_err_from_errno(e);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (errbuf && errlen) snprintf(errbuf, errlen, "storage: data dir %s is not a directory (check --data)", dir);
    return CAIRN_E_INVAL;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    if (errbuf && errlen)
      snprintf(errbuf, errlen,
               "storage: data dir %s is writable by group or others (mode %04o): run chmod 700 "
               "%s (on a volume mounted with fsGroup, point --data at a subdirectory such as "
               "%s/store instead: it is created 0700)",
               dir, (unsigned)(st.st_mode & 07777), dir, dir);
    return CAIRN_E_PERM;
  }
  return CAIRN_OK;
}

/* Whether every page first..last of the store in dir is in LMDB's freelist
 * (dbi 0: key txnid, value an ID list, count first, then page numbers). The
 * freelist is read through the map, and a file cut inside the freelist's own
 * pages faults (SIGBUS) on that read, so the walk runs in a child process
 * with an environment of its own (an env must not be used across fork): a
 * child killed by a signal means the file is cut. Called before any thread
 * starts (sto_open). */
static bool tail_is_free(const char *dir, uint64_t first, uint64_t last) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    signal(SIGBUS, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    MDB_env *m;
    MDB_txn *txn;
    MDB_cursor *cur;
    uint64_t n = 0;
    if (mdb_env_create(&m) != MDB_SUCCESS ||
        mdb_env_open(m, dir, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0600) != MDB_SUCCESS ||
        mdb_txn_begin(m, NULL, MDB_RDONLY, &txn) != MDB_SUCCESS ||
        mdb_cursor_open(txn, 0, &cur) != MDB_SUCCESS)
      _exit(2);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      size_t ids = v.mv_size / sizeof(size_t);
      if (!ids) continue;
      const unsigned char *p = v.mv_data;
      size_t cnt;
      memcpy(&cnt, p, sizeof(cnt));
      for (size_t i = 1; i <= cnt && i < ids; i++) {
        size_t pg;
        memcpy(&pg, p + i * sizeof(size_t), sizeof(pg));
        if (pg >= first && pg <= last) n++;
      }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(m);
    _exit(n == last + 1 - first ? 0 : 1);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A data.mdb shorter than the pages its meta page says are in use (cut by a
 * partial copy) would fault (SIGBUS) on the first read past its end: refuse
 * it at open. Pages past the end that are all free are fine: LMDB never
 * writes a page that was allocated and freed in the same txn ("loose"), so
 * after deletions (retention) the file may end before the last page number,
 * and a free page is rewritten before it is read again. */
static cairn_err check_file_size(sto_env *env, const char *dir, const MDB_envinfo *info,
                                 char *errbuf, size_t errlen) {
  mdb_filehandle_t fd;
  MDB_stat est;
  struct stat st;
  if (mdb_env_get_fd(env->mdb, &fd) != MDB_SUCCESS || mdb_env_stat(env->mdb, &est) != MDB_SUCCESS ||
      fstat(fd, &st) != 0)
    return CAIRN_OK; /* nothing to compare with: LMDB's own checks apply */
  uint64_t need = ((uint64_t)info->me_last_pgno + 1) * est.ms_psize;
  if ((uint64_t)st.st_size >= need) return CAIRN_OK;
  uint64_t have = (uint64_t)st.st_size / est.ms_psize; /* whole pages in the file */
  if (have > 1 && tail_is_free(dir, have, info->me_last_pgno)) return CAIRN_OK;
  if (errbuf && errlen)
    snprintf(errbuf, errlen,
             "storage: %s/data.mdb is truncated (%llu bytes, its pages need %llu): restore the "
             "store from a backup",
             dir, (unsigned long long)st.st_size, (unsigned long long)need);
  return CAIRN_E_CORRUPT;
}

cairn_err sto_open(const char *dir, const sto_options *opt, sto_env **out, char *errbuf,
                   size_t errlen) {
  static const char fmt[] = "storage: %s: %s failed: %d %s%s";
  sto_options defaults = {0};
  if (!opt) opt = &defaults;
  if (errbuf && errlen) errbuf[0] = 0;
  if (!dir || !*dir || !out) return CAIRN_E_INVAL;
  *out = NULL;

  if (opt->read_only) {
    char path[4096];
    struct stat st;
    if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path))
      return CAIRN_E_INVAL;
    if (stat(path, &st) != 0) {
      int e = errno;
      if (errbuf && errlen) {
        if (e == ENOENT || e == ENOTDIR)
          snprintf(errbuf, errlen,
                   "no cairn store in %s (start cairn-aggregator --data %s first)", dir, dir);
        else
          snprintf(errbuf, errlen, "storage: cannot read %s: %s", path, strerror(e));
      }
      return (e == ENOENT || e == ENOTDIR) ? CAIRN_E_NOTFOUND : cairn_err_from_errno(e);
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
      if (errbuf && errlen)
        snprintf(errbuf, errlen, "storage: %s is %s: not a cairn store (check --data)", path,
                 S_ISREG(st.st_mode) ? "empty" : "not a regular file");
      return CAIRN_E_NOTFOUND;
    }
  } else {
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
      int e = errno;
      if (errbuf && errlen)
        snprintf(errbuf, errlen, "storage: cannot create data dir %s: %s (check --data)", dir,
                 strerror(e));
      return cairn_err_from_errno(e);
    }
    cairn_err perr = check_dir_mode(dir, errbuf, errlen);
    if (perr != CAIRN_OK) return perr;
  }

  sto_env *env = calloc(1, sizeof(*env));
  if (!env) return CAIRN_E_NOMEM;
  env->read_only = opt->read_only;
  env->map_size = opt->map_size ? opt->map_size : STO__DEFAULT_MAP;
  env->max_map_size = opt->max_map_size ? opt->max_map_size : STO__DEFAULT_MAX_MAP;
  if (env->max_map_size < env->map_size) env->max_map_size = env->map_size;
  env->wtxn.env = env;
  cairn_buf_init(&env->wtxn.pack);

  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  /* writer-preferring: a pending resize is not starved by a stream of readers */
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  int prc = pthread_rwlock_init(&env->map_lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  if (prc != 0) {
    free(env);
    return CAIRN_E_NOMEM;
  }

  cairn_err err;
  int rc = mdb_env_create(&env->mdb);
  if (rc != MDB_SUCCESS) {
    set_err(errbuf, errlen, fmt, dir, "mdb_env_create", rc, "");
    err = sto__err_from_mdb(rc);
    goto out_free;
  }
  mdb_env_set_maxdbs(env->mdb, STO__MAXDBS);
  mdb_env_set_maxreaders(env->mdb, STO__MAXREADERS);
  if (!env->read_only) {
    rc = mdb_env_set_mapsize(env->mdb, (size_t)env->map_size);
    if (rc != MDB_SUCCESS) {
      set_err(errbuf, errlen, fmt, dir, "set map size", rc, " (check storage.map_size)");
      err = sto__err_from_mdb(rc);
      goto out_env_close;
    }
  }
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
  if (env->read_only) flags |= MDB_RDONLY;
  if (opt->no_sync) flags |= MDB_NOSYNC;
  rc = mdb_env_open(env->mdb, dir, flags, 0600);
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
    if (errbuf && errlen)
      snprintf(errbuf, errlen,
               "storage: %s/data.mdb is not %s LMDB file: not a cairn store, or damaged (check "
               "--data)",
               dir, rc == MDB_INVALID ? "an" : "a compatible");
    err = CAIRN_E_CORRUPT;
    goto out_env_close;
  }
  if (rc != MDB_SUCCESS) {
    set_err(errbuf, errlen, fmt, dir, "mdb_env_open", rc,
            (rc == EACCES || rc == EPERM || rc == EROFS)
                ? " (check permissions on the data dir and its lock.mdb)"
                : "");
    err = sto__err_from_mdb(rc);
    goto out_env_close;
  }
  MDB_envinfo info;
  mdb_env_info(env->mdb, &info);
  if ((err = check_file_size(env, dir, &info, errbuf, errlen)) != CAIRN_OK) goto out_env_close;
  env->map_size = info.me_mapsize;
  if (env->max_map_size < env->map_size) env->max_map_size = env->map_size;

  err = open_dbs(env, dir, errbuf, errlen);
  if (err != CAIRN_OK) goto out_env_close;
  if (!env->read_only) {
    int dead = 0;
    (void)mdb_reader_check(env->mdb, &dead); /* clear slots of crashed readers */
  }
  *out = env;
  return CAIRN_OK;

out_env_close:
  mdb_env_close(env->mdb);
out_free:
  pthread_rwlock_destroy(&env->map_lock);
  free(env);
  return err;
}

void sto_close(sto_env *env) {
  if (!env) return;
  if (env->wtxn_busy) sto_wtxn_abort(&env->wtxn);
  mdb_env_close(env->mdb);
  cairn_buf_fini(&env->wtxn.pack);
  sto__chain_fini(&env->wtxn);
  pthread_rwlock_destroy(&env->map_lock);
  free(env);
}

cairn_err sto_grow(sto_env *env) {
  if (!env || env->read_only || env->wtxn_busy) return CAIRN_E_INVAL;
  if (env->map_size >= env->max_map_size) return CAIRN_E_MAPFULL;
  uint64_t next = env->map_size > env->max_map_size / 2 ? env->max_map_size : env->map_size * 2;
  int rc = resize_locked(env, next);
  return sto__err_from_mdb(rc);
}

cairn_err sto_cursor_get(sto_env *env, const char *name, uint64_t *value) {
  if (!env || !name || !*name || !value || strlen(name) > STO_INDEX_VALUE_MAX)
    return CAIRN_E_INVAL;
  MDB_txn *txn;
  cairn_err err = sto__rtxn_begin(env, &txn);
  if (err != CAIRN_OK) return err;
  err = get_u64(txn, env->cursors, name, value);
  sto__rtxn_end(env, txn);
  return err;
}

cairn_err sto_stats_get(sto_env *env, sto_stats *out) {
  if (!env || !out) return CAIRN_E_INVAL;
  memset(out, 0, sizeof(*out));
  MDB_txn *txn;
  cairn_err err = sto__rtxn_begin(env, &txn);
  if (err != CAIRN_OK) return err;
  MDB_stat st;
  int rc = mdb_stat(txn, env->records, &st);
  if (rc != MDB_SUCCESS) {
    err = sto__err_from_mdb(rc);
    goto out_end;
  }
  out->records = st.ms_entries;
  err = sto__meta_last_seq(env, txn, &out->last_seq);
  if (err != CAIRN_OK) goto out_end;
  MDB_envinfo info;
  MDB_stat est;
  mdb_env_info(env->mdb, &info);
  mdb_env_stat(env->mdb, &est);
  out->map_size = info.me_mapsize;
  out->map_used = ((uint64_t)info.me_last_pgno + 1) * est.ms_psize;
out_end:
  sto__rtxn_end(env, txn);
  return err;
}
