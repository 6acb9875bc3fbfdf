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

/* 64-bit stream id: SHA-256 over (dev, ino, fingerprint, salt), first 8 bytes. */
uint64_t col__stream_id(uint64_t dev, uint64_t ino, const uint8_t *fp, size_t fp_len,
                        uint64_t salt);

/* ======================= tail.c (one file reader) ======================= */

typedef struct col_tail col_tail;

typedef struct col_tail_info {
  uint64_t dev, ino;
  uint64_t size;
  uint64_t nlink;
  uint8_t fp[COL_FP_MAX];
  size_t fp_len;
} col_tail_info;

typedef struct col_tail_cbs {
  /* File opened and fingerprinted. The owner must call col__tail_start() or
   * col__tail_close() (now or later). */
  void (*on_open)(col_tail *t, const col_tail_info *info, void *ud);
  /* One complete line (without '\n'): off = file offset of its first byte,
   * line_no 1-based from where reading started. Bytes borrowed. */
  void (*on_line)(col_tail *t, const uint8_t *line, size_t len, uint64_t off,
                  uint64_t line_no, void *ud);
  /* The file shrank below the read position; reading restarts at 0 (line 1)
   * after this returns. Any partial line was dropped. */
  void (*on_truncate)(col_tail *t, const col_tail_info *info, void *ud);
  /* A poll found no new data (called at every such poll, --read-interval).
   * first: first time since data arrived. gone: no links left (deleted). */
  void (*on_eof)(col_tail *t, bool first, bool gone, void *ud);
  /* open/read/stat failed (what names the step). The owner should close. */
  void (*on_error)(col_tail *t, cairn_err err, const char *what, int uv_code, void *ud);
  /* Last callback; t is freed right after it returns. */
  void (*on_close)(col_tail *t, void *ud);
} col_tail_cbs;

typedef struct col_tail_opts {
  uint64_t poll_ms;  /* growth poll period (0 = 250) */
  size_t max_line;   /* bytes of one line kept; the rest is skipped (0 = 1 MiB + 64 KiB) */
  size_t chunk;      /* bytes per read (0 = COL_READ_CHUNK) */
} col_tail_opts;

/* Start opening path (uv_fs_open + fstat + fingerprint read). Errors later
 * go to on_error. CAIRN_E_NOMEM when nothing was started. */
CAIRN_MUST_CHECK cairn_err col__tail_open(uv_loop_t *loop, const char *path,
                                          const col_tail_opts *o, const col_tail_cbs *cbs,
                                          void *ud, col_tail **out);
/* Begin reading at offset (after on_open). */
void col__tail_start(col_tail *t, uint64_t offset);
/* Stop issuing reads (the one in flight completes) / resume. */
void col__tail_pause(col_tail *t);
void col__tail_resume(col_tail *t);
/* At EOF and no read or stat in flight. */
bool col__tail_idle(const col_tail *t);
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
 * src strings borrowed). CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__batch_add(col_batch *b, const col_rec_src *src, const col_rec *r);
/* Remember f's safe offset in this batch (takes a ref on first sight). CAIRN_E_NOMEM. */
CAIRN_MUST_CHECK cairn_err col__batch_note_file(col_batch *b, col_file *f, uint64_t file_stream,
                                                uint64_t safe_offset);
/* Has the batch reached max_records or max_bytes? */
bool col__batch_full(const col_batch *b, uint64_t max_records, uint64_t max_bytes);
/* Encode recs into payload with codec (any thread, batch not touched
 * elsewhere meanwhile), then drop the records' arena. CAIRN_E_NOMEM/ZSTD. */
CAIRN_MUST_CHECK cairn_err col__batch_encode(col_batch *b, pb_codec *codec);

/* ======================= collector.c / discover.c ======================= */

struct col_file {
  col_collector *col;   /* owner */
  col_tail *tail;       /* NULL once closed */
  col_parser *parser;   /* owned */
  const col_input *input;
  char *path;           /* owned */
  col_meta meta;
  uint64_t dev, ino;    /* identity from stat(2) (symlinks followed) */
  uint64_t stream_id;   /* current file_stream */
  uint8_t fp[COL_FP_MAX];
  size_t fp_len;
  uint64_t scan_gen;    /* last discovery scan that saw it */
  uint64_t truncations; /* salt for the next stream id */
  int refs;             /* 1 for the file list + 1 per batch holding it */
  bool started;         /* reading (on_open done) */
  bool vanished;        /* no longer matched by any glob: drain, then close */
  bool gone;            /* deleted (nlink 0) */
  bool closing;         /* tail close requested */
  bool at_eof;          /* last poll found nothing new */
  bool emitted;         /* scratch: records emitted during one col_parser_line */
  int64_t eof_since_ns; /* monotonic: when the current idle stretch at EOF began */
  col_file *prev, *next; /* list (private) */
};

void col__file_ref(col_file *f);
void col__file_unref(col_file *f);

/* discover.c */
typedef struct col_scan_hit {
  size_t input;     /* index into cfg->in */
  char *path;       /* owned */
  uint64_t dev, ino;
} col_scan_hit;

/* Start the periodic scan (first scan now). */
CAIRN_MUST_CHECK cairn_err col__discover_start(col_collector *c);
/* Stop scanning; a scan job already running finishes and is ignored. */
void col__discover_stop(col_collector *c);
/* Drop every tracked file (begin closing tails). */
void col__files_close_all(col_collector *c);

/* collector.c, called by discover.c and ship.c */
CAIRN_MUST_CHECK cairn_err col__file_open(col_collector *c, const col_input *in, const char *path,
                                          uint64_t dev, uint64_t ino, col_file **out);
void col__file_vanished(col_file *f);
/* A batch was acked (OK): apply checkpoints for the acked prefix of the queue. */
void col__batch_acked(col_collector *c, col_batch *b);
/* Log a line about the collector; comp "collector". */

/* ship.c */
typedef struct col_ship col_ship;
CAIRN_MUST_CHECK cairn_err col__ship_new(col_collector *c, col_ship **out, char *errbuf,
                                         size_t errlen);
/* Connect (if not yet) and send every READY batch that fits in the window. */
void col__ship_kick(col_ship *s);
/* Batches sent but not acked on the live connection. */
size_t col__ship_inflight(const col_ship *s);
/* Close the connection and every handle; cb when all closed. */
void col__ship_close(col_ship *s, void (*cb)(void *ud), void *ud);
void col__ship_free(col_ship *s);
/* Connected and Hello acknowledged? */
bool col__ship_ready(const col_ship *s);

/* Counters (loop thread only). */
typedef struct col_stats {
  uint64_t lines_read, records, records_acked, batches_sent, batches_acked, bytes_sent;
  uint64_t reconnects, files_opened, files_closed, truncations, parse_unparsed, retries, pauses;
} col_stats;

/* The runtime state. Private; the fields other runtime files use directly
 * are grouped here instead of behind accessors to keep the files small. */
struct col_collector {
  uv_loop_t loop;
  const col_config *cfg;  /* borrowed */
  col_ckpt *ck;           /* owned */
  pb_tls_ctx *tls;        /* owned */
  pb_codec *codec;        /* owned; used by one encode job at a time */
  col_ship *ship;         /* owned */

  col_file *files;        /* list of tracked files (each holds one list ref) */
  size_t n_files;
  uint64_t scan_gen;
  bool scan_running, scanned_once, discover_on;
  uv_timer_t scan_timer;

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
};

#endif
