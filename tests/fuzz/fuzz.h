/* tests/fuzz/fuzz.h: shared by the fuzz targets in tests/fuzz/.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput. Built with -DCAIRN_FUZZ=ON
 * it is linked with libFuzzer; otherwise with standalone_main.c, which runs it
 * over the seed files named on the command line (ctest fuzz/<name>-seeds).
 * An invariant violation aborts, so both drivers report it as a crash.
 */
#ifndef CAIRN_TESTS_FUZZ_FUZZ_H
#define CAIRN_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The libFuzzer entry point: run one input; always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with file:line and the failed condition when cond is false. */
#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                            \
    }                                                                                     \
  } while (0)

/* Read every byte of p[0..n) so ASan sees an out-of-bounds pointer even when
 * the target would not otherwise look at the bytes. Returns a checksum. */
static inline unsigned fuzz_touch(const void *p, size_t n) {
  const volatile uint8_t *b = p;
  unsigned sum = 0;
  for (size_t i = 0; i < n; i++) sum += b[i];
  return sum;
}

#endif
