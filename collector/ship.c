/* collector/ship.c: the connection to the aggregator. Resolve (numeric, or
 * uv_getaddrinfo: never synchronous DNS), TLS connect, Hello/HelloAck, then
 * send encoded batches in queue order with up to --max-inflight unacked.
 * Acks arrive in seq order; a lost connection puts every in-flight batch back
 * to READY and reconnects with exponential backoff + jitter (250 ms .. 30 s),
 * rotating through the --aggregator list. New seqs per connection; the
 * aggregator dedupes records by (instance, file_stream, end_offset).
 * SIGHUP reloads the certificate, key and CA off the loop; the live
 * connection keeps the old ones, the next connection uses the new ones.
 * With --spool-dir, unsent spool entries go out before any in-memory batch
 * (they are older), and no in-memory batch is sent past one being spooled,
 * so the aggregator's per-stream high-water mark never sees a later offset
 * before an earlier one.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "collector/internal.h"
#include "common/log.h"
#include "common/timeparse.h"

#define BACKOFF_MIN_MS 250u
#define BACKOFF_MAX_MS 30000u

typedef enum ship_state {
  SH_IDLE = 0, /* no connection, none pending: kick connects */
  SH_BACKOFF,  /* waiting for the backoff timer */
  SH_RESOLVING,
  SH_CONNECTING, /* TCP + TLS handshake */
  SH_HELLO,      /* Hello sent, waiting for HelloAck */
  SH_READY,
  SH_CLOSED,
} ship_state;

struct col_ship {
  col_collector *c;
  ship_state st;
  pb_conn *conn;         /* live connection or NULL */
  size_t peer;           /* index into cfg->peers */
  char peer_name[300];   /* "host:port" for log lines */
  uv_timer_t backoff_timer, retry_timer;
  uv_signal_t sighup;    /* reloads the TLS files for the next connection */
  bool reloading;        /* a TLS load runs on the thread pool */
  bool reload_again;     /* SIGHUP during it: load once more */
  int open_handles;
  uv_getaddrinfo_t gai;
  bool gai_busy;
  uint64_t backoff_ms;   /* next delay before jitter */
  uint64_t rng;          /* xorshift state for jitter */
  uint64_t next_seq;     /* per connection */
  struct ship_slot *inflight; /* ring of sent batches / spool entries in seq order */
  size_t if_head, if_n, if_cap;
  size_t if_mem;         /* in-memory batches in the ring */
  bool down;             /* a connect failed or the session ended since the last HelloAck */
  bool retry_hold;       /* an Ack RETRY: wait for retry_timer before sending more */
  bool closing;
  void (*close_cb)(void *ud);
  void *close_ud;
  cairn_arena rx;        /* decoded frames, reset per frame */
  cairn_buf tx;          /* packing scratch */
};

/* One sent, unacked batch: an in-memory batch, or (b == NULL) a spool
 * entry ending at end. */
typedef struct ship_slot {
  col_batch *b;
  uint64_t seq;
  uint32_t records;
  col_spool_pos end;
} ship_slot;

static void ship_connect(col_ship *s);
static void maybe_closed(col_ship *s);

bool col__ship_ready(const col_ship *s) { return s->st == SH_READY; }
size_t col__ship_inflight(const col_ship *s) { return s->if_n; }
size_t col__ship_mem_inflight(const col_ship *s) { return s->if_mem; }
bool col__ship_down(const col_ship *s) {
  return (s->st != SH_READY && s->down) || s->retry_hold;
}

static uint64_t jitter(col_ship *s, uint64_t ms) {
  s->rng ^= s->rng << 13;
  s->rng ^= s->rng >> 7;
  s->rng ^= s->rng << 17;
  uint64_t half = ms / 2;
  return half + (half ? s->rng % (half + 1) : 0);
}

static void on_backoff(uv_timer_t *h) {
  col_ship *s = h->data;
  if (s->st != SH_BACKOFF || s->closing) return;
  s->st = SH_IDLE;
  ship_connect(s);
}

/* Schedule the next attempt on the next peer. */
static void schedule_retry(col_ship *s) {
  if (s->closing) return;
  s->down = true;
  uint64_t delay = jitter(s, s->backoff_ms);
  s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
  s->peer = (s->peer + 1) % s->c->cfg->n_peers;
  s->st = SH_BACKOFF;
  uv_timer_start(&s->backoff_timer, on_backoff, delay, 0);
}

static cairn_err send_env(col_ship *s, const Cairn__Envelope *env) {
  size_t n = cairn__envelope__get_packed_size(env);
  cairn_buf_reset(&s->tx);
  if (cairn_buf_reserve(&s->tx, n) != CAIRN_OK) return CAIRN_E_NOMEM;
  s->tx.len = cairn__envelope__pack(env, s->tx.ptr);
  return pb_conn_send(s->conn, s->tx.ptr, s->tx.len);
}

/* Send one Batch frame: b (in memory) or, with b NULL, the spool entry e. */
static cairn_err send_batch(col_ship *s, col_batch *b, const col_spool_entry *e) {
  Cairn__Batch m = CAIRN__BATCH__INIT;
  m.seq = ++s->next_seq;
  m.record_count = b ? (uint32_t)b->n : e->records;
  m.raw_size = b ? b->raw_size : e->raw_size;
  m.payload.data = b ? b->payload.ptr : (uint8_t *)e->payload;
  m.payload.len = b ? b->payload.len : e->len;
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_BATCH;
  env.batch = &m;
  cairn_err err = send_env(s, &env);
  if (err != CAIRN_OK) return err;
  ship_slot *sl = &s->inflight[(s->if_head + s->if_n) % s->if_cap];
  *sl = (ship_slot){.b = b, .seq = m.seq, .records = m.record_count};
  if (b) {
    b->seq = m.seq;
    b->state = COL_BATCH_SENT;
    s->if_mem++;
  } else {
    sl->end = e->end;
  }
  s->if_n++;
  s->c->stats.batches_sent++;
  s->c->stats.records_sent += m.record_count;
  s->c->stats.bytes_sent += m.payload.len;
  return CAIRN_OK;
}

void col__ship_kick(col_ship *s) {
  if (s->closing || s->c->closing) return;
  if (s->st == SH_IDLE) {
    ship_connect(s);
    return;
  }
  if (s->st != SH_READY || s->retry_hold) return;
  col_spool *sp = s->c->spool;
  /* the spool holds older batches than the queue: all of it goes first */
  while (sp && col__spool_unsent(sp) && s->if_n < s->if_cap) {
    col_spool_entry e;
    cairn_err err = col__spool_next(sp, &e);
    if (err == CAIRN_E_AGAIN) break;
    if (err == CAIRN_OK) err = send_batch(s, NULL, &e);
    if (err != CAIRN_OK) {
      pb_conn_close(s->conn, err, "cannot send a spooled batch");
      return;
    }
  }
  if (sp && col__spool_unsent(sp)) return;
  for (col_batch *b = s->c->q_head; b && s->if_n < s->if_cap; b = b->next) {
    if (b->state == COL_BATCH_SPOOLING) break; /* later batches must not overtake it */
    if (b->state != COL_BATCH_READY) continue;
    cairn_err err = send_batch(s, b, NULL);
    if (err != CAIRN_OK) {
      pb_conn_close(s->conn, err, "cannot queue a batch");
      return;
    }
  }
}

/* Put every in-flight batch back to READY and rewind the spool (they are
 * re-sent in the same order). */
static void requeue_inflight(col_ship *s) {
  for (size_t i = 0; i < s->if_n; i++) {
    col_batch *b = s->inflight[(s->if_head + i) % s->if_cap].b;
    if (b && b->state == COL_BATCH_SENT) b->state = COL_BATCH_READY;
  }
  if (s->c->spool) col__spool_rewind(s->c->spool);
  s->if_head = s->if_n = s->if_mem = 0;
}

static void on_retry_timer(uv_timer_t *h) {
  col_ship *s = h->data;
  s->retry_hold = false;
  col__ship_kick(s);
}

static void on_conn_ready(pb_conn *conn, void *ud) {
  col_ship *s = ud;
  const col_collector *c = s->c;
  Cairn__Hello h = CAIRN__HELLO__INIT;
  h.protocol_version = PB_PROTOCOL_VERSION;
  h.instance_id = (char *)col__ckpt_instance_id(c->ck);
  h.node_name = (char *)c->cfg->node;
  h.agent_version = (char *)"cairn-collector " CAIRN_VERSION;
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_HELLO;
  env.hello = &h;
  s->st = SH_HELLO;
  s->next_seq = 0;
  if (send_env(s, &env) != CAIRN_OK) pb_conn_close(conn, CAIRN_E_NOMEM, "cannot queue Hello");
}

/* Ack of a spool entry: OK and REJECT move the ack cursor (REJECT loudly,
 * as for memory batches); RETRY ends the session so that nothing after the
 * entry is acked before it (the spool rewinds on close). */
static cairn_err handle_spool_ack(col_ship *s, const ship_slot *sl, const Cairn__Ack *a) {
  col_collector *c = s->c;
  if (a->status == CAIRN__ACK_STATUS__ACK_RETRY) {
    c->stats.retries++;
    if (!s->retry_hold) { /* the same growing hold as for an in-memory batch */
      uint64_t delay = jitter(s, s->backoff_ms);
      s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
      s->retry_hold = true;
      uv_timer_start(&s->retry_timer, on_retry_timer, delay, 0);
      char key[320];
      snprintf(key, sizeof(key), "spool retry %s", s->peer_name);
      cairn_log_limited(&c->log_limit, key, CAIRN_LOG_WARN, "collector",
                        "aggregator %s asked to retry a spooled batch: %s; sending again in "
                        "%llu ms (the batch stays in the spool)", s->peer_name, a->reason,
                        (unsigned long long)delay);
    }
    return CAIRN_E_AGAIN; /* ends the session: the spool rewinds, nothing later is acked first */
  }
  if (a->status != CAIRN__ACK_STATUS__ACK_OK) {
    c->stats.rejects++;
    cairn_log_error("collector", "aggregator %s REJECTED a spooled batch (%u records): %s; these "
                    "records are not stored. Check the aggregator log and limits",
                    s->peer_name, sl->records, a->reason);
  } else {
    s->backoff_ms = BACKOFF_MIN_MS;
  }
  c->stats.batches_acked++;
  c->stats.records_acked += sl->records;
  c->last_data_ns = cairn_time_mono_ns();
  c->last_ack_ns = c->last_data_ns;
  col__spool_acked(c->spool, sl->end);
  col__spool_pump(c); /* deletes the segments when everything is acked */
  return CAIRN_OK;
}

static cairn_err handle_ack(col_ship *s, const Cairn__Ack *a) {
  if (s->if_n == 0) return CAIRN_E_PROTO;
  ship_slot sl = s->inflight[s->if_head];
  if (a->seq != sl.seq) return CAIRN_E_PROTO;
  s->if_head = (s->if_head + 1) % s->if_cap;
  s->if_n--;
  if (!sl.b) return handle_spool_ack(s, &sl, a);
  s->if_mem--;
  col_batch *b = sl.b;
  switch (a->status) {
  case CAIRN__ACK_STATUS__ACK_OK:
    col__batch_acked(s->c, b);
    s->backoff_ms = BACKOFF_MIN_MS;
    break;
  case CAIRN__ACK_STATUS__ACK_RETRY:
    s->c->stats.retries++;
    b->state = COL_BATCH_READY;
    if (!s->retry_hold) {
      uint64_t delay = jitter(s, s->backoff_ms);
      s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
      cairn_log_warn("collector", "aggregator %s asked to retry batch %llu: %s; sending again in "
                     "%llu ms (the data stays in the files meanwhile)",
                     s->peer_name, (unsigned long long)b->id, a->reason, (unsigned long long)delay);
      s->retry_hold = true;
      uv_timer_start(&s->retry_timer, on_retry_timer, delay, 0);
    }
    break;
  default:
    /* never acceptable as is: re-sending would loop forever, so the batch
     * counts as done and its checkpoints advance; say so loudly */
    s->c->stats.rejects++;
    cairn_log_error("collector", "aggregator %s REJECTED batch %llu (%zu records): %s; these "
                    "records are not stored. Check the aggregator log and limits",
                    s->peer_name, (unsigned long long)b->id, b->n, a->reason);
    col__batch_acked(s->c, b);
    break;
  }
  return CAIRN_OK;
}

static cairn_err on_conn_frame(pb_conn *conn, const uint8_t *body, size_t len, void *ud) {
  col_ship *s = ud;
  cairn_arena_reset(&s->rx);
  Cairn__Envelope *env;
  cairn_err err = pb_envelope_decode(body, len, &s->rx, &env);
  if (err != CAIRN_OK) return err;
  if (env->msg_case == CAIRN__ENVELOPE__MSG_HELLO_ACK && s->st == SH_HELLO) {
    const Cairn__HelloAck *ha = env->hello_ack;
    if (ha->status != CAIRN__ACK_STATUS__ACK_OK) {
      cairn_log_warn("collector", "aggregator %s refused this collector: %s; retrying with backoff "
                     "(check that the client certificate covers --node-name %s)",
                     s->peer_name, ha->reason, s->c->cfg->node);
      pb_conn_close(conn, CAIRN_E_PERM, "hello refused");
      return CAIRN_OK;
    }
    cairn_log_info("collector", "connected to aggregator %s (it sees us as '%s')", s->peer_name,
                   ha->identity);
    s->st = SH_READY;
    s->down = false;
    /* after an Ack RETRY the aggregator ends the session; the backoff keeps
     * growing over those reconnects until a batch is acked OK */
    if (!s->retry_hold) s->backoff_ms = BACKOFF_MIN_MS;
    col__ship_kick(s);
    return CAIRN_OK;
  }
  if (env->msg_case == CAIRN__ENVELOPE__MSG_ACK && s->st == SH_READY) {
    err = handle_ack(s, env->ack);
    if (err == CAIRN_OK) col__ship_kick(s);
    return err;
  }
  return CAIRN_E_PROTO;
}

static void on_conn_close(pb_conn *conn, cairn_err why, const char *reason, void *ud) {
  col_ship *s = ud;
  bool was_ready = s->st == SH_READY;
  bool was_idle = was_ready && s->if_n == 0 && why == CAIRN_E_CLOSED;
  s->conn = NULL;
  requeue_inflight(s);
  if (s->closing) {
    s->st = SH_CLOSED;
    maybe_closed(s);
    return;
  }
  s->c->stats.reconnects++;
  s->down = true;
  schedule_retry(s);
  col__spool_pump(s->c); /* no aggregator takes batches now: spool what is ready */
  uint64_t next = (uint64_t)uv_timer_get_due_in(&s->backoff_timer);
  if (was_idle) {
    /* the aggregator ends sessions that sent nothing for its --idle-timeout */
    cairn_log_info("collector", "aggregator %s closed the idle connection (nothing to send); "
                   "reconnecting to %s:%s in %llu ms", s->peer_name,
                   s->c->cfg->peers[s->peer].host, s->c->cfg->peers[s->peer].port,
                   (unsigned long long)next);
    return;
  }
  char key[320];
  snprintf(key, sizeof(key), "connection %s", s->peer_name);
  cairn_log_limited(&s->c->log_limit, key, CAIRN_LOG_WARN, "collector",
                    "%s aggregator %s: %s (%s); reconnecting to %s:%s in %llu ms",
                    was_ready ? "lost connection to" : "cannot connect to", s->peer_name, reason,
                    cairn_err_name(why), s->c->cfg->peers[s->peer].host,
                    s->c->cfg->peers[s->peer].port, (unsigned long long)next);
}

static const pb_conn_cbs conn_cbs = {
    .on_ready = on_conn_ready,
    .on_frame = on_conn_frame,
    .on_close = on_conn_close,
};

static void do_connect(col_ship *s, const struct sockaddr *addr) {
  const col_config *cfg = s->c->cfg;
  const char *name = cfg->server_name && *cfg->server_name ? cfg->server_name : cfg->peers[s->peer].host;
  s->st = SH_CONNECTING;
  cairn_err err = pb_conn_connect(&s->c->loop, addr, name, s->c->tls, PB_DEFAULT_MAX_FRAME,
                                  &conn_cbs, s, &s->conn);
  if (err != CAIRN_OK) {
    s->conn = NULL;
    cairn_log_warn("collector", "cannot connect to aggregator %s: %s; retrying", s->peer_name,
                   cairn_err_str(err));
    schedule_retry(s);
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  col_ship *s = req->data;
  s->gai_busy = false;
  if (s->closing) {
    if (res) uv_freeaddrinfo(res);
    maybe_closed(s);
    return;
  }
  if (status != 0 || !res) {
    cairn_log_warn("collector", "cannot resolve aggregator %s: %s; retrying (check --aggregator "
                   "and DNS)", s->peer_name, uv_strerror(status));
    if (res) uv_freeaddrinfo(res);
    schedule_retry(s);
    return;
  }
  do_connect(s, res->ai_addr);
  uv_freeaddrinfo(res);
}

static void ship_connect(col_ship *s) {
  if (s->closing || s->st != SH_IDLE) return;
  const col_peer *p = &s->c->cfg->peers[s->peer];
  snprintf(s->peer_name, sizeof(s->peer_name), "%s:%s", p->host, p->port);
  int port = atoi(p->port);
  struct sockaddr_storage ss;
  if (uv_ip4_addr(p->host, port, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(p->host, port, (struct sockaddr_in6 *)&ss) == 0) {
    do_connect(s, (const struct sockaddr *)&ss);
    return;
  }
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  s->gai.data = s;
  s->st = SH_RESOLVING;
  int rc = uv_getaddrinfo(&s->c->loop, &s->gai, on_resolved, p->host, p->port, &hints);
  if (rc != 0) {
    cairn_log_warn("collector", "cannot resolve aggregator %s: %s; retrying", s->peer_name,
                   uv_strerror(rc));
    schedule_retry(s);
    return;
  }
  s->gai_busy = true;
}

void col__tls_config(const col_config *cfg, pb_tls_config *out) {
  memset(out, 0, sizeof(*out));
  out->cert_file = cfg->tls_cert;
  out->key_file = cfg->tls_key;
  out->ca_file = cfg->tls_ca;
  out->server = false;
  out->min_version =
      cfg->tls_min_version && strcmp(cfg->tls_min_version, "1.2") == 0 ? PB_TLS_1_2 : PB_TLS_1_3;
}

static void on_tls_loaded(pb_tls_ctx *fresh, cairn_err e, const char *err, void *ud);

/* Start loading the TLS files on the thread pool (or note that another load
 * must follow the one running). */
static void tls_reload(col_ship *s) {
  if (s->reloading) {
    s->reload_again = true;
    return;
  }
  pb_tls_config tc;
  col__tls_config(s->c->cfg, &tc);
  cairn_err e = pb_tls_ctx_load_async(&s->c->loop, &tc, on_tls_loaded, s);
  if (e != CAIRN_OK) {
    cairn_log_error("collector", "SIGHUP: cannot start the TLS reload: %s; keeping the current "
                    "certificate", cairn_err_str(e));
    return;
  }
  s->reloading = true;
  cairn_log_info("collector", "SIGHUP: reloading --tls-cert %s, --tls-key %s, --tls-ca %s",
                 s->c->cfg->tls_cert, s->c->cfg->tls_key, s->c->cfg->tls_ca);
}

static void on_tls_loaded(pb_tls_ctx *fresh, cairn_err e, const char *err, void *ud) {
  col_ship *s = ud;
  s->reloading = false;
  if (e != CAIRN_OK) {
    cairn_log_error("collector", "SIGHUP: TLS reload failed, keeping the current certificate: "
                    "%s (%s); fix the files and send SIGHUP again", err, cairn_err_name(e));
  } else {
    char now[300];
    pb_tls_ctx_describe(fresh, now, sizeof(now));
    /* a live connection holds its own reference to the old OpenSSL context */
    pb_tls_ctx_free(s->c->tls);
    s->c->tls = fresh;
    cairn_log_info("collector", "SIGHUP: TLS files reloaded; the next connection uses them: %s",
                   now);
  }
  if (s->reload_again && !s->closing) {
    s->reload_again = false;
    tls_reload(s);
  }
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  col_ship *s = h->data;
  if (!s->closing) tls_reload(s);
}

cairn_err col__ship_new(col_collector *c, col_ship **out, char *errbuf, size_t errlen) {
  *out = NULL;
  if (c->cfg->n_peers == 0) {
    snprintf(errbuf, errlen, "no --aggregator given");
    return CAIRN_E_CONFIG;
  }
  col_ship *s = calloc(1, sizeof(*s));
  if (!s) return CAIRN_E_NOMEM;
  s->if_cap = (size_t)c->cfg->max_inflight;
  s->inflight = calloc(s->if_cap, sizeof(*s->inflight));
  s->if_mem = 0;
  if (!s->inflight) {
    free(s);
    return CAIRN_E_NOMEM;
  }
  s->c = c;
  s->backoff_ms = BACKOFF_MIN_MS;
  s->rng = (uint64_t)cairn_time_now_ns() | 1;
  cairn_arena_init(&s->rx, 16u << 10);
  cairn_buf_init(&s->tx);
  uv_timer_init(&c->loop, &s->backoff_timer);
  uv_timer_init(&c->loop, &s->retry_timer);
  s->backoff_timer.data = s->retry_timer.data = s;
  uv_signal_init(&c->loop, &s->sighup);
  s->sighup.data = s;
  s->open_handles = 3;
  uv_signal_start(&s->sighup, on_sighup, SIGHUP);
  char cert[300];
  pb_tls_ctx_describe(c->tls, cert, sizeof(cert));
  cairn_log_info("collector", "TLS client certificate: %s (SIGHUP reloads it)", cert);
  if (c->cfg->tls_min_version && strcmp(c->cfg->tls_min_version, "1.2") == 0)
    cairn_log_warn("collector", "--tls-min-version 1.2: TLS 1.2 is allowed to the aggregator "
                   "(ECDHE+AEAD suites only); remove it once the aggregator speaks TLS 1.3");
  *out = s;
  ship_connect(s); /* connect early: Hello is done before the first batch closes */
  return CAIRN_OK;
}

static void on_timer_closed(uv_handle_t *h) {
  col_ship *s = h->data;
  s->open_handles--;
  maybe_closed(s);
}

static void maybe_closed(col_ship *s) {
  if (!s->closing || s->conn || s->gai_busy || s->open_handles > 0 || !s->close_cb) return;
  void (*cb)(void *) = s->close_cb;
  s->close_cb = NULL;
  cb(s->close_ud);
}

void col__ship_close(col_ship *s, void (*cb)(void *ud), void *ud) {
  if (s->closing) return;
  s->closing = true;
  s->close_cb = cb;
  s->close_ud = ud;
  uv_close((uv_handle_t *)&s->backoff_timer, on_timer_closed);
  uv_close((uv_handle_t *)&s->retry_timer, on_timer_closed);
  uv_close((uv_handle_t *)&s->sighup, on_timer_closed);
  if (s->gai_busy) uv_cancel((uv_req_t *)&s->gai);
  if (s->conn) pb_conn_close(s->conn, CAIRN_OK, "collector shutting down");
  maybe_closed(s);
}

void col__ship_free(col_ship *s) {
  if (!s) return;
  cairn_arena_fini(&s->rx);
  cairn_buf_fini(&s->tx);
  free(s->inflight);
  free(s);
}
