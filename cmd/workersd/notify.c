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
 * A NOTIFY_SOCKET that cannot be used (too long for a sockaddr_un, a
 * vsock: address, a relative path) is a warning, not a failure: the jobs
 * matter more than the notifications, so workersd runs on without them.
 *
 * WATCHDOG_USEC is floored at WATCHDOG_MIN_USEC: the loop pings at half
 * the interval, so WATCHDOG_USEC=1 (a typo for 1s) would make it spin.
 *
 * State: the socket and its address, set by wd_notify_init() on the main
 * thread before any other thread starts; wd_notify() runs on the loop
 * thread only.
 */
#include "workersd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* 100ms: pings every 50ms at most, a cost nobody notices; a shorter
 * interval could not be kept anyway on a loaded machine, where the loop
 * may wait that long for a CPU. */
#define WATCHDOG_MIN_USEC 100000u

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;
static uint64_t watchdog_usec;
static bool under_systemd; /* NOTIFY_SOCKET or INVOCATION_ID was set */

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

/* Why name cannot be used as an AF_UNIX address, or NULL. */
static const char *
unusable(const char *name, size_t len)
{
    if (strncmp(name, "vsock:", 6) == 0)
        return "vsock addresses are not supported";
    if (name[0] != '/' && name[0] != '@')
        return "not an absolute path or '@' name";
    if (len >= sizeof notify_addr.sun_path)
        return "too long for a unix socket address (at most 107 bytes)";
    return NULL;
}

int
wd_notify_init(char *err, size_t errlen)
{
    const char *name = getenv("NOTIFY_SOCKET"), *why;
    size_t len;
    int rc = 0;

    watchdog_usec = read_watchdog();
    under_systemd =
        (name != NULL && *name != '\0') || getenv("INVOCATION_ID") != NULL;
    if (name == NULL || *name == '\0')
        goto out;
    len = strlen(name);
    if ((why = unusable(name, len)) != NULL) {
        snprintf(err, errlen, "NOTIFY_SOCKET=%s: %s: not notifying systemd",
                 name, why);
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
        snprintf(err, errlen,
                 "NOTIFY_SOCKET: socket: %s: not notifying systemd",
                 strerror(errno));
        rc = -1;
    } else if (watchdog_usec != 0 && watchdog_usec < WATCHDOG_MIN_USEC) {
        wd_log(WD_LOG_WARNING,
               "WATCHDOG_USEC=%" PRIu64 " is below 100ms: pinging as for "
               "100ms (every 50ms)",
               watchdog_usec);
        watchdog_usec = WATCHDOG_MIN_USEC;
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
    char msg[WD_NOTIFY_MAX];
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

/* Our unit: the last component of our cgroup path ("0::/system.slice/
 * workersd.service"), when it names a unit. */
static bool
cgroup_unit(char *buf, size_t len)
{
    char line[512];
    FILE *f = fopen("/proc/self/cgroup", "re");
    bool found = false;

    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        const char *last = strrchr(line, '/');
        if (last != NULL && (strstr(last, ".service") != NULL ||
                             strstr(last, ".scope") != NULL)) {
            snprintf(buf, len, "%s", last + 1);
            found = true;
        }
    }
    fclose(f);
    return found;
}

bool
wd_notify_unit(char *buf, size_t len)
{
    if (!under_systemd)
        return false;
    if (!cgroup_unit(buf, len))
        snprintf(buf, len, "workersd");
    return true;
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
