/* common/config.c: fills a daemon's config struct from its option table.
 *
 * Sources are applied in order of precedence, lowest first: defaults, the YAML
 * file, the environment, then flags; each later source overwrites the field.
 * The YAML file is flattened to dotted keys ("kafka: {brokers: x}" ->
 * "kafka.brokers") with libyaml's event parser, so line numbers are exact.
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/timeparse.h"

#define KEY_MAX 256

void cairn_str_list_free(cairn_str_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

cairn_err cairn_str_list_push(cairn_str_list *l, const char *s) {
  char *c = strdup(s);
  if (!c) return CAIRN_E_NOMEM;
  char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
  if (!nv) {
    free(c);
    return CAIRN_E_NOMEM;
  }
  nv[l->n++] = c;
  l->v = nv;
  return CAIRN_OK;
}

cairn_err cairn_size_parse(const char *s, uint64_t *out) {
  if (!s || !isdigit((unsigned char)*s)) return CAIRN_E_PARSE;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) return CAIRN_E_PARSE;
  while (*end == ' ') end++;
  static const struct {
    const char *suffix;
    uint64_t mult;
  } units[] = {
      {"", 1},          {"B", 1},         {"K", 1024},          {"KiB", 1024},
      {"KB", 1000},     {"M", 1 << 20},   {"MiB", 1 << 20},     {"MB", 1000000},
      {"G", 1ULL << 30}, {"GiB", 1ULL << 30}, {"GB", 1000000000ULL}, {"T", 1ULL << 40},
      {"TiB", 1ULL << 40}, {"TB", 1000000000000ULL},
  };
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (strcmp(end, units[i].suffix) == 0) {
      if (v > UINT64_MAX / units[i].mult) return CAIRN_E_PARSE;
      *out = v * units[i].mult;
      return CAIRN_OK;
    }
  }
  return CAIRN_E_PARSE;
}

static void errf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (!errbuf || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

static const char *type_hint(cairn_opt_type t) {
  switch (t) {
    case CAIRN_OPT_STR: return "a string";
    case CAIRN_OPT_LIST: return "a string or a list";
    case CAIRN_OPT_U64: return "a whole number";
    case CAIRN_OPT_SIZE: return "a size like 4096, 512KiB, 16MiB or 1GiB";
    case CAIRN_OPT_DURATION: return "a duration like 250ms, 2s or 5m";
    case CAIRN_OPT_BOOL: return "true or false";
  }
  return "a value";
}

/* Set one option from text. append: lists append instead of replacing. */
static cairn_err set_value(const cairn_opt *o, void *cfg, const char *val, bool append) {
  char *field = (char *)cfg + o->offset;
  switch (o->type) {
    case CAIRN_OPT_STR: {
      char *c = strdup(val);
      if (!c) return CAIRN_E_NOMEM;
      free(*(char **)field);
      *(char **)field = c;
      return CAIRN_OK;
    }
    case CAIRN_OPT_LIST: {
      cairn_str_list *l = (cairn_str_list *)field;
      if (!append) cairn_str_list_free(l);
      return cairn_str_list_push(l, val);
    }
    case CAIRN_OPT_U64: {
      if (!isdigit((unsigned char)*val)) return CAIRN_E_PARSE;
      char *end;
      errno = 0;
      unsigned long long v = strtoull(val, &end, 10);
      if (errno || *end) return CAIRN_E_PARSE;
      *(uint64_t *)field = v;
      return CAIRN_OK;
    }
    case CAIRN_OPT_SIZE: return cairn_size_parse(val, (uint64_t *)field);
    case CAIRN_OPT_DURATION: return cairn_duration_parse(val, (int64_t *)field);
    case CAIRN_OPT_BOOL:
      if (!strcasecmp(val, "true") || !strcasecmp(val, "yes") || !strcmp(val, "1") ||
          !strcasecmp(val, "on")) {
        *(bool *)field = true;
      } else if (!strcasecmp(val, "false") || !strcasecmp(val, "no") || !strcmp(val, "0") ||
                 !strcasecmp(val, "off")) {
        *(bool *)field = false;
      } else {
        return CAIRN_E_PARSE;
      }
      return CAIRN_OK;
  }
  return CAIRN_E_INVAL;
}

/* Split a comma-separated value into list entries (env and file scalars). */
static cairn_err set_list_csv(const cairn_opt *o, void *cfg, const char *val) {
  cairn_str_list *l = (cairn_str_list *)((char *)cfg + o->offset);
  cairn_str_list_free(l);
  const char *p = val;
  while (*p) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    char tmp[1024];
    if (n >= sizeof(tmp)) return CAIRN_E_PARSE;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    if (n) {
      cairn_err e = cairn_str_list_push(l, tmp);
      if (e) return e;
    }
    p += n;
    if (*p == ',') p++;
  }
  return CAIRN_OK;
}

static bool is_set(const cairn_opt *o, const void *cfg) {
  const char *field = (const char *)cfg + o->offset;
  switch (o->type) {
    case CAIRN_OPT_STR: return *(char *const *)field != NULL;
    case CAIRN_OPT_LIST: return ((const cairn_str_list *)field)->n > 0;
    default: return true;
  }
}

static const cairn_opt *find_key(const cairn_opt *tbl, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (tbl[i].key && strcmp(tbl[i].key, key) == 0) return &tbl[i];
  return NULL;
}

static const cairn_opt *find_flag(const cairn_opt *tbl, size_t n, const char *flag, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (tbl[i].flag && strlen(tbl[i].flag) == len && strncmp(tbl[i].flag, flag, len) == 0)
      return &tbl[i];
  return NULL;
}

/* "kafka.brokers" -> "CAIRN_KAFKA_BROKERS" */
static void env_name(const cairn_opt *o, char *out, size_t cap) {
  const char *k = o->key ? o->key : o->flag;
  size_t j = (size_t)snprintf(out, cap, "CAIRN_");
  for (const char *p = k; *p && j + 1 < cap; p++) {
    char c = *p;
    out[j++] = (c == '.' || c == '-') ? '_' : (char)toupper((unsigned char)c);
  }
  out[j] = '\0';
}

/* ---- YAML file ---- */

typedef struct yaml_walk {
  const cairn_opt *tbl;
  size_t n;
  void *cfg;
  const char *file;
  char *errbuf;
  size_t errlen;
} yaml_walk;

static cairn_err yaml_node(yaml_walk *w, yaml_parser_t *p, const char *key, yaml_event_t *ev);

/* Apply a scalar at key. */
static cairn_err yaml_scalar(yaml_walk *w, const char *key, const char *val, size_t line) {
  const cairn_opt *o = find_key(w->tbl, w->n, key);
  if (!o) {
    errf(w->errbuf, w->errlen, "%s:%zu: unknown key '%s' (see --help for the keys)", w->file,
         line, key);
    return CAIRN_E_CONFIG;
  }
  cairn_err e = o->type == CAIRN_OPT_LIST ? set_list_csv(o, w->cfg, val)
                                          : set_value(o, w->cfg, val, false);
  if (e == CAIRN_E_NOMEM) return e;
  if (e) {
    errf(w->errbuf, w->errlen, "%s:%zu: %s: '%s' is not %s", w->file, line, key, val,
         type_hint(o->type));
    return CAIRN_E_CONFIG;
  }
  return CAIRN_OK;
}

static cairn_err yaml_next(yaml_walk *w, yaml_parser_t *p, yaml_event_t *ev) {
  if (!yaml_parser_parse(p, ev)) {
    errf(w->errbuf, w->errlen, "%s:%zu: YAML syntax error: %s", w->file,
         (size_t)p->problem_mark.line + 1, p->problem ? p->problem : "unknown");
    return CAIRN_E_CONFIG;
  }
  return CAIRN_OK;
}

static cairn_err yaml_mapping(yaml_walk *w, yaml_parser_t *p, const char *prefix) {
  for (;;) {
    yaml_event_t kev;
    cairn_err e = yaml_next(w, p, &kev);
    if (e) return e;
    if (kev.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&kev);
      return CAIRN_OK;
    }
    if (kev.type != YAML_SCALAR_EVENT) {
      errf(w->errbuf, w->errlen, "%s:%zu: keys must be plain names", w->file,
           (size_t)kev.start_mark.line + 1);
      yaml_event_delete(&kev);
      return CAIRN_E_CONFIG;
    }
    char key[KEY_MAX];
    int kn = snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "",
                      (const char *)kev.data.scalar.value);
    yaml_event_delete(&kev);
    if (kn < 0 || (size_t)kn >= sizeof(key)) {
      errf(w->errbuf, w->errlen, "%s: key too long", w->file);
      return CAIRN_E_CONFIG;
    }
    yaml_event_t vev;
    e = yaml_next(w, p, &vev);
    if (e) return e;
    e = yaml_node(w, p, key, &vev);
    yaml_event_delete(&vev);
    if (e) return e;
  }
}

static cairn_err yaml_sequence(yaml_walk *w, yaml_parser_t *p, const char *key, size_t line) {
  const cairn_opt *o = find_key(w->tbl, w->n, key);
  if (!o || o->type != CAIRN_OPT_LIST) {
    errf(w->errbuf, w->errlen, "%s:%zu: %s: %s", w->file, line, key,
         o ? "expected a single value, not a list" : "unknown key (see --help for the keys)");
    return CAIRN_E_CONFIG;
  }
  cairn_str_list *l = (cairn_str_list *)((char *)w->cfg + o->offset);
  cairn_str_list_free(l);
  for (;;) {
    yaml_event_t ev;
    cairn_err e = yaml_next(w, p, &ev);
    if (e) return e;
    if (ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      return CAIRN_OK;
    }
    if (ev.type != YAML_SCALAR_EVENT) {
      errf(w->errbuf, w->errlen, "%s:%zu: %s: list items must be plain values", w->file,
           (size_t)ev.start_mark.line + 1, key);
      yaml_event_delete(&ev);
      return CAIRN_E_CONFIG;
    }
    e = cairn_str_list_push(l, (const char *)ev.data.scalar.value);
    yaml_event_delete(&ev);
    if (e) return e;
  }
}

static cairn_err yaml_node(yaml_walk *w, yaml_parser_t *p, const char *key, yaml_event_t *ev) {
  size_t line = (size_t)ev->start_mark.line + 1;
  switch (ev->type) {
    case YAML_SCALAR_EVENT: return yaml_scalar(w, key, (const char *)ev->data.scalar.value, line);
    case YAML_MAPPING_START_EVENT: return yaml_mapping(w, p, key);
    case YAML_SEQUENCE_START_EVENT: return yaml_sequence(w, p, key, line);
    default:
      errf(w->errbuf, w->errlen, "%s:%zu: %s: unsupported YAML construct (anchors/aliases)",
           w->file, line, key);
      return CAIRN_E_CONFIG;
  }
}

static cairn_err load_yaml(const cairn_opt *tbl, size_t n, void *cfg, const char *file,
                           char *errbuf, size_t errlen) {
  FILE *f = fopen(file, "rb");
  if (!f) {
    errf(errbuf, errlen, "--config %s: cannot open: %s", file, strerror(errno));
    return CAIRN_E_CONFIG;
  }
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) {
    fclose(f);
    return CAIRN_E_NOMEM;
  }
  yaml_parser_set_input_file(&p, f);
  yaml_walk w = {tbl, n, cfg, file, errbuf, errlen};
  cairn_err e = CAIRN_OK;
  bool done = false;
  while (!done && !e) {
    yaml_event_t ev;
    e = yaml_next(&w, &p, &ev);
    if (e) break;
    switch (ev.type) {
      case YAML_STREAM_END_EVENT: done = true; break;
      case YAML_MAPPING_START_EVENT: e = yaml_mapping(&w, &p, ""); break;
      case YAML_SCALAR_EVENT:
      case YAML_SEQUENCE_START_EVENT:
        errf(errbuf, errlen, "%s:%zu: the top level must be a mapping of keys", file,
             (size_t)ev.start_mark.line + 1);
        e = CAIRN_E_CONFIG;
        break;
      default: break;
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  fclose(f);
  return e;
}

/* ---- load ---- */

cairn_err cairn_config_load(const cairn_opt *tbl, size_t n, void *cfg, int argc, char **argv,
                            cairn_str_list *rest, bool *help, bool *check, char *errbuf,
                            size_t errlen) {
  cairn_err e;
  *help = false;
  *check = false;
  /* 1. defaults */
  for (size_t i = 0; i < n; i++) {
    if (!tbl[i].def) continue;
    e = tbl[i].type == CAIRN_OPT_LIST ? set_list_csv(&tbl[i], cfg, tbl[i].def)
                                      : set_value(&tbl[i], cfg, tbl[i].def, false);
    if (e) {
      errf(errbuf, errlen, "internal: bad default for --%s", tbl[i].flag);
      return CAIRN_E_CONFIG;
    }
  }
  /* 2. the file: --config on the command line, else CAIRN_CONFIG */
  const char *file = getenv("CAIRN_CONFIG");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "--config") == 0) {
      if (i + 1 >= argc) {
        errf(errbuf, errlen, "--config: missing value (a YAML file)");
        return CAIRN_E_CONFIG;
      }
      file = argv[i + 1];
    } else if (strncmp(argv[i], "--config=", 9) == 0) {
      file = argv[i] + 9;
    }
  }
  if (file && *file) {
    e = load_yaml(tbl, n, cfg, file, errbuf, errlen);
    if (e) return e;
  }
  /* 3. environment */
  for (size_t i = 0; i < n; i++) {
    char name[KEY_MAX];
    env_name(&tbl[i], name, sizeof(name));
    const char *v = getenv(name);
    if (!v) continue;
    e = tbl[i].type == CAIRN_OPT_LIST ? set_list_csv(&tbl[i], cfg, v)
                                      : set_value(&tbl[i], cfg, v, false);
    if (e == CAIRN_E_NOMEM) return e;
    if (e) {
      errf(errbuf, errlen, "%s: '%s' is not %s", name, v, type_hint(tbl[i].type));
      return CAIRN_E_CONFIG;
    }
  }
  /* 4. flags; lists given on the command line replace what came before */
  bool *list_reset = calloc(n ? n : 1, sizeof(*list_reset));
  if (!list_reset) return CAIRN_E_NOMEM;
  e = CAIRN_OK;
  for (int i = 1; i < argc && !e; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      for (i++; i < argc && !e; i++) e = cairn_str_list_push(rest, argv[i]);
      break;
    }
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
      e = cairn_str_list_push(rest, a);
      continue;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    if (nlen == 4 && strncmp(name, "help", 4) == 0) {
      *help = true;
      continue;
    }
    if (nlen == 12 && strncmp(name, "check-config", 12) == 0) {
      *check = true;
      continue;
    }
    if (nlen == 6 && strncmp(name, "config", 6) == 0) {
      if (!eq) i++; /* value consumed above */
      continue;
    }
    const cairn_opt *o = find_flag(tbl, n, name, nlen);
    if (!o) {
      errf(errbuf, errlen, "unknown option --%.*s (see --help)", (int)nlen, name);
      e = CAIRN_E_CONFIG;
      break;
    }
    const char *val;
    if (eq) {
      val = eq + 1;
    } else if (o->type == CAIRN_OPT_BOOL) {
      val = "true";
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      errf(errbuf, errlen, "--%s: missing value (%s)", o->flag, type_hint(o->type));
      e = CAIRN_E_CONFIG;
      break;
    }
    bool append = false;
    if (o->type == CAIRN_OPT_LIST) {
      size_t idx = (size_t)(o - tbl);
      append = list_reset[idx];
      list_reset[idx] = true;
    }
    e = set_value(o, cfg, val, append);
    if (e && e != CAIRN_E_NOMEM) {
      errf(errbuf, errlen, "--%s: '%s' is not %s", o->flag, val, type_hint(o->type));
      e = CAIRN_E_CONFIG;
    }
  }
  free(list_reset);
  if (e) return e;
  if (*help) return CAIRN_OK; /* usage needs no required options */
  /* 5. required options */
  for (size_t i = 0; i < n; i++) {
    if (tbl[i].required && !is_set(&tbl[i], cfg)) {
      char name[KEY_MAX];
      env_name(&tbl[i], name, sizeof(name));
      errf(errbuf, errlen, "--%s is required (or %s, or %s: in the config file)", tbl[i].flag,
           name, tbl[i].key ? tbl[i].key : tbl[i].flag);
      return CAIRN_E_CONFIG;
    }
  }
  return CAIRN_OK;
}

void cairn_config_free(const cairn_opt *tbl, size_t n, void *cfg) {
  for (size_t i = 0; i < n; i++) {
    char *field = (char *)cfg + tbl[i].offset;
    if (tbl[i].type == CAIRN_OPT_STR) {
      free(*(char **)field);
      *(char **)field = NULL;
    } else if (tbl[i].type == CAIRN_OPT_LIST) {
      cairn_str_list_free((cairn_str_list *)field);
    }
  }
}

cairn_err cairn_config_copy(const cairn_opt *tbl, size_t n, void *dst, const void *src,
                            size_t size) {
  memcpy(dst, src, size);
  /* first detach every owned field, so a failure leaves nothing shared */
  for (size_t i = 0; i < n; i++) {
    char *field = (char *)dst + tbl[i].offset;
    if (tbl[i].type == CAIRN_OPT_STR) *(char **)field = NULL;
    else if (tbl[i].type == CAIRN_OPT_LIST) memset(field, 0, sizeof(cairn_str_list));
  }
  for (size_t i = 0; i < n; i++) {
    const char *sf = (const char *)src + tbl[i].offset;
    char *df = (char *)dst + tbl[i].offset;
    if (tbl[i].type == CAIRN_OPT_STR) {
      const char *v = *(char *const *)sf;
      if (v && !(*(char **)df = strdup(v))) return CAIRN_E_NOMEM;
    } else if (tbl[i].type == CAIRN_OPT_LIST) {
      const cairn_str_list *l = (const cairn_str_list *)sf;
      for (size_t k = 0; k < l->n; k++) {
        cairn_err e = cairn_str_list_push((cairn_str_list *)df, l->v[k]);
        if (e != CAIRN_OK) return e;
      }
    }
  }
  return CAIRN_OK;
}

void cairn_config_usage(FILE *f, const char *synopsis, const cairn_opt *tbl, size_t n) {
  fprintf(f, "usage: %s\n\noptions (flag, environment variable, default):\n", synopsis);
  fprintf(f, "  --config FILE\n      CAIRN_CONFIG; YAML file with the keys below\n");
  for (size_t i = 0; i < n; i++) {
    char name[KEY_MAX];
    env_name(&tbl[i], name, sizeof(name));
    fprintf(f, "  --%s%s\n      %s%s%s%s; key %s\n      %s\n", tbl[i].flag,
            tbl[i].type == CAIRN_OPT_BOOL ? "" : " VALUE", name,
            tbl[i].required ? " (required)" : "", tbl[i].def ? ", default " : "",
            tbl[i].def ? tbl[i].def : "", tbl[i].key ? tbl[i].key : tbl[i].flag,
            tbl[i].help ? tbl[i].help : "");
  }
  fprintf(f, "  --check-config\n      print the effective configuration and exit\n"
             "  --help\n      this text\n");
}

/* KEY=VALUE list entries (e.g. --kafka-property sasl.password=...) whose key
 * names a secret are masked too. */
static bool secret_key(const char *k, size_t n) {
  static const char *const words[] = {"password", "secret", "token", "key.pem", "private"};
  char low[128];
  if (n >= sizeof(low)) n = sizeof(low) - 1;
  for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)k[i]);
  low[n] = '\0';
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (strstr(low, words[i])) return true;
  return false;
}

void cairn_config_print(FILE *f, const cairn_opt *tbl, size_t n, const void *cfg) {
  for (size_t i = 0; i < n; i++) {
    const char *field = (const char *)cfg + tbl[i].offset;
    const char *key = tbl[i].key ? tbl[i].key : tbl[i].flag;
    fprintf(f, "%s: ", key);
    switch (tbl[i].type) {
      case CAIRN_OPT_STR: {
        const char *s = *(char *const *)field;
        fprintf(f, "%s\n", !s ? "~" : tbl[i].secret ? "\"***\"" : s);
        break;
      }
      case CAIRN_OPT_LIST: {
        const cairn_str_list *l = (const cairn_str_list *)field;
        fprintf(f, "[");
        for (size_t j = 0; j < l->n; j++) {
          const char *v = l->v[j];
          const char *eq = strchr(v, '=');
          if (tbl[i].secret) {
            fprintf(f, "%s\"***\"", j ? ", " : "");
          } else if (eq && secret_key(v, (size_t)(eq - v))) {
            fprintf(f, "%s\"%.*s=***\"", j ? ", " : "", (int)(eq - v), v);
          } else {
            fprintf(f, "%s\"%s\"", j ? ", " : "", v);
          }
        }
        fprintf(f, "]\n");
        break;
      }
      case CAIRN_OPT_U64:
      case CAIRN_OPT_SIZE:
        fprintf(f, "%llu\n", (unsigned long long)*(const uint64_t *)field);
        break;
      case CAIRN_OPT_DURATION:
        fprintf(f, "%lldms\n", (long long)(*(const int64_t *)field / 1000000));
        break;
      case CAIRN_OPT_BOOL: fprintf(f, "%s\n", *(const bool *)field ? "true" : "false"); break;
    }
  }
}
