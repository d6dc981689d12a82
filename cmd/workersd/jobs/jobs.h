/*
 * Private to cmd/workersd/jobs/: the two job kinds behind wd_job (job.c
 * dispatches), grouped by file. Each kind's new_job is a workers_builder
 * function whose arg is that kind's object.
 */
#ifndef WD_JOBS_H
#define WD_JOBS_H

#include "workersd.h"

/* ---- command.c ------------------------------------------------------- */
typedef struct wd_cmd wd_cmd;

int wd_cmd_open(const wd_config *cfg, wd_cmd **out, char *err, size_t errlen);
int wd_cmd_new_job(void *cmd, workers_job *out);
void wd_cmd_kill_all(wd_cmd *cmd, int sig);
void wd_cmd_close(wd_cmd *cmd);

/* ---- plugin.c -------------------------------------------------------- */
typedef struct wd_plugin wd_plugin;

int wd_plugin_open(const wd_config *cfg, bool init, wd_plugin **out, char *err,
                   size_t errlen);
int wd_plugin_new_job(void *plugin, workers_job *out);
void wd_plugin_close(wd_plugin *plugin);

#endif /* WD_JOBS_H */
