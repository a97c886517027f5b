/* fileio.c - the storage engine's system call table (see fileio.h). */
#include "storage/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

/* open(2) is variadic; the table wants a fixed signature. */
static int real_open(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }

static const storage_fileio real_fileio = {
    .open = real_open,
    .close = close,
    .pread = pread,
    .pwrite = pwrite,
    .write = write,
    .fsync = fsync,
    .fdatasync = fdatasync,
    .ftruncate = ftruncate,
    .truncate = truncate,
    .fallocate = fallocate,
    .fstat = fstat,
    .rename = rename,
    .unlink = unlink,
    .mkdir = mkdir,
    .rmdir = rmdir,
};

storage_fileio storage_fio = {
    .open = real_open,
    .close = close,
    .pread = pread,
    .pwrite = pwrite,
    .write = write,
    .fsync = fsync,
    .fdatasync = fdatasync,
    .ftruncate = ftruncate,
    .truncate = truncate,
    .fallocate = fallocate,
    .fstat = fstat,
    .rename = rename,
    .unlink = unlink,
    .mkdir = mkdir,
    .rmdir = rmdir,
};

void storage_fio_reset(void) { storage_fio = real_fileio; }

int fio_pread_full(int fd, void *buf, size_t n, int64_t off) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = storage_fio.pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) {
            errno = ENODATA;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int fio_pwrite_full(int fd, const void *buf, size_t n, int64_t off) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = storage_fio.pwrite(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) { /* a zero-byte write would loop forever */
            errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int fio_write_full(int fd, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = storage_fio.write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int fio_fsync_dir(const char *dir) {
    int fd = storage_fio.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    int rc = storage_fio.fsync(fd);
    int saved = errno;
    storage_fio.close(fd);
    errno = saved;
    return rc;
}

int64_t fio_file_size(int fd) {
    struct stat st;
    if (storage_fio.fstat(fd, &st) != 0) return -1;
    return (int64_t)st.st_size;
}

int fio_dir_open(fio_dir *d, const char *dir) {
    d->pos = d->len = 0;
    d->fd = storage_fio.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    return d->fd < 0 ? -1 : 0;
}

const char *fio_dir_next(fio_dir *d) {
    if (d->pos >= d->len) {
        ssize_t n;
        do n = getdents64(d->fd, d->buf, sizeof d->buf);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            if (n == 0) errno = 0;
            return NULL;
        }
        d->len = (int)n;
        d->pos = 0;
    }
    struct dirent64 *e = (struct dirent64 *)(d->buf + d->pos);
    d->pos += e->d_reclen;
    return e->d_name;
}

void fio_dir_close(fio_dir *d) {
    if (d->fd >= 0) storage_fio.close(d->fd);
    d->fd = -1;
}
