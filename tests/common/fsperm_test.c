/* tests/common/fsperm_test.c: private key files are opened only when no one
 * but their owner can read them (plus the Kubernetes fsGroup shape). Includes
 * common/fsperm.c to reach the pure mode check, so every branch is tested
 * whichever user runs the suite; the file tests use real files in a temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsperm.c"

static char dir[64];
static char key[128];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/cairn-fsperm-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(key, sizeof(key), "%s/tls.key", dir);
  FILE *f = fopen(key, "w");
  if (!f) return -1;
  fputs("-----BEGIN PRIVATE KEY-----\n", f);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(key);
  rmdir(dir);
  return 0;
}

static struct stat st_of(uid_t uid, mode_t mode) {
  struct stat st;
  memset(&st, 0, sizeof(st));
  st.st_uid = uid;
  st.st_mode = S_IFREG | mode;
  return st;
}

static void owner_only_modes_are_private_for_anyone(void **state) {
  (void)state;
  mode_t ok[] = {0600, 0400, 0700, 0200, 0000};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    struct stat st = st_of(1000, ok[i]);
    assert_true(mode_is_private(&st, 1000, false));
    assert_true(mode_is_private(&st, 0, false));
  }
}

static void any_access_for_others_or_group_write_is_refused(void **state) {
  (void)state;
  mode_t bad[] = {0604, 0644, 0660, 0620, 0610, 0601, 0602, 0666, 0640 | 0001};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct stat root_owned = st_of(0, bad[i]);
    assert_false(mode_is_private(&root_owned, 65532, true)); /* not even the fsGroup shape */
    struct stat own = st_of(65532, bad[i]);
    assert_false(mode_is_private(&own, 65532, true));
  }
}

static void group_read_only_on_root_owned_file_read_through_our_group(void **state) {
  (void)state;
  /* the Kubernetes Secret with fsGroup: root:<fsGroup> 0440 / 0640 */
  struct stat k8s = st_of(0, 0440);
  assert_true(mode_is_private(&k8s, 65532, true));
  k8s = st_of(0, 0640);
  assert_true(mode_is_private(&k8s, 65532, true));
  /* not our group, or we are root (no need to read through the group), or
   * the file is owned by someone else: refused */
  assert_false(mode_is_private(&k8s, 65532, false));
  assert_false(mode_is_private(&k8s, 0, true));
  struct stat user_owned = st_of(1000, 0640);
  assert_false(mode_is_private(&user_owned, 65532, true));
}

static void open_refuses_a_group_readable_file_naming_it_and_the_fix(void **state) {
  (void)state;
  /* a file we own: group read is never needed to read it */
  assert_int_equal(chmod(key, 0640), 0);
  char err[512] = "";
  int fd = 123;
  assert_int_equal(cairn_private_file_open(key, "--tls-key", &fd, err, sizeof(err)), CAIRN_E_PERM);
  assert_int_equal(fd, -1);
  char want[512];
  snprintf(want, sizeof(want),
           "--tls-key %s: the private key is accessible by group or others (mode 0640): run "
           "chmod 600 %s",
           key, key);
  assert_string_equal(err, want);
  assert_int_equal(chmod(key, 0600), 0);
  assert_int_equal(cairn_private_file_open(key, "--tls-key", &fd, err, sizeof(err)), CAIRN_OK);
  assert_true(fd >= 0);
  char buf[8];
  assert_int_equal(read(fd, buf, 5), 5); /* the checked descriptor is the one to read */
  close(fd);
}

static void open_reports_a_missing_file_and_a_directory(void **state) {
  (void)state;
  char err[512] = "";
  int fd;
  char missing[160];
  snprintf(missing, sizeof(missing), "%s/nope.key", dir);
  assert_int_equal(cairn_private_file_open(missing, "--signing-key", &fd, err, sizeof(err)),
                   CAIRN_E_CONFIG);
  assert_non_null(strstr(err, "cannot open: No such file or directory"));
  assert_non_null(strstr(err, missing));
  assert_int_equal(cairn_private_file_open(dir, "--tls-key", &fd, err, sizeof(err)),
                   CAIRN_E_CONFIG);
  assert_non_null(strstr(err, "not a regular file"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(owner_only_modes_are_private_for_anyone),
      cmocka_unit_test(any_access_for_others_or_group_write_is_refused),
      cmocka_unit_test(group_read_only_on_root_owned_file_read_through_our_group),
      cmocka_unit_test(open_refuses_a_group_readable_file_naming_it_and_the_fix),
      cmocka_unit_test(open_reports_a_missing_file_and_a_directory),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
