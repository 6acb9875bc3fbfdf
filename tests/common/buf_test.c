/* tests/common/buf_test.c: cairn_buf growth/consume and cairn_arena allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"

static void buf_append_grows_and_consume_shifts(void **state) {
  (void)state;
  cairn_buf b = {0};
  for (int i = 0; i < 1000; i++) assert_int_equal(cairn_buf_append(&b, "abcd", 4), CAIRN_OK);
  assert_int_equal(b.len, 4000);
  assert_true(b.cap >= 4000);
  cairn_buf_consume(&b, 3998);
  assert_int_equal(b.len, 2);
  assert_memory_equal(b.ptr, "cd", 2);
  assert_int_equal(cairn_buf_printf(&b, "%s-%d", "x", 300), CAIRN_OK);
  assert_memory_equal(b.ptr, "cdx-300", 7);
  char big[600];
  memset(big, 'q', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  assert_int_equal(cairn_buf_printf(&b, "%s", big), CAIRN_OK);
  assert_int_equal(b.len, 7 + 599);
  cairn_buf_consume(&b, 10000);
  assert_int_equal(b.len, 0);
  cairn_buf_fini(&b);
  assert_null(b.ptr);
}

static void buf_reserve_overflow_is_nomem(void **state) {
  (void)state;
  cairn_buf b = {0};
  assert_int_equal(cairn_buf_reserve(&b, SIZE_MAX), CAIRN_E_NOMEM);
  assert_null(b.ptr);
}

static void arena_allocations_are_aligned_and_distinct(void **state) {
  (void)state;
  cairn_arena a;
  cairn_arena_init(&a, 1024);
  char *p1 = cairn_arena_alloc(&a, 10);
  char *p2 = cairn_arena_alloc(&a, 5000); /* oversized block */
  char *p3 = cairn_arena_alloc(&a, 10);
  assert_non_null(p1);
  assert_non_null(p2);
  assert_non_null(p3);
  assert_int_equal((uintptr_t)p1 % 16, 0);
  assert_int_equal((uintptr_t)p3 % 16, 0);
  memset(p2, 1, 5000);
  memset(p1, 2, 10);
  memset(p3, 3, 10);
  assert_int_equal(p2[4999], 1);
  char *s = cairn_arena_strndup(&a, "hello world", 5);
  assert_string_equal(s, "hello");
  cairn_arena_reset(&a);
  assert_int_equal(a.used, 0);
  assert_non_null(cairn_arena_alloc(&a, 100));
  cairn_arena_fini(&a);
}

/* reset keeps default-size blocks (bounded) and reuses them; oversized
 * blocks are freed; nothing handed out before a reset is handed out twice
 * after it within one round */
static void arena_reset_reuses_blocks_bounded(void **state) {
  (void)state;
  cairn_arena a;
  const size_t bs = 1u << 20;
  cairn_arena_init(&a, bs);
  for (int round = 0; round < 3; round++) {
    unsigned char *seen[40];
    for (int i = 0; i < 40; i++) { /* 40 blocks of 1 MiB: more than the keep cap */
      seen[i] = cairn_arena_alloc(&a, bs - 64);
      assert_non_null(seen[i]);
      memset(seen[i], i, bs - 64);
      for (int j = 0; j < i; j++) assert_ptr_not_equal(seen[i], seen[j]);
    }
    assert_non_null(cairn_arena_alloc(&a, 3 * bs)); /* oversized: freed by reset */
    for (int i = 0; i < 40; i++) assert_int_equal(seen[i][bs - 65], (unsigned char)i);
    cairn_arena_reset(&a);
    assert_int_equal(a.used, 0);
    assert_true(a.spare_bytes >= bs);
    assert_true(a.spare_bytes <= CAIRN_ARENA_KEEP_MAX);
  }
  cairn_arena_fini(&a);
  assert_null(a.spare);
  assert_int_equal(a.spare_bytes, 0);
}

static void err_names_and_errno(void **state) {
  (void)state;
  assert_string_equal(cairn_err_name(CAIRN_E_LIMIT), "CAIRN_E_LIMIT");
  assert_string_equal(cairn_err_str(CAIRN_OK), "success");
  assert_string_equal(cairn_err_name((cairn_err)-999), "CAIRN_E_UNKNOWN");
  assert_int_equal(cairn_err_from_errno(28 /* ENOSPC */), CAIRN_E_NOSPC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(buf_append_grows_and_consume_shifts),
      cmocka_unit_test(buf_reserve_overflow_is_nomem),
      cmocka_unit_test(arena_allocations_are_aligned_and_distinct),
      cmocka_unit_test(arena_reset_reuses_blocks_bounded),
      cmocka_unit_test(err_names_and_errno),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
