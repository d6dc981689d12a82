/*
 * Plugin jobs: a shared object with job_do (required) and job_init,
 * job_new, job_free, job_fini (optional), as workersd.h and the README
 * describe. The plugin calls back into the library's context functions,
 * which workersd exports (-rdynamic).
 *
 * Each worker owns a struct pworker: the plugin's job_new state, freed with
 * job_free when that worker stops, so job_do needs no lock for it.
 *
 * Timeout: without it (the common case) a run is job_do(ctx, state) on the
 * worker's own context and a log line if it failed, nothing more. With it,
 * job_do gets a private context per worker instead (run_ctx), and one watchdog
 * thread per job cancels it when the run's deadline passes or the worker's
 * context is cancelled. The watchdog sleeps in ppoll on an eventfd (its
 * wake-up) plus the descriptors of the workers' contexts, until the earliest
 * deadline; a run wakes it only when its deadline is earlier than the
 * watchdog's next wake-up or when its worker's context is new to it. A run that
 * timed out gets a fresh run_ctx for the next run. The private context is
 * made with workers_ctx_new_for(), so it carries the worker's id.
 *
 * Lock: wdog->lock guards the list of timed workers and their armed,
 * deadline, fired, outer and run_ctx fields; the watchdog cancels contexts
 * only under it, so a worker may swap or free its run_ctx under it.
 *
 * The plugin is never dlclose'd once loaded with its job_do (only a load
 * error, before any of its functions ran, unloads it): after a close that
 * timed out a removed worker may still run plugin code when the daemon
 * exits, and unmapping the code under it would crash instead of exiting.
 */
#include "jobs.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define WDOG_STACK (64 * 1024)

struct pworker;

struct watchdog {
    pthread_mutex_t lock;
    pthread_t thread;
    int wake; /* eventfd */
    bool stop;
    uint64_t next_wake; /* when the thread wakes by itself; UINT64_MAX never */
    struct pworker *list;
    struct pollfd *pfds; /* the thread's own */
    size_t npfds;
};

struct wd_plugin {
    const wd_config *cfg;
    int (*job_do)(workers_ctx *ctx, void *state);
    int (*job_init)(const char *arg);
    void *(*job_new)(void);
    void (*job_free)(void *state);
    void (*job_fini)(void);
    bool inited; /* job_init ran (or there is none): job_fini is due */
    struct watchdog *wdog; /* only with Timeout */
};

struct pworker {
    wd_plugin *p;
    void *state;
    /* With Timeout only; under wdog->lock except where noted. */
    struct pworker *prev, *next;
    workers_ctx *outer; /* the worker's context, known from its first run */
    int outer_fd;       /* -1 until then */
    bool outer_seen;    /* outer was cancelled and run_ctx with it */
    bool armed, fired;
    uint64_t deadline;
    workers_ctx *run_ctx; /* written by the worker only, under the lock */
};

/* ---- the watchdog ---------------------------------------------------- */

static void
wdog_poke(struct watchdog *wd)
{
    uint64_t one = 1;
    while (write(wd->wake, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Under the lock: cancels what is due, fills pfds, returns the number of
 * pfds and sets *next to the earliest deadline still ahead. */
static size_t
wdog_scan(struct watchdog *wd, uint64_t now, uint64_t *next)
{
    size_t n = 1;
    *next = UINT64_MAX;
    for (struct pworker *w = wd->list; w != NULL; w = w->next) {
        if (!w->outer_seen && w->outer != NULL && workers_ctx_done(w->outer)) {
            w->outer_seen = true;
            if (w->run_ctx != NULL)
                workers_ctx_cancel(w->run_ctx);
        }
        if (w->armed && !w->fired) {
            if (now >= w->deadline) {
                w->fired = true;
                workers_ctx_cancel(w->run_ctx);
            } else if (w->deadline < *next) {
                *next = w->deadline;
            }
        }
        if (w->outer_fd >= 0 && !w->outer_seen) {
            if (n == wd->npfds) {
                struct pollfd *g = realloc(wd->pfds, 2 * n * sizeof *g);
                if (g == NULL)
                    continue; /* polled again after the next wake-up */
                wd->pfds = g;
                wd->npfds = 2 * n;
            }
            wd->pfds[n++] = (struct pollfd){w->outer_fd, POLLIN, 0};
        }
    }
    return n;
}

static void *
wdog_main(void *arg)
{
    struct watchdog *wd = arg;
    pthread_mutex_lock(&wd->lock);
    while (!wd->stop) {
        uint64_t now = wd_now_ns(), next;
        size_t n = wdog_scan(wd, now, &next);
        wd->next_wake = next;
        pthread_mutex_unlock(&wd->lock);
        struct timespec ts, *tsp = NULL;
        if (next != UINT64_MAX) {
            ts = wd_timespec(next - now);
            tsp = &ts;
        }
        /* A worker's descriptor may close (its worker stopped) while we
         * poll: POLLNVAL only wakes us and the next scan drops it. */
        if (ppoll(wd->pfds, n, tsp, NULL) > 0 && wd->pfds[0].revents != 0) {
            uint64_t v;
            while (read(wd->wake, &v, sizeof v) < 0 && errno == EINTR)
                ;
        }
        pthread_mutex_lock(&wd->lock);
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

static void
wdog_free(struct watchdog *wd)
{
    if (wd->wake >= 0)
        close(wd->wake);
    pthread_mutex_destroy(&wd->lock);
    free(wd->pfds);
    free(wd);
}

static int
wdog_start(struct watchdog **out)
{
    struct watchdog *wd = calloc(1, sizeof *wd);
    if (wd == NULL)
        return -ENOMEM;
    wd->wake = -1;
    wd->next_wake = UINT64_MAX;
    int e = pthread_mutex_init(&wd->lock, NULL);
    if (e != 0) {
        free(wd);
        return -e;
    }
    wd->npfds = 8;
    wd->pfds = calloc(wd->npfds, sizeof *wd->pfds);
    wd->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wd->pfds == NULL || wd->wake < 0) {
        e = wd->pfds == NULL ? ENOMEM : errno;
        wdog_free(wd);
        return -e;
    }
    wd->pfds[0] = (struct pollfd){wd->wake, POLLIN, 0};
    if ((e = wd_thread_start(&wd->thread, WDOG_STACK, wdog_main, wd)) != 0) {
        wdog_free(wd);
        return e;
    }
    *out = wd;
    return 0;
}

static void
wdog_stop(struct watchdog *wd)
{
    pthread_mutex_lock(&wd->lock);
    wd->stop = true;
    pthread_mutex_unlock(&wd->lock);
    wdog_poke(wd);
    pthread_join(wd->thread, NULL);
    wdog_free(wd);
}

/* ---- runs ------------------------------------------------------------ */

static void
report(workers_ctx *ctx, int r)
{
    if (r < 0)
        wd_log(WD_LOG_WARNING, "worker %u: job_do returned %d (%s)",
               workers_ctx_worker_id(ctx), r, workers_strerror(r));
    else
        wd_log(WD_LOG_WARNING, "worker %u: job_do returned %d",
               workers_ctx_worker_id(ctx), r);
}

static int
plain_run(workers_ctx *ctx, void *arg)
{
    struct pworker *w = arg;
    int r = w->p->job_do(ctx, w->state);
    if (r != 0 && !workers_is_canceled(r))
        report(ctx, r);
    return r;
}

/* Arms the watchdog for one run of w on ctx. Returns 0 or a negative code. */
static int
arm(struct pworker *w, workers_ctx *ctx)
{
    struct watchdog *wd = w->p->wdog;
    int fd = -1;
    if (w->outer == NULL && (fd = workers_ctx_fd(ctx)) < 0)
        return fd;
    if (w->run_ctx == NULL) {
        workers_ctx *c;
        int r = workers_ctx_new_for(&c, ctx);
        if (r != 0)
            return r;
        pthread_mutex_lock(&wd->lock);
        w->run_ctx = c;
        pthread_mutex_unlock(&wd->lock);
    }
    pthread_mutex_lock(&wd->lock);
    bool poke = false;
    if (w->outer == NULL) {
        w->outer = ctx;
        w->outer_fd = fd;
        poke = true;
    }
    w->deadline = wd_deadline(wd_now_ns(), w->p->cfg->timeout_ns);
    w->armed = true;
    if (w->deadline < wd->next_wake)
        poke = true;
    pthread_mutex_unlock(&wd->lock);
    if (poke)
        wdog_poke(wd);
    return 0;
}

static int
timed_run(workers_ctx *ctx, void *arg)
{
    struct pworker *w = arg;
    struct watchdog *wd = w->p->wdog;
    if (workers_ctx_done(ctx))
        return WORKERS_ECANCELED;
    int r = arm(w, ctx);
    if (r != 0) {
        wd_log(WD_LOG_ERR, "worker %u: cannot time the run: %s",
               workers_ctx_worker_id(ctx), workers_strerror(r));
        return r;
    }
    r = w->p->job_do(w->run_ctx, w->state);
    pthread_mutex_lock(&wd->lock);
    w->armed = false;
    bool fired = w->fired;
    w->fired = false;
    workers_ctx *spent = fired ? w->run_ctx : NULL;
    if (fired)
        w->run_ctx = NULL; /* cancelled for good: the next run makes one */
    pthread_mutex_unlock(&wd->lock);
    if (fired) {
        workers_ctx_free(spent);
        char dur[32];
        wd_log(WD_LOG_WARNING, "worker %u: plugin run timed out after %s",
               workers_ctx_worker_id(ctx),
               wd_duration(w->p->cfg->timeout_ns, dur, sizeof dur));
        return WORKERS_ETIMEDOUT;
    }
    if (r != 0 && !workers_is_canceled(r))
        report(ctx, r);
    return r;
}

static void
pworker_free(void *arg)
{
    struct pworker *w = arg;
    struct watchdog *wd = w->p->wdog;
    if (wd != NULL) {
        pthread_mutex_lock(&wd->lock);
        if (w->prev != NULL)
            w->prev->next = w->next;
        else
            wd->list = w->next;
        if (w->next != NULL)
            w->next->prev = w->prev;
        pthread_mutex_unlock(&wd->lock);
        workers_ctx_free(w->run_ctx);
    }
    if (w->p->job_new != NULL && w->p->job_free != NULL)
        w->p->job_free(w->state);
    free(w);
}

int
wd_plugin_new_job(void *arg, workers_job *out)
{
    wd_plugin *p = arg;
    struct pworker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->p = p;
    w->outer_fd = -1;
    if (p->job_new != NULL && (w->state = p->job_new()) == NULL) {
        wd_log(WD_LOG_ERR, "plugin %s: job_new returned NULL", p->cfg->plugin);
        free(w);
        return -ENOMEM;
    }
    if (p->wdog != NULL) {
        pthread_mutex_lock(&p->wdog->lock);
        w->next = p->wdog->list;
        if (w->next != NULL)
            w->next->prev = w;
        p->wdog->list = w;
        pthread_mutex_unlock(&p->wdog->lock);
    }
    out->fn = p->wdog != NULL ? timed_run : plain_run;
    out->arg = w;
    out->free = pworker_free;
    return 0;
}

/* ---- loading --------------------------------------------------------- */

/* dlsym into a function pointer without an object-to-function cast. */
static void
sym(void *handle, const char *name, void *fnptr, size_t size)
{
    void *s = dlsym(handle, name);
    memcpy(fnptr, &s, size);
}
#define SYM(h, name, fp) sym((h), (name), &(fp), sizeof(fp))

static const char *
dl_error(void)
{
    const char *e = dlerror();
    return e != NULL ? e : "unknown error";
}

int
wd_plugin_open(const wd_config *cfg, bool init, wd_plugin **out, char *err,
               size_t errlen)
{
    const char *where = cfg->path != NULL ? cfg->path : "config";
    /* A bare name would make dlopen search the library path. */
    char path[4096];
    snprintf(path, sizeof path, "%s%s",
             strchr(cfg->plugin, '/') != NULL ? "" : "./", cfg->plugin);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, errlen, "%s: Plugin = %s: cannot load: %s", where,
                 cfg->plugin, dl_error());
        return -1;
    }
    /* Until job_init runs no plugin code but its constructors ran, so an
     * error up to there may still unload it. */
    wd_plugin *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "%s: Plugin = %s: out of memory", where,
                 cfg->plugin);
        dlclose(h);
        return -1;
    }
    p->cfg = cfg;
    dlerror();
    SYM(h, "job_do", p->job_do);
    if (p->job_do == NULL) {
        snprintf(err, errlen, "%s: Plugin = %s: no job_do: %s", where,
                 cfg->plugin, dl_error());
        free(p);
        dlclose(h);
        return -1;
    }
    SYM(h, "job_init", p->job_init);
    SYM(h, "job_new", p->job_new);
    SYM(h, "job_free", p->job_free);
    SYM(h, "job_fini", p->job_fini);
    if (init && p->job_init != NULL) {
        int r = p->job_init(cfg->arg);
        if (r != 0) {
            snprintf(err, errlen, "%s: Plugin = %s: job_init returned %d",
                     where, cfg->plugin, r);
            free(p);
            return -1;
        }
    }
    p->inited = init;
    if (init && cfg->timeout_ns != 0) {
        int r = wdog_start(&p->wdog);
        if (r != 0) {
            snprintf(err, errlen,
                     "%s: Plugin = %s: cannot start the timeout "
                     "watchdog: %s",
                     where, cfg->plugin, strerror(-r));
            if (p->job_fini != NULL)
                p->job_fini();
            free(p);
            return -1;
        }
    }
    *out = p;
    return 0;
}

void
wd_plugin_close(wd_plugin *p)
{
    if (p->inited && p->job_fini != NULL)
        p->job_fini();
    if (p->wdog != NULL)
        wdog_stop(p->wdog);
    free(p);
}
