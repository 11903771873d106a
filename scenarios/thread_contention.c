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
 *   - process-wide switches (mprotect): while one thread holds the region
 *     writable, no thread may execute from any slot of it (the fetch would
 *     fault), so the mutex covers the whole cycle, the call included, and
 *     the threads run one at a time. That serialisation is the cost the
 *     scenario shows.
 * A strategy with a write_code hook (mapjit_callback; the test build's
 * test_hook) is writable only inside that call: each thread builds its stub
 * aside and the write window is one write_code call copying it into its
 * slot; the mutex covers that call (per-thread: mapjit_callback) or the call
 * and the run of the code (process-wide: test_hook, which is mprotect).
 * In `private`, mprotect changes only the calling thread's region, but the
 * change is to the one address space, so the other threads' CPUs take TLB
 * shootdowns (counted in tlb_shootdowns_per_op on x86 Linux).
 */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../bench/threads.h"
#include "../bench/wx.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { V_PRIVATE, V_SHARED };
static const char *const tc_variants[] = {"private", "shared", NULL};

#define SLOT 128u            /* bytes per thread's stub in the shared region (a cache line or two) */
#define FIRST_VALUE 7u
#define OPS_PER_BATCH 16u

/* The shared variant's one region, created by thread 0 before the loop and
 * destroyed by it after every thread has left the loop. */
static struct {
    wx_barrier barrier;       /* setup done / loop done */
    pthread_mutex_t lock;     /* the write window (and the call, for process-wide switches) */
    wx_region r;              /* the code cache */
    int ok;                   /* thread 0's setup succeeded */
    char why[WX_REASON_LEN];  /* why it did not */
} g_shared = {WX_BARRIER_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, {0}, 0, ""};

/* Leave the benchmark after a failure before the loop: Google Benchmark
 * counts every thread through its start and stop barriers, so the thread
 * still enters (and at once leaves) the loop. */
static void bail(wx_bench *b, const char *why)
{
    wx_bench_fail(b, "%s", why);
    while (wx_bench_keep_running(b, 1))
        ;
}

/* Map the shared region: a slot per thread, each with a stub returning
 * FIRST_VALUE, verified. 0 or -1 with why[]. */
static int shared_prepare(const wx_strategy *s, int threads, char *why, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = ((size_t)threads * SLOT + page - 1) / page * page;
    wx_region *r = &g_shared.r;
    if (wx_region_prepare(s, r, size, FIRST_VALUE, why, len) != 0)
        return -1;
    int e;
    if (s->write_code) {
        /* writable only inside write_code: one call per slot */
        unsigned char code[SLOT];
        wx_emit_stub(code, wx_stub_size(), FIRST_VALUE);
        for (int t = 0; t < threads; t++)
            if ((e = s->write_code(r, (size_t)t * SLOT, code, wx_stub_size())) != 0) {
                s->unmap(r);
                return wx_why_errno(why, len, "write_code", e), -1;
            }
    } else {
        if ((e = s->begin_write(r)) != 0) {
            s->unmap(r);
            return wx_why_errno(why, len, "begin_write", e), -1;
        }
        for (int t = 0; t < threads; t++)
            wx_emit_stub((unsigned char *)r->write + (size_t)t * SLOT, wx_stub_size(), FIRST_VALUE);
        if ((e = s->end_write(r)) != 0) {
            s->unmap(r);
            return wx_why_errno(why, len, "end_write", e), -1;
        }
    }
    wx_icache_flush(r->write, r->exec, r->size);
    for (int t = 0; t < threads; t++) {
        uint32_t got = wx_stub_at((unsigned char *)r->exec + (size_t)t * SLOT)();
        if (got != FIRST_VALUE) {
            snprintf(why, len, "verification failed: slot %d returned %u, expected %u", t, got, FIRST_VALUE);
            s->unmap(r);
            return -1;
        }
    }
    return 0;
}

/* patch_loop for a strategy writable only inside write_code: the stub is
 * built aside and copied into the thread's slot by one write_code call, the
 * write window (skip_write: the same call copying nothing). */
static void patch_loop_hook(wx_bench *b, const wx_strategy *s, wx_region *r, size_t off, pthread_mutex_t *lock,
                            int hold_call)
{
    const size_t stub = wx_stub_size();
    const size_t len = wx_test_inject("skip_write") ? 0 : stub;
    const uint32_t tag = (uint32_t)(wx_bench_thread_index(b) + 1) << 24; /* values unique per thread */
    unsigned char *w = (unsigned char *)r->write + off, *x = (unsigned char *)r->exec + off;
    unsigned char code[SLOT];
    uint32_t n = 0, v = 0, got = 0;
    int err = 0;
    wx_bench_counters_begin(b);
    while (wx_bench_keep_running(b, OPS_PER_BATCH)) {
        for (unsigned i = 0; i < OPS_PER_BATCH; i++) {
            v = tag | (++n & 0xffffffu);
            wx_emit_stub(code, stub, v);
            if (lock)
                pthread_mutex_lock(lock);
            err = s->write_code(r, off, code, len);
            if (lock && !hold_call)
                pthread_mutex_unlock(lock);
            if (err == 0) {
                wx_icache_flush(w, x, stub);
                got = wx_stub_at(x)();
            }
            if (lock && hold_call)
                pthread_mutex_unlock(lock);
            if (err != 0 || got != v)
                break;
        }
        if (err != 0)
            wx_bench_fail(b, "thread %d: write_code failed: %s (errno %d)", wx_bench_thread_index(b), strerror(err),
                          err);
        else if (got != v)
            wx_bench_fail(b, "verification failed: thread %d's patched stub returned %#x, expected %#x",
                          wx_bench_thread_index(b), got, v);
    }
    wx_bench_counters_end(b);
}

/* The timed loop of one thread over its stub at offset off of r. lock is
 * NULL (private), or the mutex held around the write window (hold_call = 0)
 * or the whole cycle (hold_call = 1). A strategy writable only inside
 * write_code runs patch_loop_hook instead. */
static void patch_loop(wx_bench *b, const wx_strategy *s, wx_region *r, size_t off, pthread_mutex_t *lock,
                       int hold_call)
{
    if (s->write_code) {
        patch_loop_hook(b, s, r, off, lock, hold_call);
        return;
    }
    const size_t stub = wx_stub_size();
    const int skip_write = wx_test_inject("skip_write");
    const uint32_t tag = (uint32_t)(wx_bench_thread_index(b) + 1) << 24; /* values unique per thread */
    unsigned char *w = (unsigned char *)r->write + off, *x = (unsigned char *)r->exec + off;
    uint32_t n = 0, v = 0, got = 0;
    int err = 0;
    wx_bench_counters_begin(b);
    while (wx_bench_keep_running(b, OPS_PER_BATCH)) {
        for (unsigned i = 0; i < OPS_PER_BATCH; i++) {
            v = tag | (++n & 0xffffffu);
            if (lock)
                pthread_mutex_lock(lock);
            err = s->begin_write(r);
            if (err == 0) {
                if (!skip_write)
                    wx_emit_stub(w, stub, v);
                err = s->end_write(r);
            }
            if (lock && !hold_call)
                pthread_mutex_unlock(lock);
            if (err == 0) {
                wx_icache_flush(w, x, stub);
                got = wx_stub_at(x)();
            }
            if (lock && hold_call)
                pthread_mutex_unlock(lock);
            if (err != 0 || got != v)
                break;
        }
        /* After a failure the next wx_bench_keep_running returns 0 and takes
         * this thread through Google Benchmark's stop barrier. */
        if (err != 0)
            wx_bench_fail(b, "thread %d: begin_write/end_write failed: %s (errno %d)", wx_bench_thread_index(b),
                          strerror(err), err);
        else if (got != v)
            wx_bench_fail(b, "verification failed: thread %d's patched stub returned %#x, expected %#x",
                          wx_bench_thread_index(b), got, v);
    }
    wx_bench_counters_end(b);
}

static void body_private(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    char why[WX_REASON_LEN] = "";
    int t = wx_bench_thread_index(b);
    (void)c;
    (void)wx_pin_thread(t, why, sizeof why); /* unpinned where impossible (macOS) */
    wx_region r;
    if (wx_region_prepare(s, &r, (size_t)sysconf(_SC_PAGESIZE), FIRST_VALUE, why, sizeof why) != 0) {
        char msg[WX_REASON_LEN + 32];
        snprintf(msg, sizeof msg, "setup (thread %d): %s", t, why);
        bail(b, msg);
        return;
    }
    patch_loop(b, s, &r, 0, NULL, 0);
    s->unmap(&r);
}

static void body_shared(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    char why[WX_REASON_LEN] = "";
    int t = wx_bench_thread_index(b);
    unsigned n = (unsigned)wx_bench_threads(b);
    (void)c;
    (void)wx_pin_thread(t, why, sizeof why);
    if (t == 0) {
        g_shared.why[0] = 0;
        g_shared.ok = shared_prepare(s, (int)n, g_shared.why, sizeof g_shared.why) == 0;
    }
    wx_barrier_wait(&g_shared.barrier, n); /* the region exists (or g_shared.why says why not) */
    if (!g_shared.ok) {
        char msg[WX_REASON_LEN + 16];
        snprintf(msg, sizeof msg, "setup: %s", g_shared.why);
        bail(b, msg);
    } else {
        int e = 0;
        if (s->flags & WX_PER_THREAD)
            e = s->end_write(&g_shared.r); /* this thread's own view: executable */
        if (e != 0) {
            wx_why_errno(why, sizeof why, "end_write in a new thread", e);
            bail(b, why);
        } else {
            int hold_call = !(s->flags & (WX_PER_THREAD | WX_NO_SWITCH));
            patch_loop(b, s, &g_shared.r, (size_t)t * SLOT, &g_shared.lock, hold_call);
        }
    }
    wx_barrier_wait(&g_shared.barrier, n); /* every thread is out of the region */
    if (t == 0 && g_shared.ok) {
        s->unmap(&g_shared.r);
        g_shared.ok = 0;
    }
}

static void tc_register(const wx_run *run)
{
    int top = 2 * (run->ncpu > 0 ? run->ncpu : 1);
    int counts[16], n = 0;
    if (run->quick) {
        counts[n++] = 1;
        if (top > 1)
            counts[n++] = top;
    } else {
        for (int t = 1; t <= top && n < 15; t = t < 4 ? t + 1 : t * 2)
            counts[n++] = t;
        if (counts[n - 1] != top)
            counts[n++] = top;
    }
    double min_time = run->min_time / 4;
    if (min_time < 0.002)
        min_time = 0.002;
    for (int v = 0; tc_variants[v]; v++) {
        for (int i = 0; i < n; i++) {
            uint64_t page = (uint64_t)run->page_size;
            uint64_t shared = ((uint64_t)counts[i] * SLOT + page - 1) / page * page;
            wx_case c = {
                .variant = tc_variants[v],
                .threads = counts[i],
                .size_bytes = v == V_SHARED ? shared : page, /* the region patched */
                .batch = 1,
                .min_time = min_time,
            };
            wx_add_case(&c, v == V_SHARED ? body_shared : body_private);
        }
    }
}

const wx_scenario wx_scenario_thread_contention = {
    .name = "thread_contention",
    .question = "what does W^X cost when many threads JIT at once (private regions or one shared code cache)?",
    .op = "one verified patch (begin_write, write, end_write, flush, call, check) by one thread; "
          "ns_per_op is per thread, throughput = threads / ns_per_op",
    .variants = tc_variants,
    .strategy_free = 0,
    .register_cases = tc_register,
};
