/* collector/parse_docker.c: the docker json-file front-end:
 *   {"log":"<chunk>","stream":"stdout|stderr","time":"<RFC3339Nano>"[,"attrs":{...}]}
 * The daemon splits long lines into 16 KiB chunks; a "log" value without a
 * trailing '\n' is a partial chunk.
 *
 * Two paths (see collector/internal_docker.h): a hand-written scanner for the
 * exact shape the daemon writes (no allocation; the log value is used in
 * place when its only escape is the final \n, else unescaped into a stack
 * buffer), and jansson for everything else (attrs, other key order,
 * whitespace, anything the scanner is not sure about). The scanner only
 * accepts lines for which it produces what jansson would. On ~250-byte
 * daemon lines it runs about 10x fewer instructions than json_loadb (3,800
 * vs 40,500 per line under callgrind; docs/PERFORMANCE.md).
 * tests/collector/parse_docker_fast_test.c cross-checks the two on generated
 * and mutated lines.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "collector/internal_docker.h"
#include "collector/internal_parse.h"
#include "common/timeparse.h"

/* Hand one split line to the reassembler. */
static cairn_err docker_feed(col_parser *p, int stream, int64_t t, const uint8_t *data, size_t dlen,
                             bool final, const char *attrs, uint64_t off, uint64_t line_no,
                             uint64_t end_off, col_rec_cb cb, void *ud) {
  col_frag f = {
      .stream = stream,
      .time_ns = t,
      .data = data,
      .len = dlen,
      .final = final,
      .attrs_json = attrs,
  };
  return col__frag_feed(p, &f, off, line_no, end_off, cb, ud);
}

/* ---- the fast scanner ---- */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* High bit of each byte of w that is zero (exact for the lowest such byte:
 * a borrow only crosses into the next byte after a real hit). */
static inline uint64_t zero_bytes(uint64_t w) { return (w - ONES) & ~w & HIGHS; }

/* Bytes of the 8-byte word that end a plain run inside a JSON string: '"',
 * '\\' or a control character (< 0x20). The lowest set bit is exact. */
static inline uint64_t special_bytes(uint64_t w) {
  return zero_bytes(w ^ (ONES * '"')) | zero_bytes(w ^ (ONES * '\\')) |
         ((w - ONES * 0x20) & ~w & HIGHS);
}

/* 8 bytes from p with p[0] in the lowest bits (so first_byte() is memory
 * order on any host). */
static inline uint64_t load64(const uint8_t *p) {
  uint64_t w;
  memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap64(w);
#endif
  return w;
}

/* Index of the byte whose high bit is the lowest set bit of m (m != 0). */
static inline size_t first_byte(uint64_t m) { return (size_t)__builtin_ctzll(m) >> 3; }

/* One JSON string body, found by str_find. */
typedef struct raw_str {
  const uint8_t *s; /* first byte after the opening quote */
  size_t n;         /* bytes up to the closing quote */
  size_t first_bs;  /* offset of the first backslash, n when none */
  bool high;        /* holds bytes >= 0x80 (UTF-8 to validate) */
} raw_str;

/* Find the end of the string body starting at p; *next is set after the
 * closing quote. false on a raw control character or no closing quote. */
static bool str_find(const uint8_t *p, const uint8_t *end, raw_str *out, const uint8_t **next) {
  const uint8_t *s = p;
  uint64_t high = 0;
  out->s = s;
  out->first_bs = SIZE_MAX;
  for (;;) {
    while (end - p >= 8) {
      uint64_t w = load64(p);
      uint64_t m = special_bytes(w);
      if (m) {
        size_t k = first_byte(m);
        if (k) high |= w & (HIGHS >> (64 - 8 * k)); /* the bytes before the hit */
        p += k;
        break;
      }
      high |= w & HIGHS;
      p += 8;
    }
    if (p >= end) return false;
    uint8_t c = *p;
    if (c == '"') break;
    if (c == '\\') {
      if (out->first_bs == SIZE_MAX) out->first_bs = (size_t)(p - s);
      if (end - p < 2) return false;
      p += 2; /* the escaped byte (validated when decoding) */
    } else if (c < 0x20) {
      return false;
    } else {
      high |= c & 0x80;
      p++;
    }
  }
  out->high = high != 0;
  out->n = (size_t)(p - s);
  if (out->first_bs == SIZE_MAX) out->first_bs = out->n;
  *next = p + 1;
  return true;
}

static int hex4(const uint8_t *s) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    uint8_t c = s[i];
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return -1;
    v = v << 4 | d;
  }
  return v;
}

/* Unescape the body s[0..n) (as jansson does with JSON_ALLOW_NUL) into
 * out[0..cap). false on a bad escape, a lone or unpaired surrogate, or when
 * the result does not fit. */
static bool str_unescape(const uint8_t *s, size_t n, uint8_t *out, size_t cap, size_t *olen) {
  size_t i = 0, o = 0;
  while (i < n) {
    /* copy up to the next backslash, a word at a time */
    while (n - i >= 8 && cap - o >= 8) {
      memcpy(out + o, s + i, 8);
      uint64_t m = zero_bytes(load64(s + i) ^ (ONES * '\\'));
      if (m) {
        size_t k = first_byte(m);
        i += k;
        o += k;
        goto escape;
      }
      i += 8;
      o += 8;
    }
    while (i < n && s[i] != '\\') {
      if (o >= cap) return false;
      out[o++] = s[i++];
    }
    if (i >= n) break;
  escape:;
    if (n - i < 2) return false;
    uint8_t e = s[i + 1], c;
    switch (e) {
      case '"': c = '"'; break;
      case '\\': c = '\\'; break;
      case '/': c = '/'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u': {
        if (n - i < 6) return false;
        int32_t cp = hex4(s + i + 2);
        if (cp < 0) return false;
        i += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false; /* lone low surrogate */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (n - i < 6 || s[i] != '\\' || s[i + 1] != 'u') return false;
          int32_t lo = hex4(s + i + 2);
          if (lo < 0xDC00 || lo > 0xDFFF) return false;
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        uint8_t u[4];
        size_t k;
        if (cp < 0x80) {
          u[0] = (uint8_t)cp;
          k = 1;
        } else if (cp < 0x800) {
          u[0] = (uint8_t)(0xC0 | cp >> 6);
          u[1] = (uint8_t)(0x80 | (cp & 0x3F));
          k = 2;
        } else if (cp < 0x10000) {
          u[0] = (uint8_t)(0xE0 | cp >> 12);
          u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
          u[2] = (uint8_t)(0x80 | (cp & 0x3F));
          k = 3;
        } else {
          u[0] = (uint8_t)(0xF0 | cp >> 18);
          u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
          u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
          u[3] = (uint8_t)(0x80 | (cp & 0x3F));
          k = 4;
        }
        if (k > cap - o) return false;
        memcpy(out + o, u, k);
        o += k;
        continue;
      }
      default: return false;
    }
    if (o >= cap) return false;
    out[o++] = c;
    i += 2;
  }
  *olen = o;
  return true;
}

/* Does p[0..) start with the literal lit (within end)? */
static inline bool lit(const uint8_t *p, const uint8_t *end, const char *l, size_t n) {
  return (size_t)(end - p) >= n && memcmp(p, l, n) == 0;
}
#define LIT(p, end, s) lit((p), (end), (s), sizeof(s) - 1)

bool col__docker_scan_fast(const uint8_t *line, size_t len, uint8_t *scratch,
                           col_docker_fields *out) {
  const uint8_t *p = line, *end = line + len;
  if (!LIT(p, end, "{\"log\":\"")) return false;
  p += 8;
  raw_str log;
  if (!str_find(p, end, &log, &p)) return false;
  /* raw bytes >= 0x80 must be well-formed UTF-8, as jansson requires; escapes
   * are ASCII and never complete a raw sequence, so checking the raw body is
   * the same as checking each raw character */
  if (log.high && !col__utf8_valid(log.s, log.n)) return false;

  if (!LIT(p, end, ",\"stream\":\"std")) return false;
  p += 14;
  if (LIT(p, end, "out\""))
    out->stream = COL_STREAM_OUT;
  else if (LIT(p, end, "err\""))
    out->stream = COL_STREAM_ERR;
  else
    return false;
  p += 4;
  if (!LIT(p, end, ",\"time\":\"")) return false;
  p += 9;
  const uint8_t *ts = p;
  while (p < end && *p != '"') {
    if (*p < 0x20 || *p >= 0x7F || *p == '\\') return false;
    p++;
  }
  if (end - p != 2 || p[1] != '}') return false; /* '"' '}' and nothing after */
  if (cairn_time_parse_rfc3339((const char *)ts, (size_t)(p - ts), &out->time_ns) != CAIRN_OK)
    return false;

  if (log.first_bs == log.n) { /* no escapes: a partial chunk, used in place */
    out->log = log.s;
    out->log_len = log.n;
    out->final = false;
  } else if (log.first_bs + 2 == log.n && log.s[log.n - 1] == 'n') {
    /* the usual line: its only escape is the final \n */
    out->log = log.s;
    out->log_len = log.n - 2;
    out->final = true;
  } else {
    size_t dlen;
    if (!str_unescape(log.s, log.n, scratch, COL_DOCKER_FAST_MAX, &dlen)) return false;
    out->log = scratch;
    out->final = dlen > 0 && scratch[dlen - 1] == '\n';
    out->log_len = out->final ? dlen - 1 : dlen;
  }
  return true;
}

/* ---- the jansson path ---- */

cairn_err col__docker_line_json(col_parser *p, const uint8_t *line, size_t len, uint64_t off,
                                uint64_t line_no, col_rec_cb cb, void *ud) {
  uint64_t end_off = off + len + 1;
  json_error_t jerr;
  json_t *root = json_loadb((const char *)line, len, JSON_ALLOW_NUL, &jerr);
  if (!root || !json_is_object(root)) goto unparsed;

  json_t *jlog = json_object_get(root, "log");
  json_t *jstream = json_object_get(root, "stream");
  json_t *jtime = json_object_get(root, "time");
  json_t *jattrs = json_object_get(root, "attrs");
  if (!json_is_string(jlog) || !json_is_string(jstream) || !json_is_string(jtime)) goto unparsed;
  if (jattrs && !json_is_object(jattrs)) goto unparsed;

  int stream;
  const char *s = json_string_value(jstream);
  if (json_string_length(jstream) != 6)
    goto unparsed;
  else if (memcmp(s, "stdout", 6) == 0)
    stream = COL_STREAM_OUT;
  else if (memcmp(s, "stderr", 6) == 0)
    stream = COL_STREAM_ERR;
  else
    goto unparsed;

  int64_t t;
  if (cairn_time_parse_rfc3339(json_string_value(jtime), json_string_length(jtime), &t) != CAIRN_OK)
    goto unparsed;

  const uint8_t *data = (const uint8_t *)json_string_value(jlog);
  size_t dlen = json_string_length(jlog);
  bool final = dlen > 0 && data[dlen - 1] == '\n';
  if (final) dlen--;

  char *attrs = NULL;
  if (jattrs) {
    attrs = json_dumps(jattrs, JSON_COMPACT);
    if (!attrs) {
      json_decref(root);
      return CAIRN_E_NOMEM;
    }
  }
  cairn_err e = docker_feed(p, stream, t, data, dlen, final, attrs, off, line_no, end_off, cb, ud);
  free(attrs);
  json_decref(root);
  return e;

unparsed:
  json_decref(root); /* NULL is fine */
  col__emit_unparsed(p, line, len, line_no, end_off, cb, ud);
  return CAIRN_OK;
}

cairn_err col__docker_line(col_parser *p, const uint8_t *line, size_t len, uint64_t off,
                           uint64_t line_no, col_rec_cb cb, void *ud) {
  uint8_t scratch[COL_DOCKER_FAST_MAX];
  col_docker_fields f;
  if (col__docker_scan_fast(line, len, scratch, &f))
    return docker_feed(p, f.stream, f.time_ns, f.log, f.log_len, f.final, NULL, off, line_no,
                       off + len + 1, cb, ud);
  return col__docker_line_json(p, line, len, off, line_no, cb, ud);
}
