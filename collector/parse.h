/* collector/parse.h: streaming log-format parsers (CRI, docker json-file,
 * auditd RAW/ENRICHED, Kubernetes API audit) and Kubernetes path metadata.
 * Private to collector/ (the public collector API is collector/collector.h);
 * tests include it directly.
 *
 * A parser is fed physical lines of one file in order and emits completed
 * records through a callback, in completion order (CRI P..F and docker 16 KiB
 * chunks are reassembled per stream; auditd records are grouped into one
 * record per event; a Kubernetes audit line is one record).
 *
 * Caveats:
 *  - A col_rec and every pointer in it are valid only during the callback.
 *  - A line that does not parse is emitted as a record with
 *    CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED and the raw bytes as message;
 *    it is never dropped.
 *  - Checkpoints must use col_parser_safe_offset(), not the offset of the last
 *    line: a partial record of the other stream (or an audit event still
 *    waiting for records) may be pending.
 *  - auditd events can end without any end marker (no EOE in audit.log): call
 *    col_parser_flush() when a file has been idle at EOF for the event
 *    timeout (2 s, as auparse), or the last events stay pending forever.
 *  - auditd events are emitted in the order of their last lines (strictly
 *    increasing end_offset, as dedupe needs), which differs from the order
 *    of their first lines when events interleave; sort by first_line if file
 *    order matters (the dry run does).
 *  - docker attrs are delivered in attrs_json only (not repeated in attrs);
 *    attrs carries the audit and Kubernetes audit fields.
 */
#ifndef CAIRN_COLLECTOR_PARSE_H
#define CAIRN_COLLECTOR_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "proto/proto.h"

/* ---- path metadata ---- */

typedef enum col_path_kind {
  COL_PATH_UNKNOWN = 0,
  COL_PATH_CONTAINERS, /* /var/log/containers/<pod>_<ns>_<container>-<64hex>.log */
  COL_PATH_PODS,       /* /var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log[.<ts>[.gz]] */
  COL_PATH_DOCKER,     /* .../<64hex>-json.log */
} col_path_kind;

typedef struct col_meta {
  col_path_kind kind;
  char kube_namespace[256];
  char pod[256];
  char pod_uid[64];
  char container[256];
  char container_id[65];
  int restart_count;      /* -1 when not encoded */
  char rotated_suffix[16]; /* "YYYYMMDD-hhmmss" or "" */
  bool compressed;        /* ends in .gz */
} col_meta;

/* Decompose path (any prefix directories allowed; matching is on the trailing
 * components). Unknown layouts give kind COL_PATH_UNKNOWN and empty fields. */
void col_meta_from_path(const char *path, col_meta *out);

/* ---- record parsers ---- */

/* One typed field of a record (becomes a Cairn__Attr). Multi-valued fields
 * (audit keys and paths, Kubernetes groups) are repeated attrs of one key, in
 * input order. Borrowed: valid only during the record callback. */
typedef struct col_attr {
  const char *key;    /* NUL-terminated, static or parser-owned */
  const uint8_t *val; /* value bytes (not NUL-terminated; may hold any byte) */
  size_t len;
} col_attr;

struct col_audit_ev; /* private: the parsed audit event (collector/internal_audit.h) */

typedef struct col_rec {
  int64_t time_ns;         /* of the first fragment; 0 for unparsed lines */
  Cairn__LogStream stream; /* LOG_STREAM_UNKNOWN for unparsed lines */
  uint32_t flags;          /* CAIRN__RECORD_FLAG__* bits */
  const uint8_t *msg;      /* reassembled bytes (or raw line when unparsed) */
  size_t msg_len;
  size_t full_len;     /* length before truncation (== msg_len unless truncated) */
  uint32_t fragments;  /* physical lines merged */
  uint64_t first_line; /* 1-based physical line numbers */
  uint64_t last_line;
  uint64_t end_offset;    /* byte offset just after the last line's '\n' */
  const char *attrs_json; /* docker "attrs" object as JSON text, or NULL */
  /* added with the audit parsers: */
  Cairn__Source source;  /* CONTAINER (cri, docker), AUDIT or K8S_AUDIT; also for unparsed */
  const col_attr *attrs; /* typed fields, n_attrs of them (NULL when 0); see below */
  size_t n_attrs;
  const struct col_audit_ev *audit; /* private (dry run, tests): NULL unless an audit event */
  uint64_t audit_lost; /* > 0: an audit serial gap record reporting this many lost events */
} col_rec;

/* What the new formats put in a col_rec:
 *
 * auditd (source AUDIT), one record per event (records sharing one
 * msg=audit(<sec>.<ms>:<serial>) stamp and node):
 *   time_ns   the stamp time; msg the event's raw lines joined with '\n',
 *   byte-exact (ENRICHED parts after 0x1D included); fragments = records in
 *   the event; first_line/last_line = lowest/highest physical line;
 *   end_offset = just after the last line. attrs, each present only when
 *   known: types (comma-joined, file order), serial, complete ("true" when an
 *   EOE was seen or the event is one non-SYSCALL record, else "false"), node,
 *   arch, syscall, success ("yes"/"no"), exit, pid, ppid, uid, auid, euid,
 *   ses, comm, exe, key (one attr per key, (null) skipped), proctitle (NULs as
 *   spaces), cwd, path (one per PATH record, "<name>:<nametype>", name
 *   "(null)" when null), sig, then the msg='...' pairs of the first
 *   userspace record (acct, op, res, cmd, hostname, addr, terminal ...; keys
 *   already listed above are skipped), then the ENRICHED pairs (upper-case
 *   keys such as AUID, UID; first occurrence wins). Hex-encoded values
 *   (exe, comm, cwd, key, proctitle, name, aN, msg cmd/cwd/acct/exe) are
 *   decoded.
 *
 * auditd serial gap (source AUDIT, audit_lost > 0, audit NULL): serials of
 *   one node were skipped (events the kernel or auditd lost: backlog or rate
 *   limit, auditd's queue; PCI DSS 10.7). A hole is reported once a serial
 *   COL_AUDIT_GAP_WINDOW above it arrived, an event 2 s (stamp time) later
 *   arrived, or at a full flush; serials arriving late inside it (interleaved
 *   events) are taken out. msg "audit serials A..B missing (N events lost by
 *   the kernel or auditd)" (prefixed "node X: " for node= lines); time_ns,
 *   first_line = last_line = those of the line whose serial revealed the hole;
 *   end_offset = that line's start + 1 (no other record ends there, so dedupe
 *   keeps it in order); fragments 0. attrs: type=CAIRN_AUDIT_GAP,
 *   serial_first, serial_last, missing, node (when set).
 *
 * Order: within one parser the records are emitted with strictly increasing
 *   end_offset (the aggregator's dedupe drops a record whose end_offset is not
 *   above the highest one it stored for the stream). An audit event that is
 *   complete waits until every pending item ending earlier in the file is
 *   complete too; held items count in col_parser_safe_offset().
 *
 * Kubernetes audit (source K8S_AUDIT), one record per line: msg = the line;
 *   time_ns = requestReceivedTimestamp (the same for every stage of one
 *   request, so the stages of a request sort together), stageTimestamp when
 *   absent, 0 when neither parses. attrs: auditID, stage, level, verb,
 *   request_uri, user, group (one per group), impersonated_user, source_ip
 *   (first of sourceIPs), resource, subresource, namespace, name, api_group,
 *   code, decision (annotation authorization.k8s.io/decision).
 */

typedef void (*col_rec_cb)(const col_rec *r, void *ud);

typedef struct col_parser col_parser;

/* New parser for fmt (CAIRN__FORMAT__FORMAT_CRI, _DOCKER, _AUDITD or
 * _K8S_AUDIT). max_record: bytes a record may hold before it is truncated and
 * flagged (0 = 1 MiB). CAIRN_E_INVAL for an unsupported format, CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col_parser_new(Cairn__Format fmt, size_t max_record, col_parser **out);
void col_parser_free(col_parser *p); /* NULL is fine */

/* Feed one physical line (without its '\n'); off is the byte offset of the
 * line's first byte in the file, line_no its 1-based number. Emits 0..n
 * records via cb. CAIRN_E_NOMEM only (bad input becomes unparsed records).
 * For CRI/docker nothing changed on CAIRN_E_NOMEM and the line may be fed
 * again; for auditd the pending events may have lost records, so treat it as
 * fatal for the file (re-read it from col_parser_safe_offset()). */
CAIRN_MUST_CHECK cairn_err col_parser_line(col_parser *p, const uint8_t *line, size_t len,
                                           uint64_t off, uint64_t line_no, col_rec_cb cb,
                                           void *ud);

/* The offset from which re-reading the file loses nothing: the start of the
 * oldest pending partial record, or next_off (offset after the last fed line)
 * when nothing is pending. */
uint64_t col_parser_safe_offset(const col_parser *p, uint64_t next_off);

/* Emit records that are still pending because no later line has completed
 * them. auditd only (a no-op returning CAIRN_OK for the other formats: CRI
 * and docker partials are completed by their writer, and a Kubernetes audit
 * line is never pending).
 *   all = false: only events that already look complete (a SYSCALL event
 *     whose PROCTITLE was seen, a lone non-SYSCALL record) and are merely
 *     waiting for a possible EOE; call it when the file is idle at EOF.
 *   all = true: every pending event (complete=false when it had no EOE);
 *     call it when the file has been idle for the event timeout (2 s), at
 *     EOF of a rotated-away or deleted file, and at the end of a dry run.
 * Records are emitted in end_offset order (see "Order" above). CAIRN_E_NOMEM
 * only (the event being emitted is then dropped). */
CAIRN_MUST_CHECK cairn_err col_parser_flush(col_parser *p, bool all, col_rec_cb cb, void *ud);

/* auditd: audit events pending (not yet emitted); 0 for other formats. */
size_t col_parser_audit_pending(const col_parser *p);

/* auditd: serial numbers reported missing so far, per node (the sum of the
 * audit_lost of the gap records emitted; a serial far below the highest of
 * its node, a reboot, restarts tracking). Each missing serial is an event the
 * kernel or auditd lost (backlog overflow, rate limit, auditd's queue).
 * 0 for other formats. */
uint64_t col_parser_audit_serial_gaps(const col_parser *p);

/* Streams that still hold partial fragments ("stdout", "stderr"), for the
 * dry run's summary; returns the count written into out (max 2). */
size_t col_parser_pending(const col_parser *p, const char *out[2]);

/* Dry run: parse the file at file_path as fmt, taking metadata from meta_path
 * (or file_path when NULL), and write one JSON object per record to f in the
 * field names of ../shared/corpus/expected/. auditd rows are printed in the
 * order of each event's first line (unparsed rows at their line), so the
 * whole output is buffered for that format. Returns CAIRN_E_IO /
 * CAIRN_E_NOTFOUND if the file cannot be read (errbuf says why). */
CAIRN_MUST_CHECK cairn_err col_parse_dry_run(Cairn__Format fmt, const char *file_path,
                                             const char *meta_path, FILE *f, char *errbuf,
                                             size_t errlen);

#endif
