/* tests/tools/tcp_proxy.c: a small loopback TCP proxy for network fault tests.
 *
 *   tcp-proxy --target 127.0.0.1:PORT [--listen-port P] [--port-file FILE]
 *
 * Listens on 127.0.0.1:P (0 = any free port; the bound "127.0.0.1:PORT" goes
 * to stdout and, written atomically, to --port-file) and forwards every
 * accepted connection to --target, bytes unchanged, both directions.
 *
 * Faults, by signal:
 *  - SIGUSR1 cuts every open connection mid-stream: the next chunk read from
 *    the client is forwarded only in part (its first half, so the server is
 *    left with a torn TLS record and a torn frame), then both sockets are
 *    reset (SO_LINGER 0 + close = RST). A connection with no client data
 *    within 1 s is reset as it is.
 *  - SIGUSR2 toggles accepting: while paused the listening socket is not
 *    served (new connections wait in the backlog, as behind a dead link);
 *    the next SIGUSR2 resumes.
 *  - SIGINT/SIGTERM exit 0.
 * Every cut and toggle is logged to stderr with a running count.
 *
 * One thread, poll(2), non-blocking sockets, a 64 KiB buffer per direction:
 * a direction stops reading while its buffer waits for the other side.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define BUF_SIZE (64u << 10)
#define CUT_IDLE_MS 1000

static volatile sig_atomic_t g_stop, g_cut, g_toggle;

static void on_signal(int sig) {
  if (sig == SIGUSR1) g_cut = 1;
  else if (sig == SIGUSR2) g_toggle = 1;
  else g_stop = 1;
}

/* One direction: bytes read from `from` waiting to be written to `to`. */
typedef struct pipe_dir {
  uint8_t buf[BUF_SIZE];
  size_t len, off;
  bool eof; /* `from` reached EOF; shut `to` down for writing once drained */
} pipe_dir;

typedef struct conn {
  bool used;
  int cfd, sfd;       /* client side, server side */
  bool connected;     /* server side connect finished */
  pipe_dir up, down;  /* client->server, server->client */
  bool cut_pending;   /* SIGUSR1: tear down at the next client read */
  int64_t cut_at_ms;  /* reset anyway at this time */
} conn;

static conn g_conns[MAX_CONNS];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* close with RST instead of FIN */
static void reset_close(int fd) {
  if (fd < 0) return;
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
}

static void conn_drop(conn *c, bool rst) {
  if (rst) {
    reset_close(c->cfd);
    reset_close(c->sfd);
  } else {
    close(c->cfd);
    close(c->sfd);
  }
  memset(c, 0, sizeof(*c));
}

static int write_port_file(const char *path, const char *text) {
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fprintf(f, "%s\n", text);
  if (fclose(f) != 0) return -1;
  return rename(tmp, path);
}

/* Write what buffer d holds to fd. false when the connection is dead. */
static bool flush_dir(pipe_dir *d, int fd) {
  while (d->off < d->len) {
    ssize_t n = send(fd, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
      return false;
    }
    d->off += (size_t)n;
  }
  d->off = d->len = 0;
  if (d->eof) shutdown(fd, SHUT_WR);
  return true;
}

/* Read into d from fd (only when d is empty). false when the connection is dead. */
static bool fill_dir(pipe_dir *d, int fd) {
  if (d->len || d->eof) return true;
  ssize_t n = recv(fd, d->buf, sizeof(d->buf), 0);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0) {
    d->eof = true;
    return true;
  }
  d->len = (size_t)n;
  return true;
}

static void accept_one(int lfd, const struct sockaddr_in *target) {
  int cfd = accept(lfd, NULL, NULL);
  if (cfd < 0) return;
  conn *c = NULL;
  for (int i = 0; i < MAX_CONNS; i++) {
    if (!g_conns[i].used) {
      c = &g_conns[i];
      break;
    }
  }
  if (!c) {
    fprintf(stderr, "tcp-proxy: too many connections; refusing one\n");
    reset_close(cfd);
    return;
  }
  int sfd = socket(AF_INET, SOCK_STREAM, 0);
  if (sfd < 0) {
    reset_close(cfd);
    return;
  }
  set_nonblock(cfd);
  set_nonblock(sfd);
  int one = 1;
  setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  memset(c, 0, sizeof(*c));
  c->used = true;
  c->cfd = cfd;
  c->sfd = sfd;
  if (connect(sfd, (const struct sockaddr *)target, sizeof(*target)) == 0) {
    c->connected = true;
  } else if (errno != EINPROGRESS) {
    fprintf(stderr, "tcp-proxy: connect to the target failed: %s\n", strerror(errno));
    conn_drop(c, true);
  }
}

int main(int argc, char **argv) {
  const char *target_s = NULL, *port_file = NULL;
  int listen_port = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--target") && i + 1 < argc) target_s = argv[++i];
    else if (!strcmp(argv[i], "--listen-port") && i + 1 < argc) listen_port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--port-file") && i + 1 < argc) port_file = argv[++i];
    else {
      target_s = NULL;
      break;
    }
  }
  struct sockaddr_in target = {.sin_family = AF_INET};
  const char *colon = target_s ? strrchr(target_s, ':') : NULL;
  char host[64];
  if (!colon || (size_t)(colon - target_s) >= sizeof(host)) {
    fprintf(stderr, "usage: tcp-proxy --target HOST:PORT [--listen-port P] [--port-file FILE]\n");
    return 2;
  }
  memcpy(host, target_s, (size_t)(colon - target_s));
  host[colon - target_s] = '\0';
  target.sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &target.sin_addr) != 1 || target.sin_port == 0) {
    fprintf(stderr, "tcp-proxy: --target %s: need a numeric IPv4 HOST:PORT\n", target_s);
    return 2;
  }

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
  la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(la);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&la, sizeof(la)) != 0 || listen(lfd, 64) != 0 ||
      getsockname(lfd, (struct sockaddr *)&la, &alen) != 0) {
    fprintf(stderr, "tcp-proxy: cannot listen on 127.0.0.1:%d: %s\n", listen_port, strerror(errno));
    return 2;
  }
  set_nonblock(lfd);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(la.sin_port));
  printf("%s\n", addr);
  fflush(stdout);
  if (port_file && write_port_file(port_file, addr) != 0) {
    fprintf(stderr, "tcp-proxy: cannot write --port-file %s\n", port_file);
    return 2;
  }
  fprintf(stderr, "tcp-proxy: %s -> %s\n", addr, target_s);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);

  bool paused = false;
  unsigned cuts = 0, torn = 0;
  struct pollfd pfd[1 + 2 * MAX_CONNS];
  conn *owner[1 + 2 * MAX_CONNS];
  while (!g_stop) {
    if (g_toggle) {
      g_toggle = 0;
      paused = !paused;
      fprintf(stderr, "tcp-proxy: accepting %s\n", paused ? "paused" : "resumed");
    }
    if (g_cut) {
      g_cut = 0;
      int n = 0;
      for (int i = 0; i < MAX_CONNS; i++) {
        if (g_conns[i].used && !g_conns[i].cut_pending) {
          g_conns[i].cut_pending = true;
          g_conns[i].cut_at_ms = now_ms() + CUT_IDLE_MS;
          n++;
        }
      }
      fprintf(stderr, "tcp-proxy: cutting %d connection(s)\n", n);
    }
    int64_t now = now_ms();
    for (int i = 0; i < MAX_CONNS; i++) {
      conn *c = &g_conns[i];
      if (c->used && c->cut_pending && now >= c->cut_at_ms) {
        conn_drop(c, true);
        fprintf(stderr, "tcp-proxy: cut %u (idle connection reset)\n", ++cuts);
      }
    }

    nfds_t n = 0;
    pfd[n] = (struct pollfd){.fd = paused ? -1 : lfd, .events = POLLIN};
    owner[n++] = NULL;
    for (int i = 0; i < MAX_CONNS; i++) {
      conn *c = &g_conns[i];
      if (!c->used) continue;
      short ce = 0, se = 0;
      if (!c->connected) {
        se = POLLOUT;
      } else {
        if (!c->up.len && !c->up.eof) ce |= POLLIN;
        if (c->down.len) ce |= POLLOUT;
        if (!c->down.len && !c->down.eof) se |= POLLIN;
        if (c->up.len) se |= POLLOUT;
      }
      pfd[n] = (struct pollfd){.fd = c->cfd, .events = ce};
      owner[n++] = c;
      pfd[n] = (struct pollfd){.fd = c->sfd, .events = se};
      owner[n++] = c;
    }
    int rc = poll(pfd, n, 50);
    if (rc < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "tcp-proxy: poll: %s\n", strerror(errno));
      return 1;
    }
    if (rc == 0) continue;
    if (pfd[0].revents & POLLIN) accept_one(lfd, &target);
    for (nfds_t k = 1; k + 1 < n; k += 2) {
      conn *c = owner[k];
      if (!c->used || c->cfd != pfd[k].fd) continue; /* dropped meanwhile (slot reused) */
      short cr = pfd[k].revents, sr = pfd[k + 1].revents;
      bool ok = true;
      if (!c->connected) {
        if (sr & (POLLOUT | POLLERR | POLLHUP)) {
          int e = 0;
          socklen_t el = sizeof(e);
          getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &e, &el);
          if (e) ok = false;
          else c->connected = true;
        }
        if (!ok) conn_drop(c, true);
        continue;
      }
      if (cr & (POLLIN | POLLHUP | POLLERR)) ok = ok && fill_dir(&c->up, c->cfd);
      if (ok && c->cut_pending && c->up.len) {
        /* forward only the first half of this chunk, then reset both sides */
        size_t got = c->up.len - c->up.off, half = got / 2 ? got / 2 : 1;
        (void)!send(c->sfd, c->up.buf + c->up.off, half, MSG_NOSIGNAL);
        conn_drop(c, true);
        fprintf(stderr, "tcp-proxy: cut %u (mid-stream: forwarded %zu of %zu bytes, then reset)\n",
                ++cuts, half, got);
        torn++;
        continue;
      }
      if (sr & (POLLIN | POLLHUP | POLLERR)) ok = ok && fill_dir(&c->down, c->sfd);
      if (ok) ok = flush_dir(&c->up, c->sfd) && flush_dir(&c->down, c->cfd);
      if (!ok) {
        conn_drop(c, true);
        continue;
      }
      if (c->up.eof && c->down.eof && !c->up.len && !c->down.len) conn_drop(c, false);
    }
  }
  fprintf(stderr, "tcp-proxy: exiting after %u cuts (%u mid-stream)\n", cuts, torn);
  for (int i = 0; i < MAX_CONNS; i++) {
    if (g_conns[i].used) conn_drop(&g_conns[i], false);
  }
  close(lfd);
  return 0;
}
