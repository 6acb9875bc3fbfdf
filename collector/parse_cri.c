/* collector/parse_cri.c: the CRI log line front-end (containerd, CRI-O/conmon):
 *   <RFC3339Nano ts> SP <stdout|stderr> SP <P|F>[:tag...] SP <content>
 * This is the collector's hot path: one memchr, fixed-offset compares and the
 * hand-written RFC 3339 parser; no allocation and no copy of the line (the
 * content slice points into the caller's buffer). */
#include <string.h>

#include "collector/internal_parse.h"
#include "common/timeparse.h"

cairn_err col__cri_line(col_parser *p, const uint8_t *line, size_t len, uint64_t off,
                        uint64_t line_no, col_rec_cb cb, void *ud) {
  uint64_t end_off = off + len + 1;
  const uint8_t *sp = memchr(line, ' ', len);
  if (!sp) goto unparsed;
  size_t ts_len = (size_t)(sp - line);
  size_t i = ts_len + 1;

  /* stream: exactly "stdout" or "stderr" followed by a space */
  if (len - i < 7 || line[i + 6] != ' ') goto unparsed;
  int stream;
  if (memcmp(line + i, "stdout", 6) == 0)
    stream = COL_STREAM_OUT;
  else if (memcmp(line + i, "stderr", 6) == 0)
    stream = COL_STREAM_ERR;
  else
    goto unparsed;
  i += 7;

  /* tag: P or F, optionally followed by ':'-separated extra tags */
  if (i >= len || (line[i] != 'P' && line[i] != 'F')) goto unparsed;
  bool final = line[i] == 'F';
  i++;
  if (i < len && line[i] == ':') {
    const uint8_t *tsp = memchr(line + i, ' ', len - i);
    i = tsp ? (size_t)(tsp - line) : len;
  }
  size_t content;
  if (i == len)
    content = len; /* "... F" without the trailing space: empty content, accepted */
  else if (line[i] == ' ')
    content = i + 1;
  else
    goto unparsed;

  int64_t t;
  if (cairn_time_parse_rfc3339((const char *)line, ts_len, &t) != CAIRN_OK) goto unparsed;

  col_frag f = {
      .stream = stream,
      .time_ns = t,
      .data = line + content,
      .len = len - content,
      .final = final,
      .attrs_json = NULL,
  };
  return col__frag_feed(p, &f, off, line_no, end_off, cb, ud);

unparsed:
  col__emit_unparsed(p, line, len, line_no, end_off, cb, ud);
  return CAIRN_OK;
}
