/*
 * wd_job: the job the config names, a shell command (command.c) or a plugin
 * (plugin.c, loader.c). This file picks the kind and dispatches through its
 * ops table (jobs.h); the kinds own their state. The job a worker runs is
 * the kind's own, so a run goes through no extra indirection here.
 */
#include "jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct wd_job {
    const struct wd_kind *kind;
    void *obj; /* the kind's */
};

int
wd_job_open(const wd_config *cfg, bool init, wd_job **out, char *err,
            size_t errlen)
{
    const struct wd_kind *kind = cfg->plugin != NULL    ? &wd_plugin_kind
                                 : cfg->command != NULL ? &wd_command_kind
                                                        : NULL;
    if (kind == NULL) {
        snprintf(err, errlen, "%s: no job: set Command or Plugin in [job]",
                 cfg->path != NULL ? cfg->path : "config");
        return WD_JOB_ECONFIG;
    }
    wd_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        snprintf(err, errlen, "out of memory");
        return WD_JOB_ENORES;
    }
    job->kind = kind;
    int rc = kind->open(cfg, init, &job->obj, err, errlen);
    if (rc != 0) {
        free(job);
        return rc;
    }
    *out = job;
    return 0;
}

int
wd_job_exit_code(int rc)
{
    return rc == WD_JOB_ENORES ? WD_EXIT_SOFTWARE : WD_EXIT_CONFIG;
}

int
wd_exit_code_of(int e)
{
    return wd_job_exit_code(wd_job_error(e));
}

int
wd_job_error(int e)
{
    switch (e < 0 ? -e : e) {
    case ENOMEM:
    case EAGAIN:
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
        return WD_JOB_ENORES;
    default:
        return WD_JOB_ECONFIG;
    }
}

int
wd_job_new(void *job, workers_job *out)
{
    wd_job *j = job;
    return j->kind->new_job(j->obj, out);
}

void
wd_job_kill(wd_job *job, int sig)
{
    job->kind->kill(job->obj, sig);
}

void
wd_job_close(wd_job *job)
{
    if (job == NULL)
        return;
    job->kind->close(job->obj);
    free(job);
}
