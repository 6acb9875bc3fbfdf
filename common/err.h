/* common/err.h: the one error enum of cairn.
 *
 * Caveats:
 *  - Values are pinned and never renumbered or reused; add new ones at the end.
 *  - Foreign codes (errno, uv, MDB_*, zstd, rdkafka, OpenSSL) are translated
 *    once at the boundary; keep the original for the log line.
 */
#ifndef CAIRN_COMMON_ERR_H
#define CAIRN_COMMON_ERR_H

#define CAIRN_MUST_CHECK __attribute__((warn_unused_result))

/* X(name, value, message) */
#define CAIRN_ERR_MAP(X)                                                      \
  X(CAIRN_OK, 0, "success")                                                   \
  X(CAIRN_E_NOMEM, -1, "out of memory")                                       \
  X(CAIRN_E_INVAL, -2, "invalid argument")                                    \
  X(CAIRN_E_IO, -3, "I/O error")                                              \
  X(CAIRN_E_PARSE, -4, "malformed input")                                     \
  X(CAIRN_E_LIMIT, -5, "size limit exceeded")                                 \
  X(CAIRN_E_NOTFOUND, -6, "not found")                                        \
  X(CAIRN_E_EXISTS, -7, "already exists")                                     \
  X(CAIRN_E_TLS, -8, "TLS failure")                                           \
  X(CAIRN_E_PROTO, -9, "protocol violation")                                  \
  X(CAIRN_E_STORAGE, -10, "storage failure")                                  \
  X(CAIRN_E_MAPFULL, -11, "storage map full")                                 \
  X(CAIRN_E_KAFKA, -12, "Kafka failure")                                      \
  X(CAIRN_E_AGAIN, -13, "temporarily unavailable, try again")                 \
  X(CAIRN_E_CONFIG, -14, "invalid configuration")                             \
  X(CAIRN_E_DUP, -15, "duplicate")                                            \
  X(CAIRN_E_CORRUPT, -16, "data corrupt")                                     \
  X(CAIRN_E_CLOSED, -17, "connection closed")                                 \
  X(CAIRN_E_NOSPC, -18, "no space left")                                      \
  X(CAIRN_E_PERM, -19, "permission denied")                                   \
  X(CAIRN_E_TIMEOUT, -20, "timed out")                                        \
  X(CAIRN_E_ZSTD, -21, "compression failure")

typedef enum cairn_err {
#define CAIRN_ERR_ENUM_(name, value, msg) name = value,
  CAIRN_ERR_MAP(CAIRN_ERR_ENUM_)
#undef CAIRN_ERR_ENUM_
} cairn_err;

/* Stable upper-case name, e.g. "CAIRN_E_LIMIT"; "CAIRN_E_UNKNOWN" for an
 * unknown value. Static storage, never NULL. */
const char *cairn_err_name(cairn_err e);

/* Human sentence for the error. Static storage, never NULL. */
const char *cairn_err_str(cairn_err e);

/* Translate an errno value (positive, as in errno) to a cairn_err:
 * ENOMEM->NOMEM, ENOENT->NOTFOUND, EEXIST->EXISTS, ENOSPC/EDQUOT->NOSPC,
 * EACCES/EPERM->PERM, EAGAIN->AGAIN, ETIMEDOUT->TIMEOUT, EINVAL->INVAL,
 * anything else -> IO. */
cairn_err cairn_err_from_errno(int errnum);

#endif
