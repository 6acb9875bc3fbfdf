/* query/query.h: cairn-query, the audit query CLI, as a library call.
 *
 * main.c only forwards argv to qry_main(); tests call qry_run() with their
 * own streams, environment and clock so every command is checked in-process.
 *
 * Caveats:
 *  - The result is a process exit status, not a cairn_err: 0 = success (for
 *    search: at least one record matched), 1 = nothing matched, 2 = usage,
 *    configuration or data error, 3 = verify found a problem (or a store
 *    without chain). On 2 and 3 the last line written to the error stream
 *    names what to fix or what is wrong (verify may warn before it).
 *  - The store is opened read-only and never created: point --data at the
 *    directory an aggregator writes (CAIRN_DATA in the environment also works;
 *    the flag wins).
 *  - Nothing here is global: qry_run may be called repeatedly, also from
 *    several threads with different qry_env values.
 */
#ifndef CAIRN_QUERY_QUERY_H
#define CAIRN_QUERY_QUERY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses (DESIGN.md "Command-line surface"). */
#define QRY_EXIT_OK 0
#define QRY_EXIT_NO_MATCH 1
#define QRY_EXIT_USAGE 2
#define QRY_EXIT_VERIFY_FAILED 3 /* verify: tampering found, or nothing verifiable */

/* What qry_run needs from the process. All pointers are borrowed for the call. */
typedef struct qry_env {
  FILE *out;             /* results (and --help / --version); required */
  FILE *err;             /* diagnostics, --stats; required */
  const char *data_dir;  /* value of CAIRN_DATA, NULL = unset; --data wins */
  int64_t now_ns;        /* "now" for relative times (--since 2h); 0 = read the clock */
  bool out_is_tty;       /* out is a terminal: aligned columns in text output */
  bool color;            /* colour text output (set only on a TTY without NO_COLOR) */
  bool err_is_tty;       /* err is a terminal: progress of long scans goes there */
  /* search --follow: wait up to ms before the next poll; return false to stop
   * following (exit 0 / 1 as usual). NULL = the process default: block
   * SIGINT and SIGTERM in the calling thread and wait for them with
   * sigtimedwait (either one stops the follow; the mask is restored). */
  bool (*follow_wait)(void *ud, unsigned ms);
  void *follow_ud;       /* passed to follow_wait */
  /* Record each local search/audit/stats/export as a source=query record in
   * the store (PCI DSS 10.2.1.3; needs write access to the store, else a
   * line on err says it was not recorded). qry_main sets it unless
   * CAIRN_QUERY_RECORD=0; false (tests, embedders) records nothing, silently. */
  bool record_queries;
} qry_env;

/* Run one cairn-query command line. argv[0] is the program name, argv[1] the
 * command (search, stats, audit, verify, export, verify-export) or --help /
 * --version; argv is not modified. Returns QRY_EXIT_* (see Caveats). */
int qry_run(int argc, char *const *argv, const qry_env *env);

/* qry_run with env filled from the process: CAIRN_DATA, the clock, isatty(out)
 * and NO_COLOR (colour only on a TTY and when NO_COLOR is unset or empty),
 * query recording on unless CAIRN_QUERY_RECORD is 0/no/off/false.
 * This is all main() does. */
int qry_main(int argc, char *const *argv, FILE *out, FILE *err);

#endif
