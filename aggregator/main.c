/* aggregator/main.c: the cairn-aggregator binary: parse the configuration, set
 * up logging, and hand over to the agg API (aggregator.h).
 * Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for a usage,
 * configuration or data error with a one-line message on stderr.
 */
#include <stdio.h>
#include <string.h>

#include "aggregator/aggregator.h"
#include "common/log.h"

int main(int argc, char **argv) {
  agg_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  bool help = false, check = false;
  char err[1024] = "";
  int rc = 2;
  cairn_err e = agg_config_load(&cfg, argc, argv, &help, &check, err, sizeof(err));
  if (help) {
    agg_config_usage(stdout);
    rc = 0;
    goto out_free_cfg;
  }
  if (e != CAIRN_OK) {
    fprintf(stderr, "cairn-aggregator: %s\n", err[0] ? err : cairn_err_str(e));
    goto out_free_cfg;
  }
  if (check) {
    agg_config_print(stdout, &cfg);
    rc = 0;
    goto out_free_cfg;
  }
  cairn_log_level lvl = CAIRN_LOG_INFO;
  if (cfg.log_level) (void)cairn_log_level_parse(cfg.log_level, &lvl);
  cairn_log_setup(lvl, cfg.log_format && strcmp(cfg.log_format, "json") == 0 ? CAIRN_LOG_JSON
                                                                             : CAIRN_LOG_LOGFMT);
  cfg.handle_signals = true;
  agg *a = NULL;
  e = agg_new(&cfg, &a, err, sizeof(err));
  if (e != CAIRN_OK) {
    fprintf(stderr, "cairn-aggregator: %s\n", err[0] ? err : cairn_err_str(e));
    goto out_free_cfg;
  }
  e = agg_run(a);
  agg_free(a);
  if (e != CAIRN_OK) {
    fprintf(stderr, "cairn-aggregator: stopped on error: %s\n", cairn_err_str(e));
    rc = 1;
  } else {
    rc = 0;
  }
out_free_cfg:
  agg_config_free(&cfg);
  return rc;
}
