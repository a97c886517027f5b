/* fileio.h - the file system calls of the storage engine, as a swappable table.
 *
 * Every open, read, write, sync, truncate, rename, unlink, mkdir and close
 * that src/storage/ makes goes through storage_fio (the idea of SQLite's
 * aSyscall[]). Production code never touches the table; tests replace one
 * entry (say pwrite) with a function that fails with ENOSPC, EIO or writes
 * short, run the scenario, then call storage_fio_reset(). This table is the
 * only global state of the storage engine; it is not meant to be changed
 * while another thread is inside the engine.
 *
 * The helpers below retry EINTR and short transfers so callers only ever see
 * "all bytes done" (0) or "failed" (-1 with errno set).
 */
#ifndef SAMSA_STORAGE_FILEIO_H
#define SAMSA_STORAGE_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef struct storage_fileio {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    ssize_t (*write)(int fd, const void *buf, size_t n);
    int (*fsync)(int fd);
    int (*fdatasync)(int fd);
    int (*ftruncate)(int fd, off_t len);
    int (*truncate)(const char *path, off_t len);
    int (*fallocate)(int fd, int mode, off_t off, off_t len);
    int (*fstat)(int fd, struct stat *st);
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, mode_t mode);
    int (*rmdir)(const char *path);
} storage_fileio;

extern storage_fileio storage_fio;

/* Restore every entry to the real system call. */
void storage_fio_reset(void);

/* Read exactly n bytes at off. Returns 0, or -1 with errno (EIO-like errors,
 * or ENODATA when the file ends first). */
int fio_pread_full(int fd, void *buf, size_t n, int64_t off);
/* Write all n bytes at off. Returns 0 or -1 with errno; on failure some
 * prefix may have been written (callers truncate back). */
int fio_pwrite_full(int fd, const void *buf, size_t n, int64_t off);
/* Sequential write of all n bytes. */
int fio_write_full(int fd, const void *buf, size_t n);
/* fsync a directory so that renames/creations in it are durable. */
int fio_fsync_dir(const char *dir);
/* Size of an open file, or -1. */
int64_t fio_file_size(int fd);

/* A directory read without opendir's heap buffer (a 32 KB malloc per listing
 * that start-up paid once per partition): open, getdents64 into buf, close. */
typedef struct fio_dir {
    int fd;
    int pos, len;
    _Alignas(8) char buf[8192]; /* holds struct dirent64 records */
} fio_dir;
/* Opens dir for reading. 0, or -1 with errno. */
int fio_dir_open(fio_dir *d, const char *dir);
/* The next entry's name ("." and ".." included), or NULL at the end (errno
 * 0) or on an error (errno set). Valid until the next call. */
const char *fio_dir_next(fio_dir *d);
void fio_dir_close(fio_dir *d);

#endif
