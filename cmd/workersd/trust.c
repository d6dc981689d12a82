/*
 * trust.c: may workersd take orders (its config file) or code (a Plugin)
 * from this file?
 *
 * workersd runs what they say as its own user, root under the shipped
 * unit, so whoever can change them can run code as that user. The rule is
 * OpenSSH's StrictModes: the file, and every folder above it up to /, is
 * owned by root or by workersd's effective user, and writable by no one
 * else (not by its group, not by others). A sticky folder (/tmp) is the
 * exception: others may create files there but not replace ours. The
 * folders are those of the file's real path (symlinks resolved) and, when
 * the name is a symlink, those holding the name too: whoever can replace
 * the link chooses the file.
 *
 * A plugin must moreover be a regular file, which is checked before it is
 * opened, and opened without blocking (dlopen of a FIFO waits for a writer
 * for ever, even for -t), and an ELF object of the class, byte order and
 * machine of workersd itself: dlopen reports a plugin built for another
 * machine as "No such file or directory".
 *
 * Everything here runs on the main thread while a config loads: at the
 * start, before any other thread exists, and at a reload (reload.c).
 */
#include "workersd.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The ELF header of the running program, which the linker maps with it. */
extern const ElfW(Ehdr) __ehdr_start;

/* ---- owners and modes --------------------------------------------------- */

/* 0 when st (the file, or the folder dir) can be changed by no user but
 * root and ours; -1 with why in err. */
static int
check_owner_mode(const struct stat *st, const char *dir, char *err,
                 size_t errlen)
{
    uid_t me = geteuid();
    unsigned mode = (unsigned)st->st_mode & 07777;

    if (st->st_uid != 0 && st->st_uid != me) {
        snprintf(err, errlen,
                 "%s%s%sowned by uid %u: only root or workersd's user "
                 "(uid %u) may own it",
                 dir ? "folder " : "", dir ? dir : "", dir ? " is " : "",
                 (unsigned)st->st_uid, (unsigned)me);
        return -1;
    }
    if ((mode & (S_IWGRP | S_IWOTH)) == 0 ||
        (dir != NULL && (mode & S_ISVTX) != 0))
        return 0;
    if (dir != NULL)
        snprintf(err, errlen,
                 "folder %s (mode %04o) is writable by others than its owner "
                 "and not sticky: chmod go-w %s",
                 dir, mode, dir);
    else
        snprintf(err, errlen,
                 "mode %04o: writable by others than its owner: chmod go-w",
                 mode);
    return -1;
}

/* Every folder from dir (a real path) up to /. */
static int
check_folders(char *dir, char *err, size_t errlen)
{
    struct stat st;
    char *slash;

    for (;;) {
        if (stat(dir, &st) != 0) {
            snprintf(err, errlen, "folder %s: %s", dir, strerror(errno));
            return -1;
        }
        if (check_owner_mode(&st, dir, err, errlen) != 0)
            return -1;
        if ((slash = strrchr(dir, '/')) == NULL || dir[1] == '\0')
            return 0;
        slash[slash == dir] = '\0'; /* "/a" -> "/", "/a/b" -> "/a" */
    }
}

/* The folders holding path's name and, if it is a symlink, its target. */
static int
check_path_folders(const char *path, char *err, size_t errlen)
{
    char *real = realpath(path, NULL), *copy = strdup(path), *parent = NULL;
    bool link;
    int rc = -1;

    if (real == NULL || copy == NULL ||
        (parent = realpath(dirname(copy), NULL)) == NULL) {
        snprintf(err, errlen, "%s", strerror(errno));
        goto out;
    }
    *strrchr(real, '/') = '\0'; /* real is absolute: its folder */
    if (real[0] == '\0')
        strcpy(real, "/");
    link = strcmp(parent, real) != 0;
    rc = check_folders(real, err, errlen);
    if (rc == 0 && link)
        rc = check_folders(parent, err, errlen);
out:
    free(real);
    free(copy);
    free(parent);
    return rc;
}

int
wd_trust_config(const char *path, const struct stat *st, char *err,
                size_t errlen)
{
    /* A pipe or a device (-c /dev/stdin) is a stream its caller hands
     * over: no one else can change what it says. */
    if (!S_ISREG(st->st_mode))
        return 0;
    if (check_owner_mode(st, NULL, err, errlen) != 0)
        return -1;
    return check_path_folders(path, err, errlen);
}

/* ---- plugins ------------------------------------------------------------ */

static const char *
file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a folder"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
                            : "not a file";
}

static const char *
machine_name(unsigned machine, char *buf, size_t len)
{
    static const struct {
        unsigned machine;
        const char *name;
    } names[] = {
        {EM_386, "i386"},        {EM_X86_64, "x86_64"}, {EM_ARM, "arm"},
        {EM_AARCH64, "aarch64"}, {EM_RISCV, "riscv"},   {EM_PPC, "ppc"},
        {EM_PPC64, "ppc64"},     {EM_S390, "s390"},     {EM_MIPS, "mips"},
        {EM_SPARCV9, "sparc64"}, {EM_IA_64, "ia64"},    {258, "loongarch"},
    };

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].machine == machine)
            return names[i].name;
    snprintf(buf, len, "ELF machine %u", machine);
    return buf;
}

/* The ELF identity of the object open on fd against workersd's own. */
static int
check_elf(int fd, char *err, size_t errlen)
{
    const unsigned char *mine = __ehdr_start.e_ident;
    unsigned char h[EI_NIDENT + 4]; /* e_ident, e_type, e_machine */
    unsigned machine;
    char b1[32], b2[32];

    if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h ||
        memcmp(h, ELFMAG, SELFMAG) != 0) {
        snprintf(err, errlen, "not an ELF file");
        return -1;
    }
    if (h[EI_CLASS] != mine[EI_CLASS]) {
        snprintf(err, errlen, "wrong ELF class (%s, expected %s)",
                 h[EI_CLASS] == ELFCLASS32 ? "32-bit" : "64-bit",
                 mine[EI_CLASS] == ELFCLASS32 ? "32-bit" : "64-bit");
        return -1;
    }
    if (h[EI_DATA] != mine[EI_DATA]) {
        snprintf(err, errlen, "wrong byte order (%s-endian, expected %s)",
                 h[EI_DATA] == ELFDATA2MSB ? "big" : "little",
                 mine[EI_DATA] == ELFDATA2MSB ? "big" : "little");
        return -1;
    }
    /* Same byte order as ours: e_machine reads as a native number. */
    machine = h[EI_DATA] == ELFDATA2MSB
                  ? (unsigned)h[EI_NIDENT + 2] << 8 | h[EI_NIDENT + 3]
                  : (unsigned)h[EI_NIDENT + 3] << 8 | h[EI_NIDENT + 2];
    if (machine != __ehdr_start.e_machine) {
        snprintf(err, errlen, "wrong architecture (%s, expected %s)",
                 machine_name(machine, b1, sizeof b1),
                 machine_name(__ehdr_start.e_machine, b2, sizeof b2));
        return -1;
    }
    return 0;
}

int
wd_trust_plugin(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd, rc;

    /* stat first: opening a device may do something; a FIFO is opened
     * without blocking in case it replaced the file since. */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file (%s)", file_kind(st.st_mode));
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file (%s)", file_kind(st.st_mode));
        rc = -1;
    } else {
        rc = check_owner_mode(&st, NULL, err, errlen);
        if (rc == 0)
            rc = check_path_folders(path, err, errlen);
        if (rc == 0)
            rc = check_elf(fd, err, errlen);
    }
    close(fd);
    return rc;
}
