/* harness.c - the scenario-facing API (scenario.h): registration, sweeps,
 * and the one body every measured case runs (wx_case_run). */
#define _GNU_SOURCE 1
#include "harness.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETTLE_WINDOW_NS 2000000ull     /* victims must have held their CPU for this long ... */
#define SETTLE_MAX_WAIT_NS 50000000ull /* ... waiting at most this long, before a timed loop */
#define SHORT_MIN_TIME 0.002            /* WX_K_SHORT: at least this, ... */
#define SHORT_MIN_TIME_VICTIMS 0.01     /* ... and this with victims (several time slices) */
#define MEASURING_MIN_WINDOW_NS 10000000ull /* the measuring thread's share is judged over loops this long */
#define SIZING_NS 1000000ull            /* WX_K_SIZED_BATCH: untimed ops that size the batch ... */
#define SIZED_SHARE 0.2                 /* ... to this share of the case's min time */

/* ------------------------------------------------------------------------
 * The registry
 * --------------------------------------------------------------------- */

static wx_run g_run;
static wx_entry *g_entries;
static size_t g_count, g_cap;

void wx_registry_reset(const wx_run *run)
{
    for (size_t i = 0; i < g_count; i++)
        free(g_entries[i].unsupported);
    g_count = 0;
    g_run = *run;
}

const wx_run *wx_registry_run(void)
{
    return &g_run;
}

size_t wx_registry_count(void)
{
    return g_count;
}

wx_entry *wx_registry_at(size_t i)
{
    return &g_entries[i];
}

static wx_entry *new_entry(const wx_case *c)
{
    if (g_count == g_cap) {
        size_t cap = g_cap ? g_cap * 2 : 64;
        wx_entry *e = realloc(g_entries, cap * sizeof *e);
        if (!e) {
            fprintf(stderr, "wxbench: out of memory registering cases\n");
            exit(1);
        }
        g_entries = e;
        g_cap = cap;
    }
    wx_entry *e = &g_entries[g_count++];
    memset(e, 0, sizeof *e);
    e->c = *c;
    if (e->c.threads < 1)
        e->c.threads = 1;
    if (e->c.batch < 1)
        e->c.batch = 1;
    if (!e->c.variant)
        e->c.variant = "";
    e->core_class = "any";
    return e;
}

wx_entry *wx_registry_add_copy(const wx_entry *src)
{
    wx_entry copy = *src;
    wx_entry *e = new_entry(&copy.c);
    *e = copy;
    if (src->unsupported)
        e->unsupported = strdup(src->unsupported);
    return e;
}

void wx_add(const wx_case *c, const wx_kernel *k)
{
    wx_entry *e = new_entry(c);
    e->k = k;
    if (e->c.min_time <= 0 && (k->flags & WX_K_SHORT)) {
        double floor = e->c.victims > 0 ? SHORT_MIN_TIME_VICTIMS : SHORT_MIN_TIME;
        e->c.min_time = g_run.min_time / 4 > floor ? g_run.min_time / 4 : floor;
    }
}

void wx_add_unsupported(const wx_case *c, const char *reason)
{
    wx_entry *e = new_entry(c);
    e->unsupported = strdup(reason && reason[0] ? reason : "unsupported (no reason given)");
}

void wx_add_native(const wx_case *c)
{
    wx_entry *e = new_entry(c);
    e->native = 1;
}

void wx_add_product(const wx_case *base, const wx_kernel *k, wx_axis sizes, wx_axis victims, wx_axis threads,
                    wx_axis batches, int page_aligned)
{
    const size_t ns = sizes.n ? sizes.n : 1, nv = victims.n ? victims.n : 1;
    const size_t nt = threads.n ? threads.n : 1, nb = batches.n ? batches.n : 1;
    for (size_t a = 0; a < ns; a++)
        for (size_t b = 0; b < nv; b++)
            for (size_t t = 0; t < nt; t++)
                for (size_t d = 0; d < nb; d++) {
                    wx_case c = *base;
                    if (sizes.n)
                        c.size_bytes = sizes.v[a];
                    if (victims.n)
                        c.victims = (int)victims.v[b];
                    if (threads.n)
                        c.threads = (int)threads.v[t];
                    if (batches.n)
                        c.batch = (int)batches.v[d];
                    if (page_aligned && g_run.page_size > 0 && c.size_bytes % (uint64_t)g_run.page_size != 0)
                        continue; /* not a whole number of pages here (16 KiB pages) */
                    wx_add(&c, k);
                }
}

wx_axis wx_victim_axis(const wx_run *run, uint64_t *buf)
{
    int counts[16];
    int n = wx_victim_counts(run->ncpu, run->quick, counts, 16);
    for (int i = 0; i < n; i++)
        buf[i] = (uint64_t)counts[i];
    return (wx_axis){buf, (size_t)n};
}

wx_axis wx_thread_axis(const wx_run *run, uint64_t *buf)
{
    const uint64_t top = 2 * (uint64_t)(run->ncpu > 0 ? run->ncpu : 1);
    size_t n = 0;
    if (run->quick) {
        buf[n++] = 1;
        if (top > 1)
            buf[n++] = top;
    } else {
        for (uint64_t t = 1; t <= top && n < 15; t = t < 4 ? t + 1 : t * 2)
            buf[n++] = t;
        if (buf[n - 1] != top)
            buf[n++] = top;
    }
    return (wx_axis){buf, n};
}

int wx_job_errno(wx_job *j, const char *what, int err)
{
    wx_why_errno(j->why, sizeof j->why, what, err);
    return -1;
}

int wx_job_fail(wx_job *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof j->why, fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------------------
 * Running a case
 * --------------------------------------------------------------------- */

void wx_entry_note_cpu(wx_entry *e)
{
    if (!e || strcmp(e->core_class, "any") == 0)
        return;
    int cpu = wx_current_cpu();
    if (cpu >= 0 && cpu < 64)
        e->cpus_seen |= 1ull << cpu;
    else
        e->cpu_unknown = 1;
}

/* What the victims' callbacks see: the kernel's, with the job and each
 * victim's own bytes. */
typedef struct victim_ctx {
    wx_job *j;
    const wx_kernel *k;
    size_t stride;            /* bytes per victim: victim_size rounded up to 128 (a line of its own) */
    unsigned char *mine;      /* victims * stride bytes */
    uint64_t done[WX_VICTIMS_MAX * 16]; /* steps (one line per victim), for the victims_stall injection */
} victim_ctx;

static int victim_prepare(void *arg, int k, char *why, size_t len)
{
    victim_ctx *v = arg;
    if (!v->k->victim_prepare)
        return 0;
    return v->k->victim_prepare(v->j, k, v->mine + (size_t)k * v->stride, why, len);
}

static int victim_step(void *arg, int k, char *why, size_t len)
{
    victim_ctx *v = arg;
    if (wx_injected(WX_INJ_VICTIMS_STALL) && v->done[k * 16] >= 1)
        return WX_STEP_IDLE; /* test: a victim that stopped running */
    int r = v->k->victim_step ? v->k->victim_step(v->j, k, v->mine + (size_t)k * v->stride, why, len)
                              : WX_STEP_DONE;
    if (wx_injected(WX_INJ_VICTIMS_STALL) && r == WX_STEP_DONE)
        v->done[k * 16]++;
    return r;
}

static wx_barrier g_barrier = WX_BARRIER_INITIALIZER;

static void *zalloc(size_t n)
{
    void *p = NULL;
    if (n == 0)
        return NULL;
    if (posix_memalign(&p, 128, (n + 127) / 128 * 128) != 0)
        return NULL;
    memset(p, 0, n);
    return p;
}

/* The loop a pass of a case runs in: Google Benchmark's (the measured
 * pass) or a plain count of ops (the untimed warm-up pass). */
typedef struct loop {
    wxgb_state *st;            /* Google Benchmark's state; NULL in the warm-up */
    uint64_t left;             /* warm-up: ops still to run */
    int failed;                /* warm-up: it failed ... */
    wx_status status;          /* ... with this status ... */
    char why[WX_REASON_LEN + 64]; /* ... and this reason */
} loop;

static int keep_running(loop *l, uint64_t n)
{
    if (l->st)
        return wxgb_keep_running(l->st, n);
    if (l->failed || l->left < n)
        return 0;
    l->left -= n;
    return 1;
}

/* End the measurement of this thread: the message to Google Benchmark
 * (first one wins), the status to the row, and the timed loop drained so
 * that every thread of the case reaches Google Benchmark's stop barrier. */
static void fail(loop *l, wx_entry *e, wx_status status, const char *why, int drain)
{
    char msg[WX_REASON_LEN + 64];
    snprintf(msg, sizeof msg, "%s", why && why[0] ? why : "failed without a reason");
    if (!l->st) {
        if (!l->failed) {
            l->failed = 1;
            l->status = status;
            snprintf(l->why, sizeof l->why, "%s", msg);
        }
        return;
    }
    if (e->status == WX_OK)
        e->status = status;
    wxgb_fail(l->st, msg);
    if (drain)
        while (wxgb_keep_running(l->st, 1))
            ;
}

/* The case's min time: its own, else the run's. */
static double case_min_time(const wx_entry *e)
{
    return e->c.min_time > 0 ? e->c.min_time : g_run.min_time;
}

/* WX_K_SIZED_BATCH: in the first measured pass of a single-thread case
 * without a fixed op count, run ops untimed for about SIZING_NS (after the
 * set-up, victims settled) and keep the batch that lasts about SIZED_SHARE
 * of the min time, a multiple of the kernel's step; every pass of the case
 * then runs that batch. Returns 0, or -1 with j->why when an op failed. */
static int size_batch(wx_entry *e, wx_job *j, const wx_kernel *k, int nthreads)
{
    if (!(k->flags & WX_K_SIZED_BATCH) || nthreads != 1 || e->c.iterations > 0)
        return 0;
    if (e->sized_step == 0) {
        uint64_t n = 0;
        const uint64_t t0 = wx_now_ns();
        uint64_t t = t0;
        while (t - t0 < SIZING_NS) {
            if (k->ops(j, j->step) != 0)
                return -1;
            n += j->step;
            t = wx_now_ns();
        }
        j->timed_ns = 0;
        const double per_op = (double)(t - t0) / (double)n;
        const double want = SIZED_SHARE * case_min_time(e) * 1e9 / (per_op > 0 ? per_op : 1);
        const uint64_t batches = want > (double)j->step ? (uint64_t)(want / (double)j->step) : 1;
        e->sized_step = batches * j->step;
    }
    j->step = e->sized_step;
    return 0;
}

/* One pass of e's kernel on this thread: the whole sequence of scenario.h. */
static void run_pass(loop *l, wx_entry *e, int repetition)
{
    wxgb_state *st = l->st;
    const wx_kernel *k = e->k;
    const int t = st ? wxgb_thread_index(st) : 0, nthreads = st ? wxgb_threads(st) : 1;
    wx_job j;
    memset(&j, 0, sizeof j);
    j.warmup = st == NULL;
    j.s = (k->flags & WX_K_BASELINE) ? wx_baseline_strategy() : g_run.strategy;
    j.c = &e->c;
    j.run = &g_run;
    j.thread = t;
    j.repetition = repetition;
    j.core_class = e->core_class;
    j.step = k->step ? k->step : 1;
    if (nthreads > 1 && t > 0) {
        char why[WX_REASON_LEN];
        (void)wx_pin_thread(t, why, sizeof why); /* unpinned where impossible (macOS) */
    }

    int rc = WX_OK;
    if ((k->flags & WX_K_BASELINE) && !wx_baseline_available(j.why, sizeof j.why))
        rc = WX_UNSUPPORTED;
    j.state = zalloc(k->state_size);
    if (rc == WX_OK && k->state_size && !j.state)
        rc = WX_FAILED, snprintf(j.why, sizeof j.why, "out of memory for the case's state");

    /* Process victims are forked before anything of the case exists, so
     * that they share none of its pages. */
    victim_ctx vc;
    memset(&vc, 0, sizeof vc);
    vc.j = &j;
    vc.k = k;
    wx_victims *v = NULL;
    const int victims = t == 0 ? e->c.victims : 0;
    if (rc == WX_OK && victims > 0) {
        vc.stride = (k->victim_size + 127) / 128 * 128;
        vc.mine = zalloc((size_t)victims * (vc.stride ? vc.stride : 128));
        if (!vc.mine)
            rc = WX_FAILED, snprintf(j.why, sizeof j.why, "out of memory for the victims' state");
    }
    if (rc == WX_OK && victims > 0 && (k->flags & WX_K_VICTIM_PROCESSES)) {
        v = wx_victims_start(WX_VICTIM_PROCESSES, victims, victim_prepare, victim_step, &vc, j.why, sizeof j.why);
        if (!v)
            rc = WX_FAILED;
    }

    if (t == 0) {
        e->shared = zalloc(k->shared_size);
        e->shared_rc = rc;
        snprintf(e->shared_why, sizeof e->shared_why, "%s", j.why);
        if (e->shared_rc == WX_OK && k->shared_size && !e->shared)
            e->shared_rc = WX_FAILED, snprintf(e->shared_why, sizeof e->shared_why, "out of memory");
        j.shared = e->shared;
        if (e->shared_rc == WX_OK && k->shared_setup) {
            e->shared_rc = k->shared_setup(&j);
            snprintf(e->shared_why, sizeof e->shared_why, "%s", j.why);
        }
    }
    if (nthreads > 1)
        wx_barrier_wait(&g_barrier, (unsigned)nthreads); /* the shared state exists (or says why not) */
    j.shared = e->shared;
    if (rc == WX_OK && e->shared_rc != WX_OK) {
        rc = e->shared_rc;
        snprintf(j.why, sizeof j.why, "%s", e->shared_why);
    }
    int setup_called = 0;
    if (rc == WX_OK && k->setup) {
        setup_called = 1;
        rc = k->setup(&j);
    }
    if (rc == WX_OK && victims > 0 && !(k->flags & WX_K_VICTIM_PROCESSES)) {
        v = wx_victims_start(WX_VICTIM_THREADS, victims, victim_prepare, victim_step, &vc, j.why, sizeof j.why);
        if (!v)
            rc = WX_FAILED;
    }

    if (rc != WX_OK) {
        fail(l, e, rc == WX_UNSUPPORTED ? WX_UNSUPPORTED : WX_FAILED, j.why, 1);
    } else {
        /* Start timing at a moment the victims hold their CPUs (bounded wait). */
        int sized = st ? size_batch(e, &j, k, nthreads) : 0;
        (void)wx_victims_settle(v, SETTLE_WINDOW_NS, SETTLE_MAX_WAIT_NS);
        wx_counters counters;
        if (t == 0)
            wx_entry_note_cpu(e);
        wx_counters_begin(&counters);
        wx_victims_mark before;
        wx_victims_mark_now(v, &before);
        const uint64_t cpu0 = wx_thread_cpu_ns(), wall0 = wx_now_ns();
        const int64_t wait0 = wx_thread_wait_ns();
        const int manual = (k->flags & WX_K_MANUAL_TIME) != 0;
        int err = sized != 0;
        while (!err && keep_running(l, j.step)) {
            if (k->ops(&j, j.step) != 0) {
                err = 1;
                break;
            }
            if (manual && st)
                wxgb_set_batch_time(st, j.timed_ns / 1e9);
            j.timed_ns = 0;
        }
        const uint64_t cpu1 = wx_thread_cpu_ns(), wall1 = wx_now_ns();
        const int64_t wait1 = wx_thread_wait_ns();
        char vwhy[WX_REASON_LEN] = "";
        /* (the warm-up pass only warms: whether its victims ran does not matter) */
        /* idle: 1 when other work spoiled the loop (a victim or the
         * measuring thread kept off its CPU: measured again in a fresh
         * process, child.c), -1 when a victim failed or made no progress. */
        int idle = err || !st ? 0 : wx_victims_check(v, &before, (uint64_t)(e->c.min_time * 1e9), vwhy, sizeof vwhy);
        /* The measuring thread itself, in a single-thread case with victims:
         * on a CPU for the loop, or starved - waiting for one (Linux counts
         * that time; elsewhere it is what was not CPU time), e.g. behind
         * victims that outranked it on Apple's E-cores (they now share its
         * QoS class, threads.c). A row with victims claims the op ran beside
         * them; a starved one measured the waiting. Cases without victims
         * are not judged: there only other programs compete, which
         * meta.json's busy warning and the spread over repetitions report,
         * and with more threads than CPUs sharing is the question asked.
         * Loops shorter than the case's min time (Google Benchmark's
         * estimating runs) or than a few scheduler time slices (one
         * preemption would decide) are not judged either, nor kernels whose
         * ops sleep by design (j.sleeps: where only wall minus CPU time is
         * known, sleeping would look like waiting). */
        if (!err && st && !idle && nthreads == 1 && e->c.victims > 0 && !j.sleeps) {
            const double min_time = e->c.iterations > 0 ? 0 : case_min_time(e);
            const uint64_t window = (uint64_t)(min_time * 1e9) > MEASURING_MIN_WINDOW_NS ? (uint64_t)(min_time * 1e9)
                                                                                         : MEASURING_MIN_WINDOW_NS;
            idle = wx_measuring_check(cpu1 - cpu0, wait0 >= 0 && wait1 >= wait0 ? wait1 - wait0 : -1, wall1 - wall0,
                                      window, vwhy, sizeof vwhy) != 0;
        }
        if (!err && st && !idle && e->c.victims > 0 &&
            (wx_injected(WX_INJ_INTERFERE) || (wx_injected(WX_INJ_INTERFERE_ONCE) && g_run.attempt == 1))) {
            idle = 1; /* test: the machine's other work took a victim's CPU */
            snprintf(vwhy, sizeof vwhy, "injected interference (WXBENCH_TEST_INJECT): victim 0 lost its CPU");
        }
        double tlb, cycles;
        wx_counters_end(&counters, &tlb, &cycles);
        if (t == 0)
            wx_entry_note_cpu(e);
        if (cycles >= 0 && st)
            wxgb_set_counter(st, "cycles_per_op", cycles);
        if (tlb >= 0 && t == 0 && counters.tlb_ok && st)
            wxgb_set_counter(st, "tlb_per_op", tlb); /* one thread counts the machine-wide total */
        if (err) {
            fail(l, e, WX_FAILED, j.why, 1);
        } else if (idle) {
            fail(l, e, idle > 0 ? WX_INTERFERED : WX_FAILED, vwhy, 0);
        } else {
            char swhy[WX_REASON_LEN] = "";
            if (wx_victims_stop(v, swhy, sizeof swhy) != 0)
                fail(l, e, WX_FAILED, swhy, 0);
            else if (k->verify && k->verify(&j) != 0)
                fail(l, e, WX_FAILED, j.why, 0);
            v = NULL;
        }
    }
    char ignored[WX_REASON_LEN];
    wx_victims_stop(v, ignored, sizeof ignored);
    if (setup_called && k->teardown)
        k->teardown(&j);
    if (nthreads > 1)
        wx_barrier_wait(&g_barrier, (unsigned)nthreads); /* every thread is done with the shared state */
    if (t == 0) {
        if (k->shared_teardown && e->shared_rc == WX_OK && k->shared_setup)
            k->shared_teardown(&j);
        free(e->shared);
        e->shared = NULL;
    }
    free(j.state);
    free(vc.mine);
}

void wx_case_run(wxgb_state *st, wx_entry *e, int repetition)
{
    /* A case with a fixed op count has no estimating runs of Google
     * Benchmark before the measured one: it gets one untimed pass first
     * (same set-up, ops and checks, nothing recorded), so that its measured
     * pass does not pay for cold caches, page faults and lazy binding. */
    if (e->c.iterations > 0 && e->c.threads == 1) {
        loop warm = {.st = NULL, .left = e->c.iterations};
        run_pass(&warm, e, repetition);
        if (warm.failed) {
            char why[WX_REASON_LEN + 128];
            snprintf(why, sizeof why, "warm-up: %s", warm.why);
            loop l = {.st = st};
            fail(&l, e, warm.status, why, 1);
            return;
        }
    }
    loop l = {.st = st};
    run_pass(&l, e, repetition);
}
