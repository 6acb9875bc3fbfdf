/* query/cli.c: cairn-query's command line: the command and option tables,
 * argument parsing into a qry_opts, --help / --version, and dispatch.
 *
 * Parsing is table-driven and written here rather than with getopt_long so it
 * keeps no global state (qry_run is called many times in one test process) and
 * every message can name the command and the option to fix.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/timeparse.h"
#include "query/internal.h"

enum opt_id {
  OPT_HELP,
  OPT_DATA,
  OPT_SERVER,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_TLS_CA,
  OPT_SINCE,
  OPT_UNTIL,
  OPT_NAMESPACE,
  OPT_POD,
  OPT_CONTAINER,
  OPT_NODE,
  OPT_SOURCE,
  OPT_GREP,
  OPT_LIMIT,
  OPT_OLDEST_FIRST,
  OPT_NEWEST_FIRST,
  OPT_OUTPUT,
  OPT_STATS,
  OPT_PUBLIC_KEY,
  /* audit fields, in sto_field order (OPT_FIELD0 + f) */
  OPT_KEY,
  OPT_AUID,
  OPT_UID,
  OPT_SYSCALL,
  OPT_TYPE,
  OPT_EXE,
  OPT_SUCCESS,
  OPT_USER,
  OPT_VERB,
  OPT_RESOURCE,
  OPT_SUBRESOURCE,
  OPT_STATUS,
  OPT_REGEX,
  OPT_IGNORE_CASE,
  OPT_STREAM,
  OPT_FOLLOW,
  OPT_VERBOSE,
  OPT_BY,
  OPT_TOP,
  OPT_HISTOGRAM,
  OPT_OUT,
  OPT_COUNT_
};

#define CMD_SEARCH 1u
#define CMD_STATS 2u
#define CMD_VERIFY 4u
#define CMD_AUDIT 8u
#define CMD_EXPORT 16u
#define CMD_VEXPORT 32u /* verify-export: offline, no --data */
#define CMD_ALL (CMD_SEARCH | CMD_STATS | CMD_VERIFY | CMD_AUDIT)
#define CMD_Q (CMD_SEARCH | CMD_AUDIT | CMD_STATS | CMD_EXPORT) /* commands that select records */
#define CMD_LIST (CMD_SEARCH | CMD_AUDIT)          /* commands that list records */

typedef struct opt_def {
  const char *name; /* long name without "--" */
  const char *arg;  /* metavariable; NULL = flag without value */
  enum opt_id id;
  unsigned cmds;    /* CMD_* bits of the commands that take it */
  bool once;        /* a filter: repeated values OR (QRY_MAX_VALUES), never "last wins" */
  const char *help;
} opt_def;

static const opt_def opts[] = {
    {"data", "DIR", OPT_DATA, CMD_ALL | CMD_EXPORT, false,
     "store directory of the aggregator (env CAIRN_DATA)"},
    {"server", "HOST:PORT", OPT_SERVER, CMD_ALL | CMD_EXPORT, false,
     "query the aggregator's --query-listen port instead of --data (search, audit, stats)"},
    {"tls-cert", "FILE", OPT_TLS_CERT, CMD_ALL | CMD_EXPORT, false,
     "client certificate for --server (its CN is your identity)"},
    {"tls-key", "FILE", OPT_TLS_KEY, CMD_ALL | CMD_EXPORT, false, "client key for --server"},
    {"tls-ca", "FILE", OPT_TLS_CA, CMD_ALL | CMD_EXPORT, false,
     "CA that signs the aggregator's certificate, for --server"},
    {"since", "T", OPT_SINCE, CMD_Q, false,
     "from T on (RFC 3339, YYYY-MM-DD, now, or 15m/2h/7d ago)"},
    {"until", "T", OPT_UNTIL, CMD_Q, false, "before T (same forms as --since)"},
    {"namespace", "NS", OPT_NAMESPACE, CMD_Q, true,
     "Kubernetes namespace (glob like 'pay*'; audit: the object's namespace)"},
    {"pod", "POD", OPT_POD, CMD_SEARCH | CMD_STATS | CMD_EXPORT, true, "pod (glob patterns work)"},
    {"container", "C", OPT_CONTAINER, CMD_SEARCH | CMD_STATS | CMD_EXPORT, true, "container (glob)"},
    {"node", "N", OPT_NODE, CMD_Q, true, "node (glob)"},
    {"source", "S", OPT_SOURCE, CMD_Q, false, "container, audit, k8s-audit or query"},
    {"stream", "S", OPT_STREAM, CMD_SEARCH | CMD_STATS | CMD_EXPORT, true, "stdout or stderr"},
    {"grep", "TEXT", OPT_GREP, CMD_Q, true, "message contains TEXT"},
    {"regex", "RE", OPT_REGEX, CMD_Q, true, "message matches the PCRE2 regular expression RE"},
    {"ignore-case", NULL, OPT_IGNORE_CASE, CMD_Q, false, "-i: --grep/--regex ignore case"},
    {"key", "KEY", OPT_KEY, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true, "auditd rule key (key=)"},
    {"auid", "ID", OPT_AUID, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true,
     "login uid (number, -1 = unset, or a name as logged)"},
    {"uid", "ID", OPT_UID, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true, "uid (number or a name as logged)"},
    {"syscall", "S", OPT_SYSCALL, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true,
     "syscall number or x86_64 name (execve)"},
    {"success", "yes|no", OPT_SUCCESS, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true, "syscall / operation result"},
    {"type", "TYPE", OPT_TYPE, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true,
     "auditd record type in the event (SYSCALL, USER_LOGIN)"},
    {"exe", "PATH", OPT_EXE, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true, "executable (glob)"},
    {"user", "NAME", OPT_USER, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true, "Kubernetes user (glob)"},
    {"verb", "VERB", OPT_VERB, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true, "Kubernetes verb (get, create...)"},
    {"resource", "R", OPT_RESOURCE, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true, "Kubernetes resource (secrets)"},
    {"subresource", "R", OPT_SUBRESOURCE, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true,
     "Kubernetes subresource (exec)"},
    {"status", "CODE", OPT_STATUS, CMD_AUDIT | CMD_STATS | CMD_EXPORT, true,
     "Kubernetes response code (403, 4xx)"},
    {"limit", "N", OPT_LIMIT, CMD_LIST | CMD_EXPORT, false,
     "at most N records (default 100, export: 0 = all)"},
    {"newest-first", NULL, OPT_NEWEST_FIRST, CMD_LIST | CMD_EXPORT, false,
     "newest record first (default; export with --limit: the N newest)"},
    {"oldest-first", NULL, OPT_OLDEST_FIRST, CMD_LIST | CMD_EXPORT, false,
     "oldest record first (export with --limit: the N oldest)"},
    {"follow", NULL, OPT_FOLLOW, CMD_SEARCH, false,
     "keep printing new matches as they are stored (Ctrl-C stops)"},
    {"verbose", NULL, OPT_VERBOSE, CMD_AUDIT, false, "-v: every field and the raw event"},
    {"by", "FIELD", OPT_BY, CMD_STATS, false,
     "count records per value of FIELD (namespace, pod, node, source, key, user, verb...)"},
    {"top", "N", OPT_TOP, CMD_STATS, false, "--by: the N largest groups (default 20, 0 = all)"},
    {"histogram", "D", OPT_HISTOGRAM, CMD_STATS, false,
     "count records per time bucket of length D (1h, 15m, 1d)"},
    {"output", "FORMAT", OPT_OUTPUT, CMD_ALL | CMD_VEXPORT, false, "text (default), json or csv"},
    {"out", "DIR", OPT_OUT, CMD_EXPORT, false,
     "bundle directory to create (must not exist or be empty)"},
    {"stats", NULL, OPT_STATS, CMD_LIST, false,
     "print index used, entries examined and matched to stderr"},
    {"public-key", "FILE", OPT_PUBLIC_KEY, CMD_VERIFY | CMD_EXPORT | CMD_VEXPORT, false,
     "PEM Ed25519 key to check checkpoint signatures (default DATA/signing.pub; "
     "verify-export: required)"},
    {"help", NULL, OPT_HELP, CMD_ALL | CMD_EXPORT | CMD_VEXPORT, false, "show this help"},
};

typedef int (*cmd_run_fn)(const qry_opts *o, const qry_env *env);

typedef struct cmd_def {
  const char *name;
  unsigned bit;   /* CMD_* for implemented commands */
  cmd_run_fn run; /* NULL = recognised but not implemented yet */
  const char *summary;
} cmd_def;

static const cmd_def cmds[] = {
    {"search", CMD_SEARCH, qry__search_cmd, "find records by time, pod, namespace, text"},
    {"stats", CMD_STATS, qry__stats_cmd, "counts by field and time histograms; store counters"},
    {"audit", CMD_AUDIT, qry__audit_cmd, "auditd and Kubernetes audit events, one line each"},
    {"verify", CMD_VERIFY, qry__verify_cmd, "check the hash chain and signed checkpoints"},
    {"export", CMD_EXPORT, qry__export_cmd,
     "write an evidence bundle: records, manifest with proof, HTML report"},
    {"verify-export", CMD_VEXPORT, qry__verify_export_cmd,
     "check an evidence bundle offline with the public key"},
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char time_hint[] = "use RFC 3339, YYYY-MM-DD or a duration like 2h";

static void print_overview(FILE *f) {
  fprintf(f,
          "usage: cairn-query COMMAND --data DIR [options]\n"
          "       cairn-query COMMAND --help\n"
          "       cairn-query --help | --version\n\ncommands:\n");
  for (size_t i = 0; i < COUNT_OF(cmds); i++)
    fprintf(f, "  %-14s %s%s\n", cmds[i].name, cmds[i].summary,
            cmds[i].run ? "" : " (not implemented yet)");
  fprintf(f,
          "\nexit status: 0 matches, 1 nothing matched, 2 usage, configuration or data error,\n"
          "             3 verification failed (verify, export, verify-export)\n"
          "example: cairn-query search --data /var/lib/cairn --namespace prod --since 2h\n");
}

/* Examples shown by COMMAND --help. */
static const struct {
  const char *cmd;
  const char *text;
} examples[] = {
    {"search",
     "  cairn-query search --namespace payments --since 2h --grep 'status\":500'\n"
     "  cairn-query search --namespace 'payment-*' --pod api-0 --pod api-1 -i --grep timeout\n"
     "  cairn-query search --regex 'user=(alice|bob)' --stream stderr --output json\n"
     "  cairn-query search --namespace kube-system --follow\n"},
    {"audit",
     "  cairn-query audit --key exec --since 1d\n"
     "  cairn-query audit --auid 1000 --syscall execve --success no -v\n"
     "  cairn-query audit --verb delete --resource secrets --namespace payments\n"
     "  cairn-query audit --subresource exec --status 2xx --output csv\n"},
    {"stats",
     "  cairn-query stats                                 (store counters)\n"
     "  cairn-query stats --by namespace --since 1d --top 10\n"
     "  cairn-query stats --by key --source audit --output json\n"
     "  cairn-query stats --histogram 1h --namespace payments --since 1d\n"},
    {"export",
     "  cairn-query export --data /var/lib/cairn --out case-4711 --namespace payments \\\n"
     "      --since 2026-03-01 --until 2026-03-02 --public-key auditor.pub\n"
     "  cairn-query export --out exec-1d --subresource exec --since 1d\n"},
    {"verify-export",
     "  cairn-query verify-export case-4711 --public-key auditor.pub\n"
     "  cairn-query verify-export case-4711 --public-key auditor.pub --output json\n"},
};

static void print_cmd_help(FILE *f, const cmd_def *c) {
  if (c->bit == CMD_VEXPORT)
    fprintf(f, "usage: cairn-query verify-export BUNDLE_DIR --public-key FILE [options]\n%s\n"
               "exit status: 0 verified, 2 usage, 3 verification failed\n\noptions:\n",
            c->summary);
  else if (c->bit == CMD_EXPORT)
    fprintf(f, "usage: cairn-query export --data DIR --out BUNDLE_DIR [filters]\n%s\n"
               "exit status: 0 exported, 1 nothing matched (empty bundle), 2 usage or data "
               "error,\n             3 the store fails its integrity check\n\noptions:\n",
            c->summary);
  else if (c->bit & (CMD_SEARCH | CMD_AUDIT | CMD_STATS))
    fprintf(f, "usage: cairn-query %s --data DIR [options]\n"
               "       cairn-query %s --server HOST:PORT --tls-cert F --tls-key F --tls-ca F "
               "[options]\n%s\n\noptions:\n", c->name, c->name, c->summary);
  else
    fprintf(f, "usage: cairn-query %s --data DIR [options]\n%s\n\noptions:\n", c->name,
            c->summary);
  for (size_t i = 0; i < COUNT_OF(opts); i++) {
    if (!(opts[i].cmds & c->bit)) continue;
    char left[40];
    snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
             opts[i].arg ? opts[i].arg : "");
    fprintf(f, "  %-22s %s\n", left, opts[i].help);
  }
  if (c->bit & CMD_Q)
    fprintf(f, "\nFilters AND together; a filter given twice matches either value (OR).\n");
  for (size_t i = 0; i < COUNT_OF(examples); i++)
    if (strcmp(examples[i].cmd, c->name) == 0) fprintf(f, "\nexamples:\n%s", examples[i].text);
}

static const cmd_def *cmd_find(const char *name) {
  for (size_t i = 0; i < COUNT_OF(cmds); i++)
    if (strcmp(cmds[i].name, name) == 0) return &cmds[i];
  return NULL;
}

/* The option named by arg ("--name" or "--name=value"), or NULL. */
static const opt_def *opt_find(const char *arg, const char **inline_val) {
  *inline_val = NULL;
  if (strncmp(arg, "--", 2) != 0) return NULL;
  const char *name = arg + 2;
  const char *eq = strchr(name, '=');
  size_t n = eq ? (size_t)(eq - name) : strlen(name);
  for (size_t i = 0; i < COUNT_OF(opts); i++) {
    if (strlen(opts[i].name) == n && strncmp(opts[i].name, name, n) == 0) {
      if (eq) *inline_val = eq + 1;
      return &opts[i];
    }
  }
  return NULL;
}

/* Raw option values, converted after the whole line is read so errors come in
 * a stable order and "now" is read once. */
typedef struct raw_args {
  const char *val[OPT_COUNT_]; /* borrowed from argv; the last one given */
  bool seen[OPT_COUNT_];
  qry_values multi[OPT_COUNT_]; /* filters: every value given */
} raw_args;

static int parse_time(const qry_env *env, const char *flag, const char *s, int64_t now,
                      int64_t *out) {
  if (cairn_time_parse_user(s, now, out) == CAIRN_OK) return QRY_EXIT_OK;
  fprintf(env->err, "cairn-query: --%s: cannot parse '%s' (%s)\n", flag, s, time_hint);
  return QRY_EXIT_USAGE;
}

static int parse_count(const qry_env *env, const char *flag, const char *s, size_t *out) {
  bool digits = *s != '\0';
  for (const char *p = s; *p; p++)
    if (*p < '0' || *p > '9') digits = false;
  errno = 0;
  unsigned long long v = digits ? strtoull(s, NULL, 10) : 0;
  if (!digits || errno == ERANGE || v > SIZE_MAX) {
    fprintf(env->err, "cairn-query: --%s: '%s' is not a count (use 0 for all, default %u)\n",
            flag, s, strcmp(flag, "limit") == 0 ? QRY_DEFAULT_LIMIT : QRY_DEFAULT_TOP);
    return QRY_EXIT_USAGE;
  }
  *out = (size_t)v;
  return QRY_EXIT_OK;
}

static int parse_limit(const qry_env *env, const char *s, size_t *out) {
  return parse_count(env, "limit", s, out);
}

/* The filters, follow/verbose and the stats options of r into o. */
static int convert_query_args(const cmd_def *c, const raw_args *r, const qry_env *env,
                              qry_opts *o) {
  qry_filter_args fa;
  memset(&fa, 0, sizeof(fa));
  bool audit = c->bit == CMD_AUDIT;
  if (audit)
    fa.k8s_namespace = r->multi[OPT_NAMESPACE];
  else
    fa.field[STO_FIELD_NAMESPACE] = r->multi[OPT_NAMESPACE];
  fa.field[STO_FIELD_POD] = r->multi[OPT_POD];
  fa.field[STO_FIELD_CONTAINER] = r->multi[OPT_CONTAINER];
  fa.field[STO_FIELD_NODE] = r->multi[OPT_NODE];
  for (int f = STO_FIELD_AUDIT_KEY; f < STO_FIELD_COUNT_; f++)
    fa.field[f] = r->multi[OPT_KEY + (f - STO_FIELD_AUDIT_KEY)];
  fa.grep = r->multi[OPT_GREP];
  fa.regex = r->multi[OPT_REGEX];
  fa.stream = r->multi[OPT_STREAM];
  fa.icase = r->seen[OPT_IGNORE_CASE];
  o->args = fa;
  int rc = qry__filters_build(c->name, &fa, env, o);
  if (rc != QRY_EXIT_OK) return rc;
  o->follow = r->seen[OPT_FOLLOW];
  o->verbose = r->seen[OPT_VERBOSE];
  o->group = -1;
  o->top = QRY_DEFAULT_TOP;
  if (r->val[OPT_BY] && !qry__group_parse(r->val[OPT_BY], &o->group)) {
    fprintf(env->err,
            "cairn-query stats: --by: unknown field '%s' (namespace, pod, container, node, "
            "source, stream, key, auid, uid, syscall, type, exe, success, user, verb, resource, "
            "subresource, code, decision)\n",
            r->val[OPT_BY]);
    return QRY_EXIT_USAGE;
  }
  if (r->val[OPT_TOP] && (rc = parse_count(env, "top", r->val[OPT_TOP], &o->top)) != QRY_EXIT_OK)
    return rc;
  if (r->val[OPT_HISTOGRAM]) {
    if (cairn_duration_parse(r->val[OPT_HISTOGRAM], &o->bucket_ns) != CAIRN_OK ||
        o->bucket_ns <= 0) {
      fprintf(env->err,
              "cairn-query stats: --histogram: '%s' is not a bucket length (use e.g. 1h, 15m, 1d)\n",
              r->val[OPT_HISTOGRAM]);
      return QRY_EXIT_USAGE;
    }
  }
  return QRY_EXIT_OK;
}

/* Turn the raw values into o. QRY_EXIT_OK, or QRY_EXIT_USAGE after one line on err. */
static int convert_args(const cmd_def *c, const raw_args *r, const qry_env *env, qry_opts *o) {
  if (r->seen[OPT_SERVER] && !(c->bit & (CMD_SEARCH | CMD_AUDIT | CMD_STATS))) {
    fprintf(env->err,
            "cairn-query %s: cannot run remotely (--server): it needs the store itself; run it "
            "on the aggregator host with --data DIR (remote mode serves search, audit and "
            "stats)\n",
            c->name);
    return QRY_EXIT_USAGE;
  }
  if (r->seen[OPT_SERVER]) {
    o->server = r->val[OPT_SERVER];
    o->tls_cert = r->val[OPT_TLS_CERT];
    o->tls_key = r->val[OPT_TLS_KEY];
    o->tls_ca = r->val[OPT_TLS_CA];
    const char *missing = !o->tls_cert ? "--tls-cert" : !o->tls_key ? "--tls-key"
                          : !o->tls_ca ? "--tls-ca" : NULL;
    if (missing || !*o->server) {
      fprintf(env->err,
              "cairn-query %s: --server needs %s FILE: remote queries use mutual TLS "
              "(--tls-cert, --tls-key, --tls-ca)\n",
              c->name, missing ? missing : "a HOST:PORT and");
      return QRY_EXIT_USAGE;
    }
    if (r->seen[OPT_DATA]) {
      fprintf(env->err, "cairn-query %s: --server and --data exclude each other: query the "
                        "aggregator or a local store\n", c->name);
      return QRY_EXIT_USAGE;
    }
    if (r->seen[OPT_FOLLOW]) {
      fprintf(env->err, "cairn-query search: --follow cannot run remotely (--server); run it on "
                        "the aggregator host with --data DIR\n");
      return QRY_EXIT_USAGE;
    }
  } else if (r->seen[OPT_TLS_CERT] || r->seen[OPT_TLS_KEY] || r->seen[OPT_TLS_CA]) {
    fprintf(env->err, "cairn-query %s: --tls-* are for remote mode: add --server HOST:PORT\n",
            c->name);
    return QRY_EXIT_USAGE;
  }
  o->public_key = r->val[OPT_PUBLIC_KEY];
  if (c->bit == CMD_VEXPORT) {
    if (!o->bundle) {
      fprintf(env->err, "cairn-query verify-export: no bundle given: cairn-query verify-export "
                        "BUNDLE_DIR --public-key FILE\n");
      return QRY_EXIT_USAGE;
    }
    if (!o->public_key || !*o->public_key) {
      fprintf(env->err,
              "cairn-query verify-export: --public-key FILE is required: the auditor's own copy "
              "of the aggregator's signing.pub (a key shipped inside a bundle would prove "
              "nothing)\n");
      return QRY_EXIT_USAGE;
    }
  }
  if (c->bit == CMD_EXPORT) {
    o->out_dir = r->val[OPT_OUT];
    if (!o->out_dir || !*o->out_dir) {
      fprintf(env->err, "cairn-query export: --out DIR is required: the bundle directory to "
                        "create\n");
      return QRY_EXIT_USAGE;
    }
    if (!r->seen[OPT_LIMIT]) o->q.limit = 0; /* export everything that matches */
  }
  o->data_dir = r->seen[OPT_DATA] ? r->val[OPT_DATA] : env->data_dir;
  if (c->bit == CMD_VEXPORT || o->server) o->data_dir = "";
  else if (!o->data_dir || !*o->data_dir) {
    fprintf(env->err, "cairn-query %s: no store given: pass --data DIR or set CAIRN_DATA\n",
            c->name);
    return QRY_EXIT_USAGE;
  }

  const char *fmt = r->val[OPT_OUTPUT];
  if (!fmt || strcmp(fmt, "text") == 0) {
    o->format = QRY_FMT_TEXT;
  } else if (strcmp(fmt, "json") == 0) {
    o->format = QRY_FMT_JSON;
  } else if (strcmp(fmt, "csv") == 0) {
    o->format = QRY_FMT_CSV;
  } else {
    fprintf(env->err, "cairn-query: --output: unknown format '%s' (use text, json or csv)\n", fmt);
    return QRY_EXIT_USAGE;
  }

  int64_t now = env->now_ns ? env->now_ns : cairn_time_now_ns();
  int rc;
  if (r->val[OPT_SINCE] &&
      (rc = parse_time(env, "since", r->val[OPT_SINCE], now, &o->q.since_ns)) != QRY_EXIT_OK)
    return rc;
  if (r->val[OPT_UNTIL] &&
      (rc = parse_time(env, "until", r->val[OPT_UNTIL], now, &o->q.until_ns)) != QRY_EXIT_OK)
    return rc;
  if (o->q.since_ns >= o->q.until_ns) {
    fprintf(env->err,
            "cairn-query: --since '%s' is not before --until '%s': the range is empty\n",
            r->val[OPT_SINCE] ? r->val[OPT_SINCE] : "(open)",
            r->val[OPT_UNTIL] ? r->val[OPT_UNTIL] : "(open)");
    return QRY_EXIT_USAGE;
  }

  if (r->val[OPT_LIMIT] && (rc = parse_limit(env, r->val[OPT_LIMIT], &o->q.limit)) != QRY_EXIT_OK)
    return rc;

  if (r->val[OPT_SOURCE]) {
    Cairn__Source src = CAIRN__SOURCE__SOURCE_UNKNOWN;
    if (pb_source_parse(r->val[OPT_SOURCE], &src) != CAIRN_OK ||
        src == CAIRN__SOURCE__SOURCE_UNKNOWN) {
      fprintf(env->err,
              "cairn-query: --source: unknown source '%s' (use container, audit, k8s-audit or "
              "query)\n",
              r->val[OPT_SOURCE]);
      return QRY_EXIT_USAGE;
    }
    o->q.source = (int)src;
  }
  rc = convert_query_args(c, r, env, o);
  if (rc != QRY_EXIT_OK) return rc;
  o->print_stats = r->seen[OPT_STATS];
  return QRY_EXIT_OK;
}

/* Parse argv[2..] for command c. Returns -1 to go on and run the command,
 * QRY_EXIT_OK when --help was printed, QRY_EXIT_USAGE after one line on err. */
static int parse_args(int argc, char *const *argv, const cmd_def *c, const qry_env *env,
                      qry_opts *o) {
  raw_args r;
  memset(&r, 0, sizeof(r));
  memset(o, 0, sizeof(*o));
  o->cmd = c->name;
  o->argc = argc;
  o->argv = argv;
  sto_query_init(&o->q);
  o->q.limit = QRY_DEFAULT_LIMIT;
  o->q.newest_first = true;

  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0) a = "--help";
    if (strcmp(a, "-v") == 0) a = "--verbose";
    if (strcmp(a, "-i") == 0) a = "--ignore-case";
    const char *val = NULL;
    const opt_def *d = opt_find(a, &val);
    if (!d && c->bit == CMD_VEXPORT && a[0] != '-' && !o->bundle) {
      o->bundle = a; /* verify-export BUNDLE_DIR */
      continue;
    }
    if (!d) {
      if (a[0] == '-')
        fprintf(env->err, "cairn-query %s: unknown option '%s' (see cairn-query %s --help)\n",
                c->name, a, c->name);
      else
        fprintf(env->err,
                "cairn-query %s: unexpected argument '%s' (options are --name VALUE; see "
                "cairn-query %s --help)\n",
                c->name, a, c->name);
      return QRY_EXIT_USAGE;
    }
    if (!(d->cmds & c->bit)) {
      fprintf(env->err, "cairn-query %s: --%s does not apply to %s (see cairn-query %s --help)\n",
              c->name, d->name, c->name, c->name);
      return QRY_EXIT_USAGE;
    }
    if (d->id == OPT_HELP) {
      print_cmd_help(env->out, c);
      return QRY_EXIT_OK;
    }
    if (!d->arg && val) {
      fprintf(env->err, "cairn-query %s: --%s takes no value\n", c->name, d->name);
      return QRY_EXIT_USAGE;
    }
    if (d->arg && !val) {
      if (i + 1 >= argc) {
        fprintf(env->err, "cairn-query %s: --%s needs a value (%s)\n", c->name, d->name, d->arg);
        return QRY_EXIT_USAGE;
      }
      val = argv[++i];
    }
    if (d->once && !*val) {
      fprintf(env->err,
              "cairn-query %s: --%s is empty; leave the filter out to match everything\n",
              c->name, d->name);
      return QRY_EXIT_USAGE;
    }
    if (d->once) {
      qry_values *mv = &r.multi[d->id];
      if (mv->n == QRY_MAX_VALUES) {
        fprintf(env->err, "cairn-query %s: --%s given more than %u times\n", c->name, d->name,
                QRY_MAX_VALUES);
        return QRY_EXIT_USAGE;
      }
      mv->v[mv->n++] = val;
    }
    r.seen[d->id] = true;
    r.val[d->id] = val;
    if (d->id == OPT_OLDEST_FIRST) o->q.newest_first = false;
    if (d->id == OPT_NEWEST_FIRST) o->q.newest_first = true;
  }
  return convert_args(c, &r, env, o) == QRY_EXIT_OK ? -1 : QRY_EXIT_USAGE;
}

int qry_run(int argc, char *const *argv, const qry_env *env) {
  if (argc < 2) {
    fprintf(env->err, "cairn-query: missing command (search, stats, audit, verify, export, "
                      "verify-export; see cairn-query --help)\n");
    return QRY_EXIT_USAGE;
  }
  const char *first = argv[1];
  if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0 ||
      (strcmp(first, "help") == 0 && argc == 2)) {
    print_overview(env->out);
    return QRY_EXIT_OK;
  }
  if (strcmp(first, "--version") == 0 || strcmp(first, "version") == 0) {
    fprintf(env->out, "cairn-query %s\n", CAIRN_VERSION);
    return QRY_EXIT_OK;
  }
  if (strcmp(first, "help") == 0) {
    const cmd_def *c = cmd_find(argv[2]);
    if (c && c->run) {
      print_cmd_help(env->out, c);
      return QRY_EXIT_OK;
    }
    first = argv[2]; /* fall through to the unknown / not implemented message */
  }
  if (first[0] == '-') {
    fprintf(env->err,
            "cairn-query: expected a command before '%s' (e.g. cairn-query search --data DIR; "
            "see cairn-query --help)\n",
            first);
    return QRY_EXIT_USAGE;
  }
  const cmd_def *c = cmd_find(first);
  if (!c) {
    fprintf(env->err,
            "cairn-query: unknown command '%s' (search, stats, audit, verify, export, "
            "verify-export; see cairn-query --help)\n",
            first);
    return QRY_EXIT_USAGE;
  }
  if (!c->run) {
    fprintf(env->err, "cairn-query %s: not implemented yet (see README)\n", c->name);
    return QRY_EXIT_USAGE;
  }
  qry_opts *o = malloc(sizeof(*o)); /* large (filter terms): not on the stack */
  if (!o) {
    fprintf(env->err, "cairn-query %s: out of memory\n", c->name);
    return QRY_EXIT_USAGE;
  }
  uint64_t count = 0;
  int rc = parse_args(argc, argv, c, env, o);
  o->result_count = &count;
  if (rc < 0) {
    rc = c->run(o, env);
    /* PCI DSS 10.2.1.3: every local query of the records is itself recorded
     * (remote ones by the aggregator) */
    if (!o->server && (c->bit & CMD_Q) && (rc == QRY_EXIT_OK || rc == QRY_EXIT_NO_MATCH))
      qry__record_local(o, env, rc);
  }
  qry__filter_free(o->filter);
  free(o);
  return rc;
}

int qry_main(int argc, char *const *argv, FILE *out, FILE *err) {
  const char *data = getenv("CAIRN_DATA");
  const char *no_color = getenv("NO_COLOR");
  const char *term = getenv("TERM");
  qry_env env = {
      .out = out,
      .err = err,
      .data_dir = data && *data ? data : NULL,
      .now_ns = 0,
      .out_is_tty = isatty(fileno(out)) == 1,
      .err_is_tty = isatty(fileno(err)) == 1,
  };
  env.color = env.out_is_tty && !(no_color && *no_color) && !(term && strcmp(term, "dumb") == 0);
  const char *rec = getenv("CAIRN_QUERY_RECORD");
  env.record_queries = !(rec && (strcmp(rec, "0") == 0 || strcmp(rec, "no") == 0 ||
                                 strcmp(rec, "off") == 0 || strcmp(rec, "false") == 0));
  return qry_run(argc, argv, &env);
}
