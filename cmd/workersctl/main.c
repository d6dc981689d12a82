/*
 * main.c: workersctl's command line. The command and its argument are
 * joined into the request line the daemon reads, and parsed first with
 * the daemon's own parser (wd_control_parse): a usage error exits 64
 * before any connection, with the message the daemon would give. The
 * socket is found as the daemon finds it (wd_control_path).
 */
#include "workers.h"
#include "workersctl.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: workersctl [-s SOCKET | -c FILE] [--json] COMMAND [ARG]\n"
            "       workersctl -h | -V\n"
            "Steers a running workersd through its control socket.\n"
            "\n"
            "  -s, --socket SOCKET  the daemon's control socket\n"
            "  -c, --config FILE    the daemon's ini file: its socket is "
            "found as\n"
            "                       workersd finds it ([control] Socket, "
            "or the\n"
            "                       default); without -s or -c: the default "
            "socket\n"
            "                       of a pool.ini\n"
            "  -j, --json           print the daemon's reply as it is, a "
            "JSON object\n"
            "  -h, --help           this help\n"
            "  -V, --version        the version\n"
            "\n"
            "Commands:\n"
            "  status               workers, limits, state, config (and the "
            "workers'\n"
            "                       table when the daemon gives it)\n"
            "  set N                exactly N workers; refused outside "
            "[Min, Max]\n"
            "  more [N], less [N]   N (default 1) more or fewer workers, up "
            "to the limit\n"
            "  pause, resume        no run starts until resume; runs in "
            "progress finish\n"
            "  reload               re-read the ini file, as SIGHUP\n"
            "  stop [--timeout D]   close, as SIGTERM, optionally with "
            "another deadline;\n"
            "                       waits for workersd to exit and returns "
            "its exit code\n"
            "  metrics              the Prometheus metrics\n"
            "  autoscale on|off     turn autoscaling on or off\n"
            "\n"
            "Exit codes:\n"
            "   0  done (stop: workersd's own exit code instead)\n"
            "   1  refused: a limit, permission denied, the daemon busy, "
            "starting or\n"
            "      closing, a reload in progress\n"
            "  64  usage error: unknown command or option, a malformed "
            "argument\n"
            "  69  no workersd at that socket: no socket file, nobody "
            "listening,\n"
            "      Socket = none, or no reply\n"
            "  70  reload failed: the daemon lacked a resource (memory, "
            "a thread)\n"
            "  78  reload refused: the new config has an error (printed), "
            "or its\n"
            "      job would not open\n");
}

/* What the command line asks. */
struct opts {
    const char *socket; /* -s */
    const char *ini;    /* -c */
    bool json;
    char line[WD_CONTROL_REQUEST_MAX]; /* the request line */
};

static int
usage_error(const char *msg)
{
    fprintf(stderr, "workersctl: %s (workersctl --help: usage)\n", msg);
    return WD_CONTROL_EXIT_USAGE;
}

/* Appends word to the request line: false when it grows too long. */
static bool
append(struct opts *o, const char *word)
{
    size_t len = strlen(o->line);
    int n = snprintf(o->line + len, sizeof o->line - len, "%s%s",
                     len ? " " : "", word);

    return n >= 0 && (size_t)n < sizeof o->line - len;
}

/*
 * The words after the options: the command, its argument, and --json or
 * (for stop) --timeout D anywhere among them, as people type them
 * ("workersctl status --json"). 0 or a usage exit code.
 */
static int
build_line(struct opts *o, int argc, char **argv)
{
    const char *timeout = NULL;

    for (int i = optind; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0 || strcmp(a, "-j") == 0) {
            o->json = true;
        } else if (strcmp(a, "--timeout") == 0) {
            if (++i == argc)
                return usage_error("--timeout: missing its DURATION");
            timeout = argv[i];
        } else if (strncmp(a, "--timeout=", 10) == 0) {
            timeout = a + 10;
        } else if (strncmp(a, "--", 2) == 0) {
            return usage_error("unknown option after the command");
        } else if (!append(o, a)) {
            return usage_error("command line too long for a request");
        }
    }
    if (o->line[0] == '\0')
        return usage_error("missing COMMAND");
    if (timeout != NULL) {
        if (strncmp(o->line, "stop", 4) != 0 ||
            (o->line[4] != '\0' && o->line[4] != ' '))
            return usage_error("--timeout: only stop takes it");
        if (!append(o, timeout))
            return usage_error("command line too long for a request");
    }
    return 0;
}

/* The socket's path into out: 0, or an exit code (message printed). */
static int
find_socket(const struct opts *o, char *out, size_t outlen)
{
    char err[PATH_MAX + 256]; /* the ini's path and why */
    char *value = NULL;
    int rc;

    if (o->socket != NULL) {
        if (strlen(o->socket) >= outlen)
            return usage_error("-s: too long for a Unix socket path");
        memcpy(out, o->socket, strlen(o->socket) + 1);
        return 0;
    }
    if (o->ini != NULL &&
        wd_control_ini_socket(o->ini, &value, err, sizeof err) != 0)
        return usage_error(err);
    rc = wd_control_path(o->ini, value, geteuid(), getenv("XDG_RUNTIME_DIR"),
                         out, outlen, err, sizeof err);
    free(value);
    if (rc < 0)
        return usage_error(err);
    if (rc == 0) {
        fprintf(stderr, "workersctl: %s\n",
                err[0] ? err : "the control socket is off (Socket = none)");
        return WD_CONTROL_EXIT_UNAVAILABLE;
    }
    return 0;
}

/* Sends the request, prints the reply: workersctl's exit code. */
static int
run(const struct opts *o, enum wd_control_cmd cmd)
{
    char path[WD_CONTROL_REQUEST_MAX], err[WD_CONTROL_REQUEST_MAX + 128];
    char *text;
    json_t *reply;
    json_error_t jerr;
    int code;

    if ((code = find_socket(o, path, sizeof path)) != 0)
        return code;
    if ((code = ctl_exchange(path, o->line, &text, err, sizeof err)) != 0) {
        fprintf(stderr, "workersctl: %s\n", err);
        return code;
    }
    reply = json_loads(text, 0, &jerr);
    if (!json_is_object(reply)) {
        fprintf(stderr, "workersctl: %s: not a workersd reply (%s)\n", path,
                jerr.text);
        json_decref(reply);
        free(text);
        return WD_CONTROL_EXIT_UNAVAILABLE;
    }
    if (o->json)
        fputs(text, stdout);
    else
        ctl_render(reply, cmd);
    code = ctl_exit_code(reply);
    json_decref(reply);
    free(text);
    return code;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {0};
    wd_control_request req;
    char err[256];
    int opt, rc;

    /* "+": options end at the command, so "less -1" reaches the parser. */
    while ((opt = getopt_long(argc, argv, "+s:c:jhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            o.socket = optarg;
            break;
        case 'c':
            o.ini = optarg;
            break;
        case 'j':
            o.json = true;
            break;
        case 'h':
            usage(stdout);
            return WD_CONTROL_EXIT_OK;
        case 'V':
            printf("workersctl %s (libworkers %s)\n", WORKERS_VERSION_STRING,
                   workers_version());
            return WD_CONTROL_EXIT_OK;
        default:
            usage(stderr);
            return WD_CONTROL_EXIT_USAGE;
        }
    }
    if (o.socket != NULL && o.ini != NULL)
        return usage_error("give -s SOCKET or -c FILE, not both");
    if ((rc = build_line(&o, argc, argv)) != 0)
        return rc;
    if (wd_control_parse(o.line, &req, err, sizeof err) != 0)
        return usage_error(err);
    return run(&o, req.cmd);
}
