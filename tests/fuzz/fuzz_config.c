/*
 * libFuzzer target for the config loader, wd_config_load (`make fuzz`).
 *
 * Each input is an ini file. The loader reads a path, so the input goes
 * into one memfd, made once, and the loader opens /proc/self/fd/N: no file
 * on disk, and the loader's own fopen/fstat path runs as in workersd.
 *
 * Besides crashes, leaks and undefined behaviour (ASan, UBSan, LeakSanitizer),
 * the target checks the loader's contract and aborts when it breaks:
 * - an error returns -1 with a non-empty one-line message (no newline) that
 *   fits the buffer, and leaves the config zeroed;
 * - a success returns 0 with exactly one job kind, a pool config the
 *   library accepts, and Arg only beside a Plugin.
 */
#include "workersd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    memfd = memfd_create("fuzz.ini", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
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

    if (ftruncate(memfd, 0) != 0 ||
        (size != 0 && pwrite(memfd, data, size, 0) != (ssize_t)size))
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
