/* proto/tls_ctx.c: TLS contexts (TLS 1.3 only, mutual verification) and the
 * certificate name helpers behind pb_conn_identity / pb_conn_peer_has_name.
 * Every OpenSSL failure is turned into a cairn_err here, with the OpenSSL
 * reason and the offending file kept in the caller's errbuf.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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

  pb_tls_ctx *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) return ctx_fail(errbuf, errlen, CAIRN_E_NOMEM, "out of memory");
  ctx->server = cfg->server;
  ERR_clear_error();
  ctx->ssl = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
  if (!ctx->ssl) {
    pb__tls_err_text(why, sizeof(why), "unknown error");
    e = ctx_fail(errbuf, errlen, CAIRN_E_TLS, "cannot create TLS context: %s", why);
    goto out_free;
  }
  if (!SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx->ssl, TLS1_3_VERSION)) {
    pb__tls_err_text(why, sizeof(why), "unknown error");
    e = ctx_fail(errbuf, errlen, CAIRN_E_TLS, "cannot restrict TLS to version 1.3: %s", why);
    goto out_free;
  }
  /* Idle connections give their 34 KiB of record buffers back. */
  SSL_CTX_set_mode(ctx->ssl, SSL_MODE_RELEASE_BUFFERS);

  if (cfg->cert_file) {
    e = ctx_check_file("certificate", cfg->cert_file, errbuf, errlen);
    if (e) goto out_free;
    e = ctx_check_file("private key", cfg->key_file, errbuf, errlen);
    if (e) goto out_free;
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cfg->cert_file) != 1) {
      pb__tls_err_text(why, sizeof(why), "unknown error");
      e = ctx_fail(errbuf, errlen, CAIRN_E_CONFIG, "cannot load certificate %s: %s",
                   cfg->cert_file, why);
      goto out_free;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx->ssl, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
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
