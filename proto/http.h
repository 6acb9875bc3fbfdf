/* proto/http.h: a tiny HTTP/1.0 server on a libuv loop for the operational
 * endpoints of both daemons (GET /metrics, /healthz, /readyz).
 *
 * Only the request line is parsed ("GET /path HTTP/1.x"); headers are read
 * (up to a bound) and ignored. Every response is HTTP/1.0 with
 * "Connection: close": one request per connection. The handler runs on the
 * loop and fills the body synchronously; it must not block (STYLE 6).
 *
 * Caveats:
 *  - All functions must be called on the loop thread; the handler is called
 *    there too. It is not a general web server: no keep-alive, no request
 *    bodies, no chunked encoding, no TLS. Bind it to a trusted network (the
 *    pod network, localhost) or put a NetworkPolicy in front of it.
 *  - pb_http_close() is asynchronous like uv_close(): the server (and every
 *    client connection) is freed from close callbacks; keep running the loop
 *    until it returns (uv_run) before uv_loop_close().
 *  - Requests whose header block exceeds max_header bytes get 431, requests
 *    idle for read_timeout_ms get 408, and connections beyond max_conns are
 *    accepted and closed at once: a slow or hostile scraper costs a bounded
 *    amount of memory and never stalls the loop.
 *  - Methods other than GET and HEAD get 405 without calling the handler.
 *  - libuv writes with write(2): the process must ignore SIGPIPE, this module
 *    does not touch signals (as proto/tls.h).
 *  - pb_http_open() resolves the host with getaddrinfo(), which may block:
 *    call it at startup, before the loop runs (not from a loop callback).
 */
#ifndef CAIRN_PROTO_HTTP_H
#define CAIRN_PROTO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"

#define PB_HTTP_MAX_HEADER 8192u      /* bytes of request line + headers */
#define PB_HTTP_READ_TIMEOUT_MS 5000u /* whole request must arrive within this */
#define PB_HTTP_MAX_CONNS 64u         /* concurrent client connections */

/* Content type of the Prometheus text exposition format 0.0.4. */
#define PB_HTTP_PROMETHEUS_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct pb_http_server pb_http_server;

/* What the handler fills. */
typedef struct pb_http_response {
  int status;               /* in: 200; set e.g. 404, 503 */
  const char *content_type; /* in: "text/plain; charset=utf-8"; a static string */
  cairn_buf body;           /* in: empty; append the body (owned by the server) */
} pb_http_response;

/* Handle one request. path is the request target without the query string
 * ("/metrics"), borrowed for the call; it is not NUL-terminated, use
 * path_len. Return CAIRN_OK with resp filled; any error (e.g. CAIRN_E_NOMEM
 * from cairn_buf_printf) answers 500 instead. For HEAD the body is computed
 * and then dropped. */
typedef cairn_err (*pb_http_handler_cb)(const char *path, size_t path_len, pb_http_response *resp,
                                        void *ud);

typedef struct pb_http_options {
  size_t max_header;        /* 0 = PB_HTTP_MAX_HEADER */
  uint64_t read_timeout_ms; /* 0 = PB_HTTP_READ_TIMEOUT_MS */
  size_t max_conns;         /* 0 = PB_HTTP_MAX_CONNS */
  const char *port_file;    /* NULL, or write the bound "HOST:PORT\n" here (temp file + rename) */
  const char *opt_name;     /* option named in errors, e.g. "--metrics-listen"; NULL = "listen" */
} pb_http_options;

/* Bind and listen on hostport ("0.0.0.0:9400", "127.0.0.1:0", "[::1]:9400",
 * "localhost:9400"); port 0 picks a free port (see pb_http_addr). handler and
 * ud are kept for the server's life; ud stays the caller's. opts may be NULL
 * (defaults; its strings are only read during the call).
 * Errors: CAIRN_E_CONFIG (not HOST:PORT, host does not resolve, address in
 * use, port file not writable) and CAIRN_E_NOMEM; errbuf gets one line naming
 * opt_name and what to change. Nothing is left for the caller to close, but
 * a listener that was already created is released from a close callback:
 * the loop must run once more (uv_run) before uv_loop_close(). */
CAIRN_MUST_CHECK cairn_err pb_http_open(uv_loop_t *loop, const char *hostport,
                                        const pb_http_options *opts, pb_http_handler_cb handler,
                                        void *ud, pb_http_server **out, char *errbuf,
                                        size_t errlen);

/* The bound address, "127.0.0.1:41234" or "[::1]:41234". Valid until
 * pb_http_close. */
const char *pb_http_addr(const pb_http_server *s);

/* Requests answered since open (any status). */
uint64_t pb_http_requests(const pb_http_server *s);

/* Stop listening and close every client connection (a response being written
 * is cut short). Asynchronous: s is freed from a later close callback, then
 * cb(ud) runs if cb is not NULL. NULL s is fine (cb is not called then). */
void pb_http_close(pb_http_server *s, void (*cb)(void *ud), void *ud);

/* Split "HOST:PORT" or "[V6]:PORT" into host (without brackets; "" for
 * ":PORT") and port. CAIRN_E_PARSE when malformed or host does not fit hcap. */
CAIRN_MUST_CHECK cairn_err pb_http_hostport_split(const char *s, char *host, size_t hcap,
                                                  uint16_t *port);

/* ---- listener helpers shared by both daemons ---- */

/* Resolve "HOST:PORT" (numeric or a name; startup only: getaddrinfo blocks),
 * bind and listen on t (uv_tcp_init'ed by the caller, who also closes it on
 * error). bound (bcap bytes) gets the actual "IP:PORT" (port 0 resolved).
 * CAIRN_E_CONFIG with errbuf naming opt ("--listen"). */
CAIRN_MUST_CHECK cairn_err pb_tcp_listen(uv_tcp_t *t, const char *hostport, const char *opt,
                                         uv_connection_cb cb, char *bound, size_t bcap,
                                         char *errbuf, size_t errlen);

/* Write "addr\n" to path through a temp file and rename(2), so a reader (a
 * test waiting for the port) never sees a partial address. CAIRN_E_CONFIG
 * with errbuf naming opt and the path. */
CAIRN_MUST_CHECK cairn_err pb_port_file_write(const char *path, const char *addr,
                                              const char *opt, char *errbuf, size_t errlen);

#endif
