/* An LD_PRELOAD shim that makes flock(2) fail as on a filesystem without it (Lustre
 * mounted without -o flock, NFS without a lock daemon): ENOSYS. Built by
 * tests/lock_fallback.rs with `cc -shared -fPIC`. */
#include <errno.h>

int flock(int fd, int operation) {
    (void)fd;
    (void)operation;
    errno = ENOSYS;
    return -1;
}
