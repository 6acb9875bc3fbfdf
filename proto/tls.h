/* proto/tls.h: framed TLS 1.3 connections over libuv, used by both daemons.
 *
 * OpenSSL runs over memory BIOs fed from uv_read callbacks, so no call ever
 * blocks the loop. A pb_conn delivers whole frame bodies (see proto.h) to its
 * frame callback and sends frames queued with pb_conn_send.
 *
 * Caveats:
 *  - All functions must be called on the loop thread that owns the connection.
 *  - pb_conn_close() is asynchronous: the close callback runs exactly once,
 *    later, and only then may the user free what it attached (ud).
 *  - Frame bodies passed to on_frame are borrowed: valid only during the call.
 *  - Mutual TLS is always required; the server rejects clients without a
 *    certificate signed by the CA, the client rejects servers likewise.
 */
#ifndef CAIRN_PROTO_TLS_H
#define CAIRN_PROTO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"

typedef struct pb_tls_ctx pb_tls_ctx;
typedef struct pb_conn pb_conn;

typedef struct pb_tls_config {
  const char *cert_file; /* PEM certificate (chain) of this end */
  const char *key_file;  /* PEM private key */
  const char *ca_file;   /* PEM CA bundle that signs the peer */
  bool server;           /* true: accept side (requires client certs) */
} pb_tls_config;

/* Create a TLS context (TLS 1.3 only, peer verification required).
 * Errors: CAIRN_E_CONFIG (file missing or not
 * matching), CAIRN_E_TLS; errbuf gets a one-line reason naming the file. */
CAIRN_MUST_CHECK cairn_err pb_tls_ctx_new(const pb_tls_config *cfg, pb_tls_ctx **out,
                                          char *errbuf, size_t errlen);
void pb_tls_ctx_free(pb_tls_ctx *ctx); /* NULL is fine; after all its conns closed */

typedef struct pb_conn_cbs {
  /* Handshake finished (err == CAIRN_OK) or failed (then on_close follows). */
  void (*on_ready)(pb_conn *c, void *ud);
  /* One complete frame body arrived. Return CAIRN_OK to continue; any error
   * closes the connection with that reason. */
  cairn_err (*on_frame)(pb_conn *c, const uint8_t *body, size_t len, void *ud);
  /* Called exactly once when the connection is fully closed. why is CAIRN_OK
   * for a local close, CAIRN_E_CLOSED for a clean peer close, or the error;
   * reason is a short human text (valid during the call). */
  void (*on_close)(pb_conn *c, cairn_err why, const char *reason, void *ud);
  /* Optional: the write queue drained below the low-water mark. */
  void (*on_drain)(pb_conn *c, void *ud);
} pb_conn_cbs;

/* Accept a pending connection on server (a listening uv_tcp_t) and start the
 * TLS handshake. CAIRN_E_NOMEM or CAIRN_E_IO (nothing to close then). */
CAIRN_MUST_CHECK cairn_err pb_conn_accept(uv_stream_t *server, pb_tls_ctx *ctx, uint32_t max_frame,
                                          const pb_conn_cbs *cbs, void *ud, pb_conn **out);

/* Connect to addr (numeric IPv4/IPv6 sockaddr) and start the handshake as a
 * client. server_name is checked against the server certificate (SAN/CN) when
 * non-NULL. Errors are reported via on_close (after this returned CAIRN_OK);
 * an immediate error return means nothing was started. */
CAIRN_MUST_CHECK cairn_err pb_conn_connect(uv_loop_t *loop, const struct sockaddr *addr,
                                           const char *server_name, pb_tls_ctx *ctx,
                                           uint32_t max_frame, const pb_conn_cbs *cbs, void *ud,
                                           pb_conn **out);

/* Queue one frame body (the 4-byte header is added here; the bytes are
 * copied). CAIRN_E_CLOSED after close started; CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err pb_conn_send(pb_conn *c, const uint8_t *body, size_t len);

/* Close (idempotent). reason is logged by the owner via on_close. */
void pb_conn_close(pb_conn *c, cairn_err why, const char *reason);

/* Stop / resume reading from the socket (backpressure). */
void pb_conn_read_stop(pb_conn *c);
void pb_conn_read_start(pb_conn *c);

/* "127.0.0.1:54321". Valid for the connection's life. */
const char *pb_conn_peer(const pb_conn *c);

/* Peer certificate identity after the handshake: the subject CN (or "" if
 * none). Valid for the connection's life. */
const char *pb_conn_identity(const pb_conn *c);

/* Does the peer certificate cover name? True if name equals a DNS SAN entry
 * (or, when the cert has no DNS SANs, the CN). */
bool pb_conn_peer_has_name(const pb_conn *c, const char *name);

/* Bytes queued for writing but not yet written to the socket. */
size_t pb_conn_write_pending(const pb_conn *c);

/* The loop the connection lives on. */
uv_loop_t *pb_conn_loop(const pb_conn *c);

#endif
