/* tests/common/deploy_manifests_test.c: every YAML file under deploy/ parses
 * (libyaml, all documents), every Kubernetes object has the fields the
 * operations issue requires (DaemonSet tolerations, read-only /var/log,
 * securityContext, resources, NODE_NAME from spec.nodeName, StatefulSet with
 * a volume claim, NetworkPolicy limiting the ingest port to collectors), and
 * the ConfigMap payloads are accepted by the real daemons' --check-config
 * (binaries from CAIRN_BUILD, sources from CAIRN_SRC).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

#include <cmocka.h>

#define MAX_DOCS 64

typedef struct manifest {
  char path[512];
  yaml_document_t doc;
} manifest;

typedef struct corpus {
  manifest docs[MAX_DOCS];
  size_t n;
  size_t files;
} corpus;

/* ---------------- a tiny path lookup over libyaml documents ---------------- */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *n, const char *key, size_t klen) {
  if (!n || n->type != YAML_MAPPING_NODE) return NULL;
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(d, p->key);
    if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == klen &&
        memcmp(k->data.scalar.value, key, klen) == 0)
      return yaml_document_get_node(d, p->value);
  }
  return NULL;
}

/* "spec.template.spec" from n (dotted mapping keys). */
static yaml_node_t *get(yaml_document_t *d, yaml_node_t *n, const char *path) {
  while (n && *path) {
    size_t len = strcspn(path, ".");
    n = map_get(d, n, path, len);
    path += len;
    if (*path == '.') path++;
  }
  return n;
}

static const char *scalar(yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const char *get_str(yaml_document_t *d, yaml_node_t *n, const char *path) {
  return scalar(get(d, n, path));
}

static size_t seq_len(yaml_node_t *n) {
  return n && n->type == YAML_SEQUENCE_NODE
             ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
             : 0;
}

static yaml_node_t *seq_at(yaml_document_t *d, yaml_node_t *n, size_t i) {
  return i < seq_len(n) ? yaml_document_get_node(d, n->data.sequence.items.start[i]) : NULL;
}

static bool seq_has_str(yaml_document_t *d, yaml_node_t *n, const char *v) {
  for (size_t i = 0; i < seq_len(n); i++) {
    const char *s = scalar(seq_at(d, n, i));
    if (s && strcmp(s, v) == 0) return true;
  }
  return false;
}

/* The app.kubernetes.io/name label under the matchLabels mapping at path
 * (the key holds dots, so get() cannot reach it). */
static const char *app_label(yaml_document_t *d, yaml_node_t *n, const char *path) {
  static const char key[] = "app.kubernetes.io/name";
  return scalar(map_get(d, get(d, n, path), key, sizeof(key) - 1));
}

static yaml_node_t *root(manifest *m) { return yaml_document_get_root_node(&m->doc); }

/* ---------------- loading ---------------- */

static void load_file(corpus *c, const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  yaml_parser_t p;
  assert_true(yaml_parser_initialize(&p));
  yaml_parser_set_input_file(&p, f);
  for (;;) {
    assert_true(c->n < MAX_DOCS);
    manifest *m = &c->docs[c->n];
    if (!yaml_parser_load(&p, &m->doc)) {
      fail_msg("%s:%zu: YAML error: %s %s", path, p.problem_mark.line + 1,
               p.problem ? p.problem : "", p.context ? p.context : "");
    }
    if (!yaml_document_get_root_node(&m->doc)) { /* end of stream */
      yaml_document_delete(&m->doc);
      break;
    }
    snprintf(m->path, sizeof(m->path), "%s", path);
    c->n++;
  }
  yaml_parser_delete(&p);
  fclose(f);
  c->files++;
}

static void load_dir(corpus *c, const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    size_t len = strlen(e->d_name);
    if (S_ISDIR(st.st_mode)) {
      load_dir(c, p);
    } else if ((len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0) ||
               (len > 4 && strcmp(e->d_name + len - 4, ".yml") == 0)) {
      load_file(c, p);
    }
  }
  closedir(d);
}

static int setup(void **state) {
  const char *src = getenv("CAIRN_SRC");
  if (!src) {
    fprintf(stderr, "CAIRN_SRC must point at the source tree (ctest sets it)\n");
    return -1;
  }
  corpus *c = calloc(1, sizeof(*c));
  char dir[512];
  snprintf(dir, sizeof(dir), "%s/deploy", src);
  load_dir(c, dir);
  *state = c;
  return 0;
}

static int teardown(void **state) {
  corpus *c = *state;
  for (size_t i = 0; i < c->n; i++) yaml_document_delete(&c->docs[i].doc);
  free(c);
  return 0;
}

/* The one object of kind (and name, when not NULL); fails when absent. */
static manifest *find(corpus *c, const char *kind, const char *name) {
  for (size_t i = 0; i < c->n; i++) {
    manifest *m = &c->docs[i];
    const char *k = get_str(&m->doc, root(m), "kind");
    const char *nm = get_str(&m->doc, root(m), "metadata.name");
    if (k && strcmp(k, kind) == 0 && (!name || (nm && strcmp(nm, name) == 0))) return m;
  }
  fail_msg("no %s %s under deploy/", kind, name ? name : "");
  return NULL;
}

/* ---------------- checks ---------------- */

static void every_document_is_a_named_object_in_the_cairn_namespace(void **state) {
  corpus *c = *state;
  assert_true(c->files >= 8);
  for (size_t i = 0; i < c->n; i++) {
    manifest *m = &c->docs[i];
    yaml_document_t *d = &m->doc;
    const char *api = get_str(d, root(m), "apiVersion"), *kind = get_str(d, root(m), "kind");
    if (!api || !kind) fail_msg("%s: a document without apiVersion or kind", m->path);
    if (strcmp(kind, "Kustomization") == 0) {
      /* every listed resource exists next to it */
      yaml_node_t *res = get(d, root(m), "resources");
      assert_true(seq_len(res) > 0);
      for (size_t j = 0; j < seq_len(res); j++) {
        char p[1024];
        const char *slash = strrchr(m->path, '/');
        snprintf(p, sizeof(p), "%.*s/%s", (int)(slash - m->path), m->path,
                 scalar(seq_at(d, res, j)));
        if (access(p, R_OK) != 0) fail_msg("%s lists %s, which does not exist", m->path, p);
      }
      continue;
    }
    const char *name = get_str(d, root(m), "metadata.name");
    if (!name) fail_msg("%s: %s without metadata.name", m->path, kind);
    if (strcmp(kind, "Namespace") == 0) continue;
    const char *ns = get_str(d, root(m), "metadata.namespace");
    if (!ns || strcmp(ns, "cairn") != 0)
      fail_msg("%s: %s %s is not in namespace cairn", m->path, kind, name);
  }
}

/* Container checks shared by the two workloads. */
static void check_container(manifest *m, yaml_node_t *ctr) {
  yaml_document_t *d = &m->doc;
  const char *name = get_str(d, ctr, "name");
  const char *res[] = {"resources.requests.cpu", "resources.requests.memory",
                       "resources.limits.memory"};
  for (size_t i = 0; i < 3; i++)
    if (!get_str(d, ctr, res[i])) fail_msg("%s: container %s has no %s", m->path, name, res[i]);
  const char *ro = get_str(d, ctr, "securityContext.readOnlyRootFilesystem");
  const char *ape = get_str(d, ctr, "securityContext.allowPrivilegeEscalation");
  if (!ro || strcmp(ro, "true") != 0) fail_msg("%s: %s: readOnlyRootFilesystem must be true", m->path, name);
  if (!ape || strcmp(ape, "false") != 0)
    fail_msg("%s: %s: allowPrivilegeEscalation must be false", m->path, name);
  if (!seq_has_str(d, get(d, ctr, "securityContext.capabilities.drop"), "ALL"))
    fail_msg("%s: %s: capabilities must drop ALL", m->path, name);
  yaml_node_t *add = get(d, ctr, "securityContext.capabilities.add");
  for (size_t i = 0; i < seq_len(add); i++) {
    const char *cap = scalar(seq_at(d, add, i));
    if (!cap || strcmp(cap, "DAC_READ_SEARCH") != 0)
      fail_msg("%s: %s adds capability %s (only DAC_READ_SEARCH is allowed)", m->path, name, cap);
  }
  if (!get(d, ctr, "livenessProbe.httpGet") || !get(d, ctr, "readinessProbe.httpGet"))
    fail_msg("%s: %s needs liveness and readiness probes", m->path, name);
}

/* The volumeMount of ctr at mount path, or NULL. */
static yaml_node_t *mount_at(yaml_document_t *d, yaml_node_t *ctr, const char *path) {
  yaml_node_t *vm = get(d, ctr, "volumeMounts");
  for (size_t i = 0; i < seq_len(vm); i++) {
    const char *p = get_str(d, seq_at(d, vm, i), "mountPath");
    if (p && strcmp(p, path) == 0) return seq_at(d, vm, i);
  }
  return NULL;
}

/* The pod volume called name, or NULL. */
static yaml_node_t *volume(yaml_document_t *d, yaml_node_t *pod, const char *name) {
  yaml_node_t *vols = get(d, pod, "volumes");
  for (size_t i = 0; i < seq_len(vols); i++) {
    const char *n = get_str(d, seq_at(d, vols, i), "name");
    if (n && strcmp(n, name) == 0) return seq_at(d, vols, i);
  }
  return NULL;
}

static void collector_daemonset_runs_everywhere_reading_logs_read_only(void **state) {
  manifest *m = find(*state, "DaemonSet", "cairn-collector");
  yaml_document_t *d = &m->doc;
  yaml_node_t *pod = get(d, root(m), "spec.template.spec");
  assert_non_null(pod);
  /* a toleration with operator Exists and no key tolerates every taint */
  yaml_node_t *tol = get(d, pod, "tolerations");
  bool all = false;
  for (size_t i = 0; i < seq_len(tol); i++) {
    yaml_node_t *t = seq_at(d, tol, i);
    const char *op = get_str(d, t, "operator");
    if (op && strcmp(op, "Exists") == 0 && !get(d, t, "key") && !get(d, t, "effect")) all = true;
  }
  assert_true(all);
  yaml_node_t *ctr = seq_at(d, get(d, pod, "containers"), 0);
  check_container(m, ctr);
  /* /var/log from the host, read-only */
  yaml_node_t *vm = mount_at(d, ctr, "/var/log");
  assert_non_null(vm);
  assert_string_equal(get_str(d, vm, "readOnly"), "true");
  const char *hp = get_str(d, volume(d, pod, get_str(d, vm, "name")), "hostPath.path");
  assert_non_null(hp);
  assert_string_equal(hp, "/var/log");
  /* checkpoint state on a writable hostPath */
  vm = mount_at(d, ctr, "/var/lib/cairn-collector");
  assert_non_null(vm);
  assert_null(get_str(d, vm, "readOnly"));
  assert_non_null(get_str(d, volume(d, pod, get_str(d, vm, "name")), "hostPath.path"));
  /* NODE_NAME from the downward API */
  yaml_node_t *env = get(d, ctr, "env");
  bool node = false;
  for (size_t i = 0; i < seq_len(env); i++) {
    yaml_node_t *e = seq_at(d, env, i);
    const char *n = get_str(d, e, "name"), *fp = get_str(d, e, "valueFrom.fieldRef.fieldPath");
    if (n && strcmp(n, "NODE_NAME") == 0 && fp && strcmp(fp, "spec.nodeName") == 0) node = true;
  }
  assert_true(node);
  /* the TLS Secret and the ConfigMap are mounted read-only */
  assert_string_equal(get_str(d, mount_at(d, ctr, "/etc/cairn/tls"), "readOnly"), "true");
  assert_non_null(get_str(d, volume(d, pod, "config"), "configMap.name"));
}

static void aggregator_statefulset_is_non_root_with_a_volume_claim(void **state) {
  manifest *m = find(*state, "StatefulSet", "cairn-aggregator");
  yaml_document_t *d = &m->doc;
  yaml_node_t *pod = get(d, root(m), "spec.template.spec");
  assert_string_equal(get_str(d, pod, "securityContext.runAsNonRoot"), "true");
  yaml_node_t *ctr = seq_at(d, get(d, pod, "containers"), 0);
  check_container(m, ctr);
  assert_null(get(d, ctr, "securityContext.capabilities.add"));
  yaml_node_t *vct = seq_at(d, get(d, root(m), "spec.volumeClaimTemplates"), 0);
  assert_non_null(vct);
  assert_non_null(get_str(d, vct, "spec.resources.requests.storage"));
  assert_non_null(mount_at(d, ctr, "/var/lib/cairn"));
  assert_string_equal(get_str(d, mount_at(d, ctr, "/var/lib/cairn"), "name"),
                      get_str(d, vct, "metadata.name"));
  /* the Service exposes the ingest port */
  manifest *svc = find(*state, "Service", "cairn-aggregator");
  yaml_node_t *ports = get(&svc->doc, root(svc), "spec.ports");
  bool ingest = false;
  for (size_t i = 0; i < seq_len(ports); i++) {
    const char *p = get_str(&svc->doc, seq_at(&svc->doc, ports, i), "port");
    if (p && strcmp(p, "7400") == 0) ingest = true;
  }
  assert_true(ingest);
}

static void network_policy_admits_only_collectors_to_the_ingest_port(void **state) {
  manifest *m = find(*state, "NetworkPolicy", "cairn-aggregator-ingress");
  yaml_document_t *d = &m->doc;
  assert_string_equal(app_label(d, root(m), "spec.podSelector.matchLabels"),
                      "cairn-aggregator");
  yaml_node_t *rules = get(d, root(m), "spec.ingress");
  assert_true(seq_len(rules) > 0);
  bool found = false;
  for (size_t i = 0; i < seq_len(rules); i++) {
    yaml_node_t *r = seq_at(d, rules, i);
    yaml_node_t *ports = get(d, r, "ports");
    bool ingest = false;
    for (size_t j = 0; j < seq_len(ports); j++) {
      const char *p = get_str(d, seq_at(d, ports, j), "port");
      if (p && strcmp(p, "7400") == 0) ingest = true;
    }
    if (seq_len(ports) == 0) fail_msg("%s: ingress rule %zu allows every port", m->path, i);
    if (!ingest) continue;
    /* every source of this rule is the collector pod selector, nothing wider */
    yaml_node_t *from = get(d, r, "from");
    assert_true(seq_len(from) > 0);
    for (size_t j = 0; j < seq_len(from); j++) {
      yaml_node_t *f = seq_at(d, from, j);
      const char *app = app_label(d, f, "podSelector.matchLabels");
      if (!app || strcmp(app, "cairn-collector") != 0 || get(d, f, "namespaceSelector") ||
          get(d, f, "ipBlock"))
        fail_msg("%s: the ingest port admits more than collector pods", m->path);
    }
    found = true;
  }
  assert_true(found);
}

/* Write s to a temp file; run BIN --config FILE --check-config; exit status. */
static int check_config(const char *bin, const char *yaml, char *out, size_t cap) {
  char path[] = "/tmp/cairn-cm-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t n = strlen(yaml);
  assert_int_equal(write(fd, yaml, n), (ssize_t)n);
  close(fd);
  char cmd[2048];
  snprintf(cmd, sizeof(cmd), "NODE_NAME=node-1 '%s' --config '%s' --check-config 2>&1", bin, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t len = fread(out, 1, cap - 1, p);
  out[len] = '\0';
  int st = pclose(p);
  unlink(path);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void configmap_payloads_pass_check_config(void **state) {
  const char *build = getenv("CAIRN_BUILD");
  assert_non_null(build);
  struct {
    const char *cm, *key, *bin, *expect;
  } cases[] = {
      {"cairn-collector", "collector.yaml", "cairn-collector", "metrics.listen: 0.0.0.0:9401"},
      {"cairn-aggregator", "aggregator.yaml", "cairn-aggregator", "listen: 0.0.0.0:7400"},
  };
  for (size_t i = 0; i < 2; i++) {
    manifest *m = find(*state, "ConfigMap", cases[i].cm);
    const char *payload = scalar(map_get(&m->doc, get(&m->doc, root(m), "data"), cases[i].key,
                                         strlen(cases[i].key)));
    assert_non_null(payload);
    char bin[512], out[8192];
    snprintf(bin, sizeof(bin), "%s/%s", build, cases[i].bin);
    int rc = check_config(bin, payload, out, sizeof(out));
    if (rc != 0) fail_msg("%s --check-config rejects ConfigMap %s: %s", bin, cases[i].cm, out);
    assert_non_null(strstr(out, cases[i].expect));
  }
  /* and a typo would have been caught: the check is not vacuous */
  char bin[512], out[4096];
  snprintf(bin, sizeof(bin), "%s/cairn-collector", build);
  assert_int_equal(check_config(bin, "state: /x\naggregator: [a:1]\ntls: {cert: a, key: b, ca: c}\n"
                                     "metrics: {listne: 0.0.0.0:9401}\n",
                                out, sizeof(out)),
                   2);
}

static void workload_ports_match_the_configured_listen_addresses(void **state) {
  corpus *c = *state;
  struct {
    const char *kind, *name, *cm, *key, *port;
  } cases[] = {
      {"DaemonSet", "cairn-collector", "cairn-collector", "collector.yaml", "9401"},
      {"StatefulSet", "cairn-aggregator", "cairn-aggregator", "aggregator.yaml", "7400"},
      {"StatefulSet", "cairn-aggregator", "cairn-aggregator", "aggregator.yaml", "9400"},
  };
  for (size_t i = 0; i < 3; i++) {
    manifest *cm = find(c, "ConfigMap", cases[i].cm);
    const char *payload =
        scalar(map_get(&cm->doc, get(&cm->doc, root(cm), "data"), cases[i].key, strlen(cases[i].key)));
    char want[32];
    snprintf(want, sizeof(want), ":%s\n", cases[i].port);
    assert_non_null(strstr(payload, want));
    manifest *w = find(c, cases[i].kind, cases[i].name);
    yaml_node_t *ctr = seq_at(&w->doc, get(&w->doc, root(w), "spec.template.spec.containers"), 0);
    yaml_node_t *ports = get(&w->doc, ctr, "ports");
    bool found = false;
    for (size_t j = 0; j < seq_len(ports); j++) {
      const char *p = get_str(&w->doc, seq_at(&w->doc, ports, j), "containerPort");
      if (p && strcmp(p, cases[i].port) == 0) found = true;
    }
    if (!found) fail_msg("%s %s does not expose port %s", cases[i].kind, cases[i].name, cases[i].port);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_document_is_a_named_object_in_the_cairn_namespace),
      cmocka_unit_test(collector_daemonset_runs_everywhere_reading_logs_read_only),
      cmocka_unit_test(aggregator_statefulset_is_non_root_with_a_volume_claim),
      cmocka_unit_test(network_policy_admits_only_collectors_to_the_ingest_port),
      cmocka_unit_test(configmap_payloads_pass_check_config),
      cmocka_unit_test(workload_ports_match_the_configured_listen_addresses),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
