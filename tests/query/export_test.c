/* tests/query/export_test.c: `cairn-query export` and `verify-export` against
 * a real store built through storage's write API (the query fixture: 6 txns
 * of 60 records, links 1..6) with checkpoints of links 3 and 6 signed by a
 * real Ed25519 key, plus one txn of hostile records signed at link 7.
 * An export verifies offline; then each kind of tampering with the bundle
 * (records.jsonl, records.bin, a leaf, a link, the counts, the checkpoint
 * signature, a wrong key) must fail with exit 3 and name what failed; a
 * tampered store, unsigned records and bad usage are refused by export.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include "tests/query/fixture.h"

typedef struct efx {
  fx_store st;
  char pub[160];      /* the auditor's copy of the public key */
  char otherpub[160]; /* an unrelated key */
  char bundle[160];   /* dir/bundle: export --out */
  EVP_PKEY *key;
} efx;

static void write_pub(EVP_PKEY *k, const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_PUBKEY(f, k), 1);
  assert_int_equal(fclose(f), 0);
}

static const char *const hostile_msgs[] = {
    "<script>alert('xss')</script>",
    "\"><img src=x onerror=alert(1)> & <b>bold</b>",
};

/* One txn of records whose strings try to break out of HTML. */
static void put_hostile(sto_env *env, bool sign, EVP_PKEY *k) {
  Cairn__Record recs[2], *ptrs[2];
  for (int i = 0; i < 2; i++) {
    Cairn__Record init = CAIRN__RECORD__INIT;
    recs[i] = init;
    recs[i].time_ns = FX_T0 + 3 * 3600LL * 1000000000LL + i;
    recs[i].source = CAIRN__SOURCE__SOURCE_CONTAINER;
    recs[i].kube_namespace = (char *)"<i>evil-ns</i>";
    recs[i].pod = (char *)"pod\"><script>";
    recs[i].node = (char *)"node-a";
    recs[i].message.data = (uint8_t *)hostile_msgs[i];
    recs[i].message.len = strlen(hostile_msgs[i]);
    ptrs[i] = &recs[i];
  }
  sto_ingest_meta meta = {.instance_id = "hostile", .identity = "CN=x", .ingest_ns = FX_NOW};
  sto_wtxn *t;
  uint32_t st = 0, du = 0;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_put_records(t, &meta, ptrs, 2, &st, &du), CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
  if (sign) fx_sign_head(env, k);
}

static sto_env *open_rw(const efx *f) {
  sto_options so = {.no_sync = true};
  sto_env *env = NULL;
  char why[256];
  assert_int_equal(sto_open(f->st.data, &so, &env, why, sizeof(why)), CAIRN_OK);
  return env;
}

static int setup(void **state) {
  efx *f = calloc(1, sizeof(*f));
  assert_int_equal(fx_build(&f->st), 0);
  snprintf(f->pub, sizeof(f->pub), "%s/auditor.pub", f->st.dir);
  snprintf(f->otherpub, sizeof(f->otherpub), "%s/other.pub", f->st.dir);
  snprintf(f->bundle, sizeof(f->bundle), "%s/bundle", f->st.dir);
  f->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  assert_non_null(f->key);
  write_pub(f->key, f->pub);
  write_pub(other, f->otherpub);
  EVP_PKEY_free(other);
  /* fx_build wrote links 1..6; sign link 6, then insert a checkpoint of link 3
   * by hand: rebuild it from the link */
  sto_env *env = open_rw(f);
  sto_link l3;
  assert_int_equal(sto_link_get(env, 3, &l3), CAIRN_OK);
  sto_checkpoint cp = {.position = 3, .last_seq = l3.last_seq, .time_ns = FX_NOW - 1000};
  memcpy(cp.head, l3.hash, 32);
  size_t pl = 32, slen = 64;
  assert_int_equal(EVP_PKEY_get_raw_public_key(f->key, cp.pubkey, &pl), 1);
  uint8_t msg[STO_CHECKPOINT_MSG_LEN];
  size_t mlen = sto_checkpoint_message(&cp, msg);
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestSignInit(c, NULL, NULL, NULL, f->key), 1);
  assert_int_equal(EVP_DigestSign(c, cp.sig, &slen, msg, mlen), 1);
  EVP_MD_CTX_free(c);
  sto_wtxn *t;
  assert_int_equal(sto_wtxn_begin(env, &t), CAIRN_OK);
  assert_int_equal(sto_wtxn_checkpoint_put(t, &cp), CAIRN_OK);
  assert_int_equal(sto_wtxn_commit(t), CAIRN_OK);
  fx_sign_head(env, f->key);
  put_hostile(env, true, f->key);
  sto_close(env);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  efx *f = *state;
  fx_destroy(&f->st);
  EVP_PKEY_free(f->key);
  free(f);
  return 0;
}

/* ---- helpers ---- */

static char *slurp(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  char *buf = NULL;
  size_t cap = 0, len = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 65536;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    size_t got = fread(buf + len, 1, cap - len - 1, fp);
    len += got;
    if (!got) break;
  }
  fclose(fp);
  buf[len] = 0;
  if (n) *n = len;
  return buf;
}

static void spit(const char *path, const char *p, size_t n) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(p, 1, n, fp), n);
  assert_int_equal(fclose(fp), 0);
}

static void bpath(const efx *f, const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", f->bundle, name);
}

static fx_result export_ns(const efx *f, const char *ns) {
  return FX_RUN(NULL, "export", "--data", f->st.data, "--out", f->bundle, "--namespace", ns,
                "--public-key", f->pub);
}

static fx_result verify_bundle(const efx *f, const char *pub) {
  return FX_RUN(NULL, "verify-export", f->bundle, "--public-key", pub);
}

static json_t *manifest_load(const efx *f) {
  char p[256];
  bpath(f, "manifest.json", p, sizeof(p));
  json_error_t je;
  json_t *m = json_load_file(p, 0, &je);
  assert_non_null(m);
  return m;
}

static void sha256_hex(const char *p, size_t n, char *hex) {
  uint8_t d[32];
  unsigned int dl = 0;
  assert_int_equal(EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL), 1);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* Save m, first making its file hashes match the files (what a careful
 * forger does after editing a file). */
static void manifest_save(const efx *f, json_t *m, bool fix_hashes) {
  if (fix_hashes) {
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(m, "files"), name, v) {
      char p[256], hex[65];
      size_t n = 0;
      bpath(f, name, p, sizeof(p));
      char *data = slurp(p, &n);
      assert_non_null(data);
      sha256_hex(data, n, hex);
      json_object_set_new(v, "sha256", json_string(hex));
      json_object_set_new(v, "bytes", json_integer((json_int_t)n));
      free(data);
    }
  }
  char p[256];
  bpath(f, "manifest.json", p, sizeof(p));
  assert_int_equal(json_dump_file(m, p, JSON_INDENT(1)), 0);
  json_decref(m);
}

/* Replace the first occurrence of from by to (same length) in bundle file name. */
static void edit_file(const efx *f, const char *name, const char *from, const char *to) {
  char p[256];
  size_t n = 0;
  bpath(f, name, p, sizeof(p));
  char *d = slurp(p, &n);
  assert_non_null(d);
  char *at = memmem(d, n, from, strlen(from));
  assert_non_null(at);
  assert_int_equal(strlen(from), strlen(to));
  memcpy(at, to, strlen(to));
  spit(p, d, n);
  free(d);
}

static void assert_fails(const efx *f, const char *pub, const char *code, const char *what) {
  fx_result r = verify_bundle(f, pub);
  if (r.rc != QRY_EXIT_VERIFY_FAILED || !strstr(r.err, code) || !strstr(r.err, what))
    fail_msg("want exit 3 with %s / %s, got %d\nout: %s\nerr: %s", code, what, r.rc, r.out,
             r.err);
  assert_non_null(strstr(r.out, "verify-export: FAILED"));
  fx_result_free(&r);
}

static void exported_ok(const efx *f, const char *ns) {
  fx_result r = export_ns(f, ns);
  if (r.rc != 0) fail_msg("export rc %d: %s", r.rc, r.err);
  assert_non_null(strstr(r.out, "(verified)"));
  fx_result_free(&r);
}

/* ---- tests ---- */

static void export_writes_a_bundle_that_verifies_offline(void **state) {
  efx *f = *state;
  fx_filter q = fx_any();
  q.ns = "prod";
  size_t want = fx_count(&f->st, &q);
  exported_ok(f, "prod");
  char p[256];
  bpath(f, "records.jsonl", p, sizeof(p));
  char *jl = slurp(p, NULL);
  assert_non_null(jl);
  assert_int_equal(fx_lines(jl), want);
  /* seq order, every line a prod record */
  long long prev = 0;
  for (char *line = jl; *line;) {
    char *nl = strchr(line, '\n');
    *nl = 0;
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "namespace")), "prod");
    long long seq = json_integer_value(json_object_get(j, "seq"));
    assert_true(seq > prev);
    prev = seq;
    json_decref(j);
    line = nl + 1;
  }
  free(jl);
  json_t *m = manifest_load(f);
  assert_string_equal(json_string_value(json_object_get(m, "format")), "cairn-evidence-bundle-v1");
  json_t *c = json_object_get(m, "counts");
  assert_int_equal(json_integer_value(json_object_get(c, "records")), want);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "by_namespace"), "prod")),
                   want);
  json_t *by = json_object_get(m, "exported_by");
  assert_int_equal(json_integer_value(json_object_get(by, "uid")), getuid());
  assert_true(strlen(json_string_value(json_object_get(by, "host"))) > 0);
  json_t *given = json_object_get(json_object_get(m, "query"), "given");
  assert_string_equal(json_string_value(json_array_get(given, 1)), "export");
  json_t *parsed = json_object_get(json_object_get(m, "query"), "parsed");
  json_t *nsf = json_object_get(json_object_get(parsed, "fields"), "namespace");
  assert_string_equal(json_string_value(json_array_get(json_object_get(nsf, "given"), 0)), "prod");
  assert_string_equal(json_string_value(json_object_get(json_object_get(m, "verification"),
                                                        "status")),
                      "ok");
  /* prod records lie in every link: checkpoints 3 and 6 end two segments */
  json_t *segs = json_object_get(json_object_get(m, "proof"), "segments");
  assert_int_equal(json_array_size(segs), 2);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(json_array_get(segs, 0), "checkpoint"), "position")),
                   3);
  json_t *files = json_object_get(m, "files");
  assert_non_null(json_object_get(files, "records.jsonl"));
  assert_non_null(json_object_get(files, "records.bin"));
  assert_non_null(json_object_get(files, "report.html"));
  json_decref(m);
  /* other namespaces' records are in the covering links, but only as leaves */
  const char *const names[] = {"records.jsonl", "records.bin", "manifest.json", "report.html"};
  for (size_t i = 0; i < 4; i++) {
    size_t n = 0;
    bpath(f, names[i], p, sizeof(p));
    char *d = slurp(p, &n);
    assert_non_null(d);
    assert_null(memmem(d, n, "staging", 7));
    free(d);
  }
  struct stat sb;
  bpath(f, "records.bin", p, sizeof(p));
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);

  fx_result r = verify_bundle(f, f->pub);
  if (r.rc != 0) fail_msg("verify-export rc %d: %s%s", r.rc, r.out, r.err);
  assert_non_null(strstr(r.out, "verify-export: OK"));
  char line[96];
  snprintf(line, sizeof(line), "records:      %zu,", want);
  assert_non_null(strstr(r.out, line));
  assert_non_null(strstr(r.out, "checkpoint:   position 6"));
  fx_result_free(&r);
  r = FX_RUN(NULL, "verify-export", f->bundle, "--public-key", f->pub, "--output", "json");
  assert_int_equal(r.rc, 0);
  json_t *j = json_loads(r.out, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
  json_decref(j);
  fx_result_free(&r);
}

static void edited_jsonl_fails_its_file_hash(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  edit_file(f, "records.jsonl", "GET /api", "PUT /api");
  assert_fails(f, f->pub, "FILE_HASH", "records.jsonl");
}

static void edited_jsonl_with_fixed_manifest_fails_against_the_committed_bytes(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  edit_file(f, "records.jsonl", "GET /api", "PUT /api");
  manifest_save(f, manifest_load(f), true);
  assert_fails(f, f->pub, "RECORD_JSON", "records.jsonl line 1");
}

static void edited_record_bytes_fail_their_leaf(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  /* the same edit in both record files keeps them consistent with each other */
  edit_file(f, "records.bin", "GET /api", "PUT /api");
  edit_file(f, "records.jsonl", "GET /api", "PUT /api");
  manifest_save(f, manifest_load(f), true);
  assert_fails(f, f->pub, "LEAF", "hash to a different leaf");
}

static void edited_record_with_its_leaf_fails_the_link(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  edit_file(f, "records.bin", "GET /api", "PUT /api");
  edit_file(f, "records.jsonl", "GET /api", "PUT /api");
  /* the forger also writes the new leaf into proof.records */
  char p[256];
  size_t n = 0;
  bpath(f, "records.bin", p, sizeof(p));
  char *bin = slurp(p, &n);
  uint64_t seq = 0, len = 0;
  for (int i = 0; i < 8; i++) seq = seq << 8 | (uint8_t)bin[i];
  for (int i = 0; i < 8; i++) len = len << 8 | (uint8_t)bin[8 + i];
  char hex[65];
  sha256_hex(bin, 16 + len, hex);
  free(bin);
  json_t *m = manifest_load(f);
  json_t *rec0 = json_array_get(json_object_get(json_object_get(m, "proof"), "records"), 0);
  assert_int_equal(json_integer_value(json_object_get(rec0, "seq")), seq);
  json_object_set_new(rec0, "leaf", json_string(hex));
  manifest_save(f, m, true);
  assert_fails(f, f->pub, "LEAF", "not what link");
}

/* Change one leaf of a record that was not exported: the link no longer recomputes. */
static void altered_digest_of_another_record_fails_the_link(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  json_t *m = manifest_load(f);
  json_t *seg = json_array_get(json_object_get(json_object_get(m, "proof"), "segments"), 0);
  json_t *l = json_array_get(json_object_get(seg, "links"), 0);
  /* all 60 leaves of link 1, concatenated hex */
  const char *leaves = json_string_value(json_object_get(l, "leaves"));
  assert_non_null(leaves);
  assert_int_equal(strlen(leaves), 60 * 64);
  /* find a leaf that is not one of the exported records */
  json_t *recs = json_object_get(json_object_get(m, "proof"), "records");
  size_t pick = (size_t)-1;
  for (size_t i = 0; i < 60 && pick == (size_t)-1; i++) {
    bool exported = false;
    for (size_t k = 0; k < json_array_size(recs); k++)
      if (!strncmp(json_string_value(json_object_get(json_array_get(recs, k), "leaf")),
                   leaves + 64 * i, 64))
        exported = true;
    if (!exported) pick = i;
  }
  assert_true(pick != (size_t)-1);
  char *edited = strdup(leaves);
  edited[64 * pick] = edited[64 * pick] == 'a' ? 'b' : 'a';
  json_object_set_new(l, "leaves", json_string(edited));
  free(edited);
  manifest_save(f, m, false);
  assert_fails(f, f->pub, "LINK", "link 1 (seq 1..60) recomputes");
}

static void altered_link_commit_time_fails_the_link(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  json_t *m = manifest_load(f);
  json_t *seg = json_array_get(json_object_get(json_object_get(m, "proof"), "segments"), 1);
  json_t *l = json_array_get(json_object_get(seg, "links"), 1);
  json_object_set_new(l, "commit_ns",
                      json_integer(json_integer_value(json_object_get(l, "commit_ns")) + 1));
  manifest_save(f, m, false);
  assert_fails(f, f->pub, "LINK", "link 5 (seq 241..300) recomputes");
}

static void altered_checkpoint_signature_fails(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  json_t *m = manifest_load(f);
  json_t *seg = json_array_get(json_object_get(json_object_get(m, "proof"), "segments"), 0);
  json_t *cp = json_object_get(seg, "checkpoint");
  char sig[129];
  snprintf(sig, sizeof(sig), "%s", json_string_value(json_object_get(cp, "signature")));
  sig[10] = sig[10] == '0' ? '1' : '0';
  json_object_set_new(cp, "signature", json_string(sig));
  manifest_save(f, m, false);
  assert_fails(f, f->pub, "SIGNATURE", "checkpoint at position 3: the Ed25519 signature does not "
                                       "verify");
}

static void rewritten_checkpoint_head_fails(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  json_t *m = manifest_load(f);
  json_t *seg = json_array_get(json_object_get(json_object_get(m, "proof"), "segments"), 1);
  json_t *cp = json_object_get(seg, "checkpoint");
  json_object_set_new(cp, "last_seq", json_integer(359));
  manifest_save(f, m, false);
  assert_fails(f, f->pub, "CHECKPOINT", "did not sign");
}

static void wrong_public_key_fails(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  assert_fails(f, f->otherpub, "SIGNATURE", "not signed by the given public key");
}

static void altered_counts_fail(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  json_t *m = manifest_load(f);
  json_t *bn = json_object_get(json_object_get(m, "counts"), "by_node");
  json_object_set_new(bn, "node-c", json_integer(1));
  manifest_save(f, m, false);
  assert_fails(f, f->pub, "COUNTS", "by_node");
}

static void removed_record_fails(void **state) {
  efx *f = *state;
  exported_ok(f, "prod");
  char p[256];
  size_t n = 0;
  bpath(f, "records.jsonl", p, sizeof(p));
  char *d = slurp(p, &n);
  char *nl = strchr(d, '\n');
  spit(p, nl + 1, n - (size_t)(nl + 1 - d)); /* drop line 1 */
  free(d);
  manifest_save(f, manifest_load(f), true);
  assert_fails(f, f->pub, "RECORD_JSON", "line 1");
}

static void report_escapes_hostile_records(void **state) {
  efx *f = *state;
  fx_result r = FX_RUN(NULL, "export", "--data", f->st.data, "--out", f->bundle, "--node",
                       "node-a", "--since", "2024-01-15T02:00:00Z", "--public-key", f->pub);
  if (r.rc != 0) fail_msg("export rc %d: %s", r.rc, r.err);
  fx_result_free(&r);
  char p[256];
  bpath(f, "report.html", p, sizeof(p));
  char *h = slurp(p, NULL);
  assert_non_null(h);
  assert_null(strstr(h, "<script"));
  assert_null(strstr(h, "<img"));
  assert_null(strstr(h, "<i>evil"));
  assert_null(strstr(h, "<b>bold"));
  assert_non_null(strstr(h, "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;"));
  assert_non_null(strstr(h, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;"));
  assert_non_null(strstr(h, "&lt;i&gt;evil-ns&lt;/i&gt;"));
  assert_non_null(strstr(h, "id=\"verification-status\">VERIFIED<"));
  assert_non_null(strstr(h, "Content-Security-Policy"));
  assert_non_null(strstr(h, "<svg id=\"histogram-svg\""));
  /* self-contained: nothing to load (the SVG namespace is a name, not a fetch) */
  assert_null(strstr(h, "<link"));
  assert_null(strstr(h, " href="));
  assert_null(strstr(h, " src=\""));
  assert_null(strstr(h, "url("));
  free(h);
  r = verify_bundle(f, f->pub);
  assert_int_equal(r.rc, 0);
  fx_result_free(&r);
}

static void hostile_record_bytes_are_shown_escaped(void **state) {
  efx *f = *state;
  /* FX_HOSTILE: ESC and invalid UTF-8 in a message */
  fx_result r = FX_RUN(NULL, "export", "--data", f->st.data, "--out", f->bundle, "--grep",
                       "byte", "--public-key", f->pub);
  assert_int_equal(r.rc, 0);
  fx_result_free(&r);
  char p[256];
  bpath(f, "report.html", p, sizeof(p));
  char *h = slurp(p, NULL);
  assert_null(strchr(h, 0x1b));
  assert_non_null(strstr(h, "bad \\xFF\\xFE byte \\x1B[31m red\\\\x"));
  free(h);
}

static void nothing_matched_writes_an_empty_bundle_and_exits_1(void **state) {
  efx *f = *state;
  fx_result r = export_ns(f, "no-such-namespace");
  assert_int_equal(r.rc, QRY_EXIT_NO_MATCH);
  fx_result_free(&r);
  r = verify_bundle(f, f->pub);
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "records:      0,"));
  fx_result_free(&r);
}

static void records_after_the_last_checkpoint_are_refused(void **state) {
  efx *f = *state;
  sto_env *env = open_rw(f);
  put_hostile(env, false, NULL);
  sto_close(env);
  fx_result r = FX_RUN(NULL, "export", "--data", f->st.data, "--out", f->bundle, "--grep",
                       "xss", "--public-key", f->pub);
  assert_int_equal(r.rc, QRY_EXIT_USAGE);
  assert_non_null(strstr(r.err, "1 matching records (up to seq 363) are newer than the last "
                                "signed checkpoint (position 7, seq 362)"));
  fx_result_free(&r);
  struct stat sb;
  assert_int_equal(stat(f->bundle, &sb), -1); /* a failed export leaves nothing behind */
  /* the same query ending before them works */
  r = FX_RUN(NULL, "export", "--data", f->st.data, "--out", f->bundle, "--grep", "xss",
             "--public-key", f->pub, "--limit", "1", "--oldest-first");
  assert_int_equal(r.rc, 0);
  fx_result_free(&r);
}

static void tampered_store_is_not_exported(void **state) {
  efx *f = *state;
  MDB_env *e;
  MDB_txn *t;
  MDB_dbi recs;
  assert_int_equal(mdb_env_create(&e), 0);
  mdb_env_set_maxdbs(e, 16);
  assert_int_equal(mdb_env_open(e, f->st.data, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(e, NULL, 0, &t), 0);
  assert_int_equal(mdb_dbi_open(t, "records", 0, &recs), 0);
  uint8_t kb[8] = {0, 0, 0, 0, 0, 0, 0, 70};
  MDB_val k = {8, kb}, v;
  assert_int_equal(mdb_get(t, recs, &k, &v), 0);
  uint8_t buf[1024];
  memcpy(buf, v.mv_data, v.mv_size);
  uint8_t *at = memmem(buf, v.mv_size, "/api/items/", 11);
  assert_non_null(at);
  at[1] = 'A';
  MDB_val nv = {v.mv_size, buf};
  assert_int_equal(mdb_put(t, recs, &k, &nv, 0), 0);
  assert_int_equal(mdb_txn_commit(t), 0);
  mdb_env_close(e);
  fx_result r = FX_RUN(NULL, "export", "--data", f->st.data, "--out", f->bundle, "--public-key",
                       f->pub);
  assert_int_equal(r.rc, QRY_EXIT_VERIFY_FAILED);
  assert_non_null(strstr(r.err, "TAMPERED: link 2 does not recompute from its records"));
  fx_result_free(&r);
  struct stat sb;
  assert_int_equal(stat(f->bundle, &sb), -1);
}

static void usage_errors_exit_2(void **state) {
  efx *f = *state;
  fx_result r = FX_RUN(NULL, "export", "--data", f->st.data);
  assert_int_equal(r.rc, QRY_EXIT_USAGE);
  assert_non_null(strstr(r.err, "--out DIR is required"));
  fx_result_free(&r);
  r = FX_RUN(NULL, "verify-export", f->bundle);
  assert_int_equal(r.rc, QRY_EXIT_USAGE);
  assert_non_null(strstr(r.err, "--public-key FILE is required"));
  fx_result_free(&r);
  r = FX_RUN(NULL, "verify-export", "--public-key", f->pub);
  assert_int_equal(r.rc, QRY_EXIT_USAGE);
  assert_non_null(strstr(r.err, "no bundle given"));
  fx_result_free(&r);
  r = verify_bundle(f, f->pub); /* not exported yet */
  assert_int_equal(r.rc, QRY_EXIT_USAGE);
  assert_non_null(strstr(r.err, "not a directory"));
  fx_result_free(&r);
  exported_ok(f, "dev");
  r = export_ns(f, "dev"); /* never overwrite a bundle */
  assert_int_equal(r.rc, QRY_EXIT_USAGE);
  assert_non_null(strstr(r.err, "is not empty"));
  fx_result_free(&r);
  r = verify_bundle(f, f->bundle); /* a directory is not a key */
  assert_int_equal(r.rc, QRY_EXIT_USAGE);
  fx_result_free(&r);
  r = FX_RUN(NULL, "export", "--help");
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "cairn-query export --data DIR --out BUNDLE_DIR"));
  fx_result_free(&r);
  /* a garbage manifest is a failed verification, not a crash */
  char p[256];
  bpath(f, "manifest.json", p, sizeof(p));
  spit(p, "{\"format\":", 10);
  assert_fails(f, f->pub, "MANIFEST", "not readable JSON");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(export_writes_a_bundle_that_verifies_offline),
      T(edited_jsonl_fails_its_file_hash),
      T(edited_jsonl_with_fixed_manifest_fails_against_the_committed_bytes),
      T(edited_record_bytes_fail_their_leaf),
      T(edited_record_with_its_leaf_fails_the_link),
      T(altered_digest_of_another_record_fails_the_link),
      T(altered_link_commit_time_fails_the_link),
      T(altered_checkpoint_signature_fails),
      T(rewritten_checkpoint_head_fails),
      T(wrong_public_key_fails),
      T(altered_counts_fail),
      T(removed_record_fails),
      T(report_escapes_hostile_records),
      T(hostile_record_bytes_are_shown_escaped),
      T(nothing_matched_writes_an_empty_bundle_and_exits_1),
      T(records_after_the_last_checkpoint_are_refused),
      T(tampered_store_is_not_exported),
      T(usage_errors_exit_2),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
