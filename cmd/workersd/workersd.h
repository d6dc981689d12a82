/*
 * workersd's private declarations, grouped by file.
 *
 * The daemon's model: the main thread runs a libev loop (a non-default loop,
 * so libev never installs its waitpid(-1) SIGCHLD handler) that turns
 * signals into pool calls; libworkers' threads run the job; each worker
 * thread spawns, waits for and reaps its own shell children.
 */
#ifndef WORKERSD_H
#define WORKERSD_H

#include "workers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* sysexits(3) codes workersd uses. */
#define WD_EXIT_OK 0
#define WD_EXIT_JOB 1       /* StopOnErrors: a job error stopped the pool */
#define WD_EXIT_TIMEOUT 2   /* the close deadline passed, or was forced */
#define WD_EXIT_USAGE 64    /* EX_USAGE */
#define WD_EXIT_SOFTWARE 70 /* EX_SOFTWARE: an internal failure */
#define WD_EXIT_CONFIG 78   /* EX_CONFIG */

/* An error message buffer: one line, naming file, line, key and value. */
#define WD_ERRLEN 512

/* ---- log.c ---------------------------------------------------------- */

/* syslog priorities, as sd-daemon's <N> prefixes use them. */
enum {
    WD_LOG_ERR = 3,
    WD_LOG_WARNING = 4,
    WD_LOG_NOTICE = 5,
    WD_LOG_INFO = 6,
    WD_LOG_DEBUG = 7
};

/*
 * verbosity: 0 normal (up to INFO), > 0 adds DEBUG (-v), < 0 only WARNING
 * and worse (-q). Reads JOURNAL_STREAM to decide on <N> prefixes.
 * Call once before threads start.
 */
void wd_log_init(int verbosity);

/* One line to stderr with one write(2); thread-safe. No trailing newline
 * in fmt. */
void wd_log(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- config.c ------------------------------------------------------- */

typedef struct wd_config {
    char *path;                /* as given on the command line */
    workers_config pool;       /* Min, Max, Initial, StopOnErrors, StackSize */
    uint64_t close_timeout_ns; /* CloseTimeout, default 30 s */
    char *command;             /* [job] Command, or NULL */
    char *plugin;              /* [job] Plugin, or NULL */
    char *arg;                 /* [job] Arg, or NULL */
    uint64_t timeout_ns;       /* [job] Timeout, 0 = none */
    uint64_t kill_grace_ns;    /* [job] KillGrace, default 5 s */
    /* [job] ErrorBackoff = MIN..MAX, default 100ms..30s; 0 = off (0..0) */
    struct wd_backoff {
        uint64_t min_ns, max_ns;
    } backoff;
    unsigned retry;   /* [middleware] Retry, 0 = none */
    uint64_t wait_ns; /* [middleware] Wait, 0 = none */
    /* [control], the settings of control/control.h's wd_control_open */
    char *socket;         /* Socket: NULL = the default, "none" = off */
    unsigned socket_mode; /* SocketMode, 0 = the default (0600) */
    gid_t socket_group;   /* SocketGroup, (gid_t)-1 = none */
    /* [metrics]: see metrics/metrics.h */
    struct wd_metrics_cfg {
        char *listen;         /* Listen, NULL = no HTTP server */
        char *file;           /* File, NULL = no file */
        uint64_t interval_ns; /* Interval, default 15 s */
    } metrics;
} wd_config;

/*
 * Parses and validates the ini file at path into *cfg (which it zeroes
 * first). On error returns -1, frees what it took, and writes into err a
 * one-line message naming the file, line, key and value
 * ("pool.ini:3: Max = 1: invalid max: must be 0 (unlimited) or >= min").
 */
int wd_config_load(const char *path, wd_config *cfg, char *err, size_t errlen);
void wd_config_free(wd_config *cfg);

/*
 * "500ms", "30s", "2min", "1h", bare number = seconds. Returns 0 and the
 * value in nanoseconds, or -1 for a malformed or overflowing value.
 */
int wd_parse_duration(const char *s, uint64_t *ns);

/* ---- trust.c: the files workersd takes orders and code from ------------ */

struct stat;

/*
 * The config file at path, open with *st its fstat: 0, or -1 with why in
 * err ("mode 0666: writable by others than its owner: chmod go-w"). A
 * regular file, and every folder above it (sticky ones excepted), must be
 * owned by root or the effective uid and writable by no one else; a pipe or
 * device (-c /dev/stdin) passes.
 */
int wd_trust_config(const char *path, const struct stat *st, char *err,
                    size_t errlen);

/*
 * The plugin at path: the same rule, and a regular file (never opened
 * otherwise, so a FIFO cannot block), ELF, of workersd's own class, byte
 * order and machine ("wrong architecture (aarch64, expected x86_64)").
 * 0, or -1 with why in err ("No such file or directory", ...).
 */
int wd_trust_plugin(const char *path, char *err, size_t errlen);

/* ---- jobs/ : the job kinds (command.c, plugin.c, job.c) ------------- */

/* A loaded job: a shell command or a plugin. Opaque. */
typedef struct wd_job wd_job;

/*
 * Loads the job cfg names. For a plugin: dlopen(RTLD_NOW), job_do and the
 * optional symbols, and, when init is true, job_init(Arg) (false for -t).
 * On error returns -1 with a one-line message in err (dlerror()'s text for
 * load errors). cfg must outlive the job.
 */
int wd_job_open(const wd_config *cfg, bool init, wd_job **out, char *err,
                size_t errlen);

/*
 * The pool's job builder: one job state per worker (its worker id, its
 * running child, the plugin's job_new state). The builder borrows job; its
 * free is NULL. Fails with -ENOMEM (also when a plugin's job_new returns
 * NULL, logged).
 *
 * What one run returns (every failure is logged with the worker id):
 * - 0: the shell exited 0 / job_do returned 0;
 * - 1..255: the shell's exit status ("command exited with status 2");
 * - 128 + N: the shell was killed by signal N, not because of a cancel
 *   ("command killed by signal 9");
 * - WORKERS_ETIMEDOUT: Timeout passed ("command timed out after 2s",
 *   "plugin run timed out after 2s"), whatever the shell or job_do did then;
 * - WORKERS_ECANCELED: the worker's context was cancelled (less, close)
 *   before the run started, or by the time the shell ended without exit 0
 *   (it got SIGTERM, maybe SIGKILL from wd_job_kill_all): not an error;
 * - a negated errno: the shell could not be spawned or watched;
 * - for plugins, anything else job_do returns, as it is.
 */
workers_builder wd_job_builder(wd_job *job);

/*
 * Sends sig to the process group of every shell child still running, e.g.
 * SIGKILL when the close deadline passed. A no-op for plugins. Thread-safe.
 */
void wd_job_kill_all(wd_job *job, int sig);

/*
 * orphans.c: processes of a Command that left its process group (setsid)
 * and outlived the shell. wd_orphans_adopt() makes workersd a child
 * subreaper (prctl), so they are reparented to its main thread instead of
 * init; then the main thread must call wd_orphans_reap() on every SIGCHLD
 * (an ev_signal, never ev_child) or they stay zombies, and
 * wd_orphans_kill() once the pool is freed, or before an exit that leaves
 * runs behind (SIGKILL + reap, 2 s at most; returns how many it killed).
 * Reaping uses __WNOTHREAD, so it never takes a worker's child: call all three
 * from the main thread only, and never spawn from it. Errors: a negated errno
 * (adopt: prctl; kill: /proc unreadable).
 */
int wd_orphans_adopt(void);
void wd_orphans_reap(void);
int wd_orphans_kill(void);

/* Calls job_fini and frees the job. Only after the pool was freed (no
 * worker runs plugin code any more); the plugin is never dlclose'd. */
void wd_job_close(wd_job *job);

/* ---- backoff.c: ErrorBackoff ------------------------------------------- */

/*
 * The middleware behind ErrorBackoff: after a failed run (a result other
 * than 0 and WORKERS_ECANCELED) the worker pauses before its next run, so a
 * job that always fails does not spin. The pause starts at cfg->backoff.min_ns,
 * doubles with each consecutive failure up to max_ns, and is drawn from the
 * upper half of that span (jitter, so failing workers spread out); a success
 * resets it. The pause is a workers_ctx_wait(), so less or close end it at
 * once. The failed run's result is returned at once: the pause comes before
 * the next run, never delaying StopOnErrors. cfg must outlive the pool.
 */
workers_middleware wd_backoff(const wd_config *cfg);

/* ---- sys.c: small system helpers -------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t wd_now_ns(void);
/* now + timeout_ns, saturating at UINT64_MAX (a Timeout of centuries must
 * not wrap into the past). */
uint64_t wd_deadline(uint64_t now, uint64_t timeout_ns);
/* A relative timespec for ns nanoseconds. */
struct timespec wd_timespec(uint64_t ns);
/* A duration for log lines in the largest unit that shows it exactly
 * ("2s", "1500ms", "250us", "999ns"), as the ini file would write it, in
 * buf; returns buf. */
const char *wd_duration(uint64_t ns, char *buf, size_t len);
/* Starts fn(arg) on a thread with the given stack size and every signal
 * blocked. 0 or a negated pthread error. */
int wd_thread_start(pthread_t *thread, size_t stack, void *(*fn)(void *),
                    void *arg);

/* ---- notify.c: systemd's notify protocol ------------------------------ */

/* Opens $NOTIFY_SOCKET if set (abstract "@..." names too). 0 when unset or
 * opened; -1 with a message in err when set but unusable (too long, a
 * vsock: address, ...): the caller warns and runs on, unnotified. Floors
 * WATCHDOG_USEC at 100ms, with a warning. */
int wd_notify_init(char *err, size_t errlen);
/* Sends one datagram ("READY=1\nSTATUS=..."); a no-op when not under
 * systemd. Loop thread only. */
void wd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* WATCHDOG_USEC for this pid, in microseconds (100ms at least), or 0 when
 * not asked or not notifying. */
uint64_t wd_notify_watchdog_usec(void);
void wd_notify_close(void);

/* ---- daemon.c: the event loop ---------------------------------------- */

/* Runs the pool with job until a signal or StopOnErrors ends it; returns
 * the process exit code (WD_EXIT_*). */
int wd_daemon_run(const wd_config *cfg, wd_job *job);

#endif /* WORKERSD_H */
