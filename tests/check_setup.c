/*
 * The tree as a newcomer meets it: scripts/deps.sh installs only what the
 * target needs (make run: the build's; make check: the tests' too) and, when
 * it cannot install, says once what is missing and the command to run as
 * root; and the commands the docs give to steer the service are safe ones.
 *
 * deps.sh runs as a user other than root inside a user namespace
 * (`unshare --user`: its uid reads as 65534, its files are still ours), so it
 * never reaches apt-get; pkg-config is pointed at nothing, which makes the
 * packages found with it look missing.
 */
#include "daemonutil.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define SRC WORKERS_SRC_DIR

/* Runs cmd in the source tree with its stdout and stderr in *out; returns
 * its exit code (-1 when it did not exit). */
static int
run(const char *cmd, char **out)
{
    char *dir = du_mkdtemp(), *log = du_fmt("%s/log", dir);
    int st = system(du_fmt("cd '%s' && ( %s ) >'%s' 2>&1", SRC, cmd, log));

    *out = du_read(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* With everything installed (make check just made sure), a no-op. */
START_TEST(test_deps_present)
{
    char *out;

    ck_assert_int_eq(run("scripts/deps.sh test", &out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(run("scripts/deps.sh", &out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(run("scripts/deps.sh bogus", &out), 64);
}
END_TEST

#define AS_USER                                                                \
    "unshare --user env PKG_CONFIG_LIBDIR=/nonexistent "                       \
    "SUDO=/nonexistent/sudo scripts/deps.sh"

START_TEST(test_deps_not_root)
{
    char *out;

    if (run("unshare --user true", &out) != 0) {
        printf("skipped: test_deps_not_root needs a user namespace "
               "(unshare --user): %s",
               out);
        return;
    }
    /* make run: the build's packages only, and a command to copy. */
    ck_assert_int_eq(run(AS_USER, &out), 1);
    ck_assert_str_eq(out, "deps: missing: libinih-dev libjansson-dev "
                          "libmicrohttpd-dev\n"
                          "deps: not root, and no /nonexistent/sudo: run as "
                          "root:\n"
                          "    apt-get update && apt-get install -y "
                          "--no-install-recommends libinih-dev "
                          "libjansson-dev libmicrohttpd-dev\n");
    /* make check: the tests' too. */
    ck_assert_int_eq(run(AS_USER " test", &out), 1);
    ck_assert_str_eq(out, "deps: missing: libinih-dev libjansson-dev "
                          "libmicrohttpd-dev check\n"
                          "deps: not root, and no /nonexistent/sudo: run as "
                          "root:\n"
                          "    apt-get update && apt-get install -y "
                          "--no-install-recommends libinih-dev libjansson-dev "
                          "libmicrohttpd-dev check\n");
}
END_TEST

/*
 * The install test skips a part (the units' verification, the man pages'
 * lint) when the command it needs is absent: `deps.sh test` must install
 * each command it looks for, or a fresh machine skips them silently.
 */
START_TEST(test_deps_install_tools)
{
    char *test = du_read(SRC "/tests/check_install.c");
    char *deps = du_read(SRC "/scripts/deps.sh");
    int looked = 0;

    ck_assert_msg(deps[0] != '\0', "cannot read scripts/deps.sh");
    for (char *p = test; (p = strstr(p, "command -v ")) != NULL; looked++) {
        p += strlen("command -v ");
        size_t len = strcspn(p, " \"'>;)");
        char *have = du_fmt("have %.*s ||", (int)len, p);
        ck_assert_msg(strstr(deps, have) != NULL,
                      "check_install.c looks for %.*s, deps.sh test does not "
                      "install it",
                      (int)len, p);
    }
    ck_assert_int_ge(looked, 3);
}
END_TEST

/*
 * A plain `systemctl kill -s SIGUSR1 workersd` signals every process of the
 * unit, the jobs' shells too, which die of it: every `systemctl kill` the
 * docs show must name the main process alone.
 */
START_TEST(test_docs_kill_main_only)
{
    static const char *const files[] = {"README.md", "conf/workersd.service",
                                        "cmd/workersd/workersd.8"};

    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *text = du_read(du_fmt("%s/%s", SRC, files[i]));
        int shown = 0;

        ck_assert_msg(text[0] != '\0', "cannot read %s", files[i]);
        for (char *line = strtok(text, "\n"); line != NULL;
             line = strtok(NULL, "\n")) {
            if (strstr(line, "systemctl kill") == NULL)
                continue;
            shown++;
            ck_assert_msg(strstr(line, "kill-whom=main") != NULL ||
                              strstr(line, "kill\\-whom=main") != NULL,
                          "%s: %s", files[i], line);
        }
        ck_assert_msg(shown > 0, "%s shows no systemctl kill", files[i]);
    }
}
END_TEST

/* An absolute BUILD inside the tree (the install test passes one) builds
 * the same objects as the relative one: the .d files must name them one
 * way, or a changed header leaves stale objects in the next build. */
START_TEST(test_build_one_spelling)
{
    char *out;

    unsetenv("MAKEFLAGS");
    unsetenv("MAKELEVEL");
    ck_assert_int_eq(
        run(du_fmt("make -n -B BUILD='%s' all", WORKERS_BUILD_DIR), &out), 0);
    char *abs = strstr(out, du_fmt("%s/", WORKERS_BUILD_DIR));
    ck_assert_msg(abs == NULL, "an absolute target: %.200s", abs);
    ck_assert_msg(strstr(out, " -o build") != NULL, "%.200s", out);
}
END_TEST

Suite *make_setup_suite(void);

Suite *
make_setup_suite(void)
{
    Suite *s = suite_create("setup");
    TCase *tc = tcase_create("setup");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_deps_present);
    tcase_add_test(tc, test_deps_not_root);
    tcase_add_test(tc, test_deps_install_tools);
    tcase_add_test(tc, test_docs_kill_main_only);
    tcase_add_test(tc, test_build_one_spelling);
    suite_add_tcase(s, tc);
    return s;
}
