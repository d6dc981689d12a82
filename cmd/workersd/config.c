/*
 * config.c: the ini file, parsed with inih, into a wd_config.
 *
 * inih is fed through our own line reader (ini_parse_stream), because inih
 * as Debian builds it would otherwise get three things silently wrong:
 * - a line longer than its buffer (200 bytes) is cut, and the rest parsed
 *   as a new line: the reader refuses such a line, naming it, as soon as
 *   it has read one byte too many (it never holds more than a line's
 *   limit, so /dev/zero or a pipe that never sends a newline cannot make
 *   it grow);
 * - an indented line continues the previous value (multi-line values): the
 *   reader strips leading blanks, so indentation means nothing;
 * - a NUL byte ends the line early: the reader refuses it.
 * The reader also checks each line's syntax and section name the way inih
 * will read it, so every error names its line and the text at fault, and
 * it stops the parse at the first error.
 *
 * " ;" starts an inline comment in inih. For numbers, booleans and
 * durations that is harmless, but it would cut a shell command like
 * "a ; b" in two: a free-text value (Command, Plugin, Arg) followed by an
 * inline comment is refused instead ("a; b" is taken whole).
 *
 * The config file and the Plugin must pass trust.c's checks (owner, mode,
 * folders; a plugin must be a regular ELF file for this machine), so that
 * `workersd -t` reports them too.
 *
 * It runs on the main thread at the start, before any other thread, and
 * on the loop thread at a reload while workers run: no static state.
 */
#include "control/control.h"
#include "workersd.h"

#include "metrics/metrics.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define SEC_NS 1000000000ull

enum kind {
    K_INT,
    K_UINT,
    K_BOOL,
    K_DURATION,
    K_SIZE,
    K_BACKOFF,
    K_TEXT,
    K_SOCKET,
    K_MODE,
    K_GROUP,
    K_LISTEN,
    K_RATIO
};

/* The keys' positions in keys[]: the checks that involve two keys (the
 * pool rules, Command/Plugin/Arg) name them by these. */
enum {
    KEY_MIN,
    KEY_MAX,
    KEY_INITIAL,
    KEY_STOP_ON_ERRORS,
    KEY_CLOSE_TIMEOUT,
    KEY_STACK_SIZE,
    KEY_COMMAND,
    KEY_PLUGIN,
    KEY_ARG,
    KEY_TIMEOUT,
    KEY_KILL_GRACE,
    KEY_ERROR_BACKOFF,
    KEY_IDLE_EXIT_CODE,
    KEY_IDLE_WAIT,
    KEY_RETRY,
    KEY_WAIT,
    KEY_SOCKET,
    KEY_SOCKET_MODE,
    KEY_SOCKET_GROUP,
    KEY_LISTEN,
    KEY_FILE,
    KEY_INTERVAL,
    KEY_AS_ENABLE,
    KEY_AS_TARGET,
    KEY_AS_WINDOW,
    KEY_AS_COOLDOWN,
    NKEYS
};

static const struct key {
    const char *section;
    const char *name;
    enum kind kind;
    size_t off; /* of the field in wd_config */
} keys[NKEYS] = {
    [KEY_MIN] = {"pool", "Min", K_INT, offsetof(wd_config, pool.min)},
    [KEY_MAX] = {"pool", "Max", K_INT, offsetof(wd_config, pool.max)},
    [KEY_INITIAL] = {"pool", "Initial", K_INT,
                     offsetof(wd_config, pool.initial)},
    [KEY_STOP_ON_ERRORS] = {"pool", "StopOnErrors", K_BOOL,
                            offsetof(wd_config, pool.stop_on_errors)},
    [KEY_CLOSE_TIMEOUT] = {"pool", "CloseTimeout", K_DURATION,
                           offsetof(wd_config, close_timeout_ns)},
    [KEY_STACK_SIZE] = {"pool", "StackSize", K_SIZE,
                        offsetof(wd_config, pool.stack_size)},
    [KEY_COMMAND] = {"job", "Command", K_TEXT, offsetof(wd_config, command)},
    [KEY_PLUGIN] = {"job", "Plugin", K_TEXT, offsetof(wd_config, plugin)},
    [KEY_ARG] = {"job", "Arg", K_TEXT, offsetof(wd_config, arg)},
    [KEY_TIMEOUT] = {"job", "Timeout", K_DURATION,
                     offsetof(wd_config, timeout_ns)},
    [KEY_KILL_GRACE] = {"job", "KillGrace", K_DURATION,
                        offsetof(wd_config, kill_grace_ns)},
    [KEY_ERROR_BACKOFF] = {"job", "ErrorBackoff", K_BACKOFF,
                           offsetof(wd_config, backoff)},
    [KEY_IDLE_EXIT_CODE] = {"job", "IdleExitCode", K_INT,
                            offsetof(wd_config, idle_exit_code)},
    [KEY_IDLE_WAIT] = {"job", "IdleWait", K_DURATION,
                       offsetof(wd_config, pool.idle_wait_ns)},
    [KEY_RETRY] = {"middleware", "Retry", K_UINT, offsetof(wd_config, retry)},
    [KEY_WAIT] = {"middleware", "Wait", K_DURATION,
                  offsetof(wd_config, wait_ns)},
    [KEY_SOCKET] = {"control", "Socket", K_SOCKET, offsetof(wd_config, socket)},
    [KEY_SOCKET_MODE] = {"control", "SocketMode", K_MODE,
                         offsetof(wd_config, socket_mode)},
    [KEY_SOCKET_GROUP] = {"control", "SocketGroup", K_GROUP,
                          offsetof(wd_config, socket_group)},
    [KEY_LISTEN] = {"metrics", "Listen", K_LISTEN,
                    offsetof(wd_config, metrics.listen)},
    [KEY_FILE] = {"metrics", "File", K_TEXT, offsetof(wd_config, metrics.file)},
    [KEY_INTERVAL] = {"metrics", "Interval", K_DURATION,
                      offsetof(wd_config, metrics.interval_ns)},
    [KEY_AS_ENABLE] = {"autoscale", "Enable", K_BOOL,
                       offsetof(wd_config, autoscale.enable)},
    [KEY_AS_TARGET] = {"autoscale", "Target", K_RATIO,
                       offsetof(wd_config, autoscale.policy.target)},
    [KEY_AS_WINDOW] = {"autoscale", "Window", K_DURATION,
                       offsetof(wd_config, autoscale.policy.window_ns)},
    [KEY_AS_COOLDOWN] = {"autoscale", "Cooldown", K_DURATION,
                         offsetof(wd_config, autoscale.policy.cooldown_ns)},
};

/* StackSize's upper bound. */
#define MAX_STACK (1024ull * 1024 * 1024)

static const char *const sections[] = {"pool",    "job",     "middleware",
                                       "control", "metrics", "autoscale"};

struct parse {
    wd_config *cfg;
    FILE *f;
    char buf[INI_MAX_LINE]; /* the current line as read, as inih's buffer */
    const char *line;       /* the current line, after leading blanks */
    int lineno;
    int set_on[NKEYS]; /* line each key was set on, 0 = not set */
    bool failed;
    char *err;
    size_t errlen;
};

/* ---- messages --------------------------------------------------------- */

/* Writes the first error only: "path:line: ..." (line 0: "path: ..."). */
__attribute__((format(printf, 3, 4))) static void
fail(struct parse *p, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->failed)
        return;
    p->failed = true;
    if (line > 0)
        n = snprintf(p->err, p->errlen, "%s:%d: ", p->cfg->path, line);
    else
        n = snprintf(p->err, p->errlen, "%s: ", p->cfg->path);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A value or line as a message may quote it: printable, one line, short. */
static const char *
quote(const char *s, char *out, size_t outlen)
{
    size_t i, max = outlen - 4;

    for (i = 0; s[i] != '\0' && s[i] != '\n' && i < max; i++)
        out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    if (s[i] != '\0' && s[i] != '\n')
        memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

/* ---- values ----------------------------------------------------------- */

/* A whole decimal number in [0, max]; NULL or why it is not. */
static const char *
parse_number(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;

    if (*s == '-')
        return "must not be negative";
    if (!isdigit((unsigned char)*s))
        return "not a whole number";
    errno = 0;
    *out = strtoull(s, &end, 10);
    if (*end != '\0')
        return "not a whole number";
    if (errno == ERANGE || *out > max)
        return "too large";
    return NULL;
}

struct unit {
    const char *name;
    uint64_t mult;
};

static const struct unit time_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"ms", 1000000},
    {"s", SEC_NS},
    {"min", 60 * SEC_NS},
    {"h", 3600 * SEC_NS},
    {"", SEC_NS},
    {NULL, 0},
};

static const struct unit size_units[] = {
    {"", 1},   {"k", 1024}, {"m", 1024 * 1024}, {"g", 1024 * 1024 * 1024},
    {NULL, 0},
};

/* digits and a unit from the table: 0, -1 malformed, -2 overflow. */
static int
parse_scaled(const char *s, const struct unit *units, uint64_t *out)
{
    unsigned long long v;
    char *end;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    for (; units->name != NULL; units++) {
        if (strcasecmp(end, units->name) != 0)
            continue;
        if (errno == ERANGE || v > UINT64_MAX / units->mult)
            return -2;
        *out = v * units->mult;
        return 0;
    }
    return -1;
}

int
wd_parse_duration(const char *s, uint64_t *ns)
{
    return parse_scaled(s, time_units, ns) == 0 ? 0 : -1;
}

static const char *
parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, NULL;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, NULL;
    }
    return "not a boolean (true/false, yes/no, on/off, 1/0)";
}

/* A duration or a size: NULL, or why it is not one. */
static const char *
scaled_value(enum kind kind, const char *value, uint64_t *out)
{
    int rc;

    if (*value == '-')
        return "must not be negative";
    rc = parse_scaled(value, kind == K_SIZE ? size_units : time_units, out);
    if (rc == -2)
        return "too large";
    if (rc < 0)
        return kind == K_SIZE ? "not a size (bytes, or with k, M, G: 64k, 1M)"
                              : "not a duration (500ms, 30s, 2min, 1h; a bare "
                                "number is seconds)";
    return NULL;
}

/* ErrorBackoff: "MIN..MAX", one duration (a fixed pause) or 0 (off). */
static const char *
parse_backoff(const char *value, struct wd_backoff *out)
{
    const char *dots = strstr(value, "..");
    char min[64];
    const char *why;

    if (dots == NULL) {
        if ((why = scaled_value(K_DURATION, value, &out->min_ns)) != NULL)
            return why;
        out->max_ns = out->min_ns;
        return NULL;
    }
    if ((size_t)(dots - value) >= sizeof min)
        return "not a range of durations (100ms..30s)";
    memcpy(min, value, (size_t)(dots - value));
    min[dots - value] = '\0';
    if ((why = scaled_value(K_DURATION, min, &out->min_ns)) != NULL ||
        (why = scaled_value(K_DURATION, dots + 2, &out->max_ns)) != NULL)
        return why;
    if (out->min_ns == 0)
        return "the range must start above 0 (ErrorBackoff = 0 turns "
               "the backoff off)";
    if (out->min_ns > out->max_ns)
        return "the range's start is above its end";
    return NULL;
}

/* Target: a utilisation strictly between 0 and 1, as the autoscaler takes
 * it (1 would leave no room above the target to see more work coming). */
static const char *
parse_ratio(const char *value, double *out)
{
    char *end;

    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *end != '\0' || errno == ERANGE ||
        !isdigit((unsigned char)*value))
        return "not a decimal number (0.8)";
    if (!(v > 0 && v < 1))
        return "must be above 0 and below 1";
    *out = v;
    return NULL;
}

/* SocketMode: octal permission bits that let the owner read and write
 * (else the daemon's own workersctl could not connect). */
static const char *
parse_mode(const char *value, unsigned *out)
{
    char *end;
    unsigned long v;

    if (*value < '0' || *value > '7')
        return "not an octal mode (0600, 0660)";
    v = strtoul(value, &end, 8);
    if (*end != '\0')
        return "not an octal mode (0600, 0660)";
    if (v > 0777)
        return "too large (at most 0777)";
    if ((v & 0600) != 0600)
        return "must give the owner read and write (0600 at least)";
    *out = (unsigned)v;
    return NULL;
}

/* SocketGroup: a group name, or a numeric gid as it is. */
static const char *
parse_group(const char *value, gid_t *out)
{
    unsigned long long n;
    struct group gr, *found = NULL;
    int rc = ERANGE;

    if (isdigit((unsigned char)*value)) {
        if (parse_number(value, (gid_t)-2, &n) != NULL)
            return "not a group name or a gid";
        *out = (gid_t)n;
        return NULL;
    }
    /* A group's entry lists its members: grow the buffer as it asks. */
    for (size_t size = 4096; rc == ERANGE && size <= (1u << 24); size *= 4) {
        char *buf = malloc(size);
        if (buf == NULL)
            return "out of memory";
        rc = getgrnam_r(value, &gr, buf, size, &found);
        free(buf);
    }
    if (rc != 0 || found == NULL)
        return "no such group";
    *out = gr.gr_gid;
    return NULL;
}

/* The value of the current line had an inline comment that inih cut. */
static bool has_inline_comment(const char *s);

/* Stores value into the key's field: NULL, or why it is not valid. */
static const char *
set_value(struct parse *p, const struct key *k, const char *value)
{
    void *field = (char *)p->cfg + k->off;
    unsigned long long n;
    uint64_t u;
    const char *why;

    if (k->kind == K_SOCKET && (why = wd_control_socket_invalid(value)) != NULL)
        return why;
    switch (k->kind) {
    case K_INT:
        if ((why = parse_number(value, INT_MAX, &n)) != NULL)
            return why;
        *(int *)field = (int)n;
        return NULL;
    case K_UINT:
        if ((why = parse_number(value, UINT_MAX, &n)) != NULL)
            return why;
        *(unsigned *)field = (unsigned)n;
        return NULL;
    case K_BOOL:
        return parse_bool(value, (bool *)field);
    case K_DURATION:
    case K_SIZE:
        if ((why = scaled_value(k->kind, value, &u)) != NULL)
            return why;
        /* pthread stacks beyond this are a typo, and would fail only
         * when the workers start (exit 70), not here (exit 78). */
        if (k->kind == K_SIZE && u > MAX_STACK)
            return "too large (at most 1G)";
        if (k->kind == K_SIZE)
            *(size_t *)field = (size_t)u;
        else
            *(uint64_t *)field = u;
        return NULL;
    case K_BACKOFF:
        return parse_backoff(value, (struct wd_backoff *)field);
    case K_LISTEN: {
        struct sockaddr_storage addr;
        socklen_t len;
        if (wd_listen_parse(value, &addr, &len, &why) != 0)
            return why;
        if ((*(char **)field = strdup(value)) == NULL)
            return "out of memory";
        return NULL;
    }
    case K_RATIO:
        return parse_ratio(value, (double *)field);
    case K_MODE:
        return parse_mode(value, (unsigned *)field);
    case K_GROUP:
        return parse_group(value, (gid_t *)field);
    case K_SOCKET:
    case K_TEXT:
        if (has_inline_comment(p->line))
            return "' ;' starts an inline comment in an ini file and would "
                   "cut this value: move the comment to a line of its own "
                   "(a shell's 'a; b' needs no space before ';')";
        if ((*(char **)field = strdup(value)) == NULL)
            return "out of memory";
        return NULL;
    }
    return "unknown key kind";
}

/*
 * The bounds of single keys beyond their kind's: NULL, or why the value
 * just stored is out of them.
 * - IdleExitCode: an exit status a shell gives only when told to. 126 and
 *   127 are its "cannot execute" and "not found", above 128 a signal's: a
 *   broken command must not pass for an idle one.
 * - Window, Cooldown: the library takes 0 for its default, so a 0 written
 *   here is refused rather than read as 10 s or 30 s; the timer ticks every
 *   quarter Window, so a Window under 100ms would only spin it.
 */
static const char *
key_range(const wd_config *cfg, size_t key)
{
    switch (key) {
    case KEY_IDLE_EXIT_CODE:
        return cfg->idle_exit_code > 125 ? "must be 0 (none) or 1..125 (126 "
                                           "and up are the shell's own and "
                                           "signals')"
                                         : NULL;
    case KEY_AS_WINDOW:
        return cfg->autoscale.policy.window_ns < SEC_NS / 10
                   ? "must be 100ms or more"
                   : NULL;
    case KEY_AS_COOLDOWN:
        return cfg->autoscale.policy.cooldown_ns == 0 ? "must be above 0"
                                                      : NULL;
    }
    return NULL;
}

/* ---- inih callbacks ------------------------------------------------------ */

/*
 * inih's scan for chars or an inline comment (';' after a blank), as inih
 * does it, so the reader sees each line the way inih will.
 */
static const char *
find_chars_or_comment(const char *s, const char *chars)
{
    bool was_space = false;

    while (*s != '\0' && (chars == NULL || strchr(chars, *s) == NULL) &&
           !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

static bool
has_inline_comment(const char *s)
{
    const char *sep = find_chars_or_comment(s, "=:");

    return *sep != '\0' && *find_chars_or_comment(sep + 1, NULL) == ';';
}

/* Checks one line (leading blanks gone) as inih will read it. */
static void
check_line(struct parse *p, const char *s)
{
    char q[96];

    if (*s == '\0' || *s == ';' || *s == '#')
        return;
    if (*s == '[') {
        const char *end = find_chars_or_comment(s + 1, "]");
        size_t len = (size_t)(end - s - 1);

        if (*end != ']') {
            fail(p, p->lineno, "%s: missing ']' in section header",
                 quote(s, q, sizeof q));
            return;
        }
        end++;
        while (isspace((unsigned char)*end))
            end++;
        if (*end != '\0' && *end != ';' && *end != '#') {
            fail(p, p->lineno, "%s: unexpected text after ']'",
                 quote(s, q, sizeof q));
            return;
        }
        for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
            if (strlen(sections[i]) == len &&
                strncasecmp(s + 1, sections[i], len) == 0)
                return;
        fail(p, p->lineno,
             "[%.*s]: unknown section (expected [pool], [job], "
             "[middleware], [control], [metrics] or [autoscale])",
             (int)(len > 40 ? 40 : len), s + 1);
        return;
    }
    if (*find_chars_or_comment(s, "=:") == '\0')
        fail(p, p->lineno,
             "%s: expected 'Key = value', '[section]' or a comment",
             quote(s, q, sizeof q));
}

/*
 * inih's reader: one whole line per call, or NULL to end the parse. It
 * reads one byte at a time (stdio buffers them) and stops at the first
 * byte past the limit: inih's buffer holds num - 1 bytes, so a line holds
 * num - 2 characters and its newline.
 */
static char *
read_line(char *str, int num, void *stream)
{
    struct parse *p = stream;
    size_t max = (size_t)(num < INI_MAX_LINE ? num : INI_MAX_LINE) - 2;
    size_t n = 0;
    bool nul = false;
    int c;
    char *s;

    if (p->failed)
        return NULL;
    errno = 0;
    while ((c = getc(p->f)) != EOF && c != '\n') {
        if (n == max) {
            fail(p, p->lineno + 1,
                 "line too long (over %zu bytes): shorten it, e.g. move a "
                 "long command into a script",
                 max);
            return NULL;
        }
        nul |= c == '\0';
        p->buf[n++] = (char)c;
    }
    if (ferror(p->f)) {
        fail(p, 0, "read error after line %d: %s", p->lineno,
             strerror(errno ? errno : EIO));
        return NULL;
    }
    if (c == EOF && n == 0)
        return NULL;
    p->lineno++;
    if (nul) {
        fail(p, p->lineno, "NUL byte in line (not a text file?)");
        return NULL;
    }
    if (c == '\n')
        p->buf[n++] = '\n';
    p->buf[n] = '\0';
    s = p->buf;
    if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* a UTF-8 byte order mark */
    while (isspace((unsigned char)*s))
        s++;
    p->line = s;
    check_line(p, s);
    if (p->failed)
        return NULL;
    memcpy(str, s, strlen(s) + 1);
    return str;
}

static int
on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    const struct key *k = NULL;
    char qv[80];
    const char *why;
    size_t i;

    if (p->failed)
        return 0;
    quote(value, qv, sizeof qv);
    if (*section == '\0') {
        fail(p, p->lineno, "%s = %s: key outside any section", name, qv);
        return 0;
    }
    for (i = 0; i < NKEYS; i++) {
        if (strcasecmp(keys[i].section, section) == 0 &&
            strcasecmp(keys[i].name, name) == 0) {
            k = &keys[i];
            break;
        }
    }
    if (k == NULL) {
        fail(p, p->lineno, "%s = %s: unknown key in [%s]", name, qv, section);
        return 0;
    }
    if (p->set_on[i] != 0) {
        fail(p, p->lineno, "%s = %s: duplicate key (first set on line %d)",
             k->name, qv, p->set_on[i]);
        return 0;
    }
    p->set_on[i] = p->lineno;
    if (*value == '\0') {
        fail(p, p->lineno, "%s = : empty value", k->name);
        return 0;
    }
    if ((why = set_value(p, k, value)) != NULL ||
        (why = key_range(p->cfg, i)) != NULL) {
        fail(p, p->lineno, "%s = %s: %s", k->name, qv, why);
        return 0;
    }
    if ((i == KEY_COMMAND && p->set_on[KEY_PLUGIN] != 0) ||
        (i == KEY_PLUGIN && p->set_on[KEY_COMMAND] != 0)) {
        fail(p, p->lineno,
             "%s = %s: [job] already has %s (line %d): give exactly one of "
             "Command and Plugin",
             k->name, qv, i == KEY_COMMAND ? "Plugin" : "Command",
             p->set_on[i == KEY_COMMAND ? KEY_PLUGIN : KEY_COMMAND]);
        return 0;
    }
    return 1;
}

/* ---- whole-file checks ----------------------------------------------------
 */

static void
check_pool(struct parse *p)
{
    const workers_config *pc = &p->cfg->pool;
    int rc = workers_config_validate(pc);
    size_t key;
    int value;

    if (rc == 0)
        return;
    key = rc == WORKERS_EINVALMAX       ? KEY_MAX
          : rc == WORKERS_EINVALINITIAL ? KEY_INITIAL
                                        : KEY_MIN;
    value = key == KEY_MAX       ? pc->max
            : key == KEY_INITIAL ? pc->initial
                                 : pc->min;
    if (p->set_on[key] != 0)
        fail(p, p->set_on[key], "%s = %d: %s", keys[key].name, value,
             workers_strerror(rc));
    else
        fail(p, 0, "[pool]: %s", workers_strerror(rc));
}

/* [autoscale]: any key makes the autoscaler available. On, it needs a
 * Max: a job that is always busy (a sleep, a blocking read counted as
 * work) would otherwise double the pool every quarter Window, without
 * end. */
static void
check_autoscale(struct parse *p)
{
    const wd_config *cfg = p->cfg;

    for (int k = KEY_AS_ENABLE; k <= KEY_AS_COOLDOWN; k++)
        p->cfg->autoscale.configured |= p->set_on[k] != 0;
    if (!p->failed && cfg->autoscale.enable && cfg->pool.max == 0)
        fail(p, p->set_on[KEY_AS_ENABLE],
             "Enable = true: [autoscale] needs a [pool] Max to bound its "
             "growth (Max = 0 is unlimited)");
}

/* A relative Plugin path is relative to the ini file's folder; the file
 * it names must be one workersd may trust. */
static void
resolve_plugin(struct parse *p)
{
    wd_config *cfg = p->cfg;
    const char *slash = strrchr(cfg->path, '/');
    char *joined, why[WD_ERRLEN];

    if (cfg->plugin == NULL)
        return;
    if (cfg->plugin[0] != '/') {
        if (asprintf(&joined, "%.*s/%s", slash ? (int)(slash - cfg->path) : 1,
                     slash ? cfg->path : ".", cfg->plugin) < 0) {
            fail(p, p->set_on[KEY_PLUGIN], "Plugin: out of memory");
            return;
        }
        free(cfg->plugin);
        cfg->plugin = joined;
    }
    if (wd_trust_plugin(cfg->plugin, why, sizeof why) != 0)
        fail(p, p->set_on[KEY_PLUGIN], "Plugin %s: %s", cfg->plugin, why);
}

static void
check_file(struct parse *p)
{
    char qv[80];

    if (p->failed)
        return;
    if (p->cfg->command == NULL && p->cfg->plugin == NULL) {
        fail(p, 0, "[job]: missing Command or Plugin (give exactly one)");
        return;
    }
    if (p->cfg->arg != NULL && p->cfg->plugin == NULL) {
        fail(p, p->set_on[KEY_ARG], "Arg = %s: only a Plugin takes an Arg",
             quote(p->cfg->arg, qv, sizeof qv));
        return;
    }
    if (p->cfg->metrics.interval_ns == 0) {
        fail(p, p->set_on[KEY_INTERVAL], "Interval = 0: must be above 0");
        return;
    }
    check_autoscale(p);
    check_pool(p);
    if (!p->failed)
        resolve_plugin(p);
}

int
wd_config_load(const char *path, wd_config *cfg, char *err, size_t errlen)
{
    struct parse p = {.cfg = cfg, .err = err, .errlen = errlen};
    char why[WD_ERRLEN];
    struct stat st;
    int rc;

    memset(cfg, 0, sizeof *cfg);
    cfg->close_timeout_ns = 30 * SEC_NS;
    cfg->kill_grace_ns = 5 * SEC_NS;
    cfg->backoff.min_ns = SEC_NS / 10;
    cfg->backoff.max_ns = 30 * SEC_NS;
    cfg->socket_group = (gid_t)-1;
    cfg->metrics.interval_ns = 15 * SEC_NS;
    cfg->idle_exit_code = 75; /* EX_TEMPFAIL: "try again later" */
    cfg->pool.idle_wait_ns = SEC_NS;
    cfg->autoscale.policy = (workers_autoscale_policy){
        .target = 0.8, .window_ns = 10 * SEC_NS, .cooldown_ns = 30 * SEC_NS};
    if ((cfg->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
        return -1;
    }
    if ((p.f = fopen(path, "re")) == NULL) {
        fail(&p, 0, "%s", strerror(errno));
    } else if (fstat(fileno(p.f), &st) != 0) {
        fail(&p, 0, "%s", strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        fail(&p, 0, "%s", strerror(EISDIR));
    } else if (wd_trust_config(path, &st, why, sizeof why) != 0) {
        fail(&p, 0, "%s", why);
    } else {
        rc = ini_parse_stream(read_line, &p, on_key, &p);
        if (rc == -2)
            fail(&p, 0, "%s", strerror(ENOMEM));
        else if (rc != 0)
            fail(&p, rc, "syntax error");
        check_file(&p);
    }
    if (p.f != NULL)
        fclose(p.f);
    if (p.failed) {
        wd_config_free(cfg);
        return -1;
    }
    return 0;
}

void
wd_config_free(wd_config *cfg)
{
    free(cfg->path);
    free(cfg->command);
    free(cfg->plugin);
    free(cfg->arg);
    free(cfg->socket);
    free(cfg->metrics.listen);
    free(cfg->metrics.file);
    memset(cfg, 0, sizeof *cfg);
}
