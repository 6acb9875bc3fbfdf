/* collector/main.c: the cairn-collector binary: "parse" dry-run subcommand,
 * or load the configuration (flags > CAIRN_* env > YAML) and run the daemon.
 * Exit status: 0 success, 2 usage/configuration/data error (one line on stderr).
 */
#include <stdio.h>
#include <string.h>

#include "collector/collector.h"
#include "collector/parse.h"
#include "common/log.h"

static int parse_usage(const char *why) {
  fprintf(stderr, "cairn-collector: parse: %s\nusage: cairn-collector parse --format cri|docker|auditd|k8s-audit "
                  "[--path PATH-FOR-METADATA] FILE\n", why);
  return 2;
}

/* cairn-collector parse --format FORMAT [--path PATH] FILE */
static int run_parse(int argc, char **argv) {
  const char *format = NULL, *meta_path = NULL, *file = NULL;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--format") == 0 || strcmp(a, "--path") == 0) {
      if (i + 1 >= argc) return parse_usage("missing value after option");
      if (a[2] == 'f') {
        format = argv[++i];
      } else {
        meta_path = argv[++i];
      }
    } else if (strncmp(a, "--format=", 9) == 0) {
      format = a + 9;
    } else if (strncmp(a, "--path=", 7) == 0) {
      meta_path = a + 7;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      parse_usage("help");
      return 0;
    } else if (a[0] == '-' && a[1]) {
      return parse_usage("unknown option");
    } else if (!file) {
      file = a;
    } else {
      return parse_usage("more than one FILE");
    }
  }
  if (!format) return parse_usage("--format is required");
  if (!file) return parse_usage("FILE is required");
  Cairn__Format fmt;
  if (strcmp(format, "cri") == 0) {
    fmt = CAIRN__FORMAT__FORMAT_CRI;
  } else if (strcmp(format, "docker") == 0) {
    fmt = CAIRN__FORMAT__FORMAT_DOCKER;
  } else if (strcmp(format, "auditd") == 0) {
    fmt = CAIRN__FORMAT__FORMAT_AUDITD;
  } else if (strcmp(format, "k8s-audit") == 0) {
    fmt = CAIRN__FORMAT__FORMAT_K8S_AUDIT;
  } else {
    return parse_usage("--format must be cri, docker, auditd or k8s-audit");
  }
  char eb[512] = "";
  cairn_err err = col_parse_dry_run(fmt, file, meta_path, stdout, eb, sizeof(eb));
  if (fflush(stdout) != 0 && err == CAIRN_OK) {
    fprintf(stderr, "cairn-collector: parse: writing to stdout failed\n");
    return 2;
  }
  if (err != CAIRN_OK) {
    fprintf(stderr, "cairn-collector: parse: %s\n", eb[0] ? eb : cairn_err_str(err));
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "parse") == 0) return run_parse(argc, argv);

  col_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  bool help = false, check = false;
  char eb[1024] = "";
  cairn_err err = col_config_load(&cfg, argc, argv, &help, &check, eb, sizeof(eb));
  if (help) {
    col_config_usage(stdout);
    col_config_free(&cfg);
    return 0;
  }
  if (err != CAIRN_OK) {
    fprintf(stderr, "cairn-collector: %s\n", eb[0] ? eb : cairn_err_str(err));
    col_config_free(&cfg);
    return 2;
  }
  if (check) {
    col_config_print(stdout, &cfg);
    col_config_free(&cfg);
    return 0;
  }
  cairn_log_level lvl = CAIRN_LOG_INFO;
  (void)cairn_log_level_parse(cfg.log_level, &lvl); /* validated by col_config_load */
  cairn_log_setup(lvl, strcmp(cfg.log_format, "json") == 0 ? CAIRN_LOG_JSON : CAIRN_LOG_LOGFMT);

  col_collector *c = NULL;
  err = col_collector_new(&cfg, &c, eb, sizeof(eb));
  if (err != CAIRN_OK) {
    fprintf(stderr, "cairn-collector: %s\n", eb[0] ? eb : cairn_err_str(err));
    col_config_free(&cfg);
    return 2;
  }
  err = col_collector_run(c);
  col_collector_free(c);
  col_config_free(&cfg);
  if (err == CAIRN_E_TIMEOUT) return 0; /* clean stop; unacked data is re-sent next time */
  return err == CAIRN_OK ? 0 : 1;
}
