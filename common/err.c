/* common/err.c: names and messages generated from CAIRN_ERR_MAP. */
#include "common/err.h"

#include <errno.h>

const char *cairn_err_name(cairn_err e) {
  switch (e) {
#define CAIRN_ERR_NAME_(name, value, msg) \
  case name:                              \
    return #name;
    CAIRN_ERR_MAP(CAIRN_ERR_NAME_)
#undef CAIRN_ERR_NAME_
  }
  return "CAIRN_E_UNKNOWN";
}

const char *cairn_err_str(cairn_err e) {
  switch (e) {
#define CAIRN_ERR_STR_(name, value, msg) \
  case name:                             \
    return msg;
    CAIRN_ERR_MAP(CAIRN_ERR_STR_)
#undef CAIRN_ERR_STR_
  }
  return "unknown error";
}

cairn_err cairn_err_from_errno(int errnum) {
  switch (errnum) {
    case 0: return CAIRN_OK;
    case ENOMEM: return CAIRN_E_NOMEM;
    case ENOENT: return CAIRN_E_NOTFOUND;
    case EEXIST: return CAIRN_E_EXISTS;
    case ENOSPC:
    case EDQUOT: return CAIRN_E_NOSPC;
    case EACCES:
    case EPERM: return CAIRN_E_PERM;
    case EAGAIN: return CAIRN_E_AGAIN;
    case ETIMEDOUT: return CAIRN_E_TIMEOUT;
    case EINVAL: return CAIRN_E_INVAL;
    default: return CAIRN_E_IO;
  }
}
