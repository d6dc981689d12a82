/*
 * Helpers for the suites that serve metrics (check_metrics_http.c,
 * check_nofile.c):
 * a libev loop on a thread of its own, as the daemon's loop thread, and a
 * plain HTTP client on a socket.
 */
#ifndef WORKERS_METRICSUTIL_H
#define WORKERS_METRICSUTIL_H

#include <ev.h>
#include <pthread.h>
#include <stddef.h>

/*
 * mu_loop_start() runs ev_run on a new thread until mu_loop_stop(). Make
 * the watchers (a wd_metrics) before the start and free them after the
 * stop, before mu_loop_free(): the thread's start and join order those
 * accesses.
 */
typedef struct mu_loop {
    struct ev_loop *loop;
    pthread_t thread;
    ev_async stop;
} mu_loop;

void mu_loop_init(mu_loop *l);
void mu_loop_start(mu_loop *l);
void mu_loop_stop(mu_loop *l);
void mu_loop_free(mu_loop *l);

/*
 * Sends request (raw bytes, e.g. "GET / HTTP/1.0\r\n\r\n") to
 * 127.0.0.1:port, reads the reply until the server closes (10 s at most)
 * into out (NUL-terminated, cut at cap - 1). Returns the reply's status
 * code, or -1 when there was no reply.
 */
int mu_http(unsigned port, const char *request, char *out, size_t cap);

/* A free TCP port on 127.0.0.1 (bound then released: the caller binds it
 * right away). */
unsigned mu_free_port(void);

#endif
