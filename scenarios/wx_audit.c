/* wx_audit.c - does each strategy keep its W^X promise, and for how long
 * is code writable?
 *
 * Before anything is timed, the strategy is audited in a forked child
 * (audit.c): six yes/no questions, each decided by trying the access with
 * faults caught. The answers go to audit.csv beside results.csv
 * (strategy,property,result,evidence), including n/a rows for strategies
 * that cannot run here. Then:
 *
 *   exposure_window    the verified patch loop (writable, write a stub,
 *                      executable, flush, call, check); ns_per_op is the
 *                      mean time per patch from begin_write returning to
 *                      end_write returning: how long the code is writable
 *                      per patch. A strategy the audit finds writable at
 *                      rest has no window (it is always writable): its row
 *                      is `unsupported` with a reason starting
 *                      "always writable (permanent):".
 *                                                   op = one verified patch
 *   exposure_baseline  the same two clock reads around the same stub write
 *                      on RWX memory, no permission change: what the window
 *                      measurement itself adds (one clock read plus the
 *                      write).                      op = one verified patch
 *
 * Both rows report only the timed part of each patch (the body reports its
 * time), never the whole loop.
 *
 * A strategy with a write_code hook (mapjit_callback; test_hook in test
 * builds) is writable only inside that call: the switch to writable, the
 * copy and the switch back all happen within it, and the hook runs nothing
 * of the caller's, so no clock can be read while the code is writable.
 * Timing the whole call would add both switches and read as a longer
 * window than the strategy really opens, so its exposure_window row is
 * `unsupported` with that reason (the whole round trip is what
 * toggle_latency/flip times for it); exposure_baseline still runs. */
#include "../bench/wx.h"

#include <stdio.h>
#include <string.h>

#define AUDIT_TIMEOUT_S 30
#define OPS_PER_BATCH 100u
#define PATCHES 20000u       /* fixed per repetition */
#define PATCHES_QUICK 2000u

/* This child's audit outcome: what the exposure rows depend on. */
static char g_audit_failure[WX_REASON_LEN * 2]; /* non-empty: the audit could not be completed or written */

static uint32_t call(const wx_region *r)
{
    return wx_stub_at(r->exec)();
}

/* The verified patch loop timing only the window. With s == NULL: the
 * baseline on RWX memory, nothing switched. Never called for a strategy
 * with a write_code hook (its window cannot be timed from outside). */
static void window_loop(wx_bench *b, const wx_strategy *s, wx_region *r)
{
    const size_t stub = wx_stub_size();
    const int skip_write = wx_test_inject("skip_write");
    const int corrupt = wx_test_inject("corrupt_stub");
    uint32_t v = 1000u, got = 0;
    uint64_t n = 0;
    int err = 0;
    while (wx_bench_keep_running(b, OPS_PER_BATCH)) {
        uint64_t window = 0;
        for (unsigned i = 0; i < OPS_PER_BATCH; i++) {
            v++;
            if (s && (err = s->begin_write(r)) != 0)
                break;
            uint64_t t0 = wx_now_ns();
            if (!skip_write)
                wx_emit_stub(r->write, stub, corrupt && ++n == 77 ? v ^ 1u : v);
            if (s && (err = s->end_write(r)) != 0)
                break;
            uint64_t t1 = wx_now_ns();
            window += t1 - t0;
            wx_icache_flush(r->write, r->exec, stub);
            got = call(r);
            if (got != v)
                break;
        }
        wx_bench_batch_time(b, (double)window);
        if (err || got != v)
            break;
    }
    if (err)
        wx_bench_fail(b, "begin_write/end_write failed: %s", strerror(err));
    else if (got != v)
        wx_bench_fail(b, "verification failed: patched stub returned %u, expected %u", got, v);
}

static void bench_window(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    wx_region r;
    char why[WX_REASON_LEN];
    if (wx_region_prepare(s, &r, (size_t)c->size_bytes, 7u, why, sizeof why) != 0) {
        wx_bench_fail(b, "setup: %s", why);
        return;
    }
    window_loop(b, s, &r);
    s->unmap(&r);
}

static void bench_window_baseline(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    (void)s;
    wx_region r;
    char why[WX_REASON_LEN];
    int e = wx_baseline_prepare(&r, (size_t)c->size_bytes, 7u, why, sizeof why);
    if (e > 0)
        wx_bench_fail(b, "unsupported: %s", why);
    else if (e < 0)
        wx_bench_fail(b, "setup: %s", why);
    if (e != 0)
        return;
    window_loop(b, NULL, &r);
    wx_baseline_unmap(&r);
}

/* The audit could not be completed or recorded: the window cannot be
 * interpreted, so the row fails and says why. */
static void bench_audit_failed(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    (void)s;
    (void)c;
    wx_bench_fail(b, "%s", g_audit_failure);
}

static void audit_register(const wx_run *run)
{
    wx_audit a;
    char why[WX_REASON_LEN] = "";
    wx_audit_strategy_isolated(run->strategy, &a, AUDIT_TIMEOUT_S);
    if (!a.complete)
        snprintf(g_audit_failure, sizeof g_audit_failure, "audit of %s did not finish: %s", run->strategy->name,
                 a.evidence[0]);
    if (wx_audit_write_csv(run->out_dir, run->strategy->name, &a, why, sizeof why) != 0) {
        fprintf(stderr, "wxbench: cannot write audit.csv: %s\n", why);
        snprintf(g_audit_failure, sizeof g_audit_failure, "cannot write audit.csv: %s", why);
    }

    wx_case c = {.variant = "exposure_window", .threads = 1, .batch = 1,
                 .size_bytes = (uint64_t)run->page_size,
                 .iterations = run->quick ? PATCHES_QUICK : PATCHES};
    if (g_audit_failure[0]) {
        wx_add_case(&c, bench_audit_failed);
    } else if (a.result[WX_AUDIT_WRITABLE_AT_REST] == 1) {
        char reason[WX_REASON_LEN * 2];
        snprintf(reason, sizeof reason, "always writable (permanent): %s; no window to measure",
                 a.evidence[WX_AUDIT_WRITABLE_AT_REST]);
        wx_add_unsupported(&c, reason);
    } else if (run->strategy->write_code) {
        wx_add_unsupported(&c, "the window lies inside write_code (switch to writable, copy, switch back in one "
                               "call) and runs nothing of the caller's: no clock can be read while the code is "
                               "writable; the whole call, both switches included, is toggle_latency/flip");
    } else {
        wx_add_case_manual_time(&c, bench_window);
    }
    c.variant = "exposure_baseline";
    wx_add_case_manual_time(&c, bench_window_baseline);
}

/* A strategy that cannot run here still gets its audit.csv rows: n/a, with
 * the reason. */
static void audit_record_unsupported(const wx_run *run, const char *reason)
{
    wx_audit a;
    char ev[WX_REASON_LEN], why[WX_REASON_LEN] = "";
    snprintf(ev, sizeof ev, "unsupported here: %.230s", reason);
    wx_audit_all_na(&a, ev);
    if (wx_audit_write_csv(run->out_dir, run->strategy->name, &a, why, sizeof why) != 0)
        fprintf(stderr, "wxbench: cannot write audit.csv: %s\n", why);
}

static const char *const audit_variants[] = {"exposure_window", "exposure_baseline", NULL};

const wx_scenario wx_scenario_wx_audit = {
    .name = "wx_audit",
    .question = "does each strategy keep its W^X promise, and for how long is code writable per patch?",
    .op = "exposure_window: one verified patch, timed from begin_write returning to end_write returning; "
          "exposure_baseline: the same interval around the same write on RWX memory, nothing switched "
          "(answers to the audit questions: audit.csv)",
    .variants = audit_variants,
    .strategy_free = 0,
    .register_cases = audit_register,
    .record_unsupported = audit_record_unsupported,
};
