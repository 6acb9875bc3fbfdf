/* proto/tls.c: one framed TLS 1.3 connection on a uv_tcp_t.
 * OpenSSL never sees the socket: ciphertext read by libuv is pushed into a
 * memory BIO, and whatever OpenSSL writes into the other memory BIO is handed
 * to uv_write, so no OpenSSL call can block the loop. Each pb_conn owns two
 * handles (tcp, timer) and frees itself when the second close callback ran.
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/tls_internal.h"

/* Bytes of plaintext asked from SSL_read at a time. */
#define CONN_READ_CHUNK (16u << 10)
/* A frame at least this big is written as two TLS writes (header, body)
 * instead of being copied behind its header. */
#define CONN_COPY_MAX (16u << 10)
/* Receive/queue buffers larger than this are released once empty. */
#define CONN_KEEP_BUF (1u << 20)
/* Largest single uv_write (BIO_read and uv_buf_t take int/unsigned). */
#define CONN_WRITE_MAX (1u << 30)

struct pb_conn {
  uv_tcp_t tcp;           /* handle; data = this */
  uv_timer_t timer;       /* handle; handshake deadline, deferred delivery, linger */
  uv_connect_t connect;   /* client only */
  uv_shutdown_t shutdown; /* graceful close */
  uv_loop_t *loop;        /* borrowed */
  SSL *ssl;               /* owned; owns both BIOs */
  BIO *net_in;            /* ciphertext from the socket, read by OpenSSL */
  BIO *net_out;           /* ciphertext written by OpenSSL, sent with uv_write */
  pb_conn_cbs cbs;        /* copy */
  void *ud;               /* the user's, never touched */
  uint32_t max_frame;     /* bytes, largest frame body accepted */
  uint32_t handshake_ms;  /* connect + handshake deadline, from the context */
  cairn_buf rx;           /* owned: decrypted bytes not yet delivered as frames */
  cairn_buf tx_plain;     /* owned: frames queued before the handshake; scratch after */
  size_t inflight;        /* bytes of ciphertext in uv_write requests */
  int handles;            /* handles still open (tcp, timer) */
  bool client;
  bool connected;         /* TCP established */
  bool reading;           /* uv_read_start in effect */
  bool paused;            /* user called pb_conn_read_stop */
  bool ready;             /* handshake completed and verified */
  bool ssl_failed;        /* fatal TLS error: no SSL_shutdown */
  bool peer_eof;          /* peer sent close_notify or TCP EOF */
  bool closing;           /* close started; no more sends, reads or frames */
  bool handles_closing;   /* uv_close issued */
  bool silent;            /* failed inside accept/connect: no on_close */
  bool drain_armed;       /* pending went >= PB_CONN_LOW_WATER since the last on_drain */
  cairn_err why;          /* close reason code */
  char reason[320];       /* close reason text */
  char peer[INET6_ADDRSTRLEN + 8];
  char identity[256];     /* peer certificate CN */
  X509 *peer_cert;        /* owned, after the handshake */
  char rdbuf[64 << 10];   /* libuv read buffer, consumed within each read callback */
};

typedef struct conn_write {
  uv_write_t req;
  pb_conn *conn;
  size_t len;
  uint8_t data[];
} conn_write;

static void conn_close(pb_conn *c, cairn_err why, bool flush, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conn_deliver(pb_conn *c);

/* ---- teardown ---- */

/* Second stage of every close: one close callback per open handle; the last
 * one reports and frees. */
static void conn_handle_closed(uv_handle_t *h) {
  pb_conn *c = h->data;
  if (--c->handles > 0) return;
  if (!c->silent) c->cbs.on_close(c, c->why, c->reason, c->ud);
  X509_free(c->peer_cert);
  SSL_free(c->ssl);
  cairn_buf_fini(&c->rx);
  cairn_buf_fini(&c->tx_plain);
  free(c);
}

/* Close both handles (once). Pending write/shutdown/connect requests are
 * cancelled by libuv and call back before the close callbacks. */
static void conn_close_handles(pb_conn *c) {
  if (c->handles_closing) return;
  c->handles_closing = true;
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status) {
  (void)status;
  conn_close_handles(req->handle->data);
}

/* ---- writing ---- */

static size_t conn_pending(const pb_conn *c) { return c->inflight + c->tx_plain.len; }

static void conn_write_cb(uv_write_t *req, int status) {
  conn_write *w = (conn_write *)req;
  pb_conn *c = w->conn;
  c->inflight -= w->len;
  free(w);
  if (status < 0) {
    if (!c->closing)
      conn_close(c, CAIRN_E_IO, false, "write to %s failed: %s", c->peer, uv_strerror(status));
    return;
  }
  if (c->drain_armed && !c->closing && conn_pending(c) < PB_CONN_LOW_WATER) {
    c->drain_armed = false;
    if (c->cbs.on_drain) c->cbs.on_drain(c, c->ud);
  }
}

/* Move n bytes OpenSSL wrote into net_out to one uv_write request. Errors
 * close the connection (unless it is closing already) and are returned. */
static cairn_err conn_flush_some(pb_conn *c, size_t n) {
  conn_write *w = malloc(sizeof(*w) + n);
  if (!w) {
    if (!c->closing)
      conn_close(c, CAIRN_E_NOMEM, false, "no memory to send %zu bytes to %s", n, c->peer);
    return CAIRN_E_NOMEM;
  }
  w->conn = c;
  w->len = n;
  int got = BIO_read(c->net_out, w->data, (int)n);
  if (got != (int)n) {
    free(w);
    if (!c->closing) conn_close(c, CAIRN_E_TLS, false, "TLS write buffer to %s broke", c->peer);
    return CAIRN_E_TLS;
  }
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
  int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
  if (r < 0) {
    free(w);
    if (!c->closing)
      conn_close(c, CAIRN_E_IO, false, "write to %s failed: %s", c->peer, uv_strerror(r));
    return CAIRN_E_IO;
  }
  c->inflight += n;
  if (conn_pending(c) >= PB_CONN_LOW_WATER) c->drain_armed = true;
  return CAIRN_OK;
}

/* Hand everything OpenSSL wrote into net_out to libuv. */
static cairn_err conn_flush(pb_conn *c) {
  size_t n;
  while ((n = BIO_ctrl_pending(c->net_out)) > 0) {
    if (n > CONN_WRITE_MAX) n = CONN_WRITE_MAX;
    cairn_err e = conn_flush_some(c, n);
    if (e) return e;
  }
  return CAIRN_OK;
}

/* Encrypt len bytes into net_out. With memory BIOs SSL_write_ex never
 * returns a partial write or WANT_WRITE: it either takes all or fails. */
static cairn_err conn_encrypt(pb_conn *c, const void *p, size_t len) {
  size_t done = 0;
  ERR_clear_error();
  if (SSL_write_ex(c->ssl, p, len, &done) == 1 && done == len) return CAIRN_OK;
  char why[200];
  pb__tls_err_text(why, sizeof(why), "SSL_write failed");
  c->ssl_failed = true;
  conn_close(c, CAIRN_E_TLS, false, "TLS write to %s failed: %s", c->peer, why);
  return CAIRN_E_TLS;
}

/* ---- reading ---- */

/* Reason text for a fatal SSL error, with the certificate verification
 * result when that is what failed. */
static void conn_ssl_reason(pb_conn *c, char *buf, size_t len) {
  char why[200];
  pb__tls_err_text(why, sizeof(why), "unexpected TLS failure");
  long vr = SSL_get_verify_result(c->ssl);
  if (vr != X509_V_OK)
    snprintf(buf, len, "%s (%s)", why, X509_verify_cert_error_string(vr));
  else
    snprintf(buf, len, "%s", why);
}

/* The handshake just completed: keep the peer certificate, tell the user,
 * and send what was queued meanwhile. false if the connection is closing. */
static bool conn_ready(pb_conn *c) {
  c->ready = true;
  uv_timer_stop(&c->timer);
  c->peer_cert = SSL_get1_peer_certificate(c->ssl);
  pb__cert_cn(c->peer_cert, c->identity, sizeof(c->identity));
  if (c->paused && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
  if (c->tx_plain.len) {
    /* frames queued before the handshake go out before anything on_ready sends */
    cairn_err e = conn_encrypt(c, c->tx_plain.ptr, c->tx_plain.len);
    cairn_buf_reset(&c->tx_plain);
    if (c->tx_plain.cap > CONN_KEEP_BUF) cairn_buf_fini(&c->tx_plain);
    if (e) return false;
    if (conn_flush(c)) return false;
  }
  if (c->cbs.on_ready) c->cbs.on_ready(c, c->ud);
  return !c->closing;
}

/* Drive the handshake with whatever ciphertext arrived. true once it is done
 * and the connection is usable; false while in progress or after failure. */
static bool conn_handshake(pb_conn *c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
  if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ) {
    char why[260];
    conn_ssl_reason(c, why, sizeof(why));
    c->ssl_failed = true;
    /* flush: the alert tells the peer why */
    (void)conn_flush(c);
    conn_close(c, CAIRN_E_TLS, true, "TLS handshake with %s failed: %s", c->peer, why);
    return false;
  }
  if (conn_flush(c)) return false;
  if (err == SSL_ERROR_WANT_READ) return false;
  return conn_ready(c);
}

/* Decrypt everything net_in holds into rx. false if the connection closed. */
static bool conn_decrypt(pb_conn *c) {
  for (;;) {
    if (cairn_buf_reserve(&c->rx, CONN_READ_CHUNK)) {
      conn_close(c, CAIRN_E_NOMEM, false, "no memory to receive from %s", c->peer);
      return false;
    }
    size_t got = 0;
    ERR_clear_error();
    int r = SSL_read_ex(c->ssl, c->rx.ptr + c->rx.len, c->rx.cap - c->rx.len, &got);
    if (r == 1) {
      c->rx.len += got;
      continue;
    }
    int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      c->peer_eof = true;
      break;
    }
    char why[260];
    conn_ssl_reason(c, why, sizeof(why));
    c->ssl_failed = true;
    conn_close(c, CAIRN_E_TLS, false, "TLS error on connection with %s: %s", c->peer, why);
    return false;
  }
  /* Post-handshake messages (tickets, key updates) may need an answer. */
  return conn_flush(c) == CAIRN_OK;
}

/* The peer finished sending: close once every buffered frame went out. */
static void conn_check_eof(pb_conn *c) {
  if (!c->peer_eof || c->closing || c->paused) return;
  if (c->rx.len)
    conn_close(c, CAIRN_E_PROTO, true,
               "%s closed the connection in the middle of a frame (%zu bytes buffered)", c->peer,
               c->rx.len);
  else
    conn_close(c, CAIRN_E_CLOSED, true, "%s closed the connection", c->peer);
}

/* Hand every complete frame in rx to on_frame, unless paused or closing. */
static void conn_deliver(pb_conn *c) {
  size_t off = 0;
  while (!c->closing && !c->paused) {
    const uint8_t *body = NULL;
    size_t blen = 0, used = 0;
    cairn_err e =
        pb_frame_peek(c->rx.ptr + off, c->rx.len - off, c->max_frame, &body, &blen, &used);
    if (e == CAIRN_E_AGAIN) break;
    if (e) {
      if (blen == 0)
        conn_close(c, CAIRN_E_LIMIT, false, "empty frame from %s", c->peer);
      else
        conn_close(c, CAIRN_E_LIMIT, false, "frame of %zu bytes exceeds limit %u from %s", blen,
                   c->max_frame, c->peer);
      return;
    }
    e = c->cbs.on_frame(c, body, blen, c->ud);
    off += used;
    if (e) {
      conn_close(c, e, true, "frame handler failed: %s", cairn_err_str(e));
      return;
    }
  }
  if (!c->closing) {
    cairn_buf_consume(&c->rx, off);
    /* one big frame should not pin its buffer for the connection's life */
    if (c->rx.len == 0 && c->rx.cap > CONN_KEEP_BUF) cairn_buf_fini(&c->rx);
  }
  conn_check_eof(c);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  pb_conn *c = h->data;
  *buf = uv_buf_init(c->rdbuf, sizeof(c->rdbuf));
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  pb_conn *c = s->data;
  if (nread == 0) return;
  if (c->closing) {
    /* lingering: drain and drop what the peer still sends, so closing with
     * unread data does not turn into a RST that destroys our last frames */
    if (nread < 0) {
      uv_read_stop(s);
      c->reading = false;
    }
    return;
  }
  if (nread < 0) {
    uv_read_stop(s);
    c->reading = false;
    if (!c->ready) {
      conn_close(c, CAIRN_E_TLS, false, "TLS handshake with %s failed: %s", c->peer,
                 nread == UV_EOF ? "connection closed by peer" : uv_strerror((int)nread));
    } else if (nread == UV_EOF) {
      c->peer_eof = true;
      conn_check_eof(c);
    } else {
      conn_close(c, CAIRN_E_IO, false, "read from %s failed: %s", c->peer,
                 uv_strerror((int)nread));
    }
    return;
  }
  if (BIO_write(c->net_in, buf->base, (int)nread) != (int)nread) {
    conn_close(c, CAIRN_E_NOMEM, false, "no memory to receive from %s", c->peer);
    return;
  }
  if (!c->ready && !conn_handshake(c)) return;
  if (!conn_decrypt(c)) return;
  conn_deliver(c);
}

static void conn_timer_cb(uv_timer_t *t) {
  pb_conn *c = t->data;
  if (c->closing) {
    conn_close_handles(c); /* linger expired */
  } else if (!c->ready) {
    conn_close(c, CAIRN_E_TIMEOUT, false, "TLS handshake with %s timed out after %u ms", c->peer,
               c->handshake_ms);
  } else {
    conn_deliver(c);
  }
}

/* Start closing: stop reading, optionally flush (close_notify, pending
 * writes) with a bounded linger, then close the handles. */
static void conn_close(pb_conn *c, cairn_err why, bool flush, const char *fmt, ...) {
  if (c->closing) return;
  c->closing = true;
  c->why = why;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
  va_end(ap);
  uv_timer_stop(&c->timer);
  if (flush && c->connected && !c->handles_closing) {
    if (c->ready && !c->ssl_failed) {
      ERR_clear_error();
      (void)SSL_shutdown(c->ssl);
      ERR_clear_error();
      (void)conn_flush(c);
    }
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, conn_shutdown_cb) == 0) {
      uv_timer_start(&c->timer, conn_timer_cb, PB_CONN_LINGER_MS, 0);
      return;
    }
  }
  conn_close_handles(c);
}

/* ---- setup ---- */

/* Allocate a conn with its SSL object and both handles initialised. On
 * failure nothing is left behind. */
static cairn_err conn_new(uv_loop_t *loop, pb_tls_ctx *ctx, uint32_t max_frame,
                          const pb_conn_cbs *cbs, void *ud, pb_conn **out) {
  if (!cbs || !cbs->on_frame || !cbs->on_close || !ctx) return CAIRN_E_INVAL;
  pb_conn *c = calloc(1, sizeof(*c));
  if (!c) return CAIRN_E_NOMEM;
  c->loop = loop;
  c->cbs = *cbs;
  c->ud = ud;
  c->max_frame = max_frame ? max_frame : PB_DEFAULT_MAX_FRAME;
  c->client = !ctx->server;
  c->handshake_ms = ctx->handshake_timeout_ms;
  c->why = CAIRN_OK;
  cairn_buf_init(&c->rx);
  cairn_buf_init(&c->tx_plain);
  snprintf(c->peer, sizeof(c->peer), "?");
  ERR_clear_error();
  c->ssl = SSL_new(ctx->ssl);
  if (!c->ssl) goto out_free;
  c->net_in = BIO_new(BIO_s_mem());
  c->net_out = BIO_new(BIO_s_mem());
  if (!c->net_in || !c->net_out) {
    BIO_free(c->net_in);
    BIO_free(c->net_out);
    goto out_free;
  }
  BIO_set_mem_eof_return(c->net_in, -1); /* empty = "want read", not EOF */
  BIO_set_mem_eof_return(c->net_out, -1);
  SSL_set_bio(c->ssl, c->net_in, c->net_out);
  if (uv_tcp_init(loop, &c->tcp) != 0) goto out_free;
  c->tcp.data = c;
  c->handles = 1;
  /* uv_timer_init cannot fail on a valid loop */
  (void)uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->handles = 2;
  *out = c;
  return CAIRN_OK;
out_free:
  ERR_clear_error();
  SSL_free(c->ssl);
  free(c);
  return CAIRN_E_NOMEM;
}

/* Undo conn_new after the handles exist: close them without on_close. */
static void conn_abandon(pb_conn *c) {
  c->silent = true;
  c->closing = true;
  conn_close_handles(c);
}

/* "ip:port" or "[ip6]:port" for sa. */
static void format_addr(const struct sockaddr *sa, char *out, size_t len) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uv_ip4_name(in, ip, sizeof(ip));
    snprintf(out, len, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(in6, ip, sizeof(ip));
    snprintf(out, len, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
  } else {
    snprintf(out, len, "?");
  }
}

/* Start the handshake deadline and the reader. */
static cairn_err conn_start(pb_conn *c) {
  uv_timer_start(&c->timer, conn_timer_cb, c->handshake_ms, 0);
  if (!c->connected) return CAIRN_OK;
  int r = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
  if (r < 0) return CAIRN_E_IO;
  c->reading = true;
  return CAIRN_OK;
}

cairn_err pb_conn_accept(uv_stream_t *server, pb_tls_ctx *ctx, uint32_t max_frame,
                         const pb_conn_cbs *cbs, void *ud, pb_conn **out) {
  if (!ctx || !ctx->server) return CAIRN_E_INVAL;
  pb_conn *c;
  cairn_err e = conn_new(server->loop, ctx, max_frame, cbs, ud, &c);
  if (e) return e;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) goto out_abandon;
  c->connected = true;
  struct sockaddr_storage ss;
  int sl = sizeof(ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
    format_addr((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
  SSL_set_accept_state(c->ssl);
  if (conn_start(c)) goto out_abandon;
  *out = c;
  return CAIRN_OK;
out_abandon:
  conn_abandon(c);
  return CAIRN_E_IO;
}

static void conn_connect_cb(uv_connect_t *req, int status) {
  pb_conn *c = req->handle->data;
  if (c->closing) return;
  if (status < 0) {
    conn_close(c, CAIRN_E_IO, false, "connect to %s failed: %s", c->peer, uv_strerror(status));
    return;
  }
  c->connected = true;
  int r = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
  if (r < 0) {
    conn_close(c, CAIRN_E_IO, false, "read from %s failed: %s", c->peer, uv_strerror(r));
    return;
  }
  c->reading = true;
  (void)conn_handshake(c); /* sends the ClientHello */
}

/* Arrange for the server certificate to be checked against name: IP SAN for
 * an IP literal, DNS SAN (plus SNI) otherwise. */
static bool conn_set_server_name(pb_conn *c, const char *name) {
  unsigned char tmp[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1)
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) == 1;
  SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set1_host(c->ssl, name) == 1 && SSL_set_tlsext_host_name(c->ssl, name) == 1;
}

cairn_err pb_conn_connect(uv_loop_t *loop, const struct sockaddr *addr, const char *server_name,
                          pb_tls_ctx *ctx, uint32_t max_frame, const pb_conn_cbs *cbs, void *ud,
                          pb_conn **out) {
  if (!ctx || ctx->server || !addr) return CAIRN_E_INVAL;
  pb_conn *c;
  cairn_err e = conn_new(loop, ctx, max_frame, cbs, ud, &c);
  if (e) return e;
  format_addr(addr, c->peer, sizeof(c->peer));
  if (server_name && !conn_set_server_name(c, server_name)) {
    ERR_clear_error();
    e = CAIRN_E_INVAL;
    goto out_abandon;
  }
  SSL_set_connect_state(c->ssl);
  int r = uv_tcp_connect(&c->connect, &c->tcp, addr, conn_connect_cb);
  if (r < 0) {
    e = r == UV_EINVAL || r == UV_EAFNOSUPPORT ? CAIRN_E_INVAL : CAIRN_E_IO;
    goto out_abandon;
  }
  (void)conn_start(c); /* not connected yet: only arms the deadline */
  *out = c;
  return CAIRN_OK;
out_abandon:
  conn_abandon(c);
  return e;
}

/* ---- public API ---- */

cairn_err pb_conn_send(pb_conn *c, const uint8_t *body, size_t len) {
  if (c->closing) return CAIRN_E_CLOSED;
  if (len == 0) return CAIRN_E_INVAL;
  if (len > UINT32_MAX) return CAIRN_E_LIMIT;
  uint8_t hdr[PB_FRAME_HEADER] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                                  (uint8_t)len};
  cairn_err e;
  if (!c->ready) {
    if (cairn_buf_reserve(&c->tx_plain, sizeof(hdr) + len)) return CAIRN_E_NOMEM;
    e = cairn_buf_append(&c->tx_plain, hdr, sizeof(hdr));
    if (!e) e = cairn_buf_append(&c->tx_plain, body, len);
    if (e) return e;
    if (conn_pending(c) >= PB_CONN_LOW_WATER) c->drain_armed = true;
    return CAIRN_OK;
  }
  if (len >= CONN_COPY_MAX) {
    e = conn_encrypt(c, hdr, sizeof(hdr));
    if (!e) e = conn_encrypt(c, body, len);
  } else {
    /* one TLS record for header and body; tx_plain is empty once ready */
    cairn_buf_reset(&c->tx_plain);
    e = cairn_buf_append(&c->tx_plain, hdr, sizeof(hdr));
    if (!e) e = cairn_buf_append(&c->tx_plain, body, len);
    if (e) {
      cairn_buf_reset(&c->tx_plain);
      return e;
    }
    e = conn_encrypt(c, c->tx_plain.ptr, c->tx_plain.len);
    cairn_buf_reset(&c->tx_plain);
  }
  if (e) return e;
  return conn_flush(c);
}

cairn_err pb_conn_send_envelope(pb_conn *c, const Cairn__Envelope *env) {
  if (c->closing) return CAIRN_E_CLOSED;
  if (!c->ready) {
    cairn_err e = pb_frame_append(&c->tx_plain, env);
    if (e) return e;
    if (conn_pending(c) >= PB_CONN_LOW_WATER) c->drain_armed = true;
    return CAIRN_OK;
  }
  /* tx_plain is empty scratch once ready: pack header and body straight in */
  cairn_buf_reset(&c->tx_plain);
  cairn_err e = pb_frame_append(&c->tx_plain, env);
  if (!e) e = conn_encrypt(c, c->tx_plain.ptr, c->tx_plain.len);
  cairn_buf_reset(&c->tx_plain);
  if (c->tx_plain.cap > CONN_KEEP_BUF) cairn_buf_fini(&c->tx_plain);
  if (e) return e;
  return conn_flush(c);
}

void pb_conn_close(pb_conn *c, cairn_err why, const char *reason) {
  conn_close(c, why, true, "%s", reason ? reason : cairn_err_str(why));
}

void pb_conn_read_stop(pb_conn *c) {
  c->paused = true;
  if (c->ready && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

void pb_conn_read_start(pb_conn *c) {
  if (c->closing || !c->paused) return;
  c->paused = false;
  if (!c->ready) return; /* the handshake never stopped reading */
  if (!c->reading && !c->peer_eof) {
    int r = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
    if (r < 0) {
      conn_close(c, CAIRN_E_IO, false, "read from %s failed: %s", c->peer, uv_strerror(r));
      return;
    }
    c->reading = true;
  }
  /* frames (or an EOF) that arrived before the pause: deliver from the loop */
  if (c->rx.len || c->peer_eof) uv_timer_start(&c->timer, conn_timer_cb, 0, 0);
}

const char *pb_conn_peer(const pb_conn *c) { return c->peer; }

const char *pb_conn_identity(const pb_conn *c) { return c->identity; }

bool pb_conn_peer_has_name(const pb_conn *c, const char *name) {
  return c->ready && pb__cert_has_name(c->peer_cert, name);
}

size_t pb_conn_write_pending(const pb_conn *c) { return conn_pending(c); }

uv_loop_t *pb_conn_loop(const pb_conn *c) { return c->loop; }
