/*
 * What a user gets from the tree: `make install DESTDIR=... PREFIX=/usr`
 * gives exactly the documented layout, a program built with pkg-config
 * against it runs a pool, the systemd units verify (and keep a low
 * exposure), the installed plugin.ini loads, `make uninstall` removes every
 * file; the README's examples (embedding, autoscaling) compile and run; the
 * man pages render without a warning.
 *
 * These tests drive make, the compiler, pkg-config, systemd-analyze and groff
 * as child processes through /bin/sh, each with its output captured in a log
 * file under the build folder that a failure message quotes. They pass make
 * the CC, OPT, SAN and BUILD this runner was built with, so the install
 * rebuilds nothing differently (check-asan/check-tsan install their own
 * sanitized artefacts), and build programs with the same SAN flags, so that
 * a sanitized libworkers loads into them. Scratch files live in
 * BUILD/tests/install/, removed before each use and left after a failure for
 * inspection.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SRC WORKERS_SRC_DIR
#define BLD WORKERS_BUILD_DIR
#define SCRATCH BLD "/tests/install"
#define DESTDIR SCRATCH "/dest"

/* What the README example prints first; the rest depends on timing. */
#define EXAMPLE_OUT "more: max workers reached\nworkers: 3\n"

/* Make and compilers are slow under sanitizers on a loaded machine. */
#define SLOW_TIMEOUT_S 300

/* Reads a whole file into a malloc'd string; NULL if it cannot. */
static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/*
 * Runs fmt as a /bin/sh command with stdout and stderr in log; returns its
 * wait status. The environment is the test's own minus the outer make's
 * jobserver settings, which would otherwise make the inner make warn.
 */
static int sh(const char *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
sh(const char *log, const char *fmt, ...)
{
    char cmd[8192], full[8192 + PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    ck_assert_int_lt(n, (int)sizeof(cmd));
    snprintf(full, sizeof(full), "( %s ) >'%s' 2>&1", cmd, log);
    unsetenv("MAKEFLAGS");
    unsetenv("MFLAGS");
    unsetenv("MAKELEVEL");
    return system(full);
}

/* Asserts that the command sh() ran exited 0, quoting its log if not. */
#define ck_assert_sh_ok(status, log, what)                                     \
    do {                                                                       \
        int st_ = (status);                                                    \
        if (!WIFEXITED(st_) || WEXITSTATUS(st_) != 0) {                        \
            char *out_ = slurp(log);                                           \
            ck_abort_msg("%s failed (status 0x%x):\n%s", (what), st_,          \
                         out_ ? out_ : "(no output)");                         \
        }                                                                      \
    } while (0)

static void
fresh_scratch(void)
{
    char log[] = BLD "/tests/install-rm.log";
    ck_assert_sh_ok(sh(log, "rm -rf '%s' && mkdir -p '%s'", SCRATCH, SCRATCH),
                    log, "making " SCRATCH);
}

/*
 * Writes a README example to path: the first ```c block after the
 * "<!-- example: NAME -->" marker.
 */
static void
extract_example(const char *name, const char *path)
{
    char *readme = slurp(SRC "/README.md");
    ck_assert_msg(readme != NULL, "cannot read README.md");
    char marker[64];
    snprintf(marker, sizeof(marker), "<!-- example: %s -->", name);
    char *mark = strstr(readme, marker);
    ck_assert_msg(mark != NULL, "README.md has no \"%s\" marker", marker);
    char *start = strstr(mark, "\n```c\n");
    ck_assert_msg(start != NULL, "no ```c block after the README marker");
    start += strlen("\n```c\n");
    char *end = strstr(start, "\n```\n");
    ck_assert_msg(end != NULL, "README example block not closed");
    FILE *f = fopen(path, "we");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fwrite(start, 1, (size_t)(end - start) + 1, f);
    ck_assert_int_eq(fclose(f), 0);
    free(readme);
}

/* The flags the README example must compile cleanly with. */
#define EX_CFLAGS                                                              \
    "-std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes "          \
    "-Wmissing-prototypes -Wformat=2 -Werror " WORKERS_SAN

/* Runs the built example (with env set before it), checks what it prints. */
static void
run_example(const char *env, const char *bin)
{
    char log[] = SCRATCH "/example-run.log";
    ck_assert_sh_ok(sh(log, "%s '%s'", env, bin), log, "the README example");
    char *out = slurp(log);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strncmp(out, EXAMPLE_OUT, strlen(EXAMPLE_OUT)) == 0,
                  "README example printed:\n%s", out);
    unsigned long runs = 0;
    char *r = strstr(out, "runs: ");
    ck_assert_msg(r && sscanf(r, "runs: %lu", &runs) == 1 && runs >= 100,
                  "README example printed:\n%s", out);
    free(out);
}

/* Extracts README example `name` into SCRATCH/name.c and builds
 * SCRATCH/name against the static library. */
static void
build_example(const char *name)
{
    char src[PATH_MAX], log[PATH_MAX];
    snprintf(src, sizeof(src), SCRATCH "/%s.c", name);
    snprintf(log, sizeof(log), SCRATCH "/%s-cc.log", name);
    extract_example(name, src);
    ck_assert_sh_ok(sh(log,
                       "%s " EX_CFLAGS " -I'%s/lib' -o '" SCRATCH "/%s' "
                       "'%s' '%s/libworkers.a' -lpthread",
                       WORKERS_CC, SRC, name, src, BLD),
                    log, "compiling the README example");
}

START_TEST(test_readme_example)
{
    fresh_scratch();
    build_example("embed");
    run_example("", SCRATCH "/embed");
}
END_TEST

/* The autoscaling example drains its backlog, growing from one worker
 * (its first change) and back; it stops itself. */
START_TEST(test_readme_autoscale_example)
{
    fresh_scratch();
    build_example("autoscale");
    char log[] = SCRATCH "/autoscale-run.log";
    ck_assert_sh_ok(sh(log, "'" SCRATCH "/autoscale'"), log,
                    "the README autoscale example");
    char *out = slurp(log);
    ck_assert_ptr_nonnull(out);
    const char first[] = "autoscale: 1 -> 2 workers (utilisation 1.00 over ";
    ck_assert_msg(strncmp(out, first, strlen(first)) == 0,
                  "README autoscale example printed:\n%s", out);
    ck_assert_msg(strstr(out, "-> 1 worker (") != NULL,
                  "README autoscale example printed:\n%s", out);
    free(out);
}
END_TEST

/* One installed file: its path under DESTDIR, its mode or symlink target. */
struct inst {
    const char *path;
    mode_t mode;        /* 0 for a symlink */
    const char *target; /* symlink target, or a line the file must hold */
};

static const struct inst installed[] = {
    {"/usr/sbin/workersd", 0755, NULL},
    {"/usr/bin/workersctl", 0755, NULL},
    {"/usr/lib/libworkers.a", 0644, NULL},
    {"/usr/lib/libworkers.so.2.0.0", 0755, NULL},
    {"/usr/lib/libworkers.so.2", 0, "libworkers.so.2.0.0"},
    {"/usr/lib/libworkers.so", 0, "libworkers.so.2"},
    {"/usr/include/workers.h", 0644, "#define WORKERS_H"},
    {"/usr/lib/pkgconfig/workers.pc", 0644, "\nVersion: 2.0.0\n"},
    {"/usr/lib/systemd/system/workersd.service", 0644,
     "ExecStart=/usr/sbin/workersd -c /etc/workersd/pool.ini"},
    {"/usr/lib/systemd/system/workersd@.service", 0644,
     "ExecStart=/usr/sbin/workersd -c /etc/workersd/%i.ini"},
    {"/etc/workersd/pool.ini", 0644, "[job]"},
    {"/etc/workersd/plugin.ini", 0644,
     "\nPlugin = /usr/lib/workers/example.so\n"},
    {"/usr/share/man/man8/workersd.8", 0644, ".TH WORKERSD 8"},
    {"/usr/share/man/man5/workersd.ini.5", 0644, ".TH WORKERSD.INI 5"},
    {"/usr/share/man/man1/workersctl.1", 0644, ".TH WORKERSCTL 1"},
};

static void
check_installed(const struct inst *in)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "%s%s", DESTDIR, in->path);
    ck_assert_msg(lstat(path, &st) == 0, "%s: %s", in->path, strerror(errno));
    if (in->mode == 0) {
        char target[PATH_MAX];
        ck_assert_msg(S_ISLNK(st.st_mode), "%s is not a symlink", in->path);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        ck_assert_int_gt(n, 0);
        target[n] = '\0';
        ck_assert_str_eq(target, in->target);
        return;
    }
    ck_assert_msg(S_ISREG(st.st_mode), "%s is not a file", in->path);
    ck_assert_msg((st.st_mode & 07777) == in->mode, "%s: mode %o, want %o",
                  in->path, st.st_mode & 07777, in->mode);
    if (in->target) {
        char *text = slurp(path);
        ck_assert_ptr_nonnull(text);
        ck_assert_msg(strstr(text, in->target), "%s lacks \"%s\"", in->path,
                      in->target);
        free(text);
    }
}

/* Counts the non-directories under dir (recursively). */
static int
count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ck_assert_int_eq(lstat(path, &st), 0);
        n += S_ISDIR(st.st_mode) ? count_files(path) : 1;
    }
    closedir(d);
    return n;
}

/*
 * The plugins the tree ships (cmd/plugins/X.c -> /usr/lib/workers/X.so,
 * mode 755); returns how many were found installed.
 */
static int
check_plugins(void)
{
    DIR *d = opendir(SRC "/cmd/plugins");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0)
            continue;
        char rel[PATH_MAX];
        snprintf(rel, sizeof(rel), "/usr/lib/workers/%.*s.so", (int)len - 2,
                 e->d_name);
        struct inst in = {rel, 0755, NULL};
        check_installed(&in);
        n++;
    }
    closedir(d);
    return n;
}

/*
 * The ELF file at path has a dynamic tag `tag` (SONAME, NEEDED) naming
 * want: the installed library is libworkers.so.2 (version 2 broke version
 * 1's ABI), and a program built against it asks for that name.
 */
static void
check_dynamic(const char *path, const char *tag, const char *want)
{
    char log[] = SCRATCH "/readelf.log";
    ck_assert_sh_ok(sh(log, "readelf -d '%s'", path), log, "readelf -d");
    char *out = slurp(log);
    ck_assert_ptr_nonnull(out);
    char t[32], w[64];
    snprintf(t, sizeof(t), "(%s)", tag);
    snprintf(w, sizeof(w), "[%s]", want);
    bool found = false;
    for (char *line = strtok(out, "\n"); line && !found;
         line = strtok(NULL, "\n"))
        found = strstr(line, t) && strstr(line, w);
    free(out);
    ck_assert_msg(found, "%s: no %s %s (see %s)", path, tag, w, log);
}

static int
make_install(const char *target, const char *log)
{
    return sh(log,
              "make -C '%s' %s DESTDIR='%s' PREFIX=/usr BUILD='%s' CC='%s' "
              "OPT='%s' SAN='%s'",
              SRC, target, DESTDIR, BLD, WORKERS_CC, WORKERS_OPT, WORKERS_SAN);
}

/*
 * systemd-analyze verify on the installed units (the template as an
 * instance), their ExecStart pointed at the staged binary (verify checks
 * that it is executable), and MANPATH at the staged man pages (verify runs
 * man for each Documentation=); then their security exposure, which must
 * stay at 2.0 ("OK") or below (the unit without sandboxing was 5.8
 * "MEDIUM"). Skipped, with the reason printed, when the tool is absent
 * (`deps.sh test` installs it: systemd is no dependency of the build).
 */
static void
verify_unit(void)
{
    char log[] = SCRATCH "/verify.log";
    if (sh(log, "command -v systemd-analyze") != 0) {
        printf("skipped: systemd-analyze is not installed, the units are "
               "not verified\n");
        return;
    }
    int st = sh(log,
                "mkdir -p '%s/unit' && cd '%s/usr/lib/systemd/system' && "
                "for u in workersd.service workersd@.service; do "
                "sed 's|=/usr/sbin/|=%s/usr/sbin/|' $u >'%s/unit/'$u; done && "
                "cd '%s/unit' && "
                "if command -v man >/dev/null; then m=; else m=--man=no; fi && "
                "MANPATH='%s/usr/share/man' SYSTEMD_LOG_LEVEL=warning "
                "systemd-analyze verify $m workersd.service "
                "workersd@test.service",
                SCRATCH, DESTDIR, DESTDIR, SCRATCH, SCRATCH, DESTDIR);
    ck_assert_sh_ok(st, log, "systemd-analyze verify");
    /* verify exits 0 on some warnings; a clean unit prints nothing. */
    char *out = slurp(log);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(out[0] == '\0', "systemd-analyze verify:\n%s", out);
    free(out);

    if (sh(log, "systemd-analyze security --help | grep -q -- --offline") !=
        0) {
        printf("skipped: this systemd-analyze has no security --offline, "
               "the units' exposure is not measured\n");
        return;
    }
    ck_assert_sh_ok(sh(log,
                       "cd '%s/unit' && for u in workersd.service "
                       "workersd@test.service; do SYSTEMD_LOG_LEVEL=warning "
                       "systemd-analyze security --offline=true "
                       "--threshold=20 $u >$u.txt || { tail -n 1 $u.txt; "
                       "exit 1; }; done",
                       SCRATCH),
                    log, "systemd-analyze security (exposure above 2.0)");
}

/* The installed plugin.ini names the installed example, and -t takes it
 * (its Plugin pointed into DESTDIR). */
static void
check_plugin_ini(void)
{
    char log[] = SCRATCH "/plugin-ini.log";
    ck_assert_sh_ok(sh(log,
                       "sed 's|^Plugin = |&%s|' '%s/etc/workersd/plugin.ini' "
                       ">'%s/plugin.ini' && '%s/usr/sbin/workersd' -t -c "
                       "'%s/plugin.ini'",
                       DESTDIR, DESTDIR, SCRATCH, DESTDIR, SCRATCH),
                    log, "workersd -t on the installed plugin.ini");
}

START_TEST(test_install_uninstall)
{
    fresh_scratch();
    char log[] = SCRATCH "/install.log";
    ck_assert_sh_ok(make_install("install", log), log, "make install");

    size_t n = sizeof(installed) / sizeof(installed[0]);
    for (size_t i = 0; i < n; i++)
        check_installed(&installed[i]);
    int plugins = check_plugins();
    ck_assert_int_eq(count_files(DESTDIR), (int)n + plugins);
    check_dynamic(DESTDIR "/usr/lib/libworkers.so.2.0.0", "SONAME",
                  "libworkers.so.2");
    verify_unit();
    check_plugin_ini();

    /* A program built against the installed library, as a user would. */
    extract_example("embed", SCRATCH "/example.c");
    char cclog[] = SCRATCH "/example-cc.log";
    ck_assert_sh_ok(
        sh(cclog,
           "export PKG_CONFIG_PATH='%s/usr/lib/pkgconfig' "
           "PKG_CONFIG_SYSROOT_DIR='%s' "
           "PKG_CONFIG_LIBDIR='%s/usr/lib/pkgconfig' "
           "PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 && "
           "flags=$(pkg-config --cflags --libs workers) && echo \"$flags\" && "
           "case \"$flags\" in *'-I%s/usr/include'*'-L%s/usr/lib'*) ;; "
           "*) echo 'pkg-config flags miss the DESTDIR' && exit 1;; esac && "
           "%s " EX_CFLAGS " -o '%s/example' '%s/example.c' $flags",
           DESTDIR, DESTDIR, DESTDIR, DESTDIR, DESTDIR, WORKERS_CC, SCRATCH,
           SCRATCH),
        cclog, "building against the installed library");
    run_example("LD_LIBRARY_PATH='" DESTDIR "/usr/lib'", SCRATCH "/example");
    check_dynamic(SCRATCH "/example", "NEEDED", "libworkers.so.2");

    /* The installed binary is the daemon and runs from there. */
    char vlog[] = SCRATCH "/version.log";
    ck_assert_sh_ok(sh(vlog, "'%s/usr/sbin/workersd' -V", DESTDIR), vlog,
                    "workersd -V");
    ck_assert_sh_ok(sh(vlog, "'%s/usr/bin/workersctl' -V", DESTDIR), vlog,
                    "workersctl -V");

    ck_assert_sh_ok(make_install("uninstall", log), log, "make uninstall");
    ck_assert_int_eq(count_files(DESTDIR), 0);
}
END_TEST

/* groff's -ww warns of every roff mistake; man-db uses the same engine. */
START_TEST(test_man_pages)
{
    static const char *const pages[] = {"cmd/workersd/workersd.8",
                                        "cmd/workersd/workersd.ini.5",
                                        "cmd/workersctl/workersctl.1"};
    char log[] = BLD "/tests/man.log";
    if (sh(log, "command -v groff") != 0) {
        printf("skipped: groff is not installed, the man pages are not "
               "linted\n");
        return;
    }
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        ck_assert_sh_ok(
            sh(log, "groff -man -ww -z -Tutf8 '%s/%s'", SRC, pages[i]), log,
            pages[i]);
        char *out = slurp(log);
        ck_assert_ptr_nonnull(out);
        ck_assert_msg(out[0] == '\0', "%s:\n%s", pages[i], out);
        free(out);
    }
}
END_TEST

/* One row of the README's ini reference table. */
struct ini_key {
    char section[32];
    char key[32];
    char def[32];
};

/* Copies a table cell without its spaces and backticks. */
static void
cell(char *dst, size_t cap, const char *from, const char *to)
{
    size_t n = 0;
    for (; from < to && n + 1 < cap; from++)
        if (*from != ' ' && *from != '`')
            dst[n++] = *from;
    dst[n] = '\0';
}

/* Parses the README's "The ini file" table; returns the number of keys. */
static int
readme_ini_keys(struct ini_key *keys, int cap)
{
    char *readme = slurp(SRC "/README.md");
    ck_assert_ptr_nonnull(readme);
    char *line = strstr(readme, "\n## The ini file\n");
    ck_assert_msg(line != NULL, "README.md has no \"The ini file\" section");
    line = strstr(line, "\n| Section");
    ck_assert_msg(line != NULL, "README.md has no ini table");
    int n = 0;
    char section[32] = "";
    for (line++; line[0] == '|'; line = strchr(line, '\n') + 1) {
        char *c1 = line + 1, *c2 = strchr(c1, '|');
        char *c3 = c2 ? strchr(c2 + 1, '|') : NULL;
        char *c4 = c3 ? strchr(c3 + 1, '|') : NULL;
        ck_assert_msg(c4 != NULL, "malformed README ini table row");
        struct ini_key k;
        cell(k.section, sizeof(k.section), c1, c2);
        cell(k.key, sizeof(k.key), c2 + 1, c3);
        cell(k.def, sizeof(k.def), c3 + 1, c4);
        if (!strcmp(k.key, "Key") || k.key[0] == '-')
            continue;
        if (k.section[0])
            snprintf(section, sizeof(section), "%s", k.section);
        snprintf(k.section, sizeof(k.section), "%s", section);
        ck_assert_int_lt(n, cap);
        keys[n++] = k;
    }
    free(readme);
    return n;
}

/*
 * Runs workersd -t on an ini holding the README's [job] lines (job_lines)
 * and every other documented key at its documented default, so a key the
 * daemon does not know, or a default it refuses, fails here.
 */
static void
check_ini_with_defaults(const char *job_lines)
{
    struct ini_key keys[64];
    int n = readme_ini_keys(keys, 64);
    ck_assert_int_ge(n, 10);
    char ini[] = SCRATCH "/defaults.ini";
    FILE *f = fopen(ini, "we");
    ck_assert_ptr_nonnull(f);
    const char *section = "";
    for (int i = 0; i < n; i++) {
        if (strcmp(section, keys[i].section) != 0) {
            section = keys[i].section;
            fprintf(f, "%s\n", section);
            if (!strcmp(section, "[job]"))
                fputs(job_lines, f);
        }
        if (strcmp(keys[i].def, "-") != 0 && strcmp(keys[i].def, "none") != 0)
            fprintf(f, "%s = %s\n", keys[i].key, keys[i].def);
    }
    ck_assert_int_eq(fclose(f), 0);
    char log[] = SCRATCH "/check-t.log";
    ck_assert_sh_ok(sh(log, "'%s/workersd' -t -c '%s'", BLD, ini), log,
                    "workersd -t on the README's defaults");
}

START_TEST(test_readme_ini_keys)
{
    fresh_scratch();
    check_ini_with_defaults("Command = true\n");

    /* Each documented key is in the man page too. */
    struct ini_key keys[64];
    int n = readme_ini_keys(keys, 64);
    char *man = slurp(SRC "/cmd/workersd/workersd.ini.5");
    ck_assert_ptr_nonnull(man);
    for (int i = 0; i < n; i++) {
        char entry[64];
        snprintf(entry, sizeof(entry), "\n.BI %s \" = ", keys[i].key);
        ck_assert_msg(strstr(man, entry), "workersd.ini(5) lacks %s",
                      keys[i].key);
    }
    free(man);
}
END_TEST

/* The README's plugin builds and workersd loads it (-t: dlopen, symbols). */
START_TEST(test_readme_plugin)
{
    fresh_scratch();
    extract_example("plugin", SCRATCH "/hello.c");
    char log[] = SCRATCH "/plugin-cc.log";
    ck_assert_sh_ok(sh(log,
                       "%s " EX_CFLAGS " -shared -fPIC -I'%s/lib' -o "
                       "'%s/hello.so' '%s/hello.c'",
                       WORKERS_CC, SRC, SCRATCH, SCRATCH),
                    log, "compiling the README plugin");
    check_ini_with_defaults("Plugin = " SCRATCH "/hello.so\nArg = hello\n");
}
END_TEST

/* The options the man page and README document are the ones -h prints. */
START_TEST(test_options_documented)
{
    static const char *const opts[] = {"-c", "-t", "-v", "-q", "-h", "-V"};
    char log[] = BLD "/tests/help.log";
    ck_assert_sh_ok(sh(log, "'%s/workersd' -h", BLD), log, "workersd -h");
    char *help = slurp(log);
    char *man = slurp(SRC "/cmd/workersd/workersd.8");
    char *readme = slurp(SRC "/README.md");
    ck_assert(help && man && readme);
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        char roff[16], md[16];
        snprintf(roff, sizeof(roff), "\\%s", opts[i]);
        snprintf(md, sizeof(md), "`%s", opts[i]);
        ck_assert_msg(strstr(help, opts[i]), "-h lacks %s:\n%s", opts[i], help);
        ck_assert_msg(strstr(man, roff), "workersd.8 lacks %s", opts[i]);
        ck_assert_msg(strstr(readme, md), "README lacks %s", opts[i]);
    }
    /* The exit codes, in all three. */
    static const char *const codes[] = {"64", "70", "78"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_msg(strstr(help, codes[i]), "-h lacks exit %s", codes[i]);
        ck_assert_msg(strstr(man, codes[i]), "man lacks exit %s", codes[i]);
        ck_assert_msg(strstr(readme, codes[i]), "README lacks %s", codes[i]);
    }
    free(help);
    free(man);
    free(readme);
}
END_TEST

Suite *make_install_suite(void);

Suite *
make_install_suite(void)
{
    Suite *s = suite_create("install");
    TCase *tc = tcase_create("install");
    tcase_set_timeout(tc, SLOW_TIMEOUT_S);
    tcase_add_test(tc, test_readme_example);
    tcase_add_test(tc, test_readme_autoscale_example);
    tcase_add_test(tc, test_install_uninstall);
    tcase_add_test(tc, test_man_pages);
    tcase_add_test(tc, test_readme_ini_keys);
    tcase_add_test(tc, test_readme_plugin);
    tcase_add_test(tc, test_options_documented);
    suite_add_tcase(s, tc);
    return s;
}
