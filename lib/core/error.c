/*
 * Error names and messages, and the library version.
 *
 * One table yields both the symbolic name and the message of every code the
 * library returns: its own WORKERS_E* codes (from WORKERS_ERRNO_MAP) and the
 * negated errno values that system calls, pthread functions and jobs commonly
 * produce, and 0 (success, named "OK": a result printed with these reads
 * right whatever it is). Only static strings and a linear scan: no locale, no
 * buffer, so both lookups are async-signal-safe (strerror(3) is not).
 */
#include "internal.h"

#include <errno.h>

struct err_entry {
    int code;
    const char *name;
    const char *msg;
};

/* One row a line reads better than any reflow. */
/* clang-format off */
#define WORKERS__ERR_ROW(name, val, msg) {WORKERS_##name, "WORKERS_" #name, msg},
#define ERRNO_ROW(e, msg) {-(e), #e, msg},

static const struct err_entry err_table[] = {
    {0, "OK", "success"},
    WORKERS_ERRNO_MAP(WORKERS__ERR_ROW)
    ERRNO_ROW(EPERM, "operation not permitted")
    ERRNO_ROW(ENOENT, "no such file or directory")
    ERRNO_ROW(ESRCH, "no such process")
    ERRNO_ROW(EINTR, "interrupted system call")
    ERRNO_ROW(EIO, "input/output error")
    ERRNO_ROW(ENXIO, "no such device or address")
    ERRNO_ROW(E2BIG, "argument list too long")
    ERRNO_ROW(ENOEXEC, "exec format error")
    ERRNO_ROW(EBADF, "bad file descriptor")
    ERRNO_ROW(ECHILD, "no child processes")
    ERRNO_ROW(EAGAIN, "resource temporarily unavailable")
    ERRNO_ROW(ENOMEM, "cannot allocate memory")
    ERRNO_ROW(EACCES, "permission denied")
    ERRNO_ROW(EFAULT, "bad address")
    ERRNO_ROW(EBUSY, "device or resource busy")
    ERRNO_ROW(EEXIST, "file exists")
    ERRNO_ROW(ENOTDIR, "not a directory")
    ERRNO_ROW(EISDIR, "is a directory")
    ERRNO_ROW(EINVAL, "invalid argument")
    ERRNO_ROW(ENFILE, "too many open files in system")
    ERRNO_ROW(EMFILE, "too many open files")
    ERRNO_ROW(ETXTBSY, "text file busy")
    ERRNO_ROW(EFBIG, "file too large")
    ERRNO_ROW(ENOSPC, "no space left on device")
    ERRNO_ROW(EROFS, "read-only file system")
    ERRNO_ROW(EPIPE, "broken pipe")
    ERRNO_ROW(EDOM, "numerical argument out of domain")
    ERRNO_ROW(ERANGE, "numerical result out of range")
    ERRNO_ROW(EDEADLK, "resource deadlock avoided")
    ERRNO_ROW(ENAMETOOLONG, "file name too long")
    ERRNO_ROW(ENOSYS, "function not implemented")
    ERRNO_ROW(ELOOP, "too many levels of symbolic links")
    ERRNO_ROW(ENOTSUP, "operation not supported")
    ERRNO_ROW(EADDRINUSE, "address already in use")
    ERRNO_ROW(ECONNREFUSED, "connection refused")
    ERRNO_ROW(ECONNRESET, "connection reset by peer")
    ERRNO_ROW(ETIMEDOUT, "connection timed out")
    ERRNO_ROW(ECANCELED, "operation canceled")
    ERRNO_ROW(EOVERFLOW, "value too large for defined data type")
};
/* clang-format on */

#undef WORKERS__ERR_ROW
#undef ERRNO_ROW

static const struct err_entry *
err_find(int err)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
        if (err_table[i].code == err)
            return &err_table[i];
    return NULL;
}

const char *
workers_strerror(int err)
{
    const struct err_entry *e = err_find(err);
    return e != NULL ? e->msg : "unknown error";
}

const char *
workers_err_name(int err)
{
    const struct err_entry *e = err_find(err);
    return e != NULL ? e->name : "UNKNOWN";
}

const char *
workers_version(void)
{
    return WORKERS_VERSION_STRING;
}
