/* common/arena.h: bump allocator for one unit of work (a batch, a request).
 *
 * Caveats:
 *  - Nothing allocated from an arena is freed on its own; cairn_arena_reset()
 *    or cairn_arena_fini() frees everything at once. Never free() a pointer
 *    obtained here.
 *  - Not thread-safe: one arena per thread or per unit of work.
 */
#ifndef CAIRN_COMMON_ARENA_H
#define CAIRN_COMMON_ARENA_H

#include <stddef.h>

#define CAIRN_ARENA_KEEP_MAX ((size_t)16 << 20)

typedef struct cairn_arena_block cairn_arena_block;

typedef struct cairn_arena {
  cairn_arena_block *head; /* private: current block, owned */
  cairn_arena_block *spare; /* private: default-size blocks kept by reset, owned */
  size_t spare_bytes;       /* private: bytes in spare */
  size_t block_size;       /* private: default block size, bytes */
  size_t used;             /* read-only: bytes handed out since last reset */
} cairn_arena;

/* Initialise with a default block size (0 = 64 KiB). Does not allocate. */
void cairn_arena_init(cairn_arena *a, size_t block_size);

/* Free every block. a may be reused after cairn_arena_init. */
void cairn_arena_fini(cairn_arena *a);

/* Free all allocations. Default-size blocks are kept for reuse (up to
 * CAIRN_ARENA_KEEP_MAX bytes, at least one block), so an arena reset after
 * every batch does not hand its memory back to malloc (and the kernel) only
 * to fault it in again for the next one; oversized blocks are freed. */
void cairn_arena_reset(cairn_arena *a);

/* n bytes aligned to 16, valid until reset/fini. NULL when out of memory. */
void *cairn_arena_alloc(cairn_arena *a, size_t n);

/* Copy of n bytes (plus a NUL terminator); NULL when out of memory. */
char *cairn_arena_strndup(cairn_arena *a, const char *s, size_t n);

#endif
