/*
 * server.c: the control socket's clients, served on the daemon's loop.
 *
 * Model: one request per connection. A client slot goes through
 *   READING  -- the request line arrives (an ev_io for reading, and the
 *               idle timer: the whole line within WD_CONTROL_IDLE_S of the
 *               connect, so a client sending a byte a second is dropped
 *               like a silent one);
 *   PENDING  -- the handler has the request; no watcher runs, no timer:
 *               the daemon may take its time (stop answers at exit);
 *   WRITING  -- the reply goes out as the client reads it (an ev_io for
 *               writing; the idle timer again, restarted on progress);
 * then the slot is closed and free. Everything runs on the loop thread and
 * no call blocks: every socket is non-blocking, a request fits the slot's
 * fixed buffer, and a client that would need a 17th slot, or may not act,
 * gets its reply at once without taking one (a reply that small always
 * fits an empty socket buffer).
 *
 * Who may act is decided at accept from SO_PEERCRED (the credentials of
 * the connecting process, kept by the kernel) and SO_PEERGROUPS.
 */
#include "control/control.h"
#include "workersd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* How long accept() pauses when descriptors run out (EMFILE): long enough
 * not to spin on the readable socket, short enough to go unnoticed. */
#define ACCEPT_PAUSE_S 0.1
/* Connections taken per readiness, so that a flood cannot starve the
 * loop's other watchers. */
#define ACCEPT_BATCH 32

enum state { FREE, READING, PENDING, WRITING };

struct wd_control_client {
    wd_control *ctl;
    int fd;
    enum state state;
    ev_io io;
    ev_timer idle;
    uid_t uid;
    pid_t pid;
    size_t len;
    char in[WD_CONTROL_REQUEST_MAX];
    char *out; /* the reply with its newline */
    size_t out_len, out_off;
};

struct wd_control {
    struct ev_loop *loop;
    wd_control_handler *handler;
    void *data;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    wd_control_socket sock;
    uid_t self;
    gid_t group;
    ev_io accept_io;
    ev_timer accept_pause;
    /* Lines a client in a loop (or a descriptor shortage) would repeat as
     * fast as it connects: one a second each. */
    struct wd_log_limit denied_log, busy_log, accept_log;
    wd_control_client clients[WD_CONTROL_CLIENTS];
};

/* A reply to a client that has no slot (busy, not permitted): one try,
 * then closed. */
static void
reply_and_close(int fd, json_t *reply)
{
    size_t len;
    char *s = wd_control_reply_text(reply, &len);

    if (s != NULL && send(fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        wd_log(WD_LOG_DEBUG, "control: reply lost: %s", strerror(errno));
    free(s);
    close(fd);
}

/* ---- a client's life --------------------------------------------------- */

static void
close_client(wd_control_client *c)
{
    ev_io_stop(c->ctl->loop, &c->io);
    ev_timer_stop(c->ctl->loop, &c->idle);
    close(c->fd);
    free(c->out);
    c->out = NULL;
    c->fd = -1;
    c->state = FREE;
}

static void
restart_idle(wd_control_client *c)
{
    ev_timer_stop(c->ctl->loop, &c->idle);
    ev_timer_set(&c->idle, WD_CONTROL_IDLE_S, 0.);
    ev_timer_start(c->ctl->loop, &c->idle);
}

/* Writes what the socket takes: true when the reply is out or the client
 * gone (close it), false when the rest must wait for writability. */
static bool
write_some(wd_control_client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno != EAGAIN;
        c->out_off += (size_t)n;
    }
    return true;
}

static void
on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    wd_control_client *c = w->data;
    size_t before = c->out_off;

    (void)loop, (void)revents;
    if (write_some(c))
        close_client(c);
    else if (c->out_off != before)
        restart_idle(c);
}

void
wd_control_reply(wd_control_client *c, json_t *reply)
{
    size_t len = 0;

    if (c->state != PENDING) {
        json_decref(reply);
        return;
    }
    char *text = wd_control_reply_text(reply, &len);
    wd_control_reply_wire(c, text, len);
}

void
wd_control_reply_wire(wd_control_client *c, char *text, size_t len)
{
    if (c->state != PENDING) {
        free(text);
        return;
    }
    c->out = text;
    c->out_len = len;
    c->out_off = 0;
    c->state = WRITING;
    if (c->out == NULL || write_some(c)) {
        close_client(c);
        return;
    }
    ev_io_init(&c->io, on_writable, c->fd, EV_WRITE);
    c->io.data = c;
    ev_io_start(c->ctl->loop, &c->io);
    restart_idle(c);
}

/* The request is over (whole, or not to be): stop reading it. */
static void
stop_reading(wd_control_client *c)
{
    ev_io_stop(c->ctl->loop, &c->io);
    ev_timer_stop(c->ctl->loop, &c->idle);
    c->state = PENDING;
}

/* Hands the request line (c->len bytes, no newline) to the handler. */
static void
dispatch(wd_control_client *c)
{
    wd_control *ctl = c->ctl;
    wd_control_request req;
    char err[256];
    bool nul;

    stop_reading(c);
    if (c->len > 0 && c->in[c->len - 1] == '\r')
        c->len--;
    c->in[c->len] = '\0';
    if ((nul = strlen(c->in) != c->len))
        wd_control_errf(err, sizeof err, "NUL byte in the request");
    if (nul || wd_control_parse(c->in, &req, err, sizeof err) != 0) {
        wd_log(WD_LOG_DEBUG, "control: uid %ld pid %ld: %s", (long)c->uid,
               (long)c->pid, err);
        wd_control_reply(c, wd_control_fail(WD_CONTROL_EXIT_USAGE, "%s", err));
        return;
    }
    req.uid = c->uid;
    req.pid = c->pid;
    wd_log(WD_LOG_DEBUG, "control: uid %ld pid %ld: %s", (long)c->uid,
           (long)c->pid, c->in);
    ctl->handler(ctl->data, c, &req);
}

static void
on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    wd_control_client *c = w->data;
    ssize_t n;
    char *nl;

    (void)loop, (void)revents;
    n = read(c->fd, c->in + c->len, sizeof c->in - c->len);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            close_client(c);
        return;
    }
    if (n == 0) {
        /* The client's writes ended: what came is the request (a probe
         * that sent nothing, e.g. a starting daemon's, just goes). */
        if (c->len == 0)
            close_client(c);
        else
            dispatch(c);
        return;
    }
    nl = memchr(c->in + c->len, '\n', (size_t)n);
    c->len += (size_t)n;
    if (nl != NULL) {
        c->len = (size_t)(nl - c->in);
        dispatch(c);
    } else if (c->len == sizeof c->in) {
        stop_reading(c);
        wd_control_reply(c, wd_control_fail(WD_CONTROL_EXIT_USAGE,
                                            "request too long (more than %d "
                                            "bytes)",
                                            WD_CONTROL_REQUEST_MAX));
    }
}

static void
on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    wd_control_client *c = w->data;

    (void)loop, (void)revents;
    if (c->state == READING) {
        wd_log(WD_LOG_INFO,
               "control: uid %ld pid %ld sent no whole request within %gs: "
               "dropped",
               (long)c->uid, (long)c->pid, WD_CONTROL_IDLE_S);
        stop_reading(c);
        wd_control_reply(c, wd_control_fail(WD_CONTROL_EXIT_USAGE,
                                            "no whole request within %gs",
                                            WD_CONTROL_IDLE_S));
        return;
    }
    close_client(c); /* WRITING: the client does not read its reply */
}

/* ---- accepting -------------------------------------------------------------
 */

/* Whether the peer's supplementary groups hold group. */
static bool
in_peer_groups(int fd, gid_t group)
{
    gid_t some[64], *groups = some;
    socklen_t len = sizeof some;
    bool found = false;
    int rc;

    rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
    /* ERANGE: more groups than fit; len is now the size they need. */
    if (rc != 0 && errno == ERANGE && (groups = malloc(len)) != NULL)
        rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
    for (size_t i = 0; rc == 0 && i < len / sizeof(gid_t) && !found; i++)
        found = groups[i] == group;
    if (groups != some)
        free(groups);
    return found;
}

/* Whether the peer with these credentials may act. */
static bool
permitted(const wd_control *ctl, int fd, const struct ucred *cred)
{
    if (cred->uid == 0 || cred->uid == ctl->self)
        return true;
    if (ctl->group == (gid_t)-1)
        return false;
    return cred->gid == ctl->group || in_peer_groups(fd, ctl->group);
}

static void
take_client(wd_control *ctl, int fd)
{
    struct ucred cred = {0, (uid_t)-1, (gid_t)-1};
    socklen_t len = sizeof cred;
    wd_control_client *c = NULL;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        !permitted(ctl, fd, &cred)) {
        wd_log_limited(
            &ctl->denied_log, WD_LOG_WARNING,
            "control: permission denied to uid %ld pid %ld (only root, "
            "uid %ld%s may act)",
            (long)cred.uid, (long)cred.pid, (long)ctl->self,
            ctl->group != (gid_t)-1 ? " and the socket's group" : "");
        reply_and_close(
            fd, wd_control_fail(WD_CONTROL_EXIT_REFUSED, "permission denied"));
        return;
    }
    for (size_t i = 0; i < WD_CONTROL_CLIENTS && c == NULL; i++)
        if (ctl->clients[i].state == FREE)
            c = &ctl->clients[i];
    if (c == NULL) {
        wd_log_limited(
            &ctl->busy_log, WD_LOG_WARNING,
            "control: %d clients already: uid %ld pid %ld told to retry",
            WD_CONTROL_CLIENTS, (long)cred.uid, (long)cred.pid);
        reply_and_close(fd, wd_control_fail(WD_CONTROL_EXIT_REFUSED,
                                            "busy: %d clients already, try "
                                            "again",
                                            WD_CONTROL_CLIENTS));
        return;
    }
    c->fd = fd;
    c->state = READING;
    c->uid = cred.uid;
    c->pid = cred.pid;
    c->len = 0;
    ev_io_init(&c->io, on_readable, fd, EV_READ);
    c->io.data = c;
    ev_io_start(ctl->loop, &c->io);
    restart_idle(c);
}

static void
on_accept_pause(struct ev_loop *loop, ev_timer *w, int revents)
{
    wd_control *ctl = w->data;

    (void)revents;
    ev_io_start(loop, &ctl->accept_io);
}

static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    wd_control *ctl = w->data;

    (void)revents;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd =
            accept4(ctl->sock.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            take_client(ctl, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
            wd_log_limited(&ctl->accept_log, WD_LOG_WARNING,
                           "control: accept: %s: pausing %gs", strerror(errno),
                           ACCEPT_PAUSE_S);
            ev_io_stop(loop, &ctl->accept_io);
            ev_timer_set(&ctl->accept_pause, ACCEPT_PAUSE_S, 0.);
            ev_timer_start(loop, &ctl->accept_pause);
        }
        return;
    }
}

/* ---- the server -------------------------------------------------------------
 */

int
wd_control_open(struct ev_loop *loop, const wd_control_settings *s,
                wd_control **out, char *err, size_t errlen)
{
    wd_control *ctl;
    int rc;

    *out = NULL;
    if ((ctl = calloc(1, sizeof *ctl)) == NULL) {
        wd_control_errf(err, errlen, "control socket: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    rc = wd_control_path(s->ini_path, s->socket, geteuid(),
                         getenv("XDG_RUNTIME_DIR"), ctl->path, sizeof ctl->path,
                         err, errlen);
    if (rc <= 0) {
        if (rc == 0 && err[0] != '\0')
            wd_log(WD_LOG_WARNING, "%s", err);
        free(ctl);
        return rc;
    }
    if ((rc = wd_control_listen(ctl->path, s->mode ? s->mode : 0600, s->group,
                                &ctl->sock, err, errlen)) != 0) {
        free(ctl);
        return rc;
    }
    ctl->loop = loop;
    ctl->handler = s->handler;
    ctl->data = s->data;
    ctl->self = geteuid();
    ctl->group = s->group;
    for (size_t i = 0; i < WD_CONTROL_CLIENTS; i++) {
        wd_control_client *c = &ctl->clients[i];
        c->ctl = ctl;
        c->fd = -1;
        ev_init(&c->io, on_readable);
        ev_init(&c->idle, on_idle);
        c->idle.data = c;
    }
    ev_io_init(&ctl->accept_io, on_accept, ctl->sock.fd, EV_READ);
    ctl->accept_io.data = ctl;
    ev_init(&ctl->accept_pause, on_accept_pause);
    ctl->accept_pause.data = ctl;
    ev_io_start(loop, &ctl->accept_io);
    wd_log(WD_LOG_INFO, "control socket %s", ctl->path);
    *out = ctl;
    return 0;
}

const char *
wd_control_path_of(const wd_control *ctl)
{
    return ctl->path;
}

void
wd_control_free(wd_control *ctl)
{
    if (ctl == NULL)
        return;
    for (size_t i = 0; i < WD_CONTROL_CLIENTS; i++) {
        wd_control_client *c = &ctl->clients[i];
        if (c->state == WRITING)
            write_some(c);
        if (c->state != FREE)
            close_client(c);
    }
    ev_io_stop(ctl->loop, &ctl->accept_io);
    ev_timer_stop(ctl->loop, &ctl->accept_pause);
    wd_control_unlink(ctl->path, &ctl->sock);
    free(ctl);
}
