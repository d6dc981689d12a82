/* Helpers for the suites that drive workersd: see daemonutil.h. */
#include "daemonutil.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void **kept;
static size_t nkept;

void *
du_keep(void *p)
{
    void **grown = realloc(kept, (nkept + 1) * sizeof *kept);

    if (p == NULL || grown == NULL)
        abort();
    kept = grown;
    kept[nkept++] = p;
    return p;
}

char *
du_fmt(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return du_keep(s);
}

char *
du_mkdtemp(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir;

    dir = du_fmt("%s/wdtest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        abort();
    return dir;
}

/* Removes name under dirfd and all it holds, whatever the tests did to the
 * modes inside (a mode-000 folder included). */
static void
remove_at(int dirfd, const char *name)
{
    struct dirent *e;
    DIR *d;
    int fd;

    if (unlinkat(dirfd, name, 0) == 0 || errno != EISDIR)
        return;
    fchmodat(dirfd, name, 0700, 0);
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && (d = fdopendir(fd)) != NULL) {
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                remove_at(fd, e->d_name);
        closedir(d);
    } else if (fd >= 0) {
        close(fd);
    }
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0)
        fprintf(stderr, "cannot remove %s: %s\n", name, strerror(errno));
}

void
du_rmtree(const char *path)
{
    remove_at(AT_FDCWD, path);
}

int
du_connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

char *
du_write(const char *dir, const char *name, const char *data, size_t len)
{
    char *path = du_fmt("%s/%s", dir, name);
    FILE *f = fopen(path, "we");

    if (f == NULL)
        abort();
    if (fwrite(data, 1, len, f) != len || fclose(f) != 0)
        abort();
    return path;
}

char *
du_write_str(const char *dir, const char *name, const char *text)
{
    return du_write(dir, name, text, strlen(text));
}

void *
du_map(const char *path, size_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    void *m = MAP_FAILED;

    if (fd >= 0 && ftruncate(fd, (off_t)size) == 0)
        m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0)
        close(fd);
    if (m == MAP_FAILED)
        abort();
    return m;
}

/* The file's text, malloc'd. */
static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0;

    if (f == NULL)
        return strdup("");
    FILE *mem = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(mem);
    fclose(f);
    return buf;
}

#define DAC_CAPS ((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH))

void
du_dac_override(bool on)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];

    if (syscall(SYS_capget, &hdr, data) != 0)
        return;
    if (on)
        data[0].effective |= data[0].permitted & DAC_CAPS;
    else
        data[0].effective &= ~DAC_CAPS;
    syscall(SYS_capset, &hdr, data);
}

pid_t
du_spawn(const char *dir, const char *const *args, const char *const *env_extra,
         bool drop_dac)
{
    return du_spawn_bin("workersd", dir, args, env_extra, drop_dac);
}

pid_t
du_spawn_bin(const char *name, const char *dir, const char *const *args,
             const char *const *env_extra, bool drop_dac)
{
    char *bin = tu_build_path(name);
    pid_t pid = du_spawn_prog(bin, dir, args, env_extra, drop_dac);

    free(bin);
    return pid;
}

pid_t
du_fork(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    sigset_t none;

    if (pid < 0)
        abort();
    if (pid > 0)
        return pid;
    /* Check kills the test's process group when the test ends, but not
     * under CK_FORK=no, nor a child that leaves the group; this reaches
     * them all. The parent may have died before prctl: then it never
     * fires, and getppid() tells. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
        _exit(127);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    return 0;
}

const char *du_socket_dir;

char *
du_socket_path(const char *name)
{
    if (du_socket_dir == NULL || strlen(name) > DU_SOCKET_NAME_MAX) {
        fprintf(stderr, "socket %s: no folder, or longer than %d bytes\n", name,
                DU_SOCKET_NAME_MAX);
        abort();
    }
    return du_fmt("%s/%s", du_socket_dir, name);
}

static struct rlimit spawn_nofile; /* {0, 0}: the test's own */

void
du_spawn_nofile(unsigned long soft, unsigned long hard)
{
    spawn_nofile = (struct rlimit){soft, hard};
}

/*
 * Running as root, a workersd's default control socket is
 * /run/workersd/NAME.sock: two suites (or two `make check` at once) running
 * a pool.ini would meet there, the second refused. So the ini file of a
 * "-c FILE" that has no [control] section of its own gets "Socket = none"
 * appended: only the suites that test the socket (check_wire.c) have one.
 * Only files in a du_mkdtemp() folder: the shipped conf/ files are run
 * with -t, which opens no socket. workersctl's own -c is left alone: it
 * reads the socket from the file.
 */
static void
quiet_control(const char *bin, const char *const *args)
{
    const char *base = strrchr(bin, '/');
    if (strcmp(base != NULL ? base + 1 : bin, "workersctl") == 0)
        return;
    for (size_t i = 0; args[i] != NULL && args[i + 1] != NULL; i++) {
        struct stat st;
        const char *ini = args[i + 1];
        if (strcmp(args[i], "-c") != 0 || strstr(ini, "/wdtest.") == NULL ||
            stat(ini, &st) != 0 || !S_ISREG(st.st_mode) ||
            strstr(du_read(ini), "[control]") != NULL)
            continue;
        FILE *f = fopen(ini, "a");
        if (f != NULL) {
            fputs("\n[control]\nSocket = none\n", f);
            fclose(f);
        }
    }
}

pid_t
du_spawn_prog(const char *bin, const char *dir, const char *const *args,
              const char *const *env_extra, bool drop_dac)
{
    char *out, *err, *dirvar;
    const char *argv[32];
    size_t n = 0;
    pid_t pid;

    quiet_control(bin, args);
    argv[n++] = bin;
    for (; args[n - 1] != NULL && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    if (asprintf(&out, "%s/out", dir) < 0 ||
        asprintf(&err, "%s/err", dir) < 0 ||
        asprintf(&dirvar, "DIR=%s", dir) < 0)
        abort();

    pid = du_fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);

        if (in < 0 || o < 0 || e < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 ||
            dup2(e, 2) < 0)
            _exit(127);
        /* Check's own descriptors are not close-on-exec: keep them from
         * the daemon, whose children are checked for leaks. */
        closefrom(3);
        /* Not under systemd unless a test says so: the start line and the
         * notifications depend on these. */
        unsetenv("INVOCATION_ID");
        unsetenv("NOTIFY_SOCKET");
        putenv(dirvar);
        for (; env_extra != NULL && *env_extra != NULL; env_extra++)
            putenv((char *)*env_extra);
        if (drop_dac) {
            /* Out of the bounding set, root's exec gets them back no more. */
            prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0);
            prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0);
        }
        if (spawn_nofile.rlim_max != 0 &&
            setrlimit(RLIMIT_NOFILE, &spawn_nofile) != 0)
            _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    free(out);
    free(err);
    free(dirvar);
    return pid;
}

int
du_wait(pid_t pid, unsigned timeout_ms)
{
    uint64_t end = tu_now_ms() + timeout_ms;
    int st;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR)
            return -1;
        if (tu_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        tu_sleep_ms(2);
    }
}

int
du_run(const char *dir, const char *const *args)
{
    return du_wait(du_spawn(dir, args, NULL, false), TU_DEADLINE_MS);
}

char *
du_read(const char *path)
{
    return du_keep(read_file(path));
}

int
du_count_in_text(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = text; (p = strstr(p, needle)) != NULL;
         p += strlen(needle))
        n++;
    return n;
}

int
du_count_in(const char *path, const char *needle)
{
    char *text = read_file(path);
    int n = du_count_in_text(text, needle);

    free(text);
    return n;
}

bool
du_wait_for(const char *path, const char *needle, int n, unsigned timeout_ms)
{
    uint64_t end = tu_now_ms() + timeout_ms;

    for (;;) {
        if (du_count_in(path, needle) >= n)
            return true;
        if (tu_now_ms() >= end)
            return false;
        tu_sleep_ms(2);
    }
}

/* Calls fn(pid, ppid, state, arg) for every process in /proc. */
static void
each_process(void (*fn)(pid_t, pid_t, char, void *), void *arg)
{
    DIR *d = opendir("/proc");
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char path[300], buf[512], *rp, state;
        int ppid;
        FILE *f;

        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        if ((f = fopen(path, "re")) == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* The command name may hold spaces and ')': skip to the last ')'. */
        if ((rp = strrchr(buf, ')')) == NULL ||
            sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
            continue;
        fn(atoi(de->d_name), ppid, state, arg);
    }
    closedir(d);
}

struct count {
    pid_t ppid;
    int n;
    pid_t last;
};

static void
count_one(pid_t pid, pid_t ppid, char state, void *arg)
{
    struct count *c = arg;

    if (ppid == c->ppid && state != 'Z' && state != 'X') {
        c->n++;
        c->last = pid;
    }
}

struct zombies {
    pid_t ppid;
    pid_t *pids;
    int max, n;
};

static void
zombie_one(pid_t pid, pid_t ppid, char state, void *arg)
{
    struct zombies *z = arg;

    if (ppid == z->ppid && state == 'Z') {
        if (z->n < z->max)
            z->pids[z->n] = pid;
        z->n++;
    }
}

int
du_zombies(pid_t ppid, pid_t *pids, int max)
{
    struct zombies z = {ppid, pids, max, 0};

    each_process(zombie_one, &z);
    return z.n;
}

pid_t
du_child(pid_t ppid)
{
    struct count c = {ppid, 0, -1};

    each_process(count_one, &c);
    return c.last;
}

static int
cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

char *
du_fds(pid_t pid)
{
    char path[64], *out = NULL;
    int fds[256], n = 0;
    size_t len = 0;
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
    if ((d = opendir(path)) == NULL)
        return du_fmt("?");
    while ((de = readdir(d)) != NULL && n < 256)
        if (de->d_name[0] != '.')
            fds[n++] = atoi(de->d_name);
    closedir(d);
    qsort(fds, (size_t)n, sizeof fds[0], cmp_int);
    FILE *f = open_memstream(&out, &len);
    for (int i = 0; i < n; i++)
        fprintf(f, i ? " %d" : "%d", fds[i]);
    fclose(f);
    return du_keep(out);
}

int
du_children(pid_t ppid)
{
    struct count c = {ppid, 0, -1};

    each_process(count_one, &c);
    return c.n;
}

bool
du_wait_children(pid_t ppid, int n, unsigned timeout_ms)
{
    uint64_t end = tu_now_ms() + timeout_ms;

    for (;;) {
        if (du_children(ppid) == n)
            return true;
        if (tu_now_ms() >= end)
            return false;
        tu_sleep_ms(2);
    }
}

void
du_subreaper(void)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

/* A job leads its process group: the group goes with it. */
static void
kill_child(pid_t pid, pid_t ppid, char state, void *arg)
{
    (void)state, (void)arg;
    if (ppid == getpid()) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
}

void
du_kill_descendants(void)
{
    const struct timespec pace = {0, 2 * 1000 * 1000};

    each_process(kill_child, NULL);
    for (;;) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r < 0 && errno == ECHILD)
            return;
        /* What a killed process left comes to us (a subreaper) after it. */
        if (r == 0) {
            nanosleep(&pace, NULL);
            each_process(kill_child, NULL);
        }
    }
}

bool
du_no_descendants(unsigned timeout_ms)
{
    uint64_t end = tu_now_ms() + timeout_ms;

    for (;;) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r < 0 && errno == ECHILD)
            return true;
        if (r > 0)
            continue;
        if (tu_now_ms() >= end)
            break;
        tu_sleep_ms(2);
    }
    du_kill_descendants();
    return false;
}

int
du_notify_socket(const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || len >= sizeof sa.sun_path)
        abort();
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    if (bind(fd, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) != 0)
        abort();
    return fd;
}

bool
du_notify_expect(int fd, const char *needle, unsigned timeout_ms)
{
    return du_notify_get(fd, needle, timeout_ms) != NULL;
}

char *
du_notify_get(int fd, const char *needle, unsigned timeout_ms)
{
    uint64_t end = tu_now_ms() + timeout_ms;
    char buf[1024];

    for (;;) {
        uint64_t now = tu_now_ms();
        struct pollfd pfd = {fd, POLLIN, 0};

        if (now >= end)
            return NULL;
        if (poll(&pfd, 1, (int)(end - now)) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0)
            continue;
        buf[n] = '\0';
        if (strstr(buf, needle) != NULL)
            return du_fmt("%s", buf);
    }
}
