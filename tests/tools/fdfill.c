/*
 * fdfill: runs a program with exactly FREE descriptors left below its
 * soft descriptor limit, so a test can make a descriptor run out at a
 * chosen step of a program's start (check_metrics_http.c: workersd's
 * metrics listener) without a hook in the program itself.
 *
 *   fdfill FREE PROG [ARG...]
 *
 * Fills every free descriptor with /dev/null (inherited: no close-on-exec),
 * frees the FREE highest again, and execs PROG. Exit 2 when it cannot.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    char *end;
    long n = argc >= 3 ? strtol(argv[1], &end, 10) : -1;
    int fd, last = -1;

    if (n < 0 || *end != '\0') {
        fprintf(stderr, "usage: fdfill FREE PROG [ARG...]\n");
        return 2;
    }
    while ((fd = open("/dev/null", O_RDONLY)) >= 0)
        last = fd;
    if (errno != EMFILE) {
        fprintf(stderr, "fdfill: /dev/null: %s\n", strerror(errno));
        return 2;
    }
    for (; n > 0 && last > 2; n--)
        close(last--);
    if (n > 0) {
        fprintf(stderr, "fdfill: fewer descriptors than asked to free\n");
        return 2;
    }
    execv(argv[2], argv + 2);
    fprintf(stderr, "fdfill: %s: %s\n", argv[2], strerror(errno));
    return 2;
}
