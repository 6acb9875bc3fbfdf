/* bench/runstat.c: run a command and report what it cost, for bench/run.sh
 * (GNU time is not always installed).
 *
 *   runstat OUTFILE COMMAND [ARG...]
 *
 * Runs COMMAND (stdin, stdout and stderr inherited), waits for it, and writes
 * one line to OUTFILE:
 *   RUNSTAT rc=N wall_s=W user_s=U sys_s=S cpu_s=C maxrss_kb=K start_s=T0
 * from wait4's rusage (maxrss = peak resident set, as VmHWM) and
 * CLOCK_REALTIME at the start (T0, so a receiver's timestamps can be put
 * against it). Exits with the command's status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double ts_s(const struct timespec *t) { return (double)t->tv_sec + (double)t->tv_nsec / 1e9; }
static double tv_s(const struct timeval *t) { return (double)t->tv_sec + (double)t->tv_usec / 1e6; }

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: runstat OUTFILE COMMAND [ARG...]\n");
    return 2;
  }
  struct timespec r0, m0, m1;
  clock_gettime(CLOCK_REALTIME, &r0);
  clock_gettime(CLOCK_MONOTONIC, &m0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("runstat: fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    fprintf(stderr, "runstat: cannot run %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("runstat: wait4");
      return 2;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &m1);
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  FILE *f = fopen(argv[1], "w");
  if (!f) {
    perror("runstat: output file");
    return 2;
  }
  double u = tv_s(&ru.ru_utime), s = tv_s(&ru.ru_stime);
  fprintf(f, "RUNSTAT rc=%d wall_s=%.3f user_s=%.3f sys_s=%.3f cpu_s=%.3f maxrss_kb=%ld start_s=%.6f\n",
          rc, ts_s(&m1) - ts_s(&m0), u, s, u + s, ru.ru_maxrss, ts_s(&r0));
  if (fclose(f) != 0) return 2;
  return rc;
}
