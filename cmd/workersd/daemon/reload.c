/*
 * Reload (SIGHUP, `workersctl reload`, the unit's ExecReload): the ini file
 * is read and validated anew, and applied whole or not at all.
 *
 * - A file that does not load changes nothing: the error line is logged and
 *   the client gets it (exit 78).
 * - [job] or [middleware] changed, or the job is a Plugin (whose file may
 *   have been rebuilt in place): a new generation opens on its own thread
 *   (job_init) while the old one runs on; once it is OPEN it is installed
 *   (wd_pool_install: the rolling switch, each worker after its run) with
 *   the [pool] settings; if it FAILED, nothing changes (exit 78).
 * - [autoscale] applies at once (autoscale.c: the policy; Enable when the
 *   file changed it); its presence or absence and IdleExitCode change the
 *   generation (the chain). IdleWait is the pool's: set at once, ending
 *   the rests in progress, at every reload (at install for a new job).
 * - [pool] Min/Max apply at once through workers_pool_set_limits, which
 *   keeps the current count, clamped into the new range; StopOnErrors and
 *   CloseTimeout are read where used (the pool's flag, d->cfg).
 *   Initial only matters at the start; [control] and [metrics] too (the
 *   socket and the HTTP port stay as they were opened): they are noted.
 *
 * One reload at a time: a reload asked while another one's generation
 * opens is refused (exit 1, "a reload is in progress"), so each answer says
 * what its own file did. systemd hears RELOADING=1 (with MONOTONIC_USEC)
 * at the start and READY=1 with the new STATUS= at the end, either way.
 * Loop thread only.
 */
#include "daemon.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool
same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether the new config needs a new generation: [autoscale]'s presence
 * puts its middleware in the chain. */
static bool
job_changed(const wd_config *a, const wd_config *b)
{
    return !same_str(a->command, b->command) || !same_str(a->arg, b->arg) ||
           b->plugin != NULL || !same_str(a->plugin, b->plugin) ||
           a->timeout_ns != b->timeout_ns ||
           a->kill_grace_ns != b->kill_grace_ns ||
           a->backoff.min_ns != b->backoff.min_ns ||
           a->backoff.max_ns != b->backoff.max_ns || a->retry != b->retry ||
           a->wait_ns != b->wait_ns || a->idle_exit_code != b->idle_exit_code ||
           a->autoscale.configured != b->autoscale.configured;
}

/* Appends ", "-separated printf text to d->reload_what. */
static void __attribute__((format(printf, 2, 3)))
note(struct wd_daemon *d, const char *fmt, ...)
{
    size_t len = strlen(d->reload_what);
    va_list ap;

    if (len != 0 && len + 2 < sizeof d->reload_what) {
        memcpy(d->reload_what + len, ", ", 3);
        len += 2;
    }
    va_start(ap, fmt);
    vsnprintf(d->reload_what + len, sizeof d->reload_what - len, fmt, ap);
    va_end(ap);
}

/* What the reload changes, into d->reload_what ("" when nothing). */
static void
describe(struct wd_daemon *d, const wd_config *a, const wd_config *b)
{
    char x[32], y[32];

    d->reload_what[0] = '\0';
    if (a->pool.min != b->pool.min)
        note(d, "Min %d -> %d", a->pool.min, b->pool.min);
    if (a->pool.max != b->pool.max)
        note(d, "Max %d -> %d", a->pool.max, b->pool.max);
    if (a->pool.stop_on_errors != b->pool.stop_on_errors)
        note(d, "StopOnErrors %s", b->pool.stop_on_errors ? "on" : "off");
    if (a->close_timeout_ns != b->close_timeout_ns)
        note(d, "CloseTimeout %s -> %s",
             wd_duration(a->close_timeout_ns, x, sizeof x),
             wd_duration(b->close_timeout_ns, y, sizeof y));
    if (!same_str(a->socket, b->socket) || a->socket_mode != b->socket_mode ||
        a->socket_group != b->socket_group ||
        !same_str(a->metrics.listen, b->metrics.listen) ||
        !same_str(a->metrics.file, b->metrics.file) ||
        a->metrics.interval_ns != b->metrics.interval_ns)
        note(d, "[control] and [metrics] unchanged until a restart");
    const struct wd_autoscale_cfg *as = &a->autoscale, *bs = &b->autoscale;
    if (as->configured != bs->configured || as->enable != bs->enable ||
        as->policy.target != bs->policy.target ||
        as->policy.window_ns != bs->policy.window_ns ||
        as->policy.cooldown_ns != bs->policy.cooldown_ns)
        note(d, "[autoscale] applied");
    if (!job_changed(a, b))
        return;
    note(d, "%s: rolling %d worker%s",
         !same_str(a->command, b->command) || !same_str(a->plugin, b->plugin)
             ? (b->command != NULL ? "Command changed" : "Plugin changed")
         : b->plugin != NULL ? "Plugin reloaded"
                             : "[job] or [middleware] changed",
         d->workers, d->workers == 1 ? "" : "s");
}

/* Answers the client (if any) and tells systemd the reload is over. */
static void
answer(struct wd_daemon *d, wd_control_client *c, json_t *reply)
{
    if (c != NULL)
        wd_control_reply(c, reply);
    else
        json_decref(reply);
    wd_observe_notify(d, "READY=1");
}

static void
refuse(struct wd_daemon *d, wd_control_client *c, int exit_code,
       const char *why)
{
    wd_log(WD_LOG_ERR, "reload refused, nothing changed: %s", why);
    answer(d, c, wd_control_fail(exit_code, "%s", why));
}

/* Makes cfg (a reference, taken over) the settings in force: the new
 * limits (the count kept, clamped into them), StopOnErrors, [autoscale]
 * (autoscale.c), and d->cfg (CloseTimeout, KillGrace, the status). */
static void
apply(struct wd_daemon *d, const wd_config *cfg)
{
    char buf[96];
    int rc = 0;

    if (cfg->pool.min != d->cfg->pool.min || cfg->pool.max != d->cfg->pool.max)
        rc = workers_pool_set_limits(wd_pool_workers(d->pool), cfg->pool.min,
                                     cfg->pool.max);
    if (rc != 0)
        wd_log(WD_LOG_WARNING, "reload: the new limits: %s",
               wd_describe(rc, buf, sizeof buf));
    if (cfg->pool.max != d->cfg->pool.max)
        wd_nofile_recheck(cfg->pool.max);
    wd_pool_set_stop_on_errors(d->pool, cfg->pool.stop_on_errors);
    wd_autoscaler_apply(d, cfg); /* after the limits: it checks Max */
    wd_config_unref(d->cfg);
    d->cfg = cfg;
}

/* The reload is done: count it, say what changed. */
static void
done(struct wd_daemon *d, wd_control_client *c)
{
    d->reloads++;
    wd_observe_workers(d);
    if (d->reload_what[0] == '\0')
        strcpy(d->reload_what, "nothing changed");
    wd_log(WD_LOG_INFO, "reload: %s", d->reload_what);
    answer(d, c, wd_control_ok("reload: %s", d->reload_what));
}

void
wd_reload(struct wd_daemon *d, wd_control_client *c)
{
    char err[WD_ERRLEN];
    wd_config loaded;
    const wd_config *cfg;

    if (d->phase != WD_RUNNING || d->reloading != NULL) {
        const char *why = d->reloading != NULL      ? "a reload is in progress"
                          : d->phase == WD_STARTING ? "starting"
                                                    : "closing";
        wd_log(WD_LOG_WARNING, "reload refused: %s", why);
        if (c != NULL)
            wd_control_reply(c, wd_control_fail(WD_CONTROL_EXIT_REFUSED,
                                                "reload refused: %s", why));
        return;
    }
    wd_observe_workers(d); /* for "rolling N workers" */
    wd_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
              (unsigned long long)(wd_now_ns() / 1000));
    if (wd_config_load(d->cfg->path, &loaded, err, sizeof err) != 0) {
        refuse(d, c, WD_CONTROL_EXIT_CONFIG, err);
        return;
    }
    if ((cfg = wd_config_share(&loaded)) == NULL) {
        wd_config_free(&loaded);
        refuse(d, c, WD_EXIT_SOFTWARE, "out of memory");
        return;
    }
    describe(d, d->cfg, cfg);
    if (!job_changed(d->cfg, cfg)) {
        apply(d, cfg);
        /* The pool's setting, not the job's: the new IdleWait at once, and
         * the rests in progress end (a rolling switch does it after the
         * switch, wd_pool_install). */
        workers_pool_set_idle_wait(wd_pool_workers(d->pool),
                                   cfg->pool.idle_wait_ns);
        done(d, c);
        return;
    }
    int rc = wd_daemon_open(d, cfg, &d->reloading);
    if (rc != 0) {
        wd_config_unref(cfg);
        refuse(d, c, WD_EXIT_SOFTWARE, wd_describe(rc, err, sizeof err));
        return;
    }
    d->reload_cfg = cfg;
    d->reload_client = c;
}

void
wd_reload_check(struct wd_daemon *d)
{
    wd_gen *g = d->reloading;
    if (g == NULL || wd_gen_state(g) == WD_GEN_OPENING)
        return;
    const wd_config *cfg = d->reload_cfg;
    wd_control_client *c = d->reload_client;
    d->reloading = NULL;
    d->reload_cfg = NULL;
    d->reload_client = NULL;
    if (wd_gen_state(g) == WD_GEN_FAILED || d->phase != WD_RUNNING) {
        const char *why = d->phase != WD_RUNNING ? "closing" : wd_gen_error(g);
        /* A job that cannot open is 78, or 70 when a resource failed. */
        int code = d->phase != WD_RUNNING ? WD_CONTROL_EXIT_REFUSED
                                          : wd_gen_exit_code(g);
        refuse(d, c, code, why); /* why is g's: answered before the unref */
        wd_gen_unref(g);
        wd_config_unref(cfg);
        return;
    }
    apply(d, cfg);
    /* cfg is g's config: install keeps it the settings in force. */
    wd_daemon_install(d, g);
    wd_gen_unref(g); /* the pool holds it now */
    done(d, c);
}
