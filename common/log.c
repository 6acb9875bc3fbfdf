/* common/log.c: one formatted write(2) per line so concurrent threads never interleave. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* config read once before threads start (STYLE 9) */
static cairn_log_level g_min = CAIRN_LOG_INFO;
static cairn_log_format g_fmt = CAIRN_LOG_LOGFMT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cairn_log_setup(cairn_log_level min, cairn_log_format fmt) {
  g_min = min;
  g_fmt = fmt;
}

bool cairn_log_level_parse(const char *s, cairn_log_level *out) {
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, level_names[i]) == 0) {
      *out = (cairn_log_level)i;
      return true;
    }
  }
  return false;
}

/* Append msg to line with quotes and backslashes escaped; returns new length. */
static size_t append_escaped(char *line, size_t len, size_t cap, const char *msg) {
  for (const char *p = msg; *p && len + 3 < cap; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\') {
      line[len++] = '\\';
      line[len++] = (char)c;
    } else if (c == '\n') {
      line[len++] = '\\';
      line[len++] = 'n';
    } else if (c < 0x20) {
      line[len++] = ' ';
    } else {
      line[len++] = (char)c;
    }
  }
  return len;
}

void cairn_log(cairn_log_level lvl, const char *comp, const char *fmt, ...) {
  if (lvl < g_min) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char tbuf[96];
  snprintf(tbuf, sizeof(tbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

  char line[4096];
  size_t len;
  const char *lv = level_names[lvl > CAIRN_LOG_ERROR ? CAIRN_LOG_ERROR : lvl];
  if (g_fmt == CAIRN_LOG_JSON) {
    len = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":\"%s\",\"msg\":\"",
                           tbuf, lv, comp);
    len = append_escaped(line, len, sizeof(line), msg);
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\"}\n");
  } else {
    len = (size_t)snprintf(line, sizeof(line), "ts=%s level=%s comp=%s msg=\"", tbuf, lv, comp);
    len = append_escaped(line, len, sizeof(line), msg);
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\"\n");
  }
  if (len > sizeof(line)) len = sizeof(line);
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
