/* collector/spool.c: the optional on-disk spool (--spool-dir). Encoded
 * batches the collector cannot hand to an aggregator are appended to segment
 * files DIR/<16 hex digits>.spool (0600, in a 0700 directory) and fsynced;
 * they are read back in order and sent before anything newer.
 *
 * Entry layout (little endian), CRC32C over bytes 12.. of the header and the
 * payload:
 *
 *   u32 magic "CSP1" | u32 payload_len | u32 crc32c | u32 records |
 *   u64 raw_size | payload (zstd RecordBatch, exactly as it goes on the wire)
 *
 * Three positions (segment number, byte offset) walk the segments: the
 * published tail (what readers may see), the send cursor and the ack cursor.
 * The writer (col__spool_append, on the thread pool) owns w_fd/w_seg/w_off
 * and only appends beyond the published tail; everything else is loop-only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/internal.h"
#include "common/log.h"

#define SP_MAGIC 0x31505343u /* "CSP1" */
#define SP_HDR 24u
#define SP_MAX_ENTRY                                                           \
  (64u << 20) /* a payload is at most a frame (16 MiB); anything larger is     \
                 garbage */
#define SP_SEG_MIN (64u << 10)
#define SP_SEG_MAX (64u << 20)

typedef struct sp_seg {
  uint64_t no;   /* file name number */
  uint64_t size; /* bytes on disk */
  uint64_t end;  /* readable end: size, or where an unreadable stretch begins */
} sp_seg;

struct col_spool {
  char *dir;
  uint64_t max_bytes, seg_target;
  sp_seg *segs; /* ascending no; the last one may be the write segment */
  size_t n_segs, cap_segs;
  col_spool_pos tail, send, ack;
  uint64_t inflight; /* entries sent since the ack cursor */
  col_spool_stats st;
  /* reader (loop) */
  int r_fd;
  uint64_t r_seg;
  cairn_buf rbuf;
  /* writer (one append at a time, any thread) */
  int w_fd;
  uint64_t w_seg, w_off;
  bool w_new; /* w_seg created by the last append, not yet published */
};

/* ---------------- CRC32C (Castagnoli), slicing by 8 ----------------
 * (byte-at-a-time costs ~1 ms per 200 KB entry; reads are checked on the
 * loop, so this is 8 tables and 8 bytes per step) */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[0][i] = c;
  }
  for (int t = 1; t < 8; t++)
    for (uint32_t i = 0; i < 256; i++)
      crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
                        crc_table[0][crc_table[t - 1][i] & 0xffu];
}

uint32_t col__crc32c(uint32_t crc, const void *data, size_t len) {
  pthread_once(&crc_once, crc_init);
  const uint8_t *p = data;
  crc = ~crc;
  for (; len >= 8; p += 8, len -= 8) {
    uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                         (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                  (uint32_t)p[7] << 24;
    crc = crc_table[7][lo & 0xffu] ^ crc_table[6][(lo >> 8) & 0xffu] ^
          crc_table[5][(lo >> 16) & 0xffu] ^ crc_table[4][lo >> 24] ^
          crc_table[3][hi & 0xffu] ^ crc_table[2][(hi >> 8) & 0xffu] ^
          crc_table[1][(hi >> 16) & 0xffu] ^ crc_table[0][hi >> 24];
  }
  while (len--)
    crc = crc_table[0][(crc ^ *p++) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---------------- helpers ---------------- */

static void seg_path(const col_spool *sp, uint64_t no, char *out, size_t len) {
  snprintf(out, len, "%s/%016" PRIx64 ".spool", sp->dir, no);
}

static int pos_cmp(col_spool_pos a, col_spool_pos b) {
  if (a.seg != b.seg)
    return a.seg < b.seg ? -1 : 1;
  return a.off < b.off ? -1 : a.off > b.off ? 1 : 0;
}

static sp_seg *seg_find(col_spool *sp, uint64_t no) {
  for (size_t i = 0; i < sp->n_segs; i++)
    if (sp->segs[i].no == no)
      return &sp->segs[i];
  return NULL;
}

static cairn_err seg_push(col_spool *sp, uint64_t no, uint64_t size,
                          uint64_t end) {
  if (sp->n_segs == sp->cap_segs) {
    size_t cap = sp->cap_segs ? sp->cap_segs * 2 : 8;
    sp_seg *n = realloc(sp->segs, cap * sizeof(*n));
    if (!n)
      return CAIRN_E_NOMEM;
    sp->segs = n;
    sp->cap_segs = cap;
  }
  sp->segs[sp->n_segs++] = (sp_seg){no, size, end};
  return CAIRN_OK;
}

static void recount_bytes(col_spool *sp) {
  uint64_t b = 0;
  for (size_t i = 0; i < sp->n_segs; i++)
    b += sp->segs[i].size;
  sp->st.bytes = b;
}

static cairn_err pread_all(int fd, void *buf, size_t len, uint64_t off) {
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = pread(fd, p, len, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return CAIRN_E_IO;
    p += n;
    len -= (size_t)n;
    off += (uint64_t)n;
  }
  return CAIRN_OK;
}

static cairn_err pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return CAIRN_E_IO;
    p += n;
    len -= (size_t)n;
    off += (uint64_t)n;
  }
  return CAIRN_OK;
}

static void fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  (void)fsync(fd);
  close(fd);
}

uint64_t col__spool_entry_bytes(size_t payload_len) {
  return SP_HDR + (uint64_t)payload_len;
}

/* ---------------- open: scan, truncate a torn tail ---------------- */

typedef enum scan_res { SCAN_OK, SCAN_SHORT, SCAN_CRC, SCAN_GARBAGE } scan_res;

/* Check the entry at off of fd (file size size): its end in *next. */
static scan_res scan_entry(int fd, uint64_t off, uint64_t size, uint8_t *chunk,
                           size_t chunk_len, uint64_t *next) {
  uint8_t h[SP_HDR];
  if (size - off < SP_HDR)
    return SCAN_SHORT;
  if (pread_all(fd, h, SP_HDR, off) != CAIRN_OK)
    return SCAN_SHORT;
  uint32_t len = get32(h + 4);
  if (get32(h) != SP_MAGIC || len > SP_MAX_ENTRY)
    return SCAN_GARBAGE;
  if (size - off - SP_HDR < len)
    return SCAN_SHORT;
  uint32_t crc = col__crc32c(0, h + 12, SP_HDR - 12);
  for (uint64_t done = 0; done < len;) {
    size_t n = len - done < chunk_len ? (size_t)(len - done) : chunk_len;
    if (pread_all(fd, chunk, n, off + SP_HDR + done) != CAIRN_OK)
      return SCAN_SHORT;
    crc = col__crc32c(crc, chunk, n);
    done += n;
  }
  *next = off + SP_HDR + len;
  return crc == get32(h + 8) ? SCAN_OK : SCAN_CRC;
}

/* Scan one segment: count entries, truncate a torn tail (last segment) or
 * stop at garbage. */
static cairn_err scan_segment(col_spool *sp, uint64_t no, bool last,
                              uint8_t *chunk, size_t chunk_len, char *errbuf,
                              size_t errlen) {
  char path[4096];
  seg_path(sp, no, path, sizeof(path));
  int fd = open(path, O_RDWR | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    snprintf(errbuf, errlen, "--spool-dir: cannot open %s: %s", path,
             strerror(errno));
    if (fd >= 0)
      close(fd);
    return CAIRN_E_IO;
  }
  uint64_t size = (uint64_t)st.st_size, off = 0, entries = 0, corrupt = 0;
  while (off < size) {
    uint64_t next = 0;
    scan_res r = scan_entry(fd, off, size, chunk, chunk_len, &next);
    if (r == SCAN_OK || (r == SCAN_CRC && !(last && next == size))) {
      entries++;
      if (r == SCAN_CRC)
        corrupt++;
      off = next;
      continue;
    }
    if (last) {
      /* a crash interrupted the last append: those batches were never
       * treated as safe, so their lines are still read from the files */
      cairn_log_warn(
          "collector",
          "spool %s: torn entry at offset %" PRIu64 " (%" PRIu64
          " bytes after it), left by a crash during a write; truncating it "
          "(those "
          "lines were not checkpointed and are read again from the log files)",
          path, off, size - off);
      if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0) {
        snprintf(errbuf, errlen,
                 "--spool-dir: cannot truncate the torn tail of %s: %s", path,
                 strerror(errno));
        close(fd);
        return CAIRN_E_IO;
      }
      sp->st.torn++;
      size = off;
    } else {
      cairn_log_error("collector",
                      "spool %s: unreadable data from offset %" PRIu64
                      " (%" PRIu64 " bytes); the batches stored there are "
                                   "lost, the rest of the spool is "
                      "still sent",
                      path, off, size - off);
      sp->st.corrupt++;
    }
    break;
  }
  close(fd);
  if (corrupt)
    cairn_log_error(
        "collector",
        "spool %s: %" PRIu64 " of %" PRIu64 " entries fail their "
        "checksum; they will be skipped and counted, the others are sent",
        path, corrupt, entries);
  if (entries == 0) {
    unlink(path);
    return CAIRN_OK;
  }
  sp->st.batches += entries;
  return seg_push(sp, no, size, off);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

cairn_err col__spool_open(const char *dir, uint64_t max_bytes, col_spool **out,
                          char *errbuf, size_t errlen) {
  *out = NULL;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(errbuf, errlen, "--spool-dir %s: cannot create it: %s", dir,
             strerror(errno));
    return CAIRN_E_CONFIG;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(errbuf, errlen, "--spool-dir %s: not a directory", dir);
    return CAIRN_E_CONFIG;
  }
  if ((st.st_mode & 077) != 0 && chmod(dir, 0700) != 0) {
    snprintf(errbuf, errlen,
             "--spool-dir %s: cannot make it private (0700): %s", dir,
             strerror(errno));
    return CAIRN_E_CONFIG;
  }
  col_spool *sp = calloc(1, sizeof(*sp));
  if (!sp)
    return CAIRN_E_NOMEM;
  sp->dir = strdup(dir);
  sp->max_bytes = max_bytes;
  sp->seg_target = max_bytes / 16;
  if (sp->seg_target < SP_SEG_MIN)
    sp->seg_target = SP_SEG_MIN;
  if (sp->seg_target > SP_SEG_MAX)
    sp->seg_target = SP_SEG_MAX;
  sp->r_fd = sp->w_fd = -1;
  cairn_buf_init(&sp->rbuf);
  uint64_t *nos = NULL;
  size_t n = 0, cap = 0;
  uint8_t *chunk = malloc(64u << 10);
  DIR *d = opendir(dir);
  cairn_err err = CAIRN_OK;
  if (!sp->dir || !chunk) {
    err = CAIRN_E_NOMEM;
    goto fail;
  }
  if (!d) {
    snprintf(errbuf, errlen, "--spool-dir %s: cannot list it: %s", dir,
             strerror(errno));
    err = CAIRN_E_CONFIG;
    goto fail;
  }
  for (struct dirent *de; (de = readdir(d));) {
    char *end;
    if (strlen(de->d_name) != 22 || strcmp(de->d_name + 16, ".spool") != 0)
      continue;
    uint64_t no = strtoull(de->d_name, &end, 16);
    if (end != de->d_name + 16)
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      uint64_t *nn = realloc(nos, cap * sizeof(*nn));
      if (!nn) {
        err = CAIRN_E_NOMEM;
        goto fail;
      }
      nos = nn;
    }
    nos[n++] = no;
  }
  if (n)
    qsort(nos, n, sizeof(*nos), cmp_u64);
  for (size_t i = 0; i < n; i++) {
    err =
        scan_segment(sp, nos[i], i + 1 == n, chunk, 64u << 10, errbuf, errlen);
    if (err != CAIRN_OK)
      goto fail;
  }
  recount_bytes(sp);
  /* new appends always go to a fresh segment */
  sp->w_seg = n ? nos[n - 1] + 1 : 1;
  if (sp->n_segs) {
    sp->ack = sp->send = (col_spool_pos){sp->segs[0].no, 0};
    sp_seg *l = &sp->segs[sp->n_segs - 1];
    sp->tail = (col_spool_pos){l->no, l->end};
  } else {
    sp->ack = sp->send = sp->tail = (col_spool_pos){sp->w_seg, 0};
  }
  closedir(d);
  free(chunk);
  free(nos);
  *out = sp;
  return CAIRN_OK;
fail:
  if (d)
    closedir(d);
  free(chunk);
  free(nos);
  if (err == CAIRN_E_NOMEM)
    snprintf(errbuf, errlen, "out of memory opening the spool");
  col__spool_close(sp);
  return err;
}

void col__spool_close(col_spool *sp) {
  if (!sp)
    return;
  if (sp->r_fd >= 0)
    close(sp->r_fd);
  if (sp->w_fd >= 0)
    close(sp->w_fd);
  cairn_buf_fini(&sp->rbuf);
  free(sp->segs);
  free(sp->dir);
  free(sp);
}

/* ---------------- writer ---------------- */

bool col__spool_fits(const col_spool *sp, uint64_t bytes) {
  return sp->st.bytes + bytes <= sp->max_bytes;
}

cairn_err col__spool_append(col_spool *sp, const col_spool_item *items,
                            size_t n, char *errbuf, size_t errlen) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += col__spool_entry_bytes(items[i].len);
  char path[4096];
  if (sp->w_fd >= 0 && sp->w_off > 0 && sp->w_off + total > sp->seg_target) {
    close(sp->w_fd);
    sp->w_fd = -1;
    sp->w_seg++;
    sp->w_off = 0;
  }
  if (sp->w_fd < 0) {
    seg_path(sp, sp->w_seg, path, sizeof(path));
    sp->w_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sp->w_fd < 0) {
      snprintf(errbuf, errlen, "cannot create %s: %s", path, strerror(errno));
      return CAIRN_E_IO;
    }
    sp->w_off = 0;
    sp->w_new = true;
  }
  uint64_t off = sp->w_off;
  cairn_err err = CAIRN_OK;
  for (size_t i = 0; i < n && err == CAIRN_OK; i++) {
    uint8_t h[SP_HDR];
    put32(h, SP_MAGIC);
    put32(h + 4, (uint32_t)items[i].len);
    put32(h + 12, items[i].records);
    put64(h + 16, items[i].raw_size);
    uint32_t crc = col__crc32c(0, h + 12, SP_HDR - 12);
    put32(h + 8, col__crc32c(crc, items[i].payload, items[i].len));
    err = pwrite_all(sp->w_fd, h, SP_HDR, off);
    if (err == CAIRN_OK)
      err = pwrite_all(sp->w_fd, items[i].payload, items[i].len, off + SP_HDR);
    off += SP_HDR + items[i].len;
  }
  if (err == CAIRN_OK && fdatasync(sp->w_fd) != 0)
    err = CAIRN_E_IO;
  if (err != CAIRN_OK) {
    int e = errno;
    seg_path(sp, sp->w_seg, path, sizeof(path));
    snprintf(errbuf, errlen, "writing %s: %s", path, strerror(e));
    /* nothing of this append counts: cut it off again */
    if (ftruncate(sp->w_fd, (off_t)sp->w_off) != 0) {
      close(sp->w_fd); /* a later append starts a new segment; the scan at the
                          next start drops the tail */
      sp->w_fd = -1;
      sp->w_seg++;
      sp->w_off = 0;
      sp->w_new = false;
    }
    return CAIRN_E_IO;
  }
  if (sp->w_new)
    fsync_dir(sp->dir);
  sp->w_off = off;
  return CAIRN_OK;
}

void col__spool_publish(col_spool *sp, size_t n) {
  sp_seg *l = sp->n_segs ? &sp->segs[sp->n_segs - 1] : NULL;
  if (!l || l->no != sp->w_seg) {
    if (seg_push(sp, sp->w_seg, 0, 0) != CAIRN_OK) {
      /* cannot track it in memory: the data is safe on disk and is found by the
       * next start */
      cairn_log_error(
          "collector",
          "spool: out of memory tracking a segment; it is sent after "
          "the next restart");
      return;
    }
    l = &sp->segs[sp->n_segs - 1];
  }
  l->size = l->end = sp->w_off;
  sp->w_new = false;
  sp->tail = (col_spool_pos){l->no, l->end};
  sp->st.batches += n;
  sp->st.appended += n;
  recount_bytes(sp);
}

/* ---------------- reader, acks ---------------- */

bool col__spool_unsent(const col_spool *sp) {
  return pos_cmp(sp->send, sp->tail) < 0;
}
bool col__spool_empty(const col_spool *sp) {
  return pos_cmp(sp->ack, sp->tail) >= 0;
}
uint64_t col__spool_inflight(const col_spool *sp) { return sp->inflight; }
void col__spool_stats(const col_spool *sp, col_spool_stats *out) {
  *out = sp->st;
}

/* Move p to the start of the next segment when it is at the end of its own. */
static void normalize(col_spool *sp, col_spool_pos *p) {
  for (size_t i = 0; i < sp->n_segs; i++) {
    const sp_seg *s = &sp->segs[i];
    if (s->no < p->seg)
      continue;
    if (s->no > p->seg) { /* its segment is gone: continue at the next one */
      *p = (col_spool_pos){s->no, 0};
      return;
    }
    if (p->off < s->end || i + 1 == sp->n_segs)
      return;
    *p = (col_spool_pos){sp->segs[i + 1].no, 0};
  }
}

cairn_err col__spool_next(col_spool *sp, col_spool_entry *e) {
  char path[4096];
  for (;;) {
    normalize(sp, &sp->send);
    if (!col__spool_unsent(sp))
      return CAIRN_E_AGAIN;
    const sp_seg *s = seg_find(sp, sp->send.seg);
    if (!s)
      return CAIRN_E_AGAIN;
    seg_path(sp, s->no, path, sizeof(path));
    if (sp->r_fd < 0 || sp->r_seg != s->no) {
      if (sp->r_fd >= 0)
        close(sp->r_fd);
      sp->r_fd = open(path, O_RDONLY | O_CLOEXEC);
      if (sp->r_fd < 0 && errno == ENOENT) {
        /* deleted behind our back: its batches are gone, the rest is still sent
         */
        cairn_log_error("collector",
                        "spool: segment %s disappeared; skipping it (%" PRIu64
                        " bytes of batches lost)",
                        path, s->end - sp->send.off);
        sp->st.corrupt++;
        sp->send.off = s->end;
        if (sp->inflight == 0)
          sp->ack = sp->send;
        continue;
      }
      if (sp->r_fd < 0) {
        cairn_log_error("collector", "spool: cannot open %s: %s", path,
                        strerror(errno));
        return CAIRN_E_IO;
      }
      sp->r_seg = s->no;
    }
    uint64_t off = sp->send.off, end = s->end;
    uint8_t h[SP_HDR];
    bool bad =
        end - off < SP_HDR || pread_all(sp->r_fd, h, SP_HDR, off) != CAIRN_OK;
    uint32_t len = bad ? 0 : get32(h + 4);
    if (!bad && (get32(h) != SP_MAGIC || len > SP_MAX_ENTRY ||
                 end - off - SP_HDR < len))
      bad = true;
    if (bad) {
      /* cannot find the next entry: the rest of this segment is skipped */
      cairn_log_error("collector",
                      "spool %s: unreadable data at offset %" PRIu64
                      "; skipping "
                      "the rest of this segment (%" PRIu64 " bytes)",
                      path, off, end - off);
      sp->st.corrupt++;
      if (sp->st.batches)
        sp->st.batches--;
      sp->send.off = end;
      if (sp->inflight == 0)
        sp->ack = sp->send;
      continue;
    }
    cairn_buf_reset(&sp->rbuf);
    if (cairn_buf_reserve(&sp->rbuf, len ? len : 1) != CAIRN_OK)
      return CAIRN_E_NOMEM;
    if (pread_all(sp->r_fd, sp->rbuf.ptr, len, off + SP_HDR) != CAIRN_OK) {
      cairn_log_error("collector", "spool: reading %s at %" PRIu64 ": %s", path,
                      off, strerror(errno));
      return CAIRN_E_IO;
    }
    sp->rbuf.len = len;
    uint32_t crc =
        col__crc32c(col__crc32c(0, h + 12, SP_HDR - 12), sp->rbuf.ptr, len);
    sp->send.off = off + SP_HDR + len;
    if (crc != get32(h + 8)) {
      cairn_log_error("collector",
                      "spool %s: entry at offset %" PRIu64
                      " (%u records) fails its "
                      "checksum; skipping it (counted in "
                      "cairn_collector_spool_corrupt_total), "
                      "the rest is still sent",
                      path, off, get32(h + 12));
      sp->st.corrupt++;
      if (sp->st.batches)
        sp->st.batches--;
      if (sp->inflight == 0)
        sp->ack = sp->send;
      continue;
    }
    e->payload = sp->rbuf.ptr;
    e->len = len;
    e->records = get32(h + 12);
    e->raw_size = get64(h + 16);
    e->end = sp->send;
    sp->inflight++;
    return CAIRN_OK;
  }
}

/* Delete every segment before the ack cursor's. */
static void drop_acked_segments(col_spool *sp) {
  size_t k = 0;
  char path[4096];
  while (k < sp->n_segs && sp->segs[k].no < sp->ack.seg) {
    seg_path(sp, sp->segs[k].no, path, sizeof(path));
    if (sp->r_fd >= 0 && sp->r_seg == sp->segs[k].no) {
      close(sp->r_fd);
      sp->r_fd = -1;
    }
    if (unlink(path) != 0 && errno != ENOENT)
      cairn_log_warn("collector", "spool: cannot delete %s: %s", path,
                     strerror(errno));
    k++;
  }
  if (k) {
    memmove(sp->segs, sp->segs + k, (sp->n_segs - k) * sizeof(*sp->segs));
    sp->n_segs -= k;
    recount_bytes(sp);
  }
}

void col__spool_acked(col_spool *sp, col_spool_pos end) {
  if (pos_cmp(end, sp->ack) > 0)
    sp->ack = end;
  if (sp->inflight)
    sp->inflight--;
  if (sp->st.batches)
    sp->st.batches--;
  sp->st.acked++;
  if (sp->inflight == 0 && pos_cmp(sp->send, sp->ack) > 0)
    sp->ack = sp->send; /* skipped corrupt entries */
  normalize(sp, &sp->ack);
  drop_acked_segments(sp);
}

void col__spool_rewind(col_spool *sp) {
  sp->send = sp->ack;
  sp->inflight = 0;
}

void col__spool_trim(col_spool *sp) {
  if (!col__spool_empty(sp) || sp->inflight)
    return;
  if (sp->n_segs == 0)
    return;
  /* everything acked: delete every segment, the next append starts a new one */
  if (sp->w_fd >= 0) {
    close(sp->w_fd);
    sp->w_fd = -1;
  }
  sp->w_seg = sp->segs[sp->n_segs - 1].no + 1;
  if (sp->w_seg <= sp->tail.seg)
    sp->w_seg = sp->tail.seg + 1;
  sp->w_off = 0;
  sp->ack = sp->send = sp->tail = (col_spool_pos){sp->w_seg, 0};
  drop_acked_segments(sp);
  sp->st.batches = 0;
}
