/* proto/tls_ctx.c: TLS contexts (TLS 1.3 only unless 1.2 is opted into,
 * mutual verification), their asynchronous reload, and the certificate name
 * helpers behind pb_conn_identity / pb_conn_peer_has_name.
 * Every OpenSSL failure is turned into a cairn_err here, with the OpenSSL
 * reason and the offending file kept in the caller's errbuf.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsperm.h"
#include "proto/tls_internal.h"

void pb__tls_err_text(char *buf, size_t len, const char *fallback) {
  unsigned long e = ERR_peek_last_error();
  if (!e) {
    snprintf(buf, len, "%s", fallback);
  } else {
    const char *r = ERR_reason_error_string(e);
    if (r) {
      snprintf(buf, len, "%s", r);
    } else {
      ERR_error_string_n(e, buf, len);
    }
  }
  ERR_clear_error();
}

/* TLS 1.2 suites allowed by --tls-min-version 1.2: ECDHE key exchange with
 * AES-GCM or ChaCha20-Poly1305 only. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"

/* Never prompt for a passphrase (a daemon has no terminal): an encrypted key fails. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

/* printf into errbuf (if any) and return e. */
static cairn_err ctx_fail(char *errbuf, size_t errlen, cairn_err e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cairn_err ctx_fail(char *errbuf, size_t errlen, cairn_err e, const char *fmt, ...) {
  if (errbuf && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
  }
  ERR_clear_error();
  return e;
}

/* Check that path names a readable regular file, so a typo gets "No such file
 * or directory" instead of OpenSSL's "system lib". */
static cairn_err ctx_check_file(const char *what, const char *path, char *errbuf, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0)
    return ctx_fail(errbuf, errlen, CAIRN_E_CONFIG, "cannot read %s %s: %s", what, path,
                    strerror(errno));
  if (!S_ISREG(st.st_mode))
    return ctx_fail(errbuf, errlen, CAIRN_E_CONFIG, "%s %s is not a regular file", what, path);
  return CAIRN_OK;
}

/* Read the private key from a descriptor whose mode was checked
 * (common/fsperm.h), never by reopening the path. */
static cairn_err key_load(const char *path, EVP_PKEY **out, char *errbuf, size_t errlen) {
  char tmp[1];
  int fd = -1;
  cairn_err e = cairn_private_file_open(path, "private key", &fd, errbuf ? errbuf : tmp,
                                        errbuf ? errlen : sizeof(tmp));
  if (e) return e;
  FILE *f = fdopen(fd, "r");
  if (!f) {
    close(fd);
    return ctx_fail(errbuf, errlen, CAIRN_E_NOMEM, "out of memory reading %s", path);
  }
  ERR_clear_error();
  EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
  fclose(f);
  if (!pkey) {
    char why[200];
    pb__tls_err_text(why, sizeof(why), "no PEM private key found");
    return ctx_fail(errbuf, errlen, CAIRN_E_CONFIG,
                    "cannot load private key %s: %s (an unencrypted PEM key is needed)", path,
                    why);
  }
  *out = pkey;
  return CAIRN_OK;
}

cairn_err pb_tls_ctx_new(const pb_tls_config *cfg, pb_tls_ctx **out, char *errbuf, size_t errlen) {
  char why[200];
  cairn_err e;
  *out = NULL;
  if (errbuf && errlen) errbuf[0] = '\0';
  if (!cfg->ca_file)
    return ctx_fail(errbuf, errlen, CAIRN_E_CONFIG, "no CA file given (--tls-ca)");
  if (cfg->server && (!cfg->cert_file || !cfg->key_file))
    return ctx_fail(errbuf, errlen, CAIRN_E_CONFIG,
                    "a server needs a certificate and a key (--tls-cert, --tls-key)");
  if (!cfg->cert_file != !cfg->key_file)
    return ctx_fail(errbuf, errlen, CAIRN_E_CONFIG,
                    "certificate and key go together: give both --tls-cert and --tls-key");

  if (cfg->min_version != PB_TLS_1_3 && cfg->min_version != PB_TLS_1_2)
    return ctx_fail(errbuf, errlen, CAIRN_E_CONFIG, "unsupported minimum TLS version %u",
                    cfg->min_version);

  pb_tls_ctx *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) return ctx_fail(errbuf, errlen, CAIRN_E_NOMEM, "out of memory");
  ctx->server = cfg->server;
  ctx->handshake_timeout_ms =
      cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : PB_CONN_HANDSHAKE_TIMEOUT_MS;
  ERR_clear_error();
  ctx->ssl = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
  if (!ctx->ssl) {
    pb__tls_err_text(why, sizeof(why), "unknown error");
    e = ctx_fail(errbuf, errlen, CAIRN_E_TLS, "cannot create TLS context: %s", why);
    goto out_free;
  }
  int min = cfg->min_version == PB_TLS_1_2 ? TLS1_2_VERSION : TLS1_3_VERSION;
  if (!SSL_CTX_set_min_proto_version(ctx->ssl, min) ||
      !SSL_CTX_set_max_proto_version(ctx->ssl, TLS1_3_VERSION)) {
    pb__tls_err_text(why, sizeof(why), "unknown error");
    e = ctx_fail(errbuf, errlen, CAIRN_E_TLS, "cannot restrict the TLS versions: %s", why);
    goto out_free;
  }
  if (min == TLS1_2_VERSION) {
    /* the opt-in keeps 1.2 to what 1.3 guarantees: forward secrecy and AEAD
     * ciphers; no renegotiation */
    if (SSL_CTX_set_cipher_list(ctx->ssl, TLS12_CIPHERS) != 1) {
      pb__tls_err_text(why, sizeof(why), "unknown error");
      e = ctx_fail(errbuf, errlen, CAIRN_E_TLS, "cannot set the TLS 1.2 ciphers: %s", why);
      goto out_free;
    }
    SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  }
  /* Idle connections give their 34 KiB of record buffers back. */
  SSL_CTX_set_mode(ctx->ssl, SSL_MODE_RELEASE_BUFFERS);

  if (cfg->cert_file) {
    e = ctx_check_file("certificate", cfg->cert_file, errbuf, errlen);
    if (e) goto out_free;
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cfg->cert_file) != 1) {
      pb__tls_err_text(why, sizeof(why), "unknown error");
      e = ctx_fail(errbuf, errlen, CAIRN_E_CONFIG, "cannot load certificate %s: %s",
                   cfg->cert_file, why);
      goto out_free;
    }
    EVP_PKEY *pkey = NULL;
    e = key_load(cfg->key_file, &pkey, errbuf, errlen);
    if (e) goto out_free;
    int used = SSL_CTX_use_PrivateKey(ctx->ssl, pkey);
    EVP_PKEY_free(pkey);
    if (used != 1) {
      bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
      pb__tls_err_text(why, sizeof(why), "unknown error");
      if (mismatch)
        e = ctx_fail(errbuf, errlen, CAIRN_E_CONFIG,
                     "private key %s does not match certificate %s: %s", cfg->key_file,
                     cfg->cert_file, why);
      else
        e = ctx_fail(errbuf, errlen, CAIRN_E_CONFIG, "cannot load private key %s: %s",
                     cfg->key_file, why);
      goto out_free;
    }
    if (SSL_CTX_check_private_key(ctx->ssl) != 1) {
      pb__tls_err_text(why, sizeof(why), "unknown error");
      e = ctx_fail(errbuf, errlen, CAIRN_E_CONFIG,
                   "private key %s does not match certificate %s: %s", cfg->key_file,
                   cfg->cert_file, why);
      goto out_free;
    }
  }

  e = ctx_check_file("CA file", cfg->ca_file, errbuf, errlen);
  if (e) goto out_free;
  if (SSL_CTX_load_verify_locations(ctx->ssl, cfg->ca_file, NULL) != 1) {
    pb__tls_err_text(why, sizeof(why), "unknown error");
    e = ctx_fail(errbuf, errlen, CAIRN_E_CONFIG, "cannot load CA file %s: %s", cfg->ca_file, why);
    goto out_free;
  }

  if (cfg->server) {
    SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* Tell clients which CAs we accept (CertificateRequest). */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
    if (names) SSL_CTX_set_client_CA_list(ctx->ssl, names);
    static const unsigned char sid_ctx[] = "cairn";
    SSL_CTX_set_session_id_context(ctx->ssl, sid_ctx, sizeof(sid_ctx) - 1);
  } else {
    SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
  }
  ERR_clear_error();
  *out = ctx;
  return CAIRN_OK;

out_free:
  pb_tls_ctx_free(ctx);
  return e;
}

void pb_tls_ctx_free(pb_tls_ctx *ctx) {
  if (!ctx) return;
  SSL_CTX_free(ctx->ssl);
  free(ctx);
}

void pb__cert_cn(X509 *cert, char *out, size_t outlen) {
  out[0] = '\0';
  if (!cert || outlen == 0) return;
  X509_NAME *subj = X509_get_subject_name(cert);
  int idx = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
  if (idx < 0) return;
  ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
  unsigned char *utf8 = NULL;
  int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return;
  if ((size_t)n < outlen && memchr(utf8, '\0', (size_t)n) == NULL) {
    memcpy(out, utf8, (size_t)n);
    out[n] = '\0';
  }
  OPENSSL_free(utf8);
}

bool pb__cert_has_name(X509 *cert, const char *name) {
  if (!cert || !name || !*name) return false;
  size_t nlen = strlen(name);
  bool found = false, any_dns = false;
  GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
    if (gn->type != GEN_DNS) continue;
    any_dns = true;
    const ASN1_IA5STRING *s = gn->d.dNSName;
    if ((size_t)ASN1_STRING_length(s) == nlen &&
        strncasecmp((const char *)ASN1_STRING_get0_data(s), name, nlen) == 0)
      found = true;
  }
  GENERAL_NAMES_free(sans);
  if (any_dns) return found;
  char cn[256];
  pb__cert_cn(cert, cn, sizeof(cn));
  return cn[0] && strcasecmp(cn, name) == 0;
}

void pb_tls_ctx_describe(const pb_tls_ctx *ctx, char *buf, size_t len) {
  X509 *cert = ctx ? SSL_CTX_get0_certificate(ctx->ssl) : NULL;
  if (!cert) {
    snprintf(buf, len, "no certificate");
    return;
  }
  char cn[256], serial[80] = "?", expires[64] = "?";
  pb__cert_cn(cert, cn, sizeof(cn));
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  if (hex) snprintf(serial, sizeof(serial), "%s", hex);
  OPENSSL_free(hex);
  BN_free(bn);
  struct tm tm;
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
    strftime(expires, sizeof(expires), "%Y-%m-%d %H:%M:%S UTC", &tm);
  ERR_clear_error();
  snprintf(buf, len, "subject CN=%s, serial %s, expires %s", cn, serial, expires);
}

/* ---- asynchronous load (reload on SIGHUP) ---- */

typedef struct ctx_load {
  uv_work_t req;
  pb_tls_config cfg; /* strings point into the copies below */
  char *cert, *key, *ca; /* owned copies */
  pb_tls_load_cb cb;
  void *ud;
  pb_tls_ctx *fresh; /* result */
  cairn_err e;
  char err[512];
} ctx_load;

static char *dup_or_null(const char *s, bool *fail) {
  if (!s) return NULL;
  char *d = strdup(s);
  if (!d) *fail = true;
  return d;
}

static void ctx_load_free(ctx_load *l) {
  free(l->cert);
  free(l->key);
  free(l->ca);
  free(l);
}

static void ctx_load_work(uv_work_t *req) {
  ctx_load *l = req->data;
  l->e = pb_tls_ctx_new(&l->cfg, &l->fresh, l->err, sizeof(l->err));
}

static void ctx_load_after(uv_work_t *req, int status) {
  ctx_load *l = req->data;
  if (status == UV_ECANCELED && l->e == CAIRN_OK && !l->fresh) {
    l->e = CAIRN_E_CLOSED;
    snprintf(l->err, sizeof(l->err), "reload cancelled");
  }
  l->cb(l->fresh, l->e, l->err, l->ud);
  ctx_load_free(l);
}

cairn_err pb_tls_ctx_load_async(uv_loop_t *loop, const pb_tls_config *cfg, pb_tls_load_cb cb,
                                void *ud) {
  if (!loop || !cfg || !cb) return CAIRN_E_INVAL;
  ctx_load *l = calloc(1, sizeof(*l));
  if (!l) return CAIRN_E_NOMEM;
  bool fail = false;
  l->cert = dup_or_null(cfg->cert_file, &fail);
  l->key = dup_or_null(cfg->key_file, &fail);
  l->ca = dup_or_null(cfg->ca_file, &fail);
  if (fail) {
    ctx_load_free(l);
    return CAIRN_E_NOMEM;
  }
  l->cfg = *cfg;
  l->cfg.cert_file = l->cert;
  l->cfg.key_file = l->key;
  l->cfg.ca_file = l->ca;
  l->cb = cb;
  l->ud = ud;
  l->req.data = l;
  if (uv_queue_work(loop, &l->req, ctx_load_work, ctx_load_after) != 0) {
    ctx_load_free(l);
    return CAIRN_E_INVAL;
  }
  return CAIRN_OK;
}
