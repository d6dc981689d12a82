/* Helpers for the metrics suites: see metricsutil.h. */
#include "metricsutil.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void
on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w, (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

void
mu_loop_init(mu_loop *l)
{
    l->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (l->loop == NULL)
        abort();
    ev_async_init(&l->stop, on_stop);
    ev_async_start(l->loop, &l->stop);
}

static void *
loop_main(void *arg)
{
    mu_loop *l = arg;
    ev_run(l->loop, 0);
    return NULL;
}

void
mu_loop_start(mu_loop *l)
{
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0)
        abort();
}

void
mu_loop_stop(mu_loop *l)
{
    ev_async_send(l->loop, &l->stop);
    pthread_join(l->thread, NULL);
}

void
mu_loop_free(mu_loop *l)
{
    ev_async_stop(l->loop, &l->stop);
    ev_loop_destroy(l->loop);
}

static struct sockaddr_in
loopback(unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

int
mu_http(unsigned port, const char *request, char *out, size_t cap)
{
    struct sockaddr_in sa = loopback(port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;
    size_t len = 0;
    uint64_t end = tu_now_ms() + TU_DEADLINE_MS;

    out[0] = '\0';
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        send(fd, request, strlen(request), MSG_NOSIGNAL) < 0) {
        close(fd);
        return -1;
    }
    for (;;) {
        uint64_t now = tu_now_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
            break;
        char chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            break;
        size_t take = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
        memcpy(out + len, chunk, take);
        len += take;
    }
    out[len] = '\0';
    close(fd);
    if (sscanf(out, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    return status;
}

unsigned
mu_free_port(void)
{
    struct sockaddr_in sa = loopback(0);
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    close(fd);
    return ntohs(sa.sin_port);
}
