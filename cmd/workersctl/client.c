/*
 * client.c: workersctl's one exchange with the daemon: connect, send the
 * request line, read the reply line. Blocking I/O is right here: the
 * daemon answers from its event loop without delay, except stop, whose
 * reply is meant to wait for the daemon's exit.
 */
#include "workersctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A reply larger than this is not one workersd sends (a status of 100,000
 * workers is about 8 MB). */
#define REPLY_MAX (64u << 20)

static int
connect_to(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, e;

    if (strlen(path) >= sizeof sa.sun_path) {
        wd_control_errf(err, errlen, "%s: too long for a Unix socket", path);
        return -WD_CONTROL_EXIT_USAGE;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        wd_control_errf(err, errlen, "socket: %s", strerror(errno));
        return -WD_CONTROL_EXIT_UNAVAILABLE;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    e = errno;
    close(fd);
    if (e == EACCES || e == EPERM) {
        wd_control_errf(err, errlen, "%s: permission denied", path);
        return -WD_CONTROL_EXIT_REFUSED;
    }
    wd_control_errf(err, errlen, "no workersd at %s: %s", path, strerror(e));
    return -WD_CONTROL_EXIT_UNAVAILABLE;
}

static void
send_line(int fd, const char *line)
{
    char msg[WD_CONTROL_REQUEST_MAX];
    size_t len = strlen(line), off = 0;

    if (len >= sizeof msg)
        return; /* main() never builds such a line */
    memcpy(msg, line, len);
    msg[len++] = '\n';
    while (off < len) {
        ssize_t n = send(fd, msg + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;
        off += (size_t)n;
    }
}

/* Reads up to the first newline; what comes after it (an ECONNRESET from
 * a server that closed without reading all we sent) does not matter. */
static char *
read_line(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap), *grown;

    while (buf != NULL) {
        ssize_t n;
        if (len + 1 == cap) {
            if (cap >= REPLY_MAX || (grown = realloc(buf, cap * 2)) == NULL)
                break;
            buf = grown, cap *= 2;
        }
        n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(buf + len - (size_t)n, '\n', (size_t)n) != NULL) {
            buf[len] = '\0';
            return buf;
        }
    }
    free(buf);
    return NULL;
}

int
ctl_exchange(const char *path, const char *line, char **reply, char *err,
             size_t errlen)
{
    int fd = connect_to(path, err, errlen);

    *reply = NULL;
    if (fd < 0)
        return -fd;
    /* A send that fails (the daemon was busy, or refused us, and closed
     * first) leaves its reply to read all the same. */
    send_line(fd, line);
    *reply = read_line(fd);
    close(fd);
    if (*reply == NULL) {
        wd_control_errf(err, errlen,
                        "%s: the connection ended without a reply (did "
                        "workersd exit?)",
                        path);
        return WD_CONTROL_EXIT_UNAVAILABLE;
    }
    return 0;
}
