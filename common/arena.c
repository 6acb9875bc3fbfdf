/* common/arena.c: singly linked blocks; large requests get a block of their own. */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct cairn_arena_block {
  cairn_arena_block *next;
  size_t size; /* bytes in data */
  size_t off;  /* next free offset in data */
  _Alignas(16) unsigned char data[];
};

void cairn_arena_init(cairn_arena *a, size_t block_size) {
  a->head = NULL;
  a->block_size = block_size ? block_size : 64 * 1024;
  a->used = 0;
}

void cairn_arena_fini(cairn_arena *a) {
  cairn_arena_block *b = a->head;
  while (b) {
    cairn_arena_block *n = b->next;
    free(b);
    b = n;
  }
  a->head = NULL;
  a->used = 0;
}

void cairn_arena_reset(cairn_arena *a) {
  if (!a->head) return;
  /* keep the last block in the chain (the oldest, normally block_size) */
  cairn_arena_block *b = a->head, *keep = NULL;
  while (b) {
    cairn_arena_block *n = b->next;
    if (!n && b->size == a->block_size) {
      keep = b;
    } else {
      free(b);
    }
    b = n;
  }
  a->head = keep;
  if (keep) {
    keep->off = 0;
    keep->next = NULL;
  }
  a->used = 0;
}

void *cairn_arena_alloc(cairn_arena *a, size_t n) {
  size_t need = (n + 15) & ~(size_t)15;
  if (need < n) return NULL;
  cairn_arena_block *b = a->head;
  if (!b || b->size - b->off < need) {
    size_t sz = need > a->block_size ? need : a->block_size;
    if (sz > SIZE_MAX - sizeof(*b)) return NULL;
    cairn_arena_block *nb = malloc(sizeof(*nb) + sz);
    if (!nb) return NULL;
    nb->size = sz;
    nb->off = 0;
    if (b && sz != a->block_size) {
      /* oversized block: insert behind the current one so the current keeps serving */
      nb->next = b->next;
      b->next = nb;
    } else {
      nb->next = b;
      a->head = nb;
    }
    b = nb;
  }
  void *p = b->data + b->off;
  b->off += need;
  a->used += need;
  return p;
}

char *cairn_arena_strndup(cairn_arena *a, const char *s, size_t n) {
  char *p = cairn_arena_alloc(a, n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}
