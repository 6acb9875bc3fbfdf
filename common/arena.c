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
  a->spare = NULL;
  a->spare_bytes = 0;
  a->block_size = block_size ? block_size : 64 * 1024;
  a->used = 0;
}

static void free_chain(cairn_arena_block *b) {
  while (b) {
    cairn_arena_block *n = b->next;
    free(b);
    b = n;
  }
}

void cairn_arena_fini(cairn_arena *a) {
  free_chain(a->head);
  free_chain(a->spare);
  a->head = NULL;
  a->spare = NULL;
  a->spare_bytes = 0;
  a->used = 0;
}

void cairn_arena_reset(cairn_arena *a) {
  cairn_arena_block *b = a->head;
  while (b) {
    cairn_arena_block *n = b->next;
    if (b->size == a->block_size &&
        (a->spare_bytes == 0 || a->spare_bytes + b->size <= CAIRN_ARENA_KEEP_MAX)) {
      b->next = a->spare;
      a->spare = b;
      a->spare_bytes += b->size;
    } else {
      free(b);
    }
    b = n;
  }
  a->head = NULL;
  a->used = 0;
}

void *cairn_arena_alloc(cairn_arena *a, size_t n) {
  size_t need = (n + 15) & ~(size_t)15;
  if (need < n) return NULL;
  cairn_arena_block *b = a->head;
  if (!b || b->size - b->off < need) {
    size_t sz = need > a->block_size ? need : a->block_size;
    if (sz > SIZE_MAX - sizeof(*b)) return NULL;
    cairn_arena_block *nb;
    if (sz == a->block_size && a->spare) {
      nb = a->spare;
      a->spare = nb->next;
      a->spare_bytes -= nb->size;
    } else if (!(nb = malloc(sizeof(*nb) + sz))) {
      return NULL;
    }
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
