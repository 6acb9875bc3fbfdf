/* common/config.h: one option table per daemon gives flags, CAIRN_* environment
 * variables and YAML keys at once (Fluent Bit's config_map idea). The runtime
 * takes the plain C struct this fills; nothing else reads argv or the env.
 *
 * Precedence: built-in default < YAML file (--config FILE) < environment < flags.
 * Names: option {flag "kafka-brokers", key "kafka.brokers"} is set by
 *   --kafka-brokers V  |  --kafka-brokers=V  |  CAIRN_KAFKA_BROKERS=V  |
 *   kafka: {brokers: V} in YAML.
 * Lists (CAIRN_OPT_LIST) take repeated flags, a YAML sequence, or a
 * comma-separated value; flags replace (not extend) what the file/env gave.
 *
 * Caveats:
 *  - Strings in the filled struct are heap-owned: release them with
 *    cairn_config_free().
 *  - Unknown flags and unknown YAML keys are errors (typos must not pass).
 */
#ifndef CAIRN_COMMON_CONFIG_H
#define CAIRN_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

typedef enum cairn_opt_type {
  CAIRN_OPT_STR,      /* char *                       */
  CAIRN_OPT_LIST,     /* cairn_str_list               */
  CAIRN_OPT_U64,      /* uint64_t, decimal            */
  CAIRN_OPT_SIZE,     /* uint64_t bytes, "16MiB", "1GiB", "4096" */
  CAIRN_OPT_DURATION, /* int64_t ns, "250ms", "2s", "5m" */
  CAIRN_OPT_BOOL,     /* bool; a bare flag sets true; "true/false/yes/no/1/0" */
} cairn_opt_type;

typedef struct cairn_str_list {
  char **v; /* owned array of owned strings */
  size_t n;
} cairn_str_list;

typedef struct cairn_opt {
  const char *flag;   /* long flag without "--" */
  const char *key;    /* YAML key, dotted for nesting */
  cairn_opt_type type;
  size_t offset;      /* offsetof(struct, field) */
  const char *def;    /* default, as text; NULL = unset */
  bool required;      /* error if still unset after all sources */
  bool secret;        /* masked by cairn_config_print */
  const char *help;   /* one line */
} cairn_opt;

/* Fill cfg (zeroed by the caller) from defaults, --config FILE (or
 * CAIRN_CONFIG), the environment and argv[1..argc). Non-option arguments are
 * collected into *rest (owned, free with cairn_str_list_free).
 * "--help" and "--check-config" are recognised: *help / *check are set.
 * Errors: CAIRN_E_CONFIG with errbuf holding e.g.
 *   "config.yaml:12: kafka.brokers: expected a string or a list"
 *   "--listen: missing value" / "unknown option --lisen (see --help)"
 *   "--data is required (or CAIRN_DATA, or data: in the config file)" */
CAIRN_MUST_CHECK cairn_err cairn_config_load(const cairn_opt *tbl, size_t n, void *cfg, int argc,
                                             char **argv, cairn_str_list *rest, bool *help,
                                             bool *check, char *errbuf, size_t errlen);

/* Free every string/list the table refers to in cfg. */
void cairn_config_free(const cairn_opt *tbl, size_t n, void *cfg);

/* Copy the size-byte struct src into dst (any previous contents of dst are
 * overwritten, not freed), duplicating every CAIRN_OPT_STR string and
 * CAIRN_OPT_LIST list of tbl so dst owns its own; free it with
 * cairn_config_free. On CAIRN_E_NOMEM dst holds what was copied so far and
 * must still be freed. */
CAIRN_MUST_CHECK cairn_err cairn_config_copy(const cairn_opt *tbl, size_t n, void *dst,
                                             const void *src, size_t size);

/* Print "usage: SYNOPSIS" and one line per option (flag, env, default, help). */
void cairn_config_usage(FILE *f, const char *synopsis, const cairn_opt *tbl, size_t n);

/* Print the effective configuration as YAML-ish "key: value" lines, with
 * secret values masked. */
void cairn_config_print(FILE *f, const cairn_opt *tbl, size_t n, const void *cfg);

/* Parse "16MiB"/"1GiB"/"512KiB"/"10MB"/"4096" into bytes. CAIRN_E_PARSE. */
CAIRN_MUST_CHECK cairn_err cairn_size_parse(const char *s, uint64_t *out);

void cairn_str_list_free(cairn_str_list *l);
/* Append a copy of s. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err cairn_str_list_push(cairn_str_list *l, const char *s);

#endif
