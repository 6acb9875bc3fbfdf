/* query/output.c: renders records for cairn-query as text, JSON lines or CSV.
 *
 * Text is for people at a terminal: one line per record, every byte that
 * could move the cursor or is not UTF-8 escaped, so a hostile log line cannot
 * forge output. JSON is pb_record_json (the same shape as the Kafka value) and
 * is the byte-exact form. CSV follows RFC 4180 (CRLF rows, quoted fields).
 */
#include <stdlib.h>
#include <string.h>

#include "common/timeparse.h"
#include "query/internal.h"

#define COL_DIM "\033[2m"
#define COL_IDENT "\033[36m"
#define COL_ERR "\033[31m"
#define COL_RESET "\033[0m"

size_t qry__utf8_seq(const uint8_t *p, size_t n, uint32_t *cp) {
  uint8_t c = p[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len;
  uint32_t v, min;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    v = c & 0x1F;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    v = c & 0x0F;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    v = c & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (p[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

cairn_err qry__text_escape(cairn_buf *out, const uint8_t *p, size_t n) {
  cairn_err e = cairn_buf_reserve(out, n);
  if (e) return e;
  size_t i = 0;
  while (i < n) {
    /* copy the longest run that needs no escaping in one append */
    size_t run = i;
    uint32_t cp = 0;
    size_t sl = 0;
    while (run < n) {
      sl = qry__utf8_seq(p + run, n - run, &cp);
      if (sl == 0 || cp < 0x20 || cp == 0x7F || cp == '\\' || (cp >= 0x80 && cp <= 0x9F)) break;
      run += sl;
    }
    e = cairn_buf_append(out, p + i, run - i);
    if (e) return e;
    i = run;
    if (i >= n) break;
    if (sl == 0) {
      e = cairn_buf_printf(out, "\\x%02X", p[i]);
      i++;
    } else {
      switch (cp) {
      case '\n': e = cairn_buf_append(out, "\\n", 2); break;
      case '\r': e = cairn_buf_append(out, "\\r", 2); break;
      case '\t': e = cairn_buf_append(out, "\\t", 2); break;
      case '\\': e = cairn_buf_append(out, "\\\\", 2); break;
      default:
        if (cp < 0x80)
          e = cairn_buf_printf(out, "\\x%02X", (unsigned)cp);
        else
          e = cairn_buf_printf(out, "\\u%04X", (unsigned)cp); /* C1 control */
        break;
      }
      i += sl;
    }
    if (e) return e;
  }
  return CAIRN_OK;
}

/* Does field p[0..n) need RFC 4180 quoting? */
static bool csv_needs_quotes(const uint8_t *p, size_t n) {
  if (n == 0) return false;
  if (p[0] == ' ' || p[n - 1] == ' ') return true;
  for (size_t i = 0; i < n; i++)
    if (p[i] == ',' || p[i] == '"' || p[i] == '\r' || p[i] == '\n') return true;
  return false;
}

cairn_err qry__csv_field(cairn_buf *out, const uint8_t *p, size_t n) {
  bool quote = csv_needs_quotes(p, n);
  cairn_err e = cairn_buf_reserve(out, n + 2);
  if (e) return e;
  if (quote && (e = cairn_buf_append(out, "\"", 1))) return e;
  size_t i = 0;
  while (i < n) {
    uint32_t cp = 0;
    size_t sl = qry__utf8_seq(p + i, n - i, &cp);
    if (sl == 0 || cp == 0) {
      e = cairn_buf_printf(out, "\\x%02X", p[i]);
      i++;
    } else if (cp == '"') {
      e = cairn_buf_append(out, "\"\"", 2);
      i++;
    } else {
      e = cairn_buf_append(out, p + i, sl);
      i += sl;
    }
    if (e) return e;
  }
  if (quote && (e = cairn_buf_append(out, "\"", 1))) return e;
  return CAIRN_OK;
}

static cairn_err csv_str(cairn_buf *out, const char *s, bool last) {
  cairn_err e = qry__csv_field(out, (const uint8_t *)s, s ? strlen(s) : 0);
  if (e) return e;
  return last ? cairn_buf_append(out, "\r\n", 2) : cairn_buf_append(out, ",", 1);
}

static cairn_err render_csv(cairn_buf *b, const Cairn__Record *r) {
  char ts[40];
  cairn_time_format(r->time_ns, ts, sizeof(ts));
  cairn_err e;
  if ((e = csv_str(b, ts, false))) return e;
  if ((e = csv_str(b, r->node, false))) return e;
  if ((e = csv_str(b, r->kube_namespace, false))) return e;
  if ((e = csv_str(b, r->pod, false))) return e;
  if ((e = csv_str(b, r->container, false))) return e;
  if ((e = csv_str(b, pb_stream_name(r->stream), false))) return e;
  if ((e = csv_str(b, pb_source_name(r->source), false))) return e;
  if ((e = qry__csv_field(b, r->message.data, r->message.len))) return e;
  return cairn_buf_append(b, "\r\n", 2);
}

static bool str_empty(const char *s) { return !s || !*s; }

/* Escaped cell for a possibly empty string field: "-" stands for empty. */
static cairn_err text_cell(cairn_buf *b, const char *s) {
  if (str_empty(s)) return cairn_buf_append(b, "-", 1);
  return qry__text_escape(b, (const uint8_t *)s, strlen(s));
}

/* Append the four leading text cells of r to b and record their lengths.
 * ident is namespace/pod/container ("-" when the record has none of them,
 * as for auditd); stream falls back to the source name ("audit"). */
static cairn_err text_cells(cairn_buf *b, const Cairn__Record *r, size_t len[4], int *stream_class) {
  char ts[40];
  size_t start = b->len;
  size_t n = cairn_time_format(r->time_ns, ts, sizeof(ts));
  cairn_err e = cairn_buf_append(b, ts, n);
  if (e) return e;
  len[0] = b->len - start;

  start = b->len;
  if ((e = text_cell(b, r->node))) return e;
  len[1] = b->len - start;

  start = b->len;
  if (str_empty(r->kube_namespace) && str_empty(r->pod) && str_empty(r->container)) {
    e = cairn_buf_append(b, "-", 1);
  } else {
    if (!e) e = text_cell(b, r->kube_namespace);
    if (!e) e = cairn_buf_append(b, "/", 1);
    if (!e) e = text_cell(b, r->pod);
    if (!e) e = cairn_buf_append(b, "/", 1);
    if (!e) e = text_cell(b, r->container);
  }
  if (e) return e;
  len[2] = b->len - start;

  start = b->len;
  const char *stream = pb_stream_name(r->stream);
  if (str_empty(stream)) stream = pb_source_name(r->source);
  if ((e = text_cell(b, stream))) return e;
  len[3] = b->len - start;
  *stream_class = r->stream == CAIRN__LOG_STREAM__LOG_STREAM_STDERR;
  return CAIRN_OK;
}

/* Columns in terminal cells: code points, as the cells are valid UTF-8. */
static size_t display_width(const uint8_t *p, size_t n) {
  size_t w = 0;
  for (size_t i = 0; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) w++;
  return w;
}

static cairn_err pad(cairn_buf *b, size_t have, size_t want) {
  static const char spaces[] = "                                ";
  while (have < want) {
    size_t k = want - have < sizeof(spaces) - 1 ? want - have : sizeof(spaces) - 1;
    cairn_err e = cairn_buf_append(b, spaces, k);
    if (e) return e;
    have += k;
  }
  return CAIRN_OK;
}

/* Assemble one text line into w->line from cells; widths NULL = no padding. */
static cairn_err text_line(qry_writer *w, const uint8_t *cells, const size_t len[4],
                           const uint8_t *msg, size_t msg_len, int stream_class,
                           const size_t *widths) {
  static const char *const colors[4] = {COL_DIM, NULL, COL_IDENT, NULL};
  cairn_buf *b = &w->line;
  cairn_err e = CAIRN_OK;
  size_t off = 0;
  for (int c = 0; c < 4 && !e; c++) {
    const char *color = c == 3 && stream_class ? COL_ERR : colors[c];
    if (w->color && color) e = cairn_buf_append_str(b, color);
    if (!e) e = cairn_buf_append(b, cells + off, len[c]);
    if (!e && w->color && color) e = cairn_buf_append_str(b, COL_RESET);
    if (!e && widths && c > 0) e = pad(b, display_width(cells + off, len[c]), widths[c - 1]);
    if (!e) e = cairn_buf_append(b, " ", 1);
    off += len[c];
  }
  if (!e) e = cairn_buf_append(b, msg, msg_len);
  if (!e) e = cairn_buf_append(b, "\n", 1);
  return e;
}

static cairn_err write_buf(qry_writer *w, cairn_buf *b) {
  if (b->len && fwrite(b->ptr, 1, b->len, w->out) != b->len) return CAIRN_E_IO;
  cairn_buf_reset(b);
  return CAIRN_OK;
}

/* Write the held-back window with columns padded to the widest cell seen so
 * far (widths only grow, so consecutive windows stay aligned). */
static cairn_err flush_pending(qry_writer *w) {
  for (size_t i = 0; i < w->npending; i++) {
    const qry_row *row = &w->pending[i];
    const uint8_t *cells = w->rows.ptr + row->off;
    size_t off = row->len[0];
    for (int c = 1; c < 4; c++) {
      size_t dw = display_width(cells + off, row->len[c]);
      if (dw > w->width[c - 1]) w->width[c - 1] = dw;
      off += row->len[c];
    }
  }
  cairn_err e = CAIRN_OK;
  for (size_t i = 0; i < w->npending && !e; i++) {
    const qry_row *row = &w->pending[i];
    const uint8_t *cells = w->rows.ptr + row->off;
    size_t cells_len = row->len[0] + row->len[1] + row->len[2] + row->len[3];
    e = text_line(w, cells, row->len, cells + cells_len, row->msg_len, row->stream_class,
                  w->width);
    if (!e && w->line.len >= 65536) e = write_buf(w, &w->line);
  }
  if (!e) e = write_buf(w, &w->line);
  w->npending = 0;
  cairn_buf_reset(&w->rows);
  return e;
}

cairn_err qry__writer_init(qry_writer *w, FILE *out, qry_format fmt, bool align, bool color) {
  memset(w, 0, sizeof(*w));
  w->out = out;
  w->fmt = fmt;
  w->align = align && fmt == QRY_FMT_TEXT;
  w->color = color && fmt == QRY_FMT_TEXT;
  if (w->align) {
    w->pending = calloc(QRY_ALIGN_WINDOW, sizeof(*w->pending));
    if (!w->pending) return CAIRN_E_NOMEM;
  }
  return CAIRN_OK;
}

cairn_err qry__writer_begin(qry_writer *w) {
  if (w->fmt != QRY_FMT_CSV) return CAIRN_OK;
  static const char header[] = "time,node,namespace,pod,container,stream,source,message\r\n";
  if (fwrite(header, 1, sizeof(header) - 1, w->out) != sizeof(header) - 1) return CAIRN_E_IO;
  return CAIRN_OK;
}

cairn_err qry__writer_record(qry_writer *w, const Cairn__Record *r) {
  cairn_err e;
  switch (w->fmt) {
  case QRY_FMT_JSON:
    e = pb_record_json(r, &w->line);
    if (!e) e = cairn_buf_append(&w->line, "\n", 1);
    break;
  case QRY_FMT_CSV:
    e = render_csv(&w->line, r);
    break;
  default:
    if (w->align) {
      qry_row *row = &w->pending[w->npending];
      row->off = w->rows.len;
      e = text_cells(&w->rows, r, row->len, &row->stream_class);
      size_t msg_start = w->rows.len;
      if (!e) e = qry__text_escape(&w->rows, r->message.data, r->message.len);
      if (e) return e;
      row->msg_len = w->rows.len - msg_start;
      w->written++;
      if (++w->npending == QRY_ALIGN_WINDOW) return flush_pending(w);
      return CAIRN_OK;
    }
    size_t len[4];
    int sc = 0;
    e = text_cells(&w->rows, r, len, &sc);
    size_t msg_start = w->rows.len;
    if (!e) e = qry__text_escape(&w->rows, r->message.data, r->message.len);
    if (!e)
      e = text_line(w, w->rows.ptr, len, w->rows.ptr + msg_start, w->rows.len - msg_start, sc,
                    NULL);
    cairn_buf_reset(&w->rows);
    break;
  }
  if (e) return e;
  w->written++;
  return write_buf(w, &w->line);
}

cairn_err qry__writer_finish(qry_writer *w) {
  cairn_err e = CAIRN_OK;
  if (w->align && w->npending) e = flush_pending(w);
  if (!e && fflush(w->out) != 0) e = CAIRN_E_IO;
  if (!e && ferror(w->out)) e = CAIRN_E_IO;
  return e;
}

void qry__writer_fini(qry_writer *w) {
  cairn_buf_fini(&w->line);
  cairn_buf_fini(&w->rows);
  free(w->pending);
  w->pending = NULL;
  w->npending = 0;
}

/* ---- aligned tables ---- */

size_t qry__display_width(const uint8_t *p, size_t n) { return display_width(p, n); }

void qry__table_init(qry_table *t, FILE *out, size_t ncols, bool align, bool color,
                     uint32_t right, const char *const *col_color, size_t window) {
  memset(t, 0, sizeof(*t));
  t->out = out;
  t->ncols = ncols > QRY_COLS_MAX ? QRY_COLS_MAX : ncols;
  t->align = align;
  t->color = color;
  t->right = right;
  t->window = align ? window : 1;
  for (size_t c = 0; col_color && c < t->ncols; c++) t->col_color[c] = col_color[c];
}

/* Render row r (cells at p) into t->line. */
static cairn_err table_line(qry_table *t, const qry_table_row *r, const uint8_t *p) {
  cairn_buf *b = &t->line;
  cairn_err e = CAIRN_OK;
  size_t off = 0;
  for (size_t c = 0; c < t->ncols && !e; c++) {
    size_t dw = display_width(p + off, r->len[c]);
    bool last = c + 1 == t->ncols && r->tail_len == 0;
    bool right = (t->right >> c) & 1;
    const char *color = (int)c == r->hl_col ? COL_ERR : t->col_color[c];
    if (c && !(last && r->len[c] == 0)) e = cairn_buf_append(b, " ", 1);
    if (!e && t->align && right) e = pad(b, dw, t->width[c]);
    if (!e && t->color && color) e = cairn_buf_append_str(b, color);
    if (!e) e = cairn_buf_append(b, p + off, r->len[c]);
    if (!e && t->color && color) e = cairn_buf_append_str(b, COL_RESET);
    if (!e && t->align && !right && !last) e = pad(b, dw, t->width[c]);
    off += r->len[c];
  }
  if (!e && r->tail_len) {
    if (p[off] != '\n') e = cairn_buf_append(b, " ", 1); /* -v blocks start on their own line */
    if (!e) e = cairn_buf_append(b, p + off, r->tail_len);
  }
  if (!e) e = cairn_buf_append(b, "\n", 1);
  return e;
}

static cairn_err table_flush(qry_table *t) {
  for (size_t i = 0; i < t->nrows; i++) {
    const qry_table_row *r = &t->rows[i];
    size_t off = r->off;
    for (size_t c = 0; c < t->ncols; c++) {
      size_t dw = display_width(t->cells.ptr + off, r->len[c]);
      if (dw > t->width[c]) t->width[c] = dw;
      off += r->len[c];
    }
  }
  cairn_err e = CAIRN_OK;
  for (size_t i = 0; i < t->nrows && !e; i++) {
    e = table_line(t, &t->rows[i], t->cells.ptr + t->rows[i].off);
    if (!e && t->line.len >= 65536) {
      if (fwrite(t->line.ptr, 1, t->line.len, t->out) != t->line.len) e = CAIRN_E_IO;
      cairn_buf_reset(&t->line);
    }
  }
  if (!e && t->line.len && fwrite(t->line.ptr, 1, t->line.len, t->out) != t->line.len)
    e = CAIRN_E_IO;
  cairn_buf_reset(&t->line);
  cairn_buf_reset(&t->cells);
  t->nrows = 0;
  return e;
}

cairn_err qry__table_add(qry_table *t, const cairn_buf *b, const size_t *lens, size_t tail_len,
                         int hl_col) {
  if (t->nrows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    qry_table_row *rows = realloc(t->rows, cap * sizeof(*rows));
    if (!rows) return CAIRN_E_NOMEM;
    t->rows = rows;
    t->cap = cap;
  }
  qry_table_row *r = &t->rows[t->nrows];
  memset(r, 0, sizeof(*r));
  r->off = t->cells.len;
  size_t total = tail_len;
  for (size_t c = 0; c < t->ncols; c++) {
    r->len[c] = lens[c];
    total += lens[c];
  }
  r->tail_len = tail_len;
  r->hl_col = hl_col;
  cairn_err e = cairn_buf_append(&t->cells, b->ptr, total);
  if (e) return e;
  t->nrows++;
  t->written++;
  if (t->window && t->nrows >= t->window) return table_flush(t);
  return CAIRN_OK;
}

cairn_err qry__table_finish(qry_table *t) {
  cairn_err e = table_flush(t);
  if (!e && fflush(t->out) != 0) e = CAIRN_E_IO;
  if (!e && ferror(t->out)) e = CAIRN_E_IO;
  return e;
}

void qry__table_fini(qry_table *t) {
  cairn_buf_fini(&t->cells);
  cairn_buf_fini(&t->line);
  free(t->rows);
  t->rows = NULL;
  t->nrows = t->cap = 0;
}
