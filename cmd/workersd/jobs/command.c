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
 * daemon, not its children), plus WORKERS_WORKER_ID.
 *
 * Reaping: the worker thread that spawned a child is its only reaper. It
 * polls a pidfd of the child together with its context's descriptor; nothing
 * in workersd calls waitpid(-1) (its libev loop is not the default loop) and
 * SIGCHLD must not be ignored (children would be reaped behind our back).
 *
 * How a run ends:
 * - the shell exits: its whole process group gets SIGKILL (while the shell is
 *   still an unreaped zombie, so the group id cannot have been reused), then
 *   it is reaped. Policy: nothing a run started in its group outlives it, so
 *   `cmd &` in a Command is killed when the shell ends. A process that leaves
 *   the group (setsid, setpgid) escapes that kill: orphans.c adopts it.
 * - the worker's context is cancelled (less, close): SIGTERM to the group,
 *   once; the run then waits for the shell, still bounded by its Timeout
 *   (if any) as below, and by the daemon's close deadline, when it calls
 *   wd_job_kill_all(SIGKILL).
 * - Timeout passes: SIGTERM to the group, then SIGKILL after KillGrace.
 *
 * Registry: every worker's state is on cmd->workers; its pid (the running
 * shell, 0 when none) is written under cmd->lock. A worker clears it under
 * the lock BEFORE reaping, so kill_all only signals unreaped children, whose
 * pid cannot be reused. kill_all also records its signal, which a worker
 * applies itself to a child it registers later: that closes the window
 * between posix_spawn and registration during a close.
 */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ID_VAR "WORKERS_WORKER_ID="

struct cmd_worker;

struct wd_cmd {
    const wd_config *cfg;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    char **env; /* the daemon's environment, deep-copied, NULL-terminated */
    size_t nenv;
    pthread_mutex_t lock; /* guards workers, every worker's pid, kill_sig */
    struct cmd_worker *workers;
    int kill_sig; /* set by kill_all: applied to children registered later */
};

/* One worker's state: only its worker touches it, except pid and the links
 * (under cmd->lock). */
struct cmd_worker {
    wd_cmd *cmd;
    struct cmd_worker *prev, *next;
    pid_t pid;
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

int
wd_cmd_open(const wd_config *cfg, wd_cmd **out, char *err, size_t errlen)
{
    wd_cmd *cmd = calloc(1, sizeof *cmd);
    if (cmd == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cmd->cfg = cfg;
    int e = pthread_mutex_init(&cmd->lock, NULL);
    if (e != 0) {
        free(cmd);
        snprintf(err, errlen, "cannot make a lock: %s", strerror(e));
        return -1;
    }
    int r = spawn_setup(cmd);
    if (r == 0)
        r = env_copy(cmd);
    if (r != 0) {
        wd_cmd_close(cmd);
        snprintf(err, errlen, "cannot prepare the command job: %s",
                 strerror(-r));
        return -1;
    }
    *out = cmd;
    return 0;
}

void
wd_cmd_close(wd_cmd *cmd)
{
    for (size_t i = 0; i < cmd->nenv; i++)
        free(cmd->env[i]);
    free(cmd->env);
    posix_spawn_file_actions_destroy(&cmd->actions);
    posix_spawnattr_destroy(&cmd->attr);
    pthread_mutex_destroy(&cmd->lock);
    free(cmd);
}

void
wd_cmd_kill_all(wd_cmd *cmd, int sig)
{
    pthread_mutex_lock(&cmd->lock);
    cmd->kill_sig = sig;
    for (struct cmd_worker *w = cmd->workers; w != NULL; w = w->next)
        if (w->pid > 0)
            killpg(w->pid, sig);
    pthread_mutex_unlock(&cmd->lock);
}

/* Publishes (pid > 0) or withdraws (pid 0) the worker's running child. */
static void
set_child(struct cmd_worker *w, pid_t pid)
{
    wd_cmd *cmd = w->cmd;
    pthread_mutex_lock(&cmd->lock);
    w->pid = pid;
    int sig = cmd->kill_sig;
    pthread_mutex_unlock(&cmd->lock);
    if (pid > 0 && sig != 0)
        killpg(pid, sig);
}

/*
 * Reaps the shell pid: waits until it exited unless the pidfd said so
 * already (exited), kills what it left in its group, withdraws it from the
 * registry, then reaps it. Returns its wait status.
 */
static int
reap(struct cmd_worker *w, pid_t pid, bool exited)
{
    siginfo_t si;
    while (!exited && waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) != 0 &&
           errno == EINTR)
        ;
    killpg(pid, SIGKILL);
    set_child(w, 0);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/* Without a pidfd (Linux before 5.3, valgrind 3.19, a seccomp filter, no
 * descriptor left), how often a waiting worker looks whether its shell
 * exited. */
#define EXIT_POLL_NS (5 * 1000000ull)

/* Whether pid exited, without reaping it. */
static bool
child_exited(pid_t pid)
{
    siginfo_t si = {0};
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == pid;
}

/*
 * Waits for the shell pid to exit, ending it as the header says; sets
 * *timed_out when Timeout passed. Returns 0, or a negative code when it
 * could not watch the child (then it was killed). The pidfd lets one ppoll
 * wait for the exit, the cancel and the deadline at once; without it the
 * exit is looked for every EXIT_POLL_NS, a cancel still wakes at once.
 */
static int
wait_child(wd_cmd *cmd, pid_t pid, int ctx_fd, bool *timed_out)
{
    /* Any failure (ENOSYS, EPERM from a seccomp filter, EMFILE) falls back
     * to looking for the exit: slower to notice, never wrong. */
    int pidfd = pidfd_open(pid, 0);
    /* poll ignores a negative fd: without a pidfd only the ctx is watched. */
    struct pollfd pf[2] = {{pidfd, POLLIN, 0}, {ctx_fd, POLLIN, 0}};
    uint64_t deadline = 0;
    if (cmd->cfg->timeout_ns != 0)
        deadline = wd_deadline(wd_now_ns(), cmd->cfg->timeout_ns);
    for (;;) {
        uint64_t wait_ns = UINT64_MAX;
        if (deadline != 0) {
            uint64_t now = wd_now_ns();
            if (now >= deadline) {
                if (!*timed_out) {
                    *timed_out = true;
                    killpg(pid, SIGTERM);
                    deadline = wd_deadline(now, cmd->cfg->kill_grace_ns);
                } else {
                    killpg(pid, SIGKILL);
                    deadline = 0;
                }
                continue;
            }
            wait_ns = deadline - now;
        }
        if (pidfd < 0) {
            if (child_exited(pid))
                break;
            if (wait_ns > EXIT_POLL_NS)
                wait_ns = EXIT_POLL_NS;
        }
        struct timespec ts = wd_timespec(wait_ns);
        if (ppoll(pf, 2, wait_ns != UINT64_MAX ? &ts : NULL, NULL) < 0) {
            if (errno == EINTR || errno == ENOMEM)
                continue;
            int r = -errno;
            killpg(pid, SIGKILL);
            if (pidfd >= 0)
                close(pidfd);
            return r;
        }
        if (pf[0].revents != 0)
            break;
        if (pf[1].revents != 0) {
            killpg(pid, SIGTERM);
            pf[1].fd = -1; /* stays readable: stop watching it */
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return 0;
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
    int ctx_fd = workers_ctx_fd(ctx);
    if (ctx_fd < 0) {
        wd_log(WD_LOG_ERR, "worker %u: cannot watch the context: %s", w->id,
               workers_strerror(ctx_fd));
        return ctx_fd;
    }
    char *argv[] = {"sh", "-c", cmd->cfg->command, NULL};
    pid_t pid;
    int e =
        posix_spawn(&pid, "/bin/sh", &cmd->actions, &cmd->attr, argv, w->envp);
    if (e != 0) {
        wd_log(WD_LOG_ERR, "worker %u: cannot run /bin/sh: %s", w->id,
               strerror(e));
        return -e;
    }
    set_child(w, pid);
    bool timed_out = false;
    int r = wait_child(cmd, pid, ctx_fd, &timed_out);
    int status = reap(w, pid, r == 0);
    char dur[32];
    if (r != 0) {
        wd_log(WD_LOG_ERR, "worker %u: cannot watch the command: %s", w->id,
               strerror(-r));
        return r;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !timed_out)
        return 0;
    /* Checked after the exit, not when the SIGTERM went: a close may
     * cancel and kill at once, before this thread saw the cancel. */
    if (workers_ctx_done(ctx)) {
        wd_log(WD_LOG_DEBUG, "worker %u: command stopped: worker cancelled",
               w->id);
        return WORKERS_ECANCELED;
    }
    if (timed_out) {
        wd_log(WD_LOG_WARNING, "worker %u: command timed out after %s", w->id,
               wd_duration(cmd->cfg->timeout_ns, dur, sizeof dur));
        return WORKERS_ETIMEDOUT;
    }
    if (WIFEXITED(status)) {
        wd_log(WD_LOG_WARNING, "worker %u: command exited with status %d",
               w->id, WEXITSTATUS(status));
        return WEXITSTATUS(status);
    }
    wd_log(WD_LOG_WARNING, "worker %u: command killed by signal %d", w->id,
           WTERMSIG(status));
    return 128 + WTERMSIG(status);
}

static void
cmd_worker_free(void *arg)
{
    struct cmd_worker *w = arg;
    wd_cmd *cmd = w->cmd;
    pthread_mutex_lock(&cmd->lock);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        cmd->workers = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&cmd->lock);
    free(w);
}

int
wd_cmd_new_job(void *arg, workers_job *out)
{
    wd_cmd *cmd = arg;
    struct cmd_worker *w =
        calloc(1, sizeof *w + (cmd->nenv + 2) * sizeof w->envp[0]);
    if (w == NULL)
        return -ENOMEM;
    w->cmd = cmd;
    w->envp[0] = w->id_var;
    memcpy(&w->envp[1], cmd->env, cmd->nenv * sizeof cmd->env[0]);
    pthread_mutex_lock(&cmd->lock);
    w->next = cmd->workers;
    if (w->next != NULL)
        w->next->prev = w;
    cmd->workers = w;
    pthread_mutex_unlock(&cmd->lock);
    out->fn = cmd_run;
    out->arg = w;
    out->free = cmd_worker_free;
    return 0;
}
