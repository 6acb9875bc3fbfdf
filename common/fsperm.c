/* common/fsperm.c: private key files are opened only when no other user can
 * read or replace them. The mode is checked on the open descriptor, so the
 * bytes the caller reads are the ones that were checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsperm.h"

/* Is gid our effective group or one of our supplementary groups? */
static bool in_group(gid_t gid) {
  if (getegid() == gid) return true;
  gid_t groups[NGROUPS_MAX];
  int n = getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);
  for (int i = 0; i < n; i++)
    if (groups[i] == gid) return true;
  return false;
}

/* Owner-only, or the Kubernetes fsGroup shape described in fsperm.h, for a
 * process with effective uid euid that is (member) or is not in the file's
 * group. Pure, so tests can reach every branch whoever runs them. */
static bool mode_is_private(const struct stat *st, uid_t euid, bool member) {
  mode_t m = st->st_mode & 0777;
  if ((m & 077) == 0) return true;
  if (m & 037) return false; /* group write/exec, or anything for others */
  return st->st_uid == 0 && euid != 0 && member;
}

cairn_err cairn_private_file_open(const char *path, const char *what, int *fd, char *errbuf,
                                  size_t errlen) {
  *fd = -1;
  int f = open(path, O_RDONLY | O_CLOEXEC);
  if (f < 0) {
    snprintf(errbuf, errlen, "%s %s: cannot open: %s", what, path, strerror(errno));
    return CAIRN_E_CONFIG;
  }
  struct stat st;
  if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(errbuf, errlen, "%s %s: not a regular file", what, path);
    close(f);
    return CAIRN_E_CONFIG;
  }
  if (!mode_is_private(&st, geteuid(), in_group(st.st_gid))) {
    snprintf(errbuf, errlen,
             "%s %s: the private key is accessible by group or others (mode %04o): run "
             "chmod 600 %s",
             what, path, (unsigned)(st.st_mode & 07777), path);
    close(f);
    return CAIRN_E_PERM;
  }
  *fd = f;
  return CAIRN_OK;
}
