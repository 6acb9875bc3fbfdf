/* query/export_verify.c: `cairn-query verify-export BUNDLE --public-key FILE`
 * and the bundle check export.c also runs on the bundle it just wrote.
 *
 * The check needs nothing but the bundle and the key: records.bin holds each
 * exported record's bytes exactly as the chain hashed them, the manifest's
 * proof holds the leaves of every record of the covering links and the
 * digests of the links after them up to a signed checkpoint. Only what is
 * recomputed from records.bin up to a verified signature is trusted; the
 * manifest is input like any other (it is not signed), so every value taken
 * from it is checked against a recomputation before it counts.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/arena.h"
#include "common/timeparse.h"
#include "query/internal.h"

/* ---- shared helpers ---- */

void qry__hex(const uint8_t *p, size_t n, char *out) {
  static const char x[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = x[p[i] >> 4];
    out[2 * i + 1] = x[p[i] & 15];
  }
  out[2 * n] = 0;
}

static int unhex1(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1; /* upper case is not canonical: refuse it like any other byte */
}

/* The hl (even) lower-case hex digits at s into out (hl / 2 bytes). */
static bool unhex_n(const char *s, size_t hl, uint8_t *out) {
  for (size_t i = 0; i < hl / 2; i++) {
    int hi = unhex1(s[2 * i]), lo = unhex1(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return hl % 2 == 0;
}

/* Exactly 2n lower-case hex digits in s into out. */
static bool unhex(const char *s, uint8_t *out, size_t n) {
  if (!s || strlen(s) != 2 * n) return false;
  for (size_t i = 0; i < n; i++) {
    int hi = unhex1(s[2 * i]), lo = unhex1(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

static uint64_t be64_get(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

bool qry__bin_next(const uint8_t *b, size_t len, size_t *off, uint64_t *seq, const uint8_t **p,
                   size_t *n, bool *bad) {
  *bad = false;
  if (*off == len) return false;
  if (len - *off < 16) {
    *bad = true;
    return false;
  }
  uint64_t s = be64_get(b + *off), l = be64_get(b + *off + 8);
  if (l > len - *off - 16) {
    *bad = true;
    return false;
  }
  *seq = s;
  *p = b + *off + 16;
  *n = (size_t)l;
  *off += 16 + (size_t)l;
  return true;
}

static void fingerprint(const uint8_t *raw, char *out) {
  uint8_t d[32];
  unsigned int n = 0;
  if (EVP_Digest(raw, STO_PUBKEY_LEN, d, &n, EVP_sha256(), NULL) != 1) memset(d, 0, sizeof(d));
  qry__hex(d, 8, out);
}

bool qry__pubkey_read(const char *path, uint8_t *raw, char *fp, char *why, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(why, cap, "%s: cannot open: %s", path, strerror(errno));
    return false;
  }
  EVP_PKEY *pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
  fclose(f);
  size_t len = STO_PUBKEY_LEN;
  bool ok = pk && EVP_PKEY_is_a(pk, "ED25519") &&
            EVP_PKEY_get_raw_public_key(pk, raw, &len) == 1 && len == STO_PUBKEY_LEN;
  EVP_PKEY_free(pk);
  ERR_clear_error();
  if (!ok) {
    snprintf(why, cap,
             "%s: not a PEM Ed25519 public key (use the signing.pub the aggregator wrote, or: "
             "openssl pkey -in signing.key -pubout)",
             path);
    return false;
  }
  fingerprint(raw, fp);
  return true;
}

/* Whole file into b. CAIRN_E_NOTFOUND, CAIRN_E_IO (errno), CAIRN_E_NOMEM. */
static cairn_err file_read(const char *path, cairn_buf *b) {
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? CAIRN_E_NOTFOUND : CAIRN_E_IO;
  cairn_err e = CAIRN_OK;
  for (;;) {
    if ((e = cairn_buf_reserve(b, 1u << 16)) != CAIRN_OK) break;
    size_t got = fread(b->ptr + b->len, 1, b->cap - b->len, f);
    b->len += got;
    if (got == 0) {
      if (ferror(f)) e = CAIRN_E_IO;
      break;
    }
  }
  fclose(f);
  return e;
}

/* ---- the check ---- */

typedef struct chk {
  qry_check *out;
  const json_t *m;
  const char *dir;
  cairn_buf bin;     /* records.bin */
  cairn_buf jsonl;   /* records.jsonl */
  EVP_PKEY *pkey;    /* owned; NULL = no signature checks */
  const uint8_t *pubkey;
} chk;

static bool failf(chk *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the first failure; always returns false so callers can `return failf(...)`. */
static bool failf(chk *c, const char *code, const char *fmt, ...) {
  if (!c->out->ok && c->out->code[0]) return false;
  c->out->ok = false;
  snprintf(c->out->code, sizeof(c->out->code), "%s", code);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->out->detail, sizeof(c->out->detail), fmt, ap);
  va_end(ap);
  return false;
}

/* Non-negative integer member k of o into *v. */
static bool get_u64(const json_t *o, const char *k, uint64_t *v) {
  json_t *j = json_object_get(o, k);
  if (!json_is_integer(j) || json_integer_value(j) < 0) return false;
  *v = (uint64_t)json_integer_value(j);
  return true;
}

static bool get_hash(const json_t *o, const char *k, uint8_t *out) {
  return unhex(json_string_value(json_object_get(o, k)), out, STO_HASH_LEN);
}

static bool file_sha256(const char *path, uint8_t *out, uint64_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
  uint8_t buf[1 << 16];
  *size = 0;
  size_t got;
  while (ok && (got = fread(buf, 1, sizeof(buf), f)) > 0) {
    ok = EVP_DigestUpdate(md, buf, got) == 1;
    *size += got;
  }
  unsigned int n = 0;
  ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, out, &n) == 1;
  EVP_MD_CTX_free(md);
  fclose(f);
  return ok;
}

/* A bundle file name: one plain path component, never "..". */
static bool plain_name(const char *n) {
  return n && *n && !strchr(n, '/') && strcmp(n, ".") != 0 && strcmp(n, "..") != 0;
}

static bool check_files(chk *c) {
  json_t *files = json_object_get(c->m, "files");
  if (!json_is_object(files))
    return failf(c, "MANIFEST", "manifest.json has no \"files\" object: not a complete bundle");
  static const char *const need[] = {QRY_BUNDLE_RECORDS, QRY_BUNDLE_BIN, QRY_BUNDLE_REPORT};
  for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
    if (!json_object_get(files, need[i]))
      return failf(c, "MANIFEST", "manifest.json does not list %s", need[i]);
  const char *name;
  json_t *v;
  json_object_foreach(files, name, v) {
    if (!plain_name(name))
      return failf(c, "MANIFEST", "manifest.json lists a file outside the bundle: \"%.200s\"",
                   name);
    uint8_t want[STO_HASH_LEN], got[STO_HASH_LEN];
    uint64_t size = 0, want_size = 0;
    if (!get_hash(v, "sha256", want) || !get_u64(v, "bytes", &want_size))
      return failf(c, "MANIFEST", "manifest.json: files.%s needs sha256 (64 hex) and bytes",
                   name);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", c->dir, name);
    if (!file_sha256(path, got, &size))
      return failf(c, "FILE_HASH", "%s: cannot read: %s (the bundle is incomplete)", name,
                   strerror(errno));
    if (CRYPTO_memcmp(want, got, STO_HASH_LEN) != 0 || size != want_size) {
      char gh[65], wh[65];
      qry__hex(got, STO_HASH_LEN, gh);
      qry__hex(want, STO_HASH_LEN, wh);
      return failf(c, "FILE_HASH",
                   "%s: SHA-256 %s (%llu bytes) but the manifest says %s (%llu bytes): the file "
                   "was changed after export",
                   name, gh, (unsigned long long)size, wh, (unsigned long long)want_size);
    }
  }
  return true;
}

/* One exported record, as records.bin and the proof describe it. */
typedef struct rec_ref {
  uint64_t seq;
  uint64_t position;         /* covering link (from the proof) */
  uint8_t leaf[STO_HASH_LEN]; /* recomputed from records.bin */
  bool proven;               /* its link verified up to a signed checkpoint */
} rec_ref;

/* Counts as the manifest states them: by field, value -> number. */
typedef struct counts {
  json_t *by_source, *by_namespace, *by_node; /* owned */
} counts;

static void count_add(json_t *o, const char *v) {
  json_t *j = json_object_get(o, v);
  json_object_set_new(o, v, json_integer(j ? json_integer_value(j) + 1 : 1));
}

/* records.bin against records.jsonl: each line must be exactly the JSON
 * rendering of the bytes the chain hashed. Fills refs and the counts. */
static bool check_records(chk *c, rec_ref **refs, size_t *nrefs, counts *cn) {
  size_t off = 0, lo = 0, line_no = 0, n = 0, cap = 0;
  uint64_t seq, prev = 0;
  const uint8_t *p;
  size_t len;
  bool bad = false;
  cairn_arena a;
  cairn_arena_init(&a, 16u << 10);
  cairn_buf js;
  cairn_buf_init(&js);
  bool ok = true;
  while (ok && qry__bin_next(c->bin.ptr, c->bin.len, &off, &seq, &p, &len, &bad)) {
    line_no++;
    if (seq <= prev) {
      ok = failf(c, "RECORDS", "records.bin: seq %llu follows seq %llu: entries must ascend",
                 (unsigned long long)seq, (unsigned long long)prev);
      break;
    }
    prev = seq;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 256;
      rec_ref *r = realloc(*refs, nc * sizeof(*r));
      if (!r) {
        ok = failf(c, "RECORDS", "out of memory reading records.bin");
        break;
      }
      *refs = r;
      cap = nc;
    }
    rec_ref *r = &(*refs)[n++];
    memset(r, 0, sizeof(*r));
    r->seq = seq;
    if (sto_leaf_hash(seq, p, len, r->leaf) != CAIRN_OK) {
      ok = failf(c, "RECORDS", "out of memory hashing records.bin");
      break;
    }
    Cairn__Record *rec = NULL;
    cairn_arena_reset(&a);
    cairn_buf_reset(&js);
    if (pb_record_unpack(p, len, &a, &rec) != CAIRN_OK) {
      ok = failf(c, "RECORDS", "records.bin: the entry of seq %llu is not a cairn record",
                 (unsigned long long)seq);
      break;
    }
    if (pb_record_json(rec, &js) != CAIRN_OK) {
      ok = failf(c, "RECORDS", "out of memory rendering seq %llu", (unsigned long long)seq);
      break;
    }
    const char *line = (const char *)c->jsonl.ptr + lo;
    const char *nl = lo < c->jsonl.len ? memchr(line, '\n', c->jsonl.len - lo) : NULL;
    if (!nl) {
      ok = failf(c, "RECORD_JSON",
                 "records.jsonl has %zu lines but records.bin has more records (seq %llu has no "
                 "line)",
                 line_no - 1, (unsigned long long)seq);
      break;
    }
    if ((size_t)(nl - line) != js.len || memcmp(line, js.ptr, js.len) != 0) {
      ok = failf(c, "RECORD_JSON",
                 "records.jsonl line %zu (seq %llu) is not the committed record: it differs from "
                 "the bytes in records.bin that the chain hashed",
                 line_no, (unsigned long long)seq);
      break;
    }
    lo += js.len + 1;
    const char *src = pb_source_name(rec->source);
    count_add(cn->by_source, *src ? src : "unknown");
    count_add(cn->by_namespace, rec->kube_namespace && *rec->kube_namespace ? rec->kube_namespace
                                                                            : "-");
    count_add(cn->by_node, rec->node && *rec->node ? rec->node : "-");
  }
  if (ok && bad)
    ok = failf(c, "RECORDS", "records.bin is truncated after %zu records", n);
  if (ok && lo != c->jsonl.len)
    ok = failf(c, "RECORD_JSON", "records.jsonl has more lines than records.bin has records (%zu)",
               n);
  cairn_buf_fini(&js);
  cairn_arena_fini(&a);
  *nrefs = n;
  return ok;
}

/* proof.records: one entry per record of records.bin, same order. */
static bool check_proof_records(chk *c, const json_t *proof, rec_ref *refs, size_t n) {
  json_t *arr = json_object_get(proof, "records");
  if (!json_is_array(arr))
    return failf(c, "MANIFEST", "manifest.json: proof.records is missing");
  if (json_array_size(arr) != n)
    return failf(c, "MANIFEST", "manifest.json: proof.records lists %zu records, records.bin has %zu",
                 json_array_size(arr), n);
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(arr, i);
    uint64_t seq = 0, pos = 0;
    uint8_t leaf[STO_HASH_LEN];
    if (!get_u64(e, "seq", &seq) || !get_u64(e, "position", &pos) || !get_hash(e, "leaf", leaf))
      return failf(c, "MANIFEST", "manifest.json: proof.records[%zu] needs seq, position, leaf",
                   i);
    if (seq != refs[i].seq)
      return failf(c, "MANIFEST", "manifest.json: proof.records[%zu] is seq %llu, records.bin has "
                   "seq %llu there", i, (unsigned long long)seq, (unsigned long long)refs[i].seq);
    if (CRYPTO_memcmp(leaf, refs[i].leaf, STO_HASH_LEN) != 0)
      return failf(c, "LEAF",
                   "seq %llu: its bytes in records.bin hash to a different leaf than the "
                   "manifest records: the record or its digest was changed",
                   (unsigned long long)seq);
    refs[i].position = pos;
  }
  return true;
}

static int ref_cmp(const void *k, const void *e) {
  uint64_t s = *(const uint64_t *)k, t = ((const rec_ref *)e)->seq;
  return s < t ? -1 : s > t;
}

/* Check the signature of checkpoint j (already matched to the chain). */
static bool check_signature(chk *c, const json_t *j, sto_checkpoint *cp) {
  uint8_t pub[STO_PUBKEY_LEN];
  if (!unhex(json_string_value(json_object_get(j, "signature")), cp->sig, STO_SIG_LEN) ||
      !unhex(json_string_value(json_object_get(j, "pubkey")), pub, STO_PUBKEY_LEN))
    return failf(c, "CHECKPOINT", "checkpoint at position %llu: signature (128 hex) or pubkey "
                 "(64 hex) missing", (unsigned long long)cp->position);
  if (!c->pkey) return true;
  uint8_t msg[STO_CHECKPOINT_MSG_LEN];
  size_t mlen = sto_checkpoint_message(cp, msg);
  EVP_MD_CTX *vc = EVP_MD_CTX_new();
  bool ok = vc && EVP_DigestVerifyInit(vc, NULL, NULL, NULL, c->pkey) == 1 &&
            EVP_DigestVerify(vc, cp->sig, STO_SIG_LEN, msg, mlen) == 1;
  EVP_MD_CTX_free(vc);
  ERR_clear_error();
  if (ok) return true;
  char named[17];
  fingerprint(pub, named);
  if (CRYPTO_memcmp(pub, c->pubkey, STO_PUBKEY_LEN) != 0)
    return failf(c, "SIGNATURE",
                 "checkpoint at position %llu is not signed by the given public key (key %s; the "
                 "checkpoint names key %s): wrong key, or a forged checkpoint",
                 (unsigned long long)cp->position, c->out->key_fp, named);
  return failf(c, "SIGNATURE",
               "checkpoint at position %llu: the Ed25519 signature does not verify with key %s: "
               "the checkpoint or its signature was altered",
               (unsigned long long)cp->position, c->out->key_fp);
}

/* One segment: anchor, links up to a checkpoint; marks the records it proves. */
static bool check_segment(chk *c, size_t si, const json_t *seg, rec_ref *refs, size_t n,
                          uint8_t *leaves_buf, size_t leaves_cap) {
  uint8_t prev[STO_HASH_LEN];
  json_t *links = json_object_get(seg, "links");
  json_t *cpj = json_object_get(seg, "checkpoint");
  if (!get_hash(seg, "anchor", prev) || !json_is_array(links) || !json_array_size(links) ||
      !json_is_object(cpj))
    return failf(c, "MANIFEST", "manifest.json: proof.segments[%zu] needs anchor, links, "
                 "checkpoint", si);
  sto_link l = {0};
  uint64_t prev_pos = 0, prev_last = 0;
  for (size_t i = 0; i < json_array_size(links); i++) {
    json_t *lj = json_array_get(links, i);
    json_t *cj = json_object_get(lj, "commit_ns");
    if (!get_u64(lj, "position", &l.position) || !get_u64(lj, "first_seq", &l.first_seq) ||
        !get_u64(lj, "last_seq", &l.last_seq) || !json_is_integer(cj) ||
        !get_hash(lj, "hash", l.hash) || l.position == 0 || l.first_seq == 0 ||
        l.first_seq > l.last_seq)
      return failf(c, "MANIFEST", "manifest.json: proof.segments[%zu].links[%zu] is malformed",
                   si, i);
    l.commit_ns = (int64_t)json_integer_value(cj);
    if (i > 0 && (l.position != prev_pos + 1 || l.first_seq != prev_last + 1))
      return failf(c, "LINK",
                   "link %llu (seq %llu..%llu) does not follow link %llu (which ends at seq "
                   "%llu): links were removed or reordered",
                   (unsigned long long)l.position, (unsigned long long)l.first_seq,
                   (unsigned long long)l.last_seq, (unsigned long long)prev_pos,
                   (unsigned long long)prev_last);
    uint8_t digest[STO_HASH_LEN], calc[STO_HASH_LEN];
    json_t *leaves = json_object_get(lj, "leaves");
    if (leaves) {
      uint64_t k = l.last_seq - l.first_seq + 1;
      size_t hl = json_string_length(leaves);
      if (!json_is_string(leaves) || hl % (2 * STO_HASH_LEN) != 0 ||
          hl / (2 * STO_HASH_LEN) != k)
        return failf(c, "LINK", "link %llu covers %llu records but the proof lists %zu leaves",
                     (unsigned long long)l.position, (unsigned long long)k,
                     hl / (2 * STO_HASH_LEN));
      if (k > leaves_cap / STO_HASH_LEN)
        return failf(c, "MANIFEST", "link %llu: too many leaves (%llu)",
                     (unsigned long long)l.position, (unsigned long long)k);
      if (!unhex_n(json_string_value(leaves), hl, leaves_buf))
        return failf(c, "MANIFEST", "link %llu: leaves are not lower-case hex",
                     (unsigned long long)l.position);
      if (sto_link_digest(leaves_buf, (size_t)k, digest) != CAIRN_OK)
        return failf(c, "LINK", "out of memory");
      /* the exported records of this link must be its leaves */
      for (uint64_t s = l.first_seq; s <= l.last_seq; s++) {
        rec_ref *r = n ? bsearch(&s, refs, n, sizeof(*refs), ref_cmp) : NULL;
        if (!r) continue;
        if (r->position != l.position)
          return failf(c, "MANIFEST", "seq %llu: the proof names link %llu, but link %llu covers "
                       "it", (unsigned long long)s, (unsigned long long)r->position,
                       (unsigned long long)l.position);
        if (CRYPTO_memcmp(r->leaf, leaves_buf + (s - l.first_seq) * STO_HASH_LEN,
                          STO_HASH_LEN) != 0)
          return failf(c, "LEAF",
                       "seq %llu: its bytes in records.bin are not what link %llu committed (leaf "
                       "%llu of the link differs): the record was changed",
                       (unsigned long long)s, (unsigned long long)l.position,
                       (unsigned long long)(s - l.first_seq + 1));
        r->proven = true; /* any later failure of the segment fails the whole check */
      }
    } else if (!get_hash(lj, "digest", digest)) {
      return failf(c, "MANIFEST", "link %llu has neither leaves nor digest",
                   (unsigned long long)l.position);
    }
    if (sto_link_hash(prev, &l, digest, calc) != CAIRN_OK)
      return failf(c, "LINK", "out of memory");
    if (CRYPTO_memcmp(calc, l.hash, STO_HASH_LEN) != 0) {
      char ch[65];
      qry__hex(calc, STO_HASH_LEN, ch);
      return failf(c, "LINK",
                   "link %llu (seq %llu..%llu) recomputes to %s, not the hash the bundle states: "
                   "its fields, leaves or digest, or an earlier link, were changed",
                   (unsigned long long)l.position, (unsigned long long)l.first_seq,
                   (unsigned long long)l.last_seq, ch);
    }
    memcpy(prev, calc, STO_HASH_LEN);
    prev_pos = l.position;
    prev_last = l.last_seq;
    c->out->links++;
  }
  sto_checkpoint cp = {0};
  json_t *tj = json_object_get(cpj, "time_ns");
  if (!get_u64(cpj, "position", &cp.position) || !get_u64(cpj, "last_seq", &cp.last_seq) ||
      !json_is_integer(tj) || !get_hash(cpj, "head", cp.head))
    return failf(c, "MANIFEST", "manifest.json: proof.segments[%zu].checkpoint is malformed", si);
  cp.time_ns = (int64_t)json_integer_value(tj);
  if (cp.position != prev_pos || cp.last_seq != prev_last ||
      CRYPTO_memcmp(cp.head, prev, STO_HASH_LEN) != 0)
    return failf(c, "CHECKPOINT",
                 "the links of segment %zu end at position %llu (seq %llu) with a head the "
                 "checkpoint at position %llu (seq %llu) did not sign: the chain was rewritten",
                 si + 1, (unsigned long long)prev_pos, (unsigned long long)prev_last,
                 (unsigned long long)cp.position, (unsigned long long)cp.last_seq);
  if (!check_signature(c, cpj, &cp)) return false;
  if (cp.position >= c->out->cp_position) {
    c->out->cp_position = cp.position;
    c->out->cp_last_seq = cp.last_seq;
    c->out->cp_time_ns = cp.time_ns;
  }
  c->out->segments++;
  return true;
}

static bool counts_equal(chk *c, const json_t *want, const json_t *got, const char *field) {
  if (!json_is_object(want))
    return failf(c, "MANIFEST", "manifest.json: counts.%s is missing", field);
  if (!json_equal((json_t *)want, (json_t *)got)) {
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    failf(c, "COUNTS", "counts.%s in the manifest (%.160s) are not the counts of the records "
          "(%.160s)", field, w ? w : "?", g ? g : "?");
    free(w);
    free(g);
    return false;
  }
  return true;
}

/* The walk proper (c->bin / c->jsonl loaded). */
static cairn_err run(chk *c) {
  const json_t *m = c->m;
  const char *fmt = json_string_value(json_object_get(m, "format"));
  if (!fmt || strcmp(fmt, QRY_BUNDLE_FORMAT) != 0) {
    failf(c, "MANIFEST", "manifest.json: format is \"%.60s\", this cairn-query reads %s",
          fmt ? fmt : "(none)", QRY_BUNDLE_FORMAT);
    return CAIRN_OK;
  }
  json_t *proof = json_object_get(m, "proof");
  if (!json_is_object(proof) || !json_is_array(json_object_get(proof, "segments"))) {
    failf(c, "MANIFEST", "manifest.json has no proof.segments");
    return CAIRN_OK;
  }
  rec_ref *refs = NULL;
  size_t n = 0;
  counts cn = {json_object(), json_object(), json_object()};
  uint8_t *leaves = NULL;
  cairn_err err = CAIRN_OK;
  if (!cn.by_source || !cn.by_namespace || !cn.by_node) {
    err = CAIRN_E_NOMEM;
    goto out_free;
  }
  if (!check_records(c, &refs, &n, &cn) || !check_proof_records(c, proof, refs, n)) goto out_free;
  c->out->records = n;
  /* leaves of the largest covering link */
  size_t most = 1;
  json_t *segs = json_object_get(proof, "segments");
  for (size_t si = 0; si < json_array_size(segs); si++) {
    json_t *links = json_object_get(json_array_get(segs, si), "links");
    for (size_t i = 0; i < json_array_size(links); i++) {
      size_t k = json_string_length(json_object_get(json_array_get(links, i), "leaves")) /
                 (2 * STO_HASH_LEN);
      if (k > most) most = k;
    }
  }
  leaves = malloc(most * STO_HASH_LEN);
  if (!leaves) {
    err = CAIRN_E_NOMEM;
    goto out_free;
  }
  for (size_t si = 0; si < json_array_size(segs); si++)
    if (!check_segment(c, si, json_array_get(segs, si), refs, n, leaves, most * STO_HASH_LEN))
      goto out_free;
  for (size_t i = 0; i < n; i++)
    if (!refs[i].proven) {
      failf(c, "LINK", "seq %llu is not covered by any link of the proof (it names link %llu)",
            (unsigned long long)refs[i].seq, (unsigned long long)refs[i].position);
      goto out_free;
    }
  json_t *mc = json_object_get(m, "counts");
  uint64_t total = 0;
  if (!get_u64(mc, "records", &total) || total != n) {
    failf(c, "COUNTS", "counts.records in the manifest is not %zu, the number of records", n);
    goto out_free;
  }
  if (!counts_equal(c, json_object_get(mc, "by_source"), cn.by_source, "by_source") ||
      !counts_equal(c, json_object_get(mc, "by_namespace"), cn.by_namespace, "by_namespace") ||
      !counts_equal(c, json_object_get(mc, "by_node"), cn.by_node, "by_node"))
    goto out_free;
  if (!c->pkey) {
    failf(c, "SIGNATURE", "no public key: the checkpoint signatures were not checked");
    goto out_free;
  }
  c->out->signature_checked = true;
  c->out->ok = true;
out_free:
  free(leaves);
  free(refs);
  json_decref(cn.by_source);
  json_decref(cn.by_namespace);
  json_decref(cn.by_node);
  return err;
}

cairn_err qry__bundle_check(const char *dir, const json_t *m, const uint8_t *pubkey,
                            bool check_file_hashes, qry_check *out) {
  memset(out, 0, sizeof(*out));
  chk c = {.out = out, .m = m, .dir = dir, .pubkey = pubkey};
  cairn_buf_init(&c.bin);
  cairn_buf_init(&c.jsonl);
  cairn_err err = CAIRN_OK;
  if (pubkey) {
    c.pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pubkey, STO_PUBKEY_LEN);
    if (!c.pkey) {
      failf(&c, "SIGNATURE", "the public key is not a valid Ed25519 key");
      goto out_free;
    }
    fingerprint(pubkey, out->key_fp);
  }
  if (check_file_hashes && !check_files(&c)) goto out_free;
  char path[4096];
  static const char *const names[] = {QRY_BUNDLE_BIN, QRY_BUNDLE_RECORDS};
  cairn_buf *bufs[] = {&c.bin, &c.jsonl};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    cairn_err e = file_read(path, bufs[i]);
    if (e == CAIRN_E_NOMEM) {
      err = e;
      goto out_free;
    }
    if (e != CAIRN_OK) {
      failf(&c, "RECORDS", "%s: cannot read: %s", names[i],
            e == CAIRN_E_NOTFOUND ? "no such file" : strerror(errno));
      goto out_free;
    }
  }
  err = run(&c);
out_free:
  EVP_PKEY_free(c.pkey);
  cairn_buf_fini(&c.bin);
  cairn_buf_fini(&c.jsonl);
  return err;
}

/* ---- the command ---- */

static void print_text(FILE *f, const char *dir, const qry_check *r, const char *keypath) {
  fprintf(f, "verify-export: %s\n", r->ok ? "OK" : "FAILED");
  fprintf(f, "  bundle:       %s\n", dir);
  if (!r->ok) fprintf(f, "  problem:      %s: %s\n", r->code, r->detail);
  fprintf(f, "  records:      %llu, each matching its committed leaf\n",
          (unsigned long long)r->records);
  fprintf(f, "  proof:        %llu links recomputed in %llu segments\n",
          (unsigned long long)r->links, (unsigned long long)r->segments);
  if (r->cp_position) {
    char t[40];
    cairn_time_format(r->cp_time_ns, t, sizeof(t));
    fprintf(f, "  checkpoint:   position %llu (seq %llu), signed %s\n",
            (unsigned long long)r->cp_position, (unsigned long long)r->cp_last_seq, t);
  }
  fprintf(f, "  key:          %s (%s)\n", keypath, r->key_fp[0] ? r->key_fp : "not loaded");
}

static int print_json(FILE *f, const char *dir, const qry_check *r, const char *keypath) {
  json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "status", r->ok ? "ok" : "failed",
                        "bundle", dir, "records", (json_int_t)r->records, "links",
                        (json_int_t)r->links, "segments", (json_int_t)r->segments,
                        "public_key", keypath, "public_key_fingerprint", r->key_fp);
  if (!o) return -1;
  if (!r->ok) {
    json_object_set_new(o, "problem", json_string(r->code));
    json_object_set_new(o, "detail", json_string(r->detail));
  }
  if (r->cp_position) {
    json_object_set_new(o, "checkpoint_position", json_integer((json_int_t)r->cp_position));
    json_object_set_new(o, "checkpoint_last_seq", json_integer((json_int_t)r->cp_last_seq));
  }
  int rc = json_dumpf(o, f, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(o);
  if (rc == 0) fputc('\n', f);
  return rc;
}

int qry__verify_export_cmd(const qry_opts *o, const qry_env *env) {
  if (o->format == QRY_FMT_CSV) {
    fprintf(env->err, "cairn-query verify-export: --output csv does not apply (use text or json)\n");
    return QRY_EXIT_USAGE;
  }
  struct stat st;
  if (stat(o->bundle, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(env->err, "cairn-query verify-export: %s: not a directory (%s): pass the bundle "
                      "directory cairn-query export --out wrote\n",
            o->bundle, errno ? strerror(errno) : "a file");
    return QRY_EXIT_USAGE;
  }
  uint8_t raw[STO_PUBKEY_LEN];
  char fp[17], why[512];
  if (!qry__pubkey_read(o->public_key, raw, fp, why, sizeof(why))) {
    fprintf(env->err, "cairn-query verify-export: --public-key %s\n", why);
    return QRY_EXIT_USAGE;
  }
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", o->bundle, QRY_BUNDLE_MANIFEST);
  json_error_t jerr;
  json_t *m = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  qry_check r;
  memset(&r, 0, sizeof(r));
  if (!m) {
    snprintf(r.code, sizeof(r.code), "MANIFEST");
    snprintf(r.detail, sizeof(r.detail), "%.300s: not readable JSON (line %d: %.200s)", path,
             jerr.line, jerr.text);
    memcpy(r.key_fp, fp, sizeof(fp));
  } else {
    cairn_err e = qry__bundle_check(o->bundle, m, raw, true, &r);
    json_decref(m);
    if (e != CAIRN_OK) {
      fprintf(env->err, "cairn-query verify-export: %s: %s (%s)\n", o->bundle, cairn_err_name(e),
              cairn_err_str(e));
      return QRY_EXIT_USAGE;
    }
  }
  if (o->format == QRY_FMT_JSON) {
    if (print_json(env->out, o->bundle, &r, o->public_key) != 0) {
      fprintf(env->err, "cairn-query verify-export: cannot write the report: %s\n",
              strerror(errno));
      return QRY_EXIT_USAGE;
    }
  } else {
    print_text(env->out, o->bundle, &r, o->public_key);
  }
  fflush(env->out);
  if (r.ok) return QRY_EXIT_OK;
  fprintf(env->err, "cairn-query verify-export: %s: %s\n", r.code, r.detail);
  return QRY_EXIT_VERIFY_FAILED;
}
