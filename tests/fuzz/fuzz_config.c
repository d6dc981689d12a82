/*
 * libFuzzer target for the config loader, wd_config_load (`make fuzz`).
 *
 * Each input is an ini file. The loader reads a path, so the input goes
 * into one file, made once in a private temp folder and removed at exit,
 * and the loader's own fopen/fstat path runs as in workersd. (Not a memfd:
 * the loader checks the file's owner, mode and folders, and a memfd's
 * /proc/self/fd path resolves to no folder.)
 *
 * Besides crashes, leaks and undefined behaviour (ASan, UBSan, LeakSanitizer),
 * the target checks the loader's contract and aborts when it breaks:
 * - an error returns -1 with a non-empty one-line message (no newline) that
 *   fits the buffer, and leaves the config zeroed;
 * - a success returns 0 with exactly one job kind, a pool config the
 *   library accepts, and Arg only beside a Plugin.
 */
#include "workersd.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int infd = -1;
static char dir[PATH_MAX], path[PATH_MAX + 16];

static void
remove_input(void)
{
    unlink(path);
    rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");

    (void)argc, (void)argv;
    snprintf(dir, sizeof dir, "%s/fuzz_config.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(path, sizeof path, "%s/fuzz.ini", dir);
    infd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (infd < 0) {
        perror(path);
        abort();
    }
    atexit(remove_input);
    return 0;
}

static void
check_zeroed(const wd_config *cfg)
{
    static const wd_config zero;

    if (memcmp(cfg, &zero, sizeof zero) != 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wd_config cfg;
    char err[WD_ERRLEN];

    if (ftruncate(infd, 0) != 0 ||
        (size != 0 && pwrite(infd, data, size, 0) != (ssize_t)size))
        abort();
    memset(err, 0, sizeof err);
    int rc = wd_config_load(path, &cfg, err, sizeof err);
    if (rc == -1) {
        size_t len = strnlen(err, sizeof err);
        if (len == 0 || len == sizeof err || strchr(err, '\n') != NULL)
            abort();
        check_zeroed(&cfg);
        return 0;
    }
    if (rc != 0 || (cfg.command == NULL) == (cfg.plugin == NULL) ||
        (cfg.arg != NULL && cfg.plugin == NULL) ||
        workers_config_validate(&cfg.pool) != 0 || cfg.path == NULL)
        abort();
    wd_config_free(&cfg);
    check_zeroed(&cfg);
    return 0;
}
