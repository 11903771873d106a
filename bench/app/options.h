/* options.h - what the command line asked for, and the exit codes of the
 * wxbench command (inside the application). */
#ifndef WX_OPTIONS_H
#define WX_OPTIONS_H

#include "scenario.h"

#include <stdio.h>

/* Exit codes of the wxbench command. */
enum {
    WX_EXIT_OK = 0,           /* every row ok or unsupported */
    WX_EXIT_FAILURES = 1,     /* a row failed, crashed or timed out, or an I/O error */
    WX_EXIT_USAGE = 2,        /* bad command line, refused before measuring */
    WX_EXIT_INTERRUPTED = 130,
};

/* Defaults of the measurement settings (chosen from measured variance: see
 * README, "How many repetitions"). */
#define WX_DEFAULT_REPETITIONS 15
#define WX_QUICK_REPETITIONS 3
#define WX_DEFAULT_MIN_TIME 0.02
#define WX_QUICK_MIN_TIME 0.01
#define WX_DEFAULT_TIMEOUT_S 300
/* --target-ci: at most this many repetitions (processes) per pair, and at
 * most this many seconds added to the run. */
#define WX_TARGET_CI_MAX_REPETITIONS 50
#define WX_TARGET_CI_BUDGET_S 600

/* Most names --scenario or --strategy may select. */
#define WX_MAX_SELECTED 64

/* The strategy-free scenarios' strategy ("none" on the command line and in
 * results.csv); it has no functions. */
extern const wx_strategy wx_no_strategy;

/* What the command line asked for, defaults resolved. */
typedef struct wx_options {
    int quick;                                         /* --quick */
    int repetitions;                                   /* --repetitions, or the default */
    double min_time;                                   /* --min-time seconds, or the default */
    int timeout_s;                                     /* --timeout per child, or the default */
    const char *out;                                   /* --out DIR (NULL: data/<machine>/<UTC>) */
    const wx_scenario *scenarios[WX_MAX_SELECTED + 1]; /* selected scenarios, each once, NULL-terminated */
    const wx_strategy *strategies[WX_MAX_SELECTED + 1];/* selected strategies (&wx_no_strategy for "none"),
                                                          each once, NULL-terminated; empty: all */
    uint64_t seed;                                     /* --seed: the run order's seed (random when not given) */
    int seed_given;                                    /* --seed was given */
    int no_interleave;                                 /* --no-interleave: pairs in table order, repetitions
                                                          back to back */
    double target_ci;                                  /* --target-ci PCT (0: off) */
    int gb_argc;                                       /* Google Benchmark flags after -- */
    char **gb_argv;
    int gb_json_stdout;                                /* -- --benchmark_format=json: gb.json to stdout */
    const char *gb_out;                                /* -- --benchmark_out=F: gb.json copied to F */
    int argc;                                          /* the whole command line, for meta.json */
    char **argv;
} wx_options;

/* Whether strategy s is selected (an empty selection selects every one). */
int wx_options_selected(const wx_options *o, const wx_strategy *s);

/* What the command line asks wxbench to do. */
typedef enum wx_action {
    WX_ACTION_RUN,      /* measure */
    WX_ACTION_HELP,     /* --help */
    WX_ACTION_VERSION,  /* --version */
    WX_ACTION_LIST,     /* --list */
    WX_ACTION_PROBE,    /* --probe */
} wx_action;

/* Parse argv into o (names looked up and each kept once, defaults
 * resolved) and *action. WX_EXIT_OK, or WX_EXIT_USAGE with the message
 * printed on stderr. */
int wx_parse_args(int argc, char **argv, wx_options *o, wx_action *action);
/* The --help text. */
void wx_usage(FILE *f);
/* Every scenario and strategy name, for messages about unknown names. */
void wx_list_names(FILE *f);

#endif /* WX_OPTIONS_H */
