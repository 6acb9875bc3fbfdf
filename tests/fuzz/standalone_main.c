/* tests/fuzz/standalone_main.c: a main() for the fuzz targets when libFuzzer
 * is not used (gcc, the normal and ASan builds). It runs
 * LLVMFuzzerTestOneInput once per file found under each argument (files, or
 * directories walked recursively), so every seed and regression input is
 * replayed by ctest. Arguments starting with '-' (libFuzzer flags) are ignored.
 * Exit 0 after at least one input ran; 1 when a path is missing or no input
 * was found (a seed run that tests nothing must not pass); a crash aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

/* Read the whole file at path into a malloc'd buffer of exactly its size (so
 * ASan sees reads past the end). false on error, with a message printed. */
static int read_file(const char *path, uint8_t **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "fuzz: cannot open %s: %s\n", path, strerror(errno));
    return 0;
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (n < cap) break;
    uint8_t *nb = realloc(buf, cap * 2);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  int ok = buf && !ferror(f);
  fclose(f);
  if (!ok) {
    fprintf(stderr, "fuzz: cannot read %s\n", path);
    free(buf);
    return 0;
  }
  /* exact-size copy: the trailing slack of buf would hide overreads */
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) {
    free(buf);
    return 0;
  }
  memcpy(exact, buf, n);
  free(buf);
  *out = exact;
  *len = n;
  return 1;
}

/* Run path (a file, or a directory walked recursively); counts inputs run.
 * false on an unreadable path. */
static int run_path(const char *path, unsigned long *ran) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
    return 0;
  }
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (!d) {
      fprintf(stderr, "fuzz: cannot list %s: %s\n", path, strerror(errno));
      return 0;
    }
    int ok = 1;
    struct dirent *de;
    while (ok && (de = readdir(d)) != NULL) {
      if (de->d_name[0] == '.') continue; /* ".", "..", hidden files */
      size_t n = strlen(path) + strlen(de->d_name) + 2;
      char *child = malloc(n);
      if (!child) {
        ok = 0;
        break;
      }
      snprintf(child, n, "%s/%s", path, de->d_name);
      ok = run_path(child, ran);
      free(child);
    }
    closedir(d);
    return ok;
  }
  uint8_t *data;
  size_t len;
  if (!read_file(path, &data, &len)) return 0;
  fprintf(stderr, "fuzz: input %s\n", path); /* names the input if it crashes */
  LLVMFuzzerTestOneInput(data, len);
  free(data);
  (*ran)++;
  return 1;
}

int main(int argc, char **argv) {
  unsigned long ran = 0;
  int ok = 1;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    if (!run_path(argv[i], &ran)) ok = 0;
  }
  printf("%s: %lu inputs replayed\n", argv[0], ran);
  if (!ok) return 1;
  if (ran == 0) {
    fprintf(stderr, "fuzz: no input files under the given paths\n");
    return 1;
  }
  return 0;
}
