/*
 * Opening and closing a plugin: the plugin kind's open (a private copy of
 * the file loaded with dlopen, its symbols, job_init) and close (job_fini).
 * plugin.c runs what this loads. Both may run plugin code for as long as
 * the plugin likes, so the daemon calls them on a generation's own thread,
 * never on its loop (see generation.c).
 *
 * A private copy per open: the file is copied into a memfd, and dlopen
 * loads it through /proc/self/fd/N. glibc returns the object it already
 * loaded when the name matches, or the file's device and inode do: a
 * plugin rebuilt or overwritten at the same path would run its old code,
 * and two generations of one plugin would share its static variables. A
 * copy has an inode of its own, which its mapping keeps alive once its
 * descriptor is closed, right after dlopen: a descriptor kept per load
 * would be one more for every reload, for the life of the process. The
 * number N is then given out again, so each copy's name also spells its
 * serial number (copy_name), and no later copy is ever given an earlier
 * one's. ($ORIGIN in the plugin's RUNPATH therefore names /proc/self/fd,
 * not the plugin's folder.)
 *
 * Never unloaded once its job_do was found: it is then reopened with
 * RTLD_NODELETE, so even a plugin that dlcloses itself stays mapped. After a
 * close that timed out, a worker may still run plugin code when the daemon
 * exits: unmapping the code under it would crash instead of exiting. Only a
 * load error, before any of its functions ran (its constructors aside),
 * unloads it.
 */
#include "jobs.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

/* Linux 6.3's flag for an executable memfd (a system may default to
 * non-executable ones); older kernels refuse it, and need none. */
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* The copies made so far: each one's serial number (copy_name). Loads run
 * on the generations' threads. */
static atomic_ullong copies;

/* The plugin's file copied into a new memfd: the descriptor, or a negated
 * errno; *what says which step failed. */
static int
private_copy(const char *path, const char **what)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int src = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (src < 0 || fstat(src, &st) != 0) {
        int e = -errno;
        if (src >= 0)
            close(src);
        *what = "cannot open it";
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(src);
        *what = "not a regular file";
        return -EINVAL;
    }
    int fd = memfd_create("workersd-plugin", MFD_CLOEXEC | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create("workersd-plugin", MFD_CLOEXEC);
    *what = "cannot copy it";
    if (fd < 0) {
        int e = -errno;
        close(src);
        return e;
    }
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            int e = n < 0 ? -errno : -EIO;
            close(src);
            close(fd);
            return e;
        }
    }
    close(src);
    return fd;
}

/* The name dlopen gets for the copy in descriptor fd: a path to it that
 * spells serial (which no other copy has) in components the kernel skips,
 * "/." for a one bit and "/" (an empty component) for a zero, from the
 * highest one bit down: copy 5 in descriptor 9 is "/proc/self/fd/.//./9". */
#define COPY_NAME_MAX (sizeof "/proc/self/fd" + 2 * 64 + sizeof "/-2147483648")
static void
copy_name(char name[COPY_NAME_MAX], int fd, unsigned long long serial)
{
    size_t len = strlen(strcpy(name, "/proc/self/fd"));
    for (int bit = 63; bit >= 0; bit--) {
        if ((serial >> bit) == 0)
            continue;
        name[len++] = '/';
        if ((serial >> bit) & 1)
            name[len++] = '.';
    }
    snprintf(name + len, COPY_NAME_MAX - len, "/%d", fd);
}

/* dlerror()'s text without the copy's name it starts with. */
static const char *
dl_error(const char *name)
{
    const char *e = dlerror();
    size_t len = strlen(name);
    if (e == NULL)
        return "unknown error";
    if (strncmp(e, name, len) == 0 && e[len] == ':' && e[len + 1] == ' ')
        return e + len + 2;
    return e;
}

/* dlsym into a function pointer without an object-to-function cast. */
static void
sym(void *handle, const char *name, void *fnptr, size_t size)
{
    void *s = dlsym(handle, name);
    memcpy(fnptr, &s, size);
}
#define SYM(h, name, fp) sym((h), (name), &(fp), sizeof(fp))

/* Loads the copy and looks up the ABI: 0, or -1 with the message in err
 * (and the copy unloaded). */
static int
load(wd_plugin *p, const char *name, const char *where, char *err,
     size_t errlen)
{
    const char *plugin = p->cfg->plugin;
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, errlen, "%s: Plugin = %s: cannot load: %s", where, plugin,
                 dl_error(name));
        return WD_JOB_ECONFIG;
    }
    dlerror();
    SYM(h, "job_do", p->job_do);
    if (p->job_do == NULL) {
        snprintf(err, errlen, "%s: Plugin = %s: no job_do: %s", where, plugin,
                 dl_error(name));
        dlclose(h);
        return WD_JOB_ECONFIG;
    }
    SYM(h, "job_init", p->job_init);
    SYM(h, "job_new", p->job_new);
    SYM(h, "job_free", p->job_free);
    SYM(h, "job_fini", p->job_fini);
    /* From here on it stays: the same object, now with NODELETE. */
    dlopen(name, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    return 0;
}

int
wd_plugin_open(const wd_config *cfg, bool init, void **obj, char *err,
               size_t errlen)
{
    const char *where = cfg->path != NULL ? cfg->path : "config";
    const char *what;
    int fd = private_copy(cfg->plugin, &what);
    if (fd < 0) {
        snprintf(err, errlen, "%s: Plugin = %s: cannot load: %s: %s", where,
                 cfg->plugin, what, strerror(-fd));
        return wd_job_error(fd);
    }
    wd_plugin *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "%s: Plugin = %s: out of memory", where,
                 cfg->plugin);
        close(fd);
        return WD_JOB_ENORES;
    }
    p->cfg = cfg;
    char name[COPY_NAME_MAX];
    copy_name(name, fd, atomic_fetch_add(&copies, 1) + 1);
    int loaded = load(p, name, where, err, errlen);
    /* Loaded or not, the copy's descriptor is done with: its mapping
     * keeps the copy, and its name stays its own (see the top). */
    close(fd);
    if (loaded != 0) {
        free(p);
        return WD_JOB_ECONFIG;
    }
    if (init && p->job_init != NULL) {
        int r = p->job_init(cfg->arg);
        if (r != 0) {
            snprintf(err, errlen, "%s: Plugin = %s: job_init returned %d",
                     where, cfg->plugin, r);
            free(p);
            return WD_JOB_ECONFIG;
        }
    }
    p->inited = init;
    if (init && cfg->timeout_ns != 0) {
        int r = wd_deadlines_start(&p->timer);
        if (r != 0) {
            snprintf(err, errlen,
                     "%s: Plugin = %s: cannot start the timeout "
                     "thread: %s",
                     where, cfg->plugin, strerror(-r));
            if (p->job_fini != NULL)
                p->job_fini();
            free(p);
            return WD_JOB_ENORES;
        }
    }
    *obj = p;
    return 0;
}

void
wd_plugin_close(void *obj)
{
    wd_plugin *p = obj;
    if (p->timer != NULL)
        wd_deadlines_stop(p->timer);
    if (p->inited && p->job_fini != NULL)
        p->job_fini();
    free(p);
}
