/* aggregator/server.c: the TLS listener and the session protocol, on the loop.
 *
 * A session is Hello -> HelloAck, then Batch -> Ack in order. The loop never
 * decodes a batch or touches LMDB: it copies the zstd payload into a job for
 * the writer thread (writer.c) and sends the Ack when the completion comes
 * back through done_async. Jobs hold a reference on their connection, so a
 * connection closed mid-batch stays valid until its last completion is seen.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fnmatch.h>
#include <string.h>

#include "aggregator/internal.h"
#include "proto/http.h"
#include "common/log.h"
#include "common/timeparse.h"

#define AGG_INSTANCE_ID_MAX 64u

void agg__conn_unref(agg_conn *c) {
  if (!c) return;
  if (atomic_fetch_sub(&c->refs, 1) != 1) return;
  free(c->identity);
  free(c->node);
  free(c->instance_id);
  free(c->close_reason);
  free(c);
}

agg_reject_kind agg__reject_kind(cairn_err e) {
  switch (e) {
    case CAIRN_E_LIMIT: return AGG_REJ_LIMIT;
    case CAIRN_E_ZSTD: return AGG_REJ_ZSTD;
    case CAIRN_E_PROTO: return AGG_REJ_PROTO;
    case CAIRN_E_PERM: return AGG_REJ_PERM;
    default: return AGG_REJ_OTHER;
  }
}

/* Close c (idempotent), remembering why for the on_close log line. */
static void conn_close(agg_conn *c, cairn_err why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_close(agg_conn *c, cairn_err why, const char *fmt, ...) {
  if (!c->pc || c->state == AGG_CONN_CLOSING) return;
  char reason[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof(reason), fmt, ap);
  va_end(ap);
  if (c->state == AGG_CONN_HANDSHAKE) {
    /* on_close logs proto/tls's reason under the handshake rules: a close it
     * already started (the handshake deadline) keeps its own reason even when
     * a shutdown closes every connection before that close completed */
    atomic_store(&c->dead, true);
    pb_conn_close(c->pc, why, reason);
    return;
  }
  free(c->close_reason);
  c->close_reason = strdup(reason);
  c->state = AGG_CONN_CLOSING;
  atomic_store(&c->dead, true);
  pb_conn_close(c->pc, why, reason);
}

/* Pack env and queue it as one frame on c. */
static cairn_err conn_send_env(agg_conn *c, const Cairn__Envelope *env) {
  if (!c->pc) return CAIRN_E_CLOSED;
  size_t n = cairn__envelope__get_packed_size(env);
  uint8_t stackbuf[1024];
  uint8_t *p = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
  if (!p) return CAIRN_E_NOMEM;
  cairn__envelope__pack(env, p);
  cairn_err e = pb_conn_send(c->pc, p, n);
  if (p != stackbuf) free(p);
  return e;
}

static cairn_err send_hello_ack(agg_conn *c, Cairn__AckStatus st, const char *reason,
                                const char *identity) {
  Cairn__HelloAck ha = CAIRN__HELLO_ACK__INIT;
  ha.protocol_version = PB_PROTOCOL_VERSION;
  ha.status = st;
  ha.reason = (char *)(reason ? reason : "");
  ha.identity = (char *)(identity ? identity : "");
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_HELLO_ACK;
  env.hello_ack = &ha;
  return conn_send_env(c, &env);
}

static cairn_err send_ack(agg_conn *c, const agg_job *j) {
  Cairn__Ack ack = CAIRN__ACK__INIT;
  ack.seq = j->seq;
  ack.status = j->status;
  ack.reason = (char *)(j->status == CAIRN__ACK_STATUS__ACK_OK ? "" : j->reason);
  ack.stored = j->stored;
  ack.duplicates = j->dups;
  Cairn__Envelope env = CAIRN__ENVELOPE__INIT;
  env.msg_case = CAIRN__ENVELOPE__MSG_ACK;
  env.ack = &ack;
  return conn_send_env(c, &env);
}

/* Refuse a Hello: HelloAck REJECT with reason, then close. */
static cairn_err hello_reject(agg_conn *c, cairn_err e, const char *reason) {
  agg *a = c->a;
  atomic_fetch_add(&a->m.rejects[agg__reject_kind(e)], 1);
  char key[96];
  const char *pcol = strrchr(c->peer, ':'); /* key by host: the port changes per attempt */
  snprintf(key, sizeof(key), "hello %.*s", pcol ? (int)(pcol - c->peer) : 64, c->peer);
  cairn_log_limited(&a->log_limit, key, CAIRN_LOG_WARN, AGG_COMP, "session from %s refused: %s",
                    c->peer, reason);
  cairn_err se = send_hello_ack(c, CAIRN__ACK_STATUS__ACK_REJECT, reason, pb_conn_identity(c->pc));
  if (se != CAIRN_OK) {
    cairn_log_warn(AGG_COMP, "could not send HelloAck REJECT to %s: %s", c->peer,
                   cairn_err_name(se));
  }
  conn_close(c, e, "Hello refused: %s", reason);
  return CAIRN_OK;
}

/* The --node-policy entry ("IDENTITY=NODE-GLOB") that lets identity state
 * node, or NULL. The weaker alternative to a per-node certificate SAN. */
static const char *node_policy_match(const cairn_str_list *pol, const char *identity,
                                     const char *node) {
  for (size_t i = 0; i < pol->n; i++) {
    const char *eq = strchr(pol->v[i], '=');
    if (!eq) continue;
    size_t il = (size_t)(eq - pol->v[i]);
    if (strlen(identity) == il && strncmp(identity, pol->v[i], il) == 0 &&
        fnmatch(eq + 1, node, 0) == 0)
      return pol->v[i];
  }
  return NULL;
}

static cairn_err on_hello(agg_conn *c, const Cairn__Hello *h) {
  char reason[256];
  if (h->protocol_version != PB_PROTOCOL_VERSION) {
    snprintf(reason, sizeof(reason),
             "CAIRN_E_PROTO: protocol version %u is not supported (this aggregator speaks %u); "
             "upgrade the older side",
             h->protocol_version, PB_PROTOCOL_VERSION);
    return hello_reject(c, CAIRN_E_PROTO, reason);
  }
  size_t ilen = h->instance_id ? strlen(h->instance_id) : 0;
  if (ilen == 0 || ilen > AGG_INSTANCE_ID_MAX) {
    snprintf(reason, sizeof(reason),
             "CAIRN_E_PROTO: instance_id must be 1..%u characters (got %zu)", AGG_INSTANCE_ID_MAX,
             ilen);
    return hello_reject(c, CAIRN_E_PROTO, reason);
  }
  const char *identity = pb_conn_identity(c->pc);
  const char *node = identity;
  const char *by_policy = NULL;
  if (h->node_name && *h->node_name) {
    if (!pb_conn_peer_has_name(c->pc, h->node_name))
      by_policy = node_policy_match(&c->a->cfg.node_policy, identity, h->node_name);
    if (!pb_conn_peer_has_name(c->pc, h->node_name) && !by_policy) {
      snprintf(reason, sizeof(reason), "CAIRN_E_PERM: certificate CN=%s does not cover node %.64s",
               identity, h->node_name);
      return hello_reject(c, CAIRN_E_PERM, reason);
    }
    node = h->node_name;
  }
  c->identity = strdup(identity);
  c->node = strdup(node);
  c->instance_id = strdup(h->instance_id);
  if (!c->identity || !c->node || !c->instance_id) return CAIRN_E_NOMEM;
  cairn_err e = send_hello_ack(c, CAIRN__ACK_STATUS__ACK_OK, NULL, identity);
  if (e != CAIRN_OK) return e;
  c->state = AGG_CONN_READY;
  c->counted = true;
  atomic_fetch_add(&c->a->m.sessions, 1);
  cairn_log_info(AGG_COMP, "session from %s: identity=%s node=%s%s%s%s instance=%s agent=%s",
                 c->peer, c->identity, c->node, by_policy ? " (accepted by --node-policy " : "",
                 by_policy ? by_policy : "", by_policy ? ")" : "", c->instance_id,
                 h->agent_version && *h->agent_version ? h->agent_version : "-");
  return CAIRN_OK;
}

static void conn_maybe_pause(agg_conn *c) {
  if (c->paused) return;
  if (c->inflight >= AGG_CONN_MAX_INFLIGHT || c->inflight_bytes >= AGG_CONN_MAX_INFLIGHT_BYTES) {
    pb_conn_read_stop(c->pc);
    c->paused = true;
  }
}

static void conn_maybe_resume(agg_conn *c) {
  if (!c->paused || !c->pc || c->state != AGG_CONN_READY || c->a->shutting_down) return;
  if (c->inflight <= AGG_CONN_MAX_INFLIGHT / 2 &&
      c->inflight_bytes <= AGG_CONN_MAX_INFLIGHT_BYTES / 2) {
    c->paused = false;
    pb_conn_read_start(c->pc);
  }
}

static cairn_err on_batch(agg_conn *c, const Cairn__Batch *b) {
  agg_job *j = calloc(1, sizeof(*j));
  if (!j) return CAIRN_E_NOMEM;
  if (b->payload.len > 0) {
    j->payload = malloc(b->payload.len);
    if (!j->payload) {
      free(j);
      return CAIRN_E_NOMEM;
    }
    memcpy(j->payload, b->payload.data, b->payload.len);
  }
  j->payload_len = b->payload.len;
  j->seq = b->seq;
  j->record_count = b->record_count;
  j->conn = c;
  atomic_fetch_add(&c->refs, 1);
  c->inflight++;
  c->inflight_bytes += j->payload_len;
  agg__writer_push(c->a, j);
  conn_maybe_pause(c);
  return CAIRN_OK;
}

static const char *env_case_name(Cairn__Envelope__MsgCase mc) {
  switch (mc) {
    case CAIRN__ENVELOPE__MSG_HELLO: return "Hello";
    case CAIRN__ENVELOPE__MSG_HELLO_ACK: return "HelloAck";
    case CAIRN__ENVELOPE__MSG_BATCH: return "Batch";
    case CAIRN__ENVELOPE__MSG_ACK: return "Ack";
    default: return "an empty envelope";
  }
}

static void on_ready(pb_conn *pc, void *ud) {
  agg_conn *c = ud;
  if (c->state == AGG_CONN_HANDSHAKE) c->state = AGG_CONN_HELLO;
  c->last_rx_ns = cairn_time_mono_ns(); /* the Hello deadline counts from here */
  cairn_log_debug(AGG_COMP, "TLS handshake with %s done: identity=%s", c->peer,
                  pb_conn_identity(pc));
}

static cairn_err on_frame(pb_conn *pc, const uint8_t *body, size_t len, void *ud) {
  agg_conn *c = ud;
  agg *a = c->a;
  if (c->state == AGG_CONN_CLOSING) return CAIRN_OK; /* ignore what arrives after close */
  c->last_rx_ns = cairn_time_mono_ns();
  cairn_arena_reset(&a->frame_arena);
  Cairn__Envelope *env = NULL;
  cairn_err e = pb_envelope_decode(body, len, &a->frame_arena, &env);
  if (e != CAIRN_OK) {
    atomic_fetch_add(&a->m.rejects[agg__reject_kind(e)], 1);
    conn_close(c, e, "%s: frame of %zu bytes is not a cairn Envelope", cairn_err_name(e), len);
    return e;
  }
  if (c->state == AGG_CONN_HELLO) {
    if (env->msg_case != CAIRN__ENVELOPE__MSG_HELLO) {
      atomic_fetch_add(&a->m.rejects[AGG_REJ_PROTO], 1);
      conn_close(c, CAIRN_E_PROTO, "CAIRN_E_PROTO: peer sent %s before Hello",
                 env_case_name(env->msg_case));
      return CAIRN_E_PROTO;
    }
    e = on_hello(c, env->hello);
  } else if (env->msg_case == CAIRN__ENVELOPE__MSG_BATCH) {
    e = on_batch(c, env->batch);
  } else {
    atomic_fetch_add(&a->m.rejects[AGG_REJ_PROTO], 1);
    conn_close(c, CAIRN_E_PROTO, "CAIRN_E_PROTO: unexpected %s from a collector after Hello",
               env_case_name(env->msg_case));
    return CAIRN_E_PROTO;
  }
  if (e != CAIRN_OK) conn_close(c, e, "%s: while handling a frame: %s", cairn_err_name(e), cairn_err_str(e));
  return e;
}

static void on_close(pb_conn *pc, cairn_err why, const char *reason, void *ud) {
  agg_conn *c = ud;
  agg *a = c->a;
  if (c->refused) {
    /* logged (rate-limited) when it was refused */
  } else if (c->state == AGG_CONN_HANDSHAKE) {
    const char *r = reason && *reason ? reason : cairn_err_str(why);
    /* one line per client host per 10 s: a retrying misconfigured collector
     * or a port scanner must not flood the log */
    char key[96];
    const char *pcol = strrchr(c->peer, ':'); /* key by host: the port changes per attempt */
    snprintf(key, sizeof(key), "handshake %.*s", pcol ? (int)(pcol - c->peer) : 64, c->peer);
    if (strstr(r, c->peer)) /* proto/tls already says "TLS handshake with PEER failed: ..." */
      cairn_log_limited(&a->log_limit, key, CAIRN_LOG_WARN, AGG_COMP, "%s", r);
    else
      cairn_log_limited(&a->log_limit, key, CAIRN_LOG_WARN, AGG_COMP,
                        "TLS handshake with %s failed: %s", c->peer, r);
  } else {
    if (why == CAIRN_E_LIMIT && !c->close_reason) /* proto/tls refused an oversized frame */
      atomic_fetch_add(&a->m.rejects[AGG_REJ_LIMIT], 1);
    const char *r = c->close_reason ? c->close_reason
                    : why == CAIRN_E_CLOSED ? "peer closed the connection"
                    : reason && *reason ? reason
                                        : cairn_err_str(why);
    cairn_log(why == CAIRN_OK || why == CAIRN_E_CLOSED ? CAIRN_LOG_INFO : CAIRN_LOG_WARN, AGG_COMP,
              "connection from %s closed (identity=%s node=%s instance=%s): %s", c->peer,
              c->identity ? c->identity : "-", c->node ? c->node : "-",
              c->instance_id ? c->instance_id : "-", r);
  }
  c->pc = NULL;
  c->state = AGG_CONN_CLOSING;
  atomic_store(&c->dead, true);
  if (c->counted) atomic_fetch_sub(&a->m.sessions, 1);
  c->counted = false;
  if (c->prev) c->prev->next = c->next;
  else a->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  a->n_conns--;
  atomic_store(&a->m.connections, a->n_conns);
  agg__conn_unref(c);
  agg__shutdown_check(a);
}

static const pb_conn_cbs conn_cbs = {
    .on_ready = on_ready,
    .on_frame = on_frame,
    .on_close = on_close,
    .on_drain = NULL,
};

/* Length of the address part of "HOST:PORT" / "[v6]:PORT". */
static size_t peer_host_len(const char *peer) {
  const char *colon = strrchr(peer, ':');
  return colon ? (size_t)(colon - peer) : strlen(peer);
}

/* Open connections whose peer address equals that of peer (a linear scan:
 * it runs once per accept over at most --max-conns entries). */
static uint64_t conns_from_host(const agg *a, const char *peer) {
  size_t hl = peer_host_len(peer);
  uint64_t n = 0;
  for (const agg_conn *c = a->conns; c; c = c->next)
    if (c->pc && peer_host_len(c->peer) == hl && memcmp(c->peer, peer, hl) == 0) n++;
  return n;
}

/* Close a connection at accept because a limit is reached, before any TLS
 * byte is exchanged. One log line per client address per 10 s: a flood of
 * connections must not flood the log too. */
static void conn_refuse(agg_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_refuse(agg_conn *c, const char *fmt, ...) {
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  char key[96];
  snprintf(key, sizeof(key), "refuse %.*s", (int)peer_host_len(c->peer), c->peer);
  cairn_log_limited(&c->a->log_limit, key, CAIRN_LOG_WARN, AGG_COMP,
                    "connection from %s refused: %s; raise the limit if this client is legitimate",
                    c->peer, why);
  c->refused = true;
  conn_close(c, CAIRN_E_LIMIT, "connection refused: %s", why);
}

static void on_connection(uv_stream_t *server, int status) {
  agg *a = server->data;
  if (status < 0) {
    cairn_log_warn(AGG_COMP, "accept on %s failed: %s", a->listen_addr, uv_strerror(status));
    return;
  }
  agg_conn *c = calloc(1, sizeof(*c));
  if (!c) {
    cairn_log_error(AGG_COMP, "accept on %s: out of memory; connection dropped", a->listen_addr);
    return;
  }
  c->a = a;
  atomic_init(&c->refs, 1);
  atomic_init(&c->dead, false);
  c->state = AGG_CONN_HANDSHAKE;
  cairn_err e = pb_conn_accept(server, a->tls, a->limits.max_frame, &conn_cbs, c, &c->pc);
  if (e != CAIRN_OK) {
    cairn_log_warn(AGG_COMP, "accept on %s failed: %s", a->listen_addr, cairn_err_name(e));
    free(c);
    return;
  }
  snprintf(c->peer, sizeof(c->peer), "%s", pb_conn_peer(c->pc));
  c->last_rx_ns = cairn_time_mono_ns();
  /* counted before joining the list: the new one is not in it yet */
  uint64_t same_host = conns_from_host(a, c->peer);
  c->next = a->conns;
  if (a->conns) a->conns->prev = c;
  a->conns = c;
  a->n_conns++;
  atomic_store(&a->m.connections, a->n_conns);
  if (a->shutting_down) {
    conn_close(c, CAIRN_OK, "aggregator is shutting down");
  } else if (a->n_conns > a->cfg.max_conns) {
    conn_refuse(c, "%llu connections are open (--max-conns %llu)",
                (unsigned long long)(a->n_conns - 1), (unsigned long long)a->cfg.max_conns);
  } else if (same_host >= a->cfg.max_conns_per_ip) {
    conn_refuse(c, "%llu connections from this address are open (--max-conns-per-ip %llu)",
                (unsigned long long)same_host, (unsigned long long)a->cfg.max_conns_per_ip);
  } else {
    cairn_log_info(AGG_COMP, "accepted connection from %s", c->peer);
  }
}

cairn_err agg__server_listen(agg *a, char *errbuf, size_t errlen) {
  int r = uv_tcp_init(&a->loop, &a->listener);
  if (r < 0) {
    snprintf(errbuf, errlen, "--listen %s: %s", a->cfg.listen, uv_strerror(r));
    return CAIRN_E_CONFIG;
  }
  a->listener_open = true;
  a->listener.data = a;
  return pb_tcp_listen(&a->listener, a->cfg.listen, "--listen", on_connection, a->listen_addr,
                         sizeof(a->listen_addr), errbuf, errlen);
}

/* One completed job: send its Ack (if its session is still open), account. */
static void handle_done(agg *a, agg_job *j) {
  agg_conn *c = j->conn;
  c->inflight--;
  c->inflight_bytes -= j->payload_len;
  if (!j->skipped && c->pc && c->state == AGG_CONN_READY) {
    cairn_err e = send_ack(c, j);
    if (e != CAIRN_OK) {
      conn_close(c, e, "%s: could not send Ack for batch seq %llu", cairn_err_name(e),
                 (unsigned long long)j->seq);
    } else if (j->status == CAIRN__ACK_STATUS__ACK_REJECT) {
      conn_close(c, j->err, "batch seq %llu rejected: %s", (unsigned long long)j->seq, j->reason);
    } else if (j->status == CAIRN__ACK_STATUS__ACK_RETRY) {
      /* the writer stores no later batch of this session (dedupe order): end
       * it, so the collector resends everything unacked, in order */
      conn_close(c, j->err, "batch seq %llu answered RETRY (%s); closing the session, the "
                 "collector resends from there", (unsigned long long)j->seq, j->reason);
    }
  }
  conn_maybe_resume(c);
  agg__job_free(j);
}

void agg__server_on_done(uv_async_t *h) {
  agg *a = h->data;
  agg_writer *w = &a->writer;
  pthread_mutex_lock(&w->done_mu);
  agg_job *list = w->done.head;
  w->done.head = w->done.tail = NULL;
  w->done.n = 0;
  pthread_mutex_unlock(&w->done_mu);
  while (list) {
    agg_job *next = list->next;
    list->next = NULL;
    handle_done(a, list);
    list = next;
  }
  agg__shutdown_check(a);
}

void agg__server_quiesce(agg *a) {
  if (a->listener_open) {
    uv_close((uv_handle_t *)&a->listener, NULL);
    a->listener_open = false;
  }
  for (agg_conn *c = a->conns; c; c = c->next) {
    if (!c->pc) continue;
    if (c->state == AGG_CONN_READY) {
      pb_conn_read_stop(c->pc);
      c->paused = true;
    } else {
      conn_close(c, CAIRN_OK, "aggregator is shutting down");
    }
  }
}

uint64_t agg__server_inflight(const agg *a) {
  uint64_t n = 0;
  for (const agg_conn *c = a->conns; c; c = c->next)
    if (c->pc && c->state == AGG_CONN_READY) n += c->inflight;
  return n;
}

void agg__server_close_all(agg *a, const char *reason) {
  agg_conn *c = a->conns;
  while (c) {
    agg_conn *next = c->next; /* on_close runs later, never inside pb_conn_close */
    conn_close(c, CAIRN_OK, "%s", reason);
    c = next;
  }
}

/* ---- idle sweep ---- */

/* "5m", "1s", "250ms": a duration for log lines. */
static void duration_format(int64_t ns, char *out, size_t cap) {
  long long ms = (long long)(ns / 1000000);
  if (ms && ms % 60000 == 0) snprintf(out, cap, "%lldm", ms / 60000);
  else if (ms && ms % 1000 == 0) snprintf(out, cap, "%llds", ms / 1000);
  else snprintf(out, cap, "%lldms", ms);
}

/* Close sessions that sent no frame for --idle-timeout while none of their
 * batches was pending (a paused reader is our backpressure, not idleness).
 * Handshakes have their own deadline in proto/tls. */
static void on_idle_sweep(uv_timer_t *t) {
  agg *a = t->data;
  int64_t now = cairn_time_mono_ns();
  agg_conn *c = a->conns;
  while (c) {
    agg_conn *next = c->next; /* on_close runs later, never inside conn_close */
    if (c->pc && (c->state == AGG_CONN_HELLO || c->state == AGG_CONN_READY) && c->inflight == 0 &&
        !c->paused && now - c->last_rx_ns >= a->cfg.idle_timeout_ns) {
      char d[32];
      duration_format(a->cfg.idle_timeout_ns, d, sizeof(d));
      if (c->state == AGG_CONN_READY)
        /* a quiet collector: normal, it reconnects when it has data */
        conn_close(c, CAIRN_OK, "idle: no frame received for %s (--idle-timeout)", d);
      else
        conn_close(c, CAIRN_E_TIMEOUT, "CAIRN_E_TIMEOUT: no Hello within %s after the TLS "
                   "handshake (--idle-timeout)", d);
    }
    c = next;
  }
}

cairn_err agg__server_timers_open(agg *a) {
  if (uv_timer_init(&a->loop, &a->idle_timer) != 0) return CAIRN_E_NOMEM;
  a->idle_timer_open = true;
  a->idle_timer.data = a;
  /* an eighth of the timeout: sessions close within 12.5% of it */
  uint64_t every = (uint64_t)(a->cfg.idle_timeout_ns / 8 / 1000000);
  if (every < 20) every = 20;
  if (every > 5000) every = 5000;
  uv_timer_start(&a->idle_timer, on_idle_sweep, every, every);
  return CAIRN_OK;
}

void agg__server_timers_close(agg *a) {
  if (!a->idle_timer_open) return;
  uv_close((uv_handle_t *)&a->idle_timer, NULL);
  a->idle_timer_open = false;
}

/* ---- certificate reload ---- */

void agg__tls_config(const agg *a, pb_tls_config *out) {
  memset(out, 0, sizeof(*out));
  out->cert_file = a->cfg.tls_cert;
  out->key_file = a->cfg.tls_key;
  out->ca_file = a->cfg.tls_ca;
  out->server = true;
  out->min_version =
      a->cfg.tls_min_version && strcmp(a->cfg.tls_min_version, "1.2") == 0 ? PB_TLS_1_2 : PB_TLS_1_3;
  out->handshake_timeout_ms = (uint32_t)(a->cfg.handshake_timeout_ns / 1000000);
}

static void on_tls_loaded(pb_tls_ctx *fresh, cairn_err e, const char *err, void *ud) {
  agg *a = ud;
  a->reloading = false;
  if (e != CAIRN_OK) {
    cairn_log_error(AGG_COMP, "SIGHUP: TLS reload failed, new connections keep the current "
                    "certificate: %s (%s); fix the files and send SIGHUP again", err,
                    cairn_err_name(e));
  } else {
    char was[300], now[300];
    pb_tls_ctx_describe(a->tls, was, sizeof(was));
    pb_tls_ctx_describe(fresh, now, sizeof(now));
    /* open sessions hold their own reference to the old OpenSSL context */
    pb_tls_ctx_free(a->tls);
    a->tls = fresh;
    cairn_log_info(AGG_COMP, "SIGHUP: TLS certificate, key and CA reloaded for new connections "
                   "(%llu open connections keep the previous one): %s (was: %s); other "
                   "options are read at start only: restart to change them",
                   (unsigned long long)a->n_conns, now, was);
  }
  if (a->reload_again && !a->shutting_down) {
    a->reload_again = false;
    agg__server_tls_reload(a);
  }
}

void agg__server_tls_reload(agg *a) {
  if (a->reloading) {
    a->reload_again = true;
    return;
  }
  pb_tls_config tc;
  agg__tls_config(a, &tc);
  cairn_err e = pb_tls_ctx_load_async(&a->loop, &tc, on_tls_loaded, a);
  if (e != CAIRN_OK) {
    cairn_log_error(AGG_COMP, "SIGHUP: cannot start the TLS reload: %s; keeping the current "
                    "certificate", cairn_err_str(e));
    return;
  }
  a->reloading = true;
  cairn_log_info(AGG_COMP, "SIGHUP: reloading --tls-cert %s, --tls-key %s, --tls-ca %s",
                 a->cfg.tls_cert, a->cfg.tls_key, a->cfg.tls_ca);
}
