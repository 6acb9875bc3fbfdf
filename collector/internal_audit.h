/* collector/internal_audit.h: the auditd event parser's state, shared by
 * parse_audit.c (line framing, event grouping, emission), parse_audit_fields.c
 * (field extraction per record) and dry_run_audit.c (corpus JSON rows).
 * Private to collector/. Design: fields are extracted as each record arrives
 * into the pending event; decoded values live in the event's vals buffer and
 * are referred to by offset, so event slots and their buffers are reused
 * without per-line allocation once warm.
 */
#ifndef CAIRN_COLLECTOR_INTERNAL_AUDIT_H
#define CAIRN_COLLECTOR_INTERNAL_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/internal_parse.h"
#include "common/buf.h"

/* Pending events older than this (in stamp time) than a newly opened event
 * are emitted as they are (auparse's eoe_timeout). */
#define COL_AUDIT_TIMEOUT_MS 2000
/* At most this many items pending; opening one more emits the one that ends
 * first in the file. */
#define COL_AUDIT_MAX_PENDING 256
/* A hole in the serials of a node is reported once a serial this much above
 * it arrives (or COL_AUDIT_TIMEOUT_MS of stamp time later, or at a full
 * flush): smaller jumps back are interleaving, not loss. */
#define COL_AUDIT_GAP_WINDOW 32
/* Nodes whose serials are tracked at once (least recently seen is dropped). */
#define COL_AUDIT_MAX_NODES 16

/* A decoded value: vals[off..off+len) of its event. */
typedef struct col_astr {
  uint32_t off;
  uint32_t len;
  bool set;
  bool null;         /* set, but "(null)" */
  bool from_syscall; /* taken from the SYSCALL record (wins over others) */
} col_astr;

typedef struct col_aint {
  int64_t v;
  bool set;
  bool from_syscall;
} col_aint;

typedef struct col_apath {
  int64_t item;
  bool has_item;
  col_astr name;
  col_astr nametype;
} col_apath;

typedef struct col_akv {
  col_astr k;
  col_astr v;
} col_akv;

/* What a pending slot holds. Completed items wait in their slot until every
 * item ending earlier in the file is emitted (see parse_audit.c). */
typedef enum col_aev_kind {
  COL_AEV_EVENT = 0, /* an audit event (records grouped by stamp) */
  COL_AEV_UNPARSED,  /* a line that did not frame: raw holds it */
  COL_AEV_GAP,       /* missing serials gap_first..gap_last of node */
} col_aev_kind;

/* One audit event, pending or being emitted. Read-only outside parse_audit*.c.
 */
typedef struct col_audit_ev {
  bool used;       /* slot holds a pending item */
  bool done;       /* complete: no record joins any more; emitted in end_off order */
  col_aev_kind kind;
  uint64_t gap_first, gap_last, gap_missing; /* COL_AEV_GAP */
  int64_t time_ns; /* stamp time */
  int64_t time_ms;
  uint64_t serial;
  char stamp[40];      /* "<sec>.<ms>" as written, NUL-terminated */
  col_astr node;       /* node= prefix */
  uint64_t first_off;  /* file offset of the first line */
  uint64_t end_off;    /* offset just after the highest line (a gap: its line's start + 1) */
  uint64_t first_line; /* lowest and highest physical line */
  uint64_t last_line;
  uint64_t seq;    /* open order, for oldest-first emission */
  cairn_buf raw;   /* lines joined with '\n', at most max_record bytes */
  size_t raw_full; /* bytes the joined lines really have */
  cairn_buf lines; /* uint64_t line numbers */
  cairn_buf types; /* "SYSCALL,EXECVE,..." */
  uint32_t nrec;   /* records */
  cairn_buf vals;  /* decoded value bytes */
  bool has_syscall;
  bool has_eoe;
  bool has_execve;
  bool ready;         /* looks complete; only an EOE may still follow */
  bool user_msg_done; /* the first userspace msg='...' has been taken */
  bool res_seen;      /* first res= taken */
  bool enriched;      /* some record had a 0x1D part */
  int success;        /* -1 unknown, 0 false, 1 true */
  bool success_from_syscall;
  col_aint uid, auid, pid, ppid, euid, ses, syscall, exit, sig;
  col_astr comm, exe, arch, proctitle, cwd;
  cairn_buf keys;     /* col_astr */
  cairn_buf paths;    /* col_apath */
  cairn_buf argv;     /* col_astr, EXECVE arguments in index order */
  cairn_buf argvb;    /* argument bytes (chunks of one argument are contiguous) */
  int64_t argv_last;  /* index of the last argument started, -1 none */
  cairn_buf user_msg; /* col_akv */
  cairn_buf enr;      /* col_akv */
} col_audit_ev;

/* Highest serial seen from one node (node "" = lines without node=). */
typedef struct col_anode {
  char node[256]; /* NUL-terminated, cut at 255 bytes */
  uint64_t max_serial;
  uint64_t max_off;  /* file offset of the line that brought max_serial */
  uint64_t last_use; /* col_audit.next_seq when last seen */
} col_anode;

/* Parser-wide auditd state (owned by col_parser). */
typedef struct col_audit {
  col_audit_ev *ev; /* slots; owned */
  size_t nev;       /* slots allocated */
  size_t npending;  /* slots used (events, held lines, gaps) */
  uint64_t next_seq;
  col_anode nodes[COL_AUDIT_MAX_NODES];
  size_t nnodes;
  uint64_t gaps;    /* serials reported missing (emitted gap records) */
  col_audit_ev single; /* scratch event for records emitted at once */
  cairn_buf attrs;     /* col_attr array built at emission */
  cairn_buf scratch;   /* formatted attr values */
} col_audit;

/* What the framing found on one line. */
typedef struct col_aline {
  const uint8_t *node; /* node= value, or NULL */
  size_t node_len;
  const uint8_t *type; /* record type name */
  size_t type_len;
  const uint8_t *stamp; /* "<sec>.<ms>" */
  size_t stamp_len;
  int64_t time_ns;
  int64_t time_ms;
  uint64_t serial;
  const uint8_t *body; /* after "): ", up to 0x1D or end of line */
  size_t body_len;
  const uint8_t *enr; /* after 0x1D, or NULL */
  size_t enr_len;
} col_aline;

/* Record type classes. */
typedef enum col_atype {
  COL_AT_OTHER = 0,
  COL_AT_SYSCALL,
  COL_AT_EOE,
  COL_AT_PROCTITLE,
  COL_AT_EXECVE,
  COL_AT_CWD,
  COL_AT_PATH,
  COL_AT_USER, /* userspace message (USER_*, CRED_*, ...): one-record event */
} col_atype;

col_atype col__audit_type_class(const uint8_t *t, size_t n);

/* Reset ev for reuse (keeps buffer capacity). */
void col__audit_ev_reset(col_audit_ev *ev);
void col__audit_ev_fini(col_audit_ev *ev);

/* Extract the fields of one record (framed as l, class c) into ev.
 * CAIRN_E_NOMEM only. */
CAIRN_MUST_CHECK cairn_err col__audit_ev_fields(col_audit_ev *ev, const col_aline *l, col_atype c);

/* Pointer to a decoded value (valid until ev's next change). */
static inline const uint8_t *col__astr_ptr(const col_audit_ev *ev, col_astr s) {
  return ev->vals.ptr ? ev->vals.ptr + s.off : (const uint8_t *)"";
}

/* True when the event is complete in the corpus sense: an EOE was seen, or it
 * is one record that is not SYSCALL. */
static inline bool col__audit_ev_complete(const col_audit_ev *ev) {
  return ev->has_eoe || (ev->nrec == 1 && !ev->has_syscall);
}

/* Hex rule: decode value v[0..n) of an untrusted-string field into out
 * (appends); sets *is_null for "(null)". CAIRN_E_NOMEM only. */
CAIRN_MUST_CHECK cairn_err col__audit_decode(const uint8_t *v, size_t n, cairn_buf *out,
                                             bool *is_null);

/* Dry-run rows (dry_run_audit.c), in the corpus field names: the row of an
 * audit event record (r->audit set) or of a Kubernetes audit record. New
 * reference, NULL on allocation failure. */
struct json_t;
struct json_t *col__audit_row_json(const col_rec *r);
struct json_t *col__k8s_row_json(const col_rec *r);

/* auditd front-end and hooks for parse.c. */
CAIRN_MUST_CHECK cairn_err col__audit_new(col_audit **out);
void col__audit_free(col_audit *a);
CAIRN_MUST_CHECK cairn_err col__audit_line(col_parser *p, const uint8_t *line, size_t len,
                                           uint64_t off, uint64_t line_no, col_rec_cb cb, void *ud);
CAIRN_MUST_CHECK cairn_err col__audit_flush(col_parser *p, bool all, col_rec_cb cb, void *ud);
uint64_t col__audit_safe_offset(const col_audit *a, uint64_t next_off);

#endif
