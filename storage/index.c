/* storage/index.c: byte layout of idx and dedupe keys. One place decides how
 * a value becomes a key (truncation included) so writer and query planner can
 * never disagree: a truncated value only widens the index range, and the
 * query re-checks the full field on every record.
 */
#include <string.h>

#include "storage/internal.h"

size_t sto__idx_key_str(uint8_t *key, uint8_t kind, const char *value) {
  size_t n = value ? strlen(value) : 0;
  if (n > STO_INDEX_VALUE_MAX) n = STO_INDEX_VALUE_MAX;
  key[0] = kind;
  if (n) memcpy(key + 1, value, n);
  return 1 + n;
}

size_t sto__idx_key_source(uint8_t *key, uint32_t source) {
  key[0] = STO__IDX_SOURCE;
  key[1] = (uint8_t)(source >> 24);
  key[2] = (uint8_t)(source >> 16);
  key[3] = (uint8_t)(source >> 8);
  key[4] = (uint8_t)source;
  return 5;
}

void sto__idx_data(uint8_t *data, int64_t time_ns, uint64_t seq) {
  sto__be64_put(data, sto__time_bias(time_ns));
  sto__be64_put(data + 8, seq);
}

size_t sto__dedupe_key(uint8_t *key, const char *instance_id, uint64_t stream) {
  size_t n = instance_id ? strlen(instance_id) : 0;
  if (n > STO__INSTANCE_MAX) return 0;
  if (n) memcpy(key, instance_id, n);
  key[n] = 0;
  sto__be64_put(key + n + 1, stream);
  return n + 9;
}
