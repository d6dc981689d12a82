/*
 * metrics/: what the statistics (stats/) look like from outside, grouped
 * by file: the Prometheus text (prom.c), the status JSON (json.c),
 * systemd's STATUS line (status.c), and the serving of the text over HTTP
 * (http.c, listen.c) and into a file (file.c), tied together by a
 * wd_metrics object (metrics.c).
 *
 * Threads: the renderers are pure functions of a snapshot and the daemon's
 * facts, callable from any thread. A wd_metrics belongs to the loop
 * thread: its HTTP server and file timer are libev watchers on the daemon's
 * loop (no thread of their own), and it asks the daemon for the facts on
 * that thread, so the facts need no lock.
 */
#ifndef WD_METRICS_H
#define WD_METRICS_H

#include "stats/stats.h"

#include <jansson.h>
#include <stdarg.h>
#include <sys/socket.h>

/* What the daemon knows that the stats do not. */
typedef struct wd_facts {
    long pid;
    const char *version; /* workersd's version */
    const char *config;  /* the ini file's path as given: any bytes */
    double start_unix;   /* when the daemon started, in Unix seconds */
    uint64_t start_ns;   /* the same instant as wd_now_ns() */
    int workers;         /* workers_pool_current() */
    int min, max;        /* [pool] Min and Max; max 0 = unlimited */
    bool paused;
    uint64_t reloads; /* successful reloads since the start */
    bool closing;
    uint64_t deadline_ns; /* when closing: the close deadline as wd_now_ns(),
                             0 = none */
    /* [autoscale], as wd_autoscaler_facts() (daemon/daemon.h) fills it;
     * all zero when not configured. */
    struct wd_autoscale_facts {
        bool configured;    /* an [autoscale] key was given: rendered */
        bool on;            /* ticking: Enable, or `workersctl autoscale on` */
        double target;      /* Target */
        double utilisation; /* of the last tick's span, 0 before one */
        char decision[128]; /* the last change's text ("4 -> 7 workers
                               (utilisation 0.97 over 10s, target 0.80)"),
                               "" before one */
    } autoscale;
} wd_facts;

/* ---- buf.c: a growable text buffer -------------------------------------- */

/* Zero-initialise. data is NUL-terminated once anything was written. */
typedef struct wd_buf {
    char *data;
    size_t len, cap;
    bool failed; /* an allocation failed: the text is incomplete */
} wd_buf;

/* Appends; on -ENOMEM sets failed and appends nothing more. */
void wd_buf_printf(wd_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void wd_buf_append(wd_buf *b, const char *text, size_t len);
/* Empties the text (and clears failed), keeping the memory. */
void wd_buf_reset(wd_buf *b);
void wd_buf_free(wd_buf *b);

/* ---- prom.c: the Prometheus text exposition (format 0.0.4) -------------- */

#define WD_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Appends the metrics README.md lists ("Metrics") to out: workersd_ gauges,
 * counters and the run-duration histogram, with HELP and TYPE lines and no
 * instance label. Returns 0 or -ENOMEM.
 */
int wd_prom_render(const wd_stats_snapshot *s, const wd_facts *f, wd_buf *out);

/* ---- json.c: the status object ------------------------------------------ */

/*
 * Appends the status object README.md documents ("Status as JSON") to out
 * as one line of JSON text (no newline). Returns 0 or -ENOMEM.
 */
int wd_status_json(const wd_stats_snapshot *s, const wd_facts *f, wd_buf *out);

/* A JSON string from any C string: bytes that are not valid UTF-8 become
 * U+FFFD each (jansson refuses them). New reference; NULL on -ENOMEM. */
json_t *wd_json_text(const char *s);

/* ---- status.c: systemd's STATUS= ----------------------------------------- */

/*
 * The line `systemctl status` shows, into buf (WD_STATUS_LINE_MAX bytes
 * hold any):
 *   "4 workers (3 busy), 1,234 runs, 3 failed; last error 2s ago: exit 1"
 *   "paused: 4 workers (0 busy), ..."
 *   "7 workers (6 busy, autoscaled), 5,678 runs, 0 failed; autoscale: 4 ->
 *    7 workers (utilisation 0.97 over 10s, target 0.80)"
 *   "closing: 3 runs left, deadline in 12s"
 * "failed" counts the runs that failed or timed out. Returns buf.
 */
#define WD_STATUS_LINE_MAX 384
_Static_assert(WD_STATUS_LINE_MAX + sizeof "READY=1\nSTATUS=" <= WD_NOTIFY_MAX,
               "a STATUS= line and READY=1 fit one notification");
const char *wd_status_line(const wd_stats_snapshot *s, const wd_facts *f,
                           char *buf, size_t len);

/* ---- listen.c: [metrics] Listen ------------------------------------------ */

/*
 * "127.0.0.1:9717", "[::1]:9717", "localhost:9717", or a bare port (which
 * means 127.0.0.1); port 0 picks a free one. Host names other than
 * localhost are refused: nothing is resolved. 0 and the address, or -1
 * and why in *why (a static string). Thread-safe.
 */
int wd_listen_parse(const char *text, struct sockaddr_storage *addr,
                    socklen_t *addrlen, const char **why);

/* A listening TCP socket (close-on-exec, non-blocking) on text's address:
 * the descriptor, or a negative errno with a message in err naming the
 * address and the cause: -EINVAL for a text that does not parse, socket()'s
 * error (-EMFILE, -ENOMEM, ...) or bind()'s and listen()'s (-EADDRINUSE,
 * -EADDRNOTAVAIL, -EACCES, ...). */
int wd_listen_open(const char *text, char *err, size_t errlen);

/* ---- metrics.c, http.c, file.c: serving ---------------------------------- */

struct ev_loop;

/* Fills *out with the daemon's facts now. Called on the loop thread. */
typedef void (*wd_facts_fn)(void *arg, wd_facts *out);

typedef struct wd_metrics wd_metrics;

/*
 * Serves the metrics as cfg says on loop (not started: the caller runs it):
 * - cfg->listen set: an HTTP server (libmicrohttpd, driven by the loop)
 *   answering GET and HEAD /metrics with the text, any other path 404,
 *   another method 405, a malformed request 400;
 * - cfg->file set: writes the text there atomically (temp file + rename)
 *   now, every cfg->interval_ns, and once more at wd_metrics_free().
 * Neither set is fine: then it only renders (wd_metrics_text, ...).
 * st, facts and arg are borrowed and must outlive it. On error returns a
 * negative errno with a one-line message in err naming the address or file
 * and the cause, which the daemon classifies as it does a job's
 * (wd_job_error): a Listen address that cannot be bound ("[metrics] Listen
 * = 127.0.0.1:9717: cannot listen: Address already in use", -EADDRINUSE)
 * exits 78 (WD_EXIT_CONFIG); no memory or descriptor ("...: socket: Too
 * many open files", -EMFILE) exits 70 (WD_EXIT_SOFTWARE), as a restart may
 * cure it. Loop thread only, as every function below.
 */
int wd_metrics_new(wd_metrics **out, struct ev_loop *loop,
                   const struct wd_metrics_cfg *cfg, wd_stats *st,
                   wd_facts_fn facts, void *arg, char *err, size_t errlen);

/* The TCP port the server listens on, 0 when there is none. */
unsigned wd_metrics_port(const wd_metrics *m);

/* The Prometheus text now (`workersctl metrics`): valid until the next call
 * on m; *len gets its length. NULL when out of memory. */
const char *wd_metrics_text(wd_metrics *m, size_t *len);

/* The status object now (`workersctl status`), one line of JSON text,
 * valid until the next call on m; *len gets its length. NULL when out of
 * memory. A caller that wants a jansson tree parses it (json_loadb). */
const char *wd_metrics_status(wd_metrics *m, size_t *len);

/* The STATUS= line now, into buf; returns buf ("" when out of memory). */
const char *wd_metrics_status_line(wd_metrics *m, char *buf, size_t len);

/* Stops serving: writes the file one last time, stops the watchers,
 * closes the socket. Call it once the pool is freed (the file then has the
 * final counts) and before the loop is destroyed. NULL is a no-op. */
void wd_metrics_free(wd_metrics *m);

/* The HTTP connections served at once (MHD_OPTION_CONNECTION_LIMIT): a
 * few scrapers need a few, and the bound is what nofile.c counts for them.
 * A connection beyond it waits in the listen backlog until one closes
 * (http.c drops the idle ones). */
#define WD_HTTP_CONNS 16

/* http.c and file.c, for metrics.c: start and stop one way of serving.
 * Both keep a pointer to m and call wd_metrics_text(). Start returns 0 or
 * a negative errno, as wd_metrics_new(). */
typedef struct wd_http wd_http;
int wd_http_start(wd_http **out, struct ev_loop *loop, const char *listen,
                  wd_metrics *m, char *err, size_t errlen);
unsigned wd_http_port(const wd_http *h);
void wd_http_stop(wd_http *h);

typedef struct wd_textfile wd_textfile;
int wd_textfile_start(wd_textfile **out, struct ev_loop *loop, const char *path,
                      uint64_t interval_ns, wd_metrics *m, char *err,
                      size_t errlen);
void wd_textfile_stop(wd_textfile *t);

#endif /* WD_METRICS_H */
