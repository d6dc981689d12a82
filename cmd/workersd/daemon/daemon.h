/*
 * Private to cmd/workersd/daemon/: the daemon's state, shared by the loop
 * (loop.c: signals, the start, systemd), the drain (drain.c: the pool's
 * close and the generations' end), the generations it holds (gens.c) and
 * the autoscaler (autoscale.c), grouped by file; loop.c uses drain.c, both
 * use gens.c. generation.c and
 * pool.c know nothing of it: their interfaces are in workersd.h.
 *
 * Threads: everything here is the loop thread's, except what the closer
 * thread writes before its ev_async_send (close_rc). Other threads reach
 * the loop only through the ev_async watchers.
 */
#ifndef WD_DAEMON_H
#define WD_DAEMON_H

#include "control/control.h"
#include "metrics/metrics.h"
#include "workersd.h"

#include <ev.h>

/* What the daemon is doing; each phase only moves forward. */
enum wd_phase {
    WD_STARTING,  /* the first generation opens (job_init on its thread) */
    WD_RUNNING,   /* the pool runs */
    WD_DRAINING,  /* the closer thread closes the pool, within CloseTimeout */
    WD_FINISHING, /* the pool is freed: the generations close (job_fini) */
};

struct wd_daemon {
    struct ev_loop *loop;
    /* The settings in force (CloseTimeout, KillGrace): the config of the
     * generation installed last, a reference. */
    const wd_config *cfg;
    wd_pool *pool; /* the closer thread's once draining */
    /* Every generation opened and not yet freed (handles). */
    wd_gen **gens;
    size_t ngens, gens_cap;
    wd_gen *opening; /* the one the start waits for, with a reference */
    enum wd_phase phase;
    int code;      /* an exit code decided before the end, 0 if none */
    bool overdue;  /* something ran past its bound or a signal forced */
    bool job_stop; /* StopOnErrors began the drain */
    int job_error; /* the error it stopped for */

    /* drain.c: the closer thread, made before the pool starts so that a
     * close can never fail for want of a thread. */
    pthread_t closer;
    workers_ctx *drain_begin; /* cancelled: the closer thread closes */
    workers_ctx *drain_limit; /* cancelled: the close stops waiting */
    int close_rc;             /* the closer's; read after `drained` */

    ev_signal sig_more, sig_less, sig_int, sig_term, sig_chld;
    ev_signal sig_quit;          /* closes as SIGTERM does */
    struct wd_log_limit ignored; /* "SIGUSR1 ignored" while not running */
    ev_async gen_changed;        /* a generation opened or closed */
    ev_async job_failed;         /* StopOnErrors: the pool's first job error */
    ev_async drained;            /* the closer thread freed the pool */
    ev_timer close_timer;        /* CloseTimeout */
    ev_timer abandon;            /* runs that outlive the kill */
    ev_timer hook_timer;   /* job_init/job_fini, once stopping: KillGrace */
    ev_timer extend;       /* systemd's EXTEND_TIMEOUT_USEC while closing */
    uint64_t close_end_ns; /* the close's bound, WD_CLOSE_UNBOUNDED if none */
    ev_timer ping;         /* systemd's watchdog */

    struct wd_autoscaler *autoscaler; /* autoscale.c's, for the daemon's life */
    /* observe.c: what the daemon shows: statistics (one wd_stats for its
     * life, so counts go on across reloads), metrics, systemd's STATUS. */
    wd_stats *stats;
    wd_metrics *metrics;
    uint64_t start_ns;     /* wd_now_ns() at the start */
    double start_unix;     /* the same instant, Unix seconds */
    int workers;           /* workers_pool_current(), cached by the loop
                              (no pool call once draining) */
    bool paused;           /* pause ... resume */
    uint64_t reloads;      /* successful reloads */
    uint64_t deadline_ns;  /* draining: the close deadline, 0 = none */
    ev_timer status_timer; /* STATUS= at most once a second */
    char status_sent[WD_STATUS_LINE_MAX]; /* the last STATUS= sent */

    /* control.c: the control socket (NULL when off) and the clients of
     * stop, answered with the exit code once the loop ended. */
    wd_control *ctl;
    wd_control_client **stoppers;
    size_t nstoppers, stoppers_cap;
    bool stop_timeout_set;    /* stop --timeout: the close deadline ... */
    uint64_t stop_timeout_ns; /* ... instead of CloseTimeout */

    /* reload.c: a reload whose new generation opens (NULL when none), the
     * client that asked (NULL for SIGHUP), and what it changes. */
    ev_signal sig_hup;
    wd_gen *reloading;
    const wd_config *reload_cfg;
    wd_control_client *reload_client;
    char reload_what[256];
};

/* ---- gens.c: the generations the daemon holds ---------------------------- */

/*
 * Opens a generation of cfg whose notify wakes gen_changed, and keeps its
 * handle in gens; 0 or wd_gen_open()'s error. The start opens the first
 * this way; a reload does the same: wd_daemon_open(), then, once
 * gen_changed came and wd_gen_state() is OPEN, wd_daemon_install() and
 * wd_gen_unref() of its own reference (FAILED: log wd_gen_error(), unref).
 */
int wd_daemon_open(struct wd_daemon *d, const wd_config *cfg, wd_gen **out);
/* Installs g (OPEN) in the pool (wd_pool_install, the reload core) and
 * makes its config the settings in force. Not while draining. */
void wd_daemon_install(struct wd_daemon *d, wd_gen *g);
/* wd_gen_kill(sig) on every generation held: their command runs. */
void wd_daemon_kill(struct wd_daemon *d, int sig);
/* Frees the handles of the generations that reached CLOSED. */
void wd_daemon_reap_gens(struct wd_daemon *d);

/* ---- loop.c ------------------------------------------------------------ */

/* Stops the daemon as SIGTERM does (why is logged): begins the close, or
 * forces it when already closing. */
void wd_daemon_stop(struct wd_daemon *d, const char *why);

/* ---- observe.c: statistics, metrics, STATUS= ----------------------------- */

/* Makes the statistics and the metrics (cfg's [metrics]): 0, or -1 with the
 * error logged and the exit code (78 for a Listen that cannot be bound). */
int wd_observe_open(struct wd_daemon *d, const wd_config *cfg, int *code);
/* The pool's worker count changed: cache it (the STATUS= timer and the
 * status read the cache; the loop makes no pool call once draining). */
void wd_observe_workers(struct wd_daemon *d);
/* Sends STATUS= now if it changed since the last one (READY=1 etc. in
 * extra, "" for none). The 1 s timer calls it too. */
void wd_observe_notify(struct wd_daemon *d, const char *extra);
/* After the pool was freed and the closer joined. */
void wd_observe_free(struct wd_daemon *d);

/* ---- control.c: the control socket's requests --------------------------- */

/* Opens the control socket ([control]): 0, or < 0 with the error logged, a
 * start-up error: -errno when a resource ran out (exit 70), -1 for the
 * configuration (exit 78). */
int wd_control_start(struct wd_daemon *d);
/* After the loop: answers the stop clients with code, frees the server. */
void wd_control_end(struct wd_daemon *d, int code);
/* Adds (delta > 0) or removes |delta| workers, up to the limit, and says
 * what happened into msg ("workers: 4 -> 6 (max reached)"); logs it and
 * refreshes STATUS=. A manual resize: autoscaling goes off
 * (wd_autoscaler_manual). 0, or the pool's error (msg then says it). Loop
 * thread, while running. */
int wd_scale(struct wd_daemon *d, int delta, char *msg, size_t len);

/* ---- reload.c: SIGHUP and `workersctl reload` --------------------------- */

/* Re-reads the ini file; client (NULL for SIGHUP) gets the result. */
void wd_reload(struct wd_daemon *d, wd_control_client *client);
/* gen_changed: a reload's generation finished opening: installs it (OPEN)
 * or refuses the reload (FAILED, or the daemon began to close meanwhile). */
void wd_reload_check(struct wd_daemon *d);

/* ---- drain.c ----------------------------------------------------------- */

#define WD_CLOSE_UNBOUNDED UINT64_MAX

/* Makes the closer thread (sleeping) and its contexts. 0 or an error. */
int wd_drain_prepare(struct wd_daemon *d);
/* Inits the drain's watchers (timers, drained). */
void wd_drain_watchers(struct wd_daemon *d);
/* Begins the close: the closer thread closes the pool within CloseTimeout.
 * why (e.g. "SIGINT") is logged; NULL for a quiet one (nothing started). */
void wd_drain_begin(struct wd_daemon *d, const char *why);
/* A stop signal while draining or finishing: force what is left. */
void wd_drain_force(struct wd_daemon *d, const char *signame);
/* The loop checks, after a generation changed, whether the end came. */
void wd_drain_check(struct wd_daemon *d);
/* After the loop: joins the closer, kills what escaped, frees its own;
 * returns the exit code. The loop and d->cfg are the caller's to free. */
int wd_drain_end(struct wd_daemon *d);

/* ---- autoscale.c: [autoscale] ------------------------------------------ */

struct wd_autoscale_facts; /* metrics/metrics.h */

/*
 * Makes the daemon's one autoscaler from d->cfg (the first config), before
 * the first generation opens (its middleware goes into every generation's
 * chain, see wd_autoscaler_lib), and starts its timer when [autoscale]
 * Enable is true; the ticks do nothing until the pool runs. 0, -ENOMEM, or
 * -EINVAL (a policy the loader should have refused).
 */
int wd_autoscaler_new(struct wd_daemon *d);
/* The library's object, for the generations' wd_gen_shared. */
workers_autoscale *wd_autoscaler_lib(const struct wd_daemon *d);
/*
 * A manual resize was asked (workersctl set/more/less, SIGUSR1/SIGUSR2):
 * call it for each request, whether or not the count moved (the operator
 * took the size in hand either way). When autoscaling was on, it is off
 * from now on, logged once ("autoscale: off after a manual resize, ..."),
 * until wd_autoscaler_enable(d, true). A no-op when off.
 */
void wd_autoscaler_manual(struct wd_daemon *d);
/*
 * `workersctl autoscale on|off`: on restarts the measurement
 * (workers_autoscale_set_policy) and ticks again every quarter Window; off
 * stops the ticks (the size stays as it is). Logged when it changes
 * anything; asking for the state in force is a no-op returning 0. Errors:
 * -ENOTSUP when the config in force has no [autoscale] key (say: "no
 * [autoscale] in the config"), -ERANGE to turn it on while the pool's Max
 * is 0 (say: "needs a [pool] Max"), WORKERS_ECLOSED once draining.
 */
int wd_autoscaler_enable(struct wd_daemon *d, bool on);
/*
 * A reload installed cfg (call it right after wd_daemon_install): its
 * Target, Window and Cooldown take effect (the measurement restarts, the
 * cooldown's clock is kept); an Enable the file changed is followed (an
 * unchanged one keeps the run-time state, e.g. off after a manual resize);
 * no [autoscale] any more turns it off, and so does a pool whose limits in
 * force have no Max (a warning). The generations opened from now on
 * put the middleware in their chain or not, as cfg says.
 */
void wd_autoscaler_apply(struct wd_daemon *d, const wd_config *cfg);
/* For the status, STATUS= and the metrics: on/off, target, the last
 * utilisation measured and the last change's text; all zero when the
 * config in force has no [autoscale]. */
void wd_autoscaler_facts(const struct wd_daemon *d,
                         struct wd_autoscale_facts *out);
/* Stops its timer and frees it, after wd_drain_end() (the pool freed) and
 * before the loop is destroyed. NULL autoscaler: a no-op. */
void wd_autoscaler_free(struct wd_daemon *d);

#endif /* WD_DAEMON_H */
