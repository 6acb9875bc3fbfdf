/* tests/fuzz/fuzz_audit.c: fuzz target for the auditd parser (RAW and
 * ENRICHED audit.log): the input is a log file fed line by line, with flushes
 * as an idle file gets them; the invariants are listed in
 * tests/fuzz/fuzz_events.h. Seeds: tests/fuzz/seeds/audit and the corpus. */
#include "tests/fuzz/fuzz_events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_ev_input(CAIRN__FORMAT__FORMAT_AUDITD, data, size);
}
