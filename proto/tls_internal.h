/* proto/tls_internal.h: declarations shared by proto/tls.c (connections) and
 * proto/tls_ctx.c (contexts, certificate names). Private to proto/.
 */
#ifndef CAIRN_PROTO_TLS_INTERNAL_H
#define CAIRN_PROTO_TLS_INTERNAL_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/tls.h"

struct pb_tls_ctx {
  SSL_CTX *ssl;  /* owned; every SSL made from it holds its own reference */
  bool server;   /* accept side */
  uint32_t handshake_timeout_ms; /* copied into each connection */
};

/* Write the most specific reason from this thread's OpenSSL error queue into
 * buf (e.g. "peer did not return a certificate"), or fallback when the queue
 * is empty, then clear the queue. */
void pb__tls_err_text(char *buf, size_t len, const char *fallback);

/* Subject CN of cert as UTF-8 into out ("" when absent, not representable or
 * containing a NUL byte). */
void pb__cert_cn(X509 *cert, char *out, size_t outlen);

/* Does cert cover name: exact case-insensitive match with a DNS SAN, or with
 * the CN when the certificate has no DNS SAN at all. No wildcards. */
bool pb__cert_has_name(X509 *cert, const char *name);

#endif
