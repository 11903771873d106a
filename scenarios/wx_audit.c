/* wx_audit.c - does each strategy keep its W^X promise, and for how long
 * is code writable?
 *
 * The answers come from the audit (bench/app/audit.c): six yes/no
 * questions, each decided by trying the access with faults caught, run by
 * the parent of the run in a forked child before this scenario's children
 * start, and written to audit.csv beside results.csv
 * (strategy,property,result,evidence), including n/a rows for strategies
 * that cannot run here. This scenario times:
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
 *                      on baseline memory, no permission change: what the
 *                      window measurement itself adds (one clock read plus
 *                      the write).                  op = one verified patch
 *
 * Both rows report only the timed part of each patch (WX_K_MANUAL_TIME),
 * never the whole loop.
 *
 * A strategy writable only inside write_code (mapjit_callback; test_hook in
 * test builds): the switch to writable, the copy and the switch back all
 * happen within that call, and it runs nothing of the caller's, so no clock
 * can be read while the code is writable. Its exposure_window row is
 * `unsupported` with that reason (the whole round trip is what
 * toggle_latency/flip times for it); exposure_baseline still runs. */
#include "../bench/app/audit.h"
#include "../bench/app/scenario.h"

#include <stdio.h>
#include <string.h>

#define OPS_PER_STEP 100u
#define PATCHES 20000u       /* fixed per repetition */
#define PATCHES_QUICK 2000u

typedef struct win_state {
    wx_region r;
    int mapped;
    uint32_t v;
    uint64_t n;
} win_state;

static int win_setup(wx_job *j)
{
    win_state *x = j->state;
    if (wx_region_prepare(j->s, &x->r, (size_t)j->c->size_bytes, 7u, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    x->mapped = 1;
    x->v = 1000u;
    return WX_OK;
}

/* n verified patches, timing only the window (begin_write returned ..
 * end_write returned) into j->timed_ns. Never run for a strategy with a
 * write_code hook (its window cannot be timed from outside). */
static int win_ops(wx_job *j, uint64_t n)
{
    win_state *x = j->state;
    const wx_strategy *s = j->s;
    const size_t stub = wx_stub_size();
    unsigned char stage[64];
    uint64_t window = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t v = ++x->v;
        int e;
        void *p = wx_code_begin(s, &x->r, 0, stage, &e);
        uint64_t t0 = wx_now_ns();
        if (e == 0) {
            wx_emit_stub(p, stub, wx_injected(WX_INJ_CORRUPT_STUB) && ++x->n == 77 ? v ^ 1u : v);
            e = wx_code_end(s, &x->r, 0, stage, stub);
        }
        uint64_t t1 = wx_now_ns();
        if (e != 0)
            return wx_job_errno(j, "begin_write/end_write", e);
        window += t1 - t0;
        wx_icache_flush(x->r.write, x->r.exec, stub);
        uint32_t got = wx_stub_at(x->r.exec)();
        if (got != v)
            return wx_job_fail(j, "verification failed: patched stub returned %u, expected %u", got, v);
    }
    j->timed_ns = (double)window;
    return 0;
}

static void win_teardown(wx_job *j)
{
    win_state *x = j->state;
    if (x->mapped)
        j->s->unmap(&x->r);
}

static const wx_kernel k_window = {.state_size = sizeof(win_state), .step = OPS_PER_STEP,
                                   .flags = WX_K_MANUAL_TIME, .setup = win_setup, .ops = win_ops,
                                   .teardown = win_teardown};
static const wx_kernel k_baseline = {.state_size = sizeof(win_state), .step = OPS_PER_STEP,
                                     .flags = WX_K_MANUAL_TIME | WX_K_BASELINE, .setup = win_setup,
                                     .ops = win_ops, .teardown = win_teardown};

/* The audit could not be completed or recorded: the window cannot be
 * interpreted, so the row fails and says why. */
static int audit_failed(wx_job *j)
{
    return wx_job_fail(j, "audit of %s did not finish: %s", j->s->name, j->run->audit->failure), WX_FAILED;
}

static const wx_kernel k_audit_failed = {.setup = audit_failed, .ops = win_ops};

static void audit_register(const wx_run *run)
{
    const wx_audit *a = run->audit;
    wx_case c = {.variant = "exposure_window", .size_bytes = (uint64_t)run->page_size,
                 .iterations = run->quick ? PATCHES_QUICK : PATCHES};
    if (!a || a->failure[0]) {
        wx_add(&c, &k_audit_failed);
    } else if (a->result[WX_AUDIT_WRITABLE_AT_REST] == 1) {
        char reason[WX_REASON_LEN * 2];
        snprintf(reason, sizeof reason, "always writable (permanent): %.400s; no window to measure",
                 a->evidence[WX_AUDIT_WRITABLE_AT_REST]);
        wx_add_unsupported(&c, reason);
    } else if (run->strategy->write_code) {
        wx_add_unsupported(&c, "the window lies inside write_code (switch to writable, copy, switch back in one "
                               "call) and runs nothing of the caller's: no clock can be read while the code is "
                               "writable; the whole call, both switches included, is toggle_latency/flip");
    } else {
        wx_add(&c, &k_window);
    }
    c.variant = "exposure_baseline";
    wx_add(&c, &k_baseline);
}

static const char *const audit_variants[] = {"exposure_window", "exposure_baseline", NULL};

const wx_scenario wx_scenario_wx_audit = {
    .name = "wx_audit", .variants = audit_variants, .register_cases = audit_register, .needs_audit = 1,
    .question = "does each strategy keep its W^X promise, and for how long is code writable per patch?",
    .op = "exposure_window: one verified patch, timed from begin_write returning to end_write returning; "
          "exposure_baseline: the same interval around the same write on RWX memory, nothing switched "
          "(answers to the audit questions: audit.csv)",
};
