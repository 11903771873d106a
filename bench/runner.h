/* runner.h - options, the child-per-(scenario, strategy) runner, rows and
 * the probe (internal to wxbench; scenarios use wx.h). */
#ifndef WX_RUNNER_H
#define WX_RUNNER_H

#include "wx.h"

#include <stdio.h>

/* Exit codes of the wxbench command. */
enum {
    WX_EXIT_OK = 0,         /* every row ok or unsupported */
    WX_EXIT_FAILURES = 1,   /* a row failed, crashed or timed out, or an I/O error */
    WX_EXIT_USAGE = 2,      /* bad command line, refused before measuring */
    WX_EXIT_INTERRUPTED = 130,
};

/* What the command line asked for. */
typedef struct wx_options {
    int quick;                       /* --quick */
    int repetitions;                 /* --repetitions (0: default) */
    double min_time;                 /* --min-time seconds (0: default) */
    int timeout_s;                   /* --timeout per child (0: default) */
    const char *out;                 /* --out DIR (NULL: data/<machine>/<UTC>) */
    const wx_scenario *scenarios[64];/* selected scenarios, NULL-terminated */
    const char *strategies[64];      /* selected strategy names ("none" included), NULL-terminated */
    int gb_argc;                     /* Google Benchmark flags after -- */
    char **gb_argv;
    int argc;                        /* the whole command line, for meta.json */
    char **argv;
} wx_options;

/* Run everything selected; returns the exit code. */
int wx_run_all(const wx_options *o);

/* One results.csv row. */
typedef struct wx_row {
    const char *machine, *chip, *os, *arch;
    long page_size;
    const char *scenario, *strategy;
    const wx_case *c;
    const char *core_class;
    int repetition;
    uint64_t iterations;
    double ns_per_op;      /* < 0: empty */
    double cycles_per_op;  /* < 0: empty */
    double tlb_per_op;     /* < 0: empty */
    const char *status;
    const char *reason;
} wx_row;

/* The exact results.csv header line, newline included. */
extern const char wx_csv_header[];
/* Format one row as an RFC 4180 line (newline included) into a malloc'd
 * string; returns it (caller frees) or NULL when out of memory. */
char *wx_csv_format(const wx_row *r);
/* Write all len bytes of buf to fd (a row must never be cut), retrying on
 * EINTR; 0, or an errno value. */
int wx_write_all(int fd, const void *buf, size_t len);
/* Append s to f as one CSV field, quoted when it holds , " CR or LF. */
void wx_csv_field(FILE *f, const char *s);

/* Per-strategy answers of the probe. -1 = not tried. */
typedef struct wx_probe {
    int supported;               /* strategy says it can run here */
    char why[WX_REASON_LEN];     /* why not, or which step failed */
    int maps;                    /* map() succeeded */
    int write_sig;               /* signal on a write while writable (0 = wrote) */
    int run_sig;                 /* signal on a call while executable (0 = ran) */
    int run_value_ok;            /* the call returned what was written */
    int write_exec_sig;          /* signal on a write through the exec view while executable */
    int exec_writable_sig;       /* signal on a call while writable (0 = ran) */
    int other_write_sig;         /* signal on another thread's write while this one writes (0 = wrote) */
    int alias;                   /* a separate writable view exists */
    int regions;                 /* regions mapped at once, of WX_PROBE_REGIONS tried (-1 not tried) */
    char regions_why[WX_REASON_LEN]; /* why the next one could not be mapped ("" if all were) */
} wx_probe;

/* How many regions the probe maps at once (e.g. MAP_JIT regions on macOS). */
#define WX_PROBE_REGIONS 64

/* Probe strategy s in this process (call it in a child). */
void wx_probe_strategy(const wx_strategy *s, wx_probe *p);
/* Print every strategy's probe, each run in its own child; returns exit code. */
int wx_probe_all(FILE *out);


#endif
