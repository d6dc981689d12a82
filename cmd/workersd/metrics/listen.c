/*
 * listen.c: [metrics] Listen, parsed (for the config check, so that
 * `workersd -t` refuses a malformed address) and opened (at start, so that
 * a port in use is a start-up error naming the address). Only numeric
 * addresses and "localhost" are taken: the daemon resolves no names, and a
 * bare port means loopback, never every interface.
 */
#include "metrics/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The port after the host: 0..65535, decimal, nothing else. */
static int
parse_port(const char *s, in_port_t *port)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > 65535)
        return -1;
    *port = htons((in_port_t)v);
    return 0;
}

int
wd_listen_parse(const char *text, struct sockaddr_storage *addr,
                socklen_t *addrlen, const char **why)
{
    char host[64];
    const char *port;
    in_port_t p;

    memset(addr, 0, sizeof *addr);
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') {
            *why = "expected [IPv6 address]:port";
            return -1;
        }
        if ((size_t)(close - text - 1) >= sizeof host)
            goto bad_host;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port = close + 2;
    } else if (strchr(text, ':') == NULL) {
        snprintf(host, sizeof host, "127.0.0.1");
        port = text;
    } else {
        const char *colon = strrchr(text, ':');
        if ((size_t)(colon - text) >= sizeof host)
            goto bad_host;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port = colon + 1;
    }
    if (parse_port(port, &p) != 0) {
        *why = "the port must be a number from 0 to 65535";
        return -1;
    }
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");

    struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
    if (text[0] != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = p;
        *addrlen = sizeof *in4;
        return 0;
    }
    if (text[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = p;
        *addrlen = sizeof *in6;
        return 0;
    }
bad_host:
    *why = "not HOST:PORT with a numeric host (127.0.0.1:9717, "
           "[::1]:9717, 0.0.0.0:9717), localhost:PORT, or a port alone "
           "(loopback)";
    return -1;
}

int
wd_listen_open(const char *text, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t len;
    const char *why;
    int fd, one = 1;

    if (wd_listen_parse(text, &addr, &len, &why) != 0) {
        snprintf(err, errlen, "[metrics] Listen = %s: %s", text, why);
        return -EINVAL;
    }
    fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "[metrics] Listen = %s: socket: %s", text,
                 strerror(e));
        return -e;
    }
    /* A restart may bind while the last one's connections linger in
     * TIME_WAIT; two live listeners still cannot share the port. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, 16) != 0) {
        int e = errno;
        snprintf(err, errlen, "[metrics] Listen = %s: cannot listen: %s", text,
                 strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}
