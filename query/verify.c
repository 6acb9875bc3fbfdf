/* query/verify.c: `cairn-query verify`: walk the hash chain and the signed
 * checkpoints of a store (sto_chain_verify) and report OK with counts, or the
 * first bad position and what is wrong.
 *
 * The public key comes from --public-key, else DATA/signing.pub. A key read
 * from the data dir proves only that the store agrees with itself (whoever
 * rewrote the store could replace that file too), so verify says so; an
 * auditor passes their own copy. Exit 3 (QRY_EXIT_VERIFY_FAILED) means "not
 * verified", distinct from 2 (could not run) so scripts can page on it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/timeparse.h"
#include "query/internal.h"

#define PROGRESS_MIN_NS (200LL * 1000000LL) /* redraw the TTY progress line at most 5x/s */

typedef struct vkey {
  uint8_t raw[STO_PUBKEY_LEN];
  char fp[17];       /* hex of the first 8 bytes of SHA-256(raw), as the aggregator logs it */
  char path[4096];
  bool loaded;
  bool from_data_dir; /* the default DATA/signing.pub */
} vkey;

static void hexify(const uint8_t *p, size_t n, char *out) {
  static const char x[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = x[p[i] >> 4];
    out[2 * i + 1] = x[p[i] & 15];
  }
  out[2 * n] = 0;
}

static void fingerprint(const uint8_t *raw, char *out) {
  uint8_t d[32];
  unsigned int n = 0;
  if (EVP_Digest(raw, STO_PUBKEY_LEN, d, &n, EVP_sha256(), NULL) != 1) memset(d, 0, sizeof(d));
  hexify(d, 8, out);
}

/* Load the verifier's key. QRY_EXIT_OK (k->loaded false when the default
 * file does not exist), or QRY_EXIT_USAGE after one line on env->err. */
static int key_load(const qry_opts *o, const qry_env *env, vkey *k) {
  memset(k, 0, sizeof(*k));
  bool given = o->public_key && *o->public_key;
  if (given) snprintf(k->path, sizeof(k->path), "%s", o->public_key);
  else snprintf(k->path, sizeof(k->path), "%s/signing.pub", o->data_dir);
  k->from_data_dir = !given;
  FILE *f = fopen(k->path, "r");
  if (!f) {
    if (!given && errno == ENOENT) return QRY_EXIT_OK;
    fprintf(env->err, "cairn-query verify: %s %s: cannot open: %s\n",
            given ? "--public-key" : "public key", k->path, strerror(errno));
    return QRY_EXIT_USAGE;
  }
  EVP_PKEY *pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
  fclose(f);
  size_t len = STO_PUBKEY_LEN;
  bool ok = pk && EVP_PKEY_is_a(pk, "ED25519") &&
            EVP_PKEY_get_raw_public_key(pk, k->raw, &len) == 1 && len == STO_PUBKEY_LEN;
  EVP_PKEY_free(pk);
  ERR_clear_error();
  if (!ok) {
    fprintf(env->err,
            "cairn-query verify: %s %s: not a PEM Ed25519 public key (use the signing.pub the "
            "aggregator wrote, or: openssl pkey -in signing.key -pubout)\n",
            given ? "--public-key" : "public key", k->path);
    return QRY_EXIT_USAGE;
  }
  fingerprint(k->raw, k->fp);
  k->loaded = true;
  return QRY_EXIT_OK;
}

typedef struct progress {
  FILE *err;
  int64_t last_ns;
  bool drawn;
} progress;

static void on_progress(uint64_t done, uint64_t total, void *ud) {
  progress *p = ud;
  int64_t now = cairn_time_mono_ns();
  if (now - p->last_ns < PROGRESS_MIN_NS) return;
  p->last_ns = now;
  unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
  fprintf(p->err, "\rverify: %llu/%llu records (%u%%)", (unsigned long long)done,
          (unsigned long long)total, pct > 100 ? 100 : pct);
  fflush(p->err);
  p->drawn = true;
}

/* "record modified", ... for the text report. */
static const char *problem_name(sto_verify_status s) {
  switch (s) {
  case STO_VERIFY_OK: return "ok";
  case STO_VERIFY_PREDATES: return "store predates the chain";
  case STO_VERIFY_MODIFIED: return "record modified";
  case STO_VERIFY_REMOVED: return "record removed";
  case STO_VERIFY_INSERTED: return "record inserted";
  case STO_VERIFY_REORDERED: return "records reordered";
  case STO_VERIFY_LINK_BROKEN: return "link hash broken";
  case STO_VERIFY_CHECKPOINT_MISMATCH: return "checkpoint does not match the chain";
  case STO_VERIFY_BAD_SIGNATURE: return "bad signature";
  }
  return "unknown";
}

/* "MODIFIED", "BAD_SIGNATURE": the stable machine name on the stderr line. */
static void upper_name(sto_verify_status s, char *out, size_t cap) {
  const char *n = sto_verify_status_name(s);
  size_t i = 0;
  for (; n[i] && i + 1 < cap; i++) out[i] = n[i] == '-' ? '_' : (char)(n[i] & ~0x20);
  out[i] = 0;
}

static void where(const sto_verify_report *r, char *out, size_t cap) {
  if (r->position && r->first_seq)
    snprintf(out, cap, "chain position %llu (seq %llu..%llu)", (unsigned long long)r->position,
             (unsigned long long)r->first_seq, (unsigned long long)r->last_seq);
  else if (r->position)
    snprintf(out, cap, "chain position %llu", (unsigned long long)r->position);
  else if (r->seq)
    snprintf(out, cap, "seq %llu", (unsigned long long)r->seq);
  else
    snprintf(out, cap, "the start of the store");
}

static void print_text(FILE *f, const sto_verify_report *r, const vkey *k) {
  fprintf(f, "verify: %s\n", r->status == STO_VERIFY_OK ? "OK" : "FAILED");
  if (r->status == STO_VERIFY_PREDATES) {
    fprintf(f, "  problem:      %s\n", problem_name(r->status));
    fprintf(f, "  detail:       %s\n", r->detail);
  } else if (r->status != STO_VERIFY_OK) {
    char w[128];
    where(r, w, sizeof(w));
    fprintf(f, "  problem:      %s at %s\n", problem_name(r->status), w);
    fprintf(f, "  detail:       %s\n", r->detail);
  }
  fprintf(f, "  %-13s %llu links, %llu records", r->status == STO_VERIFY_OK ? "chain:" : "verified:",
          (unsigned long long)r->links, (unsigned long long)r->records);
  if (r->records) fprintf(f, " (up to seq %llu)", (unsigned long long)r->chain_last_seq);
  fputc('\n', f);
  if (r->links) {
    char hex[2 * STO_HASH_LEN + 1];
    hexify(r->chain_head, STO_HASH_LEN, hex);
    fprintf(f, "  head:         %s (link %llu)\n", hex, (unsigned long long)r->links);
  }
  if (r->prechain_records)
    fprintf(f, "  pre-chain:    %llu records stored before the chain existed (not covered)\n",
            (unsigned long long)r->prechain_records);
  if (r->pruned_links) {
    fprintf(f,
            "  pruned:       %llu records (up to seq %llu) deleted by --retention, only after "
            "Kafka acknowledged them when Kafka is configured (Kafka holds them); their %llu "
            "links were checked for continuity and signatures only, everything after them was "
            "recomputed\n",
            (unsigned long long)r->pruned_records, (unsigned long long)r->pruned_seq,
            (unsigned long long)r->pruned_links);
  }
  if (k->loaded)
    fprintf(f, "  checkpoints:  %llu, signatures checked with %s (key %s)\n",
            (unsigned long long)r->checkpoints, k->path, k->fp);
  else
    fprintf(f, "  checkpoints:  %llu, signatures NOT checked (no public key: pass --public-key)\n",
            (unsigned long long)r->checkpoints);
  if (r->last_signed_position)
    fprintf(f, "  last signed:  position %llu (seq %llu)\n",
            (unsigned long long)r->last_signed_position, (unsigned long long)r->last_signed_seq);
  else
    fprintf(f, "  last signed:  none\n");
  fprintf(f, "  unsigned:     %llu records after the last signed checkpoint\n",
          (unsigned long long)r->unsigned_records);
}

static int print_json(FILE *f, const sto_verify_report *r, const vkey *k) {
  json_t *o = json_object();
  if (!o) return -1;
  json_object_set_new(o, "status", json_string(sto_verify_status_name(r->status)));
  if (r->status != STO_VERIFY_OK) {
    json_object_set_new(o, "position", json_integer((json_int_t)r->position));
    json_object_set_new(o, "seq", json_integer((json_int_t)r->seq));
    json_object_set_new(o, "first_seq", json_integer((json_int_t)r->first_seq));
    json_object_set_new(o, "last_seq", json_integer((json_int_t)r->last_seq));
    json_object_set_new(o, "detail", json_string(r->detail));
  }
  json_object_set_new(o, "links", json_integer((json_int_t)r->links));
  json_object_set_new(o, "records", json_integer((json_int_t)r->records));
  json_object_set_new(o, "chain_last_seq", json_integer((json_int_t)r->chain_last_seq));
  if (r->links) {
    char hex[2 * STO_HASH_LEN + 1];
    hexify(r->chain_head, STO_HASH_LEN, hex);
    json_object_set_new(o, "chain_head", json_string(hex));
  }
  json_object_set_new(o, "prechain_records", json_integer((json_int_t)r->prechain_records));
  json_object_set_new(o, "pruned_links", json_integer((json_int_t)r->pruned_links));
  json_object_set_new(o, "pruned_records", json_integer((json_int_t)r->pruned_records));
  json_object_set_new(o, "pruned_seq", json_integer((json_int_t)r->pruned_seq));
  json_object_set_new(o, "checkpoints", json_integer((json_int_t)r->checkpoints));
  json_object_set_new(o, "signatures_checked", json_boolean(k->loaded));
  if (k->loaded) {
    json_object_set_new(o, "public_key", json_string(k->path));
    json_object_set_new(o, "public_key_fingerprint", json_string(k->fp));
    json_object_set_new(o, "public_key_from_data_dir", json_boolean(k->from_data_dir));
  }
  json_object_set_new(o, "last_signed_position", json_integer((json_int_t)r->last_signed_position));
  json_object_set_new(o, "last_signed_seq", json_integer((json_int_t)r->last_signed_seq));
  json_object_set_new(o, "unsigned_records", json_integer((json_int_t)r->unsigned_records));
  int rc = json_dumpf(o, f, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(o);
  if (rc == 0) fputc('\n', f);
  return rc;
}

int qry__verify_cmd(const qry_opts *o, const qry_env *env) {
  if (o->format == QRY_FMT_CSV) {
    fprintf(env->err, "cairn-query verify: --output csv does not apply (use text or json)\n");
    return QRY_EXIT_USAGE;
  }
  vkey k;
  int rc = key_load(o, env, &k);
  if (rc != QRY_EXIT_OK) return rc;
  sto_env *store = NULL;
  rc = qry__store_open(o, env, &store);
  if (rc != QRY_EXIT_OK) return rc;

  progress p = {.err = env->err, .last_ns = cairn_time_mono_ns()};
  bool tty = isatty(fileno(env->err)) == 1;
  sto_verify_report r;
  cairn_err e = sto_chain_verify(store, k.loaded ? k.raw : NULL, tty ? on_progress : NULL, &p, &r);
  sto_close(store);
  if (p.drawn) fprintf(env->err, "\r\033[K");
  if (e != CAIRN_OK) {
    fprintf(env->err, "cairn-query verify: %s: %s while reading the store (%s)\n", o->data_dir,
            cairn_err_name(e), cairn_err_str(e));
    return QRY_EXIT_USAGE;
  }

  if (!k.loaded)
    fprintf(env->err,
            "cairn-query verify: warning: no public key (%s does not exist): checkpoint "
            "signatures are not checked; pass --public-key FILE\n",
            k.path);
  else if (k.from_data_dir)
    fprintf(env->err,
            "cairn-query verify: warning: the public key was read from the data dir (%s): that "
            "proves only that the store agrees with itself; an auditor passes their own copy "
            "with --public-key\n",
            k.path);

  if (o->format == QRY_FMT_JSON) {
    if (print_json(env->out, &r, &k) != 0) {
      fprintf(env->err, "cairn-query verify: cannot write the report: %s\n", strerror(errno));
      return QRY_EXIT_USAGE;
    }
  } else {
    print_text(env->out, &r, &k);
  }
  fflush(env->out);
  if (r.status == STO_VERIFY_OK) return QRY_EXIT_OK;
  char name[32], w[128];
  upper_name(r.status, name, sizeof(name));
  where(&r, w, sizeof(w));
  if (r.status == STO_VERIFY_PREDATES)
    fprintf(env->err, "cairn-query verify: %s: %s\n", name, r.detail);
  else
    fprintf(env->err, "cairn-query verify: %s: %s at %s: %s\n", name, problem_name(r.status), w,
            r.detail);
  return QRY_EXIT_VERIFY_FAILED;
}
