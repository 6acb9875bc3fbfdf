/* collector/parse.c: the format-independent half of the record parsers:
 * parser lifecycle and dispatch to the format front-ends, per-stream
 * reassembly with truncation at max_record, UTF-8 validation and flagging,
 * and checkpoint-safe offsets. CRI/docker front-ends (parse_cri.c,
 * parse_docker.c) hand in col_frag values; a lone final fragment is emitted
 * without copying. auditd (parse_audit.c) keeps its own event state. */
#include <stdlib.h>
#include <string.h>

#include "collector/internal_audit.h"
#include "collector/internal_parse.h"

cairn_err col_parser_new(Cairn__Format fmt, size_t max_record, col_parser **out) {
  *out = NULL;
  Cairn__Source src;
  switch (fmt) {
    case CAIRN__FORMAT__FORMAT_CRI:
    case CAIRN__FORMAT__FORMAT_DOCKER:
      src = CAIRN__SOURCE__SOURCE_CONTAINER;
      break;
    case CAIRN__FORMAT__FORMAT_AUDITD:
      src = CAIRN__SOURCE__SOURCE_AUDIT;
      break;
    case CAIRN__FORMAT__FORMAT_K8S_AUDIT:
      src = CAIRN__SOURCE__SOURCE_K8S_AUDIT;
      break;
    default:
      return CAIRN_E_INVAL;
  }
  col_parser *p = calloc(1, sizeof(*p));
  if (!p) return CAIRN_E_NOMEM;
  p->fmt = fmt;
  p->source = src;
  p->max_record = max_record ? max_record : COL_DEFAULT_MAX_RECORD;
  for (int i = 0; i < COL_NSTREAMS; i++) {
    cairn_buf_init(&p->acc[i].buf);
    cairn_buf_init(&p->acc[i].attrs);
  }
  if (fmt == CAIRN__FORMAT__FORMAT_AUDITD && col__audit_new(&p->audit) != CAIRN_OK) {
    free(p);
    return CAIRN_E_NOMEM;
  }
  *out = p;
  return CAIRN_OK;
}

void col_parser_free(col_parser *p) {
  if (!p) return;
  for (int i = 0; i < COL_NSTREAMS; i++) {
    cairn_buf_fini(&p->acc[i].buf);
    cairn_buf_fini(&p->acc[i].attrs);
  }
  col__audit_free(p->audit);
  free(p);
}

cairn_err col_parser_line(col_parser *p, const uint8_t *line, size_t len, uint64_t off,
                          uint64_t line_no, col_rec_cb cb, void *ud) {
  switch (p->fmt) {
    case CAIRN__FORMAT__FORMAT_CRI:
      return col__cri_line(p, line, len, off, line_no, cb, ud);
    case CAIRN__FORMAT__FORMAT_AUDITD:
      return col__audit_line(p, line, len, off, line_no, cb, ud);
    case CAIRN__FORMAT__FORMAT_K8S_AUDIT:
      return col__k8s_line(p, line, len, off, line_no, cb, ud);
    default:
      return col__docker_line(p, line, len, off, line_no, cb, ud);
  }
}

cairn_err col_parser_flush(col_parser *p, bool all, col_rec_cb cb, void *ud) {
  if (!p->audit) return CAIRN_OK;
  return col__audit_flush(p, all, cb, ud);
}

size_t col_parser_audit_pending(const col_parser *p) { return p->audit ? p->audit->npending : 0; }

uint64_t col_parser_audit_serial_gaps(const col_parser *p) { return p->audit ? p->audit->gaps : 0; }

uint64_t col_parser_safe_offset(const col_parser *p, uint64_t next_off) {
  uint64_t safe = next_off;
  for (int i = 0; i < COL_NSTREAMS; i++)
    if (p->acc[i].pending && p->acc[i].start_off < safe) safe = p->acc[i].start_off;
  if (p->audit) safe = col__audit_safe_offset(p->audit, safe);
  return safe;
}

size_t col_parser_pending(const col_parser *p, const char *out[2]) {
  static const char *const names[COL_NSTREAMS] = {"stdout", "stderr"};
  size_t n = 0;
  for (int i = 0; i < COL_NSTREAMS; i++)
    if (p->acc[i].pending) out[n++] = names[i];
  return n;
}

static Cairn__LogStream stream_enum(int s) {
  return s == COL_STREAM_OUT ? CAIRN__LOG_STREAM__LOG_STREAM_STDOUT
                             : CAIRN__LOG_STREAM__LOG_STREAM_STDERR;
}

void col__rec_finish_emit(const col_parser *p, col_rec *r, col_rec_cb cb, void *ud) {
  if (r->full_len > p->max_record) {
    r->msg_len = col__utf8_cut(r->msg, p->max_record);
    r->flags |= CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED;
  }
  if (!col__utf8_valid(r->msg, r->msg_len))
    r->flags |= CAIRN__RECORD_FLAG__RECORD_FLAG_INVALID_UTF8;
  cb(r, ud);
}

void col__emit_unparsed(const col_parser *p, const uint8_t *line, size_t len, uint64_t line_no,
                        uint64_t end_off, col_rec_cb cb, void *ud) {
  col_rec r = {
      .time_ns = 0,
      .stream = CAIRN__LOG_STREAM__LOG_STREAM_UNKNOWN,
      .flags = CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED,
      .msg = line,
      .msg_len = len,
      .full_len = len,
      .fragments = 1,
      .first_line = line_no,
      .last_line = line_no,
      .end_offset = end_off,
      .attrs_json = NULL,
      .source = p->source,
  };
  col__rec_finish_emit(p, &r, cb, ud);
}

/* Open a partial record on a (nothing may change on NOMEM, so attrs are
 * copied before any field is set). */
static cairn_err acc_open(col_acc *a, const col_frag *f, uint64_t off, uint64_t line_no) {
  cairn_buf_reset(&a->attrs);
  if (f->attrs_json) {
    cairn_err e = cairn_buf_append(&a->attrs, f->attrs_json, strlen(f->attrs_json) + 1);
    if (e) return e;
  }
  cairn_buf_reset(&a->buf);
  a->pending = true;
  a->time_ns = f->time_ns;
  a->full_len = 0;
  a->fragments = 0;
  a->first_line = line_no;
  a->start_off = off;
  return CAIRN_OK;
}

cairn_err col__frag_feed(col_parser *p, const col_frag *f, uint64_t off, uint64_t line_no,
                         uint64_t end_off, col_rec_cb cb, void *ud) {
  col_acc *a = &p->acc[f->stream];
  if (!a->pending && f->final) {
    col_rec r = {
        .time_ns = f->time_ns,
        .stream = stream_enum(f->stream),
        .flags = 0,
        .msg = f->data,
        .msg_len = f->len,
        .full_len = f->len,
        .fragments = 1,
        .first_line = line_no,
        .last_line = line_no,
        .end_offset = end_off,
        .attrs_json = f->attrs_json,
        .source = p->source,
    };
    col__rec_finish_emit(p, &r, cb, ud);
    return CAIRN_OK;
  }

  /* bytes of this fragment that still fit under max_record */
  size_t have = a->pending ? a->buf.len : 0;
  size_t take = have < p->max_record ? p->max_record - have : 0;
  if (take > f->len) take = f->len;
  cairn_err e = cairn_buf_reserve(&a->buf, take);
  if (e) return e;
  if (!a->pending) {
    e = acc_open(a, f, off, line_no);
    if (e) return e;
  }
  if (take) {
    memcpy(a->buf.ptr + a->buf.len, f->data, take);
    a->buf.len += take;
  }
  a->full_len += f->len;
  a->fragments++;
  if (!f->final) return CAIRN_OK;

  col_rec r = {
      .time_ns = a->time_ns,
      .stream = stream_enum(f->stream),
      .flags = 0,
      .msg = a->buf.ptr,
      .msg_len = a->buf.len,
      .full_len = a->full_len,
      .fragments = a->fragments,
      .first_line = a->first_line,
      .last_line = line_no,
      .end_offset = end_off,
      .attrs_json = a->attrs.len ? (const char *)a->attrs.ptr : NULL,
      .source = p->source,
  };
  if (!r.msg) r.msg = (const uint8_t *)""; /* empty record: keep msg non-NULL */
  col__rec_finish_emit(p, &r, cb, ud);
  a->pending = false;
  cairn_buf_reset(&a->buf);
  cairn_buf_reset(&a->attrs);
  if (a->buf.cap > COL_ACC_KEEP_CAP) cairn_buf_fini(&a->buf);
  if (a->attrs.cap > COL_ACC_KEEP_CAP) cairn_buf_fini(&a->attrs);
  return CAIRN_OK;
}

/* ---- UTF-8 ---- */

bool col__utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    /* ASCII runs 16 bytes at a time */
    while (i + 16 <= n) {
      uint64_t w0, w1;
      memcpy(&w0, s + i, 8);
      memcpy(&w1, s + i + 8, 8);
      if ((w0 | w1) & 0x8080808080808080ULL) break;
      i += 16;
    }
    if (i >= n) break;
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c < 0xC2) return false; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) {
      if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return false;
      i += 2;
      continue;
    }
    if (c < 0xF0) {
      if (i + 2 >= n) return false;
      uint8_t c1 = s[i + 1], c2 = s[i + 2];
      if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return false;
      if (c == 0xE0 && c1 < 0xA0) return false; /* overlong */
      if (c == 0xED && c1 > 0x9F) return false; /* UTF-16 surrogate */
      i += 3;
      continue;
    }
    if (c < 0xF5) {
      if (i + 3 >= n) return false;
      uint8_t c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
      if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return false;
      if (c == 0xF0 && c1 < 0x90) return false; /* overlong */
      if (c == 0xF4 && c1 > 0x8F) return false; /* above U+10FFFF */
      i += 4;
      continue;
    }
    return false;
  }
  return true;
}

size_t col__utf8_cut(const uint8_t *s, size_t n) {
  size_t i = n;
  /* walk back over at most 3 continuation bytes to the last lead byte */
  while (i > 0 && n - i < 3 && (s[i - 1] & 0xC0) == 0x80) i--;
  if (i == 0) return n;
  uint8_t lead = s[i - 1];
  size_t need;
  if (lead >= 0xC2 && lead < 0xE0)
    need = 2;
  else if (lead >= 0xE0 && lead < 0xF0)
    need = 3;
  else if (lead >= 0xF0 && lead < 0xF5)
    need = 4;
  else
    return n; /* ASCII or invalid lead: nothing to keep whole */
  size_t have = n - (i - 1);
  return have < need ? i - 1 : n;
}
