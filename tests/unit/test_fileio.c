/*
 * tests/unit/test_fileio.c - the POSIX file operations and the power-loss simulator: what a
 * cut keeps (fsynced data, fsynced directory entries) and what it takes back (everything
 * else), and crash injection at named points.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/embedded/fileio.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

typedef struct fixture {
    char dir[64];
    clew_fileio *pl;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/clew-fileio-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    if (clew__fileio_powerloss_create(&f->pl) != CLEW_OK) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    clew__fileio_powerloss_destroy(f->pl);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void path_of(const fixture *f, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", f->dir, name);
}

static int64_t real_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void read_all(clew_fileio *io, const char *path, char *buf, size_t cap, size_t *n)
{
    int fd = -1;
    assert_int_equal(io->open_file(io, path, CLEW_FILEIO_READ, &fd), CLEW_OK);
    assert_int_equal(io->pread_some(io, fd, buf, cap, 0, n), CLEW_OK);
    assert_int_equal(io->close_file(io, fd), CLEW_OK);
}

static void test_posix_basics(void **state)
{
    fixture *f = *state;
    clew_fileio *io = clew__fileio_posix();
    char a[128], b[128], buf[64];
    path_of(f, "a", a, sizeof(a));
    path_of(f, "b", b, sizeof(b));
    int fd = -1;
    assert_int_equal(io->open_file(io, a, CLEW_FILEIO_READ, &fd), CLEW_ENOTFOUND);
    assert_int_equal(io->open_file(io, a, CLEW_FILEIO_WRITE | CLEW_FILEIO_CREATE, &fd), CLEW_OK);
    assert_int_equal(io->pwrite_all(io, fd, "hello world", 11, 0), CLEW_OK);
    assert_int_equal(io->pwrite_all(io, fd, "HELLO", 5, 0), CLEW_OK);
    uint64_t sz = 0;
    assert_int_equal(io->file_size(io, fd, &sz), CLEW_OK);
    assert_int_equal(sz, 11);
    size_t n = 0;
    assert_int_equal(io->pread_some(io, fd, buf, sizeof(buf), 6, &n), CLEW_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(io->truncate_file(io, fd, 5), CLEW_OK);
    assert_int_equal(io->fsync_file(io, fd), CLEW_OK);
    assert_int_equal(io->close_file(io, fd), CLEW_OK);
    int fd2 = -1;
    assert_int_equal(
        io->open_file(io, a, CLEW_FILEIO_WRITE | CLEW_FILEIO_CREATE | CLEW_FILEIO_EXCL, &fd2),
        CLEW_EBUSY);
    assert_int_equal(io->rename_path(io, a, b), CLEW_OK);
    assert_int_equal(io->fsync_dir(io, f->dir), CLEW_OK);
    read_all(io, b, buf, sizeof(buf), &n);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "HELLO", 5);
    assert_int_equal(io->unlink_path(io, b), CLEW_OK);
    assert_int_equal(io->unlink_path(io, b), CLEW_ENOTFOUND);
    assert_int_equal(io->crash_point(io, "anything"), CLEW_OK);
}

static void test_cut_forgets_unsynced_creation(void **state)
{
    fixture *f = *state;
    clew_fileio *io = f->pl;
    char a[128];
    path_of(f, "a", a, sizeof(a));
    int fd = -1;
    assert_int_equal(io->open_file(io, a, CLEW_FILEIO_WRITE | CLEW_FILEIO_CREATE, &fd), CLEW_OK);
    assert_int_equal(io->pwrite_all(io, fd, "data", 4, 0), CLEW_OK);
    /* Even an fsynced file disappears when its directory entry was not made durable. */
    assert_int_equal(io->fsync_file(io, fd), CLEW_OK);
    assert_int_equal(io->close_file(io, fd), CLEW_OK);
    clew__fileio_powerloss_cut(io);
    assert_int_equal(real_size(a), -1);
}

static void test_cut_keeps_synced_data_only(void **state)
{
    fixture *f = *state;
    clew_fileio *io = f->pl;
    char a[128], buf[64];
    path_of(f, "a", a, sizeof(a));
    int fd = -1;
    assert_int_equal(io->open_file(io, a, CLEW_FILEIO_WRITE | CLEW_FILEIO_CREATE, &fd), CLEW_OK);
    assert_int_equal(io->fsync_dir(io, f->dir), CLEW_OK);
    assert_int_equal(io->pwrite_all(io, fd, "0123456789", 10, 0), CLEW_OK);
    assert_int_equal(io->fsync_file(io, fd), CLEW_OK);
    /* unsynced: an overwrite, an append, then a truncation below the synced size */
    assert_int_equal(io->pwrite_all(io, fd, "abc", 3, 2), CLEW_OK);
    assert_int_equal(io->pwrite_all(io, fd, "XYZ", 3, 10), CLEW_OK);
    assert_int_equal(io->truncate_file(io, fd, 4), CLEW_OK);
    assert_int_equal(real_size(a), 4);
    clew__fileio_powerloss_cut(io);
    assert_int_equal(io->close_file(io, fd), CLEW_OK);
    size_t n = 0;
    read_all(io, a, buf, sizeof(buf), &n);
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "0123456789", 10);
}

static void test_cut_undoes_rename_and_unlink(void **state)
{
    fixture *f = *state;
    clew_fileio *io = f->pl;
    char a[128], b[128], c[128], buf[64];
    path_of(f, "a", a, sizeof(a));
    path_of(f, "b", b, sizeof(b));
    path_of(f, "c", c, sizeof(c));
    const char *names[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        int fd = -1;
        assert_int_equal(io->open_file(io, names[i], CLEW_FILEIO_WRITE | CLEW_FILEIO_CREATE, &fd),
                         CLEW_OK);
        assert_int_equal(io->pwrite_all(io, fd, names[i] + strlen(names[i]) - 1, 1, 0), CLEW_OK);
        assert_int_equal(io->fsync_file(io, fd), CLEW_OK);
        assert_int_equal(io->close_file(io, fd), CLEW_OK);
    }
    assert_int_equal(io->fsync_dir(io, f->dir), CLEW_OK);
    /* a replaces b, c is unlinked; none of it synced */
    assert_int_equal(io->rename_path(io, a, b), CLEW_OK);
    assert_int_equal(io->unlink_path(io, c), CLEW_OK);
    assert_int_equal(real_size(a), -1);
    assert_int_equal(real_size(c), -1);
    clew__fileio_powerloss_cut(io);
    size_t n = 0;
    read_all(io, a, buf, sizeof(buf), &n);
    assert_true(n == 1 && buf[0] == 'a');
    read_all(io, b, buf, sizeof(buf), &n);
    assert_true(n == 1 && buf[0] == 'b');
    read_all(io, c, buf, sizeof(buf), &n);
    assert_true(n == 1 && buf[0] == 'c');
    /* now synced: they stick, and no backup file is left behind */
    assert_int_equal(io->rename_path(io, a, b), CLEW_OK);
    assert_int_equal(io->unlink_path(io, c), CLEW_OK);
    assert_int_equal(io->fsync_dir(io, f->dir), CLEW_OK);
    clew__fileio_powerloss_cut(io);
    assert_int_equal(real_size(a), -1);
    assert_int_equal(real_size(c), -1);
    read_all(io, b, buf, sizeof(buf), &n);
    assert_true(n == 1 && buf[0] == 'a');
    DIR *d = opendir(f->dir);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' || strncmp(e->d_name, ".clew", 5) == 0) {
            entries++;
        }
    }
    closedir(d);
    assert_int_equal(entries, 1);
}

static void test_crash_point(void **state)
{
    fixture *f = *state;
    clew_fileio *io = f->pl;
    char a[128];
    path_of(f, "a", a, sizeof(a));
    int fd = -1;
    assert_int_equal(io->open_file(io, a, CLEW_FILEIO_WRITE | CLEW_FILEIO_CREATE, &fd), CLEW_OK);
    assert_int_equal(io->fsync_dir(io, f->dir), CLEW_OK);
    clew__fileio_powerloss_arm(io, "x.step", 2);
    assert_int_equal(io->crash_point(io, "other"), CLEW_OK);
    assert_int_equal(io->crash_point(io, "x.step"), CLEW_OK);
    assert_int_equal(io->pwrite_all(io, fd, "ab", 2, 0), CLEW_OK);
    assert_int_equal(io->crash_point(io, "x.step"), CLEW_EIO);
    /* the process is dead: everything fails until the machine restarts */
    assert_int_equal(io->fsync_file(io, fd), CLEW_EIO);
    assert_int_equal(io->pwrite_all(io, fd, "cd", 2, 2), CLEW_EIO);
    assert_int_equal(io->crash_point(io, "other"), CLEW_EIO);
    assert_int_equal(io->close_file(io, fd), CLEW_EIO);
    clew__fileio_powerloss_cut(io);
    assert_int_equal(real_size(a), 0); /* the unsynced write is gone, the file stays */
    assert_int_equal(io->crash_point(io, "x.step"), CLEW_OK); /* disarmed by the cut */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_posix_basics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_forgets_unsynced_creation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_keeps_synced_data_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_undoes_rename_and_unlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_point, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
