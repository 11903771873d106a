/* probe.c - `wxbench --probe`: what works here, per strategy, printed from
 * the audit (audit.c), each strategy audited in its own child with a time
 * limit, so that a crash or a hang is an answer. */
#define _GNU_SOURCE 1
#include "probe.h"
#include "audit.h"

#include <stdio.h>
#include <string.h>

/* Seconds one strategy's probe may take before its child is killed. */
#define WX_PROBE_TIMEOUT_S 30

/* "yes"/"no" from a fault signal: faulted => yes. */
static const char *faulted(int sig, char *buf, size_t len)
{
    if (sig < 0)
        return "not tried";
    if (sig == 0)
        return "no";
    snprintf(buf, len, "yes (%s)", wx_signal_name(sig));
    return buf;
}

static const char *worked(int sig, char *buf, size_t len)
{
    if (sig < 0)
        return "not tried";
    if (sig == 0)
        return "yes";
    snprintf(buf, len, "NO (%s)", wx_signal_name(sig));
    return buf;
}

/* One strategy's facts line (and its note). */
static void print_facts(FILE *out, const wx_strategy *s, const wx_audit *p)
{
    char b1[32], b2[32], b3[32], b4[32], b5[32], regions[WX_REASON_LEN + 32];
    fprintf(out, "%-16s ", s->name);
    if (!p->supported) {
        fprintf(out, "unsupported: %s\n", p->why);
        return;
    }
    if (!p->maps) {
        fprintf(out, "maps=NO (%s)\n", p->why);
        return;
    }
    if (p->regions < 0)
        snprintf(regions, sizeof regions, "not tried");
    else if (p->regions == WX_AUDIT_REGIONS)
        snprintf(regions, sizeof regions, "%d/%d", p->regions, WX_AUDIT_REGIONS);
    else
        snprintf(regions, sizeof regions, "%d/%d (next: %s)", p->regions, WX_AUDIT_REGIONS,
                 p->regions_why[0] ? p->regions_why : "no reason given");
    const char *exec_writable = faulted(p->exec_writable_sig, b4, sizeof b4);
    if (p->exec_writable_sig > 0 && p->exec_writable_killed) {
        snprintf(b4, sizeof b4, "yes (%s, process killed)", wx_signal_name(p->exec_writable_sig));
        exec_writable = b4;
    } else if (p->exec_writable_sig < 0 && strncmp(p->exec_writable_why, "not tried, because the code-signing", 35) == 0) {
        exec_writable = "not tried (code-signing monitor on)";
    }
    fprintf(out,
            "maps=yes write-when-writable=%s runs-when-executable=%s%s write-faults-when-executable=%s "
            "exec-faults-when-writable=%s other-thread-write-faults-while-writing=%s writable-alias=%s "
            "regions-at-once=%s\n",
            worked(p->write_sig, b1, sizeof b1), worked(p->run_sig, b2, sizeof b2),
            p->run_value_ok == 0 ? " (WRONG VALUE)" : "", faulted(p->write_exec_sig, b3, sizeof b3),
            exec_writable, faulted(p->other_write_sig, b5, sizeof b5), p->alias ? "yes" : "no", regions);
    if (p->why[0])
        fprintf(out, "%-16s   note: %s\n", "", p->why);
    if (p->exec_writable_sig < 0 && p->exec_writable_why[0])
        fprintf(out, "%-16s   note: exec-faults-when-writable %s\n", "", p->exec_writable_why);
    if (p->platform_note[0])
        fprintf(out, "%-16s   note: %s\n", "", p->platform_note);
}

/* What the system enforces, before the strategies: signing, the
 * code-signing monitor, the JIT toggle and its allow-list. */
static void print_system(FILE *out)
{
    wx_signing sg;
    char why[WX_REASON_LEN];
    wx_signing_describe(&sg);
    fprintf(out, "signing: %s (%s)\n", sg.mode, sg.text);
    int csm = wx_code_signing_monitor(why, sizeof why);
    fprintf(out, "code-signing monitor: %s (%s)%s\n",
            !sg.applicable ? "n/a" : csm == 1 ? "on" : csm == 0 ? "off" : "unknown", why,
            csm == 1 ? "; execute faults are therefore not provoked: those checks say not tried" : "");
    wx_jit_toggle_enforced(why, sizeof why);
    fprintf(out, "JIT write protection: %s\n", why);
    wx_jit_allowlist_enforced(why, sizeof why);
    fprintf(out, "JIT write allow-list: %s\n", why);
}

/* One strategy's properties, one line each (what audit.csv says). */
static void print_properties(FILE *out, const wx_audit *a)
{
    if (!a->supported) {
        fprintf(out, "%-16s   audit: n/a (unsupported here)\n", "");
        return;
    }
    for (int i = 0; i < WX_AUDIT_NPROPS; i++)
        fprintf(out, "%-16s   audit %-40s %-3s  %s\n", "", wx_audit_property_names[i],
                wx_audit_result_name(a->result[i]), a->evidence[i]);
}

int wx_probe_all(FILE *out)
{
    wx_machine m;
    wx_machine_describe(&m);
    fprintf(out, "wxbench probe: %s (%s), %s %s, page %ld bytes, %d CPUs; icache: %s\n", m.slug, m.chip, m.os,
            m.arch, m.page_size, m.ncpu, wx_icache_method());
    print_system(out);
    int bad = 0;
    for (size_t i = 0; wx_strategies[i]; i++) {
        const wx_strategy *s = wx_strategies[i];
        wx_audit a;
        wx_proc_end end;
        fflush(out);
        wx_audit_isolated(s, &a, WX_PROBE_TIMEOUT_S, &end);
        if (end.how == WX_PROC_EXITED && end.code == 0) {
            print_facts(out, s, &a);
            print_properties(out, &a);
            continue;
        }
        bad = 1;
        if (end.how == WX_PROC_TIMED_OUT)
            fprintf(out, "%-16s probe timed out: no answer within %d s (killed)\n", s->name, WX_PROBE_TIMEOUT_S);
        else if (end.how == WX_PROC_SIGNALED)
            fprintf(out, "%-16s crashed while probing: %s\n", s->name, end.why);
        else
            fprintf(out, "%-16s not probed: the probe's child %s\n", s->name, end.why);
    }
    fflush(out);
    return bad ? 1 : 0;
}
