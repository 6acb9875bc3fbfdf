/* common/fsperm.h: opening private key files only when nobody else can read
 * them (the TLS keys of both daemons, the aggregator's signing key).
 *
 * Caveats:
 *  - The check runs on the opened descriptor (fstat), so a file swapped
 *    between the check and the read cannot slip through: read the key from
 *    the returned fd, never by opening the path again.
 *  - One exception to "owner only", the shape Kubernetes gives a Secret
 *    mounted with fsGroup (kubelet makes every file root:<fsGroup> 0440,
 *    whatever defaultMode says): read access for the group is accepted on a
 *    file owned by root, read by a process that is not root and is a member
 *    of the file's group. Group write or any access for others is always
 *    refused.
 */
#ifndef CAIRN_COMMON_FSPERM_H
#define CAIRN_COMMON_FSPERM_H

#include <stddef.h>

#include "common/err.h"

/* Open path read-only (O_CLOEXEC) as a private key. what names it in errbuf,
 * e.g. "--signing-key" or "--tls-key". On CAIRN_OK *fd is open and the
 * caller closes it. Errors (nothing left open; errbuf gets one line that
 * names the file and the fix):
 *   CAIRN_E_CONFIG  cannot open ("WHAT PATH: cannot open: <strerror>") or
 *                   not a regular file;
 *   CAIRN_E_PERM    group or others have access:
 *                   "WHAT PATH: the private key is accessible by group or
 *                   others (mode 0644): run chmod 600 PATH". */
CAIRN_MUST_CHECK cairn_err cairn_private_file_open(const char *path, const char *what, int *fd,
                                                   char *errbuf, size_t errlen);

#endif
