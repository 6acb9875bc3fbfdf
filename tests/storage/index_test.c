/* tests/storage/index_test.c: the idx and dedupe key encodings: byte order of
 * the encoded (time, seq) equals numeric order (signed time included), and
 * index values are cut to STO_INDEX_VALUE_MAX the same way every time.
 */
#include "tests/storage/sto_test_util.h"
#include "storage/internal.h"

static void idx_data_byte_order_is_numeric_order(void **state) {
  (void)state;
  const int64_t times[] = {INT64_MIN, INT64_MIN + 1, -1000000000000LL, -1, 0, 1,
                           1700000000000000000LL, INT64_MAX};
  const uint64_t seqs[] = {0, 1, 255, 256, UINT64_MAX};
  uint8_t prev[STO__IDX_DATA], cur[STO__IDX_DATA];
  bool first = true;
  for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
    for (size_t j = 0; j < sizeof(seqs) / sizeof(seqs[0]); j++) {
      sto__idx_data(cur, times[i], seqs[j]);
      if (!first) assert_true(memcmp(prev, cur, STO__IDX_DATA) < 0);
      assert_int_equal(sto__time_unbias(sto__be64_get(cur)), times[i]);
      assert_int_equal(sto__be64_get(cur + 8), seqs[j]);
      memcpy(prev, cur, sizeof(cur));
      first = false;
    }
  }
}

static void idx_key_truncates_long_values_consistently(void **state) {
  (void)state;
  char a[400], b[400];
  memset(a, 'v', sizeof(a) - 1);
  a[sizeof(a) - 1] = 0;
  memcpy(b, a, sizeof(b));
  b[300] = 'w'; /* differs only past the cut */
  uint8_t ka[STO__IDX_KEY_MAX], kb[STO__IDX_KEY_MAX];
  size_t la = sto__idx_key_str(ka, STO__IDX_POD, a);
  size_t lb = sto__idx_key_str(kb, STO__IDX_POD, b);
  assert_int_equal(la, 1 + STO_INDEX_VALUE_MAX);
  assert_int_equal(la, lb);
  assert_memory_equal(ka, kb, la);
  assert_int_equal(ka[0], 'p');
  assert_int_equal(sto__idx_key_str(ka, STO__IDX_TIME, NULL), 1);
  assert_int_equal(sto__idx_key_str(ka, STO__IDX_NODE, "n1"), 3);
  assert_memory_equal(ka, "hn1", 3);
}

static void dedupe_key_rejects_long_instance_and_separates_streams(void **state) {
  (void)state;
  uint8_t k1[STO__INSTANCE_MAX + 9], k2[STO__INSTANCE_MAX + 9];
  size_t l1 = sto__dedupe_key(k1, "abc", 1), l2 = sto__dedupe_key(k2, "abc", 256);
  assert_int_equal(l1, 12);
  assert_int_equal(l2, 12);
  assert_true(memcmp(k1, k2, l1) < 0);
  assert_int_equal(k1[3], 0);
  char lng[STO__INSTANCE_MAX + 2];
  memset(lng, 'i', sizeof(lng) - 1);
  lng[sizeof(lng) - 1] = 0;
  assert_int_equal(sto__dedupe_key(k1, lng, 1), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(idx_data_byte_order_is_numeric_order),
      cmocka_unit_test(idx_key_truncates_long_values_consistently),
      cmocka_unit_test(dedupe_key_rejects_long_instance_and_separates_streams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
