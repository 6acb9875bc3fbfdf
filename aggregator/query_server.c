/* aggregator/query_server.c: the remote query port (--query-listen): mutual
 * TLS like ingest, one QueryRequest per connection (within QS_REQUEST_S of
 * connecting, or the connection is dropped), answered with QueryResult pages
 * and a final QueryStatus, then closed.
 *
 * Each query runs on its own thread (sto_query_run against the open env:
 * LMDB reads never block the writer) so the loop never waits on storage.
 * Flow control: the thread packs records into pages and blocks once
 * QS_MAX_PAGES pages wait for the loop; the loop moves pages to the socket
 * only while less than QS_HIGH_WATER bytes are unsent, and on_drain resumes
 * it, so a slow client holds at most a few pages in memory. The ACL is
 * enforced by narrowing the query and by a record filter ANDed to it: a
 * record outside the identity's grant is never packed. Every query, also a
 * refused one, is stored as a source=query record through the writer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/internal.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/timeparse.h"

#define QS_MAX_FRAME (1u << 20)    /* a QueryRequest is small */
#define QS_PAGE_BYTES (256u << 10) /* flush a page at this many record bytes   \
                                    */
#define QS_PAGE_RECORDS 512u       /* ... or this many records */
#define QS_MAX_PAGES 4u /* pages queued per query before the thread waits */
#define QS_HIGH_WATER                                                          \
  (1u << 20)             /* unsent bytes on the socket before pages wait */
#define QS_MAX_TERMS 64u /* terms per request */
#define QS_STALL_S                                                             \
  10 /* a client that takes no page for this long is dropped:                  \
        its query holds a read txn, and a map resize of the                    \
        writer waits for running reads */
/* a client that sent no complete request this long after connecting is
 * dropped: it holds a --query-max-conns slot */
#define QS_REQUEST_S 10
#define QS_SWEEP_MS 500u /* how often the request deadline is checked */
#define QS_STR_(x) #x
#define QS_STR(x) QS_STR_(x)

typedef struct qpage {
  struct qpage *next;
  cairn_buf body; /* owned: one packed Envelope */
} qpage;

typedef struct qconn qconn;

typedef struct agg_qserver {
  agg *a;       /* borrowed: the owning service */
  agg_acl *acl; /* owned */
  uv_tcp_t listener;
  bool listener_open;
  char addr[128];   /* bound "HOST:PORT" */
  uv_async_t async; /* query threads -> loop: pages or completion */
  bool async_open;
  uv_timer_t sweep; /* drops connections past the request deadline */
  bool sweep_open;
  bool mu_init;
  pthread_mutex_t mu; /* guards every qconn's page queue and flags */
  qconn *conns;       /* loop only */
  uint64_t n_conns;   /* loop only: open connections (--query-max-conns) */
  uint64_t threads;   /* loop only: started and not yet joined */
  bool closing;       /* loop only: shutdown started */
} agg_qserver;

struct qconn {
  agg_qserver *s; /* borrowed */
  pb_conn *pc;    /* NULL once its close callback ran */
  char peer[64];
  char identity[256]; /* certificate CN, set in on_ready */
  int64_t accepted_ns; /* monotonic: accept (the request deadline counts from it) */
  bool has_request;   /* loop only: the one request arrived */
  uint8_t
      *req; /* owned: the request envelope bytes (the thread unpacks them) */
  size_t req_len;
  pthread_t thread;
  bool thread_started; /* loop only */
  bool joined;         /* loop only */
  pthread_cond_t cv;   /* thread waits here for room in the page queue */
  bool cv_init;
  atomic_bool cancel; /* loop -> thread: stop scanning */
  bool
      stalled; /* guarded by s->mu: cancelled because the client took no page */
  qpage *head, *tail; /* guarded by s->mu */
  size_t npages;      /* guarded by s->mu */
  bool finished;      /* guarded by s->mu: the final status page is queued */
  qconn *prev, *next; /* loop only: s->conns */
};

static void qs_maybe_close_async(agg_qserver *s);

/* ---- connection bookkeeping (loop) ---- */

static void qconn_free(qconn *c) {
  qpage *p = c->head;
  while (p) {
    qpage *n = p->next;
    cairn_buf_fini(&p->body);
    free(p);
    p = n;
  }
  if (c->cv_init)
    pthread_cond_destroy(&c->cv);
  free(c->req);
  free(c);
}

static void qconn_unlink(qconn *c) {
  agg_qserver *s = c->s;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

/* Free c when both its connection and its thread are gone; true if freed. */
static bool qconn_maybe_free(qconn *c) {
  if (c->pc || (c->thread_started && !c->joined))
    return false;
  qconn_unlink(c);
  qconn_free(c);
  return true;
}

/* Move queued pages to the socket while it has room; join a finished
 * thread once its pages are out, then close the connection (queued writes
 * are flushed by pb_conn_close). True when c was freed. */
static bool qconn_pump(qconn *c) {
  agg_qserver *s = c->s;
  bool done = false;
  pthread_mutex_lock(&s->mu);
  bool drop =
      c->finished && c->stalled; /* a stalled client gets nothing more */
  while (c->head &&
         (!c->pc || drop || pb_conn_write_pending(c->pc) < QS_HIGH_WATER)) {
    qpage *p = c->head;
    c->head = p->next;
    if (!c->head)
      c->tail = NULL;
    c->npages--;
    if (c->pc && !drop) {
      cairn_err e = pb_conn_send(c->pc, p->body.ptr, p->body.len);
      if (e != CAIRN_OK && e != CAIRN_E_CLOSED) {
        atomic_store(&c->cancel, true);
        pb_conn_close(c->pc, e, "sending a query page failed");
      }
    }
    cairn_buf_fini(&p->body);
    free(p);
    pthread_cond_signal(&c->cv);
  }
  done = c->finished && !c->head;
  pthread_mutex_unlock(&s->mu);
  if (done && c->thread_started && !c->joined) {
    pthread_join(c->thread, NULL); /* it only returns after setting finished */
    c->joined = true;
    s->threads--;
    if (c->pc)
      pb_conn_close(c->pc, CAIRN_OK, "query answered");
    bool freed = qconn_maybe_free(c);
    qs_maybe_close_async(s);
    return freed;
  }
  return false;
}

static void on_async(uv_async_t *h) {
  agg_qserver *s = h->data;
  qconn *c = s->conns;
  while (c) {
    qconn *next = c->next; /* pump may free c */
    (void)qconn_pump(c);
    c = next;
  }
}

static void qs_maybe_close_async(agg_qserver *s) {
  if (s->closing && s->threads == 0 && s->async_open) {
    uv_close((uv_handle_t *)&s->async, NULL);
    s->async_open = false;
  }
}

/* ---- the query thread ---- */

typedef struct qrun {
  qconn *c;
  const agg_acl_entry *grant; /* NULL: deny everything */
  cairn_buf page;             /* QueryResult bytes being filled */
  size_t page_records;
  uint64_t count; /* records sent */
  cairn_err err;  /* packing failure */
} qrun;

static void varint(uint8_t *p, size_t *n, uint64_t v) {
  *n = 0;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    p[(*n)++] = (uint8_t)(b | (v ? 0x80 : 0));
  } while (v);
}

/* Queue one packed envelope for the loop; waits while the queue is full.
 * Takes body. false when the query was cancelled meanwhile. */
static bool queue_page(qconn *c, cairn_buf *body, bool final) {
  agg_qserver *s = c->s;
  qpage *p = calloc(1, sizeof(*p));
  if (!p) {
    cairn_buf_fini(body);
    return false;
  }
  p->body = *body;
  cairn_buf_init(body);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += QS_STALL_S;
  pthread_mutex_lock(&s->mu);
  while (!final && c->npages >= QS_MAX_PAGES && !atomic_load(&c->cancel)) {
    if (pthread_cond_timedwait(&c->cv, &s->mu, &deadline) == ETIMEDOUT &&
        c->npages >= QS_MAX_PAGES) {
      c->stalled = true;
      atomic_store(&c->cancel, true);
    }
  }
  if (c->tail)
    c->tail->next = p;
  else
    c->head = p;
  c->tail = p;
  c->npages++;
  if (final)
    c->finished = true;
  uv_async_send(
      &s->async); /* the handle stays open until every thread is joined */
  pthread_mutex_unlock(&s->mu);
  return !atomic_load(&c->cancel);
}

/* Wrap r->page as Envelope{query_result} and queue it. */
static bool flush_page(qrun *r) {
  if (!r->page_records)
    return true;
  cairn_buf env;
  cairn_buf_init(&env);
  uint8_t hdr[11];
  size_t n;
  hdr[0] = (6u << 3) | 2u; /* Envelope.query_result, length-delimited */
  varint(hdr + 1, &n, r->page.len);
  if (cairn_buf_append(&env, hdr, n + 1) ||
      cairn_buf_append(&env, r->page.ptr, r->page.len)) {
    cairn_buf_fini(&env);
    r->err = CAIRN_E_NOMEM;
    return false;
  }
  cairn_buf_reset(&r->page);
  r->page_records = 0;
  return queue_page(r->c, &env, false);
}

static bool on_match(const Cairn__Record *rec, void *ud) {
  qrun *r = ud;
  size_t at = r->page.len;
  uint8_t hdr[11];
  size_t n;
  /* QueryResult.records (field 1): tag, length, packed record */
  size_t sz = protobuf_c_message_get_packed_size(&rec->base);
  hdr[0] = (1u << 3) | 2u;
  varint(hdr + 1, &n, sz);
  if (cairn_buf_append(&r->page, hdr, n + 1) || pb_record_pack(rec, &r->page)) {
    r->page.len = at;
    r->err = CAIRN_E_NOMEM;
    return false;
  }
  r->page_records++;
  r->count++;
  if (r->page_records >= QS_PAGE_RECORDS || r->page.len >= QS_PAGE_BYTES)
    return flush_page(r);
  return !atomic_load(&r->c->cancel);
}

/* The ACL, ANDed to every other filter; also stops a cancelled scan. */
static bool acl_filter(const Cairn__Record *rec, void *ud) {
  qrun *r = ud;
  if (atomic_load(&r->c->cancel))
    return false;
  return r->grant && agg__acl_record_ok(r->grant, rec);
}

static bool has_wildcard(const char *s) { return strpbrk(s, "*?[\\") != NULL; }

/* Filters of the request as one line for the audit record (leading space). */
static cairn_err describe(const Cairn__QueryRequest *q, cairn_buf *b) {
  char t[48];
  cairn_err e = CAIRN_OK;
  if (q->since_ns != INT64_MIN) {
    cairn_time_format(q->since_ns, t, sizeof(t));
    e = cairn_buf_printf(b, " since=%s", t);
  }
  if (!e && q->until_ns != INT64_MAX) {
    cairn_time_format(q->until_ns, t, sizeof(t));
    e = cairn_buf_printf(b, " until=%s", t);
  }
  for (size_t i = 0; !e && i < q->n_terms; i++) {
    const Cairn__QueryTerm *x = q->terms[i];
    if (x->field >= STO_FIELD_COUNT_)
      continue;
    e = cairn_buf_printf(b, " %s%s%s", sto_field_name((sto_field)x->field),
                         x->match == STO_MATCH_EXACT ? "=" : "~",
                         x->value ? x->value : "");
  }
  if (!e && q->source)
    e = cairn_buf_printf(b, " source=%s", pb_source_name(q->source));
  if (!e && q->stream)
    e = cairn_buf_printf(b, " stream=%s", pb_stream_name(q->stream));
  if (!e && q->grep && *q->grep)
    e = cairn_buf_printf(b, " grep=%s", q->grep);
  if (!e && q->client_filters && *q->client_filters)
    e = cairn_buf_printf(b, " client:%s", q->client_filters);
  if (!e)
    e = cairn_buf_printf(b, " limit=%" PRIu64 " order=%s", q->limit,
                         q->newest_first ? "newest" : "oldest");
  return e;
}

/* Store the audit record of this query (PCI DSS 10.2.1.3) via the writer. */
static void record_query(agg *a, const qconn *c, const Cairn__QueryRequest *q,
                         uint64_t count, const char *result) {
  cairn_buf filters, msg;
  cairn_buf_init(&filters);
  cairn_buf_init(&msg);
  cairn_err e = q ? describe(q, &filters) : CAIRN_OK;
  if (!e)
    e = cairn_buf_append(&filters, "", 1);
  const char *fl = !e && filters.len > 1 ? (const char *)filters.ptr + 1 : "";
  const char *cmd = q && q->command && *q->command ? q->command : "?";
  char countb[24], host[256] = "";
  snprintf(countb, sizeof(countb), "%" PRIu64, count);
  gethostname(host, sizeof(host) - 1);
  if (!e)
    e = cairn_buf_printf(&msg,
                         "query %s by %s (remote %s): %s -> %s records, %s",
                         cmd, c->identity[0] ? c->identity : "(no identity)",
                         c->peer, fl, countb, result);
  if (!e)
    e = cairn_buf_append(&msg, "", 1);
  const char *const kv[][2] = {{"mode", "remote"}, {"user", c->identity},
                               {"peer", c->peer},  {"command", cmd},
                               {"filters", fl},    {"count", countb},
                               {"result", result}};
  enum { NKV = sizeof(kv) / sizeof(kv[0]) };
  Cairn__Attr attrs[NKV], *ap[NKV];
  Cairn__Record rec;
  bool has_msg = !e && msg.len;
  pb_query_record_fill(&rec, attrs, ap, kv, NKV, cairn_time_now_ns(), host,
                       has_msg ? msg.ptr : NULL, has_msg ? msg.len - 1 : 0);
  Cairn__Record *rp = &rec;
  e = agg__writer_push_local(a, c->identity, &rp, 1);
  if (e != CAIRN_OK)
    cairn_log_error(AGG_COMP, "query by %s from %s: could not record it: %s",
                    c->identity, c->peer, cairn_err_name(e));
  cairn_buf_fini(&filters);
  cairn_buf_fini(&msg);
}

/* Send the final status and finish. */
static void finish(qconn *c, Cairn__QueryCode code, const char *error,
                   uint64_t count, const sto_query_stats *st) {
  Cairn__QueryStatus qs = CAIRN__QUERY_STATUS__INIT;
  qs.code = code;
  qs.error = (char *)(error ? error : "");
  qs.count = count;
  qs.identity = c->identity;
  qs.index = (char *)(st && st->index ? st->index : "");
  qs.examined = st ? st->examined : 0;
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_QUERY_STATUS;
  env.query_status = &qs;
  cairn_buf body;
  cairn_buf_init(&body);
  size_t sz = protobuf_c_message_get_packed_size(&env.base);
  if (cairn_buf_reserve(&body, sz) == CAIRN_OK) {
    body.len = protobuf_c_message_pack(&env.base, body.ptr);
  }
  queue_page(c, &body, true);
}

static const char *const code_names[] = {"QUERY_OK", "QUERY_DENIED",
                                         "QUERY_BAD_REQUEST", "QUERY_ERROR"};

static void *query_main(void *arg) {
  qconn *c = arg;
  agg *a = c->s->a;
  cairn_arena arena;
  cairn_arena_init(&arena, 16u << 10);
  qrun r = {.c = c, .grant = agg__acl_find(c->s->acl, c->identity)};
  cairn_buf_init(&r.page);
  char err[512] = "";
  Cairn__QueryCode code = CAIRN__QUERY_CODE__QUERY_OK;
  sto_query_stats st;
  memset(&st, 0, sizeof(st));
  sto_query q;
  sto_query_init(&q);
  sto_term *tv = NULL;
  Cairn__Envelope *env = NULL;
  const Cairn__QueryRequest *req = NULL;
  if (pb_envelope_decode(c->req, c->req_len, &arena, &env) != CAIRN_OK ||
      env->msg_case != CAIRN__ENVELOPE__MSG_QUERY_REQUEST) {
    code = CAIRN__QUERY_CODE__QUERY_BAD_REQUEST;
    snprintf(err, sizeof(err), "not a QueryRequest");
    goto out_finish;
  }
  req = env->query_request;
  if (!r.grant) {
    code = CAIRN__QUERY_CODE__QUERY_DENIED;
    snprintf(err, sizeof(err),
             "identity '%s' is not authorized to query this aggregator (not in "
             "--query-acl)",
             c->identity);
    goto out_finish;
  }
  if (req->n_terms > QS_MAX_TERMS || req->since_ns >= req->until_ns) {
    code = CAIRN__QUERY_CODE__QUERY_BAD_REQUEST;
    snprintf(err, sizeof(err),
             req->n_terms > QS_MAX_TERMS ? "more than 64 filter values"
                                         : "empty time range");
    goto out_finish;
  }
  /* terms grouped by field, in request order */
  tv = calloc(req->n_terms + r.grant->n_ns + 1, sizeof(*tv));
  if (!tv) {
    code = CAIRN__QUERY_CODE__QUERY_ERROR;
    snprintf(err, sizeof(err), "aggregator out of memory");
    goto out_finish;
  }
  size_t used = 0;
  for (int f = 0; f < STO_FIELD_COUNT_; f++) {
    size_t first = used;
    for (size_t i = 0; i < req->n_terms; i++) {
      const Cairn__QueryTerm *x = req->terms[i];
      if (x->field >= STO_FIELD_COUNT_ || x->match > STO_MATCH_GLOB ||
          !x->value) {
        code = CAIRN__QUERY_CODE__QUERY_BAD_REQUEST;
        snprintf(err, sizeof(err), "bad filter term (field %u, match %u)",
                 x->field, x->match);
        goto out_finish;
      }
      if ((int)x->field != f)
        continue;
      if (f == STO_FIELD_NAMESPACE && x->match == STO_MATCH_EXACT &&
          !agg__acl_namespace_ok(r.grant, x->value)) {
        code = CAIRN__QUERY_CODE__QUERY_DENIED;
        snprintf(err, sizeof(err),
                 "identity '%s' is not authorized to read namespace '%s'",
                 c->identity, x->value);
        goto out_finish;
      }
      tv[used].value = x->value;
      tv[used].match = (sto_match)x->match;
      used++;
    }
    q.terms[f].v = tv + first;
    q.terms[f].n = used - first;
  }
  if (req->source) {
    if (!agg__acl_source_ok(r.grant, req->source)) {
      code = CAIRN__QUERY_CODE__QUERY_DENIED;
      snprintf(
          err, sizeof(err),
          "identity '%s' is not authorized to read source '%s'", c->identity,
          pb_source_name(req->source)[0] ? pb_source_name(req->source) : "?");
      goto out_finish;
    }
    q.source = req->source;
  } else {
    /* one granted source: let storage use its index */
    int only = 0, n = 0;
    for (int s = 1; s < 32; s++)
      if (agg__acl_source_ok(r.grant, s))
        only = s, n++;
    if (n == 1)
      q.source = only;
  }
  if (!q.terms[STO_FIELD_NAMESPACE].n && !agg__acl_all_namespaces(r.grant)) {
    /* narrow to the granted namespaces so the namespace index bounds the scan
     */
    size_t first = used;
    for (size_t i = 0; i < r.grant->n_ns; i++) {
      tv[used].value = r.grant->ns[i];
      tv[used].match =
          has_wildcard(r.grant->ns[i]) ? STO_MATCH_GLOB : STO_MATCH_EXACT;
      used++;
    }
    q.terms[STO_FIELD_NAMESPACE].v = tv + first;
    q.terms[STO_FIELD_NAMESPACE].n = used - first;
  }
  q.since_ns = req->since_ns;
  q.until_ns = req->until_ns;
  q.stream = req->stream;
  q.grep = req->grep && *req->grep ? req->grep : NULL;
  q.limit = (size_t)req->limit;
  q.newest_first = req->newest_first;
  q.filter = acl_filter;
  q.filter_ud = &r;
  cairn_err e = sto_query_run(a->env, &q, on_match, &r, &st);
  if (e == CAIRN_OK && r.err)
    e = r.err;
  if (e == CAIRN_OK && r.page_records)
    flush_page(&r);
  if (e == CAIRN_OK && r.err)
    e = r.err;
  if (c->stalled) {
    code = CAIRN__QUERY_CODE__QUERY_ERROR;
    snprintf(err, sizeof(err),
             "the client read no results for %d s; query stopped", QS_STALL_S);
  } else if (atomic_load(&c->cancel)) {
    code = CAIRN__QUERY_CODE__QUERY_ERROR;
    snprintf(err, sizeof(err),
             "stopped early: the client closed the connection (e.g. its "
             "--limit was reached) or the aggregator shut down");
  } else if (e != CAIRN_OK) {
    code = CAIRN__QUERY_CODE__QUERY_ERROR;
    snprintf(err, sizeof(err), "reading the store failed: %s (%s)",
             cairn_err_name(e), cairn_err_str(e));
  }

out_finish:;
  char line[600] = "";
  if (code != CAIRN__QUERY_CODE__QUERY_OK)
    snprintf(line, sizeof(line), "%s: %s", code_names[code], err);
  const char *result = code == CAIRN__QUERY_CODE__QUERY_OK ? "ok" : line;
  if (code == CAIRN__QUERY_CODE__QUERY_DENIED)
    cairn_log_warn(AGG_COMP, "query from %s refused: %s", c->peer, err);
  else
    cairn_log_info(AGG_COMP, "query %s by %s from %s: %" PRIu64 " records%s%s",
                   req && req->command ? req->command : "?", c->identity,
                   c->peer, r.count, code ? ", " : "", code ? line : "");
  record_query(a, c, req, r.count, result);
  finish(c, code, code ? line : "", r.count, &st);
  free(tv);
  cairn_buf_fini(&r.page);
  cairn_arena_fini(&arena);
  return NULL;
}

/* ---- connection callbacks (loop) ---- */

static void on_ready(pb_conn *pc, void *ud) {
  qconn *c = ud;
  snprintf(c->identity, sizeof(c->identity), "%s", pb_conn_identity(pc));
}

static cairn_err on_frame(pb_conn *pc, const uint8_t *body, size_t len,
                          void *ud) {
  qconn *c = ud;
  agg_qserver *s = c->s;
  if (c->has_request || s->closing) {
    pb_conn_close(pc, CAIRN_E_PROTO, "one QueryRequest per connection");
    return CAIRN_OK;
  }
  c->has_request = true;
  pb_conn_read_stop(pc);
  c->req = malloc(len);
  if (!c->req)
    return CAIRN_E_NOMEM;
  memcpy(c->req, body, len);
  c->req_len = len;
  if (pthread_cond_init(&c->cv, NULL) != 0)
    return CAIRN_E_NOMEM;
  c->cv_init = true;
  if (pthread_create(&c->thread, NULL, query_main, c) != 0)
    return CAIRN_E_NOMEM;
  c->thread_started = true;
  s->threads++;
  return CAIRN_OK;
}

static void on_close(pb_conn *pc, cairn_err why, const char *reason, void *ud) {
  (void)pc;
  qconn *c = ud;
  agg_qserver *s = c->s;
  if (why != CAIRN_OK && why != CAIRN_E_CLOSED)
    cairn_log_info(AGG_COMP, "query connection %s (%s) closed: %s", c->peer,
                   c->identity[0] ? c->identity : "no identity", reason);
  c->pc = NULL;
  s->n_conns--;
  pthread_mutex_lock(&s->mu);
  atomic_store(&c->cancel, true);
  if (c->cv_init)
    pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&s->mu);
  if (!c->thread_started) {
    qconn_maybe_free(c);
    return;
  }
  /* drop its pages; free it now if its thread was already joined, or
   * once the thread ends (pump from the async callback) */
  if (!qconn_pump(c))
    (void)qconn_maybe_free(c);
}

static void on_drain(pb_conn *pc, void *ud) {
  (void)pc;
  (void)qconn_pump(ud);
}

static const pb_conn_cbs qconn_cbs = {.on_ready = on_ready,
                                      .on_frame = on_frame,
                                      .on_close = on_close,
                                      .on_drain = on_drain};

static void on_connection(uv_stream_t *server, int status) {
  agg_qserver *s = server->data;
  agg *a = s->a;
  if (status < 0) {
    cairn_log_warn(AGG_COMP, "accept on %s failed: %s", s->addr,
                   uv_strerror(status));
    return;
  }
  qconn *c = calloc(1, sizeof(*c));
  if (!c) {
    cairn_log_error(AGG_COMP,
                    "accept on %s: out of memory; query connection dropped",
                    s->addr);
    return;
  }
  c->s = s;
  c->accepted_ns = cairn_time_mono_ns();
  atomic_init(&c->cancel, false);
  cairn_err e =
      pb_conn_accept(server, a->tls, QS_MAX_FRAME, &qconn_cbs, c, &c->pc);
  if (e != CAIRN_OK) {
    cairn_log_warn(AGG_COMP, "accept on %s failed: %s", s->addr,
                   cairn_err_name(e));
    free(c);
    return;
  }
  snprintf(c->peer, sizeof(c->peer), "%s", pb_conn_peer(c->pc));
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  if (s->closing) {
    pb_conn_close(c->pc, CAIRN_OK, "aggregator is shutting down");
  } else if (s->n_conns > a->cfg.query_max_conns) {
    cairn_log_warn(AGG_COMP,
                   "query connection from %s refused: %llu are open "
                   "(--query-max-conns %llu)",
                   c->peer, (unsigned long long)(s->n_conns - 1),
                   (unsigned long long)a->cfg.query_max_conns);
    pb_conn_close(c->pc, CAIRN_E_LIMIT,
                  "too many query connections (--query-max-conns)");
  }
}

/* Drop connections that sent no complete QueryRequest within QS_REQUEST_S
 * of connecting (TLS handshake included): a client that connects and stays
 * silent must not hold a --query-max-conns slot forever. */
static void on_sweep(uv_timer_t *t) {
  agg_qserver *s = t->data;
  int64_t now = cairn_time_mono_ns();
  /* on_close runs later, never inside pb_conn_close: the list stays valid */
  for (qconn *c = s->conns; c; c = c->next)
    if (c->pc && !c->has_request && now - c->accepted_ns >= QS_REQUEST_S * 1000000000LL)
      pb_conn_close(c->pc, CAIRN_E_TIMEOUT,
                    "CAIRN_E_TIMEOUT: no QueryRequest within " QS_STR(QS_REQUEST_S)
                    " s of connecting; connection dropped");
}

/* ---- lifecycle ---- */

cairn_err agg__qserver_open(agg *a, char *errbuf, size_t errlen) {
  if (!a->cfg.query_listen || !*a->cfg.query_listen)
    return CAIRN_OK;
  agg_qserver *s = calloc(1, sizeof(*s));
  if (!s)
    return CAIRN_E_NOMEM;
  s->a = a;
  a->qs = s;
  if (pthread_mutex_init(&s->mu, NULL) != 0)
    return CAIRN_E_NOMEM;
  s->mu_init = true;
  cairn_err e = agg__acl_load(a->cfg.query_acl, &s->acl, errbuf, errlen);
  if (e != CAIRN_OK)
    return e;
  if (uv_async_init(&a->loop, &s->async, on_async) != 0)
    return CAIRN_E_NOMEM;
  s->async_open = true;
  s->async.data = s;
  if (uv_timer_init(&a->loop, &s->sweep) != 0)
    return CAIRN_E_NOMEM;
  s->sweep_open = true;
  s->sweep.data = s;
  uv_timer_start(&s->sweep, on_sweep, QS_SWEEP_MS, QS_SWEEP_MS);
  int r = uv_tcp_init(&a->loop, &s->listener);
  if (r < 0) {
    snprintf(errbuf, errlen, "--query-listen %s: %s", a->cfg.query_listen,
             uv_strerror(r));
    return CAIRN_E_CONFIG;
  }
  s->listener_open = true;
  s->listener.data = s;
  e = pb_tcp_listen(&s->listener, a->cfg.query_listen, "--query-listen",
                    on_connection, s->addr, sizeof(s->addr), errbuf, errlen);
  if (e != CAIRN_OK)
    return e;
  cairn_log_info(
      AGG_COMP,
      "listening on %s for queries (mTLS; %zu identities in --query-acl %s)",
      s->addr, agg__acl_count(s->acl), a->cfg.query_acl);
  return CAIRN_OK;
}

const char *agg__qserver_addr(const agg *a) { return a->qs ? a->qs->addr : ""; }

void agg__qserver_close(agg *a) {
  agg_qserver *s = a->qs;
  if (!s || s->closing)
    return;
  s->closing = true;
  if (s->listener_open) {
    uv_close((uv_handle_t *)&s->listener, NULL);
    s->listener_open = false;
  }
  if (s->sweep_open) {
    uv_close((uv_handle_t *)&s->sweep, NULL);
    s->sweep_open = false;
  }
  for (qconn *c = s->conns; c; c = c->next) {
    pthread_mutex_lock(&s->mu);
    atomic_store(&c->cancel, true);
    if (c->cv_init)
      pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&s->mu);
    if (c->pc)
      pb_conn_close(c->pc, CAIRN_OK, "aggregator is shutting down");
  }
  qs_maybe_close_async(s);
}

void agg__qserver_free(agg *a) {
  agg_qserver *s = a->qs;
  if (!s)
    return;
  qconn *c = s->conns;
  while (c) {
    qconn *next = c->next;
    if (c->thread_started && !c->joined) {
      atomic_store(&c->cancel, true);
      pthread_mutex_lock(&s->mu);
      pthread_cond_signal(&c->cv);
      pthread_mutex_unlock(&s->mu);
      pthread_join(c->thread, NULL);
    }
    qconn_free(c);
    c = next;
  }
  agg__acl_free(s->acl);
  if (s->mu_init)
    pthread_mutex_destroy(&s->mu);
  free(s);
  a->qs = NULL;
}
