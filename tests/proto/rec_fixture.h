/* tests/proto/rec_fixture.h: records from the shared corpus expectations,
 * for the proto tests that check a record path against another
 * (json_test.c, recview_test.c). Static functions only: each test includes
 * it once. The walk reads every line of every .jsonl file of the four
 * expectation directories; each test builds its own record from a line,
 * with the attrs made here (top-level members as the parsers make attrs).
 * Needs cmocka, jansson, common/arena.h and proto/proto.h included first.
 */
#ifndef CAIRN_TESTS_PROTO_REC_FIXTURE_H
#define CAIRN_TESTS_PROTO_REC_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/recview.h"

/* One line of the corpus, for fx_line_fn. Everything is borrowed for the
 * call; what the callback allocates from a is freed after it returns. */
typedef struct fx_line {
  json_t *j;          /* the line parsed: always an object */
  char *line;         /* the line with its newline, len bytes */
  size_t len;         /* bytes */
  char *path;         /* the .jsonl file */
  char *file;         /* its name in the directory */
  Cairn__Source src;  /* by directory */
  Cairn__Format fmt;  /* by directory */
  size_t index;       /* lines of this directory before this one */
  cairn_arena *a;     /* reset after each line */
} fx_line;

typedef void (*fx_line_fn)(const fx_line *l, void *ud);

/* Attr value text of a jansson value: a string as it is, anything else as
 * compact JSON. In a. */
static char *fx_json_text(cairn_arena *a, json_t *v) {
  if (json_is_string(v)) return cairn_arena_strndup(a, json_string_value(v), json_string_length(v));
  char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
  assert_non_null(s);
  char *c = cairn_arena_strndup(a, s, strlen(s));
  free(s);
  return c;
}

/* The attrs of an object: its members but null ones and the one named skip
 * (may be NULL), in order, at most PB_VIEW_ATTRS_MAX; the array and attrs
 * in a. Sets *out (never NULL) and returns how many. */
static size_t fx_json_attrs(cairn_arena *a, json_t *j, const char *skip, Cairn__Attr ***out) {
  size_t na = json_object_size(j), k = 0;
  Cairn__Attr **ap = cairn_arena_alloc(a, (na ? na : 1) * sizeof(*ap));
  assert_non_null(ap);
  const char *key;
  json_t *val;
  json_object_foreach(j, key, val) {
    if (json_is_null(val) || k == PB_VIEW_ATTRS_MAX || (skip && !strcmp(key, skip))) continue;
    Cairn__Attr *at = cairn_arena_alloc(a, sizeof(*at));
    assert_non_null(at);
    cairn__attr__init(at);
    at->key = (char *)key;
    char *txt = fx_json_text(a, val);
    at->value = (ProtobufCBinaryData){strlen(txt), (uint8_t *)txt};
    ap[k++] = at;
  }
  *out = ap;
  return k;
}

/* fn for every line of dir's .jsonl files that is a JSON object; returns
 * how many (0 when dir does not exist). */
static size_t fx_corpus_dir(const char *dir, Cairn__Source src, Cairn__Format fmt, fx_line_fn fn,
                            void *ud) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  size_t n = 0;
  struct dirent *de;
  cairn_arena a;
  cairn_arena_init(&a, 0);
  while ((de = readdir(d)) != NULL) {
    if (!strstr(de->d_name, ".jsonl")) continue;
    char path[4096 + 256];
    snprintf(path, sizeof(path), "%.4000s/%.255s", dir, de->d_name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
      json_t *j = json_loadb(line, (size_t)len, 0, NULL);
      if (!json_is_object(j)) {
        json_decref(j);
        continue;
      }
      fx_line l = {.j = j, .line = line, .len = (size_t)len, .path = path, .file = de->d_name,
                   .src = src, .fmt = fmt, .index = n, .a = &a};
      fn(&l, ud);
      n++;
      json_decref(j);
      cairn_arena_reset(&a);
    }
    free(line);
    fclose(f);
  }
  closedir(d);
  cairn_arena_fini(&a);
  return n;
}

/* fx_corpus_dir over the four expectation directories of the corpus
 * ($CAIRN_CORPUS, else ../shared/corpus from the build directory); returns
 * the lines seen (0: no corpus, the caller skips). */
static size_t fx_corpus_each(fx_line_fn fn, void *ud) {
  const char *corpus = getenv("CAIRN_CORPUS");
  if (!corpus) corpus = "../shared/corpus";
  static const struct {
    const char *sub;
    Cairn__Source src;
    Cairn__Format fmt;
  } dirs[] = {
      {"expected/cri", CAIRN__SOURCE__SOURCE_CONTAINER, CAIRN__FORMAT__FORMAT_CRI},
      {"expected/docker", CAIRN__SOURCE__SOURCE_CONTAINER, CAIRN__FORMAT__FORMAT_DOCKER},
      {"expected/audit", CAIRN__SOURCE__SOURCE_AUDIT, CAIRN__FORMAT__FORMAT_AUDITD},
      {"expected/k8s-audit", CAIRN__SOURCE__SOURCE_K8S_AUDIT, CAIRN__FORMAT__FORMAT_K8S_AUDIT},
  };
  size_t total = 0;
  for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
    char dir[4096];
    snprintf(dir, sizeof(dir), "%.3000s/%s", corpus, dirs[i].sub);
    total += fx_corpus_dir(dir, dirs[i].src, dirs[i].fmt, fn, ud);
  }
  return total;
}

#endif
