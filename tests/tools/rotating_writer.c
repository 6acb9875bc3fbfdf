/* tests/tools/rotating_writer.c: writes CRI lines carrying unique markers
 * "seq=%08d" into one file and rotates it while writing, like logrotate or
 * the kubelet would, so tests can check that every line is stored exactly once.
 *
 *   rotating-writer --file PATH --lines N [--start I] [--rotate-every R]
 *                   [--mode rename|copytruncate] [--rate LINES_PER_S] [--line-bytes B]
 *
 * rename: every R lines the file is renamed to PATH.<k> (k = 1, 2, ...) and a
 * new PATH is created (rename+create). copytruncate: every R lines PATH is
 * copied to PATH.<k> and then truncated to 0 (the writer uses O_APPEND, so it
 * goes on at the new end). Without --rate it writes as fast as it can.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sleep_ns(int64_t ns) {
  struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int open_log(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fprintf(stderr, "rotating-writer: open %s: %s\n", path, strerror(errno));
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY | O_CLOEXEC);
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (in < 0 || out < 0) {
    fprintf(stderr, "rotating-writer: copy %s -> %s: %s\n", from, to, strerror(errno));
    return -1;
  }
  char buf[1 << 16];
  ssize_t n;
  int rc = 0;
  while ((n = read(in, buf, sizeof(buf))) > 0) {
    if (write_all(out, buf, (size_t)n) != 0) rc = -1;
  }
  if (n < 0) rc = -1;
  close(in);
  close(out);
  return rc;
}

int main(int argc, char **argv) {
  const char *path = NULL, *mode = "rename";
  long lines = 0, start = 0, every = 0, line_bytes = 120;
  double rate = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--file")) path = argv[i + 1];
    else if (!strcmp(argv[i], "--lines")) lines = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--start")) start = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--rotate-every")) every = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
    else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--line-bytes")) line_bytes = atol(argv[i + 1]);
    else path = NULL, i = argc;
  }
  int copytrunc = !strcmp(mode, "copytruncate");
  if (!path || lines < 0 || every < 0 || line_bytes < 60 || line_bytes > 4000 ||
      (!copytrunc && strcmp(mode, "rename") != 0)) {
    fprintf(stderr, "usage: rotating-writer --file PATH --lines N [--start I] [--rotate-every R] "
                    "[--mode rename|copytruncate] [--rate L/S] [--line-bytes B]\n");
    return 2;
  }
  int fd = open_log(path);
  if (fd < 0) return 1;
  char pad[4096];
  memset(pad, 'x', sizeof(pad));
  int64_t t0 = mono_ns();
  long k = 0;
  char line[4200], rotated[4200];
  for (long i = 0; i < lines; i++) {
    if (every && i > 0 && i % every == 0) {
      snprintf(rotated, sizeof(rotated), "%s.%ld", path, ++k);
      if (copytrunc) {
        if (copy_file(path, rotated) != 0 || ftruncate(fd, 0) != 0) return 1;
      } else {
        close(fd);
        if (rename(path, rotated) != 0) {
          fprintf(stderr, "rotating-writer: rename: %s\n", strerror(errno));
          return 1;
        }
        if ((fd = open_log(path)) < 0) return 1;
      }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ stdout F seq=%08ld ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec, start + i);
    int fill = (int)line_bytes - n - 1;
    if (fill < 0) fill = 0;
    memcpy(line + n, pad, (size_t)fill);
    line[n + fill] = '\n';
    if (write_all(fd, line, (size_t)(n + fill + 1)) != 0) {
      fprintf(stderr, "rotating-writer: write: %s\n", strerror(errno));
      return 1;
    }
    if (rate > 0) {
      int64_t due = t0 + (int64_t)((double)(i + 1) * 1e9 / rate);
      int64_t now = mono_ns();
      if (due > now + 1000000) sleep_ns(due - now);
    }
  }
  close(fd);
  return 0;
}
