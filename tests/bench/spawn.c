/*
 * Child processes for the benchmark: spawned with posix_spawn from the main
 * thread, reaped by pid (never waitpid(-1), so the command job's own
 * children are never taken from it).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int
bn_spawn(char *const argv[], char *const envp[], int out_fd)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int err =
        posix_spawn(&pid, argv[0], &fa, NULL, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        bn_die("posix_spawn %s: %s", argv[0], strerror(err));
    return pid;
}

int
bn_reap(int pid, unsigned timeout_ms)
{
    int status;
    uint64_t end = bn_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            bn_die("waitpid %d: %s", pid, strerror(errno));
        if (bn_now_ns() > end) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return status;
        }
        bn_sleep_ns(1000000);
    }
}

size_t
bn_read_all(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        ssize_t r = read(fd, buf + n, len - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

void
bn_write_conf(const char *path, const char *fmt, ...)
{
    va_list ap;
    FILE *f = fopen(path, "we");
    /* workersd refuses a config its group or others may write, which a
     * umask of 002 would make it. */
    if (!f || fchmod(fileno(f), 0600) != 0)
        bn_die("%s: %s", path, strerror(errno));
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    if (fclose(f) != 0)
        bn_die("%s: %s", path, strerror(errno));
}
