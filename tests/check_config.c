/*
 * The config loader (wd_config_load) and wd_parse_duration: good files
 * give the values they say; every malformed file is refused with one line
 * that names the file and the line at fault (or the file and section for
 * whole-file problems), both through the loader and through `workersd -t`,
 * which must exit 78 with the same line.
 */
#include "daemonutil.h"
#include "testutil.h"
#include "workersd.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEC 1000000000ull
#define MS 1000000ull

/* ---- wd_parse_duration ----------------------------------------------- */

static const struct {
    const char *text;
    int rc;
    uint64_t ns;
} durations[] = {
    {"500ms", 0, 500 * MS},
    {"30s", 0, 30 * SEC},
    {"2min", 0, 120 * SEC},
    {"1h", 0, 3600 * SEC},
    {"7", 0, 7 * SEC},
    {"0", 0, 0},
    {"15ns", 0, 15},
    {"3us", 0, 3000},
    {"10S", 0, 10 * SEC},
    {"18446744073709551615ns", 0, UINT64_MAX},
    {"18446744073709551616ns", -1, 0},
    {"20000000000s", -1, 0},
    {"5124095576030432h", -1, 0},
    {"", -1, 0},
    {"-1", -1, 0},
    {"-1s", -1, 0},
    {"+5s", -1, 0},
    {"1.5s", -1, 0},
    {"s", -1, 0},
    {"10 s", -1, 0},
    {" 10s", -1, 0},
    {"10s ", -1, 0},
    {"10sec", -1, 0},
    {"10m", -1, 0},
    {"0x10", -1, 0},
};

START_TEST(test_durations)
{
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        uint64_t ns = 12345;
        int rc = wd_parse_duration(durations[i].text, &ns);

        ck_assert_msg(rc == durations[i].rc, "'%s': rc %d", durations[i].text,
                      rc);
        if (rc == 0)
            ck_assert_msg(ns == durations[i].ns, "'%s': %llu ns",
                          durations[i].text, (unsigned long long)ns);
    }
}
END_TEST

/* wd_duration writes the largest unit that shows the value exactly, down
 * to ns (a Timeout of 1ns logged "0us"), and its text reads back as the
 * same duration. */
START_TEST(test_duration_format)
{
    static const struct {
        uint64_t ns;
        const char *text;
    } cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {999, "999ns"},
        {1000, "1us"},
        {1500, "1500ns"},
        {250 * 1000, "250us"},
        {1500 * MS, "1500ms"},
        {1234567, "1234567ns"},
        {2 * SEC, "2s"},
        {UINT64_MAX, "18446744073709551615ns"},
    };
    char buf[32];
    uint64_t back;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_str_eq(wd_duration(cases[i].ns, buf, sizeof buf),
                         cases[i].text);
        ck_assert_int_eq(wd_parse_duration(buf, &back), 0);
        ck_assert_uint_eq(back, cases[i].ns);
    }
}
END_TEST

/* ---- good files ---------------------------------------------------------- */

/* Loads dir/good.ini, which must be accepted. */
static void
load_in(const char *dir, wd_config *cfg)
{
    char *path = du_fmt("%s/good.ini", dir);
    char err[WD_ERRLEN] = "";

    ck_assert_msg(wd_config_load(path, cfg, err, sizeof err) == 0,
                  "refused: %s", err);
    ck_assert_str_eq(cfg->path, path);
}

static void
load_ok(const char *text, wd_config *cfg)
{
    char *dir = du_mkdtemp();

    du_write_str(dir, "good.ini", text);
    load_in(dir, cfg);
}

START_TEST(test_defaults)
{
    wd_config cfg;

    load_ok("[job]\nCommand = true\n", &cfg);
    ck_assert_int_eq(cfg.pool.min, 0);
    ck_assert_int_eq(cfg.pool.max, 0);
    ck_assert_int_eq(cfg.pool.initial, 0);
    ck_assert(!cfg.pool.stop_on_errors);
    ck_assert_uint_eq(cfg.pool.stack_size, 0);
    ck_assert_uint_eq(cfg.close_timeout_ns, 30 * SEC);
    ck_assert_str_eq(cfg.command, "true");
    ck_assert_ptr_null(cfg.plugin);
    ck_assert_ptr_null(cfg.arg);
    ck_assert_uint_eq(cfg.timeout_ns, 0);
    ck_assert_uint_eq(cfg.kill_grace_ns, 5 * SEC);
    ck_assert_uint_eq(cfg.retry, 0);
    ck_assert_uint_eq(cfg.wait_ns, 0);
    ck_assert_uint_eq(cfg.backoff.min_ns, 100 * MS);
    ck_assert_uint_eq(cfg.backoff.max_ns, 30 * SEC);
    ck_assert_int_eq(cfg.idle_exit_code, 75);
    ck_assert_uint_eq(cfg.pool.idle_wait_ns, 1 * SEC);
    ck_assert(!cfg.autoscale.configured);
    ck_assert(!cfg.autoscale.enable);
    ck_assert_double_eq(cfg.autoscale.policy.target, 0.8);
    ck_assert_uint_eq(cfg.autoscale.policy.window_ns, 10 * SEC);
    ck_assert_uint_eq(cfg.autoscale.policy.cooldown_ns, 30 * SEC);
    wd_config_free(&cfg);
}
END_TEST

/* The idle outcome's keys and [autoscale]: any key of it makes the
 * autoscaler available, Enable alone turns it on. */
START_TEST(test_idle_and_autoscale)
{
    wd_config cfg;

    load_ok("[job]\nCommand = true\nIdleExitCode = 0\nIdleWait = 0\n"
            "[autoscale]\nTarget = 0.5\n",
            &cfg);
    ck_assert_int_eq(cfg.idle_exit_code, 0);
    ck_assert_uint_eq(cfg.pool.idle_wait_ns, 0);
    ck_assert(cfg.autoscale.configured);
    ck_assert(!cfg.autoscale.enable);
    ck_assert_double_eq(cfg.autoscale.policy.target, 0.5);
    ck_assert_uint_eq(cfg.autoscale.policy.window_ns, 10 * SEC);
    wd_config_free(&cfg);
    load_ok("[AutoScale]\nenable = yes\nWindow = 1s\nCooldown = 2500ms\n"
            "Target = 0.95\n[job]\nCommand = true\nIdleExitCode = 3\n"
            "IdleWait = 250ms\n[pool]\nMax = 4\n",
            &cfg);
    ck_assert_int_eq(cfg.idle_exit_code, 3);
    ck_assert_uint_eq(cfg.pool.idle_wait_ns, 250 * MS);
    ck_assert(cfg.autoscale.configured);
    ck_assert(cfg.autoscale.enable);
    ck_assert_double_eq(cfg.autoscale.policy.target, 0.95);
    ck_assert_uint_eq(cfg.autoscale.policy.window_ns, 1 * SEC);
    ck_assert_uint_eq(cfg.autoscale.policy.cooldown_ns, 2500 * MS);
    wd_config_free(&cfg);
}
END_TEST

START_TEST(test_backoff_forms)
{
    wd_config cfg;

    load_ok("[job]\nCommand = false\nErrorBackoff = 50ms..2min\n", &cfg);
    ck_assert_uint_eq(cfg.backoff.min_ns, 50 * MS);
    ck_assert_uint_eq(cfg.backoff.max_ns, 120 * SEC);
    wd_config_free(&cfg);
    load_ok("[job]\nCommand = false\nErrorBackoff = 2s\n", &cfg);
    ck_assert_uint_eq(cfg.backoff.min_ns, 2 * SEC);
    ck_assert_uint_eq(cfg.backoff.max_ns, 2 * SEC);
    wd_config_free(&cfg);
    load_ok("[job]\nCommand = false\nErrorBackoff = 0\n", &cfg);
    ck_assert_uint_eq(cfg.backoff.min_ns, 0);
    ck_assert_uint_eq(cfg.backoff.max_ns, 0);
    wd_config_free(&cfg);
}
END_TEST

START_TEST(test_every_key)
{
    wd_config cfg;

    /* A BOM, CRLF, odd case, indentation, comments of both kinds. */
    load_ok("\xEF\xBB\xBF; workersd\r\n"
            "[POOL]\r\n"
            "  min = 1 ; inline comments are fine on numbers\r\n"
            "MAX=8\r\n"
            "# another comment\r\n"
            "Initial: 3\r\n"
            "StopOnErrors = Yes\r\n"
            "closetimeout = 1500ms\r\n"
            "StackSize = 64k\r\n"
            "[Job]\r\n"
            "Command = echo \"a=b\"; exit 0\r\n"
            "Timeout = 2min\r\n"
            "KillGrace = 1\r\n"
            "[middleware]\r\n"
            "Retry = 3\r\n"
            "Wait = 200ms\r\n",
            &cfg);
    ck_assert_int_eq(cfg.pool.min, 1);
    ck_assert_int_eq(cfg.pool.max, 8);
    ck_assert_int_eq(cfg.pool.initial, 3);
    ck_assert(cfg.pool.stop_on_errors);
    ck_assert_uint_eq(cfg.close_timeout_ns, 1500 * MS);
    ck_assert_uint_eq(cfg.pool.stack_size, 64 * 1024);
    ck_assert_str_eq(cfg.command, "echo \"a=b\"; exit 0");
    ck_assert_uint_eq(cfg.timeout_ns, 120 * SEC);
    ck_assert_uint_eq(cfg.kill_grace_ns, 1 * SEC);
    ck_assert_uint_eq(cfg.retry, 3);
    ck_assert_uint_eq(cfg.wait_ns, 200 * MS);
    wd_config_free(&cfg);
}
END_TEST

START_TEST(test_bools)
{
    static const char *const yes[] = {"true", "YES", "on", "1"};
    static const char *const no[] = {"false", "No", "OFF", "0"};

    for (int i = 0; i < 8; i++) {
        char text[128];
        wd_config cfg;

        snprintf(text, sizeof text,
                 "[pool]\nStopOnErrors = %s\n[job]\nCommand = true\n",
                 i < 4 ? yes[i] : no[i - 4]);
        load_ok(text, &cfg);
        ck_assert_msg(cfg.pool.stop_on_errors == (i < 4), "%s", text);
        wd_config_free(&cfg);
    }
}
END_TEST

/* The longest line inih holds is taken whole, not cut. */
START_TEST(test_long_command_whole)
{
    char cmd[200], text[300];
    wd_config cfg;
    size_t len;

    /* "Command = " is 10 bytes; 188 more make the 198 a line may hold. */
    memset(cmd, 'x', 188);
    memcpy(cmd, "echo ", 5);
    cmd[187] = 'y';
    cmd[188] = '\0';
    snprintf(text, sizeof text, "[job]\nCommand = %s\n", cmd);
    load_ok(text, &cfg);
    len = strlen(cfg.command);
    ck_assert_uint_eq(len, 188);
    ck_assert_str_eq(cfg.command, cmd);
    wd_config_free(&cfg);
}
END_TEST

/* A plugin the loader accepts: a link to the example the build made. */
static void
link_plugin(const char *path)
{
    char *example = du_keep(tu_build_path("plugins/example.so"));

    ck_assert_int_eq(symlink(example, path), 0);
}

START_TEST(test_plugin_paths)
{
    wd_config cfg;
    char *dir, *want, *abs;

    /* Relative: to the ini file's folder. */
    dir = du_mkdtemp();
    ck_assert_int_eq(mkdir(du_fmt("%s/lib", dir), 0755), 0);
    link_plugin(du_fmt("%s/lib/job.so", dir));
    du_write_str(dir, "good.ini",
                 "[job]\nPlugin = lib/job.so\nArg = hello world\n");
    load_in(dir, &cfg);
    want = du_fmt("%s/lib/job.so", dir);
    ck_assert_str_eq(cfg.plugin, want);
    ck_assert_str_eq(cfg.arg, "hello world");
    ck_assert_ptr_null(cfg.command);
    wd_config_free(&cfg);

    abs = du_fmt("[job]\nPlugin = %s/lib/job.so\n", dir);
    load_ok(abs, &cfg);
    ck_assert_str_eq(cfg.plugin, want);
    wd_config_free(&cfg);

    /* A bare file name given on the command line: relative to ".". */
    ck_assert_int_eq(chdir(dir), 0);
    char err[WD_ERRLEN];
    link_plugin("x.so");
    du_write_str(dir, "p.ini", "[job]\nPlugin = x.so\n");
    ck_assert_msg(wd_config_load("p.ini", &cfg, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_str_eq(cfg.plugin, "./x.so");
    wd_config_free(&cfg);
}
END_TEST

/* ---- malformed files -------------------------------------------------------
 */

/*
 * Each case: the file's content (len 0: a C string), and what the message
 * must contain after "PATH:": the line ("4: ") and the reason. A message
 * for the whole file has no line: it reads "PATH: [section]: ...".
 */
static const struct bad {
    const char *name;
    const char *text;
    size_t len;
    const char *want;
} bads[] = {
    {"not a number", "[pool]\nMax = abc\n[job]\nCommand = true\n", 0,
     "2: Max = abc: not a whole number"},
    {"trailing junk", "[job]\nCommand = true\n[pool]\nInitial = 3x\n", 0,
     "4: Initial = 3x: not a whole number"},
    {"float", "[pool]\nInitial = 1.5\n", 0,
     "2: Initial = 1.5: not a whole number"},
    {"hex", "[pool]\nMax = 0x10\n", 0, "2: Max = 0x10: not a whole number"},
    {"overflow", "[pool]\nMax = 99999999999999999999\n", 0,
     "2: Max = 99999999999999999999: too large"},
    {"over int", "[pool]\nMin = 2147483648\n", 0,
     "2: Min = 2147483648: too large"},
    {"negative", "[pool]\n\nMin = -1\n", 0,
     "3: Min = -1: must not be negative"},
    {"negative retry", "[middleware]\nRetry = -1\n", 0,
     "2: Retry = -1: must not be negative"},
    {"retry overflow", "[middleware]\nRetry = 4294967296\n", 0,
     "2: Retry = 4294967296: too large"},
    {"empty value", "[pool]\nMax =\n", 0, "2: Max = : empty value"},
    {"empty command", "[job]\nCommand =   ; nothing\n", 0,
     "2: Command = : empty value"},
    {"duplicate", "[pool]\nMax = 2\nMax = 3\n", 0,
     "3: Max = 3: duplicate key (first set on line 2)"},
    {"duplicate other case", "[pool]\nmax = 2\n[job]\n[POOL]\nMAX = 3\n", 0,
     "5: Max = 3: duplicate key (first set on line 2)"},
    {"indented is no continuation", "[pool]\nMax = 2\n   Max = 3\n", 0,
     "3: Max = 3: duplicate key"},
    {"unknown key", "[pool]\nMax = 2\nFoo = 1\n", 0,
     "3: Foo = 1: unknown key in [pool]"},
    {"key in wrong section", "[pool]\nCommand = true\n", 0,
     "2: Command = true: unknown key in [pool]"},
    {"unknown section", "[job]\nCommand = true\n[pools]\n", 0,
     "3: [pools]: unknown section"},
    {"key outside sections", "Max = 1\n[job]\nCommand = true\n", 0,
     "1: Max = 1: key outside any section"},
    {"missing bracket", "[pool\nMax = 1\n", 0, "1: [pool: missing ']'"},
    {"text after bracket", "[pool] extra\n", 0,
     "1: [pool] extra: unexpected text after ']'"},
    {"no equals", "[pool]\njust some words\n", 0,
     "2: just some words: expected 'Key = value'"},
    {"binary garbage",
     "\x7f"
     "ELF\x02\x01\x01\xff\xfe\n",
     0, "1: ?ELF?????: expected 'Key = value'"},
    {"NUL byte", "[job]\nCommand = tr\0ue\n", 21, "2: NUL byte"},
    {"long command", NULL, 0, "2: line too long (over 198 bytes)"},
    {"1 MB line", NULL, 0, "3: line too long (over 198 bytes)"},
    {"no job", "[pool]\nMax = 1\n", 0, " [job]: missing Command or Plugin"},
    {"empty file", "", 0, " [job]: missing Command or Plugin"},
    {"both kinds", "[job]\nCommand = true\nPlugin = x.so\n", 0,
     "3: Plugin = x.so: [job] already has Command (line 2)"},
    {"both kinds reversed", "[job]\nPlugin = x.so\n\nCommand = true\n", 0,
     "4: Command = true: [job] already has Plugin (line 2)"},
    {"arg without plugin", "[job]\nCommand = true\nArg = x\n", 0,
     "3: Arg = x: only a Plugin takes an Arg"},
    {"max below min",
     "[pool]\nMin = 3\nMax = 2\nInitial = 3\n[job]\nCommand = true\n", 0,
     "3: Max = 2: invalid max: must be 0 (unlimited) or >= min"},
    {"initial above max",
     "[pool]\nMax = 4\nInitial = 5\n[job]\nCommand = true\n", 0,
     "3: Initial = 5: invalid initial"},
    {"initial below min",
     "[job]\nCommand = true\n[pool]\nMin = 3\nInitial = 2\n", 0,
     "5: Initial = 2: invalid initial"},
    {"bad bool", "[pool]\nStopOnErrors = maybe\n", 0,
     "2: StopOnErrors = maybe: not a boolean"},
    {"bad duration", "[pool]\nCloseTimeout = 5 seconds\n", 0,
     "2: CloseTimeout = 5 seconds: not a duration"},
    {"negative duration", "[job]\nTimeout = -5s\n", 0,
     "2: Timeout = -5s: must not be negative"},
    {"duration overflow", "[job]\nKillGrace = 99999999999h\n", 0,
     "2: KillGrace = 99999999999h: too large"},
    {"stack too large", "[pool]\nStackSize = 1000G\n", 0,
     "2: StackSize = 1000G: too large (at most 1G)"},
    {"stack overflow", "[pool]\nStackSize = 18446744073709551615\n", 0,
     "2: StackSize = 18446744073709551615: too large"},
    {"backoff reversed", "[job]\nErrorBackoff = 2s..1s\n", 0,
     "2: ErrorBackoff = 2s..1s: the range's start is above its end"},
    {"backoff from zero", "[job]\nErrorBackoff = 0..1s\n", 0,
     "2: ErrorBackoff = 0..1s: the range must start above 0"},
    {"backoff half range", "[job]\nErrorBackoff = 100ms..\n", 0,
     "2: ErrorBackoff = 100ms..: not a duration"},
    {"backoff garbage", "[job]\nErrorBackoff = soon\n", 0,
     "2: ErrorBackoff = soon: not a duration"},
    {"duration unit", "[middleware]\nWait = 10xs\n", 0,
     "2: Wait = 10xs: not a duration"},
    {"fraction", "[job]\nTimeout = 1.5s\n", 0,
     "2: Timeout = 1.5s: not a duration"},
    {"bad size", "[pool]\nStackSize = 1T\n", 0,
     "2: StackSize = 1T: not a size"},
    {"comment cuts command", "[job]\nCommand = echo a ; echo b\n", 0,
     "2: Command = echo a: ' ;' starts an inline comment"},
    {"idle code of the shell", "[job]\nCommand = true\nIdleExitCode = 127\n", 0,
     "3: IdleExitCode = 127: must be 0 (none) or 1..125"},
    {"idle wait unit", "[job]\nIdleWait = 1 s\n", 0,
     "2: IdleWait = 1 s: not a duration"},
    {"target one", "[job]\nCommand = true\n[autoscale]\nTarget = 1\n", 0,
     "4: Target = 1: must be above 0 and below 1"},
    {"target zero", "[autoscale]\nTarget = 0.0\n", 0,
     "2: Target = 0.0: must be above 0 and below 1"},
    {"target percent", "[autoscale]\nTarget = 80%\n", 0,
     "2: Target = 80%: not a decimal number"},
    {"target nan", "[autoscale]\nTarget = nan\n", 0,
     "2: Target = nan: not a decimal number"},
    {"window too short",
     "[autoscale]\nEnable = on\nWindow = 10ms\n[job]\nCommand = true\n", 0,
     "3: Window = 10ms: must be 100ms or more"},
    {"cooldown zero", "[job]\nCommand = true\n[autoscale]\nCooldown = 0\n", 0,
     "4: Cooldown = 0: must be above 0"},
    {"autoscale without max",
     "[job]\nCommand = true\n[autoscale]\nEnable = yes\n", 0,
     "4: Enable = true: [autoscale] needs a [pool] Max"},
    {"autoscale bool", "[autoscale]\nEnable = sometimes\n", 0,
     "2: Enable = sometimes: not a boolean"},
    {"autoscale unknown key", "[autoscale]\nMax = 3\n", 0,
     "2: Max = 3: unknown key in [autoscale]"},
};
#define NBADS (sizeof bads / sizeof bads[0])

/* Writes bads[i] into dir; returns its path. */
static char *
write_bad(const char *dir, size_t i)
{
    const struct bad *b = &bads[i];
    char name[32];
    char *path;

    snprintf(name, sizeof name, "bad%02zu.ini", i);
    if (strcmp(b->name, "long command") == 0) {
        char text[300];
        int n =
            snprintf(text, sizeof text, "[job]\nCommand = echo %0250d\n", 0);
        return du_write(dir, name, text, (size_t)n);
    }
    if (strcmp(b->name, "1 MB line") == 0) {
        size_t len = 1 << 20;
        char *text = malloc(len + 32);
        int head = sprintf(text, "[job]\nCommand = true\n");
        memset(text + head, 'A', len);
        text[head + len] = '\n';
        path = du_write(dir, name, text, head + len + 1);
        free(text);
        return path;
    }
    return du_write(dir, name, b->text, b->len ? b->len : strlen(b->text));
}

/* The message starts with path, then has want right after it. */
static void
check_message(const char *err, const char *path, const char *want,
              const char *what)
{
    size_t plen = strlen(path);

    ck_assert_msg(strncmp(err, path, plen) == 0 && err[plen] == ':',
                  "%s: '%s' does not start with %s:", what, err, path);
    ck_assert_msg(strncmp(err + plen + 1, want, strlen(want)) == 0,
                  "%s: '%s' lacks '%s' after the path", what, err, want);
    ck_assert_msg(strchr(err, '\n') == NULL, "%s: not one line: '%s'", what,
                  err);
}

START_TEST(test_malformed)
{
    char *dir = du_mkdtemp();

    ck_assert_uint_ge(NBADS, 30);
    for (size_t i = 0; i < NBADS; i++) {
        char *path = write_bad(dir, i);
        char err[WD_ERRLEN] = "";
        wd_config cfg;

        ck_assert_msg(wd_config_load(path, &cfg, err, sizeof err) == -1,
                      "%s: accepted", bads[i].name);
        check_message(err, path, bads[i].want, bads[i].name);
        /* Refused means nothing kept. */
        ck_assert_ptr_null(cfg.path);
        ck_assert_ptr_null(cfg.command);
    }
}
END_TEST

/* The files no parse reaches: missing, a folder, unreadable. */
START_TEST(test_unopenable)
{
    char *dir = du_mkdtemp();
    char *missing, *locked;
    char err[WD_ERRLEN];
    wd_config cfg;

    missing = du_fmt("%s/none.ini", dir);
    ck_assert_int_eq(wd_config_load(missing, &cfg, err, sizeof err), -1);
    check_message(err, missing, " No such file or directory", "missing");

    ck_assert_int_eq(wd_config_load(dir, &cfg, err, sizeof err), -1);
    check_message(err, dir, " Is a directory", "directory");

    locked = du_write_str(dir, "locked.ini", "[job]\nCommand = true\n");
    ck_assert_int_eq(chmod(locked, 0), 0);
    du_dac_override(false); /* root reads mode-000 files otherwise */
    int rc = wd_config_load(locked, &cfg, err, sizeof err);
    du_dac_override(true);
    ck_assert_int_eq(rc, -1);
    check_message(err, locked, " Permission denied", "unreadable");
}
END_TEST

/* A stream without a newline: the reader stops one byte past the line's
 * limit instead of waiting for the newline (or the end) that never comes,
 * growing its buffer. The pipe stays open and full: a reader that read on
 * would block for ever. */
START_TEST(test_endless_line)
{
    char err[WD_ERRLEN] = "", *path, chunk[4096];
    int fds[2];
    wd_config cfg;

    ck_assert_int_eq(wd_config_load("/dev/zero", &cfg, err, sizeof err), -1);
    check_message(err, "/dev/zero", "1: line too long (over 198 bytes)",
                  "/dev/zero");

    ck_assert_int_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    memset(chunk, 'A', sizeof chunk);
    while (write(fds[1], chunk, sizeof chunk) > 0)
        ;
    path = du_fmt("/proc/self/fd/%d", fds[0]);
    ck_assert_int_eq(wd_config_load(path, &cfg, err, sizeof err), -1);
    check_message(err, path, "1: line too long (over 198 bytes)", "pipe");
    close(fds[0]);
    close(fds[1]);

    /* And workersd says so and exits 78 (it used to grow to gigabytes). */
    char *dir = du_mkdtemp();
    const char *args[] = {"-t", "-c", "/dev/zero", NULL};
    ck_assert_int_eq(du_run(dir, args), WD_EXIT_CONFIG);
    ck_assert_str_eq(du_read(du_fmt("%s/err", dir)),
                     "workersd: error: /dev/zero:1: line too long (over 198 "
                     "bytes): shorten it, e.g. move a long command into a "
                     "script\n");
}
END_TEST

/* workersd -t: exit 78 and the loader's line, for every case above. */
START_TEST(test_binary_refuses)
{
    char *dir = du_mkdtemp();

    for (size_t i = 0; i <= NBADS; i++) {
        char *path = i < NBADS ? write_bad(dir, i) : NULL;
        char *rundir = du_mkdtemp();
        const char *args[] = {"-t", "-c", NULL, NULL};
        char *errpath, *log, expect[600];
        bool drop = i == NBADS;

        if (drop) {
            path = du_write_str(dir, "locked.ini", "[job]\nCommand = true\n");
            ck_assert_int_eq(chmod(path, 0), 0);
        }
        args[2] = path;
        int code = du_wait(du_spawn(rundir, args, NULL, drop), TU_DEADLINE_MS);
        errpath = du_fmt("%s/err", rundir);
        log = du_read(errpath);
        snprintf(expect, sizeof expect, "workersd: error: %s:%s", path,
                 drop ? " Permission denied" : bads[i].want);
        ck_assert_msg(code == WD_EXIT_CONFIG, "%s: exit %d",
                      drop ? "unreadable" : bads[i].name, code);
        ck_assert_msg(strncmp(log, expect, strlen(expect)) == 0,
                      "%s: log '%s', want '%s'",
                      drop ? "unreadable" : bads[i].name, log, expect);
        ck_assert_msg(strchr(log, '\n') == strrchr(log, '\n'),
                      "more than one line: '%s'", log);
    }
}
END_TEST

Suite *make_config_suite(void);

Suite *
make_config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_durations);
    tcase_add_test(tc, test_duration_format);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_idle_and_autoscale);
    tcase_add_test(tc, test_backoff_forms);
    tcase_add_test(tc, test_every_key);
    tcase_add_test(tc, test_bools);
    tcase_add_test(tc, test_long_command_whole);
    tcase_add_test(tc, test_plugin_paths);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_unopenable);
    tcase_add_test(tc, test_endless_line);
    tcase_add_test(tc, test_binary_refuses);
    suite_add_tcase(s, tc);
    return s;
}
