/*
 * wd_job: the job the config names, a shell command (command.c) or a plugin
 * (plugin.c). This file only dispatches; the kinds own their state. The
 * builder handed to the pool is the kind's own, so a run goes through no
 * extra indirection here.
 */
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>

struct wd_job {
    wd_cmd *cmd; /* exactly one of cmd and plugin is set */
    wd_plugin *plugin;
};

int
wd_job_open(const wd_config *cfg, bool init, wd_job **out, char *err,
            size_t errlen)
{
    wd_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int r;
    if (cfg->plugin != NULL)
        r = wd_plugin_open(cfg, init, &job->plugin, err, errlen);
    else if (cfg->command != NULL)
        r = wd_cmd_open(cfg, &job->cmd, err, errlen);
    else {
        snprintf(err, errlen, "%s: no job: set Command or Plugin in [job]",
                 cfg->path != NULL ? cfg->path : "config");
        r = -1;
    }
    if (r != 0) {
        free(job);
        return -1;
    }
    *out = job;
    return 0;
}

workers_builder
wd_job_builder(wd_job *job)
{
    if (job->plugin != NULL)
        return workers_builder_func(wd_plugin_new_job, job->plugin);
    return workers_builder_func(wd_cmd_new_job, job->cmd);
}

void
wd_job_kill_all(wd_job *job, int sig)
{
    if (job->cmd != NULL)
        wd_cmd_kill_all(job->cmd, sig);
}

void
wd_job_close(wd_job *job)
{
    if (job == NULL)
        return;
    if (job->plugin != NULL)
        wd_plugin_close(job->plugin);
    else
        wd_cmd_close(job->cmd);
    free(job);
}
