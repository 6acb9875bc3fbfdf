/* tests/tools/kafka_count.c: a real Kafka consumer (librdkafka) that counts
 * what a topic holds, to verify delivery end to end.
 *
 *   kafka-count --brokers B --topic T [--expect N] [--timeout-ms MS] [--print]
 *               [--list FILE]
 *
 * Reads every partition from the beginning until all partitions reached their
 * end and (with --expect) at least N records were seen, or the timeout passed.
 * A message is one JSON record, or (aggregator --kafka-records-per-message
 * N > 1) JSON lines, one record per line, with headers cairn-first-seq,
 * cairn-last-seq and cairn-count; every line counts as a record and the
 * headers are checked against the lines (a mismatch counts as bad_groups).
 * A message with the header cairn-format: protobuf (aggregator --kafka-format
 * protobuf) is a cairn.RecordBatch of stored records instead: every record
 * counts, with its seq field (a record that does not decode counts in
 * bad_groups). --records-bin FILE then writes the records read, ascending by
 * seq, each once, as `cairn-query export` writes records.bin (seq u64be ||
 * length u64be || bytes), so a test can compare Kafka's copy byte for byte
 * with the store's; two copies of one seq that differ are an error (exit 1).
 * Prints "messages=M records=R distinct_seq=D bad_groups=G offset_gaps=O" (D counts
 * distinct "seq" values, so duplicates show as R > D). Exit 0 when
 * R == D == N (or no --expect given) and G == 0, 1 otherwise, 2 on usage error.
 * --list FILE writes one line per message, "PARTITION OFFSET FIRST LAST LINES"
 * (seqs of its first and last line), to compare with the producer's delivery
 * reports; offsets of a partition that are not read consecutively are
 * reported on stderr as "offset gap" (none on the mock cluster; a real topic
 * with transactions or compaction has some).
 */
#include <librdkafka/rdkafka.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/recview.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool header_is(rd_kafka_message_t *m, const char *name, const char *want) {
  rd_kafka_headers_t *hdrs = NULL;
  const void *v;
  size_t vl;
  return rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
         rd_kafka_header_get_last(hdrs, name, &v, &vl) == RD_KAFKA_RESP_ERR_NO_ERROR &&
         vl == strlen(want) && memcmp(v, want, vl) == 0;
}

/* One varint of p[*i..n); false when truncated or longer than 10 bytes. */
static bool varint(const uint8_t *p, size_t n, size_t *i, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned k = 0; k < 10 && *i < n; k++) {
    uint8_t b = p[(*i)++];
    v |= (uint64_t)(b & 0x7f) << (7 * k);
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* The seqs of a protobuf value (a cairn.RecordBatch: field 1, length-
 * delimited, once per record) through add(seq); false when it does not
 * decode. */
static bool batch_seqs(const uint8_t *p, size_t n,
                       void (*add)(uint64_t, const uint8_t *, size_t, void *), void *ud) {
  static pb_rec_view v; /* large; this tool is single-threaded */
  size_t i = 0;
  while (i < n) {
    uint64_t key, len;
    if (!varint(p, n, &i, &key) || key != ((1u << 3) | 2u) || !varint(p, n, &i, &len) ||
        len > n - i)
      return false;
    Cairn__Record *r = NULL;
    if (pb_view_parse(p + i, (size_t)len, &v)) {
      add(v.seq, p + i, (size_t)len, ud);
    } else if ((r = cairn__record__unpack(NULL, (size_t)len, p + i)) != NULL) {
      add(r->seq, p + i, (size_t)len, ud);
      cairn__record__free_unpacked(r, NULL);
    } else {
      return false;
    }
    i += (size_t)len;
  }
  return true;
}

/* --records-bin: every protobuf record read (seq, copy of its bytes) */
typedef struct bin_rec {
  uint64_t seq;
  uint8_t *p;
  size_t n;
} bin_rec;
static bin_rec *bins;
static size_t n_bins, cap_bins;
static bool want_bins;

static void *xrealloc(void *p, size_t n) {
  void *np = realloc(p, n);
  if (!np) {
    fprintf(stderr, "kafka-count: out of memory\n");
    exit(2);
  }
  return np;
}

static int cmp_bin(const void *a, const void *b) {
  uint64_t x = ((const bin_rec *)a)->seq, y = ((const bin_rec *)b)->seq;
  return x < y ? -1 : x > y;
}

static void put_be64(uint8_t *b, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) b[i] = (uint8_t)v;
}

/* Write bins[] to path as records.bin; false (and a message) when a seq was
 * read twice with different bytes or the file cannot be written. */
static bool write_bins(const char *path) {
  qsort(bins, n_bins, sizeof(*bins), cmp_bin);
  FILE *f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "kafka-count: cannot write %s\n", path);
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < n_bins; i++) {
    if (i > 0 && bins[i].seq == bins[i - 1].seq) {
      if (bins[i].n != bins[i - 1].n || memcmp(bins[i].p, bins[i - 1].p, bins[i].n) != 0) {
        fprintf(stderr, "kafka-count: seq %llu read twice with different bytes\n",
                (unsigned long long)bins[i].seq);
        ok = false;
      }
      continue;
    }
    uint8_t h[16];
    put_be64(h, bins[i].seq);
    put_be64(h + 8, bins[i].n);
    if (fwrite(h, 1, 16, f) != 16 || fwrite(bins[i].p, 1, bins[i].n, f) != bins[i].n) ok = false;
  }
  if (fclose(f) != 0) ok = false;
  return ok;
}

typedef struct seq_acc {
  uint64_t **seqs;
  size_t *nseq, *cap;
  uint64_t n, first, last;
  long long *records;
} seq_acc;

static void acc_add(uint64_t seq, const uint8_t *p, size_t n, void *ud) {
  seq_acc *a = ud;
  if (want_bins) {
    if (n_bins == cap_bins) {
      cap_bins = cap_bins ? cap_bins * 2 : 4096;
      bins = xrealloc(bins, cap_bins * sizeof(*bins));
    }
    uint8_t *copy = xrealloc(NULL, n ? n : 1);
    memcpy(copy, p, n);
    bins[n_bins++] = (bin_rec){seq, copy, n};
  }
  if (*a->nseq == *a->cap) {
    *a->cap *= 2;
    uint64_t *ns = realloc(*a->seqs, *a->cap * sizeof(*ns));
    if (!ns) {
      fprintf(stderr, "kafka-count: out of memory\n");
      exit(2);
    }
    *a->seqs = ns;
  }
  (*a->seqs)[(*a->nseq)++] = seq;
  if (a->n == 0) a->first = seq;
  a->last = seq;
  a->n++;
  (*a->records)++;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *brokers = NULL, *topic = NULL;
  long long expect = -1, timeout_ms = 60000;
  bool print = false;
  const char *list_path = NULL, *bin_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--brokers") && i + 1 < argc) brokers = argv[++i];
    else if (!strcmp(argv[i], "--topic") && i + 1 < argc) topic = argv[++i];
    else if (!strcmp(argv[i], "--expect") && i + 1 < argc) expect = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) timeout_ms = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--print")) print = true;
    else if (!strcmp(argv[i], "--list") && i + 1 < argc) list_path = argv[++i];
    else if (!strcmp(argv[i], "--records-bin") && i + 1 < argc) bin_path = argv[++i];
    else brokers = NULL, i = argc;
  }
  want_bins = bin_path != NULL;
  if (!brokers || !topic) {
    fprintf(stderr, "usage: kafka-count --brokers B --topic T [--expect N] [--timeout-ms MS] "
                    "[--print] [--list FILE] [--records-bin FILE]\n");
    return 2;
  }
  char errstr[512], group[64];
  snprintf(group, sizeof(group), "kafka-count-%ld-%d", (long)time(NULL), rand());
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *kv[][2] = {{"bootstrap.servers", brokers}, {"group.id", group},
                         {"auto.offset.reset", "earliest"}, {"enable.partition.eof", "true"},
                         {"enable.auto.commit", "false"}, {"log_level", "3"},
                         {"fetch.wait.max.ms", "10"}};
  for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
    if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "kafka-count: %s\n", errstr);
      return 2;
    }
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (!rk) {
    fprintf(stderr, "kafka-count: %s\n", errstr);
    return 2;
  }
  rd_kafka_poll_set_consumer(rk);
  /* assign every partition from the beginning (no group rebalance: faster and
   * independent of the group coordinator) */
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  int assigned = 0;
  for (int tries = 0; tries < 50; tries++) {
    err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    if (!err && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) break;
    if (!err) rd_kafka_metadata_destroy(md);
    md = NULL;
  }
  if (!md) {
    fprintf(stderr, "kafka-count: no metadata for topic %s: %s\n", topic, rd_kafka_err2str(err));
    return 2;
  }
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
  for (int i = 0; i < md->topics[0].partition_cnt; i++)
    rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  assigned = parts->cnt;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  err = rd_kafka_assign(rk, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  if (err) {
    fprintf(stderr, "kafka-count: assign %s: %s\n", topic, rd_kafka_err2str(err));
    return 2;
  }
  FILE *list = NULL;
  if (list_path && !(list = fopen(list_path, "w"))) {
    fprintf(stderr, "kafka-count: cannot write --list %s\n", list_path);
    return 2;
  }
  size_t cap = 1 << 16, nseq = 0;
  uint64_t *seqs = malloc(cap * sizeof(*seqs));
  long long messages = 0, records = 0, bad_groups = 0;
  int64_t deadline = now_ms() + timeout_ms;
  /* at_eof[p]: partition p reached its end and got no message since */
  bool at_eof[1024] = {false};
  int64_t next_off[1024]; /* offset expected next per partition; -1 = none read yet */
  for (int i = 0; i < 1024; i++) next_off[i] = -1;
  long long offset_gaps = 0;
  int eof = 0;
  while (now_ms() < deadline) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->partition >= 0 && m->partition < 1024 && !at_eof[m->partition]) {
        at_eof[m->partition] = true;
        eof++;
      }
      rd_kafka_message_destroy(m);
      if (assigned > 0 && eof >= assigned && (expect < 0 || records >= expect)) break;
      continue;
    }
    if (m->err) {
      fprintf(stderr, "kafka-count: %s\n", rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      continue;
    }
    messages++;
    if (m->partition >= 0 && m->partition < 1024 && at_eof[m->partition]) {
      at_eof[m->partition] = false;
      eof--;
    }
    if (m->partition >= 0 && m->partition < 1024) {
      int64_t want = next_off[m->partition] < 0 ? 0 : next_off[m->partition];
      if (m->offset != want && offset_gaps++ < 20)
        fprintf(stderr, "kafka-count: offset gap in partition %d: read offset %lld after %lld\n",
                (int)m->partition, (long long)m->offset, (long long)want - 1);
      next_off[m->partition] = m->offset + 1;
    }
    if (print) printf("%.*s\n", (int)m->len, (const char *)m->payload);
    /* every line of the value is a record; its "seq":N is counted */
    const char *p = m->payload, *end = p + m->len;
    uint64_t n_lines = 0, first = 0, last = 0;
    if (header_is(m, "cairn-format", "protobuf")) {
      seq_acc acc = {.seqs = &seqs, .nseq = &nseq, .cap = &cap, .records = &records};
      if (!batch_seqs(m->payload, m->len, acc_add, &acc) && bad_groups++ < 5)
        fprintf(stderr, "kafka-count: message at partition %d offset %lld: not a cairn.RecordBatch\n",
                (int)m->partition, (long long)m->offset);
      n_lines = acc.n;
      first = acc.first;
      last = acc.last;
      p = end; /* no lines to read */
    }
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      const char *le = nl ? nl : end;
      if (le > p) {
        n_lines++;
        records++;
        const char *k = memmem(p, (size_t)(le - p), "\"seq\":", 6);
        if (k) {
          uint64_t v = 0;
          for (const char *d = k + 6; d < le && *d >= '0' && *d <= '9'; d++)
            v = v * 10 + (uint64_t)(*d - '0');
          if (nseq == cap) {
            cap *= 2;
            seqs = realloc(seqs, cap * sizeof(*seqs));
          }
          seqs[nseq++] = v;
          if (n_lines == 1) first = v;
          last = v;
        }
      }
      p = le + 1;
    }
    if (list)
      fprintf(list, "%d %lld %llu %llu %llu\n", (int)m->partition, (long long)m->offset,
              (unsigned long long)first, (unsigned long long)last, (unsigned long long)n_lines);
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      uint64_t hv[3];
      const char *names[3] = {"cairn-first-seq", "cairn-last-seq", "cairn-count"};
      bool ok = true;
      for (int i = 0; i < 3 && ok; i++) {
        const void *v;
        size_t vl;
        char buf[32];
        ok = rd_kafka_header_get_last(hdrs, names[i], &v, &vl) == RD_KAFKA_RESP_ERR_NO_ERROR &&
             vl > 0 && vl < sizeof(buf);
        if (ok) {
          memcpy(buf, v, vl);
          buf[vl] = 0;
          hv[i] = strtoull(buf, NULL, 10);
        }
      }
      if (!ok || hv[0] != first || hv[1] != last || hv[2] != n_lines) {
        if (bad_groups++ < 5)
          fprintf(stderr, "kafka-count: message at partition %d offset %lld: headers do not match "
                          "its %llu lines (first %llu, last %llu)\n",
                  (int)m->partition, (long long)m->offset, (unsigned long long)n_lines,
                  (unsigned long long)first, (unsigned long long)last);
      }
    }
    rd_kafka_message_destroy(m);
  }
  qsort(seqs, nseq, sizeof(*seqs), cmp_u64);
  size_t distinct = 0;
  for (size_t i = 0; i < nseq; i++)
    if (i == 0 || seqs[i] != seqs[i - 1]) distinct++;
  printf("messages=%lld records=%lld distinct_seq=%zu bad_groups=%lld offset_gaps=%lld\n", messages,
         records, distinct, bad_groups, offset_gaps);
  free(seqs);
  if (list && fclose(list) != 0)
    fprintf(stderr, "kafka-count: writing --list %s failed\n", list_path);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  bool bins_ok = !bin_path || write_bins(bin_path);
  for (size_t i = 0; i < n_bins; i++) free(bins[i].p);
  free(bins);
  if (bad_groups || !bins_ok) return 1;
  if (expect >= 0 && !(records == expect && (long long)distinct == expect)) return 1;
  return 0;
}
