/* tests/collector/redact_test.c: secret masking (collector/redact.c): every
 * default rule with texts it must and must not mask, UTF-8 and JSON around
 * matches, counts and the redaction attrs, user rules (add, replace,
 * disable, defaults off), config errors naming the rule and PCRE2's message,
 * auditd hex values and attrs, Kubernetes audit JSON, private keys printed
 * line by line, the batch hook and the metrics families.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "collector/internal.h"
#include "collector/internal_parse.h"
#include "collector/redact.h"

static col_redactor *defaults(void) {
  col_redactor *rd = NULL;
  char err[256] = "";
  assert_int_equal(col__redactor_new(true, NULL, 0, &rd, err, sizeof(err)), CAIRN_OK);
  assert_non_null(rd);
  return rd;
}

/* Redact in with rd; returns a NUL-terminated copy of the result. */
static char *red(col_redactor *rd, const char *in, uint32_t *spans) {
  const uint8_t *res;
  size_t len;
  uint32_t n;
  assert_int_equal(col__redact_text(rd, (const uint8_t *)in, strlen(in), &res, &len, &n), CAIRN_OK);
  if (spans) *spans = n;
  if (n == 0) assert_ptr_equal(res, (const uint8_t *)in);
  assert_true(col__utf8_valid(res, len) || !col__utf8_valid((const uint8_t *)in, strlen(in)));
  char *s = malloc(len + 1);
  memcpy(s, res, len);
  s[len] = '\0';
  return s;
}

static void expect(col_redactor *rd, const char *in, const char *want) {
  char *got = red(rd, in, NULL);
  if (strcmp(got, want) != 0) {
    print_error("in:   %s\nwant: %s\ngot:  %s\n", in, want, got);
    free(got);
    fail();
  }
  free(got);
}

static void unchanged(col_redactor *rd, const char *in) {
  uint32_t n;
  char *got = red(rd, in, &n);
  if (n != 0) print_error("masked although it should not: %s -> %s\n", in, got);
  free(got);
  assert_int_equal(n, 0);
}

/* ---- default rules ---- */

static void aws_access_key_ids_are_masked(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  expect(rd, "key=AKIAIOSFODNN7EXAMPLE done", "key=[REDACTED:aws_access_key] done");
  expect(rd, "{\"AccessKeyId\":\"ASIAY34FZKBOKMUTVV7A\"}",
         "{\"AccessKeyId\":\"[REDACTED:aws_access_key]\"}");
  unchanged(rd, "key=AKIAIOSFODNN7EXAMP done");   /* 15 after the prefix */
  unchanged(rd, "XAKIAIOSFODNN7EXAMPLE");          /* inside a word */
  unchanged(rd, "akiaiosfodnn7example");           /* lower case */
  unchanged(rd, "AIDAIOSFODNN7EXAMPLE is a user id");
  col__redactor_free(rd);
}

static void aws_secret_keys_after_their_name_are_masked(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  expect(rd, "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY rest",
         "aws_secret_access_key=[REDACTED:aws_secret_key] rest");
  expect(rd, "AWS_SECRET_ACCESS_KEY: \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"",
         "AWS_SECRET_ACCESS_KEY: \"[REDACTED:aws_secret_key]\"");
  expect(rd, "{\"SecretAccessKey\":\"wJalrXUtnFEMI/K7MDENG\"}",
         "{\"SecretAccessKey\":\"[REDACTED:aws_secret_key]\"}");
  unchanged(rd, "aws_secret_access_key is not set");
  unchanged(rd, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"); /* no name: cannot be told apart */
  col__redactor_free(rd);
}

static void bearer_tokens_are_masked(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  expect(rd, "GET / Authorization: Bearer abcdef0123456789.xyz~+/ ok",
         "GET / Authorization: Bearer [REDACTED:bearer_token] ok");
  expect(rd, "authorization: bearer 0123456789abcdef==", "authorization: bearer [REDACTED:bearer_token]");
  unchanged(rd, "WWW-Authenticate: Bearer realm=\"api\"");
  unchanged(rd, "bearer token missing");
  col__redactor_free(rd);
}

static void jwts_are_masked_once(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  const char *jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
  char in[512], want[512];
  snprintf(in, sizeof(in), "auth ok token=%s user=42", jwt);
  snprintf(want, sizeof(want), "auth ok token=[REDACTED:jwt] user=42");
  expect(rd, in, want);
  /* after Bearer: the jwt rule runs first; the bearer rule finds nothing left */
  snprintf(in, sizeof(in), "Authorization: Bearer %s", jwt);
  uint32_t n;
  char *got = red(rd, in, &n);
  assert_string_equal(got, "Authorization: Bearer [REDACTED:jwt]");
  assert_int_equal(n, 1);
  free(got);
  unchanged(rd, "eyJhbGciOiJIUzI1NiJ9 alone");
  unchanged(rd, "eyJhbGciOiJIUzI1NiJ9.notjson.sig");
  col__redactor_free(rd);
}

static void passwords_in_urls_are_masked(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  expect(rd, "connecting to postgres://app:s3cr3t@db:5432/orders",
         "connecting to postgres://app:[REDACTED:url_password]@db:5432/orders");
  expect(rd, "redis://:pa:ss@cache:6379", "redis://:[REDACTED:url_password]@cache:6379");
  unchanged(rd, "GET http://api:8080/v1/users?mail=a@b.c");
  unchanged(rd, "mailto:someone@example.com");
  unchanged(rd, "https://user@example.com/");
  col__redactor_free(rd);
}

static void password_pairs_are_masked(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  expect(rd, "login user=bob password=hunter2 ok", "login user=bob password=[REDACTED:password] ok");
  expect(rd, "passwd: hunter2", "passwd: [REDACTED:password]");
  expect(rd, "{\"password\":\"hun ter\\\"2\",\"user\":\"bob\"}",
         "{\"password\":\"[REDACTED:password]\",\"user\":\"bob\"}");
  expect(rd, "Server=db;Uid=sa;Pwd=Sup3r;Database=x", "Server=db;Uid=sa;Pwd=[REDACTED:password];Database=x");
  expect(rd, "?db_password=abc&next=1", "?db_password=[REDACTED:password]&next=1");
  expect(rd, "MYSQL_ROOT_PASSWORD='pa ss'", "MYSQL_ROOT_PASSWORD='[REDACTED:password]'");
  /* JSON inside a JSON string keeps its escaped quotes */
  expect(rd, "{\"log\":\"{\\\"password\\\":\\\"hunter2\\\"}\"}",
         "{\"log\":\"{\\\"password\\\":\\\"[REDACTED:password]\\\"}\"}");
  unchanged(rd, "PWD=/home/bob OLDPWD=/tmp");
  unchanged(rd, "Failed password for root from 10.0.0.1 port 22");
  unchanged(rd, "{\"password\":null,\"passwordless\":true}");
  unchanged(rd, "password=");
  col__redactor_free(rd);
}

static void private_key_blocks_are_masked(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  expect(rd,
         "{\"data\":\"-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA7x+/abc=\\nQ2xvdWQ=\\n"
         "-----END RSA PRIVATE KEY-----\\n\",\"kind\":\"Secret\"}",
         "{\"data\":\"[REDACTED:private_key]\\n\",\"kind\":\"Secret\"}");
  expect(rd, "k=-----BEGIN PRIVATE KEY----- MIIBVQ== -----END PRIVATE KEY----- tail",
         "k=[REDACTED:private_key] tail");
  expect(rd, "-----BEGIN OPENSSH PRIVATE KEY-----", "[REDACTED:private_key]");
  unchanged(rd, "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----");
  unchanged(rd, "-----BEGIN PUBLIC KEY-----");
  col__redactor_free(rd);
}

static void github_and_slack_tokens_are_masked(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  expect(rd, "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 used",
         "token [REDACTED:github_token] used");
  expect(rd, "GITHUB_TOKEN is ghs_0123456789abcdefghijABCDEFGHIJ012345",
         "GITHUB_TOKEN is [REDACTED:github_token]");
  expect(rd, "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
         "[REDACTED:github_token]");
  unchanged(rd, "branch ghp_short is fine");
  expect(rd, "slack xoxb-123456789012-abcdefGHIJK sent", "slack [REDACTED:slack_token] sent");
  expect(rd, "hook xoxp-1-2-3-abcdefabcdef", "hook [REDACTED:slack_token]");
  unchanged(rd, "xoxo hugs and xoxb-short");
  col__redactor_free(rd);
}

static void generic_api_keys_and_secrets_are_masked(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  expect(rd, "call api_key=abc123def&q=1", "call api_key=[REDACTED:generic_secret]&q=1");
  expect(rd, "X-ApiKey: 9f8e7d", "X-ApiKey: [REDACTED:generic_secret]");
  expect(rd, "client_secret=s3cr3t", "client_secret=[REDACTED:generic_secret]");
  expect(rd, "{\"access_token\": \"ya29.a0Af\"}", "{\"access_token\": \"[REDACTED:generic_secret]\"}");
  unchanged(rd, "secrets: 3 mounted");
  unchanged(rd, "{\"secret\":{\"name\":\"db\"}}"); /* an object, not a value */
  unchanged(rd, "the api is up; key rotation done");
  col__redactor_free(rd);
}

static void lines_without_secrets_come_back_as_they_were(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  unchanged(rd, "");
  unchanged(rd, "2024-01-15T10:23:45Z INFO request served path=/api/v1/pods status=200 dur=3ms");
  unchanged(rd, "\xff\xfe not utf-8 \x00 with a NUL");
  col__redactor_free(rd);
}

/* ---- UTF-8, counts ---- */

static void utf8_around_matches_stays_valid(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  expect(rd, "h\xc3\xa9llo password=p\xc3\xa4ssw\xc3\xb6rd \xc3\xbcnd \xe2\x82\xac",
         "h\xc3\xa9llo password=[REDACTED:password] \xc3\xbcnd \xe2\x82\xac");
  expect(rd, "\xe6\x97\xa5\xe6\x9c\xac AKIAIOSFODNN7EXAMPLE\xe6\x97\xa5",
         "\xe6\x97\xa5\xe6\x9c\xac [REDACTED:aws_access_key]\xe6\x97\xa5");
  col__redactor_free(rd);
  /* a byte-mode user rule that ends inside a character masks all of it */
  char *specs[] = {"cafe=caf."};
  char err[256];
  assert_int_equal(col__redactor_new(false, specs, 1, &rd, err, sizeof(err)), CAIRN_OK);
  expect(rd, "un caf\xc3\xa9 noir", "un [REDACTED:cafe] noir");
  expect(rd, "\xe2\x82\xac caf\xe2\x82\xac!", "\xe2\x82\xac [REDACTED:cafe]!");
  col__redactor_free(rd);
}

static void every_span_is_counted_per_rule(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  uint32_t n;
  char *got = red(rd, "a=AKIAIOSFODNN7EXAMPLE b=ASIAIOSFODNN7EXAMPLE password=x pwd=y", &n);
  assert_int_equal(n, 4);
  free(got);
  for (size_t i = 0; i < col__redactor_rules(rd); i++) {
    const char *name = col__redactor_rule_name(rd, i);
    uint64_t want = strcmp(name, "aws_access_key") == 0 || strcmp(name, "password") == 0 ? 2 : 0;
    assert_int_equal(col__redactor_rule_hits(rd, i), want);
  }
  assert_int_equal(col__redactor_records(rd), 1);
  assert_int_equal(col__redactor_errors(rd), 0);
  col__redactor_free(rd);
}

static const col_attr *attr(const col_rec *r, const char *key) {
  for (size_t i = 0; i < r->n_attrs; i++)
    if (strcmp(r->attrs[i].key, key) == 0) return &r->attrs[i];
  return NULL;
}

static void assert_attr(const col_rec *r, const char *key, const char *want) {
  const col_attr *a = attr(r, key);
  assert_non_null(a);
  assert_int_equal(a->len, strlen(want));
  assert_memory_equal(a->val, want, a->len);
}

static void records_gain_counts_and_rule_names_only(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  const char *msg = "db=postgres://u:pw1@h login password=pw2 key=AKIAIOSFODNN7EXAMPLE";
  col_rec in = {.time_ns = 17,
                .stream = CAIRN__LOG_STREAM__LOG_STREAM_STDOUT,
                .flags = CAIRN__RECORD_FLAG__RECORD_FLAG_TRUNCATED,
                .msg = (const uint8_t *)msg,
                .msg_len = strlen(msg),
                .full_len = 999,
                .fragments = 3,
                .first_line = 4,
                .last_line = 6,
                .end_offset = 1234,
                .attrs_json = "{\"tag\":\"x\"}",
                .source = CAIRN__SOURCE__SOURCE_CONTAINER};
  const col_rec *out;
  assert_int_equal(col__redact_rec(rd, 1, &in, &out), CAIRN_OK);
  assert_ptr_not_equal(out, &in);
  const char *want = "db=postgres://u:[REDACTED:url_password]@h login password=[REDACTED:password] "
                     "key=[REDACTED:aws_access_key]";
  assert_int_equal(out->msg_len, strlen(want));
  assert_memory_equal(out->msg, want, out->msg_len);
  assert_int_equal(out->n_attrs, 2);
  assert_attr(out, "redactions", "3");
  assert_attr(out, "redaction_rules", "aws_access_key,url_password,password");
  /* everything else is the record as it was */
  col_rec same = *out;
  same.msg = in.msg;
  same.msg_len = in.msg_len;
  same.attrs = in.attrs;
  same.n_attrs = in.n_attrs;
  assert_memory_equal(&same, &in, sizeof(in));
  /* nothing to mask: the record itself, no copy and no attrs */
  col_rec clean = in;
  clean.msg = (const uint8_t *)"all good";
  clean.msg_len = 8;
  assert_int_equal(col__redact_rec(rd, 1, &clean, &out), CAIRN_OK);
  assert_ptr_equal(out, &clean);
  assert_int_equal(col__redactor_records(rd), 1);
  col__redactor_free(rd);
}

/* ---- user rules and config ---- */

static void user_rules_add_replace_and_disable(void **state) {
  (void)state;
  char *specs[] = {"employee_id=EMP-[0-9]{6}", "password=pass:\\S+", "aws_access_key="};
  col_redactor *rd;
  char err[256] = "";
  assert_int_equal(col__redactor_new(true, specs, 3, &rd, err, sizeof(err)), CAIRN_OK);
  expect(rd, "hr EMP-123456 ok", "hr [REDACTED:employee_id] ok");
  expect(rd, "login pass:hunter2 x", "login [REDACTED:password] x"); /* replaced */
  unchanged(rd, "login password=hunter2");                          /* the default is gone */
  unchanged(rd, "key=AKIAIOSFODNN7EXAMPLE");                        /* disabled */
  expect(rd, "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "jwt [REDACTED:jwt]"); /* kept */
  /* a replaced default keeps its place in the order; the new rule runs last */
  const char *names[] = {"private_key", "jwt", "aws_secret_key", "github_token", "slack_token",
                         "bearer_token", "url_password", "password", "generic_secret",
                         "employee_id"};
  assert_int_equal(col__redactor_rules(rd), 10);
  for (size_t i = 0; i < 10; i++) assert_string_equal(col__redactor_rule_name(rd, i), names[i]);
  col__redactor_free(rd);

  char *only[] = {"ticket=TCK[0-9]+"};
  assert_int_equal(col__redactor_new(false, only, 1, &rd, err, sizeof(err)), CAIRN_OK);
  assert_int_equal(col__redactor_rules(rd), 1);
  expect(rd, "see TCK42 password=x", "see [REDACTED:ticket] password=x");
  col__redactor_free(rd);

  assert_int_equal(col__redactor_new(false, NULL, 0, &rd, err, sizeof(err)), CAIRN_OK);
  assert_null(rd); /* no rules: redaction off */
}

static void bad_specs_are_config_errors_naming_the_rule(void **state) {
  (void)state;
  struct {
    const char *spec, *want1, *want2;
  } cases[] = {
      {"broken=(ab", "--redact broken=(ab", "offset 3: missing closing parenthesis"},
      {"rep=a{2,1}", "--redact rep=a{2,1}", "offset"},
      {"noequals", "--redact noequals", "NAME=REGEX"},
      {"bad name=x", "--redact bad name=x", "NAME=REGEX"},
      {"unknown=", "'unknown' is none", "private_key"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *specs[] = {(char *)cases[i].spec};
    col_redactor *rd = (col_redactor *)1;
    char err[256] = "";
    assert_int_equal(col__redactor_new(true, specs, 1, &rd, err, sizeof(err)), CAIRN_E_CONFIG);
    assert_null(rd);
    if (!strstr(err, cases[i].want1) || !strstr(err, cases[i].want2)) {
      print_error("%s: error '%s' lacks '%s' / '%s'\n", cases[i].spec, err, cases[i].want1,
                  cases[i].want2);
      fail();
    }
  }
  char *twice[] = {"x=a", "x=b"};
  col_redactor *rd;
  char err[256] = "";
  assert_int_equal(col__redactor_new(true, twice, 2, &rd, err, sizeof(err)), CAIRN_E_CONFIG);
  assert_non_null(strstr(err, "'x' is given twice"));
}

static void config_load_compiles_rules_and_reports_bad_ones(void **state) {
  (void)state;
  char *base[] = {"cairn-collector", "--state", "/tmp/x", "--aggregator", "127.0.0.1:1",
                  "--tls-cert", "c", "--tls-key", "k", "--tls-ca", "a", "--node-name", "n1",
                  NULL, NULL, NULL, NULL};
  int argc = 13;
  col_config cfg;
  bool help, check;
  char err[512] = "";
  memset(&cfg, 0, sizeof(cfg));
  assert_int_equal(col_config_load(&cfg, argc, base, &help, &check, err, sizeof(err)), CAIRN_OK);
  assert_true(cfg.redact_defaults);
  assert_non_null(cfg.redact);
  assert_int_equal(col__redactor_rules(cfg.redact), 10);
  col_config_free(&cfg);

  base[13] = "--redact";
  base[14] = "order=ORD-\\d+";
  base[15] = "--redact-defaults=false";
  memset(&cfg, 0, sizeof(cfg));
  assert_int_equal(col_config_load(&cfg, 16, base, &help, &check, err, sizeof(err)), CAIRN_OK);
  assert_int_equal(col__redactor_rules(cfg.redact), 1);
  assert_string_equal(col__redactor_rule_name(cfg.redact, 0), "order");
  col_config_free(&cfg);

  base[14] = "order=ORD-(\\d+";
  memset(&cfg, 0, sizeof(cfg));
  assert_int_equal(col_config_load(&cfg, 16, base, &help, &check, err, sizeof(err)),
                   CAIRN_E_CONFIG);
  assert_non_null(strstr(err, "--redact order="));
  assert_non_null(strstr(err, "missing closing parenthesis"));
  assert_non_null(strstr(err, "offset 8"));
  col_config_free(&cfg);

  base[13] = "--redact-defaults=false";
  memset(&cfg, 0, sizeof(cfg));
  assert_int_equal(col_config_load(&cfg, 14, base, &help, &check, err, sizeof(err)), CAIRN_OK);
  assert_null(cfg.redact);
  col_config_free(&cfg);
}

static void failing_matches_mask_the_whole_text(void **state) {
  (void)state;
  char *specs[] = {"slow=(a+)+$"};
  col_redactor *rd;
  char err[256];
  assert_int_equal(col__redactor_new(false, specs, 1, &rd, err, sizeof(err)), CAIRN_OK);
  expect(rd, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "[REDACTED:slow]");
  assert_int_equal(col__redactor_errors(rd), 1);
  col__redactor_free(rd);
}

/* ---- sources ---- */

static void hex(const char *s, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02X", (unsigned char)s[i]);
}

static void audit_raw_lines_hex_values_and_command_attrs_are_masked(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  const char argv[] = "mysql\0-u\0root\0--password=hunter2";
  const char masked[] = "mysql\0-u\0root\0--password=[REDACTED:password]";
  char hx[256], hx_masked[256], msg[1024], want[1024];
  hex(argv, sizeof(argv) - 1, hx);
  hex(masked, sizeof(masked) - 1, hx_masked);
  snprintf(msg, sizeof(msg),
           "type=SYSCALL msg=audit(1.0:7): syscall=59 exe=\"/usr/bin/mysql\"\n"
           "type=PROCTITLE msg=audit(1.0:7): proctitle=%s",
           hx);
  snprintf(want, sizeof(want),
           "type=SYSCALL msg=audit(1.0:7): syscall=59 exe=\"/usr/bin/mysql\"\n"
           "type=PROCTITLE msg=audit(1.0:7): proctitle=%s",
           hx_masked);
  col_attr attrs[] = {{"syscall", (const uint8_t *)"59", 2},
                      {"proctitle", (const uint8_t *)"mysql -u root --password=hunter2", 32},
                      {"cmd", (const uint8_t *)"curl -H Authorization: Bearer 0123456789abcdef", 46},
                      {"exe", (const uint8_t *)"/usr/bin/mysql", 14}};
  col_rec in = {.time_ns = 1,
                .msg = (const uint8_t *)msg,
                .msg_len = strlen(msg),
                .source = CAIRN__SOURCE__SOURCE_AUDIT,
                .attrs = attrs,
                .n_attrs = 4};
  const col_rec *out;
  assert_int_equal(col__redact_rec(rd, 0, &in, &out), CAIRN_OK);
  assert_int_equal(out->msg_len, strlen(want));
  assert_memory_equal(out->msg, want, out->msg_len);
  assert_int_equal(out->n_attrs, 6);
  assert_attr(out, "proctitle", "mysql -u root --password=[REDACTED:password]");
  assert_attr(out, "cmd", "curl -H Authorization: Bearer [REDACTED:bearer_token]");
  assert_ptr_equal(attr(out, "exe")->val, attrs[3].val); /* untouched attrs are the parser's */
  assert_ptr_equal(attr(out, "syscall")->val, attrs[0].val);
  assert_attr(out, "redactions", "3");
  assert_attr(out, "redaction_rules", "bearer_token,password");
  /* numbers and short hex are left alone */
  const char *plain = "type=SYSCALL msg=audit(1.0:8): a0=7FFD1234 pid=1234 key=ABCDEF0123456789";
  in.msg = (const uint8_t *)plain;
  in.msg_len = strlen(plain);
  in.attrs = attrs;
  in.n_attrs = 1;
  assert_int_equal(col__redact_rec(rd, 0, &in, &out), CAIRN_OK);
  assert_ptr_equal(out, &in);
  col__redactor_free(rd);
}

static void k8s_audit_json_stays_valid_and_typed_attrs_stay(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  const char *line =
      "{\"kind\":\"Event\",\"auditID\":\"a1\",\"user\":{\"username\":\"alice\"},"
      "\"requestObject\":{\"kind\":\"Secret\",\"stringData\":{\"password\":\"p\\\"w \\u00e9\","
      "\"url\":\"https://x:tok\\\\en@h\"},\"metadata\":{\"annotations\":{\"auth\":\"Bearer "
      "0123456789abcdefXYZ\"}}},\"secret\":{\"name\":\"db\"}}";
  col_attr attrs[] = {{"user", (const uint8_t *)"alice", 5}, {"resource", (const uint8_t *)"secrets", 7}};
  col_rec in = {.msg = (const uint8_t *)line,
                .msg_len = strlen(line),
                .source = CAIRN__SOURCE__SOURCE_K8S_AUDIT,
                .attrs = attrs,
                .n_attrs = 2};
  const col_rec *out;
  assert_int_equal(col__redact_rec(rd, 0, &in, &out), CAIRN_OK);
  assert_ptr_not_equal(out, &in);
  json_error_t je;
  json_t *j = json_loadb((const char *)out->msg, out->msg_len, 0, &je);
  if (!j) print_error("invalid JSON after redaction: %s: %.*s\n", je.text, (int)out->msg_len, out->msg);
  assert_non_null(j);
  json_t *sd = json_object_get(json_object_get(j, "requestObject"), "stringData");
  assert_string_equal(json_string_value(json_object_get(sd, "password")), "[REDACTED:password]");
  assert_non_null(strstr(json_string_value(json_object_get(sd, "url")), "[REDACTED:url_password]"));
  assert_null(memmem(out->msg, out->msg_len, "0123456789abcdefXYZ", 19));
  json_decref(j);
  assert_ptr_equal(attr(out, "user")->val, attrs[0].val);
  assert_ptr_equal(attr(out, "resource")->val, attrs[1].val);
  assert_attr(out, "redactions", "3");
  col__redactor_free(rd);
}

static const col_rec *feed(col_redactor *rd, uint64_t key, const char *line) {
  static col_rec in;
  memset(&in, 0, sizeof(in));
  in.msg = (const uint8_t *)line;
  in.msg_len = strlen(line);
  in.source = CAIRN__SOURCE__SOURCE_CONTAINER;
  const col_rec *out;
  assert_int_equal(col__redact_rec(rd, key, &in, &out), CAIRN_OK);
  return out;
}

static void assert_msg(const col_rec *r, const char *want) {
  if (r->msg_len != strlen(want) || memcmp(r->msg, want, r->msg_len) != 0) {
    print_error("want '%s', got '%.*s'\n", want, (int)r->msg_len, r->msg);
    fail();
  }
}

static void private_keys_printed_line_by_line_are_masked_to_the_end_line(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  assert_msg(feed(rd, 7, "-----BEGIN RSA PRIVATE KEY-----"), "[REDACTED:private_key]");
  assert_msg(feed(rd, 8, "MIIEpAIBAAKCAQEA7xother"), "MIIEpAIBAAKCAQEA7xother"); /* other stream */
  assert_msg(feed(rd, 7, "MIIEpAIBAAKCAQEA7x+/abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"),
             "[REDACTED:private_key]");
  assert_msg(feed(rd, 7, "Q2xvdWQ="), "[REDACTED:private_key]");
  assert_msg(feed(rd, 7, "-----END RSA PRIVATE KEY----- loaded"), "[REDACTED:private_key] loaded");
  assert_msg(feed(rd, 7, "QUJDRA=="), "QUJDRA=="); /* after END: ordinary text */
  /* any other line ends the block */
  assert_msg(feed(rd, 7, "key: -----BEGIN EC PRIVATE KEY-----"), "key: [REDACTED:private_key]");
  assert_msg(feed(rd, 7, "server started on :8443"), "server started on :8443");
  assert_msg(feed(rd, 7, "QUJDRA=="), "QUJDRA==");
  const col_rec *last = feed(rd, 7, "-----BEGIN PRIVATE KEY-----");
  assert_attr(last, "redaction_rules", "private_key");
  col__redactor_free(rd);
}

/* ---- the batch hook and metrics ---- */

static void batch_add_stores_the_masked_record(void **state) {
  (void)state;
  col_redactor *rd = defaults();
  col_meta m;
  memset(&m, 0, sizeof(m));
  col_rec_src src = {"node-1", "/var/log/containers/x.log", &m, CAIRN__FORMAT__FORMAT_CRI, 42};
  col_batch *b = col__batch_new(1);
  b->redact = rd;
  char msg[] = "token=ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
  col_rec r = {.msg = (const uint8_t *)msg, .msg_len = strlen(msg), .end_offset = 10,
               .attrs_json = "{\"a\":\"b\"}"};
  assert_int_equal(col__batch_add(b, &src, &r), CAIRN_OK);
  memset(msg, 'X', sizeof(msg) - 1);
  const Cairn__Record *out = b->recs[0];
  assert_int_equal(out->message.len, strlen("token=[REDACTED:github_token]"));
  assert_memory_equal(out->message.data, "token=[REDACTED:github_token]", out->message.len);
  assert_int_equal(out->n_attrs, 3);
  assert_string_equal(out->attrs[0]->key, "redactions");
  assert_memory_equal(out->attrs[0]->value.data, "1", 1);
  assert_string_equal(out->attrs[1]->key, "redaction_rules");
  assert_string_equal(out->attrs[2]->key, "attrs");
  assert_int_equal(out->end_offset, 10);
  assert_int_equal(out->file_stream, 42);
  col__batch_free(b);
  col__redactor_free(rd);
}

static void metrics_expose_counts_per_rule(void **state) {
  (void)state;
  col_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.redact = defaults();
  uint32_t n;
  free(red(cfg.redact, "password=a jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", &n));
  col_collector c;
  memset(&c, 0, sizeof(c));
  c.cfg = &cfg;
  cairn_buf b;
  cairn_buf_init(&b);
  assert_int_equal(col__metrics_render(&c, 0, &b), CAIRN_OK);
  assert_int_equal(cairn_buf_append(&b, "", 1), CAIRN_OK);
  const char *t = (const char *)b.ptr;
  assert_non_null(strstr(t, "# TYPE cairn_collector_redactions_total counter"));
  assert_non_null(strstr(t, "cairn_collector_redactions_total{rule=\"password\"} 1\n"));
  assert_non_null(strstr(t, "cairn_collector_redactions_total{rule=\"jwt\"} 1\n"));
  assert_non_null(strstr(t, "cairn_collector_redactions_total{rule=\"aws_access_key\"} 0\n"));
  assert_non_null(strstr(t, "cairn_collector_records_redacted_total 1\n"));
  assert_non_null(strstr(t, "cairn_collector_redaction_errors_total 0\n"));
  cairn_buf_fini(&b);
  col__redactor_free(cfg.redact);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(aws_access_key_ids_are_masked),
      cmocka_unit_test(aws_secret_keys_after_their_name_are_masked),
      cmocka_unit_test(bearer_tokens_are_masked),
      cmocka_unit_test(jwts_are_masked_once),
      cmocka_unit_test(passwords_in_urls_are_masked),
      cmocka_unit_test(password_pairs_are_masked),
      cmocka_unit_test(private_key_blocks_are_masked),
      cmocka_unit_test(github_and_slack_tokens_are_masked),
      cmocka_unit_test(generic_api_keys_and_secrets_are_masked),
      cmocka_unit_test(lines_without_secrets_come_back_as_they_were),
      cmocka_unit_test(utf8_around_matches_stays_valid),
      cmocka_unit_test(every_span_is_counted_per_rule),
      cmocka_unit_test(records_gain_counts_and_rule_names_only),
      cmocka_unit_test(user_rules_add_replace_and_disable),
      cmocka_unit_test(bad_specs_are_config_errors_naming_the_rule),
      cmocka_unit_test(config_load_compiles_rules_and_reports_bad_ones),
      cmocka_unit_test(failing_matches_mask_the_whole_text),
      cmocka_unit_test(audit_raw_lines_hex_values_and_command_attrs_are_masked),
      cmocka_unit_test(k8s_audit_json_stays_valid_and_typed_attrs_stay),
      cmocka_unit_test(private_keys_printed_line_by_line_are_masked_to_the_end_line),
      cmocka_unit_test(batch_add_stores_the_masked_record),
      cmocka_unit_test(metrics_expose_counts_per_rule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
