/*
 * control/: workersd's control channel, a Unix stream socket that
 * workersctl(1) talks to. One request line per connection, one JSON reply.
 *
 * Layers, each in its own file:
 * - path.c: where the socket lives ([control] Socket, or the default made
 *   from the ini file's name); shared with workersctl, so `workersctl -c
 *   INI` finds exactly the socket the daemon made from INI;
 * - request.c: a request line parsed into a typed wd_control_request
 *   (shared with workersctl, which checks its command line the same way);
 * - socket.c: the socket file: a stale one replaced, a live one refused,
 *   its mode and group, its removal;
 * - server.c: the clients, served on the daemon's libev loop;
 * - reply.c: the replies' JSON.
 *
 * Threads: the server (wd_control_open/free, the handler, wd_control_reply)
 * lives on the loop thread only; it never blocks it: every client socket is
 * non-blocking, a request is at most WD_CONTROL_REQUEST_MAX bytes, at most
 * WD_CONTROL_CLIENTS are served at once (one more gets a "busy" reply), and
 * a client that has not sent its whole request within WD_CONTROL_IDLE_S
 * seconds is answered with an error (exit 64), and one that does not read
 * its reply within them is closed. path.c and request.c
 * are pure functions, safe from any thread.
 *
 * The protocol (documented for users in workersctl(1)):
 *   request: one line, "COMMAND [ARG]\n" (the newline may be replaced by
 *            the end of the client's writes), e.g. "set 4", "stop 10s";
 *   reply:   one line, a JSON object, then the server closes:
 *            {"ok":true,"message":"workers: 4 -> 6 (max reached)", ...} or
 *            {"ok":false,"error":"...","exit":1}.
 *   "exit", when present, is the exit code workersctl returns; without it
 *   workersctl returns 0 for ok and 1 otherwise. "text", when present, is
 *   printed as it is (metrics); the other members are the command's data.
 */
#ifndef WD_CONTROL_H
#define WD_CONTROL_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The bounds the server enforces (see above). */
#define WD_CONTROL_REQUEST_MAX 4096 /* bytes, the newline included */
#define WD_CONTROL_CLIENTS 16
#define WD_CONTROL_IDLE_S 5.0
/* The largest N of set/more/less: far above any pool, and small enough that
 * the daemon's current + N cannot overflow an int. */
#define WD_CONTROL_MAX_N 1000000

/* The exit codes a reply's "exit" carries, and workersctl's own (sysexits
 * where one fits). stop's reply carries the daemon's exit code instead. */
#define WD_CONTROL_EXIT_OK 0
#define WD_CONTROL_EXIT_REFUSED 1      /* a limit, permission, busy */
#define WD_CONTROL_EXIT_USAGE 64       /* EX_USAGE: a malformed request */
#define WD_CONTROL_EXIT_UNAVAILABLE 69 /* EX_UNAVAILABLE: no daemon there */
#define WD_CONTROL_EXIT_CONFIG 78      /* EX_CONFIG: a refused reload */

/* ---- path.c: where the socket is ------------------------------------- */

/* The module's error messages: formats one line into err, returns -1. */
int wd_control_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The socket path for an ini file and its [control] Socket value:
 * - socket NULL (no Socket key): /run/workersd/NAME.sock when uid is 0,
 *   else RUNTIME_DIR/workersd/NAME.sock with runtime_dir the caller's
 *   $XDG_RUNTIME_DIR; NAME is the ini file's name without ".ini" ("pool"
 *   when ini_path is NULL);
 * - socket "none": off;
 * - else socket itself (an absolute path, see wd_control_socket_invalid).
 * Returns 1 with the path in out; 0 when off, with err "" for "none" or
 * the reason the default does not exist (not root and no runtime_dir); -1
 * with a one-line message in err when the path does not fit in a
 * sockaddr_un or in out. Pure: reads no file and no environment.
 */
int wd_control_path(const char *ini_path, const char *socket, uid_t uid,
                    const char *runtime_dir, char *out, size_t outlen,
                    char *err, size_t errlen);

/* Why value is not a valid [control] Socket ("none" or an absolute path
 * short enough for sun_path), or NULL when it is. */
const char *wd_control_socket_invalid(const char *value);

/*
 * [control] Socket of the ini file at ini_path, read leniently: only that
 * key is looked at, so a file the daemon would now refuse (an edit about
 * to be reloaded) still names its socket; for every file the daemon
 * accepts, this is the value the daemon read. Returns 0 with *socket
 * malloc'd (NULL when the key is absent; the caller frees it), or -1 with
 * a message in err when the file cannot be read.
 */
int wd_control_ini_socket(const char *ini_path, char **socket, char *err,
                          size_t errlen);

/* ---- request.c: what a client asks -------------------------------------- */

enum wd_control_cmd {
    WD_CONTROL_STATUS,    /* the daemon's state (see workersctl(1)) */
    WD_CONTROL_SET,       /* exactly n workers */
    WD_CONTROL_MORE,      /* n more workers, up to Max */
    WD_CONTROL_LESS,      /* n fewer workers, down to Min */
    WD_CONTROL_PAUSE,     /* runs in progress finish, no new run starts */
    WD_CONTROL_RESUME,    /* runs start again */
    WD_CONTROL_RELOAD,    /* as SIGHUP: re-read the ini file */
    WD_CONTROL_STOP,      /* as SIGTERM, replied to once the daemon exits */
    WD_CONTROL_METRICS,   /* Prometheus text, in the reply's "text" */
    WD_CONTROL_AUTOSCALE, /* autoscaling on or off */
};

/* A parsed, valid request: the handler need not check its arguments. */
typedef struct wd_control_request {
    enum wd_control_cmd cmd;
    /* SET: 0..WD_CONTROL_MAX_N; MORE, LESS: 1..WD_CONTROL_MAX_N (1 when
     * not given); 0 for the other commands. Min/Max are the daemon's to
     * check. */
    int n;
    bool on;             /* AUTOSCALE: on (true) or off */
    bool has_timeout;    /* STOP: a close deadline was given ... */
    uint64_t timeout_ns; /* ... this one (0 = no deadline) */
    uid_t uid;           /* who asked (SO_PEERCRED), for log lines; */
    pid_t pid;           /* set by the server, not by the parser */
} wd_control_request;

/*
 * Parses one request line (no newline; words separated by blanks):
 * "status", "set N", "more [N]", "less [N]", "pause", "resume", "reload",
 * "stop [DURATION]", "metrics", "autoscale on|off". Returns 0 with *req
 * filled (uid and pid 0), or -1 with a one-line message in err naming the
 * word at fault ("set: 'x' is not a whole number from 0 to 1000000").
 */
int wd_control_parse(const char *line, wd_control_request *req, char *err,
                     size_t errlen);

/* The command's name as a request spells it ("set"). */
const char *wd_control_cmd_name(enum wd_control_cmd cmd);

/* ---- socket.c: the socket file ---------------------------------------- */

/* A bound, listening socket file. */
typedef struct wd_control_socket {
    int fd;    /* non-blocking, close-on-exec */
    dev_t dev; /* the file's identity, so that wd_control_unlink never */
    ino_t ino; /* removes a socket another process put there later */
} wd_control_socket;

/*
 * Binds and listens on path with mode (permission bits; must include 0600)
 * and, when group is not (gid_t)-1, that group. A missing parent folder is
 * made (one level: mode 0700, plus search permission for the group or
 * others when mode grants them access). A socket file no one listens on
 * (ECONNREFUSED: a crashed daemon's) is replaced; one that answers, or a
 * path that is not a socket, is refused. Nobody can connect before the
 * mode and group are set (listen comes last). Returns 0, or < 0 with a
 * one-line message naming the path in err (nothing is left behind):
 * -errno when no socket could be made (descriptors, memory), -1 for the
 * rest (the path, its mode, a live daemon on it).
 */
int wd_control_listen(const char *path, unsigned mode, gid_t group,
                      wd_control_socket *out, char *err, size_t errlen);

/* Closes the socket and removes its file, if the file is still ours. */
void wd_control_unlink(const char *path, wd_control_socket *s);

/* ---- server.c: serving clients on the loop ------------------------------ */

typedef struct wd_control wd_control;

/* One client's pending request, to answer with wd_control_reply(). */
typedef struct wd_control_client wd_control_client;

/*
 * The daemon's side: called on the loop thread for each request of an
 * authorised client that parsed (malformed ones are answered by the
 * server, exit 64). The handler must answer it exactly once with
 * wd_control_reply(), before returning or later from any loop callback
 * (stop answers once the daemon's exit code is known). req is valid for
 * the call only; client until it is answered or the server freed. Do not
 * call wd_control_free() from the handler.
 */
typedef void wd_control_handler(void *data, wd_control_client *client,
                                const wd_control_request *req);

typedef struct wd_control_settings {
    const char *ini_path; /* for the default socket name */
    const char *socket;   /* [control] Socket: NULL default, "none" off */
    unsigned mode;        /* [control] SocketMode; 0 = 0600 */
    gid_t group;          /* [control] SocketGroup; (gid_t)-1 = none */
    wd_control_handler *handler;
    void *data; /* the handler's first argument */
} wd_control_settings;

/*
 * Opens the control socket (wd_control_path with the process's euid and
 * $XDG_RUNTIME_DIR, then wd_control_listen) and serves it on loop, which
 * must outlive the server. Only root, the daemon's own euid and, when a
 * group is set, its members (primary or supplementary group, by
 * SO_PEERCRED and SO_PEERGROUPS) may act; anyone else is answered
 * "permission denied" and logged (a warning with uid and pid). Returns 0
 * with *out, which is NULL when the socket is off (Socket = none, or no
 * default path: then a warning is logged); < 0 with a one-line message
 * naming the socket in err, a start-up error: as wd_control_listen, -errno
 * for a resource that ran out (workersd exits 70), -1 for the
 * configuration (78).
 * Loop thread only.
 */
int wd_control_open(struct ev_loop *loop, const wd_control_settings *s,
                    wd_control **out, char *err, size_t errlen);

/* The socket's path (for log lines). */
const char *wd_control_path_of(const wd_control *ctl);

/*
 * Answers client's request with reply (a JSON object; the reference is
 * stolen; NULL stands for an out-of-memory error). The reply is written
 * without blocking, and the client closed once it is. A client that went
 * away meanwhile is dropped quietly. Loop thread only; each client is
 * answered exactly once.
 */
void wd_control_reply(wd_control_client *client, json_t *reply);

/* As wd_control_reply, for a reply whose wire text is made already (a
 * large one, the status of 1,000 workers, rendered as text without a
 * jansson tree): text, malloc'd, is one JSON object and a newline, len
 * bytes, and is stolen (NULL: the client is closed without a reply). */
void wd_control_reply_wire(wd_control_client *client, char *text, size_t len);

/* ---- reply.c: replies ------------------------------------------------- */

/*
 * Replies: {"ok":true,"message":MSG} and {"ok":false,"error":MSG,
 * "exit":exit_code}; add members with json_object_set_new. NULL when out
 * of memory (wd_control_reply accepts it). Invalid UTF-8 in MSG is
 * replaced by U+FFFD, so the reply is always valid JSON.
 */
json_t *wd_control_ok(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
json_t *wd_control_fail(int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For the daemon's own string members (a Command, an error text) use
 * metrics/metrics.h's wd_json_text: invalid UTF-8 becomes U+FFFD. */

/* The reply's wire text: compact JSON and a newline, malloc'd (NULL when
 * out of memory); steals reply. A NULL reply, or one that cannot be
 * dumped, becomes an "out of memory" error reply. */
char *wd_control_reply_text(json_t *reply, size_t *len);

/*
 * Writes what replies can be written without blocking (a stop reply made
 * after the loop ended), closes every client (a pending one without a
 * reply: answer them first), closes the socket and removes its file.
 * NULL is a no-op. Loop thread only, not from the handler.
 */
void wd_control_free(wd_control *ctl);

#endif /* WD_CONTROL_H */
