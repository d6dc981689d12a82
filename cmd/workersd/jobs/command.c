/*
 * Shell-command jobs: one run is one `/bin/sh -c COMMAND` child.
 *
 * Spawning: posix_spawn (glibc clones with CLONE_VM|CLONE_VFORK, which is
 * safe from threads) with an empty signal mask, every signal at its default
 * disposition, a new process group (pgid = the shell's pid), stdin from
 * /dev/null, stdout/stderr inherited and every descriptor >= 3 closed, so no
 * descriptor of the daemon leaks even if a plugin or library opened one
 * without O_CLOEXEC. The environment is the daemon's, as it was when the job
 * was opened, minus systemd's NOTIFY_SOCKET/WATCHDOG_* (they address the
 * daemon, not its children), plus WORKERS_WORKER_ID. The descriptor limit
 * is the one workersd was started with (make_script).
 *
 * Reaping: the worker thread that spawned a child is its only reaper. It
 * blocks in waitid(P_PID) until the shell exits (WNOWAIT: the shell stays a
 * zombie, so its pid and group id cannot be reused yet); workersd calls
 * waitpid(-1) only with __WNOTHREAD, from the main thread (orphans.c: never
 * a worker's child; its libev loop is not the default loop), and
 * SIGCHLD must not be ignored (children would be reaped behind our back).
 *
 * How a run ends (the escalation is the job's deadline thread's, see
 * deadline.c; "terminate" is SIGTERM then SIGCONT to the group, so a
 * stopped run dies too):
 * - the shell exits: its whole process group gets SIGKILL, then it is
 *   reaped. Policy: nothing a run started in its group outlives it, so
 *   `cmd &` in a Command is killed when the shell ends. A process that
 *   leaves the group (setsid, setpgid) escapes that kill: orphans.c adopts
 *   it.
 * - the worker's context is cancelled (less, close): terminate, then
 *   SIGKILL after KillGrace.
 * - Timeout passes: terminate, then SIGKILL after KillGrace.
 * - wd_job_kill(): the signal it names, at once (SIGKILL at the close
 *   deadline).
 *
 * Signals and pids: a run arms its deadline entry before it spawns, and
 * publishes the shell's pid under the deadline lock; a signal decided
 * before that (a kill racing the spawn) is kept in `pending` and sent by
 * the run itself once the pid is known. It disarms before it kills the group
 * and reaps, so no signal can reach a reused pid. Nothing of one run carries
 * over to the next.
 */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ID_VAR "WORKERS_WORKER_ID="

typedef struct wd_cmd {
    const wd_config *cfg;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    char **env;   /* the daemon's environment, deep-copied, NULL-terminated */
    char *script; /* what sh -c runs: the Command, or it after a ulimit */
    size_t nenv;
    wd_deadlines *timer; /* only when opened with init */
} wd_cmd;

/* How far a run's ending went. */
enum stage { RUNNING, TERMINATED, KILLED };

/* One worker's state: only its worker touches it, except the fields under
 * the deadline lock while the run is armed. */
struct cmd_worker {
    struct wd_timed timed; /* first: due() gets it */
    wd_cmd *cmd;
    /* Under the deadline lock while armed; reset by each run. */
    pid_t pid;        /* the running shell, 0 until spawned */
    int pending;      /* a signal decided while pid was 0 */
    enum stage stage; /* by the deadline thread */
    bool timed_out;
    /* The builder cannot know the worker's number (new_job gets no
     * context): the first run fills id and id_var; envp is built once. */
    unsigned id;
    char id_var[sizeof ID_VAR + 10];
    char *envp[]; /* id_var, then cmd->env, then NULL */
};

static bool
env_inherited(const char *var)
{
    static const char *const dropped[] = {
        ID_VAR, "NOTIFY_SOCKET=", "WATCHDOG_PID=", "WATCHDOG_USEC="};
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (strncmp(var, dropped[i], strlen(dropped[i])) == 0)
            return false;
    return true;
}

static int
env_copy(wd_cmd *cmd)
{
    size_t n = 0;
    for (char **e = environ; *e != NULL; e++)
        n++;
    cmd->env = calloc(n + 1, sizeof *cmd->env);
    if (cmd->env == NULL)
        return -ENOMEM;
    for (char **e = environ; *e != NULL; e++) {
        if (!env_inherited(*e))
            continue;
        if ((cmd->env[cmd->nenv] = strdup(*e)) == NULL)
            return -ENOMEM;
        cmd->nenv++;
    }
    return 0;
}

static int
spawn_setup(wd_cmd *cmd)
{
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    int e = posix_spawnattr_init(&cmd->attr);
    if (e != 0)
        return -e;
    e = posix_spawn_file_actions_init(&cmd->actions);
    if (e != 0)
        return -e;
    if ((e = posix_spawnattr_setflags(&cmd->attr, POSIX_SPAWN_SETSIGMASK |
                                                      POSIX_SPAWN_SETSIGDEF |
                                                      POSIX_SPAWN_SETPGROUP)) ||
        (e = posix_spawnattr_setsigmask(&cmd->attr, &none)) ||
        (e = posix_spawnattr_setsigdefault(&cmd->attr, &all)) ||
        (e = posix_spawnattr_setpgroup(&cmd->attr, 0)) ||
        (e = posix_spawn_file_actions_addopen(&cmd->actions, STDIN_FILENO,
                                              "/dev/null", O_RDONLY, 0)) ||
        (e = posix_spawn_file_actions_addclosefrom_np(&cmd->actions, 3)))
        return -e;
    return 0;
}

/* posix_spawn cannot set a limit in the child: when the daemon raised its
 * descriptor limit (nofile.c), the shell lowers its own soft limit back to
 * the one workersd was started with, first thing, on the Command's line
 * (so a syntax error still reports line 1). */
static int
make_script(wd_cmd *cmd)
{
    unsigned long long orig = wd_nofile_original();
    const char *command = cmd->cfg->command;
    int n = orig == 0 ? asprintf(&cmd->script, "%s", command)
                      : asprintf(&cmd->script, "ulimit -S -n %llu; %s", orig,
                                 command);
    if (n < 0) {
        cmd->script = NULL;
        return -ENOMEM;
    }
    return 0;
}

static void
cmd_close(void *obj)
{
    wd_cmd *cmd = obj;
    if (cmd->timer != NULL)
        wd_deadlines_stop(cmd->timer);
    for (size_t i = 0; i < cmd->nenv; i++)
        free(cmd->env[i]);
    free(cmd->env);
    free(cmd->script);
    posix_spawn_file_actions_destroy(&cmd->actions);
    posix_spawnattr_destroy(&cmd->attr);
    free(cmd);
}

static int
cmd_open(const wd_config *cfg, bool init, void **obj, char *err, size_t errlen)
{
    wd_cmd *cmd = calloc(1, sizeof *cmd);
    if (cmd == NULL) {
        snprintf(err, errlen, "out of memory");
        return WD_JOB_ENORES;
    }
    cmd->cfg = cfg;
    int r = spawn_setup(cmd);
    if (r == 0)
        r = env_copy(cmd);
    if (r == 0)
        r = make_script(cmd);
    if (r == 0 && init)
        r = wd_deadlines_start(&cmd->timer);
    if (r != 0) {
        cmd_close(cmd);
        snprintf(err, errlen, "cannot prepare the command job: %s",
                 strerror(-r));
        return WD_JOB_ENORES; /* memory, a descriptor or a thread */
    }
    *obj = cmd;
    return 0;
}

/* Sends sig to the run's group, or keeps it for when the pid is known.
 * SIGTERM goes with a SIGCONT: a stopped process would not act on it. */
static void
signal_run(struct cmd_worker *w, int sig)
{
    if (w->pid <= 0) {
        if (w->pending != SIGKILL)
            w->pending = sig;
        return;
    }
    killpg(w->pid, sig);
    if (sig == SIGTERM)
        killpg(w->pid, SIGCONT);
}

/* The deadline thread: Timeout or a cancel terminates, KillGrace later the
 * group is killed. */
static uint64_t
cmd_due(struct wd_timed *t, uint64_t now, bool cancelled)
{
    struct cmd_worker *w = (struct cmd_worker *)t;
    if (w->stage == RUNNING) {
        w->stage = TERMINATED;
        w->timed_out = !cancelled;
        signal_run(w, SIGTERM);
        return wd_deadline(now, w->cmd->cfg->kill_grace_ns);
    }
    if (cancelled)
        return t->at; /* already ending: keep its grace */
    w->stage = KILLED;
    signal_run(w, SIGKILL);
    return WD_NEVER;
}

static void
kill_one(struct wd_timed *t, void *sig)
{
    signal_run((struct cmd_worker *)t, *(int *)sig);
}

static void
cmd_kill(void *obj, int sig)
{
    wd_cmd *cmd = obj;
    wd_deadlines_each(cmd->timer, kill_one, &sig);
}

/* Publishes the shell's pid; sends what was decided before it was known. */
static void
publish(struct cmd_worker *w, pid_t pid)
{
    wd_deadlines_lock(w->cmd->timer);
    w->pid = pid;
    int sig = w->pending;
    w->pending = 0;
    if (sig != 0)
        signal_run(w, sig);
    wd_deadlines_unlock(w->cmd->timer);
}

/* Waits until the shell exited, leaves it unreaped; then, disarmed, kills
 * what it left in its group and reaps it. Returns its wait status. */
static int
wait_and_reap(struct cmd_worker *w, pid_t pid)
{
    siginfo_t si;
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) != 0 &&
           errno == EINTR)
        ;
    wd_deadlines_disarm(w->cmd->timer, &w->timed);
    killpg(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/* What a run that did not exit 0 returns, with its log line. */
static int
outcome(struct cmd_worker *w, workers_ctx *ctx, int status)
{
    const wd_config *cfg = w->cmd->cfg;
    char dur[32];
    /* Checked after the exit, not when the SIGTERM went: a close may
     * cancel and kill at once, before the deadline thread saw the cancel. */
    if (workers_ctx_done(ctx)) {
        if (w->stage == KILLED)
            wd_log(WD_LOG_WARNING,
                   "worker %u: command ignored SIGTERM: killed after "
                   "KillGrace (%s)",
                   w->id, wd_duration(cfg->kill_grace_ns, dur, sizeof dur));
        else
            wd_log(WD_LOG_DEBUG, "worker %u: command stopped: worker cancelled",
                   w->id);
        return WORKERS_ECANCELED;
    }
    if (w->timed_out) {
        wd_log(WD_LOG_WARNING, "worker %u: command timed out after %s", w->id,
               wd_duration(cfg->timeout_ns, dur, sizeof dur));
        return WORKERS_ETIMEDOUT;
    }
    /* IdleExitCode: the command found no work. Not a failure, so no log
     * line: an empty queue polled every IdleWait would flood the log. */
    if (WIFEXITED(status) && cfg->idle_exit_code != 0 &&
        WEXITSTATUS(status) == cfg->idle_exit_code)
        return WORKERS_EIDLE;
    if (WIFEXITED(status)) {
        wd_log(WD_LOG_WARNING, "worker %u: command exited with status %d",
               w->id, WEXITSTATUS(status));
        return WEXITSTATUS(status);
    }
    wd_log(WD_LOG_WARNING, "worker %u: command killed by signal %d", w->id,
           WTERMSIG(status));
    return 128 + WTERMSIG(status);
}

static int
cmd_run(workers_ctx *ctx, void *arg)
{
    struct cmd_worker *w = arg;
    wd_cmd *cmd = w->cmd;
    if (workers_ctx_done(ctx))
        return WORKERS_ECANCELED;
    if (w->id == 0) {
        w->id = workers_ctx_worker_id(ctx);
        snprintf(w->id_var, sizeof w->id_var, ID_VAR "%u", w->id);
    }
    /* Disarmed: the deadline thread does not touch these. */
    w->pid = 0;
    w->pending = 0;
    w->stage = RUNNING;
    w->timed_out = false;
    uint64_t at = cmd->cfg->timeout_ns != 0
                      ? wd_deadline(wd_now_ns(), cmd->cfg->timeout_ns)
                      : WD_NEVER;
    int r = wd_deadlines_arm(cmd->timer, &w->timed, ctx, at);
    if (r != 0) {
        wd_log(WD_LOG_ERR, "worker %u: cannot watch the context: %s", w->id,
               workers_strerror(r));
        return r;
    }
    if (workers_ctx_done(ctx)) {
        wd_deadlines_disarm(cmd->timer, &w->timed);
        return WORKERS_ECANCELED;
    }
    char *argv[] = {"sh", "-c", cmd->script, NULL};
    pid_t pid;
    int e =
        posix_spawn(&pid, "/bin/sh", &cmd->actions, &cmd->attr, argv, w->envp);
    if (e != 0) {
        wd_deadlines_disarm(cmd->timer, &w->timed);
        wd_log(WD_LOG_ERR, "worker %u: cannot run /bin/sh: %s", w->id,
               strerror(e));
        return -e;
    }
    publish(w, pid);
    int status = wait_and_reap(w, pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !w->timed_out)
        return 0;
    return outcome(w, ctx, status);
}

static void
cmd_worker_free(void *arg)
{
    struct cmd_worker *w = arg;
    wd_deadlines_remove(w->cmd->timer, &w->timed);
    free(w);
}

static int
cmd_new_job(void *obj, workers_job *out)
{
    wd_cmd *cmd = obj;
    struct cmd_worker *w =
        calloc(1, sizeof *w + (cmd->nenv + 2) * sizeof w->envp[0]);
    if (w == NULL)
        return -ENOMEM;
    w->cmd = cmd;
    w->timed.due = cmd_due;
    w->envp[0] = w->id_var;
    memcpy(&w->envp[1], cmd->env, cmd->nenv * sizeof cmd->env[0]);
    wd_deadlines_add(cmd->timer, &w->timed);
    *out = (workers_job){cmd_run, w, cmd_worker_free};
    return 0;
}

const struct wd_kind wd_command_kind = {
    "command", cmd_open, cmd_new_job, cmd_kill, cmd_close,
};
