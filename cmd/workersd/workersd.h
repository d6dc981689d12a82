/*
 * workersd's private declarations, grouped by room and file.
 *
 * The daemon's model: the main thread runs a libev loop (a non-default loop,
 * so libev never installs its waitpid(-1) SIGCHLD handler) that turns
 * signals into pool calls (daemon/). What runs is a generation: an immutable
 * config snapshot, the job it names (jobs/) and the middlewares it asks for.
 * libworkers' threads are the workers; each follows the current generation,
 * builds its own job state on its own thread, spawns, waits for and reaps
 * its own shell children. Plugin code never runs on the loop thread.
 *
 * Rooms: the root files are the daemon's parts that know no generation
 * (command line, config, log, notify, system helpers, ErrorBackoff);
 * jobs/ holds the job kinds; daemon/ the loop, generations, the pool that
 * follows them, and the drain.
 */
#ifndef WORKERSD_H
#define WORKERSD_H

#include "workers.h"

#include <pthread.h>
#include <signal.h>
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

/* An error message buffer: one line, naming file, line, key and value.
 * Room for a few long paths (a Plugin's line names the ini, the plugin
 * and a folder twice); the log line that carries it is as long (log.c). */
#define WD_ERRLEN 3072

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

/* A line that may repeat fast: one a second at most passes. Zero-init. */
#define WD_LOG_LIMIT_NS 1000000000u
struct wd_log_limit {
    bool passed;      /* a line passed already */
    uint64_t last_ns; /* when (CLOCK_MONOTONIC) */
    unsigned dropped; /* lines dropped since */
};
/* As wd_log, through l: a line within WD_LOG_LIMIT_NS of the last one that
 * passed is dropped and counted; the next one that passes ends with
 * " (N more)". The caller owns l; not thread-safe: one thread per l (the
 * loop's limiters are the loop thread's). */
void wd_log_limited(struct wd_log_limit *l, int prio, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- config.c ------------------------------------------------------- */

typedef struct wd_config {
    char *path; /* as given on the command line */
    /* Min, Max, Initial, StopOnErrors, StackSize; [job] IdleWait (default
     * 1 s, 0 = none) as idle_wait_ns */
    workers_config pool;
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
    /* [job] IdleExitCode: a Command exiting with it found no work (the run
     * returns WORKERS_EIDLE); default 75 (EX_TEMPFAIL), 0 = none. */
    int idle_exit_code;
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
    /* [autoscale]: see daemon/daemon.h's wd_autoscaler_* */
    struct wd_autoscale_cfg {
        bool configured; /* any key given: the middleware is in the chain */
        bool enable;     /* Enable, default false */
        /* Target (0.8), Window (10 s), Cooldown (30 s), all set */
        workers_autoscale_policy policy;
    } autoscale;
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

/* ---- snapshot.c: shared, immutable configs --------------------------- */

/*
 * Moves *cfg (as wd_config_load() filled it) into a new snapshot with one
 * reference, and zeroes *cfg. NULL when out of memory (*cfg is then
 * untouched). A snapshot is never written again; ref and unref are
 * thread-safe, and the last unref frees it (wd_config_free). unref(NULL) is a
 * no-op.
 */
const wd_config *wd_config_share(wd_config *cfg);
const wd_config *wd_config_ref(const wd_config *cfg);
void wd_config_unref(const wd_config *cfg);

/* ---- jobs/: the job kinds (job.c, command.c, plugin.c, loader.c) ------ */

/* A loaded job: a shell command or a plugin. Opaque. */
typedef struct wd_job wd_job;

/*
 * Loads the job cfg names (cfg is borrowed: it must outlive the job). With
 * init false (workersd -t) it only checks: a plugin is loaded and its
 * symbols looked up, but job_init is not called and no thread starts; such
 * a job may only be closed. With init true it is ready to run: a plugin's
 * job_init(Arg) ran, and the job's deadline thread (cancels, Timeout,
 * KillGrace: every command job, a plugin job with Timeout) runs. A plugin is
 * loaded from a private copy of its file, so a rebuilt plugin at the same path
 * loads anew, and never unloaded (RTLD_NODELETE). May run plugin code for any
 * time: the daemon calls it off its loop thread (generation.c). On error
 * returns WD_JOB_ECONFIG (the config or the plugin is at fault: exit 78) or
 * WD_JOB_ENORES (memory, a thread or a descriptor could not be had: exit
 * 70), with a one-line message in err (dlerror()'s text for load errors);
 * wd_job_exit_code() maps them. Thread-safe.
 */
enum { WD_JOB_ECONFIG = -1, WD_JOB_ENORES = -2 };
int wd_job_open(const wd_config *cfg, bool init, wd_job **out, char *err,
                size_t errlen);
/* The exit code for wd_job_open()'s error rc: 70 for WD_JOB_ENORES, else
 * 78. */
int wd_job_exit_code(int rc);
/* WD_JOB_ENORES for an errno (negated or not) that says a resource ran
 * out (ENOMEM, EAGAIN, EMFILE, ENFILE, ENOBUFS), else WD_JOB_ECONFIG. The
 * daemon's one classification of a start failure: jobs, [metrics] and
 * the control socket. */
int wd_job_error(int e);
/* The exit code for a start failure's errno: 70 or 78, as wd_job_error
 * classifies it. */
int wd_exit_code_of(int e);

/*
 * A workers_builder function (arg is the wd_job): one worker's job state
 * (its worker id, its running child, the plugin's job_new state) in *out,
 * which the worker runs and frees. Cheap and runs no plugin code: a
 * plugin's job_new is called by the job itself at the worker's first run,
 * on that worker's thread, and job_free by the job's free, on the thread
 * that frees it. Only for a job opened with init. Errors: -ENOMEM.
 *
 * What one run returns (every failure is logged with the worker id):
 * - 0: the shell exited 0 / job_do returned 0;
 * - 1..255: the shell's exit status ("command exited with status 2");
 * - 128 + N: the shell was killed by signal N, not because of a cancel
 *   ("command killed by signal 9");
 * - WORKERS_ETIMEDOUT: Timeout passed ("command timed out after 2s",
 *   "plugin run timed out after 2s"), whatever the shell or job_do did then;
 *   a command got SIGTERM and SIGCONT, and SIGKILL after KillGrace;
 * - WORKERS_EIDLE: the shell exited with IdleExitCode / job_do returned
 *   it: the run found no work. Not a failure: no log line;
 * - WORKERS_ECANCELED: the worker's context was cancelled (less, close)
 *   before the run started, or by the time the shell ended without exit 0:
 *   not an error. A command's group got SIGTERM and SIGCONT at the cancel,
 *   and SIGKILL after KillGrace if it was still there ("command ignored
 *   SIGTERM: killed after KillGrace (5s)");
 * - -ENOMEM when a plugin's job_new returned NULL ("job_new returned NULL"):
 *   the next run of that worker calls it again;
 * - a negated errno: the shell could not be spawned or watched;
 * - for plugins, anything else job_do returns, as it is.
 */
int wd_job_new(void *job, workers_job *out);

/*
 * Sends sig to the process group of every command run in progress (one
 * being spawned gets it as soon as it exists), e.g. SIGKILL when the close
 * deadline passed. A no-op for plugins. Thread-safe; only for a job opened
 * with init.
 */
void wd_job_kill(wd_job *job, int sig);

/* Frees the job: stops its deadline thread, calls a plugin's job_fini.
 * Only once no worker's job state of it is left (every one was freed);
 * may run plugin code for any time. NULL is a no-op. */
void wd_job_close(wd_job *job);

/*
 * orphans.c: processes of a Command that left its process group (setsid)
 * and outlived the shell. wd_orphans_adopt() makes workersd a child
 * subreaper (prctl), so they are reparented to its main thread instead of
 * init; then the main thread must call wd_orphans_reap() on every SIGCHLD
 * (an ev_signal, never ev_child) or they stay zombies, and
 * wd_orphans_kill() once the pool is freed, or before an exit that leaves
 * runs behind (SIGKILL + reap, 2 s at most; returns how many escaped
 * processes it killed: alive and not dying when it met them, and ended by
 * its SIGKILL; a run's own process that its group's signal was already
 * ending is reaped but not counted). Reaping uses __WNOTHREAD, so it
 * never takes a worker's child, nor a plugin's (job_init's children belong
 * to its generation's thread until job_fini returned): call all three from
 * the main thread only, and never spawn from it. Errors: a negated errno
 * (adopt: prctl; kill: /proc unreadable).
 */
int wd_orphans_adopt(void);
void wd_orphans_reap(void);
int wd_orphans_kill(void);

/* ---- backoff.c: ErrorBackoff ------------------------------------------- */

/*
 * The middleware behind ErrorBackoff: after a failed run (a result other
 * than 0 and WORKERS_ECANCELED) the worker pauses before its next run, so a
 * job that always fails does not spin. The pause starts at cfg->backoff.min_ns,
 * doubles with each consecutive failure up to max_ns, and is drawn from the
 * upper half of that span (jitter, so failing workers spread out); a success
 * resets it. The pause is a workers_ctx_wait(), so less or close end it at
 * once. The failed run's result is returned at once: the pause comes before
 * the next run, never delaying StopOnErrors. cfg must outlive every job it
 * wrapped.
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
/* A result for log lines: "code 3", or an error's message and name
 * ("cannot allocate memory (ENOMEM)"), in buf; returns buf. */
const char *wd_describe(int rc, char *buf, size_t len);
/* Starts fn(arg) on a joinable thread with every signal blocked and the
 * given stack size (0: the system's default, for threads that run plugin
 * code). 0 or a negated pthread error. */
int wd_thread_start(pthread_t *thread, size_t stack, void *(*fn)(void *),
                    void *arg);

/* ---- nofile.c: the descriptor limit ------------------------------------ */

/*
 * Checks that RLIMIT_NOFILE holds what cfg's daemon and its workers need
 * (see nofile.c), raising the soft limit toward Max's need when the hard
 * one allows. 0 (a warning is logged when it holds Initial workers but
 * not Max), or -1 with the one-line reason in err: the start must not go
 * on (exit 70). Main thread, before any thread starts.
 */
int wd_nofile_check(const wd_config *cfg, char *err, size_t errlen);
/* A reload's Max: the start's warning when the limit cannot hold max
 * workers (no raise: see nofile.c). The daemon's own part stays the
 * start's ([control] and [metrics] change with a restart only). Loop
 * thread, after wd_nofile_check(). */
void wd_nofile_recheck(unsigned max);
/* The soft limit workersd was started with when wd_nofile_check() raised
 * it, else 0: the jobs must see it (command.c restores it for each run).
 * Thread-safe once set. */
unsigned long long wd_nofile_original(void);

/* ---- notify.c: systemd's notify protocol ------------------------------ */

/* Opens $NOTIFY_SOCKET if set (abstract "@..." names too). 0 when unset or
 * opened; -1 with a message in err when set but unusable (too long, a
 * vsock: address, ...): the caller warns and runs on, unnotified. Floors
 * WATCHDOG_USEC at 100ms, with a warning. */
int wd_notify_init(char *err, size_t errlen);
/* Sends one datagram ("READY=1\nSTATUS=..."), of at most WD_NOTIFY_MAX
 * bytes (a longer one is not sent); a no-op when not under systemd. Loop
 * thread only. */
#define WD_NOTIFY_MAX 512 /* a STATUS= line (384) and the fields beside it */
void wd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* WATCHDOG_USEC for this pid, in microseconds (100ms at least), or 0 when
 * not asked or not notifying. */
uint64_t wd_notify_watchdog_usec(void);
/* Whether systemd runs us (NOTIFY_SOCKET or INVOCATION_ID was set at
 * wd_notify_init); if so, our unit's name in buf (from our cgroup,
 * "workersd" when it names none). For the log's advice on signals. */
bool wd_notify_unit(char *buf, size_t len);
void wd_notify_close(void);

/* ---- daemon/generation.c: a generation ---------------------------------- */

/*
 * A generation: a config snapshot, the job it names and the middlewares it
 * asks for (Wait, Retry, the autoscaler's, ErrorBackoff), opened and closed on
 * a thread of its own, so that plugin code (dlopen, job_init, job_fini) never
 * runs on the loop. More than one may be alive at once: a reload opens a new
 * one while workers still finish runs of the old.
 *
 * Two kinds of hold, on purpose apart:
 * - references (wd_gen_ref/unref) keep its job open: one per worker that
 *   runs it, one for the pool while it is current, one for whoever opened
 *   it until they drop it. The last unref, from any thread, only wakes the
 *   generation's thread, which then closes the job (job_fini), frees its
 *   config reference and reports CLOSED;
 * - the handle belongs to whoever called wd_gen_open: it stays valid after
 *   the last unref, for wd_gen_state(), until wd_gen_free() once CLOSED.
 *
 * The thread owns a plugin's children from job_init: processes job_init
 * starts are that thread's children, not the main thread's, so the orphan
 * sweep never takes them, and job_fini (same thread) may reap them.
 */
typedef struct wd_gen wd_gen;

enum wd_gen_state {
    WD_GEN_OPENING, /* its thread opens the job (dlopen, job_init) */
    WD_GEN_OPEN,    /* ready: workers may run it */
    WD_GEN_FAILED,  /* the open failed: wd_gen_error() says why */
    WD_GEN_CLOSED,  /* no reference left and the job closed: free it */
};

/* What a generation borrows from the daemon for its middlewares: objects
 * that must outlive every job of the generation, one each for the daemon's
 * life (so that counts and measurements go on across reloads). NULL
 * fields: none. */
typedef struct wd_stats wd_stats;
typedef struct wd_gen_shared {
    /* stats/stats.h: counts the runs; its middleware is the innermost. */
    wd_stats *stats;
    /* Its middleware goes into the chain when cfg has [autoscale]. */
    workers_autoscale *autoscale;
} wd_gen_shared;

/*
 * Opens a generation for the snapshot cfg (it takes a reference of its own)
 * and shared (copied; may be NULL) on a new thread, and returns at once with
 * the state OPENING and one reference, the caller's. notify(arg), if not NULL,
 * is called from that thread when the open ended (OPEN or FAILED) and again
 * when CLOSED; it must be quick and must not call into the generation
 * (ev_async_send is the daemon's). Generations are numbered 1, 2, ... in the
 * order they are opened. Errors: -ENOMEM, a negated pthread error (then nothing
 * was started and notify is never called). Thread-safe.
 */
int wd_gen_open(const wd_config *cfg, const wd_gen_shared *shared,
                void (*notify)(void *arg), void *arg, wd_gen **out);
/* The state now (an acquire load: a thread that sees OPEN sees the job).
 * Thread-safe, on a handle not freed. */
enum wd_gen_state wd_gen_state(const wd_gen *g);
/* FAILED: the one-line reason ("pool.ini: Plugin = x.so: job_init returned
 * 7"), for the log. */
const char *wd_gen_error(const wd_gen *g);
/* FAILED: the exit code it calls for: 70 when a resource (memory, a thread,
 * a descriptor) was missing, 78 when the config or the plugin is at fault. */
int wd_gen_exit_code(const wd_gen *g);
/* Its config and number, while a reference is held. */
const wd_config *wd_gen_config(const wd_gen *g);
unsigned wd_gen_id(const wd_gen *g);
/* Thread-safe. ref returns g. unref of the last reference wakes its thread
 * to close the job: never plugin code on the caller's thread. */
wd_gen *wd_gen_ref(wd_gen *g);
void wd_gen_unref(wd_gen *g);
/*
 * One worker's job: the job kind's per-worker state (wd_job_new) wrapped in
 * the generation's middlewares. Called on the worker's own thread, with a
 * reference held, on an OPEN generation. The job must be freed before that
 * reference is dropped (job_free before job_fini). Errors: -ENOMEM.
 */
int wd_gen_new_job(wd_gen *g, workers_job *out);
/* wd_job_kill() on its job while it may have runs; a no-op once its last
 * reference is gone. Thread-safe. */
void wd_gen_kill(wd_gen *g, int sig);
/* Joins its thread and frees the handle; only once CLOSED. */
void wd_gen_free(wd_gen *g);

/* ---- daemon/pool.c: the pool that follows the generations -------------- */

/*
 * workersd's pool: a libworkers pool whose every worker runs the job of the
 * current generation. Each worker's pool job is a small switch: at the start
 * of each run it compares the current generation with the one it runs (one
 * atomic load, no lock, no allocation). When they differ, on its own
 * thread, it frees its state of the old generation (the old kind's free, a
 * plugin's job_free), drops its reference to the old, takes one to the
 * current and builds its state there (wd_gen_new_job), then runs. The old
 * generation's last worker to leave releases it (wd_gen_unref: job_fini on
 * its own thread, config freed). The pool's builder, called by more() on
 * the loop, only allocates that switch.
 */
typedef struct wd_pool wd_pool;

/*
 * Makes the pool for cfg ([pool]: Min, Max, Initial, StopOnErrors,
 * StackSize; copied), not started, with no generation. With StopOnErrors,
 * failed(arg) (if not NULL) is called once, on a worker's thread, after the
 * first job error; wd_pool_job_error() returns it. Errors: the
 * workers_pool_new_with_config() codes. Loop thread.
 */
int wd_pool_new(wd_pool **out, const workers_config *cfg,
                void (*failed)(void *arg), void *arg);

/*
 * THE RELOAD CORE. Makes g the generation every run follows from now on; g
 * must be OPEN, and the caller keeps its own reference (the pool takes one).
 * Returns at once, having run no job code. From then on:
 * - a run in progress finishes with the job it started with, and so does a
 *   run whose check came just before the install (one at most per worker);
 * - each worker, at the start of its next run, frees its state of its old
 *   generation and builds one of g on its own thread (job_free, then
 *   job_new at that run), then runs g's job; every later run is g's (or a
 *   later install's): an older generation's job is never started again;
 * - a worker that cannot build its state (no memory) fails that run, after
 *   a 1 s pause, and tries again at its next;
 * - the previous generation is released when its last worker left it, at
 *   once if none runs it: its job is closed on its own thread (job_fini),
 *   its config freed, and its notify reports CLOSED, after which its handle
 *   may be freed;
 * - g's IdleWait is the pool's idle wait from now on, and the workers
 *   resting in the old one are let go at once (workers_pool_set_idle_wait),
 *   so they move to g without waiting it out;
 * - the pool's own settings ([pool]: limits, StopOnErrors, StackSize) stay
 *   as they were made: changing them is the caller's business.
 * The first install precedes wd_pool_start(). Loop thread (one caller at a
 * time); never from a job.
 */
void wd_pool_install(wd_pool *p, wd_gen *g);

/* Starts the workers (Initial of them) on the installed generation.
 * Errors: -EINVAL before the first install,
 * workers_pool_start_with_builder()'s. Loop thread. */
int wd_pool_start(wd_pool *p);
/* The libworkers pool, for more, less, current and close, which take it as
 * it is. Valid until wd_pool_free(). */
workers_pool *wd_pool_workers(wd_pool *p);
/* The first job error the pool stopped for (StopOnErrors), 0 if none.
 * Thread-safe. */
int wd_pool_job_error(wd_pool *p);
/* StopOnErrors from now on (a reload); the first job error after it is
 * turned on calls failed(). Thread-safe. */
void wd_pool_set_stop_on_errors(wd_pool *p, bool on);
/* Frees the libworkers pool (closing it without a deadline if it was not
 * closed, joining every worker), then releases the current generation.
 * Blocks until every run returned: call it off the loop (drain.c). */
void wd_pool_free(wd_pool *p);

/* ---- daemon/loop.c: the daemon ------------------------------------------ */

/*
 * Runs the daemon on the snapshot cfg (it takes over the caller's
 * reference): opens the first generation (a plugin's job_init runs on its
 * thread while the loop already answers signals), starts the pool on it,
 * and runs until a signal or StopOnErrors ends it; returns the process exit
 * code (WD_EXIT_*; WD_EXIT_CONFIG when the job would not open or init,
 * WD_EXIT_SOFTWARE when a resource it needs could not be had).
 * Main thread only.
 */
int wd_daemon_run(const wd_config *cfg);

/* pthread_sigmask(how) of the signals the loop handles (USR1, USR2, INT,
 * TERM, QUIT, HUP, CHLD); the mask before in *old when not NULL. main()
 * blocks them first thing, the loop unblocks them in its own thread. */
void wd_daemon_signals(int how, sigset_t *old);

#endif /* WORKERSD_H */
