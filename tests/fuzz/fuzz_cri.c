/* tests/fuzz/fuzz_cri.c: fuzz target for the CRI log parser (containerd,
 * CRI-O): the input is a log file, fed line by line to col_parser_line; the
 * invariants checked are listed in tests/fuzz/fuzz_parse.h. */
#include "tests/fuzz/fuzz_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_parse_input(CAIRN__FORMAT__FORMAT_CRI, data, size);
}
