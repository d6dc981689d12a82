/*
 * notify.c: systemd's notify protocol (sd_notify(3)) without libsystemd.
 *
 * One datagram per message on the AF_UNIX socket $NOTIFY_SOCKET names (a
 * path, or an abstract name when it starts with '@'). wd_notify_init()
 * reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once, then removes
 * them from the environment: the shell jobs inherit our environment, and a
 * job's child must not be able to speak to systemd on our behalf (nor
 * think the watchdog is its own).
 *
 * State: the socket and its address, set by wd_notify_init() on the main
 * thread before any other thread starts; wd_notify() runs on the loop
 * thread only.
 */
#include "workersd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;
static uint64_t watchdog_usec;

/* WATCHDOG_USEC, when WATCHDOG_PID (if set) is our pid. */
static uint64_t
read_watchdog(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    unsigned long long v;
    char *end;

    if (pid != NULL) {
        errno = 0;
        v = strtoull(pid, &end, 10);
        if (errno != 0 || *end != '\0' || v != (unsigned long long)getpid())
            return 0;
    }
    if (usec == NULL)
        return 0;
    errno = 0;
    v = strtoull(usec, &end, 10);
    if (errno != 0 || *end != '\0' || *usec == '-')
        return 0;
    return v;
}

int
wd_notify_init(char *err, size_t errlen)
{
    const char *name = getenv("NOTIFY_SOCKET");
    size_t len;
    int rc = 0;

    watchdog_usec = read_watchdog();
    if (name == NULL || *name == '\0')
        goto out;
    len = strlen(name);
    if ((name[0] != '/' && name[0] != '@') ||
        len >= sizeof notify_addr.sun_path) {
        snprintf(err, errlen,
                 "NOTIFY_SOCKET=%s: not an absolute path or '@' name", name);
        rc = -1;
        goto out;
    }
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, name, len);
    if (name[0] == '@')
        notify_addr.sun_path[0] = '\0'; /* abstract: no trailing NUL */
    notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0) {
        snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s", strerror(errno));
        rc = -1;
    }
out:
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    return rc;
}

void
wd_notify(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    int n;

    if (notify_fd < 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof msg)
        return;
    /* systemd may be slow to read: a lost STATUS is not worth blocking the
     * loop for, so the send does not wait. */
    if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT,
               (const struct sockaddr *)&notify_addr, notify_addrlen) < 0)
        wd_log(WD_LOG_DEBUG, "notify %.*s: %s", (int)strcspn(msg, "\n"), msg,
               strerror(errno));
}

uint64_t
wd_notify_watchdog_usec(void)
{
    return notify_fd >= 0 ? watchdog_usec : 0;
}

void
wd_notify_close(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
}
