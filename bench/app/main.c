/* main.c - the wxbench command: parse the command line, then list, probe or
 * run. */
#define _GNU_SOURCE 1
#include "options.h"
#include "probe.h"
#include "../core/proc.h"
#include "runner.h"
#include "trace.h"
#include "../gbench_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef WX_VERSION
#define WX_VERSION "unknown"
#endif

static int print_list(void)
{
    printf("scenarios (op = what one ns_per_op is for):\n");
    for (size_t i = 0; wx_scenarios[i]; i++) {
        const wx_scenario *s = wx_scenarios[i];
        printf("  %-18s %s\n  %-18s op: %s\n  %-18s variants:", s->name, s->question, "", s->op, "");
        for (size_t v = 0; s->variants[v]; v++)
            printf(" %s", s->variants[v]);
        printf("%s\n", s->strategy_free ? "  (strategy: none)" : "");
    }
    printf("strategies:\n");
    (void)wx_jit_allowlist_enforced(NULL, 0); /* found once, inherited by every check's child */
    for (size_t i = 0; wx_strategies[i]; i++) {
        const wx_strategy *s = wx_strategies[i];
        char why[WX_REASON_LEN] = "";
        int ok = wx_proc_supported(s, why, sizeof why);
        printf("  %-18s %-10s %s\n  %-18s %s%s\n", s->name, ok ? "runs here" : "not here", s->summary, "",
               ok ? "" : "why: ", ok ? "" : why);
    }
    return WX_EXIT_OK;
}

/* In a child: Google Benchmark's parse of the flags after --. */
static int gbench_flags_child(void *arg, int fd)
{
    const wx_options *o = arg;
    char **v = calloc((size_t)o->gb_argc + 2, sizeof *v);
    if (!v)
        return 3;
    int n = 0;
    v[n++] = "wxbench";
    for (int i = 0; i < o->gb_argc; i++)
        v[n++] = o->gb_argv[i];
    char why[WX_REASON_LEN] = "";
    /* Google Benchmark prints its own complaint for malformed values */
    int rc = wxgb_init(&n, v, why, sizeof why);
    if (rc != 0 && write(fd, why, strlen(why)) < 0)
        return 3;
    return rc == 0 ? 0 : 2;
}

/* Check the flags meant for Google Benchmark in a child, so that a bad one
 * is refused before anything is measured. */
static int check_gbench_flags(const wx_options *o)
{
    if (o->gb_argc == 0)
        return 0;
    char why[WX_REASON_LEN] = "";
    wx_proc_end end;
    size_t n = wx_proc_call(gbench_flags_child, (void *)o, why, sizeof why - 1, 30000, &end);
    why[n] = 0;
    if (end.how == WX_PROC_EXITED && end.code == 0)
        return 0;
    fprintf(stderr, "wxbench: bad Google Benchmark flags after --: %s\n",
            why[0] ? why : "Google Benchmark refused them (see its message above)");
    return -1;
}

int main(int argc, char **argv)
{
    static wx_options o;
    wx_action action;
    /* Subcommands: their own command lines. */
    if (argc >= 2 && strcmp(argv[1], "trace") == 0)
        return wx_trace_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "replay") == 0)
        return wx_replay_main(argc - 1, argv + 1);
    int rc = wx_parse_args(argc, argv, &o, &action);
    if (rc != WX_EXIT_OK)
        return rc;
    switch (action) {
    case WX_ACTION_HELP:
        wx_usage(stdout);
        return WX_EXIT_OK;
    case WX_ACTION_VERSION:
        printf("wxbench %s (Google Benchmark %s)\n", WX_VERSION, wxgb_version());
        return WX_EXIT_OK;
    case WX_ACTION_LIST:
        return print_list();
    case WX_ACTION_PROBE:
        return wx_probe_all(stdout);
    case WX_ACTION_RUN:
        break;
    }
    if (check_gbench_flags(&o) != 0)
        return WX_EXIT_USAGE;
    return wx_run_all(&o);
}
