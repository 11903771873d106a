/* jit_workload's cross_thread and cross_thread_nosync kernel: patch an
 * 8-byte constant while a second thread keeps calling the code, pinned to
 * another CPU: the case's one victim, started, settled and checked by the
 * harness like every victim (a row whose executing thread held its CPU for
 * less than a quarter of the timed loop is `failed`, saying so).
 *
 * The executing thread counts what each of its calls returned, relative to
 * the last patch the patcher had completed (patched, made executable,
 * flushed, synced, verified) before the call began; the counts of each
 * repetition go to jit_cross_thread.csv beside results.csv, named by core
 * class and repetition like the row they belong to.
 *
 * A strategy writable only inside write_code copies the whole stub in with
 * one call per patch: the new constant then lands by the strategy's memcpy,
 * not by the aligned stores of wx_patch_stub64, so the executing thread may
 * see a mix of two patches (counted as torn) where the direct path would not.
 */
#define _GNU_SOURCE 1
#include "jit_workload.h"
#include "../bench/app/csv.h"
#include "../bench/core/icache_ops.h" /* membarrier */

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Generation g as a 64-bit constant: g in the low half, a check word in the
 * high half, so a mix of two patches (torn) is recognised. */
static uint64_t gen_value(uint32_t g)
{
    uint32_t check = (g * 0x9E3779B1u) ^ 0x5BD1E995u;
    return (uint64_t)check << 32 | g;
}

static int gen_decode(uint64_t v, uint32_t *g)
{
    *g = (uint32_t)v;
    return gen_value(*g) == v;
}

/* What the executing thread saw. Written only by it (volatile: kept across
 * a fault's longjmp), read by the patcher after it has stopped. */
typedef struct seen {
    volatile uint64_t calls;      /* calls started while counting */
    volatile uint64_t current;    /* returned a patch completed before or during the call */
    volatile uint64_t in_flight;  /* returned the patch being written, not yet completed */
    volatile uint64_t stale;      /* returned a patch older than the one completed before the call began */
    volatile uint64_t torn;       /* returned a mix of two patches */
    volatile uint64_t faulted;    /* the call faulted (code not executable at that moment) */
    volatile uint64_t invalid;    /* returned a value no patch had written yet (must be 0) */
    volatile uint64_t invalid_value;
    volatile int counted_call;    /* the call in progress is counted (read after a fault) */
} seen;

/* One case: the region, the patcher's progress, what the executing thread saw. */
typedef struct cross {
    wx_region r;
    int mapped;
    _Alignas(16) unsigned char shadow[IC_STUB_BYTES];
    uint32_t g;                   /* the patcher's last generation */
    _Alignas(128) _Atomic uint32_t completed; /* last patch completed (0 = the initial code) */
    _Atomic int counting;         /* count calls only while the patches run */
    _Alignas(128) seen s;
} cross;

#define CALLS_PER_STEP 256u       /* calls of one victim step (one fault catcher around them) */

static void run_calls(void *arg)
{
    cross *x = arg;
    const wx_stub64_fn fn = wx_stub64_at(x->r.exec);
    for (unsigned k = 0; k < CALLS_PER_STEP; k++) {
        int counting = atomic_load_explicit(&x->counting, memory_order_relaxed);
        uint32_t p0 = atomic_load_explicit(&x->completed, memory_order_acquire);
        x->s.counted_call = counting;
        if (counting)
            x->s.calls++;
        uint64_t v = fn();
        uint32_t p1 = atomic_load_explicit(&x->completed, memory_order_acquire);
        if (!counting)
            continue;
        uint32_t g;
        if (!gen_decode(v, &g)) {
            x->s.torn++;
        } else if (g < p0) {
            x->s.stale++;
        } else if (g <= p1) {
            x->s.current++;
        } else if (g == p1 + 1) {
            x->s.in_flight++;
        } else {
            x->s.invalid++;
            x->s.invalid_value = v;
        }
    }
}

/* The executing thread (the harness's victim 0, pinned to its own CPU). */
static int executing_prepare(wx_job *j, int k, void *mine, char *why, size_t len)
{
    (void)j, (void)k, (void)mine, (void)why, (void)len;
    wx_jit_thread_reset();
    return 0;
}

/* One step: CALLS_PER_STEP calls, a fault (the code not executable at that
 * moment) ending the step and counted. */
static int executing_step(wx_job *j, int k, void *mine, char *why, size_t len)
{
    (void)k, (void)mine, (void)why, (void)len;
    cross *x = j->state;
    int sig = wx_try(run_calls, x);
    if (sig != 0 && x->s.counted_call)
        x->s.faulted++; /* counted in calls already */
    return WX_STEP_DONE;
}

int jit_membarrier_setup(char *why, size_t len)
{
    static int done = -1;
    static char reason[WX_REASON_LEN];
    if (done < 0) {
#if defined(__linux__)
        done = wx_membarrier_sync_core_setup(reason, sizeof reason);
#else
        snprintf(reason, sizeof reason,
                 "no membarrier on this OS: another thread's core cannot be resynchronised from outside it");
        done = 0;
#endif
    }
    if (!done)
        snprintf(why, len, "%s", reason);
    return done;
}

static int cross_setup(wx_job *j)
{
    cross *x = j->state;
    j->step = JIT_OPS_PER_STEP;
    /* A process-wide switch takes the mm's lock for writing while the
     * executing thread keeps faulting on the pages (each fault takes it for
     * reading): the patcher sleeps on that lock by design. */
    j->sleeps = !(j->s->flags & (WX_PER_THREAD | WX_NO_SWITCH));
    if (wx_region_prepare(j->s, &x->r, (size_t)j->c->size_bytes, 7u, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    x->mapped = 1;
    if (jit_stub64_setup(j, &x->r, gen_value(0), x->shadow) != 0)
        return WX_FAILED;
    return WX_OK; /* the harness starts the executing thread now */
}

/* n patches, each made visible (and synced: param 1), then verified. */
static int cross_ops(wx_job *j, uint64_t n)
{
    cross *x = j->state;
    const wx_strategy *s = j->s;
    const wx_stub64_fn fn = wx_stub64_at(x->r.exec);
    /* Calls count from the first patch to the last (a fixed number per repetition). */
    atomic_store_explicit(&x->counting, 1, memory_order_relaxed);
    for (uint64_t k = 0; k < n; k++) {
        uint32_t g = ++x->g;
        uint64_t v = gen_value(g);
        int e;
        void *p = wx_code_begin(s, &x->r, 0, x->shadow, &e);
        if (e == 0) {
            wx_patch_stub64(p, IC_STUB_BYTES, wx_injected(WX_INJ_CORRUPT_STUB) && g == CORRUPT_AT ? v ^ 1u : v);
            e = wx_code_end(s, &x->r, 0, x->shadow, IC_STUB_BYTES);
        }
        if (e != 0) {
            if (!s->write_code)
                s->end_write(&x->r); /* not left between begin_write and end_write */
            return wx_job_errno(j, s->write_code ? "write_code" : "begin_write/end_write", e);
        }
        wx_icache_flush(x->r.write, x->r.exec, IC_STUB_BYTES);
#if defined(__linux__)
        if (j->c->param && wx_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0) != 0)
            return wx_job_errno(j, "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)", errno);
#endif
        uint64_t got = fn();
        if (got != v)
            return wx_job_fail(j, "verification failed: patch %u returned %#llx, expected %#llx", g,
                               (unsigned long long)got, (unsigned long long)v);
        atomic_store_explicit(&x->completed, g, memory_order_release);
    }
    if (x->g >= j->c->iterations)
        atomic_store_explicit(&x->counting, 0, memory_order_relaxed);
    return 0;
}

/* After the patches: what the executing thread saw, checked, and recorded
 * in jit_cross_thread.csv. */
static int cross_verify(wx_job *j)
{
    cross *x = j->state; /* the harness has stopped the executing thread */
    if (x->s.invalid)
        return wx_job_fail(j, "the executing thread saw %#llx, a value no patch had written yet (%llu times)",
                           (unsigned long long)x->s.invalid_value, (unsigned long long)x->s.invalid);
    /* The untimed warm-up only warms (the harness does not judge its
     * victims either): an executing thread that got no CPU in it is a busy
     * machine, not a result. In the timed pass the victim check has already
     * failed a thread that lost its CPU, so no calls there is a bug. */
    if (j->warmup)
        return 0;
    if (x->s.calls == 0)
        return wx_job_fail(j, "the executing thread made no calls while the patches ran: no concurrency was "
                              "measured");
    static const char header[] =
        "strategy,variant,core_class,repetition,patches,calls,current,in_flight,stale,torn,faulted\n";
    char num[8][24];
    const uint64_t vals[8] = {(uint64_t)j->repetition, x->g, x->s.calls, x->s.current, x->s.in_flight,
                              x->s.stale, x->s.torn, x->s.faulted};
    for (int i = 0; i < 8; i++)
        snprintf(num[i], sizeof num[i], "%llu", (unsigned long long)vals[i]);
    const char *fields[] = {j->s->name, j->c->variant, j->core_class, num[0], num[1], num[2], num[3],
                            num[4], num[5], num[6], num[7]};
    char *line = wx_csv_line(fields, 11);
    char why[WX_REASON_LEN] = "";
    int e = line ? wx_side_csv_append(j->run->out_dir, "jit_cross_thread.csv", header, line, why, sizeof why)
                 : ENOMEM;
    free(line);
    if (e != 0)
        return wx_job_fail(j, "cannot write jit_cross_thread.csv: %s", why[0] ? why : strerror(e));
    return 0;
}

static void cross_teardown(wx_job *j)
{
    cross *x = j->state;
    if (x->mapped)
        j->s->unmap(&x->r);
}

const wx_kernel jit_cross_kernel = {.state_size = sizeof(cross), .step = JIT_OPS_PER_STEP, .setup = cross_setup,
                                    .ops = cross_ops, .verify = cross_verify, .teardown = cross_teardown,
                                    .victim_prepare = executing_prepare, .victim_step = executing_step};
