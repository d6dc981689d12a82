/*
 * The files workersd trusts (trust.c): a config file or plugin that another
 * user could change (its mode, its owner, a folder above it), a plugin that
 * is no regular file (a FIFO must not block) or an ELF object for another
 * machine or class. Each is refused by the loader, and by `workersd -t`
 * with exit 78 and the same line; the good forms are accepted.
 *
 * The files live in the runner's temp folder, whose own folders must pass
 * the rule (check_main.c picks one that does); a test that cannot make a
 * case (chown needs root) says why it skips it.
 */
#include "daemonutil.h"
#include "testutil.h"
#include "workersd.h"

#include <check.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A temp folder whose folders pass the rule, or NULL (and why, printed). */
static char *
trusted_dir(void)
{
    char *dir = du_mkdtemp(), err[WD_ERRLEN];
    char *probe = du_write_str(dir, "probe", "");
    struct stat st;

    ck_assert_int_eq(stat(probe, &st), 0);
    if (wd_trust_config(probe, &st, err, sizeof err) == 0)
        return dir;
    printf("skipped: the temp folder %s fails the rule itself (%s): set "
           "TMPDIR to a folder only root or you can write\n",
           dir, err);
    return NULL;
}

/* What the loader says of path (NULL when it accepts it). */
static char *
load_error(const char *path)
{
    char err[WD_ERRLEN] = "";
    wd_config cfg;

    if (wd_config_load(path, &cfg, err, sizeof err) == 0) {
        wd_config_free(&cfg);
        return NULL;
    }
    return du_fmt("%s", err);
}

/* The loader refuses path with want; workersd -t exits 78 with the same
 * line, within the usual deadline (a FIFO must not block it). */
static void
refused(const char *path, const char *want)
{
    char *got = load_error(path), *dir = du_mkdtemp();
    const char *args[] = {"-t", "-c", path, NULL};

    ck_assert_msg(got != NULL, "%s accepted, want '%s'", path, want);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(du_run(dir, args), WD_EXIT_CONFIG);
    ck_assert_str_eq(du_read(du_fmt("%s/err", dir)),
                     du_fmt("workersd: error: %s\n", want));
}

static void
accepted(const char *path)
{
    char *got = load_error(path);

    ck_assert_msg(got == NULL, "refused: %s", got);
}

#define COMMAND_INI "[job]\nCommand = true\n"

/* ---- the config file ---------------------------------------------------- */

START_TEST(test_config_mode)
{
    char *dir = trusted_dir();
    if (dir == NULL)
        return;
    char *ini = du_write_str(dir, "pool.ini", COMMAND_INI);

    ck_assert_int_eq(chmod(ini, 0666), 0);
    refused(ini, du_fmt("%s: mode 0666: writable by others than its owner: "
                        "chmod go-w",
                        ini));
    ck_assert_int_eq(chmod(ini, 0620), 0);
    refused(ini, du_fmt("%s: mode 0620: writable by others than its owner: "
                        "chmod go-w",
                        ini));
    ck_assert_int_eq(chmod(ini, 0644), 0);
    accepted(ini);
    ck_assert_int_eq(chmod(ini, 0400), 0);
    accepted(ini);
}
END_TEST

START_TEST(test_config_folder)
{
    char *dir = trusted_dir();
    if (dir == NULL)
        return;
    char *open = du_fmt("%s/open", dir), *ini;

    ck_assert_int_eq(mkdir(open, 0755), 0);
    ck_assert_int_eq(mkdir(du_fmt("%s/sub", open), 0755), 0);
    ini = du_write_str(open, "sub/pool.ini", COMMAND_INI);
    ck_assert_int_eq(chmod(open, 0777), 0);
    refused(ini, du_fmt("%s: folder %s (mode 0777) is writable by others than "
                        "its owner and not sticky: chmod go-w %s",
                        ini, open, open));
    ck_assert_int_eq(chmod(open, 0775), 0);
    refused(ini, du_fmt("%s: folder %s (mode 0775) is writable by others than "
                        "its owner and not sticky: chmod go-w %s",
                        ini, open, open));
    /* Sticky, as /tmp: others cannot replace what they do not own. */
    ck_assert_int_eq(chmod(open, 01777), 0);
    accepted(ini);

    /* A link in a safe folder to a file in an open one: the target's
     * folders count. */
    ck_assert_int_eq(chmod(open, 0777), 0);
    char *link = du_fmt("%s/link.ini", dir);
    ck_assert_int_eq(symlink(ini, link), 0);
    refused(link, du_fmt("%s: folder %s (mode 0777) is writable by others "
                         "than its owner and not sticky: chmod go-w %s",
                         link, open, open));
}
END_TEST

/* Ownership needs chown, which only root may do. */
START_TEST(test_config_owner)
{
    char *dir = trusted_dir();
    if (dir == NULL)
        return;
    if (geteuid() != 0) {
        printf("skipped: test_config_owner needs root to chown files\n");
        return;
    }
    char *ini = du_write_str(dir, "pool.ini", COMMAND_INI);
    char *sub = du_fmt("%s/sub", dir), *inner;

    ck_assert_int_eq(chown(ini, 4242, 4242), 0);
    refused(ini, du_fmt("%s: owned by uid 4242: only root or workersd's user "
                        "(uid 0) may own it",
                        ini));
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    inner = du_write_str(sub, "pool.ini", COMMAND_INI);
    ck_assert_int_eq(chown(sub, 4242, 4242), 0);
    refused(inner, du_fmt("%s: folder %s is owned by uid 4242: only root or "
                          "workersd's user (uid 0) may own it",
                          inner, sub));
}
END_TEST

/* A stream (-c /dev/stdin) or a device has no owner to trust: it is read. */
START_TEST(test_config_stream)
{
    char *got = load_error("/dev/null");

    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "/dev/null: [job]: missing Command or Plugin (give "
                          "exactly one)");
}
END_TEST

/* ---- plugins ------------------------------------------------------------ */

/* The example plugin's bytes at dir/name with mode, patched at off. */
static char *
plugin_copy(const char *dir, const char *name, mode_t mode, size_t off,
            const void *patch, size_t len)
{
    char *example = du_keep(tu_build_path("plugins/example.so"));
    FILE *f = fopen(example, "re");
    static char buf[1 << 20];
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_uint_gt(n, 64);
    ck_assert_uint_lt(n, sizeof buf);
    if (patch != NULL)
        memcpy(buf + off, patch, len);
    char *path = du_write(dir, name, buf, n);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

/* dir/name.ini naming the plugin at path. */
static char *
plugin_ini(const char *dir, const char *name, const char *path)
{
    return du_write_str(dir, du_fmt("%s.ini", name),
                        du_fmt("[job]\nPlugin = %s\n", path));
}

/* The loader and -t refuse an ini naming the plugin at path with why. */
static void
plugin_refused(const char *dir, const char *name, const char *path,
               const char *why)
{
    char *ini = plugin_ini(dir, name, path);

    refused(ini, du_fmt("%s:2: Plugin %s: %s", ini, path, why));
}

START_TEST(test_plugin_fifo)
{
    char *dir = trusted_dir();
    if (dir == NULL)
        return;
    char *fifo = du_fmt("%s/job.so", dir);

    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    /* Used to hang in dlopen for ever, even with -t. */
    plugin_refused(dir, "fifo", fifo, "not a regular file (a FIFO)");
    plugin_refused(dir, "folder", dir, "not a regular file (a folder)");
    plugin_refused(dir, "null", "/dev/null",
                   "not a regular file (a character device)");
    plugin_refused(dir, "none", du_fmt("%s/none.so", dir),
                   "No such file or directory");
}
END_TEST

START_TEST(test_plugin_mode)
{
    char *dir = trusted_dir();
    if (dir == NULL)
        return;
    char *open = du_fmt("%s/open", dir), *so, *link;

    so = plugin_copy(dir, "job.so", 0666, 0, NULL, 0);
    plugin_refused(dir, "mode", so,
                   "mode 0666: writable by others than its owner: chmod go-w");
    ck_assert_int_eq(chmod(so, 0755), 0);
    accepted(plugin_ini(dir, "good", so));

    /* In an open folder, or named by a link there. */
    ck_assert_int_eq(mkdir(open, 0777), 0);
    ck_assert_int_eq(chmod(open, 0777), 0);
    char *why = du_fmt("folder %s (mode 0777) is writable by others than its "
                       "owner and not sticky: chmod go-w %s",
                       open, open);
    plugin_refused(dir, "openfolder",
                   plugin_copy(open, "job.so", 0755, 0, NULL, 0), why);
    link = du_fmt("%s/link.so", open);
    ck_assert_int_eq(symlink(so, link), 0);
    plugin_refused(dir, "openlink", link, why);

    /* A deep one, named relative to the ini (the line stays within
     * inih's 198 bytes however long TMPDIR is): the message names it three
     * times, whole; it was cut at 512 bytes, mid-path. */
    char *rel = "folder00";
    ck_assert_int_eq(mkdir(du_fmt("%s/%s", dir, rel), 0700), 0);
    for (int i = 1; i < 15; i++) {
        rel = du_fmt("%s/folder%02d", rel, i);
        ck_assert_int_eq(mkdir(du_fmt("%s/%s", dir, rel), 0700), 0);
    }
    char *deep = du_fmt("%s/%s/open", dir, rel);
    ck_assert_int_eq(mkdir(deep, 0777), 0);
    ck_assert_int_eq(chmod(deep, 0777), 0);
    plugin_copy(deep, "job.so", 0755, 0, NULL, 0);
    char *ini = plugin_ini(dir, "deep", du_fmt("%s/open/job.so", rel));
    char *want = du_fmt("%s:2: Plugin %s/open/job.so: folder %s (mode 0777) "
                        "is writable by others than its owner and not "
                        "sticky: chmod go-w %s",
                        ini, du_fmt("%s/%s", dir, rel), deep, deep);
    ck_assert_uint_gt(strlen(want), 600);
    refused(ini, want);
    if (geteuid() == 0) {
        ck_assert_int_eq(chown(so, 4242, 4242), 0);
        plugin_refused(dir, "owner", so,
                       "owned by uid 4242: only root or workersd's user "
                       "(uid 0) may own it");
    } else {
        printf("skipped: a plugin owned by another user needs root to "
               "chown it\n");
    }
}
END_TEST

START_TEST(test_plugin_elf)
{
    char *dir = trusted_dir();
    if (dir == NULL)
        return;
    /* e_machine (offset 18) in the host's byte order; e_ident's class. */
    uint16_t other = EM_AARCH64;
    const char *arch = "wrong architecture (aarch64, expected x86_64)";
#if !defined(__x86_64__)
    other = EM_X86_64;
    arch = NULL;
#endif
    unsigned char class32 = sizeof(void *) == 8 ? ELFCLASS32 : ELFCLASS64;
    char *so;

    so = plugin_copy(dir, "arm.so", 0755, 18, &other, sizeof other);
    if (arch != NULL) {
        plugin_refused(dir, "arch", so, arch);
    } else {
        char *got = load_error(plugin_ini(dir, "arch", so));
        ck_assert_ptr_nonnull(strstr(got, "wrong architecture (x86_64, "));
    }
    so = plugin_copy(dir, "class.so", 0755, EI_CLASS, &class32, 1);
    plugin_refused(dir, "class", so,
                   sizeof(void *) == 8
                       ? "wrong ELF class (32-bit, expected 64-bit)"
                       : "wrong ELF class (64-bit, expected 32-bit)");
    so = du_write_str(dir, "text.so", "not an ELF file\n");
    plugin_refused(dir, "text", so, "not an ELF file");
    so = du_write_str(dir, "empty.so", "");
    plugin_refused(dir, "empty", so, "not an ELF file");
}
END_TEST

Suite *make_trust_suite(void);

Suite *
make_trust_suite(void)
{
    Suite *s = suite_create("trust");
    TCase *tc = tcase_create("trust");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_config_mode);
    tcase_add_test(tc, test_config_folder);
    tcase_add_test(tc, test_config_owner);
    tcase_add_test(tc, test_config_stream);
    tcase_add_test(tc, test_plugin_fifo);
    tcase_add_test(tc, test_plugin_mode);
    tcase_add_test(tc, test_plugin_elf);
    suite_add_tcase(s, tc);
    return s;
}
