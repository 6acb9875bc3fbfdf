/* collector/parse_docker.c: the docker json-file front-end:
 *   {"log":"<chunk>","stream":"stdout|stderr","time":"<RFC3339Nano>"[,"attrs":{...}]}
 * The daemon splits long lines into 16 KiB chunks; a "log" value without a
 * trailing '\n' is a partial chunk. Decoding uses jansson for correctness;
 * its per-line allocations make this the slower of the two formats. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "collector/internal_parse.h"
#include "common/timeparse.h"

cairn_err col__docker_line(col_parser *p, const uint8_t *line, size_t len, uint64_t off,
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
  col_frag f = {
      .stream = stream,
      .time_ns = t,
      .data = data,
      .len = dlen,
      .final = final,
      .attrs_json = attrs,
  };
  cairn_err e = col__frag_feed(p, &f, off, line_no, end_off, cb, ud);
  free(attrs);
  json_decref(root);
  return e;

unparsed:
  json_decref(root); /* NULL is fine */
  col__emit_unparsed(p, line, len, line_no, end_off, cb, ud);
  return CAIRN_OK;
}
