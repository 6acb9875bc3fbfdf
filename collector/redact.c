/* collector/redact.c: secret masking rules (PCRE2, compiled once with JIT)
 * applied to records before they are batched.
 *
 * The hot path is a line without secrets: one pass over its bytes looks up
 * every byte in a 256-entry table of the default rules' literal anchors
 * ("AKIA", "eyJ", "://", "passw" ...); only rules whose anchor occurs run
 * their regex. Patterns use possessive repeats so JIT matching keeps no
 * backtracking frames on long values (a PEM body).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "collector/redact.h"
#include "common/buf.h"

#define MAX_ANCHORS 32 /* one bit each in the byte tables */
#define PEM_STREAMS 32     /* streams remembered inside an unterminated private key */
#define PEM_MAX_LINES 512u /* body lines masked after a BEGIN line without END */
#define JIT_STACK_MAX (1u << 20)

/* ---- the default rules ---- */

/* "KEY: VALUE" / KEY=VALUE / "KEY":"VALUE" / \"KEY\":\"VALUE\" separators */
#define SEP "(?:\\\\?[\"'])?[ \\t]*[=:][ \\t]*"
/* a value: "quoted" (JSON escapes kept whole), 'quoted', \"escaped-quoted\"
 * (JSON inside a JSON string) or a bare token (not JSON null/true/false,
 * objects or arrays); \K starts the masked span after the opening quote */
#define VALUE                                              \
  "(?:\"\\K(?:[^\"\\\\\\x00\\n]|\\\\.)++"                  \
  "|'\\K[^'\\x00\\n]++"                                    \
  "|\\\\\"\\K(?:[^\"\\\\\\x00\\n]|\\\\[^\"])++"            \
  "|(?!(?:null|true|false)\\b)\\K(?:[^\\s\"'\\\\&;,<>{}\\[\\]\\x00]|\\\\[^\\s\"'])++)"
#define PEM_LABEL "(?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
/* body characters of a PEM block: base64, header lines, real or \n-escaped newlines */
#define PEM_UNIT "(?:[A-Za-z0-9+/=\\s:,.-]|\\\\[nrt])"

typedef struct default_rule {
  const char *name;
  const char *pattern;
  const char *anchors[7]; /* literal bytes, NULL-terminated; "i:" prefix = ASCII caseless */
} default_rule;

static const default_rule DEFAULTS[] = {
    {"private_key", "-----BEGIN " PEM_LABEL "(?:(?!-----END )" PEM_UNIT ")*+(?:-----END " PEM_LABEL ")?",
     {"-----BEGIN ", NULL}},
    {"jwt", "\\beyJ[A-Za-z0-9_-]{5,}+\\.eyJ[A-Za-z0-9_-]{5,}+\\.[A-Za-z0-9_-]*+", {"eyJ", NULL}},
    {"aws_access_key", "\\b(?:AKIA|ASIA)[0-9A-Z]{16}\\b", {"AKIA", "ASIA", NULL}},
    {"aws_secret_key", "(?i:(?:aws_?)?secret_?access_?key)" SEP VALUE, {"i:secret", NULL}},
    {"github_token", "\\b(?:gh[pousr]_[A-Za-z0-9]{36,255}+|github_pat_[A-Za-z0-9_]{22,255}+)\\b",
     {"ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_", NULL}},
    {"slack_token", "\\bxox[baprs]-[A-Za-z0-9-]{10,}+", {"xox", NULL}},
    {"bearer_token", "(?i:\\bbearer)[ \\t]++\\K[A-Za-z0-9._~+/-]{8,}+=*+", {"i:bearer", NULL}},
    {"url_password",
     "://[^\\s:/@\"'<>\\\\\\x00]*+:\\K(?:[^\\s/@\"'<>\\\\\\x00]|\\\\[^\\s\\x00])++(?=@)",
     {"://", NULL}},
    /* PWD (upper case) is the working directory variable, not a password */
    {"password", "(?:(?i:passw(?:or)?d)|[Pp]wd)" SEP VALUE, {"i:passw", "pwd", "Pwd", NULL}},
    {"generic_secret",
     "(?i:api[_-]?key|secret(?:[_-]?key)?|(?:access|auth|refresh)[_-]?token)" SEP VALUE,
     {"i:api_key", "i:api-key", "i:apikey", "i:secret", "i:token", NULL}},
};
#define N_DEFAULTS (sizeof(DEFAULTS) / sizeof(DEFAULTS[0]))

/* ---- the redactor ---- */

typedef struct rule {
  char name[COL_REDACT_NAME_MAX + 1];
  char repl[COL_REDACT_NAME_MAX + 16]; /* "[REDACTED:name]" */
  size_t repl_len;
  pcre2_code *re;  /* owned */
  bool anchored;   /* runs only when one of its anchors occurs */
  bool pem;        /* the default private_key rule: continues over lines */
  uint32_t anchor_bits; /* anchors belonging to this rule */
  uint64_t hits;   /* spans masked */
} rule;

/* An anchor is tested by its first (up to) 4 bytes in one 32-bit compare:
 * ((text | fold) & mask) == want; fold lower-cases ASCII letters of a
 * caseless anchor (and may let a non-letter through: the regex decides). */
typedef struct anchor {
  uint32_t want, mask, fold;
  unsigned rule;
} anchor;

struct col_redactor {
  rule rules[COL_REDACT_MAX_RULES];
  size_t n;
  anchor anchors[MAX_ANCHORS];
  size_t n_anchors;
  uint32_t at[3][256];      /* at[k][b]: anchors whose byte k may be b (both cases if caseless) */
  uint8_t pair[8192];       /* bit fold(b0) | fold(b1) << 8: bytes 0-1 or 1-2 of some anchor */
  uint64_t always;          /* rules without anchors (user rules) */
  int pem_rule;             /* index of the private_key default, -1 = none */
  uint64_t last_cand;       /* rules the last redact_into found candidates */
  size_t pem_active;        /* pem_keys in use */
  pcre2_match_data *md;     /* owned, 1 pair is enough: only group 0 is used */
  pcre2_match_context *mctx; /* owned */
  pcre2_jit_stack *jit;     /* owned */
  cairn_buf tmp[2];         /* rule-to-rule ping-pong */
  cairn_buf text;           /* result of col__redact_text */
  cairn_buf msg, hexmsg;    /* a record's masked message, then its hex fields */
  cairn_buf dec, hexout;    /* one decoded hex value and its masked hex */
  cairn_buf attrvals;       /* masked attr values of one record */
  col_attr *attrs;          /* owned, cap_attrs */
  size_t cap_attrs;
  col_rec rec;
  char count_str[24];
  char rules_str[COL_REDACT_MAX_RULES * (COL_REDACT_NAME_MAX + 1) + 1];
  uint64_t rec_rules;       /* rules that masked something in the current record */
  uint64_t pem_keys[PEM_STREAMS]; /* streams inside a private key block (0 = free) */
  uint32_t pem_lines[PEM_STREAMS];
  size_t pem_next;
  uint64_t records, errors;
};

static bool name_ok(const char *s, size_t n) {
  if (n == 0 || n > COL_REDACT_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!isalnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

static int find_rule(const col_redactor *rd, const char *name) {
  for (size_t i = 0; i < rd->n; i++)
    if (strcmp(rd->rules[i].name, name) == 0) return (int)i;
  return -1;
}

/* Compile pattern into r (named name for errors); a pattern in UTF mode
 * ((*UTF)) is compiled to tolerate invalid UTF-8 in records. */
static cairn_err compile(rule *r, const char *pattern, const char *what, char *errbuf,
                         size_t errlen) {
  int code;
  PCRE2_SIZE off;
  uint32_t opts = 0;
  for (int pass = 0; pass < 2; pass++) {
    r->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &code, &off, NULL);
    if (!r->re) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(code, msg, sizeof(msg));
      snprintf(errbuf, errlen, "%s: invalid regex at offset %zu: %s", what, (size_t)off,
               (const char *)msg);
      return CAIRN_E_CONFIG;
    }
    uint32_t all = 0;
    (void)pcre2_pattern_info(r->re, PCRE2_INFO_ALLOPTIONS, &all);
    if (!(all & PCRE2_UTF) || (opts & PCRE2_MATCH_INVALID_UTF)) break;
    pcre2_code_free(r->re);
    r->re = NULL;
    opts |= PCRE2_MATCH_INVALID_UTF;
  }
  (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE); /* the interpreter runs otherwise */
  return CAIRN_OK;
}

static void set_name(rule *r, const char *name, size_t n) {
  memcpy(r->name, name, n);
  r->name[n] = '\0';
  memcpy(r->repl, "[REDACTED:", 10);
  memcpy(r->repl + 10, name, n);
  r->repl[10 + n] = ']';
  r->repl[11 + n] = '\0';
  r->repl_len = 11 + n;
}

static void index_anchors(col_redactor *rd) {
  memset(rd->at, 0, sizeof(rd->at));
  memset(rd->pair, 0, sizeof(rd->pair));
  rd->n_anchors = 0;
  rd->always = 0;
  for (size_t i = 0; i < rd->n; i++) {
    rule *r = &rd->rules[i];
    r->anchor_bits = 0;
    int d = -1;
    for (size_t k = 0; r->anchored && k < N_DEFAULTS; k++)
      if (strcmp(DEFAULTS[k].name, r->name) == 0) d = (int)k;
    if (d < 0) {
      r->anchored = false;
      rd->always |= 1ull << i;
      continue;
    }
    for (const char *const *a = DEFAULTS[d].anchors; *a && rd->n_anchors < MAX_ANCHORS; a++) {
      anchor *an = &rd->anchors[rd->n_anchors];
      bool ci = strncmp(*a, "i:", 2) == 0;
      const char *lit = ci ? *a + 2 : *a;
      size_t len = strlen(lit) < 4 ? strlen(lit) : 4;
      uint8_t w[4] = {0}, m[4] = {0}, f[4] = {0};
      for (size_t k = 0; k < len && k < sizeof w; k++) { /* bound restated for gcc -O3 */
        w[k] = (uint8_t)lit[k];
        m[k] = 0xff;
        f[k] = ci ? 0x20 : 0;
      }
      memcpy(&an->want, w, 4);
      memcpy(&an->mask, m, 4);
      memcpy(&an->fold, f, 4);
      an->want = (an->want | an->fold) & an->mask;
      an->rule = (unsigned)i;
      uint32_t bit = 1u << rd->n_anchors;
      for (size_t k = 0; k < 3; k++) { /* every anchor has at least 3 bytes */
        unsigned char c = (unsigned char)lit[k];
        rd->at[k][c] |= bit;
        if (ci) rd->at[k][toupper(c)] |= bit;
      }
      for (size_t k = 0; k < 2; k++) {
        unsigned idx = ((unsigned char)lit[k] | (unsigned)(unsigned char)lit[k + 1] << 8) | 0x2020u;
        rd->pair[idx >> 3] |= (uint8_t)(1u << (idx & 7));
      }
      r->anchor_bits |= bit;
      rd->n_anchors++;
    }
  }
}

cairn_err col__redactor_new(bool defaults, char *const *specs, size_t n, col_redactor **out,
                            char *errbuf, size_t errlen) {
  *out = NULL;
  col_redactor *rd = calloc(1, sizeof(*rd));
  if (!rd) return CAIRN_E_NOMEM;
  cairn_err err = CAIRN_OK;
  rd->pem_rule = -1;
  for (size_t i = 0; i < 2; i++) cairn_buf_init(&rd->tmp[i]);
  cairn_buf_init(&rd->text);
  cairn_buf_init(&rd->msg);
  cairn_buf_init(&rd->hexmsg);
  cairn_buf_init(&rd->dec);
  cairn_buf_init(&rd->hexout);
  cairn_buf_init(&rd->attrvals);
  if (defaults) {
    for (size_t i = 0; i < N_DEFAULTS; i++) {
      rule *r = &rd->rules[rd->n++];
      set_name(r, DEFAULTS[i].name, strlen(DEFAULTS[i].name));
      r->anchored = true;
      r->pem = i == 0;
    }
  }
  /* user specs: replace or disable defaults by name, append the rest */
  bool disabled[N_DEFAULTS] = {false};
  bool user[COL_REDACT_MAX_RULES] = {false};
  const char *pattern[COL_REDACT_MAX_RULES] = {NULL};
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(specs[i], '=');
    size_t nlen = eq ? (size_t)(eq - specs[i]) : 0;
    if (!eq || !name_ok(specs[i], nlen)) {
      snprintf(errbuf, errlen,
               "--redact %s: expected NAME=REGEX with NAME of 1..%d letters, digits, '_', "
               "'-' or '.'",
               specs[i], COL_REDACT_NAME_MAX);
      err = CAIRN_E_CONFIG;
      goto out_free;
    }
    char name[COL_REDACT_NAME_MAX + 1];
    memcpy(name, specs[i], nlen);
    name[nlen] = '\0';
    int d = -1;
    for (size_t k = 0; k < N_DEFAULTS; k++)
      if (strcmp(DEFAULTS[k].name, name) == 0) d = (int)k;
    int at = find_rule(rd, name);
    if (at >= 0 && (user[at] || (d >= 0 && disabled[d]))) {
      snprintf(errbuf, errlen, "--redact %s: rule '%s' is given twice", specs[i], name);
      err = CAIRN_E_CONFIG;
      goto out_free;
    }
    if (!eq[1]) { /* "NAME=": disable a default */
      if (d < 0) {
        snprintf(errbuf, errlen,
                 "--redact %s: an empty REGEX disables a default rule, and '%s' is none (%s)",
                 specs[i], name, COL_REDACT_DEFAULTS);
        err = CAIRN_E_CONFIG;
        goto out_free;
      }
      disabled[d] = true;
      continue;
    }
    if (at < 0) {
      if (rd->n == COL_REDACT_MAX_RULES) {
        snprintf(errbuf, errlen, "--redact %s: too many rules (at most %d, defaults included)",
                 specs[i], COL_REDACT_MAX_RULES);
        err = CAIRN_E_CONFIG;
        goto out_free;
      }
      at = (int)rd->n++;
      set_name(&rd->rules[at], name, nlen);
    }
    rd->rules[at].anchored = false;
    rd->rules[at].pem = false;
    user[at] = true;
    pattern[at] = eq + 1;
  }
  /* drop disabled defaults, compile the rest */
  size_t w = 0;
  for (size_t i = 0; i < rd->n; i++) {
    int d = -1;
    for (size_t k = 0; k < N_DEFAULTS; k++)
      if (strcmp(DEFAULTS[k].name, rd->rules[i].name) == 0) d = (int)k;
    if (!user[i] && d >= 0 && disabled[d]) continue;
    rd->rules[w] = rd->rules[i];
    user[w] = user[i];
    pattern[w] = user[i] ? pattern[i] : DEFAULTS[d].pattern;
    w++;
  }
  rd->n = w;
  for (size_t i = 0; i < rd->n; i++) {
    char what[COL_REDACT_NAME_MAX + 96];
    if (user[i]) {
      snprintf(what, sizeof(what), "--redact %s=%.60s%s", rd->rules[i].name, pattern[i],
               strlen(pattern[i]) > 60 ? "..." : "");
    } else {
      snprintf(what, sizeof(what), "internal: default redaction rule %s", rd->rules[i].name);
    }
    err = compile(&rd->rules[i], pattern[i], what, errbuf, errlen);
    if (err != CAIRN_OK) goto out_free;
    if (rd->rules[i].pem) rd->pem_rule = (int)i;
  }
  if (rd->n == 0) goto out_free; /* err is CAIRN_OK: redaction off */
  index_anchors(rd);
  rd->md = pcre2_match_data_create(1, NULL);
  rd->mctx = pcre2_match_context_create(NULL);
  rd->jit = pcre2_jit_stack_create(32u << 10, JIT_STACK_MAX, NULL);
  if (!rd->md || !rd->mctx || !rd->jit) {
    err = CAIRN_E_NOMEM;
    goto out_free;
  }
  pcre2_jit_stack_assign(rd->mctx, NULL, rd->jit);
  *out = rd;
  return CAIRN_OK;
out_free:
  col__redactor_free(rd);
  return err;
}

void col__redactor_free(col_redactor *rd) {
  if (!rd) return;
  for (size_t i = 0; i < rd->n; i++) pcre2_code_free(rd->rules[i].re);
  pcre2_match_data_free(rd->md);
  pcre2_match_context_free(rd->mctx);
  pcre2_jit_stack_free(rd->jit);
  for (size_t i = 0; i < 2; i++) cairn_buf_fini(&rd->tmp[i]);
  cairn_buf_fini(&rd->text);
  cairn_buf_fini(&rd->msg);
  cairn_buf_fini(&rd->hexmsg);
  cairn_buf_fini(&rd->dec);
  cairn_buf_fini(&rd->hexout);
  cairn_buf_fini(&rd->attrvals);
  free(rd->attrs);
  free(rd);
}

/* ---- matching ---- */

/* Anchors whose first 4 bytes match at s[i] among m (which passed the
 * 3-byte tables); marks their rules in *found and drops them from *live. */
static void confirm(const col_redactor *rd, const uint8_t *s, size_t n, size_t i, uint32_t m,
                    uint64_t *found, uint32_t *live) {
  uint32_t w = 0;
  if (n - i >= 4) {
    memcpy(&w, s + i, 4);
  } else {
    memcpy(&w, s + i, n - i); /* zero bytes past the end match no anchor */
  }
  while (m) {
    const anchor *an = &rd->anchors[__builtin_ctz(m)];
    m &= m - 1;
    if (((w | an->fold) & an->mask) == an->want) {
      *found |= 1ull << an->rule;
      *live &= ~rd->rules[an->rule].anchor_bits;
      m &= *live;
    }
  }
}

/* Rules worth running on s[0..n): those whose anchor (its first 4 bytes)
 * occurs, and user rules. An anchor starting at p puts its bytes 0-1 (p
 * even) or 1-2 (p odd) at an even position, so only even positions are
 * looked up in the case-folded pair bitset; a hit checks the two starts it
 * stands for with the exact per-byte tables. */
static bool pair_hit(const col_redactor *rd, unsigned idx) {
  return (rd->pair[idx >> 3] >> (idx & 7)) & 1;
}

static void check_starts(const col_redactor *rd, const uint8_t *s, size_t n, size_t j,
                         uint64_t *found, uint32_t *live) {
  for (size_t p = j ? j - 1 : 0; p <= j && p + 3 <= n; p++) {
    uint32_t m = rd->at[0][s[p]] & rd->at[1][s[p + 1]] & rd->at[2][s[p + 2]] & *live;
    if (m) confirm(rd, s, n, p, m, found, live);
  }
}

static uint64_t candidates(const col_redactor *rd, const uint8_t *s, size_t n) {
  uint64_t found = rd->always;
  uint32_t live = rd->n_anchors == 32 ? ~0u : (1u << rd->n_anchors) - 1;
  for (size_t j = 0; j + 1 < n && live; j += 2) {
    unsigned idx = (s[j] | (unsigned)s[j + 1] << 8) | 0x2020u;
    if (pair_hit(rd, idx)) check_starts(rd, s, n, j, &found, &live);
  }
  return found;
}

static bool is_cont(uint8_t c) { return (c & 0xC0) == 0x80; }

/* Widen [*a, *b) to whole UTF-8 characters and keep a trailing backslash
 * escape out of it (an odd run of backslashes at its end is cut by one). */
static void fix_span(const uint8_t *s, size_t n, size_t floor, size_t *a, size_t *b) {
  for (int k = 0; k < 3 && *a > floor && is_cont(s[*a]); k++) (*a)--;
  for (int k = 0; k < 3 && *b < n && is_cont(s[*b]); k++) (*b)++;
  size_t bs = 0;
  while (bs < *b - *a && s[*b - 1 - bs] == '\\') bs++;
  if (bs & 1) (*b)--;
}

/* Append every masked match of rule ri over s[0..n) to dst (reset first).
 * Returns the spans masked (0: dst is untouched beyond the reset), or -1
 * for CAIRN_E_NOMEM. */
static long apply_rule(col_redactor *rd, size_t ri, const uint8_t *s, size_t n, cairn_buf *dst) {
  rule *r = &rd->rules[ri];
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rd->md);
  size_t off = 0, prev = 0;
  long hits = 0;
  cairn_buf_reset(dst);
  while (off <= n) {
    int rc = pcre2_match(r->re, s, n, off, 0, rd->md, rd->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) { /* limits: fail closed, the whole text goes */
      rd->errors++;
      cairn_buf_reset(dst);
      if (cairn_buf_append(dst, r->repl, r->repl_len) != CAIRN_OK) return -1;
      return 1;
    }
    size_t a = ov[0], b = ov[1], end = ov[1];
    if (a > b) a = b; /* \K after the end cannot mask anything */
    if (a < prev) a = prev;
    if (b > a) fix_span(s, n, prev, &a, &b);
    if (b > a) {
      if (cairn_buf_append(dst, s + prev, a - prev) != CAIRN_OK ||
          cairn_buf_append(dst, r->repl, r->repl_len) != CAIRN_OK)
        return -1;
      prev = b;
      hits++;
    }
    off = end > off ? end : off + 1; /* an empty match moves on one character */
    if (b > off) off = b;
    while (off < n && is_cont(s[off])) off++;
  }
  if (hits && cairn_buf_append(dst, s + prev, n - prev) != CAIRN_OK) return -1;
  return hits;
}

static void count(col_redactor *rd, size_t ri, uint32_t k) {
  rd->rules[ri].hits += k;
  rd->rec_rules |= 1ull << ri;
}

/* Run the candidate rules one after another over s[0..n). *count = spans;
 * when > 0 the result is copied into out (reset first). */
static cairn_err redact_into(col_redactor *rd, const uint8_t *s, size_t n, cairn_buf *out,
                             uint32_t *spans) {
  *spans = 0;
  uint64_t cand = candidates(rd, s, n);
  rd->last_cand = cand;
  if (!cand) return CAIRN_OK;
  const uint8_t *cur = s;
  size_t cur_len = n;
  int which = 0;
  for (size_t i = 0; i < rd->n; i++) {
    if (!(cand & (1ull << i))) continue;
    cairn_buf *dst = &rd->tmp[which];
    long h = apply_rule(rd, i, cur, cur_len, dst);
    if (h < 0) return CAIRN_E_NOMEM;
    if (h == 0) continue;
    count(rd, i, (uint32_t)h);
    *spans += (uint32_t)h;
    cur = dst->ptr;
    cur_len = dst->len;
    which ^= 1;
  }
  if (*spans == 0) return CAIRN_OK;
  cairn_buf_reset(out);
  return cairn_buf_append(out, cur, cur_len);
}

cairn_err col__redact_text(col_redactor *rd, const uint8_t *s, size_t n, const uint8_t **res,
                           size_t *res_len, uint32_t *spans) {
  rd->rec_rules = 0;
  cairn_err err = redact_into(rd, s, n, &rd->text, spans);
  if (err != CAIRN_OK) return err;
  *res = *spans ? rd->text.ptr : s;
  *res_len = *spans ? rd->text.len : n;
  if (*spans) rd->records++;
  return CAIRN_OK;
}

/* ---- private keys printed line by line (container records) ---- */

static int pem_slot(const col_redactor *rd, uint64_t key) {
  for (int i = 0; i < PEM_STREAMS; i++)
    if (rd->pem_keys[i] == key) return i;
  return -1;
}

/* A line of a PEM body: base64 only, or an RFC 1421 header (Proc-Type:, DEK-Info:). */
static bool pem_body_line(const uint8_t *s, size_t n) {
  while (n && (s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
  if ((n >= 10 && memcmp(s, "Proc-Type:", 10) == 0) || (n >= 9 && memcmp(s, "DEK-Info:", 9) == 0))
    return true;
  for (size_t i = 0; i < n; i++)
    if (!isalnum(s[i]) && s[i] != '+' && s[i] != '/' && s[i] != '=') return false;
  return true;
}

static const uint8_t *find(const uint8_t *s, size_t n, const char *lit) {
  return memmem(s, n, lit, strlen(lit));
}

/* Continue a private key block that stream key is inside of: mask a body
 * line whole, or an END line through its marker. *s and *n are the message
 * before the rules run, updated to what they should see. */
static cairn_err pem_lines(col_redactor *rd, uint64_t key, const uint8_t **s, size_t *n,
                           uint32_t *spans) {
  rule *r = &rd->rules[rd->pem_rule];
  int slot = rd->pem_active ? pem_slot(rd, key) : -1;
  if (slot >= 0) {
    const uint8_t *end = find(*s, *n, "-----END ");
    const uint8_t *lab = end ? find(end, (size_t)(*s + *n - end), "PRIVATE KEY") : NULL;
    const uint8_t *dash = lab ? find(lab, (size_t)(*s + *n - lab), "-----") : NULL;
    if (dash) { /* the END line: mask through its marker */
      size_t cut = (size_t)(dash + 5 - *s);
      cairn_buf_reset(&rd->msg);
      if (cairn_buf_append(&rd->msg, r->repl, r->repl_len) != CAIRN_OK ||
          cairn_buf_append(&rd->msg, *s + cut, *n - cut) != CAIRN_OK)
        return CAIRN_E_NOMEM;
      rd->pem_keys[slot] = 0;
      rd->pem_active--;
      count(rd, (size_t)rd->pem_rule, 1);
      (*spans)++;
      *s = rd->msg.ptr;
      *n = rd->msg.len;
      return CAIRN_OK;
    }
    if (pem_body_line(*s, *n) && rd->pem_lines[slot]++ < PEM_MAX_LINES) {
      if (*n == 0) return CAIRN_OK;
      cairn_buf_reset(&rd->msg);
      if (cairn_buf_append(&rd->msg, r->repl, r->repl_len) != CAIRN_OK) return CAIRN_E_NOMEM;
      count(rd, (size_t)rd->pem_rule, 1);
      (*spans)++;
      *s = rd->msg.ptr;
      *n = rd->msg.len;
      return CAIRN_OK;
    }
    rd->pem_keys[slot] = 0; /* something else: the block is over */
    rd->pem_active--;
  }
  return CAIRN_OK;
}

/* After the rules: does the message open a key block it does not close? */
static void pem_watch(col_redactor *rd, uint64_t key, const uint8_t *orig, size_t n) {
  const uint8_t *begin = find(orig, n, "-----BEGIN ");
  if (!begin) return;
  const uint8_t *last = begin;
  for (const uint8_t *p = begin; p; p = find(p + 1, (size_t)(orig + n - p - 1), "-----BEGIN "))
    last = p;
  size_t rest = (size_t)(orig + n - last);
  const uint8_t *head_end = find(last, rest < 64 ? rest : 64, "PRIVATE KEY");
  if (!head_end || find(last, rest, "-----END ")) return;
  const uint8_t *dash = find(head_end, (size_t)(orig + n - head_end), "-----");
  if (!dash || !pem_body_line(dash + 5, (size_t)(orig + n - dash - 5))) return;
  int slot = pem_slot(rd, key);
  if (slot < 0) {
    slot = (int)(rd->pem_next++ % PEM_STREAMS);
    if (!rd->pem_keys[slot]) rd->pem_active++;
    rd->pem_keys[slot] = key;
  }
  rd->pem_lines[slot] = 0;
}

/* ---- auditd hex-encoded values ---- */

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Mask inside every KEY=HEX value of s[0..n) (auditd writes a value with
 * spaces, quotes or NULs, such as proctitle, as upper-case hex): decode,
 * redact, re-encode. Result in rd->hexmsg when *spans > 0. */
static cairn_err redact_hex(col_redactor *rd, const uint8_t *s, size_t n, uint32_t *spans) {
  static const char HX[] = "0123456789ABCDEF";
  size_t prev = 0;
  *spans = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '=') continue;
    size_t j = i + 1;
    while (j < n && hexval(s[j]) >= 0) j++;
    size_t len = j - i - 1;
    if (len < 16 || (len & 1) || (j < n && s[j] != ' ' && s[j] != '\n' && s[j] != '\'' &&
                                  s[j] != 0x1d)) {
      i = j - 1;
      continue;
    }
    cairn_buf_reset(&rd->dec);
    if (cairn_buf_reserve(&rd->dec, len / 2) != CAIRN_OK) return CAIRN_E_NOMEM;
    for (size_t k = i + 1; k < j; k += 2)
      rd->dec.ptr[rd->dec.len++] = (uint8_t)(hexval(s[k]) << 4 | hexval(s[k + 1]));
    uint32_t h;
    cairn_err err = redact_into(rd, rd->dec.ptr, rd->dec.len, &rd->hexout, &h);
    if (err != CAIRN_OK) return err;
    if (h) {
      if (*spans == 0) cairn_buf_reset(&rd->hexmsg);
      if (cairn_buf_append(&rd->hexmsg, s + prev, i + 1 - prev) != CAIRN_OK ||
          cairn_buf_reserve(&rd->hexmsg, rd->hexout.len * 2) != CAIRN_OK)
        return CAIRN_E_NOMEM;
      for (size_t k = 0; k < rd->hexout.len; k++) {
        rd->hexmsg.ptr[rd->hexmsg.len++] = (uint8_t)HX[rd->hexout.ptr[k] >> 4];
        rd->hexmsg.ptr[rd->hexmsg.len++] = (uint8_t)HX[rd->hexout.ptr[k] & 15];
      }
      prev = j;
      *spans += h;
    }
    i = j - 1;
  }
  if (*spans && cairn_buf_append(&rd->hexmsg, s + prev, n - prev) != CAIRN_OK)
    return CAIRN_E_NOMEM;
  return CAIRN_OK;
}

/* ---- records ---- */

cairn_err col__redact_rec(col_redactor *rd, uint64_t stream_key, const col_rec *in,
                          const col_rec **out) {
  *out = in;
  rd->rec_rules = 0;
  uint32_t total = 0, h = 0;
  const uint8_t *msg = in->msg;
  size_t msg_len = in->msg_len;
  bool container = in->source != CAIRN__SOURCE__SOURCE_AUDIT &&
                   in->source != CAIRN__SOURCE__SOURCE_K8S_AUDIT;
  if (container && rd->pem_rule >= 0) {
    cairn_err err = pem_lines(rd, stream_key, &msg, &msg_len, &total);
    if (err != CAIRN_OK) return err;
  }
  bool pem_masked = total > 0;
  if (!pem_masked || msg_len > rd->rules[rd->pem_rule].repl_len) {
    /* rd->msg may hold msg: redact from a copy in tmp */
    const uint8_t *src = msg;
    if (pem_masked) {
      cairn_buf_reset(&rd->hexmsg);
      if (cairn_buf_append(&rd->hexmsg, msg, msg_len) != CAIRN_OK) return CAIRN_E_NOMEM;
      src = rd->hexmsg.ptr;
    }
    cairn_err err = redact_into(rd, src, msg_len, &rd->msg, &h);
    if (err != CAIRN_OK) return err;
    if (h) {
      msg = rd->msg.ptr;
      msg_len = rd->msg.len;
      total += h;
    }
  }
  /* only when the BEGIN anchor was seen in the message (rd->last_cand) */
  if (container && rd->pem_rule >= 0 && !pem_masked && (rd->last_cand & (1ull << rd->pem_rule)))
    pem_watch(rd, stream_key, in->msg, in->msg_len);
  if (in->source == CAIRN__SOURCE__SOURCE_AUDIT) {
    cairn_err err = redact_hex(rd, msg, msg_len, &h);
    if (err != CAIRN_OK) return err;
    if (h) {
      msg = rd->hexmsg.ptr;
      msg_len = rd->hexmsg.len;
      total += h;
    }
  }
  /* audit attrs that carry command lines */
  size_t masked_at[8];
  size_t masked_off[8], masked_len[8];
  size_t n_masked = 0;
  if (in->source == CAIRN__SOURCE__SOURCE_AUDIT) {
    cairn_buf_reset(&rd->attrvals);
    for (size_t i = 0; i < in->n_attrs && n_masked < 8; i++) {
      const col_attr *a = &in->attrs[i];
      if (strcmp(a->key, "proctitle") != 0 && strcmp(a->key, "cmd") != 0) continue;
      cairn_err err = redact_into(rd, a->val, a->len, &rd->dec, &h);
      if (err != CAIRN_OK) return err;
      if (!h) continue;
      masked_at[n_masked] = i;
      masked_off[n_masked] = rd->attrvals.len;
      masked_len[n_masked] = rd->dec.len;
      if (cairn_buf_append(&rd->attrvals, rd->dec.ptr, rd->dec.len) != CAIRN_OK)
        return CAIRN_E_NOMEM;
      n_masked++;
      total += h;
    }
  }
  if (total == 0) return CAIRN_OK;
  size_t need = in->n_attrs + 2;
  if (need > rd->cap_attrs) {
    col_attr *na = realloc(rd->attrs, need * sizeof(*na));
    if (!na) return CAIRN_E_NOMEM;
    rd->attrs = na;
    rd->cap_attrs = need;
  }
  if (in->n_attrs) memcpy(rd->attrs, in->attrs, in->n_attrs * sizeof(*rd->attrs));
  for (size_t k = 0; k < n_masked; k++) {
    rd->attrs[masked_at[k]].val = rd->attrvals.ptr + masked_off[k];
    rd->attrs[masked_at[k]].len = masked_len[k];
  }
  snprintf(rd->count_str, sizeof(rd->count_str), "%u", (unsigned)total);
  size_t w = 0;
  for (size_t i = 0; i < rd->n; i++) {
    if (!(rd->rec_rules & (1ull << i))) continue;
    w += (size_t)snprintf(rd->rules_str + w, sizeof(rd->rules_str) - w, "%s%s", w ? "," : "",
                          rd->rules[i].name);
  }
  rd->attrs[in->n_attrs] = (col_attr){"redactions", (const uint8_t *)rd->count_str,
                                      strlen(rd->count_str)};
  rd->attrs[in->n_attrs + 1] = (col_attr){"redaction_rules", (const uint8_t *)rd->rules_str, w};
  rd->rec = *in;
  rd->rec.msg = msg;
  rd->rec.msg_len = msg_len;
  rd->rec.attrs = rd->attrs;
  rd->rec.n_attrs = in->n_attrs + 2;
  rd->records++;
  *out = &rd->rec;
  return CAIRN_OK;
}

/* ---- counters ---- */

size_t col__redactor_rules(const col_redactor *rd) { return rd->n; }
const char *col__redactor_rule_name(const col_redactor *rd, size_t i) { return rd->rules[i].name; }
uint64_t col__redactor_rule_hits(const col_redactor *rd, size_t i) { return rd->rules[i].hits; }
uint64_t col__redactor_records(const col_redactor *rd) { return rd->records; }
uint64_t col__redactor_errors(const col_redactor *rd) { return rd->errors; }
