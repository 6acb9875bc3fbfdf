/* collector/metrics.c: the collector's /metrics, /healthz and /readyz on
 * --metrics-listen, served on the collector's own loop by proto/http.h.
 *
 * The counters are plain fields of col_collector (col_stats, one
 * col_input_stats per --input) because everything runs on one loop thread:
 * rendering reads them between callbacks, so no atomics and no globals.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "collector/internal.h"
#include "collector/redact.h"
#include "common/timeparse.h"

void col__count_line(col_file *f, size_t full_len) {
  col_collector *c = f->col;
  c->stats.lines_read++;
  c->stats.bytes_read += full_len + 1;
  if (c->in_stats && f->input) {
    col_input_stats *is = &c->in_stats[f->input - c->cfg->in];
    is->lines_read++;
    is->bytes_read += full_len + 1;
  }
}

/* Append v as a Prometheus label value: \ " and newline escaped. */
static cairn_err label_value(cairn_buf *b, const char *v) {
  cairn_err e = CAIRN_OK;
  for (const char *p = v; *p && e == CAIRN_OK; p++) {
    if (*p == '\\') {
      e = cairn_buf_append(b, "\\\\", 2);
    } else if (*p == '"') {
      e = cairn_buf_append(b, "\\\"", 2);
    } else if (*p == '\n') {
      e = cairn_buf_append(b, "\\n", 2);
    } else {
      e = cairn_buf_append(b, p, 1);
    }
  }
  return e;
}

static cairn_err family(cairn_buf *b, const char *name, const char *type, const char *help) {
  return cairn_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One unlabelled sample with its HELP and TYPE lines. */
static cairn_err single(cairn_buf *b, const char *name, const char *type, const char *help,
                        uint64_t v) {
  cairn_err e = family(b, name, type, help);
  if (e == CAIRN_OK) e = cairn_buf_printf(b, "%s %" PRIu64 "\n", name, v);
  return e;
}

typedef enum in_field { IN_LINES, IN_BYTES, IN_RECORDS, IN_UNPARSED, IN_TRUNC, IN_FILES } in_field;

static uint64_t files_tailed(const col_collector *c, size_t input) {
  uint64_t n = 0;
  for (const col_file *f = c->files; f; f = f->next) {
    if (f->tail && f->started && !f->closing && f->input == &c->cfg->in[input]) n++;
  }
  return n;
}

/* One family with a sample per --input. */
static cairn_err per_input(const col_collector *c, cairn_buf *b, const char *name,
                           const char *type, const char *help, in_field which) {
  cairn_err e = family(b, name, type, help);
  for (size_t i = 0; e == CAIRN_OK && i < c->cfg->n_in; i++) {
    const col_input_stats *is = &c->in_stats[i];
    uint64_t v = 0;
    switch (which) {
    case IN_LINES: v = is->lines_read; break;
    case IN_BYTES: v = is->bytes_read; break;
    case IN_RECORDS: v = is->records; break;
    case IN_UNPARSED: v = is->parse_unparsed; break;
    case IN_TRUNC: v = is->records_truncated; break;
    case IN_FILES: v = files_tailed(c, i); break;
    }
    e = cairn_buf_printf(b, "%s{input=\"", name);
    if (e == CAIRN_OK) e = label_value(b, c->cfg->in[i].spec);
    if (e == CAIRN_OK) e = cairn_buf_printf(b, "\"} %" PRIu64 "\n", v);
  }
  return e;
}

/* Redaction counters (collector/redact.h); rule names need no escaping. */
static cairn_err redaction_families(const col_redactor *rd, cairn_buf *b) {
  const char *name = "cairn_collector_redactions_total";
  cairn_err e = family(b, name, "counter", "Secrets masked before sending, per redaction rule.");
  for (size_t i = 0; e == CAIRN_OK && i < col__redactor_rules(rd); i++)
    e = cairn_buf_printf(b, "%s{rule=\"%s\"} %" PRIu64 "\n", name,
                         col__redactor_rule_name(rd, i), col__redactor_rule_hits(rd, i));
  if (e == CAIRN_OK)
    e = single(b, "cairn_collector_records_redacted_total", "counter",
               "Records with at least one secret masked.", col__redactor_records(rd));
  if (e == CAIRN_OK)
    e = single(b, "cairn_collector_redaction_errors_total", "counter",
               "Regex matches that failed (limits) and masked the whole text instead.",
               col__redactor_errors(rd));
  return e;
}

cairn_err col__metrics_render(const col_collector *c, int64_t now_ns, cairn_buf *b) {
  (void)now_ns;
  const col_stats *st = &c->stats;
  cairn_err e = cairn_buf_printf(b,
                                 "# HELP cairn_collector_build_info Version of this collector.\n"
                                 "# TYPE cairn_collector_build_info gauge\n"
                                 "cairn_collector_build_info{version=\"%s\"} 1\n",
                                 CAIRN_VERSION);
  if (c->in_stats) {
    if (e == CAIRN_OK)
      e = per_input(c, b, "cairn_collector_lines_read_total", "counter",
                    "Complete lines read from log files.", IN_LINES);
    if (e == CAIRN_OK)
      e = per_input(c, b, "cairn_collector_bytes_read_total", "counter",
                    "Bytes of complete lines read (newline included).", IN_BYTES);
    if (e == CAIRN_OK)
      e = per_input(c, b, "cairn_collector_records_read_total", "counter",
                    "Records the parsers produced.", IN_RECORDS);
    if (e == CAIRN_OK)
      e = per_input(c, b, "cairn_collector_parse_errors_total", "counter",
                    "Records kept raw and flagged unparsed because they did not parse.",
                    IN_UNPARSED);
    if (e == CAIRN_OK)
      e = per_input(c, b, "cairn_collector_records_truncated_total", "counter",
                    "Records cut at --max-record-size and flagged truncated.", IN_TRUNC);
    if (e == CAIRN_OK)
      e = per_input(c, b, "cairn_collector_files_tailed", "gauge",
                    "Files open and being read.", IN_FILES);
  }
  struct {
    const char *name, *type, *help;
    uint64_t v;
  } rows[] = {
      {"cairn_collector_records_sent_total", "counter",
       "Records in batches sent to an aggregator (a re-sent batch counts again).",
       st->records_sent},
      {"cairn_collector_records_acked_total", "counter",
       "Records in batches the aggregator acknowledged (stored or rejected).", st->records_acked},
      {"cairn_collector_batches_sent_total", "counter", "Batches sent (re-sends included).",
       st->batches_sent},
      {"cairn_collector_batches_acked_total", "counter", "Batches acknowledged.",
       st->batches_acked},
      {"cairn_collector_bytes_sent_total", "counter",
       "Compressed batch payload bytes sent (re-sends included).", st->bytes_sent},
      {"cairn_collector_batches_in_flight", "gauge",
       "Batches sent on the current connection and not yet acknowledged.",
       c->ship ? (uint64_t)col__ship_inflight(c->ship) : 0},
      {"cairn_collector_batches_queued", "gauge",
       "Closed batches not yet acknowledged (encoding, ready or in flight).", (uint64_t)c->q_len},
      {"cairn_collector_unacked_bytes", "gauge",
       "Raw record bytes read but not yet acknowledged (compared with --memory-budget).",
       c->unacked_raw},
      {"cairn_collector_reads_paused", "gauge",
       "1 while reading is paused because --memory-budget is reached.", c->paused ? 1u : 0u},
      {"cairn_collector_aggregator_connected", "gauge",
       "1 while a session with an aggregator is established (Hello acknowledged).",
       c->ship && col__ship_ready(c->ship) ? 1u : 0u},
      {"cairn_collector_rotations_total", "counter", "Files seen renamed away by a rotation.",
       st->rotations},
      {"cairn_collector_truncations_total", "counter",
       "Files truncated or rewritten in place (copytruncate).", st->truncations},
      {"cairn_collector_reconnects_total", "counter",
       "Connections to an aggregator that ended or failed and were retried.", st->reconnects},
      {"cairn_collector_acks_retry_total", "counter",
       "Batches the aggregator answered RETRY (sent again later).", st->retries},
      {"cairn_collector_acks_reject_total", "counter",
       "Batches the aggregator answered REJECT (not stored; see its log).", st->rejects},
      {"cairn_collector_checkpoint_commits_total", "counter",
       "Checkpoint transactions committed to --state.", st->ckpt_commits},
      {"cairn_collector_checkpoint_commit_failures_total", "counter",
       "Checkpoint transactions that failed (retried).", st->ckpt_failures},
      {"cairn_collector_files_opened_total", "counter", "Files opened for reading.",
       st->files_opened},
      {"cairn_collector_files_skipped_total", "counter",
       "Paths matched by an --input glob that are not regular files.", st->bad_inputs},
      {"cairn_collector_audit_gaps_total", "counter",
       "Gaps in audit serial numbers (each also stored as a CAIRN_AUDIT_GAP record).",
       st->audit_gaps},
      {"cairn_collector_audit_events_lost_total", "counter",
       "Audit events the kernel or auditd lost, counted from serial gaps (PCI DSS 10.7).",
       st->audit_lost},
  };
  for (size_t i = 0; e == CAIRN_OK && i < sizeof(rows) / sizeof(rows[0]); i++)
    e = single(b, rows[i].name, rows[i].type, rows[i].help, rows[i].v);
  col_spool_stats sp = {0};
  if (c->spool) col__spool_stats(c->spool, &sp);
  struct {
    const char *name, *type, *help;
    uint64_t v;
  } spool_rows[] = {
      {"cairn_collector_spool_bytes", "gauge",
       "Bytes in the on-disk spool's segment files (compared with --spool-max-bytes).", sp.bytes},
      {"cairn_collector_spool_batches", "gauge", "Batches in the spool not yet acknowledged.",
       sp.batches},
      {"cairn_collector_spool_full_total", "counter",
       "Times the spool reached --spool-max-bytes (reading then pauses at --memory-budget).",
       c->spool_full_total},
      {"cairn_collector_spool_corrupt_total", "counter",
       "Spool entries skipped because they failed their checksum (logged).", sp.corrupt},
      {"cairn_collector_spool_torn_total", "counter",
       "Torn spool tails (a crash during a write) truncated at startup.", sp.torn},
      {"cairn_collector_spool_appended_total", "counter", "Batches written to the spool.",
       sp.appended},
  };
  for (size_t i = 0; e == CAIRN_OK && i < sizeof(spool_rows) / sizeof(spool_rows[0]); i++)
    e = single(b, spool_rows[i].name, spool_rows[i].type, spool_rows[i].help, spool_rows[i].v);
  if (e == CAIRN_OK && c->cfg->redact) e = redaction_families(c->cfg->redact, b);
  return e;
}

bool col__metrics_ready(const col_collector *c, int64_t now_ns, const char **why) {
  if (c->stopping) {
    *why = "shutting down";
    return false;
  }
  if (!c->ship || !col__ship_ready(c->ship)) {
    *why = "not connected to an aggregator";
    return false;
  }
  /* connected, but acks stopped: data has waited longer than the stall
   * limit and nothing was acked for that long either */
  if (c->q_head && now_ns - c->q_head->opened_ns > COL_READY_STALL_NS &&
      now_ns - c->last_ack_ns > COL_READY_STALL_NS) {
    *why = "connected, but no batch was acknowledged for 30s while data waits";
    return false;
  }
  *why = "ready";
  return true;
}

static bool path_is(const char *path, size_t len, const char *want) {
  return len == strlen(want) && memcmp(path, want, len) == 0;
}

/* pb_http handler (loop thread). */
static cairn_err handle(const char *path, size_t len, pb_http_response *resp, void *ud) {
  col_collector *c = ud;
  int64_t now = cairn_time_mono_ns();
  if (path_is(path, len, "/metrics")) {
    resp->content_type = PB_HTTP_PROMETHEUS_TYPE;
    return col__metrics_render(c, now, &resp->body);
  }
  if (path_is(path, len, "/healthz")) return cairn_buf_append_str(&resp->body, "ok\n");
  if (path_is(path, len, "/readyz")) {
    const char *why;
    if (!col__metrics_ready(c, now, &why)) resp->status = 503;
    return cairn_buf_printf(&resp->body, "%s\n", why);
  }
  resp->status = 404;
  return cairn_buf_append_str(&resp->body, "try /metrics, /healthz or /readyz\n");
}

cairn_err col__metrics_start(col_collector *c, char *errbuf, size_t errlen) {
  const col_config *cfg = c->cfg;
  if (!cfg->metrics_listen || !*cfg->metrics_listen) return CAIRN_OK;
  pb_http_options o = {.opt_name = "--metrics-listen", .port_file = cfg->metrics_port_file};
  cairn_err e = pb_http_open(&c->loop, cfg->metrics_listen, &o, handle, c, &c->http, errbuf,
                             errlen);
  if (e != CAIRN_OK) return e;
  cairn_log_info("collector", "metrics on http://%s/metrics (also /healthz, /readyz)",
                 pb_http_addr(c->http));
  return CAIRN_OK;
}

void col__metrics_close(col_collector *c) {
  pb_http_close(c->http, NULL, NULL);
  c->http = NULL;
}
