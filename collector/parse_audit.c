/* collector/parse_audit.c: the auditd front-end (RAW and ENRICHED audit.log):
 * line framing ([node=N ]type=T msg=audit(S.MS:SERIAL): ...), grouping of
 * records into events by stamp, deciding when an event is over, serial gap
 * detection, and emitting each event as one col_rec with typed attrs.
 *
 * When is an event over? On its EOE. A SYSCALL event whose PROCTITLE arrived
 * is "ready": audit.log often carries no EOE, so it is over as soon as a
 * line of a different, not yet pending event arrives (lines of other pending
 * events, i.e. interleaving, do not end it, so a late EOE still joins). An
 * event without SYSCALL (CONFIG_CHANGE, ANOM_ABEND alone) ends when a new
 * event with a later stamp time arrives; userspace records (USER_* ...) are
 * events of their own; anything else ends 2 s (stamp time) later, at
 * col_parser_flush(), or when 256 items are pending.
 *
 * Emission order. Events complete out of file order (an interleaved event
 * that started later can end first), but the aggregator keeps a record only
 * if its end_offset is above the highest it stored for the file stream. So
 * an event that is over is marked done and stays in its slot (no record joins
 * it any more) until every pending item that ends earlier in the file is done
 * too: drain() emits done items in end_offset order and stops at the first
 * one that is not done. Lines that do not frame and single-record events are
 * emitted at once only when nothing is pending; otherwise they wait in a slot
 * as well. end_offsets of different items never tie (each line belongs to one
 * item; a gap item ends inside the line that revealed it), so the emitted
 * end_offsets are strictly increasing.
 *
 * Serial gaps: the highest serial per node is tracked; a jump opens a gap
 * item at the line that revealed it, late serials inside it are taken out,
 * and it is done (reported) once a serial COL_AUDIT_GAP_WINDOW above it or an
 * event 2 s (stamp time) later arrives, or at a full flush.
 */
#include <stdlib.h>
#include <string.h>

#include "collector/internal_audit.h"

cairn_err col__audit_new(col_audit **out) {
  col_audit *a = calloc(1, sizeof(*a));
  if (!a) return CAIRN_E_NOMEM;
  col__audit_ev_reset(&a->single);
  *out = a;
  return CAIRN_OK;
}

void col__audit_free(col_audit *a) {
  if (!a) return;
  for (size_t i = 0; i < a->nev; i++) col__audit_ev_fini(&a->ev[i]);
  free(a->ev);
  col__audit_ev_fini(&a->single);
  cairn_buf_fini(&a->attrs);
  cairn_buf_fini(&a->scratch);
  free(a);
}

/* ---- framing ---- */

static size_t digits(const uint8_t *s, size_t i, size_t n, size_t max) {
  size_t j = i;
  while (j < n && j - i < max && s[j] >= '0' && s[j] <= '9') j++;
  return j - i;
}

static uint64_t to_u64(const uint8_t *s, size_t n) {
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) x = x * 10 + (uint64_t)(s[i] - '0');
  return x;
}

/* Split a line into node, type, stamp, raw body and ENRICHED part. */
static bool frame(const uint8_t *s, size_t n, col_aline *l) {
  memset(l, 0, sizeof(*l));
  size_t i = 0;
  if (n >= 5 && memcmp(s, "node=", 5) == 0) {
    const uint8_t *sp = memchr(s + 5, ' ', n - 5);
    if (!sp) return false;
    l->node = s + 5;
    l->node_len = (size_t)(sp - s) - 5;
    i = (size_t)(sp - s) + 1;
  }
  if (n - i < 5 || memcmp(s + i, "type=", 5) != 0) return false;
  i += 5;
  const uint8_t *sp = memchr(s + i, ' ', n - i);
  if (!sp || sp == s + i) return false;
  l->type = s + i;
  l->type_len = (size_t)(sp - s) - i;
  i = (size_t)(sp - s) + 1;
  if (n - i < 10 || memcmp(s + i, "msg=audit(", 10) != 0) return false;
  i += 10;
  size_t stamp = i;
  size_t ns = digits(s, i, n, 18);
  if (!ns || i + ns >= n || s[i + ns] != '.') return false;
  uint64_t sec = to_u64(s + i, ns);
  i += ns + 1;
  size_t nf = digits(s, i, n, 9);
  if (!nf || i + nf >= n || s[i + nf] != ':') return false;
  uint64_t frac = to_u64(s + i, nf);
  for (size_t k = nf; k < 9; k++) frac *= 10;
  l->stamp = s + stamp;
  l->stamp_len = i + nf - stamp;
  i += nf + 1;
  size_t nse = digits(s, i, n, 19);
  if (!nse || n - (i + nse) < 2 || s[i + nse] != ')' || s[i + nse + 1] != ':') return false;
  l->serial = to_u64(s + i, nse);
  i += nse + 2;
  if (i < n && s[i] == ' ') i++;
  if (sec > (uint64_t)INT64_MAX / 1000000000 - 1) return false;
  l->time_ns = (int64_t)sec * 1000000000 + (int64_t)frac;
  l->time_ms = l->time_ns / 1000000;
  const uint8_t *gs = memchr(s + i, 0x1d, n - i);
  l->body = s + i;
  l->body_len = gs ? (size_t)(gs - s) - i : n - i;
  if (gs) {
    l->enr = gs + 1;
    l->enr_len = n - (size_t)(gs - s) - 1;
  }
  return true;
}

/* ---- events ---- */

static bool same_event(const col_audit_ev *ev, const col_aline *l) {
  if (ev->serial != l->serial || ev->time_ns != l->time_ns) return false;
  size_t nl = ev->node.set ? ev->node.len : 0;
  if (nl != l->node_len) return false;
  return nl == 0 || memcmp(ev->vals.ptr + ev->node.off, l->node, nl) == 0;
}

/* Start ev for the line's stamp (ev was reset). */
static cairn_err ev_open(col_audit *a, col_audit_ev *ev, const col_aline *l, uint64_t off) {
  ev->time_ns = l->time_ns;
  ev->time_ms = l->time_ms;
  ev->serial = l->serial;
  size_t sl = l->stamp_len < sizeof(ev->stamp) - 1 ? l->stamp_len : sizeof(ev->stamp) - 1;
  memcpy(ev->stamp, l->stamp, sl);
  ev->stamp[sl] = '\0';
  ev->first_off = off;
  ev->seq = a->next_seq++;
  if (l->node) {
    ev->node = (col_astr){.off = (uint32_t)ev->vals.len, .len = (uint32_t)l->node_len, .set = true};
    cairn_err e = cairn_buf_append(&ev->vals, l->node, l->node_len);
    if (e) return e;
  }
  return CAIRN_OK;
}

/* Add one record (line) to ev. keep_raw: copy the line into ev->raw. */
static cairn_err ev_add(const col_parser *p, col_audit_ev *ev, const col_aline *l, col_atype c,
                        const uint8_t *line, size_t len, uint64_t off, uint64_t line_no,
                        bool keep_raw) {
  cairn_err e = cairn_buf_append(&ev->lines, &line_no, sizeof(line_no));
  if (!e && ev->nrec) e = cairn_buf_append(&ev->types, ",", 1);
  if (!e) e = cairn_buf_append(&ev->types, l->type, l->type_len);
  if (e) return e;
  if (keep_raw) {
    size_t sep = ev->nrec ? 1 : 0;
    size_t room = p->max_record > ev->raw.len ? p->max_record - ev->raw.len : 0;
    if (sep && room) {
      e = cairn_buf_append(&ev->raw, "\n", 1);
      room--;
    }
    if (!e && room) e = cairn_buf_append(&ev->raw, line, len < room ? len : room);
    if (e) return e;
    ev->raw_full += sep + len;
  }
  if (ev->nrec == 0 || line_no < ev->first_line) ev->first_line = line_no;
  if (line_no >= ev->last_line) {
    ev->last_line = line_no;
    ev->end_off = off + len + 1;
  }
  ev->nrec++;
  if (c == COL_AT_SYSCALL) ev->has_syscall = true;
  if (c == COL_AT_EOE) ev->has_eoe = true;
  if (c == COL_AT_EXECVE) ev->has_execve = true;
  if (c == COL_AT_PROCTITLE && ev->has_syscall) ev->ready = true;
  return col__audit_ev_fields(ev, l, c);
}

/* ---- emission ---- */

typedef struct attr_builder {
  col_audit *a;
  size_t n;
} attr_builder;

static void add_attr(attr_builder *b, const char *key, const uint8_t *v, size_t len) {
  col_attr *at = (col_attr *)b->a->attrs.ptr + b->n++;
  at->key = key;
  at->val = v;
  at->len = len;
}

/* Format into the pre-reserved scratch buffer (never reallocates here). */
static void add_num(attr_builder *b, const char *key, int64_t v) {
  cairn_buf *s = &b->a->scratch;
  uint8_t *d = s->ptr + s->len;
  char tmp[24];
  size_t k = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[k++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  size_t n = 0;
  if (v < 0) d[n++] = '-';
  while (k) d[n++] = (uint8_t)tmp[--k];
  s->len += n;
  add_attr(b, key, d, n);
}

static void add_str(attr_builder *b, const col_audit_ev *ev, const char *key, col_astr s) {
  if (s.set && !s.null) add_attr(b, key, col__astr_ptr(ev, s), s.len);
}

static bool has_attr(const attr_builder *b, const char *key) {
  const col_attr *at = (const col_attr *)b->a->attrs.ptr;
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(at[i].key, key) == 0) return true;
  return false;
}

/* msg='...' and ENRICHED pairs; a key already emitted (exe of a USER_*
 * record, a second occurrence) is skipped. */
static void add_kvs(attr_builder *b, const col_audit_ev *ev, const cairn_buf *list) {
  const col_akv *kv = (const col_akv *)list->ptr;
  for (size_t i = 0; i < list->len / sizeof(*kv); i++) {
    const char *key = (const char *)col__astr_ptr(ev, kv[i].k);
    if (!kv[i].v.set || has_attr(b, key)) continue;
    add_attr(b, key, col__astr_ptr(ev, kv[i].v), kv[i].v.len);
  }
}

/* Build the attrs of ev into a->attrs (pointers valid until the next build). */
static cairn_err build_attrs(col_audit *a, const col_audit_ev *ev, size_t *n_out) {
  size_t nkeys = ev->keys.len / sizeof(col_astr);
  size_t npaths = ev->paths.len / sizeof(col_apath);
  size_t max = 32 + nkeys + npaths + (ev->user_msg.len + ev->enr.len) / sizeof(col_akv);
  size_t need = 16 * 24 + (ev->proctitle.set ? ev->proctitle.len : 0);
  const col_apath *ap = (const col_apath *)ev->paths.ptr;
  for (size_t i = 0; i < npaths; i++) need += ap[i].name.len + ap[i].nametype.len + 8;
  cairn_buf_reset(&a->attrs);
  cairn_buf_reset(&a->scratch);
  cairn_err e = cairn_buf_reserve(&a->attrs, max * sizeof(col_attr));
  if (!e) e = cairn_buf_reserve(&a->scratch, need);
  if (e) return e;

  attr_builder b = {.a = a};
  add_attr(&b, "types", ev->types.ptr, ev->types.len);
  add_num(&b, "serial", (int64_t)ev->serial);
  bool complete = col__audit_ev_complete(ev);
  add_attr(&b, "complete", (const uint8_t *)(complete ? "true" : "false"), complete ? 4 : 5);
  add_str(&b, ev, "node", ev->node);
  add_str(&b, ev, "arch", ev->arch);
  if (ev->syscall.set) add_num(&b, "syscall", ev->syscall.v);
  if (ev->success >= 0)
    add_attr(&b, "success", (const uint8_t *)(ev->success ? "yes" : "no"), ev->success ? 3 : 2);
  if (ev->exit.set) add_num(&b, "exit", ev->exit.v);
  const col_aint *ints[] = {&ev->pid, &ev->ppid, &ev->uid, &ev->auid, &ev->euid, &ev->ses};
  const char *const inames[] = {"pid", "ppid", "uid", "auid", "euid", "ses"};
  for (size_t i = 0; i < 6; i++)
    if (ints[i]->set) add_num(&b, inames[i], ints[i]->v);
  add_str(&b, ev, "comm", ev->comm);
  add_str(&b, ev, "exe", ev->exe);
  const col_astr *ks = (const col_astr *)ev->keys.ptr;
  for (size_t i = 0; i < nkeys; i++) add_str(&b, ev, "key", ks[i]);
  if (ev->proctitle.set && !ev->proctitle.null) {
    /* NULs between arguments become spaces; trailing NULs are dropped */
    const uint8_t *src = col__astr_ptr(ev, ev->proctitle);
    size_t n = ev->proctitle.len;
    while (n && src[n - 1] == 0) n--;
    uint8_t *d = a->scratch.ptr + a->scratch.len;
    for (size_t i = 0; i < n; i++) d[i] = src[i] ? src[i] : ' ';
    a->scratch.len += n;
    add_attr(&b, "proctitle", d, n);
  }
  add_str(&b, ev, "cwd", ev->cwd);
  for (size_t i = 0; i < npaths; i++) {
    uint8_t *d = a->scratch.ptr + a->scratch.len;
    size_t k = 0;
    if (ap[i].name.set && !ap[i].name.null) {
      memcpy(d, col__astr_ptr(ev, ap[i].name), ap[i].name.len);
      k = ap[i].name.len;
    } else {
      memcpy(d, "(null)", 6);
      k = 6;
    }
    d[k++] = ':';
    if (ap[i].nametype.set) {
      memcpy(d + k, col__astr_ptr(ev, ap[i].nametype), ap[i].nametype.len);
      k += ap[i].nametype.len;
    }
    a->scratch.len += k;
    add_attr(&b, "path", d, k);
  }
  if (ev->sig.set) add_num(&b, "sig", ev->sig.v);
  add_kvs(&b, ev, &ev->user_msg);
  add_kvs(&b, ev, &ev->enr);
  *n_out = b.n;
  return CAIRN_OK;
}

/* Emit ev; msg (len, full) is its raw text. */
static cairn_err ev_emit(col_parser *p, const col_audit_ev *ev, const uint8_t *msg, size_t len,
                         size_t full, col_rec_cb cb, void *ud) {
  size_t n_attrs = 0;
  cairn_err e = build_attrs(p->audit, ev, &n_attrs);
  if (e) return e;
  col_rec r = {
      .time_ns = ev->time_ns,
      .stream = CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN,
      .flags = 0,
      .msg = msg ? msg : (const uint8_t *)"",
      .msg_len = len,
      .full_len = full,
      .fragments = ev->nrec,
      .first_line = ev->first_line,
      .last_line = ev->last_line,
      .end_offset = ev->end_off,
      .attrs_json = NULL,
      .source = CAIRN__SOURCE__SOURCE_AUDIT,
      .attrs = n_attrs ? (const col_attr *)p->audit->attrs.ptr : NULL,
      .n_attrs = n_attrs,
      .audit = ev,
  };
  col__rec_finish_emit(p, &r, cb, ud);
  return CAIRN_OK;
}

/* A held line that did not frame. */
static void unparsed_emit(col_parser *p, const col_audit_ev *ev, col_rec_cb cb, void *ud) {
  col_rec r = {
      .stream = CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN,
      .flags = CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED,
      .msg = ev->raw.ptr ? ev->raw.ptr : (const uint8_t *)"",
      .msg_len = ev->raw.len,
      .full_len = ev->raw_full,
      .fragments = 1,
      .first_line = ev->first_line,
      .last_line = ev->last_line,
      .end_offset = ev->end_off,
      .source = p->source,
  };
  col__rec_finish_emit(p, &r, cb, ud);
}

/* The record of a serial gap. */
static cairn_err gap_emit(col_parser *p, const col_audit_ev *ev, col_rec_cb cb, void *ud) {
  col_audit *a = p->audit;
  char msg[512], first[24], last[24], missing[24];
  const uint8_t *node = col__astr_ptr(ev, ev->node);
  int nl = ev->node.set ? (int)ev->node.len : 0;
  int n;
  if (ev->gap_missing == ev->gap_last - ev->gap_first + 1 && ev->gap_first == ev->gap_last) {
    n = snprintf(msg, sizeof(msg), "%s%.*s%saudit serial %llu missing (1 event lost by the kernel "
                 "or auditd)", nl ? "node " : "", nl, (const char *)node, nl ? ": " : "",
                 (unsigned long long)ev->gap_first);
  } else if (ev->gap_missing == ev->gap_last - ev->gap_first + 1) {
    n = snprintf(msg, sizeof(msg), "%s%.*s%saudit serials %llu..%llu missing (%llu events lost by "
                 "the kernel or auditd)", nl ? "node " : "", nl, (const char *)node,
                 nl ? ": " : "", (unsigned long long)ev->gap_first,
                 (unsigned long long)ev->gap_last, (unsigned long long)ev->gap_missing);
  } else {
    n = snprintf(msg, sizeof(msg), "%s%.*s%s%llu audit serials between %llu and %llu missing "
                 "(%llu events lost by the kernel or auditd)", nl ? "node " : "", nl,
                 (const char *)node, nl ? ": " : "", (unsigned long long)ev->gap_missing,
                 (unsigned long long)ev->gap_first, (unsigned long long)ev->gap_last,
                 (unsigned long long)ev->gap_missing);
  }
  size_t mlen = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
  snprintf(first, sizeof(first), "%llu", (unsigned long long)ev->gap_first);
  snprintf(last, sizeof(last), "%llu", (unsigned long long)ev->gap_last);
  snprintf(missing, sizeof(missing), "%llu", (unsigned long long)ev->gap_missing);
  col_attr at[5] = {
      {"type", (const uint8_t *)"CAIRN_AUDIT_GAP", 15},
      {"serial_first", (const uint8_t *)first, strlen(first)},
      {"serial_last", (const uint8_t *)last, strlen(last)},
      {"missing", (const uint8_t *)missing, strlen(missing)},
      {"node", node, (size_t)nl},
  };
  col_rec r = {
      .time_ns = ev->time_ns,
      .stream = CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN,
      .msg = (const uint8_t *)msg,
      .msg_len = mlen,
      .full_len = mlen,
      .fragments = 0,
      .first_line = ev->first_line,
      .last_line = ev->last_line,
      .end_offset = ev->end_off,
      .source = CAIRN__SOURCE__SOURCE_AUDIT,
      .attrs = at,
      .n_attrs = nl ? 5 : 4,
      .audit_lost = ev->gap_missing,
  };
  a->gaps += ev->gap_missing;
  col__rec_finish_emit(p, &r, cb, ud);
  return CAIRN_OK;
}

/* Emit pending slot i and free it (also when the emission failed). */
static cairn_err slot_emit(col_parser *p, size_t i, col_rec_cb cb, void *ud) {
  col_audit *a = p->audit;
  col_audit_ev *ev = &a->ev[i];
  cairn_err e = CAIRN_OK;
  switch (ev->kind) {
    case COL_AEV_UNPARSED:
      unparsed_emit(p, ev, cb, ud);
      break;
    case COL_AEV_GAP:
      e = gap_emit(p, ev, cb, ud);
      break;
    default:
      e = ev_emit(p, ev, ev->raw.ptr, ev->raw.len, ev->raw_full, cb, ud);
      break;
  }
  col__audit_ev_reset(ev); /* used = false */
  a->npending--;
  return e;
}

/* The pending slot that ends first in the file (a->nev when none). */
static size_t first_ending(const col_audit *a) {
  size_t best = a->nev;
  for (size_t i = 0; i < a->nev; i++) {
    if (!a->ev[i].used) continue;
    if (best == a->nev || a->ev[i].end_off < a->ev[best].end_off) best = i;
  }
  return best;
}

/* Emit done items in end_off order, stopping at the first one that is not
 * done: it may still end earlier in the file than the items after it, and a
 * record emitted after one with a higher end_offset would be dropped by the
 * aggregator's dedupe. */
static cairn_err drain(col_parser *p, col_rec_cb cb, void *ud) {
  col_audit *a = p->audit;
  while (a->npending) {
    size_t i = first_ending(a);
    if (!a->ev[i].done) break;
    cairn_err e = slot_emit(p, i, cb, ud);
    if (e) return e;
  }
  return CAIRN_OK;
}

typedef enum { PICK_ALL, PICK_READY, PICK_NEW } pick_mode;

/* Is pending item ev over, given mode (and for PICK_NEW the newly arriving
 * line l, which belongs to no pending event)? */
static bool should_end(const col_audit_ev *ev, pick_mode mode, const col_aline *l) {
  if (mode == PICK_ALL) return true;
  if (ev->kind == COL_AEV_GAP) {
    if (mode != PICK_NEW) return false;
    bool same_node = (ev->node.set ? ev->node.len : 0) == l->node_len &&
                     (l->node_len == 0 || memcmp(col__astr_ptr(ev, ev->node), l->node, l->node_len) == 0);
    if (same_node && l->serial > ev->gap_last + COL_AUDIT_GAP_WINDOW) return true;
    return l->time_ms - ev->time_ms >= COL_AUDIT_TIMEOUT_MS;
  }
  if (ev->ready || (!ev->has_syscall && (mode == PICK_READY || ev->time_ms < l->time_ms)))
    return true;
  return mode == PICK_NEW && l->time_ms - ev->time_ms >= COL_AUDIT_TIMEOUT_MS;
}

/* Mark every pending item selected by mode done, then emit what may go. */
static cairn_err end_events(col_parser *p, pick_mode mode, const col_aline *l, col_rec_cb cb,
                            void *ud) {
  col_audit *a = p->audit;
  for (size_t i = 0; i < a->nev; i++) {
    col_audit_ev *ev = &a->ev[i];
    if (ev->used && !ev->done && should_end(ev, mode, l)) ev->done = true;
  }
  return drain(p, cb, ud);
}

/* A free slot for a new item (when the cap is hit, the item ending first is
 * taken as complete and whatever may go is emitted). */
static cairn_err slot_get(col_parser *p, col_rec_cb cb, void *ud, size_t *out) {
  col_audit *a = p->audit;
  while (a->npending >= COL_AUDIT_MAX_PENDING) {
    a->ev[first_ending(a)].done = true;
    cairn_err e = drain(p, cb, ud);
    if (e) return e;
  }
  for (size_t i = 0; i < a->nev; i++)
    if (!a->ev[i].used) {
      *out = i;
      return CAIRN_OK;
    }
  size_t nn = a->nev ? a->nev * 2 : 4;
  col_audit_ev *nv = realloc(a->ev, nn * sizeof(*nv));
  if (!nv) return CAIRN_E_NOMEM;
  memset(nv + a->nev, 0, (nn - a->nev) * sizeof(*nv));
  for (size_t i = a->nev; i < nn; i++) col__audit_ev_reset(&nv[i]);
  a->ev = nv;
  *out = a->nev;
  a->nev = nn;
  return CAIRN_OK;
}

/* Take a slot for a new item; it counts as pending from here. */
static cairn_err slot_take(col_parser *p, col_rec_cb cb, void *ud, col_audit_ev **out) {
  size_t i;
  cairn_err e = slot_get(p, cb, ud, &i);
  if (e) return e;
  col_audit_ev *ev = &p->audit->ev[i];
  ev->used = true;
  p->audit->npending++;
  *out = ev;
  return CAIRN_OK;
}

/* A record that is an event of its own: parse into the scratch event and
 * emit it straight from the line (no copy) when nothing is pending, else hold
 * it (done) until the items ending before it are emitted. */
static cairn_err emit_single(col_parser *p, const col_aline *l, col_atype c, const uint8_t *line,
                             size_t len, uint64_t off, uint64_t line_no, col_rec_cb cb, void *ud) {
  col_audit *a = p->audit;
  if (a->npending) {
    col_audit_ev *ev;
    cairn_err e = slot_take(p, cb, ud, &ev);
    if (!e) e = ev_open(a, ev, l, off);
    if (!e) e = ev_add(p, ev, l, c, line, len, off, line_no, true);
    ev->done = true;
    return e;
  }
  col_audit_ev *ev = &a->single;
  col__audit_ev_reset(ev);
  cairn_err e = ev_open(a, ev, l, off);
  if (!e) e = ev_add(p, ev, l, c, line, len, off, line_no, false);
  if (!e) e = ev_emit(p, ev, line, len < p->max_record ? len : p->max_record, len, cb, ud);
  return e;
}

/* A line that does not frame: emitted at once when nothing is pending, else
 * held (done) in a slot. */
static cairn_err unparsed_line(col_parser *p, const uint8_t *line, size_t len, uint64_t off,
                               uint64_t line_no, col_rec_cb cb, void *ud) {
  col_audit *a = p->audit;
  if (!a->npending) {
    col__emit_unparsed(p, line, len, line_no, off + len + 1, cb, ud);
    return CAIRN_OK;
  }
  col_audit_ev *ev;
  cairn_err e = slot_take(p, cb, ud, &ev);
  if (e) return e;
  ev->kind = COL_AEV_UNPARSED;
  ev->done = true;
  ev->first_off = off;
  ev->end_off = off + len + 1;
  ev->first_line = ev->last_line = line_no;
  ev->raw_full = len;
  return cairn_buf_append(&ev->raw, line, len < p->max_record ? len : p->max_record);
}

/* ---- serial gaps ---- */

/* The tracker of the line's node (created, or the least recently seen one
 * reused, when new). */
static col_anode *node_of(col_audit *a, const col_aline *l, bool *fresh) {
  size_t nl = l->node_len < sizeof(a->nodes[0].node) - 1 ? l->node_len : sizeof(a->nodes[0].node) - 1;
  *fresh = false;
  for (size_t i = 0; i < a->nnodes; i++) {
    col_anode *n = &a->nodes[i];
    /* nl == 0: l->node may be NULL (no node= prefix), never given to memcmp */
    if (strlen(n->node) == nl && (nl == 0 || memcmp(n->node, l->node, nl) == 0)) return n;
  }
  size_t pick = a->nnodes;
  if (a->nnodes == COL_AUDIT_MAX_NODES) {
    pick = 0;
    for (size_t i = 1; i < a->nnodes; i++)
      if (a->nodes[i].last_use < a->nodes[pick].last_use) pick = i;
  } else {
    a->nnodes++;
  }
  col_anode *n = &a->nodes[pick];
  memcpy(n->node, l->node ? (const char *)l->node : "", nl);
  n->node[nl] = '\0';
  *fresh = true;
  return n;
}

static bool gap_of_node(const col_audit_ev *ev, const col_aline *l) {
  size_t nl = ev->node.set ? ev->node.len : 0;
  return nl == l->node_len && (nl == 0 || memcmp(col__astr_ptr(ev, ev->node), l->node, nl) == 0);
}

/* Track the serial of a line that opens an event: a jump above the node's
 * highest serial opens a gap item at this line; a serial inside a gap that is
 * not reported yet (an interleaved event) is taken out of it. */
static cairn_err track_serial(col_parser *p, const col_aline *l, uint64_t off, uint64_t line_no,
                              col_rec_cb cb, void *ud) {
  col_audit *a = p->audit;
  bool fresh;
  col_anode *n = node_of(a, l, &fresh);
  n->last_use = a->next_seq;
  uint64_t s = l->serial;
  if (fresh || s + 100000 < n->max_serial) {
    n->max_serial = s; /* first event, or the serial counter restarted (reboot) */
    n->max_off = off;
    return CAIRN_OK;
  }
  if (s <= n->max_serial) {
    for (size_t i = 0; i < a->nev; i++) {
      col_audit_ev *g = &a->ev[i];
      if (!g->used || g->done || g->kind != COL_AEV_GAP || s < g->gap_first || s > g->gap_last ||
          !gap_of_node(g, l))
        continue;
      if (s == g->gap_first) {
        g->gap_first++;
      } else if (s == g->gap_last) {
        g->gap_last--;
      }
      if (--g->gap_missing == 0) {
        /* filled completely: nothing to report; what waited for it may go */
        col__audit_ev_reset(g);
        a->npending--;
        return drain(p, cb, ud);
      }
      break;
    }
    return CAIRN_OK;
  }
  uint64_t prev = n->max_serial, prev_off = n->max_off;
  n->max_serial = s;
  n->max_off = off;
  if (s == prev + 1) return CAIRN_OK;
  col_audit_ev *g;
  cairn_err e = slot_take(p, cb, ud, &g);
  if (e) return e;
  g->kind = COL_AEV_GAP;
  g->gap_first = prev + 1;
  g->gap_last = s - 1;
  g->gap_missing = s - 1 - prev;
  g->time_ns = l->time_ns;
  g->time_ms = l->time_ms;
  g->serial = s;
  /* re-reading from the line of serial prev finds the hole again (the safe
   * offset holds back to it while the gap is pending) */
  g->first_off = prev_off;
  g->end_off = off + 1; /* inside this line: after every earlier record, before this line's */
  g->first_line = g->last_line = line_no;
  g->seq = a->next_seq++;
  if (l->node) {
    g->node = (col_astr){.off = 0, .len = (uint32_t)l->node_len, .set = true};
    e = cairn_buf_append(&g->vals, l->node, l->node_len);
  }
  return e;
}

cairn_err col__audit_line(col_parser *p, const uint8_t *line, size_t len, uint64_t off,
                          uint64_t line_no, col_rec_cb cb, void *ud) {
  col_audit *a = p->audit;
  col_aline l;
  if (!frame(line, len, &l)) return unparsed_line(p, line, len, off, line_no, cb, ud);
  col_atype c = col__audit_type_class(l.type, l.type_len);
  if (c != COL_AT_USER) {
    for (size_t i = 0; i < a->nev; i++) {
      col_audit_ev *ev = &a->ev[i];
      if (!ev->used || ev->done || ev->kind != COL_AEV_EVENT || !same_event(ev, &l)) continue;
      cairn_err e = ev_add(p, ev, &l, c, line, len, off, line_no, true);
      if (e) return e;
      if (c == COL_AT_EOE) ev->done = true;
      /* it ends later now: items that waited for it may go */
      return c == COL_AT_EOE || a->npending > 1 ? drain(p, cb, ud) : CAIRN_OK;
    }
  }
  /* the line starts a new event: earlier ones that look over end now */
  cairn_err e = end_events(p, PICK_NEW, &l, cb, ud);
  if (!e) e = track_serial(p, &l, off, line_no, cb, ud);
  if (e) return e;
  if (c == COL_AT_USER || c == COL_AT_EOE)
    return emit_single(p, &l, c, line, len, off, line_no, cb, ud);
  col_audit_ev *ev;
  e = slot_take(p, cb, ud, &ev);
  if (!e) e = ev_open(a, ev, &l, off);
  if (!e) e = ev_add(p, ev, &l, c, line, len, off, line_no, true);
  return e;
}

cairn_err col__audit_flush(col_parser *p, bool all, col_rec_cb cb, void *ud) {
  return end_events(p, all ? PICK_ALL : PICK_READY, NULL, cb, ud);
}

uint64_t col__audit_safe_offset(const col_audit *a, uint64_t next_off) {
  uint64_t safe = next_off;
  for (size_t i = 0; i < a->nev; i++)
    if (a->ev[i].used && a->ev[i].first_off < safe) safe = a->ev[i].first_off;
  return safe;
}
