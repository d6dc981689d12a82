/*
 * path.c: where the control socket lives. Linked by workersd and by
 * workersctl, so that `workersctl -c INI` computes the very path the
 * daemon bound for INI: the same default, the same name rule, the same
 * checks. Pure functions but wd_control_ini_socket, which reads the file.
 */
#include "control/control.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

/* The longest path a sockaddr_un holds, its NUL aside. */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
_Static_assert(SUN_PATH_MAX == 107, "the messages below say 107 bytes");

int
wd_control_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

const char *
wd_control_socket_invalid(const char *value)
{
    size_t len = strlen(value);

    if (strcasecmp(value, "none") == 0)
        return NULL;
    if (value[0] != '/')
        return "not an absolute path (or none)";
    if (value[len - 1] == '/')
        return "a folder, not a socket path";
    if (len > SUN_PATH_MAX)
        return "too long for a Unix socket (at most 107 bytes)";
    return NULL;
}

/* The ini file's name without its folder and ".ini": "pool". */
static void
base_name(const char *ini_path, const char **name, int *len)
{
    const char *slash = strrchr(ini_path, '/');
    size_t n;

    *name = slash ? slash + 1 : ini_path;
    n = strlen(*name);
    if (n > 4 && strcmp(*name + n - 4, ".ini") == 0)
        n -= 4;
    *len = n > 200 ? 200 : (int)n;
}

int
wd_control_path(const char *ini_path, const char *socket, uid_t uid,
                const char *runtime_dir, char *out, size_t outlen, char *err,
                size_t errlen)
{
    const char *why, *name = "pool";
    int n, len = 4;

    err[0] = '\0';
    if (socket != NULL) {
        if ((why = wd_control_socket_invalid(socket)) != NULL) {
            snprintf(err, errlen, "control socket %s: %s", socket, why);
            return -1;
        }
        if (strcasecmp(socket, "none") == 0)
            return 0;
        n = snprintf(out, outlen, "%s", socket);
    } else {
        if (ini_path != NULL)
            base_name(ini_path, &name, &len);
        if (uid == 0) {
            n = snprintf(out, outlen, "/run/workersd/%.*s.sock", len, name);
        } else if (runtime_dir != NULL && runtime_dir[0] == '/') {
            n = snprintf(out, outlen, "%s/workersd/%.*s.sock", runtime_dir, len,
                         name);
        } else {
            snprintf(err, errlen,
                     "no default control socket: not root and "
                     "XDG_RUNTIME_DIR is not set (set [control] Socket = "
                     "PATH, or none)");
            return 0;
        }
    }
    if (n < 0 || (size_t)n >= outlen || (size_t)n > SUN_PATH_MAX) {
        snprintf(err, errlen,
                 "control socket %.*s...: too long for a Unix socket (at "
                 "most 107 bytes): set [control] Socket to a shorter path",
                 60, out);
        return -1;
    }
    return 1;
}

/* ---- the lenient reader -------------------------------------------------- */

struct found {
    char *socket;
    bool nomem;
};

static int
on_key(void *user, const char *section, const char *name, const char *value)
{
    struct found *f = user;

    if (strcasecmp(section, "control") == 0 &&
        strcasecmp(name, "Socket") == 0) {
        free(f->socket);
        if ((f->socket = strdup(value)) == NULL)
            f->nomem = true;
    }
    return 1;
}

int
wd_control_ini_socket(const char *ini_path, char **socket, char *err,
                      size_t errlen)
{
    struct found f = {NULL, false};

    /* Parse errors elsewhere in the file do not matter here: inih goes on
     * after them, and the daemon refuses such a file anyway. */
    if (ini_parse(ini_path, on_key, &f) == -1 || f.nomem) {
        snprintf(err, errlen, "%s: %s", ini_path,
                 f.nomem ? strerror(ENOMEM) : strerror(errno));
        free(f.socket);
        return -1;
    }
    *socket = f.socket;
    return 0;
}
