/*
 * http.c: GET /metrics over HTTP with libmicrohttpd, driven by the
 * daemon's libev loop rather than a thread of MHD's own.
 *
 * Why the loop: a scrape then runs on the loop thread, so the daemon's
 * facts (worker count, limits, paused, reloads) are read where they are
 * written, without a lock; the render costs tens of microseconds once per
 * scrape interval, and MHD never blocks (non-blocking sockets, epoll). MHD
 * runs in its "external epoll" mode: the loop watches MHD's epoll
 * descriptor and calls MHD_run() when it is readable and when the timeout
 * MHD_get_timeout() asks for passes (idle connections are dropped after
 * CONN_TIMEOUT_S; at most WD_HTTP_CONNS at once, which nofile.c counts
 * in the descriptor limit). No thread is made, so no signal can reach one.
 *
 * The listening socket is ours (listen.c), so a bind failure names the
 * configured address; MHD_stop_daemon() closes it.
 */
#include "metrics/metrics.h"

#include <errno.h>
#include <ev.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONN_TIMEOUT_S 5

struct wd_http {
    struct ev_loop *loop;
    wd_metrics *m;
    struct MHD_Daemon *mhd;
    unsigned port;
    ev_io io;       /* MHD's epoll descriptor */
    ev_timer timer; /* MHD_get_timeout() */
};

static void
mhd_log(void *arg, const char *fmt, va_list ap)
{
    char line[256];

    (void)arg;
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    wd_log(WD_LOG_DEBUG, "metrics http: %s", line);
}

static enum MHD_Result
answer(struct MHD_Connection *conn, unsigned status, const char *text,
       size_t len, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;

    if (r == NULL)
        return MHD_NO; /* MHD closes the connection */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result
on_request(void *arg, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_size, void **state)
{
    static const char not_found[] = "not found: the metrics are at /metrics\n";
    static const char not_allowed[] = "method not allowed: use GET\n";
    static const char oom[] = "out of memory\n";
    struct wd_http *h = arg;
    const char *text;
    size_t len;

    (void)version, (void)upload_data, (void)upload_size, (void)state;
    if (strcmp(url, "/metrics") != 0)
        return answer(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof not_found - 1,
                      "text/plain");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed,
                      sizeof not_allowed - 1, "text/plain");
    if ((text = wd_metrics_text(h->m, &len)) == NULL)
        return answer(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, oom, sizeof oom - 1,
                      "text/plain");
    return answer(conn, MHD_HTTP_OK, text, len, WD_PROM_CONTENT_TYPE);
}

/* Lets MHD work, then waits for its descriptor or its timeout. */
static void
run_mhd(struct wd_http *h)
{
    MHD_UNSIGNED_LONG_LONG ms;

    MHD_run(h->mhd);
    ev_timer_stop(h->loop, &h->timer);
    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
        ev_timer_set(&h->timer, (double)ms / 1e3, 0.);
        ev_timer_start(h->loop, &h->timer);
    }
}

static void
on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    run_mhd(w->data);
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    run_mhd(w->data);
}

static unsigned
bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int
wd_http_start(wd_http **out, struct ev_loop *loop, const char *listen,
              wd_metrics *m, char *err, size_t errlen)
{
    struct wd_http *h = calloc(1, sizeof *h);
    const union MHD_DaemonInfo *info;
    int fd;

    if (h == NULL) {
        snprintf(err, errlen, "[metrics] Listen = %s: out of memory", listen);
        return -ENOMEM;
    }
    if ((fd = wd_listen_open(listen, err, errlen)) < 0) {
        free(h);
        return fd;
    }
    h->loop = loop;
    h->m = m;
    h->port = bound_port(fd);
    errno = 0;
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)WD_HTTP_CONNS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
        MHD_OPTION_END);
    if (h->mhd == NULL || (info = MHD_get_daemon_info(
                               h->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
        /* The address is bound, so the cause is no config: what MHD could
         * not make (its epoll descriptor, memory), as errno says; without
         * one, a resource all the same. */
        int e = errno != 0 ? errno : EAGAIN;
        snprintf(err, errlen,
                 "[metrics] Listen = %s: cannot start the HTTP "
                 "server (libmicrohttpd): %s",
                 listen, strerror(e));
        if (h->mhd != NULL)
            MHD_stop_daemon(h->mhd);
        else
            close(fd);
        free(h);
        return -e;
    }
    ev_io_init(&h->io, on_io, info->epoll_fd, EV_READ);
    h->io.data = h;
    ev_init(&h->timer, on_timer);
    h->timer.data = h;
    ev_io_start(loop, &h->io);
    run_mhd(h);
    *out = h;
    return 0;
}

unsigned
wd_http_port(const wd_http *h)
{
    return h->port;
}

void
wd_http_stop(wd_http *h)
{
    if (h == NULL)
        return;
    ev_io_stop(h->loop, &h->io);
    ev_timer_stop(h->loop, &h->timer);
    MHD_stop_daemon(h->mhd);
    free(h);
}
