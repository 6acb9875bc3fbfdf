/* tests/query/bad_store_test.c: a --data dir that is not a usable cairn
 * store gets one clear line on stderr naming the problem and exit 2, from
 * every command that reads a store (search, audit, stats, verify, export),
 * never a crash: missing dir, empty dir, a data.mdb that is empty, garbage,
 * truncated (which LMDB would read past the end of: SIGBUS), an LMDB
 * environment that is not a cairn store, a store of a newer layout version,
 * and a damaged version stamp. The intact store beside them still answers.
 */
#include <fcntl.h>
#include <lmdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/query/fixture.h"

typedef struct world {
  fx_store fx;
  char path[160];
} world;

static int setup(void **state) {
  world *w = calloc(1, sizeof(*w));
  assert_non_null(w);
  assert_int_equal(fx_build(&w->fx), 0);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world *w = *state;
  fx_destroy(&w->fx);
  free(w);
  return 0;
}

/* w->path = fixture dir / name (not created). */
static const char *sub(world *w, const char *name) {
  snprintf(w->path, sizeof(w->path), "%s/%s", w->fx.dir, name);
  return w->path;
}

static void write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* Copy the fixture's data.mdb into dir (created), at most max bytes. */
static void copy_store(world *w, const char *dir, size_t max) {
  char src[256], dst[256];
  snprintf(src, sizeof(src), "%s/data.mdb", w->fx.data);
  snprintf(dst, sizeof(dst), "%s/data.mdb", dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  FILE *in = fopen(src, "rb");
  assert_non_null(in);
  FILE *out = fopen(dst, "wb");
  assert_non_null(out);
  char buf[65536];
  size_t n, done = 0;
  while (done < max && (n = fread(buf, 1, sizeof(buf), in)) > 0) {
    if (n > max - done) n = max - done;
    assert_int_equal(fwrite(buf, 1, n, out), n);
    done += n;
  }
  fclose(in);
  assert_int_equal(fclose(out), 0);
}

/* Put meta "version" = v (vlen bytes) into the store in dir, behind
 * storage's back (as a newer cairn, or damage, would have). */
static void set_version(const char *dir, const uint8_t *v, size_t vlen) {
  MDB_env *e;
  MDB_txn *t;
  MDB_dbi dbi;
  assert_int_equal(mdb_env_create(&e), 0);
  assert_int_equal(mdb_env_set_maxdbs(e, 16), 0);
  assert_int_equal(mdb_env_open(e, dir, MDB_NOSYNC, 0600), 0);
  assert_int_equal(mdb_txn_begin(e, NULL, 0, &t), 0);
  assert_int_equal(mdb_dbi_open(t, "meta", 0, &dbi), 0);
  MDB_val k = {7, (void *)"version"}, d = {vlen, (void *)v};
  assert_int_equal(mdb_put(t, dbi, &k, &d, 0), 0);
  assert_int_equal(mdb_txn_commit(t), 0);
  mdb_env_close(e);
}

/* Every store-reading command on dir: exit 2, nothing on stdout, exactly one
 * line on stderr that contains want and names the dir. */
static void assert_refused(world *w, const char *dir, const char *want) {
  char out_dir[200];
  snprintf(out_dir, sizeof(out_dir), "%s/bundle-%zu", w->fx.dir, strlen(dir));
  const char *const cmds[][8] = {
      {"search", "--data", dir, NULL},
      {"search", "--data", dir, "--regex", "a.c", "--since", "2024-01-01", NULL},
      {"audit", "--data", dir, "--key", "exec", NULL},
      {"stats", "--data", dir, NULL},
      {"stats", "--data", dir, "--by", "namespace", NULL},
      {"verify", "--data", dir, NULL},
      {"export", "--data", dir, "--out", out_dir, NULL},
  };
  for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
    fx_result r = fx_runv(NULL, cmds[i]);
    if (r.rc != 2 || !strstr(r.err, want) || fx_lines(r.err) != 1 || r.out_len != 0)
      fail_msg("cairn-query %s on %s: rc %d, stdout %zu bytes, stderr: %s(want "
               "one line with '%s')",
               cmds[i][0], dir, r.rc, r.out_len, r.err, want);
    assert_non_null(strstr(r.err, dir));
    fx_result_free(&r);
  }
  struct stat st;
  assert_int_not_equal(stat(out_dir, &st), 0); /* export wrote no bundle */
}

static void missing_and_empty_dirs(void **state) {
  world *w = *state;
  assert_refused(w, sub(w, "nowhere"), "no cairn store in");
  assert_int_equal(mkdir(sub(w, "empty"), 0700), 0);
  assert_refused(w, w->path, "no cairn store in");
  /* --data naming a file, not a dir (verify names the missing key first) */
  write_file(sub(w, "afile"), "x", 1);
  fx_result r = FX_RUN(NULL, "search", "--data", w->path);
  assert_int_equal(r.rc, 2);
  assert_int_equal(fx_lines(r.err), 1);
  assert_non_null(strstr(r.err, "no cairn store in"));
  fx_result_free(&r);
}

static void data_mdb_empty_or_garbage(void **state) {
  world *w = *state;
  char p[256];
  assert_int_equal(mkdir(sub(w, "zero"), 0700), 0);
  snprintf(p, sizeof(p), "%s/data.mdb", w->path);
  write_file(p, "", 0);
  assert_refused(w, w->path, "data.mdb is empty: not a cairn store");

  assert_int_equal(mkdir(sub(w, "garbage"), 0700), 0);
  static uint8_t junk[3 * 4096];
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < sizeof(junk); i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    junk[i] = (uint8_t)s;
  }
  snprintf(p, sizeof(p), "%s/data.mdb", w->path);
  write_file(p, junk, sizeof(junk));
  assert_refused(w, w->path, "is not an LMDB file: not a cairn store, or damaged");

  assert_int_equal(mkdir(sub(w, "text"), 0700), 0);
  snprintf(p, sizeof(p), "%s/data.mdb", w->path);
  write_file(p, "hello\n", 6);
  assert_refused(w, w->path, "not a cairn store");
}

static void truncated_store(void **state) {
  world *w = *state;
  /* the two meta pages survive, the pages they point at do not */
  copy_store(w, sub(w, "cut"), 2 * 4096 + 100);
  assert_refused(w, w->path, "is truncated");
  copy_store(w, sub(w, "cut2"), 5 * 4096);
  assert_refused(w, w->path, "is truncated");
}

static void lmdb_but_not_cairn(void **state) {
  world *w = *state;
  MDB_env *e;
  MDB_txn *t;
  MDB_dbi dbi;
  assert_int_equal(mkdir(sub(w, "other"), 0700), 0);
  assert_int_equal(mdb_env_create(&e), 0);
  assert_int_equal(mdb_env_open(e, w->path, MDB_NOSYNC, 0600), 0);
  assert_int_equal(mdb_txn_begin(e, NULL, 0, &t), 0);
  assert_int_equal(mdb_dbi_open(t, NULL, 0, &dbi), 0);
  MDB_val k = {3, (void *)"key"}, d = {5, (void *)"value"};
  assert_int_equal(mdb_put(t, dbi, &k, &d, 0), 0);
  assert_int_equal(mdb_txn_commit(t), 0);
  mdb_env_close(e);
  assert_refused(w, w->path, "no cairn store in");
}

static void newer_or_damaged_version(void **state) {
  world *w = *state;
  copy_store(w, sub(w, "v3"), SIZE_MAX);
  set_version(w->path, (const uint8_t[]){0, 0, 0, 3}, 4);
  assert_refused(w, w->path, "holds store version 3, this binary knows up to 2: upgrade cairn");
  copy_store(w, sub(w, "badver"), SIZE_MAX);
  set_version(w->path, (const uint8_t[]){0, 0, 0, 0, 0, 0, 0, 2}, 8);
  assert_refused(w, w->path, "is 8 bytes, not 4: not a cairn store, or damaged");

  /* the intact store beside them answers */
  fx_result r = FX_RUN(NULL, "stats", "--data", w->fx.data);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "records"));
  fx_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(missing_and_empty_dirs),   cmocka_unit_test(data_mdb_empty_or_garbage),
      cmocka_unit_test(truncated_store),          cmocka_unit_test(lmdb_but_not_cairn),
      cmocka_unit_test(newer_or_damaged_version),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
