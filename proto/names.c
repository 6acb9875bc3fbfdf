/* proto/names.c: the stable text names of wire enums, used in text/JSON/CSV
 * output, config values and query filters. The tables are the one place these
 * spellings live; changing one breaks saved queries and exports.
 */
#include <string.h>

#include "proto/proto.h"

typedef struct name_entry {
  int value;
  const char *name;
} name_entry;

static const name_entry source_names[] = {
    {CAIRN__SOURCE__SOURCE_CONTAINER, "container"},
    {CAIRN__SOURCE__SOURCE_AUDIT, "audit"},
    {CAIRN__SOURCE__SOURCE_K8S_AUDIT, "k8s-audit"},
    {CAIRN__SOURCE__SOURCE_QUERY, "query"},
};

static const name_entry stream_names[] = {
    {CAIRN__LOG_STREAM__LOG_STREAM_STDOUT, "stdout"},
    {CAIRN__LOG_STREAM__LOG_STREAM_STDERR, "stderr"},
};

static const name_entry format_names[] = {
    {CAIRN__FORMAT__FORMAT_CRI, "cri"},
    {CAIRN__FORMAT__FORMAT_DOCKER, "docker"},
    {CAIRN__FORMAT__FORMAT_AUDITD, "auditd"},
    {CAIRN__FORMAT__FORMAT_K8S_AUDIT, "k8s-audit"},
};

#define NAMES_LEN(t) (sizeof(t) / sizeof((t)[0]))

/* Name of value in table t, "" when absent. */
static const char *name_of(const name_entry *t, size_t n, int value) {
  for (size_t i = 0; i < n; i++)
    if (t[i].value == value) return t[i].name;
  return "";
}

/* Value named s in table t; CAIRN_E_PARSE when absent (exact, case-sensitive). */
static cairn_err value_of(const name_entry *t, size_t n, const char *s, int *out) {
  if (!s) return CAIRN_E_PARSE;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(t[i].name, s) == 0) {
      *out = t[i].value;
      return CAIRN_OK;
    }
  }
  return CAIRN_E_PARSE;
}

const char *pb_source_name(Cairn__Source s) {
  return name_of(source_names, NAMES_LEN(source_names), (int)s);
}

const char *pb_stream_name(Cairn__LogStream s) {
  return name_of(stream_names, NAMES_LEN(stream_names), (int)s);
}

const char *pb_format_name(Cairn__Format f) {
  return name_of(format_names, NAMES_LEN(format_names), (int)f);
}

cairn_err pb_source_parse(const char *s, Cairn__Source *out) {
  int v;
  cairn_err e = value_of(source_names, NAMES_LEN(source_names), s, &v);
  if (e) return e;
  *out = (Cairn__Source)v;
  return CAIRN_OK;
}

cairn_err pb_format_parse(const char *s, Cairn__Format *out) {
  int v;
  cairn_err e = value_of(format_names, NAMES_LEN(format_names), s, &v);
  if (e) return e;
  *out = (Cairn__Format)v;
  return CAIRN_OK;
}
