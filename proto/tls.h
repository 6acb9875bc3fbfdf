/* proto/tls.h: framed TLS 1.3 connections over libuv, used by both daemons.
 *
 * OpenSSL runs over memory BIOs fed from uv_read callbacks, so no call ever
 * blocks the loop. A pb_conn delivers whole frame bodies (see proto.h) to its
 * frame callback and sends frames queued with pb_conn_send.
 *
 * Caveats:
 *  - All functions must be called on the loop thread that owns the connection.
 *  - pb_conn_close() is asynchronous: the close callback runs exactly once,
 *    later, and only then may the user free what it attached (ud). The conn
 *    never frees or touches ud itself; the pb_conn is freed right after
 *    on_close returns, so drop every pointer to it there.
 *  - on_close also runs (exactly once) for connections that never got ready:
 *    connect refused, handshake failed or timed out. It is never called from
 *    inside a pb_conn_* call, always from a later loop callback.
 *  - Frame bodies passed to on_frame are borrowed: valid only during the call.
 *    One socket read can carry many frames: on_frame is called once per frame,
 *    several times in a row. Inside on_frame you may call pb_conn_send,
 *    pb_conn_read_stop/start and pb_conn_close; after pb_conn_read_stop or
 *    pb_conn_close no further on_frame call is made (frames already received
 *    stay buffered and are delivered after pb_conn_read_start, from a timer).
 *  - Mutual TLS is always required; the server rejects clients without a
 *    certificate signed by the CA, the client rejects servers likewise.
 *  - TLS 1.3 completes the client's handshake before the server has checked
 *    the client certificate: a client the server refuses still gets on_ready,
 *    then on_close with CAIRN_E_TLS (reason e.g. "tlsv13 alert certificate
 *    required"). The server side never gets on_ready for it.
 *  - libuv writes with write(2): the process must ignore SIGPIPE
 *    (signal(SIGPIPE, SIG_IGN) in main), this module does not touch signals.
 */
#ifndef CAIRN_PROTO_TLS_H
#define CAIRN_PROTO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "proto/proto.h"

typedef struct pb_tls_ctx pb_tls_ctx;
typedef struct pb_conn pb_conn;

/* Connection timings and the drain threshold. */
#define PB_CONN_HANDSHAKE_TIMEOUT_MS 10000u /* default connect + handshake deadline */
#define PB_CONN_LINGER_MS 5000u             /* pb_conn_close: max wait to flush writes */
#define PB_CONN_LOW_WATER (256u << 10)      /* on_drain threshold, bytes */

/* pb_tls_config.min_version values. */
#define PB_TLS_1_3 0u  /* default: TLS 1.3 only */
#define PB_TLS_1_2 12u /* explicit opt-in: TLS 1.2 (ECDHE + AEAD suites only) or 1.3 */

typedef struct pb_tls_config {
  const char *cert_file; /* PEM certificate (chain) of this end */
  const char *key_file;  /* PEM private key; refused when group/others can read it */
  const char *ca_file;   /* PEM CA bundle that signs the peer */
  bool server;           /* true: accept side (requires client certs) */
  /* added later; positional initialisers of the four fields above leave
   * these 0 = the defaults */
  unsigned min_version;          /* PB_TLS_1_3 (0) or PB_TLS_1_2 */
  uint32_t handshake_timeout_ms; /* connect + handshake deadline of every
                                    connection made from the context;
                                    0 = PB_CONN_HANDSHAKE_TIMEOUT_MS */
} pb_tls_config;

/* Create a TLS context (TLS 1.3 only unless min_version says 1.2, peer
 * verification required). The strings in cfg are only read during the call.
 * A client context may leave cert_file and key_file both NULL (no client
 * certificate: every cairn server refuses it; for tests and diagnostics); a
 * server needs both. The key is read from the descriptor whose mode was
 * checked (common/fsperm.h).
 * Errors: CAIRN_E_CONFIG (file missing, unreadable, not PEM, key not matching
 * the certificate, bad min_version), CAIRN_E_PERM (key file accessible by
 * group or others; errbuf says "chmod 600 FILE"), CAIRN_E_TLS, CAIRN_E_NOMEM;
 * errbuf (may be NULL) gets a one-line reason naming the file and the
 * OpenSSL reason. */
CAIRN_MUST_CHECK cairn_err pb_tls_ctx_new(const pb_tls_config *cfg, pb_tls_ctx **out,
                                          char *errbuf, size_t errlen);
/* NULL is fine. Connections hold their own reference to the OpenSSL context
 * (and copied the handshake timeout), so this may run while connections made
 * from ctx are still open: they keep working with the old certificate until
 * they close, and the OpenSSL context is released with the last of them.
 * This is how a reload swaps contexts (pb_tls_ctx_load_async). */
void pb_tls_ctx_free(pb_tls_ctx *ctx);

/* One line describing this end's certificate for logs, e.g.
 * "subject CN=localhost, serial 5A1F..., expires 2025-03-01 12:00:00 UTC";
 * "no certificate" for a client context without one. */
void pb_tls_ctx_describe(const pb_tls_ctx *ctx, char *buf, size_t len);

/* Result of pb_tls_ctx_load_async: fresh is the new context (owned by the
 * callee now) on CAIRN_OK, NULL otherwise; err is the one-line reason of
 * pb_tls_ctx_new (valid during the call). */
typedef void (*pb_tls_load_cb)(pb_tls_ctx *fresh, cairn_err e, const char *err, void *ud);

/* Build a context from cfg on the libuv thread pool (file reads and key
 * parsing stay off the loop), for reloading certificates on SIGHUP. cfg and
 * its strings are copied. cb runs exactly once on loop's thread after this
 * returned CAIRN_OK, also while the loop shuts down (a loop with a load in
 * flight stays alive until cb ran). CAIRN_E_NOMEM or CAIRN_E_INVAL (no
 * callback then). Loop thread only. */
CAIRN_MUST_CHECK cairn_err pb_tls_ctx_load_async(uv_loop_t *loop, const pb_tls_config *cfg,
                                                 pb_tls_load_cb cb, void *ud);

typedef struct pb_conn_cbs {
  /* Optional: the handshake succeeded and the peer certificate verified;
   * pb_conn_identity is valid from now on. Called at most once and only on
   * success (a failed handshake goes straight to on_close). */
  void (*on_ready)(pb_conn *c, void *ud);
  /* Required: one complete frame body arrived (see the caveats above). Return
   * CAIRN_OK to continue; any error closes the connection (pending writes are
   * flushed first) and on_close gets that error with reason
   * "frame handler failed: <cairn_err_str>". */
  cairn_err (*on_frame)(pb_conn *c, const uint8_t *body, size_t len, void *ud);
  /* Required: called exactly once when the connection is fully closed. why is
   * the value given to pb_conn_close for a local close, CAIRN_E_CLOSED for a
   * clean peer close, or the error: CAIRN_E_IO (connect/read/write failed),
   * CAIRN_E_TLS (handshake or record failure; reason names the peer and the
   * OpenSSL reason), CAIRN_E_TIMEOUT (handshake deadline, counted from
   * accept / connect however slowly the peer trickles bytes), CAIRN_E_LIMIT
   * ("frame of N bytes exceeds limit M"), CAIRN_E_PROTO (peer closed in the
   * middle of a frame), CAIRN_E_NOMEM. reason is a short human text (valid
   * during the call). */
  void (*on_close)(pb_conn *c, cairn_err why, const char *reason, void *ud);
  /* Optional: pb_conn_write_pending() went from >= PB_CONN_LOW_WATER to below
   * it. Use a high-water mark >= PB_CONN_LOW_WATER for pausing producers. */
  void (*on_drain)(pb_conn *c, void *ud);
} pb_conn_cbs;

/* Accept a pending connection on server (a listening uv_tcp_t, call from its
 * connection callback) and start the TLS handshake. ctx must be a server
 * context. max_frame is the largest frame body accepted from the peer (0 =
 * PB_DEFAULT_MAX_FRAME). cbs is copied; ud is handed to every callback and
 * stays the caller's. CAIRN_E_NOMEM, CAIRN_E_INVAL or CAIRN_E_IO (nothing to
 * close then, no callback will run; the loop must still run to release it). */
CAIRN_MUST_CHECK cairn_err pb_conn_accept(uv_stream_t *server, pb_tls_ctx *ctx, uint32_t max_frame,
                                          const pb_conn_cbs *cbs, void *ud, pb_conn **out);

/* Connect to addr (numeric IPv4/IPv6 sockaddr) and start the handshake as a
 * client (non-blocking: uv_tcp_connect). ctx must be a client context.
 * server_name is checked against the server certificate when non-NULL: a DNS
 * name against DNS SANs (and sent as SNI), an IP literal against IP SANs.
 * max_frame, cbs, ud as for pb_conn_accept. Errors are reported via on_close
 * (after this returned CAIRN_OK), including connect failures and the
 * handshake deadline (pb_tls_config.handshake_timeout_ms); an immediate error return
 * (CAIRN_E_NOMEM, CAIRN_E_INVAL, CAIRN_E_IO) means nothing was started. */
CAIRN_MUST_CHECK cairn_err pb_conn_connect(uv_loop_t *loop, const struct sockaddr *addr,
                                           const char *server_name, pb_tls_ctx *ctx,
                                           uint32_t max_frame, const pb_conn_cbs *cbs, void *ud,
                                           pb_conn **out);

/* Queue one frame body (the 4-byte header is added here; the bytes are
 * copied, body is borrowed for the call only). May be called before on_ready
 * (kept until the handshake completes) and from inside any callback. Nothing
 * limits the queue: watch pb_conn_write_pending. CAIRN_E_CLOSED after close
 * started; CAIRN_E_INVAL for len 0 (receivers reject empty frames);
 * CAIRN_E_LIMIT over 4 GiB; CAIRN_E_NOMEM, CAIRN_E_TLS or CAIRN_E_IO mean the
 * connection is now closing (on_close follows). */
CAIRN_MUST_CHECK cairn_err pb_conn_send(pb_conn *c, const uint8_t *body, size_t len);

/* Pack env and queue it as one frame, without an intermediate copy (the
 * usual way to send: pack straight into the connection's buffer). Same rules
 * and errors as pb_conn_send; CAIRN_E_INVAL when env has no message set. */
CAIRN_MUST_CHECK cairn_err pb_conn_send_envelope(pb_conn *c, const Cairn__Envelope *env);

/* Close (idempotent: the first reason wins). Writes already queued are
 * flushed and a TLS close_notify is sent, for at most PB_CONN_LINGER_MS; then
 * the socket is closed and on_close(c, why, reason) runs from a later loop
 * callback. reason is copied (NULL = cairn_err_str(why)). */
void pb_conn_close(pb_conn *c, cairn_err why, const char *reason);

/* Stop / resume reading from the socket (backpressure). Effective at once:
 * no on_frame call after read_stop returns until read_start. Frames already
 * decrypted are delivered after read_start from a zero timer, never from
 * inside pb_conn_read_start. The handshake keeps reading while stopped. */
void pb_conn_read_stop(pb_conn *c);
void pb_conn_read_start(pb_conn *c);

/* "127.0.0.1:54321". Valid for the connection's life. */
const char *pb_conn_peer(const pb_conn *c);

/* Peer certificate identity after the handshake: the subject CN (or "" if
 * none). Valid for the connection's life. */
const char *pb_conn_identity(const pb_conn *c);

/* Does the peer certificate cover name? True if name equals a DNS SAN entry
 * (exact, case-insensitive, no wildcards) or, when the cert has no DNS SANs,
 * the CN. False before the handshake completed. */
bool pb_conn_peer_has_name(const pb_conn *c, const char *name);

/* Bytes queued for writing but not yet written to the socket (plaintext
 * waiting for the handshake plus TLS records handed to libuv). */
size_t pb_conn_write_pending(const pb_conn *c);

/* The loop the connection lives on. */
uv_loop_t *pb_conn_loop(const pb_conn *c);

#endif
