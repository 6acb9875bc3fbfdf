/* aggregator/signer.c: the Ed25519 key that signs hash-chain checkpoints.
 *
 * The key is loaded (or, when --signing-key is not set and DATA/signing.key
 * does not exist yet, generated) before any thread starts; signing and
 * storing a checkpoint happen on the writer thread, in their own small txn,
 * because LMDB write txns belong to that thread. A key file readable by
 * anyone but its owner is refused: whoever holds it can forge checkpoints.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "aggregator/internal.h"
#include "common/fsperm.h"
#include "common/log.h"
#include "common/timeparse.h"

struct agg_signer {
  EVP_PKEY *key;                 /* owned: Ed25519 private key */
  uint8_t pub[STO_PUBKEY_LEN];   /* raw public key */
  char fingerprint[2 * 8 + 1];   /* hex of the first 8 bytes of SHA-256(pub) */
  uint64_t signed_pos;           /* writer only: highest position with a checkpoint */
};

/* Never prompt for a passphrase (a daemon has no terminal): an encrypted key fails. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

static void ossl_reason(char *out, size_t cap) {
  unsigned long e = ERR_peek_last_error();
  if (e) ERR_error_string_n(e, out, cap);
  else snprintf(out, cap, "no OpenSSL detail");
  ERR_clear_error();
}

/* Write PEM text (produced by write_fn) to path atomically with mode 0600. */
static cairn_err pem_file_write(const char *path, EVP_PKEY *key, bool private_key,
                                const char *what, char *errbuf, size_t errlen) {
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
    snprintf(errbuf, errlen, "%s %s: path too long", what, path);
    return CAIRN_E_CONFIG;
  }
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    snprintf(errbuf, errlen, "%s %s: cannot create: %s", what, tmp, strerror(errno));
    return cairn_err_from_errno(errno) == CAIRN_E_PERM ? CAIRN_E_PERM : CAIRN_E_CONFIG;
  }
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(tmp);
    return CAIRN_E_NOMEM;
  }
  int ok = private_key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                       : PEM_write_PUBKEY(f, key);
  ok = ok == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int e = errno;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path) != 0) {
    if (ok) e = errno;
    snprintf(errbuf, errlen, "%s %s: cannot write: %s", what, path, strerror(e));
    unlink(tmp);
    return CAIRN_E_CONFIG;
  }
  return CAIRN_OK;
}

/* Load an existing key file, refusing one others can read or write
 * (common/fsperm.h). */
static cairn_err key_load(const char *path, const char *opt, EVP_PKEY **out, char *errbuf,
                          size_t errlen) {
  int fd = -1;
  cairn_err pe = cairn_private_file_open(path, opt, &fd, errbuf, errlen);
  if (pe != CAIRN_OK) return pe;
  FILE *f = fdopen(fd, "r");
  if (!f) {
    close(fd);
    return CAIRN_E_NOMEM;
  }
  EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
  fclose(f);
  if (!key) {
    char why[256];
    ossl_reason(why, sizeof(why));
    snprintf(errbuf, errlen,
             "%s %s: not an unencrypted PEM private key (%s); generate one with: openssl "
             "genpkey -algorithm ed25519 -out %s",
             opt, path, why, path);
    return CAIRN_E_CONFIG;
  }
  if (!EVP_PKEY_is_a(key, "ED25519")) {
    snprintf(errbuf, errlen,
             "%s %s: not an Ed25519 key (%s); generate one with: openssl genpkey -algorithm "
             "ed25519 -out %s",
             opt, path, EVP_PKEY_get0_type_name(key), path);
    EVP_PKEY_free(key);
    return CAIRN_E_CONFIG;
  }
  *out = key;
  return CAIRN_OK;
}

static void fingerprint(const uint8_t *pub, char *out) {
  static const char x[] = "0123456789abcdef";
  uint8_t d[32];
  unsigned int n = 0;
  if (EVP_Digest(pub, STO_PUBKEY_LEN, d, &n, EVP_sha256(), NULL) != 1) memset(d, 0, sizeof(d));
  for (int i = 0; i < 8; i++) {
    out[2 * i] = x[d[i] >> 4];
    out[2 * i + 1] = x[d[i] & 15];
  }
  out[16] = 0;
}

cairn_err agg__signer_open(const agg_config *cfg, sto_env *env, agg_signer **out, char *errbuf,
                           size_t errlen) {
  *out = NULL;
  bool explicit_key = cfg->signing_key && *cfg->signing_key;
  char def_path[4096], pub_path[4096];
  if (snprintf(def_path, sizeof(def_path), "%s/signing.key", cfg->data_dir) >=
          (int)sizeof(def_path) ||
      snprintf(pub_path, sizeof(pub_path), "%s/signing.pub", cfg->data_dir) >=
          (int)sizeof(pub_path)) {
    snprintf(errbuf, errlen, "--data %s: path too long", cfg->data_dir);
    return CAIRN_E_CONFIG;
  }
  const char *path = explicit_key ? cfg->signing_key : def_path;
  const char *opt = explicit_key ? "--signing-key" : "signing key";
  agg_signer *s = calloc(1, sizeof(*s));
  if (!s) return CAIRN_E_NOMEM;
  cairn_err e;
  struct stat st;
  if (stat(path, &st) != 0 && errno == ENOENT) {
    if (explicit_key) {
      snprintf(errbuf, errlen,
               "--signing-key %s: no such file; generate one with: openssl genpkey -algorithm "
               "ed25519 -out %s && chmod 600 %s (or leave --signing-key unset to use "
               "DATA/signing.key, generated on first start)",
               path, path, path);
      e = CAIRN_E_CONFIG;
      goto out_free;
    }
    s->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!s->key) {
      char why[256];
      ossl_reason(why, sizeof(why));
      snprintf(errbuf, errlen, "signing key: cannot generate an Ed25519 key: %s", why);
      e = CAIRN_E_NOMEM;
      goto out_free;
    }
    e = pem_file_write(path, s->key, true, "signing key", errbuf, errlen);
    if (e != CAIRN_OK) goto out_free;
    cairn_log_info(AGG_COMP,
                   "generated a new Ed25519 signing key %s (mode 0600) for chain checkpoints; "
                   "back it up and give auditors a copy of %s",
                   path, pub_path);
  } else {
    e = key_load(path, opt, &s->key, errbuf, errlen);
    if (e != CAIRN_OK) goto out_free;
  }
  size_t plen = STO_PUBKEY_LEN;
  if (EVP_PKEY_get_raw_public_key(s->key, s->pub, &plen) != 1 || plen != STO_PUBKEY_LEN) {
    snprintf(errbuf, errlen, "%s %s: cannot read the public half of the key", opt, path);
    e = CAIRN_E_CONFIG;
    goto out_free;
  }
  fingerprint(s->pub, s->fingerprint);
  e = pem_file_write(pub_path, s->key, false, "public key", errbuf, errlen);
  if (e != CAIRN_OK) goto out_free;
  sto_checkpoint last;
  bool found = false;
  e = sto_checkpoint_last(env, &last, &found);
  if (e != CAIRN_OK) {
    snprintf(errbuf, errlen,
             "--data %s: the last checkpoint is unreadable (%s): run cairn-query verify --data %s",
             cfg->data_dir, cairn_err_name(e), cfg->data_dir);
    goto out_free;
  }
  s->signed_pos = found ? last.position : 0;
  cairn_log_info(AGG_COMP,
                 "chain checkpoints signed with %s (Ed25519, fingerprint %s); public key in %s",
                 path, s->fingerprint, pub_path);
  *out = s;
  return CAIRN_OK;

out_free:
  agg__signer_free(s);
  return e;
}

void agg__signer_free(agg_signer *s) {
  if (!s) return;
  EVP_PKEY_free(s->key);
  free(s);
}

/* Store cp in its own txn; grows the map once on MAPFULL. */
static cairn_err checkpoint_store(sto_env *env, const sto_checkpoint *cp) {
  for (int attempt = 0;; attempt++) {
    sto_wtxn *t;
    cairn_err e = sto_wtxn_begin(env, &t);
    if (e != CAIRN_OK) return e;
    e = sto_wtxn_checkpoint_put(t, cp);
    if (e == CAIRN_OK) e = sto_wtxn_commit(t);
    else sto_wtxn_abort(t);
    if (e != CAIRN_E_MAPFULL || attempt > 0) return e;
    if (sto_grow(env) != CAIRN_OK) return e;
  }
}

cairn_err agg__signer_checkpoint(agg_signer *s, sto_env *env, uint64_t *position) {
  *position = 0;
  sto_chain_head h;
  cairn_err e = sto_chain_head_get(env, &h);
  if (e != CAIRN_OK) return e;
  if (h.position == 0 || h.position <= s->signed_pos) return CAIRN_OK;
  sto_checkpoint cp = {.position = h.position, .last_seq = h.last_seq,
                       .time_ns = cairn_time_now_ns()};
  memcpy(cp.head, h.hash, STO_HASH_LEN);
  memcpy(cp.pubkey, s->pub, STO_PUBKEY_LEN);
  uint8_t msg[STO_CHECKPOINT_MSG_LEN];
  size_t mlen = sto_checkpoint_message(&cp, msg);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return CAIRN_E_NOMEM;
  size_t siglen = STO_SIG_LEN;
  int ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
           EVP_DigestSign(ctx, cp.sig, &siglen, msg, mlen) == 1 && siglen == STO_SIG_LEN;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    ERR_clear_error();
    return CAIRN_E_NOMEM;
  }
  e = checkpoint_store(env, &cp);
  if (e != CAIRN_OK) return e;
  s->signed_pos = cp.position;
  *position = cp.position;
  return CAIRN_OK;
}
