/* collector/batch.c: build one batch of Cairn__Record from parser records
 * (message and attrs bytes copied into the batch arena, file metadata borrowed
 * from refcounted col_file), remember per file the offset that becomes its
 * checkpoint once the batch is acked, and encode it (protobuf + zstd): with
 * protobuf-c (col__batch_encode) or the hand-written encoder of proto/pack.h
 * (col__batch_encode_pack), which give the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "collector/internal.h"
#include "collector/redact.h"
#include "common/timeparse.h"

col_batch *col__batch_new(uint64_t id) {
  col_batch *b = calloc(1, sizeof(*b));
  if (!b) return NULL;
  b->id = id;
  cairn_arena_init(&b->arena, 256u << 10);
  cairn_buf_init(&b->payload);
  return b;
}

void col__batch_free(col_batch *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n_files; i++) col__file_unref(b->files[i].f);
  free(b->files);
  free(b->recs);
  cairn_arena_fini(&b->arena);
  cairn_buf_fini(&b->payload);
  free(b);
}

/* Empty strings are the proto3 default; protobuf-c wants non-NULL pointers. */
static char *str_or_empty(const char *s) { return (char *)(s && *s ? s : ""); }

cairn_err col__batch_add(col_batch *b, const col_rec_src *src, const col_rec *r) {
  if (b->redact) {
    /* the same record with secrets masked and the redaction attrs appended;
     * the stream key lets a private key printed line by line be followed */
    uint64_t key = src->file_stream * 4 + (uint64_t)r->stream + 1;
    cairn_err err = col__redact_rec(b->redact, key, r, &r);
    if (err != CAIRN_OK) return err;
  }
  if (b->n == b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 256;
    Cairn__Record **nr = realloc(b->recs, nc * sizeof(*nr));
    if (!nr) return CAIRN_E_NOMEM;
    b->recs = nr;
    b->cap = nc;
  }
  Cairn__Record *rec = cairn_arena_alloc(&b->arena, sizeof(*rec));
  if (!rec) return CAIRN_E_NOMEM;
  cairn__record__init(rec);
  uint8_t *msg = NULL;
  if (r->msg_len) {
    msg = cairn_arena_alloc(&b->arena, r->msg_len);
    if (!msg) return CAIRN_E_NOMEM;
    memcpy(msg, r->msg, r->msg_len);
  }
  rec->time_ns = r->time_ns;
  /* an unparsed line has no time of its own: stamp it with the time it was
   * read, so time-bounded searches (--since 1h) find it */
  if (rec->time_ns == 0 && (r->flags & CAIRN__RECORD_FLAG__RECORD_FLAG_UNPARSED))
    rec->time_ns = cairn_time_now_ns();
  rec->source = r->source != CAIRN__SOURCE__SOURCE_UNKNOWN ? r->source : CAIRN__SOURCE__SOURCE_CONTAINER;
  rec->stream = r->stream;
  rec->flags = r->flags;
  rec->message.data = msg;
  rec->message.len = r->msg_len;
  rec->kube_namespace = str_or_empty(src->meta->kube_namespace);
  rec->pod = str_or_empty(src->meta->pod);
  rec->container = str_or_empty(src->meta->container);
  rec->container_id = str_or_empty(src->meta->container_id);
  rec->pod_uid = str_or_empty(src->meta->pod_uid);
  rec->node = str_or_empty(src->node);
  rec->path = str_or_empty(src->path);
  rec->file_stream = src->file_stream;
  rec->end_offset = r->end_offset;
  rec->fragments = r->fragments;
  rec->format = src->format;
  uint64_t raw = r->msg_len;
  size_t n_attrs = r->n_attrs + (r->attrs_json ? 1 : 0);
  if (n_attrs) {
    /* typed fields (audit, k8s audit) and the docker attrs object as "attrs" */
    Cairn__Attr *a = cairn_arena_alloc(&b->arena, n_attrs * sizeof(*a));
    Cairn__Attr **av = cairn_arena_alloc(&b->arena, n_attrs * sizeof(*av));
    if (!a || !av) return CAIRN_E_NOMEM;
    for (size_t i = 0; i < n_attrs; i++) {
      bool docker = i == r->n_attrs;
      const char *key = docker ? "attrs" : r->attrs[i].key;
      const void *val = docker ? (const void *)r->attrs_json : (const void *)r->attrs[i].val;
      size_t vlen = docker ? strlen(r->attrs_json) : r->attrs[i].len;
      cairn__attr__init(&a[i]);
      a[i].key = docker ? (char *)key : cairn_arena_strndup(&b->arena, key, strlen(key));
      uint8_t *v = cairn_arena_alloc(&b->arena, vlen ? vlen : 1);
      if (!a[i].key || !v) return CAIRN_E_NOMEM;
      if (vlen) memcpy(v, val, vlen);
      a[i].value.data = v;
      a[i].value.len = vlen;
      av[i] = &a[i];
      raw += vlen;
    }
    rec->attrs = av;
    rec->n_attrs = n_attrs;
  }
  if (b->n == 0) b->opened_ns = cairn_time_mono_ns();
  b->recs[b->n++] = rec;
  b->raw_bytes += raw;
  return CAIRN_OK;
}

cairn_err col__batch_note_file(col_batch *b, col_file *f, uint64_t file_stream,
                               uint64_t safe_offset) {
  /* the most recent file is almost always the last entry */
  for (size_t i = b->n_files; i-- > 0;) {
    if (b->files[i].f == f) {
      b->files[i].file_stream = file_stream;
      b->files[i].safe_offset = safe_offset;
      return CAIRN_OK;
    }
  }
  if (b->n_files == b->cap_files) {
    size_t nc = b->cap_files ? b->cap_files * 2 : 8;
    col_batch_file *nf = realloc(b->files, nc * sizeof(*nf));
    if (!nf) return CAIRN_E_NOMEM;
    b->files = nf;
    b->cap_files = nc;
  }
  col__file_ref(f);
  b->files[b->n_files++] = (col_batch_file){f, file_stream, safe_offset};
  return CAIRN_OK;
}

bool col__batch_full(const col_batch *b, uint64_t max_records, uint64_t max_bytes) {
  return (max_records && b->n >= max_records) || (max_bytes && b->raw_bytes >= max_bytes);
}

/* After a successful encode: keep only the compressed bytes (the encoder
 * reserved ZSTD_compressBound(raw), several MiB, and the batch may wait in
 * the queue for a while) and give the record memory back. */
static void batch_encoded(col_batch *b) {
  if (b->payload.cap > b->payload.len + 4096) {
    uint8_t *p = realloc(b->payload.ptr, b->payload.len ? b->payload.len : 1);
    if (p) {
      b->payload.ptr = p;
      b->payload.cap = b->payload.len ? b->payload.len : 1;
    }
  }
  free(b->recs);
  b->recs = NULL;
  b->cap = 0;
  cairn_arena_fini(&b->arena);
}

cairn_err col__batch_encode(col_batch *b, pb_codec *codec) {
  cairn_buf_reset(&b->payload);
  cairn_err err = pb_batch_encode(codec, (Cairn__Record *const *)b->recs, b->n, &b->payload,
                                  &b->raw_size);
  if (err != CAIRN_OK) return err;
  batch_encoded(b);
  return CAIRN_OK;
}

cairn_err col__batch_encode_pack(col_batch *b, pb_pack *pk) {
  cairn_buf_reset(&b->payload);
  cairn_err err = pb_pack_encode(pk, (Cairn__Record *const *)b->recs, b->n, &b->payload,
                                 &b->raw_size);
  if (err != CAIRN_OK) return err;
  batch_encoded(b);
  return CAIRN_OK;
}
