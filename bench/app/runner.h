/* runner.h - the parent of a run: it checks the output directory, writes
 * results.csv's header and meta.json, audits the strategies that a scenario
 * needs audited, then starts one child per (scenario, strategy) pair
 * (child.h) and watches it with a time limit, so that a crash or a hang
 * becomes a `crashed` or `timeout` row naming the case, and Ctrl-C keeps
 * every finished row. */
#ifndef WX_RUNNER_H
#define WX_RUNNER_H

#include "options.h"

/* Run everything o selects; returns the exit code. */
int wx_run_all(const wx_options *o);

#endif /* WX_RUNNER_H */
