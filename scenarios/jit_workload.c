/* jit_workload.c - what W^X costs a JIT that compiles functions and runs
 * them, patches inline caches, and patches code another thread is running.
 *
 *   compile            emit M functions (stubs padded to size_bytes, each
 *                      returning its own constant) into a fresh code cache
 *                      by bump allocation, `batch` functions per writable
 *                      window: begin_write, write them, end_write, flush,
 *                      call each new one once and check its value.
 *                      op = one function compiled and first run
 *   compile_baseline   the same on baseline memory, nothing switched
 *   ic_patch           rewrite the 8-byte constant of a stub this thread
 *                      keeps calling: begin_write, patch, end_write, flush,
 *                      call, check.          op = one verified patch + call
 *   ic_patch_baseline  the same on baseline memory, nothing switched
 *   cross_thread       the same patch while a second thread (victims = 1,
 *                      pinned to another CPU) calls the stub in a loop;
 *                      after each patch the patcher resynchronises that
 *                      thread's core with membarrier(SYNC_CORE), then checks
 *                      the value itself.         op = one patch, synced, verified
 *   cross_thread_nosync  the same without membarrier
 *   (cross_thread: jit_cross_thread.c)
 *
 * compile: M = 4096 functions (256 under --quick); a repetition is one
 * round of exactly M functions (fixed iteration count) on a code cache
 * mapped, filled and touched before the timed loop and unmapped after it,
 * so ns_per_op is per function compiled and first run, and excludes map and
 * unmap. Every slot of a fresh cache holds a "poison" stub returning
 * POISON until it is compiled, so a write that did not land is a wrong
 * value, not a crash. The strategy switches the whole cache (the strategy
 * API has no sub-range): mprotect's cost grows with the cache,
 * M * size_bytes.
 *
 * Strategies writable only inside write_code (mapjit_callback; test_hook in
 * test builds) write through their staging buffer (wx_code_begin): compile
 * emits a batch there and copies it in with one call per window; ic_patch
 * patches the constant in a shadow copy of the stub and copies the whole
 * stub in. The op is the same; it includes the copy.
 */
#define _GNU_SOURCE 1
#include "jit_workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUNCTIONS 4096u
#define FUNCTIONS_QUICK 256u
/* The untimed warm-up pass of a compile round (j->warmup) stops compiling
 * once it has compiled for this long and skips the rest of its round (the
 * harness's loop still counts those ops out). Under every strategy but
 * mprotect a whole round fits (4096 functions in ~1-2 ms), so there the
 * warm-up is what it always was: predictors and caches trained on the very
 * addresses the measured pass uses next show in its numbers (a warm-up of
 * only the first 256 functions measured rwx and pkey compile 5-10% slower).
 * Under mprotect a function costs up to 250 us (each window switches the
 * whole 4 MiB cache twice): a round is ~1 s, and after the first 100 ms
 * nothing measurable at that scale is left to warm. (cross_thread keeps its
 * whole warm-up: its mprotect rows are bimodal, and a shorter warm-up could
 * not be shown not to move them.) */
#define WARMUP_MAX_NS 100000000ull
#define POISON 0xDEADC0DEu

static const uint64_t sizes[] = {64, 256, 1024};
static const uint64_t batches[] = {1, 4, 16, 64, 256};

static uint32_t g_round; /* compile rounds so far in this child */

/* ------------------------------------------------------------------------
 * compile
 * --------------------------------------------------------------------- */

/* The constant function `slot` of round `round` returns: unique within a
 * round, different across rounds, never POISON. */
static uint32_t fn_value(uint32_t round, uint32_t slot)
{
    return 0x10000u + (round % 100000u) * FUNCTIONS + slot;
}

/* One compile round's code cache. */
typedef struct compile_state {
    wx_region r;
    int mapped;
    size_t size, nslots;   /* bytes per function, functions */
    size_t next;           /* the next slot */
    uint32_t round;        /* this round's number */
    unsigned char *buf;    /* staging buffer: batch functions */
    uint64_t warm_end;     /* warm-up pass: when it stops compiling (WARMUP_MAX_NS) */
} compile_state;

/* Map a code cache for nslots functions, fill every slot with a poison
 * stub, make it executable and read every page through the exec view (no
 * page is untouched when timing starts). */
static int compile_setup(wx_job *j)
{
    compile_state *x = j->state;
    const size_t page = (size_t)j->run->page_size;
    x->size = (size_t)j->c->size_bytes;
    x->nslots = (size_t)j->c->iterations;
    x->round = g_round++;
    j->step = (uint64_t)j->c->batch;
    size_t bytes = (x->size * x->nslots + page - 1) / page * page;
    x->buf = malloc((size_t)j->c->batch * x->size);
    unsigned char *img = calloc(1, bytes);
    if (!x->buf || !img) {
        free(img);
        return wx_job_fail(j, "out of memory for a %zu-byte code cache", bytes), WX_FAILED;
    }
    for (size_t i = 0; i < x->nslots; i++)
        wx_emit_stub(img + i * x->size, x->size, POISON);
    int e = j->s->map(&x->r, bytes, j->why, sizeof j->why);
    if (e == 0) {
        x->mapped = 1;
        if ((e = wx_write_code(j->s, &x->r, 0, img, bytes)) != 0)
            wx_job_errno(j, j->s->write_code ? "write_code" : "begin_write/end_write", e);
    }
    free(img);
    if (e != 0)
        return WX_FAILED;
    wx_icache_flush(x->r.write, x->r.exec, x->r.size);
    volatile const unsigned char *xv = x->r.exec;
    unsigned sum = 0;
    for (size_t off = 0; off < x->r.size; off += page)
        sum += xv[off];
    (void)sum;
    return WX_OK;
}

/* n = batch functions in one writable window, then each called once. */
static int compile_ops(wx_job *j, uint64_t n)
{
    compile_state *x = j->state;
    const wx_strategy *s = j->s;
    if (j->warmup) {
        const uint64_t now = wx_now_ns();
        if (x->next == 0)
            x->warm_end = now + WARMUP_MAX_NS;
        else if (now > x->warm_end)
            return 0; /* warm: the rest of the warm-up round is skipped (WARMUP_MAX_NS) */
    }
    if (x->next + n > x->nslots)
        return wx_job_fail(j, "code cache full after %zu functions: the round must be exactly %zu ops", x->next,
                           x->nslots);
    const size_t off = x->next * x->size;
    int e;
    unsigned char *p = wx_code_begin(s, &x->r, off, x->buf, &e);
    if (e != 0)
        return wx_job_errno(j, "begin_write", e);
    for (uint64_t k = 0; k < n; k++)
        wx_emit_stub(p + k * x->size, x->size, fn_value(x->round, (uint32_t)(x->next + k)));
    if (wx_injected(WX_INJ_CORRUPT_STUB) && x->next <= CORRUPT_AT && CORRUPT_AT < x->next + n)
        wx_patch_stub(p + (CORRUPT_AT - x->next) * x->size, x->size, fn_value(x->round, CORRUPT_AT) ^ 1u);
    if ((e = wx_code_end(s, &x->r, off, x->buf, (size_t)n * x->size)) != 0)
        return wx_job_errno(j, s->write_code ? "write_code" : "end_write", e);
    const char *xc = (const char *)x->r.exec + off;
    wx_icache_flush((char *)x->r.write + off, (void *)xc, (size_t)n * x->size);
    for (uint64_t k = 0; k < n; k++) {
        uint32_t got = wx_stub_at((void *)(xc + k * x->size))();
        uint32_t want = fn_value(x->round, (uint32_t)(x->next + k));
        if (got != want)
            return wx_job_fail(j, "verification failed: function %zu returned %#x, expected %#x%s",
                               (size_t)(x->next + k), got, want, got == POISON ? " (the write never landed)" : "");
    }
    x->next += n;
    return 0;
}

static void compile_teardown(wx_job *j)
{
    compile_state *x = j->state;
    if (x->mapped)
        j->s->unmap(&x->r);
    free(x->buf);
}

/* ------------------------------------------------------------------------
 * ic_patch
 * --------------------------------------------------------------------- */

/* The constant of patch i: every byte changes over the sweep. */
static uint64_t ic_value(uint64_t i)
{
    return 0x0123456789abcdefull ^ (i * 0x9E3779B97F4A7C15ull);
}

int jit_stub64_setup(wx_job *j, wx_region *r, uint64_t value, unsigned char *shadow)
{
    wx_emit_stub64(shadow, IC_STUB_BYTES, value);
    int e = wx_write_code(j->s, r, 0, shadow, IC_STUB_BYTES);
    if (e != 0)
        return wx_job_errno(j, j->s->write_code ? "setup: write_code" : "setup: begin_write/end_write", e);
    wx_icache_flush(r->write, r->exec, IC_STUB_BYTES);
    if (wx_stub64_at(r->exec)() != value)
        return wx_job_fail(j, "setup: verification failed: the 64-bit stub does not return its constant");
    return 0;
}

/* The inline-cache stub and its shadow. */
typedef struct ic_state {
    wx_region r;
    int mapped;
    uint64_t i;                                   /* patches so far */
    _Alignas(16) unsigned char shadow[IC_STUB_BYTES];
} ic_state;

static int ic_setup(wx_job *j)
{
    ic_state *x = j->state;
    if (wx_region_prepare(j->s, &x->r, (size_t)j->c->size_bytes, 7u, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    x->mapped = 1;
    return jit_stub64_setup(j, &x->r, ic_value(0), x->shadow) == 0 ? WX_OK : WX_FAILED;
}

/* n verified in-place patches of the constant, each followed by a call. */
static int ic_ops(wx_job *j, uint64_t n)
{
    ic_state *x = j->state;
    const wx_strategy *s = j->s;
    const wx_stub64_fn fn = wx_stub64_at(x->r.exec);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t v = ic_value(++x->i);
        int e;
        void *p = wx_code_begin(s, &x->r, 0, x->shadow, &e);
        if (e == 0) {
            wx_patch_stub64(p, IC_STUB_BYTES, wx_injected(WX_INJ_CORRUPT_STUB) && x->i == CORRUPT_AT ? v ^ 1u : v);
            e = wx_code_end(s, &x->r, 0, x->shadow, IC_STUB_BYTES);
        }
        if (e != 0)
            return wx_job_errno(j, s->write_code ? "write_code" : "begin_write/end_write", e);
        wx_icache_flush(x->r.write, x->r.exec, IC_STUB_BYTES);
        uint64_t got = fn();
        if (got != v)
            return wx_job_fail(j, "verification failed: patched stub returned %#llx, expected %#llx",
                               (unsigned long long)got, (unsigned long long)v);
    }
    return 0;
}

static void ic_teardown(wx_job *j)
{
    ic_state *x = j->state;
    if (x->mapped)
        j->s->unmap(&x->r);
}

static const wx_kernel k_compile = {.state_size = sizeof(compile_state), .setup = compile_setup,
                                    .ops = compile_ops, .teardown = compile_teardown};
static const wx_kernel k_compile_baseline = {.state_size = sizeof(compile_state), .flags = WX_K_BASELINE,
                                             .setup = compile_setup, .ops = compile_ops,
                                             .teardown = compile_teardown};
static const wx_kernel k_ic = {.state_size = sizeof(ic_state), .step = JIT_OPS_PER_STEP, .setup = ic_setup,
                               .ops = ic_ops, .teardown = ic_teardown};
static const wx_kernel k_ic_baseline = {.state_size = sizeof(ic_state), .step = JIT_OPS_PER_STEP,
                                        .flags = WX_K_BASELINE, .setup = ic_setup, .ops = ic_ops,
                                        .teardown = ic_teardown};

/* ------------------------------------------------------------------------
 * Registration
 * --------------------------------------------------------------------- */

#define CROSS_PATCHES 10000u      /* fixed per repetition */
#define CROSS_PATCHES_QUICK 5000u  /* a loop long enough to judge whether the executing thread ran */

static void jit_register(const wx_run *run)
{
    const uint64_t page = (uint64_t)run->page_size;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        /* compile and its baseline side by side, size by size */
        wx_case c = {.size_bytes = sizes[i], .iterations = run->quick ? FUNCTIONS_QUICK : FUNCTIONS};
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            c.batch = (int)batches[b];
            c.variant = "compile";
            wx_add(&c, &k_compile);
            c.variant = "compile_baseline";
            wx_add(&c, &k_compile_baseline);
        }
    }

    wx_case ic = {.variant = "ic_patch", .size_bytes = page};
    wx_add(&ic, &k_ic);
    ic.variant = "ic_patch_baseline";
    wx_add(&ic, &k_ic_baseline);

    char why[WX_REASON_LEN] = "";
    wx_case x = {.victims = 1, .size_bytes = page, .iterations = run->quick ? CROSS_PATCHES_QUICK : CROSS_PATCHES};
    if (run->ncpu < 2) {
        snprintf(why, sizeof why, "needs 2 CPUs (a patcher and an executing thread on different cores); "
                                  "this process may use %d", run->ncpu);
        x.variant = "cross_thread";
        wx_add_unsupported(&x, why);
        x.variant = "cross_thread_nosync";
        wx_add_unsupported(&x, why);
        return;
    }
    /* A strategy whose switch is process-wide leaves the code unexecutable
     * for the executing thread while the patcher writes: its calls then
     * fault, and are counted. Where the code-signing monitor is on such a
     * fault would kill the whole process (SIGKILL) instead. */
    char csm[WX_REASON_LEN];
    const int killed_by_faults =
        !(run->strategy->flags & (WX_PER_THREAD | WX_NO_SWITCH)) && wx_code_signing_monitor(csm, sizeof csm) == 1;
    const char *const not_under_csm =
        "not measured, because the code-signing monitor is on (security.codesigning.config): the executing "
        "thread's calls while the patcher holds this strategy's pages writable would meet an execute fault, "
        "which would kill the process with SIGKILL";
    x.variant = "cross_thread";
    x.param = 1;
    if (!jit_membarrier_setup(why, sizeof why))
        wx_add_unsupported(&x, why);
    else if (killed_by_faults)
        wx_add_unsupported(&x, not_under_csm);
    else
        wx_add(&x, &jit_cross_kernel);
    x.variant = "cross_thread_nosync";
    x.param = 0;
    if (killed_by_faults)
        wx_add_unsupported(&x, not_under_csm);
    else
        wx_add(&x, &jit_cross_kernel);
}

static const char *const jit_variants[] = {"compile", "compile_baseline", "ic_patch", "ic_patch_baseline",
                                           "cross_thread", "cross_thread_nosync", NULL};

const wx_scenario wx_scenario_jit_workload = {
    .name = "jit_workload", .variants = jit_variants, .register_cases = jit_register,
    .question = "what does W^X cost a JIT that compiles functions, patches inline caches and patches running code?",
    .op = "compile/compile_baseline: one function compiled and first run (batch functions per writable window); "
          "ic_patch/ic_patch_baseline: one verified patch of an 8-byte constant plus the call; "
          "cross_thread/cross_thread_nosync: one verified patch while another thread runs the code "
          "(counts: jit_cross_thread.csv)",
};
