/*
 * src/store/embedded/fileio.c - the POSIX file operations and the power-loss simulator.
 *
 * The simulator works on real files and keeps an undo log of everything that a power cut
 * could take back: for each unsynced write or truncation, the bytes it overwrote and the
 * file's previous size; for each unsynced creation, rename or unlink, how to reverse it (an
 * unlinked or overwritten file is kept alive under a hard link named ".clew-pl-<n>.bak" in
 * the same directory until its directory is fsynced). fsync_file drops the file's data
 * entries, fsync_dir the directory's name entries; a cut replays the rest backwards, newest
 * first, so each entry is undone against exactly the state it was recorded on.
 *
 * Files are identified by (device, inode), not by path, so a file written, renamed and then
 * synced is handled correctly; the simulator holds its own descriptor on every file it has
 * seen, which lets it undo data of a file whatever its current name.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "store/embedded/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"

/* ---- POSIX ---- */

static clew_status errno_status(int e)
{
    switch (e) {
    case ENOENT:
        return CLEW_ENOTFOUND;
    case EEXIST:
        return CLEW_EBUSY;
    case ENOMEM:
        return CLEW_ENOMEM;
    case EINVAL:
        return CLEW_EINVAL;
    default:
        return CLEW_EIO;
    }
}

static clew_status posix_open(clew_fileio *io, const char *path, int flags, int *out_fd)
{
    (void)io;
    int oflags = O_CLOEXEC;
    oflags |= (flags & CLEW_FILEIO_WRITE) ? O_RDWR : O_RDONLY;
    if (flags & CLEW_FILEIO_CREATE) {
        oflags |= O_CREAT;
        if (flags & CLEW_FILEIO_EXCL) {
            oflags |= O_EXCL;
        }
    }
    if (flags & CLEW_FILEIO_TRUNC) {
        oflags |= O_TRUNC;
    }
    int fd;
    do {
        fd = open(path, oflags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return errno_status(errno);
    }
    *out_fd = fd;
    return CLEW_OK;
}

static clew_status posix_close(clew_fileio *io, int fd)
{
    (void)io;
    /* No retry on EINTR: on Linux the descriptor is gone either way. */
    return close(fd) == 0 || errno == EINTR ? CLEW_OK : CLEW_EIO;
}

static clew_status posix_pwrite(clew_fileio *io, int fd, const void *buf, size_t n, uint64_t off)
{
    (void)io;
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno_status(errno) == CLEW_ENOMEM ? CLEW_ENOMEM : CLEW_EIO;
        }
        if (w == 0) {
            return CLEW_EIO;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return CLEW_OK;
}

static clew_status posix_pread(clew_fileio *io, int fd, void *buf, size_t n, uint64_t off,
                               size_t *out_n)
{
    (void)io;
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return CLEW_EIO;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    *out_n = got;
    return CLEW_OK;
}

static clew_status posix_fsync(clew_fileio *io, int fd)
{
    (void)io;
    return fsync(fd) == 0 ? CLEW_OK : CLEW_EIO;
}

static clew_status posix_truncate(clew_fileio *io, int fd, uint64_t size)
{
    (void)io;
    int rc;
    do {
        rc = ftruncate(fd, (off_t)size);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? CLEW_OK : CLEW_EIO;
}

static clew_status posix_size(clew_fileio *io, int fd, uint64_t *out)
{
    (void)io;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return CLEW_EIO;
    }
    *out = (uint64_t)st.st_size;
    return CLEW_OK;
}

static clew_status posix_rename(clew_fileio *io, const char *from, const char *to)
{
    (void)io;
    return rename(from, to) == 0 ? CLEW_OK : errno_status(errno);
}

static clew_status posix_unlink(clew_fileio *io, const char *path)
{
    (void)io;
    return unlink(path) == 0 ? CLEW_OK : errno_status(errno);
}

static clew_status posix_fsync_dir(clew_fileio *io, const char *dir)
{
    (void)io;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return errno_status(errno);
    }
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? CLEW_OK : CLEW_EIO;
}

static clew_status posix_crash_point(clew_fileio *io, const char *name)
{
    (void)io;
    (void)name;
    return CLEW_OK;
}

static clew_fileio posix_io = {
    .open_file = posix_open,
    .close_file = posix_close,
    .pwrite_all = posix_pwrite,
    .pread_some = posix_pread,
    .fsync_file = posix_fsync,
    .truncate_file = posix_truncate,
    .file_size = posix_size,
    .rename_path = posix_rename,
    .unlink_path = posix_unlink,
    .fsync_dir = posix_fsync_dir,
    .crash_point = posix_crash_point,
};

clew_fileio *clew__fileio_posix(void)
{
    return &posix_io;
}

/* ---- power-loss simulator ---- */

/* A file the simulator has seen; `fd` is its own descriptor, kept until destroy. */
typedef struct pl_file {
    dev_t dev;
    ino_t ino;
    int fd;
} pl_file;

typedef enum pl_kind {
    PL_DATA,   /* undo: write `saved` at `off`, then truncate to `old_size` */
    PL_CREATE, /* undo: unlink `path` */
    PL_RENAME, /* undo: rename `path` (the target) back to `path2`; restore `backup` as target */
    PL_UNLINK, /* undo: rename `backup` to `path` */
} pl_kind;

typedef struct pl_entry {
    struct pl_entry *next; /* newer entries first */
    pl_kind kind;
    pl_file *file; /* PL_DATA */
    uint64_t off;
    uint64_t old_size;
    unsigned char *saved;
    size_t saved_len;
    char *dir;    /* directory whose fsync commits a name entry */
    char *path;   /* PL_CREATE/PL_UNLINK: the name; PL_RENAME: the target */
    char *path2;  /* PL_RENAME: the source */
    char *backup; /* a hard link keeping an unlinked or overwritten file alive, or NULL */
} pl_entry;

typedef struct pl_io {
    clew_fileio base; /* first, so a clew_fileio * is a pl_io * */
    pthread_mutex_t mu;
    pl_file **files;
    size_t n_files, cap_files;
    pl_entry *log; /* newest first */
    unsigned long backup_seq;
    bool dead;
    char *armed_name;
    unsigned armed_nth;
    unsigned armed_hits;
} pl_io;

static pl_io *as_pl(clew_fileio *io)
{
    return (pl_io *)io;
}

static void entry_free(pl_entry *e)
{
    if (e == NULL) {
        return;
    }
    clew__free(e->saved);
    clew__free(e->dir);
    clew__free(e->path);
    clew__free(e->path2);
    clew__free(e->backup);
    clew__free(e);
}

/* The directory part of `path` ("." when there is none), without a trailing slash. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return clew__strdup(".");
    }
    if (slash == path) {
        return clew__strdup("/");
    }
    return clew__strndup(path, (size_t)(slash - path));
}

/* `dir` without trailing slashes, for comparison with dir_of(). */
static bool same_dir(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/') {
        la--;
    }
    while (lb > 1 && b[lb - 1] == '/') {
        lb--;
    }
    return la == lb && memcmp(a, b, la) == 0;
}

static pl_file *file_by_stat(pl_io *pl, const struct stat *st)
{
    for (size_t i = 0; i < pl->n_files; i++) {
        if (pl->files[i]->dev == st->st_dev && pl->files[i]->ino == st->st_ino) {
            return pl->files[i];
        }
    }
    return NULL;
}

static clew_status file_for_fd(pl_io *pl, int fd, pl_file **out)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return CLEW_EIO;
    }
    pl_file *f = file_by_stat(pl, &st);
    if (f != NULL) {
        *out = f;
        return CLEW_OK;
    }
    if (pl->n_files == pl->cap_files) {
        size_t cap = pl->cap_files ? pl->cap_files * 2 : 16;
        pl_file **nf = clew__realloc(pl->files, cap * sizeof(*nf));
        if (nf == NULL) {
            return CLEW_ENOMEM;
        }
        pl->files = nf;
        pl->cap_files = cap;
    }
    f = clew__calloc(1, sizeof(*f));
    if (f == NULL) {
        return CLEW_ENOMEM;
    }
    /* Our own descriptor, read-write through /proc so that a read-only open works too. */
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    f->fd = open(proc, O_RDWR | O_CLOEXEC);
    if (f->fd < 0) {
        f->fd = dup(fd);
    }
    if (f->fd < 0) {
        clew__free(f);
        return CLEW_EIO;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    pl->files[pl->n_files++] = f;
    *out = f;
    return CLEW_OK;
}

static void log_push(pl_io *pl, pl_entry *e)
{
    e->next = pl->log;
    pl->log = e;
}

/* Fails every operation once a crash was injected ("the process died"). */
#define PL_ALIVE(pl)                                                                               \
    do {                                                                                           \
        if ((pl)->dead) {                                                                          \
            pthread_mutex_unlock(&(pl)->mu);                                                       \
            return CLEW_EIO;                                                                       \
        }                                                                                          \
    } while (0)

/* Records the undo of a change of [off, off+len) and/or of the size of `f`. */
static clew_status record_data(pl_io *pl, pl_file *f, uint64_t off, uint64_t len)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        return CLEW_EIO;
    }
    uint64_t old_size = (uint64_t)st.st_size;
    pl_entry *e = clew__calloc(1, sizeof(*e));
    if (e == NULL) {
        return CLEW_ENOMEM;
    }
    e->kind = PL_DATA;
    e->file = f;
    e->off = off;
    e->old_size = old_size;
    if (off < old_size && len > 0) {
        uint64_t end = off + len < old_size ? off + len : old_size;
        e->saved_len = (size_t)(end - off);
        e->saved = clew__malloc(e->saved_len);
        if (e->saved == NULL) {
            entry_free(e);
            return CLEW_ENOMEM;
        }
        size_t got = 0;
        if (posix_pread(NULL, f->fd, e->saved, e->saved_len, off, &got) != CLEW_OK ||
            got != e->saved_len) {
            entry_free(e);
            return CLEW_EIO;
        }
    }
    log_push(pl, e);
    return CLEW_OK;
}

/* Keeps the file at `path` alive under a backup hard link; *out NULL if there is none. */
static clew_status make_backup(pl_io *pl, const char *path, char **out)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        return CLEW_OK;
    }
    char *dir = dir_of(path);
    if (dir == NULL) {
        return CLEW_ENOMEM;
    }
    size_t n = strlen(dir) + 64;
    char *b = clew__malloc(n);
    if (b == NULL) {
        clew__free(dir);
        return CLEW_ENOMEM;
    }
    snprintf(b, n, "%s/.clew-pl-%lu.bak", dir, ++pl->backup_seq);
    clew__free(dir);
    if (link(path, b) != 0) {
        clew__free(b);
        return CLEW_EIO;
    }
    *out = b;
    return CLEW_OK;
}

static clew_status pl_open(clew_fileio *io, const char *path, int flags, int *out_fd)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    struct stat st;
    bool existed = stat(path, &st) == 0;
    int fd = -1;
    /* Truncation on open is done below as a tracked truncation. */
    clew_status rc = posix_open(io, path, flags & ~CLEW_FILEIO_TRUNC, &fd);
    pl_file *f = NULL;
    if (rc == CLEW_OK) {
        rc = file_for_fd(pl, fd, &f);
    }
    if (rc == CLEW_OK && !existed) {
        pl_entry *e = clew__calloc(1, sizeof(*e));
        if (e == NULL) {
            rc = CLEW_ENOMEM;
        } else {
            e->kind = PL_CREATE;
            e->path = clew__strdup(path);
            e->dir = dir_of(path);
            if (e->path == NULL || e->dir == NULL) {
                entry_free(e);
                rc = CLEW_ENOMEM;
            } else {
                log_push(pl, e);
            }
        }
    }
    if (rc == CLEW_OK && (flags & CLEW_FILEIO_TRUNC) && existed && st.st_size > 0) {
        rc = record_data(pl, f, 0, (uint64_t)st.st_size);
        if (rc == CLEW_OK && ftruncate(f->fd, 0) != 0) {
            rc = CLEW_EIO;
        }
    }
    if (rc != CLEW_OK && fd >= 0) {
        close(fd);
    } else if (rc == CLEW_OK) {
        *out_fd = fd;
    }
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

static clew_status pl_close(clew_fileio *io, int fd)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    bool dead = pl->dead;
    close(fd); /* even a dead process releases its descriptors */
    pthread_mutex_unlock(&pl->mu);
    return dead ? CLEW_EIO : CLEW_OK;
}

static clew_status pl_pwrite(clew_fileio *io, int fd, const void *buf, size_t n, uint64_t off)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    pl_file *f = NULL;
    clew_status rc = file_for_fd(pl, fd, &f);
    if (rc == CLEW_OK) {
        rc = record_data(pl, f, off, n);
    }
    if (rc == CLEW_OK) {
        rc = posix_pwrite(io, fd, buf, n, off);
    }
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

static clew_status pl_pread(clew_fileio *io, int fd, void *buf, size_t n, uint64_t off,
                            size_t *out_n)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    clew_status rc = posix_pread(io, fd, buf, n, off, out_n);
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

static clew_status pl_fsync(clew_fileio *io, int fd)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    pl_file *f = NULL;
    clew_status rc = file_for_fd(pl, fd, &f);
    if (rc == CLEW_OK) {
        /* The data is now durable: forget how to undo it. No real fsync is needed, the
         * simulated machine never loses power for real. */
        pl_entry **pp = &pl->log;
        while (*pp != NULL) {
            pl_entry *e = *pp;
            if (e->kind == PL_DATA && e->file == f) {
                *pp = e->next;
                entry_free(e);
            } else {
                pp = &e->next;
            }
        }
    }
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

static clew_status pl_truncate(clew_fileio *io, int fd, uint64_t size)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    pl_file *f = NULL;
    uint64_t cur = 0;
    clew_status rc = file_for_fd(pl, fd, &f);
    if (rc == CLEW_OK) {
        rc = posix_size(io, fd, &cur);
    }
    if (rc == CLEW_OK) {
        rc = record_data(pl, f, size, cur > size ? cur - size : 0);
    }
    if (rc == CLEW_OK) {
        rc = posix_truncate(io, fd, size);
    }
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

static clew_status pl_size(clew_fileio *io, int fd, uint64_t *out)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    clew_status rc = posix_size(io, fd, out);
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

static clew_status pl_rename(clew_fileio *io, const char *from, const char *to)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    struct stat st;
    if (stat(from, &st) != 0) {
        pthread_mutex_unlock(&pl->mu);
        return errno_status(errno);
    }
    pl_entry *e = clew__calloc(1, sizeof(*e));
    clew_status rc = CLEW_ENOMEM;
    if (e != NULL) {
        e->kind = PL_RENAME;
        e->path = clew__strdup(to);
        e->path2 = clew__strdup(from);
        e->dir = dir_of(to);
        if (e->path != NULL && e->path2 != NULL && e->dir != NULL) {
            rc = make_backup(pl, to, &e->backup);
        }
    }
    if (rc == CLEW_OK && rename(from, to) != 0) {
        rc = errno_status(errno);
        if (e->backup != NULL) {
            unlink(e->backup);
        }
    }
    if (rc == CLEW_OK) {
        log_push(pl, e);
    } else {
        entry_free(e);
    }
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

static clew_status pl_unlink(clew_fileio *io, const char *path)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    struct stat st;
    if (stat(path, &st) != 0) {
        pthread_mutex_unlock(&pl->mu);
        return errno_status(errno);
    }
    pl_entry *e = clew__calloc(1, sizeof(*e));
    clew_status rc = CLEW_ENOMEM;
    if (e != NULL) {
        e->kind = PL_UNLINK;
        e->path = clew__strdup(path);
        e->dir = dir_of(path);
        if (e->path != NULL && e->dir != NULL) {
            rc = make_backup(pl, path, &e->backup);
        }
    }
    if (rc == CLEW_OK && unlink(path) != 0) {
        rc = errno_status(errno);
        if (e->backup != NULL) {
            unlink(e->backup);
        }
    }
    if (rc == CLEW_OK) {
        log_push(pl, e);
    } else {
        entry_free(e);
    }
    pthread_mutex_unlock(&pl->mu);
    return rc;
}

static clew_status pl_fsync_dir(clew_fileio *io, const char *dir)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        pthread_mutex_unlock(&pl->mu);
        return CLEW_ENOTFOUND;
    }
    pl_entry **pp = &pl->log;
    while (*pp != NULL) {
        pl_entry *e = *pp;
        if (e->kind != PL_DATA && same_dir(e->dir, dir)) {
            *pp = e->next;
            if (e->backup != NULL) {
                unlink(e->backup); /* the old file is gone for good now */
            }
            entry_free(e);
        } else {
            pp = &e->next;
        }
    }
    pthread_mutex_unlock(&pl->mu);
    return CLEW_OK;
}

static clew_status pl_crash_point(clew_fileio *io, const char *name)
{
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    PL_ALIVE(pl);
    if (pl->armed_name != NULL && strcmp(pl->armed_name, name) == 0) {
        if (++pl->armed_hits == pl->armed_nth) {
            pl->dead = true;
            pthread_mutex_unlock(&pl->mu);
            return CLEW_EIO;
        }
    }
    pthread_mutex_unlock(&pl->mu);
    return CLEW_OK;
}

static void undo(pl_entry *e)
{
    switch (e->kind) {
    case PL_DATA:
        if (e->saved_len > 0) {
            (void)posix_pwrite(NULL, e->file->fd, e->saved, e->saved_len, e->off);
        }
        (void)ftruncate(e->file->fd, (off_t)e->old_size);
        break;
    case PL_CREATE:
        (void)unlink(e->path);
        break;
    case PL_RENAME:
        (void)rename(e->path, e->path2);
        if (e->backup != NULL) {
            (void)rename(e->backup, e->path);
        }
        break;
    case PL_UNLINK:
        if (e->backup != NULL) {
            (void)rename(e->backup, e->path);
        }
        break;
    }
}

void clew__fileio_powerloss_cut(clew_fileio *io)
{
    if (io == NULL) {
        return;
    }
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    while (pl->log != NULL) {
        pl_entry *e = pl->log;
        pl->log = e->next;
        undo(e);
        entry_free(e);
    }
    pl->dead = false;
    clew__free(pl->armed_name);
    pl->armed_name = NULL;
    pl->armed_hits = 0;
    pl->armed_nth = 0;
    pthread_mutex_unlock(&pl->mu);
}

void clew__fileio_powerloss_arm(clew_fileio *io, const char *name, unsigned nth)
{
    if (io == NULL || name == NULL) {
        return;
    }
    pl_io *pl = as_pl(io);
    pthread_mutex_lock(&pl->mu);
    clew__free(pl->armed_name);
    pl->armed_name = clew__strdup(name);
    pl->armed_nth = nth;
    pl->armed_hits = 0;
    pthread_mutex_unlock(&pl->mu);
}

clew_status clew__fileio_powerloss_create(clew_fileio **out)
{
    pl_io *pl = clew__calloc(1, sizeof(*pl));
    if (pl == NULL) {
        return CLEW_ENOMEM;
    }
    if (pthread_mutex_init(&pl->mu, NULL) != 0) {
        clew__free(pl);
        return CLEW_ENOMEM;
    }
    pl->base = (clew_fileio){
        .open_file = pl_open,
        .close_file = pl_close,
        .pwrite_all = pl_pwrite,
        .pread_some = pl_pread,
        .fsync_file = pl_fsync,
        .truncate_file = pl_truncate,
        .file_size = pl_size,
        .rename_path = pl_rename,
        .unlink_path = pl_unlink,
        .fsync_dir = pl_fsync_dir,
        .crash_point = pl_crash_point,
    };
    *out = &pl->base;
    return CLEW_OK;
}

void clew__fileio_powerloss_destroy(clew_fileio *io)
{
    if (io == NULL) {
        return;
    }
    pl_io *pl = as_pl(io);
    /* Destroying is not a power cut: pending entries are committed, backups removed. */
    while (pl->log != NULL) {
        pl_entry *e = pl->log;
        pl->log = e->next;
        if (e->backup != NULL) {
            (void)unlink(e->backup);
        }
        entry_free(e);
    }
    for (size_t i = 0; i < pl->n_files; i++) {
        close(pl->files[i]->fd);
        clew__free(pl->files[i]);
    }
    clew__free(pl->files);
    clew__free(pl->armed_name);
    pthread_mutex_destroy(&pl->mu);
    clew__free(pl);
}
