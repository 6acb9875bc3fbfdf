/* tests/fuzz/fuzz_docker.c: fuzz target for the docker json-file log parser:
 * the input is a log file, fed line by line to col_parser_line; the
 * invariants checked are listed in tests/fuzz/fuzz_parse.h. */
#include "tests/fuzz/fuzz_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_parse_input(CAIRN__FORMAT__FORMAT_DOCKER, data, size);
}
