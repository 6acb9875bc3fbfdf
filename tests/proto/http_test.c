/* tests/proto/http_test.c: the HTTP/1.0 endpoint against a real client over
 * loopback. The server's loop runs in a thread; the test side uses plain
 * blocking sockets (with receive timeouts as deadlines) so every byte on the
 * wire is exactly what a scraper would send and see.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/http.h"

typedef struct srv {
  uv_loop_t loop;
  uv_async_t stop;
  pb_http_server *http;
  pthread_t th;
  char addr[128];
  atomic_int calls;       /* handler invocations */
  char last_path[128];    /* written on the loop thread, read after a response */
  size_t big_body;        /* bytes /big answers with */
} srv;

static cairn_err handler(const char *path, size_t len, pb_http_response *resp, void *ud) {
  srv *s = ud;
  atomic_fetch_add(&s->calls, 1);
  snprintf(s->last_path, sizeof(s->last_path), "%.*s", (int)len, path);
  if (len == 8 && memcmp(path, "/metrics", 8) == 0) {
    resp->content_type = PB_HTTP_PROMETHEUS_TYPE;
    return cairn_buf_append_str(&resp->body, "# TYPE x_total counter\nx_total 42\n");
  }
  if (len == 5 && memcmp(path, "/fail", 5) == 0) return CAIRN_E_NOMEM;
  if (len == 4 && memcmp(path, "/big", 4) == 0) {
    cairn_err e = cairn_buf_reserve(&resp->body, s->big_body);
    if (e != CAIRN_OK) return e;
    memset(resp->body.ptr, 'b', s->big_body);
    resp->body.len = s->big_body;
    return CAIRN_OK;
  }
  if (len == 7 && memcmp(path, "/readyz", 7) == 0) {
    resp->status = 503;
    return cairn_buf_append_str(&resp->body, "not ready\n");
  }
  resp->status = 404;
  return cairn_buf_append_str(&resp->body, "no such page\n");
}

static void on_stop(uv_async_t *a) {
  srv *s = a->data;
  pb_http_close(s->http, NULL, NULL);
  uv_close((uv_handle_t *)&s->stop, NULL);
}

static void *loop_main(void *arg) {
  srv *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
  return NULL;
}

static void srv_start(srv *s, const pb_http_options *o) {
  memset(s, 0, sizeof(*s));
  atomic_init(&s->calls, 0);
  s->big_body = 1u << 20;
  assert_int_equal(uv_loop_init(&s->loop), 0);
  char eb[256];
  assert_int_equal(pb_http_open(&s->loop, "127.0.0.1:0", o, handler, s, &s->http, eb, sizeof(eb)),
                   CAIRN_OK);
  snprintf(s->addr, sizeof(s->addr), "%s", pb_http_addr(s->http));
  assert_int_equal(uv_async_init(&s->loop, &s->stop, on_stop), 0);
  s->stop.data = s;
  assert_int_equal(pthread_create(&s->th, NULL, loop_main, s), 0);
}

static void srv_stop(srv *s) {
  uv_async_send(&s->stop);
  pthread_join(s->th, NULL);
  assert_int_equal(uv_loop_close(&s->loop), 0);
}

/* Connect to "127.0.0.1:PORT" with a receive deadline; rcvbuf 0 = default. */
static int client_connect(const char *addr, int rcvbuf) {
  const char *colon = strrchr(addr, ':');
  assert_non_null(colon);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  char host[64];
  snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
  assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  if (rcvbuf) assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
  struct timeval tv = {.tv_sec = 10};
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    assert_true(w > 0);
    p += w;
    n -= (size_t)w;
  }
}

/* Read until EOF (or reset) into out; returns bytes read. */
static size_t read_all(int fd, char *out, size_t cap) {
  size_t len = 0;
  ssize_t r;
  while (len + 1 < cap && (r = recv(fd, out + len, cap - 1 - len, 0)) > 0) len += (size_t)r;
  out[len] = '\0';
  return len;
}

static size_t exchange(const char *addr, const char *req, char *out, size_t cap) {
  int fd = client_connect(addr, 0);
  send_all(fd, req, strlen(req));
  size_t n = read_all(fd, out, cap);
  close(fd);
  return n;
}

static const char *body_of(const char *resp) {
  const char *p = strstr(resp, "\r\n\r\n");
  assert_non_null(p);
  return p + 4;
}

static void get_answers_http10_with_length_and_close(void **state) {
  srv s;
  srv_start(&s, NULL);
  char resp[4096];
  exchange(s.addr, "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", resp,
           sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0);
  assert_non_null(strstr(resp, "\r\nContent-Type: " PB_HTTP_PROMETHEUS_TYPE "\r\n"));
  assert_non_null(strstr(resp, "\r\nConnection: close\r\n"));
  const char *body = body_of(resp);
  assert_string_equal(body, "# TYPE x_total counter\nx_total 42\n");
  char cl[64];
  snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", strlen(body));
  assert_non_null(strstr(resp, cl));
  assert_string_equal(s.last_path, "/metrics"); /* query string stripped */
  srv_stop(&s);
}

static void bare_lf_request_and_handler_status_are_honoured(void **state) {
  srv s;
  srv_start(&s, NULL);
  char resp[4096];
  exchange(s.addr, "GET /readyz HTTP/1.0\n\n", resp, sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 503 Service Unavailable\r\n", 34) == 0);
  assert_string_equal(body_of(resp), "not ready\n");
  exchange(s.addr, "GET /nope HTTP/1.0\r\n\r\n", resp, sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 404 Not Found\r\n", 24) == 0);
  srv_stop(&s);
}

static void head_sends_headers_without_body(void **state) {
  srv s;
  srv_start(&s, NULL);
  char resp[4096];
  exchange(s.addr, "HEAD /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0);
  char cl[64];
  snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen("# TYPE x_total counter\nx_total 42\n"));
  assert_non_null(strstr(resp, cl));
  assert_string_equal(body_of(resp), "");
  srv_stop(&s);
}

static void other_methods_get_405_without_calling_the_handler(void **state) {
  srv s;
  srv_start(&s, NULL);
  char resp[4096];
  exchange(s.addr, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", resp, sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 405 Method Not Allowed\r\n", 33) == 0);
  assert_non_null(strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
  assert_int_equal(atomic_load(&s.calls), 0);
  srv_stop(&s);
}

static void malformed_request_lines_get_400(void **state) {
  srv s;
  srv_start(&s, NULL);
  const char *bad[] = {"GARBAGE\r\n\r\n", "GET /metrics\r\n\r\n", "GET /metrics SPDY/3\r\n\r\n",
                       "GET metrics HTTP/1.0\r\n\r\n", "GET  HTTP/1.0\r\n\r\n"};
  char resp[4096];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    exchange(s.addr, bad[i], resp, sizeof(resp));
    if (strncmp(resp, "HTTP/1.0 400 Bad Request\r\n", 26) != 0)
      fail_msg("request %zu (%s) got: %.60s", i, bad[i], resp);
  }
  assert_int_equal(atomic_load(&s.calls), 0);
  srv_stop(&s);
}

static void handler_error_answers_500(void **state) {
  srv s;
  srv_start(&s, NULL);
  char resp[4096];
  exchange(s.addr, "GET /fail HTTP/1.0\r\n\r\n", resp, sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 500 Internal Server Error\r\n", 36) == 0);
  srv_stop(&s);
}

static void oversized_headers_get_431(void **state) {
  srv s;
  srv_start(&s, NULL);
  int fd = client_connect(s.addr, 0);
  char junk[PB_HTTP_MAX_HEADER + 100];
  memcpy(junk, "GET /metrics HTTP/1.0\r\nX-Junk: ", 31);
  memset(junk + 31, 'j', sizeof(junk) - 31);
  /* the server answers once 8 KiB arrived; the rest may be refused (reset) */
  ssize_t w = send(fd, junk, PB_HTTP_MAX_HEADER, MSG_NOSIGNAL);
  assert_int_equal(w, PB_HTTP_MAX_HEADER);
  char resp[4096];
  read_all(fd, resp, sizeof(resp));
  close(fd);
  assert_true(strncmp(resp, "HTTP/1.0 431 Request Header Fields Too Large\r\n", 46) == 0);
  assert_int_equal(atomic_load(&s.calls), 0);
  srv_stop(&s);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void incomplete_request_times_out_with_408(void **state) {
  srv s;
  pb_http_options o = {.read_timeout_ms = 200};
  srv_start(&s, &o);
  int fd = client_connect(s.addr, 0);
  send_all(fd, "GET /metrics HTTP/1.0\r\n", 23); /* never finished */
  int64_t t0 = now_ms();
  char resp[4096];
  read_all(fd, resp, sizeof(resp));
  int64_t waited = now_ms() - t0;
  close(fd);
  assert_true(strncmp(resp, "HTTP/1.0 408 Request Timeout\r\n", 30) == 0);
  assert_true(waited >= 150 && waited < 5000);
  srv_stop(&s);
}

static void client_that_stops_reading_is_dropped_at_the_deadline(void **state) {
  srv s;
  pb_http_options o = {.read_timeout_ms = 200};
  srv_start(&s, &o);
  s.big_body = 16u << 20; /* far more than the socket buffers hold */
  int fd = client_connect(s.addr, 4096);
  send_all(fd, "GET /big HTTP/1.0\r\n\r\n", 21);
  usleep(600 * 1000); /* deliberately not reading: past the deadline */
  static char buf[1 << 20];
  size_t total = 0;
  ssize_t r;
  while ((r = recv(fd, buf, sizeof(buf), 0)) > 0) total += (size_t)r;
  close(fd);
  assert_true(total < s.big_body); /* cut short, not served in full */
  /* the server is still healthy afterwards */
  char resp[4096];
  exchange(s.addr, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0);
  srv_stop(&s);
}

static void connections_over_the_limit_are_closed_and_others_served(void **state) {
  srv s;
  pb_http_options o = {.max_conns = 2};
  srv_start(&s, &o);
  int a = client_connect(s.addr, 0), b = client_connect(s.addr, 0);
  /* make sure both are accepted before the third arrives */
  send_all(a, "GET /metrics", 12);
  send_all(b, "GET /metrics", 12);
  usleep(100 * 1000);
  int c = client_connect(s.addr, 0);
  char resp[4096];
  size_t n = read_all(c, resp, sizeof(resp)); /* closed without an answer */
  close(c);
  assert_int_equal(n, 0);
  send_all(a, " HTTP/1.0\r\n\r\n", 13);
  read_all(a, resp, sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0);
  send_all(b, " HTTP/1.0\r\n\r\n", 13);
  read_all(b, resp, sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0);
  close(a);
  close(b);
  /* slots are free again */
  exchange(s.addr, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
  assert_true(strncmp(resp, "HTTP/1.0 200 OK\r\n", 17) == 0);
  srv_stop(&s);
}

static void close_with_idle_clients_lets_the_loop_close(void **state) {
  srv s;
  srv_start(&s, NULL);
  int a = client_connect(s.addr, 0);
  send_all(a, "GET /", 5);
  usleep(50 * 1000);
  srv_stop(&s); /* asserts uv_loop_close() == 0 */
  char resp[16];
  assert_int_equal(read_all(a, resp, sizeof(resp)), 0);
  close(a);
}

static void port_file_holds_the_bound_address(void **state) {
  char dir[] = "/tmp/cairn-http-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char pf[128];
  snprintf(pf, sizeof(pf), "%s/port", dir);
  srv s;
  pb_http_options o = {.port_file = pf};
  srv_start(&s, &o);
  FILE *f = fopen(pf, "r");
  assert_non_null(f);
  char line[128] = "";
  assert_non_null(fgets(line, sizeof(line), f));
  fclose(f);
  line[strcspn(line, "\n")] = '\0';
  assert_string_equal(line, s.addr);
  assert_true(strncmp(s.addr, "127.0.0.1:", 10) == 0 && atoi(s.addr + 10) > 0);
  srv_stop(&s);
  unlink(pf);
  rmdir(dir);
}

static void open_errors_name_the_option(void **state) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pb_http_server *h = NULL;
  char eb[256];
  pb_http_options o = {.opt_name = "--metrics-listen"};
  assert_int_equal(pb_http_open(&loop, "9400", &o, handler, NULL, &h, eb, sizeof(eb)),
                   CAIRN_E_CONFIG);
  assert_null(h);
  assert_non_null(strstr(eb, "--metrics-listen: '9400' is not HOST:PORT"));
  assert_int_equal(pb_http_open(&loop, "::1:9400", &o, handler, NULL, &h, eb, sizeof(eb)),
                   CAIRN_E_CONFIG);
  /* address in use: a second server on the first one's port */
  pb_http_server *first = NULL;
  assert_int_equal(pb_http_open(&loop, "127.0.0.1:0", NULL, handler, NULL, &first, eb, sizeof(eb)),
                   CAIRN_OK);
  assert_int_equal(pb_http_open(&loop, pb_http_addr(first), &o, handler, NULL, &h, eb, sizeof(eb)),
                   CAIRN_E_CONFIG);
  assert_null(h);
  assert_non_null(strstr(eb, "cannot listen"));
  /* an unwritable port file */
  assert_int_equal(pb_http_open(&loop, "127.0.0.1:0",
                                &(pb_http_options){.port_file = "/nonexistent-dir/port"}, handler,
                                NULL, &h, eb, sizeof(eb)),
                   CAIRN_E_CONFIG);
  assert_non_null(strstr(eb, "/nonexistent-dir/port"));
  pb_http_close(first, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT); /* releases the listeners of the failed opens too */
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void hostport_split_accepts_v4_v6_and_wildcard(void **state) {
  char host[64];
  uint16_t port;
  assert_int_equal(pb_http_hostport_split("0.0.0.0:9400", host, sizeof(host), &port), CAIRN_OK);
  assert_string_equal(host, "0.0.0.0");
  assert_int_equal(port, 9400);
  assert_int_equal(pb_http_hostport_split("[::1]:80", host, sizeof(host), &port), CAIRN_OK);
  assert_string_equal(host, "::1");
  assert_int_equal(pb_http_hostport_split(":9", host, sizeof(host), &port), CAIRN_OK);
  assert_string_equal(host, "");
  assert_int_equal(pb_http_hostport_split("h:65536", host, sizeof(host), &port), CAIRN_E_PARSE);
  assert_int_equal(pb_http_hostport_split("h:", host, sizeof(host), &port), CAIRN_E_PARSE);
  assert_int_equal(pb_http_hostport_split("h:1x", host, sizeof(host), &port), CAIRN_E_PARSE);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* the server writes to clients that hung up */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(get_answers_http10_with_length_and_close),
      cmocka_unit_test(bare_lf_request_and_handler_status_are_honoured),
      cmocka_unit_test(head_sends_headers_without_body),
      cmocka_unit_test(other_methods_get_405_without_calling_the_handler),
      cmocka_unit_test(malformed_request_lines_get_400),
      cmocka_unit_test(handler_error_answers_500),
      cmocka_unit_test(oversized_headers_get_431),
      cmocka_unit_test(incomplete_request_times_out_with_408),
      cmocka_unit_test(client_that_stops_reading_is_dropped_at_the_deadline),
      cmocka_unit_test(connections_over_the_limit_are_closed_and_others_served),
      cmocka_unit_test(close_with_idle_clients_lets_the_loop_close),
      cmocka_unit_test(port_file_holds_the_bound_address),
      cmocka_unit_test(open_errors_name_the_option),
      cmocka_unit_test(hostport_split_accepts_v4_v6_and_wildcard),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
