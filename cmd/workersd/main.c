/*
 * main.c: workersd's command line.
 *
 * Order matters: the config is checked before anything starts, so a bad
 * config exits 78 with nothing to undo; the notify variables are read and
 * removed from the environment before the first thread or child exists.
 * -t loads the job here (dlopen, no job_init); otherwise the daemon loads
 * it, on the first generation's own thread, while its loop already answers
 * signals (daemon/loop.c). workersd runs in the foreground: systemd or the
 * shell supervises it.
 */
#include "workersd.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: workersd -c FILE [-t] [-v|-q]\n"
            "       workersd -h | -V\n"
            "Runs the job FILE (an ini file) describes through a pool of\n"
            "workers, in the foreground.\n"
            "\n"
            "  -c, --config FILE  the ini file (required)\n"
            "  -t, --test         check the config (and load the plugin, "
            "without\n"
            "                     job_init), then exit\n"
            "  -v, --verbose      log more (debug)\n"
            "  -q, --quiet        log only warnings and errors\n"
            "  -h, --help         this help\n"
            "  -V, --version      the version\n"
            "\n"
            "Signals: SIGUSR1 adds a worker, SIGUSR2 removes one; SIGHUP "
            "reloads the\n"
            "ini file (a refused file changes nothing); SIGINT, SIGTERM or "
            "SIGQUIT\n"
            "closes within CloseTimeout, a second one forces the close.\n"
            "Prefer workersctl(1): the same through the control socket, "
            "with exact\n"
            "counts and answers (workersctl -c FILE status, set N, reload, "
            "stop).\n"
            "\n"
            "Exit codes:\n"
            "   0  closed cleanly: every run finished in time (-t, -h, -V: "
            "done)\n"
            "   1  StopOnErrors: a job error stopped the pool (even if the "
            "close\n"
            "      then overran its deadline: the job error wins)\n"
            "   2  the close deadline passed (or a second signal or "
            "workersctl stop\n"
            "      forced it): the remaining runs were killed; or "
            "job_init/job_fini\n"
            "      did not return within KillGrace\n"
            "  64  usage error: an unknown option, no -c\n"
            "  70  a resource could not be had: descriptor limit too low "
            "for\n"
            "      Initial workers, no thread, no memory, no descriptor "
            "(for the job,\n"
            "      the loop, the [metrics] listener or the control socket); "
            "the\n"
            "      workers could not start\n"
            "  78  configuration error: a bad file, key or value; a plugin "
            "that would\n"
            "      not load or init, or is no ELF file for this machine; a "
            "config or\n"
            "      plugin others could change; a [metrics] Listen that "
            "cannot be\n"
            "      listened on; a control socket another workersd serves "
            "or whose\n"
            "      path cannot be used\n");
}

/*
 * The first thing main does. SIGPIPE is ignored so that `workersd -t ... |
 * true` (a message written to a closed pipe) exits with its own code, not
 * 141; the jobs get it back at its default when spawned. The signals the
 * loop handles are blocked, so that one arriving during the config read,
 * dlopen or job_init waits pending instead of killing us by its default
 * action (as PID 1 of a namespace, it would be dropped): the loop unblocks
 * them once its watchers are in place (daemon/loop.c), and SIGHUP waits
 * until one is. Every thread made from here on inherits the block. -t has
 * no loop: it gets the mask it was started with back (old), so Ctrl-C
 * still ends a slow check.
 */
static void
early_signals(sigset_t *old)
{
    signal(SIGPIPE, SIG_IGN);
    wd_daemon_signals(SIG_BLOCK, old);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool test = false;
    int verbosity = 0, opt, code;
    char err[WD_ERRLEN];
    wd_config cfg;
    const wd_config *snapshot;
    wd_job *job;
    sigset_t started_mask;

    early_signals(&started_mask);
    while ((opt = getopt_long(argc, argv, "c:tvqhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'v':
            verbosity++;
            break;
        case 'q':
            verbosity--;
            break;
        case 'h':
            usage(stdout);
            return WD_EXIT_OK;
        case 'V':
            printf("workersd %s (libworkers %s)\n", WORKERS_VERSION_STRING,
                   workers_version());
            return WD_EXIT_OK;
        default:
            usage(stderr);
            return WD_EXIT_USAGE;
        }
    }
    if (path == NULL || optind != argc) {
        fprintf(stderr, "workersd: %s\n",
                path == NULL ? "missing -c FILE" : "unexpected argument");
        usage(stderr);
        return WD_EXIT_USAGE;
    }

    wd_log_init(verbosity);
    if (test)
        pthread_sigmask(SIG_SETMASK, &started_mask, NULL);
    if (wd_config_load(path, &cfg, err, sizeof err) != 0) {
        wd_log(WD_LOG_ERR, "%s", err);
        return WD_EXIT_CONFIG;
    }
    if (test) {
        int rc = wd_job_open(&cfg, false, &job, err, sizeof err);
        code = WD_EXIT_OK;
        if (rc != 0) {
            wd_log(WD_LOG_ERR, "%s", err);
            code = wd_job_exit_code(rc);
        } else {
            wd_job_close(job);
            wd_log(WD_LOG_NOTICE, "configuration file %s OK", path);
        }
        wd_config_free(&cfg);
        return code;
    }
    /* Before the loop: libev aborts when it cannot make its descriptors. */
    if (wd_nofile_check(&cfg, err, sizeof err) != 0) {
        wd_log(WD_LOG_ERR, "%s", err);
        wd_config_free(&cfg);
        return WD_EXIT_SOFTWARE;
    }
    /* A notify socket we cannot use must not stop the service. */
    if (wd_notify_init(err, sizeof err) != 0)
        wd_log(WD_LOG_WARNING, "%s", err);
    if ((snapshot = wd_config_share(&cfg)) == NULL) {
        wd_log(WD_LOG_ERR, "out of memory");
        wd_notify_close();
        wd_config_free(&cfg);
        return WD_EXIT_SOFTWARE;
    }
    code = wd_daemon_run(snapshot);
    wd_notify_close();
    return code;
}
