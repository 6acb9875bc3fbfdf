/* query/report.c: report.html of an evidence bundle: one self-contained page
 * (inline CSS, inline SVG, no script, no external asset) an auditor opens in
 * a browser: verification result, the query, who exported it and when,
 * counts by source / namespace / node, a time histogram, the first records.
 *
 * Everything shown comes from records or the command line, so all of it is
 * hostile input: every string passes through esc() (terminal escaping of
 * control and invalid bytes, then HTML entities), and a Content-Security-
 * Policy forbids scripts and remote loads even if an escape were missed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/timeparse.h"
#include "query/internal.h"

#define MSG_MAX 2000u      /* bytes of a message shown in the records table */
#define COUNT_ROWS 15u     /* values per counts table */
#define SVG_W 900
#define SVG_H 240
#define SVG_PAD_L 56
#define SVG_PAD_B 40
#define SVG_PAD_T 16

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d232b;"
    "background:#f4f6f8}"
    "main{max-width:1100px;margin:0 auto;padding:24px}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:0 0 10px}"
    ".sub{color:#5b6673;margin:0 0 20px}"
    "section{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:16px 20px;"
    "margin:0 0 18px}"
    ".verdict.ok{border-left:8px solid #1a7f37}.verdict.failed{border-left:8px solid #cf222e}"
    ".verdict.unchecked{border-left:8px solid #bf8700}"
    ".status{font-size:20px;font-weight:700;margin:0 0 8px}"
    ".ok .status{color:#1a7f37}.failed .status{color:#cf222e}.unchecked .status{color:#9a6700}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}"
    "th{background:#f6f8fa;font-weight:600}"
    "table.kv th{width:180px;background:none;color:#5b6673;font-weight:500}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".counts{display:flex;gap:18px;flex-wrap:wrap}.counts>div{flex:1;min-width:240px}"
    "pre,code,.mono{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;"
    "font-size:12.5px}"
    "pre{background:#f6f8fa;padding:8px 10px;border-radius:6px;white-space:pre-wrap;"
    "word-break:break-all;margin:0 0 10px}"
    "td.msg{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;"
    "white-space:pre-wrap;word-break:break-all}"
    ".note{color:#5b6673;font-size:12.5px;margin:8px 0 0}"
    "svg text{font:11px system-ui,sans-serif;fill:#5b6673}"
    "svg rect.bar{fill:#0969da}";

/* Append s[0..n) for HTML text or a quoted attribute: control characters and
 * bytes that are not valid UTF-8 become visible escapes (\n, \xNN) first. */
static cairn_err esc_n(cairn_buf *b, const void *s, size_t n) {
  cairn_buf t;
  cairn_buf_init(&t);
  cairn_err e = qry__text_escape(&t, s, n);
  for (size_t i = 0; !e && i < t.len; i++) {
    char c = (char)t.ptr[i];
    switch (c) {
    case '&': e = cairn_buf_append_str(b, "&amp;"); break;
    case '<': e = cairn_buf_append_str(b, "&lt;"); break;
    case '>': e = cairn_buf_append_str(b, "&gt;"); break;
    case '"': e = cairn_buf_append_str(b, "&quot;"); break;
    case '\'': e = cairn_buf_append_str(b, "&#39;"); break;
    default: e = cairn_buf_append(b, &c, 1);
    }
  }
  cairn_buf_fini(&t);
  return e;
}

static cairn_err esc(cairn_buf *b, const char *s) { return esc_n(b, s ? s : "", s ? strlen(s) : 0); }

/* Page builder: the first error sticks, later appends do nothing. */
typedef struct page {
  cairn_buf b;
  cairn_err err;
} page;

static void put(page *p, const char *s) {
  if (!p->err) p->err = cairn_buf_append_str(&p->b, s);
}

static void putf(page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(page *p, const char *fmt, ...) {
  if (p->err) return;
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(tmp)) {
    p->err = CAIRN_E_INVAL;
    return;
  }
  p->err = cairn_buf_append(&p->b, tmp, (size_t)n);
}

static void text(page *p, const char *s) {
  if (!p->err) p->err = esc(&p->b, s);
}

/* "2024-01-15 10:23:45Z" (seconds are enough for a page). */
static void fmt_time(int64_t ns, char *out, size_t cap) {
  char t[40];
  cairn_time_format(ns, t, sizeof(t));
  snprintf(out, cap, "%.10s %.8sZ", t, t + 11);
}

/* With milliseconds when the histogram buckets are shorter than a second. */
static void fmt_time_for(int64_t ns, int64_t bucket_ns, char *out, size_t cap) {
  char t[40];
  cairn_time_format(ns, t, sizeof(t));
  if (bucket_ns % 1000000000LL) snprintf(out, cap, "%.10s %.12sZ", t, t + 11);
  else snprintf(out, cap, "%.10s %.8sZ", t, t + 11);
}

/* A row of a key/value table; v is escaped. */
static void kv(page *p, const char *k, const char *v) {
  put(p, "<tr><th>");
  text(p, k);
  put(p, "</th><td>");
  text(p, v);
  put(p, "</td></tr>");
}

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

/* A JSON array of strings as "a, b, c" (escaped). */
static void list(page *p, const json_t *a) {
  for (size_t i = 0; i < json_array_size(a); i++) {
    if (i) put(p, ", ");
    text(p, json_string_value(json_array_get(a, i)));
  }
}

/* ---- sections ---- */

static void verification(page *p, const json_t *m, const qry_check *c) {
  const char *st = jstr(json_object_get(m, "verification"), "status");
  bool unchecked = strcmp(st, "signatures-not-checked") == 0;
  put(p, "<section id=\"verification\" class=\"verdict ");
  put(p, c->ok ? "ok" : unchecked ? "unchecked" : "failed");
  put(p, "\"><h2>Verification</h2><p class=\"status\" id=\"verification-status\">");
  put(p, c->ok ? "VERIFIED" : unchecked ? "SIGNATURES NOT CHECKED" : "FAILED");
  put(p, "</p><table class=\"kv\">");
  if (!c->ok) {
    put(p, "<tr><th>problem</th><td id=\"verification-problem\"><b>");
    text(p, c->code);
    put(p, "</b>: ");
    text(p, c->detail);
    put(p, "</td></tr>");
  }
  char v[160];
  snprintf(v, sizeof(v), "%llu, each byte for byte what the store committed",
           (unsigned long long)c->records);
  kv(p, "records proven", c->ok ? v : "-");
  snprintf(v, sizeof(v), "%llu link%s recomputed in %llu segment%s, each ending at a signed "
           "checkpoint", (unsigned long long)c->links, c->links == 1 ? "" : "s",
           (unsigned long long)c->segments, c->segments == 1 ? "" : "s");
  kv(p, "hash chain", v);
  if (c->cp_position) {
    char t[40];
    fmt_time(c->cp_time_ns, t, sizeof(t));
    snprintf(v, sizeof(v), "position %llu (up to seq %llu), signed %s",
             (unsigned long long)c->cp_position, (unsigned long long)c->cp_last_seq, t);
    kv(p, "signed checkpoint", v);
  }
  const json_t *key = json_object_get(m, "public_key");
  if (key) {
    snprintf(v, sizeof(v), "Ed25519, fingerprint %s", jstr(key, "fingerprint"));
    kv(p, "public key", v);
  } else {
    kv(p, "public key", "none: signatures not checked at export");
  }
  put(p, "</table><p class=\"note\">Checked when the bundle was written. This page is a "
         "rendering and is not itself proof: re-check the bundle offline with "
         "<code>cairn-query verify-export BUNDLE_DIR --public-key YOUR_COPY.pub</code>. The "
         "proof covers the records listed; it cannot show that the query matched nothing "
         "else.</p></section>");
}

static bool shell_safe(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-", *s))
      return false;
  return true;
}

static void query(page *p, const json_t *m) {
  const json_t *q = json_object_get(m, "query");
  put(p, "<section id=\"query\"><h2>Query</h2><pre id=\"query-command\">");
  const json_t *given = json_object_get(q, "given");
  for (size_t i = 0; i < json_array_size(given); i++) {
    const char *a = json_string_value(json_array_get(given, i));
    if (!a) continue;
    if (i) put(p, " ");
    if (i == 0) {
      const char *slash = strrchr(a, '/');
      text(p, slash ? slash + 1 : a);
    } else if (shell_safe(a)) {
      text(p, a);
    } else { /* single-quoted, ' as '\'' */
      put(p, "&#39;");
      for (const char *s = a; *s; s++) {
        if (*s == '\'') put(p, "&#39;\\&#39;&#39;");
        else if (!p->err) p->err = esc_n(&p->b, s, 1);
      }
      put(p, "&#39;");
    }
  }
  put(p, "</pre><table class=\"kv\" id=\"query-parsed\">");
  const json_t *pa = json_object_get(q, "parsed");
  const char *since = json_string_value(json_object_get(pa, "since"));
  const char *until = json_string_value(json_object_get(pa, "until"));
  kv(p, "from", since ? since : "(open)");
  kv(p, "before", until ? until : "(open)");
  const char *src = json_string_value(json_object_get(pa, "source"));
  if (src) kv(p, "source", src);
  const char *stream = json_string_value(json_object_get(pa, "stream"));
  if (stream) kv(p, "stream", stream);
  const char *f;
  json_t *fv;
  json_object_foreach(json_object_get(pa, "fields"), f, fv) {
    put(p, "<tr><th>");
    text(p, f);
    put(p, "</th><td>");
    list(p, json_object_get(fv, "given"));
    put(p, "</td></tr>");
  }
  static const char *const texts[] = {"grep", "regex"};
  for (size_t i = 0; i < 2; i++) {
    const json_t *a = json_object_get(pa, texts[i]);
    if (!json_array_size(a)) continue;
    put(p, "<tr><th>");
    put(p, texts[i]);
    put(p, json_is_true(json_object_get(pa, "ignore_case")) ? " (ignoring case)" : "");
    put(p, "</th><td class=\"mono\">");
    list(p, a);
    put(p, "</td></tr>");
  }
  json_int_t limit = json_integer_value(json_object_get(pa, "limit"));
  char v[96];
  if (limit) snprintf(v, sizeof(v), "%lld (%s)", (long long)limit, jstr(pa, "order"));
  else snprintf(v, sizeof(v), "none: every matching record");
  kv(p, "limit", v);
  put(p, "</table></section>");
}

static void exporter(page *p, const json_t *m) {
  const json_t *by = json_object_get(m, "exported_by");
  put(p, "<section id=\"exporter\"><h2>Exported by</h2><table class=\"kv\">");
  char v[96];
  snprintf(v, sizeof(v), "%lld", (long long)json_integer_value(json_object_get(by, "uid")));
  put(p, "<tr><th>user</th><td id=\"exporter-user\">");
  text(p, jstr(by, "user"));
  put(p, "</td></tr>");
  kv(p, "uid", v);
  if (json_object_get(by, "sudo_user")) kv(p, "via sudo from", jstr(by, "sudo_user"));
  kv(p, "host", jstr(by, "host"));
  put(p, "<tr><th>time (UTC)</th><td id=\"exporter-time\">");
  text(p, jstr(m, "created"));
  put(p, "</td></tr>");
  kv(p, "store", jstr(m, "store"));
  kv(p, "cairn version", jstr(m, "cairn_version"));
  kv(p, "bundle format", jstr(m, "format"));
  put(p, "</table></section>");
}

typedef struct kc {
  const char *k;
  json_int_t n;
} kc;

static int kc_cmp(const void *a, const void *b) {
  const kc *x = a, *y = b;
  if (x->n != y->n) return x->n < y->n ? 1 : -1;
  return strcmp(x->k, y->k);
}

static void count_table(page *p, const char *title, const char *id, const json_t *o) {
  size_t n = json_object_size(o), i = 0;
  kc *v = calloc(n ? n : 1, sizeof(*v));
  if (!v) {
    p->err = CAIRN_E_NOMEM;
    return;
  }
  const char *k;
  json_t *j;
  json_object_foreach((json_t *)o, k, j) {
    if (i < n) v[i++] = (kc){k, json_integer_value(j)};
  }
  qsort(v, i, sizeof(*v), kc_cmp);
  putf(p, "<div><table id=\"%s\"><tr><th>", id);
  text(p, title);
  put(p, "</th><th class=\"n\">records</th></tr>");
  for (size_t r = 0; r < i && r < COUNT_ROWS; r++) {
    put(p, "<tr><td>");
    text(p, v[r].k);
    putf(p, "</td><td class=\"n\">%lld</td></tr>", (long long)v[r].n);
  }
  if (i > COUNT_ROWS) {
    json_int_t rest = 0;
    for (size_t r = COUNT_ROWS; r < i; r++) rest += v[r].n;
    putf(p, "<tr><td><i>%zu more</i></td><td class=\"n\">%lld</td></tr>", i - COUNT_ROWS,
         (long long)rest);
  }
  put(p, "</table></div>");
  free(v);
}

static void counts(page *p, const json_t *m) {
  const json_t *c = json_object_get(m, "counts");
  putf(p, "<section id=\"counts\"><h2>Counts</h2><p>Records exported: <b id=\"count-total\">%lld"
          "</b></p><div class=\"counts\">",
       (long long)json_integer_value(json_object_get(c, "records")));
  count_table(p, "source", "count-source", json_object_get(c, "by_source"));
  count_table(p, "namespace", "count-namespace", json_object_get(c, "by_namespace"));
  count_table(p, "node", "count-node", json_object_get(c, "by_node"));
  put(p, "</div></section>");
}

static void bucket_label(int64_t b_ns, char *out, size_t cap) {
  int64_t s = b_ns / 1000000000LL;
  if (b_ns % 1000000000LL != 0) snprintf(out, cap, "%lldms", (long long)(b_ns / 1000000));
  else if (s % 86400 == 0) snprintf(out, cap, "%lldd", (long long)(s / 86400));
  else if (s % 3600 == 0) snprintf(out, cap, "%lldh", (long long)(s / 3600));
  else if (s % 60 == 0) snprintf(out, cap, "%lldm", (long long)(s / 60));
  else snprintf(out, cap, "%llds", (long long)s);
}

static void histogram(page *p, const json_t *m) {
  const json_t *h = json_object_get(m, "histogram");
  const json_t *cnt = json_object_get(h, "counts");
  size_t nb = json_array_size(cnt);
  int64_t start = json_integer_value(json_object_get(h, "start_ns"));
  int64_t b = json_integer_value(json_object_get(h, "bucket_ns"));
  put(p, "<section id=\"histogram\"><h2>Records over time</h2>");
  if (!nb || b <= 0) {
    put(p, "<p>No records.</p></section>");
    return;
  }
  json_int_t max = 1;
  for (size_t i = 0; i < nb; i++)
    if (json_integer_value(json_array_get(cnt, i)) > max)
      max = json_integer_value(json_array_get(cnt, i));
  char bl[24], t0[40], t1[40];
  bucket_label(b, bl, sizeof(bl));
  fmt_time_for(start, b, t0, sizeof(t0));
  fmt_time_for(start + (int64_t)nb * b, b, t1, sizeof(t1));
  int plot_w = SVG_W - SVG_PAD_L - 10, plot_h = SVG_H - SVG_PAD_B - SVG_PAD_T;
  putf(p, "<svg id=\"histogram-svg\" xmlns=\"http://www.w3.org/2000/svg\" width=\"100%%\" "
          "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"records per %s\">",
       SVG_W, SVG_H, bl);
  putf(p, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#8c959f\"/>", SVG_PAD_L,
       SVG_PAD_T + plot_h, SVG_PAD_L + plot_w, SVG_PAD_T + plot_h);
  putf(p, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#8c959f\"/>", SVG_PAD_L,
       SVG_PAD_T, SVG_PAD_L, SVG_PAD_T + plot_h);
  putf(p, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%lld</text>", SVG_PAD_L - 6,
       SVG_PAD_T + 10, (long long)max);
  putf(p, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>", SVG_PAD_L - 6,
       SVG_PAD_T + plot_h);
  double bw = (double)plot_w / (double)nb;
  double w = bw > 3 ? bw - 2 : bw; /* a gap between bars when there is room */
  if (w > 48) w = 48;                /* one or two buckets: bars, not a block */
  for (size_t i = 0; i < nb; i++) {
    json_int_t v = json_integer_value(json_array_get(cnt, i));
    double bh = (double)plot_h * (double)v / (double)max;
    char tb[40];
    fmt_time_for(start + (int64_t)i * b, b, tb, sizeof(tb));
    putf(p, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
            "<title>%s: %lld records</title></rect>",
         SVG_PAD_L + bw * (double)i + (bw - w) / 2, SVG_PAD_T + plot_h - bh, w, bh, tb,
         (long long)v);
  }
  putf(p, "<text x=\"%d\" y=\"%d\">%s</text>", SVG_PAD_L, SVG_H - 18, t0);
  putf(p, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>", SVG_PAD_L + plot_w,
       SVG_H - 18, t1);
  putf(p, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">records per %s bucket (UTC)</text>",
       SVG_PAD_L + plot_w / 2, SVG_H - 4, bl);
  put(p, "</svg></section>");
}

static void cell(page *p, const char *s) {
  put(p, "<td>");
  text(p, s && *s ? s : "-");
  put(p, "</td>");
}

static void records(page *p, const json_t *m, const uint8_t *bin, size_t bin_len) {
  json_int_t total = json_integer_value(json_object_get(json_object_get(m, "counts"), "records"));
  putf(p, "<section id=\"records\"><h2>Records (first %lld of %lld, seq order)</h2>",
       (long long)(total < QRY_REPORT_ROWS ? total : QRY_REPORT_ROWS), (long long)total);
  put(p, "<table id=\"records-table\"><tr><th>seq</th><th>time (UTC)</th><th>source</th>"
         "<th>node</th><th>namespace / pod / container</th><th>stream</th><th>message</th></tr>");
  cairn_arena a;
  cairn_arena_init(&a, 16u << 10);
  size_t off = 0, shown = 0, n;
  uint64_t seq;
  const uint8_t *rp;
  bool bad = false;
  while (!p->err && shown < QRY_REPORT_ROWS && qry__bin_next(bin, bin_len, &off, &seq, &rp, &n, &bad)) {
    Cairn__Record *r = NULL;
    cairn_arena_reset(&a);
    if (pb_record_unpack(rp, n, &a, &r) != CAIRN_OK) break;
    char t[40];
    fmt_time(r->time_ns, t, sizeof(t));
    putf(p, "<tr><td class=\"n\">%llu</td><td class=\"mono\">%s</td>", (unsigned long long)seq,
         t);
    cell(p, pb_source_name(r->source));
    cell(p, r->node);
    put(p, "<td>");
    text(p, r->kube_namespace && *r->kube_namespace ? r->kube_namespace : "-");
    put(p, " / ");
    text(p, r->pod && *r->pod ? r->pod : "-");
    put(p, " / ");
    text(p, r->container && *r->container ? r->container : "-");
    put(p, "</td>");
    cell(p, pb_stream_name(r->stream));
    put(p, "<td class=\"msg\">");
    size_t ml = r->message.len > MSG_MAX ? MSG_MAX : r->message.len;
    if (!p->err) p->err = esc_n(&p->b, r->message.data, ml);
    if (ml < r->message.len) putf(p, " &#8230; (%zu bytes)", r->message.len);
    put(p, "</td></tr>");
    shown++;
  }
  cairn_arena_fini(&a);
  put(p, "</table></section>");
}

cairn_err qry__report_write(const char *path, const json_t *m, const qry_check *chk,
                            const uint8_t *bin, size_t bin_len) {
  page p = {.err = CAIRN_OK};
  cairn_buf_init(&p.b);
  put(&p, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'\">"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
          "<title>cairn evidence export");
  put(&p, "</title><style>");
  put(&p, css);
  put(&p, "</style></head><body><main><h1>Evidence export</h1><p class=\"sub\">");
  char v[160];
  json_int_t total = json_integer_value(json_object_get(json_object_get(m, "counts"), "records"));
  snprintf(v, sizeof(v), "%lld records from the cairn store, exported %s", (long long)total,
           jstr(m, "created"));
  text(&p, v);
  put(&p, "</p>\n");
  verification(&p, m, chk);
  put(&p, "\n");
  query(&p, m);
  put(&p, "\n");
  exporter(&p, m);
  put(&p, "\n");
  counts(&p, m);
  put(&p, "\n");
  histogram(&p, m);
  put(&p, "\n");
  records(&p, m, bin, bin_len);
  put(&p, "\n</main></body></html>\n");
  cairn_err e = p.err;
  if (!e) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
      if (fd >= 0) close(fd);
      e = CAIRN_E_IO;
    } else {
      if (fwrite(p.b.ptr, 1, p.b.len, f) != p.b.len) e = CAIRN_E_IO;
      if (fclose(f) != 0) e = CAIRN_E_IO;
    }
  }
  cairn_buf_fini(&p.b);
  return e;
}
