/* thread_contention.c - what W^X costs when many threads JIT at once:
 * 1 .. 2 x ncpu worker threads, each running the verified patch cycle
 * (begin_write, write a stub, end_write, flush, call, check) as fast as it
 * can, pinned by thread index (wrapping when there are more threads than CPUs).
 *
 *   private  each thread patches its own one-page region
 *   shared   one region for every thread (a JIT with one code cache), each
 *            thread its own 128-byte stub slot, a mutex around the write
 *            window (begin_write .. end_write) as a JIT serialises writers
 *
 * op = one verified patch by one thread. ns_per_op is wall time per op per
 * thread (Google Benchmark Threads() with UseRealTime), so the throughput of
 * all threads together is threads / ns_per_op.
 *
 * What the mutex must cover in `shared` depends on whom the switch affects:
 *   - per-thread switches (pkey, mapjit) and none (rwx, dualmap): a thread's
 *     writable window changes nothing for the others, which keep calling
 *     their own slots; the mutex covers the write window only, and the flush,
 *     the call and the check run outside it.
 *   - process-wide switches (mprotect; the test build's test_hook): while
 *     one thread holds the region writable, no thread may execute from any
 *     slot of it (the fetch would fault), so the mutex covers the whole
 *     cycle, the call included, and the threads run one at a time. That
 *     serialisation is the cost the scenario shows.
 * In `private`, mprotect changes only the calling thread's region, but the
 * change is to the one address space, so the other threads' CPUs take TLB
 * shootdowns (counted in tlb_shootdowns_per_op on x86 Linux).
 */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../bench/app/scenario.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const char *const tc_variants[] = {"private", "shared", NULL};

#define SLOT 128u            /* bytes per thread's stub in the shared region (a cache line or two) */
#define FIRST_VALUE 7u
#define OPS_PER_STEP 16u

/* The shared variant's one region (thread 0 creates it before the loop and
 * destroys it after every thread has left the loop). */
typedef struct tc_shared {
    pthread_mutex_t lock;     /* the write window (and the call, for process-wide switches) */
    wx_region r;              /* the code cache */
} tc_shared;

/* One thread's state. */
typedef struct tc_state {
    wx_region own;            /* private: its region */
    int mapped;               /* own is mapped */
    wx_region *r;             /* the region it patches */
    size_t off;               /* its slot's offset */
    pthread_mutex_t *lock;    /* shared: the mutex; private: NULL */
    int hold_call;            /* the mutex covers the call too */
    uint32_t tag, n;          /* values unique per thread: tag | counter */
    unsigned char stage[SLOT];/* the new stub, for write_code strategies */
} tc_state;

/* Map the shared region: a slot per thread, each with a stub returning
 * FIRST_VALUE, verified. */
static int shared_setup(wx_job *j)
{
    tc_shared *g = j->shared;
    const wx_strategy *s = j->s;
    const int threads = j->c->threads;
    size_t page = (size_t)j->run->page_size;
    size_t size = ((size_t)threads * SLOT + page - 1) / page * page;
    if (wx_region_prepare(s, &g->r, size, FIRST_VALUE, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    unsigned char img[SLOT];
    memset(img, 0, sizeof img);
    wx_emit_stub(img, wx_stub_size(), FIRST_VALUE);
    for (int t = 1; t < threads; t++) {
        int e = wx_write_code(s, &g->r, (size_t)t * SLOT, img, wx_stub_size());
        if (e != 0) {
            s->unmap(&g->r);
            return wx_job_errno(j, s->write_code ? "write_code" : "begin_write/end_write", e), WX_FAILED;
        }
    }
    wx_icache_flush(g->r.write, g->r.exec, g->r.size);
    for (int t = 0; t < threads; t++) {
        uint32_t got = wx_stub_at((unsigned char *)g->r.exec + (size_t)t * SLOT)();
        if (got != FIRST_VALUE) {
            s->unmap(&g->r);
            return wx_job_fail(j, "verification failed: slot %d returned %u, expected %u", t, got, FIRST_VALUE),
                   WX_FAILED;
        }
    }
    pthread_mutex_init(&g->lock, NULL);
    return WX_OK;
}

static void shared_teardown(wx_job *j)
{
    tc_shared *g = j->shared;
    j->s->unmap(&g->r);
    pthread_mutex_destroy(&g->lock);
}

static int private_setup(wx_job *j)
{
    tc_state *x = j->state;
    if (wx_region_prepare(j->s, &x->own, (size_t)j->run->page_size, FIRST_VALUE, j->why, sizeof j->why) != 0) {
        char why[WX_REASON_LEN];
        snprintf(why, sizeof why, "%s", j->why);
        return wx_job_fail(j, "setup (thread %d): %.200s", j->thread, why), WX_FAILED;
    }
    x->mapped = 1;
    x->r = &x->own;
    x->tag = (uint32_t)(j->thread + 1) << 24;
    return WX_OK;
}

static int slot_setup(wx_job *j)
{
    tc_state *x = j->state;
    tc_shared *g = j->shared;
    x->r = &g->r;
    x->off = (size_t)j->thread * SLOT;
    x->lock = &g->lock;
    x->hold_call = !(j->s->flags & (WX_PER_THREAD | WX_NO_SWITCH));
    x->tag = (uint32_t)(j->thread + 1) << 24;
    if (j->s->flags & WX_PER_THREAD) {
        int e = j->s->end_write(x->r); /* this thread's own view: executable */
        if (e != 0)
            return wx_job_errno(j, "end_write in a new thread", e), WX_FAILED;
    }
    return WX_OK;
}

static void private_teardown(wx_job *j)
{
    tc_state *x = j->state;
    if (x->mapped)
        j->s->unmap(&x->own);
}

/* n verified patches of this thread's stub. */
static int tc_ops(wx_job *j, uint64_t n)
{
    tc_state *x = j->state;
    const wx_strategy *s = j->s;
    const size_t stub = wx_stub_size();
    unsigned char *w = (unsigned char *)x->r->write + x->off, *xc = (unsigned char *)x->r->exec + x->off;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t v = x->tag | (++x->n & 0xffffffu), got = 0;
        if (x->lock)
            pthread_mutex_lock(x->lock);
        int err;
        void *p = wx_code_begin(s, x->r, x->off, x->stage, &err);
        if (err == 0) {
            wx_emit_stub(p, stub, v);
            err = wx_code_end(s, x->r, x->off, x->stage, stub);
        }
        if (x->lock && !x->hold_call)
            pthread_mutex_unlock(x->lock);
        if (err == 0) {
            wx_icache_flush(w, xc, stub);
            got = wx_stub_at(xc)();
        }
        if (x->lock && x->hold_call)
            pthread_mutex_unlock(x->lock);
        if (err != 0)
            return wx_job_fail(j, "thread %d: %s failed: %s (errno %d)", j->thread,
                               s->write_code ? "write_code" : "begin_write/end_write", strerror(err), err);
        if (got != v)
            return wx_job_fail(j, "verification failed: thread %d's patched stub returned %#x, expected %#x",
                               j->thread, got, v);
    }
    return 0;
}

static const wx_kernel k_private = {.state_size = sizeof(tc_state), .step = OPS_PER_STEP, .flags = WX_K_SHORT,
                                    .setup = private_setup, .ops = tc_ops, .teardown = private_teardown};
static const wx_kernel k_shared = {.state_size = sizeof(tc_state), .shared_size = sizeof(tc_shared),
                                   .step = OPS_PER_STEP, .flags = WX_K_SHORT, .shared_setup = shared_setup,
                                   .shared_teardown = shared_teardown, .setup = slot_setup, .ops = tc_ops};

static void tc_register(const wx_run *run)
{
    uint64_t threads[16], sizes[16];
    const wx_axis thread_axis = wx_thread_axis(run, threads);
    const uint64_t page = (uint64_t)run->page_size;
    wx_case c = {.variant = "private", .size_bytes = page}; /* the region patched */
    wx_add_product(&c, &k_private, WX_AXIS_NONE, WX_AXIS_NONE, thread_axis, WX_AXIS_NONE, 0);
    /* shared: the region is a slot per thread, rounded up to whole pages */
    for (size_t i = 0; i < thread_axis.n; i++) {
        sizes[i] = (threads[i] * SLOT + page - 1) / page * page;
        c = (wx_case){.variant = "shared", .threads = (int)threads[i], .size_bytes = sizes[i]};
        wx_add(&c, &k_shared);
    }
}

const wx_scenario wx_scenario_thread_contention = {
    .name = "thread_contention", .variants = tc_variants, .register_cases = tc_register,
    .question = "what does W^X cost when many threads JIT at once (private regions or one shared code cache)?",
    .op = "one verified patch (begin_write, write, end_write, flush, call, check) by one thread; "
          "ns_per_op is per thread, throughput = threads / ns_per_op",
};
