/* collector/redact.h: masking secrets in records before they leave the node.
 * Private to collector/ (tests and bench include it directly).
 *
 * A col_redactor holds an ordered list of rules (name + PCRE2 pattern,
 * compiled once with JIT): the built-in defaults for common credential
 * shapes (see COL_REDACT_DEFAULTS below), replaced or disabled by name, plus
 * user rules from --redact NAME=REGEX. Each match is replaced by the ASCII
 * text "[REDACTED:NAME]"; what a record lost is counted in two attrs it gains,
 * "redactions" (the number of masked spans, decimal) and "redaction_rules"
 * (the distinct rule names, comma-joined, in rule order), never the content.
 *
 * Caveats:
 *  - One thread at a time: a redactor holds its match data, scratch buffers
 *    and counters. The collector uses it on its loop thread only.
 *  - Results returned through out-pointers live in the redactor's scratch and
 *    stay valid only until its next call; copy them (col__batch_add does).
 *  - Rules run one after another, each over the previous rule's output, so an
 *    earlier rule wins where two overlap (a JWT after "Bearer " is counted
 *    once, as jwt).
 *  - A default rule runs its regex only when one of its literal anchors
 *    occurs in the text (one pass over the bytes for all anchors); a user
 *    rule always runs (PCRE2's own start-of-match optimisations apply).
 *  - A masked span always covers whole UTF-8 characters and never ends
 *    inside a backslash escape, so valid UTF-8 (and JSON text that the rule
 *    does not cross a quote of) stays valid. A user rule that matches across
 *    a JSON quote can still break a Kubernetes audit line's JSON.
 *  - A regex that fails at match time (match or JIT stack limit) masks the
 *    whole text ("fail closed") and counts an error.
 */
#ifndef CAIRN_COLLECTOR_REDACT_H
#define CAIRN_COLLECTOR_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/parse.h"
#include "common/err.h"

/* The default rules, in the order they run (names as in --redact NAME=). */
#define COL_REDACT_DEFAULTS                                                                 \
  "private_key, jwt, aws_access_key, aws_secret_key, github_token, slack_token, "           \
  "bearer_token, url_password, password, generic_secret"

#define COL_REDACT_MAX_RULES 64 /* defaults included */
#define COL_REDACT_NAME_MAX 40  /* bytes of a rule name: [A-Za-z0-9_.-] */

typedef struct col_redactor col_redactor;

/* Build a redactor. defaults: start from the default rules. specs[0..n)
 * are "NAME=REGEX" strings (--redact, YAML redact.rules): a NAME of a default
 * rule replaces that rule in place, "NAME=" (empty REGEX) disables the
 * default NAME, any other NAME appends a rule. *out is NULL when no rule is
 * left (redaction off).
 * Errors: CAIRN_E_CONFIG with a one-line errbuf naming the rule, e.g.
 *   "--redact token=(ab: invalid regex at offset 3: missing closing parenthesis"
 * (bad NAME, missing '=', duplicate NAME, unknown default for "NAME=", too
 * many rules, PCRE2 compile error with its offset); CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__redactor_new(bool defaults, char *const *specs, size_t n,
                                             col_redactor **out, char *errbuf, size_t errlen);

/* Free a redactor. NULL is fine. */
void col__redactor_free(col_redactor *rd);

/* Mask secrets in one record. in is borrowed. *out is in itself when nothing
 * was masked, else a copy of *in in the redactor's scratch (valid until the
 * next call) that differs only in msg/msg_len, in the values of masked attrs
 * (auditd: proctitle, cmd) and in the two redaction attrs appended to attrs.
 * stream_key names the stream a record continues (file stream and log
 * stream): container records of a private key printed line by line are
 * masked from its BEGIN line to its END line. What is scanned per source:
 *   container (and anything unknown): msg;
 *   audit: msg (the raw lines), the hex-encoded values inside it (decoded,
 *     masked and re-encoded, so a proctitle argument is masked in the raw
 *     line too), and the proctitle and cmd attrs;
 *   k8s audit: msg (the JSON line); the typed attrs are identifiers and kept.
 * CAIRN_E_NOMEM only (nothing is counted then). */
CAIRN_MUST_CHECK cairn_err col__redact_rec(col_redactor *rd, uint64_t stream_key,
                                           const col_rec *in, const col_rec **out);

/* Mask secrets in the bytes s[0..n) with every rule. *count gets the number
 * of masked spans; when it is > 0, *res and *res_len point at the result in the
 * redactor's scratch (valid until the next call), else at s. Counters are
 * updated as for a record. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__redact_text(col_redactor *rd, const uint8_t *s, size_t n,
                                            const uint8_t **res, size_t *res_len,
                                            uint32_t *count);

/* ---- counters (read on the redactor's thread) ---- */

/* Number of rules, and rule i's name and spans masked so far. */
size_t col__redactor_rules(const col_redactor *rd);
const char *col__redactor_rule_name(const col_redactor *rd, size_t i);
uint64_t col__redactor_rule_hits(const col_redactor *rd, size_t i);
/* Records with at least one masked span. */
uint64_t col__redactor_records(const col_redactor *rd);
/* Matches that failed (limits) and masked a whole text instead. */
uint64_t col__redactor_errors(const col_redactor *rd);

#endif
