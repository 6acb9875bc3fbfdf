/* collector/internal.h: declarations shared by the collector's runtime files
 * (checkpoint.c, tail.c, batch.c, discover.c, ship.c, collector.c). Nothing
 * outside collector/ (except tests/collector) includes this.
 *
 * Object graph: col_collector owns the file list (col_file, refcounted because
 * unacked batches point at them), one open col_batch, the queue of closed,
 * unacked batches in creation order, the checkpoint store and the connection.
 */
#ifndef CAIRN_COLLECTOR_INTERNAL_H
#define CAIRN_COLLECTOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "collector/collector.h"
#include "collector/parse.h"
#include "common/arena.h"
#include "common/buf.h"
#include "proto/proto.h"
#include "common/log.h"
#include "proto/http.h"
#include "proto/pack.h"
#include "proto/tls.h"

#define COL_FP_MAX 64u            /* bytes of a file's fingerprint */
#define COL_READ_CHUNK (256u << 10) /* bytes per uv_fs_read */
#define COL_EVENT_TIMEOUT_NS 2000000000LL /* idle at EOF before pending audit events are emitted */

/* ======================= checkpoint.c (LMDB state) ======================= */

typedef struct col_ckpt col_ckpt;

/* One file's checkpoint: where re-reading the file loses nothing. */
typedef struct col_ckpt_entry {
  uint64_t dev, ino;        /* key */
  uint64_t offset;          /* bytes acked (a parser safe offset) */
  uint64_t file_stream;     /* dedupe stream id of this file generation */
  uint64_t btime;           /* ns since the epoch the inode was born (statx), 0 = unknown */
  uint32_t fp_len;          /* bytes in fp */
  uint8_t fp[COL_FP_MAX];   /* first bytes of the file when first seen */
  char *path;               /* owned by the store; last path seen */
} col_ckpt_entry;

/* Open (creating) DIR/checkpoints.mdb, load every entry into memory and
 * read or create the instance id (RAND_bytes, 128 bit). Synchronous: call
 * before the loop runs. CAIRN_E_STORAGE / CAIRN_E_CONFIG with errbuf set. */
CAIRN_MUST_CHECK cairn_err col__ckpt_open(const char *dir, col_ckpt **out, char *errbuf,
                                          size_t errlen);
/* 32 lower-case hex chars, valid for the store's life. */
const char *col__ckpt_instance_id(const col_ckpt *ck);
/* Borrowed entry for (dev, ino) or NULL; valid until the next put/del. */
const col_ckpt_entry *col__ckpt_get(const col_ckpt *ck, uint64_t dev, uint64_t ino);
/* Insert or replace (path copied); marks it for the next flush. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__ckpt_put(col_ckpt *ck, const col_ckpt_entry *e);
/* Forget (dev, ino) at the next flush. */
void col__ckpt_del(col_ckpt *ck, uint64_t dev, uint64_t ino);
/* Number of entries in memory. */
size_t col__ckpt_count(const col_ckpt *ck);
/* Changes not yet committed? A flush job running? */
bool col__ckpt_dirty(const col_ckpt *ck);
bool col__ckpt_busy(const col_ckpt *ck);

typedef void (*col_ckpt_flush_cb)(col_ckpt *ck, cairn_err err, const char *why, void *ud);
/* Commit all pending changes in one write txn on the threadpool
 * (uv_queue_work). Returns CAIRN_E_AGAIN (a job runs already) or
 * CAIRN_E_NOMEM without calling cb; otherwise cb is called exactly once on
 * the loop (err CAIRN_OK or CAIRN_E_STORAGE; failed changes stay pending).
 * With nothing dirty, cb still runs (from the threadpool round trip). */
CAIRN_MUST_CHECK cairn_err col__ckpt_flush_start(col_ckpt *ck, uv_loop_t *loop,
                                                 col_ckpt_flush_cb cb, void *ud);
/* Same commit, synchronously on the calling thread (tests, final shutdown
 * after the loop stopped). CAIRN_E_STORAGE with errbuf. */
CAIRN_MUST_CHECK cairn_err col__ckpt_flush_sync(col_ckpt *ck, char *errbuf, size_t errlen);
/* Close the store (must not be busy). NULL is fine. */
void col__ckpt_close(col_ckpt *ck);

/* Drop entries that no scan has seen for max_age_ns (files deleted or moved
 * out of every pattern while untracked); live files are kept by
 * col__ckpt_touch. Returns the number dropped. */
size_t col__ckpt_gc(col_ckpt *ck, int64_t now_ns, int64_t max_age_ns);
/* Mark (dev, ino) as seen at now_ns (no-op without an entry). */
void col__ckpt_touch(col_ckpt *ck, uint64_t dev, uint64_t ino, int64_t now_ns);

/* 64-bit stream id: SHA-256 over (dev, ino, birth time, fingerprint, salt),
 * first 8 bytes. Deterministic, so a file re-read after a crash that lost its
 * checkpoint gets the same id and the aggregator dedupes what it already has. */
uint64_t col__stream_id(uint64_t dev, uint64_t ino, uint64_t btime, const uint8_t *fp,
                        size_t fp_len, uint64_t salt);

/* Does a stored fingerprint (fp, fp_len) identify a file whose first bytes
 * are cur (cur_len)? True when fp is a non-empty prefix of cur. */
bool col__fp_match(const uint8_t *fp, size_t fp_len, const uint8_t *cur, size_t cur_len);

/* ======================= tail.c (one file reader) ======================= */

typedef struct col_tail col_tail;

/* A file's identity: (dev, ino) from fstat of the open descriptor, the birth
 * time, and the fingerprint: its first bytes up to and including the first
 * '\n', at most COL_FP_MAX. A fingerprint is complete once it ends in '\n'
 * or is COL_FP_MAX long; the tail reports on_open only then (an empty file
 * or one without a complete first line waits), so identity never changes
 * while a file generation lives. */
typedef struct col_tail_info {
  uint64_t dev, ino;
  uint64_t size;
  uint64_t nlink;
  uint64_t btime; /* ns since the epoch, 0 = unknown */
  uint8_t fp[COL_FP_MAX];
  size_t fp_len;
} col_tail_info;

typedef struct col_tail_cbs {
  /* File opened and fingerprinted. The owner must call col__tail_start() or
   * col__tail_close() (now or later). */
  void (*on_open)(col_tail *t, const col_tail_info *info, void *ud);
  /* One complete line (without '\n'): off = file offset of its first byte,
   * line_no 1-based from where reading started. Bytes borrowed. full_len is
   * the line's real length: more than len when it exceeded max_line and the
   * rest was skipped (memory stays bounded by max_line). */
  void (*on_line)(col_tail *t, const uint8_t *line, size_t len, size_t full_len, uint64_t off,
                  uint64_t line_no, void *ud);
  /* A new generation replaced the content: the file shrank below the read
   * position, or its first bytes no longer match the fingerprint (truncated
   * and rewritten past the old position between two looks). info holds the
   * new fingerprint; old_offset is where complete lines of the old
   * generation ended (an incomplete line after it is dropped). Reading
   * restarts at 0 (line 1) after this returns. */
  void (*on_truncate)(col_tail *t, const col_tail_info *info, uint64_t old_offset, void *ud);
  /* A poll found no new data (called at every such poll, --read-interval).
   * first: first time since data arrived. gone: no links left (deleted). */
  void (*on_eof)(col_tail *t, bool first, bool gone, void *ud);
  /* open/read/stat failed (what names the step), or the path is not a
   * regular file (err CAIRN_E_INVAL, what "not a regular file: <kind>").
   * The owner should close. */
  void (*on_error)(col_tail *t, cairn_err err, const char *what, int uv_code, void *ud);
  /* Last callback; t is freed right after it returns. */
  void (*on_close)(col_tail *t, void *ud);
  /* Optional: opts.watch was set but the inotify watch could not be added
   * (uv_code: UV_ENOSPC at fs.inotify.max_user_watches, UV_ENOSYS ...); the
   * file is read on the poll alone. */
  void (*on_nowatch)(col_tail *t, int uv_code, void *ud);
} col_tail_cbs;

typedef struct col_tail_opts {
  uint64_t poll_ms;  /* growth poll period (0 = 250) */
  size_t max_line;   /* bytes of one line kept; the rest is skipped (0 = 1 MiB + 64 KiB) */
  size_t chunk;      /* bytes per read (0 = COL_READ_CHUNK) */
  bool watch;        /* inotify on the open inode: look within ~5 ms of a write */
} col_tail_opts;

/* Start opening path (uv_fs_open with O_NONBLOCK, so a FIFO never blocks a
 * threadpool thread; fstat; fingerprint read). Errors later go to on_error.
 * CAIRN_E_NOMEM when nothing was started. */
CAIRN_MUST_CHECK cairn_err col__tail_open(uv_loop_t *loop, const char *path,
                                          const col_tail_opts *o, const col_tail_cbs *cbs,
                                          void *ud, col_tail **out);
/* Begin reading at offset (after on_open). */
void col__tail_start(col_tail *t, uint64_t offset);
/* Stop issuing reads (the one in flight completes) / resume. */
void col__tail_pause(col_tail *t);
void col__tail_resume(col_tail *t);
/* At EOF (or still waiting for a complete fingerprint) and nothing in flight. */
bool col__tail_idle(const col_tail *t);
/* Look for growth now instead of at the next poll (e.g. after a rotation). */
void col__tail_kick(col_tail *t);
/* The open descriptor, -1 before it is open or after close. */
int col__tail_fd(const col_tail *t);
/* Identity as of the last fstat (valid after on_open). */
const col_tail_info *col__tail_info(const col_tail *t);
/* Offset just after the last complete line delivered. */
uint64_t col__tail_offset(const col_tail *t);
/* Bytes of an incomplete last line held back. */
size_t col__tail_partial(const col_tail *t);
/* Asynchronous close: in-flight requests finish, then on_close. Idempotent. */
void col__tail_close(col_tail *t);
const char *col__tail_path(const col_tail *t);

/* ======================= batch.c (record batches) ======================= */

typedef struct col_file col_file;

/* Per-file checkpoint candidate of a batch. */
typedef struct col_batch_file {
  col_file *f;           /* holds one ref (col__file_ref) */
  uint64_t file_stream;  /* stream id the offset belongs to */
  uint64_t safe_offset;  /* col_parser_safe_offset after its last record here */
} col_batch_file;

typedef enum col_batch_state {
  COL_BATCH_OPEN = 0,
  COL_BATCH_ENCODING, /* closed, queued for / in pb_batch_encode */
  COL_BATCH_READY,    /* payload built, waiting to be sent */
  COL_BATCH_SENT,     /* sent on the current connection, waiting for its Ack */
  COL_BATCH_SPOOLING, /* being appended to the spool (--spool-dir); never sent meanwhile */
  COL_BATCH_ACKED,    /* Ack OK; checkpoints applied when all before it are acked */
} col_batch_state;

typedef struct col_batch {
  uint64_t id;                /* creation order, 1-based */
  col_batch_state state;
  cairn_arena arena;          /* records and message copies; reset after encoding */
  Cairn__Record **recs;       /* owned array, n used / cap */
  size_t n, cap;
  uint64_t raw_bytes;         /* message + attrs bytes (budget accounting) */
  col_batch_file *files;      /* owned array */
  size_t n_files, cap_files;
  cairn_buf payload;          /* zstd(RecordBatch) once encoded */
  uint64_t raw_size;          /* uncompressed RecordBatch bytes */
  uint64_t seq;               /* Batch.seq of the last send */
  int64_t opened_ns;          /* monotonic, first record */
  cairn_err encode_err;
  struct col_redactor *redact; /* borrowed, NULL = none: masks secrets in col__batch_add */
  struct col_batch *next;     /* queue link (private) */
} col_batch;

/* Fields of a record that come from its file (borrowed until the batch is freed). */
typedef struct col_rec_src {
  const char *node, *path;
  const col_meta *meta;
  Cairn__Format format;
  uint64_t file_stream;
} col_rec_src;

/* New empty batch with id. NULL on OOM. */
col_batch *col__batch_new(uint64_t id);
/* Free a batch and drop its file refs. NULL is fine. */
void col__batch_free(col_batch *b);
/* Append a record built from r (message and attrs copied into the arena;
 * src strings borrowed), masked by b->redact first (collector/redact.h).
 * CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__batch_add(col_batch *b, const col_rec_src *src, const col_rec *r);
/* Remember f's safe offset in this batch (takes a ref on first sight). CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__batch_note_file(col_batch *b, col_file *f, uint64_t file_stream,
                                                uint64_t safe_offset);
/* Has the batch reached max_records or max_bytes? */
bool col__batch_full(const col_batch *b, uint64_t max_records, uint64_t max_bytes);
/* Encode recs into payload with codec (any thread, batch not touched
 * elsewhere meanwhile), then drop the records' arena. CAIRN_E_NOMEM/ZSTD. */
CAIRN_MUST_CHECK cairn_err col__batch_encode(col_batch *b, pb_codec *codec);
/* col__batch_encode with the hand-written encoder (proto/pack.h): the same
 * payload bytes, about a third less CPU. pk is used by one call at a time. */
CAIRN_MUST_CHECK cairn_err col__batch_encode_pack(col_batch *b, pb_pack *pk);

/* ================= files.c / discover.c / collector.c ================= */

/* How a file came to be opened (decides where reading starts). */
typedef enum col_open_kind {
  COL_OPEN_LIVE = 0, /* matched by an --input glob */
  COL_OPEN_INITIAL,  /* matched by the first scan: --start-position applies without a checkpoint */
  COL_OPEN_RESUME,   /* a rotated name with an unfinished checkpoint (drain after a restart) */
  COL_OPEN_PROBE,    /* a rotated name never seen before: decided by its fingerprint */
} col_open_kind;

struct col_file {
  col_collector *col;   /* owner */
  col_tail *tail;       /* NULL once closed */
  col_parser *parser;   /* owned */
  const col_input *input;
  char *path;           /* owned; the name records carry (where the stream was found) */
  char *cur_path;       /* owned; current name when it differs (rotated, moved), else NULL */
  col_meta meta;
  uint64_t dev, ino;    /* identity from stat(2) (symlinks followed) */
  uint64_t btime;       /* birth time, ns, 0 = unknown */
  uint64_t stream_id;   /* current file_stream (0 while the generation is not identified) */
  uint64_t prev_stream; /* stream of the generation before a truncation (salt) */
  uint8_t fp[COL_FP_MAX];
  size_t fp_len;
  uint64_t scan_gen;    /* last discovery scan that saw it */
  uint64_t big_lines;   /* lines longer than --max-record-size */
  col_open_kind kind;
  int refs;             /* 1 for the file list + 1 per batch holding it */
  bool started;         /* reading (on_open done) */
  bool regen;           /* truncated: the next on_open identifies a new generation */
  bool rotated;         /* now only under a rotated name: drain, close after --rotate-wait idle */
  bool vanished;        /* no longer matched by any glob: drain, then close */
  bool gone;            /* deleted (nlink 0) */
  bool closing;         /* tail close requested */
  bool at_eof;          /* last poll found nothing new */
  bool emitted;         /* scratch: records emitted during one col_parser_line */
  bool watched;         /* counted in col->n_file_watches */
  int64_t eof_since_ns; /* monotonic: when the current idle stretch at EOF began */
  col_file *prev, *next; /* list (private) */
};

/* A file generation that ended by truncation (copytruncate). Its last lines
 * may be unread and only in the copy the rotation made; a rotated file that
 * appears in the same directory with the same fingerprint continues this
 * stream from offset with this parser. Kept for COL_ORPHAN_TTL_NS. */
typedef struct col_orphan {
  char *dir;              /* owned; directory of the truncated file */
  char *path;             /* owned; the stream's record path */
  const col_input *input;
  col_parser *parser;     /* owned; partial records still pending */
  col_meta meta;
  uint64_t stream_id, offset; /* offset: end of the complete lines we read */
  uint8_t fp[COL_FP_MAX];
  size_t fp_len;
  int64_t since_ns;       /* monotonic */
} col_orphan;

#define COL_MAX_ORPHANS 16
#define COL_ORPHAN_TTL_NS (30LL * 1000000000LL)
#define COL_DEFER_TTL_NS (30LL * 1000000000LL)
#define COL_RETRY_NS (30LL * 1000000000LL)
#define COL_CKPT_GC_NS (600LL * 1000000000LL)
/* inotify watches on followed files (--read-on-change); more files are read
 * on the --read-interval poll, leaving fs.inotify.max_user_watches (8192 on
 * older kernels, per user) to other programs and the directory watches */
#define COL_MAX_FILE_WATCHES 4096u

void col__file_ref(col_file *f);
void col__file_unref(col_file *f);
/* Current name (cur_path or path). */
const char *col__file_name(const col_file *f);

/* Start following path (found by a scan as hit; kind says why). The file is
 * added to the list at once; reading begins when its fingerprint is
 * complete. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__file_open(col_collector *c, const col_input *in, const char *path,
                                          uint64_t dev, uint64_t ino, col_open_kind kind,
                                          col_file **out);
/* No glob matches the file any more: drain it, close after --rotate-wait. */
void col__file_vanished(col_file *f);
/* Seen under a rotated name (renamed away by logrotate/kubelet). */
void col__file_rotated(col_file *f, const char *new_path);
/* Begin closing the tail. */
void col__file_close(col_file *f);
/* Drop every tracked file (begin closing tails) and every orphan. */
void col__files_close_all(col_collector *c);
/* Forget orphans older than COL_ORPHAN_TTL_NS. */
void col__orphans_expire(col_collector *c, int64_t now_ns);

/* discover.c */
typedef struct col_scan_hit {
  size_t input;     /* index into cfg->in */
  char *path;       /* owned */
  uint64_t dev, ino, size;
  bool rotated;     /* matched only as a rotated name (GLOB.* or kubelet's NAME.log.DATE-TIME) */
} col_scan_hit;

/* What the collector decided about a file it does not follow, by (dev, ino);
 * forgotten when a scan no longer sees the file. */
typedef enum col_known_state {
  COL_KNOWN_IGNORED = 0, /* an old rotated file, or a copy of something read */
  COL_KNOWN_RETIRED,     /* a rotated file read to the end and closed */
  COL_KNOWN_DEFERRED,    /* a rotated file whose first bytes match a file being read */
  COL_KNOWN_FAILED,      /* open/read failed; retried after COL_RETRY_NS */
} col_known_state;

typedef struct col_known {
  uint64_t dev, ino, size;
  col_known_state state;
  int64_t since_ns;   /* monotonic, when the state was set */
  uint64_t scan_gen;  /* last scan that saw it */
  bool warned;        /* the "grew after it was closed" warning was logged */
} col_known;

/* Start the periodic scan (first scan now) and the directory watches. */
CAIRN_MUST_CHECK cairn_err col__discover_start(col_collector *c);
/* Stop scanning and close the watches; a scan job already running finishes and is ignored. */
void col__discover_stop(col_collector *c);
/* Run a scan soon (coalesced): a directory changed or a file was truncated. */
void col__rescan_soon(col_collector *c);
/* Record a decision about an unfollowed file. */
void col__known_set(col_collector *c, uint64_t dev, uint64_t ino, uint64_t size,
                    col_known_state st);

/* collector.c, called by files.c */
/* Parser callback (ud = col_file): append the record to the open batch. */
void col__on_rec(const col_rec *r, void *ud);
/* After feeding a line or a flush: note the file's safe offset in the open
 * batch, close the batch when full, apply the memory budget. */
void col__note_progress(col_file *f);
/* Log and stop the collector with err. */
void col__fatal(col_collector *c, cairn_err err, const char *what);
/* A batch was acked (OK): apply checkpoints for the acked prefix of the queue. */
void col__batch_acked(col_collector *c, col_batch *b);
/* Move READY batches from the head of the queue to the spool when no
 * aggregator takes them (or half the memory budget is used); no-op without
 * --spool-dir. Loop thread. */
void col__spool_pump(col_collector *c);

/* ship.c */
typedef struct col_ship col_ship;
CAIRN_MUST_CHECK cairn_err col__ship_new(col_collector *c, col_ship **out, char *errbuf,
                                         size_t errlen);
/* Connect (if not yet) and send every READY batch that fits in the window. */
void col__ship_kick(col_ship *s);
/* Batches sent but not acked on the live connection. */
size_t col__ship_inflight(const col_ship *s);
/* In-memory batches (not spool entries) among them. */
size_t col__ship_mem_inflight(const col_ship *s);
/* No aggregator takes batches now: a connect failed or the session ended
 * since the last HelloAck, or an Ack RETRY holds sending back. */
bool col__ship_down(const col_ship *s);
/* Close the connection and every handle; cb when all closed. */
void col__ship_close(col_ship *s, void (*cb)(void *ud), void *ud);
void col__ship_free(col_ship *s);
/* Connected and Hello acknowledged? */
bool col__ship_ready(const col_ship *s);
/* The client pb_tls_config of cfg (strings borrowed from cfg). */
void col__tls_config(const col_config *cfg, pb_tls_config *out);

/* ======================= spool.c (on-disk spool) ======================= */

/* The optional spool (--spool-dir): an ordered log of encoded batches the
 * collector could not hand to an aggregator, in segment files of
 * length-prefixed, CRC32C-checked entries. Loop thread only, except
 * col__spool_append (one call at a time, on the thread pool). */
typedef struct col_spool col_spool;

/* A place in the spool: segment number and byte offset in it. */
typedef struct col_spool_pos {
  uint64_t seg, off;
} col_spool_pos;

/* One batch to append (borrowed for the call). */
typedef struct col_spool_item {
  const uint8_t *payload; /* zstd(RecordBatch), sent unchanged later */
  size_t len;
  uint32_t records;
  uint64_t raw_size;
} col_spool_item;

/* One entry read back for sending. payload is borrowed until the next
 * col__spool_next or col__spool_close. */
typedef struct col_spool_entry {
  const uint8_t *payload;
  size_t len;
  uint32_t records;
  uint64_t raw_size;
  col_spool_pos end; /* just after the entry: give it to col__spool_acked */
} col_spool_entry;

typedef struct col_spool_stats {
  uint64_t bytes;    /* bytes in the segment files (compared with the limit) */
  uint64_t batches;  /* entries not yet acked */
  uint64_t corrupt;  /* entries (or unreadable stretches) skipped */
  uint64_t torn;     /* torn tails truncated at open */
  uint64_t appended, acked;
} col_spool_stats;

/* Open (creating, 0700) dir, scan every segment (streamed, CRC checked):
 * a torn tail of the last segment is truncated with a log line, corrupt
 * entries in the middle are logged and later skipped. Synchronous: call
 * before the loop runs. CAIRN_E_CONFIG / CAIRN_E_IO / CAIRN_E_NOMEM with errbuf. */
CAIRN_MUST_CHECK cairn_err col__spool_open(const char *dir, uint64_t max_bytes, col_spool **out,
                                           char *errbuf, size_t errlen);
/* Close (no append may be running). NULL is fine. */
void col__spool_close(col_spool *sp);
/* Bytes an entry with a payload of len bytes takes on disk. */
uint64_t col__spool_entry_bytes(size_t payload_len);
/* Would bytes more stay within the limit? */
bool col__spool_fits(const col_spool *sp, uint64_t bytes);
/* Append n entries after the published tail (a new segment when the current
 * one would pass its target size), then fdatasync (and fsync the directory
 * for a new segment). Any thread, one call at a time; readers do not see the
 * entries until col__spool_publish. On error (CAIRN_E_IO, errbuf) nothing of
 * the call counts. */
CAIRN_MUST_CHECK cairn_err col__spool_append(col_spool *sp, const col_spool_item *items,
                                             size_t n, char *errbuf, size_t errlen);
/* Loop, after a successful col__spool_append of n items: make them visible. */
void col__spool_publish(col_spool *sp, size_t n);
/* Entries after the send cursor? Entries not yet acked? */
bool col__spool_unsent(const col_spool *sp);
bool col__spool_empty(const col_spool *sp);
/* Entries sent and not yet acked. */
uint64_t col__spool_inflight(const col_spool *sp);
/* Read the entry at the send cursor and move the cursor past it (corrupt
 * entries are skipped, counted and logged). CAIRN_E_AGAIN when nothing is
 * unsent; CAIRN_E_IO / CAIRN_E_NOMEM (logged) when it cannot be read now. */
CAIRN_MUST_CHECK cairn_err col__spool_next(col_spool *sp, col_spool_entry *e);
/* The oldest sent entry (ending at end) was acked: segments wholly before
 * the ack cursor are deleted. Acks come in send order. */
void col__spool_acked(col_spool *sp, col_spool_pos end);
/* The connection is gone: everything after the ack cursor is sent again. */
void col__spool_rewind(col_spool *sp);
/* When every entry is acked (and no append runs): delete every segment. */
void col__spool_trim(col_spool *sp);
void col__spool_stats(const col_spool *sp, col_spool_stats *out);
/* CRC32C (Castagnoli) of len bytes continuing crc (0 to start). */
uint32_t col__crc32c(uint32_t crc, const void *data, size_t len);

/* Counters (loop thread only). */
typedef struct col_stats {
  uint64_t lines_read, records, records_acked, batches_sent, batches_acked, bytes_sent;
  uint64_t reconnects, files_opened, files_closed, truncations, parse_unparsed, retries, pauses;
  uint64_t rotations, copies_resumed, missed_rotated, long_lines, bad_inputs;
  uint64_t bytes_read;       /* line bytes incl. '\n' handed to the parsers */
  uint64_t records_sent;     /* records in batches sent (re-sends count again) */
  uint64_t rejects;          /* batches answered REJECT */
  uint64_t records_truncated; /* records flagged TRUNCATED */
  uint64_t ckpt_commits, ckpt_failures; /* checkpoint write txns */
  uint64_t audit_gaps, audit_lost; /* audit serial gap records emitted, serials they report */
} col_stats;

/* Counters of one --input (index into cfg->in), loop thread only. */
typedef struct col_input_stats {
  uint64_t lines_read, bytes_read, records, parse_unparsed, records_truncated;
} col_input_stats;

/* metrics.c: GET /metrics, /healthz, /readyz on --metrics-listen (proto/http.h). */
/* Open the endpoint when cfg->metrics_listen is set (writes
 * --metrics-port-file). CAIRN_E_CONFIG / CAIRN_E_NOMEM with errbuf. */
CAIRN_MUST_CHECK cairn_err col__metrics_start(col_collector *c, char *errbuf, size_t errlen);
/* Close the endpoint (asynchronous; the loop releases it). Idempotent. */
void col__metrics_close(col_collector *c);
/* Append the Prometheus text exposition of c's counters to b. CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__metrics_render(const col_collector *c, int64_t now_ns, cairn_buf *b);
/* Readiness: connected (Hello acked) and no unacked data older than
 * COL_READY_STALL_NS without an ack in that time. why gets the reason when not. */
bool col__metrics_ready(const col_collector *c, int64_t now_ns, const char **why);
/* Count one line read from f (full_len bytes without '\n'). */
void col__count_line(col_file *f, size_t full_len);

#define COL_READY_STALL_NS (30LL * 1000000000LL)

/* The runtime state. Private; the fields other runtime files use directly
 * are grouped here instead of behind accessors to keep the files small. */
struct col_collector {
  uv_loop_t loop;
  const col_config *cfg;  /* borrowed */
  col_ckpt *ck;           /* owned */
  pb_tls_ctx *tls;        /* owned */
  pb_pack *pack;          /* owned; the batch encoder (proto/pack.h), one encode job at a time */
  col_ship *ship;         /* owned */

  col_file *files;        /* list of tracked files (each holds one list ref) */
  size_t n_files;
  uint64_t scan_gen;
  bool scan_running, scanned_once, discover_on;
  bool rescan_pending;    /* a change arrived while a scan ran: scan again after it */
  uv_timer_t scan_timer;
  uv_timer_t kick_timer;  /* coalesces directory events into one scan */
  struct col_watch **watches; /* owned; directories watched with uv_fs_event */
  size_t n_watches, cap_watches;
  bool watch_limit_logged;
  size_t n_file_watches;  /* tails opened with opts.watch (see COL_MAX_FILE_WATCHES) */
  bool file_watch_logged; /* a file watch failed or the cap was reached: said once */
  col_known *known;       /* owned array, n_known used */
  size_t n_known, cap_known;
  struct col_badpath *bad; /* owned array: paths warned about once */
  size_t n_bad, cap_bad;
  col_orphan orphans[COL_MAX_ORPHANS];
  size_t n_orphans;
  uint64_t orphan_gen;    /* bumped when an orphan is added (deferred files are probed again) */

  col_batch *open;        /* batch being filled, or NULL */
  uint64_t next_batch_id;
  col_batch *q_head, *q_tail; /* closed, unacked batches in creation order */
  size_t q_len;
  bool encoding;          /* an encode job is running */
  uv_work_t encode_req;
  col_batch *encoding_batch;
  uint64_t unacked_raw;   /* raw bytes of the open batch + the queue */
  bool paused;            /* reading stopped for the memory budget */
  uv_timer_t batch_timer;

  uv_timer_t ckpt_timer;
  uv_timer_t tick_timer;  /* 100 ms: idle detection, shutdown progress */
  uv_signal_t sig_int, sig_term;
  int64_t last_data_ns;   /* monotonic: last line read or batch acked */

  bool stopping;          /* stop requested: no new reads, drain acks */
  bool closing;           /* handles being closed */
  int64_t stop_deadline_ns;
  cairn_err result;       /* what col_collector_run returns */
  int open_handles;       /* own uv handles still open */
  bool loop_closed;       /* uv_loop_close succeeded */
  col_stats stats;
  col_input_stats *in_stats; /* owned, cfg->n_in entries */
  int64_t last_ack_ns;       /* monotonic: last Ack (OK or REJECT), 0 = none yet */
  pb_http_server *http;      /* owned: --metrics-listen endpoint, NULL when off */
  cairn_log_limiter log_limit; /* repeated per-file / per-connection errors */

  col_spool *spool;          /* owned; NULL without --spool-dir */
  bool spooling;             /* an append job runs */
  uv_work_t spool_req;
  col_batch **spool_jobs;    /* owned array: batches of the running append (queue head) */
  col_spool_item *spool_items; /* owned array, same length */
  size_t spool_n, spool_cap;
  cairn_err spool_err;
  char spool_errbuf[256];
  bool spool_at_limit;       /* the last attempt did not fit --spool-max-bytes */
  uint64_t spool_full_total; /* times the limit was reached */
  int64_t spool_retry_ns;    /* monotonic: no append before this (after a write error) */
  int64_t spool_job_ns;      /* duration of the last append job (write + fsync) */
};

#endif
