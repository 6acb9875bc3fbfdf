/* tests/fuzz/fuzz_k8s.c: fuzz target for the Kubernetes API audit log parser
 * (one JSON event per line, via jansson): the input is a log file fed line by
 * line; the invariants are listed in tests/fuzz/fuzz_events.h. Seeds:
 * tests/fuzz/seeds/k8s and the corpus. */
#include "tests/fuzz/fuzz_events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_ev_input(CAIRN__FORMAT__FORMAT_K8S_AUDIT, data, size);
}
