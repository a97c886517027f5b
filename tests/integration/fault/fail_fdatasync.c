/* fail_fdatasync.c - LD_PRELOAD shim for tests: fdatasync fails with EIO
 * while the file named by SAMSA_FAIL_FDATASYNC exists, as a disk that lost
 * a write would make it fail. Only the metadata log's fsync thread calls
 * fdatasync in the broker, so this injects exactly that fault. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

int fdatasync(int fd) {
    const char *flag = getenv("SAMSA_FAIL_FDATASYNC");
    if (flag && access(flag, F_OK) == 0) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real ? real(fd) : -1;
}
