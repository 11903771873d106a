/* icache_flush.c - what making new code visible to instruction fetch costs,
 * per method and per size of new code (64 B .. 1 MiB).
 *
 * One op: write size_bytes of new code, make it visible with the variant's
 * method, call it and check the value it returns. The code is size_bytes/64
 * stubs of 64 bytes (no-ops, then "return v"), all rewritten with a new v
 * every op; the op calls one of them, a different one each op (a stride that
 * visits every stub), so every flush is verified and the call costs the same
 * at every size. The write and the call are inside the timed loop; `none`
 * (the same loop with no flush, where that is correct) is the baseline to
 * subtract.
 *
 *   none        nothing: x86 instruction fetch is coherent with the same
 *               thread's stores (not correct on arm64: unsupported there)
 *   builtin     __builtin___clear_cache (nothing on x86; dc cvau/ic ivau on
 *               arm64 Linux; sys_icache_invalidate on macOS)
 *   manual      aarch64 Linux: dc cvau by D-line (unless CTR_EL0.IDC), dsb ish,
 *               ic ivau by I-line (unless CTR_EL0.DIC), dsb ish, isb, with the
 *               line sizes CTR_EL0 reports (icache_ops.h)
 *   cpuid       x86: a CPUID after the write (serialising; a VM exit in a guest)
 *   serialize   x86: the SERIALIZE instruction, where CPUID says it exists
 *   membarrier  builtin, then membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE):
 *               every running thread of the process serialises, as a JIT
 *               needs before other threads run code it patched; swept over
 *               0..ncpu-1 spinning victim threads (that is whom it interrupts).
 *               The victims only spin; the new code is verified on the
 *               measuring thread. As in mprotect_tlb, a row whose victims
 *               made no progress or held their CPU for less than a
 *               quarter of the timed loop is `failed`.
 *   sys_icache_invalidate  macOS: the libkern call (the __APPLE__ blocks below)
 *
 * Strategies: the question is about the flush, so it is timed on memory that
 * needs no permission change between the write and the call - rwx (one view)
 * and dualmap (written through one view, run through the other; on arm64 the
 * data lines are cleaned by the write address and the instruction lines
 * invalidated by the execute address). Strategies that must switch are rows
 * `unsupported: question does not apply`; toggle_latency measures the switch.
 * That includes the strategies writable only inside write_code
 * (mapjit_callback): ic_setup's begin_write is reached only by rwx and
 * dualmap, whose windows are open at all times.
 */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../bench/threads.h"
#include "../bench/wx.h"
#include "icache_ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__APPLE__)
#include <libkern/OSCacheControl.h>
#endif

enum { M_NONE, M_BUILTIN, M_MANUAL, M_CPUID, M_SERIALIZE, M_MEMBARRIER, M_SYS_ICACHE };
static const char *const ic_variants[] = {"none",      "builtin",    "manual", "cpuid",
                                          "serialize", "membarrier", "sys_icache_invalidate", NULL};

#define SETTLE_WINDOW_NS 2000000ull     /* victims must have held their CPU for this long ... */
#define SETTLE_MAX_WAIT_NS 50000000ull /* ... waiting at most this long, before a timed loop */
#define UNIT 64u            /* bytes per stub */
#define CALL_STRIDE 40503u  /* odd: visits every stub of a power-of-two count */
#define FIRST_VALUE 1u

/* Everything one case needs. */
typedef struct ic_ctx {
    const wx_strategy *s;     /* rwx or dualmap */
    int method;               /* M_* */
    size_t size;              /* bytes of code written and flushed per op */
    size_t nunits;            /* stubs in it */
    wx_region r;              /* the code memory */
    int mapped;               /* r is mapped */
    uint64_t ctr;             /* CTR_EL0 (manual) */
    int skip_write;           /* test: do not write the new code */
    int stall;                /* test: victims stop spinning */
    uint32_t value;           /* value the newest code returns */
    uint64_t op;              /* ops done */
    unsigned char unit[UNIT]; /* one stub, written size/UNIT times per op */
    char why[WX_REASON_LEN];  /* what failed in ic_ops */
    uint64_t *spins;          /* per victim: steps (its own line) */
    wx_victims *v;            /* membarrier's victims */
} ic_ctx;

/* ---------------------------------------------------------------------------
 * Which methods run here, and why not
 * ------------------------------------------------------------------------ */

/* membarrier's state for this process: probed and registered once, before
 * any thread of the process starts (registering later is slow). */
static int g_membarrier = -1; /* 1 registered, 0 not available */
static char g_membarrier_why[WX_REASON_LEN];

static void membarrier_probe(void)
{
    if (g_membarrier >= 0)
        return;
    g_membarrier = 0;
#if defined(__linux__)
    g_membarrier = wx_membarrier_sync_core_setup(g_membarrier_why, sizeof g_membarrier_why);
#else
    snprintf(g_membarrier_why, sizeof g_membarrier_why, "needs Linux membarrier(2); this OS has none");
#endif
}

/* 1 if method m runs here; else 0 with why[]. */
static int method_available(int m, char *why, size_t len)
{
    switch (m) {
    case M_NONE:
#if defined(__x86_64__)
        return 1;
#else
        snprintf(why, len, "arm64 needs at least dsb ish + isb between writing code and running it, even where "
                           "CTR_EL0.IDC and DIC are set: there is no flush-free baseline");
        return 0;
#endif
    case M_BUILTIN:
        return 1;
    case M_MANUAL:
#if defined(WX_HAVE_MANUAL_FLUSH)
        return 1;
#elif defined(__aarch64__)
        snprintf(why, len, "CTR_EL0 is not readable from user space on this OS; use its cache API");
        return 0;
#else
        snprintf(why, len, "needs aarch64 (DC CVAU / IC IVAU by the line sizes in CTR_EL0)");
        return 0;
#endif
    case M_CPUID:
#if defined(__x86_64__)
        return 1;
#else
        snprintf(why, len, "needs x86_64 (CPUID)");
        return 0;
#endif
    case M_SERIALIZE:
#if defined(__x86_64__)
        if (wx_has_serialize())
            return 1;
        snprintf(why, len, "this CPU lacks SERIALIZE (CPUID.(EAX=7,ECX=0):EDX[14] = 0); "
                           "cpuid is the serialising instruction measured instead");
        return 0;
#else
        snprintf(why, len, "needs x86_64 (SERIALIZE)");
        return 0;
#endif
    case M_MEMBARRIER:
        membarrier_probe();
        if (g_membarrier == 1)
            return 1;
        snprintf(why, len, "%s", g_membarrier_why);
        return 0;
    case M_SYS_ICACHE:
#if defined(__APPLE__)
        return 1;
#else
        snprintf(why, len, "needs macOS (sys_icache_invalidate, <libkern/OSCacheControl.h>)");
        return 0;
#endif
    }
    snprintf(why, len, "unknown method");
    return 0;
}

/* ---------------------------------------------------------------------------
 * The op
 * ------------------------------------------------------------------------ */

/* Make the new code visible with the case's method: 0, or -1 with x->why. */
static int make_visible(ic_ctx *x)
{
    char *exec = x->r.exec;
    switch (x->method) {
    case M_NONE:
        return 0;
    case M_BUILTIN:
        __builtin___clear_cache(exec, exec + x->size);
        return 0;
#if defined(WX_HAVE_MANUAL_FLUSH)
    case M_MANUAL:
        (void)wx_flush_manual(x->r.write, exec, x->size, x->ctr);
        return 0;
#endif
#if defined(__x86_64__)
    case M_CPUID:
        wx_serialize_cpuid();
        return 0;
    case M_SERIALIZE:
        wx_serialize_insn();
        return 0;
#endif
#if defined(__linux__)
    case M_MEMBARRIER:
        __builtin___clear_cache(exec, exec + x->size);
        if (wx_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0) != 0) {
            wx_why_errno(x->why, sizeof x->why, "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)", errno);
            return -1;
        }
        return 0;
#endif
#if defined(__APPLE__)
    case M_SYS_ICACHE:
        sys_icache_invalidate(exec, x->size);
        return 0;
#endif
    }
    snprintf(x->why, sizeof x->why, "method %s is not compiled for this platform", ic_variants[x->method]);
    return -1;
}

/* n ops: write all the code with a new value, make it visible, call one
 * stub, check. 0, or -1 with x->why. */
static int ic_ops(void *ctx, uint64_t n)
{
    ic_ctx *x = ctx;
    unsigned char *w = x->r.write, *e = x->r.exec;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t v = ++x->value;
        wx_emit_stub(x->unit, UNIT, v);
        if (!x->skip_write)
            for (size_t u = 0; u < x->nunits; u++)
                memcpy(w + u * UNIT, x->unit, UNIT);
        if (make_visible(x) != 0)
            return -1;
        size_t k = (size_t)((x->op++ * CALL_STRIDE) % x->nunits);
        uint32_t got = wx_stub_at(e + k * UNIT)();
        if (got != v) {
            snprintf(x->why, sizeof x->why,
                     "verification failed: after %s the stub at offset %zu returned %u, expected %u",
                     ic_variants[x->method], k * UNIT, got, v);
            return -1;
        }
    }
    return 0;
}

/* A victim step: spin, counting. */
static int spin_step(void *arg, int k, char *why, size_t len)
{
    (void)why;
    (void)len;
    ic_ctx *x = arg;
    if (x->stall && x->spins[k * 16] >= 1)
        return WX_STEP_IDLE; /* test: a victim that stopped running */
    x->spins[k * 16]++;
    return WX_STEP_DONE;
}

static void ic_teardown(ic_ctx *x, char *why, size_t len, int *failed)
{
    char w[WX_REASON_LEN] = "";
    if (wx_victims_stop(x->v, w, sizeof w) != 0 && failed && !*failed) {
        snprintf(why, len, "%s", w);
        *failed = 1;
    }
    x->v = NULL;
    if (x->mapped)
        x->s->unmap(&x->r);
    x->mapped = 0;
    free(x->spins);
    x->spins = NULL;
}

static int ic_setup(ic_ctx *x, const wx_strategy *s, const wx_case *c, char *why, size_t len)
{
    memset(x, 0, sizeof *x);
    x->s = s;
    x->method = (int)c->param;
    x->size = (size_t)c->size_bytes;
    x->nunits = x->size / UNIT;
    x->skip_write = wx_test_inject("skip_write");
    x->stall = wx_test_inject("victims_stall");
#if defined(WX_HAVE_MANUAL_FLUSH)
    x->ctr = wx_read_ctr_el0();
#endif
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t map = (x->size + page - 1) / page * page;
    int e = s->map(&x->r, map, why, len);
    if (e != 0)
        return -1;
    x->mapped = 1;
    /* Every stub returns FIRST_VALUE before the first op. */
    if ((e = s->begin_write(&x->r)) != 0)
        return wx_why_errno(why, len, "begin_write", e), -1;
    memset(x->r.write, 0, x->r.size);
    wx_emit_stub(x->unit, UNIT, FIRST_VALUE);
    for (size_t u = 0; u < x->nunits; u++)
        memcpy((unsigned char *)x->r.write + u * UNIT, x->unit, UNIT);
    if ((e = s->end_write(&x->r)) != 0)
        return wx_why_errno(why, len, "end_write", e), -1;
    wx_icache_flush(x->r.write, x->r.exec, x->size);
    uint32_t got = wx_stub_at(x->r.exec)();
    if (got != FIRST_VALUE) {
        snprintf(why, len, "verification failed: the first stub returned %u, expected %u", got, FIRST_VALUE);
        return -1;
    }
    x->value = FIRST_VALUE;
    if (c->victims > 0) {
        x->spins = calloc((size_t)c->victims * 16, sizeof *x->spins); /* 128 bytes apart */
        if (!x->spins) {
            snprintf(why, len, "out of memory");
            return -1;
        }
        x->v = wx_victims_start(WX_VICTIM_THREADS, c->victims, NULL, spin_step, x, why, len);
        if (!x->v)
            return -1;
    }
    return 0;
}

static void ic_body(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    ic_ctx x;
    char why[WX_REASON_LEN] = "";
    int failed = 0;
    if (ic_setup(&x, s, c, why, sizeof why) != 0) {
        wx_bench_fail(b, "setup: %s", why);
        ic_teardown(&x, why, sizeof why, NULL);
        return;
    }
    wx_victims_mark before;
    const uint64_t batch = 16;
    int err = 0;
    /* Start timing at a moment the victims hold their CPUs (bounded wait). */
    (void)wx_victims_settle(x.v, SETTLE_WINDOW_NS, SETTLE_MAX_WAIT_NS);
    wx_bench_counters_begin(b);
    wx_victims_mark_now(x.v, &before);
    while (wx_bench_keep_running(b, batch))
        if ((err = ic_ops(&x, batch)) != 0)
            break;
    int idle = wx_victims_check(x.v, &before, (uint64_t)(c->min_time * 1e9), why, sizeof why);
    wx_bench_counters_end(b);
    if (err) {
        snprintf(why, sizeof why, "%s", x.why);
        failed = 1;
    } else if (idle) {
        failed = 1;
    }
    ic_teardown(&x, why, sizeof why, &failed);
    if (failed)
        wx_bench_fail(b, "%s", why);
}

/* ---------------------------------------------------------------------------
 * Cases
 * ------------------------------------------------------------------------ */

static void ic_register(const wx_run *run)
{
    const wx_strategy *s = run->strategy;
    char why[WX_REASON_LEN];
    /* Before any thread of this process exists (the victims). */
    membarrier_probe();

    if (!(s->flags & WX_NO_SWITCH)) {
        snprintf(why, sizeof why,
                 "question does not apply: %s must change permissions between writing and running code "
                 "(toggle_latency measures that); the flush is timed on rwx and dualmap memory",
                 s->name);
        for (int m = 0; ic_variants[m]; m++) {
            wx_case c = {.variant = ic_variants[m], .threads = 1, .batch = 1};
            wx_add_unsupported(&c, why);
        }
        return;
    }

    static const uint64_t full_sizes[] = {64, 256, 1024, 4096, 16384, 65536, 262144, 1048576};
    static const uint64_t quick_sizes[] = {64, 4096, 1048576};
    const uint64_t *sizes = run->quick ? quick_sizes : full_sizes;
    size_t nsizes = run->quick ? sizeof quick_sizes / sizeof *quick_sizes : sizeof full_sizes / sizeof *full_sizes;
    int victims[16];
    int nv = wx_victim_counts(run->ncpu, run->quick, victims, 16);

    for (int m = 0; ic_variants[m]; m++) {
        if (!method_available(m, why, sizeof why)) {
            wx_case c = {.variant = ic_variants[m], .threads = 1, .batch = 1};
            wx_add_unsupported(&c, why);
            continue;
        }
        for (size_t i = 0; i < nsizes; i++) {
            for (int k = 0; k < (m == M_MEMBARRIER ? nv : 1); k++) {
                wx_case c = {
                    .variant = ic_variants[m],
                    .threads = 1,
                    .victims = victims[k],
                    .size_bytes = sizes[i],
                    .batch = 1,
                    .param = (uintptr_t)m,
                    .min_time = wx_victim_case_min_time(run->min_time, victims[k]),
                };
                wx_add_case(&c, ic_body);
            }
        }
    }
}

const wx_scenario wx_scenario_icache_flush = {
    .name = "icache_flush",
    .question = "what does making new code visible to instruction fetch cost, per method and size?",
    .op = "write size_bytes of code, make it visible with the variant's method, call it and check the value "
          "(none: the same without a flush, to subtract)",
    .variants = ic_variants,
    .strategy_free = 0,
    .register_cases = ic_register,
};
