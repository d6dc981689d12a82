/*
 * Section 5: from SIGUSR1 to the first run of the new worker, in the real
 * daemon. workersd runs with Initial = 1 and a Command that writes its
 * $WORKERS_WORKER_ID into a FIFO this program reads, then sleeps. Each
 * repetition sends one SIGUSR1 (so worker k + 1 appears) and times until
 * that worker's line arrives. The baseline is one spawn of the same command
 * by this program, timed the same way (posix_spawn to its line): the
 * target is "under 1 ms plus one spawn", so nothing is subtracted.
 * READY=1 on a NOTIFY_SOCKET we listen on says when the daemon's loop is
 * up, so that no signal arrives before its handlers.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DEADLINE_MS 10000

/* The FIFO's lines so far that no wait consumed. */
static char carry[4096];
static size_t ncarry;

/* Waits until the line "<id>" arrives on fd; false after DEADLINE_MS. */
static bool
wait_marker(int fd, long id)
{
    uint64_t end = bn_now_ns() + DEADLINE_MS * 1000000ull;
    for (;;) {
        char *nl;
        while ((nl = memchr(carry, '\n', ncarry)) != NULL) {
            *nl = '\0';
            bool hit = strtol(carry, NULL, 10) == id;
            size_t used = (size_t)(nl + 1 - carry);
            memmove(carry, nl + 1, ncarry - used);
            ncarry -= used;
            if (hit)
                return true;
        }
        uint64_t now = bn_now_ns();
        if (now >= end)
            return false;
        struct pollfd pfd = {fd, POLLIN, 0};
        poll(&pfd, 1, (int)((end - now) / 1000000u) + 1);
        ssize_t r = read(fd, carry + ncarry, sizeof carry - 1 - ncarry);
        if (r > 0)
            ncarry += (size_t)r;
        else if (ncarry == sizeof carry - 1)
            ncarry = 0;
    }
}

static bool
wait_ready(int sock)
{
    uint64_t end = bn_now_ns() + DEADLINE_MS * 1000000ull;
    char msg[512];
    for (;;) {
        ssize_t r = recv(sock, msg, sizeof msg - 1, 0);
        if (r > 0) {
            msg[r] = '\0';
            if (strstr(msg, "READY=1"))
                return true;
            continue;
        }
        uint64_t now = bn_now_ns();
        if (now >= end)
            return false;
        struct pollfd pfd = {sock, POLLIN, 0};
        poll(&pfd, 1, (int)((end - now) / 1000000u) + 1);
    }
}

/* environ without NOTIFY_SOCKET, plus extra (NULL-terminated). */
static char **
env_with(char *extra)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    size_t k = 0;
    if (!env)
        bn_die("out of memory");
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0 &&
            strncmp(environ[i], "WORKERS_WORKER_ID=", 18) != 0)
            env[k++] = environ[i];
    env[k++] = extra;
    env[k] = NULL;
    return env;
}

void
bn_signal(const bn_opts *o)
{
    int R = o->reps;
    char dir[] = "/tmp/workers-bench.XXXXXX";
    char fifo[64], ini[64], sockp[64], cmd[160];
    if (!mkdtemp(dir))
        bn_die("mkdtemp: %s", strerror(errno));
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(ini, sizeof ini, "%s/pool.ini", dir);
    snprintf(sockp, sizeof sockp, "%s/notify", dir);
    snprintf(cmd, sizeof cmd, "echo $WORKERS_WORKER_ID >%s && exec sleep 60",
             fifo);
    if (mkfifo(fifo, 0600) != 0)
        bn_die("mkfifo: %s", strerror(errno));
    /* Read-write, so that writers never block and we never see EOF. */
    int ffd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sockp);
    if (ffd < 0 || sock < 0 ||
        bind(sock, (struct sockaddr *)&sa, sizeof sa) != 0)
        bn_die("fifo or notify socket: %s", strerror(errno));
    bn_write_conf(
        ini, "[pool]\nInitial = 1\nCloseTimeout = 5s\n[job]\nCommand = %s\n",
        cmd);

    double *lat = calloc((size_t)R, sizeof(double));
    double *base = calloc((size_t)R, sizeof(double));
    if (!lat || !base)
        bn_die("out of memory");

    /* The baseline first: one spawn of the command, to its line. */
    for (int r = 0; r < R; r++) {
        char idvar[64];
        long id = 1000 + r;
        snprintf(idvar, sizeof idvar, "WORKERS_WORKER_ID=%ld", id);
        char **env = env_with(idvar);
        char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        uint64_t t0 = bn_now_ns();
        int pid = bn_spawn(argv, env, -1);
        if (!wait_marker(ffd, id))
            bn_die("spawned command wrote no line in %d ms", DEADLINE_MS);
        base[r] = (double)(bn_now_ns() - t0) / 1000.0;
        kill(pid, SIGKILL);
        bn_reap(pid, DEADLINE_MS);
        free(env);
    }

    char nsvar[96];
    snprintf(nsvar, sizeof nsvar, "NOTIFY_SOCKET=%s", sockp);
    char **env = env_with(nsvar);
    char *argv[] = {(char *)o->daemon, "-q", "-c", ini, NULL};
    int pid = bn_spawn(argv, env, -1);
    if (!wait_ready(sock))
        bn_die("workersd sent no READY=1 in %d ms", DEADLINE_MS);
    if (!wait_marker(ffd, 1))
        bn_die("workersd's first worker wrote no line in %d ms", DEADLINE_MS);
    for (int r = 0; r < R; r++) {
        uint64_t t0 = bn_now_ns();
        kill(pid, SIGUSR1);
        if (!wait_marker(ffd, r + 2))
            bn_die("worker %d wrote no line %d ms after SIGUSR1", r + 2,
                   DEADLINE_MS);
        lat[r] = (double)(bn_now_ns() - t0) / 1000.0;
    }
    kill(pid, SIGTERM);
    int status = bn_reap(pid, 15000);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "bench: workersd ended with status %#x on SIGTERM\n",
                status);

    bn_section("5. workersd: SIGUSR1 to the new worker's first run (its "
               "command's line read from a FIFO)");
    bn_row row = {.what = "SIGUSR1 -> first run",
                  .unit = "us",
                  .pool = bn_stat_of(lat, R),
                  .base_what = "one spawn, same command",
                  .base = bn_stat_of(base, R),
                  .ratio = NAN,
                  .judge = BN_DIFF_LE,
                  .limit = 1000,
                  .target = "< 1 ms + one spawn"};
    bn_print(&row);

    free(env);
    free(lat);
    free(base);
    close(ffd);
    close(sock);
    unlink(fifo);
    unlink(ini);
    unlink(sockp);
    rmdir(dir);
}
