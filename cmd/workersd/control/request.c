/*
 * request.c: a control request line parsed into a typed request. The
 * server parses what clients send; workersctl parses its own command line
 * with the same function before it connects, so a usage error is found
 * (exit 64) whether or not a daemon runs, and with the same message.
 * Pure functions; the table below is the one list of commands.
 */
#include "control/control.h"
#include "workersd.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a command takes after its name. */
enum arg {
    ARG_NONE,     /* nothing */
    ARG_COUNT,    /* N, 0..WD_CONTROL_MAX_N, required */
    ARG_STEP,     /* [N], 1..WD_CONTROL_MAX_N, default 1 */
    ARG_DURATION, /* [DURATION] */
    ARG_SWITCH,   /* on|off, required */
};

static const struct command {
    const char *name;
    enum wd_control_cmd cmd;
    enum arg arg;
} commands[] = {
    {"status", WD_CONTROL_STATUS, ARG_NONE},
    {"set", WD_CONTROL_SET, ARG_COUNT},
    {"more", WD_CONTROL_MORE, ARG_STEP},
    {"less", WD_CONTROL_LESS, ARG_STEP},
    {"pause", WD_CONTROL_PAUSE, ARG_NONE},
    {"resume", WD_CONTROL_RESUME, ARG_NONE},
    {"reload", WD_CONTROL_RELOAD, ARG_NONE},
    {"stop", WD_CONTROL_STOP, ARG_DURATION},
    {"metrics", WD_CONTROL_METRICS, ARG_NONE},
    {"autoscale", WD_CONTROL_AUTOSCALE, ARG_SWITCH},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

const char *
wd_control_cmd_name(enum wd_control_cmd cmd)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].cmd == cmd)
            return commands[i].name;
    return "?";
}

/* A word of the line: start and length. */
struct word {
    const char *s;
    int len;
};

static const char *
skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static const char *
next_word(const char *s, struct word *w)
{
    s = skip_blanks(s);
    w->s = s;
    while (*s != '\0' && *s != ' ' && *s != '\t')
        s++;
    w->len = (int)(s - w->s);
    return s;
}

/* The word as a message may quote it: printable ASCII, at most 40 bytes. */
static const char *
quoted(const struct word *w, char *out, size_t outlen)
{
    int i, max = w->len < 40 ? w->len : 40;

    for (i = 0; i < max && (size_t)i < outlen - 4; i++)
        out[i] = isprint((unsigned char)w->s[i]) ? w->s[i] : '?';
    if (i < w->len)
        memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

/* A whole decimal number of the word in [min, WD_CONTROL_MAX_N]. */
static bool
count(const struct word *w, int min, int *out)
{
    long v = 0;

    if (w->len == 0 || w->len > 7)
        return false;
    for (int i = 0; i < w->len; i++) {
        if (!isdigit((unsigned char)w->s[i]))
            return false;
        v = v * 10 + (w->s[i] - '0');
    }
    if (v < min || v > WD_CONTROL_MAX_N)
        return false;
    *out = (int)v;
    return true;
}

/* Parses the argument arg of command c into req. */
static int
parse_arg(const struct command *c, const struct word *arg,
          wd_control_request *req, char *err, size_t errlen)
{
    char q[48], text[64];
    int min = c->arg == ARG_COUNT ? 0 : 1;

    switch (c->arg) {
    case ARG_NONE:
        if (arg->len != 0)
            return wd_control_errf(err, errlen, "%s: takes no argument ('%s')",
                                   c->name, quoted(arg, q, sizeof q));
        return 0;
    case ARG_COUNT:
    case ARG_STEP:
        if (arg->len == 0 && c->arg == ARG_STEP) {
            req->n = 1;
            return 0;
        }
        if (arg->len == 0)
            return wd_control_errf(
                err, errlen, "%s: missing N, the number of workers", c->name);
        if (!count(arg, min, &req->n))
            return wd_control_errf(
                err, errlen, "%s: '%s' is not a whole number from %d to %d",
                c->name, quoted(arg, q, sizeof q), min, WD_CONTROL_MAX_N);
        return 0;
    case ARG_DURATION:
        if (arg->len == 0)
            return 0;
        if ((size_t)arg->len < sizeof text) {
            memcpy(text, arg->s, (size_t)arg->len);
            text[arg->len] = '\0';
            if (wd_parse_duration(text, &req->timeout_ns) == 0) {
                req->has_timeout = true;
                return 0;
            }
        }
        return wd_control_errf(
            err, errlen,
            "%s: '%s' is not a duration (500ms, 30s, 2min, 1h; a "
            "bare number is seconds)",
            c->name, quoted(arg, q, sizeof q));
    case ARG_SWITCH:
        if (arg->len == 2 && strncmp(arg->s, "on", 2) == 0)
            req->on = true;
        else if (arg->len == 3 && strncmp(arg->s, "off", 3) == 0)
            req->on = false;
        else if (arg->len == 0)
            return wd_control_errf(err, errlen, "%s: missing on or off",
                                   c->name);
        else
            return wd_control_errf(err, errlen, "%s: '%s': expected on or off",
                                   c->name, quoted(arg, q, sizeof q));
        return 0;
    }
    return wd_control_errf(err, errlen, "%s: unknown argument kind", c->name);
}

int
wd_control_parse(const char *line, wd_control_request *req, char *err,
                 size_t errlen)
{
    struct word name, arg, extra;
    const struct command *c = NULL;
    char q[48];

    memset(req, 0, sizeof *req);
    line = next_word(line, &name);
    line = next_word(line, &arg);
    next_word(line, &extra);
    if (name.len == 0)
        return wd_control_errf(err, errlen,
                               "empty request: expected a command");
    for (size_t i = 0; i < NCOMMANDS; i++)
        if ((size_t)name.len == strlen(commands[i].name) &&
            strncmp(name.s, commands[i].name, (size_t)name.len) == 0)
            c = &commands[i];
    if (c == NULL) {
        char names[128] = "";
        for (size_t i = 0; i < NCOMMANDS; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names),
                     "%s%s", i ? ", " : "", commands[i].name);
        return wd_control_errf(err, errlen, "unknown command '%s' (%s)",
                               quoted(&name, q, sizeof q), names);
    }
    if (extra.len != 0)
        return wd_control_errf(err, errlen, "%s: too many arguments ('%s')",
                               c->name, quoted(&extra, q, sizeof q));
    req->cmd = c->cmd;
    return parse_arg(c, &arg, req, err, errlen);
}
