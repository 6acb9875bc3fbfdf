/* common/timeparse.c: hand-written RFC 3339 parser. It is on the per-line hot path
 * of the CRI and Docker parsers (strptime is locale-aware and far slower, and
 * does not do fractions or offsets), so it works on byte slices without copies. */
#include "common/timeparse.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool digits(const char *s, size_t n, int *out) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

/* days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return dm[m - 1];
}

/* Parse YYYY-MM-DD at s (10 bytes). */
static bool parse_date(const char *s, int *y, int *mo, int *d) {
  if (s[4] != '-' || s[7] != '-') return false;
  if (!digits(s, 4, y) || !digits(s + 5, 2, mo) || !digits(s + 8, 2, d)) return false;
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > days_in_month(*y, *mo)) return false;
  return true;
}

cairn_err cairn_time_parse_rfc3339(const char *s, size_t n, int64_t *ns_out) {
  /* minimum: YYYY-MM-DDTHH:MM:SSZ = 20 bytes */
  if (n < 20) return CAIRN_E_PARSE;
  int y, mo, d, h, mi, se;
  if (!parse_date(s, &y, &mo, &d)) return CAIRN_E_PARSE;
  if (s[10] != 'T' && s[10] != 't') return CAIRN_E_PARSE;
  if (s[13] != ':' || s[16] != ':') return CAIRN_E_PARSE;
  if (!digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
    return CAIRN_E_PARSE;
  if (h > 23 || mi > 59 || se > 60) return CAIRN_E_PARSE;
  size_t i = 19;
  int64_t frac = 0;
  if (i < n && s[i] == '.') {
    i++;
    size_t start = i;
    int ndig = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      if (ndig < 9) {
        frac = frac * 10 + (s[i] - '0');
        ndig++;
      } else {
        return CAIRN_E_PARSE; /* more than 9 digits */
      }
      i++;
    }
    if (i == start) return CAIRN_E_PARSE;
    for (; ndig < 9; ndig++) frac *= 10;
  }
  if (i >= n) return CAIRN_E_PARSE;
  int64_t off_s = 0;
  if (s[i] == 'Z' || s[i] == 'z') {
    i++;
  } else if (s[i] == '+' || s[i] == '-') {
    if (n - i < 6 || s[i + 3] != ':') return CAIRN_E_PARSE;
    int oh, om;
    if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om)) return CAIRN_E_PARSE;
    if (oh > 23 || om > 59) return CAIRN_E_PARSE;
    off_s = (int64_t)oh * 3600 + om * 60;
    if (s[i] == '-') off_s = -off_s;
    i += 6;
  } else {
    return CAIRN_E_PARSE;
  }
  if (i != n) return CAIRN_E_PARSE;
  int64_t secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + mi * 60 + se - off_s;
  /* int64 ns covers 1677..2262; anything outside is not a log timestamp */
  if (secs > INT64_MAX / 1000000000LL - 1 || secs < INT64_MIN / 1000000000LL + 1) return CAIRN_E_PARSE;
  *ns_out = secs * 1000000000LL + frac;
  return CAIRN_OK;
}

cairn_err cairn_duration_parse(const char *s, int64_t *ns_out) {
  if (!s || !*s) return CAIRN_E_PARSE;
  const char *p = s;
  int64_t v = 0;
  if (*p < '0' || *p > '9') return CAIRN_E_PARSE;
  while (*p >= '0' && *p <= '9') {
    if (v > 1000000000LL) return CAIRN_E_PARSE;
    v = v * 10 + (*p - '0');
    p++;
  }
  int64_t unit;
  if (strcmp(p, "ns") == 0) unit = 1;
  else if (strcmp(p, "us") == 0) unit = 1000LL;
  else if (strcmp(p, "ms") == 0) unit = 1000000LL;
  else if (strcmp(p, "s") == 0) unit = 1000000000LL;
  else if (strcmp(p, "m") == 0) unit = 60LL * 1000000000LL;
  else if (strcmp(p, "h") == 0) unit = 3600LL * 1000000000LL;
  else if (strcmp(p, "d") == 0) unit = 86400LL * 1000000000LL;
  else if (strcmp(p, "w") == 0) unit = 7 * 86400LL * 1000000000LL;
  else return CAIRN_E_PARSE;
  if (v > INT64_MAX / unit) return CAIRN_E_PARSE;
  *ns_out = v * unit;
  return CAIRN_OK;
}

cairn_err cairn_time_parse_user(const char *s, int64_t now_ns, int64_t *ns_out) {
  if (!s) return CAIRN_E_PARSE;
  size_t n = strlen(s);
  if (strcmp(s, "now") == 0) {
    *ns_out = now_ns;
    return CAIRN_OK;
  }
  if (n == 10) {
    int y, mo, d;
    if (!parse_date(s, &y, &mo, &d)) return CAIRN_E_PARSE;
    int64_t days = days_from_civil(y, mo, d);
    if (days > INT64_MAX / 86400LL / 1000000000LL || days < INT64_MIN / 86400LL / 1000000000LL)
      return CAIRN_E_PARSE;
    *ns_out = days * 86400LL * 1000000000LL;
    return CAIRN_OK;
  }
  if (n >= 20 && s[4] == '-') return cairn_time_parse_rfc3339(s, n, ns_out);
  int64_t dur;
  if (cairn_duration_parse(s, &dur) == CAIRN_OK) {
    *ns_out = now_ns - dur;
    return CAIRN_OK;
  }
  return CAIRN_E_PARSE;
}

int64_t cairn_time_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t cairn_time_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

size_t cairn_time_format(int64_t ns, char *out, size_t cap) {
  int64_t secs = ns / 1000000000LL;
  int64_t frac = ns % 1000000000LL;
  if (frac < 0) {
    frac += 1000000000LL;
    secs -= 1;
  }
  time_t t = (time_t)secs;
  struct tm tm;
  gmtime_r(&t, &tm);
  int r = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
  if (r < 0) return 0;
  return (size_t)r < cap ? (size_t)r : cap - 1;
}
