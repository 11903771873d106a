/* meta.h - meta.json beside results.csv: the machine, the software, the
 * settings, what was selected (strategies and scenarios in table order, for
 * the scripts) and how the run ended. */
#ifndef WX_META_H
#define WX_META_H

#include "options.h"

/* Rows of each status over a run. */
typedef struct wx_counts {
    long n[WX_NSTATUS];
} wx_counts;

/* The run as meta.json describes it. */
typedef struct wx_meta {
    const wx_options *o;      /* the command line */
    const wx_machine *m;      /* the machine */
    const char *dir;          /* the run's directory */
    char date[64];            /* UTC start, ISO 8601 */
    int measuring_cpu;        /* CPU the measuring threads are pinned to, -1 none */
    int finished;             /* every child ran */
    int interrupted;          /* stopped by a signal */
    double elapsed_s;         /* wall time so far */
    wx_counts rows;           /* rows written, by status */
    char stopped[WX_REASON_LEN]; /* why the run stopped early ("" if it did not) */
    long processes;           /* children run */
    int runnable_not_ours;    /* tasks runnable before timing that were not wxbench (-1 unknown) */
    double load[3];           /* load average before timing (-1 unknown) */
    int busy;                 /* the machine was busy before timing */
    char busy_warning[WX_REASON_LEN * 2]; /* what was said about it */
    long target_ci_missed;    /* --target-ci: configurations that did not get there */
    char target_ci_note[WX_REASON_LEN]; /* --target-ci: why it stopped early ("" if it did not) */
} wx_meta;

/* Write dir/meta.json (aside, then renamed into place). 0, or an errno
 * after printing a message that names the file. */
int wx_meta_write(const wx_meta *meta);

#endif /* WX_META_H */
