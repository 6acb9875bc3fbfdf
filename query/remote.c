/* query/remote.c: remote mode (--server HOST:PORT): the same storage query,
 * run by the aggregator over its query port, records streamed back into the
 * command's own callback, so search and audit render with the same code as
 * in local mode.
 *
 * The client is plain blocking OpenSSL (TLS 1.3 only, mutual TLS) on one
 * socket: query/ never links libuv. One QueryRequest per connection; the
 * aggregator answers QueryResult pages and a final QueryStatus. Filters
 * storage cannot run (regex, -i, user names, the k8s object namespace) stay
 * in the client: they are applied to the streamed records here, and the
 * limit is then counted here as well.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/fsperm.h"
#include "query/internal.h"

#define REMOTE_IO_TIMEOUT_S 300 /* a send or receive that makes no progress this long fails */
#define REMOTE_CONNECT_TIMEOUT_S 10

typedef struct remote {
  const qry_opts *o;
  const qry_env *env;
  SSL_CTX *ctx;
  SSL *ssl;
  int fd;
  char host[256];
  char port[16];
} remote;

/* The OpenSSL error queue as text (the last error), then cleared. */
static const char *ssl_reason(char *buf, size_t cap) {
  unsigned long e = ERR_get_error();
  unsigned long last = e;
  while (e) {
    last = e;
    e = ERR_get_error();
  }
  if (!last) snprintf(buf, cap, "%s", errno ? strerror(errno) : "connection closed");
  else ERR_error_string_n(last, buf, cap);
  return buf;
}

/* OpenSSL writes to the socket with write(2), so an aggregator that closed
 * the connection (it shut down) would kill us with SIGPIPE instead of
 * giving the one-line error. SIGPIPE is blocked around each TLS call and
 * one it raised is discarded; stdout keeps the default, so
 * `cairn-query ... | head` still ends quietly. */
typedef struct nopipe {
  sigset_t old;
  bool pending; /* a SIGPIPE was pending before the call: leave it */
} nopipe;

static void nopipe_begin(nopipe *g) {
  sigset_t s, pend;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s, &g->old);
  g->pending = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
}

static void nopipe_end(nopipe *g) {
  int saved = errno; /* the caller reads errno after the TLS call */
  sigset_t s, pend;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  if (!g->pending && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE)) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&s, NULL, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &g->old, NULL);
  errno = saved;
}

static int fail(remote *r, const char *fmt, const char *a, const char *b) {
  fprintf(r->env->err, "cairn-query %s: ", r->o->cmd);
  fprintf(r->env->err, fmt, a ? a : "", b ? b : "");
  fputc('\n', r->env->err);
  return -1;
}

/* Split HOST:PORT / [V6]:PORT. */
static bool split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap) {
  const char *colon;
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (!rb || rb[1] != ':') return false;
    if ((size_t)(rb - s - 1) >= hcap) return false;
    memcpy(host, s + 1, (size_t)(rb - s - 1));
    host[rb - s - 1] = '\0';
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= hcap) return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
  }
  const char *p = colon + 1;
  if (!*p || strlen(p) >= pcap || strspn(p, "0123456789") != strlen(p)) return false;
  long v = strtol(p, NULL, 10);
  if (v < 1 || v > 65535) return false;
  snprintf(port, pcap, "%s", p);
  return true;
}

static int tls_setup(remote *r) {
  const qry_opts *o = r->o;
  char why[256];
  r->ctx = SSL_CTX_new(TLS_client_method());
  if (!r->ctx) return fail(r, "cannot create a TLS context: %s%s", ssl_reason(why, sizeof(why)), NULL);
  SSL_CTX_set_min_proto_version(r->ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
  if (SSL_CTX_load_verify_locations(r->ctx, o->tls_ca, NULL) != 1)
    return fail(r, "--tls-ca %s: cannot load the CA: %s", o->tls_ca, ssl_reason(why, sizeof(why)));
  if (SSL_CTX_use_certificate_chain_file(r->ctx, o->tls_cert) != 1)
    return fail(r, "--tls-cert %s: cannot load the certificate: %s", o->tls_cert,
                ssl_reason(why, sizeof(why)));
  int fd = -1;
  char perr[512];
  if (cairn_private_file_open(o->tls_key, "--tls-key", &fd, perr, sizeof(perr)) != CAIRN_OK)
    return fail(r, "%s%s", perr, NULL);
  BIO *bio = BIO_new_fd(fd, BIO_CLOSE);
  EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  if (bio) BIO_free(bio);
  else close(fd);
  if (!key)
    return fail(r, "--tls-key %s: not a PEM private key: %s", o->tls_key,
                ssl_reason(why, sizeof(why)));
  int ok = SSL_CTX_use_PrivateKey(r->ctx, key) == 1 && SSL_CTX_check_private_key(r->ctx) == 1;
  EVP_PKEY_free(key);
  if (!ok)
    return fail(r, "--tls-key %s does not match --tls-cert (%s)", o->tls_key, o->tls_cert);
  return 0;
}

static int tcp_connect(remote *r) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(r->host, r->port, &hints, &res);
  if (gai != 0) return fail(r, "--server %s: %s", r->o->server, gai_strerror(gai));
  int last = 0;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    struct timeval tv = {REMOTE_CONNECT_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      tv.tv_sec = REMOTE_IO_TIMEOUT_S;
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      r->fd = fd;
      freeaddrinfo(res);
      return 0;
    }
    last = errno;
    close(fd);
  }
  freeaddrinfo(res);
  return fail(r, "--server %s: cannot connect: %s (is the aggregator running with --query-listen?)",
              r->o->server, strerror(last ? last : ECONNREFUSED));
}

static int tls_connect(remote *r) {
  char why[256];
  r->ssl = SSL_new(r->ctx);
  if (!r->ssl) return fail(r, "cannot create a TLS session: %s%s", ssl_reason(why, sizeof(why)), NULL);
  SSL_set_fd(r->ssl, r->fd);
  /* the server certificate must name the host we dialled (DNS or IP SAN) */
  X509_VERIFY_PARAM *vp = SSL_get0_param(r->ssl);
  if (X509_VERIFY_PARAM_set1_ip_asc(vp, r->host) != 1) {
    SSL_set_tlsext_host_name(r->ssl, r->host);
    X509_VERIFY_PARAM_set1_host(vp, r->host, 0);
  }
  ERR_clear_error();
  errno = 0;
  nopipe g;
  nopipe_begin(&g);
  int ok = SSL_connect(r->ssl) == 1;
  nopipe_end(&g);
  if (!ok) {
    long vr = SSL_get_verify_result(r->ssl);
    if (vr != X509_V_OK)
      return fail(r, "--server %s: the aggregator's certificate does not verify: %s",
                  r->o->server, X509_verify_cert_error_string(vr));
    return fail(r, "--server %s: TLS handshake failed: %s", r->o->server,
                ssl_reason(why, sizeof(why)));
  }
  return 0;
}

static int write_all(remote *r, const uint8_t *p, size_t n) {
  char why[256];
  while (n) {
    ERR_clear_error();
    errno = 0;
    nopipe g;
    nopipe_begin(&g);
    int w = SSL_write(r->ssl, p, n > (1u << 30) ? (1 << 30) : (int)n);
    nopipe_end(&g);
    if (w <= 0)
      return fail(r, "--server %s: sending the query failed: %s", r->o->server,
                  ssl_reason(why, sizeof(why)));
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Read until buf holds one whole frame; *body/len point into buf. 0, or -1
 * after a line on err. A client refused by the server (TLS 1.3 checks the
 * client certificate after the client's handshake) fails here. */
static int read_frame(remote *r, cairn_buf *buf, const uint8_t **body, size_t *len,
                      size_t *consumed) {
  char why[256];
  for (;;) {
    cairn_err e = pb_frame_peek(buf->ptr, buf->len, PB_DEFAULT_MAX_FRAME, body, len, consumed);
    if (e == CAIRN_OK) return 0;
    if (e == CAIRN_E_LIMIT)
      return fail(r, "--server %s: the aggregator sent an oversized frame%s", r->o->server, NULL);
    if (cairn_buf_reserve(buf, 64u << 10) != CAIRN_OK) return fail(r, "out of memory%s%s", NULL, NULL);
    ERR_clear_error();
    errno = 0;
    nopipe g;
    nopipe_begin(&g);
    int n = SSL_read(r->ssl, buf->ptr + buf->len, (int)(buf->cap - buf->len));
    nopipe_end(&g);
    if (n <= 0) {
      int se = SSL_get_error(r->ssl, n);
      const char *reason = ssl_reason(why, sizeof(why));
      if (strstr(reason, "certificate required") || strstr(reason, "unknown ca") ||
          strstr(reason, "bad certificate"))
        return fail(r, "--server %s: the aggregator refused our certificate (%s): use a "
                    "certificate signed by the aggregator's --tls-ca", r->o->server, reason);
      if (se == SSL_ERROR_ZERO_RETURN || (se == SSL_ERROR_SYSCALL && errno == 0))
        return fail(r, "--server %s: the aggregator closed the connection before the query "
                    "finished%s", r->o->server, NULL);
      return fail(r, "--server %s: receiving results failed: %s", r->o->server, reason);
    }
    buf->len += (size_t)n;
  }
}

/* The client-side filters, as recorded by the aggregator. */
static cairn_err client_filters(const qry_opts *o, cairn_buf *b) {
  cairn_err e = CAIRN_OK;
  const qry_filter_args *a = &o->args;
  if (!o->q.filter && !o->q.msg_filter) return e;
  for (size_t i = 0; !e && i < a->grep.n; i++) e = cairn_buf_printf(b, " grep=%s", a->grep.v[i]);
  for (size_t i = 0; !e && i < a->regex.n; i++) e = cairn_buf_printf(b, " regex=%s", a->regex.v[i]);
  for (size_t i = 0; !e && i < a->k8s_namespace.n; i++)
    e = cairn_buf_printf(b, " k8s-namespace=%s", a->k8s_namespace.v[i]);
  if (!e && a->field[STO_FIELD_AUID].n) e = cairn_buf_append_str(b, " auid-by-name");
  if (!e && a->field[STO_FIELD_UID].n) e = cairn_buf_append_str(b, " uid-by-name");
  if (!e && a->icase) e = cairn_buf_append_str(b, " -i");
  return e;
}

/* Pack the request for q into an envelope frame in out. */
static cairn_err request_build(const qry_opts *o, const sto_query *q, cairn_buf *out) {
  Cairn__QueryTerm tv[STO_FIELD_COUNT_ * QRY_MAX_VALUES];
  Cairn__QueryTerm *tp[STO_FIELD_COUNT_ * QRY_MAX_VALUES];
  size_t nt = 0;
  for (int f = 0; f < STO_FIELD_COUNT_; f++) {
    for (size_t i = 0; i < q->terms[f].n && nt < sizeof(tv) / sizeof(tv[0]); i++) {
      cairn__query_term__init(&tv[nt]);
      tv[nt].field = (uint32_t)f;
      tv[nt].value = (char *)q->terms[f].v[i].value;
      tv[nt].match = (uint32_t)q->terms[f].v[i].match;
      tp[nt] = &tv[nt];
      nt++;
    }
  }
  /* the single-value fields of sto_query are terms on the wire */
  const char *singles[4] = {q->kube_namespace, q->pod, q->container, q->node};
  for (int f = 0; f < 4; f++) {
    if (!singles[f] || !*singles[f] || nt >= sizeof(tv) / sizeof(tv[0])) continue;
    cairn__query_term__init(&tv[nt]);
    tv[nt].field = (uint32_t)f;
    tv[nt].value = (char *)singles[f];
    tp[nt] = &tv[nt];
    nt++;
  }
  cairn_buf cf;
  cairn_buf_init(&cf);
  cairn_err e = client_filters(o, &cf);
  if (!e) e = cairn_buf_append(&cf, "", 1);
  if (e) {
    cairn_buf_fini(&cf);
    return e;
  }
  Cairn__QueryRequest req = CAIRN__QUERY_REQUEST__INIT;
  req.protocol_version = PB_PROTOCOL_VERSION;
  req.command = (char *)o->cmd;
  req.since_ns = q->since_ns;
  req.until_ns = q->until_ns;
  req.n_terms = nt;
  req.terms = tp;
  req.source = (Cairn__Source)q->source;
  req.stream = (Cairn__LogStream)q->stream;
  req.grep = (char *)(q->grep ? q->grep : "");
  /* with a client-side filter the server cannot know where the limit falls */
  req.limit = q->filter || q->msg_filter ? 0 : q->limit;
  req.newest_first = q->newest_first;
  req.client_filters = cf.len > 1 ? (char *)cf.ptr + 1 : (char *)"";
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_QUERY_REQUEST;
  env.query_request = &req;
  e = pb_frame_append(out, &env);
  cairn_buf_fini(&cf);
  return e;
}

/* Receive pages until the final status; hand each record that passes the
 * client filters to cb, up to the limit. 0 or -1 (a line was written). */
static int receive(remote *r, const sto_query *q, sto_record_cb cb, void *ud,
                   sto_query_stats *st) {
  cairn_buf buf;
  cairn_buf_init(&buf);
  cairn_arena ar;
  cairn_arena_init(&ar, 64u << 10);
  int rc = -1;
  bool stop = false;
  for (;;) {
    const uint8_t *body;
    size_t len, consumed;
    if (read_frame(r, &buf, &body, &len, &consumed) != 0) goto out;
    Cairn__Envelope *env;
    if (pb_envelope_decode(body, len, &ar, &env) != CAIRN_OK) {
      fail(r, "--server %s: the aggregator sent a malformed frame%s", r->o->server, NULL);
      goto out;
    }
    if (env->msg_case == CAIRN__ENVELOPE__MSG_QUERY_RESULT) {
      const Cairn__QueryResult *page = env->query_result;
      for (size_t i = 0; i < page->n_records && !stop; i++) {
        const Cairn__Record *rec = page->records[i];
        st->examined++;
        if (q->msg_filter && !q->msg_filter(rec->message.data, rec->message.len, q->msg_filter_ud))
          continue;
        if (q->filter && !q->filter(rec, q->filter_ud)) continue;
        st->matched++;
        if (!cb(rec, ud)) stop = true;
        if (q->limit && st->matched >= q->limit) stop = true;
      }
      if (stop) {
        rc = 0; /* enough: closing makes the aggregator stop the scan */
        goto out;
      }
    } else if (env->msg_case == CAIRN__ENVELOPE__MSG_QUERY_STATUS) {
      const Cairn__QueryStatus *s = env->query_status;
      st->index = "remote"; /* static storage; the aggregator logs its own index */
      if (s->code != CAIRN__QUERY_CODE__QUERY_OK) {
        fail(r, "%s (aggregator %s)", s->error && *s->error ? s->error : "query failed",
             r->o->server);
        goto out;
      }
      rc = 0;
      goto out;
    } else {
      fail(r, "--server %s: unexpected message from the aggregator%s", r->o->server, NULL);
      goto out;
    }
    /* drop the frame from the buffer */
    memmove(buf.ptr, buf.ptr + consumed, buf.len - consumed);
    buf.len -= consumed;
    cairn_arena_reset(&ar);
  }
out:
  cairn_arena_fini(&ar);
  cairn_buf_fini(&buf);
  return rc;
}

cairn_err qry__remote_run(const qry_opts *o, const qry_env *env, const sto_query *q,
                          sto_record_cb cb, void *ud, sto_query_stats *st) {
  remote r = {.o = o, .env = env, .fd = -1};
  sto_query_stats own;
  if (!st) st = &own; /* may be NULL, as for sto_query_run */
  memset(st, 0, sizeof(*st));
  cairn_err e = CAIRN_E_IO;
  cairn_buf req;
  cairn_buf_init(&req);
  if (!split_hostport(o->server, r.host, sizeof(r.host), r.port, sizeof(r.port))) {
    fail(&r, "--server: '%s' is not HOST:PORT (e.g. aggregator.example:7401)", o->server, NULL);
    return CAIRN_E_CONFIG;
  }
  if (request_build(o, q, &req) != CAIRN_OK) {
    fail(&r, "out of memory%s%s", NULL, NULL);
    return CAIRN_E_NOMEM;
  }
  if (tls_setup(&r) != 0) {
    e = CAIRN_E_CONFIG;
    goto out;
  }
  if (tcp_connect(&r) != 0 || tls_connect(&r) != 0) goto out;
  if (write_all(&r, req.ptr, req.len) != 0) goto out;
  if (receive(&r, q, cb, ud, st) != 0) goto out;
  e = CAIRN_OK;
out:
  if (r.ssl) {
    nopipe g;
    nopipe_begin(&g);
    SSL_shutdown(r.ssl);
    nopipe_end(&g);
    SSL_free(r.ssl);
  }
  if (r.fd >= 0) close(r.fd);
  SSL_CTX_free(r.ctx);
  cairn_buf_fini(&req);
  return e;
}

cairn_err qry__query_run(const qry_opts *o, const qry_env *env, sto_env *sto, const sto_query *q,
                         sto_record_cb cb, void *ud, sto_query_stats *st) {
  if (o->server) return qry__remote_run(o, env, q, cb, ud, st);
  return sto_query_run(sto, q, cb, ud, st);
}

int qry__query_failed(const qry_opts *o, const qry_env *env, cairn_err e) {
  if (!o->server) /* remote errors were reported where they happened */
    fprintf(env->err, "cairn-query: reading the store in %s failed: %s (%s); check --data\n",
            o->data_dir, cairn_err_name(e), cairn_err_str(e));
  return QRY_EXIT_USAGE;
}
