/* options.c - the command line: parse it into wx_options, with every bad
 * input refused (exit 2) before anything is measured. */
#define _GNU_SOURCE 1
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WX_STR2(x) #x
#define WX_STR(x) WX_STR2(x)

const wx_strategy wx_no_strategy = {
    .name = "none",
    .summary = "no strategy: the strategy-free scenarios (harness)",
    .unavailable = "not a strategy: strategy-free scenarios run with it",
};

int wx_options_selected(const wx_options *o, const wx_strategy *s)
{
    if (!o->strategies[0])
        return 1;
    for (int i = 0; o->strategies[i]; i++)
        if (o->strategies[i] == s)
            return 1;
    return 0;
}

void wx_usage(FILE *f)
{
    fputs("usage: wxbench [--quick] [--scenario a,b] [--strategy x,y] [--repetitions N]\n"
          "               [--min-time SECONDS] [--timeout SECONDS] [--seed N] [--no-interleave]\n"
          "               [--target-ci PCT] [--out DIR] [-- <Google Benchmark flags>]\n"
          "       wxbench --list | --probe | --help | --version\n"
          "       wxbench trace [--out DIR] -- COMMAND [ARG...]      (a real program's W^X calls)\n"
          "       wxbench replay DIR [--strategy x,y] [--repetitions N]  (that sequence under each strategy)\n"
          "\n"
          "Measures what W^X costs a JIT: switching code memory between writable and\n"
          "executable, per strategy. Every repetition of a (scenario, strategy) pair is a\n"
          "fresh child process, run in a seeded random order interleaved with all the\n"
          "others; rows are appended to DIR/results.csv as they are measured.\n"
          "\n"
          "  --list             every scenario and strategy, and whether it runs here (or why not)\n"
          "  --probe            per strategy: maps? writes when writable? runs when executable?\n"
          "                     write faults when executable? exec faults when writable? per-thread?\n"
          "  --quick            smaller sweeps, 3 repetitions, 0.01 s per repetition (smoke run)\n"
          "  --scenario a,b     only these scenarios\n"
          "  --strategy x,y     only these strategies (\"none\" = the strategy-free harness scenario)\n"
          "  --repetitions N    repetitions per configuration, each a process of its own and its own row\n"
          "                     (default " WX_STR(WX_DEFAULT_REPETITIONS) "; quick " WX_STR(WX_QUICK_REPETITIONS) ")\n"
          "  --min-time S       seconds per repetition (default " WX_STR(WX_DEFAULT_MIN_TIME) "; quick "
          WX_STR(WX_QUICK_MIN_TIME) ")\n"
          "  --timeout S        limit per child process before its row becomes `timeout` (default "
          WX_STR(WX_DEFAULT_TIMEOUT_S) ")\n"
          "  --seed N           seed of the random run order (default: from the clock; always in meta.json)\n"
          "  --no-interleave    run each pair's repetitions back to back, pairs in table order\n"
          "  --target-ci PCT    add repetitions (processes) until every configuration's 95% interval of the\n"
          "                     median is within +-PCT% of it, up to " WX_STR(WX_TARGET_CI_MAX_REPETITIONS)
          " per pair and " WX_STR(WX_TARGET_CI_BUDGET_S) " s more;\n"
          "                     DIR/target_ci.csv says which configurations got there\n"
          "  --out DIR          write DIR/results.csv and DIR/meta.json (default data/<machine>/<UTC time>);\n"
          "                     an existing results.csv is never overwritten\n"
          "  -- FLAGS           passed to Google Benchmark; DIR/gb.json is always written (Google Benchmark's\n"
          "                     JSON schema, the whole run); --benchmark_format=json prints it on stdout,\n"
          "                     --benchmark_out=F copies it to F (json only)\n"
          "\n"
          "exit status: 0 every row ok or unsupported; 1 a row failed, crashed or timed out;\n"
          "             2 usage error (nothing measured); 130 interrupted (finished rows kept)\n",
          f);
}

void wx_list_names(FILE *f)
{
    fputs("scenarios:", f);
    for (size_t i = 0; wx_scenarios[i]; i++)
        fprintf(f, " %s", wx_scenarios[i]->name);
    fputs("\nstrategies:", f);
    for (size_t i = 0; wx_strategies[i]; i++)
        fprintf(f, " %s", wx_strategies[i]->name);
    fputs(" none\n", f);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("wxbench: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    return WX_EXIT_USAGE;
}

/* Parse a whole positive integer no larger than max. */
static int parse_count(const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 3600)
        return -1;
    *out = v;
    return 0;
}

/* Add p to a NULL-terminated list of at most WX_MAX_SELECTED, once. */
static void add_once(const void **list, const void *p)
{
    int n = 0;
    for (; list[n]; n++)
        if (list[n] == p)
            return;
    if (n < WX_MAX_SELECTED)
        list[n] = p;
}

/* A comma-separated list of names into list, each looked up by find;
 * WX_EXIT_OK, or WX_EXIT_USAGE with the message printed. */
static int parse_names(const char *val, const char *what, const void *(*find)(const char *), const void **list)
{
    char *copy = strdup(val), *save = NULL;
    int n = 0;
    if (!copy)
        return usage_error("out of memory%s", "");
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const void *p = find(t);
        if (!p) {
            fprintf(stderr, "wxbench: unknown %s '%s'\n", what, t);
            wx_list_names(stderr);
            free(copy);
            return WX_EXIT_USAGE;
        }
        add_once(list, p);
        n++;
    }
    free(copy);
    if (n == 0) {
        fprintf(stderr, "wxbench: --%s needs at least one name\n", what);
        return WX_EXIT_USAGE;
    }
    return WX_EXIT_OK;
}

static const void *find_scenario(const char *name)
{
    return wx_scenario_find(name);
}

static const void *find_strategy(const char *name)
{
    if (strcmp(name, "none") == 0)
        return &wx_no_strategy;
    return wx_strategy_find(name);
}

int wx_parse_args(int argc, char **argv, wx_options *o, wx_action *action)
{
    memset(o, 0, sizeof *o);
    o->argc = argc;
    o->argv = argv;
    *action = WX_ACTION_RUN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        /* --opt=value and --opt value */
        const char *eq = strchr(a, '=');
        char name[64];
        if (a[0] == '-' && a[1] == '-' && eq && (size_t)(eq - a) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
        int takes_value = strcmp(name, "--scenario") == 0 || strcmp(name, "--scenarios") == 0 ||
                          strcmp(name, "--strategy") == 0 || strcmp(name, "--strategies") == 0 ||
                          strcmp(name, "--repetitions") == 0 || strcmp(name, "--min-time") == 0 ||
                          strcmp(name, "--timeout") == 0 || strcmp(name, "--out") == 0 ||
                          strcmp(name, "--seed") == 0 || strcmp(name, "--target-ci") == 0;
        if (takes_value && !val) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value (see --help)", name);
            val = argv[++i];
        }
        long n;
        int rc;
        if (strcmp(name, "--") == 0) {
            o->gb_argc = argc - i - 1;
            o->gb_argv = argv + i + 1;
            break;
        } else if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            *action = WX_ACTION_HELP;
            return WX_EXIT_OK;
        } else if (strcmp(name, "--version") == 0) {
            *action = WX_ACTION_VERSION;
            return WX_EXIT_OK;
        } else if (strcmp(name, "--list") == 0) {
            *action = WX_ACTION_LIST;
        } else if (strcmp(name, "--probe") == 0) {
            *action = WX_ACTION_PROBE;
        } else if (strcmp(name, "--quick") == 0) {
            o->quick = 1;
        } else if (strcmp(name, "--scenario") == 0 || strcmp(name, "--scenarios") == 0) {
            if ((rc = parse_names(val, "scenario", find_scenario, (const void **)o->scenarios)) != WX_EXIT_OK)
                return rc;
        } else if (strcmp(name, "--strategy") == 0 || strcmp(name, "--strategies") == 0) {
            if ((rc = parse_names(val, "strategy", find_strategy, (const void **)o->strategies)) != WX_EXIT_OK)
                return rc;
        } else if (strcmp(name, "--repetitions") == 0) {
            if (parse_count(val, 1000, &n) != 0)
                return usage_error("--repetitions needs a whole number from 1 to 1000, not '%s'", val);
            o->repetitions = (int)n;
        } else if (strcmp(name, "--min-time") == 0) {
            if (parse_seconds(val, &o->min_time) != 0)
                return usage_error("--min-time needs seconds > 0 (at most 3600), not '%s'", val);
        } else if (strcmp(name, "--timeout") == 0) {
            if (parse_count(val, 86400, &n) != 0)
                return usage_error("--timeout needs whole seconds from 1 to 86400, not '%s'", val);
            o->timeout_s = (int)n;
        } else if (strcmp(name, "--seed") == 0) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (errno || end == val || *end || val[0] == '-')
                return usage_error("--seed needs a whole number from 0 to 2^64-1, not '%s'", val);
            o->seed = (uint64_t)v;
            o->seed_given = 1;
        } else if (strcmp(name, "--no-interleave") == 0) {
            o->no_interleave = 1;
        } else if (strcmp(name, "--target-ci") == 0) {
            char *end;
            errno = 0;
            double v = strtod(val, &end);
            if (errno || end == val || *end || !(v > 0) || v > 100)
                return usage_error("--target-ci needs a percentage > 0 (at most 100), not '%s'", val);
            o->target_ci = v;
        } else if (strcmp(name, "--out") == 0) {
            if (!val[0])
                return usage_error("--out needs a directory%s", "");
            o->out = val;
        } else {
            fprintf(stderr, "wxbench: unknown argument '%s'\n", a);
            wx_usage(stderr);
            return WX_EXIT_USAGE;
        }
    }
    for (int i = 0; i < o->gb_argc; i++) {
        const char *a = o->gb_argv[i];
        if (strcmp(a, "--benchmark_format=json") == 0)
            o->gb_json_stdout = 1;
        else if (strncmp(a, "--benchmark_out=", 16) == 0)
            o->gb_out = a + 16;
        else if (strncmp(a, "--benchmark_out_format=", 23) == 0 && strcmp(a + 23, "json") != 0)
            return usage_error("--benchmark_out_format=%s: wxbench writes Google Benchmark's JSON only (gb.json); "
                               "use json", a + 23);
        else if (strncmp(a, "--benchmark_repetitions", 23) == 0 ||
                 strncmp(a, "--benchmark_enable_random_interleaving", 38) == 0)
            return usage_error("%s: wxbench repeats and interleaves in processes of their own; use --repetitions "
                               "(and --seed, --no-interleave)", a);
    }
    if (o->gb_out && !o->gb_out[0])
        return usage_error("--benchmark_out needs a file name%s", "");
    if (!o->seed_given)
        o->seed = wx_now_ns() ^ ((uint64_t)getpid() << 32);
    if (!o->scenarios[0])
        for (size_t i = 0; wx_scenarios[i] && i < WX_MAX_SELECTED; i++)
            o->scenarios[i] = wx_scenarios[i];
    if (!o->repetitions)
        o->repetitions = o->quick ? WX_QUICK_REPETITIONS : WX_DEFAULT_REPETITIONS;
    if (!(o->min_time > 0))
        o->min_time = o->quick ? WX_QUICK_MIN_TIME : WX_DEFAULT_MIN_TIME;
    if (!o->timeout_s)
        o->timeout_s = WX_DEFAULT_TIMEOUT_S;
    return WX_EXIT_OK;
}
