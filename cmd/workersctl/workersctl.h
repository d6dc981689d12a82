/*
 * workersctl's private declarations, grouped by file. workersctl sends one
 * request to workersd's control socket and prints the reply; the protocol,
 * the socket's path and the request syntax come from the daemon's control
 * module (control/control.h), linked, not copied.
 */
#ifndef WORKERSCTL_H
#define WORKERSCTL_H

#include "control/control.h"

#include <jansson.h>
#include <stddef.h>

/* ---- client.c: the exchange ------------------------------------------ */

/*
 * Connects to the socket at path, sends line and a newline, and reads the
 * reply line (a stop's reply comes when the daemon exits). Returns 0 with
 * *reply malloc'd (NUL-terminated, its newline kept), or an exit code with
 * a message in err: WD_CONTROL_EXIT_UNAVAILABLE when nothing answers there
 * or the connection ends without a reply, WD_CONTROL_EXIT_REFUSED when the
 * socket's permissions keep us out.
 */
int ctl_exchange(const char *path, const char *line, char **reply, char *err,
                 size_t errlen);

/* ---- render.c: the reply for people ------------------------------------ */

/*
 * Prints reply: an error on stderr ("workersctl: ..."); "text" as it is;
 * for status, a summary line and, when the reply has worker_list, a table
 * of the workers sorted by id; else the message.
 */
void ctl_render(const json_t *reply, enum wd_control_cmd cmd);

/* The exit code a reply means: its "exit" member, else 0 when ok, else 1. */
int ctl_exit_code(const json_t *reply);

#endif /* WORKERSCTL_H */
