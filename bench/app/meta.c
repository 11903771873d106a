/* meta.c - meta.json. */
#define _GNU_SOURCE 1
#include "meta.h"
#include "../core/platform_util.h"
#include "../gbench_shim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef WX_VERSION
#define WX_VERSION "unknown"
#endif

/* /proc/sys/kernel/randomize_va_space (Linux: 2 full ASLR, 0 off); -1
 * where there is no such file (macOS randomizes always). */
static int read_aslr(void)
{
    FILE *f = fopen("/proc/sys/kernel/randomize_va_space", "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* The strategy and scenario tables, in their order, with what the scripts
 * need of them (names, one-line descriptions, variants, flags). */
static void write_tables(FILE *f, const wx_options *o)
{
    fputs("  \"strategies\": [", f);
    int first = 1;
    for (size_t i = 0; wx_strategies[i]; i++) {
        const wx_strategy *s = wx_strategies[i];
        fprintf(f, "%s\n    {\"name\": ", first ? "" : ",");
        wx_json_str(f, s->name);
        fputs(", \"summary\": ", f);
        wx_json_str(f, s->summary);
        fprintf(f, ", \"per_thread\": %s, \"writable_alias\": %s, \"always_rwx\": %s, \"no_switch\": %s, "
                   "\"write_code\": %s, \"selected\": %s}",
                s->flags & WX_PER_THREAD ? "true" : "false", s->flags & WX_WRITABLE_ALIAS ? "true" : "false",
                s->flags & WX_ALWAYS_RWX ? "true" : "false", s->flags & WX_NO_SWITCH ? "true" : "false",
                s->write_code ? "true" : "false", wx_options_selected(o, s) ? "true" : "false");
        first = 0;
    }
    fputs("\n  ],\n  \"scenarios\": [", f);
    for (size_t i = 0; wx_scenarios[i]; i++) {
        const wx_scenario *sc = wx_scenarios[i];
        int sel = 0;
        for (int k = 0; o->scenarios[k]; k++)
            sel |= o->scenarios[k] == sc;
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        wx_json_str(f, sc->name);
        fputs(", \"question\": ", f);
        wx_json_str(f, sc->question);
        fputs(", \"op\": ", f);
        wx_json_str(f, sc->op);
        fputs(", \"variants\": [", f);
        for (size_t v = 0; sc->variants[v]; v++) {
            fputs(v ? ", " : "", f);
            wx_json_str(f, sc->variants[v]);
        }
        fprintf(f, "], \"strategy_free\": %s, \"selected\": %s}", sc->strategy_free ? "true" : "false",
                sel ? "true" : "false");
    }
    fputs("\n  ],\n", f);
}

/* How the binary is signed and what the system enforces on JIT memory
 * (macOS; "n/a" elsewhere). hardened_runtime is what a reader filters on:
 * true only for a binary signed with the hardened runtime (make bench
 * HARDENED=1), whose run directory also ends in -hardened. */
static void write_signing(FILE *f)
{
    wx_signing sg;
    char why[WX_REASON_LEN];
    wx_signing_describe(&sg);
    fputs("  \"hardened_runtime\": ", f);
    wx_json_tri(f, sg.applicable ? sg.hardened_runtime : 0);
    fputs(",\n  \"signing\": {\"mode\": ", f);
    wx_json_str(f, sg.mode);
    fputs(", \"hardened_runtime\": ", f);
    wx_json_tri(f, sg.hardened_runtime);
    fputs(", \"ad_hoc\": ", f);
    wx_json_tri(f, sg.adhoc);
    fputs(", \"linker_signed\": ", f);
    wx_json_tri(f, sg.linker_signed);
    fputs(", \"allow_jit\": ", f);
    wx_json_tri(f, sg.allow_jit);
    fputs(", \"jit_write_allowlist\": ", f);
    wx_json_tri(f, sg.jit_write_allowlist);
    fputs(", \"code_signing_monitor\": ", f);
    wx_json_tri(f, sg.csm);
    fputs(", \"codesigning_config\": ", f);
    if (sg.cs_config >= 0)
        fprintf(f, "%lld", sg.cs_config);
    else
        fputs("null", f);
    fputs(", \"lockdown_mode\": ", f);
    wx_json_tri(f, sg.lockdown);
    fputs(", \"rosetta\": ", f);
    wx_json_tri(f, sg.translated);
    fputs(", \"text\": ", f);
    wx_json_str(f, sg.text);
    fputs("},\n  \"jit_write_protection\": {\"enforced\": ", f);
    wx_json_tri(f, wx_jit_toggle_enforced(why, sizeof why));
    fputs(", \"evidence\": ", f);
    wx_json_str(f, why);
    fputs("},\n  \"jit_write_allowlist\": {\"enforced\": ", f);
    wx_json_tri(f, wx_jit_allowlist_enforced(why, sizeof why));
    fputs(", \"evidence\": ", f);
    wx_json_str(f, why);
    fputs("},\n", f);
}

int wx_meta_write(const wx_meta *meta)
{
    const wx_options *o = meta->o;
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/meta.json", meta->dir);
    snprintf(tmp, sizeof tmp, "%s/.meta.json.tmp", meta->dir);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int e = errno;
        fprintf(stderr, "wxbench: cannot write %s: %s\n", tmp, strerror(e));
        return e;
    }
    fputs("{\n", f);
    fputs("  \"wxbench_version\": ", f); wx_json_str(f, WX_VERSION); fputs(",\n", f);
    fputs("  \"date_utc\": ", f); wx_json_str(f, meta->date); fputs(",\n", f);
    fputs("  \"command_line\": \"", f);
    for (int i = 0; i < o->argc; i++) {
        /* the command line as one JSON string; each argument escaped */
        char *esc = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&esc, &len);
        if (m) {
            wx_json_str(m, o->argv[i]);
            fclose(m);
            fprintf(f, "%s%.*s", i ? " " : "", (int)(len >= 2 ? len - 2 : 0), esc + 1);
            free(esc);
        }
    }
    fputs("\",\n", f);
    fputs("  \"compiler\": ", f);
#if defined(__clang__)
    wx_json_str(f, "clang " __clang_version__);
#elif defined(__GNUC__)
    wx_json_str(f, "gcc " __VERSION__);
#else
    wx_json_str(f, "unknown");
#endif
    fputs(",\n", f);
    fputs("  \"gbench_version\": ", f); wx_json_str(f, wxgb_version()); fputs(",\n", f);
    wx_machine_write_meta(meta->m, f);
    write_signing(f);
    const char *classes[4];
    int ncls = wx_core_classes(classes, 4);
    fputs("  \"core_classes\": [", f);
    for (int i = 0; i < ncls; i++) {
        fputs(i ? ", " : "", f);
        wx_json_str(f, classes[i]);
    }
    fputs("],\n", f);
    fprintf(f, "  \"pinning\": {\"measuring_cpu\": %d, \"method\": ", meta->measuring_cpu);
    wx_json_str(f, wx_pin_method());
    fputs("},\n", f);
    fprintf(f, "  \"icache_method\": ");
    wx_json_str(f, wx_icache_method());
    fputs(",\n", f);
    fprintf(f, "  \"settings\": {\"quick\": %s, \"repetitions\": %d, \"min_time_s\": %g, \"timeout_s\": %d, "
               "\"seed\": %llu, \"interleaved\": %s, \"target_ci_pct\": ",
            o->quick ? "true" : "false", o->repetitions, o->min_time, o->timeout_s, (unsigned long long)o->seed,
            o->no_interleave ? "false" : "true");
    if (o->target_ci > 0)
        fprintf(f, "%g, \"target_ci_max_repetitions\": %d, \"target_ci_budget_s\": %d", o->target_ci,
                WX_TARGET_CI_MAX_REPETITIONS, WX_TARGET_CI_BUDGET_S);
    else
        fputs("null", f);
    fputs("},\n", f);
    fputs("  \"replication\": {\"unit\": \"process\", \"how\": ", f);
    wx_json_str(f, "each repetition of a (scenario, strategy) pair is a fresh child process measuring every case "
                   "of the pair once; children run in an order shuffled with settings.seed (unless interleaved is "
                   "false); each first maps a PROT_NONE spacer of a random number of pages (processes.csv: "
                   "layout_pages) so that its code regions land at other addresses");
    fprintf(f, ", \"aslr\": %d, \"processes\": %ld},\n", read_aslr(), meta->processes);
    fprintf(f, "  \"environment\": {\"runnable_tasks_not_ours\": %d, \"load_average\": ", meta->runnable_not_ours);
    if (meta->load[0] >= 0)
        fprintf(f, "[%.2f, %.2f, %.2f]", meta->load[0], meta->load[1], meta->load[2]);
    else
        fputs("null", f);
    fprintf(f, ", \"busy\": %s, \"warning\": ", meta->busy ? "true" : "false");
    wx_json_str(f, meta->busy_warning);
    fputs("},\n", f);
    if (o->target_ci > 0) {
        fprintf(f, "  \"target_ci\": {\"missed\": %ld, \"note\": ", meta->target_ci_missed);
        wx_json_str(f, meta->target_ci_note);
        fputs("},\n", f);
    }
    write_tables(f, o);
    fprintf(f, "  \"finished\": %s,\n  \"interrupted\": %s,\n", meta->finished ? "true" : "false",
            meta->interrupted ? "true" : "false");
    fputs("  \"stopped\": ", f);
    wx_json_str(f, meta->stopped);
    fputs(",\n", f);
    fprintf(f, "  \"elapsed_s\": %.1f,\n", meta->elapsed_s);
    fputs("  \"rows\": {", f);
    for (int s = 0; s < WX_NSTATUS; s++)
        fprintf(f, "%s\"%s\": %ld", s ? ", " : "", wx_status_name((wx_status)s), meta->rows.n[s]);
    fputs("}\n}\n", f);
    int e = ferror(f) ? EIO : 0;
    if (fclose(f) != 0 && e == 0)
        e = errno;
    if (e == 0 && rename(tmp, path) != 0)
        e = errno;
    if (e != 0) {
        fprintf(stderr, "wxbench: cannot write %s: %s\n", path, strerror(e));
        unlink(tmp);
    }
    return e;
}

