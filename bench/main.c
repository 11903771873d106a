/* main.c - the wxbench command line. */
#define _GNU_SOURCE 1
#include "runner.h"
#include "gbench_shim.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef WX_VERSION
#define WX_VERSION "unknown"
#endif

static void usage(FILE *f)
{
    fputs("usage: wxbench [--quick] [--scenario a,b] [--strategy x,y] [--repetitions N]\n"
          "               [--min-time SECONDS] [--timeout SECONDS] [--out DIR] [-- <Google Benchmark flags>]\n"
          "       wxbench --list | --probe | --help | --version\n"
          "\n"
          "Measures what W^X costs a JIT: switching code memory between writable and\n"
          "executable, per strategy. Each (scenario, strategy) runs in its own child\n"
          "process; rows are appended to DIR/results.csv as they are measured.\n"
          "\n"
          "  --list             every scenario and strategy, and whether it runs here (or why not)\n"
          "  --probe            per strategy: maps? writes when writable? runs when executable?\n"
          "                     write faults when executable? exec faults when writable? per-thread?\n"
          "  --quick            smaller sweeps, 3 repetitions, 0.01 s per repetition (smoke run)\n"
          "  --scenario a,b     only these scenarios\n"
          "  --strategy x,y     only these strategies (\"none\" = the strategy-free harness scenario)\n"
          "  --repetitions N    repetitions per configuration, each its own row (default 5; quick 3)\n"
          "  --min-time S       seconds per repetition (default 0.1; quick 0.01)\n"
          "  --timeout S        limit per child process before its row becomes `timeout` (default 300)\n"
          "  --out DIR          write DIR/results.csv and DIR/meta.json (default data/<machine>/<UTC time>);\n"
          "                     an existing results.csv is never overwritten\n"
          "  -- FLAGS           passed to Google Benchmark, e.g. -- --benchmark_format=json\n"
          "                     (--benchmark_out=F.json writes F.<scenario>.<strategy>.json per child)\n"
          "\n"
          "exit status: 0 every row ok or unsupported; 1 a row failed, crashed or timed out;\n"
          "             2 usage error (nothing measured); 130 interrupted (finished rows kept)\n",
          f);
}

static void list_names(FILE *f)
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

static int print_list(void)
{
    char why[WX_REASON_LEN];
    printf("scenarios (op = what one ns_per_op is for):\n");
    for (size_t i = 0; wx_scenarios[i]; i++) {
        const wx_scenario *s = wx_scenarios[i];
        printf("  %-18s %s\n  %-18s op: %s\n  %-18s variants:", s->name, s->question, "", s->op, "");
        for (size_t v = 0; s->variants[v]; v++)
            printf(" %s", s->variants[v]);
        printf("%s\n", s->strategy_free ? "  (strategy: none)" : "");
    }
    printf("strategies:\n");
    for (size_t i = 0; wx_strategies[i]; i++) {
        const wx_strategy *s = wx_strategies[i];
        why[0] = 0;
        /* asked in a child: a strategy's check must not take wxbench down */
        int fds[2];
        int ok = 0;
        if (pipe(fds) == 0) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                close(fds[0]);
                char w[WX_REASON_LEN] = "";
                int sup = s->supported(w, sizeof w);
                if (write(fds[1], w, strlen(w) + 1) < 0)
                    _exit(3);
                _exit(sup ? 0 : 1);
            }
            close(fds[1]);
            ssize_t n = pid > 0 ? read(fds[0], why, sizeof why - 1) : -1;
            why[n > 0 ? n : 0] = 0;
            close(fds[0]);
            int st = 0;
            if (pid > 0 && waitpid(pid, &st, 0) == pid) {
                if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                    ok = 1;
                else if (WIFSIGNALED(st))
                    snprintf(why, sizeof why, "crashed while checking (%s)", wx_signal_name(WTERMSIG(st)));
            }
        }
        printf("  %-18s %-10s %s\n  %-18s %s%s\n", s->name, ok ? "runs here" : "not here", s->summary, "",
               ok ? "" : "why: ", ok ? "" : why);
    }
    return WX_EXIT_OK;
}

/* Check the flags meant for Google Benchmark in a child, so that a bad one
 * is refused before anything is measured. */
static int check_gbench_flags(int argc, char **argv)
{
    if (argc == 0)
        return 0;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        char **v = calloc((size_t)argc + 2, sizeof *v);
        if (!v)
            _exit(3);
        int n = 0;
        v[n++] = "wxbench";
        for (int i = 0; i < argc; i++)
            v[n++] = argv[i];
        char why[WX_REASON_LEN] = "";
        /* Google Benchmark prints its own complaint for malformed values */
        int rc = wxgb_init(&n, v, why, sizeof why);
        if (rc != 0 && write(fds[1], why, strlen(why)) < 0)
            _exit(3);
        _exit(rc == 0 ? 0 : 2);
    }
    close(fds[1]);
    char why[WX_REASON_LEN] = "";
    ssize_t n = pid > 0 ? read(fds[0], why, sizeof why - 1) : -1;
    why[n > 0 ? n : 0] = 0;
    close(fds[0]);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    fprintf(stderr, "wxbench: bad Google Benchmark flags after --: %s\n",
            why[0] ? why : "Google Benchmark refused them (see its message above)");
    return -1;
}

int main(int argc, char **argv)
{
    static wx_options o;
    o.argc = argc;
    o.argv = argv;
    int list = 0, probe = 0;
    int nsc = 0, nst = 0;

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
#define NEED_VALUE()                                                                   \
    do {                                                                               \
        if (!val) {                                                                    \
            if (i + 1 >= argc)                                                         \
                return usage_error("%s needs a value (see --help)", name);             \
            val = argv[++i];                                                           \
        }                                                                              \
    } while (0)
        if (strcmp(name, "--") == 0) {
            o.gb_argc = argc - i - 1;
            o.gb_argv = argv + i + 1;
            break;
        } else if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            return WX_EXIT_OK;
        } else if (strcmp(name, "--version") == 0) {
            printf("wxbench %s (Google Benchmark %s)\n", WX_VERSION, wxgb_version());
            return WX_EXIT_OK;
        } else if (strcmp(name, "--list") == 0) {
            list = 1;
        } else if (strcmp(name, "--probe") == 0) {
            probe = 1;
        } else if (strcmp(name, "--quick") == 0) {
            o.quick = 1;
        } else if (strcmp(name, "--scenario") == 0 || strcmp(name, "--scenarios") == 0) {
            NEED_VALUE();
            char *copy = strdup(val), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                const wx_scenario *s = wx_scenario_find(t);
                if (!s) {
                    fprintf(stderr, "wxbench: unknown scenario '%s'\n", t);
                    list_names(stderr);
                    free(copy);
                    return WX_EXIT_USAGE;
                }
                if (nsc < 63)
                    o.scenarios[nsc++] = s;
            }
            free(copy);
            if (nsc == 0)
                return usage_error("--scenario needs at least one name%s", "");
        } else if (strcmp(name, "--strategy") == 0 || strcmp(name, "--strategies") == 0) {
            NEED_VALUE();
            char *copy = strdup(val), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                const wx_strategy *st = wx_strategy_find(t);
                if (strcmp(t, "none") != 0 && !st) {
                    fprintf(stderr, "wxbench: unknown strategy '%s'\n", t);
                    list_names(stderr);
                    free(copy);
                    return WX_EXIT_USAGE;
                }
                if (nst < 63)
                    o.strategies[nst++] = st ? st->name : "none"; /* names that outlive copy */
            }
            free(copy);
            if (nst == 0)
                return usage_error("--strategy needs at least one name%s", "");
        } else if (strcmp(name, "--repetitions") == 0) {
            NEED_VALUE();
            long n;
            if (parse_count(val, 1000, &n) != 0)
                return usage_error("--repetitions needs a whole number from 1 to 1000, not '%s'", val);
            o.repetitions = (int)n;
        } else if (strcmp(name, "--min-time") == 0) {
            NEED_VALUE();
            if (parse_seconds(val, &o.min_time) != 0)
                return usage_error("--min-time needs seconds > 0 (at most 3600), not '%s'", val);
        } else if (strcmp(name, "--timeout") == 0) {
            NEED_VALUE();
            long n;
            if (parse_count(val, 86400, &n) != 0)
                return usage_error("--timeout needs whole seconds from 1 to 86400, not '%s'", val);
            o.timeout_s = (int)n;
        } else if (strcmp(name, "--out") == 0) {
            NEED_VALUE();
            if (!val[0])
                return usage_error("--out needs a directory%s", "");
            o.out = val;
        } else {
            fprintf(stderr, "wxbench: unknown argument '%s'\n", a);
            usage(stderr);
            return WX_EXIT_USAGE;
        }
#undef NEED_VALUE
    }

    if (list)
        return print_list();
    if (probe)
        return wx_probe_all(stdout);

    if (nsc == 0) {
        for (size_t i = 0; wx_scenarios[i] && nsc < 63; i++)
            o.scenarios[nsc++] = wx_scenarios[i];
    }
    if (check_gbench_flags(o.gb_argc, o.gb_argv) != 0)
        return WX_EXIT_USAGE;
    return wx_run_all(&o);
}
