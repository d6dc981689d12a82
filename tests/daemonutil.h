/*
 * Helpers for the suites that drive the real workersd binary (and the
 * runner itself): temp folders and files, socket paths, spawning with
 * captured output, waiting for log lines, counting the daemon's children,
 * killing what a test left, and a systemd notify socket.
 */
#ifndef WORKERS_DAEMONUTIL_H
#define WORKERS_DAEMONUTIL_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Memory: every string these helpers return is kept reachable until the
 * test process exits, so tests need not free it and LeakSanitizer (which
 * checks each forked test) has nothing to report.
 */

/* Keeps p (malloc'd) reachable; returns it. */
void *du_keep(void *p);

/* A printf-formatted string, kept. */
char *du_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A fresh folder under $TMPDIR or /tmp. */
char *du_mkdtemp(void);

/* Removes path and, if it is a folder, everything under it, whatever the
 * tests did to the modes inside (a mode-000 folder included); says on
 * stderr what it could not remove. */
void du_rmtree(const char *path);
/* A stream connection to the Unix socket at path: its descriptor, or -1
 * with errno. */
int du_connect_unix(const char *path);

/* Writes len bytes of data to dir/name; returns the path. */
char *du_write(const char *dir, const char *name, const char *data, size_t len);
/* As du_write, for a C string. */
char *du_write_str(const char *dir, const char *name, const char *text);

/* The file at path, made (or grown) to size bytes of zeroes at least and
 * mapped shared: a test and the daemon see the same bytes. Kept mapped. */
void *du_map(const char *path, size_t size);

/* The whole file as a C string, "" when missing. */
char *du_read(const char *path);

/* The effective capabilities that let root ignore file modes: off (so a
 * mode-000 file is unreadable even for root) or back on. */
void du_dac_override(bool on);

/*
 * fork(), for every child a test starts (a daemon, a client, a dropped
 * uid): the child is SIGKILLed when the test process ends, passed or
 * failed (a failed assertion ends it at once, before any cleanup), and
 * starts with an empty signal mask. Call it from the test's main thread:
 * the kernel signals the child when the thread that forked it exits.
 */
pid_t du_fork(void);

/*
 * The runner's (check_main.c) folder for the tests' Unix sockets, which it
 * removes at the end: short enough that a name of DU_SOCKET_NAME_MAX bytes
 * fits after it in sun_path (107 bytes), whatever TMPDIR's length.
 */
#define DU_SOCKET_NAME_MAX 40
extern const char *du_socket_dir;

/* du_socket_dir/name (name at most DU_SOCKET_NAME_MAX bytes), kept. */
char *du_socket_path(const char *name);

/*
 * Starts build/workersd with args (NULL-terminated, argv[0] not included)
 * and env_extra ("NAME=value" strings, NULL-terminated, may be NULL) added
 * to the environment, and DIR=dir: a Command names its folder as "$DIR"
 * (an ini line holds 198 bytes, and the folder's path under a long TMPDIR
 * would not fit in it twice). stdin is /dev/null, stdout and stderr go to
 * the files dir/out and dir/err; no descriptor of the test leaks into it.
 * INVOCATION_ID and NOTIFY_SOCKET are not inherited (env_extra may set
 * them): the daemon is not under systemd unless a test says so.
 * drop_dac: the daemon runs without the capabilities of du_dac_override.
 */
pid_t du_spawn(const char *dir, const char *const *args,
               const char *const *env_extra, bool drop_dac);
/* As du_spawn, for another program the build made ("workersctl"). */
pid_t du_spawn_bin(const char *name, const char *dir, const char *const *args,
                   const char *const *env_extra, bool drop_dac);
/* As du_spawn, for the program at path bin (args at most 30). */
pid_t du_spawn_prog(const char *bin, const char *dir, const char *const *args,
                    const char *const *env_extra, bool drop_dac);

/* The RLIMIT_NOFILE (soft, hard) the programs this test process spawns
 * from now on get, set in the child just before exec; 0, 0: its own. */
void du_spawn_nofile(unsigned long soft, unsigned long hard);

/* Waits up to timeout_ms for pid: its exit code, 128 + signal when killed,
 * or -1 on timeout (it is then SIGKILLed and reaped). */
int du_wait(pid_t pid, unsigned timeout_ms);

/* Runs workersd to completion (10 s at most): du_spawn + du_wait. */
int du_run(const char *dir, const char *const *args);

/* How many times needle occurs in the file (0 when missing). */
int du_count_in(const char *path, const char *needle);
/* How many times needle occurs in text. */
int du_count_in_text(const char *text, const char *needle);

/* Waits up to timeout_ms until needle occurs at least n times in path. */
bool du_wait_for(const char *path, const char *needle, int n,
                 unsigned timeout_ms);

/* Live (not zombie) processes whose parent is ppid. */
int du_children(pid_t ppid);

/* Up to max zombie (exited, unreaped) children of ppid into pids; returns
 * how many there are. */
int du_zombies(pid_t ppid, pid_t *pids, int max);

/* One live child of ppid, or -1. */
pid_t du_child(pid_t ppid);

/* The descriptors process pid holds, as "0 1 2" in ascending order. */
char *du_fds(pid_t pid);

/* Waits up to timeout_ms until ppid has exactly n live children. */
bool du_wait_children(pid_t ppid, int n, unsigned timeout_ms);

/*
 * Makes this test process a child subreaper, so the daemon's children and
 * grandchildren that outlive it come to us. Call before du_spawn.
 */
void du_subreaper(void);

/*
 * After the daemon was reaped: reaps whatever came to us and returns true
 * when no descendant is left alive within timeout_ms. On false, kills what
 * is left (so the test process ends clean).
 */
bool du_no_descendants(unsigned timeout_ms);

/* Kills (SIGKILL) every child of this process and the process groups they
 * lead, and reaps them, and whatever comes to it meanwhile (a subreaper's
 * grandchildren), until it has no child left. */
void du_kill_descendants(void);

/* Binds a SOCK_DGRAM socket at path (or, for "@name", an abstract one). */
int du_notify_socket(const char *name);

/* Reads datagrams for up to timeout_ms until one contains needle. */
bool du_notify_expect(int fd, const char *needle, unsigned timeout_ms);
/* As du_notify_expect; returns that datagram (kept), or NULL. */
char *du_notify_get(int fd, const char *needle, unsigned timeout_ms);

#endif
