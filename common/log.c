/* common/log.c: one formatted write(2) per line so concurrent threads never
 * interleave; plus the per-key rate limiter (caller-owned state, no globals
 * beyond the level and format set once at startup). */
#include "common/log.h"

#include <stdarg.h>
#include <stdint.h>
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

/* ---------------- rate limiting ---------------- */

/* FNV-1a 64; never 0 (0 marks a free slot). */
static uint64_t key_hash(const char *key) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  return h ? h : 1;
}

void cairn_log_limiter_init(cairn_log_limiter *l, int64_t interval_ns) {
  memset(l, 0, sizeof(*l));
  l->interval_ns = interval_ns;
}

/* cairn_log_limit_check, also giving the time since the previous line let
 * through for the key (0 for a key not tracked). */
static bool limit_check(cairn_log_limiter *l, const char *key, int64_t now_ns,
                        uint64_t *suppressed, int64_t *since_ns) {
  *since_ns = 0;
  uint64_t h = key_hash(key ? key : "");
  int64_t interval = l->interval_ns > 0 ? l->interval_ns : CAIRN_LOG_LIMIT_INTERVAL_NS;
  struct cairn_log_limit_slot *slot = NULL, *victim = &l->slots[0];
  for (size_t i = 0; i < CAIRN_LOG_LIMIT_SLOTS; i++) {
    struct cairn_log_limit_slot *s = &l->slots[i];
    if (s->key == h) {
      slot = s;
      break;
    }
    /* free slots first, then the one let through longest ago */
    if (victim->key != 0 && (s->key == 0 || s->last_ns < victim->last_ns)) victim = s;
  }
  if (!slot) {
    victim->key = h;
    victim->last_ns = now_ns;
    victim->suppressed = 0;
    *suppressed = 0;
    return true;
  }
  if (now_ns - slot->last_ns < interval) {
    slot->suppressed++;
    return false;
  }
  *suppressed = slot->suppressed;
  *since_ns = now_ns - slot->last_ns;
  slot->suppressed = 0;
  slot->last_ns = now_ns;
  return true;
}

bool cairn_log_limit_check(cairn_log_limiter *l, const char *key, int64_t now_ns,
                           uint64_t *suppressed) {
  int64_t since;
  return limit_check(l, key, now_ns, suppressed, &since);
}

bool cairn_log_limited(cairn_log_limiter *l, const char *key, cairn_log_level lvl,
                       const char *comp, const char *fmt, ...) {
  if (lvl < g_min) return true; /* filtered anyway: leave the limiter alone */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  uint64_t dropped = 0;
  int64_t since = 0;
  if (!limit_check(l, key, now, &dropped, &since)) return false;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (dropped > 0) {
    long long secs = (long long)((since + 500000000LL) / 1000000000LL);
    cairn_log(lvl, comp, "%s (suppressed %llu similar messages in the last %llds)", msg,
              (unsigned long long)dropped, secs ? secs : 1);
  } else {
    cairn_log(lvl, comp, "%s", msg);
  }
  return true;
}
