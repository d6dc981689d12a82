/*
 * socket.c: the control socket's file. A daemon that crashed leaves its
 * socket file behind; a new one must replace it, yet never steal the
 * socket of a daemon that still runs. The test is the one that matters:
 * connect() to the file. ECONNREFUSED means nobody listens (stale); a
 * connection, or EAGAIN (a full backlog), means a live daemon. Anything
 * that is not a socket is never removed. Two daemons started at the same
 * instant over the same stale file could both see it stale; a supervisor
 * never starts one unit twice at once, so no lock file is kept for that.
 *
 * The file's mode and group are set between bind() and listen(): until
 * listen(), a connect() is refused, so no client ever reaches a socket
 * whose permissions are not yet the configured ones.
 */
#include "control/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKLOG 32

static int
make_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        return -1;
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* Makes path's folder when it is missing (one level only: a missing
 * grandparent is a mistake the operator should see). */
static int
make_folder(const char *path, unsigned mode, gid_t group, char *err,
            size_t errlen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *slash = strrchr(path, '/');
    mode_t dmode = 0700;

    if (slash == NULL || slash == path)
        return 0;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    /* Whom the socket's mode lets in must be able to reach it. */
    if (mode & 0070)
        dmode |= 0010;
    if (mode & 0007)
        dmode |= 0001;
    if (mkdir(dir, dmode) != 0) {
        if (errno == EEXIST)
            return 0;
        return wd_control_errf(err, errlen,
                               "control socket %s: cannot make %s: %s", path,
                               dir, strerror(errno));
    }
    /* mkdir applied the umask; the group may need the folder too. */
    if (chmod(dir, dmode) != 0 ||
        (group != (gid_t)-1 && chown(dir, (uid_t)-1, group) != 0))
        return wd_control_errf(err, errlen, "control socket %s: %s: %s", path,
                               dir, strerror(errno));
    return 0;
}

/* socket() failed: the system is out of descriptors or memory, not the
 * configuration wrong, so the caller gets the errno (exit 70, not 78). */
static int
no_socket(const char *path, char *err, size_t errlen)
{
    int e = errno;
    wd_control_errf(err, errlen, "control socket %s: socket: %s", path,
                    strerror(e));
    return -e;
}

/* 1: path is a stale socket (removed), 0: nothing there any more, < 0: it
 * must stay (err says why; -errno when a socket could not be made). */
static int
clear_stale(const char *path, const struct sockaddr_un *sa, char *err,
            size_t errlen)
{
    struct stat st;
    int fd, rc, e;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0
                               : wd_control_errf(err, errlen, "%s: %s", path,
                                                 strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return wd_control_errf(
            err, errlen,
            "control socket %s: the path exists and is not a socket", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return no_socket(path, err, errlen);
    rc = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
    e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN)
        return wd_control_errf(
            err, errlen,
            "control socket %s: another process is serving it (is "
            "workersd already running with this config?)",
            path);
    if (e == ENOENT)
        return 0;
    if (e != ECONNREFUSED)
        return wd_control_errf(err, errlen, "control socket %s: %s", path,
                               strerror(e));
    if (unlink(path) != 0 && errno != ENOENT)
        return wd_control_errf(err, errlen,
                               "control socket %s: cannot remove the stale "
                               "socket: %s",
                               path, strerror(errno));
    return 1;
}

int
wd_control_listen(const char *path, unsigned mode, gid_t group,
                  wd_control_socket *out, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, rc;

    out->fd = -1;
    if (make_addr(path, &sa) != 0)
        return wd_control_errf(err, errlen, "control socket %s: path too long",
                               path);
    if ((mode & 0600) != 0600 || (mode & ~0777u) != 0)
        return wd_control_errf(
            err, errlen,
            "control socket %s: mode %o must be at most 0777 and "
            "give the owner read and write",
            path, mode);
    if (make_folder(path, mode, group, err, errlen) != 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return no_socket(path, err, errlen);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc != 0 && errno == EADDRINUSE) {
        int stale = clear_stale(path, &sa, err, errlen);
        if (stale < 0) {
            close(fd);
            return stale;
        }
        rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    }
    if (rc != 0) {
        wd_control_errf(err, errlen, "control socket %s: %s", path,
                        strerror(errno));
        close(fd);
        return -1;
    }
    if (chmod(path, mode) != 0 ||
        (group != (gid_t)-1 && chown(path, (uid_t)-1, group) != 0) ||
        stat(path, &st) != 0 || listen(fd, BACKLOG) != 0) {
        wd_control_errf(err, errlen, "control socket %s: %s", path,
                        strerror(errno));
        unlink(path);
        close(fd);
        return -1;
    }
    *out = (wd_control_socket){fd, st.st_dev, st.st_ino};
    return 0;
}

void
wd_control_unlink(const char *path, wd_control_socket *s)
{
    struct stat st;

    if (s->fd < 0)
        return;
    if (stat(path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
        unlink(path);
    close(s->fd);
    s->fd = -1;
}
