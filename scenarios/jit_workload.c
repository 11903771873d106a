/* jit_workload.c - what W^X costs a JIT that compiles functions and runs
 * them, patches inline caches, and patches code another thread is running.
 *
 *   compile            emit M functions (stubs padded to size_bytes, each
 *                      returning its own constant) into a fresh code cache
 *                      by bump allocation, `batch` functions per writable
 *                      window: begin_write, write them, end_write, flush,
 *                      call each new one once and check its value.
 *                      op = one function compiled and first run
 *   compile_baseline   the same on plain RWX memory, nothing switched
 *   ic_patch           rewrite the 8-byte constant of a stub this thread
 *                      keeps calling: begin_write, patch, end_write, flush,
 *                      call, check.          op = one verified patch + call
 *   ic_patch_baseline  the same on plain RWX memory, nothing switched
 *   cross_thread       the same patch while a second thread (victims = 1,
 *                      pinned to another CPU) calls the stub in a loop;
 *                      after each patch the patcher resynchronises that
 *                      thread's core with membarrier(SYNC_CORE), then checks
 *                      the value itself.         op = one patch, synced, verified
 *   cross_thread_nosync  the same without membarrier
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
 * cross_thread: the executing thread counts what each of its calls
 * returned, relative to the last patch the patcher had completed (patched,
 * made executable, flushed, synced, verified) before the call began; the
 * counts of each repetition go to jit_cross_thread.csv beside results.csv,
 * named by core class and repetition like the row they belong to.
 *
 * Strategies with a write_code hook (mapjit_callback; test_hook in test
 * builds) are writable only inside that call, so every window above is one
 * write_code call: compile builds the batch's functions in a private buffer
 * and copies it in with one call (one window per batch, as for the others);
 * ic_patch and cross_thread patch the constant in a private copy of the
 * stub and copy the whole stub in with one call. The op is the same; it
 * includes the copy. In cross_thread the new constant then lands by the
 * strategy's memcpy, not by the aligned stores of wx_patch_stub64, so the
 * executing thread may see a mix of two patches (counted as torn) where
 * the direct path would not. */
#define _GNU_SOURCE 1
#include "../bench/wx.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icache_ops.h" /* membarrier */

#define FUNCTIONS 4096u
#define FUNCTIONS_QUICK 256u
#define POISON 0xDEADC0DEu
#define OPS_PER_BATCH 100u
#define IC_STUB_BYTES 24u         /* 8-byte constant stub, padded to 8-byte multiple */
#define CROSS_PATCHES 10000u      /* fixed per repetition */
#define CROSS_PATCHES_QUICK 1000u
#define CORRUPT_AT 37u            /* which op a corrupt_stub test build spoils */

static const unsigned sizes[] = {64, 256, 1024};
static const int batches[] = {1, 4, 16, 64, 256};

static unsigned g_functions;      /* M for this run */
static uint32_t g_round;          /* compile rounds so far in this child */
static int g_membarrier_ok;       /* SYNC_CORE registered for this process */

/* ------------------------------------------------------------------------
 * compile
 * --------------------------------------------------------------------- */

/* The constant function `slot` of round `round` returns: unique within a
 * round, different across rounds, never POISON. */
static uint32_t fn_value(uint32_t round, uint32_t slot)
{
    return 0x10000u + (round % 100000u) * FUNCTIONS + slot;
}

/* Map a code cache for nslots functions of size bytes, fill every slot with
 * a poison stub, make it executable and read every page through the exec
 * view (no page is untouched when timing starts). s == NULL: RWX memory. */
static int cache_setup(wx_bench *b, const wx_strategy *s, wx_region *r, size_t size, size_t nslots, long page)
{
    char why[WX_REASON_LEN];
    size_t bytes = (size * nslots + (size_t)page - 1) / (size_t)page * (size_t)page;
    memset(r, 0, sizeof *r);
    int e = s ? s->map(r, bytes, why, sizeof why) : wx_baseline_map(r, bytes, why, sizeof why);
    if (e != 0) {
        if (s)
            wx_bench_fail(b, "setup: %s", why);
        else
            wx_bench_fail(b, "unsupported: baseline needs RWX memory: %s", why);
        return -1;
    }
    if (s && s->write_code) {
        /* Writable only inside write_code: the poisoned image is built
         * aside and copied in whole (which writes every page). */
        unsigned char *img = calloc(1, r->size);
        if (!img) {
            wx_bench_fail(b, "setup: out of memory for a %zu-byte code image", r->size);
            s->unmap(r);
            return -1;
        }
        for (size_t i = 0; i < nslots; i++)
            if (wx_emit_stub(img + i * size, size, POISON) != size) {
                wx_bench_fail(b, "setup: cannot emit a %zu-byte stub", size);
                free(img);
                s->unmap(r);
                return -1;
            }
        e = s->write_code(r, 0, img, r->size);
        free(img);
        if (e != 0) {
            wx_bench_fail(b, "setup: write_code: %s", strerror(e));
            s->unmap(r);
            return -1;
        }
    } else {
        if (s && (e = s->begin_write(r)) != 0) {
            wx_bench_fail(b, "setup: begin_write: %s", strerror(e));
            s->unmap(r);
            return -1;
        }
        memset(r->write, 0, r->size);
        for (size_t i = 0; i < nslots; i++)
            if (wx_emit_stub((char *)r->write + i * size, size, POISON) != size) {
                wx_bench_fail(b, "setup: cannot emit a %zu-byte stub", size);
                if (s)
                    s->unmap(r);
                else
                    wx_baseline_unmap(r);
                return -1;
            }
        if (s && (e = s->end_write(r)) != 0) {
            wx_bench_fail(b, "setup: end_write: %s", strerror(e));
            s->unmap(r);
            return -1;
        }
    }
    wx_icache_flush(r->write, r->exec, r->size);
    volatile const unsigned char *x = r->exec;
    unsigned sum = 0;
    for (size_t off = 0; off < r->size; off += (size_t)page)
        sum += x[off];
    (void)sum;
    return 0;
}

/* Call the batch functions just compiled at x (slots next..) once each and
 * check their values; returns the first slot that was wrong, or -1. */
static inline size_t run_batch(const char *x, size_t size, size_t next, int batch, uint32_t round, uint32_t *got)
{
    for (int j = 0; j < batch; j++) {
        *got = wx_stub_at((void *)(x + (size_t)j * size))();
        if (*got != fn_value(round, (uint32_t)(next + (size_t)j)))
            return next + (size_t)j;
    }
    return (size_t)-1;
}

/* The timed round: batch functions per writable window until M are
 * compiled and run. s == NULL: the baseline, nothing switched. A strategy
 * with a write_code hook gets one write_code call per batch: the batch is
 * emitted into buf (batch * size bytes) and copied in at once. */
static void compile_round(wx_bench *b, const wx_strategy *s, wx_region *r, size_t size, size_t nslots, int batch,
                          unsigned char *buf)
{
    const int skip_write = wx_test_inject("skip_write");
    const int corrupt = wx_test_inject("corrupt_stub");
    const int via_hook = s && s->write_code;
    const uint32_t round = g_round++;
    size_t next = 0, bad = (size_t)-1;
    uint32_t got = 0;
    int err = 0;
    wx_bench_counters_begin(b);
    if (via_hook) {
        while (wx_bench_keep_running(b, (uint64_t)batch)) {
            if (next + (size_t)batch > nslots) {
                err = -1;
                break;
            }
            char *w = (char *)r->write + next * size;
            char *x = (char *)r->exec + next * size;
            for (int j = 0; j < batch; j++)
                wx_emit_stub(buf + (size_t)j * size, size, fn_value(round, (uint32_t)(next + (size_t)j)));
            if (corrupt && next <= CORRUPT_AT && CORRUPT_AT < next + (size_t)batch)
                wx_patch_stub(buf + (CORRUPT_AT - next) * size, size, fn_value(round, CORRUPT_AT) ^ 1u);
            /* one window: writable, the whole batch copied, executable
             * (skip_write: the same window with nothing copied) */
            if ((err = s->write_code(r, next * size, buf, skip_write ? 0 : (size_t)batch * size)) != 0)
                break;
            wx_icache_flush(w, x, (size_t)batch * size);
            if ((bad = run_batch(x, size, next, batch, round, &got)) != (size_t)-1)
                break;
            next += (size_t)batch;
        }
    } else {
        while (wx_bench_keep_running(b, (uint64_t)batch)) {
            if (next + (size_t)batch > nslots) {
                err = -1;
                break;
            }
            char *w = (char *)r->write + next * size;
            char *x = (char *)r->exec + next * size;
            if (s && (err = s->begin_write(r)) != 0)
                break;
            if (!skip_write)
                for (int j = 0; j < batch; j++)
                    wx_emit_stub(w + (size_t)j * size, size, fn_value(round, (uint32_t)(next + (size_t)j)));
            if (corrupt && next <= CORRUPT_AT && CORRUPT_AT < next + (size_t)batch)
                wx_patch_stub(w + (CORRUPT_AT - next) * size, size, fn_value(round, CORRUPT_AT) ^ 1u);
            if (s && (err = s->end_write(r)) != 0)
                break;
            wx_icache_flush(w, x, (size_t)batch * size);
            if ((bad = run_batch(x, size, next, batch, round, &got)) != (size_t)-1)
                break;
            next += (size_t)batch;
        }
    }
    wx_bench_counters_end(b);
    if (err == -1)
        wx_bench_fail(b, "code cache full after %zu functions: the round must be exactly %zu ops", next, nslots);
    else if (err)
        wx_bench_fail(b, "%s failed: %s", via_hook ? "write_code" : "begin_write/end_write", strerror(err));
    else if (bad != (size_t)-1)
        wx_bench_fail(b, "verification failed: function %zu returned %#x, expected %#x%s", bad, got,
                      fn_value(round, (uint32_t)bad), got == POISON ? " (the write never landed)" : "");
}

static void bench_compile(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    wx_region r;
    long page = (long)c->param;
    unsigned char *buf = NULL;
    if (s->write_code && !(buf = malloc((size_t)c->batch * (size_t)c->size_bytes))) {
        wx_bench_fail(b, "setup: out of memory for a batch of %d functions", c->batch);
        return;
    }
    if (cache_setup(b, s, &r, (size_t)c->size_bytes, g_functions, page) == 0) {
        compile_round(b, s, &r, (size_t)c->size_bytes, g_functions, c->batch, buf);
        s->unmap(&r);
    }
    free(buf);
}

static void bench_compile_baseline(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    (void)s;
    wx_region r;
    long page = (long)c->param;
    if (cache_setup(b, NULL, &r, (size_t)c->size_bytes, g_functions, page) != 0)
        return;
    compile_round(b, NULL, &r, (size_t)c->size_bytes, g_functions, c->batch, NULL);
    wx_baseline_unmap(&r);
}

/* ------------------------------------------------------------------------
 * ic_patch
 * --------------------------------------------------------------------- */

/* The constant of patch i: every byte changes over the sweep. */
static uint64_t ic_value(uint64_t i)
{
    return 0x0123456789abcdefull ^ (i * 0x9E3779B97F4A7C15ull);
}

/* Put a 64-bit stub returning value at the start of r (through write_code
 * where the strategy has it) and check it; shadow (IC_STUB_BYTES, 8-byte
 * aligned) gets a copy of the stub's bytes, which the write_code paths
 * patch and copy in. s == NULL: RWX memory, written in place. */
static int stub64_setup(wx_bench *b, const wx_strategy *s, wx_region *r, uint64_t value, unsigned char *shadow)
{
    wx_emit_stub64(shadow, IC_STUB_BYTES, value);
    if (s) {
        int e = wx_write_code(s, r, 0, shadow, IC_STUB_BYTES);
        if (e != 0) {
            wx_bench_fail(b, "setup: %s: %s", s->write_code ? "write_code" : "begin_write/end_write", strerror(e));
            return -1;
        }
    } else {
        wx_emit_stub64(r->write, IC_STUB_BYTES, value);
    }
    wx_icache_flush(r->write, r->exec, IC_STUB_BYTES);
    if (wx_stub64_at(r->exec)() != value) {
        wx_bench_fail(b, "setup: verification failed: the 64-bit stub does not return its constant");
        return -1;
    }
    return 0;
}

/* The verified inline-cache patch loop. shadow holds the stub's bytes (see
 * stub64_setup): a write_code strategy patches it and copies the whole
 * stub in, one write_code call per patch. */
static void ic_loop(wx_bench *b, const wx_strategy *s, wx_region *r, unsigned char *shadow)
{
    const int skip_write = wx_test_inject("skip_write");
    const int corrupt = wx_test_inject("corrupt_stub");
    const int via_hook = s && s->write_code;
    const wx_stub64_fn fn = wx_stub64_at(r->exec);
    uint64_t i = 0, v = 0, got = 0;
    int err = 0;
    wx_bench_counters_begin(b);
    if (via_hook) {
        while (wx_bench_keep_running(b, OPS_PER_BATCH)) {
            for (unsigned k = 0; k < OPS_PER_BATCH; k++) {
                v = ic_value(++i);
                wx_patch_stub64(shadow, IC_STUB_BYTES, corrupt && i == CORRUPT_AT ? v ^ 1u : v);
                if ((err = s->write_code(r, 0, shadow, skip_write ? 0 : IC_STUB_BYTES)) != 0)
                    break;
                wx_icache_flush(r->write, r->exec, IC_STUB_BYTES);
                got = fn();
                if (got != v)
                    break;
            }
            if (err || got != v)
                break;
        }
    } else {
        while (wx_bench_keep_running(b, OPS_PER_BATCH)) {
            for (unsigned k = 0; k < OPS_PER_BATCH; k++) {
                v = ic_value(++i);
                if (s && (err = s->begin_write(r)) != 0)
                    break;
                if (!skip_write)
                    wx_patch_stub64(r->write, IC_STUB_BYTES, corrupt && i == CORRUPT_AT ? v ^ 1u : v);
                if (s && (err = s->end_write(r)) != 0)
                    break;
                wx_icache_flush(r->write, r->exec, IC_STUB_BYTES);
                got = fn();
                if (got != v)
                    break;
            }
            if (err || got != v)
                break;
        }
    }
    wx_bench_counters_end(b);
    if (err)
        wx_bench_fail(b, "%s failed: %s", via_hook ? "write_code" : "begin_write/end_write", strerror(err));
    else if (got != v)
        wx_bench_fail(b, "verification failed: patched stub returned %#llx, expected %#llx", (unsigned long long)got,
                      (unsigned long long)v);
}

static void bench_ic_patch(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    wx_region r;
    char why[WX_REASON_LEN];
    if (wx_region_prepare(s, &r, (size_t)c->size_bytes, 7u, why, sizeof why) != 0) {
        wx_bench_fail(b, "setup: %s", why);
        return;
    }
    _Alignas(16) unsigned char shadow[IC_STUB_BYTES];
    if (stub64_setup(b, s, &r, ic_value(0), shadow) == 0)
        ic_loop(b, s, &r, shadow);
    s->unmap(&r);
}

static void bench_ic_patch_baseline(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    (void)s;
    wx_region r;
    char why[WX_REASON_LEN];
    if (wx_baseline_map(&r, (size_t)c->size_bytes, why, sizeof why) != 0) {
        wx_bench_fail(b, "unsupported: baseline needs RWX memory: %s", why);
        return;
    }
    memset(r.write, 0, r.size);
    _Alignas(16) unsigned char shadow[IC_STUB_BYTES];
    if (stub64_setup(b, NULL, &r, ic_value(0), shadow) == 0)
        ic_loop(b, NULL, &r, shadow);
    wx_baseline_unmap(&r);
}

/* ------------------------------------------------------------------------
 * cross_thread
 * --------------------------------------------------------------------- */

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

/* Shared by the patcher and the executing thread. */
typedef struct cross {
    void *exec;                   /* the stub */
    _Atomic uint32_t completed;   /* last patch completed (0 = the initial code) */
    _Atomic int counting;         /* count calls only while the patches run */
    _Atomic int stop;             /* executing thread: return */
    _Atomic uint64_t warm_calls;  /* calls before counting: proves the thread runs */
    int cpu;                      /* CPU it was pinned to, or -1 */
    seen s;
} cross;

static void run_calls(void *arg)
{
    cross *x = arg;
    const wx_stub64_fn fn = wx_stub64_at(x->exec);
    while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
        int counting = atomic_load_explicit(&x->counting, memory_order_relaxed);
        uint32_t p0 = atomic_load_explicit(&x->completed, memory_order_acquire);
        x->s.counted_call = counting;
        if (counting)
            x->s.calls++;
        uint64_t v = fn();
        uint32_t p1 = atomic_load_explicit(&x->completed, memory_order_acquire);
        if (!counting) {
            atomic_fetch_add_explicit(&x->warm_calls, 1, memory_order_relaxed);
            continue;
        }
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

static void *executing_thread(void *arg)
{
    cross *x = arg;
    char why[WX_REASON_LEN];
    x->cpu = wx_pin_thread(1, why, sizeof why);
    while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
        int sig = wx_try(run_calls, x);
        if (sig != 0 && x->s.counted_call)
            x->s.faulted++; /* counted in calls already */
    }
    return NULL;
}

/* Query and register membarrier SYNC_CORE (before any thread exists).
 * Returns 1, or 0 with why[] filled. */
static int membarrier_setup(char *why, size_t len)
{
#if defined(__linux__)
    return wx_membarrier_sync_core_setup(why, len);
#else
    snprintf(why, len, "no membarrier on this OS: another thread's core cannot be resynchronised from outside it");
    return 0;
#endif
}

static int membarrier_sync_core(void)
{
#if defined(__linux__)
    return wx_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0) == 0 ? 0 : errno;
#else
    return ENOSYS;
#endif
}

/* Append this repetition's counts to jit_cross_thread.csv; core_class and
 * repetition name the results.csv row they belong to. */
static const char cross_header[] =
    "strategy,variant,core_class,repetition,patches,calls,current,in_flight,stale,torn,faulted\n";

static int cross_record(wx_bench *b, const char *dir, const wx_strategy *s, const char *variant,
                        const char *core_class, int repetition, uint64_t patches, const seen *n)
{
    char num[8][24];
    uint64_t vals[8] = {(uint64_t)repetition, patches, n->calls, n->current, n->in_flight, n->stale, n->torn,
                        n->faulted};
    for (int i = 0; i < 8; i++)
        snprintf(num[i], sizeof num[i], "%llu", (unsigned long long)vals[i]);
    const char *fields[] = {s->name, variant, core_class, num[0], num[1], num[2], num[3], num[4], num[5], num[6],
                            num[7]};
    char *line = wx_csv_line(fields, 11);
    char why[WX_REASON_LEN] = "";
    int e = line ? wx_side_csv_append(dir, "jit_cross_thread.csv", cross_header, line, why, sizeof why) : ENOMEM;
    free(line);
    if (e != 0) {
        wx_bench_fail(b, "cannot write jit_cross_thread.csv: %s", why[0] ? why : strerror(e));
        return -1;
    }
    return 0;
}

static const char *g_out_dir;
/* Body calls so far, per variant and core class (P, E, any): = the
 * repetition of the row with a fixed op count. Each core class of a case is
 * its own benchmark, whose repetitions count from 1 again. */
static int g_cross_reps[2][3];

static void bench_cross(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    const int sync = c->param != 0;
    const char *variant = c->variant;
    const char *core_class = wx_bench_core_class(b);
    const int repetition = ++g_cross_reps[sync][core_class[0] == 'P' ? 0 : core_class[0] == 'E' ? 1 : 2];
    const int skip_write = wx_test_inject("skip_write");
    const int corrupt = wx_test_inject("corrupt_stub");
    wx_region r;
    char why[WX_REASON_LEN];
    if (wx_region_prepare(s, &r, (size_t)c->size_bytes, 7u, why, sizeof why) != 0) {
        wx_bench_fail(b, "setup: %s", why);
        return;
    }
    int e;
    _Alignas(16) unsigned char shadow[IC_STUB_BYTES];
    if (stub64_setup(b, s, &r, gen_value(0), shadow) != 0) {
        s->unmap(&r);
        return;
    }
    const wx_stub64_fn fn = wx_stub64_at(r.exec);

    static cross x; /* one benchmark thread at a time; static keeps it off the stack */
    memset(&x, 0, sizeof x);
    x.exec = r.exec;
    x.cpu = -1;
    atomic_init(&x.completed, 0);
    atomic_init(&x.counting, 0);
    atomic_init(&x.stop, 0);
    atomic_init(&x.warm_calls, 0);
    pthread_t t;
    if ((e = pthread_create(&t, NULL, executing_thread, &x)) != 0) {
        wx_bench_fail(b, "pthread_create: %s", strerror(e));
        s->unmap(&r);
        return;
    }
    /* The executing thread is calling before the first patch is timed. */
    uint64_t t0 = wx_now_ns();
    while (atomic_load_explicit(&x.warm_calls, memory_order_relaxed) < 1000 && wx_now_ns() - t0 < 5000000000ull)
        sched_yield();
    int started = atomic_load_explicit(&x.warm_calls, memory_order_relaxed) >= 1000;
    atomic_store_explicit(&x.counting, 1, memory_order_relaxed);

    const int via_hook = s->write_code != NULL;
    uint32_t g = 0;
    uint64_t got = 0;
    int err = 0, sync_err = 0;
    wx_bench_counters_begin(b);
    if (via_hook) {
        /* one write_code call per patch: the constant patched in the
         * private copy, the whole stub copied in */
        while (started && wx_bench_keep_running(b, OPS_PER_BATCH)) {
            for (unsigned k = 0; k < OPS_PER_BATCH; k++) {
                g++;
                wx_patch_stub64(shadow, IC_STUB_BYTES, corrupt && g == CORRUPT_AT ? gen_value(g) ^ 1u : gen_value(g));
                if ((err = s->write_code(&r, 0, shadow, skip_write ? 0 : IC_STUB_BYTES)) != 0)
                    break;
                wx_icache_flush(r.write, r.exec, IC_STUB_BYTES);
                if (sync && (sync_err = membarrier_sync_core()) != 0)
                    break;
                got = fn();
                if (got != gen_value(g))
                    break;
                atomic_store_explicit(&x.completed, g, memory_order_release);
            }
            if (err || sync_err || got != gen_value(g))
                break;
        }
    } else {
        while (started && wx_bench_keep_running(b, OPS_PER_BATCH)) {
            for (unsigned k = 0; k < OPS_PER_BATCH; k++) {
                g++;
                if ((err = s->begin_write(&r)) != 0)
                    break;
                if (!skip_write)
                    wx_patch_stub64(r.write, IC_STUB_BYTES,
                                    corrupt && g == CORRUPT_AT ? gen_value(g) ^ 1u : gen_value(g));
                if ((err = s->end_write(&r)) != 0)
                    break;
                wx_icache_flush(r.write, r.exec, IC_STUB_BYTES);
                if (sync && (sync_err = membarrier_sync_core()) != 0)
                    break;
                got = fn();
                if (got != gen_value(g))
                    break;
                atomic_store_explicit(&x.completed, g, memory_order_release);
            }
            if (err || sync_err || got != gen_value(g))
                break;
        }
    }
    wx_bench_counters_end(b);
    atomic_store_explicit(&x.counting, 0, memory_order_relaxed);
    atomic_store_explicit(&x.stop, 1, memory_order_relaxed);
    pthread_join(t, NULL);
    if (!via_hook)
        s->end_write(&r); /* a loop left between begin_write and end_write */
    s->unmap(&r);

    if (!started)
        wx_bench_fail(b, "the executing thread made no calls within 5 s: nothing ran beside the patcher");
    else if (err)
        wx_bench_fail(b, "%s failed: %s", via_hook ? "write_code" : "begin_write/end_write", strerror(err));
    else if (sync_err)
        wx_bench_fail(b, "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE): %s", strerror(sync_err));
    else if (got != gen_value(g))
        wx_bench_fail(b, "verification failed: patch %u returned %#llx, expected %#llx", g, (unsigned long long)got,
                      (unsigned long long)gen_value(g));
    else if (x.s.invalid)
        wx_bench_fail(b, "the executing thread saw %#llx, a value no patch had written yet (%llu times)",
                      (unsigned long long)x.s.invalid_value, (unsigned long long)x.s.invalid);
    else if (x.s.calls == 0)
        wx_bench_fail(b, "the executing thread made no calls while the patches ran: no concurrency was measured");
    else
        cross_record(b, g_out_dir, s, variant, core_class, repetition, g, &x.s);
}

/* ------------------------------------------------------------------------
 * Registration
 * --------------------------------------------------------------------- */

static void jit_register(const wx_run *run)
{
    g_functions = run->quick ? FUNCTIONS_QUICK : FUNCTIONS;
    g_out_dir = run->out_dir;
    const uint64_t page = (uint64_t)run->page_size;

    wx_case c = {.threads = 1, .param = (uintptr_t)run->page_size, .iterations = g_functions};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof batches / sizeof batches[0]; j++) {
            c.size_bytes = sizes[i];
            c.batch = batches[j];
            c.variant = "compile";
            wx_add_case(&c, bench_compile);
            c.variant = "compile_baseline";
            wx_add_case(&c, bench_compile_baseline);
        }

    wx_case ic = {.threads = 1, .batch = 1, .size_bytes = page};
    ic.variant = "ic_patch";
    wx_add_case(&ic, bench_ic_patch);
    ic.variant = "ic_patch_baseline";
    wx_add_case(&ic, bench_ic_patch_baseline);

    char why[WX_REASON_LEN] = "";
    wx_case x = {.threads = 1, .victims = 1, .batch = 1, .size_bytes = page,
                 .iterations = run->quick ? CROSS_PATCHES_QUICK : CROSS_PATCHES};
    if (run->ncpu < 2) {
        snprintf(why, sizeof why, "needs 2 CPUs (a patcher and an executing thread on different cores); "
                                  "this process may use %d", run->ncpu);
        x.variant = "cross_thread";
        wx_add_unsupported(&x, why);
        x.variant = "cross_thread_nosync";
        wx_add_unsupported(&x, why);
        return;
    }
    /* Registered once per process, before any thread is created. */
    if (!g_membarrier_ok)
        g_membarrier_ok = membarrier_setup(why, sizeof why);
    x.variant = "cross_thread";
    x.param = 1;
    if (g_membarrier_ok)
        wx_add_case(&x, bench_cross);
    else
        wx_add_unsupported(&x, why);
    x.variant = "cross_thread_nosync";
    x.param = 0;
    wx_add_case(&x, bench_cross);
}

static const char *const jit_variants[] = {"compile", "compile_baseline", "ic_patch", "ic_patch_baseline",
                                           "cross_thread", "cross_thread_nosync", NULL};

const wx_scenario wx_scenario_jit_workload = {
    .name = "jit_workload",
    .question = "what does W^X cost a JIT that compiles functions, patches inline caches and patches running code?",
    .op = "compile/compile_baseline: one function compiled and first run (batch functions per writable window); "
          "ic_patch/ic_patch_baseline: one verified patch of an 8-byte constant plus the call; "
          "cross_thread/cross_thread_nosync: one verified patch while another thread runs the code "
          "(counts: jit_cross_thread.csv)",
    .variants = jit_variants,
    .strategy_free = 0,
    .register_cases = jit_register,
};
