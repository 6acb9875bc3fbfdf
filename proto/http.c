/* proto/http.c: the HTTP/1.0 endpoint behind /metrics, /healthz and /readyz.
 *
 * One heap object per client connection holds a bounded request buffer, a
 * uv_tcp_t and a uv_timer_t (the deadline covers reading the request AND
 * writing the response, so a client that stops reading cannot pin memory).
 * The connection is freed when both handles have closed; the server is freed
 * when its listener and every connection are gone.
 */
#include "proto/http.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct http_conn {
  pb_http_server *s;     /* borrowed: the owning server */
  uv_tcp_t tcp;
  uv_timer_t timer;      /* deadline for the whole exchange */
  int open_handles;      /* tcp + timer until their close callbacks ran */
  bool responding;       /* response queued (or being built): reading stopped */
  bool closing;
  uv_write_t wr;
  cairn_buf out;         /* owned: status line, headers and body being written */
  struct http_conn *prev, *next; /* s->conns */
  size_t len;            /* request bytes in req */
  char req[];            /* max_header + 1 bytes */
} http_conn;

struct pb_http_server {
  uv_loop_t *loop;              /* borrowed */
  uv_tcp_t listener;
  bool listener_open;           /* until its close callback ran */
  bool closing;
  pb_http_handler_cb handler;
  void *ud;                     /* the caller's */
  size_t max_header, max_conns;
  uint64_t timeout_ms;
  size_t n_conns;               /* connections not yet freed */
  http_conn *conns;             /* list of those connections */
  uint64_t requests;            /* answered */
  char addr[128];               /* bound "HOST:PORT" */
  void (*close_cb)(void *ud);
  void *close_ud;
};

static const char *reason_phrase(int status) {
  switch (status) {
  case 200: return "OK";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Status";
  }
}

/* ---------------- teardown ---------------- */

static void server_maybe_free(pb_http_server *s) {
  if (!s->closing || s->listener_open || s->n_conns > 0) return;
  void (*cb)(void *) = s->close_cb;
  void *ud = s->close_ud;
  free(s);
  if (cb) cb(ud);
}

static void conn_handle_closed(uv_handle_t *h) {
  http_conn *c = h->data;
  if (--c->open_handles > 0) return;
  pb_http_server *s = c->s;
  if (c->prev) {
    c->prev->next = c->next;
  } else {
    s->conns = c->next;
  }
  if (c->next) c->next->prev = c->prev;
  s->n_conns--;
  cairn_buf_fini(&c->out);
  free(c);
  server_maybe_free(s);
}

static void conn_close(http_conn *c) {
  if (c->closing) return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

/* ---------------- responding ---------------- */

static void on_written(uv_write_t *wr, int status) {
  (void)status; /* success or not, the exchange is over */
  conn_close(wr->data);
}

/* Queue the response: status line and headers, then body (unless head_only). */
static void conn_send(http_conn *c, int status, const char *ctype, const cairn_buf *body,
                      bool head_only) {
  c->responding = true;
  c->s->requests++;
  uv_read_stop((uv_stream_t *)&c->tcp);
  cairn_buf_reset(&c->out);
  cairn_err e = cairn_buf_printf(&c->out,
                                 "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                 "%sConnection: close\r\n\r\n",
                                 status, reason_phrase(status), ctype, body ? body->len : 0,
                                 status == 405 ? "Allow: GET, HEAD\r\n" : "");
  if (e == CAIRN_OK && body && !head_only) e = cairn_buf_append(&c->out, body->ptr, body->len);
  if (e != CAIRN_OK) {
    conn_close(c);
    return;
  }
  /* the deadline now bounds the write: a scraper that stops reading is dropped */
  uv_timer_again(&c->timer);
  uv_buf_t ub = uv_buf_init((char *)c->out.ptr, (unsigned)c->out.len);
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &ub, 1, on_written) < 0) conn_close(c);
}

/* Send a fixed plain-text answer. */
static void conn_send_text(http_conn *c, int status, const char *text) {
  cairn_buf b = {.ptr = (uint8_t *)text, .len = strlen(text), .cap = 0};
  conn_send(c, status, "text/plain; charset=utf-8", &b, false);
}

/* The header block is complete in c->req[0..len): parse the request line
 * "METHOD SP TARGET SP HTTP/1.x" and answer. */
static void conn_dispatch(http_conn *c) {
  const char *line = c->req;
  size_t llen = strcspn(line, "\r\n");
  const char *sp1 = memchr(line, ' ', llen);
  const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', llen - (size_t)(sp1 + 1 - line)) : NULL;
  if (!sp1 || !sp2 || sp2 == sp1 + 1 || (size_t)(line + llen - (sp2 + 1)) != 8 ||
      strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
    conn_send_text(c, 400, "malformed request line: expected 'GET /path HTTP/1.x'\n");
    return;
  }
  size_t mlen = (size_t)(sp1 - line);
  bool get = mlen == 3 && memcmp(line, "GET", 3) == 0;
  bool head = mlen == 4 && memcmp(line, "HEAD", 4) == 0;
  if (!get && !head) {
    conn_send_text(c, 405, "only GET and HEAD are supported\n");
    return;
  }
  const char *target = sp1 + 1;
  size_t tlen = (size_t)(sp2 - target);
  if (target[0] != '/') {
    conn_send_text(c, 400, "request target must be a path starting with '/'\n");
    return;
  }
  size_t plen = 0;
  while (plen < tlen && target[plen] != '?' && target[plen] != '#') plen++;
  pb_http_response resp = {.status = 200, .content_type = "text/plain; charset=utf-8"};
  cairn_err e = c->s->handler(target, plen, &resp, c->s->ud);
  if (e != CAIRN_OK) {
    cairn_buf_fini(&resp.body);
    conn_send_text(c, 500, "internal error while building the response\n");
    return;
  }
  conn_send(c, resp.status, resp.content_type ? resp.content_type : "text/plain; charset=utf-8",
            &resp.body, head);
  cairn_buf_fini(&resp.body);
}

/* ---------------- reading ---------------- */

static void on_timeout(uv_timer_t *t) {
  http_conn *c = t->data;
  if (c->responding) {
    conn_close(c); /* the client stopped reading the response */
  } else {
    conn_send_text(c, 408, "request not received in time\n");
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  http_conn *c = h->data;
  size_t room = c->s->max_header - c->len;
  /* room is never 0 here: a full buffer is answered before the next read */
  *buf = uv_buf_init(c->req + c->len, (unsigned)room);
}

/* End of the header block within req[0..len), searching from `from`. */
static bool headers_complete(const http_conn *c, size_t from) {
  for (size_t i = from; i < c->len; i++) {
    if (c->req[i] != '\n') continue;
    if (i >= 1 && c->req[i - 1] == '\n') return true;
    if (i >= 2 && c->req[i - 1] == '\r' && c->req[i - 2] == '\n') return true;
  }
  return false;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  http_conn *c = st->data;
  if (c->responding || c->closing) return;
  if (n < 0) {
    conn_close(c); /* EOF or error before a complete request */
    return;
  }
  size_t from = c->len > 3 ? c->len - 3 : 0;
  c->len += (size_t)n;
  c->req[c->len] = '\0';
  if (headers_complete(c, from)) {
    conn_dispatch(c);
  } else if (c->len >= c->s->max_header) {
    conn_send_text(c, 431, "request headers too large\n");
  }
}

static void on_connection(uv_stream_t *l, int status) {
  pb_http_server *s = l->data;
  if (status < 0 || s->closing) return;
  http_conn *c = calloc(1, sizeof(*c) + s->max_header + 1);
  if (!c) return; /* the pending connection stays in the backlog; retried on the next event */
  c->s = s;
  if (uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    return;
  }
  uv_timer_init(s->loop, &c->timer); /* cannot fail for a valid loop */
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  if (s->n_conns > s->max_conns) {
    conn_close(c); /* over the limit: accepted only to drop it */
    return;
  }
  uv_timer_start(&c->timer, on_timeout, s->timeout_ms, s->timeout_ms);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
}

/* ---------------- listener ---------------- */

cairn_err pb_http_hostport_split(const char *s, char *host, size_t hcap, uint16_t *port) {
  if (!s) return CAIRN_E_PARSE;
  const char *h = s, *colon;
  size_t hlen;
  if (*s == '[') {
    const char *rb = strchr(s, ']');
    if (!rb || rb[1] != ':') return CAIRN_E_PARSE;
    h = s + 1;
    hlen = (size_t)(rb - h);
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return CAIRN_E_PARSE;
    hlen = (size_t)(colon - s);
    if (memchr(s, ':', hlen)) return CAIRN_E_PARSE; /* a bare IPv6 address needs [brackets] */
  }
  if (hlen >= hcap) return CAIRN_E_PARSE;
  const char *p = colon + 1;
  if (!*p) return CAIRN_E_PARSE;
  unsigned long v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return CAIRN_E_PARSE;
    v = v * 10 + (unsigned long)(*p - '0');
    if (v > 65535) return CAIRN_E_PARSE;
  }
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = (uint16_t)v;
  return CAIRN_OK;
}

/* "127.0.0.1:PORT" / "[::1]:PORT" of the bound listener. */
static void format_bound(const uv_tcp_t *t, char *out, size_t cap) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[INET6_ADDRSTRLEN] = "?";
  if (uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len) != 0) {
    snprintf(out, cap, "?:0");
    return;
  }
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
    uv_ip6_name(s6, ip, sizeof(ip));
    snprintf(out, cap, "[%s]:%d", ip, ntohs(s6->sin6_port));
    return;
  }
  const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
  uv_ip4_name(s4, ip, sizeof(ip));
  snprintf(out, cap, "%s:%d", ip, ntohs(s4->sin_port));
}

cairn_err pb_port_file_write(const char *path, const char *addr, const char *opt, char *errbuf,
                             size_t errlen) {
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
    snprintf(errbuf, errlen, "%s port file %s: path too long", opt, path);
    return CAIRN_E_CONFIG;
  }
  FILE *f = fopen(tmp, "w");
  if (!f) {
    snprintf(errbuf, errlen, "%s port file %s: cannot create: %s", opt, tmp, strerror(errno));
    return CAIRN_E_CONFIG;
  }
  bool ok = fprintf(f, "%s\n", addr) > 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    snprintf(errbuf, errlen, "%s port file %s: cannot write: %s", opt, path, strerror(errno));
    unlink(tmp);
    return CAIRN_E_CONFIG;
  }
  return CAIRN_OK;
}

/* Resolve a listen address HOST:PORT (numeric port; empty host = any) for
 * bind. *res is the caller's (freeaddrinfo). example is a port for the
 * error text. Startup only: getaddrinfo may block. CAIRN_E_CONFIG. */
static cairn_err listen_resolve(const char *hostport, const char *opt, unsigned example,
                                struct addrinfo **res, char *errbuf, size_t errlen) {
  char host[256], portstr[8];
  uint16_t port;
  *res = NULL;
  if (pb_http_hostport_split(hostport, host, sizeof(host), &port) != CAIRN_OK) {
    snprintf(errbuf, errlen, "%s: '%s' is not HOST:PORT (e.g. 0.0.0.0:%u, [::1]:%u)", opt,
             hostport ? hostport : "", example, example);
    return CAIRN_E_CONFIG;
  }
  snprintf(portstr, sizeof(portstr), "%u", port);
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int gr = getaddrinfo(*host ? host : NULL, portstr, &hints, res);
  if (gr != 0 || !*res) {
    if (gr == 0) freeaddrinfo(*res);
    *res = NULL;
    snprintf(errbuf, errlen, "%s %s: cannot resolve '%s': %s", opt, hostport, host,
             gr ? gai_strerror(gr) : "no address");
    return CAIRN_E_CONFIG;
  }
  return CAIRN_OK;
}

cairn_err pb_tcp_listen(uv_tcp_t *t, const char *hostport, const char *opt, uv_connection_cb cb,
                        char *bound, size_t bcap, char *errbuf, size_t errlen) {
  struct addrinfo *res;
  cairn_err le = listen_resolve(hostport, opt, 7400, &res, errbuf, errlen);
  if (le != CAIRN_OK) return le;
  int r = uv_tcp_bind(t, res->ai_addr, 0);
  freeaddrinfo(res);
  if (r == 0) r = uv_listen((uv_stream_t *)t, 128, cb);
  if (r != 0) {
    snprintf(errbuf, errlen, "%s %s: cannot listen: %s (pick a free port or stop the other process)",
             opt, hostport, uv_strerror(r));
    return CAIRN_E_CONFIG;
  }
  format_bound(t, bound, bcap);
  return CAIRN_OK;
}

static void on_listener_closed(uv_handle_t *h) {
  pb_http_server *s = h->data;
  s->listener_open = false;
  server_maybe_free(s);
}

cairn_err pb_http_open(uv_loop_t *loop, const char *hostport, const pb_http_options *opts,
                       pb_http_handler_cb handler, void *ud, pb_http_server **out, char *errbuf,
                       size_t errlen) {
  *out = NULL;
  if (errbuf && errlen) errbuf[0] = '\0';
  pb_http_options o = {0};
  if (opts) o = *opts;
  const char *opt = o.opt_name ? o.opt_name : "listen";
  struct addrinfo *res;
  cairn_err le = listen_resolve(hostport, opt, 9400, &res, errbuf, errlen);
  if (le != CAIRN_OK) return le;
  pb_http_server *s = calloc(1, sizeof(*s));
  if (!s) {
    freeaddrinfo(res);
    snprintf(errbuf, errlen, "%s: out of memory", opt);
    return CAIRN_E_NOMEM;
  }
  s->loop = loop;
  s->handler = handler;
  s->ud = ud;
  s->max_header = o.max_header ? o.max_header : PB_HTTP_MAX_HEADER;
  s->max_conns = o.max_conns ? o.max_conns : PB_HTTP_MAX_CONNS;
  s->timeout_ms = o.read_timeout_ms ? o.read_timeout_ms : PB_HTTP_READ_TIMEOUT_MS;
  int r = uv_tcp_init(loop, &s->listener);
  if (r != 0) {
    freeaddrinfo(res);
    free(s);
    snprintf(errbuf, errlen, "%s: %s", opt, uv_strerror(r));
    return CAIRN_E_NOMEM;
  }
  s->listener.data = s;
  s->listener_open = true;
  r = uv_tcp_bind(&s->listener, res->ai_addr, 0);
  freeaddrinfo(res);
  if (r == 0) r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  cairn_err e = CAIRN_OK;
  if (r != 0) {
    snprintf(errbuf, errlen,
             "%s %s: cannot listen: %s (pick a free port or stop the other process)", opt,
             hostport, uv_strerror(r));
    e = CAIRN_E_CONFIG;
    goto out_close;
  }
  format_bound(&s->listener, s->addr, sizeof(s->addr));
  if (o.port_file && *o.port_file) {
    e = pb_port_file_write(o.port_file, s->addr, opt, errbuf, errlen);
    if (e != CAIRN_OK) goto out_close;
  }
  *out = s;
  return CAIRN_OK;

out_close:
  /* the handle was initialised: it is freed from its close callback */
  s->closing = true;
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  return e;
}

const char *pb_http_addr(const pb_http_server *s) { return s->addr; }

uint64_t pb_http_requests(const pb_http_server *s) { return s->requests; }

void pb_http_close(pb_http_server *s, void (*cb)(void *ud), void *ud) {
  if (!s || s->closing) return;
  s->closing = true;
  s->close_cb = cb;
  s->close_ud = ud;
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  for (http_conn *c = s->conns; c; c = c->next) conn_close(c);
}
