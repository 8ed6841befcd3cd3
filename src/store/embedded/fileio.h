/*
 * src/store/embedded/fileio.h - the file operations of the embedded store, behind a table
 * of functions so tests can replace them.
 *
 * Every byte the embedded store writes goes through a clew_fileio. The POSIX implementation
 * (clew__fileio_posix) calls the system directly. The power-loss implementation
 * (clew__fileio_powerloss_create) keeps, per file, what has been written but not yet
 * fsynced; "cutting the power" (clew__fileio_powerloss_cut) throws all of that away, as a
 * machine that loses power would, and also forgets renames, creations and unlinks whose
 * directory was not fsynced. It also injects a crash at a named point: a test arms a point
 * name and a count, and the operation that reaches it fails with CLEW_EIO from then on
 * (the process "dies" there), so recovery from every intermediate state can be tested.
 *
 * Thread-safety: the POSIX table is stateless. The power-loss implementation locks
 * internally and may be used from several threads.
 */
#ifndef CLEW_STORE_EMBEDDED_FILEIO_H
#define CLEW_STORE_EMBEDDED_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "clew/status.h"

typedef struct clew_fileio clew_fileio;

/* Flags for open_file. */
#define CLEW_FILEIO_READ   0x1
#define CLEW_FILEIO_WRITE  0x2 /* read-write */
#define CLEW_FILEIO_CREATE 0x4 /* create if missing */
#define CLEW_FILEIO_EXCL   0x8 /* with CREATE: fail with CLEW_EBUSY if it exists */
#define CLEW_FILEIO_TRUNC  0x10

struct clew_fileio {
    /* Opens `path`; *out_fd is an opaque descriptor for the other calls. */
    clew_status (*open_file)(clew_fileio *io, const char *path, int flags, int *out_fd);
    clew_status (*close_file)(clew_fileio *io, int fd);
    /* Writes all `n` bytes at `off` (pwrite semantics; short writes are retried). */
    clew_status (*pwrite_all)(clew_fileio *io, int fd, const void *buf, size_t n, uint64_t off);
    /* Reads up to `n` bytes at `off`; *out_n < n only at end of file. */
    clew_status (*pread_some)(clew_fileio *io, int fd, void *buf, size_t n, uint64_t off,
                              size_t *out_n);
    clew_status (*fsync_file)(clew_fileio *io, int fd);
    clew_status (*truncate_file)(clew_fileio *io, int fd, uint64_t size);
    clew_status (*file_size)(clew_fileio *io, int fd, uint64_t *out_size);
    clew_status (*rename_path)(clew_fileio *io, const char *from, const char *to);
    clew_status (*unlink_path)(clew_fileio *io, const char *path);
    /* Makes creations, renames and unlinks in directory `dir` durable. */
    clew_status (*fsync_dir)(clew_fileio *io, const char *dir);
    /* Names a crash point ("block.renamed", "wal.segment.deleted", ...): a no-op for POSIX;
     * the power-loss implementation fails here (and at every later call) once armed. */
    clew_status (*crash_point)(clew_fileio *io, const char *name);
};

/* The process-wide POSIX implementation (stateless, never freed). */
clew_fileio *clew__fileio_posix(void);

/* A power-loss simulator over the real file system (files are real; unsynced writes are
 * tracked in memory and undone by clew__fileio_powerloss_cut). Free with ..._destroy. */
CLEW_NODISCARD clew_status clew__fileio_powerloss_create(clew_fileio **out);
void clew__fileio_powerloss_destroy(clew_fileio *io);
/* Undoes every write, creation, rename and unlink not made durable by fsync_file/fsync_dir,
 * then lets operations succeed again (a restarted machine). */
void clew__fileio_powerloss_cut(clew_fileio *io);
/* Arms a crash: the `nth` (1-based) time crash_point(name) is reached, it and every later
 * operation fail with CLEW_EIO until clew__fileio_powerloss_cut. */
void clew__fileio_powerloss_arm(clew_fileio *io, const char *name, unsigned nth);

#endif /* CLEW_STORE_EMBEDDED_FILEIO_H */
