/*
 * Private to cmd/workersd/jobs/: the job-kind interface behind wd_job, and
 * the deadline thread both kinds time their runs with, grouped by file.
 *
 * A kind is an ops table (struct wd_kind); job.c picks one from the config
 * and only dispatches. Each kind keeps one state per worker, built by its
 * new_job on the worker's own thread and freed by that thread.
 */
#ifndef WD_JOBS_H
#define WD_JOBS_H

#include "workersd.h"

/* ---- job.c: the interface every kind implements ----------------------- */

struct wd_kind {
    const char *name; /* "command", "plugin" */
    /*
     * Prepares the kind's object for cfg (borrowed: it outlives the
     * object). init false (workersd -t) only checks: no thread, no
     * job_init, and new_job must not be called. May run plugin code
     * (job_init), so the daemon calls it off its loop thread. On error
     * returns WD_JOB_ECONFIG or WD_JOB_ENORES (see wd_job_open) with a
     * one-line message in err.
     */
    int (*open)(const wd_config *cfg, bool init, void **obj, char *err,
                size_t errlen);
    /* One worker's job (see wd_job_new). */
    int (*new_job)(void *obj, workers_job *out);
    /* Signals every run in progress (see wd_job_kill). Thread-safe. */
    void (*kill)(void *obj, int sig);
    /* Frees the object once no worker's job is left; may run plugin code
     * (job_fini). */
    void (*close)(void *obj);
};

extern const struct wd_kind wd_command_kind;
extern const struct wd_kind wd_plugin_kind;

/* ---- deadline.c: per-run deadlines and cancellation ------------------- */

/*
 * One thread per job opened with init (every command job; a plugin job
 * with Timeout, the only runs a plugin has it time) acts on its runs when
 * they must end: when a run's deadline passes, and when its worker's context is
 * cancelled (less, close). What it does is the kind's: a command's process
 * group gets SIGTERM and SIGCONT, then SIGKILL after KillGrace; a plugin
 * run's private context is cancelled.
 *
 * Each worker's state embeds a struct wd_timed, added to the thread's list
 * with the state and removed when it is freed. A run arms its entry with
 * its worker's context and its deadline, and disarms it when it is over;
 * only armed entries are acted on. The thread sleeps in ppoll on the
 * workers' context descriptors and an eventfd, until the earliest deadline;
 * a run wakes it only when its context is new to it or its deadline is
 * earlier than the thread's next wake-up.
 *
 * Lock: one per thread. It guards the list and every entry's fields below,
 * and the kinds' own fields that due() and wd_deadlines_each() touch
 * (wd_deadlines_lock()). due() runs under it, so a run that disarmed knows
 * the thread will not act on it any more: a command reaps its shell only
 * after disarming, so no signal can reach a reused pid.
 */
typedef struct wd_deadlines wd_deadlines;

#define WD_NEVER UINT64_MAX

struct wd_timed {
    /*
     * Set by the kind before wd_deadlines_add(). Called under the lock, on
     * the deadline thread, for an armed entry: when `at` passed (cancelled
     * false), and once when its worker's context is seen cancelled
     * (cancelled true). Returns the next time it wants to be called
     * (CLOCK_MONOTONIC ns; t->at to keep the deadline it had), or WD_NEVER.
     * Must not block.
     */
    uint64_t (*due)(struct wd_timed *t, uint64_t now, bool cancelled);
    /* deadline.c's own, under the lock. */
    struct wd_timed *prev, *next;
    workers_ctx *ctx; /* the worker's context, from its first arm */
    int ctx_fd;
    bool ctx_seen; /* ctx was seen cancelled: no longer polled */
    bool armed;
    uint64_t at; /* when due() is called next; readable in due() */
};

/* Starts the thread. Errors: a negated errno (no memory, descriptor or
 * thread). */
int wd_deadlines_start(wd_deadlines **out);
/* Stops and joins the thread; every entry must have been removed. */
void wd_deadlines_stop(wd_deadlines *k);
/* A worker's state joins (t->due set) or leaves the list. Thread-safe. */
void wd_deadlines_add(wd_deadlines *k, struct wd_timed *t);
void wd_deadlines_remove(wd_deadlines *k, struct wd_timed *t);
/*
 * A run starts: t is acted on from now on, for the worker context ctx and
 * the deadline at (WD_NEVER: only the cancellation). A run must look at
 * ctx once more after arming (workers_ctx_done): a cancel the thread saw
 * before the arm is not acted on. Errors: workers_ctx_fd()'s. Called by the
 * entry's own worker only.
 */
int wd_deadlines_arm(wd_deadlines *k, struct wd_timed *t, workers_ctx *ctx,
                     uint64_t at);
/* The run is over: the thread no longer acts on t, and the kind may read
 * its own fields without the lock until the next arm. */
void wd_deadlines_disarm(wd_deadlines *k, struct wd_timed *t);
/* fn(t, arg) for every armed entry, under the lock. Thread-safe. */
void wd_deadlines_each(wd_deadlines *k, void (*fn)(struct wd_timed *, void *),
                       void *arg);
/* The lock, for a kind's fields that due() or each() also touch. */
void wd_deadlines_lock(wd_deadlines *k);
void wd_deadlines_unlock(wd_deadlines *k);

/* ---- plugin.c / loader.c: the plugin kind ------------------------------- */

/* A loaded plugin. loader.c loads and closes it, plugin.c runs it. */
typedef struct wd_plugin {
    const wd_config *cfg;
    int (*job_do)(workers_ctx *ctx, void *state);
    int (*job_init)(const char *arg);
    void *(*job_new)(void);
    void (*job_free)(void *state);
    void (*job_fini)(void);
    bool inited;         /* job_init ran (or there is none): job_fini is due */
    wd_deadlines *timer; /* only with Timeout (and init) */
} wd_plugin;

int wd_plugin_open(const wd_config *cfg, bool init, void **obj, char *err,
                   size_t errlen);
void wd_plugin_close(void *obj);

#endif /* WD_JOBS_H */
