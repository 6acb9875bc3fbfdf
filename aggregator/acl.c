/* aggregator/acl.c: the query access list (--query-acl FILE): which
 * certificate identity may read which namespaces and sources over the query
 * port. Parsing (libyaml's document API, errors with line numbers) is kept
 * apart from matching; the query server only asks the matcher.
 *
 * Default deny: an identity that is not listed reads nothing, and a listed
 * one reads only records whose namespace matches one of its globs AND whose
 * source is one of its sources (a record without namespace, e.g. an auditd
 * event, needs a glob that matches the empty string, such as "*").
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "aggregator/internal.h"

struct agg_acl {
  agg_acl_entry *v; /* owned, n entries */
  size_t n;
};

static void entry_fini(agg_acl_entry *e) {
  free(e->identity);
  for (size_t i = 0; i < e->n_ns; i++) free(e->ns[i]);
  free(e->ns);
}

void agg__acl_free(agg_acl *acl) {
  if (!acl) return;
  for (size_t i = 0; i < acl->n; i++) entry_fini(&acl->v[i]);
  free(acl->v);
  free(acl);
}

typedef struct acl_parse {
  yaml_document_t *doc;
  const char *name; /* file name for messages */
  char *errbuf;
  size_t errlen;
} acl_parse;

static cairn_err fail(acl_parse *p, const yaml_node_t *n, const char *fmt, const char *a,
                      const char *b) {
  char msg[256];
  snprintf(msg, sizeof(msg), fmt, a ? a : "", b ? b : "");
  snprintf(p->errbuf, p->errlen, "%s:%zu: %s", p->name, n ? n->start_mark.line + 1 : 0, msg);
  return CAIRN_E_CONFIG;
}

static const char *scalar(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A scalar or a sequence of scalars: call add(value) for each. */
static cairn_err each_string(acl_parse *p, const yaml_node_t *n, const char *key,
                             const char *ident, cairn_err (*add)(acl_parse *, agg_acl_entry *,
                                                                 const yaml_node_t *, const char *),
                             agg_acl_entry *e) {
  if (n->type == YAML_SCALAR_NODE) return add(p, e, n, scalar(n));
  if (n->type != YAML_SEQUENCE_NODE)
    return fail(p, n, "identities.%s.%s: expected a list of strings", ident, key);
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
    const yaml_node_t *v = yaml_document_get_node(p->doc, *it);
    const char *s = scalar(v);
    if (!s) return fail(p, v ? v : n, "identities.%s.%s: expected a string", ident, key);
    cairn_err e2 = add(p, e, v, s);
    if (e2 != CAIRN_OK) return e2;
  }
  return CAIRN_OK;
}

static cairn_err add_ns(acl_parse *p, agg_acl_entry *e, const yaml_node_t *n, const char *s) {
  if (!*s) return fail(p, n, "identities.%s.namespaces: empty pattern (use \"*\" for all)",
                       e->identity, NULL);
  if (strlen(s) > STO_INDEX_VALUE_MAX)
    return fail(p, n, "identities.%s.namespaces: pattern longer than 255 bytes", e->identity,
                NULL);
  char **nv = realloc(e->ns, (e->n_ns + 1) * sizeof(*nv));
  if (!nv) return CAIRN_E_NOMEM;
  e->ns = nv;
  if (!(e->ns[e->n_ns] = strdup(s))) return CAIRN_E_NOMEM;
  e->n_ns++;
  return CAIRN_OK;
}

static cairn_err add_source(acl_parse *p, agg_acl_entry *e, const yaml_node_t *n,
                            const char *s) {
  Cairn__Source src;
  if (pb_source_parse(s, &src) != CAIRN_OK || src == CAIRN__SOURCE__SOURCE_UNKNOWN || src > 31)
    return fail(p, n,
                "identities.%s.sources: unknown source '%s' (use container, audit, k8s-audit "
                "or query)",
                e->identity, s);
  e->sources |= 1u << src;
  return CAIRN_OK;
}

static cairn_err parse_entry(acl_parse *p, const char *ident, const yaml_node_t *n,
                             agg_acl_entry *e) {
  if (n->type != YAML_MAPPING_NODE)
    return fail(p, n, "identities.%s: expected {namespaces: [...], sources: [...]}", ident, NULL);
  bool have_ns = false, have_src = false;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    const yaml_node_t *k = yaml_document_get_node(p->doc, pr->key);
    const yaml_node_t *v = yaml_document_get_node(p->doc, pr->value);
    const char *ks = scalar(k);
    cairn_err err;
    if (ks && strcmp(ks, "namespaces") == 0) {
      err = each_string(p, v, "namespaces", ident, add_ns, e);
      have_ns = true;
    } else if (ks && strcmp(ks, "sources") == 0) {
      err = each_string(p, v, "sources", ident, add_source, e);
      have_src = true;
    } else {
      err = fail(p, k ? k : n, "identities.%s: unknown key '%s' (namespaces, sources)", ident, ks);
    }
    if (err != CAIRN_OK) return err;
  }
  if (!have_ns || !e->n_ns)
    return fail(p, n, "identities.%s: namespaces is required (globs, \"*\" for all)", ident, NULL);
  if (!have_src || !e->sources)
    return fail(p, n, "identities.%s: sources is required (container, audit, k8s-audit, query)",
                ident, NULL);
  return CAIRN_OK;
}

static cairn_err parse_doc(acl_parse *p, agg_acl *acl) {
  const yaml_node_t *root = yaml_document_get_root_node(p->doc);
  if (!root) return fail(p, NULL, "empty file: expected 'identities:'%s%s", NULL, NULL);
  if (root->type != YAML_MAPPING_NODE)
    return fail(p, root, "expected a mapping with 'identities:'%s%s", NULL, NULL);
  const yaml_node_t *ids = NULL;
  for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
       pr++) {
    const yaml_node_t *k = yaml_document_get_node(p->doc, pr->key);
    const char *ks = scalar(k);
    if (ks && strcmp(ks, "identities") == 0)
      ids = yaml_document_get_node(p->doc, pr->value);
    else
      return fail(p, k ? k : root, "unknown key '%s' (expected identities)%s", ks, NULL);
  }
  if (!ids || ids->type != YAML_MAPPING_NODE)
    return fail(p, ids ? ids : root, "identities: expected a mapping IDENTITY: {namespaces, "
                "sources}%s%s", NULL, NULL);
  for (yaml_node_pair_t *pr = ids->data.mapping.pairs.start; pr < ids->data.mapping.pairs.top;
       pr++) {
    const yaml_node_t *k = yaml_document_get_node(p->doc, pr->key);
    const yaml_node_t *v = yaml_document_get_node(p->doc, pr->value);
    const char *ident = scalar(k);
    if (!ident || !*ident) return fail(p, k ? k : ids, "identities: empty identity%s%s", NULL, NULL);
    if (agg__acl_find(acl, ident))
      return fail(p, k, "identities.%s: listed twice%s", ident, NULL);
    agg_acl_entry *nv = realloc(acl->v, (acl->n + 1) * sizeof(*nv));
    if (!nv) return CAIRN_E_NOMEM;
    acl->v = nv;
    agg_acl_entry *e = &acl->v[acl->n];
    memset(e, 0, sizeof(*e));
    acl->n++;
    if (!(e->identity = strdup(ident))) return CAIRN_E_NOMEM;
    cairn_err err = parse_entry(p, ident, v, e);
    if (err != CAIRN_OK) return err;
  }
  return CAIRN_OK;
}

cairn_err agg__acl_parse(const char *text, size_t len, const char *name, agg_acl **out,
                         char *errbuf, size_t errlen) {
  *out = NULL;
  agg_acl *acl = calloc(1, sizeof(*acl));
  if (!acl) return CAIRN_E_NOMEM;
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    free(acl);
    return CAIRN_E_NOMEM;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  cairn_err err;
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(errbuf, errlen, "%s:%zu: not valid YAML: %s", name, parser.problem_mark.line + 1,
             parser.problem ? parser.problem : "parse error");
    err = CAIRN_E_CONFIG;
    goto out_parser;
  }
  acl_parse p = {&doc, name, errbuf, errlen};
  err = parse_doc(&p, acl);
  if (err == CAIRN_E_NOMEM) snprintf(errbuf, errlen, "%s: out of memory", name);
  yaml_document_delete(&doc);
out_parser:
  yaml_parser_delete(&parser);
  if (err != CAIRN_OK) {
    agg__acl_free(acl);
    return err;
  }
  *out = acl;
  return CAIRN_OK;
}

cairn_err agg__acl_load(const char *path, agg_acl **out, char *errbuf, size_t errlen) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(errbuf, errlen, "--query-acl %s: cannot open: %s", path, strerror(errno));
    return CAIRN_E_CONFIG;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  cairn_err err = CAIRN_OK;
  for (;;) {
    if (cap - len < 4096) {
      if (cap > (16u << 20)) {
        snprintf(errbuf, errlen, "--query-acl %s: larger than 16 MiB", path);
        err = CAIRN_E_CONFIG;
        goto out_close;
      }
      char *nb = realloc(buf, cap ? cap * 2 : 8192);
      if (!nb) {
        err = CAIRN_E_NOMEM;
        goto out_close;
      }
      buf = nb;
      cap = cap ? cap * 2 : 8192;
    }
    size_t r = fread(buf + len, 1, cap - len, f);
    len += r;
    if (r == 0) break;
  }
  if (ferror(f)) {
    snprintf(errbuf, errlen, "--query-acl %s: read error", path);
    err = CAIRN_E_CONFIG;
    goto out_close;
  }
  char name[300];
  snprintf(name, sizeof(name), "--query-acl %s", path);
  err = agg__acl_parse(buf ? buf : "", len, name, out, errbuf, errlen);
out_close:
  fclose(f);
  free(buf);
  return err;
}

const agg_acl_entry *agg__acl_find(const agg_acl *acl, const char *identity) {
  if (!acl || !identity) return NULL;
  for (size_t i = 0; i < acl->n; i++)
    if (strcmp(acl->v[i].identity, identity) == 0) return &acl->v[i];
  return NULL;
}

size_t agg__acl_count(const agg_acl *acl) { return acl ? acl->n : 0; }

bool agg__acl_namespace_ok(const agg_acl_entry *e, const char *ns) {
  if (!ns) ns = "";
  for (size_t i = 0; i < e->n_ns; i++)
    if (fnmatch(e->ns[i], ns, 0) == 0) return true;
  return false;
}

bool agg__acl_source_ok(const agg_acl_entry *e, int source) {
  return source > 0 && source < 32 && (e->sources & (1u << source));
}

bool agg__acl_all_namespaces(const agg_acl_entry *e) {
  for (size_t i = 0; i < e->n_ns; i++)
    if (strcmp(e->ns[i], "*") == 0) return true;
  return false;
}

bool agg__acl_record_ok(const agg_acl_entry *e, const Cairn__Record *r) {
  return agg__acl_source_ok(e, (int)r->source) && agg__acl_namespace_ok(e, r->kube_namespace);
}
